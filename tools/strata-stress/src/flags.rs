//! The knobs of one stress run: the database's options (RocksDB's names)
//! and the workload's mix. `crash` draws a fresh set for every cycle from
//! its seed ([`StressFlags::random`]) and passes them to the cycle's `run`
//! and `verify` as flags ([`StressFlags::args`]), so each cycle reopens the
//! database left by the last one with other options, as db_crashtest.py
//! does.

use crate::rng::Rng;
use crate::value::ValueSizes;
use clap::{Args, ValueEnum};
use strata::{Compression, CompressionOptions, Options};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompressionFlag {
    None,
    Zstd,
    /// zstd with a dictionary per table: 4 KiB trained on 64 KiB of data
    /// blocks (raw content where training fails).
    ZstdDict,
}

#[derive(Args, Clone, Debug)]
pub struct StressFlags {
    /// Worker threads.
    #[arg(long, default_value_t = 4)]
    pub threads: u32,
    /// One write in N is a sync write.
    #[arg(long, default_value_t = 8)]
    pub sync_one_in: u64,
    /// One operation in N is a manual flush (0: never).
    #[arg(long, default_value_t = 2000)]
    pub flush_one_in: u64,
    /// One operation in N is a compact_range over a random range (0: never).
    #[arg(long, default_value_t = 5000)]
    pub compact_one_in: u64,
    /// One operation in N is a range delete over `[i, i + width)` of the
    /// key indices, or a prefix delete of 10 or 100 keys (0: never).
    #[arg(long, default_value_t = 100)]
    pub delete_range_one_in: u64,
    /// One operation in N is a bank transfer: a synced transaction
    /// between two accounts of keyspace `bank` (`bank.rs`; 0: never).
    #[arg(long, default_value_t = 20)]
    pub transfer_one_in: u64,
    /// One operation in N takes a checkpoint (to a directory or through
    /// the stream), opens it and checks it equals a snapshot at its
    /// sequence number, in every keyspace (0: never).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_one_in: u64,
    /// One operation in N ingests a run of keys from one or two table
    /// files built with `SstWriter`, moved or copied in, as one atomic
    /// write (`ingest.rs`; 0: never).
    #[arg(long, default_value_t = 0)]
    pub ingest_one_in: u64,
    /// One operation in N takes an incremental backup into `D/backups`,
    /// recording what it must hold (`backups.rs`; 0: never).
    #[arg(long, default_value_t = 0)]
    pub backup_one_in: u64,
    /// One backup in N is restored at once and compared with a snapshot
    /// at its sequence number (0: never).
    #[arg(long, default_value_t = 4)]
    pub backup_check_one_in: u64,
    /// One value in N is 1-16 KiB (0: never).
    #[arg(long, default_value_t = 64)]
    pub medium_value_one_in: u64,
    /// One value in N is 64 KiB-1 MiB (0: never).
    #[arg(long, default_value_t = 0)]
    pub large_value_one_in: u64,
    /// RocksDB's write_buffer_size (small, so flushes are frequent).
    #[arg(long, default_value_t = 64 * 1024)]
    pub write_buffer_size: usize,
    /// RocksDB's max_write_buffer_number.
    #[arg(long, default_value_t = 2)]
    pub max_write_buffer_number: usize,
    /// RocksDB's block_size.
    #[arg(long, default_value_t = 1024)]
    pub block_size: usize,
    /// RocksDB's block_restart_interval.
    #[arg(long, default_value_t = 16)]
    pub block_restart_interval: usize,
    /// RocksDB's bloom_bits (0: no filters).
    #[arg(long, default_value_t = 10)]
    pub bloom_bits: u32,
    /// RocksDB's compression.
    #[arg(long, value_enum, default_value_t = CompressionFlag::None)]
    pub compression: CompressionFlag,
    /// RocksDB's level0_file_num_compaction_trigger.
    #[arg(long, default_value_t = 4)]
    pub level0_file_num_compaction_trigger: usize,
    /// RocksDB's target_file_size_base.
    #[arg(long, default_value_t = 64 * 1024)]
    pub target_file_size_base: u64,
    /// RocksDB's max_bytes_for_level_base.
    #[arg(long, default_value_t = 256 * 1024)]
    pub max_bytes_for_level_base: u64,
    /// RocksDB's level_compaction_dynamic_level_bytes.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub level_compaction_dynamic_level_bytes: bool,
    /// RocksDB's max_background_jobs.
    #[arg(long, default_value_t = 2)]
    pub max_background_jobs: usize,
    /// RocksDB's max_write_batch_group_size_bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_write_group_bytes: usize,
    /// Capacity of the WAL buffer between write groups and the WAL.
    #[arg(long, default_value_t = 4 << 20)]
    pub wal_buffer_capacity_bytes: usize,
    /// RocksDB's wal_bytes_per_sync (0: off).
    #[arg(long, default_value_t = 0)]
    pub wal_bytes_per_sync: u64,
    /// RocksDB's bytes_per_sync: tables and blob files written back every
    /// this many bytes as they are written (0: off).
    #[arg(long, default_value_t = 1 << 20)]
    pub bytes_per_sync: u64,
    /// RocksDB's max_sequential_skip_in_iterations: versions of one key
    /// the verifier's scans step over before seeking past the rest.
    #[arg(long, default_value_t = 8)]
    pub max_sequential_skip_in_iterations: usize,
    /// RocksDB's max_successive_merges (the merge counters' keyspace).
    #[arg(long, default_value_t = 0)]
    pub max_successive_merges: usize,
    /// RocksDB's min_blob_size, with blob files on (0: blob files off):
    /// values of at least this many bytes go to blob files.
    #[arg(long, default_value_t = 0)]
    pub min_blob_size: u64,
    /// RocksDB's enable_blob_garbage_collection (age cutoff 0.5, force
    /// threshold 0.5: collection runs often in a short cycle).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub blob_gc: bool,
    /// strata's blob_garbage_collection_min_garbage_ratio with `blob_gc`
    /// (0: RocksDB's rule, any old file).
    #[arg(long, default_value_t = 0.25)]
    pub blob_gc_min_garbage_ratio: f64,
    /// Follow the change feed into a replica in `D/replica` on a thread
    /// of the writer, and compare it with the primary at every verify
    /// (`replica.rs`). Only meaningful from a database's first run on.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub replica: bool,
    /// `crash` only: run a read-only reader process beside each writer,
    /// refreshing and checking batch invariants (`reader.rs`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub read_only_reader: bool,
}

