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
        body: serde_json::value::to_raw_value(&json!({ "id": id }))
            .expect("json")
            .into(),
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

/// Reads the inbox rows of the database at `path` on a connection of its
/// own: what is committed, not what the store's open transaction holds.
fn committed_rows(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .and_then(|c| c.query_row("SELECT count(*) FROM inbox", [], |r| r.get(0)))
        .unwrap_or(0)
}

/// A database path in a directory of its own (kept while the guard lives).
fn database() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("switchboard.db");
    (dir, path)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Writes made within one commit gap share one commit: far fewer commits
/// than writes, never more than one per gap, and every write committed once
/// `durable` resolves.
#[test]
fn pf3_writes_made_within_a_gap_share_one_commit() {
    let (_dir, path) = database();
    let store = Sqlite::open(&path).expect("open");
    let before = store.commits();
    let started = std::time::Instant::now();
    for i in 0..500 {
        store
            .insert_event(&event("a", &format!("e{i}"), "c", i))
            .expect("insert");
    }
    block_on(store.durable(Wait::Prompt))
        .expect("told")
        .expect("committed");
    let elapsed = started.elapsed();
    let commits = store.commits() - before;
    assert_eq!(committed_rows(&path), 500, "durable means committed");
    let gaps = (elapsed.as_micros() / sqlite::COMMIT_GAP.as_micros()) as u64;
    assert!(
        commits <= gaps + 2,
        "{commits} commits in {elapsed:?}: more than one per gap"
    );
    assert!(commits < 500, "{commits} commits for 500 writes");
}

/// A commit only the pipeline waits for waits for the shared gap, so the
/// events applied meanwhile share it; the intake waiting meanwhile has it
/// committed at once, with the pipeline's writes.
#[test]
fn pf5_a_shared_wait_gathers_writes_and_a_prompt_wait_commits_them() {
    let (_dir, path) = database();
    let tuning = sqlite::Tuning {
        shared_gap: Duration::from_secs(60),
        ..sqlite::Tuning::default()
    };
    let store = Sqlite::open_with(&path, tuning).expect("open");
    store
        .insert_event(&event("a", "e1", "c", 1))
        .expect("insert");
    let mut shared = store.durable(Wait::Shared);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        shared.try_recv().is_err(),
        "a shared wait was committed before its gap"
    );
    assert_eq!(committed_rows(&path), 0);

    store
        .insert_event(&event("a", "e2", "c", 2))
        .expect("insert");
    let started = std::time::Instant::now();
    block_on(store.durable(Wait::Prompt))
        .expect("told")
        .expect("committed");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a prompt wait waited for the shared gap: {:?}",
        started.elapsed()
    );
    assert_eq!(shared.try_recv().expect("told with it"), Ok(()));
    assert_eq!(committed_rows(&path), 2, "both writes in the prompt commit");
}

/// Under a steady stream of commits the write-ahead log starts again from
/// its beginning once it is long, instead of growing until SQLite's own
/// backstop checkpoints after every commit; nothing written is lost.
#[test]
fn pf3_a_long_write_ahead_log_starts_again_from_its_beginning() {
    let (_dir, path) = database();
    let tuning = sqlite::Tuning {
        restart_pages: 50,
        ..sqlite::Tuning::default()
    };
    let store = Sqlite::open_with(&path, tuning).expect("open");
    let value = "x".repeat(4000);
    // The log's header counts its rewinds (its checkpoint sequence number,
    // bytes 12..16, big-endian).
    let log = path.with_extension("db-wal");
    let rewinds = || {
        let header = std::fs::read(&log).unwrap_or_default();
        header
            .get(12..16)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_be_bytes)
    };
    store.set_cursor("a", "first", &value).expect("write");
    store.commit_now().expect("commit");
    let before = rewinds();
    let started = std::time::Instant::now();
    let mut written: u64 = 1;
    while store.wal_restarts() < 10 && started.elapsed() < Duration::from_secs(60) {
        store
            .set_cursor("a", &format!("source-{written}"), &value)
            .expect("write");
        store.commit_now().expect("commit");
        written += 1;
    }
    // One more transaction after the last restart rewinds the log.
    store.set_cursor("a", "last", &value).expect("write");
    store.commit_now().expect("commit");
    written += 1;
    assert!(
        store.wal_restarts() >= 10,
        "{} restarts after {written} commits",
        store.wal_restarts()
    );
    assert!(
        rewinds() >= before + 10,
        "the log rewound {} times in {written} commits",
        rewinds().wrapping_sub(before)
    );
    drop(store);
    let rows: i64 = Connection::open(&path)
        .and_then(|c| c.query_row("SELECT count(*) FROM cursors", [], |r| r.get(0)))
        .expect("count");
    assert_eq!(u64::try_from(rows), Ok(written));
}

