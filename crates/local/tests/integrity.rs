//! Defects that lost or corrupted a desk's data, each pinned by the test that reproduced it:
//! batches stored whole or not at all, idempotency before the gate, JSON only, bounded
//! quantities, and a sweeper that claims each re-send.

mod common;
#[path = "common/up.rs"]
mod up;

use common::*;
use energy_core::ports::{DueOrder, OrderStore, SweepClaims};
use energy_local::handlers::api_request_with;
use serde_json::{Value, json};

fn statuses(body: &Value) -> Vec<(String, String)> {
    body["orders"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    (
                        o["record_id"].as_str().unwrap_or("").to_string(),
                        o["status"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn stored(system: &common::system::System, id: &str) -> bool {
    system
        .store
        .get(&energy_core::order::RecordId::parse(id).unwrap())
        .await
        .unwrap()
        .is_some()
}

fn submitted_ids(system: &common::system::System) -> Vec<String> {
    system
        .bus
        .of_type("OrderSubmitted")
        .iter()
        .map(|e| e["detail"]["record_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_batch_with_a_conflicting_order_stores_nothing_of_the_batch() {
    let s = system();
    let (status, _) = post(&s, &json!([accepted("known")])).await;
    assert_eq!(status, 202);
    let mut changed = accepted("known");
    changed["zone"] = json!("FR");
    let (status, body) = post(&s, &json!([accepted("fresh"), changed])).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "record_id_conflict");
    assert_eq!(
        statuses(&body),
        [
            ("fresh".to_string(), "not_stored".to_string()),
            ("known".to_string(), "conflict".to_string())
        ]
    );
    assert!(
        !stored(&s, "fresh").await,
        "the new order of a 409 batch was stored"
    );
    assert_eq!(submitted_ids(&s), ["known"]);
}

#[tokio::test]
async fn two_racing_batches_that_conflict_store_exactly_one_whole_batch() {
    for round in 0..20 {
        let s = system();
        let mut theirs = accepted("shared");
        theirs["zone"] = json!("FR");
        let a = json!([accepted(&format!("a-{round}")), accepted("shared")]);
        let b = json!([accepted(&format!("b-{round}")), theirs]);
        let ((sa, _), (sb, _)) = tokio::join!(post(&s, &a), post(&s, &b));
        let mut answers = [sa, sb];
        answers.sort();
        assert_eq!(answers, [202, 409], "round {round}");
        let a_stored = stored(&s, &format!("a-{round}")).await;
        let b_stored = stored(&s, &format!("b-{round}")).await;
        assert!(
            a_stored != b_stored,
            "round {round}: exactly one batch is stored"
        );
        assert_eq!(
            a_stored,
            sa == 202,
            "round {round}: the 202 batch is the stored one"
        );
        assert_eq!(submitted_ids(&s).len(), 2, "round {round}");
    }
}

#[tokio::test]
async fn a_repost_after_the_gate_of_an_order_stored_before_it_is_a_duplicate() {
    let s = system();
    let batch = json!([accepted("early-1"), accepted("early-2")]);
    assert_eq!(post(&s, &batch).await.0, 202);
    s.clock.set(at(GATE));
    let (status, body) = post(&s, &batch).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        statuses(&body),
        [
            ("early-1".to_string(), "duplicate".to_string()),
            ("early-2".to_string(), "duplicate".to_string())
        ]
    );
    // A new order in the same late batch is refused with the gate, and nothing is stored.
    let (status, body) = post(&s, &json!([accepted("early-1"), accepted("late")])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["rule"], "gate_closed");
    assert_eq!(body["errors"][0]["path"], "$[1].delivery_date");
    assert!(!stored(&s, "late").await);
    // A different body under a known id after the gate is a conflict, not a duplicate.
    let mut changed = accepted("early-1");
    changed["side"] = json!("SELL");
    assert_eq!(post(&s, &json!([changed])).await.0, 409);
}

#[tokio::test]
async fn only_application_json_may_post_orders() {
    let s = system();
    let body = json!([accepted("ct-1")]).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| ("content-type", c))
            .into_iter()
            .collect();
        let resp = s
            .handlers
            .http(api_request_with(
                "POST",
                "/orders",
                "",
                &headers,
                Some(&body),
            ))
            .await;
        let answer = submit_order::response_body(&resp);
        assert_eq!(resp.status_code, 415, "{content_type:?}: {answer}");
        assert_eq!(answer["error"], "unsupported_media_type");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    assert!(!stored(&s, "ct-1").await);
    for content_type in ["application/json", "Application/JSON; charset=utf-8"] {
        let resp = s
            .handlers
            .http(api_request_with(
                "POST",
                "/orders",
                "",
                &[("content-type", content_type)],
                Some(&body),
            ))
            .await;
        assert_eq!(resp.status_code, 202, "{content_type}");
    }
}

#[tokio::test]
async fn a_huge_quantity_is_refused_at_validation_and_nothing_is_stored() {
    let s = system();
    for q in ["100000000000000000", "700000000000000"] {
        let mut o = accepted("huge");
        o["periods"][0]["steps"][0]["quantity"] = json!(q);
        let (status, body) = post(&s, &json!([o])).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"][0]["rule"], "volume_limit", "{body}");
        assert_eq!(
            body["errors"][0]["path"],
            "$[0].periods[0].steps[0].quantity"
        );
    }
    assert!(!stored(&s, "huge").await);
}

#[tokio::test]
async fn a_percent_encoded_id_is_decoded_as_api_gateway_does() {
    let s = system();
    assert_eq!(post(&s, &json!([accepted("desk-a:x")])).await.0, 202);
    let resp = s.http("GET", "/orders/desk-a%3Ax", None).await;
    assert_eq!(resp.status_code, 200);
    let resp = s.http("GET", "/orders/desk-a%2Fx", None).await;
    assert_eq!(resp.status_code, 400);
    // One segment, no trailing or doubled slash, as API Gateway routes it.
    for path in [
        "/orders/desk-a:x/",
        "//orders/desk-a:x",
        "/orders//desk-a:x",
    ] {
        let resp = s.http("GET", path, None).await;
        assert_eq!(resp.status_code, 404, "{path}");
    }
    // Two hex digits or nothing: `%+3` is not an escape (a sign once made it one).
    let resp = s.http("GET", "/orders/desk-a%+3Ax", None).await;
    assert_eq!(resp.status_code, 400);
}

async fn sweep(s: &common::system::System) -> sweep_pending::Report {
    sweep_at(s, s.now()).await
}

/// A sweep triggered at `at` (the scheduled event's time), run now.
async fn sweep_at(s: &common::system::System, at: jiff::Timestamp) -> sweep_pending::Report {
    let event = serde_json::from_value(energy_local::handlers::scheduled_event(at, "energy-sweep"))
        .unwrap();
    use energy_core::handler::EventHandler;
    s.handlers.sweep.handle(event).await.unwrap()
}

#[tokio::test]
async fn the_sweeper_resends_an_order_once_while_the_first_resend_is_in_flight() {
    let s = system();
    assert_eq!(post(&s, &json!([accepted("lost")])).await.0, 202);
    // The OrderSubmitted is lost.
    while s.bus.pop().is_some() {}
    let grace = s.handlers.sweep.config.grace;
    let submitted_grace = s.handlers.submit.config.submitted_grace;
    s.clock.advance(submitted_grace + grace);
    assert_eq!(sweep(&s).await.emitted, 1);
    // The re-send is still queued: sweeps now and a little later leave it alone.
    assert_eq!(sweep(&s).await.emitted, 0);
    s.clock.advance(grace);
    assert_eq!(sweep(&s).await.emitted, 0);
    // Lost again: after the backoff (the grace) and the grace, one more; the next waits twice as
    // long.
    while s.bus.pop().is_some() {}
    s.clock.advance(grace);
    assert_eq!(sweep(&s).await.emitted, 1);
    s.clock.advance(grace + grace);
    assert_eq!(sweep(&s).await.emitted, 0);
    s.clock.advance(grace);
    assert_eq!(sweep(&s).await.emitted, 1);
    assert_eq!(s.bus.of_type("OrderEvaluationDue").len(), 3);
}

#[tokio::test]
async fn two_sweeps_at_once_resend_each_order_once() {
    let s = system();
    let batch: Vec<Value> = (0..50).map(|i| accepted(&format!("race-{i}"))).collect();
    assert_eq!(post(&s, &json!(batch)).await.0, 202);
    while s.bus.pop().is_some() {}
    s.clock
        .advance(s.handlers.submit.config.submitted_grace + s.handlers.sweep.config.grace);
    let (a, b) = tokio::join!(sweep(&s), sweep(&s));
    assert_eq!(a.emitted + b.emitted, 50, "{a:?} {b:?}");
    assert_eq!(s.bus.of_type("OrderEvaluationDue").len(), 50);
}

#[tokio::test]
async fn a_handler_write_wins_over_a_stale_sweep_claim() {
    let s = system();
    assert_eq!(post(&s, &json!([accepted("moved")])).await.0, 202);
    let id = energy_core::order::RecordId::parse("moved").unwrap();
    let record = s.store.get(&id).await.unwrap().unwrap();
    let seen = DueOrder {
        record_id: id.clone(),
        attempt: record.attempt,
        due_at: record.due_at.unwrap(),
        sweeps: 0,
    };
    // The order moves on before the sweeper's claim lands.
    run_to_end(&s, 1).await;
    let later = s.now();
    assert!(!s.store.claim_sweep(&seen, later).await.unwrap());
}

#[tokio::test]
async fn a_sweep_that_waited_in_a_queue_leaves_alone_what_queued_up_behind_it() {
    let s = system();
    let triggered = s.now();
    // Orders arrive after the sweep was triggered; their events are queued behind it.
    assert_eq!(post(&s, &json!([accepted("behind")])).await.0, 202);
    s.clock
        .advance(s.handlers.submit.config.submitted_grace + s.handlers.sweep.config.grace);
    // The sweep runs late: it judges by when it was triggered.
    assert_eq!(sweep_at(&s, triggered).await.emitted, 0);
    // A sweep triggered now finds the order overdue.
    assert_eq!(sweep(&s).await.emitted, 1);
}

/// `energy dlq list | head` once panicked on the broken pipe; a reader that went away ends the
/// command quietly.
#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    let dir = up::data_dir("pipe");
    up::start(&dir, &[]).stop();
    let dir_arg = dir.to_string_lossy().into_owned();
    for args in [
        vec!["dlq", "list", "--data-dir", &dir_arg],
        vec!["schemas", "list"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_energy"))
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by a hostile run: a TTL counted from submission deleted an order whose results came
/// more than 24 h later, and the pipeline then ignored it without a word. Retention counts from
/// the final state now.
#[tokio::test]
async fn an_order_whose_results_come_two_days_later_still_reaches_its_final_state() {
    let s = system();
    // Posted Wednesday 08:00Z for Saturday: gate Friday 11:00Z, results ~52 h after posting.
    let mut o = accepted("weekend-1");
    o["delivery_date"] = json!("2026-01-17");
    o["periods"] = json!([{"mtu_start": "2026-01-17T06:00:00Z", "steps": [{"price": "3000.00", "quantity": "10.0"}]}]);
    let (status, body) = post(&s, &json!([o])).await;
    assert_eq!(status, 202, "{body}");
    run_to_end(&s, 1).await;
    let r = record(&s, "weekend-1").await;
    assert_eq!(r.state, energy_core::lifecycle::OrderState::Stored);
    assert!(
        r.updated_at.as_second() - r.submitted_at.as_second() > 48 * 3600,
        "final {} after submission at {}",
        r.updated_at,
        r.submitted_at
    );
    assert_eq!(r.ttl, r.updated_at.as_second() + 86_400);
}

/// Found by a hostile run: a refused withdrawal took the order out of the platform's stored
/// book and put it back last, so after a restart it lost its time priority and the auction
/// cleared differently (sellers short of buyers in every MTU). Against a real `energy up`.
#[tokio::test]
async fn a_refused_withdrawal_leaves_the_order_in_its_place_in_the_stored_book() {
    let dir = up::data_dir("book-order");
    let up = up::start(
        &dir,
        &[
            "--start",
            "2026-11-27T08:00:00Z",
            "--speed",
            "60",
            "--refuse-withdrawals",
            "EE",
        ],
    );
    let http = reqwest::Client::new();
    let order = |id: &str| {
        json!({
            "record_id": id, "market": "SDAC", "delivery_date": "2026-11-28", "zone": "EE",
            "portfolio": "P", "side": "SELL",
            "periods": [{"mtu_start": "2026-11-28T06:00:00Z", "steps": [{"price": "-500.00", "quantity": "100.0"}]}]
        })
    };
    let state = |id: &str| {
        let http = http.clone();
        let url = up.url(&format!("/orders/{id}"));
        async move {
            let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            v["state"].as_str().unwrap_or_default().to_string()
        }
    };
    for id in ["ee-a", "ee-b"] {
        let r = http
            .post(up.url("/orders"))
            .json(&json!([order(id)]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        // One after the other: ee-a's receipt comes first.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while state(id).await != "PENDING" {
            assert!(std::time::Instant::now() < deadline, "{id} not handed over");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let r = http.delete(up.url("/orders/ee-a")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let refused = || {
        up::archive(&dir)
            .iter()
            .any(|e| e["detail-type"] == "OrderChangeRefused")
    };
    while !refused() {
        assert!(
            std::time::Instant::now() < deadline,
            "no OrderChangeRefused"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    up.stop();
    let db = energy_local::db::Db::open(&dir).unwrap();
    let book: Vec<String> = db
        .platform_orders()
        .unwrap()
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["record_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        book,
        ["ee-a", "ee-b"],
        "earliest receipt first, as before the withdrawal"
    );
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}
