//! A fresh schema on the test PostgreSQL server for the backend's own unit
//! tests, dropped when the test ends: `tests/support/postgres.rs` for the
//! library. The server comes from `SWITCHBOARD_TEST_POSTGRES` (default
//! `postgres://root@127.0.0.1:5432/test`); the test fails when it cannot be
//! reached, as the conformance suite's do.

use super::Postgres;
use postgres::{Client, NoTls};

/// The server's URL.
pub(super) fn base_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "postgres://root@127.0.0.1:5432/test".to_string())
}

fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {}: {e}",
            super::redact_url(url)
        )
    })
}

/// One test's schema.
pub(super) struct TestSchema {
    schema: String,
    base: String,
}

impl TestSchema {
    pub(super) fn new() -> Self {
        let base = base_url();
        let schema = format!("sb_unit_{:016x}", rand::random::<u64>());
        connect(&base)
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create the test schema");
        Self { schema, base }
    }

    /// The URL of the schema (search path set).
    pub(super) fn url(&self) -> String {
        if !self.base.contains("://") {
            return format!("{} options='-csearch_path={}'", self.base, self.schema);
        }
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-csearch_path%3D{}",
            self.base, self.schema
        )
    }

    /// A store on the schema.
    pub(super) fn store(&self) -> Postgres {
        Postgres::open(&self.url(), 2).expect("open the store")
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut client) = Client::connect(&self.base, NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}
