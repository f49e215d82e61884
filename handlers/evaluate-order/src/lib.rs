//! evaluate-order: hands an order to the auction platform and waits for its results.
//!
//! Triggered by `OrderSubmitted`, `OrderAmended`, `OrderChecksDue` (a round of checks, from its
//! own one-time schedules) and `OrderEvaluationDue` (one order, from the sweeper), always as an
//! EventBridge event. What it does depends on the order's state:
//!
//! | state | action |
//! |---|---|
//! | RECEIVED | submit to the platform; schedule check 1 at the expected publication time; → PENDING(1) |
//! | PENDING(n), final results out | → READY, emit `OrderReady` |
//! | PENDING(n), a preliminary result new or withdrawn, n < MaxAttempts | keep it, schedule check n+1, → PENDING(n+1), emit `OrderPreliminaryResult` |
//! | PENDING(n), not yet, n < MaxAttempts | schedule check n+1 (its round's `checks-<end>`), → PENDING(n+1) |
//! | PENDING(n), not yet, n = MaxAttempts | → FAILED, emit `OrderFailed{ResultsTimeout}` |
//! | READY / FAILED, overdue | re-emit the event nobody acted on (the sweeper's safety net) |
//! | CANCELLING | withdraw at the platform; → CANCELLED, emit `OrderCancelled` (or, if the platform keeps it, emit `OrderChangeRefused`, → PENDING) |
//! | anything else | a duplicate: nothing |
//!
//! `OrderAmended` is handled as `OrderSubmitted`: the order is RECEIVED again with its new body,
//! which replaces the old one at the platform. A hand-over that loses its write to a cancel or
//! an amendment made meanwhile puts the platform right before it goes: it withdraws the order
//! (CANCELLING, CANCELLED) or submits the current body (a newer one), so the platform never
//! keeps an order we call cancelled, nor a body the desk replaced.
//!
//! Checks are made in rounds of ten seconds ([`check_round`]): an order's check time is rounded
//! up to its round's end, and the round has one schedule, named by that end, which puts one
//! `OrderChecksDue` on the bus; evaluate-order then checks every PENDING order the due index holds
//! as due by then ([`EvaluateOrder::round`]). So the orders of an auction, which wait for the
//! same publication, share a few schedules instead of one an order and a check.
//!
//! The schedule is made sure of *before* the order moves: a crash between the two is repaired by
//! the next delivery, and a duplicate delivery finds the schedule already there. An event for an
//! attempt older than the order's is stale and ignored, so three deliveries of one event make one
//! check. A round delivered twice checks nothing twice: a checked order is due later.

use std::sync::Arc;

use async_trait::async_trait;
use energy_core::calendar::{MarketRules, market_time};
use energy_core::crash;
use energy_core::events::{
    Change, DomainEvent, OrderCancelled, OrderChangeRefused, OrderChecksDue, OrderFailed,
    OrderPreliminaryResult, OrderReady, OrderRef, RoundCursor,
};
use energy_core::handler::{self, Event, EventHandler, HandlerError};
use energy_core::lifecycle::{OrderRecord, OrderState, PreliminaryChange, Transition};
use energy_core::order::RecordId;
use energy_core::ports::{
    AuctionPlatform, Clock, DueCursor, DueIndex, DueOrder, EventPublisher, OrderStore, Replaced,
    ResultsStatus, RetryScheduler, Submission, TransitionError, Withdrawal,
};
use energy_core::result::{Failure, FailureReason, OrderResult};
use energy_core::retry::{ROUND, RetryPolicy, check_round, round_name};
use futures_util::{StreamExt, stream};
use jiff::Timestamp;

/// evaluate-order with what it may touch: the orders table and its due index, the bus, the
/// scheduler and the auction platform (and the clock).
pub struct EvaluateOrder {
    pub clock: Arc<dyn Clock>,
    pub orders: Arc<dyn OrderStore>,
    /// Where a round of checks finds its orders (a Query on the orders table's `due` index).
    pub due: Arc<dyn DueIndex>,
    pub bus: Arc<dyn EventPublisher>,
    pub scheduler: Arc<dyn RetryScheduler>,
    pub platform: Arc<dyn AuctionPlatform>,
    pub config: Config,
}

