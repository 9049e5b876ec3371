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

use std::cmp::Ordering;

use strata_sstable::{key_prefix, FragmentedRangeTombstones, RangeEnd, SeqNo, TombstoneStack};

/// The range tombstones of one merging-iterator child. A clone shares
/// the lists (one reference count): a version builds its tables' sources
/// once, and each iterator takes clones (`Version::add_iterators`).
#[derive(Clone)]
pub(crate) struct TombstoneSource {
    /// Non-empty fragmented lists, sorted by key and disjoint: one for a
    /// memtable or an L0 table, one per table holding tombstones for a
    /// level.
    lists: Arc<[Arc<FragmentedRangeTombstones>]>,
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
        let lists: Arc<[_]> = lists.into_iter().filter(|l| !l.is_empty()).collect();
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
    /// No key was looked up yet: `list` and `stack` are no hint, and the
    /// first lookup searches at once instead of trying them first.
    fresh: bool,
}

impl TombstoneCursor {
    fn new(source: TombstoneSource) -> Self {
        TombstoneCursor {
            source,
            list: 0,
            stack: 0,
            fresh: true,
        }
    }

    /// Moves to `ukey` and says what the source holds there: the newest
    /// visible seqno of the stack holding `ukey` (`start <= ukey < end`),
    /// if one does, and the span around `ukey` over which that answer
    /// stays the same. Reads only the lists' dense prefix arrays, not the
    /// stacks or their keys' bytes (each a cache miss when a fresh
    /// iterator meets a list the rest of the read has evicted).
    fn locate(&mut self, ukey: &[u8], read_seq: SeqNo) -> Located {
        let lists = &self.source.lists;
        // A new iterator's first lookup (every seekrandom operation makes
        // one): the hint is no better than a guess, so search at once.
        let fresh = std::mem::replace(&mut self.fresh, false);
        let list = if fresh {
            first_list_ending_after(lists, ukey)
        } else {
            first_ending_after(
                lists.len(),
                self.list,
                |i| lists.get(i).is_some_and(|l| list_ends_after(l, ukey)),
                || first_list_ending_after(lists, ukey),
            )
        };
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
        // The end of the last stack before list `list`: where a gap
        // reaching back out of the list begins.
        let end_before_list = || {
            let l = list.checked_sub(1)?;
            let last = lists.get(l)?.num_stacks().checked_sub(1)?;
            BoundRef::new(lists, l, last, true)
        };
        let Some(tombstones) = lists.get(list) else {
            // Past every stack of every list.
            return Located {
                seqno: None,
                lo: end_before_list(),
                hi: None,
            };
        };
        let search = || {
            tombstones
                .stack_index_at_or_after(ukey)
                .unwrap_or(tombstones.num_stacks())
        };
        self.stack = if fresh {
            search()
        } else {
            first_ending_after(
                tombstones.num_stacks(),
                self.stack,
                |i| tombstones.stack_ends_after(i, ukey),
                search,
            )
        };
        if tombstones.stack_starts_at_or_before(self.stack, ukey) {
            return Located {
                seqno: tombstones.stack_visible_seqno(self.stack, read_seq),
                lo: BoundRef::new(lists, list, self.stack, false),
                hi: BoundRef::new(lists, list, self.stack, true),
            };
        }
        // In the gap before stack `self.stack` (there is one: the list
        // ends after `ukey`).
        let lo = match self.stack.checked_sub(1) {
            Some(prev) => BoundRef::new(lists, list, prev, true),
            None => end_before_list(),
        };
        Located {
            seqno: None,
            lo,
            hi: BoundRef::new(lists, list, self.stack, false),
        }
    }

    /// The key of `bound`, one of this source's stack bounds.
    fn bound_key(&self, bound: &BoundRef) -> &[u8] {
        let stack = self
            .source
            .lists
            .get(bound.list)
            .and_then(|l| l.stack(bound.stack));
        match stack {
            Some(s) if bound.end => s.end().unwrap_or_default(),
            Some(s) => s.start(),
            None => &[],
        }
    }

