//! LEB128 varints, as LevelDB encodes lengths and numbers.

pub fn put_varint64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decode a varint from the front of `input`: the value and the bytes it
/// took, or `None` if it is truncated or longer than a u64 allows.
pub fn get_varint64(input: &[u8]) -> Option<(u64, usize)> {
    let mut result = 0u64;
    for (i, &byte) in input.iter().enumerate().take(10) {
        let shift = 7 * i as u32;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return None;
        }
        result |= bits << shift;
        if byte & 0x80 == 0 {
            return Some((result, i + 1));
        }
    }
    None
}

/// Put a length-prefixed byte string.
pub fn put_length_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Take a length-prefixed byte string from the front of `input`: the
/// string and the bytes consumed.
pub fn get_length_prefixed(input: &[u8]) -> Option<(&[u8], usize)> {
    let (len, n) = get_varint64(input)?;
    let len = usize::try_from(len).ok()?;
    let end = n.checked_add(len)?;
    Some((input.get(n..end)?, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(v: u64) {
            let mut buf = Vec::new();
            put_varint64(&mut buf, v);
            prop_assert_eq!(get_varint64(&buf), Some((v, buf.len())));
            prop_assert_eq!(get_varint64(&buf[..buf.len() - 1]), None);
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        assert_eq!(get_varint64(&[0xff; 11]), None);
        assert_eq!(
            get_varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
    }
}
