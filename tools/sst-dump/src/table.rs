//! Opening a table for inspection, and what is shown about any table:
//! its properties (`--show_properties`) and meta blocks
//! (`--list_meta_blocks`).

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use strata_sstable::bytes::Bytes;
use strata_sstable::{
    BlockHandle, LargestBound, Table, TableReadOptions, BLOCK_TRAILER_LEN, FOOTER_LEN,
};

use crate::escape::Style;
use crate::output::{problems_text, Problem, Report};

/// Opens `data` as a table. With `verify_checksums`, every block read is
/// checked (the footer's checksum is checked either way).
pub fn open(data: &Bytes, verify_checksums: bool) -> Result<Arc<Table>, Problem> {
    let options = TableReadOptions {
        verify_checksums,
        fill_cache: false,
        ..TableReadOptions::default()
    };
    Table::open(data.clone(), options)
        .map(Arc::new)
        .map_err(|e| locate(data, Problem::from_table(&e)))
}

/// Names the block a problem's offset falls in ("data block 3 of 12 at
/// 4096, 1020 bytes"), found through a table opened without checksums.
/// Leaves the problem as it is when the structure is too damaged to tell.
pub fn locate(data: &Bytes, mut problem: Problem) -> Problem {
    let Some(offset) = problem.offset else {
        return problem;
    };
    let footer_start = (data.len() as u64).saturating_sub(FOOTER_LEN as u64);
    let name = if offset >= footer_start && data.len() >= FOOTER_LEN {
        Some("footer".to_string())
    } else {
        let options = TableReadOptions {
            verify_checksums: false,
            fill_cache: false,
            ..TableReadOptions::default()
        };
        Table::open(data.clone(), options)
            .ok()
            .and_then(|t| block_at(&t, offset))
    };
    if let Some(name) = name {
        if !problem.reason.contains(&name) {
            problem.reason = format!("{} [{name}]", problem.reason);
        }
    }
    problem
}

/// Which block starts at `offset`.
fn block_at(table: &Table, offset: u64) -> Option<String> {
    let sized = |what: &str, h: BlockHandle| {
        format!(
            "{what} at offset {}, {} bytes + {BLOCK_TRAILER_LEN}-byte trailer",
            h.offset, h.size
        )
    };
    let footer = table.footer();
    if footer.index.offset == offset {
        return Some(sized("index block", footer.index));
    }
    if footer.meta_index.offset == offset {
        return Some(sized("meta-index block", footer.meta_index));
    }
    for (name, h) in table.meta_index_entries() {
        if h.offset == offset {
            let what = format!("meta block {}", crate::escape::escaped(name));
            return Some(sized(&what, *h));
        }
    }
    let entries = table.index_entries().ok()?;
    let total = entries.len();
    entries
        .iter()
        .position(|(_, h)| h.offset == offset)
        .and_then(|i| {
            entries
                .get(i)
                .map(|(_, h)| sized(&format!("data block {i} of {total}"), *h))
        })
}

/// A table's properties as shown, with RocksDB's derived averages.
#[derive(Debug, Serialize)]
pub struct Properties {
    pub num_data_blocks: u64,
    pub num_entries: u64,
    pub num_deletions: u64,
    /// Range tombstone fragments in `strata.range_del` (format version 3).
    pub num_range_deletions: u64,
    /// Merge operands, and the operator they were written for.
    pub num_merge_operands: u64,
    pub merge_operator: String,
    /// The earliest expiry of an expiring value, micros since the Unix
    /// epoch (0: none).
    pub earliest_expiry: u64,
    pub raw_key_bytes: u64,
    pub raw_average_key_bytes: f64,
    pub raw_value_bytes: u64,
    pub raw_average_value_bytes: f64,
    pub data_bytes: u64,
    pub index_bytes: u64,
    pub filter_bytes: u64,
    pub bloom_bits_per_key: u64,
    pub filter_policy: String,
    pub comparator: &'static str,
    pub compression: String,
    /// The zstd dictionary's size (`strata.compression_dict`, format
    /// version 4); 0: none.
    pub compression_dict_bytes: u64,
    pub block_size: u64,
    pub restart_interval: u64,
    pub format_version: u32,
    /// Data blocks start on multiples of this (format version 2; 0 in 1).
    pub data_block_alignment: u64,
    pub creation_time: u64,
    pub smallest_user_key: String,
    pub largest_user_key: String,
    /// The table's bounds, its range tombstones included (what the
    /// MANIFEST records): `largest_key` is read as `largest_bound` says.
    pub smallest_key: String,
    pub largest_key: String,
    #[serde(serialize_with = "crate::manifest::serialize_bound")]
    pub largest_bound: LargestBound,
    pub smallest_seqno: u64,
    pub largest_seqno: u64,
    pub file_size: u64,
}

