//! The session ledger: what the sidecar knows of each contact-centre session,
//! merged from every source, and the transitions that knowledge implies.
//!
//! Every source (External Session Events, chat webhooks, Manager API final
//! records) describes its update as a [`SessionItem`] at a time, an
//! [`Update`]. [`Ledger::merge`] folds it into the session's stored state:
//! fields only fill in or move forward (per field, the value with the later
//! timestamp wins; the session status moves along the lifecycle and never
//! back; lists such as participants, transfers, Smart Actions and custom data
//! merge entry by entry). [`Ledger::derive`] then lists the transitions the
//! state implies that were not handed to the pipeline yet, in their canonical
//! order, and remembers them: an exact duplicate derives nothing, a late
//! `created` derives nothing either (any earlier step is implied by a later
//! one and was derived with it), and an older value never replaces a newer
//! one. `event_type` is a hint that fills a field the item left out (a
//! `session_queued` without `queued_at` is queued at the update's time), never
//! a requirement. `docs/sessions.md` has the table of source field →
//! transition.

use super::item::{ChatWebhook, ItemChannel, ItemParticipant, SessionItem};
pub use super::normalize::Update;
use super::normalize::{self, from_ms, value_text, Normalised};
use crate::connectors::ccai::{AgentInfo, SmartAction, Transfer};
use crate::phone::Region;
use crate::runtime::types::{EventKind, File, FileSource, Rating, Session};
use crate::store::{Merged, Reconciled, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};

/// The stored state of one session. Serialised as JSON in the store, which
/// does not interpret it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Everything known of the session, merged.
    pub item: SessionItem,
    /// Per field (`created_at`, `custom_data.tier`, `transfer.71`…), the
    /// time of the update whose value is kept.
    #[serde(default)]
    pub times: BTreeMap<String, i64>,
    /// Every voicemail status seen, with the earliest time it was seen.
    #[serde(default)]
    pub voicemail_statuses: BTreeMap<String, i64>,
    /// An inline chat transcript.
    #[serde(default)]
    pub transcript: Option<String>,
    /// The pipeline orders a customer's events by this key; fixed when the
    /// session is first seen so its transitions never split across keys.
    #[serde(default)]
    pub customer_key: Option<String>,
    /// Keys of the transitions already handed to the pipeline.
    #[serde(default)]
    pub derived: BTreeSet<String>,
    /// The custom data the derived transitions carried last.
    #[serde(default)]
    pub custom_data_sent: Option<BTreeMap<String, String>>,
    /// The time given to the last derived transitions; later ones never
    /// get an earlier one, so a session's transitions keep their order.
    #[serde(default)]
    pub last_ms: i64,
    /// Updates merged so far.
    #[serde(default)]
    pub updates: u64,
}

/// Lifecycle rank of a session status: it only moves forward.
fn status_rank(status: Option<&str>) -> u8 {
    match status {
        None => 0,
        Some("disconnected") => 2,
        Some(_) => 1,
    }
}

/// Lifecycle rank of a participant status.
fn participant_rank(status: Option<&str>) -> u8 {
    match status {
        None => 0,
        Some("connected") => 2,
        Some("disconnected") => 3,
        Some("dispositionSubmitted") => 4,
        // `accepted`, `invited`, `ringing`…
        Some(_) => 1,
    }
}

/// Lifecycle rank of a Smart Action status.
fn action_rank(status: Option<&str>) -> u8 {
    match status {
        None => 0,
        Some("completed" | "failed") => 2,
        Some(_) => 1,
    }
}

fn participant_identity(p: &ItemParticipant) -> String {
    match (&p.kind, &p.agent) {
        (_, Some(agent)) => format!("agent:{}", agent.id),
        (kind, None) => format!(
            "{}:{}",
            kind.as_deref().unwrap_or("?"),
            p.dn.as_deref().unwrap_or("")
        ),
    }
}

