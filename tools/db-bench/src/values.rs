//! Values as db_bench makes them: slices of a 1 MiB pool built from short
//! random fragments, each repeated so that it compresses to
//! `--compression_ratio` of its size.
//!
//! The pool is filled with LevelDB's Lehmer generator seeded with 301, as
//! db_bench does, so the bytes (and how well they compress) match a RocksDB
//! run. One pool is shared by all threads and engines; each thread walks it
//! with its own offset.

use std::sync::Arc;

/// LevelDB's `Random`: the Park-Miller minimal standard generator.
struct Lehmer {
    seed: u32,
}

impl Lehmer {
    const M: u32 = 2_147_483_647; // 2^31 - 1
    const A: u64 = 16_807;

    fn new(s: u32) -> Self {
        let mut seed = s & 0x7fff_ffff;
        if seed == 0 || seed == Self::M {
            seed = 1;
        }
        Lehmer { seed }
    }

    fn next(&mut self) -> u32 {
        let product = u64::from(self.seed) * Self::A;
        // (product % M) without the division: M = 2^31 - 1.
        let mut seed = ((product >> 31) + (product & u64::from(Self::M))) as u32;
        if seed > Self::M {
            seed -= Self::M;
        }
        self.seed = seed;
        seed
    }

    fn uniform(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

/// A `len`-byte string that compresses to about `ratio` of its size:
/// `len * ratio` random printable bytes, repeated.
fn compressible_fragment(rnd: &mut Lehmer, ratio: f64, len: usize, out: &mut Vec<u8>) {
    let raw = ((len as f64 * ratio) as usize).max(1);
    let fragment: Vec<u8> = (0..raw).map(|_| b' ' + rnd.uniform(95) as u8).collect();
    let start = out.len();
    while out.len() - start < len {
        out.extend_from_slice(&fragment);
    }
    out.truncate(start + len);
}

/// The shared pool of value bytes.
pub struct ValuePool {
    data: Vec<u8>,
}

impl ValuePool {
    /// A pool of at least 1 MiB and at least `value_size` bytes.
    pub fn new(compression_ratio: f64, value_size: usize) -> Arc<Self> {
        let target = (1 << 20).max(value_size);
        let mut rnd = Lehmer::new(301);
        let mut data = Vec::with_capacity(target + 100);
        while data.len() < target {
            compressible_fragment(&mut rnd, compression_ratio, 100, &mut data);
        }
        Arc::new(ValuePool { data })
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.data.len()
    }
}

/// One thread's cursor into the pool.
pub struct ValueGen {
    pool: Arc<ValuePool>,
    pos: usize,
}

impl ValueGen {
    pub fn new(pool: &Arc<ValuePool>) -> Self {
        ValueGen {
            pool: Arc::clone(pool),
            pos: 0,
        }
    }

    /// The next `len` bytes of the pool (wrapping to its start).
    /// REQUIRES: `len <= pool.len()`.
    #[inline]
    pub fn generate(&mut self, len: usize) -> &[u8] {
        let data = &self.pool.data;
        debug_assert!(len <= data.len(), "value larger than the pool");
        if self.pos + len > data.len() {
            self.pos = 0;
        }
        self.pos += len;
        &data[self.pos - len..self.pos]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lehmer_matches_leveldb() {
        // LevelDB's Random(301): the first outputs of the minimal standard
        // generator, 301 * 16807^k mod (2^31 - 1).
        let mut r = Lehmer::new(301);
        let mut expected = 301u64;
        for _ in 0..5 {
            expected = expected * 16_807 % 2_147_483_647;
            assert_eq!(u64::from(r.next()), expected);
        }
    }

    #[test]
    fn values_compress_to_the_ratio() {
        let pool = ValuePool::new(0.5, 100);
        let mut gen = ValueGen::new(&pool);
        let mut sample = Vec::new();
        for _ in 0..1000 {
            sample.extend_from_slice(gen.generate(100));
        }
        let compressed = zstd::bulk::compress(&sample, 3).unwrap();
        let ratio = compressed.len() as f64 / sample.len() as f64;
        assert!((0.4..0.65).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn generate_wraps_around() {
        let pool = ValuePool::new(0.5, 100);
        let mut gen = ValueGen::new(&pool);
        for _ in 0..(pool.len() / 100 + 10) {
            assert_eq!(gen.generate(100).len(), 100);
        }
    }
}
