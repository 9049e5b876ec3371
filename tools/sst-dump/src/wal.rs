//! A write-ahead log, record by record, like ldb's `dump_wal`: sequence
//! number, operation count, byte size, file offset, and the operations
//! with their keyspace (ldb: `PUT(cf)`; a range delete as
//! `DELETE_RANGE(cf) 'start' .. 'end'`, `.. +inf` without end); then where and how the log ends. Damaged regions are skipped (and
//! reported) so that the records after them are shown too.

use std::fmt::Write as _;

use serde::Serialize;
use strata::inspect::DecodedBatch;
use strata_wal::{LogEnd, Reader, RecoveryMode};

use crate::escape::Style;
use crate::keyspaces::KeyspaceNames;
use crate::output::{problems_text, Problem, Report};
use crate::scan::{kind_name, split_expiry};

/// One operation of a batch.
#[derive(Debug, Serialize)]
pub struct Op {
    pub op: &'static str,
    /// The keyspace's id (0: the default keyspace).
    pub keyspace: u32,
    /// Its name, when the MANIFEST beside the log gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyspace_name: Option<String>,
    /// Shown in text after the operation: `PUT(name)`, or `PUT(#id)`
    /// when the name is not known; empty for the default keyspace.
    #[serde(skip)]
    pub keyspace_label: String,
    /// A range delete's start, or the key.
    pub key: String,
    /// A put's value (with `--print_value`); an expiring put's without
    /// its expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// An expiring put's expiry (microseconds since the Unix epoch), read
    /// from the first 8 bytes of its stored value (docs/design/ttl.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_micros: Option<u64>,
    /// A range delete's end: `Some(None)` (JSON null) when it has none;
    /// absent for other operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<Option<String>>,
}

/// One record of the log.
#[derive(Debug, Serialize)]
pub struct WalRecord {
    pub offset: u64,
    pub byte_size: usize,
    pub sequence: Option<u64>,
    pub count: Option<u32>,
    pub ops: Vec<Op>,
    /// A log start record: the WAL this one follows and its length
    /// (`src/wal_record.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows_wal: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows_wal_bytes: Option<u64>,
    /// The record is checksum-valid but its batch is malformed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a log ends.
#[derive(Debug, Serialize)]
pub struct End {
    /// "clean", "torn_tail" or "corruption".
    pub state: &'static str,
    pub offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl End {
    pub fn of(end: &LogEnd) -> End {
        match end {
            LogEnd::Clean { offset } => End {
                state: "clean",
                offset: *offset,
                reason: None,
            },
            LogEnd::TornTail { offset, reason } => End {
                state: "torn_tail",
                offset: *offset,
                reason: Some(reason.to_string()),
            },
            LogEnd::Corruption { offset, reason } => End {
                state: "corruption",
                offset: *offset,
                reason: Some(reason.to_string()),
            },
        }
    }
}

/// One line on how a log ends.
pub fn describe_end(end: &LogEnd) -> String {
    match end {
        LogEnd::Clean { offset } => format!("clean end at offset {offset}"),
        LogEnd::TornTail { offset, reason } => format!("torn tail at offset {offset}: {reason}"),
        LogEnd::Corruption { offset, reason } => format!("corruption at offset {offset}: {reason}"),
    }
}

/// A damaged region whose records were dropped.
#[derive(Debug, Serialize)]
pub struct Skipped {
    pub offset: u64,
    pub length: u64,
    pub detected_at: u64,
    pub reason: String,
}

/// The result of dumping a WAL.
#[derive(Debug, Serialize)]
pub struct WalReport {
    pub records: Vec<WalRecord>,
    pub skipped: Vec<Skipped>,
    pub end: End,
    pub problems: Vec<Problem>,
    /// Only the summary is shown (check/verify).
    #[serde(skip)]
    pub summary_only: bool,
}

/// Reads `data` as a WAL; keyspace ids are named from `names` when given.
/// Never panics.
pub fn dump(
    data: &[u8],
    print_values: bool,
    style: Style,
    names: Option<&KeyspaceNames>,
) -> WalReport {
    let mut reader = Reader::new(data, RecoveryMode::SkipAnyCorruptedRecords);
    let mut records = Vec::new();
    let mut problems = Vec::new();
    while let Ok(Some(record)) = reader.next_record() {
        let r = decode(record.offset, record.data, print_values, style, names);
        if let Some(e) = &r.error {
            problems.push(Problem::at(
                record.offset,
                format!("record holds a malformed write batch: {e}"),
            ));
        }
        records.push(r);
    }
    let skipped: Vec<Skipped> = reader
        .anomalies()
        .iter()
        .map(|a| Skipped {
            offset: a.offset,
            length: a.length,
            detected_at: a.detected_at,
            reason: a.reason.to_string(),
        })
        .collect();
    for s in &skipped {
        problems.push(Problem::at(
            s.detected_at,
            format!(
                "{} ({} bytes from offset {} skipped)",
                s.reason, s.length, s.offset
            ),
        ));
    }
    problems.sort_by_key(|p| p.offset);
    // Skip mode never fails; an end is always there after Ok(None).
    let end = reader.end().map(End::of).unwrap_or(End {
        state: "corruption",
        offset: data.len() as u64,
        reason: Some("the reader stopped without an end".into()),
    });
    WalReport {
        records,
        skipped,
        end,
        problems,
        summary_only: false,
    }
}

fn decode(
    offset: u64,
    payload: &[u8],
    print_values: bool,
    style: Style,
    names: Option<&KeyspaceNames>,
) -> WalRecord {
    let mut r = WalRecord {
        offset,
        byte_size: payload.len(),
        sequence: None,
        count: None,
        ops: Vec::new(),
        follows_wal: None,
        follows_wal_bytes: None,
        error: None,
    };
    match strata::inspect::WalRecord::parse(payload) {
        Ok(strata::inspect::WalRecord::LogStart {
            previous_wal,
            previous_len,
        }) => {
            r.follows_wal = Some(previous_wal);
            r.follows_wal_bytes = Some(previous_len);
            return r;
        }
        Ok(strata::inspect::WalRecord::Batch(_)) => {}
        Err(e) => {
            r.error = Some(e);
            return r;
        }
    }
    let batch = match DecodedBatch::new(payload) {
        Ok(b) => b,
        Err(e) => {
            r.error = Some(e.reason.to_string());
            return r;
        }
    };
    r.sequence = Some(batch.sequence());
    r.count = Some(batch.count());
    for op in batch.iter() {
        match op {
            Ok(op) => r.ops.push({
                let (expires_at_micros, value) = split_expiry(op.kind, op.value);
                Op {
                    op: kind_name(op.kind),
                    keyspace: op.keyspace,
                    keyspace_name: names.and_then(|n| n.name(op.keyspace)),
                    keyspace_label: match (op.keyspace, names) {
                        (0, _) => String::new(),
                        (id, Some(n)) => format!("({})", n.label(id)),
                        (id, None) => format!("(#{id})"),
                    },
                    key: style.show(op.key),
                    value: (print_values
                        && matches!(
                            op.kind,
                            strata_sstable::ValueKind::Put
                                | strata_sstable::ValueKind::PutWithExpiry
                        ))
                    .then(|| style.show(value)),
                    expires_at_micros,
                    end: (op.kind == strata_sstable::ValueKind::RangeDelete)
                        .then(|| op.range_end().map(|e| style.show(e))),
                }
            }),
            Err(e) => {
                r.error = Some(format!("{} at byte {} of the batch", e.reason, e.offset));
                break;
            }
        }
    }
    r
}

impl Report for WalReport {
    fn ok(&self) -> bool {
        self.problems.is_empty() && self.end.state != "corruption"
    }

