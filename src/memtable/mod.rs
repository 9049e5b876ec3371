//! The memtable: recent writes, sorted in a lock-free skiplist
//! (crossbeam-skiplist), and its range tombstones (`range_del.rs`).
//! Writers insert points concurrently without a mutex; readers search it
//! at a sequence number.

mod active;
#[allow(unsafe_code)] // UNSAFE.md: the arena's raw blocks and skiplist nodes
mod arena;
#[allow(unsafe_code)] // UNSAFE.md: blocks parked in lock-free slots
mod block_pool;
mod bloom;
#[allow(unsafe_code)] // UNSAFE.md: an entry borrowed for the iterator's life
mod iter;
#[allow(unsafe_code)] // UNSAFE.md: IKey's cast, entries pointing into the arena
mod key;
mod range_del;

pub(crate) use active::ActiveMemTables;
pub(crate) use block_pool::BlockPool;
pub use iter::MemTableIter;
pub(crate) use key::IKey;

use crate::batch::BatchOp;
use crate::ikey::with_seek_key;
use crate::key_walk::{Base, KeyWalk, Step};
use arena::Arena;
use bloom::MemBloom;
use bytes::Bytes;
use crossbeam_skiplist::base::NodeAlloc;
use crossbeam_skiplist::SkipMap;
use key::MemEntry;
use range_del::RangeDelList;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use strata_sstable::{pack_trailer, parse_internal_key, RangeTombstone, SeqNo, ValueKind};

/// The memtable's key filter gets one byte per this many bytes of
/// capacity: 64 MiB of memtable, 1 MiB of filter, some 12 to 25 bits per
/// key for entries of 100 to 200 bytes with node overhead (under 1% false
/// positives). Every insert touches one random filter line, so the filter
/// should stay small enough to live in the L2 cache: at a 32nd (2 MiB),
/// the line's cache miss was 8% of fillbatch's writer thread.
const FILTER_RATIO: usize = 64;

/// `sealed_seq` of a memtable still active: above every sequence number
/// (they fit in 56 bits).
const NOT_SEALED: SeqNo = SeqNo::MAX;

/// What a memtable alone says of a user key at a sequence number, for
/// tests (reads walk with [`MemTable::walk`]).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<V> {
    /// The newest visible version is a put of this value.
    Found(V),
    /// The newest visible version is a delete: stop looking in older data.
    Deleted,
    /// No visible version here: look in older data.
    Absent,
}

/// A sorted in-memory table of writes. Immutable ("frozen") once it is
/// replaced by a fresh memtable; then it is flushed to an L0 table.
pub struct MemTable {
    /// The entries, in nodes allocated in `arena`. The map holds the
    /// arena too (an `Arc`), for as long as a node of it may be reached,
    /// deferred destructions included.
    map: SkipMap<MemEntry, ()>,
    arena: Arc<Arena>,
    bloom: MemBloom,
    /// The range deletes, kept out of the skiplist: a reader asks which
    /// of them cover its key before it looks for the key's points.
    range_dels: RangeDelList,
    /// The write-ahead log that holds this memtable's writes.
    wal_number: u64,
    /// The largest sequence number inserted (points and range deletes).
    max_seq: AtomicU64,
    /// The last sequence number given to a write into this memtable, set
    /// when it is frozen ([`NOT_SEALED`] while it is active). Writes in
    /// flight may still be inserting then; once this number is published,
    /// every write into the memtable has been inserted.
    sealed_seq: AtomicU64,
    /// Some write in it was made with `disable_wal`: the WAL does not hold
    /// all of it, so a clean close must flush it.
    unlogged: AtomicBool,
    /// Merge operands inserted: what the check for a missing merge
    /// operator at open asks after WAL replay.
    merge_operands: AtomicUsize,
}

impl MemTable {
    /// An empty memtable for `write_buffer_size` bytes of writes without a
    /// key filter: for WAL replay, which only inserts and flushes, from one
    /// thread. Its arena has one node chunk, so where replay finds it full
    /// (and splits its tables) does not depend on the CPUs that thread ran
    /// on.
    pub fn unfiltered(wal_number: u64, write_buffer_size: usize) -> Self {
        Self::with_filter(wal_number, Arena::with_one_node_chunk(write_buffer_size), 0)
    }

