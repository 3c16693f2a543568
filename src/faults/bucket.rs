//! The token bucket of a `throttle` rule.

use crate::domain::Timestamp;

/// `burst` tokens at most, refilled at `rate_per_second`; a request takes
/// one, and meets the throttle when none is left. Time is the server's clock
/// (so a test can refill it by moving the clock); a clock that steps back
/// refills nothing.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_second: f64,
    burst: f64,
    tokens: f64,
    refilled_at: Timestamp,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_second: f64, burst: u32, now: Timestamp) -> Self {
        TokenBucket {
            rate_per_second,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            refilled_at: now,
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Timestamp) -> bool {
        let elapsed_ms = now.as_millis() - self.refilled_at.as_millis();
        if elapsed_ms > 0 {
            self.tokens =
                (self.tokens + elapsed_ms as f64 * self.rate_per_second / 1000.0).min(self.burst);
            self.refilled_at = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_starts_full_empties_and_refills_at_its_rate_up_to_its_burst() {
        let t = Timestamp::from_millis;
        let mut bucket = TokenBucket::new(2.0, 3, t(0));
        assert!((0..3).all(|_| bucket.take(t(0))));
        assert!(!bucket.take(t(0)));
        // Half a second at 2 per second: one token.
        assert!(bucket.take(t(500)));
        assert!(!bucket.take(t(500)));
        // A long pause refills only up to the burst.
        assert_eq!((0..10).filter(|_| bucket.take(t(60_000))).count(), 3);
        // The clock going back refills nothing.
        assert!(!bucket.take(t(1_000)));
    }
}
