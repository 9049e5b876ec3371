//! The active memtable of every keyspace: what a write group inserts into.
//!
//! The leader sequencing a group hands it the set current then; a
//! rotation (one keyspace's memtable full, or a flush asked for) replaces
//! the set with one holding a fresh memtable for that keyspace, and groups
//! sequenced before keep inserting into the set they were given.

use super::MemTable;
use crate::batch::WriteBatch;
use std::sync::Arc;
use strata_sstable::SeqNo;

/// The active memtables, by keyspace id. Immutable: changed by building a
/// new set ([`with`](Self::with)).
#[derive(Clone)]
pub(crate) struct ActiveMemTables {
    /// Sorted by keyspace id; the default keyspace (0) always first.
    slots: Vec<(u32, Arc<MemTable>)>,
}

impl ActiveMemTables {
    /// A set holding only the default keyspace's memtable.
    pub fn single(mem: Arc<MemTable>) -> Self {
        ActiveMemTables {
            slots: vec![(0, mem)],
        }
    }

    /// Keyspace `id`'s memtable, `None` if it is not in the set (dropped).
    #[inline]
    pub fn get(&self, id: u32) -> Option<&Arc<MemTable>> {
        match self.slots.first() {
            Some((first, mem)) if *first == id => Some(mem),
            _ => self
                .slots
                .binary_search_by_key(&id, |(k, _)| *k)
                .ok()
                .map(|i| &self.slots[i].1),
        }
    }

    /// This set with keyspace `id`'s memtable replaced by `mem` (added if
    /// absent), or removed when `mem` is `None`.
    pub fn with(&self, id: u32, mem: Option<Arc<MemTable>>) -> Self {
        let mut slots = self.slots.clone();
        match (slots.binary_search_by_key(&id, |(k, _)| *k), mem) {
            (Ok(i), Some(mem)) => slots[i].1 = mem,
            (Ok(i), None) => {
                slots.remove(i);
            }
            (Err(i), Some(mem)) => slots.insert(i, (id, mem)),
            (Err(_), None) => {}
        }
        ActiveMemTables { slots }
    }

    /// Every (keyspace id, memtable), by id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Arc<MemTable>)> {
        self.slots.iter().map(|(id, mem)| (*id, mem))
    }

    /// Note that a write not in the WAL goes into the memtables.
    pub fn mark_unlogged(&self, batch_keyspaces: &[u32]) {
        for &id in batch_keyspaces {
            if let Some(mem) = self.get(id) {
                mem.mark_unlogged();
            }
        }
    }

    /// Insert `batch`'s records, numbered from `first_seq`, each into its
    /// keyspace's memtable. Records of a keyspace not in the set are
    /// skipped: it was dropped after the write was checked, and the write
    /// counts as made just before the drop.
    pub fn insert(&self, first_seq: SeqNo, batch: &WriteBatch) {
        match batch.keyspaces() {
            [id] => {
                if let Some(mem) = self.get(*id) {
                    mem.insert_batch(first_seq, batch.iter().flatten());
                }
            }
            ids => {
                for &id in ids {
                    let Some(mem) = self.get(id) else { continue };
                    let entries = (first_seq..)
                        .zip(batch.iter().flatten())
                        .filter(move |(_, op)| op.keyspace == id);
                    mem.insert_entries(entries);
                }
            }
        }
    }
}
