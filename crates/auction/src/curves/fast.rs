//! A byte-level reader for the documents `energy auction clear` is usually given, with a way
//! out: whatever it does not expect, it leaves to the serde reader of [`super::read`].
//!
//! It reads what that reader reads into the same [`Document`], for a subset of the documents
//! that reader accepts: JSON text whose steps are objects of known keys, each at most once,
//! with strings free of escapes, and numbers in the plain forms of the step's fields. Anything
//! else (an escape, an unknown or repeated key, a step given as an array, a truncated document,
//! a value of the wrong type) makes it stop and answer `None`, and the caller reads the document
//! again with serde, which answers the same document or the error with its path and its place.
//! So the fast reader never has an error of its own to word, and a document it accepts is one
//! the serde reader accepts, read to the same steps (the tests compare the two on mutated
//! documents).
//!
//! The small values outside the steps (`market`, `limits`, an MTU's name) are cut out of the
//! text and given to serde_json as they are.
//!
//! From a file the document goes through a window of [`Sizes::chunk`] bytes, refilled before a
//! step when fewer than [`Sizes::ahead`] are left: the document's text is never in memory as a
//! whole, and a step or value longer than that sends the document to serde.
//!
//! A large file is read by two threads ([`read_parts`]): the second reads steps from a place
//! past the middle where a step seems to start (`}, {`) to the end of their array; the first
//! reads from the start and, if it finds a step starting at exactly that place, takes the
//! second's steps and goes on after them. If the place was not a step's start (it was inside a
//! string, say), the first reads on by itself: the document read is the same either way.

use std::io::{self, Read};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::ScopedJoinHandle;

use energy_core::market::{Market, Side};
use energy_core::money::{Lots, PriceCents};
use serde::de::{DeserializeOwned, DeserializeSeed, Visitor};

use super::decimal::{Decimal, plain_decimal};
use super::read::Document;
use super::{MtuSteps, Step};
use crate::clearing::Limits;

/// The window over a file, and from what size a file is read in two parts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sizes {
    /// Bytes of the window.
    pub chunk: usize,
    /// Bytes ahead of the reader at the start of each step or value, when the input has them.
    pub ahead: usize,
    /// Files of at least this many bytes are read in two parts, by two threads.
    pub split_from: u64,
}

impl Sizes {
    pub(super) const FILE: Sizes = Sizes {
        chunk: 1 << 20,
        ahead: 64 << 10,
        split_from: 4 << 20,
    };
}

/// Where a document read in two parts is split, in hundredths of its length: before the
/// middle, so that the first thread reaches the second part's start while the second still
/// reads, and makes room for its steps meanwhile (see [`Reader::take_second`]).
const SPLIT_AT_PERCENT: u64 = 45;

/// Steps, or bytes of their texts, made room for at a time while the second part is read.
const ROOM_AT_ONCE: usize = 1 << 16;

/// Deeper than this, a small value goes to the serde reader, whose own limit of nesting counts
/// from the document's top and not from the value's.
const MAX_SMALL_DEPTH: usize = 64;

/// Why the fast reader stopped.
#[derive(Debug)]
pub(super) enum Stop {
    /// Something it does not read: the serde reader takes over.
    Unusual,
    /// The reader failed.
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

type Fast<T> = Result<T, Stop>;

/// The bytes being read: a whole text, or a window over a reader.
pub(super) trait Source {
    /// The bytes at hand.
    fn window(&self) -> &[u8];
    /// Whether the window reaches the end of the input.
    fn at_end(&self) -> bool;
    /// Drops the window's first `from` bytes and reads more after the rest.
    fn refill(&mut self, from: usize) -> io::Result<()>;
    /// The offset in the input of the window's first byte.
    fn offset(&self) -> u64;
    /// Moves the window to hold the input from offset `to`: its index there.
    fn jump(&mut self, to: u64) -> io::Result<usize>;
}

/// A whole text in memory.
pub(super) struct Whole<'a>(pub &'a [u8]);

impl Source for Whole<'_> {
    fn window(&self) -> &[u8] {
        self.0
    }
    fn at_end(&self) -> bool {
        true
    }
    fn refill(&mut self, _from: usize) -> io::Result<()> {
        Ok(())
    }
    fn offset(&self) -> u64 {
        0
    }
    fn jump(&mut self, to: u64) -> io::Result<usize> {
        Ok(to as usize)
    }
}

/// A window of `buf.len()` bytes over an input that `open` opens at any offset.
pub(super) struct Chunks<R, O> {
    open: O,
    input: R,
    buf: Vec<u8>,
    /// The offset in the input of `buf[0]`.
    base: u64,
    end: usize,
    eof: bool,
}

impl<R: Read, O: Fn(u64) -> io::Result<R>> Chunks<R, O> {
    /// A window at `at`, empty until refilled.
    pub(super) fn new(open: O, at: u64, size: usize) -> io::Result<Self> {
        Ok(Self {
            input: open(at)?,
            open,
            buf: vec![0; size.max(1)],
            base: at,
            end: 0,
            eof: false,
        })
    }
}

