//! `scan`: the entries of a table, one line each, as RocksDB prints them:
//! `'key' seq:N, type:T => value`, bounded by `--from`/`--to` (user keys,
//! from inclusive, to exclusive) or `--prefix`, at most `--read_num`;
//! then the table's range tombstones that overlap those bounds, one line
//! per fragment: `'start' .. 'end' @seq RANGE_DEL`, `.. +inf` when it has
//! no end (the fragments a get or a scan weighs, as stored).

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use strata_sstable::bytes::Bytes;
use strata_sstable::{encode_seek_key, Table, TableIter, ValueKind, MAX_SEQNO};

use crate::escape::Style;
use crate::output::{problems_text, Problem, Report};
use crate::table;

/// Which entries to show.
#[derive(Clone, Debug, Default)]
pub struct Bounds {
    /// First user key shown (inclusive).
    pub from: Option<Vec<u8>>,
    /// User keys from here on are not shown (exclusive).
    pub to: Option<Vec<u8>>,
    /// Only user keys starting with this.
    pub prefix: Option<Vec<u8>>,
    /// At most this many entries.
    pub read_num: Option<u64>,
}

impl Bounds {
    /// Where a scan starts: the smallest internal key of the first user key
    /// that can be in bounds.
    fn start(&self) -> Option<&[u8]> {
        match (&self.prefix, &self.from) {
            (Some(p), _) => Some(p),
            (None, Some(f)) => Some(f),
            (None, None) => None,
        }
    }

    /// Whether the range `[start, end)` (`end` `None`: no end) holds a
    /// user key within the bounds.
    fn overlaps(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        // The bounds as [lower, upper): `to` and the prefix's successor
        // both cut above.
        let lower = match (&self.prefix, &self.from) {
            (Some(p), Some(f)) => p.max(f).as_slice(),
            (Some(p), None) => p.as_slice(),
            (None, Some(f)) => f.as_slice(),
            (None, None) => &[],
        };
        let after_prefix = self.prefix.as_deref().and_then(successor);
        let upper = match (self.to.as_deref(), after_prefix.as_deref()) {
            (Some(t), Some(p)) => Some(t.min(p)),
            (t, p) => t.or(p),
        };
        end.is_none_or(|e| e > lower) && upper.is_none_or(|u| start < u)
    }

    /// True once `user_key` (in ascending order) is past the bounds.
    fn past_end(&self, user_key: &[u8]) -> bool {
        self.to.as_deref().is_some_and(|to| user_key >= to)
            || self
                .prefix
                .as_deref()
                .is_some_and(|p| !user_key.starts_with(p))
    }
}

/// The first byte string after every one starting with `prefix`: `None`
/// for an empty or all-0xff prefix, which has none.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut s = prefix[..=last].to_vec();
    s[last] += 1;
    Some(s)
}

/// Walks `table` in order from the first entry at or after `start` (a user
/// key), calling `visit` until it returns false. An error (a damaged block)
/// ends the walk and is returned, located.
pub fn walk(
    data: &Bytes,
    table: &Arc<Table>,
    start: Option<&[u8]>,
    mut visit: impl FnMut(&TableIter) -> bool,
) -> Result<(), Problem> {
    let mut it = table.iter();
    let mut step = match start {
        Some(user_key) => {
            let mut target = Vec::with_capacity(user_key.len() + 8);
            encode_seek_key(&mut target, user_key, MAX_SEQNO);
            it.seek(&target)
        }
        None => it.seek_to_first(),
    };
    loop {
        if let Err(e) = step {
            return Err(table::locate(data, Problem::from_table(&e)));
        }
        if !it.valid() || !visit(&it) {
            return Ok(());
        }
        step = it.next();
    }
}

/// One entry as shown.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub key: String,
    pub seq: u64,
    /// 1 for a put, 0 for a delete (the kind byte, as RocksDB prints it).
    #[serde(rename = "type")]
    pub kind_byte: u8,
    pub kind: &'static str,
    pub value: String,
    /// An expiring put's expiry, micros since the Unix epoch (its value
    /// is shown without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_micros: Option<u64>,
}

impl Entry {
    pub fn of(it: &TableIter, style: Style) -> Entry {
        let parsed = it.parsed_key();
        let (expires_at_micros, value) = split_expiry(parsed.kind, it.value());
        Entry {
            key: style.show(parsed.user_key),
            seq: parsed.seqno,
            kind_byte: parsed.kind as u8,
            kind: kind_name(parsed.kind),
            // A blob reference is shown as where the value lives.
            value: match (parsed.kind, strata_sstable::blob::BlobRef::decode(value)) {
                (ValueKind::BlobIndex, Some(r)) => format!(
                    "<blob {:06}.blob offset {} size {}>",
                    r.file_number, r.offset, r.size
                ),
                _ => style.show(value),
            },
            expires_at_micros,
        }
    }

