//! What every event handler shares: the [`EventHandler`] trait, its error type, and the moves
//! more than one handler makes.
//!
//! A handler is a struct of exactly the capabilities (ports) it uses, plus its settings: its
//! fields read like its IAM policy, and wiring it without one is a compile error. The Lambda
//! binaries and `energy up` build the same structs from different adapters.

use async_trait::async_trait;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use jiff::Timestamp;
use serde_json::Value;

use crate::events::{DomainEvent, EventError, OrderFailed};
use crate::lifecycle::{IllegalTransition, OrderRecord, Transition};
use crate::ports::{
    EventPublisher, OrderStore, PortError, PublishError, Replaced, Retryable, TransitionError,
};
use crate::result::Failure;
use crate::retry::RetryPolicy;

/// The event every event-driven function takes: EventBridge's envelope, `detail` as JSON.
pub type Event = EventBridgeEvent<Value>;

/// One event-driven function.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// The function's name, as deployed (`evaluate-order`).
    const NAME: &'static str;
    /// What an invocation did, in words a person reads (`Display`) and for tests (`Debug`).
    type Outcome: std::fmt::Debug + std::fmt::Display + Send;

    async fn handle(&self, event: Event) -> Result<Self::Outcome, HandlerError>;
}

/// Why a handler invocation failed. [`Retryable`] says whether Lambda's retry can help; the
/// Lambda wiring puts that in the Diagnostic's error type.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event's detail does not match its detail-type.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The event was routed to a handler that does not take it: a rule is wrong.
    #[error("{handler} does not handle {detail_type}")]
    WrongEvent {
        handler: &'static str,
        detail_type: String,
    },
    /// Stored data that breaks an invariant.
    #[error("{0}")]
    Inconsistent(String),
    /// An event for an order the store does not hold: orders are kept until 24 h after they
    /// are final, so this is a lost order or an event from elsewhere, for the operator to see
    /// (a Lambda error and its alarm, a dead letter locally), never a quiet success.
    #[error("no order {0} in the store")]
    MissingOrder(crate::order::RecordId),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

impl HandlerError {
    pub fn wrong_event(handler: &'static str, detail_type: &str) -> Self {
        HandlerError::WrongEvent {
            handler,
            detail_type: detail_type.to_string(),
        }
    }

    /// A stable name for the kind of failure: the second half of a Lambda Diagnostic's
    /// `errorType` (`Retryable.Port`, `NotRetryable.WrongEvent`).
    pub fn kind(&self) -> &'static str {
        match self {
            HandlerError::Event(_) => "InvalidEvent",
            HandlerError::WrongEvent { .. } => "WrongEvent",
            HandlerError::Inconsistent(_) => "Inconsistent",
            HandlerError::MissingOrder(_) => "MissingOrder",
            HandlerError::Port(_) => "Port",
            HandlerError::Publish(_) => "Publish",
            HandlerError::Transition(TransitionError::Illegal(_)) => "IllegalTransition",
            HandlerError::Transition(TransitionError::Port(_)) => "Port",
        }
    }

    /// `Retryable.<kind>` or `NotRetryable.<kind>`.
    pub fn error_type(&self) -> String {
        let prefix = if self.retryable() {
            "Retryable"
        } else {
            "NotRetryable"
        };
        format!("{prefix}.{}", self.kind())
    }
}

impl From<IllegalTransition> for HandlerError {
    fn from(e: IllegalTransition) -> Self {
        HandlerError::Transition(TransitionError::Illegal(e))
    }
}

/// Applies `t` to `record` at `now` and writes the result on condition that the stored record is
/// still `record` (same state and version).
pub async fn transition(
    store: &dyn OrderStore,
    record: &OrderRecord,
    t: Transition,
    now: Timestamp,
) -> Result<Replaced, TransitionError> {
    let next = record.apply(t, now)?;
    Ok(store.replace(&next, record.expected()).await?)
}