fn transfer_identity(index: usize, t: &Transfer) -> String {
    match &t.id {
        Some(id) => id.clone(),
        None => format!(
            "{}>{}#{index}",
            t.from_agent.as_ref().map_or(0, |a| a.id),
            t.to_agent.as_ref().map_or(0, |a| a.id)
        ),
    }
}

/// Whether an update at `at` is not older than the value kept for `key`.
fn is_newer(times: &BTreeMap<String, i64>, key: &str, at: i64) -> bool {
    times.get(key).is_none_or(|kept| at >= *kept)
}

/// Keeps `new` in `slot` when it is set and not older than what is kept.
fn keep<T>(
    slot: &mut Option<T>,
    new: Option<T>,
    times: &mut BTreeMap<String, i64>,
    key: &str,
    at: i64,
) {
    let Some(new) = new else { return };
    if slot.is_none() || is_newer(times, key, at) {
        *slot = Some(new);
        times.insert(key.to_string(), at);
    }
}

/// Folds the source's `event_type` into the item: it fills what the item
/// left out, and only that.
fn apply_hint(update: &mut Update) {
    let Some(hint) = update.hint.as_deref() else {
        return;
    };
    let at = normalize::iso(from_ms(update.at_ms));
    let item = &mut update.item;
    match hint {
        "session_created" | "chat_created" => {
            item.created_at.get_or_insert(at);
        }
        "session_queued" => {
            item.queued_at.get_or_insert(at);
        }
        "agent_assigned" => {
            item.assigned_at.get_or_insert(at);
        }
        "agent_connected" => {
            item.connected_at.get_or_insert(at);
            item.status.get_or_insert_with(|| "connected".into());
        }
        "session_ended" | "chat_ended" => {
            item.ends_at.get_or_insert(at);
            item.status = Some("disconnected".into());
        }
        "voicemail_left" => {
            if item.voicemail.is_none() {
                item.voicemail = Some(crate::connectors::ccai::Voicemail {
                    url: item.recording_url.clone(),
                    duration: None,
                    status: Some("voicemail_received".into()),
                });
            }
            item.status = Some("disconnected".into());
        }
        "hangup_and_callback" | "short_call_callback" if item.callback.is_none() => {
            item.callback = Some(super::item::Callback {
                kind: hint.to_string(),
                parent_id: item.parent_id,
            });
        }
        _ => {}
    }
}

/// One transition derived from the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// Unique within the session: `created`, `connected:21`, `transfer:71`…
    pub key: String,
    pub kind: EventKind,
}

