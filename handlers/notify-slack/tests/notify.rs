//! notify-slack on its own, against in-memory ports.

use std::sync::Arc;

use energy_core::events::{DomainEvent, OrderFailed};
use energy_core::handler::EventHandler;
use energy_core::lifecycle::OrderState;
use energy_core::memory::fixtures::{self, event};
use energy_core::memory::{InMemoryNotifier, InMemoryOrderStore, ManualClock};
use energy_core::ports::OrderStore;
use energy_core::result::FailureReason;
use notify_slack::{Config, LAMBDA_FAILURE, NotifySlack, Outcome};
use serde_json::json;

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-01-14T12:00:00Z";

fn fixture() -> (Arc<InMemoryOrderStore>, Arc<InMemoryNotifier>, NotifySlack) {
    let orders = Arc::new(InMemoryOrderStore::new());
    let notifier = Arc::new(InMemoryNotifier::new());
    let handler = NotifySlack {
        clock: Arc::new(ManualClock::new(at(NOW))),
        orders: orders.clone(),
        notifier: notifier.clone(),
        config: Config::default(),
    };
    (orders, notifier, handler)
}

#[tokio::test]
async fn a_failed_order_reaches_the_desk_once() {
    let (orders, notifier, handler) = fixture();
    let r = fixtures::failed("n-1", FailureReason::ResultsTimeout, at(NOW));
    orders.insert(&r).await.unwrap();
    let failed = DomainEvent::Failed(OrderFailed::from_record(&r, r.failure.as_ref().unwrap()));
    assert_eq!(
        handler.handle(event(&failed, at(NOW))).await.unwrap(),
        Outcome::Notified
    );
    let again = handler.handle(event(&failed, at(NOW))).await.unwrap();
    assert!(matches!(again, Outcome::Ignored(_)), "{again:?}");
    assert_eq!(notifier.sent().len(), 1);
    assert!(notifier.sent()[0].key.starts_with("n-1/"));
    let stored = orders.get(&r.order.record_id).await.unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Notified);
}

#[tokio::test]
async fn a_withdrawal_the_platform_refused_reaches_the_desk_with_its_reason() {
    let (_orders, notifier, handler) = fixture();
    let r = fixtures::pending("k-1", 1, at(NOW));
    let refused = DomainEvent::ChangeRefused(energy_core::events::OrderChangeRefused {
        order: energy_core::events::OrderRef::from(&r.order),
        change: energy_core::events::Change::Cancel,
        reason: "the gate closed at 11:00".into(),
        refused_at: at(NOW),
    });
    assert_eq!(
        handler.handle(event(&refused, at(NOW))).await.unwrap(),
        Outcome::Notified
    );
    let sent = notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].key, format!("k-1/CancelRefused/{NOW}"));
    assert!(
        sent[0].text.contains("Withdrawal refused")
            && sent[0].text.contains("k-1")
            && sent[0].text.contains("the gate closed at 11:00")
            && sent[0].text.contains("stays in the auction"),
        "{}",
        sent[0].text
    );
}

