//! A synthetic but plausible market for one auction, zone and MTU: what the participant's orders
//! clear against in the simulator.
//!
//! Supply is a merit-order stack (solar and wind near zero, nuclear, hydro, lignite, coal, gas
//! CCGT, gas peakers, imports, oil and demand response), demand a curve with a daily shape (night trough,
//! morning and evening peaks, a midday dip where solar covers load). Capacities scale with the
//! zone's size; wind, fuel prices and load wobble from day to day and quarter to quarter. It is
//! deterministic: a hash of (market, delivery day, zone, MTU) seeds every wobble, so the same
//! question always gets the same market.

use energy_core::calendar::{AuctionId, MARKET_TIME_ZONE};
use energy_core::hash::{fnv1a64, mix64};
use energy_core::market::{Side, Zone};
use energy_core::money::{Lots, PriceCents};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::clearing::ClearingStep;

/// Typical peak load of a zone in MW.
pub fn zone_size_mw(zone: Zone) -> i64 {
    match zone {
        Zone::DeLu => 65_000,
        Zone::Fr => 60_000,
        Zone::It => 28_000,
        Zone::Es => 33_000,
        Zone::Pl => 22_000,
        Zone::Nl => 14_000,
        Zone::Be => 11_000,
        Zone::Se3 => 12_000,
        Zone::Fi => 11_000,
        Zone::At | Zone::Cz | Zone::Ro | Zone::Gr | Zone::Pt | Zone::Hu | Zone::Bg => 8_000,
        Zone::No1 | Zone::No2 | Zone::No3 | Zone::No4 | Zone::No5 => 4_500,
        Zone::Dk1 | Zone::Se4 | Zone::Sk | Zone::Hr | Zone::Si => 3_500,
        Zone::Dk2 | Zone::Se1 | Zone::Se2 => 2_500,
        Zone::Lt => 1_800,
        Zone::Ee | Zone::Lv => 1_200,
    }
}

/// Nuclear share of a zone's size.
fn nuclear_share_pct(zone: Zone) -> i64 {
    match zone {
        Zone::Fr => 60,
        Zone::Be | Zone::Cz | Zone::Sk | Zone::Hu | Zone::Fi | Zone::Se3 | Zone::Si | Zone::Bg => {
            30
        }
        Zone::Es | Zone::Ro | Zone::Nl => 10,
        _ => 0,
    }
}

/// Hydro share (reservoirs, priced as water value).
fn hydro_share_pct(zone: Zone) -> i64 {
    match zone {
        Zone::No1 | Zone::No2 | Zone::No3 | Zone::No4 | Zone::No5 | Zone::Se1 | Zone::Se2 => 90,
        Zone::At | Zone::Pt | Zone::Hr | Zone::Si | Zone::Lv => 35,
        Zone::Fr | Zone::Es | Zone::It | Zone::Ro | Zone::Fi | Zone::Se3 => 15,
        _ => 5,
    }
}

/// A deterministic stream of numbers for one market.
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> u64 {
        self.0 = mix64(self.0);
        self.0
    }

    /// Uniform in `[lo, hi]`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.roll() % (hi - lo + 1) as u64) as i64
    }
}

/// Load as a percentage of the zone's size, by local hour.
fn load_pct(hour: i8) -> i64 {
    match hour {
        0..=4 => 62,
        5 => 68,
        6 => 80,
        7..=9 => 97,
        10..=15 => 90,
        16 => 93,
        17..=20 => 100,
        21 => 88,
        _ => 75,
    }
}

/// Solar output as a percentage of the zone's size, by local hour (a winter-spring average).
fn solar_pct(hour: i8) -> i64 {
    match hour {
        8 | 17 => 3,
        9 | 16 => 8,
        10 | 15 => 14,
        11..=14 => 20,
        _ => 0,
    }
}

