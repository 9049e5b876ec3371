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
pub use edit::{BlobRefCount, FileMeta, VersionEdit, DEFAULT_KEYSPACE_ID};
pub(crate) use manifest::wal_error_offset;
pub use manifest::{read_manifest, KeyspaceContents, ManifestContents, DEFAULT_KEYSPACE_NAME};
pub use set::read_current_manifest;
pub(crate) use set::VersionSet;
pub(crate) use table_file::FileSource;
pub use table_file::{TableFile, TableOpener};

use crate::error::{table_error, Result};
use crate::iter::{InternalIterator, LevelIter, RangeDelSkipper, TableFileIter, TombstoneSource};
use crate::key_walk::{Base, KeyWalk, Step};

use crate::blob::{BlobFile, BlobResolver};
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_sstable::{BlockReadOptions, Found, ValueKind, VersionsEnd};

/// Number of levels: L0 (overlapping tables, newest first) and L1..L6
/// (each one sorted run of non-overlapping tables).
pub const NUM_LEVELS: usize = 7;

/// The live tables at one point in time.
#[derive(Clone)]
pub struct Version {
    levels: [Arc<[Arc<TableFile>]>; NUM_LEVELS],
    /// Some table holds range tombstones: what delete-only compaction and
    /// a snapshot's release look at, computed once per version instead of
    /// a scan of every table each time.
    has_range_dels: bool,
    /// The tables' range tombstones as iterator sources, built once per
    /// version: an iterator takes clones (a reference count each) instead
    /// of collecting a level's lists, which cost an allocation per source
    /// and a count per table at every iterator.
    tombstones: Arc<VersionTombstones>,
    /// The blob files the tables list, where the version's iterators
    /// resolve references (`None`: no table lists one), found once per
    /// version instead of at every iterator.
    blobs: Option<Arc<BlobResolver>>,
    /// The blob files the tables list, by number (oldest first).
    blob_files: Arc<BTreeMap<u64, Arc<BlobFile>>>,
    /// The garbage compactions found in those blob files (absent: none).
    blob_garbage: Arc<BTreeMap<u64, BlobRefCount>>,
}

/// [`Version::tombstones`]: one source per L0 table (in L0's order) and
/// one per deeper level; `None` where there are none.
#[derive(Default)]
struct VersionTombstones {
    l0: Vec<Option<TombstoneSource>>,
    levels: Vec<Option<TombstoneSource>>,
}

impl VersionTombstones {
    fn new(levels: &[Arc<[Arc<TableFile>]>; NUM_LEVELS]) -> Self {
        let l0 = levels[0]
            .iter()
            .map(|f| {
                f.table()
                    .range_tombstones()
                    .and_then(|t| TombstoneSource::list(Arc::clone(t)))
            })
            .collect();
        let levels = levels[1..]
            .iter()
            .map(|files| {
                TombstoneSource::level(
                    files
                        .iter()
                        .filter_map(|f| f.table().range_tombstones().cloned()),
                )
            })
            .collect();
        VersionTombstones { l0, levels }
    }
}

