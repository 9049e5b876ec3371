//! `recompress`: what the table would take with no compression and with
//! zstd at several levels — rebuilt in memory from its entries with its own
//! block size, restart interval and filter, and timed. Nothing is written.

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;
use strata_sstable::bytes::Bytes;
use strata_sstable::{Compression, TableBuilder, TableOptions};

use crate::output::{problems_text, Problem, Report};
use crate::scan::walk;
use crate::table;

/// One rebuild.
#[derive(Debug, Serialize)]
pub struct Trial {
    pub compression: String,
    pub file_size: u64,
    /// Size relative to the uncompressed rebuild.
    pub ratio: f64,
    pub build_ms: f64,
}

/// The result of `recompress`.
#[derive(Debug, Default, Serialize)]
pub struct RecompressReport {
    pub original_compression: String,
    pub original_size: u64,
    pub entries: u64,
    pub trials: Vec<Trial>,
    pub problems: Vec<Problem>,
}

/// Why a rebuild could not even start: the caller's fault (a bad level).
pub struct BadLevel(pub String);

/// Rebuilds `data` once per compression in `levels` (zstd levels; the
/// uncompressed rebuild always comes first).
pub fn recompress(
    data: &Bytes,
    levels: &[i32],
    verify_checksums: bool,
) -> Result<RecompressReport, BadLevel> {
    let mut report = RecompressReport {
        original_size: data.len() as u64,
        ..RecompressReport::default()
    };
    let compressions: Vec<Compression> = std::iter::once(Compression::None)
        .chain(levels.iter().map(|&level| Compression::Zstd { level }))
        .collect();
    for c in &compressions {
        let options = TableOptions {
            compression: c.clone(),
            ..TableOptions::default()
        };
        options.validate().map_err(|e| BadLevel(e.to_string()))?;
    }
    let table = match table::open(data, verify_checksums) {
        Ok(t) => t,
        Err(p) => {
            report.problems.push(p);
            return Ok(report);
        }
    };
    let props = table.properties();
    report.original_compression = props.compression.clone();
    let mut none_size = 0u64;
    for compression in compressions {
        let options = TableOptions {
            block_size: usize::try_from(props.block_size).unwrap_or(usize::MAX),
            restart_interval: usize::try_from(props.restart_interval).unwrap_or(usize::MAX),
            bloom_bits_per_key: u32::try_from(props.bloom_bits_per_key).unwrap_or(u32::MAX),
            compression,
            compression_opts: Default::default(),
            block_align: props.data_block_alignment > 0,
        };
        let name = options.compression.property_name();
        let started = Instant::now();
        let built = rebuild(data, &table, options, &mut report.entries);
        let build_ms = started.elapsed().as_secs_f64() * 1e3;
        match built {
            Ok(file_size) => {
                if none_size == 0 {
                    none_size = file_size;
                }
                report.trials.push(Trial {
                    compression: name,
                    file_size,
                    ratio: file_size as f64 / none_size.max(1) as f64,
                    build_ms,
                });
            }
            Err(p) => {
                report.problems.push(p);
                break;
            }
        }
    }
    Ok(report)
}

/// Builds a table from every entry of `table` into nowhere; its size.
fn rebuild(
    data: &Bytes,
    table: &std::sync::Arc<strata_sstable::Table>,
    options: TableOptions,
    entries: &mut u64,
) -> Result<u64, Problem> {
    let mut builder = TableBuilder::new(std::io::sink(), options)
        .map_err(|e| Problem::nowhere(format!("cannot rebuild: {e}")))?;
    let mut failed = None;
    *entries = 0;
    walk(data, table, None, |it| {
        let k = it.parsed_key();
        match builder.add(k.user_key, k.seqno, k.kind, it.value()) {
            Ok(()) => {
                *entries += 1;
                true
            }
            Err(e) => {
                failed = Some(Problem::nowhere(format!(
                    "entry {entries} cannot be rebuilt: {e}"
                )));
                false
            }
        }
    })?;
    if let Some(p) = failed {
        return Err(p);
    }
    let built = builder
        .finish()
        .map_err(|e| Problem::nowhere(format!("cannot rebuild: {e}")))?;
    Ok(built.file_size)
}

impl Report for RecompressReport {
    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "original: {} bytes, compression {}, {} entries",
            self.original_size, self.original_compression, self.entries
        );
        let _ = writeln!(
            out,
            "{:<12} {:>14} {:>8} {:>12}",
            "Compression", "Size", "Ratio", "Time(ms)"
        );
        for t in &self.trials {
            let _ = writeln!(
                out,
                "{:<12} {:>14} {:>8.3} {:>12.3}",
                t.compression, t.file_size, t.ratio, t.build_ms
            );
        }
        problems_text(out, &self.problems);
    }
}
