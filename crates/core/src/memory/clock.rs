use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

use super::lock;
use crate::ports::Clock;

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn set(&self, t: Timestamp) {
        *lock(&self.0) = t;
    }

    pub fn advance(&self, d: SignedDuration) {
        let mut now = lock(&self.0);
        *now = now.saturating_add(d).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *lock(&self.0)
    }
}
