//! The test-only control surface: the same operations as Rust methods on
//! [`KustomerControl`] and as JSON routes under `/__control`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::objects as o;
use super::server::{fresh_inner, lock, App, KustomerEmulatorConfig};
use super::state::{ClockMode, Fault, RecordedRequest, WebhookDelivery, WebhookTarget};

/// Inspection, fault injection and clock control of a running emulator.
/// Cheap to clone; all clones act on the same emulator.
#[derive(Clone)]
pub struct KustomerControl {
    app: App,
}

impl KustomerControl {
    pub(crate) fn new(app: App) -> Self {
        KustomerControl { app }
    }

    /// The Bearer token the emulator accepts.
    pub fn api_key(&self) -> String {
        lock(&self.app.state).settings.api_key.clone()
    }

    pub fn org_id(&self) -> String {
        lock(&self.app.state).settings.org_id.clone()
    }

    // ------------------------------------------------------------- state

    /// Customers as `GET /v1/customers/{id}` would render them (`data`).
    pub fn customers(&self) -> Vec<Value> {
        let i = lock(&self.app.state);
        i.db.customers
            .iter()
            .map(|c| o::render_customer(&i.db, &i.settings, c))
            .collect()
    }

    pub fn conversations(&self) -> Vec<Value> {
        let i = lock(&self.app.state);
        i.db.conversations
            .iter()
            .map(|c| o::render_conversation(&i.settings, c))
            .collect()
    }

    pub fn messages(&self) -> Vec<Value> {
        let i = lock(&self.app.state);
        i.db.messages
            .iter()
            .map(|m| o::render_message(&i.settings, m))
            .collect()
    }

    pub fn notes(&self) -> Vec<Value> {
        let i = lock(&self.app.state);
        i.db.notes
            .iter()
            .map(|n| o::render_note(&i.settings, n))
            .collect()
    }

    pub fn attachments(&self) -> Vec<Value> {
        let i = lock(&self.app.state);
        i.db.attachments
            .iter()
            .map(|a| o::render_attachment(&i.settings, a))
            .collect()
    }

    /// The bytes uploaded for an attachment, once uploaded.
    pub fn attachment_content(&self, id: &str) -> Option<Vec<u8>> {
        let i = lock(&self.app.state);
        i.db.attachments.get(id).and_then(|a| a.content.clone())
    }

    pub fn users(&self) -> Vec<Value> {
        let i = lock(&self.app.state);
        i.db.users
            .iter()
            .map(|u| o::render_user(&i.settings, u))
            .collect()
    }

    pub fn routing_statuses(&self) -> Vec<Value> {
        let i = lock(&self.app.state);
        i.db.statuses
            .iter()
            .map(|s| o::render_status(&i.settings, s))
            .collect()
    }

    pub fn work_sessions(&self) -> Vec<Value> {
        let i = lock(&self.app.state);
        i.db.work_sessions
            .iter()
            .map(|w| o::render_work_session(&i.settings, w))
            .collect()
    }

    /// `GET /v1/metadata/{resource}` as rendered (`data`).
    pub fn metadata(&self, resource: &str) -> Value {
        o::render_metadata(&lock(&self.app.state), resource)
    }

    /// Every object, by kind.
    pub fn state(&self) -> Value {
        let metadata: serde_json::Map<String, Value> = {
            let i = lock(&self.app.state);
            i.db.metadata
                .keys()
                .map(|k| (k.clone(), o::render_metadata(&i, k)))
                .collect()
        };
        json!({
            "customers": self.customers(),
            "conversations": self.conversations(),
            "messages": self.messages(),
            "notes": self.notes(),
            "attachments": self.attachments(),
            "users": self.users(),
            "routingStatuses": self.routing_statuses(),
            "workSessions": self.work_sessions(),
            "metadata": metadata,
        })
    }

    /// Adds an agent with an active work session in the first `available`
    /// status. Returns (user id, work session id).
    pub fn add_user(&self, email: &str, name: &str) -> (String, String) {
        let mut i = lock(&self.app.state);
        let now = i.now();
        let user = o::new_user(now, email, name, "user");
        let available =
            i.db.statuses
                .iter()
                .find(|s| s.attrs.get("statusType") == Some(&json!("available")))
                .cloned()
                .unwrap_or_else(|| o::new_status(now, "Available", "available", true));
        let ws = o::new_work_session(now, &user.id, &available);
        let ids = (user.id.clone(), ws.id.clone());
        i.db.users.push(user);
        i.db.work_sessions.push(ws);
        ids
    }

