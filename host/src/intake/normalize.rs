//! Turns every source's payloads into the WIT session events.

use super::item::{ChatWebhook, ItemChannel, SessionEventBatch, SessionEventEnvelope, SessionItem};
use crate::connectors::ccai::{AgentInfo, Call, Chat, EndUser, SmartAction, Transfer};
use crate::phone::{self, Region};
use crate::runtime::types::{
    Agent, Channel, CustomDatum, Direction, Durations, EndUser as WitEndUser, EventKind, File,
    FileSource, Menu, Session, SessionEvent, SessionKind, SmartActionFailure, SmartActionResult,
    Transfer as WitTransfer, Voicemail as WitVoicemail, VoicemailAction,
};
use crate::store::{ChatMessage, NewInboxEvent};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use std::collections::BTreeMap;

/// The caller's number in E.164, read in the tenant's region; `None` when it
/// is not a valid number (withheld, `anonymous`, a national number of
/// another region).
pub fn phone_e164(raw: &str, region: Region) -> Option<String> {
    phone::e164(raw, region).ok()
}

/// Session kind, channel and direction from the platform's session type.
pub fn classify(session_type: &str, channel: ItemChannel) -> (SessionKind, Channel, Direction) {
    let t = session_type.to_ascii_lowercase();
    let outbound = t.contains("outbound");
    let direction = if outbound {
        Direction::Outbound
    } else {
        Direction::Inbound
    };
    if t.contains("sms") || t.contains("whatsapp") {
        return (SessionKind::Sms, Channel::Sms, direction);
    }
    if channel == ItemChannel::Chat || t.contains("messaging") || t.contains("chat") {
        let kind = if t.contains("web") {
            SessionKind::WebChat
        } else {
            SessionKind::MobileChat
        };
        return (kind, Channel::Chat, Direction::Inbound);
    }
    if outbound {
        (
            SessionKind::OutboundCall,
            Channel::Voice,
            Direction::Outbound,
        )
    } else if t.contains("ivr") || t.contains("api") {
        (SessionKind::IvrCall, Channel::Voice, Direction::Inbound)
    } else if t.contains("mobile") || t.contains("app") {
        (SessionKind::MobileCall, Channel::Voice, Direction::Inbound)
    } else {
        (SessionKind::IvrCall, Channel::Voice, Direction::Inbound)
    }
}

/// `call-<id>` / `chat-<id>`.
pub fn session_id(channel: ItemChannel, id: u64) -> String {
    match channel {
        ItemChannel::Call => format!("call-{id}"),
        ItemChannel::Chat => format!("chat-{id}"),
    }
}

/// ISO-8601 UTC with milliseconds.
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A JSON value as the text rules see: a string as is, anything else as
/// JSON.
pub(crate) fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Epoch milliseconds as a time (the epoch itself if out of range).
pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

