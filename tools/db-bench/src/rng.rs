//! The per-thread random number generator that picks keys.
//!
//! db_bench uses `std::mt19937_64`; any fast generator with good low bits
//! serves, since keys are `next() % num`. SplitMix64 is one multiply-xorshift
//! chain per number, so the harness spends almost nothing on it. Seeds are
//! derived from `--seed` and the thread number, so two engines in one run
//! see exactly the same key sequence.

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`. REQUIRES: `n > 0`.
    #[inline]
    pub fn uniform(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "uniform(0)");
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn uniform_stays_in_range_and_covers_it() {
        let mut r = Rng::new(1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = r.uniform(10) as usize;
            seen[v] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
