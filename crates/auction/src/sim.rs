//! `SimPlatform`: a simulated SDAC/IDA platform behind the core's `AuctionPlatform` port.
//!
//! It takes and replaces orders until gate closure, clears each auction once after gate closure
//! (participants' curves against the synthetic market of each zone and MTU), keeps that clearing,
//! and answers "not yet" before the publication time and the per-order result after it. The
//! publication time is the calendar's, shifted by a configurable delay per zone (or "never", for
//! tests and demos of an evaluator that gives up).
//!
//! Where the market publishes in two steps (SDAC), the result is *preliminary* from the
//! publication time and *final* from the calendar's final time (shifted by the same delay). A
//! *decoupled* zone ([`SimConfig::decoupled`], `--decouple ZONE`) has its preliminary result
//! withdrawn at the final time, and gets a final result cleared locally
//! ([`crate::synthetic::decoupled_market_steps`]) `decoupled_delay` later.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use energy_core::calendar::{AuctionId, MarketRules};
use energy_core::market::Zone;
use energy_core::money::{Lots, PriceCents};
use energy_core::order::{Order, RecordId};
use energy_core::ports::{
    AuctionPlatform, Clock, PortError, ResultsStatus, Submission, Withdrawal,
};
use energy_core::result::OrderResult;
use jiff::{SignedDuration, Timestamp};

use crate::clearing::{ClearingStep, Limits, clear};
use crate::synthetic::{decoupled_market_steps, market_steps};

/// When results appear, relative to the calendar's expected publication time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publication {
    After(SignedDuration),
    /// Results never come: the evaluator must give up.
    Never,
}

/// The simulator's settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub rules: MarketRules,
    /// Delay for every zone without its own.
    pub publication: Publication,
    pub per_zone: HashMap<Zone, Publication>,
    /// Zones whose preliminary result is withdrawn and whose final result is cleared locally.
    pub decoupled: HashSet<Zone>,
    /// How long after the usual final time a decoupled zone's final result comes (100 min:
    /// SDAC's 13:00 → 14:40, after the 14:20 full-decoupling deadline).
    pub decoupled_delay: SignedDuration,
    /// Zones whose orders the platform will not withdraw once taken (as an exchange may refuse a
    /// withdrawal for its own reasons): what a desk sees when its cancel comes too late.
    pub keeps: HashSet<Zone>,
    /// Answer for orders it does not hold by clearing them alone against the synthetic market:
    /// how the simulator runs inside a Lambda function, where no state outlives a container.
    pub stateless: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            rules: MarketRules::default(),
            publication: Publication::After(SignedDuration::ZERO),
            per_zone: HashMap::new(),
            decoupled: HashSet::new(),
            decoupled_delay: SignedDuration::from_mins(100),
            keeps: HashSet::new(),
            stateless: false,
        }
    }
}

/// An order as the platform holds it.
#[derive(Debug, Clone)]
struct Held {
    order: Order,
    receipt: u64,
}

impl Held {
    /// Step `k` of period `pi` as the clearing sees it.
    fn step(&self, pi: usize, k: usize) -> ClearingStep {
        let step = &self.order.periods[pi].steps[k];
        ClearingStep {
            id: format!("{}#{pi}.{k}", self.order.record_id),
            side: self.order.side,
            price: step.price,
            quantity: step.quantity,
            receipt: self.receipt,
            record_id: self.order.record_id.to_string(),
        }
    }
}

/// One zone and MTU's book as the platform clears it: the synthetic market's steps first, then
/// the participants' in order of receipt, and the market's price limits.
#[derive(Debug, Clone)]
pub struct Book {
    pub steps: Vec<ClearingStep>,
    /// How many of `steps` are the synthetic market's (the rest are the desk's orders).
    pub market_steps: usize,
    pub limits: Limits,
}

/// A participant's step in one zone and MTU: its order, the order's period, the step.
type BookEntry = (RecordId, usize, ClearingStep);

/// One auction's stored clearing: per order, per period, (price, accepted).
type AuctionResult = HashMap<RecordId, Vec<(Option<PriceCents>, Lots)>>;

