//! `KeyspaceState`: what the engine holds for one keyspace (RocksDB's
//! `ColumnFamilyData`): its options, and the super version readers,
//! writers, flushes and compactions of it share.

use crate::options::Options;
use crate::read::SuperVersion;
use crate::stats::KeyspaceCounters;
use arc_swap::{ArcSwap, Guard};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(crate) struct KeyspaceState {
    /// Stable id, recorded in the MANIFEST and in every WAL record of it.
    pub id: u32,
    pub name: String,
    /// The database's options with this keyspace's fields
    /// (`Options::for_keyspace`); replaced when the keyspace is opened
    /// with other options.
    options: ArcSwap<Options>,
    /// What readers see: its active and frozen memtables and its version.
    /// Replaced (never mutated) on rotation, flush and compaction, under
    /// `DbInner::sv_update`.
    pub super_version: ArcSwap<SuperVersion>,
    /// Set once the drop is in the MANIFEST: no more writes, flushes or
    /// compactions of it.
    dropped: AtomicBool,
    /// Its flush and compaction counters, by level.
    pub counters: KeyspaceCounters,
    /// Set for a keyspace recovered at open that no one has opened since:
    /// its options are the database's but for the merge operator, the
    /// compaction filter and the default time to live, which it does not
    /// have until opened (docs/design/merge.md §5). A keyspace created or
    /// opened with options has the ones it was given, None included, and
    /// never takes the database's.
    awaiting_opening: AtomicBool,
}

impl KeyspaceState {
    pub fn new(id: u32, name: String, options: Options, super_version: SuperVersion) -> Self {
        KeyspaceState {
            id,
            name,
            options: ArcSwap::from_pointee(options),
            super_version: ArcSwap::from_pointee(super_version),
            dropped: AtomicBool::new(false),
            counters: KeyspaceCounters::default(),
            awaiting_opening: AtomicBool::new(false),
        }
    }

    /// A keyspace recovered at open, whose merge operator, compaction
    /// filter and default time to live are not known until it is opened.
    pub fn recovered(id: u32, name: String, options: Options, super_version: SuperVersion) -> Self {
        let state = Self::new(id, name, options, super_version);
        state.awaiting_opening.store(true, Ordering::Relaxed);
        state
    }

    /// Whether this keyspace was recovered at open and has not been
    /// opened since. Callers hold `DbInner::keyspace_admin`.
    pub fn awaits_opening(&self) -> bool {
        self.awaiting_opening.load(Ordering::Relaxed)
    }

    /// Its options from now on, given by whoever opened it: the merge
    /// operator, filter and default time to live among them are settled.
    pub fn set_opened_options(&self, options: Options) {
        self.options.store(Arc::new(options));
        self.awaiting_opening.store(false, Ordering::Relaxed);
    }

    /// The options this keyspace is read and written with.
    #[inline]
    pub fn options(&self) -> Guard<Arc<Options>> {
        self.options.load()
    }

    pub fn current_super_version(&self) -> Arc<SuperVersion> {
        self.super_version.load_full()
    }

    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    pub fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }

    /// `Err(KeyspaceDropped)` once dropped.
    pub fn check_live(&self) -> crate::Result<()> {
        if self.is_dropped() {
            return Err(crate::Error::KeyspaceDropped {
                name: self.name.clone(),
            });
        }
        Ok(())
    }
}