    /// Clears all data, faults, logs, webhook deliveries and rate windows and
    /// re-seeds the defaults. Settings (key, org, limits, webhook target) and
    /// the clock stay as they are.
    pub fn reset(&self) {
        let mut i = lock(&self.app.state);
        let s = &i.settings;
        let config = KustomerEmulatorConfig {
            port: 0,
            api_key: s.api_key.clone(),
            org_id: s.org_id.clone(),
            org_name: s.org_name.clone(),
            rate_limit_per_minute: s.rate_limit_per_minute,
            customer_creates_per_minute: s.customer_creates_per_minute,
            webhook: s.webhook.clone(),
            fixed_time: None,
            sort_lists_by_id: s.sort_lists_by_id,
            search_per_minute: s.search_per_minute,
            log_capacity: s.log_capacity,
        };
        let clock = i.clock;
        *i = fresh_inner(&config);
        i.clock = clock;
    }

    // -------------------------------------------------------- request log

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.app.state)
            .requests
            .iter()
            .map(|r| r.get())
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.app.state).requests.clear();
    }

    /// Requests answered since start or reset, including those the bounded
    /// log has dropped: what a load test divides by its duration.
    pub fn requests_served(&self) -> u64 {
        lock(&self.app.state).next_seq.saturating_sub(1)
    }

    // ------------------------------------------------------------- faults

    /// Queues a fault for the next matching requests.
    pub fn inject(&self, fault: Fault) {
        lock(&self.app.state).faults.push_back(fault);
    }

    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.app.state).faults.iter().cloned().collect()
    }

    pub fn clear_faults(&self) {
        lock(&self.app.state).faults.clear();
    }

    // -------------------------------------------------------------- clock

    /// The emulator's current time (timestamps, rate windows).
    pub fn now(&self) -> DateTime<Utc> {
        lock(&self.app.state).now()
    }

    /// Stops the clock at `at`.
    pub fn set_time(&self, at: DateTime<Utc>) {
        lock(&self.app.state).clock = ClockMode::Fixed { at };
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
        lock(&self.app.state).clock.advance(by);
    }

    /// Moves the clock forward to `to` (no-op if `to` is not in the future).
    pub fn advance_to(&self, to: DateTime<Utc>) {
        lock(&self.app.state).clock.advance_to(to);
    }

    /// Follows system time again, shifted by `offset_ms`.
    pub fn use_system_clock(&self, offset_ms: i64) {
        lock(&self.app.state).clock = ClockMode::System { offset_ms };
    }

    pub fn clock_mode(&self) -> ClockMode {
        lock(&self.app.state).clock
    }

    // --------------------------------------------------------- rate limits

    /// Sets the org budget per minute; the current window keeps its count.
    pub fn set_rate_limit(&self, per_minute: u32) {
        lock(&self.app.state).settings.rate_limit_per_minute = per_minute;
    }

    pub fn set_customer_create_limit(&self, per_minute: u32) {
        lock(&self.app.state).settings.customer_creates_per_minute = per_minute;
    }

    // ----------------------------------------------------------- webhooks

    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        lock(&self.app.state).settings.webhook = target;
    }

    /// Webhook events raised so far, with the delivery outcome.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        lock(&self.app.state)
            .deliveries
            .iter()
            .map(|d| d.get())
            .collect()
    }
}

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/__control/state", get(state))
        .route("/__control/reset", post(reset))
        .route("/__control/requests", get(requests).delete(clear_requests))
        .route("/__control/stats", get(stats))
        .route(
            "/__control/faults",
            get(faults).post(add_faults).delete(clear_faults),
        )
        .route("/__control/clock", get(clock).post(set_clock))
        .route(
            "/__control/rate-limit",
            get(rate_limit).post(set_rate_limit),
        )
        .route(
            "/__control/webhook",
            post(set_webhook).delete(clear_webhook),
        )
        .route("/__control/webhooks", get(deliveries))
        .route("/__control/users", post(add_user))
}

