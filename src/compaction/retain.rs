//! Which versions a compaction keeps.
//!
//! Entries arrive in internal-key order: for each user key, newest first.
//! The live snapshots cut the sequence space into stripes; a reader at a
//! snapshot sees the newest version in its stripe or an older one. So for
//! each key the compaction keeps the newest version in each stripe that
//! has one, and drops the rest. A tombstone in the oldest stripe (visible
//! to every reader) is dropped too, with everything older, once no deeper
//! level can hold the key: then no reader can tell it was ever there.

use strata_sstable::{SeqNo, ValueKind};

pub(crate) struct Retainer {
    /// Snapshot sequence numbers, ascending.
    snapshots: Vec<SeqNo>,
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
}

impl Retainer {
    /// `snapshots` must be sorted ascending; they are the live snapshots
    /// plus the visible sequence number when the compaction started (the
    /// point every future reader sees at least).
    pub fn new(mut snapshots: Vec<SeqNo>) -> Self {
        snapshots.sort_unstable();
        snapshots.dedup();
        Retainer {
            snapshots,
            key: Vec::new(),
            has_key: false,
            prev_stripe: None,
        }
    }

    /// Decide for the next entry. `deeper_may_have_key` is asked only for
    /// tombstones in the oldest stripe.
    pub fn decide(
        &mut self,
        user_key: &[u8],
        seqno: SeqNo,
        kind: ValueKind,
        deeper_may_have_key: impl FnOnce(&[u8]) -> bool,
    ) -> Decision {
        if !self.has_key || self.key != user_key {
            self.key.clear();
            self.key.extend_from_slice(user_key);
            self.has_key = true;
            self.prev_stripe = None;
        }
        let stripe = self.snapshots.partition_point(|&s| s < seqno);
        if self.prev_stripe == Some(stripe) {
            return Decision::DropShadowed;
        }
        self.prev_stripe = Some(stripe);
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
        let mut r = Retainer::new(snapshots);
        entries
            .iter()
            .map(|&(k, s, kind)| r.decide(k.as_bytes(), s, kind, |_| deeper))
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
}
