//! The tail rule [`TailRule::EveryRecordSyncedButLast`](crate::TailRule):
//! for a log whose writer synced every append before making the next, and
//! put at most one record in each (the MANIFEST), an anomaly is corruption
//! unless a crash can have left the log as it reads from the anomaly on.
//!
//! # What a crash leaves
//! Every append but the last was synced before the next was made, so a
//! crash damages only the last one, which the [`Writer`](crate::Writer)
//! frames as
//!
//! ```text
//!  [padding] [filler sync point] [padding] [sync point] [padding] [record: FULL | FIRST MIDDLE* LAST]
//! ```
//!
//! (a seal, `[filler sync point] [sync point]`, is an append too), the sync
//! points stating the length synced before the append. The rule REQUIRES a
//! writer that appends by `write(2)` or the like (the engine's MANIFEST is
//! a plain `WritableFile`, never mapped like the WAL), for which a crash
//! leaves of the last append:
//!
//! - the file cut anywhere (a process killed during a write keeps what the
//!   kernel had copied, a prefix; a power loss may keep any length the
//!   file had);
//! - any of its [`SECTOR_SIZE`]-byte sectors reading as zeros (a disk writes
//!   whole sectors, and one not written reads as it last was durably: zeros
//!   past the synced length), the others as written;
//! - zeros after the cut (a file length that got ahead of its data, or
//!   preallocated space).
//!
//! It never leaves a byte lost inside a sector that kept others: that takes
//! a copy into a mapped file stopped midway, which is how the WAL is
//! written, and the WAL is read with [`TailRule::SyncPoints`](crate::TailRule),
//! which assumes any pattern of lost bytes (`proof.rs`). (The page cache
//! copies a `write(2)` into a page under the page's lock, and writeback
//! takes the page whole; docs/wal-format.md says where else the model
//! holds, and where it does not.)
//!
//! So, from the anomaly at `X` on (every byte before it was read back as
//! valid framing, so the last append starts at or before `X`), a sector's
//! bytes from `X` on (the part before may hold synced bytes) either all
//! read as written, or all read as zeros, up to where the file reads as
//! zeros to its end. A sector holding a nonzero byte was kept; a sector of
//! zeros, and the zeros at the end of the file, may have been lost.
//!
//! # The rule
//! Corruption unless some way of writing the last append, with some of its
//! sectors lost and the file cut or extended with zeros, reads as the log
//! does from `X` on. The reader walks the append's framing from `X` as the
//! writer lays it out, trying at each fragment boundary every fragment the
//! writer can have put there (of the types that may follow in one append,
//! in its place in the block, with the length the format gives it) whose
//! kept header bytes are the ones read. A fragment that reads valid is as
//! written. A damaged one needs a lost sector or the cut within it: a
//! fragment all of whose bytes were kept would read valid. The record's
//! payload is the user's and may hold anything, so it is never read for
//! framing: after a FULL or LAST fragment the append ends and the rest of
//! the file must read as zeros; after a FIRST or MIDDLE the walk resumes at
//! the next block start. A sync point's payload is the writer's: a stated
//! length at most `X`, then zeros. If no way through reaches the end of the
//! file, what follows `X` is not the last append: it was synced.
//!
//! # The gap this closes
//! The rule used to search for valid fragments at every byte position after
//! `X` and to take any that one append cannot hold (a second record, a
//! sync point stating more than `X`) for a later append, keeping out of
//! the damaged fragment's own extent only when its header showed it. But
//! the last append's record lies after `X` too, and whenever the crash hid
//! its extent (the file cut inside it, its header or the sync point before
//! it lost) the search read the record's payload as framing. A MANIFEST
//! edit's payload holds table boundary keys: a key holding framed log bytes
//! made a crash read as corruption, and the database would not open. The
//! search is gone: a fragment is evidence only where the writer's own
//! framing, followed from `X`, puts a fragment boundary.
//!
//! # What no rule can tell
//! A header whose length runs past the end of the file (a flipped length
//! byte of an earlier record) reads exactly like the last append cut short:
//! its payload might hold any bytes, the later records included. That is a
//! torn tail here. The engine tells the two apart by what a MANIFEST record
//! holds (`read_manifest` checks that the bytes left of a cut edit begin a
//! version edit).

use std::collections::BTreeSet;

