//! RM4: hot swap under load. Twenty swaps through the admin API, alternating
//! two modules, while 5,000 session events stream in (see [`events`]):
//! nothing lost, nothing
//! applied twice, every event decided by exactly one recorded version; an
//! invalid module is refused with its reason while the old one keeps serving.
use crate::support::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;
use switchboard::demo::{Stack, StackOptions};

/// Events in the stream (distinct new callers, one `session_created` each):
/// 5,000, as RM4's acceptance asks. `SWITCHBOARD_E2E_RM4_EVENTS` overrides it
/// (any multiple of the batch size) for quicker local runs.
fn events() -> u64 {
    std::env::var("SWITCHBOARD_E2E_RM4_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}
const BATCH: u64 = 100;
const SWAPS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rm4_hot_swap_under_load_loses_and_duplicates_nothing_e2e() {
    let started = Instant::now();
    #[allow(non_snake_case, reason = "read once, used like a constant")]
    let EVENTS = events();
    let mut options = StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    options.poll_interval = None;
    // Stored before the answer, so that the answers count what was new.
    options.intake_log = None;
    let data = tempfile::tempdir().expect("data dir");
    options.data_dir = Some(data.path().to_path_buf());
    let stack = std::sync::Arc::new(start(options).await);
    // 5,000 callers cost ~25,000 Kustomer requests: lift the org budget.
    stack.kustomer.control().set_rate_limit(10_000_000);
    let registry = stack.app.registry().clone();
    let first = registry.live("acme").expect("live module").info.clone();
    let modules = [
        std::fs::read(switchboard_rule_artifacts::RULES_EXAMPLE_VIP).expect("vip module"),
        std::fs::read(switchboard_rule_artifacts::RULES_DEFAULT).expect("default module"),
    ];
    let counts = Counts::open(data.path());

    // The stream: batches posted back to back, the first one twice.
    let poster = {
        let stack = stack.clone();
        tokio::spawn(async move {
            let mut accepted = 0;
            let mut duplicates = 0;
            for (n, start) in (0..EVENTS).step_by(BATCH as usize).chain([0]).enumerate() {
                let (status, body) = post_batch(
                    &stack.url(),
                    EVENTS_USER_STACK,
                    &stack.target.password,
                    &created_batch(start, BATCH),
                )
                .await;
                assert_eq!(status, 200, "batch {n}: {body}");
                accepted += body["accepted"].as_u64().unwrap_or(0);
                duplicates += body["duplicates"].as_u64().unwrap_or(0);
                stack.app.wake();
            }
            (accepted, duplicates)
        })
    };

    // Swaps spread over the processing, plus two refused uploads.
    let mut live_versions: HashMap<u32, String> =
        HashMap::from([(first.version, first.digest.clone())]);
    for k in 1..=SWAPS {
        let due = k * EVENTS / (SWAPS + 2);
        eventually(
            &format!("{due} events decided before swap {k}"),
            240,
            || (counts.decided() >= due).then_some(()),
        )
        .await;
        let (status, body) = await_or_timeout(
            &format!("swap {k}"),
            120,
            stack.upload_module(modules[(k as usize + 1) % 2].clone()),
        )
        .await
        .expect("upload answered");
        assert_eq!(status, 201, "swap {k}: {body}");
        let version = body["version"].as_u64().expect("version") as u32;
        live_versions.insert(
            version,
            body["digest"].as_str().expect("digest").to_string(),
        );
        if k == 5 || k == 15 {
            refused_upload(
                &stack,
                b"this is not a WebAssembly module".to_vec(),
                "text file",
            )
            .await;
            refused_upload(
                &stack,
                std::fs::read(switchboard_rule_artifacts::FIXTURE_WRONG_WORLD).expect("fixture"),
                "wrong-world module",
            )
            .await;
            let live = registry.live("acme").expect("still live");
            assert_eq!(
                live.info.version, version,
                "the refused uploads left v{version} live"
            );
        }
    }
    let (accepted, duplicates) = await_or_timeout("posting the stream", 240, poster)
        .await
        .expect("poster");
    assert_eq!(
        (accepted, duplicates),
        (EVENTS, BATCH),
        "every event accepted once, the repeated batch recognised"
    );

    eventually("every event applied", 300, || {
        (counts.inbox("pending") == 0 && counts.inbox("done") + counts.inbox("failed") == EVENTS)
            .then_some(())
    })
    .await;
    assert_no_failures(&stack);

    // Exactly one recorded decision per event, each by a version that was live.
    let outcomes = stack.app.store().outcomes("acme").expect("outcomes");
    assert_eq!(outcomes.len() as u64, EVENTS, "one outcome per event");
    let ids: HashSet<&str> = outcomes.iter().map(|o| o.event_id.as_str()).collect();
    assert_eq!(ids.len() as u64, EVENTS, "no event decided twice");
    let mut per_version: BTreeMap<u32, usize> = BTreeMap::new();
    for o in &outcomes {
        let version = o
            .module_version
            .unwrap_or_else(|| panic!("{} decided without a module", o.event_id));
        let digest = o.module_digest.as_deref().unwrap_or_default();
        assert_eq!(
            live_versions.get(&version).map(String::as_str),
            Some(digest),
            "{} decided by v{version} ({digest}), which never went live",
            o.event_id
        );
        *per_version.entry(version).or_default() += 1;
    }
    assert_eq!(live_versions.len() as u64, SWAPS + 1);
    assert!(
        per_version.len() as u64 > SWAPS / 2,
        "the swaps happened during the stream: decisions per version {per_version:?}"
    );

    // Kustomer holds each caller exactly once.
    let view = View::of(&stack);
    let phones: HashSet<String> = view
        .customers
        .iter()
        .flat_map(|c| attrs(c)["phones"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["phone"].as_str().map(str::to_string))
        .collect();
    assert_eq!(view.customers.len() as u64, EVENTS, "customers");
    assert_eq!(phones.len() as u64, EVENTS, "distinct callers");
    assert_eq!(view.conversations.len() as u64, EVENTS, "conversations");
    assert_eq!(view.messages.len() as u64, EVENTS, "messages");
    let per_conversation: HashSet<String> = view
        .messages
        .iter()
        .map(|m| rel(m, "conversation"))
        .collect();
    assert_eq!(
        per_conversation.len() as u64,
        EVENTS,
        "one message per conversation"
    );
    eprintln!(
        "rm4: {EVENTS} events, {SWAPS} swaps, decisions per version {per_version:?}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    match std::sync::Arc::try_unwrap(stack) {
        Ok(stack) => stack.shutdown().await,
        Err(_) => panic!("stack still shared"),
    }
}

/// The Basic user of the stack's session-event intake.
const EVENTS_USER_STACK: &str = "ccai-events";

async fn refused_upload(stack: &switchboard::demo::Stack, bytes: Vec<u8>, what: &str) {
    let before = live_version(stack);
    let (status, body) = await_or_timeout(
        &format!("uploading a {what}"),
        120,
        stack.upload_module(bytes),
    )
    .await
    .expect("upload answered");
    assert_eq!(status, 422, "{what} refused: {body}");
    let reason = body["error"].as_str().unwrap_or_default();
    assert!(
        !reason.is_empty(),
        "{what}: the refusal gives its reason: {body}"
    );
    let after = live_version(stack);
    assert_eq!(
        after.digest, before.digest,
        "{what}: the previous version stays live"
    );
    eprintln!("rm4: {what} refused: {reason}");
}

/// RM4 through the watched module directory: writing `<tenant>.wasm` makes
/// it live without a restart; an invalid file is refused and the live
/// version keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm4_watched_module_directory_swaps_and_refuses_invalid_files_e2e() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    options.modules_dir = Some(dir.path().to_path_buf());
    let stack = start(options).await;
    let registry = stack.app.registry().clone();
    let first = registry
        .live("acme")
        .expect("default module live")
        .info
        .clone();

    std::fs::write(
        dir.path().join("acme.wasm"),
        switchboard_rule_artifacts::bytes(switchboard_rule_artifacts::RULES_EXAMPLE_VIP),
    )
    .expect("write module");
    let swapped = eventually("the watched module going live", 30, || {
        registry
            .live("acme")
            .filter(|d| d.info.digest != first.digest)
            .map(|d| d.info.clone())
    })
    .await;
    assert!(swapped.source.ends_with("acme.wasm"), "{swapped:?}");

    std::fs::write(dir.path().join("acme.wasm"), b"not a module").expect("write text");
    // Give the watcher time to see the write; the live version must not move.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        registry.live("acme").expect("live").info,
        swapped,
        "invalid file refused"
    );

    play(&stack, "tc1_inbound_ivr_call").await;
    settle(&stack, "events after the refused file").await;
    assert_no_failures(&stack);
    let outcomes = stack.app.store().outcomes("acme").expect("outcomes");
    assert!(
        !outcomes.is_empty()
            && outcomes
                .iter()
                .all(|o| o.module_digest.as_deref() == Some(swapped.digest.as_str())),
        "every event decided by the watched version: {outcomes:?}"
    );
    stack.shutdown().await;
}

/// OP7: a module in the watched directory that was deployed before does not
/// undo an operator's later rollback when the service restarts; writing the
/// file again (new content) still deploys it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op7_a_restart_keeps_the_admin_rollback_over_the_watched_module_e2e() {
    let modules = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let vip = switchboard_rule_artifacts::bytes(switchboard_rule_artifacts::RULES_EXAMPLE_VIP);
    std::fs::write(modules.path().join("acme.wasm"), &vip).expect("write module");
    let options = || {
        let mut options = StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
        options.modules_dir = Some(modules.path().to_path_buf());
        options.data_dir = Some(data.path().to_path_buf());
        options
    };

    // The default module, then the watched VIP module, go live.
    let stack = start(options()).await;
    let live = live_version(&stack);
    assert!(live.source.ends_with("acme.wasm"), "{live:?}");
    // The operator rolls back to the default module.
    let rolled = admin_post(&stack, "/admin/tenants/acme/modules/rollback").await;
    let chosen = live_version(&stack);
    assert_ne!(chosen.digest, live.digest, "rolled back: {rolled}");
    stack.shutdown().await;

    // Restart on the same data and module directories: the rollback stands.
    let stack = start(options()).await;
    let after = live_version(&stack);
    assert_eq!(
        after.digest, chosen.digest,
        "the operator's choice survives a restart"
    );
    stack.shutdown().await;
}

/// What the registry has live for `acme`.
fn live_version(stack: &Stack) -> switchboard::runtime::VersionInfo {
    stack
        .app
        .registry()
        .live("acme")
        .expect("live")
        .info
        .clone()
}
