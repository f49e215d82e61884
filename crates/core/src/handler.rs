//! What every event handler shares: its error type, and the moves more than one handler makes.

use jiff::Timestamp;

use crate::events::{DomainEvent, EventError, OrderFailed};
use crate::lifecycle::{OrderRecord, Transition};
use crate::ports::{PortError, Ports, PublishError, Replaced, Retryable, TransitionError};
use crate::result::Failure;
use crate::retry::RetryPolicy;

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
}

impl Retryable for HandlerError {
    fn retryable(&self) -> bool {
        match self {
            HandlerError::Event(_)
            | HandlerError::WrongEvent { .. }
            | HandlerError::Inconsistent(_) => false,
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
    ports: &Ports,
    retry: &RetryPolicy,
    record: &OrderRecord,
    failure: Failure,
) -> Result<Replaced, HandlerError> {
    let due_at = retry.redelivery_at(failure.failed_at);
    let event = DomainEvent::Failed(OrderFailed::from_record(record, &failure));
    let reason = failure.reason;
    let replaced = ports
        .transition(record, Transition::Fail { failure, due_at })
        .await?;
    if replaced == Replaced::Applied {
        ports.bus.publish(&[event]).await?;
        tracing::warn!(record_id = %record.order.record_id, %reason, "order failed");
    }
    Ok(replaced)
}
