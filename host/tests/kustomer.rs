//! The Kustomer client against the Kustomer emulator, the samples in
//! `tests/fixtures/samples/kustomer` against the client's types, and the emulator's
//! answers against the samples' shapes.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::{json, Map, Value};
use switchboard::connectors::kustomer::model::*;
use switchboard::connectors::kustomer::{
    derive_id, parse_webhook_event, verify_webhook_signature, ApiKey, Clock, KustomerClient,
    KustomerConfig, KustomerError, RetryPolicy,
};
use switchboard_emulators::kustomer::{
    self as emu, Fault, FaultKind, KustomerControl, KustomerEmulator, KustomerEmulatorConfig,
    WebhookTarget,
};

/// Creation time (epoch seconds) of the objects these tests name.
const T0: i64 = 1_768_467_600;

/// A client clock that is the emulator's clock: sleeping moves the emulator's
/// time forward instead of waiting, so minutes of rate-limit waits take
/// microseconds and the server agrees on what time it is.
struct EmulatorClock(KustomerControl);

impl Clock for EmulatorClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.0.advance_to(deadline);
        Box::pin(tokio::task::yield_now())
    }
}

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 21, 20, 0, 0)
        .single()
        .expect("valid start time")
}

struct Env {
    emu: KustomerEmulator,
    client: KustomerClient,
}

async fn env_with(config: KustomerEmulatorConfig, retry: RetryPolicy) -> Env {
    let emu = emu::start(KustomerEmulatorConfig {
        fixed_time: Some(start_time()),
        ..config
    })
    .await
    .expect("emulator starts");
    let mut cfg = KustomerConfig::new(&emu.base_url(), ApiKey::new(emu.api_key()))
        .expect("valid client config");
    cfg.retry = retry;
    cfg.request_timeout = Duration::from_secs(5);
    let client = KustomerClient::with_clock(cfg, Arc::new(EmulatorClock(emu.control())))
        .expect("client builds");
    Env { emu, client }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        max_rate_limit_waits: 10,
    }
}

async fn env() -> Env {
    env_with(KustomerEmulatorConfig::default(), fast_retry()).await
}

fn phone_customer(phone: &str) -> NewCustomer {
    NewCustomer {
        name: Some("Carla Caller".into()),
        phones: vec![PhoneEntry {
            phone: phone.into(),
            kind: Some("mobile".into()),
            verified: None,
        }],
        ..Default::default()
    }
}

fn voice_message(id: &str, direction: &str) -> NewMessage {
    NewMessage {
        id: Some(id.to_string()),
        channel: "voice".into(),
        app: "switchboard".into(),
        direction: direction.into(),
        preview: Some("Inbound call, 3m 12s".into()),
        meta: Some(json!({"sessionId": "ccai-123", "durationSec": 192})),
        ..Default::default()
    }
}

fn custom(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A note whose id is derived from `key`, as the pipeline derives them.
fn new_note(key: &str, body: &str) -> NewNote {
    NewNote {
        id: Some(derive_id(T0, key)),
        body: body.into(),
        ..Default::default()
    }
}

async fn customer_and_conversation(env: &Env, phone: &str, key: &str) -> (Customer, Conversation) {
    let customer = env
        .client
        .create_customer(&phone_customer(phone))
        .await
        .expect("customer created");
    let conversation = env
        .client
        .create_conversation(&NewConversation {
            id: Some(derive_id(T0, key)),
            customer: customer.id.clone(),
            name: Some("Inbound call".into()),
            ..Default::default()
        })
        .await
        .expect("conversation created");
    (customer, conversation)
}

fn count(env: &Env, method: &str, prefix: &str) -> usize {
    env.emu
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(prefix))
        .count()
}

// ------------------------------------------------------------------ customers

#[tokio::test]
async fn customer_is_created_found_by_phone_email_external_id_and_updated() {
    let env = env().await;
    let created = env
        .client
        .create_customer(&NewCustomer {
            name: Some("Ada Lovelace".into()),
            external_id: Some("sdk-42".into()),
            emails: vec![EmailEntry {
                email: "ada@example.org".into(),
                kind: Some("home".into()),
                verified: None,
            }],
            phones: vec![PhoneEntry {
                phone: "+14155550100".into(),
                kind: Some("mobile".into()),
                verified: None,
            }],
            ..Default::default()
        })
        .await
        .expect("customer created");
    assert_eq!(created.id.len(), 24, "id {}", created.id);
    assert_eq!(created.attributes.rev, Some(1));

    let by_phone = env.client.find_customer_by_phone("+14155550100").await;
    assert_eq!(
        by_phone.expect("lookup").map(|c| c.id),
        Some(created.id.clone())
    );
    let by_email = env.client.find_customer_by_email("ada@example.org").await;
    assert_eq!(
        by_email.expect("lookup").map(|c| c.id),
        Some(created.id.clone())
    );
    let by_ext = env.client.find_customer_by_external_id("sdk-42").await;
    assert_eq!(
        by_ext.expect("lookup").map(|c| c.id),
        Some(created.id.clone())
    );
    let unknown = env.client.find_customer_by_phone("+14155550199").await;
    assert!(unknown.expect("404 is not an error").is_none());

    let updated = env
        .client
        .update_customer(
            &created.id,
            &CustomerPatch {
                name: Some("Ada King".into()),
                custom: Some(custom(&[("ccaiCustomUserIdStr", json!("u-1"))])),
                ..Default::default()
            },
        )
        .await
        .expect("customer updated");
    assert_eq!(updated.attributes.name.as_deref(), Some("Ada King"));
    assert_eq!(updated.attributes.rev, Some(2), "rev bumps on write");
    assert_eq!(
        updated
            .attributes
            .custom
            .as_ref()
            .and_then(|c| c.get("ccaiCustomUserIdStr")),
        Some(&json!("u-1"))
    );
}

#[tokio::test]
async fn duplicate_customer_create_resolves_to_the_existing_customer() {
    let env = env().await;
    let first = env
        .client
        .create_customer(&phone_customer("+14155550111"))
        .await;
    let second = env
        .client
        .create_customer(&phone_customer("+14155550111"))
        .await;
    assert_eq!(first.expect("first").id, second.expect("second").id);
    assert_eq!(env.emu.customers().len(), 1, "no duplicate customer");
    let conflicts = env
        .emu
        .requests()
        .iter()
        .filter(|r| r.status == 409)
        .count();
    assert_eq!(conflicts, 1, "the second create hit the uniqueness rule");
}

