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
//! Changes of one tenant are handled one at a time, in arrival order.
mod http;
mod poll;

pub use crate::config::{Direction, Priority, StatusSyncConfig};
pub use http::router;

use crate::connectors::ccai::{Agent, CcaiClient, CcaiError, SystemStatus};
use crate::connectors::kustomer::{KustomerClient, KustomerError};
use crate::runtime::{types as t, CallError, CallMeta, Registry};
use crate::store::{StatusAgentRow, Store, StoreError};
use crate::tenant::{Tenant, Tenants};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
}

/// One tenant's sync.
pub struct TenantSync {
    tenant: Arc<Tenant>,
    config: StatusSyncConfig,
    /// Serialises the tenant's changes, API calls included, so decisions
    /// see the state the previous one left. A tokio mutex because it is held
    /// across awaits; status changes are rare enough that one per tenant
    /// costs nothing.
    state: tokio::sync::Mutex<Memory>,
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

/// What the pollers remember between polls.
#[derive(Default)]
struct Memory {
    /// CCAI agent id → last seen status; `None` until the first poll.
    ccai_seen: Option<HashMap<u64, CcaiSeen>>,
    /// Agent email → (work session id, status id) last seen in Kustomer.
    kustomer_seen: HashMap<String, (String, Option<String>)>,
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
    /// instance and, when it carries a status, decides the change.
    pub async fn kustomer_report(
        &self,
        tenant: &TenantSync,
        report: KustomerReport,
    ) -> (Option<DecisionRecord>, u32) {
        let email = report.agent_email.trim().to_ascii_lowercase();
        tenant.touch_instance(&email, report.instance_id.as_deref(), report.signed_out);
        let instances = tenant.active_instances(&email);
        let Some(status) = report.status.filter(|_| !report.signed_out) else {
            return (None, instances);
        };
        let change = t::StatusChange {
            source: t::System::Kustomer,
            agent_email: report.agent_email.trim().to_string(),
            status,
            instance_id: report.instance_id,
            at: report.at.unwrap_or_else(now),
            login: report.login,
        };
        let mut memory = tenant.state.lock().await;
        let record = self.handle(tenant, &mut memory, change, None).await;
        (Some(record), tenant.active_instances(&email))
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

    /// Decides one change, carries the decision out, records it.
    async fn handle(
        &self,
        tenant: &TenantSync,
        memory: &mut Memory,
        change: t::StatusChange,
        agent: Option<Agent>,
    ) -> DecisionRecord {
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
                return self.finish(tenant, None, record);
            }
        };
        if let Err(e) = self
            .decide(tenant, memory, &change, agent, &mut row, &mut record)
            .await
        {
            record.error = Some(e.to_string());
        }
        self.finish(tenant, Some(row), record)
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
        memory: &mut Memory,
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
                memory
                    .kustomer_seen
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
                        memory
                            .kustomer_seen
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
