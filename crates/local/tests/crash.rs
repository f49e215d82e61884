//! Deterministic crash points on a real `energy up` (SQLite, result files, a Slack webhook): for
//! each point of `energy_core::crash`, the process is started with `ENERGY_CRASH_AT=<point>`,
//! aborts there (SIGABRT: nothing flushed, as `kill -9`), and is started again without it. Then
//! every order ends final with exactly one of each effect, with the right bytes:
//!
//! - one result object, whose bytes are the stored result;
//! - the platform's book holds each order once;
//! - one line per failure in the notifications log;
//! - one Slack post per failure, except after a crash between the post and NOTIFIED, where the
//!   message is repeated once rather than lost (a webhook has no idempotency key);
//! - one `OrderResultStored` per stored order, except after a crash between publishing it and
//!   STORED, where consumers may see it twice (EventBridge consumers are at-least-once anyway);
//!   likewise `OrderCancelled` after a crash between publishing it and CANCELLED;
//! - a POST the crash left unanswered is posted again by the desk, as a client does with a
//!   request that got no answer (it is idempotent).
//!
//! The stack's own steps answer before their commit (`Db::run_early`), so a crash at a point
//! also undoes the steps since the last commit, a few milliseconds' worth: the crash then
//! looks like one a little earlier, and a step whose repeat is allowed above may not repeat.
//! - the order the desk withdrew is CANCELLED, not in the platform's book, without a result or a
//!   message, announced by one `OrderCancelled`.

#[path = "common/up.rs"]
mod up;

use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use energy_core::crash;
use serde_json::{Value, json};
use up::{archive, notifications, result_keys, wait_final};

/// Friday 08:00Z: three hours before the SDAC gate for Saturday (11:00Z), results at 11:45Z.
/// At 1200× `energy up` gives the sweeper 100 market minutes of grace (5 s of wall time), so an
/// order whose `OrderSubmitted` died with the process is handed over well before the gate.
const START: &str = "2026-11-27T08:00:00Z";

fn batch() -> Value {
    let order = |id: &str, zone: &str, side: &str, price: &str| {
        json!({
            "record_id": id, "market": "SDAC", "delivery_date": "2026-11-28", "zone": zone,
            "portfolio": "DESK-C", "side": side,
            "periods": [{"mtu_start": "2026-11-28T06:00:00Z", "steps": [{"price": price, "quantity": "1.0"}]}]
        })
    };
    // A buy at 3000 is accepted; a sell at 3500 is out of the money, so rejected; the third
    // the desk withdraws.
    json!([
        order("c-acc", "DE-LU", "BUY", "3000.00"),
        order("c-rej", "NL", "SELL", "3500.00"),
        order("c-can", "FR", "BUY", "3000.00")
    ])
}

/// `DELETE /orders/c-can`; whether it was taken (the process may be gone).
async fn cancel(http: &reqwest::Client, up: &up::Up) -> bool {
    match http.delete(up.url("/orders/c-can")).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            assert!(matches!(status, 200 | 202), "DELETE answered {status}");
            true
        }
        Err(_) => false,
    }
}

/// A Slack webhook on a loopback port bound before its URL is handed out; counts the posts.
async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let posts: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = posts.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, posts)
}

fn crashed(status: Option<std::process::ExitStatus>, point: &str) {
    let status = status.unwrap_or_else(|| panic!("energy up never reached {point}"));
    assert_eq!(
        status.signal(),
        Some(SIGABRT),
        "energy up ended otherwise than at {point}: {status:?}"
    );
}

/// `std::process::abort` ends the process with SIGABRT.
const SIGABRT: i32 = 6;

