//! Wire types of the Apps and Manager APIs. Every struct ignores unknown
//! keys (the platform reserves the right to add them) and nearly every field
//! is optional: documented examples leave many of them `null`.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The built-in user statuses (ids ≤ 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemStatus {
    Available,
    Unavailable,
    Break,
    SpecialTask,
    Meal,
    MissedCall,
    WrapUp,
    InCall,
    InChat,
    Offline,
}

impl SystemStatus {
    pub const ALL: [Self; 10] = [
        Self::Available,
        Self::Unavailable,
        Self::Break,
        Self::SpecialTask,
        Self::Meal,
        Self::MissedCall,
        Self::WrapUp,
        Self::InCall,
        Self::InChat,
        Self::Offline,
    ];

    /// The documented id.
    pub const fn id(self) -> i64 {
        match self {
            Self::Available => 0,
            Self::Unavailable => -1,
            Self::Break => -2,
            Self::SpecialTask => -3,
            Self::Meal => -4,
            Self::MissedCall => -5,
            Self::WrapUp => -6,
            Self::InCall => -7,
            Self::InChat => -8,
            Self::Offline => -10,
        }
    }

    /// The documented name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Available => "Available",
            Self::Unavailable => "Unavailable",
            Self::Break => "Break",
            Self::SpecialTask => "Special Task",
            Self::Meal => "Meal",
            Self::MissedCall => "Missed Call",
            Self::WrapUp => "Wrap-up",
            Self::InCall => "In-call",
            Self::InChat => "In-chat",
            Self::Offline => "Offline",
        }
    }

    pub fn from_id(id: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The agent is busy with a session: in a call, in a chat or wrapping up.
    pub fn in_session(self) -> bool {
        matches!(self, Self::WrapUp | Self::InCall | Self::InChat)
    }

    /// Statuses the platform sets itself and an API call can neither enter
    /// nor leave.
    pub fn is_locked(self) -> bool {
        matches!(
            self,
            Self::MissedCall | Self::WrapUp | Self::InCall | Self::InChat | Self::Offline
        )
    }
}

/// `GET /manager/api/v1/user_statuses` entry, also embedded in agents and logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserStatus {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub color: Option<String>,
    /// Missing from some documentation versions.
    #[serde(default)]
    pub wfm_id: Option<i64>,
}

impl UserStatus {
    pub fn system(&self) -> Option<SystemStatus> {
        SystemStatus::from_id(self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
}

/// `GET /manager/api/v1/agents[/:id]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: u64,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub middle_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub agent_number: Option<String>,
    #[serde(default)]
    pub status: Option<UserStatus>,
    #[serde(default)]
    pub status_updated_at: Option<String>,
    #[serde(default)]
    pub online: Option<bool>,
    #[serde(default)]
    pub wrap_up: Option<bool>,
    #[serde(default)]
    pub crm_authenticated: Option<bool>,
    #[serde(default)]
    pub teams: Vec<Team>,
}

impl Agent {
    /// "First Last", skipping missing parts.
    pub fn display_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.first_name, &self.last_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// An agent as embedded in calls, chats and logs (`agent_info`, `whodunnit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub agent_number: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// Present in session metadata, not in every object.
    #[serde(default)]
    pub email: Option<String>,
}

/// One result of `POST /apps/api/v1/agent_statuses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatusResult {
    pub agent_id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub agent_number: Option<String>,
    #[serde(default)]
    pub previous_status: Option<String>,
    #[serde(default)]
    pub current_status: Option<String>,
    /// Present when the change was refused.
    #[serde(default)]
    pub message: Option<String>,
}

/// `GET /manager/api/v1/agent_activity_logs` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityLog {
    pub id: u64,
    pub agent_id: u64,
    #[serde(default)]
    pub whodunnit: Option<AgentInfo>,
    #[serde(default)]
    pub status: Option<UserStatus>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub duration: Option<i64>,
    #[serde(default)]
    pub activity: Option<String>,
    #[serde(default)]
    pub call_id: Option<u64>,
    #[serde(default)]
    pub chat_id: Option<u64>,
}

/// `selected_menu`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectedMenu {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub parent_id: Option<u64>,
    #[serde(default)]
    pub menu_type: Option<String>,
    #[serde(default)]
    pub output_msg: Option<String>,
}

