//! The one process-wide engine and its epoch ticker.
use super::error::LoadError;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The pooling allocator's slots in use and kept warm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolUsage {
    /// Component instances allocated now (calls under way).
    pub component_instances: u64,
    /// Core module instances allocated now.
    pub core_instances: u64,
    /// Linear memories allocated now.
    pub memories: u64,
    /// Tables allocated now.
    pub tables: u64,
    /// Memory slots not in use that keep a previous instance's mappings.
    pub unused_warm_memories: u64,
    /// Bytes kept resident in unused memory slots.
    pub unused_memory_bytes_resident: u64,
}

/// Limits and sizing of the runtime. Every field has a conservative default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Wall-clock budget of one call (epoch interruption).
    #[serde(with = "millis")]
    pub deadline: Duration,
    /// Epoch tick: the deadline's resolution. 1 ms keeps overruns small for
    /// the cost of one cheap atomic increment per millisecond.
    #[serde(with = "millis")]
    pub epoch_tick: Duration,
    /// Linear memory a call may use, summed over all memories of the component.
    pub memory_limit: usize,
    /// Most actions a plan may hold.
    pub max_plan_actions: usize,
    /// Most bytes of text a plan or decision may carry (all strings summed).
    pub max_output_bytes: usize,
    /// Log lines kept per call; the rest are counted and dropped.
    pub max_log_lines: usize,
    /// Longest log line kept; longer lines are truncated.
    pub max_log_line_bytes: usize,
    /// Calls that may run at the same time: sizes the pooling allocator.
    pub max_concurrent_calls: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(50),
            epoch_tick: Duration::from_millis(1),
            memory_limit: 16 << 20,
            max_plan_actions: 256,
            max_output_bytes: 256 << 10,
            max_log_lines: 100,
            max_log_line_bytes: 1024,
            max_concurrent_calls: 64,
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Upper bound of any one linear memory in the pool; per-call caps below it
/// are enforced by the store's limiter.
const POOL_MAX_MEMORY: usize = 256 << 20;

/// The engine plus the ticker thread that advances its epoch.
pub(crate) struct EngineHandle {
    engine: Engine,
    tick: Duration,
    ticker: Arc<Ticker>,
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        // Wakes a ticker parked while idle, so it sees the engine gone.
        self.ticker.wake();
    }
}

