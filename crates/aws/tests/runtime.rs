//! Runtime contract: each release `bootstrap` (built by `cargo lambda build --release`) runs
//! against a loopback Runtime API with its AWS endpoints pointed at moto, gets a real event, and
//! answers the documented response or error document.
//!
//! The bootstraps are looked for in `ENERGY_BOOTSTRAPS` or `target/lambda/<this machine's arch>/<name>/bootstrap`,
//! where `scripts/test` builds them.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use energy_aws::dynamodb::DynamoOrderStore;
use energy_core::lifecycle::{OrderRecord, Transition};
use energy_core::order::Order;
use energy_core::ports::OrderStore;
use energy_core::result::{Failure, FailureReason, OrderResult};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use support::runtime::{Answer, invoke};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// cargo-lambda's name for this machine's architecture: the bootstraps tested here are the ones
/// built for it (on the arm64 build host, the ones that ship).
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    }
}

fn bootstrap(name: &str) -> PathBuf {
    let dir = std::env::var_os("ENERGY_BOOTSTRAPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/lambda")
                .join(host_arch())
        });
    let path = dir.join(name).join("bootstrap");
    assert!(
        path.exists(),
        "{} is missing: build this machine's bootstraps with scripts/build-bootstraps \
         (./scripts/test does, after installing cargo-lambda into .venv)",
        path.display()
    );
    let built = modified(&path);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sources = [
        root.join("Cargo.lock"),
        root.join("handlers").join(name).join("src"),
        root.join("crates/core/src"),
        root.join("crates/aws/src"),
        root.join("crates/auction/src"),
    ];
    if let Some(newer) = sources
        .iter()
        .filter_map(|s| newest(s))
        .find(|(_, t)| *t > built)
    {
        panic!(
            "{} is older than {}: the contract would test a stale binary. Rebuild with scripts/build-bootstraps \
             (./scripts/test does)",
            path.display(),
            newer.0.display()
        );
    }
    path
}

fn modified(path: &std::path::Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The most recently modified file under `path` (or `path` itself), with its time.
fn newest(path: &std::path::Path) -> Option<(PathBuf, std::time::SystemTime)> {
    if path.is_file() {
        return Some((path.to_path_buf(), modified(path)));
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest(&e.path()))
        .max_by_key(|(_, t)| *t)
}

fn response(run: &support::runtime::Run) -> &Value {
    match &run.answer {
        Answer::Response(v) => v,
        other => panic!("expected a response, got {other:?}\n{}", run.stdout),
    }
}

async fn seed(
    stack: &Stack,
    id: &str,
    to: impl FnOnce(&OrderRecord) -> OrderRecord,
) -> OrderRecord {
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), TABLE);
    let order: Order = serde_json::from_value(order_json(id)).unwrap();
    let received = OrderRecord::received(order, Timestamp::now(), Timestamp::now());
    store.insert(&received).await.unwrap();
    let next = to(&received);
    store.replace(&next, received.expected()).await.unwrap();
    next
}

#[tokio::test]
async fn submit_order_answers_an_api_gateway_v2_request_with_a_202_proxy_response() {
    let stack = stack().await;
    let request = json!({
        "version": "2.0", "routeKey": "POST /orders", "rawPath": "/orders", "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "x", "requestId": "r1", "routeKey": "POST /orders",
            "stage": "$default", "time": "14/Jan/2026:08:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "POST", "path": "/orders", "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "curl"}},
        "body": json!([order_json("rt-1")]).to_string(), "isBase64Encoded": false
    });
    let run = invoke(&bootstrap("submit-order"), &[], &stack.env, request).await;
    let doc = response(&run);
    assert_eq!(doc["statusCode"], 202, "{doc}");
    let body: Value =
        serde_json::from_str(doc["body"].as_str().expect("the body is a JSON string")).unwrap();
    assert_eq!(body["orders"][0]["status"], "accepted");
    let stored = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), TABLE)
        .get(&energy_core::order::RecordId::parse("rt-1").unwrap())
        .await
        .unwrap();
    assert!(stored.is_some(), "the order is in the table");
    assert!(
        run.stdout.contains("\"level\":\"INFO\""),
        "JSON logs: {}",
        run.stdout
    );
}

#[tokio::test]
async fn evaluate_order_hands_an_order_over_and_schedules_its_first_check() {
    let stack = stack().await;
    seed(&stack, "rt-2", |r| r.clone()).await;
    let event = eventbridge(
        "OrderEvaluationDue",
        "energy.orders",
        json!({"record_id": "rt-2", "attempt": 0, "due_at": "2026-01-14T08:02:00Z", "trigger": "SWEEP"}),
    );
    let run = invoke(&bootstrap("evaluate-order"), &[], &stack.env, event).await;
    assert!(
        response(&run)["outcome"]
            .as_str()
            .unwrap()
            .starts_with("handed over; first check "),
        "{:?}",
        run.answer
    );
    let schedules = aws_sdk_scheduler::Client::new(&stack.sdk)
        .list_schedules()
        .group_name(GROUP)
        .send()
        .await
        .unwrap();
    // The round its first check falls in: `checks-<its end>`.
    let names: Vec<&str> = schedules
        .schedules()
        .iter()
        .filter_map(|s| s.name())
        .collect();
    assert!(
        names.len() == 1 && names[0].starts_with("checks-") && names[0].ends_with('0'),
        "{names:?}"
    );
    assert!(
        run.stdout.contains("\"record_id\":\"rt-2\""),
        "the record id on the log lines: {}",
        run.stdout
    );
}