async fn crash_at(point: &'static str) {
    let dir = up::data_dir(&format!("crash-{point}"));
    let (hook, posts) = webhook().await;
    let armed = [("SLACK_WEBHOOK_URL", hook.as_str()), (crash::ENV, point)];
    let http = reqwest::Client::new();

    // At market speed: the orders go in hours before the gate, however slow the machine.
    // One delivery at a time while armed: the abort stops the handler at its point and nothing
    // else half-way (kill -9 at random moments is up.rs's test).
    let serial = ["--concurrency", "1"];
    let mut first = up::try_start_env(
        &dir,
        &[&["--start", START, "--speed", "1"][..], &serial[..]].concat(),
        &armed,
    )
    .unwrap_or_else(|(code, err)| panic!("energy up exited {code:?}: {err}"));
    let posted = http
        .post(first.url("/orders"))
        .header("content-type", "application/json")
        .body(batch().to_string())
        .send()
        .await;
    let acknowledged = posted.as_ref().is_ok_and(|r| r.status() == 202);
    let mut cancelled = posted.is_ok() && cancel(&http, &first).await;
    let mut status = first.wait_exit(Duration::from_secs(3));
    if status.is_none() {
        let response = posted.expect("the POST is answered when nothing crashed");
        assert_eq!(response.status(), 202);
        first.stop();
        // On to the results at 1200 market seconds a second, still armed.
        let mut second = up::try_start_env(
            &dir,
            &[&["--speed", "1200"][..], &serial[..]].concat(),
            &armed,
        )
        .unwrap_or_else(|(code, err)| panic!("energy up exited {code:?}: {err}"));
        if !cancelled {
            cancelled = cancel(&http, &second).await;
        }
        status = second.wait_exit(Duration::from_secs(60));
    }
    crashed(status, point);

    // Started again, unarmed: the system runs on to the end.
    let env = [("SLACK_WEBHOOK_URL", hook.as_str())];
    let last = up::try_start_env(&dir, &["--speed", "1200"], &env)
        .unwrap_or_else(|(code, err)| panic!("energy up exited {code:?}: {err}"));
    if !acknowledged {
        let again = http
            .post(last.url("/orders"))
            .header("content-type", "application/json")
            .body(batch().to_string())
            .send()
            .await
            .expect("the POST again");
        assert_eq!(
            again.status(),
            202,
            "the POST again after a crash at {point}"
        );
    }
    if !cancelled {
        assert!(cancel(&http, &last).await, "the withdrawal is taken");
    }
    let ids = [
        "c-acc".to_string(),
        "c-rej".to_string(),
        "c-can".to_string(),
    ];
    let finals = wait_final(&http, &last, &ids, Duration::from_secs(90)).await;
    let states: Vec<&str> = finals
        .iter()
        .map(|b| b["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["STORED", "NOTIFIED", "CANCELLED"],
        "after a crash at {point}: {finals:#?}"
    );
    last.stop();

    // One result object, with the stored result's bytes.
    let key = finals[0]["result_key"].as_str().unwrap();
    assert_eq!(key, "results/2026-11-28/DE-LU/c-acc.json");
    assert_eq!(result_keys(&dir), [key], "after a crash at {point}");
    let object: Value = serde_json::from_slice(&std::fs::read(dir.join(key)).unwrap()).unwrap();
    assert_eq!(object, finals[0]["result"], "after a crash at {point}");
    assert!(
        std::fs::read_dir(dir.join("tmp"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "no half-written object left"
    );

    // The platform's book holds each order once.
    let db = energy_local::db::Db::open(&dir).unwrap();
    let book = db.platform_orders().unwrap();
    for (id, held) in [("c-acc", 1), ("c-rej", 1), ("c-can", 0)] {
        let copies = book
            .iter()
            .filter(|o| o.contains(&format!("\"{id}\"")))
            .count();
        assert_eq!(
            copies, held,
            "{id} in the platform's book after a crash at {point}"
        );
    }

    // The desk is told once; Slack hears it twice only after a crash between post and NOTIFIED.
    let lines = notifications(&dir);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["key"], "c-rej/Rejected");
    let slack = posts.lock().unwrap().len();
    let expected_posts = if point == crash::NOTIFY_AFTER_POST {
        2
    } else {
        1
    };
    assert_eq!(
        slack, expected_posts,
        "Slack posts after a crash at {point}"
    );

    let events = archive(&dir);
    let count = |detail_type: &str, id: &str| {
        events
            .iter()
            .filter(|e| e["detail-type"] == detail_type && e["detail"]["record_id"] == id)
            .count()
    };
    let expected_stored = if point == crash::STORE_AFTER_PUBLISH {
        1..=2
    } else {
        1..=1
    };
    assert!(
        expected_stored.contains(&count("OrderResultStored", "c-acc")),
        "OrderResultStored after a crash at {point}: {}",
        count("OrderResultStored", "c-acc")
    );
    // After a crash between the insert and OrderSubmitted, the sweeper may have handed the order
    // over (no OrderSubmitted), or the POST again announced it. A POST whose answer the crash
    // cut off (its OrderSubmitted already delivered, the evaluator crashing before the answer
    // left) is sent again, and announces the order again while it is RECEIVED.
    let submitted = if point == crash::SUBMIT_AFTER_INSERT {
        0..=1
    } else if !acknowledged {
        1..=2
    } else {
        1..=1
    };
    assert!(
        submitted.contains(&count("OrderSubmitted", "c-acc")),
        "OrderSubmitted after a crash at {point}: {}",
        count("OrderSubmitted", "c-acc")
    );
    let expected_cancelled = if point == crash::EVALUATE_AFTER_CANCELLED {
        1..=2
    } else {
        1..=1
    };
    assert!(
        expected_cancelled.contains(&count("OrderCancelled", "c-can")),
        "OrderCancelled after a crash at {point}: {}",
        count("OrderCancelled", "c-can")
    );
    assert_eq!(count("OrderResultStored", "c-can"), 0);
    // SDAC: each order's preliminary result was told once, even across a crash between
    // keeping it and telling it.
    for id in ["c-acc", "c-rej"] {
        assert_eq!(
            count("OrderPreliminaryResult", id),
            1,
            "{id}'s OrderPreliminaryResult after a crash at {point}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! crash_tests {
    ($($name:ident: $point:expr;)*) => {
        $(
            // The webhook answers from another worker while the test waits for the crash.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
