//! Connection settings and numbered migrations. A migration is never edited
//! once released; the next change is a new entry.

use super::StoreError;
use rusqlite::Connection;

/// Migrations in order; entry `i` brings the schema to version `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: inbox, poller cursors, chat messages (for transcripts).
    "CREATE TABLE inbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant       TEXT    NOT NULL,
        event_id     TEXT    NOT NULL,
        source       TEXT    NOT NULL,
        session_id   TEXT    NOT NULL,
        customer_key TEXT    NOT NULL,
        at_ms        INTEGER NOT NULL,
        at           TEXT    NOT NULL,
        body         TEXT    NOT NULL,
        status       TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'done', 'failed')),
        reason       TEXT,
        attempts     INTEGER NOT NULL DEFAULT 0,
        received_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        UNIQUE (tenant, event_id)
    );
    CREATE INDEX inbox_pending ON inbox (tenant, status, at_ms, seq);
    CREATE INDEX inbox_customer ON inbox (tenant, customer_key, status, at_ms, seq);
    CREATE TABLE cursors (
        tenant     TEXT NOT NULL,
        source     TEXT NOT NULL,
        value      TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant, source)
    );
    CREATE TABLE chat_messages (
        tenant     TEXT    NOT NULL,
        chat_id    TEXT    NOT NULL,
        message_id TEXT    NOT NULL,
        at_ms      INTEGER NOT NULL,
        sender     TEXT    NOT NULL,
        content    TEXT    NOT NULL,
        PRIMARY KEY (tenant, chat_id, message_id)
    );",
    // 2: session -> conversation links, what the host knows of the
    // conversations it created, and each event's recorded decision/outcome.
    "CREATE TABLE session_links (
        tenant          TEXT NOT NULL,
        session_id      TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        customer_id     TEXT NOT NULL,
        linked_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (tenant, session_id)
    );
    CREATE TABLE conversation_meta (
        tenant          TEXT    NOT NULL,
        conversation_id TEXT    NOT NULL,
        session_id      TEXT,
        channel         TEXT,
        menu_selection  TEXT,
        voicemail       INTEGER NOT NULL DEFAULT 0,
        direction       TEXT,
        PRIMARY KEY (tenant, conversation_id)
    );
    CREATE TABLE outcomes (
        tenant         TEXT    NOT NULL,
        event_id       TEXT    NOT NULL,
        module_digest  TEXT,
        module_version INTEGER,
        plan           TEXT,
        state          TEXT    NOT NULL CHECK (state IN ('decided', 'applied', 'failed')),
        detail         TEXT,
        decided_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (tenant, event_id)
    );
    CREATE TABLE field_provisioning (
        tenant         TEXT NOT NULL PRIMARY KEY,
        provisioned_at TEXT NOT NULL,
        fields         TEXT NOT NULL
    );",
    // 3: the context each decision was made with, so decisions can be
    // replayed against a candidate module (RM5).
    "ALTER TABLE outcomes ADD COLUMN context TEXT;",
    // 4: agent status sync (SPEC §6): per agent, the deferred status, the
    // last status the sync applied (echo suppression), the latest decision
    // and the latest error. Status records and decisions are JSON.
    "CREATE TABLE status_sync_agents (
        tenant        TEXT NOT NULL,
        agent_email   TEXT NOT NULL,
        pending       TEXT,
        last_applied  TEXT,
        last_decision TEXT,
        last_error    TEXT,
        updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (tenant, agent_email)
    );",
    // 5: dead letters. An event whose transient failures outlast the
    // maximum event age is `dead` (it holds its customer's later events
    // until an operator retries or skips it); a skipped one is `skipped`.
    // SQLite cannot change a CHECK constraint in place: the table is rebuilt.
    "CREATE TABLE inbox_v5 (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant       TEXT    NOT NULL,
        event_id     TEXT    NOT NULL,
        source       TEXT    NOT NULL,
        session_id   TEXT    NOT NULL,
        customer_key TEXT    NOT NULL,
        at_ms        INTEGER NOT NULL,
        at           TEXT    NOT NULL,
        body         TEXT    NOT NULL,
        status       TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'done', 'failed', 'dead', 'skipped')),
        reason       TEXT,
        attempts     INTEGER NOT NULL DEFAULT 0,
        received_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        UNIQUE (tenant, event_id)
    );
    INSERT INTO inbox_v5 SELECT * FROM inbox;
    DROP TABLE inbox;
    ALTER TABLE inbox_v5 RENAME TO inbox;
    CREATE INDEX inbox_pending ON inbox (tenant, status, at_ms, seq);
    CREATE INDEX inbox_customer ON inbox (tenant, customer_key, status, at_ms, seq);
    CREATE INDEX inbox_status ON inbox (status, tenant, customer_key);",
    // 6: the session ledger: per session, everything every source said of
    // it, merged, and which transitions were derived from it (JSON).
    "CREATE TABLE sessions (
        tenant     TEXT NOT NULL,
        session_id TEXT NOT NULL,
        state      TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant, session_id)
    );",
    // 7: attachments registered in Kustomer, kept before their file is
    // uploaded, so a retry after a lost response reuses the attachment
    // instead of leaving an orphan. `upload` is the storage target (JSON).
    "CREATE TABLE attachments (
        tenant        TEXT    NOT NULL,
        key           TEXT    NOT NULL,
        attachment_id TEXT    NOT NULL,
        upload        TEXT    NOT NULL,
        uploaded      INTEGER NOT NULL DEFAULT 0,
        created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (tenant, key)
    );",
    // 8: the Kustomer mirror (KU2): customers and conversations as Kustomer
    // last showed them (JSON), the keys customers are found by (a NULL
    // customer: Kustomer had none), and which customers' conversation lists
    // are complete as of when.
    "CREATE TABLE mirror_customers (
        tenant        TEXT    NOT NULL,
        customer_id   TEXT    NOT NULL,
        body          TEXT    NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        seen_at_ms    INTEGER NOT NULL,
        PRIMARY KEY (tenant, customer_id)
    );
    CREATE TABLE mirror_keys (
        tenant      TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        value       TEXT    NOT NULL,
        customer_id TEXT,
        seen_at_ms  INTEGER NOT NULL,
        PRIMARY KEY (tenant, kind, value)
    );
    CREATE TABLE mirror_conversations (
        tenant          TEXT    NOT NULL,
        conversation_id TEXT    NOT NULL,
        customer_id     TEXT    NOT NULL,
        created_at_ms   INTEGER NOT NULL,
        body            TEXT    NOT NULL,
        updated_at_ms   INTEGER NOT NULL,
        seen_at_ms      INTEGER NOT NULL,
        PRIMARY KEY (tenant, conversation_id)
    );
    CREATE INDEX mirror_conversations_customer
        ON mirror_conversations (tenant, customer_id, created_at_ms);
    CREATE TABLE mirror_lists (
        tenant       TEXT    NOT NULL,
        customer_id  TEXT    NOT NULL,
        listed_at_ms INTEGER NOT NULL,
        PRIMARY KEY (tenant, customer_id)
    );",
    // 9: shadow decisions (RM7): what a tenant's shadow module decided for
    // each event beside the live module, never carried out. `outcome` is
    // `same`, `different`, `error` or `skipped`; plans are JSON.
    "CREATE TABLE shadow_decisions (
        tenant        TEXT NOT NULL,
        event_id      TEXT NOT NULL,
        shadow_digest TEXT NOT NULL,
        outcome       TEXT NOT NULL
                      CHECK (outcome IN ('same', 'different', 'error', 'skipped')),
        live_plan     TEXT,
        shadow_plan   TEXT,
        detail        TEXT,
        decided_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (tenant, shadow_digest, event_id)
    );",
    // 10: inbox indexes that a settled event leaves alone. Status is in no
    // full index any more; the indexes that select by status hold only the
    // rows in that status: the customers' queues only pending rows (a
    // handful of hot pages), dead and failed ones none on the happy path.
    // Settling an event then rewrites its row and deletes one entry of a
    // small index instead of moving it in three.
    "DROP INDEX inbox_pending;
    DROP INDEX inbox_customer;
    DROP INDEX inbox_status;
    CREATE INDEX inbox_customer ON inbox (tenant, customer_key, at_ms, seq);
    CREATE INDEX inbox_queue ON inbox (tenant, customer_key, at_ms, seq)
        WHERE status = 'pending';
    CREATE INDEX inbox_dead ON inbox (tenant, customer_key) WHERE status = 'dead';
    CREATE INDEX inbox_failed ON inbox (tenant) WHERE status IN ('failed', 'dead');",
    // 11: the small tables every event writes keep their rows in their
    // primary key's own B-tree (`WITHOUT ROWID`): one B-tree, one page per
    // write instead of a table and its key index. The tables with rows of
    // several KiB (outcomes, sessions, the mirror's bodies) keep a rowid.
    "CREATE TABLE session_links_v11 (
        tenant          TEXT NOT NULL,
        session_id      TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        customer_id     TEXT NOT NULL,
        linked_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (tenant, session_id)
    ) WITHOUT ROWID;
    INSERT INTO session_links_v11 SELECT * FROM session_links;
    DROP TABLE session_links;
    ALTER TABLE session_links_v11 RENAME TO session_links;
    CREATE TABLE conversation_meta_v11 (
        tenant          TEXT    NOT NULL,
        conversation_id TEXT    NOT NULL,
        session_id      TEXT,
        channel         TEXT,
        menu_selection  TEXT,
        voicemail       INTEGER NOT NULL DEFAULT 0,
        direction       TEXT,
        PRIMARY KEY (tenant, conversation_id)
    ) WITHOUT ROWID;
    INSERT INTO conversation_meta_v11 SELECT * FROM conversation_meta;
    DROP TABLE conversation_meta;
    ALTER TABLE conversation_meta_v11 RENAME TO conversation_meta;
    CREATE TABLE mirror_keys_v11 (
        tenant      TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        value       TEXT    NOT NULL,
        customer_id TEXT,
        seen_at_ms  INTEGER NOT NULL,
        PRIMARY KEY (tenant, kind, value)
    ) WITHOUT ROWID;
    INSERT INTO mirror_keys_v11 SELECT * FROM mirror_keys;
    DROP TABLE mirror_keys;
    ALTER TABLE mirror_keys_v11 RENAME TO mirror_keys;
    CREATE TABLE mirror_lists_v11 (
        tenant       TEXT    NOT NULL,
        customer_id  TEXT    NOT NULL,
        listed_at_ms INTEGER NOT NULL,
        PRIMARY KEY (tenant, customer_id)
    ) WITHOUT ROWID;
    INSERT INTO mirror_lists_v11 SELECT * FROM mirror_lists;
    DROP TABLE mirror_lists;
    ALTER TABLE mirror_lists_v11 RENAME TO mirror_lists;",
    // 12: CHECK constraints without `IN` lists. SQLite evaluates `x IN (a,
    // b, c)` (three values or more) by building a temporary B-tree of the
    // list on every statement that checks it: each inbox and outcome write
    // did that. Equalities joined by `OR` say the same with no B-tree. The
    // inbox keeps its AUTOINCREMENT high-water mark.
    "CREATE TABLE inbox_v12 (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant       TEXT    NOT NULL,
        event_id     TEXT    NOT NULL,
        source       TEXT    NOT NULL,
        session_id   TEXT    NOT NULL,
        customer_key TEXT    NOT NULL,
        at_ms        INTEGER NOT NULL,
        at           TEXT    NOT NULL,
        body         TEXT    NOT NULL,
        status       TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status = 'pending' OR status = 'done' OR status = 'failed'
                            OR status = 'dead' OR status = 'skipped'),
        reason       TEXT,
        attempts     INTEGER NOT NULL DEFAULT 0,
        received_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        UNIQUE (tenant, event_id)
    );
    INSERT INTO inbox_v12 SELECT * FROM inbox;
    DELETE FROM sqlite_sequence WHERE name = 'inbox_v12';
    UPDATE sqlite_sequence SET name = 'inbox_v12' WHERE name = 'inbox';
    DROP TABLE inbox;
    ALTER TABLE inbox_v12 RENAME TO inbox;
    CREATE INDEX inbox_customer ON inbox (tenant, customer_key, at_ms, seq);
    CREATE INDEX inbox_queue ON inbox (tenant, customer_key, at_ms, seq)
        WHERE status = 'pending';
    CREATE INDEX inbox_dead ON inbox (tenant, customer_key) WHERE status = 'dead';
    CREATE INDEX inbox_failed ON inbox (tenant) WHERE status IN ('failed', 'dead');
    CREATE TABLE outcomes_v12 (
        tenant         TEXT    NOT NULL,
        event_id       TEXT    NOT NULL,
        module_digest  TEXT,
        module_version INTEGER,
        plan           TEXT,
        state          TEXT    NOT NULL
                       CHECK (state = 'decided' OR state = 'applied' OR state = 'failed'),
        detail         TEXT,
        decided_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        context        TEXT,
        PRIMARY KEY (tenant, event_id)
    );
    INSERT INTO outcomes_v12
        (tenant, event_id, module_digest, module_version, plan, state, detail,
         decided_at, updated_at, context)
        SELECT tenant, event_id, module_digest, module_version, plan, state, detail,
               decided_at, updated_at, context FROM outcomes;
    DROP TABLE outcomes;
    ALTER TABLE outcomes_v12 RENAME TO outcomes;
    CREATE TABLE shadow_decisions_v12 (
        tenant        TEXT NOT NULL,
        event_id      TEXT NOT NULL,
        shadow_digest TEXT NOT NULL,
        outcome       TEXT NOT NULL
                      CHECK (outcome = 'same' OR outcome = 'different' OR outcome = 'error'
                             OR outcome = 'skipped'),
        live_plan     TEXT,
        shadow_plan   TEXT,
        detail        TEXT,
        decided_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (tenant, shadow_digest, event_id)
    );
    INSERT INTO shadow_decisions_v12 SELECT * FROM shadow_decisions;
    DROP TABLE shadow_decisions;
    ALTER TABLE shadow_decisions_v12 RENAME TO shadow_decisions;",
    // 13: mirrored bodies carry a version (a random number each writer picks
    // for each body it stores; 0 for the rows written before), so that a
    // read can tell the process's parsed copy is current without copying
    // the body out. A conversation's body moves last: the columns read
    // for every event's list no longer sit behind it.
    "ALTER TABLE mirror_customers ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE mirror_conversations_v13 (
        tenant          TEXT    NOT NULL,
        conversation_id TEXT    NOT NULL,
        customer_id     TEXT    NOT NULL,
        created_at_ms   INTEGER NOT NULL,
        updated_at_ms   INTEGER NOT NULL,
        seen_at_ms      INTEGER NOT NULL,
        version         INTEGER NOT NULL DEFAULT 0,
        body            TEXT    NOT NULL,
        PRIMARY KEY (tenant, conversation_id)
    );
    INSERT INTO mirror_conversations_v13
        (tenant, conversation_id, customer_id, created_at_ms, updated_at_ms, seen_at_ms, body)
        SELECT tenant, conversation_id, customer_id, created_at_ms, updated_at_ms, seen_at_ms,
               body FROM mirror_conversations;
    DROP TABLE mirror_conversations;
    ALTER TABLE mirror_conversations_v13 RENAME TO mirror_conversations;
    CREATE INDEX mirror_conversations_customer
        ON mirror_conversations (tenant, customer_id, created_at_ms);",
    // 14: a customer's newest conversations (read for every event) come
    // out of the index in the order asked for, ties by id included, instead
    // of through a temporary B-tree built on every read.
    "DROP INDEX mirror_conversations_customer;
    CREATE INDEX mirror_conversations_customer
        ON mirror_conversations (tenant, customer_id, created_at_ms, conversation_id);",
];

