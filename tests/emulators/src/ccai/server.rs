//! HTTP surface of the emulator: the Apps and Manager API subset, and the
//! `/__control` endpoints tests use to inspect and steer it.

use super::state::{complete_chat, iso, paginate, Fault, RecordedRequest, State};
use axum::body::{to_bytes, Body};
use axum::extract::{Path, Query, Request, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Shared state of a running emulator.
#[derive(Debug)]
pub struct Shared {
    pub state: Mutex<State>,
    /// The emulator's own base URL (`http[s]://127.0.0.1:port`).
    pub base_url: String,
    /// Origin of `link` headers: the public base URL clients are told to
    /// follow (the real API gives `https://{subdomain}.…`), or `base_url`.
    pub link_base: String,
    /// Arrival times of recent API requests, for the 10 requests/second limit.
    window: Mutex<VecDeque<Instant>>,
}

impl Shared {
    pub fn new(state: State, base_url: String, link_base: Option<String>) -> Self {
        Self {
            state: Mutex::new(state),
            link_base: link_base
                .map(|b| b.trim_end_matches('/').to_string())
                .unwrap_or_else(|| base_url.clone()),
            base_url,
            window: Mutex::new(VecDeque::new()),
        }
    }

    /// The state; a handler that panicked left it consistent enough for a
    /// test double, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn throttled(&self, limit: Option<u32>) -> bool {
        let Some(limit) = limit else { return false };
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            return true;
        }
        window.push_back(now);
        false
    }
}

type AppState = Arc<Shared>;

fn message(status: u16, text: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(json!({ "message": text }))).into_response()
}

/// Which credential style, if any, the request's Basic header carries.
fn authenticate(state: &State, headers: &HeaderMap) -> Option<&'static str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    let creds = &state.credentials;
    if user == creds.subdomain && pass == creds.api_token {
        Some("api_token")
    } else if user == creds.company_key && pass == creds.company_secret {
        Some("company_key")
    } else {
        None
    }
}

