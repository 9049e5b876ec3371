//! Iteration over a whole table: a two-level iterator, index block on top,
//! data blocks below.

use std::sync::Arc;

use bytes::Bytes;

use crate::block::cursor::Cursor;
use crate::block::Block;
use crate::error::{Error, Result};
use crate::index_block::IndexBlock;
use crate::key::{
    compare_internal_keys, compare_to_target, key_prefix, parse_internal_key, split_key, ParsedKey,
    ValueKind,
};
use crate::options::MAX_RESTART_INTERVAL;
use crate::readahead::Readahead;
use crate::table_reader::{index_handle_at, BlockReadOptions, Table};

/// Initial capacity of the iterator's key buffers.
const KEY_BUFFER_CAPACITY: usize = 128;

/// Iterates a table in internal-key order, both ways. Owns an
/// `Arc<Table>`; `Send`.
///
/// Moves return `Result`. An error (a damaged block) leaves the iterator
/// unpositioned (`!valid()`); `next` and `prev` on an unpositioned
/// iterator do nothing and return `Ok`, so a loop
/// `while it.valid() { ..; it.next()? }` ends cleanly either way.
///
/// No allocation per entry: the key buffer is reused. Blocks come from
/// the block cache, or from the source, read ahead when the scan reads
/// blocks in a row (see [`BlockReadOptions::readahead_bytes`]).
pub struct TableIter {
    table: Arc<Table>,
    reads: BlockReadOptions,
    /// The table's index, kept for the iterator's life (read into the
    /// cache at the first move when the cache holds it).
    index_block: Option<Arc<IndexBlock>>,
    readahead: Readahead,
    index: Cursor,
    data: Cursor,
    /// The data block `data` walks, and its ordinal in the index.
    block: Option<(usize, Block)>,
}

impl TableIter {
    pub(crate) fn new(table: Arc<Table>, reads: BlockReadOptions) -> TableIter {
        let alignment = table.properties().data_block_alignment;
        TableIter {
            index_block: table.index_shared().ok(),
            table,
            reads,
            readahead: Readahead::new(reads.readahead_bytes, alignment),
            // Room for typical keys up front, so that a scan does not
            // regrow the buffers while it meets longer keys.
            index: Cursor::with_key_buffer(Vec::with_capacity(KEY_BUFFER_CAPACITY)),
            data: Cursor::with_key_buffer(Vec::with_capacity(KEY_BUFFER_CAPACITY)),
            block: None,
        }
    }

    /// Before a backward move: room for a restart interval's entries
    /// (once; forward scans never reserve it), so that steps back
    /// allocate only for keys longer than usual.
    #[inline]
    fn reserve_steps_back(&mut self) {
        if self.data.has_room_for_steps_back() {
            return;
        }
        let interval = usize::try_from(self.table.properties().restart_interval)
            .unwrap_or(MAX_RESTART_INTERVAL)
            .clamp(1, MAX_RESTART_INTERVAL);
        self.data
            .reserve_steps_back(interval, KEY_BUFFER_CAPACITY / 2);
    }

    /// True when positioned on an entry.
    #[inline]
    pub fn valid(&self) -> bool {
        self.data.valid()
    }

    /// Moves to the first entry.
    pub fn seek_to_first(&mut self) -> Result<()> {
        let r = self.load_index().and_then(|()| self.seek_to_first_inner());
        self.settle(r)
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self) -> Result<()> {
        self.reserve_steps_back();
        let r = self.load_index().and_then(|()| self.seek_to_last_inner());
        self.settle(r)
    }

    /// Moves to the first entry whose internal key is >= `target`.
    pub fn seek(&mut self, target: &[u8]) -> Result<()> {
        let r = self.load_index().and_then(|()| self.seek_inner(target));
        self.settle(r)
    }

