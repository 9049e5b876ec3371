//! A k-way merge of internal iterators, in either direction, skipping the
//! entries that range tombstones delete.

use super::range_del::RangeDelSkipper;
use super::{user_key, InternalIterator};
use crate::error::Result;
use crate::ikey::push_seek_key;
use bytes::Bytes;
use std::cmp::Ordering;
use strata_sstable::{compare_internal_keys, compare_user_keys, parse_internal_key, MAX_SEQNO};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// Merges children into one internal-key-ordered stream. Keys are unique
/// across children (every version has its own sequence number), so no
/// de-duplication is needed here.
///
/// With range tombstones ([`with_range_dels`](Self::with_range_dels)) the
/// children must be ordered newest source first, and the stream leaves
/// out every entry at or below the read's sequence number that a visible
/// tombstone deletes; entries above it pass (the user-key view hides
/// them). A span a tombstone covers in older sources costs one seek per
/// child, not a step per entry.
pub struct MergingIter {
    children: Vec<Box<dyn InternalIterator>>,
    current: Option<usize>,
    direction: Direction,
    /// The current key, copied only when the direction changes; the
    /// target of a skip's seeks.
    scratch: Vec<u8>,
    range_dels: RangeDelSkipper,
    /// Children `live..` are exhausted going forward: a tombstone with no
    /// end in a newer source deletes the rest of them, and no iterator can
    /// seek past every key. Every seek and direction change repositions
    /// all children and resets it to `children.len()`.
    live: usize,
}

impl MergingIter {
    /// A merge that keeps every entry (compaction's, which decides about
    /// deleted entries itself).
    pub fn new(children: Vec<Box<dyn InternalIterator>>) -> Self {
        Self::with_range_dels(children, RangeDelSkipper::none())
    }

    /// A merge of `children`, newest source first, leaving out what the
    /// tombstones in `range_dels` (same child order) delete.
    pub fn with_range_dels(
        children: Vec<Box<dyn InternalIterator>>,
        range_dels: RangeDelSkipper,
    ) -> Self {
        debug_assert!(
            range_dels.len() <= children.len(),
            "tombstones for {} children, only {} children",
            range_dels.len(),
            children.len()
        );
        MergingIter {
            live: children.len(),
            children,
            current: None,
            direction: Direction::Forward,
            scratch: Vec::new(),
            range_dels,
        }
    }

    /// Position at the first entry `>= target`, for a `target` after the
    /// current entry while moving forward (a re-seek past a key's
    /// versions): only the children still before `target` seek. Every
    /// other child already stands at its first entry at or after it, since
    /// a child holds nothing between the current entry and its own (those
    /// entries would have come out of the merge first), and a child done
    /// going forward stays done. Otherwise the same as `seek`.
    pub fn seek_forward(&mut self, target: &[u8]) -> Result<()> {
        let ahead = self.direction == Direction::Forward
            && self
                .current_child()
                .is_some_and(|c| compare_internal_keys(c.key(), target).is_lt());
        if !ahead {
            return self.seek(target);
        }
        self.or_invalid(|m| {
            for child in &mut m.children[..m.live] {
                if child.valid() && compare_internal_keys(child.key(), target).is_lt() {
                    child.seek(target)?;
                }
            }
            m.find_smallest();
            m.skip_covered_forward()
        })
    }

    fn find_smallest(&mut self) {
        self.current = self.pick(Ordering::Less);
    }

    fn find_largest(&mut self) {
        self.current = self.pick(Ordering::Greater);
    }

