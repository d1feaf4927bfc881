//! Configuration errors: every problem names its key, the value and the rule.

use std::fmt;

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key, e.g. `database.max_connections`.
    pub key: String,
    /// The offending value as the user wrote it (or as it was merged).
    pub value: String,
    /// What is allowed, e.g. `must be >= database.min_connections (5)`.
    pub allowed: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: {}", self.key, self.value, self.allowed)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The layers could not be parsed or deserialised (syntax, unknown key,
    /// wrong type). The message names the key and where it came from.
    #[error("invalid configuration:\n{0}")]
    Parse(String),
    /// The values parsed but break one or more rules.
    #[error("invalid configuration:\n{}", .0.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigIssue>),
}

impl ConfigError {
    /// The individual rule violations (empty for parse errors).
    pub fn issues(&self) -> &[ConfigIssue] {
        match self {
            ConfigError::Invalid(issues) => issues,
            ConfigError::Parse(_) => &[],
        }
    }

    pub(crate) fn from_figment(err: figment::Error) -> Self {
        let lines: Vec<String> = err
            .into_iter()
            .map(|e| {
                let key = if e.path.is_empty() {
                    "(top level)".to_owned()
                } else {
                    e.path.join(".")
                };
                let source = e
                    .metadata
                    .as_ref()
                    .map(|m| match &m.source {
                        Some(src) => format!(" (from {} {src})", m.name),
                        None => format!(" (from {})", m.name),
                    })
                    .unwrap_or_default();
                format!("  - {key}: {}{source}", e.kind)
            })
            .collect();
        ConfigError::Parse(lines.join("\n"))
    }
}