impl<R: Read, O: Fn(u64) -> io::Result<R>> Source for Chunks<R, O> {
    fn window(&self) -> &[u8] {
        &self.buf[..self.end]
    }
    fn at_end(&self) -> bool {
        self.eof
    }
    fn refill(&mut self, from: usize) -> io::Result<()> {
        self.buf.copy_within(from..self.end, 0);
        self.end -= from;
        self.base += from as u64;
        while !self.eof && self.end < self.buf.len() {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    fn offset(&self) -> u64 {
        self.base
    }
    fn jump(&mut self, to: u64) -> io::Result<usize> {
        if let Some(pos) = to.checked_sub(self.base).filter(|&p| p <= self.end as u64) {
            return Ok(pos as usize);
        }
        self.input = (self.open)(to)?;
        self.base = to;
        self.end = 0;
        self.eof = false;
        self.refill(0)?;
        Ok(0)
    }
}

/// Reads a whole document, or stops at the first thing it leaves to serde.
pub(super) fn read<S: Source>(source: S, ahead: usize) -> Fast<Document> {
    read_with(source, ahead, None)
}

fn read_with<S: Source>(source: S, ahead: usize, split: Option<Split<'_>>) -> Fast<Document> {
    let mut r = Reader {
        src: source,
        pos: 0,
        ahead,
        split,
    };
    r.src.refill(0)?;
    r.ws()?;
    let document = match r.peek()? {
        b'[' => Document {
            mtus: Some(r.mtus()?),
            ..Document::default()
        },
        b'{' => r.document()?,
        _ => return Err(Stop::Unusual),
    };
    r.ws()?;
    if r.pos < r.src.window().len() || !r.src.at_end() {
        return Err(Stop::Unusual);
    }
    Ok(document)
}

/// Reads a document of `len` bytes that `open` opens at any offset: in two parts by two
/// threads when it is large enough (see the module's documentation), else in one.
pub(super) fn read_parts<R, O>(len: u64, open: O, sizes: Sizes) -> Fast<Document>
where
    R: Read + Send,
    O: Fn(u64) -> io::Result<R> + Sync,
{
    let serial = || read(Chunks::new(&open, 0, sizes.chunk)?, sizes.ahead);
    if len < sizes.split_from {
        return serial();
    }
    let at = (u128::from(len) * u128::from(SPLIT_AT_PERCENT) / 100) as u64;
    let Some(start) = step_start(open(at)?, sizes.ahead)?.map(|k| at + k) else {
        return serial();
    };
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let second = std::thread::Builder::new().spawn_scoped(scope, || {
            let source = Chunks::new(&open, start, sizes.chunk)?;
            second_part(source, sizes.ahead, &stop)
        });
        let Ok(second) = second else {
            return serial();
        };
        let split = Split {
            start,
            input_end: len,
            second,
            stop: &stop,
        };
        let document = read_with(
            Chunks::new(&open, 0, sizes.chunk)?,
            sizes.ahead,
            Some(split),
        );
        stop.store(true, Relaxed);
        document
    })
}

/// Where a step seems to start in the first `ahead` bytes of `input`: the `{` of `}, {`.
fn step_start<R: Read>(input: R, ahead: usize) -> io::Result<Option<u64>> {
    let mut text = Vec::with_capacity(ahead);
    input.take(ahead as u64).read_to_end(&mut text)?;
    let mut i = 0;
    while let Some(k) = text[i..].iter().position(|&c| c == b'}') {
        let close = i + k;
        let comma = skip_ws(&text, close + 1);
        if text.get(comma) == Some(&b',') {
            let open = skip_ws(&text, comma + 1);
            if text.get(open) == Some(&b'{') {
                return Ok(Some(open as u64));
            }
        }
        i = close + 1;
    }
    Ok(None)
}

/// The second part: the steps from a place where one seems to start to the end of their array.
fn second_part<S: Source>(source: S, ahead: usize, stop: &AtomicBool) -> Fast<Part> {
    let mut r = Reader {
        src: source,
        pos: 0,
        ahead,
        split: None,
    };
    r.src.refill(0)?;
    let mut part = Part::default();
    r.items(&mut part.steps, &mut part.texts, Some(stop))?;
    part.end = r.src.offset() + r.pos as u64;
    Ok(part)
}

/// The second thread's part of a document read in two.
struct Split<'s> {
    /// Where its steps start.
    start: u64,
    /// The length of the input.
    input_end: u64,
    second: ScopedJoinHandle<'s, Fast<Part>>,
    /// Tells it to stop when its steps will not be taken.
    stop: &'s AtomicBool,
}

impl Step {
    /// What fills the room made for steps, until they are copied there.
    const ROOM: Step = Step {
        price: PriceCents(0),
        quantity: Lots(0),
        receipt: 0,
        id_end: 0,
        record_id_end: 0,
        side: Side::Buy,
    };
}

/// Writes `fill`s after the end of `items`, `room` of them or until `wanted` says no more, and
/// takes them off again: their memory stays, and is touched.
fn make_room<T: Copy>(items: &mut Vec<T>, room: usize, fill: T, wanted: impl Fn() -> bool) {
    let len = items.len();
    let mut made = 0;
    while made < room && wanted() {
        let more = (room - made).min(ROOM_AT_ONCE);
        items.resize(items.len() + more, fill);
        made += more;
    }
    items.truncate(len);
}