#[derive(Default)]
struct State {
    orders: HashMap<RecordId, Held>,
    next_receipt: u64,
    cleared: HashMap<AuctionId, Arc<AuctionResult>>,
    /// A decoupled zone's local clearing.
    cleared_alone: HashMap<(AuctionId, Zone), Arc<AuctionResult>>,
    clearings: usize,
}

impl State {
    /// The orders of one auction, earliest receipt first.
    fn held(&self, auction: AuctionId) -> Vec<&Held> {
        let mut held: Vec<&Held> = self
            .orders
            .values()
            .filter(|h| h.order.auction() == auction)
            .collect();
        held.sort_by_key(|h| h.receipt);
        held
    }
}

/// The simulated platform.
pub struct SimPlatform {
    config: SimConfig,
    per_zone: Mutex<HashMap<Zone, Publication>>,
    decoupled: Mutex<HashSet<Zone>>,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

fn platform_error(e: impl std::fmt::Display) -> PortError {
    PortError::permanent("auction platform", e.to_string())
}

impl SimPlatform {
    pub fn new(config: SimConfig, clock: Arc<dyn Clock>) -> Self {
        let per_zone = Mutex::new(config.per_zone.clone());
        let decoupled = Mutex::new(config.decoupled.clone());
        SimPlatform {
            config,
            per_zone,
            decoupled,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets when one zone's results appear (from now on: a test can make an auction late).
    pub fn set_publication(&self, zone: Zone, publication: Publication) {
        self.per_zone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(zone, publication);
    }

    /// Decouples one zone from now on: its preliminary results are withdrawn at the final time
    /// and its final ones cleared locally, later.
    pub fn decouple(&self, zone: Zone) {
        self.decoupled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(zone);
    }

    /// Whether `zone` is decoupled: its final result is cleared on its own market.
    pub fn is_decoupled(&self, zone: Zone) -> bool {
        self.decoupled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&zone)
    }

    /// When this zone's results for `auction` are final, given when they are first published:
    /// as much later as the calendar's final time is after its publication time, and, for a
    /// decoupled zone, `decoupled_delay` later still.
    pub fn final_time(&self, auction: AuctionId, zone: Zone, first: Timestamp) -> Timestamp {
        let at = self.final_time_coupled(auction, first);
        if self.is_decoupled(zone) {
            at.saturating_add(self.config.decoupled_delay).unwrap_or(at)
        } else {
            at
        }
    }

    /// The final time of a coupled zone whose results were first published at `first`.
    fn final_time_coupled(&self, auction: AuctionId, first: Timestamp) -> Timestamp {
        let rules = &self.config.rules;
        let gap = match (
            rules.expected_publication(auction),
            rules.expected_final(auction),
        ) {
            (Ok(p), Ok(f)) => f.duration_since(p).max(SignedDuration::ZERO),
            _ => SignedDuration::ZERO,
        };
        first.saturating_add(gap).unwrap_or(first)
    }

    /// Takes back an order it had accepted before a restart (the caller keeps them, earliest
    /// receipt first): no gate check, since the gate was open when it was first accepted.
    pub fn restore(&self, order: Order) {
        let mut state = self.state();
        let receipt = state.next_receipt;
        state.next_receipt += 1;
        state
            .orders
            .insert(order.record_id.clone(), Held { order, receipt });
    }

    /// The order the platform holds under `record_id`.
    pub fn order(&self, record_id: &RecordId) -> Option<Order> {
        self.state().orders.get(record_id).map(|h| h.order.clone())
    }

    /// The orders of one auction, earliest first.
    pub fn orders_of(&self, auction: AuctionId) -> Vec<Order> {
        self.state()
            .held(auction)
            .into_iter()
            .map(|h| h.order.clone())
            .collect()
    }

    /// The rules the platform runs on.
    pub fn rules(&self) -> &MarketRules {
        &self.config.rules
    }

    /// How many auctions were cleared so far (each at most once).
    pub fn clearings(&self) -> usize {
        self.state().clearings
    }

    /// When this zone's results for `auction` are published; `None` for never.
    pub fn publication_time(
        &self,
        auction: AuctionId,
        zone: Zone,
    ) -> Result<Option<Timestamp>, PortError> {
        let expected = self
            .config
            .rules
            .expected_publication(auction)
            .map_err(platform_error)?;
        let configured = self
            .per_zone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&zone)
            .copied();
        Ok(match configured.unwrap_or(self.config.publication) {
            Publication::After(d) => Some(expected.saturating_add(d).unwrap_or(expected)),
            Publication::Never => None,
        })
    }