pub(crate) fn agent(info: &AgentInfo) -> Agent {
    let name = info.name.clone().or_else(|| {
        let parts: Vec<&str> = [&info.first_name, &info.last_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    Agent {
        id: info.id,
        email: info.email.clone(),
        name,
    }
}

fn end_user(user: Option<&EndUser>, dn: Option<&str>, region: Region) -> WitEndUser {
    let phone = dn
        .or(user.and_then(|u| u.phone.as_deref()))
        .and_then(|raw| phone_e164(raw, region));
    WitEndUser {
        phone,
        sdk_identifier: user
            .and_then(|u| u.identifier.clone())
            .filter(|s| !s.is_empty()),
        email: user.and_then(|u| u.email.clone()),
        name: user.and_then(|u| u.name.clone()),
    }
}

fn custom_data(entries: &BTreeMap<String, super::item::CustomDataEntry>) -> Vec<CustomDatum> {
    entries
        .iter()
        .map(|(key, entry)| CustomDatum {
            key: key.clone(),
            label: entry.label.clone(),
            value: value_text(&entry.value),
        })
        .collect()
}

fn menu(
    selected: Option<&crate::connectors::ccai::SelectedMenu>,
    path: Option<&crate::connectors::ccai::MenuPath>,
) -> Option<Menu> {
    let selected = selected?;
    Some(Menu {
        id: selected.id,
        name: selected
            .name
            .clone()
            .or_else(|| path.and_then(|p| p.name.clone()))
            .unwrap_or_default(),
        path: path
            .and_then(|p| p.materialized_path.clone())
            .unwrap_or_else(|| selected.id.to_string()),
    })
}

/// The WIT session described by a session-event item.
pub fn session_from_item(item: &SessionItem, region: Region) -> Session {
    let session_type = item
        .session_type
        .clone()
        .unwrap_or_else(|| match item.channel {
            ItemChannel::Call => "Voice Inbound (IVR)".into(),
            ItemChannel::Chat => "Messaging Inbound (Mobile Chat)".into(),
        });
    let (kind, channel, mut direction) = classify(&session_type, item.channel);
    match item.direction.as_deref() {
        Some("outbound") => direction = Direction::Outbound,
        Some("inbound") => direction = Direction::Inbound,
        _ => {}
    }
    let dn = item
        .dn
        .as_deref()
        .or_else(|| item.participants.iter().find_map(|p| p.dn.as_deref()));
    let current_agent = item.agent.as_ref().or_else(|| {
        item.participants
            .iter()
            .rev()
            .filter(|p| p.kind.as_deref() == Some("agent"))
            .find_map(|p| p.agent.as_ref())
    });
    let menu = menu(item.selected_menu.as_ref(), item.menu_path.as_ref());
    let queue_name = item
        .queue_path_names
        .last()
        .cloned()
        .or_else(|| menu.as_ref().map(|m| m.name.clone()))
        .filter(|s| !s.is_empty());
    Session {
        id: session_id(item.channel, item.id),
        kind,
        channel,
        direction,
        session_type,
        end_user: end_user(item.end_user.as_ref(), dn, region),
        menu,
        queue_name,
        language: item.lang.clone(),
        agent: current_agent.map(agent),
        started_at: item.created_at.clone(),
        ended_at: item.ends_at.clone(),
        durations: Durations {
            call_seconds: item.call_duration,
            hold_seconds: item.hold_duration,
            wait_seconds: item.wait_duration,
        },
        parent_session_id: item.parent_id.map(|p| session_id(item.channel, p)),
        custom_data: custom_data(&item.custom_data),
    }
}

pub(crate) fn file_from_url(url: &str, fallback_name: &str, default_type: &str) -> File {
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .unwrap_or(fallback_name)
        .to_string();
    let content_type = match name
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("txt") => "text/plain",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("mp4") => "video/mp4",
        Some("pdf") => "application/pdf",
        _ => default_type,
    };
    File {
        name,
        content_type: content_type.into(),
        source: FileSource::Url(url.into()),
    }
}

pub(crate) fn transfer(t: &Transfer) -> WitTransfer {
    WitTransfer {
        from_agent: t.from_agent.as_ref().map(agent),
        to_agent: t.to_agent.as_ref().map(agent),
        to_queue: t.to_menu.as_ref().and_then(|m| m.name.clone()),
    }
}

/// The event a finished or failed Smart Action stands for.
pub(crate) fn smart_action_event(action: &SmartAction) -> Option<EventKind> {
    let name = action
        .name
        .clone()
        .or_else(|| action.kind.clone())
        .unwrap_or_else(|| action.id.clone());
    match action.status.as_deref() {
        Some("completed") => Some(EventKind::SmartActionCompleted(SmartActionResult {
            name,
            results: action
                .results
                .iter()
                .map(|(k, v)| (k.clone(), value_text(v)))
                .collect(),
            files: action
                .files
                .iter()
                .map(|f| {
                    let mut file = file_from_url(&f.url, "file", "application/octet-stream");
                    if let Some(n) = &f.name {
                        file.name = n.clone();
                    }
                    if let Some(t) = &f.content_type {
                        file.content_type = t.clone();
                    }
                    file
                })
                .collect(),
        })),
        Some("failed") => {
            let error = action.error.as_ref();
            Some(EventKind::SmartActionFailed(SmartActionFailure {
                name,
                message: error
                    .map(|e| e.message.clone())
                    .unwrap_or_else(|| "Smart Action failed".into()),
                caused_by_customer: error
                    .and_then(|e| e.caused_by.as_deref())
                    .is_some_and(|c| c == "end_user" || c == "customer"),
            }))
        }
        _ => None,
    }
}

pub(crate) fn voicemail_action(status: &str) -> Option<VoicemailAction> {
    match status {
        "voicemail_read" | "read" => Some(VoicemailAction::Read),
        "voicemail_closed" | "closed" => Some(VoicemailAction::Closed),
        "voicemail_called_back" | "called_back" => Some(VoicemailAction::CalledBack),
        _ => None,
    }
}

pub(crate) fn action_slug(action: VoicemailAction) -> &'static str {
    match action {
        VoicemailAction::Read => "read",
        VoicemailAction::Closed => "closed",
        VoicemailAction::CalledBack => "called-back",
    }
}

pub(crate) fn voicemail(url: Option<&str>, duration: Option<u32>, session: &str) -> WitVoicemail {
    WitVoicemail {
        recording: url.map(|u| file_from_url(u, &format!("voicemail-{session}.mp3"), "audio/mpeg")),
        duration_seconds: duration,
    }
}

pub(crate) fn is_abandoned(fail_reason: Option<&str>) -> bool {
    fail_reason.is_some_and(|r| r.contains("abandon"))
}

/// The pipeline orders events per customer: phone, SDK identifier, or
/// the session when neither is known.
pub fn customer_key(session: &Session) -> String {
    let user = &session.end_user;
    match (&user.phone, &user.sdk_identifier) {
        (Some(phone), _) => format!("phone:{phone}"),
        (None, Some(id)) => format!("sdk:{id}"),
        (None, None) => format!("session:{}", session.id),
    }
}

/// A normalised event ready for the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    pub event: SessionEvent,
    pub at_ms: i64,
}

