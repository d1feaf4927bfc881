//! Running the load: closed loop (users) and open loop (fixed rate).
//!
//! Every worker owns one keep-alive connection and its own statistics. All
//! workers connect first; the clock starts once they have.
//!
//! Open loop: request `i` is due at `t0 + i / rate`. Workers take the next
//! ticket from a shared counter, sleep until it is due and send it. When
//! every connection is busy the ticket waits, and its latency counts from
//! when it was due, not from when it could be sent: a stalled server shows
//! as latency, not as a lower rate (no coordinated omission). Tickets sent
//! more than `--late-after` after they were due are counted as late; those
//! still waiting when the run ends are counted as unsent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::{Barrier, watch};

use super::client::{Conn, Failure, call};
use super::config::{Mode, Plan, Stop};
use super::fixtures::{self, Fixtures};
use super::progress::Progress;
use super::results::{FixtureInfo, Results, Schedule, Totals};
use super::stats::{self, Live, WorkerStats};
use super::workload::{RequestBase, Session, Workload};

/// Pause after a failed connect, so a dead server is not hammered.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);
/// Open loop: wake this much before a request is due. tokio's timer fires
/// on a millisecond tick at or after its deadline (up to about 2ms after),
/// so this centres send times on the schedule; early sends count from
/// their actual send.
const EARLY: Duration = Duration::from_millis(1);
/// Longest single sleep, so an interrupted run stops promptly.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// The run's clock, fixed once every worker has connected.
#[derive(Debug, Clone, Copy)]
struct Clock {
    t0: Instant,
    measure_start: Instant,
    measure_end: Option<Instant>,
}

struct Shared {
    /// One address per `--target`; worker `i` uses `addrs[i % n]`.
    addrs: Vec<std::net::SocketAddr>,
    workload: Workload,
    mode: Mode,
    stop: Stop,
    timeout: Duration,
    late_after: Duration,
    /// Closed loop: measured requests taken; open loop: schedule tickets.
    tickets: AtomicU64,
    /// Open loop with `--requests`: tickets in all (warmup included).
    total_tickets: Option<u64>,
    /// Completions after this second count in it.
    last_second: Option<u64>,
    halt: AtomicBool,
    live: Arc<Live>,
}

impl Shared {
    /// The server worker `id` talks to: the targets in turn.
    fn addr(&self, id: usize) -> std::net::SocketAddr {
        self.addrs[id % self.addrs.len()]
    }
}

