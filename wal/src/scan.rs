//! The forward scan with which salvage (skip mode) resynchronises after damage.
//!
//! After damage, fragment boundaries are unknown (a damaged length hides where
//! the next fragment starts), so the scan tries every byte position. That is
//! right for salvage, which wants every record that checks out, but it also
//! finds framed bytes inside payloads; so the other modes never use it to
//! decide anything (they look for proof with `proof.rs`, which trusts only
//! framing reached from block starts).
//!
//! Cost: each
//! position costs an O(1) header check; only positions with a plausible type
//! byte (1..=4 or 144) and a length that fits their block and the file get a
//! crc32 over their payload (at most one block). On random bytes that is about 1 position in 200,
//! averaging ~11 KiB hashed, so scanning garbage hashes ~55 bytes per byte
//! scanned (a few microseconds per KiB); on a real log the scan stops at the next intact fragment, at most
//! one fragment's payload (< 32 KiB of positions) past the damage. The cache
//! below makes a reader examine each position at most once over its lifetime,
//! because reading only moves forward: the whole-reader worst case is one
//! header check per byte plus one crc per plausible header.

use crate::format::{RecordType, HEADER_SIZE};
use crate::fragment::{parse_at, Parsed};

/// Remembers the last scan: no valid fragment in `from..found` (or to the end
/// of the file when `found` is `None`).
#[derive(Debug, Default)]
pub(crate) struct ForwardScan {
    last: Option<(usize, Option<usize>)>,
}

impl ForwardScan {
    /// The first position at or after `from` holding a checksum-valid
    /// fragment, or `None` if there is none before the end of `data`.
    pub(crate) fn next_valid(&mut self, data: &[u8], from: usize) -> Option<usize> {
        if let Some((scanned_from, found)) = self.last {
            let covered = match found {
                Some(found) => scanned_from <= from && from <= found,
                None => scanned_from <= from,
            };
            if covered {
                return found;
            }
        }
        let found = first_valid(data, from);
        self.last = Some((from, found));
        found
    }
}

/// Candidate positions are tested a chunk of type bytes at a time: the test
/// over a whole chunk has no early exit, so it compiles to vector code, and a
/// chunk without a plausible type byte (most of them in real payloads) costs a
/// fraction of a nanosecond per byte.
const CHUNK_BYTES: usize = 32;

/// The first position at or after `from` holding a checksum-valid fragment.
pub(crate) fn first_valid(data: &[u8], from: usize) -> Option<usize> {
    // The type byte is the header's last; slicing from the first candidate's
    // type byte also drops positions too close to the end to hold a header.
    let type_bytes = data.get(from.checked_add(HEADER_SIZE - 1)?..)?;
    // FULL, FIRST, MIDDLE, LAST or SYNC_POINT
    let plausible = |byte: u8| byte.wrapping_sub(1) < 4 || byte == SYNC_POINT_TYPE;
    let mut chunk_start = from;
    for chunk in type_bytes.chunks(CHUNK_BYTES) {
        if chunk.iter().fold(0, |any, &byte| any | plausible_bit(byte)) != 0 {
            for (i, &byte) in chunk.iter().enumerate() {
                let pos = chunk_start + i;
                if plausible(byte) && matches!(parse_at(data, pos), Parsed::Fragment { .. }) {
                    return Some(pos);
                }
            }
        }
        chunk_start += chunk.len();
    }
    None
}

/// The type byte of a sync point.
const SYNC_POINT_TYPE: u8 = RecordType::SyncPoint as u8;

/// 1 if `byte` is a plausible type byte (1..=4 or 144), else 0, computed
/// without a comparison: `(byte - 1) & 0xfc` is 0 exactly for 1..=4, `byte ^
/// 144` is 0 exactly for 144, and subtracting 1 from a zero in 16 bits sets
/// bit 15. Branch- and compare-free code vectorises, and under the fuzzer's
/// compare tracing it is not traced per byte.
fn plausible_bit(byte: u8) -> u16 {
    let zero_if_record = u16::from(byte.wrapping_sub(1) & 0xfc);
    let zero_if_sync_point = u16::from(byte ^ SYNC_POINT_TYPE);
    (zero_if_record.wrapping_sub(1) | zero_if_sync_point.wrapping_sub(1)) >> 15
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_bit_marks_exactly_the_fragment_types() {
        for byte in 0..=u8::MAX {
            let plausible = (1..=4).contains(&byte) || byte == 144;
            assert_eq!(plausible_bit(byte) == 1, plausible, "{byte}");
            assert!(plausible_bit(byte) <= 1);
        }
    }

    #[test]
    fn scan_finds_the_first_valid_fragment_and_remembers_it() {
        let mut log = vec![4u8; 100]; // plausible headers, none valid
        let valid_at = log.len();
        crate::encode_record(&mut log, valid_at as u64, b"x");
        let mut scan = ForwardScan::default();
        assert_eq!(scan.next_valid(&log, 0), Some(valid_at));
        assert_eq!(
            scan.next_valid(&log, 50),
            Some(valid_at),
            "answered from the cache"
        );
        assert_eq!(scan.next_valid(&log, valid_at + 1), None);
        assert_eq!(first_valid(&log, valid_at), Some(valid_at));
        assert_eq!(first_valid(&log, usize::MAX), None);
    }
}