use crate::format::{block_remaining, RecordType, BLOCK_SIZE, HEADER_SIZE};
use crate::fragment::{parse_at, Parsed};
use crate::sync_point::{stated_synced_len, SYNC_POINT_PAYLOAD};
use crate::zeroed::is_zeroed;

/// What a crash keeps or loses whole of a log appended by `write(2)`, the
/// assumption of [`TailRule::EveryRecordSyncedButLast`](crate::TailRule): a
/// disk sector, the smallest unit a disk writes (a 4 KiB page, what the
/// page cache writes back, is eight of them, and a power loss can tear a
/// page's write between them).
pub const SECTOR_SIZE: usize = 512;

/// The sync point fragments one append holds before its record at most: a
/// filler that fills a block tail, then the sync point (or the seal).
const SYNC_POINTS_PER_APPEND: u8 = 2;

/// What the rest of the last append can still hold, from some fragment
/// boundary in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    /// Up to `more` sync points, then one record's fragments (or nothing:
    /// a seal's append holds no record).
    SyncPoints { more: u8 },
    /// More fragments of the record: MIDDLE, or LAST.
    RestOfRecord,
    /// Nothing: the record has ended.
    Nothing,
}

impl Expect {
    /// What the append can hold after a fragment of `record_type`, or `None`
    /// if one append cannot hold that fragment here. (No MIDDLE or LAST
    /// without its FIRST: the walk meets every fragment of the append in
    /// order, lost ones included, and the reader passes `X` in a record
    /// when it read the record's FIRST fragment before.)
    fn after(self, record_type: RecordType) -> Option<Self> {
        use RecordType::{First, Full, Last, Middle, SyncPoint};
        match (self, record_type) {
            (Self::SyncPoints { more }, SyncPoint) => {
                more.checked_sub(1).map(|more| Self::SyncPoints { more })
            }
            (Self::SyncPoints { .. }, First) => Some(Self::RestOfRecord),
            (Self::SyncPoints { .. }, Full) => Some(Self::Nothing),
            (Self::RestOfRecord, Middle) => Some(Self::RestOfRecord),
            (Self::RestOfRecord, Last) => Some(Self::Nothing),
            _ => None,
        }
    }
}

/// Whether a crash can have left `data` as it reads from the anomaly at
/// `at` on, the log being written the way the module documentation says.
/// `in_record`: a record was being assembled (its FIRST fragment read) when
/// the anomaly was found.
///
/// Cost: the walk tries at most a few fragments at each boundary, and
/// boundaries come only from fragment lengths the format fixes (a sync
/// point's, at most two per append; a FIRST's or MIDDLE's, to the block
/// end), so it visits a few positions per block: about one crc32 and one
/// zero check over each byte after `at`.
pub(crate) fn crash_can_leave(data: &[u8], at: usize, in_record: bool) -> bool {
    let tail = Tail::new(data, at);
    let start = if in_record {
        Expect::RestOfRecord
    } else {
        // The sync points read before `at` may have been the append's:
        // allowing two more only widens what is taken for a crash.
        Expect::SyncPoints {
            more: SYNC_POINTS_PER_APPEND,
        }
    };
    // Boundaries only move forward, so the smallest pending one is next.
    let mut pending = BTreeSet::from([(at, start)]);
    while let Some((pos, expect)) = pending.pop_first() {
        if tail.step(pos, expect, &mut pending) {
            return true;
        }
    }
    false
}

/// The log from the anomaly on, and what a crash can have done to it.
struct Tail<'a> {
    data: &'a [u8],
    /// The anomaly: the last append starts at or before it.
    at: usize,
    /// Just past the last nonzero byte (at least `at`): the file reads as
    /// zeros from here on.
    zeros_from: usize,
}

impl<'a> Tail<'a> {
    fn new(data: &'a [u8], at: usize) -> Self {
        let zeros_from = data
            .iter()
            .rposition(|&byte| byte != 0)
            .map_or(0, |last| last + 1)
            .max(at);
        Self {
            data,
            at,
            zeros_from,
        }
    }

