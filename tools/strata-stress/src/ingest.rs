//! SST ingestion under the crash test (db_stress's `TestIngestExternalFile`):
//! a run of consecutive keys of the stress key space, every thread's,
//! written into one or two table files with [`SstWriter`] in the staging
//! directory `D/ingest`, then added with [`Db::ingest`] as one atomic
//! write.
//!
//! Each key of the run gets a put (a value naming the key, its next
//! generation and the ingestion's batch id, as any write's), a point
//! delete, or nothing; one ingestion in four also carries a range delete
//! over the whole run (split between the files at their boundary), which
//! removes the keys it puts nothing for (the file's own puts are newer
//! than its range delete: RocksDB's rule). Files are moved (hard-linked)
//! or copied in, their checksums verified first or not. The keys range
//! over data in the memtables and tables, so most ingestions must be
//! numbered, and flush the memtables first.
//!
//! The expected state treats it as a batch: every key it changes is
//! marked pending with the batch id (and the file fsynced: an ingestion
//! is durable when it returns, `src/ingest/job.rs`) before the ingestion
//! is issued, and committed once it returns. After a kill the verifier's
//! batch rule applies: all of the ingestion's keys new or all old, and
//! all new once any was recorded committed (it returned).
//!
//! A kill may leave staging files behind (being written, or ingested
//! and not yet removed: with `move_files` a linked one shares its inode
//! with a live table). Names are never reused (run, thread and a count),
//! and each run unlinks what the last one left ([`clear_staging`]) — an
//! unlink, never a truncation, which would reach the live table through a
//! shared inode.

use crate::expected::{AnyError, Pending, SharedState, Slot};
use crate::rng::Rng;
use crate::value::{self, ValueId, ValueSizes};
use std::path::{Path, PathBuf};
use strata::{Db, IngestOptions, Options, SstWriter};

/// Set in the batch id of an ingestion (batch ids are the run, the thread
/// and a count below this bit, `workload.rs`), so the verifier can say
/// which in-flight batches were ingestions.
pub const INGEST_BATCH_BIT: u64 = 1 << 23;

/// Whether batch `batch` was an ingestion.
pub fn is_ingestion(batch: u64) -> bool {
    batch & INGEST_BATCH_BIT != 0
}

/// What one ingestion did.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Keys it changed (puts, deletes, and keys its range delete covers).
    pub keys: u32,
    pub files: u32,
    /// Whether the files were moved (hard-linked) rather than copied.
    pub moved: bool,
    pub range_delete: bool,
}

/// What happens to one key of the run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Put,
    Delete,
    /// Untouched, unless a range delete covers it (then it goes absent).
    Keep,
}

/// Unlink every file the last run left in `staging` (created if
/// missing); returns how many there were.
pub fn clear_staging(staging: &Path) -> Result<u32, AnyError> {
    std::fs::create_dir_all(staging)?;
    let mut left = 0;
    for entry in std::fs::read_dir(staging)? {
        std::fs::remove_file(entry?.path())?;
        left += 1;
    }
    Ok(left)
}

/// Ingest a run of keys as batch `batch` (which has
/// [`INGEST_BATCH_BIT`] set). `name` is unique to this
/// ingestion (its files are `<name>-<k>.sst` in `staging`). REQUIRES: no
/// other thread writes the keys (the caller holds the key lock for
/// writing, as a range delete does).
#[allow(clippy::too_many_arguments)]
pub fn ingest(
    db: &Db,
    state: &SharedState,
    rng: &mut Rng,
    batch: u64,
    staging: &Path,
    name: &str,
    options: &Options,
    sizes: &ValueSizes,
) -> Result<Ingested, AnyError> {
    let keys = state.keys();
    let lo = rng.below(u64::from(keys)) as u32;
    let width = if rng.one_in(10) {
        (keys / 10).max(1)
    } else {
        1 + rng.below(48) as u32
    };
    let hi = lo.saturating_add(width).min(keys);
    let range_delete = rng.one_in(4);
    let mut changes: Vec<(u32, Change)> = (lo..hi)
        .map(|i| {
            let c = match rng.below(8) {
                0 => Change::Delete,
                1 => Change::Keep,
                _ => Change::Put,
            };
            (i, c)
        })
        .collect();
    // One file, or two split at a key both ranges exclude/include once.
    let split = if changes.len() >= 2 && rng.one_in(3) {
        lo + 1 + rng.below(u64::from(hi - lo - 1)) as u32
    } else {
        hi
    };
    let mut parts: Vec<(u32, u32)> = vec![(lo, split)];
    if split < hi {
        parts.push((split, hi));
    }
    // A file must hold something: a part with nothing to write puts its
    // first key.
    for &(from, to) in &parts {
        let idle = |c: &Change| *c == Change::Keep && !range_delete;
        if changes[(from - lo) as usize..(to - lo) as usize]
            .iter()
            .all(|(_, c)| idle(c))
        {
            changes[(from - lo) as usize].1 = Change::Put;
        }
    }

    // The slots it changes, each at its next generation.
    let mut planned: Vec<(u32, Pending)> = Vec::new();
    for &(i, c) in &changes {
        let present = match c {
            Change::Put => true,
            Change::Delete => false,
            Change::Keep if range_delete => false,
            Change::Keep => continue,
        };
        let slot = state.get(i);
        planned.push((
            i,
            Pending {
                gen: slot.gen + 1,
                present,
                batch,
            },
        ));
    }

    // Build the files outside the database.
    let mut paths: Vec<PathBuf> = Vec::with_capacity(parts.len());
    for (k, &(from, to)) in parts.iter().enumerate() {
        let path = staging.join(format!("{name}-{k}.sst"));
        let mut writer = SstWriter::create(&path, options)?;
        if range_delete {
            // The end is the next key, past the key space at its end.
            writer.delete_range(value::key(from), value::key(to))?;
        }
        for &(i, c) in changes.iter().filter(|(i, _)| (from..to).contains(i)) {
            let k = value::key(i);
            match c {
                Change::Put => {
                    let gen = state.get(i).gen + 1;
                    let fill = sizes.pick_fill(rng);
                    writer.put(&k, value::encode(&ValueId { key: i, gen, batch }, fill))?;
                }
                Change::Delete => writer.delete(&k)?,
                Change::Keep => {}
            }
        }
        writer.finish()?;
        paths.push(path);
    }

    for &(i, p) in &planned {
        let slot = state.get(i);
        state.set(
            i,
            Slot {
                pending: Some(p),
                ..slot
            },
        )?;
    }
    // An ingestion is durable once it returns: so must its marks be before.
    state.sync()?;
    let moved = rng.one_in(2);
    db.ingest(
        &paths,
        &IngestOptions {
            move_files: moved,
            verify_checksums_before_ingest: !rng.one_in(4),
            ..IngestOptions::default()
        },
    )?;
    for &(i, p) in &planned {
        state.set(
            i,
            Slot {
                gen: p.gen,
                present: p.present,
                batch: p.batch,
                pending: None,
            },
        )?;
    }
    if !moved {
        // Copied in: the staging files are ours to remove.
        for p in &paths {
            std::fs::remove_file(p)?;
        }
    } else if let Some(p) = paths.iter().find(|p| p.exists()) {
        return Err(format!(
            "ingest with move_files returned but left the source file {}",
            p.display()
        )
        .into());
    }
    Ok(Ingested {
        keys: planned.len() as u32,
        files: paths.len() as u32,
        moved,
        range_delete,
    })
}