/// `menu_path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MenuPath {
    #[serde(default)]
    pub items_count: Option<u32>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub materialized_path: Option<String>,
}

/// `end_user` of a call or chat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndUser {
    #[serde(default)]
    pub id: Option<u64>,
    /// The SDK identifier.
    #[serde(default)]
    pub identifier: Option<String>,
    /// The CRM contact id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub out_contact_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub user_id: Option<u64>,
    #[serde(default)]
    pub end_user_id: Option<u64>,
    #[serde(default)]
    pub connected_at: Option<String>,
    #[serde(default)]
    pub ended_at: Option<String>,
}

/// A transfer of a call or chat. `from_menu`/`to_menu` are menu paths in
/// the Apps schema and menus elsewhere; both parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub from_agent: Option<AgentInfo>,
    #[serde(default)]
    pub to_agent: Option<AgentInfo>,
    #[serde(default)]
    pub from_menu: Option<MenuPath>,
    #[serde(default)]
    pub to_menu: Option<MenuPath>,
}

/// A file shared or produced during a Smart Action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedFile {
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    #[serde(default)]
    pub content_type: Option<String>,
}

/// Why a Smart Action failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmartActionError {
    pub message: String,
    /// `end_user` when the customer's side caused it.
    #[serde(default)]
    pub caused_by: Option<String>,
}

/// A Smart Action of the session (verification, photo, video, text input…).
/// Result schemas are not publicly documented; this is the shape the
/// sidecar accepts in session events and final records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmartAction {
    #[serde(deserialize_with = "required_string")]
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// `completed` or `failed` (anything else: still running).
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub results: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub files: Vec<SharedFile>,
    #[serde(default)]
    pub error: Option<SmartActionError>,
}

/// Voicemail state of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voicemail {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub duration: Option<u32>,
    /// `voicemail_received`, `voicemail_read`, `voicemail_closed`, `voicemail_called_back`.
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Photo {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub photo_type: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// A call: Apps API object and Manager API record (which adds `updated_at`
/// and the final data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: u64,
    #[serde(default)]
    pub parent_id: Option<u64>,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub call_type: Option<String>,
    #[serde(default)]
    pub session_type_v2: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
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
    pub scheduled_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub wait_duration: Option<u32>,
    #[serde(default)]
    pub call_duration: Option<u32>,
    #[serde(default)]
    pub hold_duration: Option<u32>,
    /// CSAT 1–5; some clients see it as a string.
    #[serde(default, deserialize_with = "lenient_rating")]
    pub rating: Option<u8>,
    #[serde(default)]
    pub rating_comment: Option<String>,
    #[serde(default)]
    pub has_feedback: Option<bool>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub out_ticket_id: Option<String>,
    #[serde(default)]
    pub out_ticket_url: Option<String>,
    #[serde(default)]
    pub verified: Option<bool>,
    #[serde(default)]
    pub recording_url: Option<String>,
    #[serde(default)]
    pub recording_permission: Option<String>,
    #[serde(default)]
    pub voicemail_reason: Option<String>,
    #[serde(default)]
    pub voicemail: Option<Voicemail>,
    #[serde(default)]
    pub fail_reason: Option<String>,
    #[serde(default)]
    pub support_number: Option<String>,
    #[serde(default)]
    pub outbound_number: Option<String>,
    /// The number an API call dialled, when known.
    #[serde(default)]
    pub end_user_number: Option<String>,
    #[serde(default)]
    pub selected_menu: Option<SelectedMenu>,
    #[serde(default)]
    pub menu_path: Option<MenuPath>,
    #[serde(default)]
    pub agent_info: Option<AgentInfo>,
    #[serde(default)]
    pub end_user: Option<EndUser>,
    #[serde(default)]
    pub photos: Vec<Photo>,
    #[serde(default)]
    pub transfers: Vec<Transfer>,
    #[serde(default)]
    pub participants: Vec<Participant>,
    #[serde(default)]
    pub smart_actions: Vec<SmartAction>,
}

