//! Where a table's keys begin and end, and the only comparisons of them.
//!
//! A table of point keys covers `[smallest, largest]`. A range tombstone
//! `[s, e)` stored in it can carry its range past its last point key, to
//! end just before `e` (`[smallest, e)`), or to no end at all when the
//! tombstone has none (docs/design/range-deletes.md, section 4). Adjacent
//! tables of a level may then share a key: one ending `Excluded(c)`, the
//! next starting at `c`. A raw `largest < key` reads such a table as
//! holding `c`, and picks a wrong level or misses a table, so every
//! comparison of a table's bounds goes through [`FileMeta`]'s methods
//! here, and through [`KeyRange`] for ranges of several tables.

use super::edit::FileMeta;
use std::cmp::Ordering;

/// How a table's (or a [`KeyRange`]'s) largest key bounds it: the
/// sstable crate's type, which a built table reports in its bounds, so a
/// `FileMeta` takes it from the table unchanged.
pub use strata_sstable::LargestBound;

/// A range of user keys: from `start` (inclusive) to `end`, bounded as
/// `end_bound` says (`end` empty when it is `Unbounded`). The empty key
/// is the smallest there is, so a range with no start starts at `b""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// The first key the range may hold.
    pub start: Vec<u8>,
    /// Where the range ends (empty when `end_bound` is `Unbounded`).
    pub end: Vec<u8>,
    /// How `end` bounds the range.
    pub end_bound: LargestBound,
}

impl KeyRange {
    /// `[start, end]`, or `[start, end)`, or `[start, +inf)`, as `end_bound`
    /// says (the end key is dropped when it is `Unbounded`).
    pub fn new(start: &[u8], end: &[u8], end_bound: LargestBound) -> KeyRange {
        let end = match end_bound {
            LargestBound::Unbounded => Vec::new(),
            LargestBound::Included | LargestBound::Excluded => end.to_vec(),
        };
        KeyRange {
            start: start.to_vec(),
            end,
            end_bound,
        }
    }

    /// The keys from `lower` to `upper`, both inclusive; `None` leaves
    /// that side open (a manual compaction's range).
    pub fn inclusive(lower: Option<&[u8]>, upper: Option<&[u8]>) -> KeyRange {
        match upper {
            Some(upper) => KeyRange::new(lower.unwrap_or_default(), upper, LargestBound::Included),
            None => KeyRange::new(lower.unwrap_or_default(), &[], LargestBound::Unbounded),
        }
    }

    /// Whether every key of the range is below `user_key`.
    pub fn ends_before(&self, user_key: &[u8]) -> bool {
        self.end_bound.ends_before_key(&self.end, user_key)
    }

    /// Whether every key of the range is above `user_key`.
    pub fn starts_after(&self, user_key: &[u8]) -> bool {
        self.start.as_slice() > user_key
    }

    /// Whether the range holds `user_key`.
    pub fn contains(&self, user_key: &[u8]) -> bool {
        !self.starts_after(user_key) && !self.ends_before(user_key)
    }

    /// Whether the two ranges hold a key in common.
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        !self.ends_before(&other.start) && !other.ends_before(&self.start)
    }

    /// Whether the range holds no key at all: its end at or before its
    /// start (a table's range never is; a manifest saying so is damaged).
    pub fn is_empty(&self) -> bool {
        self.ends_before(&self.start)
    }

    /// Grow the range to cover `other` too: the smaller start, the
    /// greater end under [`LargestBound::cmp_end`].
    pub fn cover(&mut self, other: &KeyRange) {
        if other.start < self.start {
            self.start.clone_from(&other.start);
        }
        let other_ends_later =
            LargestBound::cmp_end(&other.end, other.end_bound, &self.end, self.end_bound)
                == Ordering::Greater;
        if other_ends_later {
            self.end.clone_from(&other.end);
            self.end_bound = other.end_bound;
        }
    }
}

