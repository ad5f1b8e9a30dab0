//! Session reconciliation (SPEC SE1–SE6, TC1, TC5) through the running
//! sidecar: whatever order, repetition, batching or shape a session's
//! updates arrive in, Kustomer ends in the state the in-order delivery
//! leaves.
use crate::support::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use switchboard::demo::Stack;
use switchboard_emulators::ccai::{
    self as ccai_emu, call_final_record, call_updates, strategies, CallOutcome, CallSpec,
};

const ADA: &str = "ada@example.com";

/// A scenario delivering `batches` of updates, one POST each, with the
/// call's final record served by the Manager API (when given).
fn deliveries(batches: Vec<Vec<Value>>, final_record: Option<Value>) -> ccai_emu::Scenario {
    let mut steps: Vec<ccai_emu::Step> = batches
        .into_iter()
        .map(|events| ccai_emu::Step::SessionEvents {
            stream: ccai_emu::Stream::Calls,
            batch: json!({ "count": events.len(), "events": events }),
        })
        .collect();
    steps.extend(final_record.map(ccai_emu::Step::FinalCall));
    ccai_emu::Scenario {
        name: "generated",
        spec_ids: &[],
        description: "generated call",
        steps,
    }
}

/// Every update in order, one POST each, then the final record.
fn in_order(spec: &CallSpec) -> ccai_emu::Scenario {
    deliveries(
        call_updates(spec).into_iter().map(|u| vec![u]).collect(),
        Some(call_final_record(spec)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn se2_the_documented_six_step_call_without_event_type_completes_its_conversation_e2e() {
    let stack = start_default().await;
    let call = CallSpec {
        recording: true,
        event_types: false,
        ..CallSpec::new(7001, "+1 415-555-7001", CallOutcome::Answered)
    };
    let updates = call_updates(&call);
    assert_eq!(
        updates.len(),
        6,
        "created, queued, assigned, connected, ended, recording"
    );
    assert!(updates.iter().all(|u| u.get("event_type").is_none()));
    play_scenario(
        &stack,
        &deliveries(updates.into_iter().map(|u| vec![u]).collect(), None),
        "the six updates",
    )
    .await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155557001");
    let conversations = view.conversations_of(customer);
    assert_eq!(conversations.len(), 1, "{conversations:#?}");
    let c = conversations[0];
    assert_eq!(view.assignees(c), [ADA]);
    assert_eq!(view.messages_of(c).len(), 1, "one call record");
    assert_eq!(custom(c, "ccaiCallDurationNum"), &json!(60.0));
    assert_eq!(
        attr_str(view.attachment("call-7001.mp3"), "contentType"),
        "audio/mpeg"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tc1_an_ivr_call_hung_up_before_any_queue_gets_a_customer_and_a_conversation_e2e() {
    let stack = start_default().await;
    let call = CallSpec::new(7002, "+1 415-555-7002", CallOutcome::IvrHangUp);
    play_scenario(&stack, &in_order(&call), "an IVR hang-up").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155557002");
    let conversations = view.conversations_of(customer);
    assert_eq!(conversations.len(), 1, "{conversations:#?}");
    assert_eq!(attr_str(conversations[0], "direction"), "in");
    assert_eq!(view.messages_of(conversations[0]).len(), 1);
    assert!(
        view.assignees(conversations[0]).is_empty(),
        "nobody answered"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tc5_a_new_callers_voicemail_is_one_voicemail_conversation_e2e() {
    let stack = start_default().await;
    let call = CallSpec {
        voicemail_actions: 1,
        ..CallSpec::new(7003, "+1 415-555-7003", CallOutcome::Voicemail)
    };
    play_scenario(&stack, &in_order(&call), "a new caller's voicemail").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155557003");
    let conversations = view.conversations_of(customer);
    assert_eq!(
        conversations.len(),
        1,
        "only the voicemail conversation: {conversations:#?}"
    );
    assert!(tags(conversations[0]).iter().any(|t| t == "voicemail"));
    assert_eq!(
        view.notes_of(conversations[0])
            .iter()
            .filter(|n| n.starts_with("Voicemail"))
            .count(),
        2,
        "the recording's note and the read note: {:#?}",
        view.notes_of(conversations[0])
    );
    view.attachment("voicemail-7003.mp3");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tc5_a_voicemail_leaves_the_callers_open_conversation_untouched_e2e() {
    let stack = start_default().await;
    let phone = "+1 415-555-7004";
    // An answered call leaves an open conversation on the same menu and
    // channel (TU1 would append to it)...
    play_scenario(
        &stack,
        &in_order(&CallSpec::new(7004, phone, CallOutcome::Answered)),
        "the first call",
    )
    .await;
    let before = View::of(&stack);
    let open = before.conversations_of(before.customer_with_phone("+14155557004"))[0].clone();
    assert_eq!(attr_str(&open, "status"), "open");
    // ...then the same caller leaves a voicemail.
    play_scenario(
        &stack,
        &in_order(&CallSpec::new(7005, phone, CallOutcome::Voicemail)),
        "the voicemail",
    )
    .await;
    let view = View::of(&stack);
    let conversations = view.conversations_of(view.customer_with_phone("+14155557004"));
    assert_eq!(conversations.len(), 2, "{conversations:#?}");
    let still = conversations
        .iter()
        .find(|c| id(c) == id(&open))
        .expect("the open one");
    assert_eq!(**still, open, "the open conversation is untouched");
    assert_eq!(
        view.messages_of(still).len(),
        before.messages_of(&open).len()
    );
    assert_eq!(view.notes_of(still), before.notes_of(&open));
    let voicemail = conversations
        .iter()
        .find(|c| id(c) != id(&open))
        .expect("voicemail");
    assert!(tags(voicemail).iter().any(|t| t == "voicemail"));
    assert_eq!(view.messages_of(voicemail).len(), 1);
    stack.shutdown().await;
}

/// Everything Kustomer holds, as JSON, for comparing before and after.
fn everything(stack: &Stack) -> Value {
    let view = View::of(stack);
    json!({
        "customers": view.customers,
        "conversations": view.conversations,
        "messages": view.messages,
        "notes": view.notes,
        "attachments": view.attachments,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn se3_redelivering_every_update_of_finished_sessions_changes_nothing_in_kustomer_e2e() {
    let stack = start_default().await;
    let calls = [
        CallSpec {
            transfers: 2,
            recording: true,
            rating: Some(5),
            smart_action: Some(true),
            tier: Some(("gold".into(), Some("platinum".into()))),
            ..CallSpec::new(7010, "+1 415-555-7010", CallOutcome::Answered)
        },
        CallSpec {
            smart_action: Some(false),
            ..CallSpec::new(7011, "+1 415-555-7011", CallOutcome::Answered)
        },
        CallSpec {
            voicemail_actions: 3,
            ..CallSpec::new(7012, "+1 415-555-7012", CallOutcome::Voicemail)
        },
        CallSpec::new(7013, "+1 415-555-7013", CallOutcome::Abandoned),
        CallSpec::new(7014, "+1 415-555-7014", CallOutcome::IvrHangUp),
    ];
    for call in &calls {
        play_scenario(&stack, &in_order(call), "a finished session").await;
    }
    let done = everything(&stack);
    let derived = stack
        .app
        .store()
        .events(&stack.options.tenant)
        .expect("rows")
        .len();
    for call in &calls {
        let updates = call_updates(call);
        // Each update again, alone; then all of them in one batch, reversed.
        let mut again: Vec<Vec<Value>> = updates.iter().map(|u| vec![u.clone()]).collect();
        again.push(updates.iter().rev().cloned().collect());
        play_scenario(
            &stack,
            &deliveries(again, Some(call_final_record(call))),
            "the re-delivery",
        )
        .await;
    }
    assert_eq!(
        stack
            .app
            .store()
            .events(&stack.options.tenant)
            .expect("rows")
            .len(),
        derived,
        "no new transition"
    );
    assert_eq!(everything(&stack), done, "Kustomer unchanged");
    stack.shutdown().await;
}

/// One customer's Kustomer state with everything that names the call
/// (ids, phone, times) replaced, so two calls can be compared.
fn state_of(view: &View, phone_e164: &str, call: &CallSpec) -> String {
    let customer = view.customer_with_phone(phone_e164);
    let mut conversations: Vec<Value> = view
        .conversations_of(customer)
        .into_iter()
        .map(|c| {
            let a = attrs(c);
            let mut notes = view.notes_of(c);
            notes.sort();
            let mut tags = tags(c);
            tags.sort();
            json!({
                "name": a["name"], "status": a["status"], "direction": a["direction"],
                "priority": a["priority"], "tags": tags, "custom": a["custom"],
                "assignees": view.assignees(c),
                "messages": view.messages_of(c).iter().map(|m| (attr_str(m, "channel"), attr_str(m, "direction"))).collect::<Vec<_>>(),
                "notes": notes,
            })
        })
        .collect();
    conversations.sort_by_key(|c| c.to_string());
    let state = json!({
        "customer": { "name": attrs(customer)["name"], "custom": attrs(customer)["custom"] },
        "conversations": conversations,
    })
    .to_string();
    let digits: String = phone_e164.chars().filter(char::is_ascii_digit).collect();
    state
        .replace(&call.phone, "PHONE")
        .replace(phone_e164, "PHONE")
        .replace(&digits, "PHONE")
        .replace(&call.id.to_string(), "ID")
}

/// The case's two calls: one delivered in order, its twin (same content,
/// other id and number) in `order`, cut into POSTs of `batches` sizes.
fn twins(case: usize, spec: &CallSpec) -> (CallSpec, CallSpec) {
    let n = u64::try_from(case).unwrap_or(0);
    let make = |id: u64| CallSpec {
        id,
        phone: format!("+1 646-{:03}-{:04}", 200 + id / 10_000, id % 10_000),
        ..spec.clone()
    };
    (make(8000 + 2 * n), make(8001 + 2 * n))
}

fn e164(phone: &str) -> String {
    format!(
        "+{}",
        phone
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn se5_property_any_permutation_repetition_and_batching_gives_the_in_order_kustomer_state_e2e(
) {
    const CASES: usize = 200;
    let seed: [u8; 32] = match std::env::var("SWITCHBOARD_SE5_SEED") {
        Ok(hex) => {
            let mut seed = [0u8; 32];
            for (i, b) in seed.iter_mut().enumerate() {
                *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
            }
            seed
        }
        Err(_) => {
            // A new seed each run, printed so a failure can be replayed.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let mut seed = [0u8; 32];
            seed[..16].copy_from_slice(&nanos.to_le_bytes());
            seed[16..20].copy_from_slice(&std::process::id().to_le_bytes());
            seed
        }
    };
    let seed_hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    println!("se5: {CASES} cases, SWITCHBOARD_SE5_SEED={seed_hex}");
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let mut cases = Vec::with_capacity(CASES);
    for case in 0..CASES {
        let drawn = strategies::call_spec()
            .new_tree(&mut runner)
            .expect("a call")
            .current();
        let (a, b) = twins(case, &drawn);
        let n = call_updates(&b).len();
        let (order, sizes) = strategies::delivery(n)
            .new_tree(&mut runner)
            .expect("a delivery")
            .current();
        cases.push((a, b, order, sizes));
    }
    let mut stack_options =
        switchboard::demo::StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    stack_options.workers = 8;
    let stack = start(stack_options).await;
    // ~3,000 transitions cost ~15,000 Kustomer requests: lift the org budget.
    stack.kustomer.control().set_rate_limit(10_000_000);
    let started = std::time::Instant::now();
    // All cases at once: the in-order twins and the shuffled ones.
    let mut all = Vec::new();
    for (a, b, order, sizes) in &cases {
        all.push(in_order(a));
        let updates = call_updates(b);
        let mut batches = Vec::new();
        let mut rest: &[usize] = order;
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*size).min(rest.len()));
            batches.push(now.iter().map(|&i| updates[i].clone()).collect());
            rest = later;
        }
        all.push(deliveries(batches, Some(call_final_record(b))));
    }
    // Eight senders at once, each playing its share of the cases in turn.
    let senders = all.chunks(all.len().div_ceil(8)).map(|chunk| {
        let stack = &stack;
        async move {
            for scenario in chunk {
                stack.play(scenario).await.expect("delivered");
            }
        }
    });
    await_or_timeout(
        "delivering every case",
        600,
        futures::future::join_all(senders),
    )
    .await;
    settle(&stack, "every case").await;
    let view = View::of(&stack);
    let transitions = stack
        .app
        .store()
        .events(&stack.options.tenant)
        .expect("rows")
        .len();
    println!(
        "se5: {} sessions, {transitions} transitions applied in {:.1?}",
        2 * CASES,
        started.elapsed()
    );
    let mut failures = Vec::new();
    for (case, (a, b, order, sizes)) in cases.iter().enumerate() {
        let expected = state_of(&view, &e164(&a.phone), a);
        let got = state_of(&view, &e164(&b.phone), b);
        if expected != got {
            failures.push(format!(
                "case {case}: {b:?}\n  order {order:?} batches {sizes:?}\n  in order: {expected}\n  shuffled: {got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CASES} cases differ (SWITCHBOARD_SE5_SEED={seed_hex}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    stack.shutdown().await;
}
