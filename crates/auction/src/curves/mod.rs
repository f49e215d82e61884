//! The JSON formats of `energy auction clear`: step curves in, clearing results out.
//!
//! Input: one MTU (`{"steps": [...]}`), several (`{"mtus": [{"mtu": "...", "steps": [...]}]}` or a
//! bare array of those), each step `{"id", "side", "price", "quantity"}` with optional `receipt`
//! and `record_id` for the tie-break; optional `"market"` (limits of that market, SDAC by
//! default) or explicit `"limits": {"min_price", "max_price"}`.
//!
//! Output: an array with one entry per MTU, in input order: `mtu`, `clearing_price` (or null),
//! `volume`, `price_interval`, and `fills`, every step with what it got, sorted by step id so
//! the same steps in any order print the same bytes.
//!
//! A document of a million steps goes through in three stages, without a `serde_json::Value`
//! or the output as one string:
//! - `read` deserializes the document straight into compact columns per MTU (`MtuSteps`: the
//!   numbers of a step in 40 bytes, the ids of an MTU in one string), and names the field of
//!   any error (`mtus[0].steps[3].price`);
//! - [`Curves`] checks the steps (ids unique in their MTU, quantities above zero and adding up
//!   within `i64`, prices within the limits) and puts each MTU's steps in id order;
//! - `write` clears one MTU at a time in place ([`crate::clearing::clear_steps`]) and writes
//!   its result as it is produced, in the pretty format of `serde_json::to_string_pretty`.
//!
//! Memory holds the compact steps, one MTU's clearing and, while it is read, the document's
//! text ([`Curves::from_bytes`]) or a buffer of it ([`Curves::from_reader`]).

mod decimal;
mod read;
mod write;

use std::cmp::Ordering;
use std::io;

use energy_core::calendar::MarketRules;
use energy_core::market::{Market, Side};
use energy_core::money::{Lots, PriceCents};
use serde::Serialize;

use crate::clearing::{Limits, Steps, clear_steps};

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepFill {
    pub id: String,
    pub side: Side,
    pub price: PriceCents,
    pub quantity: Lots,
    pub filled: Lots,
}

/// One MTU's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MtuOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<String>,
    pub clearing_price: Option<PriceCents>,
    pub volume: Lots,
    pub price_interval: Option<[PriceCents; 2]>,
    pub fills: Vec<StepFill>,
}

/// A problem with the input, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Why a document could not be read from a reader.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The reader failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// What was read is not a valid document.
    #[error("{0}")]
    Input(#[from] InputError),
}

/// Reads curves, clears every MTU, answers the output documents.
pub fn clear_document(text: &str) -> Result<Vec<MtuOutput>, InputError> {
    Ok(Curves::from_slice(text.as_bytes())?.results())
}

/// One MTU's steps, compactly: a step is 40 bytes of numbers, and the MTU's ids and record ids
/// are each one string, each step keeping where its own two end.
#[derive(Debug, Default)]
struct MtuSteps {
    mtu: Option<String>,
    steps: Vec<Step>,
    ids: String,
    record_ids: String,
}

#[derive(Debug, Clone, Copy)]
struct Step {
    price: PriceCents,
    quantity: Lots,
    receipt: u64,
    id_end: u32,
    record_id_end: u32,
    side: Side,
}

impl MtuSteps {
    fn id(&self, i: usize) -> &str {
        let start = i
            .checked_sub(1)
            .map_or(0, |p| self.steps[p].id_end as usize);
        &self.ids[start..self.steps[i].id_end as usize]
    }

    fn record_id(&self, i: usize) -> &str {
        let start = i
            .checked_sub(1)
            .map_or(0, |p| self.steps[p].record_id_end as usize);
        &self.record_ids[start..self.steps[i].record_id_end as usize]
    }

