//! The `nats` sink: audit events published to a NATS JetStream stream.
//!
//! Settings, in `[audit.nats]` (unknown keys are refused):
//!
//! ```toml
//! [audit.nats]
//! url = "nats://127.0.0.1:4222"
//! stream = "OMS_AUDIT"          # the JetStream stream that stores the events
//! subject = "oms.audit"         # the subject each event is published on
//! create_stream = true          # create the stream (capturing `subject`) if missing
//! ack_timeout_ms = 5000         # how long to wait for the stream's acknowledgements
//! ```
//!
//! Each event is one message (its JSON) with the header `Nats-Msg-Id` set
//! to the event id. A batch is published whole and then every publish
//! acknowledgement is awaited: `write_batch` succeeds only when the stream
//! has stored every event. Anything else (no connection, no stream, an ack
//! timing out) fails the batch, and the audit pipeline retries it and
//! finally spills it to disk. A retried batch may republish events the
//! stream already holds; within the stream's duplicate window (2 minutes
//! by default) JetStream drops them by `Nats-Msg-Id`, and after it the
//! event `id` still identifies them.
//!
//! Plain `nats://` only: this build has no TLS.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_trait::async_trait;
use futures::FutureExt;
use futures::future::BoxFuture;
use oms_core::audit::{AuditError, AuditEvent, AuditSink};
use oms_core::config::{Config, ConfigIssue};
use oms_core::plugin::{PluginError, PluginKind, SinkContext, SinkPlugin};
use serde::{Deserialize, Serialize};

/// The plugin name, and the name of its settings table `[audit.nats]`.
pub const NAME: &str = "nats";

/// Acknowledgements awaited at most at once by one batch: a larger batch
/// is published in chunks of this size.
const CHUNK: usize = 1_000;

/// `[audit.nats]`.
///
/// ```
/// use oms_plugins::audit::nats::NatsSinkConfig;
/// let config = NatsSinkConfig::default();
/// assert_eq!(config.url, "nats://127.0.0.1:4222");
/// assert_eq!(config.stream, "OMS_AUDIT");
/// assert_eq!(config.subject, "oms.audit");
/// assert!(config.create_stream);
/// assert_eq!(config.ack_timeout_ms, 5000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSinkConfig {
    /// The server, `nats://host:port`. Default `nats://127.0.0.1:4222`.
    pub url: String,
    /// The JetStream stream name (no spaces, `.`, `*` or `>`). Default
    /// `OMS_AUDIT`.
    pub stream: String,
    /// The subject events are published on (no wildcards). Default
    /// `oms.audit`.
    pub subject: String,
    /// Create the stream, capturing `subject`, when it does not exist.
    /// Default `true`.
    pub create_stream: bool,
    /// How long to wait for the connection and for each batch's
    /// acknowledgements, 1 to 600000. Default 5000.
    pub ack_timeout_ms: u64,
}

impl Default for NatsSinkConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: "OMS_AUDIT".to_owned(),
            subject: "oms.audit".to_owned(),
            create_stream: true,
            ack_timeout_ms: 5_000,
        }
    }
}

impl NatsSinkConfig {
    /// Every rule this table breaks, each naming its key.
    pub fn issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut issue = |key: &str, value: String, allowed: &str| {
            issues.push(ConfigIssue {
                key: format!("audit.{NAME}.{key}"),
                value,
                allowed: allowed.to_owned(),
            });
        };
        match self.url.strip_prefix("nats://") {
            Some(rest) if !rest.is_empty() && !rest.contains(char::is_whitespace) => {}
            _ => issue(
                "url",
                format!("{:?}", self.url),
                "must be nats://host:port (TLS is not built in)",
            ),
        }
        if self.stream.is_empty()
            || self
                .stream
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
        {
            issue(
                "stream",
                format!("{:?}", self.stream),
                "must be a non-empty stream name without spaces, '.', '*', '>', '/' or '\\'",
            );
        }
        if self.subject.is_empty()
            || self.subject.contains(char::is_whitespace)
            || self
                .subject
                .split('.')
                .any(|t| t.is_empty() || t == "*" || t == ">")
        {
            issue(
                "subject",
                format!("{:?}", self.subject),
                "must be a subject like \"oms.audit\": dot-separated, no empty tokens, no wildcards or spaces",
            );
        }
        if !(1..=600_000).contains(&self.ack_timeout_ms) {
            issue(
                "ack_timeout_ms",
                self.ack_timeout_ms.to_string(),
                "must be between 1 and 600000",
            );
        }
        issues
    }
}

/// Publishes each event to a JetStream subject and awaits the acks.
#[derive(Debug)]
pub struct NatsAuditSink {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    subject: String,
}

