//! `[tenant.click_to_call]`: the file format (unknown keys rejected) and the
//! validated settings. Numbers are read in the tenant's `phone_region`.
use super::{ConfigError, SecretRef};
use secrecy::SecretString;
use serde::Deserialize;

/// `[tenant.click_to_call]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickToCallFile {
    /// Bearer token of the tenant's click-to-call endpoint.
    token: SecretRef,
}

/// Validated click-to-call settings.
#[derive(Debug, Clone)]
pub struct ClickToCallConfig {
    pub token: SecretString,
}

impl ClickToCallConfig {
    pub fn new(token: &str) -> Self {
        Self {
            token: token.to_string().into(),
        }
    }
}

impl ClickToCallFile {
    pub(crate) fn validate(
        self,
        key: &str,
        base: &super::Base<'_>,
    ) -> Result<ClickToCallConfig, ConfigError> {
        Ok(ClickToCallConfig {
            token: self.token.resolve(&format!("{key}.token"), base)?,
        })
    }
}
