//! One retry policy for both platforms. Each client says what one attempt
//! came to ([`Step`]): done, failed for good, worth retrying, or rate limited
//! until a named time; [`run`] does the counting, waiting, logging and
//! metrics the same way for both.
//!
//! Backoff is exponential from [`RetryPolicy::base_delay`], capped at
//! [`RetryPolicy::max_delay`], with jitter over the upper half of each delay
//! so the retries of many clients spread out while still growing. Waits run
//! on the client's [`Clock`], so tests can jump instead of sleeping.
use super::clock::Clock;
use chrono::{DateTime, Utc};
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// How transient failures are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time, with jitter.
    pub base_delay: Duration,
    /// Cap on a single delay (and on a server-named `Retry-After`).
    pub max_delay: Duration,
    /// How many rate-limit waits one call sits out before giving up. These
    /// waits are not attempts: the client sleeps until the reset the server
    /// named.
    pub max_rate_limit_waits: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Five tries over about five seconds rides out a deploy or a
        // dropped connection; longer outages are the pipeline's to wait out.
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_rate_limit_waits: 10,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        jittered_backoff(self.base_delay, self.max_delay, attempt)
    }
}

/// `base` doubled per failed attempt (1-based), capped at `max`, jittered
/// over the upper half so many clients' retries spread out while growing.
pub fn jittered_backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    exp.min(max).mul_f64(rand::random_range(0.5..=1.0))
}

/// What one attempt came to.
pub enum Step<T, E> {
    /// Finished: hand this to the caller.
    Done(T),
    /// Failed in a way a retry cannot mend.
    Fail(E),
    /// Failed transiently; retry after the backoff, or after the wait the
    /// server named (capped at `max_delay`). Counts as an attempt.
    Retry { error: E, after: Option<Duration> },
    /// Rate limited until `until`. Not an attempt; bounded by
    /// `max_rate_limit_waits`.
    Pace { error: E, until: DateTime<Utc> },
}

/// Why [`run`] stopped without a result.
#[derive(Debug)]
pub enum Stop<E> {
    /// The attempt said a retry cannot help.
    Failed(E),
    /// Retries or rate-limit waits ran out; `last` is the final failure.
    GaveUp { attempts: u32, last: E },
}

/// Runs `attempt` (given the 1-based attempt number) until it is done,
/// fails for good, or the policy runs out.
pub async fn run<T, E, F, Fut>(
    policy: &RetryPolicy,
    clock: &dyn Clock,
    api: &'static str,
    op: &'static str,
    mut attempt: F,
) -> Result<T, Stop<E>>
where
    E: Display,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Step<T, E>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut attempts = 0u32;
    let mut rate_waits = 0u32;
    loop {
        attempts += 1;
        match attempt(attempts).await {
            Step::Done(value) => return Ok(value),
            Step::Fail(error) => return Err(Stop::Failed(error)),
            Step::Retry { error, after } => {
                if attempts >= max_attempts {
                    return Err(Stop::GaveUp {
                        attempts,
                        last: error,
                    });
                }
                let wait = after.map_or_else(
                    || policy.backoff(attempts),
                    |named| named.min(policy.max_delay),
                );
                super::record_retry(api, op, "transient");
                tracing::warn!(api, op, attempt = attempts, %error, ?wait, "request failed; retrying");
                let until = clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
                clock.sleep_until(until).await;
            }
            Step::Pace { error, until } => {
                rate_waits += 1;
                // Waiting out a rate limit is pacing, not a failed attempt.
                attempts -= 1;
                if rate_waits > policy.max_rate_limit_waits {
                    return Err(Stop::GaveUp {
                        attempts: attempts + 1,
                        last: error,
                    });
                }
                super::record_retry(api, op, "rate_limited");
                tracing::warn!(api, op, %until, "rate limited; waiting for the reset");
                clock.sleep_until(until).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::clock::SystemClock;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_rate_limit_waits: 1,
        };
        for attempt in 1..=10 {
            let d = p.backoff(attempt);
            assert!(d <= Duration::from_secs(1), "attempt {attempt}: {d:?}");
            assert!(d >= Duration::from_millis(50), "attempt {attempt}: {d:?}");
        }
        assert!(p.backoff(4) >= Duration::from_millis(400));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_the_upper_half() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = p.backoff(1);
            assert!((50..=100).contains(&first.as_millis()), "{first:?}");
            let third = p.backoff(3);
            assert!((175..=350).contains(&third.as_millis()), "{third:?}");
            assert!(p.backoff(30) <= Duration::from_millis(350));
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_up_to_max_attempts() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let result: Result<(), Stop<String>> = run(&policy, &SystemClock, "test", "op", |_| {
            calls += 1;
            async {
                Step::Retry {
                    error: "503".to_string(),
                    after: None,
                }
            }
        })
        .await;
        assert!(matches!(result, Err(Stop::GaveUp { attempts: 3, .. })));
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn rate_limit_waits_are_not_attempts() {
        let policy = RetryPolicy {
            max_attempts: 1,
            max_rate_limit_waits: 4,
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let result = run(&policy, &SystemClock, "test", "op", |n| {
            calls += 1;
            let step = if calls <= 4 {
                Step::Pace {
                    error: "429".to_string(),
                    until: Utc::now(),
                }
            } else {
                Step::Done(n)
            };
            async move { step }
        })
        .await;
        assert_eq!(result.ok(), Some(1), "four waits, then the first attempt");
    }
}
