//! Sync points: fragments that state how much of their log was durably
//! synced before they were written, so a reader can tell crash damage
//! (in bytes that were never synced) from corruption (of synced bytes).
//!
//! ```text
//!  sync point (a fragment of type SYNC_POINT = 144, never part of a record):
//!  +---------------------+------------+------+---------------------------------+============+
//!  | masked crc32 (u32)  | length u16 | 144  |  synced length S (u64 LE)       |  filler... |
//!  +---------------------+------------+------+---------------------------------+============+
//!   byte 0                4            6      7                                 15
//!
//!  length >= 8: the first S bytes of this file were durably synced before
//!               this fragment was written; bytes 8.. are filler (zeros).
//!  length <  8: a block-tail filler that states nothing.
//! ```
//!
//! A sync point is a fragment like any other, so it never crosses a block.
//! When fewer than 15 bytes are left in the block, the rest of the block is
//! filled (zero padding under 7 bytes, else a filler sync point that states
//! nothing) and the sync point starts the next block. Framing a sync point
//! therefore always succeeds, at the cost of at most 14 bytes.
//!
//! A **seal** is a sync point placed at a block start (the rest of the
//! current block is filled by one sync point that states the same length).
//! A reader looking for proof after damage only trusts framing reached from
//! a block start, or from the end of the damaged fragment when its header
//! shows that end beyond doubt (see `proof.rs`), so a sync point in the
//! damaged block proves the damage only in the second case; a seal at the
//! next block start proves every byte before it, which is what a clean
//! close wants.

use crate::format::{block_remaining, encode_header, RecordType, BLOCK_SIZE, HEADER_SIZE};

/// Payload bytes of a sync point that states a synced length (a u64, little-endian).
pub const SYNC_POINT_PAYLOAD: usize = 8;

/// Bytes of a sync point on its own: header and payload.
pub const SYNC_POINT_SIZE: usize = HEADER_SIZE + SYNC_POINT_PAYLOAD;

/// Pure framing, no I/O: append to `out` a sync point stating that the first
/// `synced_len` bytes of the log were durably synced, landing at file offset
/// `file_offset`. Returns the file offset just past it.
///
/// If fewer than [`SYNC_POINT_SIZE`] bytes remain in the block, the rest of
/// the block is filled (zeros under 7 bytes, else a sync point that states
/// nothing) and the sync point starts the next block: this never returns
/// `file_offset` unchanged.
///
/// REQUIRES (the whole scheme rests on it: a reader treats damage below a
/// stated length as corruption and refuses the log):
/// - a sync of the file covering its first `synced_len` bytes **completed**
///   before these bytes are appended (a sync in progress proves nothing: a
///   power loss during it may keep this fragment and lose earlier pages);
/// - `synced_len` is a fragment boundary (the end of a record or of a sync
///   point, or a block start), as the length of any sync of whole appends is;
/// - `synced_len <= file_offset` (checked: a violation panics, because the
///   log it would write reads as corrupt).
///
/// ```
/// use strata_wal::{encode_record, encode_sync_point, SYNC_POINT_SIZE};
///
/// let mut out = Vec::new();
/// let end = encode_record(&mut out, 0, b"synced record");
/// // ... the file is synced here: its first `end` bytes are durable ...
/// let after = encode_sync_point(&mut out, end, end);
/// assert_eq!(after, end + SYNC_POINT_SIZE as u64);
/// encode_record(&mut out, after, b"next record");
/// ```
pub fn encode_sync_point(out: &mut Vec<u8>, file_offset: u64, synced_len: u64) -> u64 {
    assert!(
        synced_len <= file_offset,
        "strata-wal: a sync point at offset {file_offset} cannot state {synced_len} synced bytes"
    );
    let mut offset = file_offset;
    if block_remaining(offset) < SYNC_POINT_SIZE {
        offset = fill_block(out, offset, synced_len);
    }
    out.extend_from_slice(&encode_header(
        RecordType::SyncPoint,
        &synced_len.to_le_bytes(),
    ));
    out.extend_from_slice(&synced_len.to_le_bytes());
    offset + SYNC_POINT_SIZE as u64
}