impl Normalised {
    pub(crate) fn new(id: String, at: DateTime<Utc>, session: Session, kind: EventKind) -> Self {
        Self {
            event: SessionEvent {
                id,
                at: iso(at),
                session,
                kind,
            },
            at_ms: at.timestamp_millis(),
        }
    }

    /// The inbox row, ordered under `customer_key`. Serialising a generated
    /// WIT type cannot fail; if it ever did, the row would carry `null` and
    /// fail in the pipeline.
    pub fn into_inbox(self, tenant: &str, source: &str, customer_key: String) -> NewInboxEvent {
        NewInboxEvent {
            tenant: tenant.into(),
            customer_key,
            event_id: self.event.id.clone(),
            source: source.into(),
            session_id: self.event.session.id.clone(),
            at_ms: self.at_ms,
            at: self.event.at.clone(),
            body: serde_json::value::to_raw_value(&self.event)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned())
                .into(),
        }
    }
}

/// One source's description of a session at one time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// When the source says this was true (epoch milliseconds).
    pub at_ms: i64,
    pub item: SessionItem,
    /// The transition the source named (`event_type`), when it named one.
    pub hint: Option<String>,
    /// A chat transcript rebuilt from the kept chat messages (CT1).
    pub transcript: Option<String>,
}

impl Update {
    /// `call-<id>` or `chat-<id>`.
    pub fn session_id(&self) -> String {
        session_id(self.item.channel, self.item.id)
    }
}