    /// One fragment boundary `pos` of the last append, with `expect` to
    /// follow: whether the append can end here (true), else the boundaries
    /// that can follow the fragment at `pos`, added to `pending`.
    fn step(&self, pos: usize, expect: Expect, pending: &mut BTreeSet<(usize, Expect)>) -> bool {
        if pos >= self.zeros_from {
            // The rest was lost, cut off or never written.
            return true;
        }
        let room = block_remaining(pos as u64);
        if room < HEADER_SIZE {
            // Block-tail padding, written as zeros.
            if self.reads_zero(pos, pos + room) {
                pending.insert((pos + room, expect));
            }
            return false;
        }
        if pos + HEADER_SIZE > self.data.len() {
            // The file was cut inside this header.
            return true;
        }
        let header_kept = (pos..pos + HEADER_SIZE).all(|i| !self.maybe_lost(i));
        if let Parsed::Fragment {
            record_type,
            payload,
            end,
        } = parse_at(self.data, pos)
        {
            if self.writer_frames(pos, record_type, payload.len()) {
                if let Some(after) = expect.after(record_type) {
                    pending.insert((end, after));
                }
            }
            if header_kept {
                return false;
            }
            // A header that lost bytes yet reads valid (its checksum
            // matching what is left of the payload): also try it as damaged.
        }
        self.damaged(pos, room, expect, pending)
    }

    /// A fragment at `pos` that does not read as written: whether a
    /// fragment the writer can have put there, with some of its sectors
    /// lost or the file cut inside it, ends the append (true); else the
    /// boundaries after those that can continue it, added to `pending`.
    fn damaged(
        &self,
        pos: usize,
        room: usize,
        expect: Expect,
        pending: &mut BTreeSet<(usize, Expect)>,
    ) -> bool {
        use RecordType::{First, Full, Last, Middle, SyncPoint, Zero};
        let header = &self.data[pos..pos + HEADER_SIZE];
        let kept = |i: usize| !self.maybe_lost(pos + i);
        let type_byte = header[HEADER_SIZE - 1];
        let written_types: &[RecordType] = if kept(HEADER_SIZE - 1) {
            match RecordType::from_u8(type_byte) {
                Some(Full) => &[Full],
                Some(First) => &[First],
                Some(Middle) => &[Middle],
                Some(Last) => &[Last],
                Some(SyncPoint) => &[SyncPoint],
                // A kept type byte no writer writes.
                Some(Zero) | None => &[],
            }
        } else {
            &[Full, First, Middle, Last, SyncPoint]
        };
        let length = KeptLength {
            low: kept(4).then_some(header[4]),
            high: kept(5).then_some(header[5]),
        };
        let max_payload = room - HEADER_SIZE;
        let at_block_start = pos.is_multiple_of(BLOCK_SIZE);
        for &record_type in written_types {
            let Some(after) = expect.after(record_type) else {
                continue;
            };
            match record_type {
                Full | Last => {
                    if record_type == Last && !at_block_start {
                        continue;
                    }
                    // The append ends with this fragment, so the file reads
                    // as zeros after it; the longest length the kept bytes
                    // allow is the likeliest to explain that.
                    let Some(len) = length.longest_up_to(max_payload) else {
                        continue;
                    };
                    let end = pos + HEADER_SIZE + len;
                    if end >= self.zeros_from && self.can_be_damaged(pos, end) {
                        return true;
                    }
                }
                First | Middle => {
                    if (record_type == Middle && !at_block_start) || !length.allows(max_payload) {
                        continue;
                    }
                    // It fills its block; the record continues at the next.
                    let end = pos + room;
                    if self.can_be_damaged(pos, end) {
                        pending.insert((end, after));
                    }
                }
                SyncPoint => {
                    for len in [SYNC_POINT_PAYLOAD, max_payload] {
                        if len > max_payload || !length.allows(len) {
                            continue;
                        }
                        let end = pos + HEADER_SIZE + len;
                        if self.sync_point_payload_fits(pos + HEADER_SIZE, end)
                            && self.can_be_damaged(pos, end)
                        {
                            pending.insert((end, after));
                        }
                    }
                }
                Zero => {}
            }
        }
        false
    }

