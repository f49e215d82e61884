//! notify-slack: tells the desk about every failed order, once per order and reason, and about
//! every withdrawal the platform refused.
//!
//! Takes four kinds of event:
//! - `OrderFailed` (from evaluate-order and store-result);
//! - `OrderChangeRefused` (from evaluate-order): the order the desk cancelled stays in the
//!   auction. Posted as it comes, with no write: at least once (evaluate-order publishes it once
//!   per refusal but for a crash; two deliveries of one event post twice);
//! - Lambda's on-failure destination record (`Lambda Function Invocation Result - Failure`) of a
//!   handler that failed after its retries: the order it was working on moves to
//!   FAILED{ProcessingError} and the desk hears about it like any other failure;
//! - CodePipeline's state change of a failed delivery run, forwarded by the pipeline stack.
//!
//! A delivery first claims the order for its message (FAILED, `claimed_until` = now +
//! `RetryPolicy.claim_for`, written on condition of the version it read), then sends the message, then
//! moves the order FAILED → NOTIFIED. Of deliveries of one event racing each other only the one
//! whose claim is written sends anything; a later one finds the claim or NOTIFIED and sends
//! nothing. A delivery that dies after its claim leaves a FAILED order due when the claim runs
//! out, and the sweeper re-sends `OrderFailed`: a crash between sending and NOTIFIED repeats the
//! message rather than losing it (Slack's webhooks have no idempotency key to do better).

use std::sync::Arc;

use async_trait::async_trait;
use energy_core::crash;
use energy_core::events::{DetailType, DomainEvent, OrderFailed, SOURCE};
use energy_core::handler::{self, Event, EventHandler, HandlerError};
use energy_core::lifecycle::{OrderRecord, OrderState, Transition};
use energy_core::order::RecordId;
use energy_core::ports::{Clock, Notifier, OrderStore, Replaced};
use energy_core::result::{Failure, FailureReason};
use energy_core::retry::RetryPolicy;
use energy_core::slack;
use serde_json::Value;

/// notify-slack with what it may touch: the orders table and Slack (and the clock).
pub struct NotifySlack {
    pub clock: Arc<dyn Clock>,
    pub orders: Arc<dyn OrderStore>,
    pub notifier: Arc<dyn Notifier>,
    pub config: Config,
}

/// The detail-type of Lambda's on-failure destination records.
pub const LAMBDA_FAILURE: &str = "Lambda Function Invocation Result - Failure";

/// The detail-type of CodePipeline's execution state changes (a failed delivery run).
pub const PIPELINE_STATE: &str = "CodePipeline Pipeline Execution State Change";

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Notified,
    Ignored(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Notified => f.write_str("the desk was told"),
            Outcome::Ignored(why) => write!(f, "ignored: {why}"),
        }
    }
}

pub type Error = HandlerError;

#[async_trait]
impl EventHandler for NotifySlack {
    const NAME: &'static str = "notify-slack";
    type Outcome = Outcome;

    async fn handle(&self, event: Event) -> Result<Outcome, Error> {
        if event.detail_type == LAMBDA_FAILURE {
            return self.processing_error(&event.detail).await;
        }
        if event.detail_type == PIPELINE_STATE {
            return self.pipeline_failed(&event.detail).await;
        }
        let failed = match DomainEvent::parse(&event.detail_type, event.detail)? {
            DomainEvent::Failed(e) => e,
            DomainEvent::ChangeRefused(e) => {
                self.notifier
                    .notify(&slack::render_change_refused(&e))
                    .await?;
                tracing::info!(record_id = %e.order.record_id, "desk told of a refused withdrawal");
                return Ok(Outcome::Notified);
            }
            other => return Err(Error::wrong_event(Self::NAME, other.detail_type())),
        };
        let record = self.orders.get(&failed.order.record_id).await?;
        self.notify(failed, record).await
    }
}

impl NotifySlack {
    async fn notify(
        &self,
        failed: OrderFailed,
        record: Option<OrderRecord>,
    ) -> Result<Outcome, Error> {
        match &record {
            Some(r) if r.state == OrderState::Notified => {
                return Ok(Outcome::Ignored("already notified".into()));
            }
            Some(r) if r.state != OrderState::Failed => {
                return Ok(Outcome::Ignored(format!("order is {}", r.state)));
            }
            Some(r) if r.failure.as_ref().map(|f| f.reason) != Some(failed.reason) => {
                return Ok(Outcome::Ignored(format!(
                    "order failed for another reason than {}",
                    failed.reason
                )));
            }
            _ => {}
        }
        let record = match record {
            Some(r) => match handler::claim(
                self.orders.as_ref(),
                &self.config.retry,
                &r,
                self.clock.now(),
            )
            .await?
            {
                Some(claimed) => Some(claimed),
                None => {
                    return Ok(Outcome::Ignored(
                        "another delivery is telling the desk".into(),
                    ));
                }
            },
            None => None,
        };
        crash::point(crash::NOTIFY_AFTER_CLAIM);
        if let Err(e) = self.notifier.notify(&slack::render(&failed)).await {
            return Err(match &record {
                Some(claimed) => {
                    let now = self.clock.now();
                    handler::release(self.orders.as_ref(), claimed, now, e.into()).await
                }
                None => e.into(),
            });
        }
        crash::point(crash::NOTIFY_AFTER_POST);
        tracing::debug!(record_id = %failed.order.record_id, reason = %failed.reason, "desk notified");
        if let Some(r) = record
            && handler::transition(
                self.orders.as_ref(),
                &r,
                Transition::Notified,
                self.clock.now(),
            )
            .await?
                == Replaced::Conflict
        {
            tracing::warn!(record_id = %failed.order.record_id, "notified, but another delivery marked the order first");
        }
        Ok(Outcome::Notified)
    }