/// A write nobody waits for is committed on its own, about a gap later.
#[test]
fn pf3_a_write_nobody_waits_for_is_committed_by_itself() {
    let (_dir, path) = database();
    let store = Sqlite::open(&path).expect("open");
    store
        .insert_event(&event("a", "e1", "c", 1))
        .expect("insert");
    let started = std::time::Instant::now();
    while committed_rows(&path) == 0 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        committed_rows(&path),
        1,
        "committed without a caller waiting"
    );
}

/// A failed write inside the group transaction takes back only its own
/// statements: the writes around it in the same transaction are committed.
#[test]
fn pf3_a_failed_write_leaves_the_rest_of_its_group_alone() {
    let (_dir, path) = database();
    let store = Store::open(&path).expect("open");
    store
        .insert_event(&event("a", "e1", "c", 1))
        .expect("insert");
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.reconcile(
            "a",
            vec![("s1".to_string(), 1), ("s2".to_string(), 2)],
            Some(("calls", "page-2")),
            |_, update| {
                assert_ne!(update, 2, "the merge fails after s1 was written");
                Merged {
                    state: "{}".into(),
                    events: Vec::new(),
                }
            },
        )
    }));
    assert!(failed.is_err());
    store
        .insert_event(&event("a", "e2", "c", 2))
        .expect("insert");
    block_on(store.durable(Wait::Prompt)).expect("committed");
    assert_eq!(committed_rows(&path), 2, "both events around the failure");
    assert_eq!(store.session_state("a", "s1").expect("read"), None);
    assert_eq!(store.cursor("a", "calls").expect("cursor"), None);
}

/// A decision's plan and context are stored packed and read back whole; a
/// row written before they were packed (JSON text) still reads.
#[test]
fn decisions_read_back_packed_and_as_written_before() {
    let (_dir, path) = database();
    let store = Sqlite::open(&path).expect("open");
    let plan = json!({ "actions": [{ "AddNote": "hello" }] });
    let context = json!({ "now": "2026-01-15T09:00:23.000Z", "settings": { "fields": [] } });
    store
        .record_decision(
            "a",
            "e1",
            Some("d1"),
            Some(1),
            &raw(plan.clone()),
            &raw(context.clone()),
        )
        .expect("record");
    store.commit_now().expect("commit");
    let read = store.outcome("a", "e1").expect("read").expect("there");
    assert_eq!(
        (read.plan, read.context),
        (Some(plan.clone()), Some(context.clone()))
    );
    let kind: String = Connection::open(&path)
        .and_then(|c| {
            c.query_row(
                "SELECT typeof(plan) || typeof(context) FROM outcomes WHERE event_id = 'e1'",
                [],
                |r| r.get(0),
            )
        })
        .expect("typeof");
    assert_eq!(kind, "blobblob");
    drop(store);

    Connection::open(&path)
        .and_then(|c| {
            c.execute(
                "INSERT INTO outcomes (tenant, event_id, plan, state, context)
                 VALUES ('a', 'e0', ?1, 'applied', ?2)",
                (plan.to_string(), context.to_string()),
            )
        })
        .expect("a row as written before");
    let store = Sqlite::open(&path).expect("reopen");
    let read = store.outcome("a", "e0").expect("read").expect("there");
    assert_eq!((read.plan, read.context), (Some(plan), Some(context)));
}

/// A JSON value as the text the store records.
fn raw(value: serde_json::Value) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(&value).expect("JSON text")
}
