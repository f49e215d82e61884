//! store-result: acts on `OrderReady`.
//!
//! - Accepted or partially accepted: writes the result JSON under the order's deterministic key
//!   (`results/<delivery_date>/<zone>/<record_id>.json`), emits `OrderResultStored`, moves the
//!   order READY → STORED. The object is written and the event sent *before* the final
//!   transition, so a crash in between is repaired by the retry (same key, same bytes; consumers
//!   of `OrderResultStored` are at-least-once like every EventBridge consumer).
//! - Rejected: READY → FAILED, then emits `OrderFailed{Rejected}`. FAILED keeps a `due_at`, so a
//!   lost `OrderFailed` is re-sent by the sweeper.
//!
//! Anything but a READY order makes the event a duplicate: nothing happens. The result written is
//! the one stored with the order, not the event's copy: the store is the authority.
//!
//! Its own errors are returned: Lambda retries the asynchronous invocation, then its on-failure
//! destination puts the failure on the bus, where notify-slack turns it into `ProcessingError`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use energy_core::events::{DomainEvent, OrderRef, OrderResultStored};
use energy_core::handler;
use energy_core::lifecycle::{OrderState, Transition};
use energy_core::ports::{PortError, Ports, Replaced};
use energy_core::result::{Failure, FailureReason};
use energy_core::retry::RetryPolicy;
use serde_json::Value;

/// Settings of the handler.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored { key: String },
    Rejected,
    Ignored(String),
    LostRace,
}

pub use energy_core::handler::HandlerError as Error;

/// Handles one `OrderReady`.
pub async fn handle(
    event: EventBridgeEvent<Value>,
    ports: &Ports,
    config: &Config,
) -> Result<Outcome, Error> {
    let ready = match DomainEvent::parse(&event.detail_type, event.detail)? {
        DomainEvent::Ready(e) => e,
        other => return Err(Error::wrong_event("store-result", other.detail_type())),
    };
    let record_id = ready.order.record_id;
    let Some(record) = ports.store.get(&record_id).await? else {
        return Ok(Outcome::Ignored(format!("no order {record_id}")));
    };
    if record.state != OrderState::Ready {
        return Ok(Outcome::Ignored(format!("order is {}", record.state)));
    }
    let result = record.result.clone().ok_or_else(|| {
        Error::Inconsistent(format!("order {record_id} is READY without a result"))
    })?;
    let now = ports.clock.now();
    if result.outcome.is_stored() {
        let key = record.order.result_key();
        let body = serde_json::to_vec_pretty(&result)
            .map_err(|e| PortError::permanent("result", e.to_string()))?;
        ports.results.put(&key, &body).await?;
        let stored = OrderResultStored {
            order: OrderRef::from(&record.order),
            outcome: result.outcome,
            key: key.clone(),
            accepted_energy_mwh: result.totals.accepted_energy_mwh,
            notional_eur: result.totals.notional_eur,
        };
        ports
            .bus
            .publish(&[DomainEvent::ResultStored(stored)])
            .await?;
        tracing::info!(%record_id, %key, "result stored");
        return Ok(
            match ports
                .transition(&record, Transition::Stored { key: key.clone() })
                .await?
            {
                Replaced::Applied => Outcome::Stored { key },
                Replaced::Conflict => Outcome::LostRace,
            },
        );
    }
    let message = result
        .rejection_reason
        .clone()
        .unwrap_or_else(|| "nothing accepted".to_string());
    let failure = Failure {
        reason: FailureReason::Rejected,
        message,
        failed_at: now,
    };
    Ok(
        match handler::fail(ports, &config.retry, &record, failure).await? {
            Replaced::Applied => Outcome::Rejected,
            Replaced::Conflict => Outcome::LostRace,
        },
    )
}
