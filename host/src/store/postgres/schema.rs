//! Numbered migrations, run at open under one advisory lock so that replicas
//! starting together migrate exactly once. A migration is never edited once
//! released; the next change is a new entry.
//!
//! The tables are SQLite's (`../sqlite/schema.rs`) at its latest version,
//! with PostgreSQL types: text keys sort bytewise (`COLLATE "C"`, as SQLite's
//! `BINARY`), timestamps are text in SQLite's format (`sb_now()`), JSON is
//! text, flags are booleans.

use super::{Postgres, Queries};
use crate::store::StoreError;

/// The advisory lock (bigint key space) held while migrating: "SWITCHBD".
const MIGRATION_LOCK: i64 = 0x5357_4954_4348_4244;

/// Migrations in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite has at its version 9, in one step (nothing was
    // released on PostgreSQL before it).
    r#"
    CREATE FUNCTION sb_now() RETURNS text LANGUAGE sql VOLATILE AS $fn$
        SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    $fn$;

    CREATE TABLE inbox (
        seq          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant       TEXT    COLLATE "C" NOT NULL,
        event_id     TEXT    COLLATE "C" NOT NULL,
        source       TEXT    COLLATE "C" NOT NULL,
        session_id   TEXT    COLLATE "C" NOT NULL,
        customer_key TEXT    COLLATE "C" NOT NULL,
        at_ms        BIGINT  NOT NULL,
        at           TEXT    COLLATE "C" NOT NULL,
        body         TEXT    NOT NULL,
        status       TEXT    COLLATE "C" NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'done', 'failed', 'dead', 'skipped')),
        reason       TEXT,
        attempts     INTEGER NOT NULL DEFAULT 0,
        received_at  TEXT    COLLATE "C" NOT NULL DEFAULT sb_now(),
        UNIQUE (tenant, event_id)
    );
    CREATE INDEX inbox_pending ON inbox (tenant, status, at_ms, seq);
    CREATE INDEX inbox_customer ON inbox (tenant, customer_key, status, at_ms, seq);
    CREATE INDEX inbox_status ON inbox (status, tenant, customer_key);

    CREATE TABLE cursors (
        tenant     TEXT COLLATE "C" NOT NULL,
        source     TEXT COLLATE "C" NOT NULL,
        value      TEXT NOT NULL,
        updated_at TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (tenant, source)
    );

    CREATE TABLE chat_messages (
        tenant     TEXT   COLLATE "C" NOT NULL,
        chat_id    TEXT   COLLATE "C" NOT NULL,
        message_id TEXT   COLLATE "C" NOT NULL,
        at_ms      BIGINT NOT NULL,
        sender     TEXT   NOT NULL,
        content    TEXT   NOT NULL,
        PRIMARY KEY (tenant, chat_id, message_id)
    );

    CREATE TABLE session_links (
        tenant          TEXT COLLATE "C" NOT NULL,
        session_id      TEXT COLLATE "C" NOT NULL,
        conversation_id TEXT COLLATE "C" NOT NULL,
        customer_id     TEXT COLLATE "C" NOT NULL,
        linked_at       TEXT COLLATE "C" NOT NULL DEFAULT sb_now(),
        PRIMARY KEY (tenant, session_id)
    );

    CREATE TABLE conversation_meta (
        tenant          TEXT    COLLATE "C" NOT NULL,
        conversation_id TEXT    COLLATE "C" NOT NULL,
        session_id      TEXT    COLLATE "C",
        channel         TEXT,
        menu_selection  TEXT,
        voicemail       BOOLEAN NOT NULL DEFAULT FALSE,
        direction       TEXT,
        PRIMARY KEY (tenant, conversation_id)
    );

    -- module_version is a u32: BIGINT holds every value.
    CREATE TABLE outcomes (
        tenant         TEXT   COLLATE "C" NOT NULL,
        event_id       TEXT   COLLATE "C" NOT NULL,
        module_digest  TEXT,
        module_version BIGINT,
        plan           TEXT,
        state          TEXT   COLLATE "C" NOT NULL
                       CHECK (state IN ('decided', 'applied', 'failed')),
        detail         TEXT,
        decided_at     TEXT   COLLATE "C" NOT NULL DEFAULT sb_now(),
        updated_at     TEXT   COLLATE "C" NOT NULL DEFAULT sb_now(),
        context        TEXT,
        PRIMARY KEY (tenant, event_id)
    );

    CREATE TABLE field_provisioning (
        tenant         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        provisioned_at TEXT COLLATE "C" NOT NULL,
        fields         TEXT NOT NULL
    );

    CREATE TABLE status_sync_agents (
        tenant        TEXT COLLATE "C" NOT NULL,
        agent_email   TEXT COLLATE "C" NOT NULL,
        pending       TEXT,
        last_applied  TEXT,
        last_decision TEXT,
        last_error    TEXT,
        updated_at    TEXT COLLATE "C" NOT NULL DEFAULT sb_now(),
        PRIMARY KEY (tenant, agent_email)
    );

    CREATE TABLE sessions (
        tenant     TEXT COLLATE "C" NOT NULL,
        session_id TEXT COLLATE "C" NOT NULL,
        state      TEXT NOT NULL,
        updated_at TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (tenant, session_id)
    );

    CREATE TABLE attachments (
        tenant        TEXT    COLLATE "C" NOT NULL,
        key           TEXT    COLLATE "C" NOT NULL,
        attachment_id TEXT    NOT NULL,
        upload        TEXT    NOT NULL,
        uploaded      BOOLEAN NOT NULL DEFAULT FALSE,
        created_at    TEXT    COLLATE "C" NOT NULL DEFAULT sb_now(),
        PRIMARY KEY (tenant, key)
    );

    CREATE TABLE mirror_customers (
        tenant        TEXT   COLLATE "C" NOT NULL,
        customer_id   TEXT   COLLATE "C" NOT NULL,
        body          TEXT   NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        seen_at_ms    BIGINT NOT NULL,
        PRIMARY KEY (tenant, customer_id)
    );
    CREATE TABLE mirror_keys (
        tenant      TEXT   COLLATE "C" NOT NULL,
        kind        TEXT   COLLATE "C" NOT NULL,
        value       TEXT   COLLATE "C" NOT NULL,
        customer_id TEXT   COLLATE "C",
        seen_at_ms  BIGINT NOT NULL,
        PRIMARY KEY (tenant, kind, value)
    );
    CREATE TABLE mirror_conversations (
        tenant          TEXT   COLLATE "C" NOT NULL,
        conversation_id TEXT   COLLATE "C" NOT NULL,
        customer_id     TEXT   COLLATE "C" NOT NULL,
        created_at_ms   BIGINT NOT NULL,
        body            TEXT   NOT NULL,
        updated_at_ms   BIGINT NOT NULL,
        seen_at_ms      BIGINT NOT NULL,
        PRIMARY KEY (tenant, conversation_id)
    );
    CREATE INDEX mirror_conversations_customer
        ON mirror_conversations (tenant, customer_id, created_at_ms);
    CREATE TABLE mirror_lists (
        tenant       TEXT   COLLATE "C" NOT NULL,
        customer_id  TEXT   COLLATE "C" NOT NULL,
        listed_at_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, customer_id)
    );

    CREATE TABLE shadow_decisions (
        tenant        TEXT COLLATE "C" NOT NULL,
        event_id      TEXT COLLATE "C" NOT NULL,
        shadow_digest TEXT COLLATE "C" NOT NULL,
        outcome       TEXT COLLATE "C" NOT NULL
                      CHECK (outcome IN ('same', 'different', 'error', 'skipped')),
        live_plan     TEXT,
        shadow_plan   TEXT,
        detail        TEXT,
        decided_at    TEXT COLLATE "C" NOT NULL DEFAULT sb_now(),
        PRIMARY KEY (tenant, shadow_digest, event_id)
    );
    "#,
    // 2: replicas: heartbeats, customer leases, leaders (see
    // `coordination.rs`), and the module registry every replica reads
    // (versions with their bytes, the live version, the shadow).
    r#"
    CREATE TABLE replicas (
        id         TEXT COLLATE "C" PRIMARY KEY,
        started_at TEXT NOT NULL,
        seen_at    TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE customer_leases (
        tenant       TEXT COLLATE "C" NOT NULL,
        customer_key TEXT COLLATE "C" NOT NULL,
        replica      TEXT COLLATE "C" NOT NULL,
        since        TEXT NOT NULL,
        PRIMARY KEY (tenant, customer_key)
    );
    CREATE INDEX customer_leases_replica ON customer_leases (replica);
    CREATE TABLE leaders (
        tenant  TEXT COLLATE "C" NOT NULL,
        role    TEXT COLLATE "C" NOT NULL,
        replica TEXT COLLATE "C" NOT NULL,
        since   TEXT NOT NULL,
        PRIMARY KEY (tenant, role)
    );
    CREATE TABLE module_blobs (
        tenant TEXT COLLATE "C" NOT NULL,
        digest TEXT COLLATE "C" NOT NULL,
        bytes  BYTEA NOT NULL,
        PRIMARY KEY (tenant, digest)
    );
    CREATE TABLE module_versions (
        tenant      TEXT COLLATE "C" NOT NULL,
        version     INTEGER NOT NULL,
        digest      TEXT COLLATE "C" NOT NULL,
        source      TEXT NOT NULL,
        deployed_at TEXT NOT NULL,
        PRIMARY KEY (tenant, version)
    );
    CREATE TABLE module_live (
        tenant  TEXT COLLATE "C" PRIMARY KEY,
        version INTEGER NOT NULL
    );
    CREATE TABLE module_shadow (
        tenant TEXT COLLATE "C" PRIMARY KEY,
        digest TEXT COLLATE "C" NOT NULL,
        source TEXT NOT NULL,
        since  TEXT NOT NULL
    );
    "#,
    // 3: mirrored bodies carry a version (a random number each writer picks
    // for each body it stores; 0 for the rows written before), so that a
    // read can tell a replica's parsed copy is current without the body.
    r#"
    ALTER TABLE mirror_customers ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE mirror_conversations ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
    "#,
    // 4: a customer's newest conversations come out of the index in the
    // order asked for, ties by id included, with no sort step.
    r#"
    DROP INDEX mirror_conversations_customer;
    CREATE INDEX mirror_conversations_customer
        ON mirror_conversations (tenant, customer_id, created_at_ms, conversation_id);
    "#,
];

