//! One conformance suite for both store backends (HA1): every test body
//! takes a [`Store`] and runs twice, as `ha1_sqlite_<name>` on a private
//! in-memory SQLite store and as `ha1_postgres_<name>` on a fresh schema of
//! the test PostgreSQL server (`SWITCHBOARD_TEST_POSTGRES`, see
//! `support/postgres.rs`; the PostgreSQL tests fail when it is unreachable).
//! The SQLite backend is the reference; what only one backend has (SQLite's
//! file and checkpoint, PostgreSQL's replicas) is tested apart, at the end.
//!
//! Run: `cargo test -p switchboard --test store`.

#[path = "support/postgres.rs"]
mod pg;

use pg::TestDb;
use serde_json::json;
use std::sync::{Arc, Barrier};
use switchboard::store::postgres::SCHEMA_VERSION;
use switchboard::store::*;

/// Every test of the suite: `body => sqlite test, postgres test`.
macro_rules! conformance {
    ($($body:ident => $sqlite:ident, $postgres:ident;)*) => {
        $(
            #[test]
            fn $sqlite() {
                $body(Store::in_memory().expect("open an in-memory SQLite store"));
            }

            #[test]
            fn $postgres() {
                let db = TestDb::new();
                $body(postgres_store(&db));
            }
        )*
    };
}

conformance! {
    insert_reports_duplicates_per_tenant =>
        ha1_sqlite_insert_reports_duplicates_per_tenant,
        ha1_postgres_insert_reports_duplicates_per_tenant;
    insert_events_counts_the_new_ones =>
        ha1_sqlite_insert_events_counts_the_new_ones,
        ha1_postgres_insert_events_counts_the_new_ones;
    pending_is_ordered_by_event_time_then_arrival =>
        ha1_sqlite_pending_is_ordered_by_event_time_then_arrival,
        ha1_postgres_pending_is_ordered_by_event_time_then_arrival;
    done_and_failed_rows_leave_the_pending_list =>
        ha1_sqlite_done_and_failed_rows_leave_the_pending_list,
        ha1_postgres_done_and_failed_rows_leave_the_pending_list;
    a_stored_row_reads_back_whole =>
        ha1_sqlite_a_stored_row_reads_back_whole,
        ha1_postgres_a_stored_row_reads_back_whole;
    customers_and_sessions_are_listed_in_queue_order =>
        ha1_sqlite_customers_and_sessions_are_listed_in_queue_order,
        ha1_postgres_customers_and_sessions_are_listed_in_queue_order;
    every_attempt_is_counted =>
        ha1_sqlite_every_attempt_is_counted,
        ha1_postgres_every_attempt_is_counted;
    settling_sets_the_row_and_the_outcome_together =>
        pf2_sqlite_settling_sets_the_row_and_the_outcome_together,
        pf2_postgres_settling_sets_the_row_and_the_outcome_together;
    dead_letters_hold_their_customer_until_skipped =>
        ha1_sqlite_dead_letters_hold_their_customer_until_skipped,
        ha1_postgres_dead_letters_hold_their_customer_until_skipped;
    requeue_puts_failed_and_dead_events_back =>
        ha1_sqlite_requeue_puts_failed_and_dead_events_back,
        ha1_postgres_requeue_puts_failed_and_dead_events_back;
    cursors_round_trip =>
        ha1_sqlite_cursors_round_trip,
        ha1_postgres_cursors_round_trip;
    chat_messages_are_kept_once_in_time_order =>
        ha1_sqlite_chat_messages_are_kept_once_in_time_order,
        ha1_postgres_chat_messages_are_kept_once_in_time_order;
    sessions_link_to_one_conversation =>
        ha1_sqlite_sessions_link_to_one_conversation,
        ha1_postgres_sessions_link_to_one_conversation;
    conversation_meta_keeps_the_first_record =>
        ha1_sqlite_conversation_meta_keeps_the_first_record,
        ha1_postgres_conversation_meta_keeps_the_first_record;
    a_decision_is_recorded_once_and_its_outcome_follows =>
        ha1_sqlite_a_decision_is_recorded_once_and_its_outcome_follows,
        ha1_postgres_a_decision_is_recorded_once_and_its_outcome_follows;
    outcomes_and_tenants_are_listed_in_order =>
        ha1_sqlite_outcomes_and_tenants_are_listed_in_order,
        ha1_postgres_outcomes_and_tenants_are_listed_in_order;
    field_provisioning_keeps_the_earliest_time =>
        ha1_sqlite_field_provisioning_keeps_the_earliest_time,
        ha1_postgres_field_provisioning_keeps_the_earliest_time;
    attachments_are_kept_until_uploaded =>
        ha1_sqlite_attachments_are_kept_until_uploaded,
        ha1_postgres_attachments_are_kept_until_uploaded;
    reconcile_merges_in_order_and_saves_the_cursor =>
        ha1_sqlite_reconcile_merges_in_order_and_saves_the_cursor,
        ha1_postgres_reconcile_merges_in_order_and_saves_the_cursor;
    a_failed_reconcile_stores_nothing =>
        ha1_sqlite_a_failed_reconcile_stores_nothing,
        ha1_postgres_a_failed_reconcile_stores_nothing;
    an_older_mirror_copy_never_replaces_a_newer_one =>
        ha1_sqlite_an_older_mirror_copy_never_replaces_a_newer_one,
        ha1_postgres_an_older_mirror_copy_never_replaces_a_newer_one;
    mirror_keys_find_customers_remember_absence_and_lists_come_newest_first =>
        ha1_sqlite_mirror_keys_find_customers_remember_absence_and_lists_come_newest_first,
        ha1_postgres_mirror_keys_find_customers_remember_absence_and_lists_come_newest_first;
    mirror_keys_follow_the_latest_write =>
        ha1_sqlite_mirror_keys_follow_the_latest_write,
        ha1_postgres_mirror_keys_follow_the_latest_write;
    the_shadow_report_counts_each_outcome_and_lists_the_differences =>
        ha1_sqlite_the_shadow_report_counts_each_outcome_and_lists_the_differences,
        ha1_postgres_the_shadow_report_counts_each_outcome_and_lists_the_differences;
    status_agents_round_trip_and_update =>
        ha1_sqlite_status_agents_round_trip_and_update,
        ha1_postgres_status_agents_round_trip_and_update;
    text_sorts_bytewise =>
        ha1_sqlite_text_sorts_bytewise,
        ha1_postgres_text_sorts_bytewise;
    the_store_works_from_async_tasks =>
        ha1_sqlite_the_store_works_from_async_tasks,
        ha1_postgres_the_store_works_from_async_tasks;
}

/// A PostgreSQL store on `db`'s schema.
fn postgres_store(db: &TestDb) -> Store {
    Store::new(Postgres::open(db.url(), 4).expect("open the PostgreSQL store"))
}

fn event(tenant: &str, id: &str, customer: &str, at_ms: i64) -> NewInboxEvent {
    NewInboxEvent {
        tenant: tenant.into(),
        event_id: id.into(),
        source: "session-events".into(),
        session_id: "call-1".into(),
        customer_key: customer.into(),
        at_ms,
        at: format!("t{at_ms}"),
        body: serde_json::value::to_raw_value(&json!({ "id": id }))
            .expect("json")
            .into(),
    }
}

