//! The loops of `energy up`: delivery (EventBridge to asynchronous Lambda and HTTP targets, at
//! least once, with retries and a dead-letter store), the scheduler that fires one-time
//! schedules on the market clock, the sweep rule, and the TTL reaper.
//!
//! A delivery is a row in the database from the moment its event is published until its target
//! succeeded or it became a dead letter; a crash at any point leaves the row pending, and the
//! next start delivers it again. Handlers are idempotent, so a repeat is harmless.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use energy_core::ports::Clock;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use crate::db::attempts::AttemptRow;
use crate::db::{Db, DbError, DueDelivery, Route, wall_ms};
use crate::delivery::Attempted;
use crate::handlers::{Handlers, scheduled_event};
use crate::topology::Target;
use crate::up::shared::Shared;

/// One delivery attempt, for whoever watches (the console, the demo).
#[derive(Debug, Clone)]
pub struct DeliveryLog {
    /// The market clock when the attempt ended.
    pub at: Timestamp,
    pub detail_type: String,
    pub record_id: String,
    pub rule: String,
    pub target: String,
    pub attempt: u32,
    pub outcome: Result<String, String>,
    /// Nothing worth a console line (a sweep that found nothing overdue).
    pub quiet: bool,
    /// Set when this failure was the last: the event went to the dead-letter store.
    pub dead: bool,
}

pub type Observer = Arc<dyn Fn(&DeliveryLog) + Send + Sync>;

/// The first retry waits this long (wall time); each next one twice as long, up to [`MAX_BACKOFF`].
/// Lambda waits a minute, then two, between its retries; a local stack has no reason to.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub fn backoff(retry: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// Runs deliveries until `stop` turns true, then waits for those in flight.
pub async fn deliveries(
    shared: Arc<Shared>,
    handlers: Arc<Handlers>,
    observer: Observer,
    http: reqwest::Client,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    // The deliveries in flight. Taken and released only on the database thread, in the same
    // call that reads the queue, so no two fetches can hand out the same delivery.
    let busy: Busy = Arc::default();
    loop {
        if *stop.borrow() {
            break;
        }
        let free = permits.available_permits();
        let due = if free == 0 {
            Vec::new()
        } else {
            let busy = busy.clone();
            let due = shared
                .db
                .run_early(move |db| take_due(db, &busy, free))
                .await;
            match due {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "energy up");
                    Vec::new()
                }
            }
        };
        let idle = due.is_empty();
        for d in due {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                // Not started: it leaves the busy set, and stays queued.
                busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&d.id);
                continue;
            };
            let (shared, handlers, observer, http, busy, stop) = (
                shared.clone(),
                handlers.clone(),
                observer.clone(),
                http.clone(),
                busy.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                // Each attempt's bookkeeping also takes the next due delivery, in the same call
                // to the database, while the stack runs: a busy queue costs one call a delivery.
                let mut next = Some(d);
                while let Some(d) = next.take() {
                    let more = !*stop.borrow();
                    next = attempt(&shared, &handlers, &observer, &http, d, &busy, more).await;
                }
                drop(permit);
                shared.deliveries.notify_one();
            });
        }
        if idle || permits.available_permits() == 0 {
            // Every delivery in flight: the next to finish wakes this loop, and takes the next
            // due delivery itself; the queue needs no look until then.
            let wait = if permits.available_permits() == 0 {
                Duration::from_millis(250)
            } else {
                match shared.db.run_early(|db| db.next_delivery_at()).await {
                    Ok(Some(at)) => Duration::from_millis((at - wall_ms()).clamp(1, 250) as u64),
                    _ => Duration::from_millis(250),
                }
            };
            tokio::select! {
                _ = shared.deliveries.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }
    // Let what is in flight finish; what is not started stays queued for the next start.
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        permits.acquire_many(concurrency.max(1) as u32),
    )
    .await;
}

/// The ids of the deliveries in flight.
type Busy = Arc<Mutex<HashSet<i64>>>;

/// Up to `limit` due deliveries that are not in flight, marked in flight (on the database
/// thread).
fn take_due(db: &Db, busy: &Busy, limit: usize) -> Result<Vec<DueDelivery>, DbError> {
    let mut busy = busy.lock().unwrap_or_else(|e| e.into_inner());
    let due = db.due_deliveries(wall_ms(), limit, &busy)?;
    busy.extend(due.iter().map(|d| d.id));
    Ok(due)
}

