//! The order of an MTU's steps by id, for steps that do not come in it, and the first id that
//! repeats.
//!
//! The sort orders 8-byte keys, the ids' bytes after the prefix they all share (zeros past an
//! id's end, so a key never orders two ids against their own order), by radix, and goes to the
//! ids themselves only among equal keys: comparing the ids throughout took longer than clearing
//! when the ids came in no particular order.
//!
//! Ids are seldom made of any byte at all: digits, hexadecimal, a few letters. Each byte of the
//! keys is replaced by its rank among the values that byte takes (ten digits take four bits
//! instead of eight), and when the ranks and the step's index fit in 64 bits together the sort
//! moves those 8 bytes through as few passes as the ranks need, instead of 16 bytes through a
//! pass per byte: for a million ids of seven digits, three passes instead of six, over half as
//! much memory. Ranks keep the order of the bytes they stand for, so the order is the same.

use super::MtuSteps;

impl MtuSteps {
    /// The steps' indices sorted by id, and by index among equal ids, and the first step whose
    /// id an earlier step has; for steps out of id order (see [`MtuSteps::ids_increase`]).
    pub(super) fn id_order(&self) -> (Vec<u32>, Option<usize>) {
        let n = self.steps.len();
        if n < 2 {
            return ((0..n as u32).collect(), None);
        }
        let ids = self.ids.as_bytes();
        let first = self.id(0).as_bytes();
        let mut shared = first.len();
        let mut start = 0;
        for s in &self.steps {
            let end = s.id_end as usize;
            shared = first[..shared]
                .iter()
                .zip(&ids[start..end])
                .take_while(|(a, b)| a == b)
                .count();
            start = end;
        }
        // The keys, and the bits in which they differ.
        let mut keys: Vec<u64> = Vec::with_capacity(n);
        let (mut any, mut every) = (0u64, u64::MAX);
        let mut start = 0;
        for s in &self.steps {
            let end = s.id_end as usize;
            // Every id starts with the shared prefix.
            let (start_of_rest, rest_len) = (start + shared, end - start - shared);
            start = end;
            let key = key_of(ids, start_of_rest, rest_len);
            any |= key;
            every &= key;
            keys.push(key);
        }
        // How many keys have each value of each byte in which some differ.
        let varying: Vec<usize> = (0..8)
            .filter(|byte| (any ^ every) >> (8 * byte) & 0xff != 0)
            .collect();
        let mut counts = [[0u32; 256]; 8];
        for &key in &keys {
            for &byte in &varying {
                counts[byte][(key >> (8 * byte)) as u8 as usize] += 1;
            }
        }
        // An MTU has fewer than 2³² steps: the reader refuses more.
        let index_bits = usize::BITS - (n - 1).leading_zeros();
        let ranks = Ranks::of(&counts);
        if ranks.width + index_bits <= u64::BITS {
            for (i, key) in keys.iter_mut().enumerate() {
                *key = (ranks.packed(*key) << index_bits) | i as u64;
            }
            radix_sort_bits(&mut keys, index_bits, ranks.width);
            let index = |packed: u64| (packed & ((1 << index_bits) - 1)) as usize;
            let first_repeat = self.settle_ties(&mut keys, |packed| packed >> index_bits, index);
            let by_id = keys
                .into_iter()
                .map(|packed| index(packed) as u32)
                .collect();
            (by_id, first_repeat)
        } else {
            #[cfg(test)]
            WIDE.set(WIDE.get() + 1);
            let mut keyed: Vec<(u64, u32)> = keys
                .into_iter()
                .enumerate()
                .map(|(i, key)| (key, i as u32))
                .collect();
            radix_sort(&mut keyed, &varying, &counts);
            let first_repeat = self.settle_ties(&mut keyed, |k| k.0, |k| k.1 as usize);
            let by_id = keyed.into_iter().map(|(_, i)| i).collect();
            (by_id, first_repeat)
        }
    }

