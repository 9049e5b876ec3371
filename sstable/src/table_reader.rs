//! Opens a table from a [`BlockSource`] and answers point lookups. Scans
//! go through [`crate::TableIter`].
//!
//! At open the reader reads the footer, meta-index, properties, filter,
//! index and range deletions, checking each. The range deletions stay in
//! memory, decoded, for the table's life (every lookup and iterator needs
//! them; they never go to the block cache). After that a lookup needs the
//! filter, the index and one data block. Where those come from depends on
//! the source:
//!
//! - a source that holds the file in memory (a `Bytes`, a memory map):
//!   uncompressed blocks are read in place, compressed ones are
//!   decompressed through the block cache;
//! - a source read with positional reads: every data block comes from the
//!   block cache, or is read from the source, checked and put in the cache
//!   (low priority). The index and filter are held by the table, or, with
//!   [`TableReadOptions::cache_index_and_filter_blocks`], live in the cache
//!   with high priority.

use std::cell::Cell;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use bytes::Bytes;

use crate::block::cursor::Cursor;
use crate::block::reader::{BlockView, Origin};
use crate::block::Block;
use crate::block_fetch::{
    check_in_place, checked_len, decode, fetch, fetch_pooled, is_intact, open_trailer,
    read_contents, read_error, stored_in_place, stored_len,
};
use crate::bounds::TableBounds;
use crate::cache::{BlockCache, CacheKey, CachePriority, CachedBlock};
use crate::compression::{decompress_zstd, DecompressionDict, TYPE_NONE, TYPE_ZSTD};
use crate::data_layout::DataLayout;
use crate::error::{Error, Result};
use crate::exclusive::{probe_now, PageCacheGauge, ReadFrom};
use crate::filter::{BloomFilter, FILTER_LINE_BYTES};
use crate::footer::{
    Footer, FOOTER_LEN, FORMAT_VERSION_ALIGN_FITTING, FORMAT_VERSION_DICT,
    FORMAT_VERSION_RANGE_DELS,
};
use crate::handle::{BlockHandle, BLOCK_TRAILER_LEN};
use crate::index_block::IndexBlock;
use crate::iter::TableIter;
use crate::key::{
    compare_to_target, key_prefix, parse_internal_key, seek_trailer, SeqNo, ValueKind,
};
use crate::options::MAX_DATA_BLOCK_ALIGNMENT;
use crate::properties::TableProperties;
use crate::range_del::FragmentedRangeTombstones;
use crate::range_del_block;
use crate::read_buffer::ReadBuffer;
use crate::readahead::Readahead;
use crate::source::BlockSource;
use crate::table_builder::{META_COMPRESSION_DICT, META_FILTER, META_PROPERTIES, META_RANGE_DEL};

/// How a [`Table`] reads.
#[derive(Clone)]
pub struct TableReadOptions {
    /// The table's identity in the block cache (e.g. its file number).
    pub table_id: u64,
    /// The block cache shared by the tables; `None`: every block is read
    /// from the source (and decompressed) on every use.
    pub cache: Option<Arc<dyn BlockCache>>,
    /// Check block checksums (default true): the meta blocks and index at
    /// open, and data blocks for reads that pass no [`BlockReadOptions`].
    /// A block read from the source is checked on every read; a block in
    /// a source held in memory is checked the first time this `Table`
    /// reads it. The footer's own checksum is checked either way.
    pub verify_checksums: bool,
    /// Insert the data blocks read by reads that pass no
    /// [`BlockReadOptions`] into the cache (default true).
    pub fill_cache: bool,
    /// Keep the index and filter in the block cache, with high priority,
    /// instead of in the table: their memory is then bounded by the cache,
    /// at the price of a cache lookup each (and a read after an eviction).
    /// Ignored without a cache or for a source held in memory. RocksDB:
    /// `cache_index_and_filter_blocks`. Default false.
    pub cache_index_and_filter_blocks: bool,
    /// With `cache_index_and_filter_blocks`: this table keeps its index
    /// and filter for its whole life, charged to the cache but never
    /// evicted (the engine sets it for L0 tables, which every lookup
    /// probes: RocksDB's `pin_l0_filter_and_index_blocks_in_cache`).
    /// Default false.
    pub pin_index_and_filter: bool,
    /// Keeps the block cache and the operating system's page cache from
    /// holding the same data blocks (see `exclusive.rs`): while the gauge
    /// finds memory short (reads going to storage), data blocks read from
    /// the source do not enter the block cache. Tables sharing a block
    /// cache should share one gauge. Used only for a source read with
    /// positional reads and a cache. Default `None`: data blocks enter
    /// the block cache as `fill_cache` says.
    pub page_cache_gauge: Option<Arc<PageCacheGauge>>,
}

