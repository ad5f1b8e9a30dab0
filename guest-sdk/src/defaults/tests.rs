//! Unit tests of the default rules, one or more per SPEC id.
use super::*;
use crate::testing::{self, check_plan, PlanExt};

#[derive(Default)]
struct Defaults;
impl Rule for Defaults {}

const PHONE: &str = "+14155550100";

fn run(event: &SessionEvent, ctx: &Context) -> Plan {
    let plan = Defaults
        .on_session_event(event, ctx)
        .expect("default rules returned a rule-error");
    if let Err(e) = check_plan(&plan, ctx) {
        panic!("plan breaks the ordering contract: {e}\nplan: {plan:#?}");
    }
    plan
}

fn known() -> testing::CustomerBuilder {
    testing::customer("cus-1").phone(PHONE)
}

fn billing_call() -> testing::SessionBuilder {
    testing::ivr_call("call-1")
        .phone(PHONE)
        .menu(9, "Billing")
        .language("en")
        .queue("Billing")
}

// ------------------------------------------------------------------ §2 TC

#[test]
fn tc1_inbound_call_without_match_creates_conversation() {
    let ctx = testing::context().customer(known()).build();
    let plan = run(&billing_call().event(EventKind::Ended), &ctx);
    assert_eq!(
        plan.kinds(),
        ["create-conversation", "add-message", "add-note"],
        "{plan:#?}"
    );
    let c = plan.conversation_created().unwrap();
    assert_eq!(
        (c.channel, c.direction, c.status),
        (Channel::Voice, Direction::Inbound, ConversationStatus::Open)
    );
    assert!(!c.voicemail);
}

#[test]
fn tc1_mobile_chat_creates_conversation() {
    let ctx = testing::context()
        .customer(testing::customer("cus-2").external_id("app-7"))
        .build();
    let event = testing::mobile_chat("chat-1")
        .sdk_identifier("app-7")
        .event(EventKind::Created);
    let plan = run(&event, &ctx);
    assert_eq!(
        plan.kinds(),
        ["create-conversation", "add-message"],
        "{plan:#?}"
    );
    assert_eq!(plan.conversation_created().unwrap().channel, Channel::Chat);
    assert_eq!(plan.messages()[0].channel, Channel::Chat);
}

#[test]
fn tc1_already_linked_session_adds_nothing() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let plan = run(&billing_call().event(EventKind::Created), &ctx);
    assert!(plan.is_skip(), "{plan:#?}");
    assert!(plan.skipped()[0].contains("conv-1"), "{:?}", plan.skipped());
}

#[test]
fn tc2_answered_ivr_call_creates_conversation_when_none_linked() {
    let ctx = testing::context().customer(known()).build();
    let event = billing_call().event(EventKind::Connected(testing::agent(5, "ana@example.com")));
    let plan = run(&event, &ctx);
    assert_eq!(
        plan.kinds(),
        ["create-conversation", "add-message", "add-note", "assign"],
        "{plan:#?}"
    );
}

#[test]
fn tc2_answered_call_appends_when_tu1_matches() {
    let ctx = testing::context()
        .customer(known())
        .open_conversation("conv-3", Channel::Voice, Some("9"))
        .build();
    let event = billing_call().event(EventKind::Connected(testing::agent(5, "ana@example.com")));
    let plan = run(&event, &ctx);
    assert_eq!(plan.appended_to(), Some("conv-3"));
    assert!(plan.conversation_created().is_none());
}

#[test]
fn tc3_outbound_after_closed_creates_new() {
    let ctx = testing::context()
        .customer(known())
        .recent(testing::conversation("conv-old").status(ConversationStatus::Done))
        .recent(testing::conversation("conv-older"))
        .build();
    let event = testing::outbound_call("call-2")
        .phone(PHONE)
        .event(EventKind::Created);
    let plan = run(&event, &ctx);
    let c = plan
        .conversation_created()
        .expect("a new outbound conversation");
    assert_eq!(c.direction, Direction::Outbound);
    assert_eq!(plan.messages()[0].direction, Direction::Outbound);
    assert!(
        plan.appended_to().is_none(),
        "an older open conversation must not be used: {plan:#?}"
    );
}

