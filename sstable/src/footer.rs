//! The fixed-size footer at the end of every table.
//!
//! ```text
//! offset  size  field
//!      0     8  meta-index handle: offset  (u64 LE)
//!      8     8  meta-index handle: size    (u64 LE, trailer excluded)
//!     16     8  index handle: offset       (u64 LE)
//!     24     8  index handle: size         (u64 LE, trailer excluded)
//!     32     4  format version             (u32 LE, 1 to 5)
//!     36     4  masked CRC-32 of bytes 0..36 (u32 LE)
//!     40     8  magic                      (bytes 89 'S' 'S' 'T' 'r' 't' 'a' 0A)
//!     48        end of file
//! ```
//! The magic's first byte has the high bit set and its last is a newline,
//! so 7-bit or newline-translating copies are caught, as PNG's signature does.

use crate::checksum::masked_crc;
use crate::coding::{read_u32_le, read_u64_le};
use crate::error::{Error, Result};
use crate::handle::BlockHandle;

/// Footer length in bytes.
pub const FOOTER_LEN: usize = 48;
/// The newest format version this crate writes and reads:
/// [`FORMAT_VERSION_ALIGN_FITTING`]. The builder writes the oldest
/// version that can hold the table, so an unaligned table without range
/// deletions (or without a dictionary) stays readable by builds that
/// predate them.
pub const FORMAT_VERSION: u32 = FORMAT_VERSION_ALIGN_FITTING;
/// The oldest format version this crate reads: data blocks back to back.
/// Written for tables without alignment and without range deletions.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Format version 2: data blocks aligned (padding after every one), no
/// range deletions. Written for aligned tables without range deletions
/// until version 5 replaced it; still read.
pub const FORMAT_VERSION_ALIGNED: u32 = 2;
/// Format version 3: the data region as in version 1, or as in version 2
/// when `strata.data_block_alignment` is set, and a `strata.range_del`
/// block may be present. Written only for tables holding range
/// deletions: a build that predates it refuses the table ("unsupported
/// format version 3") instead of ignoring the unknown meta block and
/// bringing deleted keys back.
pub const FORMAT_VERSION_RANGE_DELS: u32 = 3;
/// Format version 4: as version 3, and a `strata.compression_dict` block
/// holds the zstd dictionary the data blocks are compressed against.
/// Written only for tables with a dictionary: a build that predates it
/// refuses the table ("unsupported format version 4") instead of failing
/// on every data block.
pub const FORMAT_VERSION_DICT: u32 = 4;
/// Format version 5: as version 4 (a `strata.range_del` block may be
/// present), with `strata.data_block_alignment` always set and padding
/// only where it saves a read: a data block starts either right after the
/// previous one or, after fewer than alignment zeros, on the next
/// multiple; no padding follows the last. The writer pads only before a
/// block that would otherwise span more aligned units than its size
/// needs (one that fits a unit: before it would straddle two), so a
/// block a little larger than a unit (a 4 KiB value) is not padded to
/// twice its size. Written for every aligned table: a build that predates it
/// refuses the table ("unsupported format version 5") instead of taking
/// the blocks' positions for damage.
pub const FORMAT_VERSION_ALIGN_FITTING: u32 = 5;
/// The magic number's bytes as they appear at the end of the file.
pub const MAGIC_BYTES: [u8; 8] = [0x89, b'S', b'S', b'T', b'r', b't', b'a', b'\n'];
/// The magic number read as a u64 LE.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(MAGIC_BYTES);

/// The decoded footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    /// Where the meta-index block is.
    pub meta_index: BlockHandle,
    /// Where the index block is.
    pub index: BlockHandle,
    /// Format version.
    pub version: u32,
    /// Stored checksum (masked).
    pub checksum: u32,
    /// Magic number.
    pub magic: u64,
}

