//! Named contact-centre scenarios, one per SPEC rule of §2–4. Each is the
//! sequence of deliveries CCAI Platform would make for it — External
//! Session Events batches (`{count, events[]}`, Basic auth), chat webhooks
//! (HMAC-signed) — plus the final call/chat records the Manager API serves
//! for the same sessions.
//!
//! Times are fixed (2026-01-15, one quarter hour per scenario) and event ids
//! are derived from the session and step, so playing a scenario twice
//! delivers exactly the same events: a sidecar must deduplicate them.
//!
//! The `item` of a session event follows the shape the sidecar's intake
//! documents (`switchboard::intake::session_events`): each update carries
//! the whole session as known so far, enriched step by step as in the
//! platform's documented sequence (start, routing, assigned, active, end,
//! final with dispositions).
//!
//! Files the platform would host (call recordings, voicemails, Smart Action
//! media) are named under [`MEDIA_BASE`], a placeholder that
//! [`Scenario::with_media_base`] rewrites to a running emulator, which serves
//! them at `GET /media/{path}` (see [`media_file`]).

use super::state::iso;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Which External Session Events stream a batch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Calls,
    Chats,
}

/// One delivery or publication of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A `{count, events[]}` batch POSTed to the session-events URL.
    SessionEvents { stream: Stream, batch: Value },
    /// A chat webhook body, POSTed signed to the chat-webhook URL.
    ChatWebhook { body: Value },
    /// The call's final record, served by `GET /manager/api/v1/calls`.
    FinalCall(Value),
    /// The chat's final record, served by `GET /manager/api/v1/chats`.
    FinalChat(Value),
}

/// A named scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `<spec id>_<what>`, e.g. `tu4_transfer`.
    pub name: &'static str,
    /// The SPEC rule ids it exercises.
    pub spec_ids: &'static [&'static str],
    pub description: &'static str,
    pub steps: Vec<Step>,
}

impl Scenario {
    /// All session-event envelopes of the scenario, in delivery order.
    pub fn session_events(&self) -> Vec<Value> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::SessionEvents { batch, .. } => batch["events"].as_array().cloned(),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// All chat webhook bodies of the scenario.
    pub fn chat_webhooks(&self) -> Vec<Value> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::ChatWebhook { body } => Some(body.clone()),
                _ => None,
            })
            .collect()
    }

    /// The same scenario with its file URLs pointing at the emulator at
    /// `base` (e.g. `http://127.0.0.1:41107`) instead of [`MEDIA_BASE`].
    /// Event ids do not change.
    pub fn with_media_base(&self, base: &str) -> Scenario {
        let mut out = self.clone();
        for step in &mut out.steps {
            match step {
                Step::SessionEvents { batch, .. } => rewrite_media(batch, base),
                Step::ChatWebhook { body } => rewrite_media(body, base),
                Step::FinalCall(record) | Step::FinalChat(record) => rewrite_media(record, base),
            }
        }
        out
    }

    /// The final call and chat records.
    pub fn final_records(&self) -> (Vec<Value>, Vec<Value>) {
        let mut calls = Vec::new();
        let mut chats = Vec::new();
        for step in &self.steps {
            match step {
                Step::FinalCall(c) => calls.push(c.clone()),
                Step::FinalChat(c) => chats.push(c.clone()),
                _ => {}
            }
        }
        (calls, chats)
    }
}

/// Placeholder origin of the files scenarios reference; rewritten to the
/// emulator's base URL before a scenario is delivered or published.
pub const MEDIA_BASE: &str = "http://ccai-emulator.invalid";

/// `<MEDIA_BASE>/media/<path>`.
fn media_url(path: &str) -> String {
    format!("{MEDIA_BASE}/media/{path}")
}

/// The content type and deterministic bytes the emulator serves for
/// `GET /media/<path>`: the same path always yields the same file, so tests
/// can compare an attachment with what was served.
pub fn media_file(path: &str) -> (&'static str, Vec<u8>) {
    let extension = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let (content_type, head, tail): (&'static str, &[u8], &[u8]) = match extension.as_str() {
        "mp3" => ("audio/mpeg", b"ID3\x04\x00\x00\x00\x00\x00\x00", b""),
        "wav" => ("audio/wav", b"RIFF", b""),
        "jpg" | "jpeg" => ("image/jpeg", b"\xff\xd8\xff\xe0", b"\xff\xd9"),
        "png" => ("image/png", b"\x89PNG\r\n\x1a\n", b""),
        "txt" => ("text/plain; charset=utf-8", b"", b""),
        _ => ("application/octet-stream", b"", b""),
    };
    let mut body = head.to_vec();
    if content_type.starts_with("text/") {
        body.extend_from_slice(format!("CCAI Platform emulator file {path}\n").as_bytes());
    } else {
        // A few KiB derived from the path: distinct per file, same every run.
        let mut block = Sha256::digest(path.as_bytes()).to_vec();
        for _ in 0..64 {
            body.extend_from_slice(&block);
            block = Sha256::digest(&block).to_vec();
        }
    }
    body.extend_from_slice(tail);
    (content_type, body)
}

