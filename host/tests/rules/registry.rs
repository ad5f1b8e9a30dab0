//! Module registry: validation before going live, atomic swap, rollback,
//! persistence across a restart (RM4).
use crate::support::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use switchboard::runtime::types as t;
use switchboard::runtime::{CallMeta, DeployError, Registry};
use switchboard_rule_artifacts as artifacts;

fn registry(dir: Option<std::path::PathBuf>) -> Registry {
    Registry::new(Arc::new(runtime()), dir)
}

#[test]
fn rm4_deploy_then_swap_changes_the_live_version() {
    let reg = registry(None);
    let v1 = reg
        .deploy("acme", &artifacts::bytes(artifacts::RULES_DEFAULT), "test")
        .expect("default deploys");
    let v2 = reg
        .deploy("acme", &artifacts::bytes(artifacts::FIXTURE_ECHO), "test")
        .expect("echo deploys");
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(reg.live("acme").expect("live").info, v2);
    assert_eq!(reg.versions("acme").len(), 2);
    assert_eq!(reg.tenants(), vec!["acme".to_string()]);
}

#[test]
fn rm4_redeploying_the_live_digest_is_a_no_op() {
    let reg = registry(None);
    let a = reg
        .deploy("acme", &artifacts::bytes(artifacts::FIXTURE_ECHO), "one")
        .expect("deploy");
    let b = reg
        .deploy("acme", &artifacts::bytes(artifacts::FIXTURE_ECHO), "two")
        .expect("deploy");
    assert_eq!(a, b);
    assert_eq!(reg.versions("acme").len(), 1);
}

