//! Shadow decisions (RM7): what a tenant's shadow module decided for each
//! event beside the live module. Plans are opaque JSON owned by the pipeline.
use super::StoreError;
use serde::Serialize;

/// How a shadow decision compared with the live one.
#[derive(Debug, Clone, PartialEq)]
pub enum ShadowOutcome {
    Same,
    /// Both plans (JSON).
    Different {
        live: serde_json::Value,
        shadow: serde_json::Value,
    },
    /// The shadow module failed (trap, timeout, rule error).
    Error(String),
    /// Not decided: every shadow slot was busy, and the live path never waits.
    Skipped,
}

/// One differing decision.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShadowDifference {
    pub event_id: String,
    pub live_plan: serde_json::Value,
    pub shadow_plan: serde_json::Value,
    pub decided_at: String,
}

/// One failed shadow decision.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShadowFailure {
    pub event_id: String,
    pub error: String,
}

/// How a shadow module's decisions compared with the live ones.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ShadowReport {
    pub decided: u64,
    pub matched: u64,
    pub differed: u64,
    pub errors: u64,
    pub skipped: u64,
    /// The latest differing decisions, newest first.
    pub differences: Vec<ShadowDifference>,
    /// The latest failures, newest first.
    pub failures: Vec<ShadowFailure>,
}

/// ShadowStore operations, implemented by each backend.
pub trait ShadowStore {
    /// Records one shadow decision (a repeat for the same event keeps the
    /// first).
    fn record_shadow(
        &self,
        tenant: &str,
        event_id: &str,
        shadow_digest: &str,
        outcome: &ShadowOutcome,
    ) -> Result<(), StoreError>;

    /// How one event's shadow decision came out (`same`, `different`,
    /// `error`, `skipped`), if it was recorded.
    fn shadow_outcome(
        &self,
        tenant: &str,
        shadow_digest: &str,
        event_id: &str,
    ) -> Result<Option<String>, StoreError>;

    /// The report of one shadow module, with at most `limit` differences and
    /// failures.
    fn shadow_report(
        &self,
        tenant: &str,
        shadow_digest: &str,
        limit: usize,
    ) -> Result<ShadowReport, StoreError>;
}
