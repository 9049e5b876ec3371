//! With several engines, the run ends with a table: each benchmark's
//! ops/sec and p99 on every engine, and the ratio of the base engine
//! (strata when present) over each other one.

use crate::engine::EngineKind;
use std::fmt::Write as _;

/// One benchmark on one engine.
#[derive(Clone, Debug)]
pub struct Row {
    pub benchmark: String,
    /// Mean over the measured runs; `None` when the engine could not run
    /// the benchmark.
    pub ops_per_sec: Option<f64>,
    /// Over all measured runs, all kinds of operation.
    pub p99_us: Option<f64>,
    /// Bytes the process read from storage per operation, over all
    /// measured runs (`/proc/self/io`).
    pub read_bytes_per_op: Option<f64>,
}

/// Engines in run order, each with its rows in `--benchmarks` order.
pub fn table(results: &[(EngineKind, Vec<Row>)]) -> String {
    let Some(base) = results
        .iter()
        .position(|(k, _)| *k == EngineKind::Strata)
        .or((!results.is_empty()).then_some(0))
    else {
        return String::new();
    };
    let base_name = results[base].0.name();
    let peers: Vec<usize> = (0..results.len()).filter(|&i| i != base).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nComparison: ops/sec · p99 (us); ratio = {base_name} ops/sec / peer ops/sec (>1: {base_name} faster)"
    );
    let _ = write!(out, "{:<24}", "benchmark");
    for (k, _) in results {
        let _ = write!(out, "{:>18}", k.name());
    }
    for &p in &peers {
        let _ = write!(
            out,
            "{:>18}",
            format!("{base_name}/{}", results[p].0.name())
        );
    }
    out.push('\n');
    for (row_index, row) in results[base].1.iter().enumerate() {
        let _ = write!(out, "{:<24}", row.benchmark);
        for (_, rows) in results {
            let cell = rows.get(row_index).map_or("-".to_string(), cell);
            let _ = write!(out, "{cell:>18}");
        }
        for &p in &peers {
            let peer = results[p].1.get(row_index).and_then(|r| r.ops_per_sec);
            let ratio = match (row.ops_per_sec, peer) {
                (Some(base), Some(peer)) if peer > 0.0 => format!("{:.2}x", base / peer),
                _ => "n/a".to_string(),
            };
            let _ = write!(out, "{ratio:>18}");
        }
        out.push('\n');
    }
    let any_reads = results.iter().any(|(_, rows)| {
        rows.iter()
            .any(|r| r.read_bytes_per_op.unwrap_or(0.0) > 0.0)
    });
    if any_reads {
        let _ = writeln!(
            out,
            "\nStorage read per operation (/proc/self/io read_bytes, background work included)"
        );
        let _ = write!(out, "{:<24}", "benchmark");
        for (k, _) in results {
            let _ = write!(out, "{:>18}", k.name());
        }
        out.push('\n');
        for (row_index, row) in results[base].1.iter().enumerate() {
            let _ = write!(out, "{:<24}", row.benchmark);
            for (_, rows) in results {
                let cell = rows
                    .get(row_index)
                    .and_then(|r| r.read_bytes_per_op)
                    .map_or("-".to_string(), crate::result::bytes_text);
                let _ = write!(out, "{cell:>18}");
            }
            out.push('\n');
        }
    }
    out
}

fn cell(r: &Row) -> String {
    match (r.ops_per_sec, r.p99_us) {
        (None, _) => "n/a".to_string(),
        (Some(ops), Some(p)) => format!("{} · {}", human(ops), short(p)),
        (Some(ops), None) => human(ops),
    }
}

/// 447k, 2.10M, 6.7k: three significant digits.
pub fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e5 {
        format!("{:.0}k", x / 1e3)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.2}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn short(us: f64) -> String {
    if us >= 100.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_numbers() {
        assert_eq!(human(447_000.0), "447k");
        assert_eq!(human(2_100_000.0), "2.10M");
        assert_eq!(human(6_700.0), "6.70k");
        assert_eq!(human(60_000.0), "60.0k");
    }

    #[test]
    fn ratio_of_strata_over_peers() {
        let row = |ops| Row {
            benchmark: "fillseq".into(),
            ops_per_sec: Some(ops),
            p99_us: Some(7.3),
            read_bytes_per_op: Some(ops / 100.0),
        };
        let t = table(&[
            (EngineKind::Rocksdb, vec![row(100_000.0)]),
            (EngineKind::Strata, vec![row(150_000.0)]),
        ]);
        assert!(t.contains("strata/rocksdb"), "{t}");
        assert!(t.contains("1.50x"), "{t}");
        assert!(t.contains("Storage read per operation"), "{t}");
        assert!(t.contains("1.5 KB"), "{t}");
    }
}
