//! The emulated tenant: agents, user statuses, calls, chats, activity logs,
//! the controllable clock and injected faults. Handlers call into
//! [`State`] with the lock held for the duration of one request; nothing is
//! awaited while it is held, so a `std` mutex is enough.

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// System statuses an API call may neither leave nor enter (ids).
pub const LOCKED_SYSTEM_STATUSES: [i64; 5] = [-5, -6, -7, -8, -10];

/// A user status (`GET /manager/api/v1/user_statuses`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserStatus {
    pub id: i64,
    pub name: String,
    pub color: String,
    pub wfm_id: Option<i64>,
}

/// The statuses of a fresh tenant: the documented system set plus the
/// documented custom example (5 "Meal") and one more custom status.
pub fn default_statuses() -> Vec<UserStatus> {
    [
        (0, "Available", "green", 11),
        (-1, "Unavailable", "red", 12),
        (-2, "Break", "yellow", 29),
        (-3, "Special Task", "pink", 30),
        (-4, "Meal", "brown", 31),
        (-5, "Missed Call", "blue_grey", 32),
        (-6, "Wrap-up", "purple", 33),
        (-7, "In-call", "light_blue", 34),
        (-8, "In-chat", "indigo", 35),
        (-10, "Offline", "grey", 36),
        (5, "Meal", "green", 45),
        (6, "Lunch", "orange", 46),
    ]
    .into_iter()
    .map(|(id, name, color, wfm)| UserStatus {
        id,
        name: name.into(),
        color: color.into(),
        wfm_id: Some(wfm),
    })
    .collect()
}

/// An agent of the emulated tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: u64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub agent_number: Option<String>,
    pub status_id: i64,
    pub status_updated_at: DateTime<Utc>,
    pub online: bool,
    /// May place outbound calls (`Agent does not have access to make calls`).
    pub can_call: bool,
    /// Has several outbound numbers: an API call needs the adapter (202).
    pub needs_adapter: bool,
    pub team_ids: Vec<u64>,
    /// Set by force logout while in a call/chat: logged out when it ends.
    pub logout_pending: bool,
}

impl Agent {
    /// A new available, online agent.
    pub fn new(id: u64, email: &str, first: &str, last: &str) -> Self {
        Self {
            id,
            email: email.into(),
            first_name: first.into(),
            last_name: last.into(),
            agent_number: Some(format!("Agent No.{}", 100 + id)),
            status_id: 0,
            status_updated_at: DateTime::<Utc>::UNIX_EPOCH,
            online: true,
            can_call: true,
            needs_adapter: false,
            team_ids: vec![1],
            logout_pending: false,
        }
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

/// The agents of a fresh tenant. The first three are the documented
/// agent-status example; the rest serve the scenarios and error cases.
pub fn default_agents() -> Vec<Agent> {
    let mut craig = Agent::new(12, "craigT@nelson.com", "Craig", "T");
    craig.status_id = -7;
    let mut lunch = Agent::new(11, "notanakinskywalker@empire.com", "Darth", "Vader");
    lunch.status_id = 6;
    let mut nocall = Agent::new(14, "listener@example.com", "Lee", "Stener");
    nocall.can_call = false;
    let mut multi = Agent::new(15, "multi@example.com", "Multi", "Number");
    multi.needs_adapter = true;
    let mut offline = Agent::new(16, "offline@example.com", "Off", "Line");
    offline.status_id = -10;
    offline.online = false;
    vec![
        lunch,
        craig,
        Agent::new(13, "rayd@nelson.com", "Raymond", "D"),
        nocall,
        multi,
        offline,
        Agent::new(21, "ada@example.com", "Ada", "Lovelace"),
        Agent::new(22, "grace@example.com", "Grace", "Hopper"),
    ]
}

/// A menu (queue) of the emulated tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Menu {
    pub id: u64,
    pub name: String,
    pub menu_type: String,
    pub parent_id: Option<u64>,
    /// The queue is closed for the day.
    pub after_hours: bool,
}

fn default_menus() -> Vec<Menu> {
    let menu = |id, name: &str, ty: &str| Menu {
        id,
        name: name.into(),
        menu_type: ty.into(),
        parent_id: None,
        after_hours: false,
    };
    vec![
        menu(9, "Lock Star", "ivr_menu"),
        menu(10, "Billing", "ivr_menu"),
        menu(20, "App Support", "mobile_menu"),
        menu(30, "Web Help", "web_menu"),
    ]
}

/// A fault to inject into the next matching requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// HTTP status to answer with (429, 500, 503…).
    pub status: u16,
    /// How many requests it applies to.
    #[serde(default = "one")]
    pub count: u32,
    /// `Retry-After` seconds (for 429).
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Only requests whose path contains this.
    #[serde(default)]
    pub path_contains: Option<String>,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// `status` for the next `count` requests.
    pub fn status(status: u16, count: u32) -> Self {
        Self {
            status,
            count,
            retry_after: None,
            path_contains: None,
        }
    }