    /// An empty memtable for `write_buffer_size` bytes of writes, with a
    /// key filter of `write_buffer_size / FILTER_RATIO` bytes, its arena
    /// taking blocks from (and giving them back to) the database's `pool`.
    pub fn sized_for(wal_number: u64, write_buffer_size: usize, pool: &Arc<BlockPool>) -> Self {
        Self::with_filter(
            wal_number,
            Arena::pooled(write_buffer_size, pool),
            write_buffer_size / FILTER_RATIO,
        )
    }

    /// An empty memtable writing into `arena`, with a key filter of
    /// `filter_bytes` bytes.
    fn with_filter(wal_number: u64, arena: Arena, filter_bytes: usize) -> Self {
        let arena = Arc::new(arena);
        MemTable {
            map: SkipMap::with_node_alloc(Arc::clone(&arena) as Arc<dyn NodeAlloc>),
            arena,
            bloom: MemBloom::new(filter_bytes),
            range_dels: RangeDelList::new(),
            wal_number,
            max_seq: AtomicU64::new(0),
            sealed_seq: AtomicU64::new(NOT_SEALED),
            unlogged: AtomicBool::new(false),
            merge_operands: AtomicUsize::new(0),
        }
    }

    /// Insert one versioned entry. Safe to call from many threads at once;
    /// each (key, seqno) is inserted exactly once.
    #[cfg(test)]
    pub fn insert(&self, user_key: &[u8], seqno: SeqNo, kind: ValueKind, value: &[u8]) {
        let op = BatchOp {
            keyspace: 0,
            kind,
            key: user_key,
            value,
        };
        self.insert_batch(seqno, std::iter::once(op));
    }

