//! Options for opening a database, reading and writing. Each knob that
//! RocksDB also has carries RocksDB's name and is documented with its
//! default.

use crate::error::{Error, Result};
use crate::fs::{FileSystem, LogKind, OsFileSystem};
use crate::hook::TestHook;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use strata_sstable::{Compression, CompressionOptions};
pub use strata_wal::RecoveryMode as WalRecoveryMode;

/// How a database is opened and how it behaves. Build with struct update
/// syntax: `Options { write_buffer_size: 8 << 20, ..Options::default() }`.
#[derive(Clone)]
pub struct Options {
    /// Create the directory and an empty database if none exists.
    /// RocksDB: `create_if_missing`. Default: `true`.
    pub create_if_missing: bool,
    /// Fail to open if a database already exists. RocksDB:
    /// `error_if_exists`. Default: `false`.
    pub error_if_exists: bool,
    /// Bytes of writes a memtable holds before it is frozen and flushed to
    /// an L0 table. RocksDB: `write_buffer_size`. Default: 64 MiB.
    pub write_buffer_size: usize,
    /// Memtables kept in memory, the active one included; when the frozen
    /// ones reach `max_write_buffer_number - 1`, writes wait for a flush.
    /// RocksDB: `max_write_buffer_number`. Default: 2.
    pub max_write_buffer_number: usize,
    /// Range deletes a memtable holds before it is frozen and flushed,
    /// whatever its size. Each one makes the next read of the memtable
    /// fragment its range tombstones again, so thousands of them with
    /// reads in between make reads slow. 0: no limit. RocksDB:
    /// `memtable_max_range_deletions`. Default: 0.
    pub memtable_max_range_deletions: usize,
    /// Versions of one key an iterator steps over in a row before it skips
    /// the rest with a seek. A key written often (a counter, a session)
    /// keeps every version in the memtable until a flush, and a scan
    /// stepping over each would cost time linear in them; past this many
    /// it seeks past them instead (a seek costs a few steps' time, so a
    /// small number). RocksDB: `max_sequential_skip_in_iterations`.
    /// Default: 8.
    pub max_sequential_skip_in_iterations: usize,
    /// What combines the default keyspace's merge operands
    /// ([`Db::merge`](crate::Db::merge)); `None`: merges are stored, and a
    /// read of a key with operands fails. Opening a database whose tables
    /// hold operands written for another operator (or with none, while
    /// operands exist) fails. RocksDB: `merge_operator`. Default: `None`.
    pub merge_operator: Option<Arc<dyn crate::MergeOperator>>,
    /// When a merge finds more than this many operands of its key at the
    /// head of the memtable, it reads the key's value, merges its own
    /// operand onto it and stores the result as a put, so reads of a
    /// counter merged without end stop walking operands
    /// (`src/merge/successive.rs`; best effort: a merge in a batch with
    /// other writes, or sequenced while an earlier write is still going
    /// into the memtable, stays an operand). 0: off. RocksDB:
    /// `max_successive_merges`. Default: 0.
    pub max_successive_merges: usize,
    /// Makes the filter each compaction of the default keyspace consults
    /// for the newest value of every key no snapshot sees (drop or
    /// rewrite it; docs/design/compaction-filter.md). RocksDB:
    /// `compaction_filter_factory`. Default: `None`.
    pub compaction_filter_factory: Option<Arc<dyn crate::CompactionFilterFactory>>,
    /// The default keyspace's time to live for puts written without one
    /// ([`WriteOptions::ttl`]): each expires this long after its write.
    /// `None`: puts do not expire. (RocksDB's `DBWithTTL` takes one per
    /// column family at open; RocksDB's `ttl` option is another thing, a
    /// file age that triggers compaction.) Default: `None`.
    pub default_ttl: Option<std::time::Duration>,
    /// Tables older than this many seconds (by their creation time) are
    /// compacted even when no level needs it, so expired values and what
    /// a compaction filter would remove do not hold space for ever; a
    /// table of the last level is rewritten in place. 0: off. RocksDB:
    /// `periodic_compaction_seconds` (whose default turns it on only with
    /// a compaction filter). Default: 0.
    pub periodic_compaction_seconds: u64,
    /// Target size of a table's data block before compression. RocksDB:
    /// `block_size`. Default: 4 KiB.
    pub block_size: usize,
    /// Keys between restart points in a data block. RocksDB:
    /// `block_restart_interval`. Default: 16.
    pub block_restart_interval: usize,
    /// Bloom filter bits per key in each table; 0 disables filters.
    /// RocksDB: `bloom_bits` / `NewBloomFilterPolicy(bits)`. Default: 10.
    pub bloom_bits_per_key: u32,
    /// Block compression for tables. RocksDB: `compression`.
    /// Default: none.
    pub compression: Compression,
    /// Block compression for each level's tables, L0 first; a level past
    /// the end uses the last entry. Empty: `compression` for every level.
    /// RocksDB: `compression_per_level`. Default: empty.
    pub compression_per_level: Vec<Compression>,
    /// zstd dictionary per table: `max_dict_bytes` (0: none) and
    /// `zstd_max_train_bytes` (docs/sstable-format.md). RocksDB:
    /// `compression_opts`. Default: no dictionary.
    pub compression_opts: CompressionOptions,
    /// Keep each data block of an uncompressed table within as few pages
    /// (4 KiB) as its size needs, padding with zeros before a block that
    /// would otherwise straddle one more (about 3% more space at 4 KiB
    /// blocks; a block of one 4 KiB value is not padded): a lookup whose
    /// block is in neither cache then reads one page instead of two, and
    /// the page cache holds whole blocks (under a 512 MiB limit this
    /// halved the bytes read per lookup; see docs/performance.md). Such
    /// tables are format version 5, which strata builds before it cannot
    /// read (docs/sstable-format.md). Ignored for compressed tables.
    /// RocksDB: `block_align` (off by default there). Default: `true`.
    pub block_align: bool,
    /// Bytes of table blocks kept in memory: data blocks as read from
    /// tables (decompressed), and index and filter blocks with
    /// `cache_index_and_filter_blocks`. An LRU cache with a high-priority
    /// pool for index and filter blocks and blocks hit more than once;
    /// once full, it takes a data block in on its second miss, so blocks
    /// read once do not churn it (RocksDB's takes every block).
    /// 0 disables it (every read then reads its blocks from the file).
    /// RocksDB: `block_cache` capacity (an `LRUCache`). Default: 32 MiB.
    pub block_cache_bytes: usize,
    /// Read tables through memory maps instead of `pread`: faster when the
    /// data fits in memory but not in the block cache (no system call or
    /// copy per block: 1.2x `pread`'s random point reads and 1.5x its
    /// seeks at 5M keys with a 64 MiB cache, docs/performance.md), and
    /// uncompressed blocks bypass the block cache. With the data larger
    /// than memory it measured ahead of `pread` at one size and behind at
    /// another. The price: an I/O error, or another program truncating a
    /// table, raises SIGBUS in the process instead of returning an error
    /// (UNSAFE.md). RocksDB: `allow_mmap_reads`. Default: `false`.
    pub allow_mmap_reads: bool,
    /// Keep each table's index and filter in the block cache (high
    /// priority) instead of in memory for as long as the table is open:
    /// their memory is then bounded by the cache, at the cost of a cache
    /// lookup each and, after an eviction, a read. RocksDB:
    /// `cache_index_and_filter_blocks`. Default: `false`.
    pub cache_index_and_filter_blocks: bool,
    /// With `cache_index_and_filter_blocks`: L0 tables keep their index
    /// and filter pinned (charged to the cache, never evicted), since
    /// every lookup probes every L0 table. RocksDB:
    /// `pin_l0_filter_and_index_blocks_in_cache`. Default: `false`.
    pub pin_l0_filter_and_index_blocks_in_cache: bool,
    /// Bytes a compaction reads at once from each input table: large
    /// sequential reads instead of one per block. RocksDB:
    /// `compaction_readahead_size`. Default: 2 MiB.
    pub compaction_readahead_size: usize,
    /// Tell the operating system to drop a compaction's output tables from
    /// the page cache once they are synced (`POSIX_FADV_DONTNEED`), so a
    /// compaction's writes do not push out pages readers use. The price:
    /// the new tables start cold, and reads of data that was in memory go
    /// to storage until they are warm again (measured in
    /// docs/performance.md). Compaction inputs are always dropped once the
    /// compaction is installed. Default: `false`.
    pub compaction_output_drop_page_cache: bool,
    /// How damage found in the WAL on open is treated. RocksDB:
    /// `wal_recovery_mode`. Default: tolerate a torn tail, refuse to open on
    /// corruption before it.
    pub wal_recovery_mode: WalRecoveryMode,
    /// Verify every live table's checksums when opening (slower opens,
    /// early detection). RocksDB: `paranoid_checks`. Default: `false`.
    pub paranoid_checks: bool,
    /// Largest write group, in bytes of batches, that one leader commits
    /// as one WAL record. RocksDB: `max_write_batch_group_size_bytes`.
    /// Default: 1 MiB.
    pub max_write_group_bytes: usize,
    /// Capacity of the WAL buffer between write groups and the WAL file;
    /// when full, the writer filling it writes it out first (never
    /// dropping a record). Default: 4 MiB.
    pub wal_buffer_capacity_bytes: usize,
    /// Ask the WAL syncer thread to fsync in the background whenever this many
    /// bytes were written since the last sync, so a later sync write has
    /// less to wait for; 0 disables. RocksDB: `wal_bytes_per_sync`.
    /// Default: 0.
    pub wal_bytes_per_sync: u64,
    /// While a flush or a compaction writes a table or a blob file, and
    /// while an ingestion or an `SstWriter` writes one, ask the operating
    /// system every this many bytes to start writing them to the disk
    /// (`sync_file_range` on Linux; elsewhere nothing), without waiting and
    /// without durability, so the file's final fsync has little left to
    /// write and wait for, and the disk sees a steady stream instead of a
    /// burst per table; 0 disables. RocksDB: `bytes_per_sync` (there 0 by
    /// default, 1 MiB its advice). Default: 1 MiB.
    pub bytes_per_sync: u64,
    /// How WAL files are written. The default, [`WalWriteMode::Auto`],
    /// maps the WAL where the database directory's filesystem makes that
    /// safe (ext4, xfs, tmpfs) and appends with `write(2)` elsewhere.
    /// RocksDB's nearest knob is `allow_mmap_writes` (default off there).
    /// Default: `Auto`.
    pub wal_write_mode: WalWriteMode,
    /// Keep WAL records in the WAL buffer until [`Db::flush_wal`](crate::Db::flush_wal)
    /// or until the buffer fills: writes return sooner but survive neither a
    /// process crash nor power loss until then. RocksDB:
    /// `manual_wal_flush`. Default: `false`.
    pub manual_wal_flush: bool,
    /// Keep WALs no keyspace needs any more for this many seconds (from
    /// when they became obsolete), for [`Db::updates_since`](crate::Db::updates_since)
    /// and change feed cursors, instead of deleting them at once. A change
    /// feed cursor pins WALs no longer than this. 0: no time limit.
    /// RocksDB: `WAL_ttl_seconds`. Default: 0 (docs/design/change-feed.md).
    pub wal_ttl_seconds: u64,
    /// Keep obsolete WALs while they hold at most this many MiB together,
    /// deleting the oldest first beyond it; a change feed cursor pins no
    /// more. 0: no size limit. With both limits 0, obsolete WALs are
    /// deleted at once unless a cursor pins them. RocksDB:
    /// `WAL_size_limit_MB`. Default: 0.
    pub wal_size_limit_mb: u64,
    /// L0 tables that trigger a compaction into the base level. RocksDB:
    /// `level0_file_num_compaction_trigger`. Default: 4.
    pub level0_file_num_compaction_trigger: usize,
    /// L0 tables at which writes are delayed to `delayed_write_rate`.
    /// RocksDB: `level0_slowdown_writes_trigger`. Default: 20.
    pub level0_slowdown_writes_trigger: usize,
    /// L0 tables at which writes stop until compaction catches up.
    /// RocksDB: `level0_stop_writes_trigger`. Default: 36.
    pub level0_stop_writes_trigger: usize,
    /// Target size of the base level (the level L0 compacts into).
    /// RocksDB: `max_bytes_for_level_base`. Default: 256 MiB.
    pub max_bytes_for_level_base: u64,
    /// Each level's target is this many times the one above. RocksDB:
    /// `max_bytes_for_level_multiplier`. Default: 10.
    pub max_bytes_for_level_multiplier: f64,
    /// Size at which compaction output tables are cut. RocksDB:
    /// `target_file_size_base`. Default: 64 MiB.
    pub target_file_size_base: u64,
    /// Levels in use, L0 included (2 to 7). RocksDB: `num_levels`.
    /// Default: 7.
    pub num_levels: usize,
    /// Compute level targets back from the size of the last level, so the
    /// tree keeps its shape as it grows and L0 compacts straight into the
    /// first non-empty level. RocksDB:
    /// `level_compaction_dynamic_level_bytes`. Default: `true`.
    pub level_compaction_dynamic_level_bytes: bool,
    /// Store values of at least [`min_blob_size`](Self::min_blob_size)
    /// bytes in blob files apart from the keys, so compaction moves only
    /// keys and references (key-value separation; docs/design/blob-files.md).
    /// Only plain puts are separated: merge operands and puts with a time
    /// to live stay in the tables. RocksDB: `enable_blob_files`.
    /// Default: `false`.
    pub enable_blob_files: bool,
    /// With [`enable_blob_files`](Self::enable_blob_files): the smallest
    /// value, in bytes, that goes to a blob file. RocksDB: `min_blob_size`.
    /// Default: 0 (every value).
    pub min_blob_size: u64,
    /// Size at which a blob file being written is finished and the next
    /// one started. RocksDB: `blob_file_size`. Default: 256 MiB.
    pub blob_file_size: u64,
    /// Compression of the values in blob files (each value compressed
    /// alone). RocksDB: `blob_compression_type`. Default: none.
    pub blob_compression_type: Compression,
    /// Let compaction relocate the live values of the oldest blob files
    /// into new ones, so that the old files' space comes back (without
    /// it, a blob file goes only once no table refers to it; garbage is
    /// counted either way, `strata.blob-stats`). A value now below
    /// `min_blob_size`, or with blob files off, goes back into the table.
    /// RocksDB: `enable_blob_garbage_collection`. Default: `false`.
    pub enable_blob_garbage_collection: bool,
    /// The fraction (0 to 1) of blob files, oldest first, whose values
    /// compaction relocates with garbage collection on: those numbered
    /// below the file at index `cutoff × count`. RocksDB:
    /// `blob_garbage_collection_age_cutoff`. Default: 0.25.
    pub blob_garbage_collection_age_cutoff: f64,
    /// The garbage ratio (0 to 1) of the oldest blob files above which a
    /// compaction of the tables referencing them is forced. RocksDB:
    /// `blob_garbage_collection_force_threshold`: when the oldest blob
    /// file and those after it no table refers to first (within the age
    /// cutoff) hold at least this fraction of garbage bytes, the tables
    /// referring to the oldest file are compacted, one at a time.
    /// Default: 1.0 (only files that are all garbage).
    pub blob_garbage_collection_force_threshold: f64,
    /// The garbage ratio (0 to 1) a blob file within the age cutoff must
    /// have reached before compaction relocates its values. Relocating
    /// the live values of a file frees only its garbage: from a file with
    /// little garbage it rewrites much to free little, and how often that
    /// happens depends on how often compactions run, not on the garbage
    /// there is (a fill, which makes none, relocated a quarter of its
    /// data again and again). 0: every file within the age cutoff, as
    /// RocksDB does. Not in RocksDB; Titan's `blob_file_discardable_ratio`
    /// and fjall's `staleness_threshold` are the same rule. The files a
    /// forced collection (above) compacts for are relocated whatever this
    /// says, and a manual compaction (`compact_range`) relocates out of
    /// every old file with any garbage. Default: 0.5 (Titan's): at 1M keys × 4 KiB overwritten twice
    /// it took the bytes compactions wrote from 15.5 GB (0.25) to 6.3 GB
    /// for 1.29× the data on disk after a full compaction (1.11× at 0.25;
    /// docs/performance.md).
    pub blob_garbage_collection_min_garbage_ratio: f64,
    /// Bytes all keyspaces' memtables may hold together: above it, the
    /// keyspace with the largest active memtable is flushed (RocksDB's
    /// WriteBufferManager rule: active memtables over 7/8 of it, or all
    /// memtables at it with the active ones at half). 0: no limit.
    /// RocksDB: `db_write_buffer_size`. Default: 0.
    pub db_write_buffer_size: usize,
    /// Bytes the live WALs may hold, with more than one keyspace: above
    /// it, the keyspaces whose unflushed writes keep the oldest WAL alive
    /// are flushed, so that a rarely written keyspace does not keep old
    /// WALs. 0: four times the memtables' total capacity (the sum over
    /// keyspaces of `write_buffer_size * max_write_buffer_number`).
    /// RocksDB: `max_total_wal_size`. Default: 0.
    pub max_total_wal_size: u64,
    /// Background threads for flushes and compactions; one is kept for
    /// flushes, which take priority. RocksDB: `max_background_jobs`.
    /// Default: 2.
    pub max_background_jobs: usize,
    /// Bytes per second writes are held to while L0 is between the
    /// slowdown and the stop trigger. RocksDB: `delayed_write_rate`.
    /// Default: 16 MiB/s.
    pub delayed_write_rate: u64,
    /// Limit on flush and compaction writes, in bytes per second, flushes
    /// served first; 0 means unlimited. RocksDB: `rate_limiter`.
    /// Default: 0.
    pub rate_limiter_bytes_per_sec: u64,
    /// How many times the flush thread tries on its own to resume after a
    /// background error that says the disk is full (or a quota is
    /// exhausted), as [`Db::resume`](crate::Db::resume) would; 0 disables
    /// the automatic attempts (`resume()` still works). Counted from the
    /// last successful resume. Other I/O errors are never retried on their
    /// own. RocksDB: `max_bgerror_resume_count`. Default: `u32::MAX`
    /// (RocksDB's is `INT_MAX`: keep trying).
    pub max_bgerror_resume_count: u32,
    /// How long the flush thread waits after a no-space background error,
    /// and after each failed automatic attempt, before it tries to resume
    /// again. With `inline_background_work` it is not waited for: each
    /// [`Db::run_background_work`](crate::Db::run_background_work) call
    /// makes one attempt when one is left. RocksDB:
    /// `bgerror_resume_retry_interval` (in microseconds there).
    /// Default: 1 second.
    pub bgerror_resume_retry_interval: std::time::Duration,
    /// Run no background threads: flushes, compactions and WAL syncs run
    /// in the calling thread, when a write needs them or when
    /// [`Db::run_background_work`](crate::Db::run_background_work) is
    /// called. Made for deterministic simulation tests (one thread, one
    /// seed, one outcome); slow for real use. Default: `false`.
    pub inline_background_work: bool,
    /// Where files are read and written. Default: the operating system's
    /// filesystem; tests use [`crate::fs::MemFileSystem`].
    pub fs: Arc<dyn FileSystem>,
    /// Where time comes from: the expiry of values with a time to live and
    /// the tables' creation times (`periodic_compaction_seconds`).
    /// RocksDB: `Env::GetSystemClock`. Default: [`crate::SystemClock`];
    /// tests move a [`crate::ManualClock`].
    pub clock: Arc<dyn crate::Clock>,
    /// Called at named points in the engine so tests can inject panics
    /// and failures (see `HookPoint`). Default: `None`.
    #[doc(hidden)]
    pub test_hook: Option<TestHook>,
    /// Callbacks for flushes, compactions, table and WAL files, write
    /// stalls and background errors (docs/observability.md has the rules
    /// they run under). RocksDB: `listeners`. Default: none.
    pub listeners: Vec<Arc<dyn crate::EventListener>>,
    /// Collect tickers and latency histograms, read with
    /// [`Db::statistics`](crate::Db::statistics): RocksDB's
    /// `options.statistics = CreateDBStatistics()`. Costs a few
    /// nanoseconds per operation (docs/observability.md has the figures).
    /// Databases opened with the same one share it. Default: `None`.
    pub statistics: Option<Arc<crate::Statistics>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_if_missing: true,
            error_if_exists: false,
            write_buffer_size: 64 << 20,
            max_write_buffer_number: 2,
            memtable_max_range_deletions: 0,
            max_sequential_skip_in_iterations: 8,
            merge_operator: None,
            max_successive_merges: 0,
            compaction_filter_factory: None,
            default_ttl: None,
            periodic_compaction_seconds: 0,
            block_size: 4096,
            block_restart_interval: 16,
            bloom_bits_per_key: 10,
            compression: Compression::None,
            compression_per_level: Vec::new(),
            compression_opts: CompressionOptions::default(),
            block_align: true,
            block_cache_bytes: 32 << 20,
            allow_mmap_reads: false,
            cache_index_and_filter_blocks: false,
            pin_l0_filter_and_index_blocks_in_cache: false,
            compaction_readahead_size: 2 << 20,
            compaction_output_drop_page_cache: false,
            wal_recovery_mode: WalRecoveryMode::default(),
            paranoid_checks: false,
            max_write_group_bytes: 1 << 20,
            wal_buffer_capacity_bytes: 4 << 20,
            wal_bytes_per_sync: 0,
            bytes_per_sync: 1 << 20,
            wal_write_mode: WalWriteMode::Auto,
            manual_wal_flush: false,
            wal_ttl_seconds: 0,
            wal_size_limit_mb: 0,
            level0_file_num_compaction_trigger: 4,
            level0_slowdown_writes_trigger: 20,
            level0_stop_writes_trigger: 36,
            max_bytes_for_level_base: 256 << 20,
            max_bytes_for_level_multiplier: 10.0,
            target_file_size_base: 64 << 20,
            num_levels: 7,
            level_compaction_dynamic_level_bytes: true,
            enable_blob_files: false,
            min_blob_size: 0,
            blob_file_size: 256 << 20,
            blob_compression_type: Compression::None,
            enable_blob_garbage_collection: false,
            blob_garbage_collection_age_cutoff: 0.25,
            blob_garbage_collection_force_threshold: 1.0,
            blob_garbage_collection_min_garbage_ratio: 0.5,
            db_write_buffer_size: 0,
            max_total_wal_size: 0,
            max_background_jobs: 2,
            delayed_write_rate: 16 << 20,
            rate_limiter_bytes_per_sec: 0,
            max_bgerror_resume_count: u32::MAX,
            bgerror_resume_retry_interval: std::time::Duration::from_secs(1),
            inline_background_work: false,
            listeners: Vec::new(),
            statistics: None,
            fs: Arc::new(OsFileSystem),
            clock: Arc::new(crate::SystemClock),
            test_hook: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("create_if_missing", &self.create_if_missing)
            .field("error_if_exists", &self.error_if_exists)
            .field("write_buffer_size", &self.write_buffer_size)
            .field("max_write_buffer_number", &self.max_write_buffer_number)
            .field(
                "memtable_max_range_deletions",
                &self.memtable_max_range_deletions,
            )
            .field(
                "max_sequential_skip_in_iterations",
                &self.max_sequential_skip_in_iterations,
            )
            .field("merge_operator", &self.merge_operator)
            .field("max_successive_merges", &self.max_successive_merges)
            .field("compaction_filter_factory", &self.compaction_filter_factory)
            .field("default_ttl", &self.default_ttl)
            .field(
                "periodic_compaction_seconds",
                &self.periodic_compaction_seconds,
            )
            .field("clock", &self.clock)
            .field("block_size", &self.block_size)
            .field("block_restart_interval", &self.block_restart_interval)
            .field("bloom_bits_per_key", &self.bloom_bits_per_key)
            .field("compression", &self.compression)
            .field("compression_per_level", &self.compression_per_level)
            .field("compression_opts", &self.compression_opts)
            .field("block_align", &self.block_align)
            .field("block_cache_bytes", &self.block_cache_bytes)
            .field("allow_mmap_reads", &self.allow_mmap_reads)
            .field(
                "cache_index_and_filter_blocks",
                &self.cache_index_and_filter_blocks,
            )
            .field(
                "pin_l0_filter_and_index_blocks_in_cache",
                &self.pin_l0_filter_and_index_blocks_in_cache,
            )
            .field("compaction_readahead_size", &self.compaction_readahead_size)
            .field(
                "compaction_output_drop_page_cache",
                &self.compaction_output_drop_page_cache,
            )
            .field("wal_recovery_mode", &self.wal_recovery_mode)
            .field("paranoid_checks", &self.paranoid_checks)
            .field("max_write_group_bytes", &self.max_write_group_bytes)
            .field("wal_buffer_capacity_bytes", &self.wal_buffer_capacity_bytes)
            .field("wal_bytes_per_sync", &self.wal_bytes_per_sync)
            .field("bytes_per_sync", &self.bytes_per_sync)
            .field("wal_write_mode", &self.wal_write_mode)
            .field("manual_wal_flush", &self.manual_wal_flush)
            .field("wal_ttl_seconds", &self.wal_ttl_seconds)
            .field("wal_size_limit_mb", &self.wal_size_limit_mb)
            .field(
                "level0_file_num_compaction_trigger",
                &self.level0_file_num_compaction_trigger,
            )
            .field(
                "level0_slowdown_writes_trigger",
                &self.level0_slowdown_writes_trigger,
            )
            .field(
                "level0_stop_writes_trigger",
                &self.level0_stop_writes_trigger,
            )
            .field("max_bytes_for_level_base", &self.max_bytes_for_level_base)
            .field(
                "max_bytes_for_level_multiplier",
                &self.max_bytes_for_level_multiplier,
            )
            .field("target_file_size_base", &self.target_file_size_base)
            .field("num_levels", &self.num_levels)
            .field(
                "level_compaction_dynamic_level_bytes",
                &self.level_compaction_dynamic_level_bytes,
            )
            .field("enable_blob_files", &self.enable_blob_files)
            .field("min_blob_size", &self.min_blob_size)
            .field("blob_file_size", &self.blob_file_size)
            .field("blob_compression_type", &self.blob_compression_type)
            .field(
                "enable_blob_garbage_collection",
                &self.enable_blob_garbage_collection,
            )
            .field(
                "blob_garbage_collection_age_cutoff",
                &self.blob_garbage_collection_age_cutoff,
            )
            .field(
                "blob_garbage_collection_force_threshold",
                &self.blob_garbage_collection_force_threshold,
            )
            .field(
                "blob_garbage_collection_min_garbage_ratio",
                &self.blob_garbage_collection_min_garbage_ratio,
            )
            .field("db_write_buffer_size", &self.db_write_buffer_size)
            .field("max_total_wal_size", &self.max_total_wal_size)
            .field("max_background_jobs", &self.max_background_jobs)
            .field("delayed_write_rate", &self.delayed_write_rate)
            .field(
                "rate_limiter_bytes_per_sec",
                &self.rate_limiter_bytes_per_sec,
            )
            .field("max_bgerror_resume_count", &self.max_bgerror_resume_count)
            .field(
                "bgerror_resume_retry_interval",
                &self.bgerror_resume_retry_interval,
            )
            .field("inline_background_work", &self.inline_background_work)
            .field("listeners", &self.listeners.len())
            .field("statistics", &self.statistics.is_some())
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Check the options for values strata cannot work with.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidArgument(msg));
        if self.write_buffer_size < 64 * 1024 {
            return bad(format!(
                "write_buffer_size {} is below the minimum of 64 KiB",
                self.write_buffer_size
            ));
        }
        if self.max_write_buffer_number < 2 {
            return bad(format!(
                "max_write_buffer_number {} must be at least 2",
                self.max_write_buffer_number
            ));
        }
        if self.wal_buffer_capacity_bytes < 4096 {
            return bad(format!(
                "wal_buffer_capacity_bytes {} is below the minimum of 4 KiB",
                self.wal_buffer_capacity_bytes
            ));
        }
        if self.max_write_group_bytes == 0 {
            return bad("max_write_group_bytes must be positive".into());
        }
        if !(2..=crate::version::NUM_LEVELS).contains(&self.num_levels) {
            return bad(format!(
                "num_levels {} must be between 2 and {}",
                self.num_levels,
                crate::version::NUM_LEVELS
            ));
        }
        if self.level0_file_num_compaction_trigger == 0
            || self.level0_slowdown_writes_trigger < self.level0_file_num_compaction_trigger
            || self.level0_stop_writes_trigger < self.level0_slowdown_writes_trigger
        {
            return bad(format!(
                "L0 triggers must satisfy 0 < compaction ({}) <= slowdown ({}) <= stop ({})",
                self.level0_file_num_compaction_trigger,
                self.level0_slowdown_writes_trigger,
                self.level0_stop_writes_trigger
            ));
        }
        if !(self.max_bytes_for_level_multiplier >= 2.0
            && self.max_bytes_for_level_multiplier <= 1000.0)
        {
            return bad(format!(
                "max_bytes_for_level_multiplier {} must be between 2 and 1000",
                self.max_bytes_for_level_multiplier
            ));
        }
        if self.max_bytes_for_level_base < 64 * 1024 || self.target_file_size_base < 64 * 1024 {
            return bad(
                "max_bytes_for_level_base and target_file_size_base must be at least 64 KiB".into(),
            );
        }
        if self.max_background_jobs == 0 || self.delayed_write_rate == 0 {
            return bad("max_background_jobs and delayed_write_rate must be positive".into());
        }
        if self.blob_file_size < 64 * 1024 {
            return bad(format!(
                "blob_file_size {} is below the minimum of 64 KiB",
                self.blob_file_size
            ));
        }
        for (name, value) in [
            (
                "blob_garbage_collection_age_cutoff",
                self.blob_garbage_collection_age_cutoff,
            ),
            (
                "blob_garbage_collection_force_threshold",
                self.blob_garbage_collection_force_threshold,
            ),
            (
                "blob_garbage_collection_min_garbage_ratio",
                self.blob_garbage_collection_min_garbage_ratio,
            ),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return bad(format!("{name} {value} must be between 0 and 1"));
            }
        }
        strata_sstable::TableOptions {
            compression: self.blob_compression_type.clone(),
            ..self.table_options(0)
        }
        .validate()
        .map_err(|e| Error::InvalidArgument(format!("blob_compression_type: {e}")))?;
        (0..self.num_levels).try_for_each(|level| {
            self.table_options(level)
                .validate()
                .map_err(|e| Error::InvalidArgument(format!("L{level} tables: {e}")))
        })
    }

    /// How tables of `level` are built.
    pub(crate) fn table_options(&self, level: usize) -> strata_sstable::TableOptions {
        let compression = match self.compression_per_level.get(level) {
            Some(c) => c,
            None => self
                .compression_per_level
                .last()
                .unwrap_or(&self.compression),
        };
        strata_sstable::TableOptions {
            block_size: self.block_size,
            restart_interval: self.block_restart_interval,
            bloom_bits_per_key: self.bloom_bits_per_key,
            compression: compression.clone(),
            compression_opts: self.compression_opts.clone(),
            block_align: self.block_align,
        }
    }
}

