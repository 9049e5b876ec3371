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

/// A table file opened on the OS filesystem.
pub(super) struct OsRandomAccessFile {
    file: File,
    size: u64,
    /// The whole file, mapped, when opened with `mmap`.
    map: Option<Bytes>,
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
        Ok(OsRandomAccessFile { file, size, map })
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
        read_exact_at(&self.file, offset, len, Vec::new()).map(Bytes::from)
    }

    fn read_at_into(&self, offset: u64, len: usize, buf: Vec<u8>) -> io::Result<Bytes> {
        if let Some(map) = &self.map {
            return slice_at(map, offset, len);
        }
        read_exact_at(&self.file, offset, len, buf).map(Bytes::from)
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
fn read_exact_at(file: &File, offset: u64, len: usize, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    buf.clear();
    buf.reserve_exact(len);
    while buf.len() < len {
        let at = offset + buf.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
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
    Ok(buf)
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