impl Ledger {
    /// Merges one update.
    pub fn merge(&mut self, mut update: Update) {
        apply_hint(&mut update);
        let at = update.at_ms;
        let new = update.item;
        let times = &mut self.times;
        let item = &mut self.item;
        if self.updates == 0 {
            item.id = new.id;
            item.channel = new.channel;
        }
        self.updates += 1;
        macro_rules! field {
            ($($name:ident),* $(,)?) => {$(
                keep(&mut item.$name, new.$name, times, stringify!($name), at);
            )*};
        }
        field!(
            session_type,
            direction,
            parent_id,
            lang,
            dn,
            selected_menu,
            menu_path,
            initiator,
            agent,
            created_at,
            queued_at,
            assigned_at,
            connected_at,
            ends_at,
            wait_duration,
            call_duration,
            hold_duration,
            fail_reason,
            recording_url,
            transcript_url,
            rating,
            rating_comment,
            dispositions,
            callback,
        );
        if let Some(user) = new.end_user {
            let kept = item.end_user.get_or_insert_with(Default::default);
            keep(&mut kept.id, user.id, times, "end_user.id", at);
            keep(
                &mut kept.identifier,
                user.identifier.filter(|s| !s.is_empty()),
                times,
                "end_user.identifier",
                at,
            );
            keep(&mut kept.email, user.email, times, "end_user.email", at);
            keep(&mut kept.name, user.name, times, "end_user.name", at);
            keep(&mut kept.phone, user.phone, times, "end_user.phone", at);
            keep(
                &mut kept.out_contact_id,
                user.out_contact_id,
                times,
                "end_user.out_contact_id",
                at,
            );
        }
        if !new.queue_path_names.is_empty() {
            let mut names = Some(item.queue_path_names.clone()).filter(|n| !n.is_empty());
            keep(
                &mut names,
                Some(new.queue_path_names),
                times,
                "queue_path_names",
                at,
            );
            item.queue_path_names = names.unwrap_or_default();
        }
        if status_rank(new.status.as_deref()) > status_rank(item.status.as_deref()) {
            item.status = new.status;
        }
        for p in new.participants {
            let identity = participant_identity(&p);
            match item
                .participants
                .iter_mut()
                .find(|q| participant_identity(q) == identity)
            {
                Some(q) => {
                    if participant_rank(p.status.as_deref()) > participant_rank(q.status.as_deref())
                    {
                        q.status = p.status;
                    }
                    q.connected_at = q.connected_at.take().or(p.connected_at);
                    q.ended_at = q.ended_at.take().or(p.ended_at);
                    q.dn = q.dn.take().or(p.dn);
                    q.agent = q.agent.take().or(p.agent);
                }
                None => item.participants.push(p),
            }
        }
        if let Some(v) = new.voicemail {
            if let Some(status) = &v.status {
                self.voicemail_statuses
                    .entry(status.clone())
                    .and_modify(|t| *t = (*t).min(at))
                    .or_insert(at);
            }
            let kept = item
                .voicemail
                .get_or_insert(crate::connectors::ccai::Voicemail {
                    url: None,
                    duration: None,
                    status: None,
                });
            keep(&mut kept.url, v.url, times, "voicemail.url", at);
            keep(
                &mut kept.duration,
                v.duration,
                times,
                "voicemail.duration",
                at,
            );
            keep(&mut kept.status, v.status, times, "voicemail.status", at);
        }
        for (index, t) in new.transfers.into_iter().enumerate() {
            let key = format!("transfer.{}", transfer_identity(index, &t));
            let position = item
                .transfers
                .iter()
                .enumerate()
                .position(|(i, k)| format!("transfer.{}", transfer_identity(i, k)) == key);
            let newer = is_newer(times, &key, at);
            match position {
                Some(i) if newer => {
                    item.transfers[i] = t;
                    times.insert(key, at);
                }
                Some(_) => {}
                None => {
                    item.transfers.push(t);
                    times.insert(key, at);
                }
            }
        }
        for action in new.smart_actions {
            match item.smart_actions.iter_mut().find(|a| a.id == action.id) {
                Some(kept) => merge_action(kept, action),
                None => item.smart_actions.push(action),
            }
        }
        for (key, entry) in new.custom_data {
            let time_key = format!("custom_data.{key}");
            if is_newer(times, &time_key, at) || !item.custom_data.contains_key(&key) {
                item.custom_data.insert(key, entry);
                times.insert(time_key, at);
            }
        }
        keep(
            &mut self.transcript,
            update.transcript,
            times,
            "transcript",
            at,
        );
    }

    /// The session as the rules see it.
    pub fn session(&self, region: Region) -> Session {
        normalize::session_from_item(&self.item, region)
    }

