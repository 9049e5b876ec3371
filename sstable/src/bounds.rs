//! A table's user-key bounds: the range its point entries and its range
//! tombstones cover. The engine keeps them per file (`FileMeta`) to pick
//! which tables a read or a compaction must look at.
//!
//! The smallest key is always inclusive. The largest is the last point key
//! (inclusive) unless a range tombstone reaches past it: then it is that
//! tombstone's end (exclusive), or there is no largest key at all when the
//! last tombstone has no end.

use crate::properties::TableProperties;
use crate::range_del::{FragmentedRangeTombstones, RangeEnd};
use std::cmp::Ordering;

/// How a table's `largest` key bounds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LargestBound {
    /// `largest` is a key of the table: the range ends at it, inclusive.
    /// What a table of point keys has.
    #[default]
    Included,
    /// `largest` is a range tombstone's end: the range ends before it.
    Excluded,
    /// A range tombstone without an end: the table's range runs past
    /// every key (`largest` is empty).
    Unbounded,
}

impl LargestBound {
    /// The order of range ends `(key, bound)`: `Excluded(k) < Included(k)
    /// < Excluded(k')` for `k < k'`, and `Unbounded` above every end. The
    /// end of several ranges together is the greatest of their ends.
    /// (`Excluded(k ++ [0])` holds exactly the keys `Included(k)` holds
    /// yet sorts after it: the order never puts an end holding more keys
    /// below one holding fewer, which is what a union needs.)
    pub fn cmp_end(a: &[u8], a_bound: LargestBound, b: &[u8], b_bound: LargestBound) -> Ordering {
        use LargestBound::{Excluded, Included, Unbounded};
        // Among ends at the same key, an exclusive one holds one key fewer.
        let rank = |bound| match bound {
            Excluded => 0,
            Included | Unbounded => 1,
        };
        match (a_bound, b_bound) {
            (Unbounded, Unbounded) => Ordering::Equal,
            (Unbounded, _) => Ordering::Greater,
            (_, Unbounded) => Ordering::Less,
            _ => a.cmp(b).then(rank(a_bound).cmp(&rank(b_bound))),
        }
    }

    /// Whether a range ending at `end` (bounded by `self`) holds no key at
    /// or after `user_key`.
    pub fn ends_before_key(self, end: &[u8], user_key: &[u8]) -> bool {
        match self {
            LargestBound::Included => end < user_key,
            LargestBound::Excluded => end <= user_key,
            LargestBound::Unbounded => false,
        }
    }

    /// How a printed range closes after its `shown` largest key:
    /// `shown]`, `shown)`, or `+inf)` when it has no end.
    pub fn close(self, shown: &str) -> String {
        match self {
            LargestBound::Included => format!("{shown}]"),
            LargestBound::Excluded => format!("{shown})"),
            LargestBound::Unbounded => "+inf)".to_owned(),
        }
    }
}

/// The user-key range a table covers, tombstones included.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableBounds {
    /// The smallest user key (inclusive): the first point key or the
    /// first tombstone's start, whichever is smaller.
    pub smallest: Vec<u8>,
    /// The largest user key, read as `largest_bound` says (empty when
    /// `Unbounded`).
    pub largest: Vec<u8>,
    /// Whether `largest` is inclusive, exclusive, or absent.
    pub largest_bound: LargestBound,
}

impl TableBounds {
    /// The bounds of a table with these properties and tombstones. A table
    /// with neither points nor tombstones has empty keys and `Included`
    /// (it covers nothing; the engine never keeps one).
    pub fn new(
        properties: &TableProperties,
        tombstones: Option<&FragmentedRangeTombstones>,
    ) -> TableBounds {
        let points = (properties.num_entries > 0).then_some((
            properties.smallest_user_key.as_slice(),
            properties.largest_user_key.as_slice(),
        ));
        let tombstones = tombstones.filter(|t| !t.is_empty());
        let smallest = match (points, tombstones.and_then(|t| t.smallest_start())) {
            (Some((p, _)), Some(t)) => p.min(t),
            (Some((p, _)), None) => p,
            (None, Some(t)) => t,
            (None, None) => &[],
        };
        let (largest, largest_bound) = match (points, tombstones.and_then(|t| t.largest_end())) {
            (_, Some(RangeEnd::Unbounded)) => (&[][..], LargestBound::Unbounded),
            // An end equal to the last point key covers nothing after it:
            // the point key, inclusive, is the tighter bound.
            (Some((_, p)), Some(RangeEnd::Bounded(end))) if end <= p => (p, LargestBound::Included),
            (_, Some(RangeEnd::Bounded(end))) => (end, LargestBound::Excluded),
            (Some((_, p)), None) => (p, LargestBound::Included),
            (None, None) => (&[][..], LargestBound::Included),
        };
        TableBounds {
            smallest: smallest.to_vec(),
            largest: largest.to_vec(),
            largest_bound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::range_del::RangeTombstone;
    use bytes::Bytes;

    fn props(points: Option<(&str, &str)>) -> TableProperties {
        let mut p = TableProperties::default();
        if let Some((s, l)) = points {
            p.num_entries = 2;
            p.smallest_user_key = s.as_bytes().to_vec();
            p.largest_user_key = l.as_bytes().to_vec();
        }
        p
    }

    fn tombstones(list: &[(&str, Option<&str>)]) -> FragmentedRangeTombstones {
        FragmentedRangeTombstones::fragment(list.iter().map(|(s, e)| RangeTombstone {
            start: Bytes::copy_from_slice(s.as_bytes()),
            end: e.map(|e| Bytes::copy_from_slice(e.as_bytes())),
            seqno: 7,
        }))
    }

    fn bounds(
        points: Option<(&str, &str)>,
        list: &[(&str, Option<&str>)],
    ) -> (String, String, LargestBound) {
        let t = tombstones(list);
        let b = TableBounds::new(&props(points), Some(&t));
        (
            String::from_utf8(b.smallest).unwrap_or_default(),
            String::from_utf8(b.largest).unwrap_or_default(),
            b.largest_bound,
        )
    }

    fn owned(s: &str, l: &str, bound: LargestBound) -> (String, String, LargestBound) {
        (s.to_string(), l.to_string(), bound)
    }

    #[test]
    fn points_alone_are_inclusive() {
        use LargestBound::*;
        assert_eq!(bounds(Some(("b", "m")), &[]), owned("b", "m", Included));
        assert_eq!(
            TableBounds::new(&props(Some(("b", "m"))), None),
            TableBounds {
                smallest: b"b".to_vec(),
                largest: b"m".to_vec(),
                largest_bound: Included
            }
        );
        assert_eq!(bounds(None, &[]), owned("", "", Included));
    }

    #[test]
    fn a_tombstone_widens_the_bounds_only_where_it_reaches_past_the_points() {
        use LargestBound::*;
        let p = Some(("c", "m"));
        assert_eq!(bounds(p, &[("a", Some("d"))]), owned("a", "m", Included));
        assert_eq!(bounds(p, &[("d", Some("m"))]), owned("c", "m", Included));
        assert_eq!(
            bounds(p, &[("d", Some("m\0"))]),
            owned("c", "m\0", Excluded)
        );
        assert_eq!(bounds(p, &[("x", Some("z"))]), owned("c", "z", Excluded));
        assert_eq!(bounds(p, &[("d", None)]), owned("c", "", Unbounded));
        assert_eq!(bounds(None, &[("d", Some("f"))]), owned("d", "f", Excluded));
        assert_eq!(bounds(None, &[("", None)]), owned("", "", Unbounded));
    }
}