/// How WAL files are written ([`Options::wal_write_mode`]).
///
/// A memory-mapped WAL turns each write group's hand-off to the operating
/// system into a `memcpy` into the page cache instead of a `write(2)`
/// (about a third of a lone writer's time; both survive a process crash,
/// and `sync` makes either as durable as `fdatasync`). But a store into a
/// mapping that needs a disk block and cannot get one is a SIGBUS that
/// kills the process, not an error: the mapped WAL is sound only where
/// `fallocate` reserves the blocks of every later page write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalWriteMode {
    /// [`MemoryMapped`](Self::MemoryMapped) on ext4, xfs and tmpfs (found
    /// with `statfs` on the database directory), [`Write`](Self::Write) on
    /// copy-on-write filesystems (btrfs, zfs, bcachefs, where a page's
    /// first write takes a new block whatever was preallocated), on
    /// overlayfs, network and unknown filesystems, and where `fallocate`
    /// is unsupported.
    #[default]
    Auto,
    /// Preallocate each WAL with `fallocate` and append by memory copy into
    /// a shared mapping, on any filesystem (falling back to `write(2)`
    /// only where `fallocate` is unsupported). On a copy-on-write
    /// filesystem with a full disk, a write can then die of SIGBUS.
    /// RocksDB: `allow_mmap_writes = true`.
    MemoryMapped,
    /// Append with `write(2)` (one system call per write group): a full
    /// disk is an error, on any filesystem. RocksDB: `allow_mmap_writes =
    /// false`.
    Write,
}

