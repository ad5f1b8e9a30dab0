//! Paths of the rule modules compiled from source by this crate's build
//! script: the shipped rules under `rules/` (`RULES_*`) and the test fixtures
//! under `tests/test-rules/` (`FIXTURE_*`).
//!
//! `foreach_fixture!(m)` calls `m!(name)` for each fixture so a test suite can
//! force one test per fixture.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// Reads a compiled module's bytes.
pub fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading rule artifact {path}: {e}"))
}
