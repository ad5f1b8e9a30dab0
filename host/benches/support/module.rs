//! The default rules as the benches load them: the shipped build, or another
//! build named by `SWITCHBOARD_BENCH_MODULE=<file.wasm>` (to compare two side
//! by side).
//!
//! Include it with `#[path = "support/module.rs"] mod module;`.

/// The module's bytes.
pub fn default_rules() -> std::io::Result<Vec<u8>> {
    match std::env::var_os("SWITCHBOARD_BENCH_MODULE") {
        Some(path) => std::fs::read(path),
        None => Ok(switchboard_rule_artifacts::bytes(
            switchboard_rule_artifacts::RULES_DEFAULT,
        )),
    }
}
