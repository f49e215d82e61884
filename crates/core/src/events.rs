//! The ten events on the bus, one type per detail-type.
//!
//! These types are the single definition producers and consumers share. Each has a JSON Schema
//! (draft-04, the whole event as EventBridge delivers it) and an example in `events-schema/`;
//! the tests in `tests/schemas.rs` serialise generated values of every type and validate them, so
//! a field added here without the schema (or the other way round) fails the build.
//!
//! Evolution: fields are only ever added, and consumers ignore fields they do not know. A
//! breaking change is a new detail-type (`OrderReady.v2`), published beside the old one until
//! every consumer has moved.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lifecycle::{OrderRecord, Preliminary};
use crate::market::{Market, Side, Zone};
use crate::money::{Cents, EnergyKwh};
use crate::order::{Order, RecordId};
use crate::result::{Failure, FailureReason, OrderResult, Outcome};

/// The `source` of every event Energy publishes.
pub const SOURCE: &str = "energy.orders";

/// What identifies an order in every event, flat in `detail` so rules can filter on it
/// (`{"detail": {"zone": ["DE-LU"]}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRef {
    pub record_id: RecordId,
    pub market: Market,
    pub delivery_date: Date,
    pub zone: Zone,
    pub portfolio: String,
    pub side: Side,
}

impl From<&Order> for OrderRef {
    fn from(o: &Order) -> Self {
        OrderRef {
            record_id: o.record_id.clone(),
            market: o.market,
            delivery_date: o.delivery_date,
            zone: o.zone,
            portfolio: o.portfolio.clone(),
            side: o.side,
        }
    }
}

/// An order was validated and stored. Emitted once per new order by submit-order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSubmitted {
    #[serde(flatten)]
    pub order: OrderRef,
    pub mtu_count: u32,
    pub submitted_at: Timestamp,
}

/// Who asked for an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Trigger {
    /// A one-time schedule of one order's check (what schedules held before check rounds;
    /// such a schedule may still fire after an upgrade).
    Schedule,
    /// sweep-pending found the order overdue.
    Sweep,
    /// The desk withdrew the order (`DELETE /orders/{record_id}`): withdraw it at the platform.
    Cancel,
}

/// Time to look at an order again. Emitted by the sweeper (and by a one-time schedule of one
/// order made before check rounds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvaluationDue {
    pub record_id: RecordId,
    /// The check this event is for; an event older than the order's attempt is a duplicate.
    pub attempt: u32,
    pub due_at: Timestamp,
    pub trigger: Trigger,
}

/// Time for a round of result checks: every PENDING order whose check is due by `due_by`.
/// Put on the bus by the round's one-time schedule (one schedule for all the orders whose
/// checks fall in the round, not one per order), and by evaluate-order itself to go on with a
/// round too large for one invocation, from `after`. Consumed by evaluate-order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderChecksDue {
    pub due_by: Timestamp,
    /// Where the round goes on: after this entry of the due index. Absent: from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<RoundCursor>,
}

/// A place in the due index: an order and the instant it was due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundCursor {
    pub due_at: Timestamp,
    pub record_id: RecordId,
}

/// The platform published results for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReady {
    #[serde(flatten)]
    pub order: OrderRef,
    pub outcome: Outcome,
    pub result: OrderResult,
}

/// An order failed; notify-slack tells the desk once per order and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFailed {
    #[serde(flatten)]
    pub order: OrderRef,
    pub reason: FailureReason,
    pub message: String,
    /// Result checks made before failing.
    pub attempts: u32,
    pub failed_at: Timestamp,
}

impl OrderFailed {
    pub fn from_record(record: &OrderRecord, failure: &Failure) -> OrderFailed {
        OrderFailed {
            order: OrderRef::from(&record.order),
            reason: failure.reason,
            message: failure.message.clone(),
            attempts: record.checks(),
            failed_at: failure.failed_at,
        }
    }
}

/// An accepted or partially accepted result was written. No consumer yet: the hook for new ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderResultStored {
    #[serde(flatten)]
    pub order: OrderRef,
    pub outcome: Outcome,
    /// Object key in the results bucket (or under the local results directory).
    pub key: String,
    pub accepted_energy_mwh: EnergyKwh,
    pub notional_eur: Cents,
}

/// The desk withdrew an order before its gate and the platform does not hold it. Final. Emitted
/// once by evaluate-order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    #[serde(flatten)]
    pub order: OrderRef,
    pub cancelled_at: Timestamp,
}

/// The desk replaced an order's body before its gate (`PUT /orders/{record_id}`). Emitted by
/// submit-order; evaluate-order hands the new body over, replacing the old one at the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAmended {
    #[serde(flatten)]
    pub order: OrderRef,
    pub mtu_count: u32,
    pub amended_at: Timestamp,
}

/// Which change of the desk's the platform refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Change {
    /// `DELETE /orders/{record_id}`: the order stays in the auction.
    Cancel,
    /// `PUT /orders/{record_id}`: the body the platform held before stays in the auction.
    Amend,
}