    /// Whether the writer frames a fragment of `record_type` with a
    /// `len`-byte payload at `pos`, read whole and valid there: FIRST and
    /// MIDDLE fill their block, MIDDLE and LAST start one, a sync point
    /// holds 8 bytes or fills its block, and states at most `at`.
    fn writer_frames(&self, pos: usize, record_type: RecordType, len: usize) -> bool {
        let fills_block = len == block_remaining(pos as u64) - HEADER_SIZE;
        let at_block_start = pos.is_multiple_of(BLOCK_SIZE);
        match record_type {
            RecordType::Full => true,
            RecordType::First => fills_block,
            RecordType::Middle => at_block_start && fills_block,
            RecordType::Last => at_block_start,
            RecordType::SyncPoint => {
                let from = pos + HEADER_SIZE;
                (len == SYNC_POINT_PAYLOAD || fills_block)
                    && self.sync_point_payload_fits(from, from + len)
            }
            RecordType::Zero => false,
        }
    }

    /// Whether `from..to` can hold a sync point's payload as the writer
    /// wrote it, some bytes maybe lost: a stated length at most `at` (the
    /// append starts at or before `at`, and a sync point states a length
    /// synced before its append), then zeros; a filler too short to state
    /// a length is all zeros. Lost bytes read as zeros, so what is stored
    /// is at most what was stated.
    fn sync_point_payload_fits(&self, from: usize, to: usize) -> bool {
        if to - from < SYNC_POINT_PAYLOAD {
            return self.reads_zero(from, to);
        }
        let mut stated = [0u8; SYNC_POINT_PAYLOAD];
        for (i, byte) in stated.iter_mut().enumerate() {
            *byte = self.data.get(from + i).copied().unwrap_or(0);
        }
        let stored = stated_synced_len(&stated).unwrap_or(0);
        stored <= self.at as u64 && self.reads_zero(from + SYNC_POINT_PAYLOAD, to)
    }

    /// Whether the byte at `pos` (at or after `at`) may have been lost: its
    /// sector, from `at` on and within the file, reads as zeros, or it lies
    /// where the file reads as zeros to its end (cut there, then extended)
    /// or past the end.
    fn maybe_lost(&self, pos: usize) -> bool {
        if pos >= self.zeros_from {
            return true;
        }
        let sector = pos - pos % SECTOR_SIZE;
        let from = sector.max(self.at);
        let to = (sector + SECTOR_SIZE).min(self.data.len());
        from >= to || is_zeroed(&self.data[from..to])
    }

    /// Whether a fragment written over `from..to` can read other than as
    /// written: some of it lies in a sector that may have been lost, in the
    /// zeros at the end of the file, or past its end.
    fn can_be_damaged(&self, from: usize, to: usize) -> bool {
        if to > self.zeros_from {
            return true;
        }
        let mut pos = from;
        while pos < to {
            if self.maybe_lost(pos) {
                return true;
            }
            pos = pos - pos % SECTOR_SIZE + SECTOR_SIZE;
        }
        false
    }

    /// Whether `from..to` reads as zeros, as far as it lies in the file.
    fn reads_zero(&self, from: usize, to: usize) -> bool {
        let to = to.min(self.data.len());
        from >= to || is_zeroed(&self.data[from..to])
    }
}

/// A damaged header's length as far as a crash leaves it known: each
/// byte kept (`Some`) or maybe lost (`None`: it was any value).
#[derive(Clone, Copy, Debug)]
struct KeptLength {
    low: Option<u8>,
    high: Option<u8>,
}

impl KeptLength {
    /// Whether the writer can have written `len` here.
    fn allows(self, len: usize) -> bool {
        let Ok(len) = u16::try_from(len) else {
            return false;
        };
        let [low, high] = len.to_le_bytes();
        self.low.is_none_or(|kept| kept == low) && self.high.is_none_or(|kept| kept == high)
    }

