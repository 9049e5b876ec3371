//! A memtable's range tombstones: appended under a mutex (range deletes are
//! rare writes, and the point skiplist stays lock-free), and read as one
//! fragmented list, cached until the next tombstone arrives.
//!
//! The cache is keyed by the number of tombstones it was built from: the
//! list only grows, so the first `n` tombstones never change, and a cache
//! built from `n` is current while the count is `n`. Each new tombstone
//! costs one re-fragmentation, taken by the first reader after it (RocksDB
//! caches its memtable list the same way, PR 5032). Thousands of
//! tombstones, each followed by reads, make that quadratic (RocksDB issues
//! 3634, 10662): `memtable_max_range_deletions` freezes the memtable at a
//! count.
//!
//! Visibility: the list may hold tombstones of write groups not yet
//! published (sequence number above what readers see). Every query takes
//! the read's sequence number, so they stay invisible; a reader must take
//! its sequence number **before** the snapshot, so every tombstone at or
//! below it (inserted before it was published) is in the snapshot.

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strata_sstable::{FragmentedRangeTombstones, RangeTombstone, SeqNo};

/// Bytes charged per tombstone besides its keys: the `RangeTombstone`
/// itself and the two `Bytes` allocations' headers, so
/// `approximate_bytes` tracks real memory.
const TOMBSTONE_OVERHEAD_BYTES: usize = std::mem::size_of::<RangeTombstone>() + 2 * 16;

/// A fragmented list and the number of tombstones it was built from.
struct Fragmented {
    count: usize,
    list: Arc<FragmentedRangeTombstones>,
}

/// The range tombstones of one memtable.
pub(crate) struct RangeDelList {
    /// Every tombstone, in insertion order. A leaf lock: nothing is taken
    /// while it is held (`src/lock_order.rs`).
    tombstones: Mutex<Vec<RangeTombstone>>,
    /// `tombstones.len()`, readable without the lock: 0 is the fast path
    /// of every read.
    count: AtomicUsize,
    /// Heap bytes of the tombstones.
    bytes: AtomicUsize,
    /// The last fragmented list built, `None` before the first read.
    fragmented: ArcSwapOption<Fragmented>,
    /// Fragmentations done (each new tombstone costs at most one).
    #[cfg(test)]
    fragmentations: AtomicUsize,
}

impl RangeDelList {
    pub fn new() -> Self {
        RangeDelList {
            tombstones: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            fragmented: ArcSwapOption::empty(),
            #[cfg(test)]
            fragmentations: AtomicUsize::new(0),
        }
    }

    /// Add `[start, end)@seqno` (`end` `None`: no end).
    pub fn insert(&self, start: &[u8], end: Option<&[u8]>, seqno: SeqNo) {
        let tombstone = RangeTombstone::new(start, end, seqno);
        let bytes = start.len() + end.map_or(0, <[u8]>::len) + TOMBSTONE_OVERHEAD_BYTES;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut tombstones = self.tombstones.lock();
        tombstones.push(tombstone);
        // Release: whoever reads the new count finds the tombstone under
        // the lock.
        self.count.store(tombstones.len(), Ordering::Release);
    }

    /// The number of tombstones inserted.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate heap bytes of the tombstones.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Every tombstone inserted, fragmented; `None` when there are none
    /// (one atomic load). Take the read's sequence number first (see the
    /// module comment).
    pub fn snapshot(&self) -> Option<Arc<FragmentedRangeTombstones>> {
        let count = self.len();
        if count == 0 {
            return None;
        }
        if let Some(cached) = self.fragmented.load().as_ref() {
            if cached.count == count {
                return Some(Arc::clone(&cached.list));
            }
        }
        // Built and stored under the lock, so a list built from fewer
        // tombstones never replaces one built from more.
        let tombstones = self.tombstones.lock();
        let list = Arc::new(FragmentedRangeTombstones::fragment(
            tombstones.iter().cloned(),
        ));
        #[cfg(test)]
        self.fragmentations.fetch_add(1, Ordering::Relaxed);
        self.fragmented.store(Some(Arc::new(Fragmented {
            count: tombstones.len(),
            list: Arc::clone(&list),
        })));
        Some(list)
    }

    /// The newest sequence number `<= read_seq` of a tombstone covering
    /// `ukey`: a version of `ukey` older than it is deleted.
    pub fn max_covering_seqno(&self, ukey: &[u8], read_seq: SeqNo) -> Option<SeqNo> {
        let count = self.len();
        if count == 0 {
            return None;
        }
        // Every get asks: read the cached list in place, without the
        // reference count `snapshot` takes (same check as there).
        let cached = self.fragmented.load();
        match cached.as_ref() {
            Some(c) if c.count == count => c.list.max_covering_seqno(ukey, read_seq),
            _ => self.snapshot()?.max_covering_seqno(ukey, read_seq),
        }
    }

    /// Every tombstone as inserted (for a flush, which fragments them in
    /// the table builder).
    pub fn tombstones(&self) -> Vec<RangeTombstone> {
        self.tombstones.lock().clone()
    }

    #[cfg(test)]
    pub fn fragmentations(&self) -> usize {
        self.fragmentations.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_list_has_no_snapshot() {
        let list = RangeDelList::new();
        assert!(list.is_empty());
        assert!(list.snapshot().is_none());
        assert_eq!(list.max_covering_seqno(b"k", 100), None);
        assert_eq!(list.fragmentations(), 0);
    }

    #[test]
    fn the_cached_list_is_rebuilt_once_per_new_tombstone() {
        let list = RangeDelList::new();
        list.insert(b"b", Some(b"d"), 5);
        let first = list.snapshot().unwrap();
        let again = list.snapshot().unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the cache serves the second read"
        );
        assert_eq!(list.fragmentations(), 1);
        list.insert(b"c", None, 9);
        assert_eq!(list.len(), 2);
        let second = list.snapshot().unwrap();
        assert_eq!(list.fragmentations(), 2);
        assert_eq!(second.max_covering_seqno(b"c", 100), Some(9));
        assert_eq!(second.max_covering_seqno(b"c", 8), Some(5));
        assert_eq!(
            second.max_covering_seqno(b"zz", 8),
            None,
            "9 is above the read"
        );
        assert_eq!(second.max_covering_seqno(b"a", 100), None);
        // The older snapshot is unchanged: a reader holding it keeps its view.
        assert_eq!(first.max_covering_seqno(b"zz", 100), None);
        assert_eq!(list.max_covering_seqno(b"zz", 100), Some(9));
        assert_eq!(list.fragmentations(), 2);
        assert_eq!(list.tombstones().len(), 2);
        assert_eq!(list.bytes(), 2 * TOMBSTONE_OVERHEAD_BYTES + 3, "b, d and c");
    }
}
