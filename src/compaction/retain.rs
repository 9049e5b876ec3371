//! Which versions a compaction keeps.
//!
//! Entries arrive in internal-key order: for each user key, newest first.
//! The live snapshots cut the sequence space into stripes; a reader at a
//! snapshot sees the newest version in its stripe or an older one. So for
//! each key the compaction keeps the newest version in each stripe that
//! has one, and drops the rest. A tombstone in the oldest stripe (visible
//! to every reader) is dropped too, with everything older, once no deeper
//! level can hold the key: then no reader can tell it was ever there.
//!
//! A range tombstone `t` covering the key deletes a version `q < t` for
//! every reader that sees `t`. When no snapshot lies in `[q, t)` every
//! reader that sees `q` sees `t` too, so the version is dropped as covered
//! (`range_dels.rs` decides which range tombstones are written).

use strata_sstable::{SeqNo, ValueKind};

/// The stripes the live snapshots cut the sequence space into. Stripe `i`
/// holds the seqnos in `(snapshots[i - 1], snapshots[i]]`; stripe 0, the
/// oldest, is visible to every reader, and one past the last snapshot
/// holds what is newer than all of them.
#[derive(Debug, Clone)]
pub(crate) struct Stripes {
    /// Snapshot sequence numbers, ascending, without repeats.
    snapshots: Vec<SeqNo>,
    /// The newest live snapshot (the others in `snapshots` may include
    /// the visible sequence number, which no reader is pinned at).
    newest_live: Option<SeqNo>,
}

impl Stripes {
    /// `snapshots`: the live snapshots plus the visible sequence number
    /// when the compaction started (the point every future reader sees at
    /// least), in any order.
    pub fn new(mut snapshots: Vec<SeqNo>) -> Stripes {
        snapshots.sort_unstable();
        snapshots.dedup();
        // Until told otherwise, every one counts as a live snapshot.
        let newest_live = snapshots.last().copied();
        Stripes {
            snapshots,
            newest_live,
        }
    }

    /// The same stripes, with `newest_live` the newest snapshot a reader
    /// holds (`None`: none), which the compaction filter must respect.
    pub fn with_newest_live(mut self, newest_live: Option<SeqNo>) -> Stripes {
        self.newest_live = newest_live;
        self
    }

    /// Whether a live snapshot may read the version at `seqno` (one at or
    /// above it does, if no newer version is below the snapshot).
    pub fn seen_by_a_snapshot(&self, seqno: SeqNo) -> bool {
        self.newest_live.is_some_and(|s| s >= seqno)
    }

    /// The stripe of `seqno`.
    pub fn of(&self, seqno: SeqNo) -> usize {
        self.snapshots.partition_point(|&s| s < seqno)
    }

    /// Whether some snapshot lies in `[from, to)`: a reader there sees a
    /// version at `from` but not a tombstone at `to`.
    pub fn any_in(&self, from: SeqNo, to: SeqNo) -> bool {
        let i = self.snapshots.partition_point(|&s| s < from);
        self.snapshots.get(i).is_some_and(|&s| s < to)
    }
}

pub(crate) struct Retainer {
    stripes: Stripes,
    key: Vec<u8>,
    has_key: bool,
    /// Stripe of the previous (newer) entry of the current key.
    prev_stripe: Option<usize>,
}

/// What to do with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Keep,
    /// A newer version of the key is visible to every reader that could
    /// see this one.
    DropShadowed,
    /// A tombstone no reader needs, with nothing beneath it.
    DropTombstone,
    /// A range tombstone of the compaction covers it for every reader
    /// that could see it.
    DropCovered,
}

impl Retainer {
    pub fn new(stripes: Stripes) -> Self {
        Retainer {
            stripes,
            key: Vec::new(),
            has_key: false,
            prev_stripe: None,
        }
    }

    /// Judge the current key's next entry as if it were the first: the
    /// entry kept before it was a merge operand written as it was, which
    /// shadows nothing below it.
    pub fn forget_key(&mut self) {
        self.prev_stripe = None;
    }

