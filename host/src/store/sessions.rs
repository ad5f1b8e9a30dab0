//! The session ledger's storage: one opaque state per `(tenant, session)`,
//! updated in the same transaction as the inbox rows derived from it, so a
//! transition is stored exactly when the state that derived it is.

use super::inbox::{self, NewInboxEvent};
use super::{Store, StoreError};
use rusqlite::OptionalExtension;

/// What merging one update into a session's state produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The new state, stored as given.
    pub state: String,
    /// Events derived from it, for the inbox.
    pub events: Vec<NewInboxEvent>,
}

/// What [`Store::reconcile`] stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciled {
    /// Every event the updates derived, stored or already there.
    pub events: Vec<NewInboxEvent>,
    /// How many of them were new to the inbox.
    pub new: usize,
    /// Updates that derived no event.
    pub unchanged: usize,
}

impl Store {
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
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(|e| StoreError::query("begin", e))?;
        let mut out = Reconciled::default();
        for (session, update) in updates {
            let stored = read_state(&tx, tenant, &session)?;
            let merged = merge(stored.as_deref(), update);
            if stored.as_deref() != Some(merged.state.as_str()) {
                tx.prepare_cached(
                    "INSERT INTO sessions (tenant, session_id, state, updated_at)
                     VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ','now'))
                     ON CONFLICT (tenant, session_id) DO UPDATE
                     SET state = excluded.state, updated_at = excluded.updated_at",
                )
                .and_then(|mut s| s.execute((tenant, &session, &merged.state)))
                .map_err(|e| StoreError::query("write session", e))?;
            }
            if merged.events.is_empty() {
                out.unchanged += 1;
            }
            for event in &merged.events {
                if inbox::insert(&tx, event)? {
                    out.new += 1;
                }
            }
            out.events.extend(merged.events);
        }
        if let Some((source, value)) = cursor {
            super::write_cursor(&tx, tenant, source, value)?;
        }
        tx.commit().map_err(|e| StoreError::query("commit", e))?;
        Ok(out)
    }

    /// The stored state of one session, if it was ever seen.
    pub fn session_state(&self, tenant: &str, session: &str) -> Result<Option<String>, StoreError> {
        read_state(&self.conn(), tenant, session)
    }
}

fn read_state(
    conn: &rusqlite::Connection,
    tenant: &str,
    session: &str,
) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT state FROM sessions WHERE tenant = ?1 AND session_id = ?2")
        .and_then(|mut s| s.query_row((tenant, session), |r| r.get(0)).optional())
        .map_err(|e| StoreError::query("read session", e))
}