#[tokio::test]
async fn a_handler_that_failed_for_good_fails_the_order_with_processing_error() {
    let (orders, notifier, handler) = fixture();
    let r = fixtures::ready("n-2", true, at(NOW));
    orders.insert(&r).await.unwrap();
    let record = json!({
        "version": "0", "id": "f-1", "detail-type": LAMBDA_FAILURE, "source": "lambda",
        "account": "000000000000", "time": NOW, "region": "local", "resources": [],
        "detail": {
            "requestContext": {"requestId": "r-1", "functionArn": "arn:aws:lambda:eu-west-1:1:function:store-result:$LATEST", "approximateInvokeCount": 3},
            "requestPayload": {"detail-type": "OrderReady", "detail": {"record_id": "n-2"}},
            "responsePayload": {"errorType": "Retryable.Port", "errorMessage": "results: down"}
        }
    });
    let outcome = handler
        .handle(serde_json::from_value(record).unwrap())
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Notified);
    let stored = orders.get(&r.order.record_id).await.unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Notified);
    assert_eq!(
        stored.failure.unwrap().reason,
        FailureReason::ProcessingError
    );
    assert_eq!(notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_message_slack_refused_is_sent_by_the_retry_at_once() {
    let (orders, notifier, handler) = fixture();
    let r = fixtures::failed("n-3", FailureReason::Rejected, at(NOW));
    orders.insert(&r).await.unwrap();
    let failed = DomainEvent::Failed(OrderFailed::from_record(&r, r.failure.as_ref().unwrap()));
    notifier.fail_next(1);
    let err = handler.handle(event(&failed, at(NOW))).await.unwrap_err();
    assert!(err.error_type().starts_with("Retryable."), "{err}");
    let stored = orders.get(&r.order.record_id).await.unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Failed);
    assert_eq!(stored.claimed_until, None, "the claim is given back");
    assert_eq!(
        handler.handle(event(&failed, at(NOW))).await.unwrap(),
        Outcome::Notified
    );
    assert_eq!(notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_claim_held_by_another_delivery_is_left_alone_until_it_runs_out() {
    let (orders, notifier, handler) = fixture();
    let r = fixtures::failed("n-4", FailureReason::Rejected, at(NOW));
    let until = at("2026-01-14T12:05:00Z");
    let claimed = r
        .apply(energy_core::lifecycle::Transition::Claim { until }, at(NOW))
        .unwrap();
    orders.insert(&claimed).await.unwrap();
    let failed = DomainEvent::Failed(OrderFailed::from_record(&r, r.failure.as_ref().unwrap()));
    let outcome = handler.handle(event(&failed, at(NOW))).await.unwrap();
    assert!(matches!(outcome, Outcome::Ignored(_)), "{outcome:?}");
    assert!(notifier.sent().is_empty());
    // The claimant died: once its claim has run out, a re-sent event is acted on.
    let later = NotifySlack {
        clock: Arc::new(ManualClock::new(until)),
        orders: orders.clone(),
        notifier: notifier.clone(),
        config: Config::default(),
    };
    assert_eq!(
        later.handle(event(&failed, until)).await.unwrap(),
        Outcome::Notified
    );
    assert_eq!(notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_handler_that_gave_up_on_a_missing_order_still_reaches_the_desk() {
    let (_orders, notifier, handler) = fixture();
    let record = json!({
        "version": "0", "id": "f-2", "detail-type": LAMBDA_FAILURE, "source": "lambda",
        "account": "000000000000", "time": NOW, "region": "local", "resources": [],
        "detail": {
            "requestContext": {"requestId": "r-2", "functionArn": "arn:aws:lambda:eu-west-1:1:function:store-result", "approximateInvokeCount": 3},
            "requestPayload": {"detail-type": "OrderReady", "detail": {"record_id": "gone-1"}},
            "responsePayload": {"errorType": "NotRetryable.MissingOrder", "errorMessage": "no order gone-1 in the store"}
        }
    });
    let outcome = handler
        .handle(serde_json::from_value(record).unwrap())
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Notified);
    let sent = notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].key, "gone-1/ProcessingError");
    assert!(
        sent[0].text.contains("gone-1") && sent[0].text.contains("MissingOrder"),
        "{}",
        sent[0].text
    );
}

/// Found by a hostile run: an on-failure record of a delivery that lost to the claimant failed
/// an order whose result the claimant was storing (stored, announced, and told "failed").
#[tokio::test]
async fn an_on_failure_record_leaves_an_order_another_delivery_holds_alone() {
    let (orders, notifier, handler) = fixture();
    let r = fixtures::ready("n-5", true, at(NOW));
    let claimed = r
        .apply(
            energy_core::lifecycle::Transition::Claim {
                until: at("2026-01-14T12:05:00Z"),
            },
            at(NOW),
        )
        .unwrap();
    orders.insert(&claimed).await.unwrap();
    let record = json!({
        "version": "0", "id": "f-3", "detail-type": LAMBDA_FAILURE, "source": "lambda",
        "account": "000000000000", "time": NOW, "region": "local", "resources": [],
        "detail": {
            "requestContext": {"requestId": "r-3", "functionArn": "arn:aws:lambda:eu-west-1:1:function:store-result", "approximateInvokeCount": 3},
            "requestPayload": {"detail-type": "OrderReady", "detail": {"record_id": "n-5"}},
            "responsePayload": {"errorType": "Retryable.Port", "errorMessage": "orders: throttled"}
        }
    });
    let outcome = handler
        .handle(serde_json::from_value(record).unwrap())
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Ignored(_)), "{outcome:?}");
    let stored = orders.get(&r.order.record_id).await.unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Ready);
    assert!(notifier.sent().is_empty());
}

#[tokio::test]
async fn an_order_failed_for_another_reason_or_not_failed_is_not_told_again() {
    let (orders, notifier, handler) = fixture();
    let r = fixtures::failed("n-6", FailureReason::Rejected, at(NOW));
    orders.insert(&r).await.unwrap();
    let mut other = OrderFailed::from_record(&r, r.failure.as_ref().unwrap());
    other.reason = FailureReason::ResultsTimeout;
    let outcome = handler
        .handle(event(&DomainEvent::Failed(other), at(NOW)))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Ignored("order failed for another reason than ResultsTimeout".into())
    );
    let ready = fixtures::ready("n-7", true, at(NOW));
    orders.insert(&ready).await.unwrap();
    let failure = r.failure.clone().unwrap();
    let mut for_ready = OrderFailed::from_record(&ready, &failure);
    for_ready.order.record_id = ready.order.record_id.clone();
    let outcome = handler
        .handle(event(&DomainEvent::Failed(for_ready), at(NOW)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Ignored("order is READY".into()));
    assert!(notifier.sent().is_empty());
    // Told once; the next delivery says so.
    let failed = DomainEvent::Failed(OrderFailed::from_record(&r, r.failure.as_ref().unwrap()));
    assert_eq!(
        handler.handle(event(&failed, at(NOW))).await.unwrap(),
        Outcome::Notified
    );
    assert_eq!(
        handler.handle(event(&failed, at(NOW))).await.unwrap(),
        Outcome::Ignored("already notified".into())
    );
    assert_eq!(Outcome::Notified.to_string(), "the desk was told");
    assert_eq!(Outcome::Ignored("x".into()).to_string(), "ignored: x");
}

