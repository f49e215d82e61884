//! Each adapter's contract against moto's server (DynamoDB, EventBridge, Scheduler, S3, Secrets
//! Manager), and PutEvents' partial failures through a fault-injecting client at the SDK's HTTP
//! layer (moto cannot fail part of a PutEvents).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use energy_aws::dynamodb::DynamoOrderStore;
use energy_aws::eventbridge::EventBridgePublisher;
use energy_aws::s3::S3Results;
use energy_aws::scheduler::{EventBridgeScheduler, SchedulerTarget};
use energy_aws::slack::{CachedSecret, SlackWebhook};
use energy_core::events::{DomainEvent, OrderChecksDue, OrderEvaluationDue, Trigger};
use energy_core::lifecycle::{OrderRecord, OrderState, Transition};
use energy_core::order::{Order, RecordId};
use energy_core::ports::{
    DueIndex, EventPublisher, Inserted, Notification, Notifier, OrderStore, Replaced, ResultStore,
    RetryScheduler, Scheduled, SweepClaims,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn order(id: &str) -> Order {
    serde_json::from_value(json!({
        "record_id": id, "market": "SDAC", "delivery_date": "2026-01-15", "zone": "DE-LU", "portfolio": "P", "side": "BUY",
        "periods": [{"mtu_start": "2026-01-15T06:00:00Z", "steps": [{"price": "50.00", "quantity": "1.0"}]}]
    }))
    .unwrap()
}

fn record(id: &str, due: &str) -> OrderRecord {
    OrderRecord::received(order(id), at("2026-01-14T08:00:00Z"), at(due))
}

fn due_event(id: &str) -> OrderEvaluationDue {
    OrderEvaluationDue {
        record_id: RecordId::parse(id).unwrap(),
        attempt: 2,
        due_at: at("2026-01-14T11:46:00Z"),
        trigger: Trigger::Schedule,
    }
}

#[tokio::test]
async fn a_conditional_insert_loses_to_an_existing_order_and_answers_it() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    let first = record("c-1", "2026-01-14T08:02:00Z");
    assert_eq!(store.insert(&first).await.unwrap(), Inserted::New);
    let mut second = record("c-1", "2026-01-14T08:02:00Z");
    second.order.portfolio = "OTHER".into();
    assert_eq!(
        store.insert(&second).await.unwrap(),
        Inserted::Exists(Box::new(first.clone()))
    );
    assert_eq!(
        store.get(&first.order.record_id).await.unwrap(),
        Some(first.clone())
    );
    // A waiting order has no TTL attribute: DynamoDB never deletes it before it is final.
    let ttl_of = |id: &'static str| {
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        async move {
            let item = client
                .get_item()
                .table_name(TABLE)
                .key("record_id", AttributeValue::S(id.into()))
                .send()
                .await
                .unwrap();
            item.item()
                .unwrap()
                .get("ttl")
                .map(|v| v.as_n().unwrap().parse::<i64>().unwrap())
        }
    };
    assert_eq!(ttl_of("c-1").await, None);
    // Once final, it carries the TTL attribute DynamoDB expires it by: 24 h after that.
    let done = at("2026-01-14T12:00:00Z");
    let failed = first
        .apply(
            Transition::Fail {
                failure: energy_core::result::Failure {
                    reason: energy_core::result::FailureReason::ResultsTimeout,
                    message: "x".into(),
                    failed_at: done,
                },
                due_at: done,
            },
            done,
        )
        .unwrap();
    store.replace(&failed, first.expected()).await.unwrap();
    let notified = failed.apply(Transition::Notified, done).unwrap();
    store.replace(&notified, failed.expected()).await.unwrap();
    assert_eq!(ttl_of("c-1").await, Some(done.as_second() + 86_400));
}

#[tokio::test]
async fn a_replace_from_a_stale_version_is_a_conflict_and_changes_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    let r = record("v-1", "2026-01-14T08:02:00Z");
    store.insert(&r).await.unwrap();
    let now = at("2026-01-14T09:00:00Z");
    let pending = r
        .apply(
            Transition::HandedOver {
                due_at: at("2026-01-14T11:45:00Z"),
            },
            now,
        )
        .unwrap();
    assert_eq!(
        store.replace(&pending, r.expected()).await.unwrap(),
        Replaced::Applied
    );
    // A second delivery computed from the same old record loses.
    let other = r
        .apply(
            Transition::HandedOver {
                due_at: at("2026-01-14T12:00:00Z"),
            },
            now,
        )
        .unwrap();
    assert_eq!(
        store.replace(&other, r.expected()).await.unwrap(),
        Replaced::Conflict
    );
    let stored = store.get(&r.order.record_id).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.version, stored.due_at),
        (OrderState::Pending, 2, Some(at("2026-01-14T11:45:00Z")))
    );
}

