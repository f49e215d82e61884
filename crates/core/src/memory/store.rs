use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use jiff::Timestamp;

use super::lock;
use crate::lifecycle::{Expected, OrderRecord};
use crate::order::RecordId;
use crate::ports::{DueOrder, DuePage, Inserted, OrderStore, PortError, Replaced};

#[derive(Default)]
struct Inner {
    records: HashMap<RecordId, OrderRecord>,
    /// The sparse due index: only records with a `due_at`, ordered by it.
    due: BTreeSet<(Timestamp, RecordId)>,
}

impl Inner {
    fn index(&mut self, record: &OrderRecord) {
        if let Some(old) = self.records.get(&record.order.record_id)
            && let Some(at) = old.due_at
        {
            self.due.remove(&(at, old.order.record_id.clone()));
        }
        if let Some(at) = record.due_at {
            self.due.insert((at, record.order.record_id.clone()));
        }
        self.records
            .insert(record.order.record_id.clone(), record.clone());
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

fn cursor_of(at: Timestamp, id: &RecordId) -> String {
    format!("{}|{}", at.as_nanosecond(), id)
}

fn parse_cursor(c: &str) -> Result<(Timestamp, RecordId), PortError> {
    let bad = || PortError::permanent("order store", format!("malformed due cursor {c:?}"));
    let (ns, id) = c.split_once('|').ok_or_else(bad)?;
    let ns: i128 = ns.parse().map_err(|_| bad())?;
    let at = Timestamp::from_nanosecond(ns).map_err(|_| bad())?;
    Ok((at, RecordId::parse(id).map_err(|_| bad())?))
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

    async fn due(
        &self,
        until: Timestamp,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<DuePage, PortError> {
        let inner = lock(&self.inner);
        let after = cursor.as_deref().map(parse_cursor).transpose()?;
        let mut items = Vec::new();
        let mut next = None;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        for (at, id) in inner.due.range((lower, Bound::Unbounded)) {
            self.examined.fetch_add(1, Ordering::SeqCst);
            if *at > until {
                break;
            }
            if items.len() == limit.max(1) {
                next = items
                    .last()
                    .map(|d: &DueOrder| cursor_of(d.due_at, &d.record_id));
                break;
            }
            let attempt = inner.records.get(id).map_or(0, |r| r.attempt);
            items.push(DueOrder {
                record_id: id.clone(),
                attempt,
                due_at: *at,
            });
        }
        Ok(DuePage { items, next })
    }
}
