//! What the bus, the scheduler and the delivery engine of `energy up` share: the database, the
//! market clock, the routing, and the wake-ups of the loops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use energy_core::events::{DomainEvent, EnvelopeContext, envelope, event_id};
use energy_core::ports::{Clock, PortError};
use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::Notify;

use crate::db::{Db, DbError, Route, wall_ms};
use crate::topology::Topology;
use crate::up::clock::MarketClock;

/// A database error as a port's error: worth a retry (the disk, a busy lock).
pub fn port(what: &'static str) -> impl Fn(DbError) -> PortError {
    move |e| PortError::transient(what, e.to_string())
}

pub struct Shared {
    pub db: Arc<Db>,
    pub clock: MarketClock,
    pub topology: Arc<Topology>,
    /// Wakes the delivery engine when something was queued.
    pub deliveries: Notify,
    /// Wakes the scheduler when a schedule was created.
    pub schedules: Notify,
    seed: u64,
    counter: AtomicU64,
    ctx: EnvelopeContext,
}

impl Shared {
    pub fn new(db: Arc<Db>, clock: MarketClock, topology: Arc<Topology>) -> Shared {
        Shared {
            db,
            clock,
            topology,
            deliveries: Notify::new(),
            schedules: Notify::new(),
            seed: Timestamp::now().as_nanosecond() as u64,
            counter: AtomicU64::new(0),
            ctx: EnvelopeContext::default(),
        }
    }

    /// A fresh event id.
    pub fn next_id(&self) -> String {
        event_id(self.seed, self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// The envelope of a domain event, stamped with the market clock.
    pub fn wrap(&self, event: &DomainEvent) -> Value {
        envelope(event, &self.next_id(), self.clock.now(), &self.ctx)
    }

    /// Where the rules send `event`, as the delivery queue records it.
    pub fn routes(&self, event: &Value) -> Vec<Route> {
        self.topology.deliveries(event)
    }

    /// Archives `event` and queues its deliveries, off the async workers.
    pub async fn put(&self, event: Value) -> Result<i64, DbError> {
        let routes = self.routes(&event);
        let seq = self
            .db
            .run(move |db| db.publish(&event, &routes, wall_ms()))
            .await?;
        self.deliveries.notify_one();
        Ok(seq)
    }
}
