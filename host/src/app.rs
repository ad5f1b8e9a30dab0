//! The running service: builds every part from a [`Config`] and runs it until
//! shut down (`switchboard serve`, the demo and the end-to-end tests).
use crate::click_to_call::{self, ClickToCall};
use crate::config::Config;
use crate::http::{self, AppState};
use crate::intake::log::{IntakeLog, Mover};
use crate::intake::{self, IntakeConfig, IntakeState, Poller, TenantIntake};
use crate::pipeline::Pipeline;
use crate::runtime::{Registry, Runtime};
use crate::status_sync::{self, StatusSync};
use crate::store::Store;
use crate::tenant::{Tenant, Tenants};
use anyhow::Context as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The process-wide Prometheus recorder (a global: installed once even when
/// several services run in one process, as in tests).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Latencies as histograms (aggregatable across replicas), with
            // buckets from a fast rule call to a slow Kustomer round trip.
            // `set_buckets` refuses only an empty list.
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::debug!("a metrics recorder was already installed");
            }
            describe_metrics();
            metrics::gauge!("switchboard_build_info", "version" => env!("CARGO_PKG_VERSION"), "wit" => "switchboard:rules@0.1.0")
                .set(1.0);
            handle
        })
        .clone()
}

/// How long a Manager API poll waits for the intake log to merge the bodies
/// it acknowledged before the poll, before putting the poll off (PF6).
const POLL_WAITS_FOR_LOG: std::time::Duration = std::time::Duration::from_secs(10);

/// Seconds: 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The HELP text of every metric family the service exports.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "switchboard_events_total",
        "Events handled, by tenant and outcome (applied, failed, retry, dead_letter)."
    );
    describe_histogram!(
        "switchboard_event_seconds",
        Unit::Seconds,
        "Time to handle one event: context, decision and Kustomer writes."
    );
    describe_histogram!(
        "switchboard_intake_seconds",
        Unit::Seconds,
        "Time to answer one intake request (session events, chat webhooks), by route and status: body read, events stored and committed."
    );
    describe_gauge!(
        "switchboard_intake_log_unmoved_bytes",
        Unit::Bytes,
        "Bytes in the intake log not merged into the store yet (server.intake_log)."
    );
    describe_counter!(
        "switchboard_intake_log_dropped_bytes_total",
        Unit::Bytes,
        "Bytes of the intake log skipped as a record cut short (a write never answered 2xx) or corrupt."
    );
    describe_histogram!(
        "switchboard_rule_seconds",
        Unit::Seconds,
        "Time of one rule-module decision, instantiation included."
    );
    describe_counter!(
        "switchboard_rule_failures_total",
        "Rule-module calls that failed, by tenant and kind (timeout, panic, memory_limit, ...)."
    );
    describe_counter!(
        "switchboard_rule_fallbacks_total",
        "Events decided by the built-in default rules because the module failed (failure_policy = default-rules)."
    );
    describe_counter!(
        "switchboard_dead_letters_total",
        "Events dead-lettered after failing transiently for longer than max_event_age."
    );
    describe_counter!(
        "switchboard_crm_actions_total",
        "Plan actions carried out in Kustomer, by tenant and action."
    );
    describe_counter!(
        "switchboard_api_requests_total",
        "HTTP exchanges with Kustomer and CCAI Platform, by api, operation and status (or error)."
    );
    describe_counter!(
        "switchboard_api_retries_total",
        "Retries of platform requests, by api, operation and reason (transient, rate_limited)."
    );
    describe_gauge!(
        "switchboard_module_version",
        "The live rule-module version of each tenant, labelled with its digest."
    );
    describe_counter!(
        "switchboard_status_decisions_total",
        "Agent status-sync decisions, by tenant and decision."
    );
    describe_counter!(
        "switchboard_status_sync_errors_total",
        "Agent status changes that could not be decided or carried out."
    );
    describe_counter!(
        "switchboard_kustomer_webhooks_total",
        "Signed Kustomer webhook deliveries received, by tenant and whether they were recorded in the mirror."
    );
    describe_counter!(
        "switchboard_shadow_decisions_total",
        "Decisions of tenants' shadow modules, by tenant and outcome (same, different, error, skipped); never carried out."
    );
    describe_gauge!(
        "switchboard_build_info",
        "Always 1; labelled with the service's version and the WIT contract its modules implement."
    );
    describe_gauge!(
        "switchboard_undeclared_fields",
        "Custom attributes a tenant writes that its Kustomer has no metadata for (run `fields provision`)."
    );
    describe_gauge!(
        "switchboard_pool_component_instances",
        "Rule-module component instances the pooling allocator holds now (calls under way)."
    );
    describe_gauge!(
        "switchboard_pool_core_instances",
        "Core module instances the pooling allocator holds now."
    );
    describe_gauge!(
        "switchboard_pool_memories",
        "Linear memories the pooling allocator holds now."
    );
    describe_gauge!(
        "switchboard_pool_tables",
        "Tables the pooling allocator holds now."
    );
    describe_gauge!(
        "switchboard_pool_unused_warm_memories",
        "Memory slots not in use that keep a previous instance's mappings for a quick reuse."
    );
    describe_gauge!(
        "switchboard_pool_unused_memory_bytes_resident",
        Unit::Bytes,
        "Bytes kept resident in memory slots not in use."
    );
    describe_gauge!(
        "switchboard_http_connections",
        "Inbound HTTP connections open now."
    );
    describe_counter!(
        "switchboard_http_connections_closed_total",
        "Inbound connections closed by a timeout, by reason (header_read, idle, request)."
    );
}