    /// The valid child whose key compares `want` against all others.
    fn pick(&self, want: Ordering) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, child) in self.children[..self.live].iter().enumerate() {
            if !child.valid() {
                continue;
            }
            best = match best {
                Some(b) if compare_internal_keys(child.key(), self.children[b].key()) != want => {
                    Some(b)
                }
                _ => Some(i),
            };
        }
        best
    }

    fn current_child(&self) -> Option<&dyn InternalIterator> {
        self.current.map(|i| &*self.children[i])
    }

    /// Going forward, move past every entry a tombstone deletes, until the
    /// current entry is one no tombstone deletes (or there is none).
    ///
    /// Current child `j` at `u@q`: if an older-or-equal source `i` has a
    /// visible fragment `[s, e)@t` over `u` and `i < j` or `t > q`, the
    /// entry is deleted. When `i < j`, the invariant says the fragment
    /// deletes all of `[s, e)` in every source after `i`, so each child
    /// `k > i` still before `e` seeks to the first version of `e` (none
    /// when the fragment has no end: those children are done). When
    /// `i == j`, entries of `j` newer than `t` must survive, so `j` only
    /// steps.
    #[inline]
    fn skip_covered_forward(&mut self) -> Result<()> {
        if self.range_dels.is_empty() || self.current_surely_kept() {
            return Ok(());
        }
        self.skip_covered_forward_from_current()
    }

    /// Whether the current entry (if any) is one no tombstone deletes,
    /// where the skipper can tell without a call: most entries a scan
    /// meets lie in the span of the entry before, and no tombstone
    /// covers it.
    #[inline]
    fn current_surely_kept(&self) -> bool {
        self.current.is_none_or(|j| {
            parse_internal_key(self.children[j].key())
                .is_none_or(|e| self.range_dels.surely_kept(e.user_key, e.seqno))
        })
    }

    /// [`skip_covered_forward`](Self::skip_covered_forward) past its
    /// inline test.
    #[inline(never)]
    fn skip_covered_forward_from_current(&mut self) -> Result<()> {
        while let Some(j) = self.current {
            let Some(entry) = parse_internal_key(self.children[j].key()) else {
                break;
            };
            let Some(fragment) = self.range_dels.deleting(j, entry.user_key, entry.seqno) else {
                break;
            };
            let i = fragment.child;
            if i == j {
                self.children[j].next()?;
            } else if let Some(end) = fragment.end {
                self.scratch.clear();
                push_seek_key(&mut self.scratch, end, MAX_SEQNO);
                for child in &mut self.children[i + 1..self.live] {
                    if child.valid() && compare_user_keys(user_key(child.key()), end).is_lt() {
                        child.seek(&self.scratch)?;
                    }
                }
            } else {
                self.live = i + 1;
            }
            self.find_smallest();
        }
        Ok(())
    }

    /// The mirror of [`skip_covered_forward`](Self::skip_covered_forward):
    /// each child `k > i` at or after the fragment's start seeks to the
    /// last entry before every version of the start; within the source
    /// itself, `prev`.
    #[inline]
    fn skip_covered_backward(&mut self) -> Result<()> {
        if self.range_dels.is_empty() || self.current_surely_kept() {
            return Ok(());
        }
        self.skip_covered_backward_from_current()
    }

    #[inline(never)]
    fn skip_covered_backward_from_current(&mut self) -> Result<()> {
        while let Some(j) = self.current {
            let Some(entry) = parse_internal_key(self.children[j].key()) else {
                break;
            };
            let Some(fragment) = self.range_dels.deleting(j, entry.user_key, entry.seqno) else {
                break;
            };
            let i = fragment.child;
            if i == j {
                self.children[j].prev()?;
            } else {
                let start = fragment.start;
                self.scratch.clear();
                push_seek_key(&mut self.scratch, start, MAX_SEQNO);
                for child in &mut self.children[i + 1..] {
                    if child.valid() && compare_user_keys(user_key(child.key()), start).is_ge() {
                        child.seek_for_prev(&self.scratch)?;
                    }
                }
            }
            self.find_largest();
        }
        Ok(())
    }

    /// Runs `step` and, if it fails, leaves the iterator not valid: a
    /// half-done skip must not surface an entry it was about to delete.
    fn or_invalid(&mut self, step: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let r = step(self);
        if r.is_err() {
            self.current = None;
        }
        r
    }
}

impl InternalIterator for MergingIter {
    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.or_invalid(|m| {
            m.live = m.children.len();
            for child in &mut m.children {
                child.seek_to_first()?;
            }
            m.direction = Direction::Forward;
            m.find_smallest();
            m.skip_covered_forward()
        })
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.or_invalid(|m| {
            m.live = m.children.len();
            for child in &mut m.children {
                child.seek_to_last()?;
            }
            m.direction = Direction::Reverse;
            m.find_largest();
            m.skip_covered_backward()
        })
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.or_invalid(|m| {
            m.live = m.children.len();
            for child in &mut m.children {
                child.seek(target)?;
            }
            m.direction = Direction::Forward;
            m.find_smallest();
            m.skip_covered_forward()
        })
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.or_invalid(|m| {
            m.live = m.children.len();
            for child in &mut m.children {
                child.seek_for_prev(target)?;
            }
            m.direction = Direction::Reverse;
            m.find_largest();
            m.skip_covered_backward()
        })
    }

    fn next(&mut self) -> Result<()> {
        let Some(cur) = self.current else {
            return Ok(());
        };
        self.or_invalid(|m| {
            if m.direction != Direction::Forward {
                // Every other child sits before the current key; move each
                // to the first entry after it. Entries a tombstone deletes
                // among them are skipped when they come up.
                m.scratch.clear();
                m.scratch.extend_from_slice(m.children[cur].key());
                m.live = m.children.len();
                for (i, child) in m.children.iter_mut().enumerate() {
                    if i == cur {
                        continue;
                    }
                    child.seek(&m.scratch)?;
                    if child.valid() && compare_internal_keys(child.key(), &m.scratch).is_eq() {
                        child.next()?;
                    }
                }
                m.direction = Direction::Forward;
            }
            m.children[cur].next()?;
            m.find_smallest();
            m.skip_covered_forward()
        })
    }

    fn prev(&mut self) -> Result<()> {
        let Some(cur) = self.current else {
            return Ok(());
        };
        self.or_invalid(|m| {
            if m.direction != Direction::Reverse {
                // Every other child sits after the current key (or is done,
                // `live..`); move each to the last entry before it.
                m.scratch.clear();
                m.scratch.extend_from_slice(m.children[cur].key());
                m.live = m.children.len();
                for (i, child) in m.children.iter_mut().enumerate() {
                    if i == cur {
                        continue;
                    }
                    child.seek_for_prev(&m.scratch)?;
                    if child.valid() && compare_internal_keys(child.key(), &m.scratch).is_eq() {
                        child.prev()?;
                    }
                }
                m.direction = Direction::Reverse;
            }
            m.children[cur].prev()?;
            m.find_largest();
            m.skip_covered_backward()
        })
    }

    fn key(&self) -> &[u8] {
        self.current_child().map_or(&[], |c| c.key())
    }

    fn value(&self) -> &[u8] {
        self.current_child().map_or(&[], |c| c.value())
    }

    fn value_bytes(&self) -> Bytes {
        self.current_child()
            .map_or_else(Bytes::new, |c| c.value_bytes())
    }
}
