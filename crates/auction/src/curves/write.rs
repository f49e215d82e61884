//! The results, written as they are produced: one MTU cleared, its result formatted into a
//! buffer and the buffer handed to a writing thread whenever it holds [`FLUSH_AT`] bytes, the
//! next MTU. The bytes are those of `serde_json::to_string_pretty(&Vec<MtuOutput>)` and a
//! newline: the fixed parts of the pretty format as they are, strings escaped by serde_json
//! where they need it, and prices and quantities formatted here as their `Display` formats them.
//!
//! The writing thread keeps a write that waits (a pipe whose reader is behind) from holding up
//! the formatting: with the two in one thread, a 138 MB result took as long again through a
//! pipe as into `/dev/null`.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, channel, sync_channel};

use energy_core::market::Side;
use energy_core::money::{Lots, PriceCents};

use super::{Curves, Mtu, Step};

/// Bytes gathered before a write.
const FLUSH_AT: usize = 256 << 10;

/// Buffers formatted and not yet written, at most.
const IN_FLIGHT: usize = 4;

pub(super) fn results<W: Write + Send>(curves: &Curves, mut out: W) -> io::Result<()> {
    let (full, to_write) = sync_channel::<(Vec<u8>, usize)>(IN_FLIGHT);
    let (written, empty) = channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let writer = std::thread::Builder::new().spawn_scoped(scope, move || {
            for (bytes, len) in to_write {
                out.write_all(&bytes[..len])?;
                // The formatter may have finished: then the buffer is not needed.
                let _ = written.send(bytes);
            }
            out.flush()
        })?;
        let formatted = format(curves, &mut Pipe { full, empty });
        // The formatter's end dropped: the writer writes what is left and ends.
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The writer's error first: the formatter's then only says that the writer stopped.
        written.and(formatted)
    })
}

/// The formatter's end of the writing thread: full buffers go, written ones come back.
struct Pipe {
    full: SyncSender<(Vec<u8>, usize)>,
    empty: Receiver<Vec<u8>>,
}

fn format(curves: &Curves, out: &mut Pipe) -> io::Result<()> {
    let mut buf = Buffer::new();
    buf.put(b"[");
    for (n, m) in curves.mtus.iter().enumerate() {
        buf.put(if n == 0 { b"\n  {" } else { b",\n  {" });
        if let Some(mtu) = &m.steps.mtu {
            buf.put(b"\n    \"mtu\": ");
            buf.string(mtu.as_bytes())?;
            buf.put(b",");
        }
        let c = m.clearing(curves.limits);
        buf.put(b"\n    \"clearing_price\": ");
        match c.price {
            Some(price) => buf.decimal::<{ PriceCents::PLACES }>(price.0),
            None => buf.put(b"null"),
        }
        buf.put(b",\n    \"volume\": ");
        buf.decimal::<{ Lots::PLACES }>(c.volume.0);
        buf.put(b",\n    \"price_interval\": ");
        match c.interval {
            Some((lo, hi)) => {
                buf.put(b"[\n      ");
                buf.decimal::<{ PriceCents::PLACES }>(lo.0);
                buf.put(b",\n      ");
                buf.decimal::<{ PriceCents::PLACES }>(hi.0);
                buf.put(b"\n    ]");
            }
            None => buf.put(b"null"),
        }
        buf.put(b",\n    \"fills\": [");
        fills(m, &c.filled, &mut buf, out)?;
        buf.put(if m.steps.steps.is_empty() {
            b"]\n  }"
        } else {
            b"\n    ]\n  }"
        });
    }
    buf.put(if curves.mtus.is_empty() {
        b"]\n"
    } else {
        b"\n]\n"
    });
    buf.flush(out)
}

/// The fills of one MTU in id order, each `{id, side, price, quantity, filled}` on lines of
/// its own; the buffer goes out to `out` whenever it is full enough.
fn fills(m: &Mtu, filled: &[Lots], buf: &mut Buffer, out: &mut Pipe) -> io::Result<()> {
    let steps = &m.steps.steps;
    let Some(order) = &m.by_id else {
        let mut start = 0;
        for (k, (step, &filled)) in steps.iter().zip(filled).enumerate() {
            let end = step.id_end as usize;
            let id = &m.steps.ids.as_bytes()[start..end];
            start = end;
            buf.fill(k == 0, id, step, filled)?;
            if buf.at >= FLUSH_AT {
                buf.flush(out)?;
            }
        }
        return Ok(());
    };
    // Steps out of their place: each block's steps and fills first, then their ids, gathered
    // from all over memory in short loops whose reads overlap, then written from the block.
    let ids = m.steps.ids.as_bytes();
    let mut rows: Vec<(Step, Lots, u32)> = Vec::with_capacity(GATHER);
    let mut block_ids: Vec<u8> = Vec::with_capacity(GATHER * 16);
    for (b, block) in order.chunks(GATHER).enumerate() {
        rows.clear();
        rows.extend(block.iter().map(|&i| {
            let i = i as usize;
            let start = i.checked_sub(1).map_or(0, |p| steps[p].id_end);
            (steps[i], filled[i], start)
        }));
        block_ids.clear();
        for (step, _, start) in &mut rows {
            block_ids.extend_from_slice(&ids[*start as usize..step.id_end as usize]);
            // Where the id ends in the block's ids, which hold less than the MTU's.
            *start = block_ids.len() as u32;
        }
        let mut start = 0;
        for (k, (step, filled, end)) in rows.iter().enumerate() {
            let id = &block_ids[start..*end as usize];
            start = *end as usize;
            buf.fill(b == 0 && k == 0, id, step, *filled)?;
        }
        if buf.at >= FLUSH_AT {
            buf.flush(out)?;
        }
    }
    Ok(())
}

