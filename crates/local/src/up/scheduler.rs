//! One-time schedules of `energy up` (EventBridge Scheduler's in AWS) in the `schedules` table,
//! fired by the scheduler loop on the market clock.

use std::sync::Arc;

use async_trait::async_trait;
use energy_core::events::{DetailType, DomainEvent, EventError, OrderChecksDue};
use energy_core::ports::{PortError, RetryScheduler, Scheduled};
use jiff::Timestamp;

use crate::up::shared::{Shared, port};

/// The event a stored schedule puts on the bus: a round of checks, or, for a schedule made
/// before rounds, one order's check.
pub fn stored_event(detail: &serde_json::Value) -> Result<DomainEvent, EventError> {
    DomainEvent::parse(DetailType::ChecksDue.name(), detail.clone())
        .or_else(|_| DomainEvent::parse(DetailType::EvaluationDue.name(), detail.clone()))
}

pub struct LocalScheduler {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl RetryScheduler for LocalScheduler {
    async fn schedule(
        &self,
        name: &str,
        at: Timestamp,
        event: &OrderChecksDue,
    ) -> Result<Scheduled, PortError> {
        let detail = DomainEvent::ChecksDue(event.clone()).detail();
        let (name, at_ms) = (name.to_string(), at.as_millisecond());
        let created = self
            .shared
            .db
            .run_early(move |db| db.create_schedule(&name, at_ms, &detail))
            .await
            .map_err(port("scheduler"))?;
        self.shared.schedule_created(at_ms);
        Ok(if created {
            Scheduled::Created
        } else {
            Scheduled::AlreadyExists
        })
    }
}
