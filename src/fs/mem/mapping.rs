//! The in-memory filesystem's backend for the memory-mapped WAL.
//!
//! A "mapping" is the inode itself: a store is visible to readers at once,
//! as a store into a shared mapping is in the page cache, and marks its
//! page dirty. Each store is one filesystem operation ([`FsOp::Append`]),
//! so a simulated crash or an injected fault can stop a copy between two
//! pages, as a kill in a page fault does; a store past the file's end
//! (not yet allocated, or cut under the mapping) fails where the OS
//! raises SIGBUS.
//! A quota (`quota.rs`) refuses a preallocation that does not fit, and a
//! store only when the files already take more than the limit.

use super::inode::PAGE;
use super::quota::Need;
use super::{FsOp, Handle};
use crate::fs::mapped_log::{LogBackend, PageStore, PageWarmer};
use std::io;

pub(super) struct MemMapping {
    handle: Handle,
    /// The mapping's length; `None` when unmapped.
    mapped_len: Option<u64>,
}

impl MemMapping {
    /// A backend over the freshly created (empty) file `handle`.
    pub fn new(handle: Handle) -> MemMapping {
        MemMapping {
            handle,
            mapped_len: None,
        }
    }
}

impl LogBackend for MemMapping {
    type Mapping<'a> = &'a mut MemMapping;
    type Warmer = MemWarmer;

    fn page_size(&self) -> usize {
        PAGE
    }

    fn preallocate(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let end = (offset + len) as usize;
        self.handle.write_inode(
            FsOp::Append,
            "preallocate",
            |inode| Need::Bytes(end.saturating_sub(inode.len()) as u64),
            |inode| {
                if end > inode.len() {
                    inode.set_len(end);
                }
            },
        )
    }

    fn map(&mut self, len: u64) -> io::Result<()> {
        // Only a live handle maps; the length may pass the file's end (a
        // reservation), where a store fails as the OS's SIGBUS would.
        self.handle.with_inode(None, |_| ())?;
        self.mapped_len = Some(len);
        Ok(())
    }

    fn unmap(&mut self) {
        self.mapped_len = None;
    }

    fn mapped_len(&self) -> Option<u64> {
        self.mapped_len
    }

    fn mapping(&mut self, allocated: u64) -> Option<&mut MemMapping> {
        let _ = allocated; // a store checks the file's end itself
        self.mapped_len.is_some().then_some(self)
    }

