//! `DbInner`: the state shared by the handle, the writers, the readers and
//! the background threads.

use crate::background::Background;
use crate::compaction::WriteController;
use crate::cursor::{Cursor, Iter};
use crate::error::{Error, Result};
use crate::events::{Notifier, StallWatch};
use crate::fs::{FileLock, FileSystem};
use crate::fs::{WritableFile, WriteAdapter};
use crate::keyspace::{KeyspaceState, Keyspaces};
use crate::lock_order::{Level, Mutex};
use crate::options::Options;
use crate::rate_limiter::{IoPriority, RateLimiter};
use crate::read::{ReadSpec, ReadView, SuperVersion};
use crate::resume::ResumeState;
use crate::snapshot_list::SnapshotList;
use crate::stats::StatsCounters;
use crate::version::{VersionSet, DEFAULT_KEYSPACE_ID};
use crate::write::WritePath;
use arc_swap::ArcSwap;
use bytes::Bytes;
use std::ops::{Bound, RangeBounds};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use strata_sstable::SeqNo;

pub(crate) struct DbInner {
    pub dir: PathBuf,
    /// The options the database was opened with; each keyspace reads its
    /// own fields from `KeyspaceState::options`.
    pub options: Options,
    pub fs: Arc<dyn FileSystem>,
    /// The default keyspace, which `Db`'s own methods read and write.
    pub default_ks: Arc<KeyspaceState>,
    /// Every live keyspace, the default one included. Replaced (never
    /// mutated) when one is created or dropped, under `keyspace_admin`.
    pub keyspaces: ArcSwap<Keyspaces>,
    /// Held while a keyspace is created or dropped.
    pub keyspace_admin: Mutex<()>,
    /// Which keyspace a background compaction looks at first: turns.
    pub compaction_turn: AtomicUsize,
    /// `make_room`'s view of the keyspaces' limits, kept between groups
    /// while no background work changes them. A leaf lock: only the write
    /// queue's leader takes it.
    pub room_limits: parking_lot::Mutex<Option<Arc<crate::write::Limits>>>,
    /// Tells this open database from every other in the process: a batch
    /// naming a keyspace of another is refused.
    pub instance: u64,
    /// Serializes super version updates (each keyspace's is replaced,
    /// never mutated). Lock order: `versions` before `sv_update`.
    sv_update: Mutex<()>,
    pub versions: Mutex<VersionSet>,
    pub snapshots: SnapshotList,
    pub write_path: WritePath,
    pub bg: Background,
    bg_error: Mutex<Option<Arc<Error>>>,
    has_bg_error: AtomicBool,
    /// Resuming after a background error (`resume.rs`).
    pub resume: ResumeState,
    pub stats: StatsCounters,
    /// The event listeners, and events waiting for a thread free to call
    /// them (`events/`).
    pub events: Notifier,
    /// The write stall condition writers last met.
    pub stall_watch: StallWatch,
    /// Set when the last handle is dropped: long compactions stop early.
    pub closing: AtomicBool,
    pub rate_limiter: Option<Arc<RateLimiter>>,
    pub write_controller: Mutex<WriteController>,
    /// The change feed's state and WAL retention (`feed/`).
    pub feed: crate::feed::Feed,
    /// Files checkpoints, backups and ingestions use outside the current
    /// versions, which a resume's clean-up leaves alone (`held_files.rs`).
    pub held_files: Arc<crate::held_files::HeldFiles>,
    pub _lock: Box<dyn FileLock>,
}

impl DbInner {
    /// Call the test hook at `point`, if one is set.
    #[inline]
    pub(crate) fn hook(&self, point: crate::hook::HookPoint) -> std::io::Result<()> {
        crate::hook::call(&self.options.test_hook, point)
    }

