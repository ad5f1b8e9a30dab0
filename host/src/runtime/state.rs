//! Per-call store state (`T` in `Store<T>`), the deny-all WASI context (built
//! on the guest's first WASI call) and the host side of the world's imports.
use super::bindings::latest::{self, Rule};
use super::bindings::types::LogLevel;
use super::engine::{RuntimeConfig, Ticking};
use super::error::LoadError;
use super::limits::MemoryLimiter;
use super::CallMeta;
use std::time::Duration;
use wasi_rand::SeedableRng;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::Engine;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// Per-call store state (`T` in `Store<T>`).
pub(crate) struct RuleState {
    /// Built on the guest's first WASI call: a call that makes none (the
    /// default rules make none) builds no context, pipes or generators.
    wasi: Option<Wasi>,
    wasi_setup: WasiSetup,
    table: ResourceTable,
    pub(crate) limits: MemoryLimiter,
    pub(crate) deadline_ms: u64,
    log: LogSink,
    /// Keeps the epoch (the call's deadline) advancing while the store lives.
    _ticking: Ticking,
}

/// A call's WASI context and the pipes its stdout and stderr write to.
struct Wasi {
    ctx: WasiCtx,
    /// What the guest writes to stdout and stderr, kept in memory (never
    /// the host's own stdio) and handed to the guest log after the call.
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

/// What a call's WASI context is built from.
#[derive(Clone, Copy)]
struct WasiSetup {
    clock_ms: u64,
    seed: u64,
    /// Captured output is bounded like the guest log itself.
    output_capacity: usize,
}

impl WasiSetup {
    /// Empty context: stdin closed, stdout/stderr captured in memory, no
    /// env, args, preopens or sockets (TCP, UDP and name lookup are off by
    /// default, so a socket call gets an access error). Clocks and
    /// randomness are fixed per call so a replay of the same event gives the
    /// same result (RM5).
    fn build(self) -> Wasi {
        let stdout = MemoryOutputPipe::new(self.output_capacity);
        let stderr = MemoryOutputPipe::new(self.output_capacity);
        let ctx = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FixedWallClock(Duration::from_millis(self.clock_ms)))
            .monotonic_clock(FixedMonotonicClock)
            .secure_random(wasi_rand::rngs::StdRng::seed_from_u64(self.seed))
            .insecure_random(wasi_rand::rngs::StdRng::seed_from_u64(
                self.seed ^ 0x5bd1_e995,
            ))
            .insecure_random_seed(u128::from(self.seed))
            .build();
        Wasi {
            ctx,
            stdout,
            stderr,
        }
    }
}

impl RuleState {
    pub(crate) fn new(
        config: &RuntimeConfig,
        digest: &str,
        meta: &CallMeta,
        ticking: Ticking,
    ) -> Self {
        let seed = fnv1a(&[meta.tenant.as_bytes(), b"\0", meta.event_id.as_bytes()]);
        Self {
            _ticking: ticking,
            wasi: None,
            wasi_setup: WasiSetup {
                clock_ms: meta.clock_ms,
                seed,
                output_capacity: config
                    .max_log_lines
                    .saturating_mul(config.max_log_line_bytes),
            },
            table: ResourceTable::new(),
            limits: MemoryLimiter::new(config.memory_limit),
            deadline_ms: u64::try_from(config.deadline.as_millis()).unwrap_or(u64::MAX),
            log: LogSink {
                tenant: meta.tenant.clone(),
                module: digest.get(..12).unwrap_or(digest).to_string(),
                event_id: meta.event_id.clone(),
                kept: 0,
                dropped: 0,
                max_lines: config.max_log_lines,
                max_line_bytes: config.max_log_line_bytes,
            },
        }
    }

    /// Hands what the guest printed to the guest log (stdout as `info`,
    /// stderr as `warn`) and returns the stderr text, which carries a Rust
    /// guest's panic message.
    pub(crate) fn drain_output(&mut self) -> String {
        let Some(wasi) = &self.wasi else {
            return String::new();
        };
        let out = wasi.stdout.contents();
        for line in String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| !l.is_empty())
        {
            self.log.write(LogLevel::Info, format!("stdout: {line}"));
        }
        let err = String::from_utf8_lossy(&wasi.stderr.contents()).into_owned();
        for line in err.lines().filter(|l| !l.is_empty()) {
            self.log.write(LogLevel::Warn, format!("stderr: {line}"));
        }
        err
    }
}

impl WasiView for RuleState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let setup = self.wasi_setup;
        let wasi = self.wasi.get_or_insert_with(|| setup.build());
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut self.table,
        }
    }
}

/// Builds the linker every module is instantiated against: WASI 0.2 (deny
/// all, see [`RuleState::new`]) plus the world's `log` import.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<RuleState>, LoadError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| LoadError::Config(e.to_string()))?;
    Rule::add_to_linker::<RuleState, HasSelf<RuleState>>(&mut linker, |s| s)
        .map_err(|e| LoadError::Config(e.to_string()))?;
    Ok(linker)
}

impl latest::switchboard::rules::types::Host for RuleState {}

impl latest::RuleImports for RuleState {
    fn log(&mut self, level: LogLevel, message: String) {
        self.log.write(level, message);
    }
}

/// Forwards guest log lines to `tracing`, tagged with tenant, module digest
/// and event, keeping at most `max_lines` lines of `max_line_bytes` per call.
struct LogSink {
    tenant: String,
    module: String,
    event_id: String,
    kept: usize,
    dropped: usize,
    max_lines: usize,
    max_line_bytes: usize,
}

impl LogSink {
    fn write(&mut self, level: LogLevel, mut message: String) {
        if self.kept >= self.max_lines {
            self.dropped += 1;
            return;
        }
        self.kept += 1;
        if message.len() > self.max_line_bytes {
            let mut cut = self.max_line_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let (tenant, module, event_id) = (&self.tenant, &self.module, &self.event_id);
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "switchboard::rule", tenant, module, event_id, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "switchboard::rule", tenant, module, event_id, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "switchboard::rule", tenant, module, event_id, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "switchboard::rule", tenant, module, event_id, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "switchboard::rule", tenant, module, event_id, "{message}")
            }
        }
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(
                target: "switchboard::rule",
                tenant = %self.tenant,
                module = %self.module,
                event_id = %self.event_id,
                dropped = self.dropped,
                "rule logged more than {} lines; the rest were dropped",
                self.max_lines
            );
        }
    }
}

/// A wall clock that always shows the same instant.
struct FixedWallClock(Duration);

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

/// A monotonic clock that never advances.
struct FixedMonotonicClock;

impl HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}

/// FNV-1a: a stable seed across Rust versions (std's hasher is not).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}
