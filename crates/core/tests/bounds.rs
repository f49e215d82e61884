//! Anything validation accepts can be stored, read back and computed with: orders at the edges
//! of every limit (the most MTUs a day has, 200 steps, the per-order volume cap, the price
//! limits of each market) round-trip through the stored record's JSON (the form SQLite and
//! DynamoDB keep) and through every result computation without an overflow.

use energy_core::calendar::{AuctionId, MarketRules};
use energy_core::lifecycle::OrderRecord;
use energy_core::market::{Market, Side};
use energy_core::money::{Lots, PriceCents};
use energy_core::result::OrderResult;
use energy_core::validate::parse_batch;
use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{Value, json};

/// The autumn DST day: 100 quarter-hours, the most a delivery day has.
const DAY: &str = "2026-10-25";

fn now() -> Timestamp {
    "2026-10-20T08:00:00Z".parse().unwrap()
}

fn body(market: Market, side: Side, all_mtus: bool, steps: usize, top: bool) -> Value {
    let rules = MarketRules::default();
    let auction = AuctionId {
        market,
        delivery_date: DAY.parse().unwrap(),
    };
    let spec = rules.spec(market);
    let mtus = rules.mtus(auction).unwrap();
    let mtus = if all_mtus { &mtus[..] } else { &mtus[..1] };
    // The cap shared out over the steps in whole lots; prices walk from one limit inward by a
    // cent a step (ascending for sells, descending for buys).
    let per_step = Lots(rules.limits.max_volume.0 / steps as i64);
    let edge = if top {
        spec.max_price.0
    } else {
        spec.min_price.0
    };
    let curve: Vec<Value> = (0..steps as i64)
        .map(|k| {
            let offset = steps as i64 - 1 - k;
            let price = match (side, top) {
                (Side::Sell, true) => edge - offset,
                (Side::Sell, false) => edge + k,
                (Side::Buy, true) => edge - k,
                (Side::Buy, false) => edge + offset,
            };
            json!({"price": PriceCents(price).to_string(), "quantity": per_step.to_string()})
        })
        .collect();
    json!([{
        "record_id": "x".repeat(64),
        "market": market.to_string(),
        "delivery_date": DAY,
        "zone": "DE-LU",
        "portfolio": "p".repeat(64),
        "side": side.to_string(),
        "periods": mtus.iter().map(|m| json!({"mtu_start": m.to_string(), "steps": curve})).collect::<Vec<_>>(),
    }])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn what_validation_accepts_round_trips_and_computes_without_overflow(
        market in proptest::sample::select(Market::ALL.to_vec()),
        side in proptest::sample::select(Side::ALL.to_vec()),
        all_mtus in any::<bool>(),
        steps in prop_oneof![Just(1usize), Just(200usize), 1usize..=200],
        top in any::<bool>(),
    ) {
        let text = body(market, side, all_mtus, steps, top).to_string();
        // Posted when the auction's book opens (IDA books open the day before).
        let auction = AuctionId { market, delivery_date: DAY.parse().unwrap() };
        let posted = MarketRules::default().book_opening(auction).unwrap();
        let checked = parse_batch(&text, &MarketRules::default(), posted)
            .unwrap_or_else(|e| panic!("{market} {side} {steps} steps refused: {e:?}"));
        prop_assert!(checked.late.is_empty());
        let order = checked.orders.into_iter().next().unwrap();

        // The stored record reads back as it was written.
        let record = OrderRecord::received(order.clone(), now(), now());
        let stored = serde_json::to_string(&record).unwrap();
        let back: OrderRecord = serde_json::from_str(&stored).unwrap();
        prop_assert_eq!(&back, &record);

        // Everything offered is accepted at the limit price: the largest figures a result holds.
        let spec = MarketRules::default().spec(market).clone();
        let price = if top { spec.max_price } else { spec.min_price };
        let fills: Vec<_> = order
            .periods
            .iter()
            .map(|p| (Some(price), p.offered().unwrap()))
            .collect();
        let result = OrderResult::from_fills(&order, &fills, now())
            .expect("a valid order's result fits its integers");
        let text = serde_json::to_string(&result).unwrap();
        let back: OrderResult = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, result);
    }
}
