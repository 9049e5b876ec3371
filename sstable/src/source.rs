//! Where a table's bytes come from: positional reads of a file, or the
//! whole file in memory.
//!
//! The reader never asks for "the whole table": it reads the footer, the
//! meta blocks, the index and the filter at open, then one block (or one
//! readahead window) at a time. A source backed by `pread` therefore
//! reads from storage only the blocks a lookup needs, and the page cache
//! holds only what was read; a source that already holds the file in
//! memory (a `Bytes`, a memory map) lends slices of it instead.

use std::io;

use bytes::Bytes;

/// Positional reads of one immutable table file.
///
/// Implemented by the engine over its filesystem (a `pread` per call) and
/// here for [`Bytes`] (a table in memory). Every call may come from any
/// thread at once.
pub trait BlockSource: Send + Sync {
    /// The file's size in bytes.
    fn size(&self) -> u64;

    /// The `len` bytes at `offset`. Fewer bytes than asked (the file is
    /// shorter than it was at open) is an error of kind
    /// [`io::ErrorKind::UnexpectedEof`]; the reader reports it as
    /// corruption at `offset`.
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes>;

    /// [`read_at`](Self::read_at) into `buf`'s memory (its contents are
    /// discarded), so a reader that reads many windows in turn reuses one
    /// buffer instead of allocating (and the kernel zeroing) fresh memory
    /// for each. The default ignores `buf`.
    fn read_at_into(&self, offset: u64, len: usize, buf: Vec<u8>) -> io::Result<Bytes> {
        let _ = buf;
        self.read_at(offset, len)
    }

    /// [`read_at`](Self::read_at) into `buf` (cleared first; its memory
    /// reused), so that a reader can keep the buffers of blocks it drops
    /// for the next reads instead of freeing them. The default copies
    /// what `read_at` returns.
    fn read_into(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        let bytes = self.read_at(offset, len)?;
        buf.clear();
        buf.extend_from_slice(&bytes);
        Ok(())
    }

    /// [`read_into`](Self::read_into) if the bytes are in memory already
    /// (the operating system's page cache), without waiting for storage:
    /// `Ok(false)` when some are not (`buf` then holds nothing useful).
    /// The reader uses it to tell whether memory is short (see
    /// `exclusive.rs`). The default reads: a source that cannot tell is
    /// taken as held in memory.
    fn read_into_if_cached(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<bool> {
        self.read_into(offset, len, buf).map(|()| true)
    }

    /// The whole file, when the source holds it in memory already (a
    /// `Bytes`, a memory map): the reader then reads uncompressed blocks in
    /// place and never caches them. `None` (the default) for sources that
    /// read from storage.
    fn in_memory(&self) -> Option<&Bytes> {
        None
    }

    /// A hint that `len` bytes at `offset` will be read soon (a scan's
    /// next blocks): a source may start reading them in the background.
    /// The default ignores it.
    fn will_need(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }
}

impl BlockSource for Bytes {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= self.len() => Ok(self.slice(start..end)),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {len} bytes at {offset} past the end of a {}-byte table",
                    self.len()
                ),
            )),
        }
    }

    fn in_memory(&self) -> Option<&Bytes> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_source_lends_slices_and_refuses_reads_past_the_end() {
        let file = Bytes::from_static(b"0123456789");
        assert_eq!(file.size(), 10);
        assert_eq!(&file.read_at(2, 3).unwrap()[..], b"234");
        assert_eq!(&file.read_at(10, 0).unwrap()[..], b"");
        for (offset, len) in [(8, 3), (11, 0), (u64::MAX, 1)] {
            let e = file.read_at(offset, len).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{offset} {len}");
        }
        assert!(file.in_memory().is_some());
    }
}