fn control(app: App) -> KustomerControl {
    KustomerControl::new(app)
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

async fn state(State(app): State<App>) -> Json<Value> {
    Json(control(app).state())
}

async fn reset(State(app): State<App>) -> StatusCode {
    control(app).reset();
    StatusCode::NO_CONTENT
}

async fn requests(State(app): State<App>) -> Json<Vec<RecordedRequest>> {
    Json(control(app).requests())
}

async fn stats(State(app): State<App>) -> Json<Value> {
    Json(json!({ "requestsServed": control(app).requests_served() }))
}

async fn clear_requests(State(app): State<App>) -> StatusCode {
    control(app).clear_requests();
    StatusCode::NO_CONTENT
}

async fn faults(State(app): State<App>) -> Json<Vec<Fault>> {
    Json(control(app).faults())
}

/// One fault or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Faults {
    One(Fault),
    Many(Vec<Fault>),
}

async fn add_faults(State(app): State<App>, body: axum::body::Bytes) -> Response {
    let parsed: Result<Faults, _> = serde_json::from_slice(&body);
    let list = match parsed {
        Ok(Faults::One(f)) => vec![f],
        Ok(Faults::Many(v)) => v,
        Err(e) => return bad(format!("invalid fault: {e}")),
    };
    let c = control(app);
    for f in list {
        c.inject(f);
    }
    (StatusCode::CREATED, Json(c.faults())).into_response()
}

async fn clear_faults(State(app): State<App>) -> StatusCode {
    control(app).clear_faults();
    StatusCode::NO_CONTENT
}

fn clock_view(c: &KustomerControl) -> Value {
    json!({ "now": super::state::ts(c.now()), "clock": c.clock_mode() })
}

async fn clock(State(app): State<App>) -> Json<Value> {
    Json(clock_view(&control(app)))
}

/// `{"set": iso}` | `{"advanceMs": n}` | `{"advanceTo": iso}` |
/// `{"system": true, "offsetMs": n}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClockRequest {
    set: Option<DateTime<Utc>>,
    advance_ms: Option<u64>,
    advance_to: Option<DateTime<Utc>>,
    #[serde(default)]
    system: bool,
    offset_ms: Option<i64>,
}

async fn set_clock(State(app): State<App>, body: axum::body::Bytes) -> Response {
    let req: ClockRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("invalid clock request: {e}")),
    };
    let c = control(app);
    if req.system {
        c.use_system_clock(req.offset_ms.unwrap_or(0));
    }
    if let Some(at) = req.set {
        c.set_time(at);
    }
    if let Some(ms) = req.advance_ms {
        c.advance(std::time::Duration::from_millis(ms));
    }
    if let Some(to) = req.advance_to {
        c.advance_to(to);
    }
    Json(clock_view(&c)).into_response()
}

fn rate_view(app: &App) -> Value {
    let i = lock(&app.state);
    json!({
        "perMinute": i.settings.rate_limit_per_minute,
        "customerCreatesPerMinute": i.settings.customer_creates_per_minute,
    })
}

async fn rate_limit(State(app): State<App>) -> Json<Value> {
    Json(rate_view(&app))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateRequest {
    per_minute: Option<u32>,
    customer_creates_per_minute: Option<u32>,
}

async fn set_rate_limit(State(app): State<App>, body: axum::body::Bytes) -> Response {
    let req: RateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("invalid rate-limit request: {e}")),
    };
    let c = control(app.clone());
    if let Some(n) = req.per_minute {
        c.set_rate_limit(n);
    }
    if let Some(n) = req.customer_creates_per_minute {
        c.set_customer_create_limit(n);
    }
    Json(rate_view(&app)).into_response()
}

async fn set_webhook(State(app): State<App>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<WebhookTarget>(&body) {
        Ok(t) => {
            control(app).set_webhook(Some(t));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad(format!("invalid webhook target: {e}")),
    }
}

async fn clear_webhook(State(app): State<App>) -> StatusCode {
    control(app).set_webhook(None);
    StatusCode::NO_CONTENT
}

async fn deliveries(State(app): State<App>) -> Json<Vec<WebhookDelivery>> {
    Json(control(app).webhook_deliveries())
}

#[derive(Deserialize)]
struct NewUser {
    email: String,
    name: Option<String>,
}

async fn add_user(State(app): State<App>, body: axum::body::Bytes) -> Response {
    let req: NewUser = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("invalid user: {e}")),
    };
    let name = req.name.unwrap_or_else(|| req.email.clone());
    let (user, session) = control(app).add_user(&req.email, &name);
    (
        StatusCode::CREATED,
        Json(json!({ "userId": user, "workSessionId": session })),
    )
        .into_response()
}
