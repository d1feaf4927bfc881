//! Metrics: the [`MetricsRecorder`] plugin trait and the figures it takes
//! and gives, the slow-request log and the system sampler.

mod recorder;
pub mod slow;
pub mod system;

pub use recorder::{MetricsRecorder, MetricsSnapshot, RequestRecord, RouteSnapshot};
pub use slow::{SlowLog, SlowRequest};
pub use system::{SystemMonitor, SystemSnapshot};
