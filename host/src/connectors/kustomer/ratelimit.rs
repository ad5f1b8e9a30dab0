//! Client-side pacing: the org budget learnt from `x-ratelimit-*` headers and
//! the per-customer create limit, both on an injectable [`Clock`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::connectors::clock::Clock;
use chrono::{DateTime, Duration, Utc};
use reqwest::header::{HeaderMap, HeaderName, DATE};

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

/// The headers read from every response, named once: a lookup by a `&str`
/// name checks and hashes the name again on every response.
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");

/// A `Date` header as epoch seconds: the HTTP forms first (what servers
/// send), any other RFC 2822 date after.
fn http_date(d: &str) -> Option<i64> {
    match httpdate::parse_http_date(d) {
        Ok(t) => t
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|s| i64::try_from(s.as_secs()).ok()),
        Err(_) => DateTime::parse_from_rfc2822(d).ok().map(|d| d.timestamp()),
    }
}

impl RateHeaders {
    pub fn parse(h: &HeaderMap) -> Option<RateHeaders> {
        let get = |name: &HeaderName| h.get(name)?.to_str().ok().map(str::trim);
        let remaining = get(&REMAINING)?.parse().ok()?;
        let reset = get(&RESET)?.parse().ok()?;
        let limit = get(&LIMIT).and_then(|v| v.parse().ok());
        let server_now = get(&DATE).and_then(http_date);
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
    /// The budget per window, once a response has named it.
    limit: Option<u32>,
    /// Requests this client sent in the current window, in flight included.
    /// The server's `remaining` cannot see requests still in flight, so
    /// `limit - used` is what keeps a concurrent burst under the budget.
    used: u32,
    /// The lowest `remaining` the server reported for this window, minus the
    /// requests sent since (catches other clients sharing the org budget).
    reported: Option<u32>,
    /// The current window's reset, as the server named it (epoch seconds).
    window: Option<i64>,
    /// Responses naming a window at or before this one are stale.
    floor: i64,
    reset_at: Option<DateTime<Utc>>,
    /// Set by a 429: nothing goes out before this instant. It is kept apart
    /// from the window's count on purpose. A 429 may name a reset a second
    /// away while a response already in flight names the next, minute-long
    /// window; folding the 429's `remaining: 0` into that window's count
    /// would pause the client until that window's reset (~60 s) instead of
    /// the second the server asked for.
    hold_until: Option<DateTime<Utc>>,
}

impl OrgBudget {
    /// Requests that may still go out in this window; `None` = unknown.
    fn available(&self) -> Option<u32> {
        let by_limit = self.limit.map(|l| l.saturating_sub(self.used));
        match (by_limit, self.reported) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes one request from the budget if there is one; otherwise returns
    /// when to look again.
    fn take(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.reset_at.is_some_and(|r| now >= r) {
            // The window ended: a full budget again.
            self.floor = self.window.unwrap_or(self.floor);
            self.window = None;
            self.reset_at = None;
            self.reported = None;
            self.used = 0;
        }
        match self.available() {
            Some(0) => Some(self.reset_at.unwrap_or(now + UNKNOWN_RESET_POLL)),
            _ => {
                self.used += 1;
                self.reported = self.reported.map(|r| r.saturating_sub(1));
                None
            }
        }
    }
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
                match b.hold_until {
                    Some(hold) if now < hold => hold,
                    _ => {
                        b.hold_until = None;
                        match b.take(now) {
                            Some(wait_until) => wait_until,
                            None => return,
                        }
                    }
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
        if h.reset <= b.floor || b.window.is_some_and(|w| h.reset < w) {
            return;
        }
        if h.limit.is_some() {
            b.limit = h.limit;
        }
        if b.window == Some(h.reset) {
            b.reported = Some(b.reported.map_or(h.remaining, |r| r.min(h.remaining)));
        } else {
            // A later window starts from what the server reports for it.
            // The previous window's `remaining` does not carry over: a spent
            // (or 429'd) short window would otherwise keep the client waiting
            // for this one's reset too. `used` does carry over: requests sent
            // before this response may still be in flight and land in this
            // window, and the count only errs towards caution until the reset.
            b.window = Some(h.reset);
            b.reset_at = Some(h.reset_at(now));
            b.reported = Some(h.remaining);
        }
    }

    /// After a 429: nothing goes out until `until`. The response's
    /// `x-ratelimit-*` values, if any, were folded in by [`Limiter::observe`]
    /// and stay with the window they name.
    pub(crate) fn hold_until(&self, until: DateTime<Utc>) {
        let mut b = guard(&self.org);
        // The latest word of the server wins, even if it names an earlier
        // instant than a hold set before.
        b.hold_until = Some(until);
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
                if c.calls.is_multiple_of(1024) {
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
    use std::future::Future;
    use std::pin::Pin;

    /// A clock that jumps to each deadline, so a test reads exactly how long
    /// the limiter made a caller wait.
    struct JumpClock(Mutex<DateTime<Utc>>);

    impl Clock for JumpClock {
        fn now(&self) -> DateTime<Utc> {
            *guard(&self.0)
        }

        fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            let mut now = guard(&self.0);
            *now = (*now).max(deadline);
            Box::pin(std::future::ready(()))
        }
    }

    const T0: i64 = 1_742_587_200;

    fn limiter() -> (Arc<JumpClock>, Limiter) {
        let start = DateTime::from_timestamp(T0, 0).expect("valid");
        let clock = Arc::new(JumpClock(Mutex::new(start)));
        (clock.clone(), Limiter::new(clock, 100))
    }

    fn headers(remaining: u32, reset_in: i64, now: &JumpClock) -> RateHeaders {
        let server_now = now.now().timestamp();
        RateHeaders {
            limit: Some(300),
            remaining,
            reset: server_now + reset_in,
            server_now: Some(server_now),
        }
    }

    /// How long one `acquire` waits, on the jumping clock.
    async fn wait_of(clock: &JumpClock, l: &Limiter) -> Duration {
        let before = clock.now();
        l.acquire().await;
        clock.now() - before
    }

    #[tokio::test]
    async fn is7_a_one_second_429_does_not_carry_into_the_next_window() {
        let (clock, l) = limiter();
        l.acquire().await;
        l.acquire().await;
        // The 429 arrives first and names a window ending in a second…
        let refused = headers(0, 1, &clock);
        l.observe(&refused);
        l.hold_until(refused.reset_at(clock.now()));
        // …then the other request in flight answers from the next,
        // minute-long window, which has budget left.
        l.observe(&headers(250, 60, &clock));
        let waited = wait_of(&clock, &l).await;
        assert_eq!(
            waited,
            Duration::seconds(1),
            "paused for the 429's second only"
        );
        assert_eq!(
            wait_of(&clock, &l).await,
            Duration::zero(),
            "then budget again"
        );
    }

    #[tokio::test]
    async fn is7_a_one_second_429_inside_a_known_window_keeps_its_budget() {
        let (clock, l) = limiter();
        l.acquire().await;
        l.observe(&headers(200, 40, &clock));
        let refused = headers(0, 1, &clock);
        l.observe(&refused);
        l.hold_until(refused.reset_at(clock.now()));
        assert_eq!(wait_of(&clock, &l).await, Duration::seconds(1));
        for _ in 0..50 {
            assert_eq!(wait_of(&clock, &l).await, Duration::zero());
        }
    }

    #[tokio::test]
    async fn a_spent_budget_waits_for_the_window_reset() {
        let (clock, l) = limiter();
        l.acquire().await;
        // Two left in a window ending in 30 s: two go at once, the third
        // waits for the reset.
        l.observe(&headers(2, 30, &clock));
        assert_eq!(wait_of(&clock, &l).await, Duration::zero());
        assert_eq!(wait_of(&clock, &l).await, Duration::zero());
        assert_eq!(wait_of(&clock, &l).await, Duration::seconds(30));
        // A 429 with the window's own reset (the org budget spent elsewhere)
        // holds the client until that reset.
        let spent = headers(0, 60, &clock);
        l.observe(&spent);
        l.hold_until(spent.reset_at(clock.now()));
        assert_eq!(wait_of(&clock, &l).await, Duration::seconds(60));
    }

    #[tokio::test]
    async fn requests_in_flight_count_against_the_limit() {
        let (clock, l) = limiter();
        l.acquire().await;
        l.observe(&headers(299, 60, &clock));
        // 299 more may go before any of them answers; the next waits.
        for _ in 0..299 {
            assert_eq!(wait_of(&clock, &l).await, Duration::zero());
        }
        assert_eq!(wait_of(&clock, &l).await, Duration::seconds(60));
    }

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

    #[test]
    fn reads_the_server_date_in_every_http_form_and_other_rfc_2822_dates() {
        let at = Some(1_618_930_728);
        for date in [
            "Tue, 20 Apr 2021 14:58:48 GMT",
            "Tuesday, 20-Apr-21 14:58:48 GMT",
            "Tue Apr 20 14:58:48 2021",
            "Tue, 20 Apr 2021 16:58:48 +0200",
            "20 Apr 2021 14:58:48 +0000",
        ] {
            assert_eq!(http_date(date), at, "{date}");
        }
        assert_eq!(http_date("yesterday"), None);
    }
}
