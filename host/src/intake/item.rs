//! The External Session Events wire format the sidecar accepts.
//!
//! CCAI Platform documents the envelope (`{count, events[]}`, `event_id`
//! UUID, `timestamp` in epoch milliseconds) and that "each update enriches
//! the `item` object" (session status `connected`/`disconnected`,
//! participant statuses `connected`, `accepted`, `disconnected`,
//! `dispositionSubmitted`), but not every field of the item. This module
//! fixes it, once: the emulator's scenario player sends exactly this, and
//! every field is optional except the session id, so a real payload with
//! fewer fields still parses. Unknown keys are ignored.
//!
//! ```json
//! { "count": 1, "events": [ {
//!   "event_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
//!   "timestamp": 1768467600000,
//!   "event_type": "agent_connected",
//!   "smart_action_id": null,
//!   "item": {
//!     "id": 1001, "channel": "call", "session_type": "Voice Inbound (IVR)",
//!     "direction": "inbound", "status": "connected", "parent_id": null,
//!     "lang": "en", "dn": "+1 415-555-0101",
//!     "end_user": { "id": 1501, "identifier": null, "email": null, "name": null, "out_contact_id": null },
//!     "queue_path_names": ["Lock Star"],
//!     "selected_menu": { "id": 9, "name": "Lock Star", "menu_type": "ivr_menu" },
//!     "menu_path": { "items_count": 1, "name": "Lock Star", "materialized_path": "9" },
//!     "initiator": "virtual_agent_15",
//!     "participants": [ { "type": "external", "status": "connected", "dn": "+1 415-555-0101" },
//!                       { "type": "agent", "status": "connected", "agent": { "id": 21, "name": "Ada Lovelace", "email": "ada@example.com" } } ],
//!     "agent": { "id": 21, "name": "Ada Lovelace", "email": "ada@example.com" },
//!     "created_at": "…", "queued_at": "…", "assigned_at": "…", "connected_at": "…", "ends_at": null,
//!     "wait_duration": 15, "call_duration": 95, "hold_duration": 0,
//!     "fail_reason": null, "recording_url": null, "transcript_url": null,
//!     "rating": null, "rating_comment": null,
//!     "voicemail": { "url": "…", "duration": 34, "status": "voicemail_received" },
//!     "transfers": [ { "id": 71, "status": "transferred", "from_agent": {…}, "to_agent": {…}, "to_menu": {…} } ],
//!     "smart_actions": [ { "id": "sa-1", "type": "photo", "name": "Photo request", "status": "completed",
//!                          "results": { "photos": "2" }, "files": [ { "name": "…", "url": "…", "content_type": "image/jpeg" } ],
//!                          "error": null } ],
//!     "custom_data": { "order_id": { "value": "A-1001", "type": "string", "label": "Order" } },
//!     "dispositions": { "code": "resolved", "custom_code_id": 7, "note": "…" },
//!     "callback": { "type": "hangup_and_callback", "parent_id": 1000 }
//!   } } ] }
//! ```
//!
//! `event_type` is optional: the documented payload does not carry it, and
//! the item alone is enough (see `docs/sessions.md`). When present it is a
//! hint naming the transition:
//! `session_created`, `session_queued`, `agent_assigned`, `agent_connected`,
//! `session_transferred`, `session_ended`, `voicemail_left`,
//! `voicemail_updated`, `recording_ready`, `transcript_ready`,
//! `smart_action_completed`, `smart_action_failed`, `rated`,
//! `hangup_and_callback`, `short_call_callback`, `custom_data`,
//! `disposition_submitted`. Unknown types are accepted and ignored.
//! (`smart_action_id` is accepted and not needed: every Smart Action of the
//! item is reconciled by its id.)

