//! SQLite: mirror.

use super::{Cached as _, Savepoint, Sqlite};
use crate::store::mirror::*;
use crate::store::StoreError;
use rusqlite::OptionalExtension;

/// A row read as `id, body, version, seen_at_ms`.
fn mirrored(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mirrored> {
    Ok(Mirrored {
        id: r.get(0)?,
        body: r.get(1)?,
        version: r.get(2)?,
        seen_at_ms: r.get(3)?,
    })
}

/// A row read as `id, version, seen_at_ms`.
fn stamp(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stamp> {
    Ok(Stamp {
        id: r.get(0)?,
        version: r.get(1)?,
        seen_at_ms: r.get(2)?,
    })
}

impl MirrorStore for Sqlite {
    /// Records a customer Kustomer showed at `seen_at_ms`, with its keys.
    fn mirror_customer(
        &self,
        tenant: &str,
        customer: &MirrorCustomer<'_>,
        seen_at_ms: i64,
    ) -> Result<(), StoreError> {
        let conn = self.write()?;
        let tx = Savepoint::open(&conn).map_err(|e| StoreError::query("begin", e))?;
        tx.run(
            "INSERT INTO mirror_customers
               (tenant, customer_id, body, updated_at_ms, seen_at_ms, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant, customer_id) DO UPDATE SET
               body = CASE WHEN excluded.updated_at_ms >= updated_at_ms
                           THEN excluded.body ELSE body END,
               version = CASE WHEN excluded.updated_at_ms >= updated_at_ms
                              THEN excluded.version ELSE version END,
               updated_at_ms = max(updated_at_ms, excluded.updated_at_ms),
               seen_at_ms = max(seen_at_ms, excluded.seen_at_ms)",
            (
                tenant,
                customer.id,
                customer.body,
                customer.updated_at_ms,
                seen_at_ms,
                customer.version,
            ),
        )
        .map_err(|e| StoreError::query("mirror customer", e))?;
        for (kind, value) in &customer.keys {
            write_key(&tx, tenant, kind, value, customer.id, seen_at_ms)?;
        }
        tx.commit().map_err(|e| StoreError::query("commit", e))
    }

    /// Records that Kustomer found this customer by this key.
    fn mirror_key(
        &self,
        tenant: &str,
        kind: &str,
        value: &str,
        customer_id: &str,
        seen_at_ms: i64,
    ) -> Result<(), StoreError> {
        write_key(
            &*self.write()?,
            tenant,
            kind,
            value,
            customer_id,
            seen_at_ms,
        )
    }

    /// Records that Kustomer had no customer with this key at `seen_at_ms`.
    fn mirror_absent(
        &self,
        tenant: &str,
        kind: &str,
        value: &str,
        seen_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.write()?
            .run(
                "INSERT INTO mirror_keys (tenant, kind, value, customer_id, seen_at_ms)
                 VALUES (?1, ?2, ?3, NULL, ?4)
                 ON CONFLICT (tenant, kind, value) DO UPDATE SET
                   customer_id = NULL, seen_at_ms = excluded.seen_at_ms
                 WHERE excluded.seen_at_ms >= seen_at_ms",
                (tenant, kind, value, seen_at_ms),
            )
            .map(drop)
            .map_err(|e| StoreError::query("mirror absent key", e))
    }

    /// The customer recorded under a key.
    fn mirrored_key(&self, tenant: &str, kind: &str, value: &str) -> Result<KeyLookup, StoreError> {
        let conn = self.conn();
        let key: Option<(Option<String>, i64)> = conn
            .prepare_cached(
                "SELECT customer_id, seen_at_ms FROM mirror_keys
                 WHERE tenant = ?1 AND kind = ?2 AND value = ?3",
            )
            .and_then(|mut s| {
                s.query_row((tenant, kind, value), |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| StoreError::query("read mirror key", e))?;
        match key {
            None => Ok(KeyLookup::Unknown),
            Some((None, seen_at_ms)) => Ok(KeyLookup::Absent { seen_at_ms }),
            Some((Some(id), key_seen)) => {
                let found = read_customer(&conn, tenant, &id)?;
                Ok(found.map_or(KeyLookup::Unknown, |mut c| {
                    // Found through the key: as fresh as the older of the two.
                    c.seen_at_ms = c.seen_at_ms.min(key_seen);
                    KeyLookup::Found(c)
                }))
            }
        }
    }

    /// A mirrored customer.
    fn mirrored_customer(&self, tenant: &str, id: &str) -> Result<Option<Mirrored>, StoreError> {
        read_customer(&self.conn(), tenant, id)
    }

    /// Records a conversation Kustomer showed at `seen_at_ms`.
    fn mirror_conversation(
        &self,
        tenant: &str,
        conversation: &MirrorConversation<'_>,
        seen_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.write()?
            .run(
                "INSERT INTO mirror_conversations
                   (tenant, conversation_id, customer_id, created_at_ms, body, updated_at_ms,
                    seen_at_ms, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (tenant, conversation_id) DO UPDATE SET
                   body = CASE WHEN excluded.updated_at_ms >= updated_at_ms
                               THEN excluded.body ELSE body END,
                   version = CASE WHEN excluded.updated_at_ms >= updated_at_ms
                                  THEN excluded.version ELSE version END,
                   customer_id = CASE WHEN excluded.updated_at_ms >= updated_at_ms
                                      THEN excluded.customer_id ELSE customer_id END,
                   updated_at_ms = max(updated_at_ms, excluded.updated_at_ms),
                   seen_at_ms = max(seen_at_ms, excluded.seen_at_ms)",
                (
                    tenant,
                    conversation.id,
                    conversation.customer_id,
                    conversation.created_at_ms,
                    conversation.body,
                    conversation.updated_at_ms,
                    seen_at_ms,
                    conversation.version,
                ),
            )
            .map(drop)
            .map_err(|e| StoreError::query("mirror conversation", e))
    }

    /// A mirrored conversation.
    fn mirrored_conversation(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Mirrored>, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT conversation_id, body, version, seen_at_ms FROM mirror_conversations
                 WHERE tenant = ?1 AND conversation_id = ?2",
            )
            .and_then(|mut s| s.query_row((tenant, id), mirrored).optional())
            .map_err(|e| StoreError::query("read mirror conversation", e))
    }

    /// Records that every conversation of the customer that existed at
    /// `listed_at_ms` is mirrored.
    fn mirror_listed(
        &self,
        tenant: &str,
        customer_id: &str,
        listed_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.write()?
            .run(
                "INSERT INTO mirror_lists (tenant, customer_id, listed_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant, customer_id) DO UPDATE
                 SET listed_at_ms = max(listed_at_ms, excluded.listed_at_ms)",
                (tenant, customer_id, listed_at_ms),
            )
            .map(drop)
            .map_err(|e| StoreError::query("mirror list", e))
    }

    /// When the customer's conversations were last known complete, and
    /// the newest `limit` of them by creation time.
    fn mirrored_conversations(
        &self,
        tenant: &str,
        customer_id: &str,
        limit: usize,
    ) -> Result<Option<(i64, Vec<Stamp>)>, StoreError> {
        let conn = self.conn();
        let listed: Option<i64> = conn
            .prepare_cached(
                "SELECT listed_at_ms FROM mirror_lists WHERE tenant = ?1 AND customer_id = ?2",
            )
            .and_then(|mut s| s.query_row((tenant, customer_id), |r| r.get(0)).optional())
            .map_err(|e| StoreError::query("read mirror list", e))?;
        let Some(listed) = listed else {
            return Ok(None);
        };
        let rows = conn
            .prepare_cached(&newest_conversations_sql(limit))
            .and_then(|mut s| {
                s.query_map((tenant, customer_id), stamp)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| StoreError::query("read mirror conversations", e))?;
        Ok(Some((listed, rows)))
    }
}

/// Files `customer_id` under a key (on a connection or a transaction).
fn write_key(
    conn: &rusqlite::Connection,
    tenant: &str,
    kind: &str,
    value: &str,
    customer_id: &str,
    seen_at_ms: i64,
) -> Result<(), StoreError> {
    conn.run(
        "INSERT INTO mirror_keys (tenant, kind, value, customer_id, seen_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant, kind, value) DO UPDATE SET
           customer_id = excluded.customer_id,
           seen_at_ms = max(seen_at_ms, excluded.seen_at_ms)",
        (tenant, kind, value, customer_id, seen_at_ms),
    )
    .map(drop)
    .map_err(|e| StoreError::query("mirror key", e))
}

fn read_customer(
    conn: &rusqlite::Connection,
    tenant: &str,
    id: &str,
) -> Result<Option<Mirrored>, StoreError> {
    conn.prepare_cached(
        "SELECT customer_id, body, version, seen_at_ms FROM mirror_customers
         WHERE tenant = ?1 AND customer_id = ?2",
    )
    .and_then(|mut s| s.query_row((tenant, id), mirrored).optional())
    .map_err(|e| StoreError::query("read mirror customer", e))
}

/// A customer's newest mirrored conversations (read for every event's
/// context; its limit is in the text, see [`super::limit`]).
pub(super) fn newest_conversations_sql(limit: usize) -> String {
    format!(
        "SELECT conversation_id, version, seen_at_ms FROM mirror_conversations
         WHERE tenant = ?1 AND customer_id = ?2
         ORDER BY created_at_ms DESC, conversation_id DESC {}",
        super::limit(limit)
    )
}
