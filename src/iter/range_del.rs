//! Range tombstones on the read path: for the merging iterator's current
//! entry, the newest source holding a tombstone that deletes it.
//!
//! Every source of a read (memtables, L0 tables, levels) may hold range
//! tombstones. The merging iterator's children are ordered newest source
//! first, and by the source-order invariant (docs/design/range-deletes.md
//! §0) every tombstone about a key in source `i` is newer than everything
//! about that key in sources `j > i`. So a visible fragment `[s, e)@t` of
//! source `i` deletes every entry in `[s, e)` of every older source, and
//! only the entries older than `t` of source `i` itself. The
//! [`RangeDelSkipper`] answers "which source deletes this entry, and over
//! which span", and `MergingIter` skips the span with one seek per child.

use std::sync::Arc;

use strata_sstable::{Covering, FragmentedRangeTombstones, RangeEnd, SeqNo, TombstoneStack};

/// The range tombstones of one merging-iterator child.
pub(crate) struct TombstoneSource {
    /// Non-empty fragmented lists, sorted by key and disjoint: one for a
    /// memtable or an L0 table, one per table holding tombstones for a
    /// level.
    lists: Box<[Arc<FragmentedRangeTombstones>]>,
}

impl TombstoneSource {
    /// One fragmented list: a memtable's or an L0 table's. `None` when it
    /// is empty, so the child costs nothing.
    pub fn list(list: Arc<FragmentedRangeTombstones>) -> Option<Self> {
        Self::level([list])
    }

    /// A level: the lists of its tables in key order, tables without
    /// tombstones left out. A table's tombstones lie inside its key bounds
    /// (the bounds include them) and a level's tables do not overlap, so
    /// the lists are themselves sorted and disjoint, and the tables' own
    /// bounds are not needed here. `None` when no list holds a tombstone.
    pub fn level(lists: impl IntoIterator<Item = Arc<FragmentedRangeTombstones>>) -> Option<Self> {
        let lists: Box<[_]> = lists.into_iter().filter(|l| !l.is_empty()).collect();
        debug_assert!(
            lists
                .windows(2)
                .all(|w| match (w[0].largest_end(), w[1].smallest_start()) {
                    (Some(RangeEnd::Bounded(end)), Some(start)) => end <= start,
                    _ => false,
                }),
            "a level's tombstone lists overlap or are out of order"
        );
        (!lists.is_empty()).then_some(TombstoneSource { lists })
    }
}

/// A source's tombstones with a cached position, so that a scan moving
/// through keys in order finds each key's stack in amortised O(1) instead
/// of two binary searches.
struct TombstoneCursor {
    source: TombstoneSource,
    /// The first list ending after the last key looked up
    /// (`lists.len()` when none does).
    list: usize,
    /// In that list, the first stack ending after that key.
    stack: usize,
}

impl TombstoneCursor {
    fn new(source: TombstoneSource) -> Self {
        TombstoneCursor {
            source,
            list: 0,
            stack: 0,
        }
    }

    /// The stack holding `ukey` (`start <= ukey < end`), whatever its
    /// seqnos.
    fn stack_at(&mut self, ukey: &[u8]) -> Option<TombstoneStack<'_>> {
        let lists = &self.source.lists;
        let list = first_ending_after(
            lists.len(),
            self.list,
            |i| lists.get(i).is_some_and(|l| list_ends_after(l, ukey)),
            || lists.partition_point(|l| !list_ends_after(l, ukey)),
        );
        if list != self.list {
            // Entering a list from below starts at its first stack, from
            // above at its last: the neighbours of the hint are checked.
            let stacks = lists.get(list).map_or(0, |l| l.num_stacks());
            self.stack = if list > self.list {
                0
            } else {
                stacks.saturating_sub(1)
            };
            self.list = list;
        }
        let tombstones = lists.get(list)?;
        self.stack = first_ending_after(
            tombstones.num_stacks(),
            self.stack,
            |i| tombstones.stack_ends_after(i, ukey),
            || {
                tombstones
                    .stack_index_at_or_after(ukey)
                    .unwrap_or(tombstones.num_stacks())
            },
        );
        if !tombstones.stack_starts_at_or_before(self.stack, ukey) {
            return None;
        }
        tombstones.stack(self.stack)
    }

    /// The newest fragment covering `ukey` visible at `read_seq`, with the
    /// bounds of its stack.
    #[cfg(test)]
    fn covering(&mut self, ukey: &[u8], read_seq: SeqNo) -> Option<Covering> {
        self.stack_at(ukey)?.covering(read_seq)
    }
}