    /// The stack the last [`locate`](Self::locate) found holding its key.
    /// REQUIRES: it found one.
    fn current_stack(&self) -> Option<TombstoneStack<'_>> {
        self.source.lists.get(self.list)?.stack(self.stack)
    }

    /// The newest fragment covering `ukey` visible at `read_seq`, with the
    /// bounds of its stack.
    #[cfg(test)]
    fn covering(&mut self, ukey: &[u8], read_seq: SeqNo) -> Option<strata_sstable::Covering> {
        self.locate(ukey, read_seq).seqno?;
        self.current_stack()?.covering(read_seq)
    }
}

/// What a source holds at a key: the newest visible seqno of the stack
/// holding it, if any, and the span `[lo, hi)` around the key where that
/// stays so (`None`: unbounded on that side). Outside a stack the span is
/// the gap between two stacks.
struct Located {
    seqno: Option<SeqNo>,
    lo: Option<BoundRef>,
    hi: Option<BoundRef>,
}

/// A stack's start or end in one source, by position, with its key's
/// prefix: compared by prefix, and by the key's bytes (looked up through
/// the position) only when the prefixes tie.
#[derive(Clone, Copy)]
struct BoundRef {
    prefix: u64,
    list: usize,
    stack: usize,
    /// The stack's end (`false`: its start).
    end: bool,
}

impl BoundRef {
    /// `None` for the end of a stack without one: no bound.
    fn new(
        lists: &[Arc<FragmentedRangeTombstones>],
        list: usize,
        stack: usize,
        end: bool,
    ) -> Option<BoundRef> {
        let (start_prefix, end_prefix) = lists.get(list)?.stack_prefixes(stack)?;
        if end && end_prefix == u64::MAX && lists[list].stack(stack)?.end().is_none() {
            return None;
        }
        Some(BoundRef {
            prefix: if end { end_prefix } else { start_prefix },
            list,
            stack,
            end,
        })
    }
}

/// Whether some stack of `list` ends after `ukey`: whether its last one
/// does, by prefix first.
fn list_ends_after(list: &FragmentedRangeTombstones, ukey: &[u8]) -> bool {
    list.num_stacks()
        .checked_sub(1)
        .is_some_and(|last| list.stack_ends_after(last, ukey))
}

