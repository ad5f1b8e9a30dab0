//! Kustomer outbound webhooks: signature check and body parsing.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::model::WebhookEvent;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-kustomer-webhook-signature";
/// The header naming the event (`kustomer.conversation.update`, …).
pub const EVENT_HEADER: &str = "x-kustomer-webhook-event";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("kustomer webhook: missing {SIGNATURE_HEADER} header")]
    MissingSignature,
    #[error("kustomer webhook: signature is not hex")]
    MalformedSignature,
    #[error("kustomer webhook: signature does not match the body")]
    BadSignature,
    #[error("kustomer webhook: invalid body: {0}")]
    Body(#[from] serde_json::Error),
}

/// Checks `X-Kustomer-Webhook-Signature` = hex HMAC-SHA256(token, raw body),
/// in constant time. Pass the body exactly as received.
pub fn verify_webhook_signature(
    token: &SecretString,
    raw_body: &[u8],
    signature: Option<&str>,
) -> Result<(), WebhookError> {
    let signature = signature.ok_or(WebhookError::MissingSignature)?;
    let expected = hex::decode(signature.trim()).map_err(|_| WebhookError::MalformedSignature)?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.expose_secret().as_bytes())
        .map_err(|_| WebhookError::BadSignature)?;
    mac.update(raw_body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

/// Parses a webhook body. Accepts the event itself or the event wrapped in
/// `{"data": …}` (as some captures show it).
pub fn parse_webhook_event(raw_body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let v: serde_json::Value = serde_json::from_slice(raw_body)?;
    let wrapped = v.get("name").is_none()
        && v.get("data")
            .and_then(|d| d.get("name"))
            .is_some_and(|n| n.is_string());
    let event = if wrapped { &v["data"] } else { &v };
    Ok(serde_json::from_value(event.clone())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(token: &str, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes()).expect("any key");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn accepts_matching_signature_and_rejects_tampering() {
        let token = SecretString::from("wh-token");
        let body = br#"{"id":"1","name":"kustomer.customer.create"}"#;
        let sig = sign("wh-token", body);
        verify_webhook_signature(&token, body, Some(&sig)).expect("valid signature");
        let tampered = br#"{"id":"2","name":"kustomer.customer.create"}"#;
        assert!(matches!(
            verify_webhook_signature(&token, tampered, Some(&sig)),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verify_webhook_signature(&token, body, None),
            Err(WebhookError::MissingSignature)
        ));
        assert!(matches!(
            verify_webhook_signature(&token, body, Some("zz")),
            Err(WebhookError::MalformedSignature)
        ));
        let other = SecretString::from("other-token");
        assert!(verify_webhook_signature(&other, body, Some(&sig)).is_err());
    }
}
