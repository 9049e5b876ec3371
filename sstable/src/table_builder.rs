//! Writes a table: data blocks, filter, index, range deletions,
//! properties, meta-index, footer, in that order.
//!
//! ```text
//! +--------------+-----+--------------+------+--------+-------+-----------+------------+------------+--------+
//! | data block 0 | ... | data block n | dict | filter | index | range_del | properties | meta-index | footer |
//! +--------------+-----+--------------+------+--------+-------+-----------+------------+------------+--------+
//!   each block: contents (raw or zstd) | type: u8 | masked crc32: u32 LE
//!   (the dictionary is absent without one, the filter when
//!   bloom_bits_per_key = 0, the range_del block when there are no range
//!   tombstones; footer: 48 bytes)
//! ```
//! Only data and index blocks are ever compressed, data blocks against
//! the dictionary when there is one. The meta-index maps
//! `strata.compression_dict`, `strata.filter.bloom`, `strata.properties`
//! and `strata.range_del` to their handles; the footer points at the
//! meta-index and the index.
//!
//! An aligned table is format version 5; otherwise a table with a
//! dictionary is version 4, one holding range tombstones version 3, one
//! with neither version 1 exactly as before (see `footer.rs`).
//!
//! Aligned data blocks (version 5): zeros go before a data block only
//! when it would otherwise span more aligned units than its size needs
//! (`padding_before`): a block that fits one unit never straddles two,
//! so a lookup that misses the caches reads one page. A block of one
//! 4 KiB value and its key needs two units wherever it starts, so it is
//! written right after the previous one (version 2 padded it to 8 KiB,
//! doubling the table), except in the rare place where it would span
//! three, where a few bytes of padding save that third page.
//!
//! With a dictionary asked for (`CompressionOptions`), the first data
//! blocks are held back, raw, until they reach the sample size; the
//! dictionary is built from them, and they and every later block are
//! then written compressed against it (RocksDB's buffered state).

use std::cmp::Ordering;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::block::BlockBuilder;
use crate::bounds::TableBounds;
use crate::checksum::block_checksum;
use crate::compression::{build_dictionary, BlockCompressor, TYPE_NONE, TYPE_ZSTD};
use crate::error::{Error, Result};
use crate::filter::{filter_hash, FilterBuilder};
use crate::footer::{
    Footer, FOOTER_LEN, FORMAT_VERSION_ALIGN_FITTING, FORMAT_VERSION_DICT,
    FORMAT_VERSION_RANGE_DELS, MIN_FORMAT_VERSION,
};
use crate::handle::{BlockHandle, BLOCK_TRAILER_LEN};
use crate::index::{short_successor, shortest_separator};
use crate::key::{
    encode_internal_key, pack_trailer, split_key, SeqNo, ValueKind, MAX_SEQNO, TRAILER_LEN,
};
use crate::options::{Compression, TableOptions, MAX_DATA_BLOCK_ALIGNMENT};
use crate::properties::TableProperties;
use crate::range_del::{FragmentedRangeTombstones, RangeTombstone};
use crate::range_del_block;

/// A data block within this percentage of the block size is cut before
/// an entry that would take it past (RocksDB's `block_size_deviation`
/// default).
pub const BLOCK_SIZE_DEVIATION_PERCENT: usize = 10;

/// Meta-index name of the zstd dictionary block (format version 4).
pub const META_COMPRESSION_DICT: &str = "strata.compression_dict";
/// Meta-index name of the bloom filter block.
pub const META_FILTER: &str = "strata.filter.bloom";
/// Meta-index name of the properties block.
pub const META_PROPERTIES: &str = "strata.properties";
/// Meta-index name of the range deletion block (format version 3).
pub const META_RANGE_DEL: &str = "strata.range_del";

/// Longest user key [`TableBuilder::add`] accepts (64 MiB).
pub const MAX_USER_KEY_LEN: usize = 64 << 20;
/// Longest value [`TableBuilder::add`] accepts (1 GiB). With the key and
/// block size limits this keeps every block below 4 GiB (u32 offsets).
pub const MAX_VALUE_LEN: usize = 1 << 30;

