//! `check` (the default table command): read every entry, checking each
//! block on the way, keys in strictly increasing order, and the totals
//! against the properties block. The range tombstone fragments are checked
//! by the reader when it opens the table (their order, their count against
//! the properties); their sequence numbers count toward the table's
//! sequence range.

use std::fmt::Write as _;

use serde::Serialize;
use strata_sstable::bytes::Bytes;
use strata_sstable::{compare_internal_keys, ValueKind};

use crate::escape::escaped;
use crate::output::{problems_text, Problem, Report};
use crate::scan::walk;
use crate::table;

/// What `check` found.
#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub entries_read: u64,
    pub deletions_read: u64,
    /// Range tombstone fragments (the `strata.range_del` block).
    pub range_deletions: u64,
    /// What the properties block says (absent if the table did not open).
    pub properties_entries: Option<u64>,
    pub properties_deletions: Option<u64>,
    pub problems: Vec<Problem>,
}

/// Everything gathered on one pass over the entries.
#[derive(Default)]
struct Seen {
    entries: u64,
    deletions: u64,
    first_user_key: Option<Vec<u8>>,
    last_key: Vec<u8>,
    min_seqno: u64,
    max_seqno: u64,
    disorder: Option<String>,
}

/// Checks `data` as a table.
pub fn check(data: &Bytes, verify_checksums: bool) -> CheckReport {
    let mut report = CheckReport::default();
    let table = match table::open(data, verify_checksums) {
        Ok(t) => t,
        Err(p) => {
            report.problems.push(p);
            return report;
        }
    };
    let props = table.properties();
    report.properties_entries = Some(props.num_entries);
    report.properties_deletions = Some(props.num_deletions);

    let mut seen = Seen {
        min_seqno: u64::MAX,
        ..Seen::default()
    };
    let walked = walk(data, &table, None, |it| {
        let key = it.key();
        if seen.entries > 0
            && compare_internal_keys(&seen.last_key, key).is_ge()
            && seen.disorder.is_none()
        {
            seen.disorder = Some(format!(
                "entry {} ('{}') does not sort after the entry before it",
                seen.entries,
                escaped(it.parsed_key().user_key)
            ));
        }
        let parsed = it.parsed_key();
        if seen.first_user_key.is_none() {
            seen.first_user_key = Some(parsed.user_key.to_vec());
        }
        seen.entries += 1;
        seen.deletions += u64::from(parsed.kind == ValueKind::Delete);
        seen.min_seqno = seen.min_seqno.min(parsed.seqno);
        seen.max_seqno = seen.max_seqno.max(parsed.seqno);
        seen.last_key.clear();
        seen.last_key.extend_from_slice(key);
        true
    });
    report.entries_read = seen.entries;
    report.deletions_read = seen.deletions;
    if let Err(p) = walked {
        report.problems.push(p);
        return report;
    }
    // The properties' sequence range covers the tombstones too.
    if let Some(tombstones) = table.range_tombstones() {
        report.range_deletions = tombstones.len() as u64;
        for f in tombstones.fragments() {
            seen.min_seqno = seen.min_seqno.min(f.seqno);
            seen.max_seqno = seen.max_seqno.max(f.seqno);
        }
    }
    let mut mismatch = |what: &str, read: String, stored: String| {
        report.problems.push(Problem::nowhere(format!(
            "{what}: read {read}, the properties block says {stored}"
        )));
    };
    if seen.entries != props.num_entries {
        mismatch(
            "entry count",
            seen.entries.to_string(),
            props.num_entries.to_string(),
        );
    }
    if seen.deletions != props.num_deletions {
        mismatch(
            "deletion count",
            seen.deletions.to_string(),
            props.num_deletions.to_string(),
        );
    }
    let any = seen.entries > 0 || report.range_deletions > 0;
    if any && (seen.min_seqno, seen.max_seqno) != (props.min_seqno, props.max_seqno) {
        mismatch(
            "sequence range",
            format!("[{} .. {}]", seen.min_seqno, seen.max_seqno),
            format!("[{} .. {}]", props.min_seqno, props.max_seqno),
        );
    }
    if seen.entries > 0 {
        let last_user_key = seen
            .last_key
            .get(..seen.last_key.len().saturating_sub(8))
            .unwrap_or_default();
        let first = seen.first_user_key.as_deref().unwrap_or_default();
        if first != props.smallest_user_key.as_slice() {
            mismatch(
                "smallest user key",
                escaped(first),
                escaped(&props.smallest_user_key),
            );
        }
        if last_user_key != props.largest_user_key.as_slice() {
            mismatch(
                "largest user key",
                escaped(last_user_key),
                escaped(&props.largest_user_key),
            );
        }
    }
    if let Some(d) = seen.disorder {
        report.problems.push(Problem::nowhere(d));
    }
    // Aligned tables (format versions 2 to 5) have zero padding between
    // data blocks, which no entry covers: check it is zeros.
    if verify_checksums && report.problems.is_empty() && props.data_block_alignment > 0 {
        if let Err(e) = table.verify() {
            report
                .problems
                .push(table::locate(data, Problem::from_table(&e)));
        }
    }
    report
}

impl Report for CheckReport {
    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "read {} entries ({} deletions)",
            self.entries_read, self.deletions_read
        );
        if self.range_deletions > 0 {
            let _ = writeln!(out, "{} range deletions", self.range_deletions);
        }
        if let (Some(e), Some(d)) = (self.properties_entries, self.properties_deletions) {
            let _ = writeln!(out, "properties block: {e} entries ({d} deletions)");
        }
        if self.ok() {
            out.push_str("ok\n");
        }
        problems_text(out, &self.problems);
    }
}
