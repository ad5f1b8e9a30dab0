//! One test per SPEC rule of §2–4: the rule's scenario through the running
//! sidecar, then the Kustomer state it must leave.
use crate::support::*;
use serde_json::json;
use switchboard::connectors::kustomer::model::{NewConversation, NewCustomer, PhoneEntry};
use switchboard_emulators::ccai::media_file;

const ADA: &str = "ada@example.com";
const GRACE: &str = "grace@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tc1_inbound_call_creates_a_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "tc1_inbound_ivr_call").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155550101");
    let conversations = view.conversations_of(customer);
    assert_eq!(
        conversations.len(),
        1,
        "one conversation despite out-of-order and repeated updates"
    );
    let c = conversations[0];
    assert_eq!(attr_str(c, "status"), "open");
    assert_eq!(attr_str(c, "direction"), "in");
    let messages = view.messages_of(c);
    assert_eq!(
        messages.len(),
        1,
        "the call is one inbound voice message: {messages:#?}"
    );
    assert_eq!(attr_str(messages[0], "channel"), "voice");
    assert_eq!(attr_str(messages[0], "direction"), "in");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tc1_mobile_chat_creates_a_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "tc1_mobile_chat").await;
    let view = View::of(&stack);
    assert_eq!(view.conversations.len(), 1, "{:#?}", view.conversations);
    let c = &view.conversations[0];
    assert_eq!(attr_str(c, "status"), "open");
    let messages = view.messages_of(c);
    assert_eq!(messages.len(), 1);
    assert_eq!(attr_str(messages[0], "channel"), "chat");
    assert_eq!(custom(c, "ccaiSessionIdStr"), "chat-2001");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tc2_answered_ivr_call_creates_a_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "tc2_ivr_call_answered").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155550102");
    let conversations = view.conversations_of(customer);
    assert_eq!(conversations.len(), 1);
    assert_eq!(attr_str(conversations[0], "status"), "open");
    assert_eq!(view.assignees(conversations[0]), [GRACE]);
    assert_eq!(
        custom(conversations[0], "ccaiCallDurationNum"),
        &json!(240.0)
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tc3_outbound_after_closed_creates_new_e2e() {
    let stack = start_default().await;
    // The customer's latest conversation is done.
    let client = kustomer_client(&stack);
    let customer = await_or_timeout(
        "creating the prior customer",
        30,
        client.create_customer(&NewCustomer {
            phones: vec![PhoneEntry {
                phone: "+14155550103".into(),
                kind: Some("mobile".into()),
                verified: None,
            }],
            ..Default::default()
        }),
    )
    .await
    .expect("customer");
    let closed = await_or_timeout(
        "creating the prior closed conversation",
        30,
        client.create_conversation(&NewConversation {
            customer: customer.id.clone(),
            name: Some("Earlier call".into()),
            status: Some("done".into()),
            ..Default::default()
        }),
    )
    .await
    .expect("conversation");
    play(&stack, "tc3_outbound_call").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155550103");
    let conversations = view.conversations_of(customer);
    assert_eq!(
        conversations.len(),
        2,
        "a new conversation next to the closed one: {conversations:#?}"
    );
    let new = conversations
        .iter()
        .find(|c| id(c) != closed.id)
        .expect("new conversation");
    assert_eq!(attr_str(new, "status"), "open");
    assert_eq!(attr_str(new, "direction"), "out");
    assert_eq!(view.messages_of(new).len(), 1);
    let old = conversations
        .iter()
        .find(|c| id(c) == closed.id)
        .expect("closed conversation");
    assert_eq!(attr_str(old, "status"), "done");
    assert!(
        view.messages_of(old).is_empty(),
        "nothing appended to the closed conversation"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tc4_abandoned_call_still_creates_a_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "tc4_abandoned_call").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155550105");
    let conversations = view.conversations_of(customer);
    assert_eq!(conversations.len(), 1);
    assert!(
        view.assignees(conversations[0]).is_empty(),
        "nobody answered"
    );
    let notes = view.notes_of(conversations[0]);
    assert!(
        notes.iter().any(|n| n.contains("abandoned")),
        "an abandonment note: {notes:#?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tc5_voicemail_creates_one_voicemail_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "tc5_voicemail").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155550106");
    let conversations = view.conversations_of(customer);
    assert_eq!(
        conversations.len(),
        1,
        "only the voicemail conversation: {conversations:#?}"
    );
    let voicemail = conversations[0];
    assert!(tags(voicemail).iter().any(|t| t == "voicemail"));
    assert_eq!(attr_str(voicemail, "status"), "open");
    let attachment = view.attachment("voicemail-1006.mp3");
    assert_eq!(attr_str(attachment, "contentType"), "audio/mpeg");
    let content = stack
        .kustomer
        .control()
        .attachment_content(&id(attachment))
        .expect("uploaded");
    assert_eq!(
        content,
        media_file("recordings/voicemail-1006.mp3").1,
        "the recording the platform served"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu1_repeat_call_same_menu_appends_to_the_open_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "tu1_repeat_call_same_menu").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155550108");
    let conversations = view.conversations_of(customer);
    assert_eq!(
        conversations.len(),
        1,
        "the second call is appended: {conversations:#?}"
    );
    assert_eq!(
        view.messages_of(conversations[0]).len(),
        2,
        "one message per call"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu1_snoozed_or_done_conversations_never_match_e2e() {
    for status in ["snoozed", "done"] {
        let stack = start_default().await;
        let (first, second) = split_after_first_final(&scenario("tu1_repeat_call_same_menu"));
        play_scenario(&stack, &first, "tu1 first call").await;
        let view = View::of(&stack);
        let earlier = id(view.conversations_of(view.customer_with_phone("+14155550108"))[0]);
        await_or_timeout(
            &format!("setting the first conversation {status}"),
            30,
            kustomer_client(&stack).set_conversation_status(&earlier, status),
        )
        .await
        .expect("status set");
        play_scenario(&stack, &second, "tu1 second call").await;
        let view = View::of(&stack);
        let conversations = view.conversations_of(view.customer_with_phone("+14155550108"));
        assert_eq!(
            conversations.len(),
            2,
            "a {status} conversation is not appended to: {conversations:#?}"
        );
        let earlier = conversations
            .iter()
            .find(|c| id(c) == earlier)
            .expect("earlier");
        assert_eq!(
            view.messages_of(earlier).len(),
            1,
            "nothing appended to the {status} conversation"
        );
        stack.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu2_outbound_follow_up_appends_to_the_open_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "tc1_inbound_ivr_call").await;
    play(&stack, "tu2_outbound_follow_up").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155550101");
    let conversations = view.conversations_of(customer);
    assert_eq!(
        conversations.len(),
        1,
        "the outbound call follows up: {conversations:#?}"
    );
    let directions: Vec<String> = view
        .messages_of(conversations[0])
        .iter()
        .map(|m| attr_str(m, "direction"))
        .collect();
    assert_eq!(directions, ["in", "out"]);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu3_call_recording_is_attached_e2e() {
    let stack = start_default().await;
    play(&stack, "tu3_call_recording").await;
    let view = View::of(&stack);
    let c = view.conversations_of(view.customer_with_phone("+14155550110"))[0];
    let attachment = view.attachment("call-1010.mp3");
    assert_eq!(attr_str(attachment, "contentType"), "audio/mpeg");
    let content = stack
        .kustomer
        .control()
        .attachment_content(&id(attachment))
        .expect("uploaded");
    assert_eq!(content, media_file("recordings/call-1010.mp3").1);
    let notes = view.notes_of(c);
    assert!(
        notes.iter().any(|n| n.contains("call-1010.mp3")),
        "{notes:#?}"
    );
    let with_file: Vec<&serde_json::Value> = view
        .notes
        .iter()
        .filter(|n| {
            attrs(n)["attachments"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .collect();
    assert_eq!(with_file.len(), 1);
    assert_eq!(
        rel(with_file[0], "conversation"),
        id(c),
        "attached to the call's conversation"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu4_transfer_assigns_the_receiving_agent_e2e() {
    let stack = start_default().await;
    play(&stack, "tu4_transfer").await;
    let view = View::of(&stack);
    let conversations = view.conversations_of(view.customer_with_phone("+14155550111"));
    assert_eq!(conversations.len(), 1);
    assert_eq!(
        view.assignees(conversations[0]),
        [GRACE],
        "assigned to the agent who received the transfer"
    );
    let notes = view.notes_of(conversations[0]);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Transferred") && n.contains("Grace Hopper")),
        "{notes:#?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu5_hangup_and_callback_appends_to_the_open_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "tu5_hangup_and_callback").await;
    let view = View::of(&stack);
    let conversations = view.conversations_of(view.customer_with_phone("+14155550112"));
    assert_eq!(conversations.len(), 1, "{conversations:#?}");
    let messages = view.messages_of(conversations[0]);
    let directions: Vec<String> = messages.iter().map(|m| attr_str(m, "direction")).collect();
    assert_eq!(directions, ["in", "out"], "the call-back is appended");
    assert!(
        attr_str(messages[1], "preview").contains("hang-up"),
        "{:#?}",
        messages[1]
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu6_short_call_callback_appends_to_the_open_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "tu6_short_call_callback").await;
    let view = View::of(&stack);
    let conversations = view.conversations_of(view.customer_with_phone("+14155550114"));
    assert_eq!(conversations.len(), 1, "{conversations:#?}");
    let messages = view.messages_of(conversations[0]);
    assert_eq!(messages.len(), 2);
    assert!(
        attr_str(messages[1], "preview").contains("short call"),
        "{:#?}",
        messages[1]
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu7_smart_action_results_and_shared_files_are_added_e2e() {
    let stack = start_default().await;
    play(&stack, "tu7_smart_action_completed").await;
    let view = View::of(&stack);
    let c = view.conversations_of(view.customer_with_phone("+14155550116"))[0];
    let notes = view.notes_of(c);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Photo request completed") && n.contains("photos: 2")),
        "results note: {notes:#?}"
    );
    for (name, path) in [
        ("photo-1.jpg", "smart-actions/1016/photo-1.jpg"),
        ("photo-2.jpg", "smart-actions/1016/photo-2.jpg"),
    ] {
        let attachment = view.attachment(name);
        assert_eq!(attr_str(attachment, "contentType"), "image/jpeg");
        let content = stack
            .kustomer
            .control()
            .attachment_content(&id(attachment))
            .expect("uploaded");
        assert_eq!(
            content,
            media_file(path).1,
            "{name} as the customer shared it"
        );
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu8_smart_action_customer_error_is_added_e2e() {
    let stack = start_default().await;
    play(&stack, "tu8_smart_action_failed").await;
    let view = View::of(&stack);
    let c = view.conversations_of(view.customer_with_phone("+14155550117"))[0];
    let notes = view.notes_of(c);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Fingerprint verification is not enabled on this device")),
        "error message note: {notes:#?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu9_mapped_sdk_custom_data_is_written_e2e() {
    // The stack maps `loyalty_tier` to the customer attribute ccaiLoyaltyTierStr.
    let stack = start_default().await;
    play(&stack, "tu9_sdk_custom_data").await;
    play(&stack, "tu9_chat_custom_data").await;
    let view = View::of(&stack);
    let mobile_call = view.customer_with_phone("+14155550118");
    assert_eq!(
        custom(mobile_call, "ccaiLoyaltyTierStr"),
        "silver",
        "{mobile_call:#?}"
    );
    let chat = view
        .customers
        .iter()
        .find(|c| attr_str(c, "externalId") == "app-user-2004")
        .expect("chat customer");
    assert_eq!(custom(chat, "ccaiLoyaltyTierStr"), "platinum", "{chat:#?}");
    // Unmapped keys are not written anywhere.
    let everything = serde_json::to_string(&(&view.customers, &view.conversations)).expect("json");
    assert!(!everything.contains("A-1018"), "unmapped order_id leaked");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu10_csat_rating_is_added_e2e() {
    let stack = start_default().await;
    play(&stack, "tu10_csat_rating").await;
    let view = View::of(&stack);
    let c = view.conversations_of(view.customer_with_phone("+14155550119"))[0];
    assert_eq!(custom(c, "ccaiCsatRatingNum"), &json!(4.0));
    assert_eq!(custom(c, "ccaiCsatCommentTxt"), "Quick and friendly");
    let notes = view.notes_of(c);
    assert!(
        notes.iter().any(|n| n.contains("CSAT rating: 4/5")),
        "{notes:#?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tu11_voicemail_read_closed_called_back_update_the_voicemail_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "tu11_voicemail_actions").await;
    let view = View::of(&stack);
    let conversations = view.conversations_of(view.customer_with_phone("+14155550106"));
    let voicemail: Vec<&&serde_json::Value> = conversations
        .iter()
        .filter(|c| tags(c).iter().any(|t| t == "voicemail"))
        .collect();
    assert_eq!(voicemail.len(), 1, "{conversations:#?}");
    let notes = view.notes_of(voicemail[0]);
    for action in [
        "Voicemail read",
        "Voicemail closed",
        "Voicemail called back",
    ] {
        assert!(
            notes.iter().any(|n| n.contains(action)),
            "{action}: {notes:#?}"
        );
    }
    assert_eq!(
        attr_str(voicemail[0], "status"),
        "done",
        "closing the voicemail closes its conversation"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc1_unknown_caller_becomes_a_customer_with_that_phone_e2e() {
    let stack = start_default().await;
    play(&stack, "cc1_unknown_caller").await;
    let view = View::of(&stack);
    assert_eq!(view.customers.len(), 1);
    let customer = view.customer_with_phone("+442079460958");
    assert_eq!(view.conversations_of(customer).len(), 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc2_new_sdk_user_becomes_a_customer_with_external_id_e2e() {
    let stack = start_default().await;
    play(&stack, "cc2_new_sdk_user").await;
    let view = View::of(&stack);
    assert_eq!(view.customers.len(), 1, "{:#?}", view.customers);
    let customer = &view.customers[0];
    assert_eq!(attr_str(customer, "externalId"), "app-user-new-2002");
    assert_eq!(
        custom(customer, "ccaiCustomUserIdStr"),
        "app-user-new-2002",
        "CF2 custom user id"
    );
    assert_eq!(view.conversations_of(customer).len(), 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cu1_recent_customer_is_assigned_to_the_agent_e2e() {
    let stack = start_default().await;
    play(&stack, "cu1_agent_assignment").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155550121");
    assert_eq!(
        custom(customer, "ccaiAssignedAgentStr"),
        GRACE,
        "{customer:#?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pn1_phone_number_note_in_e164_e2e() {
    let stack = start_default().await;
    play(&stack, "pn1_phone_note").await;
    let view = View::of(&stack);
    // Dialled as "(415) 555-0122": stored and noted with its country code.
    let customer = view.customer_with_phone("+14155550122");
    let c = view.conversations_of(customer)[0];
    let notes = view.notes_of(c);
    assert!(
        notes.iter().any(|n| n.contains("+14155550122")),
        "{notes:#?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ct1_chat_transcript_is_attached_and_noted_e2e() {
    let stack = start_default().await;
    play(&stack, "ct1_chat_transcript").await;
    let view = View::of(&stack);
    assert_eq!(view.conversations.len(), 1);
    let c = &view.conversations[0];
    let attachment = view.attachment("chat-2003-transcript.txt");
    let transcript = stack
        .kustomer
        .control()
        .attachment_content(&id(attachment))
        .expect("uploaded");
    let transcript = String::from_utf8(transcript).expect("text");
    let positions: Vec<Option<usize>> = [
        "Hi, my order is late",
        "Let me check that for you",
        "Thanks!",
    ]
    .iter()
    .map(|m| transcript.find(m))
    .collect();
    assert!(
        positions.iter().all(Option::is_some),
        "every message in the transcript: {transcript}"
    );
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in order: {transcript}"
    );
    let notes = view.notes_of(c);
    assert!(
        notes.iter().any(|n| n.contains("Transcript")),
        "shown as a note: {notes:#?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sd1_call_conversation_gets_caller_id_and_language_e2e() {
    let stack = start_default().await;
    play(&stack, "sd1_standard_data").await;
    let view = View::of(&stack);
    let c = view.conversations_of(view.customer_with_phone("+15145550123"))[0];
    assert_eq!(
        custom(c, "ccaiFromPhoneNumberStr"),
        "+15145550123",
        "caller id"
    );
    assert_eq!(attr_str(c, "defaultLang"), "fr-CA", "language");
    assert_eq!(custom(c, "ccaiSessionTypeStr"), "Voice Inbound (IVR)");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sd1_call_conversation_gets_the_inbound_menu_selection_e2e() {
    let stack = start_default().await;
    play(&stack, "sd1_standard_data").await;
    let view = View::of(&stack);
    let c = view.conversations_of(view.customer_with_phone("+15145550123"))[0];
    assert_eq!(
        custom(c, "ccaiCustomerMenuSelectionStr"),
        "Billing",
        "{c:#?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aa1_answering_agent_is_assigned_e2e() {
    let stack = start_default().await;
    play(&stack, "aa1_agent_answers").await;
    let view = View::of(&stack);
    let c = view.conversations_of(view.customer_with_phone("+14155550124"))[0];
    assert_eq!(view.assignees(c), [ADA]);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp1_screen_pop_finds_the_sessions_conversation_e2e() {
    let stack = start_default().await;
    play(&stack, "aa1_agent_answers").await;
    let view = View::of(&stack);
    let customer = view.customer_with_phone("+14155550124");
    let c = view.conversations_of(customer)[0];
    let http = reqwest::Client::new();
    let url = |session: &str| {
        format!(
            "{}/v1/tenants/acme/sessions/{session}/conversation",
            stack.url()
        )
    };
    let response = await_or_timeout(
        "screen pop for call-1024",
        30,
        http.get(url("call-1024"))
            .basic_auth(&stack.target.username, Some(&stack.target.password))
            .send(),
    )
    .await
    .expect("answer");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = await_or_timeout("screen pop body", 30, response.json())
        .await
        .expect("json");
    assert_eq!(body["conversation_id"], id(c).as_str());
    assert_eq!(body["customer_id"], id(customer).as_str());
    let unknown = await_or_timeout(
        "screen pop for an unknown session",
        30,
        http.get(url("call-9999"))
            .basic_auth(&stack.target.username, Some(&stack.target.password))
            .send(),
    )
    .await
    .expect("answer");
    assert_eq!(unknown.status(), 404);
    let anonymous = await_or_timeout(
        "screen pop without credentials",
        30,
        http.get(url("call-1024")).send(),
    )
    .await
    .expect("answer");
    assert_eq!(anonymous.status(), 401);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_vip_caller_gets_a_new_priority_conversation_under_the_vip_module_e2e() {
    let stack = start(switchboard::demo::StackOptions::new(
        switchboard_rule_artifacts::RULES_EXAMPLE_VIP,
    ))
    .await;
    play(&stack, "demo_vip_caller").await;
    let view = View::of(&stack);
    let conversations = view.conversations_of(view.customer_with_phone("+14155550125"));
    assert_eq!(
        conversations.len(),
        2,
        "the VIP call is not appended: {conversations:#?}"
    );
    let vip = conversations
        .iter()
        .find(|c| tags(c).iter().any(|t| t == "vip"))
        .expect("vip conversation");
    assert_eq!(attrs(vip)["priority"], 5);
    assert_eq!(custom(vip, "ccaiLoyaltyTierStr"), "gold");
    stack.shutdown().await;
}
