//! How a table is built: block size, restart interval, bloom filter,
//! compression. Names follow RocksDB's `BlockBasedTableOptions`.

use crate::error::{Error, Result};

/// Smallest accepted [`TableOptions::block_size`].
pub const MIN_BLOCK_SIZE: usize = 256;
/// Largest accepted [`TableOptions::block_size`].
pub const MAX_BLOCK_SIZE: usize = 64 << 20;
/// Largest accepted [`TableOptions::restart_interval`]: `prev` rescans up
/// to this many entries, so it must stay small.
pub const MAX_RESTART_INTERVAL: usize = 1024;
/// Largest accepted [`TableOptions::bloom_bits_per_key`]; past about 50 the
/// filter uses its maximum probe count and more bits buy almost nothing.
pub const MAX_BLOOM_BITS_PER_KEY: u32 = 64;

/// Per-block compression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Blocks are stored as they are. Readers hand out zero-copy slices.
    None,
    /// zstd, one frame per block. A block stays compressed only when that
    /// saves at least 12.5%.
    Zstd {
        /// zstd level (`zstd::compression_level_range()`, 0 = zstd's default, 3).
        level: i32,
    },
}

impl Compression {
    /// The name recorded in the `strata.compression` property: `"none"`,
    /// `"zstd:3"`.
    pub fn property_name(&self) -> String {
        match self {
            Compression::None => "none".to_string(),
            Compression::Zstd { level } => format!("zstd:{level}"),
        }
    }
}

/// Largest [`CompressionOptions::max_dict_bytes`] (1 MiB): bounds the
/// dictionary block a reader loads at open.
pub const MAX_DICT_BYTES: u32 = 1 << 20;
/// Largest [`CompressionOptions::zstd_max_train_bytes`] (256 MiB): the
/// builder holds that many bytes of data blocks before it writes them.
pub const MAX_TRAIN_BYTES: u32 = 256 << 20;

/// A table's zstd dictionary (RocksDB's `CompressionOptions`, the two
/// fields about dictionaries; docs/sstable-format.md): the builder holds
/// the first data blocks back, builds a dictionary from them, stores it
/// in a `strata.compression_dict` meta block, and compresses every data
/// block against it; the reader prepares it once per open table. Blocks
/// of a few KiB carry their own entropy tables otherwise, and building
/// them is much of a block's decompression. Used with zstd only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompressionOptions {
    /// The dictionary's largest size in bytes; 0 (the default): no
    /// dictionary. RocksDB: `max_dict_bytes` (16 KiB is a usual value).
    pub max_dict_bytes: u32,
    /// Bytes of data blocks zstd's trainer samples to build the
    /// dictionary; 0 (the default): the first `max_dict_bytes` of data
    /// blocks are the dictionary as they are (a raw-content dictionary).
    /// RocksDB: `zstd_max_train_bytes` (a usual value is 100 times
    /// `max_dict_bytes`). A trainer that fails (too few samples: a small
    /// table) leaves the table without a dictionary.
    pub zstd_max_train_bytes: u32,
}

impl CompressionOptions {
    /// Bytes of data blocks the builder holds back to build the
    /// dictionary from.
    pub(crate) fn sample_bytes(&self) -> usize {
        if self.zstd_max_train_bytes > 0 {
            self.zstd_max_train_bytes as usize
        } else {
            self.max_dict_bytes as usize
        }
    }
}

/// Options for [`crate::TableBuilder`].
#[derive(Clone, Debug)]
pub struct TableOptions {
    /// Target uncompressed size of a data block in bytes: a block is cut
    /// before an entry that would take it past this size once it is within
    /// 10% of it, and as soon as it reaches it otherwise (RocksDB's
    /// `block_size` with `block_size_deviation` 10). Default 4096.
    pub block_size: usize,
    /// Entries between restart points in data blocks. Default 16 (RocksDB
    /// `block_restart_interval`).
    pub restart_interval: usize,
    /// Bloom filter bits per key; 0 builds no filter. Default 10, about 1%
    /// false positives (RocksDB `bloom_bits`).
    pub bloom_bits_per_key: u32,
    /// Data and index block compression. Default none (RocksDB `compression`).
    pub compression: Compression,
    /// The zstd dictionary settings. Default: no dictionary.
    pub compression_opts: CompressionOptions,
    /// Align the data blocks of an uncompressed table to
    /// [`TableOptions::data_block_alignment`] (the smaller of the block
    /// size and 4 KiB), and cut blocks so that a block and its trailer fit
    /// one aligned unit: zeros pad to the next multiple before a block
    /// that would otherwise span more units than its size needs, so a
    /// point lookup that misses the caches reads one page instead of the
    /// two an unaligned block spans, and a page in the page cache holds
    /// one block, not halves of two. A block larger than a unit (one 4 KiB
    /// value) is padded only where it would reach one unit further.
    /// Tables get format version 5. Ignored for compressed tables and for
    /// block sizes that are not a power of two. RocksDB: `block_align`
    /// (default false there). Default true.
    pub block_align: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_size: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            compression: Compression::None,
            compression_opts: CompressionOptions::default(),
            block_align: true,
        }
    }
}