#[test]
fn rm4_invalid_module_is_refused_and_the_old_version_keeps_serving() {
    let reg = registry(None);
    let good = reg
        .deploy("acme", &artifacts::bytes(artifacts::FIXTURE_ECHO), "test")
        .expect("deploy");
    for (bytes, what) in [
        (
            artifacts::bytes(artifacts::FIXTURE_WRONG_WORLD),
            "wrong world",
        ),
        (b"not wasm".to_vec(), "text"),
        (
            artifacts::bytes(artifacts::FIXTURE_PANIC),
            "panics in the smoke test",
        ),
        (
            artifacts::bytes(artifacts::FIXTURE_SPIN_FOREVER),
            "spins in the smoke test",
        ),
    ] {
        let err = reg.deploy("acme", &bytes, "test").expect_err(what);
        assert!(
            err.to_string().starts_with("module refused"),
            "{what}: {err}"
        );
        assert_eq!(
            reg.live("acme").expect("live").info,
            good,
            "{what}: old version still live"
        );
    }
    let err = reg
        .deploy("acme", &artifacts::bytes(artifacts::FIXTURE_PANIC), "test")
        .expect_err("panic");
    assert!(
        matches!(
            err,
            DeployError::SmokeTest {
                call: "on-session-event",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        reg.versions("acme").len(),
        1,
        "refused modules are not versions"
    );
}

#[test]
fn rm4_rollback_restores_the_previous_version() {
    let reg = registry(None);
    let v1 = reg
        .deploy("acme", &artifacts::bytes(artifacts::RULES_DEFAULT), "test")
        .expect("deploy");
    reg.deploy("acme", &artifacts::bytes(artifacts::FIXTURE_ECHO), "test")
        .expect("deploy");
    let back = reg.rollback("acme", None).expect("rollback");
    assert_eq!(back, v1);
    assert_eq!(reg.live("acme").expect("live").info, v1);
    let err = reg.rollback("acme", Some(9)).expect_err("no version 9");
    assert!(err.to_string().contains("no version 9"), "{err}");
}

#[test]
fn rm4_registry_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = {
        let reg = registry(Some(dir.path().to_path_buf()));
        reg.deploy("acme", &artifacts::bytes(artifacts::RULES_DEFAULT), "test")
            .expect("deploy");
        reg.deploy("acme", &artifacts::bytes(artifacts::FIXTURE_ECHO), "test")
            .expect("deploy");
        reg.rollback("acme", None).expect("rollback");
        reg.live("acme").expect("live").info.clone()
    };
    let reg = registry(Some(dir.path().to_path_buf()));
    assert_eq!(reg.restore(), vec!["acme".to_string()]);
    assert_eq!(reg.live("acme").expect("restored").info, before);
    assert_eq!(reg.versions("acme").len(), 2);
}

#[test]
fn rm4_swaps_during_calls_decide_each_event_with_exactly_one_version() {
    let reg = Arc::new(registry(None));
    let default = artifacts::bytes(artifacts::RULES_DEFAULT);
    let echo = artifacts::bytes(artifacts::FIXTURE_ECHO);
    reg.deploy("acme", &echo, "test").expect("deploy");
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let swapper = s.spawn(|| {
            for i in 0..20 {
                let bytes = if i % 2 == 0 { &default } else { &echo };
                reg.deploy("acme", bytes, "swap").expect("swap deploy");
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut calls = 0;
        while !done.load(Ordering::SeqCst) || calls < 50 {
            let live = reg.live("acme").expect("always a live version");
            let id = format!("evt-{calls}");
            let plan = reg
                .runtime()
                .on_session_event(
                    &live.module,
                    &CallMeta::new("acme", &id),
                    &event(&id),
                    &context("acme"),
                )
                .unwrap_or_else(|e| {
                    panic!("call {calls} on version {} failed: {e}", live.info.version)
                });
            // Echo answers with exactly one note naming the event; the default
            // rules answer with their own plan. Each plan is wholly one or the other.
            let is_echo =
                matches!(plan.actions.as_slice(), [t::Action::AddNote(n)] if n.contains(&id));
            assert_eq!(
                is_echo,
                live.info.digest == reg.runtime().load(&echo).expect("echo").info.digest
            );
            calls += 1;
        }
        swapper.join().expect("swapper");
    });
}

/// Twelve distinct versions: only the live one and the rollback window stay
/// compiled; rolling back to the first loads it again, and it decides.
#[test]
fn pf1_only_the_live_version_and_the_rollback_window_stay_compiled() {
    use switchboard::runtime::registry::ROLLBACK_WINDOW;
    for persisted in [false, true] {
        let dir = tempfile::tempdir().expect("dir");
        let rt = Arc::new(runtime());
        let reg = Registry::new(rt.clone(), persisted.then(|| dir.path().to_path_buf()));
        let echo = artifacts::bytes(artifacts::FIXTURE_ECHO);
        for n in 0..12u8 {
            reg.deploy("acme", &distinct(&echo, n), "test")
                .expect("deploys");
        }
        assert_eq!(reg.versions("acme").len(), 12);
        assert_eq!(
            rt.cached_modules(),
            ROLLBACK_WINDOW + 1,
            "persisted: {persisted}"
        );

        let back = reg.rollback("acme", Some(1)).expect("rolls back to v1");
        assert_eq!(back.version, 1);
        let live = reg.live("acme").expect("live");
        assert_eq!(live.info.version, 1);
        rt.on_session_event(
            &live.module,
            &CallMeta::new("acme", "pf1"),
            &event("pf1"),
            &context("acme"),
        )
        .expect("the reloaded version decides");
        // v1 live again; v12, v11 and v10 still in the window.
        assert_eq!(
            rt.cached_modules(),
            ROLLBACK_WINDOW + 1,
            "persisted: {persisted}"
        );
        // Deploying v12's bytes again is a new version made of a module
        // still compiled.
        let again = reg
            .deploy("acme", &distinct(&echo, 11), "again")
            .expect("redeploys");
        assert_eq!(again.version, 13);
        assert_eq!(rt.cached_modules(), ROLLBACK_WINDOW + 1);

        if persisted {
            // A restart compiles only the live version and the window.
            let rt = Arc::new(runtime());
            let restored = Registry::new(rt.clone(), Some(dir.path().to_path_buf()));
            assert_eq!(restored.restore(), vec!["acme".to_string()]);
            assert_eq!(restored.live("acme").expect("live").info.version, 13);
            assert_eq!(
                rt.cached_modules(),
                1,
                "only the live version after a restart"
            );
            restored
                .rollback("acme", Some(2))
                .expect("rolls back to v2");
            assert_eq!(rt.cached_modules(), 2);
        }
    }
}
