//! Turns every source's payloads into the WIT session events.

use super::item::{ChatWebhook, ItemChannel, SessionEventEnvelope, SessionItem};
use crate::connectors::ccai::{AgentInfo, Call, Chat, EndUser, SmartAction, Transfer};
use crate::phone::{self, Region};
use crate::runtime::types::{
    Agent, Channel, CustomDatum, Direction, Durations, EndUser as WitEndUser, EventKind, File,
    FileSource, Menu, Rating, Session, SessionEvent, SessionKind, SmartActionFailure,
    SmartActionResult, Transfer as WitTransfer, Voicemail as WitVoicemail, VoicemailAction,
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

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn agent(info: &AgentInfo) -> Agent {
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
            value: match &entry.value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            },
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

fn file_from_url(url: &str, fallback_name: &str, default_type: &str) -> File {
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

fn transfer(t: &Transfer) -> WitTransfer {
    WitTransfer {
        from_agent: t.from_agent.as_ref().map(agent),
        to_agent: t.to_agent.as_ref().map(agent),
        to_queue: t.to_menu.as_ref().and_then(|m| m.name.clone()),
    }
}

/// The event a finished or failed Smart Action stands for.
fn smart_action_event(action: &SmartAction) -> Option<EventKind> {
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
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
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

fn voicemail_action(status: &str) -> Option<VoicemailAction> {
    match status {
        "voicemail_read" | "read" => Some(VoicemailAction::Read),
        "voicemail_closed" | "closed" => Some(VoicemailAction::Closed),
        "voicemail_called_back" | "called_back" => Some(VoicemailAction::CalledBack),
        _ => None,
    }
}

fn action_slug(action: VoicemailAction) -> &'static str {
    match action {
        VoicemailAction::Read => "read",
        VoicemailAction::Closed => "closed",
        VoicemailAction::CalledBack => "called-back",
    }
}

fn voicemail(url: Option<&str>, duration: Option<u32>, session: &str) -> WitVoicemail {
    WitVoicemail {
        recording: url.map(|u| file_from_url(u, &format!("voicemail-{session}.mp3"), "audio/mpeg")),
        duration_seconds: duration,
    }
}

fn is_abandoned(fail_reason: Option<&str>) -> bool {
    fail_reason.is_some_and(|r| r.contains("abandon"))
}

/// Which inbox id an event gets. Facts that happen once per session (and
/// that several sources report) get an id derived from the session, so the
/// inbox deduplicates them across sources; everything else keeps the
/// source's event id.
pub fn semantic_id(session: &str, kind: &EventKind) -> Option<String> {
    let suffix = match kind {
        EventKind::Created => "created".to_string(),
        EventKind::Assigned(a) => format!("assigned:{}", a.id),
        EventKind::Connected(a) => format!("connected:{}", a.id),
        EventKind::Ended => "ended".into(),
        EventKind::Abandoned => "abandoned".into(),
        EventKind::VoicemailLeft(_) => "voicemail-left".into(),
        EventKind::VoicemailUpdated(a) => format!("voicemail-{}", action_slug(*a)),
        EventKind::RecordingReady(_) => "recording-ready".into(),
        EventKind::TranscriptReady(_) => "transcript-ready".into(),
        EventKind::Rated(_) => "rated".into(),
        EventKind::HangupAndCallback => "hangup-and-callback".into(),
        EventKind::ShortCallCallback => "short-call-callback".into(),
        _ => return None,
    };
    Some(format!("{session}:{suffix}"))
}

/// The event kind of one External Session Events update; `None` for
/// updates that carry nothing the rules act on (dispositions, unknown types).
pub fn kind_from_envelope(
    envelope: &SessionEventEnvelope,
    session: &Session,
) -> Option<(EventKind, Option<String>)> {
    let item = &envelope.item;
    let sid = &session.id;
    let current_agent = || session.agent.clone();
    let kind = match envelope.event_type.as_str() {
        "session_created" => EventKind::Created,
        "session_queued" => EventKind::Queued,
        "agent_assigned" => EventKind::Assigned(current_agent()?),
        "agent_connected" => EventKind::Connected(current_agent()?),
        "session_transferred" => {
            let t = item.transfers.last();
            let id = t
                .and_then(|t| t.id.clone())
                .map(|id| format!("{sid}:transfer:{id}"));
            let kind = EventKind::Transferred(t.map(transfer).unwrap_or(WitTransfer {
                from_agent: None,
                to_agent: current_agent(),
                to_queue: session.queue_name.clone(),
            }));
            return Some((kind, id));
        }
        "session_ended" if is_abandoned(item.fail_reason.as_deref()) => EventKind::Abandoned,
        "session_ended" => EventKind::Ended,
        "voicemail_left" => {
            let v = item.voicemail.as_ref();
            EventKind::VoicemailLeft(voicemail(
                v.and_then(|v| v.url.as_deref())
                    .or(item.recording_url.as_deref()),
                v.and_then(|v| v.duration),
                sid,
            ))
        }
        "voicemail_updated" => EventKind::VoicemailUpdated(voicemail_action(
            item.voicemail.as_ref()?.status.as_deref()?,
        )?),
        "recording_ready" => EventKind::RecordingReady(file_from_url(
            item.recording_url.as_deref()?,
            &format!("{sid}.mp3"),
            "audio/mpeg",
        )),
        "transcript_ready" => EventKind::TranscriptReady(file_from_url(
            item.transcript_url.as_deref()?,
            &format!("{sid}.txt"),
            "text/plain",
        )),
        "smart_action_completed" | "smart_action_failed" => {
            let wanted = if envelope.event_type == "smart_action_completed" {
                "completed"
            } else {
                "failed"
            };
            let action = match &envelope.smart_action_id {
                Some(id) => item.smart_actions.iter().find(|a| &a.id == id),
                None => item
                    .smart_actions
                    .iter()
                    .rev()
                    .find(|a| a.status.as_deref() == Some(wanted)),
            }?;
            let id = format!("{sid}:smart-action:{}", action.id);
            return smart_action_event(action).map(|k| (k, Some(id)));
        }
        "rated" => EventKind::Rated(Rating {
            score: item.rating?,
            comment: item.rating_comment.clone(),
        }),
        "hangup_and_callback" => EventKind::HangupAndCallback,
        "short_call_callback" => EventKind::ShortCallCallback,
        "custom_data" => EventKind::CustomData(session.custom_data.clone()),
        _ => return None,
    };
    let id = semantic_id(sid, &kind);
    Some((kind, id))
}

/// A normalised event ready for the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    pub event: SessionEvent,
    pub at_ms: i64,
}

impl Normalised {
    fn new(id: String, at: DateTime<Utc>, session: Session, kind: EventKind) -> Self {
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

    /// The pipeline orders events per customer: phone, SDK identifier, or
    /// the session when neither is known.
    pub fn customer_key(&self) -> String {
        let user = &self.event.session.end_user;
        match (&user.phone, &user.sdk_identifier) {
            (Some(phone), _) => format!("phone:{phone}"),
            (None, Some(id)) => format!("sdk:{id}"),
            (None, None) => format!("session:{}", self.event.session.id),
        }
    }

    /// The inbox row. Serialising a generated WIT type cannot fail; if it
    /// ever did, the row would carry `null` and fail in the pipeline.
    pub fn into_inbox(self, tenant: &str, source: &str) -> NewInboxEvent {
        NewInboxEvent {
            tenant: tenant.into(),
            customer_key: self.customer_key(),
            event_id: self.event.id.clone(),
            source: source.into(),
            session_id: self.event.session.id.clone(),
            at_ms: self.at_ms,
            at: self.event.at.clone(),
            body: serde_json::to_value(&self.event).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// One External Session Events update → at most one event.
pub fn from_envelope(envelope: &SessionEventEnvelope, region: Region) -> Option<Normalised> {
    let session = session_from_item(&envelope.item, region);
    let (kind, id) = kind_from_envelope(envelope, &session)?;
    let id = id.unwrap_or_else(|| envelope.event_id.clone());
    Some(Normalised::new(
        id,
        from_ms(envelope.timestamp),
        session,
        kind,
    ))
}

/// The SDK custom data a `created` update carries, as its own `custom-data`
/// event. Used when the session was already created by another source (a
/// chat webhook can arrive first): the `created` update is then a duplicate
/// and would otherwise take its custom data (TU9) with it.
pub fn custom_data_of_created(created: &Normalised) -> Option<Normalised> {
    let event = &created.event;
    if !matches!(event.kind, EventKind::Created) || event.session.custom_data.is_empty() {
        return None;
    }
    let at = from_ms(created.at_ms.saturating_add(1));
    Some(Normalised::new(
        format!("{}:custom-data", event.id),
        at,
        event.session.clone(),
        EventKind::CustomData(event.session.custom_data.clone()),
    ))
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

/// The session a chat webhook describes.
pub fn session_from_webhook(hook: &ChatWebhook, prior: Option<Session>, region: Region) -> Session {
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
    let mut session = session_from_item(&item, region);
    if let Some(prior) = prior {
        // What earlier events already said wins over the webhook's summary
        // when the webhook left it out.
        if hook.chat.is_none() {
            session = prior;
        } else {
            session.agent = session.agent.or(prior.agent);
            session.started_at = session.started_at.or(prior.started_at);
        }
    }
    session
}

/// What a chat webhook means: events to store and/or a message to keep.
#[derive(Debug, Default)]
pub struct WebhookOutcome {
    pub events: Vec<Normalised>,
    pub message: Option<ChatMessage>,
    /// For `chat_ended`: the transcript must be built from kept messages.
    pub wants_transcript: bool,
}

pub fn from_webhook(hook: &ChatWebhook, session: Session, at: DateTime<Utc>) -> WebhookOutcome {
    let sid = session.id.clone();
    let mut out = WebhookOutcome::default();
    let sender = hook.body.sender.as_ref();
    let event = |kind: EventKind, session: Session| {
        let id = semantic_id(&sid, &kind).unwrap_or_else(|| {
            format!(
                "{sid}:webhook:{}:{}",
                hook.event_type,
                at.timestamp_millis()
            )
        });
        Normalised::new(id, at, session, kind)
    };
    match hook.event_type.as_str() {
        "chat_created" => out.events.push(event(EventKind::Created, session)),
        "participant_joined" if sender.and_then(|s| s.kind.as_deref()) == Some("agent") => {
            if let Some(id) = sender.and_then(|s| s.id) {
                let a = Agent {
                    id,
                    email: sender.and_then(|s| s.email.clone()),
                    name: sender.and_then(|s| s.name.clone()),
                };
                let mut session = session;
                session.agent = Some(a.clone());
                out.events.push(event(EventKind::Connected(a), session));
            }
        }
        "message_received" => {
            let content = hook
                .body
                .message
                .as_ref()
                .and_then(|m| m.content.as_ref())
                .map(|c| match c {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
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
        "chat_ended" => {
            let mut session = session;
            session.ended_at = Some(iso(at));
            out.events.push(event(EventKind::Ended, session));
            out.wants_transcript = true;
        }
        "chat_dismissed" => out.events.push(event(EventKind::Abandoned, session)),
        _ => {}
    }
    out
}

/// The chat transcript as a text file (CT1), from the kept messages.
pub fn transcript(
    chat_session: &Session,
    messages: &[ChatMessage],
    at: DateTime<Utc>,
) -> Normalised {
    let text: String = messages
        .iter()
        .map(|m| format!("[{}] {}: {}\n", iso(from_ms(m.at_ms)), m.sender, m.content))
        .collect();
    let file = File {
        name: format!("{}-transcript.txt", chat_session.id),
        content_type: "text/plain".into(),
        source: FileSource::Inline(text),
    };
    let kind = EventKind::TranscriptReady(file);
    let id = semantic_id(&chat_session.id, &kind).unwrap_or_default();
    Normalised::new(id, at, chat_session.clone(), kind)
}

/// Events only a final Manager API call record carries: the end with its
/// durations, recording, rating, voicemail state, transfers and Smart
/// Action results. `prior` is the session as session events described it.
pub fn from_final_call(call: &Call, prior: Option<Session>, region: Region) -> Vec<Normalised> {
    let item = SessionItem {
        id: call.id,
        channel: ItemChannel::Call,
        session_type: call.session_type_v2.clone().or(call.call_type.clone()),
        parent_id: call.parent_id,
        lang: call.lang.clone(),
        dn: call.end_user_number.clone(),
        end_user: call.end_user.clone(),
        selected_menu: call.selected_menu.clone(),
        menu_path: call.menu_path.clone(),
        agent: call.agent_info.clone(),
        created_at: call.created_at.clone(),
        connected_at: call.connected_at.clone(),
        ends_at: call.ends_at.clone(),
        wait_duration: call.wait_duration,
        call_duration: call.call_duration,
        hold_duration: call.hold_duration,
        ..SessionItem::default()
    };
    let mut session = session_from_item(&item, region);
    if let Some(prior) = prior {
        session = merge(prior, session);
    }
    let ended = call.ends_at.as_deref().and_then(parse_time);
    let updated = call.updated_at.as_deref().and_then(parse_time);
    let at = ended.or(updated).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let sid = session.id.clone();
    let mut out = Vec::new();
    let mut push = |kind: EventKind, id: Option<String>, at: DateTime<Utc>| {
        if let Some(id) = id.or_else(|| semantic_id(&sid, &kind)) {
            out.push(Normalised::new(id, at, session.clone(), kind));
        }
    };
    for t in call
        .transfers
        .iter()
        .filter(|t| t.status.as_deref() == Some("transferred"))
    {
        let t_at = t.created_at.as_deref().and_then(parse_time).unwrap_or(at);
        if let Some(tid) = &t.id {
            push(
                EventKind::Transferred(transfer(t)),
                Some(format!("{sid}:transfer:{tid}")),
                t_at,
            );
        }
    }
    for action in &call.smart_actions {
        if let Some(kind) = smart_action_event(action) {
            push(kind, Some(format!("{sid}:smart-action:{}", action.id)), at);
        }
    }
    let status = call.status.as_deref().unwrap_or_default();
    let vm_status = call
        .voicemail
        .as_ref()
        .and_then(|v| v.status.clone())
        .unwrap_or_else(|| status.to_string());
    let is_voicemail = status.starts_with("voicemail")
        || call.voicemail.is_some()
        || call
            .voicemail_reason
            .as_deref()
            .is_some_and(|r| r != "not_voicemail");
    if is_voicemail {
        let url = call
            .voicemail
            .as_ref()
            .and_then(|v| v.url.as_deref())
            .or(call.recording_url.as_deref());
        let duration = call.voicemail.as_ref().and_then(|v| v.duration);
        push(
            EventKind::VoicemailLeft(voicemail(url, duration, &sid)),
            None,
            at,
        );
        if let Some(action) = voicemail_action(&vm_status) {
            push(
                EventKind::VoicemailUpdated(action),
                None,
                updated.unwrap_or(at),
            );
        }
    } else if ended.is_some() && matches!(status, "finished" | "failed") {
        let kind = if is_abandoned(call.fail_reason.as_deref()) {
            EventKind::Abandoned
        } else {
            EventKind::Ended
        };
        push(kind, None, at);
        if let Some(url) = &call.recording_url {
            push(
                EventKind::RecordingReady(file_from_url(url, &format!("{sid}.mp3"), "audio/mpeg")),
                None,
                at,
            );
        }
    }
    if let Some(score) = call.rating {
        push(
            EventKind::Rated(Rating {
                score,
                comment: call.rating_comment.clone(),
            }),
            None,
            updated.unwrap_or(at),
        );
    }
    out
}

/// Events only a final Manager API chat record carries: end with durations,
/// rating and Smart Action results.
pub fn from_final_chat(chat: &Chat, prior: Option<Session>, region: Region) -> Vec<Normalised> {
    let item = SessionItem {
        id: chat.id,
        channel: ItemChannel::Chat,
        session_type: chat.session_type_v2.clone().or(chat.chat_type.clone()),
        lang: chat.lang.clone(),
        end_user: chat.end_user.clone(),
        selected_menu: chat.selected_menu.clone(),
        menu_path: chat.menu_path.clone(),
        agent: chat.agent_info.clone(),
        created_at: chat.created_at.clone(),
        ends_at: chat.ends_at.clone(),
        wait_duration: chat.queue_duration.or(chat.wait_duration),
        call_duration: chat.chat_duration,
        ..SessionItem::default()
    };
    let mut session = session_from_item(&item, region);
    if let Some(prior) = prior {
        session = merge(prior, session);
    }
    let ended = chat.ends_at.as_deref().and_then(parse_time);
    let updated = chat.updated_at.as_deref().and_then(parse_time);
    let at = ended.or(updated).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let sid = session.id.clone();
    let mut out = Vec::new();
    for action in &chat.smart_actions {
        if let Some(kind) = smart_action_event(action) {
            out.push(Normalised::new(
                format!("{sid}:smart-action:{}", action.id),
                at,
                session.clone(),
                kind,
            ));
        }
    }
    if ended.is_some()
        && matches!(
            chat.status.as_deref(),
            Some("finished" | "failed" | "canceled" | "no_response")
        )
    {
        let abandoned = matches!(chat.status.as_deref(), Some("canceled" | "no_response"));
        let kind = if abandoned {
            EventKind::Abandoned
        } else {
            EventKind::Ended
        };
        let id = semantic_id(&sid, &kind).unwrap_or_default();
        out.push(Normalised::new(id, at, session.clone(), kind));
    }
    if let Some(score) = chat.rating {
        let kind = EventKind::Rated(Rating {
            score,
            comment: chat.rating_comment.clone(),
        });
        let id = semantic_id(&sid, &kind).unwrap_or_default();
        out.push(Normalised::new(
            id,
            updated.unwrap_or(at),
            session.clone(),
            kind,
        ));
    }
    out
}

/// The final record's session, completed with what earlier events knew
/// (phone, SDK identifier, custom data, queue) and the record does not carry.
fn merge(prior: Session, fin: Session) -> Session {
    Session {
        id: fin.id,
        kind: prior.kind,
        channel: prior.channel,
        direction: prior.direction,
        session_type: prior.session_type,
        end_user: WitEndUser {
            phone: prior.end_user.phone.or(fin.end_user.phone),
            sdk_identifier: prior
                .end_user
                .sdk_identifier
                .or(fin.end_user.sdk_identifier),
            email: prior.end_user.email.or(fin.end_user.email),
            name: prior.end_user.name.or(fin.end_user.name),
        },
        menu: fin.menu.or(prior.menu),
        queue_name: prior.queue_name.or(fin.queue_name),
        language: fin.language.or(prior.language),
        agent: fin.agent.or(prior.agent),
        started_at: fin.started_at.or(prior.started_at),
        ended_at: fin.ended_at.or(prior.ended_at),
        durations: Durations {
            call_seconds: fin.durations.call_seconds.or(prior.durations.call_seconds),
            hold_seconds: fin.durations.hold_seconds.or(prior.durations.hold_seconds),
            wait_seconds: fin.durations.wait_seconds.or(prior.durations.wait_seconds),
        },
        parent_session_id: fin.parent_session_id.or(prior.parent_session_id),
        custom_data: if prior.custom_data.is_empty() {
            fin.custom_data
        } else {
            prior.custom_data
        },
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
