//! The streamed `energy auction clear` against the command as it was before it streamed: the
//! document read into a `serde_json::Value`, cleared into `MtuOutput`s, printed with
//! `serde_json::to_string_pretty`. The same documents print the same bytes; the same bad
//! documents fail, validation with the same message, the reader's errors with that message and
//! the field's path before it. Each document goes through the serde reader (`from_reader`), and
//! the fast reader with serde behind it, from memory (`from_slice`) and from a file
//! (`from_path`).

use energy_auction::curves::{Curves, InputError, ReadError};
use energy_core::market::Side;
use proptest::prelude::*;
use serde_json::json;

/// The command before it streamed, verbatim but for names.
mod before {
    use std::collections::HashSet;

    use energy_auction::clearing::{ClearingStep, Limits, clear};
    use energy_auction::curves::{InputError, MtuOutput, StepFill};
    use energy_core::calendar::MarketRules;
    use energy_core::market::Market;
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct MtuInput {
        #[serde(default)]
        mtu: Option<String>,
        steps: Vec<ClearingStep>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FileInput {
        #[serde(default)]
        market: Option<Market>,
        #[serde(default)]
        limits: Option<Limits>,
        #[serde(default)]
        mtus: Option<Vec<MtuInput>>,
        #[serde(default)]
        mtu: Option<String>,
        #[serde(default)]
        steps: Option<Vec<ClearingStep>>,
    }

    /// What the command printed on stdout.
    pub fn print(text: &str) -> Result<String, InputError> {
        let out = clear_document(text)?;
        Ok(serde_json::to_string_pretty(&out).expect("serializable") + "\n")
    }

    fn clear_document(text: &str) -> Result<Vec<MtuOutput>, InputError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| InputError(format!("not valid JSON: {e}")))?;
        let (limits, mtus) = read(value)?;
        Ok(mtus.into_iter().map(|m| clear_mtu(m, limits)).collect())
    }

    fn read(value: Value) -> Result<(Limits, Vec<MtuInput>), InputError> {
        let bad = |e: serde_json::Error| InputError(format!("{e}"));
        let input: FileInput = match value {
            Value::Array(_) => FileInput {
                market: None,
                limits: None,
                mtus: Some(serde_json::from_value(value).map_err(bad)?),
                mtu: None,
                steps: None,
            },
            other => serde_json::from_value(other).map_err(bad)?,
        };
        let limits = match (input.limits, input.market) {
            (Some(l), _) => l,
            (None, market) => {
                let spec = MarketRules::default()
                    .spec(market.unwrap_or(Market::Sdac))
                    .clone();
                Limits {
                    min_price: spec.min_price,
                    max_price: spec.max_price,
                }
            }
        };
        let mtus = match (input.mtus, input.steps) {
            (Some(m), None) => m,
            (None, Some(steps)) => vec![MtuInput {
                mtu: input.mtu,
                steps,
            }],
            _ => {
                return Err(InputError(
                    "give either \"steps\" (one MTU) or \"mtus\" (several)".into(),
                ));
            }
        };
        for (i, m) in mtus.iter().enumerate() {
            let mut ids = HashSet::new();
            for (k, s) in m.steps.iter().enumerate() {
                let at = format!("mtus[{i}].steps[{k}]");
                if !ids.insert(s.id.as_str()) {
                    return Err(InputError(format!(
                        "{at}.id: {:?} appears twice in the MTU",
                        s.id
                    )));
                }
                if s.quantity.0 <= 0 {
                    return Err(InputError(format!(
                        "{at}.quantity: {} must be above zero",
                        s.quantity
                    )));
                }
                if s.price < limits.min_price || s.price > limits.max_price {
                    return Err(InputError(format!(
                        "{at}.price: {} is outside the limits [{}, {}]",
                        s.price, limits.min_price, limits.max_price
                    )));
                }
            }
        }
        Ok((limits, mtus))
    }

    fn clear_mtu(m: MtuInput, limits: Limits) -> MtuOutput {
        let c = clear(&m.steps, limits);
        let mut fills: Vec<StepFill> = m
            .steps
            .into_iter()
            .zip(c.filled)
            .map(|(s, filled)| StepFill {
                id: s.id,
                side: s.side,
                price: s.price,
                quantity: s.quantity,
                filled,
            })
            .collect();
        fills.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        MtuOutput {
            mtu: m.mtu,
            clearing_price: c.price,
            volume: c.volume,
            price_interval: c.interval.map(|(lo, hi)| [lo, hi]),
            fills,
        }
    }
}

