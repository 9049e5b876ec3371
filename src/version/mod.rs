//! Versions: which tables are live, per level. A `Version` is immutable;
//! flushes and compactions produce a new one through a [`VersionEdit`]
//! logged in the MANIFEST by the [`VersionSet`]. Readers pin the version
//! they started on, so its tables stay readable until they finish.

mod bounds;
mod edit;
pub(crate) mod invariants;
mod manifest;
mod set;
mod table_file;

pub use bounds::{KeyRange, LargestBound};
pub use edit::{FileMeta, VersionEdit, DEFAULT_KEYSPACE_ID};
pub(crate) use manifest::wal_error_offset;
pub use manifest::{read_manifest, KeyspaceContents, ManifestContents, DEFAULT_KEYSPACE_NAME};
pub use set::read_current_manifest;
pub(crate) use set::VersionSet;
pub use table_file::{TableFile, TableOpener};

use crate::error::{table_error, Result};
use crate::iter::{InternalIterator, LevelIter, TableFileIter};
use crate::memtable::Lookup;
use bytes::Bytes;
use std::sync::Arc;
use strata_sstable::{BlockReadOptions, SeqNo, ValueKind};

/// Number of levels: L0 (overlapping tables, newest first) and L1..L6
/// (each one sorted run of non-overlapping tables).
pub const NUM_LEVELS: usize = 7;

/// The live tables at one point in time.
#[derive(Clone)]
pub struct Version {
    levels: [Arc<[Arc<TableFile>]>; NUM_LEVELS],
}

impl Default for Version {
    fn default() -> Self {
        Version {
            levels: std::array::from_fn(|_| Arc::from(Vec::new())),
        }
    }
}

impl Version {
    /// Build a version from per-level file lists, putting each level in its
    /// canonical order (L0 newest first, L1+ by smallest key).
    pub fn from_levels(mut levels: [Vec<Arc<TableFile>>; NUM_LEVELS]) -> Self {
        levels[0].sort_by(|a, b| {
            (b.meta.largest_seqno, b.meta.number).cmp(&(a.meta.largest_seqno, a.meta.number))
        });
        for level in &mut levels[1..] {
            level.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
        }
        Version {
            levels: levels.map(Arc::from),
        }
    }

    /// The tables of `level`, in the level's order.
    pub fn files(&self, level: usize) -> &Arc<[Arc<TableFile>]> {
        &self.levels[level]
    }

    /// Every live table, level by level.
    pub fn all_files(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(level, files)| files.iter().map(move |f| (level, f)))
    }

    /// Total bytes of the tables in `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|f| f.meta.size).sum()
    }

    /// The newest version of `user_key` at or below `seqno` in the tables,
    /// their blocks read as `blocks` says.
    pub fn get(
        &self,
        user_key: &[u8],
        seqno: SeqNo,
        blocks: BlockReadOptions,
    ) -> Result<Lookup<Bytes>> {
        for file in self.levels[0].iter() {
            if file.contains_key(user_key) {
                if let Some(found) = lookup(file, user_key, seqno, blocks)? {
                    return Ok(found);
                }
            }
        }
        for files in &self.levels[1..] {
            let i = files.partition_point(|f| f.meta.ends_before(user_key));
            if let Some(file) = files.get(i) {
                if file.meta.may_contain(user_key) {
                    if let Some(found) = lookup(file, user_key, seqno, blocks)? {
                        return Ok(found);
                    }
                }
            }
        }
        Ok(Lookup::Absent)
    }

    /// Add one internal iterator per L0 table and one per non-empty deeper
    /// level to `out`, reading blocks as `blocks` says.
    pub fn add_iterators(
        &self,
        out: &mut Vec<Box<dyn InternalIterator>>,
        blocks: BlockReadOptions,
    ) {
        for file in self.levels[0].iter() {
            out.push(Box::new(TableFileIter::new(Arc::clone(file), blocks)));
        }
        for files in &self.levels[1..] {
            if !files.is_empty() {
                out.push(Box::new(LevelIter::new(Arc::clone(files), blocks)));
            }
        }
    }
}

/// The answer of one table for `user_key` at `seqno`, its range
/// tombstones included: a point newer than the newest tombstone covering
/// the key decides; otherwise a covering tombstone deletes the key, and by
/// the source-order invariant (ARCHITECTURE.md, "Range deletes") every
/// version in an older table too, so the caller stops. The tombstones are
/// in memory: the check costs a binary search and no I/O, and it comes
/// first so that a bloom miss cannot hide a covered key as absent.
fn lookup(
    file: &TableFile,
    user_key: &[u8],
    seqno: SeqNo,
    blocks: BlockReadOptions,
) -> Result<Option<Lookup<Bytes>>> {
    let table = file.table();
    let covered_at = table.max_covering_tombstone(user_key, seqno);
    let found = table
        .get_with_options(user_key, seqno, blocks)
        .map_err(|e| table_error(file.path(), e))?;
    Ok(match found {
        Some(f) if covered_at.is_none_or(|t| f.seqno > t) => Some(match f.kind {
            ValueKind::Put => Lookup::Found(f.value),
            // A table's point lookup yields point kinds only.
            ValueKind::Delete | ValueKind::RangeDelete => Lookup::Deleted,
        }),
        _ => covered_at.map(|_| Lookup::Deleted),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFileSystem;
    use crate::options::Options;
    use std::path::PathBuf;
    use strata_sstable::{TableBuilder, TableOptions};

    /// L1 as a range tombstone cut at `c` leaves it: table 1 holds `a` and
    /// `b` and ends just before `c`, table 2 holds `c` and `d`.
    fn level_meeting_at_c() -> Version {
        let fs = Arc::new(MemFileSystem::new());
        let dir = PathBuf::from("/db");
        let opener = TableOpener::new(fs.clone(), dir.clone(), &Options::default());
        let table = |number: u64, keys: [&[u8]; 2], largest: &[u8], bound: LargestBound| {
            let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).unwrap();
            for key in keys {
                b.add(key, number, ValueKind::Put, key).unwrap();
            }
            let built = b.finish().unwrap();
            fs.write_durable(&crate::filename::table_path(&dir, number), &built.writer);
            let meta = FileMeta {
                number,
                size: built.file_size,
                smallest: keys[0].to_vec(),
                largest: largest.to_vec(),
                largest_bound: bound,
                smallest_seqno: number,
                largest_seqno: number,
            };
            opener.open(meta, 1).unwrap()
        };
        let mut levels: [Vec<Arc<TableFile>>; NUM_LEVELS] = Default::default();
        levels[1] = vec![
            table(1, [b"a", b"b"], b"c", LargestBound::Excluded),
            table(2, [b"c", b"d"], b"d", LargestBound::Included),
        ];
        Version::from_levels(levels)
    }

    #[test]
    fn a_get_at_a_tables_exclusive_end_reads_the_next_table() {
        let v = level_meeting_at_c();
        for key in [&b"a"[..], b"b", b"c", b"d"] {
            let found = v.get(key, 10, BlockReadOptions::default()).unwrap();
            assert!(
                matches!(&found, Lookup::Found(value) if value.as_ref() == key),
                "{key:?}: {found:?}"
            );
        }
        let found = v.get(b"bb", 10, BlockReadOptions::default()).unwrap();
        assert!(matches!(found, Lookup::Absent), "{found:?}");
    }
}
