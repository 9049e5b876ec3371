//! The events of one flush or compaction: a tracing span around the job,
//! a tracing event at its end with what it did, and the listener
//! callbacks at its beginning and end. The engine's job code holds one of
//! these and reports to it; it holds no engine lock while doing so.
//!
//! Every begin is paired with one completion, whatever the end: installed
//! (`JobStatus::Ok`), abandoned because its keyspace was dropped, failed,
//! or (the job panicked) dropped unreported: the completion is then
//! deferred, as no listener may run while the thread unwinds.

use super::listener::{
    CompactionJobInfo, CompactionReason, FlushJobInfo, JobStatus, TableFileCreationInfo,
    TableFileCreationReason, TableFileDeletionInfo,
};
use super::notifier::{Deferred, Notifier};
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

/// How a job ended, for the tracing event and the completion: its
/// status, from the job's outcome (`Ok(true)`: installed; `Ok(false)`:
/// its keyspace was dropped).
pub(crate) fn job_status(outcome: Result<bool, &crate::Error>) -> JobStatus {
    match outcome {
        Ok(true) => JobStatus::Ok,
        Ok(false) => JobStatus::KeyspaceDropped,
        Err(e) => JobStatus::Failed(e.to_string()),
    }
}

/// The status of a job whose events were dropped unreported.
const PANICKED: &str = "the job panicked";

/// One flush in progress.
pub(crate) struct FlushEvents<'a> {
    notifier: &'a Notifier,
    info: FlushJobInfo,
    start: Instant,
    /// The completion was reported.
    ended: bool,
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
            status: JobStatus::Ok,
        };
        if notifier.any() {
            notifier.job_event(Deferred::FlushBegin(info.clone()));
        }
        FlushEvents {
            notifier,
            info,
            start: Instant::now(),
            ended: false,
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
            self.notifier.job_event(Deferred::TableFileCreated(info));
        }
    }

    /// The flush ended with `status`: installed, or not.
    pub fn ended(mut self, status: JobStatus) {
        self.info.duration = self.start.elapsed();
        let micros = self.info.duration.as_micros() as u64;
        match &status {
            JobStatus::Ok => tracing::info!(
                file_number = self.info.file_number,
                bytes_written = self.info.bytes_written,
                micros,
                "flush completed"
            ),
            JobStatus::KeyspaceDropped => {
                tracing::info!(micros, "flush abandoned: its keyspace was dropped")
            }
            JobStatus::Failed(error) => tracing::warn!(%error, micros, "flush failed"),
        }
        self.info.status = status;
        self.ended = true;
        if self.notifier.any() {
            self.notifier
                .job_event(Deferred::FlushCompleted(self.info.clone()));
        }
    }
}

impl Drop for FlushEvents<'_> {
    fn drop(&mut self) {
        if self.ended || !self.notifier.any() {
            return;
        }
        // Unwinding: deferred, delivered by the next thread free to.
        self.info.duration = self.start.elapsed();
        self.info.status = JobStatus::Failed(PANICKED.into());
        self.notifier
            .defer(Deferred::FlushCompleted(self.info.clone()));
    }
}

/// One compaction in progress.
pub(crate) struct CompactionEvents<'a> {
    notifier: &'a Notifier,
    info: CompactionJobInfo,
    /// `(level, number)` of each input table.
    inputs: Vec<(usize, u64)>,
    start: Instant,
    /// The completion was reported.
    ended: bool,
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
            status: JobStatus::Ok,
        };
        if notifier.any() {
            notifier.job_event(Deferred::CompactionBegin(info.clone()));
        }
        CompactionEvents {
            notifier,
            info,
            inputs: inputs.iter().map(|&(l, n, _)| (l, n)).collect(),
            start: Instant::now(),
            ended: false,
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
                self.notifier.job_event(Deferred::TableFileCreated(info));
            }
        }
    }

    /// The compaction is installed: it wrote `bytes_written`, read
    /// `keys_in` entries and dropped `keys_dropped`.
    pub fn completed(mut self, bytes_written: u64, keys_in: u64, keys_dropped: u64) {
        self.info.bytes_written = bytes_written;
        self.info.keys_in = keys_in;
        self.info.keys_dropped = keys_dropped;
        self.ended(JobStatus::Ok);
    }

    /// The compaction ended with `status`: installed (see
    /// [`completed`](Self::completed)), or not (then its inputs stay).
    pub fn ended(mut self, status: JobStatus) {
        self.info.duration = self.start.elapsed();
        let micros = self.info.duration.as_micros() as u64;
        match &status {
            JobStatus::Ok => tracing::info!(
                outputs = ?self.info.output_files,
                input_bytes = self.info.input_bytes,
                bytes_written = self.info.bytes_written,
                keys_in = self.info.keys_in,
                keys_dropped = self.info.keys_dropped,
                micros,
                "compaction completed"
            ),
            JobStatus::KeyspaceDropped => {
                tracing::info!(micros, "compaction abandoned: its keyspace was dropped")
            }
            JobStatus::Failed(error) => tracing::warn!(%error, micros, "compaction failed"),
        }
        let installed = status == JobStatus::Ok;
        self.info.status = status;
        self.ended = true;
        if !self.notifier.any() {
            return;
        }
        if installed && !self.info.trivial_move {
            for &(level, file_number) in &self.inputs {
                let info = TableFileDeletionInfo {
                    keyspace: self.info.keyspace.clone(),
                    level,
                    file_number,
                };
                self.notifier.job_event(Deferred::TableFileDeleted(info));
            }
        }
        self.notifier
            .job_event(Deferred::CompactionCompleted(self.info.clone()));
    }
}

impl Drop for CompactionEvents<'_> {
    fn drop(&mut self) {
        if self.ended || !self.notifier.any() {
            return;
        }
        // Unwinding: deferred, delivered by the next thread free to.
        self.info.duration = self.start.elapsed();
        self.info.status = JobStatus::Failed(PANICKED.into());
        self.notifier
            .defer(Deferred::CompactionCompleted(self.info.clone()));
    }
}
