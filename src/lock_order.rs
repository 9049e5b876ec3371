//! The engine's lock order, in one place, and the mutex that checks it.
//!
//! Every engine mutex has a [`Level`]. A thread may block on a mutex only
//! if its level is above the level of every mutex it already holds; two
//! threads that follow that rule cannot deadlock on each other's locks.
//! (`try_lock` cannot block, so it may take any level; what it takes
//! counts as held.) The levels below, lowest first, are the order: each
//! line says what is taken under it.
//!
//! In debug builds (tests use the `checked` profile, which has debug
//! assertions) [`Mutex::lock`] keeps the levels the thread holds and
//! panics at a lock taken out of order, naming both; in release builds
//! the wrapper is parking_lot's mutex and nothing else. Condition
//! variables wait on these guards through [`Condvar`]; the level stays
//! held across a wait (the thread takes nothing while it waits).
//!
//! Not under this order: the filesystem's own locks (`src/fs/`: the
//! in-memory filesystem is a test double below the engine), the block
//! cache's shards, the memtable arena's node chunks, its blocks (taken
//! under a node chunk's lock to refill it; the block pool it takes blocks
//! from under it is lock-free, `memtable/block_pool.rs`), a
//! memtable's range tombstone list
//! (`memtable/range_del.rs`: appended to and fragmented under it),
//! statistics, the rate limiter and the handle's list of background
//! threads (`db.rs`, emptied at close): leaves that take no engine lock
//! while held. Under `cfg(loom)` the
//! publisher's mutex is loom's (`write/sync.rs`), outside the check.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

pub(crate) use parking_lot::WaitTimeoutResult;

/// A mutex's place in the lock order, lowest (taken first) first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Creating or dropping a keyspace, one at a time
    /// (`keyspace/lifecycle.rs`). Under it: the write queue's leadership
    /// (the sequencer) and what a rotation takes, the versions, the super
    /// versions.
    KeyspaceAdmin,
    /// A resume, one at a time (`resume.rs`); held throughout: it then
    /// leads the write queue and takes nearly everything below.
    ResumeRunning,
    /// A leader's member list (`write/writer.rs`), held while it leads a
    /// group: sequencing, the members' slots, waits on the WAL and on
    /// publication, inline background work in a stall.
    WriterMembers,
    /// The sequencer (`write/pipeline.rs`): whoever leads the write
    /// queue. Under it: making room (background state, versions, the
    /// write controller, the spare WAL, the WAL buffer's drain, the super
    /// version), the stall barrier (the queue, slots) and logging a group
    /// (a slot, the WAL buffer), registering with the publisher.
    Sequencer,
    /// The write queue (`write/queue.rs`); a writer's slot is taken under
    /// it (failing a writer that joins a poisoned queue).
    WriteQueue,
    /// A writer's batch and what its leader told it (`write/writer.rs`).
    /// Under it: the memtable insert, logging a lone writer's batch (the
    /// WAL buffer, and recording a WAL failure as the background error),
    /// installing a user's batch (spare buffers).
    WriterSlot,
    /// Batch buffers displaced by users' batches (`write/pool.rs`).
    SpareBatches,
    /// Writer slots for reuse (`write/pool.rs`).
    WriterPool,
    /// Making a spare WAL (`write/spare.rs`); held by a resume while it
    /// works. Under it: versions (a file number), the spare slot, the WAL
    /// buffer, the background error and state, the publisher.
    SpareMaking,
    /// The delayed-write rate (`compaction/stall.rs`).
    WriteController,
    /// The WAL file and the drain (`write/wal_buffer.rs`). Under it: the
    /// retired files, the failure, the active buffer, progress, warm-up.
    WalDrain,
    /// WAL files a rotation retired, waiting for their sync.
    WalRetired,
    /// Why the WAL buffer failed. Held while the failure is recorded as
    /// the background error (so a resume's restart cannot clear it in
    /// between), which takes the background error, the background state
    /// and the publisher, and wakes WAL waiters.
    WalFailure,
    /// The active buffer producers append to.
    WalProducer,
    /// The background threads' state (`background.rs`). Under it:
    /// automatic resume attempts, versions (is a compaction due?), the
    /// background error.
    BgState,
    /// The spare WAL and memtable themselves (`write/spare.rs`): nothing
    /// is taken under it. Above the WAL's drain and the background state:
    /// an async leader's rotation looks at it holding either
    /// (`DbInner::poll_rotation`).
    SpareSlot,
    /// Automatic resume attempts (`resume.rs`).
    ResumeAuto,
    /// The version set (`version/set.rs`). Under it: the super version,
    /// the background error.
    Versions,
    /// Swapping in a new super version (`core.rs`).
    SvUpdate,
    /// Live snapshots (`snapshot.rs`).
    Snapshots,
    /// The background error (`core.rs`).
    BgError,
    /// Groups awaiting publication (`write/publish.rs`).
    Publisher,
    /// Waiting for WAL progress (`write/wal_buffer.rs`).
    WalProgress,
    /// The WAL syncer thread's stop flag and wake-ups
    /// (`write/wal_syncer.rs`). Under it: the warm-up.
    SyncerStop,
    /// The current WAL file's warm-up.
    SyncerWarmUp,
}