/// The platform refused a change the desk made before the gate (its gate had closed by the time
/// the change reached it, or it refused it for its own reason): the order stays in the auction as
/// the platform holds it, PENDING, and its result comes as any other's. Emitted by evaluate-order
/// (at least once); notify-slack tells the desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderChangeRefused {
    #[serde(flatten)]
    pub order: OrderRef,
    pub change: Change,
    /// The platform's reason.
    pub reason: String,
    pub refused_at: Timestamp,
}

/// What became of an order's preliminary result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PreliminaryStatus {
    /// Published; the final result may still differ.
    Published,
    /// Withdrawn by the platform (the auction re-run or the zone decoupled); `result` is the one
    /// withdrawn.
    Withdrawn,
}

/// The platform published a preliminary result for an order, or withdrew it. Emitted by
/// evaluate-order once per change (at least once: a crash between its write and the event is
/// made good by the order's next check). No consumer of ours: a desk may subscribe. The final
/// result comes as `OrderReady`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPreliminaryResult {
    #[serde(flatten)]
    pub order: OrderRef,
    pub status: PreliminaryStatus,
    pub outcome: Outcome,
    pub result: OrderResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<Timestamp>,
}

impl OrderPreliminaryResult {
    pub fn from_record(record: &OrderRecord, preliminary: &Preliminary) -> Self {
        OrderPreliminaryResult {
            order: OrderRef::from(&record.order),
            status: if preliminary.withdrawn_at.is_some() {
                PreliminaryStatus::Withdrawn
            } else {
                PreliminaryStatus::Published
            },
            outcome: preliminary.result.outcome,
            result: preliminary.result.clone(),
            withdrawn_at: preliminary.withdrawn_at,
        }
    }
}

/// Any event Energy publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    Submitted(OrderSubmitted),
    EvaluationDue(OrderEvaluationDue),
    Ready(OrderReady),
    Failed(OrderFailed),
    ResultStored(OrderResultStored),
    Cancelled(OrderCancelled),
    Amended(OrderAmended),
    PreliminaryResult(OrderPreliminaryResult),
    ChangeRefused(OrderChangeRefused),
    ChecksDue(OrderChecksDue),
}

/// An event whose detail does not match its detail-type.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("unknown detail-type {0:?}")]
    UnknownType(String),
    #[error("{detail_type} detail does not match its schema: {source}")]
    BadDetail {
        detail_type: String,
        source: serde_json::Error,
    },
}

/// The kinds of domain event; each name is written here once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetailType {
    Submitted,
    EvaluationDue,
    Ready,
    Failed,
    ResultStored,
    Cancelled,
    Amended,
    PreliminaryResult,
    ChangeRefused,
    ChecksDue,
}

impl DetailType {
    pub const ALL: [DetailType; 10] = [
        DetailType::Submitted,
        DetailType::EvaluationDue,
        DetailType::Ready,
        DetailType::Failed,
        DetailType::ResultStored,
        DetailType::Cancelled,
        DetailType::Amended,
        DetailType::PreliminaryResult,
        DetailType::ChangeRefused,
        DetailType::ChecksDue,
    ];

