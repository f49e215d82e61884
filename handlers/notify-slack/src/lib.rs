//! notify-slack: tells the desk about every failed order, once per order and reason.
//!
//! Takes two kinds of event:
//! - `OrderFailed` (from evaluate-order and store-result);
//! - Lambda's on-failure destination record (`Lambda Function Invocation Result - Failure`) of a
//!   handler that failed after its retries: the order it was working on moves to
//!   FAILED{ProcessingError} and the desk hears about it like any other failure;
//! - CodePipeline's state change of a failed delivery run, forwarded by the pipeline stack.
//!
//! The message is sent, then the order moves FAILED → NOTIFIED; a later delivery of the same
//! event finds NOTIFIED and sends nothing. The order is this way round on purpose: a crash
//! between the two repeats a message rather than losing one.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use energy_core::events::{DomainEvent, OrderFailed};
use energy_core::lifecycle::{OrderRecord, OrderState, Transition};
use energy_core::order::RecordId;
use energy_core::ports::{Ports, Replaced};
use energy_core::result::{Failure, FailureReason};
use energy_core::retry::RetryPolicy;
use energy_core::slack;
use serde_json::Value;

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

pub use energy_core::handler::HandlerError as Error;

/// Handles one event.
pub async fn handle(
    event: EventBridgeEvent<Value>,
    ports: &Ports,
    config: &Config,
) -> Result<Outcome, Error> {
    if event.detail_type == LAMBDA_FAILURE {
        return processing_error(&event.detail, ports, config).await;
    }
    if event.detail_type == PIPELINE_STATE {
        return pipeline_failed(&event.detail, ports).await;
    }
    let failed = match DomainEvent::parse(&event.detail_type, event.detail)? {
        DomainEvent::Failed(e) => e,
        other => return Err(Error::wrong_event("notify-slack", other.detail_type())),
    };
    let record = ports.store.get(&failed.order.record_id).await?;
    notify(failed, record, ports).await
}

async fn notify(
    failed: OrderFailed,
    record: Option<OrderRecord>,
    ports: &Ports,
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
    ports.notifier.notify(&slack::render(&failed)).await?;
    tracing::info!(record_id = %failed.order.record_id, reason = %failed.reason, "desk notified");
    if let Some(r) = record
        && ports.transition(&r, Transition::Notified).await? == Replaced::Conflict
    {
        tracing::warn!(record_id = %failed.order.record_id, "notified, but another delivery marked the order first");
    }
    Ok(Outcome::Notified)
}

/// A failed run of the delivery pipeline (forwarded to the bus by the pipeline stack).
async fn pipeline_failed(detail: &Value, ports: &Ports) -> Result<Outcome, Error> {
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
    ports.notifier.notify(&notification).await?;
    Ok(Outcome::Notified)
}

/// Turns a Lambda on-failure record into FAILED{ProcessingError} and a message.
async fn processing_error(
    detail: &Value,
    ports: &Ports,
    config: &Config,
) -> Result<Outcome, Error> {
    let request = &detail["requestPayload"];
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
    let Some(record) = ports.store.get(&record_id).await? else {
        return Ok(Outcome::Ignored(format!("no order {record_id}; {message}")));
    };
    if !matches!(
        record.state,
        OrderState::Received | OrderState::Pending | OrderState::Ready
    ) {
        return Ok(Outcome::Ignored(format!(
            "order is {}; {message}",
            record.state
        )));
    }
    let now = ports.clock.now();
    let failure = Failure {
        reason: FailureReason::ProcessingError,
        message,
        failed_at: now,
    };
    let due_at = config.retry.redelivery_at(now);
    if ports
        .transition(
            &record,
            Transition::Fail {
                failure: failure.clone(),
                due_at,
            },
        )
        .await?
        == Replaced::Conflict
    {
        return Ok(Outcome::Ignored(
            "the order moved while the failure was handled".into(),
        ));
    }
    let Some(failed_record) = ports.store.get(&record_id).await? else {
        return Ok(Outcome::Ignored(format!("order {record_id} vanished")));
    };
    notify(
        OrderFailed::from_record(&failed_record, &failure),
        Some(failed_record),
        ports,
    )
    .await
}
