//! The real filesystem: std::fs for writes and metadata, `pread` (or
//! memmap2, when asked) for tables, memmap2 for whole-file reads.

use super::os_random_access::OsRandomAccessFile;
use super::{FileLock, FileSystem, LogKind, RandomAccessFile, RandomAccessOptions, WritableFile};
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Appends are gathered in a user-space buffer of this size before a write
/// system call; the WAL flushes explicitly after every group, so this only
/// matters for table and manifest writes.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// The unit `start_writeback` rounds down to: a page.
const WRITEBACK_PAGE: u64 = 4096;

/// strata's default [`FileSystem`]: the operating system's.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFileSystem;

struct OsWritableFile {
    file: File,
    buffer: Vec<u8>,
    len: u64,
    /// Where the last writeback asked for ended (`start_writeback`).
    writeback_end: u64,
}

impl WritableFile for OsWritableFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if self.buffer.len() + data.len() > WRITE_BUFFER_BYTES {
            self.flush()?;
            if data.len() >= WRITE_BUFFER_BYTES {
                self.file.write_all(data)?;
                self.len += data.len() as u64;
                return Ok(());
            }
        }
        self.buffer.extend_from_slice(data);
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            let result = self.file.write_all(&self.buffer);
            // On error the buffer is dropped either way: a partial write
            // leaves the file in an unknown state, and the engine stops
            // using a file once any write to it has failed.
            self.buffer.clear();
            result?;
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        // fdatasync: data plus the metadata needed to read it back (size).
        self.file.sync_data()
    }

    fn start_writeback(&mut self) -> io::Result<()> {
        self.flush()?;
        // Whole pages only: the last, partial one is written to again by
        // the next append, and written back now it would be written twice
        // (and on a filesystem with stable pages that append would wait
        // for the write). RocksDB rounds down the same way.
        let end = self.len / WRITEBACK_PAGE * WRITEBACK_PAGE;
        if end > self.writeback_end {
            // A hint: if the kernel refuses it (memory pressure), the pages
            // are written back later, and a failed write of them is
            // reported by the file's `fdatasync`, which every table and
            // blob file gets before it is used. Failing the flush for it
            // would stop writes for nothing.
            let _ = super::writeback_hint::start_writeback(
                &self.file,
                self.writeback_end,
                end - self.writeback_end,
            );
            self.writeback_end = end;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// `statfs` `f_type` magics (linux/magic.h; ZFS's is its own).
mod magic {
    pub const EXT4: u32 = 0xEF53; // ext2, ext3 and ext4 share it
    pub const XFS: u32 = 0x5846_5342;
    pub const TMPFS: u32 = 0x0102_1994;
    pub const BTRFS: u32 = 0x9123_683E;
    pub const ZFS: u32 = 0x2FC1_2FC1;
    pub const BCACHEFS: u32 = 0xCA45_1A4E;
}

/// The WAL kind for a filesystem, by its `statfs` magic.
///
/// A write fault on a shared mapping that cannot get a block is a SIGBUS,
/// not an error, so the mapped log needs `fallocate` to reserve the blocks
/// its page writes will use. ext4 and xfs write into preallocated
/// (unwritten) extents in place, and keep a reserve for the extent-tree
/// splits that converting them needs; tmpfs allocates the pages
/// themselves. ext2/ext3 share ext4's magic, but their files have no
/// extents, so `fallocate` fails there and `create_log` falls back to
/// appends. Copy-on-write filesystems (btrfs, zfs, bcachefs) write every
/// page to a new block, so preallocation does not keep the first write to
/// a page from meeting a full disk; overlayfs, network and unknown
/// filesystems give no such promise either. All of those get `write(2)`.
pub(crate) fn kind_for_fs_type(magic: u32) -> LogKind {
    match magic {
        magic::EXT4 | magic::XFS | magic::TMPFS => LogKind::MemoryMapped,
        magic::BTRFS | magic::ZFS | magic::BCACHEFS => LogKind::Write,
        _ => LogKind::Write,
    }
}

struct OsFileLock {
    _file: File,
}

impl FileLock for OsFileLock {}

impl FileSystem for OsFileSystem {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn create_log(
        &self,
        path: &Path,
        initial_bytes: u64,
        kind: LogKind,
    ) -> io::Result<Box<dyn WritableFile>> {
        #[cfg(target_os = "linux")]
        if kind == LogKind::MemoryMapped {
            match super::os_mapping::OsMapping::create_log(path, initial_bytes) {
                Ok(log) => return Ok(Box::new(log)),
                // A filesystem without fallocate: plain appends instead.
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
                Err(e) => return Err(e),
            }
        }
        let _ = (initial_bytes, kind);
        self.create(path)
    }

    /// The mapped log where the filesystem under `dir` is known to reserve,
    /// at `fallocate`, the space every later page write needs; `write(2)`
    /// appends elsewhere or when `statfs` fails (see [`kind_for_fs_type`]).
    fn auto_log_kind(&self, dir: &Path) -> LogKind {
        #[cfg(target_os = "linux")]
        if let Ok(st) = rustix::fs::statfs(dir) {
            // Filesystem magics are 32-bit; `f_type` is a C long.
            return kind_for_fs_type(st.f_type as u32);
        }
        let _ = dir;
        LogKind::Write
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(OsWritableFile {
            file,
            buffer: Vec::with_capacity(64 * 1024),
            len: 0,
            writeback_end: 0,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Bytes> {
        // A copy, not a mapping: the change feed and read-only views read
        // live WALs, which the writer truncates when it closes them (a
        // memory-mapped log is allocated past its records); a mapping then
        // covers pages past the file's end, and touching one raises SIGBUS
        // (docs/design/change-feed.md §7).
        Ok(Bytes::from(fs::read(path)?))
    }

    fn open_random_access(
        &self,
        path: &Path,
        options: RandomAccessOptions,
    ) -> io::Result<std::sync::Arc<dyn RandomAccessFile>> {
        Ok(std::sync::Arc::new(OsRandomAccessFile::open(
            path, options,
        )?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir(dir)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // flock(2) semantics: a second open of the same file, even from this
        // process, gets a separate lock and so sees the conflict.
        match file.try_lock() {
            Ok(()) => Ok(Box::new(OsFileLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "lock held by another open database",
            )),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `read` returned stays readable after the file shrinks (the
    /// writer truncating a memory-mapped WAL at close, while the change
    /// feed or a read-only view holds what it read): a mapping would
    /// raise SIGBUS here and kill the test.
    #[test]
    fn what_read_returned_survives_the_file_shrinking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000007.log");
        let data: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let got = OsFileSystem.read(&path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100)
            .unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got[..] == data[..], "the bytes read changed");
    }

    #[test]
    fn copy_on_write_and_unknown_filesystems_get_write_appends() {
        for (magic, kind) in [
            (magic::EXT4, LogKind::MemoryMapped),
            (magic::XFS, LogKind::MemoryMapped),
            (magic::TMPFS, LogKind::MemoryMapped),
            (magic::BTRFS, LogKind::Write),
            (magic::ZFS, LogKind::Write),
            (magic::BCACHEFS, LogKind::Write),
            (0x794C_7630, LogKind::Write), // overlayfs
            (0x6969, LogKind::Write),      // nfs
            (0, LogKind::Write),
        ] {
            assert_eq!(kind_for_fs_type(magic), kind, "magic {magic:#x}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn auto_detection_agrees_with_statfs_of_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let f_type = rustix::fs::statfs(dir.path()).unwrap().f_type as u32;
        let expected = match f_type {
            0xEF53 | 0x5846_5342 | 0x0102_1994 => LogKind::MemoryMapped,
            _ => LogKind::Write,
        };
        assert_eq!(OsFileSystem.auto_log_kind(dir.path()), expected);
        // A directory that cannot be examined gets the kind sound anywhere.
        let gone = dir.path().join("missing");
        assert_eq!(OsFileSystem.auto_log_kind(&gone), LogKind::Write);
    }

    #[test]
    fn both_log_kinds_write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        for (i, kind) in [LogKind::MemoryMapped, LogKind::Write]
            .into_iter()
            .enumerate()
        {
            let path = dir.path().join(format!("{i:06}.log"));
            let mut log = OsFileSystem.create_log(&path, 4096, kind).unwrap();
            let mut expected = Vec::new();
            for n in 0..3000u32 {
                let record = n.to_le_bytes().repeat(3);
                log.append(&record).unwrap();
                log.flush().unwrap();
                expected.extend_from_slice(&record);
                if n % 1000 == 0 {
                    log.sync().unwrap();
                }
            }
            log.sync().unwrap();
            // The kind was honoured: a mapped log is allocated ahead of
            // its records (where the filesystem can), in whole pages, an
            // appended one is as long as its bytes.
            let open_len = OsFileSystem.file_size(&path).unwrap();
            match kind {
                LogKind::MemoryMapped if OsFileSystem.auto_log_kind(dir.path()) == kind => {
                    assert!(
                        open_len > expected.len() as u64 && open_len.is_multiple_of(4096),
                        "mapped log not allocated ahead: {open_len}"
                    );
                }
                LogKind::MemoryMapped => {}
                LogKind::Write => assert_eq!(open_len, expected.len() as u64),
            }
            // Readable while open (zeros after the records, if mapped).
            let live = OsFileSystem.read(&path).unwrap();
            assert_eq!(&live[..expected.len()], &expected[..], "{kind:?}");
            assert!(live[expected.len()..].iter().all(|&b| b == 0), "{kind:?}");
            drop(log);
            assert_eq!(
                &OsFileSystem.read(&path).unwrap()[..],
                &expected[..],
                "{kind:?}"
            );
        }
    }
}