impl Default for TableReadOptions {
    fn default() -> Self {
        TableReadOptions {
            table_id: 0,
            cache: None,
            verify_checksums: true,
            fill_cache: true,
            cache_index_and_filter_blocks: false,
            pin_index_and_filter: false,
            page_cache_gauge: None,
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
            .field(
                "cache_index_and_filter_blocks",
                &self.cache_index_and_filter_blocks,
            )
            .field("pin_index_and_filter", &self.pin_index_and_filter)
            .field("page_cache_gauge", &self.page_cache_gauge.is_some())
            .finish()
    }
}

/// How one read treats the data blocks it touches (RocksDB's
/// `ReadOptions::verify_checksums`, `fill_cache` and `readahead_size`). A
/// [`Table`]'s own [`TableReadOptions`] give the defaults for reads that
/// pass none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockReadOptions {
    /// Check each data block's checksum before using it. Without it a read
    /// never fails on a checksum and may return damaged bytes (blocks in
    /// the cache were checked when they entered it).
    pub verify_checksums: bool,
    /// Insert the blocks this read reads from the source into the block
    /// cache (blocks a scan reads ahead excepted: they are served from
    /// the scan's window). A block enters the cache only once its checksum
    /// was verified, so cached blocks are always intact.
    pub fill_cache: bool,
    /// Scans: bytes read ahead per read from the source; 0 reads ahead
    /// automatically once a scan has read two blocks in a row (8 KiB,
    /// doubling up to 256 KiB). Point lookups read one block either way.
    pub readahead_bytes: usize,
}

impl Default for BlockReadOptions {
    fn default() -> Self {
        BlockReadOptions {
            verify_checksums: true,
            fill_cache: true,
            readahead_bytes: 0,
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
    /// The value: a zero-copy slice of the cached block (or of the file
    /// held in memory).
    pub value: Bytes,
}

/// How [`Table::get_versions`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionsEnd {
    /// The filter proved the key absent: no block was read.
    Filtered,
    /// The visitor asked for no more versions.
    Stopped,
    /// The table holds no (more) versions of the key at or below the
    /// sequence number asked.
    Exhausted,
    /// The data block ended while the visitor wanted more: older
    /// versions of the key may start the next block; ask again below the
    /// last one visited.
    BlockEnded,
}

/// A data block: its bytes borrowed from a file held in memory (parsed
/// by the reader), or a parsed block of its own (read from the source,
/// decompressed, or from the cache, which keeps blocks parsed).
pub(crate) enum Contents<'a> {
    InPlace { data: &'a [u8], offset: u64 },
    Parsed(Block),
}

/// The index or filter: borrowed from the table that holds it, or an
/// `Arc` from the cache, kept for one lookup.
pub(crate) enum Held<'a, T> {
    Borrowed(&'a T),
    Shared(Arc<T>),
}

impl<T> Deref for Held<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        match self {
            Held::Borrowed(t) => t,
            Held::Shared(t) => t,
        }
    }
}

/// An open table. `Send + Sync`: share it behind an `Arc`.
pub struct Table {
    source: Arc<dyn BlockSource>,
    /// The whole file, when the source holds it in memory.
    in_memory: Option<Bytes>,
    file_size: u64,
    options: TableReadOptions,
    footer: Footer,
    properties: TableProperties,
    meta_index: Vec<(Vec<u8>, BlockHandle)>,
    properties_handle: BlockHandle,
    filter_handle: Option<BlockHandle>,
    /// Held by the table, unless they live in the block cache.
    index: Option<Arc<IndexBlock>>,
    filter: Option<Arc<BloomFilter>>,
    /// The index and filter are pinned in the cache: erased on drop.
    pinned: bool,
    range_del_handle: Option<BlockHandle>,
    /// The `strata.range_del` block, decoded at open; `None` without one.
    range_tombstones: Option<Arc<FragmentedRangeTombstones>>,
    /// The `strata.compression_dict` block, prepared at open for every
    /// data block's decompression; `None` without one.
    dict: Option<DecompressionDict>,
    /// Data blocks (and their alignment padding) occupy `0..data_end`.
    data_end: u64,
    /// For a file held in memory: one bit per data block, checksum
    /// already verified by this table.
    verified: Box<[AtomicU64]>,
    /// For a file read with positional reads into a block cache: the
    /// gauge of [`TableReadOptions::page_cache_gauge`].
    page_cache_gauge: Option<Arc<PageCacheGauge>>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("file_size", &self.file_size)
            .field("in_memory", &self.in_memory.is_some())
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
    /// Opens a table held in memory (a `Bytes`, e.g. an mmap wrapped with
    /// `Bytes::from_owner`): [`Table::open_source`] over it.
    pub fn open(data: Bytes, options: TableReadOptions) -> Result<Table> {
        Table::open_source(Arc::new(data), options)
    }

