//! A clock that runs faster than the wall clock, from a chosen instant: how a demo auction closes
//! and publishes within seconds while every handler still reads "the time" from one place.

use std::time::Instant;

use energy_core::ports::Clock;
use jiff::{SignedDuration, Timestamp};

/// `start + (wall time since creation) × speed`.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    start: Timestamp,
    origin: Instant,
    speed: u32,
}

impl ScaledClock {
    /// A clock that reads `start` now and advances `speed` seconds per real second.
    pub fn new(start: Timestamp, speed: u32) -> Self {
        ScaledClock {
            start,
            origin: Instant::now(),
            speed: speed.max(1),
        }
    }

    pub fn speed(&self) -> u32 {
        self.speed
    }

    /// The real time until the clock reads `at` (zero if it already has).
    pub fn real_time_until(&self, at: Timestamp) -> std::time::Duration {
        let ahead = at.duration_since(self.now());
        if ahead <= SignedDuration::ZERO {
            return std::time::Duration::ZERO;
        }
        std::time::Duration::from_nanos(
            (ahead.as_nanos() / i128::from(self.speed)).clamp(0, i128::from(u64::MAX)) as u64,
        )
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        let real = self.origin.elapsed().as_nanos();
        let scaled = real
            .saturating_mul(u128::from(self.speed))
            .min(i64::MAX as u128) as i64;
        self.start
            .saturating_add(SignedDuration::from_nanos(scaled))
            .unwrap_or(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_starts_where_told_and_runs_faster() {
        let start: Timestamp = "2026-01-14T10:00:00Z".parse().unwrap();
        // Bounds from the wall time the test itself measured, so a busy machine cannot fail it.
        let before = std::time::Instant::now();
        let clock = ScaledClock::new(start, 600);
        let first = clock.now();
        let bound = SignedDuration::try_from(before.elapsed() * 600).unwrap();
        assert!(first >= start && first <= start + bound, "{first}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(clock.now().duration_since(first) >= SignedDuration::from_secs(12));
        let later = start + SignedDuration::from_mins(60);
        let left = clock.real_time_until(later);
        let waited = before.elapsed();
        assert!(left <= std::time::Duration::from_secs(6));
        assert!(
            left + waited >= std::time::Duration::from_secs(6),
            "an hour at 600x is six seconds from the start"
        );
    }
}
