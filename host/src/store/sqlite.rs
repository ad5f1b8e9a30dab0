//! The embedded backend: one SQLite file in WAL mode, durable across
//! `kill -9`, for one process.
//!
//! [`Sqlite`] keeps one connection behind a `std` mutex: SQLite serialises
//! writers anyway, every statement is short and none is held across an
//! `.await`. Callers on the async runtime run it inline; the statements are
//! small enough that a blocking hop would cost more than it saves. Writes
//! share one transaction, committed by a thread of its own a millisecond
//! after the previous commit when the intake waits for it, five otherwise
//! (`commit.rs`); [`Sqlite::durable`] waits for that commit.
//!
//! Copying the write-ahead log back into the database (a checkpoint, with
//! its fsync) runs on a background thread with its own connection every
//! [`CHECKPOINT_EVERY`], never inline in a request; the serving connection
//! checkpoints by itself only as a backstop, past [`WAL_BACKSTOP_PAGES`].
//!
//! One process owns the file: the coordination a shared database needs
//! (customer leases, leaders, module notifications) is granted locally.

mod commit;
mod coordination;
mod inbox;
mod links;
mod mirror;
mod packed;
mod schema;
mod sessions;
mod shadow;
mod status_sync;
mod vfs;

use super::{CursorStore, StoreError, Wait};

pub use commit::SHARED_COMMIT_GAP;
use commit::{Conn, Group};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

pub use commit::COMMIT_GAP;

/// How often the background thread checkpoints the write-ahead log. Each
/// checkpoint writes every page changed since the one before with a
/// `pwrite` of its own: half a second between them writes a page changed
/// by many events once instead of five times (`docs/performance.md`).
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL pages past which the serving connection checkpoints by itself (if
/// the background thread cannot keep up): about 40 MiB.
pub const WAL_BACKSTOP_PAGES: u32 = 10_000;

/// WAL pages past which the log is made to start again from its beginning
/// (about 8 MiB): the commit after the background checkpoint that saw them
/// copies the rest (`commit.rs`).
pub const WAL_RESTART_PAGES: i64 = 2_000;

// Past the backstop SQLite checkpoints inline after every commit, so a
// rewind asked for only beyond it would come too late to help.
const _: () = assert!(WAL_RESTART_PAGES < WAL_BACKSTOP_PAGES as i64);

/// Limits a test can change.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuning {
    /// WAL pages past which the log is made to start again.
    pub restart_pages: i64,
    /// The time between two commits nobody waits for promptly.
    pub shared_gap: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            restart_pages: WAL_RESTART_PAGES,
            shared_gap: SHARED_COMMIT_GAP,
        }
    }
}

/// The SQLite backend.
pub struct Sqlite {
    group: Group,
    /// Stops the checkpoint thread when dropped.
    _checkpoints: Option<Checkpoints>,
    replica: String,
    started_at: String,
}

/// The background checkpoint thread's stop flag.
struct Checkpoints {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Starts the checkpoint thread on its own connection to `path`; past
/// `restart_pages` pages in the log it sets `restart`.
fn checkpoints(
    path: &Path,
    restart: Arc<AtomicBool>,
    restart_pages: i64,
) -> Result<Checkpoints, StoreError> {
    let conn = open_file(path)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || {
            while !flag.load(Ordering::Acquire) {
                // PASSIVE copies what it can without waiting for, or
                // blocking, the serving connection.
                let pages = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    row.get::<_, i64>(1)
                });
                match pages {
                    Ok(pages) if pages > restart_pages => restart.store(true, Ordering::Release),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "background checkpoint failed"),
                }
                std::thread::park_timeout(CHECKPOINT_EVERY);
            }
        })
        .map_err(|e| StoreError::Thread(e.to_string()))?;
    Ok(Checkpoints {
        stop,
        thread: handle.thread().clone(),
    })
}

