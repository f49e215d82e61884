//! POST /orders and GET /orders/{record_id}, through submit-order with API Gateway v2 requests.

mod common;

use common::*;
use energy_core::lifecycle::NO_EXPIRY;
use proptest::prelude::*;
use serde_json::{Value, json};

fn messages(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["message"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn paths(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["path"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn post_of_a_valid_batch_answers_202_stores_each_order_once_with_a_24h_ttl_and_emits_one_order_submitted_each()
 {
    let s = system();
    let (status, body) = post(
        &s,
        &json!([accepted("a-1"), partial("a-2"), rejected("a-3")]),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let statuses = body["orders"].as_array().unwrap();
    assert_eq!(statuses.len(), 3);
    for (s, id) in statuses.iter().zip(["a-1", "a-2", "a-3"]) {
        assert_eq!(
            (s["record_id"].as_str(), s["status"].as_str()),
            (Some(id), Some("accepted"))
        );
    }
    assert_eq!(s.store.inserts(), 3);
    for id in ["a-1", "a-2", "a-3"] {
        let r = record(&s, id).await;
        assert_eq!(
            r.ttl, NO_EXPIRY,
            "{id}: an order does not expire before it is final"
        );
    }
    let submitted = s.bus.of_type("OrderSubmitted");
    assert_eq!(submitted.len(), 3);
    let mut ids: Vec<&str> = submitted
        .iter()
        .map(|e| e["detail"]["record_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["a-1", "a-2", "a-3"]);
}

#[tokio::test]
async fn the_same_batch_again_stores_no_new_order_and_emits_no_new_event() {
    let s = system();
    let batch = json!([accepted("b-1"), partial("b-2")]);
    assert_eq!(post(&s, &batch).await.0, 202);
    // Handed over: a repost has nothing to announce (one of an order still RECEIVED would
    // announce it again, for a client whose first POST was cut off).
    s.run_until_quiet(|_| {}).await;
    let (status, body) = post(&s, &batch).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "duplicate"),
        "{body}"
    );
    assert_eq!(s.store.inserts(), 2);
    assert_eq!(count(&s, "OrderSubmitted"), 2);
}

#[tokio::test]
async fn a_known_record_id_with_a_different_body_is_409_naming_the_id() {
    let s = system();
    assert_eq!(post(&s, &json!([accepted("c-1")])).await.0, 202);
    let mut changed = accepted("c-1");
    changed["portfolio"] = json!("DESK-B");
    let (status, body) = post(&s, &json!([changed, partial("c-2")])).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("c-1"), "{body}");
    let conflict = &body["orders"][0];
    assert_eq!(
        (conflict["record_id"].as_str(), conflict["status"].as_str()),
        (Some("c-1"), Some("conflict"))
    );
    assert_eq!(
        body["orders"][1]["status"], "not_stored",
        "a batch is stored whole or not at all"
    );
    assert_eq!(
        record(&s, "c-1").await.order.portfolio,
        "DESK-A",
        "the stored order is unchanged"
    );
    assert_eq!(count(&s, "OrderSubmitted"), 1);
}

#[tokio::test]
async fn the_seed_payload_gets_a_4xx_naming_every_missing_field() {
    let s = system();
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/tests/fixtures/seed-payload.json"
    ))
    .unwrap();
    let resp = s.http("POST", "/orders", Some(&seed)).await;
    let body = submit_order::response_body(&resp);
    assert_eq!(resp.status_code, 400, "{body}");
    let paths = paths(&body);
    for i in 0..2 {
        for field in [
            "market",
            "delivery_date",
            "zone",
            "portfolio",
            "side",
            "periods",
        ] {
            assert!(
                paths.contains(&format!("$[{i}].{field}")),
                "missing {field} of order {i} not named: {paths:?}"
            );
        }
        for unknown in ["parameter_1", "parameter_2"] {
            assert!(
                paths.contains(&format!("$[{i}].{unknown}")),
                "unknown field {unknown} not named: {paths:?}"
            );
        }
    }
    assert!(
        messages(&body)
            .iter()
            .any(|m| m == "$[0].market: required field is missing"),
        "{body}"
    );
    assert_eq!(s.store.inserts(), 0);
}

async fn refused(body: &str) -> (i64, Value) {
    let s = system();
    let resp = s.http("POST", "/orders", Some(body)).await;
    assert_eq!(
        s.store.inserts(),
        0,
        "nothing may be stored from a refused request"
    );
    (resp.status_code, submit_order::response_body(&resp))
}

fn with(mutate: impl FnOnce(&mut Value)) -> String {
    let mut o = accepted("m-1");
    mutate(&mut o);
    json!([o]).to_string()
}

#[tokio::test]
async fn not_json_is_400() {
    let (status, body) = refused("{not json").await;
    assert_eq!(status, 400);
    assert!(
        messages(&body)[0].starts_with("$: not valid JSON"),
        "{body}"
    );
}

#[tokio::test]
async fn an_empty_array_is_400() {
    let (status, body) = refused("[]").await;
    assert_eq!(
        (status, body["errors"][0]["rule"].as_str()),
        (400, Some("batch_empty"))
    );
}

#[tokio::test]
async fn a_batch_over_the_maximum_is_413() {
    let batch: Vec<Value> = (0..101).map(|i| accepted(&format!("big-{i}"))).collect();
    let (status, body) = refused(&json!(batch).to_string()).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("at most 100"),
        "{body}"
    );
}

#[tokio::test]
async fn a_price_of_1e309_is_400_with_the_field_path() {
    let body = with(|_| {}).replacen("\"3000.00\"", "1e309", 1);
    let (status, body) = refused(&body).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(paths(&body), ["$[0].periods[0].steps[0].price"], "{body}");
}

#[tokio::test]
async fn a_price_above_the_limit_names_path_value_and_limit() {
    let (status, body) = refused(&with(|o| {
        o["periods"][1]["steps"][0]["price"] = json!("4200.00")
    }))
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        messages(&body),
        ["$[0].periods[1].steps[0].price: 4200.00 is above the SDAC limit 4000.00"]
    );
}

