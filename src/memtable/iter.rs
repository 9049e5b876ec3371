//! An internal iterator over a memtable that keeps the memtable alive.
//!
//! Forward steps follow the skiplist's level-0 links. A skiplist has no
//! backward links, so a backward step is a search; instead of one search
//! per step (what crossbeam's `Entry::prev`, RocksDB's and fjall's
//! memtables do), one search finds a run of entries before the current
//! one, and the steps back pop them (`SkipMap::for_each_run_below`,
//! strata's patch of crossbeam-skiplist). Runs grow along a reverse scan,
//! as readahead does.

use super::key::{IKey, MemEntry};
use super::MemTable;
use crate::error::Result;
use crate::iter::InternalIterator;
use crossbeam_skiplist::map::Entry;
use std::ops::Bound;
use std::sync::Arc;

/// The first run after a seek (or a turn from moving forward) goes back to
/// the last entry whose tower is taller than this level: a few entries
/// (one node in two reaches each next level), so a short reverse scan
/// walks little past where it stops.
const FIRST_RUN_LEVEL: usize = 2;

/// Each further run of one reverse scan goes a level higher, doubling its
/// length, up to this level (some 50 entries): the search a run costs is
/// then spread over many steps. The walk itself is a cache miss per entry,
/// as moving forward is.
const LONGEST_RUN_LEVEL: usize = 6;

