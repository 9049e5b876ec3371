//! One shard of the block cache: RocksDB's `LRUCache` policy (a
//! high-priority pool, eviction from the low-priority end) kept with the
//! CLOCK algorithm's second chance instead of a list relinked on every
//! hit, as RocksDB's `HyperClockCache` does.
//!
//! ```text
//!   high queue (≤ high_pri_pool_ratio of capacity)    low queue
//!   [oldest ..................... newest]   [oldest ............. newest]
//!    ^ index and filter blocks, and blocks    ^ data blocks as they enter,
//!      hit since they entered                   and what the high queue
//!                                               sheds
//! ```
//!
//! A hit only marks its entry referenced: one store into the hash table
//! entry, no list to relink (measured: relinking an LRU list on each hit
//! cost two more cache misses per lookup). Work happens when room is
//! needed. Eviction looks at the oldest entry of the low queue: if it was
//! hit since it entered, it moves to the high queue (RocksDB moves a
//! block hit once into its high-priority pool), otherwise it goes. Only
//! when the low queue is empty does the high queue lose entries, oldest
//! first, each referenced one getting a second chance. When the high queue
//! outgrows its share, its oldest unreferenced entries move to the low
//! queue. So a scan, which touches each block once, churns only the low
//! queue; index and filter blocks and blocks hit twice survive it. Pinned
//! entries are charged but in no queue: never evicted until erased.

use super::admission::Doorkeeper;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use strata_sstable::{CacheKey, CachePriority, CachedBlock};

/// Bytes charged per entry on top of its contents: the hash table slot,
/// its queue position and the block's shared header (RocksDB likewise
/// charges its handle's metadata).
pub const ENTRY_OVERHEAD_BYTES: usize = 96;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    High,
    Low,
    Pinned,
}

struct Entry {
    block: CachedBlock,
    charge: usize,
    pool: Pool,
    /// Hit since it entered its queue (or since its last second chance).
    referenced: bool,
    /// Tells this entry's queue position from a stale one (an entry
    /// replaced or erased leaves its old position behind).
    id: u64,
}

/// A shard holding up to `capacity` bytes (pinned entries may push it past
/// that).
pub struct ClockShard {
    capacity: usize,
    high_pri_capacity: usize,
    /// Charge of every entry, pinned ones included.
    usage: usize,
    high_pri_usage: usize,
    pinned_usage: usize,
    map: HashMap<CacheKey, Entry, BuildHasherDefault<KeyHasher>>,
    high: VecDeque<(CacheKey, u64)>,
    low: VecDeque<(CacheKey, u64)>,
    next_id: u64,
    /// When full, data blocks enter only on their second miss
    /// (`admission.rs`); `None`: every block enters.
    doorkeeper: Option<Doorkeeper>,
}

impl ClockShard {
    /// An empty shard of `capacity` bytes whose high-priority queue takes
    /// at most `high_pri_pool_ratio` of it.
    pub fn new(capacity: usize, high_pri_pool_ratio: f64) -> ClockShard {
        ClockShard {
            capacity,
            high_pri_capacity: (capacity as f64 * high_pri_pool_ratio) as usize,
            usage: 0,
            high_pri_usage: 0,
            pinned_usage: 0,
            map: HashMap::default(),
            high: VecDeque::new(),
            low: VecDeque::new(),
            next_id: 0,
            doorkeeper: None,
        }
    }

    /// The same shard, taking data blocks in only on their second miss
    /// once it is full (`admission.rs`); `block_bytes` is the size of a
    /// typical block, to size the doorkeeper.
    pub fn with_admission(mut self, block_bytes: usize) -> ClockShard {
        let entries = self.capacity / (block_bytes + ENTRY_OVERHEAD_BYTES).max(1);
        self.doorkeeper = Some(Doorkeeper::new(entries));
        self
    }

    /// The entry for `key`, marked referenced.
    #[inline]
    pub fn lookup(&mut self, key: &CacheKey) -> Option<CachedBlock> {
        let entry = self.map.get_mut(key)?;
        entry.referenced = true;
        Some(entry.block.clone())
    }

    /// Runs `f` on the entry for `key`, marked referenced; whether there
    /// was one.
    #[inline]
    pub fn lookup_with(&mut self, key: &CacheKey, f: &mut dyn FnMut(&CachedBlock)) -> bool {
        match self.map.get_mut(key) {
            Some(entry) => {
                entry.referenced = true;
                f(&entry.block);
                true
            }
            None => false,
        }
    }

