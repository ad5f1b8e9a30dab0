//! Compile once (DX3): compiled modules are kept on disk by digest and
//! engine configuration and read back by the next runtime; imports are
//! checked before anything is compiled.
use crate::support::*;
use std::sync::Arc;
use std::time::Instant;
use switchboard::runtime::{Compiled, LoadError, Registry, Runtime, RuntimeConfig};
use switchboard_rule_artifacts as artifacts;

fn cached_runtime(dir: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig::default())
        .expect("runtime")
        .with_disk_cache(dir)
}

#[test]
fn dx3_a_module_is_compiled_once_and_read_back_by_the_next_runtime() {
    let dir = tempfile::tempdir().expect("dir");
    let bytes = artifacts::bytes(artifacts::RULES_DEFAULT);
    let first = cached_runtime(dir.path()).load(&bytes).expect("compiles");
    assert_eq!(first.info.compiled, Compiled::Now);
    let second_runtime = cached_runtime(dir.path());
    let second = second_runtime.load(&bytes).expect("reads back");
    assert_eq!(second.info.compiled, Compiled::FromCache);
    assert_eq!(second.info.digest, first.info.digest);
    assert_eq!(second.info.exports, first.info.exports);
    // And it decides like the compiled one.
    let rt = Arc::new(second_runtime);
    let plan = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
        .block_on(rt.call_session_event(
            second,
            switchboard::runtime::CallMeta::new("acme", "e-1"),
            event("e-1"),
            context("acme"),
        ))
        .expect("decides");
    assert!(!plan.actions.is_empty());
}

#[test]
fn dx3_a_damaged_cache_file_is_compiled_again() {
    let dir = tempfile::tempdir().expect("dir");
    let bytes = artifacts::bytes(artifacts::FIXTURE_ECHO);
    cached_runtime(dir.path()).load(&bytes).expect("compiles");
    for entry in std::fs::read_dir(dir.path()).expect("cache dir") {
        let path = entry.expect("entry").path();
        std::fs::write(&path, b"not a compiled module").expect("damage");
    }
    let again = cached_runtime(dir.path())
        .load(&bytes)
        .expect("compiles again");
    assert_eq!(again.info.compiled, Compiled::Now);
    let third = cached_runtime(dir.path()).load(&bytes).expect("reads back");
    assert_eq!(
        third.info.compiled,
        Compiled::FromCache,
        "the file was replaced"
    );
}

/// Ten distinct modules restored by a fresh registry: read back from the
/// cache, not compiled. The times are printed side by side, not asserted.
#[test]
fn dx3_a_registry_restores_ten_cached_modules_without_compiling() {
    let cache = tempfile::tempdir().expect("cache");
    let modules = tempfile::tempdir().expect("modules");
    let bytes = artifacts::bytes(artifacts::RULES_DEFAULT);
    let started = Instant::now();
    {
        let reg = Registry::new(
            Arc::new(cached_runtime(cache.path())),
            Some(modules.path().to_path_buf()),
        );
        for n in 0..10u8 {
            reg.deploy(&format!("tenant-{n}"), &distinct(&bytes, n), "test")
                .expect("deploys");
        }
    }
    let compiling = started.elapsed();
    let started = Instant::now();
    let reg = Registry::new(
        Arc::new(cached_runtime(cache.path())),
        Some(modules.path().to_path_buf()),
    );
    let restored = reg.restore();
    let cached = started.elapsed();
    assert_eq!(restored.len(), 10, "{restored:?}");
    for n in 0..10 {
        let live = reg.live(&format!("tenant-{n}")).expect("live");
        assert_eq!(live.module.info.compiled, Compiled::FromCache, "tenant-{n}");
    }
    println!(
        "dx3: ten modules deployed (compiling) in {:.0} ms, restored from the cache in {:.0} ms ({:.1}x)",
        compiling.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3,
        compiling.as_secs_f64() / cached.as_secs_f64().max(1e-9)
    );
}

/// A minimal component importing `name` as an empty instance.
fn importing(name: &str) -> Vec<u8> {
    let mut out = b"\0asm\x0d\x00\x01\x00".to_vec();
    // Type section: one empty instance type.
    out.extend([7, 3, 1, 0x42, 0]);
    let mut import = vec![1, 0, u8::try_from(name.len()).expect("short")];
    import.extend_from_slice(name.as_bytes());
    import.extend([0x05, 0]);
    out.push(10);
    out.push(u8::try_from(import.len()).expect("short"));
    out.extend(import);
    out
}

#[test]
fn dx3_a_refused_import_is_named_before_anything_is_compiled() {
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let err = rt
        .load(&importing("wasi:http/outgoing-handler@0.2.3"))
        .expect_err("refused");
    assert!(
        matches!(&err, LoadError::UnknownImport(name) if name == "wasi:http/outgoing-handler@0.2.3"),
        "{err}"
    );
    assert!(
        err.to_string().contains("wasi:http/outgoing-handler@0.2.3"),
        "{err}"
    );
    assert_eq!(rt.cached_modules(), 0, "nothing was compiled");
}
