//! Per-agent state of the agent status sync (SPEC §6). Values are opaque
//! JSON text owned by `crate::status_sync`.
use super::StoreError;

/// One agent's stored status sync state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusAgentRow {
    pub tenant: String,
    /// Lower-cased email: agents are linked by email (AS4).
    pub agent_email: String,
    /// A deferred status (JSON), applied when the CCAI session ends (AS7).
    pub pending: Option<String>,
    /// The last status the sync applied (JSON), for echo suppression (AS3).
    pub last_applied: Option<String>,
    /// The latest decision (JSON).
    pub last_decision: Option<String>,
    /// The latest error, cleared by the next successful decision.
    pub last_error: Option<String>,
    pub updated_at: String,
}

/// StatusStore operations, implemented by each backend.
pub trait StatusStore {
    /// The stored state of one agent.
    fn status_agent(
        &self,
        tenant: &str,
        agent_email: &str,
    ) -> Result<Option<StatusAgentRow>, StoreError>;

    /// Every agent of a tenant, by email.
    fn status_agents(&self, tenant: &str) -> Result<Vec<StatusAgentRow>, StoreError>;

    /// Writes one agent's state (`updated_at` is set to now).
    fn put_status_agent(&self, r: &StatusAgentRow) -> Result<(), StoreError>;
}
