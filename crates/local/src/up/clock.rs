//! The market clock of `energy up`: wall time, compressed. It reads `anchor + (wall time since
//! the anchor) × speed`, and the anchor lives in the database, so the market clock keeps running
//! while `energy up` is down: schedules that came due meanwhile fire at the next start.

use energy_core::ports::Clock;
use jiff::{SignedDuration, Timestamp};

use crate::db::Db;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketClock {
    /// Wall time of the anchor.
    real: Timestamp,
    /// Market time at the anchor.
    market: Timestamp,
    speed: u32,
}

impl MarketClock {
    pub fn new(market: Timestamp, speed: u32) -> MarketClock {
        MarketClock {
            real: Timestamp::now(),
            market,
            speed: speed.max(1),
        }
    }

    pub fn speed(&self) -> u32 {
        self.speed
    }

    /// The clock kept in `db`, if any.
    pub fn load(db: &Db) -> anyhow::Result<Option<MarketClock>> {
        let Some(text) = db.meta("clock")? else {
            return Ok(None);
        };
        let mut parts = text.split(' ');
        let mut next = || parts.next().unwrap_or_default();
        let (real, market, speed) = (next(), next(), next());
        Ok(Some(MarketClock {
            real: real.parse()?,
            market: market.parse()?,
            speed: speed.parse()?,
        }))
    }

    pub fn save(&self, db: &Db) -> anyhow::Result<()> {
        db.set_meta(
            "clock",
            &format!("{} {} {}", self.real, self.market, self.speed),
        )?;
        Ok(())
    }

    /// The same market time from now on at another speed.
    pub fn with_speed(&self, speed: u32) -> MarketClock {
        MarketClock::new(self.now(), speed)
    }

    /// The wall time until the market clock reads `at` (zero if it has).
    pub fn real_time_until(&self, at: Timestamp) -> std::time::Duration {
        let ahead = at.duration_since(self.now());
        if ahead <= SignedDuration::ZERO {
            return std::time::Duration::ZERO;
        }
        let nanos = ahead.as_nanos() / i128::from(self.speed);
        std::time::Duration::from_nanos(nanos.clamp(0, i128::from(u64::MAX)) as u64)
    }
}

impl Clock for MarketClock {
    fn now(&self) -> Timestamp {
        let real = Timestamp::now().duration_since(self.real);
        let scaled = real.as_nanos().saturating_mul(i128::from(self.speed));
        let scaled = SignedDuration::from_nanos(scaled.clamp(0, i128::from(i64::MAX)) as i64);
        self.market.saturating_add(scaled).unwrap_or(self.market)
    }
}
