//! Cold start of every handler binary, and of a Python handler doing submit-order's job under
//! awslambdaric, each against the same loopback Runtime API with AWS pointed at moto.
//!
//! Per function, over several fresh processes: time from process start to its first request
//! for work (the init), the first invocation's duration, peak RSS, and the artifact's size.
//!
//! ```sh
//! ./scripts/bench-cold-start      # builds the bootstraps and the Python venv, then runs this
//! ```
//!
//! It needs `target/lambda/<this machine's arch>/<name>/bootstrap` (scripts/build-bootstraps), moto_server
//! and a Python with awslambdaric and boto3 (`ENERGY_BENCH_PYTHON`, default `.venv/bin/python`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use energy_aws::dynamodb::DynamoOrderStore;
use energy_core::lifecycle::{OrderRecord, Transition};
use energy_core::order::Order;
use energy_core::ports::OrderStore;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use support::runtime::{Answer, Run, invoke};
use support::*;

const RUNS: usize = 7;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn post(id: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "POST /orders", "rawPath": "/orders", "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"requestId": "r", "routeKey": "POST /orders", "stage": "$default", "timeEpoch": 0,
            "http": {"method": "POST", "path": "/orders", "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "bench"}},
        "body": json!([order_json(id)]).to_string(), "isBase64Encoded": false
    })
}

async fn seed(sdk: &aws_config::SdkConfig, id: &str, ready: bool) -> OrderRecord {
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(sdk), TABLE);
    let order: Order = serde_json::from_value(order_json(id)).expect("order");
    let now = Timestamp::now();
    let received = OrderRecord::received(order, now, now);
    store.insert(&received).await.expect("insert");
    if !ready {
        return received;
    }
    let fills = vec![(
        Some(energy_core::money::PriceCents(9_000)),
        energy_core::money::Lots(100),
    )];
    let result = energy_core::result::OrderResult::from_fills(&received.order, &fills, now)
        .expect("a small result fits");
    let pending = received
        .apply(Transition::HandedOver { due_at: now }, now)
        .expect("legal");
    let ready = pending
        .apply(
            Transition::Ready {
                result,
                due_at: now + SignedDuration::from_mins(5),
            },
            now,
        )
        .expect("legal");
    store
        .replace(&pending, received.expected())
        .await
        .expect("replace");
    store
        .replace(&ready, pending.expected())
        .await
        .expect("replace");
    ready
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Row {
    name: String,
    init_ms: f64,
    invoke_ms: f64,
    rss_mib: f64,
    size_mib: f64,
}

fn row(name: &str, runs: &[Run], size: u64) -> Row {
    for r in runs {
        if !matches!(r.answer, Answer::Response(_)) {
            panic!("{name} did not answer: {:?}\n{}", r.answer, r.stdout);
        }
    }
    Row {
        name: name.to_string(),
        init_ms: median(runs.iter().map(|r| r.init.as_secs_f64() * 1e3).collect()),
        invoke_ms: median(
            runs.iter()
                .map(|r| r.invocation.as_secs_f64() * 1e3)
                .collect(),
        ),
        rss_mib: median(
            runs.iter()
                .map(|r| r.peak_rss_kib as f64 / 1024.0)
                .collect(),
        ),
        size_mib: size as f64 / (1024.0 * 1024.0),
    }
}

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let bootstraps = std::env::var_os("ENERGY_BOOTSTRAPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let arch = match std::env::consts::ARCH {
                "aarch64" => "arm64",
                other => other,
            };
            root().join("target/lambda").join(arch)
        });
    let python = std::env::var_os("ENERGY_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    let Stack { moto, sdk, mut env } = stack().await;
    env.push(("SWEEP_GRACE_SECONDS", "0".into()));
    let mut rows = Vec::new();
    for name in [
        "submit-order",
        "evaluate-order",
        "store-result",
        "sweep-pending",
    ] {
        let program = bootstraps.join(name).join("bootstrap");
        assert!(
            program.exists(),
            "{} is missing: run ./scripts/bench-cold-start",
            program.display()
        );
        let mut runs = Vec::new();
        for i in 0..RUNS {
            let id = format!("{name}-{i}");
            let event = match name {
                "submit-order" => post(&id),
                "evaluate-order" => {
                    seed(&sdk, &id, false).await;
                    eventbridge(
                        "OrderEvaluationDue",
                        "energy.orders",
                        json!({"record_id": id, "attempt": 0, "due_at": "2026-01-14T08:02:00Z", "trigger": "SWEEP"}),
                    )
                }
                "store-result" => {
                    let r = seed(&sdk, &id, true).await;
                    let result = r.result.clone().expect("result");
                    eventbridge(
                        "OrderReady",
                        "energy.orders",
                        json!({"record_id": id, "market": "SDAC", "delivery_date": r.order.delivery_date.to_string(),
                        "zone": "DE-LU", "portfolio": "P", "side": "BUY", "outcome": "ACCEPTED", "result": result}),
                    )
                }
                _ => eventbridge("Scheduled Event", "aws.events", json!({})),
            };
            runs.push(invoke(&program, &[], &env, event).await);
        }
        rows.push(row(name, &runs, size_of(&program)));
    }
    let handler_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/python");
    let mut runs = Vec::new();
    for i in 0..RUNS {
        let mut env = env.clone();
        env.push(("PYTHONPATH", handler_dir.display().to_string()));
        env.push(("PYTHONDONTWRITEBYTECODE", "1".into()));
        runs.push(
            invoke(
                &python,
                &["-m", "awslambdaric", "submit_order.handler"],
                &env,
                post(&format!("py-{i}")),
            )
            .await,
        );
    }
    rows.push(row(
        "python submit-order (awslambdaric)",
        &runs,
        size_of(&handler_dir.join("submit_order.py")),
    ));

    println!(
        "\ncold start over {RUNS} fresh processes each (medians), AWS on moto at {}\n",
        moto.url
    );
    println!(
        "{:<36} {:>10} {:>16} {:>10} {:>12}",
        "function", "init ms", "1st invoke ms", "RSS MiB", "size MiB"
    );
    for r in &rows {
        println!(
            "{:<36} {:>10.1} {:>16.1} {:>10.1} {:>12.2}",
            r.name, r.init_ms, r.invoke_ms, r.rss_mib, r.size_mib
        );
    }
    let (rust, py) = (&rows[0], &rows[rows.len() - 1]);
    println!(
        "\nsubmit-order, Python / Rust: init {:.1}x, first invocation {:.1}x, RSS {:.1}x (Python's size is the handler file alone; boto3 comes with the runtime)",
        py.init_ms / rust.init_ms,
        py.invoke_ms / rust.invoke_ms,
        py.rss_mib / rust.rss_mib
    );
}
