//! The `strata.range_del` meta block: a table's range tombstones, stored
//! already fragmented (format version 3).
//!
//! ```text
//! block format (like the properties: raw, checksummed, restart interval 1)
//! entry key   = start user key ++ trailer u64 LE = seqno << 8 | 3 (RangeDelete)
//! entry value = end user key; empty = no end
//! one entry per fragment (stack, seqno), in internal-key order
//! (start ascending, seqno descending). Rules a reader checks:
//!   - key >= 8 bytes, kind 3
//!   - a bounded end is after its start
//!   - same start => seqno strictly descending, same end
//!   - consecutive distinct starts s1 < s2 => end(s1) present, end(s1) <= s2
//!     (so an entry without end is in the last stack)
//!   - entry count = strata.num_range_deletions
//! ```
//! An empty end can mean "no end" because a bounded end is after its start,
//! so never empty. Storing fragments (as Pebble does) makes opening one
//! pass with no sort; RocksDB stores raw tombstones and fragments at open.

use crate::block::reader::Origin;
use crate::block::{Block, BlockBuilder};
use crate::error::{Error, Result};
use crate::key::{encode_internal_key, split_key, SeqNo, ValueKind, TRAILER_LEN};
use crate::range_del::FragmentedRangeTombstones;

/// Appends every fragment of `tombstones` to `block` (restart interval 1).
/// `Err(InvalidArgument)` if the block would reach 4 GiB (its offsets are
/// u32).
pub(crate) fn encode(
    tombstones: &FragmentedRangeTombstones,
    block: &mut BlockBuilder,
) -> Result<()> {
    let mut key = Vec::new();
    for stack in tombstones.iter() {
        let end = stack.end().unwrap_or_default();
        for &seqno in stack.seqnos() {
            key.clear();
            encode_internal_key(&mut key, stack.start(), seqno, ValueKind::RangeDelete);
            // Header (three varint32s) and restart point at their largest.
            let entry_max = key.len() + end.len() + 3 * 5 + 4;
            if block.current_size_estimate() + entry_max > u32::MAX as usize {
                return Err(Error::InvalidArgument(format!(
                    "{} range deletion fragments do not fit one 4 GiB block",
                    tombstones.len()
                )));
            }
            block.add(&key, end);
        }
    }
    Ok(())
}