fn ids(rows: &[InboxRow]) -> Vec<&str> {
    rows.iter().map(|r| r.event_id.as_str()).collect()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as both backends write timestamps.
fn assert_timestamp(text: &str) {
    let shape: String = text
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99.999Z", "timestamp {text:?}");
}

/// Long enough for the millisecond timestamps to move on.
fn tick() {
    std::thread::sleep(std::time::Duration::from_millis(5));
}

// ---- inbox ----

fn insert_reports_duplicates_per_tenant(store: Store) {
    assert!(store
        .insert_event(&event("a", "e1", "c", 1))
        .expect("insert"));
    assert!(
        !store
            .insert_event(&event("a", "e1", "c", 1))
            .expect("insert"),
        "same id twice"
    );
    assert!(
        store
            .insert_event(&event("b", "e1", "c", 1))
            .expect("insert"),
        "other tenant"
    );
    assert_eq!(store.pending(None, 10).expect("pending").len(), 2);
}

fn insert_events_counts_the_new_ones(store: Store) {
    store
        .insert_event(&event("a", "old", "c", 1))
        .expect("insert");
    let batch = [
        event("a", "old", "c", 1),
        event("a", "new1", "c", 2),
        event("a", "new2", "c", 3),
        event("a", "new1", "c", 2),
    ];
    assert_eq!(store.insert_events(&batch).expect("insert"), 2);
    assert_eq!(store.insert_events(&batch).expect("again"), 0);
    assert_eq!(store.insert_events(&[]).expect("none"), 0);
    assert_eq!(
        ids(&store.events("a").expect("events")),
        ["old", "new1", "new2"]
    );
}

fn pending_is_ordered_by_event_time_then_arrival(store: Store) {
    store
        .insert_events(&[
            event("a", "late", "c", 30),
            event("a", "early", "c", 10),
            event("a", "tie", "c", 10),
            event("b", "other", "c", 20),
        ])
        .expect("insert");
    let mine = store.pending(Some("a"), 10).expect("pending");
    assert_eq!(ids(&mine), ["early", "tie", "late"]);
    assert!(mine[0].seq < mine[1].seq, "ties in arrival order");
    assert_eq!(
        ids(&store.pending(None, 10).expect("all")),
        ["early", "tie", "other", "late"]
    );
    assert_eq!(
        ids(&store.pending(None, 2).expect("limit")),
        ["early", "tie"]
    );
    assert_eq!(
        ids(&store.pending(Some("a"), usize::MAX).expect("no limit")),
        ["early", "tie", "late"]
    );
    assert!(store.pending(Some("a"), 0).expect("zero").is_empty());
    assert!(store.pending(Some("z"), 10).expect("unknown").is_empty());
}

fn done_and_failed_rows_leave_the_pending_list(store: Store) {
    store
        .insert_events(&[
            event("a", "1", "c", 1),
            event("a", "2", "c", 2),
            event("a", "3", "d", 3),
        ])
        .expect("insert");
    let rows = store.pending(Some("a"), 10).expect("pending");
    store.mark_done(rows[0].seq).expect("done");
    store.mark_failed(rows[1].seq, "bad plan").expect("failed");
    store
        .record_attempt(rows[2].seq, "kustomer 503")
        .expect("attempt");
    let pending = store.pending(Some("a"), 10).expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(pending[0].reason.as_deref(), Some("kustomer 503"));
    let failed = store.event("a", "2").expect("get").expect("row");
    assert_eq!(failed.status, InboxStatus::Failed);
    assert_eq!(failed.reason.as_deref(), Some("bad plan"));
    assert_eq!(failed.body_json(), json!({ "id": "2" }));
    let done = store.event("a", "1").expect("get").expect("row");
    assert_eq!((done.status, done.reason), (InboxStatus::Done, None));
    assert!(store
        .pending_for_customer("a", "c", 10)
        .expect("pending")
        .is_empty());
    assert_eq!(
        ids(&store.pending_for_customer("a", "d", 10).expect("pending")),
        ["3"]
    );
    assert_eq!(store.event("a", "nope").expect("get"), None);
    assert_eq!(store.event("b", "1").expect("other tenant"), None);
    // Unknown rows: nothing to update, no error.
    store.mark_done(i64::MAX).expect("unknown row");
}

fn a_stored_row_reads_back_whole(store: Store) {
    let mut new = event("a", "e1", "+14155550100", 1_700_000_000_123);
    new.source = "chat-webhook".into();
    new.session_id = "chat-9".into();
    new.at = "2023-11-14T22:13:20.123Z".into();
    let body = json!({ "kind": "chat", "nested": { "n": [1, 2.5, null, "ü\u{0}"] } });
    new.body = serde_json::value::to_raw_value(&body).expect("json").into();
    store.insert_event(&new).expect("insert");
    let row = store.event("a", "e1").expect("get").expect("row");
    assert!(row.seq > 0);
    assert_eq!(
        (
            row.tenant.as_str(),
            row.event_id.as_str(),
            row.source.as_str(),
            row.session_id.as_str(),
            row.customer_key.as_str(),
            row.at_ms,
            row.at.as_str(),
            &row.body_json(),
            row.status,
            row.reason.as_deref(),
            row.attempts,
        ),
        (
            "a",
            "e1",
            "chat-webhook",
            "chat-9",
            "+14155550100",
            1_700_000_000_123,
            "2023-11-14T22:13:20.123Z",
            &body,
            InboxStatus::Pending,
            None,
            0,
        )
    );
    assert_timestamp(&row.received_at);
    assert_eq!(store.events("a").expect("events"), vec![row]);
}

fn customers_and_sessions_are_listed_in_queue_order(store: Store) {
    let in_session = |tenant: &str, id: &str, customer: &str, session: &str, at| {
        let mut e = event(tenant, id, customer, at);
        e.session_id = session.into();
        e
    };
    store
        .insert_events(&[
            in_session("a", "s1-late", "c1", "s1", 30),
            in_session("a", "s2", "c1", "s2", 20),
            in_session("a", "s1-early", "c1", "s1", 10),
            in_session("a", "other-customer", "c2", "s1", 15),
            in_session("b", "other-tenant", "c1", "s1", 5),
        ])
        .expect("insert");
    let rows = store.events("a").expect("events");
    store.mark_done(rows[0].seq).expect("done");
    assert_eq!(
        ids(&store.session_events("a", "c1", "s1").expect("session")),
        ["s1-early", "s1-late"],
        "every status, in queue order"
    );
    assert_eq!(
        ids(&store.pending_for_customer("a", "c1", 10).expect("pending")),
        ["s2", "s1-late"]
    );
    assert_eq!(
        ids(&store.pending_for_customer("a", "c1", 1).expect("limit")),
        ["s2"]
    );
    let mut customers = store.pending_customers().expect("customers");
    customers.sort();
    assert_eq!(
        customers,
        [
            ("a".to_string(), "c1".to_string()),
            ("a".into(), "c2".into()),
            ("b".into(), "c1".into())
        ]
    );
    for row in store.events("b").expect("events") {
        store.mark_failed(row.seq, "x").expect("failed");
    }
    assert_eq!(store.pending_customers().expect("customers").len(), 2);
}

fn settling_sets_the_row_and_the_outcome_together(store: Store) {
    store
        .insert_events(&[event("a", "ok", "c1", 10), event("a", "bad", "c1", 20)])
        .expect("insert");
    let rows = store.events("a").expect("events");
    store
        .record_decision(
            "a",
            "ok",
            None,
            Some(1),
            &raw(json!({"actions": []})),
            &raw(json!({})),
        )
        .expect("decided");
    store.settle(rows[0].seq, "a", "ok", None).expect("applied");
    store
        .settle(rows[1].seq, "a", "bad", Some("Kustomer refused it"))
        .expect("failed");
    let rows = store.events("a").expect("events");
    assert_eq!(rows[0].status, InboxStatus::Done);
    assert_eq!(
        (rows[1].status, rows[1].reason.as_deref()),
        (InboxStatus::Failed, Some("Kustomer refused it"))
    );
    let ok = store.outcome("a", "ok").expect("read").expect("outcome");
    assert_eq!(
        (ok.state, ok.module_version),
        (OutcomeState::Applied, Some(1))
    );
    assert!(ok.plan.is_some(), "the decision is kept");
    let bad = store.outcome("a", "bad").expect("read").expect("outcome");
    assert_eq!(
        (bad.state, bad.detail.as_deref()),
        (OutcomeState::Failed, Some("Kustomer refused it"))
    );
}

fn every_attempt_is_counted(store: Store) {
    store
        .insert_event(&event("a", "e1", "c", 1))
        .expect("insert");
    let seq = store.event("a", "e1").expect("get").expect("row").seq;
    store.record_attempt(seq, "timeout").expect("attempt");
    store.record_attempt(seq, "503").expect("attempt");
    let row = store.event("a", "e1").expect("get").expect("row");
    assert_eq!(
        (row.status, row.attempts, row.reason.as_deref()),
        (InboxStatus::Pending, 2, Some("503"))
    );
    store.mark_done(seq).expect("done");
    let row = store.event("a", "e1").expect("get").expect("row");
    assert_eq!(
        (row.status, row.attempts, row.reason),
        (InboxStatus::Done, 3, None),
        "the last attempt counts too and clears the reason"
    );
}

fn dead_letters_hold_their_customer_until_skipped(store: Store) {
    store
        .insert_events(&[
            event("a", "d1", "c", 1),
            event("a", "d2", "c", 2),
            event("a", "d3", "e", 3),
            event("b", "d1", "c", 1),
        ])
        .expect("insert");
    assert!(!store.customer_held("a", "c").expect("held"));
    for tenant in ["a", "b"] {
        for row in store.events(tenant).expect("events") {
            store.mark_dead(row.seq, "outage").expect("dead");
        }
    }
    let dead = store.event("a", "d1").expect("get").expect("row");
    assert_eq!(
        (dead.status, dead.reason.as_deref(), dead.attempts),
        (InboxStatus::Dead, Some("outage"), 1)
    );
    assert!(store.customer_held("a", "c").expect("held"));
    assert!(!store.customer_held("a", "z").expect("unknown customer"));
    assert!(store.pending(None, 10).expect("pending").is_empty());
    assert_eq!(store.skip_dead("a", Some("d2")).expect("skip one"), 1);
    assert_eq!(store.skip_dead("a", Some("d2")).expect("again"), 0);
    assert_eq!(store.skip_dead("a", Some("nope")).expect("unknown"), 0);
    assert!(store.customer_held("a", "c").expect("d1 still holds"));
    let skipped = store.event("a", "d2").expect("get").expect("row");
    assert_eq!(
        (skipped.status, skipped.reason.as_deref()),
        (InboxStatus::Skipped, Some("skipped by an operator: outage"))
    );
    assert_eq!(store.skip_dead("a", None).expect("skip all"), 2);
    assert!(!store.customer_held("a", "c").expect("released"));
    assert!(!store.customer_held("a", "e").expect("released"));
    assert!(store.customer_held("b", "c").expect("other tenant"));
    assert!(store.pending(None, 10).expect("pending").is_empty());
}

fn requeue_puts_failed_and_dead_events_back(store: Store) {
    store
        .insert_events(&[
            event("a", "failed", "c", 1),
            event("a", "dead", "c", 2),
            event("a", "done", "c", 3),
            event("a", "pending", "c", 4),
            event("b", "failed", "c", 1),
        ])
        .expect("insert");
    let row = |tenant, id| store.event(tenant, id).expect("get").expect("row");
    store
        .mark_failed(row("a", "failed").seq, "bad")
        .expect("fail");
    store
        .mark_dead(row("a", "dead").seq, "outage")
        .expect("dead");
    store.mark_done(row("a", "done").seq).expect("done");
    store
        .mark_failed(row("b", "failed").seq, "bad")
        .expect("fail");
    let (failed_at, dead_at) = (row("a", "failed").received_at, row("a", "dead").received_at);
    tick();
    assert_eq!(store.requeue_failed("a", Some("nope")).expect("none"), 0);
    assert_eq!(store.requeue_failed("a", Some("failed")).expect("one"), 1);
    let requeued = row("a", "failed");
    assert_eq!(
        (requeued.status, requeued.reason, requeued.attempts),
        (InboxStatus::Pending, None, 1)
    );
    assert_eq!(requeued.received_at, failed_at, "a failure keeps its age");
    assert_eq!(store.requeue_failed("a", None).expect("all"), 1);
    let requeued = row("a", "dead");
    assert_eq!(
        (requeued.status, requeued.reason),
        (InboxStatus::Pending, None)
    );
    assert!(
        requeued.received_at > dead_at,
        "a dead letter's retry window starts again"
    );
    assert_timestamp(&requeued.received_at);
    assert_eq!(row("a", "done").status, InboxStatus::Done);
    assert_eq!(row("b", "failed").status, InboxStatus::Failed);
    assert_eq!(
        ids(&store.pending(Some("a"), 10).expect("pending")),
        ["failed", "dead", "pending"]
    );
}

fn cursors_round_trip(store: Store) {
    assert_eq!(store.cursor("a", "calls").expect("read"), None);
    store.set_cursor("a", "calls", "v1").expect("write");
    store.set_cursor("a", "calls", "v2").expect("overwrite");
    store.set_cursor("a", "chats", "w1").expect("other source");
    store.set_cursor("b", "calls", "x1").expect("other tenant");
    let read = |tenant, source| store.cursor(tenant, source).expect("read");
    assert_eq!(read("a", "calls").as_deref(), Some("v2"));
    assert_eq!(read("a", "chats").as_deref(), Some("w1"));
    assert_eq!(read("b", "calls").as_deref(), Some("x1"));
    assert_eq!(read("b", "chats"), None);
}

fn chat_messages_are_kept_once_in_time_order(store: Store) {
    let msg = |id: &str, at: i64| ChatMessage {
        message_id: id.into(),
        at_ms: at,
        sender: "end_user".into(),
        content: format!("m{id}"),
    };
    assert!(store
        .add_chat_message("a", "77", &msg("2", 20))
        .expect("add"));
    assert!(store
        .add_chat_message("a", "77", &msg("1", 10))
        .expect("add"));
    assert!(store
        .add_chat_message("a", "77", &msg("0", 20))
        .expect("add"));
    assert!(!store
        .add_chat_message("a", "77", &msg("1", 10))
        .expect("add"));
    assert!(store
        .add_chat_message("a", "78", &msg("1", 10))
        .expect("other chat"));
    let messages = store.chat_messages("a", "77").expect("list");
    let ids: Vec<_> = messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, ["1", "0", "2"], "time, then id");
    assert_eq!(messages[0], msg("1", 10));
    assert!(store.chat_messages("b", "77").expect("list").is_empty());
}

