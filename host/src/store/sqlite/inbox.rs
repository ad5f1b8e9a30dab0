//! SQLite: inbox.

use super::{Cached as _, Savepoint, Sqlite};
use crate::store::inbox::*;
use crate::store::StoreError;
use rusqlite::{Connection, OptionalExtension, Row};

const COLUMNS: &str = "seq, tenant, event_id, source, session_id, customer_key, at_ms, at, body, \
                       status, reason, attempts, received_at";

/// A customer's pending events in event-time order (the pipeline's read
/// before each batch; its limit is in the text, see [`super::limit`]).
pub(super) fn customer_queue_sql(limit: usize) -> String {
    format!(
        "SELECT {COLUMNS} FROM inbox INDEXED BY inbox_queue
         WHERE tenant = ?1 AND customer_key = ?2 AND status = 'pending'
         ORDER BY at_ms, seq {}",
        super::limit(limit)
    )
}

fn row_to_inbox(row: &Row<'_>) -> rusqlite::Result<(InboxRow, String)> {
    let body: String = row.get(8)?;
    let status: String = row.get(9)?;
    Ok((
        InboxRow {
            seq: row.get(0)?,
            tenant: row.get(1)?,
            event_id: row.get(2)?,
            source: row.get(3)?,
            session_id: row.get(4)?,
            customer_key: row.get(5)?,
            at_ms: row.get(6)?,
            at: row.get(7)?,
            body: serde_json::value::RawValue::NULL.to_owned().into(),
            status: InboxStatus::parse(&status),
            reason: row.get(10)?,
            attempts: row.get(11)?,
            received_at: row.get(12)?,
        },
        body,
    ))
}

fn decode(rows: Vec<(InboxRow, String)>) -> Result<Vec<InboxRow>, StoreError> {
    rows.into_iter()
        .map(|(mut row, body)| {
            row.body = serde_json::value::RawValue::from_string(body)
                .map_err(|e| StoreError::json("read inbox", e))?
                .into();
            Ok(row)
        })
        .collect()
}

/// Stores one event (the intake, for every event).
pub(super) const INSERT: &str =
    "INSERT INTO inbox (tenant, event_id, source, session_id, customer_key, at_ms, at, body,
                        received_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
     ON CONFLICT (tenant, event_id) DO NOTHING";

/// Sets an event's status and reason, counting the attempt (the pipeline,
/// for every event).
pub(super) const SET_STATUS: &str =
    "UPDATE inbox SET status = ?2, reason = ?3, attempts = attempts + 1 WHERE seq = ?1";

/// Inserts one event; `false` when `(tenant, event_id)` was already there.
pub(super) fn insert(conn: &Connection, event: &NewInboxEvent) -> Result<bool, StoreError> {
    let body = event.body.get();
    let changed = conn
        .run(
            INSERT,
            rusqlite::params![
                event.tenant,
                event.event_id,
                event.source,
                event.session_id,
                event.customer_key,
                event.at_ms,
                event.at,
                body,
                super::now_text()
            ],
        )
        .map_err(|e| StoreError::query("insert inbox", e))?;
    Ok(changed == 1)
}

impl InboxStore for Sqlite {
    /// Stores one event. Returns `true` if it was new, `false` if an event
    /// with the same `(tenant, event_id)` was already stored (deduplicated).
    fn insert_event(&self, event: &NewInboxEvent) -> Result<bool, StoreError> {
        insert(&*self.write()?, event)
    }

    /// Stores several events atomically: either all new ones are stored or
    /// none. Returns how many were new.
    fn insert_events(&self, events: &[NewInboxEvent]) -> Result<usize, StoreError> {
        let conn = self.write()?;
        let tx = Savepoint::open(&conn).map_err(|e| StoreError::query("begin", e))?;
        let mut new = 0;
        for event in events {
            if insert(&tx, event)? {
                new += 1;
            }
        }
        tx.commit().map_err(|e| StoreError::query("commit", e))?;
        Ok(new)
    }