/// Connection-level settings. WAL lets readers run while a writer commits
/// and survives `kill -9`; `synchronous = NORMAL` is durable in WAL mode up
/// to the last checkpointed commit of a power loss, which is the usual
/// trade-off for an inbox that the sender retries into.
pub(super) fn prepare(conn: &Connection) -> Result<(), StoreError> {
    // `journal_mode` answers with a row, so it cannot go through `execute`.
    let _mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| StoreError::query("set WAL", e))?;
    // Temporary files in memory: above all the sub-journal that lets a
    // savepoint be rolled back, which SQLite otherwise moves to a file once
    // it passes 64 KiB and then writes a page at a time for the rest of
    // the group transaction.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(|e| StoreError::query("set pragmas", e))
}

/// Brings the schema up to date, one transaction per migration.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| StoreError::query("read schema version", e))?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::TooNew {
            found: current,
            supported,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        conn.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {version}; COMMIT;"
        ))
        .map_err(|source| {
            let _ = conn.execute_batch("ROLLBACK");
            StoreError::Migrate {
                version,
                source: source.into(),
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_version(conn: &Connection, version: usize) {
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).expect("migration");
        }
        conn.pragma_update(None, "user_version", version as i64)
            .expect("version");
    }

    /// PF7: a savepoint's sub-journal stays in memory, never in a file
    /// written a page at a time; a large savepoint rolls back whole.
    #[test]
    fn pf7_savepoints_are_journaled_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join("db.sqlite")).expect("open");
        prepare(&conn).expect("prepare");
        let store: i64 = conn
            .query_row("PRAGMA temp_store", [], |row| row.get(0))
            .expect("temp_store");
        assert_eq!(store, 2, "MEMORY");
        conn.execute_batch(
            "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB);
             BEGIN IMMEDIATE;
             SAVEPOINT s;",
        )
        .expect("begin");
        for k in 0..64 {
            conn.execute("INSERT INTO t VALUES (?1, zeroblob(3000))", [k])
                .expect("insert");
        }
        conn.execute_batch("ROLLBACK TO s; RELEASE s; COMMIT;")
            .expect("roll back");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .expect("count");
        assert_eq!(rows, 0);
    }

    /// Migration 12 rebuilds the inbox, outcomes and shadow decisions:
    /// their rows stay, the inbox's numbering goes on after the highest
    /// number it ever gave (even one whose row is gone), and the CHECK
    /// constraints still refuse an unknown status.
    #[test]
    fn migration_12_keeps_rows_and_the_inbox_numbering() {
        let conn = Connection::open_in_memory().expect("open");
        at_version(&conn, 11);
        let insert = |event: &str| {
            conn.execute(
                "INSERT INTO inbox (tenant, event_id, source, session_id, customer_key, at_ms, at, body)
                 VALUES ('acme', ?1, 'test', 's', 'k', 1, 't', '{}')",
                [event],
            )
            .expect("insert");
        };
        insert("e1");
        insert("e2");
        conn.execute("DELETE FROM inbox WHERE event_id = 'e2'", [])
            .expect("delete");
        conn.execute(
            "INSERT INTO outcomes (tenant, event_id, plan, state, context)
             VALUES ('acme', 'e1', 'p', 'applied', 'c')",
            [],
        )
        .expect("outcome");
        conn.execute(
            "INSERT INTO shadow_decisions (tenant, event_id, shadow_digest, outcome)
             VALUES ('acme', 'e1', 'd', 'same')",
            [],
        )
        .expect("shadow");

        migrate(&conn).expect("migrate");

        insert("e3");
        let seqs: Vec<(i64, String)> = conn
            .prepare("SELECT seq, event_id FROM inbox ORDER BY seq")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("inbox");
        assert_eq!(seqs, [(1, "e1".to_string()), (3, "e3".to_string())]);
        let (plan, state, context): (String, String, String) = conn
            .query_row(
                "SELECT plan, state, context FROM outcomes WHERE event_id = 'e1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("outcome kept");
        assert_eq!(
            (plan.as_str(), state.as_str(), context.as_str()),
            ("p", "applied", "c")
        );
        let shadows: i64 = conn
            .query_row("SELECT count(*) FROM shadow_decisions", [], |r| r.get(0))
            .expect("shadow kept");
        assert_eq!(shadows, 1);
        for refused in [
            "UPDATE inbox SET status = 'lost'",
            "UPDATE outcomes SET state = 'lost'",
            "UPDATE shadow_decisions SET outcome = 'lost'",
        ] {
            let error = conn.execute(refused, []).expect_err(refused);
            assert!(error.to_string().contains("CHECK"), "{refused}: {error}");
        }
    }

    #[test]
    fn migration_13_keeps_mirrored_bodies_as_of_unknown_version() {
        let conn = Connection::open_in_memory().expect("open");
        at_version(&conn, 12);
        conn.execute_batch(
            "INSERT INTO mirror_customers (tenant, customer_id, body, updated_at_ms, seen_at_ms)
             VALUES ('acme', 'c1', '{\"c\":1}', 10, 20);
             INSERT INTO mirror_conversations
               (tenant, conversation_id, customer_id, created_at_ms, body, updated_at_ms, seen_at_ms)
             VALUES ('acme', 'v1', 'c1', 5, '{\"v\":1}', 30, 40);",
        )
        .expect("rows");

        migrate(&conn).expect("migrate");

        let customer: (String, i64, i64, i64) = conn
            .query_row(
                "SELECT body, updated_at_ms, seen_at_ms, version FROM mirror_customers",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect("customer kept");
        assert_eq!(customer, ("{\"c\":1}".to_string(), 10, 20, 0));
        let conversation: (String, String, i64, i64, i64, String, i64) = conn
            .query_row(
                "SELECT conversation_id, customer_id, created_at_ms, updated_at_ms, seen_at_ms,
                        body, version FROM mirror_conversations",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .expect("conversation kept");
        assert_eq!(
            conversation,
            ("v1".into(), "c1".into(), 5, 30, 40, "{\"v\":1}".into(), 0)
        );
        let indexed: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'mirror_conversations_customer'",
                [],
                |r| r.get(0),
            )
            .expect("index");
        assert_eq!(indexed, 1, "the customer index is rebuilt");
    }
}
