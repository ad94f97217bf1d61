//! The ledger: every request the simulator saw, every billed job it created (with its exact
//! ready time), every rate-limit refusal it answered and every callback it delivered or
//! withheld.
//!
//! Tests use it to prove "no duplicate billed job", "no rate-limit refusal", "every callback
//! was answered 200" and to compute an ideal makespan from the server's side. Read it with
//! [`SimState::ledger`](crate::SimState::ledger) or `GET /__sim/ledger` (the same JSON).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::route::{RouteId, Upstream};

/// One request, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Global 1-based arrival number.
    pub seq: u64,
    /// Route id, e.g. `suno.generate`.
    pub route: RouteId,
    /// Method and path template, e.g. `POST /api/v1/generate`.
    pub endpoint: String,
    /// The concrete path, e.g. `/v1/renders/3f…`.
    pub path: String,
    /// 1-based call number of this route (the *n* in "the *n*th call gets …").
    pub attempt: u64,
    /// Label of the injected fault (`None` = handled normally), e.g. `"status:503"`.
    pub fault: Option<String>,
    /// Status sent to the client; `None` when the connection was dropped before any answer.
    pub status: Option<u16>,
    /// Id of the billed job this request created, if any.
    pub job_id: Option<String>,
    /// Real milliseconds since the simulator state was created.
    pub at_ms: u64,
    /// Whether the answer refused the call for rate limiting: an HTTP 429 (except OpenAI's
    /// `insufficient_quota` and Suno's insufficient-credits code mirrored into the status),
    /// or a Suno envelope with body code 405 or 430 — whether the simulator's own limiter
    /// or a scripted fault answered (`fault` tells which). A scripted `status` fault counts
    /// by its HTTP status alone (its body is not inspected).
    #[serde(default)]
    pub rate_limited: bool,
    /// The Suno envelope `code` of the answer (Suno routes; `None` elsewhere or when the
    /// answer carried no envelope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_code: Option<u16>,
}

/// What kind of billed job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// An OpenAI response (tokens billed).
    OpenaiResponse,
    /// A Suno generation task (credits debited).
    SunoTask,
    /// A Creatomate render (credits debited).
    CreatomateRender,
}

/// One billed job.
///
/// A job's timeline is fixed when it is created, so its ready time is known (and recorded)
/// from the start: a benchmark can compute the ideal makespan of a run exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BilledJob {
    /// Kind of job.
    pub kind: JobKind,
    /// Its id (`resp_…`, a Suno `taskId`, a Creatomate render id).
    pub id: String,
    /// `seq` of the request that created it.
    pub request_seq: u64,
    /// Attempt number of that request on its route.
    pub attempt: u64,
    /// When it was created: real milliseconds since the simulator started.
    pub at_ms: u64,
    /// When it was created: virtual seconds since the simulator started (`None` when
    /// `time_scale` is 0, where virtual time does not pass).
    #[serde(default)]
    pub created_virtual_s: Option<f64>,
    /// Virtual seconds from creation until its result is available: Suno, both tracks'
    /// downloadable files (the end of the task); Creatomate, the render `succeeded`; OpenAI,
    /// 0 for a `completed` response. `None` when the job never produces a result (a failed
    /// task or render, a `failed` or `incomplete` response).
    #[serde(default)]
    pub ready_after_virtual_s: Option<f64>,
    /// When its result is available: real milliseconds since the simulator started
    /// (`at_ms` plus `ready_after_virtual_s × time_scale`, from the exact creation instant).
    #[serde(default)]
    pub ready_at_ms: Option<u64>,
    /// When its result is available: virtual seconds since the simulator started.
    #[serde(default)]
    pub ready_virtual_s: Option<f64>,
    /// The status the job ends in, as the service reports it: Suno `SUCCESS`,
    /// `CALLBACK_EXCEPTION`, `GENERATE_AUDIO_FAILED`, `FAILED`, …; Creatomate `succeeded` or
    /// `failed`; OpenAI `completed`, `incomplete` or `failed`.
    #[serde(default)]
    pub final_status: String,
    /// Creatomate: `modifications` keys that matched no element (or no property of the
    /// named element) and were ignored, as Creatomate v1 does silently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_modifications: Vec<String>,
    /// Creatomate: the subtitle lines the render shows, from text elements whose
    /// `transcript_source` was set to keyframes (the render's own word timings), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtitles: Vec<SubtitleLine>,
    /// OpenAI: the request's `store`, as sent (`None` = absent, upstream default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// OpenAI: the request's `max_output_tokens`, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
}

