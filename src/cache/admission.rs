//! Which data blocks a full cache shard takes in: a doorkeeper (the first
//! stage of TinyLFU, Einziger, Friedman and Manes, 2017). A block missed
//! for the first time in a while is not cached; missed again before the
//! doorkeeper forgets it, it is.
//!
//! Why: with the data in the page cache and a block cache much smaller
//! than it, every lookup that misses read its block, put it in the cache
//! and evicted another, and the next lookup of that evicted block was as
//! likely as of any other. Inserting, evicting and freeing a block per
//! miss cost more than the hits it bought (docs/performance.md, "Fourth
//! pass": readrandom used 25% less CPU with no block cache at all than
//! with a 64 MiB one over 600 MB of tables). A block read twice within
//! the window is the one worth keeping, so a hot set still enters the
//! cache after its second miss; blocks read once (a uniform spread over
//! data many times the cache, a scan's blocks) go back to the reader's
//! buffer pool instead of pushing out what the cache holds. A shard with
//! room takes every block, so a cache larger than the data fills as
//! before.
//!
//! The doorkeeper is a bit per hash of a block's key, forgotten all at
//! once after as many first misses as the shard holds entries, so "a
//! while" is about one cache's worth of misses.

/// Bits per entry the shard holds: few collisions (a block taken in on
/// its first miss because another set its bit), the array being at most
/// 1/16 full.
const BITS_PER_ENTRY: usize = 16;
/// The smallest bit array.
const MIN_BITS: usize = 512;

/// A forgetful set of block-key hashes.
pub struct Doorkeeper {
    words: Box<[u64]>,
    /// Bits in `words` minus one (a power of two minus one).
    mask: u64,
    /// First misses noted since the last reset.
    noted: usize,
    /// Reset after this many.
    noted_max: usize,
}

impl Doorkeeper {
    /// A doorkeeper for a shard holding about `entries` entries.
    pub fn new(entries: usize) -> Doorkeeper {
        let bits = (entries.max(1) * BITS_PER_ENTRY)
            .next_power_of_two()
            .max(MIN_BITS);
        Doorkeeper {
            words: vec![0u64; bits / 64].into_boxed_slice(),
            mask: bits as u64 - 1,
            noted: 0,
            noted_max: entries.max(1),
        }
    }

    /// Whether the block of `hash` was missed since the doorkeeper last
    /// forgot; if not, notes it (it is let in on its next miss).
    pub fn admit(&mut self, hash: u64) -> bool {
        // The high bits: the low ones chose the shard.
        let bit = (hash >> 32 ^ hash.rotate_left(17)) & self.mask;
        let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
        let Some(w) = self.words.get_mut(word) else {
            return true;
        };
        if *w & mask != 0 {
            return true;
        }
        *w |= mask;
        self.noted += 1;
        if self.noted >= self.noted_max {
            self.words.fill(0);
            self.noted = 0;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: u64) -> u64 {
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn a_key_is_admitted_on_its_second_miss() {
        let mut d = Doorkeeper::new(100);
        assert!(!d.admit(hash(1)));
        assert!(d.admit(hash(1)));
        assert!(d.admit(hash(1)));
        assert!(!d.admit(hash(2)));
    }

    #[test]
    fn it_forgets_after_a_shards_worth_of_first_misses() {
        let mut d = Doorkeeper::new(100);
        assert!(!d.admit(hash(0)));
        assert!(d.admit(hash(0)), "noted");
        // 99 more first misses close the window (a key whose bit another
        // set is admitted without being noted).
        let (mut first_misses, mut i) = (0, 0);
        while first_misses < 99 {
            i += 1;
            first_misses += usize::from(!d.admit(hash(i)));
        }
        assert!(i - 99 < 10, "{} collisions", i - 99);
        assert!(!d.admit(hash(0)), "forgotten");
    }

    #[test]
    fn keys_seen_once_in_a_uniform_spread_mostly_stay_out() {
        // A thousand entries' worth of doorkeeper, keys drawn from a
        // hundred thousand: one miss in a hundred finds its key noted,
        // and a few in a hundred another's bit.
        let mut d = Doorkeeper::new(1000);
        let mut x = 12345u64;
        let mut admitted = 0;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            admitted += usize::from(d.admit(hash(x % 100_000)));
        }
        assert!(admitted < 10_000, "{admitted}");
    }
}