/// Counters a dashboard or alert reads from the start, registered at zero
/// for each tenant so a missing series never reads as "no data".
fn register_tenant_metrics(tenants: &Tenants) {
    for tenant in tenants.iter() {
        let id = tenant.id().to_string();
        for outcome in ["applied", "failed", "retry", "dead_letter"] {
            metrics::counter!("switchboard_events_total", "tenant" => id.clone(), "outcome" => outcome)
                .increment(0);
        }
        metrics::counter!("switchboard_dead_letters_total", "tenant" => id.clone()).increment(0);
        metrics::counter!("switchboard_rule_fallbacks_total", "tenant" => id).increment(0);
    }
}

/// Checks every tenant's field declarations (KU5).
async fn check_fields(checks: &crate::fields::FieldChecks, tenants: &Tenants) {
    for tenant in tenants.iter() {
        let declared =
            crate::fields::Declared::of(&tenant.config.fields, &tenant.config.field_mapping);
        checks.check(tenant.id(), &declared, &tenant.kustomer).await;
    }
}

/// Checks at once, then every [`crate::fields::FieldChecks::EVERY`], until
/// `shutdown`.
async fn check_fields_every(
    checks: Arc<crate::fields::FieldChecks>,
    tenants: Tenants,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        check_fields(&checks, &tenants).await;
        tokio::select! {
            _ = tokio::time::sleep(crate::fields::FieldChecks::EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Merges each call click-to-call places into its session's ledger, so its
/// conversation is made at once (TC3, TU2) and CCAI Platform's own updates
/// of the call add to it.
fn placements(
    store: &Store,
    tenants: &Tenants,
    doorbell: Arc<crate::pipeline::Doorbell>,
) -> click_to_call::OnPlaced {
    let (store, tenants) = (store.clone(), tenants.clone());
    Arc::new(move |placed: click_to_call::Placed| {
        let region = tenants
            .get(&placed.tenant)
            .map(|t| t.config.phone_region)
            .unwrap_or_default();
        let update = intake::normalize::update_from_placement(
            placed.call_id,
            &placed.number,
            &placed.agent,
            placed.at,
        );
        match intake::ledger::reconcile(
            &store,
            &placed.tenant,
            region,
            "click-to-call",
            vec![update],
            None,
        ) {
            Ok(stored) => stored
                .events
                .iter()
                .for_each(|e| doorbell.ring(&e.tenant, &e.customer_key)),
            // The platform reports the call anyway; it is recorded then.
            Err(error) => {
                tracing::warn!(tenant = %placed.tenant, call_id = placed.call_id, %error, "the placed call could not be recorded yet")
            }
        }
    })
}

/// A running service.
pub struct App {
    addr: SocketAddr,
    store: Store,
    registry: Arc<Registry>,
    tenants: Tenants,
    pipeline: Arc<Pipeline>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    field_checks: Arc<crate::fields::FieldChecks>,
    /// Whether the rule modules are loaded.
    loading: Arc<http::ModuleLoading>,
    /// The intake log, while one is open (PF6).
    intake_log: Option<IntakeLog>,
    /// The pipeline's own threads; declared last, so they stop after the
    /// tasks above are gone.
    workers: crate::pipeline::Workers,
}

impl App {
    /// Opens the store, restores or deploys every tenant's module, starts the
    /// pipeline, the pollers, the module watcher and the HTTP server.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
            format!(
                "cannot create data_dir {}",
                config.server.data_dir.display()
            )
        })?;
        let store = Store::from_config(&config.store, &config.server.data_dir)?;
        tracing::info!(
            backend = store.backend_name(),
            replica = store.replica(),
            "store open"
        );
        // Compiled modules are kept beside the store: a start reads them
        // back instead of compiling every module again.
        let runtime = Arc::new(
            Runtime::new(config.runtime.clone())?
                .with_disk_cache(config.server.data_dir.join("compiled")),
        );
        // Modules are recorded in the store replicas share, else beside
        // the SQLite file.
        let registry = Arc::new(match store.postgres() {
            Some(shared) => Registry::with_modules(
                runtime,
                Some(shared.clone() as Arc<dyn crate::runtime::registry::ModuleStore>),
            ),
            None => Registry::new(runtime, Some(config.server.data_dir.join("modules"))),
        });
        // A module deployed, rolled back or shadowed on another replica goes
        // live here as soon as it is announced.
        let module_listener = match store.postgres() {
            Some(shared) => Some(follow_module_changes(shared, registry.clone())?),
            None => None,
        };
        // One handle per tenant (config, clients, directory), borrowed by
        // every part below.
        let tenants = Tenants::build(&config.tenants)?;
        let metrics = prometheus();
        register_tenant_metrics(&tenants);
        let pipeline = Arc::new(Pipeline::new(
            store.clone(),
            registry.clone(),
            tenants.clone(),
            config.pipeline.clone(),
        ));
        let workers = crate::pipeline::Workers::start(&config.pipeline)
            .context("cannot start the pipeline's threads")?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let field_checks = Arc::new(crate::fields::FieldChecks::default());
        tasks.spawn(check_fields_every(
            field_checks.clone(),
            tenants.clone(),
            shutdown_rx.clone(),
        ));

        for tenant in tenants.iter() {
            // The agent directory, read once: assignments then cost no lookup.
            let loading = tenant.clone();
            tasks.spawn(async move {
                match loading.load_users().await {
                    Ok(n) => tracing::info!(tenant = %loading.id(), users = n, "Kustomer users read"),
                    Err(error) => tracing::warn!(tenant = %loading.id(), %error, "Kustomer users not read; each is looked up on first use"),
                }
            });
        }

        // Agent status sync (SPEC §6) and click-to-call (SPEC §7), for the
        // tenants that configure them.
        let admin_token = config.server.admin_token.map(Arc::new);
        let status_sync = Arc::new(StatusSync::new(
            &tenants,
            store.clone(),
            registry.clone(),
            admin_token.clone(),
            pipeline.doorbell(),
        ));
        pipeline.set_status_changes(status_sync.clone());
        status_sync.spawn(&mut tasks, shutdown_rx.clone());
        let click_to_call = Arc::new(
            ClickToCall::new(tenants.clone(), admin_token.clone()).with_on_placed(placements(
                &store,
                &tenants,
                pipeline.doorbell(),
            )),
        );

        let loading = Arc::new(http::ModuleLoading::default());
        let intake_state = IntakeState::new(
            store.clone(),
            tenants
                .iter()
                .map(|t| (t.config.id.clone(), TenantIntake::from(&**t)))
                .collect(),
            IntakeConfig {
                max_body_bytes: config.server.max_body_bytes,
                ..IntakeConfig::default()
            },
        )
        .with_doorbell(pipeline.doorbell());
        // The intake log (PF6): when configured, and also when it was and
        // left bodies not merged yet, so that turning it off loses nothing.
        let log_dir = config.server.data_dir.join("intake-log");
        let mut intake_log = None;
        let intake_state = if config.server.intake_log.is_some() || log_dir.is_dir() {
            let limit = config.server.intake_log.unwrap_or(u64::MAX);
            let log = IntakeLog::open(&log_dir, limit).context("cannot open the intake log")?;
            intake_log = Some(log.clone());
            let mover = Mover::new(log.clone(), intake_state.clone())
                .context("cannot read the intake log's position")?;
            if log.unmoved() > 0 {
                tracing::info!(
                    bytes = log.unmoved(),
                    "the intake log holds bodies not merged yet; merging them"
                );
            }
            // Turned off, the log is drained, then its directory removed.
            let drained = config.server.intake_log.is_none().then(|| log_dir.clone());
            tasks.spawn(move_intake_log(
                mover,
                drained,
                workers.handle().clone(),
                shutdown_rx.clone(),
            ));
            match config.server.intake_log {
                Some(_) => intake_state.with_log(log),
                None => intake_state,
            }
        } else {
            intake_state
        };
        for tenant in tenants.iter() {
            let t = &tenant.config;
            if let Some(interval) = t.poll_interval {
                let start = t.poll_start.unwrap_or_else(chrono::Utc::now);
                let mut poller =
                    Poller::new(t.id.clone(), tenant.ccai.clone(), store.clone(), start)
                        .with_phone_region(t.phone_region)
                        .with_doorbell(pipeline.doorbell());
                if let Some(log) = &intake_log {
                    poller = poller.with_intake_log(log.clone(), POLL_WAITS_FOR_LOG);
                }
                tasks.spawn(poller.run(interval, shutdown_rx.clone()));
            }
        }
        let state = AppState {
            store: store.clone(),
            registry: registry.clone(),
            tenants: tenants.clone(),
            admin_token,
            metrics,
            doorbell: pipeline.doorbell(),
            field_checks: field_checks.clone(),
            loading: loading.clone(),
        };
        // What a browser calls (the Kustomer app, the agent adapter) gets
        // CORS for the configured origins.
        let (agent, agent_api) = http::screen_pop_router(state.clone())
            .merge(status_sync::router(status_sync))
            .merge(click_to_call::router(click_to_call))
            .split_for_parts();
        let agent = match http::cors(&config.server.cors_origins) {
            // The 405 answer is set before the layer, so that a preflight
            // (OPTIONS) reaches CORS instead of the outer router's 405.
            Some(cors) => agent
                .method_not_allowed_fallback(crate::web::wrong_method)
                .layer(cors),
            None => agent,
        };
        let published = http::openapi::Published::default();
        let (router, mut api) = http::router(state)
            .merge(intake::router(intake_state))
            .merge(crate::mirror::router(store.clone(), tenants.clone()))
            .merge(http::openapi::router(published.clone()))
            .split_for_parts();
        api.merge(agent_api);
        http::openapi::publish(&published, api);
        let router = router
            .merge(agent)
            // Every error answer is JSON, the framework's own included.
            .fallback(crate::web::no_route)
            .method_not_allowed_fallback(crate::web::wrong_method)
            .layer(axum::middleware::from_fn(crate::web::json_errors))
            .layer(tower_http::trace::TraceLayer::new_for_http());
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let addr = listener.local_addr()?;
        let mut stop = shutdown_rx.clone();
        tasks.spawn(http::server::serve(
            listener,
            router,
            config.server.connections.clone(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ));
        tracing::info!(
            %addr,
            tenants = config.tenants.len(),
            intake_log = config.server.intake_log.is_some(),
            "switchboard listening"
        );

        // The port is open; rule modules load now (read back from the
        // compiled-module cache, or compiled), `/readyz` answering 503 until
        // they are. Events are accepted meanwhile and applied once the
        // pipeline starts, after the modules.
        tasks.spawn(load_then_run(
            registry.clone(),
            config
                .tenants
                .iter()
                .map(|t| (t.id.clone(), t.module.clone()))
                .collect(),
            config.server.modules_dir.clone(),
            loading.clone(),
            (pipeline.clone(), workers.handle().clone()),
            shutdown_rx,
            module_listener,
        ));
        Ok(Self {
            addr,
            store,
            registry,
            tenants,
            pipeline,
            shutdown,
            tasks,
            field_checks,
            loading,
            intake_log,
            workers,
        })
    }

    /// Waits until the rule modules are loaded (or failed to); `/readyz`
    /// tells which.
    pub async fn modules_loaded(&self) {
        self.loading.wait().await;
    }

    /// Checks again now which declared custom attributes each tenant's
    /// Kustomer lacks (otherwise every [`crate::fields::FieldChecks::EVERY`]);
    /// `/readyz` reports the result.
    pub async fn check_fields(&self) {
        check_fields(&self.field_checks, &self.tenants).await;
    }

    /// The address the HTTP server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The durable store (inbox, outcomes, links, status-sync state).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The rule-module registry (live versions, history, hot swap).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// A configured tenant.
    pub fn tenant(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants.get(id)
    }

    /// Bytes in the intake log not merged into the store yet (PF6); 0 without
    /// a log. An append counts once the mover has looked at it.
    pub fn intake_log_unmoved(&self) -> u64 {
        self.intake_log.as_ref().map_or(0, IntakeLog::unmoved)
    }

    /// Tells the pipeline new events are in the inbox.
    pub fn wake(&self) {
        self.pipeline.wake();
    }

    /// Stops accepting requests, lets in-flight work finish and waits for
    /// every task.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        // Every task is done, the pipeline's included: its threads go.
        drop(self.workers);
    }
}

