//! Tables on the in-memory filesystem: reads at offsets copy from the
//! inode as it is now (so damage done after open is seen by later reads,
//! as on a disk), are counted (`MemFileSystem::bytes_read`) and can be
//! failed by fault plans (`FsOp::ReadAt`).

use super::{not_found, stale, FsOp, Handle, MemFileSystem};
use crate::fs::random_access::slice_at;
use crate::fs::{RandomAccessFile, RandomAccessOptions};
use bytes::Bytes;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Opens `path` for reads at offsets. With `mmap`, the file is copied
/// whole at open (what a mapping would let a reader see) and read from
/// that copy.
pub(super) fn open(
    fs: &MemFileSystem,
    path: &Path,
    options: RandomAccessOptions,
) -> io::Result<Arc<dyn RandomAccessFile>> {
    let mut st = fs.state.lock();
    st.check(FsOp::Read, path)?;
    let id = st.inode_of(path)?;
    let inode = st.inodes.get(&id).ok_or_else(|| not_found(path))?;
    let size = inode.len() as u64;
    let map = options.mmap.then(|| Bytes::copy_from_slice(inode.bytes()));
    if let Some(map) = &map {
        st.bytes_read += map.len() as u64;
    }
    Ok(Arc::new(MemRandomAccessFile {
        // Counted as open: an unlinked table a reader still holds takes
        // room until it is closed, as on a disk.
        handle: Handle::open(&fs.state, &mut st, path, id),
        size,
        map,
    }))
}

struct MemRandomAccessFile {
    handle: Handle,
    size: u64,
    map: Option<Bytes>,
}

impl RandomAccessFile for MemRandomAccessFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        if let Some(map) = &self.map {
            return slice_at(map, offset, len);
        }
        let mut st = self.handle.state.lock();
        if st.generation != self.handle.generation {
            return Err(stale());
        }
        st.check(FsOp::ReadAt, &self.handle.path)?;
        // The inode outlives its directory entry (an unlinked open file).
        let inode = st.inodes.get(&self.handle.inode).ok_or_else(stale)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let bytes = match start.checked_add(len) {
            Some(end) if end <= inode.len() => Bytes::copy_from_slice(&inode.bytes()[start..end]),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: read of {len} bytes at {offset} past the end of {} bytes",
                        self.handle.path.display(),
                        inode.len()
                    ),
                ))
            }
        };
        st.bytes_read += len as u64;
        Ok(bytes)
    }

    fn in_memory(&self) -> Option<&Bytes> {
        self.map.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use crate::fs::{FaultPlan, FileSystem, FsOp, MemFileSystem, RandomAccessOptions};
    use std::io;
    use std::path::Path;

    fn file_of(fs: &MemFileSystem, path: &Path, data: &[u8]) {
        let mut f = fs.create(path).unwrap();
        f.append(data).unwrap();
        f.sync().unwrap();
    }

    #[test]
    fn reads_at_offsets_are_counted_see_later_damage_and_fail_on_demand() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let path = Path::new("/db/000007.sst");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        file_of(&fs, path, &data);
        let file = fs
            .open_random_access(path, RandomAccessOptions::default())
            .unwrap();
        assert_eq!(file.size(), 10_000);
        assert!(file.in_memory().is_none());
        let before = fs.bytes_read();
        assert_eq!(&file.read_at(4000, 100).unwrap()[..], &data[4000..4100]);
        assert_eq!(fs.bytes_read() - before, 100);
        assert_eq!(
            file.read_at(9_950, 100).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        fs.corrupt_byte(path, 4001, 0xff).unwrap();
        assert_eq!(file.read_at(4001, 1).unwrap()[0], data[4001] ^ 0xff);
        fs.add_fault(FaultPlan::always(FsOp::ReadAt));
        assert!(file.read_at(0, 1).is_err());
        fs.clear_faults();
        // Still readable after the file is removed (it is open).
        fs.remove(path).unwrap();
        assert_eq!(&file.read_at(0, 3).unwrap()[..], &data[..3]);
    }

    #[test]
    fn a_mapped_file_is_a_copy_read_in_place() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let path = Path::new("/db/000008.sst");
        file_of(&fs, path, b"hello table");
        let file = fs
            .open_random_access(path, RandomAccessOptions { mmap: true })
            .unwrap();
        assert_eq!(&file.in_memory().unwrap()[..], b"hello table");
        assert_eq!(&file.read_at(6, 5).unwrap()[..], b"table");
        fs.add_fault(FaultPlan::always(FsOp::Read));
        assert!(fs
            .open_random_access(path, RandomAccessOptions::default())
            .is_err());
    }
}
