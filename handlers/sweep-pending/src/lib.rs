//! sweep-pending: the safety net for every lost message.
//!
//! Runs on a schedule (rate 2 minutes by default, template parameter `SweepSchedule`). Asks the
//! order store's due index (a Query on a sparse index, never a Scan) for orders whose `due_at`
//! passed more than `grace` ago and re-emits `OrderEvaluationDue` for each, with the order's
//! current attempt. The grace keeps it from racing a schedule that is about to fire.
//!
//! Before it re-emits, the sweeper *claims* the re-send: one conditional write moves the order's
//! place in the due index forward by a backoff (the grace, doubled with every sweep of the same
//! order since a handler last wrote it, up to `max_backoff`), on condition that the index still
//! holds what the sweeper read. So a re-send is not repeated while the first is still queued,
//! two sweeps running at once re-send an order once, and an order whose events keep getting
//! lost is retried ever more slowly instead of flooding the queue. The order itself is not
//! written: a handler that moves it meanwhile wins, and its write resets the backoff.
//!
//! An order is in the index while it waits for something: RECEIVED (its `OrderSubmitted` may be
//! lost), PENDING (its schedule may never fire), READY and FAILED (their events may be lost). The
//! evaluator decides what each needs; final orders are not in the index at all.

use std::sync::Arc;

use async_trait::async_trait;
use energy_core::events::{DomainEvent, OrderEvaluationDue, Trigger};
use energy_core::handler::{Event, EventHandler, HandlerError};
use energy_core::ports::{Clock, EventPublisher, SweepClaims};
use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone)]
pub struct Config {
    /// How far past `due_at` an order must be before the sweeper steps in.
    pub grace: SignedDuration,
    /// Due-index page size (and PutEvents batch).
    pub page_size: usize,
    /// Most orders re-emitted by one run; the next run continues.
    pub max_per_run: usize,
    /// The longest wait between two re-sends of one order.
    pub max_backoff: SignedDuration,
}

impl Config {
    /// How long to leave an order alone after its `sweeps`-th re-send: the grace, doubled
    /// with each earlier sweep, at most `max_backoff`.
    pub fn backoff(&self, sweeps: u32) -> SignedDuration {
        let factor = 1i32 << sweeps.min(20);
        self.grace
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
            .max(self.grace)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grace: SignedDuration::from_secs(60),
            page_size: 100,
            max_per_run: 5_000,
            max_backoff: SignedDuration::from_hours(1),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub emitted: usize,
    pub pages: usize,
    /// Overdue orders another sweep or a handler moved before this one could claim them.
    pub skipped: usize,
    /// True when `max_per_run` stopped the run before the index was exhausted.
    pub truncated: bool,
}

impl Report {
    /// A run that found nothing to re-send.
    pub fn is_idle(&self) -> bool {
        self.emitted == 0 && self.skipped == 0
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_idle() {
            return f.write_str("nothing overdue");
        }
        let orders = if self.emitted == 1 { "order" } else { "orders" };
        write!(f, "re-sent {} overdue {orders}", self.emitted)?;
        if self.skipped > 0 {
            write!(f, ", {} moved meanwhile", self.skipped)?;
        }
        if self.truncated {
            f.write_str("; more next run")?;
        }
        Ok(())
    }
}

/// sweep-pending with what it may touch: the orders table's due index (a Query and its claim,
/// never a record) and the bus (and the clock).
pub struct SweepPending {
    pub clock: Arc<dyn Clock>,
    pub due: Arc<dyn SweepClaims>,
    pub bus: Arc<dyn EventPublisher>,
    pub config: Config,
}

pub type Error = HandlerError;

#[async_trait]
impl EventHandler for SweepPending {
    const NAME: &'static str = "sweep-pending";
    type Outcome = Report;

    async fn handle(&self, event: Event) -> Result<Report, Error> {
        sweep(self, event).await
    }
}

/// Handles one scheduled event. Overdue means overdue when the sweep was *triggered* (the
/// event's `time`), not when it runs: a sweep that waited in a queue must not take for lost the
/// events that queued up behind it meanwhile.
async fn sweep(this: &SweepPending, event: Event) -> Result<Report, Error> {
    let (config, index, bus) = (&this.config, this.due.as_ref(), this.bus.as_ref());
    let now = this.clock.now();
    let triggered = event
        .time
        .and_then(|t| Timestamp::from_millisecond(t.timestamp_millis()).ok())
        .filter(|t| *t > Timestamp::UNIX_EPOCH && *t <= now)
        .unwrap_or(now);
    let cutoff = triggered.saturating_sub(config.grace).unwrap_or(triggered);
    let mut report = Report::default();
    let mut cursor = None;
    loop {
        let page = index.due(cutoff, config.page_size, cursor.take()).await?;
        report.pages += 1;
        let room = config.max_per_run - report.emitted;
        let cut_short = room < page.items.len();
        let mut events = Vec::with_capacity(page.items.len().min(room));
        for d in page.items.iter().take(room) {
            let next = now.saturating_add(config.backoff(d.sweeps)).unwrap_or(now);
            if !index.claim_sweep(d, next).await? {
                report.skipped += 1;
                continue;
            }
            events.push(DomainEvent::EvaluationDue(OrderEvaluationDue {
                record_id: d.record_id.clone(),
                attempt: d.attempt,
                due_at: d.due_at,
                trigger: Trigger::Sweep,
            }));
        }
        if !events.is_empty() {
            if let Err(e) = bus.publish(&events).await {
                tracing::error!(emitted = report.emitted, error = %e, "re-send failed part way");
                return Err(e.into());
            }
            report.emitted += events.len();
        }
        match page.next {
            _ if cut_short => {
                report.truncated = true;
                break;
            }
            Some(_) if report.emitted >= config.max_per_run => {
                report.truncated = true;
                break;
            }
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if report.emitted > 0 {
        tracing::info!(
            emitted = report.emitted,
            pages = report.pages,
            skipped = report.skipped,
            truncated = report.truncated,
            "overdue orders re-emitted"
        );
    }
    Ok(report)
}
