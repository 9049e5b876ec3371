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
#[cfg(feature = "metrics")]
mod metrics_export;
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
use stripes::{Local, Striped};

/// One operation in this many (per thread) has its latency timed: a
/// clock read costs 20-30 ns, two per operation would be 3-4% of a get
/// (docs/performance.md, "Statistics cost"). Every operation is counted.
pub(crate) const TIMED_ONE_IN: u32 = 8;

thread_local! {
    /// Table lookups the bloom filter answered during this thread's
    /// current point lookup (`Version::get` cannot reach the statistics).
    static BLOOM_USEFUL: Cell<u64> = const { Cell::new(0) };
    /// Operations this thread began, for choosing the timed ones.
    static OPERATIONS: Cell<u32> = const { Cell::new(0) };
}

/// A table lookup was answered by the bloom filter alone.
#[inline]
pub(crate) fn note_bloom_useful() {
    BLOOM_USEFUL.with(|c| c.set(c.get().wrapping_add(1)));
}

/// An operation counted in the statistics begins: its start time if it
/// is one of those timed (the first of the thread, then one in
/// [`TIMED_ONE_IN`]).
#[inline]
pub(crate) fn start_operation() -> Option<Instant> {
    let n = OPERATIONS.with(|c| {
        let n = c.get();
        c.set(n.wrapping_add(1));
        n
    });
    n.is_multiple_of(TIMED_ONE_IN).then(Instant::now)
}

/// A point lookup counted in the statistics begins ([`start_operation`];
/// and the bloom filter count is zeroed: lookups of a database without
/// statistics left theirs).
#[inline]
pub(crate) fn start_get() -> Option<Instant> {
    BLOOM_USEFUL.with(|c| c.set(0));
    start_operation()
}

/// Slots of one histogram: its buckets (timed values), then their sum,
/// their maximum, and the count of every value (timed or not).
const HISTOGRAM_SLOTS: usize = BUCKETS + 3;
const SUM: usize = BUCKETS;
const MAX: usize = BUCKETS + 1;
const COUNT: usize = BUCKETS + 2;

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

    /// Record `micros` in `histogram` (an operation always timed).
    #[inline]
    pub(crate) fn record(&self, histogram: Histogram, micros: u64) {
        let base = COLLECTED_TICKERS + histogram.slot() * HISTOGRAM_SLOTS;
        let local = self.counters.local();
        local.add(base + COUNT, 1);
        local.add(base + buckets::bucket(micros), 1);
        local.add(base + SUM, micros);
        local.max(base + MAX, micros);
    }

    /// Count an operation in `histogram`; with `start` (it was one of
    /// those timed) record its time too.
    #[inline]
    pub(crate) fn record_operation(&self, histogram: Histogram, start: Option<Instant>) {
        record_operation_in(&self.counters.local(), histogram, start);
    }

    /// Record the time since `start` in `histogram` (always timed).
    #[inline]
    pub(crate) fn record_since(&self, histogram: Histogram, start: Instant) {
        self.record(histogram, start.elapsed().as_micros() as u64);
    }

    /// A point lookup that returned `value_bytes` (`None`: not found),
    /// answered by a memtable (`memtable_hit`) or not, begun at `start`
    /// if timed ([`start_get`]).
    #[inline]
    pub(crate) fn record_get(
        &self,
        start: Option<Instant>,
        value_bytes: Option<usize>,
        memtable_hit: bool,
    ) {
        let local = self.counters.local();
        local.add(const { Ticker::NumberKeysRead.collected_slot() }, 1);
        let memtable = if memtable_hit {
            const { Ticker::MemtableHit.collected_slot() }
        } else {
            const { Ticker::MemtableMiss.collected_slot() }
        };
        local.add(memtable, 1);
        let useful = BLOOM_USEFUL.with(Cell::take);
        if useful > 0 {
            local.add(const { Ticker::BloomFilterUseful.collected_slot() }, useful);
        }
        if let Some(bytes) = value_bytes {
            local.add(const { Ticker::BytesRead.collected_slot() }, bytes as u64);
        }
        record_operation_in(&local, Histogram::DbGet, start);
    }

    /// A collected ticker's count.
    pub(crate) fn ticker(&self, ticker: Ticker) -> Option<u64> {
        ticker.slot().map(|slot| self.counters.sum(slot))
    }

    /// A histogram's figures: the count of every operation, the
    /// percentiles and maximum of those timed, and their sum scaled up to
    /// the count.
    pub(crate) fn histogram(&self, histogram: Histogram) -> HistogramData {
        let base = COLLECTED_TICKERS + histogram.slot() * HISTOGRAM_SLOTS;
        let counts: Vec<u64> = (0..BUCKETS).map(|i| self.counters.sum(base + i)).collect();
        let timed: u64 = counts.iter().sum();
        let count = self.counters.sum(base + COUNT);
        let timed_sum = self.counters.sum(base + SUM);
        let max = self.counters.max_of(base + MAX);
        HistogramData {
            name: histogram.name(),
            count,
            sum: if timed == 0 {
                0
            } else {
                (timed_sum as u128 * count as u128 / timed as u128) as u64
            },
            p50: buckets::percentile(&counts, 0.50, max),
            p95: buckets::percentile(&counts, 0.95, max),
            p99: buckets::percentile(&counts, 0.99, max),
            max,
        }
    }
}

