//! The shipped default module (`rules/default`) through the real runtime, one
//! test per SPEC id of §2–4 and §6 (SP1 is a host lookup and is tested with
//! the pipeline). Inputs are built with the guest SDK's `testing` builders
//! and converted to the host's types through serde: both sides are generated
//! from the same WIT with the same names and serde derives. Every wasm plan
//! is also compared with the native SDK's plan for the same inputs (RM5).
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use switchboard::runtime::{types as t, CallError, CallMeta, LoadedModule, Runtime, RuntimeConfig};
use switchboard_guest_sdk::testing::{self, check_plan, PlanExt};
use switchboard_guest_sdk::{self as sdk, Rule};
use switchboard_rule_artifacts::{RULES_DEFAULT, RULES_EXAMPLE_VIP};

// ------------------------------------------------------------------ harness

/// Converts between SDK and host types (same WIT, same serde shape).
pub(crate) fn convert<A: Serialize, B: DeserializeOwned>(value: &A) -> B {
    let json = serde_json::to_value(value).expect("serialising a WIT value");
    serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("SDK and host types disagree on {json}: {e}"))
}

/// One runtime for the whole binary. The deadline is generous because these
/// tests check decisions, not limits, and must not flake on a loaded machine.
fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            deadline: Duration::from_secs(5),
            ..RuntimeConfig::default()
        })
        .expect("building the runtime")
    })
}

fn module(path: &'static str) -> Arc<LoadedModule> {
    static DEFAULT: OnceLock<Arc<LoadedModule>> = OnceLock::new();
    static VIP: OnceLock<Arc<LoadedModule>> = OnceLock::new();
    let cell = match path {
        p if p == RULES_DEFAULT => &DEFAULT,
        p if p == RULES_EXAMPLE_VIP => &VIP,
        other => panic!("no module cell for {other}"),
    };
    cell.get_or_init(|| {
        runtime()
            .load(&switchboard_rule_artifacts::bytes(path))
            .unwrap_or_else(|e| panic!("loading {path}: {e}"))
    })
    .clone()
}

/// Runs `on-session-event` of the module at `path` in the runtime.
pub(crate) fn wasm_plan(
    path: &'static str,
    event: &sdk::SessionEvent,
    ctx: &sdk::Context,
) -> Result<sdk::Plan, CallError> {
    let event: t::SessionEvent = convert(event);
    let ctx: t::Context = convert(ctx);
    let meta = CallMeta::new(ctx.tenant.clone(), event.id.clone());
    runtime()
        .on_session_event(&module(path), &meta, &event, &ctx)
        .map(|plan| convert(&plan))
}

/// Runs `on-status-change` of the module at `path` in the runtime.
pub(crate) fn wasm_decision(
    path: &'static str,
    change: &sdk::StatusChange,
    ctx: &sdk::StatusContext,
) -> sdk::StatusDecision {
    let change: t::StatusChange = convert(change);
    let ctx: t::StatusContext = convert(ctx);
    let meta = CallMeta::new("tenant-a", format!("status:{}", change.agent_email));
    let decision = runtime()
        .on_status_change(&module(path), &meta, &change, &ctx)
        .unwrap_or_else(|e| panic!("on-status-change failed: {e}"));
    convert(&decision)
}

#[derive(Default)]
struct NativeDefaults;
impl Rule for NativeDefaults {}

/// The default module's plan; asserts it is well ordered and identical to
/// the native SDK's plan for the same inputs (RM5).
fn plan(event: &sdk::SessionEvent, ctx: &sdk::Context) -> sdk::Plan {
    let wasm = wasm_plan(RULES_DEFAULT, event, ctx)
        .unwrap_or_else(|e| panic!("default module failed on {}: {e}", event.id));
    let native = NativeDefaults
        .on_session_event(event, ctx)
        .expect("native defaults");
    assert_eq!(
        wasm, native,
        "wasm and native plans differ for {}",
        event.id
    );
    if let Err(e) = check_plan(&wasm, ctx) {
        panic!("plan breaks the ordering contract: {e}\n{wasm:#?}");
    }
    wasm
}