    /// Every transition the merged state implies, derived or not, in
    /// canonical order.
    pub fn transitions(&self, session: &Session) -> Vec<Transition> {
        let item = &self.item;
        let mut out = Vec::new();
        let mut push = |key: String, kind: EventKind| out.push(Transition { key, kind });
        let callback = item.callback.as_ref().and_then(|c| match c.kind.as_str() {
            "hangup_and_callback" => Some(("hangup-and-callback", EventKind::HangupAndCallback)),
            "short_call_callback" => Some(("short-call-callback", EventKind::ShortCallCallback)),
            _ => None,
        });
        match callback {
            // A call-back known from the start is how the session is
            // created: its own rule (TU5, TU6) records it.
            Some((key, kind)) if !self.derived.contains("created") => push(key.into(), kind),
            other => {
                push("created".into(), EventKind::Created);
                if let Some((key, kind)) = other {
                    push(key.into(), kind);
                }
            }
        }
        if item.queued_at.is_some() {
            push("queued".into(), EventKind::Queued);
        }
        let mut transfers_left: Vec<(String, &Transfer)> = item
            .transfers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.status.as_deref().is_none_or(|s| s == "transferred"))
            .map(|(i, t)| (transfer_identity(i, t), t))
            .collect();
        // The current agent is the newest one: once their steps were
        // derived, an earlier agent learned late is history, not a step to
        // apply (it would take the conversation back from them).
        let current = item.agent.as_ref().map(|a| a.id);
        let current_derived = current.is_some_and(|id| {
            self.derived.contains(&format!("assigned:{id}"))
                || self.derived.contains(&format!("connected:{id}"))
        });
        for (agent, assigned, connected) in self.agents() {
            let superseded = current_derived && current != Some(agent.id);
            let (assigned, connected) = (assigned && !superseded, connected && !superseded);
            if assigned {
                push(
                    format!("assigned:{}", agent.id),
                    EventKind::Assigned(normalize::agent(agent)),
                );
            }
            if connected {
                push(
                    format!("connected:{}", agent.id),
                    EventKind::Connected(normalize::agent(agent)),
                );
            }
            transfers_left.retain(|(id, t)| {
                if t.from_agent.as_ref().is_some_and(|a| a.id == agent.id) {
                    push(
                        format!("transfer:{id}"),
                        EventKind::Transferred(normalize::transfer(t)),
                    );
                    false
                } else {
                    true
                }
            });
        }
        for (id, t) in transfers_left {
            push(
                format!("transfer:{id}"),
                EventKind::Transferred(normalize::transfer(t)),
            );
        }
        let sid = &session.id;
        if let Some(v) = &item.voicemail {
            let url = v.url.as_deref().or(item.recording_url.as_deref());
            push(
                "voicemail-left".into(),
                EventKind::VoicemailLeft(normalize::voicemail(url, v.duration, sid)),
            );
        } else if item.status.as_deref() == Some("disconnected")
            || (item.status.is_none() && item.ends_at.is_some())
        {
            if normalize::is_abandoned(item.fail_reason.as_deref()) {
                push("abandoned".into(), EventKind::Abandoned);
            } else {
                push("ended".into(), EventKind::Ended);
            }
        }
        for action in &item.smart_actions {
            if let Some(kind) = normalize::smart_action_event(action) {
                push(format!("smart-action:{}", action.id), kind);
            }
        }
        let mut statuses: Vec<(&String, &i64)> = self.voicemail_statuses.iter().collect();
        statuses.sort_by_key(|(status, at)| (**at, status.as_str()));
        for (status, _) in statuses {
            if let Some(action) = normalize::voicemail_action(status) {
                push(
                    format!("voicemail-{}", normalize::action_slug(action)),
                    EventKind::VoicemailUpdated(action),
                );
            }
        }
        if item.voicemail.is_none() {
            if let Some(url) = &item.recording_url {
                push(
                    "recording-ready".into(),
                    EventKind::RecordingReady(normalize::file_from_url(
                        url,
                        &format!("{sid}.mp3"),
                        "audio/mpeg",
                    )),
                );
            }
        }
        if let Some(text) = &self.transcript {
            push(
                "transcript-ready".into(),
                EventKind::TranscriptReady(File {
                    name: format!("{sid}-transcript.txt"),
                    content_type: "text/plain".into(),
                    source: FileSource::Inline(text.clone()),
                }),
            );
        } else if let Some(url) = &item.transcript_url {
            push(
                "transcript-ready".into(),
                EventKind::TranscriptReady(normalize::file_from_url(
                    url,
                    &format!("{sid}.txt"),
                    "text/plain",
                )),
            );
        }
        if let Some(score) = item.rating {
            push(
                "rated".into(),
                EventKind::Rated(Rating {
                    score,
                    comment: item.rating_comment.clone(),
                }),
            );
        }
        let data = self.custom_data();
        if self
            .custom_data_sent
            .as_ref()
            .is_some_and(|sent| *sent != data)
        {
            push(
                format!("custom-data:{}", digest(&data)),
                EventKind::CustomData(session.custom_data.clone()),
            );
        }
        out
    }

    /// Agents in the order they joined: whether each was assigned and
    /// whether each answered.
    fn agents(&self) -> Vec<(&AgentInfo, bool, bool)> {
        let item = &self.item;
        let current = item.agent.as_ref();
        let mut out: Vec<(&AgentInfo, bool, bool)> = Vec::new();
        for p in &item.participants {
            let Some(agent) = p
                .agent
                .as_ref()
                .filter(|_| p.kind.as_deref() == Some("agent"))
            else {
                continue;
            };
            let connected = p.connected_at.is_some()
                || p.status.as_deref() == Some("connected")
                || (current.is_some_and(|c| c.id == agent.id) && item.connected_at.is_some());
            out.push((agent, true, connected));
        }
        if let Some(agent) = current {
            if !out.iter().any(|(a, ..)| a.id == agent.id) {
                out.push((
                    agent,
                    item.assigned_at.is_some(),
                    item.connected_at.is_some(),
                ));
            }
        }
        out
    }

    fn custom_data(&self) -> BTreeMap<String, String> {
        self.item
            .custom_data
            .iter()
            .map(|(k, v)| (k.clone(), value_text(&v.value)))
            .collect()
    }

    /// The transitions not derived yet, as events for the inbox, and
    /// records them as derived. All get the update's time, never earlier
    /// than the session's previous transitions.
    pub fn derive(&mut self, at_ms: i64, region: Region) -> Vec<Normalised> {
        let session = self.session(region);
        let fresh: Vec<Transition> = self
            .transitions(&session)
            .into_iter()
            .filter(|t| !self.derived.contains(&t.key))
            .collect();
        if self.customer_key.is_none() {
            self.customer_key = Some(normalize::customer_key(&session));
        }
        if fresh.is_empty() {
            return Vec::new();
        }
        let at = from_ms(at_ms.max(self.last_ms));
        self.last_ms = at.timestamp_millis();
        self.custom_data_sent = Some(self.custom_data());
        fresh
            .into_iter()
            .map(|t| {
                self.derived.insert(t.key.clone());
                Normalised::new(
                    format!("{}:{}", session.id, t.key),
                    at,
                    session.clone(),
                    t.kind,
                )
            })
            .collect()
    }
}