// ---- links ----

fn sessions_link_to_one_conversation(store: Store) {
    let link = |session: &str, conversation: &str, customer: &str| SessionLink {
        session_id: session.into(),
        conversation_id: conversation.into(),
        customer_id: customer.into(),
    };
    assert_eq!(store.session_link("a", "s1").expect("read"), None);
    store
        .link_session("a", &link("s1", "v1", "c1"))
        .expect("link");
    store
        .link_session("a", &link("s2", "v1", "c1"))
        .expect("link");
    store
        .link_session("a", &link("s3", "v2", "c1"))
        .expect("link");
    store
        .link_session("b", &link("s4", "v1", "c9"))
        .expect("link");
    assert_eq!(
        store.session_link("a", "s1").expect("read"),
        Some(link("s1", "v1", "c1"))
    );
    assert_eq!(
        store.sessions_of_conversation("a", "v1").expect("list"),
        ["s1", "s2"]
    );
    store
        .link_session("a", &link("s1", "v2", "c2"))
        .expect("relink");
    assert_eq!(
        store.session_link("a", "s1").expect("read"),
        Some(link("s1", "v2", "c2"))
    );
    assert_eq!(
        store.sessions_of_conversation("a", "v1").expect("list"),
        ["s2"]
    );
    assert_eq!(
        store.sessions_of_conversation("a", "v2").expect("list"),
        ["s1", "s3"]
    );
    assert!(store
        .sessions_of_conversation("a", "v9")
        .expect("list")
        .is_empty());
}

