//! Snapshot files: a strata checkpoint stream (docs/checkpoint-stream.md)
//! followed by a trailer naming the snapshot, kept in a directory of
//! their own on the operating system's filesystem.
//!
//! ```text
//! +----------------------------+----------------------+-------------+----------+
//! | checkpoint stream (n bytes)| SnapshotMeta as JSON | JSON length | magic    |
//! |                            |                      | u64 LE      | 8 bytes  |
//! +----------------------------+----------------------+-------------+----------+
//! ```
//!
//! The trailer comes after the stream because a snapshot's log id is read
//! from the checkpoint's own sequence number (a strata snapshot kept at
//! it), known only once the checkpoint is taken. The file openraft sends
//! to a follower is this file, byte for byte.
//!
//! The directory holds `current.snapshot` (the snapshot openraft's
//! `get_current_snapshot` returns) and, while one is being made or
//! installed, `<n>.tmp` files and `<n>.install` directories, removed at
//! open, and `installing.snapshot`, the snapshot being installed, kept
//! until its install is finished (if need be by the next open: the state
//! machine's marker says whether). A new snapshot replaces
//! `current.snapshot` by rename (after an fsync of the file, then the
//! directory is fsynced), and never with an older one.

use crate::types::NodeId;
use openraft::{BasicNode, SnapshotMeta};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The suffix of a name `temp_path` makes (`<digits>.<suffix>`), if
/// `name` is one.
fn temp_kind(name: &str) -> Option<&str> {
    let (number, suffix) = name.split_once('.')?;
    let ours = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    (ours && matches!(suffix, "tmp" | "install")).then_some(suffix)
}

/// The snapshot's name, as openraft's `SnapshotMeta` says it.
pub type Meta = SnapshotMeta<NodeId, BasicNode>;

/// Ends every snapshot file.
const MAGIC: &[u8; 8] = b"STRSNAP1";
/// Trailer bytes after the JSON: its length and the magic.
const TRAILER_FIXED: u64 = 16;
/// The name of the current snapshot.
const CURRENT: &str = "current.snapshot";
/// The name of the snapshot being installed.
const INSTALLING: &str = "installing.snapshot";

/// The directory of a state machine's snapshot files.
pub struct SnapshotDir {
    dir: PathBuf,
    /// Held while `current.snapshot` is looked at or replaced.
    current: Mutex<()>,
    /// Numbers the temporary files and directories.
    next_tmp: AtomicU64,
}