    /// The detail-type, as on the bus and in `events-schema/<name>.json`.
    pub const fn name(self) -> &'static str {
        match self {
            DetailType::Submitted => "OrderSubmitted",
            DetailType::EvaluationDue => "OrderEvaluationDue",
            DetailType::Ready => "OrderReady",
            DetailType::Failed => "OrderFailed",
            DetailType::ResultStored => "OrderResultStored",
            DetailType::Cancelled => "OrderCancelled",
            DetailType::Amended => "OrderAmended",
            DetailType::PreliminaryResult => "OrderPreliminaryResult",
            DetailType::ChangeRefused => "OrderChangeRefused",
            DetailType::ChecksDue => "OrderChecksDue",
        }
    }

    pub fn from_name(name: &str) -> Option<DetailType> {
        DetailType::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl DomainEvent {
    /// Every detail-type, as on the bus and in `events-schema/<name>.json`.
    pub const DETAIL_TYPES: [&'static str; 10] = [
        DetailType::Submitted.name(),
        DetailType::EvaluationDue.name(),
        DetailType::Ready.name(),
        DetailType::Failed.name(),
        DetailType::ResultStored.name(),
        DetailType::Cancelled.name(),
        DetailType::Amended.name(),
        DetailType::PreliminaryResult.name(),
        DetailType::ChangeRefused.name(),
        DetailType::ChecksDue.name(),
    ];

    pub fn kind(&self) -> DetailType {
        match self {
            DomainEvent::Submitted(_) => DetailType::Submitted,
            DomainEvent::EvaluationDue(_) => DetailType::EvaluationDue,
            DomainEvent::Ready(_) => DetailType::Ready,
            DomainEvent::Failed(_) => DetailType::Failed,
            DomainEvent::ResultStored(_) => DetailType::ResultStored,
            DomainEvent::Cancelled(_) => DetailType::Cancelled,
            DomainEvent::Amended(_) => DetailType::Amended,
            DomainEvent::PreliminaryResult(_) => DetailType::PreliminaryResult,
            DomainEvent::ChangeRefused(_) => DetailType::ChangeRefused,
            DomainEvent::ChecksDue(_) => DetailType::ChecksDue,
        }
    }

    pub fn detail_type(&self) -> &'static str {
        self.kind().name()
    }

    /// The order the event is about; `None` for a round of checks, which is about many.
    pub fn record_id(&self) -> Option<&RecordId> {
        Some(match self {
            DomainEvent::Submitted(e) => &e.order.record_id,
            DomainEvent::EvaluationDue(e) => &e.record_id,
            DomainEvent::Ready(e) => &e.order.record_id,
            DomainEvent::Failed(e) => &e.order.record_id,
            DomainEvent::ResultStored(e) => &e.order.record_id,
            DomainEvent::Cancelled(e) => &e.order.record_id,
            DomainEvent::Amended(e) => &e.order.record_id,
            DomainEvent::PreliminaryResult(e) => &e.order.record_id,
            DomainEvent::ChangeRefused(e) => &e.order.record_id,
            DomainEvent::ChecksDue(_) => return None,
        })
    }

    /// The `detail` object.
    pub fn detail(&self) -> Value {
        let v = match self {
            DomainEvent::Submitted(e) => serde_json::to_value(e),
            DomainEvent::EvaluationDue(e) => serde_json::to_value(e),
            DomainEvent::Ready(e) => serde_json::to_value(e),
            DomainEvent::Failed(e) => serde_json::to_value(e),
            DomainEvent::ResultStored(e) => serde_json::to_value(e),
            DomainEvent::Cancelled(e) => serde_json::to_value(e),
            DomainEvent::Amended(e) => serde_json::to_value(e),
            DomainEvent::PreliminaryResult(e) => serde_json::to_value(e),
            DomainEvent::ChangeRefused(e) => serde_json::to_value(e),
            DomainEvent::ChecksDue(e) => serde_json::to_value(e),
        };
        // Serialising these plain data types cannot fail: no maps with non-string keys, no
        // fallible Serialize impls.
        v.unwrap_or(Value::Null)
    }

    /// Reads a detail by its detail-type.
    pub fn parse(detail_type: &str, detail: Value) -> Result<DomainEvent, EventError> {
        let bad = |source| EventError::BadDetail {
            detail_type: detail_type.to_string(),
            source,
        };
        let kind = DetailType::from_name(detail_type)
            .ok_or_else(|| EventError::UnknownType(detail_type.to_string()))?;
        Ok(match kind {
            DetailType::Submitted => {
                DomainEvent::Submitted(serde_json::from_value(detail).map_err(bad)?)
            }
            DetailType::EvaluationDue => {
                DomainEvent::EvaluationDue(serde_json::from_value(detail).map_err(bad)?)
            }
            DetailType::Ready => DomainEvent::Ready(serde_json::from_value(detail).map_err(bad)?),
            DetailType::Failed => DomainEvent::Failed(serde_json::from_value(detail).map_err(bad)?),
            DetailType::ResultStored => {
                DomainEvent::ResultStored(serde_json::from_value(detail).map_err(bad)?)
            }
            DetailType::Cancelled => {
                DomainEvent::Cancelled(serde_json::from_value(detail).map_err(bad)?)
            }
            DetailType::Amended => {
                DomainEvent::Amended(serde_json::from_value(detail).map_err(bad)?)
            }
            DetailType::PreliminaryResult => {
                DomainEvent::PreliminaryResult(serde_json::from_value(detail).map_err(bad)?)
            }
            DetailType::ChangeRefused => {
                DomainEvent::ChangeRefused(serde_json::from_value(detail).map_err(bad)?)
            }
            DetailType::ChecksDue => {
                DomainEvent::ChecksDue(serde_json::from_value(detail).map_err(bad)?)
            }
        })
    }
}

/// Where an event was published, for its envelope.
#[derive(Debug, Clone)]
pub struct EnvelopeContext {
    pub account: String,
    pub region: String,
}

impl Default for EnvelopeContext {
    fn default() -> Self {
        EnvelopeContext {
            account: "000000000000".into(),
            region: "local".into(),
        }
    }
}

/// The event as EventBridge delivers it to a target.
pub fn envelope(event: &DomainEvent, id: &str, time: Timestamp, ctx: &EnvelopeContext) -> Value {
    serde_json::json!({
        "version": "0",
        "id": id,
        "detail-type": event.detail_type(),
        "source": SOURCE,
        "account": ctx.account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": ctx.region,
        "resources": [],
        "detail": event.detail(),
    })
}

/// A UUID-shaped event id derived from a counter and a seed (the in-memory and local buses;
/// EventBridge assigns its own).
pub fn event_id(seed: u64, n: u64) -> String {
    let a = crate::hash::mix64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let b = crate::hash::mix64(a ^ n);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        (a & 0xfff) as u16,
        0x8000 | ((b >> 48) as u16 & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}
