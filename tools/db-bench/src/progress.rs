//! Progress on stderr while a benchmark runs: an indicatif bar when stderr
//! is a terminal, db_bench's `... finished N ops` lines otherwise (logs and
//! pipes). Updated only at db_bench's report points (100, 200, ... ops,
//! thinning out to every 100,000), never per operation.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

#[derive(Clone)]
pub enum Progress {
    Bar(ProgressBar),
    Lines,
}

impl Progress {
    /// Progress for a run of `total` operations (all threads together;
    /// `None` when not known ahead).
    pub fn start(label: &str, total: Option<u64>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::Lines;
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = if total.is_some() {
            "{prefix:>12} [{bar:40}] {human_pos}/{human_len} ops {per_sec} eta {eta}"
        } else {
            "{prefix:>12} {spinner} {human_pos} ops {per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_string());
        Progress::Bar(bar)
    }

    /// One thread reached `thread_done` operations, `delta` since its last
    /// report.
    pub fn advance(&self, thread_done: u64, delta: u64) {
        match self {
            Progress::Bar(bar) => bar.inc(delta),
            Progress::Lines => eprintln!("... finished {thread_done} ops"),
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// db_bench's schedule of report points: the next one after `current`.
pub fn next_report_point(current: u64) -> u64 {
    current
        + match current {
            0..=999 => 100,
            1000..=4999 => 500,
            5000..=9999 => 1000,
            10_000..=49_999 => 5000,
            50_000..=99_999 => 10_000,
            100_000..=499_999 => 50_000,
            _ => 100_000,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_thins_out() {
        assert_eq!(next_report_point(100), 200);
        assert_eq!(next_report_point(1000), 1500);
        assert_eq!(next_report_point(600_000), 700_000);
    }
}
