//! Finding the sync points after damage: the proof that damaged bytes had
//! been synced.
//!
//! After damage at `X` the fragment boundaries that follow are unknown (a
//! damaged length hides where the next fragment starts), and trying every
//! byte position would accept bytes inside a record's payload as a sync
//! point: a user value holding a framed sync point could then turn crash
//! damage into "corruption" and stop the database from opening, a denial of
//! service by data. So the search trusts only framing: it walks fragments
//! forward by their lengths while they are valid, from two kinds of start.
//! A fragment reached that way was written as a fragment, not as payload.
//!
//! - **Each block start after `X`**: the format puts a fragment header at
//!   every block start.
//! - **The end of the fragment at `X`, when that end is known** (see
//!   [`trusted_end`]): this is what proves damage by a sync point later in
//!   the damaged fragment's own block.
//!
//! # When the end of a damaged fragment is known
//! Crash damage loses bytes that were not synced, and a lost byte reads as
//! zero: a power loss drops whole 4 KiB pages of a preallocated file, and a
//! process killed inside a copy into a mapped file leaves the bytes it had
//! not stored yet. Each byte of a damaged header is therefore either the
//! byte the writer wrote or zero, in any combination: a page boundary can
//! fall between any two of its 7 bytes, and a torn copy can leave any of
//! them unstored. So a header whose type byte is nonzero has its written
//! type, but its length can be the written one with either or both bytes
//! zeroed: 0, or (a page boundary between the two length bytes, the first
//! page lost) the written length with its low byte cleared, or (a one-byte
//! hole in a torn copy) with its high byte cleared. The last two end
//! *inside* the written payload, at up to 32 KiB into bytes that in a WAL
//! are user keys and values; a walk from there would read them as framing.
//!
//! A length whose two bytes are both nonzero was written that way, so its
//! end is the written end: the walk resumes there, past the whole damaged
//! fragment, at the next written fragment (or the block end). A length with
//! a zero byte (below 256, or a multiple of 256) may have lost that byte;
//! the walk does not use it. (A length of 0 would be safe for the engine's
//! records: its end is the start of the payload, where a WAL batch starts
//! with its sequence number and count and a MANIFEST edit with a tag,
//! written by the engine, not the user. But a written zero-length fragment
//! is an empty record, or fills the last 7 bytes of a block, where the next
//! block start is walked anyway; so the crate does not rely on what
//! records hold.) The cost of the rule is that damage to a fragment shorter
//! than 256 bytes, or to a sync point (8 bytes), is proven only from a later
//! block, as before.
//!
//! A checksum-valid fragment at `X` (an orphan MIDDLE or LAST, or the
//! fragment interrupting an unfinished record) is framing the reader
//! reached from the start of the file, so the walk continues from it too.
//!
//! These rules assume lost bytes read as zero. A file system that exposes
//! stale data after a crash, or a log file reused without zeroing, defeats
//! them, as it defeats the rest of the scheme (docs/wal-format.md). And, as
//! everywhere in LevelDB's format, a fragment's length is not covered by its
//! checksum (the residual weakness docs/wal-format.md describes).
//!
//! Cost: one crc32 over every byte of the walked blocks, once per reader
//! (at its first anomaly).

use crate::format::{RecordType, BLOCK_SIZE};
use crate::fragment::{claim_at, parse_at, Extent, Parsed};
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

/// The end of the damaged fragment at `pos` if the proof walk may resume
/// there: its type byte is one a writer writes, both its length bytes are
/// nonzero (so neither was lost: see the module documentation), and the
/// length fits its block and the file.
pub(crate) fn trusted_end(data: &[u8], pos: usize) -> Option<usize> {
    let claim = claim_at(data, pos)?;
    claim.record_type?;
    match claim.extent {
        Extent::Within { end } if claim.length_bytes.iter().all(|&byte| byte != 0) => Some(end),
        _ => None,
    }
}

