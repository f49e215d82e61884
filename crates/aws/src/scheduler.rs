//! `RetryScheduler` over EventBridge Scheduler: one-time `at()` schedules, one a round of
//! checks, that put `OrderChecksDue` on the bus, then delete themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, EventBridgeParameters, FlexibleTimeWindow,
    FlexibleTimeWindowMode, RetryPolicy, Target,
};
use energy_core::events::DetailType;
use energy_core::events::{OrderChecksDue, SOURCE};
use energy_core::ports::{PortError, RetryScheduler, Scheduled};
use energy_core::retry::at_expression;
use jiff::{SignedDuration, Timestamp};

use crate::error::{code, sdk_error};

const WHAT: &str = "scheduler";

/// Where schedules go and what they target.
#[derive(Debug, Clone)]
pub struct SchedulerTarget {
    /// The application's schedule group.
    pub group: String,
    /// ARN of the event bus the schedules put events on.
    pub bus_arn: String,
    /// The role EventBridge Scheduler assumes (PutEvents on the bus, SendMessage to the
    /// dead-letter queue, nothing else).
    pub role_arn: String,
    /// Where a schedule's event goes when the bus did not take it after the retries
    /// ([`SCHEDULE_RETRIES`] within [`SCHEDULE_MAX_AGE_SECONDS`]); `None`: nowhere.
    pub dead_letter_arn: Option<String>,
}

/// Scheduler's retries of a failed PutEvents (its default is 185 within a day: a check that
/// late helps nobody; the sweeper covers what is lost).
pub const SCHEDULE_RETRIES: i32 = 8;
/// How long Scheduler keeps trying (its minimum is 60 s).
pub const SCHEDULE_MAX_AGE_SECONDS: i32 = 3600;

#[derive(Debug, Clone)]
pub struct EventBridgeScheduler {
    client: Client,
    target: SchedulerTarget,
    /// The rounds this container made or found, by name, with their instant: the orders of an
    /// auction ask for the same few rounds thousands of times, and only the first asks AWS.
    known: Arc<Mutex<HashMap<String, Timestamp>>>,
}

/// Rounds remembered before the past ones are forgotten.
const KNOWN_ROUNDS: usize = 1024;

impl EventBridgeScheduler {
    pub fn new(client: Client, target: SchedulerTarget) -> Self {
        EventBridgeScheduler {
            client,
            target,
            known: Arc::default(),
        }
    }

    fn knows(&self, name: &str) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(name)
    }

    /// Remembers `name`; past rounds go once many are kept (a round is always made before its
    /// instant, so one an hour past is never asked for again).
    fn remember(&self, name: &str, at: Timestamp) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= KNOWN_ROUNDS {
            let horizon = at
                .saturating_sub(SignedDuration::from_hours(1))
                .unwrap_or(at);
            known.retain(|_, t| *t >= horizon);
        }
        known.insert(name.to_string(), at);
    }
}

fn build_error(e: impl std::fmt::Display) -> PortError {
    PortError::permanent(WHAT, format!("cannot build the request: {e}"))
}

#[async_trait]
impl RetryScheduler for EventBridgeScheduler {
    async fn schedule(
        &self,
        name: &str,
        at: Timestamp,
        event: &OrderChecksDue,
    ) -> Result<Scheduled, PortError> {
        if self.knows(name) {
            return Ok(Scheduled::AlreadyExists);
        }
        let detail =
            serde_json::to_string(event).map_err(|e| PortError::permanent(WHAT, e.to_string()))?;
        let retry = RetryPolicy::builder()
            .maximum_retry_attempts(SCHEDULE_RETRIES)
            .maximum_event_age_in_seconds(SCHEDULE_MAX_AGE_SECONDS)
            .build();
        let dead_letter = self
            .target
            .dead_letter_arn
            .as_ref()
            .map(|arn| DeadLetterConfig::builder().arn(arn).build());
        let target = Target::builder()
            .arn(&self.target.bus_arn)
            .role_arn(&self.target.role_arn)
            .retry_policy(retry)
            .set_dead_letter_config(dead_letter)
            .input(detail)
            .event_bridge_parameters(
                EventBridgeParameters::builder()
                    .detail_type(DetailType::ChecksDue.name())
                    .source(SOURCE)
                    .build()
                    .map_err(build_error)?,
            )
            .build()
            .map_err(build_error)?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(build_error)?;
        let created = self
            .client
            .create_schedule()
            .name(name)
            .group_name(&self.target.group)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target)
            .send()
            .await;
        let scheduled = match created {
            Ok(_) => Scheduled::Created,
            Err(e) if code(&e) == Some("ConflictException") => Scheduled::AlreadyExists,
            Err(e) => return Err(sdk_error(WHAT, e)),
        };
        self.remember(name, at);
        Ok(scheduled)
    }
}
