//! Tenant → live module, swapped atomically (RM4).
//!
//! A candidate is validated (it loads: a component of a supported world) and
//! smoke-tested (one session event and one status change on synthetic input
//! must not trap) before it replaces the live version. Readers take the live
//! module with one atomic load; an event in flight keeps the `Arc` it took and
//! finishes on that version, so every event is decided by exactly one
//! version. Earlier versions stay available for rollback; only the live one
//! and the [`ROLLBACK_WINDOW`] most recent others stay compiled in memory,
//! and an older one is loaded again (from the compiled-module cache on disk
//! when it has it) when it is rolled back to.
//!
//! With a directory configured, every deployed module and the version list
//! are written there (temp file + rename), and [`Registry::restore`] brings
//! them back after a restart.
//!
//! A tenant may also have a **shadow** module (RM7): validated and
//! smoke-tested like a deploy, it decides beside the live module but its
//! plans are only recorded, never carried out; promoting it deploys it as
//! the next version in one atomic swap.
use super::types as t;
use super::{CallError, CallMeta, LoadError, LoadedModule, Runtime};
mod persist;

pub use persist::{DirModules, ModuleStore, Persisted};

use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

/// Why a deploy or rollback was refused. The live version is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The module did not load.
    #[error("module refused: {0}")]
    Invalid(#[from] LoadError),
    /// The module loaded but failed its smoke test.
    #[error("module refused: smoke test failed on {call}: {error}")]
    SmokeTest {
        /// Which export failed.
        call: &'static str,
        /// How.
        error: CallError,
    },
    /// Nothing to roll back to.
    #[error("tenant `{tenant}` has no version {version} to roll back to")]
    NoSuchVersion {
        /// Tenant id.
        tenant: String,
        /// Requested version (0 = the previous one).
        version: u32,
    },
    /// Persisting the module failed.
    #[error("could not persist module for tenant `{tenant}`: {source}")]
    Persist {
        /// Tenant id.
        tenant: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One deployed version of a tenant's module.
pub struct Deployed {
    /// The compiled module.
    pub module: Arc<LoadedModule>,
    /// What is recorded about it.
    pub info: VersionInfo,
}

impl std::fmt::Debug for Deployed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployed")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// A version's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionInfo {
    /// Per-tenant sequence number, starting at 1.
    pub version: u32,
    /// SHA-256 of the module bytes.
    pub digest: String,
    /// Where it came from (a path, `admin-api`, `rollback`…).
    pub source: String,
    /// RFC 3339 time it went live first.
    pub deployed_at: String,
}

/// A candidate deciding beside the live module, never carried out (RM7).
pub struct Shadow {
    /// The compiled module.
    pub module: Arc<LoadedModule>,
    /// What is recorded about it.
    pub info: ShadowInfo,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Shadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shadow")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// A shadow module's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShadowInfo {
    /// SHA-256 of the module bytes.
    pub digest: String,
    /// Where it came from.
    pub source: String,
    /// RFC 3339 time it started shadowing.
    pub since: String,
}

/// Versions besides the live one kept compiled, the most recent first.
pub const ROLLBACK_WINDOW: usize = 3;

/// One entry of a tenant's history.
struct Version {
    info: VersionInfo,
    /// The compiled module, while it is live or within the rollback window.
    compiled: Option<Arc<Deployed>>,
    /// The module's bytes, kept only by a registry without a module store,
    /// to load the version again.
    bytes: Option<Arc<[u8]>>,
}

#[derive(Default)]
struct Slot {
    live: ArcSwapOption<Deployed>,
    shadow: ArcSwapOption<Shadow>,
    /// Every version deployed, oldest first. A `std` mutex: deploys are rare
    /// and never await while holding it; it also serialises deploys of one
    /// tenant so version numbers stay in order.
    history: Mutex<Vec<Version>>,
}

/// Drops the compiled module of every version but the live one and the
/// [`ROLLBACK_WINDOW`] most recent others.
fn trim(history: &mut [Version], live: u32) {
    let mut kept = 0;
    for version in history.iter_mut().rev() {
        if version.info.version == live || version.compiled.is_none() {
            continue;
        }
        if kept < ROLLBACK_WINDOW {
            kept += 1;
        } else {
            version.compiled = None;
        }
    }
}

/// The registry of every tenant's modules.
pub struct Registry {
    runtime: Arc<Runtime>,
    modules: Option<Arc<dyn ModuleStore>>,
    /// Tenant slots; the map changes only when a tenant is first seen.
    tenants: RwLock<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("persisted", &self.modules.is_some())
            .field("tenants", &self.tenants())
            .finish()
    }
}

