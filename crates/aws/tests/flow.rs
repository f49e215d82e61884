//! The whole flow on the AWS adapters against moto: orders go in through submit-order, every
//! event the handlers publish reaches a rule on moto's bus with an SQS target, is checked against
//! its schema in `events-schema/`, and is handed to the function the template routes it to.
//! moto stores schedules but never fires them: the test fires the due ones the way EventBridge
//! Scheduler would (PutEvents of the target's input), then deletes them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use energy_auction::sim::{SimConfig, SimPlatform};
use energy_aws::dynamodb::DynamoOrderStore;
use energy_aws::eventbridge::EventBridgePublisher;
use energy_aws::s3::S3Results;
use energy_aws::scheduler::{EventBridgeScheduler, SchedulerTarget};
use energy_core::calendar::MarketRules;
use energy_core::handler::EventHandler;
use energy_core::memory::{InMemoryNotifier, ManualClock};
use energy_core::ports::{Clock, EventPublisher, OrderStore};
use energy_core::retry::RetryPolicy;
use evaluate_order::EvaluateOrder;
use notify_slack::NotifySlack;
use serde_json::{Value, json};
use store_result::StoreResult;
use submit_order::SubmitOrder;
use support::*;

fn validators() -> BTreeMap<String, jsonschema::Validator> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events-schema");
    energy_core::events::DomainEvent::DETAIL_TYPES
        .iter()
        .map(|t| {
            let schema: Value = serde_json::from_str(
                &std::fs::read_to_string(dir.join(format!("{t}.json"))).unwrap(),
            )
            .unwrap();
            (t.to_string(), jsonschema::draft4::new(&schema).unwrap())
        })
        .collect()
}

fn order(id: &str, zone: &str, side: &str, steps: Value) -> Value {
    json!({
        "record_id": id, "market": "SDAC", "delivery_date": "2026-01-15", "zone": zone, "portfolio": "DESK", "side": side,
        "periods": [{"mtu_start": "2026-01-15T06:00:00Z", "steps": steps}, {"mtu_start": "2026-01-15T06:15:00Z", "steps": steps}]
    })
}

#[tokio::test]
async fn the_whole_flow_on_the_aws_adapters_publishes_only_schema_valid_events() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let bus_arn = create_bus(&sdk).await;
    create_group(&sdk).await;
    let s3 = create_bucket(&sdk).await;
    let queue = subscribe_queue(&sdk, "energy.orders").await;

    let clock = Arc::new(ManualClock::new("2026-01-14T08:00:00Z".parse().unwrap()));
    let notifier = Arc::new(InMemoryNotifier::new());
    let store = Arc::new(DynamoOrderStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        TABLE,
    ));
    let bus: Arc<dyn EventPublisher> = Arc::new(EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(&sdk),
        BUS,
    ));
    let retry = RetryPolicy::default();
    // Each handler with exactly the adapters its Lambda is wired with.
    let submit = SubmitOrder {
        clock: clock.clone(),
        orders: store.clone(),
        bus: bus.clone(),
        config: submit_order::Config::default(),
    };
    let evaluate = EvaluateOrder {
        clock: clock.clone(),
        orders: store.clone(),
        due: store.clone(),
        bus: bus.clone(),
        scheduler: Arc::new(EventBridgeScheduler::new(
            aws_sdk_scheduler::Client::new(&sdk),
            SchedulerTarget {
                group: GROUP.into(),
                bus_arn,
                role_arn: ROLE_ARN.into(),
                dead_letter_arn: None,
            },
        )),
        platform: Arc::new(SimPlatform::new(SimConfig::default(), clock.clone())),
        config: evaluate_order::Config {
            retry,
            rules: MarketRules::default(),
            ..Default::default()
        },
    };
    let store_result = StoreResult {
        clock: clock.clone(),
        orders: store.clone(),
        bus: bus.clone(),
        results: Arc::new(S3Results::new(s3.clone(), BUCKET)),
        config: store_result::Config { retry },
    };
    let notify = NotifySlack {
        clock: clock.clone(),
        orders: store.clone(),
        notifier: notifier.clone(),
        config: notify_slack::Config { retry },
    };

    let batch = json!([
        order(
            "f-accepted",
            "DE-LU",
            "BUY",
            json!([{"price": "3000.00", "quantity": "10.0"}])
        ),
        order(
            "f-partial",
            "NL",
            "BUY",
            json!([{"price": "500.00", "quantity": "5.0"}, {"price": "1.00", "quantity": "2.5"}])
        ),
        order(
            "f-rejected",
            "BE",
            "SELL",
            json!([{"price": "3500.00", "quantity": "20.0"}])
        ),
    ]);
    let response = submit.handle(post(&batch)).await;
    assert_eq!(response.status_code, 202);

    let schemas = validators();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _round in 0..50 {
        let mut events = drain(&sdk, &queue).await;
        for event in &mut events {
            // moto leaves `account` out of the events it delivers (EventBridge always sets it).
            if event.get("account").is_none() {
                event["account"] = json!("123456789012");
            }
            let event = &*event;
            let detail_type = event["detail-type"].as_str().unwrap().to_string();
            let errors: Vec<String> = schemas[&detail_type]
                .iter_errors(event)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{detail_type} off its schema: {errors:?}\n{event:#}"
            );
            *seen.entry(detail_type.clone()).or_default() += 1;
            let delivered: EventBridgeEvent<Value> = serde_json::from_value(event.clone()).unwrap();
            match detail_type.as_str() {
                "OrderSubmitted" | "OrderChecksDue" => {
                    evaluate.handle(delivered).await.unwrap();
                }
                "OrderReady" => {
                    store_result.handle(delivered).await.unwrap();
                }
                "OrderFailed" => {
                    notify.handle(delivered).await.unwrap();
                }
                _ => {}
            }
        }
        if !events.is_empty() {
            continue;
        }
        match fire_schedules(&sdk, clock.now()).await {
            (0, Some(next)) => clock.set(next),
            (0, None) => break,
            _ => {}
        }
    }
    let types: BTreeSet<&str> = seen.keys().map(String::as_str).collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "OrderChecksDue",
            "OrderFailed",
            "OrderPreliminaryResult",
            "OrderReady",
            "OrderResultStored",
            "OrderSubmitted"
        ])
    );
    assert_eq!(seen["OrderSubmitted"], 3);
    assert_eq!(
        seen["OrderPreliminaryResult"], 3,
        "SDAC: one preliminary result each"
    );
    let mut states = Vec::new();
    for id in ["f-accepted", "f-partial", "f-rejected"] {
        let r = store
            .get(&energy_core::order::RecordId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        states.push((id, r.state.to_string()));
    }
    assert_eq!(
        states,
        [
            ("f-accepted", "STORED".to_string()),
            ("f-partial", "STORED".into()),
            ("f-rejected", "NOTIFIED".into())
        ]
    );
    let objects = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let keys: Vec<&str> = objects.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys,
        [
            "results/2026-01-15/DE-LU/f-accepted.json",
            "results/2026-01-15/NL/f-partial.json"
        ]
    );
    assert_eq!(notifier.sent().len(), 1);
}