// -------------------------------------------------------------- conversations

#[tokio::test]
async fn conversation_is_created_with_client_id_read_listed_and_updated() {
    let env = env().await;
    let (customer, conv) = customer_and_conversation(&env, "+14155550120", "t1/s1/0").await;
    assert_eq!(
        conv.id,
        derive_id(T0, "t1/s1/0"),
        "client-supplied id is kept"
    );
    assert!(conv.attributes.is_open());
    assert_eq!(conv.related_id("customer"), Some(customer.id.as_str()));

    let ext = env
        .client
        .create_conversation(&NewConversation {
            external_id: Some("ccai-session-9".into()),
            customer: customer.id.clone(),
            queue: Some(QueueRef::External("amazon-connect".into())),
            ..Default::default()
        })
        .await
        .expect("second conversation");
    assert_eq!(
        ext.attributes.external_queue.as_deref(),
        Some("amazon-connect")
    );
    let got = env.client.get_conversation(&conv.id).await.expect("get");
    assert_eq!(got.map(|c| c.id), Some(conv.id.clone()));
    let by_ext = env
        .client
        .find_conversation_by_external_id("ccai-session-9")
        .await;
    assert_eq!(by_ext.expect("lookup").map(|c| c.id), Some(ext.id.clone()));
    assert!(env
        .client
        .get_conversation(&derive_id(T0, "nope"))
        .await
        .expect("404 → None")
        .is_none());

    let recent = env
        .client
        .recent_conversations(&customer.id, 10)
        .await
        .expect("list");
    let ids: Vec<&str> = recent.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec![ext.id.as_str(), conv.id.as_str()], "newest first");

    let snoozed = env
        .client
        .set_conversation_status(&conv.id, "snoozed")
        .await
        .expect("snooze");
    assert_eq!(snoozed.attributes.status.as_deref(), Some("snoozed"));
    let assigned = env
        .client
        .assign_conversation(&conv.id, vec!["5ff4bc4212351668002610fd".into()])
        .await
        .expect("assign");
    assert_eq!(
        assigned.attributes.assigned_users,
        vec!["5ff4bc4212351668002610fd"]
    );
    let with_fields = env
        .client
        .set_conversation_custom(
            &conv.id,
            custom(&[
                ("ccaiQueueNameStr", json!("Billing")),
                ("ccaiCallDurationNum", json!(192)),
            ]),
        )
        .await
        .expect("custom fields");
    let c = with_fields.attributes.custom.expect("custom set");
    assert_eq!(c.get("ccaiQueueNameStr"), Some(&json!("Billing")));
    let queued = env
        .client
        .set_conversation_queue(&conv.id, QueueRef::Id("604142274df46d0014f7f3c7".into()))
        .await
        .expect("queue");
    assert_eq!(queued.related_id("queue"), Some("604142274df46d0014f7f3c7"));
    let done = env
        .client
        .set_conversation_status(&conv.id, "done")
        .await
        .expect("done");
    assert_eq!(
        done.attributes.rev,
        Some(6),
        "one rev per write: {:?}",
        done.attributes.rev
    );
}

#[tokio::test]
async fn bad_requests_fail_once_without_retry() {
    let env = env().await;
    let (_, conv) = customer_and_conversation(&env, "+14155550121", "t1/s2/0").await;
    env.emu.clear_requests();
    let err = env
        .client
        .set_conversation_custom(&conv.id, custom(&[("ccaiQueueName", json!("x"))]))
        .await
        .expect_err("custom attribute without a type suffix is refused");
    assert_eq!(
        err.status(),
        Some(reqwest::StatusCode::BAD_REQUEST),
        "got {err}"
    );
    let err = env
        .client
        .set_conversation_status(&conv.id, "closed")
        .await
        .expect_err("unknown status is refused");
    assert!(err.to_string().contains("400"), "got {err}");
    assert_eq!(env.emu.requests().len(), 2, "4xx are not retried");
}

#[tokio::test]
async fn recent_conversations_follows_next_links_across_pages() {
    let env = env().await;
    let customer = env
        .client
        .create_customer(&phone_customer("+14155550122"))
        .await
        .expect("customer");
    for i in 0..105 {
        env.client
            .create_conversation(&NewConversation {
                id: Some(derive_id(T0 + i, &format!("t1/page/{i}"))),
                customer: customer.id.clone(),
                ..Default::default()
            })
            .await
            .expect("conversation");
    }
    env.emu.clear_requests();
    let all = env
        .client
        .recent_conversations(&customer.id, 200)
        .await
        .expect("list");
    assert_eq!(all.len(), 105);
    assert_eq!(
        all[0].id,
        derive_id(T0 + 104, "t1/page/104"),
        "newest first"
    );
    let pages: Vec<String> = env.emu.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(pages.len(), 2, "two pages: {pages:?}");
    assert!(
        pages[1].contains("page=2"),
        "followed links.next: {pages:?}"
    );
}

// --------------------------------------------------------- messages and notes

#[tokio::test]
async fn messages_update_the_conversation_and_inbound_reopens_done() {
    let env = env().await;
    let (customer, conv) = customer_and_conversation(&env, "+14155550130", "t1/s3/0").await;
    let msg = env
        .client
        .create_message(
            &customer.id,
            &conv.id,
            &voice_message(&derive_id(T0, "t1/s3/1"), "in"),
        )
        .await
        .expect("message");
    assert_eq!(msg.id, derive_id(T0, "t1/s3/1"));
    assert_eq!(msg.attributes.channel.as_deref(), Some("voice"));
    assert_eq!(
        msg.attributes
            .meta
            .as_ref()
            .and_then(|m| m.get("sessionId")),
        Some(&json!("ccai-123"))
    );
    let rel = msg
        .relationships
        .get("customer")
        .cloned()
        .flatten()
        .expect("customer relation");
    assert!(
        matches!(rel.data, Some(RelationshipData::One(ref r)) if r.kind == "customers"),
        "message customer relation has type customers: {rel:?}"
    );
    assert_eq!(
        env.client
            .get_message(&msg.id)
            .await
            .expect("get")
            .map(|m| m.id),
        Some(msg.id)
    );

    env.client
        .set_conversation_status(&conv.id, "done")
        .await
        .expect("done");
    env.client
        .create_message(
            &customer.id,
            &conv.id,
            &voice_message(&derive_id(T0, "t1/s3/2"), "in"),
        )
        .await
        .expect("second message");
    let conv = env
        .client
        .get_conversation(&conv.id)
        .await
        .expect("get")
        .expect("exists");
    assert!(
        conv.attributes.is_open(),
        "inbound message reopened the conversation"
    );
    assert_eq!(conv.attributes.channels, vec!["voice"]);
    assert_eq!(conv.attributes.message_count, Some(2));
    assert_eq!(
        conv.attributes.preview.as_deref(),
        Some("Inbound call, 3m 12s")
    );
}

