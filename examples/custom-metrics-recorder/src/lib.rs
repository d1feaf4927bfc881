//! A metrics recorder plugin, `status-classes`: everything the built-in
//! recorder does (it wraps it), plus a counter of responses per status
//! class, `oms_example_responses_total{class="2xx"}`, in `/metrics`.
//!
//! ```toml
//! [metrics]
//! recorder = "status-classes"
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use oms_core::config::Config;
use oms_core::metrics::{MetricsRecorder, MetricsSnapshot, RequestRecord};
use oms_core::plugin::{PluginError, RecorderPlugin, no_settings};
use oms_plugins::metrics::BuiltinRecorder;

/// The plugin name `metrics.recorder` selects.
pub const NAME: &str = "status-classes";

/// The built-in recorder plus responses counted by status class.
///
/// ```
/// use oms_core::metrics::{MetricsRecorder, RequestRecord};
/// use std::time::Duration;
/// let recorder = custom_metrics_recorder::StatusClassRecorder::default();
/// recorder.record_request(&RequestRecord {
///     method: "GET", route: "/health", status: 200,
///     duration: Duration::from_millis(1), db_time: Duration::ZERO, db_statements: 0,
/// });
/// let text = recorder.render_prometheus();
/// assert!(text.contains("oms_example_responses_total{class=\"2xx\"} 1"));
/// assert!(text.contains("http_server_requests_total"), "the built-in series are kept");
/// ```
#[derive(Default)]
pub struct StatusClassRecorder {
    inner: BuiltinRecorder,
    /// 1xx..5xx, index = class - 1.
    classes: [AtomicU64; 5],
}

impl MetricsRecorder for StatusClassRecorder {
    fn name(&self) -> &str {
        NAME
    }

    fn record_request(&self, request: &RequestRecord<'_>) {
        // On the request path: one atomic add, then the built-in's work.
        if let Some(counter) = self
            .classes
            .get(usize::from(request.status / 100).wrapping_sub(1))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.record_request(request);
    }

    fn record_statement(&self, elapsed: Duration, failed: bool) {
        self.inner.record_statement(elapsed, failed);
    }

    fn snapshot(&self) -> MetricsSnapshot {
        self.inner.snapshot()
    }

    fn render_prometheus(&self) -> String {
        let mut out = self.inner.render_prometheus();
        out.push_str("# HELP oms_example_responses_total Responses by status class.\n");
        out.push_str("# TYPE oms_example_responses_total counter\n");
        for (i, counter) in self.classes.iter().enumerate() {
            out.push_str(&format!(
                "oms_example_responses_total{{class=\"{}xx\"}} {}\n",
                i + 1,
                counter.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

fn build(_config: &Config) -> Result<Arc<dyn MetricsRecorder>, PluginError> {
    Ok(Arc::new(StatusClassRecorder::default()))
}

inventory::submit! {
    RecorderPlugin {
        name: NAME,
        description: "the built-in recorder plus responses by status class (example)",
        settings: no_settings,
        build,
    }
}
