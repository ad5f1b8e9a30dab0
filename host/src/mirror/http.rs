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
use crate::store::Store;
use crate::tenant::Tenants;
use crate::web::error;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

/// The header Kustomer signs its deliveries with.
pub const SIGNATURE_HEADER: &str = "x-kustomer-webhook-signature";

#[derive(Clone)]
struct WebhookState {
    store: Store,
    tenants: Tenants,
}

/// The webhook route.
pub fn router(store: Store, tenants: Tenants) -> Router {
    Router::new()
        .route("/v1/tenants/{tenant}/kustomer/webhooks", post(webhook))
        .with_state(WebhookState { store, tenants })
}

/// One delivery: `{"name": "kustomer.conversation.update", "data": {…}}`.
#[derive(Debug, Deserialize)]
struct Delivery {
    name: String,
    data: Value,
}

/// Whether `signature` (hex) is the body's HMAC under `token`.
pub fn verify(token: &str, body: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

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
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !verify(token.expose_secret(), &body, signature) {
        return error(
            StatusCode::UNAUTHORIZED,
            format!("missing or wrong {SIGNATURE_HEADER}"),
        );
    }
    let delivery: Delivery = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("not a webhook delivery: {e}"),
            )
        }
    };
    let seen = chrono::Utc::now().timestamp_millis();
    let recorded = if delivery.name.starts_with("kustomer.customer.") {
        serde_json::from_value::<Customer>(delivery.data)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                record_customer(&state.store, &tenant, &c, seen).map_err(|e| e.to_string())
            })
            .map(|()| true)
    } else if delivery.name.starts_with("kustomer.conversation.") {
        serde_json::from_value::<Conversation>(delivery.data)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                record_conversation(&state.store, &tenant, &c, seen).map_err(|e| e.to_string())
            })
            .map(|()| true)
    } else {
        Ok(false)
    };
    match recorded {
        Ok(recorded) => {
            metrics::counter!("switchboard_kustomer_webhooks_total", "tenant" => tenant.clone(), "recorded" => if recorded { "yes" } else { "ignored" }).increment(1);
            Json(json!({ "event": delivery.name, "recorded": recorded })).into_response()
        }
        Err(reason) => error(
            StatusCode::BAD_REQUEST,
            format!("{}: {reason}", delivery.name),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ku2_webhook_signatures_are_checked_on_the_raw_body() {
        let body = br#"{"name":"kustomer.customer.update","data":{}}"#;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"tok").expect("key");
        mac.update(body);
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(verify("tok", body, &good));
        assert!(
            verify("tok", body, &good.to_uppercase()),
            "hex in either case"
        );
        assert!(!verify("other", body, &good));
        assert!(!verify("tok", b"{}", &good));
        assert!(!verify("tok", body, ""));
        assert!(!verify("tok", body, "zz"));
    }
}
