//! store-result on its own, against in-memory ports.

use std::sync::Arc;

use energy_core::events::{DomainEvent, OrderReady, OrderRef};
use energy_core::handler::EventHandler;
use energy_core::lifecycle::{OrderRecord, OrderState};
use energy_core::memory::fixtures::{self, event};
use energy_core::memory::{InMemoryBus, InMemoryOrderStore, InMemoryResults, ManualClock};
use energy_core::ports::OrderStore;
use store_result::{Config, Outcome, StoreResult};

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-01-14T11:46:00Z";

struct Fixture {
    orders: Arc<InMemoryOrderStore>,
    bus: Arc<InMemoryBus>,
    results: Arc<InMemoryResults>,
    handler: StoreResult,
}

fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(at(NOW)));
    let orders = Arc::new(InMemoryOrderStore::new());
    let bus = Arc::new(InMemoryBus::new(clock.clone()));
    let results = Arc::new(InMemoryResults::new());
    let handler = StoreResult {
        clock,
        orders: orders.clone(),
        bus: bus.clone(),
        results: results.clone(),
        config: Config::default(),
    };
    Fixture {
        orders,
        bus,
        results,
        handler,
    }
}

fn ready_event(r: &OrderRecord) -> energy_core::handler::Event {
    let result = r.result.clone().unwrap();
    event(
        &DomainEvent::Ready(OrderReady {
            order: OrderRef::from(&r.order),
            outcome: result.outcome,
            result,
        }),
        at(NOW),
    )
}

async fn state(f: &Fixture, r: &OrderRecord) -> OrderState {
    f.orders
        .get(&r.order.record_id)
        .await
        .unwrap()
        .unwrap()
        .state
}

#[tokio::test]
async fn an_accepted_result_is_written_under_its_key_announced_and_stored_once() {
    let f = fixture();
    let r = fixtures::ready("s-1", true, at(NOW));
    f.orders.insert(&r).await.unwrap();
    let outcome = f.handler.handle(ready_event(&r)).await.unwrap();
    let key = "results/2026-01-15/DE-LU/s-1.json".to_string();
    assert_eq!(outcome, Outcome::Stored { key: key.clone() });
    assert_eq!(state(&f, &r).await, OrderState::Stored);
    let objects = f.results.objects();
    let body: serde_json::Value = serde_json::from_slice(&objects[&key]).unwrap();
    assert_eq!(body["record_id"], "s-1");
    assert_eq!(body["outcome"], "ACCEPTED");
    let stored = f.bus.of_type("OrderResultStored");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["detail"]["key"], key);
    // Delivered again: nothing new.
    let again = f.handler.handle(ready_event(&r)).await.unwrap();
    assert!(matches!(again, Outcome::Ignored(_)), "{again:?}");
    assert_eq!(f.results.puts(), 1);
    assert_eq!(f.bus.of_type("OrderResultStored").len(), 1);
}

#[tokio::test]
async fn a_rejected_result_fails_the_order_and_writes_nothing() {
    let f = fixture();
    let r = fixtures::ready("s-2", false, at(NOW));
    f.orders.insert(&r).await.unwrap();
    let outcome = f.handler.handle(ready_event(&r)).await.unwrap();
    assert_eq!(outcome, Outcome::Rejected);
    assert_eq!(state(&f, &r).await, OrderState::Failed);
    assert_eq!(f.results.puts(), 0);
    let failed = f.bus.of_type("OrderFailed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["detail"]["reason"], "Rejected");
}

#[tokio::test]
async fn a_failed_write_is_a_retryable_error_and_the_retry_stores_at_once() {
    let f = fixture();
    let r = fixtures::ready("s-3", true, at(NOW));
    f.orders.insert(&r).await.unwrap();
    f.results.fail_next(1);
    let err = f.handler.handle(ready_event(&r)).await.unwrap_err();
    assert!(err.error_type().starts_with("Retryable."), "{err}");
    assert_eq!(state(&f, &r).await, OrderState::Ready);
    assert!(f.bus.of_type("OrderResultStored").is_empty());
    // The failed delivery gave its claim back: Lambda's retry stores the result at once.
    let retried = f.handler.handle(ready_event(&r)).await.unwrap();
    assert!(matches!(retried, Outcome::Stored { .. }), "{retried:?}");
    assert_eq!(state(&f, &r).await, OrderState::Stored);
    assert_eq!(f.bus.of_type("OrderResultStored").len(), 1);
}

#[tokio::test]
async fn an_order_ready_for_an_order_not_in_the_store_is_an_error_not_a_shrug() {
    let f = fixture();
    let r = fixtures::ready("s-gone", true, at(NOW));
    let err = f.handler.handle(ready_event(&r)).await.unwrap_err();
    assert_eq!(err.error_type(), "NotRetryable.MissingOrder", "{err}");
    assert!(f.results.objects().is_empty());
}

#[test]
fn outcomes_read_as_words() {
    assert_eq!(
        Outcome::Stored {
            key: "results/k.json".into()
        }
        .to_string(),
        "result stored at results/k.json"
    );
    assert_eq!(
        Outcome::Rejected.to_string(),
        "rejected; the desk will be told"
    );
    assert_eq!(Outcome::Ignored("x".into()).to_string(), "ignored: x");
    assert_eq!(
        Outcome::LostRace.to_string(),
        "another delivery moved the order first"
    );
}
