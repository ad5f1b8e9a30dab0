//! Click-to-call (SPEC §7): `POST /v1/tenants/{tenant}/click-to-call`.
//!
//! Body: `{"agent_email", "phone", "conversation_id"?, "mode": "prefill" |
//! "dial"}`, `phone` as Kustomer shows it (any formatting; numbers without a
//! country code are read in the tenant's `default_region`).
//! - `prefill` (C2C1, Kustomer's intended behaviour: the adapter is filled
//!   and the agent presses Call) answers 200 with the E.164 number and the
//!   conversation to follow: the given one, else the customer's latest open
//!   conversation, else none.
//! - `dial` (C2C2) places the call through CCAI Platform's
//!   `Voice Outbound (API)` with the agent's email and the number, and the
//!   conversation id as `ticket_id` when one was given; it answers 201 with
//!   the call id. The call then reaches the sidecar as any outbound call
//!   (session events, final record) and follows TC3/TU2.
//!
//! Errors (C2C3) are `{"error": "<message>", "reason": "<code>"}`:
//! 422 `invalid_number`, 404 `unknown_agent`, 409 `agent_unavailable`
//! (the agent is offline or in a call, chat or wrap-up, or CCAI Platform
//! answered `Agent is not available to take this call`), 403
//! `no_call_access`, 400 `bad_request`, 502 `ccai_error` / `kustomer_error`.
//!
//! Authentication: `Authorization: Bearer <token>` with the tenant's
//! `click_to_call.token`, or the admin token.
use crate::config::{invalid, ConfigError, SecretRef, TenantConfig};
use crate::connectors::ccai::{CallPlaced, CallRejection, CcaiClient, CcaiError, OutboundCall};
use crate::connectors::kustomer::{KustomerClient, KustomerError};
use crate::connectors::Clients;
use crate::http::{bearer_matches, error};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use phonenumber::country;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::Arc;

/// `[tenant.click_to_call]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickToCallFile {
    /// Bearer token of the tenant's click-to-call endpoint.
    token: SecretRef,
    /// ISO 3166 region for numbers written without a country code.
    #[serde(default = "default_region")]
    default_region: String,
}

fn default_region() -> String {
    "US".into()
}

/// Validated click-to-call settings.
#[derive(Debug, Clone)]
pub struct ClickToCallConfig {
    pub token: SecretString,
    pub default_region: country::Id,
}

impl ClickToCallConfig {
    pub fn new(token: &str, default_region: country::Id) -> Self {
        Self {
            token: token.to_string().into(),
            default_region,
        }
    }
}

impl ClickToCallFile {
    pub(crate) fn validate(
        self,
        key: &str,
        base: &FsPath,
    ) -> Result<ClickToCallConfig, ConfigError> {
        let default_region = self
            .default_region
            .to_ascii_uppercase()
            .parse::<country::Id>()
            .map_err(|_| {
                invalid(
                    format!("{key}.default_region"),
                    format!("`{}` is not an ISO 3166 region code", self.default_region),
                )
            })?;
        Ok(ClickToCallConfig {
            token: self.token.resolve(&format!("{key}.token"), base)?,
            default_region,
        })
    }
}

/// Why a number could not be normalised.
#[derive(Debug, thiserror::Error)]
#[error("{number:?} is not a valid phone number{hint}")]
pub struct NumberError {
    pub number: String,
    hint: String,
}