use crate::connectors::ccai::{
    AgentInfo, EndUser, MenuPath, SelectedMenu, SmartAction, Transfer, Voicemail,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The POST body: `{count, events[]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEventBatch {
    #[serde(default)]
    pub count: Option<u64>,
    pub events: Vec<SessionEventEnvelope>,
}

/// One update of one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEventEnvelope {
    pub event_id: String,
    /// Epoch milliseconds.
    pub timestamp: i64,
    /// A hint naming the transition; the documented payload has none.
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub smart_action_id: Option<String>,
    pub item: SessionItem,
}

/// Which session-events stream (the platform has one toggle each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemChannel {
    #[default]
    Call,
    Chat,
}

/// A participant of the session (`external` = the customer's leg).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemParticipant {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `connected`, `accepted`, `disconnected`, `dispositionSubmitted`…
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub agent: Option<AgentInfo>,
    #[serde(default)]
    pub dn: Option<String>,
    #[serde(default)]
    pub connected_at: Option<String>,
    #[serde(default)]
    pub ended_at: Option<String>,
}

/// One SDK custom-data entry: `{value, type, label}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomDataEntry {
    pub value: serde_json::Value,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispositions {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub custom_code_id: Option<u64>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    /// `hangup_and_callback` or `short_call_callback`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub parent_id: Option<u64>,
}

/// The session as known at this update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionItem {
    pub id: u64,
    #[serde(default)]
    pub channel: ItemChannel,
    /// `session_type_v2` label, e.g. `Voice Inbound (IVR)`.
    #[serde(default)]
    pub session_type: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    /// `connected` or `disconnected`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub parent_id: Option<u64>,
    #[serde(default)]
    pub lang: Option<String>,
    /// The customer's phone number.
    #[serde(default)]
    pub dn: Option<String>,
    #[serde(default)]
    pub end_user: Option<EndUser>,
    #[serde(default)]
    pub queue_path_names: Vec<String>,
    #[serde(default)]
    pub selected_menu: Option<SelectedMenu>,
    #[serde(default)]
    pub menu_path: Option<MenuPath>,
    #[serde(default)]
    pub initiator: Option<String>,
    #[serde(default)]
    pub participants: Vec<ItemParticipant>,
    /// The agent currently handling the session.
    #[serde(default)]
    pub agent: Option<AgentInfo>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub queued_at: Option<String>,
    #[serde(default)]
    pub assigned_at: Option<String>,
    #[serde(default)]
    pub connected_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default)]
    pub wait_duration: Option<u32>,
    #[serde(default)]
    pub call_duration: Option<u32>,
    #[serde(default)]
    pub hold_duration: Option<u32>,
    #[serde(default)]
    pub fail_reason: Option<String>,
    #[serde(default)]
    pub recording_url: Option<String>,
    #[serde(default)]
    pub transcript_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_rating")]
    pub rating: Option<u8>,
    #[serde(default)]
    pub rating_comment: Option<String>,
    #[serde(default)]
    pub voicemail: Option<Voicemail>,
    #[serde(default)]
    pub transfers: Vec<Transfer>,
    #[serde(default)]
    pub smart_actions: Vec<SmartAction>,
    #[serde(default)]
    pub custom_data: BTreeMap<String, CustomDataEntry>,
    #[serde(default)]
    pub dispositions: Option<Dispositions>,
    #[serde(default)]
    pub callback: Option<Callback>,
}

fn lenient_rating<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    let n = match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    Ok(n.filter(|n| (1..=5).contains(n))
        .and_then(|n| u8::try_from(n).ok()))
}

/// A chat webhook body. The platform's catalogue is not public; this is the
/// shape of its documented events (`chat_created`, `message_received`) and
/// of the commonly seen ones (`participant_joined`, `participant_left`,
/// `chat_ended`, `chat_dismissed`): `event_type`, `timestamp`, `chat_id`,
/// the chat summary, and an event `body`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatWebhook {
    pub event_type: String,
    /// ISO-8601, or epoch seconds/milliseconds.
    #[serde(default)]
    pub timestamp: Option<serde_json::Value>,
    pub chat_id: u64,
    #[serde(default)]
    pub chat: Option<WebhookChat>,
    #[serde(default)]
    pub body: WebhookBody,
}

/// The chat as summarised in a webhook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookChat {
    #[serde(default)]
    pub chat_type: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub menu: Option<WebhookMenu>,
    #[serde(default)]
    pub end_user: Option<EndUser>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookMenu {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub materialized_path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookBody {
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub sender: Option<WebhookSender>,
    #[serde(default)]
    pub message: Option<WebhookMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookSender {
    #[serde(default)]
    pub id: Option<u64>,
    /// `agent`, `virtual_agent` or `end_user`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookMessage {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub content: Option<serde_json::Value>,
}