/// Where the iterator stands.
enum Position {
    Nowhere,
    /// Reached moving forward: a counted reference to the node, whose
    /// `next` follows its link.
    Forward(Entry<'static, MemEntry, ()>),
    /// Reached moving backward: an entry of the run in `behind`'s order.
    Backward(&'static MemEntry),
}

/// Iterates a memtable's entries in internal-key order.
pub struct MemTableIter {
    // Field order matters: `at` and `behind` borrow from the skiplist inside
    // `table`, so they are declared (and therefore dropped) first.
    at: Position,
    /// While `at` is `Backward`: the entries before it, in ascending
    /// order; a step back pops the last.
    behind: Vec<&'static MemEntry>,
    /// The level of the next run (`FIRST_RUN_LEVEL` after a seek).
    run_level: usize,
    table: Arc<MemTable>,
}

impl MemTableIter {
    pub fn new(table: Arc<MemTable>) -> Self {
        MemTableIter {
            at: Position::Nowhere,
            behind: Vec::new(),
            run_level: FIRST_RUN_LEVEL,
            table,
        }
    }

    /// Moves to a node reached moving forward (or nowhere). `behind` and
    /// `run_level` are left as they are: they mean something only while
    /// `at` is `Backward`, and `run_below` sets both.
    fn set(&mut self, entry: Option<Entry<'_, MemEntry, ()>>) {
        // SAFETY: the entry borrows the `SkipMap` owned by `*self.table`, a
        // heap allocation kept alive (and never moved) by the `Arc` this
        // iterator holds for at least as long as the entry: the entry is
        // stored in `self.at`, which is dropped before `self.table`
        // (field order) and replaced only through this method, `run_below`
        // and `prev`. Extending the lifetime to 'static never lets the
        // borrow escape `self`: `key`/`value` return borrows tied to `&self`.
        self.at = match entry {
            Some(e) => Position::Forward(unsafe {
                std::mem::transmute::<Entry<'_, MemEntry, ()>, Entry<'static, MemEntry, ()>>(e)
            }),
            None => Position::Nowhere,
        };
    }

    /// Moves to the last entry below `bound`, taking the run before it
    /// into `behind` with one search. `first`: a seek or a turn, not the
    /// next run of a reverse scan.
    fn run_below(&mut self, bound: Bound<&IKey>, first: bool) {
        self.behind.clear();
        self.run_level = if first {
            FIRST_RUN_LEVEL
        } else {
            (self.run_level + 1).min(LONGEST_RUN_LEVEL)
        };
        let behind = &mut self.behind;
        self.table
            .map()
            .for_each_run_below(bound, self.run_level, |entry, _| {
                // SAFETY: `entry` is the key of a node of the memtable's
                // skiplist. Nodes live in the memtable's arena, which the
                // `Arc<MemTable>` in `self.table` keeps alive for as long as
                // the iterator (`behind` and `at` are dropped first, field
                // order); a memtable never removes an entry, and an arena
                // frees no node before it is dropped itself (its
                // `NodeAlloc::deallocate` is a no-op), so the reference
                // stays valid while stored here. An entry is never written
                // after its insert, and `key`/`value` hand out borrows tied
                // to `&self`, so the 'static lifetime never escapes.
                behind.push(unsafe { &*(entry as *const MemEntry) });
            });
        self.at = match self.behind.pop() {
            Some(e) => Position::Backward(e),
            None => Position::Nowhere,
        };
    }

    fn entry(&self) -> Option<&MemEntry> {
        match &self.at {
            Position::Nowhere => None,
            Position::Forward(e) => Some(e.key()),
            Position::Backward(e) => Some(e),
        }
    }
}

impl InternalIterator for MemTableIter {
    fn valid(&self) -> bool {
        !matches!(self.at, Position::Nowhere)
    }

    fn seek_to_first(&mut self) -> Result<()> {
        let table = Arc::clone(&self.table);
        let e = table.map().front();
        self.set(e);
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.run_below(Bound::Unbounded, true);
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let table = Arc::clone(&self.table);
        let e = table.map().lower_bound(Bound::Included(IKey::new(target)));
        self.set(e);
        Ok(())
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.run_below(Bound::Included(IKey::new(target)), true);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        match &self.at {
            Position::Nowhere => {}
            Position::Forward(e) => {
                let e = e.next();
                self.set(e);
            }
            Position::Backward(e) => {
                // The run was taken for steps back; forward again means a
                // search for the entry after this one.
                let table = Arc::clone(&self.table);
                let e = table
                    .map()
                    .lower_bound(Bound::Excluded(IKey::new(e.ikey())));
                self.set(e);
            }
        }
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        match &self.at {
            Position::Nowhere => {}
            Position::Forward(e) => {
                // The bound borrows from `self.at`, which `run_below`
                // (taking `&mut self`) replaces: a counted reference of our
                // own lends the key for the search. A change of direction
                // is rare, so its two atomic counts do not matter.
                let e = e.clone();
                self.run_below(Bound::Excluded(IKey::new(e.key().ikey())), true);
            }
            Position::Backward(e) => match self.behind.pop() {
                Some(p) => self.at = Position::Backward(p),
                None => {
                    let e: &'static MemEntry = e;
                    self.run_below(Bound::Excluded(IKey::new(e.ikey())), false);
                }
            },
        }
        Ok(())
    }

    fn key(&self) -> &[u8] {
        self.entry().map_or(&[], MemEntry::ikey)
    }

    fn value(&self) -> &[u8] {
        self.entry().map_or(&[], MemEntry::value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ikey::push_seek_key;
    use strata_sstable::ValueKind;

    /// A memtable of `keys` user keys, key `i` with `1 + i % 3` versions.
    fn memtable(keys: u32) -> Arc<MemTable> {
        let m = MemTable::unfiltered(1, 0);
        let mut seq = 1;
        for i in 0..keys {
            for _ in 0..1 + i % 3 {
                let value = format!("v{seq}");
                m.insert(
                    format!("key{i:06}").as_bytes(),
                    seq,
                    ValueKind::Put,
                    value.as_bytes(),
                );
                seq += 1;
            }
        }
        Arc::new(m)
    }

    /// Every entry, in order, as forward steps see them.
    fn forward(m: &Arc<MemTable>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut it = MemTableIter::new(Arc::clone(m));
        let mut all = Vec::new();
        it.seek_to_first().unwrap();
        while it.valid() {
            all.push((it.key().to_vec(), it.value().to_vec()));
            it.next().unwrap();
        }
        all
    }

    #[test]
    fn backward_steps_visit_every_entry_in_reverse() {
        let m = memtable(2000);
        let all = forward(&m);
        assert_eq!(all.len(), 2000 + 1999);
        assert!(all
            .windows(2)
            .all(|w| IKey::new(&w[0].0) < IKey::new(&w[1].0)));
        let mut it = MemTableIter::new(Arc::clone(&m));
        it.seek_to_last().unwrap();
        for (k, v) in all.iter().rev() {
            assert!(it.valid());
            assert_eq!((it.key(), it.value()), (&k[..], &v[..]));
            it.prev().unwrap();
        }
        assert!(!it.valid());
        assert_eq!(it.run_level, LONGEST_RUN_LEVEL, "runs grew along the scan");
        it.seek_for_prev(&all[100].0).unwrap();
        assert_eq!(it.run_level, FIRST_RUN_LEVEL, "a seek starts short");
        it.prev().unwrap();
        assert_eq!(it.key(), &all[99].0[..]);
        it.seek_to_first().unwrap();
        it.prev().unwrap();
        // An iterator that ran off the front stays there.
        it.prev().unwrap();
        it.next().unwrap();
        assert!(!it.valid());
    }

    /// A random walk of steps both ways, seeks and jumps to either end,
    /// checked against the entries in order at every step.
    #[test]
    fn a_random_walk_matches_the_entries_in_order() {
        let m = memtable(3000);
        let all = forward(&m);
        let mut it = MemTableIter::new(Arc::clone(&m));
        let mut at: Option<usize> = None;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..40_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let pick = rng % 100;
            let target = (rng >> 8) as usize % all.len();
            match pick {
                0..=39 => {
                    it.next().unwrap();
                    at = at.and_then(|i| (i + 1 < all.len()).then_some(i + 1));
                }
                40..=84 => {
                    it.prev().unwrap();
                    at = at.and_then(|i| i.checked_sub(1));
                }
                85..=89 => {
                    it.seek(&all[target].0).unwrap();
                    at = Some(target);
                }
                90..=94 => {
                    it.seek_for_prev(&all[target].0).unwrap();
                    at = Some(target);
                }
                95..=96 => {
                    it.seek_to_last().unwrap();
                    at = Some(all.len() - 1);
                }
                _ => {
                    it.seek_to_first().unwrap();
                    at = Some(0);
                }
            }
            match at {
                Some(i) => {
                    assert!(it.valid(), "step {step}: expected entry {i}");
                    assert_eq!(
                        (it.key(), it.value()),
                        (&all[i].0[..], &all[i].1[..]),
                        "step {step}: entry {i}"
                    );
                }
                None => {
                    assert!(!it.valid(), "step {step}: expected the end");
                    // Restart somewhere, as a scan would.
                    it.seek(&all[target].0).unwrap();
                    at = Some(target);
                }
            }
        }
    }

    #[test]
    fn an_empty_or_one_entry_memtable_steps_back_to_nothing() {
        let empty = Arc::new(MemTable::unfiltered(1, 0));
        let mut it = MemTableIter::new(Arc::clone(&empty));
        it.seek_to_last().unwrap();
        assert!(!it.valid());
        let mut target = Vec::new();
        push_seek_key(&mut target, b"k", 1 << 40);
        it.seek_for_prev(&target).unwrap();
        assert!(!it.valid());

        let one = memtable(1);
        let mut it = MemTableIter::new(Arc::clone(&one));
        it.seek_for_prev(&target).unwrap();
        assert!(!it.valid(), "k is before key000000");
        target.clear();
        push_seek_key(&mut target, b"z", 1 << 40);
        it.seek_for_prev(&target).unwrap();
        assert_eq!(it.value(), b"v1");
        it.prev().unwrap();
        assert!(!it.valid());
        it.seek_to_last().unwrap();
        assert_eq!(it.value(), b"v1");
        it.next().unwrap();
        assert!(!it.valid(), "ran off the back");
        it.next().unwrap();
        it.prev().unwrap();
        assert!(!it.valid(), "stays off the back");
    }

    /// A reverse scan of the active memtable while a writer inserts keys
    /// between the ones it walks: every entry at or below the scan's
    /// sequence number, in order, whatever the runs taken meanwhile.
    #[test]
    fn a_reverse_scan_sees_every_older_entry_while_a_writer_inserts() {
        let m = Arc::new(MemTable::unfiltered(1, 0));
        let keys = 20_000u32;
        for i in (0..keys).step_by(2) {
            m.insert(
                format!("key{i:06}").as_bytes(),
                u64::from(i) + 1,
                ValueKind::Put,
                b"old",
            );
        }
        let older = forward(&m);
        let newest_older = u64::from(keys);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in (1..keys).step_by(2) {
                    let seq = newest_older + 1 + u64::from(i);
                    m.insert(format!("key{i:06}").as_bytes(), seq, ValueKind::Put, b"new");
                }
            });
            for _ in 0..3 {
                let mut it = MemTableIter::new(Arc::clone(&m));
                it.seek_to_last().unwrap();
                let mut seen = Vec::new();
                while it.valid() {
                    let seq = strata_sstable::parse_internal_key(it.key()).unwrap().seqno;
                    if seq <= newest_older {
                        seen.push((it.key().to_vec(), it.value().to_vec()));
                    } else {
                        assert_eq!(it.value(), b"new");
                    }
                    it.prev().unwrap();
                }
                seen.reverse();
                assert_eq!(seen, older);
            }
        });
    }

    #[test]
    fn seek_for_prev_between_keys_lands_on_the_entry_before() {
        let m = memtable(100);
        let all = forward(&m);
        let mut it = MemTableIter::new(Arc::clone(&m));
        // A user key between key000049 and key000050: the entry before it
        // is key000049's oldest version.
        let mut target = Vec::new();
        push_seek_key(&mut target, b"key000049~", 1 << 40);
        it.seek_for_prev(&target).unwrap();
        let last_49 = all
            .iter()
            .rposition(|(k, _)| k.starts_with(b"key000049"))
            .unwrap();
        assert_eq!(it.key(), &all[last_49].0[..]);
        target.clear();
        push_seek_key(&mut target, b"a", 1 << 40);
        it.seek_for_prev(&target).unwrap();
        assert!(!it.valid());
    }
}