/// Whether some stack of `list` ends after `ukey`.
fn list_ends_after(list: &FragmentedRangeTombstones, ukey: &[u8]) -> bool {
    match list.largest_end() {
        Some(RangeEnd::Bounded(end)) => ukey < end,
        Some(RangeEnd::Unbounded) => true,
        None => false,
    }
}

/// The first index in `0..n` for which `ends_after` holds (`n` if none),
/// where `ends_after` is false up to some point and true from there on.
/// The cached `hint` and its neighbours are tried before `search`, the
/// binary search, runs.
fn first_ending_after(
    n: usize,
    hint: usize,
    ends_after: impl Fn(usize) -> bool,
    search: impl FnOnce() -> usize,
) -> usize {
    let is_first = |p: usize| (p == n || ends_after(p)) && (p == 0 || !ends_after(p - 1));
    [hint, hint + 1, hint.wrapping_sub(1)]
        .into_iter()
        .find(|&p| p <= n && is_first(p))
        .unwrap_or_else(search)
}

/// The tombstones of every child of a merging iterator, read at one
/// sequence number.
pub(crate) struct RangeDelSkipper {
    read_seq: SeqNo,
    /// Index = the merging iterator's child index; children after the
    /// last one with tombstones are left out, so a read without any
    /// tombstone allocates nothing here.
    cursors: Vec<Option<TombstoneCursor>>,
    /// How many children were pushed.
    children: usize,
    /// The children that have tombstones, ascending (newest source
    /// first). Empty: nothing is ever deleted, and skipping costs one
    /// branch per step.
    active: Vec<usize>,
}

impl RangeDelSkipper {
    /// No tombstones anywhere (compaction's merge, which must see every
    /// entry).
    pub fn none() -> Self {
        Self::new(0)
    }

    /// An empty skipper for a read at `read_seq`; [`push`](Self::push)
    /// then adds each child's tombstones in child order.
    pub fn new(read_seq: SeqNo) -> Self {
        RangeDelSkipper {
            read_seq,
            cursors: Vec::new(),
            children: 0,
            active: Vec::new(),
        }
    }

    /// The tombstones of the next child, in the merging iterator's child
    /// order (`None`: the child has none).
    pub fn push(&mut self, source: Option<TombstoneSource>) {
        if let Some(source) = source {
            self.cursors.resize_with(self.children, || None);
            self.cursors.push(Some(TombstoneCursor::new(source)));
            self.active.push(self.children);
        }
        self.children += 1;
    }

    /// The number of children pushed.
    pub fn len(&self) -> usize {
        self.children
    }