#[tokio::test]
async fn note_create_answers_sparse_and_reads_back_in_full() {
    let env = env().await;
    let (_, conv) = customer_and_conversation(&env, "+14155550131", "t1/s4/0").await;
    let note_id = derive_id(T0, "t1/s4/1");
    let note = env
        .client
        .create_note(
            &conv.id,
            &NewNote {
                id: Some(note_id.clone()),
                body: "Caller phone: +14155550131".into(),
                ..Default::default()
            },
        )
        .await
        .expect("note");
    assert_eq!(note.id, note_id);
    assert_eq!(
        note.attributes.body.as_deref(),
        Some("Caller phone: +14155550131")
    );
    assert_eq!(note.attributes.rev, None, "create answer is sparse");
    let full = env
        .client
        .get_note(&note_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(full.attributes.rev, Some(1));
    assert_eq!(full.related_id("conversation"), Some(conv.id.as_str()));
    let conv = env
        .client
        .get_conversation(&conv.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(conv.attributes.note_count, Some(1));
}

#[tokio::test]
async fn attachment_uploads_in_three_steps_and_is_referenced_by_a_note() {
    let env = env().await;
    let (_, conv) = customer_and_conversation(&env, "+14155550132", "t1/s5/0").await;
    let transcript = Bytes::from_static(b"Agent: Hello\nCaller: Hi, my order...\n");
    let (att, note) = env
        .client
        .create_note_with_attachment(
            &conv.id,
            new_note("t1/s5/transcript", "Chat transcript attached"),
            "chat-123.txt",
            "text/plain",
            transcript.clone(),
        )
        .await
        .expect("upload and note");
    let stored = env
        .emu
        .attachments()
        .into_iter()
        .find(|a| a["id"] == att.id.as_str())
        .expect("registered");
    assert_eq!(
        stored["attributes"]["uploaded"], true,
        "upload marked the attachment uploaded"
    );
    assert_eq!(att.attributes.content_length, Some(transcript.len() as u64));
    assert_eq!(
        env.emu.attachment_content(&att.id).as_deref(),
        Some(&transcript[..])
    );
    let full = env
        .client
        .get_note(&note.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(full.attributes.attachments, Some(json!([att.id.clone()])));

    // Replaying the same action uploads nothing new.
    let (again, _) = env
        .client
        .create_note_with_attachment(
            &conv.id,
            new_note("t1/s5/transcript", "Chat transcript attached"),
            "chat-123.txt",
            "text/plain",
            transcript,
        )
        .await
        .expect("replay");
    assert_eq!(again.id, att.id);
    assert_eq!(env.emu.attachments().len(), 1, "no second upload on replay");
}

// ------------------------------------------------------------------ metadata

#[tokio::test]
async fn metadata_merge_adds_fields_keeps_foreign_ones_and_is_idempotent() {
    let env = env().await;
    let foreign: BTreeMap<String, PropertyDefinition> = [(
        "legacyTierStr".to_string(),
        PropertyDefinition::named("Tier"),
    )]
    .into();
    env.client
        .merge_metadata(MetadataResource::Conversation, &foreign)
        .await
        .expect("foreign field");
    let ours: BTreeMap<String, PropertyDefinition> = [
        (
            "ccaiQueueNameStr".to_string(),
            PropertyDefinition::named("Queue name"),
        ),
        (
            "ccaiCallDurationNum".to_string(),
            PropertyDefinition::named("Call duration"),
        ),
    ]
    .into();
    let merged = env
        .client
        .merge_metadata(MetadataResource::Conversation, &ours)
        .await
        .expect("merge");
    assert_eq!(
        merged.changed,
        vec!["ccaiCallDurationNum", "ccaiQueueNameStr"]
    );
    let props = &merged.metadata.attributes.properties;
    assert!(
        props.contains_key("legacyTierStr"),
        "foreign property kept: {props:?}"
    );
    assert_eq!(props["ccaiCallDurationNum"].kind.as_deref(), Some("number"));

    let puts_before = count(&env, "PUT", "/v1/metadata");
    let again = env
        .client
        .merge_metadata(MetadataResource::Conversation, &ours)
        .await
        .expect("second merge");
    assert!(
        again.changed.is_empty(),
        "nothing to change: {:?}",
        again.changed
    );
    assert_eq!(
        count(&env, "PUT", "/v1/metadata"),
        puts_before,
        "no write when in place"
    );

    let bad: BTreeMap<String, PropertyDefinition> =
        [("ccaiQueueName".to_string(), PropertyDefinition::named("x"))].into();
    let err = env
        .client
        .merge_metadata(MetadataResource::Customer, &bad)
        .await
        .expect_err("suffix-less name refused");
    assert_eq!(err.status(), Some(reqwest::StatusCode::BAD_REQUEST));
}

// ------------------------------------------------------------------- routing

#[tokio::test]
async fn agent_status_is_read_and_changed_through_the_work_session() {
    let env = env().await;
    let user = env
        .client
        .find_user_by_email("ada@example.com")
        .await
        .expect("lookup")
        .expect("seeded agent");
    assert!(env
        .client
        .find_user_by_email("nobody@example.com")
        .await
        .expect("lookup")
        .is_none());
    let statuses = env.client.routing_statuses().await.expect("statuses");
    let lunch = statuses
        .iter()
        .find(|s| s.attributes.name.as_deref() == Some("Lunch"))
        .expect("Lunch status");
    let current = env
        .client
        .current_status(&user.id)
        .await
        .expect("status")
        .expect("signed in");
    assert_eq!(current.status_type.as_deref(), Some("available"));

    let ws = env
        .client
        .set_agent_status(&current.work_session_id, &lunch.id)
        .await
        .expect("status change");
    assert_eq!(ws.related_id("status"), Some(lunch.id.as_str()));
    let now = env
        .client
        .current_status(&user.id)
        .await
        .expect("status")
        .expect("signed in");
    assert_eq!(now.status_id.as_deref(), Some(lunch.id.as_str()));
    assert_eq!(now.status_type.as_deref(), Some("unavailable"));
}

// ---------------------------------------------------- rate limits and faults

#[tokio::test]
async fn burst_of_429s_waits_for_the_reset_then_succeeds() {
    let env = env().await;
    env.emu
        .inject(Fault::new(FaultKind::RateLimited { reset_in_secs: 30 }, 3));
    let before = env.emu.now();
    let customer = env
        .client
        .create_customer(&phone_customer("+14155550140"))
        .await;
    assert!(customer.is_ok(), "recovered: {customer:?}");
    let statuses: Vec<u16> = env.emu.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 429, 429, 201]);
    let waited = env.emu.now() - before;
    assert!(
        waited >= chrono::Duration::seconds(90),
        "waited for each reset, not a blind retry: {waited}"
    );
}

/// A client clock on the emulator's time whose sleeps also take a little real
/// time, so that a response already in flight lands during a wait, as it
/// would with the wall clock, instead of after it.
struct SteppingClock(KustomerControl);

/// Real time each sleep of [`SteppingClock`] takes; well above the in-flight
/// request's latency below, so the ordering holds on a loaded machine.
const STEP: Duration = Duration::from_millis(800);

impl Clock for SteppingClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.0.advance_to(deadline);
        Box::pin(tokio::time::sleep(STEP))
    }
}

