//! `OrderStore` over a DynamoDB table.
//!
//! One item per order, keyed by `record_id`. The attributes conditions and indexes need: `state`
//! and `version` (every replace is conditional on both), `attempt`, `ttl` (DynamoDB's expiry,
//! only on final orders), and, only while the order waits for something, `due_shard` and
//! `due_at` (epoch milliseconds): the keys of the sparse `due` index the sweeper queries, which
//! projects `attempt` and `sweeps` too. `sweeps` counts the sweeper's claims since the last
//! write of the order (every write replaces the item and so resets it); a claim updates `due_at`
//! and `sweeps` alone, never the record.
//!
//! The rest of the record is in one of two attributes:
//! - `r`: its compact form (see [`compact`]: the body as arrays, results as per-MTU fills, short
//!   names, nothing the other attributes or the order's arithmetic give), about a third of the
//!   full JSON, so that an order of a few MTUs stays within one write unit (1 KB) at every step;
//! - `record`: the full JSON of `OrderRecord`, the first item format. Items written before the
//!   compact form have it, and a record the compact form cannot hold exactly is still written
//!   so. Both are read; a code version older than the compact form reads only `record`, so a
//!   rollback past it must first rewrite the items that have `r` (or wait until they expire).
//!
//! A POST's batch of several orders is written with one `TransactWriteItems` (at most 100
//! items, the size of the largest batch), so it is stored whole or not at all; a batch of one
//! with a conditional `PutItem`, which is as atomic and costs half.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use energy_core::lifecycle::{Expected, OrderRecord};
use energy_core::order::RecordId;
use energy_core::ports::{
    DueCursor, DueIndex, DueOrder, DuePage, Inserted, OrderStore, PortError, Replaced, SweepClaims,
};
use jiff::Timestamp;

use crate::compact;
use crate::error::{code, sdk_error};

const WHAT: &str = "order store";
/// The attribute holding the record in its compact form (written since the compact form came).
pub const COMPACT: &str = "r";
/// The attribute holding the record as the full JSON of `OrderRecord` (the first item format,
/// still written when the compact form cannot hold a record exactly, and read forever).
pub const FULL: &str = "record";
/// Partition key of every entry of the due index. One partition takes thousands of writes a
/// second; sharding is the next step if a desk ever needs more.
pub const DUE_SHARD: &str = "due";
/// Name of the sparse index of orders by due time.
pub const DUE_INDEX: &str = "due";

/// The orders table.
#[derive(Debug, Clone)]
pub struct DynamoOrderStore {
    client: Client,
    table: String,
}

impl DynamoOrderStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoOrderStore {
            client,
            table: table.into(),
        }
    }
}

/// The item of `record`: its compact form in `r` when that reads back exactly (see
/// [`compact`]), else the full JSON in `record`.
fn item(record: &OrderRecord) -> Result<HashMap<String, AttributeValue>, PortError> {
    let body = match compact::encode(record) {
        Some(json) => (COMPACT, json),
        None => (
            FULL,
            serde_json::to_string(record).map_err(|e| PortError::permanent(WHAT, e.to_string()))?,
        ),
    };
    let mut item = HashMap::from([
        (
            "record_id".to_string(),
            AttributeValue::S(record.order.record_id.to_string()),
        ),
        (
            "state".to_string(),
            AttributeValue::S(record.state.to_string()),
        ),
        (
            "version".to_string(),
            AttributeValue::N(record.version.to_string()),
        ),
        (
            "attempt".to_string(),
            AttributeValue::N(record.attempt.to_string()),
        ),
        (body.0.to_string(), AttributeValue::S(body.1)),
    ]);
    // Only a final order expires: DynamoDB deletes an item after its `ttl`.
    if record.state.is_final() {
        item.insert("ttl".into(), AttributeValue::N(record.ttl.to_string()));
    }
    if let Some(due) = record.due_at {
        item.insert("due_shard".into(), AttributeValue::S(DUE_SHARD.into()));
        item.insert(
            "due_at".into(),
            AttributeValue::N(due.as_millisecond().to_string()),
        );
    }
    Ok(item)
}

