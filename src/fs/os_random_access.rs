//! Tables on the OS filesystem: read with `pread`, or through a memory map
//! when [`RandomAccessOptions::mmap`] asks.
//!
//! Both tell the kernel the access is random (`POSIX_FADV_RANDOM`, or
//! `MADV_RANDOM` on the mapping, RocksDB's `advise_random_on_open`): its
//! readahead would otherwise read up to 128 KiB around each block a lookup
//! needs, and under memory pressure evict what the next lookup needs.
//! Scans read ahead themselves, with reads of the size they choose.

use super::random_access::{slice_at, RandomAccessFile, RandomAccessOptions};
use bytes::Bytes;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// A table file opened on the OS filesystem.
pub(super) struct OsRandomAccessFile {
    file: File,
    size: u64,
    /// The whole file, mapped, when opened with `mmap`.
    map: Option<Bytes>,
    /// `preadv2(RWF_NOWAIT)` was refused once (not supported here).
    no_nowait: AtomicBool,
}

impl OsRandomAccessFile {
    pub(super) fn open(path: &Path, options: RandomAccessOptions) -> io::Result<Self> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        // A hint only: a filesystem that ignores it reads correctly anyway.
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Random);
        let map = if options.mmap && size > 0 {
            // SAFETY: the mapping is read-only and strata never modifies or
            // truncates a table after it is complete. Another program
            // truncating it, or an I/O error reading a page back, raises
            // SIGBUS, which no mmap reader can turn into an error: that is
            // why mapping is an option, off by default (see UNSAFE.md).
            let map = unsafe { memmap2::Mmap::map(&file)? };
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Random);
            Some(Bytes::from_owner(map))
        } else {
            None
        };
        Ok(OsRandomAccessFile {
            file,
            size,
            map,
            no_nowait: AtomicBool::new(false),
        })
    }
}

