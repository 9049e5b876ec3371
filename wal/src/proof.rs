//! Finding the sync points after damage: the proof that damaged bytes had
//! been synced.
//!
//! After damage at `X` the fragment boundaries that follow are unknown (a
//! damaged length hides where the next fragment starts), and trying every
//! byte position would accept bytes inside a record's payload as a sync
//! point: a user value holding a framed sync point could then turn crash
//! damage into "corruption" and stop the database from opening, a denial of
//! service by data. So the search trusts only framing: it restarts at each
//! block start after `X` (the format puts a fragment header at every block
//! start) and walks fragments forward by their lengths while they are valid,
//! moving on to the next block start at the first invalid one. A fragment
//! reached that way was written as a fragment, not as payload.
//!
//! Cost: one crc32 over every byte of the walked blocks, once per reader
//! (at its first anomaly).

use crate::format::RecordType;
use crate::format::BLOCK_SIZE;
use crate::fragment::{parse_at, Parsed};
use crate::sync_point::stated_synced_len;

/// The sync points a search found: the greatest length they state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// Whether any sync point stating a possible length was found.
    pub(crate) any: bool,
    /// The greatest length stated by a sync point that does not state more
    /// than precedes it (0 if none).
    pub(crate) synced_len: u64,
    /// The greatest length stated, including impossible statements: a
    /// checksum-valid sync point stating more bytes than precede it was not
    /// written by a correct writer, so it too proves the log damaged.
    pub(crate) greatest_stated: u64,
}

impl Found {
    /// Notes a sync point at `offset` stating `synced_len`.
    pub(crate) fn note(&mut self, offset: usize, synced_len: u64) {
        self.greatest_stated = self.greatest_stated.max(synced_len);
        if synced_len <= offset as u64 {
            self.any = true;
            self.synced_len = self.synced_len.max(synced_len);
        }
    }

    pub(crate) fn merge(&mut self, other: Found) {
        self.any |= other.any;
        self.synced_len = self.synced_len.max(other.synced_len);
        self.greatest_stated = self.greatest_stated.max(other.greatest_stated);
    }

    /// Whether the byte at `offset` is proven to have been synced.
    pub(crate) fn proves(&self, offset: usize) -> bool {
        self.greatest_stated > offset as u64
    }
}

/// The sync points reached by walking fragments from every block start
/// strictly after `after`.
pub(crate) fn sync_points_after(data: &[u8], after: usize) -> Found {
    let mut found = Found::default();
    let mut block_start = (after / BLOCK_SIZE + 1).saturating_mul(BLOCK_SIZE);
    while block_start < data.len() {
        let block_end = block_start.saturating_add(BLOCK_SIZE);
        let mut pos = block_start;
        // Fragments never cross a block, so `pos` stays within this block.
        while pos < block_end {
            let Parsed::Fragment {
                record_type,
                payload,
                end,
            } = parse_at(data, pos)
            else {
                break; // padding, the end of the file, or damage: next block
            };
            if record_type == RecordType::SyncPoint {
                if let Some(stated) = stated_synced_len(payload) {
                    found.note(pos, stated);
                }
            }
            pos = end;
        }
        block_start = block_end;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_record, encode_sync_point, SYNC_POINT_SIZE};

    #[test]
    fn only_sync_points_reached_from_a_later_block_start_count() {
        let mut log = Vec::new();
        let mut end = encode_record(&mut log, 0, b"a");
        end = encode_sync_point(&mut log, end, end); // block 0: not after 0's block
        end = encode_record(&mut log, end, &vec![b'x'; BLOCK_SIZE]); // into block 1
        let in_block_1 = end;
        end = encode_sync_point(&mut log, end, in_block_1);
        assert_eq!(sync_points_after(&log, 0).synced_len, in_block_1);
        assert!(sync_points_after(&log, 0).proves(BLOCK_SIZE));
        assert!(!sync_points_after(&log, BLOCK_SIZE).any);
        // A framed sync point inside a payload is never reached.
        let mut fake = Vec::new();
        encode_sync_point(&mut fake, 1 << 40, 1 << 40);
        let mut payload = vec![b'y'; 100];
        payload.extend_from_slice(&fake);
        encode_record(&mut log, end, &payload);
        let found = sync_points_after(&log, 0);
        assert_eq!(found.greatest_stated, in_block_1);
        assert_eq!(end - in_block_1, SYNC_POINT_SIZE as u64);
    }

    #[test]
    fn damage_in_a_block_skips_to_the_next_block_start() {
        let mut log = Vec::new();
        let mut end = encode_record(&mut log, 0, &vec![b'x'; 3 * BLOCK_SIZE]);
        let synced = end;
        end = encode_sync_point(&mut log, end, synced); // in block 3
                                                        // The block 3 walk: the LAST fragment, then the sync point. Damage the LAST.
        log[3 * BLOCK_SIZE + 10] ^= 1;
        assert!(
            !sync_points_after(&log, 0).any,
            "walk stopped at the damage"
        );
        encode_record(&mut log, end, &vec![b'z'; BLOCK_SIZE]);
        let mut next = log.len() as u64;
        next = encode_sync_point(&mut log, next, synced);
        assert!(next > 4 * BLOCK_SIZE as u64);
        let found = sync_points_after(&log, 0);
        assert!(found.any);
        assert_eq!(found.synced_len, synced);
    }

    #[test]
    fn an_impossible_statement_is_kept_apart() {
        let mut found = Found::default();
        found.note(200, 300);
        assert!(
            !found.any,
            "an impossible statement is not a sync point to rely on"
        );
        found.note(100, 50);
        assert!(found.any);
        assert_eq!(found.synced_len, 50);
        assert_eq!(found.greatest_stated, 300);
        assert!(found.proves(250));
    }
}
