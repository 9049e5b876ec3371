//! The whole-table bloom filter: cache-line blocked (RocksDB's
//! FastLocalBloom), so each probe costs one cache miss.
//!
//! ```text
//! filter block contents (always stored uncompressed):
//! +-------------+---------------------------------+-------------------------------+
//! | pad: 0..63  | lines: num_lines × 64 bytes     | meta: 8 bytes                 |
//! | zero bytes  | (bit i of a line = byte i/8,    | num_lines: u32 LE             |
//! |             |  bit i%8, LSB first)            | num_probes: u8 | pad_len: u8  |
//! |             |                                 | kind: u8 (=1)  | reserved: u8 |
//! +-------------+---------------------------------+-------------------------------+
//! ```
//! The builder picks `pad` so that the lines start at a file offset that is
//! a multiple of 64: over a page-aligned mmap each line is one CPU cache line.
//!
//! Kind 1 = FastLocalBloom over XXH3-64 (seed 0) of the user key `h`:
//! ```text
//! line  = ((h & 0xffff_ffff) * num_lines) >> 32          (fastrange32)
//! h2    = h >> 32                                          (u32)
//! repeat num_probes times:
//!     bit = h2 >> 23                                       (0..511 within the line)
//!     set/test bit; h2 = h2 * 0x9e37_79b9 (wrapping u32)
//! ```

use bytes::Bytes;

use crate::coding::read_u32_le;
use crate::error::{Error, Result};

/// Filter kind byte: FastLocalBloom over XXH3-64.
pub const FILTER_KIND_FAST_LOCAL_BLOOM: u8 = 1;
/// Bytes per filter line (one CPU cache line).
pub const FILTER_LINE_BYTES: usize = 64;
/// Bytes of filter metadata at the end of the block.
pub const FILTER_META_LEN: usize = 8;
/// Largest probe count a reader accepts.
pub const MAX_NUM_PROBES: u8 = 30;

const PROBE_MULTIPLIER: u32 = 0x9e37_79b9;

/// The 64-bit hash of a user key that the filter uses (XXH3-64, seed 0).
#[inline]
pub fn filter_hash(user_key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(user_key)
}

/// Probe count for a bits-per-key budget (RocksDB's choice for
/// FastLocalBloom: the count that minimises the false-positive rate of a
/// 512-bit blocked filter, e.g. 6 at 10 bits/key).
pub fn num_probes_for(bits_per_key: u32) -> u8 {
    let millibits = u64::from(bits_per_key) * 1000;
    match millibits {
        0..=2080 => 1,
        2081..=3580 => 2,
        3581..=5100 => 3,
        5101..=6640 => 4,
        6641..=8300 => 5,
        8301..=10070 => 6,
        10071..=11720 => 7,
        11721..=14001 => 8,
        14002..=16050 => 9,
        16051..=18300 => 10,
        18301..=22001 => 11,
        22002..=25501 => 12,
        25502..=50000 => ((millibits - 1) / 2000 - 1) as u8,
        _ => 24,
    }
}

#[inline]
fn line_of(h: u64, num_lines: u32) -> usize {
    ((u64::from(h as u32) * u64::from(num_lines)) >> 32) as usize
}

/// Collects the hashes of a table's user keys (8 bytes per key, no key
/// copies) and lays out the filter at the end.
#[derive(Debug)]
pub(crate) struct FilterBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

impl FilterBuilder {
    pub(crate) fn new(bits_per_key: u32) -> FilterBuilder {
        FilterBuilder {
            bits_per_key,
            hashes: Vec::new(),
        }
    }

    /// Adds a user key's hash. Versions of one user key should be added once.
    #[inline]
    pub(crate) fn add_hash(&mut self, hash: u64) {
        self.hashes.push(hash);
    }

