//! `DbInner::ingest`: add checked table files to a keyspace, all or
//! nothing, with one MANIFEST edit (RocksDB's `IngestExternalFile`).
//!
//! The steps, and what a crash at each leaves:
//! 1. Open and check every file (`external.rs`), outside any lock.
//! 2. Bring each in under a new table number: a hard link or a copy,
//!    synced with the directory. A crash from here to the edit leaves
//!    tables no version names, which the next open deletes.
//! 3. Stop writes (lead the write queue). If a table must be numbered
//!    (below) and memtables hold anything, flush them first, every
//!    keyspace's: a replayed WAL record must be newer than the tables
//!    (`open.rs`, `replay_floor`: the smallest of the keyspaces' newest
//!    table entries), and a memtable entry would hide an older-numbered
//!    table's version of its key.
//! 4. Sync the WAL, so that the ingestion is never durable without every
//!    write acknowledged before it.
//! 5. Under the version set lock, place each table (`placement.rs`) and
//!    decide its sequence number: 0 if nothing in the keyspace overlaps
//!    it, no snapshot is live (none may be taken until the edit is in:
//!    `SnapshotFreeze`), it goes below L0 and holds no range delete;
//!    otherwise the next number after every write, one per table. A
//!    numbered table is rewritten with its number in every key
//!    (docs/sstable-format.md, "Ingested tables").
//! 6. Every ingestion takes sequence numbers of its own: its numbered
//!    tables', or, when every table keeps 0, the next number alone.
//! 7. Under the version set lock held through the edit, each table is
//!    placed again and opened. Only then are the numbers taken: stored in
//!    the change feed's state (`feed/`), so a feed reader crossing them
//!    is told of writes no WAL holds, and no open after a crash gives
//!    them to a write; from here they stay recorded and are never given
//!    to a write, committed or not (a failure before leaves them free,
//!    and so no hole). One MANIFEST edit adds every table (and the last
//!    sequence number, when no memtable holds a write: a replayed WAL
//!    record must follow it): the commit point. Then the new super
//!    version, then the numbers are published.

use super::external::{check_disjoint, open_external, ExternalFile};
use super::options::IngestOptions;
use super::placement::place;
use crate::core::DbInner;
use crate::error::{table_error, table_write_error, Error, Result};
use crate::filename::table_path;
use crate::fs::{FileSystem, RandomAccessOptions, WriteAdapter, Writeback};
use crate::held_files::FileHold;
use crate::iter::InternalIterator;
use crate::keyspace::KeyspaceState;
use crate::memtable::{MemTable, MemTableIter};
use crate::read::SuperVersion;
use crate::version::{FileMeta, KeyRange, LargestBound, TableFile, VersionEdit};
use crate::write::Leadership;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_sstable::{parse_internal_key, BlockReadOptions, SeqNo, TableBuilder};

/// What one try at committing under the write queue's leadership ended in.
enum Attempt {
    /// Committed; the last sequence number the ingestion took.
    Committed(SeqNo),
    /// A table turned out to need a number while the memtables hold
    /// writes (a snapshot was taken, a compaction moved a range): try
    /// again, flushing first.
    FlushFirst,
}

/// The tables brought into the database directory and not yet named by
/// the MANIFEST: removed when dropped, unless committed (or kept because
/// a failed MANIFEST write may have committed them after all; the next
/// open or resume removes them if not).
struct Placed<'a> {
    fs: &'a dyn FileSystem,
    dir: &'a Path,
    numbers: Vec<u64>,
    keep: bool,
    /// Every number taken, held from a resume's clean-up (which deletes
    /// the tables no version names) until the ingestion ends.
    held: FileHold,
}

impl Placed<'_> {
    /// Take table `number`, before its file is made.
    fn add(&mut self, number: u64) {
        self.held.add(number);
        self.numbers.push(number);
    }
}

impl Drop for Placed<'_> {
    fn drop(&mut self) {
        if !self.keep {
            for &n in &self.numbers {
                let _ = self.fs.remove(&table_path(self.dir, n));
            }
        }
    }
}