    /// The gate closure of `auction`.
    fn gate(&self, auction: AuctionId) -> Result<Timestamp, PortError> {
        self.config
            .rules
            .gate_closure(auction)
            .map_err(platform_error)
    }

    /// Whether the gate of `auction` has closed on the platform's clock.
    pub fn gate_passed(&self, auction: AuctionId) -> bool {
        self.config
            .rules
            .gate_closure(auction)
            .is_ok_and(|gate| self.clock.now() >= gate)
    }

    /// Why an exchange would refuse `order` at `now`, checked here on its own and not with the
    /// API's validation, so a hole in that validation shows as a refusal instead of being
    /// cleared: the order book is open, every MTU is on the auction's 15-minute grid inside its
    /// delivery window and appears once, every curve has steps, every price is within the
    /// market's limits (the 0.01 EUR tick and the 0.1 MW lot are the integer types' own), every
    /// quantity is positive, and no MTU's curve offers more than the maximum volume.
    fn refusal(
        &self,
        order: &Order,
        now: Timestamp,
    ) -> Result<Option<String>, energy_core::calendar::CalendarError> {
        let rules = &self.config.rules;
        let auction = order.auction();
        let opens = rules.book_opening(auction)?;
        if now < opens {
            return Ok(Some(format!("the {auction} order book opens at {opens}")));
        }
        if order.periods.is_empty() {
            return Ok(Some("the order has no periods".into()));
        }
        let grid: std::collections::BTreeSet<Timestamp> =
            rules.mtus(auction)?.into_iter().collect();
        let spec = rules.spec(order.market);
        let max_volume = rules.limits.max_volume;
        let mut seen = std::collections::BTreeSet::new();
        for period in &order.periods {
            let mtu = period.mtu_start;
            if !grid.contains(&mtu) {
                let (start, end) = rules.delivery_window(auction)?;
                return Ok(Some(format!(
                    "MTU {mtu} is not a quarter-hour of the {auction} delivery window {start} to {end}"
                )));
            }
            if !seen.insert(mtu) {
                return Ok(Some(format!("MTU {mtu} appears twice")));
            }
            if period.steps.is_empty() {
                return Ok(Some(format!("MTU {mtu} has no steps")));
            }
            let mut volume = Lots(0);
            for step in &period.steps {
                if step.price < spec.min_price || step.price > spec.max_price {
                    return Ok(Some(format!(
                        "MTU {mtu}: price {} is outside {} to {} EUR/MWh",
                        step.price, spec.min_price, spec.max_price
                    )));
                }
                if step.quantity <= Lots(0) {
                    return Ok(Some(format!(
                        "MTU {mtu}: quantity {} MW is not positive",
                        step.quantity
                    )));
                }
                volume = volume.checked_add(step.quantity).unwrap_or(Lots(i64::MAX));
            }
            if volume > max_volume {
                return Ok(Some(format!(
                    "MTU {mtu}: {volume} MW offered, over the {max_volume} MW an order may offer"
                )));
            }
        }
        Ok(None)
    }

    /// The book of `zone`'s MTU `mtu` in `auction`: the coupled one, or (`alone`) the zone's own
    /// market's. Cleared with [`clear`], it gives the prices and fills the platform publishes for
    /// the orders it holds now (after the gate, the orders it cleared).
    pub fn book(&self, auction: AuctionId, zone: Zone, mtu: Timestamp, alone: bool) -> Book {
        let spec = self.config.rules.spec(auction.market);
        let limits = Limits {
            min_price: spec.min_price,
            max_price: spec.max_price,
        };
        let mut steps = market(alone)(auction, zone, mtu);
        let market_steps = steps.len();
        let state = self.state();
        for h in state.held(auction) {
            if h.order.zone != zone {
                continue;
            }
            for (pi, period) in h.order.periods.iter().enumerate() {
                if period.mtu_start == mtu {
                    steps.extend((0..period.steps.len()).map(|k| h.step(pi, k)));
                }
            }
        }
        Book {
            steps,
            market_steps,
            limits,
        }
    }

