//! What a table reader asks of a block cache. The engine implements it
//! (sharded, bounded in bytes, with priorities); the reader decides what
//! goes in and with which priority.

use std::sync::Arc;

use crate::block::Block;
use crate::filter::BloomFilter;
use crate::index_block::IndexBlock;

/// Which block of which table: the table's identity
/// ([`TableReadOptions::table_id`](crate::TableReadOptions::table_id)) and
/// the block's offset in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The table's identity in the cache (the engine uses the file number).
    pub table_id: u64,
    /// Offset of the block in the table file.
    pub offset: u64,
}

/// How long an entry deserves to stay (RocksDB's `Cache::Priority`): the
/// cache evicts low-priority entries first, and keeps high-priority ones
/// in a pool of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachePriority {
    /// Index and filter blocks: one of each serves every lookup in the
    /// table (RocksDB's `cache_index_and_filter_blocks_with_high_priority`).
    High,
    /// Data blocks.
    Low,
}

/// A cached block, checksum-verified and ready to use.
#[derive(Clone, Debug)]
pub enum CachedBlock {
    /// A data block, decompressed, its restart array already checked.
    Data(Block),
    /// A table's parsed index.
    Index(Arc<IndexBlock>),
    /// A table's parsed bloom filter.
    Filter(Arc<BloomFilter>),
}

impl CachedBlock {
    /// Bytes of memory the entry holds (what the cache charges for it,
    /// before the cache's own per-entry overhead).
    pub fn charge(&self) -> usize {
        match self {
            CachedBlock::Data(b) => b.buffer_bytes(),
            CachedBlock::Index(i) => i.charge(),
            CachedBlock::Filter(f) => f.charge(),
        }
    }
}

/// A cache of blocks shared by the tables of a database.
pub trait BlockCache: Send + Sync {
    /// The entry for `key`, if cached (and marks it recently used).
    fn lookup(&self, key: CacheKey) -> Option<CachedBlock>;

    /// Runs `f` on the entry for `key`, if cached (and marks it recently
    /// used), while the cache holds it: a reader can search a block
    /// without taking a reference to it. Returns whether it was cached.
    /// The default goes through [`lookup`](Self::lookup).
    fn lookup_with(&self, key: CacheKey, f: &mut dyn FnMut(&CachedBlock)) -> bool {
        match self.lookup(key) {
            Some(block) => {
                f(&block);
                true
            }
            None => false,
        }
    }

    /// Caches `block` under `key`, evicting as the capacity requires.
    fn insert(&self, key: CacheKey, block: CachedBlock, priority: CachePriority);

    /// Caches `block` under `key` pinned: charged to the capacity but
    /// never evicted, until [`erase`](Self::erase) (a table that holds its
    /// own index and filter and charges them to the cache, RocksDB's
    /// `pin_l0_filter_and_index_blocks_in_cache`).
    fn insert_pinned(&self, key: CacheKey, block: CachedBlock);

    /// Removes the entry for `key`, pinned or not.
    fn erase(&self, key: CacheKey);
}