fn decision(change: &sdk::StatusChange, ctx: &sdk::StatusContext) -> sdk::StatusDecision {
    let wasm = wasm_decision(RULES_DEFAULT, change, ctx);
    assert_eq!(
        wasm,
        NativeDefaults.on_status_change(change, ctx),
        "wasm and native decisions differ"
    );
    wasm
}

// ------------------------------------------------------------------ inputs

const PHONE: &str = "+14155550100";
const ANA: &str = "ana@example.com";
const BO: &str = "bo@example.com";

use sdk::{
    AgentActivity, Channel, ConversationStatus, Direction, EventKind, FieldTarget, FieldValue,
    PriorityMode, StandardField, StatusDecision, StatusTarget, System,
};

fn billing_call() -> testing::SessionBuilder {
    testing::ivr_call("call-1")
        .phone(PHONE)
        .menu(9, "Billing")
        .language("en")
        .queue("Billing")
}

fn known() -> testing::CustomerBuilder {
    testing::customer("cus-1").phone(PHONE)
}

fn linked() -> testing::ContextBuilder {
    testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
}

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.to_string())
}

// ------------------------------------------------------------- §2 creation

#[test]
fn tc1_inbound_call_gets_its_conversation_once_its_outcome_is_known() {
    let ctx = testing::context().customer(known()).build();
    for waiting in [EventKind::Created, EventKind::Queued] {
        let plan = plan(&billing_call().event(waiting), &ctx);
        assert!(plan.is_skip(), "{plan:#?}");
    }
    // Ended anywhere, the IVR included (TC1); answered (TC2); abandoned (TC4).
    for outcome in [
        EventKind::Ended,
        EventKind::Assigned(testing::agent(5, ANA)),
        EventKind::Connected(testing::agent(5, ANA)),
        EventKind::Abandoned,
    ] {
        let plan = plan(&billing_call().event(outcome.clone()), &ctx);
        assert_eq!(
            plan.kinds()[..3],
            ["create-conversation", "add-message", "add-note"],
            "{outcome:?}: {plan:#?}"
        );
        let c = plan.conversation_created().unwrap();
        assert_eq!(
            (c.channel, c.direction, c.voicemail),
            (Channel::Voice, Direction::Inbound, false)
        );
    }
}

#[test]
fn tc1_mobile_chat_creates_conversation() {
    let ctx = testing::context()
        .customer(testing::customer("cus-2").external_id("app-7"))
        .build();
    let plan = plan(
        &testing::mobile_chat("chat-1")
            .sdk_identifier("app-7")
            .event(EventKind::Created),
        &ctx,
    );
    assert_eq!(
        plan.kinds(),
        ["create-conversation", "add-message"],
        "{plan:#?}"
    );
    assert_eq!(plan.conversation_created().unwrap().channel, Channel::Chat);
}

#[test]
fn tc1_already_linked_session_adds_nothing() {
    let plan = plan(&billing_call().event(EventKind::Created), &linked().build());
    assert!(
        plan.is_skip() && plan.skipped()[0].contains("conv-1"),
        "{plan:#?}"
    );
}

#[test]
fn tc2_answered_ivr_call_creates_conversation_and_assigns() {
    let event = billing_call().event(EventKind::Connected(testing::agent(5, ANA)));
    let plan = plan(&event, &testing::context().customer(known()).build());
    assert_eq!(
        plan.kinds(),
        ["create-conversation", "add-message", "add-note", "assign"],
        "{plan:#?}"
    );
    assert_eq!(plan.assigned(), [ANA]);
}

#[test]
fn tc3_outbound_after_closed_creates_new() {
    let ctx = testing::context()
        .customer(known())
        .recent(testing::conversation("latest").status(ConversationStatus::Done))
        .recent(testing::conversation("older-open"))
        .build();
    let plan = plan(
        &testing::outbound_call("call-2")
            .phone(PHONE)
            .event(EventKind::Created),
        &ctx,
    );
    assert!(plan.appended_to().is_none(), "{plan:#?}");
    let c = plan
        .conversation_created()
        .expect("a new outbound conversation");
    assert_eq!(c.direction, Direction::Outbound);
    assert_eq!(plan.messages()[0].direction, Direction::Outbound);
}

