//! The tickers and histograms strata keeps, by RocksDB's names
//! (`monitoring/statistics.cc`), so dashboards built for RocksDB read
//! strata's figures unchanged.

/// A counter (RocksDB's `Tickers`). Those marked *collected* are counted
/// by the statistics object itself; the others are the engine's own
/// always-on counters, read when a snapshot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ticker {
    /// Block cache lookups that found the block (*collected*).
    BlockCacheHit,
    /// Block cache lookups that missed (*collected*).
    BlockCacheMiss,
    /// Table lookups the bloom filter answered "absent" (*collected*).
    BloomFilterUseful,
    /// Point lookups (*collected*).
    NumberKeysRead,
    /// Bytes of values point lookups returned (*collected*).
    BytesRead,
    /// Point lookups a memtable answered: a value, a delete, or a merge
    /// complete there (*collected*).
    MemtableHit,
    /// Point lookups the memtables did not answer, which went on to the
    /// tables (*collected*).
    MemtableMiss,
    /// Keys written (puts and deletes).
    NumberKeysWritten,
    /// Bytes of user write batches.
    BytesWritten,
    /// WAL fsyncs.
    WalSynced,
    /// Bytes appended to the WAL.
    WalBytes,
    /// Time writers spent delayed or stopped, microseconds.
    StallMicros,
    /// Bytes compactions read.
    CompactReadBytes,
    /// Bytes compactions wrote.
    CompactWriteBytes,
    /// Bytes flushes wrote.
    FlushWriteBytes,
    /// Entries compactions dropped (overwritten, deleted, covered).
    CompactionKeyDrop,
}

impl Ticker {
    /// Every ticker, in the order they are printed.
    pub const ALL: [Ticker; 16] = [
        Ticker::BlockCacheHit,
        Ticker::BlockCacheMiss,
        Ticker::BloomFilterUseful,
        Ticker::NumberKeysRead,
        Ticker::BytesRead,
        Ticker::MemtableHit,
        Ticker::MemtableMiss,
        Ticker::NumberKeysWritten,
        Ticker::BytesWritten,
        Ticker::WalSynced,
        Ticker::WalBytes,
        Ticker::StallMicros,
        Ticker::CompactReadBytes,
        Ticker::CompactWriteBytes,
        Ticker::FlushWriteBytes,
        Ticker::CompactionKeyDrop,
    ];

    /// RocksDB's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Ticker::BlockCacheHit => "rocksdb.block.cache.hit",
            Ticker::BlockCacheMiss => "rocksdb.block.cache.miss",
            Ticker::BloomFilterUseful => "rocksdb.bloom.filter.useful",
            Ticker::NumberKeysRead => "rocksdb.number.keys.read",
            Ticker::BytesRead => "rocksdb.bytes.read",
            Ticker::MemtableHit => "rocksdb.memtable.hit",
            Ticker::MemtableMiss => "rocksdb.memtable.miss",
            Ticker::NumberKeysWritten => "rocksdb.number.keys.written",
            Ticker::BytesWritten => "rocksdb.bytes.written",
            Ticker::WalSynced => "rocksdb.wal.synced",
            Ticker::WalBytes => "rocksdb.wal.bytes",
            Ticker::StallMicros => "rocksdb.stall.micros",
            Ticker::CompactReadBytes => "rocksdb.compact.read.bytes",
            Ticker::CompactWriteBytes => "rocksdb.compact.write.bytes",
            Ticker::FlushWriteBytes => "rocksdb.flush.write.bytes",
            Ticker::CompactionKeyDrop => "rocksdb.compaction.key.drop.obsolete",
        }
    }
}

/// The tickers the statistics object counts itself, by slot.
pub(crate) const COLLECTED_TICKERS: usize = 7;

impl Ticker {
    /// Its slot among the collected tickers.
    pub(crate) const fn slot(self) -> Option<usize> {
        match self {
            Ticker::BlockCacheHit => Some(0),
            Ticker::BlockCacheMiss => Some(1),
            Ticker::BloomFilterUseful => Some(2),
            Ticker::NumberKeysRead => Some(3),
            Ticker::BytesRead => Some(4),
            Ticker::MemtableHit => Some(5),
            Ticker::MemtableMiss => Some(6),
            _ => None,
        }
    }

    /// The slot of a ticker the per-thread counters collect, for use in a
    /// `const` block: a ticker without one fails the build, rather than
    /// counting in another's slot.
    pub(crate) const fn collected_slot(self) -> usize {
        match self.slot() {
            Some(slot) => slot,
            None => panic!("not a collected ticker"),
        }
    }
}

/// A latency histogram, in microseconds (RocksDB's `Histograms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Histogram {
    /// `get` calls.
    DbGet,
    /// Write calls (`put`, `delete`, `write`), whole: queueing, stalls,
    /// WAL and memtable.
    DbWrite,
    /// WAL fsyncs.
    WalFileSync,
    /// Memtable flushes.
    Flush,
    /// Compactions.
    Compaction,
}

impl Histogram {
    /// Every histogram, in the order they are printed.
    pub const ALL: [Histogram; 5] = [
        Histogram::DbGet,
        Histogram::DbWrite,
        Histogram::WalFileSync,
        Histogram::Flush,
        Histogram::Compaction,
    ];

    /// RocksDB's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Histogram::DbGet => "rocksdb.db.get.micros",
            Histogram::DbWrite => "rocksdb.db.write.micros",
            Histogram::WalFileSync => "rocksdb.wal.file.sync.micros",
            Histogram::Flush => "rocksdb.db.flush.micros",
            Histogram::Compaction => "rocksdb.compaction.times.micros",
        }
    }

    pub(crate) fn slot(self) -> usize {
        self as usize
    }
}
