//! How a reader treats anomalies, and how it reports the way a log ended.

use crate::error::{CorruptionReason, TornReason};

/// What a [`Reader`](crate::Reader) does at an anomaly: RocksDB's WAL recovery
/// modes, with the same meaning. "Torn tail" and "corruption" are defined on
/// [`Reader`](crate::Reader).
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// A torn tail is the normal end of the log; corruption before the tail is an error.
    /// RocksDB's `kTolerateCorruptedTailRecords`.
    #[default]
    TolerateCorruptedTailRecords,
    /// Any anomaly, even a torn tail, is an error. RocksDB's `kAbsoluteConsistency`.
    AbsoluteConsistency,
    /// Stop at the first anomaly of any kind, report it, and keep the records
    /// before it; never an error. RocksDB's `kPointInTimeRecovery`.
    PointInTimeRecovery,
    /// Salvage: skip damaged regions and keep every record that checks out;
    /// never an error. RocksDB's `kSkipAnyCorruptedRecords`.
    SkipAnyCorruptedRecords,
}

/// How a [`Reader`](crate::Reader) tells a torn tail (crash damage to bytes
/// that were never synced) from corruption (damage to synced bytes): what
/// the log's writer guarantees about its syncs. Chosen when the reader is
/// built ([`Reader::with_tail_rule`](crate::Reader::with_tail_rule)); every
/// [`RecoveryMode`] but salvage applies it.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailRule {
    /// The log proves its syncs with sync points, and nothing else is
    /// known: any number of appends may be unsynced at a crash (the WAL,
    /// whose writes are synced only when asked). An anomaly at `X` is
    /// corruption only if a sync point, reached by walking framing,
    /// states a synced length greater than `X`.
    #[default]
    SyncPoints,
    /// The writer synced every append before making the next, and each
    /// append holds at most one record, maybe preceded by the sync points
    /// the [`Writer`](crate::Writer) frames after a sync (the MANIFEST:
    /// each version edit is synced before the next is written). So only the
    /// last append can hold crash damage, and an anomaly at `X` is
    /// corruption unless a crash can have left the log as it reads from `X`
    /// on: the last append, walked by the writer's framing from `X`, with
    /// some of its 512-byte sectors reading as zeros and the file cut
    /// anywhere (maybe followed by zeros), and nothing after it. Or if the
    /// proof [`SyncPoints`](Self::SyncPoints) finds says so.
    ///
    /// REQUIRES a writer that appends by `write(2)` or the like, which a
    /// crash cuts short or leaves with whole sectors lost, never single
    /// bytes (the engine writes its MANIFEST so; a copy into a mapped file,
    /// as the WAL is written, can leave any byte lost).
    ///
    /// The last record's payload is never read as framing, whatever it
    /// holds. The price: a length that runs past the end of the file reads
    /// as the last append cut short, wherever it lies (see
    /// docs/wal-format.md).
    EveryRecordSyncedButLast,
}

/// How the log ended, known once [`Reader::next_record`](crate::Reader::next_record)
/// has returned `Ok(None)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogEnd {
    /// The last record ends at a record boundary or in block-tail padding.
    Clean {
        /// The file length.
        offset: u64,
    },
    /// The normal ending after a crash: a truncated header, a length past the end
    /// of the file, zeroed space, a partial multi-fragment record, or damage in
    /// bytes no sync point proves were synced.
    TornTail {
        /// First byte that is not part of a complete record: a writer continuing
        /// this log would truncate the file here.
        offset: u64,
        /// What the tail looks like.
        reason: TornReason,
    },
    /// Corruption, in a mode that stops without error: where
    /// [`RecoveryMode::PointInTimeRecovery`] stopped at damage proven synced
    /// (or an impossible sync point), or, in
    /// [`RecoveryMode::SkipAnyCorruptedRecords`], a skipped region that runs to
    /// the end of the file (it is also listed in [`Reader::anomalies`](crate::Reader::anomalies)).
    Corruption {
        /// File offset of the fragment header where the damage was detected.
        offset: u64,
        /// What was wrong.
        reason: CorruptionReason,
    },
}

/// A region of the log whose records were dropped: corruption where
/// [`RecoveryMode::PointInTimeRecovery`] stopped, or any damage followed by
/// valid fragments that [`RecoveryMode::SkipAnyCorruptedRecords`] skipped
/// (proven synced or not: salvage does not ask).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// First dropped byte: the start of the record being assembled when the
    /// damage was found, or the damaged fragment itself.
    pub offset: u64,
    /// Dropped bytes from `offset`: up to the fragment where reading resumed
    /// (skip mode), or to the end of the file (point-in-time mode).
    pub length: u64,
    /// File offset of the fragment header where the damage was detected (`>= offset`).
    pub detected_at: u64,
    /// What was wrong there.
    pub reason: CorruptionReason,
}