    /// Caches `block` with `priority`, replacing any entry for `key`, then
    /// evicts down to the capacity; a data block that would need room
    /// first passes the doorkeeper, if the shard has one. A block larger than the whole shard is
    /// not cached (it would evict all).
    pub fn insert(&mut self, key: CacheKey, block: CachedBlock, priority: CachePriority) {
        let charge = block.charge() + ENTRY_OVERHEAD_BYTES;
        if priority == CachePriority::Low
            && self.usage + charge > self.capacity
            && !self.map.contains_key(&key)
        {
            if let Some(doorkeeper) = &mut self.doorkeeper {
                let hash = BuildHasherDefault::<KeyHasher>::default().hash_one(key);
                if !doorkeeper.admit(hash) {
                    return;
                }
            }
        }
        self.erase(&key);
        if charge > self.capacity {
            return;
        }
        let pool = match priority {
            CachePriority::High => Pool::High,
            CachePriority::Low => Pool::Low,
        };
        let id = self.put(key, block, charge, pool);
        match pool {
            Pool::High => {
                self.high_pri_usage += charge;
                self.high.push_back((key, id));
                self.shrink_high();
            }
            _ => self.low.push_back((key, id)),
        }
        self.evict_to_capacity();
        self.drop_stale_positions();
    }

    /// Caches `block` pinned: charged, never evicted, until erased.
    pub fn insert_pinned(&mut self, key: CacheKey, block: CachedBlock) {
        let charge = block.charge() + ENTRY_OVERHEAD_BYTES;
        self.erase(&key);
        self.put(key, block, charge, Pool::Pinned);
        self.pinned_usage += charge;
        self.evict_to_capacity();
    }

