//! Uniform-price clearing of one auction, zone and MTU over step curves (DOMAIN.md), in integers.
//!
//! 1. D(p) = buy quantity priced ≥ p, S(p) = sell quantity priced ≤ p; D⁺ and S⁻ the same with
//!    strict inequalities.
//! 2. The cleared volume V* is the largest min(D(p), S(p)). D and S only change at step prices,
//!    so the step prices are the only candidates.
//! 3. The prices consistent with V* form an interval [lo, hi] (D⁺(p) ≤ V* ≤ D(p) and
//!    S⁻(p) ≤ V* ≤ S(p)), cut to the price limits; the clearing price is its midpoint rounded to
//!    the cent, halves away from zero. V* = 0: midway between best buy and best sell. One side
//!    empty: no price, nothing filled.
//! 4. Steps strictly in the money fill in full, steps out of the money get nothing, steps at the
//!    price share what is left pro rata in whole lots; leftover lots go by largest remainder, then
//!    earliest receipt, then record id, then step id.
//!
//! Every step's identity (id, receipt, record id) takes part in the tie-break, so the result does
//! not depend on the order the steps were given in. Sorting dominates: O(n log n).
//!
//! The engine reads the steps through [`Steps`], so a caller that keeps its steps in another
//! shape (`energy auction clear` keeps a million of them compactly, see [`crate::curves`]) clears
//! them in place instead of copying them into [`ClearingStep`]s.

use std::cmp::Ordering;

use energy_core::market::Side;
use energy_core::money::{Lots, PriceCents};
use serde::{Deserialize, Serialize};

/// One price/quantity step of one participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearingStep {
    /// Unique within the MTU.
    pub id: String,
    pub side: Side,
    pub price: PriceCents,
    pub quantity: Lots,
    /// Order of receipt at the platform (smaller is earlier).
    #[serde(default)]
    pub receipt: u64,
    #[serde(default)]
    pub record_id: String,
}

/// What the engine reads of one MTU's steps, by index.
pub trait Steps {
    /// How many steps there are; indices run from 0 to this, less one.
    fn step_count(&self) -> usize;
    fn side(&self, i: usize) -> Side;
    fn price(&self, i: usize) -> PriceCents;
    fn quantity(&self, i: usize) -> Lots;
    /// Who gets a leftover lot first among equal remainders: earliest receipt, then record id,
    /// then step id.
    fn tie_break(&self, a: usize, b: usize) -> Ordering;
}

impl Steps for [ClearingStep] {
    fn step_count(&self) -> usize {
        self.len()
    }
    fn side(&self, i: usize) -> Side {
        self[i].side
    }
    fn price(&self, i: usize) -> PriceCents {
        self[i].price
    }
    fn quantity(&self, i: usize) -> Lots {
        self[i].quantity
    }
    fn tie_break(&self, a: usize, b: usize) -> Ordering {
        let (sa, sb) = (&self[a], &self[b]);
        sa.receipt
            .cmp(&sb.receipt)
            .then_with(|| sa.record_id.cmp(&sb.record_id))
            .then_with(|| sa.id.cmp(&sb.id))
    }
}

/// Price limits of the auction (scarcity and oversupply prices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub min_price: PriceCents,
    pub max_price: PriceCents,
}

/// The outcome for one MTU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clearing {
    /// `None` when one side of the market is empty.
    pub price: Option<PriceCents>,
    pub volume: Lots,
    /// The interval of prices consistent with the volume, when there is one.
    pub interval: Option<(PriceCents, PriceCents)>,
    /// What each step got, in the order the steps were given.
    pub filled: Vec<Lots>,
}

/// Rounds `(a + b) / 2` cents to a cent, halves away from zero.
pub fn midpoint(a: i64, b: i64) -> i64 {
    let sum = i128::from(a) + i128::from(b);
    let half = sum / 2;
    let rounded = if sum % 2 == 0 {
        half
    } else {
        half + sum.signum()
    };
    rounded as i64
}

/// Clears one MTU. Every step's price must lie within `limits` (order validation sees to it).
pub fn clear(steps: &[ClearingStep], limits: Limits) -> Clearing {
    clear_steps(steps, limits)
}

