//! The API accepts exactly what `events-schema/api/PostOrdersRequest.json` accepts, on generated
//! valid and near-valid bodies: submit-order (the same function the Lambda runs, here behind the
//! in-memory stack) answers 202 if and only if the schema validates the body.
//!
//! The generated bodies vary what a schema can say (types, required and unknown fields, the
//! forms of decimal strings and timestamps, id syntax, enums, bounds) and keep fixed what it
//! cannot (an open gate, MTUs on the grid inside the delivery day, prices within SDAC's limits,
//! one step per curve). Duplicate keys are outside the JSON data model a schema validates, and
//! are tested on their own (`integrity.rs`, `core::json`).

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn schema() -> jsonschema::Validator {
    let text = include_str!("../../../events-schema/api/PostOrdersRequest.json");
    let schema: Value = serde_json::from_str(text).unwrap();
    jsonschema::draft4::new(&schema).expect("the request schema compiles")
}

/// Values a field might be sent with: the right ones and the near misses.
fn price() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("45.50")),
        Just(json!("-5")),
        Just(json!("0.1")),
        Just(json!("3999.99")),
        Just(json!("007.25")),
        Just(json!(45)),
        Just(json!(-500)),
        Just(json!(" 45.50")),
        Just(json!("+45.50")),
        Just(json!("45.")),
        Just(json!(".5")),
        Just(json!("1e2")),
        Just(json!("45.123")),
        Just(json!("45.500")),
        Just(json!("NaN")),
        Just(json!("")),
        Just(json!(10000)),
        Just(json!(-10000)),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!([45])),
        (-50_000i64..400_000).prop_map(|c| json!(format!(
            "{}{}.{:02}",
            if c < 0 { "-" } else { "" },
            c.abs() / 100,
            c.abs() % 100
        ))),
    ]
}

fn quantity() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("1.0")),
        Just(json!("0.5")),
        Just(json!("00.5")),
        Just(json!("2999.9")),
        Just(json!("3000.0")),
        Just(json!("0")),
        Just(json!("0.0")),
        Just(json!("-1.0")),
        Just(json!("1.25")),
        Just(json!("1.")),
        Just(json!(" 1.0")),
        Just(json!("+1.0")),
        Just(json!("1e1")),
        Just(json!(1)),
        Just(json!(2999)),
        Just(json!(3000)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!("100000000000000000")),
        (1i64..30_000).prop_map(|l| json!(format!("{}.{}", l / 10, l % 10))),
    ]
}

fn text_field(valid: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let near = [
        json!(""),
        json!("a/b"),
        json!("has space"),
        json!("x".repeat(65)),
        json!("bidi\u{202e}"),
        json!("nul\u{0}"),
        json!("ünï"),
        json!(7),
        json!(null),
    ];
    prop_oneof![
        proptest::sample::select(valid.to_vec()).prop_map(|s| json!(s)),
        proptest::sample::select(near.to_vec()),
    ]
}

fn mtu_start() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("2026-01-15T06:00:00Z")),
        Just(json!("2026-01-15T06:00:00.000Z")),
        Just(json!("2026-01-15T07:00:00+01:00")),
        Just(json!("2026-01-15t06:00:00z")),
        Just(json!("2026-01-15T06:00Z")),
        Just(json!("2026-01-15 06:00:00Z")),
        Just(json!(1768456800)),
    ]
}

#[derive(Debug, Clone)]
enum Change {
    Price(Value),
    Quantity(Value),
    RecordId(Value),
    Portfolio(Value),
    Market(Value),
    Zone(Value),
    Side(Value),
    DeliveryDate(Value),
    MtuStart(Value),
    Remove(&'static str),
    Unknown(&'static str),
    StepsEmpty,
    PeriodsNotArray,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        price().prop_map(Change::Price),
        quantity().prop_map(Change::Quantity),
        text_field(&["ok-1", "..", "A.b:c_d-e", "x"]).prop_map(Change::RecordId),
        text_field(&["DESK-A", "p"]).prop_map(Change::Portfolio),
        text_field(&["SDAC", "sdac", "XBID"]).prop_map(Change::Market),
        text_field(&["DE-LU", "NL", "de-lu", "ATLANTIS"]).prop_map(Change::Zone),
        text_field(&["BUY", "SELL", "buy"]).prop_map(Change::Side),
        prop_oneof![
            Just(json!("2026-01-15")),
            Just(json!("2026-1-15")),
            Just(json!("20260115")),
            Just(json!("2026-01-15T00:00:00Z")),
        ]
        .prop_map(Change::DeliveryDate),
        mtu_start().prop_map(Change::MtuStart),
        proptest::sample::select(vec!["record_id", "zone", "side", "periods", "portfolio"])
            .prop_map(Change::Remove),
        proptest::sample::select(vec!["comment", "Side", ""]).prop_map(Change::Unknown),
        Just(Change::StepsEmpty),
        Just(Change::PeriodsNotArray),
    ]
}

fn apply(order: &mut Value, change: &Change) {
    // Earlier changes may have removed or retyped what a later one would reach into.
    let mut set = |pointer: &str, v: &Value| {
        if let Some(slot) = order.pointer_mut(pointer) {
            *slot = v.clone();
        }
    };
    match change {
        Change::Price(v) => set("/periods/0/steps/0/price", v),
        Change::Quantity(v) => set("/periods/0/steps/0/quantity", v),
        Change::MtuStart(v) => set("/periods/0/mtu_start", v),
        Change::StepsEmpty => set("/periods/0/steps", &json!([])),
        _ => {}
    }
    match change {
        Change::Price(_) | Change::Quantity(_) | Change::MtuStart(_) | Change::StepsEmpty => {}
        Change::RecordId(v) => order["record_id"] = v.clone(),
        Change::Portfolio(v) => order["portfolio"] = v.clone(),
        Change::Market(v) => order["market"] = v.clone(),
        Change::Zone(v) => order["zone"] = v.clone(),
        Change::Side(v) => order["side"] = v.clone(),
        Change::DeliveryDate(v) => order["delivery_date"] = v.clone(),
        Change::Remove(field) => {
            order.as_object_mut().map(|o| o.remove(*field));
        }
        Change::Unknown(field) => order[*field] = json!(1),
        Change::PeriodsNotArray => order["periods"] = json!({"mtu_start": "x"}),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_api_accepts_exactly_what_the_schema_accepts(
        changes in proptest::collection::vec(change(), 0..3),
        as_text in any::<bool>(),
    ) {
        let mut order = accepted("ok-1");
        // One period, one step: the schema cannot see curve shape or duplicate MTUs.
        order["periods"] = json!([order["periods"][0].clone()]);
        for c in &changes {
            apply(&mut order, c);
        }
        let body = json!([order]);
        let schema_says = schema().is_valid(&body);
        let text = if as_text { serde_json::to_string_pretty(&body).unwrap() } else { body.to_string() };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (status, answer) = rt.block_on(async {
            let s = system();
            let resp = s.http("POST", "/orders", Some(&text)).await;
            (resp.status_code, submit_order::response_body(&resp))
        });
        prop_assert_eq!(
            status == 202,
            schema_says,
            "changes {:?}: schema says {}, API answered {} {}",
            changes, schema_says, status, answer
        );
    }
}
