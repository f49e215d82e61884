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
//! Before any effect the delivery claims the order (READY, `claimed_until`, written on condition of
//! the version it read): of deliveries racing each other only the claimant writes and announces;
//! if it dies, the claim runs out and the sweeper re-sends `OrderReady`.
//!
//! Anything but a READY order makes the event a duplicate: nothing happens. The result written is
//! the one stored with the order, not the event's copy: the store is the authority.
//!
//! Its own errors are returned: Lambda retries the asynchronous invocation, then its on-failure
//! destination puts the failure on the bus, where notify-slack turns it into `ProcessingError`.

use std::sync::Arc;

use async_trait::async_trait;
use energy_core::crash;
use energy_core::events::{DomainEvent, OrderRef, OrderResultStored};
use energy_core::handler::{self, Event, EventHandler, HandlerError};
use energy_core::lifecycle::{OrderRecord, OrderState, Transition};
use energy_core::ports::{Clock, EventPublisher, OrderStore, PortError, ResultStore};
use energy_core::result::{Failure, FailureReason, OrderResult};
use energy_core::retry::RetryPolicy;

/// store-result with what it may touch: the orders table, the bus, the results bucket (and the
/// clock).
pub struct StoreResult {
    pub clock: Arc<dyn Clock>,
    pub orders: Arc<dyn OrderStore>,
    pub bus: Arc<dyn EventPublisher>,
    pub results: Arc<dyn ResultStore>,
    pub config: Config,
}

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

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Stored { key } => write!(f, "result stored at {key}"),
            Outcome::Rejected => f.write_str("rejected; the desk will be told"),
            Outcome::Ignored(why) => write!(f, "ignored: {why}"),
            Outcome::LostRace => f.write_str("another delivery moved the order first"),
        }
    }
}

pub type Error = HandlerError;

#[async_trait]
impl EventHandler for StoreResult {
    const NAME: &'static str = "store-result";
    type Outcome = Outcome;

    /// Handles one `OrderReady`.
    async fn handle(&self, event: Event) -> Result<Outcome, Error> {
        let ready = match DomainEvent::parse(&event.detail_type, event.detail)? {
            DomainEvent::Ready(e) => e,
            other => return Err(Error::wrong_event(Self::NAME, other.detail_type())),
        };
        self.act(ready.order.record_id).await
    }
}

impl StoreResult {
    async fn act(&self, record_id: energy_core::order::RecordId) -> Result<Outcome, Error> {
        let Some(record) = self.orders.get(&record_id).await? else {
            // Orders live until 24 h after they are final: an event for one that is not there
            // is a defect the operator must see (on-failure destination, then the desk).
            return Err(Error::MissingOrder(record_id));
        };
        if record.state != OrderState::Ready {
            return Ok(Outcome::Ignored(format!("order is {}", record.state)));
        }
        let result = record.result.clone().ok_or_else(|| {
            Error::Inconsistent(format!("order {record_id} is READY without a result"))
        })?;
        let now = self.clock.now();
        if result.outcome.is_stored() {
            let claimed =
                handler::claim(self.orders.as_ref(), &self.config.retry, &record, now).await?;
            let Some(record) = claimed else {
                return Ok(Outcome::Ignored(
                    "another delivery is storing the result".into(),
                ));
            };
            let key = match self.write(&record, &result).await {
                Ok(key) => key,
                Err(e) => {
                    return Err(handler::release(self.orders.as_ref(), &record, now, e).await);
                }
            };
            let stored = Transition::Stored { key: key.clone() };
            let moved = handler::transition(self.orders.as_ref(), &record, stored, now).await?;
            return Ok(moved.or_lost(Outcome::Stored { key }, Outcome::LostRace));
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
        let moved = handler::fail(
            self.orders.as_ref(),
            self.bus.as_ref(),
            &self.config.retry,
            &record,
            failure,
        )
        .await?;
        Ok(moved.or_lost(Outcome::Rejected, Outcome::LostRace))
    }

    /// The claimant's effects: the result object under the order's key, then
    /// `OrderResultStored`. Answers the key.
    async fn write(&self, record: &OrderRecord, result: &OrderResult) -> Result<String, Error> {
        let key = record.order.result_key();
        let body = serde_json::to_vec_pretty(result)
            .map_err(|e| PortError::permanent("result", e.to_string()))?;
        self.results.put(&key, &body).await?;
        crash::point(crash::STORE_AFTER_PUT);
        let stored = OrderResultStored {
            order: OrderRef::from(&record.order),
            outcome: result.outcome,
            key: key.clone(),
            accepted_energy_mwh: result.totals.accepted_energy_mwh,
            notional_eur: result.totals.notional_eur,
        };
        self.bus
            .publish(&[DomainEvent::ResultStored(stored)])
            .await?;
        crash::point(crash::STORE_AFTER_PUBLISH);
        tracing::debug!(record_id = %record.order.record_id, %key, "result stored");
        Ok(key)
    }
}
