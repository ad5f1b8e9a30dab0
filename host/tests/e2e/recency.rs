//! Kustomer recency (SPEC KU1): the emulator sorts lists by id, as Kustomer
//! documents, and a customer's newest conversation is still found by time,
//! whatever order the ids are in.
use crate::support::*;
use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use switchboard::connectors::kustomer::model::{NewConversation, NewCustomer, PhoneEntry};

/// Every order of three ids.
const ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// An outbound call by Ada to `phone`, as its first update.
fn outbound_call(id: u64, phone: &str, at_ms: i64) -> Value {
    json!({ "count": 1, "events": [{
        "event_id": format!("ku1-{id}"),
        "timestamp": at_ms,
        "item": {
            "id": id, "channel": "call", "session_type": "Voice Outbound (API)",
            "direction": "outbound", "status": "connected", "dn": phone,
            "created_at": Utc.timestamp_millis_opt(at_ms).single().map(|t| t.to_rfc3339()),
            "agent": { "id": 21, "name": "Ada Lovelace", "email": "ada@example.com" },
            "participants": [{ "type": "agent", "status": "connected",
                               "agent": { "id": 21, "name": "Ada Lovelace", "email": "ada@example.com" } }]
        }
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ku1_tu2_tc3_the_newest_conversation_is_found_by_time_whatever_the_ids_e2e() {
    let stack = start_default().await;
    let client = kustomer_client(&stack);
    let base = Utc
        .with_ymd_and_hms(2026, 1, 10, 9, 0, 0)
        .single()
        .expect("time");
    // Three earlier conversations a day apart; ids chosen so that id order
    // is each of the six orders of their creation times. Either the newest
    // is open (TU2: append to it) or only an older one is (TC3: a new one).
    let mut expected = Vec::new();
    for order in &ORDERS {
        for newest_open in [true, false] {
            let n = expected.len();
            let phone = format!("+1415555{:04}", 8100 + n);
            let customer = await_or_timeout(
                "a prior customer",
                30,
                client.create_customer(&NewCustomer {
                    phones: vec![PhoneEntry {
                        phone: phone.clone(),
                        kind: Some("mobile".into()),
                        verified: None,
                    }],
                    ..Default::default()
                }),
            )
            .await
            .expect("customer");
            let mut ids = Vec::new();
            for (age, rank) in order.iter().enumerate() {
                // The id's own time says nothing: rank decides its order.
                let id = format!("{:024x}", 0xa000_0000_u64 + (n as u64) * 16 + *rank as u64);
                let status = match (age, newest_open) {
                    (2, true) | (0, false) => "open",
                    _ => "done",
                };
                await_or_timeout(
                    "a prior conversation",
                    30,
                    client.create_conversation(&NewConversation {
                        id: Some(id.clone()),
                        customer: customer.id.clone(),
                        name: Some(format!("Earlier {age}")),
                        status: Some(status.into()),
                        created_at: Some(base + Duration::days(age as i64)),
                        ..Default::default()
                    }),
                )
                .await
                .expect("conversation");
                ids.push(id);
            }
            expected.push((phone, ids[2].clone(), newest_open));
        }
    }
    let at = (base + Duration::days(5)).timestamp_millis();
    for (n, (phone, _, _)) in expected.iter().enumerate() {
        let (status, body) = post_batch(
            &stack.url(),
            &stack.target.username,
            &stack.target.password,
            &outbound_call(9100 + n as u64, phone, at + n as i64 * 1000),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    settle(&stack, "the outbound calls").await;
    let view = View::of(&stack);
    for (phone, newest, newest_open) in &expected {
        let customer = view.customer_with_phone(phone);
        let conversations = view.conversations_of(customer);
        let with_call: Vec<String> = conversations
            .iter()
            .filter(|c| !view.messages_of(c).is_empty())
            .map(|c| id(c))
            .collect();
        assert_eq!(with_call.len(), 1, "{phone}: one conversation has the call");
        if *newest_open {
            assert_eq!(conversations.len(), 3, "{phone}: TU2 appends");
            assert_eq!(&with_call[0], newest, "{phone}: appended to the newest");
        } else {
            assert_eq!(conversations.len(), 4, "{phone}: TC3 creates a new one");
            assert!(
                !with_call[0].starts_with("0000000000000000a"),
                "{phone}: the call went to a new conversation"
            );
        }
    }
    stack.shutdown().await;
}
