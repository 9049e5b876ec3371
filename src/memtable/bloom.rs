//! A bloom filter over the user keys of one memtable, filled as writers
//! insert (lock-free, bits set with atomic OR). A point lookup whose key
//! was never written to this memtable skips the skiplist search: a few
//! nanoseconds instead of a cache miss per skiplist level.
//!
//! Word-blocked: all of a key's bits lie in one 64-bit word, so recording
//! a key is one locked OR (none when its bits are set already) and a
//! lookup one load. With the bits spread over a 64-byte line, as the
//! tables' filter does, a key's six bits fell in some 4.4 words, each its
//! own locked OR: the filter's insert was 11.6% of fillbatch's CPU, the
//! largest share strata's own code had in the writer. The price is the
//! false-positive rate: 0.19% at the 20 bits per key a memtable of 100-byte
//! values gets, against 0.04% with lines (both measured by the test
//! `false_positives_at_twenty_bits_per_key_are_near_the_expected_rate`);
//! a false positive costs one skiplist search that finds nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use strata_sstable::filter_hash;

/// Bits set per key: the count that minimises the false-positive rate of
/// a 64-bit block at 16 to 25 bits per key.
const PROBES: u32 = 6;

pub(crate) struct MemBloom {
    words: Box<[AtomicU64]>,
}

impl MemBloom {
    /// A filter of about `bytes` bytes (0: no filter, every key "may" be
    /// present).
    pub fn new(bytes: usize) -> Self {
        let n = bytes / 8;
        MemBloom {
            words: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The word holding the bits of the key hashed to `h`.
    fn word(&self, h: u64) -> Option<&AtomicU64> {
        let n = self.words.len() as u64;
        self.words.get((((h & 0xffff_ffff) * n) >> 32) as usize)
    }

    /// Record `user_key`. Must happen before the entry becomes visible, so
    /// a reader that can see the entry also sees its bits.
    #[cfg(test)]
    pub fn insert(&self, user_key: &[u8]) {
        self.insert_hash(filter_hash(user_key));
    }

    /// A way to record many keys (a batch's) a chunk at a time: see
    /// [`BloomAdder`]. Every key added is recorded when the adder is
    /// dropped at the latest.
    #[inline]
    pub fn adder(&self) -> BloomAdder<'_> {
        BloomAdder {
            bloom: self,
            hashes: [0; CHUNK],
            len: 0,
        }
    }

    /// Record the keys of `hashes`. Each key's word is loaded first, for
    /// all of them: independent loads, whose cache misses overlap. Setting
    /// the bits right away would wait for each miss in turn (an atomic OR
    /// is a locked instruction: no later load passes it), and that wait
    /// was 15% of fillbatch's writer thread.
    fn insert_hashes(&self, hashes: &[u64]) {
        let mut loaded = 0;
        for &h in hashes {
            if let Some(word) = self.word(h) {
                loaded ^= word.load(Ordering::Relaxed);
            }
        }
        std::hint::black_box(loaded);
        for &h in hashes {
            self.insert_hash(h);
        }
    }

    fn insert_hash(&self, h: u64) {
        let Some(word) = self.word(h) else { return };
        let mask = bit_mask(h);
        // An atomic OR only where a bit is missing (an overwritten key's
        // bits are all set already).
        if word.load(Ordering::Relaxed) & mask != mask {
            word.fetch_or(mask, Ordering::Relaxed);
        }
    }

    /// False only if `user_key` was certainly never inserted.
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        let h = filter_hash(user_key);
        let Some(word) = self.word(h) else {
            return true;
        };
        let mask = bit_mask(h);
        word.load(Ordering::Relaxed) & mask == mask
    }
}

/// The key's bits in its word: [`PROBES`] positions, six bits of the hash
/// each. The hash's lower half picks the word; its upper half, spread over
/// 64 bits by a multiply, gives the positions (six fields of the product's
/// top 36 bits).
#[inline]
fn bit_mask(h: u64) -> u64 {
    let spread = (h >> 32).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut mask = 0;
    for probe in 0..PROBES {
        mask |= 1 << ((spread >> (58 - 6 * probe)) & 63);
    }
    mask
}

/// Keys hashed: a batch's keys are recorded [`CHUNK`] at a time.
const CHUNK: usize = 16;

/// Records keys in a [`MemBloom`] a chunk at a time (see
/// `MemBloom::insert_hashes`). Keys are recorded when a chunk fills and
/// when the adder is dropped: drop it before any of their entries becomes
/// visible.
pub(crate) struct BloomAdder<'b> {
    bloom: &'b MemBloom,
    hashes: [u64; CHUNK],
    len: usize,
}

impl BloomAdder<'_> {
    #[inline]
    pub fn add(&mut self, user_key: &[u8]) {
        if self.bloom.words.is_empty() {
            return;
        }
        self.hashes[self.len] = filter_hash(user_key);
        self.len += 1;
        if self.len == CHUNK {
            self.bloom.insert_hashes(&self.hashes);
            self.len = 0;
        }
    }
}

