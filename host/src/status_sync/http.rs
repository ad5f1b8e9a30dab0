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
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The status sync routes.
pub fn router(sync: Arc<StatusSync>) -> Router {
    Router::new()
        .route("/v1/tenants/{tenant}/kustomer/status", post(report))
        .route("/v1/tenants/{tenant}/status-sync/agents", get(agents))
        .route(
            "/v1/tenants/{tenant}/status-sync/changes/{change_id}",
            get(change),
        )
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