fn conversation_meta_keeps_the_first_record(store: Store) {
    assert_eq!(store.conversation_meta("a", "v1").expect("read"), None);
    let first = ConversationMeta {
        session_id: Some("s1".into()),
        channel: Some("voice".into()),
        menu_selection: Some("Billing".into()),
        voicemail: true,
        direction: Some("in".into()),
    };
    store.put_conversation_meta("a", "v1", &first).expect("put");
    store
        .put_conversation_meta("a", "v1", &ConversationMeta::default())
        .expect("put again");
    store
        .put_conversation_meta("a", "v2", &ConversationMeta::default())
        .expect("put empty");
    assert_eq!(
        store.conversation_meta("a", "v1").expect("read"),
        Some(first)
    );
    assert_eq!(
        store.conversation_meta("a", "v2").expect("read"),
        Some(ConversationMeta::default())
    );
    assert_eq!(store.conversation_meta("b", "v1").expect("read"), None);
}

fn a_decision_is_recorded_once_and_its_outcome_follows(store: Store) {
    assert_eq!(store.outcome("a", "e1").expect("read"), None);
    let plan = json!({ "actions": [{ "create": "conversation" }] });
    let context = json!({ "event": { "id": "e1" } });
    store
        .record_decision(
            "a",
            "e1",
            Some("sha256:abc"),
            Some(u32::MAX),
            &raw(plan.clone()),
            &raw(context.clone()),
        )
        .expect("decide");
    store
        .record_decision(
            "a",
            "e1",
            Some("sha256:def"),
            Some(2),
            &raw(json!({})),
            &raw(json!({})),
        )
        .expect("decided again");
    let decided = store.outcome("a", "e1").expect("read").expect("row");
    assert_eq!(
        (
            decided.tenant.as_str(),
            decided.event_id.as_str(),
            decided.module_digest.as_deref(),
            decided.module_version,
            decided.plan.as_ref(),
            decided.context.as_ref(),
            decided.state,
            decided.detail.as_deref(),
        ),
        (
            "a",
            "e1",
            Some("sha256:abc"),
            Some(u32::MAX),
            Some(&plan),
            Some(&context),
            OutcomeState::Decided,
            None
        ),
        "the first decision stands"
    );
    assert_timestamp(&decided.decided_at);
    assert_timestamp(&decided.updated_at);
    tick();
    store
        .set_outcome("a", "e1", OutcomeState::Applied, Some("2 actions"))
        .expect("applied");
    let applied = store.outcome("a", "e1").expect("read").expect("row");
    assert_eq!(
        (
            applied.state,
            applied.detail.as_deref(),
            applied.plan.as_ref()
        ),
        (OutcomeState::Applied, Some("2 actions"), Some(&plan))
    );
    assert_eq!(applied.decided_at, decided.decided_at);
    assert!(applied.updated_at > decided.updated_at, "updated_at moves");
    store
        .set_outcome("a", "e1", OutcomeState::Decided, None)
        .expect("back");
    assert_eq!(
        store.outcome("a", "e1").expect("read").expect("row").detail,
        None
    );

    // An event that failed before any decision.
    store
        .set_outcome("a", "e2", OutcomeState::Failed, Some("no module"))
        .expect("failed");
    let failed = store.outcome("a", "e2").expect("read").expect("row");
    assert_eq!(
        (
            failed.module_digest,
            failed.module_version,
            failed.plan,
            failed.context,
            failed.state,
            failed.detail.as_deref()
        ),
        (
            None,
            None,
            None,
            None,
            OutcomeState::Failed,
            Some("no module")
        )
    );

    // Natively decided (no module).
    store
        .record_decision("a", "e3", None, None, &raw(json!(null)), &raw(json!([])))
        .expect("native");
    let native = store.outcome("a", "e3").expect("read").expect("row");
    assert_eq!(
        (
            native.module_digest,
            native.module_version,
            native.plan,
            native.context
        ),
        (None, None, Some(json!(null)), Some(json!([])))
    );

    store.clear_outcome("a", "e1").expect("clear");
    store.clear_outcome("a", "nope").expect("clear unknown");
    assert_eq!(store.outcome("a", "e1").expect("read"), None);
    store
        .record_decision(
            "a",
            "e1",
            Some("sha256:def"),
            Some(2),
            &raw(json!({})),
            &raw(json!({})),
        )
        .expect("decided afresh");
    assert_eq!(
        store
            .outcome("a", "e1")
            .expect("read")
            .expect("row")
            .module_digest
            .as_deref(),
        Some("sha256:def")
    );
}

fn outcomes_and_tenants_are_listed_in_order(store: Store) {
    assert!(store.tenants().expect("tenants").is_empty());
    for (tenant, event) in [("b", "e2"), ("a", "e9"), ("b", "e1")] {
        store
            .record_decision(
                tenant,
                event,
                None,
                Some(1),
                &raw(json!({})),
                &raw(json!({})),
            )
            .expect("decide");
        tick();
    }
    store
        .set_outcome("c", "e1", OutcomeState::Failed, None)
        .expect("failed");
    assert_eq!(store.tenants().expect("tenants"), ["a", "b", "c"]);
    let listed: Vec<String> = store
        .outcomes("b")
        .expect("outcomes")
        .into_iter()
        .map(|o| o.event_id)
        .collect();
    assert_eq!(listed, ["e2", "e1"], "decision order");
    assert!(store.outcomes("z").expect("outcomes").is_empty());
}

