//! A MANIFEST, like ldb's `manifest_dump`: each version edit (with the
//! keyspace it is about), then the live version it leaves, keyspace by
//! keyspace (ldb: column family by column family) and level by level, each
//! table as `num:size[seq .. seq]['smallest' .. 'largest']` (its range
//! closed by `)` when a range tombstone's exclusive end bounds it, and
//! `.. +inf)` when it has no end). The verdict
//! and the live version come from the engine's own replay
//! (`read_manifest`); when the manifest is damaged, the version is the one
//! before the damage.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use strata::inspect::{
    read_manifest, FileMeta, KeyspaceContents, LargestBound, ManifestContents, VersionEdit,
    NUM_LEVELS,
};
use strata_wal::{Reader, RecoveryMode, TailRule};

use crate::escape::{escaped, Style};
use crate::keyspaces::KeyspaceNames;
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
    /// How `largest` bounds the table: in JSON only when it is not the
    /// table's last key ("excluded": a range tombstone's end; "unbounded":
    /// no end, `largest` empty).
    #[serde(
        skip_serializing_if = "is_included",
        serialize_with = "serialize_bound"
    )]
    pub largest_bound: LargestBound,
    pub smallest_seqno: u64,
    pub largest_seqno: u64,
}

fn is_included(bound: &LargestBound) -> bool {
    *bound == LargestBound::Included
}

pub(crate) fn serialize_bound<S: serde::Serializer>(
    bound: &LargestBound,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(match bound {
        LargestBound::Included => "included",
        LargestBound::Excluded => "excluded",
        LargestBound::Unbounded => "unbounded",
    })
}

impl TableMeta {
    pub fn of(level: usize, f: &FileMeta, style: Style) -> TableMeta {
        TableMeta {
            level,
            number: f.number,
            size: f.size,
            smallest: style.show(&f.smallest),
            largest: style.show(&f.largest),
            largest_bound: f.largest_bound,
            smallest_seqno: f.smallest_seqno,
            largest_seqno: f.largest_seqno,
        }
    }

    /// `num:size[seq .. seq]['smallest' .. 'largest']`, or `.. 'largest')`
    /// or `.. +inf)`.
    pub fn line(&self) -> String {
        format!(
            "{}:{}[{} .. {}]['{}' .. {}",
            self.number,
            self.size,
            self.smallest_seqno,
            self.largest_seqno,
            self.smallest,
            self.largest_bound.close(&format!("'{}'", self.largest))
        )
    }
}

/// One version edit.
#[derive(Debug, Serialize)]
pub struct EditReport {
    pub offset: u64,
    /// The keyspace the log number, tables, creation and drop are about.
    pub keyspace: u32,
    /// Its name, from this or an earlier edit that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyspace_name: Option<String>,
    /// The edit creates the keyspace with this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_keyspace: Option<String>,
    /// The edit drops the keyspace.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drop_keyspace: bool,
    /// Other keyspaces' log numbers moved forward: (keyspace id, log number).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keyspace_log_numbers: Vec<(u32, u64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_keyspace_id: Option<u32>,
    pub log_number: Option<u64>,
    pub next_file_number: Option<u64>,
    pub last_sequence: Option<u64>,
    pub deleted: Vec<(usize, u64)>,
    pub added: Vec<TableMeta>,
    /// Other keyspaces' log numbers and tables changed in the same record
    /// (all or none: a close, a resume, an open's replay).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<EditReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EditReport {
    fn of(offset: u64, e: &VersionEdit, names: &mut KeyspaceNames, style: Style) -> EditReport {
        EditReport {
            offset,
            keyspace: e.keyspace,
            keyspace_name: {
                names.learn(e);
                names.name(e.keyspace)
            },
            create_keyspace: e.create_keyspace.clone(),
            drop_keyspace: e.drop_keyspace,
            keyspace_log_numbers: e.keyspace_log_numbers.clone(),
            next_keyspace_id: e.next_keyspace_id,
            log_number: e.log_number,
            next_file_number: e.next_file_number,
            last_sequence: e.last_sequence,
            deleted: e.deleted_files.clone(),
            added: e
                .new_files
                .iter()
                .map(|(l, f)| TableMeta::of(*l, f, style))
                .collect(),
            parts: e
                .parts
                .iter()
                .map(|part| EditReport::of(offset, part, names, style))
                .collect(),
            error: None,
        }
    }
}

/// One live keyspace: its tables per level.
#[derive(Debug, Serialize)]
pub struct KeyspaceVersion {
    pub id: u32,
    pub name: String,
    /// WALs below this hold nothing of it that is not in its tables.
    pub log_number: u64,
    pub levels: Vec<Vec<TableMeta>>,
    pub files: usize,
    pub bytes: u64,
}

impl KeyspaceVersion {
    pub fn of(id: u32, ks: &KeyspaceContents, style: Style) -> KeyspaceVersion {
        let levels: Vec<Vec<TableMeta>> = ks
            .levels
            .iter()
            .enumerate()
            .map(|(level, files)| {
                files
                    .values()
                    .map(|f| TableMeta::of(level, f, style))
                    .collect()
            })
            .collect();
        KeyspaceVersion {
            id,
            name: ks.name.clone(),
            log_number: ks.log_number,
            files: levels.iter().map(Vec::len).sum(),
            bytes: levels.iter().flatten().map(|f| f.size).sum(),
            levels,
        }
    }

