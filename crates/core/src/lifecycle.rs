//! The order lifecycle as a state machine.
//!
//! ```text
//! RECEIVED ─► PENDING(n) ─► PENDING(n+1) … ─► READY ─► STORED
//!    │            │                             │
//!    └────────────┴──────────► FAILED ◄─────────┘
//!                                 │
//!                                 ▼
//!                              NOTIFIED
//! ```
//!
//! An [`OrderRecord`] changes only through [`OrderRecord::apply`], which refuses a transition the
//! diagram does not have and bumps `version`. Stores write the new record only if the stored one
//! still has the state and version it was computed from ([`Expected`]), so two deliveries of the
//! same event cannot both move an order.
//!
//! `due_at` is set in every state that still waits for something (RECEIVED, PENDING, READY,
//! FAILED) and cleared in the final ones. It is the key of the store's sparse "due" index: the
//! sweeper asks for records whose `due_at` has passed, which finds lost messages at every step,
//! not only lost schedules.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::order::Order;
use crate::result::{Failure, OrderResult};

/// How long an order is kept once it is final (STORED or NOTIFIED): the DynamoDB `ttl`
/// attribute is the final transition's time plus this. Before that an order never expires: its
/// results may come days after it was posted (an SDAC order posted on Friday for Monday).
pub const ORDER_TTL: SignedDuration = SignedDuration::from_hours(24);

/// The `ttl` of an order that is not final: it does not expire (DynamoDB gets no `ttl`
/// attribute; the local store compares against it and never reaches it).
pub const NO_EXPIRY: i64 = i64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderState {
    /// Stored, not yet handed to the platform.
    Received,
    /// Handed to the platform, waiting for results; `attempt` is the next check.
    Pending,
    /// Results published, not yet acted on.
    Ready,
    /// Accepted or partially accepted; the result object is written. Final.
    Stored,
    /// Rejected, timed out, refused by the platform or failed in processing; desk not yet told.
    Failed,
    /// Failed and the desk was told. Final.
    Notified,
    /// The desk withdrew it; the platform is being told. Not final: evaluate-order withdraws it
    /// at the platform, then it is CANCELLED (or, if the platform's gate had closed, PENDING).
    Cancelling,
    /// Withdrawn before its gate: the platform does not hold it. Final.
    Cancelled,
}

impl OrderState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderState::Stored | OrderState::Notified | OrderState::Cancelled
        )
    }

    /// Whether the desk may still withdraw or amend the order (before its gate).
    pub fn is_open(self) -> bool {
        matches!(self, OrderState::Received | OrderState::Pending)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Received => "RECEIVED",
            OrderState::Pending => "PENDING",
            OrderState::Ready => "READY",
            OrderState::Stored => "STORED",
            OrderState::Failed => "FAILED",
            OrderState::Notified => "NOTIFIED",
            OrderState::Cancelling => "CANCELLING",
            OrderState::Cancelled => "CANCELLED",
        }
    }
}

impl std::fmt::Display for OrderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored form of an order and everything that happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order: Order,
    pub state: OrderState,
    /// Bumped by every write; the condition of the next one.
    pub version: u64,
    /// Result checks done so far; PENDING(n) waits for check n. Counts on across amendments, so
    /// each body's checks have schedule names of their own.
    pub attempt: u32,
    /// Checks spent on the bodies an amendment replaced: the current body has had
    /// `attempt - checks_before` ([`OrderRecord::checks`]), which is what the limit counts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checks_before: u32,
    /// When the order's next step is due; `None` in final states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
    pub submitted_at: Timestamp,
    pub updated_at: Timestamp,
    /// Expiry, seconds since the epoch (DynamoDB TTL): [`NO_EXPIRY`] until the order is final,
    /// then [`ORDER_TTL`] after it became final.
    pub ttl: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<OrderResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// A READY order's result is being stored, or a FAILED order's message sent, by the delivery
    /// that claimed it, until this instant; other deliveries leave it alone until then. See
    /// [`Transition::Claim`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<Timestamp>,
    /// The latest preliminary result the platform published (kept once the final one is in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preliminary: Option<Preliminary>,
    /// The body the platform holds while an amendment waits for its hand-over: what stays in
    /// the auction if the platform refuses the new one ([`Transition::AmendRefused`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_body: Option<Order>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A preliminary result as the order keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preliminary {
    pub result: OrderResult,
    /// When a check found it withdrawn (the auction re-run or the zone decoupled); `None` while
    /// it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<Timestamp>,
    /// Whether `OrderPreliminaryResult` has told its latest change (false between the write and
    /// the event: a crash there is made good by the next check).
    pub announced: bool,
}