fn field_provisioning_keeps_the_earliest_time(store: Store) {
    assert_eq!(store.field_provisioning("a").expect("read"), None);
    let fields = json!({ "channel": "channelStr", "menu": "menuStr" });
    store
        .record_field_provisioning("a", "2024-01-01T00:00:00.000Z", &fields)
        .expect("record");
    assert_eq!(
        store.field_provisioning("a").expect("read"),
        Some(("2024-01-01T00:00:00.000Z".to_string(), fields))
    );
    let more = json!({ "channel": "channelStr", "menu": "menuStr", "voicemail": "vmBool" });
    store
        .record_field_provisioning("a", "2024-06-01T00:00:00.000Z", &more)
        .expect("again");
    assert_eq!(
        store.field_provisioning("a").expect("read"),
        Some(("2024-01-01T00:00:00.000Z".to_string(), more.clone())),
        "the first time stands; the field names follow the latest"
    );
    store
        .record_field_provisioning("a", "2023-12-01T00:00:00.000Z", &more)
        .expect("an earlier time");
    assert_eq!(
        store.field_provisioning("a").expect("read"),
        Some(("2023-12-01T00:00:00.000Z".to_string(), more)),
        "an earlier time replaces a later one"
    );
    assert_eq!(store.field_provisioning("b").expect("read"), None);
}

fn attachments_are_kept_until_uploaded(store: Store) {
    assert_eq!(store.attachment("a", "note-1").expect("read"), None);
    store
        .record_attachment("a", "note-1", "att-1", r#"{"url":"https://s3/x"}"#)
        .expect("record");
    assert_eq!(
        store.attachment("a", "note-1").expect("read"),
        Some(AttachmentRecord {
            attachment_id: "att-1".into(),
            upload: r#"{"url":"https://s3/x"}"#.into(),
            uploaded: false,
        })
    );
    store.attachment_uploaded("a", "note-1").expect("uploaded");
    store
        .attachment_uploaded("a", "nope")
        .expect("unknown key: no error");
    assert!(
        store
            .attachment("a", "note-1")
            .expect("read")
            .expect("row")
            .uploaded
    );
    assert_eq!(store.attachment("b", "note-1").expect("read"), None);
    store
        .record_attachment("a", "note-1", "att-2", "{}")
        .expect("registered again");
    assert_eq!(
        store.attachment("a", "note-1").expect("read"),
        Some(AttachmentRecord {
            attachment_id: "att-2".into(),
            upload: "{}".into(),
            uploaded: false,
        })
    );
}

// ---- sessions ----

/// A merge that appends the update to the state and derives one event per
/// update not already in it.
fn append(stored: Option<&str>, update: &str) -> Merged {
    let stored = stored.unwrap_or_default();
    if stored.split(',').any(|u| u == update) {
        return Merged {
            state: stored.to_string(),
            events: Vec::new(),
        };
    }
    let state = if stored.is_empty() {
        update.to_string()
    } else {
        format!("{stored},{update}")
    };
    Merged {
        state,
        events: vec![event("a", &format!("derived-{update}"), "c", 1)],
    }
}

fn reconcile_merges_in_order_and_saves_the_cursor(store: Store) {
    assert_eq!(store.session_state("a", "s1").expect("read"), None);
    let mut seen = Vec::new();
    let updates = vec![
        ("s1".to_string(), "x"),
        ("s2".to_string(), "y"),
        ("s1".to_string(), "z"),
        ("s1".to_string(), "x"),
    ];
    let out = store
        .reconcile("a", updates, Some(("calls", "page-2")), |stored, update| {
            seen.push(stored.map(str::to_owned));
            append(stored, update)
        })
        .expect("reconcile");
    assert_eq!(
        seen,
        [None, None, Some("x".to_string()), Some("x,z".to_string())],
        "each merge sees what the one before it stored"
    );
    assert_eq!((out.new, out.unchanged), (3, 1));
    let derived: Vec<&str> = out.events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(derived, ["derived-x", "derived-y", "derived-z"]);
    assert_eq!(
        store.session_state("a", "s1").expect("read").as_deref(),
        Some("x,z")
    );
    assert_eq!(
        store.session_state("a", "s2").expect("read").as_deref(),
        Some("y")
    );
    assert_eq!(store.session_state("b", "s1").expect("read"), None);
    assert_eq!(
        store.cursor("a", "calls").expect("cursor").as_deref(),
        Some("page-2")
    );
    assert_eq!(
        ids(&store.events("a").expect("events")),
        ["derived-x", "derived-y", "derived-z"]
    );

    // An event derived again (another session's update) is already there.
    let out = store
        .reconcile("a", vec![("s3".to_string(), "x")], None, append)
        .expect("reconcile");
    assert_eq!((out.new, out.unchanged, out.events.len()), (0, 0, 1));
    assert_eq!(
        store.cursor("a", "calls").expect("cursor").as_deref(),
        Some("page-2"),
        "no cursor: the saved one stands"
    );
    let out = store
        .reconcile::<&str>("a", Vec::new(), Some(("calls", "page-3")), append)
        .expect("nothing to merge");
    assert_eq!(out, Reconciled::default());
    assert_eq!(
        store.cursor("a", "calls").expect("cursor").as_deref(),
        Some("page-3")
    );
}

/// The updates, their events and the cursor are one transaction: a merge
/// that fails part-way stores none of them.
fn a_failed_reconcile_stores_nothing(store: Store) {
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.reconcile(
            "a",
            vec![("s1".to_string(), "x"), ("s2".to_string(), "boom")],
            Some(("calls", "page-2")),
            |stored, update| {
                assert_ne!(update, "boom", "the merge fails");
                append(stored, update)
            },
        )
    }));
    assert!(failed.is_err());
    assert_eq!(store.session_state("a", "s1").expect("read"), None);
    assert_eq!(store.cursor("a", "calls").expect("cursor"), None);
    assert!(store.events("a").expect("events").is_empty());
    // The store is still usable.
    store
        .reconcile("a", vec![("s1".to_string(), "x")], None, append)
        .expect("reconcile");
    assert_eq!(
        store.session_state("a", "s1").expect("read").as_deref(),
        Some("x")
    );
}

// ---- mirror (KU2) ----

/// A body's version in these tests: its change time and length, never 0.
fn version_of(body: &str, updated: i64) -> i64 {
    updated * 1_000 + body.len() as i64 + 1
}

fn customer(id: &str, body: &str, updated: i64) -> MirrorCustomer<'static> {
    MirrorCustomer {
        id: Box::leak(id.to_string().into_boxed_str()),
        body: Box::leak(body.to_string().into_boxed_str()),
        version: version_of(body, updated),
        updated_at_ms: updated,
        keys: vec![("phone", "+14155550100".into())],
    }
}

