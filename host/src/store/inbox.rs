//! The inbox: accepted events waiting for the pipeline, and chat messages
//! kept for transcripts.

use super::Cached as _;
use super::{Store, StoreError};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

/// An accepted event to store. `body` is the normalised session event as
/// JSON; the store does not interpret it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInboxEvent {
    pub tenant: String,
    /// Source event id; `(tenant, event_id)` is unique.
    pub event_id: String,
    /// Which intake produced it (`session-events`, `chat-webhook`, `manager-api`).
    pub source: String,
    pub session_id: String,
    /// The key events are ordered by in the pipeline: E.164 phone, SDK
    /// identifier, or the session id when neither is known.
    pub customer_key: String,
    /// Event time, milliseconds since the Unix epoch (the ordering key).
    pub at_ms: i64,
    /// Event time as ISO-8601, as in the body.
    pub at: String,
    pub body: serde_json::Value,
}

/// Processing state of an inbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboxStatus {
    Pending,
    Done,
    Failed,
    /// Transient failures outlasted the maximum event age; holds the
    /// customer's later events until retried or skipped.
    Dead,
    /// A dead letter an operator chose not to apply.
    Skipped,
}

impl InboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "done" => Self::Done,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            "skipped" => Self::Skipped,
            _ => Self::Pending,
        }
    }
}

/// A stored inbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRow {
    /// Insertion sequence; breaks ties between events with the same time.
    pub seq: i64,
    pub tenant: String,
    pub event_id: String,
    pub source: String,
    pub session_id: String,
    pub customer_key: String,
    pub at_ms: i64,
    pub at: String,
    pub body: serde_json::Value,
    pub status: InboxStatus,
    pub reason: Option<String>,
    pub attempts: u32,
    /// When the intake stored it (RFC 3339); the age that bounds retries.
    pub received_at: String,
}

/// One chat message seen through a chat webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub message_id: String,
    pub at_ms: i64,
    /// `end_user`, `agent`, `virtual_agent`, or the sender's display name.
    pub sender: String,
    pub content: String,
}

const COLUMNS: &str = "seq, tenant, event_id, source, session_id, customer_key, at_ms, at, body, \
                       status, reason, attempts, received_at";

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
            body: serde_json::Value::Null,
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
            row.body =
                serde_json::from_str(&body).map_err(|e| StoreError::json("read inbox", e))?;
            Ok(row)
        })
        .collect()
}

/// Inserts one event; `false` when `(tenant, event_id)` was already there.
pub(super) fn insert(conn: &Connection, event: &NewInboxEvent) -> Result<bool, StoreError> {
    let body =
        serde_json::to_string(&event.body).map_err(|e| StoreError::json("write inbox", e))?;
    let changed = conn
        .run(
            "INSERT INTO inbox (tenant, event_id, source, session_id, customer_key, at_ms, at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (tenant, event_id) DO NOTHING",
            rusqlite::params![
                event.tenant,
                event.event_id,
                event.source,
                event.session_id,
                event.customer_key,
                event.at_ms,
                event.at,
                body
            ],
        )
        .map_err(|e| StoreError::query("insert inbox", e))?;
    Ok(changed == 1)
}

impl Store {
    /// Stores one event. Returns `true` if it was new, `false` if an event
    /// with the same `(tenant, event_id)` was already stored (deduplicated).
    pub fn insert_event(&self, event: &NewInboxEvent) -> Result<bool, StoreError> {
        insert(&self.conn(), event)
    }

    /// Stores several events atomically: either all new ones are stored or
    /// none. Returns how many were new.
    pub fn insert_events(&self, events: &[NewInboxEvent]) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(|e| StoreError::query("begin", e))?;
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
    pub fn pending(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<InboxRow>, StoreError> {
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
    pub fn pending_for_customer(
        &self,
        tenant: &str,
        customer_key: &str,
        limit: usize,
    ) -> Result<Vec<InboxRow>, StoreError> {
        let conn = self.conn();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM inbox
                 WHERE tenant = ?1 AND customer_key = ?2 AND status = 'pending'
                 ORDER BY at_ms, seq LIMIT ?3"
            ))
            .map_err(|e| StoreError::query("list customer pending", e))?;
        let rows = stmt
            .query_map((tenant, customer_key, limit), row_to_inbox)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(|e| StoreError::query("list customer pending", e))?;
        drop(stmt);
        decode(rows)
    }

    /// All events of `tenant` in any status, in event-time order (tests,
    /// inspection).
    pub fn events(&self, tenant: &str) -> Result<Vec<InboxRow>, StoreError> {
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
    pub fn session_events(
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
    pub fn event(&self, tenant: &str, event_id: &str) -> Result<Option<InboxRow>, StoreError> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM inbox WHERE tenant = ?1 AND event_id = ?2"),
                (tenant, event_id),
                row_to_inbox,
            )
            .optional()
            .map_err(|e| StoreError::query("get event", e))?;
        Ok(decode(row.into_iter().collect())?.pop())
    }

    /// Marks a row processed.
    pub fn mark_done(&self, seq: i64) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Done, None)
    }

    /// Marks a row failed for good, with the reason.
    pub fn mark_failed(&self, seq: i64, reason: &str) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Failed, Some(reason))
    }

    /// Marks a row dead: its transient failures outlasted the maximum age.
    pub fn mark_dead(&self, seq: i64, reason: &str) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Dead, Some(reason))
    }

    /// Every (tenant, customer key) with pending events: what the scheduler
    /// queues at start and on a rescan.
    pub fn pending_customers(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT DISTINCT tenant, customer_key FROM inbox WHERE status = 'pending'",
            )
            .map_err(|e| StoreError::query("list pending customers", e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(|e| StoreError::query("list pending customers", e))?;
        Ok(rows)
    }

    /// Whether a dead letter holds this customer's events.
    pub fn customer_held(&self, tenant: &str, customer_key: &str) -> Result<bool, StoreError> {
        self.conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM inbox
                  WHERE tenant = ?1 AND customer_key = ?2 AND status = 'dead')",
                (tenant, customer_key),
                |r| r.get(0),
            )
            .map_err(|e| StoreError::query("check dead letters", e))
    }

    /// Marks the tenant's dead letters (or one of them) skipped, releasing
    /// the customers they held. Returns how many.
    pub fn skip_dead(&self, tenant: &str, event_id: Option<&str>) -> Result<usize, StoreError> {
        self.conn()
            .run(
                "UPDATE inbox SET status = 'skipped', reason = 'skipped by an operator: ' || COALESCE(reason, '')
                 WHERE tenant = ?1 AND status = 'dead' AND (?2 IS NULL OR event_id = ?2)",
                (tenant, event_id),
            )
            .map_err(|e| StoreError::query("skip dead letters", e))
    }

    /// Records a failed attempt that will be retried: the row stays pending.
    pub fn record_attempt(&self, seq: i64, reason: &str) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Pending, Some(reason))
    }

    fn set_status(
        &self,
        seq: i64,
        status: InboxStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn()
            .run(
                "UPDATE inbox SET status = ?2, reason = ?3, attempts = attempts + 1 WHERE seq = ?1",
                rusqlite::params![seq, status.as_str(), reason],
            )
            .map(drop)
            .map_err(|e| StoreError::query("update inbox status", e))
    }

    /// Keeps a chat message for the transcript; `false` if already kept.
    pub fn add_chat_message(
        &self,
        tenant: &str,
        chat_id: &str,
        message: &ChatMessage,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn()
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
    pub fn chat_messages(
        &self,
        tenant: &str,
        chat_id: &str,
    ) -> Result<Vec<ChatMessage>, StoreError> {
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
