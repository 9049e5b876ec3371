//! Running a compaction: a k-way merge of the inputs into new tables of the
//! output level, installed with one version edit.

use super::blob_gc::{compaction_garbage, BlobRelocator};
use super::filtering::{FilterRun, Filtered};
use super::merge_collect::{output_label, MergeCollector};
use super::outputs::{OutputSink, Outputs};
use super::picker::{any_overlapping, key_range, Compaction};
use super::range_dels::{CompactionRangeDels, PendingTombstones};
use super::retain::{Decision, Retainer, Stripes};
use crate::compaction_filter::CompactionFilterContext;
use crate::core::DbInner;
use crate::error::{table_write_error, Error, Result};
use crate::events::{job_status, CompactionEvents, JobStatus};
use crate::filename::table_path;
use crate::flush::finish_table;
use crate::fs::WriteAdapter;
use crate::iter::{InternalIterator, LevelIter, MergingIter, TableFileIter};
use crate::keyspace::KeyspaceState;
use crate::rate_limiter::IoPriority;
use crate::read::SuperVersion;
use crate::stats::CompactionResult;
use crate::version::{BlobRefCount, KeyRange, TableFile, VersionEdit};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use strata_sstable::{
    parse_internal_key, BlockReadOptions, SeqNo, TableBuilder, TableOptions, ValueKind,
};

/// How a compaction reads its inputs: checked, but not put in the block
/// cache, whose blocks of tables about to be deleted would only evict
/// what readers use (RocksDB reads compaction inputs with
/// `fill_cache = false` too), in large sequential reads of
/// `compaction_readahead_size`.
fn input_reads(readahead_bytes: usize) -> BlockReadOptions {
    BlockReadOptions {
        verify_checksums: true,
        fill_cache: false,
        readahead_bytes,
    }
}

impl DbInner {
    /// Run `c`, a compaction of `ks`, and install its result. On error
    /// nothing is installed and any output written is removed. A keyspace
    /// dropped meanwhile installs nothing and is no error.
    pub(crate) fn run_compaction(
        &self,
        ks: &KeyspaceState,
        c: Compaction,
    ) -> Result<CompactionResult> {
        let _ = self.hook(crate::hook::HookPoint::Compaction);
        let mut events = CompactionEvents::begin(
            &self.events,
            &ks.name,
            c.level,
            c.output_level,
            c.all_inputs(),
            c.manual,
            c.delete_only,
            c.trivial_move,
        );
        let outcome = self.compact_and_install(ks, c, &mut events);
        match &outcome {
            Ok((result, JobStatus::Ok)) => {
                events.completed(result.written, result.keys_in, result.keys_dropped)
            }
            Ok((_, status)) => events.ended(status.clone()),
            Err(e) => events.ended(job_status(Err(e))),
        }
        outcome.map(|(result, _)| result)
    }

