//! Opens a table from its bytes (normally an mmap) and answers point
//! lookups. Scans go through [`crate::TableIter`].

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use bytes::Bytes;

use crate::block::cursor::Cursor;
use crate::block::reader::{BlockView, Origin};
use crate::block::Block;
use crate::checksum::block_checksum;
use crate::coding::read_u32_le;
use crate::compression::{decompress_zstd, TYPE_NONE, TYPE_ZSTD};
use crate::error::{Error, Result};
use crate::filter::BloomFilter;
use crate::footer::{Footer, FOOTER_LEN};
use crate::handle::BlockHandle;
use crate::iter::TableIter;
use crate::key::{
    compare_internal_keys, compare_to_target, key_prefix, parse_internal_key, seek_trailer,
    split_key, SeqNo, ValueKind, TRAILER_LEN,
};
use crate::properties::TableProperties;
use crate::table_builder::{META_FILTER, META_PROPERTIES};

/// Cache of *decompressed* blocks, implemented by the engine (sharded,
/// bounded). Uncompressed blocks never go through it: they are slices of
/// the mapped file already.
pub trait BlockCache: Send + Sync {
    /// The cached contents of the block at `block_offset` in table `table_id`.
    fn get(&self, table_id: u64, block_offset: u64) -> Option<Bytes>;
    /// Caches a block's decompressed (and checksum-verified) contents.
    fn insert(&self, table_id: u64, block_offset: u64, block: Bytes);
}

/// How a [`Table`] reads.
#[derive(Clone)]
pub struct TableReadOptions {
    /// The table's identity in the block cache (e.g. its file number).
    pub table_id: u64,
    /// Where decompressed blocks are cached; `None`: decompress on every read.
    pub cache: Option<Arc<dyn BlockCache>>,
    /// Check block checksums (default true): the meta blocks and index at
    /// open, and data blocks for reads that pass no [`BlockReadOptions`].
    /// Each block is checked the first time this `Table` reads it, not on
    /// every read. The footer's own checksum is checked either way.
    pub verify_checksums: bool,
    /// Insert blocks decompressed by reads that pass no
    /// [`BlockReadOptions`] into the cache (default true).
    pub fill_cache: bool,
}

impl Default for TableReadOptions {
    fn default() -> Self {
        TableReadOptions {
            table_id: 0,
            cache: None,
            verify_checksums: true,
            fill_cache: true,
        }
    }
}

impl fmt::Debug for TableReadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableReadOptions")
            .field("table_id", &self.table_id)
            .field("cache", &self.cache.is_some())
            .field("verify_checksums", &self.verify_checksums)
            .field("fill_cache", &self.fill_cache)
            .finish()
    }
}

/// How one read treats the data blocks it touches (RocksDB's
/// `ReadOptions::verify_checksums` and `fill_cache`). A [`Table`]'s own
/// [`TableReadOptions`] give the defaults for reads that pass none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockReadOptions {
    /// Check each data block's checksum before using it (once per open
    /// table: a block found intact is remembered). Without it a read
    /// neither checks nor remembers, so it never fails on a checksum and
    /// may return damaged bytes.
    pub verify_checksums: bool,
    /// Insert the blocks this read decompresses into the block cache. A
    /// block enters the cache only once its checksum was verified, by
    /// this read or an earlier one, so cached blocks are always intact.
    pub fill_cache: bool,
}

impl Default for BlockReadOptions {
    fn default() -> Self {
        BlockReadOptions {
            verify_checksums: true,
            fill_cache: true,
        }
    }
}

/// The newest entry for a user key at or below a sequence number.
#[derive(Clone, Debug)]
pub struct Found {
    /// Its sequence number.
    pub seqno: SeqNo,
    /// Put or Delete (a Delete's value is whatever was stored, usually empty).
    pub kind: ValueKind,
    /// The value; a zero-copy slice of the table for uncompressed blocks.
    pub value: Bytes,
}

/// Contents of a data block: borrowed from the mapped file or owned after
/// decompression.
pub(crate) enum Contents<'a> {
    Mapped { data: &'a [u8], offset: u64 },
    Owned { data: Bytes, offset: u64 },
}

