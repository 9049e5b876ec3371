//! `raw`: the table block by block — footer, meta-index, properties,
//! filter, range deletions (`strata.range_del`: each fragment with its
//! offset in the file), index (separators with block handles) and every
//! data block with its entries — for `<file>_dump.txt`. Each block shows where it lies,
//! how it is stored and whether its checksum matches; a damaged block is
//! reported in place and the dump goes on with the next.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use strata_sstable::block::Block;
use strata_sstable::bytes::Bytes;
use strata_sstable::{
    mask_crc, BlockHandle, Footer, Table, COMPRESSION_TYPE_NONE, COMPRESSION_TYPE_ZSTD,
    META_RANGE_DEL, TRAILER_LEN,
};

use crate::escape::{escaped, hex, Style};
use crate::output::{problems_text, Problem, Report};
use crate::table::{self, Properties};

/// The whole dump.
#[derive(Debug, Default, Serialize)]
pub struct RawDump {
    pub file_size: u64,
    pub footer: Option<FooterDump>,
    pub meta_index: Option<BlockDump>,
    pub properties: Option<Properties>,
    pub filter: Option<FilterDump>,
    /// The `strata.range_del` block (format version 3), when the table
    /// has one.
    pub range_del: Option<BlockDump>,
    pub index: Option<BlockDump>,
    pub data_blocks: Vec<BlockDump>,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Serialize)]
