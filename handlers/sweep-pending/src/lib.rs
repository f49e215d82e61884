//! sweep-pending: the safety net for every lost message.
//!
//! Runs on a schedule (rate 2 minutes by default, template parameter `SweepSchedule`). Asks the
//! order store's due index (a Query on a sparse index, never a Scan) for orders whose `due_at`
//! passed more than `grace` ago and re-emits `OrderEvaluationDue` for each, with the order's
//! current attempt. The grace keeps it from racing a schedule that is about to fire.
//!
//! An order is in the index while it waits for something: RECEIVED (its `OrderSubmitted` may be
//! lost), PENDING (its schedule may never fire), READY and FAILED (their events may be lost). The
//! evaluator decides what each needs; final orders are not in the index at all.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use energy_core::events::{DomainEvent, OrderEvaluationDue, Trigger};
use energy_core::ports::{PortError, Ports, PublishError, Retryable};
use jiff::SignedDuration;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Config {
    /// How far past `due_at` an order must be before the sweeper steps in.
    pub grace: SignedDuration,
    /// Due-index page size (and PutEvents batch).
    pub page_size: usize,
    /// Most orders re-emitted by one run; the next run continues.
    pub max_per_run: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grace: SignedDuration::from_secs(60),
            page_size: 100,
            max_per_run: 5_000,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub emitted: usize,
    pub pages: usize,
    /// True when `max_per_run` stopped the run before the index was exhausted.
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("{emitted} re-emitted before: {source}")]
    Publish {
        emitted: usize,
        source: PublishError,
    },
}

impl Retryable for Error {
    fn retryable(&self) -> bool {
        true
    }
}

/// Handles one scheduled event (its content is not used).
pub async fn handle(
    _event: EventBridgeEvent<Value>,
    ports: &Ports,
    config: &Config,
) -> Result<Report, Error> {
    let now = ports.clock.now();
    let cutoff = now.saturating_sub(config.grace).unwrap_or(now);
    let mut report = Report::default();
    let mut cursor = None;
    loop {
        let page = ports
            .store
            .due(cutoff, config.page_size, cursor.take())
            .await?;
        report.pages += 1;
        let events: Vec<DomainEvent> = page
            .items
            .iter()
            .take(config.max_per_run - report.emitted)
            .map(|d| {
                DomainEvent::EvaluationDue(OrderEvaluationDue {
                    record_id: d.record_id.clone(),
                    attempt: d.attempt,
                    due_at: d.due_at,
                    trigger: Trigger::Sweep,
                })
            })
            .collect();
        let cut_short = events.len() < page.items.len();
        if !events.is_empty() {
            ports
                .bus
                .publish(&events)
                .await
                .map_err(|source| Error::Publish {
                    emitted: report.emitted,
                    source,
                })?;
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
            truncated = report.truncated,
            "overdue orders re-emitted"
        );
    }
    Ok(report)
}
