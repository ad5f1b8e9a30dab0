//! The session ledger's storage: one opaque state per `(tenant, session)`,
//! updated in the same transaction as the inbox rows derived from it, so a
//! transition is stored exactly when the state that derived it is.

use super::inbox::NewInboxEvent;
use super::StoreError;

/// What merging one update into a session's state produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The new state, stored as given.
    pub state: String,
    /// Events derived from it, for the inbox.
    pub events: Vec<NewInboxEvent>,
}

/// What [`super::Store::reconcile`] stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciled {
    /// Every event the updates derived, stored or already there.
    pub events: Vec<NewInboxEvent>,
    /// How many of them were new to the inbox.
    pub new: usize,
    /// Updates that derived no event.
    pub unchanged: usize,
}

/// SessionStore operations, implemented by each backend.
pub trait SessionStore {
    /// Merges updates in order, one transaction for all: for the `i`th
    /// session of `sessions`, `merge(i, stored)` receives the session's
    /// stored state (`None` the first time) and returns the new state and the
    /// events it derives. With `cursor` (`source`, `value`), the poller's
    /// cursor is saved in the same transaction. [`super::Store::reconcile`]
    /// is the typed form.
    fn reconcile_each(
        &self,
        tenant: &str,
        sessions: &[String],
        cursor: Option<(&str, &str)>,
        merge: &mut dyn FnMut(usize, Option<&str>) -> Merged,
    ) -> Result<Reconciled, StoreError>;

    /// The stored state of one session, if it was ever seen.
    fn session_state(&self, tenant: &str, session: &str) -> Result<Option<String>, StoreError>;
}
