//! `switchboard demo` and the loopback stack it runs on: the Kustomer and
//! CCAI Platform emulators, and the sidecar configured against them, all on
//! `127.0.0.1` in this process. The end-to-end tests use the same [`Stack`].
use crate::app::App;
use crate::config::{Config, FailurePolicy, ServerConfig, TenantConfig};
use crate::connectors::{ccai, kustomer};
use crate::fields::StandardFields;
use crate::runtime::{types as t, RuntimeConfig};
use anyhow::Context as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchboard_emulators::ccai as ccai_emu;
use switchboard_emulators::kustomer as kustomer_emu;

pub mod run;

/// Settings of a [`Stack`].
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub tenant: String,
    /// The rule module deployed at start.
    pub module: PathBuf,
    /// Keep the store and registry here (default: a temporary directory).
    pub data_dir: Option<PathBuf>,
    pub failure_policy: FailurePolicy,
    /// Provision the standard custom fields before the first session (CF1).
    pub provision_fields: bool,
    /// Poll the CCAI Manager API for final records this often.
    pub poll_interval: Option<Duration>,
    pub runtime: RuntimeConfig,
    pub workers: usize,
    /// Scheduling, retries and dead letters (`workers` is set from above).
    pub pipeline: crate::config::PipelineConfig,
    /// A watched module directory.
    pub modules_dir: Option<PathBuf>,
    /// Agent status sync (SPEC §6); `None` = off.
    pub status_sync: Option<crate::config::StatusSyncConfig>,
    /// Click-to-call (SPEC §7); `None` = off.
    pub click_to_call: Option<crate::config::ClickToCallConfig>,
    /// More tenants, each with the same module and settings and a Kustomer
    /// emulator of its own (they share the CCAI Platform emulator).
    pub extra_tenants: Vec<String>,
    /// Settings of the Kustomer emulator(s).
    pub kustomer_emulator: kustomer_emu::KustomerEmulatorConfig,
    /// How long the Kustomer mirror trusts what it holds (KU2).
    pub mirror: crate::config::MirrorConfig,
    /// Browser origins allowed on the agent-facing routes.
    pub cors_origins: Vec<String>,
    /// `server.intake_log`: session events and chat webhooks through the
    /// intake log, with this bound (PF6); on by default, as in the service.
    pub intake_log: Option<u64>,
}

impl StackOptions {
    pub fn new(module: impl Into<PathBuf>) -> Self {
        Self {
            tenant: "acme".into(),
            module: module.into(),
            data_dir: None,
            failure_policy: FailurePolicy::Hold,
            provision_fields: true,
            poll_interval: Some(Duration::from_millis(300)),
            runtime: RuntimeConfig::default(),
            workers: 16,
            pipeline: crate::config::PipelineConfig::default(),
            modules_dir: None,
            status_sync: Some(crate::config::StatusSyncConfig::one_way(
                DEMO_STATUS_MAP,
                AGENT_API_TOKEN,
            )),
            click_to_call: Some(crate::config::ClickToCallConfig::new(AGENT_API_TOKEN)),
            extra_tenants: Vec::new(),
            kustomer_emulator: kustomer_emu::KustomerEmulatorConfig::default(),
            mirror: crate::config::MirrorConfig::default(),
            cors_origins: Vec::new(),
            intake_log: Some(crate::config::DEFAULT_INTAKE_LOG_BYTES),
        }
    }
}

/// The demo tenant's Kustomer → CCAI Platform status mapping (many-to-one).
pub const DEMO_STATUS_MAP: &[(&str, &str)] = &[
    ("Available", "Available"),
    ("Busy", "Unavailable"),
    ("Lunch", "Meal"),
    ("Training", "Meal"),
];

/// Bearer token of the tenant's status sync and click-to-call endpoints.
pub const AGENT_API_TOKEN: &str = "demo-agent-api-token";

/// Credentials the stack uses between the emulators and the sidecar.
pub const ADMIN_TOKEN: &str = "demo-admin-token";
const EVENTS_USER: &str = "ccai-events";
const EVENTS_PASSWORD: &str = "demo-events-password";
const WEBHOOK_SECRET: &str = "demo-webhook-secret";

