//! Hostile fixtures (RM3): each fails only its own call with a specific
//! error, and the next call — same tenant and another tenant — succeeds.
use crate::support::*;
use std::sync::Arc;
use switchboard::runtime::types as t;
use switchboard::runtime::{CallError, CallMeta, LoadError, Runtime};
use switchboard_rule_artifacts as artifacts;
use wasmtime::Trap;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports, reason = "only checks that the module exists")]
        use self::$name as _;
    };
}
artifacts::foreach_fixture!(assert_test_exists);

/// After a failing call, echo still works for the same and another tenant.
fn next_calls_succeed(rt: &Runtime) {
    let echo = load(rt, artifacts::FIXTURE_ECHO);
    for tenant in ["tenant-a", "tenant-b"] {
        let plan = rt
            .on_session_event(
                &echo,
                &CallMeta::new(tenant, "after"),
                &event("after"),
                &context(tenant),
            )
            .unwrap_or_else(|e| panic!("call for {tenant} after a hostile call failed: {e}"));
        assert_eq!(
            plan.actions.len(),
            1,
            "echo returns one note, got {:?}",
            plan.actions
        );
    }
}

fn call(rt: &Runtime, path: &str) -> Result<t::Plan, CallError> {
    let module = load(rt, path);
    rt.on_session_event(
        &module,
        &CallMeta::new("tenant-a", "evt-1"),
        &event("evt-1"),
        &context("tenant-a"),
    )
}

mod fixture_echo {
    use super::*;

    #[test]
    fn rm5_echo_sees_fixed_clock_and_seeded_randomness() {
        let rt = runtime();
        let echo = load(&rt, artifacts::FIXTURE_ECHO);
        let meta = CallMeta::new("tenant-a", "evt-7").with_clock_ms(1_764_000_000_000);
        let run = || {
            rt.on_session_event(&echo, &meta, &event("evt-7"), &context("tenant-a"))
                .expect("echo call")
        };
        let (first, second) = (run(), run());
        assert_eq!(first, second, "same inputs must give the same plan (RM5)");
        let t::Action::AddNote(note) = &first.actions[0] else {
            panic!("expected a note, got {:?}", first.actions)
        };
        assert!(
            note.contains("clock=1764000000000"),
            "guest clock is the one the host fixed: {note}"
        );

        let other = rt
            .on_session_event(
                &echo,
                &CallMeta::new("tenant-a", "evt-8"),
                &event("evt-8"),
                &context("tenant-a"),
            )
            .expect("echo call");
        assert_ne!(
            first, other,
            "a different event gets a different seed and id"
        );
    }

    #[test]
    fn echo_status_change_round_trips() {
        let rt = runtime();
        let echo = load(&rt, artifacts::FIXTURE_ECHO);
        let decision = rt
            .on_status_change(
                &echo,
                &CallMeta::new("t", "s"),
                &status_change("Online"),
                &status_context(),
            )
            .expect("status call");
        assert_eq!(decision, t::StatusDecision::Ignore("echo Online".into()));
    }
}

mod fixture_panic {
    use super::*;

    #[test]
    fn rm3_guest_panic_fails_only_its_call() {
        let rt = runtime();
        let err = call(&rt, artifacts::FIXTURE_PANIC).expect_err("a panicking rule must fail");
        assert!(
            matches!(err, CallError::Panic { .. }),
            "expected Panic, got {err:?}"
        );
        assert_eq!(err.trap(), Some(Trap::UnreachableCodeReached));
        next_calls_succeed(&rt);
    }

    /// Through the service's path (blocking pool on a multi-thread
    /// runtime): the guest's panic message is the failure reason.
    #[test]
    fn is3_guest_panic_message_is_the_failure_reason() {
        let rt = Arc::new(runtime());
        let module = load(&rt, artifacts::FIXTURE_PANIC);
        let err = tokio_runtime()
            .block_on(rt.call_session_event(
                module,
                CallMeta::new("tenant-a", "evt-9"),
                event("evt-9"),
                context("tenant-a"),
            ))
            .expect_err("a panicking rule must fail");
        assert!(
            matches!(&err, CallError::Panic { message } if message.contains("fixture panic on evt-9")),
            "expected the guest's panic message, got {err:?}"
        );
        assert!(err.to_string().contains("fixture panic on evt-9"), "{err}");
    }
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

mod fixture_panic_for_acme {
    use super::*;

