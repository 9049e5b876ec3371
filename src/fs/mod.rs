//! The one door to storage: every file operation strata performs goes
//! through [`FileSystem`].
//!
//! Two implementations ship: [`OsFileSystem`] (the real one; tables are
//! read with `pread`, or through memmap2 mappings when asked) and
//! [`MemFileSystem`] (in memory, for tests:
//! it can simulate power loss by dropping or tearing unsynced data and
//! unsynced directory entries, and it can fail chosen operations). Both
//! write memory-mapped WALs with the same code (`mapped_log.rs`).

mod mapped_log;
mod mem;
mod os;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // UNSAFE.md: the mapped WAL and its warm-up
mod os_mapping;
#[allow(unsafe_code)] // UNSAFE.md: table maps, only with `allow_mmap_reads`
mod os_random_access;
mod random_access;
#[allow(unsafe_code)] // UNSAFE.md: `sync_file_range`
mod writeback_hint;

pub use mem::{FaultPlan, FsOp, MemFileSystem, UnsyncedData};
pub use os::OsFileSystem;
pub use random_access::{RandomAccessFile, RandomAccessOptions};

use bytes::Bytes;
use std::io;
use std::path::Path;

/// A file opened for appending, as the WAL, tables and manifests are written.
pub trait WritableFile: Send {
    /// Append bytes. They may sit in a user-space buffer until [`flush`](Self::flush).
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Hand buffered bytes to the operating system (they survive a process
    /// crash, not a power loss).
    fn flush(&mut self) -> io::Result<()>;
    /// Flush, then make everything appended durable (fsync / fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Flush, then ask the operating system to start writing what was
    /// appended to the disk, without waiting for it and without any
    /// promise of durability: a later [`sync`](Self::sync) then has less
    /// left to wait for (`Options::bytes_per_sync`). The default only
    /// flushes; a file that wraps another should forward the call, or the
    /// inner file's writeback is lost (nothing else is).
    fn start_writeback(&mut self) -> io::Result<()> {
        self.flush()
    }
    /// Bytes appended so far, flushed or not.
    fn len(&self) -> u64;
    /// No more appends will come: release what only appending needs, so
    /// the final [`sync`](Self::sync) is cheap. A later append is an error.
    /// The default does nothing.
    fn retire(&mut self) {}
    /// True when nothing has been appended.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Work that makes later appends cheaper, to be run on a background
    /// thread while appends go on (it must not change the file's bytes).
    /// The default has none.
    fn warm_up(&self) -> Option<WarmUp> {
        None
    }
    /// Warm-up work for what appends have added to the file since this
    /// was last asked (a preallocated file's growth), to be run as
    /// [`warm_up`](Self::warm_up)'s is, after it. The default has none.
    fn take_warm_up(&mut self) -> Option<WarmUp> {
        None
    }
}

/// A background job returned by [`WritableFile::warm_up`], run in short
/// steps so its thread can do more urgent work in between: each call does
/// one step and returns whether any work is left.
pub type WarmUp = Box<dyn FnMut() -> bool + Send>;

/// How a write-ahead log is written: what [`FileSystem::create_log`] makes.
/// The engine picks it from
/// [`Options::wal_write_mode`](crate::Options::wal_write_mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// Preallocated, appended by memory copy into a shared mapping (no
    /// system call per append). Sound only where preallocation reserves
    /// the space of every later page write: a write fault that meets a
    /// full disk is a SIGBUS.
    MemoryMapped,
    /// Appended with `write(2)`: a full disk is an error the write path
    /// reports.
    Write,
}

/// A held lock on a lock file; dropping it releases the lock.
pub trait FileLock: Send + Sync {}