impl DbInner {
    /// Ingest the table files at `paths` into `ks` (see the module's
    /// comment and [`Db::ingest`](crate::Db::ingest)).
    pub(crate) fn ingest(
        &self,
        ks: &Arc<KeyspaceState>,
        paths: &[PathBuf],
        opts: &IngestOptions,
    ) -> Result<()> {
        self.check_bg_error()?;
        ks.check_live()?;
        if paths.is_empty() {
            return Ok(());
        }
        let fs = &*self.fs;
        let mut files = paths
            .iter()
            .map(|p| open_external(fs, p, opts.verify_checksums_before_ingest))
            .collect::<Result<Vec<_>>>()?;
        check_disjoint(&mut files)?;
        self.check_operands(ks, &files)?;

        let mut placed = Placed {
            fs,
            dir: &self.dir,
            numbers: Vec::new(),
            keep: false,
            held: self.held_files.hold([]),
        };
        for f in &mut files {
            let number = self.versions.lock().new_file_number()?;
            let dest = table_path(&self.dir, number);
            placed.add(number);
            bring_in(fs, &f.path, &dest, opts)?;
            f.meta.number = number;
        }
        fs.sync_dir(&self.dir)
            .map_err(|e| Error::io("sync directory", &self.dir, e))?;
        let _ = self.hook(crate::hook::HookPoint::IngestPlaced);

        let mut flush_first = false;
        let last = loop {
            let attempt = self.with_writes_stopped(|leader| {
                self.ingest_leading(leader, ks, &mut files, &mut placed, opts, flush_first)
            })?;
            match attempt {
                Attempt::Committed(last) => break last,
                Attempt::FlushFirst => flush_first = true,
            }
        };
        self.wait_published(last)?;
        if opts.move_files {
            // Committed: the caller's names for the files go, as RocksDB
            // removes them (a failure leaves a name, not a problem).
            for f in &files {
                let _ = fs.remove(&f.path);
            }
        }
        // L0 (or a level's size) may now call for a compaction.
        self.bg.notify_all();
        tracing::info!(
            keyspace = %ks.name,
            files = files.len(),
            last_sequence = last,
            "ingested"
        );
        Ok(())
    }