/// Pure framing, no I/O: append to `out` a **seal**, a sync point stating
/// `synced_len` that starts a block, the rest of the current block being
/// filled first. Returns the file offset just past it. At a block start it
/// is a plain sync point; elsewhere it costs up to a block of filler.
///
/// A reader looking for proof after damage trusts only framing reached from
/// a block start or from a damaged fragment's end when its header shows it,
/// so a plain sync point may prove nothing about damage earlier in its own
/// block (a damaged sync point or short record before it); a seal proves
/// every byte below `synced_len`. REQUIRES the same as [`encode_sync_point`].
///
/// ```
/// use strata_wal::{encode_record, encode_seal, BLOCK_SIZE, SYNC_POINT_SIZE};
///
/// let mut out = Vec::new();
/// let end = encode_record(&mut out, 0, b"last record");
/// // ... synced ...
/// let sealed = encode_seal(&mut out, end, end);
/// assert_eq!(sealed, (BLOCK_SIZE + SYNC_POINT_SIZE) as u64);
/// assert_eq!(out.len() as u64, sealed);
/// ```
pub fn encode_seal(out: &mut Vec<u8>, file_offset: u64, synced_len: u64) -> u64 {
    assert!(
        synced_len <= file_offset,
        "strata-wal: a seal at offset {file_offset} cannot state {synced_len} synced bytes"
    );
    let mut offset = file_offset;
    if block_remaining(offset) < BLOCK_SIZE {
        offset = fill_block(out, offset, synced_len);
    }
    encode_sync_point(out, offset, synced_len)
}

/// The file offset just past a sync point framed at `file_offset`: what
/// [`encode_sync_point`] returns, without encoding.
pub fn sync_point_end(file_offset: u64) -> u64 {
    let room = block_remaining(file_offset);
    if room < SYNC_POINT_SIZE {
        file_offset + (room + SYNC_POINT_SIZE) as u64
    } else {
        file_offset + SYNC_POINT_SIZE as u64
    }
}

/// The file offset just past a seal framed at `file_offset`: what
/// [`encode_seal`] returns, without encoding.
pub fn seal_end(file_offset: u64) -> u64 {
    let room = block_remaining(file_offset);
    if room < BLOCK_SIZE {
        file_offset + (room + SYNC_POINT_SIZE) as u64
    } else {
        file_offset + SYNC_POINT_SIZE as u64
    }
}

/// Fills the rest of the block `offset` lies in: zeros if fewer than a
/// header's bytes remain, else one sync point whose payload reaches the
/// block end (stating `synced_len` if it has room for it, else nothing).
/// Returns the next block start.
fn fill_block(out: &mut Vec<u8>, offset: u64, synced_len: u64) -> u64 {
    let room = block_remaining(offset);
    if room < HEADER_SIZE {
        out.resize(out.len() + room, 0);
    } else {
        let mut payload = vec![0u8; room - HEADER_SIZE];
        if let Some(claim) = payload.get_mut(..SYNC_POINT_PAYLOAD) {
            claim.copy_from_slice(&synced_len.to_le_bytes());
        }
        out.extend_from_slice(&encode_header(RecordType::SyncPoint, &payload));
        out.extend_from_slice(&payload);
    }
    offset + room as u64
}