impl Drop for BloomAdder<'_> {
    fn drop(&mut self) {
        match self.len {
            0 => {}
            // A single put: no other miss to overlap with.
            1 => self.bloom.insert_hash(self.hashes[0]),
            n => self.bloom.insert_hashes(&self.hashes[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let bloom = MemBloom::new(128 * 1024); // ~1M bits
        for i in 0..50_000u32 {
            bloom.insert(&i.to_le_bytes());
        }
        assert!((0..50_000u32).all(|i| bloom.may_contain(&i.to_le_bytes())));
        let fp = (50_000..150_000u32)
            .filter(|i| bloom.may_contain(&i.to_le_bytes()))
            .count();
        // ~20 bits per key: well under 1% false positives.
        assert!(fp < 1000, "{fp} false positives in 100k");
        assert!(MemBloom::new(0).may_contain(b"anything"));
    }

    /// All of a key's bits lie in one word, set by one OR: each insert of
    /// a new key changes exactly one word, and the words that hold bits
    /// are no more than the keys.
    #[test]
    fn each_key_sets_its_bits_in_one_word() {
        let bloom = MemBloom::new(64 * 1024);
        let snapshot = |b: &MemBloom| -> Vec<u64> {
            b.words.iter().map(|w| w.load(Ordering::Relaxed)).collect()
        };
        for i in 0..2_000u32 {
            let before = snapshot(&bloom);
            bloom.insert(&i.to_le_bytes());
            let after = snapshot(&bloom);
            let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
            assert!(changed <= 1, "key {i} changed {changed} words");
            // Six probes in 64 bits: never a single bit (the probes would
            // all coincide), at most six.
            let h = filter_hash(&i.to_le_bytes());
            assert!((2..=6).contains(&bit_mask(h).count_ones()), "key {i}");
        }
        let used = snapshot(&bloom).iter().filter(|&&w| w != 0).count();
        assert!(used <= 2_000);
    }

    /// The false-positive rate at the bits per key a memtable of 100-byte
    /// values gets (some 20): 0.19% measured here (0.04% with the bits in
    /// a 64-byte line). A filter whose probes collapsed onto few bits, or whose keys
    /// crowd few words, would be well above the bound.
    #[test]
    fn false_positives_at_twenty_bits_per_key_are_near_the_expected_rate() {
        let keys = 100_000u64;
        let bloom = MemBloom::new(keys as usize * 20 / 8);
        let mut adder = bloom.adder();
        for i in 0..keys {
            adder.add(format!("user{i:012}").as_bytes());
        }
        drop(adder);
        let probes = 1_000_000u64;
        let fp = (keys..keys + probes)
            .filter(|i| bloom.may_contain(format!("user{i:012}").as_bytes()))
            .count();
        let rate = fp as f64 / probes as f64;
        assert!(rate < 0.003, "false-positive rate {rate}");
    }

    /// Writers set bits in the same words concurrently: every key any of
    /// them added is found (an OR that lost a race would drop bits).
    #[test]
    fn concurrent_adders_lose_no_key() {
        let bloom = std::sync::Arc::new(MemBloom::new(4 * 1024)); // crowded
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let bloom = std::sync::Arc::clone(&bloom);
                std::thread::spawn(move || {
                    for chunk in 0..200u32 {
                        let mut adder = bloom.adder();
                        for j in 0..20u32 {
                            adder.add(&[t.to_le_bytes(), (chunk * 20 + j).to_le_bytes()].concat());
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for t in 0..4u32 {
            for i in 0..4000u32 {
                let key = [t.to_le_bytes(), i.to_le_bytes()].concat();
                assert!(bloom.may_contain(&key), "thread {t} key {i} lost");
            }
        }
    }

    /// Keys added through an adder, whole chunks and a partial one, are
    /// all recorded once it is dropped.
    #[test]
    fn an_adder_records_every_key_by_its_drop() {
        let bloom = MemBloom::new(128 * 1024);
        let n = 5 * CHUNK as u32 + 3;
        {
            let mut adder = bloom.adder();
            for i in 0..n {
                adder.add(&i.to_le_bytes());
            }
        }
        assert!((0..n).all(|i| bloom.may_contain(&i.to_le_bytes())));
        let fp = (n..n + 100_000)
            .filter(|i| bloom.may_contain(&i.to_le_bytes()))
            .count();
        assert!(
            fp < 100,
            "{fp} false positives in 100k: bits set for keys never added"
        );
        let one = MemBloom::new(128 * 1024);
        one.adder().add(b"a single put");
        assert!(one.may_contain(b"a single put"));
        let none = MemBloom::new(0);
        none.adder().add(b"no filter: nothing to record");
        assert!(none.may_contain(b"anything"));
    }
}