    /// Encodes the filter block for a block starting at file offset
    /// `block_offset`, appending it to `out`.
    pub(crate) fn finish_into(&self, out: &mut Vec<u8>, block_offset: u64) {
        let total_bits = (self.hashes.len() as u64).saturating_mul(u64::from(self.bits_per_key));
        let lines = total_bits
            .div_ceil(8 * FILTER_LINE_BYTES as u64)
            .clamp(1, u64::from(u32::MAX));
        let num_lines = lines as u32;
        let num_probes = num_probes_for(self.bits_per_key);
        let pad = ((FILTER_LINE_BYTES as u64 - block_offset % FILTER_LINE_BYTES as u64)
            % FILTER_LINE_BYTES as u64) as usize;
        let start = out.len();
        out.resize(start + pad + num_lines as usize * FILTER_LINE_BYTES, 0);
        let bits = out.get_mut(start + pad..).unwrap_or_default();
        for &h in &self.hashes {
            let line = line_of(h, num_lines) * FILTER_LINE_BYTES;
            let Some(line) = bits.get_mut(line..line + FILTER_LINE_BYTES) else {
                debug_assert!(false, "fastrange gave a line out of range");
                continue;
            };
            let mut h2 = (h >> 32) as u32;
            for _ in 0..num_probes {
                let bit = (h2 >> 23) as usize;
                if let Some(byte) = line.get_mut(bit >> 3) {
                    *byte |= 1 << (bit & 7);
                }
                h2 = h2.wrapping_mul(PROBE_MULTIPLIER);
            }
        }
        out.extend_from_slice(&num_lines.to_le_bytes());
        out.extend_from_slice(&[num_probes, pad as u8, FILTER_KIND_FAST_LOCAL_BLOOM, 0]);
    }
}

/// A table's bloom filter: the filter block's contents, shared.
#[derive(Clone, Debug)]
pub struct BloomFilter {
    data: Bytes,
    bits_start: usize,
    num_lines: u32,
    num_probes: u8,
}

impl BloomFilter {
    /// Parses a filter block whose contents start at file offset
    /// `file_offset`; every field is checked against the block length.
    pub fn parse(data: Bytes, file_offset: u64) -> Result<BloomFilter> {
        let bad = |reason: &str| Error::corruption(file_offset, format!("filter block: {reason}"));
        let meta_pos = data
            .len()
            .checked_sub(FILTER_META_LEN)
            .ok_or_else(|| bad("shorter than its metadata"))?;
        let num_lines = read_u32_le(&data, meta_pos).unwrap_or(0);
        let meta = data.get(meta_pos + 4..).unwrap_or_default();
        let &[num_probes, pad, kind, reserved] = meta else {
            return Err(bad("metadata truncated"));
        };
        if kind != FILTER_KIND_FAST_LOCAL_BLOOM || reserved != 0 {
            return Err(bad("unknown filter kind"));
        }
        if num_probes == 0 || num_probes > MAX_NUM_PROBES {
            return Err(bad("probe count out of range"));
        }
        if num_lines == 0 || pad as usize >= FILTER_LINE_BYTES {
            return Err(bad("line count or padding out of range"));
        }
        let expected = (num_lines as u64)
            .checked_mul(FILTER_LINE_BYTES as u64)
            .and_then(|n| n.checked_add(pad as u64 + FILTER_META_LEN as u64));
        if expected != Some(data.len() as u64) {
            return Err(bad("size does not match its line count"));
        }
        Ok(BloomFilter {
            data,
            bits_start: pad as usize,
            num_lines,
            num_probes,
        })
    }

    /// Bytes of memory it holds (the block cache's charge).
    pub fn charge(&self) -> usize {
        self.data.len()
    }

