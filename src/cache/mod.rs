//! The block cache: data blocks read from tables (and, with
//! `cache_index_and_filter_blocks`, their index and filter blocks),
//! bounded in bytes, with priorities, sharded so readers on different
//! cores rarely share a lock. RocksDB's `LRUCache`: the shards are
//! [`clock::ClockShard`]s, each with a high-priority pool of
//! [`HIGH_PRI_POOL_RATIO`] of its capacity. Unlike RocksDB's, a full
//! shard takes a data block in only on its second miss within about a
//! shard's worth of misses ([`admission`]), so blocks read once do not
//! churn it.

mod admission;
mod clock;

use crate::statistics::{Statistics, Ticker};
use parking_lot::Mutex;
use std::sync::Arc;
use strata_sstable::{BlockCache, CacheKey, CachePriority, CachedBlock};

#[cfg(test)]
use clock::ENTRY_OVERHEAD_BYTES;

/// The share of each shard reserved for high-priority entries (index and
/// filter blocks, and blocks hit at least once): RocksDB's
/// `high_pri_pool_ratio` default.
pub const HIGH_PRI_POOL_RATIO: f64 = 0.5;

/// The smallest shard RocksDB makes (`GetDefaultCacheShardBits`): fewer
/// shards for a small cache, so one block is a small part of a shard.
const MIN_SHARD_BYTES: usize = 512 << 10;
/// At most 2^6 shards, as RocksDB.
const MAX_SHARD_BITS: u32 = 6;

/// Sizes the shards' doorkeepers (`admission.rs`): the default block size.
const TYPICAL_BLOCK_BYTES: usize = 4096;

/// A sharded LRU cache of blocks keyed by (table, block offset).
pub struct ShardedLruCache {
    shards: Box<[Mutex<clock::ClockShard>]>,
    shard_bits: u32,
    /// Where hits and misses are counted (`Options::statistics`).
    statistics: Option<Arc<Statistics>>,
}

impl ShardedLruCache {
    /// A cache holding up to `capacity_bytes` of blocks.
    pub fn new(capacity_bytes: usize) -> Self {
        let mut shard_bits = 0;
        while shard_bits < MAX_SHARD_BITS && (capacity_bytes >> (shard_bits + 1)) >= MIN_SHARD_BYTES
        {
            shard_bits += 1;
        }
        let shards = 1usize << shard_bits;
        let per_shard = capacity_bytes.div_ceil(shards);
        ShardedLruCache {
            shards: (0..shards)
                .map(|_| {
                    let shard = clock::ClockShard::new(per_shard, HIGH_PRI_POOL_RATIO);
                    Mutex::new(shard.with_admission(TYPICAL_BLOCK_BYTES))
                })
                .collect(),
            shard_bits,
            statistics: None,
        }
    }

    /// Count lookups' hits and misses in `statistics`.
    pub fn with_statistics(mut self, statistics: Option<Arc<Statistics>>) -> Self {
        self.statistics = statistics;
        self
    }

    #[inline]
    fn count(&self, hit: bool) {
        if let Some(s) = &self.statistics {
            let ticker = if hit {
                Ticker::BlockCacheHit
            } else {
                Ticker::BlockCacheMiss
            };
            s.add(ticker, 1);
        }
    }

    #[inline]
    fn shard(&self, key: &CacheKey) -> &Mutex<clock::ClockShard> {
        let h = (key.table_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.offset)
            .wrapping_mul(0xff51_afd7_ed55_8ccd);
        let i = if self.shard_bits == 0 {
            0
        } else {
            (h >> (64 - self.shard_bits)) as usize
        };
        &self.shards[i]
    }

    /// Bytes currently charged (pinned entries included).
    pub fn usage_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().usage()).sum()
    }

    /// Bytes charged by pinned entries.
    pub fn pinned_usage_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().pinned_usage()).sum()
    }

    /// Number of cached entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

impl BlockCache for ShardedLruCache {
    #[inline]
    fn lookup(&self, key: CacheKey) -> Option<CachedBlock> {
        let found = self.shard(&key).lock().lookup(&key);
        self.count(found.is_some());
        found
    }

    #[inline]
    fn lookup_with(&self, key: CacheKey, f: &mut dyn FnMut(&CachedBlock)) -> bool {
        let hit = self.shard(&key).lock().lookup_with(&key, f);
        self.count(hit);
        hit
    }

