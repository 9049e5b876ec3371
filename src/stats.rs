//! Statistics: per-level compaction counters and cumulative write, WAL,
//! flush and stall figures, as a struct and as RocksDB-style text.

use crate::statistics::{Histogram, Statistics, StatisticsSnapshot, Ticker};
use crate::version::NUM_LEVELS;
use parking_lot::Mutex;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Default, Clone, Copy)]
pub(crate) struct LevelCounters {
    read_input: u64,
    read_output: u64,
    written: u64,
    moved: u64,
    compactions: u64,
    micros: u64,
    keys_in: u64,
    keys_dropped: u64,
    deleted_only: u64,
}

/// One keyspace's compaction counters, by output level (L0's row counts
/// flushes): the rows of its compaction stats table. The database's
/// [`StatsCounters`] hold the totals over every keyspace.
#[derive(Default)]
pub(crate) struct KeyspaceCounters(Mutex<[LevelCounters; NUM_LEVELS]>);

impl KeyspaceCounters {
    pub fn record_flush(&self, bytes: u64, micros: u64) {
        LevelCounters::add_flush(&mut self.0.lock(), bytes, micros);
    }

    pub fn record_compaction(&self, output_level: usize, r: &CompactionResult) {
        self.0.lock()[output_level].add_compaction(r);
    }

    pub fn get(&self) -> [LevelCounters; NUM_LEVELS] {
        *self.0.lock()
    }
}

impl LevelCounters {
    fn add_flush(levels: &mut [LevelCounters; NUM_LEVELS], bytes: u64, micros: u64) {
        levels[0].written += bytes;
        levels[0].micros += micros;
        levels[0].compactions += 1;
    }

    fn add_compaction(&mut self, r: &CompactionResult) {
        self.read_input += r.read_input_level;
        self.read_output += r.read_output_level;
        self.written += r.written;
        self.moved += r.moved;
        self.compactions += 1;
        self.micros += r.micros;
        self.keys_in += r.keys_in;
        self.keys_dropped += r.keys_dropped;
        self.deleted_only += r.deleted_only_bytes;
    }
}

/// What one compaction did, for the statistics.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CompactionResult {
    pub read_input_level: u64,
    pub read_output_level: u64,
    pub written: u64,
    pub moved: u64,
    pub keys_in: u64,
    pub keys_dropped: u64,
    /// Bytes of tables a delete-only compaction removed unread.
    pub deleted_only_bytes: u64,
    pub micros: u64,
}

/// Counters the engine bumps as it works.
pub(crate) struct StatsCounters {
    opened: Instant,
    /// The tickers and histograms `Options::statistics` asks for.
    pub statistics: Option<Arc<Statistics>>,
    /// Indexed by output level; L0's row counts flushes.
    levels: Mutex<[LevelCounters; NUM_LEVELS]>,
    pub user_bytes: AtomicU64,
    pub user_keys: AtomicU64,
    pub user_writes: AtomicU64,
    pub write_groups: AtomicU64,
    pub flushes: AtomicU64,
    pub stall_micros: AtomicU64,
    pub stall_count: AtomicU64,
}

impl StatsCounters {
    pub fn new(statistics: Option<Arc<Statistics>>) -> Self {
        StatsCounters {
            opened: Instant::now(),
            statistics,
            levels: Mutex::new([LevelCounters::default(); NUM_LEVELS]),
            user_bytes: AtomicU64::new(0),
            user_keys: AtomicU64::new(0),
            user_writes: AtomicU64::new(0),
            write_groups: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            stall_micros: AtomicU64::new(0),
            stall_count: AtomicU64::new(0),
        }
    }
}

