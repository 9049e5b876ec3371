//! The next WAL and memtable, made ready before a rotation needs them.
//!
//! Rotating the memtable (freeze it, start a new memtable and WAL) happens
//! while the rotating writer leads the write queue, so every other writer
//! waits for it. Creating the WAL there (create, preallocate, map, sync
//! the directory) and sizing a memtable's filter took 2 ms on average and
//! up to 40 ms while compactions kept the disk busy (10M fillrandom on the
//! 2-core machine): that was the longest write of the run. The flush
//! thread, woken by every rotation, makes the next pair ready instead, and
//! a rotation only swaps it in (or creates one itself if none is ready:
//! no background threads, or a rotation right after another).

use crate::error::{Error, Result};
use crate::filename::wal_path;
use crate::fs::{FileSystem, WritableFile};
use crate::lock_order::{Level, Mutex, MutexGuard};
use crate::memtable::MemTable;
use crate::options::WalWriteMode;
use std::path::Path;
use std::sync::Arc;

/// Create WAL `number` in `dir`, written as `mode` says (preallocated for
/// `expected_bytes` if mapped), with its directory entry synced: a sync of
/// the log then makes its records durable with nothing else to wait for.
/// Used at open and for spares. On failure (a full disk fails the
/// preallocation after the create) the file is removed, best effort: no
/// rotation, retried at every write while the disk is full, leaves an
/// empty log behind (the next open or resume removes one that stays).
pub(crate) fn create_wal(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    expected_bytes: u64,
    mode: WalWriteMode,
) -> Result<Box<dyn WritableFile>> {
    let path = wal_path(dir, number);
    let created = fs
        .create_log(&path, expected_bytes, mode.log_kind(fs, dir))
        .and_then(|f| fs.sync_dir(dir).map(|_| f));
    created.map_err(|e| {
        let _ = fs.remove(&path);
        Error::io("create WAL", &path, e)
    })
}

/// A created, preallocated WAL whose directory entry is durable, and an
/// empty memtable that logs to it.
pub(crate) struct SpareWal {
    pub number: u64,
    pub file: Box<dyn WritableFile>,
    pub mem: Arc<MemTable>,
}

/// Holds at most one [`SpareWal`].
pub(crate) struct SpareSlot {
    slot: Mutex<Option<SpareWal>>,
    /// Held while a spare is made, and by a resume throughout: a resume
    /// lists and deletes WALs, and must not meet one half made.
    making: Mutex<()>,
}

impl Default for SpareSlot {
    fn default() -> Self {
        SpareSlot {
            slot: Mutex::new(Level::SpareSlot, None),
            making: Mutex::new(Level::SpareMaking, ()),
        }
    }
}

impl SpareSlot {
    pub fn take(&self) -> Option<SpareWal> {
        self.slot.lock().take()
    }

    pub fn is_ready(&self) -> bool {
        self.slot.lock().is_some()
    }

    /// Keep `spare` for the next rotation (replacing none: only the flush
    /// thread makes spares, one at a time, and a resume puts back the one
    /// it took or made).
    pub fn put(&self, spare: SpareWal) {
        let mut slot = self.slot.lock();
        debug_assert!(slot.is_none(), "one maker of spares");
        *slot = Some(spare);
    }

    /// Exclude every other maker of spares while the guard lives.
    pub fn making(&self) -> MutexGuard<'_, ()> {
        self.making.lock()
    }
}
