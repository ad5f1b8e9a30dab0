//! The shared backend: one PostgreSQL database for any number of replicas.
//!
//! [`Postgres`] keeps a pool of synchronous `postgres` clients, each with the
//! statements it prepared (see `conn.rs`: a statement is prepared once per
//! connection, not on every run). Every method goes through
//! `Postgres::with`, which takes a pooled connection and runs the work off
//! the async runtime's worker (see `blocking`); the trait API is
//! synchronous, like SQLite's, so callers do not change.
//!
//! Semantics are SQLite's, statement for statement (the SQLite backend is the
//! reference; `tests/store.rs` runs one suite against both): timestamps are
//! text `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), JSON is stored as text, text keys
//! sort bytewise (`COLLATE "C"`, SQLite's `BINARY`).
//!
//! Where several replicas touch the same rows, the statements are upserts or
//! take locks: the migrations run under one advisory lock, and a session's
//! ledger row is locked for the whole reconcile transaction.

mod conn;
mod coordination;
mod inbox;
mod links;
mod mirror;
mod modules;
mod schema;
mod sessions;
mod shadow;
mod status_sync;
#[cfg(test)]
mod testing;

pub use modules::{Listener, MODULES_CHANNEL};
pub use schema::SCHEMA_VERSION;

pub(crate) use conn::{Conn, Queries, Tx};

use super::{CursorStore, StoreError};

use conn::Manager;
use r2d2::{Pool, PooledConnection};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long getting a pooled connection (or opening the first one) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL backend.
pub struct Postgres {
    pool: Pool<Manager>,
    /// The URL with any password replaced by `***`: what logs and errors show.
    display: String,
    /// Connection settings, for connections outside the pool (listeners).
    config: postgres::Config,
    /// This process among the replicas: its id and heartbeat.
    replica: coordination::Replica,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("url", &self.display)
            .field("pool_size", &self.pool.max_size())
            .finish_non_exhaustive()
    }
}

impl Postgres {
    /// Connects to the database at `url` (a `postgres://` URL or a
    /// `key=value` connection string) with a pool of at most `pool_size`
    /// connections, and runs the migrations.
    pub fn open(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let display = redact_url(url);
        let config: postgres::Config = url.parse().map_err(|e| StoreError::open(&display, e))?;
        if pool_size == 0 {
            return Err(StoreError::open(
                &display,
                "the connection pool needs at least one connection",
            ));
        }
        let listen_config = config.clone();
        let manager = Manager::new(config);
        let errors = ConnectErrors {
            url: display.clone(),
            last: Arc::default(),
        };
        let last = errors.last.clone();
        let builder = Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            .error_handler(Box::new(errors));
        // Building waits for the first connection: off the runtime too.
        let pool = blocking(move || builder.build(manager)).map_err(|e| {
            // r2d2's error keeps only a summary of the last failure; the
            // handler kept its causes (refused, authentication failed, ...).
            let cause = last.lock().unwrap_or_else(PoisonError::into_inner).take();
            StoreError::open(&display, cause.unwrap_or_else(|| e.to_string()))
        })?;
        let store = Self {
            pool,
            display,
            config: listen_config,
            replica: coordination::Replica::new(),
        };
        schema::migrate(&store)?;
        Ok(store)
    }

    /// The database's URL, without its password.
    pub fn url(&self) -> &str {
        &self.display
    }

    /// Runs `f` on a pooled connection: the one way every method touches the
    /// database. `op` names the operation in a connection error. The
    /// connection prepares each statement once (see [`conn`]).
    pub(crate) fn with<R: Send>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Conn) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        blocking(|| {
            let mut conn = self.connection(op)?;
            f(&mut conn)
        })
    }

    /// A pooled connection. Call only inside a blocking section.
    fn connection(&self, op: &'static str) -> Result<PooledConnection<Manager>, StoreError> {
        self.pool.get().map_err(|e| StoreError::query(op, e))
    }
}

/// Where blocking database work may run from the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocking {
    /// No async runtime here: run it directly.
    Direct,
    /// A worker of a multi-thread runtime: hand the worker's other tasks
    /// off (`block_in_place`) and run it here.
    InPlace,
    /// A current-thread runtime, which cannot hand its tasks off: run it on
    /// a thread of its own and wait.
    OwnThread,
}

fn blocking_mode() -> Blocking {
    match tokio::runtime::Handle::try_current() {
        Err(_) => Blocking::Direct,
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            Blocking::InPlace
        }
        Ok(_) => Blocking::OwnThread,
    }
}

