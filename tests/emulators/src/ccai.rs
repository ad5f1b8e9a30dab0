//! CCAI Platform API emulator and scenario player.
//!
//! [`start`] runs the Apps API (`/apps/api/v1`) and Manager API
//! (`/manager/api/v1`) subset the sidecar uses, on loopback, with HTTP Basic
//! auth in both documented credential styles (`subdomain:token` and
//! `company_key:company_secret`), integer ids, Manager API paging headers
//! (`total`, `per-page`, `link: <…>; rel="next"`), the documented 400
//! messages of `POST /calls`, system user statuses that an API call can
//! neither leave nor enter, a 10 requests/second limit (429), and an
//! `agent_activity_logs` entry for every status change. Menus, teams and
//! their trees; agents stamped from their creation; chats completed with the
//! documented message-time fields. `link` headers point at a configurable
//! public origin, and `tls` serves HTTPS with a certificate made at start.
//!
//! Control surface (no auth), also available as [`CcaiEmulator`] methods:
//!
//! | endpoint | does |
//! |---|---|
//! | `GET /__control/state` | agents, calls, chats, activity logs, faults, clock |
//! | `POST /__control/reset` | fresh tenant |
//! | `GET`/`DELETE /__control/requests` | recorded API requests (newest 20,000) |
//! | `GET /__control/stats` | `{requests_served}` since start or reset |
//! | `POST`/`DELETE /__control/faults` | `{status, count, retry_after?, path_contains?}` |
//! | `POST /__control/latency` | `{ms}` added to every API answer |
//! | `GET`/`POST /__control/clock` | `{set: iso}`, `{advance_ms}`, `{real: true}` |
//! | `POST /__control/agents/{id}/status` | `{status_id}`: set any status, system ones included |
//! | `POST /__control/calls`, `/__control/chats` | upsert a Manager API record |
//!
//! Files (no auth, like the platform's signed storage links): `GET
//! /media/{path}` serves deterministic bytes ([`media_file`]) with a content
//! type from the extension — the recordings, voicemails and Smart Action
//! photos the scenarios name.
//!
//! The scenario player ([`play`], [`scenarios`]) delivers contact-centre
//! sessions to a sidecar while [`CcaiEmulator::publish`] serves the same
//! sessions' final records.

mod api_call;
pub mod load;
mod player;
mod scenarios;
mod server;
mod state;

pub use player::{play, sign_webhook, signature_header, Delivery, PlayTarget};
#[cfg(feature = "strategies")]
pub use scenarios::strategies;
pub use scenarios::{
    call_final_record, call_updates, media_file, scenario_named, scenarios, stable_uuid,
    CallOutcome, CallSpec, Scenario, Step, Stream, MEDIA_BASE,
};
pub use state::{
    agents_created_at, default_statuses, Agent, Credentials, Fault, Menu, RecordedRequest, Team,
    UserStatus, LOCKED_SYSTEM_STATUSES,
};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::Value;
use server::Shared;
use state::State;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Emulator settings.
#[derive(Debug, Clone)]
pub struct CcaiConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    pub credentials: Credentials,
    /// Requests per second before 429; `None` turns throttling off.
    pub rate_limit: Option<u32>,
    /// Origin written into `link` pagination headers, e.g.
    /// `https://acme.uc1.ccaiplatform.com`; `None` = the emulator's own
    /// address (http, or https with `tls`).
    pub public_base_url: Option<String>,
    /// Serve HTTPS with a self-signed certificate generated at start (see
    /// [`CcaiEmulator::certificate_pem`]).
    pub tls: bool,
}

impl Default for CcaiConfig {
    fn default() -> Self {
        Self {
            port: 0,
            credentials: Credentials::default(),
            rate_limit: Some(10),
            public_base_url: None,
            tls: false,
        }
    }
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct CcaiEmulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    certificate_pem: Option<String>,
}

impl Drop for CcaiEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the emulator on `127.0.0.1:<config.port>`.
pub async fn start(config: CcaiConfig) -> anyhow::Result<CcaiEmulator> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", config.port))?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls { "https" } else { "http" };
    let shared = Arc::new(Shared::new(
        State::new(config.credentials, config.rate_limit),
        format!("{scheme}://{addr}"),
        config.public_base_url,
    ));
    let app = server::router(shared.clone());
    let (task, certificate_pem) = if config.tls {
        let cert = crate::tls::SelfSigned::generate()?;
        let tls = cert.listener(listener)?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(tls, app).await {
                tracing::error!(%error, "ccai emulator stopped");
            }
        });
        (task, Some(cert.cert_pem))
    } else {
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "ccai emulator stopped");
            }
        });
        (task, None)
    };
    Ok(CcaiEmulator {
        addr,
        shared,
        task,
        certificate_pem,
    })
}

