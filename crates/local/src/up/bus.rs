//! The bus of `energy up`: each publish archives its events and queues their deliveries in one
//! transaction.

use std::sync::Arc;

use async_trait::async_trait;
use energy_core::events::DomainEvent;
use energy_core::ports::{EventPublisher, PublishError};

use crate::up::shared::Shared;

pub struct LocalBus {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl EventPublisher for LocalBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        // One call to the database for the whole batch (a POST of 100 orders publishes 100
        // events): stored together or not at all, so a failure is every entry's.
        let wrapped = events.iter().map(|e| self.shared.wrap(e)).collect();
        self.shared
            .put_all(wrapped)
            .await
            .map_err(|e| PublishError {
                total: events.len(),
                failed: (0..events.len()).map(|i| (i, e.to_string())).collect(),
            })
    }
}
