//! Connection settings: base URL, API key (a secret), retry and rate limits.

use crate::connectors::retry::RetryPolicy;
use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::error::KustomerError;

/// A Kustomer API key. Never printed: `Debug` shows `ApiKey(<redacted>)`.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(SecretString::from(key.into()))
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Settings of one [`super::KustomerClient`].
#[derive(Debug, Clone)]
pub struct KustomerConfig {
    /// `https://<org>.api.kustomerapp.com` (or the emulator). Paths and the
    /// API's relative links are resolved against its origin.
    pub base_url: Url,
    pub api_key: ApiKey,
    pub retry: RetryPolicy,
    /// Client-side cap on conversation/message creates per customer per
    /// minute; Kustomer refuses more than 120.
    pub customer_creates_per_minute: u32,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
}

impl KustomerConfig {
    pub fn new(base_url: &str, api_key: ApiKey) -> Result<Self, KustomerError> {
        let base_url = Url::parse(base_url)
            .map_err(|e| KustomerError::Config(format!("base URL {base_url:?}: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(KustomerError::Config(format!(
                "base URL {base_url} must be http or https"
            )));
        }
        Ok(KustomerConfig {
            base_url,
            api_key,
            retry: RetryPolicy::default(),
            customer_creates_per_minute: 120,
            request_timeout: Duration::from_secs(30),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_api_key() {
        let key = "kustomer-secret-token-1234567890";
        let config = KustomerConfig::new("https://acme.api.kustomerapp.com", ApiKey::new(key))
            .expect("valid config");
        let printed = format!("{config:?}");
        assert!(
            !printed.contains(key),
            "API key leaked into Debug: {printed}"
        );
        assert!(
            printed.contains("<redacted>"),
            "expected a redaction marker: {printed}"
        );
        assert_eq!(config.api_key.expose(), key);
    }

    #[test]
    fn rejects_non_http_base_url() {
        let err = KustomerConfig::new("ftp://example.com", ApiKey::new("k"));
        assert!(err.is_err(), "ftp base URL accepted");
    }
}
