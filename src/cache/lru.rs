//! One shard of the block cache: an LRU list with a high-priority pool,
//! RocksDB's `LRUCacheShard`.
//!
//! ```text
//!   high pool (≤ high_pri_pool_ratio of capacity)     low pool
//!   [MRU ............................. LRU] -> [MRU ............ LRU] -> evict
//!    ^ index and filter blocks, and blocks     ^ data blocks on insert,
//!      hit at least once since they entered      and what the high pool
//!                                                overflows
//! ```
//!
//! A block enters the low pool; a lookup that hits it moves it to the head
//! of the high pool, as does inserting an index or filter block. When the
//! high pool outgrows its share, its least recently used entries move to
//! the head of the low pool. Eviction takes the least recently used entry
//! of the low pool, of the high pool only when the low one is empty. So a
//! scan, which touches each block once, can only churn the low pool, and
//! blocks hit twice, index and filter blocks first, survive it. Pinned
//! entries are charged but in no list: never evicted until erased.
//!
//! Entries live in a slab (`nodes`) linked by index, so moving one to a
//! list head is a few stores, with no allocation.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use strata_sstable::{CacheKey, CachePriority, CachedBlock};

/// Bytes charged per entry on top of its contents: the slab node, the
/// hash table slot and the block's shared header (RocksDB likewise
/// charges its handle's metadata).
pub const ENTRY_OVERHEAD_BYTES: usize = 96;

/// Sentinel nodes heading the two circular lists.
const HIGH: u32 = 0;
const LOW: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    High,
    Low,
    Pinned,
    /// A free slab slot, or a sentinel.
    None,
}

struct Node {
    key: CacheKey,
    block: Option<CachedBlock>,
    charge: usize,
    pool: Pool,
    prev: u32,
    next: u32,
}

/// An LRU shard holding up to `capacity` bytes (pinned entries may push
/// it past that).
pub struct LruShard {
    capacity: usize,
    high_pri_capacity: usize,
    /// Charge of every entry, pinned ones included.
    usage: usize,
    high_pri_usage: usize,
    pinned_usage: usize,
    map: HashMap<CacheKey, u32, BuildHasherDefault<KeyHasher>>,
    nodes: Vec<Node>,
    free: Vec<u32>,
}

impl LruShard {
    /// An empty shard of `capacity` bytes whose high-priority pool takes
    /// at most `high_pri_pool_ratio` of it.
    pub fn new(capacity: usize, high_pri_pool_ratio: f64) -> LruShard {
        let sentinel = |i: u32| Node {
            key: CacheKey {
                table_id: u64::MAX,
                offset: u64::MAX,
            },
            block: None,
            charge: 0,
            pool: Pool::None,
            prev: i,
            next: i,
        };
        LruShard {
            capacity,
            high_pri_capacity: (capacity as f64 * high_pri_pool_ratio) as usize,
            usage: 0,
            high_pri_usage: 0,
            pinned_usage: 0,
            map: HashMap::default(),
            nodes: vec![sentinel(HIGH), sentinel(LOW)],
            free: Vec::new(),
        }
    }

    /// The entry for `key`, moved to the head of the high pool.
    pub fn lookup(&mut self, key: &CacheKey) -> Option<CachedBlock> {
        let i = *self.map.get(key)?;
        if matches!(self.nodes[i as usize].pool, Pool::High | Pool::Low) {
            self.unlink(i);
            self.push_high(i);
            self.shrink_high_pool();
        }
        self.nodes[i as usize].block.clone()
    }

    /// Caches `block` with `priority`, replacing any entry for `key`, then
    /// evicts least recently used entries down to the capacity. A block
    /// larger than the whole shard is not cached (it would evict all).
    pub fn insert(&mut self, key: CacheKey, block: CachedBlock, priority: CachePriority) {
        let charge = block.charge() + ENTRY_OVERHEAD_BYTES;
        if charge > self.capacity {
            self.erase(&key);
            return;
        }
        let i = self.put(key, block, charge);
        match priority {
            CachePriority::High => {
                self.push_high(i);
                self.shrink_high_pool();
            }
            CachePriority::Low => self.push_low(i),
        }
        self.evict_to_capacity();
    }

    /// Caches `block` pinned: charged, never evicted, until erased.
    pub fn insert_pinned(&mut self, key: CacheKey, block: CachedBlock) {
        let charge = block.charge() + ENTRY_OVERHEAD_BYTES;
        let i = self.put(key, block, charge);
        self.nodes[i as usize].pool = Pool::Pinned;
        self.pinned_usage += charge;
        self.evict_to_capacity();
    }

    /// Removes the entry for `key`, if any.
    pub fn erase(&mut self, key: &CacheKey) {
        if let Some(i) = self.map.remove(key) {
            self.release(i);
        }
    }

    /// Bytes charged, pinned entries included.
    pub fn usage(&self) -> usize {
        self.usage
    }

