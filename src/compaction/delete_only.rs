//! Delete-only compaction (Pebble's): a table that range tombstones of a
//! newer source cover for every reader is removed by a manifest edit
//! alone. Nothing is read or written, so a `delete_range` over most of the
//! database frees its space without rewriting it.
//!
//! The tombstones of one source (an L0 table, or a whole sorted level)
//! form *coalesced spans*: their stacks in key order, where a stack ending
//! at the key the next starts with continues the span. That joins a
//! tombstone that a compaction cut across several output tables again.
//! A table `F` of an older source (a deeper level, or an older L0 table)
//! is deleted when:
//!
//! 1. one span holds `F`'s whole range: its start at or before
//!    `F.smallest`, its end at or after `F`'s end (`FileMeta`'s bound);
//! 2. every stack of that span over `F` holds a seqno above
//!    `F.largest_seqno`; call the oldest such seqno of each stack its
//!    *needed* seqno, and `X` the newest needed seqno of the span;
//! 3. no snapshot lies in `[F.smallest_seqno, X)`;
//! 4. `F` is not being compacted, and lies in the range asked for.
//!
//! Why no reader can tell. A reader at `r < F.smallest_seqno` sees nothing
//! of `F`, neither its points nor its own tombstones. Any other reader is
//! at `r >= X` by (3) (the current one too: `X` is in a table, so it is
//! published). For each key `k` of `F`, the needed seqno of the stack
//! holding `k` is at most `X`, so that reader sees it, and it is newer than
//! every version of `k` in `F` (2): they are all deleted for it. A key of a
//! deeper source that one of `F`'s own tombstones hid from it lies in
//! `F`'s range and is older than `F`, so the same tombstone hides it.
//!
//! This is the plan's "no snapshot in `[F.smallest_seqno,
//! span.min_seqno)`" with the seqno taken per table: a tombstone split
//! across stacks, or several overlapping ones, cover `F` as long as each
//! part of `F` has a tombstone newer than `F` that the same readers see.

use super::picker::{busy, Compaction};
use super::retain::Stripes;
use crate::version::{FileMeta, KeyRange, LargestBound, TableFile, Version, NUM_LEVELS};
use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;
use strata_sstable::{SeqNo, TombstoneStack};

/// A delete-only compaction of the level with the most bytes covered (see
/// the module comment), among tables overlapping `within`; `None` if no
/// table is covered. REQUIRES: the caller holds the version set lock (as
/// for every pick), and read `stripes` after `v` was installed: a snapshot
/// missing from them is then newer than every tombstone of `v`.
pub(crate) fn pick_delete_only(
    v: &Arc<Version>,
    stripes: &Stripes,
    within: &KeyRange,
) -> Option<Compaction> {
    let (level, victims) = covered_tables(v, stripes, within)?;
    Some(Compaction::delete_only(v, level, victims))
}

/// The level with the most bytes of covered tables, and those tables.
/// Reads nothing: tombstones and bounds are in memory.
pub(crate) fn covered_tables(
    v: &Version,
    stripes: &Stripes,
    within: &KeyRange,
) -> Option<(usize, Vec<Arc<TableFile>>)> {
    if !v.has_range_dels() {
        return None;
    }
    let mut victims: [Vec<Arc<TableFile>>; NUM_LEVELS] = Default::default();
    let mut chosen: HashSet<u64> = HashSet::new();
    let mut collect = |spans: &Spans<'_>, level: usize, files: &[Arc<TableFile>]| {
        for f in files {
            if busy(f) || chosen.contains(&f.meta.number) || !f.meta.overlaps(within) {
                continue;
            }
            if spans.cover(&f.meta, stripes) {
                chosen.insert(f.meta.number);
                victims[level].push(Arc::clone(f));
            }
        }
    };
    // Each L0 table is a source of its own, over the older L0 tables and
    // every sorted level.
    let l0 = v.files(0);
    for (i, t) in l0.iter().enumerate().filter(|(_, t)| t.has_range_dels()) {
        let spans = Spans::new([t]);
        collect(&spans, 0, l0.get(i + 1..).unwrap_or_default());
        for level in 1..NUM_LEVELS {
            collect(&spans, level, v.files(level));
        }
    }
    // A sorted level is one source over the levels below it.
    for level in 1..NUM_LEVELS {
        let spans = Spans::new(v.files(level).iter().filter(|t| t.has_range_dels()));
        if spans.stacks.is_empty() {
            continue;
        }
        for deeper in level + 1..NUM_LEVELS {
            collect(&spans, deeper, v.files(deeper));
        }
    }
    let bytes = |files: &[Arc<TableFile>]| files.iter().map(|f| f.meta.size).sum::<u64>();
    let level = (0..NUM_LEVELS)
        .filter(|&l| !victims[l].is_empty())
        .max_by_key(|&l| bytes(&victims[l]))?;
    Some((level, std::mem::take(&mut victims[level])))
}

/// The range tombstones of one source, stacks in key order.
struct Spans<'v> {
    stacks: Vec<TombstoneStack<'v>>,
}