fn merge_action(kept: &mut SmartAction, new: SmartAction) {
    if action_rank(new.status.as_deref()) >= action_rank(kept.status.as_deref()) {
        kept.status = new.status.or(kept.status.take());
        if !new.results.is_empty() {
            kept.results = new.results;
        }
        if !new.files.is_empty() {
            kept.files = new.files;
        }
        kept.error = new.error.or(kept.error.take());
    }
    kept.name = kept.name.take().or(new.name);
    kept.kind = kept.kind.take().or(new.kind);
}

/// A short, stable digest of custom data (the key of a custom-data change).
fn digest(data: &BTreeMap<String, String>) -> String {
    let mut hash = sha2::Sha256::new();
    for (k, v) in data {
        hash.update(k.as_bytes());
        hash.update([0]);
        hash.update(v.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Merges `updates` into their sessions' ledgers and stores the transitions
/// they derive, all in one transaction (with the poller's cursor, when
/// given). `source` names the intake in the inbox rows.
pub fn reconcile(
    store: &Store,
    tenant: &str,
    region: Region,
    source: &str,
    updates: Vec<Update>,
    cursor: Option<(&str, &str)>,
) -> Result<Reconciled, StoreError> {
    let updates = updates.into_iter().map(|u| (u.session_id(), u)).collect();
    store.reconcile(tenant, updates, cursor, |stored, update| {
        let mut ledger = match stored.map(serde_json::from_str::<Ledger>) {
            None => Ledger::default(),
            Some(Ok(ledger)) => ledger,
            Some(Err(error)) => {
                // Starting over re-derives transitions the inbox already
                // holds under the same ids: nothing is applied twice.
                tracing::warn!(tenant, %error, "unreadable session ledger; rebuilt from this update");
                Ledger::default()
            }
        };
        let at = update.at_ms;
        ledger.merge(update);
        let events = ledger.derive(at, region);
        let key = ledger.customer_key.clone().unwrap_or_default();
        Merged {
            state: serde_json::to_string(&ledger).unwrap_or_default(),
            events: events
                .into_iter()
                .map(|n| n.into_inbox(tenant, source, key.clone()))
                .collect(),
        }
    })
}

/// Stores a chat webhook whose signature verified: its message kept for the
/// transcript, the transcript rebuilt from the kept messages when the chat
/// ends (CT1), then the update merged as by [`reconcile`]. `received` dates a
/// webhook without a time of its own.
pub fn reconcile_webhook(
    store: &Store,
    tenant: &str,
    region: Region,
    hook: &ChatWebhook,
    received: DateTime<Utc>,
    cursor: Option<(&str, &str)>,
) -> Result<Reconciled, StoreError> {
    let at = normalize::webhook_time(hook, received);
    let session_id = normalize::session_id(ItemChannel::Chat, hook.chat_id);
    let mut outcome = normalize::from_webhook(hook, at);
    if let Some(message) = &outcome.message {
        store.add_chat_message(tenant, &session_id, message)?;
    }
    if outcome.wants_transcript {
        let messages = store.chat_messages(tenant, &session_id)?;
        if !messages.is_empty() {
            outcome.update.transcript = Some(normalize::transcript_text(&messages));
        }
    }
    reconcile(
        store,
        tenant,
        region,
        "chat-webhook",
        vec![outcome.update],
        cursor,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::item::SessionEventEnvelope;
    use crate::intake::normalize::update_from_envelope;
    use proptest::prelude::*;
    use switchboard_emulators::ccai::{call_updates, strategies, CallOutcome, CallSpec};

    fn spec(outcome: CallOutcome) -> CallSpec {
        CallSpec {
            transfers: 1,
            recording: true,
            rating: Some(4),
            smart_action: Some(true),
            tier: Some(("gold".into(), Some("platinum".into()))),
            voicemail_actions: 3,
            ..CallSpec::new(1001, "+1 415-555-0101", outcome)
        }
    }

    fn updates(spec: &CallSpec) -> Vec<Update> {
        call_updates(spec)
            .into_iter()
            .map(|v| {
                let envelope: SessionEventEnvelope =
                    serde_json::from_value(v).expect("generated updates parse");
                update_from_envelope(&envelope)
            })
            .collect()
    }

    /// Delivers `updates` one at a time; the keys derived, in order.
    fn deliver(ledger: &mut Ledger, updates: impl IntoIterator<Item = Update>) -> Vec<String> {
        let mut keys = Vec::new();
        for update in updates {
            let at = update.at_ms;
            ledger.merge(update);
            for n in ledger.derive(at, Region::default()) {
                keys.push(
                    n.event
                        .id
                        .split_once(':')
                        .map(|(_, k)| k.to_string())
                        .unwrap_or_default(),
                );
            }
        }
        keys
    }

    #[test]
    fn se6_updates_in_reverse_order_derive_every_step_once_in_canonical_order() {
        let all = updates(&spec(CallOutcome::Answered));
        let mut ledger = Ledger::default();
        let keys = deliver(&mut ledger, all.iter().rev().cloned());
        let mut in_order = Ledger::default();
        let expected = deliver(&mut in_order, all.iter().cloned());
        // Smart Actions and custom-data changes have no place in the
        // lifecycle: learned late, they come after it.
        let lifecycle = |keys: &[String]| -> Vec<String> {
            keys.iter()
                .filter(|k| !k.starts_with("custom-data") && !k.starts_with("smart-action"))
                .cloned()
                .collect()
        };
        assert_eq!(
            lifecycle(&keys),
            lifecycle(&expected),
            "the last update implies every earlier step, in order"
        );
        assert!(keys.contains(&"smart-action:sa-1".to_string()), "{keys:?}");
        assert_eq!(
            keys[..3],
            ["created".to_string(), "queued".into(), "assigned:21".into()]
        );
        assert!(keys.contains(&"recording-ready".to_string()), "{keys:?}");
        assert!(keys.contains(&"ended".to_string()), "{keys:?}");
        let session = ledger.session(Region::default());
        assert_eq!(session.durations.wait_seconds, Some(15), "durations kept");
    }

    #[test]
    fn se3_a_repeated_update_derives_nothing() {
        let all = updates(&spec(CallOutcome::Answered));
        let mut ledger = Ledger::default();
        deliver(&mut ledger, all.iter().cloned());
        let before = ledger.derived.clone();
        for update in all {
            assert!(deliver(&mut ledger, [update]).is_empty());
        }
        assert_eq!(ledger.derived, before);
    }

    #[test]
    fn se4_an_older_value_never_replaces_a_newer_one() {
        let all = updates(&spec(CallOutcome::Answered));
        let mut ledger = Ledger::default();
        deliver(&mut ledger, all.iter().cloned());
        // `session_created` with `gold` delivered again after `platinum`.
        assert!(deliver(&mut ledger, [all[0].clone()]).is_empty());
        let session = ledger.session(Region::default());
        let tier = session
            .custom_data
            .iter()
            .find(|d| d.key == "tier")
            .expect("tier");
        assert_eq!(tier.value, "platinum");
        assert_eq!(
            ledger.item.status.as_deref(),
            Some("disconnected"),
            "status never moves back"
        );
    }

    #[test]
    fn se2_event_type_is_a_hint_the_item_alone_is_enough() {
        let with = updates(&spec(CallOutcome::Answered));
        let without = updates(&CallSpec {
            event_types: false,
            ..spec(CallOutcome::Answered)
        });
        let (mut a, mut b) = (Ledger::default(), Ledger::default());
        assert_eq!(deliver(&mut a, with), deliver(&mut b, without));
        // A bare hint fills what the item leaves out.
        let mut ledger = Ledger::default();
        let bare = Update {
            at_ms: 1_000,
            item: SessionItem {
                id: 7,
                ..SessionItem::default()
            },
            hint: Some("session_ended".into()),
            transcript: None,
        };
        assert_eq!(deliver(&mut ledger, [bare]), ["created", "ended"]);
    }

    #[test]
    fn tc5_a_voicemail_is_the_only_outcome_of_its_call() {
        let mut ledger = Ledger::default();
        let keys = deliver(&mut ledger, updates(&spec(CallOutcome::Voicemail)));
        assert!(keys.contains(&"voicemail-left".to_string()), "{keys:?}");
        assert!(
            !keys.iter().any(|k| k == "ended" || k == "abandoned"),
            "{keys:?}"
        );
        assert_eq!(
            keys.iter().filter(|k| k.starts_with("voicemail-")).count(),
            4,
            "left, read, closed, called back: {keys:?}"
        );
    }

    #[test]
    fn tc1_an_ivr_hang_up_before_any_queue_ends_the_session() {
        let mut ledger = Ledger::default();
        let keys = deliver(&mut ledger, updates(&spec(CallOutcome::IvrHangUp)));
        assert_eq!(keys.first().map(String::as_str), Some("created"));
        assert!(keys.contains(&"ended".to_string()), "{keys:?}");
        assert!(!keys.contains(&"queued".to_string()), "{keys:?}");
    }

    #[test]
    fn tc4_an_abandoned_call_is_abandoned_not_ended() {
        let mut ledger = Ledger::default();
        let keys = deliver(&mut ledger, updates(&spec(CallOutcome::Abandoned)));
        assert!(keys.contains(&"abandoned".to_string()), "{keys:?}");
        assert!(!keys.contains(&"ended".to_string()), "{keys:?}");
    }

    #[test]
    fn se3_chat_webhooks_and_final_records_delivered_again_derive_nothing() {
        use crate::intake::item::ChatWebhook;
        use crate::intake::normalize::{from_webhook, update_from_call, update_from_chat};
        let at = |s: i64| from_ms((1_768_467_600 + s) * 1000);
        let hook = |event_type: &str, body: serde_json::Value| -> ChatWebhook {
            serde_json::from_value(serde_json::json!({
                "event_type": event_type, "chat_id": 77,
                "chat": { "chat_type": "Messaging Inbound (Mobile Chat)", "end_user": { "identifier": "app-77" } },
                "body": body,
            }))
            .expect("webhook")
        };
        let agent = serde_json::json!({ "sender": { "id": 21, "type": "agent", "email": "ada@example.com" } });
        let mut chat_updates: Vec<Update> = vec![
            from_webhook(&hook("chat_created", serde_json::json!({})), at(0)).update,
            from_webhook(&hook("participant_joined", agent), at(5)).update,
            from_webhook(&hook("chat_ended", serde_json::json!({})), at(60)).update,
        ];
        chat_updates[2].transcript = Some("[…] end_user: hello\n".into());
        let chat_record: crate::connectors::ccai::Chat =
            serde_json::from_value(serde_json::json!({
                "id": 77, "status": "finished", "chat_type": "Messaging Inbound (Mobile Chat)",
                "created_at": "2026-01-15T09:00:00.000Z", "ends_at": "2026-01-15T09:01:00.000Z",
                "updated_at": "2026-01-15T09:02:00.000Z", "rating": 5,
            }))
            .expect("chat record");
        chat_updates.push(update_from_chat(&chat_record));
        let call_record: crate::connectors::ccai::Call = serde_json::from_value(serde_json::json!({
            "id": 1001, "status": "voicemail_read", "call_type": "Voice Inbound (IVR)",
            "created_at": "2026-01-15T09:00:00.000Z", "ends_at": "2026-01-15T09:01:00.000Z",
            "updated_at": "2026-01-15T09:20:00.000Z",
            "voicemail": { "url": "https://ccai.example/vm.mp3", "duration": 30, "status": "voicemail_read" },
        }))
        .expect("call record");
        for updates in [chat_updates, vec![update_from_call(&call_record)]] {
            let mut ledger = Ledger::default();
            let first = deliver(&mut ledger, updates.clone());
            assert!(first.contains(&"created".to_string()), "{first:?}");
            let again = deliver(&mut ledger, updates.iter().rev().cloned());
            assert!(again.is_empty(), "delivered again: {again:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any order, repetition and batching of a call's updates derives
        /// the same transitions, each once, `created` first, and leaves the
        /// same session as the in-order delivery.
        #[test]
        fn se5_any_order_or_repetition_derives_the_same_session(
            (spec, (order, _)) in strategies::call_spec().prop_flat_map(|mut spec| {
                spec.id = 4242;
                spec.phone = "+1 415-555-0142".into();
                let n = call_updates(&spec).len();
                (Just(spec), strategies::delivery(n))
            })
        ) {
            let all = updates(&spec);
            let mut reference = Ledger::default();
            let expected = deliver(&mut reference, all.iter().cloned());
            let mut ledger = Ledger::default();
            let keys = deliver(&mut ledger, order.iter().map(|&i| all[i].clone()));
            prop_assert_eq!(keys.first().map(String::as_str), Some("created"));
            let unique: BTreeSet<&String> = keys.iter().collect();
            prop_assert_eq!(unique.len(), keys.len(), "a transition derived twice: {:?}", keys);
            let plain = |k: &Vec<String>| -> BTreeSet<String> {
                k.iter().filter(|k| !k.starts_with("custom-data")).cloned().collect()
            };
            prop_assert_eq!(plain(&keys), plain(&expected));
            prop_assert_eq!(ledger.session(Region::default()), reference.session(Region::default()));
            let terminal = keys
                .iter()
                .filter(|k| matches!(k.as_str(), "ended" | "abandoned" | "voicemail-left"))
                .count();
            prop_assert!(terminal <= 1, "{:?}", keys);
        }
    }
}