fn an_older_mirror_copy_never_replaces_a_newer_one(store: Store) {
    store
        .mirror_customer("t", &customer("c1", "new", 20), 100)
        .expect("newer");
    store
        .mirror_customer("t", &customer("c1", "old", 10), 200)
        .expect("older, delivered late");
    let got = store
        .mirrored_customer("t", "c1")
        .expect("read")
        .expect("row");
    assert_eq!(
        (got.body.as_str(), got.version, got.seen_at_ms),
        ("new", version_of("new", 20), 200),
        "the body keeps its own version"
    );
    store
        .mirror_customer("t", &customer("c1", "same time", 20), 150)
        .expect("same change time");
    let got = store
        .mirrored_customer("t", "c1")
        .expect("read")
        .expect("row");
    assert_eq!(
        (got.body.as_str(), got.version, got.seen_at_ms),
        ("same time", version_of("same time", 20), 200),
        "a copy as new replaces it; the confirmation never moves back"
    );
    assert_eq!(store.mirrored_customer("u", "c1").expect("read"), None);
    let conversation = |customer_id, body: &'static str, updated| MirrorConversation {
        id: "v1",
        customer_id,
        created_at_ms: 5,
        updated_at_ms: updated,
        body,
        version: version_of(body, updated),
    };
    store
        .mirror_conversation("t", &conversation("c1", "done", 30), 300)
        .expect("newer");
    store
        .mirror_conversation("t", &conversation("c2", "open", 25), 250)
        .expect("older");
    let got = store
        .mirrored_conversation("t", "v1")
        .expect("read")
        .expect("row");
    assert_eq!(
        (
            got.id.as_str(),
            got.body.as_str(),
            got.version,
            got.seen_at_ms
        ),
        ("v1", "done", version_of("done", 30), 300)
    );
    store.mirror_listed("t", "c1", 1).expect("listed");
    assert_eq!(
        store
            .mirrored_conversations("t", "c1", 10)
            .expect("read")
            .map(|(_, stamps)| stamps),
        Some(vec![Stamp {
            id: "v1".into(),
            version: version_of("done", 30),
            seen_at_ms: 300
        }]),
        "the older copy did not move it to another customer; the list names the body's version"
    );
    store
        .mirror_conversation("t", &conversation("c2", "moved", 40), 260)
        .expect("moved");
    let got = store
        .mirrored_conversation("t", "v1")
        .expect("read")
        .expect("row");
    assert_eq!((got.body.as_str(), got.seen_at_ms), ("moved", 300));
    assert_eq!(
        store
            .mirrored_conversations("t", "c1", 10)
            .expect("read")
            .map(|(_, rows)| rows.len()),
        Some(0)
    );
    assert_eq!(store.mirrored_conversation("t", "v2").expect("read"), None);
}

fn mirror_keys_find_customers_remember_absence_and_lists_come_newest_first(store: Store) {
    assert_eq!(
        store.mirrored_key("t", "phone", "+1").expect("read"),
        KeyLookup::Unknown
    );
    store
        .mirror_absent("t", "phone", "+14155550100", 50)
        .expect("absent");
    assert_eq!(
        store
            .mirrored_key("t", "phone", "+14155550100")
            .expect("read"),
        KeyLookup::Absent { seen_at_ms: 50 }
    );
    store
        .mirror_customer("t", &customer("c1", "{}", 1), 60)
        .expect("created");
    match store
        .mirrored_key("t", "phone", "+14155550100")
        .expect("read")
    {
        KeyLookup::Found(c) => assert_eq!((c.id.as_str(), c.seen_at_ms), ("c1", 60)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.mirrored_conversations("t", "c1", 5).expect("read"),
        None
    );
    store.mirror_listed("t", "c1", 70).expect("listed");
    store.mirror_listed("t", "c1", 65).expect("listed earlier");
    for (id, created) in [("a", 3), ("b", 9), ("c", 6), ("d", 9)] {
        store
            .mirror_conversation(
                "t",
                &MirrorConversation {
                    id,
                    customer_id: "c1",
                    created_at_ms: created,
                    updated_at_ms: created,
                    body: "{}",
                    version: version_of("{}", created),
                },
                70,
            )
            .expect("conversation");
    }
    let (listed, rows) = store
        .mirrored_conversations("t", "c1", 3)
        .expect("read")
        .expect("listed");
    assert_eq!(listed, 70, "the list time only moves forward");
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["d", "b", "c"],
        "newest by creation time (ties by id, last first)"
    );
    assert_eq!(
        store
            .mirrored_conversations("t", "c1", usize::MAX)
            .expect("read")
            .map(|(_, rows)| rows.len()),
        Some(4)
    );
}

/// A key moves to whichever customer was written last, even one Kustomer
/// showed earlier (its time only moves forward); an absence replaces it only
/// if it is no older.
fn mirror_keys_follow_the_latest_write(store: Store) {
    store
        .mirror_customer("t", &customer("c1", "one", 1), 100)
        .expect("c1");
    store
        .mirror_customer("t", &customer("c2", "two", 1), 100)
        .expect("c2");
    store
        .mirror_key("t", "email", "a@example.com", "c1", 80)
        .expect("key");
    match store
        .mirrored_key("t", "email", "a@example.com")
        .expect("read")
    {
        KeyLookup::Found(c) => assert_eq!(
            (c.id.as_str(), c.body.as_str(), c.seen_at_ms),
            ("c1", "one", 80),
            "as fresh as the older of key and customer"
        ),
        other => panic!("{other:?}"),
    }
    store
        .mirror_absent("t", "email", "a@example.com", 70)
        .expect("an older absence");
    assert!(matches!(
        store
            .mirrored_key("t", "email", "a@example.com")
            .expect("read"),
        KeyLookup::Found(_)
    ));
    store
        .mirror_key("t", "email", "a@example.com", "c2", 60)
        .expect("moved, seen earlier");
    match store
        .mirrored_key("t", "email", "a@example.com")
        .expect("read")
    {
        KeyLookup::Found(c) => assert_eq!((c.id.as_str(), c.seen_at_ms), ("c2", 80)),
        other => panic!("{other:?}"),
    }
    store
        .mirror_absent("t", "email", "a@example.com", 90)
        .expect("gone");
    assert_eq!(
        store
            .mirrored_key("t", "email", "a@example.com")
            .expect("read"),
        KeyLookup::Absent { seen_at_ms: 90 }
    );
    store
        .mirror_key("t", "email", "b@example.com", "c9", 90)
        .expect("a customer not mirrored");
    assert_eq!(
        store
            .mirrored_key("t", "email", "b@example.com")
            .expect("read"),
        KeyLookup::Unknown
    );
    assert_eq!(
        store
            .mirrored_key("u", "email", "a@example.com")
            .expect("other tenant"),
        KeyLookup::Unknown
    );
}

// ---- shadow (RM7) ----

