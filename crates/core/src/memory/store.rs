use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use jiff::Timestamp;

use super::lock;
use crate::lifecycle::{Expected, OrderRecord};
use crate::order::RecordId;
use crate::ports::{
    DueCursor, DueIndex, DueOrder, DuePage, Inserted, OrderStore, PortError, Replaced, SweepClaims,
};

#[derive(Default)]
struct Inner {
    records: HashMap<RecordId, OrderRecord>,
    /// The sparse due index: only records with a `due_at`, ordered by it. A sweeper's claim
    /// moves an entry without touching the record, as it moves the index attributes only in
    /// DynamoDB.
    due: BTreeSet<(Timestamp, RecordId)>,
    /// Each indexed record's place in `due` and the sweeps claimed since its last write.
    placed: HashMap<RecordId, (Timestamp, u32)>,
}

impl Inner {
    fn index(&mut self, record: &OrderRecord) {
        let id = &record.order.record_id;
        if let Some((at, _)) = self.placed.remove(id) {
            self.due.remove(&(at, id.clone()));
        }
        if let Some(at) = record.due_at {
            self.due.insert((at, id.clone()));
            self.placed.insert(id.clone(), (at, 0));
        }
        self.records.insert(id.clone(), record.clone());
    }
}

/// Orders in a map, with a sorted due index beside it.
#[derive(Default)]
pub struct InMemoryOrderStore {
    inner: Mutex<Inner>,
    inserts: AtomicUsize,
    examined: AtomicUsize,
}

impl InMemoryOrderStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Successful inserts so far.
    pub fn inserts(&self) -> usize {
        self.inserts.load(Ordering::SeqCst)
    }

    /// Index entries the due queries have looked at so far: proof that they do not scan.
    pub fn examined(&self) -> usize {
        self.examined.load(Ordering::SeqCst)
    }

    /// Every record, sorted by id.
    pub fn all(&self) -> Vec<OrderRecord> {
        let mut v: Vec<_> = lock(&self.inner).records.values().cloned().collect();
        v.sort_by(|a, b| a.order.record_id.cmp(&b.order.record_id));
        v
    }
}

#[async_trait]
impl OrderStore for InMemoryOrderStore {
    async fn insert(&self, record: &OrderRecord) -> Result<Inserted, PortError> {
        let mut inner = lock(&self.inner);
        if let Some(existing) = inner.records.get(&record.order.record_id) {
            return Ok(Inserted::Exists(Box::new(existing.clone())));
        }
        inner.index(record);
        self.inserts.fetch_add(1, Ordering::SeqCst);
        Ok(Inserted::New)
    }

    async fn insert_batch(&self, batch: &[OrderRecord]) -> Result<Vec<Inserted>, PortError> {
        let mut inner = lock(&self.inner);
        let mut answers: Vec<Inserted> = batch
            .iter()
            .map(|r| match inner.records.get(&r.order.record_id) {
                Some(existing) => Inserted::Exists(Box::new(existing.clone())),
                None => Inserted::New,
            })
            .collect();
        if crate::ports::withhold_on_conflict(batch, &mut answers) {
            return Ok(answers);
        }
        for (record, answer) in batch.iter().zip(&answers) {
            if matches!(answer, Inserted::New) {
                inner.index(record);
                self.inserts.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(answers)
    }

    async fn get(&self, record_id: &RecordId) -> Result<Option<OrderRecord>, PortError> {
        Ok(lock(&self.inner).records.get(record_id).cloned())
    }

    async fn replace(
        &self,
        record: &OrderRecord,
        expected: Expected,
    ) -> Result<Replaced, PortError> {
        let mut inner = lock(&self.inner);
        match inner.records.get(&record.order.record_id) {
            Some(current) if current.expected() == expected => {
                inner.index(record);
                Ok(Replaced::Applied)
            }
            _ => Ok(Replaced::Conflict),
        }
    }
}

#[async_trait]
impl DueIndex for InMemoryOrderStore {
    async fn due(
        &self,
        until: Timestamp,
        limit: usize,
        after: Option<DueCursor>,
    ) -> Result<DuePage, PortError> {
        let inner = lock(&self.inner);
        let after = after.map(|c| (c.due_at, c.record_id));
        let mut items = Vec::new();
        let mut next = None;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        for (at, id) in inner.due.range((lower, Bound::Unbounded)) {
            self.examined.fetch_add(1, Ordering::SeqCst);
            if *at > until {
                break;
            }
            if items.len() == limit.max(1) {
                next = items.last().map(DueCursor::from);
                break;
            }
            let attempt = inner.records.get(id).map_or(0, |r| r.attempt);
            let sweeps = inner.placed.get(id).map_or(0, |p| p.1);
            items.push(DueOrder {
                record_id: id.clone(),
                attempt,
                due_at: *at,
                sweeps,
            });
        }
        Ok(DuePage { items, next })
    }
}

#[async_trait]
impl SweepClaims for InMemoryOrderStore {
    async fn claim_sweep(&self, seen: &DueOrder, next: Timestamp) -> Result<bool, PortError> {
        let mut inner = lock(&self.inner);
        let id = &seen.record_id;
        match inner.placed.get(id).copied() {
            Some((at, sweeps)) if at == seen.due_at => {
                inner.due.remove(&(at, id.clone()));
                inner.due.insert((next, id.clone()));
                inner.placed.insert(id.clone(), (next, sweeps + 1));
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