/// The filesystem operations strata needs, and nothing more.
///
/// Paths are absolute or relative to the process's working directory; the
/// engine always passes paths inside the database directory.
pub trait FileSystem: Send + Sync + 'static {
    /// Create a directory and its parents; succeeds if it exists.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Create (or truncate) a file for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Create a write-ahead log. For [`LogKind::MemoryMapped`] an
    /// implementation may preallocate it, `initial_bytes` at first and
    /// more in steps as appends pass its end, and append by memory copy
    /// (both shipped ones do, the OS one falling back to appends where
    /// `fallocate` is unsupported); unused preallocated space reads as
    /// zeros, which log readers treat as the end of the log. The default
    /// ignores `kind` and appends.
    fn create_log(
        &self,
        path: &Path,
        initial_bytes: u64,
        kind: LogKind,
    ) -> io::Result<Box<dyn WritableFile>> {
        let _ = (initial_bytes, kind);
        self.create(path)
    }
    /// The log kind [`WalWriteMode::Auto`](crate::WalWriteMode::Auto)
    /// picks for logs in `dir`. The default is [`LogKind::Write`], sound
    /// on any filesystem.
    fn auto_log_kind(&self, dir: &Path) -> LogKind {
        let _ = dir;
        LogKind::Write
    }
    /// The whole contents of a file, as it was when read: later changes
    /// to the file (a live WAL truncated at close) leave it as it is.
    fn read(&self, path: &Path) -> io::Result<Bytes>;
    /// Open a file to read at offsets (tables). The default reads the
    /// whole file with [`read`](Self::read) and serves reads from memory.
    fn open_random_access(
        &self,
        path: &Path,
        options: RandomAccessOptions,
    ) -> io::Result<std::sync::Arc<dyn RandomAccessFile>> {
        let _ = options;
        Ok(std::sync::Arc::new(random_access::InMemoryFile(
            self.read(path)?,
        )))
    }
    /// Atomically replace `to` with `from`. `from` may be a directory
    /// (a checkpoint's staging directory), moved with everything in it;
    /// `to` must then not exist.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Give the file at `from` a second name, `to` (a hard link: one
    /// file, two directory entries; `to` must not exist). Like every
    /// directory entry, `to` is durable only after
    /// [`sync_dir`](Self::sync_dir). The default returns
    /// [`io::ErrorKind::Unsupported`]; callers fall back to a copy, as
    /// they do for a link across devices.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _ = (from, to);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "hard links are not supported by this filesystem",
        ))
    }
    /// Delete a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Delete an empty directory (a deleted backup's). The default is
    /// [`io::ErrorKind::Unsupported`]; callers treat it as best effort.
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let _ = dir;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "removing directories is not supported by this filesystem",
        ))
    }
    /// Names of the entries of a directory (not full paths), in no order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Whether a file exists.
    fn exists(&self, path: &Path) -> bool;
    /// The size of a file in bytes.
    fn file_size(&self, path: &Path) -> io::Result<u64>;
    /// Make an existing file's contents durable (fsync), without
    /// changing them: the change feed syncs the WALs an open replayed
    /// before keeping them (docs/design/change-feed.md). The default
    /// fails as unsupported.
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{}: this filesystem cannot sync an existing file",
                path.display()
            ),
        ))
    }
    /// Make the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Take an exclusive lock on `path` (creating it), or fail with
    /// [`io::ErrorKind::WouldBlock`] if someone holds it, in this process or
    /// another.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;
}

/// Logs (WAL and MANIFEST) are framed by the wal crate straight into a
/// [`WritableFile`] (the wal crate forwards `Box<S>` to `S`).
impl strata_wal::Sink for dyn WritableFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        WritableFile::append(self, data)
    }
    fn flush(&mut self) -> io::Result<()> {
        WritableFile::flush(self)
    }
    fn sync(&mut self) -> io::Result<()> {
        WritableFile::sync(self)
    }
}

/// Tables are written by the sstable crate's builder through `io::Write`,
/// optionally held to a bandwidth limit and written back as they grow.
pub(crate) struct WriteAdapter(
    pub Box<dyn WritableFile>,
    pub  Option<(
        std::sync::Arc<crate::rate_limiter::RateLimiter>,
        crate::rate_limiter::IoPriority,
    )>,
    pub Writeback,
);

/// Start the writeback of a file every `every` bytes appended
/// (`Options::bytes_per_sync`; 0: never). A flush or compaction then
/// writes its table to the disk while it builds it, instead of leaving
/// every page dirty for the final fdatasync to write and wait for (a
/// 64 MiB flush of 4 KiB values waited ~57 ms in that fdatasync; with a
/// writeback every 1 MiB the flushes of that run took 10% less in all).
#[derive(Default)]
pub(crate) struct Writeback {
    every: u64,
    since: u64,
}

impl Writeback {
    pub fn every(bytes: u64) -> Writeback {
        Writeback {
            every: bytes,
            since: 0,
        }
    }

    fn appended(&mut self, file: &mut dyn WritableFile, bytes: usize) -> io::Result<()> {
        if self.every == 0 {
            return Ok(());
        }
        self.since += bytes as u64;
        if self.since >= self.every {
            self.since = 0;
            file.start_writeback()?;
        }
        Ok(())
    }
}

impl io::Write for WriteAdapter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some((limiter, priority)) = &self.1 {
            limiter.request(buf.len(), *priority);
        }
        self.0.append(buf)?;
        self.2.appended(&mut *self.0, buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Counts what a table writer asks of its file.
    struct Counting {
        len: u64,
        writebacks: Arc<AtomicU64>,
    }

    impl WritableFile for Counting {
        fn append(&mut self, data: &[u8]) -> io::Result<()> {
            self.len += data.len() as u64;
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn len(&self) -> u64 {
            self.len
        }
        fn start_writeback(&mut self) -> io::Result<()> {
            self.writebacks.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    fn writebacks_for(every: u64, writes: &[usize]) -> u64 {
        let writebacks = Arc::new(AtomicU64::new(0));
        let file = Counting {
            len: 0,
            writebacks: Arc::clone(&writebacks),
        };
        let mut w = WriteAdapter(Box::new(file), None, Writeback::every(every));
        for &n in writes {
            w.write_all(&vec![0u8; n]).unwrap();
        }
        writebacks.load(Ordering::Relaxed)
    }

    /// A writeback is asked for once per `bytes_per_sync` appended (a
    /// large append counts once), never with 0.
    #[test]
    fn a_table_writer_starts_a_writeback_every_bytes_per_sync() {
        assert_eq!(writebacks_for(1000, &[400; 10]), 3, "4,000 bytes in 400s");
        assert_eq!(writebacks_for(1000, &[999]), 0);
        assert_eq!(writebacks_for(1000, &[999, 1]), 1);
        assert_eq!(writebacks_for(1000, &[5000]), 1);
        assert_eq!(writebacks_for(0, &[400; 10]), 0, "0 turns it off");
    }
}
