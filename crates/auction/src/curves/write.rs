//! The results, written as they are produced: one MTU cleared, its result serialized to the
//! writer, the next MTU. The bytes are those of `serde_json::to_string_pretty(&Vec<MtuOutput>)`
//! and a newline; the structs here borrow what [`super::MtuOutput`] would own.

use std::io::{self, Write};

use energy_core::market::Side;
use energy_core::money::{Lots, PriceCents};
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use super::{Curves, MtuSteps};
use crate::clearing::clear_steps;

pub(super) fn results<W: Write>(curves: &Curves, out: W) -> io::Result<()> {
    let mut json = serde_json::Serializer::pretty(out);
    let mut seq = (&mut json).serialize_seq(Some(curves.mtus.len()))?;
    for m in &curves.mtus {
        let c = clear_steps(m, curves.limits);
        seq.serialize_element(&MtuResult {
            mtu: m.mtu.as_deref(),
            clearing_price: c.price,
            volume: c.volume,
            price_interval: c.interval.map(|(lo, hi)| [lo, hi]),
            fills: Fills {
                steps: m,
                filled: &c.filled,
            },
        })?;
    }
    seq.end()?;
    let mut out = json.into_inner();
    out.write_all(b"\n")?;
    out.flush()
}

#[derive(Serialize)]
struct MtuResult<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    mtu: Option<&'a str>,
    clearing_price: Option<PriceCents>,
    volume: Lots,
    price_interval: Option<[PriceCents; 2]>,
    fills: Fills<'a>,
}

/// The fills of one MTU, whose steps are in id order.
struct Fills<'a> {
    steps: &'a MtuSteps,
    filled: &'a [Lots],
}

impl Serialize for Fills<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let steps = self.steps.steps.iter().zip(self.filled);
        serializer.collect_seq(steps.enumerate().map(|(i, (s, &filled))| StepFill {
            id: self.steps.id(i),
            side: s.side,
            price: s.price,
            quantity: s.quantity,
            filled,
        }))
    }
}

#[derive(Serialize)]
struct StepFill<'a> {
    id: &'a str,
    side: Side,
    price: PriceCents,
    quantity: Lots,
    filled: Lots,
}