    /// Whether no child has tombstones.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// The newest source `i <= child` with a visible fragment deleting
    /// the entry `ukey@seqno` of `child`, and that fragment: from an older
    /// source `i < child` any visible fragment covering `ukey` deletes it
    /// (the source-order invariant), in `child` itself only a newer one.
    /// Entries newer than the read are never deleted here: the user-key
    /// view hides them.
    pub fn deleting(
        &mut self,
        child: usize,
        ukey: &[u8],
        seqno: SeqNo,
    ) -> Option<(usize, Covering)> {
        if seqno > self.read_seq {
            return None;
        }
        let read_seq = self.read_seq;
        for &i in self.active.iter().take_while(|&&i| i <= child) {
            let Some(Some(cursor)) = self.cursors.get_mut(i) else {
                continue;
            };
            let Some(stack) = cursor.stack_at(ukey) else {
                continue;
            };
            match stack.visible_seqno(read_seq) {
                Some(t) if i < child || t > seqno => {
                    return stack.covering(read_seq).map(|c| (i, c));
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use strata_sstable::RangeTombstone;

    fn t(start: &str, end: Option<&str>, seqno: SeqNo) -> RangeTombstone {
        RangeTombstone::new(start.as_bytes(), end.map(str::as_bytes), seqno)
    }

    fn list(ts: Vec<RangeTombstone>) -> Arc<FragmentedRangeTombstones> {
        Arc::new(FragmentedRangeTombstones::fragment(ts))
    }

    #[test]
    fn empty_sources_are_not_active() {
        assert!(TombstoneSource::list(list(vec![])).is_none());
        assert!(TombstoneSource::level([list(vec![]), list(vec![])]).is_none());
        let mut skipper = RangeDelSkipper::new(10);
        skipper.push(None);
        skipper.push(TombstoneSource::list(list(vec![])));
        assert!(skipper.is_empty());
        skipper.push(TombstoneSource::list(list(vec![t("a", Some("c"), 5)])));
        assert!(!skipper.is_empty());
        assert_eq!(skipper.len(), 3);
        assert_eq!(skipper.active, vec![2]);
    }

    #[test]
    fn older_sources_are_deleted_whole_the_own_source_only_below_the_seqno() {
        // Child 0: [c,f)@5. Child 1: [a,z)@3. Child 2: none.
        let mut skipper = RangeDelSkipper::new(10);
        skipper.push(TombstoneSource::list(list(vec![t("c", Some("f"), 5)])));
        skipper.push(TombstoneSource::list(list(vec![t("a", Some("z"), 3)])));
        skipper.push(None);
        let at = |s: &mut RangeDelSkipper, child, key: &str, seqno| {
            s.deleting(child, key.as_bytes(), seqno)
                .map(|(i, c)| (i, c.seqno, c.start, c.end))
        };
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        // In child 0 itself: only versions older than 5.
        assert_eq!(
            at(&mut skipper, 0, "d", 4),
            Some((0, 5, b("c"), Some(b("f"))))
        );
        assert_eq!(at(&mut skipper, 0, "d", 6), None);
        // Child 1's entry under child 0's fragment: deleted whatever its
        // seqno (the invariant makes it older).
        assert_eq!(
            at(&mut skipper, 1, "d", 7),
            Some((0, 5, b("c"), Some(b("f"))))
        );
        // Outside child 0's span, child 1's own tombstone decides.
        assert_eq!(
            at(&mut skipper, 1, "b", 2),
            Some((1, 3, b("a"), Some(b("z"))))
        );
        assert_eq!(at(&mut skipper, 1, "b", 4), None);
        assert_eq!(
            at(&mut skipper, 2, "b", 9),
            Some((1, 3, b("a"), Some(b("z"))))
        );
        assert_eq!(at(&mut skipper, 2, "z", 1), None);
        // Above the read: never deleted here.
        assert_eq!(at(&mut skipper, 2, "d", 11), None);
        // A fragment newer than the read deletes nothing.
        let mut early = RangeDelSkipper::new(4);
        early.push(TombstoneSource::list(list(vec![t("c", Some("f"), 5)])));
        early.push(None);
        assert_eq!(at(&mut early, 1, "d", 1), None);
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', b'd']), 0..3)
    }

    proptest! {
        /// A level cursor, asked about keys in any order (runs ascending,
        /// descending, jumps), answers as a search of the lists would.
        #[test]
        fn cursor_answers_like_a_search(
            tombstones in prop::collection::vec(
                (key(), prop::option::weighted(0.9, key()), 1u64..8), 0..12),
            cuts in prop::collection::btree_set(key(), 0..4),
            probes in prop::collection::vec((key(), 0u64..9), 1..40),
        ) {
            // Cut the key space into tables at `cuts`, each tombstone
            // truncated to each table, as compaction writes them.
            let mut bounds: Vec<Option<Vec<u8>>> = vec![None];
            bounds.extend(cuts.iter().cloned().map(Some));
            let mut lists = Vec::new();
            for (n, lo) in bounds.iter().enumerate() {
                let hi = cuts.iter().nth(n);
                let pieces = tombstones.iter().map(|(s, e, seqno)| {
                    let start = match lo { Some(lo) if lo > s => lo.clone(), _ => s.clone() };
                    let end = match (e, hi) {
                        (Some(e), Some(hi)) => Some(e.min(hi).clone()),
                        (Some(e), None) => Some(e.clone()),
                        (None, hi) => hi.cloned(),
                    };
                    RangeTombstone { start: start.into(), end: end.map(Bytes::from), seqno: *seqno }
                });
                lists.push(list(pieces.collect()));
            }
            let whole = FragmentedRangeTombstones::fragment(tombstones.iter().map(|(s, e, seqno)| {
                RangeTombstone { start: s.clone().into(), end: e.clone().map(Bytes::from), seqno: *seqno }
            }));
            let mut cursor = TombstoneCursor::new(match TombstoneSource::level(lists) {
                Some(source) => source,
                None => { prop_assert!(whole.is_empty()); return Ok(()); }
            });
            for (k, read_seq) in probes {
                let got = cursor.covering(&k, read_seq).map(|c| c.seqno);
                prop_assert_eq!(got, whole.max_covering_seqno(&k, read_seq), "key {:?} @{}", k, read_seq);
                if let Some(c) = cursor.covering(&k, read_seq) {
                    prop_assert!(c.start[..] <= k[..] && c.end.as_ref().is_none_or(|e| k[..] < e[..]));
                }
            }
        }
    }
}
