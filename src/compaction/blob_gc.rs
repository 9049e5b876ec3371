//! Blob garbage, and its collection by compaction (RocksDB's integrated
//! BlobDB; docs/design/blob-files.md):
//!
//! - *Accounting*: a compaction's garbage in a blob file is the references
//!   into it its inputs held less those its outputs hold (each table
//!   records its references per blob file, `FileMeta::blob_refs`): what it
//!   dropped (shadowed, deleted, covered) or relocated. It goes into the
//!   compaction's own MANIFEST edit (`VersionEdit::blob_garbage`).
//! - *Collection*: with `enable_blob_garbage_collection`, a compaction
//!   that keeps a reference into one of the oldest
//!   `blob_garbage_collection_age_cutoff` of the keyspace's blob files
//!   whose garbage ratio reached `blob_garbage_collection_min_garbage_ratio`
//!   copies the value into a blob file of its own and writes the new
//!   reference (`BlobRelocator`); the old file goes once no table lists it.
//! - *Forcing*: when the oldest blob files' garbage ratio reaches
//!   `blob_garbage_collection_force_threshold`, the tables that reference
//!   the oldest one are compacted (`pick_forced_blob_gc`).

use super::picker::{busy, Compaction};
use crate::blob::{BlobResolver, BlobSettings, BlobWriter};
use crate::error::Result;
use crate::options::Options;
use crate::version::{BlobRefCount, TableFile, TableOpener, Version};
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_sstable::blob::BlobRef;
use strata_sstable::ValueKind;

/// The garbage a compaction from `inputs` to `outputs` makes, per blob
/// file: references its inputs held that its outputs do not. A blob file
/// that an input without reference counts lists (a table written before
/// garbage accounting) is left out: its inflow is unknown.
pub(crate) fn compaction_garbage<'a>(
    inputs: impl Iterator<Item = &'a Arc<TableFile>>,
    outputs: &[Arc<TableFile>],
) -> Vec<(u64, BlobRefCount)> {
    let mut inflow: BTreeMap<u64, Option<BlobRefCount>> = BTreeMap::new();
    for f in inputs {
        for &n in &f.meta.blob_files {
            let known = f.meta.blob_refs_into(n);
            let total = inflow.entry(n).or_insert(Some(BlobRefCount::default()));
            *total = total.zip(known).map(|(t, r)| t.plus(r));
        }
    }
    let mut outflow: BTreeMap<u64, BlobRefCount> = BTreeMap::new();
    for f in outputs {
        for &n in &f.meta.blob_files {
            let r = f.meta.blob_refs_into(n).unwrap_or_default();
            let total = outflow.entry(n).or_default();
            *total = total.plus(r);
        }
    }
    inflow
        .into_iter()
        .filter_map(|(n, inflow)| {
            let inflow = inflow?;
            let out = outflow.get(&n).copied().unwrap_or_default();
            let garbage = BlobRefCount {
                count: inflow.count.saturating_sub(out.count),
                bytes: inflow.bytes.saturating_sub(out.bytes),
            };
            (garbage != BlobRefCount::default()).then_some((n, garbage))
        })
        .collect()
}

/// The blob file number below which a compaction of `v` relocates the
/// values it keeps: that of the file at index `age_cutoff × count` of the
/// blob files oldest first (RocksDB's cutoff), `u64::MAX` past the end.
fn gc_cutoff(v: &Version, age_cutoff: f64) -> u64 {
    let files = v.blob_files();
    let index = (age_cutoff * files.len() as f64) as usize;
    files.keys().nth(index).copied().unwrap_or(u64::MAX)
}

/// The blob files a compaction of `v` relocates values out of, ascending:
/// those within the age cutoff whose garbage ratio has reached
/// `blob_garbage_collection_min_garbage_ratio` (any garbage, for a
/// `manual` compaction: `compact_range` is how a user asks for the space
/// back now, and reads every table anyway), and the batch a forced
/// collection is due for.
pub(crate) fn files_to_collect(v: &Version, o: &Options, manual: bool) -> Vec<u64> {
    let cutoff = gc_cutoff(v, o.blob_garbage_collection_age_cutoff);
    let min_ratio = o.blob_garbage_collection_min_garbage_ratio;
    let mut files: Vec<u64> = v
        .blob_files()
        .iter()
        .take_while(|(&n, _)| n < cutoff)
        .filter(|(&n, b)| {
            if min_ratio <= 0.0 {
                return true; // RocksDB's rule: every old file
            }
            let garbage = v.blob_garbage_of(n).bytes;
            if manual {
                return garbage > 0;
            }
            // A file whose totals cannot be read is left to reads to report.
            b.totals()
                .is_ok_and(|t| t.bytes > 0 && garbage as f64 >= min_ratio * t.bytes as f64)
        })
        .map(|(&n, _)| n)
        .collect();
    if let Some(batch) = forced_batch(v, o) {
        files.extend(batch);
        files.sort_unstable();
        files.dedup();
    }
    files
}

/// A compaction's relocation of live values out of old blob files.
pub(crate) struct BlobRelocator<'a> {
    /// The blob files collected, ascending ([`files_to_collect`]).
    collect: Vec<u64>,
    /// The version's blob files, where old values are read.
    blobs: Arc<BlobResolver>,
    /// Where relocated values go; `None` when the keyspace no longer
    /// separates values: they go back into the table (as RocksDB does).
    writer: Option<BlobWriter<'a>>,
    /// Values relocated (to a blob file or into the table).
    pub relocated: u64,
}

