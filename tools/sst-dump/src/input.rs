//! Reading a file to inspect, and writing the file `raw` dumps into.
//!
//! Every command reads its file whole, so the reader takes only a regular
//! file (a FIFO would block, `/dev/zero` never ends) no larger than
//! `--max_input_bytes`, checked on the opened file and enforced while
//! reading (a file growing meanwhile is cut off with an error, not read
//! forever). The output file is created new: never written through a link,
//! never over an existing file.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// `--max_input_bytes`' default: 1 GiB, far above any table, WAL or
/// MANIFEST strata writes with its defaults (64 MiB memtables and tables).
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 1 << 30;

/// The whole of the regular file at `path` (links followed: reading through
/// one harms nothing), or a message naming the path and what is wrong.
pub fn read(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let fail = |why: String| format!("{}: {why}", path.display());
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it changes
    // nothing for a regular file.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail(format!(
            "not a regular file ({}); sst-dump reads tables, WALs, MANIFESTs and directories",
            kind_name(&meta)
        )));
    }
    let too_big = |size: &str| {
        fail(format!(
            "{size}, more than --max_input_bytes={max_bytes} (sst-dump reads a file \
             whole; raise the limit to read it)"
        ))
    };
    if meta.len() > max_bytes {
        return Err(too_big(&format!("{} bytes", meta.len())));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| fail(e.to_string()))?;
    if data.len() as u64 > max_bytes {
        return Err(too_big("it grew while being read"));
    }
    Ok(data)
}

/// Create `path` and write `text` into it. Refuses a path that exists,
/// including as a link (dangling or not): `create_new` is O_CREAT|O_EXCL,
/// which never follows a link.
pub fn write_new(path: &Path, text: &str) -> Result<(), String> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let what = if meta.file_type().is_symlink() {
            "is a symbolic link; sst-dump never writes through a link"
        } else {
            "already exists; sst-dump never overwrites a file (move it away first)"
        };
        return Err(format!("cannot write {}: it {what}", path.display()));
    }
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
        // Ours: created above, so a half-written dump may go.
        let _ = std::fs::remove_file(path);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}

fn kind_name(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_up_to_the_limit_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read(&f, 10).unwrap(), b"0123456789");
        assert!(read(&f, 9)
            .unwrap_err()
            .contains("more than --max_input_bytes=9"));
        let e = read(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(e.contains("not a regular file (a character device)"), "{e}");
    }

    #[test]
    fn write_new_never_replaces_anything() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        write_new(&out, "one").unwrap();
        assert!(write_new(&out, "two")
            .unwrap_err()
            .contains("already exists"));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "one");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("missing"), &link).unwrap();
        assert!(write_new(&link, "x").unwrap_err().contains("symbolic link"));
        assert!(!dir.path().join("missing").exists());
    }
}