/// One subtitle line a Creatomate render shows: a `sentence` of `transcript_source` keyframes
/// (or one keyframe without a sentence), placed on the video's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubtitleLine {
    /// The text element that shows it (e.g. `Captions`).
    pub element: String,
    /// Its words (the keyframes' values, joined by spaces).
    pub text: String,
    /// When it appears: seconds from the start of the video (the element's `time` plus its
    /// first keyframe's).
    pub time: f64,
    /// How long it shows: from its first keyframe's `time` to the end of its last.
    pub duration: f64,
    /// How many keyframes (words) it has.
    pub words: usize,
}

/// One callback (Suno `callBackUrl`) or webhook (Creatomate `webhook_url`) delivery: an
/// attempt that was made, or a delivery that a scenario withheld (`dropped`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallbackRecord {
    /// Global 1-based number, in the order deliveries were attempted (or withheld).
    pub seq: u64,
    /// `suno` or `creatomate`.
    pub service: Upstream,
    /// The Suno task id or Creatomate render id the delivery is about.
    pub job_id: String,
    /// Suno: the `callbackType` (`text`, `first`, `complete`, `error`); Creatomate: the
    /// render status delivered (`succeeded`, `failed`).
    pub stage: String,
    /// Path of the target URL, without scheme, host or query (e.g. `/hooks/suno/j1/tok`).
    pub path: String,
    /// 1 for the original delivery, 2 for a scripted duplicate.
    pub copy: u32,
    /// 1 for the first try; Suno retries a failed delivery up to
    /// [`SUNO_CALLBACK_RETRIES`](crate::SUNO_CALLBACK_RETRIES) times (2, 3, 4).
    pub attempt: u32,
    /// Sent [`late_by_s`](crate::CallbackFaults::late_by_s) virtual seconds after its stage.
    pub late: bool,
    /// Held back until after the job's next callback.
    pub out_of_order: bool,
    /// Never sent (scripted drop, or Suno stopped after an earlier callback's retries
    /// failed; `error` says which). `status` is then `None`.
    pub dropped: bool,
    /// Virtual seconds after the job's creation at which its stage happened.
    pub stage_virtual_s: f64,
    /// Real milliseconds since the simulator started when it was sent (or withheld).
    pub at_ms: u64,
    /// HTTP status the receiver answered; `None` while in flight, on errors and for drops.
    pub status: Option<u16>,
    /// Why no status: connection error, timeout, a URL that is not `http://`, or a drop.
    pub error: Option<String>,
}

impl CallbackRecord {
    /// Whether the receiver answered with a 2xx status.
    pub fn is_delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A snapshot of everything recorded so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Every request, in arrival order.
    pub requests: Vec<RequestRecord>,
    /// Every billed job, in creation order.
    pub jobs: Vec<BilledJob>,
    /// OpenAI responses generated.
    pub openai_responses: u64,
    /// Suno tasks created.
    pub suno_tasks: u64,
    /// Creatomate renders created.
    pub creatomate_renders: u64,
    /// Request count per endpoint, keyed like `"POST /api/v1/generate"`.
    pub requests_per_route: BTreeMap<String, u64>,
    /// Rate-limit refusals answered per endpoint (same keys; see
    /// [`RequestRecord::rate_limited`]). Routes without refusals are absent.
    #[serde(default)]
    pub rate_limited_per_route: BTreeMap<String, u64>,
    /// Every callback and webhook delivery, attempted or withheld, in order.
    #[serde(default)]
    pub callbacks: Vec<CallbackRecord>,
}

impl Ledger {
    /// Requests of one route.
    pub fn requests_for(&self, route: RouteId) -> impl Iterator<Item = &RequestRecord> {
        self.requests.iter().filter(move |r| r.route == route)
    }

