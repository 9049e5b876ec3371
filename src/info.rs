//! What the database can tell about itself: live tables, properties,
//! checksum verification. Used by tools (db-bench, sst-dump) and tests.

use crate::core::DbInner;
use crate::error::{table_error, Result};
use crate::keyspace::KeyspaceState;
use crate::version::{LargestBound, NUM_LEVELS};
use std::fmt::Write as _;
use strata_sstable::SeqNo;

/// A live table, as [`Db::live_files`](crate::Db::live_files) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFile {
    /// The keyspace's name (`"default"` for the default keyspace).
    pub keyspace: String,
    /// Level (0 = L0).
    pub level: usize,
    /// File number (`NNNNNN.sst`).
    pub number: u64,
    /// Size in bytes.
    pub size: u64,
    /// Smallest user key.
    pub smallest: Vec<u8>,
    /// Largest user key (empty when `largest_bound` is `Unbounded`).
    pub largest: Vec<u8>,
    /// Whether the table's range holds `largest`, ends just before it (a
    /// range tombstone's end), or has no end.
    pub largest_bound: LargestBound,
    /// Smallest sequence number.
    pub smallest_seqno: SeqNo,
    /// Largest sequence number.
    pub largest_seqno: SeqNo,
    /// Entries, deletions included.
    pub num_entries: u64,
    /// Delete entries.
    pub num_deletions: u64,
}

/// A live blob file and its garbage, as
/// [`Db::live_blob_files`](crate::Db::live_blob_files) reports it
/// (docs/design/blob-files.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBlobFile {
    /// The keyspace's name.
    pub keyspace: String,
    /// File number (`NNNNNN.blob`).
    pub number: u64,
    /// Size in bytes.
    pub size: u64,
    /// Values it holds (records), from its footer.
    pub total_count: u64,
    /// Stored bytes of those values (after compression), from its footer.
    pub total_bytes: u64,
    /// Of those, values no table refers to any more: the references
    /// compactions dropped or relocated.
    pub garbage_count: u64,
    /// Stored bytes of the garbage values.
    pub garbage_bytes: u64,
}

impl LiveBlobFile {
    /// `garbage_bytes / total_bytes` (0 for an empty file).
    pub fn garbage_ratio(&self) -> f64 {
        if self.total_bytes == 0 {
            0.0
        } else {
            self.garbage_bytes as f64 / self.total_bytes as f64
        }
    }
}

impl DbInner {
    /// The live blob files of `ks`, oldest first. An error when a blob
    /// file's footer cannot be read.
    pub(crate) fn live_blob_files_of(&self, ks: &KeyspaceState) -> Result<Vec<LiveBlobFile>> {
        let version = self.versions.lock().current(ks.id);
        version
            .blob_files()
            .iter()
            .map(|(&number, file)| {
                let totals = file.totals()?;
                let garbage = version.blob_garbage_of(number);
                Ok(LiveBlobFile {
                    keyspace: ks.name.clone(),
                    number,
                    size: totals.file_size,
                    total_count: totals.count,
                    total_bytes: totals.bytes,
                    garbage_count: garbage.count,
                    garbage_bytes: garbage.bytes,
                })
            })
            .collect()
    }

    /// `strata.blob-stats`: one line per live blob file of `ks`, then the
    /// totals.
    fn blob_stats_text(&self, ks: &KeyspaceState) -> String {
        let files = match self.live_blob_files_of(ks) {
            Ok(files) => files,
            Err(e) => return format!("error: {e}\n"),
        };
        let mut out = String::from(
            "file          size  blobs      bytes  garbage-blobs  garbage-bytes  garbage-ratio\n",
        );
        let row = |out: &mut String, name: &str, f: &LiveBlobFile| {
            let _ = writeln!(
                out,
                "{name} {} {} {} {} {} {:.3}",
                f.size,
                f.total_count,
                f.total_bytes,
                f.garbage_count,
                f.garbage_bytes,
                f.garbage_ratio()
            );
        };
        let mut total = LiveBlobFile {
            keyspace: ks.name.clone(),
            number: 0,
            size: 0,
            total_count: 0,
            total_bytes: 0,
            garbage_count: 0,
            garbage_bytes: 0,
        };
        for f in &files {
            row(&mut out, &format!("{:06}.blob", f.number), f);
            total.size += f.size;
            total.total_count += f.total_count;
            total.total_bytes += f.total_bytes;
            total.garbage_count += f.garbage_count;
            total.garbage_bytes += f.garbage_bytes;
        }
        row(&mut out, &format!("total({} files)", files.len()), &total);
        out
    }

    /// The live tables of every keyspace.
    pub(crate) fn live_files(&self) -> Vec<LiveFile> {
        let keyspaces = self.all_keyspaces();
        keyspaces
            .iter()
            .flat_map(|ks| self.live_files_of(ks))
            .collect()
    }