/// A finished table.
#[derive(Debug)]
pub struct BuiltTable<W> {
    /// The writer, flushed (not synced: durability is the caller's job).
    pub writer: W,
    /// What the table holds.
    pub properties: TableProperties,
    /// Bytes written.
    pub file_size: u64,
    /// The user-key range the table covers, its range tombstones
    /// included (what the engine records for the file).
    pub bounds: TableBounds,
}

/// Builds a table from entries given in strictly increasing internal-key
/// order, and range tombstones given in any order. Buffers are reused
/// across blocks: adding an entry allocates only when a buffer grows
/// (amortised) or the filter's hash list grows.
///
/// `W` should be buffered (a `BufWriter<File>`, a `Vec<u8>`): blocks are
/// written in a few `write_all` calls each.
pub struct TableBuilder<W: Write> {
    writer: W,
    options: TableOptions,
    offset: u64,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    /// Internal key of the last entry added.
    last_key: Vec<u8>,
    /// Scratch for the key being added, swapped with `last_key`.
    key_buf: Vec<u8>,
    /// Scratch for index separators and handles.
    index_key: Vec<u8>,
    index_value: Vec<u8>,
    /// Handle of the last flushed data block, waiting for the next key to
    /// pick a short separator.
    pending_handle: Option<BlockHandle>,
    filter: Option<FilterBuilder>,
    compressor: Option<BlockCompressor>,
    /// Data blocks held back to build the dictionary from; `None` once
    /// written, or when no dictionary is asked for.
    held: Option<HeldBlocks>,
    /// The dictionary, once built, and the compressor of data blocks
    /// against it.
    dictionary: Option<Vec<u8>>,
    dict_compressor: Option<BlockCompressor>,
    props: TableProperties,
    /// Range tombstones as added, fragmented in `finish`.
    range_tombstones: Vec<RangeTombstone>,
    /// Their keys' bytes, for the size estimate.
    range_tombstone_bytes: u64,
    /// Set after an I/O error: the output is unusable.
    failed: bool,
}

impl<W: Write> TableBuilder<W> {
    /// Starts a table. `Err(InvalidArgument)` if the options are out of range.
    pub fn new(writer: W, options: TableOptions) -> Result<Self> {
        options.validate()?;
        let compressor = match options.compression {
            Compression::None => None,
            Compression::Zstd { level } => Some(BlockCompressor::new(level)?),
        };
        let filter = (options.bloom_bits_per_key > 0)
            .then(|| FilterBuilder::new(options.bloom_bits_per_key));
        let dict = &options.compression_opts;
        let held = (compressor.is_some() && dict.max_dict_bytes > 0).then(|| HeldBlocks {
            data: Vec::new(),
            blocks: Vec::new(),
            target: dict.sample_bytes(),
        });
        let alignment = options.data_block_alignment();
        let props = TableProperties {
            compression: options.compression.property_name(),
            block_size: options.block_size as u64,
            restart_interval: options.restart_interval as u64,
            bloom_bits_per_key: u64::from(options.bloom_bits_per_key),
            // Version 1 unless blocks are aligned, so that tables without
            // padding stay readable by every version (`finish` raises it
            // to 3 if the table holds range tombstones, to 4 with a
            // dictionary; version 5 holds either).
            format_version: if alignment > 0 {
                FORMAT_VERSION_ALIGN_FITTING
            } else {
                MIN_FORMAT_VERSION
            },
            data_block_alignment: alignment as u64,
            ..TableProperties::default()
        };
        Ok(TableBuilder {
            writer,
            data_block: BlockBuilder::new(options.restart_interval),
            index_block: BlockBuilder::new(1),
            options,
            offset: 0,
            last_key: Vec::new(),
            key_buf: Vec::new(),
            index_key: Vec::new(),
            index_value: Vec::new(),
            pending_handle: None,
            filter,
            compressor,
            held,
            dictionary: None,
            dict_compressor: None,
            props,
            range_tombstones: Vec::new(),
            range_tombstone_bytes: 0,
            failed: false,
        })
    }