impl StatsCounters {
    /// A flush of `keyspace`'s memtable wrote `bytes`.
    pub fn record_flush(&self, keyspace: &KeyspaceCounters, bytes: u64, micros: u64) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        LevelCounters::add_flush(&mut self.levels.lock(), bytes, micros);
        keyspace.record_flush(bytes, micros);
        if let Some(s) = &self.statistics {
            s.record(Histogram::Flush, micros);
        }
    }

    /// A compaction of `keyspace` into `output_level`.
    pub fn record_compaction(
        &self,
        keyspace: &KeyspaceCounters,
        output_level: usize,
        r: &CompactionResult,
    ) {
        self.levels.lock()[output_level].add_compaction(r);
        keyspace.record_compaction(output_level, r);
        if let Some(s) = &self.statistics {
            s.record(Histogram::Compaction, r.micros);
        }
    }

    pub fn record_stall(&self, micros: u64) {
        self.stall_count.fetch_add(1, Ordering::Relaxed);
        self.stall_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// `writes` user writes of `keys` records and `bytes` bytes in all.
    pub fn add_user_writes(&self, writes: u64, keys: u64, bytes: u64) {
        self.user_writes.fetch_add(writes, Ordering::Relaxed);
        self.user_keys.fetch_add(keys, Ordering::Relaxed);
        self.user_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// RocksDB's tickers and histograms, if collected: those the
    /// statistics object counts, and the rest from these counters and the
    /// WAL's (`wal_bytes`, `wal_syncs`).
    pub fn statistics(&self, wal_bytes: u64, wal_syncs: u64) -> Option<StatisticsSnapshot> {
        let s = self.statistics.as_ref()?;
        let levels = *self.levels.lock();
        let tickers = Ticker::ALL
            .iter()
            .map(|&t| {
                let n = s.ticker(t).unwrap_or_else(|| match t {
                    Ticker::NumberKeysWritten => self.user_keys.load(Ordering::Relaxed),
                    Ticker::BytesWritten => self.user_bytes.load(Ordering::Relaxed),
                    Ticker::WalSynced => wal_syncs,
                    Ticker::WalBytes => wal_bytes,
                    Ticker::StallMicros => self.stall_micros.load(Ordering::Relaxed),
                    Ticker::CompactReadBytes => {
                        levels.iter().map(|c| c.read_input + c.read_output).sum()
                    }
                    Ticker::CompactWriteBytes => levels[1..].iter().map(|c| c.written).sum(),
                    Ticker::FlushWriteBytes => levels[0].written,
                    Ticker::CompactionKeyDrop => levels.iter().map(|c| c.keys_dropped).sum(),
                    _ => 0,
                });
                (t, n)
            })
            .collect();
        let histograms = Histogram::ALL
            .iter()
            .map(|&h| (h, s.histogram(h)))
            .collect();
        Some(StatisticsSnapshot {
            tickers,
            histograms,
        })
    }

    /// The statistics with the level rows of one keyspace (its `shape`
    /// and `rows`) and the database's totals.
    pub fn snapshot(
        &self,
        shape: &[(usize, u64, f64, u64)],
        rows: [LevelCounters; NUM_LEVELS],
        wal_bytes: u64,
        wal_syncs: u64,
    ) -> DbStats {
        let counters = *self.levels.lock();
        let levels: Vec<LevelStats> = (0..NUM_LEVELS)
            .map(|level| {
                let c = rows[level];
                let (files, size_bytes, score, target_bytes) =
                    shape.get(level).copied().unwrap_or_default();
                LevelStats {
                    level,
                    files,
                    size_bytes,
                    score,
                    target_bytes,
                    read_bytes_input_level: c.read_input,
                    read_bytes_output_level: c.read_output,
                    write_bytes: c.written,
                    moved_bytes: c.moved,
                    write_amplification: if c.read_input > 0 {
                        c.written as f64 / c.read_input as f64
                    } else {
                        0.0
                    },
                    compactions: c.compactions,
                    compaction_micros: c.micros,
                    keys_in: c.keys_in,
                    keys_dropped: c.keys_dropped,
                    deleted_only_bytes: c.deleted_only,
                }
            })
            .collect();
        let flush_bytes = counters[0].written;
        let compaction_written: u64 = counters[1..].iter().map(|c| c.written).sum();
        let compaction_read: u64 = counters.iter().map(|c| c.read_input + c.read_output).sum();
        let user_bytes = self.user_bytes.load(Ordering::Relaxed);
        let disk_bytes = wal_bytes + flush_bytes + compaction_written;
        DbStats {
            keyspace: crate::version::DEFAULT_KEYSPACE_NAME.to_owned(),
            levels,
            uptime_secs: self.opened.elapsed().as_secs_f64(),
            user_writes: self.user_writes.load(Ordering::Relaxed),
            user_keys: self.user_keys.load(Ordering::Relaxed),
            user_bytes_written: user_bytes,
            write_groups: self.write_groups.load(Ordering::Relaxed),
            wal_bytes_written: wal_bytes,
            wal_syncs,
            flushes: self.flushes.load(Ordering::Relaxed),
            flush_bytes_written: flush_bytes,
            compactions: counters[1..].iter().map(|c| c.compactions).sum(),
            compaction_bytes_read: compaction_read,
            compaction_bytes_written: compaction_written,
            write_amplification: if user_bytes > 0 {
                disk_bytes as f64 / user_bytes as f64
            } else {
                0.0
            },
            stall_micros: self.stall_micros.load(Ordering::Relaxed),
            stall_count: self.stall_count.load(Ordering::Relaxed),
        }
    }
}

/// One level's row of the compaction statistics. Compactions are counted
/// on their output level; L0's row counts flushes.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelStats {
    /// The level.
    pub level: usize,
    /// Live tables.
    pub files: usize,
    /// Bytes of live tables.
    pub size_bytes: u64,
    /// Compaction score (≥ 1 means compaction is due).
    pub score: f64,
    /// Target size (`u64::MAX` for levels without one).
    pub target_bytes: u64,
    /// Bytes read from the level above by compactions into this level
    /// (RocksDB's Rn).
    pub read_bytes_input_level: u64,
    /// Bytes read from this level by compactions into it (Rnp1).
    pub read_bytes_output_level: u64,
    /// Bytes written into this level (flushes for L0).
    pub write_bytes: u64,
    /// Bytes moved into this level by trivial moves.
    pub moved_bytes: u64,
    /// `write_bytes / read_bytes_input_level`.
    pub write_amplification: f64,
    /// Compactions (flushes for L0) into this level.
    pub compactions: u64,
    /// Time they took, in microseconds.
    pub compaction_micros: u64,
    /// Entries read by those compactions.
    pub keys_in: u64,
    /// Entries they dropped (overwritten versions, tombstones, versions
    /// range tombstones cover).
    pub keys_dropped: u64,
    /// Bytes of this level's tables removed unread by delete-only
    /// compactions (range tombstones above covered them whole).
    pub deleted_only_bytes: u64,
}

