//! PostgreSQL: the session ledger.
//!
//! A reconcile is one transaction that first takes a transaction-scoped
//! advisory lock per session (in one order, so two reconciles never wait on
//! each other in a cycle), then reads, merges and writes: two replicas
//! reconciling the same session take turns, and the second reads what the
//! first wrote, so no update is lost.

use super::{blocking_mode, get, inbox, Blocking, Postgres};
use crate::store::sessions::{Merged, Reconciled, SessionStore};
use crate::store::StoreError;
use postgres::{Client, GenericClient};
use std::sync::mpsc;

/// The advisory lock class (first key of the two-int key space) of session
/// rows: "SBSE". The second key is `hashtext(tenant, session)`; sessions
/// whose keys collide merely take turns.
const SESSION_LOCK_CLASS: i32 = 0x5342_5345;

/// A merge that may fail: the merge itself cannot, but when it runs on
/// another thread than the transaction, the hand-over can.
type TryMerge<'a> = dyn FnMut(usize, Option<&str>) -> Result<Merged, StoreError> + 'a;

impl SessionStore for Postgres {
    fn reconcile_each(
        &self,
        tenant: &str,
        sessions: &[String],
        cursor: Option<(&str, &str)>,
        merge: &mut dyn FnMut(usize, Option<&str>) -> Merged,
    ) -> Result<Reconciled, StoreError> {
        const OP: &str = "reconcile";
        match blocking_mode() {
            Blocking::Direct => {
                let mut conn = self.connection(OP)?;
                reconcile(&mut conn, tenant, sessions, cursor, &mut |i, s| {
                    Ok(merge(i, s))
                })
            }
            Blocking::InPlace => tokio::task::block_in_place(|| {
                let mut conn = self.connection(OP)?;
                reconcile(&mut conn, tenant, sessions, cursor, &mut |i, s| {
                    Ok(merge(i, s))
                })
            }),
            // The transaction runs on a thread of its own (see
            // `super::blocking`); `merge` need not be `Send`, so it runs
            // here, asked for each session over a channel.
            Blocking::OwnThread => {
                let (ask, asked) = mpsc::channel::<(usize, Option<String>)>();
                let (answer, answered) = mpsc::channel::<Merged>();
                std::thread::scope(|scope| {
                    let worker = scope.spawn(move || {
                        let mut conn = self.connection(OP)?;
                        reconcile(&mut conn, tenant, sessions, cursor, &mut |i, stored| {
                            let abandoned = || StoreError::query(OP, "the merge was abandoned");
                            ask.send((i, stored.map(str::to_owned)))
                                .map_err(|_| abandoned())?;
                            answered.recv().map_err(|_| abandoned())
                        })
                        // `ask` is dropped here, which ends the loop below.
                    });
                    for (i, stored) in asked {
                        if answer.send(merge(i, stored.as_deref())).is_err() {
                            break;
                        }
                    }
                    drop(answer);
                    worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
            }
        }
    }

    fn session_state(&self, tenant: &str, session: &str) -> Result<Option<String>, StoreError> {
        self.with("read session", |c| read_state(c, tenant, session))
    }
}

/// The reconcile transaction on `conn`.
fn reconcile(
    conn: &mut Client,
    tenant: &str,
    sessions: &[String],
    cursor: Option<(&str, &str)>,
    merge: &mut TryMerge<'_>,
) -> Result<Reconciled, StoreError> {
    let mut tx = conn
        .transaction()
        .map_err(|e| StoreError::query("begin", e))?;
    // Every session's lock, in key order, before any read.
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, k)
         FROM (SELECT DISTINCT hashtext($2::text || chr(31) || s) AS k
               FROM unnest($3::text[]) AS s ORDER BY k) AS keys",
        &[&SESSION_LOCK_CLASS, &tenant, &sessions],
    )
    .map_err(|e| StoreError::query("lock sessions", e))?;
    let mut out = Reconciled::default();
    for (i, session) in sessions.iter().enumerate() {
        let stored = read_state(&mut tx, tenant, session)?;
        let merged = merge(i, stored.as_deref())?;
        if stored.as_deref() != Some(merged.state.as_str()) {
            tx.execute(
                "INSERT INTO sessions (tenant, session_id, state, updated_at)
                 VALUES ($1, $2, $3, sb_now())
                 ON CONFLICT (tenant, session_id) DO UPDATE
                 SET state = excluded.state, updated_at = excluded.updated_at",
                &[&tenant, session, &merged.state],
            )
            .map_err(|e| StoreError::query("write session", e))?;
        }
        if merged.events.is_empty() {
            out.unchanged += 1;
        }
        for event in &merged.events {
            if inbox::insert(&mut tx, event)? {
                out.new += 1;
            }
        }
        out.events.extend(merged.events);
    }
    if let Some((source, value)) = cursor {
        super::write_cursor(&mut tx, tenant, source, value)?;
    }
    tx.commit().map_err(|e| StoreError::query("commit", e))?;
    Ok(out)
}

fn read_state(
    conn: &mut impl GenericClient,
    tenant: &str,
    session: &str,
) -> Result<Option<String>, StoreError> {
    const OP: &str = "read session";
    conn.query_opt(
        "SELECT state FROM sessions WHERE tenant = $1 AND session_id = $2",
        &[&tenant, &session],
    )
    .map_err(|e| StoreError::query(OP, e))?
    .map(|r| get(&r, 0, OP))
    .transpose()
}
