//! `verify`: every block's checksum (data blocks in file order, then
//! filter, index, properties, meta-index) and the footer. Prints `ok` or
//! the first bad block: its offset and what failed.

use std::fmt::Write as _;

use serde::Serialize;
use strata_sstable::bytes::Bytes;

use crate::output::{Problem, Report};
use crate::table;

/// What `verify` found.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Data blocks in the table (when its structure could be read).
    pub data_blocks: Option<u64>,
    /// The first bad block, if any.
    pub problem: Option<Problem>,
}

/// Verifies `data` as a table.
pub fn verify(data: &Bytes) -> VerifyReport {
    // Opening with checksums on checks the footer, meta-index, properties,
    // filter and index blocks; `Table::verify` then checks every block in
    // file order. Either way the first failure names its block's offset.
    let problem = match table::open(data, true) {
        Err(p) => Some(p),
        Ok(t) => t
            .verify()
            .err()
            .map(|e| table::locate(data, Problem::from_table(&e))),
    };
    let data_blocks = table::open(data, false)
        .ok()
        .map(|t| t.properties().num_data_blocks);
    VerifyReport {
        data_blocks,
        problem,
    }
}

impl Report for VerifyReport {
    fn ok(&self) -> bool {
        self.problem.is_none()
    }

    fn text(&self, out: &mut String) {
        match &self.problem {
            None => out.push_str("ok\n"),
            Some(p) => {
                let _ = writeln!(out, "{p}");
            }
        }
    }
}
