//! PostgreSQL: the Kustomer mirror.

use super::{get, limit, Postgres, Queries};
use crate::store::mirror::*;
use crate::store::StoreError;
use postgres::Row;

/// A row read as `id, body, version, seen_at_ms`.
fn mirrored(r: &Row, op: &'static str) -> Result<Mirrored, StoreError> {
    Ok(Mirrored {
        id: get(r, 0, op)?,
        body: get(r, 1, op)?,
        version: get(r, 2, op)?,
        seen_at_ms: get(r, 3, op)?,
    })
}

/// A row read as `id, version, seen_at_ms`.
fn stamp(r: &Row, op: &'static str) -> Result<Stamp, StoreError> {
    Ok(Stamp {
        id: get(r, 0, op)?,
        version: get(r, 1, op)?,
        seen_at_ms: get(r, 2, op)?,
    })
}

impl MirrorStore for Postgres {
    fn mirror_customer(
        &self,
        tenant: &str,
        customer: &MirrorCustomer<'_>,
        seen_at_ms: i64,
    ) -> Result<(), StoreError> {
        const OP: &str = "mirror customer";
        self.with(OP, |c| {
            let mut tx = c.transaction().map_err(|e| StoreError::query("begin", e))?;
            tx.execute(
                "INSERT INTO mirror_customers AS m
                   (tenant, customer_id, body, updated_at_ms, seen_at_ms, version)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant, customer_id) DO UPDATE SET
                   body = CASE WHEN excluded.updated_at_ms >= m.updated_at_ms
                               THEN excluded.body ELSE m.body END,
                   version = CASE WHEN excluded.updated_at_ms >= m.updated_at_ms
                                  THEN excluded.version ELSE m.version END,
                   updated_at_ms = GREATEST(m.updated_at_ms, excluded.updated_at_ms),
                   seen_at_ms = GREATEST(m.seen_at_ms, excluded.seen_at_ms)",
                &[
                    &tenant,
                    &customer.id,
                    &customer.body,
                    &customer.updated_at_ms,
                    &seen_at_ms,
                    &customer.version,
                ],
            )
            .map_err(|e| StoreError::query(OP, e))?;
            for (kind, value) in &customer.keys {
                write_key(&mut tx, tenant, kind, value, customer.id, seen_at_ms)?;
            }
            tx.commit().map_err(|e| StoreError::query("commit", e))
        })
    }

    fn mirror_key(
        &self,
        tenant: &str,
        kind: &str,
        value: &str,
        customer_id: &str,
        seen_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.with("mirror key", |c| {
            write_key(c, tenant, kind, value, customer_id, seen_at_ms)
        })
    }

    fn mirror_absent(
        &self,
        tenant: &str,
        kind: &str,
        value: &str,
        seen_at_ms: i64,
    ) -> Result<(), StoreError> {
        const OP: &str = "mirror absent key";
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO mirror_keys AS k (tenant, kind, value, customer_id, seen_at_ms)
                 VALUES ($1, $2, $3, NULL, $4)
                 ON CONFLICT (tenant, kind, value) DO UPDATE SET
                   customer_id = NULL, seen_at_ms = excluded.seen_at_ms
                 WHERE excluded.seen_at_ms >= k.seen_at_ms",
                &[&tenant, &kind, &value, &seen_at_ms],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn mirrored_key(&self, tenant: &str, kind: &str, value: &str) -> Result<KeyLookup, StoreError> {
        const OP: &str = "read mirror key";
        self.with(OP, |c| {
            let key: Option<(Option<String>, i64)> = c
                .query_opt(
                    "SELECT customer_id, seen_at_ms FROM mirror_keys
                     WHERE tenant = $1 AND kind = $2 AND value = $3",
                    &[&tenant, &kind, &value],
                )
                .map_err(|e| StoreError::query(OP, e))?
                .map(|r| Ok::<_, StoreError>((get(&r, 0, OP)?, get(&r, 1, OP)?)))
                .transpose()?;
            match key {
                None => Ok(KeyLookup::Unknown),
                Some((None, seen_at_ms)) => Ok(KeyLookup::Absent { seen_at_ms }),
                Some((Some(id), key_seen)) => {
                    let found = read_customer(c, tenant, &id)?;
                    Ok(found.map_or(KeyLookup::Unknown, |mut m| {
                        // Found through the key: as fresh as the older of the two.
                        m.seen_at_ms = m.seen_at_ms.min(key_seen);
                        KeyLookup::Found(m)
                    }))
                }
            }
        })
    }

    fn mirrored_customer(&self, tenant: &str, id: &str) -> Result<Option<Mirrored>, StoreError> {
        self.with("read mirror customer", |c| read_customer(c, tenant, id))
    }

    fn mirror_conversation(
        &self,
        tenant: &str,
        conversation: &MirrorConversation<'_>,
        seen_at_ms: i64,
    ) -> Result<(), StoreError> {
        const OP: &str = "mirror conversation";
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO mirror_conversations AS m
                   (tenant, conversation_id, customer_id, created_at_ms, body, updated_at_ms,
                    seen_at_ms, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (tenant, conversation_id) DO UPDATE SET
                   body = CASE WHEN excluded.updated_at_ms >= m.updated_at_ms
                               THEN excluded.body ELSE m.body END,
                   version = CASE WHEN excluded.updated_at_ms >= m.updated_at_ms
                                  THEN excluded.version ELSE m.version END,
                   customer_id = CASE WHEN excluded.updated_at_ms >= m.updated_at_ms
                                      THEN excluded.customer_id ELSE m.customer_id END,
                   updated_at_ms = GREATEST(m.updated_at_ms, excluded.updated_at_ms),
                   seen_at_ms = GREATEST(m.seen_at_ms, excluded.seen_at_ms)",
                &[
                    &tenant,
                    &conversation.id,
                    &conversation.customer_id,
                    &conversation.created_at_ms,
                    &conversation.body,
                    &conversation.updated_at_ms,
                    &seen_at_ms,
                    &conversation.version,
                ],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn mirrored_conversation(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Mirrored>, StoreError> {
        const OP: &str = "read mirror conversation";
        self.with(OP, |c| {
            c.query_opt(
                "SELECT conversation_id, body, version, seen_at_ms FROM mirror_conversations
                 WHERE tenant = $1 AND conversation_id = $2",
                &[&tenant, &id],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .map(|r| mirrored(&r, OP))
            .transpose()
        })
    }

    fn mirror_listed(
        &self,
        tenant: &str,
        customer_id: &str,
        listed_at_ms: i64,
    ) -> Result<(), StoreError> {
        const OP: &str = "mirror list";
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO mirror_lists AS l (tenant, customer_id, listed_at_ms)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (tenant, customer_id) DO UPDATE
                 SET listed_at_ms = GREATEST(l.listed_at_ms, excluded.listed_at_ms)",
                &[&tenant, &customer_id, &listed_at_ms],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn mirrored_conversations(
        &self,
        tenant: &str,
        customer_id: &str,
        n: usize,
    ) -> Result<Option<(i64, Vec<Stamp>)>, StoreError> {
        self.with("read mirror conversations", |c| {
            let listed: Option<i64> = c
                .query_opt(
                    "SELECT listed_at_ms FROM mirror_lists WHERE tenant = $1 AND customer_id = $2",
                    &[&tenant, &customer_id],
                )
                .map_err(|e| StoreError::query("read mirror list", e))?
                .map(|r| get(&r, 0, "read mirror list"))
                .transpose()?;
            let Some(listed) = listed else {
                return Ok(None);
            };
            const OP: &str = "read mirror conversations";
            let rows = c
                .query(
                    "SELECT conversation_id, version, seen_at_ms FROM mirror_conversations
                     WHERE tenant = $1 AND customer_id = $2
                     ORDER BY created_at_ms DESC, conversation_id DESC LIMIT $3",
                    &[&tenant, &customer_id, &limit(n)],
                )
                .map_err(|e| StoreError::query(OP, e))?
                .iter()
                .map(|r| stamp(r, OP))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((listed, rows)))
        })
    }
}

/// Files `customer_id` under a key (on a connection or a transaction).
fn write_key(
    conn: &mut impl Queries,
    tenant: &str,
    kind: &str,
    value: &str,
    customer_id: &str,
    seen_at_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO mirror_keys AS k (tenant, kind, value, customer_id, seen_at_ms)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant, kind, value) DO UPDATE SET
           customer_id = excluded.customer_id,
           seen_at_ms = GREATEST(k.seen_at_ms, excluded.seen_at_ms)",
        &[&tenant, &kind, &value, &customer_id, &seen_at_ms],
    )
    .map(drop)
    .map_err(|e| StoreError::query("mirror key", e))
}

fn read_customer(
    conn: &mut impl Queries,
    tenant: &str,
    id: &str,
) -> Result<Option<Mirrored>, StoreError> {
    const OP: &str = "read mirror customer";
    conn.query_opt(
        "SELECT customer_id, body, version, seen_at_ms FROM mirror_customers
         WHERE tenant = $1 AND customer_id = $2",
        &[&tenant, &id],
    )
    .map_err(|e| StoreError::query(OP, e))?
    .map(|r| mirrored(&r, OP))
    .transpose()
}
