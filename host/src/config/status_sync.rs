//! `[tenant.status_sync]`: the file format (unknown keys rejected) and the
//! validated settings.
use super::{invalid, ConfigError, SecretRef};
use crate::runtime::types as t;
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Which way statuses flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Kustomer → CCAI Platform only (AS2).
    #[default]
    OneWay,
    /// Both ways, through a second mapping (AS3).
    TwoWay,
}

/// Who wins when a deferred CRM status meets a CCAI change (AS6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    #[default]
    LastChangeWins,
    CrmOverrides,
}

/// `[tenant.status_sync]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSyncFile {
    #[serde(default)]
    direction: Direction,
    #[serde(default)]
    priority: Priority,
    /// Kustomer status name → CCAI Platform status name (many-to-one, AS1).
    #[serde(default)]
    kustomer_to_ccai: BTreeMap<String, String>,
    /// CCAI Platform status name → Kustomer status name (two-way only, AS3).
    #[serde(default)]
    ccai_to_kustomer: BTreeMap<String, String>,
    /// How often CCAI agent statuses are read (milliseconds).
    #[serde(default = "default_ccai_poll_ms")]
    ccai_poll_interval_ms: u64,
    /// How often Kustomer work sessions are read (milliseconds); unset =
    /// Kustomer changes arrive only through the status endpoint.
    kustomer_poll_interval_ms: Option<u64>,
    /// A Kustomer instance not heard from for this long no longer counts as
    /// signed in (AS5).
    #[serde(default = "default_instance_ttl")]
    instance_ttl_seconds: u64,
    /// How long the Kustomer app's report waits for its decision before it
    /// is answered 202 (stored, decision to come).
    #[serde(default = "default_decision_wait_ms")]
    decision_wait_ms: u64,
    /// Bearer token of the tenant's status endpoints.
    token: SecretRef,
}

fn default_ccai_poll_ms() -> u64 {
    5_000
}
fn default_instance_ttl() -> u64 {
    120
}
fn default_decision_wait_ms() -> u64 {
    2_000
}

/// Validated status sync settings of one tenant.
#[derive(Debug, Clone)]
pub struct StatusSyncConfig {
    pub direction: Direction,
    pub priority: Priority,
    pub kustomer_to_ccai: Vec<(String, String)>,
    pub ccai_to_kustomer: Vec<(String, String)>,
    pub ccai_poll_interval: Duration,
    pub kustomer_poll_interval: Option<Duration>,
    pub instance_ttl: Duration,
    /// How long a report waits for its decision before the 202.
    pub decision_wait: Duration,
    /// Bearer token of `POST …/kustomer/status` and `GET …/status-sync/agents`.
    pub token: SecretString,
}

impl StatusSyncFile {
    pub(crate) fn validate(
        self,
        key: &str,
        base: &super::Base<'_>,
    ) -> Result<StatusSyncConfig, ConfigError> {
        if self.ccai_poll_interval_ms < 50 {
            return Err(invalid(
                format!("{key}.ccai_poll_interval_ms"),
                "use at least 50 ms",
            ));
        }
        if self.kustomer_poll_interval_ms.is_some_and(|ms| ms < 50) {
            return Err(invalid(
                format!("{key}.kustomer_poll_interval_ms"),
                "use at least 50 ms",
            ));
        }
        let check = |name: &str, map: &BTreeMap<String, String>| {
            for (from, to) in map {
                if from.trim().is_empty() || to.trim().is_empty() {
                    return Err(invalid(
                        format!("{key}.{name}"),
                        "status names cannot be empty",
                    ));
                }
            }
            Ok(())
        };
        check("kustomer_to_ccai", &self.kustomer_to_ccai)?;
        check("ccai_to_kustomer", &self.ccai_to_kustomer)?;
        if self.direction == Direction::OneWay && !self.ccai_to_kustomer.is_empty() {
            return Err(invalid(
                format!("{key}.ccai_to_kustomer"),
                "only used with direction = \"two-way\"",
            ));
        }
        Ok(StatusSyncConfig {
            direction: self.direction,
            priority: self.priority,
            kustomer_to_ccai: self.kustomer_to_ccai.into_iter().collect(),
            ccai_to_kustomer: self.ccai_to_kustomer.into_iter().collect(),
            ccai_poll_interval: Duration::from_millis(self.ccai_poll_interval_ms),
            kustomer_poll_interval: self.kustomer_poll_interval_ms.map(Duration::from_millis),
            instance_ttl: Duration::from_secs(self.instance_ttl_seconds),
            decision_wait: Duration::from_millis(self.decision_wait_ms),
            token: self.token.resolve(&format!("{key}.token"), base)?,
        })
    }
}

