//! The measurements. Every loop is bounded by a count and by time; all traffic is on 127.0.0.1.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use tokio::task::JoinSet;

use crate::alloc;
use crate::contenders::{Contender, Setup, Spawn, Stack};
use crate::report::{
    Amplification, AmplificationRow, HappyPath, HappyRow, Memory, MemoryRow, Overshoot,
    OvershootRow, RetryAfter, RetryAfterRow,
};
use crate::server::{RETRY_AFTER, Server};
use crate::stats::{Spread, rotated};

/// What every scenario shares.
#[derive(Debug)]
pub struct Ctx {
    /// The one `reqwest::Client` every contender uses.
    pub client: reqwest::Client,
    /// The loopback server.
    pub server: Server,
    /// Shortened counts (`--quick`).
    pub quick: bool,
    /// When the run started.
    pub started: Instant,
}

impl Ctx {
    /// A progress line on stderr.
    pub fn progress(&self, message: impl std::fmt::Display) {
        eprintln!("[{:>6.1}s] {message}", self.started.elapsed().as_secs_f64());
    }

    fn stack(&self, setup: Setup) -> anyhow::Result<Arc<Stack>> {
        Ok(Arc::new(Stack::new(
            &self.client,
            &self.server.base,
            setup,
        )?))
    }

