//! One benchmark run's figures, merged over its threads, and the text
//! db_bench prints for them:
//!
//! ```text
//! fillseq      :       2.139 micros/op 467418 ops/sec 2.139 seconds 1000000 operations;   51.7 MB/s
//! ```
//!
//! (`%-12s : %11.3f micros/op %ld ops/sec %.3f seconds %lu operations;` then
//! the MB/s rate and the message.) micros/op is thread time per operation;
//! ops/sec is operations over wall time.

use crate::histogram::{LatencyHist, LatencySummary};
use crate::procio::ProcessCost;
use crate::stats::{append_with_space, OpKind, Stats};
use std::fmt::Write as _;

#[derive(Clone)]
pub struct RunResult {
    pub name: String,
    pub done: u64,
    pub bytes: u64,
    /// Wall time from the first thread's start to the last one's end.
    pub elapsed_secs: f64,
    /// Sum of the threads' running times.
    pub thread_secs: f64,
    pub message: String,
    /// Some thread found the benchmark unsupported by the engine.
    pub unsupported: bool,
    pub hists: Vec<(OpKind, LatencyHist)>,
    /// Storage I/O and CPU time of the whole process during the run
    /// (background threads included), where the kernel tells.
    pub process: Option<ProcessCost>,
}

impl RunResult {
    /// Merge the threads' stats (skipping excluded ones), as db_bench's
    /// `Stats::Merge`.
    pub fn merge(name: &str, threads: Vec<Stats>) -> RunResult {
        let mut r = RunResult {
            name: name.to_string(),
            done: 0,
            bytes: 0,
            elapsed_secs: 0.0,
            thread_secs: 0.0,
            message: String::new(),
            unsupported: false,
            hists: Vec::new(),
            process: None,
        };
        let mut slots: [Option<LatencyHist>; OpKind::COUNT] = Default::default();
        let mut start = None;
        let mut finish = None;
        for t in threads.into_iter().filter(|t| !t.exclude_from_merge) {
            r.done += t.done;
            r.bytes += t.bytes;
            r.thread_secs += t.seconds;
            r.unsupported |= t.unsupported;
            start = Some(start.map_or(t.start, |s: std::time::Instant| s.min(t.start)));
            finish = Some(finish.map_or(t.finish, |f: std::time::Instant| f.max(t.finish)));
            if r.message.is_empty() {
                r.message = t.message;
            }
            for (slot, h) in slots.iter_mut().zip(t.hists) {
                if let Some(h) = h {
                    match slot {
                        Some(s) => s.merge(&h),
                        None => *slot = Some(h),
                    }
                }
            }
        }
        if let (Some(s), Some(f)) = (start, finish) {
            r.elapsed_secs = f.duration_since(s).as_secs_f64();
        }
        r.hists = OpKind::ALL
            .into_iter()
            .zip(slots)
            .filter_map(|(k, h)| h.map(|h| (k, h)))
            .collect();
        r
    }

    /// Operations, at least 1 (db_bench pretends one was done).
    pub fn ops(&self) -> u64 {
        self.done.max(1)
    }

    fn elapsed(&self) -> f64 {
        self.elapsed_secs.max(1e-9)
    }

    pub fn micros_per_op(&self) -> f64 {
        self.thread_secs * 1e6 / self.ops() as f64
    }

    /// Truncated to an integer, as db_bench's `(long)throughput`.
    pub fn ops_per_sec(&self) -> i64 {
        (self.ops() as f64 / self.elapsed()) as i64
    }

    pub fn mb_per_sec(&self) -> Option<f64> {
        (self.bytes > 0).then(|| self.bytes as f64 / 1_048_576.0 / self.elapsed())
    }

    /// All kinds merged: the figure the ratio table and JSON lead with.
    pub fn overall_latency(&self) -> Option<LatencySummary> {
        let mut all: Option<LatencyHist> = None;
        for (_, h) in &self.hists {
            match &mut all {
                Some(a) => a.merge(h),
                None => all = Some(h.clone()),
            }
        }
        all.filter(|h| h.count() > 0).map(|h| h.summary())
    }

    /// db_bench's result line (with its trailing newline, plus the
    /// message's own, as db_bench prints them).
    pub fn line(&self) -> String {
        let mut extra = self
            .mb_per_sec()
            .map(|r| format!("{r:6.1} MB/s"))
            .unwrap_or_default();
        append_with_space(&mut extra, &self.message);
        format!(
            "{:<12} : {:>11.3} micros/op {} ops/sec {:.3} seconds {} operations;{}{}\n",
            self.name,
            self.micros_per_op(),
            self.ops_per_sec(),
            self.elapsed_secs,
            self.ops(),
            if extra.is_empty() { "" } else { " " },
            extra
        )
    }

    /// Bytes the process read from storage per operation, if known.
    pub fn read_bytes_per_op(&self) -> Option<f64> {
        self.process
            .map(|p| p.read_bytes as f64 / self.ops() as f64)
    }

    /// The line after the result line: what the kernel counted for the
    /// process during the run (empty where it does not tell).
    pub fn process_line(&self) -> String {
        let Some(p) = self.process else {
            return String::new();
        };
        let ops = self.ops() as f64;
        format!(
            "{:<12} : storage {} read/op, {} written/op ({:.1} MB read, {:.1} MB written); CPU {:.2} s user, {:.2} s system\n",
            self.name,
            bytes_text(p.read_bytes as f64 / ops),
            bytes_text(p.write_bytes as f64 / ops),
            p.read_bytes as f64 / 1_048_576.0,
            p.write_bytes as f64 / 1_048_576.0,
            p.user_secs,
            p.system_secs,
        )
    }