/// Runs blocking database work `f` from any thread.
///
/// The synchronous `postgres` client drives its connection with a runtime
/// of its own, and starting a runtime on a thread that is inside a tokio
/// runtime panics ("Cannot start a runtime from within a runtime"); even
/// where it did not, a statement would stall every task of the calling
/// worker. So: on a multi-thread runtime's worker, `f` runs inside
/// `block_in_place` (which leaves the runtime context and lets the other
/// workers take this one's tasks); on a current-thread runtime, which has
/// no other worker, `f` runs on a scoped thread of its own and this thread
/// waits for it; outside any runtime, `f` runs directly.
fn blocking<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match blocking_mode() {
        Blocking::Direct => f(),
        Blocking::InPlace => tokio::task::block_in_place(f),
        Blocking::OwnThread => std::thread::scope(|scope| {
            scope
                .spawn(f)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
}

/// What the pool does with a failed connection: logs it with its causes
/// (under the URL without its password), and keeps the last one for
/// [`Postgres::open`]'s error.
#[derive(Debug)]
struct ConnectErrors {
    url: String,
    last: Arc<Mutex<Option<String>>>,
}

impl r2d2::HandleError<postgres::Error> for ConnectErrors {
    fn handle_error(&self, error: postgres::Error) {
        let text = causes(&error);
        tracing::warn!(url = %self.url, error = %text, "cannot connect to PostgreSQL");
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
    }
}

/// `error` and its causes, `: `-separated.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `url` with any password replaced by `***`, for logs and errors: the
/// userinfo password and a `password` parameter of a URL, or the
/// `password` of a `key=value` connection string. A string that is neither
/// is not shown at all.
pub fn redact_url(url: &str) -> String {
    let trimmed = url.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        return redact_uri(trimmed);
    }
    redact_key_values(trimmed).unwrap_or_else(|| "(unreadable connection string)".to_string())
}

fn redact_uri(uri: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(uri) else {
        // Not a URL we can take apart: show the scheme and host part only if
        // no userinfo can hide in it.
        return match uri.split_once("://") {
            Some((scheme, rest)) if !rest.contains('@') && !rest.contains("password") => {
                format!("{scheme}://{rest}")
            }
            Some((scheme, _)) => format!("{scheme}://(unreadable URL)"),
            None => "(unreadable URL)".to_string(),
        };
    };
    if parsed.password().is_some() {
        // Cannot fail: a URL with a password has a host.
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Redacts a `key=value` connection string (values may be single-quoted,
/// with `\` escapes); `None` if it cannot be read.
fn redact_key_values(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        chars.next_if_eq(&'=')?;
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next()? {
                    '\'' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        if key.is_empty() {
            return None;
        }
        if key == "password" {
            out.push("password=***".to_string());
        } else if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '\'') {
            let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
            out.push(format!("{key}='{escaped}'"));
        } else {
            out.push(format!("{key}={value}"));
        }
    }
    Some(out.join(" "))
}

/// Reads column `idx` of `row`, naming `op` on a type mismatch.
pub(crate) fn get<'a, T: postgres::types::FromSql<'a>>(
    row: &'a postgres::Row,
    idx: usize,
    op: &'static str,
) -> Result<T, StoreError> {
    row.try_get(idx).map_err(|e| StoreError::query(op, e))
}

/// How many times a transaction PostgreSQL aborted as a deadlock victim
/// (or a serialization failure) is run again, where running it again is
/// safe.
pub(crate) const RETRIES: u32 = 3;

/// Whether PostgreSQL aborted the transaction behind `error` only because
/// it conflicted with another (deadlock, serialization failure): the
/// transaction was rolled back, and running it again may succeed. SQLite,
/// one writer at a time, never fails this way.
pub(crate) fn transient(error: &StoreError) -> bool {
    use postgres::error::SqlState;
    let StoreError::Query { source, .. } = error else {
        return false;
    };
    source
        .downcast_ref::<postgres::Error>()
        .and_then(postgres::Error::code)
        .is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        })
}

/// Waits before the `attempt`th retry (from 1): a random 10–50 ms per
/// attempt, so the transaction that won can commit and two retries do not
/// meet again.
pub(crate) fn backoff(attempt: u32) {
    let ms = rand::random_range(10..50) * u64::from(attempt);
    std::thread::sleep(Duration::from_millis(ms));
}

/// A `usize` limit as a SQL `LIMIT` (saturating).
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A row count as a `usize` (saturating; counts are never negative).
pub(crate) fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl CursorStore for Postgres {
    fn cursor(&self, tenant: &str, source: &str) -> Result<Option<String>, StoreError> {
        const OP: &str = "read cursor";
        self.with(OP, |c| {
            let row = c
                .query_opt(
                    "SELECT value FROM cursors WHERE tenant = $1 AND source = $2",
                    &[&tenant, &source],
                )
                .map_err(|e| StoreError::query(OP, e))?;
            row.map(|r| get(&r, 0, OP)).transpose()
        })
    }

    fn set_cursor(&self, tenant: &str, source: &str, value: &str) -> Result<(), StoreError> {
        self.with("write cursor", |c| write_cursor(c, tenant, source, value))
    }
}

/// Saves a poller cursor on `conn` (a connection or a transaction).
fn write_cursor(
    conn: &mut impl Queries,
    tenant: &str,
    source: &str,
    value: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO cursors (tenant, source, value, updated_at)
         VALUES ($1, $2, $3, sb_now())
         ON CONFLICT (tenant, source) DO UPDATE
         SET value = excluded.value, updated_at = excluded.updated_at",
        &[&tenant, &source, &value],
    )
    .map(drop)
    .map_err(|e| StoreError::query("write cursor", e))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_password_never_shows() {
        for (url, shown) in [
            (
                "postgres://sb:s3cret@db.example:5432/switchboard",
                "postgres://sb:***@db.example:5432/switchboard",
            ),
            (
                "postgresql://sb@db/x?password=s3cret&sslmode=disable",
                "postgresql://sb@db/x?password=***&sslmode=disable",
            ),
            (
                "postgres://root@127.0.0.1/test",
                "postgres://root@127.0.0.1/test",
            ),
            (
                "host=db user=sb password='s3 cret' dbname=x",
                "host=db user=sb password=*** dbname=x",
            ),
            ("host=db password=s3cret", "host=db password=***"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
        assert!(!redact_url("host=db password='s3cret").contains("s3cret"));
        assert!(!redact_url("postgres://sb:s3cret@[bad/x").contains("s3cret"));
    }
}