    /// `full`, or `quick` in a smoke run.
    fn n(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

const MS: f64 = 1e3;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * MS
}

/// Sequential latency (interleaved batches, rotating order) and throughput at 64 tasks.
pub async fn happy_path(ctx: &Ctx) -> anyhow::Result<HappyPath> {
    const BATCH: usize = 50;
    const TASKS: usize = 64;
    const ROUND: Duration = Duration::from_millis(100);
    let contenders = [
        Contender::Raw,
        Contender::RawAgain,
        Contender::RawTimeout,
        Contender::ReqwestRetry,
        Contender::Backon,
        Contender::Tower,
        Contender::Encore,
        Contender::EncoreGuarded,
        Contender::EncoreClient,
    ];
    let calls = ctx.n(5_000, 500);
    let rounds = ctx.n(24, 3);
    let stack = ctx.stack(
        Setup::new(Duration::from_millis(100), Duration::from_secs(30)).with_client_guards(),
    )?;
    let target = stack.target("fast");
    let guard = Instant::now() + Duration::from_secs(40);

    ctx.progress("happy path: warm-up");
    for c in contenders {
        for _ in 0..200 {
            stack
                .call(c, &target)
                .await
                .map_err(|e| anyhow!("{}: {e}", c.label()))?;
        }
    }

    ctx.progress(format!(
        "happy path: {calls} sequential calls × {} contenders",
        contenders.len()
    ));
    // p50 ratio: per round, each contender's batch median over raw reqwest's batch median in
    // the same round (a few ms apart, so under the same background load), then the median
    // over rounds. p50 and p99 themselves are over all calls.
    let mut latency: HashMap<Contender, Vec<f64>> = HashMap::new();
    let mut round_ratios: HashMap<Contender, Vec<f64>> = HashMap::new();
    for round in 0..calls / BATCH {
        let mut medians = HashMap::new();
        for c in rotated(&contenders, round) {
            let mut batch = Vec::with_capacity(BATCH);
            for _ in 0..BATCH {
                let t0 = Instant::now();
                stack
                    .call(c, &target)
                    .await
                    .map_err(|e| anyhow!("{}: {e}", c.label()))?;
                batch.push(t0.elapsed().as_secs_f64() * 1e6);
            }
            latency.entry(c).or_default().extend_from_slice(&batch);
            medians.insert(c, crate::stats::percentile(&mut batch, 50.0));
        }
        for c in contenders {
            round_ratios
                .entry(c)
                .or_default()
                .push(medians[&c] / medians[&Contender::Raw]);
        }
        ensure!(Instant::now() < guard, "latency loop ran out of time");
    }

    ctx.progress(format!(
        "happy path: throughput, {TASKS} tasks, {rounds} × {} ms per contender",
        ROUND.as_millis()
    ));
    for c in contenders {
        throughput_round(&stack, c, &target, TASKS, Duration::from_millis(100)).await?;
    }
    // The box is shared (other builds run on it), so its speed drifts by tens of percent over
    // seconds: each round runs every contender back to back, and a contender's ratio is the
    // median over rounds of its rate over raw reqwest's rate in the same round.
    let mut done: HashMap<Contender, (u64, u64, f64)> = HashMap::new();
    let mut ratios: HashMap<Contender, Vec<f64>> = HashMap::new();
    for round in 0..rounds {
        let mut rates = HashMap::new();
        for c in rotated(&contenders, round) {
            let (ok, failed, secs) = throughput_round(&stack, c, &target, TASKS, ROUND).await?;
            rates.insert(c, ok as f64 / secs);
            let entry = done.entry(c).or_default();
            entry.0 += ok;
            entry.1 += failed;
            entry.2 += secs;
        }
        for c in contenders {
            ratios
                .entry(c)
                .or_default()
                .push(rates[&c] / rates[&Contender::Raw]);
        }
    }

    let mut p50 = HashMap::new();
    let mut p99 = HashMap::new();
    for (c, samples) in &mut latency {
        let spread = crate::stats::percentile(samples, 50.0);
        p50.insert(*c, spread);
        p99.insert(*c, crate::stats::percentile(samples, 99.0));
    }
    let rate = |c: Contender| {
        let (ok, _, secs) = done[&c];
        ok as f64 / secs
    };
    let raw = Contender::Raw;
    let rows = contenders
        .iter()
        .map(|&c| HappyRow {
            contender: c,
            label: c.label(),
            calls: latency[&c].len(),
            p50_us: p50[&c],
            p99_us: p99[&c],
            p99_ratio: p99[&c] / p99[&raw],
            p50_ratio: median_and_iqr(&round_ratios[&c]).0,
            p50_ratio_iqr: median_and_iqr(&round_ratios[&c]).1,
            throughput: rate(c),
            throughput_ratio: median_and_iqr(&ratios[&c]).0,
            throughput_ratio_iqr: median_and_iqr(&ratios[&c]).1,
            errors: done[&c].1,
        })
        .collect();
    Ok(HappyPath {
        calls_per_contender: calls,
        batch: BATCH,
        tasks: TASKS,
        rounds,
        round_ms: ROUND.as_millis() as u64,
        rows,
    })
}

/// `calls` sequential happy-path calls of one contender and nothing else (for a profiler).
pub async fn profile(ctx: &Ctx, contender: Contender, calls: usize) -> anyhow::Result<()> {
    let stack = ctx.stack(Setup::new(
        Duration::from_millis(100),
        Duration::from_secs(30),
    ))?;
    let target = stack.target("fast");
    let guard = Instant::now() + Duration::from_secs(120);
    let start = Instant::now();
    for i in 0..calls {
        stack
            .call(contender, &target)
            .await
            .map_err(|e| anyhow!("{}: {e}", contender.label()))?;
        if i % 1024 == 0 {
            ensure!(Instant::now() < guard, "profile run ran out of time");
        }
    }
    let elapsed = start.elapsed();
    ctx.progress(format!(
        "{}: {calls} calls in {:.2} s, {:.2} µs per call",
        contender.label(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / calls as f64
    ));
    Ok(())
}

/// The median and the interquartile range of `samples`.
fn median_and_iqr(samples: &[f64]) -> (f64, [f64; 2]) {
    let mut v = samples.to_vec();
    let p = |v: &mut Vec<f64>, q| crate::stats::percentile(v, q);
    (p(&mut v, 50.0), [p(&mut v, 25.0), p(&mut v, 75.0)])
}

/// `tasks` tasks calling back to back for `length`: (successes, failures, seconds).
async fn throughput_round(
    stack: &Arc<Stack>,
    contender: Contender,
    target: &crate::contenders::Target,
    tasks: usize,
    length: Duration,
) -> anyhow::Result<(u64, u64, f64)> {
    const MAX_PER_TASK: u64 = 100_000;
    let start = Instant::now();
    let end = start + length;
    let mut set = JoinSet::new();
    for _ in 0..tasks {
        let (stack, target) = (Arc::clone(stack), target.clone());
        set.spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < end && ok + failed < MAX_PER_TASK {
                match stack.call(contender, &target).await {
                    Ok(()) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        });
    }
    let joined = tokio::time::timeout(length + Duration::from_secs(10), async {
        let (mut ok, mut failed) = (0, 0);
        while let Some(result) = set.join_next().await {
            let (o, f) = result?;
            ok += o;
            failed += f;
        }
        anyhow::Ok((ok, failed))
    })
    .await
    .context("throughput round did not finish")??;
    Ok((joined.0, joined.1, start.elapsed().as_secs_f64()))
}

/// `per_round` calls per contender per round, concurrently, on `slow-{k}`; the starts are
/// staggered (contenders interleaved, order rotating) so that no two calls' timers fire in the
/// same millisecond tick: (contender, elapsed, succeeded).
async fn slow_rounds(
    ctx: &Ctx,
    stack: &Arc<Stack>,
    contenders: &[Contender],
    rounds: usize,
    per_round: usize,
    stagger: Duration,
) -> anyhow::Result<Vec<(Contender, Duration, bool)>> {
    let mut out = Vec::new();
    for round in 0..rounds {
        let mut set = JoinSet::new();
        let order: Vec<Contender> = (0..per_round)
            .flat_map(|k| rotated(contenders, round + k))
            .collect();
        for (i, c) in order.into_iter().enumerate() {
            let stack = Arc::clone(stack);
            let target = stack.target(&format!("slow-{}", c.index()));
            set.spawn(async move {
                tokio::time::sleep(stagger * i as u32).await;
                let t0 = Instant::now();
                let result = stack.call_bounded(c, &target).await;
                (c, t0.elapsed(), result.is_ok())
            });
        }
        let results = tokio::time::timeout(Duration::from_secs(10), async {
            let mut results = Vec::new();
            while let Some(r) = set.join_next().await {
                results.push(r?);
            }
            anyhow::Ok(results)
        })
        .await
        .context("a deadline round did not finish in 10 s")??;
        out.extend(results);
        if round % 10 == 9 {
            ctx.progress(format!("  round {}/{rounds}", round + 1));
        }
    }
    Ok(out)
}

fn overshoot_rows(
    contenders: &[Contender],
    results: &[(Contender, Duration, bool)],
    bound: Duration,
    requests: &HashMap<Contender, u64>,
    mechanism: impl Fn(Contender) -> &'static str,
) -> Vec<OvershootRow> {
    contenders
        .iter()
        .map(|&c| {
            let mine: Vec<_> = results.iter().filter(|r| r.0 == c).collect();
            let mut over: Vec<f64> = mine.iter().map(|r| ms(r.1) - ms(bound)).collect();
            let unexpected = mine.iter().filter(|r| r.2).count();
            let calls = mine.len().max(1) as f64;
            OvershootRow {
                contender: c,
                label: c.label(),
                mechanism: mechanism(c),
                overshoot_ms: Spread::of(&mut over),
                attempts_per_call: requests.get(&c).copied().unwrap_or(0) as f64 / calls,
                unexpected,
            }
        })
        .collect()
}

fn slow_counts(ctx: &Ctx, contenders: &[Contender]) -> HashMap<Contender, u64> {
    contenders
        .iter()
        .map(|&c| (c, ctx.server.state.slow_requests(c.index())))
        .collect()
}

fn delta(
    before: &HashMap<Contender, u64>,
    after: &HashMap<Contender, u64>,
) -> HashMap<Contender, u64> {
    after.iter().map(|(c, a)| (*c, a - before[c])).collect()
}

/// A 200 ms overall deadline against an endpoint that answers after 2 s.
pub async fn deadline(ctx: &Ctx) -> anyhow::Result<Overshoot> {
    let bound = Duration::from_millis(200);
    let contenders = [
        Contender::Raw,
        Contender::ReqwestRetry,
        Contender::Backon,
        Contender::Tower,
        Contender::Encore,
        Contender::EncoreClient,
    ];
    let (rounds, per_round) = (ctx.n(30, 4), ctx.n(5, 2));
    ctx.progress(format!(
        "deadline: 200 ms deadline vs 2 s endpoint, {rounds} rounds × {per_round} calls each"
    ));
    let stack = ctx.stack(Setup::new(Duration::from_millis(10), bound).with_deadline(bound))?;
    let before = slow_counts(ctx, &contenders);
    let stagger = Duration::from_millis(3);
    let results = slow_rounds(ctx, &stack, &contenders, rounds, per_round, stagger).await?;
    let requests = delta(&before, &slow_counts(ctx, &contenders));
    Ok(Overshoot {
        description: format!(
            "DEADLINE  200 ms overall deadline, endpoint answers after 2 s ({} calls each): elapsed − 200 ms",
            rounds * per_round
        ),
        bound_ms: ms(bound),
        rows: overshoot_rows(&contenders, &results, bound, &requests, |c| match c {
            Contender::Raw => "reqwest RequestBuilder::timeout",
            Contender::Encore => "RetryPolicy::deadline",
            Contender::EncoreClient => "endpoint deadline in Config",
            _ => "tokio::time::timeout around the call",
        }),
    })
}

/// Four attempts that each hit a 50 ms per-attempt timeout, with waits of 10, 20 and 40 ms.
pub async fn attempts(ctx: &Ctx) -> anyhow::Result<Overshoot> {
    let per_attempt = Duration::from_millis(50);
    let setup = Setup::new(Duration::from_millis(10), per_attempt);
    let ideal = per_attempt * (setup.max_retries + 1) + setup.waits().sum::<Duration>();
    let contenders = Contender::RETRYING;
    let (rounds, per_round) = (ctx.n(20, 4), ctx.n(4, 2));
    ctx.progress(format!(
        "attempts: 4 × 50 ms timeouts + 10/20/40 ms waits, {rounds} rounds × {per_round} calls each"
    ));
    let stack = ctx.stack(setup)?;
    let before = slow_counts(ctx, &contenders);
    let stagger = Duration::from_millis(3);
    let results = slow_rounds(ctx, &stack, &contenders, rounds, per_round, stagger).await?;
    let requests = delta(&before, &slow_counts(ctx, &contenders));
    Ok(Overshoot {
        description: format!(
            "PER-ATTEMPT TIMEOUT  4 attempts × 50 ms timeout, waits 10/20/40 ms, endpoint answers after 2 s ({} calls each): elapsed − ideal {} ms",
            rounds * per_round,
            ideal.as_millis()
        ),
        bound_ms: ms(ideal),
        rows: overshoot_rows(&contenders, &results, ideal, &requests, |c| match c {
            Contender::Tower => "TimeoutLayer inside RetryLayer",
            Contender::Encore => "RetryPolicy::attempt_timeout",
            Contender::EncoreClient => "endpoint attempt_timeout in Config",
            _ => "reqwest RequestBuilder::timeout per attempt",
        }),
    })
}

/// 429 + `Retry-After: 1`, then 200: the wait each contender observes.
pub async fn retry_after(ctx: &Ctx) -> anyhow::Result<RetryAfter> {
    let contenders = Contender::RETRYING;
    let rounds = ctx.n(4, 1);
    ctx.progress(format!(
        "retry-after: 429 + Retry-After: 1, {rounds} rounds"
    ));
    let stack = ctx.stack(Setup::new(
        Duration::from_millis(10),
        Duration::from_secs(30),
    ))?;
    let mut waits: HashMap<Contender, Vec<f64>> = HashMap::new();
    let mut errors: HashMap<Contender, usize> = HashMap::new();
    for round in 0..rounds {
        let mut set = JoinSet::new();
        for (i, c) in rotated(&contenders, round).into_iter().enumerate() {
            let stack = Arc::clone(&stack);
            let id = format!("ra-{round}-{}", c.index());
            set.spawn(async move {
                tokio::time::sleep(Duration::from_millis(3) * i as u32).await;
                let result = stack.call(c, &stack.target(&id)).await;
                (c, id, result)
            });
        }
        let results = tokio::time::timeout(Duration::from_secs(10), async {
            let mut results = Vec::new();
            while let Some(r) = set.join_next().await {
                results.push(r?);
            }
            anyhow::Ok(results)
        })
        .await
        .context("a Retry-After round did not finish in 10 s")??;
        for (c, id, result) in results {
            if let Err(e) = result {
                ctx.progress(format!("  {}: {e}", c.label()));
                *errors.entry(c).or_default() += 1;
            }
            if let Some(wait) = ctx.server.state.retry_after_wait(&id) {
                waits.entry(c).or_default().push(ms(wait));
            }
        }
    }
    let demanded = ms(RETRY_AFTER);
    let rows = contenders
        .iter()
        .map(|&c| {
            let mut w = waits.remove(&c).unwrap_or_default();
            let spread = Spread::of(&mut w);
            RetryAfterRow {
                contender: c,
                label: c.label(),
                error_ms: spread.median - demanded,
                honoured: spread.n > 0
                    && (spread.min - demanded).abs() <= 5.0
                    && (spread.max - demanded).abs() <= 5.0,
                wait_ms: spread,
                errors: errors.get(&c).copied().unwrap_or(0),
            }
        })
        .collect();
    Ok(RetryAfter {
        demanded_ms: demanded,
        rows,
    })
}

/// A full outage: 20 callers × 10 calls each against an endpoint that always answers 503.
pub async fn amplification(ctx: &Ctx) -> anyhow::Result<Amplification> {
    const CALLERS: usize = 20;
    const CALLS: usize = 10;
    let contenders = [
        Contender::Raw,
        Contender::ReqwestRetry,
        Contender::Backon,
        Contender::Tower,
        Contender::Encore,
        Contender::EncoreGuarded,
        Contender::EncoreBudget,
        Contender::EncoreClient,
    ];
    ctx.progress(format!(
        "amplification: full outage, {CALLERS} callers × {CALLS} calls"
    ));
    let mut rows = Vec::new();
    for c in contenders {
        // A fresh stack per contender: encore's budget and breaker start clean.
        let stack = ctx.stack(
            Setup::new(Duration::from_millis(10), Duration::from_secs(1)).with_client_guards(),
        )?;
        let slot = c.index();
        let target = stack.target(&format!("out-{slot}"));
        let before = ctx.server.state.outage_requests(slot);
        let start = Instant::now();
        let end = start + Duration::from_secs(15);
        let mut set = JoinSet::new();
        for _ in 0..CALLERS {
            let (stack, target) = (Arc::clone(&stack), target.clone());
            set.spawn(async move {
                let mut calls = 0u64;
                while calls < CALLS as u64 && Instant::now() < end {
                    let _ = stack.call(c, &target).await;
                    calls += 1;
                }
                calls
            });
        }
        let calls = tokio::time::timeout(Duration::from_secs(20), async {
            let mut calls = 0;
            while let Some(r) = set.join_next().await {
                calls += r?;
            }
            anyhow::Ok(calls)
        })
        .await
        .context("the outage callers did not finish in 20 s")??;
        let elapsed = start.elapsed();
        let requests = ctx.server.state.outage_requests(slot) - before;
        rows.push(AmplificationRow {
            contender: c,
            label: c.label(),
            calls,
            requests,
            ratio: requests as f64 / calls.max(1) as f64,
            elapsed_ms: ms(elapsed),
            guard: match c {
                Contender::Raw => "no retries at all",
                Contender::EncoreGuarded => {
                    "RetryBudget + CircuitBreaker (the others have no equivalent)"
                }
                Contender::EncoreBudget => "RetryBudget: +20 % of calls, floor 10 retries / 10 s",
                Contender::Tower => {
                    "max retries only (tower's TpsBudget exists but is not wired in)"
                }
                Contender::EncoreClient => "the client's per-service RetryBudget + CircuitBreaker",
                _ => "max retries only",
            },
        });
    }
    Ok(Amplification {
        callers: CALLERS,
        calls_per_caller: CALLS,
        rows,
    })
}

/// Future sizes, and the heap and RSS of 10,000 calls parked at once in a backoff sleep.
pub async fn memory(ctx: &Ctx) -> anyhow::Result<Memory> {
    let parked = ctx.n(10_000, 2_000);
    let rounds = ctx.n(2, 1);
    let sized = ctx.stack(Setup::new(
        Duration::from_millis(100),
        Duration::from_secs(30),
    ))?;
    let fast = sized.target("fast");
    let sizes: Vec<(Contender, usize)> = Contender::ALL
        .iter()
        .filter(|c| **c != Contender::RawAgain && **c != Contender::EncoreBudget)
        .map(|&c| (c, sized.future_size(c, &fast)))
        .collect();
    let backon = sizes
        .iter()
        .find(|(c, _)| *c == Contender::Backon)
        .map_or(1, |(_, s)| *s) as f64;

    let contenders = Contender::RETRYING;
    ctx.progress(format!(
        "memory: {parked} calls parked in backoff, {rounds} rounds × {} contenders",
        contenders.len()
    ));
    let stack = ctx.stack(Setup::new(Duration::from_secs(10), Duration::from_secs(30)))?;
    let target = stack.target("park");
    for c in contenders {
        park(ctx, &stack, c, &target, parked / 5).await?;
    }
    let mut measured: HashMap<Contender, Vec<(f64, f64, usize)>> = HashMap::new();
    for round in 0..rounds {
        for c in rotated(&contenders, round) {
            let m = park(ctx, &stack, c, &target, parked).await?;
            measured.entry(c).or_default().push(m);
        }
    }
    let rows = sizes
        .into_iter()
        .map(|(c, size)| {
            let samples = measured.get(&c);
            let median = |pick: fn(&(f64, f64, usize)) -> f64| {
                samples.map(|s| {
                    let mut v: Vec<f64> = s.iter().map(pick).collect();
                    crate::stats::percentile(&mut v, 50.0)
                })
            };
            MemoryRow {
                contender: c,
                label: c.label(),
                future_bytes: size,
                future_vs_backon: size as f64 / backon,
                heap_per_call: median(|m| m.0),
                rss_mib: median(|m| m.1),
                open_fds: samples.and_then(|s| s.iter().map(|m| m.2).max()),
            }
        })
        .collect();
    Ok(Memory {
        parked_calls: parked,
        rounds,
        rows,
    })
}

/// Spawns `n` calls in waves (so at most one wave holds a connection), waits until every first
/// attempt has been answered, measures, and cancels them: (heap bytes per call, RSS MiB, open
/// file descriptors of the process while they are parked).
async fn park(
    ctx: &Ctx,
    stack: &Arc<Stack>,
    contender: Contender,
    target: &crate::contenders::Target,
    n: usize,
) -> anyhow::Result<(f64, f64, usize)> {
    const WAVE: usize = 250;
    let state = &ctx.server.state;
    let mut handles = Vec::with_capacity(n);
    let seen = state.parked_requests();
    let rss_before = alloc::rss_bytes().unwrap_or(0);
    let start = Instant::now();
    alloc::start();
    let result = async {
        while handles.len() < n {
            let wave = WAVE.min(n - handles.len());
            for _ in 0..wave {
                handles.push(stack.owned(contender, target, Spawn));
            }
            let give_up = Instant::now() + Duration::from_secs(10);
            while state.parked_requests() - seen < handles.len() as u64 {
                if Instant::now() > give_up {
                    bail!(
                        "{}: only {} of {} first attempts arrived",
                        contender.label(),
                        state.parked_requests() - seen,
                        handles.len()
                    );
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        // Let the last answers reach their callers, which then park in the backoff sleep.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }
    .await;
    let heap = alloc::net();
    let rss_after = alloc::rss_bytes().unwrap_or(0);
    alloc::stop();
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    let arrived = state.parked_requests() - seen;
    for handle in &handles {
        handle.abort();
    }
    for handle in handles {
        let _ = handle.await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    result?;
    ensure!(
        arrived == n as u64,
        "{}: {arrived} requests for {n} parked calls (a retry came early)",
        contender.label()
    );
    ensure!(
        start.elapsed() < Duration::from_secs(9),
        "{}: parking took longer than the backoff",
        contender.label()
    );
    Ok((
        heap as f64 / n as f64,
        rss_after.saturating_sub(rss_before) as f64 / (1024.0 * 1024.0),
        fds,
    ))
}
