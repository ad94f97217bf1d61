//! The template check shared by a worker's jobs (`template.rs`): pipelines given one
//! `TemplateChecks`, as `encore serve` gives every job it runs, over one simulator. The
//! simulator's ledger counts the `GET /v1/templates/{id}` reads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use encore_clients::{ApiKey, Config, Http};
use encore_pipeline::{
    Event, FailureClass, JobContext, MemoryJournal, Pipeline, PipelineConfig, PipelineError,
    Report, Stage, StepName, StepState, StopSignal, TemplateChecks,
};
use encore_sim::{Scenario, SimConfig, SimState};

use super::{billed, input, keys, settings};

const TEMPLATE_READ: &str = "GET /v1/templates/{id}";

/// One worker: a simulator, the HTTP handle and the template checks its pipelines share.
struct Worker {
    state: SimState,
    http: Http,
    config: Config,
    checks: TemplateChecks,
}

/// A job's report and the events its pipeline sent.
struct Job {
    report: Report,
    events: Vec<Event>,
}

impl Job {
    /// The `template is ready` notes of the job.
    fn template_notes(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Note {
                    stage: Stage::Video,
                    message,
                } if message.starts_with("template ") => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether the job's `template` step was stored as done.
    fn template_done(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e,
                Event::StepChanged {
                    step: StepName::Template,
                    state: StepState::Done,
                    ..
                }
            )
        })
    }
}

impl Worker {
    /// A worker over a simulator at 1/100 of the real durations (a job takes seconds).
    fn new(scenario: &str, suno_credits: Option<u64>) -> Worker {
        let mut sim = SimConfig {
            scenario: Scenario::from_toml(scenario).expect("valid scenario"),
            time_scale: 0.01,
            ..SimConfig::default()
        };
        if let Some(credits) = suno_credits {
            sim.suno_credits = credits;
        }
        let state = SimState::new(sim);
        Worker {
            http: Http::service::<_, axum::body::Body>(encore_sim::app(state.clone())),
            state,
            config: Config::default().with_base("http://sim.test"),
            checks: TemplateChecks::new(),
        }
    }

    /// A pipeline for one job, sharing the worker's template checks, and its events.
    fn pipeline(&self, settings: PipelineConfig) -> (Pipeline, Arc<Mutex<Vec<Event>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let pipeline = Pipeline::new(&self.http, &self.config, keys(), settings)
            .with_template_checks(self.checks.clone())
            .on_event(move |e| sink.lock().unwrap().push(e.clone()));
        (pipeline, events)
    }

    /// `n` jobs started at once, each on a pipeline of its own; their results in any order.
    async fn jobs(&self, n: usize, settings: &PipelineConfig) -> Vec<Job> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (pipeline, events) = self.pipeline(settings.clone());
            set.spawn(async move {
                let report = pipeline.run(&input()).await;
                let events = events.lock().unwrap().clone();
                Job { report, events }
            });
        }
        let mut jobs = Vec::new();
        while let Some(job) = set.join_next().await {
            jobs.push(job.unwrap());
        }
        jobs
    }

    /// A job over `journal` (a run of it, or a resumed one), stopped by `stop`.
    async fn run_job(&self, journal: &MemoryJournal, stop: StopSignal) -> Report {
        let (pipeline, _) = self.pipeline(settings());
        let ctx = JobContext {
            job_id: "job",
            journal,
            callbacks: None,
            stop: &stop,
        };
        pipeline.run_job(&input(), ctx).await
    }

    async fn job(&self, settings: &PipelineConfig) -> Job {
        self.jobs(1, settings).await.pop().unwrap()
    }

    /// How many times the simulator was asked for a template.
    fn template_reads(&self) -> u64 {
        self.state
            .ledger()
            .requests_per_route
            .get(TEMPLATE_READ)
            .copied()
            .unwrap_or(0)
    }
}

/// Ten jobs started together read the template once: one leads, nine wait for its answer. Each
/// job still stores its `template` step as done, and the nine say the check was not theirs.
#[tokio::test(start_paused = true)]
async fn ten_jobs_at_once_read_the_template_once() {
    let worker = Worker::new("", None);
    let jobs = worker.jobs(10, &settings()).await;
    for job in &jobs {
        assert!(job.report.succeeded(), "{:?}", job.report.error);
        assert!(job.template_done(), "{:#?}", job.events);
    }
    assert_eq!(worker.template_reads(), 1);
    assert_eq!(billed(&worker.state), (10, 10, 10));
    let notes: Vec<String> = jobs.iter().flat_map(Job::template_notes).collect();
    let read = "template \"encore music video\" (5e1f3c2a-8b4d-4e6f-9a0b-1c2d3e4f5a6b) is ready";
    assert_eq!(
        notes.iter().filter(|n| *n == read).count(),
        1,
        "one job read it: {notes:#?}"
    );
    assert_eq!(
        notes
            .iter()
            .filter(|n| **n == format!("{read} (checked 0ms ago)"))
            .count(),
        9,
        "nine used that read: {notes:#?}"
    );
    // The calls of the nine hold no template read.
    let reads: usize = jobs
        .iter()
        .flat_map(|j| &j.report.calls)
        .filter(|c| c.endpoint.name() == "creatomate.templates")
        .count();
    assert_eq!(reads, 1);
}