/// Rewrites every string starting with [`MEDIA_BASE`] to start with `base`.
fn rewrite_media(value: &mut Value, base: &str) {
    match value {
        Value::String(s) => {
            if let Some(rest) = s.strip_prefix(MEDIA_BASE) {
                *s = format!("{}{rest}", base.trim_end_matches('/'));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_media(v, base)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite_media(v, base)),
        _ => {}
    }
}

/// A UUID-shaped id derived from `seed`, stable across runs.
pub fn stable_uuid(seed: &str) -> String {
    let digest = hex::encode(Sha256::digest(seed.as_bytes()));
    format!(
        "{}-{}-4{}-a{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[13..16],
        &digest[17..20],
        &digest[20..32]
    )
}

fn agent(id: u64, name: &str, email: &str) -> Value {
    json!({ "id": id, "name": name, "email": email })
}

fn ada() -> Value {
    agent(21, "Ada Lovelace", "ada@example.com")
}

fn grace() -> Value {
    agent(22, "Grace Hopper", "grace@example.com")
}

/// Builds a session's updates step by step, each carrying the enriched item.
struct Script {
    stream: Stream,
    item: Map<String, Value>,
    base: DateTime<Utc>,
    seq: u32,
    events: Vec<Value>,
}

impl Script {
    fn new(
        stream: Stream,
        id: u64,
        session_type: &str,
        direction: &str,
        base: DateTime<Utc>,
    ) -> Self {
        let mut item = Map::new();
        item.insert("id".into(), json!(id));
        item.insert(
            "channel".into(),
            json!(if stream == Stream::Calls {
                "call"
            } else {
                "chat"
            }),
        );
        item.insert("session_type".into(), json!(session_type));
        item.insert("direction".into(), json!(direction));
        item.insert("status".into(), json!("connected"));
        item.insert("lang".into(), json!("en"));
        item.insert("created_at".into(), json!(iso(base)));
        item.insert(
            "participants".into(),
            json!([{ "type": "external", "status": "connected" }]),
        );
        Self {
            stream,
            item,
            base,
            seq: 0,
            events: Vec::new(),
        }
    }

    fn at(&self, secs: i64) -> DateTime<Utc> {
        self.base + Duration::seconds(secs)
    }

    fn set(&mut self, key: &str, value: Value) -> &mut Self {
        self.item.insert(key.into(), value);
        self
    }

    fn phone(&mut self, dn: &str) -> &mut Self {
        self.set("dn", json!(dn));
        self.participants_mut()[0]["dn"] = json!(dn);
        self
    }

    fn end_user(&mut self, id: u64, identifier: Option<&str>) -> &mut Self {
        self.set("end_user", json!({ "id": id, "identifier": identifier, "email": null, "name": null, "out_contact_id": null }))
    }

    fn participants_mut(&mut self) -> &mut Vec<Value> {
        if !self.item.get("participants").is_some_and(Value::is_array) {
            self.item.insert("participants".into(), json!([]));
        }
        match self.item.get_mut("participants") {
            Some(Value::Array(list)) => list,
            _ => unreachable!("participants was just made an array"),
        }
    }

    fn agent_participant(&mut self, agent: &Value, status: &str, at: DateTime<Utc>) -> &mut Self {
        let id = agent["id"].clone();
        let participants = self.participants_mut();
        if let Some(p) = participants
            .iter_mut()
            .find(|p| p["type"] == "agent" && p["agent"]["id"] == id)
        {
            p["status"] = json!(status);
            if status == "connected" {
                p["connected_at"] = json!(iso(at));
            }
        } else {
            participants.push(
                json!({ "type": "agent", "status": status, "agent": agent, "connected_at": null }),
            );
        }
        self
    }

    fn all_participants(&mut self, status: &str) -> &mut Self {
        for p in self.participants_mut() {
            p["status"] = json!(status);
        }
        self
    }

    /// Emits one update of the session at `secs` after its start.
    fn emit(&mut self, event_type: &str, secs: i64) -> Value {
        self.emit_with(event_type, secs, None)
    }

    fn emit_with(&mut self, event_type: &str, secs: i64, smart_action_id: Option<&str>) -> Value {
        self.seq += 1;
        let session = format!(
            "{}-{}",
            self.item["channel"].as_str().unwrap_or("call"),
            self.item["id"]
        );
        let mut envelope = json!({
            "event_id": stable_uuid(&format!("{session}/{}/{event_type}", self.seq)),
            "timestamp": self.at(secs).timestamp_millis(),
            "event_type": event_type,
            "item": Value::Object(self.item.clone()),
        });
        if let Some(id) = smart_action_id {
            envelope["smart_action_id"] = json!(id);
        }
        self.events.push(envelope.clone());
        envelope
    }

    fn routed(&mut self, menu_id: u64, menu: &str, secs: i64) -> &mut Self {
        let at = iso(self.at(secs));
        let menu_type = if self.stream == Stream::Calls {
            "ivr_menu"
        } else {
            "mobile_menu"
        };
        self.set("queue_path_names", json!([menu]))
            .set(
                "selected_menu",
                json!({ "id": menu_id, "name": menu, "menu_type": menu_type }),
            )
            .set(
                "menu_path",
                json!({ "items_count": 1, "name": menu, "materialized_path": menu_id.to_string() }),
            )
            .set("initiator", json!("virtual_agent_15"))
            .set("queued_at", json!(at))
    }

    fn assigned(&mut self, agent: &Value, secs: i64) -> &mut Self {
        let at = self.at(secs);
        self.agent_participant(agent, "accepted", at)
            .set("assigned_at", json!(iso(at)))
            .set("agent", agent.clone())
    }

    fn connected(&mut self, agent: &Value, secs: i64) -> &mut Self {
        let at = self.at(secs);
        self.agent_participant(agent, "connected", at)
            .set("connected_at", json!(iso(at)))
    }

    fn ended(&mut self, secs: i64, call: u32, hold: u32, wait: u32) -> &mut Self {
        let at = iso(self.at(secs));
        self.all_participants("disconnected")
            .set("status", json!("disconnected"))
            .set("ends_at", json!(at))
            .set("call_duration", json!(call))
            .set("hold_duration", json!(hold))
            .set("wait_duration", json!(wait))
    }

    /// The standard lifecycle of an answered session: start, routing,
    /// assigned, active, end, final (dispositions).
    fn answered(&mut self, menu_id: u64, menu: &str, agent: &Value, call_secs: i64) -> &mut Self {
        self.emit("session_created", 0);
        self.routed(menu_id, menu, 5);
        self.emit("session_queued", 5);
        self.assigned(agent, 20);
        self.emit("agent_assigned", 20);
        self.connected(agent, 22);
        self.emit("agent_connected", 22);
        self.ended(22 + call_secs, call_secs as u32, 0, 15);
        self.emit("session_ended", 22 + call_secs);
        self
    }

    fn dispositions(&mut self, secs: i64) -> &mut Self {
        let agent = self.item.get("agent").cloned().unwrap_or(Value::Null);
        self.agent_participant(&agent, "dispositionSubmitted", self.at(secs));
        self.set(
            "dispositions",
            json!({ "code": "resolved", "custom_code_id": 7, "note": "Customer helped" }),
        );
        self.emit("disposition_submitted", secs);
        self
    }

    fn batch(events: Vec<Value>) -> Value {
        json!({ "count": events.len(), "events": events })
    }

    /// All updates as one batch each, in order.
    fn steps(&self) -> Vec<Step> {
        self.events
            .iter()
            .map(|e| Step::SessionEvents {
                stream: self.stream,
                batch: Self::batch(vec![e.clone()]),
            })
            .collect()
    }

    /// All updates in a single batch.
    fn one_batch(&self) -> Step {
        Step::SessionEvents {
            stream: self.stream,
            batch: Self::batch(self.events.clone()),
        }
    }

    /// The final Manager API record of this session.
    fn final_record(&self) -> Value {
        let item = &self.item;
        let get = |k: &str| item.get(k).cloned().unwrap_or(Value::Null);
        let ends = item
            .get("ends_at")
            .and_then(Value::as_str)
            .map(str::to_string);
        let updated = ends
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| iso(d.with_timezone(&Utc) + Duration::seconds(60)))
            .unwrap_or_else(|| iso(self.base));
        let agent_info = match item.get("agent") {
            Some(a) if a.is_object() => json!({
                "id": a["id"], "name": a["name"], "first_name": null, "last_name": null,
                "agent_number": null, "avatar_url": null, "email": a["email"]
            }),
            _ => Value::Null,
        };
        let status = match (self.stream, item.get("voicemail")) {
            (Stream::Calls, Some(v)) if v.is_object() => v["status"]
                .as_str()
                .unwrap_or("voicemail_received")
                .to_string(),
            (Stream::Calls, _)
                if get("fail_reason")
                    .as_str()
                    .is_some_and(|r| r.contains("abandon")) =>
            {
                "failed".into()
            }
            _ => "finished".into(),
        };
        let mut record = json!({
            "id": get("id"),
            "parent_id": get("parent_id"),
            "lang": get("lang"),
            "status": status,
            "created_at": get("created_at"),
            "queued_at": get("queued_at"),
            "assigned_at": get("assigned_at"),
            "connected_at": get("connected_at"),
            "ends_at": get("ends_at"),
            "updated_at": updated,
            "wait_duration": get("wait_duration"),
            "queue_duration": get("wait_duration"),
            "rating": get("rating"),
            "rating_comment": get("rating_comment"),
            "has_feedback": item.get("rating_comment").is_some_and(|c| !c.is_null()),
            "out_ticket_id": null,
            "out_ticket_url": null,
            "verified": item.get("smart_actions").and_then(Value::as_array).is_some_and(|a| a.iter().any(|s| s["type"] == "verification" && s["status"] == "completed")),
            "fail_reason": item.get("fail_reason").cloned().unwrap_or(json!("nothing")),
            "selected_menu": get("selected_menu"),
            "menu_path": get("menu_path"),
            "agent_info": agent_info,
            "end_user": get("end_user"),
            "transfers": item.get("transfers").cloned().unwrap_or(json!([])),
            "smart_actions": item.get("smart_actions").cloned().unwrap_or(json!([])),
            "photos": [],
            "videos": [],
        });
        if self.stream == Stream::Calls {
            record["call_type"] = get("session_type");
            record["session_type_v2"] = get("session_type");
            record["call_duration"] = get("call_duration");
            record["hold_duration"] = get("hold_duration");
            record["recording_url"] = get("recording_url");
            record["voicemail_reason"] = json!(if item.contains_key("voicemail") {
                "voicemail_by_user"
            } else {
                "not_voicemail"
            });
            record["voicemail"] = get("voicemail");
            record["end_user_number"] = get("dn");
        } else {
            record["chat_type"] = get("session_type");
            record["session_type_v2"] = get("session_type");
            record["chat_duration"] = get("call_duration");
            record["transcript"] = json!(true);
            record["sub_status"] = json!("Disconnected by end user");
            record["finish_reason"] = json!("finish_reason_none");
            record["message_count"] = json!(3);
        }
        record
    }

    fn final_step(&self) -> Step {
        match self.stream {
            Stream::Calls => Step::FinalCall(self.final_record()),
            Stream::Chats => Step::FinalChat(self.final_record()),
        }
    }
}

