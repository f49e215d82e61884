//! The results, written as they are produced: one MTU cleared, its result formatted into a
//! buffer and the buffer handed to a writing thread whenever it holds [`FLUSH_AT`] bytes, the
//! next MTU. The bytes are those of `serde_json::to_string_pretty(&Vec<MtuOutput>)` and a
//! newline: the fixed parts of the pretty format as they are, strings escaped by serde_json
//! where they need it, and prices and quantities formatted here as their `Display` formats them.
//!
//! The writing thread keeps a write that waits (a pipe whose reader is behind) from holding up
//! the formatting: with the two in one thread, a 138 MB result took as long again through a
//! pipe as into `/dev/null`.
//!
//! The fills of a large MTU go in blocks of [`BLOCK`] fills, formatted by this thread and, when
//! it has nothing to write, by a thread that writes them in order (see [`blocks`]). Formatting
//! is most of what is left to do once the MTU is cleared, and out of id order most of it is
//! waiting on memory for each step's fields: into `/dev/null`, two threads wait side by side.
//! Through a pipe, the reader at its other end needs a processor too, and a second formatter
//! that does not give way to the writes made a million steps in id order slower than one.

use std::io::{self, Write};
use std::ops::Range;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Mutex, MutexGuard, PoisonError};

use energy_core::market::Side;
use energy_core::money::{Lots, PriceCents};

use super::{Curves, Mtu, SECOND_THREAD_FROM, Step};

/// Bytes gathered before a write.
const FLUSH_AT: usize = 256 << 10;

/// Buffers formatted and not yet written, at most.
const IN_FLIGHT: usize = 4;

/// Fills in a block of a large MTU: about 150 KB of text with short ids.
const BLOCK: usize = 1024;

/// What the writing thread is given: bytes to write, or someone to tell once it has written
/// everything before (the blocks of a large MTU are written by a thread of their own, which
/// borrows the MTU's clearing).
enum Piece {
    Bytes(Vec<u8>, usize),
    Synced(SyncSender<()>),
}

/// Buffers written, to be formatted into again: their pages are not faulted in anew.
#[derive(Default)]
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().map(|mut free| free.pop()).unwrap_or(None);
        reused.unwrap_or_else(|| vec![0; FLUSH_AT + (4 << 10)])
    }

    fn give(&self, bytes: Vec<u8>) {
        if let Ok(mut free) = self.0.lock() {
            free.push(bytes);
        }
    }
}

pub(super) fn results<W: Write + Send>(curves: &Curves, out: W) -> io::Result<()> {
    let (full, to_write) = sync_channel::<Piece>(IN_FLIGHT);
    let pool = Pool::default();
    let out = Mutex::new(out);
    let (pool, out) = (&pool, &out);
    std::thread::scope(|scope| {
        let writer = std::thread::Builder::new().spawn_scoped(scope, move || {
            for piece in to_write {
                match piece {
                    Piece::Bytes(bytes, len) => {
                        lock(out).write_all(&bytes[..len])?;
                        pool.give(bytes);
                    }
                    // The formatter may have stopped waiting.
                    Piece::Synced(tell) => {
                        let _ = tell.send(());
                    }
                }
            }
            lock(out).flush()
        })?;
        let formatted = format(curves, &Pipe { full, pool, out });
        // The formatter's end dropped: the writer writes what is left and ends.
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The writer's error first: the formatter's then only says that the writer stopped.
        written.and(formatted)
    })
}

fn lock<W>(out: &Mutex<W>) -> MutexGuard<'_, W> {
    out.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The formatter's end of the writing thread: full buffers go, written ones come back through
/// the pool; and the output itself, for the blocks of a large MTU.
struct Pipe<'p, W> {
    full: SyncSender<Piece>,
    pool: &'p Pool,
    out: &'p Mutex<W>,
}

fn writer_stopped() -> io::Error {
    io::Error::other("the writing thread stopped")
}

impl<W> Pipe<'_, W> {
    fn send(&self, piece: Piece) -> io::Result<()> {
        self.full.send(piece).map_err(|_| writer_stopped())
    }
}

