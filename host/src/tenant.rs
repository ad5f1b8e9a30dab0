//! One tenant as every part of the service sees it: its configuration, its
//! one Kustomer and one CCAI Platform client, and its directory of agents and
//! statuses. Built once per tenant at start ([`Tenants::build`]) and borrowed
//! by the intake, the pipeline, the status sync and click-to-call.
//!
//! One client per platform matters beyond economy: clones share the
//! connection pool and, above all, the rate-limit state, so the tenant's
//! traffic as a whole stays within Kustomer's org budget and CCAI Platform's
//! requests per second, whichever feature sends it.
use crate::config::TenantConfig;
use crate::connectors::ccai::{CcaiClient, CcaiError};
use crate::connectors::kustomer::{KustomerClient, KustomerError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// A client could not be built from the tenant's configuration.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant `{tenant}`: Kustomer client: {source}")]
    Kustomer {
        tenant: String,
        source: KustomerError,
    },
    #[error("tenant `{tenant}`: CCAI Platform client: {source}")]
    Ccai { tenant: String, source: CcaiError },
}

/// Users read into the directory at start (ten pages of Kustomer's largest).
const DIRECTORY_USERS: usize = 1_000;

/// One tenant: configuration, clients, directory.
#[derive(Debug)]
pub struct Tenant {
    pub config: TenantConfig,
    pub kustomer: KustomerClient,
    pub ccai: CcaiClient,
    directory: Directory,
    /// When its custom fields were provisioned (ms since the epoch), once
    /// the store has said (the first provisioning is kept for good, CF4).
    fields_provisioned: OnceLock<u64>,
}

/// Who the tenant's agents are in Kustomer and what its Kustomer routing
/// statuses are called. Both change rarely and are read on hot paths (every
/// assignment, every status change), so they are cached for the life of the
/// process; a name or id not found is read again once before giving up.
/// `std` mutexes: held for one map operation, never across an await.
#[derive(Debug, Default)]
struct Directory {
    /// Lower-cased agent email → Kustomer user id (AS4: linked by email).
    users: Mutex<HashMap<String, String>>,
    /// Kustomer routing statuses as (id, name); empty until first read.
    statuses: Mutex<Vec<(String, String)>>,
}

impl Tenant {
    /// The tenant with clients built from its configuration.
    pub fn new(config: TenantConfig) -> Result<Self, TenantError> {
        let kustomer = KustomerClient::new(config.kustomer.clone()).map_err(|source| {
            TenantError::Kustomer {
                tenant: config.id.clone(),
                source,
            }
        })?;
        let ccai = CcaiClient::new(config.ccai.clone()).map_err(|source| TenantError::Ccai {
            tenant: config.id.clone(),
            source,
        })?;
        Ok(Self::with_clients(config, kustomer, ccai))
    }

    /// The tenant with the given clients (tests substitute clocks).
    pub fn with_clients(config: TenantConfig, kustomer: KustomerClient, ccai: CcaiClient) -> Self {
        Self {
            config,
            kustomer,
            ccai,
            directory: Directory::default(),
            fields_provisioned: OnceLock::new(),
        }
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// When the tenant's custom fields were provisioned, if the store had
    /// it: read from the store until it has, then remembered, since the
    /// first provisioning time never changes (CF4).
    pub fn fields_provisioned_ms<E>(
        &self,
        read: impl FnOnce() -> Result<Option<u64>, E>,
    ) -> Result<Option<u64>, E> {
        if let Some(at) = self.fields_provisioned.get() {
            return Ok(Some(*at));
        }
        Ok(read()?.map(|at| *self.fields_provisioned.get_or_init(|| at)))
    }

    /// Reads the org's users into the directory, so that assigning a
    /// conversation or syncing a status costs no lookup. Returns how many
    /// users have an email. A user added later is found on first use.
    pub async fn load_users(&self) -> Result<usize, KustomerError> {
        let users = self.kustomer.users(DIRECTORY_USERS).await?;
        let mut map = lock(&self.directory.users);
        let before = map.len();
        for user in users {
            // The first user with an email, as a lookup by email finds it.
            if let Some(email) = &user.attributes.email {
                map.entry(email.trim().to_ascii_lowercase())
                    .or_insert(user.id);
            }
        }
        Ok(map.len().saturating_sub(before))
    }

    /// The Kustomer user id of an agent, by email (AS4 linking), cached.
    pub async fn user_id(&self, email: &str) -> Result<Option<String>, KustomerError> {
        let key = email.trim().to_ascii_lowercase();
        if let Some(id) = lock(&self.directory.users).get(&key) {
            return Ok(Some(id.clone()));
        }
        let found = self.kustomer.find_user_by_email(email).await?.map(|u| u.id);
        if let Some(id) = &found {
            lock(&self.directory.users).insert(key, id.clone());
        }
        Ok(found)
    }

    /// The name of the Kustomer routing status with this id.
    pub async fn kustomer_status_name(&self, id: &str) -> Result<Option<String>, KustomerError> {
        self.find_status(|(i, _)| i == id)
            .await
            .map(|found| found.map(|(_, name)| name))
    }

    /// The id of the Kustomer routing status with this name.
    pub async fn kustomer_status_id(&self, name: &str) -> Result<Option<String>, KustomerError> {
        self.find_status(|(_, n)| n == name)
            .await
            .map(|found| found.map(|(id, _)| id))
    }

    async fn find_status(
        &self,
        matches: impl Fn(&(String, String)) -> bool,
    ) -> Result<Option<(String, String)>, KustomerError> {
        let cached = {
            let statuses = lock(&self.directory.statuses);
            (!statuses.is_empty()).then(|| statuses.iter().find(|s| matches(s)).cloned())
        };
        if let Some(Some(found)) = cached {
            return Ok(Some(found));
        }
        // Not read yet, or a status added since: read the list again.
        let fresh: Vec<(String, String)> = self
            .kustomer
            .routing_statuses()
            .await?
            .into_iter()
            .filter_map(|s| s.attributes.name.clone().map(|n| (s.id, n)))
            .collect();
        let found = fresh.iter().find(|s| matches(s)).cloned();
        *lock(&self.directory.statuses) = fresh;
        Ok(found)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned cache only means a panic elsewhere while holding it; the
    // map itself is always consistent.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every configured tenant, by id. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Tenants(Arc<BTreeMap<String, Arc<Tenant>>>);

impl Tenants {
    /// One [`Tenant`] per configuration, each with its own clients.
    pub fn build(configs: &[TenantConfig]) -> Result<Self, TenantError> {
        configs
            .iter()
            .map(|c| Tenant::new(c.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::from_tenants)
    }

    /// These tenants.
    pub fn from_tenants(tenants: impl IntoIterator<Item = Arc<Tenant>>) -> Self {
        Self(Arc::new(
            tenants
                .into_iter()
                .map(|t| (t.config.id.clone(), t))
                .collect(),
        ))
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.0.get(id)
    }

    /// Tenants in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Tenant>> {
        self.0.values()
    }

    /// Tenant ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
