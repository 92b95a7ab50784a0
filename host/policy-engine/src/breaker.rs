//! A circuit breaker: after repeated failures a policy is not called for a while.

use std::time::{Duration, Instant};

/// Consecutive failures that open the breaker.
pub const FAILURE_THRESHOLD: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Opens after [`FAILURE_THRESHOLD`] consecutive failures, for 1 s, doubling on each re-open up to 5 min. The
/// first call after the backoff is a trial: success closes the breaker, failure re-opens it for longer.
#[derive(Debug, Clone, Default)]
pub struct Breaker {
    failures: u32,
    backoff: Option<Duration>,
    open_until: Option<Instant>,
}

impl Breaker {
    /// Time left before the policy may be called again, if the breaker is open.
    pub fn blocked_for(&self, now: Instant) -> Option<Duration> {
        self.open_until.filter(|until| *until > now).map(|until| until - now)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a successful call.
    pub fn succeeded(&mut self) {
        *self = Breaker::default();
    }

    /// Records a failed call; returns true when this failure opened the breaker.
    pub fn failed(&mut self, now: Instant) -> bool {
        self.failures += 1;
        let trial_failed = self.backoff.is_some();
        if self.failures < FAILURE_THRESHOLD && !trial_failed {
            return false;
        }
        let backoff = self.backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
        self.backoff = Some(backoff);
        self.open_until = Some(now + backoff);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_five_failures_and_backs_off_exponentially() {
        let mut breaker = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(!breaker.failed(t0));
        }
        assert!(breaker.blocked_for(t0).is_none());
        assert!(breaker.failed(t0));
        assert_eq!(breaker.blocked_for(t0), Some(Duration::from_secs(1)));
        // The trial after the backoff fails: open again for twice as long.
        let t1 = t0 + Duration::from_secs(1);
        assert!(breaker.blocked_for(t1).is_none());
        assert!(breaker.failed(t1));
        assert_eq!(breaker.blocked_for(t1), Some(Duration::from_secs(2)));
        let mut t = t1;
        for _ in 0..20 {
            t += Duration::from_secs(600);
            breaker.failed(t);
        }
        assert_eq!(breaker.blocked_for(t), Some(MAX_BACKOFF));
        breaker.succeeded();
        assert!(breaker.blocked_for(t).is_none());
        assert_eq!(breaker.failures(), 0);
    }
}
