//! The market calendar and limits: when an auction's gate closes, when its results are expected,
//! which quarter-hours it delivers, and its price limits.
//!
//! Everything here is configuration with today's values as defaults ([`MarketRules::default`]):
//! the harmonised limits and the auction times move by rule changes, not by code changes. Times
//! are defined in Europe/Brussels local time and turned into UTC instants for the delivery day, so
//! the spring DST day has 92 quarter-hours and the autumn one 100.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::market::Market;
use crate::money::{Lots, PriceCents};

/// Length of one market time unit.
pub const MTU_MINUTES: i64 = 15;

/// The time zone every auction time is defined in.
pub const MARKET_TIME_ZONE: &str = "Europe/Brussels";

/// One auction: a market and the local delivery date it trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AuctionId {
    pub market: Market,
    pub delivery_date: Date,
}

impl std::fmt::Display for AuctionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.market, self.delivery_date)
    }
}

/// The rules of one market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketSpec {
    /// Gate closure: days relative to the delivery day (−1 = the day before) and local time.
    pub gate_day_offset: i32,
    pub gate_time: Time,
    /// Results are expected this long after gate closure: the preliminary ones where the
    /// market has two steps (SDAC ~12:45), else the final ones.
    pub publication_after_gate: SignedDuration,
    /// Final results are expected this long after gate closure, when the market publishes
    /// preliminary ones first (SDAC ~13:00: the exchanges confirm them); `None`: the first
    /// results are final (the IDAs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_after_gate: Option<SignedDuration>,
    /// Local delivery window within the delivery day, in hours from local midnight
    /// (`0..24` for the whole day; IDA3 delivers `12..24`).
    pub delivery_from_hour: i8,
    pub delivery_to_hour: i8,
    pub min_price: PriceCents,
    pub max_price: PriceCents,
    /// The order book opens: days relative to the delivery day and local time. Before it, an
    /// order for the auction is refused (a desk cannot post for 2999).
    #[serde(default = "default_book_opens_day_offset")]
    pub book_opens_day_offset: i32,
    #[serde(default = "default_book_opens_time")]
    pub book_opens_time: Time,
}

fn default_book_opens_day_offset() -> i32 {
    -45
}

fn default_book_opens_time() -> Time {
    Time::constant(0, 0, 0, 0)
}

/// Limits that apply to every order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLimits {
    /// Price/quantity steps per MTU curve.
    pub max_steps_per_curve: usize,
    /// Orders per POST /orders.
    pub max_batch: usize,
    /// Most power one order may offer in one MTU (the sum of its steps). Exchanges cap an order
    /// (OTE: 2 999 MW); the cap also keeps every derived figure (energy, notional) far inside
    /// the integers that hold it.
    #[serde(default = "default_max_volume")]
    pub max_volume: Lots,
    /// New orders are taken until the gate minus this, so their hand-over to the platform
    /// completes before the gate (template parameter `GateMarginSeconds`).
    #[serde(default = "default_gate_margin")]
    pub gate_margin: SignedDuration,
}

fn default_gate_margin() -> SignedDuration {
    SignedDuration::from_secs(60)
}

fn default_max_volume() -> Lots {
    Lots(29_999)
}

/// Every market's rules plus order limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketRules {
    pub sdac: MarketSpec,
    pub ida1: MarketSpec,
    pub ida2: MarketSpec,
    pub ida3: MarketSpec,
    pub limits: OrderLimits,
}

/// An IDA: gate and book opening (both as day offset and local hour), delivery from `from_hour`.
fn ida(gate: (i32, i8), book_opens: (i32, i8), from_hour: i8) -> MarketSpec {
    MarketSpec {
        gate_day_offset: gate.0,
        gate_time: Time::constant(gate.1, 0, 0, 0),
        publication_after_gate: SignedDuration::from_mins(20),
        final_after_gate: None,
        delivery_from_hour: from_hour,
        delivery_to_hour: 24,
        min_price: PriceCents(-999_900),
        max_price: PriceCents(999_900),
        book_opens_day_offset: book_opens.0,
        book_opens_time: Time::constant(book_opens.1, 0, 0, 0),
    }
}