    /// False only when `user_key` was certainly not added.
    #[inline]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(filter_hash(user_key))
    }

    /// [`BloomFilter::may_contain`] for a precomputed [`filter_hash`].
    #[inline]
    pub fn may_contain_hash(&self, h: u64) -> bool {
        let start = self.bits_start + line_of(h, self.num_lines) * FILTER_LINE_BYTES;
        let Some(line) = self.data.get(start..start + FILTER_LINE_BYTES) else {
            return true;
        };
        let Ok(line) = <&[u8; FILTER_LINE_BYTES]>::try_from(line) else {
            return true;
        };
        let mut h2 = (h >> 32) as u32;
        for _ in 0..self.num_probes {
            let bit = (h2 >> 23) as usize;
            // bit >> 3 < 64: indexing a [u8; 64] cannot fail.
            if line[bit >> 3] & (1 << (bit & 7)) == 0 {
                return false;
            }
            h2 = h2.wrapping_mul(PROBE_MULTIPLIER);
        }
        true
    }

    /// Number of 64-byte lines.
    pub fn num_lines(&self) -> u32 {
        self.num_lines
    }

    /// Bits tested per lookup.
    pub fn num_probes(&self) -> u8 {
        self.num_probes
    }

    /// Zero bytes before the first line.
    pub fn padding(&self) -> usize {
        self.bits_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(n: u64, bits_per_key: u32, block_offset: u64) -> BloomFilter {
        let mut fb = FilterBuilder::new(bits_per_key);
        for i in 0..n {
            fb.add_hash(filter_hash(&i.to_be_bytes()));
        }
        let mut out = Vec::new();
        fb.finish_into(&mut out, block_offset);
        BloomFilter::parse(Bytes::from(out), block_offset).unwrap()
    }

    #[test]
    fn probe_counts() {
        assert_eq!(num_probes_for(1), 1);
        assert_eq!(num_probes_for(10), 6);
        assert_eq!(num_probes_for(16), 9);
        assert_eq!(num_probes_for(30), 13);
        assert_eq!(num_probes_for(64), 24);
        for b in 1..=64 {
            assert!((1..=MAX_NUM_PROBES).contains(&num_probes_for(b)));
        }
    }

    #[test]
    fn false_positive_rate_at_10_bits_per_key() {
        let n = 100_000u64;
        let filter = build(n, 10, 12_345);
        assert_eq!(
            (12_345 + filter.padding()) % FILTER_LINE_BYTES,
            0,
            "lines aligned"
        );
        for i in 0..n {
            assert!(
                filter.may_contain(&i.to_be_bytes()),
                "false negative for {i}"
            );
        }
        let probes = 1_000_000u64;
        let fp = (n..n + probes)
            .filter(|i| filter.may_contain(&i.to_be_bytes()))
            .count();
        let rate = fp as f64 / probes as f64;
        println!(
            "bloom: {} keys, 10 bits/key, {} probes/key, measured false-positive rate {:.3}%",
            n,
            filter.num_probes(),
            rate * 100.0
        );
        assert!(rate <= 0.015, "false-positive rate {rate}");
    }

    #[test]
    fn empty_filter_rejects_everything_mostly() {
        let filter = build(0, 10, 0);
        assert_eq!(filter.num_lines(), 1);
        assert!(!filter.may_contain(b"anything"));
    }

    #[test]
    fn parse_rejects_inconsistent_metadata() {
        let mut good = Vec::new();
        let mut fb = FilterBuilder::new(10);
        fb.add_hash(1);
        fb.finish_into(&mut good, 3);
        BloomFilter::parse(Bytes::from(good.clone()), 3).unwrap();
        let meta = good.len() - FILTER_META_LEN;
        let mutations: Vec<(usize, u8)> = vec![
            (meta, 2),      // num_lines 2
            (meta + 4, 0),  // zero probes
            (meta + 4, 31), // too many probes
            (meta + 5, 64), // padding too large
            (meta + 6, 2),  // unknown kind
            (meta + 7, 1),  // reserved set
        ];
        for (pos, v) in mutations {
            let mut bad = good.clone();
            bad[pos] = v;
            assert!(
                BloomFilter::parse(Bytes::from(bad), 3).is_err(),
                "pos {pos} = {v}"
            );
        }
        assert!(BloomFilter::parse(Bytes::from(good[1..].to_vec()), 3).is_err());
        assert!(BloomFilter::parse(Bytes::from_static(&[1, 2, 3]), 3).is_err());
    }
}