/// Records every API request and applies auth, throttling, latency and
/// injected faults, in that order of precedence after auth.
async fn api_layer(AxState(shared): AxState<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, 4 * 1024 * 1024).await.unwrap_or_default();
    let path = parts.uri.path().to_string();
    let body_json = serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|_| {
        if bytes.is_empty() {
            Value::Null
        } else {
            json!(String::from_utf8_lossy(&bytes))
        }
    });
    let (auth, latency, fault, limit) = {
        let mut state = shared.lock();
        let auth = authenticate(&state, &parts.headers);
        let fault = if auth.is_some() {
            state.take_fault(&path)
        } else {
            None
        };
        (auth, state.latency, fault, state.rate_limit)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = if auth.is_none() {
        message(401, "Unauthorized")
    } else if shared.throttled(limit) {
        let mut r = message(429, "Too Many Requests");
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else if let Some(fault) = fault {
        let mut r = message(fault.status, "Injected fault");
        if let Some(secs) = fault.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    } else {
        let request = Request::from_parts(parts.clone(), Body::from(bytes));
        next.run(request).await
    };
    shared.lock().record_request(RecordedRequest {
        method: parts.method.to_string(),
        path,
        query: parts.uri.query().map(str::to_string),
        auth: auth.unwrap_or("none").into(),
        status: response.status().as_u16(),
        body: body_json,
    });
    response
}

/// The full router: API under auth, control surface without.
pub fn router(shared: AppState) -> Router {
    let api = Router::new()
        .route("/apps/api/v1/calls", post(create_call))
        .route("/apps/api/v1/agent_statuses", post(agent_statuses))
        .route(
            "/apps/api/v1/agent_statuses/force_logout",
            post(force_logout),
        )
        .route("/apps/api/v1/end_users", post(end_users))
        .route("/manager/api/v1/agents", get(list_agents))
        .route("/manager/api/v1/agents/{id}", get(get_agent))
        .route("/manager/api/v1/user_statuses", get(user_statuses))
        .route("/manager/api/v1/agent_activity_logs", get(activity_logs))
        .route("/manager/api/v1/calls", get(list_calls))
        .route("/manager/api/v1/calls/{id}", get(get_call))
        .route("/manager/api/v1/chats", get(list_chats))
        .route("/manager/api/v1/chats/{id}", get(get_chat))
        .route("/manager/api/v1/settings/organization", get(organization))
        .route("/manager/api/v1/menus", get(list_menus))
        .route("/manager/api/v1/menus/tree", get(menus_tree))
        .route("/manager/api/v1/teams", get(list_teams))
        .route("/manager/api/v1/teams/tree", get(teams_tree))
        .route("/manager/api/v1/teams/{id}", get(get_team))
        .fallback(|| async { message(404, "Resource not found - Please check your subdomain") })
        .method_not_allowed_fallback(|| async { message(405, "Method Not Allowed") })
        .layer(middleware::from_fn_with_state(shared.clone(), api_layer));
    let control = Router::new()
        .route("/__control/state", get(control_state))
        .route("/__control/reset", post(control_reset))
        .route(
            "/__control/requests",
            get(control_requests).delete(control_clear_requests),
        )
        .route(
            "/__control/faults",
            post(control_fault).delete(control_clear_faults),
        )
        .route("/__control/latency", post(control_latency))
        .route("/__control/stats", get(control_stats))
        .route(
            "/__control/clock",
            get(control_clock).post(control_set_clock),
        )
        .route("/__control/agents/{id}/status", post(control_agent_status))
        .route("/__control/calls", post(control_upsert_call))
        .route("/__control/chats", post(control_upsert_chat))
        .route("/media/{*path}", get(media));
    Router::new().merge(control).merge(api).with_state(shared)
}

/// A scenario file (recording, voicemail, Smart Action media): the same
/// deterministic bytes for the same path, at the emulator's latency.
async fn media(AxState(shared): AxState<AppState>, Path(path): Path<String>) -> Response {
    let latency = shared.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (content_type, body) = super::scenarios::media_file(&path);
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn json_body(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

async fn create_call(AxState(shared): AxState<AppState>, body: bytes::Bytes) -> Response {
    let Some(body) = json_body(&body) else {
        return message(400, "Invalid JSON");
    };
    match shared.lock().create_call(&body) {
        Ok((status, call)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED),
            Json(call),
        )
            .into_response(),
        Err((status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            Json(body),
        )
            .into_response(),
    }
}

async fn agent_statuses(AxState(shared): AxState<AppState>, body: bytes::Bytes) -> Response {
    let Some(body) = json_body(&body) else {
        return message(400, "Invalid JSON");
    };
    match shared.lock().change_statuses(&body) {
        Ok(results) => Json(results).into_response(),
        Err((status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            Json(body),
        )
            .into_response(),
    }
}

async fn force_logout(AxState(shared): AxState<AppState>, body: bytes::Bytes) -> Response {
    match json_body(&body) {
        Some(b) => Json(shared.lock().force_logout(&b)).into_response(),
        None => message(400, "Invalid JSON"),
    }
}

async fn end_users(AxState(shared): AxState<AppState>, body: bytes::Bytes) -> Response {
    let Some(body) = json_body(&body) else {
        return message(400, "Invalid JSON");
    };
    match shared.lock().upsert_end_user(&body) {
        Ok(user) => Json(user).into_response(),
        Err((status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            Json(body),
        )
            .into_response(),
    }
}

type ListQuery = Query<Vec<(String, String)>>;

/// A Manager API page with `total`, `per-page` and `link` headers.
fn page_response<'a>(
    shared: &Shared,
    path: &str,
    records: impl IntoIterator<Item = &'a Value>,
    query: &[(String, String)],
    time_key: &str,
) -> Response {
    let page = paginate(records, query, time_key);
    let mut response = Json(Value::Array(page.items)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&page.total.to_string()) {
        headers.insert("total", v);
    }
    if let Ok(v) = HeaderValue::from_str(&page.per.to_string()) {
        headers.insert("per-page", v);
    }
    if page.page * page.per < page.total {
        let mut next: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k != "page" && k != "per")
            .cloned()
            .collect();
        next.push(("page".into(), (page.page + 1).to_string()));
        next.push(("per".into(), page.per.to_string()));
        let encoded = serde_urlencoded::to_string(&next).unwrap_or_default();
        let link = format!("<{}{}?{}>; rel=\"next\"", shared.link_base, path, encoded);
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, v);
        }
    }
    response
}

async fn list_agents(AxState(shared): AxState<AppState>, Query(query): ListQuery) -> Response {
    let records: Vec<Value> = {
        let state = shared.lock();
        state.agents_json()
    };
    let records = &records;
    page_response(
        &shared,
        "/manager/api/v1/agents",
        records,
        &query,
        "status_updated_at",
    )
}

async fn get_agent(AxState(shared): AxState<AppState>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    match id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.agents.iter().find(|a| a.id == id))
    {
        Some(agent) => Json(state.agent_json(agent)).into_response(),
        None => message(404, "Resource not found"),
    }
}

