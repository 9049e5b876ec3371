//! A write-ahead log appended by memory copy into a shared file mapping.
//!
//! The ring hands each write group's record to the operating system before
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
//! The file is preallocated with `fallocate`, so page faults never meet a
//! full disk (no SIGBUS), and grows by doubling. A clean close truncates
//! it to the bytes written; after a crash the tail is zeros, which the
//! log reader treats as the end of the log.

use super::WritableFile;
use memmap2::MmapMut;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

pub(crate) struct MappedLog {
    file: File,
    /// `None` once retired.
    map: Option<MmapMut>,
    len: u64,
    synced: u64,
}

impl MappedLog {
    /// Create (truncate) `path`, preallocate `expected_bytes` (at least
    /// 1 MiB), and map it. `Unsupported` if the filesystem cannot
    /// preallocate.
    pub fn create(path: &Path, expected_bytes: u64) -> io::Result<MappedLog> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let size = expected_bytes.max(1 << 20);
        preallocate(&file, 0, size)?;
        let map = Some(map(&file)?);
        Ok(MappedLog {
            file,
            map,
            len: 0,
            synced: 0,
        })
    }

    fn grow(&mut self, needed: u64) -> io::Result<()> {
        let current = self.mapped_len();
        let size = (current * 2).max(needed);
        preallocate(&self.file, current, size - current)?;
        self.map = None;
        self.map = Some(map(&self.file)?);
        Ok(())
    }

    fn mapped_len(&self) -> u64 {
        self.map.as_ref().map_or(0, |m| m.len() as u64)
    }
}

fn preallocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), offset, len).map_err(|e| {
        if e == rustix::io::Errno::OPNOTSUPP {
            io::Error::new(io::ErrorKind::Unsupported, e)
        } else {
            io::Error::from(e)
        }
    })
}

fn map(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the file was created (truncated) by this writer, which is the
    // only code in the process that maps or writes it while it is live
    // (recovery reads only older logs; tools read with plain reads). Its
    // length only grows while mapped, so the mapping never covers bytes
    // past the end of the file. See UNSAFE.md.
    unsafe { MmapMut::map_mut(file) }
}

impl WritableFile for MappedLog {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if self.map.is_none() {
            return Err(io::Error::other("append to a retired log"));
        }
        let end = self.len + data.len() as u64;
        if end > self.mapped_len() {
            self.grow(end)?;
        }
        let start = self.len as usize;
        if let Some(map) = self.map.as_mut() {
            map[start..start + data.len()].copy_from_slice(data);
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
            match &self.map {
                Some(map) => map.flush_range(from, self.len as usize - from)?,
                None => self.file.sync_data()?,
            }
            self.synced = self.len;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn retire(&mut self) {
        // Unmapping leaves the written bytes dirty in the page cache, where
        // `fdatasync` finds them.
        self.map = None;
    }
}

impl Drop for MappedLog {
    fn drop(&mut self) {
        // A cleanly closed log ends at its last record. Failure leaves
        // zeros at the tail, which readers accept.
        let _ = self.file.set_len(self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_grow_sync_and_truncate_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.log");
        let mut log = MappedLog::create(&path, 4096).unwrap();
        let mut expected = Vec::new();
        for i in 0..5000u32 {
            let record = i.to_le_bytes().repeat(100);
            log.append(&record).unwrap();
            expected.extend_from_slice(&record);
            if i % 997 == 0 {
                log.sync().unwrap();
            }
        }
        assert!(std::fs::metadata(&path).unwrap().len() >= expected.len() as u64);
        // Readable through the file while still mapped (page cache).
        assert_eq!(
            &std::fs::read(&path).unwrap()[..expected.len()],
            &expected[..]
        );
        drop(log);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn a_retired_log_syncs_without_its_mapping_and_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000002.log");
        let mut log = MappedLog::create(&path, 4096).unwrap();
        log.append(b"first").unwrap();
        log.sync().unwrap();
        log.append(b"second").unwrap();
        log.retire();
        assert!(log.append(b"third").is_err());
        log.sync().unwrap();
        assert_eq!(log.synced, log.len());
        drop(log);
        assert_eq!(std::fs::read(&path).unwrap(), b"firstsecond");
    }
}
