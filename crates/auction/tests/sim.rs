//! SimPlatform: gate closure, preliminary and final publication, delays, "never", decoupling,
//! and one stored clearing.

use std::sync::Arc;

use energy_auction::sim::{Publication, SimConfig, SimPlatform};
use energy_core::market::Zone;
use energy_core::memory::ManualClock;
use energy_core::order::Order;
use energy_core::ports::{AuctionPlatform, ResultsStatus, Submission};
use energy_core::result::Outcome;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

/// SDAC for 15 January 2026: preliminary results at 12:45 Brussels time, final at 13:00.
const PUBLICATION: &str = "2026-01-14T11:45:00Z";
const FINAL: &str = "2026-01-14T12:00:00Z";

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn order(id: &str, zone: &str, side: &str, steps: serde_json::Value) -> Order {
    serde_json::from_value(json!({
        "record_id": id, "market": "SDAC", "delivery_date": "2026-01-15", "zone": zone,
        "portfolio": "P", "side": side,
        "periods": [
            {"mtu_start": "2026-01-15T06:00:00Z", "steps": steps},
            {"mtu_start": "2026-01-15T12:00:00Z", "steps": steps}
        ]
    }))
    .unwrap()
}

fn platform(config: SimConfig) -> (Arc<ManualClock>, SimPlatform) {
    let clock = Arc::new(ManualClock::new(at("2026-01-14T09:00:00Z")));
    (clock.clone(), SimPlatform::new(config, clock))
}

async fn published(p: &SimPlatform, o: &Order) -> Box<energy_core::result::OrderResult> {
    match p.results(o).await.unwrap() {
        ResultsStatus::Published(r) => r,
        other => panic!("expected final results, got {other:?}"),
    }
}

async fn preliminary(
    p: &SimPlatform,
    o: &Order,
) -> (Box<energy_core::result::OrderResult>, Option<Timestamp>) {
    match p.results(o).await.unwrap() {
        ResultsStatus::Preliminary {
            result,
            expected_final,
        } => (result, expected_final),
        other => panic!("expected preliminary results, got {other:?}"),
    }
}

#[tokio::test]
async fn an_order_after_gate_closure_is_refused() {
    let (clock, p) = platform(SimConfig::default());
    clock.set(at("2026-01-14T11:00:00Z"));
    let o = order(
        "late",
        "DE-LU",
        "BUY",
        json!([{"price": "100.00", "quantity": "1.0"}]),
    );
    assert!(matches!(
        p.submit(&o).await.unwrap(),
        Submission::Refused { .. }
    ));
    assert!(matches!(
        p.results(&o).await.unwrap(),
        ResultsStatus::Unknown { .. }
    ));
}

