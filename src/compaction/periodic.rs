//! Periodic compaction (RocksDB: `periodic_compaction_seconds`): a table
//! older than the period is compacted even when no level needs it, so
//! expired values, values a compaction filter would remove and shadowed
//! versions give their space back although nothing new is written over
//! them. A table's age is its `strata.creation_time` property (every
//! strata table has one; set from `Options::clock`); a compaction's
//! outputs are new tables, so a rewritten table is young again.

use super::picker::{busy, key_range, level_targets, overlapping, Compaction};
use crate::options::Options;
use crate::version::{TableFile, Version};
use std::sync::Arc;

/// The compaction of the oldest table past the period, if any: an L0
/// table takes every L0 table into the base level (they overlap); a table
/// of another level goes one level down with what it overlaps there; a
/// last-level table is rewritten in place. Never a trivial move: a moved
/// table would be as old as before.
pub(crate) fn pick_periodic(v: &Arc<Version>, o: &Options, now_secs: u64) -> Option<Compaction> {
    if o.periodic_compaction_seconds == 0 {
        return None;
    }
    let cutoff = now_secs.checked_sub(o.periodic_compaction_seconds)?;
    let oldest = (0..o.num_levels)
        .flat_map(|level| v.files(level).iter().map(move |f| (level, f)))
        .filter(|(_, f)| !busy(f))
        .map(|(level, f)| (f.table().properties().creation_time, level, f))
        .filter(|&(created, _, _)| created <= cutoff)
        .min_by_key(|&(created, level, _)| (created, level))?;
    let (_, level, f) = oldest;
    rewrite_one_table(v, o, level, f)
}

/// The compaction that rewrites table `f` of `level`: at L0 every L0
/// table into the base level (they overlap); at another level `f` one
/// level down with what it overlaps there; at the last level `f` in place.
/// Never a trivial move (a moved table keeps what the rewrite is for);
/// `None` when an input is busy. Shared by periodic compaction and forced
/// blob garbage collection.
pub(crate) fn rewrite_one_table(
    v: &Arc<Version>,
    o: &Options,
    level: usize,
    f: &Arc<TableFile>,
) -> Option<Compaction> {
    let last = o.num_levels - 1;
    let (inputs, output_level) = match level {
        0 => (
            v.files(0).to_vec(),
            level_targets(v, o).base_level.max(1).min(last),
        ),
        l if l >= last => (vec![Arc::clone(f)], l),
        l => (vec![Arc::clone(f)], l + 1),
    };
    let overlaps = if output_level == level {
        Vec::new()
    } else {
        overlapping(
            v.files(output_level),
            &key_range(inputs.iter().map(|f| &f.meta))?,
        )
    };
    if inputs.iter().chain(overlaps.iter()).any(busy) {
        return None;
    }
    let mut c = Compaction::new(v, level, output_level, inputs, overlaps);
    c.trivial_move = false;
    Some(c)
}
