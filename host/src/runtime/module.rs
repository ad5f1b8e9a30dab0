//! Loading a module: validation, compilation and pre-instantiation.
use super::bindings::latest::{Rule, RulePre};
use super::bindings::WORLD;
use super::error::{CallError, LoadError};
use super::state::RuleState;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use wasmtime::component::{types::ComponentItem, Component, Linker};
use wasmtime::{Engine, Store};

/// The exports a rule module must have.
const REQUIRED_EXPORTS: [&str; 2] = ["on-session-event", "on-status-change"];

/// What is known about a loaded module.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleInfo {
    /// SHA-256 of the module's bytes, lowercase hex: its version identity.
    pub digest: String,
    /// The world it implements, e.g. `switchboard:rules/rule@0.1.0`.
    pub world: String,
    /// Exported names.
    pub exports: Vec<String>,
    /// Imported interfaces and functions.
    pub imports: Vec<String>,
    /// Size of the component in bytes.
    pub size_bytes: usize,
    /// Time Cranelift took to compile it.
    #[serde(serialize_with = "micros")]
    pub compile_time: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A compiled, linked module ready to instantiate (one `InstancePre`, many
/// fresh instances).
pub struct LoadedModule {
    /// Identity and shape.
    pub info: ModuleInfo,
    pre: RulePre<RuleState>,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl LoadedModule {
    pub(crate) fn instantiate(&self, store: &mut Store<RuleState>) -> Result<Rule, CallError> {
        let started = std::time::Instant::now();
        self.pre.instantiate(&mut *store).map_err(|e| {
            // Setup that outlasts its budget is a timeout like any other,
            // which a busy machine can cause: worth another try.
            if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
                CallError::Timeout {
                    deadline_ms: store.data().deadline_ms,
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                }
            } else {
                CallError::Instantiate(format!("{e:#}"))
            }
        })
    }
}

pub(crate) fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Cheap checks on the binary header before handing it to Cranelift, so the
/// common mistakes get a precise message.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        let what = if bytes.is_empty() {
            "the file is empty".to_string()
        } else if bytes
            .iter()
            .take(512)
            .all(|b| b.is_ascii() && (!b.is_ascii_control() || b.is_ascii_whitespace()))
        {
            "it looks like a text file (no \\0asm header)".to_string()
        } else {
            "it does not start with the \\0asm header".to_string()
        };
        return Err(LoadError::NotWasm(what));
    }
    // Bytes 6..8 are the layer: 0 for core modules, 1 for components.
    match (bytes[6], bytes[7]) {
        (0, 0) => Err(LoadError::CoreModule),
        (1, 0) => Ok(()),
        (a, b) => Err(LoadError::NotWasm(format!(
            "unknown WebAssembly layer {a:#04x}{b:02x}"
        ))),
    }
}

pub(crate) fn compile(
    engine: &Engine,
    linker: &Linker<RuleState>,
    bytes: &[u8],
    digest: String,
) -> Result<LoadedModule, LoadError> {
    check_header(bytes)?;
    let started = Instant::now();
    let component =
        Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    let compile_time = started.elapsed();

    let ty = component.component_type();
    let exports: Vec<(String, bool)> = ty
        .exports(engine)
        .map(|(name, item)| {
            (
                name.to_string(),
                matches!(item.ty, ComponentItem::ComponentFunc(_)),
            )
        })
        .collect();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();

    for required in REQUIRED_EXPORTS {
        match exports.iter().find(|(name, _)| name == required) {
            Some((_, true)) => {}
            Some((_, false)) => {
                return Err(LoadError::WrongWorld(format!(
                    "`{required}` is exported but is not a function"
                )))
            }
            None => {
                let found = exports
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let found = if found.is_empty() {
                    "nothing".to_string()
                } else {
                    found
                };
                return Err(LoadError::WrongWorld(format!(
                    "missing export `{required}` (it exports: {found})"
                )));
            }
        }
    }
    for import in &imports {
        let allowed = import.starts_with("wasi:")
            || import == "log"
            || import.starts_with("switchboard:rules/types@0.1.");
        if !allowed {
            return Err(LoadError::UnknownImport(import.clone()));
        }
    }

    let pre = linker
        .instantiate_pre(&component)
        .and_then(RulePre::new)
        .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;

    Ok(LoadedModule {
        info: ModuleInfo {
            digest,
            world: WORLD.to_string(),
            exports: exports.into_iter().map(|(n, _)| n).collect(),
            imports,
            size_bytes: bytes.len(),
            compile_time,
        },
        pre,
    })
}
