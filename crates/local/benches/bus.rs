//! The same PutEvents load on `energy up` and on moto's server, side by side in one run: a bus
//! with one rule and one target, N events (10 000 by default) sent in PutEvents calls of 10
//! entries, K calls in flight; the figure is events delivered to the target per second, from the
//! first call until the target holds every event.
//!
//! `cargo bench -p energy-local --bench bus [-- --events N --clients K --runs R]` (one run by
//! default: moto takes about 15 minutes for 10 000 events on a 2-core machine).
//!
//! The target differs as each emulator allows: on `energy up` an API destination (a loopback
//! HTTP receiver in this benchmark, with an API key); on moto an SQS queue (moto delivers a
//! rule's matches to SQS as PutEvents runs, and its HTTP targets need the internet). The
//! receiver and the queue each count what they got. moto is `ENERGY_MOTO_SERVER` or the
//! project's `.venv/bin/moto_server` (made by `scripts/setup-venv`).

#[path = "../tests/common/up.rs"]
mod up;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Options {
    events: usize,
    clients: usize,
    runs: usize,
}

fn options() -> Options {
    let get = up::arg;
    Options {
        events: get("--events", 10_000).max(10),
        clients: get("--clients", 8).max(1),
        runs: get("--runs", 1).max(1),
    }
}

/// A JSON 1.x call; moto reads the region from the credential scope, so the header carries one.
async fn call(
    http: &reqwest::Client,
    url: &str,
    target: &str,
    version: &str,
    body: &Value,
) -> Value {
    let service = if target.starts_with("AmazonSQS") {
        "sqs"
    } else {
        "events"
    };
    let r = http
        .post(url)
        .header("x-amz-target", target)
        .header("content-type", format!("application/x-amz-json-{version}"))
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=bench/20261128/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{target}: {e}"));
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "{target}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn events(http: &reqwest::Client, url: &str, op: &str, body: Value) -> Value {
    call(http, url, &format!("AWSEvents.{op}"), "1.1", &body).await
}