/// What the streamed command prints, from a reader and from memory; both must agree.
fn streamed(text: &str) -> Result<String, String> {
    let print = |curves: Curves| {
        let mut out = Vec::new();
        curves.write_results(&mut out).expect("written to memory");
        String::from_utf8(out).expect("UTF-8")
    };
    let from_reader = match Curves::from_reader(text.as_bytes()) {
        Ok(curves) => Ok(print(curves)),
        Err(ReadError::Input(InputError(e))) => Err(e),
        Err(ReadError::Io(e)) => panic!("reading memory failed: {e}"),
    };
    let from_slice = Curves::from_slice(text.as_bytes())
        .map(print)
        .map_err(|e| e.0);
    // A file: a window at a time, or read again whole and as from memory when the fast reader
    // leaves it to serde.
    let file = tempfile();
    std::fs::write(&file, text).expect("written");
    let from_file = match Curves::from_path(&file) {
        Ok(curves) => Ok(print(curves)),
        Err(ReadError::Input(InputError(e))) => Err(e),
        Err(ReadError::Io(e)) => panic!("reading {} failed: {e}", file.display()),
    };
    std::fs::remove_file(&file).expect("removed");
    assert_eq!(from_file, from_slice, "file and slice differ on {text}");
    // serde_json places some errors a column apart reading from a reader and from a slice.
    assert_eq!(
        from_reader.as_ref().map_err(|e| without_position(e)),
        from_slice.as_ref().map_err(|e| without_position(e)),
        "reader and slice differ on {text}"
    );
    from_reader
}

/// A path for a file of this test's own.
fn tempfile() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "energy-curves-stream-{}-{}.json",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// An error message without serde_json's ` at line L column C`.
fn without_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or_default()
}

fn assert_prints_as_before(text: &str) {
    let before = before::print(text).unwrap_or_else(|e| panic!("{e} in {text}"));
    let now = streamed(text).unwrap_or_else(|e| panic!("{e} in {text}"));
    assert_eq!(now, before, "{text}");
}

fn step(id: &str, side: &str, price: &str, quantity: &str) -> serde_json::Value {
    json!({"id": id, "side": side, "price": price, "quantity": quantity})
}

#[test]
fn the_example_document_prints_as_before() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/curves.json"
    ))
    .expect("the example");
    assert_prints_as_before(&text);
}

#[test]
fn several_mtus_ties_and_empty_curves_print_as_before() {
    let mut tied = vec![
        step("s", "SELL", "50.00", "1.0"),
        step("b-late", "BUY", "50.00", "1.0"),
        step("b-early", "BUY", "50.00", "1.0"),
        step("b-z", "BUY", "50.00", "1.0"),
    ];
    tied[1]["receipt"] = json!(9);
    tied[2]["receipt"] = json!(1);
    tied[3]["receipt"] = json!(9);
    tied[1]["record_id"] = json!("a");
    tied[3]["record_id"] = json!("z");
    let doc = json!({"market": "IDA1", "mtus": [
        {"mtu": "2026-01-15T06:00:00Z", "steps": tied},
        {"mtu": "2026-01-15T06:15:00Z", "steps": []},
        {"steps": [step("only-buy", "BUY", "30.00", "10.0")]},
        {"mtu": null, "steps": [step("b", "BUY", "30.00", "10.0"), step("s", "SELL", "40.01", "10.0")]},
    ]});
    assert_prints_as_before(&doc.to_string());
    assert_prints_as_before(&serde_json::to_string_pretty(&doc).expect("JSON"));
}

