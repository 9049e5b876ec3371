//! Bulk loading: table files built outside the database with
//! [`SstWriter`] and added to it whole by [`Db::ingest`](crate::Db::ingest)
//! (RocksDB's `SstFileWriter` and `IngestExternalFile`).

mod external;
mod job;
mod options;
mod placement;
mod sst_writer;

pub use options::IngestOptions;
pub use sst_writer::{ExternalSstFileInfo, SstWriter};
