//! Table properties: statistics and build settings, stored as a block of
//! `name → value` entries sorted by name.
//!
//! ```text
//! properties block (block format, bytewise-sorted names):
//!   "strata.block_size"        → varint64
//!   "strata.bloom_bits_per_key"→ varint64
//!   "strata.compression"       → UTF-8 string, "none" or "zstd:<level>"
//!   "strata.creation_time"     → varint64, unix seconds
//!   ...                        (every name in `names` below)
//!   "strata.smallest_user_key" → raw bytes
//! ```
//! `strata.data_block_alignment` is written only when not 0, and
//! `strata.num_range_deletions` only in format version 3 (where it is
//! required), so tables of versions 1 and 2 are unchanged;
//! `strata.num_merge_operands` and `strata.merge_operator` only in tables
//! holding merge operands; `strata.earliest_expiry` only in tables holding
//! expiring values.
//! Numbers are varint64 filling the value exactly. A reader ignores names
//! it does not know (forward compatibility); a missing known name is
//! corruption.

use crate::block::{Block, BlockBuilder};
use crate::coding::{get_varint64, put_varint64};
use crate::error::{Error, Result};
use crate::footer::FORMAT_VERSION_RANGE_DELS;
use crate::key::SeqNo;

/// Property names as stored.
pub mod names {
    /// Entries in the table.
    pub const NUM_ENTRIES: &str = "strata.num_entries";
    /// Delete entries in the table.
    pub const NUM_DELETIONS: &str = "strata.num_deletions";
    /// Data blocks in the table.
    pub const NUM_DATA_BLOCKS: &str = "strata.num_data_blocks";
    /// Sum of internal key lengths (user key + 8) over all entries.
    pub const RAW_KEY_BYTES: &str = "strata.raw_key_bytes";
    /// Sum of value lengths.
    pub const RAW_VALUE_BYTES: &str = "strata.raw_value_bytes";
    /// Bytes of data blocks on disk, trailers (and alignment padding)
    /// included: where the data region ends.
    pub const DATA_BYTES: &str = "strata.data_bytes";
    /// Bytes of the index block on disk, trailer included.
    pub const INDEX_BYTES: &str = "strata.index_bytes";
    /// Bytes of the filter block on disk, trailer included (0 if none).
    pub const FILTER_BYTES: &str = "strata.filter_bytes";
    /// Smallest user key.
    pub const SMALLEST_USER_KEY: &str = "strata.smallest_user_key";
    /// Largest user key.
    pub const LARGEST_USER_KEY: &str = "strata.largest_user_key";
    /// Smallest sequence number.
    pub const MIN_SEQNO: &str = "strata.min_seqno";
    /// Largest sequence number.
    pub const MAX_SEQNO: &str = "strata.max_seqno";
    /// Compression setting, "none" or "zstd:<level>".
    pub const COMPRESSION: &str = "strata.compression";
    /// Target data block size.
    pub const BLOCK_SIZE: &str = "strata.block_size";
    /// Restart interval of data blocks.
    pub const RESTART_INTERVAL: &str = "strata.restart_interval";
    /// Bloom bits per key (0: no filter).
    pub const BLOOM_BITS_PER_KEY: &str = "strata.bloom_bits_per_key";
    /// Format version, the footer's too.
    pub const FORMAT_VERSION: &str = "strata.format_version";
    /// Unix seconds when the table was built.
    pub const CREATION_TIME: &str = "strata.creation_time";
    /// What data blocks start on a multiple of (format versions 2 and 3;
    /// absent means 0, no alignment).
    pub const DATA_BLOCK_ALIGNMENT: &str = "strata.data_block_alignment";
    /// Range deletion fragments in the `strata.range_del` block (required
    /// in format version 3, absent before).
    pub const NUM_RANGE_DELETIONS: &str = "strata.num_range_deletions";
    /// Entries of kind Merge (absent means 0).
    pub const NUM_MERGE_OPERANDS: &str = "strata.num_merge_operands";
    /// The name of the merge operator the table's operands were written
    /// for (absent or empty: unknown); only with operands.
    pub const MERGE_OPERATOR: &str = "strata.merge_operator";
    /// The earliest expiry (micros since the Unix epoch) of the table's
    /// `PutWithExpiry` entries (absent: none).
    pub const EARLIEST_EXPIRY: &str = "strata.earliest_expiry";
}

