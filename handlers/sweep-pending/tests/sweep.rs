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

fn sweeper(
    now: Timestamp,
    config: Config,
) -> (Arc<InMemoryOrderStore>, Arc<InMemoryBus>, SweepPending) {
    let clock = Arc::new(ManualClock::new(now));
    let orders = Arc::new(InMemoryOrderStore::new());
    let bus = Arc::new(InMemoryBus::new(clock.clone()));
    let handler = SweepPending {
        clock,
        due: orders.clone(),
        bus: bus.clone(),
        config,
    };
    (orders, bus, handler)
}

async fn overdue(orders: &InMemoryOrderStore, n: usize, at: Timestamp) {
    for i in 0..n {
        orders
            .insert(&fixtures::pending(&format!("o-{i}"), 1, at))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_run_pages_through_the_index_and_stops_at_its_maximum() {
    let now = at("2026-01-14T12:00:00Z");
    let long_ago = at("2026-01-14T11:00:00Z");
    let config = Config {
        page_size: 2,
        max_per_run: 100,
        ..Config::default()
    };
    let (orders, bus, handler) = sweeper(now, config.clone());
    overdue(&orders, 5, long_ago).await;
    let report = handler.handle(tick(now)).await.unwrap();
    assert_eq!(
        (report.emitted, report.pages, report.truncated),
        (5, 3, false)
    );
    assert_eq!(report.to_string(), "re-sent 5 overdue orders");
    assert_eq!(bus.of_type("OrderEvaluationDue").len(), 5);

    // At most three a run: the first page, one of the second, then "more next run".
    let (orders, bus, handler) = sweeper(
        now,
        Config {
            max_per_run: 3,
            ..config.clone()
        },
    );
    overdue(&orders, 5, long_ago).await;
    let report = handler.handle(tick(now)).await.unwrap();
    assert_eq!((report.emitted, report.truncated), (3, true), "{report:?}");
    assert_eq!(
        report.to_string(),
        "re-sent 3 overdue orders; more next run"
    );
    assert_eq!(bus.of_type("OrderEvaluationDue").len(), 3);

    // A maximum that falls on a page boundary with more pages behind it.
    let (orders, _, handler) = sweeper(
        now,
        Config {
            max_per_run: 4,
            ..config.clone()
        },
    );
    overdue(&orders, 5, long_ago).await;
    let report = handler.handle(tick(now)).await.unwrap();
    assert_eq!(
        (report.emitted, report.pages, report.truncated),
        (4, 2, true)
    );

    // Exactly the maximum and nothing behind it: not truncated.
    let (orders, _, handler) = sweeper(
        now,
        Config {
            max_per_run: 4,
            page_size: 4,
            ..config
        },
    );
    overdue(&orders, 4, long_ago).await;
    let report = handler.handle(tick(now)).await.unwrap();
    assert_eq!((report.emitted, report.truncated), (4, false), "{report:?}");
}

#[tokio::test]
async fn an_order_another_sweep_claimed_is_counted_as_moved() {
    let now = at("2026-01-14T12:00:00Z");
    let (orders, bus, first) = sweeper(now, Config::default());
    overdue(&orders, 2, at("2026-01-14T11:00:00Z")).await;
    // Two sweeps read the same page; the second finds both claimed.
    let second = SweepPending {
        clock: Arc::new(ManualClock::new(now)),
        due: Arc::new(StaleIndex {
            inner: orders.clone(),
        }),
        bus: bus.clone(),
        config: Config::default(),
    };
    let page = {
        use energy_core::ports::DueIndex;
        orders.due(now, 10, None).await.unwrap()
    };
    *STALE.lock().unwrap() = Some(page);
    assert_eq!(first.handle(tick(now)).await.unwrap().emitted, 2);
    let report = second.handle(tick(now)).await.unwrap();
    assert_eq!((report.emitted, report.skipped), (0, 2), "{report:?}");
    assert!(!report.is_idle());
    assert_eq!(
        report.to_string(),
        "re-sent 0 overdue orders, 2 moved meanwhile"
    );
    assert_eq!(bus.of_type("OrderEvaluationDue").len(), 2);
}

static STALE: std::sync::Mutex<Option<energy_core::ports::DuePage>> = std::sync::Mutex::new(None);

/// A due index that answers the page read before another sweep claimed it.
struct StaleIndex {
    inner: Arc<InMemoryOrderStore>,
}

#[async_trait::async_trait]
impl energy_core::ports::DueIndex for StaleIndex {
    async fn due(
        &self,
        until: Timestamp,
        limit: usize,
        after: Option<energy_core::ports::DueCursor>,
    ) -> Result<energy_core::ports::DuePage, energy_core::ports::PortError> {
        let stale = STALE.lock().unwrap().take();
        match stale {
            Some(page) => Ok(page),
            None => self.inner.due(until, limit, after).await,
        }
    }
}

#[async_trait::async_trait]
impl energy_core::ports::SweepClaims for StaleIndex {
    async fn claim_sweep(
        &self,
        seen: &energy_core::ports::DueOrder,
        next: Timestamp,
    ) -> Result<bool, energy_core::ports::PortError> {
        self.inner.claim_sweep(seen, next).await
    }
}

#[tokio::test]
async fn overdue_counts_from_when_the_sweep_was_triggered_not_from_a_clock_in_the_future() {
    let now = at("2026-01-14T12:00:00Z");
    let (orders, _, handler) = sweeper(now, Config::default());
    let grace = handler.config.grace;
    // Due 90 s before now: overdue for a sweep triggered now (grace 60 s)...
    orders
        .insert(&fixtures::pending(
            "o-1",
            1,
            now - SignedDuration::from_secs(90),
        ))
        .await
        .unwrap();
    // ...but not for one triggered 40 s ago, which waited in a queue.
    let queued = handler
        .handle(tick(now - SignedDuration::from_secs(40)))
        .await
        .unwrap();
    assert_eq!(queued.emitted, 0, "{queued:?}");
    // A trigger time after now (a skewed clock) counts as now.
    let skewed = handler
        .handle(tick(now + SignedDuration::from_hours(1)))
        .await
        .unwrap();
    assert_eq!(skewed.emitted, 1, "{skewed:?}");
    assert_eq!(grace, SignedDuration::from_secs(60));
}

#[tokio::test]
async fn a_run_cut_short_inside_its_only_page_says_more_comes_next_run() {
    let now = at("2026-01-14T12:00:00Z");
    let (orders, _, handler) = sweeper(
        now,
        Config {
            page_size: 10,
            max_per_run: 3,
            ..Config::default()
        },
    );
    overdue(&orders, 5, at("2026-01-14T11:00:00Z")).await;
    let report = handler.handle(tick(now)).await.unwrap();
    assert_eq!(
        (report.emitted, report.pages, report.truncated),
        (3, 1, true)
    );
}

#[tokio::test]
async fn a_trigger_time_at_the_epoch_or_ahead_of_the_clock_counts_as_now() {
    let now = at("2026-01-14T12:00:00Z");
    let (orders, _, handler) = sweeper(now, Config::default());
    orders
        .insert(&fixtures::pending(
            "soon",
            1,
            now + SignedDuration::from_mins(30),
        ))
        .await
        .unwrap();
    orders
        .insert(&fixtures::pending(
            "late",
            1,
            now - SignedDuration::from_mins(5),
        ))
        .await
        .unwrap();
    // An hour ahead: were it believed, "soon" would be overdue too.
    let ahead = handler
        .handle(tick(now + SignedDuration::from_hours(1)))
        .await
        .unwrap();
    assert_eq!(ahead.emitted, 1, "{ahead:?}");
    let (orders, _, handler) = sweeper(now, Config::default());
    orders
        .insert(&fixtures::pending(
            "late",
            1,
            now - SignedDuration::from_mins(5),
        ))
        .await
        .unwrap();
    let epoch = handler.handle(tick(Timestamp::UNIX_EPOCH)).await.unwrap();
    assert_eq!(epoch.emitted, 1, "{epoch:?}");
}
