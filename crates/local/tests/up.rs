//! `energy up` as a user runs it: a real process on a free loopback port, driven over HTTP.

#[path = "common/up.rs"]
mod up;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use up::{archive, cli, data_dir, notifications, result_keys, start, try_start, wait_final};

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The JSON between the README's `<!-- sample-orders -->` markers.
fn readme_sample() -> Value {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme
        .split("<!-- sample-orders -->")
        .nth(1)
        .expect("README.md has a <!-- sample-orders --> block");
    let json = block
        .split("```json")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a ```json block after the marker");
    serde_json::from_str(json).expect("the README's sample is JSON")
}

fn ids(batch: &Value) -> Vec<String> {
    batch
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["record_id"].as_str().unwrap().to_string())
        .collect()
}

/// `energy dlq list --json`, one value a dead letter.
fn dead_letters(dir: &Path) -> Vec<Value> {
    let (code, out, err) = cli(dir, &["dlq", "list", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn post(http: &reqwest::Client, up: &up::Up, body: &str) -> (u16, Value) {
    let r = http
        .post(up.url("/orders"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /orders");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The result objects and notifications hold exactly what the final orders say: one object per
/// stored order under its key, one notification per failed order, nothing else.
fn assert_outputs_match(dir: &Path, finals: &[Value]) {
    let stored: BTreeSet<String> = finals
        .iter()
        .filter(|b| b["state"] == "STORED")
        .map(|b| b["result_key"].as_str().unwrap().to_string())
        .collect();
    let files: BTreeSet<String> = result_keys(dir).into_iter().collect();
    assert_eq!(files, stored, "result objects vs stored orders");
    for b in finals.iter().filter(|b| b["state"] == "STORED") {
        let key = b["result_key"].as_str().unwrap();
        let object: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(key)).unwrap()).unwrap();
        // The whole object is the stored result: an overwrite with other bytes shows.
        assert_eq!(object, b["result"], "{key}");
    }
    let failed: BTreeSet<String> = finals
        .iter()
        .filter(|b| b["state"] == "NOTIFIED")
        .map(|b| {
            format!(
                "{}/{}",
                b["record_id"].as_str().unwrap(),
                b["failure"]["reason"].as_str().unwrap()
            )
        })
        .collect();
    let lines = notifications(dir);
    let keys: Vec<String> = lines
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(keys.len(), unique.len(), "a notification twice: {keys:?}");
    assert_eq!(unique, failed, "notifications vs failed orders");
}

#[tokio::test]
async fn the_readme_sample_payload_reaches_final_states_with_results_and_notifications_as_the_outcomes_say()
 {
    let sample = readme_sample();
    let file: Value = serde_json::from_str(up::SAMPLE_FILE).unwrap();
    assert_eq!(
        sample, file,
        "the README's sample is events-schema/api/examples/orders.json"
    );
    let dir = data_dir("readme");
    // 09:00 Brussels time the day before the sample's delivery day, as `energy up` starts.
    let up = start(
        &dir,
        &["--start", "2026-11-27T08:00:00Z", "--speed", "1000"],
    );
    // What the README tells a newcomer to POST is this sample, dated for the market clock.
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sample-orders.json")).unwrap())
            .unwrap();
    assert_eq!(written, sample);

    let http = reqwest::Client::new();
    let (status, body) = post(&http, &up, &sample.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let ids = ids(&sample);
    let finals = wait_final(&http, &up, &ids, Duration::from_secs(120)).await;
    assert_outputs_match(&dir, &finals);
    assert!(finals.iter().any(|b| b["state"] == "STORED"));

    // The archive tells each order's story, and the inspection commands read it.
    let (code, out, err) = cli(&dir, &["events", "list", "--order", &ids[0]]);
    assert_eq!(code, Some(0), "{err}");
    for t in [
        "OrderSubmitted",
        "OrderPreliminaryResult",
        "OrderReady",
        "OrderResultStored",
    ] {
        assert!(out.contains(t), "{t} missing from:\n{out}");
    }
    // The checks came in rounds: a few for the whole sample, none an order's alone.
    let (code, out, _) = cli(&dir, &["events", "list", "--type", "OrderChecksDue"]);
    let rounds = out.lines().count();
    assert!(
        code == Some(0) && (1..=2 * ids.len()).contains(&rounds),
        "{rounds} rounds for {} orders:\n{out}",
        ids.len()
    );
    let (code, out, _) = cli(&dir, &["events", "list", "--type", "OrderReady"]);
    assert_eq!((code, out.lines().count()), (Some(0), ids.len()), "{out}");
    let (code, out, err) = cli(&dir, &["orders", "show", &ids[0]]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("\"state\": \"STORED\"") && out.contains("OrderResultStored"),
        "{out}"
    );
    let (code, out, _) = cli(&dir, &["dlq", "list"]);
    assert_eq!((code, out.trim()), (Some(0), "no dead letters"));

    // Ctrl-C (SIGTERM) stops it cleanly.
    let status = up.stop();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_seed_payload_gets_a_400_naming_the_missing_fields() {
    let seed = std::fs::read_to_string(root().join("crates/core/tests/fixtures/seed-payload.json"))
        .unwrap();
    let dir = data_dir("seed");
    let up = start(&dir, &[]);
    let http = reqwest::Client::new();
    let (status, body) = post(&http, &up, &seed).await;
    assert_eq!(status, 400, "{body}");
    let messages: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    for field in [
        "market",
        "delivery_date",
        "zone",
        "portfolio",
        "side",
        "periods",
    ] {
        for i in 0..2 {
            let want = format!("$[{i}].{field}: required field is missing");
            assert!(
                messages.contains(&want.as_str()),
                "{want} not in {messages:?}"
            );
        }
    }
    assert!(
        archive(&dir).is_empty(),
        "a refused batch publishes nothing"
    );
    // One stack per data dir.
    let (code, err) = try_start(&dir, &[])
        .err()
        .expect("a second energy up is refused");
    assert_eq!(code, Some(1));
    assert!(err.contains("another `energy up` is running"), "{err}");
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

/// `n` SDAC orders for 2026-11-28 across zones: buys at 3000 (accepted), sells at 3500 (out of
/// the money), FI ones whose results never come.
fn batch(prefix: &str, n: usize) -> Value {
    let zones = ["DE-LU", "NL", "BE", "FR", "FI"];
    Value::Array(
        (0..n)
            .map(|i| {
                let (side, price) = if i % 2 == 0 { ("BUY", "3000.00") } else { ("SELL", "3500.00") };
                json!({
                    "record_id": format!("{prefix}-{i}"),
                    "market": "SDAC",
                    "delivery_date": "2026-11-28",
                    "zone": zones[i % zones.len()],
                    "portfolio": "DESK-T",
                    "side": side,
                    "periods": [{"mtu_start": "2026-11-28T06:00:00Z", "steps": [{"price": price, "quantity": "1.0"}]}]
                })
            })
            .collect(),
    )
}

/// What a killed stack left unfinished, read from its database.
#[derive(Debug)]
struct InFlight {
    deliveries: i64,
    schedules: i64,
    not_final: i64,
}

impl InFlight {
    fn any(&self) -> bool {
        self.deliveries + self.schedules + self.not_final > 0
    }
}

fn in_flight(dir: &Path) -> InFlight {
    let db = energy_local::db::Db::open(dir).unwrap();
    let not_final = db
        .orders_by_state()
        .unwrap()
        .into_iter()
        .filter(|(state, _)| !["STORED", "NOTIFIED"].contains(&state.as_str()))
        .map(|(_, n)| n)
        .sum();
    InFlight {
        deliveries: db.pending_deliveries().unwrap(),
        schedules: db.pending_schedules().unwrap(),
        not_final,
    }
}

/// A small deterministic generator, seeded per run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// GETs each order until all are in `state` (within a minute).
async fn wait_all_in_state(http: &reqwest::Client, up: &up::Up, ids: &[String], state: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut states = Vec::new();
        for id in ids {
            let r = http
                .get(up.url(&format!("/orders/{id}")))
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            states.push(body["state"].as_str().unwrap_or("?").to_string());
        }
        if states.iter().all(|s| s == state) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all {state} within a minute: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn kill_9_at_any_moment_loses_nothing_duplicates_nothing_and_every_order_ends_final() {
    let dir = data_dir("kill9");
    // 11:30 Brussels time, at market speed: the gate is half an hour of wall time away, however
    // slow the machine.
    let slow = ["--never-publish", "FI", "--speed", "1"];
    let first = start(
        &dir,
        &[&["--start", "2026-11-27T10:30:00Z"][..], &slow[..]].concat(),
    );
    let http = reqwest::Client::new();
    let orders = batch("k9", 30);
    let ids = ids(&orders);
    let (status, body) = post(&http, &first, &orders.to_string()).await;
    assert_eq!(status, 202, "{body}");
    // The desk withdraws two sells and re-prices a third into the money.
    for id in ["k9-1", "k9-3"] {
        let r = http
            .delete(first.url(&format!("/orders/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "DELETE {id}");
    }
    let mut repriced = orders[5].clone();
    repriced["periods"][0]["steps"][0]["price"] = json!("-500.00");
    let r = http
        .put(first.url("/orders/k9-5"))
        .header("content-type", "application/json")
        .body(repriced.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "PUT k9-5");
    // The withdrawals done (a kill in the middle of one leaves its claim to run out, a minute
    // and a sweep later: the crash tests pin that), then killed with OrderSubmitted and amend
    // deliveries still queued.
    wait_all_in_state(&http, &first, &["k9-1".into(), "k9-3".into()], "CANCELLED").await;
    first.kill9();
    let mut kills = vec![in_flight(&dir)];
    // Started again, still at market speed, until every order is handed over (or withdrawn).
    let up = start(&dir, &slow);
    let open: Vec<String> = ids
        .iter()
        .filter(|id| !["k9-1", "k9-3"].contains(&id.as_str()))
        .cloned()
        .collect();
    wait_all_in_state(&http, &up, &open, "PENDING").await;
    wait_all_in_state(&http, &up, &["k9-1".into(), "k9-3".into()], "CANCELLED").await;
    up.kill9();
    // Then at 1200×: down across the 12:45 publication (the schedules come due while nothing
    // runs), and killed again while results are stored and while the evaluator backs off.
    let args = ["--never-publish", "FI", "--speed", "1200"];
    let mut rng = Lcg(std::process::id() as u64);
    for (up_ms, down_ms) in [(1500, 3000), (300, 0), (1200, 0), (3000, 0)] {
        let up = start(&dir, &args);
        // The kill lands within ±25% of its moment, different on each run.
        let jitter = rng.next() % (up_ms / 2 + 1);
        tokio::time::sleep(Duration::from_millis(up_ms * 3 / 4 + jitter)).await;
        up.kill9();
        kills.push(in_flight(&dir));
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
    }
    // Every kill hit unfinished work: queued deliveries, unfired schedules or orders not final.
    for (i, work) in kills.iter().enumerate() {
        assert!(work.any(), "kill {} hit an idle stack: {work:?}", i + 1);
    }
    let up = start(&dir, &args);
    let finals = wait_final(&http, &up, &ids, Duration::from_secs(120)).await;
    assert_outputs_match(&dir, &finals);
    let by_state: BTreeMap<String, usize> = finals.iter().fold(BTreeMap::new(), |mut m, b| {
        *m.entry(b["state"].as_str().unwrap().to_string())
            .or_default() += 1;
        m
    });
    // Even orders buy (accepted) except FI; odd ones sell out of the money; FI never publishes.
    assert_eq!(
        by_state.get("STORED"),
        Some(&13),
        "{by_state:?} after kills on {kills:?}"
    );
    // 15 sells out of the money and 3 FI buys, less the two withdrawn and the one re-priced.
    assert_eq!(by_state.get("NOTIFIED"), Some(&15), "{by_state:?}");
    assert_eq!(by_state.get("CANCELLED"), Some(&2), "{by_state:?}");
    let k9_5 = finals.iter().find(|b| b["record_id"] == "k9-5").unwrap();
    assert_eq!(
        k9_5["result"]["outcome"], "ACCEPTED",
        "the new body was cleared"
    );
    let withdrawn = archive(&dir)
        .iter()
        .filter(|e| e["detail-type"] == "OrderCancelled")
        .count();
    assert!(
        (2..=3).contains(&withdrawn),
        "{withdrawn} OrderCancelled for two withdrawals"
    );
    let timeouts = finals
        .iter()
        .filter(|b| b["failure"]["reason"] == "ResultsTimeout")
        .count();
    assert_eq!(timeouts, 6, "the FI orders give up");
    let (code, out, _) = cli(&dir, &["dlq", "list"]);
    assert_eq!((code, out.trim()), (Some(0), "no dead letters"));
    // The rounds of checks that came due while `energy up` was down (the preliminary results',
    // 12:45 Brussels, 11:45Z) fired when it came back; by then the final results were out too.
    let rounds: BTreeSet<String> = archive(&dir)
        .iter()
        .filter(|e| e["detail-type"] == "OrderChecksDue")
        .map(|e| e["detail"]["due_by"].as_str().unwrap().to_string())
        .collect();
    assert!(
        rounds.iter().any(|r| r.starts_with("2026-11-27T11:45:")),
        "no round at the preliminary publication: {rounds:?}"
    );
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

/// A loopback HTTP server that records every POSTed body and answers `status` (which the test
/// may change): bound before its port is handed out, so nothing else can take the port.
struct Consumer {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    _task: tokio::task::JoinHandle<()>,
}

async fn consumer(status: u16) -> Consumer {
    use std::sync::atomic::{AtomicU16, Ordering};
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let status = std::sync::Arc::new(AtomicU16::new(status));
    let (s, answer) = (seen.clone(), status.clone());
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let (s, answer) = (s.clone(), answer.clone());
            async move {
                let code = answer.load(Ordering::SeqCst);
                if code < 300 {
                    s.lock().unwrap().push(v);
                }
                axum::http::StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Consumer {
        port,
        seen,
        status,
        _task: task,
    }
}

#[tokio::test]
async fn an_added_consumer_rule_receives_exactly_the_events_its_pattern_selects() {
    let Consumer {
        port, seen, _task, ..
    } = consumer(200).await;
    let dir = data_dir("consumer");
    std::fs::create_dir_all(&dir).unwrap();
    let consumers = dir.join("consumers.yaml");
    std::fs::write(
        &consumers,
        format!(
            "Rules:\n  DeskAudit:\n    Pattern:\n      source: [energy.orders]\n      detail-type: [OrderFailed, {{prefix: OrderResult}}]\n      detail:\n        zone: [{{anything-but: [FI]}}]\n        portfolio: [{{prefix: DESK-}}]\n    Target:\n      Url: http://127.0.0.1:{port}/events\n      Headers: {{x-api-key: local}}\n"
        ),
    )
    .unwrap();
    let consumers_arg = consumers.to_string_lossy().into_owned();
    let up = start(
        &dir,
        &[
            "--start",
            "2026-11-27T09:00:00Z",
            "--speed",
            "1200",
            "--never-publish",
            "FI",
            "--consumers",
            &consumers_arg,
        ],
    );
    let http = reqwest::Client::new();
    let orders = batch("c", 10);
    let (status, body) = post(&http, &up, &orders.to_string()).await;
    assert_eq!(status, 202, "{body}");
    wait_final(&http, &up, &ids(&orders), Duration::from_secs(90)).await;
    // What the pattern selects, computed without the matcher; the last deliveries may still be
    // on their way.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (expected, got) = loop {
        let expected: BTreeSet<String> = archive(&dir)
            .iter()
            .filter(|e| {
                let t = e["detail-type"].as_str().unwrap();
                (t == "OrderFailed" || t.starts_with("OrderResult"))
                    && e["detail"]["zone"] != "FI"
                    && e["detail"]["portfolio"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("DESK-"))
            })
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        let got: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        if got.len() >= expected.len() || std::time::Instant::now() > deadline {
            break (expected, got);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let got_set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), got_set.len(), "an event delivered twice");
    assert_eq!(got_set, expected);
    // 4 accepted non-FI buys stored, 5 sells rejected (one of them FI, excluded).
    assert_eq!(expected.len(), 4 + 4, "{expected:?}");
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_consumer_that_stays_down_gets_its_events_dead_lettered_and_redriven() {
    // Down: it answers 503 until the test brings it up.
    let down = consumer(503).await;
    let port = down.port;
    let dir = data_dir("dlq");
    std::fs::create_dir_all(&dir).unwrap();
    let consumers = dir.join("consumers.yaml");
    std::fs::write(
        &consumers,
        format!(
            "Rules:\n  Submitted:\n    Pattern: {{detail-type: [OrderSubmitted]}}\n    Target: {{Url: 'http://127.0.0.1:{port}/events'}}\n    RetryPolicy: {{MaximumRetryAttempts: 2}}\n"
        ),
    )
    .unwrap();
    let consumers_arg = consumers.to_string_lossy().into_owned();
    let up = start(
        &dir,
        &[
            "--start",
            "2026-11-27T08:00:00Z",
            "--consumers",
            &consumers_arg,
        ],
    );
    let http = reqwest::Client::new();
    let orders = batch("d", 3);
    let (status, _) = post(&http, &up, &orders.to_string()).await;
    assert_eq!(status, 202);
    // Three attempts, one and two seconds apart, then the dead-letter store.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let dead = dead_letters(&dir);
        if dead.len() == 3 {
            break dead;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dead letters: {dead:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for d in &dead {
        assert_eq!(d["rule"], "Submitted");
        assert_eq!(d["attempts"], 3);
        assert!(d["error"].as_str().unwrap().contains("503"), "{d}");
    }
    // The consumer comes up; redrive delivers each event once.
    down.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let seen = down.seen.clone();
    let (code, out, _) = cli(&dir, &["dlq", "redrive"]);
    assert_eq!((code, out.trim()), (Some(0), "3 dead letters queued again"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "redriven events not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got: BTreeSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["detail"]["record_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ids(&orders).into_iter().collect());
    let (_, out, _) = cli(&dir, &["dlq", "list"]);
    assert_eq!(out.trim(), "no dead letters");
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

/// `energy up` at 09:00Z, 1200 times faster, posting to the Slack webhook at `url`.
fn start_with_slack(dir: &Path, url: &str) -> up::Up {
    up::try_start_with(
        dir,
        &["--start", "2026-11-27T09:00:00Z", "--speed", "1200"],
        Some(url),
    )
    .unwrap_or_else(|(c, e)| panic!("{c:?} {e}"))
}

#[tokio::test]
async fn with_slack_webhook_url_set_each_failure_is_posted_to_slack_once_and_logged() {
    let Consumer {
        port, seen, _task, ..
    } = consumer(200).await;
    let dir = data_dir("slack");
    let url = format!("http://127.0.0.1:{port}/events");
    let up = start_with_slack(&dir, &url);
    let http = reqwest::Client::new();
    let orders = batch("s", 2); // a buy (accepted) and a sell out of the money (rejected)
    post(&http, &up, &orders.to_string()).await;
    let finals = wait_final(&http, &up, &ids(&orders), Duration::from_secs(60)).await;
    assert_outputs_match(&dir, &finals);
    let posted = seen.lock().unwrap().clone();
    assert_eq!(posted.len(), 1, "{posted:?}");
    // A Block Kit message about the rejected order.
    assert!(
        posted[0]["text"].as_str().unwrap().contains("s-1"),
        "{}",
        posted[0]
    );
    assert!(posted[0]["blocks"].is_array(), "{}", posted[0]);
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

/// A Slack webhook on loopback that takes `delay` to answer each post and keeps the most posts
/// it had in flight at once.
async fn slow_webhook(
    delay: Duration,
) -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<Mutex<Vec<Value>>>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let posts: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (n, m, p) = (now.clone(), most.clone(), posts.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let (n, m, p) = (n.clone(), m.clone(), p.clone());
            async move {
                let inside = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(inside, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                p.lock().unwrap().push(v);
                n.fetch_sub(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, most, posts)
}

#[tokio::test]
async fn slack_gets_one_message_at_a_time_as_notify_slack_reserved_concurrency_of_1_gives_in_aws() {
    // Slack takes about a message a second per webhook; in AWS notify-slack runs one at a time
    // (NotifySlackConcurrency 1). Locally many deliveries are in flight at once: twenty
    // rejections at once must still reach the webhook one after the other.
    let (url, most, posts) = slow_webhook(Duration::from_millis(25)).await;
    let dir = data_dir("slack-serial");
    let up = start_with_slack(&dir, &url);
    let http = reqwest::Client::new();
    let orders = batch("q", 40); // 20 buys accepted, 20 sells out of the money
    post(&http, &up, &orders.to_string()).await;
    let finals = wait_final(&http, &up, &ids(&orders), Duration::from_secs(90)).await;
    assert_outputs_match(&dir, &finals);
    assert_eq!(posts.lock().unwrap().len(), 20, "one message a rejection");
    assert_eq!(
        most.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "messages in flight at once at the webhook"
    );
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unsupported_pattern_stops_start_up_naming_the_rule() {
    let dir = data_dir("badpattern");
    std::fs::create_dir_all(&dir).unwrap();
    let consumers = dir.join("consumers.yaml");
    std::fs::write(
        &consumers,
        "Rules:\n  Fuzzy:\n    Pattern: {detail-type: [{contains: Order}]}\n    Target: {Url: 'http://127.0.0.1:9/e'}\n",
    )
    .unwrap();
    let (code, err) = try_start(&dir, &["--consumers", &consumers.to_string_lossy()])
        .err()
        .expect("energy up refuses the pattern");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("rule Fuzzy") && err.contains("contains"),
        "{err}"
    );

    // The same in the template: the rule is named, nothing starts.
    let template = std::fs::read_to_string(root().join("template.yaml"))
        .unwrap()
        .replace(
            "detail-type: [OrderReady]",
            "detail-type: [{contains: Ready}]",
        );
    let path = dir.join("template.yaml");
    std::fs::write(&path, template).unwrap();
    let (code, err) = try_start(&dir, &["--template", &path.to_string_lossy()])
        .err()
        .expect("energy up refuses the template");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("rule StoreResultRule") && err.contains("contains"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_order_is_gone_24_market_hours_after_it_became_final() {
    let dir = data_dir("ttl");
    // Posted and handed over at market speed, three hours before the gate; then at 20000×,
    // where 24 h pass in 4.3 s.
    let first = start(&dir, &["--start", "2026-11-27T08:00:00Z", "--speed", "1"]);
    let http = reqwest::Client::new();
    let orders = batch("ttl", 1);
    let (status, _) = post(&http, &first, &orders.to_string()).await;
    assert_eq!(status, 202);
    let id = &ids(&orders)[0];
    wait_all_in_state(&http, &first, std::slice::from_ref(id), "PENDING").await;
    first.stop();
    let up = start(&dir, &["--speed", "20000"]);
    let finals = wait_final(
        &http,
        &up,
        std::slice::from_ref(id),
        Duration::from_secs(30),
    )
    .await;
    // Kept for 24 h from the final transition, not from submission.
    let expires: jiff::Timestamp = finals[0]["expires_at"].as_str().unwrap().parse().unwrap();
    let updated: jiff::Timestamp = finals[0]["updated_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        expires.as_second() - updated.as_second(),
        86_400,
        "{}",
        finals[0]
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(up.url(&format!("/orders/{id}")))
            .send()
            .await
            .unwrap();
        if r.status() == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still there: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The reaper deletes the row as DynamoDB's TTL would; the archive keeps the story.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = cli(&dir, &["orders", "show", id]);
        if out.starts_with("no stored order") {
            assert!(out.contains("OrderSubmitted"), "{out}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reaper left the row: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn replay_puts_archived_events_back_on_the_bus_and_the_handlers_shrug_them_off() {
    let dir = data_dir("replay");
    let up = start(
        &dir,
        &["--start", "2026-11-27T09:00:00Z", "--speed", "1200"],
    );
    let http = reqwest::Client::new();
    let orders = batch("r", 2);
    post(&http, &up, &orders.to_string()).await;
    let finals = wait_final(&http, &up, &ids(&orders), Duration::from_secs(60)).await;
    let ours = |events: Vec<Value>| -> Vec<Value> {
        events
            .into_iter()
            .filter(|e| e["source"] == "energy.orders")
            .collect()
    };
    let before = ours(archive(&dir)).len();
    let (code, out, err) = cli(
        &dir,
        &[
            "events",
            "replay",
            "--since",
            "2026-11-27T00:00:00Z",
            "--type",
            "OrderReady",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("2 events back on the bus, 2 deliveries queued"),
        "{out}"
    );
    // Until the replayed deliveries are done (each handler has answered).
    let db = energy_local::db::Db::open(&dir).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while db.pending_deliveries().unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "replayed deliveries still queued"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = ours(archive(&dir));
    assert_eq!(
        after.len(),
        before + 2,
        "only the replayed events: handlers ignore repeats"
    );
    assert!(
        after
            .iter()
            .rev()
            .take(2)
            .all(|e| e["replay-name"].is_string())
    );
    // `events tail` prints what is there, then follows.
    let mut tail = up::energy()
        .args(["events", "tail", "--type", "OrderReady", "--data-dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(tail.stdout.take().unwrap()));
    for _ in 0..4 {
        let line = lines.next().unwrap().unwrap();
        assert!(line.contains("OrderReady"), "{line}");
    }
    let _ = tail.kill();
    let _ = tail.wait();
    let again = wait_final(&http, &up, &ids(&orders), Duration::from_secs(10)).await;
    assert_eq!(finals, again, "a replay changes no order");
    assert_outputs_match(&dir, &again);
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn schemas_are_listed_shown_and_validate_events_and_order_batches() {
    let out = up::energy().args(["schemas", "list"]).output().unwrap();
    let names = String::from_utf8_lossy(&out.stdout).into_owned();
    for n in [
        "OrderSubmitted",
        "OrderEvaluationDue",
        "OrderReady",
        "OrderFailed",
        "OrderResultStored",
        "PostOrdersRequest",
    ] {
        assert!(names.lines().any(|l| l == n), "{names}");
    }
    let out = up::energy()
        .args(["schemas", "show", "OrderFailed"])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("events-schema/OrderFailed.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(shown, file);
    for example in [
        "events-schema/examples/OrderFailed.json",
        "events-schema/api/examples/orders.json",
    ] {
        let out = up::energy()
            .args(["schemas", "validate"])
            .arg(root().join(example))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let dir = data_dir("schemas");
    std::fs::create_dir_all(&dir).unwrap();
    let mut bad: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("events-schema/examples/OrderFailed.json")).unwrap(),
    )
    .unwrap();
    bad["detail"]["reason"] = json!("BORED");
    let path = dir.join("bad.json");
    std::fs::write(&path, bad.to_string()).unwrap();
    let out = up::energy()
        .args(["schemas", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("/detail/reason") && text.contains("BORED"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A file a killed process was writing when it died is not a result: start-up clears the
/// data dir's tmp.
#[test]
fn a_stray_temporary_file_from_a_killed_run_is_cleared_at_start() {
    let dir = data_dir("stray-tmp");
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::write(dir.join("tmp").join("4242-7"), b"half an obj").unwrap();
    // Where they are written now: beside the objects.
    let zone = dir.join("results/2026-11-28/NL");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::write(zone.join(".4242-8.tmp"), b"half an obj").unwrap();
    std::fs::write(zone.join("kept.json"), b"{}").unwrap();
    let up = start(&dir, &[]);
    let left: Vec<_> = std::fs::read_dir(dir.join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let beside: Vec<_> = std::fs::read_dir(&zone)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    up.stop();
    assert!(left.is_empty(), "left in tmp: {left:?}");
    assert_eq!(beside, ["kept.json"], "left beside the objects");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by a hostile run: an SDAC order posted on Friday for Monday (results ~52 h later) was
/// deleted by a TTL counted from submission and then ignored without a word. Retention counts
/// from the final state now, so it reaches one.
#[tokio::test]
async fn an_order_whose_results_come_two_days_after_posting_reaches_a_final_state() {
    let dir = data_dir("weekend");
    // Friday 2026-11-27 08:00Z; Monday's SDAC results come Sunday 11:45Z. 20000×: ~9 s.
    let up = start(
        &dir,
        &["--start", "2026-11-27T08:00:00Z", "--speed", "20000"],
    );
    let http = reqwest::Client::new();
    let order = json!([{
        "record_id": "weekend-1", "market": "SDAC", "delivery_date": "2026-11-30",
        "zone": "NL", "portfolio": "DESK-T", "side": "BUY",
        "periods": [{"mtu_start": "2026-11-30T06:00:00Z", "steps": [{"price": "3000.00", "quantity": "1.0"}]}]
    }]);
    let (status, body) = post(&http, &up, &order.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let finals = wait_final(
        &http,
        &up,
        &["weekend-1".to_string()],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(finals[0]["state"], "STORED", "{}", finals[0]);
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

/// `energy orders show` of an id nothing names is a failure a script can test, not an exit 0.
#[test]
fn orders_show_of_an_unknown_id_exits_non_zero() {
    let dir = data_dir("show-unknown");
    start(&dir, &[]).stop();
    let (code, _, err) = cli(&dir, &["orders", "show", "nobody"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no order nobody"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by a hostile run: a crash test with a misspelt point ran normally and passed.
#[test]
fn a_crash_point_that_names_nothing_stops_start_up_naming_the_points() {
    let dir = data_dir("crash-typo");
    let started = up::try_start_env(&dir, &[], &[("ENERGY_CRASH_AT", " store-result.after-put")]);
    let Err((code, err)) = started else {
        panic!("energy up started with a crash point that names nothing")
    };
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("names no crash point") && err.contains("store-result.after-put"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// SDAC publishes preliminary results (12:45) before final ones (13:00); a decoupled zone's
/// preliminary result is withdrawn and its final one, cleared alone, comes later (14:40). The
/// order keeps both, the desk hears of each change, and only the final result is acted on.
#[tokio::test]
async fn preliminary_then_final_results_and_a_decoupled_zone_whose_different_final_result_is_stored()
 {
    let dir = data_dir("decoupled");
    // Sunday 29 Nov 09:00 Brussels time; Monday's gate 11:00Z, preliminary 11:45Z, final
    // 12:00Z, DE-LU's decoupled final 13:40Z. 2000×: ~10 s.
    let up = start(
        &dir,
        &[
            "--start",
            "2026-11-29T08:00:00Z",
            "--speed",
            "2000",
            "--decouple",
            "DE-LU",
        ],
    );
    let http = reqwest::Client::new();
    let order = |id: &str, zone: &str| {
        json!({
            "record_id": id, "market": "SDAC", "delivery_date": "2026-11-30",
            "zone": zone, "portfolio": "DESK-T", "side": "BUY",
            "periods": [
                {"mtu_start": "2026-11-30T06:00:00Z", "steps": [{"price": "3000.00", "quantity": "10.0"}]},
                {"mtu_start": "2026-11-30T11:00:00Z", "steps": [{"price": "3000.00", "quantity": "10.0"}]}
            ]
        })
    };
    let batch = json!([order("pf-coupled", "NL"), order("pf-decoupled", "DE-LU")]);
    let (status, body) = post(&http, &up, &batch.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let ids = ids(&batch);
    let finals = wait_final(&http, &up, &ids, Duration::from_secs(120)).await;
    assert_outputs_match(&dir, &finals);
    let events = archive(&dir);
    let of = |t: &str, id: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e["detail-type"] == t && e["detail"]["record_id"] == id)
            .cloned()
            .collect()
    };

    // Coupled: the preliminary result, confirmed by the final one.
    let coupled = &finals[0];
    assert_eq!(coupled["state"], "STORED", "{coupled}");
    let preliminary = &coupled["preliminary"];
    assert_eq!(preliminary["withdrawn_at"], Value::Null, "{coupled}");
    assert_eq!(
        preliminary["result"]["published_at"],
        "2026-11-29T11:45:00Z"
    );
    assert_eq!(coupled["result"]["published_at"], "2026-11-29T12:00:00Z");
    assert_eq!(preliminary["result"]["mtus"], coupled["result"]["mtus"]);
    let told = of("OrderPreliminaryResult", "pf-coupled");
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["detail"]["status"], "PUBLISHED");

    // Decoupled: the preliminary result withdrawn, a different final one stored.
    let decoupled = &finals[1];
    assert_eq!(decoupled["state"], "STORED", "{decoupled}");
    let preliminary = &decoupled["preliminary"];
    assert!(preliminary["withdrawn_at"].is_string(), "{decoupled}");
    assert_eq!(decoupled["result"]["published_at"], "2026-11-29T13:40:00Z");
    assert_ne!(
        preliminary["result"]["totals"], decoupled["result"]["totals"],
        "cleared alone, the zone's final result differs"
    );
    let statuses: Vec<Value> = of("OrderPreliminaryResult", "pf-decoupled")
        .iter()
        .map(|e| e["detail"]["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("PUBLISHED"), json!("WITHDRAWN")]);
    // The stored object is the final result.
    let key = decoupled["result_key"].as_str().unwrap();
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(key)).unwrap()).unwrap();
    assert_eq!(stored["totals"], decoupled["result"]["totals"], "{stored}");

    // Acted on once: one OrderReady and one stored result per order, nothing failed.
    for id in &ids {
        assert_eq!(of("OrderReady", id).len(), 1, "{id}");
        assert_eq!(of("OrderResultStored", id).len(), 1, "{id}");
        assert!(of("OrderFailed", id).is_empty(), "{id}");
    }
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_archived_event_that_no_longer_reads_is_dead_lettered_and_the_queue_goes_on() {
    let dir = data_dir("unreadable");
    // The schema, then a queued delivery whose event is not JSON (a hand edit, a broken disk).
    start(&dir, &["--start", "2026-11-27T10:00:00Z", "--speed", "600"]).stop();
    let db = rusqlite::Connection::open(dir.join("energy.db")).unwrap();
    db.execute_batch(
        "INSERT INTO events (id, time, source, detail_type, record_id, published_at, body)
           VALUES ('bad', '2026-11-27T10:00:00Z', 'energy.orders', 'OrderSubmitted', 'bad', 0, '{not json');
         INSERT INTO deliveries (event_seq, rule, target, first_at, next_at)
           VALUES (last_insert_rowid(), 'OrderSubmitted', 'evaluate-order', 0, 0);",
    )
    .unwrap();
    drop(db);
    let up = start(&dir, &["--speed", "600"]);
    let http = reqwest::Client::new();
    let orders = batch("after-bad", 1);
    let (status, _) = post(&http, &up, &orders.to_string()).await;
    assert_eq!(status, 202);
    // The queue is not stuck behind the row: the order posted after it reaches a final state.
    wait_final(&http, &up, &ids(&orders), Duration::from_secs(60)).await;
    let dead = dead_letters(&dir);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let error = dead[0]["error"].as_str().unwrap();
    assert!(error.contains("does not read as JSON"), "{error}");
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

/// The stack's own steps answer before their commit; an answer over HTTP never does. Read from
/// another connection (which sees only what is committed) as soon as each answer arrives, and
/// after a kill -9 right behind it: what the client was told is there.
#[tokio::test]
async fn what_an_answer_tells_is_committed_before_it_is_sent() {
    let dir = data_dir("committed-first");
    let first = start(&dir, &["--start", "2026-11-27T10:30:00Z", "--speed", "1"]);
    let http = reqwest::Client::new();
    let mut told = Vec::new();
    for round in 0..20 {
        let orders = batch(&format!("cf{round}"), 5);
        let (status, body) = post(&http, &first, &orders.to_string()).await;
        assert_eq!(status, 202, "{body}");
        let db = energy_local::db::Db::open(&dir).unwrap();
        for id in ids(&orders) {
            assert!(
                db.order(&id, 0).unwrap().is_some(),
                "{id} was acknowledged but is not committed"
            );
            told.push(id);
        }
    }
    first.kill9();
    let db = energy_local::db::Db::open(&dir).unwrap();
    for id in &told {
        assert!(db.order(id, 0).unwrap().is_some(), "{id} lost to kill -9");
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
