//! Loading a module: validation, compilation and pre-instantiation.
use super::bindings::latest::RulePre;
use super::bindings::types as t;
use super::bindings::WORLD;
use super::error::{CallError, LoadError};
use super::state::RuleState;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use wasmtime::component::{
    types::ComponentItem, Component, ComponentExportIndex, InstancePre, Linker, TypedFunc,
};
use wasmtime::{Engine, Store};

/// The exports a rule module must have.
const REQUIRED_EXPORTS: [&str; 2] = ["on-session-event", "on-status-change"];

/// What a rule module may import: the WASI 0.2 interfaces the linker
/// provides (everything but the network refuses at run time, IS3), the
/// contract's types and its `log` function.
const ALLOWED_IMPORTS: [&str; 8] = [
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
    "switchboard:rules/types@0.1.",
    "log",
];

fn allowed(import: &str) -> bool {
    ALLOWED_IMPORTS
        .iter()
        .any(|a| import == *a || (a.ends_with('/') || a.ends_with('.')) && import.starts_with(a))
}

/// The component's own imports of functions and instances, read from its
/// binary without compiling it (imports of the core modules and components
/// nested inside are not the host's business).
pub(crate) fn imports(bytes: &[u8]) -> Result<Vec<String>, LoadError> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0usize;
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| LoadError::NotWasm(e.to_string()))? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.map_err(|e| LoadError::NotWasm(e.to_string()))?;
                    // A type import (an enum of the world, say) is checked by
                    // its structure, not provided by the host.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        names.push(import.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// Refuses, before any compilation, a component that imports what the host