    /// `'key' seq:N, type:T => value`, and ` (expires at N)` for an
    /// expiring put.
    pub fn line(&self, out: &mut String) {
        let _ = write!(
            out,
            "'{}' seq:{}, type:{} => {}",
            self.key, self.seq, self.kind_byte, self.value
        );
        match self.expires_at_micros {
            Some(at) => {
                let _ = writeln!(out, " (expires at {at} us)");
            }
            None => out.push('\n'),
        }
    }
}

/// An expiring put's expiry and the value after it (docs/design/ttl.md);
/// other kinds, and a value too short to hold an expiry, as they are.
pub fn split_expiry(kind: ValueKind, value: &[u8]) -> (Option<u64>, &[u8]) {
    match (kind, value.split_first_chunk::<8>()) {
        (ValueKind::PutWithExpiry, Some((expiry, rest))) => {
            (Some(u64::from_le_bytes(*expiry)), rest)
        }
        _ => (None, value),
    }
}

pub fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Put => "PUT",
        ValueKind::Delete => "DELETE",
        ValueKind::Merge => "MERGE",
        ValueKind::RangeDelete => "DELETE_RANGE",
        ValueKind::PutWithExpiry => "PUT_WITH_EXPIRY",
        ValueKind::BlobIndex => "BLOB_INDEX",
    }
}

/// One range tombstone fragment as shown.
#[derive(Debug, Serialize)]
pub struct RangeDeletion {
    pub start: String,
    /// `None` (JSON null): the range has no end.
    pub end: Option<String>,
    pub seq: u64,
}

impl RangeDeletion {
    /// `'start' .. 'end' @seq RANGE_DEL`, or `.. +inf`.
    pub fn line(&self, out: &mut String) {
        let end = match &self.end {
            Some(e) => format!("'{e}'"),
            None => "+inf".to_owned(),
        };
        let _ = writeln!(out, "'{}' .. {end} @{} RANGE_DEL", self.start, self.seq);
    }
}

/// The result of `scan`.
#[derive(Debug, Serialize)]
pub struct ScanReport {
    pub from: Option<String>,
    pub to: Option<String>,
    pub prefix: Option<String>,
    pub entries: Vec<Entry>,
    /// The range tombstone fragments overlapping the bounds, in the
    /// table's order (start ascending, newest first).
    pub range_deletions: Vec<RangeDeletion>,
    pub problems: Vec<Problem>,
}

/// Scans `data` as a table within `bounds`.
pub fn scan(data: &Bytes, bounds: &Bounds, verify_checksums: bool, style: Style) -> ScanReport {
    let mut report = ScanReport {
        from: bounds.from.as_deref().map(|k| style.show(k)),
        to: bounds.to.as_deref().map(|k| style.show(k)),
        prefix: bounds.prefix.as_deref().map(|k| style.show(k)),
        entries: Vec::new(),
        range_deletions: Vec::new(),
        problems: Vec::new(),
    };
    let table = match table::open(data, verify_checksums) {
        Ok(t) => t,
        Err(p) => {
            report.problems.push(p);
            return report;
        }
    };
    let limit = bounds.read_num.unwrap_or(u64::MAX);
    let entries = &mut report.entries;
    let walked = walk(data, &table, bounds.start(), |it| {
        if entries.len() as u64 >= limit || bounds.past_end(it.parsed_key().user_key) {
            return false;
        }
        entries.push(Entry::of(it, style));
        true
    });
    if let Err(p) = walked {
        report.problems.push(p);
    }
    if let Some(tombstones) = table.range_tombstones() {
        report.range_deletions = tombstones
            .fragments()
            .filter(|f| bounds.overlaps(&f.start, f.end.as_deref()))
            .map(|f| RangeDeletion {
                start: style.show(&f.start),
                end: f.end.as_deref().map(|e| style.show(e)),
                seq: f.seqno,
            })
            .collect();
    }
    report
}

impl Report for ScanReport {
    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn text(&self, out: &mut String) {
        let bound = |b: &Option<String>| b.clone().unwrap_or_default();
        match &self.prefix {
            Some(p) => {
                let _ = writeln!(out, "prefix [{p}]");
            }
            None => {
                let _ = writeln!(out, "from [{}] to [{}]", bound(&self.from), bound(&self.to));
            }
        }
        for e in &self.entries {
            e.line(out);
        }
        for r in &self.range_deletions {
            r.line(out);
        }
        problems_text(out, &self.problems);
    }
}
