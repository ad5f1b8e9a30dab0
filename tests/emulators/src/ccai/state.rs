//! The emulated tenant: agents, user statuses, calls, chats, activity logs,
//! the controllable clock and injected faults. Handlers call into
//! [`State`] with the lock held for the duration of one request; nothing is
//! awaited while it is held, so a `std` mutex is enough.

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
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
    /// When the agent was created; an agent starts in its status from then.
    #[serde(default = "agents_created_at")]
    pub created_at: DateTime<Utc>,
    /// The last time the agent came online (left Offline).
    #[serde(default = "agents_created_at")]
    pub last_login_at: DateTime<Utc>,
    pub online: bool,
    /// May place outbound calls (`Agent does not have access to make calls`).
    pub can_call: bool,
    /// Has several outbound numbers: an API call needs the adapter (202).
    pub needs_adapter: bool,
    pub team_ids: Vec<u64>,
    /// Set by force logout while in a call/chat: logged out when it ends.
    pub logout_pending: bool,
}

/// The day the emulated tenant's agents were created (the `created_at` the
/// emulator has always shown). Agents are stamped a minute apart from it.
pub fn agents_created_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-06T08:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl Agent {
    /// A new available, online agent, created (and logged in, in its
    /// status) at [`agents_created_at`] plus `id` minutes, so every agent
    /// has a real `status_updated_at` and `last_login_time`.
    pub fn new(id: u64, email: &str, first: &str, last: &str) -> Self {
        let created =
            agents_created_at() + ChronoDuration::minutes(i64::try_from(id % 100_000).unwrap_or(0));
        Self {
            id,
            email: email.into(),
            first_name: first.into(),
            last_name: last.into(),
            agent_number: Some(format!("Agent No.{}", 100 + id)),
            status_id: 0,
            status_updated_at: created,
            created_at: created,
            last_login_at: created,
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
    let mut disputes = menu(11, "Disputes", "ivr_menu");
    disputes.parent_id = Some(10);
    vec![
        menu(9, "Lock Star", "ivr_menu"),
        menu(10, "Billing", "ivr_menu"),
        disputes,
        menu(20, "App Support", "mobile_menu"),
        menu(30, "Web Help", "web_menu"),
    ]
}

/// A team of the emulated tenant (`GET /manager/api/v1/teams`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub id: u64,
    pub name: String,
    pub parent_id: Option<u64>,
    pub position: u32,
}

fn default_teams() -> Vec<Team> {
    let team = |id, name: &str, parent_id, position| Team {
        id,
        name: name.into(),
        parent_id,
        position,
    };
    vec![
        team(1, "Support", None, 0),
        team(2, "Tier 2", Some(1), 0),
        team(3, "Sales", None, 1),
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

/// Most recent API requests the log keeps, so a long load test does not
/// grow the emulator without bound.
pub const REQUEST_LOG_CAPACITY: usize = 20_000;

/// All emulated state.
#[derive(Debug)]
pub struct State {
    pub credentials: Credentials,
    pub statuses: Vec<UserStatus>,
    pub agents: Vec<Agent>,
    pub menus: Vec<Menu>,
    pub teams: Vec<Team>,
    pub languages: Vec<String>,
    /// Final (or current) call records by id, Manager API shape.
    pub calls: BTreeMap<u64, Value>,
    pub chats: BTreeMap<u64, Value>,
    pub activity_logs: Vec<Value>,
    /// Agent id → index of their open (not yet ended) activity log entry,
    /// so a status change does not search the whole history.
    open_activity: HashMap<u64, usize>,
    /// End users by identifier (`POST /end_users` upserts).
    pub end_users: Vec<Value>,
    end_user_index: HashMap<String, usize>,
    /// Bounded by [`REQUEST_LOG_CAPACITY`]: oldest entries are dropped.
    pub requests: VecDeque<RecordedRequest>,
    /// API requests answered since start or reset (the log is bounded).
    pub served: u64,
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
            teams: default_teams(),
            languages: vec!["en".into(), "es".into(), "fr-CA".into()],
            calls: BTreeMap::new(),
            chats: BTreeMap::new(),
            activity_logs: Vec::new(),
            open_activity: HashMap::new(),
            end_users: Vec::new(),
            end_user_index: HashMap::new(),
            requests: VecDeque::new(),
            served: 0,
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

    pub fn record_request(&mut self, r: RecordedRequest) {
        self.served += 1;
        if self.requests.len() >= REQUEST_LOG_CAPACITY {
            self.requests.pop_front();
        }
        self.requests.push_back(r);
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
        let teams: Vec<Value> = agent
            .team_ids
            .iter()
            .map(|id| self.team_brief(*id))
            .collect();
        self.agent_json_with(agent, teams)
    }

    /// Every agent rendered, each team summarised once for the whole list
    /// (a team's `agents_count` is a pass over the agents).
    pub fn agents_json(&self) -> Vec<Value> {
        let mut briefs: HashMap<u64, Value> = HashMap::new();
        for id in self.agents.iter().flat_map(|a| a.team_ids.iter()) {
            briefs.entry(*id).or_insert_with(|| self.team_brief(*id));
        }
        self.agents
            .iter()
            .map(|a| {
                let teams = a
                    .team_ids
                    .iter()
                    .map(|id| briefs.get(id).cloned().unwrap_or(Value::Null))
                    .collect();
                self.agent_json_with(a, teams)
            })
            .collect()
    }

    fn agent_json_with(&self, agent: &Agent, teams: Vec<Value>) -> Value {
        json!({
            "id": agent.id,
            "email": agent.email,
            "created_at": iso(agent.created_at),
            "last_login_time": iso(agent.last_login_at),
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
            "teams": teams,
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
        if previous == -10 && status_id != -10 {
            self.agents[index].last_login_at = now;
        }
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
        if let Some(log) = self
            .open_activity
            .remove(&agent.id)
            .and_then(|i| self.activity_logs.get_mut(i))
        {
            let started = log["started_at"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc));
            log["ended_at"] = json!(iso(now));
            if let Some(started) = started {
                log["duration"] = json!((now - started).num_seconds());
            }
        }
        let id = self.activity_logs.len() as u64 + 1;
        self.open_activity
            .insert(agent.id, self.activity_logs.len());
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
            .end_user_index
            .get(&identifier)
            .and_then(|&i| self.end_users.get_mut(i))
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
        self.end_user_index.insert(identifier, self.end_users.len());
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

/// Teams and menus (`/manager/api/v1/teams`, `/menus` and their trees).
impl State {
    fn agents_in(&self, team_id: u64) -> impl Iterator<Item = &Agent> {
        self.agents
            .iter()
            .filter(move |a| a.team_ids.contains(&team_id))
    }

    fn assignee(agent: &Agent) -> Value {
        json!({
            "id": agent.id,
            "name": agent.name(),
            "first_name": agent.first_name,
            "last_name": agent.last_name,
            "agent_number": agent.agent_number,
            "avatar_url": null,
        })
    }

    /// A team as agents list it: `{id,name,parent_id,position,deleted,agents_count}`.
    pub fn team_brief(&self, id: u64) -> Value {
        let team = self.teams.iter().find(|t| t.id == id);
        json!({
            "id": id,
            "name": team.map(|t| t.name.clone()).unwrap_or_else(|| format!("Team {id}")),
            "parent_id": team.and_then(|t| t.parent_id),
            "position": team.map(|t| t.position).unwrap_or(0),
            "deleted": false,
            "agents_count": self.agents_in(id).count(),
        })
    }

    /// `GET /teams[/:id]`: the brief plus `assignees`.
    pub fn team_json(&self, team: &Team) -> Value {
        let mut v = self.team_brief(team.id);
        v["assignees"] = Value::Array(self.agents_in(team.id).map(Self::assignee).collect());
        v
    }

    /// `GET /teams/tree`: root teams, each with its `children` nested.
    pub fn teams_tree(&self) -> Value {
        fn node(state: &State, team: &Team) -> Value {
            let mut v = state.team_brief(team.id);
            v["children"] = Value::Array(
                state
                    .teams
                    .iter()
                    .filter(|t| t.parent_id == Some(team.id))
                    .map(|t| node(state, t))
                    .collect(),
            );
            v
        }
        Value::Array(
            self.teams
                .iter()
                .filter(|t| t.parent_id.is_none())
                .map(|t| node(self, t))
                .collect(),
        )
    }

    /// `GET /menus`: a menu with the teams assigned to it. Every leaf queue is
    /// staffed by the first team, as a fresh tenant's would be.
    pub fn menu_json(&self, menu: &Menu) -> Value {
        let channel = match menu.menu_type.as_str() {
            "ivr_menu" => "voice_call",
            _ => "chat",
        };
        let leaf = !self.menus.iter().any(|m| m.parent_id == Some(menu.id));
        let team_assignments: Vec<Value> = if leaf {
            self.teams
                .iter()
                .take(1)
                .map(|t| {
                    json!({
                        "queue_level": "level_1",
                        "group_type": "team",
                        "channel_type": channel,
                        "lang": "en",
                        "team": self.team_json(t),
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        json!({
            "id": menu.id,
            "name": menu.name,
            "parent_id": menu.parent_id,
            "position": self.menus.iter().filter(|m| m.parent_id == menu.parent_id).position(|m| m.id == menu.id).unwrap_or(0),
            "deleted": false,
            "hidden": false,
            "menu_type": menu.menu_type,
            "output_msg": format!("You selected {}.", menu.name),
            "team_assignments": team_assignments,
            "agent_assignments": [],
        })
    }

    /// `GET /menus/tree`: root menus with their sub-menus as `children`.
    pub fn menus_tree(&self) -> Value {
        fn node(state: &State, menu: &Menu) -> Value {
            let leaf = !state.menus.iter().any(|m| m.parent_id == Some(menu.id));
            let agents = if leaf {
                state
                    .teams
                    .first()
                    .map(|t| state.agents_in(t.id).count())
                    .unwrap_or(0)
            } else {
                0
            };
            json!({
                "id": menu.id,
                "name": menu.name,
                "parent_id": menu.parent_id,
                "position": state.menus.iter().filter(|m| m.parent_id == menu.parent_id).position(|m| m.id == menu.id).unwrap_or(0),
                "deleted": false,
                "menu_type": menu.menu_type,
                "agents_count": agents,
                "children": state
                    .menus
                    .iter()
                    .filter(|m| m.parent_id == Some(menu.id))
                    .map(|m| node(state, m))
                    .collect::<Vec<_>>(),
            })
        }
        Value::Array(
            self.menus
                .iter()
                .filter(|m| m.parent_id.is_none())
                .map(|m| node(self, m))
                .collect(),
        )
    }
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// Fills the documented chat fields a stored record lacks: the first and
/// last message times (from assignment to the end of the chat), the message
/// count and the agent's average and longest response times in seconds.
pub fn complete_chat(chat: &mut Value) {
    let Value::Object(map) = chat else {
        return;
    };
    let at = |k: &str| map.get(k).and_then(parse_time);
    let first = at("first_msg_sent_at")
        .or_else(|| at("connected_at"))
        .or_else(|| at("assigned_at"))
        .or_else(|| at("created_at"));
    let last = at("last_msg_sent_at")
        .or_else(|| at("ends_at"))
        .or_else(|| at("updated_at"))
        .or(first);
    let count = map
        .get("message_count")
        .and_then(Value::as_i64)
        .unwrap_or(if first.is_some() { 2 } else { 0 });
    let span = match (first, last) {
        (Some(f), Some(l)) if l > f => (l - f).num_seconds(),
        _ => 0,
    };
    // With `count` messages there are `count - 1` gaps; the longest takes
    // what the others (one second each) leave of the span.
    let gaps = (count - 1).max(1);
    let average = span / gaps;
    let longest = (span - (gaps - 1)).max(average);
    let mut set = |k: &str, v: Value| {
        if map.get(k).is_none_or(Value::is_null) {
            map.insert(k.to_string(), v);
        }
    };
    set(
        "first_msg_sent_at",
        first.map(|t| json!(iso(t))).unwrap_or(Value::Null),
    );
    set(
        "last_msg_sent_at",
        last.map(|t| json!(iso(t))).unwrap_or(Value::Null),
    );
    set("message_count", json!(count));
    set("average_response_time", json!(average));
    set("longest_response_time", json!(longest));
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

/// Lists `records` like the Manager API: `time_key[from]`/`[to]` filter,
/// `sort_column`/`sort_direction`, `page`/`per` (default 100, clamped to
/// 1..=100). Only the page's records are cloned.
pub fn paginate<'a>(
    records: impl IntoIterator<Item = &'a Value>,
    query: &[(String, String)],
    time_key: &str,
) -> Page {
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
    let column = get("sort_column").unwrap_or("id").to_string();
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Key {
        Missing,
        Number(u64),
        Time(i64),
        Text(String),
    }
    let key = |v: &Value| -> (Key, u64) {
        let primary = match &v[&column] {
            Value::String(s) => parse(s)
                .map(|d| Key::Time(d.timestamp_micros()))
                .unwrap_or_else(|| Key::Text(s.clone())),
            Value::Number(n) => Key::Number(n.as_u64().unwrap_or(0)),
            _ => Key::Missing,
        };
        (primary, v["id"].as_u64().unwrap_or(0))
    };
    let mut items: Vec<((Key, u64), &Value)> = records
        .into_iter()
        .filter(|r| {
            let at = r[time_key].as_str().and_then(parse);
            match (from, to, at) {
                (None, None, _) => true,
                (_, _, None) => false,
                (from, to, Some(at)) => from.is_none_or(|f| at >= f) && to.is_none_or(|t| at <= t),
            }
        })
        .map(|r| (key(r), r))
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
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
    let items = items
        .into_iter()
        .skip((page - 1).saturating_mul(per))
        .take(per)
        .map(|(_, v)| v.clone())
        .collect();
    Page {
        items,
        total,
        per,
        page,
    }
}
