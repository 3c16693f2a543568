use std::fmt;

/// A point in time with millisecond precision, the precision EKS shows.
///
/// Stored as milliseconds since the Unix epoch; sent on the wire as epoch
/// seconds with a fraction (restJson1's default timestamp format).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(i64);

impl Timestamp {
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
    fn epoch_seconds_keep_the_milliseconds() {
        assert_eq!(
            Timestamp::from_millis(1_700_862_734_922).as_epoch_seconds(),
            1_700_862_734.922
        );
    }
}