    /// Opens a table read through `source`. Reads and validates the
    /// footer, meta-index, properties, filter, index and range deletions
    /// (each checksum verified once, every index handle checked to chain
    /// through the data region, every range deletion rule checked);
    /// errors name the offset.
    pub fn open_source(source: Arc<dyn BlockSource>, options: TableReadOptions) -> Result<Table> {
        let file_size = source.size();
        let in_memory = source.in_memory().cloned();
        let footer_offset = file_size.checked_sub(FOOTER_LEN as u64).ok_or_else(|| {
            Error::corruption(
                0,
                format!("file of {file_size} bytes is shorter than the footer"),
            )
        })?;
        let tail = source
            .read_at(footer_offset, FOOTER_LEN)
            .map_err(|e| read_error(e, footer_offset, "footer"))?;
        let footer = Footer::decode_tail(&tail, file_size)?;
        let verify = options.verify_checksums;
        let meta_limit = footer_offset;
        let src = &*source;

        let (contents, exact) =
            read_contents(src, footer.meta_index, meta_limit, verify, "meta-index")?;
        let meta_block = Block::with_origin(contents, footer.meta_index.offset, exact)?;
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
        let range_del_handle = find(META_RANGE_DEL);
        if range_del_handle.is_some() && footer.version < FORMAT_VERSION_RANGE_DELS {
            // A build that predates range deletions would ignore the
            // block and bring deleted keys back; no writer does this.
            return Err(Error::corruption(
                footer.meta_index.offset,
                format!(
                    "meta-index: {META_RANGE_DEL} in format version {}",
                    footer.version
                ),
            ));
        }

        let dict_handle = find(META_COMPRESSION_DICT);
        if dict_handle.is_some() && footer.version < FORMAT_VERSION_DICT {
            return Err(Error::corruption(
                footer.meta_index.offset,
                format!(
                    "meta-index: {META_COMPRESSION_DICT} in format version {}",
                    footer.version
                ),
            ));
        }
        let dict = match dict_handle {
            Some(h) => {
                let (contents, _) =
                    read_contents(src, h, meta_limit, verify, "compression dictionary")?;
                Some(DecompressionDict::new(&contents, h.offset)?)
            }
            None => None,
        };

        let (contents, exact) =
            read_contents(src, properties_handle, meta_limit, verify, "properties")?;
        let props_block = Block::with_origin(contents, properties_handle.offset, exact)?;
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
        let alignment = properties.data_block_alignment;
        let aligned = alignment.is_power_of_two() && alignment <= MAX_DATA_BLOCK_ALIGNMENT as u64;
        let alignment_ok = match footer.version {
            1 => alignment == 0,
            // Version 5 exists only for aligned tables: its padding rule
            // means nothing without an alignment.
            2 | FORMAT_VERSION_ALIGN_FITTING => aligned,
            // Versions 3 and 4 lay the data region out as 1 or as 2.
            _ => alignment == 0 || aligned,
        };
        if !alignment_ok {
            return Err(props_bad(&format!(
                "data block alignment {alignment} invalid for format version {}",
                footer.version
            )));
        }
        if filter_handle.is_some() != (properties.bloom_bits_per_key > 0) {
            return Err(props_bad(
                "bloom_bits_per_key disagrees with the filter's presence",
            ));
        }
        if range_del_handle.is_some() != (properties.num_range_deletions > 0) {
            return Err(props_bad(
                "num_range_deletions disagrees with the range-del block's presence",
            ));
        }
        let range_tombstones = match range_del_handle {
            Some(h) => {
                let (contents, exact) = read_contents(src, h, meta_limit, verify, "range-del")?;
                let block = Block::with_origin(contents, h.offset, exact)?;
                let origin = Origin {
                    file_offset: h.offset,
                    exact,
                };
                let decoded =
                    range_del_block::decode(&block, origin, properties.num_range_deletions)?;
                Some(Arc::new(decoded))
            }
            None => None,
        };

        let mut table = Table {
            source,
            in_memory,
            file_size,
            footer,
            properties,
            meta_index,
            properties_handle,
            filter_handle,
            index: None,
            filter: None,
            pinned: false,
            range_del_handle,
            range_tombstones,
            dict,
            data_end,
            verified: Box::new([]),
            page_cache_gauge: None,
            options,
        };
        let filter = table.load_filter(verify)?;
        let index = table.load_index(verify)?;
        let words = index.num_blocks().div_ceil(64);
        if table.in_memory.is_some() {
            table.verified = (0..words).map(|_| AtomicU64::new(0)).collect();
        }
        if table.in_memory.is_none() && table.options.cache.is_some() {
            table.page_cache_gauge = table.options.page_cache_gauge.clone();
        }
        let cache = table.options.cache.clone();
        match cache {
            Some(cache)
                if table.options.cache_index_and_filter_blocks && table.in_memory.is_none() =>
            {
                let pin = table.options.pin_index_and_filter;
                let put = |offset: u64, block: CachedBlock| {
                    let key = table.cache_key(offset);
                    if pin {
                        cache.insert_pinned(key, block);
                    } else {
                        cache.insert(key, block, CachePriority::High);
                    }
                };
                put(
                    table.footer.index.offset,
                    CachedBlock::Index(Arc::clone(&index)),
                );
                if let (Some(f), Some(h)) = (&filter, table.filter_handle) {
                    put(h.offset, CachedBlock::Filter(Arc::clone(f)));
                }
                if pin {
                    table.pinned = true;
                    table.index = Some(index);
                    table.filter = filter;
                }
            }
            _ => {
                table.index = Some(index);
                table.filter = filter;
            }
        }
        Ok(table)
    }

    /// Reads, checks and parses the index block.
    fn load_index(&self, verify: bool) -> Result<Arc<IndexBlock>> {
        let h = self.footer.index;
        let (contents, exact) =
            read_contents(&*self.source, h, self.meta_limit(), verify, "index")?;
        Ok(Arc::new(IndexBlock::parse(
            contents,
            h.offset,
            exact,
            self.data_layout(),
            self.properties.num_data_blocks,
        )?))
    }

    fn data_layout(&self) -> DataLayout {
        DataLayout::new(
            self.footer.version,
            self.properties.data_block_alignment,
            self.data_end,
        )
    }

    /// Reads, checks and parses the filter block, if the table has one.
    fn load_filter(&self, verify: bool) -> Result<Option<Arc<BloomFilter>>> {
        let Some(h) = self.filter_handle else {
            return Ok(None);
        };
        let (contents, _) = read_contents(&*self.source, h, self.meta_limit(), verify, "filter")?;
        let contents = if self.in_memory.is_some() {
            contents
        } else {
            align_filter_lines(&contents, h.offset)
        };
        Ok(Some(Arc::new(BloomFilter::parse(contents, h.offset)?)))
    }

