//! A write-ahead log appended by memory copy into a shared file mapping.
//!
//! The WAL buffer hands each write group's record to the operating system before
//! the write returns (the default durability: survive a process crash).
//! With `write(2)` that is a system call per group, about a third of a
//! lone writer's time; with a shared mapping it is a `memcpy` into the page
//! cache, which survives the process just the same. `sync` is `msync`
//! (`MS_SYNC`) over the unsynced range, as durable as `fdatasync`.
//!
//! Syncing a mapped range makes the kernel write-protect every page it
//! writes back, one TLB shootdown per page, and each one interrupts the
//! other cores. That is fine for the few pages of a sync write, but not for
//! the megabytes of a WAL retired at memtable rotation, so a retired log
//! drops its mapping first and is synced with `fdatasync`.
//!
//! A store into the mapping can be interrupted only by a page fault, and a
//! process killed in a fault leaves the stores issued before it. `memcpy`
//! does not store in address order (it writes the tail of a copy early), so
//! a copy spanning pages, killed in the fault of an earlier page, could
//! leave a later page written and an earlier one not: a hole of zeros in
//! the log followed by valid records, which recovery must refuse as
//! corruption. Appends therefore copy one page at a time, in file order:
//! killed in a page's fault, nothing of that page or later ones landed.
//! (A page that kernel writeback write-protects in the middle of its copy
//! faults mid-page; a kill in exactly that fault can still leave a hole
//! inside the page. That window is a few nanoseconds per writeback.)
//!
//! The file is preallocated with `fallocate`, so page faults never meet a
//! full disk (no SIGBUS), and grows by doubling. A clean close truncates
//! it to the bytes written; after a crash the tail is zeros, which the
//! log reader treats as the end of the log.
//!
//! ext4 preallocates in extents of up to 8 MiB, and the first write fault
//! in each extent does the extent's bookkeeping under a journal handle,
//! which waits for a running journal commit: 13-38 ms per extent while
//! compactions write (measured on 10M fillrandom: the longest writes all
//! started within one record of an 8 MiB boundary). [`MappedLog::warm_up`]
//! faults the first page of every 1 MiB in through a mapping of its own
//! (`MADV_POPULATE_WRITE`, which changes no byte), on the WAL syncer
//! thread, so the writer's own fault there finds that work done.
//!
//! The logic here is generic over a [`LogBackend`]: the operating system's
//! (`os_mapping.rs`: a `File` and a memmap2 mapping, monomorphised, so the
//! copy loop is the plain `memcpy` per page it always was) or the
//! in-memory filesystem's (`mem/mapping.rs`), so the power-loss and
//! simulation tests run this same code.

use super::{WarmUp, WritableFile};
use std::io;

/// The file under a [`MappedLog`]: one created empty for it, that it may
/// extend, map writable and sync.
pub(crate) trait LogBackend: Send + 'static {
    /// The writable mapping, borrowed for one append.
    type Mapping<'a>: PageStore
    where
        Self: 'a;
    /// What a warm-up job holds on to.
    type Warmer: PageWarmer;

    /// The unit stores are split into (see the module comment).
    fn page_size(&self) -> usize;
    /// Allocate the blocks of `offset..offset + len`, extending the file
    /// (`fallocate`). `Unsupported` if the filesystem cannot.
    fn preallocate(&mut self, offset: u64, len: u64) -> io::Result<()>;
    /// Map the whole file writable, replacing the old mapping only once
    /// the new one exists.
    fn map(&mut self) -> io::Result<()>;
    /// Drop the mapping; written bytes stay in the page cache.
    fn unmap(&mut self);
    /// The mapping's length; `None` when unmapped.
    fn mapped_len(&self) -> Option<u64>;
    /// The mapping, if mapped.
    fn mapping(&mut self) -> Option<Self::Mapping<'_>>;
    /// Make the pages of `offset..offset + len` durable through the
    /// mapping (`msync(MS_SYNC)`).
    fn sync_mapped(&mut self, offset: usize, len: usize) -> io::Result<()>;
    /// Make everything written durable (`fdatasync`), mapped or not.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cut (or extend) the file to `len` (`ftruncate`).
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// A handle for a warm-up job over the first `len` bytes, if the
    /// backend has use for one.
    fn warmer(&self, len: usize) -> Option<Self::Warmer>;
}

/// Stores into a writable mapping.
pub(crate) trait PageStore {
    /// Copy `src` to file offset `offset`. `src` lies within one page and
    /// within the mapping. An error means the store did not happen (only
    /// the in-memory backend fails: a simulated crash or fault).
    fn store(&mut self, offset: usize, src: &[u8]) -> io::Result<()>;
}

/// The operating system's mapping: a plain copy, which cannot fail (a
/// failure there is a signal, see UNSAFE.md).
impl PageStore for &mut [u8] {
    #[inline]
    fn store(&mut self, offset: usize, src: &[u8]) -> io::Result<()> {
        self[offset..offset + src.len()].copy_from_slice(src);
        Ok(())
    }
}

/// Faults pages in ahead of the writer.
pub(crate) trait PageWarmer: Send + 'static {
    /// Make the page at `offset` (`len` bytes) writable without changing
    /// its bytes; false when that failed (the job then ends).
    fn populate(&mut self, offset: usize, len: usize) -> bool;
}

