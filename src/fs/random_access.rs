//! Files read at chosen offsets: how tables are read.
//!
//! A table is read a block at a time (`pread` on the OS filesystem), so a
//! lookup reads from storage only the block it needs and memory pressure
//! evicts page-cache pages like any other; a memory map
//! ([`RandomAccessOptions::mmap`]) is the alternative for data that fits
//! in memory (see docs/performance.md).

use bytes::Bytes;
use std::io;

/// How a file is opened for reads at offsets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RandomAccessOptions {
    /// Map the file and read it in place (RocksDB's `allow_mmap_reads`).
    /// On the OS filesystem an I/O error or another program truncating
    /// the file then raises SIGBUS instead of returning an error (see
    /// UNSAFE.md).
    pub mmap: bool,
}

/// An immutable file read at offsets; shared by every reader of a table.
pub trait RandomAccessFile: Send + Sync {
    /// The file's size when it was opened.
    fn size(&self) -> u64;

    /// The `len` bytes at `offset`. A file that ends first is an error of
    /// kind [`io::ErrorKind::UnexpectedEof`].
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes>;

    /// [`read_at`](Self::read_at) into `buf`'s memory (its contents are
    /// discarded), to reuse one buffer for many reads. The default ignores
    /// `buf`.
    fn read_at_into(&self, offset: u64, len: usize, buf: Vec<u8>) -> io::Result<Bytes> {
        let _ = buf;
        self.read_at(offset, len)
    }

    /// [`read_at`](Self::read_at) into `buf` (cleared first; its memory
    /// reused), so that table readers can reuse the buffers of blocks they
    /// drop. The default copies what `read_at` returns.
    fn read_into(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        let bytes = self.read_at(offset, len)?;
        buf.clear();
        buf.extend_from_slice(&bytes);
        Ok(())
    }

    /// [`read_into`](Self::read_into) if the bytes are in memory already
    /// (the operating system's page cache), without waiting for storage:
    /// `Ok(false)` when some of them are not (the read may then have been
    /// started in the background; `buf` holds nothing useful). Table
    /// readers use it to tell whether memory is short. The default reads
    /// (a file that cannot tell is taken as held in memory).
    fn read_into_if_cached(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<bool> {
        self.read_into(offset, len, buf).map(|()| true)
    }

    /// The whole file, when it is held in memory (mapped): readers then
    /// read in place. The default: `None`.
    fn in_memory(&self) -> Option<&Bytes> {
        None
    }

    /// A hint that `len` bytes at `offset` will be read soon. The default
    /// ignores it.
    fn will_need(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }

    /// A hint that the file will not be read again soon, so the operating
    /// system may drop its cached pages (`POSIX_FADV_DONTNEED`). The
    /// default ignores it.
    fn drop_cache(&self) {}
}

/// A file read whole into memory, for filesystems that implement only
/// [`FileSystem::read`](super::FileSystem::read).
pub(crate) struct InMemoryFile(pub Bytes);

impl RandomAccessFile for InMemoryFile {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        slice_at(&self.0, offset, len)
    }

    fn in_memory(&self) -> Option<&Bytes> {
        Some(&self.0)
    }
}

/// `len` bytes of `file` at `offset`, zero-copy, or `UnexpectedEof`.
pub(crate) fn slice_at(file: &Bytes, offset: u64, len: usize) -> io::Result<Bytes> {
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    match start.checked_add(len) {
        Some(end) if end <= file.len() => Ok(file.slice(start..end)),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "read of {len} bytes at {offset} past the end of a {}-byte file",
                file.len()
            ),
        )),
    }
}
