//! Event → context → decision → Kustomer.
//!
//! The pipeline reads the durable inbox in event-time order and processes
//! each customer's events strictly in order, different customers and tenants
//! concurrently (up to `workers` at once). For each event it:
//!
//! 1. loads the context (`context.rs`): the customer and their recent
//!    conversations from Kustomer, the session's linked conversation, the
//!    tenant's settings and which custom fields are live (CF4);
//! 2. asks the tenant's live module for a plan, or reuses the plan already
//!    recorded for the event, so an event is decided by exactly one module
//!    version even across retries, swaps and restarts (RM4, OP2);
//! 3. records the decision, then executes it (`execute.rs`) with ids derived
//!    from (tenant, event, action index), so a replay finds its earlier
//!    writes instead of duplicating them;
//! 4. records the outcome. A transient failure leaves the event pending and
//!    stops that customer's queue until it succeeds (no reordering, OP3); a
//!    permanent one marks it failed with the reason, for `switchboard events
//!    retry` or the admin API to requeue.
mod context;
mod execute;

use crate::config::FailurePolicy;
use crate::connectors::kustomer::KustomerError;
use crate::runtime::{types as t, CallError, CallMeta, Registry};
use crate::store::{InboxRow, OutcomeState, Store, StoreError};
use crate::tenant::{Tenant, Tenants};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Attempts before a transiently failing event is marked failed.
const MAX_ATTEMPTS: u32 = 8;

/// Why an event could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Kustomer(#[from] KustomerError),
    #[error("the stored event cannot be read: {0}")]
    Undecodable(String),
    #[error("tenant `{0}` is not configured")]
    UnknownTenant(String),
    #[error("tenant `{0}` has no live rule module")]
    NoModule(String),
    #[error("rule module failed: {0}")]
    Rule(#[from] CallError),
    #[error("plan cannot be applied: {0}")]
    BadPlan(String),
    #[error("fetching {url} failed: {reason}")]
    Fetch {
        url: String,
        reason: String,
        transient: bool,
    },
}

impl PipelineError {
    /// Worth retrying later (the outside world may recover), as opposed to
    /// failing the event for an operator to look at.
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Kustomer(e) => e.is_transient(),
            PipelineError::Store(_) => true,
            PipelineError::Fetch { transient, .. } => *transient,
            _ => false,
        }
    }
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    Failed(String),
    /// Left pending for a later attempt.
    Retry(String),
}

/// The pipeline: cheap to share behind an `Arc`.
pub struct Pipeline {
    store: Store,
    registry: Arc<Registry>,
    tenants: Tenants,
    workers: usize,
    /// Shared with the routes that add work (admin retry), which wake it.
    wake: Arc<Notify>,
    http: reqwest::Client,
}