#[tokio::test]
async fn a_batch_is_one_transaction_a_conflict_writes_none_of_it_and_duplicates_pass() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    let known = record("b-known", "2026-01-14T08:02:00Z");
    assert_eq!(store.insert(&known).await.unwrap(), Inserted::New);

    // A conflicting order under a known id: nothing of the batch is written.
    let mut changed = known.clone();
    changed.order.portfolio = "OTHER".into();
    let fresh = record("b-fresh", "2026-01-14T08:02:00Z");
    let answers = store.insert_batch(&[fresh.clone(), changed]).await.unwrap();
    assert_eq!(
        answers,
        [
            Inserted::Withheld,
            Inserted::Exists(Box::new(known.clone()))
        ]
    );
    assert_eq!(store.get(&fresh.order.record_id).await.unwrap(), None);

    // The same order again is a duplicate; the new ones are written together.
    let more: Vec<OrderRecord> = (0..30)
        .map(|i| record(&format!("b-{i:02}"), "2026-01-14T08:02:00Z"))
        .collect();
    let mut batch = vec![known.clone()];
    batch.extend(more.iter().cloned());
    let answers = store.insert_batch(&batch).await.unwrap();
    assert_eq!(answers[0], Inserted::Exists(Box::new(known.clone())));
    assert!(
        answers[1..].iter().all(|a| *a == Inserted::New),
        "{answers:?}"
    );
    for r in &more {
        assert_eq!(
            store.get(&r.order.record_id).await.unwrap().as_ref(),
            Some(r)
        );
    }
}

#[tokio::test]
async fn a_sweep_claim_moves_the_index_once_and_leaves_the_record_alone() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    let r = record("s-1", "2026-01-14T08:02:00Z");
    store.insert(&r).await.unwrap();
    let page = store
        .due(at("2026-01-14T09:00:00Z"), 10, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let seen = page.items[0].clone();
    assert_eq!(seen.sweeps, 0);
    let next = at("2026-01-14T08:10:00Z");
    assert!(store.claim_sweep(&seen, next).await.unwrap());
    // The same claim again lost: the index moved.
    assert!(!store.claim_sweep(&seen, next).await.unwrap());
    let page = store
        .due(at("2026-01-14T09:00:00Z"), 10, None)
        .await
        .unwrap();
    assert_eq!((page.items[0].due_at, page.items[0].sweeps), (next, 1));
    // The record is as it was; its next write resets the count.
    assert_eq!(
        store.get(&r.order.record_id).await.unwrap(),
        Some(r.clone())
    );
    let moved = r
        .apply(
            Transition::HandedOver {
                due_at: at("2026-01-14T08:30:00Z"),
            },
            at("2026-01-14T08:05:00Z"),
        )
        .unwrap();
    store.replace(&moved, r.expected()).await.unwrap();
    let page = store
        .due(at("2026-01-14T09:00:00Z"), 10, None)
        .await
        .unwrap();
    assert_eq!(page.items[0].sweeps, 0);
}

#[tokio::test]
async fn the_due_query_reads_the_sparse_index_across_pages_earliest_first() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    for i in 0..23 {
        let due = at("2026-01-14T08:00:00Z") + SignedDuration::from_secs(60 * i);
        store
            .insert(&OrderRecord::received(
                order(&format!("d-{i:02}")),
                at("2026-01-14T07:00:00Z"),
                due,
            ))
            .await
            .unwrap();
    }
    // Not yet due, and final (out of the index).
    store
        .insert(&record("later", "2026-01-15T00:00:00Z"))
        .await
        .unwrap();
    let done = record("done", "2026-01-14T07:30:00Z");
    store.insert(&done).await.unwrap();
    let failed = done
        .apply(
            Transition::Fail {
                failure: energy_core::result::Failure {
                    reason: energy_core::result::FailureReason::ResultsTimeout,
                    message: "x".into(),
                    failed_at: at("2026-01-14T08:00:00Z"),
                },
                due_at: at("2026-01-14T08:00:00Z"),
            },
            at("2026-01-14T08:00:00Z"),
        )
        .unwrap();
    store.replace(&failed, done.expected()).await.unwrap();
    let notified = failed
        .apply(Transition::Notified, at("2026-01-14T08:01:00Z"))
        .unwrap();
    store.replace(&notified, failed.expected()).await.unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .due(at("2026-01-14T12:00:00Z"), 10, cursor)
            .await
            .unwrap();
        pages += 1;
        seen.extend(
            page.items
                .iter()
                .map(|d| (d.record_id.to_string(), d.attempt)),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "the cursor must advance");
    }
    let expected: Vec<(String, u32)> = (0..23).map(|i| (format!("d-{i:02}"), 0)).collect();
    assert_eq!(seen, expected);
    assert!(pages >= 3, "23 entries in pages of 10");
}

