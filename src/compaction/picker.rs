//! Which compaction to run next: level targets, scores, and input choice.
//!
//! Scores: L0 by file count over `level0_file_num_compaction_trigger`
//! (or bytes over `max_bytes_for_level_base`, whichever is larger);
//! levels from the base level down by bytes over their target. The last
//! level has no score: nothing lies below it. The highest score at or
//! above 1 is compacted. See `docs/compaction.md`.

use crate::options::Options;
use crate::version::{FileMeta, KeyRange, TableFile, Version, NUM_LEVELS};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Where L0 compacts to and how big each level may grow.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LevelTargets {
    /// The level L0 compacts into.
    pub base_level: usize,
    /// Target bytes per level (`u64::MAX` for levels with no target).
    pub target_bytes: [u64; NUM_LEVELS],
}

/// One chosen compaction. While it exists its files are marked
/// `being_compacted`, so concurrent picks choose disjoint files; dropping
/// it clears the marks.
pub(crate) struct Compaction {
    /// The level inputs come from.
    pub level: usize,
    /// The level outputs go to.
    pub output_level: usize,
    /// Input tables from `level`.
    pub inputs: Vec<Arc<TableFile>>,
    /// Input tables from `output_level` that overlap `inputs`.
    pub overlaps: Vec<Arc<TableFile>>,
    /// Tables of the level below the output that overlap the inputs: the
    /// output is cut so no output table overlaps too many of them.
    pub grandparents: Vec<Arc<TableFile>>,
    /// The version the compaction was picked from.
    pub version: Arc<Version>,
    /// Move the single input table down by a manifest edit alone.
    pub trivial_move: bool,
    /// Delete the input tables by a manifest edit alone: range tombstones
    /// in newer sources cover them for every reader (`delete_only.rs`).
    /// Nothing is read or written; `output_level` is `level`.
    pub delete_only: bool,
    /// Picked for `compact_range` (for the events it is reported in).
    pub manual: bool,
}

impl Compaction {
    pub(crate) fn new(
        version: &Arc<Version>,
        level: usize,
        output_level: usize,
        inputs: Vec<Arc<TableFile>>,
        overlaps: Vec<Arc<TableFile>>,
    ) -> Compaction {
        let range = key_range(inputs.iter().chain(overlaps.iter()).map(|f| &f.meta));
        let grandparents = match range {
            Some(range) if output_level + 1 < NUM_LEVELS => {
                overlapping(version.files(output_level + 1), &range)
            }
            _ => Vec::new(),
        };
        let trivial_move = overlaps.is_empty() && inputs.len() == 1;
        for f in inputs.iter().chain(overlaps.iter()) {
            let was = f.being_compacted.swap(true, Ordering::AcqRel);
            debug_assert!(!was, "table {} picked twice", f.meta.number);
        }
        Compaction {
            level,
            output_level,
            inputs,
            overlaps,
            grandparents,
            version: Arc::clone(version),
            trivial_move,
            delete_only: false,
            manual: false,
        }
    }

    /// A delete-only compaction of `victims`, tables of `level`.
    pub fn delete_only(
        version: &Arc<Version>,
        level: usize,
        victims: Vec<Arc<TableFile>>,
    ) -> Compaction {
        for f in &victims {
            let was = f.being_compacted.swap(true, Ordering::AcqRel);
            debug_assert!(!was, "table {} picked twice", f.meta.number);
        }
        Compaction {
            level,
            output_level: level,
            inputs: victims,
            overlaps: Vec::new(),
            grandparents: Vec::new(),
            version: Arc::clone(version),
            trivial_move: false,
            delete_only: true,
            manual: false,
        }
    }

    /// Every input table, both levels.
    pub fn all_inputs(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.inputs
            .iter()
            .map(|f| (self.level, f))
            .chain(self.overlaps.iter().map(|f| (self.output_level, f)))
    }

    /// Bytes of input.
    pub fn input_bytes(&self) -> (u64, u64) {
        let sum = |v: &[Arc<TableFile>]| v.iter().map(|f| f.meta.size).sum();
        (sum(&self.inputs), sum(&self.overlaps))
    }
}

