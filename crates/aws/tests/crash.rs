//! Deterministic crash points on the AWS adapters against moto (DynamoDB, EventBridge with an
//! SQS-subscribed rule, Scheduler, S3). For each point of `energy_core::crash`, the point is
//! armed in this process: the handler that reaches it panics there, so nothing after it runs, as
//! when a Lambda is killed mid-invocation. The event is then delivered again, as Lambda's retry
//! would, and the flow runs on, with sweep-pending on its schedule. Every order must end final
//! with exactly one result object holding the stored result's bytes (every put of it had those
//! bytes) and one Slack message per failure, repeated only after a crash between the post and
//! NOTIFIED.

mod support;

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use energy_auction::sim::{SimConfig, SimPlatform};
use energy_aws::dynamodb::DynamoOrderStore;
use energy_aws::eventbridge::EventBridgePublisher;
use energy_aws::s3::S3Results;
use energy_aws::scheduler::{EventBridgeScheduler, SchedulerTarget};
use energy_core::calendar::MarketRules;
use energy_core::crash;
use energy_core::handler::EventHandler;
use energy_core::lifecycle::OrderState;
use energy_core::memory::{InMemoryNotifier, ManualClock, RecordingNotifier, RecordingResults};
use energy_core::order::RecordId;
use energy_core::ports::{Clock, EventPublisher, OrderStore};
use energy_core::retry::RetryPolicy;
use evaluate_order::EvaluateOrder;
use jiff::SignedDuration;
use notify_slack::NotifySlack;
use serde_json::{Value, json};
use store_result::StoreResult;
use submit_order::SubmitOrder;
use support::*;
use sweep_pending::SweepPending;

struct Flow {
    sdk: aws_config::SdkConfig,
    queue: String,
    clock: Arc<ManualClock>,
    store: Arc<DynamoOrderStore>,
    results: Arc<RecordingResults>,
    s3: aws_sdk_s3::Client,
    notifier: Arc<RecordingNotifier>,
    platform: Arc<SimPlatform>,
    /// Every event delivered, by detail-type and record id.
    seen: std::sync::Mutex<Vec<(String, String)>>,
    submit: Arc<SubmitOrder>,
    evaluate: Arc<EvaluateOrder>,
    store_result: Arc<StoreResult>,
    notify: Arc<NotifySlack>,
    sweep: Arc<SweepPending>,
}

async fn flow(moto: &Moto) -> Flow {
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let bus_arn = create_bus(&sdk).await;
    create_group(&sdk).await;
    let s3 = create_bucket(&sdk).await;
    let queue = subscribe_queue(&sdk, "energy.orders").await;
    // Three hours before the gate of 2026-01-15 (11:00Z), results at 11:45Z.
    let clock = Arc::new(ManualClock::new("2026-01-14T08:00:00Z".parse().unwrap()));
    let store = Arc::new(DynamoOrderStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        TABLE,
    ));
    let bus: Arc<dyn EventPublisher> = Arc::new(EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(&sdk),
        BUS,
    ));
    let results = Arc::new(RecordingResults::new(Arc::new(S3Results::new(
        s3.clone(),
        BUCKET,
    ))));
    let notifier = Arc::new(RecordingNotifier::new(Arc::new(InMemoryNotifier::new())));
    let platform = Arc::new(SimPlatform::new(SimConfig::default(), clock.clone()));
    let retry = RetryPolicy::default();
    Flow {
        submit: Arc::new(SubmitOrder {
            clock: clock.clone(),
            orders: store.clone(),
            bus: bus.clone(),
            config: submit_order::Config::default(),
        }),
        evaluate: Arc::new(EvaluateOrder {
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
            platform: platform.clone(),
            config: evaluate_order::Config {
                retry,
                rules: MarketRules::default(),
                ..Default::default()
            },
        }),
        store_result: Arc::new(StoreResult {
            clock: clock.clone(),
            orders: store.clone(),
            bus: bus.clone(),
            results: results.clone(),
            config: store_result::Config { retry },
        }),
        notify: Arc::new(NotifySlack {
            clock: clock.clone(),
            orders: store.clone(),
            notifier: notifier.clone(),
            config: notify_slack::Config { retry },
        }),
        sweep: Arc::new(SweepPending {
            clock: clock.clone(),
            due: store.clone(),
            bus,
            config: sweep_pending::Config::default(),
        }),
        sdk,
        queue,
        clock,
        store,
        results,
        s3,
        notifier,
        platform,
        seen: Default::default(),
    }
}

