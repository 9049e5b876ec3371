//! A bloom filter over the user keys of one memtable, filled as writers
//! insert (lock-free, bits set with atomic OR). A point lookup whose key
//! was never written to this memtable skips the skiplist search: a few
//! nanoseconds instead of a cache miss per skiplist level. Cache-line
//! blocked like the tables' filter: one line per key, one miss per probe.

use std::sync::atomic::{AtomicU64, Ordering};
use strata_sstable::filter_hash;

const PROBES: u32 = 6;
const PROBE_MULTIPLIER: u32 = 0x9e37_79b9;

#[repr(align(64))]
struct Line([AtomicU64; 8]);

pub(crate) struct MemBloom {
    lines: Box<[Line]>,
}

impl MemBloom {
    /// A filter of about `bytes` bytes (0: no filter, every key "may" be
    /// present).
    pub fn new(bytes: usize) -> Self {
        let n = bytes / 64;
        MemBloom {
            lines: (0..n)
                .map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    fn line(&self, h: u64) -> Option<&Line> {
        let n = self.lines.len() as u64;
        self.lines.get((((h & 0xffff_ffff) * n) >> 32) as usize)
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

    /// Record the keys of `hashes`. Each key's line is loaded first, for
    /// all of them: independent loads, whose cache misses overlap. Setting
    /// the bits right away would wait for each miss in turn (an atomic OR
    /// is a locked instruction: no later load passes it), and that wait
    /// was 15% of fillbatch's writer thread.
    fn insert_hashes(&self, hashes: &[u64]) {
        let mut loaded = 0;
        for &h in hashes {
            if let Some(line) = self.line(h) {
                loaded ^= line.0[0].load(Ordering::Relaxed);
            }
        }
        std::hint::black_box(loaded);
        for &h in hashes {
            self.insert_hash(h);
        }
    }

    fn insert_hash(&self, h: u64) {
        let Some(line) = self.line(h) else { return };
        let mut masks = [0u64; 8];
        let mut h2 = (h >> 32) as u32;
        for _ in 0..PROBES {
            let bit = h2 >> 23; // 0..512
            masks[(bit >> 6) as usize] |= 1 << (bit & 63);
            h2 = h2.wrapping_mul(PROBE_MULTIPLIER);
        }
        // One read per word, and an atomic OR only where a bit is missing
        // (an overwritten key's bits are all set already).
        for (word, mask) in line.0.iter().zip(masks) {
            if mask != 0 && word.load(Ordering::Relaxed) & mask != mask {
                word.fetch_or(mask, Ordering::Relaxed);
            }
        }
    }

    /// False only if `user_key` was certainly never inserted.
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        let h = filter_hash(user_key);
        let Some(line) = self.line(h) else {
            return true;
        };
        let mut h2 = (h >> 32) as u32;
        for _ in 0..PROBES {
            let bit = h2 >> 23;
            if line.0[(bit >> 6) as usize].load(Ordering::Relaxed) & (1 << (bit & 63)) == 0 {
                return false;
            }
            h2 = h2.wrapping_mul(PROBE_MULTIPLIER);
        }
        true
    }
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
        if self.bloom.lines.is_empty() {
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
