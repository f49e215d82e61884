//! The choreography after submission: evaluate-order, store-result, notify-slack, sweep-pending,
//! each fed EventBridge events by the in-process bus.

mod common;

use common::*;
use energy_auction::sim::Publication;
use energy_core::events::{DomainEvent, OrderEvaluationDue, Trigger};
use energy_core::handler::EventHandler;
use energy_core::lifecycle::OrderState;
use energy_core::market::Zone;
use energy_core::order::RecordId;
use energy_core::ports::{Clock, OrderStore};
use energy_core::retry::{RetryPolicy, check_round, round_name};
use jiff::SignedDuration;
use serde_json::json;

fn id(s: &str) -> RecordId {
    RecordId::parse(s).unwrap()
}

#[tokio::test]
async fn results_not_ready_move_the_order_to_attempt_n_plus_1_with_exactly_one_retry_at_the_computed_time()
 {
    let s = system();
    post(&s, &json!([accepted("r-1")])).await;
    s.run_until_quiet(|_| {}).await; // OrderSubmitted → handed over, check 1 scheduled
    let first = s.scheduler.pending();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].name, round_name(first[0].at));
    assert_eq!(first[0].event.due_by, first[0].at);
    assert!(
        first[0].at >= at(PUBLICATION),
        "check 1 waits for the expected publication"
    );
    // Then the auction runs an hour late: check 1 finds nothing.
    s.platform.set_publication(
        Zone::DeLu,
        Publication::After(SignedDuration::from_hours(1)),
    );
    let policy = RetryPolicy::default();
    let delayed = at(PUBLICATION)
        .saturating_add(SignedDuration::from_hours(1))
        .unwrap();
    fire_next_schedule(&s);
    assert_eq!(s.now(), first[0].at);
    s.run_until_quiet(|_| {}).await;
    let r = record(&s, "r-1").await;
    assert_eq!((r.state, r.attempt), (OrderState::Pending, 2));
    let pending = s.scheduler.pending();
    assert_eq!(pending.len(), 1, "exactly one retry scheduled: {pending:?}");
    let expected = check_round(policy.check_at(s.now(), Some(delayed), &id("r-1"), 2));
    assert_eq!(
        (pending[0].name.clone(), pending[0].at),
        (round_name(expected), expected)
    );
    assert_eq!(r.due_at, Some(expected));
    assert_eq!(
        (pending[0].event.due_by, pending[0].event.after.clone()),
        (expected, None)
    );
    assert_eq!(s.scheduler.created(), 2);
}

#[tokio::test]
async fn after_max_attempts_the_order_fails_with_results_timeout_and_one_slack_message() {
    let s = system();
    s.platform.set_publication(Zone::DeLu, Publication::Never);
    post(&s, &json!([accepted("t-1")])).await;
    run_to_end(&s, 1).await;
    let r = record(&s, "t-1").await;
    let max = RetryPolicy::default().max_attempts;
    assert_eq!((r.state, r.attempt), (OrderState::Notified, max));
    assert_eq!(
        r.failure.as_ref().map(|f| f.reason.as_str()),
        Some("ResultsTimeout")
    );
    let failed = s.bus.of_type("OrderFailed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["detail"]["reason"], "ResultsTimeout");
    assert_eq!(failed[0]["detail"]["attempts"], max);
    assert_eq!(s.notifier.sent().len(), 1);
    assert!(s.notifier.sent()[0].text.contains("t-1"));
    assert_eq!(
        s.scheduler.created() as u32,
        max,
        "one round per check of the one order"
    );
}

#[tokio::test]
async fn results_ready_emit_order_ready_and_accepted_results_are_stored_once_under_the_deterministic_key()
 {
    let s = system();
    post(&s, &json!([accepted("s-1"), partial("s-2")])).await;
    run_to_end(&s, 1).await;
    let ready = s.bus.of_type("OrderReady");
    assert_eq!(ready.len(), 2);
    let objects = s.results.objects();
    assert_eq!(
        objects.keys().cloned().collect::<Vec<_>>(),
        [
            "results/2026-01-15/DE-LU/s-1.json",
            "results/2026-01-15/NL/s-2.json"
        ]
    );
    let stored: serde_json::Value =
        serde_json::from_slice(&objects["results/2026-01-15/NL/s-2.json"]).unwrap();
    assert_eq!(stored["outcome"], "PARTIALLY_ACCEPTED");
    assert_eq!(stored["mtus"][0]["accepted_quantity"], "5.0");
    assert_eq!(stored["mtus"][0]["offered_quantity"], "7.5");
    let events = s.bus.of_type("OrderResultStored");
    assert_eq!(events.len(), 2);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["detail"]["key"] == "results/2026-01-15/DE-LU/s-1.json")
            .count(),
        1
    );
    for id in ["s-1", "s-2"] {
        assert_eq!(record(&s, id).await.state, OrderState::Stored);
    }
    assert!(s.notifier.sent().is_empty());
}