#[test]
fn tc3_outbound_after_snoozed_creates_new() {
    let ctx = testing::context()
        .customer(known())
        .recent(testing::conversation("conv-s").status(ConversationStatus::Snoozed))
        .build();
    let plan = run(
        &testing::outbound_call("call-2")
            .phone(PHONE)
            .event(EventKind::Created),
        &ctx,
    );
    assert!(plan.conversation_created().is_some(), "{plan:#?}");
}

#[test]
fn tc4_abandoned_call_creates_conversation_with_note() {
    let ctx = testing::context().customer(known()).build();
    let plan = run(&billing_call().event(EventKind::Abandoned), &ctx);
    assert_eq!(
        plan.kinds(),
        ["create-conversation", "add-message", "add-note", "add-note"]
    );
    assert!(plan.notes()[1].contains("abandoned"), "{:?}", plan.notes());
}

#[test]
fn tc4_abandoned_linked_call_only_notes() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let plan = run(&billing_call().event(EventKind::Abandoned), &ctx);
    assert_eq!(plan.kinds(), ["add-note"]);
}

#[test]
fn tc5_voicemail_creates_voicemail_conversation_even_when_open_exists() {
    let recording = testing::file("vm.mp3", "audio/mpeg", "https://ccai.example/vm.mp3");
    let ctx = testing::context()
        .customer(known())
        .open_conversation("conv-open", Channel::Voice, Some("9"))
        .linked(testing::conversation("conv-open").menu("9"))
        .build();
    let event = billing_call().event(EventKind::VoicemailLeft(Voicemail {
        recording: Some(recording.clone()),
        duration_seconds: Some(42),
    }));
    let plan = run(&event, &ctx);
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
    assert!(plan.appended_to().is_none());
    assert_eq!(plan.attachments()[0].file, recording);
}

// ------------------------------------------------------------------ §3 TU

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
        .recent(testing::conversation("older-match").menu("9"))
        .build();
    let plan = run(&billing_call().event(EventKind::Ended), &ctx);
    assert_eq!(plan.appended_to(), Some("match"), "{plan:#?}");
    assert_eq!(plan.kinds(), ["append-to", "add-message", "add-note"]);
}

#[test]
fn tu1_no_open_match_creates() {
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
        .build();
    let plan = run(&billing_call().event(EventKind::Ended), &ctx);
    assert!(plan.conversation_created().is_some(), "{plan:#?}");
}

#[test]
fn tu1_chat_without_menu_matches_open_chat_without_menu() {
    let ctx = testing::context()
        .customer(known())
        .open_conversation("voice", Channel::Voice, None)
        .open_conversation("chat", Channel::Chat, None)
        .build();
    let plan = run(&testing::web_chat("chat-1").event(EventKind::Created), &ctx);
    assert_eq!(plan.appended_to(), Some("chat"));
}

#[test]
fn tu2_outbound_appends_to_open_latest() {
    let ctx = testing::context()
        .customer(known())
        .open_conversation("latest", Channel::Chat, Some("3"))
        .open_conversation("older", Channel::Voice, None)
        .build();
    let plan = run(
        &testing::outbound_call("call-2")
            .phone(PHONE)
            .event(EventKind::Created),
        &ctx,
    );
    assert_eq!(plan.appended_to(), Some("latest"));
    assert_eq!(plan.kinds(), ["append-to", "add-message", "add-note"]);
    assert_eq!(plan.messages()[0].direction, Direction::Outbound);
}

#[test]
fn tu3_recording_attached_when_enabled() {
    let file = testing::file("rec.wav", "audio/wav", "https://ccai.example/rec.wav");
    let ctx = testing::context()
        .recording_enabled(true)
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let plan = run(
        &billing_call().event(EventKind::RecordingReady(file.clone())),
        &ctx,
    );
    assert_eq!(plan.kinds(), ["attach-file"]);
    assert_eq!(plan.attachments()[0].file, file);
}