fn order(id: &str, zone: &str, side: &str, price: &str) -> Value {
    json!({
        "record_id": id, "market": "SDAC", "delivery_date": "2026-01-15", "zone": zone,
        "portfolio": "DESK", "side": side,
        "periods": [{"mtu_start": "2026-01-15T06:00:00Z", "steps": [{"price": price, "quantity": "1.0"}]}]
    })
}

impl Flow {
    /// Delivers `event` to the function the template routes it to; `false` if the handler
    /// crashed (panicked at the armed point) and the event must be delivered again.
    async fn deliver(&self, event: &Value) -> bool {
        let delivered: EventBridgeEvent<Value> = serde_json::from_value(event.clone()).unwrap();
        let detail_type = event["detail-type"].as_str().unwrap().to_string();
        self.seen.lock().unwrap().push((
            detail_type.clone(),
            event["detail"]["record_id"]
                .as_str()
                .unwrap_or("-")
                .to_string(),
        ));
        let (evaluate, store, notify, sweep) = (
            self.evaluate.clone(),
            self.store_result.clone(),
            self.notify.clone(),
            self.sweep.clone(),
        );
        let run = tokio::spawn(async move {
            match detail_type.as_str() {
                "OrderSubmitted" | "OrderEvaluationDue" | "OrderAmended" | "OrderChecksDue" => {
                    evaluate.handle(delivered).await.map(|_| ()).unwrap();
                }
                "OrderReady" => store.handle(delivered).await.map(|_| ()).unwrap(),
                "OrderFailed" => notify.handle(delivered).await.map(|_| ()).unwrap(),
                "Scheduled Event" => sweep.handle(delivered).await.map(|_| ()).unwrap(),
                _ => {}
            }
        });
        match run.await {
            Ok(()) => true,
            Err(e) if e.is_panic() && !crash::pending() => false,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    async fn state(&self, id: &str) -> OrderState {
        let id = RecordId::parse(id).unwrap();
        self.store.get(&id).await.unwrap().unwrap().state
    }

    /// Runs the system until every order in `ids` is final: events first (a crashed one again
    /// at once), then due schedules, then two minutes on and a sweep.
    async fn run_to_final(&self, ids: &[&str]) {
        let mut retry: Vec<Value> = Vec::new();
        for _ in 0..500 {
            let mut events = std::mem::take(&mut retry);
            events.extend(drain(&self.sdk, &self.queue).await);
            if !events.is_empty() {
                for event in events {
                    if !self.deliver(&event).await {
                        retry.push(event);
                    }
                }
                continue;
            }
            let mut all_final = true;
            for id in ids {
                all_final &= self.state(id).await.is_final();
            }
            if all_final {
                return;
            }
            let (fired, next) = fire_schedules(&self.sdk, self.clock.now()).await;
            if fired > 0 {
                continue;
            }
            let step = self.clock.now() + SignedDuration::from_mins(2);
            self.clock.set(next.map_or(step, |n| n.min(step)));
            let sweep = json!({
                "version": "0", "id": format!("sweep-{}", self.clock.now()), "detail-type": "Scheduled Event",
                "source": "aws.events", "account": "123456789012", "time": self.clock.now().to_string(),
                "region": "eu-west-1", "resources": ["arn:aws:events:eu-west-1:123456789012:rule/sweep"], "detail": {}
            });
            assert!(self.deliver(&sweep).await, "the sweeper has no crash point");
        }
        panic!("orders not final after 500 rounds");
    }
}

async fn crash_at(point: &'static str) {
    let moto = Moto::start();
    let f = flow(&moto).await;
    crash::arm(point);
    let batch = json!([
        order("m-acc", "DE-LU", "BUY", "3000.00"),
        order("m-rej", "NL", "SELL", "3500.00"),
        order("m-can", "FR", "BUY", "3000.00")
    ]);
    let submit = f.submit.clone();
    let posted = tokio::spawn(async move { submit.handle(post(&batch)).await }).await;
    match posted {
        Ok(response) => assert_eq!(response.status_code, 202),
        Err(e) if e.is_panic() && !crash::pending() => {} // crashed between insert and publish
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
    // The desk withdraws the third order before anything was delivered.
    let mut delete = post(&json!([]));
    delete.request_context.http.method = http::Method::DELETE;
    delete.raw_path = Some("/orders/m-can".into());
    delete.request_context.http.path = Some("/orders/m-can".into());
    let answer = f.submit.handle(delete).await;
    assert_eq!(answer.status_code, 202);
    f.run_to_final(&["m-acc", "m-rej", "m-can"]).await;
    assert!(!crash::pending(), "the flow never reached {point}");
    assert_eq!(
        f.state("m-can").await,
        OrderState::Cancelled,
        "after {point}"
    );
    assert!(
        f.platform
            .order(&RecordId::parse("m-can").unwrap())
            .is_none(),
        "the platform does not hold a cancelled order after {point}"
    );
    let cancelled = f
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, id)| t == "OrderCancelled" && id == "m-can")
        .count();
    let expected_cancelled = if point == crash::EVALUATE_AFTER_CANCELLED {
        2
    } else {
        1
    };
    assert_eq!(
        cancelled, expected_cancelled,
        "OrderCancelled after {point}"
    );
    // SDAC: each order's preliminary result was told once, even across a crash between
    // keeping it and telling it.
    for id in ["m-acc", "m-rej"] {
        let told = f
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, seen)| t == "OrderPreliminaryResult" && seen == id)
            .count();
        assert_eq!(told, 1, "{id}'s OrderPreliminaryResult after {point}");
    }

    assert_eq!(f.state("m-acc").await, OrderState::Stored, "after {point}");
    assert_eq!(
        f.state("m-rej").await,
        OrderState::Notified,
        "after {point}"
    );
    let record = f
        .store
        .get(&RecordId::parse("m-acc").unwrap())
        .await
        .unwrap()
        .unwrap();
    let expected = serde_json::to_vec_pretty(record.result.as_ref().unwrap()).unwrap();
    let key = "results/2026-01-15/DE-LU/m-acc.json";
    let listed = f.s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [key], "after {point}");
    let object =
        f.s3.get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert!(
        bytes == expected,
        "the object holds the stored result after {point}"
    );
    let puts = f.results.puts();
    assert!(
        puts.iter().all(|(k, b)| k == key && *b == expected),
        "every put of the object had its bytes after {point}"
    );
    let expected_puts = if [crash::STORE_AFTER_PUT, crash::STORE_AFTER_PUBLISH].contains(&point) {
        2
    } else {
        1
    };
    assert_eq!(puts.len(), expected_puts, "puts after {point}");
    let sent = f.notifier.sent();
    let expected_messages = if point == crash::NOTIFY_AFTER_POST {
        2
    } else {
        1
    };
    assert_eq!(sent.len(), expected_messages, "messages after {point}");
    assert!(sent.iter().all(|n| n.key == "m-rej/Rejected"), "{sent:?}");
}