/// A table's bounds: `smallest` is always inclusive, `largest` bounded as
/// `largest_bound` says. From range deletes on, these are the only way
/// the engine compares a table's bounds with keys or ranges.
impl FileMeta {
    /// Whether every key the table may hold is below `user_key`: no
    /// deeper table's version of it, and no seek to it, needs this table.
    pub fn ends_before(&self, user_key: &[u8]) -> bool {
        self.largest_bound.ends_before_key(&self.largest, user_key)
    }

    /// Whether every key the table may hold is above `user_key`.
    pub fn starts_after(&self, user_key: &[u8]) -> bool {
        self.smallest.as_slice() > user_key
    }

    /// Whether `user_key` lies in the table's range (a point key there or
    /// a range tombstone covering it; the table need not hold it).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        !self.starts_after(user_key) && !self.ends_before(user_key)
    }

    /// Whether the table's range and `range` hold a key in common.
    pub fn overlaps(&self, range: &KeyRange) -> bool {
        !self.ends_before(&range.start) && !range.ends_before(&self.smallest)
    }

    /// The table's range.
    pub fn key_range(&self) -> KeyRange {
        KeyRange::new(&self.smallest, &self.largest, self.largest_bound)
    }
}

#[cfg(test)]
mod tests {
    use super::LargestBound::{Excluded, Included, Unbounded};
    use super::*;

    fn meta(smallest: &[u8], largest: &[u8], largest_bound: LargestBound) -> FileMeta {
        FileMeta {
            number: 1,
            size: 100,
            smallest: smallest.to_vec(),
            largest: largest.to_vec(),
            largest_bound,
            smallest_seqno: 1,
            largest_seqno: 2,
            blob_files: Vec::new(),
            blob_refs: Vec::new(),
        }
    }

    #[test]
    fn ends_order_excluded_below_included_below_the_next_key_and_unbounded_above_all() {
        // Ascending, every pair: cmp_end must agree with the list order.
        let ends: [(&[u8], LargestBound); 8] = [
            (b"", Excluded),
            (b"", Included),
            (b"a", Excluded),
            (b"a", Included),
            (b"a\0", Excluded),
            (b"b", Excluded),
            (b"b", Included),
            (b"", Unbounded),
        ];
        for (i, &(a, ab)) in ends.iter().enumerate() {
            for (j, &(b, bb)) in ends.iter().enumerate() {
                assert_eq!(
                    LargestBound::cmp_end(a, ab, b, bb),
                    i.cmp(&j),
                    "{a:?} {ab:?} against {b:?} {bb:?}"
                );
            }
        }
        // Whatever key an unbounded end carries, it is above every end.
        assert_eq!(
            LargestBound::cmp_end(b"a", Unbounded, b"zzz", Included),
            Ordering::Greater
        );
    }

    #[test]
    fn an_included_end_holds_its_key_and_an_excluded_one_does_not() {
        let included = meta(b"b", b"d", Included);
        let excluded = meta(b"b", b"d", Excluded);
        let unbounded = meta(b"b", b"", Unbounded);
        for t in [&included, &excluded, &unbounded] {
            assert!(t.starts_after(b"a"));
            assert!(!t.starts_after(b"b"));
            assert!(!t.may_contain(b"a"));
            assert!(t.may_contain(b"b"));
            assert!(t.may_contain(b"c\xff"));
            assert!(!t.ends_before(b"c"));
        }
        assert!(!included.ends_before(b"d") && included.may_contain(b"d"));
        assert!(included.ends_before(b"d\0") && !included.may_contain(b"d\0"));
        assert!(excluded.ends_before(b"d") && !excluded.may_contain(b"d"));
        assert!(!unbounded.ends_before(b"d") && unbounded.may_contain(b"d"));
        assert!(unbounded.may_contain(&[0xff; 100]));
    }