    /// Restricts the fault to paths containing `part`.
    pub fn on_path(mut self, part: &str) -> Self {
        self.path_contains = Some(part.into());
        self
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

/// A request as the emulator saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Which credential style authenticated it: `api_token`, `company_key` or `none`.
    pub auth: String,
    pub status: u16,
    pub body: Value,
}

/// Credentials the emulator accepts (both documented Basic styles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    pub subdomain: String,
    pub api_token: String,
    pub company_key: String,
    pub company_secret: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            subdomain: "acme".into(),
            api_token: "emulator-api-token".into(),
            company_key: "emulator-company-key".into(),
            company_secret: "emulator-company-secret".into(),
        }
    }
}

/// The controllable clock: real time plus an offset, or frozen.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: ChronoDuration,
    frozen: Option<DateTime<Utc>>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        self.frozen.unwrap_or_else(|| Utc::now() + self.offset)
    }

    /// Freezes the clock at `at`.
    pub fn set(&mut self, at: DateTime<Utc>) {
        self.frozen = Some(at);
    }

    /// Moves the clock forward (frozen or not).
    pub fn advance(&mut self, by: Duration) {
        let by = ChronoDuration::from_std(by).unwrap_or(ChronoDuration::zero());
        match &mut self.frozen {
            Some(at) => *at += by,
            None => self.offset += by,
        }
    }

    /// Back to real time.
    pub fn unfreeze(&mut self) {
        self.frozen = None;
        self.offset = ChronoDuration::zero();
    }
}

/// ISO-8601 UTC with milliseconds, as the API prints timestamps.
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A JSON error body `{"message": …}` with its status.
pub type ApiError = (u16, Value);

fn bad_request(message: &str) -> ApiError {
    (400, json!({ "message": message }))
}

/// All emulated state.
#[derive(Debug)]
pub struct State {
    pub credentials: Credentials,
    pub statuses: Vec<UserStatus>,
    pub agents: Vec<Agent>,
    pub menus: Vec<Menu>,
    pub languages: Vec<String>,
    /// Final (or current) call records by id, Manager API shape.
    pub calls: BTreeMap<u64, Value>,
    pub chats: BTreeMap<u64, Value>,
    pub activity_logs: Vec<Value>,
    /// End users by identifier (`POST /end_users` upserts).
    pub end_users: Vec<Value>,
    pub requests: Vec<RecordedRequest>,
    pub faults: VecDeque<Fault>,
    pub latency: Duration,
    pub clock: Clock,
    /// Requests per second allowed per tenant; `None` disables throttling.
    pub rate_limit: Option<u32>,
    pub next_id: u64,
}

impl State {
    pub fn new(credentials: Credentials, rate_limit: Option<u32>) -> Self {
        Self {
            credentials,
            statuses: default_statuses(),
            agents: default_agents(),
            menus: default_menus(),
            languages: vec!["en".into(), "es".into(), "fr-CA".into()],
            calls: BTreeMap::new(),
            chats: BTreeMap::new(),
            activity_logs: Vec::new(),
            end_users: Vec::new(),
            requests: Vec::new(),
            faults: VecDeque::new(),
            latency: Duration::ZERO,
            clock: Clock::default(),
            rate_limit,
            next_id: 5000,
        }
    }

