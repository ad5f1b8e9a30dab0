//! PostgreSQL: the session ledger.
//!
//! A reconcile is one transaction that first takes a transaction-scoped
//! advisory lock per session (in one order, so two reconciles never wait on
//! each other in a cycle), then reads, merges and writes: two replicas
//! reconciling the same session take turns, and the second reads what the
//! first wrote, so no update is lost.
//!
//! The round trips do not grow with the batch: one statement takes the
//! locks, one reads every session's stored state, the merges run on a local
//! copy, and one statement each writes the sessions that changed and the
//! inbox rows.

use super::{blocking_mode, get, inbox, Blocking, Conn, Postgres, Queries};
use crate::store::sessions::{Merged, Reconciled, SessionStore};
use crate::store::StoreError;
use std::collections::{HashMap, HashSet};
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

/// A session's state as the batch goes: read once, then what each merge
/// left.
struct Ledger {
    state: Option<String>,
    /// Whether a merge changed the stored state: the session is written.
    changed: bool,
}

/// The reconcile transaction on `conn`.
fn reconcile(
    conn: &mut Conn,
    tenant: &str,
    sessions: &[String],
    cursor: Option<(&str, &str)>,
    merge: &mut TryMerge<'_>,
) -> Result<Reconciled, StoreError> {
    let mut tx = conn
        .transaction()
        .map_err(|e| StoreError::query("begin", e))?;
    let mut out = Reconciled::default();
    if !sessions.is_empty() {
        // Every session's lock, in key order, before any read; the read is
        // a statement of its own, so its snapshot has what the transactions
        // we waited for committed.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, k)
             FROM (SELECT DISTINCT hashtext($2::text || chr(31) || s) AS k
                   FROM unnest($3::text[]) AS s ORDER BY k) AS keys",
            &[&SESSION_LOCK_CLASS, &tenant, &sessions],
        )
        .map_err(|e| StoreError::query("lock sessions", e))?;
        let mut ledger = read_states(&mut tx, tenant, sessions)?;
        for (i, session) in sessions.iter().enumerate() {
            let entry = ledger
                .get_mut(session.as_str())
                .ok_or_else(|| StoreError::query("reconcile", "a session was not read"))?;
            // A session met again sees what its previous merge left.
            let merged = merge(i, entry.state.as_deref())?;
            if entry.state.as_deref() != Some(merged.state.as_str()) {
                entry.state = Some(merged.state);
                entry.changed = true;
            }
            if merged.events.is_empty() {
                out.unchanged += 1;
            }
            out.events.extend(merged.events);
        }
        write_states(&mut tx, tenant, sessions, &ledger)?;
        out.new = inbox::insert_many(&mut tx, &out.events)?;
    }
    if let Some((source, value)) = cursor {
        super::write_cursor(&mut tx, tenant, source, value)?;
    }
    tx.commit().map_err(|e| StoreError::query("commit", e))?;
    Ok(out)
}

/// The stored state of each of `sessions`, in one statement.
fn read_states<'s>(
    conn: &mut impl Queries,
    tenant: &str,
    sessions: &'s [String],
) -> Result<HashMap<&'s str, Ledger>, StoreError> {
    const OP: &str = "read sessions";
    let mut ledger: HashMap<&str, Ledger> = sessions
        .iter()
        .map(|s| {
            let entry = Ledger {
                state: None,
                changed: false,
            };
            (s.as_str(), entry)
        })
        .collect();
    let rows = conn
        .query(
            "SELECT session_id, state FROM sessions WHERE tenant = $1 AND session_id = ANY($2)",
            &[&tenant, &sessions],
        )
        .map_err(|e| StoreError::query(OP, e))?;
    for row in &rows {
        let session: &str = get(row, 0, OP)?;
        if let Some(entry) = ledger.get_mut(session) {
            entry.state = Some(get(row, 1, OP)?);
        }
    }
    Ok(ledger)
}