/// Steps read from the middle of an array to its end, and the offset after its `]`.
#[derive(Default)]
struct Part {
    steps: Vec<Step>,
    texts: Texts,
    end: u64,
}

struct Reader<'s, S> {
    src: S,
    pos: usize,
    ahead: usize,
    split: Option<Split<'s>>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// A string without escapes starting at `b[i]`: its bytes, and the index after its closing
/// quote. Its bytes are UTF-8 (serde_json refuses a string that is not).
#[inline]
fn string(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let mut j = start;
    let mut ascii = true;
    loop {
        let c = *b.get(j)?;
        if c == b'"' {
            break;
        }
        // An escape, or a control character serde_json refuses.
        if c == b'\\' || c < 0x20 {
            return None;
        }
        ascii &= c < 0x80;
        j += 1;
    }
    let bytes = &b[start..j];
    if !ascii {
        std::str::from_utf8(bytes).ok()?;
    }
    Some((bytes, j + 1))
}

/// A key, its colon and the whitespace around it: the key's bytes and the index of its value.
#[inline]
fn key(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let len = b.get(start..)?.iter().position(|&c| c == b'"')?;
    let k = &b[start..start + len];
    // Known keys are plain ASCII: anything else is not one of them.
    if k.iter().any(|&c| c == b'\\' || c < 0x20) {
        return None;
    }
    let i = skip_ws(b, start + len + 1);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some((k, skip_ws(b, i + 1)))
}

/// Where the JSON value starting at `b[i]` ends, roughly (at the first comma, whitespace or
/// closing bracket outside its strings and brackets): serde_json reads what is cut out and
/// refuses it unless it is one value.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    loop {
        let c = *b.get(j)?;
        match c {
            b'"' => {
                j += 1;
                loop {
                    match *b.get(j)? {
                        b'"' => break,
                        b'\\' => j += 2,
                        _ => j += 1,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_SMALL_DEPTH {
                    return None;
                }
            }
            b'}' | b']' if depth > 0 => depth -= 1,
            b'}' | b']' | b',' if depth == 0 => return (j > i).then_some(j),
            _ if depth == 0 && is_ws(c) => return (j > i).then_some(j),
            _ => {}
        }
        j += 1;
    }
}

