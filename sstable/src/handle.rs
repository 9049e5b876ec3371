//! Block handles: where a block lies in the table file.
//!
//! ```text
//! in index and meta-index entries:  offset: varint64 | size: varint64
//! in the footer:                    offset: u64 LE   | size: u64 LE
//! ```
//! `size` counts the block's stored contents only; the 5-byte block
//! trailer ([`BLOCK_TRAILER_LEN`]) follows them.

use crate::coding::{get_varint64, put_varint64};

/// Bytes after every block: compression type (1) + masked CRC-32 (4).
pub const BLOCK_TRAILER_LEN: usize = 5;

/// Position and stored size of one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct BlockHandle {
    /// Offset of the block's first byte in the table file.
    pub offset: u64,
    /// Stored (possibly compressed) size, excluding the trailer.
    pub size: u64,
}

impl BlockHandle {
    /// Appends the varint form (index and meta-index values).
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        put_varint64(out, self.offset);
        put_varint64(out, self.size);
    }

    /// Decodes the varint form, which must fill `buf` exactly.
    pub fn decode_exact(buf: &[u8]) -> Option<BlockHandle> {
        let (offset, n) = get_varint64(buf)?;
        let (size, m) = get_varint64(buf.get(n..)?)?;
        if n + m != buf.len() {
            return None;
        }
        Some(BlockHandle { offset, size })
    }

    /// End of the block including its trailer, `None` on overflow.
    pub fn end_with_trailer(&self) -> Option<u64> {
        self.offset
            .checked_add(self.size)?
            .checked_add(BLOCK_TRAILER_LEN as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_round_trip_and_exactness() {
        for h in [
            BlockHandle { offset: 0, size: 0 },
            BlockHandle {
                offset: 4096,
                size: 300,
            },
            BlockHandle {
                offset: u64::MAX,
                size: u64::MAX,
            },
        ] {
            let mut buf = Vec::new();
            h.encode_to(&mut buf);
            assert!(buf.len() <= 20);
            assert_eq!(BlockHandle::decode_exact(&buf), Some(h));
            buf.push(0);
            assert_eq!(BlockHandle::decode_exact(&buf), None, "trailing byte");
            buf.truncate(buf.len() - 2);
            assert_eq!(BlockHandle::decode_exact(&buf), None, "truncated");
        }
        assert_eq!(
            BlockHandle {
                offset: u64::MAX,
                size: 1
            }
            .end_with_trailer(),
            None
        );
    }
}