/// Writes the final state of every session a merge changed, in the order
/// they first appear in `sessions`, in one statement.
fn write_states(
    conn: &mut impl Queries,
    tenant: &str,
    sessions: &[String],
    ledger: &HashMap<&str, Ledger>,
) -> Result<(), StoreError> {
    let mut written = HashSet::new();
    let (mut ids, mut states): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for session in sessions {
        if let Some(Ledger {
            state: Some(state),
            changed: true,
        }) = ledger.get(session.as_str())
        {
            if written.insert(session.as_str()) {
                ids.push(session);
                states.push(state);
            }
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO sessions (tenant, session_id, state, updated_at)
         SELECT $1, s.id, s.state, sb_now()
         FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS s (id, state, n)
         ORDER BY s.n
         ON CONFLICT (tenant, session_id) DO UPDATE
         SET state = excluded.state, updated_at = excluded.updated_at",
        &[&tenant, &ids, &states],
    )
    .map(drop)
    .map_err(|e| StoreError::query("write sessions", e))
}

fn read_state(
    conn: &mut impl Queries,
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

#[cfg(test)]
mod tests {
    use super::super::testing::TestSchema;
    use super::*;
    use crate::store::inbox::{InboxStore, NewInboxEvent};

    fn event(id: &str, body: &str) -> NewInboxEvent {
        NewInboxEvent {
            tenant: "a".into(),
            event_id: id.into(),
            source: "session-events".into(),
            session_id: "s".into(),
            customer_key: "c".into(),
            at_ms: 1,
            at: "t1".into(),
            body: serde_json::value::to_raw_value(&serde_json::json!({ "body": body }))
                .expect("json")
                .into(),
        }
    }

    /// Reconciles `(session, state to set, events to derive)` updates; what
    /// each merge saw, and what was stored.
    fn reconcile(
        store: &Postgres,
        updates: &[(&str, &str, &[NewInboxEvent])],
    ) -> (Vec<Option<String>>, Reconciled) {
        let sessions: Vec<String> = updates.iter().map(|(s, _, _)| s.to_string()).collect();
        let mut seen = Vec::new();
        let out = store
            .reconcile_each("a", &sessions, None, &mut |i, stored| {
                seen.push(stored.map(str::to_owned));
                Merged {
                    state: updates[i].1.to_string(),
                    events: updates[i].2.to_vec(),
                }
            })
            .expect("reconcile");
        (seen, out)
    }

    fn state(store: &Postgres, session: &str) -> Option<String> {
        store.session_state("a", session).expect("read")
    }

    #[test]
    fn a_session_met_again_in_a_batch_sees_what_its_last_merge_left() {
        let db = TestSchema::new();
        let store = db.store();
        reconcile(&store, &[("s1", "a", &[]), ("s3", "a", &[])]);
        let (seen, out) = reconcile(
            &store,
            &[
                ("s1", "b", &[]),
                ("s2", "x", &[]),
                ("s1", "c", &[]),
                ("s3", "b", &[]),
                ("s3", "a", &[]),
                ("s1", "c", &[]),
            ],
        );
        let seen: Vec<Option<&str>> = seen.iter().map(Option::as_deref).collect();
        assert_eq!(
            seen,
            [Some("a"), None, Some("b"), Some("a"), Some("b"), Some("c")]
        );
        assert_eq!((out.new, out.unchanged, out.events.len()), (0, 6, 0));
        assert_eq!(state(&store, "s1").as_deref(), Some("c"));
        assert_eq!(state(&store, "s2").as_deref(), Some("x"));
        assert_eq!(
            state(&store, "s3").as_deref(),
            Some("a"),
            "changed and changed back"
        );
    }

    #[test]
    fn events_stored_before_or_derived_twice_are_not_new() {
        let db = TestSchema::new();
        let store = db.store();
        assert!(store.insert_event(&event("e1", "first")).expect("insert"));
        let (_, out) = reconcile(
            &store,
            &[
                ("s1", "a", &[event("e2", "first"), event("e1", "again")]),
                ("s2", "a", &[]),
                ("s1", "b", &[event("e3", "first"), event("e2", "again")]),
            ],
        );
        assert_eq!((out.new, out.unchanged), (2, 1));
        let derived: Vec<&str> = out.events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(derived, ["e2", "e1", "e3", "e2"], "every derived event");
        let stored = store.events("a").expect("events");
        let stored: Vec<(&str, serde_json::Value)> = stored
            .iter()
            .map(|r| (r.event_id.as_str(), r.body_json()))
            .collect();
        let body = |b: &str| serde_json::json!({ "body": b });
        assert_eq!(
            stored,
            [
                ("e1", body("first")),
                ("e2", body("first")),
                ("e3", body("first"))
            ],
            "the first of each stays, in arrival order"
        );
        // A batch of inserts alone keeps the first of each too.
        let batch = [event("e4", "first"), event("e1", "x"), event("e4", "x")];
        assert_eq!(store.insert_events(&batch).expect("insert"), 1);
        let e4 = store.event("a", "e4").expect("read").expect("stored");
        assert_eq!(e4.body_json(), body("first"));
    }
}
