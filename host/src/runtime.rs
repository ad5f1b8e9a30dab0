//! The rule-module runtime: one wasmtime [`Engine`](wasmtime::Engine) per
//! process, modules compiled once and cached by content digest, and a fresh
//! sandboxed store for every call.
//!
//! A call runs with:
//! - an epoch deadline (wall clock, [`RuntimeConfig::deadline`]);
//! - a summing memory cap ([`RuntimeConfig::memory_limit`]);
//! - caps on the plan it returns and on what it logs;
//! - WASI linked with an empty context: no files, environment, network or
//!   stdio, and clocks and randomness fixed per call, so the same event and
//!   context always give the same plan (RM5).
//!
//! A trap, timeout or oversized output fails only that call (RM3).
#![deny(missing_docs)]

mod bindings;
mod engine;
mod error;
mod limits;
mod module;
pub mod registry;
mod state;

pub use bindings::latest::{MAX_VERSION, MIN_VERSION};
pub use bindings::{types, WORLD};
pub use engine::{PoolUsage, RuntimeConfig};
pub use error::{CallError, LoadError};
pub use module::{Compiled, LoadedModule, ModuleInfo};
pub use registry::{
    sample_inputs, DeployError, Deployed, Registry, Shadow, ShadowInfo, VersionInfo,
};

use engine::EngineHandle;
use limits::MemoryLimitExceeded;
use state::RuleState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use wasmtime::component::Linker;
use wasmtime::{Store, Trap};

/// Instantiation may take this many times the call deadline.
const INSTANTIATE_BUDGET: u32 = 20;

/// Who a call is for; used to tag guest logs and to seed the guest's clock
/// and randomness.
#[derive(Debug, Clone)]
pub struct CallMeta {
    /// Tenant id.
    pub tenant: String,
    /// Source event id (or status-change id).
    pub event_id: String,
    /// The time the guest's wall clock shows, as milliseconds since the Unix
    /// epoch. Zero unless set; rules should read `ctx.now` instead.
    pub clock_ms: u64,
}

impl CallMeta {
    /// Metadata for a call on behalf of `tenant` for event `event_id`.
    pub fn new(tenant: impl Into<String>, event_id: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            event_id: event_id.into(),
            clock_ms: 0,
        }
    }

    /// Sets the wall-clock time the guest sees.
    pub fn with_clock_ms(mut self, clock_ms: u64) -> Self {
        self.clock_ms = clock_ms;
        self
    }
}

/// The runtime: engine, linker and compiled-module cache. Cheap to share
/// behind an `Arc`; every method takes `&self`.
pub struct Runtime {
    engine: EngineHandle,
    linker: Linker<RuleState>,
    config: RuntimeConfig,
    /// Compiled modules by SHA-256 of their bytes, while anything (a live
    /// version, the rollback window, a call in flight) still holds them: a
    /// module nobody holds is dropped, its code unmapped. A `std` mutex: it
    /// is held only for map lookups and inserts, never across compilation
    /// or a call.
    cache: Mutex<HashMap<String, Weak<LoadedModule>>>,
    /// Compiled modules kept on disk between runs, when configured.
    disk: Option<module::DiskCache>,
    /// Calls in flight on the blocking pool (`max_concurrent_calls`).
    calls: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// The pooling allocator's slots in use and kept warm, for the metrics;
    /// `None` when the engine runs without the pool.
    pub fn pool_usage(&self) -> Option<PoolUsage> {
        self.engine.pool()
    }