impl RandomAccessFile for OsRandomAccessFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        if let Some(map) = &self.map {
            return slice_at(map, offset, len);
        }
        let mut buf = Vec::new();
        read_exact_at(&self.file, offset, len, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    fn read_at_into(&self, offset: u64, len: usize, mut buf: Vec<u8>) -> io::Result<Bytes> {
        if let Some(map) = &self.map {
            return slice_at(map, offset, len);
        }
        read_exact_at(&self.file, offset, len, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    fn read_into(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        if let Some(map) = &self.map {
            let bytes = slice_at(map, offset, len)?;
            buf.clear();
            buf.extend_from_slice(&bytes);
            return Ok(());
        }
        read_exact_at(&self.file, offset, len, buf)
    }

    fn read_into_if_cached(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<bool> {
        if self.map.is_some()
            || offset
                .checked_add(len as u64)
                .is_none_or(|end| end > self.size)
        {
            // Mapped, or past the end as opened: the plain read serves
            // it, or reports the end of the file.
            return self.read_into(offset, len, buf).map(|()| true);
        }
        #[cfg(target_os = "linux")]
        if !self.no_nowait.load(Ordering::Relaxed) {
            let unsupported = [rustix::io::Errno::OPNOTSUPP, rustix::io::Errno::NOSYS];
            return match read_exact_at_if_cached(&self.file, offset, len, buf) {
                Err(e)
                    if unsupported
                        .iter()
                        .any(|u| e.raw_os_error() == Some(u.raw_os_error())) =>
                {
                    // A kernel or filesystem without RWF_NOWAIT for
                    // buffered reads: read as usual from now on.
                    self.no_nowait.store(true, Ordering::Relaxed);
                    self.read_into(offset, len, buf).map(|()| true)
                }
                other => other,
            };
        }
        self.read_into(offset, len, buf).map(|()| true)
    }

    fn in_memory(&self) -> Option<&Bytes> {
        self.map.as_ref()
    }

    fn will_need(&self, offset: u64, len: u64) {
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fadvise(
            &self.file,
            offset,
            std::num::NonZeroU64::new(len),
            rustix::fs::Advice::WillNeed,
        );
        let _ = (offset, len);
    }

    fn drop_cache(&self) {
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fadvise(&self.file, 0, None, rustix::fs::Advice::DontNeed);
    }
}

/// `len` bytes at `offset`, read into `buf`'s memory (grown if needed),
/// left uninitialised until the kernel fills it (zeroing a block first would cost a tenth of the
/// read). Retries short reads and interrupted calls; a file that ends
/// first is `UnexpectedEof`.
fn read_exact_at(file: &File, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    buf.reserve_exact(len);
    while buf.len() < len {
        let at = offset + buf.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(buf), at) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("read of {len} bytes at {offset}: the file ends at {at}"),
                ))
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The spare capacity may exceed what was asked.
    buf.truncate(len);
    Ok(())
}

/// `len` bytes at `offset` into `buf` if the page cache holds all of
/// them (`preadv2` with `RWF_NOWAIT`, which does not wait for storage):
/// whether it did. `preadv2` takes initialised memory: `buf` is zeroed
/// only where it was never written, so a reused buffer costs nothing.
#[cfg(target_os = "linux")]
fn read_exact_at_if_cached(
    file: &File,
    offset: u64,
    len: usize,
    buf: &mut Vec<u8>,
) -> io::Result<bool> {
    buf.resize(len, 0);
    let mut done = 0;
    while done < len {
        let at = offset + done as u64;
        let mut slices = [rustix::io::IoSliceMut::new(&mut buf[done..])];
        match rustix::io::preadv2(file, &mut slices, at, rustix::io::ReadWriteFlags::NOWAIT) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("read of {len} bytes at {offset}: the file ends at {at}"),
                ))
            }
            // A short read: the rest is not in the page cache (or the
            // file is shorter than it was at open); the caller reads it
            // all again, and a plain read reports the end of the file.
            Ok(n) if done + n < len => return Ok(false),
            Ok(n) => done += n,
            Err(rustix::io::Errno::AGAIN) => return Ok(false),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FileSystem, OsFileSystem};

    #[test]
    fn reads_at_offsets_the_same_way_with_and_without_a_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.sst");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        for mmap in [false, true] {
            let file = OsFileSystem
                .open_random_access(&path, RandomAccessOptions { mmap })
                .unwrap();
            assert_eq!(file.size(), data.len() as u64);
            assert_eq!(file.in_memory().is_some(), mmap);
            for (offset, len) in [(0, 10), (4090, 4101), (99_990, 10), (100_000, 0)] {
                let got = file.read_at(offset, len).unwrap();
                assert_eq!(&got[..], &data[offset as usize..offset as usize + len]);
            }
            let err = file.read_at(99_995, 10).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "mmap {mmap}");
            // Hints change nothing a read returns.
            file.will_need(0, 8192);
            file.drop_cache();
            assert_eq!(&file.read_at(5, 3).unwrap()[..], &data[5..8]);
            // A read that must not wait for storage returns the bytes or
            // nothing, never other bytes; past the end it is an error.
            for (offset, len) in [(0, 10), (4090, 4101), (99_990, 10)] {
                let range = offset as usize..offset as usize + len;
                let mut got = vec![0xa5; 3];
                if file.read_into_if_cached(offset, len, &mut got).unwrap() {
                    assert_eq!(&got[..], &data[range.clone()], "mmap {mmap}");
                }
                got.clear();
                file.read_into(offset, len, &mut got).unwrap();
                assert_eq!(&got[..], &data[range], "mmap {mmap}");
            }
            let err = file
                .read_into_if_cached(99_995, 10, &mut Vec::new())
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "mmap {mmap}");
        }
        // An empty file opens (and maps to nothing).
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        let file = OsFileSystem
            .open_random_access(&empty, RandomAccessOptions { mmap: true })
            .unwrap();
        assert_eq!(file.size(), 0);
        assert!(file.read_at(0, 1).is_err());
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = OsFileSystem
            .open_random_access(&dir.path().join("nope"), RandomAccessOptions::default())
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