    /// Deployable (its smoke test passes), then it panics on live traffic
    /// of its own tenant only.
    #[test]
    fn is3_a_module_that_panics_on_live_traffic_fails_only_those_calls() {
        let rt = runtime();
        let module = load(&rt, artifacts::FIXTURE_PANIC_FOR_ACME);
        let mut live = event("evt-live");
        live.session.end_user.phone = Some("+12122000001".into());
        let err = rt
            .on_session_event(
                &module,
                &CallMeta::new("acme", "evt-live"),
                &live,
                &context("acme"),
            )
            .expect_err("acme's live call panics");
        assert!(
            matches!(&err, CallError::Panic { message } if message.contains("fixture panic for acme")),
            "{err:?}"
        );
        rt.on_session_event(
            &module,
            &CallMeta::new("beta", "evt-live"),
            &live,
            &context("beta"),
        )
        .expect("beta's call is decided");
        next_calls_succeed(&rt);
    }
}

mod fixture_stdio_sockets {
    use super::*;

    /// The path that used to panic the host: a guest's stdio and socket
    /// calls from inside the async service. Both sockets are refused to the
    /// guest and the call succeeds.
    #[test]
    fn is3_stdio_and_sockets_inside_the_service_are_contained() {
        let rt = Arc::new(runtime());
        let module = load(&rt, artifacts::FIXTURE_STDIO_SOCKETS);
        let plan = tokio_runtime()
            .block_on(rt.call_session_event(
                module,
                CallMeta::new("tenant-a", "evt-5"),
                event("evt-5"),
                context("tenant-a"),
            ))
            .expect("the call succeeds");
        match plan.actions.as_slice() {
            [t::Action::AddNote(note)] => {
                assert!(note.contains("udp refused"), "{note}");
                assert!(note.contains("tcp refused"), "{note}");
            }
            other => panic!("expected one note, got {other:?}"),
        }
        next_calls_succeed(&rt);
    }

    /// What the guest prints goes to the guest log, tagged like its `log`
    /// lines: stdout as INFO, stderr as WARN.
    #[test]
    fn is3_guest_stdout_and_stderr_go_to_the_guest_log() {
        let rt = runtime();
        let module = load(&rt, artifacts::FIXTURE_STDIO_SOCKETS);
        let log = crate::contract::capture_info_log(|| {
            rt.on_session_event(
                &module,
                &CallMeta::new("acme", "evt-6"),
                &event("evt-6"),
                &context("acme"),
            )
            .expect("call");
        });
        let line = |needle: &str| {
            log.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle:?} in:\n{log}"))
                .to_string()
        };
        let out = line("stdout line for evt-6");
        assert!(
            out.contains("INFO") && out.contains("event_id=\"evt-6\""),
            "{out}"
        );
        let err = line("stderr line for evt-6");
        assert!(
            err.contains("WARN") && err.contains("tenant=\"acme\""),
            "{err}"
        );
    }
}

mod fixture_spin_forever {
    use super::*;

    #[test]
    fn rm3_infinite_loop_is_interrupted_at_the_deadline() {
        let rt = runtime();
        let err = call(&rt, artifacts::FIXTURE_SPIN_FOREVER)
            .expect_err("a spinning rule must be stopped");
        assert!(
            matches!(
                err,
                CallError::Timeout {
                    deadline_ms: 25,
                    ..
                }
            ),
            "expected Timeout, got {err:?}"
        );
        assert_eq!(err.trap(), Some(Trap::Interrupt));
        next_calls_succeed(&rt);
    }
}

mod fixture_huge_alloc {
    use super::*;

    #[test]
    fn rm3_memory_hog_stops_at_the_memory_cap() {
        // Filling megabytes takes a few milliseconds: give it time to reach
        // the cap rather than the deadline.
        let rt = patient_runtime();
        let err =
            call(&rt, artifacts::FIXTURE_HUGE_ALLOC).expect_err("a memory hog must be stopped");
        assert!(
            matches!(err, CallError::MemoryLimit { limit } if limit == rt.config().memory_limit),
            "expected MemoryLimit, got {err:?}"
        );
        next_calls_succeed(&rt);
    }
}

mod fixture_bad_plan {
    use super::*;

    #[test]
    fn rm3_oversized_plan_is_refused() {
        // Building 20,000 actions takes a few milliseconds, more on a loaded
        // machine: give it time to reach the size check, not the deadline.
        let rt = patient_runtime();
        let err =
            call(&rt, artifacts::FIXTURE_BAD_PLAN).expect_err("an oversized plan must be refused");
        let CallError::OutputTooLarge(reason) = &err else {
            panic!("expected OutputTooLarge, got {err:?}")
        };
        assert!(
            reason.contains("20000 actions"),
            "reason names the size: {reason}"
        );
        next_calls_succeed(&rt);
    }