/// Merges the intake log into the store until shutdown, then once more
/// (PF6), on a blocking thread of the pipeline's runtime: at the pipeline's
/// priority, below the HTTP server's, like the applying it feeds (PF4).
/// With `drained` (the log turned off), it stops once everything is merged
/// and removes that directory, so the next start runs no mover.
async fn move_intake_log(
    mover: Mover,
    drained: Option<std::path::PathBuf>,
    pipeline: tokio::runtime::Handle,
    mut shutdown: watch::Receiver<bool>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (log, flag, runtime) = (mover.log().clone(), stop.clone(), pipeline.clone());
    let drain = drained.is_some();
    let mut moving = pipeline.spawn_blocking(move || mover.run(&flag, &runtime, drain));
    tokio::select! {
        _ = &mut moving => {
            if let Some(dir) = drained {
                drop(log);
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => tracing::info!(
                        dir = %dir.display(),
                        "the intake log is merged and turned off; its directory is removed"
                    ),
                    Err(error) => tracing::warn!(
                        dir = %dir.display(),
                        %error,
                        "cannot remove the merged intake log's directory"
                    ),
                }
            }
            return;
        }
        _ = shutdown.wait_for(|s| *s) => {}
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    log.wake();
    let _ = moving.await;
}

/// Restores every tenant's live module (or deploys its configured file),
/// starts watching the module directory, then runs the pipeline until
/// shutdown. What could not be loaded is reported by `/readyz`.
async fn load_then_run(
    registry: Arc<Registry>,
    modules: Vec<(String, Option<std::path::PathBuf>)>,
    modules_dir: Option<std::path::PathBuf>,
    loading: Arc<http::ModuleLoading>,
    (pipeline, workers): (Arc<Pipeline>, tokio::runtime::Handle),
    shutdown: watch::Receiver<bool>,
    module_listener: Option<crate::store::postgres::Listener>,
) {
    let started = std::time::Instant::now();
    let tenants: Vec<String> = modules.iter().map(|(t, _)| t.clone()).collect();
    // Compiling and smoke-testing modules is blocking work (and a module's
    // WASI calls must not run on the async workers).
    let blocking = registry.clone();
    let mut problems = tokio::task::spawn_blocking(move || {
        crate::phone::warm();
        let restored = blocking.restore();
        if !restored.is_empty() {
            tracing::info!(?restored, "rule modules restored");
        }
        let mut problems = Vec::new();
        for (tenant, module) in &modules {
            if blocking.live(tenant).is_some() {
                continue;
            }
            if let Some(path) = module {
                if let Err(e) = deploy_file(&blocking, tenant, path) {
                    problems.push(format!("tenant `{tenant}`: {e:#}"));
                }
            }
        }
        problems
    })
    .await
    .unwrap_or_else(|e| vec![format!("loading rule modules failed: {e}")]);
    let watcher = match modules_dir {
        Some(dir) => {
            let registry = registry.clone();
            // Deploys the modules already there: blocking work.
            match tokio::task::spawn_blocking(move || watch_modules(&dir, registry, tenants)).await
            {
                Ok(Ok(watcher)) => Some(watcher),
                Ok(Err(e)) => {
                    problems.push(format!("module directory: {e:#}"));
                    None
                }
                Err(e) => {
                    problems.push(format!("module directory: {e}"));
                    None
                }
            }
        }
        None => None,
    };
    for problem in &problems {
        tracing::error!(%problem, "rule module not loaded");
    }
    tracing::info!(
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        cached = registry.runtime().cached_modules(),
        "rule modules loaded"
    );
    loading.done(problems);
    // On the pipeline's own threads (each customer's run catches its own
    // panics).
    if let Err(error) = workers.spawn(pipeline.run(shutdown)).await {
        tracing::error!(%error, "the pipeline stopped");
    }
    // Watches the module directory, and listens for module changes of
    // other replicas, for as long as the pipeline runs.
    drop(watcher);
    drop(module_listener);
}