#[test]
fn tu3_recording_skipped_when_disabled() {
    let file = testing::file("rec.wav", "audio/wav", "https://ccai.example/rec.wav");
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let plan = run(&billing_call().event(EventKind::RecordingReady(file)), &ctx);
    assert!(plan.is_skip());
    assert!(
        plan.skipped()[0].contains("recording is disabled"),
        "{:?}",
        plan.skipped()
    );
}

#[test]
fn tu4_transfer_assigns_receiving_agent() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let event = billing_call().event(EventKind::Transferred(Transfer {
        from_agent: Some(testing::agent(1, "ana@example.com")),
        to_agent: Some(testing::agent(2, "bo@example.com")),
        to_queue: Some("Escalations".into()),
    }));
    let plan = run(&event, &ctx);
    assert_eq!(plan.kinds(), ["assign", "add-note"]);
    assert_eq!(plan.assigned(), ["bo@example.com"]);
    assert!(
        plan.notes()[0].contains("ana@example.com") && plan.notes()[0].contains("bo@example.com")
    );
}

#[test]
fn tu4_transfer_without_conversation_is_skipped() {
    let ctx = testing::context().customer(known()).build();
    let event = billing_call().event(EventKind::Transferred(Transfer {
        from_agent: None,
        to_agent: Some(testing::agent(2, "bo@example.com")),
        to_queue: None,
    }));
    assert!(run(&event, &ctx).is_skip());
}

#[test]
fn tu5_hangup_and_callback_appends_to_open_parent() {
    let ctx = testing::context()
        .customer(known())
        .open_conversation("other", Channel::Voice, None)
        .recent(testing::conversation("parent").session("call-1"))
        .build();
    let event = testing::outbound_call("call-9")
        .phone(PHONE)
        .parent("call-1")
        .event(EventKind::HangupAndCallback);
    let plan = run(&event, &ctx);
    assert_eq!(plan.appended_to(), Some("parent"), "{plan:#?}");
    assert_eq!(plan.kinds(), ["append-to", "add-message", "add-note"]);
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
    let plan = run(&event, &ctx);
    assert_eq!(plan.appended_to(), Some("open"), "{plan:#?}");
}

#[test]
fn tu7_smart_action_results_and_files() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let id = testing::file("id.jpg", "image/jpeg", "https://ccai.example/id.jpg");
    let event = billing_call().event(EventKind::SmartActionCompleted(SmartActionResult {
        name: "Verify ID".into(),
        results: vec![("verified".into(), "yes".into())],
        files: vec![id.clone()],
    }));
    let plan = run(&event, &ctx);
    assert_eq!(plan.kinds(), ["add-note", "attach-file"]);
    assert!(plan.notes()[0].contains("Verify ID") && plan.notes()[0].contains("verified: yes"));
    assert_eq!(plan.attachments()[0].file, id);
}

#[test]
fn tu8_customer_caused_failure_adds_error_message() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let failure = |by_customer| {
        billing_call().event(EventKind::SmartActionFailed(SmartActionFailure {
            name: "Fingerprint".into(),
            message: "fingerprint verification is not enabled".into(),
            caused_by_customer: by_customer,
        }))
    };
    let plan = run(&failure(true), &ctx);
    assert_eq!(
        plan.notes(),
        ["Smart Action Fingerprint failed: fingerprint verification is not enabled"]
    );
    assert!(run(&failure(false), &ctx).is_skip());
}