#[tokio::test]
async fn a_round_schedule_is_a_one_time_at_expression_to_the_bus_and_a_duplicate_name_counts_as_done()
 {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let bus_arn = create_bus(&sdk).await;
    create_group(&sdk).await;
    let target = SchedulerTarget {
        group: GROUP.into(),
        bus_arn: bus_arn.clone(),
        role_arn: ROLE_ARN.into(),
        dead_letter_arn: Some(DLQ_ARN.into()),
    };
    let scheduler = EventBridgeScheduler::new(aws_sdk_scheduler::Client::new(&sdk), target);
    let when = at("2026-01-14T11:46:10Z");
    let name = energy_core::retry::round_name(when);
    let round = OrderChecksDue {
        due_by: when,
        after: None,
    };
    assert_eq!(
        scheduler.schedule(&name, when, &round).await.unwrap(),
        Scheduled::Created
    );
    // The next order whose check falls in the round finds its schedule: another container
    // by asking (ConflictException), this one without asking again.
    let other = EventBridgeScheduler::new(
        aws_sdk_scheduler::Client::new(&sdk),
        SchedulerTarget {
            group: GROUP.into(),
            bus_arn: bus_arn.clone(),
            role_arn: ROLE_ARN.into(),
            dead_letter_arn: Some(DLQ_ARN.into()),
        },
    );
    assert_eq!(
        other.schedule(&name, when, &round).await.unwrap(),
        Scheduled::AlreadyExists
    );
    assert_eq!(
        scheduler.schedule(&name, when, &round).await.unwrap(),
        Scheduled::AlreadyExists
    );
    let got = aws_sdk_scheduler::Client::new(&sdk)
        .get_schedule()
        .name(&name)
        .group_name(GROUP)
        .send()
        .await
        .unwrap();
    assert_eq!(got.schedule_expression(), Some("at(2026-01-14T11:46:10)"));
    assert_eq!(got.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        got.action_after_completion().map(|a| a.as_str()),
        Some("DELETE")
    );
    assert_eq!(
        got.flexible_time_window().map(|w| w.mode().as_str()),
        Some("OFF")
    );
    let t = got.target().unwrap();
    assert_eq!((t.arn(), t.role_arn()), (bus_arn.as_str(), ROLE_ARN));
    // A schedule whose event the bus did not take is retried, then dead-lettered.
    assert_eq!(t.dead_letter_config().and_then(|d| d.arn()), Some(DLQ_ARN));
    let retry = t.retry_policy().expect("a retry policy");
    assert_eq!(
        (
            retry.maximum_retry_attempts(),
            retry.maximum_event_age_in_seconds()
        ),
        (Some(8), Some(3600))
    );
    let input: serde_json::Value = serde_json::from_str(t.input().unwrap()).unwrap();
    assert_eq!(input, serde_json::json!({"due_by": "2026-01-14T11:46:10Z"}));
    assert_eq!(
        t.event_bridge_parameters().map(|p| p.detail_type()),
        Some("OrderChecksDue")
    );
    // A round this container made is not asked for again: gone behind its back (as after it
    // fired), it is not made again by this container, which remembers it.
    aws_sdk_scheduler::Client::new(&sdk)
        .delete_schedule()
        .name(&name)
        .group_name(GROUP)
        .send()
        .await
        .unwrap();
    assert_eq!(
        scheduler.schedule(&name, when, &round).await.unwrap(),
        Scheduled::AlreadyExists
    );
    let left = aws_sdk_scheduler::Client::new(&sdk)
        .list_schedules()
        .group_name(GROUP)
        .send()
        .await
        .unwrap();
    assert!(left.schedules().is_empty(), "asked AWS again");
}