    #[test]
    fn a_table_ending_excluded_at_c_does_not_overlap_a_range_starting_at_c() {
        let ends_before_c = meta(b"a", b"c", Excluded);
        let holds_c = meta(b"a", b"c", Included);
        let from_c = KeyRange::new(b"c", b"e", Included);
        assert!(!ends_before_c.overlaps(&from_c));
        assert!(holds_c.overlaps(&from_c));
        // Seen from the other side: a range ending Excluded(c) misses a
        // table starting at c, an inclusive one meets it.
        let starts_at_c = meta(b"c", b"e", Included);
        assert!(!starts_at_c.overlaps(&KeyRange::new(b"a", b"c", Excluded)));
        assert!(starts_at_c.overlaps(&KeyRange::new(b"a", b"c", Included)));
        assert!(starts_at_c.overlaps(&KeyRange::new(b"a", b"c\0", Excluded)));
    }

    #[test]
    fn an_unbounded_table_overlaps_everything_from_its_start() {
        let t = meta(b"m", b"", Unbounded);
        assert!(t.overlaps(&KeyRange::new(b"m", b"m", Included)));
        assert!(t.overlaps(&KeyRange::new(&[0xff; 8], &[0xff; 9], Included)));
        assert!(t.overlaps(&KeyRange::inclusive(None, None)));
        assert!(t.overlaps(&KeyRange::new(b"a", b"m\0", Excluded)));
        assert!(!t.overlaps(&KeyRange::new(b"a", b"m", Excluded)));
        assert!(!t.overlaps(&KeyRange::new(b"a", b"l\xff", Included)));
        // And an unbounded range meets every table ending at or after its
        // start.
        let from_m = KeyRange::inclusive(Some(b"m"), None);
        assert!(meta(b"a", b"m", Included).overlaps(&from_m));
        assert!(!meta(b"a", b"m", Excluded).overlaps(&from_m));
        assert!(meta(b"x", b"z", Included).overlaps(&from_m));
    }

    #[test]
    fn the_key_range_of_a_table_is_its_bounds() {
        let t = meta(b"a", b"c", Excluded);
        assert_eq!(t.key_range(), KeyRange::new(b"a", b"c", Excluded));
        let r = meta(b"a", b"", Unbounded).key_range();
        assert!(r.contains(b"zz") && !r.contains(b"") && r.end.is_empty());
        // An unbounded end drops whatever key it was given.
        assert_eq!(KeyRange::new(b"a", b"q", Unbounded).end, b"");
    }

    #[test]
    fn covering_takes_the_smaller_start_and_the_later_end() {
        let mut r = KeyRange::new(b"c", b"f", Excluded);
        r.cover(&KeyRange::new(b"d", b"f", Included));
        assert_eq!(r, KeyRange::new(b"c", b"f", Included));
        r.cover(&KeyRange::new(b"a", b"f", Excluded));
        assert_eq!(
            r,
            KeyRange::new(b"a", b"f", Included),
            "Excluded(f) < Included(f)"
        );
        r.cover(&KeyRange::new(b"b", b"f\0", Excluded));
        assert_eq!(r, KeyRange::new(b"a", b"f\0", Excluded));
        r.cover(&KeyRange::new(b"x", b"", Unbounded));
        assert_eq!(r, KeyRange::new(b"a", b"", Unbounded));
        r.cover(&KeyRange::new(b"b", b"zzz", Included));
        assert_eq!(r, KeyRange::new(b"a", b"", Unbounded));
    }

    #[test]
    fn a_range_ending_at_or_before_its_start_is_empty() {
        assert!(!KeyRange::new(b"c", b"c", Included).is_empty());
        assert!(KeyRange::new(b"c", b"c", Excluded).is_empty());
        assert!(KeyRange::new(b"c", b"b", Included).is_empty());
        assert!(!KeyRange::new(b"c", b"c\0", Excluded).is_empty());
        assert!(!KeyRange::new(&[0xff; 4], b"", Unbounded).is_empty());
    }
}
