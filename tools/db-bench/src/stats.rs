//! Per-thread statistics, as db_bench's `Stats`: operations done, bytes,
//! a message, and (when latency is measured) one histogram per kind of
//! operation. `finished_ops` is the only call in a benchmark's hot loop;
//! without latency measurement it is an add and a compare.

use crate::clock;
use crate::histogram::LatencyHist;
use crate::progress::{next_report_point, Progress};
use crate::reporter::IntervalSlot;
use std::sync::Arc;
use std::time::Instant;

/// What an operation was, for the `Microseconds per <kind>:` histograms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Write,
    Delete,
    Seek,
    Update,
    Compress,
    Uncompress,
    Crc,
    Other,
}

impl OpKind {
    pub const COUNT: usize = 9;
    pub const ALL: [OpKind; Self::COUNT] = [
        OpKind::Read,
        OpKind::Write,
        OpKind::Delete,
        OpKind::Seek,
        OpKind::Update,
        OpKind::Compress,
        OpKind::Uncompress,
        OpKind::Crc,
        OpKind::Other,
    ];

    /// db_bench's `OperationTypeString`.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Delete => "delete",
            OpKind::Seek => "seek",
            OpKind::Update => "update",
            OpKind::Compress => "compress",
            OpKind::Uncompress => "uncompress",
            OpKind::Crc => "crc",
            OpKind::Other => "op",
        }
    }
}

/// How a thread's [`Stats`] observe it.
#[derive(Clone)]
pub struct StatsConfig {
    /// Time every operation (one `Instant::now()` each).
    pub measure_latency: bool,
    pub progress: Progress,
    /// The thread's slot in the `--report_interval_seconds` time series.
    pub slot: Option<Arc<IntervalSlot>>,
    /// `--stats_interval_seconds`.
    pub stats_interval_secs: u64,
}

pub struct Stats {
    id: usize,
    cfg: StatsConfig,
    pub(crate) start: Instant,
    pub(crate) finish: Instant,
    /// This thread's running time in seconds (summed over threads when
    /// merged: micros/op is per thread, as in db_bench).
    pub(crate) seconds: f64,
    pub(crate) done: u64,
    pub(crate) bytes: u64,
    pub(crate) message: String,
    pub(crate) exclude_from_merge: bool,
    /// The engine could not do what the benchmark asks.
    pub(crate) unsupported: bool,
    pub(crate) hists: [Option<LatencyHist>; OpKind::COUNT],
    last_op_finish: Instant,
    next_report: u64,
    last_report_done: u64,
    last_report_time: Instant,
}

impl Stats {
    pub fn new(id: usize, cfg: StatsConfig) -> Stats {
        let now = Instant::now();
        Stats {
            id,
            cfg,
            start: now,
            finish: now,
            seconds: 0.0,
            done: 0,
            bytes: 0,
            message: String::new(),
            exclude_from_merge: false,
            unsupported: false,
            hists: Default::default(),
            last_op_finish: now,
            next_report: 100,
            last_report_done: 0,
            last_report_time: now,
        }
    }

    /// Start the clock (after every thread is ready).
    pub fn start(&mut self) {
        let now = Instant::now();
        self.start = now;
        self.finish = now;
        self.last_op_finish = now;
        self.last_report_time = now;
        self.next_report = if self.cfg.stats_interval_secs > 0 {
            1000
        } else {
            100
        };
    }

    pub fn stop(&mut self) {
        self.finish = Instant::now();
        self.seconds = self.finish.duration_since(self.start).as_secs_f64();
    }

    /// `n` operations of `kind` finished (a batch of `n` counts once in
    /// the histogram, as in db_bench).
    #[inline]
    pub fn finished_ops(&mut self, n: u64, kind: OpKind) {
        if self.cfg.measure_latency {
            let now = Instant::now();
            let nanos = now.duration_since(self.last_op_finish).as_nanos() as u64;
            self.last_op_finish = now;
            self.hists[kind as usize]
                .get_or_insert_with(LatencyHist::default)
                .record(nanos);
            if let Some(slot) = &self.cfg.slot {
                slot.record(n, nanos);
            }
        }
        self.done += n;
        if self.done >= self.next_report {
            self.report_progress();
        }
    }

    #[cold]
    fn report_progress(&mut self) {
        let delta = self.done - self.last_report_done;
        if self.cfg.stats_interval_secs == 0 {
            self.next_report = next_report_point(self.next_report);
            self.cfg.progress.advance(self.done, delta);
            self.last_report_done = self.done;
            return;
        }
        // --stats_interval_seconds: look at the clock every 1000 ops.
        self.next_report += 1000;
        let now = Instant::now();
        let since_last = now.duration_since(self.last_report_time).as_secs_f64();
        if since_last < self.cfg.stats_interval_secs as f64 {
            return;
        }
        let since_start = now.duration_since(self.start).as_secs_f64();
        if let Progress::Bar(bar) = &self.cfg.progress {
            bar.inc(delta);
        }
        eprintln!(
            "{} ... thread {}: ({},{}) ops and ({:.1},{:.1}) ops/second in ({:.6},{:.6}) seconds",
            clock::timestamp_now(),
            self.id,
            delta,
            self.done,
            delta as f64 / since_last,
            self.done as f64 / since_start,
            since_last,
            since_start
        );
        self.last_report_done = self.done;
        self.last_report_time = now;
    }

    pub fn add_bytes(&mut self, n: u64) {
        self.bytes += n;
    }

    /// Append to the message (db_bench's `AppendWithSpace`).
    pub fn add_message(&mut self, msg: &str) {
        append_with_space(&mut self.message, msg);
    }

    /// The engine cannot do this benchmark: say why; the ratio table shows
    /// n/a rather than a meaningless speed.
    pub fn unsupported(&mut self, why: &str) {
        self.unsupported = true;
        self.add_message(why);
    }

    /// This thread's numbers are not reported (the background writer).
    pub fn exclude_from_merge(&mut self) {
        self.exclude_from_merge = true;
    }
}

pub fn append_with_space(s: &mut String, msg: &str) {
    if msg.is_empty() {
        return;
    }
    if !s.is_empty() {
        s.push(' ');
    }
    s.push_str(msg);
}