#[tokio::test]
async fn a_result_object_is_json_encrypted_and_under_its_key() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let s3 = create_bucket(&sdk).await;
    let results = S3Results::new(s3.clone(), BUCKET);
    let body = br#"{"outcome":"ACCEPTED"}"#;
    results
        .put("results/2026-01-15/DE-LU/o-1.json", body)
        .await
        .unwrap();
    results
        .put("results/2026-01-15/DE-LU/o-1.json", body)
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("results/2026-01-15/DE-LU/o-1.json")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/json"));
    assert_eq!(
        got.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        body
    );
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    assert_eq!(
        listed.contents().len(),
        1,
        "a repeated write is the same object"
    );
}

#[tokio::test]
async fn published_events_reach_a_rule_on_the_bus_in_chunks_of_ten() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_bus(&sdk).await;
    let queue = subscribe_queue(&sdk, "energy.orders").await;
    let bus = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), BUS);
    let events: Vec<DomainEvent> = (0..25)
        .map(|i| DomainEvent::EvaluationDue(due_event(&format!("e-{i}"))))
        .collect();
    bus.publish(&events).await.unwrap();
    let mut got: Vec<String> = drain(&sdk, &queue)
        .await
        .iter()
        .map(|e| e["detail"]["record_id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..25).map(|i| format!("e-{i}")).collect();
    want.sort();
    assert_eq!(got, want);
}

fn put_events_answer(body: serde_json::Value) -> http::Response<SdkBody> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/x-amz-json-1.1")
        .body(SdkBody::from(body.to_string()))
        .unwrap()
}

fn any_request() -> http::Request<SdkBody> {
    http::Request::builder()
        .uri("https://events.eu-west-1.amazonaws.com/")
        .body(SdkBody::empty())
        .unwrap()
}

fn faulty_bus(answers: Vec<serde_json::Value>) -> (EventBridgePublisher, StaticReplayClient) {
    let replay = StaticReplayClient::new(
        answers
            .into_iter()
            .map(|a| ReplayEvent::new(any_request(), put_events_answer(a)))
            .collect(),
    );
    let config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .region(aws_sdk_eventbridge::config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
            "a", "b", None, None, "test",
        ))
        .http_client(replay.clone())
        .build();
    let mut bus = EventBridgePublisher::new(aws_sdk_eventbridge::Client::from_conf(config), BUS);
    bus.backoff = Duration::from_millis(1);
    bus.attempts = 3;
    (bus, replay)
}

