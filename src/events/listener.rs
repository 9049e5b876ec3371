//! `EventListener`: callbacks an application registers in
//! [`Options::listeners`](crate::Options::listeners) to hear what the
//! engine does in the background (RocksDB's `EventListener`, with
//! strata's names), and the structs each callback receives.
//!
//! The rules (docs/observability.md): callbacks run on the thread that
//! did the work (a background thread, or the caller's with
//! `inline_background_work`), never while an engine lock is held and
//! never inside a write; a panic in one is caught, logged through
//! `tracing` and counted, and the engine goes on. A callback that blocks
//! holds up that thread's work: hand slow work to a thread of your own.

use crate::error::Error;
use std::sync::Arc;
use std::time::Duration;

/// Callbacks for the engine's background events. Every method has an
/// empty default body: implement those you need.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
/// use strata::{EventListener, FlushJobInfo, Options};
///
/// #[derive(Default)]
/// struct FlushCounter(AtomicU64);
///
/// impl EventListener for FlushCounter {
///     fn on_flush_completed(&self, info: &FlushJobInfo) {
///         self.0.fetch_add(info.bytes_written, Ordering::Relaxed);
///     }
/// }
///
/// let mut options = Options::default();
/// options.listeners.push(Arc::new(FlushCounter::default()));
/// ```
pub trait EventListener: Send + Sync {
    /// A flush of a frozen memtable is about to start.
    fn on_flush_begin(&self, _info: &FlushJobInfo) {}
    /// A flush ended: with `info.status` [`JobStatus::Ok`] its table (if
    /// any) is installed; otherwise nothing is. Every begin is followed
    /// by one completion.
    fn on_flush_completed(&self, _info: &FlushJobInfo) {}
    /// A compaction is about to start.
    fn on_compaction_begin(&self, _info: &CompactionJobInfo) {}
    /// A compaction ended: with `info.status` [`JobStatus::Ok`] its result
    /// is installed; otherwise nothing is. Every begin is followed by one
    /// completion.
    fn on_compaction_completed(&self, _info: &CompactionJobInfo) {}
    /// A flush or compaction wrote a table file (before it is installed).
    fn on_table_file_created(&self, _info: &TableFileCreationInfo) {}
    /// A table file left the database's versions (a compaction's input):
    /// it is deleted from disk once no reader holds it.
    fn on_table_file_deleted(&self, _info: &TableFileDeletionInfo) {}
    /// Writes began to be delayed or stopped, or flow again.
    fn on_stall_conditions_changed(&self, _info: &WriteStallInfo) {}
    /// A background error stopped writes (the first one: later ones while
    /// it stands are not reported).
    fn on_background_error(&self, _info: &BackgroundErrorInfo) {}
    /// A WAL file was created for a memtable rotation (made ahead by the
    /// flush thread, or by the rotation itself). The WAL made at open is
    /// not reported: no listener can act on the database before it is open.
    fn on_wal_file_created(&self, _info: &WalFileCreationInfo) {}
}

/// A flush, at its beginning (outputs empty) or its end.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlushJobInfo {
    /// The keyspace flushed.
    pub keyspace: String,
    /// The WAL the memtable logged to.
    pub wal_number: u64,
    /// Approximate bytes the memtable holds.
    pub memtable_bytes: u64,
    /// The table written, if the memtable held anything (0 at the
    /// beginning, and when nothing was written).
    pub file_number: u64,
    /// Bytes of the table written (0 at the beginning).
    pub bytes_written: u64,
    /// How long the flush took (zero at the beginning).
    pub duration: Duration,
    /// How it ended (`Ok` at the beginning).
    pub status: JobStatus,
}

/// How a flush or compaction ended (RocksDB's `status` in its job info).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobStatus {
    /// Its result is installed (and, at the beginning: not ended yet).
    Ok,
    /// Its keyspace was dropped while it ran: nothing is installed, and
    /// the tables it created are deleted.
    KeyspaceDropped,
    /// It failed, with this error (recorded as the background error,
    /// unless it was a manual compaction's): nothing is installed, and
    /// the tables it created are deleted.
    Failed(String),
}

