//! The memtable: recent writes, sorted in a lock-free skiplist
//! (crossbeam-skiplist). Writers insert concurrently without a mutex;
//! readers search it at a sequence number.

mod iter;
mod key;

pub use iter::MemTableIter;
pub(crate) use key::IKey;

use crate::ikey::with_seek_key;
use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use key::MemEntry;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use strata_sstable::{pack_trailer, parse_internal_key, SeqNo, ValueKind};

/// Bytes charged per entry for the skiplist node and its tower, on top of
/// the entry's own bytes, so `approximate_bytes` tracks real memory.
const NODE_OVERHEAD_BYTES: usize = 64;

/// What a lookup found for a user key at a sequence number.
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
    map: SkipMap<MemEntry, ()>,
    approximate_bytes: AtomicUsize,
    /// The write-ahead log that holds this memtable's writes.
    wal_number: u64,
    entries: AtomicU64,
    deletions: AtomicU64,
    /// The largest sequence number inserted.
    max_seq: AtomicU64,
}

impl MemTable {
    /// An empty memtable whose writes are logged in WAL `wal_number`.
    pub fn new(wal_number: u64) -> Self {
        MemTable {
            map: SkipMap::new(),
            approximate_bytes: AtomicUsize::new(0),
            wal_number,
            entries: AtomicU64::new(0),
            deletions: AtomicU64::new(0),
            max_seq: AtomicU64::new(0),
        }
    }

    /// Insert one versioned entry. Safe to call from many threads at once;
    /// each (key, seqno) is inserted exactly once.
    pub fn insert(&self, user_key: &[u8], seqno: SeqNo, kind: ValueKind, value: &[u8]) {
        let trailer = pack_trailer(seqno, kind).to_le_bytes();
        let entry = MemEntry::new((user_key, trailer), value);
        let bytes = entry.heap_bytes() + NODE_OVERHEAD_BYTES;
        self.map.insert(entry, ());
        self.approximate_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.entries.fetch_add(1, Ordering::Relaxed);
        self.max_seq.fetch_max(seqno, Ordering::Relaxed);
        if kind == ValueKind::Delete {
            self.deletions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The newest version of `user_key` with a sequence number `<= seqno`.
    /// A found value is copied out: it is what the caller returns to the user.
    pub fn get(&self, user_key: &[u8], seqno: SeqNo) -> Lookup<Bytes> {
        let found = with_seek_key(user_key, seqno, |target| {
            self.map.lower_bound(Bound::Included(IKey::new(target)))
        });
        let Some(entry) = found else {
            return Lookup::Absent;
        };
        let mem_entry = entry.key();
        match parse_internal_key(mem_entry.ikey()) {
            Some(k) if k.user_key == user_key => match k.kind {
                ValueKind::Put => Lookup::Found(Bytes::copy_from_slice(mem_entry.value())),
                ValueKind::Delete => Lookup::Deleted,
            },
            _ => Lookup::Absent,
        }
    }

    /// The largest sequence number inserted (0 if empty). Exact once no
    /// insert is in flight (after rotation).
    pub fn max_seq(&self) -> SeqNo {
        self.max_seq.load(Ordering::Acquire)
    }

    /// Approximate heap bytes held (entries plus skiplist overhead).
    pub fn approximate_bytes(&self) -> usize {
        self.approximate_bytes.load(Ordering::Relaxed)
    }

    /// The WAL holding this memtable's writes.
    pub fn wal_number(&self) -> u64 {
        self.wal_number
    }

    /// True when nothing has been inserted.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn map(&self) -> &SkipMap<MemEntry, ()> {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_sees_the_newest_version_at_or_below_the_sequence() {
        let m = MemTable::new(1);
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
        assert!(m.approximate_bytes() > 4 * NODE_OVERHEAD_BYTES);
    }
}
