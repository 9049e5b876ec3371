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