/// A table's statistics and build settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TableProperties {
    /// Entries in the table.
    pub num_entries: u64,
    /// Entries of kind Delete.
    pub num_deletions: u64,
    /// Data blocks.
    pub num_data_blocks: u64,
    /// Sum of internal key lengths (user key + 8 bytes).
    pub raw_key_bytes: u64,
    /// Sum of value lengths.
    pub raw_value_bytes: u64,
    /// Data blocks' bytes on disk, trailers included.
    pub data_bytes: u64,
    /// Index block's bytes on disk, trailer included.
    pub index_bytes: u64,
    /// Filter block's bytes on disk, trailer included (0: no filter).
    pub filter_bytes: u64,
    /// Smallest user key of the point entries (empty when `num_entries`
    /// is 0). Range tombstones do not count: see `TableBounds`.
    pub smallest_user_key: Vec<u8>,
    /// Largest user key of the point entries (empty when `num_entries`
    /// is 0).
    pub largest_user_key: Vec<u8>,
    /// Smallest sequence number of the point entries and range tombstones
    /// (0 for an empty table).
    pub min_seqno: SeqNo,
    /// Largest sequence number of the point entries and range tombstones
    /// (0 for an empty table).
    pub max_seqno: SeqNo,
    /// "none" or "zstd:<level>".
    pub compression: String,
    /// Target data block size.
    pub block_size: u64,
    /// Data block restart interval.
    pub restart_interval: u64,
    /// Bloom bits per key, 0 for no filter.
    pub bloom_bits_per_key: u64,
    /// Format version.
    pub format_version: u32,
    /// Unix seconds at build time.
    pub creation_time: u64,
    /// Data blocks start on a multiple of this (0: right after each
    /// other); only in format versions 2 and 3.
    pub data_block_alignment: u64,
    /// Range deletion fragments, (stack, seqno) pairs of the
    /// `strata.range_del` block; 0 before format version 3.
    pub num_range_deletions: u64,
    /// Entries of kind Merge.
    pub num_merge_operands: u64,
    /// The merge operator the operands were written for (empty: unknown,
    /// or no operands).
    pub merge_operator: String,
    /// The earliest expiry of the table's expiring values, micros since
    /// the Unix epoch; 0: none.
    pub earliest_expiry: u64,
}

impl TableProperties {
    /// Encodes the properties block into `builder` (restart interval 1).
    pub(crate) fn encode(&self, builder: &mut BlockBuilder) {
        let num = |v: u64| {
            let mut out = Vec::with_capacity(10);
            put_varint64(&mut out, v);
            out
        };
        let mut entries: Vec<(&str, Vec<u8>)> = vec![
            (names::NUM_ENTRIES, num(self.num_entries)),
            (names::NUM_DELETIONS, num(self.num_deletions)),
            (names::NUM_DATA_BLOCKS, num(self.num_data_blocks)),
            (names::RAW_KEY_BYTES, num(self.raw_key_bytes)),
            (names::RAW_VALUE_BYTES, num(self.raw_value_bytes)),
            (names::DATA_BYTES, num(self.data_bytes)),
            (names::INDEX_BYTES, num(self.index_bytes)),
            (names::FILTER_BYTES, num(self.filter_bytes)),
            (names::SMALLEST_USER_KEY, self.smallest_user_key.clone()),
            (names::LARGEST_USER_KEY, self.largest_user_key.clone()),
            (names::MIN_SEQNO, num(self.min_seqno)),
            (names::MAX_SEQNO, num(self.max_seqno)),
            (names::COMPRESSION, self.compression.as_bytes().to_vec()),
            (names::BLOCK_SIZE, num(self.block_size)),
            (names::RESTART_INTERVAL, num(self.restart_interval)),
            (names::BLOOM_BITS_PER_KEY, num(self.bloom_bits_per_key)),
            (names::FORMAT_VERSION, num(u64::from(self.format_version))),
            (names::CREATION_TIME, num(self.creation_time)),
        ];
        if self.data_block_alignment > 0 {
            entries.push((names::DATA_BLOCK_ALIGNMENT, num(self.data_block_alignment)));
        }
        // Only in version 3, so older tables stay byte for byte as before.
        if self.format_version >= FORMAT_VERSION_RANGE_DELS {
            entries.push((names::NUM_RANGE_DELETIONS, num(self.num_range_deletions)));
        }
        // Only with operands, so other tables stay byte for byte as before.
        if self.num_merge_operands > 0 {
            entries.push((names::NUM_MERGE_OPERANDS, num(self.num_merge_operands)));
            entries.push((
                names::MERGE_OPERATOR,
                self.merge_operator.as_bytes().to_vec(),
            ));
        }
        // Only with expiring values, so other tables stay as before.
        if self.earliest_expiry > 0 {
            entries.push((names::EARLIEST_EXPIRY, num(self.earliest_expiry)));
        }
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in entries {
            builder.add(name.as_bytes(), &value);
        }
    }

