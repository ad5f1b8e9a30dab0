//! The admin API (bearer token from `server.admin_token`; off without one).
//!
//! - `GET  /admin/tenants/{t}/modules`: versions and the live one
//! - `POST /admin/tenants/{t}/modules`: upload a module (body = `.wasm`);
//!   validated and smoke-tested before it goes live; 422 with the reason if not.
//!   `?mode=shadow`: it decides beside the live module instead, its plans
//!   recorded and never carried out (RM7)
//! - `GET /admin/tenants/{t}/shadow`: the shadow module and how its
//!   decisions compare (counts, the latest differences and failures)
//! - `POST /admin/tenants/{t}/shadow/promote`: the shadow module goes live as
//!   the next version (one atomic swap); `DELETE /admin/tenants/{t}/shadow`
//!   stops shadowing
//! - `POST /admin/tenants/{t}/modules/rollback[?version=N]`
//! - `GET  /admin/tenants/{t}/events[?status=failed]`: inbox rows with outcomes
//! - `POST /admin/tenants/{t}/events/retry[?event_id=ID]`: requeue failed and
//!   dead-lettered events
//! - `POST /admin/tenants/{t}/events/skip[?event_id=ID]`: skip dead-lettered
//!   events, releasing the customers they held
use super::AppState;
use crate::web::{bearer_matches, error};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Modules are small (tens to hundreds of KiB for Rust); a few MiB covers
/// other toolchains.
const MAX_MODULE_BYTES: usize = 32 << 20;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_modules, upload_module))
        .routes(routes!(rollback))
        .routes(routes!(shadow_report, stop_shadow))
        .routes(routes!(promote_shadow))
        .routes(routes!(list_events))
        .routes(routes!(retry_events))
        .routes(routes!(skip_events))
        .layer(DefaultBodyLimit::max(MAX_MODULE_BYTES))
}

/// The admin token, whatever the tenant: 404 while the admin API is off,
/// 401 for a missing or wrong token.
pub(super) fn admin_only(state: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = &state.admin_token else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "the admin API is off: set server.admin_token",
        )));
    };
    if !bearer_matches(headers, token) {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token",
        )));
    }
    Ok(())
}

/// The admin token and a configured tenant.
pub(super) fn authorise(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &str,
) -> Result<(), Box<Response>> {
    admin_only(state, headers)?;
    if state.tenants.get(tenant).is_none() {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            format!("unknown tenant `{tenant}`"),
        )));
    }
    Ok(())
}

#[utoipa::path(get, path = "/admin/tenants/{tenant}/modules", tag = "admin",
    security(("admin_token" = [])), params(("tenant" = String, Path, description = "Tenant id from the configuration")),
    responses((status = 200, description = "The tenant's module versions and the live one"),
        (status = 401, description = "Missing or wrong admin token"),
        (status = 404, description = "Unknown tenant, or the admin API is off")))]
async fn list_modules(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorise(&state, &headers, &tenant) {
        return *r;
    }
    let registry = state.registry;
    let live = registry.live(&tenant).map(|d| d.info.version);
    Json(json!({ "tenant": tenant, "live": live, "versions": registry.versions(&tenant) }))
        .into_response()
}

#[derive(Deserialize)]
struct UploadQuery {
    /// `live` (default) or `shadow`.
    mode: Option<String>,
}

#[utoipa::path(post, path = "/admin/tenants/{tenant}/modules", tag = "admin",
    security(("admin_token" = [])),
    params(("tenant" = String, Path, description = "Tenant id from the configuration"), ("mode" = Option<String>, Query, description = "`live` (default) or `shadow` (RM7)")),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "The component"),
    responses((status = 201, description = "Validated, smoke-tested and live (or shadowing)"),
        (status = 400, description = "Unknown mode"),
        (status = 401, description = "Missing or wrong admin token"),
        (status = 409, description = "A shadow without a live module"),
        (status = 422, description = "Refused, with the reason")))]
async fn upload_module(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorise(&state, &headers, &tenant) {
        return *r;
    }
    let shadow = match q.mode.as_deref() {
        None | Some("live") => false,
        Some("shadow") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("mode must be `live` or `shadow`, not `{other}`"),
            )
        }
    };
    if shadow && state.registry.live(&tenant).is_none() {
        return error(
            StatusCode::CONFLICT,
            format!("tenant `{tenant}` has no live module for a shadow to be compared with"),
        );
    }
    let registry = state.registry.clone();
    // Compiling takes tens of milliseconds: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || {
        if shadow {
            registry
                .set_shadow(&tenant, &body, "admin-api")
                .map(|info| json!({ "shadow": info }))
        } else {
            registry
                .deploy(&tenant, &body, "admin-api")
                .map(|info| json!(info))
        }
    })
    .await;
    match result {
        Ok(Ok(info)) => (StatusCode::CREATED, Json(info)).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Differences and failures listed in the shadow report.
const SHADOW_LISTED: usize = 20;

#[utoipa::path(get, path = "/admin/tenants/{tenant}/shadow", tag = "admin",
    security(("admin_token" = [])), params(("tenant" = String, Path, description = "Tenant id from the configuration")),
    responses((status = 200, description = "The shadow module and how its decisions compare with the live ones"),
        (status = 401, description = "Missing or wrong admin token")))]
