//! The inbox: accepted events waiting for the pipeline, and chat messages
//! kept for transcripts.

use super::StoreError;
use serde::{Deserialize, Serialize};

/// An event as JSON text, kept as written: checked to be JSON when the
/// store reads it back, parsed by whoever uses it, compared by its text.
#[derive(Debug, Clone)]
pub struct EventJson(pub Box<serde_json::value::RawValue>);

impl PartialEq for EventJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl std::ops::Deref for EventJson {
    type Target = serde_json::value::RawValue;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<Box<serde_json::value::RawValue>> for EventJson {
    fn from(json: Box<serde_json::value::RawValue>) -> Self {
        Self(json)
    }
}

/// An accepted event to store. `body` is the normalised session event as
/// JSON text; the store does not interpret it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInboxEvent {
    pub tenant: String,
    /// Source event id; `(tenant, event_id)` is unique.
    pub event_id: String,
    /// Which intake produced it (`session-events`, `chat-webhook`, `manager-api`).
    pub source: String,
    pub session_id: String,
    /// The key events are ordered by in the pipeline: E.164 phone, SDK
    /// identifier, or the session id when neither is known.
    pub customer_key: String,
    /// Event time, milliseconds since the Unix epoch (the ordering key).
    pub at_ms: i64,
    /// Event time as ISO-8601, as in the body.
    pub at: String,
    pub body: EventJson,
}

/// Processing state of an inbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboxStatus {
    Pending,
    Done,
    Failed,
    /// Transient failures outlasted the maximum event age; holds the
    /// customer's later events until retried or skipped.
    Dead,
    /// A dead letter an operator chose not to apply.
    Skipped,
}

impl InboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Skipped => "skipped",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "done" => Self::Done,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            "skipped" => Self::Skipped,
            _ => Self::Pending,
        }
    }
}

/// A stored inbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRow {
    /// Insertion sequence; breaks ties between events with the same time.
    pub seq: i64,
    pub tenant: String,
    pub event_id: String,
    pub source: String,
    pub session_id: String,
    pub customer_key: String,
    pub at_ms: i64,
    pub at: String,
    /// The event as stored.
    pub body: EventJson,
    pub status: InboxStatus,
    pub reason: Option<String>,
    pub attempts: u32,
    /// When the intake stored it (RFC 3339); the age that bounds retries.
    pub received_at: String,
}

impl InboxRow {
    /// The stored event as a JSON value (`null` if it is not JSON, which
    /// the store checks when it reads the row).
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_str(self.body.get()).unwrap_or_default()
    }
}

/// One chat message seen through a chat webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub message_id: String,
    pub at_ms: i64,
    /// `end_user`, `agent`, `virtual_agent`, or the sender's display name.
    pub sender: String,
    pub content: String,
}

/// InboxStore operations, implemented by each backend.
pub trait InboxStore {
    /// Stores one event. Returns `true` if it was new, `false` if an event
    /// with the same `(tenant, event_id)` was already stored (deduplicated).
    fn insert_event(&self, event: &NewInboxEvent) -> Result<bool, StoreError>;

    /// Stores several events atomically: either all new ones are stored or
    /// none. Returns how many were new.
    fn insert_events(&self, events: &[NewInboxEvent]) -> Result<usize, StoreError>;

    /// Pending events of `tenant` (all tenants if `None`), oldest event time
    /// first, ties in arrival order; at most `limit`.
    fn pending(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<InboxRow>, StoreError>;

    /// Pending events of one customer of one tenant, in event-time order.
    fn pending_for_customer(
        &self,
        tenant: &str,
        customer_key: &str,
        limit: usize,
    ) -> Result<Vec<InboxRow>, StoreError>;

    /// All events of `tenant` in any status, in event-time order (tests,
    /// inspection).
    fn events(&self, tenant: &str) -> Result<Vec<InboxRow>, StoreError>;

    /// The events of one session, in the order its customer's queue takes
    /// them (`customer_key` is the session's queue, which the inbox indexes).
    fn session_events(
        &self,
        tenant: &str,
        customer_key: &str,
        session_id: &str,
    ) -> Result<Vec<InboxRow>, StoreError>;

    /// One event by its id.
    fn event(&self, tenant: &str, event_id: &str) -> Result<Option<InboxRow>, StoreError>;

    /// Marks a row processed.
    fn mark_done(&self, seq: i64) -> Result<(), StoreError>;

    /// Marks a row failed for good, with the reason.
    fn mark_failed(&self, seq: i64, reason: &str) -> Result<(), StoreError>;

    /// Settles an event that was applied (`reason` `None`: the row is done)
    /// or failed for good (the row is failed with the reason): its inbox row
    /// and its outcome (`outcomes`, see `LinkStore::set_outcome`) together,
    /// in one transaction where the backend allows.
    fn settle(
        &self,
        seq: i64,
        tenant: &str,
        event_id: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Marks a row dead: its transient failures outlasted the maximum age.
    fn mark_dead(&self, seq: i64, reason: &str) -> Result<(), StoreError>;

    /// Every (tenant, customer key) with pending events: what the scheduler
    /// queues at start and on a rescan.
    fn pending_customers(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// Whether a dead letter holds this customer's events.
    fn customer_held(&self, tenant: &str, customer_key: &str) -> Result<bool, StoreError>;

    /// Marks the tenant's dead letters (or one of them) skipped, releasing
    /// the customers they held. Returns how many.
    fn skip_dead(&self, tenant: &str, event_id: Option<&str>) -> Result<usize, StoreError>;

    /// Records a failed attempt that will be retried: the row stays pending.
    fn record_attempt(&self, seq: i64, reason: &str) -> Result<(), StoreError>;

    /// Keeps a chat message for the transcript; `false` if already kept.
    fn add_chat_message(
        &self,
        tenant: &str,
        chat_id: &str,
        message: &ChatMessage,
    ) -> Result<bool, StoreError>;

    /// The kept messages of a chat, in time order.
    fn chat_messages(&self, tenant: &str, chat_id: &str) -> Result<Vec<ChatMessage>, StoreError>;
}