#[tokio::test]
async fn only_a_failed_pipeline_run_reaches_the_desk() {
    let (_orders, notifier, handler) = fixture();
    let run = |state: &str| {
        serde_json::from_value(json!({
            "version": "0", "id": "p-1", "detail-type": notify_slack::PIPELINE_STATE,
            "source": "aws.codepipeline", "account": "000000000000", "time": NOW,
            "region": "local", "resources": [],
            "detail": {"pipeline": "energy", "execution-id": "e-1", "state": state}
        }))
        .unwrap()
    };
    let ok = handler.handle(run("SUCCEEDED")).await.unwrap();
    assert!(matches!(ok, Outcome::Ignored(_)), "{ok:?}");
    assert!(notifier.sent().is_empty());
    assert_eq!(
        handler.handle(run("FAILED")).await.unwrap(),
        Outcome::Notified
    );
    let sent = notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].key, "pipeline/e-1");
}

/// The on-failure record of a round of checks names no order and fails none: its orders stay
/// due and the sweeper re-sends each on its own. Nothing to tell the desk, and no error (which
/// would send the record on to notify-slack's own failure queue).
#[tokio::test]
async fn an_on_failure_record_of_a_round_of_checks_tells_nobody_and_is_not_an_error() {
    let (_orders, notifier, handler) = fixture();
    let record = json!({
        "version": "0", "id": "f-3", "detail-type": "Lambda Function Invocation Result - Failure", "source": "lambda",
        "account": "000000000000", "time": NOW, "region": "local", "resources": [],
        "detail": {
            "requestContext": {"requestId": "r-3", "functionArn": "arn:aws:lambda:eu-west-1:1:function:evaluate-order", "approximateInvokeCount": 3},
            "requestPayload": {"detail-type": "OrderChecksDue", "detail": {"due_by": "2026-01-14T11:45:10Z"}},
            "responsePayload": {"errorType": "Retryable.Port", "errorMessage": "order store: throttled"}
        }
    });
    let outcome = handler
        .handle(serde_json::from_value(record).unwrap())
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Ignored(_)), "{outcome:?}");
    assert!(notifier.sent().is_empty());
}

/// Found by a hostile run: a desk's rule that sent its own events to store-result (a mistake
/// the README's "subscribe with one more rule" makes easy) made store-result answer
/// WrongEvent, and that failure record failed the live order the event named: the desk was
/// told it failed while the platform kept it and filled it. A failure on an event that is not
/// ours, or that the function does not take, says nothing about the order.
#[tokio::test]
async fn a_failure_on_an_event_not_ours_or_not_taken_leaves_the_order_alone() {
    let (orders, notifier, handler) = fixture();
    let r = fixtures::pending("live-1", 1, at(NOW));
    orders.insert(&r).await.unwrap();
    let record = |id: &str, source: &str, detail_type: &str, error: &str| {
        json!({
            "version": "0", "id": id, "detail-type": LAMBDA_FAILURE, "source": "lambda",
            "account": "000000000000", "time": NOW, "region": "local", "resources": [],
            "detail": {
                "requestContext": {"requestId": id, "functionArn": "arn:aws:lambda:eu-west-1:1:function:energy-dev-store-result", "approximateInvokeCount": 1},
                "requestPayload": {"source": source, "detail-type": detail_type, "detail": {"record_id": "live-1"}},
                "responsePayload": {"errorType": error, "errorMessage": "store-result does not take it"}
            }
        })
    };
    for failure in [
        record("w-1", "desk.audit", "AuditNote", "NotRetryable.WrongEvent"),
        record(
            "w-2",
            "desk.audit",
            "OrderReady",
            "NotRetryable.InvalidEvent",
        ),
        record(
            "w-3",
            "energy.orders",
            "OrderSubmitted",
            "NotRetryable.WrongEvent",
        ),
    ] {
        let outcome = handler
            .handle(serde_json::from_value(failure).unwrap())
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Ignored(_)), "{outcome:?}");
    }
    let stored = orders.get(&r.order.record_id).await.unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Pending);
    assert!(notifier.sent().is_empty());
}
