//! A quota on the in-memory filesystem: a limit on the bytes its files
//! take, so a test can fill the disk and free it again.
//!
//! What counts is the length of every inode that has a directory entry or
//! an open handle: a file unlinked while open keeps its space until its
//! last handle closes, as on a POSIX filesystem, and a preallocated file
//! counts at its full length. Over the limit an operation fails with
//! [`io::ErrorKind::StorageFull`] (ENOSPC) and changes nothing:
//!
//! - an append or a preallocation, if the file's growth would pass it;
//! - a create, if not one byte is free (the new entry needs room);
//! - a store into a mapped log's preallocated pages, only when the files
//!   already take more than the limit (the test lowered it below what is
//!   in use). Stores into allocated blocks need no space on ext4 or xfs;
//!   over the limit the model behaves as a copy-on-write filesystem,
//!   where every page write needs a fresh block.
//!
//! Raising or removing the limit, or deleting (and closing) files, makes
//! room again. Syncs, renames, removals and reads never need room.

use super::State;
use std::collections::HashSet;
use std::io;
use std::path::Path;

/// The room an operation needs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Need {
    /// This many more bytes (an append, a preallocation).
    Bytes(u64),
    /// A directory entry: one free byte.
    Entry,
    /// Nothing new: a write into blocks already allocated.
    Allocated,
}

impl State {
    /// Bytes the files take now (see the module comment).
    pub(super) fn used_bytes(&self) -> u64 {
        let linked: HashSet<u64> = self.live.values().copied().collect();
        self.inodes
            .iter()
            .filter(|(id, _)| {
                linked.contains(id) || self.open_handles.get(id).is_some_and(|&n| n > 0)
            })
            .map(|(_, inode)| inode.len() as u64)
            .sum()
    }

    /// Refuse an operation (`what`, on `path`) that needs more room than
    /// the quota leaves.
    pub(super) fn admit(&self, what: &str, path: &Path, need: Need) -> io::Result<()> {
        let Some(quota) = self.quota else {
            return Ok(());
        };
        let used = self.used_bytes();
        let fits = match need {
            Need::Bytes(n) => used.saturating_add(n) <= quota,
            Need::Entry => used < quota,
            Need::Allocated => used <= quota,
        };
        if fits {
            return Ok(());
        }
        let asked = match need {
            Need::Bytes(n) => format!("{n} more bytes"),
            Need::Entry => "a new file".to_owned(),
            Need::Allocated => "a write into allocated blocks (over quota)".to_owned(),
        };
        Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "no space left on device: {what} of {} needs {asked}, \
                 {used} of the quota's {quota} bytes are in use",
                path.display()
            ),
        ))
    }
}