    pub fn new(
        dir: PathBuf,
        options: Options,
        versions: VersionSet,
        keyspaces: Keyspaces,
        write_path: WritePath,
        feed: crate::feed::Feed,
        lock: Box<dyn FileLock>,
    ) -> Self {
        let options_rate = options.rate_limiter_bytes_per_sec;
        let events = Notifier::new(options.listeners.clone(), options.inline_background_work);
        let stats = StatsCounters::new(options.statistics.clone());
        let delayed_write_rate = options.delayed_write_rate;
        let default_ks = match keyspaces.get(DEFAULT_KEYSPACE_ID) {
            Some(ks) => Arc::clone(ks),
            None => unreachable!("open makes the default keyspace"),
        };
        DbInner {
            dir,
            fs: Arc::clone(&options.fs),
            options,
            default_ks,
            keyspaces: ArcSwap::from_pointee(keyspaces),
            keyspace_admin: Mutex::new(Level::KeyspaceAdmin, ()),
            compaction_turn: AtomicUsize::new(0),
            room_limits: parking_lot::Mutex::new(None),
            instance: {
                static NEXT: AtomicU64 = AtomicU64::new(1);
                NEXT.fetch_add(1, Ordering::Relaxed)
            },
            sv_update: Mutex::new(Level::SvUpdate, ()),
            versions: Mutex::new(Level::Versions, versions),
            snapshots: SnapshotList::default(),
            write_path,
            bg: Background::default(),
            bg_error: Mutex::new(Level::BgError, None),
            has_bg_error: AtomicBool::new(false),
            resume: ResumeState::default(),
            stats,
            events,
            stall_watch: StallWatch::default(),
            closing: AtomicBool::new(false),
            rate_limiter: (options_rate > 0).then(|| Arc::new(RateLimiter::new(options_rate))),
            write_controller: Mutex::new(
                Level::WriteController,
                WriteController::new(delayed_write_rate),
            ),
            feed,
            held_files: Arc::default(),
            _lock: lock,
        }
    }

    /// Every live keyspace (the default one first).
    pub fn all_keyspaces(&self) -> Arc<Keyspaces> {
        self.keyspaces.load_full()
    }

    /// Pin what a read of `ks` needs: a super version and the sequence
    /// number to read at.
    pub fn read_view(&self, ks: &KeyspaceState, spec: ReadSpec) -> ReadView {
        let (sv, seq) = self.pin(ks, spec);
        let options = ks.options();
        ReadView {
            sv: arc_swap::Guard::into_inner(sv),
            seq,
            blocks: spec.blocks,
            max_skip: options.max_sequential_skip_in_iterations,
            merge_operator: options.merge_operator.clone(),
            now_micros: self.options.clock.now_micros(),
        }
    }

    /// The super version and sequence number a read uses. A snapshot's
    /// sequence number is registered, so every compaction keeps what it
    /// needs. The visible one is not, so the super version must be one
    /// that every version at or below it is in, and that no compaction
    /// which ignored it changed:
    /// - the sequence number is read before the super version the read
    ///   uses: every write at or below it is already in a memtable or a
    ///   table that super version holds;
    /// - that super version was also current before the sequence number
    ///   was read (the same one loaded on both sides of it): every
    ///   compaction it reflects took its stripes from a visible sequence
    ///   number at or below this one, so what it dropped as shadowed or
    ///   covered (a version, or a whole table in a delete-only compaction)
    ///   was hidden at this sequence number too. A super version installed
    ///   in between is rare (nanoseconds apart); the read tries again.
    fn pin(
        &self,
        ks: &KeyspaceState,
        spec: ReadSpec,
    ) -> (arc_swap::Guard<Arc<SuperVersion>>, SeqNo) {
        self.pin_with(ks, spec, || {})
    }

    /// `pin`, calling `between` after the sequence number is read and
    /// before the super version is loaded again: tests change the
    /// database there.
    pub(crate) fn pin_with(
        &self,
        ks: &KeyspaceState,
        spec: ReadSpec,
        mut between: impl FnMut(),
    ) -> (arc_swap::Guard<Arc<SuperVersion>>, SeqNo) {
        if let Some(seq) = spec.seq {
            return (ks.super_version.load(), seq);
        }
        loop {
            let before = ks.super_version.load();
            let seq = self.visible_sequence();
            between();
            let sv = ks.super_version.load();
            if Arc::ptr_eq(&before, &sv) {
                return (sv, seq);
            }
        }
    }

    pub fn get(&self, ks: &KeyspaceState, key: &[u8], spec: ReadSpec) -> Result<Option<Bytes>> {
        let merge_operator = &|| ks.options().merge_operator.clone();
        // Read only when an expiring version is met.
        let now = &|| self.options.clock.now_micros();
        let Some(statistics) = &self.options.statistics else {
            // Borrowed loads: no reference count touched for a point read.
            let (sv, seq) = self.pin(ks, spec);
            return crate::read::get(&sv, key, seq, spec.blocks, merge_operator, now);
        };
        let start = crate::statistics::start_get();
        let (sv, seq) = self.pin(ks, spec);
        let (found, memtable_hit) =
            crate::read::get_noting_memtable_hit(&sv, key, seq, spec.blocks, merge_operator, now);
        let bytes = found
            .as_ref()
            .ok()
            .and_then(|v| v.as_ref().map(|v| v.len()));
        statistics.record_get(start, bytes, memtable_hit);
        found
    }

