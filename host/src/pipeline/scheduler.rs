//! Who runs next: one ordered queue per (tenant, customer), tenants served
//! round robin within a per-tenant share of the workers, and a queue that
//! waits for a retry holding only itself.
//!
//! The inbox stays the source of truth; the scheduler keeps only which
//! customers have work, which are running and which wait until when, so
//! its memory grows with the number of customers with pending events, not
//! with the events. The intake rings the [`Doorbell`] with the customers it
//! just stored events for; a rescan of the inbox (at start, on request and
//! every [`RESCAN`]) catches anything else (a requeue from another process,
//! a missed ring).
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How often the inbox is rescanned for customers with pending events.
pub const RESCAN: Duration = Duration::from_secs(2);

/// A (tenant, customer key) pair: one ordered queue.
pub type QueueKey = (String, String);

/// Tells the scheduler that customers have new events. Cheap to share.
#[derive(Debug, Default)]
pub struct Doorbell {
    /// `std` mutex: held to insert or take the set, never across an await.
    rung: Mutex<HashSet<QueueKey>>,
    rescan: AtomicBool,
    notify: Notify,
}

impl Doorbell {
    /// New events for this customer of this tenant are in the inbox.
    pub fn ring(&self, tenant: &str, customer_key: &str) {
        lock(&self.rung).insert((tenant.to_string(), customer_key.to_string()));
        self.notify.notify_one();
    }

    /// Something changed that only a rescan of the inbox finds (events
    /// requeued by an operator).
    pub fn ring_all(&self) {
        self.rescan.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    pub(super) fn take(&self) -> (Vec<QueueKey>, bool) {
        let rung = std::mem::take(&mut *lock(&self.rung));
        (
            rung.into_iter().collect(),
            self.rescan.swap(false, Ordering::AcqRel),
        )
    }

    pub(super) async fn rung(&self) {
        self.notify.notified().await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The set stays consistent even if a holder panicked: at worst one
    // customer is rung twice.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The scheduler's bookkeeping. Pure: no I/O, no clocks of its own, so its
/// rules are tested directly.
#[derive(Debug)]
pub(super) struct Queues {
    workers: usize,
    tenant_workers: usize,
    /// Customers ready to run, per tenant, in the order they became ready.
    ready: BTreeMap<String, VecDeque<String>>,
    queued: HashSet<QueueKey>,
    running: HashSet<QueueKey>,
    running_per_tenant: HashMap<String, usize>,
    /// Rung while running: run again when done.
    again: HashSet<QueueKey>,
    /// Waiting for a retry until the instant.
    waiting: HashMap<QueueKey, Instant>,
    /// The tenant served last, for round robin.
    last_tenant: Option<String>,
}

impl Queues {
    pub(super) fn new(workers: usize, tenant_workers: usize) -> Self {
        Self {
            workers: workers.max(1),
            tenant_workers: tenant_workers.clamp(1, workers.max(1)),
            ready: BTreeMap::new(),
            queued: HashSet::new(),
            running: HashSet::new(),
            running_per_tenant: HashMap::new(),
            again: HashSet::new(),
            waiting: HashMap::new(),
            last_tenant: None,
        }
    }

    /// This customer has (or may have) pending events.
    pub(super) fn offer(&mut self, key: QueueKey) {
        if self.running.contains(&key) {
            self.again.insert(key);
        } else if !self.waiting.contains_key(&key) && self.queued.insert(key.clone()) {
            self.ready.entry(key.0).or_default().push_back(key.1);
        }
    }

    /// Customers whose wait is over become ready again.
    pub(super) fn wake_due(&mut self, now: Instant) {
        let due: Vec<QueueKey> = self
            .waiting
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.waiting.remove(&key);
            self.offer(key);
        }
    }

    /// The earliest end of a wait.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.waiting.values().min().copied()
    }

    /// The next customer to run, if a worker and the tenant's share allow:
    /// tenants in turn after the one served last.
    pub(super) fn next(&mut self) -> Option<QueueKey> {
        if self.running.len() >= self.workers {
            return None;
        }
        let eligible = |q: &Self, tenant: &String| {
            q.ready.get(tenant).is_some_and(|r| !r.is_empty())
                && q.running_per_tenant.get(tenant).copied().unwrap_or(0) < q.tenant_workers
        };
        let tenants: Vec<&String> = self.ready.keys().collect();
        let start = match &self.last_tenant {
            Some(last) => tenants.iter().position(|t| *t > last).unwrap_or(0),
            None => 0,
        };
        let tenant = (0..tenants.len())
            .map(|i| tenants[(start + i) % tenants.len()])
            .find(|t| eligible(self, t))?
            .clone();
        let customer = self.ready.get_mut(&tenant)?.pop_front()?;
        if self.ready.get(&tenant).is_some_and(VecDeque::is_empty) {
            self.ready.remove(&tenant);
        }
        let key = (tenant.clone(), customer);
        self.queued.remove(&key);
        self.running.insert(key.clone());
        *self.running_per_tenant.entry(tenant.clone()).or_default() += 1;
        self.last_tenant = Some(tenant);
        Some(key)
    }

    /// A run finished; `retry_at` when its head event waits for a retry.
    pub(super) fn finished(&mut self, key: QueueKey, retry_at: Option<Instant>) {
        self.running.remove(&key);
        if let Some(n) = self.running_per_tenant.get_mut(&key.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.running_per_tenant.remove(&key.0);
            }
        }
        let again = self.again.remove(&key);
        match retry_at {
            Some(at) => {
                self.waiting.insert(key, at);
            }
            None if again => self.offer(key),
            None => {}
        }
    }

