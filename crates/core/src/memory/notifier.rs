use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::ports::{Notification, Notifier, PortError};

/// Keeps every message it is asked to send.
#[derive(Default)]
pub struct InMemoryNotifier {
    sent: Mutex<Vec<Notification>>,
}

impl InMemoryNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Notifier for InMemoryNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), PortError> {
        lock(&self.sent).push(notification.clone());
        Ok(())
    }
}