/// IS7: a 429 naming a reset one second away, while another request of the
/// same client is in flight and comes back naming the next (minute-long)
/// window. The 429's `remaining: 0` belongs to its own one-second window;
/// the pause is measured on the emulator's clock, between the 429 and the
/// same create succeeding.
#[tokio::test]
async fn is7_a_429_with_a_one_second_reset_pauses_at_most_two_seconds() {
    let emu = emu::start(KustomerEmulatorConfig {
        fixed_time: Some(start_time()),
        ..Default::default()
    })
    .await
    .expect("emulator starts");
    let mut cfg = KustomerConfig::new(&emu.base_url(), ApiKey::new(emu.api_key()))
        .expect("valid client config");
    cfg.retry = fast_retry();
    cfg.request_timeout = Duration::from_secs(5);
    let client = KustomerClient::with_clock(cfg, Arc::new(SteppingClock(emu.control())))
        .expect("client builds");

    // The lookup is held in the emulator for a while and answers with the
    // org window's headers after the create has been refused.
    emu.inject(Fault::new(FaultKind::Latency { ms: 200 }, 1).on_method("GET"));
    emu.inject(
        Fault::new(FaultKind::RateLimited { reset_in_secs: 1 }, 1)
            .on_method("POST")
            .on_path("/v1/customers"),
    );
    let lookup = tokio::spawn({
        let client = client.clone();
        async move { client.get_customer("000000000000000000000001").await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let created = tokio::time::timeout(
        Duration::from_secs(30),
        client.create_customer(&phone_customer("+14155550144")),
    )
    .await
    .expect("create finishes within 30 s of real time");
    assert!(created.is_ok(), "recovered: {created:?}");
    let looked_up = lookup.await.expect("lookup task");
    assert!(looked_up.is_ok(), "lookup: {looked_up:?}");

    let requests = emu.requests();
    let creates: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v1/customers"))
        .collect();
    let statuses: Vec<u16> = creates.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 201], "one refusal, then the create");
    let paused = creates[1].at - creates[0].at;
    assert!(
        paused <= chrono::Duration::seconds(2),
        "a 1 s reset paused the client for {paused} (emulator clock); requests: {requests:?}"
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_until_success() {
    let env = env().await;
    env.emu
        .inject(Fault::new(FaultKind::ServerError { status: 503 }, 2));
    let customer = env
        .client
        .create_customer(&phone_customer("+14155550141"))
        .await;
    assert!(customer.is_ok(), "recovered: {customer:?}");
    let statuses: Vec<u16> = env.emu.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 201]);
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_max_attempts() {
    let env = env().await;
    env.emu
        .inject(Fault::new(FaultKind::ServerError { status: 500 }, 100));
    let err = env
        .client
        .create_customer(&phone_customer("+14155550142"))
        .await
        .expect_err("gives up");
    assert!(
        matches!(err, KustomerError::Exhausted { attempts: 4, .. }),
        "got {err:?}"
    );
    assert_eq!(
        err.status(),
        Some(reqwest::StatusCode::INTERNAL_SERVER_ERROR)
    );
    assert_eq!(env.emu.requests().len(), 4, "bounded by max_attempts");
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    let env = env().await;
    env.emu
        .inject(Fault::new(FaultKind::DropConnection, 1).on_method("POST"));
    let customer = env
        .client
        .create_customer(&phone_customer("+14155550143"))
        .await;
    assert!(customer.is_ok(), "recovered: {customer:?}");
    assert_eq!(env.emu.customers().len(), 1);
}

#[tokio::test]
async fn lost_response_after_create_resolves_without_duplicates() {
    let env = env().await;
    let (customer, _) = customer_and_conversation(&env, "+14155550150", "t1/s6/0").await;
    let conv_id = derive_id(T0, "t1/s7/0");
    env.emu
        .inject(Fault::new(FaultKind::ApplyThenDrop, 1).on_path("/v1/conversations"));
    let conv = env
        .client
        .create_conversation(&NewConversation {
            id: Some(conv_id.clone()),
            customer: customer.id.clone(),
            ..Default::default()
        })
        .await
        .expect("resolved after lost response");
    assert_eq!(conv.id, conv_id);

    env.emu
        .inject(Fault::new(FaultKind::ApplyThenDrop, 1).on_path("/v1/conversations/"));
    let msg = env
        .client
        .create_message(
            &customer.id,
            &conv_id,
            &voice_message(&derive_id(T0, "t1/s7/1"), "in"),
        )
        .await
        .expect("message resolved");
    env.emu
        .inject(Fault::new(FaultKind::ApplyThenDrop, 1).on_path("/v1/conversations/"));
    let note = env
        .client
        .create_note(&conv_id, &new_note("t1/s7/2", "PN1 +14155550150"))
        .await
        .expect("note resolved");
    assert_eq!(msg.id, derive_id(T0, "t1/s7/1"));
    assert_eq!(note.id, derive_id(T0, "t1/s7/2"));
    assert_eq!(
        env.emu.conversations().len(),
        2,
        "no duplicate conversation"
    );
    assert_eq!(env.emu.messages().len(), 1, "no duplicate message");
    assert_eq!(env.emu.notes().len(), 1, "no duplicate note");
    let drops = env
        .emu
        .requests()
        .iter()
        .filter(|r| r.fault.as_deref() == Some("apply_then_drop"))
        .count();
    assert_eq!(drops, 3, "each create lost its first response");
}

/// `add_note` reads only the id of Kustomer's answer; when that answer is
/// lost after the note was made, the retry's conflict resolves to the same
/// note, never a second one.
#[tokio::test]
async fn add_note_answers_the_id_and_a_lost_answer_makes_no_duplicate() {
    let env = env().await;
    let (_, conversation) = customer_and_conversation(&env, "+14155550151", "t1/s8/0").await;
    let conv_id = conversation.id;
    let first = env
        .client
        .add_note(&conv_id, &new_note("t1/s8/1", "first"))
        .await
        .expect("note made");
    assert_eq!(first, derive_id(T0, "t1/s8/1"));
    env.emu
        .inject(Fault::new(FaultKind::ApplyThenDrop, 1).on_path("/v1/conversations/"));
    let second = env
        .client
        .add_note(&conv_id, &new_note("t1/s8/2", "second"))
        .await
        .expect("note resolved after its answer was lost");
    assert_eq!(second, derive_id(T0, "t1/s8/2"));
    assert_eq!(env.emu.notes().len(), 2, "no duplicate note");
}

#[tokio::test]
async fn add_message_answers_the_id_and_a_lost_answer_makes_no_duplicate() {
    let env = env().await;
    let (customer, conversation) = customer_and_conversation(&env, "+14155550152", "t1/s9/0").await;
    let first = env
        .client
        .add_message(
            &customer.id,
            &conversation.id,
            &voice_message(&derive_id(T0, "t1/s9/1"), "in"),
        )
        .await
        .expect("message made");
    assert_eq!(first, derive_id(T0, "t1/s9/1"));
    env.emu
        .inject(Fault::new(FaultKind::ApplyThenDrop, 1).on_path("/v1/conversations/"));
    let second = env
        .client
        .add_message(
            &customer.id,
            &conversation.id,
            &voice_message(&derive_id(T0, "t1/s9/2"), "in"),
        )
        .await
        .expect("message resolved after its answer was lost");
    assert_eq!(second, derive_id(T0, "t1/s9/2"));
    assert_eq!(env.emu.messages().len(), 2, "no duplicate message");
}

/// Writes spread over many customers; the org budget is 300 per window.
#[tokio::test]
async fn burst_of_1000_writes_stays_under_300_per_minute() {
    let env = env_with(
        KustomerEmulatorConfig {
            rate_limit_per_minute: 300,
            ..Default::default()
        },
        fast_retry(),
    )
    .await;
    let started = Instant::now();
    let mut convs = Vec::new();
    for i in 0..10 {
        let (c, v) = customer_and_conversation(
            &env,
            &format!("+1415555{:04}", 2000 + i),
            &format!("burst/{i}"),
        )
        .await;
        convs.push((c.id, v.id));
    }
    let writes = futures::stream::iter(0..1000usize)
        .map(|i| {
            let client = env.client.clone();
            let (customer, conv) = convs[i % convs.len()].clone();
            async move {
                if i % 2 == 0 {
                    client
                        .create_note(
                            &conv,
                            &NewNote {
                                id: Some(derive_id(T0, &format!("burst/note/{i}"))),
                                body: format!("note {i}"),
                                ..Default::default()
                            },
                        )
                        .await
                        .map(|_| ())
                } else {
                    client
                        .create_message(
                            &customer,
                            &conv,
                            &voice_message(&derive_id(T0, &format!("burst/msg/{i}")), "in"),
                        )
                        .await
                        .map(|_| ())
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let failures: Vec<_> = writes.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "all writes succeed: {failures:?}");
    assert_eq!(env.emu.notes().len() + env.emu.messages().len(), 1000);

    let requests = env.emu.requests();
    let limited: Vec<_> = requests.iter().filter(|r| r.status == 429).collect();
    assert!(
        limited.is_empty(),
        "client paced itself, no 429: {} of them",
        limited.len()
    );
    let mut per_window: BTreeMap<DateTime<Utc>, usize> = BTreeMap::new();
    for r in &requests {
        if let Some(w) = r.window_start {
            *per_window.entry(w).or_default() += 1;
        }
    }
    assert!(
        per_window.len() >= 4,
        "1,020 requests need four windows: {per_window:?}"
    );
    for (start, n) in &per_window {
        assert!(*n <= 300, "window starting {start} saw {n} requests");
    }
    let simulated = env.emu.now() - start_time();
    assert!(
        simulated >= chrono::Duration::minutes(3),
        "emulated time {simulated}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "real time {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn per_customer_create_limit_is_respected_without_429() {
    let env = env().await;
    let (customer, conv) = customer_and_conversation(&env, "+14155550160", "t1/s8/0").await;
    for i in 0..130 {
        env.client
            .create_message(
                &customer.id,
                &conv.id,
                &voice_message(&derive_id(T0, &format!("t1/s8/m{i}")), "in"),
            )
            .await
            .expect("message");
    }
    assert_eq!(env.emu.messages().len(), 130);
    assert!(env.emu.requests().iter().all(|r| r.status != 429), "no 429");
    assert!(
        env.emu.now() - start_time() >= chrono::Duration::seconds(60),
        "waited a minute"
    );
}

// ------------------------------------------------------------------ webhooks

#[tokio::test]
async fn emulator_webhooks_verify_with_the_token_and_parse() {
    type Seen = Arc<Mutex<Vec<(String, String, Bytes)>>>;
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                if let Ok(mut s) = sink.lock() {
                    s.push((
                        h("x-kustomer-webhook-event"),
                        h("x-kustomer-webhook-signature"),
                        body,
                    ));
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let env = env_with(
        KustomerEmulatorConfig {
            webhook: Some(WebhookTarget {
                url: format!("http://{addr}/hook"),
                token: "wh-secret".into(),
            }),
            ..Default::default()
        },
        fast_retry(),
    )
    .await;
    let (_, conv) = customer_and_conversation(&env, "+14155550170", "t1/s9/0").await;
    env.client
        .set_conversation_status(&conv.id, "done")
        .await
        .expect("update");
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().map(|s| s.len()).unwrap_or(0) < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let names: Vec<&str> = got.iter().map(|(e, _, _)| e.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "kustomer.customer.create",
            "kustomer.conversation.create",
            "kustomer.conversation.update"
        ]
    );
    let token = SecretString::from("wh-secret");
    for (event, sig, body) in &got {
        verify_webhook_signature(&token, body, Some(sig)).expect("signature verifies");
        let parsed = parse_webhook_event(body).expect("event parses");
        assert_eq!(&parsed.name, event);
    }
    let update = parse_webhook_event(&got[2].2).expect("parses");
    let status = &update.changes.expect("update has changes").attributes["status"];
    assert_eq!(
        (&status.before, &status.after),
        (&json!("open"), &json!("done"))
    );
    assert!(
        verify_webhook_signature(&SecretString::from("wrong"), &got[0].2, Some(&got[0].1)).is_err()
    );
}

// ------------------------------------------------------------------- samples

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/samples/kustomer")
}

fn sample(name: &str) -> Value {
    let raw = std::fs::read(samples_dir().join(name))
        .unwrap_or_else(|e| panic!("read sample {name}: {e}"));
    serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("sample {name} is JSON: {e}"))
}

#[test]
fn every_sample_parses_with_the_client_types() {
    let mut entries: Vec<String> = std::fs::read_dir(samples_dir())
        .expect("samples directory next to the repository")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".json"))
        .collect();
    entries.sort();
    assert!(
        !entries.is_empty(),
        "no samples found in {:?}",
        samples_dir()
    );
    for name in entries {
        let v = sample(&name);
        let raw = serde_json::to_vec(&v).expect("re-encode");
        let parsed: Result<(), String> = match name.as_str() {
            "conversation-get.json" => serde_json::from_value::<Document<Conversation>>(v)
                .map(|d| {
                    assert_eq!(
                        d.data.attributes.external_queue.as_deref(),
                        Some("amazon-connect")
                    )
                })
                .map_err(|e| e.to_string()),
            "message-create-response.json" => serde_json::from_value::<Document<Message>>(v)
                .map(|d| {
                    assert_eq!(
                        d.data.related_id("customer"),
                        Some("5ff4bc441235167ec0261101")
                    )
                })
                .map_err(|e| e.to_string()),
            "note-create-response.json" => serde_json::from_value::<Document<Note>>(v)
                .map(|d| assert!(d.data.attributes.body.is_some()))
                .map_err(|e| e.to_string()),
            "routing-work-item-get.json" => serde_json::from_value::<Document<WorkItem>>(v)
                .map(|d| assert_eq!(d.data.attributes.status.as_deref(), Some("assigned")))
                .map_err(|e| e.to_string()),
            "routing-queue-work-items-list.json" => {
                serde_json::from_value::<ListDocument<WorkItem>>(v)
                    .map(|d| {
                        assert_eq!(d.data.len(), 2);
                        assert!(
                            d.links.and_then(|l| l.next).is_none(),
                            "last page has next: null"
                        );
                    })
                    .map_err(|e| e.to_string())
            }
            "conversations-bulk-update-response.json" => {
                serde_json::from_value::<Document<BulkJob>>(v)
                    .map(|d| assert_eq!(d.data.attributes.status.as_deref(), Some("running")))
                    .map_err(|e| e.to_string())
            }
            "conversations-bulk-update-request.json" => {
                serde_json::from_value::<ConversationUpdateSample>(v)
                    .map(|s| assert_eq!(serde_json::to_value(QueueRef::Clear).ok(), Some(s.queue)))
                    .map_err(|e| e.to_string())
            }
            "message-create-request.json" | "note-create-request.json" => Ok(()),
            "note-create-response.headers.json" => Ok(()),
            n if n.starts_with("webhook-") || n.starts_with("event-") => parse_webhook_event(&raw)
                .map_err(|e| e.to_string())
                .and_then(|ev| {
                    let kind = ev.data.kind.clone();
                    let typed = match kind.as_str() {
                        "conversation" => ev.object::<ConversationAttributes>().map(|_| ()),
                        "customer" => ev.object::<CustomerAttributes>().map(|_| ()),
                        "message" => ev.object::<MessageAttributes>().map(|_| ()),
                        other => panic!("{n}: no type for {other}"),
                    };
                    assert!(ev.name.starts_with("kustomer."), "{n}: {}", ev.name);
                    typed.map_err(|e| e.to_string())
                }),
            other => panic!("sample {other} has no mapping to a client type; add one"),
        };
        if let Err(e) = parsed {
            panic!("sample {name} does not parse: {e}");
        }
    }
    let msg: Document<Message> =
        serde_json::from_value(json!({ "data": sample("webhook-message-create.json")["data"] }))
            .expect("message");
    assert_eq!(
        msg.data.attributes.error.and_then(|e| e.code).as_deref(),
        Some("invalid-recipient")
    );
}

#[derive(serde::Deserialize)]
struct ConversationUpdateSample {
    queue: Value,
}

// ------------------------------------------- emulator shapes vs the samples

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every field the sample has exists in `actual` with the same JSON type
/// (`null` on either side matches anything: the field is nullable).
fn same_shape(sample: &Value, actual: &Value, path: &str, ignore: &[&str], errs: &mut Vec<String>) {
    if ignore.contains(&path) || sample.is_null() || actual.is_null() {
        return;
    }
    if kind(sample) != kind(actual) {
        errs.push(format!(
            "{path}: sample {} vs emulator {}",
            kind(sample),
            kind(actual)
        ));
        return;
    }
    match (sample, actual) {
        (Value::Object(s), Value::Object(a)) => {
            for (k, sv) in s {
                let p = format!("{path}.{k}");
                match a.get(k) {
                    None if !ignore.contains(&p.as_str()) => errs.push(format!("{p}: missing")),
                    None => {}
                    Some(av) => same_shape(sv, av, &p, ignore, errs),
                }
            }
        }
        (Value::Array(s), Value::Array(a)) => {
            if let (Some(sv), Some(av)) = (s.first(), a.first()) {
                same_shape(sv, av, &format!("{path}[]"), ignore, errs);
            }
        }
        _ => {}
    }
}

fn assert_shape(name: &str, sample: &Value, actual: &Value, ignore: &[&str]) {
    let mut errs = Vec::new();
    same_shape(sample, actual, "", ignore, &mut errs);
    assert!(
        errs.is_empty(),
        "{name}: emulator differs from the sample:\n{}\nemulator: {actual:#}",
        errs.join("\n")
    );
}

async fn raw(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let http = reqwest::Client::new();
    let mut req = http
        .request(method, format!("{}{path}", env.emu.base_url()))
        .bearer_auth(env.emu.api_key());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("emulator answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, v)
}

#[tokio::test]
async fn emulator_objects_have_the_fields_and_types_of_the_samples() {
    let env = env().await;
    let customer = env
        .client
        .create_customer(&phone_customer("+14155550180"))
        .await
        .expect("customer");

    // POST /v1/messages without a conversation, as the sample request did.
    let mut req = sample("message-create-request.json");
    req["customer"] = json!(customer.id);
    let (status, _, created) = raw(&env, reqwest::Method::POST, "/v1/messages", Some(req)).await;
    assert_eq!(status, 201, "{created}");
    assert_shape(
        "message-create-response",
        &sample("message-create-response.json"),
        &created,
        &[],
    );

    let conv_id = created["data"]["relationships"]["conversation"]["data"]["id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let (status, _, conv) = raw(
        &env,
        reqwest::Method::GET,
        &format!("/v1/conversations/{conv_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_shape(
        "conversation-get",
        &sample("conversation-get.json"),
        &conv,
        &[],
    );
    assert_eq!(
        conv["data"]["attributes"]["externalQueue"],
        json!("amazon-connect")
    );

    let (status, headers, note) = raw(
        &env,
        reqwest::Method::POST,
        &format!("/v1/conversations/{conv_id}/notes"),
        Some(sample("note-create-request.json")),
    )
    .await;
    assert_eq!(status, 201);
    assert_shape(
        "note-create-response",
        &sample("note-create-response.json"),
        &note,
        &[],
    );
    let note_attrs: Vec<&String> = note["data"]["attributes"]
        .as_object()
        .expect("attributes")
        .keys()
        .collect();
    assert_eq!(
        note_attrs,
        vec!["body", "createdAt", "updatedAt"],
        "sparse like the sample"
    );
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "date",
        "content-type",
    ] {
        assert!(headers.contains_key(h), "missing header {h}: {headers:?}");
    }

    // Webhook bodies: customer update, conversation create/update, message create.
    env.emu.advance(Duration::from_secs(5));
    let patch = json!({
        "name": "Updated Name", "externalId": "123",
        "externalIds": [{"externalId": "123", "verified": true}],
        "sharedExternalIds": [{"externalId": "123"}],
        "avatarUrl": "https://avatarUrl.com", "username": "username",
        "emails": [{"type": "home", "email": "email@email.com"}],
        "sharedEmails": [{"type": "home", "email": "email@email.com"}],
        "sharedPhones": [{"type": "mobile", "phone": "+1234567890"}],
        "whatsapps": [{"type": "mobile", "phone": "whatsapp:+1234567890"}],
        "urls": [{"type": "website", "url": "https://url.com"}],
        "locale": null, "birthdayAt": "2001-12-12T12:12:12.000Z", "gender": "f",
        "tags": ["67dd47dfbc632c1804db1bf1"], "sentiment": {"polarity": -1, "confidence": -1},
        "defaultLang": "af", "companyName": "company name", "company": "67dd47dfbc632c1804db1bf1",
    });
    let (status, _, _) = raw(
        &env,
        reqwest::Method::PATCH,
        &format!("/v1/customers/{}", customer.id),
        Some(patch),
    )
    .await;
    assert_eq!(status, 200);
    let conv2 = json!({"customer": customer.id, "name": "Name", "externalId": "123", "priority": 5,
        "defaultLang": "en_us", "locale": "US", "tags": ["67dd47dfbc632c1804db1bf1"],
        "assignedUsers": ["67dd47dfbc632c1804db1bf1"], "assignedTeams": ["67dd47dfbc632c1804db1bf1"],
        "queue": {"id": "67dd47dfbc632c1804db1bf1"}});
    let (status, _, c2) = raw(
        &env,
        reqwest::Method::POST,
        "/v1/conversations",
        Some(conv2),
    )
    .await;
    assert_eq!(status, 201, "{c2}");
    let c2_id = c2["data"]["id"].as_str().expect("id").to_string();
    env.emu.advance(Duration::from_secs(5));
    let (status, _, _) = raw(
        &env,
        reqwest::Method::PATCH,
        &format!("/v1/conversations/{c2_id}"),
        Some(json!({"name": "Update Name", "externalId": "321"})),
    )
    .await;
    assert_eq!(status, 200);
    let out = json!({"channel": "email", "app": "postmark", "direction": "out", "preview": "message...",
        "meta": {"from": "support@subdomain.mail.kustomerapp.com", "to": [{"email": "moishe@example.com"}]},
        "status": "error", "errorAt": "2025-03-21T20:13:07.702Z",
        "error": {"status": 400, "code": "invalid-recipient", "title": "inactive", "meta": {"appErrorCode": 406}}});
    let (status, _, m) = raw(
        &env,
        reqwest::Method::POST,
        &format!("/v1/conversations/{c2_id}/messages"),
        Some(out),
    )
    .await;
    assert_eq!(status, 201, "{m}");

    let deliveries = {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let d = env.emu.webhook_deliveries();
            if d.iter().any(|d| {
                d.event == "kustomer.message.create" && d.body["data"]["id"] == m["data"]["id"]
            }) || Instant::now() > deadline
            {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let find = |event: &str, id: &Value| {
        deliveries
            .iter()
            .rev()
            .find(|d| d.event == event && &d.body["data"]["id"] == id)
            .map(|d| d.body.clone())
            .unwrap_or_else(|| panic!("no {event} for {id}"))
    };
    let cust_id = json!(customer.id);
    let c2_id = json!(c2_id);
    assert_shape(
        "webhook-customer-create",
        &sample("webhook-customer-create.json"),
        &find("kustomer.customer.create", &cust_id),
        &[],
    );
    let update = deliveries
        .iter()
        .find(|d| d.event == "kustomer.customer.update" && d.body["data"]["id"] == cust_id)
        .map(|d| d.body.clone())
        .expect("customer update event");
    assert_shape(
        "webhook-customer-update",
        &sample("webhook-customer-update.json"),
        &update,
        &[],
    );
    let conv_create = sample("webhook-conversation-create.json")["data"].clone();
    assert_shape(
        "webhook-conversation-create",
        &conv_create,
        &find("kustomer.conversation.create", &c2_id),
        &[".data.relationships.brand"],
    );
    let conv_update = deliveries
        .iter()
        .find(|d| d.event == "kustomer.conversation.update" && d.body["data"]["id"] == c2_id)
        .map(|d| d.body.clone())
        .expect("conversation update event");
    assert_shape(
        "webhook-conversation-update",
        &sample("webhook-conversation-update.json"),
        &conv_update,
        &[".data.relationships.brand"],
    );
    assert_shape(
        "webhook-message-create",
        &sample("webhook-message-create.json"),
        &find("kustomer.message.create", &m["data"]["id"]),
        &[],
    );
}

// --------------------------------------------------- emulator API checklist

#[tokio::test]
async fn emulator_follows_the_reference_checklist() {
    let env = env().await;
    let http = reqwest::Client::new();
    let base = env.emu.base_url();

    // 401 with errors[] without a valid token.
    let resp = http
        .get(format!("{base}/v1/customers"))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert!(body["errors"][0]["title"].is_string(), "{body}");

    // Lists: meta and relative links, next null on the last page.
    for i in 0..3 {
        env.client
            .create_customer(&phone_customer(&format!("+1415555030{i}")))
            .await
            .expect("customer");
    }
    let (status, _, page1) = raw(
        &env,
        reqwest::Method::GET,
        "/v1/customers?page=1&pageSize=2",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        page1["meta"],
        json!({"pageSize": 2, "page": 1, "total": 3, "totalPages": 2})
    );
    assert_eq!(
        page1["links"]["next"],
        json!("/v1/customers?page=2&pageSize=2")
    );
    assert_eq!(page1["links"]["prev"], Value::Null);
    let (_, _, page2) = raw(
        &env,
        reqwest::Method::GET,
        "/v1/customers?page=2&pageSize=2",
        None,
    )
    .await;
    assert_eq!(page2["links"]["next"], Value::Null);
    assert_eq!(page2["data"].as_array().map(Vec::len), Some(1));

    // 24-hex ids and relative self links.
    let c = &page1["data"][0];
    let id = c["id"].as_str().expect("id");
    assert!(
        id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(c["links"]["self"], json!(format!("/v1/customers/{id}")));

    // Duplicate phone → 409; duplicate caller id → 409; bad status → 400.
    let (status, _, dup) = raw(
        &env,
        reqwest::Method::POST,
        "/v1/customers",
        Some(json!({"phones": [{"phone": "+14155550300"}]})),
    )
    .await;
    assert_eq!(status, 409, "{dup}");
    let conv = json!({"id": derive_id(T0, "dup"), "customer": id});
    let (status, _, _) = raw(
        &env,
        reqwest::Method::POST,
        "/v1/conversations",
        Some(conv.clone()),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _, _) = raw(&env, reqwest::Method::POST, "/v1/conversations", Some(conv)).await;
    assert_eq!(status, 409);
    let (status, _, _) = raw(
        &env,
        reqwest::Method::POST,
        "/v1/conversations",
        Some(json!({"customer": id, "status": "snoozed"})),
    )
    .await;
    assert_eq!(status, 400, "snoozed is not a create status");

    // Malformed JSON → the older {code, message} shape; > 100 kb → 413.
    let resp = http
        .post(format!("{base}/v1/customers"))
        .bearer_auth(env.emu.api_key())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], json!("bad_request"));
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    let big = json!({"name": "x".repeat(101 * 1024)});
    let (status, _, _) = raw(&env, reqwest::Method::POST, "/v1/customers", Some(big)).await;
    assert_eq!(status, 413);

    // 404 body and rate headers as strings on every response.
    let (status, headers, nf) = raw(
        &env,
        reqwest::Method::GET,
        "/v1/customers/phone=%2B19999999999",
        None,
    )
    .await;
    assert_eq!(status, 404, "{nf}");
    let remaining = headers["x-ratelimit-remaining"].to_str().expect("ascii");
    assert!(remaining.parse::<u32>().is_ok(), "{remaining}");

    // Message updates bump rev and raise kustomer.message.update.
    let conv_id = derive_id(T0, "dup");
    let msg = env
        .client
        .create_message(
            id,
            &conv_id,
            &voice_message(&derive_id(T0, "checklist/m"), "in"),
        )
        .await
        .expect("message");
    let (status, _, updated) = raw(
        &env,
        reqwest::Method::PATCH,
        &format!("/v1/messages/{}", msg.id),
        Some(json!({"meta": {"recordingUrl": "https://example.com/r.mp3"}})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["attributes"]["rev"], json!(2));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !env
        .emu
        .webhook_deliveries()
        .iter()
        .any(|d| d.event == "kustomer.message.update")
    {
        assert!(
            Instant::now() < deadline,
            "no kustomer.message.update event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Control surface over HTTP.
    let resp = http
        .post(format!("{base}/__control/faults"))
        .json(&json!({"kind": "server_error", "status": 502, "count": 1}))
        .send()
        .await
        .expect("control");
    assert_eq!(resp.status(), 201);
    let (status, _, _) = raw(&env, reqwest::Method::GET, "/v1/routing/statuses", None).await;
    assert_eq!(status, 502);
    let clock: Value = http
        .post(format!("{base}/__control/clock"))
        .json(&json!({"advanceMs": 60_000}))
        .send()
        .await
        .expect("control")
        .json()
        .await
        .expect("json");
    assert_eq!(clock["now"], json!("2025-03-21T20:01:00.000Z"));
    let resp = http
        .post(format!("{base}/__control/reset"))
        .send()
        .await
        .expect("control");
    assert_eq!(resp.status(), 204);
    assert!(env.emu.customers().is_empty(), "reset clears data");
}