impl Default for MarketRules {
    /// The rules in force in 2025–2026 (see DOMAIN.md).
    fn default() -> Self {
        MarketRules {
            sdac: MarketSpec {
                gate_day_offset: -1,
                gate_time: Time::constant(12, 0, 0, 0),
                publication_after_gate: SignedDuration::from_mins(45),
                // Preliminary about 12:45, final once the exchanges confirm (12:55–13:50).
                final_after_gate: Some(SignedDuration::from_mins(60)),
                delivery_from_hour: 0,
                delivery_to_hour: 24,
                min_price: PriceCents(-50_000),
                max_price: PriceCents(400_000),
                // Day-ahead books open weeks ahead (exchanges use 30–60 days).
                book_opens_day_offset: default_book_opens_day_offset(),
                book_opens_time: default_book_opens_time(),
            },
            // IDA books open the day before; at midnight here, so a desk can post all four of
            // tomorrow's auctions from the start of today (exchanges differ: OTE opens IDA1–3
            // at 11:00, 16:00 and 23:00; configure it to match yours).
            ida1: ida((-1, 15), (-1, 0), 0),
            ida2: ida((-1, 22), (-1, 0), 0),
            ida3: ida((0, 10), (-1, 0), 12),
            limits: OrderLimits {
                max_steps_per_curve: 200,
                max_batch: 100,
                max_volume: default_max_volume(),
                gate_margin: default_gate_margin(),
            },
        }
    }
}

/// A calendar computation that fell outside the representable range of dates.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the calendar cannot place {0}: {1}")]
pub struct CalendarError(pub AuctionId, pub String);

/// `t` in market time for a person: `12:45 CET`.
pub fn market_time(t: Timestamp) -> String {
    t.to_zoned_datetime(market_tz())
        .strftime("%H:%M %Z")
        .to_string()
}

fn market_tz() -> TimeZone {
    // The bundled tz database always has it; fall back to UTC only if a build strips it.
    TimeZone::get(MARKET_TIME_ZONE).unwrap_or(TimeZone::UTC)
}

/// UTC instant of local `hour:00` on `date` in market time, where `hour` may be 24.
fn local_instant(date: Date, hour: i8, auction: AuctionId) -> Result<Timestamp, CalendarError> {
    let err = |e: jiff::Error| CalendarError(auction, e.to_string());
    let (date, hour) = if hour >= 24 {
        (date.tomorrow().map_err(err)?, hour - 24)
    } else {
        (date, hour)
    };
    let zoned = date
        .at(hour, 0, 0, 0)
        .to_zoned_datetime(market_tz())
        .map_err(err)?;
    Ok(zoned.timestamp())
}

impl MarketRules {
    /// The rules of one market.
    pub fn spec(&self, market: Market) -> &MarketSpec {
        match market {
            Market::Sdac => &self.sdac,
            Market::Ida1 => &self.ida1,
            Market::Ida2 => &self.ida2,
            Market::Ida3 => &self.ida3,
        }
    }

    /// The instant after which the auction takes no more orders.
    pub fn gate_closure(&self, auction: AuctionId) -> Result<Timestamp, CalendarError> {
        let spec = self.spec(auction.market);
        let err = |e: jiff::Error| CalendarError(auction, e.to_string());
        let day = auction
            .delivery_date
            .checked_add(jiff::Span::new().days(spec.gate_day_offset))
            .map_err(err)?;
        let zoned = day
            .to_datetime(spec.gate_time)
            .to_zoned_datetime(market_tz())
            .map_err(err)?;
        Ok(zoned.timestamp())
    }

    /// The instant the auction's order book opens.
    pub fn book_opening(&self, auction: AuctionId) -> Result<Timestamp, CalendarError> {
        let spec = self.spec(auction.market);
        let err = |e: jiff::Error| CalendarError(auction, e.to_string());
        let day = auction
            .delivery_date
            .checked_add(jiff::Span::new().days(spec.book_opens_day_offset))
            .map_err(err)?;
        let zoned = day
            .to_datetime(spec.book_opens_time)
            .to_zoned_datetime(market_tz())
            .map_err(err)?;
        Ok(zoned.timestamp())
    }

    /// The last instant a new order is taken: the gate minus the safety margin.
    pub fn last_order_time(&self, auction: AuctionId) -> Result<Timestamp, CalendarError> {
        let gate = self.gate_closure(auction)?;
        gate.checked_sub(self.limits.gate_margin)
            .map_err(|e| CalendarError(auction, e.to_string()))
    }

    /// When results are normally published.
    pub fn expected_publication(&self, auction: AuctionId) -> Result<Timestamp, CalendarError> {
        let gate = self.gate_closure(auction)?;
        gate.checked_add(self.spec(auction.market).publication_after_gate)
            .map_err(|e| CalendarError(auction, e.to_string()))
    }

    /// When final results are normally published: the expected publication, or later where the
    /// market publishes preliminary results first.
    pub fn expected_final(&self, auction: AuctionId) -> Result<Timestamp, CalendarError> {
        let spec = self.spec(auction.market);
        let after = spec
            .final_after_gate
            .map_or(spec.publication_after_gate, |f| {
                f.max(spec.publication_after_gate)
            });
        let gate = self.gate_closure(auction)?;
        gate.checked_add(after)
            .map_err(|e| CalendarError(auction, e.to_string()))
    }