async fn user_statuses(AxState(shared): AxState<AppState>) -> Response {
    Json(shared.lock().statuses.clone()).into_response()
}

async fn activity_logs(AxState(shared): AxState<AppState>, Query(query): ListQuery) -> Response {
    let state = shared.lock();
    page_response(
        &shared,
        "/manager/api/v1/agent_activity_logs",
        &state.activity_logs,
        &query,
        "started_at",
    )
}

async fn list_calls(AxState(shared): AxState<AppState>, Query(query): ListQuery) -> Response {
    let state = shared.lock();
    page_response(
        &shared,
        "/manager/api/v1/calls",
        state.calls.values(),
        &query,
        "updated_at",
    )
}

async fn get_call(AxState(shared): AxState<AppState>, Path(id): Path<String>) -> Response {
    match id
        .parse::<u64>()
        .ok()
        .and_then(|id| shared.lock().calls.get(&id).cloned())
    {
        Some(call) => Json(call).into_response(),
        None => message(404, "Resource not found"),
    }
}

async fn list_chats(AxState(shared): AxState<AppState>, Query(query): ListQuery) -> Response {
    let state = shared.lock();
    page_response(
        &shared,
        "/manager/api/v1/chats",
        state.chats.values(),
        &query,
        "updated_at",
    )
}

async fn get_chat(AxState(shared): AxState<AppState>, Path(id): Path<String>) -> Response {
    match id
        .parse::<u64>()
        .ok()
        .and_then(|id| shared.lock().chats.get(&id).cloned())
    {
        Some(chat) => Json(chat).into_response(),
        None => message(404, "Resource not found"),
    }
}

async fn organization(AxState(shared): AxState<AppState>) -> Response {
    let subdomain = shared.lock().credentials.subdomain.clone();
    Json(json!({ "name": subdomain, "subdomain": subdomain, "time_zone": "UTC" })).into_response()
}

async fn control_state(AxState(shared): AxState<AppState>) -> Response {
    let state = shared.lock();
    Json(json!({
        "now": iso(state.now()),
        "agents": state.agents_json(),
        "calls": state.calls.values().collect::<Vec<_>>(),
        "chats": state.chats.values().collect::<Vec<_>>(),
        "agent_activity_logs": state.activity_logs,
        "end_users": state.end_users,
        "faults": state.faults,
        "latency_ms": state.latency.as_millis() as u64,
    }))
    .into_response()
}

async fn control_reset(AxState(shared): AxState<AppState>) -> StatusCode {
    shared.lock().reset();
    StatusCode::NO_CONTENT
}

async fn control_requests(AxState(shared): AxState<AppState>) -> Response {
    Json(shared.lock().requests.iter().cloned().collect::<Vec<_>>()).into_response()
}

async fn control_stats(AxState(shared): AxState<AppState>) -> Response {
    Json(json!({ "requests_served": shared.lock().served })).into_response()
}

async fn control_clear_requests(AxState(shared): AxState<AppState>) -> StatusCode {
    shared.lock().requests.clear();
    StatusCode::NO_CONTENT
}