/// A price or a quantity at `b[i]`: a string, or a number (read as serde reads it).
#[inline]
fn decimal(b: &[u8], i: usize, places: u32) -> Option<(i64, usize)> {
    if b.get(i) == Some(&b'"') {
        let (text, next) = string(b, i)?;
        let units = match plain_decimal(text, places) {
            Some(units) => units,
            None => {
                let text = std::str::from_utf8(text).ok()?;
                Decimal(places).visit_str::<serde_json::Error>(text).ok()?
            }
        };
        return Some((units, next));
    }
    let len = b
        .get(i..)?
        .iter()
        .position(|&c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .unwrap_or(b.len() - i);
    if len == 0 {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(&b[i..i + len]);
    let units = Decimal(places).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some((units, i + len))
}

/// A receipt: a JSON integer in `u64`.
#[inline]
fn receipt(b: &[u8], i: usize) -> Option<(u64, usize)> {
    let mut j = i;
    let mut value: u64 = 0;
    while let Some(&c @ b'0'..=b'9') = b.get(j) {
        value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        j += 1;
    }
    let digits = j - i;
    // No leading zero; nothing after the digits that would make them a fraction or an exponent.
    if digits == 0 || (digits > 1 && b[i] == b'0') {
        return None;
    }
    match b.get(j) {
        Some(b'.' | b'e' | b'E') => None,
        _ => Some((value, j)),
    }
}

const ID: u8 = 1;
const SIDE: u8 = 2;
const PRICE: u8 = 4;
const QUANTITY: u8 = 8;
const RECEIPT: u8 = 16;
const RECORD_ID: u8 = 32;
const REQUIRED: u8 = ID | SIDE | PRICE | QUANTITY;

/// A step's key, its colon and the whitespace around it: which key (one of the bits above),
/// and the index of its value. `None` for any other key, or a key spelled with an escape.
#[inline]
fn step_key(b: &[u8], i: usize) -> Option<(u8, usize)> {
    let rest = b.get(i..)?;
    let (key, len): (u8, usize) = match rest.get(1)? {
        b'i' if rest.starts_with(b"\"id\"") => (ID, 4),
        b's' if rest.starts_with(b"\"side\"") => (SIDE, 6),
        b'p' if rest.starts_with(b"\"price\"") => (PRICE, 7),
        b'q' if rest.starts_with(b"\"quantity\"") => (QUANTITY, 10),
        b'r' if rest.starts_with(b"\"receipt\"") => (RECEIPT, 9),
        b'r' if rest.starts_with(b"\"record_id\"") => (RECORD_ID, 11),
        _ => return None,
    };
    let mut j = i + len;
    if b.get(j) != Some(&b':') {
        j = skip_ws(b, j);
        if b.get(j) != Some(&b':') {
            return None;
        }
    }
    j += 1;
    if b.get(j).is_some_and(|&c| is_ws(c)) {
        j = skip_ws(b, j);
    }
    Some((key, j))
}

/// An MTU's ids and record ids as they are read, each string checked to be UTF-8.
#[derive(Default)]
struct Texts {
    ids: Vec<u8>,
    record_ids: Vec<u8>,
}

/// One step object at `b[i]`, its id and record id appended to `into`: the step and the index
/// after it.
#[inline]
fn step(b: &[u8], i: usize, into: &mut Texts) -> Option<(Step, usize)> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut i = skip_ws(b, i + 1);
    let mut seen = 0u8;
    let mut side = Side::Buy;
    let (mut price, mut quantity, mut receipt_value) = (0, 0, 0);
    loop {
        let (k, at) = step_key(b, i)?;
        let (bit, next) = match k {
            ID => {
                let (text, next) = string(b, at)?;
                into.ids.extend_from_slice(text);
                (ID, next)
            }
            SIDE => {
                let (text, next) = string(b, at)?;
                side = match text {
                    b"BUY" => Side::Buy,
                    b"SELL" => Side::Sell,
                    _ => return None,
                };
                (SIDE, next)
            }
            PRICE => {
                let (units, next) = decimal(b, at, PriceCents::PLACES)?;
                price = units;
                (PRICE, next)
            }
            QUANTITY => {
                let (units, next) = decimal(b, at, Lots::PLACES)?;
                quantity = units;
                (QUANTITY, next)
            }
            RECEIPT => {
                let (value, next) = receipt(b, at)?;
                receipt_value = value;
                (RECEIPT, next)
            }
            RECORD_ID => {
                let (text, next) = string(b, at)?;
                into.record_ids.extend_from_slice(text);
                (RECORD_ID, next)
            }
            _ => return None,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        i = skip_ws(b, next);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => break,
            _ => return None,
        }
    }
    if seen & REQUIRED != REQUIRED {
        return None;
    }
    let step = Step {
        price: PriceCents(price),
        quantity: Lots(quantity),
        receipt: receipt_value,
        id_end: u32::try_from(into.ids.len()).ok()?,
        record_id_end: u32::try_from(into.record_ids.len()).ok()?,
        side,
    };
    Some((step, i + 1))
}

impl<S: Source> Reader<'_, S> {
    /// Makes sure the window holds `ahead` bytes from here, or the rest of the input.
    #[inline]
    fn fill(&mut self) -> Fast<()> {
        if self.src.window().len() - self.pos < self.ahead && !self.src.at_end() {
            self.src.refill(self.pos)?;
            self.pos = 0;
        }
        Ok(())
    }

    /// Skips whitespace, however much of it there is.
    fn ws(&mut self) -> Fast<()> {
        loop {
            self.pos = skip_ws(self.src.window(), self.pos);
            if self.pos < self.src.window().len() || self.src.at_end() {
                return Ok(());
            }
            self.fill()?;
        }
    }

    /// The next byte, whitespace skipped before.
    fn peek(&mut self) -> Fast<u8> {
        self.fill()?;
        self.src
            .window()
            .get(self.pos)
            .copied()
            .ok_or(Stop::Unusual)
    }

    /// `,` before another element (true) or `close` at the end (false), whitespace around.
    fn next_or_close(&mut self, close: u8) -> Fast<bool> {
        self.ws()?;
        let c = self.peek()?;
        self.pos += 1;
        if c == b',' {
            self.ws()?;
            Ok(true)
        } else if c == close {
            Ok(false)
        } else {
            Err(Stop::Unusual)
        }
    }

    /// Opens an array or object whose first byte is `open`: whether it has an element.
    fn open(&mut self, open: u8, close: u8) -> Fast<bool> {
        if self.peek()? != open {
            return Err(Stop::Unusual);
        }
        self.pos += 1;
        self.ws()?;
        if self.peek()? == close {
            self.pos += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// A key and its colon.
    fn key(&mut self) -> Fast<Vec<u8>> {
        self.fill()?;
        let (k, next) = key(self.src.window(), self.pos).ok_or(Stop::Unusual)?;
        let k = k.to_vec();
        self.pos = next;
        self.ws()?;
        Ok(k)
    }

    /// A small value, read by serde_json from its text.
    fn small<T: DeserializeOwned>(&mut self) -> Fast<T> {
        self.fill()?;
        let b = self.src.window();
        let end = value_end(b, self.pos).ok_or(Stop::Unusual)?;
        let value = serde_json::from_slice(&b[self.pos..end]).map_err(|_| Stop::Unusual)?;
        self.pos = end;
        Ok(value)
    }

    /// Whether the value here is `null`, read if so.
    fn null(&mut self) -> Fast<bool> {
        self.fill()?;
        let b = &self.src.window()[self.pos..];
        if b.starts_with(b"null") && b.get(4).is_none_or(|&c| !c.is_ascii_alphanumeric()) {
            self.pos += 4;
            return Ok(true);
        }
        Ok(false)
    }

    fn document(&mut self) -> Fast<Document> {
        let mut document = Document::default();
        if !self.open(b'{', b'}')? {
            return Ok(document);
        }
        let mut seen = [false; 5];
        loop {
            let k = self.key()?;
            let slot = match k.as_slice() {
                b"market" => {
                    document.market = self.small::<Option<Market>>()?;
                    0
                }
                b"limits" => {
                    document.limits = self.small::<Option<Limits>>()?;
                    1
                }
                b"mtu" => {
                    document.mtu = self.small::<Option<String>>()?;
                    2
                }
                b"mtus" => {
                    document.mtus = if self.null()? {
                        None
                    } else {
                        Some(self.mtus()?)
                    };
                    3
                }
                b"steps" => {
                    document.steps = if self.null()? {
                        None
                    } else {
                        Some(self.steps()?)
                    };
                    4
                }
                _ => return Err(Stop::Unusual),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(Stop::Unusual);
            }
            if !self.next_or_close(b'}')? {
                return Ok(document);
            }
        }
    }

    fn mtus(&mut self) -> Fast<Vec<MtuSteps>> {
        let mut mtus = Vec::new();
        if !self.open(b'[', b']')? {
            return Ok(mtus);
        }
        loop {
            mtus.push(self.mtu()?);
            if !self.next_or_close(b']')? {
                return Ok(mtus);
            }
        }
    }

    fn mtu(&mut self) -> Fast<MtuSteps> {
        if !self.open(b'{', b'}')? {
            return Err(Stop::Unusual); // no steps
        }
        let (mut mtu, mut steps) = (None, None);
        let mut seen_mtu = false;
        loop {
            let k = self.key()?;
            match k.as_slice() {
                b"mtu" if !seen_mtu => {
                    mtu = self.small::<Option<String>>()?;
                    seen_mtu = true;
                }
                b"steps" if steps.is_none() => steps = Some(self.steps()?),
                _ => return Err(Stop::Unusual),
            }
            if !self.next_or_close(b'}')? {
                break;
            }
        }
        let steps = steps.ok_or(Stop::Unusual)?;
        Ok(MtuSteps { mtu, ..steps })
    }

    fn steps(&mut self) -> Fast<MtuSteps> {
        let mut steps = Vec::new();
        let mut texts = Texts::default();
        if self.open(b'[', b']')? {
            self.items(&mut steps, &mut texts, None)?;
        }
        // Strings of UTF-8 one after the other are UTF-8.
        let text = |bytes| String::from_utf8(bytes).map_err(|_| Stop::Unusual);
        Ok(MtuSteps {
            mtu: None,
            steps,
            ids: text(texts.ids)?,
            record_ids: text(texts.record_ids)?,
        })
    }

    /// Steps, from the start of one to the `]` after the last; with the second part's steps
    /// if one starts where they do.
    fn items(
        &mut self,
        steps: &mut Vec<Step>,
        texts: &mut Texts,
        stop: Option<&AtomicBool>,
    ) -> Fast<()> {
        loop {
            self.fill()?;
            if self.split.is_some() && self.take_second(steps, texts)? {
                return Ok(());
            }
            if stop.is_some_and(|stop| stop.load(Relaxed)) {
                return Err(Stop::Unusual);
            }
            let (step, next) = step(self.src.window(), self.pos, texts).ok_or(Stop::Unusual)?;
            // The engine numbers an MTU's steps with u32.
            if steps.len() >= u32::MAX as usize {
                return Err(Stop::Unusual);
            }
            steps.push(step);
            self.pos = next;
            // The common case, a comma and the next step at once.
            let b = self.src.window();
            if b.get(self.pos) == Some(&b',') && b.get(self.pos + 1) == Some(&b'{') {
                self.pos += 1;
                continue;
            }
            if !self.next_or_close(b']')? {
                return Ok(());
            }
        }
    }

    /// At a step's start, at or past where the second part starts: its steps after these and
    /// the reader after their array, if it starts here (true); else the second part dropped.
    fn take_second(&mut self, steps: &mut Vec<Step>, texts: &mut Texts) -> Fast<bool> {
        let here = self.src.offset() + self.pos as u64;
        let Some(split) = self.split.take_if(|split| here >= split.start) else {
            return Ok(false);
        };
        if here > split.start {
            split.stop.store(true, Relaxed);
            return Ok(false);
        }
        let (ids, record_ids) = (texts.ids.len(), texts.record_ids.len());
        // While the second part is still read, room for it after the first, as much as the
        // first's bytes say (to the end of the input): the copy after writes to memory that is
        // there already instead of faulting in every page of it, on one processor.
        let (n, bytes) = (steps.len(), split.start.max(1));
        let rest = split.input_end.saturating_sub(split.start);
        let room = |have: usize| (have as u128 * u128::from(rest) / u128::from(bytes)) as usize;
        let reading = || !split.second.is_finished();
        make_room(&mut texts.ids, room(ids), 0, reading);
        make_room(&mut texts.record_ids, room(record_ids), 0, reading);
        make_room(steps, room(n), Step::ROOM, reading);
        let part = match split.second.join() {
            Ok(Ok(part)) => part,
            // It could not read its steps: they are read here.
            Ok(Err(_)) => return Ok(false),
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // Ends only grow: the second part's last are its largest.
        let fits = |base: usize, more: usize| base + more <= u32::MAX as usize;
        if !fits(ids, part.texts.ids.len())
            || !fits(record_ids, part.texts.record_ids.len())
            || !fits(steps.len(), part.steps.len())
        {
            return Err(Stop::Unusual);
        }
        texts.ids.extend_from_slice(&part.texts.ids);
        texts.record_ids.extend_from_slice(&part.texts.record_ids);
        let (ids, record_ids) = (ids as u32, record_ids as u32);
        steps.extend(part.steps.iter().map(|step| Step {
            id_end: step.id_end + ids,
            record_id_end: step.record_id_end + record_ids,
            ..*step
        }));
        self.pos = self.src.jump(part.end)?;
        #[cfg(test)]
        tests::TAKEN.set(tests::TAKEN.get() + 1);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::super::read;
    use super::*;

    thread_local! {
        /// Second parts taken by this thread.
        pub(super) static TAKEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// What the fast reader answers for `text`, whole and through windows of a few sizes: a
    /// document only if serde reads the same one. Answers whether the whole text was read fast.
    fn agrees(text: &[u8]) -> bool {
        let serde = read::from_slice(text);
        let check = |fast: Fast<Document>, how: &str| match fast {
            Ok(document) => {
                let serde = serde.as_ref().unwrap_or_else(|e| {
                    panic!("{how}: read fast, but serde says {e}: {:?}", show(text))
                });
                assert_eq!(&document, serde, "{how}: {:?}", show(text));
                true
            }
            Err(Stop::Unusual) => false,
            Err(Stop::Io(e)) => panic!("{how}: {e}"),
        };
        let whole = check(read(Whole(text), 0), "whole");
        for (size, ahead) in [(1, 1), (64, 16), (300, 128), (4096, 1024)] {
            let fast = check(read(windows(text, size), ahead), "windows");
            // A window as large as the text reads what the whole text reads.
            if size >= text.len() {
                assert_eq!(fast, whole, "{size}: {:?}", show(text));
            }
        }
        // In two parts, from the middle or wherever a step seems to start after it.
        for (chunk, ahead) in [(64, 16), (4096, 1024)] {
            let sizes = Sizes {
                chunk,
                ahead,
                split_from: 0,
            };
            let open = |at: u64| Ok(&text[at as usize..]);
            check(read_parts(text.len() as u64, open, sizes), "two parts");
        }
        whole
    }

    /// Windows of `size` bytes over `text`.
    fn windows(text: &[u8], size: usize) -> impl Source {
        Chunks::new(move |at| Ok(&text[at as usize..]), 0, size).expect("memory")
    }

    fn show(text: &[u8]) -> String {
        String::from_utf8_lossy(text).chars().take(400).collect()
    }

    fn step(id: &str, side: &str, price: &str, quantity: &str) -> serde_json::Value {
        json!({"id": id, "side": side, "price": price, "quantity": quantity})
    }

    fn documents() -> Vec<serde_json::Value> {
        let mut with_receipts = step("b1", "BUY", "50.00", "1.0");
        with_receipts["receipt"] = json!(7);
        with_receipts["record_id"] = json!("r-1");
        vec![
            json!({"steps": [step("s", "SELL", "20.00", "10.0"), step("b", "BUY", "50.00", "10.0"), with_receipts]}),
            json!({"market": "IDA1", "mtu": "2026-01-15T06:00:00Z", "steps": [step("é", "SELL", "-20.5", "10")]}),
            json!({"limits": {"min_price": "-10.00", "max_price": 100}, "mtus": [
                {"mtu": "a", "steps": [step("s", "SELL", "20.00", "10.0")]},
                {"steps": []},
                {"mtu": null, "steps": [step("b", "BUY", "99.99", "0.1"), step("s", "SELL", "1", "3.5")]},
            ]}),
            json!([{"mtu": "x", "steps": [step("s1", "SELL", "0.00", "1.0")]}, {"steps": []}]),
            json!({"market": null, "limits": null, "mtus": null, "mtu": null, "steps": []}),
            json!({"mtus": []}),
            json!({}),
        ]
    }

    #[test]
    fn usual_documents_are_read_fast_and_as_serde_reads_them() {
        for document in documents() {
            let compact = serde_json::to_vec(&document).expect("JSON");
            let pretty = serde_json::to_vec_pretty(&document).expect("JSON");
            assert!(agrees(&compact), "{}", show(&compact));
            assert!(agrees(&pretty), "{}", show(&pretty));
        }
        // Every JSON blank, anywhere a blank may be.
        let blanks = " \t\r\n{ \"steps\"\t:\r[ {\"id\" :\"a\" ,\"side\":\"BUY\",\"price\":\"1.00\"\n,\"quantity\": 2 , \"receipt\" :\t3} ,\n{\"id\":\"b\",\"side\":\"SELL\",\"price\":1.5,\"quantity\":\"1.0\"}\n]\r\n}\t \n";
        assert!(agrees(blanks.as_bytes()));
    }

    #[test]
    fn unusual_documents_go_to_serde() {
        let cases: &[&str] = &[
            // Escapes in strings, where serde reads them as letters.
            r#"{"steps": [{"id": "a\u0062", "side": "BUY", "price": "1.00", "quantity": "1.0"}]}"#,
            r#"{"steps": [{"i\u0064": "a", "side": "BUY", "price": "1.00", "quantity": "1.0"}]}"#,
            r#"{"steps": [{"id": "a", "side": "B\u0055Y", "price": "1.00", "quantity": "1.0"}]}"#,
            r#"{"steps": [{"id": "a", "side": "BUY", "price": "1\u002e00", "quantity": "1.0"}]}"#,
            r#"{"st\u0065ps": []}"#,
            // Repeated keys: serde takes the last.
            r#"{"steps": [{"id": "x", "id": "a", "side": "BUY", "price": "1.00", "quantity": "1.0"}]}"#,
            r#"{"steps": [], "steps": [{"id": "a", "side": "BUY", "price": "1.00", "quantity": "1.0"}]}"#,
            r#"{"mtus": [{"steps": [], "steps": []}]}"#,
            r#"{"market": "IDA1", "market": "SDAC", "steps": []}"#,
            // Unknown fields: ignored in a step, refused elsewhere.
            r#"{"steps": [{"id": "a", "note": [1, {"x": "}"}], "side": "BUY", "price": "1.00", "quantity": "1.0"}]}"#,
            r#"{"steps": [], "note": 1}"#,
            // Steps and MTUs as arrays.
            r#"{"steps": [["a", "BUY", "1.00", "1.0"]]}"#,
            r#"[["m", [["a", "BUY", "1.00", "1.0", 3, "r"]]]]"#,
        ];
        for text in cases {
            assert!(!agrees(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn numbers_of_every_shape_read_as_serde_reads_them() {
        let numbers = [
            "0",
            "-0",
            "1",
            "01",
            "1.5",
            "1.25",
            "1.255",
            "-3",
            "1e1",
            "1E1",
            "1e-1",
            "-0.5e1",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "--1",
            "1.5.0",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "1e400",
            "123456789012345678901234567890",
            "0.1",
            "2.50",
            "true",
            "null",
            "[]",
            "{}",
            "\"1.00\"",
            "\"1e2\"",
            "\"-0.00\"",
            "\"007.5\"",
            "\"99999999999999999.99\"",
            "\"9999999999999999.99\"",
            "\" 1.00\"",
            "\"1.00 \"",
            "\"\"",
            "\"-\"",
            "\"+1\"",
            "\"1..2\"",
            "\"١\"",
        ];
        for price in numbers {
            for field in ["price", "quantity", "receipt"] {
                let text = format!(
                    r#"{{"steps": [{{"id": "a", "side": "BUY", "price": "1.00", "quantity": "1.0", "{field}": {price}}}]}}"#
                );
                agrees(text.as_bytes());
                let text = format!(
                    r#"{{"steps": [{{"{field}": {price}, "id": "a", "side": "BUY", "price": "1.00", "quantity": "1.0"}}]}}"#
                );
                agrees(text.as_bytes());
            }
        }
    }

    #[test]
    fn truncated_documents_go_to_serde() {
        let text = serde_json::to_vec_pretty(&documents()[2]).expect("JSON");
        for end in 0..text.len() {
            assert!(!agrees(&text[..end]), "{}", show(&text[..end]));
        }
    }

    #[test]
    fn a_document_longer_than_its_window_reads_through_refills() {
        let steps: Vec<_> = (0..2000)
            .map(|i| {
                step(
                    &format!("s{i:05}"),
                    "SELL",
                    &format!("{}.{:02}", i % 97, i % 100),
                    "1.5",
                )
            })
            .collect();
        let text = serde_json::to_vec_pretty(&json!({"steps": steps})).expect("JSON");
        let serde = read::from_slice(&text).expect("valid");
        let fast = read(windows(&text, 4096), 1024).expect("read fast");
        assert_eq!(fast, serde);
        // A step longer than the window ahead goes to serde.
        let long =
            serde_json::to_vec(&json!({"steps": [step(&"x".repeat(5000), "BUY", "1.00", "1.0")]}))
                .expect("JSON");
        assert!(matches!(
            read(windows(&long, 2048), 1024),
            Err(Stop::Unusual)
        ));
        assert!(read(windows(&long, 8192), 6000).is_ok());
    }

    #[test]
    fn room_made_is_memory_kept_and_nothing_else() {
        let mut items = vec![1u64, 2, 3];
        make_room(&mut items, 200_000, 0, || true);
        assert_eq!(items, [1, 2, 3]);
        assert!(items.capacity() >= 200_003);
        // Not wanted: nothing made.
        let mut items = vec![1u64];
        make_room(&mut items, 200_000, 0, || false);
        assert_eq!((items.as_slice(), items.capacity()), (&[1][..], 1));
    }

    #[test]
    fn a_document_read_in_two_parts_is_the_document() {
        let steps = |n: usize, id: &dyn Fn(usize) -> String| -> Vec<serde_json::Value> {
            (0..n)
                .map(|i| {
                    step(
                        &id(i),
                        if i % 2 == 0 { "BUY" } else { "SELL" },
                        &format!("{}.{:02}", i % 97, i % 100),
                        "1.5",
                    )
                })
                .collect()
        };
        let sizes = Sizes {
            chunk: 32 << 10,
            ahead: 8 << 10,
            split_from: 0,
        };
        let plain = |i| format!("s{i:05}");
        // Ids that look like the end of one step and the start of the next, one long one in
        // the middle of the document.
        let tricky = |i| format!("x}}, {{{i}");
        let mut long = steps(20, &plain);
        long.insert(
            10,
            step(
                &format!("{}}}, {{{}", "y".repeat(3500), "z".repeat(1000)),
                "BUY",
                "1.00",
                "1.0",
            ),
        );
        for (document, taken) in [
            (json!({"steps": steps(3000, &plain)}), Some(true)),
            (
                json!({"market": "IDA1", "mtus": [{"mtu": "a", "steps": steps(1000, &plain)}, {"mtu": "b", "steps": steps(1500, &plain)}, {"steps": []}]}),
                Some(true),
            ),
            (json!({"steps": steps(3000, &tricky)}), None),
            (json!({"steps": long}), Some(false)),
        ] {
            for text in [
                serde_json::to_string(&document),
                serde_json::to_string_pretty(&document),
            ] {
                let text = text.expect("JSON");
                let text = text.as_bytes();
                let serde = read::from_slice(text);
                let open = |at: u64| Ok(&text[at as usize..]);
                let before = TAKEN.get();
                let fast = read_parts(text.len() as u64, open, sizes).map_err(|_| "stopped");
                assert_eq!(fast.as_ref(), Ok(serde.as_ref().expect("valid")));
                if let Some(taken) = taken {
                    assert_eq!(TAKEN.get() > before, taken, "{}", show(text));
                }
            }
        }
    }

    /// Bytes that change what a document means, or break it.
    const PIECES: &[&[u8]] = &[
        b"\"",
        b"\\",
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b" ",
        b"\n",
        b"\t",
        b"\r",
        b"e",
        b"E",
        b"-",
        b"+",
        b".",
        b"0",
        b"9",
        b"n",
        b"null",
        b"true",
        b"\xc3\xa9",
        b"\xc3",
        b"\xff",
        b"\x00",
        b"\x1f",
        b"\x7f",
        b"\\u0041",
        b"\\\"",
        b"\"id\": \"z\",",
        b"\"receipt\": 1,",
        b"\"note\": 0,",
        b"99999999999999999999",
    ];

    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let document = prop::sample::select(documents()).prop_flat_map(|d| {
            prop_oneof![
                Just(serde_json::to_vec(&d).expect("JSON")),
                Just(serde_json::to_vec_pretty(&d).expect("JSON")),
            ]
        });
        let edit = (
            0usize..4,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            prop::sample::select(PIECES),
        );
        (document, prop::collection::vec(edit, 1..4)).prop_map(|(mut text, edits)| {
            for (kind, at, to, piece) in edits {
                let at = at.index(text.len() + 1);
                match kind {
                    0 => {
                        text.splice(at..at, piece.iter().copied());
                    }
                    1 if at < text.len() => {
                        let to = (at + 1 + to.index(8)).min(text.len());
                        text.splice(at..to, piece.iter().copied());
                    }
                    2 if at < text.len() => {
                        let to = (at + 1 + to.index(12)).min(text.len());
                        text.drain(at..to);
                    }
                    _ => {
                        let to = (at + to.index(40)).min(text.len());
                        let copy = text[at..to].to_vec();
                        text.splice(to..to, copy);
                    }
                }
            }
            text
        })
    }

    /// Edits that mostly keep a document readable: a blank or a digit in, a digit changed.
    fn mildly_mutated() -> impl Strategy<Value = Vec<u8>> {
        let document = prop::sample::select(documents()).prop_flat_map(|d| {
            prop_oneof![
                Just(serde_json::to_vec(&d).expect("JSON")),
                Just(serde_json::to_vec_pretty(&d).expect("JSON")),
            ]
        });
        let edit = (
            any::<bool>(),
            any::<prop::sample::Index>(),
            prop::sample::select(b" \n\t\r0123456789-.e".to_vec()),
        );
        (document, prop::collection::vec(edit, 1..4)).prop_map(|(mut text, edits)| {
            for (insert, at, byte) in edits {
                let at = at.index(text.len() + 1);
                if insert || at == text.len() {
                    text.insert(at, byte);
                } else if text[at].is_ascii_digit() {
                    text[at] = byte;
                }
            }
            text
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn mutated_documents_read_fast_only_as_serde_reads_them(text in mutated()) {
            agrees(&text);
        }

        #[test]
        fn mildly_mutated_documents_read_fast_only_as_serde_reads_them(text in mildly_mutated()) {
            agrees(&text);
        }
    }
}
