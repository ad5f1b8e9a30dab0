//! Client-side pacing: the org budget learnt from `x-ratelimit-*` headers and
//! the per-customer create limit, both on an injectable [`Clock`].

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use reqwest::header::HeaderMap;

/// Time as the client sees it. Rate-limit waits and retry backoff go through
/// it, so tests can substitute a clock that jumps instead of sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `now() >= deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Wall clock and `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// Kustomer's windows are a minute long.
const WINDOW: Duration = Duration::seconds(60);

/// Slack added to the per-customer window: the server counts arrival times,
/// the client send times, and they differ by the request latency.
const CUSTOMER_WINDOW_SLACK: Duration = Duration::seconds(1);

/// How long to wait when the budget is spent but no response has told us
/// the window's reset yet (only reachable with very high concurrency).
const UNKNOWN_RESET_POLL: Duration = Duration::milliseconds(200);

/// Rate-limit values from one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    pub limit: Option<u32>,
    pub remaining: u32,
    /// Epoch seconds at which the window resets.
    pub reset: i64,
    /// The server's clock (`Date`), whole seconds, when sent.
    pub server_now: Option<i64>,
}

impl RateHeaders {
    pub fn parse(h: &HeaderMap) -> Option<RateHeaders> {
        let get = |name: &str| h.get(name)?.to_str().ok().map(str::trim);
        let remaining = get("x-ratelimit-remaining")?.parse().ok()?;
        let reset = get("x-ratelimit-reset")?.parse().ok()?;
        let limit = get("x-ratelimit-limit").and_then(|v| v.parse().ok());
        let server_now = get("date")
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.timestamp());
        Some(RateHeaders {
            limit,
            remaining,
            reset,
            server_now,
        })
    }

    /// The reset as an instant on the local clock. The reset is measured
    /// against the server's `Date` when present, so a skewed local clock
    /// does not shorten the wait; `Date` is truncated to whole seconds, which
    /// can only lengthen it.
    pub fn reset_at(&self, local_now: DateTime<Utc>) -> DateTime<Utc> {
        let server_now = self.server_now.unwrap_or_else(|| local_now.timestamp());
        local_now + Duration::seconds((self.reset - server_now).max(0))
    }
}

/// What the client knows of the org budget.
#[derive(Debug, Default)]
struct OrgBudget {
    limit: Option<u32>,
    /// Requests left in the current window; `None` = unknown (no response
    /// seen yet): let requests through.
    remaining: Option<u32>,
    /// The current window's reset, as the server named it (epoch seconds).
    window: Option<i64>,
    /// Responses naming a window at or before this one are stale.
    floor: i64,
    reset_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Customers {
    /// Send times of recent creates, per customer.
    recent: HashMap<String, VecDeque<DateTime<Utc>>>,
    calls: u64,
}

/// Shared pacing state of one client (and its clones).
pub(crate) struct Limiter {
    clock: Arc<dyn Clock>,
    org: Mutex<OrgBudget>,
    customers: Mutex<Customers>,
    customer_limit: u32,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state stays consistent even if a holder panicked mid-update: the
    // worst case is one extra or one fewer request counted.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Limiter {
    pub(crate) fn new(clock: Arc<dyn Clock>, customer_limit: u32) -> Self {
        Limiter {
            clock,
            org: Mutex::new(OrgBudget::default()),
            customers: Mutex::new(Customers::default()),
            customer_limit: customer_limit.max(1),
        }
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Takes one request from the org budget, sleeping until the reset when
    /// it is spent.
    pub(crate) async fn acquire(&self) {
        loop {
            let wait_until = {
                let mut b = guard(&self.org);
                let now = self.clock.now();
                if b.reset_at.is_some_and(|r| now >= r) {
                    // The window ended: a full budget, until a response says
                    // otherwise.
                    b.floor = b.window.unwrap_or(b.floor);
                    b.window = None;
                    b.reset_at = None;
                    b.remaining = b.limit;
                }
                match b.remaining {
                    None => return,
                    Some(n) if n > 0 => {
                        b.remaining = Some(n - 1);
                        return;
                    }
                    Some(_) => b.reset_at.unwrap_or(now + UNKNOWN_RESET_POLL),
                }
            };
            tracing::debug!(until = %wait_until, "kustomer org budget spent; waiting for reset");
            self.clock.sleep_until(wait_until).await;
        }
    }

    /// Folds a response's rate-limit headers into the budget.
    pub(crate) fn observe(&self, h: &RateHeaders) {
        let now = self.clock.now();
        let mut b = guard(&self.org);
        if h.reset <= b.floor {
            return;
        }
        if h.limit.is_some() {
            b.limit = h.limit;
        }
        match b.window {
            Some(w) if h.reset < w => {}
            Some(w) if h.reset == w => {
                b.remaining = Some(b.remaining.map_or(h.remaining, |r| r.min(h.remaining)));
            }
            _ => {
                b.window = Some(h.reset);
                b.reset_at = Some(h.reset_at(now));
                // Requests sent since the window began are already taken off
                // the local count; the server may not have seen them yet.
                b.remaining = Some(b.remaining.map_or(h.remaining, |r| r.min(h.remaining)));
            }
        }
    }

    /// After a 429: nothing left until `until`.
    pub(crate) fn exhausted_until(&self, h: Option<&RateHeaders>, until: DateTime<Utc>) {
        let mut b = guard(&self.org);
        if let Some(h) = h {
            if h.limit.is_some() {
                b.limit = h.limit;
            }
            b.window = Some(h.reset.max(b.window.unwrap_or(h.reset)));
        }
        b.remaining = Some(0);
        b.reset_at = Some(b.reset_at.map_or(until, |r| r.max(until)));
    }

    /// Takes one create from `customer`'s per-minute allowance (a sliding
    /// window, stricter than the server's fixed one), sleeping if needed.
    pub(crate) async fn acquire_customer(&self, customer: &str) {
        loop {
            let wait_until = {
                let mut c = guard(&self.customers);
                let now = self.clock.now();
                let horizon = now - WINDOW - CUSTOMER_WINDOW_SLACK;
                c.calls += 1;
                if c.calls % 1024 == 0 {
                    c.recent
                        .retain(|_, q| q.back().is_some_and(|t| *t > horizon));
                }
                let q = c.recent.entry(customer.to_string()).or_default();
                while q.front().is_some_and(|t| *t <= horizon) {
                    q.pop_front();
                }
                if (q.len() as u64) < u64::from(self.customer_limit) {
                    q.push_back(now);
                    return;
                }
                match q.front() {
                    Some(oldest) => *oldest + WINDOW + CUSTOMER_WINDOW_SLACK,
                    None => now,
                }
            };
            tracing::debug!(customer, until = %wait_until, "kustomer per-customer create limit; waiting");
            self.clock.sleep_until(wait_until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn parses_string_headers_and_measures_reset_against_server_date() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", HeaderValue::from_static("300"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1618930788"));
        h.insert(
            "date",
            HeaderValue::from_static("Tue, 20 Apr 2021 14:58:48 GMT"),
        );
        let r = RateHeaders::parse(&h).expect("headers present");
        assert_eq!(r.limit, Some(300));
        assert_eq!(r.remaining, 0);
        assert_eq!(r.server_now, Some(1_618_930_728));
        // Local clock 5 minutes behind the server: the wait is still 60 s.
        let local = DateTime::from_timestamp(1_618_930_428, 0).expect("valid");
        assert_eq!(r.reset_at(local), local + Duration::seconds(60));
    }
}