impl Pipeline {
    pub fn new(store: Store, registry: Arc<Registry>, tenants: Tenants, workers: usize) -> Self {
        Self {
            store,
            registry,
            tenants,
            workers: workers.max(1),
            wake: Arc::new(Notify::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// What wakes the pipeline: `notify_one` tells it new events are in the
    /// inbox.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Tells the pipeline new events are in the inbox.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `shutdown` flips to true, draining the inbox whenever woken
    /// (and at least every half second, to pick up retries).
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let retrying = match self.drain_once().await {
                Ok(stats) => stats.retrying > 0,
                Err(e) => {
                    tracing::error!(error = %e, "pipeline could not read the inbox");
                    true
                }
            };
            let pause = if retrying {
                backoff = (backoff * 2).min(Duration::from_secs(5));
                backoff
            } else {
                backoff = Duration::from_millis(100);
                Duration::from_millis(500)
            };
            tokio::select! {
                _ = self.wake.notified(), if !retrying => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Processes every pending event once: each customer's events in order,
    /// customers concurrently. Returns what happened.
    pub async fn drain_once(self: &Arc<Self>) -> Result<DrainStats, StoreError> {
        let rows = self.store.pending(None, 2_000)?;
        let mut groups: Vec<Vec<InboxRow>> = Vec::new();
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        for row in rows {
            let key = (row.tenant.clone(), row.customer_key.clone());
            let slot = *index.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[slot].push(row);
        }
        let permits = Arc::new(tokio::sync::Semaphore::new(self.workers));
        let mut tasks = tokio::task::JoinSet::new();
        for group in groups {
            let this = self.clone();
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let mut stats = DrainStats::default();
                for row in group {
                    match this.process(&row).await {
                        EventOutcome::Applied => stats.applied += 1,
                        EventOutcome::Failed(_) => stats.failed += 1,
                        EventOutcome::Retry(_) => {
                            // Later events of this customer wait for this one.
                            stats.retrying += 1;
                            break;
                        }
                    }
                }
                stats
            });
        }
        let mut total = DrainStats::default();
        while let Some(done) = tasks.join_next().await {
            if let Ok(s) = done {
                total.applied += s.applied;
                total.failed += s.failed;
                total.retrying += s.retrying;
            }
        }
        Ok(total)
    }

    /// Processes one inbox row and records the result.
    pub async fn process(&self, row: &InboxRow) -> EventOutcome {
        let started = Instant::now();
        let result = self.process_inner(row).await;
        let outcome = match result {
            Ok(()) => {
                self.settle(row, OutcomeState::Applied, None);
                EventOutcome::Applied
            }
            Err(e) if e.is_transient() && row.attempts + 1 < MAX_ATTEMPTS => {
                let reason = e.to_string();
                tracing::warn!(tenant = %row.tenant, event_id = %row.event_id, attempt = row.attempts + 1, error = %reason, "event will be retried");
                if let Err(se) = self.store.record_attempt(row.seq, &reason) {
                    tracing::error!(error = %se, "could not record the attempt");
                }
                EventOutcome::Retry(reason)
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(tenant = %row.tenant, event_id = %row.event_id, error = %reason, "event failed");
                if matches!(
                    e,
                    PipelineError::Rule(_)
                        | PipelineError::NoModule(_)
                        | PipelineError::Undecodable(_)
                ) {
                    // The decision itself failed: a retry should decide afresh.
                    let _ = self.store.clear_outcome(&row.tenant, &row.event_id);
                }
                self.settle(row, OutcomeState::Failed, Some(&reason));
                EventOutcome::Failed(reason)
            }
        };
        let label = match &outcome {
            EventOutcome::Applied => "applied",
            EventOutcome::Failed(_) => "failed",
            EventOutcome::Retry(_) => "retry",
        };
        metrics::counter!("switchboard_events_total", "tenant" => row.tenant.clone(), "outcome" => label).increment(1);
        metrics::histogram!("switchboard_event_seconds", "tenant" => row.tenant.clone())
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    fn settle(&self, row: &InboxRow, state: OutcomeState, reason: Option<&str>) {
        let inbox = match state {
            OutcomeState::Failed => self.store.mark_failed(row.seq, reason.unwrap_or("failed")),
            _ => self.store.mark_done(row.seq),
        };
        let outcome = match state {
            OutcomeState::Failed => {
                self.store
                    .set_outcome(&row.tenant, &row.event_id, state, reason)
            }
            _ => self
                .store
                .set_outcome(&row.tenant, &row.event_id, state, None),
        };
        if let Err(e) = inbox.and(outcome) {
            tracing::error!(tenant = %row.tenant, event_id = %row.event_id, error = %e, "could not record the outcome");
        }
    }

    async fn process_inner(&self, row: &InboxRow) -> Result<(), PipelineError> {
        let tenant = self
            .tenants
            .get(&row.tenant)
            .ok_or_else(|| PipelineError::UnknownTenant(row.tenant.clone()))?;
        let event: t::SessionEvent = serde_json::from_value(row.body.clone())
            .map_err(|e| PipelineError::Undecodable(e.to_string()))?;
        let loaded = context::load(&self.store, tenant, &event).await?;
        let plan = match self
            .store
            .outcome(&row.tenant, &row.event_id)?
            .and_then(|o| o.plan)
        {
            Some(recorded) => serde_json::from_value(recorded)
                .map_err(|e| PipelineError::Undecodable(e.to_string()))?,
            None => self.decide(tenant, &event, &loaded.context)?,
        };
        execute::run(
            &execute::Env {
                store: &self.store,
                tenant,
                http: &self.http,
            },
            &event,
            &loaded,
            &plan,
        )
        .await
    }

    /// Runs the live module (or the default rules, per failure policy) and
    /// records the decision.
    fn decide(
        &self,
        tenant: &Tenant,
        event: &t::SessionEvent,
        ctx: &t::Context,
    ) -> Result<t::Plan, PipelineError> {
        let id = &tenant.config.id;
        let live = self.registry.live(id);
        let decided = match &live {
            Some(deployed) => {
                let meta =
                    CallMeta::new(id.clone(), event.id.clone()).with_clock_ms(clock_ms(&event.at));
                let started = Instant::now();
                let result =
                    self.registry
                        .runtime()
                        .on_session_event(&deployed.module, &meta, event, ctx);
                metrics::histogram!("switchboard_rule_seconds", "tenant" => id.clone())
                    .record(started.elapsed().as_secs_f64());
                result.map(|plan| (plan, Some(deployed)))
            }
            None => Err(CallError::Rule {
                code: "no-module".into(),
                message: format!("tenant `{id}` has no live module"),
            }),
        };
        let (plan, by) = match decided {
            Ok(ok) => ok,
            Err(error) if tenant.config.failure_policy == FailurePolicy::DefaultRules => {
                tracing::warn!(tenant = %id, event_id = %event.id, error = %error, "module failed; deciding with the default rules");
                metrics::counter!("switchboard_rule_fallbacks_total", "tenant" => id.clone())
                    .increment(1);
                (native_defaults(event, ctx)?, None)
            }
            Err(_) if live.is_none() => return Err(PipelineError::NoModule(id.clone())),
            Err(error) => {
                metrics::counter!("switchboard_rule_failures_total", "tenant" => id.clone(), "kind" => error.kind()).increment(1);
                return Err(error.into());
            }
        };
        let undecodable = |e: serde_json::Error| PipelineError::Undecodable(e.to_string());
        let json = serde_json::to_value(&plan).map_err(undecodable)?;
        let context = serde_json::to_value(ctx).map_err(undecodable)?;
        self.store.record_decision(
            id,
            &event.id,
            by.map(|d| d.info.digest.as_str()),
            by.map(|d| d.info.version),
            &json,
            &context,
        )?;
        Ok(plan)
    }
}

/// Counts from one drain.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainStats {
    pub applied: usize,
    pub failed: usize,
    pub retrying: usize,
}

/// The default rules run natively through the guest SDK (failure policy
/// `default-rules`). Host and SDK types come from the same WIT and share
/// their serde shape.
fn native_defaults(event: &t::SessionEvent, ctx: &t::Context) -> Result<t::Plan, PipelineError> {
    use switchboard_guest_sdk as sdk;
    #[derive(Default)]
    struct Defaults;
    impl sdk::Rule for Defaults {}
    let convert = |e: serde_json::Error| PipelineError::Undecodable(e.to_string());
    let event: sdk::SessionEvent =
        serde_json::from_value(serde_json::to_value(event).map_err(convert)?).map_err(convert)?;
    let ctx: sdk::Context =
        serde_json::from_value(serde_json::to_value(ctx).map_err(convert)?).map_err(convert)?;
    let plan = sdk::Rule::on_session_event(&Defaults, &event, &ctx).map_err(|e| {
        PipelineError::Rule(CallError::Rule {
            code: e.code,
            message: e.message,
        })
    })?;
    serde_json::from_value(serde_json::to_value(plan).map_err(convert)?).map_err(convert)
}

/// Milliseconds since the epoch of an RFC 3339 time (0 if unreadable).
pub(crate) fn clock_ms(at: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .and_then(|d| u64::try_from(d.timestamp_millis()).ok())
        .unwrap_or(0)
}
