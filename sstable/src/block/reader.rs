//! A stored block, its restart array validated once when it is parsed.

use bytes::Bytes;

use crate::block::iter::BlockIter;
use crate::coding::read_u32_le;
use crate::error::{Error, Result};

/// Where a block's bytes came from, for error offsets: an uncompressed
/// block maps each byte to a file offset; a decompressed one can only
/// name the block's own offset.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Origin {
    pub(crate) file_offset: u64,
    pub(crate) exact: bool,
}

impl Origin {
    /// File offset to report for a problem at `pos` within the block.
    #[inline]
    pub(crate) fn at(&self, pos: usize) -> u64 {
        if self.exact {
            self.file_offset.saturating_add(pos as u64)
        } else {
            self.file_offset
        }
    }
}

/// A borrowed, validated block: what the cursor works on. `get` builds
/// these over the mapped file directly, without touching a reference count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockView<'a> {
    pub(crate) data: &'a [u8],
    /// Offset of the restart array = end of the entries.
    pub(crate) restarts_offset: usize,
    pub(crate) num_restarts: usize,
    pub(crate) origin: Origin,
}

impl<'a> BlockView<'a> {
    /// Validates the block trailer: a restart count that fits, restart
    /// offsets that start at 0, strictly increase and point into the
    /// entries (an empty block has the single restart 0).
    pub(crate) fn parse(data: &'a [u8], origin: Origin) -> Result<BlockView<'a>> {
        let len = data.len();
        let bad = |pos: usize, reason: &str| Error::corruption(origin.at(pos), reason.to_string());
        let count_pos = len
            .checked_sub(4)
            .ok_or_else(|| bad(0, "block shorter than its restart count"))?;
        let num_restarts = read_u32_le(data, count_pos).unwrap_or(0) as usize;
        if num_restarts == 0 {
            return Err(bad(count_pos, "block has no restart point"));
        }
        let restarts_offset = num_restarts
            .checked_mul(4)
            .and_then(|n| count_pos.checked_sub(n))
            .ok_or_else(|| bad(count_pos, "restart count larger than the block"))?;
        let view = BlockView {
            data,
            restarts_offset,
            num_restarts,
            origin,
        };
        let mut prev: Option<usize> = None;
        for i in 0..num_restarts {
            let r = view.restart(i);
            let ok = match prev {
                None => r == 0,
                Some(p) => r > p && r < restarts_offset,
            };
            if !ok || (r >= restarts_offset && restarts_offset != 0) {
                return Err(bad(
                    restarts_offset + 4 * i,
                    "restart offset out of order or out of bounds",
                ));
            }
            prev = Some(r);
        }
        Ok(view)
    }

    /// Offset of restart point `i`. Validated at parse time; out-of-range
    /// `i` (a caller bug) yields the end of the entries.
    #[inline]
    pub(crate) fn restart(&self, i: usize) -> usize {
        debug_assert!(i < self.num_restarts);
        read_u32_le(self.data, self.restarts_offset + 4 * i)
            .map_or(self.restarts_offset, |r| r as usize)
    }
}

/// A stored block: its (decompressed) contents and its parsed restart array.
/// Cheap to clone (the contents are a shared [`Bytes`]).
#[derive(Clone, Debug)]
pub struct Block {
    data: Bytes,
    restarts_offset: usize,
    num_restarts: usize,
    origin: Origin,
    /// Bytes of memory behind `data`: its length, or the size of the
    /// (pooled) buffer it was read into.
    buffer_bytes: usize,
}

impl Block {
    /// Parses a block whose first byte is at file offset 0 (for tools and
    /// fuzzing). Corrupt restart arrays give `Err(Corruption)`.
    pub fn new(data: Bytes) -> Result<Block> {
        Block::with_origin(data, 0, true)
    }

    /// Parses a block that was read from file offset `file_offset`;
    /// `exact` says whether positions inside it map to file offsets (true
    /// for uncompressed blocks).
    pub(crate) fn with_origin(data: Bytes, file_offset: u64, exact: bool) -> Result<Block> {
        let origin = Origin { file_offset, exact };
        let view = BlockView::parse(&data, origin)?;
        let (restarts_offset, num_restarts) = (view.restarts_offset, view.num_restarts);
        Ok(Block {
            buffer_bytes: data.len(),
            data,
            restarts_offset,
            num_restarts,
            origin,
        })
    }

    /// The same block, noted as held in a buffer of `bytes` bytes (the
    /// pooled buffer it was read into, trailer and spare room included).
    pub(crate) fn in_buffer_of(self, bytes: usize) -> Block {
        Block {
            buffer_bytes: bytes.max(self.data.len()),
            ..self
        }
    }

    /// The same block in memory of its own (when this one is a slice of
    /// a larger buffer that should not be kept alive).
    pub(crate) fn copied(&self) -> Block {
        Block {
            data: Bytes::copy_from_slice(&self.data),
            buffer_bytes: self.data.len(),
            ..*self
        }
    }

    #[inline]
    pub(crate) fn view(&self) -> BlockView<'_> {
        BlockView {
            data: &self.data,
            restarts_offset: self.restarts_offset,
            num_restarts: self.num_restarts,
            origin: self.origin,
        }
    }

    /// The block's contents, restart array included.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Bytes of memory the block holds: the buffer its contents were
    /// read into (a whole number of pages for a block read from a file)
    /// or, for contents of their own, their length.
    pub fn buffer_bytes(&self) -> usize {
        self.buffer_bytes
    }

    /// The block's contents, restart array included, taken out of it.
    pub fn into_data(self) -> Bytes {
        self.data
    }

    /// Number of restart points.
    pub fn num_restarts(&self) -> usize {
        self.num_restarts
    }

    /// Offset of restart point `i`, `None` past the end.
    pub fn restart_point(&self, i: usize) -> Option<u32> {
        if i < self.num_restarts {
            read_u32_le(&self.data, self.restarts_offset + 4 * i)
        } else {
            None
        }
    }

    /// Bytes taken by entries (where the restart array starts).
    pub fn entries_len(&self) -> usize {
        self.restarts_offset
    }

    /// An iterator over the block, unpositioned.
    pub fn iter(&self) -> BlockIter {
        BlockIter::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockBuilder;

    fn block_of(words: &[u32]) -> Bytes {
        Bytes::from(
            words
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<u8>>(),
        )
    }

    #[test]
    fn parses_built_blocks() {
        let mut b = BlockBuilder::new(1);
        b.add(b"a", b"1");
        b.add(b"b", b"2");
        let block = Block::new(Bytes::copy_from_slice(b.finish())).unwrap();
        assert_eq!(block.num_restarts(), 2);
        assert_eq!(block.restart_point(0), Some(0));
        assert_eq!(block.restart_point(2), None);
        let empty = Block::new(block_of(&[0, 1])).unwrap();
        assert_eq!(empty.entries_len(), 0);
    }

    #[test]
    fn rejects_bad_restart_arrays() {
        let cases: Vec<Bytes> = vec![
            Bytes::new(),
            Bytes::from_static(&[1, 0, 0]),
            block_of(&[0]),                                               // no restart
            block_of(&[5]),        // count larger than the block
            block_of(&[u32::MAX]), // count overflows
            block_of(&[1, 1]),     // first restart not 0
            block_of(&[0, 0, 2]),  // not increasing
            Bytes::from([&[0u8; 4][..], &block_of(&[0, 9, 2])].concat()), // past entries
        ];
        for (i, c) in cases.into_iter().enumerate() {
            assert!(
                matches!(Block::new(c), Err(Error::Corruption { .. })),
                "case {i}"
            );
        }
    }
}
