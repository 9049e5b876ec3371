//! How an ingestion treats its files (RocksDB's `IngestExternalFileOptions`).

/// Options for [`Db::ingest`](crate::Db::ingest). Names and defaults
/// are RocksDB's `IngestExternalFileOptions`', except
/// `verify_checksums_before_ingest` (see there).
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Hard-link each file into the database instead of copying it, and
    /// remove the original name once the ingestion is committed. A file
    /// that must be given a sequence number (see
    /// [`Db::ingest`](crate::Db::ingest)) is rewritten instead, and the
    /// original is removed all the same. The file must be durable (as
    /// [`SstWriter::finish`](crate::SstWriter::finish) leaves it).
    /// Default: `false`.
    pub move_files: bool,
    /// With `move_files`, copy a file that cannot be linked (another
    /// device, a filesystem without links) instead of failing.
    /// Default: `true`.
    pub failed_move_fall_back_to_copy: bool,
    /// When the files overlap the keyspace's memtables, or must be
    /// numbered while the memtables hold anything, flush them first
    /// (writes wait meanwhile); `false` fails the ingestion instead.
    /// Default: `true`.
    pub allow_blocking_flush: bool,
    /// Read every block of every file and check its checksum before
    /// ingesting (the keys' order and sequence numbers are checked on
    /// the same pass). RocksDB's default is `false`; strata's is `true`:
    /// a damaged file is refused naming it, instead of failing reads
    /// later. With `false` the keys are still checked, block checksums
    /// only for the blocks read at open. Default: `true`.
    pub verify_checksums_before_ingest: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            move_files: false,
            failed_move_fall_back_to_copy: true,
            allow_blocking_flush: true,
            verify_checksums_before_ingest: true,
        }
    }
}
