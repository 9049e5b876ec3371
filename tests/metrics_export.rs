//! With the `metrics` feature, the statistics reach the installed
//! `metrics` recorder: `cargo test --features metrics --test metrics_export`.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

mod common;

use common::{mem_dir, mem_options};
use metrics::{
    Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use strata::fs::MemFileSystem;
use strata::{Db, Options, Statistics};

/// A recorder keeping each counter's value and each gauge's last value,
/// by name and labels.
#[derive(Default)]
struct Keep {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<String, Arc<GaugeCell>>>,
}

#[derive(Default)]
struct GaugeCell(AtomicU64);

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.set(f64::from_bits(self.0.load(Ordering::Relaxed)) + value);
    }
    fn decrement(&self, value: f64) {
        self.increment(-value);
    }
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

fn full_name(key: &Key) -> String {
    let mut name = key.name().to_owned();
    for label in key.labels() {
        name.push_str(&format!("{{{}={}}}", label.key(), label.value()));
    }
    name
}

impl Recorder for Keep {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let c = self
            .counters
            .lock()
            .entry(full_name(key))
            .or_default()
            .clone();
        Counter::from_arc(c)
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let g = self
            .gauges
            .lock()
            .entry(full_name(key))
            .or_default()
            .clone();
        Gauge::from_arc(g)
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn statistics_reach_the_metrics_recorder() {
    let fs = MemFileSystem::new();
    let options = Options {
        statistics: Some(Statistics::new()),
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    for i in 0..10u32 {
        db.put(format!("k{i}"), "v").unwrap();
    }
    for i in 0..4u32 {
        db.get(format!("k{i}")).unwrap();
    }
    let keep = Keep::default();
    metrics::with_local_recorder(&keep, || db.statistics().unwrap().export_to_metrics());
    let counter = |name: &str| keep.counters.lock()[name].load(Ordering::Relaxed);
    assert_eq!(counter("rocksdb.number.keys.written"), 10);
    assert_eq!(counter("rocksdb.number.keys.read"), 4);
    assert_eq!(counter("rocksdb.db.get.micros.count"), 4);
    assert_eq!(counter("rocksdb.db.write.micros.count"), 10);
    let gauges = keep.gauges.lock();
    for q in ["0.5", "0.95", "0.99", "1"] {
        assert!(gauges.contains_key(&format!("rocksdb.db.get.micros{{quantile={q}}}")));
    }
}
