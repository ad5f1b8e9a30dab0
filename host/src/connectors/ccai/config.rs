//! Connection settings of one tenant's CCAI Platform instance.

use crate::connectors::retry::RetryPolicy;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use url::Url;

/// Manager/Apps API credentials, in either documented Basic style.
#[derive(Clone)]
pub enum ApiCredentials {
    /// *Developer Settings › API Credentials*: `subdomain:token`.
    ApiToken {
        subdomain: String,
        token: SecretString,
    },
    /// *Developer Settings › Company Key & Secret Code*: `key:secret`.
    CompanyKey { key: String, secret: SecretString },
}

impl ApiCredentials {
    /// `(user, password)` for HTTP Basic.
    pub(crate) fn basic(&self) -> (&str, &str) {
        match self {
            Self::ApiToken { subdomain, token } => (subdomain, token.expose_secret()),
            Self::CompanyKey { key, secret } => (key, secret.expose_secret()),
        }
    }
}

impl std::fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApiToken { subdomain, .. } => f
                .debug_struct("ApiToken")
                .field("subdomain", subdomain)
                .field("token", &"[REDACTED]")
                .finish(),
            Self::CompanyKey { key, .. } => f
                .debug_struct("CompanyKey")
                .field("key", key)
                .field("secret", &"[REDACTED]")
                .finish(),
        }
    }
}

/// HTTP Basic credentials the sidecar expects CCAI Platform to send with
/// External Session Events (configured in *Session Data Export*).
#[derive(Clone)]
pub struct InboundBasic {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for InboundBasic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundBasic")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// Chat webhook signing secrets (*Developer Settings › Webhooks*). The
/// secondary exists while a rotation is under way.
#[derive(Clone)]
pub struct WebhookSecrets {
    pub primary: SecretString,
    pub secondary: Option<SecretString>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("primary", &"[REDACTED]")
            .field("secondary", &self.secondary.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Everything the sidecar needs to talk to, and hear from, one instance.
#[derive(Debug, Clone)]
pub struct CcaiConfig {
    /// `https://{subdomain}.{domain}`; API paths are joined under it.
    pub base_url: Url,
    pub credentials: ApiCredentials,
    pub session_events: InboundBasic,
    pub webhooks: WebhookSecrets,
    /// Client-side cap; the platform allows 10 requests/second per customer.
    pub requests_per_second: u32,
    /// Retries of transient failures (429, 5xx to idempotent requests,
    /// connection errors); `max_delay` also caps `Retry-After`.
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl CcaiConfig {
    /// A config with the documented limits and default retry policy.
    pub fn new(
        base_url: Url,
        credentials: ApiCredentials,
        session_events: InboundBasic,
        webhooks: WebhookSecrets,
    ) -> Self {
        Self {
            base_url,
            credentials,
            session_events,
            webhooks,
            requests_per_second: 10,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CcaiConfig {
        CcaiConfig::new(
            Url::parse("https://acme.uc1.ccaiplatform.com").expect("url"),
            ApiCredentials::ApiToken {
                subdomain: "acme".into(),
                token: "tok-s3cret".into(),
            },
            InboundBasic {
                username: "ccai".into(),
                password: "pw-s3cret".into(),
            },
            WebhookSecrets {
                primary: "prim-s3cret".into(),
                secondary: Some("sec-s3cret".into()),
            },
        )
    }

    #[test]
    fn debug_redacts_every_secret() {
        let mut config = config();
        let printed = format!("{config:?}");
        for secret in ["tok-s3cret", "pw-s3cret", "prim-s3cret", "sec-s3cret"] {
            assert!(!printed.contains(secret), "{secret} leaked in {printed}");
        }
        assert!(
            printed.contains("acme"),
            "non-secret fields stay visible: {printed}"
        );
        config.credentials = ApiCredentials::CompanyKey {
            key: "ck".into(),
            secret: "company-s3cret".into(),
        };
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("company-s3cret"),
            "company secret leaked in {printed}"
        );
    }

    #[test]
    fn both_credential_styles_give_basic_pairs() {
        let token = ApiCredentials::ApiToken {
            subdomain: "acme".into(),
            token: "t".into(),
        };
        assert_eq!(token.basic(), ("acme", "t"));
        let key = ApiCredentials::CompanyKey {
            key: "k".into(),
            secret: "s".into(),
        };
        assert_eq!(key.basic(), ("k", "s"));
    }
}
