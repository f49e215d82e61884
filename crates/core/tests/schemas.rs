//! Types and schemas cannot drift apart: every example in `events-schema/` is valid against its
//! schema and reads into its Rust type and back unchanged; generated values of every event type
//! serialise to documents the schema accepts; the API schema accepts a valid batch and refuses
//! the seed's payload.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use energy_core::events::{
    Change, DetailType, DomainEvent, EnvelopeContext, OrderAmended, OrderCancelled,
    OrderChangeRefused, OrderChecksDue, OrderEvaluationDue, OrderFailed, OrderPreliminaryResult,
    OrderReady, OrderRef, OrderResultStored, OrderSubmitted, PreliminaryStatus, RoundCursor,
    Trigger, envelope,
};
use energy_core::market::{Market, Side, Zone};
use energy_core::money::{Lots, PriceCents};
use energy_core::order::{Order, Period, RecordId, Step};
use energy_core::result::{FailureReason, OrderResult};
use jiff::Timestamp;
use jiff::civil::Date;
use proptest::prelude::*;
use serde_json::Value;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events-schema")
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(name: &str) -> jsonschema::Validator {
    let schema = read(&schema_dir().join(format!("{name}.json")));
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name}.json is not a valid draft-04 schema: {e}"))
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

#[test]
fn there_is_one_schema_per_detail_type_and_nothing_else() {
    let files: BTreeSet<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| e.path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let types: BTreeSet<String> = DomainEvent::DETAIL_TYPES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(files, types);
}

#[test]
fn every_example_event_is_valid_and_round_trips_through_its_type() {
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(schema_dir().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let detail_type = name.split('.').next().unwrap().to_string();
        let example = read(&path);
        assert_eq!(
            example["detail-type"],
            detail_type.as_str(),
            "{name}: file name and detail-type disagree"
        );
        assert_valid(&validator(&detail_type), &example, &name);
        let event = DomainEvent::parse(&detail_type, example["detail"].clone())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            event.detail(),
            example["detail"],
            "{name}: the Rust type does not give back the example"
        );
        seen.insert(detail_type);
    }
    let all: BTreeSet<String> = DomainEvent::DETAIL_TYPES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(seen, all, "every detail-type needs at least one example");
}

#[test]
fn the_api_schema_takes_a_valid_batch_and_refuses_the_seed_payload() {
    let v = validator("api/PostOrdersRequest");
    let good = read(&schema_dir().join("api/examples/orders.json"));
    assert_valid(&v, &good, "api/examples/orders.json");
    let seed =
        read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-payload.json"));
    assert!(
        !v.is_valid(&seed),
        "the seed payload must not pass the API schema"
    );
}

#[test]
fn a_schema_refuses_a_detail_with_a_field_it_does_not_describe() {
    let mut example = read(&schema_dir().join("examples/OrderFailed.json"));
    example["detail"]["surprise"] = Value::from(1);
    assert!(!validator("OrderFailed").is_valid(&example));
}

// Generated values of every event type.

fn ts() -> impl Strategy<Value = Timestamp> {
    (
        1_700_000_000i64..1_900_000_000,
        prop_oneof![Just(0i32), 1i32..999_999_999],
    )
        .prop_map(|(s, ns)| Timestamp::new(s, ns).unwrap())
}

fn date() -> impl Strategy<Value = Date> {
    (2025i16..2030, 1i8..=12, 1i8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap())
}

fn record_id() -> impl Strategy<Value = RecordId> {
    "[A-Za-z0-9_.:-]{1,64}"
        .prop_filter("no URL names . or ..", |s| s != "." && s != "..")
        .prop_map(|s| RecordId::parse(&s).unwrap())
}

fn order_ref() -> impl Strategy<Value = OrderRef> {
    (
        record_id(),
        prop::sample::select(Market::ALL),
        date(),
        prop::sample::select(Zone::ALL),
        "[A-Z0-9_-]{1,20}",
        prop::sample::select(Side::ALL),
    )
        .prop_map(
            |(record_id, market, delivery_date, zone, portfolio, side)| OrderRef {
                record_id,
                market,
                delivery_date,
                zone,
                portfolio,
                side,
            },
        )
}

fn result() -> impl Strategy<Value = OrderResult> {
    (
        order_ref(),
        prop::collection::vec((-999_900i64..999_900, 1i64..100_000, 0u8..=2), 1..6),
        ts(),
    )
        .prop_map(|(r, steps, published_at)| {
            let start = Timestamp::from_second(1_800_000_000).unwrap();
            let order = Order {
                record_id: r.record_id,
                market: r.market,
                delivery_date: r.delivery_date,
                zone: r.zone,
                portfolio: r.portfolio,
                side: r.side,
                periods: steps
                    .iter()
                    .enumerate()
                    .map(|(i, (p, q, _))| Period {
                        mtu_start: Timestamp::from_second(start.as_second() + 900 * i as i64)
                            .unwrap(),
                        steps: vec![Step {
                            price: PriceCents(*p),
                            quantity: Lots(*q),
                        }],
                    })
                    .collect(),
            };
            let fills: Vec<_> = steps
                .iter()
                .map(|(p, q, how)| match how {
                    0 => (None, Lots(0)),
                    1 => (Some(PriceCents(*p)), Lots(*q / 2)),
                    _ => (Some(PriceCents(*p)), Lots(*q)),
                })
                .collect();
            OrderResult::from_fills(&order, &fills, published_at).expect("bounded fills fit")
        })
}