fn format<W: Write + Send>(curves: &Curves, out: &Pipe<W>) -> io::Result<()> {
    let mut buf = Buffer::new(out.pool);
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
/// its own; a large MTU's in blocks, see [`blocks`].
fn fills<W: Write + Send>(
    m: &Mtu,
    filled: &[Lots],
    buf: &mut Buffer,
    out: &Pipe<W>,
) -> io::Result<()> {
    let n = m.steps.steps.len();
    if n < SECOND_THREAD_FROM {
        return block(m, filled, 0..n, buf, &mut |buf| buf.flush(out));
    }
    // What the writing thread has, this MTU's start among it, is written before the blocks.
    buf.flush(out)?;
    let (tell, synced) = sync_channel(1);
    out.send(Piece::Synced(tell))?;
    blocks(m, filled, out, synced)
}

/// The fills of a large MTU, block by block: this thread formats the next block not taken
/// yet and hands it to a thread that writes the blocks in order, and that formats the next
/// block itself whenever it has none to write (`/dev/null` takes them at once: two threads
/// format; a pipe's reader takes its time: this thread formats most of them). The writing
/// thread of [`results`] waits meanwhile, its work written (`synced`).
fn blocks<W: Write + Send>(
    m: &Mtu,
    filled: &[Lots],
    out: &Pipe<W>,
    synced: Receiver<()>,
) -> io::Result<()> {
    let n = m.steps.steps.len();
    let count = n.div_ceil(BLOCK);
    let next = AtomicUsize::new(0);
    // The next block nobody has taken, formatted into a buffer of its own.
    let take_and_format = || {
        let b = next.fetch_add(1, Relaxed);
        if b >= count {
            return Ok(None);
        }
        let mut buf = Buffer::new(out.pool);
        let range = b * BLOCK..((b + 1) * BLOCK).min(n);
        // A block is written whole: it grows its buffer past `FLUSH_AT` if it must.
        block(m, filled, range, &mut buf, &mut |_| Ok(()))?;
        io::Result::Ok(Some((b, buf)))
    };
    let take_and_format = &take_and_format;
    std::thread::scope(|scope| {
        let (formatted, to_write) = sync_channel::<(usize, Buffer)>(IN_FLIGHT);
        let writer = std::thread::Builder::new().spawn_scoped(scope, move || {
            synced.recv().map_err(|_| writer_stopped())?;
            // Blocks formatted and not yet written, by number.
            let mut held: Vec<(usize, Buffer)> = Vec::new();
            for b in 0..count {
                let buf = loop {
                    if let Some(k) = held.iter().position(|(k, _)| *k == b) {
                        break held.swap_remove(k).1;
                    }
                    let got = match to_write.try_recv() {
                        Ok(got) => Some(got),
                        // Nothing to write: a block formatted here, if there is one to take and
                        // few are held; else wait for one.
                        Err(TryRecvError::Empty) if held.len() < 2 => match take_and_format()? {
                            Some(got) => Some(got),
                            None => to_write.recv().ok(),
                        },
                        Err(TryRecvError::Empty) => to_write.recv().ok(),
                        // The other thread is done: this block is the next nobody has taken,
                        // unless the other took it and stopped.
                        Err(TryRecvError::Disconnected) => {
                            take_and_format()?.filter(|(k, _)| *k == b)
                        }
                    };
                    // This block was taken by the other thread, which stopped.
                    let got = got.ok_or_else(|| io::Error::other(Stopped))?;
                    held.push(got);
                };
                lock(out.out).write_all(&buf.bytes[..buf.at])?;
                out.pool.give(buf.bytes);
            }
            io::Result::Ok(())
        });
        let Ok(writer) = writer else {
            // No second thread: all of them here, through the writing thread.
            let mut buf = Buffer::new(out.pool);
            block(m, filled, 0..n, &mut buf, &mut |buf| buf.flush(out))?;
            return buf.flush(out);
        };
        let mut here = Ok(());
        loop {
            match take_and_format() {
                Ok(Some(got)) => {
                    if formatted.send(got).is_err() {
                        // The writer stopped: its error says why.
                        here = Err(io::Error::other(Stopped));
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    here = Err(e);
                    break;
                }
            }
        }
        drop(formatted);
        let there = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (here, there) {
            (Err(e), _) if !e.get_ref().is_some_and(|e| e.is::<Stopped>()) => Err(e),
            (_, Err(e)) => Err(e),
            (here, Ok(())) => here,
        }
    })
}

/// What a thread answers that stopped because the other did: the other's error is the one to
/// tell.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the other thread formatting the results stopped")
    }
}

impl std::error::Error for Stopped {}

