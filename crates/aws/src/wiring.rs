//! Builds a function's [`Ports`] from the SDK configuration: only the ports it names, the others
//! [`Unused`]. Clients are built once, at start-up.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use energy_core::ports::{AuctionPlatform, Ports, SystemClock};
use energy_core::retry::RetryPolicy;
use jiff::SignedDuration;

use crate::dynamodb::DynamoOrderStore;
use crate::env::{ConfigError, Env};
use crate::eventbridge::EventBridgePublisher;
use crate::s3::S3Results;
use crate::scheduler::{EventBridgeScheduler, SchedulerTarget};
use crate::slack::{CachedSecret, SlackWebhook};
use crate::unused::Unused;

/// A function's ports under construction.
pub struct Wiring {
    sdk: SdkConfig,
    ports: Ports,
}

impl Wiring {
    /// Every port unused but the clock; `function` names the function in wiring errors.
    pub fn new(sdk: SdkConfig, function: &'static str) -> Self {
        let unused = Arc::new(Unused(function));
        let ports = Ports {
            clock: Arc::new(SystemClock),
            store: unused.clone(),
            bus: unused.clone(),
            scheduler: unused.clone(),
            results: unused.clone(),
            notifier: unused.clone(),
            platform: unused,
        };
        Wiring { sdk, ports }
    }

    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The orders table (`ORDERS_TABLE`).
    pub fn store(mut self, env: &Env) -> Result<Self, ConfigError> {
        let table = env.required("ORDERS_TABLE")?;
        self.ports.store = Arc::new(DynamoOrderStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            table,
        ));
        Ok(self)
    }

    /// The event bus (`EVENT_BUS_NAME`).
    pub fn bus(mut self, env: &Env) -> Result<Self, ConfigError> {
        let bus = env.required("EVENT_BUS_NAME")?;
        self.ports.bus = Arc::new(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&self.sdk),
            bus,
        ));
        Ok(self)
    }

    /// One-time schedules (`SCHEDULE_GROUP`, `EVENT_BUS_ARN`, `SCHEDULER_ROLE_ARN`).
    pub fn scheduler(mut self, env: &Env) -> Result<Self, ConfigError> {
        let target = SchedulerTarget {
            group: env.required("SCHEDULE_GROUP")?,
            bus_arn: env.required("EVENT_BUS_ARN")?,
            role_arn: env.required("SCHEDULER_ROLE_ARN")?,
        };
        self.ports.scheduler = Arc::new(EventBridgeScheduler::new(
            aws_sdk_scheduler::Client::new(&self.sdk),
            target,
        ));
        Ok(self)
    }

    /// The results bucket (`RESULTS_BUCKET`). Path-style addressing when an endpoint override is
    /// set (an emulator).
    pub fn results(mut self, env: &Env) -> Result<Self, ConfigError> {
        let bucket = env.required("RESULTS_BUCKET")?;
        let config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.sdk.endpoint_url().is_some())
            .build();
        self.ports.results = Arc::new(S3Results::new(
            aws_sdk_s3::Client::from_conf(config),
            bucket,
        ));
        Ok(self)
    }

    /// Slack (`SLACK_WEBHOOK_SECRET_ARN`, `SLACK_TIMEOUT_MS`, default 5000).
    pub fn slack(mut self, env: &Env) -> Result<Self, ConfigError> {
        let secret = env.required("SLACK_WEBHOOK_SECRET_ARN")?;
        let timeout = Duration::from_millis(env.parse_or("SLACK_TIMEOUT_MS", 5_000u64)?);
        let url = CachedSecret::new(aws_sdk_secretsmanager::Client::new(&self.sdk), secret);
        let webhook = SlackWebhook::new(url, timeout).map_err(|e| ConfigError {
            name: "SLACK_WEBHOOK_SECRET_ARN",
            problem: e.to_string(),
        })?;
        self.ports.notifier = Arc::new(webhook);
        Ok(self)
    }

    pub fn platform(mut self, platform: Arc<dyn AuctionPlatform>) -> Self {
        self.ports.platform = platform;
        self
    }

    pub fn ports(self) -> Ports {
        self.ports
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
