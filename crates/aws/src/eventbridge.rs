//! `EventPublisher` over EventBridge PutEvents.
//!
//! Events go in chunks of at most 10 entries and 256 KB (PutEvents' limits). An entry the bus
//! reports as failed is sent again, alone with the other failures, with exponential backoff; a
//! call that fails as a whole is retried the same way. What still failed after the last attempt
//! is reported, by index, in a [`PublishError`].

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use energy_core::events::{DomainEvent, SOURCE};
use energy_core::ports::{EventPublisher, PublishError};

use crate::error::sdk_error;

/// PutEvents' limits.
pub const MAX_ENTRIES: usize = 10;
pub const MAX_BYTES: usize = 256 * 1024;

/// The bus.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
    /// Calls per chunk, the first included.
    pub attempts: u32,
    pub backoff: Duration,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        EventBridgePublisher {
            client,
            bus: bus.into(),
            attempts: 4,
            backoff: Duration::from_millis(100),
        }
    }
}

/// An entry's size as PutEvents counts it (source, detail-type, detail and bus name, in bytes).
pub fn entry_size(detail_type: &str, detail: &str, bus: &str) -> usize {
    SOURCE.len() + detail_type.len() + detail.len() + bus.len()
}

/// Splits entry sizes into chunks within both limits; returns index ranges.
pub fn chunks(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == MAX_ENTRIES || bytes + size > MAX_BYTES) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

impl EventBridgePublisher {
    /// Sends one chunk, resending failures; returns the failures left, by index into `entries`.
    async fn send_chunk(&self, entries: &[(usize, PutEventsRequestEntry)]) -> Vec<(usize, String)> {
        let mut pending: Vec<(usize, PutEventsRequestEntry)> = entries.to_vec();
        let mut failed = Vec::new();
        let mut delay = self.backoff;
        for attempt in 1..=self.attempts.max(1) {
            failed.clear();
            let call = self
                .client
                .put_events()
                .set_entries(Some(pending.iter().map(|(_, e)| e.clone()).collect()))
                .send()
                .await;
            match call {
                Ok(out) => {
                    let results = out.entries();
                    for (k, (i, entry)) in pending.iter().enumerate() {
                        match results.get(k) {
                            Some(r) if r.error_code().is_none() => {}
                            Some(r) => failed.push((
                                *i,
                                entry.clone(),
                                format!(
                                    "{}: {}",
                                    r.error_code().unwrap_or(""),
                                    r.error_message().unwrap_or("")
                                ),
                            )),
                            None => failed.push((
                                *i,
                                entry.clone(),
                                "no result for the entry".to_string(),
                            )),
                        }
                    }
                }
                Err(e) => {
                    let e = sdk_error("event bus", e);
                    let retryable = e.retryable;
                    failed = pending
                        .iter()
                        .map(|(i, entry)| (*i, entry.clone(), e.message.clone()))
                        .collect();
                    if !retryable {
                        break;
                    }
                }
            }
            if failed.is_empty() {
                return Vec::new();
            }
            tracing::warn!(attempt, failed = failed.len(), "PutEvents entries failed");
            pending = failed.iter().map(|(i, e, _)| (*i, e.clone())).collect();
            if attempt < self.attempts {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
        failed.into_iter().map(|(i, _, why)| (i, why)).collect()
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        let mut entries = Vec::with_capacity(events.len());
        let mut sizes = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let detail = event.detail().to_string();
            sizes.push(entry_size(event.detail_type(), &detail, &self.bus));
            let entry = PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus)
                .source(SOURCE)
                .detail_type(event.detail_type())
                .detail(detail)
                .build();
            entries.push((i, entry));
        }
        let mut failed = Vec::new();
        for range in chunks(&sizes) {
            failed.extend(self.send_chunk(&entries[range]).await);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_at_most_ten_entries_and_256_kb() {
        assert_eq!(chunks(&[100; 25]), vec![0..10, 10..20, 20..25]);
        assert_eq!(chunks(&[100_000, 100_000, 100_000, 10]), vec![0..2, 2..4]);
        assert_eq!(chunks(&[]), Vec::<std::ops::Range<usize>>::new());
        // An entry over the limit goes alone: the bus will refuse it, and say so.
        assert_eq!(chunks(&[300_000, 1]), vec![0..1, 1..2]);
    }
}