/// A mutex with a place in the lock order (checked in debug builds).
pub(crate) struct Mutex<T> {
    inner: parking_lot::Mutex<T>,
    #[cfg(debug_assertions)]
    level: Level,
}

/// A held [`Mutex`]; releases it (and its level) when dropped.
pub(crate) struct MutexGuard<'a, T> {
    inner: parking_lot::MutexGuard<'a, T>,
    #[cfg(debug_assertions)]
    level: Level,
}

impl<T> Mutex<T> {
    #[cfg_attr(not(debug_assertions), allow(unused_variables))]
    pub const fn new(level: Level, value: T) -> Self {
        Mutex {
            inner: parking_lot::Mutex::new(value),
            #[cfg(debug_assertions)]
            level,
        }
    }

    /// Lock, blocking. Debug builds panic if the thread holds a mutex at
    /// this level or above.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(debug_assertions)]
        held::before_blocking(self.level);
        let inner = self.inner.lock();
        #[cfg(debug_assertions)]
        held::push(self.level);
        MutexGuard {
            inner,
            #[cfg(debug_assertions)]
            level: self.level,
        }
    }

    /// Lock if free, without blocking (so without an order to keep).
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let inner = self.inner.try_lock()?;
        #[cfg(debug_assertions)]
        held::push(self.level);
        Some(MutexGuard {
            inner,
            #[cfg(debug_assertions)]
            level: self.level,
        })
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

#[cfg(debug_assertions)]
impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        held::pop(self.level);
    }
}

/// A condition variable over a [`Mutex`].
#[derive(Default)]
pub(crate) struct Condvar(parking_lot::Condvar);

impl Condvar {
    pub const fn new() -> Self {
        Condvar(parking_lot::Condvar::new())
    }

    #[inline]
    pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        self.0.wait(&mut guard.inner);
    }

    #[inline]
    pub fn wait_until<T>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        deadline: Instant,
    ) -> WaitTimeoutResult {
        self.0.wait_until(&mut guard.inner, deadline)
    }

    #[inline]
    pub fn wait_for<T>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        self.0.wait_for(&mut guard.inner, timeout)
    }

    #[inline]
    pub fn notify_all(&self) -> usize {
        self.0.notify_all()
    }

    #[inline]
    pub fn notify_one(&self) -> bool {
        self.0.notify_one()
    }
}

/// The levels each thread holds (debug builds only).
#[cfg(debug_assertions)]
mod held {
    use super::Level;
    use std::cell::RefCell;

    thread_local! {
        static HELD: RefCell<Vec<Level>> = const { RefCell::new(Vec::new()) };
    }

    /// Panic if blocking on `level` could deadlock against the order.
    pub fn before_blocking(level: Level) {
        let top = HELD
            .try_with(|h| h.borrow().iter().max().copied())
            .ok()
            .flatten();
        if let Some(top) = top {
            // Not while unwinding: a second panic would abort and hide
            // the first.
            if top >= level && !std::thread::panicking() {
                panic!("lock order (src/lock_order.rs): taking {level:?} while holding {top:?}");
            }
        }
    }

    pub fn push(level: Level) {
        let _ = HELD.try_with(|h| h.borrow_mut().push(level));
    }

    /// Guards may be dropped in any order: remove the latest of `level`.
    pub fn pop(level: Level) {
        let _ = HELD.try_with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().rposition(|&l| l == level) {
                h.remove(i);
            }
        });
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn locks_taken_in_increasing_order_pass() {
        let low = Mutex::new(Level::Sequencer, 1);
        let high = Mutex::new(Level::Publisher, 2);
        let a = low.lock();
        let b = high.lock();
        assert_eq!(*a + *b, 3);
        drop(a); // out of order release is fine
        drop(b);
        let _again = high.lock();
    }

    #[test]
    #[should_panic(expected = "taking Sequencer while holding Publisher")]
    fn a_lock_taken_below_one_held_panics() {
        let low = Mutex::new(Level::Sequencer, ());
        let high = Mutex::new(Level::Publisher, ());
        let _b = high.lock();
        let _a = low.lock();
    }

    #[test]
    #[should_panic(expected = "taking WriterSlot while holding WriterSlot")]
    fn two_locks_of_one_level_are_not_nested() {
        let one = Mutex::new(Level::WriterSlot, ());
        let two = Mutex::new(Level::WriterSlot, ());
        let _a = one.lock();
        let _b = two.lock();
    }

    #[test]
    #[should_panic(expected = "taking BgState while holding Publisher")]
    fn try_lock_takes_any_level_and_counts_as_held() {
        let low = Mutex::new(Level::BgState, ());
        let high = Mutex::new(Level::Publisher, ());
        let _a = low.lock();
        // Cannot block, so allowed above or below what is held...
        let _b = high.try_lock().expect("free");
        drop(_a);
        // ...but held: a blocking lock below it is out of order.
        let _c = low.lock();
    }
}