/// The first of `lists` some stack of which ends after `ukey`
/// (`lists.len()` if none): a scan for a source of a few lists (a memtable
/// or an L0 table has one), a binary search for a level of many tables.
fn first_list_ending_after(lists: &[Arc<FragmentedRangeTombstones>], ukey: &[u8]) -> usize {
    if lists.len() <= 4 {
        lists
            .iter()
            .position(|l| list_ends_after(l, ukey))
            .unwrap_or(lists.len())
    } else {
        lists.partition_point(|l| !list_ends_after(l, ukey))
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
    /// How many children were pushed.
    children: usize,
    /// The children that have tombstones, ascending by child (newest
    /// source first). Empty: nothing is ever deleted, and skipping costs
    /// one branch per step; a read without any tombstone allocates
    /// nothing here. One vector, not one per question asked of it: each
    /// is an allocation per iterator, and seekrandom makes an iterator
    /// per operation.
    sources: Vec<ActiveSource>,
    /// What every source holds over the span around the last key looked
    /// up. The merging iterator asks about every entry it yields; most
    /// fall in the same span as the one before (a gap between stacks, or
    /// one stack), and are answered by comparing the key with the span's
    /// bounds, without asking each source again.
    span: Span,
}

/// A child with tombstones.
struct ActiveSource {
    /// The merging iterator's child index.
    child: usize,
    cursor: TombstoneCursor,
    /// The newest seqno visible to the read of the source's stack over
    /// the current span (`None`: no stack there, or none visible).
    seqno: Option<SeqNo>,
}

/// A span of keys over which each active source's answer is the same:
/// the intersection of the sources' [`Located`] spans.
struct Span {
    /// Whether `lo`, `hi` and the sources' `seqno` describe a span (not
    /// before the first lookup).
    known: bool,
    /// First key of the span (inclusive); `None`: no lower bound.
    lo: Option<SpanBound>,
    /// End of the span (exclusive); `None`: no upper bound.
    hi: Option<SpanBound>,
    /// Some source's stack over the span has a seqno visible to the read.
    covered: bool,
    /// A key whose [`key_prefix`] `p` has `fast_lo <= p < fast_hi` lies
    /// inside the span: `fast_lo` is one above `lo`'s prefix (0 without
    /// `lo`), `fast_hi` is `hi`'s prefix. Other keys, and every key
    /// before the first lookup (`fast_lo > fast_hi`), are compared with
    /// the bounds in full.
    fast_lo: u64,
    fast_hi: u64,
}

impl Default for Span {
    fn default() -> Self {
        Span {
            known: false,
            lo: None,
            hi: None,
            covered: false,
            fast_lo: 1,
            fast_hi: 0,
        }
    }
}

/// A bound of a [`Span`]: a stack bound of `sources[source]`.
#[derive(Clone, Copy)]
struct SpanBound {
    source: usize,
    bound: BoundRef,
}

/// The fragment that deletes an entry, as [`RangeDelSkipper::deleting`]
/// finds it: borrowed from the source's list, so that asking costs no
/// copy and no reference count.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Deleting<'a> {
    /// The child whose tombstone it is.
    pub child: usize,
    /// The newest seqno of the stack visible to the read.
    pub seqno: SeqNo,
    /// The stack's first key (inclusive).
    pub start: &'a [u8],
    /// The stack's end (exclusive); `None`: no end.
    pub end: Option<&'a [u8]>,
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
            children: 0,
            sources: Vec::new(),
            span: Span::default(),
        }
    }

    /// The tombstones of the next child, in the merging iterator's child
    /// order (`None`: the child has none).
    pub fn push(&mut self, source: Option<TombstoneSource>) {
        if let Some(source) = source {
            self.sources.push(ActiveSource {
                child: self.children,
                cursor: TombstoneCursor::new(source),
                seqno: None,
            });
        }
        self.children += 1;
    }

    /// The number of children pushed.
    pub fn len(&self) -> usize {
        self.children
    }

    /// Whether no child has tombstones.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Whether no tombstone deletes the entry `ukey@seqno`, answered
    /// without a call when it is plain: the entry is newer than the read,
    /// or it lies inside the span of the last lookup and no source covers
    /// that span. `false` means "ask [`deleting`](Self::deleting)", not
    /// "deleted".
    #[inline]
    pub fn surely_kept(&self, ukey: &[u8], seqno: SeqNo) -> bool {
        if seqno > self.read_seq {
            return true;
        }
        if self.span.covered {
            return false;
        }
        let p = key_prefix(ukey);
        self.span.fast_lo <= p && p < self.span.fast_hi
    }

    /// The newest source `i <= child` with a visible fragment deleting
    /// the entry `ukey@seqno` of `child`, and that fragment: from an older
    /// source `i < child` any visible fragment covering `ukey` deletes it
    /// (the source-order invariant), in `child` itself only a newer one.
    /// Entries newer than the read are never deleted here: the user-key
    /// view hides them.
    pub fn deleting(&mut self, child: usize, ukey: &[u8], seqno: SeqNo) -> Option<Deleting<'_>> {
        if self.surely_kept(ukey, seqno) {
            return None;
        }
        if !self.span_holds(ukey) {
            self.locate(ukey);
        }
        if !self.span.covered {
            return None;
        }
        let source = self
            .sources
            .iter()
            .take_while(|s| s.child <= child)
            .find(|s| s.seqno.is_some_and(|t| s.child < child || t > seqno))?;
        // The cursor still sits on the stack over the span.
        let stack = source.cursor.current_stack()?;
        debug_assert_eq!(stack.visible_seqno(self.read_seq), source.seqno);
        Some(Deleting {
            child: source.child,
            seqno: source.seqno?,
            start: stack.start(),
            end: stack.end(),
        })
    }

    /// The key of a span bound.
    fn span_key(&self, b: &SpanBound) -> &[u8] {
        match self.sources.get(b.source) {
            Some(s) => s.cursor.bound_key(&b.bound),
            None => &[],
        }
    }

    /// `ukey` (whose prefix is `prefix`) against a span bound: by prefix,
    /// and by the bound's bytes only when the prefixes tie.
    fn cmp_bound(&self, prefix: u64, ukey: &[u8], b: &SpanBound) -> Ordering {
        prefix
            .cmp(&b.bound.prefix)
            .then_with(|| ukey.cmp(self.span_key(b)))
    }

    fn span_holds(&self, ukey: &[u8]) -> bool {
        if !self.span.known {
            return false;
        }
        let prefix = key_prefix(ukey);
        self.span
            .lo
            .as_ref()
            .is_none_or(|lo| self.cmp_bound(prefix, ukey, lo).is_ge())
            && self
                .span
                .hi
                .as_ref()
                .is_none_or(|hi| self.cmp_bound(prefix, ukey, hi).is_lt())
    }

    /// Moves every source to `ukey` and records the span around it where
    /// all their answers hold.
    fn locate(&mut self, ukey: &[u8]) {
        let mut lo: Option<SpanBound> = None;
        let mut hi: Option<SpanBound> = None;
        let mut covered = false;
        for n in 0..self.sources.len() {
            let at = self.sources[n].cursor.locate(ukey, self.read_seq);
            self.sources[n].seqno = at.seqno;
            covered |= at.seqno.is_some();
            // The intersection: the largest lo, the smallest hi.
            if let Some(bound) = at.lo {
                let b = SpanBound { source: n, bound };
                if lo.is_none_or(|cur| self.bound_cmp(&b, &cur).is_gt()) {
                    lo = Some(b);
                }
            }
            if let Some(bound) = at.hi {
                let b = SpanBound { source: n, bound };
                if hi.is_none_or(|cur| self.bound_cmp(&b, &cur).is_lt()) {
                    hi = Some(b);
                }
            }
        }
        self.span = Span {
            known: true,
            lo,
            hi,
            covered,
            fast_lo: lo.map_or(0, |b| b.bound.prefix.saturating_add(1)),
            fast_hi: hi.map_or(u64::MAX, |b| b.bound.prefix),
        };
    }

    /// Two span bounds' keys compared, by prefix first.
    fn bound_cmp(&self, a: &SpanBound, b: &SpanBound) -> Ordering {
        a.bound
            .prefix
            .cmp(&b.bound.prefix)
            .then_with(|| self.span_key(a).cmp(self.span_key(b)))
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
        let active: Vec<usize> = skipper.sources.iter().map(|s| s.child).collect();
        assert_eq!(active, vec![2]);
    }

    #[test]
    fn older_sources_are_deleted_whole_the_own_source_only_below_the_seqno() {
        // Child 0: [c,f)@5. Child 1: [a,z)@3. Child 2: none.
        let mut skipper = RangeDelSkipper::new(10);
        skipper.push(TombstoneSource::list(list(vec![t("c", Some("f"), 5)])));
        skipper.push(TombstoneSource::list(list(vec![t("a", Some("z"), 3)])));
        skipper.push(None);
        let at = |s: &mut RangeDelSkipper, child, key: &str, seqno| {
            s.deleting(child, key.as_bytes(), seqno).map(|d| {
                (
                    d.child,
                    d.seqno,
                    Bytes::copy_from_slice(d.start),
                    d.end.map(Bytes::copy_from_slice),
                )
            })
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

    /// Short keys, and keys behind a shared 8-byte prefix, so that keys
    /// and bounds whose prefixes tie are compared in full.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        let shared = prop::sample::select(vec![&b""[..], b"prefix\xff"]);
        let tail =
            prop::collection::vec(prop::sample::select(vec![0, b'a', b'b', b'c', b'd']), 0..3);
        (shared, tail).prop_map(|(shared, tail)| [shared, &tail[..]].concat())
    }

    /// A tombstone as written: start, end (`None`: no end), seqno.
    type Written = (Vec<u8>, Option<Vec<u8>>, SeqNo);

    /// Cuts `tombstones` into one list per table at `cuts`, each
    /// tombstone truncated to each table, as compaction writes a level.
    fn level_lists(
        tombstones: &[Written],
        cuts: &std::collections::BTreeSet<Vec<u8>>,
    ) -> Vec<Arc<FragmentedRangeTombstones>> {
        let mut bounds: Vec<Option<Vec<u8>>> = vec![None];
        bounds.extend(cuts.iter().cloned().map(Some));
        let mut lists = Vec::new();
        for (n, lo) in bounds.iter().enumerate() {
            let hi = cuts.iter().nth(n);
            let pieces = tombstones.iter().map(|(s, e, seqno)| {
                let start = match lo {
                    Some(lo) if lo > s => lo.clone(),
                    _ => s.clone(),
                };
                let end = match (e, hi) {
                    (Some(e), Some(hi)) => Some(e.min(hi).clone()),
                    (Some(e), None) => Some(e.clone()),
                    (None, hi) => hi.cloned(),
                };
                RangeTombstone {
                    start: start.into(),
                    end: end.map(Bytes::from),
                    seqno: *seqno,
                }
            });
            lists.push(list(pieces.collect()));
        }
        lists
    }

    fn whole(tombstones: &[Written]) -> FragmentedRangeTombstones {
        FragmentedRangeTombstones::fragment(tombstones.iter().map(|(s, e, seqno)| RangeTombstone {
            start: s.clone().into(),
            end: e.clone().map(Bytes::from),
            seqno: *seqno,
        }))
    }

    /// A source's tombstones: a few, with or without end.
    fn source_tombstones() -> impl Strategy<Value = Vec<Written>> {
        prop::collection::vec((key(), prop::option::weighted(0.9, key()), 1u64..8), 0..6)
    }

    proptest! {
        /// The skipper answers every question as a search of each source's
        /// tombstones would, whatever order the keys come in: runs going
        /// up (a forward scan), runs going down (a reverse scan) and
        /// jumps (seeks), asked one after the other of the same skipper,
        /// so a span or a position left over from an earlier key is used
        /// for a later one. Sources without tombstones sit between them.
        #[test]
        fn skipper_answers_like_a_search_in_any_key_order(
            sources in prop::collection::vec(
                prop::option::weighted(0.8, (source_tombstones(), prop::collection::btree_set(key(), 0..3))),
                1..5),
            read_seq in 0u64..9,
            probes in prop::collection::vec((key(), 0usize..5, 0u64..9), 1..30),
        ) {
            let mut skipper = RangeDelSkipper::new(read_seq);
            let mut wholes = Vec::new();
            for source in &sources {
                match source {
                    Some((tombstones, cuts)) => {
                        skipper.push(TombstoneSource::level(level_lists(tombstones, cuts)));
                        wholes.push(whole(tombstones));
                    }
                    None => {
                        skipper.push(None);
                        wholes.push(FragmentedRangeTombstones::default());
                    }
                }
            }
            let mut up = probes.clone();
            up.sort_by(|a, b| a.0.cmp(&b.0));
            let mut down = up.clone();
            down.reverse();
            for (k, child, seqno) in up.iter().chain(&down).chain(&probes).chain(&up) {
                let child = child % sources.len();
                let want = if *seqno > read_seq {
                    None
                } else {
                    wholes.iter().enumerate().take(child + 1).find_map(|(i, w)| {
                        let t = w.max_covering_seqno(k, read_seq)?;
                        (i < child || t > *seqno).then_some((i, t))
                    })
                };
                // The inline answer never keeps what a search deletes.
                let surely_kept = skipper.surely_kept(k, *seqno);
                prop_assert!(!surely_kept || want.is_none(), "kept {:?} of child {} @{}", k, child, seqno);
                let got = skipper.deleting(child, k, *seqno);
                prop_assert_eq!(
                    got.as_ref().map(|d| (d.child, d.seqno)),
                    want,
                    "key {:?} of child {} @{}", k, child, seqno
                );
                if let Some(d) = got {
                    // The span to skip lies inside the source's tombstones
                    // at that seqno or newer, and holds the key.
                    prop_assert!(d.start <= &k[..] && d.end.is_none_or(|e| &k[..] < e));
                    let inside = |p: &[u8]| wholes[d.child].max_covering_seqno(p, read_seq) == Some(d.seqno);
                    prop_assert!(inside(d.start), "span start {:?}", d.start);
                }
            }
        }

        /// A level cursor, asked about keys in any order (runs ascending,
        /// descending, jumps), answers as a search of the lists would.
        #[test]
        fn cursor_answers_like_a_search(
            tombstones in prop::collection::vec(
                (key(), prop::option::weighted(0.9, key()), 1u64..8), 0..12),
            cuts in prop::collection::btree_set(key(), 0..4),
            probes in prop::collection::vec((key(), 0u64..9), 1..40),
        ) {
            let lists = level_lists(&tombstones, &cuts);
            let whole = whole(&tombstones);
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
