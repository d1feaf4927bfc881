//! Typed configuration: what a user writes in `oms.toml`.
//!
//! Layering (lowest to highest): built-in defaults, the `oms.toml` file,
//! `OMS_` environment variables (`__` between levels, e.g.
//! `OMS_DATABASE__MAX_CONNECTIONS=40`), then command-line flags
//! ([`Overrides`]). [`Config::load`] merges the layers, rejects unknown keys
//! and checks every value and cross-field rule, reporting all problems at
//! once, each naming its key.
//!
//! ```
//! use oms_core::config::{Config, Overrides};
//!
//! let config = Config::from_toml_str("[server]\nbind = \"127.0.0.1:9000\"\n", &Overrides::default())
//!     .expect("valid config");
//! assert_eq!(config.server.bind.port(), 9000);
//! assert_eq!(config.database.max_connections, 20);
//! ```

mod error;
mod load;
mod sections;
mod validate;

pub use error::{ConfigError, ConfigIssue};
pub use load::Overrides;
pub use sections::*;
pub use validate::redact_url;
