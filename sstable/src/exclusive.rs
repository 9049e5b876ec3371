//! Keeping the block cache and the OS page cache from holding the same
//! data blocks when memory is short.
//!
//! A block read with `pread` lands in the page cache, and then in the
//! block cache too. Under a memory limit that counts both (a container's)
//! the copies cost reads: every block-cache miss inserts a block, so the
//! block cache holds the blocks read last, whose pages the page cache,
//! many times larger, holds as well; its memory then caches nothing the
//! page cache does not (docs/performance.md measured 28% more bytes read
//! per lookup with a 64 MiB block cache than with 8 MiB under 512 MiB).
//! A block the block cache keeps for longer is served from there, its
//! page is not read again, and the kernel evicts that page as cold: the
//! copies last only as long as the block cache turns over faster than the
//! page cache.
//!
//! So while memory is short, data blocks read from the file do not enter
//! the block cache: it keeps what it holds (hits still count), the page
//! cache holds everything else, and each block is in one of them. To know
//! when memory is short, a table reads one block in [`PROBE_EVERY`] that
//! it would cache first without waiting for storage
//! (`preadv2(RWF_NOWAIT)`, through
//! [`BlockSource::read_into_if_cached`](crate::BlockSource)), which tells
//! whether the page cache held it, and counts the probes that went to
//! storage in a [`PageCacheGauge`] shared by the database's tables:
//! memory is short while more than 1/[`SHORT_ABOVE`] of a window of
//! [`WINDOW_READS`] probes went to storage. (Probing every read cost 2-4%
//! of point reads in memory, before read buffers were pooled:
//! `preadv2` takes initialised buffers, so each block's buffer was
//! zeroed first; and a probe that misses is one more system call.) With the data in memory, none
//! do (once it has been read), and blocks enter the block cache as they
//! always did. The gauge is the database's, not a table's: under a limit
//! the kernel keeps the pages of the tables read most per page (the
//! smaller levels), and a table that judged alone would keep filling the
//! block cache with copies of them, taking memory from the others.
//!
//! Tried first and dropped: moving a block found in the page cache into
//! the block cache and dropping its page (`POSIX_FADV_DONTNEED`), reads
//! from storage left to the page cache. Every block the block cache then
//! evicts is lost to both, the page cache shrinks below the limit (the
//! kernel stops evicting, so the gauge stops seeing shortage), and under
//! 512 MiB it read 42-54% more per seek than filling the block cache as
//! before (docs/performance.md).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One block read in this many is a probe.
pub(crate) const PROBE_EVERY: u32 = 8;
/// Probes per decision.
pub(crate) const WINDOW_READS: u64 = 1024;
/// Memory is short while more than 1/this of a window's reads went to
/// storage.
pub(crate) const SHORT_ABOVE: u64 = 32;

/// Where the bytes of a block read for the cache came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadFrom {
    /// The page cache held every byte.
    PageCache,
    /// Some had to come from storage.
    Storage,
}

/// Whether memory is short for a database's tables, judged from their
/// block reads (see the [module](self)). Shared by the tables of one
/// block cache ([`crate::TableReadOptions::page_cache_gauge`]).
#[derive(Debug, Default)]
pub struct PageCacheGauge {
    /// The current window: reads in the low 32 bits, reads that went to
    /// storage in the high 32.
    window: AtomicU64,
    /// What the last full window said.
    short: AtomicBool,
}

impl PageCacheGauge {
    /// A gauge that starts with memory not short.
    pub fn new() -> PageCacheGauge {
        PageCacheGauge::default()
    }

    /// Whether the last window found memory short.
    pub fn is_short(&self) -> bool {
        self.short.load(Ordering::Relaxed)
    }

    /// Counts a probe that read from `from`.
    pub(crate) fn count(&self, from: ReadFrom) {
        let counts = 1 + (u64::from(from == ReadFrom::Storage) << 32);
        let before = self.window.fetch_add(counts, Ordering::Relaxed);
        if (before & u64::from(u32::MAX)) + 1 == WINDOW_READS {
            // This read closes the window: decide, and start the next one
            // (reads counted meanwhile by other threads carry over).
            let storage = (before + counts) >> 32;
            self.short
                .store(storage * SHORT_ABOVE > WINDOW_READS, Ordering::Relaxed);
            self.window
                .fetch_sub(WINDOW_READS | (storage << 32), Ordering::Relaxed);
        }
    }
}

thread_local! {
    /// Block reads by this thread since its last probe.
    static SINCE_PROBE: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread's next block read for the cache is a probe: one
/// in [`PROBE_EVERY`].
pub(crate) fn probe_now() -> bool {
    SINCE_PROBE.with(|n| {
        let next = n.get() + 1;
        let probe = next >= PROBE_EVERY;
        n.set(if probe { 0 } else { next });
        probe
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts a window of probes, every `every_nth_to_storage`th (none
    /// if 0) from storage; whether memory was short before each.
    fn window(gauge: &PageCacheGauge, every_nth_to_storage: u64) -> Vec<bool> {
        (0..WINDOW_READS)
            .map(|i| {
                let from = if every_nth_to_storage > 0 && i % every_nth_to_storage == 0 {
                    ReadFrom::Storage
                } else {
                    ReadFrom::PageCache
                };
                let short = gauge.is_short();
                gauge.count(from);
                short
            })
            .collect()
    }

    #[test]
    fn memory_is_short_from_a_window_of_probes_going_to_storage_to_one_that_does_not() {
        let gauge = PageCacheGauge::new();
        // Page-cache hits only: memory is not short.
        assert!(window(&gauge, 0).iter().all(|&short| !short));
        assert!(!gauge.is_short());
        // A window where a quarter of the probes go to storage decides on
        // its last probe.
        assert!(window(&gauge, 4).iter().all(|&short| !short));
        assert!(gauge.is_short());
        assert!(window(&gauge, 4).iter().all(|&short| short));
        assert!(gauge.is_short());
        // Probes that find the page cache holding the data end it.
        window(&gauge, 0);
        assert!(!gauge.is_short());
    }

    #[test]
    fn one_block_read_in_probe_every_is_a_probe() {
        let probes = (0..PROBE_EVERY * 10).filter(|_| probe_now()).count();
        assert_eq!(probes, 10);
    }

    #[test]
    fn a_few_reads_from_storage_do_not_make_memory_short() {
        let gauge = PageCacheGauge::new();
        // 1 in 64 (cold blocks of a database that fits in memory).
        window(&gauge, 64);
        assert!(!gauge.is_short());
        // 1 in 16.
        window(&gauge, 16);
        assert!(gauge.is_short());
    }
}
