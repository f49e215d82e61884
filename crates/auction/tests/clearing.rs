//! The clearing rule of DOMAIN.md: its worked cases, and properties over random curves.

use energy_auction::clearing::{ClearingStep, Limits, clear, clear_steps_on_two_threads, midpoint};
use energy_auction::curves::clear_document;
use energy_core::market::Side;
use energy_core::money::{Lots, PriceCents};
use proptest::prelude::*;
use serde_json::json;

const SDAC: Limits = Limits {
    min_price: PriceCents(-50_000),
    max_price: PriceCents(400_000),
};

fn step(id: &str, side: Side, price_eur: &str, mw: &str) -> ClearingStep {
    ClearingStep {
        id: id.into(),
        side,
        price: price_eur.parse().unwrap(),
        quantity: mw.parse().unwrap(),
        receipt: 0,
        record_id: String::new(),
    }
}

#[test]
fn supply_at_20_and_demand_at_50_overlapping_vertically_clear_at_35_for_10_mw() {
    let steps = [
        step("s", Side::Sell, "20.00", "10.0"),
        step("b", Side::Buy, "50.00", "10.0"),
    ];
    let c = clear(&steps, SDAC);
    assert_eq!(c.price, Some(PriceCents(3500)));
    assert_eq!(c.volume, Lots(100));
    assert_eq!(c.interval, Some((PriceCents(2000), PriceCents(5000))));
    assert_eq!(c.filled, [Lots(100), Lots(100)]);
}

#[test]
fn demand_above_all_supply_clears_at_the_cap_with_buys_pro_rated() {
    let steps = [
        step("s", Side::Sell, "30.00", "50.0"),
        step("b1", Side::Buy, "4000.00", "60.0"),
        step("b2", Side::Buy, "4000.00", "40.0"),
    ];
    let c = clear(&steps, SDAC);
    assert_eq!((c.price, c.volume), (Some(PriceCents(400_000)), Lots(500)));
    assert_eq!(c.filled, [Lots(500), Lots(300), Lots(200)]);
}

#[test]
fn supply_below_the_floor_clears_at_the_floor_with_sells_pro_rated() {
    let steps = [
        step("b", Side::Buy, "10.00", "10.0"),
        step("s1", Side::Sell, "-500.00", "15.0"),
        step("s2", Side::Sell, "-500.00", "5.0"),
    ];
    let c = clear(&steps, SDAC);
    assert_eq!((c.price, c.volume), (Some(PriceCents(-50_000)), Lots(100)));
    assert_eq!(c.filled, [Lots(100), Lots(75), Lots(25)]);
}

#[test]
fn curves_that_do_not_cross_clear_nothing_at_the_price_midway() {
    let steps = [
        step("b", Side::Buy, "30.00", "10.0"),
        step("s", Side::Sell, "40.01", "10.0"),
    ];
    let c = clear(&steps, SDAC);
    assert_eq!(
        (c.price, c.volume, c.filled.clone()),
        (Some(PriceCents(3501)), Lots(0), vec![Lots(0), Lots(0)])
    );
}

#[test]
fn one_empty_side_gives_no_price_and_rejects_everything() {
    let c = clear(&[step("b", Side::Buy, "30.00", "10.0")], SDAC);
    assert_eq!(
        (c.price, c.volume, c.filled),
        (None, Lots(0), vec![Lots(0)])
    );
}

#[test]
fn midpoints_round_half_away_from_zero() {
    assert_eq!(midpoint(2000, 5001), 3501); // 35.005 → 35.01
    assert_eq!(midpoint(-5001, -2000), -3501); // −35.005 → −35.01
    assert_eq!(midpoint(3500, 3500), 3500);
    assert_eq!(midpoint(-1, 0), -1);
}

