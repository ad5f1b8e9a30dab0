//! The Kustomer mirror (KU2) and the request budget (KU3), through the
//! running sidecar and the Kustomer emulator.
use crate::support::*;
use serde_json::{json, Value};
use switchboard::demo::Stack;
use switchboard_emulators::ccai::{call_updates, CallOutcome, CallSpec, Scenario, Step, Stream};
use switchboard_emulators::kustomer::WebhookTarget;

const WEBHOOK_TOKEN: &str = "ku2-webhook-token";

/// Plays one update of a call and settles.
async fn play_update(stack: &Stack, update: Value, what: &str) {
    let scenario = Scenario {
        name: "one update",
        spec_ids: &[],
        description: "one update",
        steps: vec![Step::SessionEvents {
            stream: Stream::Calls,
            batch: json!({ "count": 1, "events": [update] }),
        }],
    };
    play_scenario(stack, &scenario, what).await;
}

/// The Kustomer API requests made since the last clear (the field check
/// and the directory read at start are not a call's).
fn api_requests(stack: &Stack) -> Vec<(String, String)> {
    stack
        .kustomer
        .control()
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v1/") && !r.path.starts_with("/v1/metadata"))
        .map(|r| (r.method, r.path))
        .collect()
}

/// A stack whose start-up reads (field check, user directory) are over.
async fn quiet_stack(webhooks: bool) -> Stack {
    let mut options =
        switchboard::demo::StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    if webhooks {
        options.mirror.webhook_token = Some(WEBHOOK_TOKEN.to_string().into());
    }
    let stack = start(options).await;
    if webhooks {
        stack.kustomer.control().set_webhook(Some(WebhookTarget {
            url: format!("{}/v1/tenants/acme/kustomer/webhooks", stack.url()),
            token: WEBHOOK_TOKEN.into(),
        }));
    }
    eventually("the user directory read at start", 30, || {
        api_requests(&stack)
            .iter()
            .any(|(_, path)| path.starts_with("/v1/users?page"))
            .then_some(())
    })
    .await;
    stack
}

/// KU3: a new caller's six-update IVR call (created, queued, assigned,
/// connected, ended, recording) costs at most 8 Kustomer requests and a
/// known caller's at most 6, with and without webhooks. The known caller's
/// call differs in its durations, so nothing is skipped for being equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ku3_a_six_update_call_costs_at_most_8_requests_new_and_6_known_e2e() {
    for webhooks in [false, true] {
        let stack = quiet_stack(webhooks).await;
        let mut totals = Vec::new();
        for (who, id, call_seconds) in [("new caller", 7301, 60), ("known caller", 7302, 95)] {
            let call = CallSpec {
                recording: true,
                event_types: false,
                ..CallSpec::new(id, "+1 415-555-7301", CallOutcome::Answered)
            };
            let mut per_update = Vec::new();
            for mut update in call_updates(&call) {
                if update["item"].get("call_duration").is_some() {
                    update["item"]["call_duration"] = json!(call_seconds);
                }
                stack.kustomer.control().clear_requests();
                play_update(&stack, update, who).await;
                let requests = api_requests(&stack);
                for (method, path) in &requests {
                    eprintln!(
                        "ku3 ({}) {who}: {method} {path}",
                        if webhooks { "webhooks" } else { "no webhooks" }
                    );
                }
                let reads = requests.iter().filter(|(m, _)| m == "GET").count();
                per_update.push((requests.len(), reads));
            }
            let total: usize = per_update.iter().map(|(n, _)| n).sum();
            let reads: usize = per_update.iter().map(|(_, r)| r).sum();
            println!(
                "ku3 ({}): {who}: {total} Kustomer requests ({reads} reads) for created, queued, assigned, connected, ended, recording: {per_update:?}",
                if webhooks { "webhooks" } else { "no webhooks" }
            );
            totals.push(total);
        }
        assert!(totals[0] <= 8, "new caller: {totals:?}");
        assert!(totals[1] <= 6, "known caller: {totals:?}");
        stack.shutdown().await;
    }
}