impl WalWriteMode {
    /// The kind of log to create in `dir` on `fs`.
    pub(crate) fn log_kind(self, fs: &dyn FileSystem, dir: &Path) -> LogKind {
        match self {
            WalWriteMode::Auto => fs.auto_log_kind(dir),
            WalWriteMode::MemoryMapped => LogKind::MemoryMapped,
            WalWriteMode::Write => LogKind::Write,
        }
    }
}

/// Per-write options. A plain struct: `WriteOptions { sync: true, ..Default::default() }`.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Return only once the write is durable on disk (fsync): it survives
    /// power loss. Without it a write survives a process crash but may be
    /// lost with the machine. RocksDB: `WriteOptions::sync`. Default: `false`.
    pub sync: bool,
    /// Skip the write-ahead log: the write lives only in the memtable until
    /// a flush, and a crash loses it. A batch across keyspaces written this
    /// way is flushed keyspace by keyspace, so a crash after one keyspace's
    /// flush and before another's keeps part of it (as in RocksDB without
    /// `atomic_flush`); a clean close keeps all of it. RocksDB:
    /// `WriteOptions::disableWAL`. Default: `false`.
    pub disable_wal: bool,
    /// Fail with [`Error::WriteStall`] instead of waiting when the write
    /// would be delayed or stopped by a write stall. RocksDB:
    /// `WriteOptions::no_slowdown`. Default: `false`.
    pub no_slowdown: bool,
    /// Every plain put of this write expires this long after the write
    /// (by [`Options::clock`]): from then on readers see the key as
    /// deleted, and compaction removes it (docs/design/ttl.md). `None`:
    /// the keyspace's [`default_ttl`](crate::KeyspaceOptions::default_ttl).
    /// Not in RocksDB (its `DBWithTTL` sets one TTL per database).
    /// Default: `None`.
    pub ttl: Option<std::time::Duration>,
}