fn base(index: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        + Duration::minutes(15 * index)
}

fn ivr_call(id: u64, index: i64, dn: &str) -> Script {
    let mut s = Script::new(
        Stream::Calls,
        id,
        "Voice Inbound (IVR)",
        "inbound",
        base(index),
    );
    s.phone(dn).end_user(id + 500, None);
    s
}

/// A chat webhook body (`event_type`, `timestamp`, `chat_id`, `chat`, `body`).
fn webhook(event_type: &str, at: DateTime<Utc>, chat: &Value, body: Value) -> Step {
    Step::ChatWebhook {
        body: json!({
            "event_type": event_type,
            "timestamp": iso(at),
            "chat_id": chat["id"],
            "chat": chat,
            "body": body,
        }),
    }
}

fn message(id: &str, sender_type: &str, sender_id: u64, content: &str) -> Value {
    json!({
        "message_id": id,
        "sender": { "id": sender_id, "type": sender_type, "status": "connected" },
        "message": { "type": "text", "content": content }
    })
}

/// A mobile chat with its session events and chat webhooks.
fn mobile_chat(id: u64, index: i64, identifier: &str, with_custom_data: bool) -> Vec<Step> {
    let b = base(index);
    let mut s = Script::new(
        Stream::Chats,
        id,
        "Messaging Inbound (Mobile Chat)",
        "inbound",
        b,
    );
    s.end_user(id + 500, Some(identifier));
    s.set("end_user", json!({ "id": id + 500, "identifier": identifier, "email": format!("{identifier}@example.com"), "name": "Mo Bile", "out_contact_id": null }));
    if with_custom_data {
        s.set(
            "custom_data",
            json!({
                "account_tier": { "value": "gold", "type": "string", "label": "Account tier" },
                "loyalty_tier": { "value": "platinum", "type": "string", "label": "Loyalty tier" },
                "order_id": { "value": "A-1001", "type": "string", "label": "Order" }
            }),
        );
    }
    s.emit("session_created", 0);
    if with_custom_data {
        // The chat webhook usually creates the session first, so the data
        // reaches the sidecar as its own update, as for mobile calls.
        s.emit("custom_data", 1);
    }
    s.routed(20, "App Support", 3);
    s.emit("session_queued", 3);
    s.assigned(&ada(), 10);
    s.emit("agent_assigned", 10);
    s.connected(&ada(), 11);
    s.emit("agent_connected", 11);
    s.ended(120, 109, 0, 8);
    s.emit("session_ended", 120);
    let chat = json!({
        "id": id, "chat_type": "Messaging Inbound (Mobile Chat)", "lang": "en",
        "menu": { "id": 20, "name": "App Support", "materialized_path": "20" },
        "end_user": { "id": id + 500, "identifier": identifier, "email": format!("{identifier}@example.com"), "name": "Mo Bile" }
    });
    let mut steps = vec![webhook("chat_created", b, &chat, json!({}))];
    let opening = if with_custom_data { 3 } else { 2 };
    steps.extend(s.steps().into_iter().take(opening));
    steps.push(webhook(
        "message_received",
        b + Duration::seconds(4),
        &chat,
        message("m1", "end_user", id + 500, "Hi, my order is late"),
    ));
    steps.push(webhook("participant_joined", b + Duration::seconds(11), &chat, json!({ "sender": { "id": 21, "type": "agent", "name": "Ada Lovelace", "email": "ada@example.com", "status": "connected", "connected_at": iso(b + Duration::seconds(11)) } })));
    steps.push(webhook(
        "message_received",
        b + Duration::seconds(30),
        &chat,
        message("m2", "agent", 21, "Let me check that for you"),
    ));
    steps.push(webhook(
        "message_received",
        b + Duration::seconds(60),
        &chat,
        message("m3", "end_user", id + 500, "Thanks!"),
    ));
    steps.extend(s.steps().into_iter().skip(opening));
    steps.push(webhook(
        "chat_ended",
        b + Duration::seconds(120),
        &chat,
        json!({}),
    ));
    steps.push(s.final_step());
    steps
}

