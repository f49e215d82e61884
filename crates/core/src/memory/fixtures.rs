//! What a handler's own tests need besides the in-memory ports: an order, its stored record in
//! any state, and the EventBridge event a rule would deliver.

use jiff::Timestamp;
use serde_json::json;

use crate::events::{DomainEvent, EnvelopeContext, envelope};
use crate::handler::Event;
use crate::lifecycle::{OrderRecord, Transition};
use crate::money::{Lots, PriceCents};
use crate::order::Order;
use crate::result::{Failure, FailureReason, OrderResult};

/// An SDAC buy for 2026-01-15 (gate 2026-01-14T11:00Z, publication 11:45Z): two quarter-hours
/// at 07:00 local, 10 MW at up to 3000 EUR/MWh.
pub fn order(record_id: &str) -> Order {
    serde_json::from_value(json!({
        "record_id": record_id, "market": "SDAC", "delivery_date": "2026-01-15",
        "zone": "DE-LU", "portfolio": "DESK-A", "side": "BUY",
        "periods": [
            {"mtu_start": "2026-01-15T06:00:00Z", "steps": [{"price": "3000.00", "quantity": "10.0"}]},
            {"mtu_start": "2026-01-15T06:15:00Z", "steps": [{"price": "3000.00", "quantity": "10.0"}]}
        ]
    }))
    .expect("the fixture order reads")
}

/// `order(record_id)` as stored on submission at `at`, due `at` (its `OrderSubmitted` may be
/// lost).
pub fn received(record_id: &str, at: Timestamp) -> OrderRecord {
    OrderRecord::received(order(record_id), at, at)
}

/// The record handed over and waiting for check `attempt`, due at `due_at`.
pub fn pending(record_id: &str, attempt: u32, due_at: Timestamp) -> OrderRecord {
    let mut r = received(record_id, due_at)
        .apply(Transition::HandedOver { due_at }, due_at)
        .expect("RECEIVED → PENDING");
    for _ in 1..attempt {
        r = r
            .apply(Transition::Retry { due_at }, due_at)
            .expect("PENDING → PENDING");
    }
    r
}

/// The record with its results out: everything accepted at `price` when `accepted`, nothing
/// otherwise.
pub fn ready(record_id: &str, accepted: bool, at: Timestamp) -> OrderRecord {
    let p = pending(record_id, 1, at);
    let fills: Vec<_> = p
        .order
        .periods
        .iter()
        .map(|period| {
            let filled = if accepted {
                period.offered().expect("fits")
            } else {
                Lots(0)
            };
            (Some(PriceCents(9_000)), filled)
        })
        .collect();
    let result = OrderResult::from_fills(&p.order, &fills, at).expect("fits");
    p.apply(Transition::Ready { result, due_at: at }, at)
        .expect("PENDING → READY")
}

/// The record failed for `reason` at `at`.
pub fn failed(record_id: &str, reason: FailureReason, at: Timestamp) -> OrderRecord {
    let failure = Failure {
        reason,
        message: "a test failure".into(),
        failed_at: at,
    };
    pending(record_id, 1, at)
        .apply(
            Transition::Fail {
                failure,
                due_at: at,
            },
            at,
        )
        .expect("PENDING → FAILED")
}

/// The EventBridge event a rule delivers for `event`, published at `at`.
pub fn event(event: &DomainEvent, at: Timestamp) -> Event {
    let id = format!("test-{}", at.as_millisecond());
    serde_json::from_value(envelope(event, &id, at, &EnvelopeContext::default()))
        .expect("an envelope reads as an EventBridge event")
}