#[test]
fn leftover_lots_go_by_largest_remainder_then_earliest_receipt_then_record_id() {
    // 1.0 MW left for three equal marginal buys of 1.0 MW: 10 lots / 3 = 3 each, one left over.
    let mut steps = vec![
        step("s", Side::Sell, "50.00", "1.0"),
        step("b-late", Side::Buy, "50.00", "1.0"),
        step("b-early", Side::Buy, "50.00", "1.0"),
        step("b-z", Side::Buy, "50.00", "1.0"),
    ];
    steps[1].receipt = 9;
    steps[2].receipt = 1;
    steps[3].receipt = 9;
    steps[1].record_id = "a".into();
    steps[3].record_id = "z".into();
    let c = clear(&steps, SDAC);
    assert_eq!(c.price, Some(PriceCents(5000)));
    assert_eq!(c.filled, [Lots(10), Lots(3), Lots(4), Lots(3)]);
    // Two leftovers: the earliest, then record id "a" before "z".
    steps[0].quantity = Lots(11);
    let c = clear(&steps, SDAC);
    assert_eq!(c.filled, [Lots(11), Lots(4), Lots(4), Lots(3)]);
}

#[test]
fn the_cli_document_formats_read_one_or_many_mtus() {
    let one = json!({"steps": [
        {"id": "s", "side": "SELL", "price": "20.00", "quantity": "10.0"},
        {"id": "b", "side": "BUY", "price": 50, "quantity": 10}
    ]});
    let out = clear_document(&one.to_string()).unwrap();
    assert_eq!(
        serde_json::to_value(&out).unwrap()[0]["clearing_price"],
        "35.00"
    );
    let many =
        json!([{"mtu": "2026-01-15T06:00:00Z", "steps": one["steps"]}, {"mtu": "x", "steps": []}]);
    let out = serde_json::to_value(clear_document(&many.to_string()).unwrap()).unwrap();
    assert_eq!(out[0]["mtu"], "2026-01-15T06:00:00Z");
    assert_eq!(out[1]["clearing_price"], serde_json::Value::Null);
    let bad =
        json!({"steps": [{"id": "s", "side": "SELL", "price": "4200.00", "quantity": "1.0"}]});
    let err = clear_document(&bad.to_string()).unwrap_err().to_string();
    assert!(err.contains("mtus[0].steps[0].price"), "{err}");
}

// Properties over random curves.

fn curve() -> impl Strategy<Value = Vec<ClearingStep>> {
    let one = (
        any::<bool>(),
        -50i64..=400,
        1i64..=300,
        0u64..5,
        prop::sample::select(vec!["a", "b", "c"]),
    );
    prop::collection::vec(one, 0..80).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (buy, price, qty, receipt, rid))| ClearingStep {
                id: format!("st{i:03}"),
                side: if buy { Side::Buy } else { Side::Sell },
                // Coarse prices make ties, and so the marginal pro-rata, frequent.
                price: PriceCents(price * 1000),
                quantity: Lots(qty),
                receipt,
                record_id: rid.to_string(),
            })
            .collect()
    })
}

fn demand(steps: &[ClearingStep], p: i64, strict: bool) -> i64 {
    steps
        .iter()
        .filter(|s| {
            s.side == Side::Buy
                && if strict {
                    s.price.0 > p
                } else {
                    s.price.0 >= p
                }
        })
        .map(|s| s.quantity.0)
        .sum()
}

