//! The validation and decimal rules at their edges: each case sits on a boundary a mutation
//! testing run found untested (`scripts/mutants core`).

use energy_core::calendar::MarketRules;
use energy_core::money::{DecimalError, EnergyKwh, Overflow, parse_number_literal, short_json};
use energy_core::validate::{BatchError, MAX_ARRAY, MAX_REPORTED_ERRORS, parse_batch};
use jiff::Timestamp;
use serde_json::{Value, json};

fn now() -> Timestamp {
    "2026-01-14T08:00:00Z".parse().unwrap()
}

fn order(id: &str) -> Value {
    json!({
        "record_id": id, "market": "SDAC", "delivery_date": "2026-01-15", "zone": "NL",
        "portfolio": "P", "side": "BUY",
        "periods": [{"mtu_start": "2026-01-15T06:00:00Z", "steps": [{"price": "50.00", "quantity": "1.0"}]}]
    })
}

/// The errors of a one-order batch whose order is `edit`ed, as (path, rule).
fn problems(edit: impl FnOnce(&mut Value)) -> Vec<(String, String)> {
    let mut o = order("e-1");
    edit(&mut o);
    match parse_batch(&json!([o]).to_string(), &MarketRules::default(), now()) {
        Ok(_) => Vec::new(),
        Err(BatchError::Invalid(errors)) => errors
            .into_iter()
            .map(|e| (e.path, e.rule.to_string()))
            .collect(),
        Err(other) => panic!("{other:?}"),
    }
}

fn steps(side: &str, prices: &[&str]) -> impl FnOnce(&mut Value) {
    let side = side.to_string();
    let steps: Vec<Value> = prices
        .iter()
        .map(|p| json!({"price": p, "quantity": "1.0"}))
        .collect();
    move |o: &mut Value| {
        o["side"] = json!(side);
        o["periods"][0]["steps"] = json!(steps);
    }
}

