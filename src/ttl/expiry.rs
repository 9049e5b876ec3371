//! The value of a `PutWithExpiry` entry, in the WAL, the memtable and
//! tables alike:
//!
//! ```text
//! +---------------------------+------------------+
//! | expiry: u64 LE, micros    | the user's value |
//! | since the Unix epoch      |                  |
//! +---------------------------+------------------+
//!   8 bytes (EXPIRY_LEN)
//! ```

/// Bytes of the expiry prefix.
pub(crate) const EXPIRY_LEN: usize = 8;

/// `expiry ++ value` appended to `out`.
pub(crate) fn encode_expiring(out: &mut Vec<u8>, expiry_micros: u64, value: &[u8]) {
    out.reserve(EXPIRY_LEN + value.len());
    out.extend_from_slice(&expiry_micros.to_le_bytes());
    out.extend_from_slice(value);
}

/// The expiry and the user's value of an expiring entry's stored value;
/// `None` when it is shorter than the prefix (damage).
#[inline]
pub(crate) fn split_expiring(stored: &[u8]) -> Option<(u64, &[u8])> {
    let (prefix, value) = stored.split_first_chunk::<EXPIRY_LEN>()?;
    Some((u64::from_le_bytes(*prefix), value))
}

/// An expiring entry's user value, `None` once expired at `now` (an
/// expired version hides older ones as a delete does: docs/design/ttl.md);
/// a stored value shorter than its expiry is corruption seen by `reader`.
#[inline]
pub(crate) fn unexpired_value<'a>(
    stored: &'a [u8],
    now: u64,
    reader: &str,
) -> crate::error::Result<Option<&'a [u8]>> {
    match split_expiring(stored) {
        Some((expiry, value)) => Ok((now < expiry).then_some(value)),
        None => Err(crate::error::Error::corruption(
            reader,
            0,
            "an expiring value shorter than its expiry",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiring_value_round_trips_and_a_short_one_is_refused() {
        let mut stored = Vec::new();
        encode_expiring(&mut stored, 0x0102_0304_0506_0708, b"value");
        assert_eq!(&stored[..8], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(
            split_expiring(&stored),
            Some((0x0102_0304_0506_0708, &b"value"[..]))
        );
        assert_eq!(split_expiring(&stored[..7]), None);
        assert_eq!(
            split_expiring(&stored[..8]),
            Some((0x0102_0304_0506_0708, &b""[..]))
        );
    }
}