async fn shadow_report(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorise(&state, &headers, &tenant) {
        return *r;
    }
    let Some(shadow) = state.registry.shadow(&tenant) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("tenant `{tenant}` has no shadow module"),
        );
    };
    match state
        .store
        .shadow_report(&tenant, &shadow.info.digest, SHADOW_LISTED)
    {
        Ok(report) => Json(json!({
            "tenant": tenant,
            "shadow": shadow.info,
            "live": state.registry.live(&tenant).map(|d| d.info.clone()),
            "report": report,
        }))
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[utoipa::path(post, path = "/admin/tenants/{tenant}/shadow/promote", tag = "admin",
    security(("admin_token" = [])), params(("tenant" = String, Path, description = "Tenant id from the configuration")),
    responses((status = 200, description = "The shadow module is the next live version"),
        (status = 401, description = "Missing or wrong admin token"),
        (status = 409, description = "No shadow module")))]
async fn promote_shadow(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorise(&state, &headers, &tenant) {
        return *r;
    }
    let registry = state.registry.clone();
    let promoted = tokio::task::spawn_blocking(move || registry.promote_shadow(&tenant)).await;
    match promoted {
        Ok(Ok(Some(info))) => Json(json!({ "live": info })).into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no shadow module to promote"),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[utoipa::path(delete, path = "/admin/tenants/{tenant}/shadow", tag = "admin",
    security(("admin_token" = [])), params(("tenant" = String, Path, description = "Tenant id from the configuration")),
    responses((status = 200, description = "Shadowing stopped"),
        (status = 401, description = "Missing or wrong admin token")))]
async fn stop_shadow(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorise(&state, &headers, &tenant) {
        return *r;
    }
    match state.registry.clear_shadow(&tenant) {
        Ok(Some(info)) => Json(json!({ "stopped": info })).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no shadow module"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
struct RollbackQuery {
    version: Option<u32>,
}

#[utoipa::path(post, path = "/admin/tenants/{tenant}/modules/rollback", tag = "admin",
    security(("admin_token" = [])),
    params(("tenant" = String, Path, description = "Tenant id from the configuration"), ("version" = Option<u32>, Query, description = "The version to go back to (default: the previous one)")),
    responses((status = 200, description = "The version now live"),
        (status = 401, description = "Missing or wrong admin token"),
        (status = 409, description = "Nothing to roll back to")))]
async fn rollback(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<RollbackQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorise(&state, &headers, &tenant) {
        return *r;
    }
    match state.registry.rollback(&tenant, q.version) {
        Ok(info) => Json(json!(info)).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    status: Option<String>,
}

#[utoipa::path(get, path = "/admin/tenants/{tenant}/events", tag = "admin",
    security(("admin_token" = [])),
    params(("tenant" = String, Path, description = "Tenant id from the configuration"), ("status" = Option<String>, Query, description = "Only events in this state, e.g. `failed`")),
    responses((status = 200, description = "Inbox rows with their outcomes"),
        (status = 401, description = "Missing or wrong admin token")))]
async fn list_events(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorise(&state, &headers, &tenant) {
        return *r;
    }
    let store = &state.store;
    let rows = match store.events(&tenant) {
        Ok(rows) => rows,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let events: Vec<_> = rows
        .into_iter()
        .filter(|r| {
            q.status
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case(&format!("{:?}", r.status)))
        })
        .map(|r| {
            let outcome = store.outcome(&tenant, &r.event_id).ok().flatten();
            json!({
                "event_id": r.event_id, "session_id": r.session_id, "at": r.at, "source": r.source,
                "status": r.status, "reason": r.reason, "attempts": r.attempts,
                "module_version": outcome.as_ref().and_then(|o| o.module_version),
                "module_digest": outcome.as_ref().and_then(|o| o.module_digest.clone()),
            })
        })
        .collect();
    Json(json!({ "tenant": tenant, "events": events })).into_response()
}

#[derive(Deserialize)]
struct RetryQuery {
    event_id: Option<String>,
}

/// What an operator does with a tenant's failed or dead-lettered events.
#[derive(Debug, Clone, Copy)]
enum Release {
    /// Back in the queue (a dead letter's retry window starts again).
    Retry,
    /// Dead letters given up on; their customers' later events go ahead.
    Skip,
}

#[utoipa::path(post, path = "/admin/tenants/{tenant}/events/retry", tag = "admin",
    security(("admin_token" = [])),
    params(("tenant" = String, Path, description = "Tenant id from the configuration"), ("event_id" = Option<String>, Query, description = "Only this event (default: all failed and dead-lettered)")),
    responses((status = 200, description = "How many events were requeued"),
        (status = 401, description = "Missing or wrong admin token"),
        (status = 404, description = "Unknown tenant or event")))]
async fn retry_events(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<RetryQuery>,
    headers: HeaderMap,
) -> Response {
    release_events(state, tenant, q, headers, Release::Retry).await
}

#[utoipa::path(post, path = "/admin/tenants/{tenant}/events/skip", tag = "admin",
    security(("admin_token" = [])),
    params(("tenant" = String, Path, description = "Tenant id from the configuration"), ("event_id" = Option<String>, Query, description = "Only this event (default: all dead-lettered)")),
    responses((status = 200, description = "How many events were skipped; the customers they held go ahead"),
        (status = 401, description = "Missing or wrong admin token"),
        (status = 404, description = "Unknown tenant or event")))]
async fn skip_events(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<RetryQuery>,
    headers: HeaderMap,
) -> Response {
    release_events(state, tenant, q, headers, Release::Skip).await
}

async fn release_events(
    state: AppState,
    tenant: String,
    q: RetryQuery,
    headers: HeaderMap,
    how: Release,
) -> Response {
    if let Err(r) = authorise(&state, &headers, &tenant) {
        return *r;
    }
    let event = q.event_id.as_deref();
    let (done, counted) = match how {
        Release::Retry => (state.store.requeue_failed(&tenant, event), "requeued"),
        Release::Skip => (state.store.skip_dead(&tenant, event), "skipped"),
    };
    match done {
        Ok(n) => {
            state.doorbell.ring_all();
            Json(json!({ counted: n })).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