impl<'v> Spans<'v> {
    /// `tables` must be one L0 table, or tables of one sorted level in key
    /// order (their stacks then come in key order too, not overlapping).
    fn new(tables: impl IntoIterator<Item = &'v Arc<TableFile>>) -> Spans<'v> {
        let stacks = tables
            .into_iter()
            .filter_map(|t| t.table().range_tombstones())
            .flat_map(|list| list.iter())
            .collect();
        Spans { stacks }
    }

    /// Whether one span covers `f` for every reader (conditions 1 to 3 of
    /// the module comment).
    fn cover(&self, f: &FileMeta, stripes: &Stripes) -> bool {
        let first = self.stacks.partition_point(|s| !s.ends_after(&f.smallest));
        let mut newest_needed: SeqNo = 0;
        let mut previous_end: Option<&[u8]> = None;
        for (n, s) in self.stacks.iter().skip(first).enumerate() {
            let continues = if n == 0 {
                s.start() <= f.smallest.as_slice()
            } else {
                previous_end == Some(s.start())
            };
            if !continues {
                return false;
            }
            // Descending: the last seqno above F's newest entry.
            let seqnos = s.seqnos();
            let newer = seqnos.partition_point(|&t| t > f.largest_seqno);
            let Some(&needed) = newer.checked_sub(1).and_then(|i| seqnos.get(i)) else {
                return false;
            };
            newest_needed = newest_needed.max(needed);
            if reaches_end_of(s, f) {
                return !stripes.any_in(f.smallest_seqno, newest_needed);
            }
            previous_end = s.end();
        }
        false
    }
}

/// Whether stack `s` reaches `f`'s end: holds `f`'s largest key when it is
/// inclusive, ends at or after it when exclusive, has no end when `f` has
/// none.
fn reaches_end_of(s: &TombstoneStack<'_>, f: &FileMeta) -> bool {
    let (end, bound) = match s.end() {
        Some(end) => (end, LargestBound::Excluded),
        None => (&[][..], LargestBound::Unbounded),
    };
    LargestBound::cmp_end(end, bound, &f.largest, f.largest_bound) != Ordering::Less
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filename::table_path;
    use crate::fs::MemFileSystem;
    use crate::options::Options;
    use crate::version::TableOpener;
    use std::path::PathBuf;
    use strata_sstable::{TableBuilder, TableOptions, ValueKind};

    /// Builds tables in a `MemFileSystem` and opens them.
    struct Tables {
        fs: Arc<MemFileSystem>,
        opener: TableOpener,
        next: u64,
    }

    /// A table to build: point keys at one seqno, range tombstones.
    struct Spec<'a> {
        points: &'a [&'a str],
        point_seqno: SeqNo,
        tombstones: &'a [(&'a str, Option<&'a str>, SeqNo)],
    }

    impl Tables {
        fn new() -> Tables {
            let fs = Arc::new(MemFileSystem::new());
            let opener = TableOpener::new(fs.clone(), PathBuf::from("/db"), &Options::default());
            Tables {
                fs,
                opener,
                next: 1,
            }
        }

        fn table(&mut self, level: usize, spec: Spec<'_>) -> Arc<TableFile> {
            let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).unwrap();
            for key in spec.points {
                b.add(key.as_bytes(), spec.point_seqno, ValueKind::Put, b"v")
                    .unwrap();
            }
            for &(start, end, seqno) in spec.tombstones {
                b.add_range_tombstone(start.as_bytes(), end.map(str::as_bytes), seqno)
                    .unwrap();
            }
            let built = b.finish().unwrap();
            let number = self.next;
            self.next += 1;
            self.fs
                .write_durable(&table_path(&self.opener.dir, number), &built.writer);
            self.opener
                .open(FileMeta::from_built(number, &built), level)
                .unwrap()
        }
    }

    fn points<'a>(keys: &'a [&'a str], seqno: SeqNo) -> Spec<'a> {
        Spec {
            points: keys,
            point_seqno: seqno,
            tombstones: &[],
        }
    }

    fn tombstones<'a>(list: &'a [(&'a str, Option<&'a str>, SeqNo)]) -> Spec<'a> {
        Spec {
            points: &[],
            point_seqno: 0,
            tombstones: list,
        }
    }

    fn version(levels: Vec<(usize, Arc<TableFile>)>) -> Arc<Version> {
        let mut by_level: [Vec<Arc<TableFile>>; NUM_LEVELS] = Default::default();
        for (level, t) in levels {
            by_level[level].push(t);
        }
        Arc::new(Version::from_levels(by_level))
    }

    /// The numbers of the tables a pick over everything would delete,
    /// with `snapshots` live (and 1000 visible).
    fn covered(v: &Version, snapshots: &[SeqNo]) -> Vec<u64> {
        let mut s = snapshots.to_vec();
        s.push(1000);
        let all = KeyRange::inclusive(None, None);
        covered_tables(v, &Stripes::new(s), &all)
            .map(|(_, files)| files.iter().map(|f| f.meta.number).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_wholly_covered_older_table_is_deleted_unless_a_snapshot_sees_it() {
        let mut t = Tables::new();
        let v = version(vec![
            (1, t.table(1, tombstones(&[("a", Some("m"), 20)]))),
            (2, t.table(2, points(&["b", "k"], 10))),
        ]);
        assert_eq!(covered(&v, &[]), vec![2]);
        // Snapshots before the table, or after the tombstone, change
        // nothing: neither sees the table without the tombstone.
        assert_eq!(covered(&v, &[5, 20, 30]), vec![2]);
        // One between sees the points and not the tombstone.
        assert_eq!(covered(&v, &[10]), Vec::<u64>::new());
        assert_eq!(covered(&v, &[19]), Vec::<u64>::new());
    }

    #[test]
    fn a_table_partly_covered_or_newer_than_the_tombstone_stays() {
        let mut t = Tables::new();
        // Reaches past the tombstone's end (m is not covered: [a, m)).
        let v = version(vec![
            (1, t.table(1, tombstones(&[("a", Some("m"), 20)]))),
            (2, t.table(2, points(&["b", "m"], 10))),
        ]);
        assert!(covered(&v, &[]).is_empty());
        // Starts before the tombstone.
        let v = version(vec![
            (1, t.table(1, tombstones(&[("c", Some("m"), 20)]))),
            (2, t.table(2, points(&["b", "d"], 10))),
        ]);
        assert!(covered(&v, &[]).is_empty());
        // Holds a version as new as the tombstone (which a real tree never
        // has below it): stays.
        let v = version(vec![
            (1, t.table(1, tombstones(&[("a", Some("m"), 20)]))),
            (2, t.table(2, points(&["b", "d"], 20))),
        ]);
        assert!(covered(&v, &[]).is_empty());
        // A tombstone in a deeper level covers nothing above it.
        let v = version(vec![
            (1, t.table(1, points(&["b", "d"], 10))),
            (2, t.table(2, tombstones(&[("a", Some("m"), 20)]))),
        ]);
        assert!(covered(&v, &[]).is_empty());
    }

    #[test]
    fn a_tombstone_cut_across_tables_of_a_level_covers_as_one_span() {
        let mut t = Tables::new();
        // [a, z)@20 as a compaction leaves it in L1: [a, f) and [f, z).
        // The L3 table [c, k] lies across the cut. With a gap at f, it
        // is not covered.
        let whole = version(vec![
            (1, t.table(1, tombstones(&[("a", Some("f"), 20)]))),
            (1, t.table(1, tombstones(&[("f", Some("z"), 20)]))),
            (3, t.table(3, points(&["c", "k"], 10))),
        ]);
        assert_eq!(covered(&whole, &[]), vec![3]);
        let gap = version(vec![
            (1, t.table(1, tombstones(&[("a", Some("f"), 20)]))),
            (1, t.table(1, tombstones(&[("f\0", Some("z"), 20)]))),
            (3, t.table(3, points(&["c", "k"], 10))),
        ]);
        assert!(covered(&gap, &[]).is_empty());
        // Two overlapping tombstones cover together; a snapshot between
        // the older one and the newer one that the table needs keeps it.
        let mut t = Tables::new();
        let overlapping = version(vec![
            (
                1,
                t.table(1, tombstones(&[("a", Some("g"), 15), ("e", Some("z"), 30)])),
            ),
            (2, t.table(2, points(&["b", "k"], 10))),
        ]);
        assert_eq!(covered(&overlapping, &[]), vec![2]);
        assert_eq!(covered(&overlapping, &[12]), Vec::<u64>::new());
        assert_eq!(covered(&overlapping, &[8, 40]), vec![2]);
    }

    #[test]
    fn older_l0_tables_and_unbounded_ends_are_covered_too() {
        let mut t = Tables::new();
        // Middle L0 table: [c, +inf)@30. The older L0 table under it goes;
        // the newer one above it stays.
        let v = version(vec![
            (0, t.table(0, points(&["d"], 40))),
            (0, t.table(0, tombstones(&[("c", None, 30)]))),
            (0, t.table(0, points(&["e", "f"], 20))),
        ]);
        assert_eq!(covered(&v, &[]), vec![3]);
        assert!(covered(&v, &[25]).is_empty());
        // A table without end (a tombstone of its own) needs a span
        // without end.
        let deeper = version(vec![
            (0, t.table(0, tombstones(&[("c", None, 30)]))),
            (6, t.table(6, tombstones(&[("x", None, 5)]))),
        ]);
        assert_eq!(covered(&deeper, &[]), vec![5]);
        let bounded = version(vec![
            (0, t.table(0, tombstones(&[("c", Some("zzz"), 30)]))),
            (6, t.table(6, tombstones(&[("x", None, 5)]))),
        ]);
        assert!(covered(&bounded, &[]).is_empty());
        // Outside the range asked for: not considered.
        let stripes = Stripes::new(vec![1000]);
        let only_ab = KeyRange::inclusive(Some(b"a"), Some(b"b"));
        assert!(covered_tables(&deeper, &stripes, &only_ab).is_none());
    }
}