/// The conversation a caller's earlier call left, and its messages.
fn conversations_with_calls(stack: &Stack, phone: &str) -> Vec<(String, String, usize)> {
    let view = View::of(stack);
    let customer = view.customer_with_phone(phone);
    view.conversations_of(customer)
        .iter()
        .map(|c| {
            (
                id(c),
                c["attributes"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                view.messages_of(c).len(),
            )
        })
        .collect()
}

/// Plays a whole answered call.
async fn answered_call(stack: &Stack, id: u64, phone: &str) {
    let call = CallSpec {
        event_types: false,
        ..CallSpec::new(id, phone, CallOutcome::Answered)
    };
    for update in call_updates(&call) {
        play_update(stack, update, "a call").await;
    }
}

/// KU2, without webhooks: an agent closes the caller's open conversation in
/// Kustomer; the mirror still shows it open, but before the next call is
/// appended to it (TU1) the conversation is read again, found done, and the
/// call gets a conversation of its own. Nothing is misfiled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ku2_a_conversation_closed_in_kustomer_is_read_again_before_an_append_e2e() {
    let stack = quiet_stack(false).await;
    let phone = "+1 415-555-7401";
    answered_call(&stack, 7401, phone).await;
    let first = conversations_with_calls(&stack, "+14155557401");
    assert_eq!(first.len(), 1, "{first:?}");
    let (closed, status, _) = first[0].clone();
    assert_eq!(status, "open", "TU1 needs an open conversation: {first:?}");
    // An agent closes it in Kustomer; no webhook tells the sidecar.
    kustomer_client(&stack)
        .set_conversation_status(&closed, "done")
        .await
        .expect("agent closes");
    // At once: the mirror (10 s) still shows it open.
    stack.kustomer.control().clear_requests();
    answered_call(&stack, 7402, phone).await;
    let reread = api_requests(&stack)
        .iter()
        .filter(|(m, p)| m == "GET" && *p == format!("/v1/conversations/{closed}"))
        .count();
    let after = conversations_with_calls(&stack, "+14155557401");
    assert_eq!(after.len(), 2, "the call got a new conversation: {after:?}");
    let old = after
        .iter()
        .find(|c| c.0 == closed)
        .expect("the closed one");
    assert_eq!(
        (old.1.as_str(), old.2),
        ("done", 1),
        "nothing appended to it: {after:?}"
    );
    assert_eq!(reread, 1, "read again once before the append decision");
    stack.shutdown().await;
}

/// KU2, with webhooks: Kustomer's signed delivery of the agent's close
/// reaches the mirror, so the next call goes to a new conversation without
/// reading the closed one again; a delivery with a wrong signature is
/// refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ku2_signed_webhooks_keep_the_mirror_current_and_a_bad_signature_is_refused_e2e() {
    let stack = quiet_stack(true).await;
    let phone = "+1 415-555-7501";
    answered_call(&stack, 7501, phone).await;
    let first = conversations_with_calls(&stack, "+14155557501");
    let (closed, _, _) = first[0].clone();

    // A forged "reopen" is refused.
    let forged = json!({ "name": "kustomer.conversation.update", "data": { "type": "conversation", "id": closed, "attributes": { "status": "open" } } });
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/tenants/acme/kustomer/webhooks", stack.url()))
        .header("x-kustomer-webhook-signature", "00")
        .json(&forged)
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 401);

    let delivered_before = stack.kustomer.control().webhook_deliveries().len();
    kustomer_client(&stack)
        .set_conversation_status(&closed, "done")
        .await
        .expect("agent closes");
    eventually("the close delivered to the sidecar", 30, || {
        stack
            .kustomer
            .control()
            .webhook_deliveries()
            .iter()
            .skip(delivered_before)
            .any(|d| d.event == "kustomer.conversation.update" && d.status == Some(200))
            .then_some(())
    })
    .await;
    stack.kustomer.control().clear_requests();
    answered_call(&stack, 7502, phone).await;
    let reads: Vec<_> = api_requests(&stack)
        .into_iter()
        .filter(|(m, _)| m == "GET")
        .collect();
    let after = conversations_with_calls(&stack, "+14155557501");
    assert_eq!(after.len(), 2, "the call got a new conversation: {after:?}");
    let old = after
        .iter()
        .find(|c| c.0 == closed)
        .expect("the closed one");
    assert_eq!((old.1.as_str(), old.2), ("done", 1), "{after:?}");
    assert!(
        reads.is_empty(),
        "the mirror answered every read: {reads:?}"
    );
    stack.shutdown().await;
}

/// KU3 per session type, for the README's table: what a whole session of
/// each kind costs in Kustomer requests. Each reads Kustomer at most once
/// (the new caller's lookup): everything else comes from the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ku3_requests_per_session_type_are_reported_e2e() {
    let stack = quiet_stack(false).await;
    let call = |id: u64, outcome: CallOutcome, voicemail_actions: u8| {
        call_updates(&CallSpec {
            event_types: false,
            voicemail_actions,
            ..CallSpec::new(id, &format!("+1 415-555-{id}"), outcome)
        })
    };
    let sessions = [
        ("IVR call, abandoned", call(7601, CallOutcome::Abandoned, 0)),
        (
            "IVR call, voicemail read and closed",
            call(7602, CallOutcome::Voicemail, 2),
        ),
        (
            "IVR call, hung up in the IVR",
            call(7603, CallOutcome::IvrHangUp, 0),
        ),
        (
            "mobile chat, started",
            vec![switchboard_emulators::ccai::load::created_event(7604, 7604)],
        ),
    ];
    for (kind, updates) in sessions {
        let count = updates.len();
        stack.kustomer.control().clear_requests();
        for update in updates {
            play_update(&stack, update, kind).await;
        }
        let requests = api_requests(&stack);
        let reads = requests.iter().filter(|(m, _)| m == "GET").count();
        println!(
            "ku3: {kind} ({count} updates): {} Kustomer requests ({reads} reads)",
            requests.len()
        );
        assert!(reads <= 1, "{kind}: {requests:?}");
    }
    stack.shutdown().await;
}
