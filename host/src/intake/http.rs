//! The two HTTP intakes: External Session Events and chat webhooks.

use super::item::{ChatWebhook, SessionEventBatch};
use super::log::{Kind, LogError, Record};
use super::{ledger, normalize};
use super::{IntakeState, TenantIntake};
use crate::web::error as reject;
use axum::body::{to_bytes, Body};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::Sha256;

/// A refusal before the body is handled; small, unlike a `Response`.
pub(crate) struct Rejection(StatusCode, String);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        reject(self.0, self.1)
    }
}

fn tenant<'a>(state: &'a IntakeState, name: &str) -> Result<&'a TenantIntake, Rejection> {
    state
        .tenants
        .get(name)
        .ok_or_else(|| Rejection(StatusCode::NOT_FOUND, format!("unknown tenant {name:?}")))
}

async fn read_body(state: &IntakeState, body: Body) -> Result<bytes::Bytes, Response> {
    to_bytes(body, state.config.max_body_bytes)
        .await
        .map_err(|_| {
            reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes", state.config.max_body_bytes),
            )
        })
}

fn basic_ok(headers: &HeaderMap, tenant: &TenantIntake) -> bool {
    crate::web::basic_matches(
        headers,
        &tenant.session_events.username,
        tenant.session_events.password.expose_secret(),
    )
}

fn store_error(error: crate::store::StoreError) -> Response {
    tracing::error!(%error, "intake could not store events");
    reject(
        StatusCode::SERVICE_UNAVAILABLE,
        "events could not be stored; retry",
    )
}

/// The 503 for a request the intake log could not take.
fn log_error(error: LogError) -> Response {
    match error {
        LogError::Full { .. } => reject(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
        _ => {
            // The file's path and the system's error stay in the log.
            tracing::error!(%error, "intake could not log events");
            reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "events could not be logged; retry",
            )
        }
    }
}

/// `POST /v1/tenants/{tenant}/ccai/session-events`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/ccai/session-events", tag = "intake",
    security(("session_events" = [])),
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "CCAI Platform's External Session Events: one batch (`{\"items\": [...]}`) of session updates"),
    responses((status = 200, description = "In the intake log (the default on SQLite), merged after: `{received, logged}`; with `server.intake_log = false`, stored durably: `{received, accepted, duplicates}`"),
        (status = 400, description = "Malformed batch, with the reason"),
        (status = 401, description = "Missing or wrong Basic credentials"),
        (status = 404, description = "Unknown tenant"),
        (status = 413, description = "Body larger than `server.max_body_bytes`"),
        (status = 503, description = "Events could not be stored, or the intake log holds too much not yet merged; retry")))]
pub(crate) async fn session_events(
    State(state): State<IntakeState>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let tenant = match tenant(&state, &tenant_name) {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    if !basic_ok(&headers, tenant) {
        let mut r = reject(
            StatusCode::UNAUTHORIZED,
            "wrong or missing Basic credentials",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"switchboard\""),
        );
        return r;
    }
    let bytes = match read_body(&state, body).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let batch: SessionEventBatch = match crate::connectors::json_from_bytes(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return reject(
                StatusCode::BAD_REQUEST,
                format!("malformed session events: {e}"),
            )
        }
    };
    // One update per distinct event id.
    let updates = normalize::batch_updates(batch);
    let received = updates.len();
    if let Some(log) = &state.log {
        // PF6: the body as sent, merged by the log's mover after the answer
        // (from the updates read here while they are in memory).
        return match log.append_parsed(&tenant_name, &bytes, updates) {
            Ok(()) => Json(json!({ "received": received, "logged": received })).into_response(),
            Err(e) => log_error(e),
        };
    }
    match ledger::reconcile(
        &state.store,
        &tenant_name,
        tenant.phone_region,
        "session-events",
        updates,
        None,
    ) {
        Ok(stored) => {
            state.ring(&stored.events);
            // The 2xx promises the events are durable (OP2).
            if let Err(e) = state.store.durable(crate::store::Wait::Prompt).await {
                return store_error(e);
            }
            Json(json!({
                "received": received,
                "accepted": stored.new,
                "duplicates": stored.unchanged,
            }))
            .into_response()
        }
        Err(e) => store_error(e),
    }
}

/// The signatures in `primary=<b64> secondary=<b64>` (or only `primary=`).
fn signatures(header: &str) -> Vec<&str> {
    header
        .split_whitespace()
        .filter_map(|part| {
            part.strip_prefix("primary=")
                .or_else(|| part.strip_prefix("secondary="))
        })
        .filter(|s| !s.is_empty())
        .collect()
}

fn sign(secret: &str, timestamp: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(body);
    Some(mac.finalize().into_bytes().to_vec())
}

