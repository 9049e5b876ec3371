//! The log's physical layout and its encoder.
//!
//! ```text
//!  file:   | block 0 (32 KiB) | block 1 (32 KiB) | ... | block N (may be partial) |
//!
//!  block:  | fragment | fragment | ... | fragment | tail padding (0..=6 zero bytes) |
//!
//!  fragment (HEADER_SIZE = 7 bytes of header, then the payload):
//!  +---------+---------+---------+---------+---------+---------+---------+======...=====+
//!  |        masked crc32 (u32 LE)          | length (u16 LE)   |  type   |   payload    |
//!  +---------+---------+---------+---------+---------+---------+---------+======...=====+
//!   byte 0                                   byte 4              byte 6    bytes 7..7+len
//!
//!  crc32   = crc32(type byte ++ payload), then masked (see checksum.rs)
//!  type    = FULL 1 | FIRST 2 | MIDDLE 3 | LAST 4    (0 = zeroed or preallocated space)
//!          | SYNC_POINT 144                       (not part of a record: sync_point.rs)
//!  record  = FULL
//!          | FIRST MIDDLE* LAST          (a record may span any number of blocks)
//!  log     = (record | SYNC_POINT)*      (sync points only between records)
//! ```
//!
//! A fragment never crosses a block boundary. When fewer than `HEADER_SIZE`
//! bytes remain in a block, the writer zero-fills them and the next fragment
//! starts the next block; when exactly `HEADER_SIZE` bytes remain, a
//! zero-length FIRST (or an empty FULL) fragment fills them. These rules make
//! every block start a fragment start, which is what lets a reader resynchronise
//! after damage.

use crate::checksum::fragment_crc;

/// Size of a block; fragments never cross a block boundary.
pub const BLOCK_SIZE: usize = 32 * 1024;

/// Size of a fragment header: masked crc32 (4), length (2), type (1).
pub const HEADER_SIZE: usize = 7;

/// The largest payload one fragment can carry (a fragment alone in its block).
pub const MAX_FRAGMENT_PAYLOAD: usize = BLOCK_SIZE - HEADER_SIZE;

/// `BLOCK_SIZE` as a file-offset quantity; the cast is lossless.
const BLOCK_SIZE_U64: u64 = BLOCK_SIZE as u64;

/// The type byte of a fragment header: which part of a record the fragment holds.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// Not written by the writer: zeroed or preallocated file space.
    Zero = 0,
    /// A whole record in one fragment.
    Full = 1,
    /// The first fragment of a record that continues in later fragments.
    First = 2,
    /// An inner fragment of a record (neither first nor last).
    Middle = 3,
    /// The final fragment of a record.
    Last = 4,
    /// Not part of a record: states how many bytes of the log were durably
    /// synced before it was written (see [`encode_sync_point`](crate::encode_sync_point)).
    /// 144 has bit 7 set, which RocksDB's reader treats as a type it may
    /// safely ignore, and is used by neither LevelDB (0..=4) nor RocksDB
    /// (0..=11, 130, 131).
    SyncPoint = 144,
}

impl RecordType {
    /// The type for a header's type byte, or `None` for the bytes no writer
    /// uses (5..=143 and 145..=255).
    pub fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Zero),
            1 => Some(Self::Full),
            2 => Some(Self::First),
            3 => Some(Self::Middle),
            4 => Some(Self::Last),
            144 => Some(Self::SyncPoint),
            _ => None,
        }
    }

    /// Whether a record starts with this fragment (FULL or FIRST).
    pub fn starts_record(self) -> bool {
        matches!(self, Self::Full | Self::First)
    }
}

impl std::fmt::Display for RecordType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Zero => "ZERO",
            Self::Full => "FULL",
            Self::First => "FIRST",
            Self::Middle => "MIDDLE",
            Self::Last => "LAST",
            Self::SyncPoint => "SYNC_POINT",
        })
    }
}

/// Bytes left in the block that `file_offset` falls in (1..=BLOCK_SIZE).
pub(crate) fn block_remaining(file_offset: u64) -> usize {
    // The remainder is below BLOCK_SIZE, so the cast is lossless.
    BLOCK_SIZE - (file_offset % BLOCK_SIZE_U64) as usize
}

/// The 7 header bytes of a fragment.
///
/// REQUIRES: `payload.len() <= MAX_FRAGMENT_PAYLOAD` (so the length fits in a u16).
pub(crate) fn encode_header(record_type: RecordType, payload: &[u8]) -> [u8; HEADER_SIZE] {
    debug_assert!(payload.len() <= MAX_FRAGMENT_PAYLOAD);
    let crc = fragment_crc(record_type as u8, payload).to_le_bytes();
    // Fragments fit in a block, so the length always fits in 16 bits.
    let length = (payload.len() as u16).to_le_bytes();
    [
        crc[0],
        crc[1],
        crc[2],
        crc[3],
        length[0],
        length[1],
        record_type as u8,
    ]
}

