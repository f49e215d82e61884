use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::ports::{Notification, Notifier, PortError};

/// Keeps every message it is asked to send; can be told to fail.
#[derive(Default)]
pub struct InMemoryNotifier {
    sent: Mutex<Vec<Notification>>,
    attempts: Mutex<usize>,
    fail_next: Mutex<usize>,
}

impl InMemoryNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }

    /// Calls so far, failed ones included.
    pub fn attempts(&self) -> usize {
        *lock(&self.attempts)
    }

    /// The next `n` messages fail (Slack is down).
    pub fn fail_next(&self, n: usize) {
        *lock(&self.fail_next) = n;
    }
}

#[async_trait]
impl Notifier for InMemoryNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), PortError> {
        *lock(&self.attempts) += 1;
        let mut fail = lock(&self.fail_next);
        if *fail > 0 {
            *fail -= 1;
            return Err(PortError::transient("slack", "503 Service Unavailable"));
        }
        drop(fail);
        lock(&self.sent).push(notification.clone());
        Ok(())
    }
}