fn sent_record_ids(replay: &StaticReplayClient) -> Vec<Vec<String>> {
    replay
        .actual_requests()
        .map(|r| {
            let body: serde_json::Value =
                serde_json::from_slice(r.body().bytes().unwrap()).unwrap();
            body["Entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    serde_json::from_str::<serde_json::Value>(e["Detail"].as_str().unwrap())
                        .unwrap()["record_id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn only_the_entries_that_failed_are_sent_again() {
    let (bus, replay) = faulty_bus(vec![
        json!({"FailedEntryCount": 1, "Entries": [{"EventId": "a"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}, {"EventId": "c"}]}),
        json!({"FailedEntryCount": 0, "Entries": [{"EventId": "b"}]}),
    ]);
    let events: Vec<DomainEvent> = ["p-0", "p-1", "p-2"]
        .iter()
        .map(|id| DomainEvent::EvaluationDue(due_event(id)))
        .collect();
    bus.publish(&events).await.unwrap();
    assert_eq!(
        sent_record_ids(&replay),
        vec![vec!["p-0", "p-1", "p-2"], vec!["p-1"]]
    );
}

#[tokio::test]
async fn entries_that_keep_failing_are_reported_by_index() {
    let fail = |n: usize| json!({"FailedEntryCount": 1, "Entries": (0..n).map(|i| if i == n - 1 { json!({"ErrorCode": "InternalFailure", "ErrorMessage": "down"}) } else { json!({"EventId": "x"}) }).collect::<Vec<_>>()});
    let (bus, replay) = faulty_bus(vec![fail(2), fail(1), fail(1)]);
    let events: Vec<DomainEvent> = ["q-0", "q-1"]
        .iter()
        .map(|id| DomainEvent::EvaluationDue(due_event(id)))
        .collect();
    let err = bus.publish(&events).await.unwrap_err();
    assert_eq!(err.failed.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
    assert!(err.failed[0].1.contains("InternalFailure"), "{err}");
    assert_eq!(
        sent_record_ids(&replay),
        vec![vec!["q-0", "q-1"], vec!["q-1"], vec!["q-1"]]
    );
}

/// A webhook that answers every post with `status` and counts them.
async fn webhook(status: u16) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/services/T/B/X", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, b) = (count.clone(), bodies.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            b.lock()
                .unwrap()
                .push(text.split("\r\n\r\n").nth(1).unwrap_or("").to_string());
            c.fetch_add(1, Ordering::SeqCst);
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (url, count, bodies)
}

async fn slack_with_secret(sdk: &aws_config::SdkConfig, url: &str) -> SlackWebhook {
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let secret = secrets
        .create_secret()
        .name("slack")
        .secret_string(url)
        .send()
        .await
        .unwrap();
    let arn = secret.arn().unwrap().to_string();
    SlackWebhook::new(CachedSecret::new(secrets, arn), Duration::from_secs(2)).unwrap()
}

fn notification() -> Notification {
    Notification {
        key: "o-1/Rejected".into(),
        text: "rejected".into(),
        payload: json!({"text": "rejected", "blocks": []}),
    }
}

#[tokio::test]
async fn slack_posts_the_payload_to_the_webhook_read_from_secrets_manager() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let (url, count, bodies) = webhook(200).await;
    let slack = slack_with_secret(&sdk, &url).await;
    slack.notify(&notification()).await.unwrap();
    slack.notify(&notification()).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);
    let body: serde_json::Value = serde_json::from_str(&bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(body["text"], "rejected");
}

#[tokio::test]
async fn a_non_2xx_answer_from_slack_is_an_error_with_the_status_and_without_the_url() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let (url, _, _) = webhook(403).await;
    let err = slack_with_secret(&sdk, &url)
        .await
        .notify(&notification())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert!(!err.retryable);
    assert!(
        !err.to_string().contains("/services/"),
        "the webhook URL must not leak: {err}"
    );
}

/// The item as DynamoDB holds it, read past the store.
async fn raw_item(
    sdk: &aws_config::SdkConfig,
    id: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(TABLE)
        .key("record_id", AttributeValue::S(id.into()))
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
        .unwrap()
}

/// An item's size as DynamoDB bills it: names and values (numbers at most their digits).
fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(n, v)| {
            n.len()
                + match v {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    _ => 0,
                }
        })
        .sum()
}

#[tokio::test]
async fn every_step_of_an_order_reads_back_exactly_from_a_compact_item_within_one_write_unit() {
    use energy_core::lifecycle::PreliminaryChange;
    use energy_core::memory::fixtures;
    use energy_core::result::{Failure, FailureReason};
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    let t = |m: i64| at("2026-01-14T11:45:00.123Z") + SignedDuration::from_mins(m);
    let final_result = fixtures::ready("k-1", true, t(10)).result.unwrap();
    let mut preliminary = final_result.clone();
    preliminary.published_at = t(0);
    let mut other = fixtures::ready("k-1", false, t(0)).result.unwrap();
    other.rejection_reason = Some("the platform's own words".into());
    let fail = |m| Transition::Fail {
        failure: Failure {
            reason: FailureReason::Rejected,
            message: "nothing accepted".into(),
            failed_at: t(m),
        },
        due_at: t(m + 5),
    };
    let mut amended = fixtures::order("k-1");
    amended.periods[1].steps[0].price = energy_core::money::PriceCents(-12_345);

    // Each path from RECEIVED, every record on it written over the one before.
    let paths: Vec<Vec<Transition>> = vec![
        vec![
            Transition::HandedOver { due_at: t(0) },
            Transition::Preliminary {
                change: PreliminaryChange::Published(preliminary.clone()),
                due_at: t(10),
            },
            Transition::PreliminaryAnnounced,
            Transition::Ready {
                result: final_result.clone(),
                due_at: t(15),
            },
            Transition::Claim { until: t(11) },
            Transition::Stored {
                key: fixtures::order("k-1").result_key(),
            },
        ],
        vec![
            Transition::HandedOver { due_at: t(0) },
            Transition::Preliminary {
                change: PreliminaryChange::Published(other.clone()),
                due_at: t(10),
            },
            Transition::Preliminary {
                change: PreliminaryChange::Withdrawn,
                due_at: t(20),
            },
            Transition::Ready {
                result: other.clone(),
                due_at: t(25),
            },
            fail(21),
            Transition::Claim { until: t(30) },
            Transition::Release,
            Transition::Notified,
        ],
        vec![
            Transition::HandedOver { due_at: t(0) },
            Transition::Amended {
                order: amended,
                due_at: t(1),
            },
            Transition::AmendRefused { due_at: t(2) },
            Transition::CancelRequested { due_at: t(3) },
            Transition::Claim { until: t(4) },
            Transition::Cancelled,
        ],
        vec![
            Transition::Ready {
                result: final_result.clone(),
                due_at: t(15),
            },
            Transition::Stored {
                key: "results/elsewhere.json".into(),
            },
        ],
    ];
    for (n, path) in paths.into_iter().enumerate() {
        let id = format!("k-{n}");
        let mut r = fixtures::received("k-1", t(-60));
        r.order.record_id = RecordId::parse(&id).unwrap();
        // The fourth path is a READY order from PENDING with a result key of its own.
        if n == 3 {
            r = r
                .apply(Transition::HandedOver { due_at: t(0) }, t(-59))
                .unwrap();
        }
        // Results carry the record id of their order.
        let own = r.order.record_id.clone();
        let fix = |t: Transition| match t {
            Transition::Ready { mut result, due_at } => {
                result.record_id = own.clone();
                Transition::Ready { result, due_at }
            }
            Transition::Preliminary {
                change: PreliminaryChange::Published(mut result),
                due_at,
            } => {
                result.record_id = own.clone();
                Transition::Preliminary {
                    change: PreliminaryChange::Published(result),
                    due_at,
                }
            }
            Transition::Amended { mut order, due_at } => {
                order.record_id = own.clone();
                Transition::Amended { order, due_at }
            }
            other => other,
        };
        store.insert(&r).await.unwrap();
        for (step, tr) in path.into_iter().enumerate() {
            let next = r.apply(fix(tr), t(step as i64)).unwrap();
            assert_eq!(
                store.replace(&next, r.expected()).await.unwrap(),
                Replaced::Applied
            );
            r = next;
            let back = store.get(&r.order.record_id).await.unwrap().unwrap();
            assert_eq!(back, r, "{id} after step {step}");
            let item = raw_item(&sdk, &id).await;
            assert!(
                item.contains_key("r") && !item.contains_key("record"),
                "{id} after step {step}: the compact form"
            );
            let size = item_size(&item);
            assert!(
                size <= 1024,
                "{id} after step {step}: {size} B is more than one write unit"
            );
        }
    }
}