/// Brings a tenant's modules up to date whenever another replica announces
/// a change (every tenant after a lost connection, when announcements may
/// have been missed). Compiling is blocking work: it runs on the
/// listener's own thread.
fn follow_module_changes(
    shared: &Arc<crate::store::Postgres>,
    registry: Arc<Registry>,
) -> anyhow::Result<crate::store::postgres::Listener> {
    let listener = shared.listen(crate::store::postgres::MODULES_CHANNEL, move |tenant| {
        let Some(tenant) = tenant else {
            registry.restore();
            return;
        };
        if let Err(error) = registry.sync_tenant(tenant) {
            tracing::error!(tenant, error = %format!("{error:#}"), "rule module change not applied");
        }
    })?;
    Ok(listener)
}

fn deploy_file(registry: &Registry, tenant: &str, path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("tenant `{tenant}`: cannot read module {}", path.display()))?;
    registry
        .deploy(tenant, &bytes, &path.display().to_string())
        .with_context(|| format!("tenant `{tenant}`: module {}", path.display()))?;
    Ok(())
}

/// Watches `dir` for `<tenant>.wasm`: a new or rewritten file is deployed
/// (validated first; a refused file leaves the live version in place).
fn watch_modules(
    dir: &Path,
    registry: Arc<Registry>,
    tenants: Vec<String>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create modules_dir {}", dir.display()))?;
    // A module already in the directory goes live at start only if it is
    // new: one deployed before (by this directory or otherwise) may have
    // been replaced or rolled back by an operator since, and that choice
    // stands until the file is written again.
    for tenant in &tenants {
        let path = dir.join(format!("{tenant}.wasm"));
        if !path.exists() {
            continue;
        }
        let known = std::fs::read(&path)
            .ok()
            .and_then(|bytes| registry.known_version(tenant, &bytes));
        if let Some(known) = known {
            let live = registry.live(tenant).map(|d| d.info.version);
            if live != Some(known.version) {
                tracing::info!(
                    tenant,
                    file_version = known.version,
                    live_version = ?live,
                    path = %path.display(),
                    "the watched module is an earlier version; the live one, chosen since, stays"
                );
            }
            continue;
        }
        if let Err(e) = deploy_file(&registry, tenant, &path) {
            tracing::warn!(tenant, error = %e, "module in watched directory refused");
        }
    }
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_)) {
            return;
        }
        for path in event.paths {
            let Some(tenant) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_none_or(|e| e != "wasm") || !tenants.iter().any(|t| t == tenant)
            {
                continue;
            }
            // A writer may still be mid-file; a partial module fails
            // validation and the next write event retries.
            match std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| {
                    registry
                        .deploy(tenant, &bytes, &path.display().to_string())
                        .map_err(anyhow::Error::from)
                }) {
                Ok(info) => tracing::info!(
                    tenant,
                    version = info.version,
                    "module from watched directory is live"
                ),
                Err(e) => {
                    tracing::warn!(tenant, error = %e, path = %path.display(), "module from watched directory refused")
                }
            }
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
