//! Readahead for scans over a table read from storage: blocks are read in
//! windows of many blocks, so a scan makes one read per window instead of
//! one per block, and each block is then a zero-copy slice of its window.
//!
//! Two modes, as RocksDB's: a fixed window from the first read (a
//! compaction's `compaction_readahead_size`), or automatic for user
//! scans: after two blocks read in a row in the same direction, a window
//! of 8 KiB that doubles with each window up to 256 KiB (RocksDB's
//! `initial_auto_readahead_size` and `max_auto_readahead_size`; here it
//! works backwards too, so reverse scans get it). A jump resets it, so a
//! point lookup or a short seek reads one block.

use bytes::Bytes;

use crate::block_fetch::{read_error, stored_len};
use crate::data_layout::follows_in_scan;
use crate::error::{Error, Result};
use crate::handle::{BlockHandle, BLOCK_TRAILER_LEN};
use crate::source::BlockSource;

/// Blocks read in a row before automatic readahead starts (RocksDB's
/// `num_file_reads_for_auto_readahead`).
const AUTO_AFTER_SEQUENTIAL_READS: u32 = 2;
/// First automatic window (RocksDB's `initial_auto_readahead_size`).
const AUTO_INITIAL_BYTES: usize = 8 << 10;
/// Largest automatic window (RocksDB's `max_auto_readahead_size`).
pub const MAX_AUTO_READAHEAD_BYTES: usize = 256 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

/// One scan's readahead state and its current window.
#[derive(Debug)]
pub(crate) struct Readahead {
    /// `Some(bytes)`: fixed windows from the first read; `None`: automatic.
    fixed: Option<usize>,
    /// Data blocks are aligned to this (0: right after each other), so
    /// the block after one ending at `e` starts at `e` or at `e` rounded
    /// up (`data_layout::follows_in_scan`).
    alignment: u64,
    /// The bytes of the file from `window_start`.
    window: Bytes,
    window_start: u64,
    /// The block loaded last (offset, end with trailer), to tell a scan
    /// from a jump.
    last: Option<(u64, u64)>,
    direction: Option<Direction>,
    sequential: u32,
    next_auto_bytes: usize,
}

impl Readahead {
    /// Readahead of `bytes` per window, or automatic when 0 (RocksDB's
    /// `ReadOptions::readahead_size`), over data blocks aligned to
    /// `alignment` (0: none).
    pub(crate) fn new(bytes: usize, alignment: u64) -> Readahead {
        Readahead {
            fixed: (bytes > 0).then_some(bytes),
            alignment,
            window: Bytes::new(),
            window_start: 0,
            last: None,
            direction: None,
            sequential: 0,
            next_auto_bytes: AUTO_INITIAL_BYTES,
        }
    }

    /// Notes that the scan moves to the block at `handle` (read from the
    /// file or found in the cache), so the access pattern is known.
    pub(crate) fn note(&mut self, handle: BlockHandle) {
        let end = handle.end_with_trailer().unwrap_or(u64::MAX);
        let direction = match self.last {
            Some((_, last_end)) if follows_in_scan(last_end, handle.offset, self.alignment) => {
                Some(Direction::Forward)
            }
            Some((last_offset, _)) if follows_in_scan(end, last_offset, self.alignment) => {
                Some(Direction::Backward)
            }
            _ => None,
        };
        if direction.is_some() && direction == self.direction {
            self.sequential = self.sequential.saturating_add(1);
        } else {
            self.sequential = u32::from(direction.is_some());
            self.next_auto_bytes = AUTO_INITIAL_BYTES;
        }
        self.direction = direction;
        self.last = Some((handle.offset, end));
    }

    /// The block at `handle` with its trailer (it must end at or before
    /// `limit`, the end of the data region), and whether it is a slice of
    /// a readahead window (which a cache must copy rather than keep: the
    /// slice holds the whole window).
    pub(crate) fn fetch(
        &mut self,
        source: &dyn BlockSource,
        handle: BlockHandle,
        limit: u64,
        what: &str,
    ) -> Result<(Bytes, bool)> {
        let len = stored_len(handle, limit, what)?;
        self.read(source, handle.offset, len, limit, what)
    }

