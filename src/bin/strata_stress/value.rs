//! Keys and values of the stress workload. A value says which key it
//! belongs to, which write of that key made it (the key's generation), and
//! which batch wrote it, and ends with a checksum, so any wrong read (a
//! value of another key, an old or torn value) is detected.
//!
//! ```text
//! +---------+---------+-------------+------------+--------+--------+
//! | key u32 | gen u32 | batch u64   | fill_len u16| fill   | crc32  |
//! +---------+---------+-------------+------------+--------+--------+
//! ```
//! All integers little-endian; the crc covers everything before it.

/// The key for index `index`: fixed width, so byte order is index order.
pub fn key(index: u32) -> Vec<u8> {
    format!("k{index:08}").into_bytes()
}

/// The index a key names, or `None` for a key the workload never writes.
pub fn key_index(key: &[u8]) -> Option<u32> {
    let digits = key.strip_prefix(b"k")?;
    if digits.len() != 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// What a value records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueId {
    pub key: u32,
    pub gen: u32,
    pub batch: u64,
}

const HEADER_BYTES: usize = 18;

/// Filler length: mostly small, sometimes a few KiB (values that span
/// data blocks), chosen from the key and generation so it is reproducible.
fn fill_len(id: &ValueId) -> usize {
    let h =
        u64::from(id.key).wrapping_mul(0x9e37_79b9) ^ u64::from(id.gen).wrapping_mul(0x85eb_ca6b);
    let h = (h ^ (h >> 13)).wrapping_mul(0xc2b2_ae35);
    if h % 64 == 0 {
        1024 + (h >> 8) as usize % 4096
    } else {
        (h >> 8) as usize % 160
    }
}

pub fn encode(id: &ValueId) -> Vec<u8> {
    let fill = fill_len(id);
    let mut v = Vec::with_capacity(HEADER_BYTES + fill + 4);
    v.extend_from_slice(&id.key.to_le_bytes());
    v.extend_from_slice(&id.gen.to_le_bytes());
    v.extend_from_slice(&id.batch.to_le_bytes());
    v.extend_from_slice(&(fill as u16).to_le_bytes());
    let seed = id.key ^ id.gen.rotate_left(16);
    v.extend((0..fill).map(|i| (seed.wrapping_add(i as u32 * 31) >> 3) as u8));
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

/// Decode and check a value; `Err` says what is wrong with it.
pub fn decode(v: &[u8]) -> Result<ValueId, String> {
    if v.len() < HEADER_BYTES + 4 {
        return Err(format!(
            "value of {} bytes is shorter than a header",
            v.len()
        ));
    }
    let (body, crc) = v.split_at(v.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != stored {
        return Err("value checksum mismatch".into());
    }
    let u32_at = |o: usize| u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]);
    let mut batch = [0u8; 8];
    batch.copy_from_slice(&body[8..16]);
    let id = ValueId {
        key: u32_at(0),
        gen: u32_at(4),
        batch: u64::from_le_bytes(batch),
    };
    if encode(&id) != v {
        return Err(format!("value does not re-encode identically: {id:?}"));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_damage_is_caught() {
        for key in [0, 1, 77, 4095] {
            for gen in [1, 2, 1000] {
                let id = ValueId {
                    key,
                    gen,
                    batch: u64::from(gen) << 20 | 5,
                };
                let mut v = encode(&id);
                assert_eq!(decode(&v), Ok(id));
                v[5] ^= 1;
                assert!(decode(&v).is_err());
            }
        }
        assert_eq!(key_index(&key(1234)), Some(1234));
        assert_eq!(key_index(b"x"), None);
    }
}
