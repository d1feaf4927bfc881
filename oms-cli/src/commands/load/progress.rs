//! The live progress bar on stderr: requests, rate, p99 so far, errors.
//! Only drawn when stderr is a terminal (and not `--quiet`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use super::config::Stop;
use super::results::{fmt_count, fmt_int, fmt_ms};
use super::stats::Live;

const TICK: Duration = Duration::from_millis(250);

/// A running progress bar.
pub(crate) struct Progress {
    bar: ProgressBar,
    done: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts drawing; the bar tracks time (`--duration`) or requests.
    pub(crate) fn start(live: Arc<Live>, t0: Instant, warmup: Duration, stop: Stop) -> Self {
        let (len, by_time) = match stop {
            Stop::Duration(d) => (
                u64::try_from((warmup + d).as_millis()).unwrap_or(u64::MAX),
                true,
            ),
            Stop::Requests(n) => (n, false),
        };
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
        let template = if by_time {
            "{spinner:.green} {elapsed_precise} [{bar:30.cyan/blue}] {percent:>3}%  {msg}"
        } else {
            "{spinner:.green} {elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len}  {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        let done = Arc::new(AtomicBool::new(false));
        let task = {
            let bar = bar.clone();
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let measure_start = t0 + warmup;
                let mut ticker = tokio::time::interval(TICK);
                // The rate is over the last second (four ticks).
                let mut window = std::collections::VecDeque::from([(Instant::now(), 0u64)]);
                while !done.load(Ordering::Relaxed) {
                    ticker.tick().await;
                    let now = Instant::now();
                    let completed = live.completed.load(Ordering::Relaxed);
                    let errors = live.errors.load(Ordering::Relaxed);
                    let (then, before) = window.front().copied().unwrap_or((now, completed));
                    let dt = now.duration_since(then).as_secs_f64();
                    let rate = if dt > 0.0 {
                        completed.saturating_sub(before) as f64 / dt
                    } else {
                        0.0
                    };
                    window.push_back((now, completed));
                    if window.len() > 4 {
                        window.pop_front();
                    }
                    if by_time {
                        bar.set_position(
                            u64::try_from(now.duration_since(t0).as_millis())
                                .unwrap_or(u64::MAX)
                                .min(len),
                        );
                    } else {
                        bar.set_position(completed.min(len));
                    }
                    if now < measure_start {
                        bar.set_message("warming up");
                    } else {
                        let p99 = live
                            .p99_so_far()
                            .map_or_else(|| "-".to_owned(), |us| fmt_ms(us as f64));
                        bar.set_message(format!(
                            "{} req  {}/s  p99 {p99}  {} errors",
                            fmt_int(completed),
                            fmt_count(rate.round()),
                            fmt_int(errors)
                        ));
                    }
                }
            })
        };
        Self { bar, done, task }
    }

    /// Stops and erases the bar.
    pub(crate) async fn finish(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.bar.finish_and_clear();
    }
}