impl Drop for Compaction {
    fn drop(&mut self) {
        for f in self.inputs.iter().chain(self.overlaps.iter()) {
            f.being_compacted.store(false, Ordering::Release);
        }
    }
}

/// Level targets. With dynamic level bytes (RocksDB's algorithm), the last
/// level's actual size fixes the targets of the levels above it, each a
/// multiplier smaller, and the base level is the highest level whose target
/// is still at least `max_bytes_for_level_base / multiplier`.
pub(crate) fn level_targets(v: &Version, o: &Options) -> LevelTargets {
    let last = o.num_levels - 1;
    let mult = o.max_bytes_for_level_multiplier;
    let base_max = o.max_bytes_for_level_base;
    let mut target_bytes = [u64::MAX; NUM_LEVELS];
    if !o.level_compaction_dynamic_level_bytes {
        let mut size = base_max as f64;
        for t in target_bytes.iter_mut().take(last).skip(1) {
            *t = size as u64;
            size *= mult;
        }
        return LevelTargets {
            base_level: 1,
            target_bytes,
        };
    }
    let first_non_empty = (1..=last).find(|&l| !v.files(l).is_empty());
    let Some(first_non_empty) = first_non_empty else {
        return LevelTargets {
            base_level: last,
            target_bytes,
        };
    };
    let max_level_size = (1..=last).map(|l| v.level_bytes(l)).max().unwrap_or(0) as f64;
    let base_min = base_max as f64 / mult;
    let mut cur = max_level_size;
    for _ in first_non_empty..last {
        cur /= mult;
    }
    let mut base_level = first_non_empty;
    let base_size = if cur <= base_min {
        base_min + 1.0
    } else {
        while base_level > 1 && cur > base_max as f64 {
            base_level -= 1;
            cur /= mult;
        }
        cur.min(base_max as f64).max(1.0)
    };
    let mut size = base_size;
    for (level, t) in target_bytes
        .iter_mut()
        .enumerate()
        .take(last + 1)
        .skip(base_level)
    {
        if level > base_level {
            size *= mult;
        }
        // No level below base_max: an hourglass-shaped tree would make L1+
        // scores win over a filling L0.
        *t = (size as u64).max(base_max);
    }
    LevelTargets {
        base_level,
        target_bytes,
    }
}

/// Compaction score per level (0 where a level cannot be compacted).
pub(crate) fn level_scores(v: &Version, o: &Options, t: &LevelTargets) -> [f64; NUM_LEVELS] {
    let mut scores = [0.0; NUM_LEVELS];
    let idle = |f: &&Arc<TableFile>| !f.being_compacted.load(Ordering::Acquire);
    let l0: Vec<_> = v.files(0).iter().filter(idle).collect();
    let l0_bytes: u64 = l0.iter().map(|f| f.meta.size).sum();
    scores[0] = (l0.len() as f64 / o.level0_file_num_compaction_trigger as f64)
        .max(l0_bytes as f64 / o.max_bytes_for_level_base as f64);
    for (level, score) in scores
        .iter_mut()
        .enumerate()
        .take(o.num_levels - 1)
        .skip(t.base_level)
    {
        let bytes: u64 = v
            .files(level)
            .iter()
            .filter(idle)
            .map(|f| f.meta.size)
            .sum();
        *score = bytes as f64 / t.target_bytes[level] as f64;
    }
    scores
}

/// Pick the most urgent compaction, or `None` if no level scores at least
/// 1 (or every candidate is busy). REQUIRES: the caller holds the version
/// set lock, so picks and their `being_compacted` marks are serialized.
pub(crate) fn pick_compaction(v: &Arc<Version>, o: &Options) -> Option<Compaction> {
    let targets = level_targets(v, o);
    let scores = level_scores(v, o, &targets);
    let mut levels: Vec<usize> = (0..o.num_levels - 1)
        .filter(|&l| scores[l] >= 1.0)
        .collect();
    levels.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    for level in levels {
        let picked = if level == 0 {
            pick_l0(v, targets.base_level)
        } else {
            pick_level(v, level)
        };
        if picked.is_some() {
            return picked;
        }
    }
    None
}