#[test]
fn bare_arrays_and_every_accepted_spelling_print_as_before() {
    for text in [
        // A bare array of MTUs, and an empty one.
        r#"[{"mtu": "x", "steps": [{"id": "s", "side": "SELL", "price": "20.00", "quantity": "10.0"}, {"id": "b", "side": "BUY", "price": 50, "quantity": 10}]}, {"mtu": "y", "steps": []}]"#,
        "[]",
        r#"{"mtus": []}"#,
        // Numbers as JSON numbers, exponents included; explicit limits.
        r#"{"limits": {"min_price": "-10.00", "max_price": 100}, "steps": [{"id": "s", "side": "SELL", "price": 1e1, "quantity": 2.5}, {"id": "b", "side": "BUY", "price": -0.5e1, "quantity": "1.0"}, {"id": "b2", "side": "BUY", "price": 100, "quantity": 1E0}]}"#,
        // Steps and MTUs as arrays of their fields, in order.
        r#"{"mtus": [["m", [["s", "SELL", "20.00", "10.0"], ["b", "BUY", "50.00", "10.0", 3, "r"]]]]}"#,
        // null for optional fields; unknown fields in a step ignored.
        r#"{"market": null, "limits": null, "mtus": null, "mtu": null, "steps": [{"id": "s", "side": "SELL", "price": "20.00", "quantity": "10.0", "note": {"any": [1, 2]}}, {"id": "b", "side": "BUY", "price": "50.00", "quantity": "10.0", "receipt": 4}]}"#,
        // A key given twice: the last counts, as it did in a Value.
        r#"{"steps": [{"id": "x", "id": "s", "side": "SELL", "price": "20.00", "quantity": "1.0", "quantity": "10.0", "record_id": "a", "record_id": "b"}, {"id": "b", "side": "BUY", "price": "50.00", "quantity": "10.0"}], "market": "IDA1", "market": "SDAC"}"#,
        // Ids that need escaping, and ids that are not ASCII.
        r#"{"mtu": "single", "steps": [{"id": "q\"uote\\", "side": "SELL", "price": "20.00", "quantity": "10.0"}, {"id": "b\u00e9\n", "side": "BUY", "price": "50.00", "quantity": "10.0"}, {"id": "été", "side": "BUY", "price": "50.00", "quantity": "3.0"}]}"#,
    ] {
        assert_prints_as_before(text);
    }
}

