//! The byte layout of a blob file (documented in `docs/blob-format.md`).
//!
//! ```text
//! +--------------------------------------------------------------+
//! | header (24 bytes)                                            |
//! |   magic "strblob\0" (8) | version u32 | keyspace id u32      |
//! |   compression u8 | 3 zero bytes | masked CRC-32 of the 20 before |
//! +--------------------------------------------------------------+
//! | record 0 | record 1 | ...   (in the order they were added)     |
//! |   key_len u32 | stored_len u32 | kind u8 | masked CRC-32 u32  |
//! |   key (key_len bytes) | stored value (stored_len bytes)       |
//! |   CRC over key_len, stored_len, kind, key and stored value     |
//! +--------------------------------------------------------------+
//! | footer (32 bytes)                                            |
//! |   blob count u64 | stored value bytes u64 | 4 zero bytes      |
//! |   masked CRC-32 of the 20 before | magic "strblob\0" (8)      |
//! +--------------------------------------------------------------+
//! ```
//!
//! All integers are little-endian. A value of kind [`KIND_ZSTD`] is
//! stored as a zstd block is (`raw_len` varint32, then one frame with its
//! content size). A [`BlobRef`](super::BlobRef) points at a record's
//! stored value: the record starts `RECORD_HEADER_LEN + key.len()` bytes
//! before it, which the reader computes from the key it is asked for and
//! then checks against the record.

use crate::coding::{read_u32_le, read_u64_le};

/// The first and last 8 bytes of every blob file.
pub const BLOB_MAGIC: [u8; 8] = *b"strblob\0";
/// The format version this crate writes and reads.
pub const BLOB_FORMAT_VERSION: u32 = 1;
/// Bytes of the file header.
pub const HEADER_LEN: usize = 24;
/// Bytes of a record's fixed part, before its key.
pub const RECORD_HEADER_LEN: usize = 13;
/// Bytes of the file footer.
pub const FOOTER_LEN: usize = 32;
/// A record's value stored as it was given.
pub const KIND_NONE: u8 = 0;
/// A record's value stored as one zstd frame behind its raw length.
pub const KIND_ZSTD: u8 = 1;
/// Largest key a record holds (the engine's keys are far smaller).
pub const MAX_BLOB_KEY_LEN: usize = 64 << 20;
/// Largest stored value a record holds.
pub const MAX_BLOB_VALUE_LEN: usize = 1 << 30;

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobFileHeader {
    /// The keyspace whose values the file holds.
    pub keyspace_id: u32,
    /// The compression the writer was asked for ([`KIND_NONE`] or
    /// [`KIND_ZSTD`]); each record says how it is stored.
    pub compression: u8,
}

impl BlobFileHeader {
    /// The 24 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&BLOB_MAGIC);
        out[8..12].copy_from_slice(&BLOB_FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&self.keyspace_id.to_le_bytes());
        out[16] = self.compression;
        let crc = crate::checksum::masked_crc(&out[..20]);
        out[20..24].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The header in `bytes` (the file's first [`HEADER_LEN`]), or why not.
    pub fn decode(bytes: &[u8]) -> Result<BlobFileHeader, &'static str> {
        let bytes: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or("shorter than a blob file header")?;
        if bytes[..8] != BLOB_MAGIC {
            return Err("not a blob file (bad magic in the header)");
        }
        // In bounds: `bytes` is the whole header.
        let u32_at = |at| read_u32_le(bytes, at).unwrap_or_default();
        if u32_at(20) != crate::checksum::masked_crc(&bytes[..20]) {
            return Err("header checksum mismatch");
        }
        let version = u32_at(8);
        if version != BLOB_FORMAT_VERSION {
            return Err("unknown blob file format version");
        }
        if bytes[16] > KIND_ZSTD || bytes[17..20] != [0, 0, 0] {
            return Err("unknown compression or reserved bytes set in the header");
        }
        Ok(BlobFileHeader {
            keyspace_id: u32_at(12),
            compression: bytes[16],
        })
    }
}

