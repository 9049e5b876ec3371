//! The tail rule [`TailRule::EveryRecordSyncedButLast`](crate::TailRule):
//! for a log whose writer synced every append before making the next, and
//! put at most one record in each (the MANIFEST), damage is corruption when
//! the log shows something written after the damaged append.
//!
//! Only the last append can hold crash damage. The [`Writer`](crate::Writer)
//! frames it as
//!
//! ```text
//!  [padding] [filler sync point] [padding] [sync point] [padding] [record: FULL | FIRST MIDDLE* LAST]
//! ```
//!
//! where the sync points (present after a sync) state the length synced
//! before the append, which is at most the offset of any damage in it. So
//! after damage at `X` inside the last append, what is still valid can only
//! be: sync points stating no more than `X`, then the fragments of one
//! record, and nothing after that record's end. Anything else after `X` (a
//! sync point stating more than `X`, a record start or a sync point after a
//! record's fragments, a second record) was written in a later append, and
//! the append holding `X` was synced before it: corruption.
//!
//! The damaged fragment itself tells where in its append `X` lies, when its
//! header shows it. A crash only zeroes bytes (see `proof.rs`), so a
//! nonzero type byte is the written one: after a damaged FULL or LAST
//! fragment nothing of its append follows, after a FIRST or MIDDLE only
//! MIDDLE and LAST fragments do. And each length byte is the written one or
//! zero, so a header a crash could not have left (a length running past
//! its block or the file yet followed by valid fragments, a sync point
//! whose length is neither 8 nor fills its block, a MIDDLE or LAST fragment
//! away from a block start, a FIRST or MIDDLE fragment that cannot fill its
//! block) is not crash damage, and anything valid after it is evidence.
//!
//! Valid fragments are looked for at every byte position after `X`
//! (LevelDB's rule, which the MANIFEST used before sync points), because a
//! damaged length hides where the next fragment starts: a flipped length
//! must not hide the edits after it. The one place not searched is the
//! damaged fragment's own extent, when its header stands up: a known type,
//! a length that fits the block and the file, and its claimed end
//! confirmed by the end of the file or a valid fragment starting there. That
//! keeps the search out of the payload of a last record whose header
//! survived a crash (a MANIFEST edit's payload holds user keys: table
//! boundary keys). Elsewhere the search can take payload bytes imitating
//! framing for fragments: the caveat [`TailRule`](crate::TailRule) documents.

use crate::format::{block_remaining, RecordType, BLOCK_SIZE, HEADER_SIZE};
use crate::fragment::{claim_at, parse_at, Claim, Extent, Parsed};
use crate::scan::first_valid;
use crate::sync_point::stated_synced_len;

/// What the rest of the last append can still hold, from some point in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Sync points (a filler, the sync point), then one record's fragments.
    SyncPointsThenRecord,
    /// More fragments of the record: MIDDLE, or LAST.
    RestOfRecord,
    /// Nothing: the record has ended.
    Nothing,
}

impl Expect {
    /// What the append can hold after a fragment of `record_type`, or `None`
    /// if one append cannot hold that fragment here.
    fn after(self, record_type: RecordType) -> Option<Self> {
        use RecordType::{First, Full, Last, Middle, SyncPoint};
        match (self, record_type) {
            (Self::SyncPointsThenRecord, SyncPoint) => Some(Self::SyncPointsThenRecord),
            (Self::SyncPointsThenRecord, First) => Some(Self::RestOfRecord),
            (Self::SyncPointsThenRecord, Full) => Some(Self::Nothing),
            // A MIDDLE or LAST whose FIRST was lost, or that continues it.
            (Self::SyncPointsThenRecord | Self::RestOfRecord, Middle) => Some(Self::RestOfRecord),
            (Self::SyncPointsThenRecord | Self::RestOfRecord, Last) => Some(Self::Nothing),
            _ => None,
        }
    }
}

/// Whether the log shows something written after the append holding the
/// anomaly at `at`. `in_record`: a record was being assembled (its FIRST
/// fragment read) when the anomaly was found.
pub(crate) fn written_after(data: &[u8], at: usize, in_record: bool) -> bool {
    let start = if in_record {
        Expect::RestOfRecord
    } else {
        Expect::SyncPointsThenRecord
    };
    let (mut expect, mut pos) = if let Parsed::Fragment { .. } = parse_at(data, at) {
        // A valid fragment out of sequence: it is the first thing to judge.
        (start, at)
    } else {
        match claim_at(data, at) {
            None => return false, // no header: the file ends here
            Some(claim) => match (claim.record_type, claim.extent) {
                // Type byte lost (or never a writer's): where `at` lies is unknown.
                (None, _) => (start, at + 1),
                (Some(record_type), Extent::Within { end }) if crash_could_leave(&claim, at) => {
                    let after = start.after(record_type).unwrap_or(Expect::Nothing);
                    if confirmed_end(data, end) {
                        (after, end)
                    } else {
                        (after, at + 1)
                    }
                }
                // Running past the file, the written fragment would leave
                // nothing written after it in the file; the others are no
                // crash's doing. Whatever is valid after is evidence.
                (Some(_), _) => (Expect::Nothing, at + 1),
            },
        }
    };
    while let Some(next) = first_valid(data, pos) {
        let Parsed::Fragment {
            record_type,
            payload,
            end,
        } = parse_at(data, next)
        else {
            debug_assert!(false, "first_valid returned an invalid position");
            return false;
        };
        if record_type == RecordType::SyncPoint
            && stated_synced_len(payload).is_some_and(|stated| stated > at as u64)
        {
            return true;
        }
        match expect.after(record_type) {
            Some(rest) => expect = rest,
            None => return true,
        }
        pos = end;
    }
    false
}