/// A check is used until `template_check_ttl` has passed since its answer, and read again at
/// that instant. (The jobs stop at the credit check, right after the template's: Suno's account
/// is empty, so no virtual time passes inside a job.)
#[tokio::test(start_paused = true)]
async fn a_check_is_read_again_once_its_lifetime_has_passed() {
    let worker = Worker::new("", Some(0));
    let settings = settings();
    let ttl = settings.template_check_ttl;
    assert_eq!(ttl, Duration::from_secs(60), "the default");
    let short_of_credits = |job: &Job| {
        assert!(
            matches!(
                job.report.error,
                Some(PipelineError::InsufficientCredits { .. })
            ),
            "{:?}",
            job.report.error
        );
        assert!(job.template_done());
    };
    let first = worker.job(&settings).await;
    short_of_credits(&first);
    assert_eq!(worker.template_reads(), 1);

    tokio::time::sleep(Duration::from_secs(30)).await;
    let kept = worker.job(&settings).await;
    short_of_credits(&kept);
    assert_eq!(worker.template_reads(), 1);
    let note = kept.template_notes().pop().unwrap();
    assert!(note.ends_with("is ready (checked 30s ago)"), "{note}");

    tokio::time::sleep(Duration::from_millis(29_999)).await;
    short_of_credits(&worker.job(&settings).await);
    assert_eq!(worker.template_reads(), 1, "a millisecond before its end");

    tokio::time::sleep(Duration::from_millis(1)).await;
    let read = worker.job(&settings).await;
    short_of_credits(&read);
    assert_eq!(worker.template_reads(), 2, "at its end");
    let note = read.template_notes().pop().unwrap();
    assert!(note.ends_with("is ready"), "{note}");
    // The new read starts a new lifetime.
    short_of_credits(&worker.job(&settings).await);
    assert_eq!(worker.template_reads(), 2);
}

/// A check that failed after its retries (Creatomate answering 503) is not kept: the next job
/// reads again, and its success is then kept.
#[tokio::test(start_paused = true)]
async fn a_failed_check_is_not_kept() {
    let worker = Worker::new(
        "[routes.\"creatomate.template\"]\nsequence = [\"outage\", \"outage\", \"outage\"]\n",
        None,
    );
    let failed = worker.job(&settings()).await;
    let err = failed.report.error.as_ref().expect("Creatomate was down");
    assert_eq!(err.class(), FailureClass::GaveUp, "{err}");
    assert!(
        err.to_string()
            .starts_with("creatomate.templates: gave up after 3 attempts"),
        "{err}"
    );
    assert_eq!(worker.template_reads(), 3);

    let next = worker.job(&settings()).await;
    assert!(next.report.succeeded(), "{:?}", next.report.error);
    assert_eq!(worker.template_reads(), 4, "read again");
    let kept = worker.job(&settings()).await;
    assert!(kept.report.succeeded(), "{:?}", kept.report.error);
    assert_eq!(worker.template_reads(), 4, "the success is kept");
}

/// A template that lacks a configured element fails every job with a read of its own, whether
/// the jobs come together (each waits for the read before it, then reads) or one after another.
#[tokio::test(start_paused = true)]
async fn a_template_lacking_an_element_is_read_by_every_job() {
    let worker = Worker::new("", None);
    let settings = PipelineConfig {
        captions_element: "Subtitles".into(),
        ..settings()
    };
    let mut jobs = worker.jobs(3, &settings).await;
    jobs.push(worker.job(&settings).await);
    for job in &jobs {
        assert!(
            matches!(
                job.report.error,
                Some(PipelineError::TemplateElements { .. })
            ),
            "{:?}",
            job.report.error
        );
    }
    assert_eq!(worker.template_reads(), 4);
    assert_eq!(billed(&worker.state), (0, 0, 0));
}