impl Registry {
    /// A registry over `runtime`, persisting into `dir` when given.
    pub fn new(runtime: Arc<Runtime>, dir: Option<PathBuf>) -> Self {
        let modules = dir.map(|d| Arc::new(DirModules::new(d)) as Arc<dyn ModuleStore>);
        Self::with_modules(runtime, modules)
    }

    /// A registry over `runtime`, persisting into `modules` when given (a
    /// database shared by replicas).
    pub fn with_modules(runtime: Arc<Runtime>, modules: Option<Arc<dyn ModuleStore>>) -> Self {
        Self {
            runtime,
            modules,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    /// The runtime modules run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    fn slot(&self, tenant: &str) -> Arc<Slot> {
        if let Some(slot) = self
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            return slot.clone();
        }
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tenant.to_string())
            .or_default()
            .clone()
    }

    /// The tenants that have a live module.
    pub fn tenants(&self) -> Vec<String> {
        let map = self.tenants.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = map
            .iter()
            .filter(|(_, s)| s.live.load().is_some())
            .map(|(k, _)| k.clone())
            .collect();
        names.sort();
        names
    }

    /// The tenant's live module, if any. Lock-free.
    pub fn live(&self, tenant: &str) -> Option<Arc<Deployed>> {
        self.slot(tenant).live.load_full()
    }

    /// All versions of a tenant, oldest first.
    pub fn versions(&self, tenant: &str) -> Vec<VersionInfo> {
        let slot = self.slot(tenant);
        let history = slot.history.lock().unwrap_or_else(|p| p.into_inner());
        history.iter().map(|d| d.info.clone()).collect()
    }

    /// Validates, smoke-tests and atomically makes `bytes` the tenant's live
    /// module. Deploying the live digest again changes nothing.
    pub fn deploy(
        &self,
        tenant: &str,
        bytes: &[u8],
        source: &str,
    ) -> Result<VersionInfo, DeployError> {
        let module = self.runtime.load(bytes)?;
        smoke_test(&self.runtime, &module, tenant)?;
        let slot = self.slot(tenant);
        let mut history = slot.history.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(live) = slot.live.load_full() {
            if live.info.digest == module.info.digest {
                return Ok(live.info.clone());
            }
        }
        let Some(modules) = &self.modules else {
            let info = VersionInfo {
                version: history.last().map_or(1, |d| d.info.version + 1),
                digest: module.info.digest.clone(),
                source: source.to_string(),
                deployed_at: persist::now(),
            };
            let deployed = Arc::new(Deployed {
                module,
                info: info.clone(),
            });
            history.push(Version {
                info: info.clone(),
                compiled: Some(deployed.clone()),
                bytes: Some(bytes.into()),
            });
            trim(&mut history, info.version);
            slot.live.store(Some(deployed));
            tracing::info!(tenant, version = info.version, digest = %info.digest, source = %info.source, "rule module live");
            return Ok(info);
        };
        let info = modules
            .add_version(tenant, &module.info.digest, source, bytes)
            .map_err(|source| DeployError::Persist {
                tenant: tenant.into(),
                source,
            })?;
        drop(history);
        self.sync_tenant_with(tenant, Some(&module))
            .map_err(|source| DeployError::Persist {
                tenant: tenant.into(),
                source: std::io::Error::other(source),
            })?;
        Ok(info)
    }

    /// Validates and smoke-tests `bytes`, then makes it the tenant's shadow
    /// module, replacing any earlier one (RM7).
    pub fn set_shadow(
        &self,
        tenant: &str,
        bytes: &[u8],
        source: &str,
    ) -> Result<ShadowInfo, DeployError> {
        let module = self.runtime.load(bytes)?;
        smoke_test(&self.runtime, &module, tenant)?;
        let info = ShadowInfo {
            digest: module.info.digest.clone(),
            source: source.to_string(),
            since: persist::now(),
        };
        if let Some(modules) = &self.modules {
            modules
                .set_shadow(tenant, Some((&info, bytes)))
                .map_err(|source| DeployError::Persist {
                    tenant: tenant.into(),
                    source,
                })?;
        }
        self.slot(tenant).shadow.store(Some(Arc::new(Shadow {
            module,
            info: info.clone(),
            bytes: bytes.to_vec(),
        })));
        tracing::info!(tenant, digest = %info.digest, source = %info.source, "rule module shadowing");
        Ok(info)
    }

    /// The tenant's shadow module, if any.
    pub fn shadow(&self, tenant: &str) -> Option<Arc<Shadow>> {
        self.slot(tenant).shadow.load_full()
    }

    /// Stops shadowing; returns what was shadowing.
    pub fn clear_shadow(&self, tenant: &str) -> Result<Option<ShadowInfo>, DeployError> {
        if let Some(modules) = &self.modules {
            modules
                .set_shadow(tenant, None)
                .map_err(|source| DeployError::Persist {
                    tenant: tenant.into(),
                    source,
                })?;
        }
        Ok(self.slot(tenant).shadow.swap(None).map(|s| s.info.clone()))
    }

    /// Deploys the shadow module as the next live version (one atomic swap)
    /// and stops shadowing.
    pub fn promote_shadow(&self, tenant: &str) -> Result<Option<VersionInfo>, DeployError> {
        let Some(shadow) = self.shadow(tenant) else {
            return Ok(None);
        };
        let info = self.deploy(
            tenant,
            &shadow.bytes,
            &format!("shadow {}", shadow.info.source),
        )?;
        // Only if no other candidate took its place meanwhile.
        let slot = self.slot(tenant);
        let current = slot.shadow.load_full();
        if current.is_some_and(|c| Arc::ptr_eq(&c, &shadow)) {
            self.clear_shadow(tenant)?;
        }
        Ok(Some(info))
    }

    /// The version of `tenant` with these exact bytes, if it was ever
    /// deployed.
    pub fn known_version(&self, tenant: &str, bytes: &[u8]) -> Option<VersionInfo> {
        let digest = super::module::digest(bytes);
        let slot = self.slot(tenant);
        let history = slot.history.lock().unwrap_or_else(|p| p.into_inner());
        history
            .iter()
            .rev()
            .find(|d| d.info.digest == digest)
            .map(|d| d.info.clone())
    }

    /// Makes an earlier version live again: `version`, or the one before the
    /// live one when `None`.
    pub fn rollback(&self, tenant: &str, version: Option<u32>) -> Result<VersionInfo, DeployError> {
        let slot = self.slot(tenant);
        let mut history = slot.history.lock().unwrap_or_else(|p| p.into_inner());
        let live = slot.live.load_full().map(|d| d.info.version);
        let at = match version {
            Some(v) => history.iter().position(|d| d.info.version == v),
            None => history.iter().rposition(|d| Some(d.info.version) < live),
        }
        .ok_or(DeployError::NoSuchVersion {
            tenant: tenant.into(),
            version: version.unwrap_or(0),
        })?;
        let target = self.compiled(tenant, &mut history[at])?;
        if let Some(modules) = &self.modules {
            modules
                .set_live(tenant, target.info.version)
                .map_err(|source| DeployError::Persist {
                    tenant: tenant.into(),
                    source,
                })?;
        }
        slot.live.store(Some(target.clone()));
        trim(&mut history, target.info.version);
        tracing::info!(tenant, version = target.info.version, digest = %target.info.digest, "rule module rolled back");
        Ok(target.info.clone())
    }

    /// The version's compiled module, loading it again if it left the
    /// rollback window: from the bytes kept here or in the module store, and
    /// compiled only if the compiled-module cache does not have it.
    fn compiled(&self, tenant: &str, version: &mut Version) -> Result<Arc<Deployed>, DeployError> {
        if let Some(compiled) = &version.compiled {
            return Ok(compiled.clone());
        }
        let module = match (&version.bytes, &self.modules) {
            (Some(bytes), _) => self.runtime.load(bytes)?,
            (None, Some(modules)) => {
                let bytes = modules
                    .bytes(tenant, &version.info.digest)
                    .map_err(|source| DeployError::Persist {
                        tenant: tenant.into(),
                        source,
                    })?;
                self.runtime.load(&bytes)?
            }
            (None, None) => {
                return Err(DeployError::NoSuchVersion {
                    tenant: tenant.into(),
                    version: version.info.version,
                })
            }
        };
        let deployed = Arc::new(Deployed {
            module,
            info: version.info.clone(),
        });
        version.compiled = Some(deployed.clone());
        Ok(deployed)
    }

    /// Reloads every tenant persisted. Returns the tenants restored; a
    /// tenant whose record is damaged is skipped with an error in the log.
    pub fn restore(&self) -> Vec<String> {
        let Some(modules) = &self.modules else {
            return vec![];
        };
        let tenants = match modules.tenants() {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::error!(%error, "could not list the persisted rule modules");
                return vec![];
            }
        };
        let mut restored = Vec::new();
        for tenant in tenants {
            match self.sync_tenant(&tenant) {
                Ok(()) => restored.push(tenant),
                Err(e) => tracing::error!(tenant, error = %e, "could not restore rule modules"),
            }
        }
        restored
    }

    /// Brings the tenant's versions, live module and shadow up to date with
    /// what is persisted: after a restart, or when another replica changed
    /// them. Modules already compiled here are reused; the others are read
    /// back and loaded (from the compiled-module cache when it has them).
    pub fn sync_tenant(&self, tenant: &str) -> anyhow::Result<()> {
        self.sync_tenant_with(tenant, None)
    }

    fn sync_tenant_with(
        &self,
        tenant: &str,
        fresh: Option<&Arc<LoadedModule>>,
    ) -> anyhow::Result<()> {
        let Some(modules) = &self.modules else {
            return Ok(());
        };
        let Some(persisted) = modules.load(tenant)? else {
            return Ok(());
        };
        let slot = self.slot(tenant);
        let mut history = slot.history.lock().unwrap_or_else(|p| p.into_inner());
        let mut synced: Vec<Version> = persisted
            .versions
            .into_iter()
            .map(|info| {
                let compiled = history
                    .iter()
                    .find(|v| v.info.version == info.version && v.info.digest == info.digest)
                    .and_then(|v| v.compiled.clone())
                    .or_else(|| {
                        fresh.filter(|m| m.info.digest == info.digest).map(|m| {
                            Arc::new(Deployed {
                                module: m.clone(),
                                info: info.clone(),
                            })
                        })
                    });
                Version {
                    info,
                    compiled,
                    bytes: None,
                }
            })
            .collect();
        let at = synced
            .iter()
            .position(|v| v.info.version == persisted.live)
            .ok_or_else(|| {
                anyhow::anyhow!("live version {} is not in the history", persisted.live)
            })?;
        let live = self.compiled(tenant, &mut synced[at])?;
        trim(&mut synced, persisted.live);
        *history = synced;
        let was = slot.live.load_full().map(|d| d.info.version);
        if was != Some(live.info.version) {
            tracing::info!(tenant, version = live.info.version, digest = %live.info.digest, source = %live.info.source, "rule module live");
            slot.live.store(Some(live));
        }
        let shadow_now = slot.shadow.load_full().map(|s| s.info.clone());
        match persisted.shadow {
            None if shadow_now.is_some() => {
                slot.shadow.store(None);
            }
            Some(info) if shadow_now.as_ref() != Some(&info) => {
                let bytes = modules.bytes(tenant, &info.digest)?;
                let module = match fresh.filter(|m| m.info.digest == info.digest) {
                    Some(m) => m.clone(),
                    None => self.runtime.load(&bytes)?,
                };
                slot.shadow.store(Some(Arc::new(Shadow {
                    module,
                    info,
                    bytes,
                })));
            }
            _ => {}
        }
        Ok(())
    }
}

