use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use jiff::Timestamp;

use super::lock;
use crate::events::OrderChecksDue;
use crate::ports::{PortError, RetryScheduler, Scheduled};

/// A one-time schedule waiting to fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSchedule {
    pub name: String,
    pub at: Timestamp,
    pub event: OrderChecksDue,
}

/// Schedules by name; firing one deletes it (ActionAfterCompletion: DELETE).
#[derive(Default)]
pub struct InMemoryScheduler {
    schedules: Mutex<BTreeMap<String, PendingSchedule>>,
    created: AtomicUsize,
}

impl InMemoryScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules created so far (duplicates by name not counted).
    pub fn created(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }

    /// Schedules not yet fired.
    pub fn pending(&self) -> Vec<PendingSchedule> {
        lock(&self.schedules).values().cloned().collect()
    }

    /// The earliest instant a schedule fires.
    pub fn next_at(&self) -> Option<Timestamp> {
        lock(&self.schedules).values().map(|s| s.at).min()
    }

    /// Removes and returns the schedules due at `now`, earliest first.
    pub fn take_due(&self, now: Timestamp) -> Vec<PendingSchedule> {
        let mut map = lock(&self.schedules);
        let names: Vec<String> = map
            .values()
            .filter(|s| s.at <= now)
            .map(|s| s.name.clone())
            .collect();
        let mut due: Vec<PendingSchedule> = names.iter().filter_map(|n| map.remove(n)).collect();
        due.sort_by_key(|s| s.at);
        due
    }
}

#[async_trait]
impl RetryScheduler for InMemoryScheduler {
    async fn schedule(
        &self,
        name: &str,
        at: Timestamp,
        event: &OrderChecksDue,
    ) -> Result<Scheduled, PortError> {
        let mut map = lock(&self.schedules);
        if map.contains_key(name) {
            return Ok(Scheduled::AlreadyExists);
        }
        map.insert(
            name.to_string(),
            PendingSchedule {
                name: name.to_string(),
                at,
                event: event.clone(),
            },
        );
        self.created.fetch_add(1, Ordering::SeqCst);
        Ok(Scheduled::Created)
    }
}