/// The order a result is for.
fn order_of(r: &OrderResult) -> OrderRef {
    OrderRef {
        record_id: r.record_id.clone(),
        market: r.market,
        delivery_date: r.delivery_date,
        zone: r.zone,
        portfolio: r.portfolio.clone(),
        side: r.side,
    }
}

fn event() -> impl Strategy<Value = DomainEvent> {
    prop_oneof![
        (order_ref(), 1u32..2000, ts()).prop_map(|(order, mtu_count, submitted_at)| {
            DomainEvent::Submitted(OrderSubmitted {
                order,
                mtu_count,
                submitted_at,
            })
        }),
        (
            record_id(),
            0u32..100,
            ts(),
            prop::sample::select(vec![Trigger::Schedule, Trigger::Sweep, Trigger::Cancel])
        )
            .prop_map(|(record_id, attempt, due_at, trigger)| {
                DomainEvent::EvaluationDue(OrderEvaluationDue {
                    record_id,
                    attempt,
                    due_at,
                    trigger,
                })
            }),
        (ts(), prop::option::of((ts(), record_id()))).prop_map(|(due_by, after)| {
            DomainEvent::ChecksDue(OrderChecksDue {
                due_by,
                after: after.map(|(due_at, record_id)| RoundCursor { due_at, record_id }),
            })
        }),
        (order_ref(), ts()).prop_map(|(order, cancelled_at)| {
            DomainEvent::Cancelled(OrderCancelled {
                order,
                cancelled_at,
            })
        }),
        (order_ref(), prop::bool::ANY, ".{0,200}", ts()).prop_map(
            |(order, amend, reason, refused_at)| {
                DomainEvent::ChangeRefused(OrderChangeRefused {
                    order,
                    change: if amend { Change::Amend } else { Change::Cancel },
                    reason,
                    refused_at,
                })
            }
        ),
        (order_ref(), 1u32..2000, ts()).prop_map(|(order, mtu_count, amended_at)| {
            DomainEvent::Amended(OrderAmended {
                order,
                mtu_count,
                amended_at,
            })
        }),
        (result(), prop::option::of(ts())).prop_map(|(result, withdrawn_at)| {
            DomainEvent::PreliminaryResult(OrderPreliminaryResult {
                order: order_of(&result),
                status: if withdrawn_at.is_some() {
                    PreliminaryStatus::Withdrawn
                } else {
                    PreliminaryStatus::Published
                },
                outcome: result.outcome,
                result,
                withdrawn_at,
            })
        }),
        result().prop_map(|result| DomainEvent::Ready(OrderReady {
            order: order_of(&result),
            outcome: result.outcome,
            result,
        })),
        (
            order_ref(),
            prop::sample::select(vec![
                FailureReason::Rejected,
                FailureReason::ResultsTimeout,
                FailureReason::InvalidAtPlatform,
                FailureReason::ProcessingError
            ]),
            ".{0,200}",
            0u32..100,
            ts()
        )
            .prop_map(
                |(order, reason, message, attempts, failed_at)| DomainEvent::Failed(OrderFailed {
                    order,
                    reason,
                    message,
                    attempts,
                    failed_at
                })
            ),
        result()
            .prop_filter("stored results only", |r| r.outcome.is_stored())
            .prop_map(|r| {
                let order = order_of(&r);
                DomainEvent::ResultStored(OrderResultStored {
                    key: format!(
                        "results/{}/{}/{}.json",
                        r.delivery_date, r.zone, r.record_id
                    ),
                    order,
                    outcome: r.outcome,
                    accepted_energy_mwh: r.totals.accepted_energy_mwh,
                    notional_eur: r.totals.notional_eur,
                })
            }),
    ]
}

/// The generator makes events of every detail-type, so the property below covers them all.
#[test]
fn the_generator_makes_every_detail_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = event();
    let mut made = BTreeSet::new();
    for _ in 0..2000 {
        made.insert(
            strategy
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .detail_type(),
        );
    }
    let all: BTreeSet<&str> = DetailType::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(made, all);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn generated_events_of_every_type_match_their_schema(event in event(), time in ts()) {
        let doc = envelope(&event, "2b7d1c8e-0000-4000-8000-000000000000", time, &EnvelopeContext::default());
        assert_valid(&validator(event.detail_type()), &doc, event.detail_type());
        let back = DomainEvent::parse(event.detail_type(), doc["detail"].clone()).unwrap();
        prop_assert_eq!(back, event);
    }
}
