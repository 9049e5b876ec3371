//! strata-sstable: strata's sorted string table format.
//!
//! A table is an immutable sorted file of internal keys (user key,
//! sequence number, kind) and values: prefix-compressed data blocks, a
//! whole-table bloom filter over user keys, an index of block separators,
//! a properties block, a meta-index and a fixed footer. A table may also
//! hold range tombstones ([`RangeTombstone`]), stored fragmented in a
//! `strata.range_del` block (format version 3) and kept decoded in memory
//! by the open [`Table`]. The byte layout is documented in
//! `docs/sstable-format.md` and drawn at the top of each encoder file.
//!
//! ```
//! use std::sync::Arc;
//! use strata_sstable::{
//!     LargestBound, Table, TableBuilder, TableOptions, TableReadOptions, ValueKind,
//! };
//!
//! let mut builder = TableBuilder::new(Vec::new(), TableOptions::default())?;
//! builder.add(b"apple", 2, ValueKind::Put, b"red")?;
//! builder.add(b"apple", 1, ValueKind::Put, b"green")?;
//! builder.add(b"pear", 3, ValueKind::Delete, b"")?;
//! // Deletes every version older than seqno 4 of every key in [b, p).
//! builder.add_range_tombstone(b"b", Some(b"p"), 4)?;
//! let built = builder.finish()?;
//! // The last key, "pear", is past the tombstone's end: it bounds the table.
//! assert_eq!(built.bounds.largest_bound, LargestBound::Included);
//!
//! let table = Arc::new(Table::open(built.writer.into(), TableReadOptions::default())?);
//! let found = table.get(b"apple", 1)?.expect("an apple at seqno 1");
//! assert_eq!(&found.value[..], b"green");
//! assert_eq!(table.get(b"pear", 9)?.map(|f| f.kind), Some(ValueKind::Delete));
//! assert_eq!(table.max_covering_tombstone(b"banana", 9), Some(4));
//! assert_eq!(table.max_covering_tombstone(b"banana", 3), None);
//!
//! let mut it = table.iter();
//! it.seek_to_first()?;
//! let mut n = 0;
//! while it.valid() {
//!     n += 1;
//!     it.next()?;
//! }
//! assert_eq!(n, 3);
//! # Ok::<(), strata_sstable::Error>(())
//! ```

#![warn(missing_docs)]

pub mod blob;
pub mod block;
mod block_fetch;
mod bounds;
mod cache;
mod checksum;
mod coding;
mod compression;
mod data_layout;
mod error;
mod exclusive;
mod fence;
mod filter;
mod footer;
mod handle;
mod index;
mod index_block;
mod iter;
mod key;
mod options;
mod properties;
mod range_del;
mod range_del_block;
mod read_buffer;
mod readahead;
mod source;
mod table_builder;
mod table_reader;

pub use bounds::{LargestBound, TableBounds};
/// The `bytes` crate this API speaks (`Table::open` takes `bytes::Bytes`).
pub use bytes;
pub use cache::{BlockCache, CacheKey, CachePriority, CachedBlock};
pub use checksum::{mask as mask_crc, unmask as unmask_crc};
pub use compression::{
    MAX_DECOMPRESSED_LEN, TYPE_NONE as COMPRESSION_TYPE_NONE, TYPE_ZSTD as COMPRESSION_TYPE_ZSTD,
};
pub use error::{Error, Result};
pub use exclusive::PageCacheGauge;
pub use filter::{
    filter_hash, num_probes_for, BloomFilter, FILTER_KIND_FAST_LOCAL_BLOOM, FILTER_LINE_BYTES,
    FILTER_META_LEN,
};
pub use footer::{
    Footer, FOOTER_LEN, FORMAT_VERSION, FORMAT_VERSION_ALIGNED, FORMAT_VERSION_ALIGN_FITTING,
    FORMAT_VERSION_DICT, FORMAT_VERSION_RANGE_DELS, MAGIC_BYTES, MIN_FORMAT_VERSION, TABLE_MAGIC,
};
pub use handle::{BlockHandle, BLOCK_TRAILER_LEN};
pub use index_block::IndexBlock;
pub use iter::TableIter;
pub use key::{
    compare_internal_keys, compare_user_keys, encode_internal_key, encode_seek_key, pack_trailer,
    parse_internal_key, seek_trailer, ParsedKey, SeqNo, ValueKind, MAX_SEQNO, SEEK_KIND,
    TRAILER_LEN,
};
pub use options::{
    Compression, CompressionOptions, TableOptions, MAX_BLOCK_SIZE, MAX_BLOOM_BITS_PER_KEY,
    MAX_DATA_BLOCK_ALIGNMENT, MAX_DICT_BYTES, MAX_RESTART_INTERVAL, MAX_TRAIN_BYTES,
    MIN_BLOCK_SIZE,
};
pub use properties::{names as property_names, TableProperties};
pub use range_del::{
    key_prefix, Covering, FragmentedRangeTombstones, RangeEnd, RangeTombstone, TombstoneStack,
};
pub use readahead::MAX_AUTO_READAHEAD_BYTES;
pub use source::BlockSource;
pub use table_builder::{
    BuiltTable, TableBuilder, MAX_USER_KEY_LEN, MAX_VALUE_LEN, META_COMPRESSION_DICT, META_FILTER,
    META_PROPERTIES, META_RANGE_DEL,
};
pub use table_reader::{
    BlockReadOptions, Found, Table, TableReadOptions, VersionsEnd, MAX_COPIED_VALUE_BYTES,
};
