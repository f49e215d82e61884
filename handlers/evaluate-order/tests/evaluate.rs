//! evaluate-order on its own, against in-memory ports and a scripted auction platform.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use energy_core::events::{
    DomainEvent, OrderChecksDue, OrderEvaluationDue, OrderRef, OrderSubmitted, RoundCursor, Trigger,
};
use energy_core::handler::EventHandler;
use energy_core::lifecycle::{OrderState, Transition};
use energy_core::memory::fixtures::{self, event};
use energy_core::memory::{InMemoryBus, InMemoryOrderStore, InMemoryScheduler, ManualClock};
use energy_core::order::{Order, RecordId};
use energy_core::ports::{
    AuctionPlatform, OrderStore, PortError, ResultsStatus, Submission, Withdrawal,
};
use energy_core::result::{FailureReason, OrderResult};
use energy_core::retry::round_name;
use evaluate_order::{Config, EvaluateOrder, Outcome};
use jiff::Timestamp;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-01-14T08:00:00Z";
const PUBLICATION: &str = "2026-01-14T11:45:00Z";

/// A platform that answers what it is told to, in order.
#[derive(Default)]
struct Scripted {
    submissions: Mutex<VecDeque<Submission>>,
    results: Mutex<VecDeque<ResultsStatus>>,
    submitted: Mutex<Vec<Order>>,
    withdrawals: Mutex<VecDeque<Withdrawal>>,
    withdrawn: Mutex<Vec<Order>>,
}

#[async_trait]
impl AuctionPlatform for Scripted {
    async fn submit(&self, order: &Order) -> Result<Submission, PortError> {
        self.submitted.lock().unwrap().push(order.clone());
        Ok(self
            .submissions
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Submission::Accepted {
                expected_publication: Some(at(PUBLICATION)),
            }))
    }
    async fn withdraw(&self, order: &Order) -> Result<Withdrawal, PortError> {
        self.withdrawn.lock().unwrap().push(order.clone());
        Ok(self
            .withdrawals
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Withdrawal::Withdrawn))
    }
    async fn results(&self, _: &Order) -> Result<ResultsStatus, PortError> {
        Ok(self
            .results
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(ResultsStatus::NotYet {
                expected_publication: Some(at(PUBLICATION)),
            }))
    }
}

struct Fixture {
    clock: Arc<ManualClock>,
    orders: Arc<InMemoryOrderStore>,
    bus: Arc<InMemoryBus>,
    scheduler: Arc<InMemoryScheduler>,
    platform: Arc<Scripted>,
    handler: EvaluateOrder,
}

fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(at(NOW)));
    let orders = Arc::new(InMemoryOrderStore::new());
    let bus = Arc::new(InMemoryBus::new(clock.clone()));
    let scheduler = Arc::new(InMemoryScheduler::new());
    let platform = Arc::new(Scripted::default());
    let handler = EvaluateOrder {
        clock: clock.clone(),
        orders: orders.clone(),
        due: orders.clone(),
        bus: bus.clone(),
        scheduler: scheduler.clone(),
        platform: platform.clone(),
        config: Config::default(),
    };
    Fixture {
        clock,
        orders,
        bus,
        scheduler,
        platform,
        handler,
    }
}

fn submitted(record: &energy_core::lifecycle::OrderRecord) -> DomainEvent {
    DomainEvent::Submitted(OrderSubmitted {
        order: OrderRef::from(&record.order),
        mtu_count: record.order.periods.len() as u32,
        submitted_at: record.submitted_at,
    })
}

fn due(id: &str, attempt: u32) -> DomainEvent {
    DomainEvent::EvaluationDue(OrderEvaluationDue {
        record_id: RecordId::parse(id).unwrap(),
        attempt,
        due_at: at(PUBLICATION),
        trigger: Trigger::Schedule,
    })
}

async fn state(f: &Fixture, id: &str) -> (OrderState, u32) {
    let r = f
        .orders
        .get(&RecordId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    (r.state, r.attempt)
}

#[tokio::test]
async fn a_received_order_is_handed_over_with_its_first_check_scheduled_at_publication() {
    let f = fixture();
    let r = fixtures::received("e-1", at(NOW));
    f.orders.insert(&r).await.unwrap();
    let outcome = f
        .handler
        .handle(event(&submitted(&r), at(NOW)))
        .await
        .unwrap();
    let Outcome::HandedOver { first_check_at } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(first_check_at >= at(PUBLICATION));
    assert_eq!(state(&f, "e-1").await, (OrderState::Pending, 1));
    let pending = f.scheduler.pending();
    assert_eq!(pending.len(), 1);
    // The round of checks the order's check falls in: ten seconds, whole.
    assert_eq!(pending[0].name, round_name(first_check_at));
    assert_eq!(first_check_at.as_second() % 10, 0);
    assert_eq!(pending[0].at, first_check_at);
    assert_eq!(pending[0].event.due_by, first_check_at);
    assert_eq!(f.platform.submitted.lock().unwrap().len(), 1);
    assert!(outcome.to_string().starts_with("handed over; first check "));
}

#[tokio::test]
async fn the_same_event_twice_makes_one_schedule_and_one_move() {
    let f = fixture();
    let r = fixtures::received("e-2", at(NOW));
    f.orders.insert(&r).await.unwrap();
    let e = event(&submitted(&r), at(NOW));
    f.handler.handle(e.clone()).await.unwrap();
    let second = f.handler.handle(e).await.unwrap();
    assert!(matches!(second, Outcome::Ignored(_)), "{second:?}");
    assert_eq!(f.scheduler.created(), 1);
    assert_eq!(state(&f, "e-2").await, (OrderState::Pending, 1));
}

#[tokio::test]
async fn results_not_out_schedule_check_n_plus_1() {
    let f = fixture();
    f.orders
        .insert(&fixtures::pending("e-3", 1, at(PUBLICATION)))
        .await
        .unwrap();
    f.clock.set(at(PUBLICATION));
    let outcome = f
        .handler
        .handle(event(&due("e-3", 1), at(PUBLICATION)))
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Retrying { attempt: 2, .. }),
        "{outcome:?}"
    );
    assert_eq!(state(&f, "e-3").await, (OrderState::Pending, 2));
    let Outcome::Retrying { at: next, .. } = outcome else {
        unreachable!()
    };
    assert_eq!(f.scheduler.pending()[0].name, round_name(next));
    // The event for check 1 again is stale now.
    let stale = f
        .handler
        .handle(event(&due("e-3", 1), at(PUBLICATION)))
        .await
        .unwrap();
    assert!(matches!(stale, Outcome::Ignored(_)), "{stale:?}");
    assert_eq!(f.scheduler.created(), 1);
}

