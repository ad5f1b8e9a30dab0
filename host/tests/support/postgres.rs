//! A fresh PostgreSQL schema per test, dropped when the test ends.
//!
//! The server comes from `SWITCHBOARD_TEST_POSTGRES` (default
//! `postgres://root@127.0.0.1:5432/test`). When it cannot be reached the test
//! fails, naming the URL (without its password): the PostgreSQL tests are
//! part of the suite, not optional.
//!
//! Include it with `#[path = "support/postgres.rs"] mod pg;` and open the
//! store on [`TestDb::url`], whose search path is the fresh schema.
//!
//! The administrative connections run on threads of their own, so the helper
//! also works from inside a tokio runtime (the synchronous `postgres` client
//! cannot run on a runtime's thread).

#![allow(dead_code, reason = "each test crate uses part of the helper")]

use postgres::{Client, NoTls};
use std::time::Duration;

/// The variable naming the test server.
pub const ENV: &str = "SWITCHBOARD_TEST_POSTGRES";

/// The test server when [`ENV`] is unset: local, trust authentication.
pub const DEFAULT_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// One test's schema on the test server.
#[derive(Debug)]
pub struct TestDb {
    /// The server's URL with `search_path` set to [`TestDb::schema`]: what
    /// the store under test opens.
    pub url: String,
    /// The schema's name, `sb_<random hex>`.
    pub schema: String,
    /// The server's URL as configured.
    base: String,
}

impl TestDb {
    /// Creates a fresh schema; panics (failing the test) if the server
    /// cannot be reached.
    pub fn new() -> TestDb {
        let base = base_url();
        let schema = format!("sb_{:016x}", rand::random::<u64>());
        let create = format!("CREATE SCHEMA {schema}");
        on_server(&base, move |client| client.batch_execute(&create));
        let db = TestDb {
            url: with_search_path(&base, &schema),
            schema,
            base,
        };
        // The search path must reach the server, or tests would share
        // `public`.
        let current: Option<String> = db.with_client(|c| {
            c.query_one("SELECT current_schema()", &[])
                .and_then(|row| row.try_get(0))
        });
        assert_eq!(
            current.as_deref(),
            Some(db.schema.as_str()),
            "the test URL's search path did not take effect"
        );
        db
    }

    /// The URL of the schema (search path set).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `f` with a client of its own on this schema, on a thread of its
    /// own; panics on a database error.
    pub fn with_client<R: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, postgres::Error> + Send,
    ) -> R {
        on_server(&self.url, f)
    }

    /// Runs SQL statements on this schema; panics on an error.
    pub fn execute(&self, sql: &str) {
        self.with_client(|c| c.batch_execute(sql));
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let drop_schema = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        let base = self.base.clone();
        // Never panic while dropping (the test may already be failing).
        let _ = std::thread::spawn(move || {
            let mut client = connect(&base).ok()?;
            client.batch_execute(&drop_schema).ok()
        })
        .join();
    }
}

/// The configured server URL.
pub fn base_url() -> String {
    std::env::var(ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string())
}

/// `base` with the server-side `search_path` set to `schema`.
pub fn with_search_path(base: &str, schema: &str) -> String {
    if !base.contains("://") {
        return format!("{base} options='-csearch_path={schema}'");
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-csearch_path%3D{schema}")
}

fn connect(url: &str) -> Result<Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    config.connect(NoTls)
}

/// Connects to `url` and runs `f` on a thread of its own; panics with the
/// documented message if the server is unreachable, or on `f`'s error.
fn on_server<R: Send>(
    url: &str,
    f: impl FnOnce(&mut Client) -> Result<R, postgres::Error> + Send,
) -> R {
    let shown = switchboard::store::postgres::redact_url(url);
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut client = connect(url).unwrap_or_else(|error| {
                    panic!(
                        "PostgreSQL is not reachable at {shown}: {}. The PostgreSQL tests \
                         need it: start it, or point {ENV} at one.",
                        causes(&error)
                    )
                });
                f(&mut client)
                    .unwrap_or_else(|error| panic!("PostgreSQL at {shown}: {}", causes(&error)))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `error` and its causes, `: `-separated.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
