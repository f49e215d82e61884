//! sweep-pending on its own, against in-memory ports.

use std::sync::Arc;

use energy_core::handler::{Event, EventHandler};
use energy_core::memory::fixtures;
use energy_core::memory::{InMemoryBus, InMemoryOrderStore, ManualClock};
use energy_core::ports::OrderStore;
use jiff::{SignedDuration, Timestamp};
use sweep_pending::{Config, SweepPending};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn tick(time: Timestamp) -> Event {
    serde_json::from_value(serde_json::json!({
        "version": "0", "id": "t", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": time.to_string(), "region": "local",
        "resources": [], "detail": {}
    }))
    .unwrap()
}

#[tokio::test]
async fn overdue_orders_are_re_sent_once_then_left_alone_for_the_backoff() {
    let now = at("2026-01-14T12:00:00Z");
    let clock = Arc::new(ManualClock::new(now));
    let orders = Arc::new(InMemoryOrderStore::new());
    let bus = Arc::new(InMemoryBus::new(clock.clone()));
    let handler = SweepPending {
        clock: clock.clone(),
        due: orders.clone(),
        bus: bus.clone(),
        config: Config::default(),
    };
    let grace = handler.config.grace;
    // Overdue by more than the grace, overdue by less, and final.
    let long_ago = now - grace - SignedDuration::from_secs(1);
    orders
        .insert(&fixtures::pending("late", 2, long_ago))
        .await
        .unwrap();
    orders
        .insert(&fixtures::pending("recent", 1, now))
        .await
        .unwrap();
    let report = handler.handle(tick(now)).await.unwrap();
    assert_eq!(report.emitted, 1, "{report}");
    let due = bus.of_type("OrderEvaluationDue");
    assert_eq!(due[0]["detail"]["record_id"], "late");
    assert_eq!(due[0]["detail"]["attempt"], 2);
    assert_eq!(due[0]["detail"]["trigger"], "SWEEP");
    assert_eq!(report.to_string(), "re-sent 1 overdue order");
    // Within the backoff nothing is re-sent again (and "recent" is not yet past its grace).
    clock.advance(grace - SignedDuration::from_secs(1));
    let report = handler.handle(tick(clock_now(&clock))).await.unwrap();
    assert!(report.is_idle(), "{report}");
    assert_eq!(report.to_string(), "nothing overdue");
}

fn clock_now(clock: &ManualClock) -> Timestamp {
    use energy_core::ports::Clock;
    clock.now()
}

#[test]
fn the_backoff_doubles_from_the_grace_up_to_its_maximum() {
    let c = Config::default();
    assert_eq!(c.backoff(0), c.grace);
    assert_eq!(c.backoff(1), c.grace * 2);
    assert_eq!(c.backoff(3), c.grace * 8);
    assert_eq!(c.backoff(40), c.max_backoff);
}