/// A batch's updates, in the platform's timestamp order, each event id
/// once (the ledger makes repeats across batches harmless).
pub fn batch_updates(batch: SessionEventBatch) -> Vec<Update> {
    let mut envelopes = batch.events;
    envelopes.sort_by(|a, b| (a.timestamp, &a.event_id).cmp(&(b.timestamp, &b.event_id)));
    let mut seen = std::collections::HashSet::new();
    envelopes.retain(|e| seen.insert(e.event_id.clone()));
    envelopes.into_iter().map(Update::from).collect()
}

/// One External Session Events update: the item as sent, `event_type` as a
/// hint.
pub fn update_from_envelope(envelope: &SessionEventEnvelope) -> Update {
    Update::from(envelope.clone())
}

impl From<SessionEventEnvelope> for Update {
    fn from(envelope: SessionEventEnvelope) -> Self {
        Self {
            at_ms: envelope.timestamp,
            item: envelope.item,
            hint: envelope.event_type,
            transcript: None,
        }
    }
}

/// A call click-to-call placed, as the first update of its session: an
/// outbound call to `number` by `agent`, created at `at`. CCAI Platform's own
/// updates of the call merge into it later.
pub fn update_from_placement(
    call_id: u64,
    number: &str,
    agent: &AgentInfo,
    at: DateTime<Utc>,
) -> Update {
    Update {
        at_ms: at.timestamp_millis(),
        item: SessionItem {
            id: call_id,
            channel: ItemChannel::Call,
            session_type: Some("Voice Outbound (API)".into()),
            direction: Some("outbound".into()),
            status: Some("connected".into()),
            dn: Some(number.to_string()),
            agent: Some(agent.clone()),
            created_at: Some(iso(at)),
            ..SessionItem::default()
        },
        hint: Some("session_created".into()),
        transcript: None,
    }
}

/// The webhook's own time, else `fallback`.
pub fn webhook_time(hook: &ChatWebhook, fallback: DateTime<Utc>) -> DateTime<Utc> {
    match &hook.timestamp {
        Some(serde_json::Value::String(s)) => parse_time(s).unwrap_or(fallback),
        Some(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(v) if v > 100_000_000_000 => from_ms(v),
            Some(v) => from_ms(v.saturating_mul(1000)),
            None => fallback,
        },
        _ => fallback,
    }
}

/// What a chat webhook means: an update of the chat and/or a message to
/// keep for the transcript.
#[derive(Debug)]
pub struct WebhookOutcome {
    pub update: Update,
    pub message: Option<ChatMessage>,
    /// For `chat_ended`: the transcript must be built from kept messages.
    pub wants_transcript: bool,
}

