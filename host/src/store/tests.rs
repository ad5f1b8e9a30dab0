use super::*;
use rusqlite::Connection;
use serde_json::json;
use std::time::Duration;

fn event(tenant: &str, id: &str, customer: &str, at_ms: i64) -> NewInboxEvent {
    NewInboxEvent {
        tenant: tenant.into(),
        event_id: id.into(),
        source: "session-events".into(),
        session_id: "call-1".into(),
        customer_key: customer.into(),
        at_ms,
        at: format!("t{at_ms}"),
        body: json!({ "id": id }),
    }
}

#[test]
fn insert_reports_duplicates_per_tenant() {
    let store = Store::in_memory().expect("open");
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

#[test]
fn pending_is_ordered_by_event_time_then_arrival() {
    let store = Store::in_memory().expect("open");
    store
        .insert_events(&[
            event("a", "late", "c", 30),
            event("a", "early", "c", 10),
            event("a", "tie", "c", 10),
        ])
        .expect("insert");
    let ids: Vec<_> = store
        .pending(Some("a"), 10)
        .expect("pending")
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(ids, ["early", "tie", "late"]);
}

#[test]
fn done_and_failed_rows_leave_the_pending_list() {
    let store = Store::in_memory().expect("open");
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
    assert_eq!(failed.body, json!({ "id": "2" }));
    assert!(store
        .pending_for_customer("a", "c", 10)
        .expect("pending")
        .is_empty());
}

#[test]
fn cursor_round_trips_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchboard.db");
    {
        let store = Store::open(&path).expect("open");
        assert_eq!(store.cursor("a", "calls").expect("read"), None);
        store.set_cursor("a", "calls", "v1").expect("write");
        store.set_cursor("a", "calls", "v2").expect("overwrite");
        store
            .insert_event(&event("a", "e1", "c", 1))
            .expect("insert");
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(
        store.cursor("a", "calls").expect("read").as_deref(),
        Some("v2")
    );
    assert!(
        !store
            .insert_event(&event("a", "e1", "c", 1))
            .expect("insert"),
        "dedupe survives reopen"
    );
}

#[test]
fn chat_messages_are_kept_once_in_time_order() {
    let store = Store::in_memory().expect("open");
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
    assert!(!store
        .add_chat_message("a", "77", &msg("1", 10))
        .expect("add"));
    let ids: Vec<_> = store
        .chat_messages("a", "77")
        .expect("list")
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids, ["1", "2"]);
}

/// The write-ahead log is copied into the database file by the background
/// thread: the database file alone, without its `-wal`, soon holds what was
/// written, although far fewer pages were written than the serving
/// connection's own checkpoint threshold.
#[test]
fn writes_reach_the_database_file_through_the_background_checkpoint() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("switchboard.db");
    let store = Store::open(&path).expect("open");
    let events: Vec<_> = (0..200)
        .map(|i| event("a", &format!("e{i}"), "c", i))
        .collect();
    assert_eq!(store.insert_events(&events).expect("insert"), 200);
    let copy = dir.path().join("copy.db");
    let started = std::time::Instant::now();
    let rows = loop {
        std::fs::copy(&path, &copy).expect("copy the database file alone");
        let rows: i64 = Connection::open(&copy)
            .and_then(|c| c.query_row("SELECT count(*) FROM inbox", [], |r| r.get(0)))
            .unwrap_or(0);
        if rows == 200 || started.elapsed() > Duration::from_secs(10) {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(rows, 200, "checkpointed into the database file");
}