/// L0 → base: every L0 table (they overlap and must move down oldest
/// first, so only one L0 compaction runs at a time) plus the overlapping
/// base-level tables.
fn pick_l0(v: &Arc<Version>, base_level: usize) -> Option<Compaction> {
    let inputs: Vec<_> = v.files(0).to_vec();
    if inputs.is_empty() || inputs.iter().any(busy) {
        return None;
    }
    let range = key_range(inputs.iter().map(|f| &f.meta))?;
    let overlaps = overlapping(v.files(base_level), &range);
    if overlaps.iter().any(busy) {
        return None;
    }
    Some(Compaction::new(v, 0, base_level, inputs, overlaps))
}

/// Ln → Ln+1: the idle table whose overlap with the next level is smallest
/// relative to its own size (RocksDB's kMinOverlappingRatio).
fn pick_level(v: &Arc<Version>, level: usize) -> Option<Compaction> {
    let next = v.files(level + 1);
    // (overlap ratio, table, its overlaps below)
    type Candidate<'a> = (u128, &'a Arc<TableFile>, Vec<Arc<TableFile>>);
    let mut best: Option<Candidate<'_>> = None;
    for f in v.files(level).iter().filter(|f| !busy(f)) {
        let overlaps = overlapping(next, &f.meta.key_range());
        if overlaps.iter().any(busy) {
            continue;
        }
        let overlap_bytes: u64 = overlaps.iter().map(|g| g.meta.size).sum();
        let ratio = u128::from(overlap_bytes) * 1024 / u128::from(f.meta.size.max(1));
        if best.as_ref().is_none_or(|(r, _, _)| ratio < *r) {
            best = Some((ratio, f, overlaps));
        }
    }
    let (_, f, overlaps) = best?;
    Some(Compaction::new(
        v,
        level,
        level + 1,
        vec![Arc::clone(f)],
        overlaps,
    ))
}

/// A manual compaction of `level`'s tables overlapping `range` into
/// `output_level`; `None` if the level has no such table. `Err(())` if a
/// needed table is busy (retry later).
pub(crate) fn pick_manual(
    v: &Arc<Version>,
    level: usize,
    output_level: usize,
    range: &KeyRange,
) -> Result<Option<Compaction>, ()> {
    let inputs: Vec<_> = if level == 0 {
        // L0 tables overlap one another: take them all, oldest included.
        v.files(0).to_vec()
    } else {
        v.files(level)
            .iter()
            .filter(|f| f.meta.overlaps(range))
            .cloned()
            .collect()
    };
    let Some(inputs_range) = key_range(inputs.iter().map(|f| &f.meta)) else {
        return Ok(None);
    };
    let overlaps = if output_level == level {
        // Rewriting the last level in place: the inputs are the overlap.
        Vec::new()
    } else {
        overlapping(v.files(output_level), &inputs_range)
    };
    if inputs.iter().chain(overlaps.iter()).any(busy) {
        return Err(());
    }
    let mut c = Compaction::new(v, level, output_level, inputs, overlaps);
    // A manual compaction rewrites even a lone table: it exists to drop
    // overwritten versions and tombstones.
    c.trivial_move = false;
    Ok(Some(c))
}

pub(crate) fn busy(f: &Arc<TableFile>) -> bool {
    f.being_compacted.load(Ordering::Acquire)
}

/// The range covering every table of `files` (the smallest start, the
/// greatest end under `LargestBound::cmp_end`); `None` without tables.
pub(crate) fn key_range<'a>(mut files: impl Iterator<Item = &'a FileMeta>) -> Option<KeyRange> {
    let mut range = files.next()?.key_range();
    for f in files {
        range.cover(&f.key_range());
    }
    Some(range)
}

/// The tables of a sorted level (L1+) whose key range meets `range`.
pub(crate) fn overlapping(files: &[Arc<TableFile>], range: &KeyRange) -> Vec<Arc<TableFile>> {
    files[overlapping_span(files, |f| &f.meta, range)].to_vec()
}

/// Whether any table of a sorted level (L1+) meets `range`.
pub(crate) fn any_overlapping(files: &[Arc<TableFile>], range: &KeyRange) -> bool {
    !overlapping_span(files, |f| &f.meta, range).is_empty()
}

