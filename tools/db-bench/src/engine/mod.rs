//! The `Engine` trait: the handful of operations db_bench needs, with one
//! adapter per engine. Benchmarks are generic over it, so every engine runs
//! the same loops, monomorphised: no dynamic dispatch or boxing per
//! operation.

mod batch;
mod mapping;
mod strata;

#[cfg(feature = "fjall")]
mod fjall;
#[cfg(feature = "rocksdb")]
mod rocksdb;
#[cfg(feature = "sled")]
mod sled;

pub use batch::{Batch, Op};
pub use mapping::Mapping;
pub use strata::StrataEngine;

#[cfg(feature = "fjall")]
pub use self::fjall::FjallEngine;
#[cfg(feature = "rocksdb")]
pub use self::rocksdb::RocksEngine;
#[cfg(feature = "sled")]
pub use self::sled::SledEngine;

use crate::error::Result;
use crate::flags::Flags;
use std::path::Path;

/// The engines db-bench knows, compiled in or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Strata,
    Rocksdb,
    Fjall,
    Sled,
}

impl EngineKind {
    pub const ALL: [EngineKind; 4] = [
        EngineKind::Strata,
        EngineKind::Rocksdb,
        EngineKind::Fjall,
        EngineKind::Sled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Strata => "strata",
            EngineKind::Rocksdb => "rocksdb",
            EngineKind::Fjall => "fjall",
            EngineKind::Sled => "sled",
        }
    }

    /// Whether this binary was built with the engine's cargo feature.
    pub fn compiled_in(self) -> bool {
        match self {
            EngineKind::Strata => true,
            EngineKind::Rocksdb => cfg!(feature = "rocksdb"),
            EngineKind::Fjall => cfg!(feature = "fjall"),
            EngineKind::Sled => cfg!(feature = "sled"),
        }
    }

    /// Parse an `--engine` name; a peer that was not compiled in is an
    /// error that says how to build it.
    pub fn parse(name: &str) -> std::result::Result<EngineKind, String> {
        let kind = Self::ALL
            .into_iter()
            .find(|k| k.name() == name.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown engine `{name}`; known: strata, rocksdb, fjall, sled")
            })?;
        if !kind.compiled_in() {
            return Err(format!(
                "this db-bench was built without the `{n}` feature; rebuild with \
                 `cargo run --release --features {n} --bin db-bench -- ...`",
                n = kind.name()
            ));
        }
        Ok(kind)
    }
}

/// Per-write options, as db_bench's `WriteOptions`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOpts {
    /// fsync before the write returns.
    pub sync: bool,
    /// Skip the write-ahead log.
    pub disable_wal: bool,
}

/// Where a scan starts.
#[derive(Clone, Copy, Debug)]
pub enum ScanStart<'k> {
    /// The first key, moving forward.
    First,
    /// The last key, moving backward.
    Last,
    /// The first key `>=` this one, moving forward.
    Seek(&'k [u8]),
}

/// An ordered walk over the database from a [`ScanStart`].
pub trait Scan {
    /// The entry the scan is at after positioning (first call) or after one
    /// step in its direction (later calls); `None` at the end.
    fn next_entry(&mut self) -> Result<Option<(&[u8], &[u8])>>;
}

/// Text properties the meta benchmarks print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Property {
    /// The compaction stats table (`rocksdb.stats`).
    Stats,
    /// Files and bytes per level (`rocksdb.levelstats`).
    LevelStats,
    /// Every table file (`rocksdb.sstables`).
    SsTables,
    /// Tickers and histograms in the `STATISTICS:` format
    /// (`rocksdb.options-statistics`), with `--statistics`.
    Statistics,
}

/// What a table is built from: one entry at a time, in key order.
pub type AddEntry<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;
/// Hands every entry of a table to the [`AddEntry`] it is given.
pub type ProduceEntries<'a> = dyn FnMut(&mut AddEntry<'_>) -> Result<()> + 'a;

/// A key-value engine under test.
pub trait Engine: Sized + Send + Sync {
    /// The `--engine` name.
    const KIND: EngineKind;

    /// Whether the engine has a range delete (RocksDB's `DeleteRange`):
    /// without one, the benchmarks that need it report it unsupported.
    const RANGE_DELETES: bool = true;

    /// Whether the engine has a merge operator (RocksDB's `Merge`):
    /// without one, mergerandom reports it unsupported.
    const MERGES: bool = false;

    type Scan<'a>: Scan
    where
        Self: 'a;

    /// The engine's options for these flags: what was mapped, what could
    /// not be, and how durable a write is.
    fn mapping(flags: &Flags) -> Mapping;

    /// Open (creating unless `--use_existing_db`) the database at `path`.
    fn open(path: &Path, flags: &Flags) -> Result<Self>;