#[test]
fn tc4_abandoned_call_creates_conversation_anyway() {
    let plan = plan(
        &billing_call().event(EventKind::Abandoned),
        &testing::context().build(),
    );
    assert_eq!(
        plan.kinds(),
        [
            "create-customer",
            "create-conversation",
            "add-message",
            "add-note",
            "add-note"
        ],
        "{plan:#?}"
    );
    assert!(plan.notes()[1].contains("abandoned"), "{:?}", plan.notes());
}

#[test]
fn tc5_voicemail_creates_new_conversation_even_with_open_one() {
    let recording = testing::file("vm.mp3", "audio/mpeg", "https://ccai.example/vm.mp3");
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("open-1").menu("9"))
        .build();
    let event = billing_call().event(EventKind::VoicemailLeft(sdk::Voicemail {
        recording: Some(recording.clone()),
        duration_seconds: Some(42),
    }));
    let plan = plan(&event, &ctx);
    assert_eq!(
        plan.kinds(),
        [
            "create-conversation",
            "add-message",
            "add-note",
            "attach-file"
        ],
        "{plan:#?}"
    );
    assert!(plan.conversation_created().unwrap().voicemail);
    assert_eq!(plan.attachments()[0].file, recording);
}

// --------------------------------------------------------------- §3 updates

#[test]
fn tu1_appends_only_to_open_same_menu_and_channel() {
    let ctx = testing::context()
        .customer(known())
        .recent(
            testing::conversation("snoozed")
                .menu("9")
                .status(ConversationStatus::Snoozed),
        )
        .recent(
            testing::conversation("done")
                .menu("9")
                .status(ConversationStatus::Done),
        )
        .recent(testing::conversation("other-menu").menu("4"))
        .recent(
            testing::conversation("chat")
                .menu("9")
                .channel(Channel::Chat),
        )
        .recent(testing::conversation("match").menu("9"))
        .build();
    let answered = EventKind::Connected(testing::agent(5, ANA));
    let plan = plan(&billing_call().event(answered.clone()), &ctx);
    assert_eq!(plan.appended_to(), Some("match"), "{plan:#?}");
    assert_eq!(
        plan.kinds(),
        ["append-to", "add-message", "add-note", "assign"]
    );

    let no_open = testing::context()
        .customer(known())
        .recent(
            testing::conversation("snoozed")
                .menu("9")
                .status(ConversationStatus::Snoozed),
        )
        .recent(
            testing::conversation("done")
                .menu("9")
                .status(ConversationStatus::Done),
        )
        .build();
    let plan = self::plan(&billing_call().event(answered), &no_open);
    assert!(
        plan.conversation_created().is_some(),
        "snoozed/done never match: {plan:#?}"
    );
}

#[test]
fn tu2_outbound_appends_to_open_latest() {
    let ctx = testing::context()
        .customer(known())
        .open_conversation("latest", Channel::Voice, Some("3"))
        .open_conversation("older", Channel::Voice, None)
        .build();
    let plan = plan(
        &testing::outbound_call("call-2")
            .phone(PHONE)
            .event(EventKind::Created),
        &ctx,
    );
    assert_eq!(plan.appended_to(), Some("latest"), "{plan:#?}");
    assert_eq!(plan.messages()[0].direction, Direction::Outbound);
}

#[test]
fn tu3_recording_attached_only_when_enabled() {
    let file = testing::file("rec.wav", "audio/wav", "https://ccai.example/rec.wav");
    let event = billing_call().event(EventKind::RecordingReady(file.clone()));
    let on = plan(&event, &linked().recording_enabled(true).build());
    assert_eq!(on.kinds(), ["attach-file"]);
    assert_eq!(on.attachments()[0].file, file);
    let off = plan(&event, &linked().build());
    assert!(
        off.is_skip() && off.skipped()[0].contains("recording is disabled"),
        "{off:#?}"
    );
}