    /// Decide for the next entry. `covering` holds the seqnos of the
    /// compaction's range tombstones covering `user_key`, newest first
    /// (empty if none). `deeper_may_have_key` is asked only for point
    /// tombstones in the oldest stripe.
    pub fn decide(
        &mut self,
        user_key: &[u8],
        seqno: SeqNo,
        kind: ValueKind,
        covering: &[SeqNo],
        deeper_may_have_key: impl FnOnce(&[u8]) -> bool,
    ) -> Decision {
        if !self.has_key || self.key != user_key {
            self.key.clear();
            self.key.extend_from_slice(user_key);
            self.has_key = true;
            self.prev_stripe = None;
        }
        let stripe = self.stripes.of(seqno);
        if self.prev_stripe == Some(stripe) {
            return Decision::DropShadowed;
        }
        // Older versions in this stripe are shadowed by this one whether it
        // is kept or covered (a tombstone newer than it is newer than them);
        // those in older stripes are judged again.
        self.prev_stripe = Some(stripe);
        // The oldest tombstone newer than the entry: if any covering
        // tombstone shares the entry's stripe, this one does.
        let newer = covering.partition_point(|&t| t > seqno);
        if let Some(&t) = newer.checked_sub(1).and_then(|i| covering.get(i)) {
            if self.stripes.of(t) == stripe {
                return Decision::DropCovered;
            }
        }
        if kind == ValueKind::Delete && stripe == 0 && !deeper_may_have_key(user_key) {
            return Decision::DropTombstone;
        }
        Decision::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::*;
    use ValueKind::*;

    fn run(
        snapshots: Vec<SeqNo>,
        deeper: bool,
        entries: &[(&str, SeqNo, ValueKind)],
    ) -> Vec<Decision> {
        run_covered(snapshots, deeper, &[], entries)
    }

    /// As `run`, with range tombstones at `covering` (newest first)
    /// over every key.
    fn run_covered(
        snapshots: Vec<SeqNo>,
        deeper: bool,
        covering: &[SeqNo],
        entries: &[(&str, SeqNo, ValueKind)],
    ) -> Vec<Decision> {
        let mut r = Retainer::new(Stripes::new(snapshots));
        entries
            .iter()
            .map(|&(k, s, kind)| r.decide(k.as_bytes(), s, kind, covering, |_| deeper))
            .collect()
    }

    #[test]
    fn without_snapshots_only_the_newest_version_survives() {
        let got = run(
            vec![],
            true,
            &[
                ("a", 9, Put),
                ("a", 5, Put),
                ("a", 2, Delete),
                ("b", 3, Put),
            ],
        );
        assert_eq!(got, [Keep, DropShadowed, DropShadowed, Keep]);
    }

    #[test]
    fn each_snapshot_keeps_the_newest_version_it_can_see() {
        // Snapshots at 4 and 7: stripes (..4], (4..7], (7..).
        let got = run(
            vec![7, 4],
            true,
            &[
                ("a", 9, Put),
                ("a", 8, Put),
                ("a", 7, Put),
                ("a", 5, Put),
                ("a", 3, Put),
                ("a", 1, Put),
            ],
        );
        assert_eq!(
            got,
            [Keep, DropShadowed, Keep, DropShadowed, Keep, DropShadowed]
        );
    }

    #[test]
    fn tombstones_drop_only_when_no_snapshot_or_deeper_level_needs_them() {
        // Visible to every snapshot and nothing deeper: gone, with the
        // versions under it.
        assert_eq!(
            run(vec![10], false, &[("a", 5, Delete), ("a", 3, Put)]),
            [DropTombstone, DropShadowed]
        );
        // A deeper level may hold the key: the tombstone must stay.
        assert_eq!(
            run(vec![10], true, &[("a", 5, Delete), ("a", 3, Put)]),
            [Keep, DropShadowed]
        );
        // A snapshot older than the tombstone still sees the put under it.
        assert_eq!(
            run(vec![4, 10], false, &[("a", 5, Delete), ("a", 3, Put)]),
            [Keep, Keep]
        );
    }

    #[test]
    fn a_range_tombstone_drops_what_it_covers_only_within_a_stripe() {
        // Each row: snapshots, covering range tombstones (newest first),
        // entries of one key, and what the compaction must do with them.
        type Row = (
            Vec<SeqNo>,
            &'static [SeqNo],
            &'static [(&'static str, SeqNo, ValueKind)],
            &'static [Decision],
        );
        let rows: [Row; 8] = [
            // No snapshot between the put and the tombstone: covered, and
            // so is every older version.
            (
                vec![10],
                &[6],
                &[("a", 5, Put), ("a", 3, Put)],
                &[DropCovered, DropShadowed],
            ),
            // A snapshot between the put and the tombstone keeps the put:
            // the snapshot at 4 sees it and not the tombstone.
            (vec![4, 10], &[6], &[("a", 3, Put)], &[Keep]),
            // A put newer than the tombstone stays; the one under it goes.
            (
                vec![10],
                &[6],
                &[("a", 8, Put), ("a", 5, Put)],
                &[Keep, DropShadowed],
            ),
            (
                vec![7, 10],
                &[6],
                &[("a", 8, Put), ("a", 5, Put)],
                &[Keep, DropCovered],
            ),
            // A point tombstone under a range tombstone drops, though a
            // deeper level may hold the key (the range tombstone stays).
            (vec![10], &[6], &[("a", 3, Delete)], &[DropCovered]),
            // Covered in the newer stripe, kept in the older one (the
            // snapshot at 4 sees it), shadowed below that.
            (
                vec![4, 10],
                &[6],
                &[("a", 5, Put), ("a", 3, Put), ("a", 2, Put)],
                &[DropCovered, Keep, DropShadowed],
            ),
            // The oldest tombstone newer than the entry decides: 6 shares
            // the put's stripe below the snapshot at 7.
            (
                vec![7, 10],
                &[9, 6],
                &[("a", 8, Put), ("a", 5, Put)],
                &[DropCovered, DropCovered],
            ),
            // A snapshot at 5 sees the put at 5 and neither tombstone.
            (vec![5, 10], &[9, 6], &[("a", 5, Put)], &[Keep]),
        ];
        for (snapshots, covering, entries, want) in rows {
            let got = run_covered(snapshots.clone(), true, covering, entries);
            assert_eq!(
                got, want,
                "snapshots {snapshots:?}, tombstones {covering:?}, {entries:?}"
            );
        }
        // Without the range tombstone, the same point tombstone stays.
        assert_eq!(run(vec![10], true, &[("a", 3, Delete)]), [Keep]);
    }

    #[test]
    fn stripes_tell_whether_a_snapshot_lies_between_two_seqnos() {
        let s = Stripes::new(vec![7, 4, 4]);
        assert_eq!(
            [s.of(1), s.of(4), s.of(5), s.of(7), s.of(8)],
            [0, 0, 1, 1, 2]
        );
        assert!(s.any_in(3, 5) && s.any_in(4, 5) && s.any_in(7, 8));
        assert!(!s.any_in(5, 7) && !s.any_in(8, 100) && !s.any_in(1, 4));
    }
}