pub(crate) struct MappedLog<B: LogBackend> {
    backend: B,
    len: u64,
    synced: u64,
}

impl<B: LogBackend> MappedLog<B> {
    /// Preallocate `expected_bytes` (at least 1 MiB) of the empty file
    /// `backend` and map it. `Unsupported` if the filesystem cannot
    /// preallocate.
    pub fn create(mut backend: B, expected_bytes: u64) -> io::Result<MappedLog<B>> {
        let size = expected_bytes.max(1 << 20);
        backend.preallocate(0, size)?;
        backend.map()?;
        Ok(MappedLog {
            backend,
            len: 0,
            synced: 0,
        })
    }

    /// Bytes made durable by the last sync.
    #[cfg(test)]
    pub fn synced(&self) -> u64 {
        self.synced
    }

    fn grow(&mut self, needed: u64) -> io::Result<()> {
        let current = self.backend.mapped_len().unwrap_or(0);
        let size = (current * 2).max(needed);
        self.backend.preallocate(current, size - current)?;
        self.backend.map()
    }
}

/// Copies `src` to file offset `offset` one page at a time, in order, so
/// that a process dying in a page fault leaves a prefix of `src` written
/// (see the module comment).
#[inline]
fn copy_in_file_order<S: PageStore>(
    dst: &mut S,
    src: &[u8],
    offset: usize,
    page: usize,
) -> io::Result<()> {
    let mut done = 0;
    while done < src.len() {
        let n = (page - (offset + done) % page).min(src.len() - done);
        dst.store(offset + done, &src[done..done + n])?;
        // Keep the compiler from merging or reordering the page copies.
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        done += n;
    }
    Ok(())
}

/// Warm-up faults one page in every this many bytes: a divisor of any
/// extent size ext4 (or another filesystem) is likely to preallocate.
pub(crate) const WARM_UP_STRIDE: usize = 1 << 20;

/// A warm-up up to `len`: each step faults in, writable, the first page of
/// the next `WARM_UP_STRIDE` bytes. Best effort: a failure only means the
/// writer pays for the fault itself, so the job just ends.
fn warm_up_job<W: PageWarmer>(mut warmer: W, len: usize, page: usize) -> WarmUp {
    let mut offset = WARM_UP_STRIDE; // the writer is already at the start
    Box::new(move || {
        if offset >= len {
            return false;
        }
        let populated = warmer.populate(offset, page.min(len - offset));
        offset += WARM_UP_STRIDE;
        populated && offset < len
    })
}

impl<B: LogBackend> WritableFile for MappedLog<B> {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(mapped) = self.backend.mapped_len() else {
            return Err(io::Error::other("append to a retired log"));
        };
        let end = self.len + data.len() as u64;
        if end > mapped {
            self.grow(end)?;
        }
        let start = self.len as usize;
        let page = self.backend.page_size();
        if let Some(mut map) = self.backend.mapping() {
            copy_in_file_order(&mut map, data, start, page)?;
        }
        self.len = end;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The bytes are in the page cache already.
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.synced < self.len {
            let from = self.synced as usize;
            if self.backend.mapped_len().is_some() {
                self.backend.sync_mapped(from, self.len as usize - from)?;
            } else {
                self.backend.sync_data()?;
            }
            self.synced = self.len;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn warm_up(&self) -> Option<WarmUp> {
        let len = self.backend.mapped_len().unwrap_or(0) as usize;
        let warmer = self.backend.warmer(len)?;
        Some(warm_up_job(warmer, len, self.backend.page_size()))
    }

    fn retire(&mut self) {
        // Unmapping leaves the written bytes dirty in the page cache, where
        // `fdatasync` finds them.
        self.backend.unmap();
    }
}

impl<B: LogBackend> Drop for MappedLog<B> {
    fn drop(&mut self) {
        // A cleanly closed log ends at its last record. Failure leaves
        // zeros at the tail, which readers accept.
        let _ = self.backend.set_len(self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ordered_copies_write_every_byte_at_any_offset_and_length() {
        let page = 4096;
        let src: Vec<u8> = (0..3 * page + 100).map(|i| (i * 31 % 251) as u8).collect();
        for offset in [0, 1, page - 1, page, page + 17] {
            for len in [0, 1, page - 1, page, page + 1, 3 * page + 100] {
                let mut file = vec![0u8; offset + len];
                copy_in_file_order(&mut &mut file[..], &src[..len], offset, page).unwrap();
                assert_eq!(&file[offset..], &src[..len], "offset {offset} len {len}");
            }
        }
    }

    /// Records each store, to see the split.
    struct Stores(Vec<(usize, usize)>);

    impl PageStore for Stores {
        fn store(&mut self, offset: usize, src: &[u8]) -> io::Result<()> {
            self.0.push((offset, src.len()));
            Ok(())
        }
    }

    #[test]
    fn copies_are_split_at_page_boundaries_in_file_order() {
        let mut stores = Stores(Vec::new());
        copy_in_file_order(&mut stores, &[0; 10_000], 4000, 4096).unwrap();
        assert_eq!(
            stores.0,
            [(4000, 96), (4096, 4096), (8192, 4096), (12288, 1712)]
        );
    }
}