/// An open table. `Send + Sync`: share it behind an `Arc`.
pub struct Table {
    data: Bytes,
    options: TableReadOptions,
    footer: Footer,
    properties: TableProperties,
    meta_index: Vec<(Vec<u8>, BlockHandle)>,
    properties_handle: BlockHandle,
    filter_handle: Option<BlockHandle>,
    filter: Option<BloomFilter>,
    index: Block,
    /// The user-key prefix of each index entry (every one a restart
    /// point), for `Cursor::seek_by_fenced`: 8 bytes per data block.
    index_fence: Box<[u64]>,
    /// Data blocks occupy `0..data_end`.
    data_end: u64,
    /// One bit per data block: checksum already verified by this table.
    verified: Box<[AtomicU64]>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("file_size", &self.data.len())
            .field("options", &self.options)
            .field("footer", &self.footer)
            .field("properties", &self.properties)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// `get`'s key buffer, reused so that lookups do not allocate.
    static GET_KEY_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

impl Table {
    /// Opens a table over its bytes (the engine passes an mmap wrapped with
    /// `Bytes::from_owner`). Validates the footer, meta-index, properties,
    /// filter and index (each checksum verified once, every index handle
    /// checked to chain through the data region); errors name the offset.
    pub fn open(data: Bytes, options: TableReadOptions) -> Result<Table> {
        let footer = Footer::decode(&data)?;
        let verify = options.verify_checksums;
        let meta_limit = (data.len() - FOOTER_LEN) as u64;

        let meta_block = read_block(&data, footer.meta_index, meta_limit, verify, "meta-index")?;
        let mut meta_index = Vec::new();
        let mut it = meta_block.iter();
        it.seek_to_first()?;
        while it.valid() {
            let handle = BlockHandle::decode_exact(it.value()).ok_or_else(|| {
                Error::corruption(footer.meta_index.offset, "meta-index: bad block handle")
            })?;
            meta_index.push((it.key().to_vec(), handle));
            it.next()?;
        }
        let find = |name: &str| {
            meta_index
                .iter()
                .find(|(n, _)| n.as_slice() == name.as_bytes())
                .map(|(_, h)| *h)
        };
        let properties_handle = find(META_PROPERTIES).ok_or_else(|| {
            Error::corruption(footer.meta_index.offset, "meta-index: no properties block")
        })?;
        let filter_handle = find(META_FILTER);

        let props_block = read_block(&data, properties_handle, meta_limit, verify, "properties")?;
        let properties = TableProperties::decode(&props_block, properties_handle.offset)?;
        let props_bad = |reason: &str| {
            Error::corruption(properties_handle.offset, format!("properties: {reason}"))
        };
        if properties.format_version != footer.version {
            return Err(props_bad("format version differs from the footer's"));
        }
        let data_end = properties.data_bytes;
        if data_end > meta_limit {
            return Err(props_bad("data region runs past the footer"));
        }

        let filter = match filter_handle {
            Some(h) => {
                let (contents, _) = read_contents(&data, h, meta_limit, verify, "filter")?;
                Some(BloomFilter::parse(contents, h.offset)?)
            }
            None => None,
        };
        if filter.is_some() != (properties.bloom_bits_per_key > 0) {
            return Err(props_bad(
                "bloom_bits_per_key disagrees with the filter's presence",
            ));
        }

        let index = read_block(&data, footer.index, meta_limit, verify, "index")?;
        let (num_blocks, index_fence) = check_index(&index, footer.index.offset, data_end)?;
        if num_blocks != properties.num_data_blocks {
            return Err(Error::corruption(
                footer.index.offset,
                format!(
                    "index has {num_blocks} entries, properties say {}",
                    properties.num_data_blocks
                ),
            ));
        }
        let words = (num_blocks as usize).div_ceil(64);
        let verified = (0..words).map(|_| AtomicU64::new(0)).collect();
        Ok(Table {
            data,
            options,
            footer,
            properties,
            meta_index,
            properties_handle,
            filter_handle,
            filter,
            index,
            index_fence,
            data_end,
            verified,
        })
    }

    /// The table's properties.
    pub fn properties(&self) -> &TableProperties {
        &self.properties
    }

    /// Size of the table file in bytes.
    pub fn file_size(&self) -> u64 {
        self.data.len() as u64
    }

    /// The read options the table was opened with.
    pub fn read_options(&self) -> &TableReadOptions {
        &self.options
    }

    /// Bloom filter probe; true when the table has no filter.
    #[inline]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_contain(user_key))
    }

    /// The newest entry for `user_key` with seqno <= `seqno` (a Delete is
    /// returned as a `Found` with kind Delete). Asks the filter first, then
    /// binary-searches the index and one data block. No allocation: the
    /// key buffer is per thread, uncompressed values are slices of the file.
    pub fn get(&self, user_key: &[u8], seqno: SeqNo) -> Result<Option<Found>> {
        self.get_with_options(user_key, seqno, self.block_read_options())
    }

