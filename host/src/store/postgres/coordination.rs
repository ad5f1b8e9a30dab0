//! PostgreSQL: replica heartbeats, customer leases and leaders.
//!
//! Each replica writes `replicas.seen_at = now()` every
//! [`HEARTBEAT_EVERY`] from a thread of its own, started by its first lease
//! or leadership. A lease row names its holder; it is the holder's while the
//! holder's `seen_at` is younger than [`LEASE_TTL`], by the database's clock
//! (one clock for every replica). Taking a lease is one upsert that succeeds
//! only if the row is free, already ours, or its holder's heartbeat is
//! stale.

use super::{Postgres, Queries};
use crate::store::coordination::{
    new_replica_id, Coordination, ReplicaInfo, HEARTBEAT_EVERY, LEASE_TTL,
};
use crate::store::StoreError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A replica's identity and heartbeat.
pub(super) struct Replica {
    id: String,
    /// Origin of `last_beat_ms`.
    origin: Instant,
    /// When the last successful heartbeat was *sent*, in ms since `origin`
    /// (0: never). Sent, not acknowledged: the database stamped it later,
    /// so the leases are valid at least as long as this says.
    last_beat_ms: Arc<AtomicU64>,
    heartbeat: Mutex<Option<Heartbeat>>,
}

impl Replica {
    pub(super) fn new() -> Self {
        Self {
            id: new_replica_id(),
            origin: Instant::now(),
            last_beat_ms: Arc::new(AtomicU64::new(0)),
            heartbeat: Mutex::new(None),
        }
    }
}

/// Stops the heartbeat thread when dropped.
struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

const BEAT: &str = "INSERT INTO replicas (id, started_at, seen_at)
     VALUES ($1, sb_now(), clock_timestamp())
     ON CONFLICT (id) DO UPDATE SET seen_at = clock_timestamp()";

/// Whether the holder `l.replica` of a lease row is dead: `$ttl` is the
/// lease lifetime in milliseconds.
const HOLDER_DEAD: &str = "NOT EXISTS (SELECT 1 FROM replicas r
     WHERE r.id = l.replica
       AND r.seen_at > clock_timestamp() - make_interval(secs => $4::float8 / 1000))";

fn ttl_ms() -> f64 {
    LEASE_TTL.as_millis() as f64
}

