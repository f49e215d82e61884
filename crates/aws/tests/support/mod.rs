//! A moto server per test, on a free loopback port, stopped when dropped; and the resources the
//! template would create, made on it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

pub const TABLE: &str = "orders";
pub const BUS: &str = "energy-test";
pub const GROUP: &str = "energy-test";
pub const BUCKET: &str = "energy-results";
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/energy-scheduler";
pub const DLQ_ARN: &str = "arn:aws:sqs:eu-west-1:123456789012:energy-schedule-dlq";

/// Where moto_server is: `ENERGY_MOTO_SERVER`, else the project's `.venv` (made by scripts/test).
fn moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os("ENERGY_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    panic!(
        "moto_server not found at {} or in ENERGY_MOTO_SERVER. Run ./scripts/test, which installs it into .venv, \
         or: python3 -m venv .venv && .venv/bin/pip install 'moto[server]'",
        venv.display()
    );
}

/// A running moto server.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    /// Starts moto on a port it binds itself (`-p 0`) and reads back from its banner, so no
    /// other process can take the port between picking and binding it.
    pub fn start() -> Moto {
        let mut child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let stderr = child.stderr.take().expect("moto's stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the banner, then keeps draining so moto never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(at) = line.split("Running on ").nth(1) {
                    let _ = tx.send(at.trim().to_string());
                    sent = true;
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!("moto_server did not say where it listens within 30 s (exit: {status:?})");
            }
        };
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "moto_server listens at {url}, not on loopback"
        );
        Moto { child, url }
    }

    /// SDK configuration pointing every client at this server.
    pub async fn sdk(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The orders table with its sparse due index, as in template.yaml.
pub async fn create_table(sdk: &SdkConfig) {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(TABLE)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(attr("record_id", ScalarAttributeType::S))
        .attribute_definitions(attr("due_shard", ScalarAttributeType::S))
        .attribute_definitions(attr("due_at", ScalarAttributeType::N))
        .key_schema(key("record_id", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("due")
                .key_schema(key("due_shard", KeyType::Hash))
                .key_schema(key("due_at", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("attempt")
                        .non_key_attributes("sweeps")
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
}

/// The bus; answers its ARN.
pub async fn create_bus(sdk: &SdkConfig) -> String {
    let out = aws_sdk_eventbridge::Client::new(sdk)
        .create_event_bus()
        .name(BUS)
        .send()
        .await
        .expect("create bus");
    out.event_bus_arn().expect("bus arn").to_string()
}

pub async fn create_group(sdk: &SdkConfig) {
    aws_sdk_scheduler::Client::new(sdk)
        .create_schedule_group()
        .name(GROUP)
        .send()
        .await
        .expect("create schedule group");
}

pub async fn create_bucket(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(true)
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    client
        .create_bucket()
        .bucket(BUCKET)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("create bucket");
    client
}

/// An SQS queue subscribed to every event on the bus from `source`; answers the queue URL.
pub async fn subscribe_queue(sdk: &SdkConfig, source: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue = sqs
        .create_queue()
        .queue_name("tap")
        .send()
        .await
        .expect("create queue");
    let url = queue.queue_url().expect("queue url").to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn")
        .clone();
    let events = aws_sdk_eventbridge::Client::new(sdk);
    events
        .put_rule()
        .name("tap")
        .event_bus_name(BUS)
        .event_pattern(serde_json::json!({"source": [source]}).to_string())
        .send()
        .await
        .expect("put rule");
    events
        .put_targets()
        .rule("tap")
        .event_bus_name(BUS)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("tap")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("put targets");
    url
}

/// Every message now in the queue, as JSON, deleting them.
pub async fn drain(sdk: &SdkConfig, queue_url: &str) -> Vec<serde_json::Value> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let messages = got.messages();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            out.push(serde_json::from_str(m.body().unwrap_or("null")).expect("event JSON"));
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

/// A delivery day whose SDAC gate is still open, whatever the time today.
pub fn open_day() -> jiff::civil::Date {
    let today = energy_core::calendar::market_date(jiff::Timestamp::now());
    today.tomorrow().and_then(|d| d.tomorrow()).expect("a date")
}

/// A valid order for `open_day()`, one MTU in the morning peak.
pub fn order_json(id: &str) -> serde_json::Value {
    let day = open_day();
    let auction = energy_core::calendar::AuctionId {
        market: energy_core::market::Market::Sdac,
        delivery_date: day,
    };
    let mtu = energy_core::calendar::MarketRules::default()
        .mtus(auction)
        .expect("mtus")[28];
    serde_json::json!({
        "record_id": id, "market": "SDAC", "delivery_date": day.to_string(), "zone": "DE-LU", "portfolio": "P", "side": "BUY",
        "periods": [{"mtu_start": mtu.to_string(), "steps": [{"price": "3000.00", "quantity": "10.0"}]}]
    })
}

/// An event as EventBridge delivers it to a target.
pub fn eventbridge(
    detail_type: &str,
    source: &str,
    detail: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": detail_type, "source": source,
        "account": "123456789012", "time": "2026-01-14T12:00:00Z", "region": "eu-west-1", "resources": [], "detail": detail
    })
}

/// moto with every resource the functions use, and the environment a function runs with there.
pub struct Stack {
    pub moto: Moto,
    pub sdk: SdkConfig,
    pub env: Vec<(&'static str, String)>,
}

pub async fn stack() -> Stack {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_table(&sdk).await;
    let bus_arn = create_bus(&sdk).await;
    create_group(&sdk).await;
    create_bucket(&sdk).await;
    let env = vec![
        ("AWS_ENDPOINT_URL", moto.url.clone()),
        ("AWS_REGION", "eu-west-1".to_string()),
        ("AWS_DEFAULT_REGION", "eu-west-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("ORDERS_TABLE", TABLE.to_string()),
        ("EVENT_BUS_NAME", BUS.to_string()),
        ("EVENT_BUS_ARN", bus_arn),
        ("SCHEDULE_GROUP", GROUP.to_string()),
        ("SCHEDULER_ROLE_ARN", ROLE_ARN.to_string()),
        ("RESULTS_BUCKET", BUCKET.to_string()),
    ];
    Stack { moto, sdk, env }
}

pub mod runtime;

/// An API Gateway (HTTP API, payload 2.0) `POST /orders` with `body`.
pub fn post(body: &serde_json::Value) -> submit_order::ApiGatewayV2httpRequest {
    serde_json::from_value(serde_json::json!({
        "version": "2.0", "routeKey": "POST /orders", "rawPath": "/orders", "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/orders"}, "stage": "$default", "requestId": "r", "timeEpoch": 0},
        "body": body.to_string(), "isBase64Encoded": false
    }))
    .unwrap()
}

/// Fires the schedules due at `now` as EventBridge Scheduler would; answers how many fired and
/// the earliest one left.
pub async fn fire_schedules(
    sdk: &aws_config::SdkConfig,
    now: jiff::Timestamp,
) -> (usize, Option<jiff::Timestamp>) {
    let scheduler = aws_sdk_scheduler::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let listed = scheduler
        .list_schedules()
        .group_name(GROUP)
        .send()
        .await
        .unwrap();
    let mut next: Option<jiff::Timestamp> = None;
    let mut fired = 0;
    for summary in listed.schedules() {
        let name = summary.name().unwrap();
        let s = scheduler
            .get_schedule()
            .name(name)
            .group_name(GROUP)
            .send()
            .await
            .unwrap();
        let expr = s.schedule_expression().unwrap();
        let at: jiff::Timestamp = format!("{}Z", &expr[3..expr.len() - 1]).parse().unwrap();
        if at > now {
            next = Some(next.map_or(at, |n| n.min(at)));
            continue;
        }
        let target = s.target().unwrap();
        let params = target.event_bridge_parameters().unwrap();
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(BUS)
            .source(params.source())
            .detail_type(params.detail_type())
            .detail(target.input().unwrap())
            .build();
        events.put_events().entries(entry).send().await.unwrap();
        scheduler
            .delete_schedule()
            .name(name)
            .group_name(GROUP)
            .send()
            .await
            .unwrap();
        fired += 1;
    }
    (fired, next)
}
