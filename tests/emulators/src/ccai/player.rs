//! Plays scenarios against a sidecar: session-event batches with HTTP
//! Basic auth, chat webhooks signed like CCAI Platform signs them.

use super::scenarios::{Scenario, Step};
use anyhow::Context as _;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Where and how to deliver a scenario.
#[derive(Debug, Clone)]
pub struct PlayTarget {
    /// The sidecar, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    pub tenant: String,
    /// Basic credentials configured for External Session Events.
    pub username: String,
    pub password: String,
    /// Chat webhook secrets; the secondary is optional, as on the platform.
    pub webhook_primary_secret: String,
    pub webhook_secondary_secret: Option<String>,
}

impl PlayTarget {
    pub fn session_events_url(&self) -> String {
        format!(
            "{}/v1/tenants/{}/ccai/session-events",
            self.base_url.trim_end_matches('/'),
            self.tenant
        )
    }

    pub fn chat_webhooks_url(&self) -> String {
        format!(
            "{}/v1/tenants/{}/ccai/chat-webhooks",
            self.base_url.trim_end_matches('/'),
            self.tenant
        )
    }
}

/// The answer to one delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// `session-events` or `chat-webhook`.
    pub kind: &'static str,
    pub status: u16,
    pub body: String,
}

/// Base64(HMAC-SHA256(secret, timestamp + body)), as the platform signs
/// chat webhooks.
pub fn sign_webhook(secret: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `X-Signature` header value for `body` signed at `timestamp`.
pub fn signature_header(target: &PlayTarget, timestamp: &str, body: &[u8]) -> String {
    let primary = sign_webhook(&target.webhook_primary_secret, timestamp, body);
    match &target.webhook_secondary_secret {
        Some(secondary) => format!(
            "primary={primary} secondary={}",
            sign_webhook(secondary, timestamp, body)
        ),
        None => format!("primary={primary}"),
    }
}

/// Delivers every session-event batch and chat webhook of `scenario` in
/// order. Final records are not delivered here (the Manager API serves
/// them; see `CcaiEmulator::publish`). Fails on the first non-2xx answer.
pub async fn play(scenario: &Scenario, target: &PlayTarget) -> anyhow::Result<Vec<Delivery>> {
    let client = reqwest::Client::new();
    let mut deliveries = Vec::new();
    for step in &scenario.steps {
        let delivery = match step {
            Step::SessionEvents { batch, .. } => {
                let response = client
                    .post(target.session_events_url())
                    .basic_auth(&target.username, Some(&target.password))
                    .json(batch)
                    .send()
                    .await
                    .with_context(|| format!("{}: posting session events", scenario.name))?;
                Delivery {
                    kind: "session-events",
                    status: response.status().as_u16(),
                    body: response.text().await.unwrap_or_default(),
                }
            }
            Step::ChatWebhook { body } => {
                let raw = serde_json::to_vec(body)?;
                let timestamp = chrono::Utc::now().timestamp().to_string();
                let response = client
                    .post(target.chat_webhooks_url())
                    .header("content-type", "application/json")
                    .header("X-Signature", signature_header(target, &timestamp, &raw))
                    .header("X-Signature-Timestamp", &timestamp)
                    .body(raw)
                    .send()
                    .await
                    .with_context(|| format!("{}: posting chat webhook", scenario.name))?;
                Delivery {
                    kind: "chat-webhook",
                    status: response.status().as_u16(),
                    body: response.text().await.unwrap_or_default(),
                }
            }
            Step::FinalCall(_) | Step::FinalChat(_) => continue,
        };
        if !(200..300).contains(&delivery.status) {
            anyhow::bail!(
                "{}: {} answered {}: {}",
                scenario.name,
                delivery.kind,
                delivery.status,
                delivery.body
            );
        }
        deliveries.push(delivery);
    }
    Ok(deliveries)
}
