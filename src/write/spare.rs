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
//!
//! A mapped WAL is allocated as it grows (`src/fs/mapped_log.rs`), from
//! what its creator asks for. An idle database should hold little: the
//! WAL an open starts and a spare made after small WALs (a manual flush,
//! an idle database) start at [`WAL_FIRST_BYTES`]. A busy database should
//! not pay for growth on the write path: a spare made after a rotation
//! starts at the size the WAL it follows reached (at most
//! `write_buffer_size`, the old fixed preallocation), so it is allocated,
//! and warmed up by the WAL syncer, before a writer reaches it. A WAL a
//! resume makes starts small again (`restart.rs`: after a full disk).

use crate::error::{Error, Result};
use crate::filename::wal_path;
use crate::fs::{FileSystem, WritableFile};
use crate::lock_order::{Level, Mutex, MutexGuard};
use crate::memtable::MemTable;
use crate::options::WalWriteMode;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a WAL no rotation has sized starts at, if mapped: small enough
/// that an open database holding little (two WALs: the one in use and
/// the spare) takes well under 2 MiB, large enough for a few hundred
/// small writes before its first growth.
pub(crate) const WAL_FIRST_BYTES: u64 = 256 << 10;

/// The first allocation of a spare WAL made after the WAL in use reached
/// `last_wal_bytes`: that much (a busy database's next WAL will too), cut
/// to `write_buffer_size`, and never below [`WAL_FIRST_BYTES`] (which
/// wins over a smaller `write_buffer_size`: the WAL an open starts is
/// that large too).
pub(crate) fn spare_wal_bytes(last_wal_bytes: u64, write_buffer_size: u64) -> u64 {
    last_wal_bytes.min(write_buffer_size).max(WAL_FIRST_BYTES)
}

/// Create WAL `number` in `dir`, written as `mode` says (allocated to
/// `initial_bytes` if mapped, and grown as appends pass its end), with its directory entry synced: a sync of
/// the log then makes its records durable with nothing else to wait for.
/// Used at open and for spares. On failure (a full disk fails the
/// preallocation after the create) the file is removed, best effort: no
/// rotation, retried at every write while the disk is full, leaves an
/// empty log behind (the next open or resume removes one that stays).
pub(crate) fn create_wal(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    initial_bytes: u64,
    mode: WalWriteMode,
) -> Result<Box<dyn WritableFile>> {
    let path = wal_path(dir, number);
    let created = fs
        .create_log(&path, initial_bytes, mode.log_kind(fs, dir))
        .and_then(|f| fs.sync_dir(dir).map(|_| f));
    created.map_err(|e| {
        let _ = fs.remove(&path);
        Error::io("create WAL", &path, e)
    })
}

/// A created WAL (allocated, if mapped) whose directory entry is durable, and an
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
    /// An async leader's rotation found no spare and waits for the flush
    /// thread to make one (a task must not create a file and sync a
    /// directory in its poll). Cleared by the next attempt to make one.
    wanted: AtomicBool,
    /// Why the attempt made for a waiting rotation failed: that rotation
    /// reports it, as one that creates its WAL itself would.
    failure: parking_lot::Mutex<Option<Error>>,
}

impl Default for SpareSlot {
    fn default() -> Self {
        SpareSlot {
            slot: Mutex::new(Level::SpareSlot, None),
            making: Mutex::new(Level::SpareMaking, ()),
            wanted: AtomicBool::new(false),
            failure: parking_lot::Mutex::new(None),
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

    /// A spare is ready for a rotation away from WAL `current`: one
    /// numbered after it (WAL numbers grow in the order WALs are used).
    pub fn is_ready_after(&self, current: u64) -> bool {
        self.slot
            .lock()
            .as_ref()
            .is_some_and(|spare| spare.number > current)
    }

    /// The spare, if it is numbered at or before WAL `current` (made
    /// while a rotation that found none created its own): of no use.
    pub fn take_stale(&self, current: u64) -> Option<SpareWal> {
        let mut slot = self.slot.lock();
        match &*slot {
            Some(spare) if spare.number <= current => slot.take(),
            _ => None,
        }
    }

    /// Ask the maker of spares for one (it is woken by the caller).
    pub fn want(&self) {
        self.wanted.store(true, Ordering::SeqCst);
    }

    pub fn is_wanted(&self) -> bool {
        self.wanted.load(Ordering::SeqCst)
    }

    /// Whether a spare was wanted, clearing the wish: an attempt to make
    /// one has just ended.
    pub fn take_wanted(&self) -> bool {
        self.wanted.swap(false, Ordering::SeqCst)
    }

    /// An attempt made for a waiting rotation failed with `error`.
    pub fn set_failure(&self, error: Error) {
        *self.failure.lock() = Some(error);
    }

    /// Why the last attempt made for a waiting rotation failed, if it did
    /// (taken: the rotation reports it once).
    pub fn take_failure(&self) -> Option<Error> {
        self.failure.lock().take()
    }

    pub fn has_failure(&self) -> bool {
        self.failure.lock().is_some()
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
