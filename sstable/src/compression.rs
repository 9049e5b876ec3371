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
//!
//! A table with a dictionary (format version 4) compresses its data blocks
//! against it (`BlockCompressor::with_dictionary`) and the reader
//! decompresses them with it, prepared once per open table
//! ([`DecompressionDict`]); index blocks never use it.

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

    /// A compressor whose blocks are compressed against `dictionary`
    /// (loaded once into the context, reused for every block).
    pub(crate) fn with_dictionary(level: i32, dictionary: &[u8]) -> Result<BlockCompressor> {
        Ok(BlockCompressor {
            compressor: zstd::bulk::Compressor::with_dictionary(level, dictionary)?,
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

/// The dictionary a table's data blocks were compressed against, prepared
/// for decompression (zstd's `DDict`: its entropy tables built once, not
/// per block).
pub(crate) struct DecompressionDict {
    ddict: zstd::zstd_safe::DDict<'static>,
    len: usize,
}

impl DecompressionDict {
    /// Prepares `bytes`, the `strata.compression_dict` block at `offset`.
    pub(crate) fn new(bytes: &[u8], offset: u64) -> Result<DecompressionDict> {
        let bad = |reason: &str| {
            Error::corruption(offset, format!("compression dictionary block: {reason}"))
        };
        if bytes.is_empty() {
            return Err(bad("empty"));
        }
        let ddict =
            zstd::zstd_safe::DDict::try_create(bytes).ok_or_else(|| bad("zstd cannot load it"))?;
        Ok(DecompressionDict {
            ddict,
            len: bytes.len(),
        })
    }

    /// The dictionary's size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A dictionary of at most `max_dict_bytes` for blocks like `samples`
/// (raw data blocks, back to back, of the lengths `sizes`): trained by
/// zstd when `train` (RocksDB's `zstd_max_train_bytes` > 0), else the
/// samples' first bytes as they are (a raw-content dictionary). `None`
/// when zstd's trainer fails (too few or too alike samples).
pub(crate) fn build_dictionary(
    samples: &[u8],
    sizes: &[usize],
    max_dict_bytes: usize,
    train: bool,
) -> Option<Vec<u8>> {
    if max_dict_bytes == 0 || samples.is_empty() {
        return None;
    }
    if train {
        zstd::dict::from_continuous(samples, sizes, max_dict_bytes)
            .ok()
            .filter(|d| !d.is_empty())
    } else {
        Some(samples[..samples.len().min(max_dict_bytes)].to_vec())
    }
}

thread_local! {
    /// One zstd decompression context per thread: creating one costs an
    /// allocation of ~100 KiB, too much to pay per block.
    static DECOMPRESSOR: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { RefCell::new(None) };
}

/// Decompresses the stored contents of a zstd block that starts at
/// `block_offset` in the file (used in error reports), against `dict` if
/// the table has one.
pub(crate) fn decompress_zstd(
    stored: &[u8],
    block_offset: u64,
    dict: Option<&DecompressionDict>,
) -> Result<Vec<u8>> {
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
    let run = |dctx: &mut zstd::zstd_safe::DCtx<'static>, out: &mut Vec<u8>| match dict {
        Some(d) => dctx.decompress_using_ddict(out, frame, &d.ddict),
        None => dctx.decompress(out, frame),
    };
    // `None`: zstd could not allocate a context.
    let result = DECOMPRESSOR.with(|cell| {
        // try_borrow_mut: a re-entrant call (impossible today) gets a fresh
        // context instead of a panic.
        match cell.try_borrow_mut() {
            Ok(mut slot) => {
                if slot.is_none() {
                    *slot = zstd::zstd_safe::DCtx::try_create();
                }
                slot.as_mut().map(|dctx| run(dctx, &mut out))
            }
            Err(_) => zstd::zstd_safe::DCtx::try_create().map(|mut dctx| run(&mut dctx, &mut out)),
        }
    });
    match result {
        Some(Ok(len)) if len == raw_len && out.len() == raw_len => Ok(out),
        Some(Ok(_)) => Err(bad("decompressed length differs from raw length")),
        Some(Err(code)) => Err(bad(zstd::zstd_safe::get_error_name(code))),
        None => Err(Error::Io(std::io::Error::other(
            "zstd could not allocate a decompression context",
        ))),
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
        assert_eq!(decompress_zstd(&stored, 0, None).unwrap(), raw);

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
            let err = decompress_zstd(&stored, 77, None).unwrap_err();
            assert!(matches!(err, Error::Corruption { offset: 77, .. }), "{err}");
        }
        for garbage in [&[][..], &[0x80][..], &[5, 1, 2, 3][..]] {
            assert!(decompress_zstd(garbage, 0, None).is_err());
        }
    }
}