    /// A failed run of the delivery pipeline (forwarded to the bus by the pipeline stack).
    async fn pipeline_failed(&self, detail: &Value) -> Result<Outcome, Error> {
        let state = detail["state"].as_str().unwrap_or_default();
        if state != "FAILED" {
            return Ok(Outcome::Ignored(format!("pipeline state {state}")));
        }
        let pipeline = detail["pipeline"].as_str().unwrap_or("the pipeline");
        let execution = detail["execution-id"].as_str().unwrap_or("-");
        let text =
            format!(":construction: Delivery pipeline {pipeline} failed (execution {execution})");
        let notification = energy_core::ports::Notification {
            key: format!("pipeline/{execution}"),
            text: text.clone(),
            payload: serde_json::json!({"text": text}),
        };
        self.notifier.notify(&notification).await?;
        Ok(Outcome::Notified)
    }

    /// Turns a Lambda on-failure record into FAILED{ProcessingError} and a message.
    async fn processing_error(&self, detail: &Value) -> Result<Outcome, Error> {
        let request = &detail["requestPayload"];
        // A failure on an event that is not ours (a consumer's rule sent its own events to one
        // of our functions) or that the function does not take says nothing about the order
        // it names: the order is left as it is, and nobody is told it failed.
        let source = request["source"].as_str();
        let error_type = detail["responsePayload"]["errorType"]
            .as_str()
            .unwrap_or("");
        if source.is_some_and(|s| s != SOURCE) || error_type.ends_with(".WrongEvent") {
            tracing::warn!(source, error_type, detail_type = %request["detail-type"], "a function failed on an event it does not take; no order failed");
            return Ok(Outcome::Ignored(format!(
                "a failure on an event that is not an order's step ({} from {})",
                request["detail-type"].as_str().unwrap_or("?"),
                source.unwrap_or("?")
            )));
        }
        // A round of checks is about many orders, none of them failed: they stay due, and the
        // sweeper re-sends each on its own (whose failures come here, naming their order).
        if request["detail-type"].as_str() == Some(DetailType::ChecksDue.name()) {
            tracing::warn!(due_by = %request["detail"]["due_by"], "a round of checks failed after its retries; the sweeper re-sends its orders");
            return Ok(Outcome::Ignored(
                "a round of checks failed; its orders stay due, for the sweeper".into(),
            ));
        }
        let record_id = request["detail"]["record_id"]
            .as_str()
            .and_then(|s| RecordId::parse(s).ok())
            .ok_or_else(|| {
                Error::Inconsistent(format!(
                    "on-failure record {} names no order",
                    detail["requestContext"]["requestId"]
                ))
            })?;
        let function = detail["requestContext"]["functionArn"]
            .as_str()
            .unwrap_or("a handler");
        // arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
        let function = function.rsplit(":function:").next().unwrap_or(function);
        let function = function.split(':').next().unwrap_or(function);
        let tries = detail["requestContext"]["approximateInvokeCount"]
            .as_u64()
            .unwrap_or(0);
        let error = &detail["responsePayload"];
        let message = format!(
            "{function} failed {tries} times on {}: {} {}",
            request["detail-type"].as_str().unwrap_or("an event"),
            error["errorType"].as_str().unwrap_or("error"),
            error["errorMessage"].as_str().unwrap_or("")
        );
        let Some(record) = self.orders.get(&record_id).await? else {
            // The order is gone (or never was): the desk still hears that a handler gave up on it.
            let text = format!(":rotating_light: Order {record_id} is not in the store; {message}");
            let notification = energy_core::ports::Notification {
                key: format!("{record_id}/ProcessingError"),
                text: text.clone(),
                payload: serde_json::json!({"text": text}),
            };
            self.notifier.notify(&notification).await?;
            return Ok(Outcome::Notified);
        };
        let now = self.clock.now();
        if record.claimed_at(now) {
            // Another delivery is acting on the order (storing its result): this failure is of
            // a delivery that lost to it, and the claimant's own outcome decides.
            return Ok(Outcome::Ignored(format!(
                "another delivery holds order {record_id}; {message}"
            )));
        }
        if !matches!(
            record.state,
            OrderState::Received | OrderState::Pending | OrderState::Ready
        ) {
            return Ok(Outcome::Ignored(format!(
                "order is {}; {message}",
                record.state
            )));
        }
        let failure = Failure {
            reason: FailureReason::ProcessingError,
            message,
            failed_at: now,
        };
        let due_at = self.config.retry.redelivery_at(now);
        let fail = Transition::Fail {
            failure: failure.clone(),
            due_at,
        };
        if handler::transition(self.orders.as_ref(), &record, fail, now).await?
            == Replaced::Conflict
        {
            return Ok(Outcome::Ignored(
                "the order moved while the failure was handled".into(),
            ));
        }
        let Some(failed_record) = self.orders.get(&record_id).await? else {
            return Ok(Outcome::Ignored(format!("order {record_id} vanished")));
        };
        self.notify(
            OrderFailed::from_record(&failed_record, &failure),
            Some(failed_record),
        )
        .await
    }
}
