//! The cost of `Options::statistics`, measured A/B in one process so a
//! loaded machine disturbs both sides alike: two databases with the same
//! data, one collecting statistics, read (and written) in alternating
//! rounds, each round timed by the thread's CPU time (a loaded machine
//! inflates wall time by however long the thread waits for a core). Per
//! side, the fastest round is the least disturbed; the median of the
//! per-round ratios is the other figure. docs/performance.md
//! ("Statistics cost") has the results.
//!
//! `cargo bench --bench statistics_cost` (ROUNDS=n for more rounds).
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use strata::{Db, Options, Statistics};

const KEYS: u64 = 200_000;
const OPS: u64 = 200_000;

fn key(i: u64) -> [u8; 16] {
    let mut k = [b'0'; 16];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k
}

fn scramble(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % (2 * KEYS)
}

fn open(dir: &tempfile::TempDir, statistics: bool) -> Db {
    let options = Options {
        statistics: statistics.then(Statistics::new),
        ..Options::default()
    };
    Db::open(dir.path(), options).unwrap()
}

fn thread_cpu_nanos() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}

/// CPU nanoseconds per op of `OPS` calls of `f`.
fn time(mut f: impl FnMut(u64)) -> f64 {
    let start = thread_cpu_nanos();
    for i in 0..OPS {
        f(i);
    }
    (thread_cpu_nanos() - start) as f64 / OPS as f64
}

fn report(name: &str, off: &[f64], on: &[f64]) {
    let min = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
    let mut ratios: Vec<f64> = off.iter().zip(on).map(|(a, b)| b / a).collect();
    ratios.sort_by(|a, b| a.total_cmp(b));
    let median = ratios[ratios.len() / 2];
    println!(
        "{name:<28} off {:>7.1} ns/op  on {:>7.1} ns/op  fastest-round cost {:+.1}%  median ratio {:+.1}%  ({} rounds)",
        min(off),
        min(on),
        (min(on) / min(off) - 1.0) * 100.0,
        (median - 1.0) * 100.0,
        off.len()
    );
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(21);
    let value = [b'v'; 100];

    for (name, flush) in [("get, memtable", false), ("get, tables", true)] {
        let (dir_off, dir_on) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (off, on) = (open(&dir_off, false), open(&dir_on, true));
        for db in [&off, &on] {
            for i in 0..KEYS {
                db.put(key(i * 2), value).unwrap();
            }
            if flush {
                db.flush().unwrap();
                db.wait_for_compactions().unwrap();
            }
        }
        let (mut t_off, mut t_on) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which side goes first.
            let run = |db: &Db| {
                time(|i| {
                    black_box(db.get(key(scramble(i))).unwrap());
                })
            };
            if round % 2 == 0 {
                t_off.push(run(&off));
                t_on.push(run(&on));
            } else {
                t_on.push(run(&on));
                t_off.push(run(&off));
            }
        }
        report(name, &t_off, &t_on);
    }

    let (mut t_off, mut t_on) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Fresh databases each round: puts into an empty memtable.
        let (dir_off, dir_on) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (off, on) = (open(&dir_off, false), open(&dir_on, true));
        let run = |db: &Db| time(|i| db.put(key(scramble(i)), value).unwrap());
        if round % 2 == 0 {
            t_off.push(run(&off));
            t_on.push(run(&on));
        } else {
            t_on.push(run(&on));
            t_off.push(run(&off));
        }
    }
    report("put (no sync)", &t_off, &t_on);

    // What the statistics themselves cost per get and write, alone.
    let statistics = Statistics::new();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = thread_cpu_nanos();
        strata::statistics_probe_cost(&statistics, OPS);
        best = best.min((thread_cpu_nanos() - start) as f64 / OPS as f64);
    }
    println!("statistics alone, one get and one write: {best:.1} ns (fastest of {rounds} rounds)");
}