impl Properties {
    pub fn of(table: &Table, style: Style) -> Properties {
        let p = table.properties();
        let bounds = table.bounds();
        let avg = |total: u64| {
            if p.num_entries == 0 {
                0.0
            } else {
                total as f64 / p.num_entries as f64
            }
        };
        Properties {
            num_data_blocks: p.num_data_blocks,
            num_entries: p.num_entries,
            num_deletions: p.num_deletions,
            num_range_deletions: p.num_range_deletions,
            num_merge_operands: p.num_merge_operands,
            merge_operator: p.merge_operator.clone(),
            earliest_expiry: p.earliest_expiry,
            raw_key_bytes: p.raw_key_bytes,
            raw_average_key_bytes: avg(p.raw_key_bytes),
            raw_value_bytes: p.raw_value_bytes,
            raw_average_value_bytes: avg(p.raw_value_bytes),
            data_bytes: p.data_bytes,
            index_bytes: p.index_bytes,
            filter_bytes: p.filter_bytes,
            bloom_bits_per_key: p.bloom_bits_per_key,
            filter_policy: if p.bloom_bits_per_key == 0 {
                "none".into()
            } else {
                format!(
                    "strata.filter.bloom ({} bits per key)",
                    p.bloom_bits_per_key
                )
            },
            comparator: "bytewise",
            compression: p.compression.clone(),
            compression_dict_bytes: table.compression_dict_len().unwrap_or(0) as u64,
            block_size: p.block_size,
            restart_interval: p.restart_interval,
            format_version: p.format_version,
            data_block_alignment: p.data_block_alignment,
            creation_time: p.creation_time,
            smallest_user_key: style.show(&p.smallest_user_key),
            largest_user_key: style.show(&p.largest_user_key),
            smallest_key: style.show(&bounds.smallest),
            largest_key: style.show(&bounds.largest),
            largest_bound: bounds.largest_bound,
            smallest_seqno: p.min_seqno,
            largest_seqno: p.max_seqno,
            file_size: table.file_size(),
        }
    }

    /// RocksDB's "Table Properties:" listing.
    pub fn text(&self, out: &mut String) {
        let lines: [(&str, String); 29] = [
            ("# data blocks", self.num_data_blocks.to_string()),
            ("# entries", self.num_entries.to_string()),
            ("# deletions", self.num_deletions.to_string()),
            ("# range deletions", self.num_range_deletions.to_string()),
            ("# merge operands", self.num_merge_operands.to_string()),
            ("merge operator name", self.merge_operator.clone()),
            ("earliest expiry (us)", self.earliest_expiry.to_string()),
            ("raw key size", self.raw_key_bytes.to_string()),
            (
                "raw average key size",
                format!("{:.6}", self.raw_average_key_bytes),
            ),
            ("raw value size", self.raw_value_bytes.to_string()),
            (
                "raw average value size",
                format!("{:.6}", self.raw_average_value_bytes),
            ),
            ("data block size", self.data_bytes.to_string()),
            ("index block size", self.index_bytes.to_string()),
            ("filter block size", self.filter_bytes.to_string()),
            ("filter policy name", self.filter_policy.clone()),
            ("comparator name", self.comparator.to_string()),
            ("SST file compression algo", self.compression.clone()),
            (
                "compression dictionary size",
                self.compression_dict_bytes.to_string(),
            ),
            ("block size", self.block_size.to_string()),
            ("block restart interval", self.restart_interval.to_string()),
            ("format version", self.format_version.to_string()),
            (
                "data block alignment",
                self.data_block_alignment.to_string(),
            ),
            ("creation time", self.creation_time.to_string()),
            ("smallest user key", format!("'{}'", self.smallest_user_key)),
            ("largest user key", format!("'{}'", self.largest_user_key)),
            (
                "key range (range deletions included)",
                format!(
                    "['{}' .. {}",
                    self.smallest_key,
                    self.largest_bound.close(&format!("'{}'", self.largest_key))
                ),
            ),
            ("smallest sequence number", self.smallest_seqno.to_string()),
            ("largest sequence number", self.largest_seqno.to_string()),
            ("file size", self.file_size.to_string()),
        ];
        out.push_str("Table Properties:\n------------------------------\n");
        for (name, value) in lines {
            let _ = writeln!(out, "  {name}: {value}");
        }
    }
}

/// A meta-index entry.
#[derive(Debug, Serialize)]
pub struct MetaBlock {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

/// `--show_properties` and `--list_meta_blocks`, shown after any table command.
#[derive(Debug, Serialize)]
pub struct TableInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Properties>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_blocks: Option<Vec<MetaBlock>>,
    pub problems: Vec<Problem>,
}

impl TableInfo {
    pub fn of(
        data: &Bytes,
        show_properties: bool,
        list_meta_blocks: bool,
        style: Style,
    ) -> TableInfo {
        // Without checksums: the properties of a table with one bad data
        // block are still worth seeing (the command itself reports the block).
        let table = match open(data, false) {
            Ok(t) => t,
            Err(p) => {
                return TableInfo {
                    properties: None,
                    meta_blocks: None,
                    problems: vec![p],
                }
            }
        };
        TableInfo {
            properties: show_properties.then(|| Properties::of(&table, style)),
            meta_blocks: list_meta_blocks.then(|| meta_blocks(&table)),
            problems: Vec::new(),
        }
    }
}

pub fn meta_blocks(table: &Table) -> Vec<MetaBlock> {
    table
        .meta_index_entries()
        .iter()
        .map(|(name, h)| MetaBlock {
            name: crate::escape::escaped(name),
            offset: h.offset,
            size: h.size,
        })
        .collect()
}

impl Report for TableInfo {
    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn text(&self, out: &mut String) {
        if let Some(p) = &self.properties {
            p.text(out);
        }
        if let Some(blocks) = &self.meta_blocks {
            out.push_str("Meta blocks:\n");
            for b in blocks {
                let _ = writeln!(out, "  {}: offset {}, size {}", b.name, b.offset, b.size);
            }
        }
        problems_text(out, &self.problems);
    }
}
