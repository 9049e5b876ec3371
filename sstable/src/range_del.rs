//! Range tombstones and their fragmented form.
//!
//! A range tombstone `[start, end)@t` deletes every version `k@q` with
//! `start <= k < end` and `q < t`; a reader at sequence number `r` sees
//! only tombstones with `t <= r`. `end` may be absent: the range then
//! runs past every key.
//!
//! Tombstones overlap freely as written. [`FragmentedRangeTombstones`]
//! cuts them at every start and end into non-overlapping *stacks*: each
//! stack is a `[start, end)` span with the seqnos of every tombstone
//! covering all of it, newest first. A lookup is then one binary search
//! for the stack and one for the newest seqno visible to the read. This is
//! RocksDB's `FragmentedRangeTombstoneList`; the memtable, the table's
//! `strata.range_del` block and compaction all use this one type.
//!
//! ```text
//! written:     [b ........ f)@5
//!                    [d .......... h)@7
//! fragmented:  [b,d){5} [d,f){7,5} [f,h){7}
//! ```
//!
//! A *fragment* is one (stack, seqno) pair: the example holds 4.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use bytes::Bytes;

use crate::key::SeqNo;

/// One range deletion as written: every version older than `seqno` of
/// every user key in `[start, end)` is deleted (`end: None` is no end).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RangeTombstone {
    /// First user key deleted (inclusive).
    pub start: Bytes,
    /// First user key not deleted; `None`: the range has no end.
    pub end: Option<Bytes>,
    /// Sequence number of the deletion (>= 1 in a database).
    pub seqno: SeqNo,
}

impl RangeTombstone {
    /// `[start, end)@seqno`, copying the keys (`end` `None`: no end).
    pub fn new(start: &[u8], end: Option<&[u8]>, seqno: SeqNo) -> RangeTombstone {
        RangeTombstone {
            start: Bytes::copy_from_slice(start),
            end: end.map(Bytes::copy_from_slice),
            seqno,
        }
    }

    /// Whether the range holds no key (`start >= end`). Such a tombstone
    /// deletes nothing; the fragmenter drops it.
    pub fn is_empty_range(&self) -> bool {
        matches!(&self.end, Some(end) if self.start >= *end)
    }
}

/// The end of a range: a key (exclusive), or no end at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeEnd<'a> {
    /// The range ends before this user key.
    Bounded(&'a [u8]),
    /// The range runs past every key.
    Unbounded,
}

/// The newest tombstone fragment covering a key at a read's sequence
/// number: its seqno and the bounds of the stack it belongs to. Every key
/// in `[start, end)` is covered by the same seqnos, so a reader may skip
/// the whole span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Covering {
    /// The newest covering seqno `<= read_seq`.
    pub seqno: SeqNo,
    /// The stack's first key (inclusive).
    pub start: Bytes,
    /// The stack's end (exclusive); `None`: no end.
    pub end: Option<Bytes>,
}

/// A stack as stored: its span and its range in `seqnos`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stack {
    start: Bytes,
    end: Option<Bytes>,
    seq_begin: usize,
    seq_end: usize,
}

/// Range tombstones cut into non-overlapping stacks sorted by start.
///
/// Invariants (checked by `debug_check` in tests): stacks are sorted by
/// start; each stack's `start < end`; `end(i) <= start(i + 1)`; only the
/// last stack may have no end; each stack holds at least one seqno, and
/// its seqnos strictly descend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FragmentedRangeTombstones {
    stacks: Vec<Stack>,
    /// Stack `i` owns `seqnos[stacks[i].seq_begin..stacks[i].seq_end]`.
    seqnos: Vec<SeqNo>,
    /// `key_prefix` of each stack's start and of its end (`u64::MAX`
    /// without one), side by side: what the searches probe first. Every
    /// `get` searches the tombstones of every source it passes; probing
    /// the stacks themselves cost a cache miss for the stack and another
    /// for its key's bytes at each step, which with 10,000 tombstones made
    /// a lookup cost up to twice the CPU (docs/performance.md, "Range
    /// deletes"). Only keys sharing a prefix are compared in full, and the
    /// end of the stack a search lands on shares its cache line.
    prefixes: Vec<StackPrefixes>,
    /// The start prefix of every `PREFIX_INDEX_STRIDE`-th stack. A
    /// binary search over all of `prefixes` is a chain of dependent loads
    /// that mostly miss the cache once other work has evicted the list
    /// (every probe below the top few levels is a different line); this
    /// index is small enough to stay cached, and it leaves a window of one
    /// stride, two or three lines, to search in `prefixes`.
    prefix_index: Vec<u64>,
    /// The stacks bucketed by start prefix, for the first search of a
    /// list by a reader that has no position in it yet (every seek of a
    /// new iterator searches every source's list, and every `get` every
    /// list it passes): one division-free step lands in a window of about
    /// one stack. Built once the list is complete; `None` for short lists
    /// and lists whose starts all share one prefix.
    buckets: Option<PrefixBuckets>,
}