    /// The live tables of `ks`.
    pub(crate) fn live_files_of(&self, ks: &KeyspaceState) -> Vec<LiveFile> {
        let version = self.versions.lock().current(ks.id);
        version
            .all_files()
            .map(|(level, f)| {
                let props = f.table().properties();
                LiveFile {
                    keyspace: ks.name.clone(),
                    level,
                    number: f.meta.number,
                    size: f.meta.size,
                    smallest: f.meta.smallest.clone(),
                    largest: f.meta.largest.clone(),
                    largest_bound: f.meta.largest_bound,
                    smallest_seqno: f.meta.smallest_seqno,
                    largest_seqno: f.meta.largest_seqno,
                    num_entries: props.num_entries,
                    num_deletions: props.num_deletions,
                }
            })
            .collect()
    }

    /// Check every block checksum of every live table.
    pub(crate) fn verify_checksums(&self) -> Result<()> {
        let versions: Vec<_> = {
            let set = self.versions.lock();
            set.keyspaces().map(|(id, _)| set.current(id)).collect()
        };
        for version in versions {
            for (_, file) in version.all_files() {
                file.table()
                    .verify()
                    .map_err(|e| table_error(file.path(), e))?;
            }
        }
        Ok(())
    }

    /// RocksDB's tickers and histograms, if `Options::statistics` is set.
    pub(crate) fn statistics(&self) -> Option<crate::StatisticsSnapshot> {
        let wal = &self.write_path.wal;
        self.stats.statistics(wal.written(), wal.syncs())
    }

    /// With the `metrics` feature and statistics kept: publish them
    /// (after a flush or compaction: `statistics/metrics_export.rs`).
    #[inline]
    pub(crate) fn export_metrics(&self) {
        #[cfg(feature = "metrics")]
        if let Some(s) = self.statistics() {
            s.export_to_metrics();
        }
    }

    /// Statistics with the level shape of `ks`; the write, WAL, flush,
    /// compaction and stall counters are the database's.
    pub(crate) fn stats_of(&self, ks: &KeyspaceState) -> crate::stats::DbStats {
        let version = ks.super_version.load().version.clone();
        let options = ks.options();
        let targets = crate::compaction::level_targets(&version, &options);
        let scores = crate::compaction::level_scores(&version, &options, &targets);
        let shape: Vec<(usize, u64, f64, u64)> = (0..NUM_LEVELS)
            .map(|l| {
                (
                    version.files(l).len(),
                    version.level_bytes(l),
                    scores[l],
                    targets.target_bytes[l],
                )
            })
            .collect();
        let wal = &self.write_path.wal;
        let mut stats = self
            .stats
            .snapshot(&shape, ks.counters.get(), wal.written(), wal.syncs());
        stats.keyspace = ks.name.clone();
        stats
    }

    /// A property of `ks` (the block cache's are the database's).
    pub(crate) fn property_of(&self, ks: &KeyspaceState, name: &str) -> Option<String> {
        let version = ks.super_version.load().version.clone();
        if let Some(level) = name.strip_prefix("strata.num-files-at-level") {
            let level: usize = level.parse().ok().filter(|&l| l < NUM_LEVELS)?;
            return Some(version.files(level).len().to_string());
        }
        match name {
            "strata.stats" => Some(self.stats_of(ks).to_text()),
            "strata.blob-stats" => Some(self.blob_stats_text(ks)),
            "strata.keyspaces" => Some(self.keyspace_names().join("\n") + "\n"),
            "strata.block-cache-usage" => {
                let versions = self.versions.lock();
                let cache = versions.opener().cache.as_ref();
                Some(cache.map_or(0, |c| c.usage_bytes()).to_string())
            }
            "strata.block-cache-pinned-usage" => {
                let versions = self.versions.lock();
                let cache = versions.opener().cache.as_ref();
                Some(cache.map_or(0, |c| c.pinned_usage_bytes()).to_string())
            }
            "strata.cur-size-active-mem-table" => {
                Some(ks.super_version.load().mem.approximate_bytes().to_string())
            }
            "strata.size-all-mem-tables" => {
                let sv = ks.current_super_version();
                let imms = sv.imms.iter().map(|m| m.approximate_bytes());
                Some((sv.mem.approximate_bytes() + imms.sum::<usize>()).to_string())
            }
            "strata.memtable-pool-bytes" => {
                Some(self.write_path.block_pool.pooled_bytes().to_string())
            }
            "strata.sstables" => {
                let mut out = String::new();
                for f in self.live_files_of(ks) {
                    let _ = writeln!(
                        out,
                        "L{} {:06}.sst {} bytes [{} .. {} seq [{} .. {}]",
                        f.level,
                        f.number,
                        f.size,
                        escape(&f.smallest),
                        f.largest_bound.close(&escape(&f.largest)),
                        f.smallest_seqno,
                        f.largest_seqno
                    );
                }
                Some(out)
            }
            "strata.levelstats" => {
                let mut out = String::from("Level Files Size(MB)\n--------------------\n");
                for level in 0..NUM_LEVELS {
                    let _ = writeln!(
                        out,
                        "{level:>5} {:>5} {:>8.1}",
                        version.files(level).len(),
                        version.level_bytes(level) as f64 / 1048576.0
                    );
                }
                Some(out)
            }
            _ => None,
        }
    }
}

/// Printable form of a key: ASCII as is, other bytes as `\xNN`.
pub(crate) fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}