fn the_shadow_report_counts_each_outcome_and_lists_the_differences(store: Store) {
    let d = "digest";
    store
        .record_shadow("t", "e1", d, &ShadowOutcome::Same)
        .expect("same");
    store
        .record_shadow(
            "t",
            "e2",
            d,
            &ShadowOutcome::Different {
                live: json!({"a": 1}),
                shadow: json!({"a": 2}),
            },
        )
        .expect("different");
    store
        .record_shadow("t", "e3", d, &ShadowOutcome::Error("trap".into()))
        .expect("error");
    store
        .record_shadow("t", "e4", d, &ShadowOutcome::Skipped)
        .expect("skipped");
    store
        .record_shadow("t", "e1", d, &ShadowOutcome::Error("again".into()))
        .expect("repeat kept out");
    store
        .record_shadow("t", "e5", "other", &ShadowOutcome::Same)
        .expect("other module");
    let report = store.shadow_report("t", d, 10).expect("report");
    assert_eq!(
        (
            report.decided,
            report.matched,
            report.differed,
            report.errors,
            report.skipped
        ),
        (3, 1, 1, 1, 1)
    );
    assert_eq!(report.differences.len(), 1);
    assert_eq!(report.differences[0].event_id, "e2");
    assert_eq!(report.differences[0].live_plan, json!({"a": 1}));
    assert_eq!(report.differences[0].shadow_plan, json!({"a": 2}));
    assert_timestamp(&report.differences[0].decided_at);
    assert_eq!(
        report.failures,
        [ShadowFailure {
            event_id: "e3".into(),
            error: "trap".into()
        }]
    );
    let outcome = |event| store.shadow_outcome("t", d, event).expect("read");
    assert_eq!(outcome("e1").as_deref(), Some("same"));
    assert_eq!(outcome("e2").as_deref(), Some("different"));
    assert_eq!(outcome("e3").as_deref(), Some("error"));
    assert_eq!(outcome("e4").as_deref(), Some("skipped"));
    assert_eq!(outcome("e9"), None);
    assert_eq!(
        store.shadow_outcome("t", "other", "e1").expect("read"),
        None
    );
    assert_eq!(
        store.shadow_report("u", d, 10).expect("report"),
        ShadowReport::default()
    );

    // Newest first, at most `limit`.
    for i in 0..3 {
        tick();
        store
            .record_shadow(
                "t",
                &format!("later-{i}"),
                d,
                &ShadowOutcome::Error(format!("e{i}")),
            )
            .expect("error");
    }
    let report = store.shadow_report("t", d, 2).expect("report");
    assert_eq!(report.errors, 4);
    let failures: Vec<&str> = report
        .failures
        .iter()
        .map(|f| f.event_id.as_str())
        .collect();
    assert_eq!(failures, ["later-2", "later-1"]);
    assert_eq!(report.differences.len(), 1);
}

// ---- status sync (SPEC §6) ----

fn status_agents_round_trip_and_update(store: Store) {
    assert_eq!(
        store.status_agent("t", "a@example.com").expect("read"),
        None
    );
    let mut r = StatusAgentRow {
        tenant: "t".into(),
        agent_email: "a@example.com".into(),
        pending: Some("{}".into()),
        last_applied: Some(r#"{"status":"available"}"#.into()),
        last_decision: Some(r#"{"apply":true}"#.into()),
        ..StatusAgentRow::default()
    };
    store.put_status_agent(&r).expect("insert");
    let first = store
        .status_agent("t", "a@example.com")
        .expect("read")
        .expect("row");
    assert_timestamp(&first.updated_at);
    assert_eq!(
        first,
        StatusAgentRow {
            updated_at: first.updated_at.clone(),
            ..r.clone()
        }
    );
    tick();
    r.pending = None;
    r.last_error = Some("boom".into());
    r.updated_at = "ignored".into();
    store.put_status_agent(&r).expect("update");
    let got = store
        .status_agent("t", "a@example.com")
        .expect("read")
        .expect("row");
    assert_eq!(
        (
            got.pending,
            got.last_error.as_deref(),
            got.last_applied.as_deref()
        ),
        (None, Some("boom"), Some(r#"{"status":"available"}"#))
    );
    assert!(got.updated_at > first.updated_at, "set to now on write");
    store
        .put_status_agent(&StatusAgentRow {
            tenant: "t".into(),
            agent_email: "0@example.com".into(),
            ..StatusAgentRow::default()
        })
        .expect("another agent");
    store
        .put_status_agent(&StatusAgentRow {
            tenant: "u".into(),
            agent_email: "a@example.com".into(),
            ..StatusAgentRow::default()
        })
        .expect("another tenant");
    let emails: Vec<String> = store
        .status_agents("t")
        .expect("list")
        .into_iter()
        .map(|a| a.agent_email)
        .collect();
    assert_eq!(emails, ["0@example.com", "a@example.com"]);
    assert!(store.status_agents("v").expect("list").is_empty());
}

// ---- across the store ----

/// Text sorts by bytes, as SQLite's `BINARY` collation does, whatever the
/// PostgreSQL database's collation: upper case before lower case.
fn text_sorts_bytewise(store: Store) {
    for session in ["b", "B", "a", "_", "é"] {
        store
            .link_session(
                "t",
                &SessionLink {
                    session_id: session.into(),
                    conversation_id: "v".into(),
                    customer_id: "c".into(),
                },
            )
            .expect("link");
        store
            .set_outcome(session, "e", OutcomeState::Failed, None)
            .expect("outcome");
    }
    assert_eq!(
        store.sessions_of_conversation("t", "v").expect("list"),
        ["B", "_", "a", "b", "é"]
    );
    assert_eq!(store.tenants().expect("tenants"), ["B", "_", "a", "b", "é"]);
}

/// The store is called from the async runtime's tasks (the intake, the
/// pipeline): on a multi-thread runtime's worker, on a current-thread
/// runtime, and from `spawn_blocking`.
fn the_store_works_from_async_tasks(store: Store) {
    fn work(store: &Store, n: i64) {
        store
            .insert_event(&event("a", &format!("e{n}"), "c", n))
            .expect("insert");
        store
            .reconcile(
                "a",
                vec![(format!("s{n}"), format!("u{n}"))],
                Some(("calls", "p")),
                |stored, update| append(stored, &update),
            )
            .expect("reconcile");
        assert!(!store.pending(Some("a"), 100).expect("pending").is_empty());
    }
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    multi.block_on({
        let store = store.clone();
        async move {
            let tasks: Vec<_> = (0..4)
                .map(|n| {
                    let store = store.clone();
                    tokio::spawn(async move { work(&store, n) })
                })
                .collect();
            for task in tasks {
                task.await.expect("task");
            }
            // On the thread that runs `block_on` (as `#[tokio::main]` does).
            work(&store, 8);
            let store = store.clone();
            tokio::task::spawn_blocking(move || work(&store, 4))
                .await
                .expect("blocking task");
        }
    });
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    current.block_on(async {
        work(&store, 5);
        let blocking = store.clone();
        tokio::task::spawn_blocking(move || work(&blocking, 7))
            .await
            .expect("blocking task");
        let store = store.clone();
        tokio::spawn(async move { work(&store, 6) })
            .await
            .expect("task");
    });
    assert_eq!(store.events("a").expect("events").len(), 18);
    assert_eq!(
        store.session_state("a", "s6").expect("read").as_deref(),
        Some("u6")
    );
}

// ---- PostgreSQL only ----

/// Two replicas reconciling the same session take turns: each reads what
/// the other wrote, and no update is lost.
#[test]
fn ha1_postgres_concurrent_reconciles_lose_no_update() {
    let db = TestDb::new();
    let store = postgres_store(&db);
    let start = Arc::new(Barrier::new(2));
    let replicas: Vec<_> = ["x", "y"]
        .into_iter()
        .map(|name| {
            // Each replica its own pool, as two processes would have.
            let store = postgres_store(&db);
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for i in 0..100 {
                    store
                        .reconcile(
                            "a",
                            vec![("s1".to_string(), format!("{name}{i}"))],
                            None,
                            |stored, update| append(stored, &update),
                        )
                        .expect("reconcile");
                }
            })
        })
        .collect();
    for replica in replicas {
        replica.join().expect("replica");
    }
    let state = store
        .session_state("a", "s1")
        .expect("read")
        .expect("state");
    let mut updates: Vec<&str> = state.split(',').collect();
    assert_eq!(updates.len(), 200, "{state}");
    updates.sort_unstable();
    updates.dedup();
    assert_eq!(updates.len(), 200, "{state}");
    for name in ["x", "y"] {
        let own: Vec<&str> = state.split(',').filter(|u| u.starts_with(name)).collect();
        let expected: Vec<String> = (0..100).map(|i| format!("{name}{i}")).collect();
        assert_eq!(own, expected, "each replica's updates in its order");
    }
    assert_eq!(store.events("a").expect("events").len(), 200);
}

#[test]
fn ha1_postgres_migrations_run_once_when_replicas_start_together() {
    let db = TestDb::new();
    let start = Arc::new(Barrier::new(4));
    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url().to_string();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                Postgres::open(&url, 1)
            })
        })
        .collect();
    for replica in replicas {
        replica
            .join()
            .expect("replica")
            .expect("every replica opens the store");
    }
    let (applied, latest): (i64, i64) = db.with_client(|c| {
        let row = c.query_one("SELECT count(*), max(version) FROM schema_version", &[])?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    });
    assert_eq!((applied, latest), (SCHEMA_VERSION, SCHEMA_VERSION));
    // And a later start finds nothing to do.
    let store = postgres_store(&db);
    store.set_cursor("a", "calls", "v").expect("usable");
}