    /// A file holding merge operands goes only into a keyspace with a
    /// merge operator, and the one it names if it names one.
    fn check_operands(&self, ks: &KeyspaceState, files: &[ExternalFile]) -> Result<()> {
        let options = ks.options();
        for f in files {
            let props = f.table.properties();
            if props.num_merge_operands == 0 {
                continue;
            }
            match &options.merge_operator {
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "{}: holds merge operands but keyspace {:?} has no merge operator",
                        f.path.display(),
                        ks.name
                    )))
                }
                Some(op) if !props.merge_operator.is_empty() && props.merge_operator != op.name() => {
                    return Err(Error::InvalidArgument(format!(
                        "{}: holds merge operands written for operator {:?}, but keyspace {:?} uses {:?}",
                        f.path.display(),
                        props.merge_operator,
                        ks.name,
                        op.name()
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Steps 3 to 6, leading the write queue with every write sequenced
    /// before inserted.
    fn ingest_leading(
        &self,
        leader: &mut Leadership<'_>,
        ks: &Arc<KeyspaceState>,
        files: &mut [ExternalFile],
        placed: &mut Placed<'_>,
        opts: &IngestOptions,
        flush_first: bool,
    ) -> Result<Attempt> {
        self.check_bg_error()?;
        ks.check_live()?;
        let sv = ks.super_version.load();
        let all = self.all_keyspaces();
        if all.iter().any(|k| holds_writes(k)) {
            let must_number = flush_first
                || self.snapshots.newest().is_some()
                || files.iter().any(|f| f.has_range_dels())
                || files.iter().any(|f| {
                    std::iter::once(&sv.mem)
                        .chain(&sv.imms)
                        .any(|m| memtable_overlaps(m, &f.range()))
                })
                || {
                    let version = self.versions.lock().current(ks.id);
                    let levels = ks.options().num_levels;
                    files.iter().any(|f| {
                        let p = place(&version, levels, &f.range());
                        p.overlaps_data || p.level == 0
                    })
                };
            if must_number {
                if !opts.allow_blocking_flush {
                    return Err(Error::InvalidArgument(format!(
                        "ingesting into keyspace {:?} needs a flush of the memtables first (the files overlap them, or must be numbered after their writes), and allow_blocking_flush is false",
                        ks.name
                    )));
                }
                drop(sv);
                // Every keyspace's: WAL replay takes the smallest of the
                // keyspaces' newest table entries as the floor every
                // replayed record must be above (`open.rs`,
                // `replay_floor`), so no WAL holding a write numbered
                // before the table may stay replayable.
                for k in all.iter().filter(|k| holds_writes(k)) {
                    self.flush_while_leading(leader, k)?;
                }
            }
        }
        let memtables_empty = !all.iter().any(|k| holds_writes(k));
        drop(all);
        let freeze = self.snapshots.freeze_if_none();
        self.flush_wal(true)?;
        // Everything logged so far is synced, and nothing is logged while
        // this leads: the current WAL's synced length bounds every batch
        // numbered before the ingestion (for the change feed's readers).
        let wal = self.write_path.wal.wal_number();
        let synced_before = self.write_path.wal_durable_len(wal).map(|len| (wal, len));

        // Decide each table's number; rewrite those that get one.
        let options = ks.options();
        let levels = options.num_levels;
        let mut next = leader.last_seq();
        let mut seqnos = Vec::with_capacity(files.len());
        {
            let version = self.versions.lock().current(ks.id);
            for f in files.iter() {
                let p = place(&version, levels, &f.range());
                let numbered =
                    freeze.is_none() || p.overlaps_data || p.level == 0 || f.has_range_dels();
                if numbered && !memtables_empty {
                    return Ok(Attempt::FlushFirst);
                }
                // A table's range deletes delete nothing of its own point
                // entries (RocksDB's rule), and a tombstone deletes only
                // what is older than it: they get a number of their own,
                // just below the points'.
                seqnos.push(if numbered {
                    next += 1 + u64::from(f.has_range_dels());
                    next
                } else {
                    0
                });
            }
        }
        let mut metas = Vec::with_capacity(files.len());
        for (f, &seq) in files.iter().zip(&seqnos) {
            if seq == 0 {
                metas.push(f.meta.clone());
                continue;
            }
            let number = self.versions.lock().new_file_number()?;
            placed.add(number);
            metas.push(self.rewrite_numbered(&options, f, number, seq)?);
        }
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io("sync directory", &self.dir, e))?;

        // The ingestion's numbers: its tables', or one of its own.
        let first = leader.last_seq() + 1;
        let prepared = Prepared {
            files,
            metas,
            seqnos,
            first,
            last: next.max(first),
            memtables_empty,
            synced_before,
        };
        let outcome = self.commit_ingestion(leader, ks, prepared, placed);
        drop(freeze);
        outcome
    }

    /// Step 7: place each table again under the version set lock held
    /// through the edit (a compaction may have been picked meanwhile) and
    /// open it; only then take the numbers, noting them in the change
    /// feed's state, and make the edit. From the note on, the numbers are
    /// never given to a write, whatever the edit's outcome: a feed reader
    /// may have reported them as a gap already. A failed edit leaves them
    /// noted (a gap reported for nothing), never a hole.
    fn commit_ingestion(
        &self,
        leader: &mut Leadership<'_>,
        ks: &Arc<KeyspaceState>,
        prepared: Prepared<'_>,
        placed: &mut Placed<'_>,
    ) -> Result<Attempt> {
        let Prepared {
            files,
            metas,
            seqnos,
            first,
            last,
            memtables_empty,
            synced_before,
        } = prepared;
        let mut versions = self.versions.lock();
        let version = versions.current(ks.id);
        let opener = versions.opener().clone();
        let levels = ks.options().num_levels;
        let mut edit = VersionEdit {
            keyspace: ks.id,
            ..VersionEdit::default()
        };
        let mut tables: Vec<Arc<TableFile>> = Vec::with_capacity(files.len());
        for ((f, meta), seq) in files.iter().zip(metas).zip(seqnos) {
            let p = place(&version, levels, &f.range());
            if seq == 0 && (p.overlaps_data || p.level == 0) {
                // Only a compaction's new range can do this: numbering
                // the table is always right.
                return Ok(Attempt::FlushFirst);
            }
            let table = opener.open(meta, p.level)?;
            edit.new_files.push((p.level, table.meta.clone()));
            tables.push(table);
        }
        if memtables_empty {
            // Replay checks each WAL record follows this; with writes in
            // the memtables the feed's state alone keeps the numbers.
            edit.last_sequence = Some(last.max(versions.last_sequence()));
        }
        // A note that fails may be stored all the same: taken either way.
        let applied = self
            .feed
            .note_ingestion(&*self.fs, &self.dir, first, last, synced_before)
            .map(|()| versions.log_and_apply(edit, &tables));
        if let Ok(Ok(version)) = &applied {
            self.update_super_version(ks, |sv| SuperVersion {
                mem: Arc::clone(&sv.mem),
                imms: sv.imms.clone(),
                version: Arc::clone(version),
            });
        }
        drop(versions);
        // Published only here, once a committed ingestion's tables are in
        // the super version (a snapshot at them sees them), and before new
        // snapshots are let in (the caller's freeze).
        leader.number_unlogged(last);
        match applied? {
            Ok(_) => {}
            Err(e @ Error::Io { .. }) => {
                // Its outcome is unknown: the edit may be durable. The
                // tables stay until the next open or resume finds out.
                placed.keep = true;
                return Err(Error::Background(self.set_bg_error(e)));
            }
            Err(e) => return Err(e),
        }
        // The copies that were rewritten with a number (and those of an
        // earlier attempt) go; the tables the edit named stay.
        placed
            .numbers
            .retain(|n| tables.iter().all(|t| t.meta.number != *n));
        for &n in &placed.numbers {
            let _ = self.fs.remove(&table_path(&self.dir, n));
        }
        placed.numbers.clear();
        Ok(Attempt::Committed(last))
    }

    /// Write table `number`: `f`'s point entries with sequence number
    /// `seq`, its range deletes with `seq - 1`, synced; what the MANIFEST
    /// records of it.
    fn rewrite_numbered(
        &self,
        options: &crate::options::Options,
        f: &ExternalFile,
        number: u64,
        seq: SeqNo,
    ) -> Result<FileMeta> {
        let path = table_path(&self.dir, number);
        let file = self
            .fs
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let props = f.table.properties();
        let mut builder = TableBuilder::new(
            WriteAdapter(file, None, Writeback::every(options.bytes_per_sync)),
            options.table_options(options.num_levels - 1),
        )
        .map_err(|e| table_write_error(&path, e))?;
        builder.set_creation_time(props.creation_time);
        if !props.merge_operator.is_empty() {
            builder.set_merge_operator_name(&props.merge_operator);
        }
        let reads = BlockReadOptions {
            verify_checksums: false,
            fill_cache: false,
            readahead_bytes: 2 << 20,
        };
        let mut it = f.table.iter_with_options(reads);
        it.seek_to_first().map_err(|e| table_error(&f.path, e))?;
        while it.valid() {
            let k = it.parsed_key();
            builder
                .add(k.user_key, seq, k.kind, it.value())
                .map_err(|e| table_write_error(&path, e))?;
            it.next().map_err(|e| table_error(&f.path, e))?;
        }
        if let Some(tombstones) = f.table.range_tombstones() {
            for t in tombstones.fragments() {
                builder
                    .add_range_tombstone(&t.start, t.end.as_deref(), seq - 1)
                    .map_err(|e| table_write_error(&path, e))?;
            }
        }
        let built = builder.finish().map_err(|e| table_write_error(&path, e))?;
        let meta = FileMeta::from_built(number, &built);
        let WriteAdapter(mut file, ..) = built.writer;
        file.sync().map_err(|e| Error::io("sync", &path, e))?;
        Ok(meta)
    }
}

/// What an attempt commits: each file with what the MANIFEST records of
/// it and its sequence number (0: kept), and the numbers it takes.
struct Prepared<'a> {
    files: &'a [ExternalFile],
    metas: Vec<FileMeta>,
    seqnos: Vec<SeqNo>,
    first: SeqNo,
    last: SeqNo,
    /// No memtable holds a write: the edit records `last` as the last
    /// sequence number.
    memtables_empty: bool,
    /// The WAL and the length of it synced before the numbers were taken.
    synced_before: Option<(u64, u64)>,
}

/// Whether `ks`'s memtables, active or frozen, hold any write.
fn holds_writes(ks: &KeyspaceState) -> bool {
    let sv = ks.super_version.load();
    !sv.mem.is_empty() || !sv.imms.is_empty()
}

/// Whether `mem` holds a key, or a range delete, within `range` (its
/// hull is compared, as tables' ranges are).
fn memtable_overlaps(mem: &Arc<MemTable>, range: &KeyRange) -> bool {
    if mem.is_empty() {
        return false;
    }
    let tombstones = mem.range_tombstones();
    if tombstones.iter().any(|t| {
        let end = t.end.as_deref().unwrap_or_default();
        let bound = match t.end {
            Some(_) => LargestBound::Excluded,
            None => LargestBound::Unbounded,
        };
        KeyRange::new(&t.start, end, bound).overlaps(range)
    }) {
        return true;
    }
    let mut it = MemTableIter::new(Arc::clone(mem));
    let first = it
        .seek_to_first()
        .ok()
        .filter(|_| it.valid())
        .and_then(|_| parse_internal_key(it.key()).map(|k| k.user_key.to_vec()));
    let last = it
        .seek_to_last()
        .ok()
        .filter(|_| it.valid())
        .and_then(|_| parse_internal_key(it.key()).map(|k| k.user_key.to_vec()));
    match (first, last) {
        (Some(first), Some(last)) => {
            KeyRange::new(&first, &last, LargestBound::Included).overlaps(range)
        }
        // Unreadable: assume the worst.
        _ => true,
    }
}

/// Bring the external file at `src` into the database as `dest`: a hard
/// link with `move_files` (true), else (or when linking fails and
/// `failed_move_fall_back_to_copy`) a synced copy (false).
fn bring_in(fs: &dyn FileSystem, src: &Path, dest: &Path, opts: &IngestOptions) -> Result<bool> {
    if opts.move_files {
        match fs.hard_link(src, dest) {
            Ok(()) => return Ok(true),
            Err(e) if !opts.failed_move_fall_back_to_copy => {
                return Err(Error::io("hard link", src, e));
            }
            Err(_) => {}
        }
    }
    // In windows read with `pread`, not through a map (a page fault per
    // 4 KiB of a large table).
    const COPY_WINDOW: u64 = 4 << 20;
    let from = fs
        .open_random_access(src, RandomAccessOptions { mmap: false })
        .map_err(|e| Error::io("open", src, e))?;
    let mut file = fs.create(dest).map_err(|e| Error::io("create", dest, e))?;
    let size = from.size();
    let mut offset = 0;
    while offset < size {
        let len = COPY_WINDOW.min(size - offset) as usize;
        let window = from
            .read_at(offset, len)
            .map_err(|e| Error::io("read", src, e))?;
        file.append(&window)
            .map_err(|e| Error::io("copy into", dest, e))?;
        offset += len as u64;
    }
    file.sync().map_err(|e| Error::io("sync", dest, e))?;
    Ok(false)
}
