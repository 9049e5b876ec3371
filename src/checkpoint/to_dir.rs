//! Writing a capture out as a database directory.
//!
//! Everything goes into a staging directory beside the target (`<dir>.tmp`,
//! RocksDB's name), each file synced, then the staging directory is
//! renamed to the target and the parent synced: the target either does
//! not exist or holds a whole checkpoint. Tables are hard-linked (they are
//! immutable), copied when the link fails (another device, a filesystem
//! without links); the WAL tail, MANIFEST and CURRENT are written fresh.

use super::capture::{CapturedFile, Source};
use crate::error::{Error, Result};
use crate::fs::FileSystem;
use std::path::{Path, PathBuf};

/// The staging directory of a checkpoint into `dir`.
pub(crate) fn staging_dir(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Refuse a target that exists, or whose staging directory a checkpoint
/// interrupted earlier left behind (it is not removed for the caller: it
/// may be another's work in progress).
pub(crate) fn check_target(fs: &dyn FileSystem, dir: &Path) -> Result<PathBuf> {
    if fs.exists(dir) {
        return Err(Error::InvalidArgument(format!(
            "checkpoint directory {} exists: a checkpoint goes into a new directory",
            dir.display()
        )));
    }
    let staging = staging_dir(dir);
    if fs.exists(&staging) {
        return Err(Error::InvalidArgument(format!(
            "{} exists: a partial checkpoint from an interrupted attempt (or one in progress); \
             remove it to checkpoint into {}",
            staging.display(),
            dir.display()
        )));
    }
    Ok(staging)
}

/// Write `files` into `dir` (which must not exist), through a staging
/// directory. Returns how many tables were linked rather than copied. On
/// failure the staging directory is removed again (best effort), so a
/// failed checkpoint can be retried.
pub(crate) fn write_dir(fs: &dyn FileSystem, files: &[CapturedFile], dir: &Path) -> Result<usize> {
    let staging = check_target(fs, dir)?;
    fs.create_dir_all(&staging)
        .map_err(|e| Error::io("create directory", &staging, e))?;
    let staged = stage(fs, files, &staging).and_then(|linked| {
        fs.rename(&staging, dir)
            .map_err(|e| Error::io("rename", &staging, e))?;
        Ok(linked)
    });
    let linked = match staged {
        Ok(linked) => linked,
        Err(e) => {
            for name in fs.list(&staging).unwrap_or_default() {
                let _ = fs.remove(&staging.join(name));
            }
            let _ = fs.remove_dir(&staging);
            return Err(e);
        }
    };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs.sync_dir(parent)
        .map_err(|e| Error::io("sync directory", parent, e))?;
    Ok(linked)
}

/// Write every file into `staging`, synced, and sync the directory.
fn stage(fs: &dyn FileSystem, files: &[CapturedFile], staging: &Path) -> Result<usize> {
    let mut linked = 0;
    for file in files {
        let to = staging.join(&file.name);
        if let Source::Table(from) = &file.source {
            if fs.hard_link(from, &to).is_ok() {
                linked += 1;
                continue;
            }
        }
        copy_file(fs, file, &to)?;
    }
    fs.sync_dir(staging)
        .map_err(|e| Error::io("sync directory", staging, e))?;
    Ok(linked)
}

/// Copy `file`'s bytes into a new file `to`, synced.
pub(crate) fn copy_file(fs: &dyn FileSystem, file: &CapturedFile, to: &Path) -> Result<()> {
    let mut out = fs.create(to).map_err(|e| Error::io("create", to, e))?;
    file.read_chunks(fs, |chunk| {
        out.append(chunk).map_err(|e| Error::io("append", to, e))
    })?;
    out.sync().map_err(|e| Error::io("sync", to, e))
}