fn record_from(item: &HashMap<String, AttributeValue>) -> Result<OrderRecord, PortError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    if let Some(json) = text(COMPACT) {
        let unreadable =
            |why: String| PortError::permanent(WHAT, format!("unreadable item: {why}"));
        let record_id = text("record_id").ok_or_else(|| unreadable("no record_id".into()))?;
        let keys = compact::Keys {
            record_id: RecordId::parse(record_id).map_err(unreadable)?,
            state: text("state")
                .and_then(|s| serde_json::from_value(serde_json::Value::from(s.as_str())).ok())
                .ok_or_else(|| unreadable("no state".into()))?,
            version: number(item, "version").ok_or_else(|| unreadable("no version".into()))?,
            attempt: number(item, "attempt").ok_or_else(|| unreadable("no attempt".into()))?,
            ttl: number(item, "ttl"),
        };
        return compact::decode(json, &keys).map_err(unreadable);
    }
    let json = text(FULL)
        .ok_or_else(|| PortError::permanent(WHAT, "an item without its record attribute"))?;
    serde_json::from_str(json)
        .map_err(|e| PortError::permanent(WHAT, format!("unreadable record: {e}")))
}

fn number<T: std::str::FromStr>(item: &HashMap<String, AttributeValue>, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// The `ExclusiveStartKey` that continues a due query after `c`: the index's keys and the
/// table's.
fn start_key(c: &DueCursor) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "record_id".to_string(),
            AttributeValue::S(c.record_id.to_string()),
        ),
        (
            "due_shard".to_string(),
            AttributeValue::S(DUE_SHARD.to_string()),
        ),
        (
            "due_at".to_string(),
            AttributeValue::N(c.due_at.as_millisecond().to_string()),
        ),
    ])
}

/// Items one `TransactWriteItems` call takes.
pub const MAX_TRANSACTION: usize = 100;

impl DynamoOrderStore {
    /// Puts `batch[i]` for every `i` in `pending` in one transaction, each on condition that
    /// its id is new. `None`: all written. `Some`: nothing written; the records that exist.
    async fn transact_insert(
        &self,
        batch: &[OrderRecord],
        pending: &[usize],
    ) -> Result<Option<Vec<(usize, OrderRecord)>>, PortError> {
        let mut items = Vec::with_capacity(pending.len());
        for &i in pending {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item(&batch[i])?))
                .condition_expression("attribute_not_exists(record_id)")
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(|e| PortError::permanent(WHAT, e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let e = match sent {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        let reasons = match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                c.cancellation_reasons().to_vec()
            }
            _ => return Err(sdk_error(WHAT, e)),
        };
        let mut existing = Vec::new();
        for (&i, reason) in pending.iter().zip(&reasons) {
            if reason.code() != Some("ConditionalCheckFailed") {
                continue;
            }
            let old = match reason.item() {
                Some(old) => record_from(old)?,
                // Not every emulator returns the old item: read it.
                None => match self.get(&batch[i].order.record_id).await? {
                    Some(old) => old,
                    // Expired and deleted in between: the next round writes it.
                    None => continue,
                },
            };
            existing.push((i, old));
        }
        if existing.is_empty() {
            // Cancelled for another reason (a concurrent transaction on the same items).
            return Err(sdk_error(WHAT, e));
        }
        Ok(Some(existing))
    }
}

impl DynamoOrderStore {
    /// A batch of one: a conditional `PutItem` is as atomic as a transaction of one item, at
    /// half the write units. The stored record if its id exists.
    async fn insert_one(&self, record: &OrderRecord) -> Result<Inserted, PortError> {
        // Bounded: a second round only follows an item that expired between the two calls.
        for _ in 0..3 {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item(record)?))
                .condition_expression("attribute_not_exists(record_id)")
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let e = match put {
                Ok(_) => return Ok(Inserted::New),
                Err(e) => e,
            };
            let failed = match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => c,
                _ => return Err(sdk_error(WHAT, e)),
            };
            let existing = match failed.item() {
                Some(old) => Some(record_from(old)?),
                // Not every emulator returns the old item: read it.
                None => self.get(&record.order.record_id).await?,
            };
            if let Some(existing) = existing {
                return Ok(Inserted::Exists(Box::new(existing)));
            }
        }
        Err(PortError::transient(
            WHAT,
            "the order kept expiring between its write and its read",
        ))
    }
}

#[async_trait]
impl OrderStore for DynamoOrderStore {
    async fn insert(&self, record: &OrderRecord) -> Result<Inserted, PortError> {
        self.insert_one(record).await
    }