    /// Decodes a properties block read from file offset `offset`.
    pub(crate) fn decode(block: &Block, offset: u64) -> Result<TableProperties> {
        let bad = |reason: String| Error::corruption(offset, format!("properties block: {reason}"));
        let mut p = TableProperties::default();
        let mut seen = 0u32;
        let mut has_range_deletions = false;
        let mut it = block.iter();
        it.seek_to_first()?;
        while it.valid() {
            let value = it.value();
            let num = || match get_varint64(value) {
                Some((v, n)) if n == value.len() => Ok(v),
                _ => Err(bad(format!(
                    "bad number for {}",
                    String::from_utf8_lossy(it.key())
                ))),
            };
            let (bit, field): (u32, Option<&mut u64>) = match it.key() {
                k if k == names::NUM_ENTRIES.as_bytes() => (0, Some(&mut p.num_entries)),
                k if k == names::NUM_DELETIONS.as_bytes() => (1, Some(&mut p.num_deletions)),
                k if k == names::NUM_DATA_BLOCKS.as_bytes() => (2, Some(&mut p.num_data_blocks)),
                k if k == names::RAW_KEY_BYTES.as_bytes() => (3, Some(&mut p.raw_key_bytes)),
                k if k == names::RAW_VALUE_BYTES.as_bytes() => (4, Some(&mut p.raw_value_bytes)),
                k if k == names::DATA_BYTES.as_bytes() => (5, Some(&mut p.data_bytes)),
                k if k == names::INDEX_BYTES.as_bytes() => (6, Some(&mut p.index_bytes)),
                k if k == names::FILTER_BYTES.as_bytes() => (7, Some(&mut p.filter_bytes)),
                k if k == names::MIN_SEQNO.as_bytes() => (8, Some(&mut p.min_seqno)),
                k if k == names::MAX_SEQNO.as_bytes() => (9, Some(&mut p.max_seqno)),
                k if k == names::BLOCK_SIZE.as_bytes() => (10, Some(&mut p.block_size)),
                k if k == names::RESTART_INTERVAL.as_bytes() => (11, Some(&mut p.restart_interval)),
                k if k == names::BLOOM_BITS_PER_KEY.as_bytes() => {
                    (12, Some(&mut p.bloom_bits_per_key))
                }
                k if k == names::CREATION_TIME.as_bytes() => (13, Some(&mut p.creation_time)),
                k if k == names::FORMAT_VERSION.as_bytes() => {
                    p.format_version = u32::try_from(num()?)
                        .map_err(|_| bad("format version above u32".to_string()))?;
                    (14, None)
                }
                k if k == names::SMALLEST_USER_KEY.as_bytes() => {
                    p.smallest_user_key = value.to_vec();
                    (15, None)
                }
                k if k == names::LARGEST_USER_KEY.as_bytes() => {
                    p.largest_user_key = value.to_vec();
                    (16, None)
                }
                k if k == names::COMPRESSION.as_bytes() => {
                    p.compression = std::str::from_utf8(value)
                        .map_err(|_| bad("compression name is not UTF-8".to_string()))?
                        .to_string();
                    (17, None)
                }
                k if k == names::DATA_BLOCK_ALIGNMENT.as_bytes() => {
                    (u32::MAX, Some(&mut p.data_block_alignment))
                }
                k if k == names::NUM_RANGE_DELETIONS.as_bytes() => {
                    has_range_deletions = true;
                    (u32::MAX, Some(&mut p.num_range_deletions))
                }
                k if k == names::NUM_MERGE_OPERANDS.as_bytes() => {
                    (u32::MAX, Some(&mut p.num_merge_operands))
                }
                k if k == names::EARLIEST_EXPIRY.as_bytes() => {
                    (u32::MAX, Some(&mut p.earliest_expiry))
                }
                k if k == names::MERGE_OPERATOR.as_bytes() => {
                    p.merge_operator = std::str::from_utf8(value)
                        .map_err(|_| bad("merge operator name is not UTF-8".to_string()))?
                        .to_string();
                    (u32::MAX, None)
                }
                // A name from a newer writer: skip it.
                _ => (u32::MAX, None),
            };
            if let Some(field) = field {
                *field = num()?;
            }
            if bit != u32::MAX {
                seen |= 1 << bit;
            }
            it.next()?;
        }
        const ALL: u32 = (1 << 18) - 1;
        if seen != ALL {
            let missing = (0..18).find(|b| seen & (1 << b) == 0).unwrap_or(0);
            return Err(bad(format!("required property #{missing} missing")));
        }
        if p.format_version >= FORMAT_VERSION_RANGE_DELS && !has_range_deletions {
            return Err(bad(format!(
                "{} missing in format version {}",
                names::NUM_RANGE_DELETIONS,
                p.format_version
            )));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sample() -> TableProperties {
        TableProperties {
            num_entries: 1000,
            num_deletions: 10,
            num_data_blocks: 7,
            raw_key_bytes: 24_000,
            raw_value_bytes: 100_000,
            data_bytes: 90_000,
            index_bytes: 300,
            filter_bytes: 1300,
            smallest_user_key: b"aaa".to_vec(),
            largest_user_key: vec![0xff, 0, 1],
            min_seqno: 1,
            max_seqno: crate::key::MAX_SEQNO,
            compression: "zstd:3".to_string(),
            block_size: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            format_version: 1,
            creation_time: 1_700_000_000,
            data_block_alignment: 0,
            num_range_deletions: 0,
            num_merge_operands: 0,
            merge_operator: String::new(),
            earliest_expiry: 0,
        }
    }

    fn encode(p: &TableProperties) -> Block {
        let mut b = BlockBuilder::new(1);
        p.encode(&mut b);
        Block::new(Bytes::copy_from_slice(b.finish())).unwrap()
    }

    #[test]
    fn round_trip() {
        let p = sample();
        assert_eq!(TableProperties::decode(&encode(&p), 0).unwrap(), p);
    }

    #[test]
    fn the_earliest_expiry_round_trips() {
        let p = TableProperties {
            earliest_expiry: 1_780_000_000_000_000,
            ..sample()
        };
        assert_eq!(TableProperties::decode(&encode(&p), 0).unwrap(), p);
    }

    #[test]
    fn merge_properties_round_trip_and_are_absent_without_operands() {
        let p = TableProperties {
            num_merge_operands: 12,
            merge_operator: "uint64add".to_string(),
            ..sample()
        };
        assert_eq!(TableProperties::decode(&encode(&p), 0).unwrap(), p);
        let plain = sample();
        let mut it = encode(&plain).iter();
        it.seek_to_first().unwrap();
        while it.valid() {
            assert!(!it.key().starts_with(b"strata.merge"), "{:?}", it.key());
            assert_ne!(it.key(), names::NUM_MERGE_OPERANDS.as_bytes());
            it.next().unwrap();
        }
    }

    #[test]
    fn unknown_names_are_ignored_and_missing_ones_are_corruption() {
        let p = sample();
        let block = encode(&p);
        // Re-encode with extra names sorted in: before, between and after.
        let mut entries = Vec::new();
        let mut it = block.iter();
        it.seek_to_first().unwrap();
        while it.valid() {
            entries.push((it.key().to_vec(), it.value().to_vec()));
            it.next().unwrap();
        }
        let original = entries.clone();
        entries.push((b"aaa.other".to_vec(), b"x".to_vec()));
        entries.push((b"strata.future_thing".to_vec(), vec![0xff; 3]));
        entries.push((b"zzz".to_vec(), vec![]));
        entries.sort();
        let mut b = BlockBuilder::new(1);
        for (k, v) in &entries {
            b.add(k, v);
        }
        let with_unknown = Block::new(Bytes::copy_from_slice(b.finish())).unwrap();
        assert_eq!(TableProperties::decode(&with_unknown, 0).unwrap(), p);

        for skip in 0..original.len() {
            let mut b = BlockBuilder::new(1);
            for (i, (k, v)) in original.iter().enumerate() {
                if i != skip {
                    b.add(k, v);
                }
            }
            let block = Block::new(Bytes::copy_from_slice(b.finish())).unwrap();
            let err = TableProperties::decode(&block, 99).unwrap_err();
            assert!(matches!(err, Error::Corruption { offset: 99, .. }), "{err}");
        }
    }

    #[test]
    fn version_3_requires_the_range_deletion_count() {
        let mut p = sample();
        p.format_version = 3;
        p.num_range_deletions = 4;
        assert_eq!(TableProperties::decode(&encode(&p), 0).unwrap(), p);
        // Version 1 does not write it (tables stay as they were).
        let v1 = encode(&sample());
        let mut it = v1.iter();
        it.seek_to_first().unwrap();
        while it.valid() {
            assert_ne!(it.key(), names::NUM_RANGE_DELETIONS.as_bytes());
            it.next().unwrap();
        }
        // Version 3 without it is corruption.
        let mut b = BlockBuilder::new(1);
        let full = encode(&p);
        let mut it = full.iter();
        it.seek_to_first().unwrap();
        while it.valid() {
            if it.key() != names::NUM_RANGE_DELETIONS.as_bytes() {
                b.add(it.key(), it.value());
            }
            it.next().unwrap();
        }
        let block = Block::new(Bytes::copy_from_slice(b.finish())).unwrap();
        let err = TableProperties::decode(&block, 42).unwrap_err();
        assert!(matches!(err, Error::Corruption { offset: 42, .. }), "{err}");
    }

    #[test]
    fn bad_numbers_are_corruption() {
        let mut b = BlockBuilder::new(1);
        b.add(names::BLOCK_SIZE.as_bytes(), &[0x80]);
        let block = Block::new(Bytes::copy_from_slice(b.finish())).unwrap();
        assert!(TableProperties::decode(&block, 0).is_err());
    }
}