    /// The delivery window `[start, end)` in UTC.
    pub fn delivery_window(
        &self,
        auction: AuctionId,
    ) -> Result<(Timestamp, Timestamp), CalendarError> {
        let spec = self.spec(auction.market);
        let start = local_instant(auction.delivery_date, spec.delivery_from_hour, auction)?;
        let end = local_instant(auction.delivery_date, spec.delivery_to_hour, auction)?;
        Ok((start, end))
    }

    /// Every MTU start of the auction, in order.
    pub fn mtus(&self, auction: AuctionId) -> Result<Vec<Timestamp>, CalendarError> {
        let (start, end) = self.delivery_window(auction)?;
        let step = SignedDuration::from_mins(MTU_MINUTES);
        let mut out = Vec::with_capacity(100);
        let mut t = start;
        while t < end {
            out.push(t);
            t = t
                .checked_add(step)
                .map_err(|e| CalendarError(auction, e.to_string()))?;
        }
        Ok(out)
    }

    /// Where an MTU start stands relative to the auction's delivery window.
    pub fn check_mtu(
        &self,
        auction: AuctionId,
        mtu_start: Timestamp,
    ) -> Result<MtuCheck, CalendarError> {
        let (start, end) = self.delivery_window(auction)?;
        let offset = mtu_start.as_second() - start.as_second();
        Ok(
            if mtu_start.subsec_nanosecond() != 0 || offset % (MTU_MINUTES * 60) != 0 {
                MtuCheck::OffGrid
            } else if mtu_start < start || mtu_start >= end {
                MtuCheck::OutsideDelivery { start, end }
            } else {
                MtuCheck::Ok
            },
        )
    }
}

/// The answer of [`MarketRules::check_mtu`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtuCheck {
    Ok,
    OffGrid,
    OutsideDelivery { start: Timestamp, end: Timestamp },
}

/// Today's date in market time.
pub fn market_date(now: Timestamp) -> Date {
    now.to_zoned_datetime(market_tz()).date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn auction(market: Market, d: Date) -> AuctionId {
        AuctionId {
            market,
            delivery_date: d,
        }
    }

    #[test]
    fn sdac_gate_closure_is_noon_brussels_the_day_before() {
        let rules = MarketRules::default();
        let winter = auction(Market::Sdac, date(2026, 1, 15));
        assert_eq!(
            rules.gate_closure(winter).unwrap().to_string(),
            "2026-01-14T11:00:00Z"
        );
        assert_eq!(
            rules.expected_publication(winter).unwrap().to_string(),
            "2026-01-14T11:45:00Z"
        );
        let summer = auction(Market::Sdac, date(2026, 7, 15));
        assert_eq!(
            rules.gate_closure(summer).unwrap().to_string(),
            "2026-07-14T10:00:00Z"
        );
    }

    #[test]
    fn dst_days_have_92_and_100_mtus() {
        let rules = MarketRules::default();
        assert_eq!(
            rules
                .mtus(auction(Market::Sdac, date(2026, 3, 29)))
                .unwrap()
                .len(),
            92
        );
        assert_eq!(
            rules
                .mtus(auction(Market::Sdac, date(2026, 10, 25)))
                .unwrap()
                .len(),
            100
        );
        assert_eq!(
            rules
                .mtus(auction(Market::Sdac, date(2026, 6, 1)))
                .unwrap()
                .len(),
            96
        );
        assert_eq!(
            rules
                .mtus(auction(Market::Ida3, date(2026, 6, 1)))
                .unwrap()
                .len(),
            48
        );
    }

    #[test]
    fn ida3_closes_on_the_delivery_day_and_delivers_the_afternoon() {
        let rules = MarketRules::default();
        let a = auction(Market::Ida3, date(2026, 1, 15));
        assert_eq!(
            rules.gate_closure(a).unwrap().to_string(),
            "2026-01-15T09:00:00Z"
        );
        let (start, end) = rules.delivery_window(a).unwrap();
        assert_eq!(
            (start.to_string(), end.to_string()),
            ("2026-01-15T11:00:00Z".into(), "2026-01-15T23:00:00Z".into())
        );
    }

    #[test]
    fn mtu_checks_grid_and_window() {
        let rules = MarketRules::default();
        let a = auction(Market::Sdac, date(2026, 1, 15));
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            rules.check_mtu(a, at("2026-01-14T23:00:00Z")).unwrap(),
            MtuCheck::Ok
        );
        assert_eq!(
            rules.check_mtu(a, at("2026-01-14T23:05:00Z")).unwrap(),
            MtuCheck::OffGrid
        );
        assert!(matches!(
            rules.check_mtu(a, at("2026-01-15T23:00:00Z")).unwrap(),
            MtuCheck::OutsideDelivery { .. }
        ));
    }
}
