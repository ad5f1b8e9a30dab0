//! CCAI Platform connector, intake and emulator, end to end on loopback.

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use switchboard::connectors::ccai::{
    ApiCredentials, CallPlaced, CallRejection, CcaiClient, CcaiConfig, CcaiError, InboundBasic,
    OutboundCall, WebhookSecrets,
};
use switchboard::intake::log::{IntakeLog, Mover};
use switchboard::intake::{
    self, IntakeConfig, IntakeState, Poller, SessionEventBatch, TenantIntake,
};
use switchboard::runtime::types::{EventKind, SessionEvent, SessionKind};
use switchboard::store::Store;
use switchboard_emulators::ccai::{self as emu, CcaiEmulator, Fault, PlayTarget};

const TENANT: &str = "acme";
const USER: &str = "ccai";
const PASSWORD: &str = "events-password";
const PRIMARY: &str = "primary-secret";
const SECONDARY: &str = "secondary-secret";

fn tenant_intake() -> TenantIntake {
    TenantIntake {
        session_events: InboundBasic {
            username: USER.into(),
            password: PASSWORD.into(),
        },
        webhooks: WebhookSecrets {
            primary: PRIMARY.into(),
            secondary: Some(SECONDARY.into()),
        },
        phone_region: Default::default(),
    }
}

/// A running intake on loopback with its store.
struct Sidecar {
    url: String,
    store: Store,
    _task: tokio::task::JoinHandle<()>,
}

fn intake_state(store: &Store, config: IntakeConfig) -> IntakeState {
    IntakeState::new(
        store.clone(),
        HashMap::from([(TENANT.to_string(), tenant_intake())]),
        config,
    )
}

async fn sidecar_with(store: Store, config: IntakeConfig) -> Sidecar {
    serve(store.clone(), intake_state(&store, config)).await
}

async fn serve(store: Store, state: IntakeState) -> Sidecar {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        axum::serve(listener, intake::router(state).split_for_parts().0)
            .await
            .expect("serve");
    });
    Sidecar {
        url,
        store,
        _task: task,
    }
}

async fn sidecar() -> Sidecar {
    sidecar_with(Store::in_memory().expect("store"), IntakeConfig::default()).await
}

fn target(url: &str) -> PlayTarget {
    PlayTarget {
        base_url: url.into(),
        tenant: TENANT.into(),
        username: USER.into(),
        password: PASSWORD.into(),
        webhook_primary_secret: PRIMARY.into(),
        webhook_secondary_secret: Some(SECONDARY.into()),
    }
}

fn events(store: &Store) -> Vec<SessionEvent> {
    store
        .events(TENANT)
        .expect("events")
        .into_iter()
        .map(|row| serde_json::from_str(row.body.get()).expect("stored body is a SessionEvent"))
        .collect()
}

async fn post_events(
    url: &str,
    tenant: &str,
    auth: Option<(&str, &str)>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/v1/tenants/{tenant}/ccai/session-events"))
        .header("content-type", "application/json")
        .body(body);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn scenario(name: &str) -> emu::Scenario {
    emu::scenario_named(name).unwrap_or_else(|| panic!("scenario {name} exists"))
}

fn first_batch(name: &str) -> Vec<u8> {
    let s = scenario(name);
    let batch = s
        .steps
        .iter()
        .find_map(|step| match step {
            emu::Step::SessionEvents { batch, .. } => Some(batch.clone()),
            _ => None,
        })
        .expect("a session-events batch");
    serde_json::to_vec(&batch).expect("json")
}

// ------------------------------------------------------------ session events

#[tokio::test]
async fn session_events_with_the_tenants_basic_credentials_are_stored_before_2xx() {
    let car = sidecar().await;
    let (status, body) = post_events(
        &car.url,
        TENANT,
        Some((USER, PASSWORD)),
        first_batch("tc1_inbound_ivr_call"),
    )
    .await;
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(body["accepted"], 2, "body: {body}");
    let stored = events(&car.store);
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].session.id, "call-1001");
    assert_eq!(
        stored[0].session.end_user.phone.as_deref(),
        Some("+14155550101")
    );
    assert_eq!(stored[0].session.kind, SessionKind::IvrCall);
}

// ------------------------------------------------------------ the intake log

/// A sidecar whose session events go through the intake log in `dir`
/// (PF6), and the log's mover, run by the test.
async fn logged_sidecar(store: &Store, dir: &std::path::Path, limit: u64) -> (Sidecar, Mover) {
    let log = IntakeLog::open(dir, limit).expect("open the log");
    let state = intake_state(store, IntakeConfig::default());
    let mover = Mover::new(log.clone(), state.clone()).expect("mover");
    (serve(store.clone(), state.with_log(log)).await, mover)
}

fn merge(mover: &mut Mover) -> usize {
    mover.pass(&|_| Ok(())).expect("a pass").merged
}