/// The sync points reached by walking fragments from `resume` (a position
/// known to be a fragment boundary at or after `after`: the end of the
/// fragment at `after` by [`trusted_end`], or `after` itself if it holds a
/// valid fragment; only its block is walked from there) and from every
/// block start strictly after `after`.
pub(crate) fn sync_points_after(data: &[u8], after: usize, resume: Option<usize>) -> Found {
    let mut found = Found::default();
    let next_block = (after / BLOCK_SIZE + 1).saturating_mul(BLOCK_SIZE);
    if let Some(resume) = resume.filter(|&resume| resume < next_block) {
        debug_assert!(resume >= after);
        walk_block(data, resume, &mut found);
    }
    let mut block_start = next_block;
    while block_start < data.len() {
        walk_block(data, block_start, &mut found);
        block_start = block_start.saturating_add(BLOCK_SIZE);
    }
    found
}

/// Notes the sync points met walking valid fragments from `from` to the end
/// of its block, stopping at the first position that is not a valid
/// fragment (padding, the end of the file, or damage).
fn walk_block(data: &[u8], from: usize, found: &mut Found) {
    let block_end = (from / BLOCK_SIZE + 1).saturating_mul(BLOCK_SIZE);
    let mut pos = from;
    // Fragments never cross a block, so `pos` stays within this block.
    while pos < block_end {
        let Parsed::Fragment {
            record_type,
            payload,
            end,
        } = parse_at(data, pos)
        else {
            return;
        };
        if record_type == RecordType::SyncPoint {
            if let Some(stated) = stated_synced_len(payload) {
                found.note(pos, stated);
            }
        }
        pos = end;
    }
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
        assert_eq!(sync_points_after(&log, 0, None).synced_len, in_block_1);
        assert!(sync_points_after(&log, 0, None).proves(BLOCK_SIZE));
        assert!(!sync_points_after(&log, BLOCK_SIZE, None).any);
        // A framed sync point inside a payload is never reached.
        let mut fake = Vec::new();
        encode_sync_point(&mut fake, 1 << 40, 1 << 40);
        let mut payload = vec![b'y'; 100];
        payload.extend_from_slice(&fake);
        encode_record(&mut log, end, &payload);
        let found = sync_points_after(&log, 0, None);
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
            !sync_points_after(&log, 0, None).any,
            "walk stopped at the damage"
        );
        encode_record(&mut log, end, &vec![b'z'; BLOCK_SIZE]);
        let mut next = log.len() as u64;
        next = encode_sync_point(&mut log, next, synced);
        assert!(next > 4 * BLOCK_SIZE as u64);
        let found = sync_points_after(&log, 0, None);
        assert!(found.any);
        assert_eq!(found.synced_len, synced);
    }

    #[test]
    fn the_walk_resumes_at_a_damaged_end_only_if_no_length_byte_is_zero() {
        let mut log = Vec::new();
        let end = encode_record(&mut log, 0, &[7u8; 300]); // length bytes 2c 01
        encode_sync_point(&mut log, end, end);
        log[100] ^= 1; // payload damage: the header stands
        assert_eq!(trusted_end(&log, 0), Some(307));
        let found = sync_points_after(&log, 0, trusted_end(&log, 0));
        assert!(found.proves(0));
        assert_eq!(found.synced_len, end);
        assert!(!sync_points_after(&log, 0, None).any, "no later block");
        let mut low_lost = log.clone();
        low_lost[4] = 0; // 256: may be 300 with its low byte lost
        assert_eq!(trusted_end(&low_lost, 0), None);
        let mut high_lost = log.clone();
        high_lost[5] = 0; // 44: may be 300 with its high byte lost
        assert_eq!(trusted_end(&high_lost, 0), None);
        let mut type_lost = log.clone();
        type_lost[6] = 0;
        assert_eq!(trusted_end(&type_lost, 0), None);
        assert_eq!(trusted_end(&log[..306], 0), None, "past the file");
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