#[test]
fn tu4_transfer_assigns_receiving_agent() {
    let event = billing_call().event(EventKind::Transferred(sdk::Transfer {
        from_agent: Some(testing::agent(1, ANA)),
        to_agent: Some(testing::agent(2, BO)),
        to_queue: None,
    }));
    let plan = plan(&event, &linked().build());
    assert_eq!(plan.kinds(), ["assign", "add-note"]);
    assert_eq!(plan.assigned(), [BO]);
}

#[test]
fn tu5_hangup_and_callback_appends_to_open_conversation() {
    let ctx = testing::context()
        .customer(known())
        .open_conversation("other", Channel::Voice, None)
        .recent(testing::conversation("parent").session("call-1"))
        .build();
    let event = testing::outbound_call("call-9")
        .phone(PHONE)
        .parent("call-1")
        .event(EventKind::HangupAndCallback);
    let plan = plan(&event, &ctx);
    assert_eq!(plan.appended_to(), Some("parent"), "{plan:#?}");
    assert!(plan.conversation_created().is_none());
}

#[test]
fn tu6_short_call_callback_appends_to_open_conversation() {
    let ctx = testing::context()
        .customer(known())
        .recent(testing::conversation("done").status(ConversationStatus::Done))
        .open_conversation("open", Channel::Voice, Some("9"))
        .build();
    let event = testing::outbound_call("call-9")
        .phone(PHONE)
        .event(EventKind::ShortCallCallback);
    let plan = plan(&event, &ctx);
    assert_eq!(plan.appended_to(), Some("open"), "{plan:#?}");
    assert_eq!(plan.kinds(), ["append-to", "add-message", "add-note"]);
}

#[test]
fn tu7_smart_action_results_and_shared_files() {
    let id = testing::file("id.jpg", "image/jpeg", "https://ccai.example/id.jpg");
    let event = billing_call().event(EventKind::SmartActionCompleted(sdk::SmartActionResult {
        name: "Verify ID".into(),
        results: vec![("verified".into(), "yes".into())],
        files: vec![id.clone()],
    }));
    let plan = plan(&event, &linked().build());
    assert_eq!(plan.kinds(), ["add-note", "attach-file"]);
    assert!(
        plan.notes()[0].contains("verified: yes"),
        "{:?}",
        plan.notes()
    );
    assert_eq!(plan.attachments()[0].file, id);
}

#[test]
fn tu8_customer_caused_smart_action_failure_adds_error() {
    let failure = |by_customer| {
        billing_call().event(EventKind::SmartActionFailed(sdk::SmartActionFailure {
            name: "Fingerprint".into(),
            message: "fingerprint verification is not enabled".into(),
            caused_by_customer: by_customer,
        }))
    };
    let plan = plan(&failure(true), &linked().build());
    assert_eq!(
        plan.notes(),
        ["Smart Action Fingerprint failed: fingerprint verification is not enabled"]
    );
    assert!(self::plan(&failure(false), &linked().build()).is_skip());
}

#[test]
fn tu9_custom_data_written_to_mapped_fields() {
    let ctx = linked()
        .mapping("plan", FieldTarget::Customer, "ccaiPlanStr")
        .mapping("order", FieldTarget::Conversation, "ccaiOrderStr")
        .build();
    let event = testing::mobile_chat("chat-1").event(EventKind::CustomData(vec![
        testing::datum("plan", "gold"),
        testing::datum("order", "A-17"),
    ]));
    let plan = plan(&event, &ctx);
    assert_eq!(plan.kinds(), ["update-customer", "set-fields"]);
    assert_eq!(plan.customer_updates()[0].fields[0].value, text("gold"));
    assert_eq!(plan.field("ccaiOrderStr"), Some(&text("A-17")));
    let unmapped =
        testing::web_chat("chat-1").event(EventKind::CustomData(vec![testing::datum("x", "y")]));
    assert!(self::plan(&unmapped, &linked().build()).is_skip());
}