/// [`Statistics::record_operation`] in this thread's stripe `local`.
#[inline]
fn record_operation_in(local: &Local<'_>, histogram: Histogram, start: Option<Instant>) {
    let base = COLLECTED_TICKERS + histogram.slot() * HISTOGRAM_SLOTS;
    local.add(base + COUNT, 1);
    if let Some(start) = start {
        let micros = start.elapsed().as_micros() as u64;
        local.add(base + buckets::bucket(micros), 1);
        local.add(base + SUM, micros);
        local.max(base + MAX, micros);
    }
}

/// What statistics add to `n` gets (each with a block cache hit and a
/// bloom filter answer) and `n` writes, without the rest of the get or
/// write: `benches/statistics_cost.rs` measures it alone, which a loaded
/// machine's noise does not drown as it drowns a few percent of a whole
/// operation.
#[doc(hidden)]
pub fn probe_cost(statistics: &Statistics, n: u64) {
    for i in 0..n {
        let start = std::hint::black_box(start_get());
        statistics.add(Ticker::BlockCacheHit, 1);
        note_bloom_useful();
        statistics.record_get(start, Some(i as usize & 127), i & 1 == 0);
    }
    for _ in 0..n {
        let start = std::hint::black_box(start_operation());
        statistics.record_operation(Histogram::DbWrite, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation is counted; one in `TIMED_ONE_IN` is timed, and
    /// the sum is the timed ones' scaled up to the count.
    #[test]
    fn untimed_operations_are_counted_and_the_sum_scaled() {
        let s = Statistics::new();
        let start = Instant::now() - std::time::Duration::from_micros(100);
        for i in 0..(4 * TIMED_ONE_IN) {
            let timed = (i % TIMED_ONE_IN == 0).then_some(start);
            s.record_operation(Histogram::DbWrite, timed);
        }
        // Each timed operation took between 100 µs and the time up to
        // now (a descheduled thread makes it longer, never shorter): the
        // scaled sum's average lies between them too.
        let longest = start.elapsed().as_micros() as u64;
        let h = s.histogram(Histogram::DbWrite);
        assert_eq!(h.count, 4 * TIMED_ONE_IN as u64);
        let per_op = h.sum / h.count;
        assert!(
            (100..=longest).contains(&per_op),
            "{per_op} µs per op, each timed one 100..={longest} µs"
        );
        assert!(h.p50 >= 100.0 && h.p50 <= h.max as f64);
        s.record(Histogram::Flush, 7);
        let f = s.histogram(Histogram::Flush);
        assert_eq!((f.count, f.sum, f.max), (1, 7, 7));
    }
}