/// One call of each export on synthetic input. A rule error is fine (the
/// module is allowed to refuse odd input); a trap, timeout or oversized output
/// is not.
fn smoke_test(runtime: &Runtime, module: &LoadedModule, tenant: &str) -> Result<(), DeployError> {
    let meta = CallMeta::new(tenant, "smoke-test");
    let (event, ctx) = sample_inputs(tenant);
    match runtime.on_session_event(module, &meta, &event, &ctx) {
        Ok(_) | Err(CallError::Rule { .. }) => {}
        Err(error) => {
            return Err(DeployError::SmokeTest {
                call: "on-session-event",
                error,
            })
        }
    }
    let (change, sctx) = smoke_status_inputs();
    runtime
        .on_status_change(module, &meta, &change, &sctx)
        .map(|_| ())
        .map_err(|error| DeployError::SmokeTest {
            call: "on-status-change",
            error,
        })
}

/// A neutral input: a new inbound IVR call (`created`) with a menu and no
/// known customer, and the context of a tenant with the standard settings.
/// The smoke test's input, and a starting point for tests.
pub fn sample_inputs(tenant: &str) -> (t::SessionEvent, t::Context) {
    let now = "2026-01-01T00:00:00.000Z".to_string();
    let event = t::SessionEvent {
        id: "smoke-test".into(),
        at: now.clone(),
        session: t::Session {
            id: "call-smoke".into(),
            kind: t::SessionKind::IvrCall,
            channel: t::Channel::Voice,
            direction: t::Direction::Inbound,
            session_type: "Voice Inbound (IVR)".into(),
            end_user: t::EndUser {
                phone: Some("+15550000000".into()),
                sdk_identifier: None,
                email: None,
                name: None,
            },
            menu: Some(t::Menu {
                id: 1,
                name: "Main".into(),
                path: "1".into(),
            }),
            queue_name: Some("Main".into()),
            language: Some("en".into()),
            agent: None,
            started_at: Some(now.clone()),
            ended_at: None,
            durations: t::Durations {
                call_seconds: None,
                hold_seconds: None,
                wait_seconds: None,
            },
            parent_session_id: None,
            custom_data: vec![],
        },
        kind: t::EventKind::Created,
    };
    let ctx = t::Context {
        tenant: tenant.into(),
        now,
        customer: None,
        recent_conversations: vec![],
        linked_conversation: None,
        settings: t::Settings {
            recording_enabled: true,
            fields: vec![],
            field_mapping: vec![],
            options: vec![],
        },
    };
    (event, ctx)
}

fn smoke_status_inputs() -> (t::StatusChange, t::StatusContext) {
    let now = "2026-01-01T00:00:00.000Z".to_string();
    (
        t::StatusChange {
            source: t::System::Kustomer,
            agent_email: "smoke@example.invalid".into(),
            status: "Available".into(),
            instance_id: None,
            at: now.clone(),
            login: false,
        },
        t::StatusContext {
            kustomer_to_ccai: vec![t::StatusMap {
                from: "Available".into(),
                to: "Available".into(),
            }],
            ccai_to_kustomer: vec![],
            two_way: false,
            priority: t::PriorityMode::LastChangeWins,
            ccai_status: Some("Unavailable".into()),
            ccai_activity: t::AgentActivity::Idle,
            kustomer_status: None,
            active_instances: 1,
            pending: None,
            last_applied: None,
            now,
        },
    )
}
