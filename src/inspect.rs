//! Read-only access to strata's on-disk structures for tools such as
//! `sst-dump`: file naming, MANIFEST edits, WAL records (write batches
//! and log starts) and the WAL chain as recovery reads it. Nothing here
//! opens a database or takes its lock.

pub use crate::batch::{BatchError, BatchOp, DecodedBatch};
pub use crate::feed::recorded_ingestions;
pub use crate::filename::{parse_file_name, FileKind, MAX_FILE_NUMBER};
pub use crate::version::{
    read_current_manifest, read_manifest, FileMeta, KeyRange, KeyspaceContents, LargestBound,
    ManifestContents, VersionEdit, DEFAULT_KEYSPACE_ID, DEFAULT_KEYSPACE_NAME, NUM_LEVELS,
};
pub use crate::wal_record::WalRecord;
pub use crate::wal_replay::{read_wal_chain, BatchOutcome};
