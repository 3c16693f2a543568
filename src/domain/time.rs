use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A point in time with millisecond precision, the precision EKS shows.
///
/// Stored as milliseconds since the Unix epoch; sent on the wire as epoch
/// seconds with a fraction (restJson1's default timestamp format).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The system clock. The server reads "now" through its [`Clock`], which
    /// tests can move forward; this is for tools that read a stopped store.
    pub fn now() -> Self {
        let now = ::time::OffsetDateTime::now_utc();
        Timestamp((now.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Epoch seconds as a JSON number, e.g. `1700862734.922`.
    pub fn as_epoch_seconds(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// The timestamp for a change made at `now` to something last changed at
    /// `self`: never earlier, and strictly later, so that every change moves
    /// `modifiedAt` forward even when two land in the same millisecond or the
    /// wall clock steps back.
    pub fn next_after(self, now: Timestamp) -> Timestamp {
        Timestamp(now.0.max(self.0 + 1))
    }

    pub fn plus_seconds(self, seconds: u64) -> Timestamp {
        Timestamp(self.0.saturating_add((seconds as i64).saturating_mul(1000)))
    }

    pub fn plus_millis(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms as i64))
    }
}

/// The server's "now": the system clock plus an offset that only moves
/// forward. The offset is 0 unless `testing.clock_control` lets a test move
/// it (`POST /admin/v1/clock`), so that token expiry, the token sweep and
/// cluster activation can be tested without waiting. It lives in the
/// process: a restart starts again from the system clock.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicU64,
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        Timestamp::now().plus_millis(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves the clock `seconds` forward; answers the new "now".
    pub fn advance(&self, seconds: u64) -> Timestamp {
        let ms = seconds.saturating_mul(1000);
        // `fetch_update` with a closure that always answers `Some` cannot fail.
        let _ = self
            .offset_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| {
                Some(offset.saturating_add(ms))
            });
        self.now()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_epoch_seconds())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_after_moves_forward_even_when_the_clock_does_not() {
        let t = Timestamp::from_millis(1_000);
        assert_eq!(
            t.next_after(Timestamp::from_millis(1_000)).as_millis(),
            1_001
        );
        assert_eq!(t.next_after(Timestamp::from_millis(900)).as_millis(), 1_001);
        assert_eq!(
            t.next_after(Timestamp::from_millis(5_000)).as_millis(),
            5_000
        );
    }

    #[test]
    fn an_advanced_clock_is_ahead_of_the_system_clock_by_at_least_the_advance() {
        let clock = Clock::default();
        let before = Timestamp::now();
        assert!(clock.now() >= before);
        let moved = clock.advance(3_600);
        assert!(moved >= before.plus_seconds(3_600), "{moved} {before}");
        assert!(clock.now() >= moved);
        assert!(clock.advance(0) >= moved, "the clock never goes back");
    }

    #[test]
    fn epoch_seconds_keep_the_milliseconds() {
        assert_eq!(
            Timestamp::from_millis(1_700_862_734_922).as_epoch_seconds(),
            1_700_862_734.922
        );
    }
}
