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

mod error;
mod inbox;
mod links;
mod schema;
mod sessions;
mod status_sync;

pub use error::StoreError;
pub use inbox::{ChatMessage, InboxRow, InboxStatus, NewInboxEvent};
pub use links::{AttachmentRecord, ConversationMeta, Outcome, OutcomeState, SessionLink};
pub use sessions::{Merged, Reconciled};
pub use status_sync::StatusAgentRow;

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Handle to the store. Clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
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
        Self::from_connection(conn)
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
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
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
    conn.execute(
        "INSERT INTO cursors (tenant, source, value, updated_at)
         VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ','now'))
         ON CONFLICT (tenant, source) DO UPDATE
         SET value = excluded.value, updated_at = excluded.updated_at",
        (tenant, source, value),
    )
    .map(drop)
    .map_err(|e| StoreError::query("write cursor", e))
}

#[cfg(test)]
mod tests;