/// What a checksum-valid sync point's payload states: `Some(synced_len)`,
/// or `None` for a filler too short to state anything.
pub(crate) fn stated_synced_len(payload: &[u8]) -> Option<u64> {
    let claim: [u8; SYNC_POINT_PAYLOAD] = payload.get(..SYNC_POINT_PAYLOAD)?.try_into().ok()?;
    Some(u64::from_le_bytes(claim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fragment::{parse_at, Parsed};

    /// Every fragment from `start`, as (offset, type, payload length), until
    /// the first position that is not a valid fragment.
    fn fragments(log: &[u8], start: usize) -> Vec<(usize, RecordType, usize)> {
        let mut out = Vec::new();
        let mut pos = start;
        loop {
            match parse_at(log, pos) {
                Parsed::Fragment {
                    record_type,
                    payload,
                    end,
                } => {
                    out.push((pos, record_type, payload.len()));
                    pos = end;
                }
                Parsed::Padding { next_block } => pos = next_block,
                _ => return out,
            }
        }
    }

    #[test]
    fn sync_point_matches_the_worked_example_in_the_format_doc() {
        // crc32(90 0a 00 00 00 00 00 00 00) = 0xbd5c4a58; rotated right 15 =
        // 0x94b17ab8; + 0xa282ead8 = 0x37346590, stored little-endian.
        let mut out = Vec::new();
        let end = encode_sync_point(&mut out, 10, 10);
        assert_eq!(end, 25);
        assert_eq!(
            out,
            [0x90, 0x65, 0x34, 0x37, 8, 0, 144, 10, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn a_sync_point_never_splits_across_blocks() {
        // Every tail size around the sync point's 15 bytes, at block 1's end.
        for tail in 0..=SYNC_POINT_SIZE + 2 {
            let start = 2 * BLOCK_SIZE - tail;
            let mut log = vec![0u8; start];
            let end = encode_sync_point(&mut log, start as u64, 77);
            assert_eq!(end, log.len() as u64, "tail {tail}");
            assert_eq!(end, sync_point_end(start as u64), "tail {tail}");
            let found = fragments(&log, start);
            let point_at = if tail >= SYNC_POINT_SIZE || tail == 0 {
                start
            } else {
                2 * BLOCK_SIZE
            };
            // The stating sync point lies wholly in one block.
            let last = *found.last().unwrap();
            assert_eq!(last, (point_at, RecordType::SyncPoint, 8), "tail {tail}");
            assert!(point_at % BLOCK_SIZE + SYNC_POINT_SIZE <= BLOCK_SIZE);
            let payload = &log[point_at + HEADER_SIZE..point_at + SYNC_POINT_SIZE];
            assert_eq!(stated_synced_len(payload), Some(77));
            // A 7..=14-byte tail holds one filler that states nothing.
            if (HEADER_SIZE..SYNC_POINT_SIZE).contains(&tail) {
                assert_eq!(
                    found[0],
                    (start, RecordType::SyncPoint, tail - HEADER_SIZE),
                    "tail {tail}"
                );
                assert_eq!(stated_synced_len(&log[start + HEADER_SIZE..point_at]), None);
            } else {
                assert_eq!(found.len(), 1, "tail {tail}");
            }
        }
    }

    #[test]
    fn a_seal_starts_a_block() {
        for start in [0, 1, 100, BLOCK_SIZE - 15, BLOCK_SIZE - 8, BLOCK_SIZE - 3] {
            let offset = BLOCK_SIZE + start;
            let mut log = vec![0u8; offset];
            let end = encode_seal(&mut log, offset as u64, offset as u64);
            assert_eq!(end, log.len() as u64);
            assert_eq!(end, seal_end(offset as u64));
            let block = if start == 0 {
                BLOCK_SIZE
            } else {
                2 * BLOCK_SIZE
            };
            assert_eq!(end, (block + SYNC_POINT_SIZE) as u64, "start {start}");
            // Sync points only: at most a filler, then the seal at the block start.
            let found = fragments(&log, offset);
            assert!(found.iter().all(|f| f.1 == RecordType::SyncPoint));
            assert_eq!(*found.last().unwrap(), (block, RecordType::SyncPoint, 8));
            let seal = &log[block + HEADER_SIZE..];
            assert_eq!(stated_synced_len(seal), Some(offset as u64));
            if start != 0 && start < BLOCK_SIZE - 6 {
                // The filler reaches the block end.
                let filler = found[0];
                assert_eq!(filler.0 + HEADER_SIZE + filler.2, block);
            }
        }
    }

    #[test]
    #[should_panic(expected = "cannot state")]
    fn stating_more_than_precedes_the_sync_point_panics() {
        encode_sync_point(&mut Vec::new(), 10, 11);
    }
}