#[test]
fn tu10_rating_added_with_csat_fields() {
    let event = billing_call().event(EventKind::Rated(sdk::Rating {
        score: 4,
        comment: Some("quick".into()),
    }));
    let plan = plan(&event, &linked().standard_fields().build());
    assert_eq!(plan.kinds(), ["add-note", "set-fields"]);
    assert_eq!(
        plan.field("ccaiCsatRatingNum"),
        Some(&FieldValue::Number(4.0))
    );
    assert_eq!(plan.field("ccaiCsatCommentTxt"), Some(&text("quick")));
}

#[test]
fn tu10_out_of_range_rating_is_a_rule_error() {
    let event = billing_call().event(EventKind::Rated(sdk::Rating {
        score: 0,
        comment: None,
    }));
    match wasm_plan(RULES_DEFAULT, &event, &linked().build()) {
        Err(CallError::Rule { code, .. }) => assert_eq!(code, "invalid-rating"),
        other => panic!("expected rule-error invalid-rating, got {other:?}"),
    }
}

#[test]
fn tu11_voicemail_closed_updates_voicemail_conversation() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("vm-1").voicemail())
        .build();
    let event = billing_call()
        .agent(3, BO)
        .event(EventKind::VoicemailUpdated(sdk::VoicemailAction::Closed));
    let plan = plan(&event, &ctx);
    assert_eq!(plan.kinds(), ["add-note", "set-status"]);
    assert_eq!(plan.statuses(), [ConversationStatus::Done]);
}

// ------------------------------------------------------------- §4 contacts

#[test]
fn cc1_unknown_caller_creates_customer_with_phone() {
    let plan = plan(
        &billing_call().event(EventKind::Ended),
        &testing::context().build(),
    );
    assert_eq!(
        plan.kinds()[..2],
        ["create-customer", "create-conversation"]
    );
    assert_eq!(
        plan.customer_created().unwrap().phone.as_deref(),
        Some(PHONE)
    );
}

#[test]
fn cc2_new_app_user_creates_customer_with_external_id() {
    let ctx = testing::context()
        .field(StandardField::CustomUserId, "ccaiCustomUserIdStr")
        .build();
    let plan = plan(
        &testing::mobile_chat("chat-1")
            .sdk_identifier("app-42")
            .event(EventKind::Created),
        &ctx,
    );
    let c = plan.customer_created().unwrap();
    assert_eq!(c.external_id.as_deref(), Some("app-42"));
    assert_eq!(c.fields[0].name, "ccaiCustomUserIdStr");
    assert_eq!(c.fields[0].value, text("app-42"));
}

#[test]
fn cu1_assignment_updates_recently_created_customer() {
    let event = billing_call().event(EventKind::Assigned(testing::agent(5, ANA)));
    let recent = || {
        testing::context()
            .customer(known().created_recently())
            .linked(testing::conversation("conv-1"))
    };
    let plan = plan(&event, &recent().build());
    assert_eq!(plan.kinds(), ["update-customer"]);
    assert_eq!(plan.customer_updates()[0].assign_to.as_deref(), Some(ANA));
    assert!(self::plan(&event, &linked().build()).is_skip());
    // A caller the plan creates is as recent as it gets.
    let new_caller = self::plan(&event, &testing::context().build());
    assert_eq!(
        new_caller.kinds()[..2],
        ["create-customer", "create-conversation"]
    );
    assert_eq!(
        new_caller.customer_updates()[0].assign_to.as_deref(),
        Some(ANA)
    );
}

#[test]
fn pn1_phone_note_on_created_and_appended_conversations() {
    let note = format!("Phone: {PHONE}");
    let created = plan(
        &billing_call().event(EventKind::Ended),
        &testing::context().customer(known()).build(),
    );
    assert_eq!(created.notes(), [note.as_str()]);
    let ctx = testing::context()
        .customer(known())
        .open_conversation("c", Channel::Voice, Some("9"))
        .build();
    let appended = plan(&billing_call().event(EventKind::Ended), &ctx);
    assert_eq!(appended.appended_to(), Some("c"));
    assert_eq!(appended.notes(), [note.as_str()]);
}

