//! Agent status sync between Kustomer and CCAI Platform (SPEC §6).
//!
//! Every change is decided by the tenant's rule module
//! (`on-status-change`); this module gathers what the rule needs, calls it
//! and carries the decision out.
//!
//! # Where changes come from
//! - **Kustomer**: `POST /v1/tenants/{tenant}/kustomer/status`, sent by the
//!   tenant's Kustomer app for every status change, sign-in, heartbeat and
//!   sign-out of an agent's Kustomer instance (tab, machine), with the
//!   instance id. Optionally (`kustomer_poll_interval_ms`) the agents'
//!   routing work sessions are also polled, for changes the app did not
//!   report; a new work session counts as a login (AS8). Each poll costs
//!   one Kustomer request per agent against the org's rate budget, so keep
//!   the interval in seconds, not milliseconds, for large teams.
//! - **CCAI Platform**: agent statuses polled from the Manager API
//!   (`GET /manager/api/v1/agents`) every `ccai_poll_interval_ms`. A change
//!   from the adapter's drop-down inside Kustomer is an ordinary CCAI change
//!   (AS9). The first poll only records the statuses: nothing that happened
//!   before the sync started is applied (AS8), and a change out of Offline
//!   is reported as a login.
//!
//! # What the rule sees (`status-context`)
//! The tenant's mappings, direction and priority; the agent's CCAI status
//! and activity (from the status id: −7 In-call, −8 In-chat, −6 Wrap-up,
//! −10 Offline, anything else idle); the agent's Kustomer status (from their
//! active work session); how many Kustomer instances reported within
//! `instance_ttl_seconds` and did not sign out (AS5); the deferred status;
//! the last status the sync applied (AS3 echo suppression).
//!
//! When a CCAI session ends, the platform returns the agent to a status by
//! itself. That return is not a new choice by the agent: if the agent is
//! back in the status they had before the session (or in Available, the
//! platform's default), the change is dated when that earlier status was
//! chosen, so a CRM status deferred during the session is newer and wins
//! with `last-change-wins` (AS6, AS7). A different status picked as "next
//! status" is dated when the session ended.
//!
//! # What the sync does with a decision
//! `apply` sets the CCAI status (`POST /apps/api/v1/agent_statuses`) or the
//! Kustomer status (`PUT /v1/routing/work-sessions/{id}`) and records it as
//! last applied; `defer` keeps it as pending; `reject` is an error shown on
//! `GET /v1/tenants/{tenant}/status-sync/agents` and counted in
//! `switchboard_status_sync_errors_total`. A CCAI change of an idle agent
//! consumes the pending status (applied or overridden). A change from a
//! system that differs from what the sync last applied there clears the
//! last applied status, so only the echo itself is suppressed.
//!
//! # Durable, one queue per agent (IS5, IS6)
//! A change is stored in the inbox before anything answers 2xx or the
//! poller moves on, and is applied by the pipeline's scheduler in the
//! agent's own queue (`agent:<email>`): one agent's changes in arrival
//! order, different agents and tenants side by side, a change that waits
//! for a retry holding only its agent. A transient failure (CCAI Platform
//! or Kustomer unreachable, 5xx, 429) is retried like an event; a change left
//! pending at shutdown is applied after the next start. The Kustomer app's
//! report waits up to `decision_wait_ms` for the decision and otherwise
//! answers 202 with the change id, to look up at
//! `GET …/status-sync/changes/{id}`.
mod http;
mod poll;

pub use crate::config::{Direction, Priority, StatusSyncConfig};
pub use http::router;

use crate::connectors::ccai::{Agent, CcaiClient, CcaiError, SystemStatus};
use crate::connectors::kustomer::{KustomerClient, KustomerError};
use crate::pipeline::{agent_queue, Doorbell, PipelineError, StatusChanges, AGENT_STATUS_SOURCE};
use crate::runtime::{types as t, CallError, CallMeta, Registry};
use crate::store::{InboxRow, NewInboxEvent, StatusAgentRow, Store, StoreError, Wait};
use crate::tenant::{Tenant, Tenants};
use futures::future::BoxFuture;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

