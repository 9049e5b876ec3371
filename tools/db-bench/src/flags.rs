//! The command line: db_bench's flag names and defaults, parsed with clap.
//!
//! Flags are written `--name=value` as with gflags; booleans also accept a
//! bare `--name` and `0/1/true/false`. Unknown flags are an error with a
//! suggestion of the closest known name.

use crate::engine::EngineKind;
use crate::error::{BenchError, Result};
use clap::Parser;
use std::path::PathBuf;

/// The suite `db-bench` runs with no arguments.
pub const DEFAULT_BENCHMARKS: &str =
    "fillseq,fillrandom,overwrite,readrandom,readseq,readreverse,seekrandom,deleterandom,fillsync";

/// Block compression for tables (`--compression_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionType {
    None,
    Zstd,
}

impl CompressionType {
    /// The name RocksDB's header prints (`CompressionTypeToString`).
    pub fn rocksdb_name(self) -> &'static str {
        match self {
            CompressionType::None => "NoCompression",
            CompressionType::Zstd => "ZSTD",
        }
    }
}

/// The zstd level used when `--compression_type=zstd` (RocksDB's default
/// level for zstd, 3).
pub const ZSTD_LEVEL: i32 = 3;

/// db-bench's flags. Defaults are db_bench's unless the doc says otherwise.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "db-bench",
    version,
    about = "RocksDB's db_bench for strata and its peers (RocksDB, fjall, sled)",
    allow_negative_numbers = true,
    max_term_width = 100,
    rename_all = "snake_case"
)]
pub struct Flags {
    /// Comma-separated benchmarks, run in order; `name[X5-W1]` repeats a
    /// benchmark 5 times after 1 warm-up run.
    #[arg(long, default_value = DEFAULT_BENCHMARKS)]
    pub benchmarks: String,

    /// Number of key/values to place in the database.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(i64).range(1..))]
    pub num: i64,

    /// Read operations per thread; negative means --num.
    #[arg(long, default_value_t = -1)]
    pub reads: i64,

    /// Write operations per thread; negative means --num.
    #[arg(long, default_value_t = -1)]
    pub writes: i64,

    /// Delete operations per thread; negative means --num.
    #[arg(long, default_value_t = -1)]
    pub deletes: i64,

    /// Concurrent threads (readwhilewriting and seekrandomwhilewriting add
    /// one writer).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,

    /// Seconds the random-ops benchmarks run for; 0 means --num/--reads
    /// decide.
    #[arg(long, default_value_t = 0)]
    pub duration: u64,

    /// Seed for the key generators; 0 derives one from the clock (printed,
    /// so a run can be repeated).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Key size in bytes (at least 8: keys carry their index in 8 bytes).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(8..=65_536))]
    pub key_size: u32,

    /// Value size in bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=67_108_864))]
    pub value_size: u32,

    /// Values compress to this fraction of their size (0 < r <= 1).
    #[arg(long, default_value_t = 0.5, value_parser = parse_ratio)]
    pub compression_ratio: f64,

    /// Table block compression. db_bench's default is snappy, which strata
    /// does not have: here the default is none.
    #[arg(long, value_enum, default_value_t = CompressionType::None)]
    pub compression_type: CompressionType,

    /// With zstd: the largest dictionary per table, in bytes; 0: none.
    /// RocksDB's db_bench `--compression_max_dict_bytes`
    /// (`CompressionOptions::max_dict_bytes`).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32))]
    pub compression_max_dict_bytes: u32,

    /// With a dictionary: the bytes of data blocks zstd's trainer samples;
    /// 0: the first blocks are the dictionary as they are. RocksDB's
    /// db_bench `--compression_zstd_max_train_bytes`.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32))]
    pub compression_zstd_max_train_bytes: u32,

    /// Block cache capacity in bytes.
    #[arg(long, default_value_t = 32 << 20, value_parser = clap::value_parser!(u64))]
    pub cache_size: u64,