/// `X-Signature-Timestamp` as a time: epoch seconds, epoch milliseconds or
/// ISO-8601.
fn signature_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(n) = raw.parse::<i64>() {
        let ms = if n > 100_000_000_000 {
            n
        } else {
            n.checked_mul(1000)?
        };
        return DateTime::<Utc>::from_timestamp_millis(ms);
    }
    normalize::parse_time(raw)
}

/// `POST /v1/tenants/{tenant}/ccai/chat-webhooks`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/ccai/chat-webhooks", tag = "intake",
    security(("chat_signature" = [])),
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "A CCAI Platform chat webhook (signed; a replayed signature is refused)"),
    responses((status = 200, description = "In the intake log (the default on SQLite), merged after: `{logged: 1}`; with `server.intake_log = false`, stored durably: `{accepted, duplicates}`"),
        (status = 400, description = "Malformed payload, with the reason"),
        (status = 401, description = "Missing, wrong, stale or replayed signature"),
        (status = 404, description = "Unknown tenant"),
        (status = 413, description = "Body larger than `server.max_body_bytes`"),
        (status = 503, description = "Events could not be stored, or the intake log holds too much not yet merged; retry")))]
pub(crate) async fn chat_webhooks(
    State(state): State<IntakeState>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let tenant = match tenant(&state, &tenant_name) {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let header_str = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (Some(signature), Some(timestamp)) = (
        header_str("x-signature"),
        header_str("x-signature-timestamp"),
    ) else {
        return reject(
            StatusCode::BAD_REQUEST,
            "X-Signature and X-Signature-Timestamp are required",
        );
    };
    let bytes = match read_body(&state, body).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let now = (state.clock)();
    let Some(signed_at) = signature_time(&timestamp) else {
        return reject(
            StatusCode::BAD_REQUEST,
            "X-Signature-Timestamp is not a time",
        );
    };
    let window = chrono::Duration::from_std(state.config.webhook_window)
        .unwrap_or(chrono::Duration::minutes(5));
    if (now - signed_at).abs() > window {
        return reject(StatusCode::UNAUTHORIZED, "stale X-Signature-Timestamp");
    }
    let mut secrets = vec![tenant.webhooks.primary.expose_secret().to_string()];
    if let Some(secondary) = &tenant.webhooks.secondary {
        secrets.push(secondary.expose_secret().to_string());
    }
    let expected: Vec<Vec<u8>> = secrets
        .iter()
        .filter_map(|s| sign(s, &timestamp, &bytes))
        .collect();
    let given: Vec<Vec<u8>> = signatures(&signature)
        .into_iter()
        .filter_map(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .collect();
    // Every pair is compared, so the time does not tell which one matched.
    let verified: Vec<Vec<u8>> = given
        .into_iter()
        .filter(|g| {
            expected
                .iter()
                .map(|e| crate::web::constant_time_eq(g, e))
                .fold(false, |acc, ok| acc | ok)
        })
        .collect();
    if verified.is_empty() {
        return reject(StatusCode::UNAUTHORIZED, "signature does not match");
    }
    if !state
        .replays
        .first_sight(&tenant_name, &verified, now, window)
    {
        return reject(
            StatusCode::CONFLICT,
            "replayed webhook (a signature already seen)",
        );
    }
    let hook: ChatWebhook = match crate::connectors::json_from_bytes(&bytes) {
        Ok(h) => h,
        Err(e) => {
            return reject(
                StatusCode::BAD_REQUEST,
                format!("malformed chat webhook: {e}"),
            )
        }
    };
    if let Some(log) = &state.log {
        // PF6: logged as verified, merged by the log's mover after the answer.
        let record = Record {
            kind: Kind::ChatWebhook,
            tenant: &tenant_name,
            received_at_ms: now.timestamp_millis(),
            body: &bytes,
        };
        return match log.append_record(&record) {
            Ok(()) => Json(json!({ "logged": 1 })).into_response(),
            Err(e) => log_error(e),
        };
    }
    match ledger::reconcile_webhook(
        &state.store,
        &tenant_name,
        tenant.phone_region,
        &hook,
        now,
        None,
    ) {
        Ok(stored) => {
            state.ring(&stored.events);
            if let Err(e) = state.store.durable(crate::store::Wait::Prompt).await {
                return store_error(e);
            }
            Json(json!({ "accepted": stored.new, "duplicates": stored.unchanged })).into_response()
        }
        Err(e) => store_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_header_yields_one_or_two_signatures() {
        assert_eq!(signatures("primary=abc= secondary=def="), ["abc=", "def="]);
        assert_eq!(signatures("primary=abc="), ["abc="]);
        assert!(signatures("garbage").is_empty());
    }

    #[test]
    fn signature_timestamps_parse_in_three_forms() {
        let s = signature_time("1768467600").expect("seconds");
        assert_eq!(signature_time("1768467600000"), Some(s));
        assert_eq!(signature_time("2026-01-15T09:00:00Z"), Some(s));
        assert_eq!(signature_time("yesterday"), None);
    }
}