    /// The work of [`run_compaction`](Self::run_compaction), reporting
    /// the tables it wrote to `events`: the result, and how it ended
    /// (`Ok`: installed; `KeyspaceDropped`: not, the keyspace was dropped
    /// meanwhile).
    fn compact_and_install(
        &self,
        ks: &KeyspaceState,
        c: Compaction,
        events: &mut CompactionEvents<'_>,
    ) -> Result<(CompactionResult, JobStatus)> {
        let start = Instant::now();
        let mut result = CompactionResult::default();
        let mut edit = VersionEdit {
            keyspace: ks.id,
            ..VersionEdit::default()
        };
        for (level, f) in c.all_inputs() {
            edit.deleted_files.push((level, f.meta.number));
        }
        // A run whose filter changed a version a snapshot taken meanwhile
        // reads is redone (see below): with the filter while the retries
        // last (the redo's stripes keep that snapshot's versions), then
        // without it, so that snapshots taken at every run cannot hold the
        // compaction back for ever; the filter then sees those keys at
        // their next compaction. A manual compaction tries harder: it was
        // asked for to run the filter.
        let filter_runs = if c.manual { 4 } else { 2 };
        let mut runs = 0;
        let (outputs, mut versions) = loop {
            runs += 1;
            // The smallest sequence number the compaction filter changed.
            let mut filtered_from = None;
            let outputs = if c.delete_only {
                // Covered for every reader (`delete_only.rs`): nothing to read.
                result.deleted_only_bytes = c.input_bytes().0;
                Vec::new()
            } else if c.trivial_move {
                let f = Arc::clone(&c.inputs[0]);
                result.moved = f.meta.size;
                vec![f]
            } else {
                result = CompactionResult::default();
                let (r_in, r_out) = c.input_bytes();
                result.read_input_level = r_in;
                result.read_output_level = r_out;
                let apply_filter = runs <= filter_runs;
                let (outputs, from) = self.write_outputs(ks, &c, &mut result, apply_filter)?;
                filtered_from = from;
                outputs
            };
            events.tables_created(&outputs);
            let versions = self.versions.lock();
            // A snapshot taken while the compaction ran, at or above a
            // version the filter changed, reads that version and would see
            // the change appear at the install: drop the work and redo it.
            // The redo knows the snapshot and leaves those versions be.
            // (Taken after this check, before the install below, such a
            // snapshot can still see it: docs/design/compaction-filter.md.)
            if filtered_from.is_some_and(|q| self.snapshots.newest().is_some_and(|s| s >= q)) {
                drop(versions);
                for f in &outputs {
                    f.mark_obsolete();
                }
                tracing::info!(
                    keyspace = %ks.name,
                    level = c.level,
                    run = runs,
                    "compaction redone: a snapshot taken meanwhile reads what its filter changed"
                );
                continue;
            }
            break (outputs, versions);
        };
        for f in &outputs {
            edit.new_files.push((c.output_level, f.meta.clone()));
            if !c.trivial_move {
                result.written += f.meta.size;
            }
        }
        if !c.trivial_move {
            // What the inputs referred to and the outputs do not is
            // garbage, recorded with the result (`blob_gc.rs`).
            edit.blob_garbage = compaction_garbage(c.all_inputs().map(|(_, f)| f), &outputs);
        }
        {
            let version = match versions.log_and_apply(edit, &outputs) {
                Ok(version) => version,
                Err(Error::KeyspaceDropped { .. }) => {
                    if !c.trivial_move {
                        for f in &outputs {
                            f.mark_obsolete();
                        }
                    }
                    return Ok((result, JobStatus::KeyspaceDropped));
                }
                Err(e) => return Err(e),
            };
            self.update_super_version(ks, |sv| SuperVersion {
                mem: Arc::clone(&sv.mem),
                imms: sv.imms.clone(),
                version,
            });
        }
        if !c.trivial_move {
            // The inputs are out of the version: their pages in the page
            // cache would only crowd out what readers use until the files
            // are deleted (which an old iterator may delay).
            for (_, f) in c.all_inputs() {
                f.drop_page_cache();
            }
        }
        result.micros = start.elapsed().as_micros() as u64;
        self.stats
            .record_compaction(&ks.counters, c.output_level, &result);
        Ok((result, JobStatus::Ok))
    }

    /// The snapshot stripes a compaction keeps versions for: the live
    /// snapshots and the visible sequence number (what every later reader
    /// sees at least). A snapshot taken after this reads a sequence number
    /// at least that visible one (`SnapshotList::acquire`), so one missing
    /// here is newer than everything in the tables.
    pub(crate) fn compaction_stripes(&self) -> Stripes {
        let mut snapshots = self.snapshots.sequences();
        let newest_live = snapshots.last().copied();
        snapshots.push(self.visible_sequence());
        Stripes::new(snapshots).with_newest_live(newest_live)
    }