impl Footer {
    /// Encodes a footer for format version 1.
    pub fn encode(meta_index: BlockHandle, index: BlockHandle) -> [u8; FOOTER_LEN] {
        Footer::encode_version(meta_index, index, MIN_FORMAT_VERSION)
    }

    /// Encodes a footer for format `version`.
    pub fn encode_version(
        meta_index: BlockHandle,
        index: BlockHandle,
        version: u32,
    ) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        let fields = [meta_index.offset, meta_index.size, index.offset, index.size];
        for (chunk, v) in out.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out[32..36].copy_from_slice(&version.to_le_bytes());
        let crc = masked_crc(&out[..36]);
        out[36..40].copy_from_slice(&crc.to_le_bytes());
        out[40..48].copy_from_slice(&MAGIC_BYTES);
        out
    }

    /// Decodes and checks the footer at the end of `file`: magic, version,
    /// checksum, and handles (with trailers) inside `0..file.len() - 48`.
    pub fn decode(file: &[u8]) -> Result<Footer> {
        let start = file.len().saturating_sub(FOOTER_LEN);
        Footer::decode_tail(file.get(start..).unwrap_or_default(), file.len() as u64)
    }

    /// [`Footer::decode`] from the last [`FOOTER_LEN`] bytes of a file of
    /// `file_len` bytes (read on their own, without the rest of the file).
    pub fn decode_tail(tail: &[u8], file_len: u64) -> Result<Footer> {
        let start = file_len
            .checked_sub(FOOTER_LEN as u64)
            .filter(|_| tail.len() == FOOTER_LEN)
            .ok_or_else(|| {
                Error::corruption(
                    0,
                    format!("file of {file_len} bytes is shorter than the footer"),
                )
            })?;
        let at = |pos: usize| start + pos as u64;
        let f = tail;
        let word = |pos| read_u64_le(f, pos).unwrap_or(0);
        let magic = word(40);
        if magic != TABLE_MAGIC {
            return Err(Error::corruption(
                at(40),
                "bad magic number: not a strata table",
            ));
        }
        let version = read_u32_le(f, 32).unwrap_or(0);
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::corruption(
                at(32),
                format!("unsupported format version {version}"),
            ));
        }
        let checksum = read_u32_le(f, 36).unwrap_or(0);
        if masked_crc(f.get(..36).unwrap_or_default()) != checksum {
            return Err(Error::corruption(at(0), "footer checksum mismatch"));
        }
        let footer = Footer {
            meta_index: BlockHandle {
                offset: word(0),
                size: word(8),
            },
            index: BlockHandle {
                offset: word(16),
                size: word(24),
            },
            version,
            checksum,
            magic,
        };
        for (name, h, pos) in [
            ("meta-index", footer.meta_index, 0),
            ("index", footer.index, 16),
        ] {
            match h.end_with_trailer() {
                Some(end) if end <= start => {}
                _ => {
                    return Err(Error::corruption(
                        at(pos),
                        format!("{name} handle outside the file"),
                    ));
                }
            }
        }
        Ok(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mi = BlockHandle {
            offset: 10,
            size: 20,
        };
        let ix = BlockHandle {
            offset: 35,
            size: 5,
        };
        let mut file = vec![0u8; 45];
        file.extend_from_slice(&Footer::encode(mi, ix));
        let f = Footer::decode(&file).unwrap();
        assert_eq!(
            (f.meta_index, f.index, f.version, f.magic),
            (mi, ix, 1, TABLE_MAGIC)
        );
        assert_eq!(&file[file.len() - 8..], &MAGIC_BYTES);
        for pos in 45..file.len() {
            let mut bad = file.clone();
            bad[pos] ^= 0x10;
            let err = Footer::decode(&bad).unwrap_err();
            assert!(
                matches!(err, Error::Corruption { offset, .. } if offset >= 45),
                "{pos}: {err}"
            );
        }
        assert!(
            Footer::decode(&file[1..]).is_err(),
            "index handle now past the end"
        );
        assert!(Footer::decode(&file[..47]).is_err());
    }
}