#[test]
fn ha1_postgres_a_newer_schema_is_refused() {
    let db = TestDb::new();
    drop(postgres_store(&db));
    db.execute(&format!(
        "INSERT INTO schema_version (version) VALUES ({})",
        SCHEMA_VERSION + 1
    ));
    match Postgres::open(db.url(), 1) {
        Err(StoreError::TooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
}

/// The URL's password shows nowhere: not in the error of a failed open, not
/// in the store's `Debug`.
#[test]
fn ha1_postgres_the_password_never_shows() {
    let err = Postgres::open("postgres://sb:hunter2@127.0.0.1:1/switchboard", 1)
        .expect_err("nothing listens on port 1");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("Connection refused"),
        "the cause shows: {shown}"
    );
    assert!(
        shown.contains("postgres://sb:***@127.0.0.1:1/switchboard"),
        "{shown}"
    );
    let err = Postgres::open("host=127.0.0.1 port=notaport password=hunter2", 1)
        .expect_err("a bad connection string");
    assert!(!format!("{err} {err:?}").contains("hunter2"));

    let db = TestDb::new();
    let store = Postgres::open(db.url(), 1).expect("open");
    assert!(format!("{store:?}").contains(db.url()));
    assert!(matches!(
        Postgres::open(db.url(), 0),
        Err(StoreError::Open { .. })
    ));
}

/// Two replicas storing batches that share events, in opposite orders, can
/// deadlock on the inbox's unique index: PostgreSQL aborts one, which runs
/// again, so both calls succeed and every event is stored once.
#[test]
fn ha1_postgres_crossed_batches_are_retried_not_failed() {
    let db = TestDb::new();
    let store = postgres_store(&db);
    let start = Arc::new(Barrier::new(2));
    let replicas: Vec<_> = [false, true]
        .into_iter()
        .map(|reversed| {
            let store = postgres_store(&db);
            let start = start.clone();
            std::thread::spawn(move || {
                (0..3)
                    .map(|round| {
                        let mut batch: Vec<_> = (0..20)
                            .map(|i| event("a", &format!("r{round}-e{i}"), "c", i))
                            .collect();
                        if reversed {
                            batch.reverse();
                        }
                        start.wait();
                        store.insert_events(&batch).expect("insert")
                    })
                    .sum::<usize>()
            })
        })
        .collect();
    let new: usize = replicas
        .into_iter()
        .map(|replica| replica.join().expect("replica"))
        .sum();
    assert_eq!(new, 60, "every event new exactly once");
    assert_eq!(store.events("a").expect("events").len(), 60);
}

/// HA2: two replicas on one database. A customer's lease and a tenant's
/// leadership are one replica's at a time; released, the other takes the
/// lease; when the holder stops beating (its process died), both pass to
/// the other replica once `LEASE_TTL` has passed, and not before.
#[test]
fn ha2_postgres_leases_and_leaders_pass_to_another_replica_when_the_holder_dies() {
    let db = TestDb::new();
    let a = postgres_store(&db);
    let b = postgres_store(&db);
    assert_ne!(a.replica(), b.replica(), "each process its own replica id");

    assert!(a.lease_customer("t", "c1").expect("lease"));
    assert!(
        a.lease_customer("t", "c1").expect("lease"),
        "kept by its holder"
    );
    assert!(
        !b.lease_customer("t", "c1").expect("lease"),
        "held by a live replica"
    );
    assert!(
        b.lease_customer("t", "c2").expect("lease"),
        "another customer is free"
    );
    a.release_customer("t", "c1").expect("release");
    assert!(
        b.lease_customer("t", "c1").expect("lease"),
        "released: free"
    );
    b.release_customer("t", "c1").expect("release");

    assert!(a.lead("t", "poller").expect("lead"));
    assert!(
        !b.lead("t", "poller").expect("lead"),
        "one leader per tenant and role"
    );
    assert!(
        b.lead("u", "poller").expect("lead"),
        "another tenant's leadership is free"
    );
    assert!(a.lease_customer("t", "c3").expect("lease"));
    assert!(a.lease_valid() && b.lease_valid());
    let alive: Vec<String> = b
        .replicas()
        .expect("replicas")
        .into_iter()
        .filter(|r| r.alive)
        .map(|r| r.id)
        .collect();
    assert!(alive.contains(&a.replica().to_string()) && alive.contains(&b.replica().to_string()));

    // Replica a dies: its heartbeat stops with it.
    let died = std::time::Instant::now();
    drop(a);
    assert!(
        !b.lead("t", "poller").expect("lead"),
        "not before the lease lapses"
    );
    assert!(!b.lease_customer("t", "c3").expect("lease"));
    let mut taken = false;
    while died.elapsed() < coordination::LEASE_TTL * 3 {
        if b.lead("t", "poller").expect("lead") {
            taken = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let after = died.elapsed();
    assert!(taken, "the leadership passes to the live replica");
    assert!(
        after >= coordination::LEASE_TTL - coordination::HEARTBEAT_EVERY,
        "not before the lease lapsed: {after:?}"
    );
    assert!(
        b.lease_customer("t", "c3").expect("lease"),
        "the customer too"
    );
    eprintln!(
        "ha2: leadership and lease taken over {} ms after the holder stopped",
        after.as_millis()
    );
}

/// A JSON value as the text the store records.
fn raw(value: serde_json::Value) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(&value).expect("JSON text")
}