    /// Adds a point entry. Entries must come in strictly increasing
    /// internal-key order (user key ascending, then seqno descending);
    /// otherwise `Err(InvalidArgument)` and the table is unchanged. Also
    /// rejects seqnos above [`MAX_SEQNO`], oversized keys or values, and
    /// kinds that are not point kinds (a range deletion goes through
    /// [`TableBuilder::add_range_tombstone`]).
    pub fn add(
        &mut self,
        user_key: &[u8],
        seqno: SeqNo,
        kind: ValueKind,
        value: &[u8],
    ) -> Result<()> {
        if self.failed {
            return Err(failed_error());
        }
        if seqno > MAX_SEQNO {
            return Err(Error::InvalidArgument(format!(
                "seqno {seqno} above MAX_SEQNO"
            )));
        }
        if !kind.is_point() {
            return Err(Error::InvalidArgument(format!(
                "{kind:?} is not a point entry: use add_range_tombstone"
            )));
        }
        if user_key.len() > MAX_USER_KEY_LEN || value.len() > MAX_VALUE_LEN {
            return Err(Error::InvalidArgument(format!(
                "key of {} bytes or value of {} bytes too large",
                user_key.len(),
                value.len()
            )));
        }
        let trailer = pack_trailer(seqno, kind);
        let first = self.props.num_entries == 0;
        // One comparison both checks the order and tells whether this is a
        // new user key (for the filter).
        let new_user_key = first || {
            let (last_user, last_trailer) = split_key(&self.last_key);
            match last_user.cmp(user_key) {
                Ordering::Less => true,
                Ordering::Equal if trailer < last_trailer => false,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "key {:?}@{seqno} does not sort after the previous key",
                        String::from_utf8_lossy(user_key)
                    )))
                }
            }
        };
        self.key_buf.clear();
        encode_internal_key(&mut self.key_buf, user_key, seqno, kind);

        if self.block_almost_full(self.key_buf.len(), value.len()) {
            self.flush_data_block()?;
        }
        if let Some(handle) = self.pending_handle.take() {
            self.index_key.clear();
            shortest_separator(&mut self.index_key, &self.last_key, &self.key_buf);
            self.add_index_entry(handle);
        } else if let Some(last) = self.held.as_mut().and_then(|h| h.blocks.last_mut()) {
            if last.1.is_none() {
                let mut separator = Vec::new();
                shortest_separator(&mut separator, &self.last_key, &self.key_buf);
                last.1 = Some(separator);
            }
        }
        if new_user_key {
            if let Some(f) = &mut self.filter {
                f.add_hash(filter_hash(user_key));
            }
        }
        self.data_block.add(&self.key_buf, value);
        std::mem::swap(&mut self.last_key, &mut self.key_buf);

        let p = &mut self.props;
        if first {
            p.smallest_user_key.clear();
            p.smallest_user_key.extend_from_slice(user_key);
            p.min_seqno = seqno;
            p.max_seqno = seqno;
        }
        p.num_entries += 1;
        p.num_deletions += u64::from(kind == ValueKind::Delete);
        p.num_merge_operands += u64::from(kind == ValueKind::Merge);
        if kind == ValueKind::PutWithExpiry {
            // The value starts with the expiry (`ValueKind::PutWithExpiry`).
            if let Some(expiry) = value.first_chunk::<8>().map(|e| u64::from_le_bytes(*e)) {
                if p.earliest_expiry == 0 || expiry < p.earliest_expiry {
                    p.earliest_expiry = expiry.max(1);
                }
            }
        }
        p.raw_key_bytes += (user_key.len() + TRAILER_LEN) as u64;
        p.raw_value_bytes += value.len() as u64;
        p.min_seqno = p.min_seqno.min(seqno);
        p.max_seqno = p.max_seqno.max(seqno);

        if self.data_block.current_size_estimate() >= self.block_size_limit() {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// Whether the data block should be cut before an entry of these
    /// sizes: when the entry would take it past the block size and it is
    /// already within [`BLOCK_SIZE_DEVIATION_PERCENT`] of it (RocksDB's
    /// `FlushBlockBySizePolicy`). So blocks mostly stay at or under the
    /// block size rather than just over it: a cached 4 KiB block then
    /// fits a 4 KiB allocation instead of the next size class up (25%
    /// more with jemalloc and mimalloc).
    fn block_almost_full(&self, key_len: usize, value_len: usize) -> bool {
        if self.data_block.is_empty() {
            return false;
        }
        let block_size = self.block_size_limit();
        let current = self.data_block.current_size_estimate();
        let deviation_limit = (block_size * (100 - BLOCK_SIZE_DEVIATION_PERCENT)).div_ceil(100);
        // The entry at its largest: unshared key, three varint lengths,
        // one more restart point.
        let after = current + key_len + value_len + 3 * 5 + 4;
        current > deviation_limit && after > block_size
    }

    /// The size a data block's contents are cut at: the block size, less
    /// the trailer when blocks are aligned (so a block and its trailer
    /// fill at most one aligned unit).
    fn block_size_limit(&self) -> usize {
        if self.props.data_block_alignment > 0 {
            self.options.block_size - BLOCK_TRAILER_LEN
        } else {
            self.options.block_size
        }
    }

    /// Adds a range tombstone: every version older than `seqno` of every
    /// user key in `[start, end)` is deleted (`end: None`: no end).
    /// Tombstones may come in any order and overlap; `finish` fragments
    /// them. `Err(InvalidArgument)` for an end not after its start, a
    /// seqno above [`MAX_SEQNO`] or a key above [`MAX_USER_KEY_LEN`].
    pub fn add_range_tombstone(
        &mut self,
        start: &[u8],
        end: Option<&[u8]>,
        seqno: SeqNo,
    ) -> Result<()> {
        self.push_range_tombstone(RangeTombstone {
            start: Bytes::copy_from_slice(start),
            end: end.map(Bytes::copy_from_slice),
            seqno,
        })
    }

    /// Adds every fragment of `fragments` (e.g. tombstones a compaction
    /// truncated to its output's range), as [`add_range_tombstone`] would.
    /// On `Err` the fragments before the bad one were added.
    ///
    /// [`add_range_tombstone`]: TableBuilder::add_range_tombstone
    pub fn add_fragments(&mut self, fragments: &FragmentedRangeTombstones) -> Result<()> {
        self.range_tombstones.reserve(fragments.len());
        fragments
            .fragments()
            .try_for_each(|t| self.push_range_tombstone(t))
    }

    fn push_range_tombstone(&mut self, t: RangeTombstone) -> Result<()> {
        if self.failed {
            return Err(failed_error());
        }
        if t.seqno > MAX_SEQNO {
            return Err(Error::InvalidArgument(format!(
                "range deletion seqno {} above MAX_SEQNO",
                t.seqno
            )));
        }
        let end_len = t.end.as_ref().map_or(0, |e| e.len());
        if t.start.len() > MAX_USER_KEY_LEN || end_len > MAX_USER_KEY_LEN {
            return Err(Error::InvalidArgument(format!(
                "range deletion key of {} bytes too large",
                t.start.len().max(end_len)
            )));
        }
        if t.is_empty_range() {
            return Err(Error::InvalidArgument(format!(
                "range deletion {:?}..{:?}@{}: its end is not after its start",
                String::from_utf8_lossy(&t.start),
                t.end.as_deref().map(String::from_utf8_lossy),
                t.seqno
            )));
        }
        self.range_tombstone_bytes += (t.start.len() + end_len + TRAILER_LEN) as u64;
        self.range_tombstones.push(t);
        Ok(())
    }

    /// The table's `strata.creation_time` (Unix seconds), from the
    /// caller's clock; not set (or 0), the system clock's at `finish`.
    pub fn set_creation_time(&mut self, unix_seconds: u64) {
        self.props.creation_time = unix_seconds;
    }

    /// Name the merge operator the table's operands are written for: the
    /// `strata.merge_operator` property, written only if the table holds
    /// operands (a reader with another operator must not combine them).
    pub fn set_merge_operator_name(&mut self, name: &str) {
        self.props.merge_operator.clear();
        self.props.merge_operator.push_str(name);
    }

    /// Point entries added so far.
    pub fn num_entries(&self) -> u64 {
        self.props.num_entries
    }

    /// Range tombstones added so far (as added, before fragmenting). A
    /// table with no entries and no tombstones holds nothing.
    pub fn num_range_tombstones(&self) -> usize {
        self.range_tombstones.len()
    }

    /// Bytes written so far plus the pending data block and the range
    /// tombstones' keys: what the file would take if finished now, less
    /// the index, filter and footer.
    pub fn estimated_file_size(&self) -> u64 {
        let pending = if self.data_block.is_empty() {
            0
        } else {
            self.data_block.current_size_estimate() + BLOCK_TRAILER_LEN
        };
        let held = self.held.as_ref().map_or(0, |h| h.data.len());
        self.offset + (pending + held) as u64 + self.range_tombstone_bytes
    }

    fn add_index_entry(&mut self, handle: BlockHandle) {
        self.index_value.clear();
        handle.encode_to(&mut self.index_value);
        self.index_block.add(&self.index_key, &self.index_value);
    }

    fn flush_data_block(&mut self) -> Result<()> {
        debug_assert!(!self.data_block.is_empty());
        debug_assert!(self.pending_handle.is_none());
        let raw = self.data_block.finish();
        if let Some(held) = &mut self.held {
            held.data.extend_from_slice(raw);
            held.blocks.push((raw.len(), None));
            self.data_block.reset();
            self.props.num_data_blocks += 1;
            if held.data.len() >= held.target {
                self.write_held()?;
            }
            return Ok(());
        }
        let result = write_block(
            &mut self.writer,
            &mut self.offset,
            self.dict_compressor.as_mut().or(self.compressor.as_mut()),
            raw,
            self.props.data_block_alignment,
        );
        let handle = self.note(result)?;
        self.data_block.reset();
        self.pending_handle = Some(handle);
        self.props.num_data_blocks += 1;
        Ok(())
    }

    /// Builds the dictionary from the held data blocks (none if zstd's
    /// trainer fails), then writes them, compressed against it, with
    /// their index entries; the last one's separator waits for the next
    /// key if it has none yet.
    fn write_held(&mut self) -> Result<()> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        let sizes: Vec<usize> = held.blocks.iter().map(|(len, _)| *len).collect();
        let opts = &self.options.compression_opts;
        let dictionary = build_dictionary(
            &held.data,
            &sizes,
            opts.max_dict_bytes as usize,
            opts.zstd_max_train_bytes > 0,
        );
        if let (Some(dict), Compression::Zstd { level }) = (dictionary, &self.options.compression) {
            // A dictionary zstd refuses to load leaves the table without
            // one, as a failed training does.
            if let Ok(compressor) = BlockCompressor::with_dictionary(*level, &dict) {
                self.dict_compressor = Some(compressor);
                self.dictionary = Some(dict);
            }
        }
        let mut at = 0;
        for (len, separator) in held.blocks {
            let raw = &held.data[at..at + len];
            at += len;
            let result = write_block(
                &mut self.writer,
                &mut self.offset,
                self.dict_compressor.as_mut().or(self.compressor.as_mut()),
                raw,
                self.props.data_block_alignment,
            );
            let handle = self.note(result)?;
            match separator {
                Some(separator) => {
                    self.index_key = separator;
                    self.add_index_entry(handle);
                }
                None => self.pending_handle = Some(handle),
            }
        }
        Ok(())
    }

    /// Marks the builder failed on error.
    fn note<T>(&mut self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Writes the remaining blocks and the footer and flushes the writer.
    pub fn finish(mut self) -> Result<BuiltTable<W>> {
        if self.failed {
            return Err(failed_error());
        }
        if !self.data_block.is_empty() {
            self.flush_data_block()?;
        }
        // A table smaller than the sample size: its dictionary is built
        // from all of it.
        self.write_held()?;
        if let Some(handle) = self.pending_handle.take() {
            self.index_key.clear();
            short_successor(&mut self.index_key, &self.last_key);
            self.add_index_entry(handle);
        }
        self.props.data_bytes = self.offset;
        if let Some((user_key, _)) = (self.props.num_entries > 0).then(|| split_key(&self.last_key))
        {
            self.props.largest_user_key = user_key.to_vec();
        }
        let tombstones =
            FragmentedRangeTombstones::fragment(std::mem::take(&mut self.range_tombstones));
        if let Some((min, max)) = tombstones.seqno_range() {
            let p = &mut self.props;
            // Tombstones count in the seqno range: the engine orders L0
            // tables and judges what a tombstone may delete by it.
            (p.min_seqno, p.max_seqno) = if p.num_entries == 0 {
                (min, max)
            } else {
                (p.min_seqno.min(min), p.max_seqno.max(max))
            };
            p.num_range_deletions = tombstones.len() as u64;
            p.format_version = p.format_version.max(FORMAT_VERSION_RANGE_DELS);
        }

        let mut meta_index = BlockBuilder::new(1);
        let mut handle_buf = Vec::new();
        // Names in bytewise order: strata.compression_dict sorts first.
        if let Some(dict) = self.dictionary.take() {
            let h = write_block(&mut self.writer, &mut self.offset, None, &dict, 0)?;
            h.encode_to(&mut handle_buf);
            meta_index.add(META_COMPRESSION_DICT.as_bytes(), &handle_buf);
            self.props.format_version = self.props.format_version.max(FORMAT_VERSION_DICT);
        }
        if let Some(filter) = self.filter.take() {
            handle_buf.clear();
            let mut contents = Vec::new();
            filter.finish_into(&mut contents, self.offset);
            let h = write_block(&mut self.writer, &mut self.offset, None, &contents, 0)?;
            self.props.filter_bytes = h.size + BLOCK_TRAILER_LEN as u64;
            h.encode_to(&mut handle_buf);
            meta_index.add(META_FILTER.as_bytes(), &handle_buf);
        }

        let index_raw = self.index_block.finish();
        let index = write_block(
            &mut self.writer,
            &mut self.offset,
            self.compressor.as_mut(),
            index_raw,
            0,
        )?;
        self.props.index_bytes = index.size + BLOCK_TRAILER_LEN as u64;

        let range_del = if tombstones.is_empty() {
            None
        } else {
            let mut block = BlockBuilder::new(1);
            range_del_block::encode(&tombstones, &mut block)?;
            Some(write_block(
                &mut self.writer,
                &mut self.offset,
                None,
                block.finish(),
                0,
            )?)
        };

        if self.props.creation_time == 0 {
            self.props.creation_time = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
        }
        let mut props_block = BlockBuilder::new(1);
        self.props.encode(&mut props_block);
        let props = write_block(
            &mut self.writer,
            &mut self.offset,
            None,
            props_block.finish(),
            0,
        )?;
        handle_buf.clear();
        props.encode_to(&mut handle_buf);
        meta_index.add(META_PROPERTIES.as_bytes(), &handle_buf);
        // Names in bytewise order: strata.range_del sorts last.
        if let Some(h) = range_del {
            handle_buf.clear();
            h.encode_to(&mut handle_buf);
            meta_index.add(META_RANGE_DEL.as_bytes(), &handle_buf);
        }

        let meta = write_block(
            &mut self.writer,
            &mut self.offset,
            None,
            meta_index.finish(),
            0,
        )?;
        let footer = Footer::encode_version(meta, index, self.props.format_version);
        self.writer.write_all(&footer)?;
        self.offset += FOOTER_LEN as u64;
        self.writer.flush()?;
        let bounds = TableBounds::new(&self.props, Some(&tombstones));
        Ok(BuiltTable {
            writer: self.writer,
            properties: self.props,
            file_size: self.offset,
            bounds,
        })
    }
}