#[test]
fn curves_must_strictly_ascend_for_sells_and_strictly_descend_for_buys() {
    let at = |i: usize| {
        vec![(
            format!("$[0].periods[0].steps[{i}].price"),
            "monotonic".to_string(),
        )]
    };
    assert_eq!(problems(steps("BUY", &["100.00", "90.00"])), []);
    assert_eq!(problems(steps("BUY", &["100.00", "100.00"])), at(1));
    assert_eq!(problems(steps("BUY", &["90.00", "100.00"])), at(1));
    assert_eq!(problems(steps("SELL", &["90.00", "100.00"])), []);
    assert_eq!(problems(steps("SELL", &["100.00", "100.00"])), at(1));
    assert_eq!(problems(steps("SELL", &["100.00", "90.00"])), at(1));
    // The message says which way the curve must go.
    let message = |side: &str, prices: &[&str]| {
        let mut o = order("m-1");
        steps(side, prices)(&mut o);
        match parse_batch(&json!([o]).to_string(), &MarketRules::default(), now()) {
            Err(BatchError::Invalid(errors)) => errors[0].message.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert!(
        message("SELL", &["100.00", "90.00"]).contains("sell prices strictly ascend"),
        "{}",
        message("SELL", &["100.00", "90.00"])
    );
    assert!(message("BUY", &["90.00", "100.00"]).contains("buy prices strictly descend"));
}

#[test]
fn a_quantity_must_be_above_zero() {
    let q =
        |q: &'static str| move |o: &mut Value| o["periods"][0]["steps"][0]["quantity"] = json!(q);
    assert_eq!(problems(q("0.1")), []);
    assert_eq!(
        problems(q("0.0")),
        [(
            "$[0].periods[0].steps[0].quantity".to_string(),
            "quantity_positive".to_string()
        )]
    );
}

#[test]
fn a_delivery_date_is_exactly_yyyy_mm_dd() {
    for bad in [
        "+002026-01-15",
        "2026-01-15T00:00:00",
        "2026-1-15",
        "15.01.2026",
    ] {
        assert_eq!(
            problems(|o| o["delivery_date"] = json!(bad)),
            [("$[0].delivery_date".to_string(), "date".to_string())],
            "{bad}"
        );
    }
}

#[test]
fn a_portfolio_is_1_to_64_id_characters() {
    let at = || vec![("$[0].portfolio".to_string(), "portfolio".to_string())];
    assert_eq!(problems(|o| o["portfolio"] = json!("")), at());
    assert_eq!(problems(|o| o["portfolio"] = json!("p".repeat(65))), at());
    assert_eq!(problems(|o| o["portfolio"] = json!("desk a")), at());
    assert_eq!(problems(|o| o["portfolio"] = json!("p".repeat(64))), []);
}

#[test]
fn an_mtu_start_is_a_utc_instant_with_at_most_nine_decimals() {
    let mtu = |s: &'static str| move |o: &mut Value| o["periods"][0]["mtu_start"] = json!(s);
    assert_eq!(problems(mtu("2026-01-15T06:00:00.000Z")), []);
    assert_eq!(problems(mtu("2026-01-15T06:00:00.000000000Z")), []);
    for bad in [
        "2026-01-15T06:00Z",
        "2026-01-15T06:00:00.Z",
        "2026-01-15T06:00:00.0000000000Z",
        "2026-01-15T06:00:00+00:00",
    ] {
        let found = problems(mtu(bad));
        assert_eq!(found.len(), 1, "{bad}: {found:?}");
        assert_eq!(found[0].0, "$[0].periods[0].mtu_start", "{bad}");
    }
}

#[test]
fn an_empty_list_is_named_as_such() {
    let found = problems(|o| o["periods"] = json!([]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "$[0].periods");
    assert!(found[0].1.contains("empty"), "{found:?}");
}

#[test]
fn a_wrong_type_is_named_in_the_message() {
    let mut o = order("t-1");
    o["zone"] = json!(5);
    let Err(BatchError::Invalid(errors)) =
        parse_batch(&json!([o]).to_string(), &MarketRules::default(), now())
    else {
        panic!("a number for a zone is refused")
    };
    assert!(
        errors[0].message.contains("number"),
        "{}",
        errors[0].message
    );
    assert_eq!(
        errors[0].to_string(),
        errors[0].message,
        "Display is the message"
    );
}

#[test]
fn a_hundred_problems_are_listed_and_the_rest_counted() {
    let rules = MarketRules::default();
    // Two bad fields in each of 100 orders: 200 problems.
    let batch: Vec<Value> = (0..100)
        .map(|i| {
            let mut o = order(&format!("m-{i}"));
            o["zone"] = json!("XX");
            o["side"] = json!("HOLD");
            o
        })
        .collect();
    let Err(BatchError::Invalid(errors)) = parse_batch(&json!(batch).to_string(), &rules, now())
    else {
        panic!("two hundred problems are a 400")
    };
    assert_eq!(errors.len(), MAX_REPORTED_ERRORS + 1);
    let last = errors.last().unwrap();
    assert_eq!(last.rule, "too_many_errors");
    assert_eq!(last.message, "$: 100 more problems not listed");
    // One over: 101 problems.
    let mut batch: Vec<Value> = (0..100).map(|i| order(&format!("n-{i}"))).collect();
    for o in batch.iter_mut() {
        o["zone"] = json!("XX");
    }
    batch[0]["side"] = json!("HOLD");
    let Err(BatchError::Invalid(errors)) = parse_batch(&json!(batch).to_string(), &rules, now())
    else {
        panic!()
    };
    assert_eq!(errors.len(), MAX_REPORTED_ERRORS + 1);
    assert_eq!(
        errors.last().unwrap().message,
        "$: 1 more problems not listed"
    );
    // Exactly the limit: all listed, no summary.
    let batch: Vec<Value> = (0..100)
        .map(|i| {
            let mut o = order(&format!("k-{i}"));
            o["zone"] = json!("XX");
            o
        })
        .collect();
    let Err(BatchError::Invalid(errors)) = parse_batch(&json!(batch).to_string(), &rules, now())
    else {
        panic!()
    };
    assert_eq!(errors.len(), MAX_REPORTED_ERRORS);
    assert!(errors.iter().all(|e| e.rule != "too_many_errors"));
}

#[test]
fn the_batch_size_limit_holds_at_its_edge_and_only_the_root_array_is_too_large() {
    let rules = MarketRules::default();
    let batch =
        |n: usize| json!((0..n).map(|i| order(&format!("b-{i}"))).collect::<Vec<_>>()).to_string();
    assert!(
        parse_batch(&batch(100), &rules, now()).is_ok(),
        "100 orders"
    );
    assert_eq!(
        parse_batch(&batch(101), &rules, now()).unwrap_err(),
        BatchError::TooLarge {
            count: 101,
            max: 100
        }
    );
    let huge = format!("[{}]", vec!["1"; MAX_ARRAY + 1].join(","));
    assert_eq!(
        parse_batch(&huge, &rules, now()).unwrap_err(),
        BatchError::TooLarge {
            count: MAX_ARRAY + 1,
            max: 100
        }
    );
    // A long array inside an order is that order's problem, named at its path.
    let mut o = order("s-1");
    o["periods"][0]["steps"] = json!(vec![
        json!({"price": "1.00", "quantity": "0.1"});
        MAX_ARRAY + 1
    ]);
    let Err(BatchError::Invalid(errors)) = parse_batch(&json!([o]).to_string(), &rules, now())
    else {
        panic!("a 1001-step curve is a 400")
    };
    assert_eq!(errors[0].path, "$[0].periods[0].steps");
    // A desk allowed more orders per batch than the parse's own bound still gets them all read.
    let mut big = MarketRules::default();
    big.limits.max_batch = 1_500;
    assert!(
        parse_batch(&batch(1_500), &big, now()).is_ok(),
        "1500 orders"
    );
    assert_eq!(
        parse_batch(&batch(1_501), &big, now()).unwrap_err(),
        BatchError::TooLarge {
            count: 1_501,
            max: 1_500
        }
    );
    assert_eq!(
        parse_batch(&batch(1_502), &big, now()).unwrap_err(),
        BatchError::TooLarge {
            count: 1_502,
            max: 1_500
        }
    );
}

#[test]
fn number_literals_read_exactly_at_their_edges() {
    assert_eq!(parse_number_literal("1e+2", 2), Ok(10_000));
    assert_eq!(parse_number_literal("1E2", 2), Ok(10_000));
    assert_eq!(parse_number_literal("12.5e-1", 2), Ok(125));
    for bad in [
        "", "-", "1.", ".5", "1e", "1e+", "1x", "1.5.5", "1e2.5", "0x10", "--1", "+1",
    ] {
        assert!(
            matches!(
                parse_number_literal(bad, 2),
                Err(DecimalError::NotANumber(_))
            ),
            "{bad:?}"
        );
    }
    // 400 characters are read; 401 are refused, naming the length.
    let longest = format!("{}1", "0".repeat(399));
    assert_eq!(parse_number_literal(&longest, 0), Ok(1));
    let over = format!("0{longest}");
    match parse_number_literal(&over, 0) {
        Err(DecimalError::NotANumber(m)) => assert!(m.contains("401 characters"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Scaling: 123e2 at two places is 1 230 000 hundredths.
    assert_eq!(parse_number_literal("123e2", 2), Ok(1_230_000));
}

#[test]
fn error_messages_shorten_long_values_to_forty_characters() {
    let forty = "7".repeat(40);
    assert_eq!(
        short_json(&json!(forty.clone())),
        format!("\"{}…", &forty[..39])
    );
    assert_eq!(short_json(&json!("abc")), "\"abc\"");
    let exactly = "8".repeat(38);
    assert_eq!(
        short_json(&json!(exactly.clone())),
        format!("\"{exactly}\"")
    );
    match parse_number_literal(&"9".repeat(41), 0) {
        Err(DecimalError::NotANumber(m)) | Err(DecimalError::OutOfRange(m)) => {
            assert!(m.chars().count() <= 41, "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn energy_sums_are_checked() {
    assert_eq!(EnergyKwh(2).checked_add(EnergyKwh(3)), Ok(EnergyKwh(5)));
    assert_eq!(
        EnergyKwh(i64::MAX).checked_add(EnergyKwh(1)),
        Err(Overflow("energy"))
    );
}

#[test]
fn an_exponent_scales_within_the_nineteen_digits_of_an_i64() {
    assert_eq!(parse_number_literal("12e10", 0), Ok(120_000_000_000));
    assert_eq!(
        parse_number_literal("9e18", 0),
        Ok(9_000_000_000_000_000_000)
    );
    assert!(matches!(
        parse_number_literal("1e19", 0),
        Err(DecimalError::OutOfRange(_))
    ));
}
