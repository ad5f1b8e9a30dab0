//! What can go wrong loading or calling a rule module.
use super::bindings::WORLD;
use wasmtime::Trap;

/// A module was refused at load time.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly file: {0}")]
    NotWasm(String),
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; build it with `--target wasm32-wasip2` \
         (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// A component, but not of the rule world.
    #[error("the component does not implement the {WORLD} world: {0}")]
    WrongWorld(String),
    /// It needs an import the host does not offer.
    #[error("the component imports `{0}`, which the host does not provide (rule modules may import `log`, the contract's types and WASI 0.2 cli, clocks, filesystem, io, random and sockets; build without the others; for componentize-js, disable its `http` feature)")]
    UnknownImport(String),
    /// Cranelift refused it.
    #[error("the component could not be compiled: {0}")]
    Compile(String),
    /// The runtime configuration itself is unusable.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
}

/// One call failed. Only that call is affected: the store is dropped and the
/// next call starts from a fresh instance.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call ran past its deadline and was interrupted.
    #[error(
        "rule ran past its deadline of {deadline_ms} ms and was stopped after {elapsed_ms} ms"
    )]
    Timeout {
        /// Configured budget.
        deadline_ms: u64,
        /// Time actually spent.
        elapsed_ms: u64,
    },
    /// The call tried to grow its memory past the cap.
    #[error("rule tried to use more than its memory limit of {limit} bytes")]
    MemoryLimit {
        /// Configured cap in bytes.
        limit: usize,
    },
    /// The guest panicked (`unreachable` trap).
    #[error("rule panicked (wasm trap: unreachable){}", panic_detail(message))]
    Panic {
        /// What the guest wrote to stderr before it trapped (a Rust
        /// guest's panic message), empty if nothing.
        message: String,
    },
    /// Any other trap.
    #[error("rule trapped: {message}")]
    Trap {
        /// The trap code, when wasmtime reported one.
        trap: Option<Trap>,
        /// wasmtime's description.
        message: String,
    },
    /// The rule itself returned `rule-error`.
    #[error("rule returned error `{code}`: {message}")]
    Rule {
        /// Rule-defined code.
        code: String,
        /// Rule-defined message.
        message: String,
    },
    /// The plan or decision is larger than the host accepts.
    #[error("rule output refused: {0}")]
    OutputTooLarge(String),
    /// Instantiation failed (e.g. the instance pool is exhausted).
    #[error("could not instantiate the rule module: {0}")]
    Instantiate(String),
    /// The host itself failed while running the call (a bug, never the
    /// guest's doing); the call is abandoned and its event fails.
    #[error("the host failed while running the rule: {0}")]
    Host(String),
}

fn panic_detail(message: &str) -> String {
    let message = message.trim();
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl CallError {
    /// The wasmtime trap behind this error, if it was a trap.
    pub fn trap(&self) -> Option<Trap> {
        match self {
            CallError::Timeout { .. } => Some(Trap::Interrupt),
            CallError::Panic { .. } => Some(Trap::UnreachableCodeReached),
            CallError::Trap { trap, .. } => *trap,
            _ => None,
        }
    }

    /// A short stable label for metrics and stored outcomes.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Timeout { .. } => "timeout",
            CallError::MemoryLimit { .. } => "memory_limit",
            CallError::Panic { .. } => "panic",
            CallError::Trap { .. } => "trap",
            CallError::Rule { .. } => "rule_error",
            CallError::OutputTooLarge(_) => "output_too_large",
            CallError::Instantiate(_) => "instantiate",
            CallError::Host(_) => "host",
        }
    }
}