/// One of `choices`, uniformly.
fn pick<T: Copy>(rng: &mut Rng, choices: &[T]) -> T {
    choices[rng.below(choices.len() as u64) as usize]
}

/// Log-uniform in `lo..=hi` (powers of two apart), so small and large
/// settings are drawn alike.
fn log_uniform(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    let (lo_bits, hi_bits) = (lo.ilog2(), hi.ilog2());
    let bits = lo_bits + rng.below(u64::from(hi_bits - lo_bits) + 1) as u32;
    let base = 1u64 << bits;
    (base + rng.below(base)).clamp(lo, hi)
}

impl StressFlags {
    /// A set drawn from `rng`: tiny memtables (64 KiB-4 MiB, so rotations
    /// and flushes are frequent), compression on or off, values up to
    /// 1 MiB in some cycles, 1-8 threads, sync writes from every one to
    /// almost none, and the table and level knobs across their range.
    pub fn random(rng: &mut Rng) -> StressFlags {
        let large = rng.one_in(3);
        let mut flags = StressFlags {
            threads: 1 + rng.below(8) as u32,
            sync_one_in: pick(rng, &[1, 2, 8, 32, 1000]),
            flush_one_in: pick(rng, &[0, 300, 2000, 10_000]),
            compact_one_in: pick(rng, &[0, 1000, 5000, 20_000]),
            delete_range_one_in: pick(rng, &[0, 20, 100, 1000]),
            checkpoint_one_in: pick(rng, &[0, 2000, 10_000]),
            medium_value_one_in: pick(rng, &[0, 8, 64]),
            large_value_one_in: if large { pick(rng, &[50, 500]) } else { 0 },
            write_buffer_size: log_uniform(rng, 64 << 10, 4 << 20) as usize,
            max_write_buffer_number: 2 + rng.below(4) as usize,
            block_size: pick(rng, &[256, 1024, 4096, 16 << 10]),
            block_restart_interval: pick(rng, &[1, 4, 16, 32]),
            bloom_bits: pick(rng, &[0, 1, 5, 10, 16]),
            compression: if rng.one_in(2) {
                CompressionFlag::Zstd
            } else {
                CompressionFlag::None
            },
            level0_file_num_compaction_trigger: 1 + rng.below(8) as usize,
            target_file_size_base: log_uniform(rng, 64 << 10, 4 << 20),
            max_bytes_for_level_base: log_uniform(rng, 128 << 10, 16 << 20),
            level_compaction_dynamic_level_bytes: !rng.one_in(4),
            max_background_jobs: 2 + rng.below(3) as usize,
            max_write_group_bytes: pick(rng, &[4 << 10, 64 << 10, 1 << 20, 4 << 20]),
            wal_buffer_capacity_bytes: pick(rng, &[4 << 10, 64 << 10, 1 << 20, 4 << 20]),
            wal_bytes_per_sync: pick(rng, &[0, 0, 256 << 10]),
            max_sequential_skip_in_iterations: pick(rng, &[0, 1, 8]),
            // Drawn last, so the earlier draws of a seed stay as they were.
            transfer_one_in: pick(rng, &[0, 5, 20, 100]),
            max_successive_merges: pick(rng, &[0, 0, 1, 4]),
            ingest_one_in: 0,
            backup_one_in: 0,
            backup_check_one_in: 4,
            // Always on (no draw, so every other draw of a seed is as it
            // was): every cycle feeds the replica and runs a reader.
            replica: true,
            read_only_reader: true,
            min_blob_size: 0,
            blob_gc: false,
            blob_gc_min_garbage_ratio: 0.25,
            bytes_per_sync: 1 << 20,
        };
        // Drawn after the rest, so their draws stay as they were.
        if flags.compression == CompressionFlag::Zstd && rng.one_in(2) {
            flags.compression = CompressionFlag::ZstdDict;
        }
        // Blob files in one cycle in two, small values separated too in
        // some; drawn last, as above.
        if rng.one_in(2) {
            flags.min_blob_size = pick(rng, &[16, 256, 1024]);
            flags.blob_gc = rng.one_in(2);
            if flags.blob_gc && rng.one_in(2) {
                flags.blob_gc_min_garbage_ratio = 0.0;
            }
        }
        flags
    }

