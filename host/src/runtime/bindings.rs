//! Host bindings, one module per published WIT version (all frozen under
//! `wit/since_vX.Y.Z`). Version 0.1.0 is the only one so far; the next
//! version gets `v2` with `with:` pointing unchanged interfaces at it.

/// `switchboard:rules@0.1.0`.
#[allow(missing_docs, reason = "generated code")]
pub mod v1 {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "rule",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq, schemars::JsonSchema],
    });

    /// Versions of the world this module binds.
    pub const MIN_VERSION: (u16, u16, u16) = (0, 1, 0);
    /// Newest version bound here.
    pub const MAX_VERSION: (u16, u16, u16) = (0, 1, 0);
}

pub use v1 as latest;

/// The types of the newest WIT version: session events, contexts, plans and
/// status decisions, with serde support for recorded cases.
pub mod types {
    pub use super::latest::switchboard::rules::types::*;
}

/// The world a module must export.
pub const WORLD: &str = "switchboard:rules/rule@0.1.0";