    fn meta_limit(&self) -> u64 {
        self.file_size - FOOTER_LEN as u64
    }

    #[inline]
    fn cache_key(&self, offset: u64) -> CacheKey {
        CacheKey {
            table_id: self.options.table_id,
            offset,
        }
    }

    /// The index: the table's own, or the cache's (read into it on a miss).
    #[inline]
    pub(crate) fn index(&self) -> Result<Held<'_, IndexBlock>> {
        match &self.index {
            Some(index) => Ok(Held::Borrowed(index)),
            None => Ok(Held::Shared(self.cached_index()?)),
        }
    }

    /// The index as an `Arc`, for an iterator that keeps it.
    pub(crate) fn index_shared(&self) -> Result<Arc<IndexBlock>> {
        match &self.index {
            Some(index) => Ok(Arc::clone(index)),
            None => self.cached_index(),
        }
    }

    /// The index from the cache, read into it on a miss.
    fn cached_index(&self) -> Result<Arc<IndexBlock>> {
        let key = self.cache_key(self.footer.index.offset);
        let cache = self.options.cache.as_ref();
        if let Some(CachedBlock::Index(index)) = cache.and_then(|c| c.lookup(key)) {
            return Ok(index);
        }
        let index = self.load_index(true)?;
        if let Some(cache) = cache {
            cache.insert(
                key,
                CachedBlock::Index(Arc::clone(&index)),
                CachePriority::High,
            );
        }
        Ok(index)
    }

    /// The filter, if the table has one: the table's own, or the cache's.
    #[inline]
    fn filter_block(&self) -> Result<Option<Held<'_, BloomFilter>>> {
        if let Some(filter) = &self.filter {
            return Ok(Some(Held::Borrowed(filter)));
        }
        let Some(h) = self.filter_handle else {
            return Ok(None);
        };
        let key = self.cache_key(h.offset);
        let cache = self.options.cache.as_ref();
        if let Some(CachedBlock::Filter(filter)) = cache.and_then(|c| c.lookup(key)) {
            return Ok(Some(Held::Shared(filter)));
        }
        let Some(filter) = self.load_filter(true)? else {
            return Ok(None);
        };
        if let Some(cache) = cache {
            cache.insert(
                key,
                CachedBlock::Filter(Arc::clone(&filter)),
                CachePriority::High,
            );
        }
        Ok(Some(Held::Shared(filter)))
    }

    /// The table's properties.
    pub fn properties(&self) -> &TableProperties {
        &self.properties
    }

    /// The table's range tombstones, fragmented; `None` when it has none
    /// (every table before format version 3). Held in memory since open.
    pub fn range_tombstones(&self) -> Option<&Arc<FragmentedRangeTombstones>> {
        self.range_tombstones.as_ref()
    }

    /// The newest seqno `<= read_seq` of a range tombstone of this table
    /// covering `user_key`: every version of `user_key` in this table and
    /// in older sources with a smaller seqno is deleted. No I/O.
    #[inline]
    pub fn max_covering_tombstone(&self, user_key: &[u8], read_seq: SeqNo) -> Option<SeqNo> {
        self.range_tombstones
            .as_ref()?
            .max_covering_seqno(user_key, read_seq)
    }

    /// The user-key range the table covers, range tombstones included:
    /// what [`crate::BuiltTable::bounds`] said when it was written.
    pub fn bounds(&self) -> TableBounds {
        TableBounds::new(&self.properties, self.range_tombstones.as_deref())
    }

    /// Size of the table file in bytes.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The read options the table was opened with.
    pub fn read_options(&self) -> &TableReadOptions {
        &self.options
    }

    /// Whether the table reads from a source held in memory (blocks read
    /// in place) rather than with positional reads.
    pub fn is_in_memory(&self) -> bool {
        self.in_memory.is_some()
    }

    /// Bloom filter probe; true when the table has no filter (or when the
    /// filter could not be read: the lookup that follows reports why).
    #[inline]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        match self.filter_block() {
            Ok(Some(f)) => f.may_contain(user_key),
            Ok(None) | Err(_) => true,
        }
    }

    /// The newest entry for `user_key` with seqno <= `seqno` (a Delete is
    /// returned as a `Found` with kind Delete). Asks the filter first, then
    /// binary-searches the index and one data block. No allocation when
    /// the block is cached (or the file in memory): the key buffer is per
    /// thread, values are slices of the block.
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
        self.get_filtered(user_key, seqno, reads)
            .map(|(found, _)| found)
    }

    /// [`Table::get_with_options`], saying also whether the filter alone
    /// answered (`true`: absent, no block read), for statistics
    /// (RocksDB's `rocksdb.bloom.filter.useful`).
    pub fn get_filtered(
        &self,
        user_key: &[u8],
        seqno: SeqNo,
        reads: BlockReadOptions,
    ) -> Result<(Option<Found>, bool)> {
        let mut first = None;
        let end = self.walk_versions(user_key, seqno, reads, &mut |found| {
            first = Some(found);
            false
        })?;
        Ok((first, end == VersionsEnd::Filtered))
    }

    /// The entries of `user_key` at or below `seqno`, newest first, given
    /// to `visit` while it returns `true`, within the data block holding
    /// the newest: the way a read collecting merge operands walks down a
    /// key's versions without searching the table again for each. Asks
    /// the filter first. Values are as [`Table::get`]'s.
    pub fn get_versions(
        &self,
        user_key: &[u8],
        seqno: SeqNo,
        reads: BlockReadOptions,
        visit: &mut dyn FnMut(Found) -> bool,
    ) -> Result<VersionsEnd> {
        self.walk_versions(user_key, seqno, reads, &mut |found| visit(found))
    }

    #[inline]
    fn walk_versions(
        &self,
        user_key: &[u8],
        seqno: SeqNo,
        reads: BlockReadOptions,
        visit: &mut impl FnMut(Found) -> bool,
    ) -> Result<VersionsEnd> {
        if let Some(filter) = self.filter_block()? {
            if !filter.may_contain(user_key) {
                return Ok(VersionsEnd::Filtered);
            }
        }
        let buf = GET_KEY_BUFFER.with(Cell::take);
        let mut cursor = Cursor::with_key_buffer(buf);
        let result = self.get_with(&mut cursor, user_key, seqno, reads, visit);
        GET_KEY_BUFFER.with(|cell| cell.set(cursor.into_key_buffer()));
        result
    }

    /// How reads that pass no options treat data blocks: as the table
    /// was opened.
    pub fn block_read_options(&self) -> BlockReadOptions {
        BlockReadOptions {
            verify_checksums: self.options.verify_checksums,
            fill_cache: self.options.fill_cache,
            readahead_bytes: 0,
        }
    }

    fn get_with(
        &self,
        cursor: &mut Cursor,
        user_key: &[u8],
        seqno: SeqNo,
        reads: BlockReadOptions,
        visit: &mut impl FnMut(Found) -> bool,
    ) -> Result<VersionsEnd> {
        let trailer = seek_trailer(seqno);
        let cmp = |k: &[u8]| compare_to_target(k, user_key, trailer);
        let index_block = self.index()?;
        let index = index_block.block.view();
        cursor.seek_by_fenced(&index, &index_block.fence, key_prefix(user_key), cmp)?;
        if !cursor.valid() {
            return Ok(VersionsEnd::Exhausted);
        }
        let ordinal = cursor.restart_index();
        let handle = index_handle_at(&index, cursor)?;
        cursor.invalidate();
        // A cached block is searched while the cache holds it: no
        // reference count is touched unless a large value is lent.
        if let (None, Some(cache)) = (&self.in_memory, &self.options.cache) {
            let mut found = None;
            let hit = cache.lookup_with(self.cache_key(handle.offset), &mut |cached| {
                if let CachedBlock::Data(block) = cached {
                    let value = |r| lend_or_copy(block.data(), r);
                    found = Some(walk_block(
                        cursor,
                        &block.view(),
                        user_key,
                        cmp,
                        value,
                        visit,
                    ));
                }
            });
            if let (true, Some(found)) = (hit, found) {
                return found;
            }
            let block = self.read_data_block(handle, reads, None)?;
            let value = |r| lend_or_copy(block.data(), r);
            return walk_block(cursor, &block.view(), user_key, cmp, value, visit);
        }
        match self.data_block(ordinal, handle, reads, None)? {
            Contents::InPlace { data, offset } => {
                let origin = Origin {
                    file_offset: offset,
                    exact: true,
                };
                let view = BlockView::parse(data, origin)?;
                let value = |(start, end): (usize, usize)| match &self.in_memory {
                    Some(file) => {
                        let base = offset as usize;
                        file.slice(base + start..base + end)
                    }
                    None => Bytes::copy_from_slice(&data[start..end]),
                };
                walk_block(cursor, &view, user_key, cmp, value, visit)
            }
            Contents::Parsed(block) => {
                let value = |r| lend_or_copy(block.data(), r);
                walk_block(cursor, &block.view(), user_key, cmp, value, visit)
            }
        }
    }

    /// Data block number `ordinal` at `handle`, as `reads` says: in place
    /// from a file held in memory (checked on first use), otherwise from
    /// the cache or read from the source (through a scan's `readahead` if
    /// given), checked, parsed and put in the cache.
    pub(crate) fn data_block(
        &self,
        ordinal: usize,
        handle: BlockHandle,
        reads: BlockReadOptions,
        readahead: Option<&mut Readahead>,
    ) -> Result<Contents<'_>> {
        match &self.in_memory {
            Some(file) => self.data_block_in_place(file, ordinal, handle, reads),
            None => self.data_block_read(handle, reads, readahead),
        }
    }

    fn data_block_read(
        &self,
        handle: BlockHandle,
        reads: BlockReadOptions,
        readahead: Option<&mut Readahead>,
    ) -> Result<Contents<'_>> {
        let key = self.cache_key(handle.offset);
        let cache = self.options.cache.as_ref();
        if let Some(CachedBlock::Data(block)) = cache.and_then(|c| c.lookup(key)) {
            return Ok(Contents::Parsed(block));
        }
        self.read_data_block(handle, reads, readahead)
            .map(Contents::Parsed)
    }

    /// Reads the data block at `handle` from the source (through a scan's
    /// `readahead` if given), checks and parses it, and
    /// puts it in the cache as `reads` says (unless the page cache gauge
    /// finds memory short, see [`crate::exclusive`]).
    fn read_data_block(
        &self,
        handle: BlockHandle,
        reads: BlockReadOptions,
        readahead: Option<&mut Readahead>,
    ) -> Result<Block> {
        let key = self.cache_key(handle.offset);
        let cache = self.options.cache.as_ref();
        let len = stored_len(handle, self.data_end, "data")?;
        let gauge = self.page_cache_gauge.as_ref().filter(|_| {
            reads.fill_cache
                && !readahead
                    .as_ref()
                    .is_some_and(|ra| ra.would_window(handle.offset, len))
        });
        // The read, whether it came through a scan's window, and the
        // bytes of memory it takes.
        let (raw, windowed, buffer_bytes) = match (gauge, readahead) {
            (Some(gauge), _) if probe_now() => {
                let (raw, buffer_bytes, from) = self.fetch_noting_page_cache(handle, len)?;
                gauge.count(from);
                (raw, false, buffer_bytes)
            }
            (Some(_), _) | (None, None) => {
                let (raw, buffer_bytes) =
                    fetch_pooled(&*self.source, handle, self.data_end, "data")?;
                (raw, false, buffer_bytes)
            }
            (None, Some(ra)) => {
                let (raw, windowed) = ra.fetch(&*self.source, handle, self.data_end, "data")?;
                let buffer_bytes = raw.len();
                (raw, windowed, buffer_bytes)
            }
        };
        let (stored, block_type) = open_trailer(&raw, handle, reads.verify_checksums, "data")?;
        let (data, exact) = decode(stored, block_type, handle, "data", self.dict.as_ref())?;
        let block = Block::with_origin(data, handle.offset, exact)?;
        let block = if exact {
            block.in_buffer_of(buffer_bytes)
        } else {
            block
        };
        // A block a scan read ahead is served from its window and not
        // cached: a scan long enough to read ahead would only churn the
        // cache (copying, allocating and evicting a block per block read)
        // and push out what point reads use; its windows make re-reading
        // cheap. Only intact blocks enter the cache (a cache hit is never
        // checked again): a read that skipped the check checks before it
        // fills, and fills nothing if the check fails.
        // While memory is short, blocks stay out of the block cache so
        // that the page cache does not hold copies of them.
        let short = gauge.is_some_and(|g| g.is_short());
        let fill = cache.filter(|_| {
            reads.fill_cache
                && !windowed
                && !short
                && (reads.verify_checksums || is_intact(&raw, handle))
        });
        if let Some(cache) = fill {
            // An uncompressed block shares its allocation with its
            // trailer. When the trailer takes that allocation past a 4 KiB
            // multiple (an unaligned 4 KiB block: the allocator's next
            // size class, 25% larger with jemalloc and mimalloc), the cache
            // keeps a copy of the block's own size, so its charge is the
            // memory it holds. An aligned block and its trailer fit one
            // 4 KiB unit: it is cached as read, with no copy.
            let cached = if exact && trailer_crosses_a_page(raw.len()) {
                block.copied()
            } else {
                block
            };
            cache.insert(key, CachedBlock::Data(cached.clone()), CachePriority::Low);
            return Ok(cached);
        }
        Ok(block)
    }

    /// The `len` bytes of the data block at `handle` (trailer included),
    /// the size of the buffer they were read into, and whether the page
    /// cache held them: read first without waiting
    /// for storage, then, if that found them missing, as usual.
    fn fetch_noting_page_cache(
        &self,
        handle: BlockHandle,
        len: usize,
    ) -> Result<(Bytes, usize, ReadFrom)> {
        let mut buf = ReadBuffer::for_len(len);
        let cached = self
            .source
            .read_into_if_cached(handle.offset, len, buf.vec_mut())
            .map_err(|e| read_error(e, handle.offset, "data"))?;
        if cached {
            let buffer_bytes = buf.capacity();
            let raw = checked_len(buf.into_bytes(), len, handle, "data")?;
            return Ok((raw, buffer_bytes, ReadFrom::PageCache));
        }
        drop(buf);
        let (raw, buffer_bytes) = fetch_pooled(&*self.source, handle, self.data_end, "data")?;
        Ok((raw, buffer_bytes, ReadFrom::Storage))
    }

    fn data_block_in_place<'a>(
        &'a self,
        file: &'a Bytes,
        ordinal: usize,
        handle: BlockHandle,
        reads: BlockReadOptions,
    ) -> Result<Contents<'a>> {
        let (contents, block_type) = stored_in_place(file, handle, self.data_end, "data")?;
        let checked = reads.verify_checksums && !self.is_verified(ordinal);
        match block_type {
            TYPE_NONE => {
                if checked {
                    check_in_place(file, handle, "data")?;
                    self.mark_verified(ordinal);
                }
                Ok(Contents::InPlace {
                    data: contents,
                    offset: handle.offset,
                })
            }
            TYPE_ZSTD => {
                let key = self.cache_key(handle.offset);
                let cache = self.options.cache.as_ref();
                if let Some(CachedBlock::Data(hit)) = cache.and_then(|c| c.lookup(key)) {
                    return Ok(Contents::Parsed(hit));
                }
                if checked {
                    check_in_place(file, handle, "data")?;
                    self.mark_verified(ordinal);
                }
                let raw = Bytes::from(decompress_zstd(
                    contents,
                    handle.offset,
                    self.dict.as_ref(),
                )?);
                let block = Block::with_origin(raw, handle.offset, false)?;
                // Only intact blocks enter the cache (a cache hit is never
                // checked again): a read that skipped the check checks
                // before it fills, and fills nothing if the check fails.
                if let (Some(cache), true) = (cache, reads.fill_cache) {
                    let intact =
                        self.is_verified(ordinal) || check_in_place(file, handle, "data").is_ok();
                    if intact {
                        self.mark_verified(ordinal);
                        cache.insert(key, CachedBlock::Data(block.clone()), CachePriority::Low);
                    }
                }
                Ok(Contents::Parsed(block))
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
        readahead: Option<&mut Readahead>,
    ) -> Result<Block> {
        match self.data_block(ordinal, handle, reads, readahead)? {
            Contents::InPlace { data, offset } => {
                let start = offset as usize;
                let bytes = match &self.in_memory {
                    Some(file) => file.slice(start..start + data.len()),
                    None => Bytes::copy_from_slice(data),
                };
                Block::with_origin(bytes, offset, true)
            }
            Contents::Parsed(block) => Ok(block),
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

    /// An iterator over the whole table, unpositioned.
    pub fn iter(self: &Arc<Self>) -> TableIter {
        self.iter_with_options(self.block_read_options())
    }

    /// [`Table::iter`] reading data blocks as `reads` says.
    pub fn iter_with_options(self: &Arc<Self>, reads: BlockReadOptions) -> TableIter {
        TableIter::new(Arc::clone(self), reads)
    }

    /// Checks every block's checksum (data blocks in file order, then
    /// filter, index, range deletions, properties, meta-index) and the
    /// footer. `Ok` or the
    /// first bad block. Reads the file sequentially, bypassing the cache.
    pub fn verify(&self) -> Result<()> {
        let footer_offset = self.meta_limit();
        let tail = self
            .source
            .read_at(footer_offset, FOOTER_LEN)
            .map_err(|e| read_error(e, footer_offset, "footer"))?;
        Footer::decode_tail(&tail, self.file_size)?;
        let index = self.index()?;
        let alignment = self.properties.data_block_alignment;
        let mut readahead = Readahead::new(VERIFY_READAHEAD_BYTES, alignment);
        let mut it = index.block.iter();
        it.seek_to_first()?;
        // Where the previous data block ended: the gap from there to the
        // next block (or to the end of the data region after the last) is
        // padding.
        let mut prev_end = None;
        while it.valid() {
            let handle = BlockHandle::decode_exact(it.value()).ok_or_else(|| {
                Error::corruption(self.footer.index.offset, "index: bad block handle")
            })?;
            if let Some(end) = prev_end {
                self.verify_padding(&mut readahead, end, handle.offset, false)?;
            }
            readahead.note(handle);
            let (raw, _) = readahead.fetch(&*self.source, handle, self.data_end, "data")?;
            open_trailer(&raw, handle, true, "data")?;
            prev_end = handle.end_with_trailer();
            it.next()?;
        }
        if let Some(end) = prev_end {
            self.verify_padding(&mut readahead, end, self.data_end, true)?;
        }
        let mut meta = vec![(self.footer.index, "index")];
        if let Some(h) = self.filter_handle {
            meta.insert(0, (h, "filter"));
        }
        if let Some(h) = self.range_del_handle {
            meta.push((h, "range-del"));
        }
        meta.push((self.properties_handle, "properties"));
        meta.push((self.footer.meta_index, "meta-index"));
        for (h, what) in meta {
            let raw = fetch(&*self.source, h, footer_offset, what)?;
            open_trailer(&raw, h, true, what)?;
        }
        Ok(())
    }

    /// Checks the bytes from a data block's end at `end` to `next`, the
    /// next block's offset (`last`: the end of the data region): padding,
    /// which no checksum covers, so it must be zeros, and as the table's
    /// layout allows it (fewer than the alignment, ending on a multiple;
    /// none where the version pads nowhere or not after the last block).
    fn verify_padding(
        &self,
        readahead: &mut Readahead,
        end: u64,
        next: u64,
        last: bool,
    ) -> Result<()> {
        let layout = self.data_layout();
        let allowed = if last {
            layout.may_end_after(end)
        } else {
            layout.may_follow(end, next)
        };
        if !allowed {
            return Err(Error::corruption(
                end,
                format!(
                    "data region: offset {next} cannot follow a data block ending here \
                     (format version {}, alignment {})",
                    self.footer.version, self.properties.data_block_alignment
                ),
            ));
        }
        if next == end {
            return Ok(());
        }
        let (pad, _) = readahead.read(
            &*self.source,
            end,
            (next - end) as usize,
            self.data_end,
            "padding after data",
        )?;
        match pad.iter().position(|&b| b != 0) {
            Some(i) => Err(Error::corruption(
                end + i as u64,
                "padding after a data block is not zero",
            )),
            None => Ok(()),
        }
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
        self.index()?.entries(self.footer.index.offset)
    }

    /// The bloom filter, if the table has one (its parameters: lines, probes).
    pub fn filter(&self) -> Result<Option<Arc<BloomFilter>>> {
        Ok(match self.filter_block()? {
            Some(Held::Borrowed(f)) => Some(Arc::new(f.clone())),
            Some(Held::Shared(f)) => Some(f),
            None => None,
        })
    }

    /// The decompressed contents of any block, checksum verified (when the
    /// table verifies checksums). For tools such as sst-dump; parse block
    /// format ones with [`Block::new`].
    pub fn read_block(&self, handle: BlockHandle) -> Result<Bytes> {
        let raw = fetch(&*self.source, handle, self.meta_limit(), "requested")?;
        let (stored, block_type) =
            open_trailer(&raw, handle, self.options.verify_checksums, "requested")?;
        // Data blocks are compressed against the dictionary, if any.
        let dict = self.dict.as_ref().filter(|_| handle.offset < self.data_end);
        Ok(decode(stored, block_type, handle, "requested", dict)?.0)
    }

    /// The size in bytes of the zstd dictionary the data blocks are
    /// compressed against (`strata.compression_dict`); `None` without one.
    pub fn compression_dict_len(&self) -> Option<usize> {
        self.dict.as_ref().map(DecompressionDict::len)
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        if !self.pinned {
            return;
        }
        if let Some(cache) = &self.options.cache {
            cache.erase(self.cache_key(self.footer.index.offset));
            if let Some(h) = self.filter_handle {
                cache.erase(self.cache_key(h.offset));
            }
        }
    }
}

/// Readahead of [`Table::verify`], which reads every data block in order.
const VERIFY_READAHEAD_BYTES: usize = 2 << 20;

/// Values up to this size found in a cached block are returned as copies,
/// larger ones as slices of the block: a copy of a short value costs less
/// than bumping the block's shared reference count, a cache miss away.
pub const MAX_COPIED_VALUE_BYTES: usize = 256;

/// The value at `range` of a block's contents: a copy if short, a
/// zero-copy slice otherwise.
#[inline]
fn lend_or_copy(data: &Bytes, (start, end): (usize, usize)) -> Bytes {
    if end - start <= MAX_COPIED_VALUE_BYTES {
        Bytes::copy_from_slice(&data[start..end])
    } else {
        data.slice(start..end)
    }
}

/// The entries of `user_key` at or below the seek target in one data
/// block, newest first, given to `visit` while it asks for more, each
/// value made by `value` from its range in the block.
#[inline]
fn walk_block(
    cursor: &mut Cursor,
    view: &BlockView<'_>,
    user_key: &[u8],
    cmp: impl Fn(&[u8]) -> std::cmp::Ordering,
    value: impl Fn((usize, usize)) -> Bytes,
    visit: &mut impl FnMut(Found) -> bool,
) -> Result<VersionsEnd> {
    cursor.seek_by(view, cmp)?;
    if !cursor.valid() {
        return Ok(VersionsEnd::Exhausted);
    }
    loop {
        let parsed =
            parse_internal_key(cursor.key()).ok_or_else(|| bad_key(view, cursor.entry_offset()))?;
        if parsed.user_key != user_key {
            return Ok(VersionsEnd::Exhausted);
        }
        let found = Found {
            seqno: parsed.seqno,
            kind: parsed.kind,
            value: value(cursor.value_range()),
        };
        if !visit(found) {
            return Ok(VersionsEnd::Stopped);
        }
        cursor.next(view)?;
        if !cursor.valid() {
            return Ok(VersionsEnd::BlockEnded);
        }
    }
}

/// The handle in the current index entry.
pub(crate) fn index_handle_at(index: &BlockView<'_>, cursor: &Cursor) -> Result<BlockHandle> {
    let (start, end) = cursor.value_range();
    index
        .data
        .get(start..end)
        .and_then(BlockHandle::decode_exact)
        .ok_or_else(|| Error::corruption(index.origin.at(start), "index: bad block handle"))
}

/// A copy of filter contents (read from file offset `offset`) whose lines
/// start on a 64-byte boundary in memory, as they do in the file, so each
/// probe touches one CPU cache line.
fn align_filter_lines(contents: &[u8], offset: u64) -> Bytes {
    let line = FILTER_LINE_BYTES;
    let pad = (line - (offset % line as u64) as usize) % line;
    let mut buf = vec![0u8; contents.len() + line];
    let skew = (buf.as_ptr() as usize + pad) % line;
    let start = (line - skew) % line;
    buf[start..start + contents.len()].copy_from_slice(contents);
    Bytes::from(buf).slice(start..start + contents.len())
}

fn bad_key(view: &BlockView<'_>, pos: usize) -> Error {
    Error::corruption(
        view.origin.at(pos),
        "data block: malformed internal key or unknown kind",
    )
}

/// Whether a block read with its trailer (`raw_len` bytes) needs more
/// 4 KiB pages than its contents alone (allocations of a few KiB come in
/// page-sized classes).
fn trailer_crosses_a_page(raw_len: usize) -> bool {
    const PAGE: usize = 4096;
    let contents = raw_len.saturating_sub(BLOCK_TRAILER_LEN);
    raw_len.div_ceil(PAGE) != contents.div_ceil(PAGE)
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

    #[test]
    fn only_a_trailer_that_spills_into_another_page_is_worth_a_copy() {
        // An unaligned 4 KiB block: its trailer takes the read to a
        // second page.
        assert!(trailer_crosses_a_page(4096 + BLOCK_TRAILER_LEN));
        assert!(trailer_crosses_a_page(4093 + BLOCK_TRAILER_LEN));
        // An aligned block: contents and trailer fit one page.
        assert!(!trailer_crosses_a_page(4096));
        assert!(!trailer_crosses_a_page(3000));
        // A large block whose trailer stays in its last page.
        assert!(!trailer_crosses_a_page(9000));
    }
}