/// Settings of the handler.
#[derive(Debug, Clone)]
pub struct Config {
    pub retry: RetryPolicy,
    /// The calendar, for the expected publication time when the platform does not say.
    pub rules: MarketRules,
    /// Checks of a round made at once.
    pub round_concurrency: usize,
    /// Due-index entries a round reads a page.
    pub round_page: usize,
    /// Due-index entries one invocation takes of a round; the rest go on in another.
    pub round_limit: usize,
    /// Wall time after which an invocation starts no further check of a round once its first
    /// page is taken (the rest go on in another), well inside the function's 30 s timeout: the
    /// checks already running, each bounded by the platform's timeout, can still take a while.
    pub round_budget: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            retry: RetryPolicy::default(),
            rules: MarketRules::default(),
            round_concurrency: 32,
            round_page: 64,
            round_limit: 2_000,
            round_budget: std::time::Duration::from_secs(10),
        }
    }
}

/// What a round of checks did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub due_by: Timestamp,
    /// Orders checked, whatever each check found.
    pub checked: usize,
    /// Entries left alone: not PENDING (the sweeper's part), or moved on since the index said.
    pub passed: usize,
    /// Checks that failed; their orders stay due, and the sweeper re-sends them.
    pub failed: usize,
    /// The round goes on in another invocation.
    pub continued: bool,
}

/// Where a round is in the due index: the entries of the page read last not yet taken, where
/// they start (after the last entry taken), where the next page starts (none after the last
/// page), and how many pages this invocation read and entries it took.
struct Pages {
    items: std::collections::VecDeque<DueOrder>,
    start: Option<DueCursor>,
    cursor: Option<DueCursor>,
    read: usize,
    taken: usize,
}

impl Config {
    /// The publication time to wait for: the platform's word, else the calendar's.
    fn publication(
        &self,
        record: &OrderRecord,
        platform_says: Option<Timestamp>,
    ) -> Option<Timestamp> {
        platform_says.or_else(|| self.rules.expected_publication(record.order.auction()).ok())
    }
}

/// What one invocation did (returned so tests and logs can say it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    HandedOver {
        first_check_at: Timestamp,
    },
    Retrying {
        attempt: u32,
        at: Timestamp,
    },
    Ready,
    /// A preliminary result came or was withdrawn (told as `OrderPreliminaryResult`); the
    /// final one is checked for at `at`.
    Preliminary {
        withdrawn: bool,
        attempt: u32,
        at: Timestamp,
    },
    Failed(FailureReason),
    Resent(&'static str),
    /// Withdrawn at the platform (or it did not hold the order): CANCELLED.
    Cancelled,
    /// The platform kept the order (its gate closed): PENDING again.
    /// The platform kept the order as it holds it (a refused withdrawal or amendment): PENDING.
    ChangeRefused(String),
    /// Stale or duplicate event; the order has moved on.
    Ignored(String),
    /// Another delivery moved the order first.
    LostRace,
    /// A round of checks.
    Round(Round),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::HandedOver { first_check_at } => write!(
                f,
                "handed over; first check {}",
                market_time(*first_check_at)
            ),
            Outcome::Retrying { attempt, at } => {
                write!(
                    f,
                    "results not out; check {attempt} at {}",
                    market_time(*at)
                )
            }
            Outcome::Ready => f.write_str("results out; order ready"),
            Outcome::Preliminary {
                withdrawn,
                attempt,
                at,
            } => write!(
                f,
                "preliminary results {}; check {attempt} at {}",
                if *withdrawn { "withdrawn" } else { "out" },
                market_time(*at)
            ),
            Outcome::Failed(reason) => write!(f, "failed: {}", reason.in_words()),
            Outcome::Resent(event) => write!(f, "re-sent {event}"),
            Outcome::Cancelled => f.write_str("withdrawn at the platform; cancelled"),
            Outcome::ChangeRefused(why) => write!(f, "the platform kept it as it holds it: {why}"),
            Outcome::Ignored(why) => write!(f, "ignored: {why}"),
            Outcome::LostRace => f.write_str("another delivery moved the order first"),
            Outcome::Round(r) => {
                write!(
                    f,
                    "round of checks due by {}: {} checked, {} left alone",
                    market_time(r.due_by),
                    r.checked,
                    r.passed
                )?;
                if r.failed > 0 {
                    write!(f, ", {} failed (the sweeper re-sends them)", r.failed)?;
                }
                if r.continued {
                    f.write_str("; goes on in another invocation")?;
                }
                Ok(())
            }
        }
    }
}