/// What a check found of the preliminary result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreliminaryChange {
    /// A preliminary result, new or different from the one kept.
    Published(OrderResult),
    /// The kept one is gone: the platform has no results again.
    Withdrawn,
}

/// The condition of a write: the state and version the new record was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub state: OrderState,
    pub version: u64,
}

/// A change to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// RECEIVED → PENDING(1): the platform took the order; first check at `due_at`.
    HandedOver { due_at: Timestamp },
    /// PENDING(n) → PENDING(n+1): results not ready, next check at `due_at`.
    Retry { due_at: Timestamp },
    /// PENDING → READY with the published result; `due_at` is when to re-send `OrderReady` if
    /// nobody acted on it.
    Ready {
        result: OrderResult,
        due_at: Timestamp,
    },
    /// READY → STORED: the result object is written under `key`.
    Stored { key: String },
    /// RECEIVED | PENDING | READY → FAILED; `due_at` as for `Ready`.
    Fail { failure: Failure, due_at: Timestamp },
    /// READY | FAILED | CANCELLING, claimed until `until` by the delivery about to act on it:
    /// of deliveries of one event racing each other, only the one whose claim is written has
    /// effects (a result object, a message, `OrderCancelled`). The order stays due at its
    /// `due_at` if that is later than `until` (a READY or FAILED order is due
    /// `redelivery_after` after its event was sent), else it becomes due at `until`. If the
    /// claimant dies before the next state, the claim runs out and the sweeper re-sends the
    /// event when the order is due.
    Claim { until: Timestamp },
    /// READY | FAILED, unclaimed: the claimant's effect failed with an error, so the retry of
    /// its delivery may claim at once instead of waiting for the claim to run out.
    Release,
    /// FAILED → NOTIFIED.
    Notified,
    /// RECEIVED | PENDING → CANCELLING: the desk withdrew the order; evaluate-order withdraws it
    /// at the platform by `due_at`.
    CancelRequested { due_at: Timestamp },
    /// CANCELLING → CANCELLED: the platform does not hold the order (any more).
    Cancelled,
    /// CANCELLING → PENDING: the platform's gate had closed, it keeps the order, whose result
    /// comes as for any other; next check at `due_at`.
    CancelRefused { due_at: Timestamp },
    /// RECEIVED | PENDING → RECEIVED with a new body (same record id): it is handed over again,
    /// replacing the old one at the platform; due at `due_at`.
    Amended { order: Order, due_at: Timestamp },
    /// READY | FAILED, unchanged but for a later `due_at`: the event was re-sent.
    Requeue { due_at: Timestamp },
    /// PENDING(n) → PENDING(n+1) as [`Transition::Retry`], keeping what the check found of the
    /// preliminary result, not yet announced.
    Preliminary {
        change: PreliminaryChange,
        due_at: Timestamp,
    },
    /// PENDING, its preliminary result's latest change announced.
    PreliminaryAnnounced,
    /// RECEIVED with a held body → PENDING on that body: the platform refused the amended one,
    /// and the body it held stays in the auction; next check at `due_at`.
    AmendRefused { due_at: Timestamp },
}

