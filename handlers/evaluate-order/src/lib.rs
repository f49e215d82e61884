//! evaluate-order: hands an order to the auction platform and waits for its results.
//!
//! Triggered by `OrderSubmitted` and `OrderEvaluationDue` (from its own one-time schedules and
//! from the sweeper), always as an EventBridge event. What it does depends on the order's state:
//!
//! | state | action |
//! |---|---|
//! | RECEIVED | submit to the platform; schedule check 1 at the expected publication time; → PENDING(1) |
//! | PENDING(n), results out | → READY, emit `OrderReady` |
//! | PENDING(n), not yet, n < MaxAttempts | schedule check n+1 (`<record_id>-<n+1>`), → PENDING(n+1) |
//! | PENDING(n), not yet, n = MaxAttempts | → FAILED, emit `OrderFailed{ResultsTimeout}` |
//! | READY / FAILED, overdue | re-emit the event nobody acted on (the sweeper's safety net) |
//! | anything else | a duplicate: nothing |
//!
//! The schedule is created *before* the order moves, under a name derived from the order and
//! attempt: a crash between the two is repaired by the next delivery, and a duplicate delivery
//! finds the schedule already there. An event for an attempt older than the order's is stale and
//! ignored, so three deliveries of one event make one schedule.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use energy_core::calendar::MarketRules;
use energy_core::events::{
    DomainEvent, OrderEvaluationDue, OrderFailed, OrderReady, OrderRef, Trigger,
};
use energy_core::handler;
use energy_core::lifecycle::{OrderRecord, OrderState, Transition};
use energy_core::ports::{Ports, Replaced, ResultsStatus, Submission};
use energy_core::result::{Failure, FailureReason};
use energy_core::retry::{RetryPolicy, schedule_name};
use jiff::Timestamp;
use serde_json::Value;

/// Settings of the handler.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub retry: RetryPolicy,
    /// The calendar, for the expected publication time when the platform does not say.
    pub rules: MarketRules,
}

impl Config {
    /// The publication time to wait for: the platform's word, else the calendar's.
    fn publication(
        &self,
        record: &OrderRecord,
        platform_says: Option<Timestamp>,
    ) -> Option<Timestamp> {
        platform_says.or_else(|| self.rules.expected_publication(record.order.auction()).ok())
    }
}

/// What one invocation did (returned so tests and logs can say it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    HandedOver {
        first_check_at: Timestamp,
    },
    Retrying {
        attempt: u32,
        at: Timestamp,
    },
    Ready,
    Failed(FailureReason),
    Resent(&'static str),
    /// Stale or duplicate event; the order has moved on.
    Ignored(String),
    /// Another delivery moved the order first.
    LostRace,
}

pub use energy_core::handler::HandlerError as Error;

/// Handles one event.
pub async fn handle(
    event: EventBridgeEvent<Value>,
    ports: &Ports,
    config: &Config,
) -> Result<Outcome, Error> {
    let (record_id, attempt) = match DomainEvent::parse(&event.detail_type, event.detail)? {
        DomainEvent::Submitted(e) => (e.order.record_id, 0),
        DomainEvent::EvaluationDue(e) => (e.record_id, e.attempt),
        other => return Err(Error::wrong_event("evaluate-order", other.detail_type())),
    };
    let Some(record) = ports.store.get(&record_id).await? else {
        tracing::warn!(%record_id, "no such order (expired or never stored)");
        return Ok(Outcome::Ignored(format!("no order {record_id}")));
    };
    let now = ports.clock.now();
    match record.state {
        OrderState::Received => hand_over(record, ports, config, now).await,
        OrderState::Pending if attempt < record.attempt => Ok(Outcome::Ignored(format!(
            "event for check {attempt}, order is at check {}",
            record.attempt
        ))),
        OrderState::Pending => check(record, ports, config, now).await,
        OrderState::Ready | OrderState::Failed if record.due_at.is_some_and(|d| d <= now) => {
            resend(record, ports, config, now).await
        }
        state => Ok(Outcome::Ignored(format!("order is {state}"))),
    }
}

async fn hand_over(
    record: OrderRecord,
    ports: &Ports,
    config: &Config,
    now: Timestamp,
) -> Result<Outcome, Error> {
    match ports.platform.submit(&record.order).await? {
        Submission::Accepted {
            expected_publication,
        } => {
            let expected = config.publication(&record, expected_publication);
            let at = config
                .retry
                .check_at(now, expected, &record.order.record_id, 1);
            schedule(ports, &record, 1, at).await?;
            Ok(
                match ports
                    .transition(&record, Transition::HandedOver { due_at: at })
                    .await?
                {
                    Replaced::Applied => Outcome::HandedOver { first_check_at: at },
                    Replaced::Conflict => Outcome::LostRace,
                },
            )
        }
        Submission::Refused { reason } => {
            fail(
                ports,
                config,
                &record,
                FailureReason::InvalidAtPlatform,
                reason,
                now,
            )
            .await
        }
    }
}

