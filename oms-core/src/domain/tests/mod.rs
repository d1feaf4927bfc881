//! Domain tests against a real SQLite file and, when `OMS_TEST_POSTGRES_URL`
//! is set, a fresh PostgreSQL database per test.

pub(crate) mod support;

mod concurrency;
mod idempotency;
mod orders;
mod products;
mod proptests;
mod validation;