    /// The `--histogram=1` block: `Microseconds per <kind>:` and the
    /// histogram, for each kind of operation.
    pub fn histogram_text(&self) -> String {
        let mut out = String::new();
        for (kind, h) in &self.hists {
            let _ = writeln!(
                out,
                "Microseconds per {}:\n{}",
                kind.name(),
                h.rocksdb_text()
            );
        }
        out
    }
}

/// 2.4 KB, 1.7 MB, 12 B: bytes in a short form (powers of 1024).
pub fn bytes_text(b: f64) -> String {
    if b >= 1_048_576.0 {
        format!("{:.1} MB", b / 1_048_576.0)
    } else if b >= 1024.0 {
        format!("{:.1} KB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// Repeated runs of one benchmark (`name[X5]`): db_bench's
/// `CombinedStats`.
#[derive(Default)]
pub struct Combined {
    ops_per_sec: Vec<f64>,
    mb_per_sec: Vec<f64>,
}

impl Combined {
    pub fn add(&mut self, r: &RunResult) {
        self.ops_per_sec.push(r.ops() as f64 / r.elapsed());
        if let Some(mb) = r.mb_per_sec() {
            self.mb_per_sec.push(mb);
        }
    }

    /// The running average, printed after each run from the second on.
    pub fn report(&self, name: &str) -> Option<String> {
        let n = self.ops_per_sec.len();
        if n < 2 {
            return None;
        }
        let ops = (
            avg(&self.ops_per_sec) as i64,
            confidence95(&self.ops_per_sec) as i64,
        );
        Some(if self.mb_per_sec.len() == n {
            format!(
                "{name} [AVG {n} runs] : {} (\u{b1} {}) ops/sec; {:6.1} (\u{b1} {:.1}) MB/sec\n",
                ops.0,
                ops.1,
                avg(&self.mb_per_sec),
                confidence95(&self.mb_per_sec)
            )
        } else {
            format!(
                "{name} [AVG {n} runs] : {} (\u{b1} {}) ops/sec\n",
                ops.0, ops.1
            )
        })
    }

    /// The final AVG and MEDIAN lines.
    pub fn report_final(&self, name: &str) -> Option<String> {
        let n = self.ops_per_sec.len();
        if n < 2 {
            return None;
        }
        let avg_ops = avg(&self.ops_per_sec);
        let ms_per_op = if avg_ops > 0.0 { 1000.0 / avg_ops } else { 0.0 };
        let ci = confidence95(&self.ops_per_sec) as i64;
        let median_ops = median(&self.ops_per_sec) as i64;
        Some(if self.mb_per_sec.len() == n {
            format!(
                "\n{name} [AVG    {n} runs] : {} (\u{b1} {ci}) ops/sec; {ms_per_op:.3} ms/op; {:6.1} (\u{b1} {:.1}) MB/sec\n\
                 {name} [MEDIAN {n} runs] : {median_ops} ops/sec; {:6.1} MB/sec\n",
                avg_ops as i64,
                avg(&self.mb_per_sec),
                confidence95(&self.mb_per_sec),
                median(&self.mb_per_sec)
            )
        } else {
            format!(
                "\n{name} [AVG    {n} runs] : {} (\u{b1} {ci}) ops/sec; {ms_per_op:.3} ms/op\n\
                 {name} [MEDIAN {n} runs] : {median_ops} ops/sec\n",
                avg_ops as i64
            )
        })
    }

    pub fn mean_ops_per_sec(&self) -> f64 {
        avg(&self.ops_per_sec)
    }
}

fn avg(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

/// 95% confidence half-width assuming a normal distribution.
fn confidence95(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = avg(xs);
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
    1.959964 * var.sqrt() / (xs.len() as f64).sqrt()
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[mid],
        _ => (v[mid] + v[mid - 1]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(done: u64, secs: f64, bytes: u64, msg: &str) -> RunResult {
        RunResult {
            name: "readrandom".into(),
            done,
            bytes,
            elapsed_secs: secs,
            thread_secs: secs,
            message: msg.into(),
            unsupported: false,
            hists: Vec::new(),
            process: None,
        }
    }

    #[test]
    fn process_line_gives_storage_reads_per_operation() {
        let mut r = result(200_000, 2.0, 0, "");
        assert_eq!(r.process_line(), "");
        r.process = Some(ProcessCost {
            read_bytes: 485 << 20,
            write_bytes: 0,
            user_secs: 3.25,
            system_secs: 2.0,
        });
        assert_eq!(
            r.read_bytes_per_op(),
            Some((485u64 << 20) as f64 / 200_000.0)
        );
        assert_eq!(
            r.process_line(),
            "readrandom   : storage 2.5 KB read/op, 0 B written/op (485.0 MB read, 0.0 MB written); CPU 3.25 s user, 2.00 s system\n"
        );
    }

    #[test]
    fn line_matches_rocksdb_format() {
        let r = result(1000, 0.5, 116_000, "(1000 of 1000 found)\n");
        assert_eq!(
            r.line(),
            "readrandom   :     500.000 micros/op 2000 ops/sec 0.500 seconds 1000 operations;    0.2 MB/s (1000 of 1000 found)\n\n"
        );
        let plain = result(10, 1.0, 0, "");
        assert!(plain.line().ends_with("10 operations;\n"));
    }

    #[test]
    fn repeats_average_and_median() {
        let mut c = Combined::default();
        c.add(&result(100, 1.0, 0, ""));
        assert!(c.report("x").is_none());
        c.add(&result(300, 1.0, 0, ""));
        let line = c.report("x").unwrap();
        assert!(line.starts_with("x [AVG 2 runs] : 200 ("), "{line}");
        let fin = c.report_final("x").unwrap();
        assert!(fin.contains("x [MEDIAN 2 runs] : 200 ops/sec"), "{fin}");
    }
}
