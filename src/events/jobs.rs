//! The events of one flush or compaction: a tracing span around the job,
//! a tracing event at its end with what it did, and the listener
//! callbacks at its beginning and end. The engine's job code holds one of
//! these and reports to it; it holds no engine lock while doing so.

use super::listener::{
    CompactionJobInfo, CompactionReason, FlushJobInfo, TableFileCreationInfo,
    TableFileCreationReason, TableFileDeletionInfo,
};
use super::notifier::Notifier;
use crate::version::TableFile;
use std::sync::Arc;
use std::time::Instant;

/// A table as the events report it.
fn created(
    keyspace: &str,
    level: usize,
    f: &TableFile,
    reason: TableFileCreationReason,
) -> TableFileCreationInfo {
    TableFileCreationInfo {
        keyspace: keyspace.to_owned(),
        level,
        file_number: f.meta.number,
        file_size: f.meta.size,
        entries: f.table().properties().num_entries,
        reason,
    }
}

/// One flush in progress.
pub(crate) struct FlushEvents<'a> {
    notifier: &'a Notifier,
    info: FlushJobInfo,
    start: Instant,
    _span: tracing::span::EnteredSpan,
}

impl<'a> FlushEvents<'a> {
    /// A flush of `keyspace`'s memtable of `memtable_bytes`, logged to WAL
    /// `wal_number`, begins.
    pub fn begin(
        notifier: &'a Notifier,
        keyspace: &str,
        wal_number: u64,
        memtable_bytes: u64,
    ) -> Self {
        let span = tracing::info_span!("flush", keyspace, wal_number).entered();
        tracing::debug!(memtable_bytes, "flush started");
        let info = FlushJobInfo {
            keyspace: keyspace.to_owned(),
            wal_number,
            memtable_bytes,
            file_number: 0,
            bytes_written: 0,
            duration: Default::default(),
        };
        if notifier.any() {
            notifier.notify("on_flush_begin", |l| l.on_flush_begin(&info));
        }
        FlushEvents {
            notifier,
            info,
            start: Instant::now(),
            _span: span,
        }
    }

    /// The flush wrote `table` (before installing it).
    pub fn table_created(&mut self, table: &TableFile) {
        self.info.file_number = table.meta.number;
        self.info.bytes_written = table.meta.size;
        if self.notifier.any() {
            let info = created(
                &self.info.keyspace,
                0,
                table,
                TableFileCreationReason::Flush,
            );
            self.notifier
                .notify("on_table_file_created", |l| l.on_table_file_created(&info));
        }
    }

    /// The flush is installed.
    pub fn completed(mut self) {
        self.info.duration = self.start.elapsed();
        tracing::info!(
            file_number = self.info.file_number,
            bytes_written = self.info.bytes_written,
            micros = self.info.duration.as_micros() as u64,
            "flush completed"
        );
        if self.notifier.any() {
            let info = &self.info;
            self.notifier
                .notify("on_flush_completed", |l| l.on_flush_completed(info));
        }
    }
}

/// One compaction in progress.
pub(crate) struct CompactionEvents<'a> {
    notifier: &'a Notifier,
    info: CompactionJobInfo,
    /// `(level, number)` of each input table.
    inputs: Vec<(usize, u64)>,
    start: Instant,
    _span: tracing::span::EnteredSpan,
}

impl<'a> CompactionEvents<'a> {
    /// A compaction of `keyspace` begins: `inputs` as `(level, table)`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one value per field the events report"
    )]
    pub fn begin<'t>(
        notifier: &'a Notifier,
        keyspace: &str,
        level: usize,
        output_level: usize,
        inputs: impl Iterator<Item = (usize, &'t Arc<TableFile>)>,
        manual: bool,
        delete_only: bool,
        trivial_move: bool,
    ) -> Self {
        let reason = if delete_only {
            CompactionReason::DeleteOnly
        } else if manual {
            CompactionReason::ManualCompaction
        } else if level == 0 {
            CompactionReason::LevelL0FilesNum
        } else {
            CompactionReason::LevelMaxLevelSize
        };
        let inputs: Vec<(usize, u64, u64)> = inputs
            .map(|(l, f)| (l, f.meta.number, f.meta.size))
            .collect();
        let input_bytes = inputs.iter().map(|&(_, _, size)| size).sum();
        let span =
            tracing::info_span!("compaction", keyspace, level, output_level, ?reason).entered();
        tracing::debug!(
            inputs = ?inputs.iter().map(|&(_, n, _)| n).collect::<Vec<_>>(),
            input_bytes,
            trivial_move,
            "compaction started"
        );
        let info = CompactionJobInfo {
            keyspace: keyspace.to_owned(),
            reason,
            level,
            output_level,
            input_files: inputs.iter().map(|&(_, n, _)| n).collect(),
            output_files: Vec::new(),
            input_bytes,
            bytes_written: 0,
            keys_in: 0,
            keys_dropped: 0,
            trivial_move,
            duration: Default::default(),
        };
        if notifier.any() {
            notifier.notify("on_compaction_begin", |l| l.on_compaction_begin(&info));
        }
        CompactionEvents {
            notifier,
            info,
            inputs: inputs.iter().map(|&(l, n, _)| (l, n)).collect(),
            start: Instant::now(),
            _span: span,
        }
    }

    /// The compaction wrote `outputs` (before installing them).
    pub fn tables_created(&mut self, outputs: &[Arc<TableFile>]) {
        self.info.output_files = outputs.iter().map(|f| f.meta.number).collect();
        if self.notifier.any() && !self.info.trivial_move {
            for f in outputs {
                let info = created(
                    &self.info.keyspace,
                    self.info.output_level,
                    f,
                    TableFileCreationReason::Compaction,
                );
                self.notifier
                    .notify("on_table_file_created", |l| l.on_table_file_created(&info));
            }
        }
    }

    /// The compaction is installed: it wrote `bytes_written`, read
    /// `keys_in` entries and dropped `keys_dropped`.
    pub fn completed(mut self, bytes_written: u64, keys_in: u64, keys_dropped: u64) {
        self.info.duration = self.start.elapsed();
        self.info.bytes_written = bytes_written;
        self.info.keys_in = keys_in;
        self.info.keys_dropped = keys_dropped;
        tracing::info!(
            outputs = ?self.info.output_files,
            input_bytes = self.info.input_bytes,
            bytes_written,
            keys_in,
            keys_dropped,
            micros = self.info.duration.as_micros() as u64,
            "compaction completed"
        );
        if !self.notifier.any() {
            return;
        }
        if !self.info.trivial_move {
            for &(level, file_number) in &self.inputs {
                let info = TableFileDeletionInfo {
                    keyspace: self.info.keyspace.clone(),
                    level,
                    file_number,
                };
                self.notifier
                    .notify("on_table_file_deleted", |l| l.on_table_file_deleted(&info));
            }
        }
        let info = &self.info;
        self.notifier.notify("on_compaction_completed", |l| {
            l.on_compaction_completed(info)
        });
    }
}