    pub(super) fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, c: &str) -> QueueKey {
        (t.to_string(), c.to_string())
    }

    #[test]
    fn is1_tenants_are_served_in_turn_within_their_share() {
        let mut q = Queues::new(4, 2);
        for c in ["a1", "a2", "a3", "a4"] {
            q.offer(key("a", c));
        }
        q.offer(key("b", "b1"));
        let order: Vec<QueueKey> = std::iter::from_fn(|| q.next()).collect();
        // a is capped at two runs; b gets its turn between them.
        assert_eq!(order, vec![key("a", "a1"), key("b", "b1"), key("a", "a2")]);
        q.finished(key("a", "a1"), None);
        assert_eq!(q.next(), Some(key("a", "a3")));
    }

    #[test]
    fn is1_a_customer_runs_once_at_a_time_and_again_when_rung_meanwhile() {
        let mut q = Queues::new(4, 4);
        q.offer(key("a", "c"));
        q.offer(key("a", "c"));
        assert_eq!(q.next(), Some(key("a", "c")));
        assert_eq!(q.next(), None, "one run per customer");
        q.offer(key("a", "c"));
        q.finished(key("a", "c"), None);
        assert_eq!(q.next(), Some(key("a", "c")), "rung while running");
    }

    #[test]
    fn is2_a_waiting_customer_holds_only_its_own_queue() {
        let mut q = Queues::new(2, 2);
        let now = Instant::now();
        q.offer(key("a", "slow"));
        assert_eq!(q.next(), Some(key("a", "slow")));
        q.finished(key("a", "slow"), Some(now + Duration::from_secs(30)));
        q.offer(key("a", "slow"));
        q.offer(key("a", "other"));
        q.offer(key("b", "b1"));
        let order: Vec<QueueKey> = std::iter::from_fn(|| q.next()).collect();
        // b's turn comes first: a was served last.
        assert_eq!(order, vec![key("b", "b1"), key("a", "other")]);
        assert_eq!(q.next_due(), Some(now + Duration::from_secs(30)));
        q.finished(key("a", "other"), None);
        q.wake_due(now + Duration::from_secs(31));
        assert_eq!(q.next(), Some(key("a", "slow")));
    }
}