#[tokio::test]
async fn a_negative_quantity_is_400_with_the_field_path() {
    let (status, body) = refused(&with(|o| {
        o["periods"][0]["steps"][0]["quantity"] = json!("-1.0")
    }))
    .await;
    assert_eq!(
        (status, paths(&body)),
        (400, vec!["$[0].periods[0].steps[0].quantity".to_string()])
    );
    assert_eq!(body["errors"][0]["rule"], "quantity_positive");
}

#[tokio::test]
async fn an_off_lot_quantity_is_400_with_the_field_path() {
    let (status, body) = refused(&with(|o| {
        o["periods"][0]["steps"][0]["quantity"] = json!(0.05)
    }))
    .await;
    assert_eq!(
        (status, paths(&body)),
        (400, vec!["$[0].periods[0].steps[0].quantity".to_string()])
    );
    assert_eq!(body["errors"][0]["rule"], "quantity_lot");
}

#[tokio::test]
async fn an_mtu_off_the_15_minute_grid_is_400_with_the_field_path() {
    let (status, body) = refused(&with(|o| {
        o["periods"][1]["mtu_start"] = json!("2026-01-15T06:20:00Z")
    }))
    .await;
    assert_eq!(
        (status, paths(&body)),
        (400, vec!["$[0].periods[1].mtu_start".to_string()])
    );
    assert_eq!(body["errors"][0]["rule"], "mtu_grid");
}

#[tokio::test]
async fn an_mtu_outside_the_delivery_day_is_400_with_the_field_path() {
    // 23:00Z on the 15th is local midnight of the 16th: the day after.
    let (status, body) = refused(&with(|o| {
        o["periods"][1]["mtu_start"] = json!("2026-01-15T23:00:00Z")
    }))
    .await;
    assert_eq!(
        (status, paths(&body)),
        (400, vec!["$[0].periods[1].mtu_start".to_string()])
    );
    assert_eq!(body["errors"][0]["rule"], "mtu_outside_delivery");
}

#[tokio::test]
async fn an_order_after_gate_closure_is_400_with_the_field_path() {
    let s = system();
    s.clock.set(at(GATE));
    let resp = s
        .http(
            "POST",
            "/orders",
            Some(&json!([accepted("late-1")]).to_string()),
        )
        .await;
    let body = submit_order::response_body(&resp);
    assert_eq!(
        (resp.status_code, paths(&body)),
        (400, vec!["$[0].delivery_date".to_string()]),
        "{body}"
    );
    assert_eq!(body["errors"][0]["rule"], "gate_closed");
}

#[tokio::test]
async fn every_problem_of_a_batch_is_reported_at_once() {
    let mut bad = accepted("x-1");
    bad["zone"] = json!("XX");
    bad["periods"][0]["steps"] =
        json!([{"price": "10.00", "quantity": "1.0"}, {"price": "20.00", "quantity": "1.0"}]);
    let (status, body) =
        refused(&json!([accepted("ok-1"), accepted("ok-2"), bad, accepted("ok-1")]).to_string())
            .await;
    assert_eq!(status, 400);
    let rules: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["zone", "monotonic", "duplicate_record_id"],
        "{body}"
    );
    assert_eq!(body["errors"][1]["path"], "$[2].periods[0].steps[1].price");
}

#[tokio::test]
async fn get_answers_the_order_state_and_404_for_an_unknown_id() {
    let s = system();
    post(&s, &json!([accepted("g-1")])).await;
    let resp = s.http("GET", "/orders/g-1", None).await;
    let body = submit_order::response_body(&resp);
    assert_eq!(
        (resp.status_code, body["state"].as_str()),
        (200, Some("RECEIVED")),
        "{body}"
    );
    assert_eq!(body["order"]["periods"][0]["steps"][0]["price"], "3000.00");
    let missing = s.http("GET", "/orders/nope", None).await;
    assert_eq!(missing.status_code, 404);
    let patch = s.http("PATCH", "/orders/g-1", None).await;
    assert_eq!(patch.status_code, 405);
    assert_eq!(patch.headers["allow"], "GET, PUT, DELETE");
}

fn junk() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "1e309",
            "-0",
            "0.1",
            "4000.00",
            "2026-01-15T06:00:00Z",
            "SDAC",
            "BUY",
            ""
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        ]
    })
}

fn set_path(v: &mut Value, path: &[usize], new: Value) {
    match (path.split_first(), v) {
        (Some((i, rest)), Value::Array(a)) if !a.is_empty() => {
            let n = a.len();
            set_path(&mut a[i % n], rest, new)
        }
        (Some((i, rest)), Value::Object(m)) if !m.is_empty() => {
            let n = m.len();
            if let Some(child) = m.values_mut().nth(i % n) {
                set_path(child, rest, new)
            }
        }
        (_, v) => *v = new,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any body: a 2xx or a 4xx, never a 5xx, never a panic.
    #[test]
    fn no_body_gets_a_5xx_or_a_panic(path in prop::collection::vec(any::<usize>(), 0..6), new in junk(), raw in ".{0,40}", as_raw in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut batch = json!([accepted("f-1"), partial("f-2")]);
        set_path(&mut batch, &path, new);
        let body = if as_raw { raw } else { batch.to_string() };
        let status = rt.block_on(async { system().http("POST", "/orders", Some(&body)).await.status_code });
        prop_assert!((200..500).contains(&status), "status {} for {}", status, body);
    }
}
