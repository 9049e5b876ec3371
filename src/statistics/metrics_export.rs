//! With the `metrics` feature: the statistics published through the
//! [`metrics`](https://docs.rs/metrics) facade, so whatever recorder the
//! application installed (a Prometheus exporter, StatsD, ...) carries
//! them without glue. Tickers are counters set to their totals; each
//! histogram gives counters `<name>.count` and `<name>.sum` and gauges
//! `<name>` labelled `quantile` = 0.5, 0.95, 0.99 and 1 (a summary, as
//! Prometheus calls it: the buckets stay in strata).

use super::snapshot::StatisticsSnapshot;

impl StatisticsSnapshot {
    /// Publish this snapshot to the installed `metrics` recorder (none
    /// installed: nothing happens). The engine does so after every flush
    /// and compaction; call it yourself (`db.statistics()`) to publish
    /// more often.
    pub fn export_to_metrics(&self) {
        for (ticker, n) in &self.tickers {
            metrics::counter!(ticker.name()).absolute(*n);
        }
        for (_, h) in &self.histograms {
            metrics::counter!(format!("{}.count", h.name)).absolute(h.count);
            metrics::counter!(format!("{}.sum", h.name)).absolute(h.sum);
            for (quantile, value) in [
                ("0.5", h.p50),
                ("0.95", h.p95),
                ("0.99", h.p99),
                ("1", h.max as f64),
            ] {
                metrics::gauge!(h.name, "quantile" => quantile).set(value);
            }
        }
    }
}