    /// Back to a fresh tenant; keeps credentials and the rate limit.
    pub fn reset(&mut self) {
        *self = Self::new(self.credentials.clone(), self.rate_limit);
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Takes the fault that applies to `path`, if any.
    pub fn take_fault(&mut self, path: &str) -> Option<Fault> {
        let index = self.faults.iter().position(|f| {
            f.count > 0
                && f.path_contains
                    .as_deref()
                    .is_none_or(|part| path.contains(part))
        })?;
        let fault = self.faults.get_mut(index)?;
        fault.count -= 1;
        let taken = fault.clone();
        if fault.count == 0 {
            self.faults.remove(index);
        }
        Some(taken)
    }

    pub fn status(&self, id: i64) -> Option<&UserStatus> {
        self.statuses.iter().find(|s| s.id == id)
    }

    /// A status by name; custom statuses win over a built-in of the same name.
    pub fn status_by_name(&self, name: &str) -> Option<&UserStatus> {
        let mut matches: Vec<_> = self.statuses.iter().filter(|s| s.name == name).collect();
        matches.sort_by_key(|s| std::cmp::Reverse(s.id));
        matches.first().copied()
    }

    fn status_json(&self, id: i64) -> Value {
        match self.status(id) {
            Some(s) => json!({ "id": s.id, "wfm_id": s.wfm_id, "name": s.name, "color": s.color }),
            None => Value::Null,
        }
    }

    pub fn agent_json(&self, agent: &Agent) -> Value {
        json!({
            "id": agent.id,
            "email": agent.email,
            "created_at": "2025-01-06T08:00:00.000Z",
            "last_login_time": iso(agent.status_updated_at),
            "first_name": agent.first_name,
            "middle_name": null,
            "last_name": agent.last_name,
            "avatar_url": null,
            "agent_number": agent.agent_number,
            "status": self.status_json(agent.status_id),
            "status_updated_at": iso(agent.status_updated_at),
            "crm_authenticated": true,
            "online": agent.online,
            "wrap_up": agent.status_id == -6,
            "call_count": 0,
            "chat_count": 0,
            "location": null,
            "roles": ["agent"],
            "teams": agent.team_ids.iter().map(|id| json!({
                "id": id, "name": format!("Team {id}"), "parent_id": null,
                "position": 0, "deleted": false, "agents_count": 0
            })).collect::<Vec<_>>(),
            "channels": [],
        })
    }

    pub fn agent_info(agent: &Agent) -> Value {
        json!({
            "id": agent.id,
            "name": agent.name(),
            "first_name": agent.first_name,
            "last_name": agent.last_name,
            "agent_number": agent.agent_number,
            "avatar_url": null,
        })
    }

    /// Sets an agent's status as the platform itself would (any status,
    /// system ones included), logging the change.
    pub fn force_status(&mut self, agent_id: u64, status_id: i64) -> Option<()> {
        let now = self.now();
        let index = self.agents.iter().position(|a| a.id == agent_id)?;
        self.status(status_id)?;
        let previous = self.agents[index].status_id;
        self.agents[index].status_id = status_id;
        self.agents[index].status_updated_at = now;
        self.agents[index].online = status_id != -10;
        // Leaving a call/chat/wrap-up completes a pending force logout.
        if self.agents[index].logout_pending
            && [-6, -7, -8].contains(&previous)
            && ![-6, -7, -8].contains(&status_id)
        {
            self.agents[index].logout_pending = false;
            self.agents[index].status_id = -10;
            self.agents[index].online = false;
        }
        let agent = self.agents[index].clone();
        self.log_activity(&agent, "user_status_changed", now);
        Some(())
    }

    fn log_activity(&mut self, agent: &Agent, activity: &str, now: DateTime<Utc>) {
        // The open log entry of this agent ends now.
        for log in self.activity_logs.iter_mut().rev() {
            if log["agent_id"] == json!(agent.id) && log["ended_at"].is_null() {
                let started = log["started_at"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|d| d.with_timezone(&Utc));
                log["ended_at"] = json!(iso(now));
                if let Some(started) = started {
                    log["duration"] = json!((now - started).num_seconds());
                }
                break;
            }
        }
        let id = self.activity_logs.len() as u64 + 1;
        let entry = json!({
            "id": id,
            "agent_id": agent.id,
            "whodunnit": Self::agent_info(agent),
            "status": self.status_json(agent.status_id),
            "started_at": iso(now),
            "ended_at": null,
            "duration": null,
            "activity": activity,
            "call_id": null,
            "chat_id": null,
        });
        self.activity_logs.push(entry);
    }

    /// `POST /apps/api/v1/agent_statuses`.
    pub fn change_statuses(&mut self, body: &Value) -> Result<Value, ApiError> {
        let name = body["status"]
            .as_str()
            .ok_or_else(|| bad_request("status is required"))?;
        let target = self
            .status_by_name(name)
            .cloned()
            .ok_or_else(|| bad_request(&format!("Status '{name}' is not found")))?;
        let ids = |key: &str| -> Vec<u64> {
            body[key]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default()
        };
        let agent_ids = ids("agent_ids");
        let team_ids = ids("team_ids");
        if agent_ids.is_empty() && team_ids.is_empty() {
            return Err(bad_request("agent_ids or team_ids required"));
        }
        let selected: Vec<u64> = self
            .agents
            .iter()
            .filter(|a| {
                agent_ids.contains(&a.id) || a.team_ids.iter().any(|t| team_ids.contains(t))
            })
            .map(|a| a.id)
            .collect();
        let now = self.now();
        let mut results = Vec::new();
        for id in selected {
            let Some(agent) = self.agents.iter().find(|a| a.id == id).cloned() else {
                continue;
            };
            let previous = self
                .status(agent.status_id)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            let mut result = json!({
                "agent_id": agent.id,
                "name": agent.name(),
                "email": agent.email,
                "agent_number": agent.agent_number,
                "previous_status": previous,
                "current_status": previous,
            });
            if LOCKED_SYSTEM_STATUSES.contains(&agent.status_id) {
                result["message"] = json!(format!(
                    "Agent can't be changed from system status '{previous}'"
                ));
            } else if LOCKED_SYSTEM_STATUSES.contains(&target.id) {
                result["message"] = json!(format!(
                    "Agent can't be changed to system status '{}'",
                    target.name
                ));
            } else {
                if let Some(a) = self.agents.iter_mut().find(|a| a.id == id) {
                    a.status_id = target.id;
                    a.status_updated_at = now;
                }
                let agent = self
                    .agents
                    .iter()
                    .find(|a| a.id == id)
                    .cloned()
                    .unwrap_or(agent);
                self.log_activity(&agent, "user_status_changed", now);
                result["current_status"] = json!(target.name);
            }
            results.push(result);
        }
        Ok(Value::Array(results))
    }

    /// `POST /apps/api/v1/agent_statuses/force_logout`.
    pub fn force_logout(&mut self, body: &Value) -> Value {
        let ids = |key: &str| -> Vec<u64> {
            body[key]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default()
        };
        let (agent_ids, team_ids) = (ids("agent_ids"), ids("team_ids"));
        let now = self.now();
        let selected: Vec<u64> = self
            .agents
            .iter()
            .filter(|a| {
                agent_ids.contains(&a.id) || a.team_ids.iter().any(|t| team_ids.contains(t))
            })
            .map(|a| a.id)
            .collect();
        for id in &selected {
            let Some(index) = self.agents.iter().position(|a| a.id == *id) else {
                continue;
            };
            if [-6, -7, -8].contains(&self.agents[index].status_id) {
                self.agents[index].logout_pending = true;
            } else {
                self.agents[index].status_id = -10;
                self.agents[index].online = false;
                self.agents[index].status_updated_at = now;
                let agent = self.agents[index].clone();
                self.log_activity(&agent, "logout", now);
            }
        }
        json!({ "agent_ids": selected })
    }

    /// `POST /apps/api/v1/end_users`: upsert by identifier.
    pub fn upsert_end_user(&mut self, body: &Value) -> Result<Value, ApiError> {
        let user = body.get("end_user").unwrap_or(body);
        let identifier = user["identifier"]
            .as_str()
            .ok_or_else(|| bad_request("identifier is required"))?
            .to_string();
        if let Some(existing) = self
            .end_users
            .iter_mut()
            .find(|u| u["identifier"] == json!(identifier))
        {
            for key in ["name", "email", "phone"] {
                if let Some(v) = user.get(key) {
                    existing[key] = v.clone();
                }
            }
            return Ok(existing.clone());
        }
        let id = self.next_id();
        let record = json!({
            "id": id,
            "identifier": identifier,
            "name": user.get("name").cloned().unwrap_or(Value::Null),
            "email": user.get("email").cloned().unwrap_or(Value::Null),
            "phone": user.get("phone").cloned().unwrap_or(Value::Null),
            "out_contact_id": null,
        });
        self.end_users.push(record.clone());
        Ok(record)
    }

    /// `POST /apps/api/v1/calls`: validates like the platform and creates a
    /// call. `Ok((201|202, call))` or the documented 400 message.
    pub fn create_call(&mut self, body: &Value) -> Result<(u16, Value), ApiError> {
        let body = body.get("call").unwrap_or(body);
        let call_type = match body["call_type"].as_str() {
            Some("Voice Outbound (API)" | "OutboundCall") => "Voice Outbound (API)",
            Some("Voice Inbound (API)" | "IncomingCall") => "Voice Inbound (API)",
            Some("Voice Scheduled (API)" | "ScheduledCall") => "Voice Scheduled (API)",
            _ => return Err(bad_request("Invalid call type")),
        };
        let lang = body["lang"].as_str().unwrap_or("en").to_string();
        if !self.languages.contains(&lang) {
            let known = ["de", "it", "ja", "pt", "fr", "zh"];
            return Err(if known.contains(&lang.as_str()) {
                bad_request(&format!("Language '{lang}' is not available"))
            } else {
                bad_request(&format!("Language '{lang}' is not found"))
            });
        }
        match call_type {
            "Voice Outbound (API)" => self.create_outbound(body, &lang),
            "Voice Inbound (API)" => self.create_inbound(body, &lang, "queued", None),
            _ => {
                let scheduled_at = body["scheduled_at"]
                    .as_str()
                    .ok_or_else(|| bad_request("scheduled_at is required"))?
                    .to_string();
                self.create_inbound(body, &lang, "scheduled", Some(scheduled_at))
            }
        }
    }

    fn well_formed_number(number: &str) -> bool {
        let digits = number.chars().filter(char::is_ascii_digit).count();
        number
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
            && (7..=15).contains(&digits)
    }

    fn create_outbound(&mut self, body: &Value, lang: &str) -> Result<(u16, Value), ApiError> {
        let email = match body["agent_email"].as_str() {
            None | Some("") => return Err(bad_request("Agent email required")),
            Some(email) => email,
        };
        let agent = self
            .agents
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(email))
            .cloned()
            .ok_or_else(|| bad_request("Not a valid agent email"))?;
        if !agent.can_call {
            return Err(bad_request("Agent does not have access to make calls"));
        }
        let ticket_id = body["ticket_id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| body["ticket_id"].as_u64().map(|n| n.to_string()));
        let number = body["end_user_number"].as_str();
        if ticket_id.is_none() && number.is_none() {
            return Err(bad_request("ticket_id or end_user_number required"));
        }
        if ticket_id.is_none() {
            if let Some(number) = number {
                if !Self::well_formed_number(number) {
                    return Err(bad_request("end_user_number is not well-formed"));
                }
            }
        }
        if agent.status_id != 0 || !agent.online {
            return Err(bad_request("Agent is not available to take this call"));
        }
        let needs_adapter = agent.needs_adapter && body["outbound_number"].is_null();
        let id = self.next_id();
        let end_user_id = self.next_id();
        let now = iso(self.now());
        let participant = |pid: u64, ty: &str, user: Value, eu: Value| {
            json!({
                "id": pid, "type": ty, "status": "waiting", "call_id": id,
                "user_id": user, "end_user_id": eu, "call_duration": null, "hold_duration": null,
                "connected_at": null, "ended_at": null, "fail_reason": "nothing"
            })
        };
        let mut call = json!({
            "id": id,
            "lang": lang,
            "call_type": "Voice Outbound (API)",
            "status": "assigned",
            "created_at": now,
            "queued_at": null,
            "assigned_at": now,
            "connected_at": null,
            "ends_at": null,
            "scheduled_at": null,
            "updated_at": now,
            "wait_duration": 0,
            "call_duration": 0,
            "hold_duration": 0,
            "rating": null,
            "has_feedback": false,
            "voip_provider": "voip_provider_twilio",
            "out_ticket_id": ticket_id,
            "out_ticket_url": null,
            "verified": false,
            "recording_url": null,
            "recording_permission": "not_asked",
            "voicemail_reason": "not_voicemail",
            "deflection": "no_deflection",
            "disconnected_by": "disconnected_by_unknown",
            "fail_reason": "nothing",
            "fail_details": null,
        });
        let rest = json!({
            "support_number": null,
            "selected_menu": null,
            "menu_path": null,
            "agent_info": Self::agent_info(&agent),
            "end_user": { "id": end_user_id, "identifier": null, "out_contact_id": null },
            "photos": [],
            "videos": [],
            "transfers": [],
            "deflection_details": [],
            "participants": [
                participant(id * 2, "agent", json!(agent.id), Value::Null),
                participant(id * 2 + 1, "end_user", Value::Null, json!(end_user_id)),
            ],
            "offer_type": null,
            "offer_events": [],
            "answer_type": "manual",
            "outbound_number": body["outbound_number"].as_str().unwrap_or("+1 339-219-5276"),
            "end_user_number": number,
        });
        merge(&mut call, rest);
        self.calls.insert(id, call.clone());
        Ok((if needs_adapter { 202 } else { 201 }, call))
    }

    fn create_inbound(
        &mut self,
        body: &Value,
        lang: &str,
        status: &str,
        scheduled_at: Option<String>,
    ) -> Result<(u16, Value), ApiError> {
        let menu_id = match &body["menu_id"] {
            Value::Null => return Err(bad_request("menu_id is required")),
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| bad_request("menu_id is not well formed"))?,
            Value::String(s) => s
                .parse::<u64>()
                .map_err(|_| bad_request("menu_id is not well formed"))?,
            _ => return Err(bad_request("menu_id is not well formed")),
        };
        let menu = self
            .menus
            .iter()
            .find(|m| m.id == menu_id)
            .cloned()
            .ok_or_else(|| bad_request(&format!("menu_id {menu_id} is not found")))?;
        if menu.menu_type == "web_menu" {
            return Err(bad_request("Only IVR and mobile menu IDs are permitted"));
        }
        if menu.after_hours {
            return Err(bad_request(
                "Menu is in 'after hours' state, can't accept incoming calls",
            ));
        }
        let number = match body["end_user_number"].as_str() {
            None | Some("") => return Err(bad_request("end_user_number is required")),
            Some(n) => n,
        };
        if !Self::well_formed_number(number) {
            return Err(bad_request("end_user_number is not well formed"));
        }
        let id = self.next_id();
        let end_user_id = self.next_id();
        let now = iso(self.now());
        let mut call = json!({
            "id": id,
            "parent_id": body.get("call_id").cloned().unwrap_or(Value::Null),
            "lang": lang,
            "call_type": if status == "scheduled" { "Voice Scheduled (API)" } else { "Voice Inbound (API)" },
            "status": status,
            "created_at": now,
            "queued_at": if status == "queued" { json!(now) } else { Value::Null },
            "assigned_at": null, "connected_at": null, "ends_at": null,
            "scheduled_at": scheduled_at,
            "updated_at": now,
            "wait_duration": 0, "call_duration": 0, "hold_duration": 0,
            "rating": null, "has_feedback": false,
            "out_ticket_id": body.get("ticket_id").cloned().unwrap_or(Value::Null),
            "out_ticket_url": null, "verified": false, "recording_url": null,
            "recording_permission": body["recording_permission"].as_str().map(|p| p.trim_start_matches("recording_permission_")).unwrap_or("not_asked"),
            "voicemail_reason": "not_voicemail", "deflection": "no_deflection",
            "disconnected_by": "disconnected_by_unknown", "fail_reason": "nothing", "fail_details": null,
        });
        let rest = json!({
            "support_number": null,
            "selected_menu": {
                "id": menu.id, "name": menu.name, "parent_id": menu.parent_id, "position": 0,
                "deleted": false, "menu_type": menu.menu_type, "output_msg": format!("You selected {}.", menu.name),
                "hidden": false
            },
            "menu_path": { "items_count": 1, "name": menu.name, "materialized_path": menu.id.to_string() },
            "agent_info": null,
            "end_user": { "id": end_user_id, "identifier": null, "out_contact_id": null },
            "photos": [], "videos": [], "transfers": [], "deflection_details": [],
            "participants": [{
                "id": id * 2, "type": "end_user", "status": "waiting", "call_id": id, "user_id": null,
                "end_user_id": end_user_id, "call_duration": null, "hold_duration": null,
                "connected_at": null, "ended_at": null, "fail_reason": "nothing"
            }],
            "offer_type": "cascade",
            "offer_events": [{ "casting_time": now, "group": "Group 1" }],
            "answer_type": "manual",
            "outbound_number": "+1 339-219-5276",
        });
        merge(&mut call, rest);
        self.calls.insert(id, call.clone());
        Ok((201, call))
    }
}