#[test]
fn tu9_custom_data_mapped_to_customer_and_conversation() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .mapping("plan", FieldTarget::Customer, "ccaiPlanStr")
        .mapping("order", FieldTarget::Conversation, "ccaiOrderStr")
        .build();
    let event = testing::mobile_chat("chat-1").event(EventKind::CustomData(vec![
        testing::datum("plan", "gold"),
        testing::datum("order", "A-17"),
        testing::datum("unmapped", "x"),
    ]));
    let plan = run(&event, &ctx);
    assert_eq!(plan.kinds(), ["update-customer", "set-fields"]);
    assert_eq!(
        plan.customer_updates()[0].fields,
        vec![text_field("ccaiPlanStr", "gold")]
    );
    assert_eq!(
        plan.field("ccaiOrderStr"),
        Some(&FieldValue::Text("A-17".into()))
    );
}

#[test]
fn tu9_no_mapping_skips() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let event =
        testing::web_chat("chat-1").event(EventKind::CustomData(vec![testing::datum("a", "b")]));
    let plan = run(&event, &ctx);
    assert!(
        plan.is_skip() && plan.skipped()[0].contains("no field mapping"),
        "{plan:#?}"
    );
}

#[test]
fn tu9_session_custom_data_fills_new_conversation() {
    let ctx = testing::context()
        .customer(known())
        .mapping("order", FieldTarget::Conversation, "ccaiOrderStr")
        .build();
    let event = testing::mobile_chat("chat-1")
        .custom("order", "A-17")
        .event(EventKind::Created);
    let plan = run(&event, &ctx);
    assert_eq!(
        plan.field("ccaiOrderStr"),
        Some(&FieldValue::Text("A-17".into()))
    );
}

#[test]
fn tu10_rating_note_and_csat_fields() {
    let ctx = testing::context()
        .standard_fields()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let event = billing_call().event(EventKind::Rated(Rating {
        score: 4,
        comment: Some("quick".into()),
    }));
    let plan = run(&event, &ctx);
    assert_eq!(plan.kinds(), ["add-note", "set-fields"]);
    assert_eq!(plan.notes(), ["CSAT rating: 4/5\nComment: quick"]);
    assert_eq!(
        plan.field("ccaiCsatRatingNum"),
        Some(&FieldValue::Number(4.0))
    );
    assert_eq!(
        plan.field("ccaiCsatCommentTxt"),
        Some(&FieldValue::Text("quick".into()))
    );
}

#[test]
fn tu10_rating_without_live_fields_only_notes() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let event = billing_call().event(EventKind::Rated(Rating {
        score: 5,
        comment: None,
    }));
    assert_eq!(run(&event, &ctx).kinds(), ["add-note"]);
}

#[test]
fn tu10_rating_out_of_range_is_rule_error() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let event = billing_call().event(EventKind::Rated(Rating {
        score: 9,
        comment: None,
    }));
    let err = Defaults.on_session_event(&event, &ctx).unwrap_err();
    assert_eq!(err.code, "invalid-rating");
}

#[test]
fn tu11_voicemail_closed_updates_voicemail_conversation() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("vm-1").voicemail())
        .build();
    let event = billing_call()
        .agent(3, "cy@example.com")
        .event(EventKind::VoicemailUpdated(VoicemailAction::Closed));
    let plan = run(&event, &ctx);
    assert_eq!(plan.kinds(), ["add-note", "set-status"]);
    assert_eq!(plan.statuses(), [ConversationStatus::Done]);
    assert!(plan.notes()[0].contains("closed by cy@example.com"));
}

#[test]
fn tu11_voicemail_read_found_by_session_appends_first() {
    let ctx = testing::context()
        .customer(known())
        .open_conversation("call-conv", Channel::Voice, Some("9"))
        .recent(testing::conversation("vm-1").voicemail().session("call-1"))
        .build();
    let plan = run(
        &billing_call().event(EventKind::VoicemailUpdated(VoicemailAction::Read)),
        &ctx,
    );
    assert_eq!(plan.kinds(), ["append-to", "add-note"]);
    assert_eq!(plan.appended_to(), Some("vm-1"));
    let plan = run(
        &billing_call().event(EventKind::VoicemailUpdated(VoicemailAction::CalledBack)),
        &ctx,
    );
    assert!(plan.notes()[0].contains("called back"));
}

