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
//! Every page a store touches is allocated first with `fallocate`, so page
//! faults never meet a full disk (no SIGBUS). The file starts at the
//! allocation its creator asks for (small for a database that has written
//! little: an idle database should not hold two 64 MiB logs) and grows in
//! steps as appends near its end ([`next_allocation`]: doubling, up to
//! [`MAX_GROWTH_STEP`] at a time). A growth happens half a step ahead of
//! need ([`MappedLog::grow_at`]): the writer pays one `fallocate` (tens of
//! microseconds) for pages the WAL syncer warms up
//! ([`WritableFile::take_warm_up`]) before the writer reaches them. So a
//! log that grew holds less than four times its records, and at most
//! 12 MiB more than them once large. On a full disk an early growth fails
//! no append: what fits in the allocated pages goes in, and only an
//! append past them (which first asks for just its own pages) fails. The
//! mapping is made over more address space than the file holds (a
//! reservation, [`reservation`]), so a growth is one `fallocate` and no
//! remap, until the file passes the reservation (a log grown far past
//! its start): it is then mapped again, with room to double. Stores
//! never reach past the allocated end
//! (a page there would be a SIGBUS). A clean close truncates the file to
//! the bytes written; after a crash the tail is zeros, which the log
//! reader treats as the end of the log.
//!
//! RocksDB allocates its WAL in steps too (`PrepareWrite`, in blocks of
//! `preallocation_block_size`), but its block is 1.1 times
//! `write_buffer_size`, so its first write allocates a whole memtable's
//! worth (with `FALLOC_FL_KEEP_SIZE`: `du` counts it, the apparent size
//! does not). It has no option for the step; neither has strata.
//!
//! What a growth relies on for durability: `fallocate` extends the file's
//! size, which is metadata, durable only once a later `fdatasync` (or
//! `msync(MS_SYNC)`, which runs the same path on Linux: a size change is
//! what `fdatasync` must commit) of this file commits it. A sync covers
//! the record it was asked for and the size of the file up to its end, so
//! a `sync: true` write's record is durable with the length that holds
//! it. A growth no sync covered may be lost by a power loss, with the
//! unsynced records in it: the file then ends earlier, or the grown
//! region reads as zeros, both the end of the log to the reader. The
//! in-memory filesystem models exactly that (`mem/inode.rs`).
//!
//! ext4 preallocates in extents of up to 8 MiB, and the first write fault
//! in each extent does the extent's bookkeeping under a journal handle,
//! which waits for a running journal commit: 13-38 ms per extent while
//! compactions write (measured on 10M fillrandom: the longest writes all
//! started within one record of an 8 MiB boundary). [`MappedLog::warm_up`]
//! faults the first page of every 1 MiB allocated in through a mapping of
//! its own (`MADV_POPULATE_WRITE`, which changes no byte), on the WAL
//! syncer thread, so the writer's own fault there finds that work done;
//! [`MappedLog::take_warm_up`] does the same for each growth.
//!
//! The same job brings every allocated page into the page cache
//! (`MADV_POPULATE_READ`: zero-filled, clean, no byte changed), 256 KiB a
//! step. Without it the writer's first store into each page found none:
//! its fault allocated and zero-filled the page and the readahead around
//! it, inside one write. With 4 KiB values those faults were 87% of the
//! writer's time in its writes over 60 µs, and set the p99.9
//! (docs/performance.md, "Large values: the pages a memtable writes"). Now
//! that fault only maps a cached page. Clean pages cost no write: those
//! past the log's last record are dropped when it is cut to it.
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
    /// Map `len` bytes of the file writable from its start, replacing the
    /// old mapping only once the new one exists. `len` may pass the
    /// file's end: the rest is address space reserved for its growth,
    /// never stored to before it is allocated.
    fn map(&mut self, len: u64) -> io::Result<()>;
    /// Drop the mapping; written bytes stay in the page cache.
    fn unmap(&mut self);
    /// The mapping's length (reservation included); `None` when unmapped.
    fn mapped_len(&self) -> Option<u64>;
    /// The mapping's first `allocated` bytes, if mapped. REQUIRES:
    /// `allocated` is at most the mapping's length and the file's
    /// allocated length (stores there never fault on a missing block).
    fn mapping(&mut self, allocated: u64) -> Option<Self::Mapping<'_>>;
    /// Make the pages of `offset..offset + len` durable through the
    /// mapping (`msync(MS_SYNC)`), and the file's size with them.
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
    /// Bring the pages of `offset..offset + len` into the page cache
    /// without changing or dirtying them; false when that failed (the job
    /// then ends).
    fn prefetch(&mut self, offset: usize, len: usize) -> bool;
}