    /// `len` bytes at `offset` (ending at or before `limit`), through the
    /// window as [`Readahead::fetch`] reads a block.
    pub(crate) fn read(
        &mut self,
        source: &dyn BlockSource,
        offset: u64,
        len: usize,
        limit: u64,
        what: &str,
    ) -> Result<(Bytes, bool)> {
        let handle = BlockHandle {
            offset,
            size: (len as u64).saturating_sub(BLOCK_TRAILER_LEN as u64),
        };
        if let Some(raw) = self.in_window(handle.offset, len) {
            return Ok((raw, true));
        }
        let window_bytes = self.window_bytes();
        if self.fixed.is_none() && window_bytes > 0 {
            self.next_auto_bytes = (window_bytes * 2).min(MAX_AUTO_READAHEAD_BYTES);
        }
        if window_bytes <= len {
            return Ok((read_exact(source, offset, len, what)?, false));
        }
        let block_end = handle.offset + len as u64;
        let (start, end) = match self.direction {
            Some(Direction::Backward) => (block_end.saturating_sub(window_bytes as u64), block_end),
            _ => (
                handle.offset,
                handle.offset.saturating_add(window_bytes as u64).min(limit),
            ),
        };
        let window_len = (end - start) as usize;
        // Reuse the last window's memory when nothing holds on to it any
        // more (blocks the cache keeps are copies): a fresh large buffer
        // per window costs page faults and the kernel zeroing it.
        let spare = match std::mem::take(&mut self.window).try_into_mut() {
            Ok(mut old) => {
                old.clear();
                Vec::from(old)
            }
            Err(_) => Vec::new(),
        };
        self.window = source
            .read_at_into(start, window_len, spare)
            .map_err(|e| read_error(e, handle.offset, what))?;
        self.window_start = start;
        if self.window.len() != window_len {
            return Err(Error::corruption(
                handle.offset,
                format!("{what} block: short read from the table file"),
            ));
        }
        match self.in_window(handle.offset, len) {
            Some(raw) => Ok((raw, true)),
            None => Ok((read_exact(source, offset, len, what)?, false)),
        }
    }

    /// Whether [`Readahead::read`] of `len` bytes at `offset` would be
    /// served from a window (the current one or a new one) rather than
    /// by one read of exactly those bytes.
    pub(crate) fn would_window(&self, offset: u64, len: usize) -> bool {
        self.in_window(offset, len).is_some() || self.window_bytes() > len
    }

    /// The size of the next window to read: 0 while automatic readahead
    /// has not started.
    fn window_bytes(&self) -> usize {
        match self.fixed {
            Some(bytes) => bytes,
            None if self.sequential >= AUTO_AFTER_SEQUENTIAL_READS => self.next_auto_bytes,
            None => 0,
        }
    }

    fn in_window(&self, offset: u64, len: usize) -> Option<Bytes> {
        let start = usize::try_from(offset.checked_sub(self.window_start)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.window.len()).then(|| self.window.slice(start..end))
    }
}