    /// Bytes charged by pinned entries.
    pub fn pinned_usage(&self) -> usize {
        self.pinned_usage
    }

    /// Number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// A new node for `key` (replacing an old entry), in no list yet.
    fn put(&mut self, key: CacheKey, block: CachedBlock, charge: usize) -> u32 {
        self.erase(&key);
        let node = Node {
            key,
            block: Some(block),
            charge,
            pool: Pool::None,
            prev: 0,
            next: 0,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.map.insert(key, i);
        self.usage += charge;
        i
    }

    /// Unlinks node `i` from its list (or the pinned set), drops its
    /// block and frees its slot. The map entry must be gone already.
    fn release(&mut self, i: u32) {
        let pool = self.nodes[i as usize].pool;
        let charge = self.nodes[i as usize].charge;
        match pool {
            Pool::High | Pool::Low => self.unlink(i),
            Pool::Pinned => self.pinned_usage -= charge,
            Pool::None => {}
        }
        let node = &mut self.nodes[i as usize];
        node.block = None;
        node.pool = Pool::None;
        self.usage -= charge;
        self.free.push(i);
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, pool, charge) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next, n.pool, n.charge)
        };
        self.nodes[prev as usize].next = next;
        self.nodes[next as usize].prev = prev;
        if pool == Pool::High {
            self.high_pri_usage -= charge;
        }
        self.nodes[i as usize].pool = Pool::None;
    }

    /// Links node `i` right after the sentinel `head` (its MRU end).
    fn link_after(&mut self, head: u32, i: u32, pool: Pool) {
        let first = self.nodes[head as usize].next;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = head;
            n.next = first;
            n.pool = pool;
        }
        self.nodes[head as usize].next = i;
        self.nodes[first as usize].prev = i;
    }

    fn push_high(&mut self, i: u32) {
        self.high_pri_usage += self.nodes[i as usize].charge;
        self.link_after(HIGH, i, Pool::High);
    }

    fn push_low(&mut self, i: u32) {
        self.link_after(LOW, i, Pool::Low);
    }

    /// Moves the high pool's least recently used entries to the head of
    /// the low pool while the high pool is over its share.
    fn shrink_high_pool(&mut self) {
        while self.high_pri_usage > self.high_pri_capacity {
            let oldest = self.nodes[HIGH as usize].prev;
            if oldest == HIGH {
                break;
            }
            self.unlink(oldest);
            self.push_low(oldest);
        }
    }

    /// Evicts least recently used entries, low pool first, until the
    /// usage fits the capacity (or only pinned entries are left).
    fn evict_to_capacity(&mut self) {
        while self.usage > self.capacity {
            let low_oldest = self.nodes[LOW as usize].prev;
            let victim = if low_oldest != LOW {
                low_oldest
            } else {
                let high_oldest = self.nodes[HIGH as usize].prev;
                if high_oldest == HIGH {
                    break;
                }
                high_oldest
            };
            let key = self.nodes[victim as usize].key;
            self.map.remove(&key);
            self.release(victim);
        }
    }

    /// Keys in eviction order (next victim first), for tests.
    #[cfg(test)]
    pub fn eviction_order(&self) -> Vec<CacheKey> {
        let mut out = Vec::new();
        for head in [LOW, HIGH] {
            let mut i = self.nodes[head as usize].prev;
            while i != head {
                out.push(self.nodes[i as usize].key);
                i = self.nodes[i as usize].prev;
            }
        }
        out
    }
}