/// A growth allocates at most this much at once: past it the file grows
/// linearly, so a large log holds at most this much unwritten.
pub(crate) const MAX_GROWTH_STEP: u64 = 8 << 20;

/// Address space is reserved for a log of at least this size, so a log
/// that grows from a small start to a memtable's worth (64 MiB by
/// default) is not remapped on the way.
const MIN_RESERVATION: u64 = 64 << 20;

/// How far the file is allocated once an append needs `needed` bytes of
/// a file allocated to `allocated`: past `needed`, by a step that doubles
/// the allocation, at most [`MAX_GROWTH_STEP`], rounded up to whole pages.
pub(crate) fn next_allocation(allocated: u64, needed: u64, page: u64) -> u64 {
    let step = allocated.clamp(page, MAX_GROWTH_STEP);
    needed.max(allocated + step).next_multiple_of(page)
}

/// The address space to reserve for a file allocated to `allocated`:
/// room to double, and at least [`MIN_RESERVATION`].
fn reservation(allocated: u64) -> u64 {
    allocated.saturating_mul(2).max(MIN_RESERVATION)
}

pub(crate) struct MappedLog<B: LogBackend> {
    backend: B,
    len: u64,
    synced: u64,
    /// The file's allocated length: stores go only below it.
    allocated: u64,
    /// The allocated length when the last warm-up job was handed out:
    /// what growth added past it is not warmed yet.
    warmed: u64,
}

impl<B: LogBackend> MappedLog<B> {
    /// Allocate `initial_bytes` (whole pages, at least one) of the empty
    /// file `backend` and map it, with address space reserved for its
    /// growth. `Unsupported` if the filesystem cannot preallocate.
    pub fn create(mut backend: B, initial_bytes: u64) -> io::Result<MappedLog<B>> {
        let page = backend.page_size() as u64;
        let allocated = initial_bytes.max(1).next_multiple_of(page);
        backend.preallocate(0, allocated)?;
        backend.map(reservation(allocated))?;
        Ok(MappedLog {
            backend,
            len: 0,
            synced: 0,
            allocated,
            warmed: allocated,
        })
    }

    /// Bytes made durable by the last sync.
    #[cfg(test)]
    pub fn synced(&self) -> u64 {
        self.synced
    }

    /// The mapping's length, reservation included.
    #[cfg(test)]
    pub fn mapped_len(&self) -> Option<u64> {
        self.backend.mapped_len()
    }

    /// An append ending past this grows the file first: half the next
    /// step before its end, so the step is allocated (and warmed up)
    /// ahead of the writer, which then rarely waits for either.
    fn grow_at(&self) -> u64 {
        let page = self.backend.page_size() as u64;
        let step = next_allocation(self.allocated, self.allocated, page) - self.allocated;
        self.allocated - step / 2
    }

    /// Allocate the file past `needed` bytes: one step, or more if one
    /// append needs it. A growth runs half a step early, so a full disk
    /// must not fail an append that fits in what is allocated (a failed
    /// append stops writes until a resume): then the growth is left for
    /// a later append to try again. An append that does not fit asks for
    /// just its own pages before it fails. On failure nothing changed:
    /// the log stays usable up to its old end.
    fn grow(&mut self, needed: u64) -> io::Result<()> {
        let page = self.backend.page_size() as u64;
        let step = next_allocation(self.allocated, needed, page);
        let Err(e) = self.allocate_to(step) else {
            return Ok(());
        };
        let exact = needed.next_multiple_of(page);
        if needed <= self.allocated {
            Ok(())
        } else if exact < step {
            self.allocate_to(exact)
        } else {
            Err(e)
        }
    }

