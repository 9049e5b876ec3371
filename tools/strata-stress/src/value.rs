//! Keys and values of the stress workload. A value says which key it
//! belongs to, which write of that key made it (the key's generation), and
//! which batch wrote it, and ends with a checksum, so any wrong read (a
//! value of another key, an old or torn value) is detected.
//!
//! ```text
//! +---------+---------+-----------+--------------+-------------+--------+
//! | key u32 | gen u32 | batch u64 | fill_len u32 | fill        | crc32  |
//! +---------+---------+-----------+--------------+-------------+--------+
//! ```
//! All integers little-endian; the crc covers everything before it; the
//! fill is a pattern drawn from the key and generation. The writer picks
//! the fill length (0 bytes to about 1 MiB, `ValueSizes`).
//!
//! Two edge cases the engine must handle are in every run: key 0 is the
//! empty key, and one write in 32 (chosen by a hash of its key, generation
//! and batch) stores an empty value. An empty value cannot say which write
//! made it: a read of one is right when the expected write is one of those.

use crate::rng::Rng;

/// The key for index `index`: the empty key for 0, then fixed width, so
/// byte order is index order.
pub fn key(index: u32) -> Vec<u8> {
    if index == 0 {
        return Vec::new();
    }
    format!("k{index:08}").into_bytes()
}

/// The index a key names, or `None` for a key the workload never writes.
pub fn key_index(key: &[u8]) -> Option<u32> {
    if key.is_empty() {
        return Some(0);
    }
    let digits = key.strip_prefix(b"k")?;
    if digits.len() != 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .filter(|&i| i > 0)
}

/// What a value records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueId {
    pub key: u32,
    pub gen: u32,
    pub batch: u64,
}

const HEADER_BYTES: usize = 20;
const CRC_BYTES: usize = 4;
/// The largest value written: 1 MiB.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

fn mix(id: &ValueId) -> u64 {
    let h = u64::from(id.key).wrapping_mul(0x9e37_79b9)
        ^ u64::from(id.gen).wrapping_mul(0x85eb_ca6b)
        ^ id.batch.wrapping_mul(0xc2b2_ae35);
    let h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

/// Whether the write `id` stores an empty value.
pub fn is_empty_value(id: &ValueId) -> bool {
    mix(id).is_multiple_of(32)
}

/// How long values are: most small, some medium, a few large.
#[derive(Debug, Clone, Copy)]
pub struct ValueSizes {
    /// One value in this many is 1-16 KiB (0: none).
    pub medium_one_in: u64,
    /// One value in this many is 64 KiB-1 MiB (0: none).
    pub large_one_in: u64,
}

impl ValueSizes {
    /// A fill length: 0-160 bytes, or medium or large as configured.
    pub fn pick_fill(&self, rng: &mut Rng) -> usize {
        if self.large_one_in > 0 && rng.one_in(self.large_one_in) {
            // Log-uniform from 64 KiB to the maximum.
            let max = MAX_VALUE_BYTES - HEADER_BYTES - CRC_BYTES;
            let bits = 16 + rng.below(5) as u32; // 64 KiB .. 1 MiB
            let lo = 1usize << bits;
            (lo + rng.below(lo as u64) as usize).min(max)
        } else if self.medium_one_in > 0 && rng.one_in(self.medium_one_in) {
            1024 + rng.below(15 * 1024) as usize
        } else {
            rng.below(161) as usize
        }
    }
}

/// The value of write `id` with `fill` filler bytes (empty for one write
/// in 32, whatever `fill` is).
pub fn encode(id: &ValueId, fill: usize) -> Vec<u8> {
    if is_empty_value(id) {
        return Vec::new();
    }
    let mut v = Vec::with_capacity(HEADER_BYTES + fill + CRC_BYTES);
    v.extend_from_slice(&id.key.to_le_bytes());
    v.extend_from_slice(&id.gen.to_le_bytes());
    v.extend_from_slice(&id.batch.to_le_bytes());
    v.extend_from_slice(&(fill as u32).to_le_bytes());
    let seed = id.key ^ id.gen.rotate_left(16);
    v.extend((0..fill).map(|i| filler(seed, i)));
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

fn filler(seed: u32, i: usize) -> u8 {
    (seed.wrapping_add((i as u32).wrapping_mul(31)) >> 3) as u8
}

/// Decode and check a value: `Ok(None)` for an empty value (it names no
/// write), `Err` says what is wrong with a damaged one.
pub fn decode(v: &[u8]) -> Result<Option<ValueId>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    if v.len() < HEADER_BYTES + CRC_BYTES {
        return Err(format!(
            "value of {} bytes is shorter than a header",
            v.len()
        ));
    }
    let (body, crc) = v.split_at(v.len() - CRC_BYTES);
    let u32_at = |o: usize| u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]);
    if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err("value checksum mismatch".into());
    }
    let mut batch = [0u8; 8];
    batch.copy_from_slice(&body[8..16]);
    let id = ValueId {
        key: u32_at(0),
        gen: u32_at(4),
        batch: u64::from_le_bytes(batch),
    };
    let fill = u32_at(16) as usize;
    if HEADER_BYTES + fill != body.len() {
        return Err(format!(
            "value of {} bytes says its filler is {fill} bytes",
            v.len()
        ));
    }
    let seed = id.key ^ id.gen.rotate_left(16);
    if (0..fill).any(|i| body[HEADER_BYTES + i] != filler(seed, i)) {
        return Err(format!("value filler does not match {id:?}"));
    }
    if is_empty_value(&id) {
        return Err(format!("{id:?} must be stored as an empty value"));
    }
    Ok(Some(id))
}

/// Whether `got` is the value write `want` stored.
pub fn is_value_of(want: &ValueId, got: &[u8]) -> bool {
    if is_empty_value(want) {
        got.is_empty()
    } else {
        decode(got) == Ok(Some(*want))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_damage_is_caught() {
        let mut empties = 0;
        for key in [0, 1, 77, 4095] {
            for gen in 1..200 {
                let id = ValueId {
                    key,
                    gen,
                    batch: u64::from(gen) << 20 | 5,
                };
                let fill = (gen as usize * 37) % 3000;
                let mut v = encode(&id, fill);
                assert!(is_value_of(&id, &v));
                if v.is_empty() {
                    empties += 1;
                    assert_eq!(decode(&v), Ok(None));
                    continue;
                }
                assert_eq!(decode(&v), Ok(Some(id)));
                let other = ValueId { gen: gen + 1, ..id };
                assert!(!is_value_of(&other, &v) || is_empty_value(&other));
                let at = v.len() / 2;
                v[at] ^= 1;
                assert!(decode(&v).is_err());
            }
        }
        assert!((5..60).contains(&empties), "{empties} empty values of 796");
        assert_eq!(key(0), b"");
        assert_eq!(key_index(b""), Some(0));
        assert_eq!(key_index(&key(1234)), Some(1234));
        assert_eq!(key_index(b"k00000000"), None);
        assert_eq!(key_index(b"x"), None);
    }

    #[test]
    fn value_sizes_reach_a_mebibyte() {
        let sizes = ValueSizes {
            medium_one_in: 4,
            large_one_in: 4,
        };
        let mut rng = Rng::new(3);
        let fills: Vec<usize> = (0..2000).map(|_| sizes.pick_fill(&mut rng)).collect();
        assert!(fills.contains(&0));
        assert!(fills.iter().any(|&f| f > 512 * 1024));
        assert!(fills
            .iter()
            .all(|&f| f + HEADER_BYTES + CRC_BYTES <= MAX_VALUE_BYTES));
    }
}
