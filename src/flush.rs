//! Flush: a frozen memtable becomes an L0 table, installed by a version
//! edit that also retires the memtable's WAL.

use crate::blob::BlobWriter;
use crate::compaction::{CompactionRangeDels, Decision, MergeCollector, Retainer, Stripes};
use crate::core::DbInner;
use crate::error::{table_write_error, Error, Result};
use crate::events::{job_status, FlushEvents};
use crate::filename::table_path;
use crate::fs::{WriteAdapter, Writeback};
use crate::iter::InternalIterator;
use crate::keyspace::KeyspaceState;
use crate::memtable::{MemTable, MemTableIter};
use crate::options::Options;
use crate::rate_limiter::{IoPriority, RateLimiter};
use crate::read::SuperVersion;
use crate::version::{FileMeta, TableFile, TableOpener, VersionEdit};
use std::sync::Arc;
use strata_sstable::{
    parse_internal_key, FragmentedRangeTombstones, RangeTombstone, SeqNo, TableBuilder, ValueKind,
};

impl DbInner {
    /// Write `imm`, a frozen memtable of `ks`, to an L0 table and install
    /// it. REQUIRES: `imm` is `ks`'s oldest frozen memtable (flushes of a
    /// keyspace install in order). A keyspace dropped meanwhile installs
    /// nothing and is no error.
    pub(crate) fn flush_memtable(&self, ks: &KeyspaceState, imm: &Arc<MemTable>) -> Result<()> {
        let _ = self.hook(crate::hook::HookPoint::Flush);
        let mut events = FlushEvents::begin(
            &self.events,
            &ks.name,
            imm.wal_number(),
            imm.approximate_bytes() as u64,
        );
        let outcome = self.write_flush(ks, imm, &mut events);
        events.ended(job_status(outcome.as_ref().copied()));
        outcome.map(|_| ())
    }

