//! Routes of the status sync:
//! - `POST /v1/tenants/{tenant}/kustomer/status`: the Kustomer app's
//!   report (status change, sign-in, heartbeat, sign-out of one instance).
//!   A change is stored before the answer: 200 with the decision when it is
//!   made within `decision_wait_ms`, otherwise 202 with `change_id` and
//!   `pending: true`.
//! - `GET /v1/tenants/{tenant}/status-sync/changes/{change_id}`: one stored
//!   change, its state (`pending`, `done`, `failed`…) and decision.
//! - `GET /v1/tenants/{tenant}/status-sync/agents`: every agent's pending
//!   and last applied status, latest decision and latest error.
//!
//! Both take `Authorization: Bearer <token>`: the tenant's
//! `status_sync.token`, or the admin token.
use super::{KustomerReport, StatusSync, TenantSync};
use crate::web::{bearer_or_admin, error};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The status sync routes.
pub fn router(sync: Arc<StatusSync>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(report))
        .routes(routes!(agents))
        .routes(routes!(change))
        .with_state(sync)
}

fn authorise(
    sync: &StatusSync,
    tenant: &str,
    headers: &HeaderMap,
) -> Result<Arc<TenantSync>, (StatusCode, String)> {
    let Some(t) = sync.tenant(tenant) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("tenant `{tenant}` has no status sync configured"),
        ));
    };
    if !bearer_or_admin(headers, &t.config.token, sync.admin_token.as_deref()) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".into(),
        ));
    }
    Ok(t.clone())
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/kustomer/status", tag = "agent",
    security(("agent_token" = [])), params(("tenant" = String, Path, description = "Tenant id")),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "The Kustomer app's report of an agent's status change, sign-in, heartbeat or sign-out (optional `change_id` for deduplication)"),
    responses((status = 200, description = "Stored and decided within `decision_wait_ms`: the decision"),
        (status = 202, description = "Stored; the decision is pending: `{change_id, pending}`"),
        (status = 400, description = "Malformed report, with the reason"),
        (status = 401, description = "Missing or wrong token"),
        (status = 404, description = "Unknown tenant, or status sync is off for it"),
        (status = 503, description = "Could not be stored; send it again")))]
async fn report(
    State(sync): State<Arc<StatusSync>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = match authorise(&sync, &tenant, &headers) {
        Ok(t) => t,
        Err((status, message)) => return error(status, message),
    };
    let report: KustomerReport = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid status report: {e}"),
            )
        }
    };
    if report.agent_email.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "agent_email is required");
    }
    match sync.kustomer_report(&t, report).await {
        Ok(answer) => {
            let status = if answer.pending {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            (status, Json(answer)).into_response()
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the status change could not be stored, send it again: {e}"),
        ),
    }
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/status-sync/changes/{change_id}", tag = "agent",
    security(("agent_token" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("change_id" = String, Path, description = "The id a 202 answer gave")),
    responses((status = 200, description = "The change and its decision, once made"),
        (status = 401, description = "Missing or wrong token"),
        (status = 404, description = "Unknown tenant or change")))]
async fn change(
    State(sync): State<Arc<StatusSync>>,
    Path((tenant, change_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let t = match authorise(&sync, &tenant, &headers) {
        Ok(t) => t,
        Err((status, message)) => return error(status, message),
    };
    match sync.change(t.id(), &change_id) {
        Ok(Some(found)) => Json(found).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("tenant `{tenant}` has no status change `{change_id}`"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/status-sync/agents", tag = "agent",
    security(("agent_token" = []), ("admin_token" = [])), params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "Every agent the status sync knows, with both statuses and active instances"),
        (status = 401, description = "Missing or wrong token"),
        (status = 404, description = "Unknown tenant, or status sync is off for it")))]
async fn agents(
    State(sync): State<Arc<StatusSync>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = match authorise(&sync, &tenant, &headers) {
        Ok(t) => t,
        Err((status, message)) => return error(status, message),
    };
    match sync.agents(&t) {
        Ok(agents) => Json(json!({
            "tenant": t.id(),
            "ccai_polled_at": t.ccai_polled_at(),
            "ccai_polls": t.polls().0,
            "kustomer_polls": t.polls().1,
            "agents": agents,
        }))
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