/// Whether a writer's header at `at`, with some of its bytes zeroed, could
/// read as `claim` (whose type is known and whose extent fits its block):
/// each stored length byte equals the written one or is zero, and the
/// format fixes the length of a sync point (8, or the rest of its block for
/// a filler) and of FIRST and MIDDLE fragments (the rest of their block),
/// and puts MIDDLE and LAST fragments at block starts.
fn crash_could_leave(claim: &Claim, at: usize) -> bool {
    let length = u16::from_le_bytes(claim.length_bytes);
    // The payload room left in the block: the length of a fragment filling it.
    let fills_block = u16::try_from(block_remaining(at as u64) - HEADER_SIZE).unwrap_or(u16::MAX);
    let zeroed_from = |written: u16| {
        let [low, high] = claim.length_bytes;
        let [written_low, written_high] = written.to_le_bytes();
        (low == 0 || low == written_low) && (high == 0 || high == written_high)
    };
    let at_block_start = at.is_multiple_of(BLOCK_SIZE);
    match claim.record_type {
        Some(RecordType::Full) => true,
        Some(RecordType::First) => zeroed_from(fills_block),
        Some(RecordType::Middle) => at_block_start && zeroed_from(fills_block),
        Some(RecordType::Last) => at_block_start,
        Some(RecordType::SyncPoint) => length == 0 || zeroed_from(8) || zeroed_from(fills_block),
        Some(RecordType::Zero) | None => false,
    }
}

/// Whether a damaged header's claimed end at `end` is confirmed: the file
/// ends there (after any block-tail padding), or a valid fragment starts there.
fn confirmed_end(data: &[u8], end: usize) -> bool {
    let next = match parse_at(data, end) {
        Parsed::Padding { next_block } => next_block,
        _ => end,
    };
    next >= data.len() || matches!(parse_at(data, next), Parsed::Fragment { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_leaves_lengths_with_bytes_zeroed_never_others() {
        let claim = |record_type, length: u16| Claim {
            record_type: Some(record_type),
            length_bytes: length.to_le_bytes(),
            extent: Extent::Within { end: 0 },
        };
        let mid_block = 100;
        let room = (BLOCK_SIZE - mid_block - HEADER_SIZE) as u16;
        assert_eq!(room, 0x7f95);
        for length in [8, 0, room, room & 0xff00, room & 0xff] {
            assert!(crash_could_leave(
                &claim(RecordType::SyncPoint, length),
                mid_block
            ));
        }
        for length in [9, 7, 16, room - 1] {
            assert!(!crash_could_leave(
                &claim(RecordType::SyncPoint, length),
                mid_block
            ));
        }
        assert!(crash_could_leave(
            &claim(RecordType::First, room),
            mid_block
        ));
        assert!(crash_could_leave(
            &claim(RecordType::First, 0x95),
            mid_block
        ));
        assert!(!crash_could_leave(
            &claim(RecordType::First, 0x94),
            mid_block
        ));
        assert!(crash_could_leave(&claim(RecordType::Full, 1234), mid_block));
        assert!(crash_could_leave(
            &claim(RecordType::Last, 1234),
            BLOCK_SIZE
        ));
        assert!(!crash_could_leave(
            &claim(RecordType::Last, 1234),
            mid_block
        ));
        assert!(!crash_could_leave(
            &claim(RecordType::Middle, room),
            mid_block
        ));
        let middle = (BLOCK_SIZE - HEADER_SIZE) as u16;
        assert!(crash_could_leave(
            &claim(RecordType::Middle, middle),
            2 * BLOCK_SIZE
        ));
    }

    #[test]
    fn one_append_holds_sync_points_then_one_record() {
        use RecordType::{First, Full, Last, Middle, SyncPoint};
        let accepts = |types: &[RecordType]| {
            types
                .iter()
                .try_fold(Expect::SyncPointsThenRecord, |expect, &t| expect.after(t))
                .is_some()
        };
        assert!(accepts(&[SyncPoint, SyncPoint, Full]));
        assert!(accepts(&[SyncPoint, First, Middle, Middle, Last]));
        assert!(accepts(&[Middle, Last]), "the FIRST fragment lost");
        assert!(accepts(&[SyncPoint]));
        assert!(!accepts(&[Full, SyncPoint]));
        assert!(!accepts(&[Full, Full]));
        assert!(!accepts(&[First, Full]));
        assert!(!accepts(&[First, SyncPoint]));
        assert!(!accepts(&[Last, Middle]));
        assert!(!accepts(&[Middle, First]));
    }
}
