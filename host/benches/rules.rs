//! Per-event cost of a rule decision, measured side by side in one run:
//!
//! - `wasm fresh`: new store + instantiate from the `InstancePre` + one
//!   `on-session-event` of the default module (what the service does per event);
//! - `wasm warm`: repeated calls on one instance (the floor of the wasm path);
//! - `native`: the same default rules called directly through the guest SDK.
//!
//! Prints medians and the ratios, then one line
//! `fresh_us=<median> warm_us=<median> native_us=<median>`; absolute numbers
//! vary by machine, ratios are what to compare. Run:
//! `cargo bench -p switchboard --bench rules`.
//!
//! `SWITCHBOARD_BENCH_MODULE=<file.wasm>` measures another build of the
//! default rules instead of the shipped one (the bench checks it decides
//! like the native rules). `--profile fresh|warm|native N` runs only that path N times and prints
//! nothing else: the mode for an instruction profile (see
//! `docs/performance.md`), e.g. `valgrind --tool=callgrind <bench binary>
//! --profile fresh 2000`.
use std::time::{Duration, Instant};
use switchboard::runtime::types as t;
use switchboard::runtime::{CallMeta, LoadedModule, Runtime, RuntimeConfig};
use switchboard_guest_sdk as sdk;

#[path = "support/module.rs"]
mod module;

const SAMPLES: usize = 31;

/// The allocator the `switchboard` binary runs with, so the host's side of a
/// call (lowering, lifting, the store) is measured as the service runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Default)]
struct NativeDefaults;
impl sdk::Rule for NativeDefaults {}

/// A realistic event: a known caller with recent conversations is answered
/// by an agent, so the default rules walk the append (TU1) path, assign the
/// conversation and fill standard and mapped custom fields.
fn inputs() -> (t::SessionEvent, t::Context) {
    let event = serde_json::json!({
        "id": "evt-bench-1", "at": "2026-11-24T10:00:00.000Z",
        "session": {
            "id": "call-1042", "kind": "IvrCall", "channel": "Voice", "direction": "Inbound",
            "session_type": "Voice Inbound (IVR)",
            "end_user": {"phone": "+14155550100", "sdk_identifier": null, "email": null, "name": "Ada Lovelace"},
            "menu": {"id": 9, "name": "Billing", "path": "3/9"}, "queue_name": "Billing", "language": "en",
            "agent": {"id": 7, "email": "grace@example.com", "name": "Grace Hopper"},
            "started_at": "2026-11-24T10:00:00.000Z", "ended_at": null,
            "durations": {"call_seconds": null, "hold_seconds": null, "wait_seconds": 12},
            "parent_session_id": null,
            "custom_data": [{"key": "plan", "label": "Plan", "value": "gold"}]
        },
        "kind": {"Assigned": {"id": 7, "email": "grace@example.com", "name": "Grace Hopper"}}
    });
    let conversation = |id: &str, status: &str, menu: &str| {
        serde_json::json!({
            "id": id, "status": status, "channel": "Voice", "menu_selection": menu,
            "created_at": "2026-11-20T09:00:00.000Z", "voicemail": false, "direction": "Inbound", "session_id": null
        })
    };
    let ctx = serde_json::json!({
        "tenant": "acme", "now": "2026-11-24T10:00:00.000Z",
        "customer": {"id": "5f1e0c0e0c0e0c0e0c0e0c01", "name": "Ada Lovelace", "phones": ["+14155550100"],
                     "emails": [], "external_id": null, "tags": [], "created_recently": false},
        "recent_conversations": [
            conversation("5f1e0c0e0c0e0c0e0c0e0c11", "Done", "Billing"),
            conversation("5f1e0c0e0c0e0c0e0c0e0c12", "Open", "Billing"),
            conversation("5f1e0c0e0c0e0c0e0c0e0c13", "Snoozed", "Sales")
        ],
        "linked_conversation": null,
        "settings": {
            "recording_enabled": true,
            "fields": [
                {"field": "SessionId", "name": "ccaiSessionIdStr"},
                {"field": "FromPhone", "name": "ccaiFromPhoneStr"},
                {"field": "MenuSelection", "name": "ccaiMenuSelectionStr"},
                {"field": "QueueName", "name": "ccaiQueueNameStr"}
            ],
            "field_mapping": [{"key": "plan", "target": "Conversation", "name": "ccaiPlanStr"}],
            "options": []
        }
    });
    (
        serde_json::from_value(event).expect("bench event matches the WIT types"),
        serde_json::from_value(ctx).expect("bench context matches the WIT types"),
    )
}

