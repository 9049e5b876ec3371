//! An internal iterator over a memtable that keeps the memtable alive.

use super::key::{IKey, MemEntry};
use super::MemTable;
use crate::error::Result;
use crate::iter::InternalIterator;
use crossbeam_skiplist::map::Entry;
use std::ops::Bound;
use std::sync::Arc;

/// Iterates a memtable's entries in internal-key order.
pub struct MemTableIter {
    // Field order matters: `current` borrows from the skiplist inside
    // `table`, so it is declared (and therefore dropped) first.
    current: Option<Entry<'static, MemEntry, ()>>,
    table: Arc<MemTable>,
}

impl MemTableIter {
    pub fn new(table: Arc<MemTable>) -> Self {
        MemTableIter {
            current: None,
            table,
        }
    }

    fn set(&mut self, entry: Option<Entry<'_, MemEntry, ()>>) {
        // SAFETY: the entry borrows the `SkipMap` owned by `*self.table`, a
        // heap allocation kept alive (and never moved) by the `Arc` this
        // iterator holds for at least as long as the entry: the entry is
        // stored in `self.current`, which is dropped before `self.table`
        // (field order) and replaced only through this method. Extending
        // the lifetime to 'static never lets the borrow escape `self`:
        // `key`/`value` return borrows tied to `&self`.
        self.current = entry.map(|e| unsafe {
            std::mem::transmute::<Entry<'_, MemEntry, ()>, Entry<'static, MemEntry, ()>>(e)
        });
    }
}

impl InternalIterator for MemTableIter {
    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        let table = Arc::clone(&self.table);
        let e = table.map().front();
        self.set(e);
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        let table = Arc::clone(&self.table);
        let e = table.map().back();
        self.set(e);
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let table = Arc::clone(&self.table);
        let e = table.map().lower_bound(Bound::Included(IKey::new(target)));
        self.set(e);
        Ok(())
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        let table = Arc::clone(&self.table);
        let e = table.map().upper_bound(Bound::Included(IKey::new(target)));
        self.set(e);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let e = self.current.as_ref().and_then(|c| c.next());
        self.set(e);
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        let e = self.current.as_ref().and_then(|c| c.prev());
        self.set(e);
        Ok(())
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |e| e.key().ikey())
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |e| e.key().value())
    }
}
