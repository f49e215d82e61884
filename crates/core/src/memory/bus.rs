use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::Value;

use super::lock;
use crate::events::{DomainEvent, EnvelopeContext, envelope, event_id};
use crate::ports::{Clock, EventPublisher, PublishError};

/// A bus that keeps every published event (as EventBridge would deliver it) in an archive and
/// in a queue for whoever routes them.
pub struct InMemoryBus {
    clock: Arc<dyn Clock>,
    ctx: EnvelopeContext,
    counter: AtomicU64,
    archive: Mutex<Vec<Value>>,
    queue: Mutex<VecDeque<Value>>,
    fail_next: AtomicUsize,
}

impl InMemoryBus {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        InMemoryBus {
            clock,
            ctx: EnvelopeContext::default(),
            counter: AtomicU64::new(0),
            archive: Mutex::new(Vec::new()),
            queue: Mutex::new(VecDeque::new()),
            fail_next: AtomicUsize::new(0),
        }
    }

    /// Makes the next `n` publish calls fail entirely, as a bus outage would.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every event published so far, oldest first.
    pub fn archive(&self) -> Vec<Value> {
        lock(&self.archive).clone()
    }

    /// Published events of one detail-type.
    pub fn of_type(&self, detail_type: &str) -> Vec<Value> {
        lock(&self.archive)
            .iter()
            .filter(|e| e["detail-type"] == detail_type)
            .cloned()
            .collect()
    }

    /// Takes the oldest undelivered event.
    pub fn pop(&self) -> Option<Value> {
        lock(&self.queue).pop_front()
    }

    /// Puts an event on the queue as if it had been published (the scheduler's target).
    pub fn inject(&self, event: &DomainEvent) {
        let env = self.wrap(event);
        lock(&self.archive).push(env.clone());
        lock(&self.queue).push_back(env);
    }

    /// Puts an envelope from another source (a schedule rule, Lambda's on-failure destination)
    /// on the bus.
    pub fn inject_raw(&self, envelope: Value) {
        lock(&self.archive).push(envelope.clone());
        lock(&self.queue).push_back(envelope);
    }

    fn wrap(&self, event: &DomainEvent) -> Value {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        envelope(event, &event_id(0x5eed, n), self.clock.now(), &self.ctx)
    }
}

#[async_trait]
impl EventPublisher for InMemoryBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(PublishError {
                total: events.len(),
                failed: (0..events.len())
                    .map(|i| (i, "InternalFailure: injected outage".to_string()))
                    .collect(),
            });
        }
        for event in events {
            self.inject(event);
        }
        Ok(())
    }
}