    /// Orders the runs of equal keys in `sorted` (each in index order) by their ids, and answers
    /// the first step whose id an earlier step has. Only ids of equal keys can be equal, and
    /// among equal ids every one after the first repeats an earlier one.
    fn settle_ties<T: Copy>(
        &self,
        sorted: &mut [T],
        key: impl Fn(T) -> u64,
        index: impl Fn(T) -> usize,
    ) -> Option<usize> {
        let n = sorted.len();
        let mut first_repeat = None;
        let mut run = 0;
        while run < n {
            let run_key = key(sorted[run]);
            let end = run
                + sorted[run..]
                    .iter()
                    .take_while(|&&k| key(k) == run_key)
                    .count();
            if end - run > 1 {
                let same_key = &mut sorted[run..end];
                same_key.sort_by(|&a, &b| self.id(index(a)).cmp(self.id(index(b))));
                let repeats = same_key
                    .windows(2)
                    .filter(|w| self.id(index(w[0])) == self.id(index(w[1])))
                    .map(|w| index(w[1]));
                first_repeat = repeats.chain(first_repeat).min();
            }
            run = end;
        }
        first_repeat
    }
}

#[cfg(test)]
thread_local! {
    /// Orders found with the keys whole, by this thread.
    static WIDE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The key of the id whose bytes after the shared prefix are `ids[at..at + len]`: its first 8
/// of them, big-endian, zeros after its end.
#[inline]
fn key_of(ids: &[u8], at: usize, len: usize) -> u64 {
    match ids.get(at..at + 8) {
        // Eight bytes at once, the next id's bytes among them cut off.
        Some(eight) => {
            let key = u64::from_be_bytes(eight.try_into().unwrap_or_default());
            match len {
                0 => 0,
                8.. => key,
                _ => key & !(u64::MAX >> (8 * len)),
            }
        }
        None => {
            let mut key = [0u8; 8];
            let len = len.min(8);
            key[..len].copy_from_slice(&ids[at..at + len]);
            u64::from_be_bytes(key)
        }
    }
}

/// Each byte of the keys as its rank among the values it takes, in as many bits as those need.
struct Ranks {
    /// Per byte, from the least significant, each value's rank shifted to its place.
    places: [[u64; 256]; 8],
    /// The bytes that take more than one value.
    varying: Vec<usize>,
    /// Bits of the ranks together.
    width: u32,
}

impl Ranks {
    fn of(counts: &[[u32; 256]; 8]) -> Self {
        let mut ranks = Ranks {
            places: [[0; 256]; 8],
            varying: Vec::new(),
            width: 0,
        };
        for (byte, count) in counts.iter().enumerate() {
            let values = count.iter().filter(|&&c| c > 0).count();
            if values < 2 {
                continue;
            }
            let present = ranks.places[byte]
                .iter_mut()
                .zip(count)
                .filter(|(_, c)| **c > 0);
            for (rank, (place, _)) in (0u64..).zip(present) {
                *place = rank << ranks.width;
            }
            ranks.width += usize::BITS - (values - 1).leading_zeros();
            ranks.varying.push(byte);
        }
        ranks
    }

    /// The ranks of `key`'s bytes, side by side in the order of the bytes.
    #[inline]
    fn packed(&self, key: u64) -> u64 {
        self.varying.iter().fold(0, |packed, &byte| {
            packed | self.places[byte][(key >> (8 * byte)) as u8 as usize]
        })
    }
}

/// Sorts by bits `from..from + width`, stably, in passes of at most 11 bits.
fn radix_sort_bits(items: &mut Vec<u64>, from: u32, width: u32) {
    if width == 0 {
        return;
    }
    let passes = width.div_ceil(11);
    let digit = width.div_ceil(passes);
    let buckets = 1usize << digit;
    let digit_of = |item: u64, pass: u32| {
        let shift = from + pass * digit;
        ((item >> shift) & ((1 << digit.min(from + width - shift)) - 1)) as usize
    };
    let mut counts = vec![0usize; passes as usize * buckets];
    for &item in items.iter() {
        for pass in 0..passes {
            counts[pass as usize * buckets + digit_of(item, pass)] += 1;
        }
    }
    let mut scratch = vec![0u64; items.len()];
    for (pass, count) in counts.chunks_mut(buckets).enumerate() {
        let mut total = 0;
        for c in count.iter_mut() {
            (*c, total) = (total, total + *c);
        }
        for &item in items.iter() {
            let slot = &mut count[digit_of(item, pass as u32)];
            scratch[*slot] = item;
            *slot += 1;
        }
        std::mem::swap(items, &mut scratch);
    }
}

/// Sorts by key, stably: a pass per byte of the keys in which they differ (`varying`);
/// `counts` says how many keys have each value of each of those bytes.
fn radix_sort(items: &mut Vec<(u64, u32)>, varying: &[usize], counts: &[[u32; 256]; 8]) {
    let mut scratch = vec![(0, 0); items.len()];
    for &byte in varying {
        let mut offsets = [0usize; 256];
        let mut total = 0;
        for (offset, &c) in offsets.iter_mut().zip(&counts[byte]) {
            *offset = total;
            total += c as usize;
        }
        for &item in items.iter() {
            let slot = &mut offsets[(item.0 >> (8 * byte)) as u8 as usize];
            scratch[*slot] = item;
            *slot += 1;
        }
        std::mem::swap(items, &mut scratch);
    }
}

#[cfg(test)]
mod tests {
    use energy_core::market::Side;
    use energy_core::money::{Lots, PriceCents};
    use proptest::prelude::*;

    use super::super::{MtuSteps, Step};
    use super::WIDE;

    fn mtu(ids: &[String]) -> MtuSteps {
        let mut m = MtuSteps::default();
        for id in ids {
            m.ids.push_str(id);
            m.steps.push(Step {
                price: PriceCents(0),
                quantity: Lots(1),
                receipt: 0,
                id_end: m.ids.len() as u32,
                record_id_end: 0,
                side: Side::Buy,
            });
        }
        m
    }

    /// The order by id and the first repeated id, found the plain way.
    fn plainly(ids: &[String]) -> (Vec<u32>, Option<usize>) {
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_by(|&a, &b| ids[a as usize].cmp(&ids[b as usize]).then(a.cmp(&b)));
        let mut seen = std::collections::HashSet::new();
        let first_repeat = ids.iter().position(|id| !seen.insert(id));
        (order, first_repeat)
    }

    fn assert_sorted_as_plainly(ids: &[String]) {
        assert_eq!(mtu(ids).id_order(), plainly(ids), "{ids:?}");
    }

    /// Ids of one kind of alphabet after a shared start, of any length, some repeated.
    fn ids() -> impl Strategy<Value = Vec<String>> {
        let alphabet = prop::sample::select(vec![
            "0123456789",
            "0123456789abcdef",
            "ab",
            "a\u{0}zé€",
            "!#$%&()*+-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~¡¢£¤¥¦§¨©ª«¬®¯°±²³´µ¶·¸¹º»¼½¾¿ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞß",
        ]);
        let start = prop::sample::select(vec!["", "s", "desk-7/2026-11-29T10:00/", "é"]);
        (alphabet, start).prop_flat_map(|(alphabet, start)| {
            let chars: Vec<char> = alphabet.chars().collect();
            let id = prop::collection::vec(prop::sample::select(chars), 0..14)
                .prop_map(move |body| format!("{start}{}", body.into_iter().collect::<String>()));
            prop::collection::vec(id, 2..200)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn ids_of_any_shape_sort_as_they_compare(ids in ids()) {
            assert_sorted_as_plainly(&ids);
        }
    }

    #[test]
    fn ids_that_leave_no_room_for_the_index_sort_as_they_compare() {
        // Every byte of the keys takes more than 128 values: 64 bits of ranks, no room.
        let mut x = 11u64;
        let wide: Vec<char> = (0x21u8..0x7f)
            .map(char::from)
            .chain(('\u{80}'..'\u{7ff}').step_by(7))
            .collect();
        let ids: Vec<String> = (0..5_000)
            .map(|_| {
                (0..1 + x % 12)
                    .map(|_| {
                        x = energy_core::hash::mix64(x);
                        wide[(x % wide.len() as u64) as usize]
                    })
                    .collect()
            })
            .collect();
        let before = WIDE.get();
        assert_sorted_as_plainly(&ids);
        assert_eq!(WIDE.get(), before + 1, "sorted by the wide keys");
    }

    #[test]
    fn a_large_shuffled_mtu_sorts_by_id_and_finds_its_first_repeated_id() {
        let n = 100_000u64;
        let shuffled: Vec<String> = (0..n).map(|i| format!("s{:07}", (i * 7_919) % n)).collect();
        assert_sorted_as_plainly(&shuffled);
        let mut repeated = shuffled.clone();
        repeated[90_000] = repeated[70_000].clone();
        repeated[95_000] = repeated[10].clone();
        assert_sorted_as_plainly(&repeated);
        assert_eq!(mtu(&repeated).id_order().1, Some(90_000));
    }
}
