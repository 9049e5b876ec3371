//! The key ranges a transaction's range deletes cover, in one keyspace:
//! their union, as disjoint sorted `[start, end)` intervals, so its reads
//! ask "is this snapshot key deleted, and where does the deletion end?"
//! in one lookup.

use std::collections::BTreeMap;
use std::ops::Bound;

/// One covered interval: `[start, end)`, `end` `None` for no end.
#[cfg(test)]
type Interval = (Vec<u8>, Option<Vec<u8>>);

/// The union of range deletes (see the module comment).
#[derive(Clone, Debug, Default)]
pub(crate) struct DeletedRanges {
    /// Start to end, disjoint and not touching (touching ones are joined).
    map: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

/// Whether `[.., end)` reaches `key`: `end` after it, or no end.
fn reaches(end: Option<&[u8]>, key: &[u8]) -> bool {
    end.is_none_or(|e| e >= key)
}

impl DeletedRanges {
    /// Add `[start, end)` (not empty: `end` after `start`, or none).
    pub fn insert(&mut self, start: &[u8], end: Option<&[u8]>) {
        let mut start = start.to_vec();
        let mut end = end.map(<[u8]>::to_vec);
        // The interval starting at or before `start`, if it reaches it.
        if let Some((s, e)) = self.map.range(..=start.clone()).next_back() {
            if reaches(e.as_deref(), &start) {
                start = s.clone();
                if end.is_some() && e.as_ref().is_none_or(|e| Some(e) > end.as_ref()) {
                    end = e.clone();
                }
            }
        }
        // Every interval starting inside `[start, end]` joins it.
        let upper = match &end {
            Some(e) => Bound::Included(e.clone()),
            None => Bound::Unbounded,
        };
        let joined: Vec<Vec<u8>> = self
            .map
            .range((Bound::Included(start.clone()), upper))
            .map(|(s, _)| s.clone())
            .collect();
        for s in joined {
            if let Some(e) = self.map.remove(&s) {
                if end.is_some() && e.as_ref().is_none_or(|e| Some(e) > end.as_ref()) {
                    end = e;
                }
            }
        }
        self.map.insert(start, end);
    }

    /// The interval holding `key`, if one does.
    pub fn covering(&self, key: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
        let (s, e) = self
            .map
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()?;
        e.as_deref()
            .is_none_or(|e| key < e)
            .then_some((s.as_slice(), e.as_deref()))
    }

    /// Whether `key` is deleted.
    pub fn covers(&self, key: &[u8]) -> bool {
        self.covering(key).is_some()
    }

    /// The intervals meeting `[lower, upper)`, in order (for an iterator,
    /// which copies them).
    pub fn within(&self, lower: Option<&[u8]>, upper: Option<&[u8]>) -> DeletedRanges {
        let lower = lower.unwrap_or_default();
        let mut out = DeletedRanges::default();
        let first = self
            .map
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(lower)))
            .next_back()
            .filter(|(_, e)| e.as_deref().is_none_or(|e| e > lower));
        let rest = self
            .map
            .range::<[u8], _>((Bound::Excluded(lower), Bound::Unbounded))
            .take_while(|(s, _)| upper.is_none_or(|u| s.as_slice() < u));
        for (s, e) in first.into_iter().chain(rest) {
            out.map.insert(s.clone(), e.clone());
        }
        out
    }

    /// The intervals, in order.
    #[cfg(test)]
    pub fn intervals(&self) -> Vec<Interval> {
        self.map
            .iter()
            .map(|(s, e)| (s.clone(), e.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn iv(s: &str, e: Option<&str>) -> Interval {
        (s.as_bytes().to_vec(), e.map(|e| e.as_bytes().to_vec()))
    }

    fn add(d: &mut DeletedRanges, s: &str, e: Option<&str>) {
        d.insert(s.as_bytes(), e.map(str::as_bytes));
    }

    #[test]
    fn overlapping_and_touching_intervals_join() {
        let mut d = DeletedRanges::default();
        add(&mut d, "c", Some("e"));
        add(&mut d, "g", Some("i"));
        assert_eq!(d.intervals(), vec![iv("c", Some("e")), iv("g", Some("i"))]);
        add(&mut d, "e", Some("f")); // touches c..e
        assert_eq!(d.intervals(), vec![iv("c", Some("f")), iv("g", Some("i"))]);
        add(&mut d, "d", Some("h")); // overlaps both
        assert_eq!(d.intervals(), vec![iv("c", Some("i"))]);
        add(&mut d, "a", Some("b"));
        add(&mut d, "d", Some("e")); // inside
        assert_eq!(d.intervals(), vec![iv("a", Some("b")), iv("c", Some("i"))]);
        add(&mut d, "h", None); // no end swallows the rest
        assert_eq!(d.intervals(), vec![iv("a", Some("b")), iv("c", None)]);
        add(&mut d, "", Some("a"));
        assert_eq!(d.intervals(), vec![iv("", Some("b")), iv("c", None)]);
        add(&mut d, "x", Some("y")); // inside an endless one
        assert_eq!(d.intervals(), vec![iv("", Some("b")), iv("c", None)]);
    }

    #[test]
    fn covering_finds_the_interval_holding_a_key() {
        let mut d = DeletedRanges::default();
        add(&mut d, "b", Some("d"));
        add(&mut d, "x", None);
        assert!(!d.covers(b"a"));
        assert_eq!(d.covering(b"b"), Some((&b"b"[..], Some(&b"d"[..]))));
        assert!(d.covers(b"c\xff"));
        assert!(!d.covers(b"d"));
        assert_eq!(d.covering(b"zz"), Some((&b"x"[..], None)));
    }

    #[test]
    fn within_keeps_the_intervals_meeting_the_bounds() {
        let mut d = DeletedRanges::default();
        add(&mut d, "a", Some("c"));
        add(&mut d, "e", Some("g"));
        add(&mut d, "m", None);
        let w = |lo: Option<&str>, hi: Option<&str>| {
            d.within(lo.map(str::as_bytes), hi.map(str::as_bytes))
                .intervals()
        };
        assert_eq!(w(Some("b"), Some("e")), vec![iv("a", Some("c"))]);
        assert_eq!(w(Some("c"), Some("f")), vec![iv("e", Some("g"))]);
        assert_eq!(w(Some("g"), Some("m")), Vec::<Interval>::new());
        assert_eq!(w(Some("z"), None), vec![iv("m", None)]);
        assert_eq!(w(None, None).len(), 3);
    }
}
