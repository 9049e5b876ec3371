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
    pub fn insert(&self, user_key: &[u8]) {
        let h = filter_hash(user_key);
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
}
