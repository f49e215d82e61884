//! The same event delivered three times at once, then once more after the order is final, to
//! the handlers over `energy up`'s own adapters: the SQLite store (each call on a blocking
//! thread), the results directory, the local bus and archive. A [`Lockstep`] store holds the
//! three first reads until all three have read, so every run races the worst way: three
//! deliveries acting on the same version of the order. What must come out: one transition, one
//! event, one object (counted by puts, its bytes compared), one message.

use std::sync::Arc;

use energy_core::events::{DomainEvent, OrderFailed, OrderReady, OrderRef, OrderSubmitted};
use energy_core::handler::EventHandler;
use energy_core::lifecycle::{OrderRecord, OrderState, Transition};
use energy_core::memory::{Lockstep, RecordingNotifier, RecordingResults, fixtures};
use energy_core::result::FailureReason;
use energy_core::retry::RetryPolicy;
use energy_local::db::EventFilter;
use energy_local::up::{self, Running, UpArgs};
use jiff::{SignedDuration, Timestamp};

/// 08:00Z the day before the fixtures' delivery day: the gate is three hours away.
const START: &str = "2026-01-14T08:00:00Z";

async fn stack(name: &str) -> Running {
    let dir = std::env::temp_dir().join(format!(
        "energy-dup-{name}-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    let mut args = UpArgs::new(dir);
    args.start = Some(START.parse().unwrap());
    args.speed = 1;
    up::start(&args, Arc::new(|_| {})).await.unwrap()
}

/// Stops the stack and deletes its data dir.
async fn finish(running: Running) {
    let dir = running.data_dir.clone();
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// `record` stored, not due for an hour (so the sweeper leaves it to the test).
async fn seed(running: &Running, record: OrderRecord) -> OrderRecord {
    let now = running.now();
    let record = match record.state {
        OrderState::Received => OrderRecord {
            due_at: now.checked_add(SignedDuration::from_hours(1)).ok(),
            ..record
        },
        _ => record
            .apply(
                Transition::Requeue {
                    due_at: now + SignedDuration::from_hours(1),
                },
                now,
            )
            .unwrap(),
    };
    running.adapters.orders.insert(&record).await.unwrap();
    record
}

async fn archived(running: &Running, record_id: &str, detail_type: &str) -> usize {
    let filter = EventFilter {
        record_id: Some(record_id.to_string()),
        detail_type: Some(detail_type.to_string()),
        ..Default::default()
    };
    running
        .shared
        .db
        .run(move |db| db.events(&filter))
        .await
        .unwrap()
        .len()
}

async fn state(running: &Running, record_id: &str) -> OrderRecord {
    let id = energy_core::order::RecordId::parse(record_id).unwrap();
    running.adapters.orders.get(&id).await.unwrap().unwrap()
}

fn now_of(running: &Running) -> Timestamp {
    running.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_order_ready_at_once_and_one_after_write_one_object_and_one_event() {
    let running = stack("ready").await;
    let now = now_of(&running);
    let record = seed(&running, fixtures::ready("dup-r", true, now)).await;
    let results = Arc::new(RecordingResults::new(running.adapters.results.clone()));
    let handler = store_result::StoreResult {
        clock: running.adapters.clock.clone(),
        orders: Arc::new(Lockstep::new(running.adapters.orders.clone(), 3)),
        bus: running.adapters.bus.clone(),
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
    let on_disk = std::fs::read(running.data_dir.join(&key)).unwrap();
    assert_eq!(on_disk, expected);
    assert_eq!(archived(&running, "dup-r", "OrderResultStored").await, 1);
    let r = state(&running, "dup-r").await;
    assert_eq!(r.state, OrderState::Stored);
    // Seeded (1 write), claimed, stored: nothing else moved it.
    assert_eq!(r.version, record.version + 2);
    finish(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_order_failed_at_once_and_one_after_send_one_message() {
    let running = stack("failed").await;
    let now = now_of(&running);
    let record = seed(
        &running,
        fixtures::failed("dup-f", FailureReason::ResultsTimeout, now),
    )
    .await;
    let notifier = Arc::new(RecordingNotifier::new(running.adapters.notifier.clone()));
    let handler = notify_slack::NotifySlack {
        clock: running.adapters.clock.clone(),
        orders: Arc::new(Lockstep::new(running.adapters.orders.clone(), 3)),
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
    let sent = notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].key, "dup-f/ResultsTimeout");
    assert_eq!(state(&running, "dup-f").await.state, OrderState::Notified);
    finish(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_order_submitted_at_once_hand_over_once_with_one_schedule() {
    let running = stack("submitted").await;
    let now = now_of(&running);
    let record = seed(&running, fixtures::received("dup-s", now)).await;
    let handler = evaluate_order::EvaluateOrder {
        clock: running.adapters.clock.clone(),
        orders: Arc::new(Lockstep::new(running.adapters.orders.clone(), 3)),
        due: running.adapters.due.clone(),
        bus: running.adapters.bus.clone(),
        scheduler: running.adapters.scheduler.clone(),
        platform: running.adapters.platform.clone(),
        config: evaluate_order::Config::default(),
    };
    let event = fixtures::event(
        &DomainEvent::Submitted(OrderSubmitted {
            order: OrderRef::from(&record.order),
            mtu_count: record.order.periods.len() as u32,
            submitted_at: record.submitted_at,
        }),
        now,
    );
    let (a, b, c) = tokio::join!(
        handler.handle(event.clone()),
        handler.handle(event.clone()),
        handler.handle(event.clone())
    );
    let outcomes = [a.unwrap(), b.unwrap(), c.unwrap()];
    let handed = outcomes
        .iter()
        .filter(|o| matches!(o, evaluate_order::Outcome::HandedOver { .. }))
        .count();
    assert_eq!(handed, 1, "{outcomes:?}");
    handler.handle(event).await.unwrap();
    let r = state(&running, "dup-s").await;
    assert_eq!((r.state, r.attempt), (OrderState::Pending, 1));
    assert_eq!(r.version, record.version + 1);
    let db = running.shared.db.clone();
    let (schedules, book) = db
        .run(|db| {
            (
                db.pending_schedules().unwrap(),
                db.platform_orders().unwrap(),
            )
        })
        .await;
    assert_eq!(schedules, 1, "one check scheduled");
    assert_eq!(
        book.iter().filter(|o| o.contains("\"dup-s\"")).count(),
        1,
        "the platform's book holds the order once: {book:?}"
    );
    finish(running).await;
}

/// Found by a hostile run: at 1200× a five-minute claim is 0.25 s of wall time, shorter than a
/// slow Slack answer, and a second delivery claimed and posted again.
#[tokio::test]
async fn on_a_fast_clock_a_claim_outlasts_the_http_timeout_in_wall_time() {
    let dir = std::env::temp_dir().join(format!(
        "energy-dup-fast-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    let mut args = UpArgs::new(dir.clone());
    args.start = Some(START.parse().unwrap());
    args.speed = 1200;
    let running = up::start(&args, Arc::new(|_| {})).await.unwrap();
    let wall = |d: SignedDuration| d.as_secs_f64() / 1200.0;
    for claim in [
        running.handlers.notify.config.retry.claim_for,
        running.handlers.store_result.config.retry.claim_for,
        running.handlers.evaluate.config.retry.claim_for,
    ] {
        assert!(
            wall(claim) >= 15.0,
            "{claim} is {} s of wall time",
            wall(claim)
        );
    }
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