async fn check(
    record: OrderRecord,
    ports: &Ports,
    config: &Config,
    now: Timestamp,
) -> Result<Outcome, Error> {
    match ports.platform.results(&record.order).await? {
        ResultsStatus::Published(result) => {
            let due_at = config.retry.redelivery_at(now);
            let event = OrderReady {
                order: OrderRef::from(&record.order),
                outcome: result.outcome,
                result: (*result).clone(),
            };
            match ports
                .transition(
                    &record,
                    Transition::Ready {
                        result: *result,
                        due_at,
                    },
                )
                .await?
            {
                Replaced::Applied => {
                    ports.bus.publish(&[DomainEvent::Ready(event)]).await?;
                    Ok(Outcome::Ready)
                }
                Replaced::Conflict => Ok(Outcome::LostRace),
            }
        }
        ResultsStatus::NotYet { .. } if record.attempt >= config.retry.max_attempts => {
            let message = format!(
                "no auction results after {} checks; giving up",
                record.attempt
            );
            fail(
                ports,
                config,
                &record,
                FailureReason::ResultsTimeout,
                message,
                now,
            )
            .await
        }
        ResultsStatus::NotYet {
            expected_publication,
        } => {
            let next = record.attempt + 1;
            let expected = config.publication(&record, expected_publication);
            let at = config
                .retry
                .check_at(now, expected, &record.order.record_id, next);
            schedule(ports, &record, next, at).await?;
            Ok(
                match ports
                    .transition(&record, Transition::Retry { due_at: at })
                    .await?
                {
                    Replaced::Applied => Outcome::Retrying { attempt: next, at },
                    Replaced::Conflict => Outcome::LostRace,
                },
            )
        }
        ResultsStatus::Unknown { reason } => {
            fail(
                ports,
                config,
                &record,
                FailureReason::InvalidAtPlatform,
                reason,
                now,
            )
            .await
        }
    }
}

async fn schedule(
    ports: &Ports,
    record: &OrderRecord,
    attempt: u32,
    at: Timestamp,
) -> Result<(), Error> {
    let name = schedule_name(&record.order.record_id, attempt);
    let due = OrderEvaluationDue {
        record_id: record.order.record_id.clone(),
        attempt,
        due_at: at,
        trigger: Trigger::Schedule,
    };
    let outcome = ports.scheduler.schedule(&name, at, &due).await?;
    tracing::info!(record_id = %record.order.record_id, schedule = %name, %at, ?outcome, "check scheduled");
    Ok(())
}

async fn fail(
    ports: &Ports,
    config: &Config,
    record: &OrderRecord,
    reason: FailureReason,
    message: String,
    now: Timestamp,
) -> Result<Outcome, Error> {
    let failure = Failure {
        reason,
        message,
        failed_at: now,
    };
    Ok(
        match handler::fail(ports, &config.retry, record, failure).await? {
            Replaced::Applied => Outcome::Failed(reason),
            Replaced::Conflict => Outcome::LostRace,
        },
    )
}

/// Re-sends the event of a READY or FAILED order whose consumer never acted.
async fn resend(
    record: OrderRecord,
    ports: &Ports,
    config: &Config,
    now: Timestamp,
) -> Result<Outcome, Error> {
    let event = match (&record.state, &record.result, &record.failure) {
        (OrderState::Ready, Some(result), _) => DomainEvent::Ready(OrderReady {
            order: OrderRef::from(&record.order),
            outcome: result.outcome,
            result: result.clone(),
        }),
        (OrderState::Failed, _, Some(failure)) => {
            DomainEvent::Failed(OrderFailed::from_record(&record, failure))
        }
        _ => {
            return Ok(Outcome::Ignored(format!(
                "{} order without its payload",
                record.state
            )));
        }
    };
    let due_at = config.retry.redelivery_at(now);
    match ports
        .transition(&record, Transition::Requeue { due_at })
        .await?
    {
        Replaced::Applied => {
            let kind = event.detail_type();
            ports.bus.publish(&[event]).await?;
            tracing::info!(record_id = %record.order.record_id, event = kind, "re-sent");
            Ok(Outcome::Resent(kind))
        }
        Replaced::Conflict => Ok(Outcome::LostRace),
    }
}
