//! The example tenant module (`rules/examples/vip`) through the real runtime:
//! its customisations of creation, appending and field mapping, and that
//! everything else behaves exactly like the default module.
use super::default_rules::{convert, wasm_decision, wasm_plan};
use switchboard_guest_sdk::testing::{self, PlanExt};
use switchboard_guest_sdk::{self as sdk, Channel, EventKind, FieldTarget, FieldValue, System};
use switchboard_rule_artifacts::{RULES_DEFAULT, RULES_EXAMPLE_VIP};

const PHONE: &str = "+14155550100";

fn vip(event: &sdk::SessionEvent, ctx: &sdk::Context) -> sdk::Plan {
    wasm_plan(RULES_EXAMPLE_VIP, event, ctx).unwrap_or_else(|e| panic!("vip module failed: {e}"))
}

fn default(event: &sdk::SessionEvent, ctx: &sdk::Context) -> sdk::Plan {
    wasm_plan(RULES_DEFAULT, event, ctx).unwrap_or_else(|e| panic!("default module failed: {e}"))
}

fn call() -> testing::SessionBuilder {
    testing::ivr_call("call-1").phone(PHONE).menu(9, "Billing")
}

/// A context where TU1 would append the call to `open-1`.
fn with_open_match(customer: testing::CustomerBuilder) -> sdk::Context {
    testing::context()
        .customer(customer)
        .open_conversation("open-1", Channel::Voice, Some("9"))
        .build()
}

#[test]
fn vip_tagged_customer_gets_new_priority_conversation_instead_of_append() {
    let ctx = with_open_match(testing::customer("cus-1").phone(PHONE).tag("vip"));
    let plan = vip(&call().event(EventKind::Ended), &ctx);
    assert!(
        plan.appended_to().is_none(),
        "a VIP is never appended: {plan:#?}"
    );
    let c = plan.conversation_created().expect("a new conversation");
    assert_eq!(c.priority, Some(5));
    assert!(c.tags.iter().any(|t| t == "vip"), "{:?}", c.tags);
    // The rest of the plan stays default: call record and PN1 note.
    assert_eq!(
        plan.kinds(),
        ["create-conversation", "add-message", "add-note"]
    );
}

#[test]
fn vip_custom_data_flag_gets_new_priority_conversation() {
    let ctx = with_open_match(testing::customer("cus-1").phone(PHONE));
    let plan = vip(&call().custom("vip", "true").event(EventKind::Ended), &ctx);
    assert!(plan.appended_to().is_none(), "{plan:#?}");
    assert_eq!(plan.conversation_created().unwrap().priority, Some(5));
}

#[test]
fn vip_outbound_and_callbacks_never_append() {
    let ctx = with_open_match(testing::customer("cus-1").phone(PHONE).tag("VIP"));
    for kind in [
        EventKind::Created,
        EventKind::HangupAndCallback,
        EventKind::ShortCallCallback,
    ] {
        let plan = vip(
            &testing::outbound_call("call-2").phone(PHONE).event(kind),
            &ctx,
        );
        assert!(plan.appended_to().is_none(), "{plan:#?}");
        assert_eq!(plan.conversation_created().unwrap().priority, Some(5));
    }
}

#[test]
fn non_vip_caller_is_appended_as_by_default() {
    let ctx = with_open_match(testing::customer("cus-1").phone(PHONE));
    let event = call().event(EventKind::Ended);
    let plan = vip(&event, &ctx);
    assert_eq!(plan.appended_to(), Some("open-1"));
    assert_eq!(plan, default(&event, &ctx));
}

#[test]
fn vip_false_flag_is_not_vip() {
    let ctx = with_open_match(testing::customer("cus-1").phone(PHONE));
    let plan = vip(&call().custom("vip", "false").event(EventKind::Ended), &ctx);
    assert_eq!(plan.appended_to(), Some("open-1"));
}

#[test]
fn loyalty_tier_maps_to_conversation_field_besides_tenant_mapping() {
    let ctx = testing::context()
        .customer(testing::customer("cus-1").phone(PHONE))
        .linked(testing::conversation("conv-1"))
        .mapping("order", FieldTarget::Conversation, "ccaiOrderStr")
        .build();
    let event = testing::mobile_chat("chat-1").event(EventKind::CustomData(vec![
        testing::datum("order", "A-17"),
        testing::datum("loyalty_tier", "gold"),
    ]));
    let plan = vip(&event, &ctx);
    assert_eq!(
        plan.field("ccaiOrderStr"),
        Some(&FieldValue::Text("A-17".into()))
    );
    assert_eq!(
        plan.field("ccaiLoyaltyTierStr"),
        Some(&FieldValue::Text("gold".into()))
    );
    // The default module knows nothing of the loyalty tier.
    assert_eq!(default(&event, &ctx).field("ccaiLoyaltyTierStr"), None);
}

#[test]
fn loyalty_tier_on_session_fills_new_conversation() {
    let ctx = testing::context()
        .customer(testing::customer("cus-1"))
        .build();
    let plan = vip(
        &testing::web_chat("chat-1")
            .custom("loyalty_tier", "silver")
            .event(EventKind::Created),
        &ctx,
    );
    let c = plan.conversation_created().expect("conversation");
    assert!(
        c.fields.iter().any(|f| f.name == "ccaiLoyaltyTierStr" && f.value == FieldValue::Text("silver".into())),
        "{:?}",
        c.fields
    );
}

#[test]
fn everything_else_matches_the_default_module() {
    let rec = testing::file("rec.wav", "audio/wav", "https://ccai.example/rec.wav");
    let agent = testing::agent(5, "ana@example.com");
    let kinds = [
        EventKind::Created,
        EventKind::Connected(agent.clone()),
        EventKind::Assigned(agent),
        EventKind::Abandoned,
        EventKind::RecordingReady(rec.clone()),
        EventKind::TranscriptReady(rec),
        EventKind::Rated(sdk::Rating {
            score: 5,
            comment: None,
        }),
        EventKind::Ended,
        EventKind::VoicemailUpdated(sdk::VoicemailAction::Closed),
    ];
    let contexts = [
        testing::context().build(),
        with_open_match(testing::customer("cus-1").phone(PHONE).created_recently()),
        testing::context()
            .standard_fields()
            .recording_enabled(true)
            .customer(testing::customer("cus-1"))
            .linked(testing::conversation("vm-1").voicemail())
            .build(),
    ];
    for kind in kinds {
        for ctx in &contexts {
            let event = call().durations(60, 5, 9).event(kind.clone());
            assert_eq!(
                vip(&event, ctx),
                default(&event, ctx),
                "{} differs",
                event.id
            );
        }
    }
    // Status sync is untouched.
    let change = testing::status_change(System::Kustomer, "ana@example.com", "Online").build();
    let sctx = testing::status_context()
        .kustomer_to_ccai("Online", "Available")
        .build();
    assert_eq!(
        wasm_decision(RULES_EXAMPLE_VIP, &change, &sctx),
        wasm_decision(RULES_DEFAULT, &change, &sctx)
    );
    // The conversion helper is symmetric for the example's types too.
    let back: sdk::StatusChange = convert(
        &convert::<_, switchboard::runtime::types::StatusChange>(&change),
    );
    assert_eq!(back, change);
}
