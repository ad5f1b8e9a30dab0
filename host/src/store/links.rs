//! What the pipeline remembers between events: which conversation a session
//! belongs to, what it knows of the conversations it created (channel, menu,
//! voicemail — Kustomer has no place for them before the custom fields are
//! provisioned), each event's recorded decision and outcome, and when a
//! tenant's custom fields were provisioned (CF4), and the attachments it
//! registered (so a retry reuses them).
use super::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A session's conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionLink {
    pub session_id: String,
    pub conversation_id: String,
    pub customer_id: String,
}

/// What the host recorded about a conversation it created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationMeta {
    pub session_id: Option<String>,
    /// `voice`, `chat`, `sms`.
    pub channel: Option<String>,
    pub menu_selection: Option<String>,
    pub voicemail: bool,
    /// `in` | `out`.
    pub direction: Option<String>,
}

/// Where an event's processing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeState {
    /// The module decided; the plan is recorded and not yet fully applied.
    Decided,
    Applied,
    Failed,
}

impl OutcomeState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Decided => "decided",
            Self::Applied => "applied",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "applied" => Self::Applied,
            "failed" => Self::Failed,
            _ => Self::Decided,
        }
    }
}

/// An event's recorded decision and outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub tenant: String,
    pub event_id: String,
    /// Digest of the module version that decided (None: decided natively by
    /// the default-rules fallback).
    pub module_digest: Option<String>,
    pub module_version: Option<u32>,
    /// The plan as JSON.
    pub plan: Option<serde_json::Value>,
    /// The context the plan was decided with, as JSON.
    pub context: Option<serde_json::Value>,
    pub state: OutcomeState,
    pub detail: Option<String>,
    pub decided_at: String,
    pub updated_at: String,
}

/// An attachment registered in Kustomer for one plan action.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRecord {
    pub attachment_id: String,
    /// The storage target, as JSON; the store does not interpret it.
    pub upload: String,
    /// Whether the file reached the storage target.
    pub uploaded: bool,
}

/// LinkStore operations, implemented by each backend.
pub trait LinkStore {
    /// Links a session to a conversation (replacing an earlier link).
    fn link_session(&self, tenant: &str, link: &SessionLink) -> Result<(), StoreError>;

    /// The conversation a session is linked to.
    fn session_link(
        &self,
        tenant: &str,
        session_id: &str,
    ) -> Result<Option<SessionLink>, StoreError>;

    /// Every session linked to `conversation_id` (screen pop, inspection).
    fn sessions_of_conversation(
        &self,
        tenant: &str,
        conversation_id: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// Records what the host knows about a conversation it created.
    fn put_conversation_meta(
        &self,
        tenant: &str,
        conversation_id: &str,
        meta: &ConversationMeta,
    ) -> Result<(), StoreError>;

    /// What the host recorded about a conversation, if it created it.
    fn conversation_meta(
        &self,
        tenant: &str,
        conversation_id: &str,
    ) -> Result<Option<ConversationMeta>, StoreError>;

    /// Records the decision for an event (before anything is applied), so a
    /// retry or a restart applies the same plan and the event is decided by
    /// exactly one module version. The plan and the context come as JSON
    /// text, serialised straight from their types: the store keeps them
    /// whole and never looks inside.
    fn record_decision(
        &self,
        tenant: &str,
        event_id: &str,
        module_digest: Option<&str>,
        module_version: Option<u32>,
        plan: &RawValue,
        context: &RawValue,
    ) -> Result<(), StoreError>;

    /// Sets an event's outcome state (creating the row when the event failed
    /// before any decision).
    fn set_outcome(
        &self,
        tenant: &str,
        event_id: &str,
        state: OutcomeState,
        detail: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Forgets a failed event's decision so a retry decides afresh (used when
    /// the decision itself failed, not its application).
    fn clear_outcome(&self, tenant: &str, event_id: &str) -> Result<(), StoreError>;

    /// An event's outcome.
    fn outcome(&self, tenant: &str, event_id: &str) -> Result<Option<Outcome>, StoreError>;

    /// Tenants with recorded decisions, sorted.
    fn tenants(&self) -> Result<Vec<String>, StoreError>;

    /// Every outcome of a tenant, in decision order.
    fn outcomes(&self, tenant: &str) -> Result<Vec<Outcome>, StoreError>;

    /// Puts failed and dead-lettered events of `tenant` (one event, or all)
    /// back in the queue; a dead letter's retry window starts again.
    /// Returns how many were requeued.
    fn requeue_failed(&self, tenant: &str, event_id: Option<&str>) -> Result<usize, StoreError>;

    /// When the tenant's custom fields were provisioned, and their names.
    fn field_provisioning(
        &self,
        tenant: &str,
    ) -> Result<Option<(String, serde_json::Value)>, StoreError>;

    /// Records provisioning; the earliest time recorded is kept (fields
    /// are never backfilled for sessions that started before it, CF4), so
    /// running it again never moves the time later. Times are RFC 3339 in
    /// UTC with milliseconds, which order as text.
    fn record_field_provisioning(
        &self,
        tenant: &str,
        provisioned_at: &str,
        fields: &serde_json::Value,
    ) -> Result<(), StoreError>;

    /// The attachment registered under `key` (the note it belongs to).
    fn attachment(&self, tenant: &str, key: &str) -> Result<Option<AttachmentRecord>, StoreError>;

    /// Keeps a registered attachment before its file is uploaded.
    fn record_attachment(
        &self,
        tenant: &str,
        key: &str,
        attachment_id: &str,
        upload: &str,
    ) -> Result<(), StoreError>;

    /// Notes that the attachment's file reached storage.
    fn attachment_uploaded(&self, tenant: &str, key: &str) -> Result<(), StoreError>;
}
