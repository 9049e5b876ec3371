//! Statistics in RocksDB's vocabulary: tickers (counters) and latency
//! histograms, enabled by setting [`Options::statistics`] (RocksDB's
//! `CreateDBStatistics()`), read with [`Db::statistics`] and printed in
//! RocksDB's `STATISTICS:` format. The per-operation counts go to
//! per-thread stripes (`stripes.rs`); the figures the engine counts
//! anyway (bytes and keys written, WAL, flush and compaction bytes, stall
//! time) are not counted twice but read from its own counters
//! (`stats.rs`) when a snapshot is taken.
//!
//! [`Options::statistics`]: crate::Options::statistics
//! [`Db::statistics`]: crate::Db::statistics

mod buckets;
mod names;
mod snapshot;
mod stripes;

pub use names::{Histogram, Ticker};
pub use snapshot::{HistogramData, StatisticsSnapshot};

use buckets::BUCKETS;
use names::COLLECTED_TICKERS;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;
use stripes::Striped;

thread_local! {
    /// Table lookups the bloom filter answered during this thread's
    /// current point lookup (`Version::get` cannot reach the statistics).
    static BLOOM_USEFUL: Cell<u64> = const { Cell::new(0) };
}

/// A table lookup was answered by the bloom filter alone.
#[inline]
pub(crate) fn note_bloom_useful() {
    BLOOM_USEFUL.with(|c| c.set(c.get().wrapping_add(1)));
}

/// A point lookup counted in the statistics begins: its start time (and
/// the bloom filter count is zeroed: lookups of a database without
/// statistics left theirs).
#[inline]
pub(crate) fn start_get() -> Instant {
    BLOOM_USEFUL.with(|c| c.set(0));
    Instant::now()
}

/// Slots of one histogram: its buckets, then the sum and the maximum.
const HISTOGRAM_SLOTS: usize = BUCKETS + 2;

/// The statistics a database collects. Make one with
/// [`Statistics::new`] and set it in [`Options::statistics`]; several
/// databases opened with it share it (as in RocksDB).
///
/// [`Options::statistics`]: crate::Options::statistics
pub struct Statistics {
    counters: Striped,
}

impl fmt::Debug for Statistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Statistics").finish_non_exhaustive()
    }
}

impl Statistics {
    /// New statistics, all zero (RocksDB's `CreateDBStatistics()`).
    pub fn new() -> Arc<Statistics> {
        Arc::new(Statistics {
            counters: Striped::new(COLLECTED_TICKERS + Histogram::ALL.len() * HISTOGRAM_SLOTS),
        })
    }

    /// Add `n` to a collected ticker (the others are ignored here: the
    /// engine counts them itself).
    #[inline]
    pub(crate) fn add(&self, ticker: Ticker, n: u64) {
        if let Some(slot) = ticker.slot() {
            self.counters.add(slot, n);
        }
    }

    /// Record `micros` in `histogram`.
    #[inline]
    pub(crate) fn record(&self, histogram: Histogram, micros: u64) {
        let base = COLLECTED_TICKERS + histogram.slot() * HISTOGRAM_SLOTS;
        let local = self.counters.local();
        local.add(base + buckets::bucket(micros), 1);
        local.add(base + BUCKETS, micros);
        local.max(base + BUCKETS + 1, micros);
    }

    /// Record the time since `start` in `histogram`.
    #[inline]
    pub(crate) fn record_since(&self, histogram: Histogram, start: Instant) {
        self.record(histogram, start.elapsed().as_micros() as u64);
    }

    /// A point lookup that returned `value_bytes` (`None`: not found),
    /// begun at `start`.
    #[inline]
    pub(crate) fn record_get(&self, start: Instant, value_bytes: Option<usize>) {
        let micros = start.elapsed().as_micros() as u64;
        let base = COLLECTED_TICKERS + Histogram::DbGet.slot() * HISTOGRAM_SLOTS;
        let local = self.counters.local();
        local.add(Ticker::NumberKeysRead.slot().unwrap_or(0), 1);
        let useful = BLOOM_USEFUL.with(Cell::take);
        if useful > 0 {
            local.add(Ticker::BloomFilterUseful.slot().unwrap_or(0), useful);
        }
        if let Some(bytes) = value_bytes {
            local.add(Ticker::BytesRead.slot().unwrap_or(0), bytes as u64);
        }
        local.add(base + buckets::bucket(micros), 1);
        local.add(base + BUCKETS, micros);
        local.max(base + BUCKETS + 1, micros);
    }

    /// A collected ticker's count.
    pub(crate) fn ticker(&self, ticker: Ticker) -> Option<u64> {
        ticker.slot().map(|slot| self.counters.sum(slot))
    }

    /// A histogram's figures.
    pub(crate) fn histogram(&self, histogram: Histogram) -> HistogramData {
        let base = COLLECTED_TICKERS + histogram.slot() * HISTOGRAM_SLOTS;
        let counts: Vec<u64> = (0..BUCKETS).map(|i| self.counters.sum(base + i)).collect();
        let max = self.counters.max_of(base + BUCKETS + 1);
        HistogramData {
            name: histogram.name(),
            count: counts.iter().sum(),
            sum: self.counters.sum(base + BUCKETS),
            p50: buckets::percentile(&counts, 0.50, max),
            p95: buckets::percentile(&counts, 0.95, max),
            p99: buckets::percentile(&counts, 0.99, max),
            max,
        }
    }
}
