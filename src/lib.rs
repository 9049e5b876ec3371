//! strata: an LSM-tree key-value storage engine, embedded as a library.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path();
//! use strata::{Db, Options, WriteBatch, WriteOptions};
//!
//! let db = Db::open(path, Options::default())?;
//! db.put(b"user:1", b"ada")?;
//! db.put(b"user:2", b"grace")?;
//! assert_eq!(db.get(b"user:1")?.as_deref(), Some(&b"ada"[..]));
//!
//! // Several writes, applied atomically and made durable before returning.
//! let mut batch = WriteBatch::new();
//! batch.put(b"user:3", b"edsger");
//! batch.delete(b"user:1");
//! db.write_opt(batch, &WriteOptions { sync: true, ..Default::default() })?;
//!
//! // Ordered scans, in either direction.
//! let names: Vec<_> = db.prefix(b"user:").map(|r| r.map(|(_, v)| v)).collect::<Result<_, _>>()?;
//! assert_eq!(names, [&b"grace"[..], b"edsger"]);
//! let last = db.iter().rev().next().transpose()?;
//! assert_eq!(last.map(|(k, _)| k).as_deref(), Some(&b"user:3"[..]));
//! # Ok::<(), strata::Error>(())
//! ```
//!
//! See `ARCHITECTURE.md` for how the pieces fit together.

#![warn(missing_docs)]
// Every `unsafe` is listed and argued in UNSAFE.md; the modules that hold
// one say `allow(unsafe_code)` where they are declared, so a new one
// cannot appear anywhere else unreviewed.
#![deny(unsafe_code)]

mod background;
mod backup;
mod batch;
mod blob;
mod cache;
mod checkpoint;
mod close;
mod compaction;
mod compaction_filter;
mod core;
#[allow(unsafe_code)] // UNSAFE.md: `sched_getcpu`, `sched_setscheduler`
mod cpu;
mod cursor;
mod db;
mod db_async;
mod error;
mod events;
mod feed;
mod filename;
mod flush;
pub mod fs;
mod held_files;
mod hook;
mod ikey;
mod info;
mod ingest;
pub mod inspect;
mod iter;
mod key_walk;
mod keyspace;
mod lock_order;
mod memtable;
mod merge;
mod open;
mod options;
mod panics;
mod rate_limiter;
mod read;
mod read_only;
mod read_options;
mod resume;
mod snapshot;
mod snapshot_list;
mod statistics;
mod stats;
mod ttl;
mod txn;
mod varint;
mod version;
pub(crate) mod wal_record;
pub(crate) mod wal_replay;
mod write;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use backup::{BackupEngine, BackupId, BackupInfo};
pub use batch::{WriteBatch, MAX_KEY_SIZE, MAX_VALUE_SIZE};
pub use bytes::Bytes;
pub use checkpoint::{
    install_checkpoint, install_checkpoint_with, CheckpointInfo, CheckpointOptions,
};
pub use compaction_filter::{
    CompactionFilter, CompactionFilterContext, CompactionFilterFactory, FilterDecision,
};
pub use cursor::{Cursor, Iter};
pub use db::Db;
pub use db_async::{WaitFuture, WriteFuture};
pub use error::{Error, Result};
pub use events::{
    BackgroundErrorInfo, CompactionJobInfo, CompactionReason, EventListener, FlushJobInfo,
    JobStatus, TableFileCreationInfo, TableFileCreationReason, TableFileDeletionInfo,
    WalFileCreationInfo, WriteStallCause, WriteStallCondition, WriteStallInfo,
};
pub use feed::{ChangeBatch, ChangeFeed, ChangeKind, ChangeRecord, UpdatesSince};
#[doc(hidden)]
pub use hook::{HookPoint, TestHook};
pub use info::{LiveBlobFile, LiveFile};
pub use ingest::{ExternalSstFileInfo, IngestOptions, SstWriter};
pub use keyspace::{Keyspace, KeyspaceOptions};
pub use merge::{Append, Max, MergeError, MergeFailureScope, MergeOperator, UInt64Add};
pub use options::{
    Compression, CompressionOptions, Options, WalRecoveryMode, WalWriteMode, WriteOptions,
};
pub use read_only::ReadOnlyDb;
pub use read_options::ReadOptions;
pub use snapshot::{Snapshot, SnapshotKeyspace};
#[doc(hidden)]
pub use statistics::probe_cost as statistics_probe_cost;
pub use statistics::{Histogram, HistogramData, Statistics, StatisticsSnapshot, Ticker};
pub use stats::{DbStats, LevelStats};
pub use ttl::{Clock, ManualClock, SystemClock};
pub use txn::{Isolation, Transaction, TransactionCursor, TransactionIter, TransactionOptions};