impl Transition {
    fn name(&self) -> &'static str {
        match self {
            Transition::HandedOver { .. } => "HandedOver",
            Transition::Retry { .. } => "Retry",
            Transition::Ready { .. } => "Ready",
            Transition::Stored { .. } => "Stored",
            Transition::Fail { .. } => "Fail",
            Transition::Claim { .. } => "Claim",
            Transition::Release => "Release",
            Transition::Notified => "Notified",
            Transition::CancelRequested { .. } => "CancelRequested",
            Transition::Cancelled => "Cancelled",
            Transition::CancelRefused { .. } => "CancelRefused",
            Transition::Amended { .. } => "Amended",
            Transition::Requeue { .. } => "Requeue",
            Transition::Preliminary { .. } => "Preliminary",
            Transition::PreliminaryAnnounced => "PreliminaryAnnounced",
            Transition::AmendRefused { .. } => "AmendRefused",
        }
    }
}

/// A transition the lifecycle does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order {record_id}: no transition {transition} from {from}")]
pub struct IllegalTransition {
    pub record_id: String,
    pub from: OrderState,
    pub transition: &'static str,
}

impl OrderRecord {
    /// Whether another delivery holds a claim on this order at `now`.
    pub fn claimed_at(&self, now: Timestamp) -> bool {
        self.claimed_until.is_some_and(|until| until > now)
    }

    /// Result checks of the current body (an amended order's earlier bodies' do not count).
    pub fn checks(&self) -> u32 {
        self.attempt.saturating_sub(self.checks_before)
    }

    /// A preliminary result whose latest change `OrderPreliminaryResult` has not told yet.
    pub fn unannounced_preliminary(&self) -> Option<&Preliminary> {
        self.preliminary.as_ref().filter(|p| !p.announced)
    }

    /// The preliminary result that stands (not withdrawn).
    pub fn standing_preliminary(&self) -> Option<&OrderResult> {
        self.preliminary
            .as_ref()
            .filter(|p| p.withdrawn_at.is_none())
            .map(|p| &p.result)
    }

    /// A freshly received order.
    pub fn received(order: Order, now: Timestamp, due_at: Timestamp) -> OrderRecord {
        OrderRecord {
            order,
            state: OrderState::Received,
            version: 1,
            attempt: 0,
            due_at: Some(due_at),
            submitted_at: now,
            updated_at: now,
            ttl: NO_EXPIRY,
            result: None,
            result_key: None,
            failure: None,
            claimed_until: None,
            checks_before: 0,
            preliminary: None,
            held_body: None,
        }
    }

    /// The condition under which a record computed from this one may be written.
    pub fn expected(&self) -> Expected {
        Expected {
            state: self.state,
            version: self.version,
        }
    }