impl CcaiEmulator {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (`https://` with TLS); the API bases are
    /// `/apps/api/v1` and `/manager/api/v1` under it.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The origin `link` headers point at (the configured public base URL,
    /// or [`Self::base_url`]).
    pub fn link_base_url(&self) -> String {
        self.shared.link_base.clone()
    }

    /// PEM of the self-signed certificate when serving TLS, for a client to
    /// trust.
    pub fn certificate_pem(&self) -> Option<String> {
        self.certificate_pem.clone()
    }

    pub fn credentials(&self) -> Credentials {
        self.shared.lock().credentials.clone()
    }

    /// Back to a fresh tenant (agents, statuses, no calls, no faults).
    pub fn reset(&self) {
        self.shared.lock().reset();
    }

    /// API requests seen so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// API requests answered since start or reset, including those the
    /// bounded log has dropped.
    pub fn requests_served(&self) -> u64 {
        self.shared.lock().served
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Queues a fault for the next matching API requests.
    pub fn inject_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Delay added to every API answer.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.shared.lock().rate_limit = per_second;
    }

    /// The emulator's clock (stamps status changes, created calls…).
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.lock().now()
    }

    /// Freezes the clock at `at`.
    pub fn set_now(&self, at: DateTime<Utc>) {
        self.shared.lock().clock.set(at);
    }

    pub fn advance(&self, by: Duration) {
        self.shared.lock().clock.advance(by);
    }

    pub fn agents(&self) -> Vec<Agent> {
        self.shared.lock().agents.clone()
    }

    pub fn agent(&self, id: u64) -> Option<Agent> {
        self.shared
            .lock()
            .agents
            .iter()
            .find(|a| a.id == id)
            .cloned()
    }

    pub fn add_agent(&self, agent: Agent) {
        let mut state = self.shared.lock();
        state.agents.retain(|a| a.id != agent.id);
        state.agents.push(agent);
    }

    /// Sets an agent's status as the platform would (e.g. In-call when a
    /// call connects); `None` if the agent or status is unknown.
    pub fn set_agent_status(&self, agent_id: u64, status_id: i64) -> Option<()> {
        self.shared.lock().force_status(agent_id, status_id)
    }

    pub fn activity_logs(&self) -> Vec<Value> {
        self.shared.lock().activity_logs.clone()
    }

    /// Inserts or replaces a Manager API call record (by `id`).
    pub fn upsert_call(&self, call: Value) {
        if let Some(id) = call["id"].as_u64() {
            self.shared.lock().calls.insert(id, call);
        }
    }

    /// Inserts or replaces a Manager API chat record (by `id`), filling the
    /// documented fields it lacks (first/last message times, response times).
    pub fn upsert_chat(&self, mut chat: Value) {
        if let Some(id) = chat["id"].as_u64() {
            state::complete_chat(&mut chat);
            self.shared.lock().chats.insert(id, chat);
        }
    }

    pub fn calls(&self) -> Vec<Value> {
        self.shared.lock().calls.values().cloned().collect()
    }

    pub fn chats(&self) -> Vec<Value> {
        self.shared.lock().chats.values().cloned().collect()
    }

    /// The URL this emulator serves a scenario file at.
    pub fn media_url(&self, path: &str) -> String {
        format!("{}/media/{}", self.base_url(), path.trim_start_matches('/'))
    }

    /// The scenario with its file URLs pointing at this emulator.
    pub fn localize(&self, scenario: &Scenario) -> Scenario {
        scenario.with_media_base(&self.base_url())
    }

    /// Serves the scenario's final records from the Manager API (file URLs
    /// pointing at this emulator).
    pub fn publish(&self, scenario: &Scenario) {
        let (calls, chats) = self.localize(scenario).final_records();
        calls.into_iter().for_each(|c| self.upsert_call(c));
        chats.into_iter().for_each(|c| self.upsert_chat(c));
    }

    /// Delivers the scenario to `target`, its file URLs pointing at this
    /// emulator, then publishes its final records.
    pub async fn play(
        &self,
        scenario: &Scenario,
        target: &PlayTarget,
    ) -> anyhow::Result<Vec<Delivery>> {
        let scenario = self.localize(scenario);
        // As on the platform, a session's final record appears in the
        // Manager API once its session events were sent, not before.
        let deliveries = play(&scenario, target).await?;
        self.publish(&scenario);
        Ok(deliveries)
    }
}