    /// Bloom filter bits per key; negative means strata's default (10), 0
    /// disables. The same value is given to every engine.
    #[arg(long, default_value_t = -1, value_parser = clap::value_parser!(i32).range(-1..=64))]
    pub bloom_bits: i32,

    /// Data block size in bytes.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(256..=(64 << 20)))]
    pub block_size: u32,

    /// Memtable size in bytes.
    #[arg(long, default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range((64 << 10)..))]
    pub write_buffer_size: u64,

    /// Memtables kept in memory, the active one included.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..=64))]
    pub max_write_buffer_number: u32,

    /// fsync every write.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub sync: bool,

    /// Write without the write-ahead log.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub disable_wal: bool,

    /// Keep the database at --db instead of starting empty; fill
    /// benchmarks are skipped.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub use_existing_db: bool,

    /// Database directory. Default: a fresh temporary directory, removed at
    /// exit. With several engines each gets `<db>/<engine>`.
    #[arg(long)]
    pub db: Option<PathBuf>,

    /// Collect the engine's statistics (RocksDB's tickers and histograms)
    /// and print them in RocksDB's `STATISTICS:` format at the end.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub statistics: bool,

    /// Print a latency histogram after each benchmark.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub histogram: bool,

    /// Next() calls after each Seek() in seekrandom and seekordered.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32))]
    pub seek_nexts: u32,

    /// Entries per write batch in the fill and delete benchmarks
    /// (fillbatch always uses 1000, as db_bench does).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: u64,

    /// Writes a fill makes before its first range tombstone; deleterange
    /// leaves that many keys before its first range (so a database of
    /// `--num` keys can keep its first N and lose the rest).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub writes_before_delete_range: i64,

    /// The fill benchmarks write a range tombstone after every N writes
    /// (`delete_range(k, k + --range_tombstone_width)`, `k` the next key the
    /// fill would write), at most --max_num_range_tombstones of them; 0
    /// writes none.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub writes_per_range_tombstone: i64,

    /// Keys a range tombstone spans, in the fills and in deleterange.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    pub range_tombstone_width: i64,

    /// Most range tombstones a fill writes per thread (0, the default,
    /// writes none, as in db_bench).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub max_num_range_tombstones: i64,

    /// The merge operator, as db_bench's `--merge_operator`: `uint64add`,
    /// `stringappend` or `max` (empty, the default: none). mergerandom
    /// needs one.
    #[arg(long, default_value = "", value_parser = parse_merge_operator)]
    pub merge_operator: String,

    /// RocksDB's `--max_successive_merges`: a merge over more operands of
    /// its key in the memtable is stored as a put of the merged value (0,
    /// the default: off). strata only; the RocksDB adapter does not set it.
    #[arg(long, default_value_t = 0)]
    pub max_successive_merges: usize,

    /// Write the fills' batches (`--batch_size` > 1) as optimistic
    /// transactions, and run randomtransaction on them (RocksDB's
    /// `--optimistic_transaction_db`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub optimistic_transaction_db: bool,

    /// Keys one randomtransaction transaction reads for update and
    /// increments, one from each set (RocksDB's `--transaction_sets`).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=9999))]
    pub transaction_sets: u64,

    /// Percentage of reads in readrandomwriterandom.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub readwritepercent: u32,

    /// L0 files that trigger a compaction.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..))]
    pub level0_file_num_compaction_trigger: i32,

    /// L0 files at which writes are slowed.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(1..))]
    pub level0_slowdown_writes_trigger: i32,

    /// L0 files at which writes stop.
    #[arg(long, default_value_t = 36, value_parser = clap::value_parser!(i32).range(1..))]
    pub level0_stop_writes_trigger: i32,

    /// Target size of L1 in bytes.
    #[arg(long, default_value_t = 256 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_bytes_for_level_base: u64,

    /// Target size of a table file in bytes.
    #[arg(long, default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub target_file_size_base: u64,

    /// Keyspaces (RocksDB's column families) the keys are spread over:
    /// key `k` lives in keyspace `k % num_column_families`, as db_bench's
    /// `GetCfh(rand_num)` picks it; keyspace 0 is the default, the others
    /// are named `column_family_name_000001` and on.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub num_column_families: u32,

