//! Parsing one fragment at a file position, without trusting any byte of it.

use crate::checksum::fragment_crc;
use crate::error::CorruptionReason;
use crate::format::{block_remaining, RecordType, HEADER_SIZE};

/// What lies at a file position where a fragment header is expected.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// A checksum-valid fragment of type FULL, FIRST, MIDDLE, LAST or SYNC_POINT.
    Fragment {
        record_type: RecordType,
        payload: &'a [u8],
        /// Position just past the payload.
        end: usize,
    },
    /// Fewer than `HEADER_SIZE` bytes left in the block: padding up to the
    /// next block start, which may lie past the end of the file.
    Padding { next_block: usize },
    /// Nothing left.
    EndOfFile,
    /// The file ends within the header.
    TruncatedHeader,
    /// The length fits the block but runs past the end of the file.
    TruncatedPayload { length: u16, available: usize },
    /// A type byte, length or checksum that cannot be right.
    Damaged { reason: CorruptionReason },
}

/// Parses the fragment header at `pos` and checks it. Never panics and never
/// allocates, whatever `data` holds.
pub(crate) fn parse_at(data: &[u8], pos: usize) -> Parsed<'_> {
    let Some(rest) = data.get(pos..) else {
        return Parsed::EndOfFile;
    };
    if rest.is_empty() {
        return Parsed::EndOfFile;
    }
    let block_room = block_remaining(pos as u64);
    if block_room < HEADER_SIZE {
        return Parsed::Padding {
            next_block: pos.saturating_add(block_room),
        };
    }
    let Some(&[c0, c1, c2, c3, l0, l1, type_byte]) = rest.get(..HEADER_SIZE) else {
        return Parsed::TruncatedHeader;
    };
    let length = u16::from_le_bytes([l0, l1]);
    let payload_end = HEADER_SIZE + usize::from(length);
    let record_type = match RecordType::from_u8(type_byte) {
        Some(RecordType::Zero) | None => {
            return Parsed::Damaged {
                reason: CorruptionReason::BadRecordType(type_byte),
            }
        }
        Some(record_type) => record_type,
    };
    if payload_end > block_room {
        return Parsed::Damaged {
            reason: CorruptionReason::BadLength {
                length,
                room: block_room - HEADER_SIZE,
            },
        };
    }
    let Some(payload) = rest.get(HEADER_SIZE..payload_end) else {
        return Parsed::TruncatedPayload {
            length,
            available: rest.len() - HEADER_SIZE,
        };
    };
    let stored = u32::from_le_bytes([c0, c1, c2, c3]);
    let computed = fragment_crc(type_byte, payload);
    if stored != computed {
        return Parsed::Damaged {
            reason: CorruptionReason::ChecksumMismatch { stored, computed },
        };
    }
    Parsed::Fragment {
        record_type,
        payload,
        end: pos + payload_end,
    }
}

/// What a fragment header claims, for reasoning about a damaged fragment:
/// its type (if the type byte is one a writer writes) and where it would end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    /// `None` for type byte 0 (zeroed space) and bytes no writer uses.
    pub(crate) record_type: Option<RecordType>,
    /// The two length bytes as stored (little-endian).
    pub(crate) length_bytes: [u8; 2],
    pub(crate) extent: Extent,
}

/// Where a header says its fragment ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Extent {
    /// Within its block and the file, at this position.
    Within { end: usize },
    /// Within its block, past the end of the file.
    PastFile,
    /// Past the end of its block: no writer writes that.
    PastBlock,
}

/// The claim of the header at `pos`, checked for nothing (not even the
/// checksum); `None` if no whole header fits there (the end of the file, or
/// block-tail padding).
pub(crate) fn claim_at(data: &[u8], pos: usize) -> Option<Claim> {
    let header = data.get(pos..)?.get(..HEADER_SIZE)?;
    let block_room = block_remaining(pos as u64);
    if block_room < HEADER_SIZE {
        return None;
    }
    let length_bytes = [header[4], header[5]];
    let payload_end = HEADER_SIZE + usize::from(u16::from_le_bytes(length_bytes));
    let extent = if payload_end > block_room {
        Extent::PastBlock
    } else if payload_end > data.len() - pos {
        Extent::PastFile
    } else {
        Extent::Within {
            end: pos + payload_end,
        }
    };
    Some(Claim {
        record_type: RecordType::from_u8(header[6]).filter(|&t| t != RecordType::Zero),
        length_bytes,
        extent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::BLOCK_SIZE;

    #[test]
    fn claim_reads_type_and_extent_without_checking_the_checksum() {
        let mut log = Vec::new();
        crate::encode_record(&mut log, 0, &[9u8; 300]);
        log[0] ^= 1; // checksum no longer matches
        let claim = claim_at(&log, 0).unwrap();
        assert_eq!(claim.record_type, Some(RecordType::Full));
        assert_eq!(claim.length_bytes, [44, 1]);
        assert_eq!(claim.extent, Extent::Within { end: 307 });
        assert_eq!(claim_at(&log[..306], 0).unwrap().extent, Extent::PastFile);
        log[5] = 0x80; // 32812 bytes: more than a block holds
        assert_eq!(claim_at(&log, 0).unwrap().extent, Extent::PastBlock);
        log[6] = 0;
        assert_eq!(claim_at(&log, 0).unwrap().record_type, None);
        log[6] = 200;
        assert_eq!(claim_at(&log, 0).unwrap().record_type, None);
        assert_eq!(claim_at(&log, 301), None, "no whole header left");
        let padding = vec![0u8; BLOCK_SIZE];
        assert_eq!(claim_at(&padding, BLOCK_SIZE - 6), None);
    }
}
