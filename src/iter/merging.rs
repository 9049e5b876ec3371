//! A k-way merge of internal iterators, in either direction.

use super::InternalIterator;
use crate::error::Result;
use bytes::Bytes;
use std::cmp::Ordering;
use strata_sstable::compare_internal_keys;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// Merges children into one internal-key-ordered stream. Keys are unique
/// across children (every version has its own sequence number), so no
/// de-duplication is needed here.
pub struct MergingIter {
    children: Vec<Box<dyn InternalIterator>>,
    current: Option<usize>,
    direction: Direction,
    /// The current key, copied only when the direction changes.
    scratch: Vec<u8>,
}

impl MergingIter {
    pub fn new(children: Vec<Box<dyn InternalIterator>>) -> Self {
        MergingIter {
            children,
            current: None,
            direction: Direction::Forward,
            scratch: Vec::new(),
        }
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
        for (i, child) in self.children.iter().enumerate() {
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
}

impl InternalIterator for MergingIter {
    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        for child in &mut self.children {
            child.seek_to_first()?;
        }
        self.direction = Direction::Forward;
        self.find_smallest();
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        for child in &mut self.children {
            child.seek_to_last()?;
        }
        self.direction = Direction::Reverse;
        self.find_largest();
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        for child in &mut self.children {
            child.seek(target)?;
        }
        self.direction = Direction::Forward;
        self.find_smallest();
        Ok(())
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        for child in &mut self.children {
            child.seek_for_prev(target)?;
        }
        self.direction = Direction::Reverse;
        self.find_largest();
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let Some(cur) = self.current else {
            return Ok(());
        };
        if self.direction != Direction::Forward {
            // Every other child sits before the current key; move each to
            // the first entry after it.
            self.scratch.clear();
            self.scratch.extend_from_slice(self.children[cur].key());
            for (i, child) in self.children.iter_mut().enumerate() {
                if i == cur {
                    continue;
                }
                child.seek(&self.scratch)?;
                if child.valid() && compare_internal_keys(child.key(), &self.scratch).is_eq() {
                    child.next()?;
                }
            }
            self.direction = Direction::Forward;
        }
        self.children[cur].next()?;
        self.find_smallest();
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        let Some(cur) = self.current else {
            return Ok(());
        };
        if self.direction != Direction::Reverse {
            // Every other child sits after the current key; move each to
            // the last entry before it.
            self.scratch.clear();
            self.scratch.extend_from_slice(self.children[cur].key());
            for (i, child) in self.children.iter_mut().enumerate() {
                if i == cur {
                    continue;
                }
                child.seek_for_prev(&self.scratch)?;
                if child.valid() && compare_internal_keys(child.key(), &self.scratch).is_eq() {
                    child.prev()?;
                }
            }
            self.direction = Direction::Reverse;
        }
        self.children[cur].prev()?;
        self.find_largest();
        Ok(())
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
