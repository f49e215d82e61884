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
//! - `fast` reads the usual documents byte by byte straight into compact columns per MTU
//!   (`MtuSteps`: the numbers of a step in 40 bytes, the ids of an MTU in one string), a file a
//!   window at a time and a large one by two threads; anything unusual (an escape, an unknown
//!   key, an error) it leaves to `read`, which deserializes the document with serde into the
//!   same columns and names the field of any error (`mtus[0].steps[3].price`);
//! - [`Curves`] checks the steps (ids unique in their MTU, quantities above zero and adding up
//!   within `i64`, prices within the limits) and finds each MTU's order by id (none to find
//!   when the ids come in order; `order` sorts them when not: a large MTU out of order is
//!   cleared on a second thread while it is sorted);
//! - `write` clears each other MTU in place ([`crate::clearing::clear_steps`]; a large one
//!   with a second thread sorting its sells) when its turn comes and formats its result as it
//!   is produced, in the pretty format of `serde_json::to_string_pretty`, for a thread of its
//!   own to write; a large MTU's fills block by block, formatted by two threads.
//!
//! Memory holds the compact steps, the clearings of the large MTUs out of id order and one
//! other MTU's and, while it is read, a window of a file ([`Curves::from_path`]), the text in
//! memory ([`Curves::from_bytes`]) or a buffer of a reader ([`Curves::from_reader`]).

mod decimal;
mod fast;
mod order;
mod read;
mod write;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use energy_core::calendar::MarketRules;
use energy_core::market::{Market, Side};
use energy_core::money::{Lots, PriceCents};
use serde::Serialize;

use crate::clearing::{Clearing, Limits, Steps, clear_steps, clear_steps_on_two_threads};

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
#[derive(Debug, Default, PartialEq)]
struct MtuSteps {
    mtu: Option<String>,
    steps: Vec<Step>,
    ids: String,
    record_ids: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
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
}

impl MtuSteps {
    /// Whether every id is greater than the one before.
    ///
    /// Out of order, it answers after the block of steps where it finds the first id that is
    /// not: the sort after needs this thread.
    fn ids_increase(&self) -> bool {
        let mut start = 0;
        let mut previous = None;
        for block in self.steps.chunks(1 << 12) {
            let mut increasing = true;
            for s in block {
                let end = s.id_end as usize;
                let id = &self.ids[start..end];
                increasing &= previous.is_none_or(|p| p < id);
                previous = Some(id);
                start = end;
            }
            if !increasing {
                return false;
            }
        }
        true
    }

    /// Whether every quantity is above zero, every price within `limits`, and the quantities
    /// add up within `i64`: what the engine needs.
    fn numbers_fit(&self, limits: Limits) -> bool {
        let mut total = Some(0i64);
        for s in &self.steps {
            if s.quantity.0 <= 0 || s.price < limits.min_price || s.price > limits.max_price {
                return false;
            }
            total = total.and_then(|t| t.checked_add(s.quantity.0));
        }
        total.is_some()
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

/// A checked document: the limits, and every MTU's steps with their order by id.
#[derive(Debug)]
pub struct Curves {
    limits: Limits,
    mtus: Vec<Mtu>,
}

/// One MTU's steps, in the order given, and their indices in id order (`None`: the same); and
/// its clearing when it was cleared while its steps were sorted by id.
#[derive(Debug)]
struct Mtu {
    steps: MtuSteps,
    by_id: Option<Vec<u32>>,
    cleared: Option<Clearing>,
}

/// From how many steps an MTU is cleared with a second thread: out of id order, cleared on it
/// while this one sorts them by id (see [`check`]); else cleared on two threads, a side each.
/// And its fills are formatted by two threads.
const SECOND_THREAD_FROM: usize = 1 << 16;

impl Mtu {
    /// The MTU cleared, now or before.
    fn clearing(&self, limits: Limits) -> Cow<'_, Clearing> {
        match &self.cleared {
            Some(c) => Cow::Borrowed(c),
            None if self.steps.steps.len() >= SECOND_THREAD_FROM => {
                Cow::Owned(clear_steps_on_two_threads(&self.steps, limits))
            }
            None => Cow::Owned(clear_steps(&self.steps, limits)),
        }
    }

    /// The index of the `k`th step in id order.
    fn in_id_order(&self, k: usize) -> usize {
        self.by_id.as_ref().map_or(k, |order| order[k] as usize)
    }
}

impl Curves {
    /// Reads and checks a document from `input`, buffered here, with serde. Memory holds the
    /// steps, not the text; but serde_json reads a reader byte by byte: [`Curves::from_path`]
    /// reads a file in a fraction of the time.
    pub fn from_reader<R: io::Read>(input: R) -> Result<Self, ReadError> {
        Self::checked(read::from_reader(input)?).map_err(ReadError::Input)
    }