/// A direct index over the stacks' start prefixes: bucket `b` holds the
/// prefixes in `[base + (b << shift), base + ((b + 1) << shift))`, and
/// `first[b]` is the number of stacks whose start prefix is below the
/// bucket. With the shift chosen so there are at most as many buckets as
/// stacks, keys spread over the key space (as most are) leave a stack or
/// two per bucket; a skewed spread only widens some windows, which are
/// then searched as before.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PrefixBuckets {
    base: u64,
    shift: u32,
    /// One entry per bucket and one past the last (the number of stacks).
    first: Vec<u32>,
}

/// Lists with fewer stacks are searched without [`PrefixBuckets`]: their
/// whole prefix array is a few cache lines.
const BUCKETS_MIN_STACKS: usize = 16;

/// A bucket window wider than this is searched through the prefix index
/// instead (a skewed spread of keys).
const BUCKET_WINDOW_MAX: usize = 2 * PREFIX_INDEX_STRIDE;

impl PrefixBuckets {
    /// The buckets of `prefixes` (start prefixes, ascending), `None` when
    /// they would not narrow a search.
    fn build(prefixes: &[StackPrefixes]) -> Option<PrefixBuckets> {
        let n = prefixes.len();
        if n < BUCKETS_MIN_STACKS || u32::try_from(n).is_err() {
            return None;
        }
        let base = prefixes.first()?.start;
        let span = prefixes.last()?.start - base;
        if span == 0 {
            return None;
        }
        // The smallest shift giving at most `n` buckets.
        let mut shift = 0;
        while (span >> shift) >= n as u64 {
            shift += 1;
        }
        let buckets = (span >> shift) as usize + 1;
        let mut first = Vec::with_capacity(buckets + 1);
        let mut below = 0;
        for b in 0..buckets {
            // `b << shift <= span`: no overflow.
            let lower = base + ((b as u64) << shift);
            while below < n && prefixes[below].start < lower {
                below += 1;
            }
            first.push(below as u32);
        }
        first.push(n as u32);
        Some(PrefixBuckets { base, shift, first })
    }

    /// `[from, to)`, a window of stack indexes holding the number of
    /// stacks whose start prefix is below `p` (what `partition_point`
    /// over the prefixes returns): every stack before `from` starts below
    /// `p`, every one from `to` on at or above it.
    #[inline]
    fn window(&self, p: u64) -> (usize, usize) {
        let n = self.first.last().map_or(0, |&n| n as usize);
        let Some(offset) = p.checked_sub(self.base).filter(|&o| o > 0) else {
            // At or below the first start: no stack starts below `p`.
            return (0, 0);
        };
        let b = (offset >> self.shift) as usize;
        match (self.first.get(b), self.first.get(b + 1)) {
            (Some(&from), Some(&to)) => (from as usize, to as usize),
            // Past the last bucket: above every start.
            _ => (n, n),
        }
    }
}

/// The first 8 bytes of `key` as a big-endian number, zero-padded. It
/// never decreases as keys increase (bytewise), so a key's prefix being
/// smaller (larger) than another's proves the key smaller (larger); only
/// equal prefixes need the keys compared.
#[inline]
pub fn key_prefix(key: &[u8]) -> u64 {
    // Called for every entry an iterator over range tombstones passes:
    // inlined across the crate boundary, and no copy of variable length
    // (a `memcpy` call) for the usual key of 8 bytes or more.
    if let Some(first) = key.first_chunk::<8>() {
        return u64::from_be_bytes(*first);
    }
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

/// The start and end prefixes of one stack (`key_prefix`; an end without
/// key is `u64::MAX`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct StackPrefixes {
    start: u64,
    end: u64,
    /// The stack's newest seqno: the one most reads see, read here
    /// without touching the stack.
    newest: SeqNo,
}

/// Stacks per entry of `FragmentedRangeTombstones::prefix_index`: 8
/// `StackPrefixes` are two cache lines, and the index of 10,000 stacks is
/// 10 KB.
const PREFIX_INDEX_STRIDE: usize = 8;

/// A view of one stack: a span and the seqnos of every tombstone that
/// covers all of it, newest first.
#[derive(Clone, Copy, Debug)]
pub struct TombstoneStack<'a> {
    stack: &'a Stack,
    seqnos: &'a [SeqNo],
}

impl<'a> TombstoneStack<'a> {
    /// The stack's first user key (inclusive).
    pub fn start(&self) -> &'a [u8] {
        &self.stack.start
    }

    /// The stack's end (exclusive); `None`: the stack has no end.
    pub fn end(&self) -> Option<&'a [u8]> {
        self.stack.end.as_deref()
    }

    /// The seqnos covering the stack, strictly descending, never empty.
    pub fn seqnos(&self) -> &'a [SeqNo] {
        self.seqnos
    }

    /// Whether `start <= ukey < end`.
    pub fn contains(&self, ukey: &[u8]) -> bool {
        self.stack.start[..] <= *ukey && self.ends_after(ukey)
    }

    /// Whether the stack's end is after `ukey` (always, without an end).
    pub fn ends_after(&self, ukey: &[u8]) -> bool {
        self.stack.end.as_ref().is_none_or(|end| *ukey < end[..])
    }

    /// The newest seqno a read at `read_seq` sees, if any.
    pub fn visible_seqno(&self, read_seq: SeqNo) -> Option<SeqNo> {
        // Descending: skip the seqnos newer than the read.
        let first_visible = self.seqnos.partition_point(|&s| s > read_seq);
        self.seqnos.get(first_visible).copied()
    }

    /// The stack as a [`Covering`] at `read_seq`, `None` if no seqno is
    /// visible. The key is not checked: see [`TombstoneStack::contains`].
    pub fn covering(&self, read_seq: SeqNo) -> Option<Covering> {
        self.visible_seqno(read_seq).map(|seqno| Covering {
            seqno,
            start: self.stack.start.clone(),
            end: self.stack.end.clone(),
        })
    }
}

