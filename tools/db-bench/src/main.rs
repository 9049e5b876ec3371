//! db-bench: RocksDB's db_bench for strata and its peers.
//!
//! ```text
//! cargo run --release --bin db-bench                        # the default suite on strata
//! cargo run --release --bin db-bench -- --benchmarks=fillrandom,readrandom --num=100000 --histogram=1
//! cargo run --release --features rocksdb,fjall --bin db-bench -- --engine=strata,rocksdb,fjall
//! ```
//!
//! Flags, benchmark names and output lines are db_bench's, so scripts
//! written for RocksDB read these results. See the README's db-bench
//! section.

/// mimalloc, as the README recommends for any service embedding strata:
/// glibc malloc stalls writers for ~100 ms while the flush thread frees a
/// memtable (see Cargo.toml). Rust engines (strata, fjall, sled) allocate
/// through it; RocksDB's C++ allocates with the system malloc (its
/// memtable is an arena of its own). `--features system-allocator`
/// leaves the system's in place, as a service that never chose one has.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod clock;
mod compare;
mod dbdir;
mod engine;
mod engine_files;
mod error;
mod flags;
mod header;
mod histogram;
mod json;
mod keys;
mod plan;
mod plot;
mod procio;
mod progress;
mod reporter;
mod result;
mod rng;
mod spec;
mod stats;
mod values;

use bench::{run_engine, RunEnv};
use clap::Parser;
use engine::EngineKind;
use error::{BenchError, Result};
use flags::Flags;
use std::path::Path;
use std::time::Duration;

fn main() {
    let flags = Flags::parse();
    if let Err(e) = run(&flags) {
        eprintln!("db-bench: error: {e}");
        std::process::exit(e.exit_code());
    }
}

fn run(flags: &Flags) -> Result<()> {
    flags.validate()?;
    let specs = spec::parse_benchmarks(&flags.benchmarks)?;
    let seed = if flags.seed == 0 {
        let s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1);
        println!("Set seed to {s} because --seed was 0");
        s
    } else {
        flags.seed
    };
    let engines = &flags.engine.0;
    let dirs = dbdir::DbDir::new(flags.db.as_deref(), engines.len())?;
    let mut env = RunEnv {
        flags,
        specs: &specs,
        seed,
        values: values::ValuePool::new(flags.compression_ratio, flags.value_size as usize),
        json: flags
            .json
            .as_deref()
            .map(json::JsonOut::create)
            .transpose()?,
        reporter: match flags.report_interval_seconds {
            0 => None,
            secs => Some(reporter::Reporter::start(
                &flags.report_file,
                Duration::from_secs(secs),
            )?),
        },
    };
    let mut results = Vec::new();
    for &kind in engines {
        let path = dirs.path(kind);
        let io_before = procio::io_bytes();
        let rows = run_kind(kind, &mut env, &path)
            .map_err(|e| e.context(format!("engine {}", kind.name())))?;
        if let (Some((r0, w0)), Some((r1, w1))) = (io_before, procio::io_bytes()) {
            println!(
                "Storage I/O (/proc/self/io) during {}: {:.1} MB read, {:.1} MB written",
                kind.name(),
                (r1 - r0) as f64 / 1048576.0,
                (w1 - w0) as f64 / 1048576.0
            );
        }
        results.push((kind, rows));
    }
    if let Some(rep) = env.reporter.take() {
        let samples = rep.finish()?;
        if let Some(plot_path) = &flags.plot {
            plot::draw(plot_path, &samples)?;
            eprintln!("plot written to {}", plot_path.display());
        }
    }
    if results.len() > 1 {
        print!("{}", compare::table(&results));
    }
    Ok(())
}

/// Monomorphise the run for one engine.
fn run_kind(kind: EngineKind, env: &mut RunEnv<'_>, path: &Path) -> Result<Vec<compare::Row>> {
    match kind {
        EngineKind::Strata => run_engine::<engine::StrataEngine>(env, path),
        #[cfg(feature = "rocksdb")]
        EngineKind::Rocksdb => run_engine::<engine::RocksEngine>(env, path),
        #[cfg(feature = "fjall")]
        EngineKind::Fjall => run_engine::<engine::FjallEngine>(env, path),
        #[cfg(feature = "sled")]
        EngineKind::Sled => run_engine::<engine::SledEngine>(env, path),
        #[allow(unreachable_patterns)]
        other => Err(BenchError::usage(format!(
            "this db-bench was built without the `{}` feature",
            other.name()
        ))),
    }
}