    /// `--- keyspace "name" (id N) log_number L: F files, B bytes ---`,
    /// ldb's `Column family "name" (ID N)` line.
    pub fn heading(&self) -> String {
        format!(
            "--- keyspace \"{}\" (id {}) log_number {}: {} files, {} bytes ---",
            escaped(self.name.as_bytes()),
            self.id,
            self.log_number,
            self.files,
            self.bytes
        )
    }
}

/// The live version: each live keyspace's tables, and the counters.
#[derive(Debug, Serialize)]
pub struct LiveVersion {
    /// Edits applied to reach it (RocksDB's "version#").
    pub version: usize,
    /// By id, the default keyspace (id 0) first.
    pub keyspaces: Vec<KeyspaceVersion>,
    /// The smallest log number of a live keyspace: WALs below it are not
    /// needed.
    pub log_number: u64,
    pub next_file_number: u64,
    pub last_sequence: u64,
    pub next_keyspace_id: u32,
    pub total_files: usize,
    pub total_bytes: u64,
    /// True when the manifest is damaged and this is the version before the damage.
    pub before_damage: bool,
}

impl LiveVersion {
    pub fn of(c: &ManifestContents, before_damage: bool, style: Style) -> LiveVersion {
        let keyspaces: Vec<KeyspaceVersion> = c
            .keyspaces
            .iter()
            .map(|(&id, ks)| KeyspaceVersion::of(id, ks, style))
            .collect();
        LiveVersion {
            version: c.edits.len(),
            total_files: keyspaces.iter().map(|k| k.files).sum(),
            total_bytes: keyspaces.iter().map(|k| k.bytes).sum(),
            keyspaces,
            log_number: c.log_number(),
            next_file_number: c.next_file_number,
            last_sequence: c.last_sequence,
            next_keyspace_id: c.next_keyspace_id,
            before_damage,
        }
    }

    pub fn text(&self, out: &mut String) {
        if self.before_damage {
            out.push_str("live version as of the last edit before the damage:\n");
        }
        for ks in &self.keyspaces {
            let _ = writeln!(out, "{}", ks.heading());
            for (level, files) in ks.levels.iter().enumerate() {
                let _ = writeln!(out, "--- level {level} --- version# {} ---", self.version);
                for f in files {
                    let _ = writeln!(out, " {}", f.line());
                }
            }
        }
        let _ = writeln!(
            out,
            "log_number {} next_file_number {} last_sequence {} next_keyspace_id {}",
            self.log_number, self.next_file_number, self.last_sequence, self.next_keyspace_id
        );
        let _ = writeln!(
            out,
            "total: {} keyspaces, {} files, {} bytes",
            self.keyspaces.len(),
            self.total_files,
            self.total_bytes
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
    let mut names = KeyspaceNames::default();
    while let Ok(Some(record)) = reader.next_record() {
        edits.push(match VersionEdit::decode(record.data) {
            Ok(e) => EditReport::of(record.offset, &e, &mut names, style),
            Err(e) => EditReport {
                offset: record.offset,
                keyspace: 0,
                keyspace_name: None,
                create_keyspace: None,
                drop_keyspace: false,
                keyspace_log_numbers: Vec::new(),
                next_keyspace_id: None,
                log_number: None,
                next_file_number: None,
                last_sequence: None,
                deleted: Vec::new(),
                added: Vec::new(),
                parts: Vec::new(),
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
    edit_body_text(out, e);
    for part in &e.parts {
        out.push_str("  and");
        edit_body_text(out, part);
    }
}

/// An edit's keyspace change, counters and tables (after its heading).
fn edit_body_text(out: &mut String, e: &EditReport) {
    if e.error.is_none() {
        match &e.keyspace_name {
            Some(name) => {
                let _ = write!(
                    out,
                    " keyspace \"{}\" (id {})",
                    escaped(name.as_bytes()),
                    e.keyspace
                );
            }
            None => {
                let _ = write!(out, " keyspace #{}", e.keyspace);
            }
        }
    }
    if let Some(name) = &e.create_keyspace {
        let _ = write!(out, " create_keyspace \"{}\"", escaped(name.as_bytes()));
    }
    if e.drop_keyspace {
        out.push_str(" drop_keyspace");
    }
    for (id, number) in &e.keyspace_log_numbers {
        let _ = write!(out, " keyspace_log_number {id}:{number}");
    }
    if let Some(id) = e.next_keyspace_id {
        let _ = write!(out, " next_keyspace_id {id}");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(largest: &[u8], largest_bound: LargestBound) -> (String, serde_json::Value) {
        let meta = FileMeta {
            number: 7,
            size: 100,
            smallest: b"a".to_vec(),
            largest: largest.to_vec(),
            largest_bound,
            smallest_seqno: 1,
            largest_seqno: 2,
            blob_files: Vec::new(),
            blob_refs: Vec::new(),
        };
        let t = TableMeta::of(1, &meta, Style::default());
        (t.line(), serde_json::to_value(&t).unwrap())
    }

    #[test]
    fn a_tables_range_closes_as_its_largest_key_bounds_it() {
        let (line, json) = shown(b"m", LargestBound::Included);
        assert_eq!(line, "7:100[1 .. 2]['a' .. 'm']");
        assert!(json.get("largest_bound").is_none(), "{json}");
        let (line, json) = shown(b"m", LargestBound::Excluded);
        assert_eq!(line, "7:100[1 .. 2]['a' .. 'm')");
        assert_eq!(json["largest_bound"], "excluded");
        let (line, json) = shown(b"", LargestBound::Unbounded);
        assert_eq!(line, "7:100[1 .. 2]['a' .. +inf)");
        assert_eq!(json["largest_bound"], "unbounded");
    }
}