async fn control_fault(AxState(shared): AxState<AppState>, Json(fault): Json<Fault>) -> StatusCode {
    shared.lock().faults.push_back(fault);
    StatusCode::NO_CONTENT
}

async fn control_clear_faults(AxState(shared): AxState<AppState>) -> StatusCode {
    shared.lock().faults.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct LatencyBody {
    ms: u64,
}

async fn control_latency(
    AxState(shared): AxState<AppState>,
    Json(body): Json<LatencyBody>,
) -> StatusCode {
    shared.lock().latency = Duration::from_millis(body.ms);
    StatusCode::NO_CONTENT
}

async fn control_clock(AxState(shared): AxState<AppState>) -> Response {
    Json(json!({ "now": iso(shared.lock().now()) })).into_response()
}

/// `{"set": "<iso>"}` freezes the clock, `{"advance_ms": n}` moves it,
/// `{"real": true}` returns to real time.
#[derive(Deserialize)]
struct ClockBody {
    set: Option<DateTime<Utc>>,
    advance_ms: Option<u64>,
    #[serde(default)]
    real: bool,
}

async fn control_set_clock(
    AxState(shared): AxState<AppState>,
    Json(body): Json<ClockBody>,
) -> Response {
    let mut state = shared.lock();
    if body.real {
        state.clock.unfreeze();
    }
    if let Some(at) = body.set {
        state.clock.set(at);
    }
    if let Some(ms) = body.advance_ms {
        state.clock.advance(Duration::from_millis(ms));
    }
    Json(json!({ "now": iso(state.now()) })).into_response()
}

#[derive(Deserialize)]
struct AgentStatusBody {
    status_id: i64,
}

async fn control_agent_status(
    AxState(shared): AxState<AppState>,
    Path(id): Path<u64>,
    Json(body): Json<AgentStatusBody>,
) -> Response {
    match shared.lock().force_status(id, body.status_id) {
        Some(()) => StatusCode::NO_CONTENT.into_response(),
        None => message(404, "unknown agent or status"),
    }
}

async fn control_upsert_call(
    AxState(shared): AxState<AppState>,
    Json(call): Json<Value>,
) -> Response {
    match call["id"].as_u64() {
        Some(id) => {
            shared.lock().calls.insert(id, call);
            StatusCode::NO_CONTENT.into_response()
        }
        None => message(400, "call needs an integer id"),
    }
}

async fn control_upsert_chat(
    AxState(shared): AxState<AppState>,
    Json(chat): Json<Value>,
) -> Response {
    match chat["id"].as_u64() {
        Some(id) => {
            let mut chat = chat;
            complete_chat(&mut chat);
            shared.lock().chats.insert(id, chat);
            StatusCode::NO_CONTENT.into_response()
        }
        None => message(400, "chat needs an integer id"),
    }
}

async fn list_menus(AxState(shared): AxState<AppState>, Query(query): ListQuery) -> Response {
    let records: Vec<Value> = {
        let state = shared.lock();
        state.menus.iter().map(|m| state.menu_json(m)).collect()
    };
    page_response(
        &shared,
        "/manager/api/v1/menus",
        &records,
        &query,
        "updated_at",
    )
}

async fn menus_tree(AxState(shared): AxState<AppState>) -> Response {
    Json(shared.lock().menus_tree()).into_response()
}

async fn list_teams(AxState(shared): AxState<AppState>, Query(query): ListQuery) -> Response {
    let records: Vec<Value> = {
        let state = shared.lock();
        state.teams.iter().map(|t| state.team_json(t)).collect()
    };
    page_response(
        &shared,
        "/manager/api/v1/teams",
        &records,
        &query,
        "updated_at",
    )
}

async fn teams_tree(AxState(shared): AxState<AppState>) -> Response {
    Json(shared.lock().teams_tree()).into_response()
}

async fn get_team(AxState(shared): AxState<AppState>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    match id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.teams.iter().find(|t| t.id == id))
    {
        Some(team) => Json(state.team_json(team)).into_response(),
        None => message(404, "Resource not found"),
    }
}
