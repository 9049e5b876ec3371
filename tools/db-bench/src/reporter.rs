//! `--report_interval_seconds`: a background thread that, every interval,
//! collects the operations and latencies each benchmark thread recorded
//! since the last tick and appends a CSV line to `--report_file`.
//!
//! The first two columns are RocksDB's (`secs_elapsed,interval_qps`; here
//! qps is per second even when the interval is longer); p99 latency and the
//! engine and benchmark names follow. The samples are kept for `--plot`.
//!
//! Each benchmark thread owns an [`IntervalSlot`]; it locks it once per
//! operation (uncontended except at a tick).

use crate::error::{Context, Result};
use crate::histogram::LatencyHist;
use parking_lot::{Condvar, Mutex};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What one thread did since the last tick.
pub struct IntervalSlot {
    inner: Mutex<SlotData>,
}

struct SlotData {
    ops: u64,
    hist: LatencyHist,
}

impl IntervalSlot {
    pub fn new() -> Arc<Self> {
        Arc::new(IntervalSlot {
            inner: Mutex::new(SlotData {
                ops: 0,
                hist: LatencyHist::with_precision(2),
            }),
        })
    }

    #[inline]
    pub fn record(&self, ops: u64, nanos: u64) {
        let mut d = self.inner.lock();
        d.ops += ops;
        d.hist.record(nanos);
    }
}

/// One line of the time series.
#[derive(Clone, Debug)]
pub struct Sample {
    pub secs: f64,
    pub qps: f64,
    /// `None` when no operation finished in the interval.
    pub p99_us: Option<f64>,
    pub engine: String,
    pub benchmark: String,
}

struct State {
    stop: bool,
    label: (String, String),
    slots: Vec<Arc<IntervalSlot>>,
    /// What detached slots held at the end of their benchmark, for the
    /// next tick.
    carried: SlotData,
    samples: Vec<Sample>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

pub struct Reporter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Reporter {
    /// Create `path` (with its header) and start ticking every `interval`.
    pub fn start(path: &Path, interval: Duration) -> Result<Reporter> {
        let file = File::create(path).context(format!("create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        writeln!(
            out,
            "secs_elapsed,interval_qps,interval_p99_us,engine,benchmark"
        )?;
        out.flush()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                stop: false,
                label: (String::new(), String::new()),
                slots: Vec::new(),
                carried: SlotData {
                    ops: 0,
                    hist: LatencyHist::with_precision(2),
                },
                samples: Vec::new(),
            }),
            wake: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("db-bench-report".into())
            .spawn(move || tick_loop(&s, out, interval))?;
        Ok(Reporter {
            shared,
            thread: Some(thread),
        })
    }

    /// From now on, collect from these threads' slots under this label.
    pub fn attach(&self, engine: &str, benchmark: &str, slots: Vec<Arc<IntervalSlot>>) {
        let mut st = self.shared.state.lock();
        st.label = (engine.to_string(), benchmark.to_string());
        st.slots = slots;
    }

    /// The benchmark's threads are gone: keep what they did since the
    /// last tick for the next one, and stop collecting from them.
    pub fn detach(&self) {
        let mut st = self.shared.state.lock();
        let State { slots, carried, .. } = &mut *st;
        for slot in slots.drain(..) {
            let d = slot.inner.lock();
            carried.ops += d.ops;
            carried.hist.merge(&d.hist);
        }
    }

    /// Stop the thread; the samples it took, in order.
    pub fn finish(mut self) -> Result<Vec<Sample>> {
        self.shared.state.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| crate::error::BenchError::new("report thread panicked"))??;
        }
        Ok(std::mem::take(&mut self.shared.state.lock().samples))
    }
}

fn tick_loop(shared: &Shared, mut out: BufWriter<File>, interval: Duration) -> Result<()> {
    let started = Instant::now();
    let mut last_tick = started;
    let mut merged = LatencyHist::with_precision(2);
    loop {
        let mut st = shared.state.lock();
        let deadline = last_tick + interval;
        while !st.stop && Instant::now() < deadline {
            shared.wake.wait_until(&mut st, deadline);
        }
        if st.stop {
            return Ok(());
        }
        let now = Instant::now();
        merged.reset();
        let st = &mut *st;
        let mut ops = std::mem::take(&mut st.carried.ops);
        merged.merge(&st.carried.hist);
        st.carried.hist.reset();
        for slot in &st.slots {
            let mut d = slot.inner.lock();
            ops += d.ops;
            d.ops = 0;
            merged.merge(&d.hist);
            d.hist.reset();
        }
        let elapsed = now.duration_since(last_tick).as_secs_f64().max(1e-9);
        last_tick = now;
        let sample = Sample {
            secs: now.duration_since(started).as_secs_f64(),
            qps: ops as f64 / elapsed,
            p99_us: (merged.count() > 0).then(|| merged.percentile_us(99.0)),
            engine: st.label.0.clone(),
            benchmark: st.label.1.clone(),
        };
        writeln!(
            out,
            "{},{},{},{},{}",
            sample.secs.round() as u64,
            sample.qps.round() as u64,
            sample.p99_us.map(|p| format!("{p:.2}")).unwrap_or_default(),
            sample.engine,
            sample.benchmark
        )?;
        out.flush()?;
        st.samples.push(sample);
    }
}