    /// [`Table::get`] reading data blocks as `reads` says.
    pub fn get_with_options(
        &self,
        user_key: &[u8],
        seqno: SeqNo,
        reads: BlockReadOptions,
    ) -> Result<Option<Found>> {
        if !self.may_contain(user_key) {
            return Ok(None);
        }
        let buf = GET_KEY_BUFFER.with(Cell::take);
        let mut cursor = Cursor::with_key_buffer(buf);
        let result = self.get_with(&mut cursor, user_key, seqno, reads);
        GET_KEY_BUFFER.with(|cell| cell.set(cursor.into_key_buffer()));
        result
    }

    /// How reads that pass no options treat data blocks: as the table
    /// was opened.
    pub fn block_read_options(&self) -> BlockReadOptions {
        BlockReadOptions {
            verify_checksums: self.options.verify_checksums,
            fill_cache: self.options.fill_cache,
        }
    }

    fn get_with(
        &self,
        cursor: &mut Cursor,
        user_key: &[u8],
        seqno: SeqNo,
        reads: BlockReadOptions,
    ) -> Result<Option<Found>> {
        let trailer = seek_trailer(seqno);
        let cmp = |k: &[u8]| compare_to_target(k, user_key, trailer);
        let index = self.index.view();
        cursor.seek_by_fenced(&index, &self.index_fence, key_prefix(user_key), cmp)?;
        if !cursor.valid() {
            return Ok(None);
        }
        let ordinal = cursor.restart_index();
        let handle = self.index_handle_at(&index, cursor)?;
        cursor.invalidate();
        let contents = self.data_block(ordinal, handle, reads)?;
        let (block, offset, exact) = match &contents {
            Contents::Mapped { data, offset } => (*data, *offset, true),
            Contents::Owned { data, offset } => (&data[..], *offset, false),
        };
        let view = BlockView::parse(
            block,
            Origin {
                file_offset: offset,
                exact,
            },
        )?;
        cursor.seek_by(&view, cmp)?;
        if !cursor.valid() {
            return Ok(None);
        }
        let parsed = parse_internal_key(cursor.key())
            .ok_or_else(|| bad_key(&view, cursor.entry_offset()))?;
        if parsed.user_key != user_key {
            return Ok(None);
        }
        let (start, end) = cursor.value_range();
        let value = match contents {
            Contents::Mapped { offset, .. } => {
                let base = offset as usize;
                self.data.slice(base + start..base + end)
            }
            Contents::Owned { data, .. } => data.slice(start..end),
        };
        Ok(Some(Found {
            seqno: parsed.seqno,
            kind: parsed.kind,
            value,
        }))
    }

    /// The handle in the current index entry.
    pub(crate) fn index_handle_at(
        &self,
        index: &BlockView<'_>,
        cursor: &Cursor,
    ) -> Result<BlockHandle> {
        let (start, end) = cursor.value_range();
        index
            .data
            .get(start..end)
            .and_then(BlockHandle::decode_exact)
            .ok_or_else(|| Error::corruption(index.origin.at(start), "index: bad block handle"))
    }