#[test]
fn ct1_transcript_attached_and_shown_as_note() {
    let file = testing::file("chat-1.txt", "text/plain", "https://ccai.example/t.txt");
    let plan = plan(
        &testing::web_chat("chat-1").event(EventKind::TranscriptReady(file.clone())),
        &linked().build(),
    );
    assert_eq!(plan.kinds(), ["attach-file"]);
    assert_eq!(plan.attachments()[0].file, file);
    assert!(
        plan.attachments()[0].note.is_some(),
        "the transcript must show as a comment"
    );
}

#[test]
fn sd1_call_conversation_carries_standard_data() {
    let ctx = testing::context()
        .customer(known())
        .standard_fields()
        .build();
    let plan = plan(&billing_call().event(EventKind::Ended), &ctx);
    let c = plan.conversation_created().unwrap();
    assert_eq!(c.menu_selection.as_deref(), Some("9"));
    assert_eq!(plan.field("ccaiFromPhoneStr"), Some(&text(PHONE)));
    assert_eq!(plan.field("ccaiMenuSelectionStr"), Some(&text("Billing")));
    assert_eq!(plan.field("ccaiSessionIdStr"), Some(&text("call-1")));
    assert_eq!(
        plan.field("ccaiSessionTypeStr"),
        Some(&text("Voice Inbound (IVR)"))
    );
    assert_eq!(plan.field("ccaiQueueNameStr"), Some(&text("Billing")));
    let meta = &plan.messages()[0].meta;
    for (k, v) in [
        ("caller-id", PHONE),
        ("language", "en"),
        ("menu", "Billing"),
    ] {
        assert!(
            meta.contains(&(k.into(), v.into())),
            "message meta lacks {k}={v}: {meta:?}"
        );
    }
    // CF4: fields not provisioned before the session are not written.
    let bare = self::plan(
        &billing_call().event(EventKind::Ended),
        &testing::context().customer(known()).build(),
    );
    assert!(bare.conversation_created().unwrap().fields.is_empty());
}

#[test]
fn aa1_answering_agent_is_assigned() {
    let plan = plan(
        &billing_call().event(EventKind::Connected(testing::agent(5, ANA))),
        &linked().build(),
    );
    assert_eq!(plan.kinds(), ["assign"]);
    assert_eq!(plan.assigned(), [ANA]);
}

// ------------------------------------------------------------ §6 status

fn mapped() -> testing::StatusContextBuilder {
    testing::status_context()
        .kustomer_to_ccai("K1", "A")
        .kustomer_to_ccai("K2", "A")
        .kustomer_to_ccai("K3", "B")
        .kustomer_to_ccai("K4", "D")
        .ccai_to_kustomer("A", "K1")
        .ccai_to_kustomer("B", "K3")
        .ccai_status("B")
        .kustomer_status("K3")
}

fn kustomer(status: &str) -> sdk::StatusChange {
    testing::status_change(System::Kustomer, ANA, status).build()
}

fn ccai_at(status: &str, at: &str) -> sdk::StatusChange {
    testing::status_change(System::Ccai, ANA, status)
        .at(at)
        .build()
}

fn apply(target: System, status: &str) -> StatusDecision {
    StatusDecision::Apply(StatusTarget {
        target,
        status: status.into(),
    })
}

#[test]
fn as1_many_to_one_mapping_applies_to_ccai() {
    let ctx = mapped().build();
    assert_eq!(decision(&kustomer("K1"), &ctx), apply(System::Ccai, "A"));
    assert_eq!(decision(&kustomer("K2"), &ctx), apply(System::Ccai, "A"));
    assert_eq!(decision(&kustomer("K4"), &ctx), apply(System::Ccai, "D"));
    assert!(
        matches!(decision(&kustomer("K3"), &ctx), StatusDecision::Ignore(_)),
        "CCAI already shows B"
    );
}