/// Decodes a `strata.range_del` block that came from `origin`, checking
/// every rule; `expected` is `strata.num_range_deletions`. A broken rule is
/// `Corruption` at the entry's offset (the block's, if it was compressed).
pub(crate) fn decode(
    block: &Block,
    origin: Origin,
    expected: u64,
) -> Result<FragmentedRangeTombstones> {
    let mut out = FragmentedRangeTombstones::default();
    // The previous entry: start, end, seqno.
    let mut prev: Option<(Vec<u8>, Option<Vec<u8>>, SeqNo)> = None;
    let mut count = 0u64;
    let mut it = block.iter();
    it.seek_to_first()?;
    while it.valid() {
        let bad = |reason: &str| {
            Error::corruption(
                origin.at(it.entry_offset()),
                format!("range-del block: {reason}"),
            )
        };
        let key = it.key();
        if key.len() < TRAILER_LEN {
            return Err(bad("key shorter than a trailer"));
        }
        let (start, trailer) = split_key(key);
        let (seqno, kind) = (trailer >> 8, trailer as u8);
        if kind != ValueKind::RangeDelete as u8 {
            return Err(bad(&format!("entry of kind {kind}, not a range deletion")));
        }
        let end = match it.value() {
            [] => None,
            end if end <= start => return Err(bad("end not after its start")),
            end => Some(end),
        };
        if let Some((prev_start, prev_end, prev_seqno)) = &prev {
            match prev_start.as_slice().cmp(start) {
                std::cmp::Ordering::Greater => {
                    return Err(bad("starts out of order"));
                }
                std::cmp::Ordering::Equal => {
                    if seqno >= *prev_seqno {
                        return Err(bad("seqnos of one start not strictly descending"));
                    }
                    if prev_end.as_deref() != end {
                        return Err(bad("fragments of one start with different ends"));
                    }
                }
                std::cmp::Ordering::Less => match prev_end {
                    None => return Err(bad("a fragment follows one without an end")),
                    Some(prev_end) if prev_end.as_slice() > start => {
                        return Err(bad("fragment overlaps the previous one"));
                    }
                    Some(_) => {}
                },
            }
        }
        out.push_fragment(start, end, seqno);
        count += 1;
        prev = Some((start.to_vec(), end.map(<[u8]>::to_vec), seqno));
        it.next()?;
    }
    if count != expected {
        return Err(Error::corruption(
            origin.file_offset,
            format!("range-del block holds {count} fragments, properties say {expected}"),
        ));
    }
    out.build_search_index();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::range_del::RangeTombstone;
    use bytes::Bytes;

    fn t(start: &str, end: Option<&str>, seqno: SeqNo) -> RangeTombstone {
        RangeTombstone::new(start.as_bytes(), end.map(str::as_bytes), seqno)
    }

    fn origin(file_offset: u64) -> Origin {
        Origin {
            file_offset,
            exact: true,
        }
    }

    #[test]
    fn round_trip() {
        let f = FragmentedRangeTombstones::fragment([
            t("b", Some("f"), 5),
            t("d", Some("h"), 7),
            t("x", None, 2),
            t("", Some("a"), 9),
        ]);
        let mut b = BlockBuilder::new(1);
        encode(&f, &mut b).unwrap();
        let block = Block::new(Bytes::copy_from_slice(b.finish())).unwrap();
        let back = decode(&block, origin(0), f.len() as u64).unwrap();
        assert_eq!(back, f);
        let err = decode(&block, origin(100), f.len() as u64 + 1).unwrap_err();
        assert!(
            matches!(err, Error::Corruption { offset: 100, .. }),
            "{err}"
        );
    }

    /// An entry as raw parts: start, seqno, kind, end.
    type RawEntry = (&'static str, u64, u8, &'static str);

    /// A block of raw entries, restart interval 1.
    fn raw_block(entries: &[RawEntry]) -> Block {
        let mut b = BlockBuilder::new(1);
        for &(start, seqno, kind, end) in entries {
            let mut key = start.as_bytes().to_vec();
            key.extend_from_slice(&((seqno << 8) | u64::from(kind)).to_le_bytes());
            b.add(&key, end.as_bytes());
        }
        Block::new(Bytes::copy_from_slice(b.finish())).unwrap()
    }

    /// Offset of entry `i` in a block with restart interval 1.
    fn entry_offset(block: &Block, i: usize) -> u64 {
        u64::from(block.restart_point(i).unwrap())
    }

    #[test]
    fn each_rule_is_corruption_at_the_entry_that_breaks_it() {
        const RD: u8 = 3;
        /// What is wrong, the entries, the bad entry, the reason's words.
        type Case = (&'static str, Vec<RawEntry>, usize, &'static str);
        let cases: [Case; 8] = [
            (
                "kind",
                vec![("a", 5, RD, "b"), ("c", 5, 1, "d")],
                1,
                "kind 1",
            ),
            (
                "end <= start",
                vec![("a", 5, RD, "b"), ("c", 5, RD, "c")],
                1,
                "end not after",
            ),
            (
                "starts out of order",
                vec![("c", 5, RD, "d"), ("a", 5, RD, "b")],
                1,
                "out of order",
            ),
            (
                "seqno ascending",
                vec![("a", 4, RD, "b"), ("a", 5, RD, "b")],
                1,
                "descending",
            ),
            (
                "seqno repeated",
                vec![("a", 5, RD, "b"), ("a", 5, RD, "b")],
                1,
                "descending",
            ),
            (
                "ends differ",
                vec![("a", 5, RD, "b"), ("a", 4, RD, "c")],
                1,
                "different ends",
            ),
            (
                "overlap",
                vec![("a", 5, RD, "d"), ("a", 4, RD, "d"), ("c", 3, RD, "e")],
                2,
                "overlaps",
            ),
            (
                "after no end",
                vec![("a", 5, RD, ""), ("c", 3, RD, "e")],
                1,
                "without an end",
            ),
        ];
        for (what, entries, bad_entry, reason) in cases {
            let block = raw_block(&entries);
            let err = decode(&block, origin(1000), entries.len() as u64).unwrap_err();
            match err {
                Error::Corruption { offset, reason: r } => {
                    assert_eq!(
                        offset,
                        1000 + entry_offset(&block, bad_entry),
                        "{what}: {r}"
                    );
                    assert!(r.contains(reason), "{what}: {r}");
                }
                other => panic!("{what}: {other}"),
            }
            // The same entries without the breaking one decode.
            let good = raw_block(&entries[..bad_entry]);
            assert!(decode(&good, origin(0), bad_entry as u64).is_ok(), "{what}");
        }
        // A key shorter than a trailer.
        let mut b = BlockBuilder::new(1);
        b.add(b"short", b"");
        let block = Block::new(Bytes::copy_from_slice(b.finish())).unwrap();
        let err = decode(&block, origin(7), 1).unwrap_err();
        assert!(matches!(err, Error::Corruption { offset: 7, .. }), "{err}");
        // Adjacent stacks (end == next start) and a last stack without end
        // are fine.
        let block = raw_block(&[("a", 5, RD, "c"), ("c", 6, RD, ""), ("c", 2, RD, "")]);
        let f = decode(&block, origin(0), 3).unwrap();
        assert_eq!(f.max_covering_seqno(b"zz", 100), Some(6));
        assert_eq!(f.max_covering_seqno(b"b", 100), Some(5));
    }

    #[test]
    fn a_compressed_block_reports_its_own_offset() {
        let block = raw_block(&[("a", 5, 3, "b"), ("c", 5, 1, "d")]);
        let inexact = Origin {
            file_offset: 500,
            exact: false,
        };
        let err = decode(&block, inexact, 2).unwrap_err();
        assert!(
            matches!(err, Error::Corruption { offset: 500, .. }),
            "{err}"
        );
    }
}
