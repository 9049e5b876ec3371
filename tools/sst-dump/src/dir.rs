//! A database directory: the live version per keyspace and level (from
//! CURRENT and the manifest it names), totals, and `verify` of every live
//! table and every live WAL. Read-only: files are read with plain reads (regular files up
//! to `--max_input_bytes` only, `input.rs`), the LOCK is never taken,
//! nothing is written, so a running database can be inspected.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::path::Path;

use serde::Serialize;
use strata::inspect::{parse_file_name, FileKind, FileMeta};
use strata_sstable::bytes::Bytes;

use crate::escape::{escaped, Style};
use crate::manifest::{self, TableMeta};
use crate::output::{problems_text, Problem, Report};
use crate::wal::{self, End};
use crate::{input, table, verify};

/// A live table and what verifying it found.
#[derive(Debug, Serialize)]
pub struct LiveTable {
    /// The name of the keyspace it belongs to, and its id.
    pub keyspace: String,
    pub keyspace_id: u32,
    #[serde(flatten)]
    pub meta: TableMeta,
    pub num_entries: Option<u64>,
    pub num_deletions: Option<u64>,
    /// "ok", or what is wrong.
    pub status: String,
}

/// A live WAL.
#[derive(Debug, Serialize)]
pub struct LiveLog {
    pub name: String,
    pub records: usize,
    pub end: End,
    pub status: String,
}

/// Files per level.
#[derive(Debug, Serialize)]
pub struct LevelSummary {
    pub level: usize,
    pub files: usize,
    pub bytes: u64,
}

/// One live keyspace: its log number and files per level (its tables are
/// in `DirReport::tables`).
#[derive(Debug, Serialize)]
pub struct KeyspaceSummary {
    pub id: u32,
    pub name: String,
    /// WALs below this hold nothing of it that is not in its tables.
    pub log_number: u64,
    pub files: usize,
    pub bytes: u64,
    pub levels: Vec<LevelSummary>,
}

/// The live version's number and counters (its tables are in `tables`).
#[derive(Debug, Serialize)]
pub struct VersionInfo {
    /// Edits applied to reach it (RocksDB's "version#").
    pub version: usize,
    pub log_number: u64,
    pub next_file_number: u64,
    pub last_sequence: u64,
    /// True when the manifest is damaged and this is the version before the damage.
    pub before_damage: bool,
}