/// The E.164 form of a number as Kustomer shows it, read in `region` when
/// it has no country code.
pub fn normalise(raw: &str, region: country::Id) -> Result<String, NumberError> {
    let fail = |hint: &str| NumberError {
        number: raw.to_string(),
        hint: hint.to_string(),
    };
    let parsed =
        phonenumber::parse(Some(region), raw.trim()).map_err(|e| fail(&format!(": {e}")))?;
    if !phonenumber::is_valid(&parsed) {
        return Err(fail(" (no such number in its region)"));
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// Click-to-call of every tenant that configures it. Cheap to share.
pub struct ClickToCall {
    tenants: HashMap<String, TenantCalls>,
    admin_token: Option<Arc<SecretString>>,
}

struct TenantCalls {
    config: ClickToCallConfig,
    ccai: CcaiClient,
    kustomer: KustomerClient,
}

/// Why building the clients failed.
impl ClickToCall {
    /// `clients` are the tenants' shared clients, by tenant id.
    pub fn new(
        tenants: &[TenantConfig],
        clients: &HashMap<String, Clients>,
        admin_token: Option<Arc<SecretString>>,
    ) -> Self {
        let mut map = HashMap::new();
        for tenant in tenants {
            let (Some(config), Some(c)) = (&tenant.click_to_call, clients.get(&tenant.id)) else {
                continue;
            };
            map.insert(
                tenant.id.clone(),
                TenantCalls {
                    config: config.clone(),
                    ccai: c.ccai.clone(),
                    kustomer: c.kustomer.clone(),
                },
            );
        }
        Self {
            tenants: map,
            admin_token,
        }
    }
}

/// The click-to-call route.
pub fn router(calls: Arc<ClickToCall>) -> Router {
    Router::new()
        .route("/v1/tenants/{tenant}/click-to-call", post(click_to_call))
        .with_state(calls)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Prefill,
    Dial,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallRequest {
    agent_email: String,
    phone: String,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    mode: Mode,
}

fn refuse(status: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": message.into(), "reason": reason })),
    )
        .into_response()
}

async fn click_to_call(
    State(calls): State<Arc<ClickToCall>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(t) = calls.tenants.get(&tenant) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("tenant `{tenant}` has no click-to-call configured"),
        );
    };
    let admin = calls
        .admin_token
        .as_deref()
        .is_some_and(|token| bearer_matches(&headers, token));
    if !admin && !bearer_matches(&headers, &t.config.token) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let request: CallRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("invalid request: {e}"),
            )
        }
    };
    let number = match normalise(&request.phone, t.config.default_region) {
        Ok(n) => n,
        Err(e) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_number",
                e.to_string(),
            )
        }
    };
    let agent = match t.ccai.agent_by_email(request.agent_email.trim()).await {
        Ok(agent) => agent,
        Err(CcaiError::UnknownAgent { .. }) => {
            return refuse(
                StatusCode::NOT_FOUND,
                "unknown_agent",
                format!(
                    "no CCAI Platform agent has the email {}",
                    request.agent_email
                ),
            )
        }
        Err(e) => return refuse(StatusCode::BAD_GATEWAY, "ccai_error", e.to_string()),
    };
    if let Some(status) = &agent.status {
        if matches!(status.id, -6 | -7 | -8 | -10) {
            return refuse(
                StatusCode::CONFLICT,
                "agent_unavailable",
                format!(
                    "agent {} is not available to call (CCAI Platform status {})",
                    request.agent_email, status.name
                ),
            );
        }
    }
    let conversation = match &request.conversation_id {
        Some(id) => Some(id.clone()),
        None => match latest_open_conversation(&t.kustomer, &number).await {
            Ok(found) => found,
            Err(e) => return refuse(StatusCode::BAD_GATEWAY, "kustomer_error", e.to_string()),
        },
    };
    if request.mode == Mode::Prefill {
        return Json(json!({
            "mode": "prefill",
            "agent_email": request.agent_email,
            "number": number,
            "conversation_id": conversation,
        }))
        .into_response();
    }
    let mut call = OutboundCall::to_number(request.agent_email.trim(), number.clone());
    call.ticket_id.clone_from(&request.conversation_id);
    match t.ccai.place_outbound_call(&call).await {
        Ok(placed) => {
            let (call, status) = match placed {
                CallPlaced::Created(call) => (call, "placed"),
                CallPlaced::NeedsAgentAction(call) => (call, "agent_action_needed"),
            };
            tracing::info!(tenant, call_id = call.id, status, "click-to-call placed");
            (
                StatusCode::CREATED,
                Json(json!({
                    "mode": "dial",
                    "status": status,
                    "call_id": call.id,
                    "agent_email": request.agent_email,
                    "number": number,
                    "conversation_id": conversation,
                })),
            )
                .into_response()
        }
        Err(CcaiError::CallRejected { kind, message }) => {
            let (status, reason) = match kind {
                CallRejection::AgentNotAvailable => (StatusCode::CONFLICT, "agent_unavailable"),
                CallRejection::InvalidAgentEmail | CallRejection::AgentEmailRequired => {
                    (StatusCode::NOT_FOUND, "unknown_agent")
                }
                CallRejection::NumberNotWellFormed | CallRejection::NumberRequired => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "invalid_number")
                }
                CallRejection::NoCallAccess => (StatusCode::FORBIDDEN, "no_call_access"),
                _ => (StatusCode::BAD_GATEWAY, "ccai_error"),
            };
            refuse(
                status,
                reason,
                format!("CCAI Platform refused the call: {message}"),
            )
        }
        Err(e) => refuse(StatusCode::BAD_GATEWAY, "ccai_error", e.to_string()),
    }
}

/// The newest open conversation of the customer with this number.
async fn latest_open_conversation(
    kustomer: &KustomerClient,
    number: &str,
) -> Result<Option<String>, KustomerError> {
    let Some(customer) = kustomer.find_customer_by_phone(number).await? else {
        return Ok(None);
    };
    let conversations = kustomer.recent_conversations(&customer.id, 20).await?;
    Ok(conversations
        .into_iter()
        .find(|c| c.attributes.status.as_deref() == Some("open"))
        .map(|c| c.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c2c1_numbers_as_kustomer_shows_them_become_e164() {
        for raw in [
            "+1 415-555-0101",
            "(415) 555-0101",
            "415.555.0101",
            "+14155550101",
        ] {
            assert_eq!(
                normalise(raw, country::Id::US).expect(raw),
                "+14155550101",
                "{raw}"
            );
        }
        assert_eq!(
            normalise("030 901820", country::Id::DE).expect("de"),
            "+4930901820"
        );
    }

    #[test]
    fn c2c3_garbage_is_not_a_number() {
        for raw in ["", "call me", "12", "+1 000"] {
            assert!(normalise(raw, country::Id::US).is_err(), "{raw} accepted");
        }
    }
}