#[tokio::test]
async fn results_appear_at_the_publication_time_and_not_before() {
    let (clock, p) = platform(SimConfig::default());
    let o = order(
        "o-1",
        "DE-LU",
        "BUY",
        json!([{"price": "3000.00", "quantity": "10.0"}]),
    );
    let Submission::Accepted {
        expected_publication,
    } = p.submit(&o).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(expected_publication, Some(at(PUBLICATION)));
    clock.set(at("2026-01-14T11:44:59Z"));
    assert_eq!(
        p.results(&o).await.unwrap(),
        ResultsStatus::NotYet {
            expected_publication: Some(at(PUBLICATION))
        }
    );
    clock.set(at(PUBLICATION));
    let (first, expected_final) = preliminary(&p, &o).await;
    assert_eq!(first.published_at, at(PUBLICATION));
    assert_eq!(expected_final, Some(at(FINAL)));
    clock.set(at("2026-01-14T11:59:59Z"));
    assert_eq!(
        preliminary(&p, &o).await.0,
        first,
        "preliminary until the final time"
    );
    clock.set(at(FINAL));
    let r = published(&p, &o).await;
    assert_eq!(r.outcome, Outcome::Accepted);
    assert_eq!(r.published_at, at(FINAL));
    assert_eq!(
        (r.mtus.clone(), r.totals.clone()),
        (first.mtus.clone(), first.totals.clone()),
        "a coupled zone's final result confirms its preliminary one"
    );
    assert!(
        r.mtus
            .iter()
            .all(|m| m.clearing_price.is_some_and(|p| p.0 > 0 && p.0 < 300_000)),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_configured_delay_holds_results_back() {
    let mut config = SimConfig::default();
    config
        .per_zone
        .insert(Zone::Fr, Publication::After(SignedDuration::from_mins(95)));
    let (clock, p) = platform(config);
    let o = order(
        "o-2",
        "FR",
        "SELL",
        json!([{"price": "-10.00", "quantity": "5.0"}]),
    );
    p.submit(&o).await.unwrap();
    clock.set(at("2026-01-14T13:00:00Z"));
    assert!(matches!(
        p.results(&o).await.unwrap(),
        ResultsStatus::NotYet { .. }
    ));
    clock.set(at("2026-01-14T13:20:00Z"));
    assert_eq!(preliminary(&p, &o).await.0.outcome, Outcome::Accepted);
    clock.set(at("2026-01-14T13:35:00Z"));
    assert_eq!(published(&p, &o).await.outcome, Outcome::Accepted);
}

#[tokio::test]
async fn never_never_publishes() {
    let config = SimConfig {
        publication: Publication::Never,
        ..SimConfig::default()
    };
    let (clock, p) = platform(config);
    let o = order(
        "o-3",
        "NL",
        "BUY",
        json!([{"price": "100.00", "quantity": "1.0"}]),
    );
    p.submit(&o).await.unwrap();
    clock.set(at("2026-01-20T00:00:00Z"));
    assert_eq!(
        p.results(&o).await.unwrap(),
        ResultsStatus::NotYet {
            expected_publication: None
        }
    );
}

#[tokio::test]
async fn each_auction_is_cleared_once_and_answers_stay_the_same() {
    let (clock, p) = platform(SimConfig::default());
    let buy = order(
        "b",
        "DE-LU",
        "BUY",
        json!([{"price": "500.00", "quantity": "5.0"}, {"price": "1.00", "quantity": "5.0"}]),
    );
    let sell = order(
        "s",
        "DE-LU",
        "SELL",
        json!([{"price": "3500.00", "quantity": "5.0"}]),
    );
    p.submit(&buy).await.unwrap();
    p.submit(&sell).await.unwrap();
    clock.set(at(FINAL));
    let first = published(&p, &buy).await;
    assert_eq!(first.outcome, Outcome::PartiallyAccepted);
    assert_eq!(published(&p, &sell).await.outcome, Outcome::Rejected);
    clock.set(at("2026-01-14T18:00:00Z"));
    let again = published(&p, &buy).await;
    assert_eq!(again, first);
    assert_eq!(p.clearings(), 1);
}

#[tokio::test]
async fn the_same_orders_get_the_same_results_on_another_platform() {
    let o = order(
        "d",
        "BE",
        "BUY",
        json!([{"price": "80.00", "quantity": "3.0"}]),
    );
    let mut results = Vec::new();
    for _ in 0..2 {
        let (clock, p) = platform(SimConfig::default());
        p.submit(&o).await.unwrap();
        clock.set(at(FINAL));
        results.push(published(&p, &o).await);
    }
    assert_eq!(results[0], results[1]);
}

#[tokio::test]
async fn a_stateless_platform_answers_for_an_order_another_instance_took() {
    let config = SimConfig {
        stateless: true,
        ..SimConfig::default()
    };
    let o = order(
        "st-1",
        "DE-LU",
        "BUY",
        json!([{"price": "500.00", "quantity": "5.0"}, {"price": "1.00", "quantity": "5.0"}]),
    );
    let (_, first) = platform(config.clone());
    first.submit(&o).await.unwrap();
    let (clock, second) = platform(config);
    assert!(matches!(
        second.results(&o).await.unwrap(),
        ResultsStatus::NotYet { .. }
    ));
    clock.set(at(FINAL));
    let r = published(&second, &o).await;
    assert_eq!(r.outcome, Outcome::PartiallyAccepted);
    assert_eq!(
        published(&second, &o).await,
        r,
        "the same answer every time"
    );
}

#[tokio::test]
async fn a_decoupled_zone_loses_its_preliminary_result_and_gets_a_different_final_one_later() {
    // Statefully and statelessly (the platform inside a Lambda function): the same story.
    for stateless in [false, true] {
        let config = SimConfig {
            stateless,
            ..SimConfig::default()
        };
        let (clock, p) = platform(config);
        p.decouple(Zone::DeLu);
        let steps = json!([{"price": "3000.00", "quantity": "10.0"}]);
        let decoupled = order("dc-1", "DE-LU", "BUY", steps.clone());
        let coupled = order("dc-2", "FR", "BUY", steps);
        p.submit(&decoupled).await.unwrap();
        p.submit(&coupled).await.unwrap();
        clock.set(at(PUBLICATION));
        let (first, expected_final) = preliminary(&p, &decoupled).await;
        assert_eq!(expected_final, Some(at(FINAL)), "nobody knows yet");
        clock.set(at(FINAL));
        let later = at("2026-01-14T13:40:00Z");
        assert_eq!(
            p.results(&decoupled).await.unwrap(),
            ResultsStatus::NotYet {
                expected_publication: Some(later)
            },
            "withdrawn at the final time (stateless: {stateless})"
        );
        assert_eq!(published(&p, &coupled).await.published_at, at(FINAL));
        clock.set(at("2026-01-14T13:39:59Z"));
        assert!(matches!(
            p.results(&decoupled).await.unwrap(),
            ResultsStatus::NotYet { .. }
        ));
        clock.set(later);
        let last = published(&p, &decoupled).await;
        assert_eq!(last.published_at, later);
        assert_eq!(last.outcome, Outcome::Accepted, "bid at 3000: still taken");
        let prices = |r: &energy_core::result::OrderResult| {
            r.mtus.iter().map(|m| m.clearing_price).collect::<Vec<_>>()
        };
        assert_ne!(
            prices(&last),
            prices(&first),
            "cleared alone, the zone's prices differ"
        );
        assert_ne!(last.totals.notional_eur, first.totals.notional_eur);
        assert_eq!(
            published(&p, &decoupled).await,
            last,
            "the same answer every time"
        );
    }
}

/// An order that got past (or around) our validation: the platform must refuse it as an
/// exchange would, with a reason the desk can act on, and hold nothing of it.
async fn refused(p: &SimPlatform, o: &Order) -> String {
    match p.submit(o).await.unwrap() {
        Submission::Refused { reason } => {
            assert!(
                matches!(p.results(o).await.unwrap(), ResultsStatus::Unknown { .. }),
                "a refused order is not held"
            );
            reason
        }
        other => panic!("{} accepted: {other:?}", o.record_id),
    }
}

#[tokio::test]
async fn the_platform_refuses_what_an_exchange_would_each_with_its_reason() {
    let (_clock, p) = platform(SimConfig::default());
    let good = || {
        order(
            "x-1",
            "DE-LU",
            "BUY",
            json!([{"price": "100.00", "quantity": "1.0"}]),
        )
    };
    let mut price = good();
    price.periods[0].steps[0].price = energy_core::money::PriceCents(9_999_900);
    assert!(
        refused(&p, &price).await.contains("price 99999.00"),
        "price"
    );
    let mut floor = good();
    floor.periods[0].steps[0].price = energy_core::money::PriceCents(-60_000);
    assert!(refused(&p, &floor).await.contains("price -600.00"), "floor");
    let mut grid = good();
    grid.periods[0].mtu_start = at("2026-01-15T08:07:00Z");
    assert!(
        refused(&p, &grid).await.contains("2026-01-15T08:07:00Z"),
        "off the grid"
    );
    let mut next_day = good();
    next_day.periods[1].mtu_start = at("2026-01-16T06:00:00Z");
    assert!(
        refused(&p, &next_day).await.contains("delivery"),
        "next day"
    );
    let mut zero = good();
    zero.periods[0].steps[0].quantity = energy_core::money::Lots(0);
    assert!(
        refused(&p, &zero).await.contains("quantity"),
        "zero quantity"
    );
    let mut volume = good();
    volume.periods[0].steps[0].quantity = energy_core::money::Lots(30_000);
    assert!(refused(&p, &volume).await.contains("3000.0 MW"), "volume");
    let mut empty = good();
    empty.periods[0].steps.clear();
    assert!(
        refused(&p, &empty).await.contains("no steps"),
        "empty curve"
    );
    let mut twice = good();
    twice.periods[1].mtu_start = twice.periods[0].mtu_start;
    assert!(refused(&p, &twice).await.contains("twice"), "one MTU twice");
    let mut none = good();
    none.periods.clear();
    assert!(
        refused(&p, &none).await.contains("no periods"),
        "no periods"
    );
    let mut far = good();
    far.delivery_date = "2031-01-15".parse().unwrap();
    for period in &mut far.periods {
        period.mtu_start += SignedDuration::from_hours(24 * 1826);
    }
    assert!(refused(&p, &far).await.contains("book"), "book not open");
    // And the good one is taken.
    assert!(matches!(
        p.submit(&good()).await.unwrap(),
        Submission::Accepted { .. }
    ));
}