/// How many stores (calls) are alive, and the thread that advances the
/// epoch while any is: an idle sidecar's ticker sleeps instead of waking
/// every tick.
#[derive(Default)]
struct Ticker {
    live: AtomicUsize,
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl Ticker {
    fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// How often an idle ticker looks whether a call started without waking it.
const IDLE_CHECK: Duration = Duration::from_millis(100);

/// How long the ticker keeps ticking after the last call ended before it
/// parks. Calls come one after another under load (a fresh store per
/// event): parking between them made every call wake the ticker thread
/// (a futex wake and a context switch, more CPU than the call's
/// instantiation), while ticking on costs one wake-up per tick.
const LINGER: Duration = Duration::from_millis(100);

/// Keeps the epoch ticking while a call's store is alive.
pub(crate) struct Ticking(Arc<Ticker>);

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EngineHandle {
    pub(crate) fn new(config: &RuntimeConfig) -> Result<Self, LoadError> {
        if config.memory_limit > POOL_MAX_MEMORY {
            return Err(LoadError::Config(format!(
                "memory_limit {} exceeds the runtime's ceiling of {} bytes",
                config.memory_limit, POOL_MAX_MEMORY
            )));
        }
        if config.epoch_tick.is_zero() {
            return Err(LoadError::Config(
                "epoch_tick must be greater than zero".into(),
            ));
        }
        let engine = match Engine::new(&Self::config(config, true)) {
            Ok(engine) => engine,
            // Pooling reserves virtual memory up front; where the host refuses
            // (tight ulimit -v), fall back to on-demand allocation.
            Err(pooling_error) => {
                tracing::warn!(error = %pooling_error, "pooling allocator unavailable; using on-demand allocation");
                Engine::new(&Self::config(config, false))
                    .map_err(|e| LoadError::Config(e.to_string()))?
            }
        };
        let ticker = Arc::new(Ticker::default());
        spawn_ticker(&engine, config.epoch_tick, ticker.clone());
        Ok(Self {
            engine,
            tick: config.epoch_tick,
            ticker,
        })
    }

    fn config(config: &RuntimeConfig, pooling: bool) -> Config {
        let mut cfg = Config::new();
        // Rules are plain synchronous calls; component-model concurrency only
        // adds per-store state and slows every call.
        cfg.concurrency_support(false)
            .epoch_interruption(true)
            .memory_init_cow(true)
            .wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
        if pooling {
            let n = config.max_concurrent_calls.max(1);
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(n)
                // Rust components instantiate a handful of core modules (the
                // program plus import shims); 32 leaves room for other toolchains.
                .total_core_instances(n * 8)
                .max_core_instances_per_component(32)
                .total_memories(n * 2)
                .max_memories_per_component(4)
                .total_tables(n * 4)
                .max_tables_per_component(8)
                .total_stacks(n)
                .max_memory_size(POOL_MAX_MEMORY)
                .max_component_instance_size(1 << 20)
                // Reset reused slots in place instead of unmapping them: with
                // PAGEMAP_SCAN (Linux >= 6.7) only the pages a call dirtied are
                // restored, so a Rust guest's 1 MiB stack and small heap cost
                // a few page copies, not a memset of the whole prefix or page
                // faults on the next call. Older kernels fall back to memset.
                .pagemap_scan(wasmtime::Enabled::Auto)
                .linear_memory_keep_resident(4 << 20)
                .table_keep_resident(64 << 10)
                .max_unused_warm_slots(n);
            cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        cfg
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// What the pooling allocator holds now; `None` when the engine fell
    /// back to on-demand allocation.
    pub(crate) fn pool(&self) -> Option<PoolUsage> {
        let metrics = self.engine.pooling_allocator_metrics()?;
        Some(PoolUsage {
            component_instances: metrics.component_instances(),
            core_instances: metrics.core_instances(),
            memories: metrics.memories() as u64,
            tables: metrics.tables() as u64,
            unused_warm_memories: u64::from(metrics.unused_warm_memories()),
            unused_memory_bytes_resident: metrics.unused_memory_bytes_resident() as u64,
        })
    }

    /// Keeps the epoch advancing until the returned guard is dropped: taken
    /// before a call's deadline is set, held by its store.
    pub(crate) fn ticking(&self) -> Ticking {
        if self.ticker.live.fetch_add(1, Ordering::AcqRel) == 0 {
            self.ticker.wake();
        }
        Ticking(self.ticker.clone())
    }

    /// Ticks for a wall-clock budget, plus one for the tick already under way.
    pub(crate) fn deadline_ticks(&self, budget: std::time::Duration) -> u64 {
        let tick = self.tick.as_nanos().max(1);
        let ticks = budget.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX - 1) + 1
    }
}

/// Advances the engine's epoch every `tick` while a call is alive and for
/// [`LINGER`] after the last one ended, and sleeps once none has been for
/// that long. The thread holds only a weak reference and exits once the
/// engine is dropped.
fn spawn_ticker(engine: &Engine, tick: Duration, ticker: Arc<Ticker>) {
    let weak = engine.weak();
    let ticks = ticker.clone();
    let linger = u32::try_from(LINGER.as_nanos() / tick.as_nanos().max(1)).unwrap_or(u32::MAX);
    let spawned = std::thread::Builder::new()
        .name("switchboard-epoch".into())
        .spawn(move || {
            let mut idle: u32 = 0;
            loop {
                if ticks.live.load(Ordering::Acquire) > 0 {
                    idle = 0;
                } else if idle >= linger {
                    // A call that starts unparks us; the timeout covers a
                    // call that started before this thread was known.
                    std::thread::park_timeout(IDLE_CHECK);
                    if weak.upgrade().is_none() {
                        break;
                    }
                    continue;
                } else {
                    idle += 1;
                }
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Ok(handle) = &spawned {
        let _ = ticker.thread.set(handle.thread().clone());
    }
    if let Err(e) = spawned {
        // Without a ticker deadlines never fire; make that loud.
        tracing::error!(error = %e, "could not start the epoch ticker; rule deadlines are not enforced");
    }
}
