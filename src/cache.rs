//! The block cache: decompressed blocks of compressed tables, bounded in
//! bytes and sharded so readers on different cores rarely share a lock.
//! Uncompressed tables never use it: their blocks are read in place from
//! the file mapping.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use strata_sstable::BlockCache;

const SHARDS: usize = 16;

/// A sharded LRU cache of blocks keyed by (table number, block offset).
pub struct ShardedLruCache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity_bytes: usize,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<(u64, u64), (Bytes, u64)>,
    /// Recency order: tick of last use → key. The smallest tick goes first.
    order: BTreeMap<u64, (u64, u64)>,
    tick: u64,
    bytes: usize,
}

impl ShardedLruCache {
    /// A cache holding up to `capacity_bytes` of blocks.
    pub fn new(capacity_bytes: usize) -> Self {
        ShardedLruCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity_bytes: capacity_bytes / SHARDS,
        }
    }

    fn shard(&self, table_id: u64, offset: u64) -> &Mutex<Shard> {
        let h = (table_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ offset)
            .wrapping_mul(0xff51_afd7_ed55_8ccd);
        &self.shards[(h >> 60) as usize % SHARDS]
    }

    /// Bytes currently cached.
    pub fn usage_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
    }
}

impl BlockCache for ShardedLruCache {
    fn get(&self, table_id: u64, block_offset: u64) -> Option<Bytes> {
        let mut shard = self.shard(table_id, block_offset).lock();
        shard.tick += 1;
        let tick = shard.tick;
        let key = (table_id, block_offset);
        let (block, old_tick) = shard.entries.get_mut(&key).map(|(b, t)| {
            let old = *t;
            *t = tick;
            (b.clone(), old)
        })?;
        shard.order.remove(&old_tick);
        shard.order.insert(tick, key);
        Some(block)
    }

    fn insert(&self, table_id: u64, block_offset: u64, block: Bytes) {
        let size = block.len();
        if size > self.shard_capacity_bytes {
            return;
        }
        let mut shard = self.shard(table_id, block_offset).lock();
        shard.tick += 1;
        let tick = shard.tick;
        let key = (table_id, block_offset);
        if let Some((old, old_tick)) = shard.entries.insert(key, (block, tick)) {
            shard.bytes -= old.len();
            shard.order.remove(&old_tick);
        }
        shard.order.insert(tick, key);
        shard.bytes += size;
        while shard.bytes > self.shard_capacity_bytes {
            let Some((_, victim)) = shard.order.pop_first() else {
                break;
            };
            if let Some((b, _)) = shard.entries.remove(&victim) {
                shard.bytes -= b.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_capacity_and_evicts_least_recent() {
        let cache = ShardedLruCache::new(SHARDS * 1000);
        for i in 0..1000u64 {
            cache.insert(1, i, Bytes::from(vec![0u8; 100]));
            assert!(cache.usage_bytes() <= SHARDS * 1000);
        }
        // The most recent block of some shard is still there.
        assert!(cache.get(1, 999).is_some());
        assert!((0..100).filter(|&i| cache.get(1, i).is_some()).count() < 100);
    }

    #[test]
    fn get_refreshes_recency() {
        let cache = ShardedLruCache::new(SHARDS * 250);
        // Keys of one shard only.
        let keys: Vec<u64> = (0..10_000u64)
            .filter(|&o| std::ptr::eq(cache.shard(7, o), cache.shard(7, 0)))
            .take(3)
            .collect();
        cache.insert(7, keys[0], Bytes::from(vec![0u8; 100]));
        cache.insert(7, keys[1], Bytes::from(vec![0u8; 100]));
        assert!(cache.get(7, keys[0]).is_some());
        cache.insert(7, keys[2], Bytes::from(vec![0u8; 100]));
        assert!(
            cache.get(7, keys[0]).is_some(),
            "recently used block was evicted"
        );
        assert!(
            cache.get(7, keys[1]).is_none(),
            "least recently used block survived"
        );
    }
}