#[tokio::test]
async fn a_rejected_result_emits_order_failed_rejected_and_one_slack_message() {
    let s = system();
    post(&s, &json!([rejected("j-1")])).await;
    run_to_end(&s, 1).await;
    assert_eq!(
        s.bus.of_type("OrderReady")[0]["detail"]["outcome"],
        "REJECTED"
    );
    let failed = s.bus.of_type("OrderFailed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["detail"]["reason"], "Rejected");
    assert!(
        s.results.objects().is_empty(),
        "a rejection writes no result object"
    );
    let sent = s.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].key, "j-1/Rejected");
    assert_eq!(sent[0].payload["blocks"][0]["type"], "header");
    assert_eq!(record(&s, "j-1").await.state, OrderState::Notified);
}

#[tokio::test]
async fn every_event_delivered_three_times_gives_one_schedule_one_result_object_one_slack_message_and_the_same_final_state()
 {
    async fn scenario(
        copies: usize,
    ) -> (
        Vec<(String, OrderState, u32, Option<String>)>,
        usize,
        usize,
        usize,
        usize,
        usize,
    ) {
        let s = system();
        s.platform.set_publication(Zone::Fi, Publication::Never);
        s.platform.set_publication(
            Zone::DeLu,
            Publication::After(SignedDuration::from_mins(10)),
        );
        let timeout = order(
            "d-4",
            "FI",
            "BUY",
            json!([{"price": "250.00", "quantity": "1.0"}]),
        );
        post(
            &s,
            &json!([accepted("d-1"), partial("d-2"), rejected("d-3"), timeout]),
        )
        .await;
        run_to_end(&s, copies).await;
        // Every event again, after every order is final: nothing changes.
        for envelope in s.bus.archive() {
            deliver_copies(&s, &envelope, copies).await;
        }
        while let Some(envelope) = s.bus.pop() {
            deliver_copies(&s, &envelope, copies).await;
        }
        let finals = s
            .store
            .all()
            .into_iter()
            .map(|r| {
                (
                    r.order.record_id.to_string(),
                    r.state,
                    r.attempt,
                    r.result_key,
                )
            })
            .collect();
        (
            finals,
            s.scheduler.created(),
            s.results.puts(),
            s.notifier.sent().len(),
            s.bus.of_type("OrderEvaluationDue").len(),
            s.bus.of_type("OrderReady").len(),
        )
    }
    let once = scenario(1).await;
    let thrice = scenario(3).await;
    assert_eq!(thrice.0, once.0, "same final states");
    assert_eq!(thrice.1, once.1, "same number of schedules");
    assert_eq!(
        (thrice.2, thrice.3),
        (2, 2),
        "one result write per stored order, one message per failed order"
    );
    assert_eq!((once.2, once.3), (2, 2));
    assert_eq!(thrice.4, once.4, "the same result checks");
    assert_eq!(
        (once.5, thrice.5),
        (3, 3),
        "one OrderReady per published order"
    );
    assert_eq!(once.0.len(), 4);
    assert!(
        once.0.iter().all(|(_, state, _, _)| state.is_final()),
        "{:?}",
        once.0
    );
}