/// The result of inspecting a directory.
#[derive(Debug, Default, Serialize)]
pub struct DirReport {
    pub path: String,
    pub manifest: Option<String>,
    pub version: Option<VersionInfo>,
    /// Live keyspaces by id, the default (id 0) first.
    pub keyspaces: Vec<KeyspaceSummary>,
    /// Every live table, keyspace by keyspace.
    pub tables: Vec<LiveTable>,
    /// Files per level, all keyspaces together.
    pub levels: Vec<LevelSummary>,
    pub total_files: usize,
    pub total_bytes: u64,
    pub total_entries: u64,
    pub logs: Vec<LiveLog>,
    /// Files that are not part of the live state (obsolete tables and logs,
    /// old manifests, temporary files, names strata does not use).
    pub other_files: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Inspects the database in `dir`.
pub fn inspect(dir: &Path, style: Style, max_input_bytes: u64) -> DirReport {
    let mut report = DirReport {
        path: dir.display().to_string(),
        ..DirReport::default()
    };
    let current = dir.join("CURRENT");
    if let Err(e) = std::fs::metadata(&current) {
        let why = if e.kind() == ErrorKind::NotFound {
            "no CURRENT file: not a strata database, or CURRENT was lost".to_string()
        } else {
            format!("cannot read CURRENT: {e}")
        };
        report.problems.push(Problem::nowhere(why));
        return report;
    }
    let name = match input::read(&current, max_input_bytes) {
        Ok(bytes) => match std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.strip_suffix('\n'))
            .filter(|s| matches!(parse_file_name(s), Some(FileKind::Manifest(_))))
        {
            Some(name) => name.to_string(),
            None => {
                report
                    .problems
                    .push(Problem::at(0, "CURRENT does not name a manifest").in_file("CURRENT"));
                return report;
            }
        },
        Err(e) => {
            report
                .problems
                .push(Problem::nowhere(format!("cannot read CURRENT: {e}")));
            return report;
        }
    };
    let manifest_path = dir.join(&name);
    report.manifest = Some(name.clone());
    let data = match input::read(&manifest_path, max_input_bytes) {
        Ok(d) => d,
        Err(e) => {
            report.problems.push(
                Problem::nowhere(format!("cannot read the manifest CURRENT names: {e}"))
                    .in_file(name),
            );
            return report;
        }
    };
    let (contents, problem) = manifest::replay(&manifest_path, &data);
    if let Some(p) = problem {
        report.problems.push(p.in_file(name.clone()));
    }
    let Some((contents, before_damage)) = contents else {
        return report;
    };
    let mut live_numbers = std::collections::BTreeSet::new();
    report.levels = (0..manifest::LEVELS)
        .map(|level| LevelSummary {
            level,
            files: 0,
            bytes: 0,
        })
        .collect();
    for (&id, ks) in &contents.keyspaces {
        let mut summary = KeyspaceSummary {
            id,
            name: ks.name.clone(),
            log_number: ks.log_number,
            files: 0,
            bytes: 0,
            levels: Vec::new(),
        };
        for (level, files) in ks.levels.iter().enumerate() {
            let mut bytes = 0;
            for f in files.values() {
                live_numbers.insert(f.number);
                bytes += f.size;
                let mut t = check_table(dir, level, f, style, max_input_bytes);
                (t.keyspace, t.keyspace_id) = (ks.name.clone(), id);
                report.total_entries += t.num_entries.unwrap_or(0);
                report.tables.push(t);
            }
            summary.levels.push(LevelSummary {
                level,
                files: files.len(),
                bytes,
            });
            summary.files += files.len();
            summary.bytes += bytes;
            report.levels[level].files += files.len();
            report.levels[level].bytes += bytes;
        }
        report.keyspaces.push(summary);
    }
    for t in &report.tables {
        if t.status != "ok" {
            let file = format!("{:06}.sst", t.meta.number);
            report
                .problems
                .push(Problem::nowhere(t.status.clone()).in_file(file));
        }
    }
    report.total_files = report.tables.len();
    report.total_bytes = report.levels.iter().map(|l| l.bytes).sum();
    let mut names = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        Err(e) => {
            report
                .problems
                .push(Problem::nowhere(format!("cannot list the directory: {e}")));
            Vec::new()
        }
    };
    names.sort();
    for n in names {
        match parse_file_name(&n) {
            Some(FileKind::Wal(number)) if number >= contents.log_number() => {
                let log = check_log(&dir.join(&n), &n, max_input_bytes);
                if log.status != "ok" {
                    report
                        .problems
                        .push(Problem::nowhere(log.status.clone()).in_file(n.clone()));
                }
                report.logs.push(log);
            }
            Some(FileKind::Table(number)) if live_numbers.contains(&number) => {}
            Some(FileKind::Current | FileKind::Lock) => {}
            _ if n == name => {}
            _ => report.other_files.push(n),
        }
    }
    report.version = Some(VersionInfo {
        version: contents.edits.len(),
        log_number: contents.log_number(),
        next_file_number: contents.next_file_number,
        last_sequence: contents.last_sequence,
        before_damage,
    });
    report
}

