//! Which databases a test runs on; shared by the root crate's HTTP tests
//! (`tests/common`) and the `oms-cli` process tests (`oms-cli/tests/support`,
//! which includes this file by path).

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to run on: SQLite always, PostgreSQL when
/// `OMS_TEST_POSTGRES_URL` is set. Says plainly when PostgreSQL is skipped.
pub fn backends(test: &str) -> Vec<Backend> {
    if std::env::var("OMS_TEST_POSTGRES_URL").is_ok() {
        vec![Backend::Sqlite, Backend::Postgres]
    } else {
        eprintln!("SKIPPED (PostgreSQL): {test}: OMS_TEST_POSTGRES_URL is not set");
        vec![Backend::Sqlite]
    }
}