/// Attempts `d` and records it; answers the next due delivery, taken in the same call to the
/// database, when `more`.
async fn attempt(
    shared: &Shared,
    handlers: &Handlers,
    observer: &Observer,
    http: &reqwest::Client,
    d: DueDelivery,
    busy: &Busy,
    more: bool,
) -> Option<DueDelivery> {
    let attempt = d.attempt + 1;
    let age = SignedDuration::from_millis(wall_ms() - d.first_at);
    // An event leaves the process only once what it tells is committed (see `Db::run_early`):
    // a crash cannot then undo what an HTTP target was told.
    let outward = shared
        .topology()
        .delivery(&d.rule, &d.target)
        .is_some_and(|delivery| matches!(delivery.target, Target::Http { .. }));
    if outward {
        shared.db.flush().await;
    }
    // An archived event that no longer reads cannot be delivered, now or later: a dead letter
    // that says why, rather than a row that stops the queue.
    let (event, attempted) = match serde_json::from_str::<Value>(&d.body) {
        Ok(event) => {
            let attempted = crate::delivery::attempt(
                &shared.topology(),
                handlers,
                Some(http),
                &d.rule,
                &d.target,
                &event,
                attempt,
                age,
            )
            .await;
            (event, attempted)
        }
        Err(e) => (
            Value::Null,
            Attempted::Failed {
                error: format!("the archived event does not read as JSON: {e}"),
                give_up: true,
                on_failure: None,
            },
        ),
    };
    finish(shared, observer, &d, &event, attempt, attempted, busy, more).await
}

/// Records the attempt's outcome and tells the observer; the delivery leaves the busy set, and
/// when `more` the next due one is taken, in the same call to the database.
#[allow(clippy::too_many_arguments)]
async fn finish(
    shared: &Shared,
    observer: &Observer,
    d: &DueDelivery,
    event: &Value,
    attempt: u32,
    attempted: Attempted,
    busy: &Busy,
    more: bool,
) -> Option<DueDelivery> {
    let mut log = DeliveryLog {
        at: shared.clock.now(),
        detail_type: event["detail-type"].as_str().unwrap_or("").to_string(),
        record_id: event["detail"]["record_id"]
            .as_str()
            .unwrap_or("-")
            .to_string(),
        rule: d.rule.clone(),
        target: d.target.clone(),
        attempt,
        outcome: Ok(String::new()),
        quiet: false,
        dead: false,
    };
    // What the queue row becomes, decided here; then one call to the database records it and
    // the attempt's log line together.
    let (id, now) = (d.id, wall_ms());
    let book = match attempted {
        Attempted::Delivered(invocation) => {
            log.quiet = invocation.quiet;
            log.outcome = Ok(invocation.summary);
            Bookkeeping::Delivered
        }
        Attempted::ToBus => {
            // The event goes on the bus again, as this delivery leaves the queue, for the other
            // rules' targets other than the bus: a forwarded event is not forwarded again, so
            // rules that target the bus cannot make it go round (or multiply) forever.
            let routes: Vec<Route> = shared
                .topology()
                .routes(event)
                .into_iter()
                .filter(|r| r.rule != d.rule && r.target != Target::Bus)
                .map(|r| Route {
                    rule: r.rule,
                    target: r.target_id,
                })
                .collect();
            log.outcome = Ok(format!("put on the bus for {} deliveries", routes.len()));
            Bookkeeping::Forwarded(event.clone(), routes)
        }
        Attempted::Failed {
            error,
            give_up: false,
            ..
        } => {
            let next = now + backoff(attempt).as_millis() as i64;
            log.outcome = Err(error.clone());
            Bookkeeping::RetryAt(next, error)
        }
        Attempted::Failed {
            error, on_failure, ..
        } => {
            log.dead = true;
            log.outcome = Err(error.clone());
            // Lambda's on-failure record, stamped as this stack stamps its events (a fresh id,
            // the market clock), goes on the bus in the same transaction.
            let record = on_failure.map(|mut record| {
                record["id"] = Value::String(shared.next_id());
                record["time"] = Value::String(
                    shared
                        .clock
                        .now()
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                        .to_string(),
                );
                let routes = shared.routes(&record);
                (record, routes)
            });
            Bookkeeping::Dead(error, record)
        }
    };
    let row = (!log.quiet).then(|| AttemptRow {
        event_id: event["id"].as_str().unwrap_or_default().to_string(),
        record_id: event["detail"]["record_id"].as_str().map(String::from),
        rule: log.rule.clone(),
        target: log.target.clone(),
        attempt,
        market_at: log.at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        wall_ms: now,
        ok: log.outcome.is_ok(),
        dead: log.dead,
        summary: match &log.outcome {
            Ok(s) | Err(s) => s.clone(),
        },
    });
    let queued_more = matches!(book, Bookkeeping::Forwarded(..) | Bookkeeping::Dead(..));
    let tick = event["source"] == "aws.events";
    let busy = busy.clone();
    let (written, next) = shared
        .db
        .run_early(move |db| {
            let written = (|| {
                match &book {
                    Bookkeeping::Delivered => db.delivered(id, tick),
                    Bookkeeping::Forwarded(event, routes) => db.forwarded(id, event, routes, now),
                    Bookkeeping::RetryAt(next, error) => db.retry_later(id, attempt, *next, error),
                    Bookkeeping::Dead(error, record) => db.dead_letter(
                        id,
                        attempt,
                        error,
                        now,
                        record.as_ref().map(|(r, routes)| (r, routes.as_slice())),
                    ),
                }?;
                if let Some(row) = &row
                    && let Err(e) = db.log_attempt(row)
                {
                    tracing::warn!(error = %e, "the delivery log missed an attempt");
                }
                Ok::<_, DbError>(())
            })();
            busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            let next = match more {
                true => take_due(db, &busy, 1).map(|mut due| due.pop()),
                false => Ok(None),
            };
            (written, next)
        })
        .await;
    if queued_more {
        shared.deliveries.notify_one();
    }
    if let Err(e) = written {
        // The row stays as it was: the delivery is attempted again.
        tracing::error!(error = %e, "delivery bookkeeping failed; the delivery will be retried");
    }
    observer(&log);
    next.unwrap_or_else(|e| {
        tracing::error!(error = %e, "energy up");
        None
    })
}