impl Default for Version {
    fn default() -> Self {
        Version {
            levels: std::array::from_fn(|_| Arc::from(Vec::new())),
            has_range_dels: false,
            tombstones: Arc::default(),
            blobs: None,
            blob_files: Arc::default(),
            blob_garbage: Arc::default(),
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
        let has_range_dels = levels.iter().flatten().any(|f| f.has_range_dels());
        let blobs =
            BlobResolver::new(levels.iter().flatten().map(|f| f.blob_files())).map(Arc::new);
        let blob_files: BTreeMap<u64, Arc<BlobFile>> = levels
            .iter()
            .flatten()
            .flat_map(|f| f.blob_files().iter())
            .map(|b| (b.number(), Arc::clone(b)))
            .collect();
        let levels = levels.map(Arc::from);
        let tombstones = if has_range_dels {
            Arc::new(VersionTombstones::new(&levels))
        } else {
            Arc::default()
        };
        Version {
            levels,
            has_range_dels,
            tombstones,
            blobs,
            blob_files: Arc::new(blob_files),
            blob_garbage: Arc::default(),
        }
    }

    /// The same version with `garbage` as its blob files' garbage (that
    /// of blob files no table lists left out).
    pub(crate) fn with_blob_garbage(mut self, mut garbage: BTreeMap<u64, BlobRefCount>) -> Self {
        garbage.retain(|n, g| self.blob_files.contains_key(n) && *g != BlobRefCount::default());
        self.blob_garbage = Arc::new(garbage);
        self
    }

    /// The blob files the tables list, by number: the oldest first.
    pub(crate) fn blob_files(&self) -> &BTreeMap<u64, Arc<BlobFile>> {
        &self.blob_files
    }

    /// The garbage compactions found in the blob files, by number (a
    /// file without garbage is absent).
    pub fn blob_garbage(&self) -> &BTreeMap<u64, BlobRefCount> {
        &self.blob_garbage
    }

    /// Blob file `number`'s garbage (zero if none was found).
    pub fn blob_garbage_of(&self, number: u64) -> BlobRefCount {
        self.blob_garbage.get(&number).copied().unwrap_or_default()
    }

    /// Where the user-key iterator resolves the blob references of this
    /// version's tables (`None`: they hold none).
    pub(crate) fn blob_resolver(&self) -> Option<Arc<BlobResolver>> {
        self.blobs.clone()
    }

    /// Whether some table of this version holds range tombstones.
    pub fn has_range_dels(&self) -> bool {
        self.has_range_dels
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

    /// Walk `user_key`'s versions at or below `walk.at` through the
    /// tables, newest first (see [`KeyWalk`]): a table that answers with
    /// an operand is walked on within its data block, then asked again
    /// below the operand only if the block ended, and the walk goes on to
    /// the older tables from where it is, never from L0 again.
    pub(crate) fn walk(
        &self,
        user_key: &[u8],
        walk: &mut KeyWalk,
        blocks: BlockReadOptions,
    ) -> Result<Step> {
        for file in self.levels[0].iter() {
            if file.contains_key(user_key) {
                if let Step::Decided(v) = walk_table(file, user_key, walk, blocks)? {
                    return Ok(Step::Decided(v));
                }
            }
        }
        for files in &self.levels[1..] {
            let i = files.partition_point(|f| f.meta.ends_before(user_key));
            if let Some(file) = files.get(i) {
                if file.meta.may_contain(user_key) {
                    if let Step::Decided(v) = walk_table(file, user_key, walk, blocks)? {
                        return Ok(Step::Decided(v));
                    }
                }
            }
        }
        Ok(Step::Continue)
    }

    /// Add one internal iterator per L0 table and one per non-empty deeper
    /// level to `out`, newest first, reading blocks as `blocks` says, and
    /// each one's range tombstones to `range_dels` in the same order.
    pub fn add_iterators(
        &self,
        out: &mut Vec<Box<dyn InternalIterator>>,
        range_dels: &mut RangeDelSkipper,
        blocks: BlockReadOptions,
    ) {
        let tombstones = &*self.tombstones;
        // Blob references pass through unresolved: the user-key iterator
        // resolves the one it returns (`blob_resolver`).
        for (n, file) in self.levels[0].iter().enumerate() {
            out.push(Box::new(TableFileIter::new(Arc::clone(file), blocks)));
            range_dels.push(tombstones.l0.get(n).cloned().flatten());
        }
        for (n, files) in self.levels[1..].iter().enumerate() {
            if !files.is_empty() {
                out.push(Box::new(LevelIter::new(Arc::clone(files), blocks)));
                range_dels.push(tombstones.levels.get(n).cloned().flatten());
            }
        }
    }
}

/// [`Version::walk`] in one table, its range tombstones included: a
/// version newer than the newest tombstone covering the key is taken (an
/// operand and the walk goes on in the same block); a covered one, or a
/// covering tombstone with no version above it, deletes the key, and by
/// the source-order invariant every version in an older table too.
fn walk_table(
    file: &TableFile,
    user_key: &[u8],
    walk: &mut KeyWalk,
    blocks: BlockReadOptions,
) -> Result<Step> {
    let table = file.table();
    let covered_at = table.max_covering_tombstone(user_key, walk.at);
    let mut decided: Option<Base> = None;
    let mut blob_error: Option<crate::error::Error> = None;
    loop {
        let at = walk.at;
        let mut visit = |f: Found| {
            if covered_at.is_some_and(|t| f.seqno <= t) {
                decided = Some(Base::None);
                return false;
            }
            if f.kind == ValueKind::BlobIndex {
                // A blob reference is the put of the value it points to.
                match file.resolve_blob(&f.value, user_key) {
                    Ok(value) => decided = walk.visit(f.seqno, ValueKind::Put, || value),
                    Err(e) => {
                        blob_error = Some(e);
                        return false;
                    }
                }
                return decided.is_none();
            }
            decided = walk.visit(f.seqno, f.kind, || f.value);
            decided.is_none()
        };
        let end = table
            .get_versions(user_key, at, blocks, &mut visit)
            .map_err(|e| table_error(file.path(), e))?;
        if let Some(e) = blob_error.take() {
            return Err(e);
        }
        if end == VersionsEnd::Filtered {
            crate::statistics::note_bloom_useful();
        }
        if let Some(v) = decided {
            return Ok(Step::Decided(v));
        }
        // Older versions may start the next block: ask below the last
        // operand taken (`walk.at` moved there).
        if end != VersionsEnd::BlockEnded {
            break;
        }
    }
    Ok(match covered_at {
        Some(_) => Step::Decided(Base::None),
        None => Step::Continue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFileSystem;
    use crate::options::Options;
    use std::path::PathBuf;
    use strata_sstable::{SeqNo, TableBuilder, TableOptions, ValueKind};

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
                blob_files: Vec::new(),
                blob_refs: Vec::new(),
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

    /// Point entries `(key, seqno)` and range tombstones of one table.
    type TableContents<'a> = (
        &'a [(&'a str, SeqNo)],
        &'a [(&'a str, Option<&'a str>, SeqNo)],
    );

    /// A version of the given tables per level, each table's bounds and
    /// seqnos as its builder reports them.
    fn version_of(levels_contents: &[(usize, TableContents<'_>)]) -> Version {
        let fs = Arc::new(MemFileSystem::new());
        let dir = PathBuf::from("/db");
        let opener = TableOpener::new(fs.clone(), dir.clone(), &Options::default());
        let mut levels: [Vec<Arc<TableFile>>; NUM_LEVELS] = Default::default();
        for (number, (level, (points, tombstones))) in (1..).zip(levels_contents) {
            let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).unwrap();
            for &(key, seqno) in points.iter() {
                let value = format!("{key}{seqno}");
                b.add(key.as_bytes(), seqno, ValueKind::Put, value.as_bytes())
                    .unwrap();
            }
            for &(start, end, seqno) in tombstones.iter() {
                b.add_range_tombstone(start.as_bytes(), end.map(str::as_bytes), seqno)
                    .unwrap();
            }
            let seqnos = points
                .iter()
                .map(|p| p.1)
                .chain(tombstones.iter().map(|t| t.2));
            let (smallest_seqno, largest_seqno) = (seqnos.clone().min(), seqnos.max());
            let built = b.finish().unwrap();
            fs.write_durable(&crate::filename::table_path(&dir, number), &built.writer);
            let meta = FileMeta {
                number,
                size: built.file_size,
                smallest: built.bounds.smallest,
                largest: built.bounds.largest,
                largest_bound: built.bounds.largest_bound,
                smallest_seqno: smallest_seqno.unwrap(),
                largest_seqno: largest_seqno.unwrap(),
                blob_files: Vec::new(),
                blob_refs: Vec::new(),
            };
            levels[*level].push(opener.open(meta, 1).unwrap());
        }
        Version::from_levels(levels)
    }

    /// The `key value` pairs a scan of `v` at `seq` shows, forward and
    /// backward (checked equal).
    fn scan(v: &Version, seq: SeqNo) -> Vec<String> {
        let mut children = Vec::new();
        let mut range_dels = RangeDelSkipper::new(seq);
        v.add_iterators(&mut children, &mut range_dels, BlockReadOptions::default());
        let merged = crate::iter::MergingIter::with_range_dels(children, range_dels);
        let mut it = crate::iter::DbIter::new(merged, seq, None, None);
        let entry = |it: &crate::iter::DbIter| {
            format!(
                "{} {}",
                String::from_utf8_lossy(it.key()),
                String::from_utf8_lossy(it.value())
            )
        };
        let mut forward = Vec::new();
        it.seek_to_first().unwrap();
        while it.valid() {
            forward.push(entry(&it));
            it.next().unwrap();
        }
        let mut backward = Vec::new();
        it.seek_to_last().unwrap();
        while it.valid() {
            backward.push(entry(&it));
            it.prev().unwrap();
        }
        backward.reverse();
        assert_eq!(forward, backward, "at {seq}");
        forward
    }

    #[test]
    fn iterators_apply_the_tombstones_of_l0_tables_and_of_each_levels_tables() {
        let v = version_of(&[
            // L0: [f, g)@20 over everything older; g@21 beside it.
            (0, (&[("g", 21)], &[("f", Some("g"), 20)])),
            // L1, two tables meeting at d: [b, d)@10 with a newer a@11;
            // [d, f)@13 with e@14, newer than it.
            (1, (&[("a", 11)], &[("b", Some("d"), 10)])),
            (1, (&[("e", 14)], &[("d", Some("f"), 13)])),
            // L2: a..g @1..7.
            (
                2,
                (
                    &[
                        ("a", 1),
                        ("b", 2),
                        ("c", 3),
                        ("d", 4),
                        ("e", 5),
                        ("f", 6),
                        ("g", 7),
                    ],
                    &[],
                ),
            ),
        ]);
        assert_eq!(v.files(1)[0].meta.largest_bound, LargestBound::Excluded);
        assert_eq!(scan(&v, 100), ["a a11", "e e14", "g g21"]);
        assert_eq!(
            scan(&v, 12),
            ["a a11", "d d4", "e e5", "f f6", "g g7"],
            "only [b, d) is visible at 12"
        );
        assert_eq!(
            scan(&v, 9),
            ["a a1", "b b2", "c c3", "d d4", "e e5", "f f6", "g g7"]
        );
    }

    #[test]
    fn a_get_at_a_tables_exclusive_end_reads_the_next_table() {
        let v = level_meeting_at_c();
        let get = |key: &[u8]| {
            v.walk(key, &mut KeyWalk::new(10), BlockReadOptions::default())
                .unwrap()
        };
        for key in [&b"a"[..], b"b", b"c", b"d"] {
            let found = get(key);
            assert!(
                matches!(&found, Step::Decided(Base::Value(value)) if value.as_ref() == key),
                "{key:?}: {found:?}"
            );
        }
        assert_eq!(get(b"bb"), Step::Continue);
    }
}
