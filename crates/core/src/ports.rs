//! The ports: one small trait per capability the handlers need from the outside world.
//!
//! Each handler holds the ones it uses as `Arc<dyn Trait>` fields (see [`crate::handler`]);
//! `crate::memory` implements each in memory for tests, `energy-aws` over the AWS SDK, the local
//! stack over an embedded database. Every error says whether trying again can help
//! ([`Retryable`]), which the Lambda wiring turns into the error type of its Diagnostic.

use async_trait::async_trait;
use jiff::Timestamp;

use crate::events::{DomainEvent, OrderChecksDue};
use crate::lifecycle::{Expected, OrderRecord};
use crate::order::{Order, RecordId};
use crate::result::OrderResult;

/// Whether a failed call may succeed if tried again.
pub trait Retryable {
    fn retryable(&self) -> bool;
}

/// A failure of an outside system: what failed, and whether to try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct PortError {
    pub what: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl PortError {
    pub fn transient(what: &'static str, message: impl Into<String>) -> Self {
        PortError {
            what,
            message: message.into(),
            retryable: true,
        }
    }

    pub fn permanent(what: &'static str, message: impl Into<String>) -> Self {
        PortError {
            what,
            message: message.into(),
            retryable: false,
        }
    }
}

impl Retryable for PortError {
    fn retryable(&self) -> bool {
        self.retryable
    }
}

/// The time. Injected so that gate closure, TTL and retries are tested without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The answer of a conditional insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Written.
    New,
    /// A record with this id exists already (returned as stored).
    Exists(Box<OrderRecord>),
    /// Not written: another record of the same batch conflicts with a stored one, and a batch
    /// is written whole or not at all.
    Withheld,
}

/// The answer of a conditional replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    Applied,
    /// The stored record no longer has the expected state and version: someone else moved it
    /// first. Not an error: the caller lost a race it is built to lose.
    Conflict,
}

/// One entry of the due index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueOrder {
    pub record_id: RecordId,
    pub attempt: u32,
    pub due_at: Timestamp,
    /// Re-sends the sweeper claimed since a handler last wrote the order: its backoff.
    pub sweeps: u32,
}

/// Where a due query goes on: after this entry of the index (the last of the page before).
/// Each store turns it into its own key (a DynamoDB `ExclusiveStartKey`, an SQL bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor {
    pub due_at: Timestamp,
    pub record_id: RecordId,
}

impl From<&DueOrder> for DueCursor {
    fn from(d: &DueOrder) -> Self {
        DueCursor {
            due_at: d.due_at,
            record_id: d.record_id.clone(),
        }
    }
}

/// One page of a due query; `next` continues it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DuePage {
    pub items: Vec<DueOrder>,
    pub next: Option<DueCursor>,
}

/// Orders, keyed by record id.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Writes `record` unless one with its id exists.
    async fn insert(&self, record: &OrderRecord) -> Result<Inserted, PortError>;
    /// Writes every record of `batch` whose id is not stored yet, in one transaction, unless a
    /// stored record under one of the ids holds a different order: then nothing is written and
    /// the new records come back [`Inserted::Withheld`]. One answer per record, in order.
    async fn insert_batch(&self, batch: &[OrderRecord]) -> Result<Vec<Inserted>, PortError>;
    async fn get(&self, record_id: &RecordId) -> Result<Option<OrderRecord>, PortError>;
    /// Writes `record` only if the stored one still matches `expected`.
    async fn replace(
        &self,
        record: &OrderRecord,
        expected: Expected,
    ) -> Result<Replaced, PortError>;
}

/// The sparse index of orders by when their next step is due: what the sweeper and a round of
/// checks read (a DynamoDB `Query` on the `due` index). A capability of its own, so the sweeper
/// cannot touch a record.
#[async_trait]
pub trait DueIndex: Send + Sync {
    /// Records whose `due_at` is at or before `until`, earliest first, through an index: never
    /// by reading every order.
    async fn due(
        &self,
        until: Timestamp,
        limit: usize,
        after: Option<DueCursor>,
    ) -> Result<DuePage, PortError>;
    /// Records whose `due_at` is after `since` and at or before `until` (a round of checks'
    /// window), earliest first. By default through [`DueIndex::due`], skipping what is not
    /// after `since`; an index that can start there should.
    async fn due_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
        after: Option<DueCursor>,
    ) -> Result<DuePage, PortError> {
        let mut after = after;
        loop {
            let mut page = self.due(until, limit, after).await?;
            let before = page.items.len();
            page.items.retain(|d| d.due_at > since);
            if !page.items.is_empty() || before == 0 || page.next.is_none() {
                return Ok(page);
            }
            after = page.next;
        }
    }
}