/// Exactly `len` bytes at `offset` from `source`.
fn read_exact(source: &dyn BlockSource, offset: u64, len: usize, what: &str) -> Result<Bytes> {
    let raw = source
        .read_at(offset, len)
        .map_err(|e| read_error(e, offset, what))?;
    if raw.len() != len {
        return Err(Error::corruption(
            offset,
            format!("{what} block: short read from the table file"),
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file of 100 blocks of 95 bytes (plus a 5-byte trailer each) that
    /// counts its reads.
    struct Counted {
        file: Bytes,
        reads: AtomicUsize,
        bytes: AtomicUsize,
    }

    impl BlockSource for Counted {
        fn size(&self) -> u64 {
            self.file.len() as u64
        }
        fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(len, Ordering::Relaxed);
            self.file.read_at(offset, len)
        }
    }

    fn file() -> Counted {
        Counted {
            file: Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<u8>>()),
            reads: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
        }
    }

    fn block(i: u64) -> BlockHandle {
        BlockHandle {
            offset: i * 100,
            size: 95,
        }
    }

    fn scan(ra: &mut Readahead, src: &Counted, order: impl Iterator<Item = u64>) {
        for i in order {
            ra.note(block(i));
            let (raw, _) = ra.fetch(src, block(i), 10_000, "data").unwrap();
            let expected = src.file.slice(i as usize * 100..i as usize * 100 + 100);
            assert_eq!(raw, expected, "block {i}");
        }
    }

    #[test]
    fn a_forward_scan_reads_growing_windows_after_two_blocks() {
        let src = file();
        let mut ra = Readahead::new(0, 0);
        scan(&mut ra, &src, 0..100);
        // 2 single reads, then windows of 8, 16, 32, 64, 128, 256 KiB
        // clipped to the file: far fewer reads than blocks.
        assert!(src.reads.load(Ordering::Relaxed) <= 4, "{:?}", src.reads);
        assert!(src.bytes.load(Ordering::Relaxed) <= 10_000 + 200);
    }

    #[test]
    fn a_backward_scan_reads_windows_that_end_at_the_block() {
        let src = file();
        let mut ra = Readahead::new(0, 0);
        scan(&mut ra, &src, (0..100).rev());
        assert!(src.reads.load(Ordering::Relaxed) <= 4, "{:?}", src.reads);
        assert!(src.bytes.load(Ordering::Relaxed) <= 10_000 + 200);
    }

    #[test]
    fn blocks_separated_by_alignment_padding_are_a_scan() {
        // Blocks of 95 + 5 bytes starting on multiples of 128.
        let src = file();
        let aligned = |i: u64| BlockHandle {
            offset: i * 128,
            size: 95,
        };
        let mut ra = Readahead::new(0, 128);
        for i in 0..70 {
            ra.note(aligned(i));
            let (raw, _) = ra.fetch(&src, aligned(i), 10_000, "data").unwrap();
            assert_eq!(
                raw,
                src.file.slice(i as usize * 128..i as usize * 128 + 100)
            );
        }
        assert!(src.reads.load(Ordering::Relaxed) <= 4, "{:?}", src.reads);
        // Without knowing the alignment every block looks like a jump.
        let src = file();
        let mut ra = Readahead::new(0, 0);
        for i in 0..70 {
            ra.note(aligned(i));
            ra.fetch(&src, aligned(i), 10_000, "data").unwrap();
        }
        assert_eq!(src.reads.load(Ordering::Relaxed), 70);
    }

    #[test]
    fn blocks_back_to_back_or_padded_to_a_multiple_are_a_scan() {
        // Format version 5: blocks of 95 + 5 bytes, padded to the next
        // multiple of 128 only before every third one.
        let mut handles = Vec::new();
        let mut at = 0u64;
        for i in 0..60 {
            if i % 3 == 2 {
                at = at.next_multiple_of(128);
            }
            handles.push(BlockHandle {
                offset: at,
                size: 95,
            });
            at += 100;
        }
        assert!(at < 10_000);
        for order in [handles.clone(), handles.iter().rev().copied().collect()] {
            let src = file();
            let mut ra = Readahead::new(0, 128);
            for &h in &order {
                ra.note(h);
                let (raw, _) = ra.fetch(&src, h, 10_000, "data").unwrap();
                let start = h.offset as usize;
                assert_eq!(raw, src.file.slice(start..start + 100));
            }
            assert!(src.reads.load(Ordering::Relaxed) <= 5, "{:?}", src.reads);
        }
    }

    #[test]
    fn random_reads_get_no_readahead() {
        let src = file();
        let mut ra = Readahead::new(0, 0);
        scan(&mut ra, &src, [5, 50, 7, 90, 3, 60, 20].into_iter());
        assert_eq!(src.reads.load(Ordering::Relaxed), 7);
        assert_eq!(src.bytes.load(Ordering::Relaxed), 700);
    }

    #[test]
    fn a_fixed_window_starts_at_the_first_read_and_stops_at_the_limit() {
        let src = file();
        let mut ra = Readahead::new(2000, 0);
        scan(&mut ra, &src, 0..100);
        assert_eq!(src.reads.load(Ordering::Relaxed), 5);
        // The limit: a window never reads past it.
        let src = file();
        let mut ra = Readahead::new(1 << 20, 0);
        ra.note(block(90));
        let (raw, windowed) = ra.fetch(&src, block(90), 9_500, "data").unwrap();
        assert!(windowed);
        assert_eq!(raw.len(), 100);
        assert_eq!(src.bytes.load(Ordering::Relaxed), 500);
    }
}
