//! Rate limits and concurrency bounds, per identity and overall.
//!
//! Each identity (a token, a local user) draws from a token bucket — GCRA, by `governor` —
//! whose size and refill rate its role decides, and may have only so many calls in flight; all
//! callers together share a larger bound. A noisy identity therefore exhausts its own budget,
//! never the others'.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Caller;
use crate::config::{LimitsConfig, RateConfig};

/// How long a caller refused for concurrency is told to wait.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// Why a call was not admitted, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub reason: String,
}

impl Throttled {
    /// Whole seconds to wait, at least one (for `Retry-After`).
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; retry in {} s. Nothing was done.",
            self.reason,
            self.retry_after_seconds()
        )
    }
}

/// Holds a call's place until it ends.
#[derive(Debug)]
pub struct Admission {
    _overall: OwnedSemaphorePermit,
    _own: OwnedSemaphorePermit,
}

struct Budget {
    limiter: DefaultKeyedRateLimiter<String>,
    calls_per_minute: u64,
    max_concurrent: usize,
}

impl Budget {
    fn new(config: &RateConfig) -> Self {
        let per_minute = config.calls_per_minute.get();
        // A period of 60 s / rate, and the bucket's size; both are at least 1 by their bounds.
        let period = Duration::from_secs(60) / u32::try_from(per_minute).unwrap_or(u32::MAX);
        let burst = NonZeroU32::new(u32::try_from(config.burst.get()).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            calls_per_minute: per_minute,
            max_concurrent: usize::try_from(config.max_concurrent.get()).unwrap_or(usize::MAX),
        }
    }
}

/// The admission control of the gate.
pub struct Throttle {
    overall: Arc<Semaphore>,
    overall_limit: usize,
    default_budget: Budget,
    role_budgets: HashMap<String, Budget>,
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Throttle {
    pub fn from_config(limits: &LimitsConfig) -> Self {
        let overall_limit =
            usize::try_from(limits.max_concurrent_calls.get()).unwrap_or(usize::MAX);
        Self {
            overall: Arc::new(Semaphore::new(overall_limit)),
            overall_limit,
            default_budget: Budget::new(&limits.per_identity),
            role_budgets: limits
                .per_role
                .iter()
                .map(|(role, config)| (role.clone(), Budget::new(config)))
                .collect(),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one call of `caller`, or says when to retry.
    pub fn admit(&self, caller: &Caller) -> Result<Admission, Throttled> {
        let key = caller.identity.to_string();
        let budget = self
            .role_budgets
            .get(&caller.role.name)
            .unwrap_or(&self.default_budget);
        if let Err(not_until) = budget.limiter.check_key(&key) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Throttled {
                retry_after: wait,
                reason: format!(
                    "rate limit: {key} may make {} calls per minute (role {})",
                    budget.calls_per_minute, caller.role.name
                ),
            });
        }
        let own = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(
                in_flight
                    .entry(key.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(budget.max_concurrent))),
            )
        };
        let own = own.try_acquire_owned().map_err(|_| Throttled {
            retry_after: BUSY_RETRY,
            reason: format!(
                "{key} already has {} calls in flight, its limit",
                budget.max_concurrent
            ),
        })?;
        let overall = Arc::clone(&self.overall)
            .try_acquire_owned()
            .map_err(|_| Throttled {
                retry_after: BUSY_RETRY,
                reason: format!(
                    "the server has {} calls in flight, its limit",
                    self.overall_limit
                ),
            })?;
        Ok(Admission {
            _overall: overall,
            _own: own,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Identity, TransportKind};
    use crate::config::Config;
    use crate::gate::Policy;

    fn throttle(text: &str) -> (Throttle, Policy) {
        let config = crate::config::parse(text, "test").expect("config");
        (
            Throttle::from_config(&config.limits),
            Policy::from_config(&config),
        )
    }

    fn caller(policy: &Policy, name: &str, role: &str) -> Caller {
        Caller {
            identity: Identity::Token { name: name.into() },
            role: policy.role(role).expect("role"),
            transport: TransportKind::Http,
            remote: None,
        }
    }

    #[test]
    fn a_burst_is_admitted_then_the_rate_applies() {
        let (throttle, policy) =
            throttle("[limits.per_identity]\ncalls_per_minute = 60\nburst = 3\n");
        let noisy = caller(&policy, "noisy", "viewer");
        for _ in 0..3 {
            drop(throttle.admit(&noisy).expect("within the burst"));
        }
        let refused = throttle.admit(&noisy).expect_err("over the burst");
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert_eq!(refused.retry_after_seconds(), 1);
        assert!(
            refused.to_string().starts_with(
                "rate limit: token:noisy may make 60 calls per minute (role viewer); retry in 1 s"
            ),
            "{refused}"
        );
        // Another identity has its own bucket.
        assert!(throttle.admit(&caller(&policy, "quiet", "viewer")).is_ok());
    }

    #[test]
    fn concurrency_is_bounded_per_identity_and_overall() {
        let (throttle, policy) = throttle(
            "[limits]\nmax_concurrent_calls = 3\n[limits.per_identity]\nmax_concurrent = 2\n",
        );
        let one = caller(&policy, "one", "viewer");
        let two = caller(&policy, "two", "viewer");
        let first = throttle.admit(&one).expect("1");
        let _second = throttle.admit(&one).expect("2");
        let refused = throttle.admit(&one).expect_err("third in flight");
        assert!(
            refused.reason.contains("already has 2 calls in flight"),
            "{refused}"
        );
        let _third = throttle.admit(&two).expect("another identity");
        let refused = throttle.admit(&two).expect_err("overall limit");
        assert!(
            refused.reason.contains("the server has 3 calls in flight"),
            "{refused}"
        );
        drop(first);
        assert!(
            throttle.admit(&two).is_ok(),
            "a finished call frees its place"
        );
    }

    #[test]
    fn roles_may_have_their_own_budget() {
        let (throttle, policy) =
            throttle("[limits.per_identity]\nburst = 1\n[limits.per_role.viewer]\nburst = 5\n");
        let viewer = caller(&policy, "v", "viewer");
        let operator = caller(&policy, "o", "operator");
        for _ in 0..5 {
            drop(throttle.admit(&viewer).expect("viewer burst of 5"));
        }
        drop(throttle.admit(&operator).expect("operator burst of 1"));
        assert!(throttle.admit(&operator).is_err());
        let _ = Config::default();
    }
}