    /// Removes the entry for `key`, if any (its queue position goes stale).
    pub fn erase(&mut self, key: &CacheKey) {
        if let Some(e) = self.map.remove(key) {
            self.uncharge(&e);
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

    fn put(&mut self, key: CacheKey, block: CachedBlock, charge: usize, pool: Pool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.map.insert(
            key,
            Entry {
                block,
                charge,
                pool,
                referenced: false,
                id,
            },
        );
        self.usage += charge;
        id
    }

    fn uncharge(&mut self, e: &Entry) {
        self.usage -= e.charge;
        match e.pool {
            Pool::High => self.high_pri_usage -= e.charge,
            Pool::Pinned => self.pinned_usage -= e.charge,
            Pool::Low => {}
        }
    }

    /// The live entry at a queue position of `pool`, if the position is
    /// not stale.
    fn live(&mut self, (key, id): (CacheKey, u64), pool: Pool) -> Option<&mut Entry> {
        self.map
            .get_mut(&key)
            .filter(|e| e.id == id && e.pool == pool)
    }

    /// Moves the high queue's oldest unreferenced entries to the low queue
    /// while it is over its share; referenced ones get a second chance.
    fn shrink_high(&mut self) {
        while self.high_pri_usage > self.high_pri_capacity {
            let Some(pos) = self.high.pop_front() else {
                break;
            };
            let Some(e) = self.live(pos, Pool::High) else {
                continue;
            };
            if e.referenced {
                e.referenced = false;
                self.high.push_back(pos);
            } else {
                e.pool = Pool::Low;
                let charge = e.charge;
                self.high_pri_usage -= charge;
                self.low.push_back(pos);
            }
        }
    }

    /// Evicts until the usage fits the capacity (or only pinned entries
    /// are left): the low queue's oldest entries first, those hit since
    /// they entered moving to the high queue instead; then the high
    /// queue's, with a second chance for referenced ones.
    fn evict_to_capacity(&mut self) {
        while self.usage > self.capacity {
            if let Some(pos) = self.low.pop_front() {
                let Some(e) = self.live(pos, Pool::Low) else {
                    continue;
                };
                if e.referenced {
                    e.referenced = false;
                    e.pool = Pool::High;
                    let charge = e.charge;
                    self.high_pri_usage += charge;
                    self.high.push_back(pos);
                    self.shrink_high();
                } else {
                    self.evict(pos.0);
                }
            } else if let Some(pos) = self.high.pop_front() {
                let Some(e) = self.live(pos, Pool::High) else {
                    continue;
                };
                if e.referenced {
                    e.referenced = false;
                    self.high.push_back(pos);
                } else {
                    self.evict(pos.0);
                }
            } else {
                break;
            }
        }
    }

    fn evict(&mut self, key: CacheKey) {
        if let Some(e) = self.map.remove(&key) {
            self.uncharge(&e);
        }
    }

    /// Erased and replaced entries leave positions behind; when they
    /// outnumber the live ones, drop them (amortised: each position is
    /// dropped once).
    fn drop_stale_positions(&mut self) {
        if self.high.len() + self.low.len() <= 2 * self.map.len() + 64 {
            return;
        }
        let map = &self.map;
        let valid = |pool: Pool| {
            move |&(key, id): &(CacheKey, u64)| {
                map.get(&key).is_some_and(|e| e.id == id && e.pool == pool)
            }
        };
        self.high.retain(valid(Pool::High));
        self.low.retain(valid(Pool::Low));
    }

    /// Keys in the order they would be looked at for eviction (ignoring
    /// second chances), for tests.
    #[cfg(test)]
    pub fn eviction_order(&self) -> Vec<CacheKey> {
        let valid = |pool: Pool| {
            move |&&(key, id): &&(CacheKey, u64)| {
                self.map
                    .get(&key)
                    .is_some_and(|e| e.id == id && e.pool == pool)
            }
        };
        let low = self.low.iter().filter(valid(Pool::Low));
        let high = self.high.iter().filter(valid(Pool::High));
        low.chain(high).map(|&(key, _)| key).collect()
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
    use crate::cache::test_block as data_block;

    fn key(offset: u64) -> CacheKey {
        CacheKey {
            table_id: 1,
            offset,
        }
    }

    /// A data block whose charge is `bytes` in all.
    fn block(bytes: usize) -> CachedBlock {
        data_block(bytes - ENTRY_OVERHEAD_BYTES)
    }

    const ENTRY: usize = 1000;

    #[test]
    fn a_full_shard_with_admission_takes_a_data_block_on_its_second_miss() {
        let mut shard = ClockShard::new(10 * ENTRY, 0.5).with_admission(ENTRY);
        // With room, every block enters at once.
        for i in 0..10 {
            shard.insert(key(i), block(ENTRY), CachePriority::Low);
        }
        assert_eq!(shard.len(), 10);
        // Full: a block missed once stays out and evicts nothing.
        shard.insert(key(100), block(ENTRY), CachePriority::Low);
        assert_eq!(shard.eviction_order(), (0..10).map(key).collect::<Vec<_>>());
        // Missed again, it enters, in place of the oldest.
        shard.insert(key(100), block(ENTRY), CachePriority::Low);
        assert_eq!(
            shard.eviction_order(),
            (1..10).chain([100]).map(key).collect::<Vec<_>>()
        );
        assert_eq!(shard.usage(), 10 * ENTRY);
        // Index and filter blocks never wait at the door.
        shard.insert(key(200), block(ENTRY), CachePriority::High);
        assert!(shard.lookup(&key(200)).is_some());
    }

    #[test]
    fn usage_is_charged_by_bytes_and_stays_within_capacity() {
        let mut shard = ClockShard::new(10 * ENTRY, 0.5);
        for i in 0..100 {
            shard.insert(key(i), block(ENTRY), CachePriority::Low);
            assert!(shard.usage() <= 10 * ENTRY);
        }
        assert_eq!(shard.usage(), 10 * ENTRY);
        assert_eq!(shard.len(), 10);
        // Never hit: they leave in the order they came.
        assert_eq!(
            shard.eviction_order(),
            (90..100).map(key).collect::<Vec<_>>()
        );
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
        let mut shard = ClockShard::new(10 * ENTRY, 0.5);
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
        let mut shard = ClockShard::new(10 * ENTRY, 0.5);
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
        let mut shard = ClockShard::new(10 * ENTRY, 0.5);
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
    fn the_high_queue_overflows_into_the_low_queue_oldest_first() {
        let mut shard = ClockShard::new(10 * ENTRY, 0.3);
        for i in 0..5 {
            shard.insert(key(i), block(ENTRY), CachePriority::High);
        }
        // At most 3 fit the high queue: 0 and 1 moved to the low queue, 0
        // first, so they are the next victims, before any high one.
        assert_eq!(
            shard.eviction_order(),
            vec![key(0), key(1), key(2), key(3), key(4)]
        );
        shard.insert(key(10), block(ENTRY), CachePriority::Low);
        assert_eq!(
            shard.eviction_order(),
            vec![key(0), key(1), key(10), key(2), key(3), key(4)]
        );
        for i in 20..26 {
            shard.insert(key(i), block(ENTRY), CachePriority::Low);
        }
        // Full: the oldest low entries went first; the high queue is whole.
        assert!(shard.lookup(&key(0)).is_none());
        assert!(shard.lookup(&key(1)).is_none());
        assert!((2..5).all(|i| shard.lookup(&key(i)).is_some()));
    }

    #[test]
    fn a_referenced_high_entry_gets_a_second_chance() {
        let mut shard = ClockShard::new(3 * ENTRY, 1.0);
        for i in 0..3 {
            shard.insert(key(i), block(ENTRY), CachePriority::High);
        }
        // Only high entries: the oldest unreferenced one goes, and 0, hit,
        // survives the first eviction.
        assert!(shard.lookup(&key(0)).is_some());
        shard.insert(key(3), block(ENTRY), CachePriority::High);
        assert!(shard.lookup(&key(1)).is_none());
        assert!([0, 2, 3].iter().all(|&i| shard.lookup(&key(i)).is_some()));
    }

    #[test]
    fn pinned_entries_are_charged_never_evicted_and_released_by_erase() {
        let mut shard = ClockShard::new(4 * ENTRY, 0.5);
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
    }

    #[test]
    fn stale_queue_positions_do_not_accumulate() {
        let mut shard = ClockShard::new(1000 * ENTRY, 0.5);
        // The same keys replaced over and over, in a cache never full.
        for round in 0..100 {
            for i in 0..10 {
                let priority = if round % 2 == 0 {
                    CachePriority::Low
                } else {
                    CachePriority::High
                };
                shard.insert(key(i), block(ENTRY), priority);
            }
        }
        assert_eq!(shard.len(), 10);
        assert!(shard.high.len() + shard.low.len() <= 2 * 10 + 64 + 1);
        assert_eq!(shard.usage(), 10 * ENTRY);
    }
}
