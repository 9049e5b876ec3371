//! Fragment checksums and their masking.
//!
//! A crc stored next to the data it covers is masked, as LevelDB does: computing
//! the crc of a byte string that itself contains embedded crcs (a log stored
//! inside a record, say) is otherwise prone to producing degenerate values.

/// Added after the rotation; LevelDB's constant.
const MASK_DELTA: u32 = 0xa282_ead8;

/// Masks a crc32 for storage: rotate right by 15 bits, then add a constant.
///
/// ```
/// // crc32("123456789") is 0xcbf43926, the standard check value.
/// assert_eq!(strata_wal::mask_crc(0xcbf4_3926), 0x14d0_82c0);
/// ```
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverse of [`mask_crc`]: recovers the crc32 from its stored form.
///
/// ```
/// assert_eq!(strata_wal::unmask_crc(0x14d0_82c0), 0xcbf4_3926);
/// ```
pub fn unmask_crc(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

/// The masked checksum of a fragment: crc32 over the type byte, then the payload.
pub(crate) fn fragment_crc(type_byte: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[type_byte]);
    hasher.update(payload);
    mask_crc(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(
        clippy::manual_rotate,
        reason = "spells out LevelDB's formula to check rotate_right against it"
    )]
    fn mask_matches_leveldb_formula() {
        for crc in [0u32, 1, 0xcbf4_3926, 0xffff_ffff, 0x8000_0000, 0x0001_7fff] {
            let formula = ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8);
            assert_eq!(mask_crc(crc), formula);
        }
    }

    #[test]
    fn hand_computed_mask() {
        // 0xcbf43926 >> 15 = 0x000197e8; << 17 keeps the low 15 bits 0x3926 -> 0x724c0000;
        // or'ed 0x724d97e8; + 0xa282ead8 = 0x1_14d0_82c0, wrapped to 0x14d082c0.
        assert_eq!(mask_crc(0xcbf4_3926), 0x14d0_82c0);
        assert_eq!(unmask_crc(0x14d0_82c0), 0xcbf4_3926);
        // The crc of the type byte alone (an empty FULL record): 0xa505df1b -> 0x60ba34e3.
        assert_eq!(fragment_crc(1, b""), 0x60ba_34e3);
    }

    #[test]
    fn masking_changes_the_value_and_unmask_inverts_it() {
        let mut crc = 0x1234_5678u32;
        for _ in 0..10_000 {
            assert_eq!(unmask_crc(mask_crc(crc)), crc);
            assert_ne!(mask_crc(crc), crc);
            crc = crc.wrapping_mul(2_654_435_761).wrapping_add(1);
        }
    }
}