    /// The steps' indices sorted by id, and by index among equal ids.
    ///
    /// The sort compares 8-byte keys, the ids' bytes after the prefix they all share (zeros
    /// past an id's end, so a key never orders two ids against their own order), and goes to
    /// the ids themselves only when two keys are equal: comparing the ids throughout took
    /// longer than clearing when the ids came in no particular order.
    fn id_order(&self) -> Vec<u32> {
        let first = self.steps.first().map_or("", |_| self.id(0)).as_bytes();
        let shared = (1..self.steps.len()).fold(first.len(), |shared, i| {
            let id = self.id(i).as_bytes();
            first[..shared]
                .iter()
                .zip(id)
                .take_while(|(a, b)| a == b)
                .count()
        });
        let key = |i: usize| {
            let mut key = [0u8; 8];
            let rest = self.id(i).as_bytes().get(shared..).unwrap_or_default();
            let n = rest.len().min(8);
            key[..n].copy_from_slice(&rest[..n]);
            u64::from_be_bytes(key)
        };
        // An MTU has fewer than 2³² steps: the reader refuses more.
        let mut keyed: Vec<(u64, u32)> =
            (0..self.steps.len()).map(|i| (key(i), i as u32)).collect();
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| self.id(a.1 as usize).cmp(self.id(b.1 as usize)))
                .then(a.1.cmp(&b.1))
        });
        keyed.into_iter().map(|(_, i)| i).collect()
    }

    /// The same steps in `order`. The clearing does not depend on the order of the steps
    /// (ties go by their identity, not their place), and in id order the fills are written
    /// from one pass over memory instead of a jump per step.
    fn reordered(mut self, order: &[u32]) -> Self {
        if order.iter().enumerate().all(|(k, &i)| k == i as usize) {
            return self;
        }
        let mut out = MtuSteps {
            mtu: self.mtu.take(),
            steps: Vec::with_capacity(self.steps.len()),
            ids: String::with_capacity(self.ids.len()),
            record_ids: String::with_capacity(self.record_ids.len()),
        };
        for &i in order {
            let i = i as usize;
            out.ids.push_str(self.id(i));
            out.record_ids.push_str(self.record_id(i));
            // No longer than the strings they came from, whose lengths fit.
            out.steps.push(Step {
                id_end: out.ids.len() as u32,
                record_id_end: out.record_ids.len() as u32,
                ..self.steps[i]
            });
        }
        out
    }
}

impl Steps for MtuSteps {
    fn step_count(&self) -> usize {
        self.steps.len()
    }
    fn side(&self, i: usize) -> Side {
        self.steps[i].side
    }
    fn price(&self, i: usize) -> PriceCents {
        self.steps[i].price
    }
    fn quantity(&self, i: usize) -> Lots {
        self.steps[i].quantity
    }
    fn tie_break(&self, a: usize, b: usize) -> Ordering {
        self.steps[a]
            .receipt
            .cmp(&self.steps[b].receipt)
            .then_with(|| self.record_id(a).cmp(self.record_id(b)))
            .then_with(|| self.id(a).cmp(self.id(b)))
    }
}

/// A checked document: the limits, and every MTU's steps in id order.
#[derive(Debug)]
pub struct Curves {
    limits: Limits,
    mtus: Vec<MtuSteps>,
}

impl Curves {
    /// Reads and checks a document from `input`, buffered here. Memory holds the steps, not
    /// the text; but serde_json reads a reader byte by byte, and a file's bytes read into
    /// memory first ([`Curves::from_bytes`]) go through in about two thirds of the time.
    pub fn from_reader<R: io::Read>(input: R) -> Result<Self, ReadError> {
        Self::checked(read::from_reader(input)?).map_err(ReadError::Input)
    }

    /// Reads and checks a document held in memory.
    pub fn from_slice(input: &[u8]) -> Result<Self, InputError> {
        Self::checked(read::from_slice(input)?)
    }

    /// Reads a document's bytes and lets them go before checking the steps and putting them
    /// in order, so the text and the second copy of the steps are never in memory together.
    pub fn from_bytes(input: Vec<u8>) -> Result<Self, InputError> {
        let document = read::from_slice(&input)?;
        drop(input);
        Self::checked(document)
    }