    /// The record after `t`, or the reason it is not allowed.
    pub fn apply(&self, t: Transition, now: Timestamp) -> Result<OrderRecord, IllegalTransition> {
        use OrderState::*;
        let mut next = self.clone();
        let illegal = || IllegalTransition {
            record_id: self.order.record_id.to_string(),
            from: self.state,
            transition: t.name(),
        };
        match (&t, self.state) {
            (Transition::HandedOver { due_at }, Received) => {
                // One more than before: an amended order's new checks never share a schedule
                // name with the old body's, and the old body's checks are stale.
                next.state = Pending;
                next.checks_before = self.attempt;
                next.attempt += 1;
                next.due_at = Some(*due_at);
                next.held_body = None;
            }
            (Transition::Retry { due_at }, Pending) => {
                next.attempt += 1;
                next.due_at = Some(*due_at);
            }
            (Transition::Ready { result, due_at }, Pending) => {
                next.state = Ready;
                next.result = Some(result.clone());
                next.due_at = Some(*due_at);
                // A preliminary result the final one does not confirm did not stand, whether or
                // not a check saw it withdrawn (announced with `OrderReady`).
                if let Some(p) = next.preliminary.as_mut()
                    && p.withdrawn_at.is_none()
                    && !p.result.same_outcome(result)
                {
                    p.withdrawn_at = Some(now);
                    p.announced = true;
                }
            }
            (Transition::Stored { key }, Ready) => {
                next.state = Stored;
                next.result_key = Some(key.clone());
                next.due_at = None;
            }
            (Transition::Fail { failure, due_at }, Received | Pending | Ready) => {
                next.state = Failed;
                next.failure = Some(failure.clone());
                next.due_at = Some(*due_at);
            }
            (Transition::Claim { until }, Ready | Failed | Cancelling) => {
                next.claimed_until = Some(*until);
                // Due no earlier than the claim runs out; a later due time stands, so the
                // write leaves the due index alone (moving its key costs a delete and a put).
                next.due_at = Some(self.due_at.map_or(*until, |due| due.max(*until)));
            }
            (Transition::Release, Ready | Failed | Cancelling) => {
                next.claimed_until = None;
            }
            (Transition::Notified, Failed) => {
                next.state = Notified;
                next.due_at = None;
            }
            (Transition::Requeue { due_at }, Ready | Failed) => {
                next.due_at = Some(*due_at);
            }
            (Transition::CancelRequested { due_at }, Received | Pending) => {
                next.state = Cancelling;
                next.due_at = Some(*due_at);
            }
            (Transition::Cancelled, Cancelling) => {
                next.state = Cancelled;
                next.due_at = None;
            }
            (Transition::CancelRefused { due_at }, Cancelling) => {
                next.state = Pending;
                next.due_at = Some(*due_at);
            }
            (Transition::Amended { order, due_at }, Received | Pending)
                if order.record_id == self.order.record_id =>
            {
                next.state = Received;
                next.order = order.clone();
                next.due_at = Some(*due_at);
                // A PENDING order's body is at the platform until the new one replaces it; a
                // RECEIVED one keeps whatever body the platform held before.
                if self.state == Pending {
                    next.held_body = Some(self.order.clone());
                }
            }
            (Transition::AmendRefused { due_at }, Received) if self.held_body.is_some() => {
                next.state = Pending;
                next.order = self.held_body.clone().unwrap_or_else(|| self.order.clone());
                next.held_body = None;
                next.due_at = Some(*due_at);
            }
            (Transition::Preliminary { change, due_at }, Pending) => {
                next.preliminary = Some(match (change, &self.preliminary) {
                    (PreliminaryChange::Published(result), _) => Preliminary {
                        result: result.clone(),
                        withdrawn_at: None,
                        announced: false,
                    },
                    (PreliminaryChange::Withdrawn, Some(kept)) if kept.withdrawn_at.is_none() => {
                        Preliminary {
                            withdrawn_at: Some(now),
                            announced: false,
                            ..kept.clone()
                        }
                    }
                    (PreliminaryChange::Withdrawn, _) => return Err(illegal()),
                });
                next.attempt += 1;
                next.due_at = Some(*due_at);
            }
            (Transition::PreliminaryAnnounced, Pending)
                if self.unannounced_preliminary().is_some() =>
            {
                if let Some(p) = next.preliminary.as_mut() {
                    p.announced = true;
                }
            }
            _ => return Err(illegal()),
        }
        // A claim holds an order in one state: any move to another ends it.
        if next.state != self.state {
            next.claimed_until = None;
        }
        next.version += 1;
        next.updated_at = now;
        if next.state.is_final() && !self.state.is_final() {
            next.ttl = now.as_second().saturating_add(ORDER_TTL.as_secs());
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::FailureReason;

    fn record() -> OrderRecord {
        let order: Order = serde_json::from_value(serde_json::json!({
            "record_id": "t-1", "market": "SDAC", "delivery_date": "2026-01-15", "zone": "FR",
            "portfolio": "P", "side": "BUY",
            "periods": [{"mtu_start": "2026-01-14T23:00:00Z", "steps": [{"price": "10.00", "quantity": "1.0"}]}]
        }))
        .unwrap();
        let now: Timestamp = "2026-01-14T08:00:00Z".parse().unwrap();
        OrderRecord::received(order, now, now)
    }

    fn now() -> Timestamp {
        "2026-01-14T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_order_expires_24_hours_after_it_became_final_not_after_submission() {
        let r = record();
        assert_eq!(r.ttl, NO_EXPIRY);
        let later: Timestamp = "2026-01-17T09:00:00Z".parse().unwrap();
        let p = r
            .apply(Transition::HandedOver { due_at: later }, now())
            .unwrap();
        assert_eq!(p.ttl, NO_EXPIRY, "still waiting: no expiry");
        let failure = Failure {
            reason: FailureReason::ResultsTimeout,
            message: "x".into(),
            failed_at: later,
        };
        let f = p
            .apply(
                Transition::Fail {
                    failure,
                    due_at: later,
                },
                later,
            )
            .unwrap();
        assert_eq!(f.ttl, NO_EXPIRY, "failed but the desk not told yet");
        let n = f.apply(Transition::Notified, later).unwrap();
        assert_eq!(n.ttl, later.as_second() + 86_400);
    }

    #[test]
    fn every_transition_bumps_version_and_final_states_clear_due_at() {
        let r = record();
        let p = r
            .apply(Transition::HandedOver { due_at: now() }, now())
            .unwrap();
        assert_eq!((p.state, p.attempt, p.version), (OrderState::Pending, 1, 2));
        let p2 = p.apply(Transition::Retry { due_at: now() }, now()).unwrap();
        assert_eq!((p2.attempt, p2.version), (2, 3));
        let failure = Failure {
            reason: FailureReason::ResultsTimeout,
            message: "x".into(),
            failed_at: now(),
        };
        let f = p2
            .apply(
                Transition::Fail {
                    failure,
                    due_at: now(),
                },
                now(),
            )
            .unwrap();
        let n = f.apply(Transition::Notified, now()).unwrap();
        assert!(n.state.is_final());
        assert_eq!(n.due_at, None);
    }

    #[test]
    fn transitions_outside_the_diagram_are_refused() {
        let r = record();
        assert!(r.apply(Transition::Notified, now()).is_err());
        assert!(
            r.apply(Transition::Stored { key: "k".into() }, now())
                .is_err()
        );
        assert!(r.apply(Transition::Retry { due_at: now() }, now()).is_err());
        assert!(
            r.apply(Transition::Requeue { due_at: now() }, now())
                .is_err()
        );
        let p = r
            .apply(Transition::HandedOver { due_at: now() }, now())
            .unwrap();
        assert!(
            p.apply(Transition::HandedOver { due_at: now() }, now())
                .is_err()
        );
        assert!(
            p.apply(Transition::Stored { key: "k".into() }, now())
                .is_err()
        );
    }

    /// The record in `state`, reached through the diagram.
    fn in_state(state: OrderState) -> OrderRecord {
        let failure = Failure {
            reason: FailureReason::Rejected,
            message: "x".into(),
            failed_at: now(),
        };
        let received = record();
        let pending = received
            .apply(Transition::HandedOver { due_at: now() }, now())
            .unwrap();
        let result = crate::memory::fixtures::ready("t-1", true, now())
            .result
            .unwrap();
        let ready = pending
            .apply(
                Transition::Ready {
                    result,
                    due_at: now(),
                },
                now(),
            )
            .unwrap();
        let fail = Transition::Fail {
            failure,
            due_at: now(),
        };
        match state {
            OrderState::Received => received,
            OrderState::Pending => pending,
            OrderState::Ready => ready,
            OrderState::Stored => ready
                .apply(Transition::Stored { key: "k".into() }, now())
                .unwrap(),
            OrderState::Failed => pending.apply(fail, now()).unwrap(),
            OrderState::Notified => pending
                .apply(fail, now())
                .unwrap()
                .apply(Transition::Notified, now())
                .unwrap(),
            OrderState::Cancelling => pending
                .apply(Transition::CancelRequested { due_at: now() }, now())
                .unwrap(),
            OrderState::Cancelled => pending
                .apply(Transition::CancelRequested { due_at: now() }, now())
                .unwrap()
                .apply(Transition::Cancelled, now())
                .unwrap(),
        }
    }

    #[test]
    fn the_diagram_whole_every_transition_from_every_state() {
        use OrderState::*;
        let later: Timestamp = "2026-01-14T10:00:00Z".parse().unwrap();
        let failure = Failure {
            reason: FailureReason::ResultsTimeout,
            message: "y".into(),
            failed_at: later,
        };
        let result = in_state(Ready).result.unwrap();
        // (transition, the states it may leave, the state it reaches; None: the same).
        let table: Vec<(Transition, Vec<OrderState>, Option<OrderState>)> = vec![
            (
                Transition::HandedOver { due_at: later },
                vec![Received],
                Some(Pending),
            ),
            (Transition::Retry { due_at: later }, vec![Pending], None),
            (
                Transition::Ready {
                    result,
                    due_at: later,
                },
                vec![Pending],
                Some(Ready),
            ),
            (
                Transition::Stored { key: "k2".into() },
                vec![Ready],
                Some(Stored),
            ),
            (
                Transition::Fail {
                    failure,
                    due_at: later,
                },
                vec![Received, Pending, Ready],
                Some(Failed),
            ),
            (
                Transition::Claim { until: later },
                vec![Ready, Failed, Cancelling],
                None,
            ),
            (Transition::Release, vec![Ready, Failed, Cancelling], None),
            (Transition::Notified, vec![Failed], Some(Notified)),
            (
                Transition::Requeue { due_at: later },
                vec![Ready, Failed],
                None,
            ),
            (
                Transition::CancelRequested { due_at: later },
                vec![Received, Pending],
                Some(Cancelling),
            ),
            (Transition::Cancelled, vec![Cancelling], Some(Cancelled)),
            (
                Transition::CancelRefused { due_at: later },
                vec![Cancelling],
                Some(Pending),
            ),
            (
                Transition::Amended {
                    order: amended(),
                    due_at: later,
                },
                vec![Received, Pending],
                Some(Received),
            ),
            (
                Transition::Preliminary {
                    change: PreliminaryChange::Published(in_state(Ready).result.unwrap()),
                    due_at: later,
                },
                vec![Pending],
                None,
            ),
            // Only with a preliminary result kept (see the test below): none of these has one.
            (
                Transition::Preliminary {
                    change: PreliminaryChange::Withdrawn,
                    due_at: later,
                },
                vec![],
                None,
            ),
            (Transition::PreliminaryAnnounced, vec![], None),
            // Only with a held body (an amended PENDING order): see the test below.
            (Transition::AmendRefused { due_at: later }, vec![], None),
        ];
        let all = [
            Received, Pending, Ready, Stored, Failed, Notified, Cancelling, Cancelled,
        ];
        for (t, from, to) in &table {
            for state in all {
                let r = in_state(state);
                let moved = r.apply(t.clone(), later);
                if !from.contains(&state) {
                    let err = moved.expect_err(&format!("{} from {state}", t.name()));
                    assert_eq!((err.from, err.transition), (state, t.name()));
                    continue;
                }
                let next = moved.unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(next.state, to.unwrap_or(state), "{} from {state}", t.name());
                assert_eq!(next.version, r.version + 1);
                assert_eq!(next.updated_at, later);
                assert_eq!(next.due_at.is_none(), next.state.is_final());
                match t {
                    Transition::HandedOver { .. } => assert_eq!(next.attempt, r.attempt + 1),
                    Transition::Amended { order, due_at } => {
                        assert_eq!((&next.order, next.due_at), (order, Some(*due_at)));
                        assert_eq!(next.attempt, r.attempt, "checks keep counting");
                    }
                    Transition::CancelRequested { due_at }
                    | Transition::CancelRefused { due_at } => {
                        assert_eq!(next.due_at, Some(*due_at))
                    }
                    Transition::Cancelled => {}
                    Transition::Retry { .. } => assert_eq!(next.attempt, r.attempt + 1),
                    Transition::Ready { .. } => assert!(next.result.is_some()),
                    Transition::Stored { key } => {
                        assert_eq!(next.result_key.as_ref(), Some(key))
                    }
                    Transition::Fail { failure, .. } => {
                        assert_eq!(next.failure.as_ref(), Some(failure))
                    }
                    Transition::Claim { until } => {
                        assert_eq!(
                            (next.claimed_until, next.due_at),
                            (Some(*until), Some(*until))
                        )
                    }
                    Transition::Release => {
                        assert_eq!((next.claimed_until, next.due_at), (None, r.due_at))
                    }
                    Transition::Requeue { due_at } => {
                        assert_eq!(next.due_at, Some(*due_at))
                    }
                    Transition::Notified => {}
                    Transition::Preliminary { due_at, .. } => {
                        assert_eq!(next.attempt, r.attempt + 1);
                        assert_eq!(next.due_at, Some(*due_at));
                        assert!(next.unannounced_preliminary().is_some());
                    }
                    Transition::PreliminaryAnnounced => {}
                    Transition::AmendRefused { .. } => {}
                }
            }
        }
    }

    #[test]
    fn a_preliminary_result_is_kept_announced_withdrawn_and_outlives_the_final_one() {
        let later: Timestamp = "2026-01-14T12:50:00Z".parse().unwrap();
        let result = in_state(OrderState::Ready).result.unwrap();
        let p = in_state(OrderState::Pending);
        let kept = p
            .apply(
                Transition::Preliminary {
                    change: PreliminaryChange::Published(result.clone()),
                    due_at: later,
                },
                later,
            )
            .unwrap();
        assert_eq!(kept.standing_preliminary(), Some(&result));
        assert!(
            kept.apply(Transition::PreliminaryAnnounced, later)
                .unwrap()
                .apply(Transition::PreliminaryAnnounced, later)
                .is_err(),
            "announced once"
        );
        let told = kept.apply(Transition::PreliminaryAnnounced, later).unwrap();
        assert!(told.unannounced_preliminary().is_none());
        let withdrawn = told
            .apply(
                Transition::Preliminary {
                    change: PreliminaryChange::Withdrawn,
                    due_at: later,
                },
                later,
            )
            .unwrap();
        assert_eq!(withdrawn.standing_preliminary(), None);
        let kept = withdrawn.preliminary.clone().unwrap();
        assert_eq!((kept.withdrawn_at, kept.announced), (Some(later), false));
        assert_eq!(kept.result, result, "the withdrawn result is kept");
        assert!(
            withdrawn
                .apply(
                    Transition::Preliminary {
                        change: PreliminaryChange::Withdrawn,
                        due_at: later,
                    },
                    later,
                )
                .is_err(),
            "withdrawn once"
        );
        let ready = withdrawn
            .apply(
                Transition::Ready {
                    result: result.clone(),
                    due_at: later,
                },
                later,
            )
            .unwrap();
        assert_eq!(ready.preliminary, withdrawn.preliminary);
    }

    #[test]
    fn an_amended_order_gets_its_checks_afresh() {
        let later: Timestamp = "2026-01-14T10:00:00Z".parse().unwrap();
        let mut p = in_state(OrderState::Pending);
        for _ in 0..3 {
            p = p.apply(Transition::Retry { due_at: later }, later).unwrap();
        }
        let before = p.attempt;
        assert_eq!(p.checks(), before);
        let amend = Transition::Amended {
            order: amended(),
            due_at: later,
        };
        let handed = p
            .apply(amend, later)
            .unwrap()
            .apply(Transition::HandedOver { due_at: later }, later)
            .unwrap();
        assert_eq!(handed.attempt, before + 1, "schedule names never repeat");
        assert_eq!(handed.checks(), 1, "the new body's first check");
    }

    #[test]
    fn a_refused_amendment_goes_back_to_the_body_the_platform_holds() {
        let later: Timestamp = "2026-01-14T10:00:00Z".parse().unwrap();
        let p = in_state(OrderState::Pending);
        let amend = |r: &OrderRecord, price: i64| {
            let mut body = amended();
            body.periods[0].steps[0].price = crate::money::PriceCents(price);
            r.apply(
                Transition::Amended {
                    order: body,
                    due_at: later,
                },
                later,
            )
            .unwrap()
        };
        // Amended twice before a hand-over: the platform still holds the first body.
        let twice = amend(&amend(&p, 2_000), 3_000);
        assert_eq!(twice.held_body.as_ref(), Some(&p.order));
        let back = twice
            .apply(Transition::AmendRefused { due_at: later }, later)
            .unwrap();
        assert_eq!(
            (back.state, &back.order, &back.held_body),
            (OrderState::Pending, &p.order, &None)
        );
        // Handed over: the new body is the platform's, nothing is held back.
        let handed = twice
            .apply(Transition::HandedOver { due_at: later }, later)
            .unwrap();
        assert_eq!(handed.held_body, None);
        assert!(
            handed
                .apply(Transition::AmendRefused { due_at: later }, later)
                .is_err()
        );
        // A fresh order holds nothing at the platform.
        assert!(
            record()
                .apply(Transition::AmendRefused { due_at: later }, later)
                .is_err()
        );
    }

    /// The fixture order with another price.
    fn amended() -> Order {
        let mut order = record().order;
        order.periods[0].steps[0].price = crate::money::PriceCents(2_000);
        order
    }

    #[test]
    fn an_amendment_keeps_the_record_id() {
        let mut other = amended();
        other.record_id = crate::order::RecordId::parse("t-2").unwrap();
        let amend = Transition::Amended {
            order: other,
            due_at: now(),
        };
        assert!(record().apply(amend, now()).is_err());
    }

    #[test]
    fn a_claim_keeps_a_later_due_time_and_is_never_due_before_it_runs_out() {
        let r = in_state(OrderState::Ready);
        let due = r.due_at.unwrap();
        let early = due - SignedDuration::from_secs(30);
        let claimed = r.apply(Transition::Claim { until: early }, now()).unwrap();
        assert_eq!(claimed.claimed_until, Some(early));
        assert_eq!(claimed.due_at, Some(due), "the later due time stands");
        let late = due + SignedDuration::from_secs(30);
        let claimed = r.apply(Transition::Claim { until: late }, now()).unwrap();
        assert_eq!(claimed.due_at, Some(late), "due when the claim runs out");
    }

    #[test]
    fn a_claim_holds_until_its_instant_and_not_at_it() {
        let until: Timestamp = "2026-01-14T10:00:00Z".parse().unwrap();
        let r = in_state(OrderState::Ready);
        assert!(!r.claimed_at(until), "never claimed");
        let claimed = r.apply(Transition::Claim { until }, now()).unwrap();
        assert!(claimed.claimed_at(until - SignedDuration::from_secs(1)));
        assert!(!claimed.claimed_at(until), "run out at its instant");
        assert!(!claimed.claimed_at(until + SignedDuration::from_secs(1)));
    }

    #[test]
    fn states_and_transitions_have_their_names() {
        use OrderState::*;
        let names: Vec<String> = [
            Received, Pending, Ready, Stored, Failed, Notified, Cancelling, Cancelled,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            names,
            [
                "RECEIVED",
                "PENDING",
                "READY",
                "STORED",
                "FAILED",
                "NOTIFIED",
                "CANCELLING",
                "CANCELLED"
            ]
        );
        let err = record().apply(Transition::Release, now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "order t-1: no transition Release from RECEIVED"
        );
    }
}
