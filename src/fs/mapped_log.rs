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
//! (`MADV_POPULATE_WRITE`, which changes no byte), on the WAL flusher
//! thread, so the writer's own fault there finds that work done.

use super::{WarmUp, WritableFile};
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

/// Copies `src` into `dst` (which starts at file offset `offset`) one page
/// at a time, in order, so that a process dying in a page fault leaves a
/// prefix of `src` written (see the module comment).
fn copy_in_file_order(dst: &mut [u8], src: &[u8], offset: usize) {
    let page = page_size();
    let mut done = 0;
    while done < src.len() {
        let n = (page - (offset + done) % page).min(src.len() - done);
        dst[done..done + n].copy_from_slice(&src[done..done + n]);
        // Keep the compiler from merging or reordering the page copies.
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        done += n;
    }
}

/// Warm-up faults one page in every this many bytes: a divisor of any
/// extent size ext4 (or another filesystem) is likely to preallocate.
const WARM_UP_STRIDE: usize = 1 << 20;

/// A warm-up of `file` up to `len`: each step faults in, writable, the
/// first page of the next `WARM_UP_STRIDE` bytes, through a mapping of its
/// own. Best effort: a failure only means the writer pays for the fault
/// itself, so the job just ends.
fn warm_up_job(file: File, len: usize) -> WarmUp {
    let mut map: Option<MmapMut> = None;
    let mut offset = WARM_UP_STRIDE; // the writer is already at the start
    Box::new(move || {
        if offset >= len {
            return false;
        }
        if map.is_none() {
            // SAFETY: as in `map`: this process owns the file and only
            // grows it while it is live. Nothing ever reads or writes
            // through this mapping (`MADV_POPULATE_WRITE` faults pages in
            // without touching their bytes), so the writer's stores cannot
            // race with it. If the log is retired and truncated before the
            // job ends, populating past the new end fails with `EFAULT`
            // (no signal) and the job stops.
            match unsafe { memmap2::MmapOptions::new().len(len).map_mut(&file) } {
                Ok(m) => {
                    // No readahead: a fault would otherwise bring in (and
                    // dirty) a large folio around each page, which counted
                    // ~14 MB of extra writes per 64 MiB WAL in
                    // /proc/self/io (measured: 5M fillrandom 1683 MB
                    // without the warm-up, 1838 MB with it, 1701 MB with it
                    // and this advice).
                    let _ = m.advise(memmap2::Advice::Random);
                    map = Some(m);
                }
                Err(_) => return false,
            }
        }
        let page = page_size().min(len - offset);
        let populated = map.as_ref().is_some_and(|m| {
            m.advise_range(memmap2::Advice::PopulateWrite, offset, page)
                .is_ok()
        });
        offset += WARM_UP_STRIDE;
        // A failure (e.g. a kernel before 5.14) ends the job.
        populated && offset < len
    })
}

fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(rustix::param::page_size)
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
            copy_in_file_order(&mut map[start..start + data.len()], data, start);
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

    fn warm_up(&self) -> Option<WarmUp> {
        let file = self.file.try_clone().ok()?;
        Some(warm_up_job(file, self.mapped_len() as usize))
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
    fn page_ordered_copies_write_every_byte_at_any_offset_and_length() {
        let page = page_size();
        let src: Vec<u8> = (0..3 * page + 100).map(|i| (i * 31 % 251) as u8).collect();
        for offset in [0, 1, page - 1, page, page + 17] {
            for len in [0, 1, page - 1, page, page + 1, 3 * page + 100] {
                let mut dst = vec![0u8; len];
                copy_in_file_order(&mut dst, &src[..len], offset);
                assert_eq!(dst, &src[..len], "offset {offset} len {len}");
            }
        }
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

    #[test]
    fn warm_up_changes_no_byte_while_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000003.log");
        let mut log = MappedLog::create(&path, 8 * WARM_UP_STRIDE as u64).unwrap();
        let mut job = log.warm_up().expect("a mapped log has a warm-up");
        // Appends cross several warmed pages while the job runs.
        let warming = std::thread::spawn(move || {
            let mut steps = 1;
            while job() {
                steps += 1;
            }
            steps
        });
        let mut expected = Vec::new();
        for i in 0..40_000u32 {
            let record = i.to_le_bytes().repeat(50);
            log.append(&record).unwrap();
            expected.extend_from_slice(&record);
        }
        // One step per MiB after the first.
        assert_eq!(warming.join().unwrap(), 7);
        log.sync().unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..expected.len()], &expected[..]);
        assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
        // A job run after the appends leaves them intact too.
        let mut again = log.warm_up().unwrap();
        while again() {}
        drop(log);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }
}