    /// Background flush and compaction threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=256))]
    pub max_background_jobs: i32,

    /// Print each thread's progress every N seconds; 0 disables.
    #[arg(long, default_value_t = 0)]
    pub stats_interval_seconds: u64,

    /// Write throughput (and p99) every N seconds to --report_file; 0
    /// disables.
    #[arg(long, default_value_t = 0)]
    pub report_interval_seconds: u64,

    /// CSV time series written with --report_interval_seconds.
    #[arg(long, default_value = "report.csv")]
    pub report_file: PathBuf,

    /// Write one JSON record per benchmark run to this file (JSON lines).
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Draw throughput and p99 over time as SVG (needs
    /// --report_interval_seconds).
    #[arg(long)]
    pub plot: Option<PathBuf>,

    /// Keep index and filter blocks in the block cache (high priority)
    /// instead of in memory for the table's life. RocksDB's
    /// `cache_index_and_filter_blocks`.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub cache_index_and_filter_blocks: bool,

    /// With --cache_index_and_filter_blocks: pin L0 tables' index and
    /// filter in the cache. RocksDB's `pin_l0_filter_and_index_blocks_in_cache`.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub pin_l0_filter_and_index_blocks_in_cache: bool,

    /// Store large values in blob files (key-value separation).
    /// RocksDB's `enable_blob_files`.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub enable_blob_files: bool,

    /// With `--enable_blob_files`: the smallest value, in bytes, stored in
    /// a blob file. RocksDB's `min_blob_size`.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64))]
    pub min_blob_size: u64,

    /// Size at which a blob file is finished. RocksDB's `blob_file_size`.
    #[arg(long, default_value_t = 256 << 20, value_parser = clap::value_parser!(u64).range((64 << 10)..))]
    pub blob_file_size: u64,

    /// Relocate live values out of old blob files during compaction.
    /// RocksDB's `enable_blob_garbage_collection`.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub enable_blob_garbage_collection: bool,

    /// The fraction of blob files, oldest first, that garbage collection
    /// relocates from. RocksDB's `blob_garbage_collection_age_cutoff`.
    #[arg(long, default_value_t = 0.25)]
    pub blob_garbage_collection_age_cutoff: f64,

    /// Garbage ratio of the oldest blob files at which the tables
    /// referring to them are compacted. RocksDB's
    /// `blob_garbage_collection_force_threshold`.
    #[arg(long, default_value_t = 1.0)]
    pub blob_garbage_collection_force_threshold: f64,

    /// Garbage ratio a blob file within the age cutoff must reach before
    /// compaction relocates its values (strata's
    /// `blob_garbage_collection_min_garbage_ratio`; fjall's
    /// `staleness_threshold`; RocksDB has none: it relocates at any ratio,
    /// as 0 does here).
    #[arg(long, default_value_t = 0.5)]
    pub blob_garbage_collection_min_garbage_ratio: f64,

    /// Read tables through memory maps (RocksDB's `allow_mmap_reads`).
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub mmap_read: bool,

    /// Bytes a compaction reads at once from each input. RocksDB's
    /// `compaction_readahead_size`.
    #[arg(long, default_value_t = 2 << 20)]
    pub compaction_readahead_size: u64,

    /// Versions of one key an iterator steps over before seeking past the
    /// rest. RocksDB's `max_sequential_skip_in_iterations` (default 8).
    #[arg(long, default_value_t = 8)]
    pub max_sequential_skip_in_iterations: u64,

    /// strata: drop compaction outputs from the page cache once synced
    /// (`compaction_output_drop_page_cache`).
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub compaction_output_drop_page_cache: bool,

    /// Engines to run, comma-separated: strata, rocksdb, fjall, sled.
    /// Peers need their cargo feature (`--features rocksdb`). With several,
    /// every benchmark runs on each and a ratio table ends the run.
    #[arg(long, default_value = "strata", value_parser = parse_engines)]
    pub engine: EngineList,
}

/// The engines of `--engine`, in the order given.
#[derive(Clone, Debug)]
pub struct EngineList(pub Vec<EngineKind>);

fn parse_engines(s: &str) -> std::result::Result<EngineList, String> {
    let mut engines = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = EngineKind::parse(name)?;
        if engines.contains(&kind) {
            return Err(format!("engine `{name}` is listed twice"));
        }
        engines.push(kind);
    }
    if engines.is_empty() {
        return Err("no engine given".into());
    }
    Ok(EngineList(engines))
}