/// Pure framing, no I/O: append to `out` the framed bytes of one record whose
/// first byte lands at file offset `file_offset`.
///
/// The block position is `file_offset % BLOCK_SIZE`; if fewer than
/// [`HEADER_SIZE`] bytes remain in that block they are zero-filled first.
/// Returns the file offset just past the record, so a caller can frame several
/// records back to back (the engine's WAL buffer does) and hand them to
/// [`Writer::append_framed`](crate::Writer::append_framed).
///
/// ```
/// use strata_wal::{encode_record, BLOCK_SIZE, HEADER_SIZE};
///
/// let mut out = Vec::new();
/// let end = encode_record(&mut out, 0, b"hello");
/// assert_eq!(end, (HEADER_SIZE + 5) as u64);
/// assert_eq!(out.len(), HEADER_SIZE + 5);
///
/// // Three bytes before a block end: they are padded and the record starts the next block.
/// let mut out = Vec::new();
/// let end = encode_record(&mut out, (BLOCK_SIZE - 3) as u64, b"");
/// assert_eq!(&out[..3], &[0, 0, 0]);
/// assert_eq!(end, (BLOCK_SIZE + HEADER_SIZE) as u64);
/// ```
pub fn encode_record(out: &mut Vec<u8>, file_offset: u64, payload: &[u8]) -> u64 {
    let start_len = out.len();
    out.reserve(encoded_end(file_offset, payload.len()).saturating_sub(file_offset) as usize);
    let mut offset = file_offset;
    let mut rest = payload;
    let mut first = true;
    loop {
        let remaining = block_remaining(offset);
        if remaining < HEADER_SIZE {
            // Too small for a header: zero-fill the tail; the record starts the next block.
            out.extend_from_slice(&[0u8; HEADER_SIZE][..remaining]);
            offset += remaining as u64;
            continue;
        }
        let take = rest.len().min(remaining - HEADER_SIZE);
        let (fragment, after) = rest.split_at(take);
        let last = after.is_empty();
        let record_type = match (first, last) {
            (true, true) => RecordType::Full,
            (true, false) => RecordType::First,
            (false, false) => RecordType::Middle,
            (false, true) => RecordType::Last,
        };
        out.extend_from_slice(&encode_header(record_type, fragment));
        out.extend_from_slice(fragment);
        offset += (HEADER_SIZE + take) as u64;
        rest = after;
        first = false;
        if last {
            debug_assert_eq!(offset - file_offset, (out.len() - start_len) as u64);
            return offset;
        }
    }
}

/// The file offset just past a record of `payload_len` bytes whose first byte
/// lands at `file_offset`: what [`encode_record`] would return, without
/// encoding. Lets a caller size a buffer before framing into it.
pub fn encoded_end(file_offset: u64, payload_len: usize) -> u64 {
    let mut offset = file_offset;
    let mut rest = payload_len;
    loop {
        let remaining = block_remaining(offset);
        if remaining < HEADER_SIZE {
            offset += remaining as u64;
            continue;
        }
        let take = rest.min(remaining - HEADER_SIZE);
        offset += (HEADER_SIZE + take) as u64;
        rest -= take;
        if rest == 0 {
            return offset;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::unmask_crc;

    #[test]
    fn header_layout_matches_hand_computed_example() {
        // crc32(01 61 62 63) = 0x539d20a9 (type byte FULL, then "abc");
        // masked: (crc >> 15) | (crc << 17) = 0x0000a73a | 0x41520000 = 0x4152a73a,
        // plus 0xa282ead8 (wrapping) = 0xe3d59212, stored little-endian.
        let header = encode_header(RecordType::Full, b"abc");
        assert_eq!(header, [0x12, 0x92, 0xd5, 0xe3, 0x03, 0x00, 0x01]);
        assert_eq!(
            unmask_crc(u32::from_le_bytes([
                header[0], header[1], header[2], header[3]
            ])),
            0x539d_20a9
        );
    }

    #[test]
    fn record_spanning_blocks_uses_first_middle_last() {
        let payload = vec![7u8; 2 * BLOCK_SIZE];
        let mut out = Vec::new();
        let end = encode_record(&mut out, 0, &payload);
        assert_eq!(end, out.len() as u64);
        assert_eq!(out[6], RecordType::First as u8);
        assert_eq!(out[BLOCK_SIZE + 6], RecordType::Middle as u8);
        assert_eq!(out[2 * BLOCK_SIZE + 6], RecordType::Last as u8);
        // Three headers, no padding: full blocks leave no tail.
        assert_eq!(out.len(), payload.len() + 3 * HEADER_SIZE);
    }

    #[test]
    fn exactly_a_header_left_gets_an_empty_first_fragment() {
        let mut out = Vec::new();
        let start = (BLOCK_SIZE - HEADER_SIZE) as u64;
        let end = encode_record(&mut out, start, b"xy");
        assert_eq!(out[6], RecordType::First as u8);
        assert_eq!(&out[4..6], &[0, 0]);
        assert_eq!(out[HEADER_SIZE + 6], RecordType::Last as u8);
        assert_eq!(end, (BLOCK_SIZE + HEADER_SIZE + 2) as u64);
    }

    #[test]
    fn encoded_end_agrees_with_encode_record_at_every_tail_size() {
        for tail in 0..=HEADER_SIZE + 1 {
            for len in [0, 1, MAX_FRAGMENT_PAYLOAD, BLOCK_SIZE, 3 * BLOCK_SIZE + 5] {
                let start = (BLOCK_SIZE * 3 - tail) as u64;
                let mut out = Vec::new();
                let end = encode_record(&mut out, start, &vec![1u8; len]);
                assert_eq!(end, encoded_end(start, len), "tail {tail} len {len}");
                assert_eq!(end - start, out.len() as u64);
            }
        }
    }
}
