//! Blob files (`NNNNNN.blob`, docs/blob-format.md): `scan` lists every
//! record (key, value or its size, where it lies), `check` and `verify`
//! read every record and check it against the footer, printing only the
//! summary.

use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;
use strata_sstable::blob::BlobFileReader;
use strata_sstable::bytes::Bytes;

use crate::escape::Style;
use crate::output::{problems_text, Problem, Report};

/// One record as shown.
#[derive(Debug, Serialize)]
pub struct BlobEntry {
    pub key: String,
    /// Where its stored value starts (a blob reference's offset).
    pub offset: u64,
    /// The stored value's length (a blob reference's size).
    pub size: u32,
    /// The value, decompressed (shown with `scan` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What a read of a blob file found.
#[derive(Debug, Serialize)]
pub struct BlobReport {
    pub keyspace_id: Option<u32>,
    pub records: u64,
    pub value_bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<BlobEntry>,
    pub problems: Vec<Problem>,
}

impl Report for BlobReport {
    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn text(&self, out: &mut String) {
        for e in &self.entries {
            let _ = write!(out, "'{}' @{} size:{}", e.key, e.offset, e.size);
            match &e.value {
                Some(v) => {
                    let _ = writeln!(out, " => {v}");
                }
                None => out.push('\n'),
            }
        }
        if let Some(id) = self.keyspace_id {
            let _ = writeln!(
                out,
                "blob file of keyspace {id}: {} records, {} bytes of values read",
                self.records, self.value_bytes
            );
        }
        problems_text(out, &self.problems);
    }
}

/// Read every record of the blob file `data`; with `show`, list them.
pub fn read(data: &[u8], show: bool, style: Style) -> BlobReport {
    let mut report = BlobReport {
        keyspace_id: None,
        records: 0,
        value_bytes: 0,
        entries: Vec::new(),
        problems: Vec::new(),
    };
    let problem = |e: strata_sstable::Error| {
        let (offset, reason) = match e {
            strata_sstable::Error::Corruption { offset, reason } => (Some(offset), reason),
            other => (None, other.to_string()),
        };
        Problem {
            file: None,
            offset,
            reason,
        }
    };
    // The file number is only checked against references; 0 here.
    let reader = match BlobFileReader::open(Arc::new(Bytes::copy_from_slice(data)), 0) {
        Ok(r) => r,
        Err(e) => {
            report.problems.push(problem(e));
            return report;
        }
    };
    report.keyspace_id = Some(reader.keyspace_id());
    for record in reader.iter() {
        match record {
            Ok(r) => {
                report.records += 1;
                report.value_bytes += r.value.len() as u64;
                if show {
                    report.entries.push(BlobEntry {
                        key: style.show(&r.key),
                        offset: r.offset,
                        size: r.size,
                        value: Some(style.show(&r.value)),
                    });
                }
            }
            Err(e) => {
                report.problems.push(problem(e));
                break;
            }
        }
    }
    report
}