#[test]
fn bad_documents_fail_as_before_and_name_the_field() {
    let ok = r#"{"id": "a", "side": "BUY", "price": "1.00", "quantity": "1.0"}"#;
    let cases = [
        // Validation: the same message.
        (format!(r#"{{"steps": [{ok}, {ok}]}}"#), "mtus[0].steps[1].id"),
        (
            r#"{"mtus": [{"steps": []}, {"steps": [{"id": "a", "side": "BUY", "price": "1.00", "quantity": "0.0"}]}]}"#.into(),
            "mtus[1].steps[0].quantity",
        ),
        (
            r#"{"steps": [{"id": "s", "side": "SELL", "price": "4200.00", "quantity": "1.0"}]}"#.into(),
            "mtus[0].steps[0].price",
        ),
        (format!(r#"{{"steps": [{ok}], "mtus": []}}"#), ""),
        ("{}".into(), ""),
        // Reading: the same message, with the path before it.
        (
            r#"{"mtus": [{"steps": []}, {"steps": [{"id": "a", "side": "BUY", "price": true, "quantity": "1.0"}]}]}"#.into(),
            "mtus[1].steps[0].price: ",
        ),
        (
            r#"{"steps": [{"id": "a", "side": "BUY", "price": "1.5.0", "quantity": "1.0"}]}"#.into(),
            "mtus[0].steps[0].price: ",
        ),
        (
            r#"{"steps": [{"id": "a", "side": "HOLD", "price": "1.00", "quantity": "1.0"}]}"#.into(),
            "mtus[0].steps[0].side: ",
        ),
        (
            r#"{"steps": [{"id": "a", "price": "1.00", "quantity": "1.0"}]}"#.into(),
            "mtus[0].steps[0]: ",
        ),
        (
            r#"{"steps": [{"id": 7, "side": "BUY", "price": "1.00", "quantity": "1.0"}]}"#.into(),
            "mtus[0].steps[0].id: ",
        ),
        (
            r#"{"steps": [{"id": "a", "side": "BUY", "price": "1.00", "quantity": [1]}]}"#.into(),
            "mtus[0].steps[0].quantity: ",
        ),
        (r#"{"mtus": [{"stepz": []}]}"#.into(), "mtus[0]: "),
        (r#"{"mtus": [{"mtu": "x"}]}"#.into(), "mtus[0]: "),
        (r#"[{"steps": 5}]"#.into(), "mtus[0].steps: "),
        (r#"{"steps": [1]}"#.into(), "mtus[0].steps[0]: "),
        (r#"{"market": "EEX", "steps": []}"#.into(), "market: "),
        (r#"{"limits": {"min_price": "x"}, "steps": []}"#.into(), "limits: "),
        (r#"{"stepz": []}"#.into(), ""),
        (r#""steps""#.into(), ""),
        // Not JSON: the same message.
        (r#"{"steps": [}"#.into(), "not valid JSON: "),
        ("".into(), "not valid JSON: "),
        (r#"{"steps": []} x"#.into(), "not valid JSON: "),
    ];
    for (text, path) in cases {
        let before = before::print(&text).expect_err(&text).0;
        let now = streamed(&text).expect_err(&text);
        assert!(
            now.starts_with(path),
            "{now:?} does not start with {path:?}"
        );
        // The reader's own errors add where they are; the rest of the message is the same.
        let before = without_position(&before);
        assert!(now.contains(before), "{now:?} does not say {before:?}");
    }
}

#[test]
fn quantities_adding_up_beyond_i64_are_refused_not_wrapped() {
    let big = "922337203685477580.7"; // i64::MAX lots
    let doc = json!({"steps": [step("b", "BUY", "50.00", big), step("s", "SELL", "40.00", big)]});
    let err = streamed(&doc.to_string()).expect_err("refused");
    assert!(err.starts_with("mtus[0].steps[1].quantity: "), "{err}");
}

/// Steps with ids of any shape (a shared start, an id that begins another, a NUL, letters
/// beyond ASCII), in any order; ids repeat when `repeats` allows.
fn curve(repeats: bool) -> impl Strategy<Value = Vec<serde_json::Value>> {
    let one = (
        any::<bool>(),
        -50i64..=400,
        1i64..=300,
        0u64..5,
        prop::sample::select(vec!["a", "b", "c"]),
        any::<bool>(),
        prop::sample::select(vec!["", "st", "desk-a-", "desk-a-0", "a\u{0}", "é"]),
        0u32..40,
    );
    prop::collection::vec(one, 0..60).prop_map(move |raw| {
        let mut seen = std::collections::HashSet::new();
        raw.into_iter()
            .filter_map(|(buy, price, qty, receipt, rid, numbers, prefix, n)| {
                let id = format!("{prefix}{n}");
                if !seen.insert(id.clone()) && !repeats {
                    return None;
                }
                let side = if buy { Side::Buy } else { Side::Sell };
                // Coarse prices make ties, and so the marginal pro-rata, frequent.
                Some(if numbers {
                    json!({"id": id, "side": side, "price": price * 10, "quantity": qty,
                           "receipt": receipt, "record_id": rid})
                } else {
                    json!({"id": id, "side": side, "price": format!("{}.00", price * 10),
                           "quantity": format!("{qty}.0"), "receipt": receipt, "record_id": rid})
                })
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_curves_in_several_mtus_print_as_before(mtus in prop::collection::vec(curve(false), 0..4), bare in any::<bool>()) {
        let mtus: Vec<_> = mtus.into_iter().enumerate().map(|(i, steps)| json!({"mtu": format!("m{i}"), "steps": steps})).collect();
        let doc = if bare { json!(mtus) } else { json!({"mtus": mtus}) };
        let text = doc.to_string();
        prop_assert_eq!(streamed(&text).expect("valid"), before::print(&text).expect("valid"));
    }

    #[test]
    fn repeated_ids_are_found_at_the_same_step_as_before(mtus in prop::collection::vec(curve(true), 1..3)) {
        let doc = json!({"mtus": mtus.into_iter().map(|steps| json!({"steps": steps})).collect::<Vec<_>>()});
        let text = doc.to_string();
        prop_assert_eq!(streamed(&text), before::print(&text).map_err(|e| e.0));
    }
}

/// More steps than are cleared while sorted (65 536), out of id order: cleared on a second
/// thread while they are sorted, the same bytes; with a repeated id, the same error. In id
/// order, the same bytes.
#[test]
fn a_large_mtu_in_and_out_of_order_prints_as_before() {
    let mut x = 7u64;
    let mut next = || {
        x = energy_core::hash::mix64(x);
        x
    };
    let mut steps: Vec<_> = (0..70_000)
        .map(|i| {
            let side = if i % 2 == 0 { "BUY" } else { "SELL" };
            let price = format!("{}.{:02}", 40 + next() % 60, next() % 100);
            step(
                &format!("s{i}"),
                side,
                &price,
                &format!("{}.0", 1 + next() % 50),
            )
        })
        .collect();
    for i in (1..steps.len()).rev() {
        steps.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    let text = json!({"steps": steps}).to_string();
    assert_prints_as_before(&text);
    let mut in_order = steps.clone();
    in_order.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_prints_as_before(&json!({"steps": in_order}).to_string());
    steps[60_000]["id"] = steps[123]["id"].clone();
    let text = json!({"steps": steps}).to_string();
    assert_eq!(streamed(&text), before::print(&text).map_err(|e| e.0));
}

/// A large MTU, in id order and out of it, with a number the engine must not get (a price
/// beyond the limits, a quantity of zero): the same error as before, its clearing on the
/// second thread never used.
#[test]
fn a_large_mtu_with_a_number_out_of_bounds_fails_as_before() {
    let steps: Vec<_> = (0..70_000)
        .map(|i| {
            let side = if i % 2 == 0 { "BUY" } else { "SELL" };
            let price = format!("{}.{:02}", 40 + i % 60, i % 100);
            step(&format!("s{i:05}"), side, &price, "1.0")
        })
        .collect();
    let mut shuffled = steps.clone();
    shuffled.reverse();
    for (at, field, value) in [(66_000, "price", "4200.00"), (123, "quantity", "0.0")] {
        for steps in [&steps, &shuffled] {
            let mut steps = steps.clone();
            steps[at][field] = json!(value);
            let text = json!({"steps": steps}).to_string();
            let before = before::print(&text).expect_err("refused");
            assert_eq!(streamed(&text), Err(before.0.clone()));
            assert!(
                before
                    .0
                    .starts_with(&format!("mtus[0].steps[{at}].{field}: "))
            );
        }
    }
}

/// A large MTU in id order but for two steps near its end, or with its last id repeating the
/// sixth: the order found and the repeat refused as before, however late they come.
#[test]
fn a_large_mtu_out_of_id_order_only_at_its_end_prints_as_before() {
    let steps: Vec<_> = (0..70_000)
        .map(|i| {
            let side = if i % 2 == 0 { "BUY" } else { "SELL" };
            let price = format!("{}.{:02}", 40 + i % 60, i % 100);
            step(&format!("s{i:05}"), side, &price, "1.5")
        })
        .collect();
    let mut swapped = steps.clone();
    swapped.swap(69_990, 69_995);
    assert_prints_as_before(&json!({"steps": swapped}).to_string());
    let mut repeated = steps;
    repeated[69_999]["id"] = repeated[5]["id"].clone();
    let text = json!({"steps": repeated}).to_string();
    assert_eq!(streamed(&text), before::print(&text).map_err(|e| e.0));
}