#[tokio::test]
async fn a_misrouted_event_is_an_error_document_that_says_a_retry_cannot_help() {
    let stack = stack().await;
    let event = eventbridge(
        "OrderResultStored",
        "energy.orders",
        json!({"record_id": "x"}),
    );
    let run = invoke(&bootstrap("evaluate-order"), &[], &stack.env, event).await;
    match &run.answer {
        Answer::Error(doc) => {
            assert!(
                doc["errorType"]
                    .as_str()
                    .unwrap()
                    .starts_with("NotRetryable."),
                "{doc}"
            );
            assert!(
                doc["errorMessage"]
                    .as_str()
                    .unwrap()
                    .contains("OrderResultStored"),
                "{doc}"
            );
        }
        other => panic!("expected an error document, got {other:?}"),
    }
}

#[tokio::test]
async fn store_result_writes_the_result_object_of_a_ready_order() {
    let stack = stack().await;
    let record = seed(&stack, "rt-3", |r| {
        let fills = vec![(
            Some(energy_core::money::PriceCents(9_000)),
            energy_core::money::Lots(100),
        )];
        let result = OrderResult::from_fills(&r.order, &fills, Timestamp::now()).unwrap();
        let pending = r
            .apply(
                Transition::HandedOver {
                    due_at: Timestamp::now(),
                },
                Timestamp::now(),
            )
            .unwrap();
        pending
            .apply(
                Transition::Ready {
                    result,
                    due_at: Timestamp::now() + SignedDuration::from_mins(5),
                },
                Timestamp::now(),
            )
            .unwrap()
    })
    .await;
    let result = record.result.clone().unwrap();
    let detail = json!({"record_id": "rt-3", "market": "SDAC", "delivery_date": record.order.delivery_date.to_string(), "zone": "DE-LU",
        "portfolio": "P", "side": "BUY", "outcome": "ACCEPTED", "result": result});
    let run = invoke(
        &bootstrap("store-result"),
        &[],
        &stack.env,
        eventbridge("OrderReady", "energy.orders", detail),
    )
    .await;
    assert!(
        response(&run)["outcome"]
            .as_str()
            .unwrap()
            .starts_with("result stored at results/"),
        "{:?}",
        run.answer
    );
    let config = aws_sdk_s3::config::Builder::from(&stack.sdk)
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    let key = format!("results/{}/DE-LU/rt-3.json", record.order.delivery_date);
    assert_eq!(keys, [key.as_str()]);
    assert_eq!(
        response(&run)["outcome"],
        format!("result stored at {key}").as_str()
    );
    // The object is the result stored with the order, byte for byte what store-result writes.
    let object = s3
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.as_ref(), serde_json::to_vec_pretty(&result).unwrap());
}

#[tokio::test]
async fn notify_slack_posts_once_for_a_failed_order() {
    let stack = stack().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/services/T/B/X", listener.local_addr().unwrap());
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = posts.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let _ = s.read(&mut buf).await;
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
    });
    let secret = aws_sdk_secretsmanager::Client::new(&stack.sdk)
        .create_secret()
        .name("slack")
        .secret_string(&url)
        .send()
        .await
        .unwrap();
    let mut env = stack.env.clone();
    env.push((
        "SLACK_WEBHOOK_SECRET_ARN",
        secret.arn().unwrap().to_string(),
    ));
    let failure = Failure {
        reason: FailureReason::Rejected,
        message: "out of the money".into(),
        failed_at: Timestamp::now(),
    };
    let record = seed(&stack, "rt-4", |r| {
        let pending = r
            .apply(
                Transition::HandedOver {
                    due_at: Timestamp::now(),
                },
                Timestamp::now(),
            )
            .unwrap();
        pending
            .apply(
                Transition::Fail {
                    failure: failure.clone(),
                    due_at: Timestamp::now(),
                },
                Timestamp::now(),
            )
            .unwrap()
    })
    .await;
    let event = energy_core::events::OrderFailed::from_record(&record, &failure);
    let run = invoke(
        &bootstrap("notify-slack"),
        &[],
        &env,
        eventbridge(
            "OrderFailed",
            "energy.orders",
            serde_json::to_value(event).unwrap(),
        ),
    )
    .await;
    assert_eq!(
        response(&run)["outcome"],
        "the desk was told",
        "{}",
        run.stdout
    );
    assert_eq!(posts.load(Ordering::SeqCst), 1);
    assert!(
        !run.stdout.contains("/services/T/B/X"),
        "the webhook URL must never be logged"
    );
}

#[tokio::test]
async fn sweep_pending_answers_a_scheduled_event_with_its_report() {
    let stack = stack().await;
    seed(&stack, "rt-5", |r| r.clone()).await;
    // The rule fires now: the order seeded due now is overdue with no grace.
    let now = Timestamp::now().to_string();
    let event = json!({"version": "0", "id": "s", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": now, "region": "eu-west-1", "resources": ["arn:aws:events:eu-west-1:123456789012:rule/sweep"], "detail": {}});
    let mut env = stack.env.clone();
    env.push(("SWEEP_GRACE_SECONDS", "0".into()));
    let run = invoke(&bootstrap("sweep-pending"), &[], &env, event).await;
    let outcome = response(&run)["outcome"].as_str().unwrap().to_string();
    assert_eq!(outcome, "re-sent 1 overdue order");
}

#[tokio::test]
async fn a_missing_variable_stops_start_up_and_names_it() {
    let stack = stack().await;
    let env: Vec<_> = stack
        .env
        .iter()
        .filter(|(k, _)| *k != "ORDERS_TABLE")
        .cloned()
        .collect();
    let run = invoke(&bootstrap("store-result"), &[], &env, json!({})).await;
    assert!(
        matches!(run.answer, Answer::InitError(_)),
        "{:?}",
        run.answer
    );
    assert!(run.stdout.contains("ORDERS_TABLE"), "{}", run.stdout);
    drop(stack.moto);
}
