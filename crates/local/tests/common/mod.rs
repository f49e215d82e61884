//! A system on a fixed calendar: SDAC delivery day 2026-01-15, clock at 09:00 Brussels the day
//! before; gate closure 11:00Z, expected publication 11:45Z.

#![allow(dead_code)]

use energy_core::calendar::MarketRules;
use energy_core::lifecycle::OrderRecord;
use energy_core::order::RecordId;
use energy_core::retry::RetryPolicy;
pub mod system;

use jiff::Timestamp;
use serde_json::{Value, json};
use system::System;

pub const DAY: &str = "2026-01-15";
pub const START: &str = "2026-01-14T08:00:00Z";
pub const GATE: &str = "2026-01-14T11:00:00Z";
pub const PUBLICATION: &str = "2026-01-14T11:45:00Z";

pub fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub fn system() -> System {
    System::new(at(START), MarketRules::default(), RetryPolicy::default())
}

/// A valid order: `steps` at 07:00 local (06:00Z), the morning peak (reference price 90–130).
pub fn order(id: &str, zone: &str, side: &str, steps: Value) -> Value {
    json!({
        "record_id": id,
        "market": "SDAC",
        "delivery_date": DAY,
        "zone": zone,
        "portfolio": "DESK-A",
        "side": side,
        "periods": [
            {"mtu_start": "2026-01-15T06:00:00Z", "steps": steps},
            {"mtu_start": "2026-01-15T06:15:00Z", "steps": steps}
        ]
    })
}

pub fn accepted(id: &str) -> Value {
    order(
        id,
        "DE-LU",
        "BUY",
        json!([{"price": "3000.00", "quantity": "10.0"}]),
    )
}

pub fn partial(id: &str) -> Value {
    order(
        id,
        "NL",
        "BUY",
        json!([{"price": "500.00", "quantity": "5.0"}, {"price": "1.00", "quantity": "2.5"}]),
    )
}

pub fn rejected(id: &str) -> Value {
    order(
        id,
        "BE",
        "SELL",
        json!([{"price": "3500.00", "quantity": "20.0"}]),
    )
}

pub async fn post(system: &System, body: &Value) -> (i64, Value) {
    let resp = system
        .http("POST", "/orders", Some(&body.to_string()))
        .await;
    (resp.status_code, submit_order::response_body(&resp))
}

pub async fn record(system: &System, id: &str) -> OrderRecord {
    use energy_core::ports::OrderStore;
    system
        .store
        .get(&RecordId::parse(id).unwrap())
        .await
        .unwrap()
        .expect("order stored")
}

/// Delivers every queued event `copies` times (three copies at once, as EventBridge's
/// at-least-once delivery may), then moves time on, until nothing is left.
pub async fn run_to_end(system: &System, copies: usize) {
    loop {
        while let Some(envelope) = system.bus.pop() {
            deliver_copies(system, &envelope, copies).await;
        }
        if !system.advance().await {
            break;
        }
    }
}

pub fn count(system: &System, detail_type: &str) -> usize {
    system.bus.of_type(detail_type).len()
}

/// Moves the clock to the next schedule and puts its event on the bus.
pub fn fire_next_schedule(system: &System) {
    let at = system.scheduler.next_at().expect("a schedule is pending");
    system.clock.set(at);
    for due in system.scheduler.take_due(at) {
        system
            .bus
            .inject(&energy_core::events::DomainEvent::ChecksDue(due.event));
    }
}

/// Delivers `envelope` `copies` times; three copies run concurrently.
pub async fn deliver_copies(system: &System, envelope: &serde_json::Value, copies: usize) {
    match copies {
        3 => {
            tokio::join!(
                system.deliver(envelope),
                system.deliver(envelope),
                system.deliver(envelope)
            );
        }
        n => {
            for _ in 0..n {
                system.deliver(envelope).await;
            }
        }
    }
}
