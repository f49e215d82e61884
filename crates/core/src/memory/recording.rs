//! Wrappers that record every call made through a port before passing it on, so a test over the
//! real adapters (SQLite files, S3 on moto, a Slack webhook) can count effects, not only look at
//! what is left: a repeated put of the same key is invisible in the bucket, not here.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::memory::lock;
use crate::ports::{Notification, Notifier, PortError, ResultStore};

/// A results store that records each put (key and bytes), successful or not.
pub struct RecordingResults {
    inner: Arc<dyn ResultStore>,
    puts: Mutex<Vec<(String, Vec<u8>)>>,
}

impl RecordingResults {
    pub fn new(inner: Arc<dyn ResultStore>) -> Self {
        RecordingResults {
            inner,
            puts: Mutex::new(Vec::new()),
        }
    }

    /// Every put so far, in order.
    pub fn puts(&self) -> Vec<(String, Vec<u8>)> {
        lock(&self.puts).clone()
    }
}

#[async_trait]
impl ResultStore for RecordingResults {
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), PortError> {
        lock(&self.puts).push((key.to_string(), body.to_vec()));
        self.inner.put(key, body).await
    }
}

/// A notifier that records each notification it is asked to send.
pub struct RecordingNotifier {
    inner: Arc<dyn Notifier>,
    sent: Mutex<Vec<Notification>>,
}

impl RecordingNotifier {
    pub fn new(inner: Arc<dyn Notifier>) -> Self {
        RecordingNotifier {
            inner,
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Every notification asked for so far, in order.
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), PortError> {
        lock(&self.sent).push(notification.clone());
        self.inner.notify(notification).await
    }
}