/// does not provide, naming the import.
fn check_imports(bytes: &[u8]) -> Result<(), LoadError> {
    match imports(bytes)?.into_iter().find(|i| !allowed(i)) {
        Some(refused) => Err(LoadError::UnknownImport(refused)),
        None => Ok(()),
    }
}

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
    /// Time Cranelift took to compile it, or to read it from the cache.
    #[serde(serialize_with = "micros")]
    pub compile_time: Duration,
    /// Compiled now, or read back from the disk cache.
    pub compiled: Compiled,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A compiled, linked module ready to instantiate (one `InstancePre`, many
/// fresh instances).
pub struct LoadedModule {
    /// Identity and shape.
    pub info: ModuleInfo,
    pre: InstancePre<RuleState>,
    /// The two exports, found and type-checked once when the module was
    /// loaded (`RulePre::new`), so an instance only looks them up.
    on_session_event: ComponentExportIndex,
    on_status_change: ComponentExportIndex,
}

type SessionResult = Result<t::Plan, t::RuleError>;

/// A fresh instance's exports.
pub(crate) struct RuleInstance {
    on_session_event: wasmtime::component::Func,
    on_status_change: wasmtime::component::Func,
}

impl RuleInstance {
    /// Calls `on-session-event`.
    pub(crate) fn on_session_event(
        &self,
        store: &mut Store<RuleState>,
        event: &t::SessionEvent,
        ctx: &t::Context,
    ) -> wasmtime::Result<SessionResult> {
        // SAFETY: the export's type was checked against exactly these Rust
        // types when the module was loaded (`RulePre::new` in `compile`), and
        // every instance of one component has the same export types.
        #[allow(
            unsafe_code,
            reason = "the type check is done once per module at load, not per instance"
        )]
        let func = unsafe {
            TypedFunc::<(&t::SessionEvent, &t::Context), (SessionResult,)>::new_unchecked(
                self.on_session_event,
            )
        };
        let (result,) = func.call(store, (event, ctx))?;
        Ok(result)
    }

    /// Calls `on-status-change`.
    pub(crate) fn on_status_change(
        &self,
        store: &mut Store<RuleState>,
        change: &t::StatusChange,
        ctx: &t::StatusContext,
    ) -> wasmtime::Result<t::StatusDecision> {
        // SAFETY: as in `on_session_event`: checked once at load.
        #[allow(
            unsafe_code,
            reason = "the type check is done once per module at load, not per instance"
        )]
        let func = unsafe {
            TypedFunc::<(&t::StatusChange, &t::StatusContext), (t::StatusDecision,)>::new_unchecked(
                self.on_status_change,
            )
        };
        let (decision,) = func.call(store, (change, ctx))?;
        Ok(decision)
    }
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl LoadedModule {
    pub(crate) fn instantiate(
        &self,
        store: &mut Store<RuleState>,
    ) -> Result<RuleInstance, CallError> {
        let started = std::time::Instant::now();
        let instance = self.pre.instantiate(&mut *store).map_err(|e| {
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
        })?;
        let mut export = |index| {
            instance
                .get_func(&mut *store, index)
                .ok_or_else(|| CallError::Instantiate("an export went missing".into()))
        };
        Ok(RuleInstance {
            on_session_event: export(&self.on_session_event)?,
            on_status_change: export(&self.on_status_change)?,
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

/// Where compiled modules are kept between runs: one file per (module
/// digest, engine configuration), written by this process only.
#[derive(Debug, Clone)]
pub(crate) struct DiskCache {
    dir: std::path::PathBuf,
    /// Names the engine configuration: a file compiled by another wasmtime
    /// version or with other settings is never loaded.
    engine: String,
}

impl DiskCache {
    pub(crate) fn new(dir: std::path::PathBuf, engine: &Engine) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine: format!("{:016x}", hasher.finish()),
        }
    }

    fn path(&self, digest: &str) -> std::path::PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine))
    }

    /// The compiled module, if this cache holds it.
    fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        if !path.exists() {
            return None;
        }
        #[allow(
            unsafe_code,
            reason = "the file was written by `put` below from wasmtime's own serialisation,                       under the service's data directory, and is named by the digest of the                       module and of the engine configuration"
        )]
        // SAFETY: see the reason above; wasmtime checks the header, version and
        // configuration before using it.
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "unusable compiled module; compiling again");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Keeps a compiled module (written aside, then renamed: never half a file).
    fn put(&self, digest: &str, component: &Component) {
        let path = self.path(digest);
        let written = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
                // Unique per write: two loads of one module in this process
                // may both get here.
                let aside = path.with_extension(format!(
                    "tmp{}-{:08x}",
                    std::process::id(),
                    rand::random::<u32>()
                ));
                std::fs::write(&aside, bytes).map_err(|e| e.to_string())?;
                std::fs::rename(&aside, &path).map_err(|e| e.to_string())
            });
        if let Err(error) = written {
            tracing::warn!(path = %path.display(), %error, "compiled module not kept; the next start compiles it again");
        }
    }
}

/// Whether a module was compiled now or read from the disk cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compiled {
    /// Compiled by Cranelift in this process.
    Now,
    /// Read back from the disk cache.
    FromCache,
}

pub(crate) fn compile(
    engine: &Engine,
    linker: &Linker<RuleState>,
    bytes: &[u8],
    digest: String,
    cache: Option<&DiskCache>,
) -> Result<LoadedModule, LoadError> {
    check_header(bytes)?;
    check_imports(bytes)?;
    let started = Instant::now();
    let (component, compiled) = match cache.and_then(|c| c.get(engine, &digest)) {
        Some(component) => (component, Compiled::FromCache),
        None => {
            let component =
                Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
            if let Some(cache) = cache {
                cache.put(&digest, &component);
            }
            (component, Compiled::Now)
        }
    };
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
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
    // Finds both exports and checks their types against the bindings once,
    // for every instance to come.
    RulePre::new(pre.clone()).map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
    let index = |name: &str| {
        component
            .get_export_index(None, name)
            .ok_or_else(|| LoadError::WrongWorld(format!("missing export `{name}`")))
    };

    Ok(LoadedModule {
        info: ModuleInfo {
            digest,
            world: WORLD.to_string(),
            exports: exports.into_iter().map(|(n, _)| n).collect(),
            imports,
            size_bytes: bytes.len(),
            compile_time,
            compiled,
        },
        on_session_event: index("on-session-event")?,
        on_status_change: index("on-status-change")?,
        pre,
    })
}