/// The due index with the one thing the sweeper writes: its claim (an `UpdateItem` of the
/// index attributes). Only the sweeper has it.
#[async_trait]
pub trait SweepClaims: DueIndex {
    /// The sweeper's claim on a re-send: moves the order's place in the due index from
    /// `seen.due_at` to `next` and counts the sweep, on condition that the index still holds
    /// `seen.due_at` (no handler wrote the order since, no other sweep claimed it). The stored
    /// record itself is unchanged. False: someone else moved it first.
    async fn claim_sweep(&self, seen: &DueOrder, next: Timestamp) -> Result<bool, PortError>;
}

/// When the answers of a batch insert hold a conflict, turns every `New` into `Withheld` (a
/// batch is written whole or not at all) and says so: the store must then write nothing.
pub fn withhold_on_conflict(batch: &[OrderRecord], answers: &mut [Inserted]) -> bool {
    if !conflicts(batch, answers) {
        return false;
    }
    for a in answers.iter_mut() {
        if matches!(a, Inserted::New) {
            *a = Inserted::Withheld;
        }
    }
    true
}

/// Whether a batch insert's answers hold a record that names a different order than the one
/// sent: the batch was refused.
pub fn conflicts(batch: &[OrderRecord], answers: &[Inserted]) -> bool {
    batch
        .iter()
        .zip(answers)
        .any(|(sent, answer)| match answer {
            Inserted::Exists(stored) => stored.order != sent.order,
            _ => false,
        })
}

/// Entries of a publish that did not make it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} of {total} events not published: {}", failed.len(), failed.iter().map(|(i, m)| format!("#{i} {m}")).collect::<Vec<_>>().join("; "))]
pub struct PublishError {
    pub total: usize,
    /// Index into the published slice and the bus's message.
    pub failed: Vec<(usize, String)>,
}

impl Retryable for PublishError {
    fn retryable(&self) -> bool {
        true
    }
}

/// The event bus.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes all `events`, retrying what it can; reports what still failed.
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError>;
}

/// The answer of a schedule request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduled {
    Created,
    /// A schedule with this name exists: an earlier delivery made it.
    AlreadyExists,
}

/// One-time schedules that put an `OrderChecksDue` on the bus at an instant: one a round of
/// checks, by name, whichever order's check asks for it first.
#[async_trait]
pub trait RetryScheduler: Send + Sync {
    async fn schedule(
        &self,
        name: &str,
        at: Timestamp,
        event: &OrderChecksDue,
    ) -> Result<Scheduled, PortError>;
}

/// Result objects.
#[async_trait]
pub trait ResultStore: Send + Sync {
    /// Writes `body` (JSON) under `key`, replacing what is there.
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), PortError>;
}

/// A message for the desk.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// One per order and reason: `<record_id>/<reason>`.
    pub key: String,
    /// Plain-text fallback.
    pub text: String,
    /// The full Slack payload (Block Kit).
    pub payload: serde_json::Value,
}

/// Where the desk hears about failures.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, notification: &Notification) -> Result<(), PortError>;
}

/// The platform's answer to a submitted order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Taken (or replaced); results are expected at `expected_publication` when known.
    Accepted {
        expected_publication: Option<Timestamp>,
    },
    /// Refused for good, with the platform's reason.
    Refused { reason: String },
}

/// The platform's answer to "are the results out?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultsStatus {
    /// Nothing is out, or a preliminary result was withdrawn (the auction is re-run or the
    /// zone decoupled): results are expected at `expected_publication`, if the platform knows.
    NotYet {
        expected_publication: Option<Timestamp>,
    },
    /// A preliminary result: it may still be withdrawn or replaced; the final one is expected
    /// at `expected_final`, if the platform knows.
    Preliminary {
        result: Box<OrderResult>,
        expected_final: Option<Timestamp>,
    },
    /// The final result.
    Published(Box<OrderResult>),
    /// The platform does not know the order (it was never submitted, or was cancelled).
    Unknown { reason: String },
}

/// The platform's answer to a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawal {
    /// It held the order and no longer does: the order takes no part in the auction.
    Withdrawn,
    /// It does not hold the order (never submitted, or withdrawn already).
    NotHeld,
    /// It keeps the order (its gate has closed), with its reason.
    Refused { reason: String },
}

/// The auction platform.
#[async_trait]
pub trait AuctionPlatform: Send + Sync {
    /// Submits or replaces the order (idempotent by record id).
    async fn submit(&self, order: &Order) -> Result<Submission, PortError>;
    async fn results(&self, order: &Order) -> Result<ResultsStatus, PortError>;
    /// Withdraws the order (idempotent: a second withdrawal finds it not held).
    async fn withdraw(&self, order: &Order) -> Result<Withdrawal, PortError>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Why a transition could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error(transparent)]
    Illegal(#[from] crate::lifecycle::IllegalTransition),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl Retryable for TransitionError {
    fn retryable(&self) -> bool {
        match self {
            TransitionError::Illegal(_) => false,
            TransitionError::Port(e) => e.retryable,
        }
    }
}