    fn write_outputs(
        &self,
        ks: &KeyspaceState,
        c: &Compaction,
        result: &mut CompactionResult,
        apply_filter: bool,
    ) -> Result<(Vec<Arc<TableFile>>, Option<SeqNo>)> {
        let reads = input_reads(self.options.compaction_readahead_size);
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
        if c.level == 0 {
            for f in &c.inputs {
                children.push(Box::new(TableFileIter::new(Arc::clone(f), reads)));
            }
        } else {
            children.push(Box::new(LevelIter::new(sorted(&c.inputs), reads)));
        }
        if !c.overlaps.is_empty() {
            children.push(Box::new(LevelIter::new(sorted(&c.overlaps), reads)));
        }
        // Without range tombstones' skipping: the merge must see every
        // entry, covered or not, to decide on it (`retain.rs`).
        let mut input = MergingIter::new(children);
        input.seek_to_first()?;

        let stripes = self.compaction_stripes();
        let options = ks.options();
        // Every level below, up to the deepest there is: a table left below
        // `num_levels` (a compaction picked before the keyspace's options
        // changed) must keep the tombstones above it.
        let deeper_levels = (c.output_level + 1)..crate::version::NUM_LEVELS;
        let deeper = |ukey: &[u8]| {
            deeper_levels.clone().any(|level| {
                let files = c.version.files(level);
                let i = files.partition_point(|f| f.meta.ends_before(ukey));
                files.get(i).is_some_and(|f| f.meta.may_contain(ukey))
            })
        };
        let deeper_overlaps = |range: &KeyRange| {
            deeper_levels
                .clone()
                .any(|level| any_overlapping(c.version.files(level), range))
        };
        let mut range_dels = CompactionRangeDels::new(
            c.all_inputs()
                .filter_map(|(_, f)| f.table().range_tombstones().map(|l| &**l)),
        );
        let retained = range_dels.retained(&stripes, deeper_overlaps);
        // Operands are combined only with the operator they were written
        // for (docs/design/merge.md §4).
        let (merge_label, may_merge) = output_label(
            options.merge_operator.as_ref(),
            c.all_inputs()
                .map(|(_, f)| f.table().properties())
                .filter(|p| p.num_merge_operands > 0)
                .map(|p| p.merge_operator.as_str()),
        );
        // Expiry is judged at one moment for the whole compaction.
        let now_micros = self.options.clock.now_micros();
        let merges = MergeCollector {
            operator: options.merge_operator.as_ref().filter(|_| may_merge),
            stripes: &stripes,
            now_micros,
        };
        let mut retainer = Retainer::new(stripes.clone());
        let levels_files: usize = (0..crate::version::NUM_LEVELS)
            .map(|level| c.version.files(level).len())
            .sum();
        let context = CompactionFilterContext {
            is_full_compaction: c.all_inputs().count() == levels_files,
            is_manual_compaction: c.manual,
            level: c.level,
            output_level: c.output_level,
            is_bottommost: key_range(c.all_inputs().map(|(_, f)| &f.meta))
                .is_none_or(|range| !deeper_overlaps(&range)),
        };
        let mut filter = FilterRun::new(
            options
                .compaction_filter_factory
                .as_ref()
                .filter(|_| apply_filter),
            &context,
            &stripes,
        )?;

        let opener = self.versions.lock().opener().clone();
        let mut new_blob_number = || self.versions.lock().new_file_number();
        let sink = TableFiles {
            db: self,
            table_options: options.table_options(c.output_level),
            level: c.output_level,
            merge_label,
            current: None,
            created: Vec::new(),
            done: Vec::new(),
            blob_refs: BTreeMap::new(),
            relocator: BlobRelocator::new(
                &c.version,
                &options,
                c.manual,
                ks.id,
                &opener,
                &mut new_blob_number,
            ),
        };
        let mut out = Outputs::new(
            sink,
            PendingTombstones::new(&retained),
            &c.grandparents,
            options.target_file_size_base,
        );
        let mut last_key: Vec<u8> = Vec::new();
        let mut first = true;
        let written = (|| {
            while input.valid() {
                let Some(k) = parse_internal_key(input.key()) else {
                    return Err(Error::corruption(
                        c.inputs[0].path(),
                        0,
                        "compaction input holds a malformed key",
                    ));
                };
                result.keys_in += 1;
                let new_key = first || k.user_key != last_key.as_slice();
                if new_key {
                    if result.keys_in.is_multiple_of(1024) && self.closing.load(Ordering::Acquire) {
                        return Err(Error::Closed);
                    }
                    // Cut only between user keys: a key's versions never
                    // span two tables of a level.
                    out.maybe_cut(k.user_key)?;
                    last_key.clear();
                    last_key.extend_from_slice(k.user_key);
                    first = false;
                }
                let covering = range_dels.covering_seqnos(k.user_key);
                // An expired value is a delete for every reader, snapshots
                // included (expiry goes by the clock, not the sequence).
                let (kind, expiry, value) = match k.kind {
                    ValueKind::PutWithExpiry => {
                        let Some((expiry, value)) = crate::ttl::split_expiring(input.value())
                        else {
                            return Err(Error::corruption(
                                c.inputs[0].path(),
                                0,
                                "compaction input holds an expiring value shorter than its expiry",
                            ));
                        };
                        if expiry <= now_micros {
                            (ValueKind::Delete, None, &[][..])
                        } else {
                            (k.kind, Some(expiry), value)
                        }
                    }
                    kind => (kind, None, input.value()),
                };
                match retainer.decide(k.user_key, k.seqno, kind, covering, deeper) {
                    Decision::Keep if k.kind == ValueKind::Merge => {
                        if merges.operator.is_none() {
                            // Kept as they are; what lies below them
                            // still counts, so judge it afresh.
                            out.add(k.user_key, k.seqno, k.kind, input.value())?;
                            retainer.forget_key();
                        } else {
                            let (seqno, covering) = (k.seqno, covering.to_vec());
                            let deeper_has_key = deeper(k.user_key);
                            let (merged, consumed) = merges.collect(
                                &mut input,
                                &last_key,
                                seqno,
                                &covering,
                                deeper_has_key,
                            )?;
                            result.keys_in += consumed - 1;
                            // Operands merged into fewer entries.
                            result.keys_dropped += consumed - merged.len() as u64;
                            for (q, kind, value) in &merged {
                                out.add(&last_key, *q, *kind, value)?;
                            }
                            // Operands written as operands shadow nothing:
                            // what ended the walk (an expiring put, an older
                            // stripe's entry) is judged afresh.
                            if merged.last().is_some_and(|m| m.1 == ValueKind::Merge) {
                                retainer.forget_key();
                            }
                            // `input` is at the entry that ended the walk.
                            continue;
                        }
                    }
                    Decision::Keep if matches!(kind, ValueKind::Put | ValueKind::PutWithExpiry) => {
                        match filter.judge(new_key, k.user_key, k.seqno, value, deeper)? {
                            Filtered::Keep => {
                                out.add(k.user_key, k.seqno, k.kind, input.value())?
                            }
                            Filtered::Change(v) => match expiry {
                                // An expiring value keeps its expiry.
                                Some(expiry) => {
                                    let mut stored = Vec::new();
                                    crate::ttl::encode_expiring(&mut stored, expiry, &v);
                                    out.add(k.user_key, k.seqno, k.kind, &stored)?
                                }
                                None => out.add(k.user_key, k.seqno, k.kind, &v)?,
                            },
                            Filtered::Tombstone => {
                                out.add(k.user_key, k.seqno, ValueKind::Delete, &[])?
                            }
                            Filtered::Drop => result.keys_dropped += 1,
                        }
                    }
                    Decision::Keep if kind == ValueKind::BlobIndex => {
                        // A live value in an old blob file moves to a new
                        // one (`blob_gc.rs`).
                        match out.sink_mut().relocate(k.user_key, value)? {
                            Some((kind, value)) => out.add(k.user_key, k.seqno, kind, &value)?,
                            None => out.add(k.user_key, k.seqno, kind, value)?,
                        }
                    }
                    Decision::Keep => out.add(k.user_key, k.seqno, kind, value)?,
                    Decision::DropShadowed | Decision::DropTombstone | Decision::DropCovered => {
                        result.keys_dropped += 1
                    }
                }
                input.next()?;
            }
            out.finish()?;
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("sync directory", &self.dir, e))
        })();
        let sink = out.into_sink();
        if let Some(r) = &sink.relocator {
            result.written += r.bytes_written();
            if r.relocated > 0 {
                tracing::debug!(
                    keyspace = %ks.name,
                    relocated = r.relocated,
                    "compaction relocated live values out of old blob files"
                );
            }
        }
        match written {
            Ok(()) => Ok((sink.done, filter.changed_from)),
            Err(e) => {
                sink.abandon();
                Err(e)
            }
        }
    }
}