/// gflags' booleans: `1/0`, `true/false`, `yes/no`, `t/f`, `y/n`.
fn parse_bool(s: &str) -> std::result::Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" => Ok(true),
        "0" | "false" | "f" | "no" | "n" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean (use 1/0 or true/false)")),
    }
}

fn parse_ratio(s: &str) -> std::result::Result<f64, String> {
    let r: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if r > 0.0 && r <= 1.0 {
        Ok(r)
    } else {
        Err(format!("{r} is outside (0, 1]"))
    }
}

impl Flags {
    /// Checks that need more than one flag.
    pub fn validate(&self) -> Result<()> {
        if self.plot.is_some() && self.report_interval_seconds == 0 {
            return Err(BenchError::usage(
                "--plot needs --report_interval_seconds (the plot draws that time series)",
            ));
        }
        if self.use_existing_db && self.db.is_none() {
            return Err(BenchError::usage(
                "--use_existing_db needs --db (without it db-bench uses a fresh temporary directory)",
            ));
        }
        Ok(())
    }

    /// Whether the fills write range tombstones.
    pub fn range_tombstones(&self) -> bool {
        self.writes_per_range_tombstone > 0 && self.max_num_range_tombstones > 0
    }

    /// Whether a fill that has made `written` writes adds a range
    /// tombstone now: db_bench's test in `DoWrite`, after every
    /// `--writes_per_range_tombstone` writes past
    /// `--writes_before_delete_range`, up to `--max_num_range_tombstones`.
    #[inline]
    pub fn range_tombstone_due(&self, written: u64) -> bool {
        let (before, per) = (
            self.writes_before_delete_range as u64,
            self.writes_per_range_tombstone as u64,
        );
        per > 0
            && written > before
            && (written - before) / per <= self.max_num_range_tombstones as u64
            && (written - before).is_multiple_of(per)
    }

    /// The keyspace (column family) index of key number `k`: db_bench's
    /// `GetCfh(rand_num)`, `rand_num % num_column_families`.
    #[inline]
    pub fn keyspace_of(&self, k: u64) -> usize {
        (k % u64::from(self.num_column_families)) as usize
    }

    /// The name of keyspace `index`: db_bench's `ColumnFamilyName(i)`.
    pub fn keyspace_name(index: usize) -> String {
        if index == 0 {
            "default".to_string()
        } else {
            format!("column_family_name_{index:06}")
        }
    }

    /// Bloom bits every engine gets: `--bloom_bits`, or 10 when negative.
    pub fn bloom_bits_per_key(&self) -> u32 {
        u32::try_from(self.bloom_bits).unwrap_or(10)
    }

    /// Whether each operation is timed (the histogram, JSON, the time
    /// series and the ratio table need it; plain runs skip the clock).
    pub fn measure_latency(&self) -> bool {
        self.histogram
            || self.json.is_some()
            || self.report_interval_seconds > 0
            || self.engine.0.len() > 1
    }
}