macro_rules! crash_tests {
    ($($name:ident: $point:expr;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                crash_at($point).await;
            }
        )*

        #[test]
        fn every_crash_point_has_its_test() {
            let tested = [$($point),*];
            assert_eq!(tested.as_slice(), crash::POINTS);
        }
    };
}

crash_tests! {
    a_crash_after_the_insert_before_order_submitted: crash::SUBMIT_AFTER_INSERT;
    a_crash_after_the_platform_took_the_order: crash::EVALUATE_AFTER_SUBMIT;
    a_crash_after_the_check_was_scheduled: crash::EVALUATE_AFTER_SCHEDULE;
    a_crash_after_a_preliminary_result_was_kept: crash::EVALUATE_AFTER_PRELIMINARY;
    a_crash_after_ready_before_order_ready: crash::EVALUATE_AFTER_READY;
    a_crash_after_the_platform_withdrew_the_order: crash::EVALUATE_AFTER_WITHDRAW;
    a_crash_after_order_cancelled_was_published: crash::EVALUATE_AFTER_CANCELLED;
    a_crash_after_the_result_object_was_written: crash::STORE_AFTER_PUT;
    a_crash_after_order_result_stored_was_published: crash::STORE_AFTER_PUBLISH;
    a_crash_after_failed_before_order_failed: crash::AFTER_FAIL;
    a_crash_after_the_message_was_claimed: crash::NOTIFY_AFTER_CLAIM;
    a_crash_after_the_message_was_posted: crash::NOTIFY_AFTER_POST;
}
