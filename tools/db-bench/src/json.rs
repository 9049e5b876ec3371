//! `--json=FILE`: one JSON object per line for each measured benchmark
//! run, carrying the same figures as the result line plus the latency
//! percentiles.

use crate::engine::EngineKind;
use crate::error::{Context, Result};
use crate::flags::Flags;
use crate::histogram::LatencySummary;
use crate::result::RunResult;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Serialize)]
struct Record<'a> {
    engine: &'static str,
    engine_version: String,
    benchmark: &'a str,
    /// 1-based index of the measured run (`name[X5]` has 5).
    run: u32,
    runs: u32,
    threads: usize,
    operations: u64,
    seconds: f64,
    micros_per_op: f64,
    ops_per_sec: i64,
    mb_per_sec: Option<f64>,
    bytes: u64,
    message: &'a str,
    /// All kinds of operation together.
    latency_us: Option<LatencySummary>,
    /// Per kind (`read`, `write`, `seek`, ...).
    latency_by_op_us: BTreeMap<&'static str, LatencySummary>,
    /// Storage bytes read and written by the process during the run, and
    /// its CPU time (`/proc/self/io`, `/proc/self/stat`).
    storage_read_bytes: Option<u64>,
    storage_written_bytes: Option<u64>,
    storage_read_bytes_per_op: Option<f64>,
    cpu_user_secs: Option<f64>,
    cpu_system_secs: Option<f64>,
    num: i64,
    key_size: u32,
    value_size: u32,
    compression_type: &'static str,
    sync: bool,
    num_column_families: u32,
}

pub struct JsonOut {
    out: BufWriter<File>,
}

/// Which run of how many, and on how many threads.
pub struct RunInfo {
    pub run: u32,
    pub runs: u32,
    pub threads: usize,
}

impl JsonOut {
    pub fn create(path: &Path) -> Result<JsonOut> {
        let f = File::create(path).context(format!("create {}", path.display()))?;
        Ok(JsonOut {
            out: BufWriter::new(f),
        })
    }

    pub fn write(
        &mut self,
        kind: EngineKind,
        flags: &Flags,
        r: &RunResult,
        info: RunInfo,
    ) -> Result<()> {
        let rec = Record {
            engine: kind.name(),
            engine_version: kind.version(),
            benchmark: &r.name,
            run: info.run,
            runs: info.runs,
            threads: info.threads,
            operations: r.ops(),
            seconds: r.elapsed_secs,
            micros_per_op: r.micros_per_op(),
            ops_per_sec: r.ops_per_sec(),
            mb_per_sec: r.mb_per_sec(),
            bytes: r.bytes,
            message: r.message.trim(),
            latency_us: r.overall_latency(),
            latency_by_op_us: r
                .hists
                .iter()
                .map(|(k, h)| (k.name(), h.summary()))
                .collect(),
            storage_read_bytes: r.process.map(|p| p.read_bytes),
            storage_written_bytes: r.process.map(|p| p.write_bytes),
            storage_read_bytes_per_op: r.read_bytes_per_op(),
            cpu_user_secs: r.process.map(|p| p.user_secs),
            cpu_system_secs: r.process.map(|p| p.system_secs),
            num: flags.num,
            key_size: flags.key_size,
            value_size: flags.value_size,
            compression_type: flags.compression_type.rocksdb_name(),
            sync: flags.sync,
            num_column_families: flags.num_column_families,
        };
        serde_json::to_writer(&mut self.out, &rec)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }
}