    /// Clears MTU after MTU and writes the results to `out` as they are produced: the same
    /// bytes as `serde_json::to_string_pretty(&self.results())` and a newline.
    pub fn write_results<W: io::Write>(&self, out: W) -> io::Result<()> {
        write::results(self, out)
    }

    /// Clears every MTU, in input order.
    pub fn results(&self) -> Vec<MtuOutput> {
        self.mtus
            .iter()
            .map(|m| {
                let c = clear_steps(m, self.limits);
                MtuOutput {
                    mtu: m.mtu.clone(),
                    clearing_price: c.price,
                    volume: c.volume,
                    price_interval: c.interval.map(|(lo, hi)| [lo, hi]),
                    fills: m
                        .steps
                        .iter()
                        .zip(&c.filled)
                        .enumerate()
                        .map(|(i, (s, &filled))| StepFill {
                            id: m.id(i).to_string(),
                            side: s.side,
                            price: s.price,
                            quantity: s.quantity,
                            filled,
                        })
                        .collect(),
                }
            })
            .collect()
    }

    fn checked(document: read::Document) -> Result<Self, InputError> {
        let limits = match (document.limits, document.market) {
            (Some(l), _) => l,
            (None, market) => {
                let rules = MarketRules::default();
                let spec = rules.spec(market.unwrap_or(Market::Sdac));
                Limits {
                    min_price: spec.min_price,
                    max_price: spec.max_price,
                }
            }
        };
        let mtus = match (document.mtus, document.steps) {
            (Some(m), None) => m,
            (None, Some(mut steps)) => {
                steps.mtu = document.mtu;
                vec![steps]
            }
            _ => {
                return Err(InputError(
                    "give either \"steps\" (one MTU) or \"mtus\" (several)".into(),
                ));
            }
        };
        let mut checked = Vec::with_capacity(mtus.len());
        for (i, m) in mtus.into_iter().enumerate() {
            let by_id = check(i, &m, limits)?;
            checked.push(m.reordered(&by_id));
        }
        Ok(Self {
            limits,
            mtus: checked,
        })
    }
}

/// Checks MTU `i` and answers its steps' order by id. The first step with a problem is named;
/// of one step's problems, a repeated id first, then the quantity, then the price.
fn check(i: usize, m: &MtuSteps, limits: Limits) -> Result<Vec<u32>, InputError> {
    let by_id = m.id_order();
    // Among equal ids, sorted by index, every one after the first repeats an earlier one.
    let first_repeat = by_id
        .windows(2)
        .filter(|w| m.id(w[0] as usize) == m.id(w[1] as usize))
        .map(|w| w[1] as usize)
        .min();
    let mut total = Some(0i64);
    let mut overflow_at = None;
    for (k, s) in m.steps.iter().enumerate() {
        let at = || format!("mtus[{i}].steps[{k}]");
        if first_repeat == Some(k) {
            return Err(InputError(format!(
                "{}.id: {:?} appears twice in the MTU",
                at(),
                m.id(k)
            )));
        }
        if s.quantity.0 <= 0 {
            return Err(InputError(format!(
                "{}.quantity: {} must be above zero",
                at(),
                s.quantity
            )));
        }
        if s.price < limits.min_price || s.price > limits.max_price {
            return Err(InputError(format!(
                "{}.price: {} is outside the limits [{}, {}]",
                at(),
                s.price,
                limits.min_price,
                limits.max_price
            )));
        }
        total = total.and_then(|t| t.checked_add(s.quantity.0));
        if total.is_none() && overflow_at.is_none() {
            overflow_at = Some(k);
        }
    }
    // The engine adds quantities up in `i64`.
    if let Some(k) = overflow_at {
        return Err(InputError(format!(
            "mtus[{i}].steps[{k}].quantity: the MTU's quantities add up beyond {}",
            Lots(i64::MAX)
        )));
    }
    Ok(by_id)
}
