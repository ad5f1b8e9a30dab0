//! Outbound webhook delivery: one worker posts events in the order they were
//! raised, signed as Kustomer signs them.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::mpsc;

use super::state::{Inner, WebhookDelivery};

/// Lowercase hex HMAC-SHA256 of the raw body keyed by the webhook token: the
/// `X-Kustomer-Webhook-Signature` header.
pub fn sign(token: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Delivers queued events until the sender side is dropped. Events raised
/// while no target is configured are only recorded (status `None`, empty
/// signature) so tests can still inspect them.
pub async fn worker(state: Arc<Mutex<Inner>>, mut rx: mpsc::UnboundedReceiver<(String, Value)>) {
    let http = reqwest::Client::new();
    while let Some((event, body)) = rx.recv().await {
        let target = match state.lock() {
            Ok(inner) => inner.settings.webhook.clone(),
            Err(_) => return,
        };
        let Some(target) = target else {
            if let Ok(mut inner) = state.lock() {
                inner.record_delivery(
                    WebhookDelivery {
                        event,
                        body: Value::Null,
                        signature: String::new(),
                        status: None,
                    },
                    body.to_string().into_boxed_str(),
                );
            }
            continue;
        };
        let raw = body.to_string();
        let signature = sign(&target.token, raw.as_bytes());
        let status = http
            .post(&target.url)
            .header("content-type", "application/json")
            .header("x-kustomer-webhook-event", &event)
            .header("x-kustomer-webhook-signature", &signature)
            .body(raw.clone())
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16());
        if let Ok(mut inner) = state.lock() {
            inner.record_delivery(
                WebhookDelivery {
                    event,
                    body: Value::Null,
                    signature,
                    status,
                },
                raw.into_boxed_str(),
            );
        }
    }
}
