//! Click-to-call (SPEC §7, C2C1–C2C3) through the running sidecar, the
//! default rule module and both emulators.
use serde_json::{json, Value};
use std::future::Future;
use std::time::Duration;
use switchboard::demo::{Stack, StackOptions, AGENT_API_TOKEN};
use switchboard_emulators::ccai::scenario_named;
use switchboard_rule_artifacts::RULES_DEFAULT;

const ADA: &str = "ada@example.com";
/// The TC1 caller, as Kustomer's side panel shows the number.
const TC1_CALLER: &str = "(415) 555-0101";

async fn within<T>(what: &str, secs: u64, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs} s: {what}"),
    }
}

/// A stack where the TC1 caller has an open conversation.
async fn start() -> (Stack, String) {
    let stack = within(
        "starting the stack",
        120,
        Stack::start(StackOptions::new(RULES_DEFAULT)),
    )
    .await
    .expect("stack starts");
    let tc1 = scenario_named("tc1_inbound_ivr_call").expect("tc1 scenario");
    within("playing tc1", 60, stack.play(&tc1))
        .await
        .expect("tc1 plays");
    within(
        "applying tc1",
        120,
        stack.wait_idle(Duration::from_secs(110)),
    )
    .await
    .expect("tc1 applied");
    let open = open_conversation_of(&stack, "+14155550101").expect("TC1 opened a conversation");
    (stack, open)
}

fn open_conversation_of(stack: &Stack, phone: &str) -> Option<String> {
    let k = stack.kustomer.control();
    let customer = k.customers().into_iter().find(|c| {
        c["attributes"]["phones"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["phone"] == phone))
    })?;
    k.conversations()
        .into_iter()
        .filter(|c| {
            c["relationships"]["customer"]["data"]["id"] == customer["id"]
                && c["attributes"]["status"] == "open"
        })
        .map(|c| c["id"].as_str().unwrap_or_default().to_string())
        .next()
}

/// Waits until the sidecar has applied everything it was given.
async fn applied(stack: &Stack, what: &str) {
    within(
        &format!("applying {what}"),
        120,
        stack.wait_idle(Duration::from_secs(110)),
    )
    .await
    .expect("applied");
}

/// The conversation link of the placed call `call-<id>`.
fn link_of(stack: &Stack, call_id: u64) -> Option<switchboard::store::SessionLink> {
    stack
        .app
        .store()
        .session_link("acme", &format!("call-{call_id}"))
        .expect("store")
}