impl Postgres {
    /// Starts the heartbeat (first beat synchronously) unless running.
    fn ensure_beating(&self) -> Result<(), StoreError> {
        let mut heartbeat = self
            .replica
            .heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if heartbeat.is_some() {
            return Ok(());
        }
        let sent = self.replica.origin.elapsed();
        self.with("replica heartbeat", |c| {
            c.execute(BEAT, &[&self.replica.id])
                .map_err(|e| StoreError::query("replica heartbeat", e))
        })?;
        self.replica
            .last_beat_ms
            .store(ms(sent).max(1), Ordering::Release);
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, pool, id, origin, last) = (
            stop.clone(),
            self.pool.clone(),
            self.replica.id.clone(),
            self.replica.origin,
            self.replica.last_beat_ms.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("store-heartbeat".into())
            .spawn(move || {
                let mut failing = false;
                while !flag.load(Ordering::Acquire) {
                    std::thread::park_timeout(HEARTBEAT_EVERY);
                    if flag.load(Ordering::Acquire) {
                        break;
                    }
                    let sent = origin.elapsed();
                    let beat = pool
                        .get()
                        .map_err(|e| e.to_string())
                        .and_then(|mut c| c.execute(BEAT, &[&id]).map_err(|e| e.to_string()));
                    match beat {
                        Ok(_) => {
                            last.store(ms(sent).max(1), Ordering::Release);
                            if std::mem::take(&mut failing) {
                                tracing::info!(replica = %id, "replica heartbeat written again");
                            }
                        }
                        Err(error) if !failing => {
                            failing = true;
                            tracing::warn!(replica = %id, %error, "replica heartbeat failed; leases lapse if it goes on");
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        *heartbeat = Some(Heartbeat {
            stop,
            thread: thread.thread().clone(),
        });
        Ok(())
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Coordination for Postgres {
    fn replica(&self) -> &str {
        &self.replica.id
    }

    fn lease_customer(&self, tenant: &str, customer_key: &str) -> Result<bool, StoreError> {
        self.ensure_beating()?;
        let sql = format!(
            "INSERT INTO customer_leases AS l (tenant, customer_key, replica, since)
             VALUES ($1, $2, $3, sb_now())
             ON CONFLICT (tenant, customer_key) DO UPDATE
             SET replica = excluded.replica, since = excluded.since
             WHERE l.replica = excluded.replica OR {HOLDER_DEAD}
             RETURNING l.replica"
        );
        let id = &self.replica.id;
        self.with("take customer lease", |c| {
            c.query_opt(&sql, &[&tenant, &customer_key, id, &ttl_ms()])
                .map(|row| row.is_some())
                .map_err(|e| StoreError::query("take customer lease", e))
        })
    }

    fn release_customer(&self, tenant: &str, customer_key: &str) -> Result<(), StoreError> {
        let id = &self.replica.id;
        self.with("release customer lease", |c| {
            c.execute(
                "DELETE FROM customer_leases
                 WHERE tenant = $1 AND customer_key = $2 AND replica = $3",
                &[&tenant, &customer_key, id],
            )
            .map(drop)
            .map_err(|e| StoreError::query("release customer lease", e))
        })
    }

    fn lead(&self, tenant: &str, role: &str) -> Result<bool, StoreError> {
        self.ensure_beating()?;
        let sql = format!(
            "INSERT INTO leaders AS l (tenant, role, replica, since)
             VALUES ($1, $2, $3, sb_now())
             ON CONFLICT (tenant, role) DO UPDATE
             SET replica = excluded.replica,
                 since = CASE WHEN l.replica = excluded.replica THEN l.since ELSE excluded.since END
             WHERE l.replica = excluded.replica OR {HOLDER_DEAD}
             RETURNING l.replica"
        );
        let id = &self.replica.id;
        self.with("take leadership", |c| {
            c.query_opt(&sql, &[&tenant, &role, id, &ttl_ms()])
                .map(|row| row.is_some())
                .map_err(|e| StoreError::query("take leadership", e))
        })
    }

    fn lease_valid(&self) -> bool {
        let last = self.replica.last_beat_ms.load(Ordering::Acquire);
        if last == 0 {
            return false;
        }
        // One heartbeat interval of margin before the database would call
        // this replica dead.
        let valid_for = ms(LEASE_TTL.saturating_sub(HEARTBEAT_EVERY));
        ms(self.replica.origin.elapsed()) < last.saturating_add(valid_for)
    }

    fn replicas(&self) -> Result<Vec<ReplicaInfo>, StoreError> {
        self.with("list replicas", |c| {
            let rows = c
                .query(
                    "SELECT r.id, r.started_at,
                            (EXTRACT(EPOCH FROM (clock_timestamp() - r.seen_at)) * 1000)::bigint,
                            (SELECT count(*) FROM customer_leases l WHERE l.replica = r.id)
                     FROM replicas r
                     WHERE r.seen_at > clock_timestamp() - interval '1 hour'
                     ORDER BY r.started_at, r.id",
                    &[],
                )
                .map_err(|e| StoreError::query("list replicas", e))?;
            let ttl = i64::try_from(LEASE_TTL.as_millis()).unwrap_or(i64::MAX);
            Ok(rows
                .iter()
                .map(|r| {
                    let last_seen_ms: i64 = r.get(2);
                    ReplicaInfo {
                        id: r.get(0),
                        started_at: r.get(1),
                        last_seen_ms,
                        alive: last_seen_ms < ttl,
                        customers: r.get(3),
                    }
                })
                .collect())
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with("ping", |c| {
            c.simple_query("SELECT 1")
                .map(drop)
                .map_err(|e| StoreError::query("ping", e))
        })
    }
}