/// Resolves, checks, seeds, runs and measures.
pub(crate) async fn execute(plan: &Plan) -> anyhow::Result<Results> {
    let base = RequestBase::new(plan)?;
    let mut addrs = Vec::with_capacity(plan.targets.len());
    for target in &plan.targets {
        let addr = target.resolve().await?;
        fixtures::preflight(&base, addr, &target.url, plan.timeout).await?;
        addrs.push(addr);
    }
    let addr = *addrs.first().context("no --target")?;
    let fixtures = if plan.products > 0 {
        if plan.progress {
            eprintln!(
                "seeding {} products{} (run {})...",
                plan.products,
                if plan.orders > 0 {
                    format!(" and {} orders", plan.orders)
                } else {
                    String::new()
                },
                plan.run_id
            );
        }
        fixtures::seed(plan, &base, addr)
            .await
            .context("cannot seed the fixtures")?
    } else {
        Fixtures::default()
    };
    let workload = Workload::new(plan, base, &fixtures)?;

    let (total_tickets, last_second) = match (plan.mode, plan.stop) {
        (Mode::Open { rate, .. }, Stop::Requests(n)) => (
            Some(first_due_at_or_after(plan.warmup, rate).saturating_add(n)),
            None,
        ),
        (_, Stop::Duration(d)) => (None, Some(d.as_secs_f64().ceil().max(1.0) as u64 - 1)),
        (Mode::Closed { .. }, Stop::Requests(_)) => (None, None),
    };
    let shared = Arc::new(Shared {
        addrs,
        workload,
        mode: plan.mode,
        stop: plan.stop,
        timeout: plan.timeout,
        late_after: plan.late_after,
        tickets: AtomicU64::new(0),
        total_tickets,
        last_second,
        halt: AtomicBool::new(false),
        live: Arc::new(Live::default()),
    });

    let workers = plan.mode.workers();
    let barrier = Arc::new(Barrier::new(workers + 1));
    let (clock_tx, clock_rx) = watch::channel(None::<Clock>);
    let mut handles = Vec::with_capacity(workers);
    for id in 0..workers {
        let shared = Arc::clone(&shared);
        let barrier = Arc::clone(&barrier);
        let clock_rx = clock_rx.clone();
        handles.push(tokio::spawn(async move {
            let slot = Conn::open(shared.addr(id)).await.ok();
            barrier.wait().await;
            let clock = wait_for_clock(clock_rx).await;
            match (clock, shared.mode) {
                (Some(clock), Mode::Closed { .. }) => closed_user(&shared, id, clock, slot).await,
                (Some(clock), Mode::Open { rate, .. }) => {
                    open_connection(&shared, id, clock, slot, rate).await
                }
                (None, _) => WorkerStats::new(false, shared.late_after, None),
            }
        }));
    }
    drop(clock_rx);
    barrier.wait().await;

    let t0 = Instant::now();
    let measure_start = t0 + plan.warmup;
    let duration = match plan.stop {
        Stop::Duration(d) => Some(d),
        Stop::Requests(_) => None,
    };
    let clock = Clock {
        t0,
        measure_start,
        measure_end: duration.map(|d| measure_start + d),
    };
    let started_at = chrono::Utc::now()
        + chrono::Duration::from_std(plan.warmup).unwrap_or_else(|_| chrono::Duration::zero());
    if clock_tx.send(Some(clock)).is_err() {
        bail!("the load workers stopped before the start");
    }

    let progress = plan
        .progress
        .then(|| Progress::start(Arc::clone(&shared.live), t0, plan.warmup, plan.stop));
    let halted_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let interrupt = {
        let shared = Arc::clone(&shared);
        let halted_at = Arc::clone(&halted_at);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                if let Ok(mut at) = halted_at.lock() {
                    *at = Some(Instant::now());
                }
                shared.halt.store(true, Ordering::Relaxed);
                eprintln!(
                    "\ninterrupted: finishing in-flight requests (Ctrl-C again to quit at once)"
                );
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        })
    };

    let mut stats = Vec::with_capacity(workers);
    for h in handles {
        stats.push(h.await.context("a load worker failed")?);
    }
    interrupt.abort();
    let wall = measure_start.elapsed();
    if let Some(p) = progress {
        p.finish().await;
    }
    let halted_at = halted_at.lock().ok().and_then(|at| *at);
    let merged = stats::merge(stats);

    // The measured time: the whole window for a timed run (a stall is part
    // of it), else up to the last completion.
    let elapsed = match (duration, halted_at) {
        (_, Some(at)) => at
            .saturating_duration_since(measure_start)
            .max(merged.last_done),
        (Some(d), None) => d.max(merged.last_done),
        (None, None) => merged.last_done,
    };
    let elapsed = if elapsed.is_zero() { wall } else { elapsed };

    let schedule = match plan.mode {
        Mode::Open { rate, connections } => {
            let first = first_due_at_or_after(plan.warmup, rate);
            let due_until = match duration {
                Some(d) => plan.warmup + d,
                None => Duration::MAX,
            };
            let due_until = match halted_at {
                Some(at) => due_until.min(at.saturating_duration_since(t0)),
                None => due_until,
            };
            let mut expected = if due_until == Duration::MAX {
                0
            } else {
                first_due_at_or_after(due_until, rate).saturating_sub(first)
            };
            if let Stop::Requests(n) = plan.stop {
                expected = if halted_at.is_some() {
                    expected.min(n)
                } else {
                    n
                };
            }
            let sent = merged.requests;
            // Requests go up to 1ms early: one due just after an interrupt
            // may have gone before it.
            let expected = expected.max(sent);
            Some(Schedule {
                rate,
                connections,
                expected,
                sent,
                late: merged.late,
                unsent: expected.saturating_sub(sent),
                late_after_ms: plan.late_after.as_secs_f64() * 1e3,
                lag: merged.lag.as_ref().map(stats::latency).unwrap_or_default(),
            })
        }
        Mode::Closed { .. } => None,
    };
    let unsent = schedule.as_ref().map_or(0, |s| s.unsent);
    let errors = merged.http_errors + merged.transport_errors;
    let attempted = merged.requests + unsent;
    let totals = Totals {
        requests: merged.requests,
        ok: merged.requests - errors,
        errors,
        http_errors: merged.http_errors,
        transport_errors: merged.transport_errors,
        unsent,
        error_rate: if attempted == 0 {
            0.0
        } else {
            (errors + unsent) as f64 / attempted as f64
        },
        elapsed_s: elapsed.as_secs_f64(),
        rps: if elapsed.is_zero() {
            0.0
        } else {
            merged.requests as f64 / elapsed.as_secs_f64()
        },
        bytes_received: merged.bytes,
        warmup_requests: merged.warmup,
    };
    let min_len = match (duration, halted_at) {
        (Some(_), None) => shared.last_second.map_or(0, |s| s as usize + 1),
        _ => 0,
    };
    Ok(Results {
        tool: "oms-cli load".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        interrupted: halted_at.is_some(),
        config: plan.info(),
        fixtures: FixtureInfo {
            run_id: plan.run_id.clone(),
            sku_prefix: format!("LOAD-{}-", plan.run_id),
            products: fixtures.skus.len(),
            orders: fixtures.order_ids.len(),
            seconds: fixtures.seconds,
        },
        totals,
        latency: stats::latency(&merged.latency),
        distribution: stats::distribution(&merged.latency),
        operations: stats::operations(&merged),
        statuses: merged.statuses.clone(),
        error_codes: merged.codes.clone(),
        transport_errors: merged.transport.clone(),
        server: super::results::ServerSide {
            responses: merged.server.len(),
            response_time: stats::latency(&merged.server),
            db_time: stats::latency(&merged.db),
            distribution: stats::distribution(&merged.server),
        },
        schedule,
        series: shared.live.series(elapsed, min_len),
        thresholds: Vec::new(),
    })
}

