//! The embedded store: one SQLite file in WAL mode, durable across `kill -9`.
//!
//! It holds, for now:
//! - the **inbox**: every accepted, normalised session event, durable before
//!   the HTTP handler answers 2xx (OP2) and deduplicated by
//!   `(tenant, event_id)`; a later pipeline reads it in event-time order and
//!   marks each row done or failed;
//! - **cursors**: per-tenant, per-source positions of pollers (the Manager API
//!   reconciliation), so a restart neither misses nor repeats a record;
//! - the **session ledger**: per session, what every source said of it,
//!   merged, and which transitions were derived from it; updated in the
//!   same transaction as the inbox rows it derives;
//! - **chat messages** seen through chat webhooks, from which the chat
//!   transcript (CT1) is rebuilt when the chat ends;
//! - **status sync agents**: per agent, the deferred and last applied
//!   status, the latest decision and error (SPEC §6).
//!
//! [`Store`] is a cheap-to-clone handle around one connection behind a `std`
//! mutex: SQLite serialises writers anyway, every statement is short and none
//! is held across an `.await`. Callers on the async runtime run it inline; the
//! statements are small enough that a blocking hop would cost more than it
//! saves. `Store::open(":memory:")` gives a private in-memory store for tests.
//!
//! Copying the write-ahead log back into the database (a checkpoint, with
//! its fsync) runs on a background thread with its own connection every
//! [`CHECKPOINT_EVERY`], never inline in a request; the serving connection
//! checkpoints by itself only as a backstop, past [`WAL_BACKSTOP_PAGES`].

mod error;
mod inbox;
mod links;
mod mirror;
mod schema;
mod sessions;
mod shadow;
mod status_sync;

pub use error::StoreError;
pub use inbox::{ChatMessage, InboxRow, InboxStatus, NewInboxEvent};
pub use links::{AttachmentRecord, ConversationMeta, Outcome, OutcomeState, SessionLink};
pub use mirror::{KeyLookup, MirrorConversation, MirrorCustomer, Mirrored};
pub use sessions::{Merged, Reconciled};
pub use shadow::{ShadowDifference, ShadowFailure, ShadowOutcome, ShadowReport};
pub use status_sync::StatusAgentRow;

use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How often the background thread checkpoints the write-ahead log.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// WAL pages past which the serving connection checkpoints by itself (if
/// the background thread cannot keep up): about 40 MiB.
pub const WAL_BACKSTOP_PAGES: u32 = 10_000;

/// Handle to the store. Clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Stops the checkpoint thread when the last clone is dropped.
    _checkpoints: Option<Arc<Checkpoints>>,
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

/// Starts the checkpoint thread on its own connection to `path`.
fn checkpoints(path: &Path) -> Result<Checkpoints, StoreError> {
    let conn = Connection::open(path).map_err(|e| StoreError::open(path, e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || {
            while !flag.load(Ordering::Acquire) {
                // PASSIVE copies what it can without waiting for, or
                // blocking, the serving connection.
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(%error, "background checkpoint failed");
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

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and runs the
    /// migrations. `":memory:"` opens a private in-memory database.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(|e| StoreError::open(path, e))?;
        let mut store = Self::from_connection(conn)?;
        store
            .conn()
            .execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = {WAL_BACKSTOP_PAGES};"
            ))
            .map_err(|e| StoreError::query("set the checkpoint backstop", e))?;
        store._checkpoints = Some(Arc::new(checkpoints(path)?));
        Ok(store)
    }

    /// Where the service keeps its store inside `data_dir`.
    pub fn path_in(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("switchboard.db")
    }

    /// A private in-memory store (tests, the demo).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| StoreError::open(":memory:", e))?;
        Self::from_connection(conn)
    }

    fn from_connection(conn: Connection) -> Result<Self, StoreError> {
        schema::prepare(&conn)?;
        schema::migrate(&conn)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            _checkpoints: None,
        })
    }

    /// The connection. A poisoned lock only means another thread panicked
    /// mid-statement; SQLite rolled that statement back, so the connection is
    /// still consistent and we keep using it.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The poller cursor of `(tenant, source)`, if one was saved.
    pub fn cursor(&self, tenant: &str, source: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn()
            .query_row(
                "SELECT value FROM cursors WHERE tenant = ?1 AND source = ?2",
                (tenant, source),
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| StoreError::query("read cursor", e))
    }

    /// Saves the poller cursor of `(tenant, source)`.
    pub fn set_cursor(&self, tenant: &str, source: &str, value: &str) -> Result<(), StoreError> {
        write_cursor(&self.conn(), tenant, source, value)
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

/// Statements run through the connection's statement cache: each is parsed
/// once per connection, not on every call.
trait Cached {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl Cached for Connection {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

#[cfg(test)]
mod tests;