#[tokio::test]
async fn the_sweeper_re_emits_order_evaluation_due_only_for_overdue_orders_through_the_due_index() {
    let s = system();
    // 200 orders whose OrderSubmitted is handled: each waits for its check at ~11:45Z.
    let batch: Vec<_> = (0..100).map(|i| accepted(&format!("w-{i}"))).collect();
    post(&s, &json!(batch)).await;
    let batch: Vec<_> = (100..200).map(|i| accepted(&format!("w-{i}"))).collect();
    post(&s, &json!(batch)).await;
    s.run_until_quiet(|_| {}).await;
    // Two more whose OrderSubmitted is lost: the bus is down when they are posted.
    s.bus.fail_next(1);
    post(&s, &json!([accepted("lost-1"), partial("lost-2")])).await;
    assert_eq!(count(&s, "OrderSubmitted"), 200);
    // Ten minutes on, the sweeper runs: only the two lost orders are overdue.
    s.clock.set(
        at(START)
            .saturating_add(SignedDuration::from_mins(10))
            .unwrap(),
    );
    let examined_before = s.store.examined();
    let sweep = json!({"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let report = s
        .handlers
        .sweep
        .handle(serde_json::from_value(sweep).unwrap())
        .await
        .unwrap();
    assert_eq!(report.emitted, 2);
    let due: Vec<String> = s
        .bus
        .of_type("OrderEvaluationDue")
        .iter()
        .map(|e| e["detail"]["record_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(due, ["lost-1", "lost-2"]);
    assert!(
        s.store.examined() - examined_before <= 3,
        "the due query read the index, not the orders"
    );
    // The evaluator takes them from there; nothing else was re-emitted.
    s.run_until_quiet(|_| {}).await;
    let waiting: Vec<(OrderState, u32)> =
        s.store.all().iter().map(|r| (r.state, r.attempt)).collect();
    assert_eq!(waiting.len(), 202);
    assert!(
        waiting.iter().all(|w| *w == (OrderState::Pending, 1)),
        "every order handed over once and waiting for check 1: {waiting:?}"
    );
    assert_eq!(
        count(&s, "OrderEvaluationDue"),
        2,
        "no other order was re-sent"
    );
}

#[tokio::test]
async fn a_lost_order_ready_is_re_sent_by_the_sweeper_and_stored_once() {
    let s = system();
    post(&s, &json!([accepted("l-1")])).await;
    s.run_until_quiet(|_| {}).await;
    // Check 1 finds preliminary results (SDAC); check 2 the final ones, and the bus loses
    // OrderReady.
    fire_next_schedule(&s);
    s.run_until_quiet(|_| {}).await;
    assert_eq!(record(&s, "l-1").await.attempt, 2);
    fire_next_schedule(&s);
    s.bus.fail_next(1);
    while let Some(e) = s.bus.pop() {
        s.deliver(&e).await;
    }
    assert_eq!(record(&s, "l-1").await.state, OrderState::Ready);
    run_to_end(&s, 1).await;
    assert_eq!(record(&s, "l-1").await.state, OrderState::Stored);
    assert_eq!(s.results.objects().len(), 1);
}

#[tokio::test]
async fn a_store_result_failure_after_retries_reaches_the_desk_as_processing_error() {
    let s = system();
    post(&s, &json!([accepted("p-1")])).await;
    s.run_until_quiet(|_| {}).await;
    s.results.fail_next(3); // every one of Lambda's three tries fails
    run_to_end(&s, 1).await;
    let r = record(&s, "p-1").await;
    assert_eq!(r.state, OrderState::Notified);
    assert_eq!(
        r.failure.as_ref().map(|f| f.reason.as_str()),
        Some("ProcessingError")
    );
    let sent = s.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].text.contains("store-result failed 3 times"),
        "{}",
        sent[0].text
    );
}

#[tokio::test]
async fn a_stale_evaluation_event_is_ignored() {
    let s = system();
    post(&s, &json!([accepted("o-1")])).await;
    s.run_until_quiet(|_| {}).await;
    let before = record(&s, "o-1").await;
    let stale = DomainEvent::EvaluationDue(OrderEvaluationDue {
        record_id: id("o-1"),
        attempt: 0,
        due_at: s.clock.now(),
        trigger: Trigger::Sweep,
    });
    s.bus.inject(&stale);
    s.run_until_quiet(|_| {}).await;
    assert_eq!(s.store.get(&id("o-1")).await.unwrap().unwrap(), before);
    assert_eq!(s.scheduler.pending().len(), 1);
    assert_eq!(
        Some(s.scheduler.pending()[0].at),
        before.due_at,
        "the round of check 1, unchanged"
    );
}

#[tokio::test]
async fn a_failed_delivery_pipeline_run_reaches_the_desk_once_and_other_states_do_not() {
    let s = system();
    let event = |state: &str, id: &str| {
        json!({
            "version": "0", "id": id, "detail-type": notify_slack::PIPELINE_STATE, "source": "aws.codepipeline",
            "account": "123456789012", "time": "2026-01-14T08:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": {"pipeline": "energy", "execution-id": "e-1", "state": state}
        })
    };
    s.bus.inject_raw(event("SUCCEEDED", "p-1"));
    s.bus.inject_raw(event("FAILED", "p-2"));
    s.run_until_quiet(|_| {}).await;
    let sent = s.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].text.contains("energy failed (execution e-1)"),
        "{}",
        sent[0].text
    );
}

#[tokio::test]
async fn the_in_memory_stack_honours_each_functions_event_invoke_config() {
    // notify-slack has no EventInvokeConfig in the template: Lambda's defaults, three tries and
    // no on-failure destination. store-result's sends its failure to the bus (see above).
    let s = system();
    post(&s, &json!([rejected("i-1")])).await;
    s.run_until_quiet(|_| {}).await;
    let mut failed = None;
    while failed.is_none() && s.advance().await {
        while let Some(envelope) = s.bus.pop() {
            if envelope["detail-type"] == "OrderFailed" {
                failed = Some(envelope.clone());
                s.notifier.fail_next(3);
            }
            s.deliver(&envelope).await;
        }
    }
    assert!(failed.is_some(), "the rejected order failed");
    assert_eq!(s.notifier.attempts(), 3, "the first try and two retries");
    assert!(s.notifier.sent().is_empty());
    assert!(
        s.bus.of_type(notify_slack::LAMBDA_FAILURE).is_empty(),
        "no on-failure record: notify-slack has no destination"
    );
    assert_eq!(record(&s, "i-1").await.state, OrderState::Failed);
}