/// A point-in-time copy of the database's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct DbStats {
    /// The keyspace whose levels `levels` shows (shape and compaction
    /// counters); the totals below (writes, WAL, flushes, compactions,
    /// stalls) are the whole database's.
    pub keyspace: String,
    /// One row per level.
    pub levels: Vec<LevelStats>,
    /// Seconds since open.
    pub uptime_secs: f64,
    /// Write calls (`put`, `delete`, `write`).
    pub user_writes: u64,
    /// Keys written (puts and deletes).
    pub user_keys: u64,
    /// Bytes of user writes (encoded batches).
    pub user_bytes_written: u64,
    /// Write groups committed (several writes share a group under load).
    pub write_groups: u64,
    /// Bytes appended to the WAL.
    pub wal_bytes_written: u64,
    /// WAL fsyncs.
    pub wal_syncs: u64,
    /// Memtable flushes.
    pub flushes: u64,
    /// Bytes written by flushes.
    pub flush_bytes_written: u64,
    /// Compactions, trivial moves included.
    pub compactions: u64,
    /// Bytes read by compactions.
    pub compaction_bytes_read: u64,
    /// Bytes written by compactions.
    pub compaction_bytes_written: u64,
    /// (WAL + flush + compaction bytes written) / user bytes written.
    pub write_amplification: f64,
    /// Time writers spent delayed or stopped by write stalls, microseconds.
    pub stall_micros: u64,
    /// Writes that were delayed or stopped.
    pub stall_count: u64,
}

const GB: f64 = (1u64 << 30) as f64;
const MB: f64 = (1u64 << 20) as f64;