/// Claims a READY, FAILED or CANCELLING `record` for the delivery about to act on it, for
/// `retry.claim_for`: the claimed record, or `None` when another delivery holds an unexpired claim
/// or wrote first. Only the holder of the claim has effects.
pub async fn claim(
    store: &dyn OrderStore,
    retry: &RetryPolicy,
    record: &OrderRecord,
    now: Timestamp,
) -> Result<Option<OrderRecord>, TransitionError> {
    if record.claimed_at(now) {
        return Ok(None);
    }
    let until = now.saturating_add(retry.claim_for).unwrap_or(now);
    let claimed = record.apply(Transition::Claim { until }, now)?;
    Ok(match store.replace(&claimed, record.expected()).await? {
        Replaced::Applied => Some(claimed),
        Replaced::Conflict => None,
    })
}

/// Gives up the claim on `claimed` after its effect failed with `error`, so the retry of the
/// delivery can claim at once; returns `error`. If the release cannot be written, the claim runs
/// out on its own.
pub async fn release<E: std::fmt::Display>(
    store: &dyn OrderStore,
    claimed: &OrderRecord,
    now: Timestamp,
    error: E,
) -> E {
    let released = match claimed.apply(Transition::Release, now) {
        Ok(released) => store.replace(&released, claimed.expected()).await,
        Err(e) => {
            tracing::error!(error = %e, "claim not released");
            return error;
        }
    };
    if let Err(e) = released {
        tracing::warn!(record_id = %claimed.order.record_id, error = %e, "claim not released; it runs out");
    }
    error
}

impl Replaced {
    /// `applied` if this write went through, else `lost`: another delivery moved the order
    /// first, a race every handler is built to lose quietly.
    pub fn or_lost<O>(self, applied: O, lost: O) -> O {
        match self {
            Replaced::Applied => applied,
            Replaced::Conflict => lost,
        }
    }
}

impl Retryable for HandlerError {
    fn retryable(&self) -> bool {
        match self {
            HandlerError::Event(_)
            | HandlerError::WrongEvent { .. }
            | HandlerError::Inconsistent(_)
            | HandlerError::MissingOrder(_) => false,
            HandlerError::Port(e) => e.retryable(),
            HandlerError::Publish(e) => e.retryable(),
            HandlerError::Transition(e) => e.retryable(),
        }
    }
}

impl RetryPolicy {
    /// When a READY or FAILED order's event counts as lost if nobody acted on it.
    pub fn redelivery_at(&self, now: Timestamp) -> Timestamp {
        now.saturating_add(self.redelivery_after).unwrap_or(now)
    }
}

/// Moves `record` to FAILED and, if this call made the move, publishes `OrderFailed`. FAILED
/// keeps a `due_at`, so a lost `OrderFailed` is re-sent by the sweeper.
pub async fn fail(
    store: &dyn OrderStore,
    bus: &dyn EventPublisher,
    retry: &RetryPolicy,
    record: &OrderRecord,
    failure: Failure,
) -> Result<Replaced, HandlerError> {
    let due_at = retry.redelivery_at(failure.failed_at);
    let event = DomainEvent::Failed(OrderFailed::from_record(record, &failure));
    let reason = failure.reason;
    let now = failure.failed_at;
    let replaced = transition(store, record, Transition::Fail { failure, due_at }, now).await?;
    if replaced == Replaced::Applied {
        crate::crash::point(crate::crash::AFTER_FAIL);
        bus.publish(&[event]).await?;
        tracing::warn!(record_id = %record.order.record_id, %reason, "order failed");
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A claim outlasts the longest a function may run (30 s), and no more than twice that.
    #[tokio::test]
    async fn a_claim_lasts_sixty_seconds() {
        use crate::ports::OrderStore;
        let store = crate::memory::InMemoryOrderStore::new();
        let now: Timestamp = "2026-01-14T12:00:00Z".parse().unwrap();
        let record = crate::memory::fixtures::ready("c-1", true, now);
        store.insert(&record).await.unwrap();
        let claimed = claim(&store, &RetryPolicy::default(), &record, now)
            .await
            .unwrap()
            .expect("claimed");
        assert_eq!(
            claimed.claimed_until,
            Some("2026-01-14T12:01:00Z".parse().unwrap())
        );
    }

    #[test]
    fn an_event_counts_as_lost_five_minutes_after_it_was_sent() {
        let now: Timestamp = "2026-01-14T12:00:00Z".parse().unwrap();
        assert_eq!(
            RetryPolicy::default().redelivery_at(now),
            "2026-01-14T12:05:00Z".parse::<Timestamp>().unwrap()
        );
    }
}