impl FragmentedRangeTombstones {
    /// Cuts `tombstones` (any order, overlapping freely) into stacks.
    /// Tombstones with an empty range (`start >= end`) cover nothing and
    /// are dropped; a seqno written twice over the same span is kept once.
    /// Runs in O(n log n) plus the size of the output.
    pub fn fragment(tombstones: impl IntoIterator<Item = RangeTombstone>) -> Self {
        let mut tombstones: Vec<RangeTombstone> = tombstones
            .into_iter()
            .filter(|t| !t.is_empty_range())
            .collect();
        tombstones.sort_by(|a, b| a.start.cmp(&b.start));

        // Every start and end is a cut point; between two consecutive
        // points the set of covering tombstones is constant.
        let mut points: Vec<Bytes> = Vec::with_capacity(tombstones.len() * 2);
        for t in &tombstones {
            points.push(t.start.clone());
            if let Some(end) = &t.end {
                points.push(end.clone());
            }
        }
        points.sort();
        points.dedup();

        let mut out = FragmentedRangeTombstones::default();
        // Active tombstones: a multiset of seqnos, and the bounded ends
        // (smallest first) that take them out again.
        let mut active: BTreeMap<SeqNo, usize> = BTreeMap::new();
        let mut ending: BinaryHeap<Reverse<(Bytes, SeqNo)>> = BinaryHeap::new();
        let mut next = tombstones.into_iter().peekable();
        for (i, point) in points.iter().enumerate() {
            while let Some(Reverse((end, seqno))) = ending.peek() {
                if end > point {
                    break;
                }
                let seqno = *seqno;
                ending.pop();
                if let Some(count) = active.get_mut(&seqno) {
                    *count -= 1;
                    if *count == 0 {
                        active.remove(&seqno);
                    }
                }
            }
            while let Some(t) = next.next_if(|t| t.start <= *point) {
                *active.entry(t.seqno).or_insert(0) += 1;
                if let Some(end) = t.end {
                    ending.push(Reverse((end, t.seqno)));
                }
            }
            if active.is_empty() {
                continue;
            }
            // Past the last point only tombstones without an end remain
            // (every bounded end is a point).
            let seq_begin = out.seqnos.len();
            out.seqnos.extend(active.keys().rev().copied());
            out.push_stack(Stack {
                start: point.clone(),
                end: points.get(i + 1).cloned(),
                seq_begin,
                seq_end: out.seqnos.len(),
            });
        }
        out.build_search_index();
        out
    }

    /// Builds what the searches use beside the dense prefixes, once every
    /// stack is in (the end of [`fragment`](Self::fragment) and of a
    /// `strata.range_del` block's decoding). Searches stay correct without
    /// it, only slower.
    pub(crate) fn build_search_index(&mut self) {
        self.buckets = PrefixBuckets::build(&self.prefixes);
    }

    fn push_stack(&mut self, stack: Stack) {
        let start = key_prefix(&stack.start);
        if self.stacks.len().is_multiple_of(PREFIX_INDEX_STRIDE) {
            self.prefix_index.push(start);
        }
        self.prefixes.push(StackPrefixes {
            start,
            end: stack.end.as_deref().map_or(u64::MAX, key_prefix),
            newest: self.seqnos.get(stack.seq_begin).copied().unwrap_or(0),
        });
        self.stacks.push(stack);
    }

    /// Whether there are no tombstones.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// The number of fragments: (stack, seqno) pairs, i.e. the entries of
    /// a table's `strata.range_del` block.
    pub fn len(&self) -> usize {
        self.seqnos.len()
    }

    /// The number of stacks.
    pub fn num_stacks(&self) -> usize {
        self.stacks.len()
    }