pub type Error = HandlerError;

#[async_trait]
impl EventHandler for EvaluateOrder {
    const NAME: &'static str = "evaluate-order";
    type Outcome = Outcome;

    async fn handle(&self, event: Event) -> Result<Outcome, Error> {
        let (record_id, attempt) = match DomainEvent::parse(&event.detail_type, event.detail)? {
            DomainEvent::Submitted(e) => (e.order.record_id, 0),
            DomainEvent::Amended(e) => (e.order.record_id, 0),
            DomainEvent::EvaluationDue(e) => (e.record_id, e.attempt),
            DomainEvent::ChecksDue(round) => return self.round(round).await,
            other => return Err(Error::wrong_event(Self::NAME, other.detail_type())),
        };
        let Some(record) = self.orders.get(&record_id).await? else {
            return Err(Error::MissingOrder(record_id));
        };
        let now = self.clock.now();
        match record.state {
            OrderState::Received => self.hand_over(record, now).await,
            OrderState::Cancelling => self.cancel(record, now).await,
            OrderState::Pending if attempt < record.attempt => Ok(Outcome::Ignored(format!(
                "event for check {attempt}, order is at check {}",
                record.attempt
            ))),
            // Checked when due (by its round, or the sweeper once it is overdue): an early
            // event, forged or a consumer's mistake, would spend a check for nothing.
            OrderState::Pending if record.due_at.is_some_and(|d| d > now) => {
                Ok(Outcome::Ignored(format!(
                    "check {} is not due until {}",
                    record.attempt,
                    record.due_at.map(market_time).unwrap_or_default()
                )))
            }
            OrderState::Pending => self.check(record, now).await,
            OrderState::Ready | OrderState::Failed if record.due_at.is_some_and(|d| d <= now) => {
                self.resend(record, now).await
            }
            state => Ok(Outcome::Ignored(format!("order is {state}"))),
        }
    }
}

impl EvaluateOrder {
    async fn move_to(
        &self,
        record: &OrderRecord,
        t: Transition,
        now: Timestamp,
    ) -> Result<energy_core::ports::Replaced, Error> {
        Ok(handler::transition(self.orders.as_ref(), record, t, now).await?)
    }

    async fn hand_over(&self, record: OrderRecord, now: Timestamp) -> Result<Outcome, Error> {
        let config = &self.config;
        match self.platform.submit(&record.order).await? {
            Submission::Accepted {
                expected_publication,
            } => {
                crash::point(crash::EVALUATE_AFTER_SUBMIT);
                let expected = config.publication(&record, expected_publication);
                let at = check_round(config.retry.check_at(
                    now,
                    expected,
                    &record.order.record_id,
                    1,
                ));
                let check = record.attempt + 1;
                self.schedule(&record, check, at).await?;
                let moved = self
                    .move_to(&record, Transition::HandedOver { due_at: at }, now)
                    .await?;
                if moved == Replaced::Conflict {
                    self.put_platform_right(&record).await?;
                }
                Ok(moved.or_lost(
                    Outcome::HandedOver { first_check_at: at },
                    Outcome::LostRace,
                ))
            }
            Submission::Refused { reason } if record.held_body.is_some() => {
                self.amend_refused(record, reason, now).await
            }
            Submission::Refused { reason } => {
                self.fail(&record, FailureReason::InvalidAtPlatform, reason, now)
                    .await
            }
        }
    }

    /// The platform refused an amended body while it holds the previous one (a rejected
    /// modification leaves the original order): the previous body stays in the auction, the
    /// order goes back to it, PENDING, and the desk is told. Told first, as a refused cancel.
    async fn amend_refused(
        &self,
        record: OrderRecord,
        reason: String,
        now: Timestamp,
    ) -> Result<Outcome, Error> {
        tracing::warn!(record_id = %record.order.record_id, %reason, "the platform refused an amendment; the previous body stands");
        let refused = OrderChangeRefused {
            order: OrderRef::from(&record.order),
            change: Change::Amend,
            reason: reason.clone(),
            refused_at: now,
        };
        self.bus
            .publish(&[DomainEvent::ChangeRefused(refused)])
            .await?;
        let due_at = self.next_check_at(&record, now);
        let moved = self
            .move_to(&record, Transition::AmendRefused { due_at }, now)
            .await?;
        Ok(moved.or_lost(Outcome::ChangeRefused(reason), Outcome::LostRace))
    }