/// Sessions in the emulators' scenarios start on this day; fields count as
/// provisioned just before it (CF4).
const PROVISIONED_AT: &str = "2026-01-15T00:00:00.000Z";

/// Both emulators and a running sidecar.
pub struct Stack {
    pub kustomer: kustomer_emu::KustomerEmulator,
    /// The Kustomer emulators of [`StackOptions::extra_tenants`], by tenant.
    pub other_kustomers: Vec<(String, kustomer_emu::KustomerEmulator)>,
    pub ccai: ccai_emu::CcaiEmulator,
    pub app: App,
    pub target: ccai_emu::PlayTarget,
    pub options: StackOptions,
    config: Config,
    http: reqwest::Client,
    _data: Option<tempfile::TempDir>,
}

impl Stack {
    /// Starts everything on loopback.
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let kustomer = kustomer_emu::start(options.kustomer_emulator.clone()).await?;
        let ccai = ccai_emu::start(ccai_emu::CcaiConfig {
            rate_limit: None,
            ..Default::default()
        })
        .await?;
        // Agents are linked by email (AS4): every CCAI agent is a Kustomer user.
        for agent in ccai.agents() {
            kustomer.control().add_user(&agent.email, &agent.name());
        }
        let (data_dir, temp) = match &options.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let mut config = Config {
            server: ServerConfig {
                listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                data_dir,
                admin_token: Some(ADMIN_TOKEN.into()),
                modules_dir: options.modules_dir.clone(),
                max_body_bytes: 1 << 20,
                workers: options.workers,
                connections: Default::default(),
                cors_origins: options.cors_origins.clone(),
                intake_log: options.intake_log,
            },
            runtime: options.runtime.clone(),
            store: Default::default(),
            pipeline: crate::config::PipelineConfig {
                workers: options.workers,
                ..options.pipeline.clone()
            },
            tenants: vec![tenant_config(&options, &options.tenant, &kustomer, &ccai)?],
        };
        let mut other_kustomers = Vec::new();
        for id in &options.extra_tenants {
            let emulator = kustomer_emu::start(options.kustomer_emulator.clone()).await?;
            for agent in ccai.agents() {
                emulator.control().add_user(&agent.email, &agent.name());
            }
            let mut tenant = tenant_config(&options, id, &emulator, &ccai)?;
            // One tenant polls the shared CCAI emulator's final records.
            tenant.poll_interval = None;
            config.tenants.push(tenant);
            other_kustomers.push((id.clone(), emulator));
        }
        if options.provision_fields {
            let store =
                crate::store::Store::open(crate::store::Store::path_in(&config.server.data_dir))?;
            for tenant in &config.tenants {
                let client = kustomer::KustomerClient::new(tenant.kustomer.clone())?;
                let declared = crate::fields::Declared::of(&tenant.fields, &tenant.field_mapping);
                crate::fields::provision(&client, &declared).await?;
                let names = declared.names();
                store.record_field_provisioning(
                    &tenant.id,
                    PROVISIONED_AT,
                    &serde_json::json!(names),
                )?;
            }
        }
        let app = App::start(config.clone()).await?;
        app.modules_loaded().await;
        let target = ccai_emu::PlayTarget {
            base_url: format!("http://{}", app.addr()),
            tenant: options.tenant.clone(),
            username: EVENTS_USER.into(),
            password: EVENTS_PASSWORD.into(),
            webhook_primary_secret: WEBHOOK_SECRET.into(),
            webhook_secondary_secret: None,
        };
        Ok(Self {
            kustomer,
            other_kustomers,
            ccai,
            app,
            target,
            options,
            config,
            http: reqwest::Client::new(),
            _data: temp,
        })
    }

    /// Stops the sidecar and starts it again with the same configuration,
    /// store and emulators (on a new port).
    pub async fn restart(self) -> anyhow::Result<Self> {
        let Self {
            kustomer,
            other_kustomers,
            ccai,
            app,
            target,
            options,
            config,
            http,
            _data,
        } = self;
        app.shutdown().await;
        let app = App::start(config.clone()).await?;
        app.modules_loaded().await;
        let target = ccai_emu::PlayTarget {
            base_url: format!("http://{}", app.addr()),
            ..target
        };
        Ok(Self {
            kustomer,
            other_kustomers,
            ccai,
            app,
            target,
            options,
            config,
            http,
            _data,
        })
    }

    /// The sidecar's data directory (store, modules, compiled modules).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.server.data_dir
    }

    /// The sidecar's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.app.addr())
    }

    /// Plays a scenario (its final records go to the Manager API) and fails
    /// if the sidecar refused any delivery.
    pub async fn play(&self, scenario: &ccai_emu::Scenario) -> anyhow::Result<usize> {
        let deliveries = self.ccai.play(scenario, &self.target).await?;
        if let Some(bad) = deliveries.iter().find(|d| !(200..300).contains(&d.status)) {
            anyhow::bail!(
                "{}: {} delivery answered {}: {}",
                scenario.name,
                bad.kind,
                bad.status,
                bad.body
            );
        }
        self.app.wake();
        Ok(deliveries.len())
    }

    /// Waits until the inbox has nothing pending and the intake log nothing
    /// left to merge (and the poller has had a chance to add final records),
    /// or fails after `timeout`.
    pub async fn wait_idle(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let store = self.app.store();
        let mut quiet_since: Option<Instant> = None;
        let settle = self
            .options
            .poll_interval
            .map_or(Duration::from_millis(200), |p| {
                p * 2 + Duration::from_millis(100)
            });
        loop {
            let pending = store.pending(Some(&self.options.tenant), 1)?.len();
            if pending == 0 && self.app.intake_log_unmoved() == 0 {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= settle {
                    return Ok(());
                }
            } else {
                quiet_since = None;
            }
            if started.elapsed() > timeout {
                anyhow::bail!("events still pending after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Uploads a module through the admin API; returns the answer's status
    /// and body.
    pub async fn upload_module(&self, bytes: Vec<u8>) -> anyhow::Result<(u16, serde_json::Value)> {
        let response = self
            .http
            .post(format!(
                "{}/admin/tenants/{}/modules",
                self.url(),
                self.options.tenant
            ))
            .bearer_auth(ADMIN_TOKEN)
            .body(bytes)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or_default()))
    }

    /// Stops the sidecar (the emulators stop when dropped).
    pub async fn shutdown(self) {
        self.app.shutdown().await;
    }
}

fn tenant_config(
    options: &StackOptions,
    id: &str,
    kustomer: &kustomer_emu::KustomerEmulator,
    ccai: &ccai_emu::CcaiEmulator,
) -> anyhow::Result<TenantConfig> {
    let creds = ccai.credentials();
    let mut k = kustomer::KustomerConfig::new(
        &kustomer.base_url(),
        kustomer::ApiKey::new(kustomer_emu::DEFAULT_API_KEY),
    )?;
    // Loopback: keep retries quick.
    k.retry.base_delay = Duration::from_millis(20);
    let mut c = ccai::CcaiConfig::new(
        url::Url::parse(&ccai.base_url()).context("ccai emulator url")?,
        ccai::ApiCredentials::ApiToken {
            subdomain: creds.subdomain.clone(),
            token: creds.api_token.clone().into(),
        },
        ccai::InboundBasic {
            username: EVENTS_USER.into(),
            password: EVENTS_PASSWORD.into(),
        },
        ccai::WebhookSecrets {
            primary: WEBHOOK_SECRET.into(),
            secondary: None,
        },
    );
    c.retry.base_delay = Duration::from_millis(20);
    Ok(TenantConfig {
        id: id.to_string(),
        module: Some(options.module.clone()),
        failure_policy: options.failure_policy,
        recording: true,
        recent_customer: Duration::from_secs(600),
        fields: StandardFields::with_prefix("ccai"),
        field_mapping: vec![t::FieldMapping {
            key: "loyalty_tier".into(),
            target: t::FieldTarget::Customer,
            name: "ccaiLoyaltyTierStr".into(),
        }],
        options: vec![],
        phone_region: crate::phone::Region::default(),
        kustomer: k,
        mirror: options.mirror.clone(),
        ccai: c,
        poll_interval: options.poll_interval,
        poll_start: chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .ok()
            .map(|d| d.with_timezone(&chrono::Utc)),
        status_sync: options.status_sync.clone(),
        click_to_call: options.click_to_call.clone(),
    })
}
