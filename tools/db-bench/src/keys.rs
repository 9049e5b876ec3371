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
    /// Zipf-distributed (θ = [`ZIPF_THETA`]): a few keys take most
    /// writes, as counters, sessions and hot rows do. The hot keys are
    /// spread over the key space, not clustered at its start.
    Zipf,
}

/// The Zipf distribution's skew (YCSB's `zipfian constant`): the hottest
/// key of 1M takes about 7% of the draws, the top 1,000 about 60%.
pub const ZIPF_THETA: f64 = 0.99;

/// Ranks drawn from a Zipf distribution over `0..n` (Gray et al.,
/// "Quickly generating billion-record synthetic databases", SIGMOD 1994,
/// as YCSB's `ZipfianGenerator`): rank 0 the most likely.
struct Zipf {
    n: u64,
    zeta_n: f64,
    alpha: f64,
    eta: f64,
    half_pow_theta: f64,
}

impl Zipf {
    fn new(n: u64) -> Self {
        let theta = ZIPF_THETA;
        let zeta_n: f64 = (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum();
        let zeta_2 = 1.0 + 0.5f64.powf(theta);
        Zipf {
            n,
            zeta_n,
            alpha: 1.0 / (1.0 - theta),
            eta: (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n),
            half_pow_theta: 0.5f64.powf(theta),
        }
    }

    fn rank(&self, rng: &mut Rng) -> u64 {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + self.half_pow_theta {
            return 1.min(self.n - 1);
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }
}

/// A rank's key index: ranks scattered over `0..num` by a hash, so the
/// hot keys do not sit side by side.
fn scatter(rank: u64, num: u64) -> u64 {
    let mut z = rank.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % num
}

/// Produces key indexes in one [`KeyOrder`].
pub struct KeyGen<'a> {
    order: KeyOrder,
    num: u64,
    next: u64,
    permutation: &'a [u64],
    zipf: Option<Zipf>,
}

impl<'a> KeyGen<'a> {
    /// `permutation` is used (and required) only for `UniqueRandom`.
    pub fn new(order: KeyOrder, num: u64, permutation: &'a [u64]) -> Self {
        KeyGen {
            order,
            num: num.max(1),
            next: 0,
            permutation,
            zipf: (order == KeyOrder::Zipf).then(|| Zipf::new(num.max(1))),
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
            KeyOrder::Zipf => match &self.zipf {
                Some(zipf) => scatter(zipf.rank(rng), self.num),
                None => rng.uniform(self.num),
            },
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
    fn zipf_puts_most_writes_on_few_keys() {
        let num = 100_000;
        let mut gen = KeyGen::new(KeyOrder::Zipf, num, &[]);
        let mut rng = Rng::new(7);
        let mut counts = std::collections::HashMap::<u64, u64>::new();
        let draws = 200_000;
        for _ in 0..draws {
            let k = gen.next(&mut rng);
            assert!(k < num);
            *counts.entry(k).or_default() += 1;
        }
        let mut by_count: Vec<u64> = counts.into_values().collect();
        by_count.sort_unstable_by(|a, b| b.cmp(a));
        // Uniform draws would give the top key about 10 and the top 100
        // keys about 0.5% of the draws.
        assert!(by_count[0] > draws / 20, "top key {}", by_count[0]);
        let top_100: u64 = by_count.iter().take(100).sum();
        assert!(top_100 > draws / 3, "top 100 keys {top_100}");
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
