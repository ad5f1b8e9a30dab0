//! The store: everything the sidecar must not lose, behind one handle.
//!
//! It holds:
//! - the **inbox**: every accepted, normalised session event, durable before
//!   the HTTP handler answers 2xx (OP2) and deduplicated by
//!   `(tenant, event_id)`; the pipeline reads it in event-time order and
//!   marks each row done, failed or dead;
//! - **cursors**: per-tenant, per-source positions of pollers (the Manager API
//!   reconciliation), so a restart neither misses nor repeats a record;
//! - the **session ledger**: per session, what every source said of it,
//!   merged, and which transitions were derived from it; updated in the
//!   same transaction as the inbox rows it derives;
//! - **chat messages** seen through chat webhooks, from which the chat
//!   transcript (CT1) is rebuilt when the chat ends;
//! - links, outcomes, attachments, the Kustomer mirror, shadow decisions and
//!   **status sync agents** (SPEC §6).
//!
//! Two backends implement the same traits: [`sqlite`] (the default, one
//! embedded file, one process) and [`postgres`] (shared by any number of
//! replicas). [`Store`] is a cheap-to-clone handle that dereferences to the
//! backend, so `store.insert_event(..)` works the same on both.

pub mod coordination;
mod error;
mod inbox;
mod links;
mod mirror;
pub mod postgres;
mod sessions;
mod shadow;
pub mod sqlite;
mod status_sync;

pub use coordination::{Coordination, ReplicaInfo};
pub use error::StoreError;
pub use inbox::{ChatMessage, EventJson, InboxRow, InboxStatus, InboxStore, NewInboxEvent};
pub use links::{
    AttachmentRecord, ConversationMeta, LinkStore, Outcome, OutcomeState, SessionLink,
};
pub use mirror::{KeyLookup, MirrorConversation, MirrorCustomer, MirrorStore, Mirrored, Stamp};
pub use postgres::Postgres;
pub use sessions::{Merged, Reconciled, SessionStore};
pub use shadow::{ShadowDifference, ShadowFailure, ShadowOutcome, ShadowReport, ShadowStore};
pub use sqlite::Sqlite;
pub use status_sync::{StatusAgentRow, StatusStore};

use crate::config::StoreConfig;
use secrecy::ExposeSecret;
use std::path::Path;
use std::sync::Arc;

/// Poller cursors.
pub trait CursorStore {
    /// The poller cursor of `(tenant, source)`, if one was saved.
    fn cursor(&self, tenant: &str, source: &str) -> Result<Option<String>, StoreError>;

    /// Saves the poller cursor of `(tenant, source)`.
    fn set_cursor(&self, tenant: &str, source: &str, value: &str) -> Result<(), StoreError>;
}

/// How soon a caller waiting for its writes to be durable needs them
/// committed (a backend that commits every write before it returns ignores
/// it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A client waits for the answer (the intake's 2xx): on SQLite, the
    /// group is committed [`sqlite::COMMIT_GAP`] after the previous commit.
    Prompt,
    /// Only the sidecar's own next step waits (the pipeline before it
    /// writes to Kustomer): on SQLite up to [`sqlite::SHARED_COMMIT_GAP`],
    /// so that the events applied meanwhile share the commit.
    Shared,
}

/// When a backend's writes become durable.
pub trait Durability {
    /// `None` when every write is committed before it returns; otherwise a
    /// receiver told once every write made before the call is committed
    /// (or why it was not), as soon as `wait` asks.
    fn committed(&self, wait: Wait) -> Option<tokio::sync::oneshot::Receiver<Result<(), String>>>;
}

impl Durability for Sqlite {
    fn committed(&self, wait: Wait) -> Option<tokio::sync::oneshot::Receiver<Result<(), String>>> {
        Some(self.durable(wait))
    }
}

impl Durability for Postgres {
    fn committed(&self, _wait: Wait) -> Option<tokio::sync::oneshot::Receiver<Result<(), String>>> {
        None
    }
}

