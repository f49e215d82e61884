//! evaluate-order on its own, against in-memory ports and a scripted auction platform.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use energy_core::events::{DomainEvent, OrderEvaluationDue, OrderRef, OrderSubmitted, Trigger};
use energy_core::handler::EventHandler;
use energy_core::lifecycle::OrderState;
use energy_core::memory::fixtures::{self, event};
use energy_core::memory::{InMemoryBus, InMemoryOrderStore, InMemoryScheduler, ManualClock};
use energy_core::order::{Order, RecordId};
use energy_core::ports::{AuctionPlatform, OrderStore, PortError, ResultsStatus, Submission};
use energy_core::result::{FailureReason, OrderResult};
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
    assert_eq!(pending[0].name, "e-1-1");
    assert_eq!(pending[0].at, first_check_at);
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
    assert_eq!(f.scheduler.pending()[0].name, "e-3-2");
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
    let fills: Vec<_> = r
        .order
        .periods
        .iter()
        .map(|p| {
            (
                Some(energy_core::money::PriceCents(9_000)),
                p.offered().unwrap(),
            )
        })
        .collect();
    let result = OrderResult::from_fills(&r.order, &fills, at(PUBLICATION)).unwrap();
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
