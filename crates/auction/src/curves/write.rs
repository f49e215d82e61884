//! The results, written as they are produced: one MTU cleared, its result serialized to the
//! writer, the next MTU. The bytes are those of `serde_json::to_string_pretty(&Vec<MtuOutput>)`
//! and a newline; the structs here borrow what [`super::MtuOutput`] would own.

use std::io::{self, Write};

use energy_core::market::Side;
use energy_core::money::{Lots, PriceCents};
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use serde_json::ser::Formatter;

use super::{Curves, MtuSteps};
use crate::clearing::clear_steps;

pub(super) fn results<W: Write>(curves: &Curves, out: W) -> io::Result<()> {
    let mut json = serde_json::Serializer::with_formatter(out, Pretty::default());
    let mut seq = (&mut json).serialize_seq(Some(curves.mtus.len()))?;
    for m in &curves.mtus {
        let c = clear_steps(m, curves.limits);
        seq.serialize_element(&MtuResult {
            mtu: m.mtu.as_deref(),
            clearing_price: c.price.map(Fixed::price),
            volume: Fixed::lots(c.volume),
            price_interval: c
                .interval
                .map(|(lo, hi)| [Fixed::price(lo), Fixed::price(hi)]),
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

/// `serde_json::ser::PrettyFormatter` with its two-space indent, writing a line break and its
/// indent in one piece: the pretty formatter writes each level of indent on its own, 33 writes
/// of line breaks and indent for each fill where these are 7.
#[derive(Default)]
struct Pretty {
    depth: usize,
    has_value: bool,
}

/// A comma, a line break and the indent of the deepest line written from this buffer.
const BREAKS: &[u8] = b",\n                                ";

impl Pretty {
    fn line_break<W: ?Sized + Write>(&self, out: &mut W, comma: bool) -> io::Result<()> {
        let start = usize::from(!comma);
        let end = 2 + 2 * self.depth;
        match BREAKS.get(start..end) {
            Some(piece) => out.write_all(piece),
            None => {
                out.write_all(&BREAKS[start..2])?;
                (0..self.depth).try_for_each(|_| out.write_all(b"  "))
            }
        }
    }
}

impl Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        out.write_all(b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.has_value {
            self.line_break(out, false)?;
        }
        out.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.line_break(out, !first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        out.write_all(b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.has_value {
            self.line_break(out, false)?;
        }
        out.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.line_break(out, !first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        out.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[derive(Serialize)]
struct MtuResult<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    mtu: Option<&'a str>,
    clearing_price: Option<Fixed>,
    volume: Fixed,
    price_interval: Option<[Fixed; 2]>,
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
            price: Fixed::price(s.price),
            quantity: Fixed::lots(s.quantity),
            filled: Fixed::lots(filled),
        }))
    }
}

#[derive(Serialize)]
struct StepFill<'a> {
    id: &'a str,
    side: Side,
    price: Fixed,
    quantity: Fixed,
    filled: Fixed,
}

/// A price or a quantity, serialized as the string its `Display` writes (`"45.50"`), from a
/// buffer on the stack: `Display` formats through a new `String` each time, three per fill,
/// and writing 1M fills took twice as long through it.
#[derive(Clone, Copy)]
struct Fixed {
    units: i64,
    places: u32,
}

impl Fixed {
    fn price(p: PriceCents) -> Self {
        Self {
            units: p.0,
            places: PriceCents::PLACES,
        }
    }

    fn lots(l: Lots) -> Self {
        Self {
            units: l.0,
            places: Lots::PLACES,
        }
    }

    /// Writes `-whole.frac` right-aligned into `buf`: 19 digits, a sign and a point at most.
    fn write(self, buf: &mut [u8; 24]) -> &str {
        let scale = 10u64.pow(self.places);
        let abs = self.units.unsigned_abs();
        let (mut whole, mut frac) = (abs / scale, abs % scale);
        let mut at = buf.len();
        let mut put = |b: u8| {
            at -= 1;
            buf[at] = b;
        };
        for _ in 0..self.places {
            put(b'0' + (frac % 10) as u8);
            frac /= 10;
        }
        if self.places > 0 {
            put(b'.');
        }
        loop {
            put(b'0' + (whole % 10) as u8);
            whole /= 10;
            if whole == 0 {
                break;
            }
        }
        if self.units < 0 {
            put(b'-');
        }
        std::str::from_utf8(&buf[at..]).unwrap_or_default()
    }
}

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.write(&mut [0; 24]))
    }
}

#[cfg(test)]
mod tests {
    use energy_core::money::format_scaled;
    use proptest::prelude::*;

    use super::Fixed;

    proptest! {
        #[test]
        fn fixed_writes_what_display_writes(units in any::<i64>(), places in 0u32..=3) {
            let mut buf = [0; 24];
            prop_assert_eq!(Fixed { units, places }.write(&mut buf), format_scaled(units, places));
        }
    }

    #[test]
    fn fixed_writes_the_extremes_as_display_does() {
        for units in [i64::MIN, i64::MAX, 0, -1, 1, -10, 99] {
            for places in 0..=3 {
                assert_eq!(
                    Fixed { units, places }.write(&mut [0; 24]),
                    format_scaled(units, places)
                );
            }
        }
    }
}