/// Why a compaction ran (RocksDB's `CompactionReason`, the cases strata
/// has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactionReason {
    /// L0 reached `level0_file_num_compaction_trigger` tables.
    LevelL0FilesNum,
    /// A level outgrew its target size.
    LevelMaxLevelSize,
    /// `compact_range` asked for it.
    ManualCompaction,
    /// Range tombstones cover the input tables whole: they are dropped
    /// unread.
    DeleteOnly,
}

/// A compaction, at its beginning (outputs empty) or its end.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactionJobInfo {
    /// The keyspace compacted.
    pub keyspace: String,
    /// Why it ran.
    pub reason: CompactionReason,
    /// The level its inputs come from.
    pub level: usize,
    /// The level its outputs go to.
    pub output_level: usize,
    /// Input table numbers (both levels).
    pub input_files: Vec<u64>,
    /// Output table numbers (empty at the beginning).
    pub output_files: Vec<u64>,
    /// Bytes of the input tables.
    pub input_bytes: u64,
    /// Bytes written (0 for a trivial move or a delete-only compaction,
    /// and at the beginning).
    pub bytes_written: u64,
    /// Entries read (0 at the beginning).
    pub keys_in: u64,
    /// Entries dropped (0 at the beginning).
    pub keys_dropped: u64,
    /// Moved down by a manifest edit alone.
    pub trivial_move: bool,
    /// How long it took (zero at the beginning).
    pub duration: Duration,
    /// How it ended (`Ok` at the beginning).
    pub status: JobStatus,
}

/// What made a table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableFileCreationReason {
    /// A memtable flush.
    Flush,
    /// A compaction.
    Compaction,
}

/// A table file written.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TableFileCreationInfo {
    /// Its keyspace.
    pub keyspace: String,
    /// The level it goes to.
    pub level: usize,
    /// Its number (`NNNNNN.sst`).
    pub file_number: u64,
    /// Its size in bytes.
    pub file_size: u64,
    /// Entries in it.
    pub entries: u64,
    /// Why it was made.
    pub reason: TableFileCreationReason,
}

/// A table file dropped from the database's versions.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TableFileDeletionInfo {
    /// Its keyspace.
    pub keyspace: String,
    /// The level it was in.
    pub level: usize,
    /// Its number.
    pub file_number: u64,
}

/// RocksDB's `WriteStallCondition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStallCondition {
    /// Writes flow.
    Normal,
    /// Writes are slowed to `delayed_write_rate`.
    Delayed,
    /// Writes wait for a flush or compaction.
    Stopped,
}

/// Why writes stall (RocksDB's `WriteStallCause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteStallCause {
    /// Nothing stalls writes (the condition is `Normal`).
    None,
    /// Some keyspace's L0 holds `level0_slowdown_writes_trigger` (delay)
    /// or `level0_stop_writes_trigger` (stop) tables.
    L0FileCountLimit,
    /// A memtable is full and its keyspace has
    /// `max_write_buffer_number - 1` frozen ones waiting for a flush.
    MemtableLimit,
}

/// A change of the write stall condition. The condition is the
/// database's: one write controller for every keyspace, as in RocksDB.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct WriteStallInfo {
    /// The condition now.
    pub condition: WriteStallCondition,
    /// The condition before.
    pub previous: WriteStallCondition,
    /// Why (for `Delayed` and `Stopped`).
    pub cause: WriteStallCause,
}

/// A background error.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackgroundErrorInfo {
    /// The error: what failed, and where. Writes fail with it until a
    /// resume clears it (`Db::resume`, or automatically after no-space).
    pub error: Arc<Error>,
}

/// A WAL file created.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct WalFileCreationInfo {
    /// Its number (`NNNNNN.log`).
    pub file_number: u64,
}
