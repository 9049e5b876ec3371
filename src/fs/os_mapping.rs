//! The operating system's backend for the memory-mapped WAL: a `File`
//! allocated with `fallocate` as it grows, and mapped once with memmap2
//! over more address space than it holds (`mapped_log.rs`).

use super::mapped_log::{LogBackend, MappedLog, PageWarmer};
use memmap2::MmapRaw;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

pub(crate) struct OsMapping {
    file: File,
    /// `None` once retired. Raw: its tail past the file's end must never
    /// be reachable through a Rust reference (a page there is a SIGBUS).
    map: Option<MmapRaw>,
}

impl OsMapping {
    /// Create (truncate) `path` and make it a mapped log allocated to
    /// `initial_bytes`. `Unsupported` if the filesystem cannot
    /// preallocate.
    pub fn create_log(path: &Path, initial_bytes: u64) -> io::Result<MappedLog<OsMapping>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        MappedLog::create(OsMapping { file, map: None }, initial_bytes)
    }
}

impl LogBackend for OsMapping {
    type Mapping<'a> = &'a mut [u8];
    type Warmer = OsWarmer;

    #[inline]
    fn page_size(&self) -> usize {
        static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *PAGE.get_or_init(rustix::param::page_size)
    }

    fn preallocate(&mut self, offset: u64, len: u64) -> io::Result<()> {
        rustix::fs::fallocate(&self.file, rustix::fs::FallocateFlags::empty(), offset, len).map_err(
            |e| {
                if e == rustix::io::Errno::OPNOTSUPP {
                    io::Error::new(io::ErrorKind::Unsupported, e)
                } else {
                    io::Error::from(e)
                }
            },
        )
    }

    fn map(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "log mapping larger than memory",
            )
        })?;
        // SAFETY: the file was created (truncated) by this writer, which is
        // the only code in the process that maps or writes it while it is
        // live (recovery reads only older logs; tools read with plain
        // reads). The mapping may pass the file's end (address space
        // reserved for growth): it is a raw mapping, so no reference
        // covers that part; `mapping` hands out only the allocated part,
        // and the file never shrinks while mapped. See UNSAFE.md.
        self.map = Some(memmap2::MmapOptions::new().len(len).map_raw(&self.file)?);
        Ok(())
    }

    fn unmap(&mut self) {
        self.map = None;
    }

    #[inline]
    fn mapped_len(&self) -> Option<u64> {
        self.map.as_ref().map(|m| m.len() as u64)
    }

    #[inline]
    fn mapping(&mut self, allocated: u64) -> Option<&mut [u8]> {
        let map = self.map.as_ref()?;
        let len = (allocated as usize).min(map.len());
        // SAFETY: the first `len` bytes of the mapping lie within the
        // file's allocated blocks (the caller's contract, and within the
        // mapping by the `min`), so every byte is readable and writable
        // without a fault that could fail. The slice borrows `self`
        // mutably, so it is the only reference into the mapping while it
        // lives (the warm-up's mapping is another one, never read or
        // written through).
        Some(unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr(), len) })
    }

    fn sync_mapped(&mut self, offset: usize, len: usize) -> io::Result<()> {
        match &self.map {
            Some(map) => map.flush_range(offset, len),
            None => self.file.sync_data(),
        }
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn warmer(&self, len: usize) -> Option<OsWarmer> {
        Some(OsWarmer {
            file: self.file.try_clone().ok()?,
            len,
            populate_map: None,
            prefetch_map: None,
        })
    }
}

/// A warm-up's own mappings of the log, made at their first use. Raw, as
/// the writer's is: a job queued or running when the log is closed
/// outlives the truncate to its records, and its mappings then cover
/// bytes past the file's end, which no Rust reference may cover.
///
/// Two mappings, because the page a populate faults in writable must come
/// alone, and the pages a prefetch reads in should come as the writer's
/// own faults would bring them: with readahead, in large folios.
pub(crate) struct OsWarmer {
    file: File,
    len: usize,
    /// For `MADV_POPULATE_WRITE`, without readahead: a fault would
    /// otherwise bring in (and dirty) a large folio around each page,
    /// which counted ~14 MB of extra writes per 64 MiB WAL in
    /// /proc/self/io (measured: 5M fillrandom 1683 MB without the warm-up,
    /// 1838 MB with it, 1701 MB with it and this advice).
    populate_map: Option<MmapRaw>,
    /// For `MADV_POPULATE_READ`, with the default readahead. Read in one
    /// page at a time (`MADV_RANDOM`), the pages came in 4 KiB folios, and
    /// 4 KiB writes ran 12-18% slower (docs/performance.md, "Large values:
    /// the pages a memtable writes").
    prefetch_map: Option<MmapRaw>,
}

impl PageWarmer for OsWarmer {
    fn populate(&mut self, offset: usize, len: usize) -> bool {
        let (file, log_len) = (&self.file, self.len);
        let map = made(&mut self.populate_map, || {
            let m = map_for_warm_up(file, log_len)?;
            let _ = m.advise(memmap2::Advice::Random);
            Some(m)
        });
        advise(map, memmap2::Advice::PopulateWrite, offset, len)
    }

