//! PostgreSQL: inbox.

use super::{backoff, count, get, limit, transient, Postgres, Queries, RETRIES};
use crate::store::inbox::*;
use crate::store::StoreError;
use postgres::Row;
use std::collections::HashSet;

const COLUMNS: &str = "seq, tenant, event_id, source, session_id, customer_key, at_ms, at, body, \
                       status, reason, attempts, received_at";

fn row_to_inbox(row: &Row, op: &'static str) -> Result<InboxRow, StoreError> {
    let body: String = get(row, 8, op)?;
    let status: String = get(row, 9, op)?;
    let attempts: i32 = get(row, 11, op)?;
    Ok(InboxRow {
        seq: get(row, 0, op)?,
        tenant: get(row, 1, op)?,
        event_id: get(row, 2, op)?,
        source: get(row, 3, op)?,
        session_id: get(row, 4, op)?,
        customer_key: get(row, 5, op)?,
        at_ms: get(row, 6, op)?,
        at: get(row, 7, op)?,
        body: serde_json::value::RawValue::from_string(body)
            .map_err(|e| StoreError::json("read inbox", e))?
            .into(),
        status: InboxStatus::parse(&status),
        reason: get(row, 10, op)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::query(op, format!("negative attempt count {attempts}")))?,
        received_at: get(row, 12, op)?,
    })
}

fn rows_to_inbox(rows: &[Row], op: &'static str) -> Result<Vec<InboxRow>, StoreError> {
    rows.iter().map(|row| row_to_inbox(row, op)).collect()
}

/// Inserts one event; `false` when `(tenant, event_id)` was already there.
pub(super) fn insert(conn: &mut impl Queries, event: &NewInboxEvent) -> Result<bool, StoreError> {
    insert_many(conn, std::slice::from_ref(event)).map(|new| new == 1)
}

/// Inserts `events` in order, in one statement; how many were new. An event
/// whose `(tenant, event_id)` is already stored, or came earlier in
/// `events`, is left out (the first one is kept), as inserting them one by
/// one would.
pub(super) fn insert_many(
    conn: &mut impl Queries,
    events: &[NewInboxEvent],
) -> Result<usize, StoreError> {
    let mut seen = HashSet::new();
    let mut columns = Columns::default();
    for event in events {
        if !seen.insert((event.tenant.as_str(), event.event_id.as_str())) {
            continue;
        }
        let body = event.body.get();
        columns.tenant.push(&event.tenant);
        columns.event_id.push(&event.event_id);
        columns.source.push(&event.source);
        columns.session_id.push(&event.session_id);
        columns.customer_key.push(&event.customer_key);
        columns.at_ms.push(event.at_ms);
        columns.at.push(&event.at);
        columns.body.push(body);
    }
    if columns.tenant.is_empty() {
        return Ok(0);
    }
    // In order: `seq` numbers the rows as they arrived.
    conn.execute(
        "INSERT INTO inbox (tenant, event_id, source, session_id, customer_key, at_ms, at, body)
         SELECT tenant, event_id, source, session_id, customer_key, at_ms, at, body
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[],
                     $7::text[], $8::text[])
              WITH ORDINALITY
              AS e (tenant, event_id, source, session_id, customer_key, at_ms, at, body, n)
         ORDER BY e.n
         ON CONFLICT (tenant, event_id) DO NOTHING",
        &[
            &columns.tenant,
            &columns.event_id,
            &columns.source,
            &columns.session_id,
            &columns.customer_key,
            &columns.at_ms,
            &columns.at,
            &columns.body,
        ],
    )
    .map(count)
    .map_err(|e| StoreError::query("insert inbox", e))
}

/// Inbox rows column by column, as [`insert_many`] sends them.
#[derive(Default)]
struct Columns<'a> {
    tenant: Vec<&'a str>,
    event_id: Vec<&'a str>,
    source: Vec<&'a str>,
    session_id: Vec<&'a str>,
    customer_key: Vec<&'a str>,
    at_ms: Vec<i64>,
    at: Vec<&'a str>,
    body: Vec<&'a str>,
}

