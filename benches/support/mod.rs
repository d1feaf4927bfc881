//! What the criterion benches share: the SQLite config they start the
//! library with, and the short criterion settings that keep
//! `cargo bench` (and `-- --quick`) inside a couple of minutes.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use criterion::Criterion;
use oms::core::config::Config;

/// The default config on a fresh SQLite file `oms.db` in `dir`.
pub(crate) fn sqlite_config(dir: &Path) -> Config {
    let mut cfg = Config {
        base_dir: dir.to_path_buf(),
        ..Config::default()
    };
    cfg.database.url = Some(format!(
        "sqlite://{}?mode=rwc",
        dir.join("oms.db").display()
    ));
    cfg
}

/// 10 samples, 0.5 s warm-up, 2 s of measurement per function.
pub(crate) fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}