    /// Extend the allocation to `target` bytes.
    fn allocate_to(&mut self, target: u64) -> io::Result<()> {
        self.backend
            .preallocate(self.allocated, target - self.allocated)?;
        self.allocated = target;
        Ok(())
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

/// A prefetch step brings in at most this much, so a sync asked for while
/// one runs waits little for it (a fraction of a millisecond). A divisor
/// of [`WARM_UP_STRIDE`].
pub(crate) const WARM_UP_STEP: usize = 256 << 10;

/// A warm-up of `from..to`, a step at a time: all of it brought into the
/// page cache, up to the next `WARM_UP_STEP` multiple a step, and the
/// first page of each `WARM_UP_STRIDE` multiple in it (never offset 0:
/// the writer's own first fault takes the extent there) faulted in
/// writable, one a step. Each extent's populate comes once the prefetch
/// has reached the extent before it: before any prefetch's readahead
/// could bring that first page in within a large folio, which the
/// populate would then dirty whole (extra writes at the next sync), and
/// no earlier, so the prefetch of the pages the writer needs first does
/// not wait behind the populates of the whole file (each can wait for a
/// journal commit). The one-stride lead assumes a readahead window well
/// under a stride (the default `read_ahead_kb` of 128 KiB reaches ~256
/// KiB past a fault; a device set above ~512 KiB could reach the next
/// extent's first page first, costing extra writes, not correctness).
/// Best effort: a failure only means the writer pays
/// for the faults itself, so the job just ends.
fn warm_up_job<W: PageWarmer>(mut warmer: W, from: usize, to: usize, page: usize) -> WarmUp {
    let mut extent = from.next_multiple_of(WARM_UP_STRIDE).max(WARM_UP_STRIDE);
    let mut offset = from;
    Box::new(move || {
        let warmed = if extent < to && extent <= offset + WARM_UP_STRIDE {
            let populated = warmer.populate(extent, page.min(to - extent));
            extent += WARM_UP_STRIDE;
            populated
        } else if offset < to {
            let end = (offset + 1).next_multiple_of(WARM_UP_STEP).min(to);
            let prefetched = warmer.prefetch(offset, end - offset);
            offset = end;
            prefetched
        } else {
            return false;
        };
        warmed && (extent < to || offset < to)
    })
}

impl<B: LogBackend> WritableFile for MappedLog<B> {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(mapped) = self.backend.mapped_len() else {
            return Err(io::Error::other("append to a retired log"));
        };
        let end = self.len + data.len() as u64;
        if end > self.grow_at() {
            self.grow(end)?;
        }
        let mut mapped = mapped;
        if end > mapped {
            // Past the reservation (a log far larger than its start): map
            // again, with room to double.
            self.backend.map(reservation(self.allocated))?;
            mapped = self.backend.mapped_len().unwrap_or(0);
        }
        let start = self.len as usize;
        let page = self.backend.page_size();
        let Some(mut map) = self.backend.mapping(self.allocated.min(mapped)) else {
            // Not reached (mapped above); were it, the record would be
            // counted and never stored.
            return Err(io::Error::other("append to a log with no mapping"));
        };
        copy_in_file_order(&mut map, data, start, page)?;
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
        // What is allocated now; what growth adds later comes from
        // `take_warm_up`.
        self.backend.mapped_len()?;
        let len = self.allocated as usize;
        let warmer = self.backend.warmer(len)?;
        // Not the first step's pages: the writer starts there as soon as
        // the file is current, so a prefetch there would only race its
        // first stores for the same pages.
        let from = WARM_UP_STEP.min(len);
        Some(warm_up_job(warmer, from, len, self.backend.page_size()))
    }

    fn take_warm_up(&mut self) -> Option<WarmUp> {
        let (from, to) = (self.warmed as usize, self.allocated as usize);
        // A growth of less than a step waits to join the next one: a job
        // costs the syncer a descriptor and two mappings.
        if to.saturating_sub(from) < WARM_UP_STEP {
            return None;
        }
        self.backend.mapped_len()?;
        self.warmed = self.allocated;
        let warmer = self.backend.warmer(to)?;
        Some(warm_up_job(warmer, from, to, self.backend.page_size()))
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
    fn allocation_doubles_from_a_page_then_grows_by_at_most_the_largest_step() {
        let page = 4096;
        let mut allocated = page;
        let mut sizes = vec![allocated];
        while allocated < 64 << 20 {
            allocated = next_allocation(allocated, allocated + 1, page);
            sizes.push(allocated);
        }
        let doubling: Vec<u64> = (12..=23).map(|shift| 1 << shift).collect();
        assert_eq!(sizes[..doubling.len()], doubling[..], "{sizes:?}");
        for pair in sizes[doubling.len() - 1..].windows(2) {
            assert_eq!(pair[1] - pair[0], MAX_GROWTH_STEP, "{sizes:?}");
        }
        // One append larger than a step gets all it needs, in pages.
        assert_eq!(next_allocation(page, 10 * page + 1, page), 11 * page);
        assert_eq!(next_allocation(5000, 5001, page), 12288);
    }

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

    /// A backend whose mapping is never handed out, as if lost.
    struct NoMapping(Option<u64>);

    impl LogBackend for NoMapping {
        type Mapping<'a> = Stores;
        type Warmer = NoWarmer;

        fn page_size(&self) -> usize {
            4096
        }
        fn preallocate(&mut self, _: u64, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn map(&mut self, len: u64) -> io::Result<()> {
            self.0 = Some(len);
            Ok(())
        }
        fn unmap(&mut self) {
            self.0 = None;
        }
        fn mapped_len(&self) -> Option<u64> {
            self.0
        }
        fn mapping(&mut self, _: u64) -> Option<Stores> {
            None
        }
        fn sync_mapped(&mut self, _: usize, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn sync_data(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn set_len(&mut self, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn warmer(&self, _: usize) -> Option<NoWarmer> {
            None
        }
    }

    struct NoWarmer;

    impl PageWarmer for NoWarmer {
        fn populate(&mut self, _: usize, _: usize) -> bool {
            false
        }
        fn prefetch(&mut self, _: usize, _: usize) -> bool {
            false
        }
    }

    /// What a warm-up asked of its warmer, in order: `(offset, None)` for a
    /// populate, `(offset, Some(len))` for a prefetch.
    type Asked = std::sync::Arc<parking_lot::Mutex<Vec<(usize, Option<usize>)>>>;

    impl PageWarmer for Asked {
        fn populate(&mut self, offset: usize, _: usize) -> bool {
            self.lock().push((offset, None));
            true
        }
        fn prefetch(&mut self, offset: usize, len: usize) -> bool {
            self.lock().push((offset, Some(len)));
            true
        }
    }

    #[test]
    fn a_warm_up_populates_each_extents_first_page_a_stride_ahead_of_its_prefetch() {
        let page = 4096;
        for (from, to) in [
            (0, 3 * WARM_UP_STRIDE + 5 * page),
            (WARM_UP_STRIDE - page, 2 * WARM_UP_STRIDE + page),
            (WARM_UP_STEP, 64 * WARM_UP_STRIDE),
            (7 * page, 9 * page),
        ] {
            let asked = Asked::default();
            let mut job = warm_up_job(std::sync::Arc::clone(&asked), from, to, page);
            let mut steps = 1;
            while job() {
                steps += 1;
            }
            let asked = asked.lock();
            assert_eq!(steps, asked.len(), "one populate or prefetch a step");
            let extents: Vec<usize> = (from..to)
                .filter(|o| o.is_multiple_of(WARM_UP_STRIDE) && *o != 0)
                .collect();
            let mut populated = Vec::new();
            // Where the prefetch has reached, once it has begun.
            let mut prefetched: Option<usize> = None;
            for &(offset, len) in asked.iter() {
                match len {
                    None => {
                        if let Some(end) = prefetched {
                            // No readahead has reached the page yet, and
                            // the prefetch did not wait for it long.
                            assert_eq!(end + WARM_UP_STRIDE, offset, "{from}..{to}");
                        } else {
                            assert!(offset <= from + WARM_UP_STRIDE, "{from}..{to}");
                        }
                        populated.push(offset);
                    }
                    Some(len) => {
                        let next = prefetched.unwrap_or(from);
                        assert_eq!(offset, next, "{from}..{to}: a gap or an overlap");
                        assert!(len > 0 && len <= WARM_UP_STEP);
                        prefetched = Some(offset + len);
                    }
                }
            }
            assert_eq!(populated, extents, "{from}..{to}: every extent, in order");
            assert_eq!(
                prefetched,
                Some(to),
                "{from}..{to}: not prefetched to its end"
            );
        }
    }

    #[test]
    fn an_append_with_no_mapping_to_store_into_fails_and_is_not_counted() {
        let mut log = MappedLog::create(NoMapping(None), 4096).unwrap();
        assert!(log.append(b"record").is_err());
        assert_eq!(log.len(), 0, "a record counted that was never stored");
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
