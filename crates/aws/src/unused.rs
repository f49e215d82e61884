//! A port a function does not use. Calling it is a wiring mistake, reported as such.

use async_trait::async_trait;
use energy_core::events::{DomainEvent, OrderEvaluationDue};
use energy_core::lifecycle::{Expected, OrderRecord};
use energy_core::order::{Order, RecordId};
use energy_core::ports::{
    AuctionPlatform, DueOrder, DuePage, EventPublisher, Inserted, Notification, Notifier,
    OrderStore, PortError, PublishError, Replaced, ResultStore, ResultsStatus, RetryScheduler,
    Scheduled, Submission,
};
use jiff::Timestamp;

/// Stands in for every port a function was not given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unused(pub &'static str);

impl Unused {
    fn err(&self, port: &'static str) -> PortError {
        PortError::permanent(port, format!("{} has no {port}: a wiring mistake", self.0))
    }
}

#[async_trait]
impl OrderStore for Unused {
    async fn insert(&self, _: &OrderRecord) -> Result<Inserted, PortError> {
        Err(self.err("order store"))
    }
    async fn insert_batch(&self, _: &[OrderRecord]) -> Result<Vec<Inserted>, PortError> {
        Err(self.err("order store"))
    }
    async fn claim_sweep(&self, _: &DueOrder, _: Timestamp) -> Result<bool, PortError> {
        Err(self.err("order store"))
    }
    async fn get(&self, _: &RecordId) -> Result<Option<OrderRecord>, PortError> {
        Err(self.err("order store"))
    }
    async fn replace(&self, _: &OrderRecord, _: Expected) -> Result<Replaced, PortError> {
        Err(self.err("order store"))
    }
    async fn due(&self, _: Timestamp, _: usize, _: Option<String>) -> Result<DuePage, PortError> {
        Err(self.err("order store"))
    }
}

#[async_trait]
impl EventPublisher for Unused {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        let why = self.err("event bus").message;
        Err(PublishError {
            total: events.len(),
            failed: (0..events.len()).map(|i| (i, why.clone())).collect(),
        })
    }
}

#[async_trait]
impl RetryScheduler for Unused {
    async fn schedule(
        &self,
        _: &str,
        _: Timestamp,
        _: &OrderEvaluationDue,
    ) -> Result<Scheduled, PortError> {
        Err(self.err("scheduler"))
    }
}

#[async_trait]
impl ResultStore for Unused {
    async fn put(&self, _: &str, _: &[u8]) -> Result<(), PortError> {
        Err(self.err("result store"))
    }
}

#[async_trait]
impl Notifier for Unused {
    async fn notify(&self, _: &Notification) -> Result<(), PortError> {
        Err(self.err("notifier"))
    }
}

#[async_trait]
impl AuctionPlatform for Unused {
    async fn submit(&self, _: &Order) -> Result<Submission, PortError> {
        Err(self.err("auction platform"))
    }
    async fn results(&self, _: &Order) -> Result<ResultsStatus, PortError> {
        Err(self.err("auction platform"))
    }
}
