//! An internal iterator over one sorted run: the non-overlapping tables of
//! a level L1+, opened one at a time as the iteration crosses files.

use super::{user_key, InternalIterator, TableFileIter};
use crate::error::Result;
use crate::version::TableFile;
use bytes::Bytes;
use std::sync::Arc;
use strata_sstable::BlockReadOptions;

/// Concatenates the tables of a level (sorted by key, not overlapping).
pub struct LevelIter {
    files: Arc<[Arc<TableFile>]>,
    index: usize,
    current: Option<TableFileIter>,
    blocks: BlockReadOptions,
}

impl LevelIter {
    /// An iterator over a level's `files`, reading blocks as `blocks` says.
    pub fn new(files: Arc<[Arc<TableFile>]>, blocks: BlockReadOptions) -> Self {
        LevelIter {
            files,
            index: 0,
            current: None,
            blocks,
        }
    }

    fn open(&mut self, index: usize) {
        if self.current.is_some() && self.index == index {
            return;
        }
        self.index = index;
        self.current = self
            .files
            .get(index)
            .map(|f| TableFileIter::new(Arc::clone(f), self.blocks));
    }

    /// Past the end of a file going forward: move into the next ones.
    fn skip_forward(&mut self) -> Result<()> {
        while self.current.as_ref().is_some_and(|c| !c.valid()) {
            if self.index + 1 >= self.files.len() {
                self.current = None;
                return Ok(());
            }
            self.open(self.index + 1);
            if let Some(c) = self.current.as_mut() {
                c.seek_to_first()?;
            }
        }
        Ok(())
    }

    /// Before the start of a file going backward: move into earlier ones.
    fn skip_backward(&mut self) -> Result<()> {
        while self.current.as_ref().is_some_and(|c| !c.valid()) {
            if self.index == 0 {
                self.current = None;
                return Ok(());
            }
            self.open(self.index - 1);
            if let Some(c) = self.current.as_mut() {
                c.seek_to_last()?;
            }
        }
        Ok(())
    }
}

impl InternalIterator for LevelIter {
    fn valid(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.valid())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        if self.files.is_empty() {
            self.current = None;
            return Ok(());
        }
        self.open(0);
        if let Some(c) = self.current.as_mut() {
            c.seek_to_first()?;
        }
        self.skip_forward()
    }

    fn seek_to_last(&mut self) -> Result<()> {
        if self.files.is_empty() {
            self.current = None;
            return Ok(());
        }
        self.open(self.files.len() - 1);
        if let Some(c) = self.current.as_mut() {
            c.seek_to_last()?;
        }
        self.skip_backward()
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let ukey = user_key(target);
        // The first file not ending before the target's user key.
        let i = self.files.partition_point(|f| f.meta.ends_before(ukey));
        if i >= self.files.len() {
            self.current = None;
            return Ok(());
        }
        self.open(i);
        if let Some(c) = self.current.as_mut() {
            c.seek(target)?;
        }
        self.skip_forward()
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        let ukey = user_key(target);
        // The last file not starting after the target's user key.
        let i = self.files.partition_point(|f| !f.meta.starts_after(ukey));
        if i == 0 {
            self.current = None;
            return Ok(());
        }
        self.open(i - 1);
        if let Some(c) = self.current.as_mut() {
            c.seek_for_prev(target)?;
        }
        self.skip_backward()
    }

    fn next(&mut self) -> Result<()> {
        if let Some(c) = self.current.as_mut() {
            c.next()?;
        }
        self.skip_forward()
    }

    fn prev(&mut self) -> Result<()> {
        if let Some(c) = self.current.as_mut() {
            c.prev()?;
        }
        self.skip_backward()
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |c| c.key())
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |c| c.value())
    }

    fn value_bytes(&self) -> Bytes {
        self.current
            .as_ref()
            .map_or_else(Bytes::new, |c| c.value_bytes())
    }
}
