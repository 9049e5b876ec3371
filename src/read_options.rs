//! `ReadOptions`, the public per-read options, and how they become the
//! engine's `ReadSpec` at the API's edge. Apart from `options.rs` because a
//! read option borrows a `Snapshot`, a handle on the database itself: the
//! database-wide options stay free of the engine.

use crate::read::ReadSpec;
use crate::snapshot::Snapshot;
use strata_sstable::BlockReadOptions;

/// Per-read options. A plain struct with a lifetime for the snapshot it may
/// borrow: `ReadOptions { snapshot: Some(&snap), ..Default::default() }`.
#[derive(Clone, Debug)]
pub struct ReadOptions<'a> {
    /// Read as of this snapshot instead of the latest state.
    /// RocksDB: `ReadOptions::snapshot`. Default: `None`.
    pub snapshot: Option<&'a Snapshot>,
    /// Verify the checksum of every table block the read reads from a
    /// file (blocks in the block cache were checked when they entered it;
    /// with `allow_mmap_reads`, a mapped block is checked once per open
    /// table). With `false` the read neither checks nor fails on a
    /// checksum, and may return damaged data. RocksDB:
    /// `ReadOptions::verify_checksums`. Default: `true`.
    pub verify_checksums: bool,
    /// Put the blocks this read reads from table files into the block
    /// cache; `false` for a scan that should not evict what other reads
    /// need. Blocks already cached are used either way. RocksDB:
    /// `ReadOptions::fill_cache`. Default: `true`.
    pub fill_cache: bool,
    /// Scans: bytes read at once from a table file; 0 reads ahead
    /// automatically once a scan reads blocks in a row (8 KiB, doubling
    /// up to 256 KiB). RocksDB: `ReadOptions::readahead_size`. Default: 0.
    pub readahead_size: usize,
}

impl Default for ReadOptions<'_> {
    fn default() -> Self {
        ReadOptions {
            snapshot: None,
            verify_checksums: true,
            fill_cache: true,
            readahead_size: 0,
        }
    }
}

impl ReadOptions<'_> {
    /// What the table reads of this read do with the blocks they touch.
    pub(crate) fn spec(&self) -> ReadSpec {
        ReadSpec {
            seq: self.snapshot.map(Snapshot::sequence),
            blocks: BlockReadOptions {
                verify_checksums: self.verify_checksums,
                fill_cache: self.fill_cache,
                readahead_bytes: self.readahead_size,
            },
        }
    }
}