impl StatusSyncConfig {
    /// One-way settings with a mapping, for the demo and tests.
    pub fn one_way(kustomer_to_ccai: &[(&str, &str)], token: &str) -> Self {
        Self {
            direction: Direction::OneWay,
            priority: Priority::LastChangeWins,
            kustomer_to_ccai: pairs(kustomer_to_ccai),
            ccai_to_kustomer: Vec::new(),
            ccai_poll_interval: Duration::from_millis(200),
            kustomer_poll_interval: None,
            instance_ttl: Duration::from_secs(120),
            decision_wait: Duration::from_millis(default_decision_wait_ms()),
            token: token.to_string().into(),
        }
    }

    /// Turns on two-way sync with the CCAI → Kustomer mapping.
    pub fn two_way(mut self, ccai_to_kustomer: &[(&str, &str)]) -> Self {
        self.direction = Direction::TwoWay;
        self.ccai_to_kustomer = pairs(ccai_to_kustomer);
        self
    }

    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The mappings and modes as the rule module sees them.
    pub(crate) fn maps(&self) -> (Vec<t::StatusMap>, Vec<t::StatusMap>) {
        let map = |v: &[(String, String)]| {
            v.iter()
                .map(|(from, to)| t::StatusMap {
                    from: from.clone(),
                    to: to.clone(),
                })
                .collect()
        };
        (map(&self.kustomer_to_ccai), map(&self.ccai_to_kustomer))
    }

    pub(crate) fn priority_mode(&self) -> t::PriorityMode {
        match self.priority {
            Priority::LastChangeWins => t::PriorityMode::LastChangeWins,
            Priority::CrmOverrides => t::PriorityMode::CrmOverrides,
        }
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StatusSyncConfig, String> {
        let file: StatusSyncFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.validate("tenant[0].status_sync", &super::super::Base::here())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn status_sync_table_parses_with_defaults() {
        let c = parse(
            "token = { file = \"Cargo.toml\" }\n[kustomer_to_ccai]\nLunch = \"Meal\"\nTraining = \"Meal\"\n",
        )
        .expect("parses");
        assert_eq!(c.direction, Direction::OneWay);
        assert_eq!(c.priority, Priority::LastChangeWins);
        assert_eq!(
            c.kustomer_to_ccai.len(),
            2,
            "many-to-one entries kept: {:?}",
            c.kustomer_to_ccai
        );
        assert_eq!(c.ccai_poll_interval, Duration::from_secs(5));
    }

    #[test]
    fn status_sync_unknown_key_is_rejected() {
        let err =
            parse("token = { env = \"X\" }\nbidirectional = true\n").expect_err("unknown key");
        assert!(err.contains("unknown field `bidirectional`"), "{err}");
    }

    #[test]
    fn status_sync_reverse_map_needs_two_way() {
        let err =
            parse("token = { file = \"Cargo.toml\" }\n[ccai_to_kustomer]\nBreak = \"Lunch\"\n")
                .expect_err("one-way with a reverse map");
        assert!(err.contains("two-way"), "{err}");
    }

    #[test]
    fn status_sync_debug_redacts_the_token() {
        let c = StatusSyncConfig::one_way(&[], "very-secret-token");
        assert!(!format!("{c:?}").contains("very-secret-token"));
    }
}
