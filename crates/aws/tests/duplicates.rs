//! The same event delivered three times at once, then once more after the order is final, on
//! the AWS adapters against moto: DynamoDB's conditional writes decide. A [`Lockstep`] store
//! holds the three first reads until all three have read, so the three deliveries always act on
//! the same version. One object (counted by puts, bytes compared), one `OrderResultStored`, one
//! message.

mod support;

use std::sync::Arc;

use energy_aws::dynamodb::DynamoOrderStore;
use energy_aws::eventbridge::EventBridgePublisher;
use energy_aws::s3::S3Results;
use energy_core::events::{DomainEvent, OrderFailed, OrderReady, OrderRef};
use energy_core::handler::EventHandler;
use energy_core::lifecycle::OrderState;
use energy_core::memory::{
    InMemoryNotifier, Lockstep, ManualClock, RecordingNotifier, RecordingResults, fixtures,
};
use energy_core::ports::OrderStore;
use energy_core::result::FailureReason;
use energy_core::retry::RetryPolicy;
use jiff::Timestamp;
use support::*;

const NOW: &str = "2026-01-14T12:00:00Z";

async fn dynamo(sdk: &aws_config::SdkConfig) -> Arc<DynamoOrderStore> {
    create_table(sdk).await;
    Arc::new(DynamoOrderStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        TABLE,
    ))
}

#[tokio::test]
async fn three_order_ready_at_once_and_one_after_write_one_object_and_one_event() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let store = dynamo(&sdk).await;
    create_bus(&sdk).await;
    let queue = subscribe_queue(&sdk, "energy.orders").await;
    let s3 = create_bucket(&sdk).await;
    let now: Timestamp = NOW.parse().unwrap();
    let record = fixtures::ready("md-r", true, now);
    store.insert(&record).await.unwrap();
    let results = Arc::new(RecordingResults::new(Arc::new(S3Results::new(
        s3.clone(),
        BUCKET,
    ))));
    let handler = store_result::StoreResult {
        clock: Arc::new(ManualClock::new(now)),
        orders: Arc::new(Lockstep::new(store.clone(), 3)),
        bus: Arc::new(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            BUS,
        )),
        results: results.clone(),
        config: store_result::Config {
            retry: RetryPolicy::default(),
        },
    };
    let result = record.result.clone().unwrap();
    let event = fixtures::event(
        &DomainEvent::Ready(OrderReady {
            order: OrderRef::from(&record.order),
            outcome: result.outcome,
            result: result.clone(),
        }),
        now,
    );
    let (a, b, c) = tokio::join!(
        handler.handle(event.clone()),
        handler.handle(event.clone()),
        handler.handle(event.clone())
    );
    let outcomes = [a.unwrap(), b.unwrap(), c.unwrap()];
    let stored = outcomes
        .iter()
        .filter(|o| matches!(o, store_result::Outcome::Stored { .. }))
        .count();
    assert_eq!(stored, 1, "{outcomes:?}");
    let after = handler.handle(event).await.unwrap();
    assert!(
        matches!(after, store_result::Outcome::Ignored(_)),
        "{after:?}"
    );

    let key = record.order.result_key();
    let expected = serde_json::to_vec_pretty(&result).unwrap();
    let puts = results.puts();
    let keys: Vec<&str> = puts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, [key.as_str()], "one put");
    assert!(
        puts[0].1 == expected,
        "the put's bytes are the stored result"
    );
    let object = s3
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert!(object.body.collect().await.unwrap().into_bytes() == expected);
    let events = drain(&sdk, &queue).await;
    let announced = events
        .iter()
        .filter(|e| e["detail-type"] == "OrderResultStored")
        .count();
    assert_eq!(announced, 1, "{events:?}");
    let r = store.get(&record.order.record_id).await.unwrap().unwrap();
    assert_eq!(r.state, OrderState::Stored);
    assert_eq!(r.version, record.version + 2, "claimed, then stored");
}

#[tokio::test]
async fn three_order_failed_at_once_and_one_after_send_one_message() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let store = dynamo(&sdk).await;
    let now: Timestamp = NOW.parse().unwrap();
    let record = fixtures::failed("md-f", FailureReason::ResultsTimeout, now);
    store.insert(&record).await.unwrap();
    let notifier = Arc::new(RecordingNotifier::new(Arc::new(InMemoryNotifier::new())));
    let handler = notify_slack::NotifySlack {
        clock: Arc::new(ManualClock::new(now)),
        orders: Arc::new(Lockstep::new(store.clone(), 3)),
        notifier: notifier.clone(),
        config: notify_slack::Config {
            retry: RetryPolicy::default(),
        },
    };
    let failure = record.failure.clone().unwrap();
    let event = fixtures::event(
        &DomainEvent::Failed(OrderFailed::from_record(&record, &failure)),
        now,
    );
    let (a, b, c) = tokio::join!(
        handler.handle(event.clone()),
        handler.handle(event.clone()),
        handler.handle(event.clone())
    );
    let outcomes = [a.unwrap(), b.unwrap(), c.unwrap()];
    let told = outcomes
        .iter()
        .filter(|o| **o == notify_slack::Outcome::Notified)
        .count();
    assert_eq!(told, 1, "{outcomes:?}");
    handler.handle(event).await.unwrap();
    assert_eq!(notifier.sent().len(), 1, "{:?}", notifier.sent());
    let r = store.get(&record.order.record_id).await.unwrap().unwrap();
    assert_eq!(r.state, OrderState::Notified);
}