/// `template_check_ttl = 0s`: every job reads the template, together or one after another.
#[tokio::test(start_paused = true)]
async fn a_zero_lifetime_reads_the_template_for_every_job() {
    let worker = Worker::new("", None);
    let settings = PipelineConfig {
        template_check_ttl: Duration::ZERO,
        ..settings()
    };
    let mut jobs = worker.jobs(3, &settings).await;
    jobs.push(worker.job(&settings).await);
    for job in &jobs {
        assert!(job.report.succeeded(), "{:?}", job.report.error);
        assert_eq!(
            job.template_notes(),
            ["template \"encore music video\" (5e1f3c2a-8b4d-4e6f-9a0b-1c2d3e4f5a6b) is ready"]
        );
    }
    assert_eq!(worker.template_reads(), 4);

    // Nor do they wait for each other's reads: while the first read takes 5 s, the second job
    // reads at once (and stops at the credit check: the Suno account is empty).
    let worker = Worker::new(
        "[routes.\"creatomate.template\"]\nsequence = [{ kind = \"latency\", ms = 5000 }]\n",
        Some(0),
    );
    let mut took: Vec<Duration> = worker
        .jobs(2, &settings)
        .await
        .iter()
        .map(|j| j.report.elapsed)
        .collect();
    took.sort();
    assert!(took[0] < Duration::from_secs(1), "{took:?}");
    assert!(took[1] >= Duration::from_secs(5), "{took:?}");
}

/// A pipeline's settings are fixed when it is made, but pipelines sharing checks may differ: a
/// check made for other element names, another template or another Creatomate account is not
/// used.
#[tokio::test(start_paused = true)]
async fn a_check_is_used_only_for_its_template_elements_and_account() {
    let worker = Worker::new("", None);
    assert!(worker.job(&settings()).await.report.succeeded());
    assert_eq!(worker.template_reads(), 1);

    // Other element names: read again, and refused (the demo template has no "Subtitles").
    let subtitles = PipelineConfig {
        captions_element: "Subtitles".into(),
        ..settings()
    };
    let job = worker.job(&subtitles).await;
    assert!(
        matches!(
            job.report.error,
            Some(PipelineError::TemplateElements { .. })
        ),
        "{:?}",
        job.report.error
    );
    assert_eq!(worker.template_reads(), 2);

    // Another template.
    let vertical = PipelineConfig {
        template_id: encore_sim::VERTICAL_TEMPLATE_ID.into(),
        ..settings()
    };
    assert!(worker.job(&vertical).await.report.succeeded());
    assert_eq!(worker.template_reads(), 3);

    // Another account.
    let mut other = keys();
    other.creatomate = ApiKey::new("creatomate-another-account").unwrap();
    let pipeline = Pipeline::new(&worker.http, &worker.config, other, settings())
        .with_template_checks(worker.checks.clone());
    assert!(pipeline.run(&input()).await.succeeded());
    assert_eq!(worker.template_reads(), 4);

    // The first entry is still there for the first settings.
    assert!(worker.job(&settings()).await.report.succeeded());
    assert_eq!(worker.template_reads(), 4);
}

/// Jobs stopped while they wait for the read, or while they make it, leave nothing behind: the
/// next job reads the template and succeeds, a stopped job resumed later uses that check, and
/// only the two reads that were sent reach Creatomate.
#[tokio::test(start_paused = true)]
async fn jobs_stopped_while_the_template_is_read_do_not_break_the_next() {
    // The first read takes 5 s.
    let worker = Worker::new(
        "[routes.\"creatomate.template\"]\nsequence = [{ kind = \"latency\", ms = 5000 }]\n",
        None,
    );
    let journals = [
        MemoryJournal::new(),
        MemoryJournal::new(),
        MemoryJournal::new(),
    ];
    let (stop_reader, reader_stopped) = tokio::sync::watch::channel(false);
    let (stop_waiter, waiter_stopped) = tokio::sync::watch::channel(false);
    // The reader starts first and holds the read; the waiter and the third job queue behind it.
    let stops = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop_waiter.send(true).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop_reader.send(true).unwrap();
    };
    let (reader, waiter, third, ()) = tokio::join!(
        worker.run_job(&journals[0], StopSignal::new(reader_stopped)),
        worker.run_job(&journals[1], StopSignal::new(waiter_stopped)),
        worker.run_job(&journals[2], StopSignal::never()),
        stops,
    );
    for (report, journal) in [(&reader, &journals[0]), (&waiter, &journals[1])] {
        let err = report.error.as_ref().expect("stopped");
        assert_eq!(
            err.to_string(),
            "interrupted before template: every finished step is stored"
        );
        let template = journal
            .snapshot()
            .into_iter()
            .find(|s| s.name == StepName::Template)
            .unwrap();
        assert_eq!(template.state, StepState::Pending);
    }
    assert!(third.succeeded(), "{:?}", third.error);
    assert_eq!(
        worker.template_reads(),
        2,
        "the stopped reader's and the third job's"
    );

    // The stopped jobs resume and use the third job's check.
    for journal in &journals[..2] {
        let resumed = worker.run_job(journal, StopSignal::never()).await;
        assert!(resumed.succeeded(), "{:?}", resumed.error);
    }
    assert_eq!(worker.template_reads(), 2);
    assert_eq!(billed(&worker.state), (3, 3, 3));
}