/// A chat webhook as an update of its chat.
pub fn from_webhook(hook: &ChatWebhook, at: DateTime<Utc>) -> WebhookOutcome {
    let chat = hook.chat.clone().unwrap_or_default();
    let mut item = SessionItem {
        id: hook.chat_id,
        channel: ItemChannel::Chat,
        session_type: chat.chat_type.clone(),
        lang: chat.lang.clone(),
        end_user: chat.end_user.clone(),
        ..SessionItem::default()
    };
    if let Some(m) = &chat.menu {
        item.selected_menu = Some(crate::connectors::ccai::SelectedMenu {
            id: m.id,
            name: m.name.clone(),
            parent_id: None,
            menu_type: None,
            output_msg: None,
        });
        item.menu_path = Some(crate::connectors::ccai::MenuPath {
            items_count: None,
            name: m.name.clone(),
            materialized_path: m.materialized_path.clone(),
        });
    }
    let sender = hook.body.sender.as_ref();
    let mut out = WebhookOutcome {
        update: Update::default(),
        message: None,
        wants_transcript: false,
    };
    let mut hint = None;
    match hook.event_type.as_str() {
        "chat_created" | "chat_ended" => {
            hint = Some(hook.event_type.clone());
            out.wants_transcript = hook.event_type == "chat_ended";
        }
        "participant_joined" if sender.and_then(|s| s.kind.as_deref()) == Some("agent") => {
            if let Some(id) = sender.and_then(|s| s.id) {
                item.agent = Some(AgentInfo {
                    id,
                    name: sender.and_then(|s| s.name.clone()),
                    first_name: None,
                    last_name: None,
                    agent_number: None,
                    avatar_url: None,
                    email: sender.and_then(|s| s.email.clone()),
                });
                item.connected_at = Some(iso(at));
                item.status = Some("connected".into());
            }
        }
        "message_received" => {
            let content = hook
                .body
                .message
                .as_ref()
                .and_then(|m| m.content.as_ref())
                .map(value_text);
            if let Some(content) = content {
                out.message = Some(ChatMessage {
                    message_id: hook
                        .body
                        .message_id
                        .clone()
                        .unwrap_or_else(|| at.timestamp_millis().to_string()),
                    at_ms: at.timestamp_millis(),
                    sender: sender
                        .and_then(|s| s.kind.clone())
                        .unwrap_or_else(|| "unknown".into()),
                    content,
                });
            }
        }
        "chat_dismissed" => {
            item.status = Some("disconnected".into());
            item.ends_at = Some(iso(at));
            item.fail_reason = Some("abandoned".into());
        }
        _ => {}
    }
    out.update = Update {
        at_ms: at.timestamp_millis(),
        item,
        hint,
        transcript: None,
    };
    out
}

/// The chat transcript (CT1) as text, from the kept messages.
pub fn transcript_text(messages: &[ChatMessage]) -> String {
    messages
        .iter()
        .map(|m| format!("[{}] {}: {}\n", iso(from_ms(m.at_ms)), m.sender, m.content))
        .collect()
}

/// A Manager API status as the item's lifecycle status.
fn final_status(status: Option<&str>) -> Option<String> {
    let status = status?;
    let finished = matches!(
        status,
        "finished" | "failed" | "canceled" | "cancelled" | "no_response" | "deflected"
    ) || status.starts_with("voicemail");
    Some(
        if finished {
            "disconnected"
        } else {
            "connected"
        }
        .into(),
    )
}

/// The time of a final record: its end, else its last update.
fn record_time(ends_at: Option<&str>, updated_at: Option<&str>) -> i64 {
    updated_at
        .or(ends_at)
        .and_then(parse_time)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .timestamp_millis()
}

/// A Manager API call record as an update of its session: the end with
/// durations, recording, rating, voicemail, transfers and Smart Actions.
pub fn update_from_call(call: &Call) -> Update {
    let status = call.status.as_deref().unwrap_or_default();
    let is_voicemail = status.starts_with("voicemail")
        || call.voicemail.is_some()
        || call
            .voicemail_reason
            .as_deref()
            .is_some_and(|r| r != "not_voicemail");
    let voicemail = is_voicemail.then(|| crate::connectors::ccai::Voicemail {
        url: call
            .voicemail
            .as_ref()
            .and_then(|v| v.url.clone())
            .or(call.recording_url.clone()),
        duration: call.voicemail.as_ref().and_then(|v| v.duration),
        status: call
            .voicemail
            .as_ref()
            .and_then(|v| v.status.clone())
            .or_else(|| status.starts_with("voicemail").then(|| status.to_string())),
    });
    let item = SessionItem {
        id: call.id,
        channel: ItemChannel::Call,
        session_type: call.session_type_v2.clone().or(call.call_type.clone()),
        status: final_status(call.status.as_deref()),
        parent_id: call.parent_id,
        lang: call.lang.clone(),
        dn: call.end_user_number.clone(),
        end_user: call.end_user.clone(),
        selected_menu: call.selected_menu.clone(),
        menu_path: call.menu_path.clone(),
        agent: call.agent_info.clone(),
        created_at: call.created_at.clone(),
        queued_at: call.queued_at.clone(),
        assigned_at: call.assigned_at.clone(),
        connected_at: call.connected_at.clone(),
        ends_at: call.ends_at.clone(),
        wait_duration: call.wait_duration,
        call_duration: call.call_duration,
        hold_duration: call.hold_duration,
        fail_reason: call.fail_reason.clone(),
        recording_url: if is_voicemail {
            None
        } else {
            call.recording_url.clone()
        },
        rating: call.rating,
        rating_comment: call.rating_comment.clone(),
        voicemail,
        transfers: call.transfers.clone(),
        smart_actions: call.smart_actions.clone(),
        ..SessionItem::default()
    };
    Update {
        at_ms: record_time(call.ends_at.as_deref(), call.updated_at.as_deref()),
        item,
        hint: None,
        transcript: None,
    }
}

