//! What every handler binary does around its handler: tracing, the runtime loop, one span per
//! invocation carrying the event id and the record id, and errors as Diagnostics that say
//! whether a retry can help.

use std::fmt::Display;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use energy_core::handler::{EventHandler, HandlerError};
use energy_core::ports::Retryable;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};
use tracing::Instrument;

/// The Diagnostic Lambda records: `errorType` says whether a retry can help and what failed
/// (`Retryable.Port`, `NotRetryable.WrongEvent`).
pub fn diagnostic(e: &HandlerError) -> Diagnostic {
    Diagnostic {
        error_type: e.error_type(),
        error_message: e.to_string(),
    }
}

/// Logs a start-up failure (a bad variable) and turns it into the runtime's error, which ends
/// the process: Lambda reports it as an init error with this message.
pub fn startup_error(e: impl Display) -> lambda_runtime::Error {
    tracing::error!(error = %e, "cannot start");
    e.to_string().into()
}

/// Runs an EventBridge-triggered handler until the runtime stops.
pub async fn run_events<H: EventHandler>(handler: H) -> Result<(), lambda_runtime::Error> {
    energy_core::crash::check_env().map_err(startup_error)?;
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<Value>>| async move {
            let detail = &event.payload;
            let span = tracing::info_span!(
                "event",
                function = H::NAME,
                event_id = detail.id.as_deref().unwrap_or("-"),
                detail_type = %detail.detail_type,
                record_id = detail.detail["record_id"].as_str().unwrap_or("-"),
                request_id = %event.context.request_id,
            );
            async move {
                match handler.handle(event.payload).await {
                    Ok(outcome) => {
                        let outcome = outcome.to_string();
                        tracing::info!(%outcome, "handled");
                        Ok::<Value, Diagnostic>(json!({ "outcome": outcome }))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, retryable = e.retryable(), "failed");
                        Err(diagnostic(&e))
                    }
                }
            }
            .instrument(span)
            .await
        },
    ))
    .await
}

/// The SDK configuration every handler shares: region, credentials and `AWS_ENDPOINT_URL` from
/// the environment.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
