//! The service's HTTP surface, besides the intake routes: health, readiness,
//! Prometheus metrics, the screen-pop lookup (SP1) and the authenticated
//! admin API (modules: upload, list, roll back; events: inspect, retry).
//! No business logic lives here. [`server`] serves every route of the
//! service, bounding slow and idle clients.
mod admin;
mod dashboard;
pub mod openapi;
pub mod server;

use crate::pipeline::Doorbell;
use crate::runtime::Registry;
use crate::store::Store;
use crate::tenant::Tenants;
use crate::web::{basic_matches, error};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::Arc;
use utoipa_axum::{router::OpenApiRouter, routes};

/// What these routes need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub registry: Arc<Registry>,
    pub tenants: Tenants,
    pub admin_token: Option<Arc<SecretString>>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Tells the pipeline that events were requeued.
    pub doorbell: Arc<Doorbell>,
    /// Which declared custom attributes each tenant's Kustomer lacks.
    pub field_checks: Arc<crate::fields::FieldChecks>,
    /// Whether the rule modules are loaded.
    pub loading: Arc<ModuleLoading>,
}

/// Whether the rule modules are loaded, and what could not be.
#[derive(Debug, Default)]
pub struct ModuleLoading {
    /// `None` while loading; then the problems (none: all loaded).
    /// `std` mutex: held to read or set, never across an await.
    state: std::sync::Mutex<Option<Vec<String>>>,
    done: tokio::sync::Notify,
}

impl ModuleLoading {
    /// Loading is over, with these problems.
    pub fn done(&self, problems: Vec<String>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(problems);
        self.done.notify_waiters();
    }

    /// `None` while loading, then the problems.
    pub fn problems(&self) -> Option<Vec<String>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until loading is over.
    pub async fn wait(&self) {
        loop {
            let notified = self.done.notified();
            if self.problems().is_some() {
                return;
            }
            notified.await;
        }
    }
}

/// Health, readiness, metrics and admin routes.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .merge(admin::router())
        .merge(dashboard::router())
        .with_state(state)
}

/// The screen pop (SP1), which the agent adapter calls from the browser.
pub fn screen_pop_router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(screen_pop))
        .with_state(state)
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// CORS for the routes a browser calls (the Kustomer app, the agent
/// adapter): the configured origins only, with the bearer or Basic
/// credentials in `Authorization`; `None` when no origin is configured.
pub fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(std::time::Duration::from_secs(600))
    })
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String)))]
async fn metrics(State(state): State<AppState>) -> String {
    for tenant in state.registry.tenants() {
        if let Some(live) = state.registry.live(&tenant) {
            metrics::gauge!("switchboard_module_version", "tenant" => tenant.clone(), "digest" => live.info.digest.clone())
                .set(f64::from(live.info.version));
        }
    }
    if let Some(pool) = state.registry.runtime().pool_usage() {
        for (name, value) in [
            (
                "switchboard_pool_component_instances",
                pool.component_instances,
            ),
            ("switchboard_pool_core_instances", pool.core_instances),
            ("switchboard_pool_memories", pool.memories),
            ("switchboard_pool_tables", pool.tables),
            (
                "switchboard_pool_unused_warm_memories",
                pool.unused_warm_memories,
            ),
            (
                "switchboard_pool_unused_memory_bytes_resident",
                pool.unused_memory_bytes_resident,
            ),
        ] {
            metrics::gauge!(name).set(value as f64);
        }
    }
    state.metrics.render()
}

/// Ready when the store answers and every configured tenant has a live
/// module. Attributes a tenant writes that its Kustomer has not declared are
/// reported as `warnings` without making the service unready: events keep
/// being accepted while an operator runs `fields provision` (KU5).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready: the store answers and every tenant has a live module; `warnings` lists undeclared custom attributes"),
        (status = 503, description = "Not ready, with the `problems`")))]
async fn ready(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if let Err(e) = state.store.ping() {
        problems.push(format!("store ({}): {e}", state.store.backend_name()));
    }
    match state.loading.problems() {
        None => problems.push("rule modules are loading".into()),
        Some(failed) => problems.extend(failed),
    }
    for tenant in state.tenants.ids() {
        if state.registry.live(&tenant).is_none() {
            problems.push(format!("tenant `{tenant}` has no live rule module"));
        }
    }
    let warnings = state.field_checks.warnings();
    let store = json!({ "backend": state.store.backend_name(), "replica": state.store.replica() });
    if problems.is_empty() {
        (
            StatusCode::OK,
            Json(json!({ "ready": true, "warnings": warnings, "store": store })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "ready": false,
                "error": format!("not ready: {}", problems.join("; ")),
                "problems": problems,
                "warnings": warnings,
                "store": store,
            })),
        )
            .into_response()
    }
}

/// SP1: the conversation of a CCAI session, for the agent adapter to show.
/// Authenticated with the tenant's session-event credentials (HTTP Basic).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/sessions/{session_id}/conversation", tag = "agent",
    security(("session_events" = [])),
    params(("tenant" = String, Path, description = "Tenant id"),
        ("session_id" = String, Path, description = "`call-1001`, `chat-77` or CCAI Platform's numeric id")),
    responses((status = 200, description = "The session's conversation and customer in Kustomer"),
        (status = 401, description = "Missing or wrong credentials"),
        (status = 404, description = "Unknown tenant, or no conversation for the session yet")))]
async fn screen_pop(
    State(state): State<AppState>,
    Path((tenant, session_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(t) = state.tenants.get(&tenant) else {
        return error(StatusCode::NOT_FOUND, format!("unknown tenant `{tenant}`"));
    };
    let creds = &t.config.ccai.session_events;
    if !basic_matches(&headers, &creds.username, creds.password.expose_secret()) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
    }
    // CCAI Platform's own numeric id (`1001`) names the call or chat
    // session `call-1001` / `chat-1001`.
    let candidates: Vec<String> =
        if !session_id.is_empty() && session_id.bytes().all(|b| b.is_ascii_digit()) {
            vec![format!("call-{session_id}"), format!("chat-{session_id}")]
        } else {
            vec![session_id.clone()]
        };
    let mut found = Ok(None);
    for candidate in &candidates {
        found = state.store.session_link(&tenant, candidate);
        if !matches!(found, Ok(None)) {
            break;
        }
    }
    match found {
        Ok(Some(link)) => Json(json!({
            "session_id": link.session_id,
            "conversation_id": link.conversation_id,
            "customer_id": link.customer_id,
        }))
        .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("session `{session_id}` has no conversation yet"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