    /// Draw the knobs added after the crash test's seeds were fixed (how
    /// often ingestions and backups run, `bytes_per_sync`) from `rng`: the
    /// crash test gives a stream of its own per cycle, so adding these left
    /// every other draw of a seed, the kill points included, as it was.
    pub fn draw_on_own_stream(&mut self, rng: &mut Rng) {
        self.ingest_one_in = pick(rng, &[0, 500, 2000]);
        self.backup_one_in = pick(rng, &[0, 3000, 10_000]);
        self.backup_check_one_in = pick(rng, &[1, 4]);
        // Drawn after those, from the same stream of its own: tables
        // written back every 16 KiB, at the default, or never.
        self.bytes_per_sync = pick(rng, &[0, 16 << 10, 1 << 20]);
    }

    /// The database options these flags describe.
    pub fn options(&self) -> Options {
        let trigger = self.level0_file_num_compaction_trigger.max(1);
        let defaults = Options::default();
        let slowdown = defaults.level0_slowdown_writes_trigger.max(trigger);
        Options {
            write_buffer_size: self.write_buffer_size,
            max_write_buffer_number: self.max_write_buffer_number,
            block_size: self.block_size,
            block_restart_interval: self.block_restart_interval,
            bloom_bits_per_key: self.bloom_bits,
            compression: match self.compression {
                CompressionFlag::None => Compression::None,
                CompressionFlag::Zstd | CompressionFlag::ZstdDict => Compression::Zstd { level: 1 },
            },
            compression_opts: match self.compression {
                CompressionFlag::ZstdDict => CompressionOptions {
                    max_dict_bytes: 4096,
                    zstd_max_train_bytes: 64 << 10,
                },
                _ => CompressionOptions::default(),
            },
            level0_file_num_compaction_trigger: trigger,
            level0_slowdown_writes_trigger: slowdown,
            level0_stop_writes_trigger: defaults.level0_stop_writes_trigger.max(slowdown),
            target_file_size_base: self.target_file_size_base,
            max_bytes_for_level_base: self.max_bytes_for_level_base,
            level_compaction_dynamic_level_bytes: self.level_compaction_dynamic_level_bytes,
            max_background_jobs: self.max_background_jobs,
            max_write_group_bytes: self.max_write_group_bytes,
            wal_buffer_capacity_bytes: self.wal_buffer_capacity_bytes,
            wal_bytes_per_sync: self.wal_bytes_per_sync,
            bytes_per_sync: self.bytes_per_sync,
            max_sequential_skip_in_iterations: self.max_sequential_skip_in_iterations,
            max_successive_merges: self.max_successive_merges,
            enable_blob_files: self.min_blob_size > 0,
            min_blob_size: self.min_blob_size,
            // Small files, so that a cycle makes several and collection
            // has old ones to relocate.
            blob_file_size: 256 << 10,
            enable_blob_garbage_collection: self.blob_gc,
            blob_garbage_collection_age_cutoff: 0.5,
            blob_garbage_collection_force_threshold: 0.5,
            blob_garbage_collection_min_garbage_ratio: self.blob_gc_min_garbage_ratio,
            ..defaults
        }
    }