/// A chat (Manager API record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    pub id: u64,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub chat_type: Option<String>,
    #[serde(default)]
    pub session_type_v2: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub sub_status: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub assigned_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub queue_duration: Option<u32>,
    #[serde(default)]
    pub wait_duration: Option<u32>,
    #[serde(default)]
    pub chat_duration: Option<u32>,
    #[serde(default, deserialize_with = "lenient_rating")]
    pub rating: Option<u8>,
    #[serde(default)]
    pub rating_comment: Option<String>,
    #[serde(default)]
    pub has_feedback: Option<bool>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub out_ticket_id: Option<String>,
    #[serde(default)]
    pub out_ticket_url: Option<String>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub fail_reason: Option<String>,
    #[serde(default)]
    pub message_count: Option<u32>,
    #[serde(default)]
    pub selected_menu: Option<SelectedMenu>,
    #[serde(default)]
    pub menu_path: Option<MenuPath>,
    #[serde(default)]
    pub agent_info: Option<AgentInfo>,
    #[serde(default)]
    pub end_user: Option<EndUser>,
    /// Whether a transcript exists (a boolean; the body is not in the API).
    #[serde(default)]
    pub transcript: Option<bool>,
    #[serde(default)]
    pub transfers: Vec<Transfer>,
    #[serde(default)]
    pub smart_actions: Vec<SmartAction>,
}

/// `POST /apps/api/v1/calls` with `call_type = "Voice Outbound (API)"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundCall {
    pub call_type: &'static str,
    pub agent_email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_user_number: Option<String>,
    /// The CRM record (Kustomer conversation); wins over the number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

impl OutboundCall {
    pub const CALL_TYPE: &'static str = "Voice Outbound (API)";

    /// An outbound call from `agent_email` to `number`.
    pub fn to_number(agent_email: impl Into<String>, number: impl Into<String>) -> Self {
        Self {
            call_type: Self::CALL_TYPE,
            agent_email: agent_email.into(),
            end_user_number: Some(number.into()),
            ticket_id: None,
            outbound_number: None,
            lang: None,
        }
    }

    /// An outbound call to the end user tied to CRM record `ticket_id`.
    pub fn for_ticket(agent_email: impl Into<String>, ticket_id: impl Into<String>) -> Self {
        Self {
            call_type: Self::CALL_TYPE,
            agent_email: agent_email.into(),
            end_user_number: None,
            ticket_id: Some(ticket_id.into()),
            outbound_number: None,
            lang: None,
        }
    }
}

/// What `POST /calls` did.
#[derive(Debug, Clone, PartialEq)]
pub enum CallPlaced {
    /// 201: the call exists.
    Created(Box<Call>),
    /// 202: accepted, but the agent must act in the adapter (e.g. pick an
    /// outbound number).
    NeedsAgentAction(Box<Call>),
}

/// One page of a Manager API list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The `total` header.
    pub total: Option<u64>,
    /// The `per-page` header.
    pub per_page: Option<u32>,
    /// The `link` header's `rel="next"` target.
    pub next: Option<String>,
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn required_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or number id, got {other}"
        ))),
    }
}

/// A CSAT score 1–5 from a number or a numeric string; 0 and out-of-range
/// values mean "no rating".
fn lenient_rating<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    let n = match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    Ok(n.filter(|n| (1..=5).contains(n))
        .and_then(|n| u8::try_from(n).ok()))
}

/// Parses a `link` header and returns the `rel="next"` URL.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| url.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_reads_rel_next_only() {
        let header =
            r#"<https://x/calls?page=1>; rel="prev", <https://x/calls?page=3>; rel="next""#;
        assert_eq!(next_link(header).as_deref(), Some("https://x/calls?page=3"));
        assert_eq!(next_link(r#"<https://x/a>; rel="prev""#), None);
    }

    #[test]
    fn rating_accepts_numbers_and_strings_and_drops_zero() {
        let parse = |v: serde_json::Value| -> Option<u8> {
            serde_json::from_value::<Call>(serde_json::json!({ "id": 1, "rating": v }))
                .expect("call")
                .rating
        };
        assert_eq!(parse(serde_json::json!(4)), Some(4));
        assert_eq!(parse(serde_json::json!("5")), Some(5));
        assert_eq!(parse(serde_json::json!(0)), None);
        assert_eq!(parse(serde_json::Value::Null), None);
    }

    #[test]
    fn system_statuses_have_documented_ids() {
        let ids: Vec<i64> = SystemStatus::ALL.iter().map(|s| s.id()).collect();
        assert_eq!(ids, [0, -1, -2, -3, -4, -5, -6, -7, -8, -10]);
        assert!(SystemStatus::InCall.is_locked());
        assert!(!SystemStatus::Break.is_locked());
    }
}