    /// Pending events of `tenant` (all tenants if `None`), oldest event time
    /// first, ties in arrival order; at most `limit`.
    fn pending(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<InboxRow>, StoreError> {
        let conn = self.conn();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match tenant {
            Some(tenant) => {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM inbox WHERE tenant = ?1 AND status = 'pending'
                         ORDER BY at_ms, seq LIMIT ?2"
                    ))
                    .map_err(|e| StoreError::query("list pending", e))?;
                let rows = stmt
                    .query_map((tenant, limit), row_to_inbox)
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    .map_err(|e| StoreError::query("list pending", e))?;
                rows
            }
            None => {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM inbox WHERE status = 'pending'
                         ORDER BY at_ms, seq LIMIT ?1"
                    ))
                    .map_err(|e| StoreError::query("list pending", e))?;
                let rows = stmt
                    .query_map([limit], row_to_inbox)
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    .map_err(|e| StoreError::query("list pending", e))?;
                rows
            }
        };
        decode(rows)
    }

    /// Pending events of one customer of one tenant, in event-time order.
    fn pending_for_customer(
        &self,
        tenant: &str,
        customer_key: &str,
        limit: usize,
    ) -> Result<Vec<InboxRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&customer_queue_sql(limit))
            .map_err(|e| StoreError::query("list customer pending", e))?;
        let rows = stmt
            .query_map((tenant, customer_key), row_to_inbox)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(|e| StoreError::query("list customer pending", e))?;
        drop(stmt);
        decode(rows)
    }

    /// All events of `tenant` in any status, in event-time order (tests,
    /// inspection).
    fn events(&self, tenant: &str) -> Result<Vec<InboxRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM inbox WHERE tenant = ?1 ORDER BY at_ms, seq"
            ))
            .map_err(|e| StoreError::query("list events", e))?;
        let rows = stmt
            .query_map([tenant], row_to_inbox)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(|e| StoreError::query("list events", e))?;
        drop(stmt);
        decode(rows)
    }

    /// The events of one session, in the order its customer's queue takes
    /// them (`customer_key` is the session's queue, which the inbox indexes).
    fn session_events(
        &self,
        tenant: &str,
        customer_key: &str,
        session_id: &str,
    ) -> Result<Vec<InboxRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM inbox
                 WHERE tenant = ?1 AND customer_key = ?2 AND session_id = ?3
                 ORDER BY at_ms, seq"
            ))
            .map_err(|e| StoreError::query("list session events", e))?;
        let rows = stmt
            .query_map((tenant, customer_key, session_id), row_to_inbox)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(|e| StoreError::query("list session events", e))?;
        decode(rows)
    }

    /// One event by its id.
    fn event(&self, tenant: &str, event_id: &str) -> Result<Option<InboxRow>, StoreError> {
        let row = self
            .conn()
            .row(
                &format!("SELECT {COLUMNS} FROM inbox WHERE tenant = ?1 AND event_id = ?2"),
                (tenant, event_id),
                row_to_inbox,
            )
            .optional()
            .map_err(|e| StoreError::query("get event", e))?;
        Ok(decode(row.into_iter().collect())?.pop())
    }

    /// Marks a row processed.
    fn mark_done(&self, seq: i64) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Done, None)
    }

    /// Marks a row failed for good, with the reason.
    fn mark_failed(&self, seq: i64, reason: &str) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Failed, Some(reason))
    }

    /// Marks a row dead: its transient failures outlasted the maximum age.
    fn mark_dead(&self, seq: i64, reason: &str) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Dead, Some(reason))
    }

    /// One transaction: one commit, one set of WAL frames.
    fn settle(
        &self,
        seq: i64,
        tenant: &str,
        event_id: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let (status, state) = match reason {
            None => (InboxStatus::Done, "applied"),
            Some(_) => (InboxStatus::Failed, "failed"),
        };
        let conn = self.write()?;
        let tx = Savepoint::open(&conn).map_err(|e| StoreError::query("settle event", e))?;
        tx.run(SET_STATUS, rusqlite::params![seq, status.as_str(), reason])
            .and_then(|_| {
                tx.run(
                    super::links::SET_OUTCOME,
                    (tenant, event_id, state, reason, super::now_text()),
                )
            })
            .and_then(|_| tx.commit())
            .map_err(|e| StoreError::query("settle event", e))
    }

    /// Every (tenant, customer key) with pending events: what the scheduler
    /// queues at start and on a rescan.
    fn pending_customers(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                // The partial index holds only pending rows; the planner
                // would rather walk the full customer index.
                "SELECT DISTINCT tenant, customer_key FROM inbox INDEXED BY inbox_queue
                 WHERE status = 'pending'",
            )
            .map_err(|e| StoreError::query("list pending customers", e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(|e| StoreError::query("list pending customers", e))?;
        Ok(rows)
    }

    /// Whether a dead letter holds this customer's events.
    fn customer_held(&self, tenant: &str, customer_key: &str) -> Result<bool, StoreError> {
        self.conn()
            .row(
                "SELECT EXISTS (SELECT 1 FROM inbox
                  WHERE tenant = ?1 AND customer_key = ?2 AND status = 'dead')",
                (tenant, customer_key),
                |r| r.get(0),
            )
            .map_err(|e| StoreError::query("check dead letters", e))
    }

    /// Marks the tenant's dead letters (or one of them) skipped, releasing
    /// the customers they held. Returns how many.
    fn skip_dead(&self, tenant: &str, event_id: Option<&str>) -> Result<usize, StoreError> {
        self.write()?
            .run(
                "UPDATE inbox SET status = 'skipped', reason = 'skipped by an operator: ' || COALESCE(reason, '')
                 WHERE tenant = ?1 AND status = 'dead' AND (?2 IS NULL OR event_id = ?2)",
                (tenant, event_id),
            )
            .map_err(|e| StoreError::query("skip dead letters", e))
    }

    /// Records a failed attempt that will be retried: the row stays pending.
    fn record_attempt(&self, seq: i64, reason: &str) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Pending, Some(reason))
    }

    /// Keeps a chat message for the transcript; `false` if already kept.
    fn add_chat_message(
        &self,
        tenant: &str,
        chat_id: &str,
        message: &ChatMessage,
    ) -> Result<bool, StoreError> {
        let changed = self
            .write()?
            .run(
                "INSERT INTO chat_messages (tenant, chat_id, message_id, at_ms, sender, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant, chat_id, message_id) DO NOTHING",
                rusqlite::params![
                    tenant,
                    chat_id,
                    message.message_id,
                    message.at_ms,
                    message.sender,
                    message.content
                ],
            )
            .map_err(|e| StoreError::query("insert chat message", e))?;
        Ok(changed == 1)
    }

    /// The kept messages of a chat, in time order.
    fn chat_messages(&self, tenant: &str, chat_id: &str) -> Result<Vec<ChatMessage>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT message_id, at_ms, sender, content FROM chat_messages
                 WHERE tenant = ?1 AND chat_id = ?2 ORDER BY at_ms, message_id",
            )
            .map_err(|e| StoreError::query("list chat messages", e))?;
        let rows = stmt
            .query_map((tenant, chat_id), |row| {
                Ok(ChatMessage {
                    message_id: row.get(0)?,
                    at_ms: row.get(1)?,
                    sender: row.get(2)?,
                    content: row.get(3)?,
                })
            })
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(|e| StoreError::query("list chat messages", e))?;
        Ok(rows)
    }
}

impl Sqlite {
    /// Sets a row's status and reason, counting the attempt.
    fn set_status(
        &self,
        seq: i64,
        status: InboxStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write()?
            .run(SET_STATUS, rusqlite::params![seq, status.as_str(), reason])
            .map(drop)
            .map_err(|e| StoreError::query("update inbox status", e))
    }
}