/// The market's own steps for one MTU, ids prefixed `mkt:`.
pub fn market_steps(auction: AuctionId, zone: Zone, mtu_start: Timestamp) -> Vec<ClearingStep> {
    let tz = TimeZone::get(MARKET_TIME_ZONE).unwrap_or(TimeZone::UTC);
    let hour = mtu_start.to_zoned_datetime(tz).hour();
    let day_key = format!("{}|{}|{}", auction.market, auction.delivery_date, zone);
    let mut day = Dice(fnv1a64(day_key.as_bytes()));
    let mut quarter = Dice(fnv1a64(
        format!("{day_key}|{}", mtu_start.as_second()).as_bytes(),
    ));
    let size = zone_size_mw(zone);
    let mw = |pct: i64| Lots(size * pct * 10 / 100); // pct of size, in 0.1 MW lots
    let eur = |e: i64| PriceCents(e * 100);

    let wind_pct = day.between(5, 45) + quarter.between(-2, 2);
    let gas = day.between(70, 120); // €/MWh for a CCGT, this day
    let coal = day.between(55, 85);
    let water = day.between(25, 60);
    let mut steps = Vec::with_capacity(16);
    let mut push = |id: &str, side: Side, price: PriceCents, quantity: Lots| {
        if quantity.0 > 0 {
            steps.push(ClearingStep {
                id: format!("mkt:{id}"),
                side,
                price,
                quantity,
                receipt: 0,
                record_id: String::new(),
            });
        }
    };
    // Supply, cheapest first.
    push(
        "solar",
        Side::Sell,
        PriceCents(-quarter.between(0, 500)),
        mw(solar_pct(hour)),
    );
    push(
        "wind",
        Side::Sell,
        PriceCents(quarter.between(-200, 200)),
        mw(wind_pct.max(1)),
    );
    push(
        "nuclear",
        Side::Sell,
        PriceCents(day.between(800, 1_500)),
        mw(nuclear_share_pct(zone)),
    );
    push("hydro", Side::Sell, eur(water), mw(hydro_share_pct(zone)));
    push("lignite", Side::Sell, eur(day.between(35, 50)), mw(10));
    push("coal", Side::Sell, eur(coal), mw(12));
    push("ccgt-1", Side::Sell, eur(gas), mw(15));
    push("ccgt-2", Side::Sell, eur(gas + 12), mw(12));
    push(
        "peaker-1",
        Side::Sell,
        eur(gas + 60 + quarter.between(0, 20)),
        mw(10),
    );
    push("peaker-2", Side::Sell, eur(gas + 140), mw(8));
    push("imports", Side::Sell, eur(day.between(300, 600)), mw(15));
    push("oil-dsr", Side::Sell, eur(day.between(400, 900)), mw(6));
    // Demand: most of it inelastic (bid at the cap), the rest flexible.
    let load = load_pct(hour) + quarter.between(-3, 3);
    push("load", Side::Buy, eur(4_000), mw(load * 80 / 100));
    push("flex-1", Side::Buy, eur(gas + 40), mw(load * 8 / 100));
    push("flex-2", Side::Buy, eur(gas - 10), mw(load * 7 / 100));
    push("flex-3", Side::Buy, eur(20), mw(load * 5 / 100));
    steps
}

/// The market of a decoupled zone, which clears alone: no imports reach it, and without its
/// neighbours' cheaper plant competing, its own supply is offered 10 % dearer (prices above
/// zero). Deterministic as [`market_steps`], and different from it wherever supply sets the price.
pub fn decoupled_market_steps(
    auction: AuctionId,
    zone: Zone,
    mtu_start: Timestamp,
) -> Vec<ClearingStep> {
    let mut steps = market_steps(auction, zone, mtu_start);
    steps.retain(|s| s.id != "mkt:imports");
    for s in steps
        .iter_mut()
        .filter(|s| s.side == Side::Sell && s.price.0 > 0)
    {
        s.price = PriceCents(s.price.0.saturating_add(s.price.0 / 10));
    }
    steps
}