#[test]
fn tu11_no_voicemail_conversation_skips() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let plan = run(
        &billing_call().event(EventKind::VoicemailUpdated(VoicemailAction::Read)),
        &ctx,
    );
    assert!(plan.is_skip(), "{plan:#?}");
}

// ----------------------------------------------------------------- §4

#[test]
fn cc1_unknown_caller_creates_customer_with_phone() {
    let ctx = testing::context().build();
    let plan = run(&billing_call().event(EventKind::Ended), &ctx);
    assert_eq!(plan.kinds()[0], "create-customer");
    let c = plan.customer_created().unwrap();
    assert_eq!(c.phone.as_deref(), Some(PHONE));
    assert_eq!(c.external_id, None);
    assert_eq!(c.name, None);
}

#[test]
fn cc2_new_app_user_creates_customer_with_external_id() {
    let ctx = testing::context()
        .field(StandardField::CustomUserId, "ccaiCustomUserIdStr")
        .build();
    let event = testing::mobile_chat("chat-1")
        .sdk_identifier("app-42")
        .event(EventKind::Created);
    let plan = run(&event, &ctx);
    let c = plan.customer_created().unwrap();
    assert_eq!(c.external_id.as_deref(), Some("app-42"));
    assert_eq!(c.fields, vec![text_field("ccaiCustomUserIdStr", "app-42")]);
}

#[test]
fn cc_anonymous_user_is_named_unknown() {
    let plan = run(
        &testing::web_chat("chat-1").event(EventKind::Created),
        &testing::context().build(),
    );
    assert_eq!(
        plan.customer_created().unwrap().name.as_deref(),
        Some(UNKNOWN_USER)
    );
}

#[test]
fn cu1_assignment_updates_recent_customer() {
    let agent = testing::agent(5, "ana@example.com");
    let ctx = testing::context()
        .customer(known().created_recently())
        .linked(testing::conversation("conv-1"))
        .build();
    let plan = run(
        &billing_call().event(EventKind::Assigned(agent.clone())),
        &ctx,
    );
    assert_eq!(plan.kinds(), ["update-customer"]);
    assert_eq!(
        plan.customer_updates()[0].assign_to.as_deref(),
        Some("ana@example.com")
    );
    let old = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    assert!(run(&billing_call().event(EventKind::Assigned(agent)), &old).is_skip());
}

#[test]
fn pn1_phone_note_on_create_and_append() {
    let create = run(
        &billing_call().event(EventKind::Ended),
        &testing::context().customer(known()).build(),
    );
    assert_eq!(create.notes(), [format!("Phone: {PHONE}")]);
    let ctx = testing::context()
        .customer(known())
        .open_conversation("c", Channel::Voice, Some("9"))
        .build();
    let append = run(&billing_call().event(EventKind::Ended), &ctx);
    assert_eq!(append.notes(), [format!("Phone: {PHONE}")]);
    let chat = run(
        &testing::web_chat("chat-1").event(EventKind::Created),
        &testing::context().customer(known()).build(),
    );
    assert!(chat.notes().is_empty(), "no phone, no note: {chat:#?}");
}

#[test]
fn ct1_transcript_attached_and_shown_as_note() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let file = testing::file("chat-1.txt", "text/plain", "https://ccai.example/t.txt");
    let plan = run(
        &testing::web_chat("chat-1").event(EventKind::TranscriptReady(file.clone())),
        &ctx,
    );
    assert_eq!(plan.kinds(), ["attach-file"]);
    let a = plan.attachments()[0];
    assert_eq!(a.file, file);
    assert!(
        a.note.as_deref().is_some_and(|n| n.contains("chat-1.txt")),
        "{a:?}"
    );
}

