//! Builds each port from the SDK configuration and the environment. A handler's `main.rs` asks
//! for the ones its struct holds, once, at start-up; a missing variable stops start-up naming it.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use energy_core::ports::{
    Clock, DueIndex, EventPublisher, Notifier, OrderStore, ResultStore, RetryScheduler,
    SweepClaims, SystemClock,
};
use energy_core::retry::RetryPolicy;
use jiff::SignedDuration;

use crate::dynamodb::DynamoOrderStore;
use crate::env::{ConfigError, Env};
use crate::eventbridge::EventBridgePublisher;
use crate::s3::S3Results;
use crate::scheduler::{EventBridgeScheduler, SchedulerTarget};
use crate::slack::{CachedSecret, SlackWebhook};

/// The SDK configuration and the environment, from which each port is built on demand.
pub struct Wiring {
    sdk: SdkConfig,
    env: Env,
}

impl Wiring {
    pub fn new(sdk: SdkConfig, env: Env) -> Self {
        Wiring { sdk, env }
    }

    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The system clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }

    /// The orders table (`ORDERS_TABLE`).
    pub fn orders(&self) -> Result<Arc<dyn OrderStore>, ConfigError> {
        let table = self.env.required("ORDERS_TABLE")?;
        Ok(Arc::new(DynamoOrderStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            table,
        )))
    }

    /// The orders table's due index (`ORDERS_TABLE`), to read: a round of checks' Query.
    pub fn due_index(&self) -> Result<Arc<dyn DueIndex>, ConfigError> {
        let table = self.env.required("ORDERS_TABLE")?;
        Ok(Arc::new(DynamoOrderStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            table,
        )))
    }

    /// The orders table's due index (`ORDERS_TABLE`) with the sweeper's claim: its Query and
    /// its UpdateItem.
    pub fn sweep_index(&self) -> Result<Arc<dyn SweepClaims>, ConfigError> {
        let table = self.env.required("ORDERS_TABLE")?;
        Ok(Arc::new(DynamoOrderStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            table,
        )))
    }

    /// The event bus (`EVENT_BUS_NAME`).
    pub fn bus(&self) -> Result<Arc<dyn EventPublisher>, ConfigError> {
        let bus = self.env.required("EVENT_BUS_NAME")?;
        Ok(Arc::new(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&self.sdk),
            bus,
        )))
    }

    /// One-time schedules (`SCHEDULE_GROUP`, `EVENT_BUS_ARN`, `SCHEDULER_ROLE_ARN`, and
    /// `SCHEDULE_DLQ_ARN` for their dead letters, optional).
    pub fn scheduler(&self) -> Result<Arc<dyn RetryScheduler>, ConfigError> {
        let target = SchedulerTarget {
            group: self.env.required("SCHEDULE_GROUP")?,
            bus_arn: self.env.required("EVENT_BUS_ARN")?,
            role_arn: self.env.required("SCHEDULER_ROLE_ARN")?,
            dead_letter_arn: self.env.optional("SCHEDULE_DLQ_ARN"),
        };
        Ok(Arc::new(EventBridgeScheduler::new(
            aws_sdk_scheduler::Client::new(&self.sdk),
            target,
        )))
    }

    /// The results bucket (`RESULTS_BUCKET`). Path-style addressing when an endpoint override is
    /// set (an emulator).
    pub fn results(&self) -> Result<Arc<dyn ResultStore>, ConfigError> {
        let bucket = self.env.required("RESULTS_BUCKET")?;
        let config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.sdk.endpoint_url().is_some())
            .build();
        Ok(Arc::new(S3Results::new(
            aws_sdk_s3::Client::from_conf(config),
            bucket,
        )))
    }

    /// Slack (`SLACK_WEBHOOK_SECRET_ARN`, `SLACK_TIMEOUT_MS`, default 5000).
    pub fn slack(&self) -> Result<Arc<dyn Notifier>, ConfigError> {
        let secret = self.env.required("SLACK_WEBHOOK_SECRET_ARN")?;
        let timeout = Duration::from_millis(self.env.parse_or("SLACK_TIMEOUT_MS", 5_000u64)?);
        let url = CachedSecret::new(aws_sdk_secretsmanager::Client::new(&self.sdk), secret);
        let webhook = SlackWebhook::new(url, timeout).map_err(|e| ConfigError {
            name: "SLACK_WEBHOOK_SECRET_ARN",
            problem: e.to_string(),
        })?;
        Ok(Arc::new(webhook))
    }
}

/// `MAX_ATTEMPTS` (default 14) and `RETRY_BASE_SECONDS` (default 60) over the default policy.
pub fn retry_policy(env: &Env) -> Result<RetryPolicy, ConfigError> {
    let defaults = RetryPolicy::default();
    let max_attempts: u32 = env.parse_or("MAX_ATTEMPTS", defaults.max_attempts)?;
    if max_attempts == 0 {
        return Err(ConfigError {
            name: "MAX_ATTEMPTS",
            problem: "must be at least 1".into(),
        });
    }
    let base: i64 = env.parse_or("RETRY_BASE_SECONDS", defaults.base.as_secs())?;
    if base <= 0 {
        return Err(ConfigError {
            name: "RETRY_BASE_SECONDS",
            problem: "must be at least 1".into(),
        });
    }
    Ok(RetryPolicy {
        max_attempts,
        base: SignedDuration::from_secs(base),
        ..defaults
    })
}