    #[test]
    fn rm3_oversized_status_decision_is_refused() {
        let rt = patient_runtime();
        let module = load(&rt, artifacts::FIXTURE_BAD_PLAN);
        let err = rt
            .on_status_change(
                &module,
                &CallMeta::new("t", "s"),
                &status_change("Online"),
                &status_context(),
            )
            .expect_err("a 1 MiB reason must be refused");
        assert!(
            matches!(err, CallError::OutputTooLarge(_)),
            "expected OutputTooLarge, got {err:?}"
        );
    }
}

mod fixture_log_flood {
    use super::*;

    #[test]
    fn rm3_log_flood_is_capped_and_the_call_succeeds() {
        let rt = runtime();
        // 10,000 lines of 4 KiB: the sink keeps 100 truncated lines; the call
        // must still finish well inside the deadline's order of magnitude.
        let rt_long = Runtime::new(switchboard::runtime::RuntimeConfig {
            deadline: std::time::Duration::from_secs(5),
            ..rt.config().clone()
        })
        .expect("runtime");
        let plan =
            call(&rt_long, artifacts::FIXTURE_LOG_FLOOD).expect("flooding logs is not an error");
        assert_eq!(plan.actions, vec![t::Action::Skip("flooded".into())]);
        next_calls_succeed(&rt);
    }
}

mod fixture_wrong_world {
    use super::*;

    #[test]
    fn component_of_another_world_is_refused_at_load() {
        let rt = runtime();
        let err = rt
            .load(&artifacts::bytes(artifacts::FIXTURE_WRONG_WORLD))
            .expect_err("wrong world must be refused");
        assert!(
            matches!(err, LoadError::WrongWorld(_)),
            "expected WrongWorld, got {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("switchboard:rules/rule@0.1.0")
                && message.contains("on-session-event"),
            "message names the world and the missing export: {message}"
        );
        next_calls_succeed(&rt);
    }
}

#[test]
fn core_module_is_refused_as_not_a_component() {
    let rt = runtime();
    let core_module = b"\0asm\x01\0\0\0";
    let err = rt.load(core_module).expect_err("core modules are refused");
    assert!(
        matches!(err, LoadError::CoreModule),
        "expected CoreModule, got {err:?}"
    );
    assert!(err.to_string().contains("not a component"), "{err}");
}

#[test]
fn text_file_is_refused_as_not_wasm() {
    let rt = runtime();
    let err = rt
        .load(b"[tenant]\nname = \"acme\"\n")
        .expect_err("text is refused");
    assert!(
        matches!(err, LoadError::NotWasm(_)),
        "expected NotWasm, got {err:?}"
    );
    assert!(err.to_string().contains("text file"), "{err}");
}

#[test]
fn same_bytes_compile_once() {
    let rt = runtime();
    let a = load(&rt, artifacts::FIXTURE_ECHO);
    let b = load(&rt, artifacts::FIXTURE_ECHO);
    assert!(
        std::sync::Arc::ptr_eq(&a, &b),
        "the cache returns the same compiled module"
    );
    assert_eq!(rt.cached_modules(), 1);
}

#[test]
fn rm3_hostile_tenant_does_not_disturb_another_running_concurrently() {
    let rt = std::sync::Arc::new(runtime());
    let echo = load(&rt, artifacts::FIXTURE_ECHO);
    let spin = load(&rt, artifacts::FIXTURE_SPIN_FOREVER);
    std::thread::scope(|s| {
        let hostile = s.spawn(|| {
            for i in 0..4 {
                let id = format!("spin-{i}");
                let r = rt.on_session_event(
                    &spin,
                    &CallMeta::new("bad", &id),
                    &event(&id),
                    &context("bad"),
                );
                assert!(
                    matches!(r, Err(CallError::Timeout { .. })),
                    "spin {i}: {r:?}"
                );
            }
        });
        for i in 0..200 {
            let id = format!("ok-{i}");
            rt.on_session_event(
                &echo,
                &CallMeta::new("good", &id),
                &event(&id),
                &context("good"),
            )
            .unwrap_or_else(|e| panic!("good tenant call {i} failed: {e}"));
        }
        hostile.join().expect("hostile thread");
    });
}