/// Hashes a [`CacheKey`] (two `u64` writes) with one multiply-rotate per
/// word: the keys are file numbers and offsets, not attacker-chosen, and a
/// lookup is on every read's path.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key(offset: u64) -> CacheKey {
        CacheKey {
            table_id: 1,
            offset,
        }
    }

    /// A data block whose charge is `bytes` in all.
    fn block(bytes: usize) -> CachedBlock {
        CachedBlock::Data(Bytes::from(vec![0u8; bytes - ENTRY_OVERHEAD_BYTES]))
    }

    const ENTRY: usize = 1000;

    #[test]
    fn usage_is_charged_by_bytes_and_stays_within_capacity() {
        let mut shard = LruShard::new(10 * ENTRY, 0.5);
        for i in 0..100 {
            shard.insert(key(i), block(ENTRY), CachePriority::Low);
            assert!(shard.usage() <= 10 * ENTRY);
        }
        assert_eq!(shard.usage(), 10 * ENTRY);
        assert_eq!(shard.len(), 10);
        // The ten most recent survive, the oldest goes first.
        assert!((90..100).all(|i| shard.lookup(&key(i)).is_some()));
        assert!(shard.lookup(&key(89)).is_none());
        // Replacing an entry charges the new size only.
        shard.insert(key(95), block(2 * ENTRY), CachePriority::Low);
        assert!(shard.usage() <= 10 * ENTRY);
        assert_eq!(
            shard.lookup(&key(95)).unwrap().charge(),
            2 * ENTRY - ENTRY_OVERHEAD_BYTES
        );
        shard.erase(&key(95));
        assert!(shard.lookup(&key(95)).is_none());
        assert_eq!(shard.usage(), shard.len() * ENTRY);
    }

    #[test]
    fn a_block_larger_than_the_shard_is_not_cached() {
        let mut shard = LruShard::new(10 * ENTRY, 0.5);
        shard.insert(key(1), block(ENTRY), CachePriority::Low);
        shard.insert(key(2), block(11 * ENTRY), CachePriority::High);
        assert!(shard.lookup(&key(2)).is_none());
        assert!(
            shard.lookup(&key(1)).is_some(),
            "the big block evicted others"
        );
    }

    #[test]
    fn high_priority_entries_outlive_a_scan_of_low_priority_ones() {
        let mut shard = LruShard::new(10 * ENTRY, 0.5);
        shard.insert(key(0), block(ENTRY), CachePriority::High);
        shard.insert(key(1), block(ENTRY), CachePriority::High);
        for i in 100..200 {
            shard.insert(key(i), block(ENTRY), CachePriority::Low);
        }
        assert!(shard.lookup(&key(0)).is_some());
        assert!(shard.lookup(&key(1)).is_some());
        assert_eq!(shard.usage(), 10 * ENTRY);
    }

    #[test]
    fn a_hit_promotes_a_data_block_past_a_scan() {
        let mut shard = LruShard::new(10 * ENTRY, 0.5);
        shard.insert(key(7), block(ENTRY), CachePriority::Low);
        assert!(shard.lookup(&key(7)).is_some());
        for i in 100..200 {
            shard.insert(key(i), block(ENTRY), CachePriority::Low);
        }
        assert!(
            shard.lookup(&key(7)).is_some(),
            "a block hit once was evicted by a scan"
        );
        // Never hit: gone.
        assert!(shard.lookup(&key(150)).is_none());
    }

    #[test]
    fn the_high_pool_overflows_into_the_low_pool_oldest_first() {
        let mut shard = LruShard::new(10 * ENTRY, 0.3);
        for i in 0..5 {
            shard.insert(key(i), block(ENTRY), CachePriority::High);
        }
        // At most 3 fit the high pool: 0 and 1 were demoted, 0 first, so
        // they are the next victims, oldest first, before any high one.
        assert_eq!(
            shard.eviction_order(),
            vec![key(0), key(1), key(2), key(3), key(4)]
        );
        shard.insert(key(10), block(ENTRY), CachePriority::Low);
        // A new low entry is the most recent of the low pool: evicted
        // after the demoted ones.
        assert_eq!(
            shard.eviction_order(),
            vec![key(0), key(1), key(10), key(2), key(3), key(4)]
        );
        for i in 20..26 {
            shard.insert(key(i), block(ENTRY), CachePriority::Low);
        }
        // Full: the oldest low entries went first; the high pool is whole.
        assert!(shard.lookup(&key(0)).is_none());
        assert!(shard.lookup(&key(1)).is_none());
        assert!((2..5).all(|i| shard.lookup(&key(i)).is_some()));
    }

    #[test]
    fn with_only_high_entries_the_oldest_high_one_is_evicted() {
        let mut shard = LruShard::new(3 * ENTRY, 1.0);
        for i in 0..4 {
            shard.insert(key(i), block(ENTRY), CachePriority::High);
        }
        assert!(shard.lookup(&key(0)).is_none());
        assert!((1..4).all(|i| shard.lookup(&key(i)).is_some()));
    }

    #[test]
    fn pinned_entries_are_charged_never_evicted_and_released_by_erase() {
        let mut shard = LruShard::new(4 * ENTRY, 0.5);
        shard.insert_pinned(key(1), block(ENTRY));
        shard.insert_pinned(key(2), block(ENTRY));
        assert_eq!(
            (shard.usage(), shard.pinned_usage()),
            (2 * ENTRY, 2 * ENTRY)
        );
        for i in 10..30 {
            shard.insert(key(i), block(ENTRY), CachePriority::High);
        }
        // Only two unpinned entries fit beside them.
        assert_eq!(shard.len(), 4);
        assert!(shard.lookup(&key(1)).is_some() && shard.lookup(&key(2)).is_some());
        // Pinned past the capacity: everything else goes, they stay.
        shard.insert_pinned(key(3), block(3 * ENTRY));
        assert_eq!(shard.len(), 3);
        assert_eq!(shard.usage(), 5 * ENTRY);
        shard.erase(&key(3));
        shard.erase(&key(1));
        assert_eq!((shard.usage(), shard.pinned_usage()), (ENTRY, ENTRY));
        // Slots are reused: the slab does not grow with churn.
        let slots = shard.nodes.len();
        for i in 100..1000 {
            shard.insert(key(i), block(ENTRY), CachePriority::Low);
        }
        assert!(shard.nodes.len() <= slots + 3);
    }
}
