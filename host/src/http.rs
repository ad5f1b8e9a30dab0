//! The service's HTTP surface, besides the intake routes: health, readiness,
//! Prometheus metrics, the screen-pop lookup (SP1) and the authenticated
//! admin API (modules: upload, list, roll back; events: inspect, retry).
//! No business logic lives here.
mod admin;

use crate::pipeline::Pipeline;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::Arc;

/// Shared state of these routes. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub admin_token: Option<Arc<SecretString>>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

/// A JSON error body: `{"error": "..."}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Health, readiness, metrics, screen pop and admin routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route(
            "/v1/tenants/{tenant}/sessions/{session_id}/conversation",
            get(screen_pop),
        )
        .merge(admin::router())
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> String {
    for tenant in state.pipeline.registry().tenants() {
        if let Some(live) = state.pipeline.registry().live(&tenant) {
            metrics::gauge!("switchboard_module_version", "tenant" => tenant.clone(), "digest" => live.info.digest.clone())
                .set(f64::from(live.info.version));
        }
    }
    state.metrics.render()
}

/// Ready when the store answers and every configured tenant has a live module.
async fn ready(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if let Err(e) = state.pipeline.store().pending(None, 1) {
        problems.push(format!("store: {e}"));
    }
    for tenant in state.pipeline.tenant_ids() {
        if state.pipeline.registry().live(&tenant).is_none() {
            problems.push(format!("tenant `{tenant}` has no live rule module"));
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({ "ready": true }))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "problems": problems })),
        )
            .into_response()
    }
}

/// SP1: the conversation of a CCAI session, for the agent adapter to show.
/// Authenticated with the tenant's session-event credentials (HTTP Basic).
async fn screen_pop(
    State(state): State<AppState>,
    Path((tenant, session_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(t) = state.pipeline.tenant(&tenant) else {
        return error(StatusCode::NOT_FOUND, format!("unknown tenant `{tenant}`"));
    };
    let creds = &t.config.ccai.session_events;
    if !basic_matches(&headers, &creds.username, creds.password.expose_secret()) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
    }
    match state.pipeline.store().session_link(&tenant, &session_id) {
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

/// Byte-wise comparison whose time depends on neither where the inputs
/// differ nor which one is shorter (credentials, tokens, signatures).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// HTTP Basic credentials `user:password` in `Authorization`.
pub(crate) fn basic_matches(headers: &HeaderMap, user: &str, password: &str) -> bool {
    use base64::Engine as _;
    let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{user}:{password}");
    constant_time_eq(&decoded, expected.as_bytes())
}

pub(crate) fn bearer_matches(headers: &HeaderMap, token: &SecretString) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| {
            constant_time_eq(given.trim().as_bytes(), token.expose_secret().as_bytes())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