impl Postgres {
    fn list_inbox(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<InboxRow>, StoreError> {
        self.with(op, |c| {
            let rows = c.query(sql, params).map_err(|e| StoreError::query(op, e))?;
            rows_to_inbox(&rows, op)
        })
    }

    fn set_status(
        &self,
        seq: i64,
        status: InboxStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        const OP: &str = "update inbox status";
        self.with(OP, |c| {
            c.execute(
                "UPDATE inbox SET status = $2, reason = $3, attempts = attempts + 1 WHERE seq = $1",
                &[&seq, &status.as_str(), &reason],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }
}

impl InboxStore for Postgres {
    fn insert_event(&self, event: &NewInboxEvent) -> Result<bool, StoreError> {
        self.with("insert inbox", |c| insert(c, event))
    }

    fn insert_events(&self, events: &[NewInboxEvent]) -> Result<usize, StoreError> {
        // One statement, so all or nothing. Two batches sharing events,
        // inserted in different orders, can deadlock on the unique index.
        // The victim was rolled back whole: it runs again once the other had
        // time to commit.
        self.with("insert inbox", |c| {
            let mut attempt = 0;
            loop {
                match insert_many(c, events) {
                    Err(e) if attempt < RETRIES && transient(&e) => {
                        attempt += 1;
                        backoff(attempt);
                    }
                    done => return done,
                }
            }
        })
    }

    fn pending(&self, tenant: Option<&str>, n: usize) -> Result<Vec<InboxRow>, StoreError> {
        const OP: &str = "list pending";
        let n = limit(n);
        match tenant {
            Some(tenant) => self.list_inbox(
                OP,
                &format!(
                    "SELECT {COLUMNS} FROM inbox WHERE tenant = $1 AND status = 'pending'
                     ORDER BY at_ms, seq LIMIT $2"
                ),
                &[&tenant, &n],
            ),
            None => self.list_inbox(
                OP,
                &format!(
                    "SELECT {COLUMNS} FROM inbox WHERE status = 'pending'
                     ORDER BY at_ms, seq LIMIT $1"
                ),
                &[&n],
            ),
        }
    }

    fn pending_for_customer(
        &self,
        tenant: &str,
        customer_key: &str,
        n: usize,
    ) -> Result<Vec<InboxRow>, StoreError> {
        self.list_inbox(
            "list customer pending",
            &format!(
                "SELECT {COLUMNS} FROM inbox
                 WHERE tenant = $1 AND customer_key = $2 AND status = 'pending'
                 ORDER BY at_ms, seq LIMIT $3"
            ),
            &[&tenant, &customer_key, &limit(n)],
        )
    }

    fn events(&self, tenant: &str) -> Result<Vec<InboxRow>, StoreError> {
        self.list_inbox(
            "list events",
            &format!("SELECT {COLUMNS} FROM inbox WHERE tenant = $1 ORDER BY at_ms, seq"),
            &[&tenant],
        )
    }

    fn session_events(
        &self,
        tenant: &str,
        customer_key: &str,
        session_id: &str,
    ) -> Result<Vec<InboxRow>, StoreError> {
        self.list_inbox(
            "list session events",
            &format!(
                "SELECT {COLUMNS} FROM inbox
                 WHERE tenant = $1 AND customer_key = $2 AND session_id = $3
                 ORDER BY at_ms, seq"
            ),
            &[&tenant, &customer_key, &session_id],
        )
    }

    fn event(&self, tenant: &str, event_id: &str) -> Result<Option<InboxRow>, StoreError> {
        Ok(self
            .list_inbox(
                "get event",
                &format!("SELECT {COLUMNS} FROM inbox WHERE tenant = $1 AND event_id = $2"),
                &[&tenant, &event_id],
            )?
            .pop())
    }

    fn mark_done(&self, seq: i64) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Done, None)
    }

    fn mark_failed(&self, seq: i64, reason: &str) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Failed, Some(reason))
    }

    fn settle(
        &self,
        seq: i64,
        tenant: &str,
        event_id: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        use crate::store::links::{LinkStore as _, OutcomeState};
        match reason {
            None => self.mark_done(seq)?,
            Some(reason) => self.mark_failed(seq, reason)?,
        }
        let state = match reason {
            None => OutcomeState::Applied,
            Some(_) => OutcomeState::Failed,
        };
        self.set_outcome(tenant, event_id, state, reason)
    }

    fn mark_dead(&self, seq: i64, reason: &str) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Dead, Some(reason))
    }

    fn pending_customers(&self) -> Result<Vec<(String, String)>, StoreError> {
        const OP: &str = "list pending customers";
        self.with(OP, |c| {
            c.query(
                "SELECT DISTINCT tenant, customer_key FROM inbox WHERE status = 'pending'",
                &[],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .iter()
            .map(|r| Ok((get(r, 0, OP)?, get(r, 1, OP)?)))
            .collect()
        })
    }

    fn customer_held(&self, tenant: &str, customer_key: &str) -> Result<bool, StoreError> {
        const OP: &str = "check dead letters";
        self.with(OP, |c| {
            let row = c
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM inbox
                      WHERE tenant = $1 AND customer_key = $2 AND status = 'dead')",
                    &[&tenant, &customer_key],
                )
                .map_err(|e| StoreError::query(OP, e))?;
            get(&row, 0, OP)
        })
    }

    fn skip_dead(&self, tenant: &str, event_id: Option<&str>) -> Result<usize, StoreError> {
        const OP: &str = "skip dead letters";
        self.with(OP, |c| {
            c.execute(
                "UPDATE inbox
                 SET status = 'skipped', reason = 'skipped by an operator: ' || COALESCE(reason, '')
                 WHERE tenant = $1 AND status = 'dead' AND ($2::text IS NULL OR event_id = $2)",
                &[&tenant, &event_id],
            )
            .map(count)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn record_attempt(&self, seq: i64, reason: &str) -> Result<(), StoreError> {
        self.set_status(seq, InboxStatus::Pending, Some(reason))
    }

    fn add_chat_message(
        &self,
        tenant: &str,
        chat_id: &str,
        message: &ChatMessage,
    ) -> Result<bool, StoreError> {
        const OP: &str = "insert chat message";
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO chat_messages (tenant, chat_id, message_id, at_ms, sender, content)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant, chat_id, message_id) DO NOTHING",
                &[
                    &tenant,
                    &chat_id,
                    &message.message_id,
                    &message.at_ms,
                    &message.sender,
                    &message.content,
                ],
            )
            .map(|changed| changed == 1)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn chat_messages(&self, tenant: &str, chat_id: &str) -> Result<Vec<ChatMessage>, StoreError> {
        const OP: &str = "list chat messages";
        self.with(OP, |c| {
            c.query(
                "SELECT message_id, at_ms, sender, content FROM chat_messages
                 WHERE tenant = $1 AND chat_id = $2 ORDER BY at_ms, message_id",
                &[&tenant, &chat_id],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .iter()
            .map(|r| {
                Ok(ChatMessage {
                    message_id: get(r, 0, OP)?,
                    at_ms: get(r, 1, OP)?,
                    sender: get(r, 2, OP)?,
                    content: get(r, 3, OP)?,
                })
            })
            .collect()
        })
    }
}
