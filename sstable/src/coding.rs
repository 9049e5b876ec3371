//! Varints and fixed-width little-endian integers: the primitives every
//! block, handle and footer is written in.
//!
//! Varints are LEB128 (7 bits per byte, low group first, high bit set on
//! every byte but the last), as in LevelDB and protobuf. Decoders return
//! `None` on truncation or overlong input instead of panicking.

/// Longest encoding of a `u32` varint.
pub const MAX_VARINT32_LEN: usize = 5;
/// Longest encoding of a `u64` varint.
pub const MAX_VARINT64_LEN: usize = 10;

/// Appends `v` as a varint.
#[inline]
pub fn put_varint32(out: &mut Vec<u8>, v: u32) {
    put_varint64(out, u64::from(v));
}

/// Appends `v` as a varint.
#[inline]
pub fn put_varint64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes `put_varint64(v)` writes.
#[cfg(test)]
fn varint_len(v: u64) -> usize {
    // One byte per started group of 7 significant bits; zero takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decodes a varint32 at the start of `buf`: `(value, bytes consumed)`.
/// `None` when truncated or when the value does not fit 32 bits.
#[inline]
pub fn get_varint32(buf: &[u8]) -> Option<(u32, usize)> {
    // Fast path: most lengths in a block are below 128.
    if let Some(&b) = buf.first() {
        if b < 0x80 {
            return Some((u32::from(b), 1));
        }
    }
    let (v, n) = get_varint64_bounded(buf, MAX_VARINT32_LEN)?;
    let v = u32::try_from(v).ok()?;
    Some((v, n))
}

/// Decodes a varint64 at the start of `buf`: `(value, bytes consumed)`.
#[inline]
pub fn get_varint64(buf: &[u8]) -> Option<(u64, usize)> {
    get_varint64_bounded(buf, MAX_VARINT64_LEN)
}

#[inline]
fn get_varint64_bounded(buf: &[u8], max_len: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().take(max_len).enumerate() {
        let shift = 7 * i as u32;
        let group = u64::from(b & 0x7f);
        // The tenth byte of a u64 may carry only the top bit.
        if shift == 63 && group > 1 {
            return None;
        }
        v |= group << shift;
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Reads a little-endian `u32` at `pos`, `None` if out of bounds.
#[inline]
pub fn read_u32_le(buf: &[u8], pos: usize) -> Option<u32> {
    let bytes = buf.get(pos..pos.checked_add(4)?)?;
    let arr: [u8; 4] = bytes.try_into().ok()?;
    Some(u32::from_le_bytes(arr))
}

/// Reads a little-endian `u64` at `pos`, `None` if out of bounds.
#[inline]
pub fn read_u64_le(buf: &[u8], pos: usize) -> Option<u64> {
    let bytes = buf.get(pos..pos.checked_add(8)?)?;
    let arr: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_le_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_lengths() {
        let values = [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for &v in &values {
            let mut buf = Vec::new();
            put_varint64(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "len of {v}");
            assert_eq!(get_varint64(&buf), Some((v, buf.len())));
            // Every strict prefix is truncated.
            for cut in 0..buf.len() {
                assert_eq!(get_varint64(&buf[..cut]), None);
            }
            match u32::try_from(v) {
                Ok(v32) => assert_eq!(get_varint32(&buf), Some((v32, buf.len()))),
                Err(_) => assert_eq!(get_varint32(&buf), None),
            }
        }
    }

    #[test]
    fn varint_rejects_overlong() {
        // Eleven continuation bytes never terminate within the limit.
        assert_eq!(get_varint64(&[0xff; 11]), None);
        // A tenth byte above 1 would overflow 64 bits.
        let mut buf = vec![0xff; 9];
        buf.push(0x02);
        assert_eq!(get_varint64(&buf), None);
    }

    #[test]
    fn fixed_reads_are_bounds_checked() {
        assert_eq!(read_u32_le(&[1, 0, 0, 0], 0), Some(1));
        assert_eq!(read_u32_le(&[1, 0, 0], 0), None);
        assert_eq!(read_u32_le(&[1, 0, 0, 0], usize::MAX), None);
        assert_eq!(read_u64_le(&[0; 8], 1), None);
    }
}