    fn sync_mapped(&mut self, offset: usize, len: usize) -> io::Result<()> {
        self.handle.with_inode(Some(FsOp::Sync), |inode| {
            inode.sync_range(offset..offset + len);
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.handle
            .with_inode(Some(FsOp::Sync), |inode| inode.sync_all())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.handle
            .with_inode(None, |inode| inode.set_len(len as usize))
    }

    fn warmer(&self, len: usize) -> Option<MemWarmer> {
        let _ = len;
        Some(MemWarmer {
            handle: self.handle.clone(),
        })
    }
}

impl PageStore for &mut MemMapping {
    fn store(&mut self, offset: usize, src: &[u8]) -> io::Result<()> {
        debug_assert!(offset / PAGE == (offset + src.len()).saturating_sub(1) / PAGE);
        debug_assert!(self
            .mapped_len
            .is_some_and(|m| (offset + src.len()) as u64 <= m));
        let path = &self.handle.path;
        self.handle
            .write_inode(
                FsOp::Append,
                "store",
                |_| Need::Allocated,
                |inode| {
                    if offset + src.len() > inode.len() {
                        return Err(io::Error::other(format!(
                            "{}: store at {offset} past the end of the mapped file ({} bytes): \
                         SIGBUS on a real filesystem",
                            path.display(),
                            inode.len()
                        )));
                    }
                    inode.write_at(offset, src);
                    Ok(())
                },
            )
            .and_then(|stored| stored)
    }
}

/// Warm-up over an inode: there is no page fault to take ahead, so a step
/// only checks that the page is still there (the job ends, as the OS
/// one's does, once the file is gone or cut). It changes no byte and
/// counts as no operation.
pub(super) struct MemWarmer {
    handle: Handle,
}

impl PageWarmer for MemWarmer {
    fn populate(&mut self, offset: usize, len: usize) -> bool {
        self.within_file(offset, len)
    }

    fn prefetch(&mut self, offset: usize, len: usize) -> bool {
        self.within_file(offset, len)
    }
}

impl MemWarmer {
    /// Memory has no page cache to fill: a step only checks, as the
    /// operating system's would, that its pages are still in the file.
    fn within_file(&self, offset: usize, len: usize) -> bool {
        self.handle
            .with_inode(None, |inode| offset + len <= inode.len())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use crate::fs::{FaultPlan, FileSystem, FsOp, LogKind, MemFileSystem, UnsyncedData};
    use std::io;
    use std::path::{Path, PathBuf};

    const KINDS: [LogKind; 2] = [LogKind::MemoryMapped, LogKind::Write];

    fn new_fs() -> (MemFileSystem, PathBuf) {
        let fs = MemFileSystem::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        (fs, PathBuf::from("/d/000001.log"))
    }

    /// Records of varied sizes, some spanning pages.
    fn record(n: u32) -> Vec<u8> {
        let len = [7, 300, 4096, 9000][n as usize % 4];
        (0..len).map(|i| (n as usize * 131 + i) as u8 | 1).collect()
    }

    #[test]
    fn both_kinds_write_and_read_back() {
        for kind in KINDS {
            let (fs, path) = new_fs();
            let mut log = fs.create_log(&path, 4096, kind).unwrap();
            let mut expected = Vec::new();
            for n in 0..200 {
                log.append(&record(n)).unwrap();
                expected.extend(record(n));
                if n % 50 == 0 {
                    log.sync().unwrap();
                }
            }
            let live = fs.read(&path).unwrap();
            assert!(live[..expected.len()] == expected[..], "{kind:?}");
            match kind {
                // Allocated ahead of the records in whole pages (grown
                // from one page), zeros past them.
                LogKind::MemoryMapped => {
                    assert!(live.len() > expected.len() && live.len().is_multiple_of(4096));
                    assert!(live[expected.len()..].iter().all(|&b| b == 0));
                }
                LogKind::Write => assert_eq!(live.len(), expected.len()),
            }
            drop(log);
            assert!(fs.read(&path).unwrap() == expected, "{kind:?} after close");
        }
    }

    #[test]
    fn both_kinds_keep_every_synced_byte_through_random_page_loss() {
        for kind in KINDS {
            let mut saw_hole = false;
            for seed in 0..40 {
                let (fs, path) = new_fs();
                let mut log = fs.create_log(&path, 4096, kind).unwrap();
                fs.sync_dir(Path::new("/d")).unwrap();
                let mut expected = Vec::new();
                let mut synced = 0;
                for n in 0..120 {
                    log.append(&record(n)).unwrap();
                    log.flush().unwrap();
                    expected.extend(record(n));
                    if n % 37 == 0 {
                        log.sync().unwrap();
                        synced = expected.len();
                    }
                }
                fs.crash();
                drop(log);
                fs.power_loss(UnsyncedData::KeepRandomPages(seed));
                let after = fs.read(&path).unwrap();
                assert!(
                    after.len() >= synced && after[..synced] == expected[..synced],
                    "{kind:?} seed {seed}: a synced byte was lost"
                );
                // Every page holds what was written or what was synced
                // (zeros past the synced bytes): a kept or a reverted page.
                let version = |upto: usize, at: usize, len: usize| -> Vec<u8> {
                    (at..at + len)
                        .map(|i| if i < upto { expected[i] } else { 0 })
                        .collect()
                };
                let mut reverted_before = false;
                for (i, page) in after.chunks(4096).enumerate() {
                    let at = i * 4096;
                    let new = version(expected.len(), at, page.len());
                    let old = version(synced, at, page.len());
                    assert!(
                        page == new || page == old,
                        "{kind:?} seed {seed}: page {i} is neither written nor synced content"
                    );
                    saw_hole |= reverted_before && page == new && new != old;
                    reverted_before |= page == old && new != old;
                }
            }
            assert!(saw_hole, "{kind:?}: no seed kept a page after a hole");
        }
    }

    #[test]
    fn a_crash_stops_a_mapped_copy_between_pages() {
        for seed in 0..20 {
            let (fs, path) = new_fs();
            // Allocated for every store below: no growth between them.
            let mut log = fs
                .create_log(&path, 5 * 4096, LogKind::MemoryMapped)
                .unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            log.append(&[1; 100]).unwrap();
            log.sync().unwrap();
            // Four pages' worth from offset 100: five stores; the third
            // fails, so the copy stopped after two pages.
            fs.crash_after(3);
            assert!(log.append(&[2; 4 * 4096]).is_err());
            fs.power_loss(UnsyncedData::KeepRandomPages(seed));
            let after = fs.read(&path).unwrap();
            let stored_end = 2 * 4096;
            assert!(after[..100].iter().all(|&b| b == 1), "seed {seed}");
            assert!(
                after[100..]
                    .iter()
                    .take(stored_end - 100)
                    .all(|&b| b == 2 || b == 0),
                "seed {seed}"
            );
            assert!(
                after.iter().skip(stored_end).all(|&b| b == 0),
                "seed {seed}: bytes of a store that never ran survived"
            );
        }
    }

    #[test]
    fn a_failed_store_leaves_the_earlier_pages_visible() {
        let (fs, path) = new_fs();
        // Room for the append without growing (no preallocation counted).
        let mut log = fs
            .create_log(&path, 8 * 4096, LogKind::MemoryMapped)
            .unwrap();
        // The first page's store succeeds, the second's fails.
        fs.add_fault(FaultPlan {
            path_contains: Some("000001.log".into()),
            ..FaultPlan::nth(FsOp::Append, 1)
        });
        assert!(log.append(&[3; 3 * 4096]).is_err());
        let live = fs.read(&path).unwrap();
        assert!(live[..4096].iter().all(|&b| b == 3));
        assert!(live[4096..].iter().all(|&b| b == 0));
        assert_eq!(log.len(), 0, "a failed append is not counted");
    }

    #[test]
    fn a_retired_mapped_log_syncs_refuses_appends_and_is_cut_on_close() {
        let (fs, path) = new_fs();
        let mut log = fs.create_log(&path, 4096, LogKind::MemoryMapped).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        log.append(b"first").unwrap();
        log.retire();
        assert!(log.append(b"second").is_err());
        log.sync().unwrap();
        drop(log);
        assert_eq!(&fs.read(&path).unwrap()[..], b"first");
        // The cut on close is metadata no sync covered: a power loss may
        // undo it, leaving the synced record and zeros.
        fs.power_loss(UnsyncedData::Drop);
        let after = fs.read(&path).unwrap();
        assert!(after.starts_with(b"first") && after[5..].iter().all(|&b| b == 0));
    }

    #[test]
    fn warm_up_over_memory_changes_nothing_and_ends_when_the_machine_stops() {
        let (fs, path) = new_fs();
        let mut log = fs
            .create_log(&path, 4 << 20, LogKind::MemoryMapped)
            .unwrap();
        log.append(b"abc").unwrap();
        let mut job = log.warm_up().expect("a mapped log has a warm-up");
        assert!(job(), "steps remain after the first MiB");
        assert_eq!(&fs.read(&path).unwrap()[..4], b"abc\0");
        fs.crash();
        assert!(!job(), "the job goes on on a stopped machine");
    }

    /// The file's length after each append, and the bytes appended.
    fn grow_by_records(
        log: &mut Box<dyn crate::fs::WritableFile>,
        fs: &MemFileSystem,
        path: &Path,
        bytes: usize,
    ) -> (Vec<u64>, Vec<u8>) {
        let (mut sizes, mut expected) = (Vec::new(), Vec::new());
        let mut n = 0;
        while expected.len() < bytes {
            log.append(&record(n)).unwrap();
            expected.extend(record(n));
            sizes.push(fs.file_size(path).unwrap());
            n += 1;
        }
        (sizes, expected)
    }

    #[test]
    fn a_log_created_small_grows_in_steps_and_reads_back_whole() {
        let (fs, path) = new_fs();
        let mut log = fs.create_log(&path, 4096, LogKind::MemoryMapped).unwrap();
        assert_eq!(fs.file_size(&path).unwrap(), 4096);
        let (sizes, expected) = grow_by_records(&mut log, &fs, &path, 3 << 20);
        let mut steps: Vec<u64> = sizes.clone();
        steps.dedup();
        assert!(steps.len() >= 8, "3 MiB from one page in {steps:?}");
        for (written, size) in expected_ends(&expected, &sizes) {
            // Never behind the records; ahead by a doubling made half a
            // step early (less than four times the records), or by the
            // one append that needed more.
            assert!(
                size >= written && size < 4 * written + 9000,
                "{written} in {size}"
            );
        }
        let live = fs.read(&path).unwrap();
        assert!(live[..expected.len()] == expected[..]);
        assert!(live[expected.len()..].iter().all(|&b| b == 0));
        drop(log);
        assert!(
            fs.read(&path).unwrap() == expected,
            "cut to the records on close"
        );
    }

    /// (bytes appended, file length) after each append.
    fn expected_ends(expected: &[u8], sizes: &[u64]) -> Vec<(u64, u64)> {
        let mut end = 0u64;
        (0u32..)
            .zip(sizes)
            .map(|(n, &size)| {
                end += record(n).len() as u64;
                (end, size)
            })
            .take_while(|&(end, _)| end <= expected.len() as u64)
            .collect()
    }

    #[test]
    fn a_log_past_its_address_reservation_is_mapped_again_and_reads_back() {
        let (fs, path) = new_fs();
        let mut log = fs.create_log(&path, 4096, LogKind::MemoryMapped).unwrap();
        // Past the 64 MiB reserved at creation, in 1 MiB appends.
        let chunk = |i: usize| vec![(i % 251) as u8 | 1; 1 << 20];
        for i in 0..70 {
            log.append(&chunk(i)).unwrap();
        }
        let live = fs.read(&path).unwrap();
        for i in 0..70 {
            assert!(live[i << 20..(i + 1) << 20] == chunk(i)[..], "MiB {i}");
        }
    }

    #[test]
    fn a_sync_makes_a_grown_length_durable_and_a_growth_no_sync_covered_may_be_lost() {
        let mut lost_growth = false;
        for seed in 0..40 {
            let (fs, path) = new_fs();
            let mut log = fs.create_log(&path, 4096, LogKind::MemoryMapped).unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            // Synced records across several growths, then a growth whose
            // records no sync covered.
            let (_, synced) = grow_by_records(&mut log, &fs, &path, 200_000);
            log.sync().unwrap();
            let synced_size = fs.file_size(&path).unwrap();
            let (_, unsynced) = grow_by_records(&mut log, &fs, &path, 300_000);
            let grown_size = fs.file_size(&path).unwrap();
            assert!(grown_size > synced_size, "no growth after the sync");
            fs.crash();
            drop(log);
            fs.power_loss(UnsyncedData::KeepRandomPages(seed));
            let after = fs.read(&path).unwrap();
            assert!(
                after.len() as u64 >= synced_size && after[..synced.len()] == synced[..],
                "seed {seed}: a synced record or the length holding it was lost"
            );
            // Each page holds what was appended or what was synced (zeros
            // past the synced records): a kept or a reverted page.
            let all = [synced.clone(), unsynced].concat();
            let version = |upto: usize, at: usize, len: usize| -> Vec<u8> {
                (at..at + len)
                    .map(|i| if i < upto { all[i] } else { 0 })
                    .collect()
            };
            for (i, page) in after.chunks(4096).enumerate() {
                let (at, len) = (i * 4096, page.len());
                assert!(
                    *page == version(all.len(), at, len)[..]
                        || *page == version(synced.len(), at, len)[..],
                    "seed {seed}: page {i} is neither appended nor synced content"
                );
            }
            lost_growth |= (after.len() as u64) < grown_size;
        }
        assert!(lost_growth, "no seed lost the unsynced growth's length");
    }

    #[test]
    fn a_full_disk_fails_only_an_append_past_the_allocated_pages_and_that_one_asks_for_them_alone()
    {
        let (fs, path) = new_fs();
        let mib = 1u64 << 20;
        let mut log = fs
            .create_log(&path, 2 * mib, LogKind::MemoryMapped)
            .unwrap();
        // Not one byte free: every growth fails from here on.
        fs.set_quota(Some(fs.used_bytes()));
        // Past half the allocation (where it would grow), up to its end.
        let chunk = |i: u64| vec![(i % 251) as u8 | 1; 64 << 10];
        for i in 0..32 {
            log.append(&chunk(i))
                .unwrap_or_else(|e| panic!("append {i} fits in the allocated pages: {e}"));
        }
        assert_eq!(log.len(), 2 * mib);
        assert_eq!(fs.file_size(&path).unwrap(), 2 * mib, "grew past the quota");
        let e = log.append(b"past the end").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
        assert_eq!(log.len(), 2 * mib, "a failed append is not counted");
        // Room for one page, not for a step (2 MiB): the append past the
        // end gets its page.
        fs.set_quota(Some(fs.used_bytes() + 4096));
        log.append(b"past the end").unwrap();
        assert_eq!(fs.file_size(&path).unwrap(), 2 * mib + 4096);
        let live = fs.read(&path).unwrap();
        for i in 0..32 {
            let at = (i << 16) as usize;
            assert!(live[at..at + (64 << 10)] == chunk(i)[..], "chunk {i}");
        }
        assert_eq!(&live[2 << 20..(2 << 20) + 12], b"past the end");
        // Room again: the growth deferred by the full disk happens.
        fs.set_quota(None);
        log.append(&chunk(99)).unwrap();
        assert!(fs.file_size(&path).unwrap() > 2 * mib + 4096);
    }

    #[test]
    fn each_growth_hands_out_a_warm_up_of_its_new_pages_once() {
        let (fs, path) = new_fs();
        let mut log = fs.create_log(&path, 4096, LogKind::MemoryMapped).unwrap();
        let mut jobs = 0;
        let mut steps = 0;
        let mut written = 0;
        while written < 5 << 20 {
            log.append(&[9; 64 << 10]).unwrap();
            written += 64 << 10;
            if let Some(mut job) = log.take_warm_up() {
                jobs += 1;
                steps += 1;
                while job() {
                    steps += 1;
                }
                assert!(
                    log.take_warm_up().is_none(),
                    "the same growth handed out twice"
                );
            }
        }
        // Grown to 16 MiB (8 MiB were half a step short of 5 MiB), through
        // 64 KiB (the first append's need), 128 and 256 KiB, 512 KiB, 1, 2,
        // 4, 8 and 16 MiB. Growths short of 256 KiB wait to join the next:
        // one warm-up of the first page to 512 KiB, then one per growth, of
        // its new pages only: one step per MiB boundary in it (1 MiB and
        // up), then one per 256 KiB: 2 + 2 + (1 + 4) + (2 + 8) + (4 + 16)
        // + (8 + 32).
        assert_eq!(fs.file_size(&path).unwrap(), 16 << 20);
        assert_eq!(jobs, 6, "warm-ups handed out");
        assert_eq!(steps, 79, "steps");
        let live = fs.read(&path).unwrap();
        assert!(live[..written].iter().all(|&b| b == 9) && live[written..].iter().all(|&b| b == 0));
    }
}