    /// When an order back on a body the platform holds should next be checked: at the
    /// calendar's publication time (or by the backoff once it has passed).
    fn next_check_at(&self, record: &OrderRecord, now: Timestamp) -> Timestamp {
        let expected = self.config.publication(record, None);
        check_round(self.config.retry.check_at(
            now,
            expected,
            &record.order.record_id,
            record.attempt.max(1),
        ))
    }

    async fn check(&self, record: OrderRecord, now: Timestamp) -> Result<Outcome, Error> {
        let Some(record) = self.announce_preliminary(record, now).await? else {
            return Ok(Outcome::LostRace);
        };
        let config = &self.config;
        let (change, expected) = match self.platform.results(&record.order).await? {
            ResultsStatus::Published(result) => return self.ready(&record, *result, now).await,
            ResultsStatus::Unknown { reason } => {
                return self
                    .fail(&record, FailureReason::InvalidAtPlatform, reason, now)
                    .await;
            }
            ResultsStatus::NotYet {
                expected_publication,
            } => {
                let withdrawn = record.standing_preliminary().is_some();
                let expected = config.publication(&record, expected_publication);
                (withdrawn.then_some(PreliminaryChange::Withdrawn), expected)
            }
            ResultsStatus::Preliminary {
                result,
                expected_final,
            } => {
                let new = record.standing_preliminary() != Some(&*result);
                let expected = expected_final
                    .or_else(|| config.rules.expected_final(record.order.auction()).ok());
                (
                    new.then_some(PreliminaryChange::Published(*result)),
                    expected,
                )
            }
        };
        if record.checks() >= config.retry.max_attempts {
            let had_preliminary = record.standing_preliminary().is_some()
                || matches!(change, Some(PreliminaryChange::Published(_)));
            let what = if had_preliminary {
                "preliminary auction results but no final ones"
            } else {
                "no auction results"
            };
            let message = format!("{what} after {} checks; giving up", record.checks());
            return self
                .fail(&record, FailureReason::ResultsTimeout, message, now)
                .await;
        }
        let next = record.attempt + 1;
        let at = check_round(
            config
                .retry
                .check_at(now, expected, &record.order.record_id, next),
        );
        self.schedule(&record, next, at).await?;
        let Some(change) = change else {
            let moved = self
                .move_to(&record, Transition::Retry { due_at: at }, now)
                .await?;
            return Ok(moved.or_lost(Outcome::Retrying { attempt: next, at }, Outcome::LostRace));
        };
        let withdrawn = change == PreliminaryChange::Withdrawn;
        let t = Transition::Preliminary { change, due_at: at };
        let kept = record.apply(t, now).map_err(TransitionError::from)?;
        if self.orders.replace(&kept, record.expected()).await? == Replaced::Conflict {
            return Ok(Outcome::LostRace);
        }
        crash::point(crash::EVALUATE_AFTER_PRELIMINARY);
        if self.announce_preliminary(kept, now).await?.is_none() {
            return Ok(Outcome::LostRace);
        }
        Ok(Outcome::Preliminary {
            withdrawn,
            attempt: next,
            at,
        })
    }

