//! Asking the kernel to start writing a file's dirty pages to the disk
//! now, without waiting for them (`Options::bytes_per_sync`).

use std::fs::File;
use std::io;

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)` over `offset..offset + len`:
/// starts the writeback of the dirty pages there and returns. It makes
/// nothing durable (no metadata, no flush of the disk's cache): only the
/// file's `fdatasync` does. A kernel without the call (`ENOSYS`) is not an
/// error; any other error is returned (`EINVAL` would be a bug here).
/// With `SYNC_FILE_RANGE_WRITE` alone the kernel waits for nothing, so
/// it consumes no writeback error: a failed write of these pages is still
/// reported by the file's `fdatasync`.
#[cfg(target_os = "linux")]
pub(super) fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return Ok(());
    };
    // SAFETY: an FFI call on the descriptor `file` owns, open for the whole
    // call (borrowed); it reads and writes none of this process's memory.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENOSYS) => Ok(()),
        _ => Err(error),
    }
}

/// Elsewhere the hint is not given.
#[cfg(not(target_os = "linux"))]
pub(super) fn start_writeback(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The call is made on a real file (and accepted), over a range
    /// written and one past the end, and the file reads back unchanged.
    #[test]
    fn writeback_of_a_written_range_succeeds_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = File::create(&path).unwrap();
        file.write_all(&[7u8; 3 << 20]).unwrap();
        start_writeback(&file, 0, 1 << 20).unwrap();
        start_writeback(&file, 1 << 20, 8 << 20).unwrap();
        start_writeback(&file, u64::MAX, 1).unwrap();
        drop(file);
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len(), 3 << 20);
        assert!(back.iter().all(|&b| b == 7));
    }
}