    /// Stack `index` (in start order), `None` past the last.
    pub fn stack(&self, index: usize) -> Option<TombstoneStack<'_>> {
        self.stacks.get(index).map(|stack| self.view(stack))
    }

    /// The stacks in start order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = TombstoneStack<'_>> + ExactSizeIterator + '_ {
        self.stacks.iter().map(|stack| self.view(stack))
    }

    fn view<'a>(&'a self, stack: &'a Stack) -> TombstoneStack<'a> {
        TombstoneStack {
            stack,
            seqnos: self
                .seqnos
                .get(stack.seq_begin..stack.seq_end)
                .unwrap_or_default(),
        }
    }

    /// Every fragment as a tombstone, in internal-key order (start
    /// ascending, seqno descending): the order of the `strata.range_del`
    /// block. Fragmenting them again gives back `self`.
    pub fn fragments(&self) -> impl Iterator<Item = RangeTombstone> + '_ {
        self.iter().flat_map(|s| {
            s.seqnos.iter().map(move |&seqno| RangeTombstone {
                start: s.stack.start.clone(),
                end: s.stack.end.clone(),
                seqno,
            })
        })
    }

    /// The index of the stack holding `ukey` (`start <= ukey < end`).
    pub fn stack_at(&self, ukey: &[u8]) -> Option<usize> {
        let i = self.stack_index_at_or_before(ukey)?;
        self.stack_ends_after(i, ukey).then_some(i)
    }

    /// [`key_prefix`] of stack `i`'s start and of its end (`u64::MAX`
    /// without end), from the dense array the searches use: a reader
    /// comparing keys with a stack's bounds reads the bounds' bytes only
    /// when the prefixes tie.
    #[inline]
    pub fn stack_prefixes(&self, i: usize) -> Option<(u64, u64)> {
        self.prefixes.get(i).map(|p| (p.start, p.end))
    }

    /// The newest seqno of stack `i` a read at `read_seq` sees, like
    /// [`TombstoneStack::visible_seqno`], without touching the stack when
    /// its newest seqno is visible.
    #[inline]
    pub fn stack_visible_seqno(&self, i: usize, read_seq: SeqNo) -> Option<SeqNo> {
        let p = self.prefixes.get(i)?;
        if p.newest <= read_seq {
            return Some(p.newest);
        }
        self.stack(i)?.visible_seqno(read_seq)
    }

    /// Whether stack `i` ends after `ukey` (`false` past the last stack).
    /// Most keys a read probes lie between stacks: the end's prefix tells,
    /// without touching the stack or its key.
    #[inline]
    pub fn stack_ends_after(&self, i: usize, ukey: &[u8]) -> bool {
        self.ends_after_prefixed(i, key_prefix(ukey), ukey)
    }

    #[inline]
    fn ends_after_prefixed(&self, i: usize, prefix: u64, ukey: &[u8]) -> bool {
        let Some(p) = self.prefixes.get(i) else {
            return false;
        };
        match prefix.cmp(&p.end) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            // `u64::MAX` is also the prefix of a stack without end.
            std::cmp::Ordering::Equal => self.stacks[i].end.as_ref().is_none_or(|e| *ukey < e[..]),
        }
    }

    /// Whether stack `i` starts at or before `ukey` (`false` past the last
    /// stack), by prefix first as [`stack_ends_after`](Self::stack_ends_after).
    #[inline]
    pub fn stack_starts_at_or_before(&self, i: usize, ukey: &[u8]) -> bool {
        let Some(p) = self.prefixes.get(i) else {
            return false;
        };
        match p.start.cmp(&key_prefix(ukey)) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => self.stacks[i].start[..] <= *ukey,
        }
    }

    /// The index of the first stack that ends after `ukey`: the one
    /// holding `ukey`, else the first starting after it. `None` when every
    /// stack ends at or before `ukey`. A forward seek to `ukey` meets
    /// tombstones from this stack on.
    pub fn stack_index_at_or_after(&self, ukey: &[u8]) -> Option<usize> {
        // Stacks do not overlap: those before the last one starting at or
        // before `ukey` end at or before its start, so before `ukey`; it
        // may hold `ukey`; every later one starts after `ukey`.
        let prefix = key_prefix(ukey);
        let i = match self.at_or_before_prefixed(prefix, ukey) {
            Some(i) if self.ends_after_prefixed(i, prefix, ukey) => i,
            Some(i) => i + 1,
            None => 0,
        };
        (i < self.stacks.len()).then_some(i)
    }

    /// The index of the last stack starting at or before `ukey`: the one
    /// holding `ukey`, else the last one ending at or before it. `None`
    /// when every stack starts after `ukey`. A reverse seek to `ukey` meets
    /// tombstones from this stack down.
    pub fn stack_index_at_or_before(&self, ukey: &[u8]) -> Option<usize> {
        self.at_or_before_prefixed(key_prefix(ukey), ukey)
    }

    /// The number of stacks whose start prefix is below `p`.
    #[inline]
    fn starts_below(&self, p: u64) -> usize {
        if let Some(buckets) = &self.buckets {
            let (mut from, to) = buckets.window(p);
            if to - from <= BUCKET_WINDOW_MAX {
                // Usually a stack or two: a scan costs less than setting
                // up a binary search.
                while from < to && self.prefixes.get(from).is_some_and(|s| s.start < p) {
                    from += 1;
                }
                return from;
            }
        }
        let (from, to) = self.index_window(p);
        let to = to.min(self.prefixes.len());
        from + self.prefixes[from.min(to)..to].partition_point(|s| s.start < p)
    }

    /// The window [`starts_below`](Self::starts_below) searches, from the
    /// prefix index: index entry `j` is stack `j * STRIDE`, so the first
    /// stack whose start prefix is >= p lies in
    /// `((j - 1) * STRIDE, j * STRIDE]` for the first entry `j` >= p.
    fn index_window(&self, p: u64) -> (usize, usize) {
        let j = self.prefix_index.partition_point(|&q| q < p);
        let from = (j * PREFIX_INDEX_STRIDE).saturating_sub(PREFIX_INDEX_STRIDE - 1);
        (from, j * PREFIX_INDEX_STRIDE)
    }

    fn at_or_before_prefixed(&self, p: u64, ukey: &[u8]) -> Option<usize> {
        let n = self.prefixes.len();
        // The first stack whose start prefix is >= p.
        let lo = self.starts_below(p);
        // Stacks whose start prefix ties p: usually none or one, so gallop
        // from `lo` rather than search the rest of the list.
        let mut hi = lo;
        if self.prefixes.get(lo).is_some_and(|s| s.start == p) {
            let mut tied = lo;
            let mut step = 1;
            loop {
                let probe = lo + step;
                if probe >= n || self.prefixes[probe].start != p {
                    let end = probe.min(n);
                    hi = tied + 1 + self.prefixes[tied + 1..end].partition_point(|s| s.start == p);
                    break;
                }
                tied = probe;
                step *= 2;
            }
        }
        // The full comparison, over the starts sharing the prefix.
        if hi == lo {
            return lo.checked_sub(1);
        }
        let tied = lo + self.stacks[lo..hi].partition_point(|s| s.start[..] <= *ukey);
        tied.checked_sub(1)
    }

    /// The newest seqno `<= read_seq` of a tombstone covering `ukey`.
    /// A version `ukey@q` with `q < ` this seqno is deleted.
    pub fn max_covering_seqno(&self, ukey: &[u8], read_seq: SeqNo) -> Option<SeqNo> {
        self.stack(self.stack_at(ukey)?)?.visible_seqno(read_seq)
    }

    /// Like [`max_covering_seqno`](Self::max_covering_seqno), with the
    /// bounds of the stack holding `ukey`.
    pub fn covering(&self, ukey: &[u8], read_seq: SeqNo) -> Option<Covering> {
        self.stack(self.stack_at(ukey)?)?.covering(read_seq)
    }

    /// Appends a fragment that sorts after every fragment held, in the
    /// order of the `strata.range_del` block (start ascending, seqno
    /// descending): a start equal to the last stack's adds a seqno to it,
    /// any other starts a new stack. REQUIRES: the fragment keeps the
    /// invariants (the block decoder checks every rule first).
    pub(crate) fn push_fragment(&mut self, start: &[u8], end: Option<&[u8]>, seqno: SeqNo) {
        let len = self.seqnos.len();
        self.seqnos.push(seqno);
        match self.stacks.last_mut() {
            Some(last) if last.start[..] == *start => {
                debug_assert_eq!(last.end.as_deref(), end);
                last.seq_end = len + 1;
            }
            _ => self.push_stack(Stack {
                start: Bytes::copy_from_slice(start),
                end: end.map(Bytes::copy_from_slice),
                seq_begin: len,
                seq_end: len + 1,
            }),
        }
    }

    /// The first stack's start: the smallest key any tombstone covers.
    pub fn smallest_start(&self) -> Option<&[u8]> {
        self.stacks.first().map(|s| &s.start[..])
    }

    /// The last stack's end; `None` when there are no tombstones.
    pub fn largest_end(&self) -> Option<RangeEnd<'_>> {
        self.stacks.last().map(|s| match &s.end {
            Some(end) => RangeEnd::Bounded(end),
            None => RangeEnd::Unbounded,
        })
    }

    /// `(smallest, largest)` seqno of all tombstones; `None` when there
    /// are none (0 is a valid seqno, not a marker).
    pub fn seqno_range(&self) -> Option<(SeqNo, SeqNo)> {
        let min = self.seqnos.iter().min()?;
        let max = self.seqnos.iter().max()?;
        Some((*min, *max))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The prefix is the first 8 bytes, zero-padded, whatever the length
    /// (the fast path of 8 bytes or more and the padded one agree), and
    /// never decreases as keys increase.
    #[test]
    fn key_prefix_is_the_zero_padded_first_eight_bytes_and_keeps_order() {
        let keys: Vec<Vec<u8>> = (0..=12usize)
            .flat_map(|n| [vec![0x41u8; n], vec![0xffu8; n], (1..=n as u8).collect()])
            .collect();
        for k in &keys {
            let mut padded = [0u8; 8];
            for (p, b) in padded.iter_mut().zip(k) {
                *p = *b;
            }
            assert_eq!(key_prefix(k), u64::from_be_bytes(padded), "{k:?}");
        }
        for a in &keys {
            for b in &keys {
                if a < b {
                    assert!(key_prefix(a) <= key_prefix(b), "{a:?} < {b:?}");
                }
            }
        }
    }

    use super::*;
    use proptest::prelude::*;

    fn t(start: &str, end: Option<&str>, seqno: SeqNo) -> RangeTombstone {
        RangeTombstone::new(start.as_bytes(), end.map(str::as_bytes), seqno)
    }

    /// A stack as owned parts: start, end, seqnos.
    type OwnedStack = (Vec<u8>, Option<Vec<u8>>, Vec<SeqNo>);

    fn stacks(f: &FragmentedRangeTombstones) -> Vec<OwnedStack> {
        f.iter()
            .map(|s| {
                (
                    s.start().to_vec(),
                    s.end().map(<[u8]>::to_vec),
                    s.seqnos().to_vec(),
                )
            })
            .collect()
    }

    fn st(start: &str, end: Option<&str>, seqnos: &[SeqNo]) -> OwnedStack {
        (
            start.as_bytes().to_vec(),
            end.map(|e| e.as_bytes().to_vec()),
            seqnos.to_vec(),
        )
    }

    /// The invariants the type documents.
    fn debug_check(f: &FragmentedRangeTombstones) {
        let all: Vec<_> = f.iter().collect();
        for (i, s) in all.iter().enumerate() {
            assert!(!s.seqnos().is_empty(), "stack {i} without seqnos");
            assert!(
                s.seqnos().windows(2).all(|w| w[0] > w[1]),
                "stack {i} seqnos"
            );
            match s.end() {
                Some(end) => assert!(s.start() < end, "stack {i} empty"),
                None => assert_eq!(i + 1, all.len(), "stack {i} without end is not last"),
            }
            if let Some(next) = all.get(i + 1) {
                assert!(
                    s.end().unwrap() <= next.start(),
                    "stacks {i} and {} overlap",
                    i + 1
                );
            }
        }
        assert_eq!(f.len(), all.iter().map(|s| s.seqnos().len()).sum::<usize>());
        // Bucket `b` counts the stacks starting below its lower bound.
        if let Some(b) = &f.buckets {
            let (last, counts) = b.first.split_last().unwrap();
            assert_eq!(*last as usize, all.len());
            for (i, &count) in counts.iter().enumerate() {
                let lower = b.base + ((i as u64) << b.shift);
                let below = all.iter().filter(|s| key_prefix(s.start()) < lower).count();
                assert_eq!(count as usize, below, "bucket {i}");
            }
            assert!(counts.len() <= all.len(), "more buckets than stacks");
        }
    }

    /// Evenly spread starts get about one stack per bucket, so a first
    /// search reads one window of a stack or two.
    #[test]
    fn spread_starts_get_narrow_buckets() {
        let f = FragmentedRangeTombstones::fragment((0u64..1000).map(|i| {
            let start = (i * 1_000_003).to_be_bytes();
            let end = (i * 1_000_003 + 10).to_be_bytes();
            RangeTombstone::new(&start, Some(&end), 5)
        }));
        debug_check(&f);
        let b = f.buckets.as_ref().unwrap();
        assert!(b.first.windows(2).all(|w| w[1] - w[0] <= 2));
        for i in [0u64, 1, 499, 998, 999] {
            let inside = (i * 1_000_003 + 3).to_be_bytes();
            assert_eq!(f.stack_at(&inside), Some(i as usize));
            let between = (i * 1_000_003 + 10).to_be_bytes();
            assert_eq!(f.stack_at(&between), None);
            assert_eq!(
                f.stack_index_at_or_after(&between),
                (i < 999).then_some(i as usize + 1)
            );
        }
        // A list whose starts share one prefix has no buckets.
        let tied = FragmentedRangeTombstones::fragment((0u32..100).map(|i| {
            let start = format!("tiedtied{i:03}");
            RangeTombstone::new(start.as_bytes(), Some(format!("{start}5").as_bytes()), 5)
        }));
        assert!(tied.buckets.is_none());
    }

    #[test]
    fn overlapping_tombstones_become_stacks() {
        let f = FragmentedRangeTombstones::fragment([t("b", Some("f"), 5), t("d", Some("h"), 7)]);
        debug_check(&f);
        assert_eq!(
            stacks(&f),
            vec![
                st("b", Some("d"), &[5]),
                st("d", Some("f"), &[7, 5]),
                st("f", Some("h"), &[7]),
            ]
        );
        assert_eq!(f.len(), 4);
        assert_eq!(f.num_stacks(), 3);
        assert_eq!(f.smallest_start(), Some(&b"b"[..]));
        assert_eq!(f.largest_end(), Some(RangeEnd::Bounded(b"h")));
        assert_eq!(f.seqno_range(), Some((5, 7)));
    }

    #[test]
    fn gaps_are_not_stacks_and_unbounded_ends_reach_the_last_stack() {
        let f = FragmentedRangeTombstones::fragment([
            t("x", None, 3),
            t("a", Some("c"), 4),
            t("z", Some("zz"), 9),
            t("q", Some("q"), 8), // empty: dropped
        ]);
        debug_check(&f);
        assert_eq!(
            stacks(&f),
            vec![
                st("a", Some("c"), &[4]),
                st("x", Some("z"), &[3]),
                st("z", Some("zz"), &[9, 3]),
                st("zz", None, &[3]),
            ]
        );
        assert_eq!(f.largest_end(), Some(RangeEnd::Unbounded));
        assert_eq!(f.max_covering_seqno(b"d", 100), None, "gap");
        assert_eq!(f.max_covering_seqno(b"\xff\xff", 100), Some(3));
        assert_eq!(f.max_covering_seqno(b"z", 8), Some(3));
        assert_eq!(f.max_covering_seqno(b"z", 9), Some(9));
        assert_eq!(f.max_covering_seqno(b"z", 2), None);
        assert_eq!(
            f.covering(b"zb", 9),
            Some(Covering {
                seqno: 9,
                start: Bytes::from_static(b"z"),
                end: Some(Bytes::from_static(b"zz")),
            })
        );
    }

    #[test]
    fn nothing_in_nothing_out() {
        let f = FragmentedRangeTombstones::fragment([]);
        assert!(f.is_empty());
        assert_eq!(f.len(), 0);
        assert_eq!(f.seqno_range(), None);
        assert_eq!(f.smallest_start(), None);
        assert_eq!(f.largest_end(), None);
        assert_eq!(f.stack_at(b"a"), None);
        assert_eq!(f.stack_index_at_or_after(b""), None);
        assert_eq!(f.stack_index_at_or_before(b"\xff"), None);
        assert!(FragmentedRangeTombstones::fragment([t("b", Some("a"), 1)]).is_empty());
    }

    #[test]
    fn seek_helpers_find_the_stack_at_or_beside_a_key() {
        // [b,d){1} gap [f,h){2} [h,k){3}
        let f = FragmentedRangeTombstones::fragment([
            t("b", Some("d"), 1),
            t("f", Some("h"), 2),
            t("h", Some("k"), 3),
        ]);
        type Case = (&'static str, Option<usize>, Option<usize>, Option<usize>);
        let cases: [Case; 8] = [
            // key, at, at_or_after, at_or_before
            ("a", None, Some(0), None),
            ("b", Some(0), Some(0), Some(0)),
            ("c", Some(0), Some(0), Some(0)),
            ("d", None, Some(1), Some(0)),
            ("e", None, Some(1), Some(0)),
            ("h", Some(2), Some(2), Some(2)),
            ("j", Some(2), Some(2), Some(2)),
            ("k", None, None, Some(2)),
        ];
        for (key, at, after, before) in cases {
            let key = key.as_bytes();
            assert_eq!(f.stack_at(key), at, "stack_at {key:?}");
            assert_eq!(f.stack_index_at_or_after(key), after, "after {key:?}");
            assert_eq!(f.stack_index_at_or_before(key), before, "before {key:?}");
        }
    }

    /// Many stacks, in runs whose starts share their 8-byte prefix (longer
    /// than a stride of the prefix index) and runs that do not: every
    /// search agrees with a scan of the stacks, at each start, end and
    /// between them.
    #[test]
    fn searches_across_prefix_index_strides_and_tied_prefixes() {
        let mut ts = Vec::new();
        for i in 0u32..40 {
            // Shared prefix "tiedtied", then a distinct tail.
            let start = format!("tiedtied{i:03}");
            ts.push(t(&start, Some(&format!("{start}5")), 1 + u64::from(i)));
        }
        for i in 0u32..30 {
            // Distinct prefixes, with gaps between the stacks.
            let start = format!("{i:03}-distinct");
            ts.push(t(&start, Some(&format!("{i:03}-e")), 100));
        }
        let f = FragmentedRangeTombstones::fragment(ts);
        debug_check(&f);
        assert!(f.num_stacks() > 8 * PREFIX_INDEX_STRIDE);
        let mut probes: Vec<Vec<u8>> = vec![b"".to_vec(), b"\xff\xff".to_vec()];
        for s in f.iter() {
            let start = s.start().to_vec();
            probes.push([&start[..], b"\0"].concat());
            probes.push(start[..start.len() - 1].to_vec());
            probes.push(start);
            if let Some(end) = s.end() {
                probes.push(end.to_vec());
                probes.push([end, b"\0"].concat());
            }
        }
        for k in probes {
            let after = f.iter().position(|s| s.ends_after(&k));
            let before = f.iter().rposition(|s| s.start() <= &k[..]);
            assert_eq!(f.stack_index_at_or_after(&k), after, "after {k:?}");
            assert_eq!(f.stack_index_at_or_before(&k), before, "before {k:?}");
            let at = before.filter(|&i| f.stack(i).unwrap().ends_after(&k));
            assert_eq!(f.stack_at(&k), at, "at {k:?}");
        }
    }

    /// Short keys, and keys behind a shared prefix of 7 or 8 bytes, so
    /// the searches meet keys whose 8-byte prefixes tie.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        let shared = prop::sample::select(vec![&b""[..], b"prefix\xff", b"prefix\xffa"]);
        let tail = prop::collection::vec(
            prop::sample::select(vec![0u8, b'a', b'b', b'c', 0xff]),
            0..4,
        );
        (shared, tail).prop_map(|(shared, tail)| [shared, &tail[..]].concat())
    }

    fn tombstone() -> impl Strategy<Value = RangeTombstone> {
        (key(), prop::option::weighted(0.85, key()), 1u64..12).prop_map(|(start, end, seqno)| {
            RangeTombstone {
                start: start.into(),
                end: end.map(Bytes::from),
                seqno,
            }
        })
    }

    /// The newest seqno <= read_seq covering `k`, read off the
    /// unfragmented list.
    fn brute_max(ts: &[RangeTombstone], k: &[u8], read_seq: SeqNo) -> Option<SeqNo> {
        ts.iter()
            .filter(|t| covers(t, k) && t.seqno <= read_seq)
            .map(|t| t.seqno)
            .max()
    }

    fn covers(t: &RangeTombstone, k: &[u8]) -> bool {
        t.start[..] <= *k && t.end.as_ref().is_none_or(|e| *k < e[..])
    }

    proptest! {
        #[test]
        fn queries_match_the_unfragmented_list(
            // Up to about 50 stacks: several strides of the prefix index.
            ts in prop::collection::vec(tombstone(), 0..24),
            probes in prop::collection::vec((key(), 0u64..14), 1..24),
        ) {
            let f = FragmentedRangeTombstones::fragment(ts.clone());
            debug_check(&f);
            for (k, read_seq) in probes {
                let want = brute_max(&ts, &k, read_seq);
                prop_assert_eq!(f.max_covering_seqno(&k, read_seq), want, "key {:?} @{}", k, read_seq);

                // The stack holds exactly the seqnos covering k.
                let mut all: Vec<SeqNo> =
                    ts.iter().filter(|t| covers(t, &k)).map(|t| t.seqno).collect();
                all.sort_unstable_by(|a, b| b.cmp(a));
                all.dedup();
                let stack = f.stack_at(&k).and_then(|i| f.stack(i));
                prop_assert_eq!(stack.map(|s| s.seqnos().to_vec()).unwrap_or_default(), all);

                // The covering span runs from the last cut point at or
                // before k to the first after it.
                let covering = f.covering(&k, read_seq);
                prop_assert_eq!(covering.as_ref().map(|c| c.seqno), want);
                if let Some(c) = covering {
                    let cuts = ts.iter().filter(|t| !t.is_empty_range()).flat_map(|t| {
                        std::iter::once(t.start.clone()).chain(t.end.clone())
                    });
                    let (mut lo, mut hi): (Option<Bytes>, Option<Bytes>) = (None, None);
                    for p in cuts {
                        if p[..] <= k[..] && lo.as_ref().is_none_or(|l| p > *l) {
                            lo = Some(p);
                        } else if p[..] > k[..] && hi.as_ref().is_none_or(|h| p < *h) {
                            hi = Some(p);
                        }
                    }
                    prop_assert_eq!(Some(c.start), lo);
                    prop_assert_eq!(c.end, hi);
                }

                // The per-stack tests agree with the stacks' own.
                for (i, s) in f.iter().enumerate() {
                    prop_assert_eq!(f.stack_visible_seqno(i, read_seq), s.visible_seqno(read_seq));
                    prop_assert_eq!(
                        f.stack_prefixes(i),
                        Some((key_prefix(s.start()), s.end().map_or(u64::MAX, key_prefix)))
                    );
                    prop_assert_eq!(f.stack_ends_after(i, &k), s.ends_after(&k));
                    prop_assert_eq!(f.stack_starts_at_or_before(i, &k), s.start() <= &k[..]);
                }
                prop_assert!(!f.stack_ends_after(f.num_stacks(), &k));
                prop_assert!(!f.stack_starts_at_or_before(f.num_stacks(), &k));

                // Seek helpers agree with a scan of the stacks.
                let after = f.iter().position(|s| s.ends_after(&k));
                prop_assert_eq!(f.stack_index_at_or_after(&k), after);
                let before = f.iter().rposition(|s| s.start() <= &k[..]);
                prop_assert_eq!(f.stack_index_at_or_before(&k), before);
            }
            let live: Vec<SeqNo> =
                ts.iter().filter(|t| !t.is_empty_range()).map(|t| t.seqno).collect();
            prop_assert_eq!(
                f.seqno_range(),
                live.iter().min().copied().zip(live.iter().max().copied())
            );
        }

        /// The searches agree with a scan of the stacks over lists long
        /// enough for the prefix buckets, with starts spread evenly,
        /// clustered, or far apart (one bucket holding most stacks, the
        /// case the prefix index takes over), and at probes between,
        /// on and beside every bound and outside the whole list.
        #[test]
        fn bucketed_searches_agree_with_a_scan(
            starts in prop::collection::btree_set(
                prop_oneof![
                    0u64..4_000,
                    (0u64..64).prop_map(|x| 1_000_000 + x),
                    any::<u64>(),
                ],
                0..300),
            width in 1u64..3,
            tail in prop::collection::vec(any::<u8>(), 0..3),
        ) {
            let ts: Vec<RangeTombstone> = starts.iter().map(|&x| {
                let start = [&x.to_be_bytes()[..], &tail[..]].concat();
                let end = x.checked_add(width).map(|e| e.to_be_bytes().to_vec());
                RangeTombstone { start: start.into(), end: end.map(Bytes::from), seqno: 7 }
            }).collect();
            let f = FragmentedRangeTombstones::fragment(ts);
            debug_check(&f);
            let mut probes: Vec<Vec<u8>> = vec![vec![], vec![0xff; 9]];
            for &x in &starts {
                for d in [x.wrapping_sub(1), x, x.wrapping_add(1), x.wrapping_add(width)] {
                    let k = d.to_be_bytes();
                    probes.push(k.to_vec());
                    probes.push([&k[..], &tail[..]].concat());
                    probes.push([&k[..], &[0xff][..]].concat());
                }
            }
            for k in probes {
                let after = f.iter().position(|s| s.ends_after(&k));
                prop_assert_eq!(f.stack_index_at_or_after(&k), after, "after {:?}", k);
                let before = f.iter().rposition(|s| s.start() <= &k[..]);
                prop_assert_eq!(f.stack_index_at_or_before(&k), before, "before {:?}", k);
            }
        }

        #[test]
        fn fragmenting_is_idempotent(ts in prop::collection::vec(tombstone(), 0..10)) {
            let once = FragmentedRangeTombstones::fragment(ts);
            let twice = FragmentedRangeTombstones::fragment(once.fragments());
            prop_assert_eq!(&twice, &once);
            prop_assert_eq!(once.fragments().count(), once.len());
        }
    }
}