impl DbStats {
    /// The statistics as RocksDB prints them ("Compaction Stats" table and
    /// the cumulative lines).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n** Compaction Stats [{}] **", self.keyspace);
        let _ = writeln!(
            out,
            "Level    Files   Size     Score Read(GB)  Rn(GB) Rnp1(GB) Write(GB) Moved(GB) W-Amp Rd(MB/s) Wr(MB/s) Comp(sec) Comp(cnt) KeyIn KeyDrop"
        );
        let _ = writeln!(out, "{}", "-".repeat(140));
        let mut sum = LevelStats {
            level: 0,
            files: 0,
            size_bytes: 0,
            score: 0.0,
            target_bytes: 0,
            read_bytes_input_level: 0,
            read_bytes_output_level: 0,
            write_bytes: 0,
            moved_bytes: 0,
            write_amplification: 0.0,
            compactions: 0,
            compaction_micros: 0,
            keys_in: 0,
            keys_dropped: 0,
            deleted_only_bytes: 0,
        };
        for l in &self.levels {
            if l.files == 0 && l.compactions == 0 {
                continue;
            }
            row(&mut out, &format!("L{}", l.level), l);
            sum.files += l.files;
            sum.size_bytes += l.size_bytes;
            sum.read_bytes_input_level += l.read_bytes_input_level;
            sum.read_bytes_output_level += l.read_bytes_output_level;
            sum.write_bytes += l.write_bytes;
            sum.moved_bytes += l.moved_bytes;
            sum.compactions += l.compactions;
            sum.compaction_micros += l.compaction_micros;
            sum.keys_in += l.keys_in;
            sum.keys_dropped += l.keys_dropped;
            sum.deleted_only_bytes += l.deleted_only_bytes;
        }
        let flushed = self.levels.first().map_or(0, |l| l.write_bytes);
        sum.write_amplification = if flushed > 0 {
            sum.write_bytes as f64 / flushed as f64
        } else {
            0.0
        };
        row(&mut out, "Sum", &sum);
        let secs = self.uptime_secs.max(1e-9);
        let per_group = self.user_writes as f64 / self.write_groups.max(1) as f64;
        let _ = writeln!(out, "\nUptime(secs): {:.1} total", self.uptime_secs);
        let _ = writeln!(
            out,
            "Flush(GB): cumulative {:.3}, interval {:.3}",
            self.flush_bytes_written as f64 / GB,
            self.flush_bytes_written as f64 / GB
        );
        let _ = writeln!(
            out,
            "Cumulative compaction: {:.2} GB write, {:.2} MB/s write, {:.2} GB read, {:.2} MB/s read, {:.1} seconds",
            self.compaction_bytes_written as f64 / GB,
            self.compaction_bytes_written as f64 / MB / secs,
            self.compaction_bytes_read as f64 / GB,
            self.compaction_bytes_read as f64 / MB / secs,
            sum.compaction_micros as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "Cumulative writes: {} writes, {} keys, {} commit groups, {:.1} writes per commit group, ingest: {:.2} GB, {:.2} MB/s",
            self.user_writes,
            self.user_keys,
            self.write_groups,
            per_group,
            self.user_bytes_written as f64 / GB,
            self.user_bytes_written as f64 / MB / secs
        );
        let _ = writeln!(
            out,
            "Cumulative WAL: {} writes, {} syncs, {:.2} GB written, {:.2} MB/s",
            self.write_groups,
            self.wal_syncs,
            self.wal_bytes_written as f64 / GB,
            self.wal_bytes_written as f64 / MB / secs
        );
        let _ = writeln!(
            out,
            "Write amplification (WAL + flush + compaction bytes / user bytes): {:.2}",
            self.write_amplification
        );
        let stall = self.stall_micros / 1000;
        let _ = writeln!(
            out,
            "Cumulative stall: {:02}:{:02}:{:02}.{:03} H:M:S, {:.1} percent, {} stalls",
            stall / 3_600_000,
            stall / 60_000 % 60,
            stall / 1000 % 60,
            stall % 1000,
            self.stall_micros as f64 / 1e4 / secs,
            self.stall_count
        );
        out
    }
}

fn row(out: &mut String, name: &str, l: &LevelStats) {
    let secs = (l.compaction_micros as f64 / 1e6).max(1e-9);
    let read = l.read_bytes_input_level + l.read_bytes_output_level;
    let _ = writeln!(
        out,
        "{:>5} {:>8} {:>8.2} MB {:>5.1} {:>8.1} {:>7.1} {:>8.1} {:>9.1} {:>9.1} {:>5.1} {:>8.1} {:>8.1} {:>9.2} {:>9} {:>5} {:>7}",
        name,
        l.files,
        l.size_bytes as f64 / MB,
        l.score,
        read as f64 / GB,
        l.read_bytes_input_level as f64 / GB,
        l.read_bytes_output_level as f64 / GB,
        l.write_bytes as f64 / GB,
        l.moved_bytes as f64 / GB,
        l.write_amplification,
        read as f64 / MB / secs,
        l.write_bytes as f64 / MB / secs,
        l.compaction_micros as f64 / 1e6,
        l.compactions,
        l.keys_in,
        l.keys_dropped
    );
}