    /// Clears one order alone against the synthetic market of each of its MTUs (the local
    /// market if its zone is decoupled).
    fn solo_fills(&self, order: &Order, decoupled: bool) -> Vec<(Option<PriceCents>, Lots)> {
        let spec = self.config.rules.spec(order.market);
        let limits = Limits {
            min_price: spec.min_price,
            max_price: spec.max_price,
        };
        order
            .periods
            .iter()
            .map(|period| {
                let mut steps = market(decoupled)(order.auction(), order.zone, period.mtu_start);
                let first = steps.len();
                steps.extend(
                    period
                        .steps
                        .iter()
                        .enumerate()
                        .map(|(k, step)| ClearingStep {
                            id: format!("{}#{k}", order.record_id),
                            side: order.side,
                            price: step.price,
                            quantity: step.quantity,
                            receipt: 0,
                            record_id: order.record_id.to_string(),
                        }),
                );
                let c = clear(&steps, limits);
                (c.price, Lots(c.filled[first..].iter().map(|l| l.0).sum()))
            })
            .collect()
    }

    /// Clears `auction` unless it was cleared already; the stored result is returned either way.
    fn clearing(&self, auction: AuctionId) -> Arc<AuctionResult> {
        let mut state = self.state();
        if let Some(done) = state.cleared.get(&auction) {
            return done.clone();
        }
        let result = Arc::new(self.clear_books(&state, auction, None));
        state.cleared.insert(auction, result.clone());
        state.clearings += 1;
        tracing::info!(%auction, orders = result.len(), "auction cleared");
        result
    }

    /// Clears `zone` of `auction` alone, on its local market, unless it was already.
    fn clearing_alone(&self, auction: AuctionId, zone: Zone) -> Arc<AuctionResult> {
        let mut state = self.state();
        if let Some(done) = state.cleared_alone.get(&(auction, zone)) {
            return done.clone();
        }
        let result = Arc::new(self.clear_books(&state, auction, Some(zone)));
        state.cleared_alone.insert((auction, zone), result.clone());
        state.clearings += 1;
        tracing::info!(%auction, %zone, orders = result.len(), "decoupled zone cleared alone");
        result
    }

    /// The clearing of every held order of `auction` (or of `alone`'s, on its local market).
    fn clear_books(&self, state: &State, auction: AuctionId, alone: Option<Zone>) -> AuctionResult {
        let spec = self.config.rules.spec(auction.market);
        let limits = Limits {
            min_price: spec.min_price,
            max_price: spec.max_price,
        };
        // The auction's orders, by zone and MTU.
        let mut books: BTreeMap<(Zone, Timestamp), Vec<BookEntry>> = BTreeMap::new();
        let held: Vec<&Held> = state
            .held(auction)
            .into_iter()
            .filter(|h| alone.is_none_or(|z| h.order.zone == z))
            .collect();
        for h in &held {
            for (pi, period) in h.order.periods.iter().enumerate() {
                let book = books.entry((h.order.zone, period.mtu_start)).or_default();
                for k in 0..period.steps.len() {
                    book.push((h.order.record_id.clone(), pi, h.step(pi, k)));
                }
            }
        }
        let mut result: AuctionResult = held
            .iter()
            .map(|h| {
                (
                    h.order.record_id.clone(),
                    vec![(None, Lots(0)); h.order.periods.len()],
                )
            })
            .collect();
        for ((zone, mtu), book) in books {
            let mut steps = market(alone.is_some())(auction, zone, mtu);
            let first_participant = steps.len();
            steps.extend(book.iter().map(|(_, _, s)| s.clone()));
            let c = clear(&steps, limits);
            for ((record_id, pi, _), filled) in book.iter().zip(&c.filled[first_participant..]) {
                if let Some(periods) = result.get_mut(record_id) {
                    periods[*pi].0 = c.price;
                    periods[*pi].1 = Lots(periods[*pi].1.0 + filled.0);
                }
            }
        }
        result
    }