fn scenario(
    name: &'static str,
    spec_ids: &'static [&'static str],
    description: &'static str,
    steps: Vec<Step>,
) -> Scenario {
    Scenario {
        name,
        spec_ids,
        description,
        steps,
    }
}

/// Every scenario, one (at least) per SPEC id of §2–4, then `demo_vip_caller`.
pub fn scenarios() -> Vec<Scenario> {
    let mut all = Vec::new();

    // TC1: inbound IVR call; updates arrive out of order and one twice.
    let mut s = ivr_call(1001, 0, "+1 415-555-0101");
    s.answered(9, "Lock Star", &ada(), 95).dispositions(130);
    let events = s.events.clone();
    let first = Script::batch(vec![events[1].clone(), events[0].clone()]);
    let second = Script::batch(vec![
        events[3].clone(),
        events[2].clone(),
        events[2].clone(),
        events[4].clone(),
        events[5].clone(),
    ]);
    all.push(scenario(
        "tc1_inbound_ivr_call",
        &["TC1", "SD1", "PN1"],
        "Inbound IVR call answered by Ada; updates delivered out of order and one duplicated",
        vec![
            Step::SessionEvents {
                stream: Stream::Calls,
                batch: first,
            },
            Step::SessionEvents {
                stream: Stream::Calls,
                batch: second,
            },
            s.final_step(),
        ],
    ));

    all.push(scenario(
        "tc1_mobile_chat",
        &["TC1"],
        "Mobile SDK chat: session events and chat webhooks",
        mobile_chat(2001, 1, "app-user-2001", false),
    ));

    let mut s = ivr_call(1002, 2, "+1 415-555-0102");
    s.answered(10, "Billing", &grace(), 240);
    all.push(scenario(
        "tc2_ivr_call_answered",
        &["TC2", "AA1"],
        "IVR call to Billing answered by Grace",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let outbound = |id: u64, index: i64, dn: &str| {
        let mut s = Script::new(
            Stream::Calls,
            id,
            "Voice Outbound (API)",
            "outbound",
            base(index),
        );
        s.phone(dn).end_user(id + 500, None);
        s.emit("session_created", 0);
        s.assigned(&ada(), 0);
        s.emit("agent_assigned", 0);
        s.connected(&ada(), 12);
        s.emit("agent_connected", 12);
        s.ended(200, 188, 0, 0);
        s.emit("session_ended", 200);
        s
    };
    let s = outbound(1003, 3, "+1 415-555-0103");
    all.push(scenario(
        "tc3_outbound_call",
        &["TC3"],
        "Outbound call by Ada (the sidecar decides new vs follow-up)",
        [s.steps(), vec![s.final_step()]].concat(),
    ));
    let s = outbound(1004, 4, "+1 415-555-0101");
    all.push(scenario(
        "tu2_outbound_follow_up",
        &["TU2"],
        "Outbound call by Ada to the TC1 caller",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let mut s = ivr_call(1005, 5, "+1 415-555-0105");
    s.emit("session_created", 0);
    s.routed(9, "Lock Star", 5);
    s.emit("session_queued", 5);
    s.ended(48, 48, 0, 43)
        .set("fail_reason", json!("eu_abandoned"));
    s.emit("session_ended", 48);
    all.push(scenario(
        "tc4_abandoned_call",
        &["TC4"],
        "Caller hangs up in the queue",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let voicemail = |id: u64, index: i64| {
        let mut s = ivr_call(id, index, "+1 415-555-0106");
        s.emit("session_created", 0);
        s.routed(9, "Lock Star", 5);
        s.emit("session_queued", 5);
        s.set("voicemail", json!({ "url": media_url(&format!("recordings/voicemail-{id}.mp3")), "duration": 34, "status": "voicemail_received" }));
        s.ended(75, 75, 0, 30);
        s.emit("voicemail_left", 75);
        s
    };
    let s = voicemail(1006, 6);
    all.push(scenario(
        "tc5_voicemail",
        &["TC5"],
        "Caller leaves a voicemail",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let mut s = voicemail(1007, 7);
    for (status, secs) in [
        ("voicemail_read", 600),
        ("voicemail_closed", 900),
        ("voicemail_called_back", 1200),
    ] {
        if let Some(v) = s.item.get_mut("voicemail") {
            v["status"] = json!(status);
        }
        s.emit("voicemail_updated", secs);
    }
    all.push(scenario(
        "tu11_voicemail_actions",
        &["TU11", "TC5"],
        "Voicemail read, closed, then called back by an agent",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let mut first = ivr_call(1008, 8, "+1 415-555-0108");
    first.answered(9, "Lock Star", &ada(), 60);
    let mut second = ivr_call(1009, 9, "+1 415-555-0108");
    second.answered(9, "Lock Star", &grace(), 45);
    all.push(scenario(
        "tu1_repeat_call_same_menu",
        &["TU1"],
        "Two calls from the same number to the same menu",
        [
            first.steps(),
            vec![first.final_step()],
            second.steps(),
            vec![second.final_step()],
        ]
        .concat(),
    ));

    let mut s = ivr_call(1010, 10, "+1 415-555-0110");
    s.answered(9, "Lock Star", &ada(), 180);
    s.set(
        "recording_url",
        json!(media_url("recordings/call-1010.mp3")),
    );
    s.emit("recording_ready", 215);
    all.push(scenario(
        "tu3_call_recording",
        &["TU3"],
        "Call ends and its recording is ready",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let mut s = ivr_call(1011, 11, "+1 415-555-0111");
    s.emit("session_created", 0);
    s.routed(9, "Lock Star", 5);
    s.emit("session_queued", 5);
    s.assigned(&ada(), 15);
    s.emit("agent_assigned", 15);
    s.connected(&ada(), 16);
    s.emit("agent_connected", 16);
    s.set("transfers", json!([{ "id": 71, "status": "transferred", "created_at": iso(base(11) + Duration::seconds(90)), "from_agent": ada(), "to_agent": grace(), "to_menu": { "name": "Billing", "materialized_path": "10" } }]));
    s.assigned(&grace(), 90).connected(&grace(), 92);
    s.emit("session_transferred", 92);
    s.ended(300, 284, 20, 10);
    s.emit("session_ended", 300);
    all.push(scenario(
        "tu4_transfer",
        &["TU4"],
        "Ada transfers the call to Grace in Billing",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let mut first = ivr_call(1012, 12, "+1 415-555-0112");
    first.answered(9, "Lock Star", &ada(), 40);
    let mut cb = Script::new(
        Stream::Calls,
        1013,
        "Voice Outbound",
        "outbound",
        base(12) + Duration::seconds(90),
    );
    cb.phone("+1 415-555-0112")
        .end_user(1512, None)
        .set("parent_id", json!(1012))
        .set(
            "callback",
            json!({ "type": "hangup_and_callback", "parent_id": 1012 }),
        );
    cb.assigned(&ada(), 0);
    cb.emit("hangup_and_callback", 0);
    cb.connected(&ada(), 8);
    cb.emit("agent_connected", 8);
    cb.ended(100, 92, 0, 0);
    cb.emit("session_ended", 100);
    all.push(scenario(
        "tu5_hangup_and_callback",
        &["TU5"],
        "Agent hangs up and calls the customer back",
        [
            first.steps(),
            cb.steps(),
            vec![first.final_step(), cb.final_step()],
        ]
        .concat(),
    ));

    let mut first = ivr_call(1014, 13, "+1 415-555-0114");
    first.answered(9, "Lock Star", &ada(), 6);
    let mut cb = Script::new(
        Stream::Calls,
        1015,
        "Voice Outbound",
        "outbound",
        base(13) + Duration::seconds(60),
    );
    cb.phone("+1 415-555-0114")
        .end_user(1514, None)
        .set("parent_id", json!(1014))
        .set(
            "callback",
            json!({ "type": "short_call_callback", "parent_id": 1014 }),
        );
    cb.assigned(&ada(), 0);
    cb.emit("short_call_callback", 0);
    cb.ended(70, 70, 0, 0);
    cb.emit("session_ended", 70);
    all.push(scenario(
        "tu6_short_call_callback",
        &["TU6"],
        "A 6-second call, then the agent presses Call back",
        [
            first.steps(),
            cb.steps(),
            vec![first.final_step(), cb.final_step()],
        ]
        .concat(),
    ));

    let mut s = Script::new(
        Stream::Calls,
        1016,
        "Voice inbound (Mobile)",
        "inbound",
        base(14),
    );
    s.phone("+1 415-555-0116")
        .end_user(1516, Some("app-user-1016"));
    s.answered(20, "App Support", &ada(), 150);
    s.set("smart_actions", json!([{
        "id": "sa-1", "type": "photo", "name": "Photo request", "status": "completed",
        "results": { "photos": "2", "verified": "true" },
        "files": [
            { "name": "photo-1.jpg", "url": media_url("smart-actions/1016/photo-1.jpg"), "content_type": "image/jpeg" },
            { "name": "photo-2.jpg", "url": media_url("smart-actions/1016/photo-2.jpg"), "content_type": "image/jpeg" }
        ],
        "error": null
    }]));
    s.emit_with("smart_action_completed", 100, Some("sa-1"));
    all.push(scenario(
        "tu7_smart_action_completed",
        &["TU7"],
        "Customer shares two photos through a Smart Action",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let mut s = Script::new(
        Stream::Calls,
        1017,
        "Voice inbound (Mobile)",
        "inbound",
        base(15),
    );
    s.phone("+1 415-555-0117")
        .end_user(1517, Some("app-user-1017"));
    s.answered(20, "App Support", &grace(), 90);
    s.set("smart_actions", json!([{
        "id": "sa-2", "type": "verification", "name": "Fingerprint verification", "status": "failed",
        "results": {}, "files": [],
        "error": { "message": "Fingerprint verification is not enabled on this device", "caused_by": "end_user" }
    }]));
    s.emit_with("smart_action_failed", 60, Some("sa-2"));
    all.push(scenario(
        "tu8_smart_action_failed",
        &["TU8"],
        "Fingerprint verification fails on the customer's device",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let mut s = Script::new(
        Stream::Calls,
        1018,
        "Voice inbound (Mobile)",
        "inbound",
        base(16),
    );
    s.phone("+1 415-555-0118")
        .end_user(1518, Some("app-user-1018"));
    s.set(
        "custom_data",
        json!({
            "account_tier": { "value": "gold", "type": "string", "label": "Account tier" },
            "loyalty_tier": { "value": "silver", "type": "string", "label": "Loyalty tier" },
            "order_id": { "value": "A-1018", "type": "string", "label": "Order" }
        }),
    );
    s.emit("session_created", 0);
    s.emit("custom_data", 2);
    s.routed(20, "App Support", 3);
    s.emit("session_queued", 3);
    all.push(scenario(
        "tu9_sdk_custom_data",
        &["TU9"],
        "Mobile SDK call carrying signed custom data",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let mut s = ivr_call(1019, 17, "+1 415-555-0119");
    s.answered(9, "Lock Star", &ada(), 120);
    s.set("rating", json!(4))
        .set("rating_comment", json!("Quick and friendly"));
    s.emit("rated", 200);
    all.push(scenario(
        "tu10_csat_rating",
        &["TU10"],
        "Caller rates the call 4 with a comment",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let mut s = ivr_call(1020, 18, "+44 20 7946 0958");
    s.answered(9, "Lock Star", &grace(), 30);
    all.push(scenario(
        "cc1_unknown_caller",
        &["CC1", "PN1"],
        "A UK number nobody knows calls",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    all.push(scenario(
        "cc2_new_sdk_user",
        &["CC2", "TC1"],
        "A new app user starts a mobile chat",
        mobile_chat(2002, 19, "app-user-new-2002", false),
    ));

    let mut s = ivr_call(1021, 20, "+1 415-555-0121");
    s.answered(9, "Lock Star", &grace(), 70);
    all.push(scenario(
        "cu1_agent_assignment",
        &["CU1"],
        "A recently created customer's call is assigned to Grace",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    let mut s = ivr_call(1022, 21, "(415) 555-0122");
    s.answered(10, "Billing", &ada(), 50);
    all.push(scenario(
        "pn1_phone_note",
        &["PN1"],
        "Caller id in national format, normalised to E.164",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    all.push(scenario(
        "ct1_chat_transcript",
        &["CT1"],
        "A chat ends and its transcript is attached",
        mobile_chat(2003, 22, "app-user-2003", false),
    ));

    let mut s = ivr_call(1023, 23, "+1 514-555-0123");
    s.set("lang", json!("fr-CA"));
    s.answered(10, "Billing", &ada(), 80);
    all.push(scenario(
        "sd1_standard_data",
        &["SD1"],
        "French-Canadian caller through the Billing menu",
        [vec![s.one_batch()], vec![s.final_step()]].concat(),
    ));

    let mut s = ivr_call(1024, 24, "+1 415-555-0124");
    s.answered(9, "Lock Star", &ada(), 65);
    all.push(scenario(
        "aa1_agent_answers",
        &["AA1"],
        "Ada answers and gets the conversation",
        [s.steps(), vec![s.final_step()]].concat(),
    ));

    all.push(scenario(
        "tu9_chat_custom_data",
        &["TU9"],
        "Mobile chat carrying SDK custom data",
        mobile_chat(2004, 25, "app-user-2004", true),
    ));

    // Not a SPEC rule: the demo's customised tenant. A caller whose SDK
    // custom data says `vip=true` calls the same menu while the first call's
    // conversation is still open; the VIP example module opens a new
    // priority-5 conversation tagged `vip` instead of appending (TU1). Kept
    // last, so the demo plays it after the VIP module went live.
    let mut first = ivr_call(1025, 26, "+1 415-555-0125");
    first.answered(9, "Lock Star", &ada(), 60);
    let mut vip = ivr_call(1026, 27, "+1 415-555-0125");
    vip.set(
        "custom_data",
        json!({
            "vip": { "value": true, "type": "boolean", "label": "VIP" },
            "loyalty_tier": { "value": "gold", "type": "string", "label": "Loyalty tier" }
        }),
    );
    vip.answered(9, "Lock Star", &grace(), 45);
    all.push(scenario(
        "demo_vip_caller",
        &[],
        "A VIP caller (SDK custom data vip=true, loyalty tier gold) calls the menu of an open conversation",
        [
            first.steps(),
            vec![first.final_step()],
            vip.steps(),
            vec![vip.final_step()],
        ]
        .concat(),
    ));

    all
}

/// The scenario named `name`.
pub fn scenario_named(name: &str) -> Option<Scenario> {
    scenarios().into_iter().find(|s| s.name == name)
}

/// How a generated call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Answered by an agent, then ended.
    Answered,
    /// The caller hangs up in the queue.
    Abandoned,
    /// The caller leaves a voicemail.
    Voicemail,
    /// The caller hangs up in the IVR, before choosing a menu.
    IvrHangUp,
}

/// The shape of one generated inbound IVR call (property tests draw these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSpec {
    pub id: u64,
    /// The caller's number, any format the platform sends.
    pub phone: String,
    pub outcome: CallOutcome,
    /// Transfers after the first agent answered (answered calls): 0 to 2.
    pub transfers: u8,
    /// A recording becomes ready after the end (answered calls).
    pub recording: bool,
    /// CSAT score given after the end (answered calls).
    pub rating: Option<u8>,
    /// A Smart Action during the call (answered calls): completed or failed.
    pub smart_action: Option<bool>,
    /// SDK custom data at creation, and a later change of it.
    pub tier: Option<(String, Option<String>)>,
    /// How many of read, closed, called back follow a voicemail: 0 to 3.
    pub voicemail_actions: u8,
    /// Whether updates name their transition (`event_type`); the documented
    /// payload does not.
    pub event_types: bool,
}

impl CallSpec {
    /// A plain call: no transfer, recording, rating, Smart Action, custom
    /// data or voicemail action; updates name their transition.
    pub fn new(id: u64, phone: &str, outcome: CallOutcome) -> Self {
        CallSpec {
            id,
            phone: phone.to_string(),
            outcome,
            transfers: 0,
            recording: false,
            rating: None,
            smart_action: None,
            tier: None,
            voicemail_actions: 0,
            event_types: true,
        }
    }
}

/// The External Session Events updates of a generated call, in the order
/// the platform emits them, each with the whole item as known so far.
pub fn call_updates(spec: &CallSpec) -> Vec<Value> {
    call_script(spec).events
}

/// The final Manager API record of a generated call.
pub fn call_final_record(spec: &CallSpec) -> Value {
    call_script(spec).final_record()
}

fn call_script(spec: &CallSpec) -> Script {
    // One minute apart per id, all in the past: a customer created now is
    // "recent" (CU1) for every generated call.
    let start = base(0) + Duration::minutes(i64::try_from(spec.id % 10_000).unwrap_or(0));
    let mut s = Script::new(
        Stream::Calls,
        spec.id,
        "Voice Inbound (IVR)",
        "inbound",
        start,
    );
    s.phone(&spec.phone).end_user(spec.id + 500, None);
    if let Some((tier, _)) = &spec.tier {
        s.set(
            "custom_data",
            json!({ "tier": { "value": tier, "type": "string", "label": "Tier" } }),
        );
    }
    s.emit("session_created", 0);
    if let Some((_, Some(later))) = &spec.tier {
        s.set(
            "custom_data",
            json!({ "tier": { "value": later, "type": "string", "label": "Tier" } }),
        );
        s.emit("custom_data", 2);
    }
    if spec.outcome == CallOutcome::IvrHangUp {
        s.ended(30, 30, 0, 0);
        s.emit("session_ended", 30);
    } else {
        s.routed(9, "Lock Star", 5);
        s.emit("session_queued", 5);
    }
    match spec.outcome {
        CallOutcome::IvrHangUp => {}
        CallOutcome::Abandoned => {
            s.ended(48, 48, 0, 43)
                .set("fail_reason", json!("eu_abandoned"));
            s.emit("session_ended", 48);
        }
        CallOutcome::Voicemail => {
            s.set("voicemail", json!({ "url": media_url(&format!("recordings/voicemail-{}.mp3", spec.id)), "duration": 34, "status": "voicemail_received" }));
            s.ended(75, 75, 0, 30);
            s.emit("voicemail_left", 75);
            for (n, status) in [
                "voicemail_read",
                "voicemail_closed",
                "voicemail_called_back",
            ]
            .iter()
            .take(usize::from(spec.voicemail_actions))
            .enumerate()
            {
                if let Some(v) = s.item.get_mut("voicemail") {
                    v["status"] = json!(status);
                }
                s.emit("voicemail_updated", 600 + 300 * n as i64);
            }
        }
        CallOutcome::Answered => {
            let agents = [ada(), grace(), agent(23, "Alan Turing", "alan@example.com")];
            s.assigned(&agents[0], 20);
            s.emit("agent_assigned", 20);
            s.connected(&agents[0], 22);
            s.emit("agent_connected", 22);
            let mut at = 22;
            if let Some(completed) = spec.smart_action {
                at += 10;
                let action = if completed {
                    json!([{ "id": "sa-1", "type": "photo", "name": "Photo request", "status": "completed",
                             "results": { "photos": "1" },
                             "files": [{ "name": "photo-1.jpg", "url": media_url(&format!("smart-actions/{}/photo-1.jpg", spec.id)), "content_type": "image/jpeg" }],
                             "error": null }])
                } else {
                    json!([{ "id": "sa-1", "type": "verification", "name": "Fingerprint verification", "status": "failed",
                             "results": {}, "files": [],
                             "error": { "message": "Fingerprint verification is not enabled on this device", "caused_by": "end_user" } }])
                };
                s.set("smart_actions", action);
                s.emit_with(
                    if completed {
                        "smart_action_completed"
                    } else {
                        "smart_action_failed"
                    },
                    at,
                    Some("sa-1"),
                );
            }
            let mut transfers = Vec::new();
            for n in 0..usize::from(spec.transfers.min(2)) {
                at += 30;
                transfers.push(json!({ "id": 70 + n, "status": "transferred", "created_at": iso(start + Duration::seconds(at)),
                                       "from_agent": agents[n], "to_agent": agents[n + 1],
                                       "to_menu": { "name": "Billing", "materialized_path": "10" } }));
                s.set("transfers", json!(transfers));
                s.assigned(&agents[n + 1], at)
                    .connected(&agents[n + 1], at + 2);
                s.emit("session_transferred", at + 2);
            }
            at += 60;
            s.ended(at, u32::try_from(at - 22).unwrap_or(0), 0, 15);
            s.emit("session_ended", at);
            if spec.recording {
                s.set(
                    "recording_url",
                    json!(media_url(&format!("recordings/call-{}.mp3", spec.id))),
                );
                s.emit("recording_ready", at + 30);
            }
            if let Some(score) = spec.rating {
                s.set("rating", json!(score))
                    .set("rating_comment", json!("Thanks"));
                s.emit("rated", at + 60);
            }
        }
    }
    if !spec.event_types {
        for event in &mut s.events {
            if let Some(map) = event.as_object_mut() {
                map.remove("event_type");
                map.remove("smart_action_id");
            }
        }
    }
    s
}

/// Property-test strategies for generated calls.
#[cfg(feature = "strategies")]
pub mod strategies {
    use super::{CallOutcome, CallSpec};
    use proptest::prelude::*;

    /// A call of any outcome and features; `id` and `phone` are left for the
    /// test to choose (unique per case).
    pub fn call_spec() -> impl Strategy<Value = CallSpec> {
        (
            prop_oneof![
                4 => Just(CallOutcome::Answered),
                1 => Just(CallOutcome::Abandoned),
                2 => Just(CallOutcome::Voicemail),
                1 => Just(CallOutcome::IvrHangUp),
            ],
            0u8..=2,
            any::<bool>(),
            proptest::option::of(1u8..=5),
            proptest::option::of(any::<bool>()),
            proptest::option::of((
                prop_oneof![Just("gold".to_string()), Just("silver".to_string())],
                proptest::option::of(Just("platinum".to_string())),
            )),
            0u8..=3,
            any::<bool>(),
        )
            .prop_map(
                |(
                    outcome,
                    transfers,
                    recording,
                    rating,
                    smart_action,
                    tier,
                    voicemail_actions,
                    event_types,
                )| CallSpec {
                    transfers,
                    recording,
                    rating,
                    smart_action,
                    tier,
                    voicemail_actions,
                    event_types,
                    ..CallSpec::new(0, "", outcome)
                },
            )
    }

    /// A delivery of `n` updates: an order (a permutation with some updates
    /// repeated) and batch sizes that cut it into POSTs.
    pub fn delivery(n: usize) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        (
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            proptest::collection::vec(0..n, 0..=3),
            proptest::collection::vec(1usize..=4, n + 3),
        )
            .prop_map(|(mut order, repeats, batches)| {
                for (k, r) in repeats.into_iter().enumerate() {
                    let at = (r + k) % (order.len() + 1);
                    order.insert(at, r);
                }
                (order, batches)
            })
    }
}