fn sorted(files: &[Arc<TableFile>]) -> Arc<[Arc<TableFile>]> {
    let mut v = files.to_vec();
    v.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
    Arc::from(v)
}

/// A compaction's output tables as files of the database.
struct TableFiles<'a> {
    db: &'a DbInner,
    table_options: TableOptions,
    /// The output level.
    level: usize,
    /// The merge operator name the outputs' operands are labelled with.
    merge_label: String,
    /// The number of the table being written.
    current: Option<u64>,
    /// Numbers of files created, finished or not (removed on failure).
    created: Vec<u64>,
    done: Vec<Arc<TableFile>>,
    /// The blob references the table being written holds, per blob file:
    /// what it lists (docs/design/blob-files.md).
    blob_refs: BTreeMap<u64, BlobRefCount>,
    /// Garbage collection's relocation of live values (`None`: off).
    relocator: Option<BlobRelocator<'a>>,
}

impl OutputSink for TableFiles<'_> {
    type Writer = WriteAdapter;

    fn create(&mut self) -> Result<TableBuilder<WriteAdapter>> {
        let number = self.db.versions.lock().new_file_number()?;
        self.created.push(number);
        self.current = Some(number);
        let path = table_path(&self.db.dir, number);
        let file = self
            .db
            .fs
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let mut builder = TableBuilder::new(
            self.db.table_writer(file, IoPriority::Low),
            self.table_options.clone(),
        )
        .map_err(|e| table_write_error(&path, e))?;
        builder.set_merge_operator_name(&self.merge_label);
        builder.set_creation_time(self.db.options.clock.now_micros() / 1_000_000);
        Ok(builder)
    }

    fn write_error(&self, e: strata_sstable::Error) -> Error {
        table_write_error(table_path(&self.db.dir, self.current.unwrap_or(0)), e)
    }

    fn finish(&mut self, builder: TableBuilder<WriteAdapter>) -> Result<()> {
        let number = self.current.take().unwrap_or(0);
        // The values it relocated are synced before it is opened.
        if let Some(r) = &mut self.relocator {
            r.finish_file()?;
        }
        let opener = self.db.versions.lock().opener().clone();
        let blob_refs = std::mem::take(&mut self.blob_refs).into_iter().collect();
        let table = finish_table(&opener, number, builder, self.level, blob_refs)?;
        if self.db.options.compaction_output_drop_page_cache {
            table.drop_page_cache();
        }
        self.done.push(table);
        Ok(())
    }

    fn added(&mut self, kind: ValueKind, value: &[u8]) {
        if kind != ValueKind::BlobIndex {
            return;
        }
        // A malformed reference is no blob file's (reads report it).
        if let Some(r) = strata_sstable::blob::BlobRef::decode(value) {
            let refs = self.blob_refs.entry(r.file_number).or_default();
            *refs = refs.plus(BlobRefCount {
                count: 1,
                bytes: u64::from(r.size),
            });
        }
    }
}

impl TableFiles<'_> {
    /// The entry to write in place of `user_key`'s blob reference
    /// `reference` (`None`: itself), as garbage collection decides.
    fn relocate(
        &mut self,
        user_key: &[u8],
        reference: &[u8],
    ) -> Result<Option<(ValueKind, Vec<u8>)>> {
        match &mut self.relocator {
            Some(r) => r.relocate(user_key, reference),
            None => Ok(None),
        }
    }

    /// Remove every output file (the compaction failed).
    fn abandon(self) {
        // Opened, so each counts as a live table of the blob files it
        // lists: obsolete gives those counts back (else a blob file would
        // outlive its last real table) and deletes the table's file.
        for f in &self.done {
            f.mark_obsolete();
        }
        drop(self.done);
        if let Some(r) = self.relocator {
            r.abandon();
        }
        for number in self.created {
            let _ = self.db.fs.remove(&table_path(&self.db.dir, number));
        }
    }
}