fn supply(steps: &[ClearingStep], p: i64, strict: bool) -> i64 {
    steps
        .iter()
        .filter(|s| {
            s.side == Side::Sell
                && if strict {
                    s.price.0 < p
                } else {
                    s.price.0 <= p
                }
        })
        .map(|s| s.quantity.0)
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn clearing_on_two_threads_is_the_clearing_on_one(steps in curve()) {
        prop_assert_eq!(clear_steps_on_two_threads(steps.as_slice(), SDAC), clear(&steps, SDAC));
    }

    #[test]
    fn clearing_balances_respects_quantities_and_the_money_and_stays_within_limits(steps in curve()) {
        let c = clear(&steps, SDAC);
        let bought: i64 = steps.iter().zip(&c.filled).filter(|(s, _)| s.side == Side::Buy).map(|(_, f)| f.0).sum();
        let sold: i64 = steps.iter().zip(&c.filled).filter(|(s, _)| s.side == Side::Sell).map(|(_, f)| f.0).sum();
        prop_assert_eq!(bought, c.volume.0);
        prop_assert_eq!(sold, c.volume.0);
        // V* is the most that can trade at one price: checked against a brute force.
        let best = steps.iter().map(|s| demand(&steps, s.price.0, false).min(supply(&steps, s.price.0, false))).max().unwrap_or(0);
        prop_assert_eq!(c.volume.0, best);
        for (s, f) in steps.iter().zip(&c.filled) {
            prop_assert!(f.0 >= 0 && f.0 <= s.quantity.0, "{} filled {} of {}", s.id, f.0, s.quantity.0);
        }
        if let Some(p) = c.price {
            prop_assert!(p >= SDAC.min_price && p <= SDAC.max_price);
            if c.volume.0 > 0 {
                let p = p.0;
                prop_assert!(demand(&steps, p, true) <= c.volume.0 && c.volume.0 <= demand(&steps, p, false));
                prop_assert!(supply(&steps, p, true) <= c.volume.0 && c.volume.0 <= supply(&steps, p, false));
                for (s, f) in steps.iter().zip(&c.filled) {
                    let (in_money, out_money) = match s.side {
                        Side::Buy => (s.price.0 > p, s.price.0 < p),
                        Side::Sell => (s.price.0 < p, s.price.0 > p),
                    };
                    if in_money { prop_assert_eq!(f.0, s.quantity.0, "{} is in the money", &s.id); }
                    if out_money { prop_assert_eq!(f.0, 0, "{} is out of the money", &s.id); }
                }
            }
        } else {
            prop_assert_eq!(c.volume.0, 0);
        }
    }

    #[test]
    fn the_same_steps_in_any_order_print_the_same_bytes(steps in curve(), seed in any::<u64>()) {
        let mut shuffled = steps.clone();
        let mut x = seed;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        let a = serde_json::to_string(&clear_document(&json!({"steps": steps}).to_string()).unwrap()).unwrap();
        let b = serde_json::to_string(&clear_document(&json!({"steps": shuffled}).to_string()).unwrap()).unwrap();
        prop_assert_eq!(a, b);
    }
}

/// Pro rata in whole lots: 0.3 MW shared by marginal sells of 0.1, 0.2 and 0.4 MW gives exact
/// shares of 3/7, 6/7 and 12/7 lots; the whole parts (0, 0, 1) leave two lots, which go to the
/// largest remainders (6/7 and 5/7), not to the earliest steps.
#[test]
fn leftover_lots_go_to_the_largest_remainders() {
    let mut steps = vec![
        step("b", Side::Buy, "100.00", "0.3"),
        step("s1", Side::Sell, "50.00", "0.1"),
        step("s2", Side::Sell, "50.00", "0.2"),
        step("s3", Side::Sell, "50.00", "0.4"),
    ];
    for (i, s) in steps.iter_mut().enumerate() {
        s.receipt = i as u64;
    }
    let c = clear(&steps, SDAC);
    assert_eq!(c.volume, Lots(3));
    assert_eq!(c.filled, [Lots(3), Lots(0), Lots(1), Lots(2)]);
}

/// Two sells at one price are one level of the supply curve: both count at that price.
#[test]
fn steps_at_one_price_make_one_level() {
    let steps = [
        step("s1", Side::Sell, "20.00", "4.0"),
        step("s2", Side::Sell, "20.00", "6.0"),
        step("b1", Side::Buy, "50.00", "10.0"),
        step("b2", Side::Buy, "10.00", "5.0"),
    ];
    let c = clear(&steps, SDAC);
    assert_eq!(c.volume, Lots(100));
    assert_eq!(c.filled, [Lots(40), Lots(60), Lots(100), Lots(0)]);
}

/// The leftover lot goes to the largest remainder even when another step is larger: 0.4 MW
/// shared by 0.1 and 0.5 MW gives 4/6 and 20/6 lots, whole parts 0 and 3, remainders 4 and 2.
#[test]
fn the_leftover_lot_follows_the_remainder_not_the_size() {
    let mut steps = vec![
        step("b", Side::Buy, "100.00", "0.4"),
        step("s1", Side::Sell, "50.00", "0.1"),
        step("s2", Side::Sell, "50.00", "0.5"),
    ];
    for (i, s) in steps.iter_mut().enumerate() {
        s.receipt = i as u64;
    }
    let c = clear(&steps, SDAC);
    assert_eq!(c.volume, Lots(4));
    assert_eq!(c.filled, [Lots(4), Lots(1), Lots(3)]);
}
