//! The real filesystem: std::fs for writes and metadata, memmap2 for reads.

use super::{FileLock, FileSystem, WritableFile};
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Appends are gathered in a user-space buffer of this size before a write
/// system call; the WAL flushes explicitly after every group, so this only
/// matters for table and manifest writes.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// strata's default [`FileSystem`]: the operating system's.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFileSystem;

struct OsWritableFile {
    file: File,
    buffer: Vec<u8>,
    len: u64,
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

    fn len(&self) -> u64 {
        self.len
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

    fn create_log(&self, path: &Path, expected_bytes: u64) -> io::Result<Box<dyn WritableFile>> {
        #[cfg(target_os = "linux")]
        match super::mapped_log::MappedLog::create(path, expected_bytes) {
            Ok(log) => return Ok(Box::new(log)),
            // A filesystem without fallocate: plain appends instead.
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
            Err(e) => return Err(e),
        }
        let _ = expected_bytes;
        self.create(path)
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
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Bytes> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            // A zero-length mapping is an error on Linux.
            return Ok(Bytes::new());
        }
        // SAFETY: the mapping is read-only and strata never modifies or
        // truncates a file after it is complete (tables and closed logs are
        // immutable; a live log only grows). Another process truncating a
        // file under us would raise SIGBUS, which no mmap-based reader can
        // prevent; the database directory is strata's own (see UNSAFE.md).
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Bytes::from_owner(map))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
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
