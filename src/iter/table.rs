//! An internal iterator over one table file, pinning the file.

use super::InternalIterator;
use crate::error::{table_error, Result};
use crate::version::TableFile;
use bytes::Bytes;
use std::sync::Arc;
use strata_sstable::{BlockReadOptions, TableIter};

/// Iterates one table; keeps the file (and its mapping) alive.
pub struct TableFileIter {
    iter: TableIter,
    file: Arc<TableFile>,
}

impl TableFileIter {
    /// An iterator over `file`, reading its blocks as `blocks` says.
    pub fn new(file: Arc<TableFile>, blocks: BlockReadOptions) -> Self {
        TableFileIter {
            iter: file.table().iter_with_options(blocks),
            file,
        }
    }

    fn check(&self, r: strata_sstable::Result<()>) -> Result<()> {
        r.map_err(|e| table_error(self.file.path(), e))
    }
}

impl InternalIterator for TableFileIter {
    fn valid(&self) -> bool {
        self.iter.valid()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        let r = self.iter.seek_to_first();
        self.check(r)
    }
    fn seek_to_last(&mut self) -> Result<()> {
        let r = self.iter.seek_to_last();
        self.check(r)
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let r = self.iter.seek(target);
        self.check(r)
    }
    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        let r = self.iter.seek_for_prev(target);
        self.check(r)
    }
    fn next(&mut self) -> Result<()> {
        let r = self.iter.next();
        self.check(r)
    }
    fn prev(&mut self) -> Result<()> {
        let r = self.iter.prev();
        self.check(r)
    }
    fn key(&self) -> &[u8] {
        self.iter.key()
    }
    fn value(&self) -> &[u8] {
        self.iter.value()
    }
    fn value_bytes(&self) -> Bytes {
        self.iter.value_bytes()
    }
}