    /// Builds the engine (pooling allocator, epoch interruption, no
    /// component-model concurrency) and the linker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let engine = EngineHandle::new(&config)?;
        let linker = state::linker(engine.engine())?;
        Ok(Self {
            engine,
            linker,
            calls: tokio::sync::Semaphore::new(
                usize::try_from(config.max_concurrent_calls.max(1)).unwrap_or(1),
            ),
            config,
            cache: Mutex::new(HashMap::new()),
            disk: None,
        })
    }

    /// Keeps compiled modules in `dir`, by digest and engine configuration,
    /// so a module is compiled once, not at every start or command.
    pub fn with_disk_cache(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.disk = Some(module::DiskCache::new(dir.into(), self.engine.engine()));
        self
    }

    /// The limits this runtime applies to every call.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Validates and compiles a module, or returns the cached one with the
    /// same digest. Anything that is not a component exporting a supported
    /// world is refused with a reason a person can act on.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedModule>, LoadError> {
        let digest = module::digest(bytes);
        if let Some(hit) = self.cache_lock().get(&digest).and_then(Weak::upgrade) {
            return Ok(hit);
        }
        let loaded = Arc::new(module::compile(
            self.engine.engine(),
            &self.linker,
            bytes,
            digest,
            self.disk.as_ref(),
        )?);
        let mut cache = self.cache_lock();
        cache.retain(|_, module| module.strong_count() > 0);
        cache.insert(loaded.info.digest.clone(), Arc::downgrade(&loaded));
        Ok(loaded)
    }

    /// Number of compiled modules in memory (held by a registry or a caller).
    pub fn cached_modules(&self) -> usize {
        self.cache_lock()
            .values()
            .filter(|module| module.strong_count() > 0)
            .count()
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<LoadedModule>>> {
        // A poisoned cache only means a panic elsewhere while holding it; the
        // map itself is always consistent.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the module's `on-session-event` in a fresh sandbox.
    pub fn on_session_event(
        &self,
        module: &LoadedModule,
        meta: &CallMeta,
        event: &types::SessionEvent,
        ctx: &types::Context,
    ) -> Result<types::Plan, CallError> {
        let mut store = self.store(module, meta);
        let rule = module.instantiate(&mut store)?;
        self.arm_deadline(&mut store);
        let started = Instant::now();
        let result = rule.on_session_event(&mut store, event, ctx);
        let outcome = finish(result, &mut store, started)?;
        let plan = outcome.map_err(|e| CallError::Rule {
            code: e.code,
            message: e.message,
        })?;
        limits::check_plan(&plan, &self.config)?;
        Ok(plan)
    }

    /// Runs the module's `on-status-change` in a fresh sandbox.
    pub fn on_status_change(
        &self,
        module: &LoadedModule,
        meta: &CallMeta,
        change: &types::StatusChange,
        ctx: &types::StatusContext,
    ) -> Result<types::StatusDecision, CallError> {
        let mut store = self.store(module, meta);
        let rule = module.instantiate(&mut store)?;
        self.arm_deadline(&mut store);
        let started = Instant::now();
        let result = rule.on_status_change(&mut store, change, ctx);
        let decision = finish(result, &mut store, started)?;
        limits::check_decision(&decision, &self.config)?;
        Ok(decision)
    }

    /// Calls `on-session-event` `iterations` times on ONE instance and returns
    /// the total time of the calls alone. Only for measuring the warm-call
    /// cost against the fresh-instance-per-event path the service uses; the
    /// deadline covers the whole loop.
    #[doc(hidden)]
    pub fn bench_warm_session_calls(
        &self,
        module: &LoadedModule,
        meta: &CallMeta,
        event: &types::SessionEvent,
        ctx: &types::Context,
        iterations: u32,
    ) -> Result<std::time::Duration, CallError> {
        let mut store = self.store(module, meta);
        store.set_epoch_deadline(u64::MAX / 2);
        let rule = module.instantiate(&mut store)?;
        let started = Instant::now();
        for _ in 0..iterations {
            let result = rule.on_session_event(&mut store, event, ctx);
            let plan = classify(result, &store, started, String::new())?;
            std::hint::black_box(plan.ok());
        }
        Ok(started.elapsed())
    }

    /// [`Self::on_session_event`] on the blocking pool, off the async
    /// threads, at most `max_concurrent_calls` at once.
    pub async fn call_session_event(
        self: &Arc<Self>,
        module: Arc<LoadedModule>,
        meta: CallMeta,
        event: types::SessionEvent,
        ctx: types::Context,
    ) -> Result<types::Plan, CallError> {
        self.run_blocking(move |rt| rt.on_session_event(&module, &meta, &event, &ctx))
            .await
    }

    /// [`Self::on_status_change`] on the blocking pool, off the async
    /// threads, at most `max_concurrent_calls` at once.
    pub async fn call_status_change(
        self: &Arc<Self>,
        module: Arc<LoadedModule>,
        meta: CallMeta,
        change: types::StatusChange,
        ctx: types::StatusContext,
    ) -> Result<types::StatusDecision, CallError> {
        self.run_blocking(move |rt| rt.on_status_change(&module, &meta, &change, &ctx))
            .await
    }

    /// Runs a call off the async worker threads, on tokio's blocking pool, at
    /// most `max_concurrent_calls` at once (the size of the instance pool).
    /// A guest's WASI calls (stdio, a refused socket) block the thread they
    /// run on, and a busy module must not hold up the intake or other
    /// tenants' I/O. A host panic while running the call is caught and
    /// becomes [`CallError::Host`] for that call only.
    async fn run_blocking<R: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce(&Runtime) -> Result<R, CallError> + Send + 'static,
    ) -> Result<R, CallError> {
        let _permit = self
            .calls
            .acquire()
            .await
            .map_err(|_| CallError::Host("the runtime is shutting down".into()))?;
        let runtime = self.clone();
        match tokio::task::spawn_blocking(move || call(&runtime)).await {
            Ok(result) => result,
            Err(joined) => {
                let reason = match joined.try_into_panic() {
                    Ok(payload) => payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                        .unwrap_or_else(|| "panic".into()),
                    Err(e) => e.to_string(),
                };
                tracing::error!(%reason, "host panicked while running a rule");
                Err(CallError::Host(reason))
            }
        }
    }

    /// Starts the call's deadline. Set after instantiation too, so the
    /// budget covers the guest's own execution and not the host's setup.
    fn arm_deadline(&self, store: &mut Store<RuleState>) {
        // +1: the current tick is already partly spent.
        store.set_epoch_deadline(self.engine.deadline_ticks(self.config.deadline));
    }

    fn store(&self, module: &LoadedModule, meta: &CallMeta) -> Store<RuleState> {
        let state = RuleState::new(
            &self.config,
            &module.info.digest,
            meta,
            self.engine.ticking(),
        );
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|s| &mut s.limits);
        // Instantiation gets a budget of its own, generous because it is the
        // host's setup more than the guest's work; the call's deadline is
        // armed once it is done.
        store.set_epoch_deadline(
            self.engine
                .deadline_ticks(self.config.deadline.saturating_mul(INSTANTIATE_BUDGET)),
        );
        store.epoch_deadline_trap();
        store
    }
}