/// The schema version this build migrates to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to date in one transaction holding
/// [`MIGRATION_LOCK`]: a replica that starts while another migrates waits,
/// then finds the schema current. Refuses a schema newer than this build.
pub(super) fn migrate(store: &Postgres) -> Result<(), StoreError> {
    const OP: &str = "migrate";
    store.with(OP, |client| {
        let mut tx = client
            .transaction()
            .map_err(|e| StoreError::query("begin migration", e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(|e| StoreError::query("lock the schema for migration", e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version    BIGINT PRIMARY KEY,
                 applied_at TEXT NOT NULL DEFAULT (to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))
             )",
        )
        .map_err(|e| StoreError::query("create the schema version table", e))?;
        let current: i64 = tx
            .query_one("SELECT COALESCE(max(version), 0) FROM schema_version", &[])
            .and_then(|row| row.try_get(0))
            .map_err(|e| StoreError::query("read schema version", e))?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        let done = usize::try_from(current).unwrap_or(0);
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
            let migrate = |e: postgres::Error| StoreError::Migrate {
                version,
                source: e.into(),
            };
            tx.batch_execute(sql).map_err(migrate)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&version],
            )
            .map_err(migrate)?;
        }
        tx.commit()
            .map_err(|e| StoreError::query("commit migration", e))
    })
}