    /// Number of requests of one route.
    pub fn count(&self, route: RouteId) -> u64 {
        self.requests_per_route
            .get(route.endpoint())
            .copied()
            .unwrap_or(0)
    }

    /// Fault labels of one route's requests in order (`None` = no fault).
    pub fn faults_for(&self, route: RouteId) -> Vec<Option<String>> {
        self.requests_for(route).map(|r| r.fault.clone()).collect()
    }

    /// Billed jobs of one kind.
    pub fn jobs_of(&self, kind: JobKind) -> impl Iterator<Item = &BilledJob> {
        self.jobs.iter().filter(move |j| j.kind == kind)
    }

    /// A billed job by id.
    pub fn job(&self, id: &str) -> Option<&BilledJob> {
        self.jobs.iter().find(|j| j.id == id)
    }

    /// Rate-limit refusals answered on one route.
    pub fn rate_limited(&self, route: RouteId) -> u64 {
        self.rate_limited_per_route
            .get(route.endpoint())
            .copied()
            .unwrap_or(0)
    }

    /// Rate-limit refusals answered on all routes.
    pub fn rate_limited_total(&self) -> u64 {
        self.rate_limited_per_route.values().sum()
    }

    /// Callback deliveries about one job, in order.
    pub fn callbacks_for<'a>(
        &'a self,
        job_id: &'a str,
    ) -> impl Iterator<Item = &'a CallbackRecord> {
        self.callbacks.iter().filter(move |c| c.job_id == job_id)
    }
}

/// Response extension: whether an answer is a rate-limit refusal, set by whoever builds a
/// refusal (`true`) or a 429 that is not one (`false`: quota, credits). Unmarked answers
/// count as refusals when their status is 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateLimitMark(pub(crate) bool);

/// Response extension: the Suno envelope `code` of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EnvelopeCode(pub(crate) u16);

/// What the ledger keeps about an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AnswerFacts {
    pub(crate) status: Option<u16>,
    pub(crate) rate_limited: bool,
    pub(crate) body_code: Option<u16>,
}

/// The mutable book behind [`Ledger`].
#[derive(Debug, Default)]
pub(crate) struct LedgerBook {
    ledger: Ledger,
}

impl LedgerBook {
    pub(crate) fn start_request(
        &mut self,
        route: RouteId,
        path: &str,
        attempt: u64,
        fault: Option<String>,
        at_ms: u64,
    ) -> u64 {
        let seq = self.ledger.requests.len() as u64 + 1;
        self.ledger.requests.push(RequestRecord {
            seq,
            route,
            endpoint: route.endpoint().to_owned(),
            path: path.to_owned(),
            attempt,
            fault,
            status: None,
            job_id: None,
            at_ms,
            rate_limited: false,
            body_code: None,
        });
        *self
            .ledger
            .requests_per_route
            .entry(route.endpoint().to_owned())
            .or_default() += 1;
        seq
    }

    pub(crate) fn finish_request(&mut self, seq: u64, facts: AnswerFacts) {
        let Some(r) = self.ledger.requests.get_mut(seq as usize - 1) else {
            return;
        };
        r.status = facts.status;
        r.body_code = facts.body_code;
        r.rate_limited = facts.rate_limited;
        if facts.rate_limited {
            *self
                .ledger
                .rate_limited_per_route
                .entry(r.endpoint.clone())
                .or_default() += 1;
        }
    }

    /// Records a billed job (its `attempt` is taken from its request) and links the request
    /// to it.
    pub(crate) fn bill(&mut self, mut job: BilledJob) {
        job.attempt = match self.ledger.requests.get_mut(job.request_seq as usize - 1) {
            Some(r) => {
                r.job_id = Some(match r.job_id.take() {
                    Some(prev) => format!("{prev},{}", job.id),
                    None => job.id.clone(),
                });
                r.attempt
            }
            None => 0,
        };
        match job.kind {
            JobKind::OpenaiResponse => self.ledger.openai_responses += 1,
            JobKind::SunoTask => self.ledger.suno_tasks += 1,
            JobKind::CreatomateRender => self.ledger.creatomate_renders += 1,
        }
        self.ledger.jobs.push(job);
    }

