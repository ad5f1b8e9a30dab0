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
//!
//! Agent status changes (SPEC §6) share the inbox and the scheduler: their
//! rows (source `agent-status-…`, one queue per agent) are handed to the
//! [`StatusChanges`] the service registers (IS5, IS6).
mod context;
mod execute;
mod recorded;
mod scheduler;
mod threads;

pub use scheduler::Doorbell;

use crate::config::{FailurePolicy, PipelineConfig};
use crate::connectors::ccai::CcaiError;
use crate::connectors::kustomer::KustomerError;
use crate::runtime::{types as t, CallError, CallMeta, Registry};
use crate::store::{InboxRow, OutcomeState, ShadowOutcome, Store, StoreError, Wait};
use crate::tenant::{Tenant, Tenants};
use futures::future::BoxFuture;
use futures::FutureExt as _;
use scheduler::{QueueKey, Queues, RESCAN};
pub use threads::Workers;

/// When a customer whose lease could not be taken or kept is tried again.
const LEASE_RETRY: Duration = Duration::from_secs(1);
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// A rule that ran past its deadline is retried this many times before the
/// timeout counts as the module's fault: under CPU pressure a healthy module
/// can miss its deadline once.
const TIMEOUT_ATTEMPTS: u32 = 3;

/// Events of one customer read from the inbox at a time.
const BATCH: usize = 64;

/// How many times an event is decided again because a conversation it
/// appends to changed in Kustomer (KU2).
const APPEND_RECHECKS: usize = 3;

/// A plan and the module (digest, version) that made it (`None`: the
/// built-in default rules).
type Decided = (t::Plan, Option<(String, u32)>);

/// Why an event could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Kustomer(#[from] KustomerError),
    #[error("{0}")]
    Ccai(#[from] CcaiError),
    /// An agent status change could not be decided or carried out.
    #[error("{0}")]
    Status(String),
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
    #[error("the host failed while handling the event: {0}")]
    Host(String),
    #[error("fetching {url} failed: {reason}")]
    Fetch {
        url: String,
        reason: String,
        transient: bool,
    },
}

impl From<crate::mirror::MirrorError> for PipelineError {
    fn from(e: crate::mirror::MirrorError) -> Self {
        match e {
            crate::mirror::MirrorError::Kustomer(e) => PipelineError::Kustomer(e),
            crate::mirror::MirrorError::Store(e) => PipelineError::Store(e),
        }
    }
}

impl PipelineError {
    /// Worth retrying later (the outside world may recover), as opposed to
    /// failing the event for an operator to look at.
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Kustomer(e) => e.is_transient(),
            PipelineError::Ccai(e) => e.is_transient(),
            PipelineError::Store(_) => true,
            PipelineError::Fetch { transient, .. } => *transient,
            // Held, not failed: events wait until a module is deployed.
            PipelineError::NoModule(_) => true,
            _ => false,
        }
    }
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    Failed(String),
    /// Left pending for a later attempt, after `Duration`.
    Retry(String, Duration),
    /// Transient failures outlasted the maximum event age: dead-lettered,
    /// holding the customer's later events.
    DeadLettered(String),
}

/// Inbox rows whose source starts with this are agent status changes.
pub const AGENT_STATUS_SOURCE: &str = "agent-status";

/// The queue key of one agent's status changes: `agent:<lower-case email>`.
pub fn agent_queue(email: &str) -> String {
    format!("agent:{}", email.trim().to_ascii_lowercase())
}

/// Carries out the agent status changes stored in the inbox; returns the
/// version of the module that decided (`None`: none was live). Implemented
/// by the status sync and registered with [`Pipeline::set_status_changes`].
pub trait StatusChanges: Send + Sync {
    fn apply<'a>(&'a self, row: &'a InboxRow) -> BoxFuture<'a, Result<Option<u32>, PipelineError>>;
}

/// The pipeline: cheap to share behind an `Arc`.
pub struct Pipeline {
    store: Store,
    registry: Arc<Registry>,
    tenants: Tenants,
    config: PipelineConfig,
    /// Rung by the intake and the operator routes when events arrive.
    doorbell: Arc<Doorbell>,
    http: reqwest::Client,
    status_changes: OnceLock<Arc<dyn StatusChanges>>,
    /// Shadow decisions in flight (RM7): a quarter of the rule calls at
    /// most; when none is free the shadow skips the event, the live path
    /// never waits for it.
    shadow_slots: Arc<tokio::sync::Semaphore>,
    /// Writes decisions' contexts as JSON, each tenant's settings once.
    contexts: recorded::Contexts,
}

