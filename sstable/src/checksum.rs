//! Masked CRC-32 checksums, as stored in block trailers and the footer.
//!
//! The CRC is CRC-32 (IEEE polynomial, the one zlib and `crc32fast`
//! compute). A checksum stored next to the data it covers is *masked* the
//! LevelDB way, so that the CRC of a string that itself contains CRCs stays
//! well distributed.

/// Added after the rotation when masking (LevelDB's constant).
const MASK_DELTA: u32 = 0xa282_ead8;

/// Masks a CRC for storage: rotate right by 15 bits, add a constant.
#[inline]
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverts [`mask`].
#[inline]
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

/// Masked CRC of a block's stored contents followed by its compression
/// type byte: the value in a block trailer.
#[inline]
pub fn block_checksum(contents: &[&[u8]], compression_type: u8) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for part in contents {
        hasher.update(part);
    }
    hasher.update(&[compression_type]);
    mask(hasher.finalize())
}

/// Masked CRC of `bytes`.
#[inline]
pub fn masked_crc(bytes: &[u8]) -> u32 {
    mask(crc32fast::hash(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_leveldb_formula_and_inverts() {
        for crc in [0u32, 1, 0xdead_beef, u32::MAX] {
            // LevelDB's formula, spelled as it is there.
            #[expect(
                clippy::manual_rotate,
                reason = "checks the rotation against LevelDB's spelling"
            )]
            let expected = ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8);
            assert_eq!(mask(crc), expected);
            assert_eq!(unmask(mask(crc)), crc);
            assert_ne!(mask(crc), crc);
        }
    }

    #[test]
    fn split_contents_checksum_like_contiguous() {
        let whole = block_checksum(&[b"hello world"], 1);
        assert_eq!(block_checksum(&[b"hello", b" world"], 1), whole);
        assert_ne!(block_checksum(&[b"hello world"], 0), whole);
    }
}