    pub fn value_sizes(&self) -> ValueSizes {
        ValueSizes {
            medium_one_in: self.medium_value_one_in,
            large_one_in: self.large_value_one_in,
        }
    }

    /// The same flags on a command line.
    pub fn args(&self) -> Vec<String> {
        let compression = match self.compression {
            CompressionFlag::None => "none",
            CompressionFlag::Zstd => "zstd",
            CompressionFlag::ZstdDict => "zstd-dict",
        };
        [
            ("threads", self.threads.to_string()),
            ("sync-one-in", self.sync_one_in.to_string()),
            ("flush-one-in", self.flush_one_in.to_string()),
            ("compact-one-in", self.compact_one_in.to_string()),
            ("delete-range-one-in", self.delete_range_one_in.to_string()),
            ("transfer-one-in", self.transfer_one_in.to_string()),
            ("checkpoint-one-in", self.checkpoint_one_in.to_string()),
            ("ingest-one-in", self.ingest_one_in.to_string()),
            ("backup-one-in", self.backup_one_in.to_string()),
            ("backup-check-one-in", self.backup_check_one_in.to_string()),
            ("medium-value-one-in", self.medium_value_one_in.to_string()),
            ("large-value-one-in", self.large_value_one_in.to_string()),
            ("write-buffer-size", self.write_buffer_size.to_string()),
            (
                "max-write-buffer-number",
                self.max_write_buffer_number.to_string(),
            ),
            ("block-size", self.block_size.to_string()),
            (
                "block-restart-interval",
                self.block_restart_interval.to_string(),
            ),
            ("bloom-bits", self.bloom_bits.to_string()),
            ("compression", compression.to_string()),
            (
                "level0-file-num-compaction-trigger",
                self.level0_file_num_compaction_trigger.to_string(),
            ),
            (
                "target-file-size-base",
                self.target_file_size_base.to_string(),
            ),
            (
                "max-bytes-for-level-base",
                self.max_bytes_for_level_base.to_string(),
            ),
            (
                "level-compaction-dynamic-level-bytes",
                self.level_compaction_dynamic_level_bytes.to_string(),
            ),
            ("max-background-jobs", self.max_background_jobs.to_string()),
            (
                "max-write-group-bytes",
                self.max_write_group_bytes.to_string(),
            ),
            (
                "wal-buffer-capacity-bytes",
                self.wal_buffer_capacity_bytes.to_string(),
            ),
            ("wal-bytes-per-sync", self.wal_bytes_per_sync.to_string()),
            ("bytes-per-sync", self.bytes_per_sync.to_string()),
            (
                "max-sequential-skip-in-iterations",
                self.max_sequential_skip_in_iterations.to_string(),
            ),
            (
                "max-successive-merges",
                self.max_successive_merges.to_string(),
            ),
            ("min-blob-size", self.min_blob_size.to_string()),
            ("blob-gc", self.blob_gc.to_string()),
            (
                "blob-gc-min-garbage-ratio",
                self.blob_gc_min_garbage_ratio.to_string(),
            ),
            ("replica", self.replica.to_string()),
            ("read-only-reader", self.read_only_reader.to_string()),
        ]
        .into_iter()
        .flat_map(|(name, value)| [format!("--{name}"), value])
        .collect()
    }

    /// A short description for the progress lines and failure messages.
    pub fn summary(&self) -> String {
        format!(
            "threads={} write_buffer_size={} compression={:?} sync_one_in={} large_value_one_in={} ingest_one_in={} backup_one_in={} min_blob_size={} blob_gc={} blob_gc_min_garbage_ratio={}",
            self.threads,
            self.write_buffer_size,
            self.compression,
            self.sync_one_in,
            self.large_value_one_in,
            self.ingest_one_in,
            self.backup_one_in,
            self.min_blob_size,
            self.blob_gc,
            self.blob_gc_min_garbage_ratio
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: StressFlags,
    }

    #[test]
    fn random_flags_survive_the_command_line_and_are_valid_options() {
        let mut rng = Rng::new(11);
        for _ in 0..200 {
            let mut f = StressFlags::random(&mut rng);
            f.draw_on_own_stream(&mut rng);
            let mut argv = vec!["x".to_string()];
            argv.extend(f.args());
            let parsed = Cli::try_parse_from(&argv).unwrap().flags;
            assert_eq!(parsed.args(), f.args());
            parsed.options().validate().unwrap();
            assert!((64 << 10..=4 << 20).contains(&f.write_buffer_size));
            assert!((1..=8).contains(&f.threads));
        }
    }
}