/// The fills of the steps at `range` in id order; `flush` whenever the buffer is full enough.
fn block(
    m: &Mtu,
    filled: &[Lots],
    range: Range<usize>,
    buf: &mut Buffer,
    flush: &mut dyn FnMut(&mut Buffer) -> io::Result<()>,
) -> io::Result<()> {
    let steps = &m.steps.steps;
    let ids = m.steps.ids.as_bytes();
    let first = range.start;
    let Some(order) = &m.by_id else {
        let mut start = first.checked_sub(1).map_or(0, |p| steps[p].id_end as usize);
        for (k, (step, &filled)) in steps[range.clone()].iter().zip(&filled[range]).enumerate() {
            let end = step.id_end as usize;
            let id = &ids[start..end];
            start = end;
            buf.fill(first + k == 0, id, step, filled)?;
            if buf.at >= FLUSH_AT {
                flush(buf)?;
            }
        }
        return Ok(());
    };
    // Steps out of their place: each group's steps and fills first, then their ids, gathered
    // from all over memory in short loops whose reads overlap, then written from the group.
    let mut rows: Vec<(Step, Lots, u32)> = Vec::with_capacity(GATHER);
    let mut group_ids: Vec<u8> = Vec::with_capacity(GATHER * 16);
    for (g, group) in order[range].chunks(GATHER).enumerate() {
        rows.clear();
        rows.extend(group.iter().map(|&i| {
            let i = i as usize;
            let start = i.checked_sub(1).map_or(0, |p| steps[p].id_end);
            (steps[i], filled[i], start)
        }));
        group_ids.clear();
        for (step, _, start) in &mut rows {
            let (from, to) = (*start as usize, step.id_end as usize);
            match ids.get(from..from + SHORT_ID) {
                // A short id by a copy of fixed size (no call to copy it), what follows it
                // cut off again.
                Some(short) if to - from <= SHORT_ID => {
                    let at = group_ids.len();
                    let short: &[u8; SHORT_ID] = short.try_into().unwrap_or(&[0; SHORT_ID]);
                    group_ids.extend_from_slice(short);
                    group_ids.truncate(at + to - from);
                }
                _ => group_ids.extend_from_slice(&ids[from..to]),
            }
            // Where the id ends in the group's ids, which hold less than the MTU's.
            *start = group_ids.len() as u32;
        }
        let mut start = 0;
        for (k, (step, filled, end)) in rows.iter().enumerate() {
            let id = &group_ids[start..*end as usize];
            start = *end as usize;
            buf.fill(first + g * GATHER + k == 0, id, step, *filled)?;
        }
        if buf.at >= FLUSH_AT {
            flush(buf)?;
        }
    }
    Ok(())
}

/// Steps gathered at a time when they are out of id order.
const GATHER: usize = 512;

/// Bytes of an id copied at once when it has no more: out of id order, a copy of any length
/// for each id took a tenth of the time to format a million steps.
const SHORT_ID: usize = 16;

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
    fn new(pool: &Pool) -> Self {
        Self {
            bytes: pool.take(),
            at: 0,
        }
    }

    /// The bytes, and a buffer written before (or a new one) to go on in.
    fn take(&mut self, pool: &Pool) -> (Vec<u8>, usize) {
        let bytes = std::mem::replace(&mut self.bytes, pool.take());
        (bytes, std::mem::take(&mut self.at))
    }

    /// Hands the bytes to the writing thread, and goes on in another buffer.
    fn flush<W>(&mut self, out: &Pipe<W>) -> io::Result<()> {
        let (bytes, len) = self.take(out.pool);
        out.send(Piece::Bytes(bytes, len))
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

    use super::super::Curves;
    use super::{BLOCK, Buffer, Pool, SECOND_THREAD_FROM};

    fn written(units: i64, places: u32) -> String {
        let mut buf = Buffer::new(&Pool::default());
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
            let mut buf = Buffer::new(&Pool::default());
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

    /// A document of one MTU of `n` steps, their ids in order or not, from 7 to 28 bytes long.
    fn document(n: usize, shuffled: bool) -> String {
        let steps: Vec<String> = (0..n)
            .map(|i| {
                let k = if shuffled { (i * 7_919) % n } else { i };
                let side = if k % 2 == 0 { "BUY" } else { "SELL" };
                format!(
                    r#"{{"id": "s{k:06}{}{}", "side": "{side}", "price": "{}.{:02}", "quantity": "{}.{}", "receipt": {k}}}"#,
                    "é".repeat(k % 11),
                    "x".repeat(k / 11 % 2),
                    40 + k % 60,
                    k % 100,
                    1 + k % 50,
                    k % 10
                )
            })
            .collect();
        format!(r#"{{"steps": [{}]}}"#, steps.join(", "))
    }

    #[test]
    fn a_large_mtu_formatted_block_by_block_on_two_threads_prints_its_results() {
        // An even and an odd number of blocks, the last one full or not.
        for n in [
            SECOND_THREAD_FROM,
            SECOND_THREAD_FROM + BLOCK / 2,
            SECOND_THREAD_FROM + BLOCK + 1,
        ] {
            let mut in_order = None;
            for shuffled in [false, true] {
                let curves = Curves::from_slice(document(n, shuffled).as_bytes()).expect("valid");
                let mut out = Vec::new();
                curves.write_results(&mut out).expect("written to memory");
                let mut expected = serde_json::to_vec_pretty(&curves.results()).expect("JSON");
                expected.push(b'\n');
                assert!(out == expected, "{n} steps, shuffled: {shuffled}");
                // The same steps in another order print the same bytes.
                assert!(in_order.get_or_insert_with(|| out.clone()) == &out);
            }
        }
    }

    /// Takes `room` bytes, then fails.
    struct Failing {
        room: usize,
    }

    impl std::io::Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::other("full"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_failing_in_the_blocks_of_a_large_mtu_is_the_error_answered() {
        for shuffled in [false, true] {
            let curves = Curves::from_slice(document(SECOND_THREAD_FROM + 1, shuffled).as_bytes())
                .expect("valid");
            for room in [0, 1_000, 3 << 20] {
                let err = curves
                    .write_results(Failing { room })
                    .expect_err("the writer fails");
                assert_eq!(err.to_string(), "full", "{room} bytes in");
            }
        }
    }
}