/// The largest data block alignment: a page.
pub const MAX_DATA_BLOCK_ALIGNMENT: usize = 4096;

impl TableOptions {
    /// Where data blocks start: 0 (anywhere, right after the previous
    /// one) or a power of two they start on a multiple of.
    pub fn data_block_alignment(&self) -> usize {
        let aligned = self.block_align
            && self.compression == Compression::None
            && self.block_size.is_power_of_two();
        if aligned {
            self.block_size.min(MAX_DATA_BLOCK_ALIGNMENT)
        } else {
            0
        }
    }

    /// Checks every option is in range; `Err(InvalidArgument)` names the
    /// first that is not.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&self.block_size) {
            return Err(Error::InvalidArgument(format!(
                "block_size {} outside {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE}",
                self.block_size
            )));
        }
        if !(1..=MAX_RESTART_INTERVAL).contains(&self.restart_interval) {
            return Err(Error::InvalidArgument(format!(
                "restart_interval {} outside 1..={MAX_RESTART_INTERVAL}",
                self.restart_interval
            )));
        }
        if self.bloom_bits_per_key > MAX_BLOOM_BITS_PER_KEY {
            return Err(Error::InvalidArgument(format!(
                "bloom_bits_per_key {} above {MAX_BLOOM_BITS_PER_KEY}",
                self.bloom_bits_per_key
            )));
        }
        let dict = &self.compression_opts;
        if dict.max_dict_bytes > MAX_DICT_BYTES || dict.zstd_max_train_bytes > MAX_TRAIN_BYTES {
            return Err(Error::InvalidArgument(format!(
                "max_dict_bytes {} above {MAX_DICT_BYTES} or zstd_max_train_bytes {} above \
                 {MAX_TRAIN_BYTES}",
                dict.max_dict_bytes, dict.zstd_max_train_bytes
            )));
        }
        if let Compression::Zstd { level } = self.compression {
            let range = zstd::compression_level_range();
            if !range.contains(&level) {
                return Err(Error::InvalidArgument(format!(
                    "zstd level {level} outside {}..={}",
                    range.start(),
                    range.end()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let o = TableOptions::default();
        assert_eq!(o.block_size, 4096);
        assert_eq!(o.restart_interval, 16);
        assert_eq!(o.bloom_bits_per_key, 10);
        assert_eq!(o.compression, Compression::None);
        o.validate().unwrap();
    }

    #[test]
    fn validate_rejects_bad_options() {
        let bad = [
            TableOptions {
                block_size: 255,
                ..Default::default()
            },
            TableOptions {
                block_size: MAX_BLOCK_SIZE + 1,
                ..Default::default()
            },
            TableOptions {
                restart_interval: 0,
                ..Default::default()
            },
            TableOptions {
                restart_interval: MAX_RESTART_INTERVAL + 1,
                ..Default::default()
            },
            TableOptions {
                bloom_bits_per_key: MAX_BLOOM_BITS_PER_KEY + 1,
                ..Default::default()
            },
            TableOptions {
                compression: Compression::Zstd { level: 23 },
                ..Default::default()
            },
            TableOptions {
                compression: Compression::Zstd { level: i32::MIN },
                ..Default::default()
            },
        ];
        for o in bad {
            assert!(
                matches!(o.validate(), Err(Error::InvalidArgument(_))),
                "{o:?}"
            );
        }
        let good = [
            TableOptions {
                block_size: 256,
                restart_interval: 1,
                bloom_bits_per_key: 0,
                ..Default::default()
            },
            TableOptions {
                block_size: MAX_BLOCK_SIZE,
                compression: Compression::Zstd { level: 22 },
                ..Default::default()
            },
            TableOptions {
                compression: Compression::Zstd { level: 0 },
                ..Default::default()
            },
        ];
        for o in good {
            o.validate().unwrap();
        }
    }
}
