//! A MANIFEST, like ldb's `manifest_dump`: each version edit, then the live
//! version it leaves, level by level, each table as
//! `num:size[seq .. seq]['smallest' .. 'largest']`. The verdict and the
//! live version come from the engine's own replay (`read_manifest`); when
//! the manifest is damaged, the version is the one before the damage.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use strata::inspect::{read_manifest, FileMeta, ManifestContents, VersionEdit, NUM_LEVELS};
use strata_wal::{Reader, RecoveryMode, TailRule};

use crate::escape::Style;
use crate::output::{problems_text, Problem, Report};
use crate::wal::End;

/// A table as the manifest records it.
#[derive(Clone, Debug, Serialize)]
pub struct TableMeta {
    pub level: usize,
    pub number: u64,
    pub size: u64,
    pub smallest: String,
    pub largest: String,
    pub smallest_seqno: u64,
    pub largest_seqno: u64,
}

impl TableMeta {
    pub fn of(level: usize, f: &FileMeta, style: Style) -> TableMeta {
        TableMeta {
            level,
            number: f.number,
            size: f.size,
            smallest: style.show(&f.smallest),
            largest: style.show(&f.largest),
            smallest_seqno: f.smallest_seqno,
            largest_seqno: f.largest_seqno,
        }
    }

    /// `num:size[seq .. seq]['smallest' .. 'largest']`
    pub fn line(&self) -> String {
        format!(
            "{}:{}[{} .. {}]['{}' .. '{}']",
            self.number,
            self.size,
            self.smallest_seqno,
            self.largest_seqno,
            self.smallest,
            self.largest
        )
    }
}

/// One version edit.
#[derive(Debug, Serialize)]
pub struct EditReport {
    pub offset: u64,
    pub log_number: Option<u64>,
    pub next_file_number: Option<u64>,
    pub last_sequence: Option<u64>,
    pub deleted: Vec<(usize, u64)>,
    pub added: Vec<TableMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The live version: tables per level and the counters.
#[derive(Debug, Serialize)]
pub struct LiveVersion {
    /// Edits applied to reach it (RocksDB's "version#").
    pub version: usize,
    pub levels: Vec<Vec<TableMeta>>,
    pub log_number: u64,
    pub next_file_number: u64,
    pub last_sequence: u64,
    pub total_files: usize,
    pub total_bytes: u64,
    /// True when the manifest is damaged and this is the version before the damage.
    pub before_damage: bool,
}

impl LiveVersion {
    pub fn of(c: &ManifestContents, before_damage: bool, style: Style) -> LiveVersion {
        let levels: Vec<Vec<TableMeta>> = merged_levels(c)
            .iter()
            .enumerate()
            .map(|(level, files)| {
                files
                    .values()
                    .map(|f| TableMeta::of(level, f, style))
                    .collect()
            })
            .collect();
        LiveVersion {
            version: c.edits.len(),
            total_files: levels.iter().map(Vec::len).sum(),
            total_bytes: levels.iter().flatten().map(|f| f.size).sum(),
            levels,
            log_number: c.log_number(),
            next_file_number: c.next_file_number,
            last_sequence: c.last_sequence,
            before_damage,
        }
    }

    pub fn text(&self, out: &mut String) {
        if self.before_damage {
            out.push_str("live version as of the last edit before the damage:\n");
        }
        for (level, files) in self.levels.iter().enumerate() {
            let _ = writeln!(out, "--- level {level} --- version# {} ---", self.version);
            for f in files {
                let _ = writeln!(out, " {}", f.line());
            }
        }
        let _ = writeln!(
            out,
            "log_number {} next_file_number {} last_sequence {}",
            self.log_number, self.next_file_number, self.last_sequence
        );
        let _ = writeln!(
            out,
            "total: {} files, {} bytes",
            self.total_files, self.total_bytes
        );
    }
}

/// Replays `data` with the engine's reader. On damage: the problem, and
/// the contents of the manifest up to the damaged record if that prefix
/// replays on its own.
pub fn replay(path: &Path, data: &[u8]) -> (Option<(ManifestContents, bool)>, Option<Problem>) {
    match read_manifest(path, data) {
        Ok(c) => (Some((c, false)), None),
        Err(e) => {
            let problem = Problem::from_engine(&e);
            let prefix = problem
                .offset
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| data.get(..o))
                .filter(|p| p.len() < data.len())
                .and_then(|p| read_manifest(path, p).ok());
            (prefix.map(|c| (c, true)), Some(problem))
        }
    }
}