    async fn insert_batch(&self, batch: &[OrderRecord]) -> Result<Vec<Inserted>, PortError> {
        if batch.len() > MAX_TRANSACTION {
            return Err(PortError::permanent(
                WHAT,
                format!(
                    "{} orders in one batch; one transaction takes at most {MAX_TRANSACTION}",
                    batch.len()
                ),
            ));
        }
        if let [one] = batch {
            return Ok(vec![self.insert_one(one).await?]);
        }
        let mut answers: Vec<Inserted> = vec![Inserted::New; batch.len()];
        // Each round writes the records not known to exist; a record another writer stored
        // meanwhile cancels the round and joins the known ones. Bounded: each round learns at
        // least one existing record or ends.
        for _ in 0..=batch.len() {
            let pending: Vec<usize> = (0..batch.len())
                .filter(|i| matches!(answers[*i], Inserted::New))
                .collect();
            if pending.is_empty() {
                return Ok(answers);
            }
            match self.transact_insert(batch, &pending).await? {
                None => return Ok(answers),
                Some(existing) => {
                    for (i, old) in existing {
                        answers[i] = Inserted::Exists(Box::new(old));
                    }
                    if energy_core::ports::withhold_on_conflict(batch, &mut answers) {
                        return Ok(answers);
                    }
                }
            }
        }
        Err(PortError::transient(
            WHAT,
            "the batch kept colliding with concurrent writes",
        ))
    }

    async fn get(&self, record_id: &RecordId) -> Result<Option<OrderRecord>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("record_id", AttributeValue::S(record_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        out.item().map(record_from).transpose()
    }

    async fn replace(
        &self,
        record: &OrderRecord,
        expected: Expected,
    ) -> Result<Replaced, PortError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(record)?))
            .condition_expression("#version = :version AND #state = :state")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(
                ":version",
                AttributeValue::N(expected.version.to_string()),
            )
            .expression_attribute_values(":state", AttributeValue::S(expected.state.to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Replaced::Applied),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => Ok(Replaced::Conflict),
            Err(e) => Err(sdk_error(WHAT, e)),
        }
    }
}

#[async_trait]
impl DueIndex for DynamoOrderStore {
    async fn due(
        &self,
        until: Timestamp,
        limit: usize,
        after: Option<DueCursor>,
    ) -> Result<DuePage, PortError> {
        self.due_between(Timestamp::MIN, until, limit, after).await
    }

    /// One Query of the index, its key condition the window: `due_at BETWEEN since + 1 ms AND
    /// until`.
    async fn due_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
        after: Option<DueCursor>,
    ) -> Result<DuePage, PortError> {
        if since >= until {
            return Ok(DuePage::default());
        }
        let start = after.as_ref().map(start_key);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("due_shard = :shard AND due_at BETWEEN :since AND :until")
            .expression_attribute_values(":shard", AttributeValue::S(DUE_SHARD.into()))
            .expression_attribute_values(
                ":since",
                AttributeValue::N(since.as_millisecond().saturating_add(1).to_string()),
            )
            .expression_attribute_values(
                ":until",
                AttributeValue::N(until.as_millisecond().to_string()),
            )
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        let mut items = Vec::new();
        for i in out.items() {
            let (Some(id), Some(due)) = (
                i.get("record_id").and_then(|v| v.as_s().ok()),
                number::<i64>(i, "due_at"),
            ) else {
                continue;
            };
            let record_id = RecordId::parse(id).map_err(|why| {
                PortError::permanent(WHAT, format!("bad record_id {id:?}: {why}"))
            })?;
            let due_at = Timestamp::from_millisecond(due)
                .map_err(|e| PortError::permanent(WHAT, e.to_string()))?;
            items.push(DueOrder {
                record_id,
                attempt: number(i, "attempt").unwrap_or(0),
                due_at,
                sweeps: number(i, "sweeps").unwrap_or(0),
            });
        }
        // DynamoDB says where it stopped; the page's last item is that place.
        let next = out
            .last_evaluated_key()
            .and_then(|_| items.last().map(DueCursor::from));
        Ok(DuePage { items, next })
    }
}

#[async_trait]
impl SweepClaims for DynamoOrderStore {
    async fn claim_sweep(&self, seen: &DueOrder, next: Timestamp) -> Result<bool, PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", AttributeValue::S(seen.record_id.to_string()))
            .update_expression("SET due_at = :next ADD sweeps :one")
            .condition_expression("due_at = :seen")
            .expression_attribute_values(
                ":next",
                AttributeValue::N(next.as_millisecond().to_string()),
            )
            .expression_attribute_values(
                ":seen",
                AttributeValue::N(seen.due_at.as_millisecond().to_string()),
            )
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        match update {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error(WHAT, e)),
        }
    }
}