async fn wait_for_clock(mut rx: watch::Receiver<Option<Clock>>) -> Option<Clock> {
    rx.wait_for(Option::is_some).await.ok().and_then(|c| *c)
}

fn seed(id: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(nanos)
}

/// One closed-loop user: send, wait for the answer, repeat.
async fn closed_user(
    shared: &Shared,
    id: usize,
    clock: Clock,
    mut slot: Option<Conn>,
) -> WorkerStats {
    let mut stats = WorkerStats::new(false, shared.late_after, shared.last_second);
    let mut session = Session::new(seed(id));
    while !shared.halt.load(Ordering::Relaxed) {
        let now = Instant::now();
        let measured = now >= clock.measure_start;
        if measured {
            if clock.measure_end.is_some_and(|end| now >= end) {
                break;
            }
            if let Stop::Requests(n) = shared.stop
                && shared.tickets.fetch_add(1, Ordering::Relaxed) >= n
            {
                break;
            }
        }
        let planned = session.next(&shared.workload);
        let sent = Instant::now();
        let result = call(
            &mut slot,
            shared.addr(id),
            planned.request,
            planned.keep_body,
            shared.timeout,
        )
        .await;
        let done = Instant::now();
        match &result {
            Ok(reply) => session.observe(Some(reply.status), reply.body.as_deref()),
            Err(_) => session.observe(None, None),
        }
        if measured {
            stats.record(
                &shared.live,
                planned.op,
                done - sent,
                done.saturating_duration_since(clock.measure_start),
                &result,
            );
        } else {
            stats.warmup();
        }
        if matches!(result, Err(Failure::Connect)) {
            tokio::time::sleep(CONNECT_BACKOFF).await;
        }
    }
    stats.finish(&shared.live)
}

/// Where an open-loop request's latency starts. A request that waited for
/// a free connection past its due time counts from its due time: the wait
/// is the server's doing (coordinated omission corrected). A request sent
/// early counts from its send. One whose connection was idle and waited for
/// it (`slept`) counts from its send too: any lateness is the timer's, not
/// the server's (it is still counted as lag, and as late past
/// `--late-after`).
fn latency_start(intended: Instant, sent: Instant, slept: bool) -> Instant {
    if slept { sent } else { intended.min(sent) }
}