fn write_err(err: impl std::fmt::Display) -> AuditError {
    AuditError::Write {
        sink: NAME.to_owned(),
        message: err.to_string(),
    }
}

impl NatsAuditSink {
    /// Connects to `config.url` (waiting at most `ack_timeout_ms`) and,
    /// with `create_stream`, creates the stream if it does not exist.
    ///
    /// # Errors
    /// A message naming the key at fault (`audit.nats.url` when the server
    /// does not answer, `audit.nats.stream` when the stream cannot be
    /// created).
    pub async fn connect(config: &NatsSinkConfig) -> Result<Self, String> {
        let timeout = Duration::from_millis(config.ack_timeout_ms.max(1));
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(timeout)
            .connect(config.url.as_str())
            .await
            .map_err(|err| format!("audit.{NAME}.url = {:?}: {err}", config.url))?;
        // No backpressure: a publish beyond the in-flight limit fails the
        // batch (which the pipeline retries) instead of waiting on permits
        // that only this batch's own acks would release.
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .max_ack_inflight(16 * CHUNK)
            .backpressure_on_inflight(false)
            .build(client.clone());
        if config.create_stream {
            jetstream
                .get_or_create_stream(jetstream::stream::Config {
                    name: config.stream.clone(),
                    subjects: vec![config.subject.clone()],
                    ..Default::default()
                })
                .await
                .map_err(|err| {
                    format!(
                        "audit.{NAME}.stream = {:?} (subject {:?}): cannot create: {err}",
                        config.stream, config.subject
                    )
                })?;
        }
        Ok(Self {
            client,
            jetstream,
            subject: config.subject.clone(),
        })
    }
}

#[async_trait]
impl AuditSink for NatsAuditSink {
    fn name(&self) -> &str {
        NAME
    }

    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        for chunk in events.chunks(CHUNK) {
            let mut acks = Vec::with_capacity(chunk.len());
            for event in chunk {
                let payload = serde_json::to_vec(event).map_err(write_err)?;
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", event.id.to_string().as_str());
                let ack = self
                    .jetstream
                    .publish_with_headers(self.subject.clone(), headers, payload.into())
                    .await
                    .map_err(|err| write_err(format!("publish to {}: {err}", self.subject)))?;
                acks.push(ack);
            }
            for result in futures::future::join_all(acks.into_iter().map(|a| a.into_future())).await
            {
                result.map_err(|err| write_err(format!("ack from {}: {err}", self.subject)))?;
            }
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), AuditError> {
        // Every written batch was acknowledged already; this only pushes
        // out anything still buffered in the client.
        self.client.flush().await.map_err(write_err)
    }
}

/// Reads and checks `[audit.nats]`.
fn settings(config: &Config) -> Result<NatsSinkConfig, Vec<ConfigIssue>> {
    let settings: NatsSinkConfig = config
        .audit
        .plugin_settings(NAME)
        .map_err(|issue| vec![issue])?;
    let issues = settings.issues();
    if issues.is_empty() {
        Ok(settings)
    } else {
        Err(issues)
    }
}

fn check(config: &Config) -> Result<(), Vec<ConfigIssue>> {
    settings(config).map(drop)
}

fn build<'a>(ctx: &'a SinkContext<'a>) -> BoxFuture<'a, Result<Arc<dyn AuditSink>, PluginError>> {
    async move {
        let settings = settings(ctx.config).map_err(|issues| PluginError::Settings {
            kind: PluginKind::AuditSink,
            name: NAME.to_owned(),
            issues,
        })?;
        let sink =
            NatsAuditSink::connect(&settings)
                .await
                .map_err(|message| PluginError::Build {
                    kind: PluginKind::AuditSink,
                    name: NAME.to_owned(),
                    message,
                })?;
        Ok(Arc::new(sink) as Arc<dyn AuditSink>)
    }
    .boxed()
}

inventory::submit! {
    SinkPlugin {
        name: NAME,
        description: "audit events published to a NATS JetStream stream, one message per event, acks awaited per batch",
        settings: oms_core::plugin::defaults_of::<NatsSinkConfig>,
        check: Some(check),
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_keys() {
        assert!(NatsSinkConfig::default().issues().is_empty());
        let bad = NatsSinkConfig {
            url: "http://x".into(),
            stream: "a.b".into(),
            subject: "oms.*".into(),
            create_stream: true,
            ack_timeout_ms: 0,
        };
        let keys: Vec<_> = bad.issues().into_iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            [
                "audit.nats.url",
                "audit.nats.stream",
                "audit.nats.subject",
                "audit.nats.ack_timeout_ms"
            ]
        );
    }
}