    fn prefetch(&mut self, offset: usize, len: usize) -> bool {
        // `MADV_POPULATE_READ` reads the pages in (zero-filled: the blocks
        // are allocated, unwritten) without dirtying them.
        let (file, log_len) = (&self.file, self.len);
        let map = made(&mut self.prefetch_map, || map_for_warm_up(file, log_len));
        advise(map, memmap2::Advice::PopulateRead, offset, len)
    }
}

/// The mapping in `slot`, made by `make` at the first call.
fn made(slot: &mut Option<MmapRaw>, make: impl FnOnce() -> Option<MmapRaw>) -> Option<&MmapRaw> {
    if slot.is_none() {
        *slot = make();
    }
    slot.as_ref()
}

/// A mapping of the log's first `len` bytes for a warm-up. Nothing ever
/// reads or writes through it (`MADV_POPULATE_WRITE` and
/// `MADV_POPULATE_READ` fault pages in without touching their bytes), so
/// the writer's stores cannot race with it. If the log is closed and
/// truncated before the job ends, populating past the new end fails with
/// `EFAULT` (no signal) and the job stops.
fn map_for_warm_up(file: &File, len: usize) -> Option<MmapRaw> {
    memmap2::MmapOptions::new().len(len).map_raw(file).ok()
}

/// `advice` over `offset..offset + len` of `map`. A failure (no mapping,
/// a kernel before 5.14, a page past a log cut short meanwhile) ends the
/// job.
fn advise(map: Option<&MmapRaw>, advice: memmap2::Advice, offset: usize, len: usize) -> bool {
    map.is_some_and(|m| m.advise_range(advice, offset, len).is_ok())
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mapped_log::{WARM_UP_STEP, WARM_UP_STRIDE};
    use crate::fs::WritableFile;

    #[test]
    fn appends_grow_sync_and_truncate_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.log");
        let mut log = OsMapping::create_log(&path, 4096).unwrap();
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
        let mut log = OsMapping::create_log(&path, 4096).unwrap();
        log.append(b"first").unwrap();
        log.sync().unwrap();
        log.append(b"second").unwrap();
        log.retire();
        assert!(log.append(b"third").is_err());
        log.sync().unwrap();
        assert_eq!(log.synced(), log.len());
        drop(log);
        assert_eq!(std::fs::read(&path).unwrap(), b"firstsecond");
    }

    #[test]
    fn warm_up_changes_no_byte_while_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000003.log");
        let mut log = OsMapping::create_log(&path, 8 * WARM_UP_STRIDE as u64).unwrap();
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
        // A populate per MiB after the first, then a prefetch per 256 KiB
        // after the first (where the writer starts).
        assert_eq!(
            warming.join().unwrap(),
            7 + 8 * WARM_UP_STRIDE / WARM_UP_STEP - 1
        );
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

    #[test]
    fn a_log_grown_from_one_page_warms_its_growth_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000004.log");
        let mut log = OsMapping::create_log(&path, 4096).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
        let mut expected = Vec::new();
        let mut warmed = 0;
        for i in 0..60_000u32 {
            let record = i.to_le_bytes().repeat(25);
            log.append(&record).unwrap();
            expected.extend_from_slice(&record);
            if let Some(mut job) = log.take_warm_up() {
                while job() {}
                warmed += 1;
            }
        }
        assert!(warmed >= 2, "{warmed} growth warm-ups over 6 MB");
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size > expected.len() as u64 && size.is_multiple_of(4096));
        log.sync().unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..expected.len()], &expected[..]);
        assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
        drop(log);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn a_log_grown_past_its_address_reservation_is_mapped_again_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000005.log");
        let mut log = OsMapping::create_log(&path, 4096).unwrap();
        let reserved = log.mapped_len().unwrap();
        // Past the address space reserved at creation (64 MiB), in 1 MiB
        // appends.
        let chunk = |i: u64| vec![(i % 251) as u8 | 1; 1 << 20];
        let chunks = reserved / (1 << 20) + 2;
        for i in 0..chunks {
            log.append(&chunk(i)).unwrap();
        }
        let mapped = log.mapped_len().unwrap();
        assert!(mapped > reserved, "not mapped again: {mapped} bytes");
        log.sync().unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        for i in 0..chunks {
            let at = (i << 20) as usize;
            assert!(on_disk[at..at + (1 << 20)] == chunk(i)[..], "MiB {i}");
        }
        drop(log);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), chunks << 20);
    }

    #[test]
    fn a_warm_up_that_outlives_its_log_ends_without_a_signal() {
        let dir = tempfile::tempdir().unwrap();
        // 4 MiB: the first step populates the page at 1 MiB; 512 KiB: no
        // extent boundary, the first step prefetches from 256 KiB.
        for (name, size) in [
            ("000006.log", 4 * WARM_UP_STRIDE),
            ("000007.log", 512 << 10),
        ] {
            let path = dir.path().join(name);
            let mut log = OsMapping::create_log(&path, size as u64).unwrap();
            log.append(b"record").unwrap();
            let mut job = log.warm_up().expect("a mapped log has a warm-up");
            // Closed: cut to its record, under the job's mapping.
            drop(log);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 6);
            // Its pages past the end: `EFAULT`, not SIGBUS; the job ends.
            assert!(
                !job(),
                "{name}: a warm-up step past the file's end succeeded"
            );
            assert_eq!(std::fs::read(&path).unwrap(), b"record");
        }
    }
}
