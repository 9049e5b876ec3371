//! Block compression: the type byte in the block trailer and the zstd codec.
//!
//! A zstd block's stored contents:
//! ```text
//! +--------------------------+---------------------------------------+
//! | raw_len: varint32        | one zstd frame (content size recorded) |
//! +--------------------------+---------------------------------------+
//! ```
//! `raw_len` bounds the reader's allocation before zstd runs: it must be at
//! most [`MAX_DECOMPRESSED_LEN`] and equal the frame's content size, and
//! decompression must produce exactly that many bytes.

use std::cell::RefCell;

use crate::coding::{get_varint32, put_varint32, MAX_VARINT32_LEN};
use crate::error::{Error, Result};

/// Type byte of an uncompressed block.
pub const TYPE_NONE: u8 = 0;
/// Type byte of a zstd block.
pub const TYPE_ZSTD: u8 = 1;

/// Largest raw block the builder compresses and the reader decompresses.
/// Larger blocks (one huge value) are stored uncompressed.
pub const MAX_DECOMPRESSED_LEN: usize = 128 << 20;

/// The builder's zstd state, reused across blocks: one context and one
/// output buffer for the whole table.
pub(crate) struct BlockCompressor {
    compressor: zstd::bulk::Compressor<'static>,
    prefix: Vec<u8>,
    frame: Vec<u8>,
}

impl BlockCompressor {
    pub(crate) fn new(level: i32) -> Result<BlockCompressor> {
        Ok(BlockCompressor {
            compressor: zstd::bulk::Compressor::new(level)?,
            prefix: Vec::with_capacity(MAX_VARINT32_LEN),
            frame: Vec::new(),
        })
    }

    /// Compresses `raw`; returns the stored contents as `(prefix, frame)`
    /// when that saves at least 12.5%, `None` when the block should be
    /// stored raw (too small a gain, too large, or zstd refused).
    pub(crate) fn compress(&mut self, raw: &[u8]) -> Option<(&[u8], &[u8])> {
        if raw.len() > MAX_DECOMPRESSED_LEN {
            return None;
        }
        let raw_len = u32::try_from(raw.len()).ok()?;
        self.frame.clear();
        self.frame.reserve(zstd::compress_bound(raw.len()));
        // An error only means this block is stored raw, which is always valid.
        self.compressor
            .compress_to_buffer(raw, &mut self.frame)
            .ok()?;
        self.prefix.clear();
        put_varint32(&mut self.prefix, raw_len);
        let stored = self.prefix.len() + self.frame.len();
        if stored < raw.len() - raw.len() / 8 {
            Some((&self.prefix, &self.frame))
        } else {
            None
        }
    }
}

thread_local! {
    /// One zstd decompression context per thread: creating one costs an
    /// allocation of ~100 KiB, too much to pay per block.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decompresses the stored contents of a zstd block that starts at
/// `block_offset` in the file (used in error reports).
pub(crate) fn decompress_zstd(stored: &[u8], block_offset: u64) -> Result<Vec<u8>> {
    let bad = |reason: &str| Error::corruption(block_offset, format!("zstd block: {reason}"));
    let (raw_len, n) = get_varint32(stored).ok_or_else(|| bad("bad raw length varint"))?;
    let raw_len = raw_len as usize;
    if raw_len > MAX_DECOMPRESSED_LEN {
        return Err(bad("raw length above the 128 MiB limit"));
    }
    let frame = stored.get(n..).unwrap_or_default();
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size == raw_len as u64 => {}
        Ok(Some(_)) => return Err(bad("frame content size differs from raw length")),
        Ok(None) => return Err(bad("frame does not record its content size")),
        Err(_) => return Err(bad("bad frame header")),
    }
    let mut out = Vec::with_capacity(raw_len);
    let result = DECOMPRESSOR.with(|cell| -> std::io::Result<usize> {
        // try_borrow_mut: a re-entrant call (impossible today) gets a fresh
        // context instead of a panic.
        match cell.try_borrow_mut() {
            Ok(mut slot) => {
                if slot.is_none() {
                    *slot = Some(zstd::bulk::Decompressor::new()?);
                }
                match slot.as_mut() {
                    Some(d) => d.decompress_to_buffer(frame, &mut out),
                    None => Err(std::io::Error::other("no zstd context")),
                }
            }
            Err(_) => zstd::bulk::Decompressor::new()?.decompress_to_buffer(frame, &mut out),
        }
    });
    match result {
        Ok(len) if len == raw_len && out.len() == raw_len => Ok(out),
        Ok(_) => Err(bad("decompressed length differs from raw length")),
        Err(e) => Err(bad(&e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_twelve_and_a_half_percent_rule() {
        let mut c = BlockCompressor::new(3).unwrap();
        let raw: Vec<u8> = (0..4096u32).map(|i| (i % 7) as u8).collect();
        let (prefix, frame) = c.compress(&raw).unwrap();
        let stored = [prefix, frame].concat();
        assert!(stored.len() < raw.len() - raw.len() / 8);
        assert_eq!(decompress_zstd(&stored, 0).unwrap(), raw);

        // Random bytes do not compress: stored raw.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(c.compress(&noise).is_none());
    }

    #[test]
    fn rejects_lying_lengths_and_garbage() {
        let mut c = BlockCompressor::new(1).unwrap();
        let raw = vec![b'a'; 1000];
        let (prefix, frame) = c.compress(&raw).unwrap();
        let frame = frame.to_vec();
        let _ = prefix;
        for claimed in [0u32, 999, 1001, u32::MAX] {
            let mut stored = Vec::new();
            put_varint32(&mut stored, claimed);
            stored.extend_from_slice(&frame);
            let err = decompress_zstd(&stored, 77).unwrap_err();
            assert!(matches!(err, Error::Corruption { offset: 77, .. }), "{err}");
        }
        for garbage in [&[][..], &[0x80][..], &[5, 1, 2, 3][..]] {
            assert!(decompress_zstd(garbage, 0).is_err());
        }
    }
}