/// Opens the database file at `path` through the store's VFS, which
/// writes each commit to the write-ahead log in one `pwrite` (`vfs.rs`).
fn open_file(path: &Path) -> Result<Connection, StoreError> {
    let vfs = vfs::register().map_err(|code| {
        StoreError::open(
            path,
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                Some("cannot register the store's SQLite VFS".into()),
            ),
        )
    })?;
    Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), vfs)
        .map_err(|e| StoreError::open(path, e))
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite").finish_non_exhaustive()
    }
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path` and runs the
    /// migrations. `":memory:"` opens a private in-memory database.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path.as_ref(), Tuning::default())
    }

    /// [`Sqlite::open`] with other limits (tests).
    pub(super) fn open_with(path: &Path, tuning: Tuning) -> Result<Self, StoreError> {
        let conn = open_file(path)?;
        let mut store = Self::from_connection(conn, tuning.shared_gap)?;
        // No spilling: a transaction's pages reach the log only with its
        // commit, in one write (`vfs.rs`).
        store
            .conn()
            .execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = {WAL_BACKSTOP_PAGES};
                 PRAGMA cache_spill = OFF;"
            ))
            .map_err(|e| StoreError::query("set the checkpoint backstop", e))?;
        store._checkpoints = Some(checkpoints(
            path,
            store.group.restart_flag(),
            tuning.restart_pages,
        )?);
        Ok(store)
    }

    /// A private in-memory store (tests, the demo).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| StoreError::open(":memory:", e))?;
        Self::from_connection(conn, SHARED_COMMIT_GAP)
    }

    fn from_connection(conn: Connection, shared_gap: Duration) -> Result<Self, StoreError> {
        schema::prepare(&conn)?;
        schema::migrate(&conn)?;
        // Every statement the store runs fits, so none is parsed twice.
        conn.set_prepared_statement_cache_capacity(256);
        Ok(Self {
            group: Group::start(conn, shared_gap)?,
            _checkpoints: None,
            replica: super::coordination::new_replica_id(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }

    /// The connection, for reads (see [`Group::conn`]).
    fn conn(&self) -> MutexGuard<'_, Conn> {
        self.group.conn()
    }

    /// The connection, for writes: inside the group transaction.
    fn write(&self) -> Result<MutexGuard<'_, Conn>, StoreError> {
        self.group.write()
    }

    /// Resolves once every write made before the call is committed, as
    /// soon as `wait` asks.
    pub fn durable(&self, wait: Wait) -> tokio::sync::oneshot::Receiver<Result<(), String>> {
        self.group.durable(wait)
    }

    /// Group transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.group.commits()
    }

    /// Times the whole write-ahead log was copied between two group
    /// transactions, so that the next one started it again.
    pub fn wal_restarts(&self) -> u64 {
        self.group.wal_restarts()
    }

    /// Commits the writes made so far now, on the calling thread.
    pub fn commit_now(&self) -> Result<(), StoreError> {
        self.group.commit_now()
    }
}

impl CursorStore for Sqlite {
    fn cursor(&self, tenant: &str, source: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn()
            .row(
                "SELECT value FROM cursors WHERE tenant = ?1 AND source = ?2",
                (tenant, source),
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| StoreError::query("read cursor", e))
    }

    fn set_cursor(&self, tenant: &str, source: &str, value: &str) -> Result<(), StoreError> {
        write_cursor(&*self.write()?, tenant, source, value)
    }
}

/// Saves a poller cursor on `conn` (a connection or a transaction).
fn write_cursor(
    conn: &Connection,
    tenant: &str,
    source: &str,
    value: &str,
) -> Result<(), StoreError> {
    conn.run(
        "INSERT INTO cursors (tenant, source, value, updated_at)
         VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ','now'))
         ON CONFLICT (tenant, source) DO UPDATE
         SET value = excluded.value, updated_at = excluded.updated_at",
        (tenant, source, value),
    )
    .map(drop)
    .map_err(|e| StoreError::query("write cursor", e))
}

/// The current time as the store writes it (`2026-01-31T12:00:00.000Z`,
/// what `strftime('%Y-%m-%dT%H:%M:%fZ','now')` gives). The statements run
/// for every event bind it instead of calling `strftime` in SQL, which costs
/// SQLite several times as much as formatting it here.
fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `LIMIT <limit>`, for the text of a statement run once per event or
/// more. SQLite plans a query with the value bound to a `LIMIT ?` parameter,
/// so every new binding of it makes the cached statement compile again on
/// its next step, which costs as much as preparing it anew; a limit written
/// into the text keeps the compiled plan. Each distinct limit is one more
/// cached statement, so this is for limits the code fixes, not a caller's.
/// (SQLite's integers are 64-bit signed: a larger limit means no limit.)
fn limit(limit: usize) -> String {
    format!("LIMIT {}", i64::try_from(limit).unwrap_or(i64::MAX))
}

/// A savepoint inside the group transaction, on cached statements (a
/// write of several statements takes back only itself when one fails).
/// rusqlite's own savepoint parses its `SAVEPOINT`, `RELEASE` and
/// `ROLLBACK TO` anew each time, several times per event. Dropped without
/// [`Savepoint::commit`], it is rolled back.
struct Savepoint<'c> {
    conn: &'c Connection,
    released: bool,
}

impl<'c> Savepoint<'c> {
    fn open(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.run("SAVEPOINT write", [])?;
        Ok(Self {
            conn,
            released: false,
        })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.released = true;
        self.conn.run("RELEASE write", []).map(drop)
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.conn.run("ROLLBACK TO write", []);
            let _ = self.conn.run("RELEASE write", []);
        }
    }
}

impl std::ops::Deref for Savepoint<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// Statements run through the connection's statement cache: each is parsed
/// once per connection, not on every call.
trait Cached {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;

    /// One row, mapped by `f`.
    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::inbox::InboxStore;
    use crate::store::mirror::MirrorStore;
    use rusqlite::StatementStatus;

    /// The reads the pipeline makes for every event run on their cached
    /// statement as compiled, whatever they are asked for: none is compiled
    /// again on a new binding (a bound `LIMIT ?` would make SQLite do that).
    #[test]
    fn per_event_reads_are_not_compiled_again() {
        let store = Sqlite::in_memory().expect("store");
        for customer in ["+15550100", "+15550101", "+15550102"] {
            store
                .pending_for_customer("acme", customer, 50)
                .expect("pending");
            store
                .mirror_listed("acme", customer, 1_000)
                .expect("listed");
            let (_, rows) = store
                .mirrored_conversations("acme", customer, 10)
                .expect("conversations")
                .expect("listed before");
            assert!(rows.is_empty());
        }
        let conn = store.conn();
        for sql in [
            inbox::customer_queue_sql(50),
            mirror::newest_conversations_sql(10),
        ] {
            let statement = conn.prepare_cached(&sql).expect("cached");
            assert_eq!(
                statement.get_status(StatementStatus::RePrepare),
                0,
                "compiled again: {sql}"
            );
        }
    }

    /// The reads the pipeline makes for every event come out of their index
    /// already in the order asked for: none sorts its rows in a temporary
    /// B-tree, which SQLite would build anew on every run.
    #[test]
    fn per_event_reads_sort_nothing() {
        let store = Sqlite::in_memory().expect("store");
        let conn = store.conn();
        for sql in [
            inbox::customer_queue_sql(50),
            mirror::newest_conversations_sql(10),
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .and_then(|mut s| {
                    s.query_map(("acme", "+15550100"), |r| r.get::<_, String>(3))?
                        .collect()
                })
                .expect("plan");
            assert!(
                !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                "{plan:?} for: {sql}"
            );
        }
    }

    /// The writes every event makes check their rows' CHECK constraints
    /// without building a temporary B-tree: SQLite evaluates an `IN` list of
    /// three values or more through one, built anew on every run.
    #[test]
    fn per_event_writes_build_no_temporary_b_tree() {
        let store = Sqlite::in_memory().expect("store");
        let conn = store.conn();
        for sql in [
            inbox::INSERT,
            inbox::SET_STATUS,
            links::RECORD_DECISION,
            links::SET_OUTCOME,
        ] {
            let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).expect("explain");
            let unbound = std::iter::repeat_n(rusqlite::types::Null, explain.parameter_count());
            let opcodes: Vec<String> = explain
                .query_map(rusqlite::params_from_iter(unbound), |r| {
                    r.get::<_, String>(1)
                })
                .and_then(Iterator::collect)
                .expect("opcodes");
            assert!(
                !opcodes.iter().any(|op| op == "OpenEphemeral"),
                "a temporary B-tree in: {sql}"
            );
        }
    }

    /// The time the store binds reads like SQLite's own `strftime` text.
    #[test]
    fn now_text_is_what_strftime_writes() {
        let ours = now_text();
        let sqlite: String = Sqlite::in_memory()
            .expect("store")
            .conn()
            .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ','now')", [], |r| {
                r.get(0)
            })
            .expect("strftime");
        assert_eq!(ours.len(), sqlite.len(), "{ours} against {sqlite}");
        assert_eq!(ours.as_bytes()[10], b'T');
        assert!(ours.ends_with('Z') && ours.as_bytes()[19] == b'.', "{ours}");
        assert!(sqlite[..16] <= ours[..16], "{sqlite} then {ours}");
    }
}