    /// PENDING → READY with the final result, then `OrderReady`.
    async fn ready(
        &self,
        record: &OrderRecord,
        result: OrderResult,
        now: Timestamp,
    ) -> Result<Outcome, Error> {
        let due_at = self.config.retry.redelivery_at(now);
        let event = OrderReady {
            order: OrderRef::from(&record.order),
            outcome: result.outcome,
            result: result.clone(),
        };
        let ready = record
            .apply(Transition::Ready { result, due_at }, now)
            .map_err(TransitionError::from)?;
        let moved = self.orders.replace(&ready, record.expected()).await?;
        if moved.or_lost(true, false) {
            crash::point(crash::EVALUATE_AFTER_READY);
            let mut events = Vec::with_capacity(2);
            // The final result did not confirm the preliminary one (which no check saw go):
            // the desk hears it was withdrawn, then the final result.
            if let Some(p) = &ready.preliminary
                && record.standing_preliminary().is_some()
                && p.withdrawn_at.is_some()
            {
                events.push(DomainEvent::PreliminaryResult(
                    OrderPreliminaryResult::from_record(&ready, p),
                ));
            }
            events.push(DomainEvent::Ready(event));
            self.bus.publish(&events).await?;
        }
        Ok(moved.or_lost(Outcome::Ready, Outcome::LostRace))
    }

    /// Tells the desk of the latest change of `record`'s preliminary result if it has not been
    /// told (`OrderPreliminaryResult`), and marks it told. The record as it is then; `None`
    /// when another delivery wrote the order first.
    async fn announce_preliminary(
        &self,
        record: OrderRecord,
        now: Timestamp,
    ) -> Result<Option<OrderRecord>, Error> {
        let Some(preliminary) = record.unannounced_preliminary() else {
            return Ok(Some(record));
        };
        let event = OrderPreliminaryResult::from_record(&record, preliminary);
        self.bus
            .publish(&[DomainEvent::PreliminaryResult(event)])
            .await?;
        let told = record
            .apply(Transition::PreliminaryAnnounced, now)
            .map_err(TransitionError::from)?;
        Ok(match self.orders.replace(&told, record.expected()).await? {
            Replaced::Applied => Some(told),
            Replaced::Conflict => None,
        })
    }

    /// After a hand-over of `submitted` lost its write: if the desk cancelled meanwhile, the
    /// platform must not keep the order; if it amended, the platform must hold the new body,
    /// whichever submission reached it last.
    async fn put_platform_right(&self, submitted: &OrderRecord) -> Result<(), Error> {
        let Some(current) = self.orders.get(&submitted.order.record_id).await? else {
            return Ok(());
        };
        match current.state {
            OrderState::Cancelling | OrderState::Cancelled => {
                let answer = self.platform.withdraw(&submitted.order).await?;
                tracing::info!(record_id = %current.order.record_id, ?answer, "withdrawn after a lost hand-over");
            }
            OrderState::Received | OrderState::Pending if current.order != submitted.order => {
                let answer = self.platform.submit(&current.order).await?;
                tracing::info!(record_id = %current.order.record_id, ?answer, "amended body submitted after a lost hand-over");
            }
            _ => {}
        }
        Ok(())
    }