impl Pipeline {
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        tenants: Tenants,
        config: PipelineConfig,
    ) -> Self {
        Self {
            store,
            tenants,
            config,
            doorbell: Arc::new(Doorbell::default()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            status_changes: OnceLock::new(),
            shadow_slots: Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(registry.runtime().config().max_concurrent_calls / 4)
                    .unwrap_or(1)
                    .max(1),
            )),
            registry,
            contexts: recorded::Contexts::default(),
        }
    }

    /// Registers what applies agent status changes (once; later calls are
    /// ignored).
    pub fn set_status_changes(&self, changes: Arc<dyn StatusChanges>) {
        let _ = self.status_changes.set(changes);
    }

    /// What tells the pipeline that events arrived.
    pub fn doorbell(&self) -> Arc<Doorbell> {
        self.doorbell.clone()
    }

    /// Tells the pipeline to look at the whole inbox again.
    pub fn wake(&self) {
        self.doorbell.ring_all();
    }

    /// Runs until `shutdown` flips to true: one ordered queue per (tenant,
    /// customer), see `pipeline/scheduler.rs`. On shutdown it starts nothing
    /// new and lets the runs in flight finish for at most `shutdown_grace`;
    /// what is left stays pending for the next start.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let tenant_workers = self.config.tenant_workers.unwrap_or_else(|| {
            // A fair share: a tenant whose Kustomer is slow or failing can
            // hold at most its share of the workers.
            self.config.workers.div_ceil(self.tenants.len().max(1))
        });
        let mut queues = Queues::new(self.config.workers, tenant_workers);
        let mut runs: JoinSet<()> = JoinSet::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(QueueKey, Option<Duration>)>();
        let mut rescan_at = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = tokio::time::Instant::now();
            let (rung, rescan) = self.doorbell.take();
            if rescan || now >= rescan_at {
                match self.store.pending_customers() {
                    Ok(keys) => keys.into_iter().for_each(|k| queues.offer(k)),
                    Err(e) => tracing::error!(error = %e, "pipeline could not read the inbox"),
                }
                rescan_at = now + RESCAN;
            }
            rung.into_iter().for_each(|k| queues.offer(k));
            queues.wake_due(now);
            while let Some(key) = queues.next() {
                let (this, done) = (self.clone(), done_tx.clone());
                runs.spawn(async move {
                    // Whatever happens, the customer is reported finished, or
                    // it would stay "running" for good. A panic outside an
                    // event (each event catches its own) retries the queue
                    // a little later.
                    let retry = AssertUnwindSafe(this.run_customer(&key))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            tracing::error!(tenant = %key.0, "a pipeline run panicked");
                            Some(Duration::from_secs(5))
                        });
                    let _ = done.send((key, retry));
                });
            }
            let wake_at = queues
                .next_due()
                .map_or(rescan_at, |due| due.min(rescan_at));
            tokio::select! {
                _ = self.doorbell.rung() => {}
                Some((key, retry)) = done_rx.recv() => {
                    queues.finished(key, retry.map(|d| tokio::time::Instant::now() + d));
                    // Finish every run that reported before dispatching again.
                    while let Ok((key, retry)) = done_rx.try_recv() {
                        queues.finished(key, retry.map(|d| tokio::time::Instant::now() + d));
                    }
                }
                // Reaps finished runs; their outcome came through `done`.
                Some(_) = runs.join_next(), if !runs.is_empty() => {}
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.drain(&mut runs, queues.running()).await;
    }

    /// Lets the runs in flight finish within the grace period.
    async fn drain(&self, runs: &mut JoinSet<()>, in_flight: usize) {
        if runs.is_empty() {
            return;
        }
        let grace = self.config.shutdown_grace;
        tracing::info!(
            in_flight,
            grace_seconds = grace.as_secs(),
            "finishing the events in flight"
        );
        let deadline = tokio::time::Instant::now() + grace;
        let mut progress = tokio::time::interval(Duration::from_secs(5));
        progress.tick().await;
        loop {
            tokio::select! {
                joined = runs.join_next() => {
                    if joined.is_none() {
                        tracing::info!("every event in flight finished");
                        return;
                    }
                }
                _ = progress.tick() => {
                    tracing::info!(in_flight = runs.len(), "still finishing events");
                }
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        left = runs.len(),
                        "shutdown grace over; the rest stays pending for the next start"
                    );
                    runs.abort_all();
                    while runs.join_next().await.is_some() {}
                    return;
                }
            }
        }
    }

    /// Applies one customer's pending events in order until none is left,
    /// one waits for a retry (its delay is returned) or a dead letter holds
    /// the queue.
    async fn run_customer(&self, (tenant, customer): &QueueKey) -> Option<Duration> {
        // With replicas, one at a time applies a customer's events: the one
        // holding its lease. Another holds it: that one applies them (a
        // rescan looks again).
        match self.store.lease_customer(tenant, customer) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::error!(tenant, error = %e, "pipeline could not take a customer lease");
                return Some(LEASE_RETRY);
            }
        }
        let retry = self.run_leased(tenant, customer).await;
        if let Err(e) = self.store.release_customer(tenant, customer) {
            // It lapses with this replica's heartbeat, or is ours again on
            // the next run.
            tracing::warn!(tenant, error = %e, "pipeline could not release a customer lease");
        }
        retry
    }

    /// [`Self::run_customer`] once the lease is held.
    async fn run_leased(&self, tenant: &str, customer: &str) -> Option<Duration> {
        loop {
            let rows = match self.store.customer_held(tenant, customer) {
                Ok(true) => return None,
                Ok(false) => self.store.pending_for_customer(tenant, customer, BATCH),
                Err(e) => Err(e),
            };
            let rows = match rows {
                Ok(rows) if rows.is_empty() => return None,
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(tenant, error = %e, "pipeline could not read the inbox");
                    return Some(Duration::from_secs(1));
                }
            };
            for row in rows {
                if !self.store.lease_valid() {
                    // This replica's heartbeat is late: another may already
                    // have taken the customer. Stop; the lease is retaken
                    // (or found taken) on the next run.
                    tracing::warn!(tenant, "heartbeat late; pausing a customer's events");
                    return Some(LEASE_RETRY);
                }
                match self.process(&row).await {
                    EventOutcome::Applied | EventOutcome::Failed(_) => {}
                    // Later events of this customer wait for this one.
                    EventOutcome::Retry(_, after) => return Some(after),
                    EventOutcome::DeadLettered(_) => return None,
                }
            }
        }
    }

    /// Processes one inbox row and records the result.
    pub async fn process(&self, row: &InboxRow) -> EventOutcome {
        let started = Instant::now();
        // A bug that panics while handling one event fails that event, with
        // the reason, instead of leaving its customer's queue stuck.
        let result = match AssertUnwindSafe(self.process_inner(row))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_else(|| "panic".into());
                Err(PipelineError::Host(reason))
            }
        };
        let outcome = match result {
            Ok(version) => {
                self.settle(row, OutcomeState::Applied, None);
                // One line per applied event: what an operator greps for.
                tracing::info!(
                    tenant = %row.tenant,
                    event_id = %row.event_id,
                    session_id = %row.session_id,
                    outcome = "applied",
                    module_version = version,
                    duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "event applied"
                );
                EventOutcome::Applied
            }
            Err(e) if self.worth_retrying(&e, row) => {
                let reason = e.to_string();
                if age(row) >= self.config.max_event_age {
                    tracing::error!(tenant = %row.tenant, event_id = %row.event_id, attempts = row.attempts + 1, error = %reason, "event dead-lettered: it kept failing for longer than max_event_age");
                    metrics::counter!("switchboard_dead_letters_total", "tenant" => row.tenant.clone()).increment(1);
                    if let Err(se) = self.store.mark_dead(row.seq, &reason) {
                        tracing::error!(error = %se, "could not record the dead letter");
                    }
                    EventOutcome::DeadLettered(reason)
                } else {
                    let after = self.config.retry_delay(row.attempts + 1);
                    tracing::warn!(tenant = %row.tenant, event_id = %row.event_id, attempt = row.attempts + 1, error = %reason, retry_in_ms = after.as_millis(), "event will be retried");
                    if let Err(se) = self.store.record_attempt(row.seq, &reason) {
                        tracing::error!(error = %se, "could not record the attempt");
                    }
                    EventOutcome::Retry(reason, after)
                }
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
            EventOutcome::Retry(..) => "retry",
            EventOutcome::DeadLettered(_) => "dead_letter",
        };
        metrics::counter!("switchboard_events_total", "tenant" => row.tenant.clone(), "outcome" => label).increment(1);
        metrics::histogram!("switchboard_event_seconds", "tenant" => row.tenant.clone())
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    /// Transient failures are retried; so is a rule timeout, a few times,
    /// since a loaded machine can make a healthy module miss its deadline.
    fn worth_retrying(&self, error: &PipelineError, row: &InboxRow) -> bool {
        error.is_transient()
            || (matches!(error, PipelineError::Rule(CallError::Timeout { .. }))
                && row.attempts + 1 < TIMEOUT_ATTEMPTS)
    }

    fn settle(&self, row: &InboxRow, state: OutcomeState, reason: Option<&str>) {
        let reason = match state {
            OutcomeState::Failed => Some(reason.unwrap_or("failed")),
            _ => None,
        };
        if let Err(e) = self
            .store
            .settle(row.seq, &row.tenant, &row.event_id, reason)
        {
            tracing::error!(tenant = %row.tenant, event_id = %row.event_id, error = %e, "could not record the outcome");
        }
    }

    /// Applies one event; returns the version of the module that decided it
    /// (`None`: the built-in default rules).
    async fn process_inner(&self, row: &InboxRow) -> Result<Option<u32>, PipelineError> {
        if row.source.starts_with(AGENT_STATUS_SOURCE) {
            let changes = self.status_changes.get().ok_or_else(|| {
                PipelineError::Status(format!(
                    "tenant `{}` has no status sync configured",
                    row.tenant
                ))
            })?;
            return changes.apply(row).await;
        }
        let tenant = self
            .tenants
            .get(&row.tenant)
            .ok_or_else(|| PipelineError::UnknownTenant(row.tenant.clone()))?;
        let event: t::SessionEvent = serde_json::from_str(row.body.get())
            .map_err(|e| PipelineError::Undecodable(e.to_string()))?;
        let mut loaded = context::load(&self.store, tenant, &event).await?;
        let recorded = self
            .store
            .outcome(&row.tenant, &row.event_id)?
            .and_then(|o| Some((o.plan?, o.module_version)));
        let (plan, version) = match recorded {
            Some((plan, version)) => (
                serde_json::from_value(plan)
                    .map_err(|e| PipelineError::Undecodable(e.to_string()))?,
                version,
            ),
            None => {
                let mut decided = self.decide(tenant, &event, &loaded.context).await?;
                // KU2: an append to a conversation Kustomer showed too long
                // ago is checked first; if it changed, decide again on what
                // Kustomer holds now.
                for _ in 0..APPEND_RECHECKS {
                    if !self
                        .append_changed(tenant, &decided.0, &loaded.context)
                        .await?
                    {
                        break;
                    }
                    loaded = context::load(&self.store, tenant, &event).await?;
                    decided = self.decide(tenant, &event, &loaded.context).await?;
                }
                self.record(tenant, &event, &loaded.context, &decided)?;
                self.shadow(tenant, &event, &loaded.context, &decided.0);
                // The decision is kept for good before anything is written
                // to Kustomer: a replay carries out this plan, no other.
                let writes = |a: &t::Action| !matches!(a, t::Action::Skip(_));
                if decided.0.actions.iter().any(writes) {
                    self.store.durable(Wait::Shared).await?;
                }
                (decided.0, decided.1.map(|(_, version)| version))
            }
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
        .await?;
        Ok(version)
    }

    /// Whether the plan appends to a conversation that Kustomer showed longer
    /// ago than the tenant's `append_recheck` (by default: at all) and that,
    /// read again, is no longer what the context said (status, or gone).
    async fn append_changed(
        &self,
        tenant: &Tenant,
        plan: &t::Plan,
        ctx: &t::Context,
    ) -> Result<bool, PipelineError> {
        let mirror = crate::mirror::Mirror::new(&self.store, tenant);
        for action in &plan.actions {
            let t::Action::AppendTo(id) = action else {
                continue;
            };
            if !mirror.older_than(id, tenant.config.mirror.append_recheck)? {
                continue;
            }
            let shown = ctx
                .recent_conversations
                .iter()
                .chain(ctx.linked_conversation.as_ref())
                .find(|c| c.id == *id)
                .map(|c| c.status);
            let now = match mirror.read_conversation(id).await? {
                Some(c) => Some(context::summarise(&self.store, tenant.id(), &c)?.status),
                None => None,
            };
            if now != shown {
                tracing::info!(tenant = %tenant.id(), conversation = %id, ?shown, ?now, "the conversation changed in Kustomer; deciding again");
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Lets the tenant's shadow module, if any, decide the same event on the
    /// same context, off the live path; records how its plan compares and
    /// never carries it out (RM7).
    fn shadow(&self, tenant: &Tenant, event: &t::SessionEvent, ctx: &t::Context, live: &t::Plan) {
        let Some(shadow) = self.registry.shadow(tenant.id()) else {
            return;
        };
        let (store, tenant_id) = (self.store.clone(), tenant.id().to_string());
        let digest = shadow.info.digest.clone();
        let Ok(slot) = self.shadow_slots.clone().try_acquire_owned() else {
            metrics::counter!("switchboard_shadow_decisions_total", "tenant" => tenant_id.clone(), "outcome" => "skipped").increment(1);
            if let Err(e) =
                store.record_shadow(&tenant_id, &event.id, &digest, &ShadowOutcome::Skipped)
            {
                tracing::warn!(tenant = %tenant_id, error = %e, "shadow decision not recorded");
            }
            return;
        };
        let runtime = self.registry.runtime().clone();
        let (event, ctx, live) = (event.clone(), ctx.clone(), live.clone());
        tokio::spawn(async move {
            let meta = CallMeta::new(tenant_id.clone(), event.id.clone())
                .with_clock_ms(clock_ms(&event.at));
            let decided = runtime
                .call_session_event(shadow.module.clone(), meta, event.clone(), ctx)
                .await;
            drop(slot);
            let outcome = match decided {
                Ok(plan) if plan == live => ShadowOutcome::Same,
                Ok(plan) => ShadowOutcome::Different {
                    live: serde_json::to_value(&live).unwrap_or_default(),
                    shadow: serde_json::to_value(&plan).unwrap_or_default(),
                },
                Err(e) => ShadowOutcome::Error(e.to_string()),
            };
            let label = match &outcome {
                ShadowOutcome::Same => "same",
                ShadowOutcome::Different { .. } => "different",
                ShadowOutcome::Error(_) => "error",
                ShadowOutcome::Skipped => "skipped",
            };
            metrics::counter!("switchboard_shadow_decisions_total", "tenant" => tenant_id.clone(), "outcome" => label).increment(1);
            if let Err(e) = store.record_shadow(&tenant_id, &event.id, &digest, &outcome) {
                tracing::warn!(tenant = %tenant_id, error = %e, "shadow decision not recorded");
            }
        });
    }

    /// Records a decision before anything is applied.
    fn record(
        &self,
        tenant: &Tenant,
        event: &t::SessionEvent,
        ctx: &t::Context,
        (plan, by): &Decided,
    ) -> Result<(), PipelineError> {
        let undecodable = |e: serde_json::Error| PipelineError::Undecodable(e.to_string());
        let json = serde_json::value::to_raw_value(plan).map_err(undecodable)?;
        let context = self.contexts.to_json(ctx).map_err(undecodable)?;
        self.store.record_decision(
            &tenant.config.id,
            &event.id,
            by.as_ref().map(|(digest, _)| digest.as_str()),
            by.as_ref().map(|(_, version)| *version),
            &json,
            &context,
        )?;
        Ok(())
    }

    /// Runs the live module (or the default rules, per failure policy).
    async fn decide(
        &self,
        tenant: &Tenant,
        event: &t::SessionEvent,
        ctx: &t::Context,
    ) -> Result<Decided, PipelineError> {
        let id = &tenant.config.id;
        let live = self.registry.live(id);
        let decided = match &live {
            Some(deployed) => {
                let meta =
                    CallMeta::new(id.clone(), event.id.clone()).with_clock_ms(clock_ms(&event.at));
                let started = Instant::now();
                let result = self
                    .registry
                    .runtime()
                    .call_session_event(deployed.module.clone(), meta, event.clone(), ctx.clone())
                    .await;
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
        Ok((plan, by.map(|d| (d.info.digest.clone(), d.info.version))))
    }
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

/// How long ago the intake stored the event (zero if unreadable).
fn age(row: &InboxRow) -> Duration {
    chrono::DateTime::parse_from_rfc3339(&row.received_at)
        .ok()
        .and_then(|at| {
            (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or_default()
}