/// What one attempt does to its row of the delivery queue.
enum Bookkeeping {
    Delivered,
    /// To the bus itself: the event, archived again with these deliveries.
    Forwarded(Value, Vec<Route>),
    /// Failed; tried again at this wall-clock millisecond.
    RetryAt(i64, String),
    /// Failed for the last time: a dead letter, with Lambda's on-failure record for the bus.
    Dead(String, Option<(Value, Vec<Route>)>),
}

/// Fires one-time schedules as the market clock reaches them.
pub async fn scheduler(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        // Awake: a schedule created from here on wakes the next wait at once.
        shared.scheduler_wakes_at.store(i64::MAX, Ordering::SeqCst);
        let now = shared.clock.now().as_millisecond();
        let s = shared.clone();
        let fired = shared
            .db
            .run_early(move |db| {
                // A stored detail that no longer reads is not an event: it goes nowhere, loudly.
                let wrap = |detail: &Value| match crate::up::scheduler::stored_event(detail) {
                    Ok(event) => {
                        let envelope = s.wrap(&event);
                        let routes = s.routes(&envelope);
                        (envelope, routes)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, %detail, "a schedule's event does not read; it is dropped");
                        (detail.clone(), Vec::new())
                    }
                };
                db.fire_due_schedules(now, wall_ms(), &wrap)
            })
            .await;
        match fired {
            Ok(n) if n > 0 => {
                shared.deliveries.notify_one();
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "energy up"),
        }
        let next = shared.db.run_early(|db| db.next_schedule_at()).await;
        let wait = match next {
            Ok(Some(at)) => Timestamp::from_millisecond(at)
                .map(|t| shared.clock.real_time_until(t))
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(1), Duration::from_millis(500)),
            _ => Duration::from_millis(500),
        };
        // Asleep until `now + wait` at the latest: only an earlier schedule needs to wake it.
        let wakes_at =
            shared.clock.now().as_millisecond().saturating_add(
                (wait.as_millis() as i64).saturating_mul(shared.clock.speed().into()),
            );
        shared.scheduler_wakes_at.store(wakes_at, Ordering::SeqCst);
        tokio::select! {
            _ = shared.schedules.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The sweep rule: one scheduled event per period of the market clock. Like an EventBridge rate
/// rule it does not catch up ticks missed while `energy up` was down: one tick, then the rate.
pub async fn sweeper(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let Some(sweep) = shared.base.sweep.clone() else {
        return;
    };
    let every = sweep.every;
    loop {
        if *stop.borrow() {
            break;
        }
        let now = shared.clock.now();
        let stored = match shared.db.run(|db| db.meta("next_sweep")).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the next sweep's time; sweeping now");
                None
            }
        };
        let next = stored
            .and_then(|s| s.parse::<Timestamp>().ok())
            .unwrap_or_else(|| now.saturating_add(every).unwrap_or(now));
        let next = if now >= next {
            if let Err(e) = shared.put(scheduled_event(now, &sweep.name)).await {
                tracing::error!(error = %e, "energy up");
            }
            let mut n = next;
            while n <= now {
                n = n.saturating_add(every).unwrap_or(now);
            }
            n
        } else {
            next
        };
        let value = next.to_string();
        if let Err(e) = shared
            .db
            .run(move |db| db.set_meta("next_sweep", &value))
            .await
        {
            tracing::error!(error = %e, "energy up");
        }
        let wait = shared
            .clock
            .real_time_until(next)
            .clamp(Duration::from_millis(1), Duration::from_millis(500));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Deletes orders whose 24-hour TTL passed on the market clock (reads already ignore them).
pub async fn reaper(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        let now = shared.clock.now().as_second();
        if let Err(e) = shared.db.run(move |db| db.expire_orders(now)).await {
            tracing::error!(error = %e, "energy up");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_a_minute() {
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