/// The `--merge_operator` names both engines have (RocksDB's nicknames).
fn parse_merge_operator(s: &str) -> Result<String, String> {
    match s {
        "" | "uint64add" | "stringappend" | "max" => Ok(s.to_string()),
        other => Err(format!(
            "unknown merge operator {other:?}: use uint64add, stringappend or max"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("db-bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_db_bench_defaults() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.num, 1_000_000);
        assert_eq!((f.reads, f.writes, f.deletes), (-1, -1, -1));
        assert_eq!((f.key_size, f.value_size), (16, 100));
        assert_eq!(f.compression_ratio, 0.5);
        assert_eq!(f.cache_size, 32 << 20);
        assert_eq!(f.bloom_bits, -1);
        assert_eq!(f.block_size, 4096);
        assert_eq!(f.write_buffer_size, 64 << 20);
        assert_eq!(f.max_write_buffer_number, 2);
        assert_eq!(f.batch_size, 1);
        assert_eq!(f.seek_nexts, 0);
        assert_eq!(f.readwritepercent, 90);
        assert_eq!(f.level0_file_num_compaction_trigger, 4);
        assert_eq!(f.level0_slowdown_writes_trigger, 20);
        assert_eq!(f.level0_stop_writes_trigger, 36);
        assert_eq!(f.max_bytes_for_level_base, 256 << 20);
        assert_eq!(f.target_file_size_base, 64 << 20);
        assert_eq!(f.max_background_jobs, 2);
        assert!(!f.sync && !f.disable_wal && !f.use_existing_db && !f.histogram);
        assert_eq!(f.engine.0, vec![EngineKind::Strata]);
    }

    #[test]
    fn merge_operators_are_rocksdbs_nicknames() {
        assert_eq!(parse(&[]).unwrap().merge_operator, "");
        assert_eq!(parse(&[]).unwrap().max_successive_merges, 0);
        let f = parse(&["--max_successive_merges=4"]).unwrap();
        assert_eq!(f.max_successive_merges, 4);
        for name in ["uint64add", "stringappend", "max"] {
            let arg = format!("--merge_operator={name}");
            assert_eq!(parse(&[arg.as_str()]).unwrap().merge_operator, name);
        }
        assert!(parse(&["--merge_operator=put"]).is_err());
    }

    #[test]
    fn range_tombstones_come_every_n_writes_up_to_the_maximum() {
        let f = parse(&[
            "--writes_before_delete_range=10",
            "--writes_per_range_tombstone=5",
            "--max_num_range_tombstones=3",
        ])
        .unwrap();
        assert_eq!(f.range_tombstone_width, 100, "db_bench's default width");
        let due: Vec<u64> = (0..100).filter(|&w| f.range_tombstone_due(w)).collect();
        assert_eq!(due, [15, 20, 25]);
        // As in db_bench, no maximum means no tombstone.
        let none = parse(&["--writes_per_range_tombstone=5"]).unwrap();
        assert!(!none.range_tombstones());
        assert!((0..100).all(|w| !none.range_tombstone_due(w)));
        assert!(parse(&["--range_tombstone_width=0"]).is_err());
    }

    #[test]
    fn gflags_booleans() {
        assert!(parse(&["--histogram"]).unwrap().histogram);
        assert!(parse(&["--histogram=1"]).unwrap().histogram);
        assert!(!parse(&["--histogram=false"]).unwrap().histogram);
        assert!(parse(&["--sync=maybe"]).is_err());
    }

    #[test]
    fn negative_numbers_and_bad_values() {
        assert_eq!(parse(&["--reads=-1"]).unwrap().reads, -1);
        assert!(parse(&["--num=0"]).is_err());
        assert!(parse(&["--compression_ratio=1.5"]).is_err());
        assert!(parse(&["--compression_type=snappy"]).is_err());
        assert!(parse(&["--engine=leveldb"]).is_err());
    }

    #[test]
    fn flag_names_keep_their_underscores() {
        let f = parse(&["--compression_type=zstd", "--use_existing_db", "--db=/x"]).unwrap();
        assert_eq!(f.compression_type, CompressionType::Zstd);
        assert!(f.use_existing_db);
        assert!(parse(&["--compression-type=zstd"]).is_err());
    }

    #[test]
    fn unknown_flag_suggests() {
        let err = parse(&["--thread=5"]).unwrap_err().to_string();
        assert!(
            err.contains("a similar argument exists: '--threads'"),
            "{err}"
        );
    }
}