    /// Reads and checks a document held in memory.
    pub fn from_slice(input: &[u8]) -> Result<Self, InputError> {
        match fast::read(fast::Whole(input), 0) {
            Ok(document) => Self::checked(document),
            // Memory does not fail to read.
            Err(fast::Stop::Unusual | fast::Stop::Io(_)) => Self::checked(read::from_slice(input)?),
        }
    }

    /// Reads a document's bytes and lets them go before checking the steps, so the text and
    /// the order of the steps are never in memory together.
    pub fn from_bytes(input: Vec<u8>) -> Result<Self, InputError> {
        let document = match fast::read(fast::Whole(&input), 0) {
            Ok(document) => document,
            Err(fast::Stop::Unusual | fast::Stop::Io(_)) => read::from_slice(&input)?,
        };
        drop(input);
        Self::checked(document)
    }

    /// Reads and checks the document in the file at `path`, a window of it at a time, a large
    /// file in two parts by two threads: memory holds the steps and the windows, not the text.
    /// A document the fast reader leaves to serde (an escape in a string, a step as an array,
    /// any error) is read again, whole, as [`Curves::from_bytes`] reads it, for the same result
    /// and the same message.
    pub fn from_path(path: &Path) -> Result<Self, ReadError> {
        // The file is opened once and every reader reads it by position: a file replaced
        // under the same name while this runs cannot mix two documents.
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let open = |at: u64| {
            Ok(At {
                file: &file,
                pos: at,
            })
        };
        let document = match fast::read_parts(len, open, fast::Sizes::FILE) {
            Ok(document) => document,
            Err(fast::Stop::Io(e)) => return Err(ReadError::Io(e)),
            Err(fast::Stop::Unusual) => {
                let mut text = Vec::with_capacity(len as usize);
                At {
                    file: &file,
                    pos: 0,
                }
                .read_to_end(&mut text)?;
                let document = read::from_slice(&text)?;
                drop(text);
                document
            }
        };
        Ok(Self::checked(document)?)
    }

    /// Clears MTU after MTU and writes the results to `out` as they are produced: the same
    /// bytes as `serde_json::to_string_pretty(&self.results())` and a newline.
    pub fn write_results<W: io::Write + Send>(&self, out: W) -> io::Result<()> {
        write::results(self, out)
    }

    /// Clears every MTU, in input order.
    pub fn results(&self) -> Vec<MtuOutput> {
        self.mtus
            .iter()
            .map(|m| {
                let c = m.clearing(self.limits);
                MtuOutput {
                    mtu: m.steps.mtu.clone(),
                    clearing_price: c.price,
                    volume: c.volume,
                    price_interval: c.interval.map(|(lo, hi)| [lo, hi]),
                    fills: (0..m.steps.steps.len())
                        .map(|k| {
                            let i = m.in_id_order(k);
                            let s = &m.steps.steps[i];
                            StepFill {
                                id: m.steps.id(i).to_string(),
                                side: s.side,
                                price: s.price,
                                quantity: s.quantity,
                                filled: c.filled[i],
                            }
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
        for (i, steps) in mtus.into_iter().enumerate() {
            let (by_id, cleared) = check(i, &steps, limits)?;
            checked.push(Mtu {
                steps,
                by_id,
                cleared,
            });
        }
        Ok(Self {
            limits,
            mtus: checked,
        })
    }
}

/// Checks MTU `i` and answers its steps' order by id. The first step with a problem is named;
/// of one step's problems, a repeated id first, then the quantity, then the price.
///
/// A large MTU whose steps are out of id order is cleared on a second thread, if its numbers
/// suit the engine, while this one sorts its steps (the sort also finds repeated ids); the
/// clearing comes back with the order, thrown away if an id repeats.
fn check(i: usize, m: &MtuSteps, limits: Limits) -> Result<Checked, InputError> {
    let ((by_id, first_repeat), cleared) = if m.ids_increase() {
        ((None, None), None)
    } else if m.steps.len() >= SECOND_THREAD_FROM {
        std::thread::scope(|scope| {
            let clearing = std::thread::Builder::new()
                .spawn_scoped(scope, || {
                    m.numbers_fit(limits).then(|| clear_steps(m, limits))
                })
                .ok();
            let (order, first_repeat) = m.id_order();
            let cleared =
                clearing.and_then(|c| c.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            ((Some(order), first_repeat), cleared)
        })
    } else {
        let (order, first_repeat) = m.id_order();
        ((Some(order), first_repeat), None)
    };
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
    Ok((by_id, cleared))
}

/// An MTU's order by id, and its clearing if it has one already.
type Checked = (Option<Vec<u32>>, Option<Clearing>);

/// Reads `file` from `pos` on with positional reads, so readers of one open file at different
/// places do not share (and race on) its offset.
struct At<'a> {
    file: &'a File,
    pos: u64,
}

impl io::Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
