//! The order store of `energy up` (DynamoDB's part in AWS) over the `orders` table.

use std::sync::Arc;

use async_trait::async_trait;
use energy_core::lifecycle::{Expected, OrderRecord};
use energy_core::order::RecordId;
use energy_core::ports::{
    Clock, DueCursor, DueIndex, DueOrder, DuePage, Inserted, OrderStore, PortError, Replaced,
    SweepClaims, conflicts,
};
use jiff::Timestamp;

use crate::db::orders::{Listing, OrderRow};
use crate::up::shared::{Shared, port};

const WHAT: &str = "order store";

/// Orders in the `orders` table; the due index is a partial SQL index on `due_at`.
pub struct LocalStore {
    pub shared: Arc<Shared>,
}

fn row(record: &OrderRecord) -> Result<OrderRow, PortError> {
    Ok(OrderRow {
        record_id: record.order.record_id.to_string(),
        state: record.state.as_str(),
        version: record.version as i64,
        attempt: record.attempt,
        due_at: record.due_at.map(|t| t.as_millisecond()),
        expires_at: record.ttl,
        listing: Listing {
            submitted_ms: record.submitted_at.as_millisecond(),
            market: record.order.market.as_str(),
            zone: record.order.zone.as_str(),
            delivery_date: record.order.delivery_date.to_string(),
        },
        body: serde_json::to_string(record)
            .map_err(|e| PortError::permanent(WHAT, e.to_string()))?,
    })
}

fn record_of(body: &str) -> Result<OrderRecord, PortError> {
    serde_json::from_str(body)
        .map_err(|e| PortError::permanent(WHAT, format!("unreadable record: {e}")))
}

impl LocalStore {
    fn now_s(&self) -> i64 {
        self.shared.clock.now().as_second()
    }
}

#[async_trait]
impl OrderStore for LocalStore {
    async fn insert(&self, record: &OrderRecord) -> Result<Inserted, PortError> {
        let answers = self.insert_batch(std::slice::from_ref(record)).await?;
        answers
            .into_iter()
            .next()
            .ok_or_else(|| PortError::transient(WHAT, "no answer for the insert"))
    }

    async fn insert_batch(&self, batch: &[OrderRecord]) -> Result<Vec<Inserted>, PortError> {
        let rows = batch.iter().map(row).collect::<Result<Vec<_>, _>>()?;
        let now = self.now_s();
        let sent = batch.to_vec();
        let (found, written) = self
            .shared
            .db
            .run_early(move |db| {
                db.insert_orders(&rows, now, |found| {
                    // Unreadable bodies count as conflicts: nothing is written over them.
                    let answers: Vec<Inserted> = found
                        .iter()
                        .map(|b| match b.as_deref().map(record_of) {
                            None => Inserted::New,
                            Some(Ok(r)) => Inserted::Exists(Box::new(r)),
                            Some(Err(_)) => Inserted::Withheld,
                        })
                        .collect();
                    answers.iter().any(|a| matches!(a, Inserted::Withheld))
                        || conflicts(&sent, &answers)
                })
            })
            .await
            .map_err(port(WHAT))?;
        found
            .iter()
            .map(|body| match body {
                None if written => Ok(Inserted::New),
                None => Ok(Inserted::Withheld),
                Some(b) => record_of(b).map(|r| Inserted::Exists(Box::new(r))),
            })
            .collect()
    }

    async fn get(&self, record_id: &RecordId) -> Result<Option<OrderRecord>, PortError> {
        let (id, now) = (record_id.to_string(), self.now_s());
        let body = self
            .shared
            .db
            .run_early(move |db| db.order(&id, now))
            .await
            .map_err(port(WHAT))?;
        body.as_deref().map(record_of).transpose()
    }

    async fn replace(
        &self,
        record: &OrderRecord,
        expected: Expected,
    ) -> Result<Replaced, PortError> {
        let row = row(record)?;
        let now = self.now_s();
        let written = self
            .shared
            .db
            .run_early(move |db| {
                db.replace_order(&row, expected.state.as_str(), expected.version as i64, now)
            })
            .await
            .map_err(port(WHAT))?;
        Ok(if written {
            Replaced::Applied
        } else {
            Replaced::Conflict
        })
    }
}

#[async_trait]
impl DueIndex for LocalStore {
    async fn due(
        &self,
        until: Timestamp,
        limit: usize,
        after: Option<DueCursor>,
    ) -> Result<DuePage, PortError> {
        self.due_between(Timestamp::MIN, until, limit, after).await
    }

    async fn due_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
        after: Option<DueCursor>,
    ) -> Result<DuePage, PortError> {
        let since = since.as_millisecond();
        let limit = limit.max(1);
        let after = after.map(|c| (c.due_at.as_millisecond(), c.record_id.to_string()));
        let now = self.now_s();
        // One more than asked: whether there is a next page.
        let rows = self
            .shared
            .db
            .run_early(move |db| {
                db.due_orders(since, until.as_millisecond(), after, now, limit + 1)
            })
            .await
            .map_err(port(WHAT))?;
        let more = rows.len() > limit;
        let items = rows
            .into_iter()
            .take(limit)
            .map(|r| {
                Ok(DueOrder {
                    record_id: RecordId::parse(&r.record_id).map_err(|e| {
                        PortError::permanent(WHAT, format!("bad id {:?}: {e}", r.record_id))
                    })?,
                    attempt: r.attempt,
                    due_at: Timestamp::from_millisecond(r.due_at).map_err(|e| {
                        PortError::permanent(WHAT, format!("bad due_at {}: {e}", r.due_at))
                    })?,
                    sweeps: r.sweeps,
                })
            })
            .collect::<Result<Vec<_>, PortError>>()?;
        let next = if more {
            items.last().map(DueCursor::from)
        } else {
            None
        };
        Ok(DuePage { items, next })
    }
}

#[async_trait]
impl SweepClaims for LocalStore {
    async fn claim_sweep(&self, seen: &DueOrder, next: Timestamp) -> Result<bool, PortError> {
        let (id, seen_ms) = (seen.record_id.to_string(), seen.due_at.as_millisecond());
        self.shared
            .db
            .run_early(move |db| db.claim_sweep(&id, seen_ms, next.as_millisecond()))
            .await
            .map_err(port(WHAT))
    }
}