impl<'a> BlobRelocator<'a> {
    /// The relocator of a compaction of keyspace `keyspace_id`'s version
    /// `v` under `options`; `None` without garbage collection, or when no
    /// blob file is old enough (or, unless `manual`, has enough garbage).
    pub fn new(
        v: &Version,
        options: &Options,
        manual: bool,
        keyspace_id: u32,
        opener: &TableOpener,
        new_number: &'a mut dyn FnMut() -> Result<u64>,
    ) -> Option<BlobRelocator<'a>> {
        if !options.enable_blob_garbage_collection || v.blob_files().is_empty() {
            return None;
        }
        let collect = files_to_collect(v, options, manual);
        if collect.is_empty() {
            return None;
        }
        let blobs = v.blob_resolver()?;
        let writer = BlobSettings::of(options, keyspace_id)
            .map(|settings| BlobWriter::new(settings, opener, new_number));
        Some(BlobRelocator {
            collect,
            blobs,
            writer,
            relocated: 0,
        })
    }

    /// The entry to write in place of `user_key`'s blob reference
    /// `reference`: `None` to keep it (its file is young enough), else a
    /// reference into this compaction's blob file, or the value itself
    /// (a put) when it is now below `min_blob_size` or blob files are
    /// off.
    pub fn relocate(
        &mut self,
        user_key: &[u8],
        reference: &[u8],
    ) -> Result<Option<(ValueKind, Vec<u8>)>> {
        match BlobRef::decode(reference) {
            Some(r) if self.collect.binary_search(&r.file_number).is_ok() => {}
            // Young enough or with too little garbage, or malformed (reads
            // report that).
            _ => return Ok(None),
        }
        let value = self.blobs.resolve(reference, user_key)?;
        self.relocated += 1;
        let separated = match &mut self.writer {
            Some(w) => w.separate(user_key, &value)?,
            None => None,
        };
        Ok(Some(match separated {
            Some(new_reference) => (ValueKind::BlobIndex, new_reference),
            None => (ValueKind::Put, value.to_vec()),
        }))
    }

    /// Finish (and sync) the blob file being written, before a table
    /// referring to it is finished and opened.
    pub fn finish_file(&mut self) -> Result<()> {
        match &mut self.writer {
            Some(w) => w.finish_current(),
            None => Ok(()),
        }
    }

    /// Bytes of blob files written.
    pub fn bytes_written(&self) -> u64 {
        self.writer.as_ref().map_or(0, BlobWriter::bytes_written)
    }

    /// Remove every blob file written (the compaction failed).
    pub fn abandon(self) {
        if let Some(w) = self.writer {
            w.abandon();
        }
    }
}

/// The compaction RocksDB's `blob_garbage_collection_force_threshold`
/// asks for, if due: among the oldest `age_cutoff` of the blob files, the
/// *batch* of the oldest one (it, and the files after it that no table
/// refers to as its oldest blob file: RocksDB's "linked" tables) has a
/// garbage ratio (garbage over total stored bytes) at or above the
/// threshold. Then one table that refers to the oldest blob file is
/// compacted as a periodic compaction compacts one (`periodic.rs`): an L0
/// table with all of L0 into the base level, another one level down with
/// what it overlaps, a last-level one in place. Its relocation frees the
/// oldest file's batch once every such table is done; the next pick
/// takes the next table.
pub(crate) fn pick_forced_blob_gc(v: &Arc<Version>, o: &Options) -> Option<Compaction> {
    let (level, f) = forced_blob_gc_table(v, o, false)?;
    super::periodic::rewrite_one_table(v, o, level, f)
}

/// Whether [`pick_forced_blob_gc`] has a table to compact (idle or not).
pub(crate) fn forced_blob_gc_due(v: &Arc<Version>, o: &Options) -> bool {
    forced_blob_gc_table(v, o, true).is_some()
}

/// The table [`pick_forced_blob_gc`] compacts: the first idle table
/// (levels from the top) that lists the oldest blob file, when its batch
/// is due.
fn forced_blob_gc_table<'v>(
    v: &'v Arc<Version>,
    o: &Options,
    even_busy: bool,
) -> Option<(usize, &'v Arc<TableFile>)> {
    let oldest = *forced_batch(v, o)?.first()?;
    v.all_files()
        .find(|(_, f)| f.meta.blob_files.first() == Some(&oldest) && (even_busy || !busy(f)))
}

/// The oldest blob file's batch (it, and the files after it within the age
/// cutoff that no table refers to as its oldest one), when its garbage
/// ratio has reached the force threshold.
fn forced_batch(v: &Version, o: &Options) -> Option<Vec<u64>> {
    if !o.enable_blob_garbage_collection || v.blob_files().is_empty() {
        return None;
    }
    let eligible = (o.blob_garbage_collection_age_cutoff * v.blob_files().len() as f64) as usize;
    if eligible == 0 {
        return None;
    }
    // Each blob file some table refers to as its oldest one.
    let linked: std::collections::HashSet<u64> = v
        .all_files()
        .filter_map(|(_, f)| f.meta.blob_files.first().copied())
        .collect();
    let mut files = v.blob_files().iter();
    let (&oldest, oldest_file) = files.next()?;
    let mut batch = vec![oldest];
    let mut total = oldest_file.totals().ok()?.bytes;
    let mut garbage = v.blob_garbage_of(oldest).bytes;
    for (&n, b) in files.take(eligible - 1) {
        if linked.contains(&n) {
            break;
        }
        batch.push(n);
        total = total.saturating_add(b.totals().ok()?.bytes);
        garbage = garbage.saturating_add(v.blob_garbage_of(n).bytes);
    }
    // No garbage, nothing to force, whatever the threshold: at 0 every
    // batch would be due again as soon as the one before was collected.
    if total == 0
        || garbage == 0
        || (garbage as f64) < o.blob_garbage_collection_force_threshold * total as f64
    {
        return None;
    }
    Some(batch)
}