async fn click(stack: &Stack, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/tenants/acme/click-to-call", stack.url()))
        .bearer_auth(AGENT_API_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("click-to-call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn calls_placed(stack: &Stack) -> Vec<Value> {
    stack
        .ccai
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/apps/api/v1/calls"))
        .map(|r| r.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2c1_prefill_gives_the_e164_number_and_the_conversation_to_follow() {
    let (stack, open) = start().await;

    // The customer's latest open conversation.
    let (status, body) = click(
        &stack,
        json!({ "agent_email": ADA, "phone": TC1_CALLER, "mode": "prefill" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["number"], "+14155550101", "{body}");
    assert_eq!(body["conversation_id"], open.as_str(), "{body}");

    // A given conversation wins.
    let (_, body) = click(
        &stack,
        json!({ "agent_email": ADA, "phone": "415.555.0101", "conversation_id": "conv-given", "mode": "prefill" }),
    )
    .await;
    assert_eq!(body["conversation_id"], "conv-given", "{body}");

    // An unknown number: no conversation.
    let (status, body) = click(
        &stack,
        json!({ "agent_email": ADA, "phone": "+1 415 555 0199", "mode": "prefill" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["number"], "+14155550199", "{body}");
    assert!(body["conversation_id"].is_null(), "{body}");

    assert!(
        calls_placed(&stack).is_empty(),
        "prefill places no call (the agent presses Call)"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2c2_se1_dial_places_the_call_which_then_follows_tc3_and_tu2() {
    let (stack, open) = start().await;

    // TU2: the customer has an open conversation; the call is appended.
    let (status, body) = click(
        &stack,
        json!({ "agent_email": ADA, "phone": TC1_CALLER, "mode": "dial" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let call_id = body["call_id"].as_u64().expect("call id");
    let placed = calls_placed(&stack);
    assert_eq!(placed.len(), 1, "{placed:?}");
    assert_eq!(placed[0]["call_type"], "Voice Outbound (API)");
    assert_eq!(placed[0]["agent_email"], ADA);
    assert_eq!(placed[0]["end_user_number"], "+14155550101");
    // SE1: the placement is the session's first update; the call is linked
    // before CCAI Platform reports it, and its reports add no second record.
    applied(&stack, "the placement").await;
    let early = link_of(&stack, call_id).expect("linked at placement");
    assert_eq!(early.conversation_id, open, "TU2 at placement");
    let messages_before = stack.kustomer.control().messages().len();
    let session = stack
        .ccai
        .api_call_scenario(call_id, 90)
        .expect("the call exists");
    within("playing the outbound call", 60, stack.play(&session))
        .await
        .expect("delivered");
    applied(&stack, "the call").await;
    let link = link_of(&stack, call_id).expect("the outbound call is linked to a conversation");
    assert_eq!(
        link.conversation_id, open,
        "TU2: appended to the open conversation"
    );
    assert_eq!(
        stack.kustomer.control().messages().len(),
        messages_before,
        "the platform's report of the call adds no second call record"
    );

    // TC3: a number with no open conversation gets a new one; a given
    // conversation travels as ticket_id.
    let before = stack.kustomer.control().conversations().len();
    let (status, body) = click(
        &stack,
        json!({ "agent_email": ADA, "phone": "+1 (415) 555-0177", "conversation_id": "conv-ticket", "mode": "dial" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let placed = calls_placed(&stack);
    assert_eq!(placed[1]["ticket_id"], "conv-ticket", "{placed:?}");
    let call_id = body["call_id"].as_u64().expect("call id");
    let session = stack
        .ccai
        .api_call_scenario(call_id, 30)
        .expect("the call exists");
    within("playing the second call", 60, stack.play(&session))
        .await
        .expect("delivered");
    applied(&stack, "the call").await;
    let link = link_of(&stack, call_id).expect("linked");
    assert_ne!(link.conversation_id, open);
    assert_eq!(
        stack.kustomer.control().conversations().len(),
        before + 1,
        "TC3: a new conversation"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2c3_bad_number_unknown_agent_and_unavailable_agent_are_named() {
    let (stack, _) = start().await;
    let cases = [
        (
            json!({ "agent_email": ADA, "phone": "call me maybe", "mode": "dial" }),
            422,
            "invalid_number",
        ),
        (
            json!({ "agent_email": ADA, "phone": "+1 000", "mode": "prefill" }),
            422,
            "invalid_number",
        ),
        (
            json!({ "agent_email": "nobody@example.com", "phone": TC1_CALLER, "mode": "dial" }),
            404,
            "unknown_agent",
        ),
        // Craig is In-call in CCAI Platform.
        (
            json!({ "agent_email": "craigT@nelson.com", "phone": TC1_CALLER, "mode": "dial" }),
            409,
            "agent_unavailable",
        ),
        // Darth is at Lunch: CCAI Platform refuses the call itself.
        (
            json!({ "agent_email": "notanakinskywalker@empire.com", "phone": TC1_CALLER, "mode": "dial" }),
            409,
            "agent_unavailable",
        ),
    ];
    for (body, status, reason) in cases {
        let (got, answer) = click(&stack, body.clone()).await;
        assert_eq!(
            (got, answer["reason"].as_str()),
            (status, Some(reason)),
            "{body} → {answer}"
        );
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    let (_, answer) = click(
        &stack,
        json!({ "agent_email": "notanakinskywalker@empire.com", "phone": TC1_CALLER, "mode": "dial" }),
    )
    .await;
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Agent is not available to take this call"),
        "{answer}"
    );
    stack.shutdown().await;
}