    fn text(&self, out: &mut String) {
        if !self.summary_only {
            out.push_str("Sequence,Count,ByteSize,Physical Offset,Key(s)\n");
            for r in &self.records {
                let num = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
                let _ = write!(
                    out,
                    "{},{},{},{},",
                    num(r.sequence),
                    num(r.count.map(u64::from)),
                    r.byte_size,
                    r.offset
                );
                let ops: Vec<String> = r
                    .ops
                    .iter()
                    .map(|op| match (&op.value, &op.end) {
                        (Some(v), _) => {
                            format!("{}{} '{}' => '{}'", op.op, op.keyspace_label, op.key, v)
                        }
                        (None, Some(end)) => format!(
                            "{}{} '{}' .. {}",
                            op.op,
                            op.keyspace_label,
                            op.key,
                            end.as_ref()
                                .map_or_else(|| "+inf".to_owned(), |e| format!("'{e}'"))
                        ),
                        (None, None) => format!("{}{} '{}'", op.op, op.keyspace_label, op.key),
                    })
                    .zip(&r.ops)
                    .map(|(text, op)| match op.expires_at_micros {
                        Some(at) => format!("{text} (expires at {at} us)"),
                        None => text,
                    })
                    .collect();
                out.push_str(&ops.join(" "));
                if let (Some(wal), Some(bytes)) = (r.follows_wal, r.follows_wal_bytes) {
                    let _ = write!(out, "log start: follows WAL {wal} ({bytes} bytes)");
                }
                if let Some(e) = &r.error {
                    let _ = write!(out, " [malformed batch: {e}]");
                }
                out.push('\n');
            }
        }
        let ops: usize = self.records.iter().map(|r| r.ops.len()).sum();
        let _ = writeln!(out, "{} records, {ops} operations", self.records.len());
        let how = match self.end.state {
            "clean" => "clean".to_string(),
            "torn_tail" => format!(
                "torn tail (the normal end after a crash): {}",
                self.end.reason.as_deref().unwrap_or_default()
            ),
            other => format!(
                "{other}: {}",
                self.end.reason.as_deref().unwrap_or_default()
            ),
        };
        let _ = writeln!(out, "log ends at offset {}: {how}", self.end.offset);
        problems_text(out, &self.problems);
    }
}
