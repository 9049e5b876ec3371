//! What a file is, told from its content alone: a table ends with the table
//! magic; a WAL and a MANIFEST share the log framing and differ in their
//! records (write batches or version edits); CURRENT names a manifest.

use std::fmt::Write as _;

use serde::Serialize;
use strata::inspect::{parse_file_name, DecodedBatch, FileKind, VersionEdit};
use strata_sstable::{Footer, FOOTER_LEN, MAGIC_BYTES};
use strata_wal::{Reader, RecoveryMode};

use crate::output::Report;
use crate::wal::describe_end;

/// Records looked at to tell a WAL from a MANIFEST.
const RECORDS_SAMPLED: usize = 8;

/// The kinds of file sst-dump knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An SSTable.
    Table,
    /// A blob file: values stored apart from their keys.
    Blob,
    /// A write-ahead log: records are write batches.
    Wal,
    /// A MANIFEST: records are version edits.
    Manifest,
    /// A CURRENT file naming the live manifest.
    Current,
    /// No bytes at all: a log nothing was written to yet (or a LOCK file).
    Empty,
    /// A database directory.
    Directory,
    /// None of the above.
    Unknown,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::Blob => "blob",
            Kind::Wal => "wal",
            Kind::Manifest => "manifest",
            Kind::Current => "current",
            Kind::Empty => "empty",
            Kind::Directory => "directory",
            Kind::Unknown => "unknown",
        }
    }
}

/// What `identify` found.
#[derive(Debug, Serialize)]
pub struct Identity {
    pub kind: Kind,
    /// File size in bytes.
    pub size: u64,
    /// One line on what was recognised.
    pub detail: String,
    /// Why each kind was ruled out (for `unknown`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl Report for Identity {
    /// Identifying is never corruption by itself, unless nothing fits.
    fn ok(&self) -> bool {
        self.kind != Kind::Unknown
    }

    fn text(&self, out: &mut String) {
        let _ = writeln!(out, "{}: {}", self.kind.name(), self.detail);
        for r in &self.reasons {
            let _ = writeln!(out, "  {r}");
        }
    }
}

/// The identity of a directory (the caller checked it is one).
pub fn directory() -> Identity {
    Identity {
        kind: Kind::Directory,
        size: 0,
        detail: "a directory: read as a database (CURRENT, MANIFEST, live files)".into(),
        reasons: Vec::new(),
    }
}

/// Tells what `data` is. Never panics.
pub fn identify(data: &[u8]) -> Identity {
    let size = data.len() as u64;
    let found = |kind, detail: String| Identity {
        kind,
        size,
        detail,
        reasons: Vec::new(),
    };
    if data.is_empty() {
        return found(
            Kind::Empty,
            "no bytes: a log with nothing written yet, or a LOCK file".into(),
        );
    }
    if let Some(name) = current_target(data) {
        return found(Kind::Current, format!("names {name}"));
    }
    if data.starts_with(&strata_sstable::blob::format::BLOB_MAGIC) {
        return found(Kind::Blob, "blob file (docs/blob-format.md)".into());
    }
    let mut reasons = Vec::new();
    let has_magic = data.len() >= FOOTER_LEN && data.ends_with(&MAGIC_BYTES);
    if has_magic {
        match Footer::decode(data) {
            Ok(f) => {
                return found(
                    Kind::Table,
                    format!(
                        "sstable, format version {}, index block at {} ({} bytes), meta-index at {} ({} bytes)",
                        f.version, f.index.offset, f.index.size, f.meta_index.offset, f.meta_index.size
                    ),
                )
            }
            Err(e) => reasons.push(format!("table magic present but the footer is damaged: {e}")),
        }
    } else if data.len() < FOOTER_LEN {
        reasons.push(format!(
            "not a table: {} bytes is shorter than a table footer ({FOOTER_LEN})",
            data.len()
        ));
    } else {
        reasons.push("not a table: the last 8 bytes are not the table magic".into());
    }
    match classify_log(data) {
        Ok((kind, detail)) => {
            return Identity {
                kind,
                size,
                detail,
                reasons: Vec::new(),
            }
        }
        Err(why) => reasons.push(why),
    }
    if has_magic {
        // A table whose footer is damaged is still best read as a table: its
        // commands say exactly what is wrong with the footer.
        return Identity {
            kind: Kind::Table,
            size,
            detail: "sstable with a damaged footer".into(),
            reasons,
        };
    }
    Identity {
        kind: Kind::Unknown,
        size,
        detail: "not a strata table, WAL, MANIFEST or CURRENT file".into(),
        reasons,
    }
}