/// Sends `n` events to `bus` in calls of 10, `clients` at a time; every entry must be taken.
async fn put_all(
    http: &reqwest::Client,
    url: &str,
    bus: &str,
    n: usize,
    run: usize,
    clients: usize,
) {
    let batches: Vec<Vec<Value>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(10)
        .map(|c| {
            c.iter()
                .map(|i| {
                    json!({"Source": "bench.bus", "DetailType": "Tick", "EventBusName": bus,
                           "Detail": json!({"run": run, "n": i}).to_string()})
                })
                .collect()
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, queue) = (http.clone(), url.to_string(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(entries) = queue.lock().unwrap().pop() else {
                    break;
                };
                let r = events(&http, &url, "PutEvents", json!({"Entries": entries})).await;
                assert_eq!(r["FailedEntryCount"], 0, "{r}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// moto's server on a port it picks.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Moto {
    let path = std::env::var_os("ENERGY_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server")
        });
    assert!(
        path.exists(),
        "moto_server not found at {}: run scripts/setup-venv",
        path.display()
    );
    let mut child = Command::new(path)
        .args(["-H", "127.0.0.1", "-p", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start moto_server");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(at) = line.split("Running on ").nth(1) {
                let _ = tx.send(at.trim().to_string());
                sent = true;
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("moto_server did not start");
    Moto { child, url }
}

/// Events/s delivered by `energy up`: a rule with an API destination to a counting receiver.
async fn energy_up(o: &Options) -> Vec<f64> {
    let received = Arc::new(AtomicUsize::new(0));
    let count = received.clone();
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}/in", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = up::data_dir("bench-bus");
    let stack = up::start(&dir, &["--concurrency", "16"]);
    let url = stack.url("/");
    let http = reqwest::Client::new();
    let bus = "energy-dev";
    let c = events(&http, &url, "CreateConnection", json!({"Name": "bench", "AuthorizationType": "API_KEY",
        "AuthParameters": {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "k"}}})).await;
    let d = events(
        &http,
        &url,
        "CreateApiDestination",
        json!({"Name": "bench", "ConnectionArn": c["ConnectionArn"],
        "InvocationEndpoint": receiver, "HttpMethod": "POST"}),
    )
    .await;
    events(
        &http,
        &url,
        "PutRule",
        json!({"Name": "Bench", "EventBusName": bus,
        "EventPattern": json!({"source": ["bench.bus"]}).to_string()}),
    )
    .await;
    events(
        &http,
        &url,
        "PutTargets",
        json!({"Rule": "Bench", "EventBusName": bus,
        "Targets": [{"Id": "in", "Arn": d["ApiDestinationArn"]}]}),
    )
    .await;
    let mut rates = Vec::new();
    for run in 0..o.runs {
        let before = received.load(Ordering::Relaxed);
        let start = Instant::now();
        put_all(&http, &url, bus, o.events, run, o.clients).await;
        let put = start.elapsed();
        while received.load(Ordering::Relaxed) < before + o.events {
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "energy up did not deliver every event"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let all = start.elapsed();
        println!(
            "  energy up  run {}: PutEvents done in {:.2} s, all delivered in {:.2} s",
            run + 1,
            put.as_secs_f64(),
            all.as_secs_f64()
        );
        rates.push(o.events as f64 / all.as_secs_f64());
    }
    drop(stack);
    let _ = std::fs::remove_dir_all(dir);
    rates
}

/// Events/s delivered by moto: a rule on its default bus with an SQS queue as target.
async fn moto_server(o: &Options) -> Vec<f64> {
    let moto = moto();
    let url = format!("{}/", moto.url);
    let http = reqwest::Client::new();
    let sqs = |op: &str, body: Value| {
        let (http, url, target) = (http.clone(), url.clone(), format!("AmazonSQS.{op}"));
        async move { call(&http, &url, &target, "1.0", &body).await }
    };
    let queue = sqs("CreateQueue", json!({"QueueName": "bench"})).await["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let arn = sqs(
        "GetQueueAttributes",
        json!({"QueueUrl": queue, "AttributeNames": ["QueueArn"]}),
    )
    .await["Attributes"]["QueueArn"]
        .as_str()
        .unwrap()
        .to_string();
    events(
        &http,
        &url,
        "PutRule",
        json!({"Name": "Bench", "EventBusName": "default",
        "EventPattern": json!({"source": ["bench.bus"]}).to_string()}),
    )
    .await;
    events(
        &http,
        &url,
        "PutTargets",
        json!({"Rule": "Bench", "EventBusName": "default",
        "Targets": [{"Id": "q", "Arn": arn}]}),
    )
    .await;
    let waiting = || {
        let sqs = &sqs;
        let queue = queue.clone();
        async move {
            let a = sqs(
                "GetQueueAttributes",
                json!({"QueueUrl": queue, "AttributeNames": ["ApproximateNumberOfMessages"]}),
            )
            .await;
            a["Attributes"]["ApproximateNumberOfMessages"]
                .as_str()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
        }
    };
    let mut rates = Vec::new();
    for run in 0..o.runs {
        let before = waiting().await;
        let start = Instant::now();
        put_all(&http, &url, "default", o.events, run, o.clients).await;
        let put = start.elapsed();
        while waiting().await < before + o.events {
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "moto did not deliver every event"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let all = start.elapsed();
        println!(
            "  moto       run {}: PutEvents done in {:.2} s, all in the queue in {:.2} s",
            run + 1,
            put.as_secs_f64(),
            all.as_secs_f64()
        );
        rates.push(o.events as f64 / all.as_secs_f64());
    }
    rates
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let o = options();
    println!(
        "{} events per run, PutEvents of 10 entries, {} calls in flight, {} runs each, one rule and one target",
        o.events, o.clients, o.runs
    );
    let ours = median(energy_up(&o).await);
    let theirs = median(moto_server(&o).await);
    println!();
    println!("  {:<34} {:>10}", "events/s delivered (median)", "");
    println!("  {:<34} {ours:>10.0}", "energy up (API destination)");
    println!("  {:<34} {theirs:>10.0}", "moto server (SQS target)");
    println!("  {:<34} {:>10.2}", "ratio energy up / moto", ours / theirs);
}
