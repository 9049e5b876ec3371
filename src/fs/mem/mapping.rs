//! The in-memory filesystem's backend for the memory-mapped WAL.
//!
//! A "mapping" is the inode itself: a store is visible to readers at once,
//! as a store into a shared mapping is in the page cache, and marks its
//! page dirty. Each store is one filesystem operation ([`FsOp::Append`]),
//! so a simulated crash or an injected fault can stop a copy between two
//! pages, as a kill in a page fault does; a store past the file's end
//! (the file was cut under the mapping) fails where the OS raises SIGBUS.
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

    fn map(&mut self) -> io::Result<()> {
        let len = self.handle.with_inode(None, |inode| inode.len())?;
        self.mapped_len = Some(len as u64);
        Ok(())
    }

    fn unmap(&mut self) {
        self.mapped_len = None;
    }

    fn mapped_len(&self) -> Option<u64> {
        self.mapped_len
    }

    fn mapping(&mut self) -> Option<&mut MemMapping> {
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
        self.handle
            .with_inode(None, |inode| offset + len <= inode.len())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use crate::fs::{FaultPlan, FileSystem, FsOp, LogKind, MemFileSystem, UnsyncedData};
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
                // Preallocated (1 MiB, then doubled), zeros past the records.
                LogKind::MemoryMapped => {
                    assert!(live.len() >= 1 << 20 && live.len() > expected.len());
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
            let mut log = fs.create_log(&path, 4096, LogKind::MemoryMapped).unwrap();
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
        let mut log = fs.create_log(&path, 4096, LogKind::MemoryMapped).unwrap();
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
}
