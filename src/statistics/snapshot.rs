//! A copy of the statistics at one time, and RocksDB's `STATISTICS:`
//! text of it (what `db_bench --statistics` prints).

use super::names::{Histogram, Ticker};
use std::fmt::Write as _;

/// One histogram's figures, in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramData {
    /// RocksDB's name for it.
    pub name: &'static str,
    /// Values recorded.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
    /// Median (interpolated within its bucket).
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The largest value recorded (RocksDB's P100).
    pub max: u64,
}

/// Every ticker and histogram at one time (each read with relaxed loads:
/// figures counted while the snapshot was taken may be in some and not
/// in others).
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticsSnapshot {
    /// Each ticker with its count, in [`Ticker::ALL`] order.
    pub tickers: Vec<(Ticker, u64)>,
    /// Each histogram, in [`Histogram::ALL`] order.
    pub histograms: Vec<(Histogram, HistogramData)>,
}

impl StatisticsSnapshot {
    /// A ticker's count.
    pub fn ticker(&self, ticker: Ticker) -> u64 {
        self.tickers
            .iter()
            .find(|(t, _)| *t == ticker)
            .map_or(0, |&(_, n)| n)
    }

    /// A histogram's figures.
    pub fn histogram(&self, histogram: Histogram) -> Option<&HistogramData> {
        self.histograms
            .iter()
            .find(|(h, _)| *h == histogram)
            .map(|(_, d)| d)
    }

    /// RocksDB's `STATISTICS:` text: a line per ticker
    /// (`rocksdb.block.cache.miss COUNT : 12`), then one per histogram
    /// (`rocksdb.db.get.micros P50 : 1.50 P95 : ... P99 : ... P100 : ...
    /// COUNT : ... SUM : ...`).
    pub fn to_text(&self) -> String {
        let mut out = String::from("STATISTICS:\n");
        for (t, n) in &self.tickers {
            let _ = writeln!(out, "{} COUNT : {n}", t.name());
        }
        for (_, h) in &self.histograms {
            let _ = writeln!(
                out,
                "{} P50 : {:.6} P95 : {:.6} P99 : {:.6} P100 : {:.6} COUNT : {} SUM : {}",
                h.name, h.p50, h.p95, h.p99, h.max as f64, h.count, h.sum
            );
        }
        out
    }
}