/// Clears one MTU of steps in any shape. As for [`clear`], every price lies within `limits`;
/// besides, there are fewer than 2³² steps and their quantities add up within `i64` (the
/// document reader of [`crate::curves`] checks both; order validation bounds them far below).
pub fn clear_steps<S: Steps + ?Sized>(steps: &S, limits: Limits) -> Clearing {
    clear_ranked(steps, limits, |buys, sells| {
        (rank_buys(buys, steps), rank_sells(sells, steps))
    })
}

/// [`clear_steps`], the buys sorted on this thread while the sells are on a second one: the
/// same clearing, sooner when a processor is free (`energy auction clear` on a large MTU whose
/// steps need no sorting by id; [`clear`] keeps to one thread, as the benchmarks time it).
pub fn clear_steps_on_two_threads<S: Steps + Sync + ?Sized>(steps: &S, limits: Limits) -> Clearing {
    clear_ranked(steps, limits, |buys, sells| {
        let (buy_levels, sell_levels) = std::thread::scope(|scope| {
            let sell_levels = std::thread::Builder::new()
                .spawn_scoped(scope, || rank_sells(sells, steps))
                .ok();
            let buy_levels = rank_buys(buys, steps);
            let sell_levels =
                sell_levels.map(|s| s.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            (buy_levels, sell_levels)
        });
        // No second thread: the sells here too.
        let sell_levels = sell_levels.unwrap_or_else(|| rank_sells(sells, steps));
        (buy_levels, sell_levels)
    })
}

/// Buys by price, descending, and their levels: (price, D(price)).
fn rank_buys<S: Steps + ?Sized>(buys: &mut [(i64, u32)], steps: &S) -> Vec<(i64, i64)> {
    buys.sort_unstable_by_key(|b| std::cmp::Reverse(b.0));
    levels(buys, steps)
}

/// Sells by price, ascending, and their levels: (price, S(price)).
fn rank_sells<S: Steps + ?Sized>(sells: &mut [(i64, u32)], steps: &S) -> Vec<(i64, i64)> {
    sells.sort_unstable_by_key(|s| s.0);
    levels(sells, steps)
}

/// The clearing, with `rank` sorting both sides by price and answering their levels.
fn clear_ranked<S: Steps + ?Sized>(
    steps: &S,
    limits: Limits,
    rank: impl FnOnce(&mut [(i64, u32)], &mut [(i64, u32)]) -> (Vec<(i64, i64)>, Vec<(i64, i64)>),
) -> Clearing {
    let n = steps.step_count();
    // (price, index) pairs sort faster than the steps themselves. One pass counts the buys so
    // each side is allocated once, at its size.
    let buy_count = (0..n).filter(|&i| steps.side(i) == Side::Buy).count();
    let mut buys: Vec<(i64, u32)> = Vec::with_capacity(buy_count);
    let mut sells: Vec<(i64, u32)> = Vec::with_capacity(n - buy_count);
    for i in 0..n {
        let entry = (steps.price(i).0, i as u32);
        match steps.side(i) {
            Side::Buy => buys.push(entry),
            Side::Sell => sells.push(entry),
        }
    }
    let mut filled = vec![Lots(0); n];
    if buys.is_empty() || sells.is_empty() {
        return Clearing {
            price: None,
            volume: Lots(0),
            interval: None,
            filled,
        };
    }
    let (buy_levels, sell_levels) = rank(&mut buys, &mut sells);

    let volume = cleared_volume(&buy_levels, &sell_levels);
    if volume == 0 {
        let price = midpoint(buy_levels[0].0, sell_levels[0].0)
            .clamp(limits.min_price.0, limits.max_price.0);
        return Clearing {
            price: Some(PriceCents(price)),
            volume: Lots(0),
            interval: None,
            filled,
        };
    }
    let (lo, hi) = price_interval(&buy_levels, &sell_levels, volume, limits);
    let price = midpoint(lo, hi);
    allocate(&buys, steps, volume, |p| p > price, price, &mut filled);
    allocate(&sells, steps, volume, |p| p < price, price, &mut filled);
    Clearing {
        price: Some(PriceCents(price)),
        volume: Lots(volume),
        interval: Some((PriceCents(lo), PriceCents(hi))),
        filled,
    }
}

/// Distinct prices in the given order with the cumulative quantity up to and including each.
fn levels<S: Steps + ?Sized>(sorted: &[(i64, u32)], steps: &S) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut total = 0i64;
    for &(price, i) in sorted {
        total += steps.quantity(i as usize).0;
        match out.last_mut() {
            Some((p, c)) if *p == price => *c = total,
            _ => out.push((price, total)),
        }
    }
    out
}

