//! The pollers: CCAI agent statuses (every tenant with status sync) and,
//! optionally, Kustomer routing work sessions.
use super::{in_session, lock, CcaiSeen, StatusSync, StatusSyncError, TenantSync};
use crate::connectors::ccai::SystemStatus;
use crate::pipeline::AGENT_STATUS_SOURCE;
use crate::runtime::types as t;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The leaderships a replica takes to poll a tenant's agent statuses.
const CCAI_LEADER: &str = "ccai-status-poller";
const KUSTOMER_LEADER: &str = "kustomer-status-poller";

const OFFLINE: i64 = SystemStatus::Offline.id();
const AVAILABLE: i64 = SystemStatus::Available.id();

pub(super) async fn run_ccai(
    sync: Arc<StatusSync>,
    tenant: Arc<TenantSync>,
    mut shutdown: watch::Receiver<bool>,
) {
    let interval = tenant.config.ccai_poll_interval;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if !sync.leads(&tenant, CCAI_LEADER) {
            // Another replica polls this tenant.
        } else if let Err(e) = sync.poll_ccai(&tenant).await {
            tracing::warn!(tenant = %tenant.id(), error = %e, "CCAI agent status poll failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}

pub(super) async fn run_kustomer(
    sync: Arc<StatusSync>,
    tenant: Arc<TenantSync>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        if !sync.leads(&tenant, KUSTOMER_LEADER) {
            // Another replica polls this tenant.
        } else if let Err(e) = sync.poll_kustomer(&tenant).await {
            tracing::warn!(tenant = %tenant.id(), error = %e, "Kustomer work session poll failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}

impl StatusSync {
    /// Whether this replica leads `role` for the tenant (always, on SQLite).
    fn leads(&self, tenant: &TenantSync, role: &str) -> bool {
        self.store.lead(tenant.id(), role).unwrap_or_else(|error| {
            tracing::warn!(tenant = %tenant.id(), %error, "status poll skipped: leadership unknown");
            false
        })
    }

    /// Reads every agent's CCAI status once and stores each change since
    /// the previous read in its agent's queue. The first read only records
    /// (AS8). Returns how many changes were stored.
    pub async fn poll_ccai(&self, tenant: &TenantSync) -> Result<usize, StatusSyncError> {
        // Held across the read: two polls never interleave.
        let mut memory = tenant.state.lock().await;
        let agents = tenant.ccai().agents().await?;
        let first = memory.ccai_seen.is_none();
        let mut changes = Vec::new();
        {
            let seen = memory.ccai_seen.get_or_insert_with(HashMap::new);
            for agent in agents {
                let Some(status) = agent.status.clone() else {
                    continue;
                };
                let updated_at = agent.status_updated_at.clone().unwrap_or_else(super::now);
                let previous = seen.get(&agent.id).cloned();
                let before_session = match &previous {
                    Some(p) if in_session(status.id) && !in_session(p.status_id) => {
                        Some((p.name.clone(), p.updated_at.clone()))
                    }
                    Some(p) if in_session(status.id) => p.before_session.clone(),
                    _ => None,
                };
                seen.insert(
                    agent.id,
                    CcaiSeen {
                        email: agent.email.clone(),
                        status_id: status.id,
                        name: status.name.clone(),
                        updated_at: updated_at.clone(),
                        before_session,
                    },
                );
                let Some(previous) = previous else { continue };
                if previous.status_id == status.id || agent.email.is_none() {
                    continue;
                }
                // Back from a session in the status the agent had before it
                // (or the platform's default): not a new choice, dated when
                // that status was chosen (module docs).
                let at = match &previous.before_session {
                    Some((name, chosen_at))
                        if in_session(previous.status_id)
                            && !in_session(status.id)
                            && (*name == status.name || status.id == AVAILABLE) =>
                    {
                        chosen_at.clone()
                    }
                    _ => updated_at,
                };
                changes.push((
                    t::StatusChange {
                        source: t::System::Ccai,
                        agent_email: agent.email.clone().unwrap_or_default(),
                        status: status.name.clone(),
                        instance_id: None,
                        at,
                        login: previous.status_id == OFFLINE,
                    },
                    agent,
                ));
            }
        }
        if first {
            *tenant
                .ccai_polled_at
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(super::now());
        }
        let mut count = 0;
        for (change, agent) in changes {
            // The same status read again after a restart is the same change.
            let id = format!(
                "{AGENT_STATUS_SOURCE}-c-{}-{}-{}",
                agent.id,
                agent.status.as_ref().map_or(0, |s| s.id),
                agent.status_updated_at.as_deref().unwrap_or(&change.at)
            );
            if self.enqueue(tenant, "ccai", &id, change, Some(agent))? {
                count += 1;
            }
        }
        drop(memory);
        tenant.ccai_polls.fetch_add(1, Ordering::Relaxed);
        Ok(count)
    }

    /// Reads the Kustomer work session of every agent known from CCAI and
    /// stores each status change the Kustomer app did not report. The first
    /// sight of an agent only records; a new work session is a login.
    pub async fn poll_kustomer(&self, tenant: &TenantSync) -> Result<usize, StatusSyncError> {
        let emails: Vec<String> = match &tenant.state.lock().await.ccai_seen {
            Some(seen) => seen
                .values()
                .filter_map(|s| s.email.as_ref().map(|e| e.to_ascii_lowercase()))
                .collect(),
            None => return Ok(0),
        };
        let mut count = 0;
        for email in emails {
            let previous = lock(&tenant.kustomer_seen).get(&email).cloned();
            let current = match tenant.kustomer_status(&email).await {
                Ok(Some(current)) => current,
                Ok(None) => {
                    lock(&tenant.kustomer_seen).remove(&email);
                    continue;
                }
                Err(StatusSyncError::Link(_)) => continue,
                Err(e) => return Err(e),
            };
            lock(&tenant.kustomer_seen)
                .insert(email.clone(), (current.0.clone(), current.1.clone()));
            let Some((session, status_id)) = previous else {
                continue;
            };
            if status_id == current.1 && session == current.0 {
                continue;
            }
            let Some(name) = current.2 else { continue };
            let change = t::StatusChange {
                source: t::System::Kustomer,
                agent_email: email.clone(),
                status: name,
                instance_id: None,
                at: super::now(),
                login: session != current.0,
            };
            let id = format!("{AGENT_STATUS_SOURCE}-kp-{:016x}", rand::random::<u64>());
            if self.enqueue(tenant, "kustomer-poll", &id, change, None)? {
                count += 1;
            }
        }
        tenant.kustomer_polls.fetch_add(1, Ordering::Relaxed);
        Ok(count)
    }
}