    /// Appends a callback record (its `seq` is assigned here) and returns that `seq`.
    pub(crate) fn start_callback(&mut self, mut record: CallbackRecord) -> u64 {
        let seq = self.ledger.callbacks.len() as u64 + 1;
        record.seq = seq;
        self.ledger.callbacks.push(record);
        seq
    }

    /// Sets the outcome of an attempted callback.
    pub(crate) fn finish_callback(&mut self, seq: u64, status: Option<u16>, error: Option<String>) {
        if let Some(c) = self.ledger.callbacks.get_mut(seq as usize - 1) {
            c.status = status;
            c.error = error;
        }
    }

    pub(crate) fn snapshot(&self) -> Ledger {
        self.ledger.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(kind: JobKind, id: &str, request_seq: u64) -> BilledJob {
        BilledJob {
            kind,
            id: id.to_owned(),
            request_seq,
            attempt: 0,
            at_ms: 1,
            created_virtual_s: Some(0.001),
            ready_after_virtual_s: Some(150.0),
            ready_at_ms: Some(151),
            ready_virtual_s: Some(150.001),
            final_status: "SUCCESS".to_owned(),
            ignored_modifications: Vec::new(),
            subtitles: Vec::new(),
            store: None,
            max_output_tokens: None,
        }
    }

    #[test]
    fn records_and_bills() {
        let mut book = LedgerBook::default();
        let s1 = book.start_request(RouteId::SunoGenerate, "/api/v1/generate", 1, None, 0);
        book.bill(job(JobKind::SunoTask, "t1", s1));
        book.finish_request(
            s1,
            AnswerFacts {
                status: Some(200),
                rate_limited: false,
                body_code: Some(200),
            },
        );
        let s2 = book.start_request(
            RouteId::SunoGenerate,
            "/api/v1/generate",
            2,
            Some("outage".into()),
            2,
        );
        book.finish_request(
            s2,
            AnswerFacts {
                status: Some(200),
                rate_limited: true,
                body_code: Some(430),
            },
        );
        let l = book.snapshot();
        assert_eq!(l.suno_tasks, 1);
        assert_eq!(l.count(RouteId::SunoGenerate), 2);
        assert_eq!(l.requests_per_route["POST /api/v1/generate"], 2);
        assert_eq!(l.requests[0].job_id.as_deref(), Some("t1"));
        assert_eq!(l.jobs[0].attempt, 1);
        assert_eq!(l.job("t1").unwrap().ready_at_ms, Some(151));
        assert_eq!(
            l.faults_for(RouteId::SunoGenerate),
            vec![None, Some("outage".into())]
        );
        assert_eq!(l.rate_limited(RouteId::SunoGenerate), 1);
        assert_eq!(l.rate_limited(RouteId::SunoRecordInfo), 0);
        assert_eq!(l.rate_limited_total(), 1);
        assert_eq!(l.requests[1].body_code, Some(430));
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["requests"][0]["route"], "suno.generate");
        assert_eq!(json["jobs"][0]["kind"], "suno_task");
        assert_eq!(json["rate_limited_per_route"]["POST /api/v1/generate"], 1);
        let back: Ledger = serde_json::from_value(json).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn callbacks_are_numbered_and_finished() {
        let mut book = LedgerBook::default();
        let record = CallbackRecord {
            seq: 0,
            service: Upstream::Suno,
            job_id: "t1".into(),
            stage: "text".into(),
            path: "/hook".into(),
            copy: 1,
            attempt: 1,
            late: false,
            out_of_order: false,
            dropped: false,
            stage_virtual_s: 20.0,
            at_ms: 5,
            status: None,
            error: None,
        };
        let a = book.start_callback(record.clone());
        let b = book.start_callback(record);
        book.finish_callback(b, Some(200), None);
        let l = book.snapshot();
        assert_eq!((a, b), (1, 2));
        assert!(!l.callbacks[0].is_delivered());
        assert!(l.callbacks[1].is_delivered());
        assert_eq!(l.callbacks_for("t1").count(), 2);
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["callbacks"][0]["service"], "suno");
    }
}