#[test]
fn sd1_call_conversation_carries_standard_data() {
    let ctx = testing::context()
        .customer(known())
        .field(StandardField::FromPhone, "ccaiFromPhoneStr")
        .field(StandardField::MenuSelection, "ccaiMenuSelectionStr")
        .field(StandardField::SessionId, "ccaiSessionIdStr")
        .field(StandardField::SessionType, "ccaiSessionTypeStr")
        .field(StandardField::QueueName, "ccaiQueueNameStr")
        .build();
    let plan = run(&billing_call().event(EventKind::Ended), &ctx);
    let c = plan.conversation_created().unwrap();
    assert_eq!(c.menu_selection.as_deref(), Some("9"));
    assert_eq!(
        c.fields,
        vec![
            text_field("ccaiFromPhoneStr", PHONE),
            text_field("ccaiMenuSelectionStr", "Billing"),
            text_field("ccaiSessionTypeStr", "Voice Inbound (IVR)"),
            text_field("ccaiSessionIdStr", "call-1"),
            text_field("ccaiQueueNameStr", "Billing"),
        ]
    );
    let meta = &plan.messages()[0].meta;
    for (k, v) in [
        ("caller-id", PHONE),
        ("language", "en"),
        ("menu", "Billing"),
        ("session-id", "call-1"),
    ] {
        assert!(
            meta.contains(&(k.to_string(), v.to_string())),
            "meta lacks {k}={v}: {meta:?}"
        );
    }
}

#[test]
fn sd1_only_live_fields_are_written() {
    let plan = run(
        &billing_call().event(EventKind::Ended),
        &testing::context().customer(known()).build(),
    );
    assert!(plan.conversation_created().unwrap().fields.is_empty());
}

#[test]
fn aa1_answering_agent_is_assigned() {
    let ctx = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let plan = run(
        &billing_call().event(EventKind::Connected(testing::agent(5, "ana@example.com"))),
        &ctx,
    );
    assert_eq!(plan.kinds(), ["assign"]);
    assert_eq!(plan.assigned(), ["ana@example.com"]);
}

#[test]
fn ended_writes_duration_fields_when_live() {
    let ctx = testing::context()
        .standard_fields()
        .field(StandardField::WaitTime, "ccaiWaitTimeStr")
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    let plan = run(
        &billing_call().durations(95, 10, 30).event(EventKind::Ended),
        &ctx,
    );
    assert_eq!(
        plan.field("ccaiCallDurationNum"),
        Some(&FieldValue::Number(95.0))
    );
    assert_eq!(
        plan.field("ccaiHoldTimeNum"),
        Some(&FieldValue::Number(10.0))
    );
    assert_eq!(
        plan.field("ccaiWaitTimeStr"),
        Some(&FieldValue::Text("30".into()))
    );
    let none = testing::context()
        .customer(known())
        .linked(testing::conversation("conv-1"))
        .build();
    assert!(run(
        &billing_call().durations(95, 10, 30).event(EventKind::Ended),
        &none
    )
    .is_skip());
}

#[test]
fn every_event_kind_gives_a_well_ordered_plan() {
    let f = testing::file("f", "text/plain", "https://x.example/f");
    let agent = testing::agent(1, "a@example.com");
    let kinds = vec![
        EventKind::Created,
        EventKind::Queued,
        EventKind::Assigned(agent.clone()),
        EventKind::Connected(agent.clone()),
        EventKind::Transferred(Transfer {
            from_agent: None,
            to_agent: Some(agent),
            to_queue: None,
        }),
        EventKind::Ended,
        EventKind::Abandoned,
        EventKind::VoicemailLeft(Voicemail {
            recording: Some(f.clone()),
            duration_seconds: None,
        }),
        EventKind::VoicemailUpdated(VoicemailAction::Closed),
        EventKind::RecordingReady(f.clone()),
        EventKind::TranscriptReady(f.clone()),
        EventKind::SmartActionCompleted(SmartActionResult {
            name: "s".into(),
            results: vec![],
            files: vec![f],
        }),
        EventKind::SmartActionFailed(SmartActionFailure {
            name: "s".into(),
            message: "m".into(),
            caused_by_customer: true,
        }),
        EventKind::Rated(Rating {
            score: 3,
            comment: None,
        }),
        EventKind::HangupAndCallback,
        EventKind::ShortCallCallback,
        EventKind::CustomData(vec![testing::datum("k", "v")]),
    ];
    let contexts = [
        testing::context().build(),
        testing::context()
            .standard_fields()
            .recording_enabled(true)
            .customer(known())
            .build(),
        testing::context()
            .standard_fields()
            .mapping("k", FieldTarget::Conversation, "kStr")
            .customer(known().created_recently())
            .linked(testing::conversation("vm").voicemail())
            .build(),
    ];
    for kind in kinds {
        for ctx in &contexts {
            let event = billing_call()
                .agent(1, "a@example.com")
                .durations(1, 2, 3)
                .event(kind.clone());
            let plan = run(&event, ctx);
            // Same inputs, same plan (RM5).
            assert_eq!(plan, run(&event, ctx));
        }
    }
}

