//! What the database can tell about itself: live tables, properties,
//! checksum verification. Used by tools (db-bench, sst-dump) and tests.

use crate::core::DbInner;
use crate::error::{table_error, Result};
use crate::version::NUM_LEVELS;
use std::fmt::Write as _;
use strata_sstable::SeqNo;

/// A live table, as [`Db::live_files`](crate::Db::live_files) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFile {
    /// Level (0 = L0).
    pub level: usize,
    /// File number (`NNNNNN.sst`).
    pub number: u64,
    /// Size in bytes.
    pub size: u64,
    /// Smallest user key.
    pub smallest: Vec<u8>,
    /// Largest user key.
    pub largest: Vec<u8>,
    /// Smallest sequence number.
    pub smallest_seqno: SeqNo,
    /// Largest sequence number.
    pub largest_seqno: SeqNo,
    /// Entries, deletions included.
    pub num_entries: u64,
    /// Delete entries.
    pub num_deletions: u64,
}

impl DbInner {
    pub(crate) fn live_files(&self) -> Vec<LiveFile> {
        let version = self.current_version();
        version
            .all_files()
            .map(|(level, f)| {
                let props = f.table().properties();
                LiveFile {
                    level,
                    number: f.meta.number,
                    size: f.meta.size,
                    smallest: f.meta.smallest.clone(),
                    largest: f.meta.largest.clone(),
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
        let version = self.current_version();
        for (_, file) in version.all_files() {
            file.table()
                .verify()
                .map_err(|e| table_error(file.path(), e))?;
        }
        Ok(())
    }

    pub(crate) fn stats(&self) -> crate::stats::DbStats {
        let version = self.current_version();
        let targets = crate::compaction::level_targets(&version, &self.options);
        let scores = crate::compaction::level_scores(&version, &self.options, &targets);
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
        self.stats.snapshot(&shape, wal.written(), wal.syncs())
    }

    pub(crate) fn property(&self, name: &str) -> Option<String> {
        let version = self.current_version();
        if let Some(level) = name.strip_prefix("strata.num-files-at-level") {
            let level: usize = level.parse().ok().filter(|&l| l < NUM_LEVELS)?;
            return Some(version.files(level).len().to_string());
        }
        match name {
            "strata.stats" => Some(self.stats().to_text()),
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
            "strata.cur-size-active-mem-table" => Some(
                self.current_super_version()
                    .mem
                    .approximate_bytes()
                    .to_string(),
            ),
            "strata.size-all-mem-tables" => {
                let sv = self.current_super_version();
                let imms = sv.imms.iter().map(|m| m.approximate_bytes());
                Some((sv.mem.approximate_bytes() + imms.sum::<usize>()).to_string())
            }
            "strata.sstables" => {
                let mut out = String::new();
                for f in self.live_files() {
                    let _ = writeln!(
                        out,
                        "L{} {:06}.sst {} bytes [{} .. {}] seq [{} .. {}]",
                        f.level,
                        f.number,
                        f.size,
                        escape(&f.smallest),
                        escape(&f.largest),
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