fn event_ids(store: &Store) -> Vec<String> {
    let mut ids: Vec<_> = events(store).into_iter().map(|e| e.id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn pf6_logged_session_events_are_answered_then_merged_as_the_direct_intake_stores_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::in_memory().expect("store");
    let (car, mut mover) = logged_sidecar(&store, dir.path(), 1 << 20).await;
    let direct = sidecar().await;
    for name in ["tc1_inbound_ivr_call", "tc2_ivr_call_answered"] {
        let batch = first_batch(name);
        let (status, body) =
            post_events(&car.url, TENANT, Some((USER, PASSWORD)), batch.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["logged"], body["received"], "{body}");
        let (status, _) = post_events(&direct.url, TENANT, Some((USER, PASSWORD)), batch).await;
        assert_eq!(status, 200);
    }
    assert!(events(&store).is_empty(), "merged only by the mover");
    assert_eq!(merge(&mut mover), 2);
    assert_eq!(event_ids(&store), event_ids(&direct.store));
    assert!(!event_ids(&store).is_empty());
    assert_eq!(merge(&mut mover), 0, "nothing new");
    // Bad input is refused before anything is logged.
    let (status, body) = post_events(
        &car.url,
        TENANT,
        Some((USER, PASSWORD)),
        b"{\"events\": 3}".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = post_events(
        &car.url,
        TENANT,
        Some((USER, "wrong")),
        first_batch("tc1_inbound_ivr_call"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(merge(&mut mover), 0);
}

/// The mover merges a body from the updates the handler read, handed over in
/// memory; what it stores is what the same body read back from the file
/// stores (the path after a restart).
#[tokio::test]
async fn pf6_a_body_merged_from_what_the_handler_read_stores_what_its_bytes_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::in_memory().expect("store");
    let (car, mut mover) = logged_sidecar(&store, dir.path(), 1 << 20).await;
    for name in [
        "tc1_inbound_ivr_call",
        "tc2_ivr_call_answered",
        "tc3_outbound_call",
    ] {
        let (status, body) =
            post_events(&car.url, TENANT, Some((USER, PASSWORD)), first_batch(name)).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(mover.log().handed(), 3, "each body handed over parsed");
    // The same records, read from a copy of the files by another process.
    let copy = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(dir.path()).expect("log dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, copy.path().join(path.file_name().expect("name"))).expect("copy");
    }
    let from_bytes = Store::in_memory().expect("store");
    let log = IntakeLog::open(copy.path(), 1 << 20).expect("open the copy");
    let mut reader =
        Mover::new(log, intake_state(&from_bytes, IntakeConfig::default())).expect("mover");
    assert_eq!(reader.log().handed(), 0);
    assert_eq!(merge(&mut mover), 3);
    assert_eq!(mover.log().handed(), 0, "taken as merged");
    assert_eq!(merge(&mut reader), 3);
    let stored = events(&store);
    assert!(!stored.is_empty());
    assert_eq!(
        serde_json::to_value(&stored).expect("json"),
        serde_json::to_value(events(&from_bytes)).expect("json")
    );
    for session in stored.iter().map(|e| &e.session.id) {
        let state = store.session_state(TENANT, session).expect("state");
        assert!(state.is_some(), "{session}");
        assert_eq!(
            state,
            from_bytes.session_state(TENANT, session).expect("state"),
            "{session}"
        );
    }
}

#[tokio::test]
async fn pf6_a_manager_api_poll_never_overtakes_bodies_the_log_acknowledged_before_it() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::in_memory().expect("store");
    let (car, mut mover) = logged_sidecar(&store, dir.path(), 1 << 20).await;
    // A short call, then the agent calls back: the webhooks are acknowledged
    // once logged, then both final records are published to the API.
    emu.play(&scenario("tu6_short_call_callback"), &target(&car.url))
        .await
        .expect("play");
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("t");
    let poller = Poller::new(TENANT, client_for(&emu, "token"), store.clone(), start)
        .with_intake_log(mover.log().clone(), Duration::from_millis(300));

    // The mover has not merged the webhooks yet: the poll is put off and
    // reads nothing, so the final records cannot be merged first.
    let put_off = poller.poll_once().await.expect_err("put off");
    assert!(
        matches!(put_off, intake::PollError::IntakeLogBehind { .. }),
        "{put_off}"
    );
    assert!(events(&store).is_empty(), "{:#?}", events(&store));
    assert_eq!(poller.cursor("manager-calls").expect("cursor"), None);

    // Merged, the poll goes ahead, after the webhooks: the call-back's first
    // event is the one its webhook named (TU6), not one read off its record.
    assert!(merge(&mut mover) > 0);
    let report = poller.poll_once().await.expect("poll");
    assert!(report.records > 0, "{report:?}");
    let callback: Vec<SessionEvent> = events(&store)
        .into_iter()
        .filter(|e| e.session.id == "call-1015")
        .collect();
    assert_eq!(
        callback.first().map(|e| &e.kind),
        Some(&EventKind::ShortCallCallback),
        "{callback:#?}"
    );
}

#[tokio::test]
async fn pf6_after_a_crash_each_logged_body_is_merged_once_and_a_torn_end_is_skipped() {
    let bodies = [
        first_batch("tc1_inbound_ivr_call"),
        first_batch("tc2_ivr_call_answered"),
        first_batch("tc3_outbound_call"),
    ];
    let log_of = |dir: &std::path::Path, bodies: &[Vec<u8>]| {
        let log = IntakeLog::open(dir, 1 << 30).expect("open");
        for body in bodies {
            log.append(TENANT, body).expect("append");
        }
        log
    };
    // What bodies one and two give, merged on their own.
    let expected = {
        let (other, dir) = (
            Store::in_memory().expect("store"),
            tempfile::tempdir().expect("tempdir"),
        );
        let log = log_of(dir.path(), &bodies[..2]);
        let mut mover =
            Mover::new(log, intake_state(&other, IntakeConfig::default())).expect("mover");
        assert_eq!(merge(&mut mover), 2);
        event_ids(&other)
    };
    assert!(!expected.is_empty());

    // A first run logs body one and merges it, then logs two and three;
    // the process dies while the third record is half written.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::in_memory().expect("store");
    let state = intake_state(&store, IntakeConfig::default());
    let log = log_of(dir.path(), &bodies[..1]);
    let mut mover = Mover::new(log.clone(), state.clone()).expect("mover");
    assert_eq!(merge(&mut mover), 1);
    log.append(TENANT, &bodies[1]).expect("append");
    log.append(TENANT, &bodies[2]).expect("append");
    drop((log, mover));
    let segment = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .max()
        .expect("a segment");
    let len = std::fs::metadata(&segment).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open")
        .set_len(len - 40)
        .expect("tear the last record");

    // The next start merges from the saved position: body two, not body one
    // again; the torn third is skipped and its segment deleted.
    let log = IntakeLog::open(dir.path(), 1 << 30).expect("reopen");
    let mut mover = Mover::new(log, state.clone()).expect("mover");
    assert!(
        mover.position().offset > 0,
        "the position was saved with the merge"
    );
    let pass = mover.pass(&|_| Ok(())).expect("a pass");
    assert_eq!((pass.merged, pass.dropped > 0), (1, true), "{pass:?}");
    assert_eq!(event_ids(&store), expected, "bodies one and two, once each");
    let left = std::fs::read_dir(dir.path()).expect("list").count();
    assert_eq!(left, 1, "only the live segment is left");

    // Merging both again (a position lost) changes nothing: the session
    // ledger derives each transition once.
    store
        .set_cursor(TENANT, switchboard::intake::log::CURSOR, "0:0")
        .expect("forget the position");
    let replay = tempfile::tempdir().expect("tempdir");
    let mut again = Mover::new(log_of(replay.path(), &bodies[..2]), state).expect("mover");
    assert_eq!(merge(&mut again), 2);
    assert_eq!(event_ids(&store), expected);
}

#[tokio::test]
async fn pf6_a_backlog_longer_than_one_read_and_a_record_larger_than_one_merge_whole() {
    let body = first_batch("tc1_inbound_ivr_call");
    let expected = {
        let (other, dir) = (
            Store::in_memory().expect("store"),
            tempfile::tempdir().expect("tempdir"),
        );
        let log = IntakeLog::open(dir.path(), 1 << 30).expect("open");
        log.append(TENANT, &body).expect("append");
        let mut mover =
            Mover::new(log, intake_state(&other, IntakeConfig::default())).expect("mover");
        assert_eq!(merge(&mut mover), 1);
        event_ids(&other)
    };
    // A 3 MiB record (for a tenant no longer configured: skipped), then
    // more than a read's worth of small ones.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::in_memory().expect("store");
    let log = IntakeLog::open(dir.path(), 1 << 30).expect("open");
    log.append("gone", &vec![b' '; 3 << 20]).expect("append");
    let copies = (3 << 19) / body.len() + 1;
    for _ in 0..copies {
        log.append(TENANT, &body).expect("append");
    }
    let mut mover =
        Mover::new(log.clone(), intake_state(&store, IntakeConfig::default())).expect("mover");
    let mut merged = 0;
    loop {
        match merge(&mut mover) {
            0 => break,
            n => merged += n,
        }
    }
    assert_eq!(merged, copies + 1, "every record, once");
    assert_eq!(event_ids(&store), expected);
    assert_eq!(log.unmoved(), 0, "the position is at the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pf6_a_log_turned_off_is_drained_then_its_mover_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::in_memory().expect("store");
    let log = IntakeLog::open(dir.path(), 1 << 30).expect("open");
    for name in ["tc1_inbound_ivr_call", "tc2_ivr_call_answered"] {
        log.append(TENANT, &first_batch(name)).expect("append");
    }
    let mover = Mover::new(log, intake_state(&store, IntakeConfig::default())).expect("mover");
    let runtime = tokio::runtime::Handle::current();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let drained = tokio::task::spawn_blocking(move || mover.run(&stop, &runtime, true));
    tokio::time::timeout(std::time::Duration::from_secs(30), drained)
        .await
        .expect("the mover stops once the log is merged")
        .expect("the mover");
    assert!(!events(&store).is_empty(), "both bodies merged first");
}

/// The transcript a chat's events carry, if any.
fn transcript_of(store: &Store) -> Option<String> {
    events(store).into_iter().find_map(|e| match e.kind {
        EventKind::TranscriptReady(f) => match f.source {
            switchboard::runtime::types::FileSource::Inline(text) => Some(text),
            _ => None,
        },
        _ => None,
    })
}

#[tokio::test]
async fn pf6_chat_webhooks_through_the_intake_log_store_what_the_direct_intake_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::in_memory().expect("store");
    let (car, mut mover) = logged_sidecar(&store, dir.path(), 1 << 20).await;
    let direct = sidecar().await;
    for url in [&car.url, &direct.url] {
        emu::play(&scenario("ct1_chat_transcript"), &target(url))
            .await
            .expect("play");
    }
    assert!(events(&store).is_empty(), "merged only by the mover");
    assert!(
        merge(&mut mover) > 1,
        "the chat's webhooks went through the log"
    );
    assert_eq!(event_ids(&store), event_ids(&direct.store));
    let transcript = transcript_of(&store).expect("a transcript");
    assert_eq!(Some(transcript.clone()), transcript_of(&direct.store));
    assert!(
        transcript.contains("end_user: Hi, my order is late"),
        "{transcript}"
    );
}

#[tokio::test]
async fn pf6_a_log_past_its_bound_answers_503_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::in_memory().expect("store");
    let (car, mut mover) = logged_sidecar(&store, dir.path(), 100).await;
    let batch = first_batch("tc1_inbound_ivr_call");
    let (status, _) = post_events(&car.url, TENANT, Some((USER, PASSWORD)), batch.clone()).await;
    assert_eq!(status, 200);
    let (status, body) = post_events(&car.url, TENANT, Some((USER, PASSWORD)), batch.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("not yet merged")),
        "{body}"
    );
    assert_eq!(merge(&mut mover), 1);
    let (status, body) = post_events(&car.url, TENANT, Some((USER, PASSWORD)), batch).await;
    assert_eq!(status, 200, "room again once merged: {body}");
}

#[tokio::test]
async fn session_events_with_wrong_or_missing_credentials_get_401_and_store_nothing() {
    let car = sidecar().await;
    let batch = first_batch("tc1_inbound_ivr_call");
    for auth in [Some((USER, "wrong")), Some(("other", PASSWORD)), None] {
        let (status, body) = post_events(&car.url, TENANT, auth, batch.clone()).await;
        assert_eq!(status, 401, "auth {auth:?} gave {body}");
    }
    assert!(events(&car.store).is_empty());
}

#[tokio::test]
async fn session_events_for_an_unknown_tenant_get_404() {
    let car = sidecar().await;
    let (status, _) = post_events(
        &car.url,
        "nobody",
        Some((USER, PASSWORD)),
        first_batch("tc1_inbound_ivr_call"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(car.store.pending(None, 10).expect("pending").is_empty());
}

#[tokio::test]
async fn malformed_json_gets_400_and_oversized_body_413() {
    let car = sidecar_with(
        Store::in_memory().expect("store"),
        IntakeConfig {
            max_body_bytes: 4096,
            ..IntakeConfig::default()
        },
    )
    .await;
    let (status, body) = post_events(
        &car.url,
        TENANT,
        Some((USER, PASSWORD)),
        b"{\"count\":1,\"events\":[".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("malformed"),
        "{body}"
    );
    let (status, _) = post_events(
        &car.url,
        TENANT,
        Some((USER, PASSWORD)),
        br#"{"count":1,"events":[{"event_id":"x"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400, "an event without timestamp/item is malformed");
    let big = vec![b' '; 10_000];
    let (status, _) = post_events(&car.url, TENANT, Some((USER, PASSWORD)), big).await;
    assert_eq!(status, 413);
    assert!(events(&car.store).is_empty());
}

#[tokio::test]
async fn se3_a_redelivered_batch_derives_nothing_new() {
    let car = sidecar().await;
    let s = scenario("tc1_inbound_ivr_call");
    let batch = s
        .steps
        .iter()
        .filter_map(|st| match st {
            emu::Step::SessionEvents { batch, .. } => Some(batch.clone()),
            _ => None,
        })
        .nth(1)
        .expect("second batch carries a duplicate");
    let raw = serde_json::to_vec(&batch).expect("json");
    let (status, first) = post_events(&car.url, TENANT, Some((USER, PASSWORD)), raw.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(first["received"], 4, "5 updates, one repeated: {first}");
    assert_eq!(
        first["accepted"], 5,
        "the enriched items imply five transitions: {first}"
    );
    assert_eq!(
        first["duplicates"], 1,
        "the disposition update brings no transition: {first}"
    );
    let (status, second) = post_events(&car.url, TENANT, Some((USER, PASSWORD)), raw).await;
    assert_eq!(status, 200);
    assert_eq!(second["accepted"], 0, "{second}");
    assert_eq!(second["duplicates"], 4, "{second}");
    assert_eq!(events(&car.store).len(), 5);
}

#[tokio::test]
async fn out_of_order_updates_come_out_ordered_by_timestamp() {
    let car = sidecar().await;
    let s = scenario("tc1_inbound_ivr_call");
    emu::play(&s, &target(&car.url)).await.expect("play");
    let kinds: Vec<&'static str> = events(&car.store)
        .iter()
        .map(|e| match e.kind {
            EventKind::Created => "created",
            EventKind::Queued => "queued",
            EventKind::Assigned(_) => "assigned",
            EventKind::Connected(_) => "connected",
            EventKind::Ended => "ended",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["created", "queued", "assigned", "connected", "ended"]
    );
    let pending = car.store.pending(Some(TENANT), 100).expect("pending");
    assert!(
        pending.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
        "pending rows in event-time order"
    );
    let ended = events(&car.store).pop().expect("ended");
    assert_eq!(ended.id, "call-1001:ended");
    assert_eq!(ended.session.durations.call_seconds, Some(95));
    assert_eq!(
        ended
            .session
            .agent
            .as_ref()
            .and_then(|a| a.email.as_deref()),
        Some("ada@example.com")
    );
}

#[tokio::test]
async fn every_scenario_is_accepted_and_its_items_parse_as_the_documented_shape() {
    let car = sidecar().await;
    for s in emu::scenarios() {
        for envelope in s.session_events() {
            let parsed: intake::SessionEventEnvelope = serde_json::from_value(envelope.clone())
                .unwrap_or_else(|e| panic!("{}: {e}", s.name));
            // Every key the emulator sends is a key of the intake's item.
            let reparsed = serde_json::to_value(&parsed.item).expect("json");
            for key in envelope["item"].as_object().expect("item object").keys() {
                assert!(
                    reparsed.get(key).is_some(),
                    "{}: item key {key} unknown to the intake",
                    s.name
                );
            }
        }
        emu::play(&s, &target(&car.url))
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", s.name));
    }
    let all = events(&car.store);
    let has = |pred: &dyn Fn(&SessionEvent) -> bool| all.iter().any(pred);
    assert!(has(&|e| matches!(e.kind, EventKind::Abandoned)), "TC4");
    assert!(
        has(&|e| matches!(e.kind, EventKind::VoicemailLeft(_))),
        "TC5"
    );
    assert!(
        has(&|e| matches!(e.kind, EventKind::VoicemailUpdated(_))),
        "TU11"
    );
    assert!(
        has(&|e| matches!(e.kind, EventKind::RecordingReady(_))),
        "TU3"
    );
    assert!(has(&|e| matches!(e.kind, EventKind::Transferred(_))), "TU4");
    assert!(
        has(&|e| matches!(e.kind, EventKind::HangupAndCallback)),
        "TU5"
    );
    assert!(
        has(&|e| matches!(e.kind, EventKind::ShortCallCallback)),
        "TU6"
    );
    assert!(
        has(&|e| matches!(&e.kind, EventKind::SmartActionCompleted(r) if r.files.len() == 2)),
        "TU7"
    );
    assert!(
        has(&|e| matches!(&e.kind, EventKind::SmartActionFailed(f) if f.caused_by_customer)),
        "TU8"
    );
    assert!(
        has(&|e| matches!(&e.kind, EventKind::CustomData(d) if !d.is_empty())),
        "TU9"
    );
    assert!(
        has(&|e| matches!(&e.kind, EventKind::Rated(r) if r.score == 4)),
        "TU10"
    );
    assert!(
        has(&|e| matches!(e.kind, EventKind::TranscriptReady(_))),
        "CT1"
    );
    assert!(
        has(&|e| e.session.end_user.phone.as_deref() == Some("+442079460958")),
        "CC1/PN1"
    );
    assert!(
        has(&|e| e.session.end_user.phone.as_deref() == Some("+14155550122")),
        "PN1 national format"
    );
    assert!(
        has(&|e| e.session.end_user.sdk_identifier.as_deref() == Some("app-user-new-2002")),
        "CC2"
    );
    assert!(
        has(&|e| e.session.language.as_deref() == Some("fr-CA") && e.session.menu.is_some()),
        "SD1"
    );
    assert!(has(&|e| e.session.kind == SessionKind::OutboundCall), "TC3");
}

#[tokio::test]
async fn playing_a_scenario_twice_stores_nothing_new() {
    let car = sidecar().await;
    let s = scenario("tu4_transfer");
    emu::play(&s, &target(&car.url)).await.expect("first");
    let before = events(&car.store).len();
    emu::play(&s, &target(&car.url)).await.expect("second");
    assert_eq!(events(&car.store).len(), before);
}

// ------------------------------------------------------------- chat webhooks

async fn post_webhook(url: &str, headers: &[(&str, String)], body: &[u8]) -> u16 {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/v1/tenants/{TENANT}/ccai/chat-webhooks"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.expect("send").status().as_u16()
}

fn chat_created() -> Vec<u8> {
    let s = scenario("tc1_mobile_chat");
    serde_json::to_vec(&s.chat_webhooks()[0]).expect("json")
}

#[tokio::test]
async fn chat_webhook_signed_with_either_secret_is_accepted() {
    let car = sidecar().await;
    let body = chat_created();
    let ts = Utc::now().timestamp().to_string();
    let both = format!(
        "primary={} secondary={}",
        emu::sign_webhook(PRIMARY, &ts, &body),
        emu::sign_webhook(SECONDARY, &ts, &body)
    );
    assert_eq!(
        post_webhook(
            &car.url,
            &[("X-Signature", both), ("X-Signature-Timestamp", ts.clone())],
            &body
        )
        .await,
        200
    );
    // Rotation: only the secondary secret signed it, sent as `primary=`.
    let ts2 = (Utc::now().timestamp() + 1).to_string();
    let rotated = format!("primary={}", emu::sign_webhook(SECONDARY, &ts2, &body));
    assert_eq!(
        post_webhook(
            &car.url,
            &[("X-Signature", rotated), ("X-Signature-Timestamp", ts2)],
            &body
        )
        .await,
        200
    );
    let stored = events(&car.store);
    assert_eq!(stored.len(), 1, "the same chat_created twice is one event");
    assert_eq!(stored[0].id, "chat-2001:created");
    assert_eq!(stored[0].session.kind, SessionKind::MobileChat);
}

#[tokio::test]
async fn chat_webhook_with_a_wrong_signature_gets_401() {
    let car = sidecar().await;
    let body = chat_created();
    let ts = Utc::now().timestamp().to_string();
    let wrong = format!(
        "primary={}",
        emu::sign_webhook("not-the-secret", &ts, &body)
    );
    assert_eq!(
        post_webhook(
            &car.url,
            &[
                ("X-Signature", wrong),
                ("X-Signature-Timestamp", ts.clone())
            ],
            &body
        )
        .await,
        401
    );
    let tampered = format!("primary={}", emu::sign_webhook(PRIMARY, &ts, b"{}"));
    assert_eq!(
        post_webhook(
            &car.url,
            &[("X-Signature", tampered), ("X-Signature-Timestamp", ts)],
            &body
        )
        .await,
        401
    );
    assert!(events(&car.store).is_empty());
}

#[tokio::test]
async fn chat_webhook_without_signature_headers_gets_400() {
    let car = sidecar().await;
    let body = chat_created();
    let ts = Utc::now().timestamp().to_string();
    assert_eq!(post_webhook(&car.url, &[], &body).await, 400);
    assert_eq!(
        post_webhook(&car.url, &[("X-Signature-Timestamp", ts)], &body).await,
        400
    );
    assert_eq!(
        post_webhook(&car.url, &[("X-Signature", "primary=abc".into())], &body).await,
        400
    );
    assert!(events(&car.store).is_empty());
}

#[tokio::test]
async fn chat_webhook_with_a_stale_timestamp_gets_401() {
    let car = sidecar().await;
    let body = chat_created();
    let ts = (Utc::now() - ChronoDuration::minutes(6))
        .timestamp()
        .to_string();
    let sig = format!("primary={}", emu::sign_webhook(PRIMARY, &ts, &body));
    assert_eq!(
        post_webhook(
            &car.url,
            &[("X-Signature", sig), ("X-Signature-Timestamp", ts)],
            &body
        )
        .await,
        401
    );
    assert!(events(&car.store).is_empty());
}

#[tokio::test]
async fn a_replayed_chat_webhook_gets_409() {
    let car = sidecar().await;
    let body = chat_created();
    let ts = Utc::now().timestamp().to_string();
    let sig = format!("primary={}", emu::sign_webhook(PRIMARY, &ts, &body));
    let headers = [("X-Signature", sig), ("X-Signature-Timestamp", ts)];
    assert_eq!(post_webhook(&car.url, &headers, &body).await, 200);
    assert_eq!(post_webhook(&car.url, &headers, &body).await, 409);
}

/// IS9: replay protection keys on the signature that verified, not on how
/// the header spells it.
#[tokio::test]
async fn is9_a_replayed_webhook_signature_respelled_is_refused() {
    let car = sidecar().await;
    let body = chat_created();
    let ts = Utc::now().timestamp().to_string();
    let primary = emu::sign_webhook(PRIMARY, &ts, &body);
    let secondary = emu::sign_webhook(SECONDARY, &ts, &body);
    let send = |signature: String| {
        let headers = [
            ("X-Signature", signature),
            ("X-Signature-Timestamp", ts.clone()),
        ];
        let url = car.url.clone();
        let body = body.clone();
        async move { post_webhook(&url, &headers, &body).await }
    };
    assert_eq!(
        send(format!("primary={primary} secondary={secondary}")).await,
        200,
        "the first delivery"
    );
    for respelled in [
        format!("primary={primary}  secondary={secondary}"),
        format!(" primary={primary}\tsecondary={secondary} "),
        format!("secondary={secondary} primary={primary}"),
        format!("primary={primary}"),
        format!("primary={secondary}"),
        format!("secondary={secondary}"),
        format!("primary={primary} secondary=bm90LWEtc2lnbmF0dXJl"),
    ] {
        assert_eq!(
            send(respelled.clone()).await,
            409,
            "replay spelled {respelled:?} is refused"
        );
    }
    // A new timestamp is a new signature, accepted (and deduplicated by the
    // inbox, not refused as a replay).
    let ts2 = (Utc::now().timestamp() + 1).to_string();
    let fresh = format!("primary={}", emu::sign_webhook(PRIMARY, &ts2, &body));
    assert_eq!(
        post_webhook(
            &car.url,
            &[("X-Signature", fresh), ("X-Signature-Timestamp", ts2)],
            &body
        )
        .await,
        200
    );
    assert_eq!(events(&car.store).len(), 1, "one event stored");
}

#[tokio::test]
async fn ct1_chat_end_attaches_the_transcript_of_the_kept_messages() {
    let car = sidecar().await;
    emu::play(&scenario("ct1_chat_transcript"), &target(&car.url))
        .await
        .expect("play");
    let transcript = events(&car.store)
        .into_iter()
        .find_map(|e| match e.kind {
            EventKind::TranscriptReady(f) => Some(f),
            _ => None,
        })
        .expect("transcript event");
    let switchboard::runtime::types::FileSource::Inline(text) = transcript.source else {
        panic!("transcript is inline text")
    };
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("end_user: Hi, my order is late"), "{text}");
}

// ------------------------------------------------------- manager api poller

async fn emulator() -> CcaiEmulator {
    emu::start(emu::CcaiConfig {
        rate_limit: None,
        ..emu::CcaiConfig::default()
    })
    .await
    .expect("emulator")
}

fn client_for(emu: &CcaiEmulator, style: &str) -> CcaiClient {
    let creds = emu.credentials();
    let credentials = match style {
        "company" => ApiCredentials::CompanyKey {
            key: creds.company_key,
            secret: creds.company_secret.into(),
        },
        _ => ApiCredentials::ApiToken {
            subdomain: creds.subdomain,
            token: creds.api_token.into(),
        },
    };
    let mut config = CcaiConfig::new(
        url::Url::parse(&emu.base_url()).expect("url"),
        credentials,
        InboundBasic {
            username: USER.into(),
            password: PASSWORD.into(),
        },
        WebhookSecrets {
            primary: PRIMARY.into(),
            secondary: None,
        },
    );
    config.retry.base_delay = Duration::from_millis(5);
    config.requests_per_second = 1000;
    CcaiClient::new(config).expect("client")
}

#[tokio::test]
async fn poller_cursor_survives_a_restart_without_missing_or_repeating_a_record() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchboard.db");
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let rec = scenario("tu3_call_recording");
    emu.publish(&rec);
    emu.publish(&scenario("tu10_csat_rating"));
    let first_report = {
        let store = Store::open(&path).expect("open");
        let poller =
            Poller::new(TENANT, client_for(&emu, "token"), store.clone(), start).with_page_size(1);
        let report = poller.poll_once().await.expect("poll");
        let again = poller.poll_once().await.expect("poll again");
        assert_eq!(again.records, 0, "nothing new, nothing repeated: {again:?}");
        report
    };
    assert_eq!(first_report.records, 2, "{first_report:?}");
    assert!(
        first_report.pages >= 2,
        "page size 1 pages through the link header: {first_report:?}"
    );
    // While the sidecar is down: one record at exactly the cursor's time and one later.
    let store = Store::open(&path).expect("reopen");
    let cursor = Poller::new(TENANT, client_for(&emu, "token"), store.clone(), start)
        .cursor("manager-calls")
        .expect("cursor")
        .expect("stored");
    let mut same_time = emu
        .calls()
        .into_iter()
        .find(|c| c["id"] == 1019)
        .expect("csat call");
    same_time["id"] = json!(1090);
    same_time["updated_at"] = json!(cursor.updated_at);
    same_time["recording_url"] = json!("https://recordings.example.invalid/call-1090.mp3");
    same_time["status"] = json!("finished");
    emu.upsert_call(same_time);
    let mut later = emu
        .calls()
        .into_iter()
        .find(|c| c["id"] == 1010)
        .expect("recording call");
    later["id"] = json!(1091);
    later["updated_at"] = json!("2026-02-01T00:00:00.000Z");
    emu.upsert_call(later);
    let before = store.events(TENANT).expect("events").len();
    let poller = Poller::new(TENANT, client_for(&emu, "token"), store.clone(), start);
    let report = poller.poll_once().await.expect("poll after restart");
    assert_eq!(report.records, 2, "exactly the two new records: {report:?}");
    let stored = events(&store);
    assert!(stored.len() > before);
    for id in [
        "call-1090:recording-ready",
        "call-1091:recording-ready",
        "call-1010:recording-ready",
        "call-1019:rated",
    ] {
        assert_eq!(
            stored.iter().filter(|e| e.id == id).count(),
            1,
            "{id} stored once"
        );
    }
    let rated = stored
        .iter()
        .find(|e| e.id == "call-1019:rated")
        .expect("rated");
    assert!(
        matches!(&rated.kind, EventKind::Rated(r) if r.score == 4 && r.comment.as_deref() == Some("Quick and friendly"))
    );
    let ended = stored
        .iter()
        .find(|e| e.id == "call-1010:ended")
        .expect("ended");
    assert_eq!(ended.session.durations.call_seconds, Some(180));
}

#[tokio::test]
async fn poller_and_session_events_report_a_fact_once() {
    let emu = emulator().await;
    let car = sidecar().await;
    let s = scenario("tu3_call_recording");
    emu.play(&s, &target(&car.url)).await.expect("play");
    let poller = Poller::new(
        TENANT,
        client_for(&emu, "token"),
        car.store.clone(),
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("t"),
    );
    poller.poll_once().await.expect("poll");
    let stored = events(&car.store);
    assert_eq!(
        stored
            .iter()
            .filter(|e| matches!(e.kind, EventKind::RecordingReady(_)))
            .count(),
        1
    );
    assert_eq!(
        stored
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Ended))
            .count(),
        1
    );
    let ended = stored
        .iter()
        .find(|e| matches!(e.kind, EventKind::Ended))
        .expect("ended");
    assert_eq!(
        ended.session.end_user.phone.as_deref(),
        Some("+14155550110"),
        "phone from the session events"
    );
}

// ------------------------------------------------------------------- client

#[tokio::test]
async fn client_reads_agents_statuses_and_finds_an_agent_by_email_in_both_credential_styles() {
    let emu = emulator().await;
    for style in ["token", "company"] {
        let client = client_for(&emu, style);
        let statuses = client.user_statuses().await.expect("statuses");
        let in_call = statuses.iter().find(|s| s.id == -7).expect("In-call");
        assert_eq!(in_call.name, "In-call");
        assert_eq!(
            client
                .agent_id_by_email("ADA@example.com")
                .await
                .expect("ada"),
            21
        );
        let status = client
            .agent_status(12)
            .await
            .expect("status")
            .expect("has status");
        assert_eq!(status.name, "In-call");
        assert!(matches!(
            client.agent_by_email("nobody@example.com").await,
            Err(CcaiError::UnknownAgent { .. })
        ));
    }
    let auths: Vec<String> = emu.requests().into_iter().map(|r| r.auth).collect();
    assert!(
        auths.contains(&"api_token".to_string()) && auths.contains(&"company_key".to_string()),
        "{auths:?}"
    );
}

#[tokio::test]
async fn client_with_wrong_credentials_gets_unauthorized() {
    let emu = emulator().await;
    let mut config = client_for(&emu, "token").config().clone();
    config.credentials = ApiCredentials::ApiToken {
        subdomain: "acme".into(),
        token: "wrong".into(),
    };
    let client = CcaiClient::new(config).expect("client");
    assert!(matches!(
        client.user_statuses().await,
        Err(CcaiError::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn status_change_updates_the_agent_and_appends_an_activity_log() {
    let emu = emulator().await;
    let client = client_for(&emu, "token");
    let result = client.set_agent_status(21, "Break").await.expect("changed");
    assert_eq!(result.previous_status.as_deref(), Some("Available"));
    assert_eq!(result.current_status.as_deref(), Some("Break"));
    assert_eq!(emu.agent(21).expect("ada").status_id, -2);
    let logs = client.activity_logs(None, 1, 100).await.expect("logs");
    let last = logs.items.last().expect("a log entry");
    assert_eq!(last.agent_id, 21);
    assert_eq!(last.activity.as_deref(), Some("user_status_changed"));
    assert_eq!(last.status.as_ref().map(|s| s.name.as_str()), Some("Break"));
}

#[tokio::test]
async fn a_refused_system_status_change_is_a_typed_error_and_is_not_retried() {
    let emu = emulator().await;
    let client = client_for(&emu, "token");
    emu.clear_requests();
    match client.set_agent_status(12, "Available").await {
        Err(CcaiError::StatusRefused { agent_id, message }) => {
            assert_eq!(agent_id, 12);
            assert_eq!(
                message,
                "Agent can't be changed from system status 'In-call'"
            );
        }
        other => panic!("expected StatusRefused, got {other:?}"),
    }
    assert_eq!(emu.requests().len(), 1, "refusals are not retried");
    assert_eq!(
        emu.agent(12).expect("craig").status_id,
        -7,
        "status unchanged"
    );
    assert!(matches!(
        client.set_agent_status(21, "In-call").await,
        Err(CcaiError::StatusRefused { .. })
    ));
    assert!(matches!(
        client.set_agent_status(21, "Dancing").await,
        Err(CcaiError::UnknownStatus { .. })
    ));
}

#[tokio::test]
async fn outbound_call_answers_201_202_and_the_documented_400_messages() {
    let emu = emulator().await;
    let client = client_for(&emu, "token");
    match client
        .place_outbound_call(&OutboundCall::for_ticket("ada@example.com", "76517"))
        .await
        .expect("201")
    {
        CallPlaced::Created(call) => {
            assert_eq!(call.status.as_deref(), Some("assigned"));
            assert_eq!(call.out_ticket_id.as_deref(), Some("76517"));
            assert_eq!(call.participants.len(), 2);
        }
        other => panic!("expected 201, got {other:?}"),
    }
    assert!(matches!(
        client
            .place_outbound_call(&OutboundCall::to_number(
                "multi@example.com",
                "+1 415-555-0100"
            ))
            .await,
        Ok(CallPlaced::NeedsAgentAction(_))
    ));
    let cases = [
        (
            OutboundCall::to_number("", "+14155550100"),
            CallRejection::AgentEmailRequired,
            "Agent email required",
        ),
        (
            OutboundCall::to_number("ghost@example.com", "+14155550100"),
            CallRejection::InvalidAgentEmail,
            "Not a valid agent email",
        ),
        (
            OutboundCall::to_number("listener@example.com", "+14155550100"),
            CallRejection::NoCallAccess,
            "Agent does not have access to make calls",
        ),
        (
            OutboundCall::to_number("ada@example.com", "call me"),
            CallRejection::NumberNotWellFormed,
            "end_user_number is not well-formed",
        ),
        (
            OutboundCall::to_number("rayd@nelson.com", "+14155550100"),
            CallRejection::AgentNotAvailable,
            "Agent is not available to take this call",
        ),
        (
            OutboundCall {
                end_user_number: None,
                ..OutboundCall::to_number("ada@example.com", "")
            },
            CallRejection::TicketOrNumberRequired,
            "ticket_id or end_user_number required",
        ),
    ];
    emu.set_agent_status(13, -7).expect("ray in a call");
    for (call, kind, text) in cases {
        match client.place_outbound_call(&call).await {
            Err(CcaiError::CallRejected { kind: k, message }) => {
                assert_eq!((k, message.as_str()), (kind, text));
            }
            other => panic!("expected {text:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn client_retries_5xx_and_429_then_succeeds() {
    let emu = emulator().await;
    let client = client_for(&emu, "token");
    emu.inject_fault(Fault::status(503, 2).on_path("user_statuses"));
    emu.inject_fault(
        Fault::status(429, 1)
            .retry_after(0)
            .on_path("user_statuses"),
    );
    emu.clear_requests();
    client.user_statuses().await.expect("eventually");
    let statuses: Vec<u16> = emu.requests().into_iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 429, 200]);
    emu.inject_fault(Fault::status(500, 10));
    assert!(matches!(
        client.user_statuses().await,
        Err(CcaiError::Status { .. })
    ));
}

#[tokio::test]
async fn placing_a_call_is_not_retried_after_a_server_error() {
    let emu = emulator().await;
    let client = client_for(&emu, "token");
    emu.inject_fault(Fault::status(502, 1).on_path("/apps/api/v1/calls"));
    emu.clear_requests();
    let result = client
        .place_outbound_call(&OutboundCall::to_number("ada@example.com", "+14155550100"))
        .await;
    assert!(
        matches!(result, Err(CcaiError::Status { .. })),
        "{result:?}"
    );
    assert_eq!(emu.requests().len(), 1);
}

#[tokio::test]
async fn client_limits_itself_to_ten_requests_per_second() {
    let emu = emu::start(emu::CcaiConfig::default())
        .await
        .expect("throttling emulator");
    let mut config = client_for(&emu, "token").config().clone();
    config.requests_per_second = 10;
    let client = CcaiClient::new(config).expect("client");
    let started = std::time::Instant::now();
    for _ in 0..12 {
        client.user_statuses().await.expect("never throttled");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "12 requests took {:?}",
        started.elapsed()
    );
    assert!(emu.requests().iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn emulator_serves_manager_lists_with_paging_headers() {
    let emu = emulator().await;
    let creds = emu.credentials();
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/manager/api/v1/agents?per=3&page=1",
            emu.base_url()
        ))
        .basic_auth(&creds.subdomain, Some(&creds.api_token))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.headers()["total"], "8");
    assert_eq!(resp.headers()["per-page"], "3");
    let link = resp.headers()["link"].to_str().expect("link").to_string();
    assert!(
        link.ends_with("; rel=\"next\"") && link.contains("page=2"),
        "{link}"
    );
    let ctl = reqwest::Client::new()
        .get(format!("{}/__control/state", emu.base_url()))
        .send()
        .await
        .expect("control");
    assert_eq!(ctl.status(), 200);
    let unauth = reqwest::Client::new()
        .get(format!("{}/manager/api/v1/agents", emu.base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(unauth.status(), 401);
}

// ------------------------------------------------------------------ samples

fn sample(name: &str) -> String {
    let path = format!(
        "{}/../tests/fixtures/samples/ccai/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Drops `//` comments outside strings.
fn strip_line_comments(text: &str) -> String {
    text.lines()
        .map(|line| {
            let mut in_string = false;
            let mut prev = ' ';
            for (i, c) in line.char_indices() {
                if c == '"' && prev != '\\' {
                    in_string = !in_string;
                }
                if !in_string && c == '/' && prev == '/' {
                    return line[..i - 1].to_string();
                }
                prev = c;
            }
            line.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The complete top-level objects of a truncated JSON array.
fn complete_objects(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = None;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => {
                if depth == 0 {
                    start = Some(i);
                }
                depth += 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    if let Some(s) = start.take() {
                        if let Ok(v) = serde_json::from_str(&text[s..=i]) {
                            out.push(v);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_ccai_sample_parses_into_the_client_models() {
    use switchboard::connectors::ccai::{
        ActivityLog, Agent, AgentStatusResult, Call, Chat, UserStatus,
    };
    let call: Call =
        serde_json::from_str(&sample("apps-api-call-inbound-201.json")).expect("inbound");
    assert_eq!(
        (
            call.id,
            call.status.as_deref(),
            call.out_ticket_id.as_deref()
        ),
        (519, Some("queued"), Some("76517"))
    );
    assert_eq!(
        call.menu_path.and_then(|m| m.materialized_path).as_deref(),
        Some("9")
    );
    let call: Call =
        serde_json::from_str(&sample("apps-api-call-outbound-201.json")).expect("outbound");
    assert_eq!(call.agent_info.map(|a| a.id), Some(1));
    assert_eq!(call.participants.len(), 2);
    let schema: Vec<Call> =
        serde_json::from_str(&sample("apps-api-call-object-schema.json")).expect("schema");
    assert_eq!(schema[0].transfers.len(), 1);
    assert_eq!(schema[0].rating, None, "0 is no rating");
    let statuses: Vec<UserStatus> =
        serde_json::from_str(&sample("manager-api-user-statuses-200.json")).expect("statuses");
    let ids: Vec<i64> = statuses.iter().map(|s| s.id).collect();
    assert_eq!(ids, [0, -1, -2, -3, -4, -5, -6, -7, -8, -10, 5]);
    assert_eq!(
        statuses,
        emu::default_statuses()
            .into_iter()
            .take(11)
            .map(|s| UserStatus {
                id: s.id,
                name: s.name,
                color: Some(s.color),
                wfm_id: s.wfm_id
            })
            .collect::<Vec<_>>(),
        "emulator serves the documented statuses"
    );
    let agents: Vec<Agent> =
        serde_json::from_str(&sample("manager-api-agent-object-schema.json")).expect("agents");
    assert_eq!(agents[0].teams.len(), 1);
    let logs: Vec<ActivityLog> =
        serde_json::from_str(&sample("manager-api-agent-activity-log-schema.json")).expect("logs");
    assert_eq!(logs[0].activity.as_deref(), Some("login"));
    let request: Value = serde_json::from_str(&sample("apps-api-agent-status-update.request.json"))
        .expect("request");
    assert_eq!(request["status"], "Available");
    let results: Vec<AgentStatusResult> =
        complete_objects(&sample("apps-api-agent-status-update.response-partial.txt"))
            .into_iter()
            .map(|v| serde_json::from_value(v).expect("result"))
            .collect();
    assert_eq!(results.len(), 2, "the truncated third entry is skipped");
    assert_eq!(
        results[1].message.as_deref(),
        Some("Agent can't be changed from system status 'In-call'")
    );
    let chat_text = strip_line_comments(&sample("manager-api-chat-object-partial.jsonc"));
    assert!(
        complete_objects(&chat_text).is_empty(),
        "the only chat of the sample is truncated"
    );
    let cut = chat_text
        .find("\"agent_info\"")
        .expect("truncated at agent_info");
    let repaired = format!("{}\"agent_info\": null }}]", &chat_text[..cut]);
    let chats: Vec<Chat> = serde_json::from_str(&repaired).expect("chat");
    assert_eq!((chats[0].id, chats[0].message_count), (31354, Some(3)));
    for name in [
        "apps-api-force-logout.request.json",
        "apps-api-crm-contact-data.request.json",
    ] {
        serde_json::from_str::<Value>(&sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let ruby = sample("chat-webhook-auth-ruby.rb.txt");
    assert!(
        ruby.contains("OpenSSL::HMAC.digest") && ruby.contains("#{timestamp_header}#{payload}"),
        "signature recipe"
    );
}

#[test]
fn se2_session_event_batch_without_event_type_parses_and_derives_the_session() {
    let minimal = json!({ "count": 1, "events": [{
        "event_id": "9b1f7c9e-0000-4000-a000-000000000001",
        "timestamp": 1768467600000_i64,
        "item": { "id": 42, "dn": "+14155550100", "status": "connected", "unknown_future_key": true }
    }]});
    let batch: SessionEventBatch = serde_json::from_value(minimal).expect("parses");
    let mut ledger = intake::ledger::Ledger::default();
    ledger.merge(intake::normalize::update_from_envelope(&batch.events[0]));
    let events = ledger.derive(1768467600000, Default::default());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event.id, "call-42:created");
    assert_eq!(
        events[0].event.session.end_user.phone.as_deref(),
        Some("+14155550100")
    );
}

fn chat_created_update(at_ms: i64, tier: Option<&str>) -> Vec<u8> {
    let mut item = json!({
        "id": 2001, "channel": "chat", "session_type": "Messaging Inbound (Mobile Chat)",
    });
    if let Some(tier) = tier {
        item["custom_data"] =
            json!({"loyalty_tier": {"value": tier, "type": "string", "label": "Tier"}});
    }
    serde_json::to_vec(&json!({"count": 1, "events": [{
        "event_id": format!("created-{at_ms}"),
        "timestamp": at_ms,
        "event_type": "session_created",
        "item": item,
    }]}))
    .expect("json")
}

#[tokio::test]
async fn tu9_se4_custom_data_survives_when_another_source_created_the_session_first() {
    let sc = sidecar().await;
    let auth = Some((USER, PASSWORD));
    // A chat webhook creates chat-2001 first, without custom data.
    let body = chat_created();
    let ts = Utc::now().timestamp().to_string();
    let signature = format!("primary={}", emu::sign_webhook(PRIMARY, &ts, &body));
    assert_eq!(
        post_webhook(
            &sc.url,
            &[("X-Signature", signature), ("X-Signature-Timestamp", ts)],
            &body
        )
        .await,
        200
    );
    // Then the session's own `session_created`, with SDK custom data.
    let (status, body) = post_events(
        &sc.url,
        TENANT,
        auth,
        chat_created_update(1_768_467_601_000, Some("gold")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 1, "the custom data is new: {body}");
    let custom: Vec<SessionEvent> = events(&sc.store)
        .into_iter()
        .filter(|e| e.id.starts_with("chat-2001:custom-data:"))
        .collect();
    assert_eq!(custom.len(), 1, "{custom:?}");
    match &custom[0].kind {
        switchboard::runtime::types::EventKind::CustomData(data) => {
            assert_eq!(data.len(), 1);
            assert_eq!(
                (data[0].key.as_str(), data[0].value.as_str()),
                ("loyalty_tier", "gold")
            );
        }
        other => panic!("expected custom data, got {other:?}"),
    }
    // The same update again, and an older one with another value: nothing.
    for (at, tier) in [(1_768_467_601_000, "gold"), (1_768_467_600_500, "silver")] {
        let (_, body) =
            post_events(&sc.url, TENANT, auth, chat_created_update(at, Some(tier))).await;
        assert_eq!(body["accepted"], 0, "{body}");
    }
}
