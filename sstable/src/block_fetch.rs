//! Reading one stored block: its bounds, its trailer (compression type and
//! checksum), its decompression. Two forms: over a [`BlockSource`] (a
//! positional read of the block and its trailer, then checks on the bytes
//! read) and over a file held in memory (checks in place, no copy).

use std::io;

use bytes::Bytes;

use crate::checksum::block_checksum;
use crate::coding::read_u32_le;
use crate::compression::{decompress_zstd, DecompressionDict, TYPE_NONE, TYPE_ZSTD};
use crate::error::{Error, Result};
use crate::handle::{BlockHandle, BLOCK_TRAILER_LEN};
use crate::read_buffer::ReadBuffer;
use crate::source::BlockSource;

/// Checks that the block at `handle`, trailer included, ends at or before
/// `limit`; returns the length to read (contents and trailer).
pub(crate) fn stored_len(handle: BlockHandle, limit: u64, what: &str) -> Result<usize> {
    match handle.end_with_trailer() {
        Some(end) if end <= limit => usize::try_from(end - handle.offset)
            .map_err(|_| Error::corruption(handle.offset, format!("{what} block too large"))),
        _ => Err(Error::corruption(
            handle.offset,
            format!("{what} block handle outside its region"),
        )),
    }
}

/// An I/O error from reading `what` at `offset`: a short read means the
/// file is shorter than its own structure says, which is corruption; any
/// other error is reported as I/O, naming the block.
pub(crate) fn read_error(e: io::Error, offset: u64, what: &str) -> Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Error::corruption(
            offset,
            format!("{what} block runs past the end of the file"),
        )
    } else {
        Error::Io(io::Error::new(
            e.kind(),
            format!("reading the {what} block at offset {offset}: {e}"),
        ))
    }
}

/// The block at `handle` with its trailer, read from `source` into a
/// pooled buffer (`read_buffer.rs`); it must end at or before `limit`.
pub(crate) fn fetch(
    source: &dyn BlockSource,
    handle: BlockHandle,
    limit: u64,
    what: &str,
) -> Result<Bytes> {
    fetch_pooled(source, handle, limit, what).map(|(raw, _)| raw)
}

/// [`fetch`], saying also how many bytes of memory the block takes (its
/// pooled buffer's size).
pub(crate) fn fetch_pooled(
    source: &dyn BlockSource,
    handle: BlockHandle,
    limit: u64,
    what: &str,
) -> Result<(Bytes, usize)> {
    let len = stored_len(handle, limit, what)?;
    let mut buf = ReadBuffer::for_len(len);
    source
        .read_into(handle.offset, len, buf.vec_mut())
        .map_err(|e| read_error(e, handle.offset, what))?;
    let buffer_bytes = buf.capacity();
    Ok((
        checked_len(buf.into_bytes(), len, handle, what)?,
        buffer_bytes,
    ))
}

/// `raw`, if it is the `len` bytes asked for.
pub(crate) fn checked_len(
    raw: Bytes,
    len: usize,
    handle: BlockHandle,
    what: &str,
) -> Result<Bytes> {
    if raw.len() != len {
        return Err(Error::corruption(
            handle.offset,
            format!("{what} block: short read from the table file"),
        ));
    }
    Ok(raw)
}

/// Splits a block read with its trailer (`raw`, as [`fetch`] returns it)
/// into its stored contents and type byte, checking the checksum first
/// when `verify`.
pub(crate) fn open_trailer(
    raw: &Bytes,
    handle: BlockHandle,
    verify: bool,
    what: &str,
) -> Result<(Bytes, u8)> {
    let size = raw.len().saturating_sub(BLOCK_TRAILER_LEN);
    let (Some(contents), Some(&block_type), Some(stored)) = (
        raw.get(..size),
        raw.get(size),
        read_u32_le(raw, size.saturating_add(1)),
    ) else {
        return Err(Error::corruption(
            handle.offset,
            format!("{what} block shorter than its trailer"),
        ));
    };
    if verify && block_checksum(&[contents], block_type) != stored {
        return Err(Error::corruption(
            handle.offset,
            format!("{what} block checksum mismatch"),
        ));
    }
    Ok((raw.slice(..size), block_type))
}

/// Whether a block read with its trailer (`raw`) matches its checksum.
pub(crate) fn is_intact(raw: &Bytes, handle: BlockHandle) -> bool {
    open_trailer(raw, handle, true, "").is_ok()
}

/// The usable contents of a block whose stored contents and type byte are
/// given: uncompressed ones as they are (`true`: positions map to the
/// file), compressed ones decompressed (`false`), against `dict` when
/// given (a data block of a table with a dictionary).
pub(crate) fn decode(
    stored: Bytes,
    block_type: u8,
    handle: BlockHandle,
    what: &str,
    dict: Option<&DecompressionDict>,
) -> Result<(Bytes, bool)> {
    match block_type {
        TYPE_NONE => Ok((stored, true)),
        TYPE_ZSTD => Ok((
            Bytes::from(decompress_zstd(&stored, handle.offset, dict)?),
            false,
        )),
        other => Err(Error::corruption(
            handle.offset,
            format!("{what} block: unknown compression type {other}"),
        )),
    }
}

/// Reads, checks (when `verify`) and decodes the block at `handle` from
/// `source`: contents and whether they map byte for byte to the file.
pub(crate) fn read_contents(
    source: &dyn BlockSource,
    handle: BlockHandle,
    limit: u64,
    verify: bool,
    what: &str,
) -> Result<(Bytes, bool)> {
    let raw = fetch(source, handle, limit, what)?;
    let (stored, block_type) = open_trailer(&raw, handle, verify, what)?;
    decode(stored, block_type, handle, what, None)
}

/// In a file held in memory: the stored contents and type byte of the
/// block at `handle`, which must end (trailer included) at or before
/// `limit`. No copy.
pub(crate) fn stored_in_place<'a>(
    file: &'a [u8],
    handle: BlockHandle,
    limit: u64,
    what: &str,
) -> Result<(&'a [u8], u8)> {
    let len = stored_len(handle, limit, what)?;
    let start = handle.offset as usize;
    let size = len - BLOCK_TRAILER_LEN;
    let bad = || {
        Error::corruption(
            handle.offset,
            format!("{what} block handle outside its region"),
        )
    };
    let contents = file.get(start..start + size).ok_or_else(bad)?;
    let block_type = *file.get(start + size).ok_or_else(bad)?;
    Ok((contents, block_type))
}

/// In a file held in memory: verifies the checksum in the trailer of the
/// block at `handle`.
pub(crate) fn check_in_place(file: &[u8], handle: BlockHandle, what: &str) -> Result<()> {
    let start = handle.offset as usize;
    let end = start.saturating_add(handle.size as usize);
    let contents = file.get(start..end);
    let block_type = file.get(end).copied();
    let stored = read_u32_le(file, end.saturating_add(1));
    match (contents, block_type, stored) {
        (Some(c), Some(t), Some(crc)) if block_checksum(&[c], t) == crc => Ok(()),
        _ => Err(Error::corruption(
            handle.offset,
            format!("{what} block checksum mismatch"),
        )),
    }
}