/// Steps gathered at a time when they are out of id order.
const GATHER: usize = 512;

/// Bytes to be written: `bytes[..at]`, the rest room to write into without growing.
struct Buffer {
    bytes: Vec<u8>,
    at: usize,
}

/// Two digits for each number below 100.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

impl Buffer {
    fn new() -> Self {
        Self {
            bytes: vec![0; FLUSH_AT + (4 << 10)],
            at: 0,
        }
    }

    /// Hands the bytes to the writing thread, and goes on in a buffer it has written (or a
    /// new one).
    fn flush(&mut self, out: &mut Pipe) -> io::Result<()> {
        let next = match out.empty.try_recv() {
            Ok(bytes) => bytes,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Self::new().bytes,
        };
        let bytes = std::mem::replace(&mut self.bytes, next);
        let len = std::mem::take(&mut self.at);
        out.full
            .send((bytes, len))
            .map_err(|_| io::Error::other("the writing thread stopped"))
    }

    /// Makes room for `n` more bytes.
    #[inline]
    fn room(&mut self, n: usize) -> &mut [u8] {
        if self.at + n > self.bytes.len() {
            self.bytes.resize(self.at + n, 0);
        }
        &mut self.bytes[self.at..self.at + n]
    }

    #[inline]
    fn put(&mut self, piece: &[u8]) {
        self.room(piece.len()).copy_from_slice(piece);
        self.at += piece.len();
    }

    /// One fill, after a comma unless it is the first.
    #[inline]
    fn fill(&mut self, first: bool, id: &[u8], step: &Step, filled: Lots) -> io::Result<()> {
        self.put(if first {
            b"\n      {\n        \"id\": "
        } else {
            b",\n      {\n        \"id\": "
        });
        self.string(id)?;
        self.put(match step.side {
            Side::Buy => b",\n        \"side\": \"BUY\",\n        \"price\": ",
            Side::Sell => b",\n        \"side\": \"SELL\",\n        \"price\": ",
        });
        self.decimal::<{ PriceCents::PLACES }>(step.price.0);
        self.put(b",\n        \"quantity\": ");
        self.decimal::<{ Lots::PLACES }>(step.quantity.0);
        self.put(b",\n        \"filled\": ");
        self.decimal::<{ Lots::PLACES }>(filled.0);
        self.put(b"\n      }");
        Ok(())
    }

    /// A JSON string as serde_json writes it: as it is, quoted, when nothing in it needs
    /// escaping; by serde_json when something does.
    #[inline]
    fn string(&mut self, text: &[u8]) -> io::Result<()> {
        if text.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
            let room = self.room(text.len() + 2);
            room[0] = b'"';
            room[1..=text.len()].copy_from_slice(text);
            room[text.len() + 1] = b'"';
            self.at += text.len() + 2;
            Ok(())
        } else {
            let text = std::str::from_utf8(text).map_err(io::Error::other)?;
            let escaped = serde_json::to_vec(text).map_err(io::Error::from)?;
            self.put(&escaped);
            Ok(())
        }
    }

    /// `units` of `10^-PLACES`, quoted, as their `Display` writes them (`"-45.50"`).
    #[inline]
    fn decimal<const PLACES: u32>(&mut self, units: i64) {
        let scale = 10u64.pow(PLACES);
        let abs = units.unsigned_abs();
        let (mut whole, mut frac) = (abs / scale, abs % scale);
        let digits = whole.checked_ilog10().map_or(1, |l| l as usize + 1);
        let negative = usize::from(units < 0);
        let point = usize::from(PLACES > 0);
        let len = 1 + negative + digits + point + PLACES as usize + 1;
        let text = self.room(len);
        text[0] = b'"';
        if negative == 1 {
            text[1] = b'-';
        }
        let mut at = len - 1;
        text[at] = b'"';
        for _ in 0..PLACES {
            at -= 1;
            text[at] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        if PLACES > 0 {
            at -= 1;
            text[at] = b'.';
        }
        while whole >= 100 {
            let pair = (whole % 100) as usize * 2;
            whole /= 100;
            at -= 2;
            text[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if whole >= 10 {
            let pair = whole as usize * 2;
            text[at - 2..at].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            text[at - 1] = b'0' + whole as u8;
        }
        self.at += len;
    }
}

#[cfg(test)]
mod tests {
    use energy_core::money::format_scaled;
    use proptest::prelude::*;

    use super::Buffer;

    fn written(units: i64, places: u32) -> String {
        let mut buf = Buffer::new();
        match places {
            0 => buf.decimal::<0>(units),
            1 => buf.decimal::<1>(units),
            2 => buf.decimal::<2>(units),
            _ => buf.decimal::<3>(units),
        }
        String::from_utf8(buf.bytes[..buf.at].to_vec()).expect("ASCII")
    }

    proptest! {
        #[test]
        fn decimals_write_what_display_writes(units in any::<i64>(), places in 0u32..=3) {
            prop_assert_eq!(written(units, places), format!("\"{}\"", format_scaled(units, places)));
        }

        #[test]
        fn strings_write_what_serde_json_writes(text in any::<String>()) {
            let mut buf = Buffer::new();
            buf.string(text.as_bytes()).expect("UTF-8");
            let expected = serde_json::to_vec(&text).expect("JSON");
            prop_assert_eq!(&buf.bytes[..buf.at], expected.as_slice());
        }
    }

    #[test]
    fn decimals_write_the_extremes_as_display_does() {
        for units in [i64::MIN, i64::MAX, 0, -1, 1, -10, 99, 100, -100, 12_345] {
            for places in 0..=3 {
                assert_eq!(
                    written(units, places),
                    format!("\"{}\"", format_scaled(units, places))
                );
            }
        }
    }
}