// ------------------------------------------------------------------ §6 AS

const AGENT: &str = "ana@example.com";

fn k_change(status: &str) -> StatusChange {
    testing::status_change(System::Kustomer, AGENT, status).build()
}

fn c_change(status: &str) -> StatusChange {
    testing::status_change(System::Ccai, AGENT, status).build()
}

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

fn apply(target: System, status: &str) -> StatusDecision {
    StatusDecision::Apply(StatusTarget {
        target,
        status: status.into(),
    })
}

#[test]
fn as1_many_to_one_mapping_applies_to_ccai() {
    let ctx = mapped().build();
    assert_eq!(
        on_status_change(&k_change("K1"), &ctx),
        apply(System::Ccai, "A")
    );
    assert_eq!(
        on_status_change(&k_change("K2"), &ctx),
        apply(System::Ccai, "A")
    );
    assert_eq!(
        on_status_change(&k_change("K4"), &ctx),
        apply(System::Ccai, "D")
    );
    assert!(
        matches!(
            on_status_change(&k_change("K3"), &ctx),
            StatusDecision::Ignore(_)
        ),
        "already B"
    );
}

#[test]
fn as2_one_way_ignores_ccai_changes() {
    let d = on_status_change(&c_change("A"), &mapped().build());
    assert!(
        matches!(&d, StatusDecision::Ignore(r) if r.contains("one-way")),
        "{d:?}"
    );
}

#[test]
fn as3_two_way_applies_ccai_change_and_suppresses_echo() {
    let ctx = mapped().two_way().build();
    assert_eq!(
        on_status_change(&c_change("A"), &ctx),
        apply(System::Kustomer, "K1")
    );
    let echo = mapped()
        .two_way()
        .last_applied(System::Ccai, "A", testing::NOW)
        .build();
    assert!(matches!(
        on_status_change(&c_change("A"), &echo),
        StatusDecision::Ignore(_)
    ));
    let d = on_status_change(&c_change("Z"), &ctx);
    assert!(
        matches!(&d, StatusDecision::Reject(r) if r.contains("\"Z\"")),
        "{d:?}"
    );
}

#[test]
fn as5_several_instances_rejected_with_count() {
    let d = on_status_change(&k_change("K1"), &mapped().instances(3).build());
    assert!(
        matches!(&d, StatusDecision::Reject(r) if r.contains("3 instances") && r.contains(AGENT)),
        "{d:?}"
    );
}

#[test]
fn as6_crm_overrides_applies_pending_after_session() {
    let ctx = mapped()
        .priority(PriorityMode::CrmOverrides)
        .pending(System::Ccai, "D", "2024-05-01T09:00:00Z")
        .build();
    let change = testing::status_change(System::Ccai, AGENT, "B")
        .at("2024-05-01T09:30:00Z")
        .build();
    assert_eq!(on_status_change(&change, &ctx), apply(System::Ccai, "D"));
}