    fn insert(&self, key: CacheKey, block: CachedBlock, priority: CachePriority) {
        self.shard(&key).lock().insert(key, block, priority);
    }

    fn insert_pinned(&self, key: CacheKey, block: CachedBlock) {
        self.shard(&key).lock().insert_pinned(key, block);
    }

    fn erase(&self, key: CacheKey) {
        self.shard(&key).lock().erase(&key);
    }
}

/// A valid data block of `bytes` bytes (one restart, no entries parsed),
/// for tests.
#[cfg(test)]
pub(crate) fn test_block(bytes: usize) -> CachedBlock {
    let mut data = vec![0u8; bytes.max(8)];
    let n = data.len();
    data[n - 4] = 1; // one restart point, at offset 0
    let block = strata_sstable::block::Block::new(bytes::Bytes::from(data));
    CachedBlock::Data(block.unwrap_or_else(|e| panic!("test block: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(bytes: usize) -> CachedBlock {
        super::test_block(bytes)
    }

    #[test]
    fn shards_follow_rocksdbs_sizes() {
        assert_eq!(ShardedLruCache::new(0).shards.len(), 1);
        assert_eq!(ShardedLruCache::new(1 << 20).shards.len(), 2);
        assert_eq!(ShardedLruCache::new(8 << 20).shards.len(), 16);
        assert_eq!(ShardedLruCache::new(32 << 20).shards.len(), 64);
        assert_eq!(ShardedLruCache::new(1 << 30).shards.len(), 64);
    }

    #[test]
    fn stays_within_capacity_and_keeps_the_most_recent() {
        let cache = ShardedLruCache::new(4 << 20);
        let n = 10_000u64;
        for i in 0..n {
            let key = CacheKey {
                table_id: i % 7,
                offset: i * 4096,
            };
            // Missed twice: once full, a shard takes a block in on its
            // second miss.
            cache.insert(key, data(4000), CachePriority::Low);
            cache.insert(key, data(4000), CachePriority::Low);
            assert!(cache.usage_bytes() <= 4 << 20);
        }
        // About capacity / (4000 + overhead) entries, spread over shards.
        let per_entry = 4000 + ENTRY_OVERHEAD_BYTES;
        assert!(
            cache.len() * per_entry > (4 << 20) * 9 / 10,
            "{}",
            cache.len()
        );
        assert_eq!(cache.usage_bytes(), cache.len() * per_entry);
        let cached = |i| {
            let key = CacheKey {
                table_id: i % 7,
                offset: i * 4096,
            };
            cache.lookup(key).is_some()
        };
        assert_eq!((n - 50..n).filter(|&i| cached(i)).count(), 50);
        assert_eq!(
            (0..50).filter(|&i| cached(i)).count(),
            0,
            "the oldest were evicted"
        );
    }

    #[test]
    fn index_and_filter_blocks_survive_a_scan_of_data_blocks() {
        let cache = ShardedLruCache::new(2 << 20);
        let meta = |t: u64| CacheKey {
            table_id: t,
            offset: 1 << 40,
        };
        for t in 0..20 {
            cache.insert(meta(t), data(8000), CachePriority::High);
        }
        for i in 0..100_000u64 {
            let key = CacheKey {
                table_id: 100 + i % 3,
                offset: i,
            };
            cache.insert(key, data(4000), CachePriority::Low);
        }
        assert!((0..20).all(|t| cache.lookup(meta(t)).is_some()));
        assert!(cache.usage_bytes() <= 2 << 20);
    }

    #[test]
    fn pinned_entries_count_in_the_usage_until_erased() {
        let cache = ShardedLruCache::new(1 << 20);
        let key = CacheKey {
            table_id: 9,
            offset: 0,
        };
        cache.insert_pinned(key, data(10_000));
        assert_eq!(cache.pinned_usage_bytes(), 10_000 + ENTRY_OVERHEAD_BYTES);
        for i in 1..10_000u64 {
            let k = CacheKey {
                table_id: 9,
                offset: i,
            };
            cache.insert(k, data(1000), CachePriority::Low);
        }
        assert!(cache.lookup(key).is_some());
        cache.erase(key);
        assert_eq!(cache.pinned_usage_bytes(), 0);
        assert!(cache.lookup(key).is_none());
    }
}
