//! Gate closure and publication instants in UTC, and MTU counts, for every auction on a winter
//! day, a summer day and both DST switch days of 2026.

use energy_auction::calendar::{AuctionId, MarketRules};
use energy_core::market::Market;

fn check(market: Market, day: &str, gate: &str, publication: &str, mtus: usize) {
    let rules = MarketRules::default();
    let auction = AuctionId {
        market,
        delivery_date: day.parse().unwrap(),
    };
    assert_eq!(
        rules.gate_closure(auction).unwrap().to_string(),
        gate,
        "{auction} gate closure"
    );
    assert_eq!(
        rules.expected_publication(auction).unwrap().to_string(),
        publication,
        "{auction} publication"
    );
    assert_eq!(rules.mtus(auction).unwrap().len(), mtus, "{auction} MTUs");
}

#[test]
fn sdac_closes_at_noon_brussels_the_day_before_and_publishes_45_minutes_later() {
    check(
        Market::Sdac,
        "2026-01-15",
        "2026-01-14T11:00:00Z",
        "2026-01-14T11:45:00Z",
        96,
    );
    check(
        Market::Sdac,
        "2026-07-15",
        "2026-07-14T10:00:00Z",
        "2026-07-14T10:45:00Z",
        96,
    );
    check(
        Market::Sdac,
        "2026-03-29",
        "2026-03-28T11:00:00Z",
        "2026-03-28T11:45:00Z",
        92,
    );
    check(
        Market::Sdac,
        "2026-10-25",
        "2026-10-24T10:00:00Z",
        "2026-10-24T10:45:00Z",
        100,
    );
}

#[test]
fn ida1_closes_at_15_the_day_before() {
    check(
        Market::Ida1,
        "2026-01-15",
        "2026-01-14T14:00:00Z",
        "2026-01-14T14:20:00Z",
        96,
    );
    check(
        Market::Ida1,
        "2026-07-15",
        "2026-07-14T13:00:00Z",
        "2026-07-14T13:20:00Z",
        96,
    );
    check(
        Market::Ida1,
        "2026-03-29",
        "2026-03-28T14:00:00Z",
        "2026-03-28T14:20:00Z",
        92,
    );
    check(
        Market::Ida1,
        "2026-10-25",
        "2026-10-24T13:00:00Z",
        "2026-10-24T13:20:00Z",
        100,
    );
}

#[test]
fn ida2_closes_at_22_the_day_before() {
    check(
        Market::Ida2,
        "2026-01-15",
        "2026-01-14T21:00:00Z",
        "2026-01-14T21:20:00Z",
        96,
    );
    check(
        Market::Ida2,
        "2026-07-15",
        "2026-07-14T20:00:00Z",
        "2026-07-14T20:20:00Z",
        96,
    );
    check(
        Market::Ida2,
        "2026-03-29",
        "2026-03-28T21:00:00Z",
        "2026-03-28T21:20:00Z",
        92,
    );
    check(
        Market::Ida2,
        "2026-10-25",
        "2026-10-24T20:00:00Z",
        "2026-10-24T20:20:00Z",
        100,
    );
}

#[test]
fn ida3_closes_at_10_on_the_day_and_delivers_its_second_half() {
    check(
        Market::Ida3,
        "2026-01-15",
        "2026-01-15T09:00:00Z",
        "2026-01-15T09:20:00Z",
        48,
    );
    check(
        Market::Ida3,
        "2026-07-15",
        "2026-07-15T08:00:00Z",
        "2026-07-15T08:20:00Z",
        48,
    );
    // After the switch to CEST at 02:00 and back to CET at 03:00 the same morning.
    check(
        Market::Ida3,
        "2026-03-29",
        "2026-03-29T08:00:00Z",
        "2026-03-29T08:20:00Z",
        48,
    );
    check(
        Market::Ida3,
        "2026-10-25",
        "2026-10-25T09:00:00Z",
        "2026-10-25T09:20:00Z",
        48,
    );
}

#[test]
fn the_mtu_grid_of_the_dst_days_starts_at_local_midnight_and_steps_15_minutes() {
    let rules = MarketRules::default();
    for (day, first, last) in [
        ("2026-03-29", "2026-03-28T23:00:00Z", "2026-03-29T21:45:00Z"),
        ("2026-10-25", "2026-10-24T22:00:00Z", "2026-10-25T22:45:00Z"),
    ] {
        let mtus = rules
            .mtus(AuctionId {
                market: Market::Sdac,
                delivery_date: day.parse().unwrap(),
            })
            .unwrap();
        assert_eq!(
            (mtus[0].to_string(), mtus[mtus.len() - 1].to_string()),
            (first.to_string(), last.to_string())
        );
        assert!(
            mtus.windows(2)
                .all(|w| w[1].as_second() - w[0].as_second() == 900)
        );
    }
}

#[test]
fn the_rules_are_configuration() {
    let mut rules = MarketRules::default();
    rules.sdac.gate_time = jiff::civil::Time::constant(11, 0, 0, 0);
    rules.sdac.max_price = energy_core::money::PriceCents(500_000);
    let auction = AuctionId {
        market: Market::Sdac,
        delivery_date: "2026-01-15".parse().unwrap(),
    };
    assert_eq!(
        rules.gate_closure(auction).unwrap().to_string(),
        "2026-01-14T10:00:00Z"
    );
}