#[test]
fn as6_last_change_wins_compares_times() {
    let ctx = mapped()
        .two_way()
        .priority(PriorityMode::LastChangeWins)
        .pending(System::Ccai, "D", "2024-05-01T09:00:00.500Z")
        .build();
    let earlier = testing::status_change(System::Ccai, AGENT, "A")
        .at("2024-05-01T09:00:00Z")
        .build();
    assert_eq!(on_status_change(&earlier, &ctx), apply(System::Ccai, "D"));
    let later = testing::status_change(System::Ccai, AGENT, "A")
        .at("2024-05-01T10:00:00+01:00")
        .build();
    assert_eq!(
        on_status_change(&later, &ctx),
        apply(System::Ccai, "D"),
        "10:00+01:00 is 09:00Z, earlier"
    );
    let later = testing::status_change(System::Ccai, AGENT, "A")
        .at("2024-05-01T09:00:01Z")
        .build();
    assert_eq!(
        on_status_change(&later, &ctx),
        apply(System::Kustomer, "K1")
    );
}

#[test]
fn as7_busy_agent_defers_offline_ignores_unmapped_rejects() {
    for activity in [
        AgentActivity::InCall,
        AgentActivity::InChat,
        AgentActivity::WrapUp,
    ] {
        let d = on_status_change(&k_change("K4"), &mapped().activity(activity).build());
        assert_eq!(
            d,
            StatusDecision::Defer(StatusTarget {
                target: System::Ccai,
                status: "D".into()
            })
        );
    }
    let d = on_status_change(
        &k_change("K1"),
        &mapped().activity(AgentActivity::Offline).build(),
    );
    assert!(
        matches!(&d, StatusDecision::Ignore(r) if r.contains("offline")),
        "{d:?}"
    );
    let d = on_status_change(&k_change("K9"), &mapped().build());
    assert!(
        matches!(&d, StatusDecision::Reject(r) if r.contains("K9")),
        "{d:?}"
    );
}

#[test]
fn as8_login_is_ignored() {
    let change = testing::status_change(System::Kustomer, AGENT, "K1")
        .login()
        .build();
    assert!(matches!(
        on_status_change(&change, &mapped().build()),
        StatusDecision::Ignore(_)
    ));
}

#[test]
fn parse_time_handles_fractions_and_offsets() {
    assert!(is_later("2024-05-01T09:00:00.5Z", "2024-05-01T09:00:00Z"));
    assert!(!is_later(
        "2024-05-01T10:00:00+01:00",
        "2024-05-01T09:00:00Z"
    ));
    assert!(is_later("2024-03-01T00:00:00Z", "2024-02-29T23:59:59.999Z"));
    assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some((0, 0)));
    assert_eq!(parse_time("2000-01-01T00:00:00Z"), Some((946_684_800, 0)));
    assert_eq!(parse_time("not a time"), None);
}

#[test]
fn tc1_tc5_inbound_call_is_recorded_once_its_outcome_is_known() {
    let ctx = testing::context().build();
    for waiting in [
        testing::ivr_call("call-9")
            .phone(PHONE)
            .event(EventKind::Created),
        billing_call().event(EventKind::Created),
        billing_call().event(EventKind::Queued),
    ] {
        let plan = run(&waiting, &ctx);
        assert!(plan.is_skip(), "no conversation yet: {plan:?}");
        assert!(
            plan.skipped().iter().any(|r| r.contains("voicemail")),
            "{plan:?}"
        );
    }
    // Hung up in the IVR, before any menu: still recorded (TC1).
    let hung_up = testing::ivr_call("call-9")
        .phone(PHONE)
        .event(EventKind::Ended);
    assert!(run(&hung_up, &ctx).conversation_created().is_some());
    let answered = billing_call().event(EventKind::Connected(testing::agent(5, "ana@example.com")));
    let plan = run(&answered, &ctx);
    let created = plan
        .conversation_created()
        .expect("an answered call creates the conversation");
    assert_eq!(created.menu_selection.as_deref(), Some("9"), "{created:?}");
}