/// [`TableBuilder::held`]: data blocks waiting for the dictionary.
struct HeldBlocks {
    /// Their raw contents, back to back (the trainer's samples).
    data: Vec<u8>,
    /// Each one's length in `data`, and its index separator once the
    /// next key picked it.
    blocks: Vec<(usize, Option<Vec<u8>>)>,
    /// Bytes to hold before the dictionary is built.
    target: usize,
}

fn failed_error() -> Error {
    Error::InvalidArgument("table builder unusable after an earlier I/O error".to_string())
}

/// Zeros to write at `offset` before a block of `stored` bytes (trailer
/// included) so that it starts on a multiple of `alignment` (0: none):
/// only when, written at `offset`, it would span more units than its size
/// needs. For a block that fits one unit: when it would straddle two.
/// A larger block pads only where its tail would spill into one more
/// unit, which costs fewer bytes than that tail (a 4,117-byte block pads
/// by fewer than 21 bytes, about one block in 195); version 2 padded
/// every block to a multiple, doubling a table of such blocks.
pub(crate) fn padding_before(offset: u64, stored: u64, alignment: u64) -> u64 {
    if alignment == 0 {
        return 0;
    }
    let used = offset % alignment;
    let spanned = (used + stored).div_ceil(alignment);
    if used == 0 || spanned <= stored.div_ceil(alignment) {
        return 0;
    }
    alignment - used
}