/// The scheduled time of request `i`, from `t0`.
fn due(i: u64, rate: f64) -> Duration {
    Duration::try_from_secs_f64(i as f64 / rate).unwrap_or(Duration::MAX)
}

/// The first request index due at or after `at`.
fn first_due_at_or_after(at: Duration, rate: f64) -> u64 {
    let mut k = (at.as_secs_f64() * rate).ceil() as u64;
    while k > 0 && due(k - 1, rate) >= at {
        k -= 1;
    }
    while due(k, rate) < at {
        k += 1;
    }
    k
}

/// One open-loop connection: take the next due request, send it on time.
async fn open_connection(
    shared: &Shared,
    id: usize,
    clock: Clock,
    mut slot: Option<Conn>,
    rate: f64,
) -> WorkerStats {
    let mut stats = WorkerStats::new(true, shared.late_after, shared.last_second);
    let mut session = Session::new(seed(id));
    'tickets: while !shared.halt.load(Ordering::Relaxed) {
        let i = shared.tickets.fetch_add(1, Ordering::Relaxed);
        if shared.total_tickets.is_some_and(|total| i >= total) {
            break;
        }
        let Some(intended) = clock.t0.checked_add(due(i, rate)) else {
            break;
        };
        if clock.measure_end.is_some_and(|end| intended >= end) {
            break;
        }
        let mut slept = false;
        loop {
            let now = Instant::now();
            // Past the end, a request still goes if it is on time (the
            // timer may wake a little late); one already overdue is left:
            // due in the measured phase, never sent, it counts as unsent.
            if clock.measure_end.is_some_and(|end| now >= end)
                && now.saturating_duration_since(intended) > shared.late_after
            {
                break 'tickets;
            }
            if shared.halt.load(Ordering::Relaxed) {
                break 'tickets;
            }
            let wake = intended.checked_sub(EARLY).unwrap_or(intended);
            if wake <= now {
                break;
            }
            slept = true;
            tokio::time::sleep_until((wake.min(now + MAX_SLEEP)).into()).await;
        }
        let measured = intended >= clock.measure_start;
        let planned = session.next(&shared.workload);
        let sent = Instant::now();
        let result = call(
            &mut slot,
            shared.addr(id),
            planned.request,
            planned.keep_body,
            shared.timeout,
        )
        .await;
        let done = Instant::now();
        match &result {
            Ok(reply) => session.observe(Some(reply.status), reply.body.as_deref()),
            Err(_) => session.observe(None, None),
        }
        if measured {
            stats.record_lag(sent.saturating_duration_since(intended));
            stats.record(
                &shared.live,
                planned.op,
                done.saturating_duration_since(latency_start(intended, sent, slept)),
                done.saturating_duration_since(clock.measure_start),
                &result,
            );
        } else {
            stats.warmup();
        }
    }
    stats.finish(&shared.live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_counts_from_the_due_time_when_the_request_had_to_wait() {
        let due = Instant::now();
        let late = due + Duration::from_millis(40);
        let early = due - Duration::from_micros(300);
        assert_eq!(latency_start(due, late, false), due);
        assert_eq!(latency_start(due, early, false), early);
        assert_eq!(latency_start(due, early, true), early);
        assert_eq!(latency_start(due, late, true), late);
    }

    #[test]
    fn schedule_indices() {
        assert_eq!(first_due_at_or_after(Duration::ZERO, 200.0), 0);
        assert_eq!(first_due_at_or_after(Duration::from_secs(2), 200.0), 400);
        assert_eq!(
            first_due_at_or_after(Duration::from_millis(2001), 200.0),
            401
        );
        assert_eq!(first_due_at_or_after(Duration::from_secs(1), 3.0), 3);
        assert_eq!(first_due_at_or_after(Duration::from_millis(1001), 3.0), 4);
        assert_eq!(due(400, 200.0), Duration::from_secs(2));
    }
}
