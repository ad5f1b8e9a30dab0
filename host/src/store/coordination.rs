//! Sharing the work between replicas of one database.
//!
//! A customer's events are applied in order by one replica at a time: the
//! one holding that customer's **lease**. Pollers and the status sync run on
//! one replica per tenant: the **leader** of that role. Both kinds of lease
//! are held for as long as the holder's heartbeat is fresh, so a replica
//! that dies (even `kill -9`) loses them [`LEASE_TTL`] after its last beat
//! and another takes over; nothing has to be released for that.
//!
//! A replica checks [`Coordination::lease_valid`] before each event: if its
//! own heartbeat could not be written for a while, another replica may
//! already have taken its customers, and it stops.
//!
//! SQLite has one process per file, which holds every lease.

use super::StoreError;
use serde::Serialize;
use std::time::Duration;

/// How long a replica's leases outlive its last heartbeat.
pub const LEASE_TTL: Duration = Duration::from_secs(5);

/// How often a replica writes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// One replica as the database last saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaInfo {
    /// The replica's id (host, process id and a random part).
    pub id: String,
    /// When it first beat (RFC 3339).
    pub started_at: String,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub last_seen_ms: i64,
    /// Whether its leases still hold.
    pub alive: bool,
    /// How many customer queues it holds now.
    pub customers: i64,
}

/// Leases and leaders, implemented by each backend.
pub trait Coordination {
    /// This process's replica id.
    fn replica(&self) -> &str;

    /// Takes (or keeps) the lease of one customer's queue. `false`: another
    /// live replica holds it.
    fn lease_customer(&self, tenant: &str, customer_key: &str) -> Result<bool, StoreError>;

    /// Gives the lease of one customer's queue back (a no-op if another
    /// replica holds it).
    fn release_customer(&self, tenant: &str, customer_key: &str) -> Result<(), StoreError>;

    /// Takes (or keeps) the leadership of `role` for `tenant` (a poller, the
    /// status sync). `false`: another live replica leads.
    fn lead(&self, tenant: &str, role: &str) -> Result<bool, StoreError>;

    /// Whether this replica's own heartbeat is recent enough that the leases
    /// it holds are still its own.
    fn lease_valid(&self) -> bool;

    /// Every replica seen recently, this one included.
    fn replicas(&self) -> Result<Vec<ReplicaInfo>, StoreError>;

    /// Checks that the database answers (readiness).
    fn ping(&self) -> Result<(), StoreError>;
}

/// A replica id: the host name, the process id and a random part, so two
/// processes never share one even on one host.
pub fn new_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}-{}-{:06x}",
        std::process::id(),
        rand::random::<u32>() & 0xff_ffff
    )
}
