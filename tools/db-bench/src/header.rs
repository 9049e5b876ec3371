//! The header db_bench prints before the first benchmark (engine and
//! version, date, CPU, key and value sizes, entries, raw size,
//! compression), followed by what db-bench adds: the database path, the
//! seed, how durable a write is, and how each flag was mapped to the
//! engine's options.

use crate::clock;
use crate::engine::{EngineKind, Mapping};
use crate::flags::Flags;
use std::fmt::Write as _;
use std::path::Path;

pub fn header(kind: EngineKind, mapping: &Mapping, flags: &Flags, db: &Path, seed: u64) -> String {
    let mut h = String::new();
    let label = format!("{}:", kind.display_name());
    let _ = writeln!(h, "{label:<12}version {}", kind.version());
    let _ = writeln!(h, "Date:       {}", clock::ctime_now());
    if let Some((cpus, model, cache)) = cpu_info() {
        let _ = writeln!(h, "CPU:        {cpus} * {model}");
        let _ = writeln!(h, "CPUCache:   {cache}");
    }
    let key = u64::from(flags.key_size);
    let value = u64::from(flags.value_size);
    let num = flags.num as u64;
    let _ = writeln!(
        h,
        "Keys:       {key} bytes each (+ 0 bytes user-defined timestamp)"
    );
    let _ = writeln!(
        h,
        "Values:     {value} bytes each ({} bytes after compression)",
        (value as f64 * flags.compression_ratio + 0.5) as u64
    );
    let _ = writeln!(h, "Entries:    {num}");
    let _ = writeln!(h, "Prefix:    0 bytes");
    let _ = writeln!(h, "Keys per prefix:    0");
    let _ = writeln!(
        h,
        "RawSize:    {:.1} MB (estimated)",
        (key + value) as f64 * num as f64 / 1_048_576.0
    );
    let _ = writeln!(
        h,
        "FileSize:   {:.1} MB (estimated)",
        (key as f64 + value as f64 * flags.compression_ratio) * num as f64 / 1_048_576.0
    );
    let _ = writeln!(h, "Write rate: 0 bytes/second");
    let _ = writeln!(h, "Read rate: 0 ops/second");
    let _ = writeln!(h, "Compression: {}", flags.compression_type.rocksdb_name());
    if cfg!(debug_assertions) {
        let _ = writeln!(
            h,
            "WARNING: Assertions are enabled; benchmarks unnecessarily slow"
        );
    }
    let _ = writeln!(h, "DB:         {}", db.display());
    let _ = writeln!(h, "Seed:       {seed}");
    let _ = writeln!(h, "Threads:    {}", flags.threads);
    if flags.num_column_families > 1 {
        let _ = writeln!(
            h,
            "Column families: {} (key k in k % {})",
            flags.num_column_families, flags.num_column_families
        );
    }
    let _ = writeln!(h, "Durability: {}", mapping.durability);
    let _ = writeln!(h, "--sync=1:   {}", mapping.sync_durability);
    for (i, m) in mapping.mapped.iter().enumerate() {
        let _ = writeln!(h, "{:<12} {m}", if i == 0 { "Mapped:" } else { "" });
    }
    for (i, m) in mapping.unmatched.iter().enumerate() {
        let _ = writeln!(h, "{:<12} {m}", if i == 0 { "Not matched:" } else { "" });
    }
    h.push_str("------------------------------------------------\n");
    h
}

/// (CPU count, model name, cache size) from `/proc/cpuinfo`.
fn cpu_info() -> Option<(usize, String, String)> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mut cpus = 0;
    let mut model = String::new();
    let mut cache = String::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k.trim() {
            "model name" => {
                cpus += 1;
                model = v.trim().to_string();
            }
            "cache size" => cache = v.trim().to_string(),
            _ => {}
        }
    }
    (cpus > 0).then_some((cpus, model, cache))
}
