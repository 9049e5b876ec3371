//! Latency histograms: hdrhistogram underneath (nanoseconds, 3 significant
//! digits, so recording is a few array operations), printed the way
//! RocksDB's `HistogramImpl::ToString` prints, in microseconds.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Longest latency recorded exactly: one hour. Longer ones saturate.
const MAX_NANOS: u64 = 3_600_000_000_000;

#[derive(Clone)]
pub struct LatencyHist {
    h: Histogram<u64>,
}

impl Default for LatencyHist {
    fn default() -> Self {
        Self::with_precision(3)
    }
}

impl LatencyHist {
    /// `sigfig` significant digits (1..=5).
    pub fn with_precision(sigfig: u8) -> Self {
        // Bounds are constants within hdrhistogram's limits; only a sigfig
        // outside 1..=5 could fail, and callers pass 2 or 3.
        let h = Histogram::new_with_bounds(1, MAX_NANOS, sigfig.clamp(1, 5))
            .expect("constant histogram bounds are valid");
        LatencyHist { h }
    }

    #[inline]
    pub fn record(&mut self, nanos: u64) {
        self.h.saturating_record(nanos.max(1));
    }

    pub fn merge(&mut self, other: &LatencyHist) {
        // Same bounds on both sides: `add` cannot fail.
        let _ = self.h.add(&other.h);
    }

    pub fn reset(&mut self) {
        self.h.reset();
    }

    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// The `q`-th percentile (0..=100) in microseconds.
    pub fn percentile_us(&self, q: f64) -> f64 {
        self.h.value_at_percentile(q) as f64 / 1000.0
    }

    pub fn mean_us(&self) -> f64 {
        self.h.mean() / 1000.0
    }

    pub fn stddev_us(&self) -> f64 {
        self.h.stdev() / 1000.0
    }

    pub fn min_us(&self) -> f64 {
        self.h.min() as f64 / 1000.0
    }

    pub fn max_us(&self) -> f64 {
        self.h.max() as f64 / 1000.0
    }

    /// The summary RocksDB prints under `Microseconds per <op>:`.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count(),
            mean_us: self.mean_us(),
            stddev_us: self.stddev_us(),
            min_us: self.min_us(),
            max_us: self.max_us(),
            p50_us: self.percentile_us(50.0),
            p75_us: self.percentile_us(75.0),
            p99_us: self.percentile_us(99.0),
            p999_us: self.percentile_us(99.9),
            p9999_us: self.percentile_us(99.99),
        }
    }

    /// RocksDB's text: count, average, percentiles, then one line per
    /// non-empty bucket of RocksDB's bucket boundaries with a bar of `#`.
    pub fn rocksdb_text(&self) -> String {
        let s = self.summary();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Count: {} Average: {:.4}  StdDev: {:.2}",
            s.count, s.mean_us, s.stddev_us
        );
        let _ = writeln!(
            out,
            "Min: {}  Median: {:.4}  Max: {}",
            s.min_us.round() as u64,
            s.p50_us,
            s.max_us.round() as u64
        );
        let _ = writeln!(
            out,
            "Percentiles: P50: {:.2} P75: {:.2} P99: {:.2} P99.9: {:.2} P99.99: {:.2}",
            s.p50_us, s.p75_us, s.p99_us, s.p999_us, s.p9999_us
        );
        out.push_str("------------------------------------------------------\n");
        if s.count == 0 {
            return out;
        }
        let bounds = bucket_bounds_us();
        let mut counts = vec![0u64; bounds.len()];
        for v in self.h.iter_recorded() {
            let us = v.value_iterated_to() as f64 / 1000.0;
            let i = bounds
                .partition_point(|&b| (b as f64) < us)
                .min(bounds.len() - 1);
            counts[i] += v.count_at_value();
        }
        let mut cumulative = 0u64;
        for (i, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            cumulative += c;
            let left = if i == 0 { 0 } else { bounds[i - 1] };
            let pct = 100.0 * c as f64 / s.count as f64;
            let cum_pct = 100.0 * cumulative as f64 / s.count as f64;
            let marks = (20.0 * pct / 100.0 + 0.5) as usize;
            let _ = writeln!(
                out,
                "{} {:>7}, {:>7} ] {:>8} {:>7.3}% {:>7.3}% {}",
                if i == 0 { '[' } else { '(' },
                left,
                bounds[i],
                c,
                pct,
                cum_pct,
                "#".repeat(marks)
            );
        }
        out
    }
}

/// A histogram's figures, in microseconds.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub stddev_us: f64,
    pub min_us: f64,
    pub max_us: f64,
    pub p50_us: f64,
    pub p75_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub p9999_us: f64,
}

/// RocksDB's bucket limits in microseconds: 1, 2, then each about 1.5x the
/// last, cut to two significant digits (3, 4, 6, 10, 15, 22, 34, ...).
fn bucket_bounds_us() -> Vec<u64> {
    let mut bounds = vec![1u64, 2];
    let mut raw = 2.0f64;
    while raw * 1.5 <= (MAX_NANOS / 1000) as f64 {
        raw *= 1.5;
        let mut v = raw as u64;
        let mut scale = 1;
        while v / 10 > 10 {
            v /= 10;
            scale *= 10;
        }
        bounds.push(v * scale);
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_match_rocksdb() {
        let b = bucket_bounds_us();
        assert_eq!(&b[..12], &[1, 2, 3, 4, 6, 10, 15, 22, 34, 51, 76, 110]);
        assert_eq!(b[12], 170); // 173 cut to two digits
    }

    #[test]
    fn percentiles_in_microseconds() {
        let mut h = LatencyHist::default();
        for us in 1..=100u64 {
            h.record(us * 1000);
        }
        assert!((h.percentile_us(50.0) - 50.0).abs() < 0.1);
        assert!((h.percentile_us(99.0) - 99.0).abs() < 0.1);
        let text = h.rocksdb_text();
        assert!(text.contains("Percentiles: P50: 50.0"), "{text}");
        assert!(text.contains("Count: 100 Average: 50.5"), "{text}");
    }
}