/// Maps the outcome of a guest call to the runtime's error vocabulary.
fn classify<T>(
    result: wasmtime::Result<T>,
    store: &Store<RuleState>,
    started: Instant,
    stderr: String,
) -> Result<T, CallError> {
    let error = match result {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let limits = &store.data().limits;
    if error.downcast_ref::<MemoryLimitExceeded>().is_some() || limits.exceeded() {
        return Err(CallError::MemoryLimit {
            limit: limits.limit(),
        });
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Err(CallError::Timeout {
            deadline_ms: store.data().deadline_ms,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }),
        Some(Trap::UnreachableCodeReached) => Err(CallError::Panic {
            message: panic_message(&stderr),
        }),
        Some(trap) => Err(CallError::Trap {
            trap: Some(*trap),
            message: format!("{error:#}"),
        }),
        None => Err(CallError::Trap {
            trap: None,
            message: format!("{error:#}"),
        }),
    }
}

/// Hands the guest's output to its log, then classifies the result.
fn finish<T>(
    result: wasmtime::Result<T>,
    store: &mut Store<RuleState>,
    started: Instant,
) -> Result<T, CallError> {
    let stderr = store.data_mut().drain_output();
    classify(result, store, started, stderr)
}

/// The message of a Rust guest's panic from its stderr (`panicked at
/// file:line:col:` then the message), else the last lines written.
fn panic_message(stderr: &str) -> String {
    const MAX: usize = 1024;
    let text = match stderr.find("panicked at ") {
        Some(at) => {
            let rest = &stderr[at..];
            rest.split_once(":\n").map_or(rest, |(_, message)| message)
        }
        None => stderr,
    };
    let mut message = text
        .lines()
        .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string();
    if message.len() > MAX {
        let mut cut = MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}