/// Everything a backend provides.
pub trait Backend:
    InboxStore
    + LinkStore
    + MirrorStore
    + SessionStore
    + ShadowStore
    + StatusStore
    + CursorStore
    + Coordination
    + Durability
    + Send
    + Sync
{
}

impl<T> Backend for T where
    T: InboxStore
        + LinkStore
        + MirrorStore
        + SessionStore
        + ShadowStore
        + StatusStore
        + CursorStore
        + Coordination
        + Durability
        + Send
        + Sync
{
}

/// Handle to the store. Clones share one backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    /// The same backend when it is PostgreSQL: what replicas share beyond
    /// the traits (the module registry, notifications).
    shared: Option<Arc<Postgres>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}

impl Store {
    /// A handle on `backend`.
    pub fn new(backend: impl Backend + 'static) -> Self {
        Self {
            backend: Arc::new(backend),
            shared: None,
        }
    }

    /// A handle on a PostgreSQL backend shared by replicas.
    pub fn shared(postgres: Postgres) -> Self {
        let postgres = Arc::new(postgres);
        Self {
            backend: postgres.clone(),
            shared: Some(postgres),
        }
    }

    /// Opens the store `config` names: SQLite in `data_dir`, or PostgreSQL.
    pub fn from_config(config: &StoreConfig, data_dir: &Path) -> Result<Self, StoreError> {
        match config {
            StoreConfig::Sqlite => Self::open(Self::path_in(data_dir)),
            StoreConfig::Postgres { url, pool_size } => Ok(Self::shared(Postgres::open(
                url.expose_secret(),
                *pool_size,
            )?)),
        }
    }

    /// The PostgreSQL backend, when the store is one replicas share.
    pub fn postgres(&self) -> Option<&Arc<Postgres>> {
        self.shared.as_ref()
    }

    /// Which backend, for logs and `/readyz`: `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        if self.shared.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// Opens (creating if needed) the SQLite database at `path` and runs the
    /// migrations. `":memory:"` opens a private in-memory database.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self::new(Sqlite::open(path)?))
    }

    /// Where the service keeps its SQLite store inside `data_dir`.
    pub fn path_in(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("switchboard.db")
    }

    /// A private in-memory SQLite store (tests, the demo).
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self::new(Sqlite::in_memory()?))
    }

    /// Waits until every write made before the call is durable, as soon as
    /// `wait` asks. The intake calls it before answering 2xx
    /// ([`Wait::Prompt`]), the pipeline before its first write to Kustomer
    /// ([`Wait::Shared`]); other writes become durable within a few
    /// milliseconds on their own ([`sqlite::SHARED_COMMIT_GAP`]).
    pub async fn durable(&self, wait: Wait) -> Result<(), StoreError> {
        match self.backend.committed(wait) {
            None => Ok(()),
            Some(told) => told
                .await
                .map_err(|_| StoreError::Commit("the store closed before committing".into()))?
                .map_err(StoreError::Commit),
        }
    }

    /// Merges `updates` in order, one transaction for all: for each
    /// `(session id, update)`, `merge` receives the session's stored state
    /// (`None` the first time) and returns the new state and the events it
    /// derives. With `cursor` (`source`, `value`), the poller's cursor is
    /// saved in the same transaction.
    pub fn reconcile<U>(
        &self,
        tenant: &str,
        updates: Vec<(String, U)>,
        cursor: Option<(&str, &str)>,
        mut merge: impl FnMut(Option<&str>, U) -> Merged,
    ) -> Result<Reconciled, StoreError> {
        let (sessions, mut updates): (Vec<String>, Vec<Option<U>>) = updates
            .into_iter()
            .map(|(session, update)| (session, Some(update)))
            .unzip();
        self.backend
            .reconcile_each(tenant, &sessions, cursor, &mut |i, stored| {
                match updates.get_mut(i).and_then(Option::take) {
                    Some(update) => merge(stored, update),
                    // A backend that retries its transaction calls again:
                    // the update was consumed, the stored state stands.
                    None => Merged {
                        state: stored.unwrap_or_default().to_string(),
                        events: Vec::new(),
                    },
                }
            })
    }
}

#[cfg(test)]
mod tests;