/// Median of `SAMPLES` batch means, in nanoseconds per iteration.
fn measure(mut batch: impl FnMut(u32) -> Duration) -> f64 {
    // Size batches to ~5 ms so timer resolution does not matter.
    let mut n = 1u32;
    while batch(n) < Duration::from_millis(5) && n < 1 << 24 {
        n *= 2;
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| batch(n).as_nanos() as f64 / f64::from(n))
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[SAMPLES / 2]
}

/// `--profile fresh|warm|native N`, when given.
fn profile_args() -> Option<(String, u32)> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--profile")?;
    let path = args.get(at + 1)?.clone();
    let n = args
        .get(at + 2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    Some((path, n))
}

fn main() {
    let profile = profile_args();
    // Another build of the default rules may be measured in their place.
    let bytes = module::default_rules().expect("SWITCHBOARD_BENCH_MODULE is readable");
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = rt.load(&bytes).expect("default module loads");
    let (event, ctx) = inputs();
    let meta = CallMeta::new("acme", "evt-bench-1");

    let native_event: sdk::SessionEvent =
        serde_json::from_value(serde_json::to_value(&event).expect("json")).expect("sdk event");
    let native_ctx: sdk::Context =
        serde_json::from_value(serde_json::to_value(&ctx).expect("json")).expect("sdk context");

    // The same rules must decide the same way on both paths.
    let wasm_plan = rt
        .on_session_event(&module, &meta, &event, &ctx)
        .expect("wasm call");
    let native_plan = sdk::Rule::on_session_event(&NativeDefaults, &native_event, &native_ctx)
        .expect("native call");
    assert_eq!(
        serde_json::to_value(&wasm_plan).expect("json"),
        serde_json::to_value(&native_plan).expect("json"),
        "wasm and native default rules disagree"
    );

    // Each runs its path `n` times and returns the time taken.
    let fresh_calls = |module: &LoadedModule, n: u32| {
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(
                rt.on_session_event(module, &meta, &event, &ctx)
                    .expect("call"),
            );
        }
        started.elapsed()
    };
    let warm_calls = |module: &LoadedModule, n: u32| {
        rt.bench_warm_session_calls(module, &meta, &event, &ctx, n)
            .expect("warm calls")
    };
    let native_calls = |n: u32| {
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(
                sdk::Rule::on_session_event(
                    &NativeDefaults,
                    std::hint::black_box(&native_event),
                    &native_ctx,
                )
                .expect("native"),
            );
        }
        started.elapsed()
    };

    if let Some((path, n)) = profile {
        match path.as_str() {
            "fresh" => fresh_calls(&module, n),
            "warm" => warm_calls(&module, n),
            "native" => native_calls(n),
            other => panic!("--profile takes fresh, warm or native, not {other}"),
        };
        return;
    }

    let fresh = measure(|n| fresh_calls(&module, n));
    let warm = measure(|n| warm_calls(&module, n));
    let native = measure(native_calls);

    // The echo fixture takes the same inputs but does almost nothing: its
    // fresh-vs-warm gap is the instantiation cost alone, and its warm call is
    // mostly moving the inputs across the component boundary.
    let echo = rt
        .load(&switchboard_rule_artifacts::bytes(
            switchboard_rule_artifacts::FIXTURE_ECHO,
        ))
        .expect("echo fixture loads");
    let echo_fresh = measure(|n| fresh_calls(&echo, n));
    let echo_warm = measure(|n| warm_calls(&echo, n));

    println!(
        "rule decision per event (default module, {} actions, median of {SAMPLES} samples)",
        wasm_plan.actions.len()
    );
    println!(
        "  wasm fresh (store + instantiate + call)  {:>9.2} µs",
        fresh / 1e3
    );
    println!(
        "  wasm warm  (call on one instance)        {:>9.2} µs",
        warm / 1e3
    );
    println!(
        "  native     (same rules through the SDK)  {:>9.2} µs",
        native / 1e3
    );
    println!(
        "  echo fixture fresh (same inputs)         {:>9.2} µs",
        echo_fresh / 1e3
    );
    println!(
        "  echo fixture warm  (same inputs)         {:>9.2} µs",
        echo_warm / 1e3
    );
    println!(
        "  ratio fresh / native                     {:>9.1}x",
        fresh / native
    );
    println!(
        "  ratio warm / native                      {:>9.1}x",
        warm / native
    );
    println!(
        "  ratio fresh / warm                       {:>9.1}x",
        fresh / warm
    );
    println!(
        "fresh_us={:.2} warm_us={:.2} native_us={:.2}",
        fresh / 1e3,
        warm / 1e3,
        native / 1e3
    );
}