    pub fn iter<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        ks: &KeyspaceState,
        range: R,
        spec: ReadSpec,
    ) -> Iter {
        let lower = match range.start_bound() {
            Bound::Included(k) => Some(k.as_ref().to_vec()),
            Bound::Excluded(k) => Some(successor_key(k.as_ref())),
            Bound::Unbounded => None,
        };
        let upper = match range.end_bound() {
            Bound::Included(k) => Some(successor_key(k.as_ref())),
            Bound::Excluded(k) => Some(k.as_ref().to_vec()),
            Bound::Unbounded => None,
        };
        Iter::new(self.read_view(ks, spec), lower, upper)
    }

    pub fn prefix(&self, ks: &KeyspaceState, prefix: &[u8], spec: ReadSpec) -> Iter {
        let upper = prefix_upper_bound(prefix);
        Iter::new(self.read_view(ks, spec), Some(prefix.to_vec()), upper)
    }

    pub fn cursor(&self, ks: &KeyspaceState, spec: ReadSpec) -> Cursor {
        Cursor::new(self.read_view(ks, spec).db_iter(None, None))
    }

    /// Record a background failure: from now on writes fail with it.
    pub fn set_bg_error(&self, e: Error) -> Arc<Error> {
        let mut slot = self.bg_error.lock();
        let first = slot.is_none();
        let err = slot.get_or_insert_with(|| Arc::new(e)).clone();
        self.has_bg_error.store(true, Ordering::Release);
        drop(slot);
        if first {
            self.events.background_error(&err);
        }
        self.bg.notify_all();
        self.write_path.wake_waiters();
        err
    }

    /// The background error, if one is recorded.
    pub fn bg_error(&self) -> Option<Arc<Error>> {
        if !self.has_bg_error.load(Ordering::Acquire) {
            return None;
        }
        self.bg_error.lock().clone()
    }

    /// Record `e` as the background error in place of the one recorded: a
    /// resume failed, and `e` is why writes stay stopped now.
    pub(crate) fn replace_bg_error(&self, e: Error) -> Arc<Error> {
        let err = Arc::new(e);
        *self.bg_error.lock() = Some(Arc::clone(&err));
        self.has_bg_error.store(true, Ordering::Release);
        self.events.background_error(&err);
        self.bg.notify_all();
        self.write_path.wake_waiters();
        err
    }

    /// Forget the background error: writes are accepted again (a resume
    /// succeeded).
    pub(crate) fn clear_bg_error(&self) {
        let mut slot = self.bg_error.lock();
        *slot = None;
        self.has_bg_error.store(false, Ordering::Release);
        drop(slot);
        self.bg.notify_all();
    }

    /// `Err(Background)` once a background job has failed.
    pub fn check_bg_error(&self) -> Result<()> {
        if !self.has_bg_error.load(Ordering::Acquire) {
            return Ok(());
        }
        match self.bg_error.lock().as_ref() {
            Some(e) => Err(Error::Background(Arc::clone(e))),
            None => Ok(()),
        }
    }

    /// A writer for a new table, held to the rate limit if one is set and
    /// written back as it grows (`bytes_per_sync`).
    pub(crate) fn table_writer(
        &self,
        file: Box<dyn WritableFile>,
        priority: IoPriority,
    ) -> WriteAdapter {
        WriteAdapter(
            file,
            self.rate_limiter.clone().map(|l| (l, priority)),
            crate::fs::Writeback::every(self.options.bytes_per_sync),
        )
    }

    /// Swap in a new super version of `ks` built from its current one.
    pub fn update_super_version(
        &self,
        ks: &KeyspaceState,
        f: impl FnOnce(&SuperVersion) -> SuperVersion,
    ) {
        let _serial = self.sv_update.lock();
        let next = f(&ks.super_version.load());
        ks.super_version.store(Arc::new(next));
    }
}

/// The smallest key greater than `key` (for an exclusive start or an
/// inclusive end bound): `key` followed by a zero byte.
pub(crate) fn successor_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    k
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` if there is none (the prefix is all 0xff bytes, or empty).
pub(crate) fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < 0xff {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_upper_bound(b"user:"), Some(b"user;".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"\xff"), None);
        assert_eq!(prefix_upper_bound(b""), None);
        assert_eq!(successor_key(b"k"), b"k\0".to_vec());
    }
}