/// Decisions kept in memory per agent for the agents endpoint.
const RECENT: usize = 10;

/// Why a change could not be decided or carried out.
#[derive(Debug, thiserror::Error)]
pub enum StatusSyncError {
    #[error("{0}")]
    Ccai(#[from] CcaiError),
    #[error("{0}")]
    Kustomer(#[from] KustomerError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("tenant `{0}` has no live rule module")]
    NoModule(String),
    #[error("rule module failed: {0}")]
    Rule(#[from] CallError),
    /// The agent is missing on one side (AS4: linked by email).
    #[error("{0}")]
    Link(String),
    /// The decided status does not exist on the target system.
    #[error("{system} has no status named {name:?}")]
    UnknownStatus { system: &'static str, name: String },
    /// The agent has no active Kustomer work session to change.
    #[error("{0} has no active Kustomer work session (signed out)")]
    NoWorkSession(String),
}

impl From<StatusSyncError> for PipelineError {
    fn from(e: StatusSyncError) -> Self {
        match e {
            StatusSyncError::Ccai(e) => PipelineError::Ccai(e),
            StatusSyncError::Kustomer(e) => PipelineError::Kustomer(e),
            StatusSyncError::Store(e) => PipelineError::Store(e),
            StatusSyncError::Rule(e) => PipelineError::Rule(e),
            StatusSyncError::NoModule(tenant) => PipelineError::NoModule(tenant),
            other => PipelineError::Status(other.to_string()),
        }
    }
}

/// A status as stored: where, which, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    /// `kustomer` or `ccai`.
    pub target: String,
    pub status: String,
    pub at: String,
}

impl StatusRecord {
    fn to_wit(&self) -> t::StatusRecord {
        t::StatusRecord {
            target: system_of(&self.target),
            status: self.status.clone(),
            at: self.at.clone(),
        }
    }
}

/// One decision and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// When the sync decided.
    pub decided_at: String,
    /// Where the change came from: `kustomer` or `ccai`.
    pub source: String,
    pub agent_email: String,
    /// The reported status.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub login: bool,
    /// `apply`, `defer`, `ignore`, `reject`, or `error` when no decision
    /// could be made.
    pub decision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_status: Option<String>,
    /// The rule's reason (`ignore`, `reject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The version of the module that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_version: Option<u32>,
    /// The status was set on the target system.
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A status change the Kustomer app reports (`POST …/kustomer/status`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KustomerReport {
    pub agent_email: String,
    /// The Kustomer status name; absent for a heartbeat or sign-out.
    #[serde(default)]
    pub status: Option<String>,
    /// The reporting Kustomer instance (tab, machine).
    #[serde(default)]
    pub instance_id: Option<String>,
    /// When the status changed (RFC 3339); default: now.
    #[serde(default)]
    pub at: Option<String>,
    /// Reported while the agent signed in (AS8: not applied).
    #[serde(default)]
    pub login: bool,
    /// The instance signed out: it no longer counts (AS5).
    #[serde(default)]
    pub signed_out: bool,
    /// The app's own id for this change: a report sent again with the same
    /// id is not applied twice.
    #[serde(default)]
    pub change_id: Option<String>,
}

/// What a report of the Kustomer app came to.
#[derive(Debug, Clone, Serialize)]
pub struct ReportAnswer {
    /// The stored change (absent for a heartbeat or sign-out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    /// The decision, when it was made within `decision_wait_ms`.
    pub decision: Option<DecisionRecord>,
    /// Stored, decision still to come (answered 202).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// The same change was reported before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    pub active_instances: u32,
}

/// A change as the inbox keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct StoredChange {
    change: t::StatusChange,
    /// The agent as the CCAI poll read it (CCAI-side changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent: Option<Agent>,
}

/// One agent as the agents endpoint shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub agent_email: String,
    pub pending: Option<StatusRecord>,
    pub last_applied: Option<StatusRecord>,
    pub last_decision: Option<DecisionRecord>,
    pub last_error: Option<String>,
    pub active_instances: u32,
    /// The latest decisions since start, newest last.
    pub recent: Vec<DecisionRecord>,
    pub updated_at: String,
}

/// The status sync of every tenant that configures it. Cheap to share.
pub struct StatusSync {
    tenants: HashMap<String, Arc<TenantSync>>,
    store: Store,
    registry: Arc<Registry>,
    admin_token: Option<Arc<SecretString>>,
    doorbell: Arc<Doorbell>,
    /// Reports waiting for their decision, by (tenant, change id).
    waiters: Mutex<HashMap<(String, String), oneshot::Sender<DecisionRecord>>>,
}

/// One tenant's sync.
pub struct TenantSync {
    tenant: Arc<Tenant>,
    config: StatusSyncConfig,
    /// What the CCAI poll saw last. A tokio mutex: the pollers hold it
    /// across their reads.
    state: tokio::sync::Mutex<Memory>,
    /// Agent email → (work session id, status id) last seen in Kustomer
    /// (`std` mutex, never held across an await).
    kustomer_seen: Mutex<HashMap<String, (String, Option<String>)>>,
    /// Kustomer instances per agent (email → instance → last heard). A
    /// `std` mutex, never held across an await, so reports register
    /// instantly even while a change is being applied.
    instances: Mutex<HashMap<String, HashMap<String, Instant>>>,
    /// Decisions per agent, newest last (`std` mutex, no awaits).
    recent: Mutex<HashMap<String, VecDeque<DecisionRecord>>>,
    /// When the CCAI statuses were first read (the AS8 baseline).
    ccai_polled_at: Mutex<Option<String>>,
    /// Completed polls, for operators and tests to see the pollers run.
    ccai_polls: AtomicU64,
    kustomer_polls: AtomicU64,
}

/// What the CCAI poller remembers between polls.
#[derive(Default)]
struct Memory {
    /// CCAI agent id → last seen status; `None` until the first poll.
    ccai_seen: Option<HashMap<u64, CcaiSeen>>,
}

#[derive(Debug, Clone)]
struct CcaiSeen {
    email: Option<String>,
    status_id: i64,
    name: String,
    updated_at: String,
    /// The status (name, chosen at) the agent had before the current
    /// session began.
    before_session: Option<(String, String)>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn system_name(s: t::System) -> &'static str {
    match s {
        t::System::Kustomer => "kustomer",
        t::System::Ccai => "ccai",
    }
}

fn system_of(name: &str) -> t::System {
    if name == "kustomer" {
        t::System::Kustomer
    } else {
        t::System::Ccai
    }
}

/// AS7: the agent's activity from the CCAI status id.
pub fn activity(status_id: Option<i64>) -> t::AgentActivity {
    let Some(id) = status_id else {
        return t::AgentActivity::Offline;
    };
    match SystemStatus::from_id(id) {
        Some(SystemStatus::InCall) => t::AgentActivity::InCall,
        Some(SystemStatus::InChat) => t::AgentActivity::InChat,
        Some(SystemStatus::WrapUp) => t::AgentActivity::WrapUp,
        Some(SystemStatus::Offline) => t::AgentActivity::Offline,
        _ => t::AgentActivity::Idle,
    }
}

fn in_session(status_id: i64) -> bool {
    SystemStatus::from_id(status_id).is_some_and(SystemStatus::in_session)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn parse<T: serde::de::DeserializeOwned>(text: &Option<String>) -> Option<T> {
    text.as_deref().and_then(|s| serde_json::from_str(s).ok())
}

fn json<T: Serialize>(value: &Option<T>) -> Option<String> {
    value.as_ref().and_then(|v| serde_json::to_string(v).ok())
}

impl StatusSync {
    /// The sync of every tenant with a `[tenant.status_sync]` table.
    pub fn new(
        tenants: &Tenants,
        store: Store,
        registry: Arc<Registry>,
        admin_token: Option<Arc<SecretString>>,
        doorbell: Arc<Doorbell>,
    ) -> Self {
        let mut map = HashMap::new();
        for tenant in tenants.iter() {
            let Some(config) = &tenant.config.status_sync else {
                continue;
            };
            map.insert(
                tenant.id().to_string(),
                Arc::new(TenantSync {
                    tenant: tenant.clone(),
                    config: config.clone(),
                    state: tokio::sync::Mutex::new(Memory::default()),
                    kustomer_seen: Mutex::new(HashMap::new()),
                    instances: Mutex::new(HashMap::new()),
                    recent: Mutex::new(HashMap::new()),
                    ccai_polled_at: Mutex::new(None),
                    ccai_polls: AtomicU64::new(0),
                    kustomer_polls: AtomicU64::new(0),
                }),
            );
        }
        Self {
            tenants: map,
            store,
            registry,
            admin_token,
            doorbell,
            waiters: Mutex::new(HashMap::new()),
        }
    }

    pub fn tenant(&self, id: &str) -> Option<&Arc<TenantSync>> {
        self.tenants.get(id)
    }

    /// Starts the pollers of every tenant; they stop when `shutdown` flips.
    pub fn spawn(
        self: &Arc<Self>,
        tasks: &mut tokio::task::JoinSet<()>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        for tenant in self.tenants.values() {
            tasks.spawn(poll::run_ccai(
                self.clone(),
                tenant.clone(),
                shutdown.clone(),
            ));
            if let Some(interval) = tenant.config.kustomer_poll_interval {
                tasks.spawn(poll::run_kustomer(
                    self.clone(),
                    tenant.clone(),
                    interval,
                    shutdown.clone(),
                ));
            }
        }
    }

    /// Handles a report of the Kustomer app: registers or signs out the
    /// instance and, when it carries a status, stores the change and waits
    /// up to `decision_wait` for its decision.
    pub async fn kustomer_report(
        &self,
        tenant: &TenantSync,
        report: KustomerReport,
    ) -> Result<ReportAnswer, StoreError> {
        let email = report.agent_email.trim().to_ascii_lowercase();
        tenant.touch_instance(&email, report.instance_id.as_deref(), report.signed_out);
        let mut answer = ReportAnswer {
            change_id: None,
            decision: None,
            pending: false,
            duplicate: false,
            active_instances: tenant.active_instances(&email),
        };
        let Some(status) = report.status.filter(|_| !report.signed_out) else {
            return Ok(answer);
        };
        let change = t::StatusChange {
            source: t::System::Kustomer,
            agent_email: report.agent_email.trim().to_string(),
            status,
            instance_id: report.instance_id,
            at: report.at.unwrap_or_else(now),
            login: report.login,
        };
        let id = match &report.change_id {
            Some(theirs) => format!("{AGENT_STATUS_SOURCE}-k-{theirs}"),
            None => format!("{AGENT_STATUS_SOURCE}-k-{:016x}", rand::random::<u64>()),
        };
        let key = (tenant.id().to_string(), id.clone());
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(key.clone(), tx);
        let stored = self.enqueue(tenant, "kustomer", &id, change, None);
        // Durable before the answer says it was taken.
        let stored = match stored {
            Ok(stored) => self.store.durable(Wait::Prompt).await.map(|()| stored),
            Err(e) => Err(e),
        };
        answer.change_id = Some(id.clone());
        match stored {
            Ok(true) => {}
            Ok(false) => {
                lock(&self.waiters).remove(&key);
                answer.duplicate = true;
                answer.decision = self.recorded_decision(tenant.id(), &id)?;
                answer.pending = answer.decision.is_none();
                return Ok(answer);
            }
            Err(e) => {
                lock(&self.waiters).remove(&key);
                return Err(e);
            }
        }
        match tokio::time::timeout(tenant.config.decision_wait, rx).await {
            Ok(Ok(record)) => answer.decision = Some(record),
            _ => {
                lock(&self.waiters).remove(&key);
                answer.pending = true;
            }
        }
        answer.active_instances = tenant.active_instances(&email);
        Ok(answer)
    }

    /// Stores one change in the agent's queue and rings the scheduler;
    /// `false` when a change with this id is stored already.
    fn enqueue(
        &self,
        tenant: &TenantSync,
        source: &str,
        id: &str,
        change: t::StatusChange,
        agent: Option<Agent>,
    ) -> Result<bool, StoreError> {
        let queue = agent_queue(&change.agent_email);
        // Arrival order, not the change's own time: a status dated back
        // (AS6) must not overtake the changes received before it.
        let arrived = chrono::Utc::now();
        let body = serde_json::value::to_raw_value(&StoredChange { change, agent })
            .map_err(|e| StoreError::json("store status change", e))?;
        let stored = self.store.insert_event(&NewInboxEvent {
            tenant: tenant.id().to_string(),
            event_id: id.to_string(),
            source: format!("{AGENT_STATUS_SOURCE}-{source}"),
            session_id: queue.clone(),
            customer_key: queue.clone(),
            at_ms: arrived.timestamp_millis(),
            at: arrived.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            body: body.into(),
        })?;
        if stored {
            self.doorbell.ring(tenant.id(), &queue);
        }
        Ok(stored)
    }

    /// The decision recorded for a stored change, if it was made.
    pub fn recorded_decision(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<DecisionRecord>, StoreError> {
        Ok(self
            .store
            .outcome(tenant, id)?
            .and_then(|o| o.plan)
            .and_then(|plan| serde_json::from_value(plan).ok()))
    }

    /// A stored change: its inbox state and, once made, its decision.
    pub fn change(&self, tenant: &str, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let Some(row) = self
            .store
            .event(tenant, id)?
            .filter(|row| row.source.starts_with(AGENT_STATUS_SOURCE))
        else {
            return Ok(None);
        };
        Ok(Some(serde_json::json!({
            "change_id": row.event_id,
            "state": row.status.as_str(),
            "attempts": row.attempts,
            "reason": row.reason,
            "received_at": row.received_at,
            "change": row.body_json().get_mut("change").map(serde_json::Value::take),
            "decision": self.recorded_decision(tenant, id)?,
        })))
    }

    /// Hands a made decision to the report waiting for it.
    fn answer_waiter(&self, tenant: &str, id: &str, record: &DecisionRecord) {
        if let Some(tx) = lock(&self.waiters).remove(&(tenant.to_string(), id.to_string())) {
            let _ = tx.send(record.clone());
        }
    }

    /// The agents' state for the agents endpoint.
    pub fn agents(&self, tenant: &TenantSync) -> Result<Vec<AgentView>, StoreError> {
        let rows = self.store.status_agents(tenant.id())?;
        let recent = tenant
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(rows
            .into_iter()
            .map(|row| AgentView {
                active_instances: tenant.active_instances(&row.agent_email),
                recent: recent
                    .get(&row.agent_email)
                    .map(|d| d.iter().cloned().collect())
                    .unwrap_or_default(),
                pending: parse(&row.pending),
                last_applied: parse(&row.last_applied),
                last_decision: parse(&row.last_decision),
                last_error: row.last_error,
                updated_at: row.updated_at,
                agent_email: row.agent_email,
            })
            .collect())
    }

    /// Decides one change, carries the decision out, records it; the error
    /// is returned beside the record for the scheduler to retry or fail.
    async fn handle(
        &self,
        tenant: &TenantSync,
        change: t::StatusChange,
        agent: Option<Agent>,
    ) -> (DecisionRecord, Option<StatusSyncError>) {
        let email = change.agent_email.to_ascii_lowercase();
        let mut record = DecisionRecord {
            decided_at: now(),
            source: system_name(change.source).into(),
            agent_email: email.clone(),
            status: change.status.clone(),
            instance_id: change.instance_id.clone(),
            login: change.login,
            decision: "error".into(),
            target: None,
            target_status: None,
            reason: None,
            module_version: None,
            applied: false,
            error: None,
        };
        let mut row = match self.store.status_agent(tenant.id(), &email) {
            Ok(row) => row.unwrap_or_else(|| StatusAgentRow {
                tenant: tenant.id().to_string(),
                agent_email: email.clone(),
                ..StatusAgentRow::default()
            }),
            Err(e) => {
                record.error = Some(format!("store: {e}"));
                return (self.finish(tenant, None, record), Some(e.into()));
            }
        };
        let error = self
            .decide(tenant, &change, agent, &mut row, &mut record)
            .await
            .err();
        if let Some(e) = &error {
            record.error = Some(e.to_string());
        }
        (self.finish(tenant, Some(row), record), error)
    }

    fn finish(
        &self,
        tenant: &TenantSync,
        row: Option<StatusAgentRow>,
        record: DecisionRecord,
    ) -> DecisionRecord {
        metrics::counter!("switchboard_status_decisions_total", "tenant" => tenant.id().to_string(), "decision" => record.decision.clone())
            .increment(1);
        if let Some(error) = &record.error {
            metrics::counter!("switchboard_status_sync_errors_total", "tenant" => tenant.id().to_string()).increment(1);
            tracing::warn!(tenant = %tenant.id(), agent = %record.agent_email, %error, "status sync error");
        } else {
            tracing::info!(tenant = %tenant.id(), agent = %record.agent_email, decision = %record.decision,
                status = %record.status, target = ?record.target_status, "status sync decision");
        }
        if let Some(mut row) = row {
            row.last_decision = json(&Some(record.clone()));
            if record.error.is_some() {
                row.last_error.clone_from(&record.error);
            } else if record.applied {
                row.last_error = None;
            }
            if let Err(e) = self.store.put_status_agent(&row) {
                tracing::error!(tenant = %tenant.id(), error = %e, "status sync state not saved");
            }
        }
        let mut recent = tenant.recent.lock().unwrap_or_else(|p| p.into_inner());
        let list = recent.entry(record.agent_email.clone()).or_default();
        list.push_back(record.clone());
        while list.len() > RECENT {
            list.pop_front();
        }
        record
    }

    async fn decide(
        &self,
        tenant: &TenantSync,
        change: &t::StatusChange,
        agent: Option<Agent>,
        row: &mut StatusAgentRow,
        record: &mut DecisionRecord,
    ) -> Result<(), StatusSyncError> {
        let config = &tenant.config;
        let two_way = config.direction == Direction::TwoWay;
        let email = record.agent_email.clone();
        let agent = match agent {
            Some(agent) => agent,
            None => tenant.ccai().agent_by_email(&change.agent_email).await.map_err(|e| match e {
                CcaiError::UnknownAgent { .. } => StatusSyncError::Link(format!(
                    "no CCAI Platform agent has the email {}; agents are linked by the same email in Kustomer and CCAI Platform (AS4)",
                    change.agent_email
                )),
                other => other.into(),
            })?,
        };
        let kustomer = match tenant.kustomer_status(&email).await {
            Ok(k) => k,
            Err(StatusSyncError::Link(_)) if change.source == t::System::Ccai && !two_way => None,
            Err(e) => return Err(e),
        };
        // The work session poll need not report again what the Kustomer
        // app just reported; anything newer stays unseen for it.
        if let Some((session, status_id, Some(name))) = &kustomer {
            if change.source == t::System::Kustomer && *name == change.status {
                lock(&tenant.kustomer_seen)
                    .insert(email.clone(), (session.clone(), status_id.clone()));
            }
        }
        let pending: Option<StatusRecord> = parse(&row.pending);
        let last_applied: Option<StatusRecord> = parse(&row.last_applied);
        let (kustomer_to_ccai, ccai_to_kustomer) = config.maps();
        let ccai_activity = activity(agent.status.as_ref().map(|s| s.id));
        let ctx = t::StatusContext {
            kustomer_to_ccai,
            ccai_to_kustomer,
            two_way,
            priority: config.priority_mode(),
            ccai_status: agent.status.as_ref().map(|s| s.name.clone()),
            ccai_activity,
            kustomer_status: kustomer.as_ref().and_then(|k| k.2.clone()),
            active_instances: tenant.active_instances(&email),
            pending: pending.as_ref().map(StatusRecord::to_wit),
            last_applied: last_applied.as_ref().map(StatusRecord::to_wit),
            now: now(),
        };
        let live = self
            .registry
            .live(tenant.id())
            .ok_or_else(|| StatusSyncError::NoModule(tenant.id().to_string()))?;
        record.module_version = Some(live.info.version);
        let meta = CallMeta::new(
            tenant.id().to_string(),
            format!("status:{email}:{}", change.at),
        );
        let decision = self
            .registry
            .runtime()
            .call_status_change(live.module.clone(), meta, change.clone(), ctx)
            .await?;

        // A change from the system the sync last wrote to that is not the
        // echo of that write ends the echo window.
        let mut new_last_applied = last_applied
            .filter(|l| !(system_of(&l.target) == change.source && l.status != change.status));
        let mut new_pending = pending;
        let consumes_pending =
            change.source == t::System::Ccai && ccai_activity == t::AgentActivity::Idle;
        match decision {
            t::StatusDecision::Apply(target) => {
                record.decision = "apply".into();
                record.target = Some(system_name(target.target).into());
                record.target_status = Some(target.status.clone());
                match target.target {
                    t::System::Ccai => {
                        tenant
                            .ccai()
                            .set_agent_status(agent.id, &target.status)
                            .await
                            .map_err(|e| match e {
                                CcaiError::UnknownStatus { name } => {
                                    StatusSyncError::UnknownStatus {
                                        system: "CCAI Platform",
                                        name,
                                    }
                                }
                                other => other.into(),
                            })?;
                    }
                    t::System::Kustomer => {
                        let (session, _, _) = kustomer
                            .ok_or_else(|| StatusSyncError::NoWorkSession(email.clone()))?;
                        let status_id = tenant.kustomer_status_id(&target.status).await?;
                        tenant
                            .kustomer()
                            .set_agent_status(&session, &status_id)
                            .await?;
                        lock(&tenant.kustomer_seen)
                            .insert(email.clone(), (session, Some(status_id)));
                    }
                }
                record.applied = true;
                new_last_applied = Some(StatusRecord {
                    target: system_name(target.target).into(),
                    status: target.status,
                    at: now(),
                });
                if target.target == t::System::Ccai || consumes_pending {
                    new_pending = None;
                }
            }
            t::StatusDecision::Defer(target) => {
                record.decision = "defer".into();
                record.target = Some(system_name(target.target).into());
                record.target_status = Some(target.status.clone());
                new_pending = Some(StatusRecord {
                    target: system_name(target.target).into(),
                    status: target.status,
                    at: change.at.clone(),
                });
            }
            t::StatusDecision::Ignore(reason) => {
                record.decision = "ignore".into();
                record.reason = Some(reason);
                if consumes_pending {
                    new_pending = None;
                }
            }
            t::StatusDecision::Reject(reason) => {
                record.decision = "reject".into();
                record.error = Some(reason.clone());
                record.reason = Some(reason);
                if consumes_pending {
                    new_pending = None;
                }
            }
        }
        row.pending = json(&new_pending);
        row.last_applied = json(&new_last_applied);
        Ok(())
    }
}

impl StatusChanges for StatusSync {
    fn apply<'a>(&'a self, row: &'a InboxRow) -> BoxFuture<'a, Result<Option<u32>, PipelineError>> {
        Box::pin(async move {
            let tenant = self.tenant(&row.tenant).ok_or_else(|| {
                PipelineError::Status(format!(
                    "tenant `{}` has no status sync configured",
                    row.tenant
                ))
            })?;
            let stored: StoredChange = serde_json::from_str(row.body.get())
                .map_err(|e| PipelineError::Undecodable(e.to_string()))?;
            let (record, error) = self.handle(tenant, stored.change, stored.agent).await;
            // The latest decision is the one to look up.
            let recorded = serde_json::value::to_raw_value(&record)
                .map_err(|e| StoreError::json("record status decision", e))
                .and_then(|json| {
                    self.store.clear_outcome(&row.tenant, &row.event_id)?;
                    self.store.record_decision(
                        &row.tenant,
                        &row.event_id,
                        None,
                        record.module_version,
                        &json,
                        serde_json::value::RawValue::NULL,
                    )
                });
            if let Err(e) = recorded {
                tracing::error!(tenant = %row.tenant, change_id = %row.event_id, error = %e, "status decision not recorded");
            }
            let error: Option<PipelineError> = error.map(Into::into);
            // A report waits for a final answer, not for one to be retried.
            if !error.as_ref().is_some_and(PipelineError::is_transient) {
                self.answer_waiter(&row.tenant, &row.event_id, &record);
            }
            match error {
                Some(e) => Err(e),
                None => Ok(record.module_version),
            }
        })
    }
}

impl TenantSync {
    pub fn id(&self) -> &str {
        self.tenant.id()
    }

    fn ccai(&self) -> &CcaiClient {
        &self.tenant.ccai
    }

    fn kustomer(&self) -> &KustomerClient {
        &self.tenant.kustomer
    }

    pub fn config(&self) -> &StatusSyncConfig {
        &self.config
    }

    /// When the first CCAI poll recorded the agents' statuses.
    pub fn ccai_polled_at(&self) -> Option<String> {
        self.ccai_polled_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Completed CCAI and Kustomer polls since start.
    pub fn polls(&self) -> (u64, u64) {
        (
            self.ccai_polls.load(Ordering::Relaxed),
            self.kustomer_polls.load(Ordering::Relaxed),
        )
    }

    fn touch_instance(&self, email: &str, instance: Option<&str>, signed_out: bool) {
        let mut all = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        let agent = all.entry(email.to_string()).or_default();
        match (instance, signed_out) {
            (Some(id), false) => {
                agent.insert(id.to_string(), Instant::now());
            }
            (Some(id), true) => {
                agent.remove(id);
            }
            (None, true) => agent.clear(),
            (None, false) => {}
        }
    }

    /// AS5: instances heard from within the TTL that did not sign out.
    pub fn active_instances(&self, email: &str) -> u32 {
        let mut all = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        let Some(agent) = all.get_mut(email) else {
            return 0;
        };
        let ttl = self.config.instance_ttl;
        agent.retain(|_, seen| seen.elapsed() <= ttl);
        u32::try_from(agent.len()).unwrap_or(u32::MAX)
    }

    /// The agent's Kustomer (work session id, status id, status name);
    /// `None` when signed out; `Link` error when no user has the email.
    async fn kustomer_status(
        &self,
        email: &str,
    ) -> Result<Option<(String, Option<String>, Option<String>)>, StatusSyncError> {
        let user = self.tenant.user_id(email).await?.ok_or_else(|| {
            StatusSyncError::Link(format!(
                "no Kustomer user has the email {email}; agents are linked by the same email in Kustomer and CCAI Platform (AS4)"
            ))
        })?;
        let Some(current) = self.kustomer().current_status(&user).await? else {
            return Ok(None);
        };
        let name = match &current.status_id {
            Some(id) => self.tenant.kustomer_status_name(id).await?,
            None => None,
        };
        Ok(Some((current.work_session_id, current.status_id, name)))
    }

    async fn kustomer_status_id(&self, name: &str) -> Result<String, StatusSyncError> {
        self.tenant
            .kustomer_status_id(name)
            .await?
            .ok_or_else(|| StatusSyncError::UnknownStatus {
                system: "Kustomer",
                name: name.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as7_activity_follows_the_system_status_ids() {
        assert_eq!(activity(Some(-7)), t::AgentActivity::InCall);
        assert_eq!(activity(Some(-8)), t::AgentActivity::InChat);
        assert_eq!(activity(Some(-6)), t::AgentActivity::WrapUp);
        assert_eq!(activity(Some(-10)), t::AgentActivity::Offline);
        assert_eq!(activity(Some(0)), t::AgentActivity::Idle);
        assert_eq!(activity(Some(6)), t::AgentActivity::Idle);
    }
}
