//! A test-only internal iterator over a sorted vector, counting its seeks
//! and steps, so merging-iterator tests need no memtable or table.

use super::InternalIterator;
use crate::error::Result;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strata_sstable::compare_internal_keys;

/// How often an iterator was moved.
#[derive(Default, Debug)]
pub struct MoveCounts {
    /// `seek`, `seek_for_prev`, `seek_to_first`, `seek_to_last`.
    pub seeks: AtomicUsize,
    /// `next` and `prev`.
    pub steps: AtomicUsize,
}

impl MoveCounts {
    pub fn seeks(&self) -> usize {
        self.seeks.load(Ordering::Relaxed)
    }

    pub fn steps(&self) -> usize {
        self.steps.load(Ordering::Relaxed)
    }
}

/// Iterates `(internal key, value)` pairs held sorted in internal-key
/// order.
pub struct VecIter {
    entries: Arc<Vec<(Vec<u8>, Vec<u8>)>>,
    pos: Option<usize>,
    counts: Arc<MoveCounts>,
}

impl VecIter {
    /// An iterator over `entries`, sorted here.
    pub fn new(mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        entries.sort_by(|a, b| compare_internal_keys(&a.0, &b.0));
        VecIter {
            entries: Arc::new(entries),
            pos: None,
            counts: Arc::default(),
        }
    }

    /// The counters this iterator adds to.
    pub fn counts(&self) -> Arc<MoveCounts> {
        Arc::clone(&self.counts)
    }

    fn seeked(&mut self, pos: Option<usize>) {
        self.counts.seeks.fetch_add(1, Ordering::Relaxed);
        self.pos = pos.filter(|&p| p < self.entries.len());
    }

    fn stepped(&mut self, pos: Option<usize>) {
        self.counts.steps.fetch_add(1, Ordering::Relaxed);
        self.pos = pos.filter(|&p| p < self.entries.len());
    }

    fn entry(&self) -> &(Vec<u8>, Vec<u8>) {
        let pos = self.pos.expect("REQUIRES: valid()");
        &self.entries[pos]
    }
}

impl InternalIterator for VecIter {
    fn valid(&self) -> bool {
        self.pos.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.seeked(Some(0));
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.seeked(self.entries.len().checked_sub(1));
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let p = self
            .entries
            .partition_point(|(k, _)| compare_internal_keys(k, target).is_lt());
        self.seeked(Some(p));
        Ok(())
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        let p = self
            .entries
            .partition_point(|(k, _)| compare_internal_keys(k, target).is_le());
        self.seeked(p.checked_sub(1));
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let p = self.pos.expect("REQUIRES: valid()");
        self.stepped(Some(p + 1));
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        let p = self.pos.expect("REQUIRES: valid()");
        self.stepped(p.checked_sub(1));
        Ok(())
    }

    fn key(&self) -> &[u8] {
        &self.entry().0
    }

    fn value(&self) -> &[u8] {
        &self.entry().1
    }
}
