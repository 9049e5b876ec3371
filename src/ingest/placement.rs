//! Which level an ingested table goes to, and whether its entries must
//! be numbered (RocksDB: `ExternalSstFileIngestionJob::AssignLevelAndSeqnoForIngestedFile`).
//!
//! Reads look at levels top down and take the first version they find,
//! so a table may go to level `L` only if no level above `L` holds a key
//! of its range (they would hide it) and `L` itself holds none (a sorted
//! level's tables do not overlap). It goes to the deepest such level.
//! Every level is compared by range, not by key: a table whose range
//! only spans a gap of another's still counts as overlapping.
//!
//! Compactions in flight count too: one writing into `L` takes its
//! inputs from `L` and levels above (L0 may compact straight into a
//! deep base level), and may cut an output across a gap of them where
//! the ingested table would sit. So the range spanned by the tables
//! being compacted in any level down to `L` blocks `L` as a table there
//! would. (Compactions are picked under the version set lock the
//! caller holds, so none starts between this look and the edit.)

use crate::version::{KeyRange, Version};
use std::sync::atomic::Ordering;

/// Where one table goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The level.
    pub level: usize,
    /// Whether some table of the keyspace overlaps it (at any level):
    /// its entries then need a sequence number above everything.
    pub overlaps_data: bool,
}

/// The placement of a table covering `range` in `version`, whose levels
/// below `num_levels` are in use.
pub(crate) fn place(version: &Version, num_levels: usize, range: &KeyRange) -> Placement {
    let compacting: Vec<Option<KeyRange>> = (0..num_levels)
        .map(|level| {
            let mut hull: Option<KeyRange> = None;
            let busy = version
                .files(level)
                .iter()
                .filter(|f| f.being_compacted.load(Ordering::Acquire));
            for f in busy {
                match &mut hull {
                    Some(h) => h.cover(&f.meta.key_range()),
                    None => hull = Some(f.meta.key_range()),
                }
            }
            hull
        })
        .collect();
    let spans = |level: usize| {
        compacting[level]
            .as_ref()
            .is_some_and(|h| h.overlaps(range))
    };
    let overlaps_level = |level: usize| version.files(level).iter().any(|f| f.meta.overlaps(range));
    let blocked = |level: usize| overlaps_level(level) || (0..=level).any(spans);
    let level = match (0..num_levels).find(|&l| blocked(l)) {
        Some(0) => 0,
        Some(l) => l - 1,
        None => num_levels - 1,
    };
    Placement {
        level,
        overlaps_data: (0..num_levels).any(overlaps_level),
    }
}