    /// Moves to the last entry whose internal key is <= `target`.
    pub fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.reserve_steps_back();
        let r = self
            .load_index()
            .and_then(|()| self.seek_for_prev_inner(target));
        self.settle(r)
    }

    /// Moves to the next entry; no-op when unpositioned.
    #[expect(
        clippy::should_implement_trait,
        reason = "a cursor move that can fail, not an item-yielding Iterator"
    )]
    pub fn next(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        let r = self.next_inner();
        self.settle(r)
    }

    /// Moves to the previous entry; no-op when unpositioned.
    pub fn prev(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.reserve_steps_back();
        let r = self.prev_inner();
        self.settle(r)
    }

    /// The current internal key. REQUIRES: `valid()` (empty otherwise).
    #[inline]
    pub fn key(&self) -> &[u8] {
        if self.valid() {
            self.data.key()
        } else {
            &[]
        }
    }

    /// The current key split into its parts. REQUIRES: `valid()`.
    pub fn parsed_key(&self) -> ParsedKey<'_> {
        debug_assert!(self.valid());
        let key = self.key();
        // Every entry is checked when the iterator lands on it, so this
        // only falls back for an unpositioned iterator.
        parse_internal_key(key).unwrap_or(ParsedKey {
            user_key: split_key(key).0,
            seqno: 0,
            kind: ValueKind::Delete,
        })
    }

    /// The current value. REQUIRES: `valid()` (empty otherwise).
    #[inline]
    pub fn value(&self) -> &[u8] {
        match (&self.block, self.valid()) {
            (Some((_, block)), true) => {
                let (start, end) = self.data.value_range();
                block.data().get(start..end).unwrap_or_default()
            }
            _ => &[],
        }
    }

    /// The current value as a zero-copy `Bytes` (empty when unpositioned).
    pub fn value_bytes(&self) -> Bytes {
        match (&self.block, self.valid()) {
            (Some((_, block)), true) => {
                let (start, end) = self.data.value_range();
                if start <= end && end <= block.data().len() {
                    block.data().slice(start..end)
                } else {
                    Bytes::new()
                }
            }
            _ => Bytes::new(),
        }
    }

    /// Loads the table's index if the iterator does not hold it yet.
    fn load_index(&mut self) -> Result<()> {
        if self.index_block.is_none() {
            self.index_block = Some(self.table.index_shared()?);
        }
        Ok(())
    }

    /// On error, unposition; on success, check the entry's key is a
    /// well-formed internal key of a known kind.
    fn settle(&mut self, r: Result<()>) -> Result<()> {
        let r = r.and_then(|()| self.check_entry());
        if r.is_err() {
            self.index.invalidate();
            self.data.invalidate();
        }
        r
    }

    fn check_entry(&self) -> Result<()> {
        if !self.valid() || parse_internal_key(self.data.key()).is_some() {
            return Ok(());
        }
        let pos = self.data.entry_offset();
        let offset = match &self.block {
            Some((_, b)) => b.view().origin.at(pos),
            None => 0,
        };
        Err(Error::corruption(
            offset,
            "data block: malformed internal key or unknown kind",
        ))
    }

    /// Loads the data block of the current index entry (unless it is the
    /// one already loaded); leaves the data cursor unpositioned.
    fn load_block(&mut self) -> Result<()> {
        self.data.invalidate();
        let ordinal = self.index.restart_index();
        if matches!(&self.block, Some((o, _)) if *o == ordinal) {
            return Ok(());
        }
        let index = loaded(&self.index_block)?.block.view();
        let handle = index_handle_at(&index, &self.index)?;
        self.readahead.note(handle);
        // Let go of the old block first: if it was a slice of a readahead
        // window, the window's memory can then be reused for the next.
        self.block = None;
        let block =
            self.table
                .data_block_owned(ordinal, handle, self.reads, Some(&mut self.readahead))?;
        self.block = Some((ordinal, block));
        Ok(())
    }

    /// From an unpositioned data cursor, moves forward through the index
    /// to the first entry of the next non-empty block.
    fn skip_forward(&mut self) -> Result<()> {
        while !self.data.valid() {
            let index = loaded(&self.index_block)?.block.view();
            self.index.next(&index)?;
            if !self.index.valid() {
                return Ok(());
            }
            self.load_block()?;
            if let Some((_, block)) = &self.block {
                self.data.seek_to_first(&block.view())?;
            }
        }
        Ok(())
    }

    /// From an unpositioned data cursor, moves backward through the index
    /// to the last entry of the previous non-empty block.
    fn skip_backward(&mut self) -> Result<()> {
        while !self.data.valid() {
            let index = loaded(&self.index_block)?.block.view();
            self.index.prev(&index)?;
            if !self.index.valid() {
                return Ok(());
            }
            self.load_block()?;
            if let Some((_, block)) = &self.block {
                self.data.seek_to_last(&block.view())?;
            }
        }
        Ok(())
    }

    fn seek_to_first_inner(&mut self) -> Result<()> {
        let index = loaded(&self.index_block)?.block.view();
        self.index.seek_to_first(&index)?;
        self.data.invalidate();
        if !self.index.valid() {
            return Ok(());
        }
        self.load_block()?;
        if let Some((_, block)) = &self.block {
            self.data.seek_to_first(&block.view())?;
        }
        self.skip_forward()
    }

    fn seek_to_last_inner(&mut self) -> Result<()> {
        let index = loaded(&self.index_block)?.block.view();
        self.index.seek_to_last(&index)?;
        self.data.invalidate();
        if !self.index.valid() {
            return Ok(());
        }
        self.load_block()?;
        if let Some((_, block)) = &self.block {
            self.data.seek_to_last(&block.view())?;
        }
        self.skip_backward()
    }

    fn seek_inner(&mut self, target: &[u8]) -> Result<()> {
        let (user_key, trailer) = split_key(target);
        let cmp = |k: &[u8]| compare_to_target(k, user_key, trailer);
        let index = loaded(&self.index_block)?.block.view();
        // Seeking forward within the current block (the merging
        // iterator's usual pattern) skips the index search.
        let same_block = self.data.valid()
            && self.index.valid()
            && cmp(self.data.key()).is_lt()
            && cmp(self.index.key()).is_ge();
        if !same_block {
            let fence = &loaded(&self.index_block)?.fence;
            self.index
                .seek_by_fenced(&index, fence, key_prefix(user_key), cmp)?;
            self.data.invalidate();
            if !self.index.valid() {
                return Ok(());
            }
            self.load_block()?;
        }
        if let Some((_, block)) = &self.block {
            self.data.seek_by(&block.view(), cmp)?;
        }
        self.skip_forward()
    }

    fn seek_for_prev_inner(&mut self, target: &[u8]) -> Result<()> {
        self.seek_inner(target)?;
        self.check_entry()?;
        if !self.valid() {
            return self.seek_to_last_inner();
        }
        if compare_internal_keys(self.data.key(), target).is_gt() {
            self.prev_inner()?;
        }
        Ok(())
    }

    fn next_inner(&mut self) -> Result<()> {
        if let Some((_, block)) = &self.block {
            self.data.next(&block.view())?;
        }
        self.skip_forward()
    }

    fn prev_inner(&mut self) -> Result<()> {
        if let Some((_, block)) = &self.block {
            self.data.prev(&block.view())?;
        }
        self.skip_backward()
    }
}

/// The index an iterator holds; every move that can reach here loaded it
/// first (`TableIter::load_index`).
fn loaded(index: &Option<Arc<IndexBlock>>) -> Result<&IndexBlock> {
    index.as_deref().ok_or_else(|| {
        Error::InvalidArgument("table iterator moved before its index was read".into())
    })
}