    /// Insert a batch's entries with consecutive sequence numbers from
    /// `first_seq`. The batch's arena bytes are reserved in one step and
    /// the shared counters updated once.
    pub fn insert_batch<'a>(
        &self,
        first_seq: SeqNo,
        ops: impl Iterator<Item = BatchOp<'a>> + Clone,
    ) {
        self.insert_entries((first_seq..).zip(ops));
    }

    /// Insert entries, each with its own sequence number (a batch's
    /// records of one keyspace: their numbers need not be consecutive).
    /// Points go to the skiplist, whose arena bytes are reserved in one
    /// step and shared counters updated once; range deletes go to the
    /// range tombstone list.
    #[allow(unsafe_code)] // UNSAFE.md: `MemEntry::new`'s contract, kept here
    pub fn insert_entries<'a>(&self, entries: impl Iterator<Item = (SeqNo, BatchOp<'a>)> + Clone) {
        // One pass for the arena's bytes and the filter's bits; the bits
        // are all set (the adder dropped) before any entry is inserted, so
        // whoever can see an entry sees its bits.
        let mut arena_bytes = 0;
        {
            let mut filter = self.bloom.adder();
            for (_, op) in entries.clone().filter(|(_, op)| op.kind.is_point()) {
                arena_bytes += MemEntry::arena_bytes(op.key, op.value);
                filter.add(op.key);
            }
        }
        let mut region = self.arena.reserve(arena_bytes);
        let mut count = 0;
        let mut merges = 0;
        let mut max_seq = 0;
        // Pinned once for the batch, from its second entry on: each insert
        // (and the entry it returns, dropped at once) pins the epoch
        // again, and a pin inside a pin is a counter's increment where the
        // outermost one is a fence. Two fences per entry were 4% of
        // fillbatch's writer. A single put pins as it did.
        let mut _pin = None;
        for (seq, op) in entries {
            max_seq = max_seq.max(seq);
            if op.kind == ValueKind::RangeDelete {
                self.range_dels.insert(op.key, op.range_end(), seq);
                continue;
            }
            let trailer = pack_trailer(seq, op.kind).to_le_bytes();
            // SAFETY: the entry goes into `self.map`, which holds the
            // arena (an `Arc`) until its last node is destroyed, deferred
            // destructions included; a reader can only reach an entry
            // through the map (or an iterator holding this memtable's
            // `Arc`). Destroying an entry never reads its bytes (no drop
            // glue, asserted in key.rs).
            let entry = unsafe { MemEntry::new((op.key, trailer), op.value, &mut region) };
            if count == 1 && _pin.is_none() {
                _pin = Some(crossbeam_epoch::pin());
            }
            self.map.insert(entry, ());
            count += 1;
            merges += usize::from(op.kind == ValueKind::Merge);
        }
        debug_assert_eq!(region.left(), 0, "arena bytes reserved but not used");
        if merges > 0 {
            self.merge_operands.fetch_add(merges, Ordering::Relaxed);
        }
        if max_seq > 0 {
            self.max_seq.fetch_max(max_seq, Ordering::Release);
        }
    }

    /// What a read at `seqno` finds for `user_key` here alone (no merge
    /// operands in the tests that ask).
    #[cfg(test)]
    pub fn get(&self, user_key: &[u8], seqno: SeqNo) -> Lookup<Bytes> {
        match self.walk(user_key, &mut KeyWalk::new(seqno)) {
            Step::Decided(Base::Value(v) | Base::Expiring(v)) => Lookup::Found(v),
            Step::Decided(Base::None) => Lookup::Deleted,
            Step::Continue => Lookup::Absent,
        }
    }

    /// Walk `user_key`'s versions at or below `walk.at`, newest first,
    /// range deletes included, collecting merge operands until a version
    /// decides (see [`KeyWalk`]): the entries of a key are adjacent, so an
    /// operand costs a step to the next entry, not a search. Values are
    /// copied out: they are what the caller returns.
    pub(crate) fn walk(&self, user_key: &[u8], walk: &mut KeyWalk) -> Step {
        // Every tombstone covering the key at or below `at` covers the
        // versions older than it: the first version not newer than the
        // newest of them, and all older ones, are deleted.
        let covering = self.range_dels.max_covering_seqno(user_key, walk.at);
        // A filter miss proves no point; a covering tombstone still
        // answers.
        if self.bloom.may_contain(user_key) {
            let mut entry = with_seek_key(user_key, walk.at, |target| {
                self.map.lower_bound(Bound::Included(IKey::new(target)))
            });
            while let Some(e) = entry {
                let mem_entry = e.key();
                let Some(k) =
                    parse_internal_key(mem_entry.ikey()).filter(|k| k.user_key == user_key)
                else {
                    break;
                };
                if covering.is_some_and(|t| k.seqno <= t) {
                    break;
                }
                let value = || Bytes::copy_from_slice(mem_entry.value());
                if let Some(decided) = walk.visit(k.seqno, k.kind, value) {
                    return Step::Decided(decided);
                }
                entry = e.next();
            }
        }
        match covering {
            Some(_) => Step::Decided(Base::None),
            None => Step::Continue,
        }
    }

    /// The largest sequence number inserted so far (0 if empty).
    pub fn max_seq(&self) -> SeqNo {
        self.max_seq.load(Ordering::Acquire)
    }

    /// Freeze: no write numbered after `last_seq` goes into this memtable.
    /// Called by the rotation that replaces it, which sequences writes (so
    /// no later one can still be numbered into it); writes numbered before
    /// may still be inserting.
    pub fn seal(&self, last_seq: SeqNo) {
        let previous = self.sealed_seq.swap(last_seq, Ordering::Release);
        debug_assert_eq!(previous, NOT_SEALED, "a memtable sealed twice");
    }

    /// The last sequence number written into this memtable, once frozen:
    /// when it is published, every insert into the memtable has finished
    /// (writes publish in order, each after its insert). `None` while the
    /// memtable is active.
    pub fn sealed_seq(&self) -> Option<SeqNo> {
        match self.sealed_seq.load(Ordering::Acquire) {
            NOT_SEALED => None,
            seq => Some(seq),
        }
    }

    /// Approximate heap bytes held: the arena's blocks (nodes, keys and
    /// values) and the range tombstones.
    pub fn approximate_bytes(&self) -> usize {
        self.arena.allocated_bytes() + self.range_dels.bytes()
    }

    /// Whether the memtable is to be frozen: it holds `write_buffer_size`
    /// bytes, or `max_range_deletions` range deletes (0: no limit; each
    /// new one makes the next read fragment the list again). RocksDB:
    /// `write_buffer_size`, `memtable_max_range_deletions`.
    pub fn is_full(&self, write_buffer_size: usize, max_range_deletions: usize) -> bool {
        self.approximate_bytes() >= write_buffer_size
            || max_range_deletions > 0 && self.range_dels.len() >= max_range_deletions
    }

    /// Every range tombstone inserted, unfragmented, in insertion order.
    pub fn range_tombstones(&self) -> Vec<RangeTombstone> {
        self.range_dels.tombstones()
    }

    /// The range tombstones fragmented, shared with every reader since the
    /// last one was added; `None` when there are none (one atomic load).
    /// Take the read's sequence number first: every tombstone at or below
    /// it is then in the list.
    pub fn range_del_snapshot(
        &self,
    ) -> Option<std::sync::Arc<strata_sstable::FragmentedRangeTombstones>> {
        self.range_dels.snapshot()
    }

    /// Whether some merge operand was inserted.
    pub fn has_merge_operands(&self) -> bool {
        self.merge_operands.load(Ordering::Relaxed) > 0
    }

    /// The WAL holding this memtable's writes.
    pub fn wal_number(&self) -> u64 {
        self.wal_number
    }

    /// Note that a write not in the WAL goes into this memtable.
    pub fn mark_unlogged(&self) {
        self.unlogged.store(true, Ordering::Release);
    }

    /// Whether some write in it is not in the WAL (`disable_wal`).
    pub fn has_unlogged_writes(&self) -> bool {
        self.unlogged.load(Ordering::Acquire)
    }

    /// True when nothing has been inserted (neither points nor range
    /// deletes).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && self.range_dels.is_empty()
    }

    pub(crate) fn map(&self) -> &SkipMap<MemEntry, ()> {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memtable_is_sealed_at_the_last_sequence_number_written_into_it() {
        let m = MemTable::unfiltered(1, 1 << 20);
        m.insert(b"k", 7, ValueKind::Put, b"v");
        assert_eq!(m.sealed_seq(), None, "active");
        // Sequence numbers 8..=9 went to groups still inserting.
        m.seal(9);
        assert_eq!(m.sealed_seq(), Some(9));
        assert_eq!(m.max_seq(), 7);
    }

    #[test]
    fn get_sees_the_newest_version_at_or_below_the_sequence() {
        let m = MemTable::unfiltered(1, 0);
        m.insert(b"k", 1, ValueKind::Put, b"v1");
        m.insert(b"k", 3, ValueKind::Put, b"v3");
        m.insert(b"k", 5, ValueKind::Delete, b"");
        m.insert(b"kk", 2, ValueKind::Put, b"other");
        assert_eq!(m.get(b"k", 0), Lookup::Absent);
        assert_eq!(m.get(b"k", 1), Lookup::Found(Bytes::from_static(b"v1")));
        assert_eq!(m.get(b"k", 4), Lookup::Found(Bytes::from_static(b"v3")));
        assert_eq!(m.get(b"k", 5), Lookup::Deleted);
        assert_eq!(m.get(b"j", 9), Lookup::Absent);
        assert_eq!(m.get(b"kk", 9), Lookup::Found(Bytes::from_static(b"other")));
        assert!(m.approximate_bytes() >= 4 * std::mem::size_of::<MemEntry>() + 2 + 2 + 5);
    }

    /// The skiplist's nodes are the arena's: entries whose keys sit in the
    /// node and whose values are empty take no other arena bytes, yet the
    /// memtable's size counts each node.
    #[test]
    fn the_size_counts_the_nodes_in_the_arena() {
        let m = MemTable::unfiltered(1, 1 << 20);
        let n = 2000;
        for i in 0..n {
            m.insert(
                format!("k{i:05}").as_bytes(),
                i as SeqNo + 1,
                ValueKind::Put,
                b"",
            );
        }
        let node = std::mem::size_of::<MemEntry>() + 8 + 8;
        assert!(
            m.approximate_bytes() >= n * node,
            "{} bytes for {n} nodes of at least {node}",
            m.approximate_bytes()
        );
    }

    fn range_delete(m: &MemTable, start: &[u8], end: Option<&[u8]>, seq: SeqNo) {
        let op = BatchOp {
            keyspace: 0,
            kind: ValueKind::RangeDelete,
            key: start,
            value: end.unwrap_or_default(),
        };
        m.insert_batch(seq, std::iter::once(op));
    }

    fn found(v: &'static [u8]) -> Lookup<Bytes> {
        Lookup::Found(Bytes::from_static(v))
    }

    #[test]
    fn get_weighs_points_against_range_deletes_at_the_read_sequence() {
        let m = MemTable::unfiltered(1, 1 << 20);
        m.insert(b"k", 1, ValueKind::Put, b"v1");
        m.insert(b"k", 3, ValueKind::Put, b"v3");
        range_delete(&m, b"c", Some(b"m"), 5);
        m.insert(b"k", 7, ValueKind::Put, b"v7");
        range_delete(&m, b"j", None, 9);
        let cases: [(&[u8], SeqNo, Lookup<Bytes>); 14] = [
            (b"k", 2, found(b"v1")),
            (b"k", 4, found(b"v3")),
            (b"k", 5, Lookup::Deleted),
            (b"k", 6, Lookup::Deleted),
            (b"k", 7, found(b"v7")),
            (b"k", 8, found(b"v7")),
            (b"k", 9, Lookup::Deleted),
            // Keys with no point: deleted only while a tombstone is visible.
            (b"d", 4, Lookup::Absent),
            (b"d", 5, Lookup::Deleted),
            (b"c", 5, Lookup::Deleted),
            (b"b", 9, Lookup::Absent),
            // The end is exclusive, but the second tombstone has none.
            (b"m", 8, Lookup::Absent),
            (b"m", 9, Lookup::Deleted),
            (b"\xff\xff", 100, Lookup::Deleted),
        ];
        for (key, seq, want) in cases {
            assert_eq!(m.get(key, seq), want, "{} @{seq}", key.escape_ascii());
        }
    }

    #[test]
    fn a_put_after_a_range_delete_in_the_same_memtable_survives_it() {
        let m = MemTable::sized_for(1, 1 << 20, &BlockPool::new(1 << 20));
        m.insert(b"a", 1, ValueKind::Put, b"old");
        m.insert(b"b", 2, ValueKind::Put, b"old");
        range_delete(&m, b"a", Some(b"z"), 3);
        m.insert(b"b", 4, ValueKind::Put, b"new");
        m.insert(b"a", 5, ValueKind::Delete, b"");
        assert_eq!(m.get(b"b", 10), found(b"new"));
        assert_eq!(m.get(b"b", 3), Lookup::Deleted);
        assert_eq!(m.get(b"a", 4), Lookup::Deleted, "the range delete");
        assert_eq!(m.get(b"a", 10), Lookup::Deleted, "the point delete");
        assert_eq!(m.get(b"a", 2), found(b"old"));
    }

    #[test]
    fn a_key_the_filter_has_never_seen_is_still_deleted_by_a_range() {
        let m = MemTable::sized_for(1, 1 << 20, &BlockPool::new(1 << 20));
        m.insert(b"k", 1, ValueKind::Put, b"v");
        range_delete(&m, b"a", Some(b"z"), 2);
        assert!(!m.bloom.may_contain(b"q"), "the filter misses the key");
        assert_eq!(m.get(b"q", 2), Lookup::Deleted);
        assert_eq!(m.get(b"q", 1), Lookup::Absent);
        assert!(!m.bloom.may_contain(b"zz"));
        assert_eq!(m.get(b"zz", 2), Lookup::Absent);
    }

    #[test]
    fn range_deletes_count_toward_size_emptiness_and_sequence() {
        let m = MemTable::unfiltered(1, 1 << 20);
        assert!(m.is_empty());
        assert!(!m.is_full(1 << 20, 2));
        let before = m.approximate_bytes();
        // A batch mixing points and range deletes: only the points take
        // arena bytes (reserved exactly: asserted in `insert_entries`).
        let ops = [
            BatchOp {
                keyspace: 0,
                kind: ValueKind::Put,
                key: b"a",
                value: b"1",
            },
            BatchOp {
                keyspace: 0,
                kind: ValueKind::RangeDelete,
                key: b"b",
                value: b"c",
            },
        ];
        m.insert_batch(10, ops.into_iter());
        assert_eq!(m.max_seq(), 11, "the range delete's sequence number");
        let only_range = MemTable::unfiltered(1, 1 << 20);
        range_delete(&only_range, b"x", None, 4);
        assert!(!only_range.is_empty());
        assert_eq!(only_range.max_seq(), 4);
        assert!(only_range.approximate_bytes() > before);
        assert_eq!(only_range.range_tombstones().len(), 1);
        // Full at `max_range_deletions` range deletes, whatever the size.
        assert!(!m.is_full(1 << 20, 2));
        range_delete(&m, b"d", Some(b"e"), 12);
        assert!(m.is_full(1 << 20, 2));
        assert!(!m.is_full(1 << 20, 0), "0: no limit");
        assert!(m.is_full(m.approximate_bytes(), 0));
    }
}