#[tokio::test]
async fn after_the_last_check_the_order_fails_with_results_timeout() {
    let f = fixture();
    let max = Config::default().retry.max_attempts;
    f.orders
        .insert(&fixtures::pending("e-4", max, at(PUBLICATION)))
        .await
        .unwrap();
    f.clock.set(at(PUBLICATION));
    let outcome = f
        .handler
        .handle(event(&due("e-4", max), at(PUBLICATION)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Failed(FailureReason::ResultsTimeout));
    assert_eq!(state(&f, "e-4").await.0, OrderState::Failed);
    let failed = f.bus.of_type("OrderFailed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["detail"]["reason"], "ResultsTimeout");
    assert_eq!(f.scheduler.created(), 0);
}

#[tokio::test]
async fn published_results_make_the_order_ready_and_emit_order_ready_once() {
    let f = fixture();
    let r = fixtures::pending("e-5", 1, at(PUBLICATION));
    f.orders.insert(&r).await.unwrap();
    let result = result_at(&r, 9_000, PUBLICATION);
    f.platform
        .results
        .lock()
        .unwrap()
        .push_back(ResultsStatus::Published(Box::new(result)));
    f.clock.set(at(PUBLICATION));
    let outcome = f
        .handler
        .handle(event(&due("e-5", 1), at(PUBLICATION)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Ready);
    assert_eq!(state(&f, "e-5").await.0, OrderState::Ready);
    assert_eq!(f.bus.of_type("OrderReady").len(), 1);
}

#[tokio::test]
async fn an_order_the_platform_refuses_fails_invalid_at_platform() {
    let f = fixture();
    let r = fixtures::received("e-6", at(NOW));
    f.orders.insert(&r).await.unwrap();
    f.platform
        .submissions
        .lock()
        .unwrap()
        .push_back(Submission::Refused {
            reason: "gate closed".into(),
        });
    let outcome = f
        .handler
        .handle(event(&submitted(&r), at(NOW)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Failed(FailureReason::InvalidAtPlatform));
    assert_eq!(f.bus.of_type("OrderFailed").len(), 1);
}

#[tokio::test]
async fn an_event_it_does_not_take_is_a_non_retryable_error() {
    let f = fixture();
    let ready = fixtures::ready("e-7", true, at(PUBLICATION));
    let e = event(
        &DomainEvent::Ready(energy_core::events::OrderReady {
            order: OrderRef::from(&ready.order),
            outcome: ready.result.as_ref().unwrap().outcome,
            result: ready.result.clone().unwrap(),
        }),
        at(PUBLICATION),
    );
    let err = f.handler.handle(e).await.unwrap_err();
    assert_eq!(err.error_type(), "NotRetryable.WrongEvent");
}

#[tokio::test]
async fn an_event_for_an_order_the_store_does_not_hold_is_an_error_not_a_quiet_ignore() {
    let f = fixture();
    let err = f
        .handler
        .handle(event(&due("ghost", 1), at(PUBLICATION)))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NotRetryable.MissingOrder");
}

/// A store whose order is changed by someone else (the desk's DELETE or PUT) right after the
/// handler's first read: the write the handler then makes loses.
struct ChangedAfterRead {
    inner: Arc<InMemoryOrderStore>,
    then: Mutex<Option<energy_core::lifecycle::OrderRecord>>,
}

#[async_trait]
impl OrderStore for ChangedAfterRead {
    async fn insert(
        &self,
        r: &energy_core::lifecycle::OrderRecord,
    ) -> Result<energy_core::ports::Inserted, PortError> {
        self.inner.insert(r).await
    }
    async fn insert_batch(
        &self,
        b: &[energy_core::lifecycle::OrderRecord],
    ) -> Result<Vec<energy_core::ports::Inserted>, PortError> {
        self.inner.insert_batch(b).await
    }
    async fn get(
        &self,
        id: &RecordId,
    ) -> Result<Option<energy_core::lifecycle::OrderRecord>, PortError> {
        let read = self.inner.get(id).await?;
        let change = self.then.lock().unwrap().take();
        if let (Some(next), Some(before)) = (change, &read) {
            assert_eq!(
                self.inner.replace(&next, before.expected()).await?,
                energy_core::ports::Replaced::Applied
            );
        }
        Ok(read)
    }
    async fn replace(
        &self,
        r: &energy_core::lifecycle::OrderRecord,
        e: energy_core::lifecycle::Expected,
    ) -> Result<energy_core::ports::Replaced, PortError> {
        self.inner.replace(r, e).await
    }
}

fn raced(f: &Fixture, change: energy_core::lifecycle::OrderRecord) -> EvaluateOrder {
    EvaluateOrder {
        clock: f.clock.clone(),
        orders: Arc::new(ChangedAfterRead {
            inner: f.orders.clone(),
            then: Mutex::new(Some(change)),
        }),
        due: f.orders.clone(),
        bus: f.bus.clone(),
        scheduler: f.scheduler.clone(),
        platform: f.platform.clone(),
        config: Config::default(),
    }
}

fn cancel_event(id: &str) -> DomainEvent {
    DomainEvent::EvaluationDue(OrderEvaluationDue {
        record_id: RecordId::parse(id).unwrap(),
        attempt: 0,
        due_at: at(NOW),
        trigger: Trigger::Cancel,
    })
}

#[tokio::test]
async fn a_cancelling_order_is_withdrawn_cancelled_and_announced_once() {
    let f = fixture();
    let r = fixtures::pending("x-1", 1, at(PUBLICATION))
        .apply(Transition::CancelRequested { due_at: at(NOW) }, at(NOW))
        .unwrap();
    f.orders.insert(&r).await.unwrap();
    let outcome = f
        .handler
        .handle(event(&cancel_event("x-1"), at(NOW)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Cancelled);
    assert_eq!(state(&f, "x-1").await.0, OrderState::Cancelled);
    assert_eq!(f.platform.withdrawn.lock().unwrap().len(), 1);
    assert_eq!(f.bus.of_type("OrderCancelled").len(), 1);
    // Again (a duplicate, or the order's schedule firing): nothing.
    let again = f
        .handler
        .handle(event(&cancel_event("x-1"), at(NOW)))
        .await
        .unwrap();
    assert!(matches!(again, Outcome::Ignored(_)), "{again:?}");
    let check = f
        .handler
        .handle(event(&due("x-1", 1), at(NOW)))
        .await
        .unwrap();
    assert!(matches!(check, Outcome::Ignored(_)), "{check:?}");
    assert_eq!(f.bus.of_type("OrderCancelled").len(), 1);
    assert_eq!(f.platform.withdrawn.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_withdrawal_the_platform_refuses_leaves_the_order_pending_for_its_result() {
    let f = fixture();
    let r = fixtures::pending("x-2", 1, at(PUBLICATION))
        .apply(Transition::CancelRequested { due_at: at(NOW) }, at(NOW))
        .unwrap();
    f.orders.insert(&r).await.unwrap();
    f.platform
        .withdrawals
        .lock()
        .unwrap()
        .push_back(Withdrawal::Refused {
            reason: "gate closed".into(),
        });
    let outcome = f
        .handler
        .handle(event(&cancel_event("x-2"), at(NOW)))
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::ChangeRefused(_)), "{outcome:?}");
    assert_eq!(state(&f, "x-2").await, (OrderState::Pending, 1));
    // Due when its check is, not at once: an early check would only spend an attempt.
    let due = record(&f, "x-2").await.due_at.unwrap();
    assert!(
        due >= at(PUBLICATION),
        "due {due}, before the publication time"
    );
    assert!(f.bus.of_type("OrderCancelled").is_empty());
    // The desk hears of it: one OrderChangeRefused with the platform's reason.
    let told = f.bus.of_type("OrderChangeRefused");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["detail"]["change"], "CANCEL");
    assert_eq!(told[0]["detail"]["reason"], "gate closed");
    assert_eq!(told[0]["detail"]["record_id"], "x-2");
    // Delivered again: the order is PENDING, nothing is told twice.
    let again = f
        .handler
        .handle(event(&cancel_event("x-2"), at(NOW)))
        .await
        .unwrap();
    assert!(
        matches!(again, Outcome::Retrying { .. } | Outcome::Ignored(_)),
        "{again:?}"
    );
    assert_eq!(f.bus.of_type("OrderChangeRefused").len(), 1);
}

/// The desk cancels while the hand-over is in flight (after its read, before its write): the
/// hand-over's write loses, and it withdraws what it just submitted.
#[tokio::test]
async fn a_cancel_that_lands_during_the_hand_over_leaves_nothing_at_the_platform() {
    let f = fixture();
    let r = fixtures::received("x-3", at(NOW));
    f.orders.insert(&r).await.unwrap();
    let cancelling = r
        .apply(Transition::CancelRequested { due_at: at(NOW) }, at(NOW))
        .unwrap();
    let handler = raced(&f, cancelling);
    let outcome = handler
        .handle(event(&submitted(&r), at(NOW)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::LostRace);
    assert_eq!(f.platform.submitted.lock().unwrap().len(), 1);
    assert_eq!(
        f.platform.withdrawn.lock().unwrap().len(),
        1,
        "withdrawn after the lost hand-over"
    );
    // The cancel's own event then finds the platform without it and ends the order.
    let outcome = f
        .handler
        .handle(event(&cancel_event("x-3"), at(NOW)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Cancelled);
    assert_eq!(state(&f, "x-3").await.0, OrderState::Cancelled);
}

/// The desk amends while the hand-over of the old body is in flight: whichever reached the
/// platform last, it ends up holding the new body.
#[tokio::test]
async fn an_amendment_that_lands_during_the_hand_over_leaves_the_new_body_at_the_platform() {
    let f = fixture();
    let r = fixtures::received("x-4", at(NOW));
    f.orders.insert(&r).await.unwrap();
    let mut body = r.order.clone();
    body.periods[0].steps[0].price = energy_core::money::PriceCents(12_300);
    let amended = r
        .apply(
            Transition::Amended {
                order: body.clone(),
                due_at: at(NOW),
            },
            at(NOW),
        )
        .unwrap();
    let handler = raced(&f, amended);
    let outcome = handler
        .handle(event(&submitted(&r), at(NOW)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::LostRace);
    let sent = f.platform.submitted.lock().unwrap().clone();
    assert_eq!(
        sent,
        vec![r.order.clone(), body.clone()],
        "old, then the new body"
    );
    // OrderAmended then hands the new body over as for a new order.
    let amended_event = DomainEvent::Amended(energy_core::events::OrderAmended {
        order: OrderRef::from(&body),
        mtu_count: body.periods.len() as u32,
        amended_at: at(NOW),
    });
    let outcome = f
        .handler
        .handle(event(&amended_event, at(NOW)))
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::HandedOver { .. }), "{outcome:?}");
    assert_eq!(state(&f, "x-4").await, (OrderState::Pending, 1));
    assert_eq!(f.platform.submitted.lock().unwrap().last(), Some(&body));
}

#[tokio::test]
async fn an_overdue_ready_or_failed_order_has_its_event_re_sent_and_a_fresh_one_does_not() {
    let f = fixture();
    let ready = fixtures::ready("y-1", true, at(NOW));
    let failed = fixtures::failed("y-2", FailureReason::Rejected, at(NOW));
    f.orders.insert(&ready).await.unwrap();
    f.orders.insert(&failed).await.unwrap();
    // Due at NOW: overdue now.
    let outcome = f
        .handler
        .handle(event(&due("y-1", 1), at(NOW)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Resent("OrderReady"));
    let outcome = f
        .handler
        .handle(event(&due("y-2", 1), at(NOW)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Resent("OrderFailed"));
    assert_eq!(f.bus.of_type("OrderReady").len(), 1);
    assert_eq!(f.bus.of_type("OrderFailed").len(), 1);
    // Re-sent: due again only after the redelivery delay.
    let again = f
        .handler
        .handle(event(&due("y-1", 1), at(NOW)))
        .await
        .unwrap();
    assert!(matches!(again, Outcome::Ignored(_)), "{again:?}");
    assert_eq!(f.bus.of_type("OrderReady").len(), 1);
}

#[tokio::test]
async fn a_hand_over_that_lost_to_another_hand_over_of_the_same_body_submits_nothing_more() {
    let f = fixture();
    let r = fixtures::received("x-5", at(NOW));
    f.orders.insert(&r).await.unwrap();
    let other = r
        .apply(
            Transition::HandedOver {
                due_at: at(PUBLICATION),
            },
            at(NOW),
        )
        .unwrap();
    let handler = raced(&f, other);
    let outcome = handler
        .handle(event(&submitted(&r), at(NOW)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::LostRace);
    assert_eq!(f.platform.submitted.lock().unwrap().len(), 1);
    assert!(f.platform.withdrawn.lock().unwrap().is_empty());
}

/// A result for `r` at `price` cents, everything offered taken, published at `published`.
fn result_at(r: &energy_core::lifecycle::OrderRecord, price: i64, published: &str) -> OrderResult {
    let fills: Vec<_> = r
        .order
        .periods
        .iter()
        .map(|p| {
            (
                Some(energy_core::money::PriceCents(price)),
                p.offered().unwrap(),
            )
        })
        .collect();
    OrderResult::from_fills(&r.order, &fills, at(published)).unwrap()
}

fn script(f: &Fixture, answers: Vec<ResultsStatus>) {
    f.platform.results.lock().unwrap().extend(answers);
}

fn preliminary_answer(result: &OrderResult) -> ResultsStatus {
    ResultsStatus::Preliminary {
        result: Box::new(result.clone()),
        expected_final: Some(at(FINAL)),
    }
}

const FINAL: &str = "2026-01-14T12:00:00Z";

/// Runs the check the order is waiting for, at `now`.
/// A check at `now`, or when the order is due if that is later (an order is not checked early).
async fn run_check(f: &Fixture, id: &str, now: &str) -> Outcome {
    let due_at = record(f, id).await.due_at;
    let now = due_at.map_or(at(now), |d| d.max(at(now)));
    f.clock.set(now);
    let attempt = state(f, id).await.1;
    f.handler
        .handle(event(&due(id, attempt), now))
        .await
        .unwrap()
}

async fn record(f: &Fixture, id: &str) -> energy_core::lifecycle::OrderRecord {
    f.orders
        .get(&RecordId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_preliminary_result_is_kept_and_announced_once_and_the_final_one_acted_on_once() {
    let f = fixture();
    let r = fixtures::pending("pre-1", 1, at(PUBLICATION));
    f.orders.insert(&r).await.unwrap();
    let first = result_at(&r, 9_000, PUBLICATION);
    let last = result_at(&r, 9_000, FINAL);
    script(
        &f,
        vec![
            preliminary_answer(&first),
            preliminary_answer(&first),
            ResultsStatus::Published(Box::new(last.clone())),
        ],
    );
    let outcome = run_check(&f, "pre-1", PUBLICATION).await;
    assert!(
        matches!(
            outcome,
            Outcome::Preliminary {
                withdrawn: false,
                attempt: 2,
                ..
            }
        ),
        "{outcome:?}"
    );
    let kept = record(&f, "pre-1").await;
    assert_eq!(kept.standing_preliminary(), Some(&first));
    assert!(kept.unannounced_preliminary().is_none(), "announced");
    assert_eq!(
        f.scheduler.pending().last().unwrap().at.as_second() / 60,
        at(FINAL).as_second() / 60,
        "the next check waits for the final result"
    );
    let announced = f.bus.of_type("OrderPreliminaryResult");
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0]["detail"]["status"], "PUBLISHED");
    assert_eq!(
        announced[0]["detail"]["result"],
        serde_json::to_value(&first).unwrap()
    );
    // The same preliminary result again: an ordinary retry, nothing told twice.
    let again = run_check(&f, "pre-1", "2026-01-14T11:50:00Z").await;
    assert!(
        matches!(again, Outcome::Retrying { attempt: 3, .. }),
        "{again:?}"
    );
    assert_eq!(f.bus.of_type("OrderPreliminaryResult").len(), 1);
    assert_eq!(run_check(&f, "pre-1", FINAL).await, Outcome::Ready);
    let done = record(&f, "pre-1").await;
    assert_eq!(done.result.as_ref(), Some(&last), "the final result");
    assert_eq!(done.standing_preliminary(), Some(&first), "both kept");
    assert_eq!(f.bus.of_type("OrderReady").len(), 1);
    assert_eq!(
        f.bus.of_type("OrderReady")[0]["detail"]["result"]["published_at"],
        FINAL
    );
}

#[tokio::test]
async fn a_withdrawn_preliminary_result_is_told_and_a_different_final_one_is_the_result() {
    let f = fixture();
    let r = fixtures::pending("pre-2", 1, at(PUBLICATION));
    f.orders.insert(&r).await.unwrap();
    let first = result_at(&r, 9_000, PUBLICATION);
    let decoupled = result_at(&r, 15_000, "2026-01-14T13:40:00Z");
    script(
        &f,
        vec![
            preliminary_answer(&first),
            ResultsStatus::NotYet {
                expected_publication: Some(at("2026-01-14T13:40:00Z")),
            },
            ResultsStatus::NotYet {
                expected_publication: Some(at("2026-01-14T13:40:00Z")),
            },
            ResultsStatus::Published(Box::new(decoupled.clone())),
        ],
    );
    run_check(&f, "pre-2", PUBLICATION).await;
    let withdrawn = run_check(&f, "pre-2", FINAL).await;
    assert!(
        matches!(
            withdrawn,
            Outcome::Preliminary {
                withdrawn: true,
                ..
            }
        ),
        "{withdrawn:?}"
    );
    let told = f.bus.of_type("OrderPreliminaryResult");
    assert_eq!(told.len(), 2);
    assert_eq!(told[1]["detail"]["status"], "WITHDRAWN");
    // When the check found it withdrawn: its round, just after the final publication.
    let withdrawn_at: jiff::Timestamp = told[1]["detail"]["withdrawn_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        withdrawn_at >= at(FINAL) && withdrawn_at < at(FINAL) + jiff::SignedDuration::from_mins(1),
        "{withdrawn_at}"
    );
    assert_eq!(
        f.scheduler.pending().last().unwrap().at.as_second() / 60,
        at("2026-01-14T13:40:00Z").as_second() / 60,
        "waits for the decoupled zone's final result"
    );
    // Still nothing: no third announcement.
    let nothing = run_check(&f, "pre-2", "2026-01-14T12:30:00Z").await;
    assert!(matches!(nothing, Outcome::Retrying { .. }), "{nothing:?}");
    assert_eq!(f.bus.of_type("OrderPreliminaryResult").len(), 2);
    assert_eq!(
        run_check(&f, "pre-2", "2026-01-14T13:40:00Z").await,
        Outcome::Ready
    );
    let done = record(&f, "pre-2").await;
    assert_eq!(done.result.as_ref(), Some(&decoupled));
    assert_ne!(done.result.as_ref(), Some(&first));
    let kept = done.preliminary.unwrap();
    assert_eq!(
        (kept.result, kept.withdrawn_at),
        (first, Some(withdrawn_at))
    );
    let ready = f.bus.of_type("OrderReady");
    assert_eq!(ready.len(), 1);
    assert_eq!(
        ready[0]["detail"]["result"],
        serde_json::to_value(&decoupled).unwrap()
    );
}

#[tokio::test]
async fn a_final_result_that_never_follows_the_preliminary_one_fails_as_a_timeout() {
    let f = fixture();
    let max = Config::default().retry.max_attempts;
    let r = fixtures::pending("pre-3", max, at(PUBLICATION));
    f.orders.insert(&r).await.unwrap();
    let first = result_at(&r, 9_000, PUBLICATION);
    script(&f, vec![preliminary_answer(&first)]);
    let outcome = run_check(&f, "pre-3", PUBLICATION).await;
    assert_eq!(outcome, Outcome::Failed(FailureReason::ResultsTimeout));
    let failed = f.bus.of_type("OrderFailed");
    assert_eq!(failed.len(), 1);
    let message = failed[0]["detail"]["message"].as_str().unwrap();
    assert!(
        message.contains("preliminary auction results but no final ones"),
        "{message}"
    );
    assert_eq!(f.bus.of_type("OrderReady").len(), 0);
}

/// Checks `id` at the preliminary publication with the crash point after the preliminary step
/// armed: the handler stops there, as a killed process would.
async fn crash_at_the_preliminary_step(f: &Fixture, id: &str) {
    energy_core::crash::arm(energy_core::crash::EVALUATE_AFTER_PRELIMINARY);
    f.clock.set(at(PUBLICATION));
    let handler = EvaluateOrder {
        clock: f.clock.clone(),
        orders: f.orders.clone(),
        due: f.orders.clone(),
        bus: f.bus.clone(),
        scheduler: f.scheduler.clone(),
        platform: f.platform.clone(),
        config: Config::default(),
    };
    let delivery = event(&due(id, 1), at(PUBLICATION));
    let crashed = tokio::spawn(async move { handler.handle(delivery).await }).await;
    assert!(
        crashed.is_err_and(|e| e.is_panic()),
        "the armed point stops the handler"
    );
}

#[tokio::test]
async fn a_crash_between_keeping_a_preliminary_result_and_telling_it_is_made_good_by_the_next_check()
 {
    let f = fixture();
    let r = fixtures::pending("pre-4", 1, at(PUBLICATION));
    f.orders.insert(&r).await.unwrap();
    let first = result_at(&r, 9_000, PUBLICATION);
    script(
        &f,
        vec![preliminary_answer(&first), preliminary_answer(&first)],
    );
    crash_at_the_preliminary_step(&f, "pre-4").await;
    let kept = record(&f, "pre-4").await;
    assert!(kept.unannounced_preliminary().is_some());
    assert_eq!(f.bus.of_type("OrderPreliminaryResult").len(), 0);
    // The next check tells it first, then checks.
    let outcome = run_check(&f, "pre-4", "2026-01-14T12:01:00Z").await;
    assert!(matches!(outcome, Outcome::Retrying { .. }), "{outcome:?}");
    assert_eq!(f.bus.of_type("OrderPreliminaryResult").len(), 1);
    assert!(
        record(&f, "pre-4")
            .await
            .unannounced_preliminary()
            .is_none()
    );
}

/// A crash in the middle of the preliminary step, then the platform withdraws the result before
/// the next check: the desk still hears it published, then withdrawn, and the order keeps it.
/// (Telling first and keeping after, in one write, lost the withdrawal: the next check found
/// nothing kept to withdraw.)
#[tokio::test]
async fn a_crash_at_the_preliminary_step_then_a_withdrawal_tells_both() {
    let f = fixture();
    let r = fixtures::pending("pre-5", 1, at(PUBLICATION));
    f.orders.insert(&r).await.unwrap();
    let first = result_at(&r, 9_000, PUBLICATION);
    let later = at("2026-01-14T13:40:00Z");
    script(
        &f,
        vec![
            preliminary_answer(&first),
            ResultsStatus::NotYet {
                expected_publication: Some(later),
            },
        ],
    );
    crash_at_the_preliminary_step(&f, "pre-5").await;
    run_check(&f, "pre-5", FINAL).await;
    let told: Vec<serde_json::Value> = f
        .bus
        .of_type("OrderPreliminaryResult")
        .iter()
        .map(|e| e["detail"]["status"].clone())
        .collect();
    assert_eq!(
        told,
        ["PUBLISHED", "WITHDRAWN"],
        "published, then withdrawn"
    );
    let kept = record(&f, "pre-5").await.preliminary.expect("kept");
    assert_eq!(kept.result, first);
    assert!(kept.withdrawn_at.is_some());
}

#[tokio::test]
async fn an_amended_order_has_every_check_for_its_new_body() {
    let f = fixture();
    let max = Config::default().retry.max_attempts;
    // An order that used most of its checks, then amended: RECEIVED again at attempt max - 1.
    let mut r = fixtures::pending("am-1", max - 1, at(PUBLICATION));
    let mut body = r.order.clone();
    body.periods[0].steps[0].price = energy_core::money::PriceCents(1_234);
    r = r
        .apply(
            Transition::Amended {
                order: body,
                due_at: at(NOW),
            },
            at(NOW),
        )
        .unwrap();
    f.orders.insert(&r).await.unwrap();
    f.handler
        .handle(event(&submitted(&r), at(NOW)))
        .await
        .unwrap();
    // Results late: every check but the last retries.
    for _ in 1..max {
        let outcome = run_check(&f, "am-1", PUBLICATION).await;
        assert!(matches!(outcome, Outcome::Retrying { .. }), "{outcome:?}");
    }
    assert_eq!(
        run_check(&f, "am-1", PUBLICATION).await,
        Outcome::Failed(FailureReason::ResultsTimeout)
    );
    let failed = f.bus.of_type("OrderFailed");
    assert_eq!(failed[0]["detail"]["attempts"], max);
}

/// Found by a hostile run: an amendment whose hand-over reached the platform after the gate
/// failed the order (InvalidAtPlatform) while the previous body stayed in the auction and
/// cleared. The previous body stands: the order goes back to it, PENDING, and the desk is told.
#[tokio::test]
async fn an_amendment_the_platform_refuses_leaves_the_previous_body_in_the_auction_and_tells_the_desk()
 {
    let f = fixture();
    let before = fixtures::pending("am-2", 1, at(PUBLICATION));
    let old_body = before.order.clone();
    let mut new_body = old_body.clone();
    new_body.periods[0].steps[0].price = energy_core::money::PriceCents(1_234);
    let amended = before
        .apply(
            Transition::Amended {
                order: new_body,
                due_at: at(NOW),
            },
            at(NOW),
        )
        .unwrap();
    f.orders.insert(&amended).await.unwrap();
    f.platform
        .submissions
        .lock()
        .unwrap()
        .push_back(Submission::Refused {
            reason: "the SDAC gate closed".into(),
        });
    let outcome = f
        .handler
        .handle(event(&submitted(&amended), at(NOW)))
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::ChangeRefused(_)), "{outcome:?}");
    let r = record(&f, "am-2").await;
    assert_eq!(r.state, OrderState::Pending);
    assert_eq!(r.order, old_body, "the body the platform holds");
    assert_eq!(r.held_body, None);
    assert_eq!(
        r.attempt, 1,
        "waits for the check the old body's hand-over scheduled"
    );
    assert!(f.bus.of_type("OrderFailed").is_empty(), "not a failure");
    let told = f.bus.of_type("OrderChangeRefused");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["detail"]["change"], "AMEND");
    assert_eq!(told[0]["detail"]["reason"], "the SDAC gate closed");
    // A fresh order refused at its first hand-over still fails: nothing of it is in the auction.
    let fresh = fixtures::received("am-3", at(NOW));
    f.orders.insert(&fresh).await.unwrap();
    f.platform
        .submissions
        .lock()
        .unwrap()
        .push_back(Submission::Refused {
            reason: "price out of range".into(),
        });
    let outcome = f
        .handler
        .handle(event(&submitted(&fresh), at(NOW)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Failed(FailureReason::InvalidAtPlatform));
}

/// Found by a hostile run: when no check fell between the withdrawal of a preliminary result
/// and a different final one, the order kept the preliminary as if it stood and the desk never
/// heard it was withdrawn. A final result that does not confirm it withdraws it.
#[tokio::test]
async fn a_final_result_that_does_not_confirm_the_preliminary_one_withdraws_it() {
    let f = fixture();
    let r = fixtures::pending("pre-5", 1, at(PUBLICATION));
    f.orders.insert(&r).await.unwrap();
    let first = result_at(&r, 9_000, PUBLICATION);
    let other = result_at(&r, 15_000, "2026-01-14T13:40:00Z");
    script(
        &f,
        vec![
            preliminary_answer(&first),
            ResultsStatus::Published(Box::new(other.clone())),
        ],
    );
    run_check(&f, "pre-5", PUBLICATION).await;
    assert_eq!(
        run_check(&f, "pre-5", "2026-01-14T13:40:00Z").await,
        Outcome::Ready
    );
    let done = record(&f, "pre-5").await;
    let kept = done.preliminary.unwrap();
    assert_eq!(kept.withdrawn_at, Some(at("2026-01-14T13:40:00Z")));
    let told = f.bus.of_type("OrderPreliminaryResult");
    assert_eq!(told.len(), 2);
    assert_eq!(told[1]["detail"]["status"], "WITHDRAWN");
    assert_eq!(f.bus.of_type("OrderReady").len(), 1);
    // A final result that confirms it (only its publication time differs) leaves it standing.
    let g = fixture();
    let r = fixtures::pending("pre-6", 1, at(PUBLICATION));
    g.orders.insert(&r).await.unwrap();
    let first = result_at(&r, 9_000, PUBLICATION);
    let confirmed = result_at(&r, 9_000, FINAL);
    script(
        &g,
        vec![
            preliminary_answer(&first),
            ResultsStatus::Published(Box::new(confirmed)),
        ],
    );
    run_check(&g, "pre-6", PUBLICATION).await;
    assert_eq!(run_check(&g, "pre-6", FINAL).await, Outcome::Ready);
    assert_eq!(
        record(&g, "pre-6").await.preliminary.unwrap().withdrawn_at,
        None
    );
    assert_eq!(g.bus.of_type("OrderPreliminaryResult").len(), 1);
}

fn round(due_by: &str) -> DomainEvent {
    DomainEvent::ChecksDue(OrderChecksDue {
        due_by: at(due_by),
        after: None,
    })
}

/// The round the fixtures' orders, due at the publication, fall in: it ends then.
const ROUND_END: &str = PUBLICATION;

/// Many orders of one auction: one schedule a round, not one an order.
#[tokio::test]
async fn the_orders_of_one_auction_share_a_few_round_schedules() {
    let f = fixture();
    for i in 0..300 {
        let r = fixtures::received(&format!("share-{i}"), at(NOW));
        f.orders.insert(&r).await.unwrap();
        f.handler
            .handle(event(&submitted(&r), at(NOW)))
            .await
            .unwrap();
    }
    let rounds = f.scheduler.pending();
    // The publication plus up to 30 s of spread, in rounds of 10 s.
    assert!(
        (1..=4).contains(&rounds.len()),
        "{} schedules for 300 orders: {rounds:?}",
        rounds.len()
    );
    assert_eq!(f.scheduler.created(), rounds.len());
}

/// A round checks every PENDING order due by its end, and leaves alone the orders that wait
/// for an event (RECEIVED, READY: the sweeper's part) and those due later.
#[tokio::test]
async fn a_round_checks_the_pending_orders_due_by_its_end_and_leaves_the_rest() {
    let f = fixture();
    let end = at(ROUND_END);
    for id in ["due-a", "due-b"] {
        f.orders
            .insert(&fixtures::pending(id, 1, at(PUBLICATION)))
            .await
            .unwrap();
    }
    f.orders
        .insert(&fixtures::pending("later", 1, at("2026-01-14T11:45:01Z")))
        .await
        .unwrap();
    // Due in the round before: that round's, not this one's (rounds that overlapped checked
    // the same orders at once).
    f.orders
        .insert(&fixtures::pending("earlier", 1, at("2026-01-14T11:44:50Z")))
        .await
        .unwrap();
    let received = fixtures::received("waits-for-event", at(PUBLICATION));
    f.orders.insert(&received).await.unwrap();
    let ready = fixtures::ready("ready", true, at(PUBLICATION));
    f.orders.insert(&ready).await.unwrap();
    f.clock.set(end);
    let outcome = f
        .handler
        .handle(event(&round(ROUND_END), end))
        .await
        .unwrap();
    let Outcome::Round(report) = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        (report.checked, report.failed, report.continued),
        (2, 0, false),
        "{outcome}"
    );
    // Results not out: each checked order waits for its next check, in a round of its own.
    for id in ["due-a", "due-b"] {
        assert_eq!(state(&f, id).await, (OrderState::Pending, 2), "{id}");
    }
    assert_eq!(state(&f, "later").await, (OrderState::Pending, 1));
    assert_eq!(state(&f, "earlier").await, (OrderState::Pending, 1));
    assert_eq!(state(&f, "waits-for-event").await.0, OrderState::Received);
    assert_eq!(state(&f, "ready").await.0, OrderState::Ready);
    assert!(f.bus.of_type("OrderReady").is_empty(), "nothing re-sent");
    assert!(
        f.platform.submitted.lock().unwrap().is_empty(),
        "nothing handed over"
    );
    assert!(outcome.to_string().starts_with("round of checks due by "));
    // The same round again (Scheduler delivers at least once): nothing is checked twice.
    let again = f
        .handler
        .handle(event(&round(ROUND_END), end))
        .await
        .unwrap();
    let Outcome::Round(again) = again else {
        panic!("{again:?}");
    };
    assert_eq!(again.checked, 0);
    assert_eq!(state(&f, "due-a").await, (OrderState::Pending, 2));
}

/// Published results found by a round: READY and `OrderReady`, as a check of one order.
#[tokio::test]
async fn a_round_that_finds_results_makes_its_orders_ready() {
    let f = fixture();
    let r = fixtures::pending("round-ready", 1, at(PUBLICATION));
    f.orders.insert(&r).await.unwrap();
    let result = result_at(&r, 9_000, PUBLICATION);
    f.platform
        .results
        .lock()
        .unwrap()
        .push_back(ResultsStatus::Published(Box::new(result)));
    f.clock.set(at(ROUND_END));
    f.handler
        .handle(event(&round(ROUND_END), at(ROUND_END)))
        .await
        .unwrap();
    assert_eq!(state(&f, "round-ready").await.0, OrderState::Ready);
    assert_eq!(f.bus.of_type("OrderReady").len(), 1);
}

/// A round larger than one invocation's share goes on in another, from where the first
/// stopped: every order is checked once.
#[tokio::test]
async fn a_round_too_large_for_one_invocation_goes_on_from_where_it_stopped() {
    let mut f = fixture();
    f.handler.config.round_limit = 5;
    f.handler.config.round_page = 2;
    f.handler.config.round_concurrency = 3;
    for i in 0..13 {
        f.orders
            .insert(&fixtures::pending(
                &format!("big-{i:02}"),
                1,
                at(PUBLICATION),
            ))
            .await
            .unwrap();
    }
    f.clock.set(at(ROUND_END));
    let mut delivery = round(ROUND_END);
    let mut invocations = 0;
    let mut checked = 0;
    loop {
        invocations += 1;
        assert!(invocations < 10, "the round must end");
        let outcome = f
            .handler
            .handle(event(&delivery, at(ROUND_END)))
            .await
            .unwrap();
        let Outcome::Round(report) = outcome else {
            panic!("{outcome:?}");
        };
        checked += report.checked;
        if !report.continued {
            break;
        }
        let rest = f.bus.of_type("OrderChecksDue");
        let last = rest.last().expect("the rest of the round is on the bus");
        delivery = DomainEvent::parse("OrderChecksDue", last["detail"].clone()).unwrap();
        let DomainEvent::ChecksDue(OrderChecksDue {
            after: Some(RoundCursor { .. }),
            ..
        }) = &delivery
        else {
            panic!("a continuation says where it goes on: {delivery:?}");
        };
    }
    assert_eq!(checked, 13);
    assert!(
        invocations >= 3,
        "{invocations} invocations of at most 5 or 6 entries"
    );
    for i in 0..13 {
        assert_eq!(
            state(&f, &format!("big-{i:02}")).await,
            (OrderState::Pending, 2),
            "big-{i:02} checked once"
        );
    }
}

/// A platform that fails for one order.
struct FailsFor {
    inner: Arc<Scripted>,
    broken: RecordId,
}

#[async_trait]
impl AuctionPlatform for FailsFor {
    async fn submit(&self, order: &Order) -> Result<Submission, PortError> {
        self.inner.submit(order).await
    }
    async fn withdraw(&self, order: &Order) -> Result<Withdrawal, PortError> {
        self.inner.withdraw(order).await
    }
    async fn results(&self, order: &Order) -> Result<ResultsStatus, PortError> {
        if order.record_id == self.broken {
            return Err(PortError::transient("platform", "connection reset"));
        }
        self.inner.results(order).await
    }
}

/// One order's failed check does not stop the round; that order stays due, for the sweeper.
#[tokio::test]
async fn a_failed_check_leaves_its_order_due_and_the_round_goes_on() {
    let mut f = fixture();
    f.handler.platform = Arc::new(FailsFor {
        inner: f.platform.clone(),
        broken: RecordId::parse("broken").unwrap(),
    });
    for id in ["fine-1", "broken", "fine-2"] {
        f.orders
            .insert(&fixtures::pending(id, 1, at(PUBLICATION)))
            .await
            .unwrap();
    }
    f.clock.set(at(ROUND_END));
    let outcome = f
        .handler
        .handle(event(&round(ROUND_END), at(ROUND_END)))
        .await
        .unwrap();
    let Outcome::Round(report) = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((report.checked, report.failed), (2, 1), "{outcome}");
    assert_eq!(state(&f, "broken").await, (OrderState::Pending, 1));
    let broken = f
        .orders
        .get(&RecordId::parse("broken").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(broken.due_at, Some(at(PUBLICATION)), "still due");
    assert!(outcome.to_string().contains("1 failed"));
}

/// An invocation that has run for its budget takes no further page: the rest of the round
/// goes on in another, well inside the function's timeout.
#[tokio::test]
async fn a_round_that_has_run_for_its_budget_goes_on_in_another_invocation() {
    let mut f = fixture();
    f.handler.config.round_budget = std::time::Duration::ZERO;
    f.handler.config.round_page = 4;
    for i in 0..10 {
        f.orders
            .insert(&fixtures::pending(&format!("slow-{i}"), 1, at(PUBLICATION)))
            .await
            .unwrap();
    }
    f.clock.set(at(ROUND_END));
    let outcome = f
        .handler
        .handle(event(&round(ROUND_END), at(ROUND_END)))
        .await
        .unwrap();
    let Outcome::Round(report) = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((report.checked, report.continued), (4, true), "{outcome}");
    assert!(
        outcome
            .to_string()
            .ends_with("goes on in another invocation")
    );
    assert_eq!(f.bus.of_type("OrderChecksDue").len(), 1);
}

/// Found by a hostile run: `OrderEvaluationDue` events for a PENDING order's current attempt,
/// sent before its check was due (forged, or a consumer's mistake), each made a check, and a
/// burst of them spent all its checks within seconds: the order failed with ResultsTimeout a
/// day before its gate while the platform kept it. An order is checked when it is due.
#[tokio::test]
async fn an_evaluation_event_before_the_order_is_due_checks_nothing() {
    let f = fixture();
    f.orders
        .insert(&fixtures::pending("early", 1, at(PUBLICATION)))
        .await
        .unwrap();
    for _ in 0..20 {
        let outcome = f
            .handler
            .handle(event(&due("early", 1), at(NOW)))
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Ignored(_)), "{outcome:?}");
    }
    assert_eq!(state(&f, "early").await, (OrderState::Pending, 1));
    assert_eq!(f.scheduler.created(), 0);
    // Due: checked.
    f.clock.set(at(PUBLICATION));
    let outcome = f
        .handler
        .handle(event(&due("early", 1), at(PUBLICATION)))
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Retrying { attempt: 2, .. }),
        "{outcome:?}"
    );
}

/// A platform whose results are never out yet, answered after a delay per order (ms), and for
/// `waiter` only once it was asked about `awaited` (within two seconds, or it fails).
#[derive(Default)]
struct Paced {
    delays: std::collections::HashMap<&'static str, u64>,
    waits: Option<(&'static str, &'static str)>,
    asked: tokio::sync::watch::Sender<bool>,
}

#[async_trait]
impl AuctionPlatform for Paced {
    async fn submit(&self, _: &Order) -> Result<Submission, PortError> {
        Err(PortError::permanent("platform", "not in this test"))
    }
    async fn results(&self, order: &Order) -> Result<ResultsStatus, PortError> {
        let id = order.record_id.as_str();
        if let Some(&ms) = self.delays.get(id) {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if let Some((waiter, awaited)) = self.waits {
            if id == awaited {
                self.asked.send_replace(true);
            }
            if id == waiter {
                let mut asked = self.asked.subscribe();
                let waited = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    asked.wait_for(|asked| *asked),
                )
                .await;
                if waited.is_err() {
                    return Err(PortError::transient(
                        "platform",
                        format!("{awaited} was not checked meanwhile"),
                    ));
                }
            }
        }
        Ok(ResultsStatus::NotYet {
            expected_publication: None,
        })
    }
    async fn withdraw(&self, _: &Order) -> Result<Withdrawal, PortError> {
        Err(PortError::permanent("platform", "not in this test"))
    }
}

/// `n` PENDING orders `<prefix>-<i>`, due at the publication.
async fn pending_orders(f: &Fixture, prefix: &str, n: usize) {
    for i in 0..n {
        f.orders
            .insert(&fixtures::pending(
                &format!("{prefix}-{i}"),
                1,
                at(PUBLICATION),
            ))
            .await
            .unwrap();
    }
}

/// A round reads its next page while the last checks of the page before are still running: a
/// slow check does not hold up the orders after it. Here the first order's check waits for the
/// third order's, which is on the second page.
#[tokio::test]
async fn a_slow_check_does_not_hold_up_the_next_page_of_its_round() {
    let mut f = fixture();
    f.handler.config.round_page = 2;
    f.handler.config.round_concurrency = 3;
    f.handler.platform = Arc::new(Paced {
        waits: Some(("page-0", "page-2")),
        ..Paced::default()
    });
    pending_orders(&f, "page", 4).await;
    f.clock.set(at(ROUND_END));
    let outcome = f
        .handler
        .handle(event(&round(ROUND_END), at(ROUND_END)))
        .await
        .unwrap();
    let Outcome::Round(report) = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        (report.checked, report.failed, report.continued),
        (4, 0, false),
        "{outcome}"
    );
    for i in 0..4 {
        assert_eq!(
            state(&f, &format!("page-{i}")).await,
            (OrderState::Pending, 2),
            "page-{i} checked once"
        );
    }
}

/// Past its first page and its budget, an invocation starts no further check, even in the
/// middle of a page: the rest goes on from the last order taken, and every order of the round
/// is checked once. (Reading the next page while the last checks of the one before ran once
/// let an invocation take a whole page more after its budget.)
#[tokio::test]
async fn past_its_budget_an_invocation_starts_no_further_check() {
    let mut f = fixture();
    f.handler.config.round_page = 2;
    f.handler.config.round_concurrency = 2;
    f.handler.config.round_budget = std::time::Duration::from_millis(100);
    // slow-1 ends after 90 ms, just inside the budget, when the third page is read; slow-3 and
    // slow-4 run past it. slow-5 would start at 200 ms, past the budget.
    f.handler.platform = Arc::new(Paced {
        delays: [("slow-1", 90), ("slow-3", 200), ("slow-4", 200)].into(),
        ..Paced::default()
    });
    pending_orders(&f, "slow", 8).await;
    f.clock.set(at(ROUND_END));
    let mut delivery = round(ROUND_END);
    let mut checked = Vec::new();
    for invocation in 0.. {
        assert!(invocation < 10, "the round must end");
        let outcome = f
            .handler
            .handle(event(&delivery, at(ROUND_END)))
            .await
            .unwrap();
        let Outcome::Round(report) = outcome else {
            panic!("{outcome:?}");
        };
        checked.push(report.checked);
        if invocation == 0 {
            // On a loaded machine the budget may pass sooner, never later.
            assert!(
                report.checked <= 5 && report.continued,
                "the first invocation checked {} and continued {}",
                report.checked,
                report.continued
            );
        }
        if !report.continued {
            break;
        }
        let rest = f.bus.of_type("OrderChecksDue");
        delivery =
            DomainEvent::parse("OrderChecksDue", rest.last().unwrap()["detail"].clone()).unwrap();
    }
    assert_eq!(checked.iter().sum::<usize>(), 8, "{checked:?}");
    for i in 0..8 {
        assert_eq!(
            state(&f, &format!("slow-{i}")).await,
            (OrderState::Pending, 2),
            "slow-{i} checked once"
        );
    }
}