/// Writes one block (compressed when `compressor` is given and it pays)
/// and its trailer at `*offset`, after padding as [`padding_before`]
/// says for `alignment` (0 for every block but data blocks); advances
/// `*offset`.
fn write_block<W: Write>(
    writer: &mut W,
    offset: &mut u64,
    compressor: Option<&mut BlockCompressor>,
    raw: &[u8],
    alignment: u64,
) -> Result<BlockHandle> {
    let (pieces, block_type) = match compressor.and_then(|c| c.compress(raw)) {
        Some((prefix, frame)) => ([prefix, frame], TYPE_ZSTD),
        None => ([raw, &[][..]], TYPE_NONE),
    };
    let stored = pieces.iter().map(|p| p.len() as u64).sum::<u64>() + BLOCK_TRAILER_LEN as u64;
    let pad = padding_before(*offset, stored, alignment);
    if pad > 0 {
        const ZEROS: [u8; MAX_DATA_BLOCK_ALIGNMENT] = [0; MAX_DATA_BLOCK_ALIGNMENT];
        writer.write_all(&ZEROS[..pad as usize])?;
        *offset += pad;
    }
    let crc = block_checksum(&pieces, block_type);
    let mut size = 0;
    for piece in pieces {
        writer.write_all(piece)?;
        size += piece.len() as u64;
    }
    let mut trailer = [0u8; BLOCK_TRAILER_LEN];
    trailer[0] = block_type;
    trailer[1..].copy_from_slice(&crc.to_le_bytes());
    writer.write_all(&trailer)?;
    let handle = BlockHandle {
        offset: *offset,
        size,
    };
    *offset += size + BLOCK_TRAILER_LEN as u64;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::padding_before;

    #[test]
    fn padding_goes_only_where_a_block_would_span_one_unit_more_than_it_needs() {
        // Fits one unit: padded only when it would straddle two.
        assert_eq!(padding_before(0, 4096, 4096), 0);
        assert_eq!(padding_before(100, 3996, 4096), 0);
        assert_eq!(padding_before(100, 3997, 4096), 3996);
        assert_eq!(padding_before(8192 + 4000, 200, 4096), 96);
        // Larger than a unit: two units wherever it starts...
        assert_eq!(padding_before(0, 4117, 4096), 0);
        assert_eq!(padding_before(4075, 4117, 4096), 0);
        // ...unless its tail would reach a third.
        assert_eq!(padding_before(4076, 4117, 4096), 20);
        assert_eq!(padding_before(4095, 4117, 4096), 1);
        assert_eq!(padding_before(1, 8192, 4096), 4095);
        // No alignment, no padding.
        assert_eq!(padding_before(100, 3997, 0), 0);
    }
}