/// A Manager API chat record as an update of its chat.
pub fn update_from_chat(chat: &Chat) -> Update {
    let abandoned = matches!(chat.status.as_deref(), Some("canceled" | "no_response"));
    let item = SessionItem {
        id: chat.id,
        channel: ItemChannel::Chat,
        session_type: chat.session_type_v2.clone().or(chat.chat_type.clone()),
        status: final_status(chat.status.as_deref()),
        lang: chat.lang.clone(),
        end_user: chat.end_user.clone(),
        selected_menu: chat.selected_menu.clone(),
        menu_path: chat.menu_path.clone(),
        agent: chat.agent_info.clone(),
        created_at: chat.created_at.clone(),
        assigned_at: chat.assigned_at.clone(),
        ends_at: chat.ends_at.clone(),
        wait_duration: chat.queue_duration.or(chat.wait_duration),
        call_duration: chat.chat_duration,
        fail_reason: if abandoned {
            Some("abandoned".into())
        } else {
            chat.fail_reason.clone()
        },
        rating: chat.rating,
        rating_comment: chat.rating_comment.clone(),
        transfers: chat.transfers.clone(),
        smart_actions: chat.smart_actions.clone(),
        ..SessionItem::default()
    };
    Update {
        at_ms: record_time(chat.ends_at.as_deref(), chat.updated_at.as_deref()),
        item,
        hint: None,
        transcript: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_normalise_to_e164_or_not_at_all() {
        assert_eq!(
            phone_e164("+1 415-555-0101", Region::default()).as_deref(),
            Some("+14155550101")
        );
        assert_eq!(
            phone_e164("(415) 555-0122", Region::default()).as_deref(),
            Some("+14155550122")
        );
        assert_eq!(
            phone_e164("+44 20 7946 0958", Region::default()).as_deref(),
            Some("+442079460958")
        );
        assert_eq!(
            phone_e164("0044 20 7946 0958", Region::default()).as_deref(),
            Some("+442079460958")
        );
        assert_eq!(
            phone_e164("020 7946 0958", Region::default()),
            None,
            "national formats are not guessed"
        );
        assert_eq!(phone_e164("anonymous", Region::default()), None);
    }

    #[test]
    fn session_types_map_to_kinds() {
        let k = |t: &str, c| classify(t, c).0;
        assert_eq!(
            k("Voice Inbound (IVR)", ItemChannel::Call),
            SessionKind::IvrCall
        );
        assert_eq!(
            k("Voice inbound (Mobile)", ItemChannel::Call),
            SessionKind::MobileCall
        );
        assert_eq!(
            k("Voice Outbound (API)", ItemChannel::Call),
            SessionKind::OutboundCall
        );
        assert_eq!(
            k("Messaging Inbound (Mobile Chat)", ItemChannel::Chat),
            SessionKind::MobileChat
        );
        assert_eq!(
            k("Messaging (Web)", ItemChannel::Chat),
            SessionKind::WebChat
        );
        assert_eq!(
            k("Messaging Inbound (SMS)", ItemChannel::Chat),
            SessionKind::Sms
        );
    }
}