    /// A CANCELLING order: withdrawn at the platform, announced, then CANCELLED (announced
    /// first: CANCELLING stays due, so a crash before the last write is repaired by the next
    /// delivery, at the price of a second `OrderCancelled`); if the platform keeps it (its gate
    /// closed), PENDING again, due now so its results are checked.
    async fn cancel(&self, record: OrderRecord, now: Timestamp) -> Result<Outcome, Error> {
        // Claimed first, as store-result does: of deliveries racing on one order, one
        // withdraws and announces.
        let claimed =
            handler::claim(self.orders.as_ref(), &self.config.retry, &record, now).await?;
        let Some(record) = claimed else {
            return Ok(Outcome::Ignored(
                "another delivery is withdrawing the order".into(),
            ));
        };
        match self.withdraw(&record, now).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => Err(handler::release(self.orders.as_ref(), &record, now, e).await),
        }
    }

    /// The claimant's part of [`Self::cancel`].
    async fn withdraw(&self, record: &OrderRecord, now: Timestamp) -> Result<Outcome, Error> {
        match self.platform.withdraw(&record.order).await? {
            Withdrawal::Withdrawn | Withdrawal::NotHeld => {
                crash::point(crash::EVALUATE_AFTER_WITHDRAW);
                let cancelled = OrderCancelled {
                    order: OrderRef::from(&record.order),
                    cancelled_at: now,
                };
                self.bus
                    .publish(&[DomainEvent::Cancelled(cancelled)])
                    .await?;
                crash::point(crash::EVALUATE_AFTER_CANCELLED);
                let moved = self.move_to(record, Transition::Cancelled, now).await?;
                Ok(moved.or_lost(Outcome::Cancelled, Outcome::LostRace))
            }
            Withdrawal::Refused { reason } => {
                tracing::warn!(record_id = %record.order.record_id, %reason, "the platform kept a cancelled order");
                // Told first, as `OrderCancelled`: the claim keeps racing deliveries out, and a
                // crash before the write below repeats the event rather than losing it.
                let refused = OrderChangeRefused {
                    order: OrderRef::from(&record.order),
                    change: Change::Cancel,
                    reason: reason.clone(),
                    refused_at: now,
                };
                self.bus
                    .publish(&[DomainEvent::ChangeRefused(refused)])
                    .await?;
                // Due when its check is, not now: an early check only spends an attempt.
                let due_at = self.next_check_at(record, now);
                let refused = Transition::CancelRefused { due_at };
                let moved = self.move_to(record, refused, now).await?;
                Ok(moved.or_lost(Outcome::ChangeRefused(reason), Outcome::LostRace))
            }
        }
    }

    /// Makes sure the round of checks at `at` (a round's end: see [`check_round`]) has its
    /// schedule: the first order whose check falls in the round creates it, the others find it.
    async fn schedule(
        &self,
        record: &OrderRecord,
        attempt: u32,
        at: Timestamp,
    ) -> Result<(), Error> {
        let name = round_name(at);
        let round = OrderChecksDue {
            due_by: at,
            after: None,
        };
        let outcome = self.scheduler.schedule(&name, at, &round).await?;
        tracing::debug!(record_id = %record.order.record_id, attempt, schedule = %name, %at, ?outcome, "check scheduled");
        crash::point(crash::EVALUATE_AFTER_SCHEDULE);
        Ok(())
    }

    /// A round of checks: every order the due index holds as due within the round (after the
    /// round before it ended, by `due_by`; from `after`) that is PENDING and due by then is
    /// checked, as its own `OrderEvaluationDue` would have
    /// it checked, several at once. The other entries are left to the sweeper (an order
    /// RECEIVED, READY or FAILED waits for an event, not a check). A check that fails leaves
    /// its order due, for the sweeper, and the round goes on. After `round_limit` entries the
    /// round goes on in another invocation: an `OrderChecksDue` from where this one stopped
    /// (so does one that has run for `round_budget`).
    async fn round(&self, round: OrderChecksDue) -> Result<Outcome, Error> {
        let config = &self.config;
        let started = std::time::Instant::now();
        // The round's own window: its orders are due after the round before it ended. An order
        // of an earlier round is that round's (or, if it was lost, the sweeper's): rounds that
        // overlapped checked the same orders at once.
        let since = round.due_by.saturating_sub(ROUND).unwrap_or(round.due_by);
        let mut report = Round {
            due_by: round.due_by,
            ..Round::default()
        };
        let cursor = round.after.map(|a| DueCursor {
            due_at: a.due_at,
            record_id: a.record_id,
        });
        // The entries stream page after page into one pool of checks: the next page is read
        // while the last checks of the one before are still running, not after them all. At a
        // page boundary past the invocation's share, or at any entry after the first page past
        // its time, the rest is handed on.
        let limit = config.round_limit;
        let budget = config.round_budget;
        let page_size = config.round_page.max(1);
        // Where the stream stopped early: the rest to hand on, or the read that failed.
        let halt: std::sync::Mutex<Option<Result<DueCursor, Error>>> = Default::default();
        let pages = Pages {
            items: std::collections::VecDeque::new(),
            start: None,
            cursor,
            read: 0,
            taken: 0,
        };
        let entries = stream::unfold(pages, |mut pages| {
            let halt = &halt;
            async move {
                let stop = |why| {
                    *halt.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                    None
                };
                loop {
                    if let Some(entry) = pages.items.pop_front() {
                        // Past the first page and the budget, no further check starts: the
                        // rest goes on from the last entry taken.
                        if pages.read > 1 && started.elapsed() >= budget {
                            return pages.start.take().and_then(|rest| stop(Ok(rest)));
                        }
                        pages.start = Some(DueCursor::from(&entry));
                        pages.taken += 1;
                        return Some((entry, pages));
                    }
                    if pages.read > 0 && pages.cursor.is_none() {
                        return None;
                    }
                    if pages.read > 0 && (pages.taken >= limit || started.elapsed() >= budget) {
                        return pages.cursor.take().and_then(|rest| stop(Ok(rest)));
                    }
                    pages.start = pages.cursor.clone();
                    let page = self
                        .due
                        .due_between(since, round.due_by, page_size, pages.cursor.take())
                        .await;
                    match page {
                        Ok(page) => {
                            pages.read += 1;
                            pages.items.extend(page.items);
                            pages.cursor = page.next;
                        }
                        Err(e) => return stop(Err(e.into())),
                    }
                }
            }
        })
        // Boxed: the compiler cannot otherwise see that the handler's future is `Send`.
        .boxed();
        let checks: Vec<(RecordId, Result<bool, Error>)> = entries
            .map(|d| self.check_due(d.record_id, round.due_by))
            .buffer_unordered(config.round_concurrency.max(1))
            .collect()
            .await;
        for (record_id, check) in checks {
            match check {
                Ok(true) => report.checked += 1,
                Ok(false) => report.passed += 1,
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(%record_id, error = %e, "a check of the round failed; the order stays due");
                }
            }
        }
        let halt = halt.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(halt) = halt {
            let next = halt?;
            let rest = OrderChecksDue {
                due_by: round.due_by,
                after: Some(RoundCursor {
                    due_at: next.due_at,
                    record_id: next.record_id,
                }),
            };
            self.bus.publish(&[DomainEvent::ChecksDue(rest)]).await?;
            report.continued = true;
        }
        tracing::info!(
            due_by = %round.due_by,
            checked = report.checked,
            passed = report.passed,
            failed = report.failed,
            continued = report.continued,
            "round of checks"
        );
        Ok(Outcome::Round(report))
    }

    /// One order of a round: checked if it is PENDING and due by `due_by` (the index may lag
    /// behind the record, which is read as it is). Whether it was.
    async fn check_due(
        &self,
        record_id: RecordId,
        due_by: Timestamp,
    ) -> (RecordId, Result<bool, Error>) {
        let checked = async {
            let Some(record) = self.orders.get(&record_id).await? else {
                return Ok(false);
            };
            if record.state != OrderState::Pending || record.due_at.is_none_or(|d| d > due_by) {
                return Ok(false);
            }
            let now = self.clock.now();
            // A check another delivery made first is not this round's.
            Ok(!matches!(
                self.check(record, now).await?,
                Outcome::LostRace | Outcome::Ignored(_)
            ))
        }
        .await;
        (record_id, checked)
    }

    async fn fail(
        &self,
        record: &OrderRecord,
        reason: FailureReason,
        message: String,
        now: Timestamp,
    ) -> Result<Outcome, Error> {
        let failure = Failure {
            reason,
            message,
            failed_at: now,
        };
        let moved = handler::fail(
            self.orders.as_ref(),
            self.bus.as_ref(),
            &self.config.retry,
            record,
            failure,
        )
        .await?;
        Ok(moved.or_lost(Outcome::Failed(reason), Outcome::LostRace))
    }

    /// Re-sends the event of a READY or FAILED order whose consumer never acted.
    async fn resend(&self, record: OrderRecord, now: Timestamp) -> Result<Outcome, Error> {
        let event = match (&record.state, &record.result, &record.failure) {
            (OrderState::Ready, Some(result), _) => DomainEvent::Ready(OrderReady {
                order: OrderRef::from(&record.order),
                outcome: result.outcome,
                result: result.clone(),
            }),
            (OrderState::Failed, _, Some(failure)) => {
                DomainEvent::Failed(OrderFailed::from_record(&record, failure))
            }
            _ => {
                return Ok(Outcome::Ignored(format!(
                    "{} order without its payload",
                    record.state
                )));
            }
        };
        let due_at = self.config.retry.redelivery_at(now);
        let moved = self
            .move_to(&record, Transition::Requeue { due_at }, now)
            .await?;
        let kind = event.detail_type();
        if moved.or_lost(true, false) {
            self.bus.publish(&[event]).await?;
            tracing::info!(record_id = %record.order.record_id, event = kind, "re-sent");
        }
        Ok(moved.or_lost(Outcome::Resent(kind), Outcome::LostRace))
    }
}