/// The decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobFileFooter {
    /// Records in the file.
    pub blob_count: u64,
    /// The sum of the records' stored value lengths: what garbage
    /// accounting measures against.
    pub blob_bytes: u64,
}

impl BlobFileFooter {
    /// The 32 footer bytes.
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        out[..8].copy_from_slice(&self.blob_count.to_le_bytes());
        out[8..16].copy_from_slice(&self.blob_bytes.to_le_bytes());
        let crc = crate::checksum::masked_crc(&out[..20]);
        out[20..24].copy_from_slice(&crc.to_le_bytes());
        out[24..].copy_from_slice(&BLOB_MAGIC);
        out
    }

    /// The footer in `bytes` (the file's last [`FOOTER_LEN`]), or why not.
    pub fn decode(bytes: &[u8]) -> Result<BlobFileFooter, &'static str> {
        let bytes: &[u8; FOOTER_LEN] = bytes
            .get(..FOOTER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or("shorter than a blob file footer")?;
        if bytes[24..] != BLOB_MAGIC {
            return Err("no blob file footer (a file cut short, or not a blob file)");
        }
        if read_u32_le(bytes, 20) != Some(crate::checksum::masked_crc(&bytes[..20])) {
            return Err("footer checksum mismatch");
        }
        if bytes[16..20] != [0, 0, 0, 0] {
            return Err("reserved bytes set in the footer");
        }
        // In bounds: `bytes` is the whole footer.
        let u64_at = |at| read_u64_le(bytes, at).unwrap_or_default();
        Ok(BlobFileFooter {
            blob_count: u64_at(0),
            blob_bytes: u64_at(8),
        })
    }
}

/// A record's fixed part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub key_len: u32,
    pub stored_len: u32,
    pub kind: u8,
    pub crc: u32,
}

impl RecordHeader {
    pub(crate) fn decode(bytes: &[u8]) -> Option<RecordHeader> {
        let b = bytes.get(..RECORD_HEADER_LEN)?;
        Some(RecordHeader {
            key_len: read_u32_le(b, 0)?,
            stored_len: read_u32_le(b, 4)?,
            kind: b[8],
            crc: read_u32_le(b, 9)?,
        })
    }

    /// The fixed part, with the checksum over it, `key` and `stored`.
    pub(crate) fn encode(key: &[u8], stored: &[&[u8]], kind: u8) -> [u8; RECORD_HEADER_LEN] {
        let stored_len: usize = stored.iter().map(|s| s.len()).sum();
        let mut out = [0u8; RECORD_HEADER_LEN];
        out[..4].copy_from_slice(&(key.len() as u32).to_le_bytes());
        out[4..8].copy_from_slice(&(stored_len as u32).to_le_bytes());
        out[8] = kind;
        let crc = record_crc(&out[..9], key, stored);
        out[9..].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

/// The masked CRC a record header stores.
pub(crate) fn record_crc(fixed: &[u8], key: &[u8], stored: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(fixed);
    hasher.update(key);
    for part in stored {
        hasher.update(part);
    }
    crate::checksum::mask(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_footer_round_trip_and_refuse_damage() {
        let h = BlobFileHeader {
            keyspace_id: 9,
            compression: KIND_ZSTD,
        };
        let bytes = h.encode();
        assert_eq!(BlobFileHeader::decode(&bytes), Ok(h));
        for i in 0..HEADER_LEN {
            let mut bad = bytes;
            bad[i] ^= 0x10;
            assert!(BlobFileHeader::decode(&bad).is_err(), "byte {i}");
        }
        let f = BlobFileFooter {
            blob_count: 3,
            blob_bytes: 1 << 40,
        };
        let bytes = f.encode();
        assert_eq!(BlobFileFooter::decode(&bytes), Ok(f));
        for i in 0..FOOTER_LEN {
            let mut bad = bytes;
            bad[i] ^= 0x01;
            assert!(BlobFileFooter::decode(&bad).is_err(), "byte {i}");
        }
        assert!(BlobFileFooter::decode(&bytes[..31]).is_err());
    }
}