/// max over the step prices of min(D(p), S(p)).
fn cleared_volume(buy_levels: &[(i64, i64)], sell_levels: &[(i64, i64)]) -> i64 {
    let d_at = |p: i64| -> i64 {
        let k = buy_levels.partition_point(|(bp, _)| *bp >= p);
        if k == 0 { 0 } else { buy_levels[k - 1].1 }
    };
    let s_at = |p: i64| -> i64 {
        let k = sell_levels.partition_point(|(sp, _)| *sp <= p);
        if k == 0 { 0 } else { sell_levels[k - 1].1 }
    };
    buy_levels
        .iter()
        .chain(sell_levels)
        .map(|(p, _)| d_at(*p).min(s_at(*p)))
        .max()
        .unwrap_or(0)
}

/// [lo, hi]: the prices at which D⁺(p) ≤ V* ≤ D(p) and S⁻(p) ≤ V* ≤ S(p), within the limits.
fn price_interval(
    buy_levels: &[(i64, i64)],
    sell_levels: &[(i64, i64)],
    volume: i64,
    limits: Limits,
) -> (i64, i64) {
    // D(p) ≥ V* for p up to the highest level whose cumulative reaches V*.
    let d_upper = buy_levels
        .iter()
        .find(|(_, c)| *c >= volume)
        .map(|(p, _)| *p);
    // D⁺(p) ≤ V* from the level after the last one whose cumulative stays ≤ V*.
    let d_lower = match buy_levels.iter().rposition(|(_, c)| *c <= volume) {
        None => Some(buy_levels[0].0),
        Some(k) => buy_levels.get(k + 1).map(|(p, _)| *p),
    };
    let s_lower = sell_levels
        .iter()
        .find(|(_, c)| *c >= volume)
        .map(|(p, _)| *p);
    let s_upper = match sell_levels.iter().rposition(|(_, c)| *c <= volume) {
        None => Some(sell_levels[0].0),
        Some(k) => sell_levels.get(k + 1).map(|(p, _)| *p),
    };
    let lo = [d_lower, s_lower]
        .into_iter()
        .flatten()
        .fold(limits.min_price.0, i64::max);
    let hi = [d_upper, s_upper]
        .into_iter()
        .flatten()
        .fold(limits.max_price.0, i64::min);
    (lo.min(hi), hi.max(lo))
}

/// Fills one side: steps in the money in full, steps at `price` pro rata in whole lots.
fn allocate<S: Steps + ?Sized>(
    sorted: &[(i64, u32)],
    steps: &S,
    volume: i64,
    in_the_money: impl Fn(i64) -> bool,
    price: i64,
    filled: &mut [Lots],
) {
    let mut full = 0i64;
    let mut marginal: Vec<u32> = Vec::new();
    for &(p, i) in sorted {
        if in_the_money(p) {
            let quantity = steps.quantity(i as usize);
            filled[i as usize] = quantity;
            full += quantity.0;
        } else if p == price {
            marginal.push(i);
        }
    }
    let at_total: i64 = marginal.iter().map(|&i| steps.quantity(i as usize).0).sum();
    let remaining = (volume - full).clamp(0, at_total);
    if remaining == 0 {
        return;
    }
    let mut shares: Vec<(u32, i64, i128)> = marginal
        .iter()
        .map(|&i| {
            let exact = i128::from(remaining) * i128::from(steps.quantity(i as usize).0);
            (
                i,
                (exact / i128::from(at_total)) as i64,
                exact % i128::from(at_total),
            )
        })
        .collect();
    let mut leftover = remaining - shares.iter().map(|(_, base, _)| *base).sum::<i64>();
    shares.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then_with(|| steps.tie_break(a.0 as usize, b.0 as usize))
    });
    for (i, base, _) in &mut shares {
        if leftover > 0 && *base < steps.quantity(*i as usize).0 {
            *base += 1;
            leftover -= 1;
        }
        filled[*i as usize] = Lots(*base);
    }
}
