//! SQLite-only store tests: what needs a database file (reopening it, the
//! background checkpoint). What both backends must do is in the conformance
//! suite, `host/tests/store.rs` (HA1).

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

/// A file store keeps its cursors and its deduplication across a reopen.
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