/// Adds the keys of `extra` to the object `target`.
fn merge(target: &mut Value, extra: Value) {
    if let (Value::Object(target), Value::Object(extra)) = (target, extra) {
        target.extend(extra);
    }
}

/// A page of a Manager API list.
pub struct Page {
    pub items: Vec<Value>,
    pub total: usize,
    pub per: usize,
    pub page: usize,
}

/// Lists `records` like the Manager API: `time_key[from]` filter,
/// `sort_column`/`sort_direction`, `page`/`per` (default 100, clamped to 1..=100).
pub fn paginate(records: Vec<Value>, query: &[(String, String)], time_key: &str) -> Page {
    let get = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    };
    let from = get(&format!("{time_key}[from]")).and_then(parse);
    let to = get(&format!("{time_key}[to]")).and_then(parse);
    let mut items: Vec<Value> = records
        .into_iter()
        .filter(|r| {
            let at = r[time_key].as_str().and_then(parse);
            match (from, to, at) {
                (None, None, _) => true,
                (_, _, None) => false,
                (from, to, Some(at)) => from.is_none_or(|f| at >= f) && to.is_none_or(|t| at <= t),
            }
        })
        .collect();
    let column = get("sort_column").unwrap_or("id").to_string();
    let key = |v: &Value| -> (String, u64) {
        let primary = match &v[&column] {
            Value::String(s) => parse(s)
                .map(|d| format!("{:020}", d.timestamp_micros()))
                .unwrap_or_else(|| s.clone()),
            Value::Number(n) => format!("{:020}", n.as_u64().unwrap_or(0)),
            _ => String::new(),
        };
        (primary, v["id"].as_u64().unwrap_or(0))
    };
    items.sort_by_key(key);
    if get("sort_direction").is_some_and(|d| d.eq_ignore_ascii_case("desc")) {
        items.reverse();
    }
    let per = get("per")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let page = get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let items = items.into_iter().skip((page - 1) * per).take(per).collect();
    Page {
        items,
        total,
        per,
        page,
    }
}