#[tokio::test]
async fn an_item_of_the_first_format_reads_and_is_rewritten_compact() {
    use energy_core::memory::fixtures;
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    let old = fixtures::ready("old-1", true, at("2026-01-14T11:46:00Z"));
    // As the first item format wrote it: the whole record as JSON in `record`.
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(TABLE)
        .item("record_id", AttributeValue::S("old-1".into()))
        .item("state", AttributeValue::S("READY".into()))
        .item("version", AttributeValue::N(old.version.to_string()))
        .item("attempt", AttributeValue::N(old.attempt.to_string()))
        .item(
            "record",
            AttributeValue::S(serde_json::to_string(&old).unwrap()),
        )
        .item("due_shard", AttributeValue::S("due".into()))
        .item(
            "due_at",
            AttributeValue::N(old.due_at.unwrap().as_millisecond().to_string()),
        )
        .send()
        .await
        .unwrap();
    let id = RecordId::parse("old-1").unwrap();
    assert_eq!(store.get(&id).await.unwrap(), Some(old.clone()));
    let now = at("2026-01-14T11:47:00Z");
    let stored = old
        .apply(
            Transition::Stored {
                key: old.order.result_key(),
            },
            now,
        )
        .unwrap();
    assert_eq!(
        store.replace(&stored, old.expected()).await.unwrap(),
        Replaced::Applied
    );
    assert_eq!(store.get(&id).await.unwrap(), Some(stored));
    let item = raw_item(&sdk, "old-1").await;
    assert!(item.contains_key("r") && !item.contains_key("record"));
}

#[tokio::test]
async fn a_batch_of_one_is_stored_once_and_a_repost_answers_the_stored_order() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    let first = record("one-1", "2026-01-14T08:02:00Z");
    assert_eq!(
        store
            .insert_batch(std::slice::from_ref(&first))
            .await
            .unwrap(),
        [Inserted::New]
    );
    let mut changed = first.clone();
    changed.order.portfolio = "OTHER".into();
    for again in [first.clone(), changed] {
        assert_eq!(
            store.insert_batch(&[again]).await.unwrap(),
            [Inserted::Exists(Box::new(first.clone()))]
        );
    }
    assert_eq!(
        store.get(&first.order.record_id).await.unwrap(),
        Some(first)
    );
}