pub struct FooterDump {
    pub offset: u64,
    pub meta_index: Handle,
    pub index: Handle,
    pub format_version: u32,
    pub checksum: String,
    pub magic: String,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Handle {
    pub offset: u64,
    pub size: u64,
}

impl From<BlockHandle> for Handle {
    fn from(h: BlockHandle) -> Handle {
        Handle {
            offset: h.offset,
            size: h.size,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FilterDump {
    pub block: BlockDump,
    pub lines: u32,
    pub probes: u8,
    pub padding: usize,
}

/// One block: where, how stored, its checksum, its entries.
#[derive(Debug, Default, Serialize)]
pub struct BlockDump {
    pub name: String,
    pub offset: u64,
    /// Stored size, trailer excluded.
    pub size: u64,
    pub compression: String,
    pub stored_checksum: Option<String>,
    pub checksum_ok: bool,
    pub decompressed_size: Option<usize>,
    pub restarts: Option<usize>,
    pub entries: Vec<RawEntry>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RawEntry {
    /// Where the entry starts in the file (range deletions only: the
    /// reader's reasons name these offsets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub key: String,
    pub value: String,
}

/// Dumps `data` as a table.
pub fn raw(data: &Bytes, style: Style) -> RawDump {
    let mut dump = RawDump {
        file_size: data.len() as u64,
        ..RawDump::default()
    };
    let footer = match Footer::decode(data) {
        Ok(f) => f,
        Err(e) => {
            dump.problems
                .push(table::locate(data, Problem::from_table(&e)));
            return dump;
        }
    };
    dump.footer = Some(FooterDump {
        offset: dump
            .file_size
            .saturating_sub(strata_sstable::FOOTER_LEN as u64),
        meta_index: footer.meta_index.into(),
        index: footer.index.into(),
        format_version: footer.version,
        checksum: format!("{:#010x}", footer.checksum),
        magic: format!("{:#018x}", footer.magic),
    });
    // Structure only: checksums are computed here, block by block, so that
    // one bad block does not hide the others.
    let table = match table::open(data, false) {
        Ok(t) => t,
        Err(p) => {
            dump.problems.push(p);
            return dump;
        }
    };
    let meta = block_dump(
        data,
        &table,
        "meta-index",
        footer.meta_index,
        Layout::Handles,
        style,
    );
    dump.meta_index = Some(meta);
    dump.properties = Some(Properties::of(&table, style));
    if let (Ok(Some(f)), Some((_, h))) = (
        table.filter(),
        table
            .meta_index_entries()
            .iter()
            .find(|(n, _)| n.as_slice() == strata_sstable::META_FILTER.as_bytes()),
    ) {
        let block = block_dump(data, &table, "filter", *h, Layout::Opaque, style);
        dump.filter = Some(FilterDump {
            block,
            lines: f.num_lines(),
            probes: f.num_probes(),
            padding: f.padding(),
        });
    }
    if let Some((_, h)) = table
        .meta_index_entries()
        .iter()
        .find(|(n, _)| n.as_slice() == META_RANGE_DEL.as_bytes())
    {
        let block = block_dump(data, &table, META_RANGE_DEL, *h, Layout::RangeDel, style);
        dump.range_del = Some(block);
    }
    let index = block_dump(data, &table, "index", footer.index, Layout::Index, style);
    dump.index = Some(index);
    match table.index_entries() {
        Ok(entries) => {
            for (i, (_, h)) in entries.iter().enumerate() {
                let name = format!("data block {i}");
                dump.data_blocks
                    .push(block_dump(data, &table, &name, *h, Layout::Data, style));
            }
        }
        Err(e) => dump.problems.push(Problem::from_table(&e)),
    }
    let blocks = dump
        .meta_index
        .iter()
        .chain(dump.filter.as_ref().map(|f| &f.block))
        .chain(dump.range_del.iter())
        .chain(dump.index.iter())
        .chain(dump.data_blocks.iter());
    let mut found: Vec<Problem> = blocks
        .filter_map(|b| {
            let what = match (&b.error, b.checksum_ok) {
                (Some(e), _) => e.clone(),
                (None, false) => "checksum mismatch".into(),
                (None, true) => return None,
            };
            Some(Problem::at(b.offset, format!("{}: {what}", b.name)))
        })
        .collect();
    found.sort_by_key(|p| p.offset);
    dump.problems.extend(found);
    dump
}

/// What a block's entries hold, so they can be shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Internal keys and values.
    Data,
    /// Separator internal keys and block handles.
    Index,
    /// Names and block handles.
    Handles,
    /// Range tombstone fragments: start internal keys and ends.
    RangeDel,
    /// Not in block format (the filter).
    Opaque,
}

impl Layout {
    fn entry(self, key: &[u8], value: &[u8], style: Style) -> RawEntry {
        let handle = || match BlockHandle::decode_exact(value) {
            Some(h) => format!("block handle: offset {}, size {}", h.offset, h.size),
            None => format!("bad block handle {}", hex(value)),
        };
        match self {
            Layout::Data => RawEntry {
                offset: None,
                key: internal_key_text(key, style),
                value: style.show(value),
            },
            Layout::Index => RawEntry {
                offset: None,
                key: internal_key_text(key, style),
                value: handle(),
            },
            Layout::RangeDel => RawEntry {
                offset: None,
                key: internal_key_text(key, style),
                value: if value.is_empty() {
                    "+inf (no end)".to_owned()
                } else {
                    format!("'{}'", style.show(value))
                },
            },
            Layout::Handles | Layout::Opaque => RawEntry {
                offset: None,
                key: escaped(key),
                value: handle(),
            },
        }
    }
}

/// A block's placement, trailer and (decompressed) entries.
fn block_dump(
    data: &Bytes,
    table: &Arc<Table>,
    name: &str,
    h: BlockHandle,
    layout: Layout,
    style: Style,
) -> BlockDump {
    let mut b = BlockDump {
        name: name.to_string(),
        offset: h.offset,
        size: h.size,
        ..BlockDump::default()
    };
    let start = usize::try_from(h.offset).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(h.size).unwrap_or(usize::MAX));
    let contents = data.get(start..end);
    let kind = data.get(end).copied();
    let stored = data
        .get(end.saturating_add(1)..end.saturating_add(5))
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_le_bytes);
    let (Some(contents), Some(kind), Some(stored)) = (contents, kind, stored) else {
        b.error = Some("block or its trailer lies outside the file".into());
        return b;
    };
    b.compression = match kind {
        COMPRESSION_TYPE_NONE => "none".into(),
        COMPRESSION_TYPE_ZSTD => "zstd".into(),
        other => format!("unknown ({other})"),
    };
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(contents);
    hasher.update(&[kind]);
    b.stored_checksum = Some(format!("{stored:#010x}"));
    b.checksum_ok = mask_crc(hasher.finalize()) == stored;
    let block = match table.read_block(h) {
        Ok(bytes) => bytes,
        Err(e) => {
            b.error = Some(Problem::from_table(&e).reason);
            return b;
        }
    };
    b.decompressed_size = Some(block.len());
    if layout == Layout::Opaque {
        return b;
    }
    let parsed = match Block::new(block) {
        Ok(p) => p,
        Err(e) => {
            b.error = Some(Problem::from_table(&e).reason);
            return b;
        }
    };
    b.restarts = Some(parsed.num_restarts());
    let mut it = parsed.iter();
    let mut step = it.seek_to_first();
    loop {
        if let Err(e) = step {
            b.error = Some(Problem::from_table(&e).reason);
            break;
        }
        if !it.valid() {
            break;
        }
        let mut entry = layout.entry(it.key(), it.value(), style);
        // Stored raw, the entry's place in the block is its place in the
        // file after the block's offset.
        if layout == Layout::RangeDel && kind == COMPRESSION_TYPE_NONE {
            entry.offset = Some(h.offset + it.entry_offset() as u64);
        }
        b.entries.push(entry);
        step = it.next();
    }
    b
}

/// An internal key as RocksDB shows one: `'user' seq:N, type:T`, for any
/// bytes (index separators carry type 255; damage can leave keys short).
pub fn internal_key_text(key: &[u8], style: Style) -> String {
    let Some(split) = key.len().checked_sub(TRAILER_LEN) else {
        return format!("'{}' (shorter than a key trailer)", style.show(key));
    };
    let (user, trailer) = key.split_at(split);
    let mut t = [0u8; TRAILER_LEN];
    t.copy_from_slice(trailer);
    let trailer = u64::from_le_bytes(t);
    format!(
        "'{}' seq:{}, type:{}",
        style.show(user),
        trailer >> 8,
        trailer & 0xff
    )
}

impl Report for RawDump {
    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The summary printed on stdout; [`RawDump::dump_text`] is the file.
    fn text(&self, out: &mut String) {
        let _ = write!(
            out,
            "{} data blocks, {} entries",
            self.data_blocks.len(),
            self.data_blocks
                .iter()
                .map(|b| b.entries.len())
                .sum::<usize>()
        );
        match &self.range_del {
            Some(b) => {
                let _ = writeln!(out, ", {} range deletions", b.entries.len());
            }
            None => out.push('\n'),
        }
        problems_text(out, &self.problems);
    }
}

impl RawDump {
    /// The block-by-block dump.
    pub fn dump_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "File size: {}\n", self.file_size);
        if let Some(f) = &self.footer {
            section(&mut out, &format!("Footer Details (offset {}):", f.offset));
            let _ = writeln!(
                out,
                "  meta-index handle: offset {}, size {}",
                f.meta_index.offset, f.meta_index.size
            );
            let _ = writeln!(
                out,
                "  index handle: offset {}, size {}",
                f.index.offset, f.index.size
            );
            let _ = writeln!(out, "  format version: {}", f.format_version);
            let _ = writeln!(out, "  checksum: {} (ok)", f.checksum);
            let _ = writeln!(out, "  magic: {}\n", f.magic);
        }
        if let Some(b) = &self.meta_index {
            section(&mut out, "Metaindex Details:");
            block_text(&mut out, b);
        }
        if let Some(p) = &self.properties {
            p.text(&mut out);
            out.push('\n');
        }
        if let Some(f) = &self.filter {
            section(&mut out, "Filter Details:");
            block_text(&mut out, &f.block);
            let _ = writeln!(
                out,
                "  bloom filter: {} lines of 64 bytes, {} probes, {} bytes of padding\n",
                f.lines, f.probes, f.padding
            );
        }
        if let Some(b) = &self.range_del {
            section(&mut out, "Range Deletions Details:");
            block_text(&mut out, b);
        }
        if let Some(b) = &self.index {
            section(&mut out, "Index Details:");
            block_text(&mut out, b);
        }
        section(&mut out, "Data Blocks:");
        for b in &self.data_blocks {
            block_text(&mut out, b);
        }
        if !self.problems.is_empty() {
            section(&mut out, "Problems:");
            problems_text(&mut out, &self.problems);
        }
        out
    }
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "{title}\n--------------------------------------");
}

fn block_text(out: &mut String, b: &BlockDump) {
    let _ = writeln!(
        out,
        "{} @ offset {}, {} bytes stored, compression {}, checksum {} ({}){}{}",
        b.name,
        b.offset,
        b.size,
        b.compression,
        b.stored_checksum.as_deref().unwrap_or("-"),
        if b.checksum_ok { "ok" } else { "MISMATCH" },
        b.decompressed_size
            .map(|n| format!(", {n} bytes decompressed"))
            .unwrap_or_default(),
        b.restarts
            .map(|n| format!(", {n} restarts"))
            .unwrap_or_default(),
    );
    for e in &b.entries {
        match e.offset {
            Some(offset) => {
                let _ = writeln!(out, "  @{offset} {} => {}", e.key, e.value);
            }
            None => {
                let _ = writeln!(out, "  {} => {}", e.key, e.value);
            }
        }
    }
    if let Some(e) = &b.error {
        let _ = writeln!(out, "  error: {e}");
    }
    out.push('\n');
}
