//! The bus of `energy up`: each publish archives the event and queues its deliveries in one
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
        let mut failed = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if let Err(e) = self.shared.put(self.shared.wrap(event)).await {
                failed.push((i, e.to_string()));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(PublishError {
                total: events.len(),
                failed,
            })
        }
    }
}