/// The result of dumping a MANIFEST.
#[derive(Debug, Serialize)]
pub struct ManifestReport {
    pub edits: Vec<EditReport>,
    pub end: Option<End>,
    pub live: Option<LiveVersion>,
    pub problems: Vec<Problem>,
    #[serde(skip)]
    pub summary_only: bool,
}

/// Reads `data` as a MANIFEST. Never panics.
pub fn dump(path: &Path, data: &[u8], style: Style) -> ManifestReport {
    let mut edits = Vec::new();
    // The engine's tail rule (`read_manifest`), so the ending shown agrees with it.
    let mut reader = Reader::with_tail_rule(
        data,
        RecoveryMode::PointInTimeRecovery,
        TailRule::EveryRecordSyncedButLast,
    );
    while let Ok(Some(record)) = reader.next_record() {
        edits.push(match VersionEdit::decode(record.data) {
            Ok(e) => EditReport {
                offset: record.offset,
                log_number: e.log_number,
                next_file_number: e.next_file_number,
                last_sequence: e.last_sequence,
                deleted: e.deleted_files.clone(),
                added: e
                    .new_files
                    .iter()
                    .map(|(l, f)| TableMeta::of(*l, f, style))
                    .collect(),
                error: None,
            },
            Err(e) => EditReport {
                offset: record.offset,
                log_number: None,
                next_file_number: None,
                last_sequence: None,
                deleted: Vec::new(),
                added: Vec::new(),
                error: Some(format!("{} at byte {} of the edit", e.reason, e.offset)),
            },
        });
    }
    let end = reader.end().map(End::of);
    let (contents, problem) = replay(path, data);
    let mut problems: Vec<Problem> = problem
        .into_iter()
        .map(|mut p| {
            p.file = None;
            p
        })
        .collect();
    if let Some(End {
        state: "corruption",
        offset,
        reason,
    }) = &end
    {
        if problems.is_empty() {
            problems.push(Problem::at(*offset, reason.clone().unwrap_or_default()));
        }
    }
    ManifestReport {
        edits,
        end,
        live: contents.map(|(c, before)| LiveVersion::of(&c, before, style)),
        problems,
        summary_only: false,
    }
}

impl Report for ManifestReport {
    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn text(&self, out: &mut String) {
        if !self.summary_only {
            for (i, e) in self.edits.iter().enumerate() {
                edit_text(out, i, e);
            }
        }
        let _ = writeln!(out, "{} version edits", self.edits.len());
        if let Some(end) = &self.end {
            let why = end
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let _ = writeln!(out, "log ends at offset {}: {}{why}", end.offset, end.state);
        }
        if let Some(v) = &self.live {
            v.text(out);
        }
        problems_text(out, &self.problems);
    }
}

fn edit_text(out: &mut String, i: usize, e: &EditReport) {
    let _ = write!(out, "edit #{i} @ offset {}:", e.offset);
    for (name, v) in [
        ("log_number", e.log_number),
        ("next_file_number", e.next_file_number),
        ("last_sequence", e.last_sequence),
    ] {
        if let Some(v) = v {
            let _ = write!(out, " {name} {v}");
        }
    }
    out.push('\n');
    for (level, number) in &e.deleted {
        let _ = writeln!(out, "  delete L{level} {number}");
    }
    for f in &e.added {
        let _ = writeln!(out, "  add L{} {}", f.level, f.line());
    }
    if let Some(err) = &e.error {
        let _ = writeln!(out, "  malformed edit: {err}");
    }
}

/// Levels are 0..NUM_LEVELS; kept here so the directory report can size its table.
pub const LEVELS: usize = NUM_LEVELS;

/// Every keyspace's live tables, level by level.
pub fn merged_levels(
    c: &ManifestContents,
) -> [std::collections::BTreeMap<u64, strata::inspect::FileMeta>; NUM_LEVELS] {
    let mut levels: [std::collections::BTreeMap<u64, strata::inspect::FileMeta>; NUM_LEVELS] =
        Default::default();
    for (_, level, meta) in c.all_tables() {
        levels[level].insert(meta.number, meta.clone());
    }
    levels
}