#[test]
fn as2_one_way_sync_ignores_ccai_changes() {
    let d = decision(&ccai_at("A", testing::NOW), &mapped().build());
    assert!(
        matches!(&d, StatusDecision::Ignore(r) if r.contains("one-way")),
        "{d:?}"
    );
}

#[test]
fn as3_two_way_applies_ccai_change_without_echo() {
    assert_eq!(
        decision(&ccai_at("A", testing::NOW), &mapped().two_way().build()),
        apply(System::Kustomer, "K1")
    );
    let echo = mapped()
        .two_way()
        .last_applied(System::Ccai, "A", testing::NOW)
        .build();
    assert!(matches!(
        decision(&ccai_at("A", testing::NOW), &echo),
        StatusDecision::Ignore(_)
    ));
}

#[test]
fn as5_several_kustomer_instances_rejected() {
    let d = decision(&kustomer("K1"), &mapped().instances(2).build());
    assert!(
        matches!(&d, StatusDecision::Reject(r) if r.contains("2 instances") && r.contains(ANA)),
        "{d:?}"
    );
}

#[test]
fn as6_crm_overrides_applies_pending_status() {
    let ctx = mapped()
        .two_way()
        .priority(PriorityMode::CrmOverrides)
        .pending(System::Ccai, "D", "2024-05-01T09:00:00Z")
        .build();
    assert_eq!(
        decision(&ccai_at("A", "2024-05-01T09:30:00Z"), &ctx),
        apply(System::Ccai, "D")
    );
}

#[test]
fn as6_last_change_wins_picks_the_later_change() {
    let ctx = mapped()
        .two_way()
        .priority(PriorityMode::LastChangeWins)
        .pending(System::Ccai, "D", "2024-05-01T09:00:00Z")
        .build();
    assert_eq!(
        decision(&ccai_at("A", "2024-05-01T08:59:59Z"), &ctx),
        apply(System::Ccai, "D")
    );
    assert_eq!(
        decision(&ccai_at("A", "2024-05-01T09:00:01Z"), &ctx),
        apply(System::Kustomer, "K1")
    );
}

#[test]
fn as7_busy_agent_change_is_deferred() {
    for activity in [
        AgentActivity::InCall,
        AgentActivity::InChat,
        AgentActivity::WrapUp,
    ] {
        let d = decision(&kustomer("K4"), &mapped().activity(activity).build());
        assert_eq!(
            d,
            StatusDecision::Defer(StatusTarget {
                target: System::Ccai,
                status: "D".into()
            })
        );
    }
}

#[test]
fn as7_offline_agent_change_is_ignored() {
    let d = decision(
        &kustomer("K1"),
        &mapped().activity(AgentActivity::Offline).build(),
    );
    assert!(
        matches!(&d, StatusDecision::Ignore(r) if r.contains("offline")),
        "{d:?}"
    );
}

#[test]
fn as7_unmapped_status_is_rejected() {
    let d = decision(&kustomer("K9"), &mapped().build());
    assert!(
        matches!(&d, StatusDecision::Reject(r) if r.contains("K9")),
        "{d:?}"
    );
}

#[test]
fn as8_status_at_login_is_ignored() {
    let change = testing::status_change(System::Kustomer, ANA, "K1")
        .login()
        .build();
    assert!(matches!(
        decision(&change, &mapped().build()),
        StatusDecision::Ignore(_)
    ));
}

// ---------------------------------------------------------- determinism

#[test]
fn rm5_same_inputs_give_the_same_plan_every_call() {
    let ctx = testing::context().standard_fields().build();
    let event = billing_call()
        .custom("order", "A-1")
        .event(EventKind::Created);
    let first = wasm_plan(RULES_DEFAULT, &event, &ctx).expect("plan");
    for _ in 0..3 {
        assert_eq!(wasm_plan(RULES_DEFAULT, &event, &ctx).expect("plan"), first);
    }
}