    /// Contents of data block number `ordinal` at `handle`: verified on
    /// first use (if `reads` asks), decompressed through the cache when
    /// compressed.
    pub(crate) fn data_block(
        &self,
        ordinal: usize,
        handle: BlockHandle,
        reads: BlockReadOptions,
    ) -> Result<Contents<'_>> {
        let (contents, block_type) = stored_block(&self.data, handle, self.data_end, "data")?;
        let checked = reads.verify_checksums && !self.is_verified(ordinal);
        match block_type {
            TYPE_NONE => {
                if checked {
                    check_block(&self.data, handle, "data")?;
                    self.mark_verified(ordinal);
                }
                Ok(Contents::Mapped {
                    data: contents,
                    offset: handle.offset,
                })
            }
            TYPE_ZSTD => {
                let cache = self.options.cache.as_ref();
                if let Some(hit) = cache.and_then(|c| c.get(self.options.table_id, handle.offset)) {
                    return Ok(Contents::Owned {
                        data: hit,
                        offset: handle.offset,
                    });
                }
                if checked {
                    check_block(&self.data, handle, "data")?;
                    self.mark_verified(ordinal);
                }
                let raw = Bytes::from(decompress_zstd(contents, handle.offset)?);
                // Only intact blocks enter the cache (a cache hit is never
                // checked again): a read that skipped the check checks
                // before it fills, and fills nothing if the check fails.
                if let (Some(cache), true) = (cache, reads.fill_cache) {
                    let intact = self.is_verified(ordinal)
                        || check_block(&self.data, handle, "data").is_ok();
                    if intact {
                        self.mark_verified(ordinal);
                        cache.insert(self.options.table_id, handle.offset, raw.clone());
                    }
                }
                Ok(Contents::Owned {
                    data: raw,
                    offset: handle.offset,
                })
            }
            other => Err(Error::corruption(
                handle.offset,
                format!("data block: unknown compression type {other}"),
            )),
        }
    }

    /// A data block as an owned [`Block`] (for iterators).
    pub(crate) fn data_block_owned(
        &self,
        ordinal: usize,
        handle: BlockHandle,
        reads: BlockReadOptions,
    ) -> Result<Block> {
        match self.data_block(ordinal, handle, reads)? {
            Contents::Mapped { data, offset } => {
                let start = offset as usize;
                let bytes = self.data.slice(start..start + data.len());
                Block::with_origin(bytes, offset, true)
            }
            Contents::Owned { data, offset } => Block::with_origin(data, offset, false),
        }
    }

    fn is_verified(&self, ordinal: usize) -> bool {
        self.verified
            .get(ordinal / 64)
            .is_some_and(|w| w.load(AtomicOrdering::Relaxed) & (1 << (ordinal % 64)) != 0)
    }

    fn mark_verified(&self, ordinal: usize) {
        // Relaxed: the bit only saves repeating an idempotent check.
        if let Some(w) = self.verified.get(ordinal / 64) {
            w.fetch_or(1 << (ordinal % 64), AtomicOrdering::Relaxed);
        }
    }

    pub(crate) fn index_fence(&self) -> &[u64] {
        &self.index_fence
    }

    pub(crate) fn index_block(&self) -> &Block {
        &self.index
    }

    /// An iterator over the whole table, unpositioned.
    pub fn iter(self: &Arc<Self>) -> TableIter {
        self.iter_with_options(self.block_read_options())
    }

    /// [`Table::iter`] reading data blocks as `reads` says.
    pub fn iter_with_options(self: &Arc<Self>, reads: BlockReadOptions) -> TableIter {
        TableIter::new(Arc::clone(self), reads)
    }

    /// Checks every block's checksum (data blocks in file order, then
    /// filter, index, properties, meta-index) and the footer. `Ok` or the
    /// first bad block.
    pub fn verify(&self) -> Result<()> {
        Footer::decode(&self.data)?;
        let limit = (self.data.len() - FOOTER_LEN) as u64;
        let mut it = self.index.iter();
        it.seek_to_first()?;
        while it.valid() {
            let handle = BlockHandle::decode_exact(it.value()).ok_or_else(|| {
                Error::corruption(self.footer.index.offset, "index: bad block handle")
            })?;
            check_block(&self.data, handle, "data")?;
            it.next()?;
        }
        let mut meta = vec![
            (self.footer.index, "index"),
            (self.properties_handle, "properties"),
            (self.footer.meta_index, "meta-index"),
        ];
        if let Some(h) = self.filter_handle {
            meta.insert(0, (h, "filter"));
        }
        for (h, what) in meta {
            stored_block(&self.data, h, limit, what)?;
            check_block(&self.data, h, what)?;
        }
        Ok(())
    }

    /// The footer (handles, version, checksum, magic).
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// The meta-index entries, names as stored (unknown names included).
    pub fn meta_index_entries(&self) -> &[(Vec<u8>, BlockHandle)] {
        &self.meta_index
    }

    /// The index entries: separator key and data block handle.
    pub fn index_entries(&self) -> Result<Vec<(Vec<u8>, BlockHandle)>> {
        let mut out = Vec::new();
        let mut it = self.index.iter();
        it.seek_to_first()?;
        while it.valid() {
            let handle = BlockHandle::decode_exact(it.value()).ok_or_else(|| {
                Error::corruption(self.footer.index.offset, "index: bad block handle")
            })?;
            out.push((it.key().to_vec(), handle));
            it.next()?;
        }
        Ok(out)
    }

    /// The bloom filter, if the table has one (its parameters: lines, probes).
    pub fn filter(&self) -> Option<&BloomFilter> {
        self.filter.as_ref()
    }

    /// The decompressed contents of any block, checksum verified (when the
    /// table verifies checksums). For tools such as sst-dump; parse block
    /// format ones with [`Block::new`].
    pub fn read_block(&self, handle: BlockHandle) -> Result<Bytes> {
        let limit = (self.data.len() - FOOTER_LEN) as u64;
        Ok(read_contents(
            &self.data,
            handle,
            limit,
            self.options.verify_checksums,
            "requested",
        )?
        .0)
    }
}

