//! OP3: with 429 bursts, 5xx answers, dropped connections and latency in
//! Kustomer (and errors and latency in CCAI Platform), every event is still
//! applied, and each customer's events in order.
use crate::support::*;
use switchboard_emulators::ccai as ccai_emu;
use switchboard_emulators::kustomer::{Fault, FaultKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op3_faults_delay_but_never_lose_or_reorder_events_e2e() {
    let stack = start_default().await;
    let k = stack.kustomer.control();
    k.inject(Fault::new(FaultKind::RateLimited { reset_in_secs: 1 }, 6));
    k.inject(Fault::new(FaultKind::ServerError { status: 503 }, 6));
    k.inject(Fault::new(FaultKind::Latency { ms: 150 }, 30));
    k.inject(Fault::new(FaultKind::ServerError { status: 502 }, 4).on_method("POST"));
    k.inject(Fault::new(FaultKind::DropConnection, 2).on_method("POST"));
    k.inject(
        Fault::new(FaultKind::RateLimited { reset_in_secs: 2 }, 8).on_path("/v1/conversations"),
    );
    stack.ccai.inject_fault(ccai_emu::Fault {
        status: 503,
        count: 3,
        retry_after: None,
        path_contains: None,
    });
    stack
        .ccai
        .set_latency(std::time::Duration::from_millis(100));

    // Several customers, several events each, delivered back to back.
    let names = [
        "tc1_inbound_ivr_call",
        "tu2_outbound_follow_up",
        "tu1_repeat_call_same_menu",
        "tu5_hangup_and_callback",
        "tu6_short_call_callback",
        "tu7_smart_action_completed",
        "tu11_voicemail_actions",
        "ct1_chat_transcript",
    ];
    for name in names {
        await_or_timeout(
            &format!("delivering {name}"),
            60,
            stack.play(&scenario(name)),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
    settle(&stack, "every scenario under faults").await;
    assert!(
        k.faults().is_empty(),
        "every injected Kustomer fault was hit: {:?}",
        k.faults()
    );

    assert!(
        stack
            .ccai
            .requests()
            .iter()
            .filter(|r| r.status == 503)
            .count()
            >= 3,
        "the CCAI faults were hit (by the Manager API poller)"
    );

    let view = View::of(&stack);
    // Each conversation's messages were created in event order.
    for c in &view.conversations {
        let sent: Vec<String> = view
            .messages_of(c)
            .iter()
            .map(|m| attr_str(m, "sentAt"))
            .collect();
        let mut sorted = sent.clone();
        sorted.sort();
        assert_eq!(
            sent,
            sorted,
            "messages of {} in event order",
            attr_str(c, "name")
        );
    }
    assert_eq!(
        view.directions_of_phone("+14155550101"),
        ["in", "out"],
        "TC1 call, then the TU2 follow-up"
    );
    assert_eq!(
        view.directions_of_phone("+14155550112"),
        ["in", "out"],
        "TU5 call, then the call-back"
    );
    assert_eq!(
        view.messages_of(view.conversations_of(view.customer_with_phone("+14155550108"))[0])
            .len(),
        2
    );
    // Nothing applied twice despite retries.
    assert_eq!(
        view.customers.len(),
        7,
        "{:#?}",
        view.customers
            .iter()
            .map(|c| attrs(c)["phones"].clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        view.voicemail_actions_of_phone("+14155550106"),
        VOICEMAIL_ACTIONS,
        "voicemail actions once each, in order"
    );
    for name in [
        "photo-1.jpg",
        "photo-2.jpg",
        "voicemail-1007.mp3",
        "chat-2003-transcript.txt",
    ] {
        let n = view
            .attachments
            .iter()
            .filter(|a| attr_str(a, "name") == name)
            .count();
        assert_eq!(n, 1, "{name} attached once");
    }
    stack.shutdown().await;
}
