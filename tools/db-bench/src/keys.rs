//! Keys as db_bench makes them: the key's index, big-endian, in the first
//! (up to) 8 bytes, the rest padded with ASCII `'0'`.
//!
//! ```text
//!  0               8                key_size
//!  +---------------+----------------+
//!  | index (BE u64)| '0' '0' ... '0'|
//!  +---------------+----------------+
//! ```
//!
//! Sorting keys sorts indexes, so `fillseq` writes in key order.

use crate::rng::Rng;

/// A reusable key buffer: `set` rewrites the index bytes in place, so
/// making a key allocates nothing.
pub struct KeyBuf {
    buf: Vec<u8>,
    index_bytes: usize,
}

impl KeyBuf {
    pub fn new(key_size: usize) -> Self {
        KeyBuf {
            buf: vec![b'0'; key_size],
            index_bytes: key_size.min(8),
        }
    }

    /// The key for index `v`.
    #[inline]
    pub fn set(&mut self, v: u64) -> &[u8] {
        let n = self.index_bytes;
        let be = v.to_be_bytes();
        self.buf[..n].copy_from_slice(&be[8 - n..]);
        &self.buf
    }
}

/// The order a fill benchmark visits key indexes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrder {
    /// 0, 1, 2, ...
    Sequential,
    /// Uniformly random in `0..num`, repeats allowed.
    Random,
    /// A random permutation of `0..num`: every key once.
    UniqueRandom,
}

/// Produces key indexes in one [`KeyOrder`].
pub struct KeyGen<'a> {
    order: KeyOrder,
    num: u64,
    next: u64,
    permutation: &'a [u64],
}

impl<'a> KeyGen<'a> {
    /// `permutation` is used (and required) only for `UniqueRandom`.
    pub fn new(order: KeyOrder, num: u64, permutation: &'a [u64]) -> Self {
        KeyGen {
            order,
            num: num.max(1),
            next: 0,
            permutation,
        }
    }

    #[inline]
    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        match self.order {
            KeyOrder::Sequential => {
                self.next += 1;
                self.next - 1
            }
            KeyOrder::Random => rng.uniform(self.num),
            KeyOrder::UniqueRandom => {
                // More writes than keys (`--writes > --num`) start the
                // permutation over rather than fail.
                let i = (self.next % self.permutation.len().max(1) as u64) as usize;
                self.next += 1;
                self.permutation.get(i).copied().unwrap_or(i as u64)
            }
        }
    }
}

/// A random permutation of `0..num` (Fisher-Yates), the same for every
/// engine given the same seed.
pub fn permutation(num: u64, seed: u64) -> Vec<u64> {
    let mut values: Vec<u64> = (0..num).collect();
    let mut rng = Rng::new(seed);
    for i in (1..values.len()).rev() {
        let j = rng.uniform(i as u64 + 1) as usize;
        values.swap(i, j);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout_matches_db_bench() {
        let mut k = KeyBuf::new(16);
        assert_eq!(k.set(0x0102), b"\0\0\0\0\0\0\x01\x0200000000");
        let mut short = KeyBuf::new(4);
        assert_eq!(short.set(0x0102_0304_0506), [3, 4, 5, 6]);
    }

    #[test]
    fn keys_sort_like_their_indexes() {
        let mut k = KeyBuf::new(16);
        let a = k.set(255).to_vec();
        let b = k.set(256).to_vec();
        assert!(a < b);
    }

    #[test]
    fn unique_random_visits_every_key_once() {
        let perm = permutation(1000, 9);
        let mut gen = KeyGen::new(KeyOrder::UniqueRandom, 1000, &perm);
        let mut rng = Rng::new(0);
        let mut seen = vec![false; 1000];
        for _ in 0..1000 {
            let v = gen.next(&mut rng) as usize;
            assert!(!seen[v]);
            seen[v] = true;
        }
    }
}