    // `keyspace` is an index below `--num_column_families` (0: the
    // default keyspace), the one `Flags::keyspace_of` gives the key.
    fn put(&self, keyspace: usize, key: &[u8], value: &[u8], w: WriteOpts) -> Result<()>;
    fn delete(&self, keyspace: usize, key: &[u8], w: WriteOpts) -> Result<()>;
    /// Delete every key of `keyspace` in `[start, end)` with one range
    /// tombstone. An engine without [`Engine::RANGE_DELETES`] fails.
    fn delete_range(&self, keyspace: usize, start: &[u8], end: &[u8], w: WriteOpts) -> Result<()>;
    /// Merge `operand` into `key` with the `--merge_operator` the engine
    /// was opened with. An engine without [`Engine::MERGES`] fails.
    fn merge(&self, keyspace: usize, key: &[u8], operand: &[u8], w: WriteOpts) -> Result<()> {
        let _ = (keyspace, key, operand, w);
        Err(crate::error::BenchError::new(format!(
            "{} has no merge operator",
            Self::KIND.name()
        )))
    }
    /// Whether the engine can build a table file outside the database
    /// and ingest it (RocksDB's `SstFileWriter` and
    /// `IngestExternalFile`): without it, ingest reports it unsupported.
    const INGESTS: bool = false;
    /// Build a table file at `file` from the entries `produce` hands to
    /// the callback it is given (in increasing key order), then ingest it
    /// into the default keyspace, moving the file. Returns the time the
    /// ingestion itself took (the build is the rest).
    fn build_and_ingest(
        &self,
        flags: &Flags,
        file: &Path,
        produce: &mut ProduceEntries<'_>,
    ) -> Result<std::time::Duration> {
        let _ = (flags, file, produce);
        Err(crate::error::BenchError::new(format!(
            "{} cannot ingest tables",
            Self::KIND.name()
        )))
    }
    /// Whether the engine has optimistic transactions: without them,
    /// randomtransaction and `--optimistic_transaction_db` report it
    /// unsupported.
    const TRANSACTIONS: bool = false;
    /// Apply `batch`'s puts and deletes as one optimistic transaction
    /// (blind writes: it reads nothing, so it never conflicts).
    fn write_in_transaction(&self, batch: &Batch, w: WriteOpts) -> Result<()> {
        let _ = (batch, w);
        Err(crate::error::BenchError::new(format!(
            "{} has no transactions",
            Self::KIND.name()
        )))
    }
    /// In one optimistic transaction, read each of `keys` for update, add
    /// `delta` to its value (a decimal number, 0 when absent) and write it
    /// back (RocksDB's `RandomTransactionInserter`). `Ok(false)`: it
    /// conflicted and wrote nothing.
    fn increment_in_transaction(&self, keys: &[Vec<u8>], delta: u64, w: WriteOpts) -> Result<bool> {
        let _ = (keys, delta, w);
        Err(crate::error::BenchError::new(format!(
            "{} has no transactions",
            Self::KIND.name()
        )))
    }
    /// Apply every entry of `batch` atomically (a batch holding a range
    /// delete fails on an engine without [`Engine::RANGE_DELETES`]).
    fn write(&self, batch: &Batch, w: WriteOpts) -> Result<()>;
    /// The length of `key`'s value, or `None` if absent. The value is read
    /// in full by the engine, as a `Get` would.
    fn get(&self, keyspace: usize, key: &[u8]) -> Result<Option<usize>>;
    fn scan(&self, keyspace: usize, start: ScanStart<'_>) -> Result<Self::Scan<'_>>;

    /// Write the memtables of every keyspace out and wait for it.
    fn flush(&self) -> Result<()>;
    /// Compact every keyspace whole; `Ok(false)` if the engine has no such
    /// operation.
    fn compact(&self) -> Result<bool>;
    /// Wait until no flush or compaction is pending.
    fn wait_for_compactions(&self) -> Result<()>;
    /// Check every block checksum; `Ok(false)` if the engine cannot.
    fn verify_checksums(&self) -> Result<bool>;
    /// Take a checkpoint (an openable copy of the running database) into
    /// a directory beside the database, measure it, and delete it again:
    /// `Some((seconds, what it holds))`, or `None` if the engine has no
    /// checkpoint here (RocksDB's is not wired in yet).
    fn checkpoint(&self) -> Result<Option<(f64, String)>> {
        Ok(None)
    }
    /// A property as text, `None` if the engine has no such thing.
    fn property(&self, p: Property) -> Option<String>;
}

/// The value of a randomtransaction counter: a decimal number, 0 if it is
/// not one. Every engine's `increment_in_transaction` reads it so.
pub fn parse_counter(value: &[u8]) -> u64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The version of `crate_name` this binary was built with, from the
/// workspace's `Cargo.lock` (so the header never goes stale).
pub fn locked_version(crate_name: &str) -> Option<&'static str> {
    const LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"));
    let needle = format!("name = \"{crate_name}\"\nversion = \"");
    let start = LOCK.find(&needle)? + needle.len();
    let len = LOCK[start..].find('"')?;
    Some(&LOCK[start..start + len])
}

impl EngineKind {
    /// The name in the header's first line, as RocksDB prints `RocksDB:`.
    pub fn display_name(self) -> &'static str {
        match self {
            EngineKind::Strata => "strata",
            EngineKind::Rocksdb => "RocksDB",
            EngineKind::Fjall => "fjall",
            EngineKind::Sled => "sled",
        }
    }

    /// The engine's version, from the lock file (RocksDB's is the C++
    /// library bundled by `librocksdb-sys`, after its `+`).
    pub fn version(self) -> String {
        let v = match self {
            EngineKind::Strata => Some(env!("CARGO_PKG_VERSION")),
            EngineKind::Rocksdb => locked_version("librocksdb-sys")
                .map(|v| v.split_once('+').map_or(v, |(_, cpp)| cpp)),
            EngineKind::Fjall => locked_version("fjall"),
            EngineKind::Sled => locked_version("sled"),
        };
        v.unwrap_or("unknown").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_lock_file() {
        assert_eq!(locked_version("strata"), Some(env!("CARGO_PKG_VERSION")));
        assert!(locked_version("no-such-crate").is_none());
    }

    #[test]
    fn engine_names() {
        assert_eq!(EngineKind::parse("strata"), Ok(EngineKind::Strata));
        assert!(EngineKind::parse("leveldb").is_err());
    }
}