/// `MANIFEST-NNNNNN` if `data` is the content of a CURRENT file.
fn current_target(data: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(data).ok()?.strip_suffix('\n')?;
    matches!(parse_file_name(name), Some(FileKind::Manifest(_))).then_some(name)
}

/// Reads the first few checksum-valid records (skipping damage) and asks
/// whether all of them are write batches, or all version edits.
fn classify_log(data: &[u8]) -> Result<(Kind, String), String> {
    let mut reader = Reader::new(data, RecoveryMode::SkipAnyCorruptedRecords);
    let (mut batches, mut edits, mut seen) = (true, true, 0usize);
    let mut first: Option<(u64, String, String)> = None;
    while seen < RECORDS_SAMPLED {
        let record = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => break,
        };
        let as_batch = batch_summary(record.data);
        let as_edit = edit_summary(record.data);
        batches &= as_batch.is_ok();
        edits &= as_edit.is_ok();
        if first.is_none() {
            let show = |r: Result<String, String>| r.unwrap_or_else(|e| e);
            first = Some((record.offset, show(as_batch), show(as_edit)));
        }
        seen += 1;
    }
    let Some((offset, batch, edit)) = first else {
        let end = reader
            .end()
            .map(describe_end)
            .unwrap_or_else(|| "unreadable".into());
        return Err(format!(
            "not a log: no complete checksum-valid record ({end})"
        ));
    };
    match (batches, edits) {
        (true, false) => Ok((Kind::Wal, format!("write-ahead log; first record at offset {offset}: {batch}"))),
        (false, true) => Ok((Kind::Manifest, format!("MANIFEST; first record at offset {offset}: {edit}"))),
        (true, true) => Err(format!(
            "log framing, but its records read both as write batches and as version edits (first at offset {offset})"
        )),
        (false, false) => Err(format!(
            "log framing, but the records are neither write batches nor version edits; first record at offset {offset}: as a batch: {batch}; as an edit: {edit}"
        )),
    }
}

/// `Ok(summary)` when `payload` is a whole, well-formed, non-empty batch,
/// or a WAL's log start record.
fn batch_summary(payload: &[u8]) -> Result<String, String> {
    if let Ok(strata::inspect::WalRecord::LogStart {
        previous_wal,
        previous_len,
    }) = strata::inspect::WalRecord::parse(payload)
    {
        return Ok(format!(
            "log start, following WAL {previous_wal} ({previous_len} bytes)"
        ));
    }
    let batch = DecodedBatch::new(payload).map_err(|e| e.reason.to_string())?;
    let mut ops = 0u64;
    for op in batch.iter() {
        op.map_err(|e| format!("{} at byte {}", e.reason, e.offset))?;
        ops += 1;
    }
    if ops == 0 {
        return Err("a batch with no records".into());
    }
    Ok(format!(
        "write batch, sequence {}, {ops} ops",
        batch.sequence()
    ))
}

/// `Ok(summary)` when `payload` is a non-empty version edit.
fn edit_summary(payload: &[u8]) -> Result<String, String> {
    let edit =
        VersionEdit::decode(payload).map_err(|e| format!("{} at byte {}", e.reason, e.offset))?;
    if edit == VersionEdit::default() {
        return Err("an empty version edit".into());
    }
    Ok(format!(
        "version edit, {} new and {} deleted files",
        edit.new_files.len(),
        edit.deleted_files.len()
    ))
}
