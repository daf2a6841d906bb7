//! Caller-supplied time. The engine never reads a clock.

use core::ops::{Add, Sub};
use core::time::Duration;

/// Milliseconds since an arbitrary epoch chosen by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    pub const fn from_secs(s: u64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }
}

/// Durations beyond u64 milliseconds saturate rather than wrap.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis(rhs)))
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    /// Saturating: an earlier minus a later timestamp is zero.
    fn sub(self, rhs: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(rhs.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        let t = Timestamp::from_millis(1500);
        assert_eq!((t + Duration::from_secs(1)).as_millis(), 2500);
        assert_eq!(t - Timestamp::from_millis(500), Duration::from_secs(1));
        assert_eq!(Timestamp::from_millis(1) - t, Duration::ZERO);
        assert_eq!(
            Timestamp::from_millis(u64::MAX) + Duration::from_secs(1),
            Timestamp::from_millis(u64::MAX)
        );
        assert_eq!(Timestamp::from_secs(2).as_millis(), 2000);
    }
}
