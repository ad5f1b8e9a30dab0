//! `POST /v1/tenants/{tenant}/kustomer/webhooks`: Kustomer's outbound
//! webhooks (customer and conversation create and update) into the mirror.
//!
//! `X-Kustomer-Webhook-Signature` must be the lower-case hex
//! HMAC-SHA256 of the raw body under the tenant's `kustomer.webhook_token`
//! (compared in constant time): missing or wrong is 401 and changes nothing.
//! Other events are acknowledged and ignored; Kustomer delivers at least
//! once, and a repeat or a late copy changes nothing (see the module docs).
use super::{record_conversation, record_customer};
use crate::connectors::kustomer::model::{Conversation, Customer};
use crate::connectors::kustomer::webhook::SIGNATURE_HEADER;
use crate::connectors::kustomer::{parse_webhook_event, verify_webhook_signature};
use crate::store::Store;
use crate::tenant::Tenants;
use crate::web::error;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(Clone)]
struct WebhookState {
    store: Store,
    tenants: Tenants,
}

/// The webhook route.
pub fn router(store: Store, tenants: Tenants) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(webhook))
        .with_state(WebhookState { store, tenants })
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/kustomer/webhooks", tag = "kustomer",
    security(("kustomer_signature" = [])),
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "A Kustomer outbound webhook delivery (customer or conversation created or updated)"),
    responses((status = 200, description = "Received; whether the mirror recorded it"),
        (status = 400, description = "Not a Kustomer webhook event"),
        (status = 401, description = "Missing or wrong signature"),
        (status = 404, description = "Unknown tenant, or no `kustomer.webhook_token` configured")))]
async fn webhook(
    State(state): State<WebhookState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(t) = state.tenants.get(&tenant) else {
        return error(StatusCode::NOT_FOUND, format!("unknown tenant {tenant:?}"));
    };
    let Some(token) = &t.config.mirror.webhook_token else {
        return error(
            StatusCode::NOT_FOUND,
            format!("tenant `{tenant}` takes no Kustomer webhooks (set kustomer.webhook_token)"),
        );
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if let Err(e) = verify_webhook_signature(token, &body, signature) {
        return error(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let event = match parse_webhook_event(&body) {
        Ok(event) => event,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let seen = chrono::Utc::now().timestamp_millis();
    let data = serde_json::to_value(&event.data).unwrap_or_default();
    let recorded = if event.name.starts_with("kustomer.customer.") {
        serde_json::from_value::<Customer>(data)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                record_customer(&state.store, &tenant, c, seen).map_err(|e| e.to_string())
            })
            .map(|_| true)
    } else if event.name.starts_with("kustomer.conversation.") {
        serde_json::from_value::<Conversation>(data)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                record_conversation(&state.store, &tenant, c, seen).map_err(|e| e.to_string())
            })
            .map(|_| true)
    } else {
        Ok(false)
    };
    match recorded {
        Ok(recorded) => {
            metrics::counter!("switchboard_kustomer_webhooks_total", "tenant" => tenant.clone(), "recorded" => if recorded { "yes" } else { "ignored" }).increment(1);
            Json(json!({ "event": event.name, "recorded": recorded })).into_response()
        }
        Err(reason) => error(StatusCode::BAD_REQUEST, format!("{}: {reason}", event.name)),
    }
}
