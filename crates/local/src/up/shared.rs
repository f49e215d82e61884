//! What the bus, the scheduler and the delivery engine of `energy up` share: the database, the
//! market clock, the routing, and the wake-ups of the loops.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use energy_core::events::{DomainEvent, EnvelopeContext, envelope, event_id};
use energy_core::ports::{Clock, PortError};
use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::Notify;

use crate::db::archive::NewEvent;
use crate::db::{Db, DbError, Route, wall_ms};
use crate::rules::BusResources;
use crate::topology::Topology;
use crate::up::clock::MarketClock;

/// A database error as a port's error: worth a retry (the disk, a busy lock).
pub fn port(what: &'static str) -> impl Fn(DbError) -> PortError {
    move |e| PortError::transient(what, e.to_string())
}

pub struct Shared {
    pub db: Arc<Db>,
    pub clock: MarketClock,
    /// The template's and the consumers file's routing.
    pub base: Arc<Topology>,
    /// `base` with the rules made through the EventBridge API: what events are routed by.
    routing: RwLock<Arc<Topology>>,
    /// What the EventBridge API made; the lock also orders its changes.
    pub resources: tokio::sync::Mutex<BusResources>,
    /// Wakes the delivery engine when something was queued.
    pub deliveries: Notify,
    /// Wakes the scheduler when a schedule was created (through [`Shared::schedule_created`]).
    pub schedules: Notify,
    /// When the scheduler next wakes by itself (market milliseconds): `i64::MAX` while it is
    /// awake, so a schedule created meanwhile always wakes it again.
    pub scheduler_wakes_at: AtomicI64,
    seed: u64,
    counter: AtomicU64,
    ctx: EnvelopeContext,
}

impl Shared {
    /// The stack's shared state; the rules the EventBridge API made before are read back.
    pub fn new(db: Arc<Db>, clock: MarketClock, base: Arc<Topology>) -> Result<Shared, DbError> {
        let resources = BusResources::load(&db)?;
        let routing = RwLock::new(Arc::new(resources.apply_to(&base)));
        Ok(Shared {
            db,
            clock,
            base,
            routing,
            resources: tokio::sync::Mutex::new(resources),
            deliveries: Notify::new(),
            schedules: Notify::new(),
            scheduler_wakes_at: AtomicI64::new(i64::MAX),
            seed: Timestamp::now().as_nanosecond() as u64,
            counter: AtomicU64::new(0),
            ctx: EnvelopeContext::default(),
        })
    }

    /// The routing now.
    pub fn topology(&self) -> Arc<Topology> {
        self.routing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Routes by `resources` from now on (called with the resources' lock held, after they
    /// were stored).
    pub fn reroute(&self, resources: &BusResources) {
        let next = Arc::new(resources.apply_to(&self.base));
        *self.routing.write().unwrap_or_else(|e| e.into_inner()) = next;
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
        self.topology().deliveries(event)
    }

    /// Archives `event` and queues its deliveries, off the async workers.
    pub async fn put(&self, event: Value) -> Result<(), DbError> {
        self.put_all(vec![event]).await
    }

    /// Archives these events and queues their deliveries in one call to the database: all are
    /// stored or none.
    pub async fn put_all(&self, events: Vec<Value>) -> Result<(), DbError> {
        // Serialised here, on the caller's worker, not on the database thread.
        let routed: Vec<(NewEvent, Vec<Route>)> = events
            .iter()
            .map(|event| (NewEvent::of(event), self.routes(event)))
            .collect();
        self.db
            .run_early(move |db| db.publish_all(&routed, wall_ms()))
            .await?;
        self.deliveries.notify_one();
        Ok(())
    }

    /// A schedule due at `at_ms` (market milliseconds) was stored: the scheduler is woken only
    /// if it would otherwise sleep past it. (Waking it for each of 10 000 schedules made 20 000
    /// calls to the database that found nothing due.)
    pub fn schedule_created(&self, at_ms: i64) {
        if at_ms < self.scheduler_wakes_at.load(Ordering::SeqCst) {
            self.schedules.notify_one();
        }
    }
}
