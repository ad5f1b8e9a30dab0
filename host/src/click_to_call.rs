//! Click-to-call (SPEC §7): `POST /v1/tenants/{tenant}/click-to-call`.
//!
//! Body: `{"agent_email", "phone", "conversation_id"?, "mode": "prefill" |
//! "dial"}`, `phone` as Kustomer shows it (any formatting; numbers without a
//! country code are read in the tenant's `phone_region`, see [`crate::phone`]).
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
use crate::connectors::ccai::{
    AgentInfo, CallPlaced, CallRejection, CcaiError, OutboundCall, SystemStatus,
};
use crate::connectors::kustomer::{KustomerClient, KustomerError};
use crate::phone;
use crate::tenant::{Tenant, Tenants};
use crate::web::{bearer_or_admin, error, refusal as refuse};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use utoipa_axum::{router::OpenApiRouter, routes};

/// A call click-to-call placed: what is known of its session before CCAI
/// Platform reports it.
#[derive(Debug, Clone)]
pub struct Placed {
    pub tenant: String,
    /// CCAI Platform's call id (the session is `call-<id>`).
    pub call_id: u64,
    /// The dialled number, E.164.
    pub number: String,
    pub agent: AgentInfo,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Told of every call placed; the app merges it into the session ledger.
pub type OnPlaced = Arc<dyn Fn(Placed) + Send + Sync>;

/// Click-to-call of every tenant that configures it. Cheap to share.
pub struct ClickToCall {
    tenants: Tenants,
    admin_token: Option<Arc<SecretString>>,
    on_placed: Option<OnPlaced>,
}

impl ClickToCall {
    pub fn new(tenants: Tenants, admin_token: Option<Arc<SecretString>>) -> Self {
        Self {
            tenants,
            admin_token,
            on_placed: None,
        }
    }

    /// Calls `on_placed` with every call placed (not with those still
    /// waiting for the agent to accept).
    pub fn with_on_placed(mut self, on_placed: OnPlaced) -> Self {
        self.on_placed = Some(on_placed);
        self
    }

    /// The tenant, when it has click-to-call configured.
    fn tenant(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants
            .get(id)
            .filter(|t| t.config.click_to_call.is_some())
    }
}

/// The click-to-call route.
pub fn router(calls: Arc<ClickToCall>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(click_to_call))
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

#[utoipa::path(post, path = "/v1/tenants/{tenant}/click-to-call", tag = "agent",
    security(("agent_token" = [])),
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "`{agent_email, phone, conversation_id?, mode?: \"prefill\"|\"dial\"}`"),
    responses((status = 200, description = "The call was placed or pre-filled in the agent's adapter"),
        (status = 400, description = "Malformed request or a number that cannot be dialled, with the reason"),
        (status = 401, description = "Missing or wrong token"),
        (status = 404, description = "Unknown tenant, or click-to-call is off for it")))]
async fn click_to_call(
    State(calls): State<Arc<ClickToCall>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some((t, config)) = calls
        .tenant(&tenant)
        .and_then(|t| Some((t, t.config.click_to_call.as_ref()?)))
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!("tenant `{tenant}` has no click-to-call configured"),
        );
    };
    if !bearer_or_admin(&headers, &config.token, calls.admin_token.as_deref()) {
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
    let number = match phone::e164(&request.phone, t.config.phone_region) {
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
        let busy_or_offline = SystemStatus::from_id(status.id)
            .is_some_and(|s| s.in_session() || s == SystemStatus::Offline);
        if busy_or_offline {
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
            if let (Some(on_placed), "placed") = (&calls.on_placed, status) {
                on_placed(Placed {
                    tenant: tenant.clone(),
                    call_id: call.id,
                    number: number.clone(),
                    agent: AgentInfo {
                        id: agent.id,
                        name: agent.display_name(),
                        first_name: agent.first_name.clone(),
                        last_name: agent.last_name.clone(),
                        agent_number: agent.agent_number.clone(),
                        avatar_url: None,
                        email: agent.email.clone(),
                    },
                    at: chrono::Utc::now(),
                });
            }
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
    let conversations = kustomer.newest_conversations(&customer.id, 20).await?;
    Ok(conversations
        .into_iter()
        .find(|c| c.attributes.status.as_deref() == Some("open"))
        .map(|c| c.id))
}