/// Where in a sorted level (L1+) the tables whose key range meets `range`
/// lie. A table ending `Excluded(c)` does not meet a range starting at
/// `c`, nor does a range ending `Excluded(c)` meet a table starting there.
fn overlapping_span<T>(
    files: &[T],
    meta: impl Fn(&T) -> &FileMeta,
    range: &KeyRange,
) -> std::ops::Range<usize> {
    let start = files.partition_point(|f| meta(f).ends_before(&range.start));
    let count = files[start..]
        .iter()
        .take_while(|f| meta(f).overlaps(range))
        .count();
    start..start + count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::LargestBound::{self, Excluded, Included, Unbounded};

    fn table(number: u64, smallest: &[u8], largest: &[u8], bound: LargestBound) -> FileMeta {
        FileMeta {
            number,
            size: 100,
            smallest: smallest.to_vec(),
            largest: largest.to_vec(),
            largest_bound: bound,
            smallest_seqno: number,
            largest_seqno: number,
            blob_files: Vec::new(),
            blob_refs: Vec::new(),
        }
    }

    /// The numbers of the tables of `level` overlapping `range`.
    fn overlaps(level: &[FileMeta], range: &KeyRange) -> Vec<u64> {
        level[overlapping_span(level, |f| f, range)]
            .iter()
            .map(|f| f.number)
            .collect()
    }

    /// A level whose tables meet at `c` and at `g`: the first ends just
    /// before `c`, where the second starts; the second holds `g`, the
    /// third starts after it.
    fn level() -> Vec<FileMeta> {
        vec![
            table(1, b"a", b"c", Excluded),
            table(2, b"c", b"g", Included),
            table(3, b"h", b"", Unbounded),
        ]
    }

    #[test]
    fn a_table_ending_excluded_at_c_does_not_pull_in_the_next_starting_at_c() {
        let below = level();
        assert_eq!(overlaps(&below, &below[0].key_range()), vec![1]);
        assert_eq!(
            overlaps(&below, &KeyRange::new(b"a", b"c", Excluded)),
            vec![1]
        );
        assert_eq!(
            overlaps(&below, &KeyRange::new(b"a", b"c", Included)),
            vec![1, 2]
        );
        assert_eq!(
            overlaps(&below, &KeyRange::new(b"c", b"c", Included)),
            vec![2]
        );
        assert_eq!(
            overlaps(&below, &KeyRange::new(b"b", b"h", Excluded)),
            vec![1, 2]
        );
        assert_eq!(
            overlaps(&below, &KeyRange::new(b"g", b"h", Included)),
            vec![2, 3]
        );
        assert_eq!(
            overlaps(&below, &KeyRange::new(b"g\0", b"h", Excluded)),
            Vec::<u64>::new()
        );
        assert_eq!(
            overlaps(&below, &KeyRange::inclusive(Some(b"zz"), None)),
            vec![3]
        );
        assert_eq!(
            overlaps(&below, &KeyRange::inclusive(None, None)),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn the_range_of_several_tables_ends_at_their_latest_end() {
        let below = [table(9, b"c", b"e", Included)];
        // Two inputs ending at c, one exclusively: together they hold c.
        let inputs = [
            table(1, b"a", b"c", Excluded),
            table(2, b"b", b"c", Included),
        ];
        let range = key_range(inputs.iter()).unwrap();
        assert_eq!(range, KeyRange::new(b"a", b"c", Included));
        assert_eq!(overlaps(&below, &range), vec![9]);
        // Both ending just before c: the table starting at c stays out.
        let inputs = [
            table(1, b"b", b"c", Excluded),
            table(2, b"a", b"c", Excluded),
        ];
        let range = key_range(inputs.iter()).unwrap();
        assert_eq!(range, KeyRange::new(b"a", b"c", Excluded));
        assert!(overlaps(&below, &range).is_empty());
        // One without end: the range has none either.
        let inputs = [
            table(1, b"x", b"", Unbounded),
            table(2, b"a", b"c", Included),
        ];
        let range = key_range(inputs.iter()).unwrap();
        assert_eq!(range, KeyRange::new(b"a", b"", Unbounded));
        assert!(key_range(std::iter::empty()).is_none());
    }
}