fn bad_key(view: &BlockView<'_>, pos: usize) -> Error {
    Error::corruption(
        view.origin.at(pos),
        "data block: malformed internal key or unknown kind",
    )
}

/// The stored contents and type byte of the block at `handle`, which must
/// end (trailer included) at or before `limit`.
fn stored_block<'a>(
    data: &'a [u8],
    handle: BlockHandle,
    limit: u64,
    what: &str,
) -> Result<(&'a [u8], u8)> {
    let bad = || {
        Error::corruption(
            handle.offset,
            format!("{what} block handle outside its region"),
        )
    };
    match handle.end_with_trailer() {
        Some(end) if end <= limit => {}
        _ => return Err(bad()),
    }
    let start = handle.offset as usize;
    let end = start + handle.size as usize;
    let contents = data.get(start..end).ok_or_else(bad)?;
    let block_type = *data.get(end).ok_or_else(bad)?;
    Ok((contents, block_type))
}

/// Verifies the checksum in the trailer of the block at `handle`.
fn check_block(data: &[u8], handle: BlockHandle, what: &str) -> Result<()> {
    let start = handle.offset as usize;
    let end = start.saturating_add(handle.size as usize);
    let contents = data.get(start..end);
    let block_type = data.get(end).copied();
    let stored = read_u32_le(data, end.saturating_add(1));
    match (contents, block_type, stored) {
        (Some(c), Some(t), Some(crc)) if block_checksum(&[c], t) == crc => Ok(()),
        _ => Err(Error::corruption(
            handle.offset,
            format!("{what} block checksum mismatch"),
        )),
    }
}

/// Reads a block's contents: bounds, checksum, decompression. Returns the
/// contents and whether they map byte for byte to the file (uncompressed).
fn read_contents(
    data: &Bytes,
    handle: BlockHandle,
    limit: u64,
    verify: bool,
    what: &str,
) -> Result<(Bytes, bool)> {
    let (contents, block_type) = stored_block(data, handle, limit, what)?;
    if verify {
        check_block(data, handle, what)?;
    }
    match block_type {
        TYPE_NONE => {
            let start = handle.offset as usize;
            Ok((data.slice(start..start + contents.len()), true))
        }
        TYPE_ZSTD => Ok((
            Bytes::from(decompress_zstd(contents, handle.offset)?),
            false,
        )),
        other => Err(Error::corruption(
            handle.offset,
            format!("{what} block: unknown compression type {other}"),
        )),
    }
}

/// Reads a block in block format (meta-index, properties, index).
fn read_block(
    data: &Bytes,
    handle: BlockHandle,
    limit: u64,
    verify: bool,
    what: &str,
) -> Result<Block> {
    let (contents, exact) = read_contents(data, handle, limit, verify, what)?;
    Block::with_origin(contents, handle.offset, exact)
}

/// Walks the index once: keys are internal keys in strictly increasing
/// order, every entry is a restart point, and the handles tile
/// `0..data_end` exactly. Returns the number of data blocks and the
/// index's fence (each entry's user-key prefix).
fn check_index(index: &Block, offset: u64, data_end: u64) -> Result<(u64, Box<[u64]>)> {
    let bad = |reason: &str| Error::corruption(offset, format!("index: {reason}"));
    let mut it = index.iter();
    it.seek_to_first()?;
    let mut expected_offset = 0u64;
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
        if handle.offset != expected_offset {
            return Err(bad("data block handles do not follow each other"));
        }
        expected_offset = handle
            .end_with_trailer()
            .filter(|&end| end <= data_end)
            .ok_or_else(|| bad("data block past the data region"))?;
        prev.clear();
        prev.extend_from_slice(it.key());
        fence.push(key_prefix(split_key(it.key()).0));
        count += 1;
        it.next()?;
    }
    if expected_offset != data_end {
        return Err(bad("data blocks do not fill the data region"));
    }
    Ok((count, fence.into_boxed_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    fn assert_send<T: Send>() {}

    #[test]
    fn table_is_send_and_sync_iterators_are_send() {
        assert_send_sync::<Table>();
        assert_send::<TableIter>();
        assert_send_sync::<TableReadOptions>();
    }
}
