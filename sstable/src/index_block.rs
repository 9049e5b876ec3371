//! The index as a reader holds it: the parsed block plus its fence,
//! validated once when it is read (at open, or when the block cache had
//! evicted it).

use bytes::Bytes;

use crate::block::Block;
use crate::data_layout::DataLayout;
use crate::error::{Error, Result};
use crate::fence::Fence;
use crate::handle::BlockHandle;
use crate::key::{compare_internal_keys, key_prefix, split_key, TRAILER_LEN};

/// A table's index block, checked: separators in strictly increasing
/// order, every entry a restart point, handles tiling the data region.
#[derive(Debug)]
pub struct IndexBlock {
    pub(crate) block: Block,
    /// The user-key prefix of each entry (every one a restart point), for
    /// `Cursor::seek_by_fenced`: 8 bytes per data block, and a summary.
    pub(crate) fence: Fence,
}

impl IndexBlock {
    /// Parses and checks the index block contents read from file offset
    /// `offset` (`exact`: uncompressed, so positions map to the file),
    /// whose data blocks must fill the data region as `layout` says and
    /// number `expected_blocks`.
    pub(crate) fn parse(
        contents: Bytes,
        offset: u64,
        exact: bool,
        layout: DataLayout,
        expected_blocks: u64,
    ) -> Result<IndexBlock> {
        let block = Block::with_origin(contents, offset, exact)?;
        let (num_blocks, fence) = check_index(&block, offset, layout)?;
        if num_blocks != expected_blocks {
            return Err(Error::corruption(
                offset,
                format!("index has {num_blocks} entries, properties say {expected_blocks}"),
            ));
        }
        Ok(IndexBlock {
            block,
            fence: Fence::new(fence),
        })
    }

    /// Bytes of memory it holds, for the block cache's charge.
    pub fn charge(&self) -> usize {
        self.block.data().len() + self.fence.charge()
    }

    /// Number of data blocks it indexes.
    pub fn num_blocks(&self) -> usize {
        self.fence.len()
    }

    /// The index entries in order: separator key and data block handle.
    pub(crate) fn entries(&self, offset: u64) -> Result<Vec<(Vec<u8>, BlockHandle)>> {
        let mut out = Vec::new();
        let mut it = self.block.iter();
        it.seek_to_first()?;
        while it.valid() {
            let handle = BlockHandle::decode_exact(it.value())
                .ok_or_else(|| Error::corruption(offset, "index: bad block handle"))?;
            out.push((it.key().to_vec(), handle));
            it.next()?;
        }
        Ok(out)
    }
}

/// Walks the index once: keys are internal keys in strictly increasing
/// order, every entry is a restart point, and the handles fill the data
/// region exactly as `layout` says. Returns the number of data blocks and
/// the index's fence (each entry's user-key prefix).
fn check_index(index: &Block, offset: u64, layout: DataLayout) -> Result<(u64, Vec<u64>)> {
    let data_end = layout.end;
    let bad = |reason: &str| Error::corruption(offset, format!("index: {reason}"));
    let mut it = index.iter();
    it.seek_to_first()?;
    // Where the previous block ended (0 before the first).
    let mut prev_end = 0u64;
    let mut count = 0u64;
    let mut prev: Vec<u8> = Vec::new();
    let mut fence = Vec::new();
    while it.valid() {
        if it.key().len() < TRAILER_LEN {
            return Err(bad("separator shorter than a trailer"));
        }
        if count > 0 && compare_internal_keys(&prev, it.key()).is_ge() {
            return Err(bad("separators out of order"));
        }
        if it.restart_index() as u64 != count
            || it.block().restart_point(it.restart_index()) != Some(it.entry_offset() as u32)
        {
            return Err(bad("entry is not a restart point"));
        }
        let handle =
            BlockHandle::decode_exact(it.value()).ok_or_else(|| bad("bad block handle"))?;
        if !layout.may_follow(prev_end, handle.offset) {
            return Err(bad("data block handles do not follow each other"));
        }
        prev_end = handle
            .end_with_trailer()
            .filter(|&end| end <= data_end)
            .ok_or_else(|| bad("data block past the data region"))?;
        prev.clear();
        prev.extend_from_slice(it.key());
        fence.push(key_prefix(split_key(it.key()).0));
        count += 1;
        it.next()?;
    }
    if !layout.may_end_after(prev_end) {
        return Err(bad("data blocks do not fill the data region"));
    }
    Ok((count, fence))
}
