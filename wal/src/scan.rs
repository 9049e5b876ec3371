//! The forward scan that tells a torn tail from corruption, and where
//! skip mode resynchronises.
//!
//! After damage, fragment boundaries are unknown (a damaged length hides where
//! the next fragment starts), so the scan tries every byte position. Cost: each
//! position costs an O(1) header check; only positions with a type byte in
//! 1..=4 and a length that fits their block and the file get a crc32 over their
//! payload (at most one block). On random bytes that is about 1 position in 256,
//! averaging ~11 KiB hashed, so scanning garbage hashes ~43 bytes per byte
//! scanned (a few microseconds per KiB); on a real log the scan stops at the next intact fragment, at most
//! one fragment's payload (< 32 KiB of positions) past the damage. The cache
//! below makes a reader examine each position at most once over its lifetime,
//! because reading only moves forward: the whole-reader worst case is one
//! header check per byte plus one crc per plausible header.

use crate::format::HEADER_SIZE;
use crate::fragment::is_valid_fragment_at;

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
        // A header needs HEADER_SIZE bytes, so positions past this cannot hold one.
        let last_start = data.len().checked_sub(HEADER_SIZE);
        let found = last_start.and_then(|last_start| {
            (from..=last_start).find(|&pos| is_valid_fragment_at(data, pos))
        });
        self.last = Some((from, found));
        found
    }
}
