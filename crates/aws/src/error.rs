//! SDK errors as the core's [`PortError`]: what failed, and whether trying again can help.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use energy_core::ports::PortError;

/// Error codes that mean "slow down and try again", whatever the service.
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "InternalFailure",
    "ServiceUnavailable",
    "InternalServerError",
];

/// Classifies an SDK error: transport failures, timeouts, throttling and 5xx are retryable;
/// everything else (validation, access denied, missing resources) is not.
pub fn sdk_error<E>(what: &'static str, e: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let retryable = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            status >= 500
                || status == 429
                || s.err().code().is_some_and(|c| THROTTLING.contains(&c))
        }
        _ => false,
    };
    let message = DisplayErrorContext(&e).to_string();
    PortError {
        what,
        message,
        retryable,
    }
}

/// The service's error code, for the cases a caller handles itself.
pub fn code<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}