    /// The fills of `held` from the coupled clearing, or its zone's local one.
    fn fills(&self, held: &Held, decoupled: bool) -> Vec<(Option<PriceCents>, Lots)> {
        let order = &held.order;
        if self.config.stateless {
            return self.solo_fills(order, decoupled);
        }
        let cleared = if decoupled {
            self.clearing_alone(order.auction(), order.zone)
        } else {
            self.clearing(order.auction())
        };
        cleared.get(&order.record_id).cloned().unwrap_or_default()
    }
}

/// The synthetic market an order clears against: the coupled one, or a decoupled zone's own.
fn market(decoupled: bool) -> fn(AuctionId, Zone, Timestamp) -> Vec<ClearingStep> {
    if decoupled {
        decoupled_market_steps
    } else {
        market_steps
    }
}

#[async_trait]
impl AuctionPlatform for SimPlatform {
    async fn submit(&self, order: &Order) -> Result<Submission, PortError> {
        let auction = order.auction();
        let gate = self.gate(auction)?;
        let now = self.clock.now();
        {
            let mut state = self.state();
            let unchanged = state
                .orders
                .get(&order.record_id)
                .is_some_and(|h| h.order == *order);
            if !unchanged {
                if now >= gate {
                    return Ok(Submission::Refused {
                        reason: format!("the {auction} gate closed at {gate}"),
                    });
                }
                if let Some(reason) = self.refusal(order, now).map_err(platform_error)? {
                    return Ok(Submission::Refused { reason });
                }
                // New or replaced: a replacement keeps nothing of the old order, not even its
                // time priority.
                let receipt = state.next_receipt;
                state.next_receipt += 1;
                state.orders.insert(
                    order.record_id.clone(),
                    Held {
                        order: order.clone(),
                        receipt,
                    },
                );
            }
        }
        Ok(Submission::Accepted {
            expected_publication: self.publication_time(auction, order.zone)?,
        })
    }

    async fn withdraw(&self, order: &Order) -> Result<Withdrawal, PortError> {
        let auction = order.auction();
        let gate = self.gate(auction)?;
        let mut state = self.state();
        if !state.orders.contains_key(&order.record_id) {
            return Ok(Withdrawal::NotHeld);
        }
        if self.clock.now() >= gate {
            return Ok(Withdrawal::Refused {
                reason: format!(
                    "the {auction} gate closed at {gate}: the order stays in the auction"
                ),
            });
        }
        if self.config.keeps.contains(&order.zone) {
            return Ok(Withdrawal::Refused {
                reason: format!("the platform takes no withdrawals in {}", order.zone),
            });
        }
        state.orders.remove(&order.record_id);
        Ok(Withdrawal::Withdrawn)
    }

    async fn results(&self, order: &Order) -> Result<ResultsStatus, PortError> {
        let held = self.state().orders.get(&order.record_id).cloned();
        let held = match held {
            Some(held) => held,
            None if self.config.stateless => Held {
                order: order.clone(),
                receipt: 0,
            },
            None => {
                return Ok(ResultsStatus::Unknown {
                    reason: format!("the platform has no order {}", order.record_id),
                });
            }
        };
        let auction = held.order.auction();
        let zone = held.order.zone;
        let now = self.clock.now();
        let first = match self.publication_time(auction, zone)? {
            Some(at) if now >= at => at,
            expected_publication => {
                return Ok(ResultsStatus::NotYet {
                    expected_publication,
                });
            }
        };
        let decoupled = self.is_decoupled(zone);
        let coupled_final = self.final_time_coupled(auction, first);
        let result = |fills: &[(Option<PriceCents>, Lots)], at| {
            OrderResult::from_fills(&held.order, fills, at)
                .map(Box::new)
                .map_err(|e| PortError::permanent("auction platform", e.to_string()))
        };
        if now < coupled_final {
            return Ok(ResultsStatus::Preliminary {
                result: result(&self.fills(&held, false), first)?,
                expected_final: Some(coupled_final),
            });
        }
        let final_at = self.final_time(auction, zone, first);
        if now < final_at {
            // The preliminary result is withdrawn: the zone is decoupled.
            return Ok(ResultsStatus::NotYet {
                expected_publication: Some(final_at),
            });
        }
        Ok(ResultsStatus::Published(result(
            &self.fills(&held, decoupled),
            final_at,
        )?))
    }
}