    /// The longest length up to `limit` the writer can have written here.
    fn longest_up_to(self, limit: usize) -> Option<usize> {
        let limit = u16::try_from(limit).unwrap_or(u16::MAX);
        let [limit_low, limit_high] = limit.to_le_bytes();
        let high = match self.high {
            Some(high) if high > limit_high => return None,
            Some(high) => high,
            None => limit_high,
        };
        let low = match self.low {
            Some(low) => low,
            None if high == limit_high => limit_low,
            None => u8::MAX,
        };
        let len = u16::from_le_bytes([low, high]);
        if len <= limit {
            return Some(usize::from(len));
        }
        // The low byte is kept and too big under the limit's high byte:
        // the next smaller high byte, if that one may have been lost.
        match (self.high, high.checked_sub(1)) {
            (None, Some(high)) => Some(usize::from(u16::from_le_bytes([low, high]))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_kept_length_is_the_largest_the_bytes_allow() {
        let bytes = [None, Some(0), Some(1), Some(0x7f), Some(0x80), Some(0xff)];
        for low in bytes {
            for high in bytes {
                let length = KeptLength { low, high };
                for limit in [0, 1, 0xff, 0x100, 0x17f, 0x7f7f, 0x7fe9, 0x7ff9] {
                    let brute = (0..=limit).rev().find(|&len| length.allows(len));
                    assert_eq!(
                        length.longest_up_to(limit),
                        brute,
                        "{length:?} up to {limit:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn one_append_holds_two_sync_points_then_one_record() {
        use RecordType::{First, Full, Last, Middle, SyncPoint};
        let accepts = |types: &[RecordType]| {
            types
                .iter()
                .try_fold(
                    Expect::SyncPoints {
                        more: SYNC_POINTS_PER_APPEND,
                    },
                    |expect, &t| expect.after(t),
                )
                .is_some()
        };
        assert!(accepts(&[SyncPoint, SyncPoint, Full]));
        assert!(accepts(&[SyncPoint, First, Middle, Middle, Last]));
        assert!(accepts(&[SyncPoint, SyncPoint]), "a seal");
        assert!(!accepts(&[SyncPoint, SyncPoint, SyncPoint]));
        assert!(!accepts(&[Middle, Last]), "no FIRST");
        assert!(!accepts(&[Full, SyncPoint]));
        assert!(!accepts(&[Full, Full]));
        assert!(!accepts(&[First, Full]));
        assert!(!accepts(&[First, SyncPoint]));
        assert!(!accepts(&[Last, Middle]));
    }

    /// A log of a record of 7-byte filler, then one of `second_len` bytes at `second_at`.
    fn two_records(second_at: usize, second_len: usize) -> Vec<u8> {
        let mut log = Vec::new();
        let end = crate::encode_record(&mut log, 0, &vec![7u8; second_at - HEADER_SIZE]);
        assert_eq!(end, second_at as u64);
        crate::encode_record(&mut log, end, &vec![9u8; second_len]);
        log
    }

    #[test]
    fn a_sector_is_kept_whole_or_lost_whole_from_the_anomaly_on() {
        let at = SECTOR_SIZE + 100;
        let log = two_records(at, 40);
        // Synced bytes before `at` share its sector; they say nothing.
        let mut lost = log.clone();
        lost[at..].fill(0);
        assert!(Tail::new(&lost, at).maybe_lost(at + 5));
        assert!(crash_can_leave(&lost, at, false), "zeros to the end");
        // One byte of a kept sector zeroed: no crash, the header as
        // written reads valid then.
        let mut zeroed_byte = log.clone();
        zeroed_byte[at] = 0;
        assert!(!Tail::new(&zeroed_byte, at).maybe_lost(at));
        assert!(!crash_can_leave(&zeroed_byte, at, false));
        // Cut inside the record: a crash.
        assert!(crash_can_leave(&log[..log.len() - 1], at, false));
        assert!(Tail::new(&log, at).maybe_lost(log.len()), "past the file");
    }

    #[test]
    fn bytes_after_a_damaged_records_known_end_are_no_crash() {
        // A 600-byte record from 500: its payload covers the sector
        // 512..1024, lost; its header, kept, shows where it ends.
        let at = 500;
        let mut log = two_records(at, 600);
        log[SECTOR_SIZE..2 * SECTOR_SIZE].fill(0);
        assert!(crash_can_leave(&log, at, false), "the last record");
        let end = log.len();
        crate::encode_record(&mut log, end as u64, &[5u8; 30]);
        assert!(!crash_can_leave(&log, at, false), "a record after it");
        // With its header's sector lost too, its length is unknown: the
        // record after it may be its payload.
        log[at..SECTOR_SIZE].fill(0);
        assert!(crash_can_leave(&log, at, false));
        // But not past its block.
        log.resize(BLOCK_SIZE, 0);
        let end = log.len();
        crate::encode_record(&mut log, end as u64, &[5u8; 30]);
        assert!(
            !crash_can_leave(&log, at, false),
            "a record in the next block"
        );
    }
}