impl SnapshotDir {
    /// Open (create) `dir`, removing what an interrupted snapshot left:
    /// only names [`temp_path`](Self::temp_path) makes (`<n>.tmp`,
    /// `<n>.install`); anything else in the directory is not ours.
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        // The directories created here are durable before any file in
        // them is relied on (a synced install marker naming a staged file
        // whose directory a power loss took would not open): each new
        // one's parent is synced.
        let created: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && !p.is_dir())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(&dir)?;
        for new in &created {
            let parent = match new.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            File::open(parent)?.sync_all()?;
        }
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            match temp_kind(&name) {
                Some("tmp") => std::fs::remove_file(entry.path())?,
                Some("install") => std::fs::remove_dir_all(entry.path())?,
                _ => {}
            }
        }
        Ok(SnapshotDir {
            dir,
            current: Mutex::new(()),
            next_tmp: AtomicU64::new(0),
        })
    }

    /// A fresh temporary path `<n>.<suffix>` (`suffix`: `tmp` or
    /// `install`).
    pub fn temp_path(&self, suffix: &str) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{n}.{suffix}"))
    }

    /// Make the complete, synced snapshot file `tmp` (named by `meta`) the
    /// current snapshot, unless the current one is newer. Returns whether
    /// it did.
    pub fn publish(&self, tmp: &Path, meta: &Meta) -> io::Result<bool> {
        let _held = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((current, _)) = self.open_current_locked()? {
            if current.last_log_id > meta.last_log_id {
                std::fs::remove_file(tmp)?;
                return Ok(false);
            }
        }
        std::fs::rename(tmp, self.dir.join(CURRENT))?;
        File::open(&self.dir)?.sync_all()?;
        Ok(true)
    }

    /// Keep the complete, synced snapshot file `tmp` as the one being
    /// installed (replacing any other), durably: renamed, the directory
    /// synced.
    pub fn stage(&self, tmp: &Path) -> io::Result<()> {
        std::fs::rename(tmp, self.staged_path())?;
        File::open(&self.dir)?.sync_all()
    }

    /// Where the snapshot being installed is kept.
    pub fn staged_path(&self) -> PathBuf {
        self.dir.join(INSTALLING)
    }

    /// The snapshot being installed: its name, the length of its
    /// checkpoint stream and its file (position anywhere), if one is kept.
    pub fn open_staged(&self) -> io::Result<Option<(Meta, u64, File)>> {
        let mut file = match File::open(self.staged_path()) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (meta, stream_len) = read_trailer(&mut file)?;
        Ok(Some((meta, stream_len, file)))
    }

    /// Forget a staged snapshot no install needs (a crash came before its
    /// install began).
    pub fn remove_staged(&self) -> io::Result<()> {
        match std::fs::remove_file(self.staged_path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The current snapshot's name and its file, positioned at its start.
    pub fn open_current(&self) -> io::Result<Option<(Meta, File)>> {
        let _held = self.current.lock().unwrap_or_else(|e| e.into_inner());
        self.open_current_locked()
    }

    fn open_current_locked(&self) -> io::Result<Option<(Meta, File)>> {
        let mut file = match File::open(self.dir.join(CURRENT)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (meta, _) = read_trailer(&mut file)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Some((meta, file)))
    }
}

/// Append the trailer naming the snapshot to `out` (after its checkpoint
/// stream).
pub fn write_trailer(out: &mut impl Write, meta: &Meta) -> io::Result<()> {
    let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
    out.write_all(&json)?;
    out.write_all(&(json.len() as u64).to_le_bytes())?;
    out.write_all(MAGIC)
}

/// The snapshot's name from its file's trailer, and the length of the
/// checkpoint stream before it. Leaves the file's position anywhere.
pub fn read_trailer(file: &mut File) -> io::Result<(Meta, u64)> {
    let len = file.seek(SeekFrom::End(0))?;
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    if len < TRAILER_FIXED {
        return Err(bad(format!(
            "snapshot file of {len} bytes is shorter than its trailer"
        )));
    }
    let mut fixed = [0u8; TRAILER_FIXED as usize];
    file.seek(SeekFrom::Start(len - TRAILER_FIXED))?;
    file.read_exact(&mut fixed)?;
    if &fixed[8..] != MAGIC {
        return Err(bad(format!(
            "snapshot file of {len} bytes does not end with the magic {MAGIC:?}"
        )));
    }
    let json_len = u64::from_le_bytes(fixed[..8].try_into().unwrap_or_default());
    let Some(stream_len) = len
        .checked_sub(TRAILER_FIXED)
        .and_then(|l| l.checked_sub(json_len))
    else {
        return Err(bad(format!(
            "snapshot trailer names {json_len} bytes of JSON in a file of {len}"
        )));
    };
    let mut json = vec![0u8; json_len as usize];
    file.seek(SeekFrom::Start(stream_len))?;
    file.read_exact(&mut json)?;
    let meta = serde_json::from_slice(&json)
        .map_err(|e| bad(format!("snapshot trailer at byte {stream_len}: {e}")))?;
    Ok((meta, stream_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opening removes what `temp_path` made and nothing else in the
    /// directory, and creates a directory that is not there.
    #[test]
    fn opening_removes_only_the_temporary_names_it_makes() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("new").join("snapshots");
        let first = SnapshotDir::open(dir.clone()).expect("create");
        let (tmp, install) = (first.temp_path("tmp"), first.temp_path("install"));
        std::fs::write(&tmp, b"t").expect("write");
        std::fs::create_dir(&install).expect("mkdir");
        std::fs::write(install.join("f"), b"f").expect("write");
        for name in ["mine.tmp", "a.install", "3.tmpx", "notes.txt"] {
            std::fs::write(dir.join(name), b"x").expect("write");
        }
        std::fs::create_dir(dir.join("backup.install")).expect("mkdir");
        drop(first);
        SnapshotDir::open(dir.clone()).expect("reopen");
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "3.tmpx",
                "a.install",
                "backup.install",
                "mine.tmp",
                "notes.txt"
            ]
        );
    }
}