/// Command-line options of `switchboard-emulators ccai`.
#[derive(Debug, clap::Args)]
pub struct CliArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 8082)]
    pub port: u16,
    /// Subdomain (Basic user of the API-token style).
    #[arg(long, default_value = "acme")]
    pub subdomain: String,
    #[arg(long, env = "CCAI_API_TOKEN", default_value = "emulator-api-token")]
    pub api_token: String,
    #[arg(long, default_value = "emulator-company-key")]
    pub company_key: String,
    #[arg(
        long,
        env = "CCAI_COMPANY_SECRET",
        default_value = "emulator-company-secret"
    )]
    pub company_secret: String,
    /// Publish every scenario's final records at start.
    #[arg(long)]
    pub with_scenarios: bool,
    /// Origin of `link` pagination headers (e.g.
    /// `https://acme.uc1.ccaiplatform.com`); default: the emulator's own.
    #[arg(long)]
    pub public_base_url: Option<String>,
    /// Serve HTTPS with a self-signed certificate generated at start.
    #[arg(long)]
    pub tls: bool,
}

/// Command-line options of `switchboard-emulators scenario`.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// Scenario name, or `all`; `--list` shows the names.
    pub name: Option<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// The sidecar's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    #[arg(long, default_value = "acme")]
    pub tenant: String,
    /// Basic user the sidecar expects for session events.
    #[arg(long, default_value = "ccai")]
    pub username: String,
    #[arg(
        long,
        env = "SWITCHBOARD_CCAI_EVENTS_PASSWORD",
        default_value = "ccai-events-password"
    )]
    pub password: String,
    #[arg(
        long,
        env = "SWITCHBOARD_CCAI_WEBHOOK_PRIMARY",
        default_value = "primary-webhook-secret"
    )]
    pub primary_secret: String,
    #[arg(long, env = "SWITCHBOARD_CCAI_WEBHOOK_SECONDARY")]
    pub secondary_secret: Option<String>,
    /// A running CCAI emulator to publish the final records to
    /// (`POST /__control/calls|chats`); the scenarios' file URLs then point
    /// at its `/media/…`.
    #[arg(long)]
    pub emulator: Option<String>,
}

/// Runs the emulator until interrupted.
pub async fn run_cli(args: CliArgs) -> anyhow::Result<()> {
    let emulator = start(CcaiConfig {
        port: args.port,
        credentials: Credentials {
            subdomain: args.subdomain,
            api_token: args.api_token,
            company_key: args.company_key,
            company_secret: args.company_secret,
        },
        rate_limit: Some(10),
        public_base_url: args.public_base_url,
        tls: args.tls,
    })
    .await?;
    if let Some(pem) = emulator.certificate_pem() {
        println!("self-signed certificate (trust it in the client):\n{pem}");
    }
    if args.with_scenarios {
        scenarios().iter().for_each(|s| emulator.publish(s));
    }
    tracing::info!(url = %emulator.base_url(), "ccai emulator listening");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Plays one scenario or all of them against a sidecar.
pub async fn run_scenario_cli(args: ScenarioArgs) -> anyhow::Result<()> {
    if args.list || args.name.is_none() {
        for s in scenarios() {
            println!(
                "{:<28} {:<16} {}",
                s.name,
                s.spec_ids.join(","),
                s.description
            );
        }
        return Ok(());
    }
    let name = args.name.unwrap_or_default();
    let chosen: Vec<Scenario> = if name == "all" {
        scenarios()
    } else {
        vec![scenario_named(&name)
            .with_context(|| format!("unknown scenario {name:?}; try --list"))?]
    };
    let target = PlayTarget {
        base_url: args.target,
        tenant: args.tenant,
        username: args.username,
        password: args.password,
        webhook_primary_secret: args.primary_secret,
        webhook_secondary_secret: args.secondary_secret,
    };
    let client = reqwest::Client::new();
    for scenario in &chosen {
        let scenario = match &args.emulator {
            Some(emulator) => scenario.with_media_base(emulator),
            None => scenario.clone(),
        };
        let scenario = &scenario;
        if let Some(emulator) = &args.emulator {
            let (calls, chats) = scenario.final_records();
            for (kind, record) in calls
                .iter()
                .map(|c| ("calls", c))
                .chain(chats.iter().map(|c| ("chats", c)))
            {
                client
                    .post(format!(
                        "{}/__control/{kind}",
                        emulator.trim_end_matches('/')
                    ))
                    .json(record)
                    .send()
                    .await?
                    .error_for_status()?;
            }
        }
        let deliveries = play(scenario, &target).await?;
        println!(
            "{}: {} deliveries accepted",
            scenario.name,
            deliveries.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