/// Reads and verifies one live table; compares it with its manifest entry.
fn check_table(
    dir: &Path,
    level: usize,
    f: &FileMeta,
    style: Style,
    max_input_bytes: u64,
) -> LiveTable {
    let mut t = LiveTable {
        keyspace: String::new(),
        keyspace_id: 0,
        meta: TableMeta::of(level, f, style),
        num_entries: None,
        num_deletions: None,
        status: "ok".into(),
    };
    let path = dir.join(format!("{:06}.sst", f.number));
    let data = match input::read(&path, max_input_bytes) {
        Ok(d) => Bytes::from(d),
        Err(e) => {
            t.status = format!("live table cannot be read: {e}");
            return t;
        }
    };
    if let Some(p) = verify::verify(&data).problem {
        t.status = p.to_string();
        return t;
    }
    let table = match table::open(&data, false) {
        Ok(t) => t,
        Err(p) => {
            t.status = p.to_string();
            return t;
        }
    };
    let p = table.properties();
    t.num_entries = Some(p.num_entries);
    t.num_deletions = Some(p.num_deletions);
    let mut wrong = Vec::new();
    if table.file_size() != f.size {
        wrong.push(format!("size {} (manifest: {})", table.file_size(), f.size));
    }
    // The table's bounds cover its point keys and its range tombstones;
    // the manifest records exactly those.
    let b = table.bounds();
    if (&b.smallest, &b.largest, b.largest_bound) != (&f.smallest, &f.largest, f.largest_bound) {
        wrong.push(format!(
            "key range ['{}' .. {} (manifest: ['{}' .. {})",
            escaped(&b.smallest),
            b.largest_bound.close(&format!("'{}'", escaped(&b.largest))),
            escaped(&f.smallest),
            f.largest_bound.close(&format!("'{}'", escaped(&f.largest)))
        ));
    }
    if (p.min_seqno, p.max_seqno) != (f.smallest_seqno, f.largest_seqno) {
        wrong.push(format!(
            "sequence range [{} .. {}] (manifest: [{} .. {}])",
            p.min_seqno, p.max_seqno, f.smallest_seqno, f.largest_seqno
        ));
    }
    if !wrong.is_empty() {
        t.status = format!("table disagrees with the manifest: {}", wrong.join(", "));
    }
    t
}

/// Reads one live WAL; a torn tail is its normal end after a crash.
fn check_log(path: &Path, name: &str, max_input_bytes: u64) -> LiveLog {
    let data = match input::read(path, max_input_bytes) {
        Ok(d) => d,
        Err(e) => {
            return LiveLog {
                name: name.to_string(),
                records: 0,
                end: End {
                    state: "unreadable",
                    offset: 0,
                    reason: Some(e.to_string()),
                },
                status: format!("live log cannot be read: {e}"),
            }
        }
    };
    let w = wal::dump(&data, false, Style::default(), None);
    let status = match w.problems.first() {
        None => "ok".to_string(),
        Some(p) => p.to_string(),
    };
    LiveLog {
        name: name.to_string(),
        records: w.records.len(),
        end: w.end,
        status,
    }
}

impl Report for DirReport {
    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn text(&self, out: &mut String) {
        let _ = writeln!(out, "database {}", self.path);
        if let Some(m) = &self.manifest {
            let _ = writeln!(out, "CURRENT -> {m}");
        }
        if let Some(v) = &self.version {
            if v.before_damage {
                out.push_str("live version as of the last edit before the damage:\n");
            }
            for ks in &self.keyspaces {
                let _ = writeln!(
                    out,
                    "--- keyspace \"{}\" (id {}) log_number {}: {} files, {} bytes ---",
                    escaped(ks.name.as_bytes()),
                    ks.id,
                    ks.log_number,
                    ks.files,
                    ks.bytes
                );
                for level in 0..manifest::LEVELS {
                    let mut files = self
                        .tables
                        .iter()
                        .filter(|t| t.keyspace_id == ks.id && t.meta.level == level)
                        .peekable();
                    if files.peek().is_none() {
                        continue;
                    }
                    let _ = writeln!(out, "--- level {level} --- version# {} ---", v.version);
                    for t in files {
                        let _ = writeln!(out, " {} {}", t.meta.line(), t.status);
                    }
                }
            }
            out.push_str("Level Files Size(bytes)\n");
            for l in &self.levels {
                let _ = writeln!(out, "L{:<4} {:>5} {:>11}", l.level, l.files, l.bytes);
            }
            let _ = writeln!(
                out,
                "total: {} files, {} bytes, {} entries",
                self.total_files, self.total_bytes, self.total_entries
            );
            let _ = writeln!(
                out,
                "log_number {} next_file_number {} last_sequence {}",
                v.log_number, v.next_file_number, v.last_sequence
            );
        }
        for l in &self.logs {
            let _ = writeln!(
                out,
                "log {}: {} records, ends at offset {} ({}) {}",
                l.name, l.records, l.end.offset, l.end.state, l.status
            );
        }
        if !self.other_files.is_empty() {
            let _ = writeln!(out, "not live: {}", self.other_files.join(" "));
        }
        if self.ok() {
            out.push_str("verify: ok\n");
        } else {
            let _ = writeln!(out, "verify: {} problems", self.problems.len());
            problems_text(out, &self.problems);
        }
    }
}