    /// The work of [`flush_memtable`](Self::flush_memtable), reporting
    /// the table it wrote to `events`: `Ok(true)` once installed,
    /// `Ok(false)` if the keyspace was dropped meanwhile.
    fn write_flush(
        &self,
        ks: &KeyspaceState,
        imm: &Arc<MemTable>,
        events: &mut FlushEvents<'_>,
    ) -> Result<bool> {
        let start = std::time::Instant::now();
        // Tables hold only published writes, so compaction can treat the
        // visible sequence number as a floor for every reader. Once the
        // memtable's last write is published, every write into it has been
        // inserted (rotation does not wait for inserts in flight).
        // Only a rotation freezes a memtable, and seals it as it does.
        let sealed = imm.sealed_seq();
        debug_assert!(sealed.is_some(), "a flush of a memtable never sealed");
        self.wait_published(sealed.unwrap_or_else(|| imm.max_seq()))?;
        let number = self.versions.lock().new_file_number()?;
        let opener = self.versions.lock().opener().clone();
        let options = ks.options();
        // Operands no snapshot needs apart are combined as compaction
        // combines them (docs/design/merge.md §4): the stripes are the
        // live snapshots and the visible sequence number, which every
        // entry of `imm` is at or below now.
        let stripes = self.compaction_stripes();
        let combine = MergeCollector {
            operator: options.merge_operator.as_ref(),
            stripes: &stripes,
            now_micros: self.options.clock.now_micros(),
        };
        let combine = (combine.operator.is_some() && imm.has_merge_operands()).then_some(&combine);
        let mut new_number = || self.versions.lock().new_file_number();
        let blobs = crate::blob::BlobSettings::of(&options, ks.id)
            .map(|settings| BlobWriter::new(settings, &opener, &mut new_number));
        let file = write_memtable_table(
            &options,
            &opener,
            number,
            imm,
            self.rate_limiter.clone(),
            SeqNo::MAX,
            &stripes,
            combine,
            blobs,
        )?;
        // The blob files it wrote count too (RocksDB adds its blob bytes
        // to the flush's): a flush's table lists only its own.
        let flushed_bytes = file.as_ref().map_or(0, |f| {
            let blobs = f.blob_files().iter();
            f.meta.size
                + blobs
                    .map(|b| b.totals().map_or(0, |t| t.file_size))
                    .sum::<u64>()
        });
        if let Some(f) = &file {
            events.table_created(f);
        }
        // Other keyspaces' memtables may hold writes older than this
        // table's newest, in a WAL not yet synced. Once the table is
        // installed, a power loss that cut that WAL would leave the table's
        // writes without the older ones: not a prefix (RocksDB users meet
        // this as "SST file is ahead of WALs"). So the WALs are made
        // durable before the install when some other memtable holds
        // writes in them, or when the change feed keeps WALs past their
        // flush (it shows only what a power loss cannot take). Only the
        // WALs before the current one: the rotation that froze `imm`
        // switched WALs under the lead, so every write numbered up to its
        // last is in them (RocksDB's `SyncClosedLogs`); they are synced
        // without stopping writers, where syncing the current WAL too held
        // its drain lock through both fsyncs and stalled every writer
        // meanwhile. Otherwise the install makes them obsolete (their
        // every record is in this table) and they are forgotten unsynced:
        // with one keyspace written, a flush writes its memtable to the
        // disk once, as a table, not a second time as a WAL (RocksDB syncs
        // no WAL at a flush with one column family). A keyspace that gets
        // its first write meanwhile writes to the current WAL: its writes
        // are newer than this table's, and a sync of that WAL syncs these
        // first while they are live.
        //
        // After the table is written, not before: the install is what
        // needs them durable, and the WAL syncer has been syncing the WAL
        // the rotation retired since the rotation, so by now its fsync is
        // mostly done. Synced first, the flush waited out that fsync (a
        // whole memtable's WAL, 50-120 ms) before writing a byte, and the
        // writers at the memtable limit waited with it (fillbatch's
        // longest batch; overwrite's stalls with 4 KiB values).
        let synced = if self.closed_wals_must_be_durable(ks, imm) {
            self.sync_closed_wals()
        } else {
            Ok(())
        };
        if let Err(e) = synced {
            if let Some(f) = &file {
                f.mark_obsolete();
            }
            return Err(e);
        }

        let mut versions = self.versions.lock();
        // This keyspace's WALs older than its oldest memtable still
        // unflushed are done. Its newer memtables were made by rotations
        // after `imm`'s, so this is the WAL `imm`'s rotation started.
        let sv = ks.super_version.load();
        let log_number = std::iter::once(&sv.mem)
            .chain(sv.imms.iter())
            .filter(|m| !Arc::ptr_eq(m, imm))
            .map(|m| m.wal_number())
            .min()
            .unwrap_or(imm.wal_number() + 1);
        drop(sv);
        let mut edit = VersionEdit {
            keyspace: ks.id,
            log_number: Some(log_number),
            keyspace_log_numbers: self.idle_keyspaces(ks.id, log_number),
            ..VersionEdit::default()
        };
        let added: Vec<Arc<TableFile>> = file.into_iter().collect();
        for f in &added {
            edit.new_files.push((0, f.meta.clone()));
            edit.last_sequence = Some(f.meta.largest_seqno);
        }
        let version = match versions.log_and_apply(edit, &added) {
            Ok(version) => version,
            Err(Error::KeyspaceDropped { .. }) => {
                drop(versions);
                for f in &added {
                    f.mark_obsolete();
                }
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        self.update_super_version(ks, |sv| SuperVersion {
            mem: Arc::clone(&sv.mem),
            imms: sv
                .imms
                .iter()
                .filter(|m| !Arc::ptr_eq(m, imm))
                .cloned()
                .collect(),
            version,
        });
        let wal_log_number = versions.log_number();
        drop(versions);
        let _ = self.hook(crate::hook::HookPoint::FlushInstalled);
        // Writes stalled on the memtable limit have their room now; the
        // WAL collection below is no concern of theirs.
        self.bg.announce_flush_installed();
        // The WALs no keyspace needs any more: those this flush did not
        // sync are never synced now.
        self.write_path.note_log_number(wal_log_number);
        self.write_path.wal.forget_retired_below(wal_log_number);
        self.remove_wals_below(wal_log_number);
        self.stats.record_flush(
            &ks.counters,
            flushed_bytes,
            start.elapsed().as_micros() as u64,
        );
        Ok(true)
    }

    /// Whether the WALs before the current one must be durable before the
    /// table written from `imm` (a frozen memtable of `ks`) is installed:
    /// when the change feed keeps WALs past their flush, or when a
    /// memtable besides `imm` holds writes that may be in them (it was
    /// made before the rotation that froze `imm`), of this keyspace or
    /// another. A memtable made since holds only writes logged in the
    /// current WAL or a later one.
    pub(crate) fn closed_wals_must_be_durable(
        &self,
        ks: &KeyspaceState,
        imm: &Arc<MemTable>,
    ) -> bool {
        if self.feed.keeps_wals(&self.options) {
            return true;
        }
        // The WAL the rotation that froze `imm` started: the one its
        // successor in `ks` (the next frozen memtable, or the active one)
        // was made with.
        let sv = ks.super_version.load();
        let after = sv
            .memtables_oldest_first()
            .into_iter()
            .skip_while(|m| !Arc::ptr_eq(m, imm))
            .nth(1)
            .map_or(u64::MAX, |m| m.wal_number());
        drop(sv);
        self.keyspaces.load().iter().any(|k| {
            let sv = k.super_version.load();
            std::iter::once(&sv.mem)
                .chain(sv.imms.iter())
                .any(|m| !Arc::ptr_eq(m, imm) && !m.is_empty() && m.wal_number() < after)
        })
    }

    /// The other keyspaces holding nothing unflushed, with `log_number`
    /// as their new log number: a flush of another keyspace moves them
    /// forward, so that a keyspace not written for a while keeps no WAL
    /// (RocksDB does the same for empty column families). REQUIRES: every
    /// write numbered before the rotation that started WAL `log_number` is
    /// published (the flush waited for it): such a write is then in its
    /// keyspace's memtable or tables, and any later one is in that WAL or
    /// a newer one.
    fn idle_keyspaces(&self, flushed: u32, log_number: u64) -> Vec<(u32, u64)> {
        self.keyspaces
            .load()
            .iter()
            .filter(|ks| ks.id != flushed)
            .filter(|ks| {
                let sv = ks.super_version.load();
                sv.imms.is_empty() && sv.mem.is_empty()
            })
            .map(|ks| (ks.id, log_number))
            .collect()
    }

    /// The WAL files below `log_number` are obsolete: delete those WAL
    /// retention and the change feed's cursors let go (`feed/`; best
    /// effort: what is left goes at a later collection or open).
    pub(crate) fn remove_wals_below(&self, log_number: u64) {
        self.collect_wals(log_number);
    }

    /// Write the entries of every keyspace's memtables (`(keyspace, its
    /// memtables oldest first)`) with sequence numbers at most `up_to` to
    /// L0 tables and install them with one edit, all keyspaces or none,
    /// that sets each one's log number to `log_number` (so no WAL below it
    /// is replayed) and the last sequence number to at least `last_seq`.
    /// Returns each keyspace's new version, in order.
    /// Used where every memtable must reach a table at once, whatever its
    /// WAL holds: a clean close with writes no WAL holds (`close.rs`), and
    /// a resume after a background error (`resume.rs`). One edit, because
    /// a batch across keyspaces may be in these memtables and in no WAL:
    /// a crash between two edits would keep half of it. Nothing waits for
    /// publication: the caller has stopped writes. A failure installs
    /// nothing; the tables written so far are removed, unless the
    /// manifest write failed (its outcome is unknown: the edit may be
    /// durable), when the next open or resume removes them.
    pub(crate) fn flush_all_to_l0(
        &self,
        all: &[(&KeyspaceState, Vec<&Arc<MemTable>>)],
        log_number: u64,
        last_seq: strata_sstable::SeqNo,
        up_to: strata_sstable::SeqNo,
    ) -> Result<Vec<Arc<crate::version::Version>>> {
        // The stripes a flush leaves hidden versions out by. At a resume
        // the groups the error held back are above the visible number,
        // all in one stripe: they are published in one step, so no read
        // lands between them.
        let stripes = self.compaction_stripes();
        let mut versions = self.versions.lock();
        let opener = versions.opener().clone();
        let mut tables = Vec::new();
        let mut parts = Vec::new();
        let written = all.iter().try_for_each(|(ks, mems)| {
            let mut part = VersionEdit {
                keyspace: ks.id,
                log_number: Some(log_number),
                ..VersionEdit::default()
            };
            for mem in mems {
                let number = versions.new_file_number()?;
                let options = ks.options();
                if let Some(t) = write_memtable_table(
                    &options, &opener, number, mem, None, up_to, &stripes, None, None,
                )? {
                    part.new_files.push((0, t.meta.clone()));
                    tables.push(t);
                }
            }
            parts.push(part);
            Ok::<_, Error>(())
        });
        if let Err(e) = written {
            // On a full disk they would only take the room a retry needs.
            for t in &tables {
                let _ = self.fs.remove(t.path());
            }
            return Err(e);
        }
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let mut edit = parts.remove(0);
        edit.last_sequence = Some(last_seq.max(versions.last_sequence()));
        edit.parts = parts;
        versions.log_and_apply_all(edit, &tables)
    }
}

/// Write every entry and range tombstone of `mem` with a sequence number
/// at most `up_to` into table `number`, sync it, and open it. `None` when
/// nothing qualifies (a memtable holding only a range delete makes a
/// table of it: dropping it would bring the keys it deletes back). On
/// failure the partial file is removed. Of a key's versions in one
/// snapshot stripe of `stripes` only the newest is written, as a
/// compaction keeps them (`compaction/retain.rs`); merge operands are
/// the exception, they hide nothing. With `combine`, the operands of
/// a key newest in their snapshot stripe are combined with what follows
/// them in the stripe (`MergeCollector`): a full merge onto a put, a
/// delete or a covering range tombstone of the memtable (and the key's
/// older entries in the stripe, which no reader sees, left out), else a
/// partial merge (tables below may hold the key), the entries after them
/// written as they are. A failing operator fails the flush, as it fails
/// a compaction (RocksDB does the same).
// What a flush combines and where its large values go are separate
// choices of the caller; a struct for them would be used once.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_memtable_table(
    options: &Options,
    opener: &TableOpener,
    number: u64,
    mem: &Arc<MemTable>,
    limiter: Option<Arc<RateLimiter>>,
    up_to: SeqNo,
    stripes: &Stripes,
    combine: Option<&MergeCollector<'_>>,
    mut blobs: Option<BlobWriter<'_>>,
) -> Result<Option<Arc<TableFile>>> {
    if mem.is_empty() {
        return Ok(None);
    }
    let path = table_path(&opener.dir, number);
    let result = (|| {
        let file = opener
            .fs
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let writer = WriteAdapter(
            file,
            limiter.map(|l| (l, IoPriority::High)),
            Writeback::every(options.bytes_per_sync),
        );
        let mut builder = TableBuilder::new(writer, options.table_options(0))
            .map_err(|e| table_write_error(&path, e))?;
        // By the database's clock: `periodic_compaction_seconds` ages
        // tables by it.
        builder.set_creation_time(options.clock.now_micros() / 1_000_000);
        // The operands are the keyspace's operator's (none: unknown).
        if let Some(operator) = &options.merge_operator {
            builder.set_merge_operator_name(operator.name());
        }
        let mut it = MemTableIter::new(Arc::clone(mem));
        it.seek_to_first()?;
        // The memtable's range tombstones this table gets (those at most
        // `up_to`): written to it as they are, and fragmented as a
        // compaction's are for the retainer and the merge walks to see
        // what covers each key (keys ascend, so the whole flush makes one
        // pass over them).
        let tombstones: Vec<RangeTombstone> = mem
            .range_tombstones()
            .into_iter()
            .filter(|t| t.seqno <= up_to)
            .collect();
        let mut range_dels = CompactionRangeDels::new([&FragmentedRangeTombstones::fragment(
            tombstones.iter().cloned(),
        )]);
        // Which versions to write: the rule compaction keeps them by
        // (`Retainer`), with the memtable's range tombstones as the
        // covering ones and no tombstone dropped (tables below may hold
        // the key).
        let mut retainer = Retainer::new(stripes.clone());
        while it.valid() {
            let k = parse_internal_key(it.key())
                .ok_or_else(|| Error::corruption(&path, 0, "memtable holds a malformed key"))?;
            if k.seqno > up_to {
                it.next()?;
                continue;
            }
            let covering = range_dels.covering_seqnos(k.user_key);
            if retainer.decide(k.user_key, k.seqno, k.kind, covering, |_| true) != Decision::Keep {
                // Every reader that could see this version sees a newer
                // one written before it, or a range tombstone of the
                // memtable deleting it. Kept, it would cost every read of
                // the table that crosses the key a step (a hot key's
                // thousands of versions), and every compaction a copy
                // until one dropped it.
                it.next()?;
                continue;
            }
            if k.kind == ValueKind::Merge {
                let Some(c) = combine else {
                    // An operand is combined with what lies below it when
                    // read: it hides nothing, the next entry is judged
                    // afresh.
                    builder
                        .add(k.user_key, k.seqno, k.kind, it.value())
                        .map_err(|e| table_write_error(&path, e))?;
                    retainer.forget_key();
                    it.next()?;
                    continue;
                };
                // Kept, so the newest operand of its stripe (a walk ends
                // in its stripe only at an entry that is no operand, or
                // one a tombstone covers, which the retainer drops): the
                // walk takes in the rest of the stripe's operands.
                let (user_key, seqno) = (k.user_key.to_vec(), k.seqno);
                // Leaves `it` at the entry that ended the walk.
                let (merged, _) = c.collect(&mut it, &user_key, seqno, covering, true)?;
                let full = merged.first().is_some_and(|m| m.1 == ValueKind::Put);
                for (seqno, kind, value) in merged {
                    builder
                        .add(&user_key, seqno, kind, &value)
                        .map_err(|e| table_write_error(&path, e))?;
                }
                // A full merge took in the base, or stopped at a delete or
                // tombstone: it hides what is left of the key in its stripe
                // (the retainer drops it). Operands written as operands
                // hide nothing: what ended the walk is judged afresh.
                if !full {
                    retainer.forget_key();
                }
                continue;
            }
            // A plain put large enough goes to a blob file, its
            // reference to the table (docs/design/blob-files.md).
            let separated = match (&mut blobs, k.kind) {
                (Some(b), ValueKind::Put) => b.separate(k.user_key, it.value())?,
                _ => None,
            };
            match separated {
                Some(reference) => {
                    builder.add(k.user_key, k.seqno, ValueKind::BlobIndex, &reference)
                }
                None => builder.add(k.user_key, k.seqno, k.kind, it.value()),
            }
            .map_err(|e| table_write_error(&path, e))?;
            it.next()?;
        }
        for t in &tombstones {
            builder
                .add_range_tombstone(&t.start, t.end.as_deref(), t.seqno)
                .map_err(|e| table_write_error(&path, e))?;
        }
        if builder.num_entries() == 0 && builder.num_range_tombstones() == 0 {
            return Ok(None);
        }
        // The blob files are synced before the table, and both before
        // the directory and the MANIFEST edit that lists them.
        let blob_files = match blobs.take() {
            Some(b) => b.finish()?,
            None => Vec::new(),
        };
        let table = finish_table(opener, number, builder, 0, blob_files)?;
        opener
            .fs
            .sync_dir(&opener.dir)
            .map_err(|e| Error::io("sync directory", &opener.dir, e))?;
        Ok(Some(table))
    })();
    // Blob files of a flush that installs no table are removed here (on
    // an error after `finish`, the next open removes them as strays).
    if let (false, Some(b)) = (matches!(result, Ok(Some(_))), blobs) {
        b.abandon();
    }
    match result {
        Ok(Some(file)) => Ok(Some(file)),
        Ok(None) => {
            let _ = opener.fs.remove(&path);
            Ok(None)
        }
        Err(e) => {
            let _ = opener.fs.remove(&path);
            Err(e)
        }
    }
}

/// Finish table `number`: write its meta blocks and footer, fsync it, and
/// open it (reading back the footer, index and filter just written). The
/// caller makes the directory entry durable.
pub(crate) fn finish_table(
    opener: &TableOpener,
    number: u64,
    builder: TableBuilder<WriteAdapter>,
    level: usize,
    blob_refs: Vec<(u64, crate::version::BlobRefCount)>,
) -> Result<Arc<TableFile>> {
    let path = table_path(&opener.dir, number);
    let built = builder.finish().map_err(|e| table_write_error(&path, e))?;
    let mut meta = FileMeta::from_built(number, &built);
    (meta.blob_files, meta.blob_refs) = blob_refs.into_iter().unzip();
    let WriteAdapter(mut file, ..) = built.writer;
    file.sync().map_err(|e| Error::io("sync", &path, e))?;
    drop(file);
    // The bounds cover the range tombstones too (a tombstone-only table has
    // no point keys; one may reach past the last point key): `meta` takes
    // them from the built table, not from the point keys' properties.
    opener.open(meta, level)
}
