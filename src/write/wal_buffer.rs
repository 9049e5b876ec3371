//! The WAL buffer: framed log records between the write groups that fill
//! it (in sequence order) and whoever writes them to the WAL file: a
//! writer doing it inline, or the WAL syncer thread (`wal_syncer.rs`).
//!
//! Positions are log sequence numbers (LSNs): bytes pushed since the
//! database opened, across WAL files. Three positions are published:
//! `pushed` (in the buffer), `written` (handed to the operating system)
//! and `synced` (durable). A writer waits for the position its durability
//! level needs.
//!
//! It is a double buffer: producers append to the active buffer under a
//! short lock; a drainer swaps it for an empty spare and writes the full
//! one outside that lock. When the active buffer would exceed the
//! capacity, the producer drains it itself first: a full buffer blocks its
//! writer (backpressure) and never drops a record. An async leader's task
//! is parked instead while another holds the drain lock (`poll_push`),
//! and pushes nothing until there is room.
//!
//! Draining protocol (no record is ever stranded): the drain lock is taken
//! with `try_lock`; a drainer empties the buffer, releases the lock, then
//! checks the buffer again and retries if anything arrived. A producer
//! whose `try_lock` fails therefore knows the holder will see its record.
//! Every holder of the drain lock keeps that promise, not only the
//! drainers: the lock is only ever held through a [`DrainGuard`], whose
//! release looks at the buffer again (a flush, a sync, a rotation, a look
//! at the WAL number). With `manual_wal_flush` the promise is kept to
//! waiters only: records wait in the buffer for a flush someone asks for,
//! so a release writes them out only when a waiter has said it needs them
//! (`want`, before its `try_lock`). A blocking writer would escape a
//! broken promise by its periodic re-check (`WAIT_SLICE`); an async
//! writer's task would not: it is woken only by the drain that writes its
//! record.
//!
//! The buffer also keeps the WAL files a rotation moved past ("retired"):
//! written in full, synced in the background by the syncer thread (when
//! `eager_retired_sync` is on), and always before any sync of a newer
//! file is acknowledged, so WALs become durable in log order. A retired
//! file that becomes obsolete (every record it holds is in synced tables)
//! before anything needed it synced is forgotten unsynced
//! (`forget_retired_below`): its pages are never written to the disk,
//! as RocksDB never syncs a WAL a flush made obsolete with one column
//! family.

use super::backoff::Backoff;
use super::pipeline::Durability;
use super::wal_syncer::SyncRequests;
use crate::cpu::current_cpu;
use crate::fs::WritableFile;
use crate::lock_order::{Condvar, Level, Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

/// Raises [`WalBuffer`]'s advisory `syncing` flag for an fsync and lowers
/// it when dropped, a panic in the sync included (a flag left up would
/// only make waiters park at once, but for no reason).
struct Syncing<'a>(&'a AtomicBool);

impl<'a> Syncing<'a> {
    fn start(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::Relaxed);
        Syncing(flag)
    }
}

impl Drop for Syncing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Names the drain lock's holder's CPU in the advisory
/// `DrainLine::drain_cpu` while it drains, and clears it when dropped: the mark does
/// not outlive the drain, a panic included.
struct DrainCpu<'a>(&'a AtomicU32);

impl<'a> DrainCpu<'a> {
    fn mark(slot: &'a AtomicU32) -> Self {
        slot.store(current_cpu().unwrap_or(NO_CPU), Ordering::Relaxed);
        DrainCpu(slot)
    }
}

impl Drop for DrainCpu<'_> {
    fn drop(&mut self) {
        self.0.store(NO_CPU, Ordering::Relaxed);
    }
}

/// `drain_cpu` while nobody drains: no CPU.
const NO_CPU: u32 = u32::MAX;

/// A wait on progress re-checks its condition at least this often. The
/// protocol does not depend on it; it bounds the damage of a missed wakeup.
const WAIT_SLICE: Duration = Duration::from_millis(10);

struct Producer {
    buf: Vec<u8>,
    /// LSN at the end of `buf`.
    pushed: u64,
    /// Offset in the current WAL file at the end of `buf` (framing
    /// depends on the position within 32 KiB blocks).
    file_offset: u64,
    /// The current file: the LSN of its first byte framed by this buffer,
    /// and that byte's offset in the file.
    file_base_lsn: u64,
    file_base_offset: u64,
    /// The greatest synced length a sync point in the current file states
    /// (see `frame_sync_point`); `None` before its first sync point.
    stated: Option<u64>,
}

/// The WAL file and the drain state, behind the drain lock.
pub(crate) struct Drain {
    file: Box<dyn WritableFile>,
    number: u64,
    spare: Vec<u8>,
}

/// The drain lock, held: released, it looks at the buffer again and
/// drains what was pushed meanwhile if no one else holds the lock (see
/// the module comment), so a producer whose `try_lock` failed is never
/// left with its record in the buffer.
pub(crate) struct DrainGuard<'a> {
    guard: Option<MutexGuard<'a, Drain>>,
    wal: &'a WalBuffer,
}

impl std::ops::Deref for DrainGuard<'_> {
    type Target = Drain;
    fn deref(&self) -> &Drain {
        self.guard.as_deref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for DrainGuard<'_> {
    fn deref_mut(&mut self) -> &mut Drain {
        self.guard.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for DrainGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.wal.drain_released();
        if std::thread::panicking() {
            // The panic is recorded as a background error, which fails
            // every waiter; a second panic here would abort.
            return;
        }
        if self.wal.drain_wanted() && !self.wal.producer.lock().buf.is_empty() {
            // A failure is recorded (`fail`) and wakes the waiters.
            let _ = self.wal.drain_if_idle();
        }
    }
}

/// Tasks waiting for a position, by the position: woken a reached prefix
/// at a time. A leaf lock (no engine lock is taken under it); the wakers
/// are woken after it is released.
#[derive(Default)]
struct TaskWaiters {
    written: BTreeMap<u64, Vec<Waker>>,
    synced: BTreeMap<u64, Vec<Waker>>,
    /// Work handed over to whoever writes a position out (`when_written`).
    on_written: BTreeMap<u64, Vec<Arc<OnWritten>>>,
    /// Tasks waiting for the drain lock to be let go (`poll_lock_drain`):
    /// an async leader's rotation. Woken, all of them, at every release.
    drain_lock: Vec<Waker>,
}

impl TaskWaiters {
    fn len(&self) -> usize {
        self.written.len() + self.synced.len() + self.on_written.len()
    }
}

/// What to do once a position is written: run once, by whoever sees the
/// position reached (or the buffer failed) first.
pub(crate) type WrittenThen = Box<dyn FnOnce(bool) + Send>;

struct OnWritten(parking_lot::Mutex<Option<WrittenThen>>);

impl OnWritten {
    /// Run it (`true`: written; `false`: the buffer failed first), unless
    /// someone has.
    fn run(&self, written: bool) {
        let then = self.0.lock().take();
        if let Some(then) = then {
            then(written);
        }
    }
}

/// The entries in `map` at positions up to `reached`, removed.
fn take_reached<T>(map: &mut BTreeMap<u64, Vec<T>>, reached: u64) -> Vec<T> {
    if map.first_key_value().is_none_or(|(&lsn, _)| lsn > reached) {
        return Vec::new();
    }
    let later = map.split_off(&(reached + 1));
    std::mem::replace(map, later)
        .into_values()
        .flatten()
        .collect()
}

/// What a drain publishes and a spinning waiter reads, on one cache line:
/// the waiter reads both on every spin and the drain writes both, so one
/// line moves between the cores per drain rather than two (two writers
/// made 0.96x main's writes with `drain_cpu` a field of its own, 0.985x
/// on `written`'s line, ten rounds each; docs/performance.md,
/// "Seventeenth session").
#[repr(C, align(64))]
struct DrainLine {
    /// The log position up to which records are written to the file.
    written: AtomicU64,
    /// The CPU the drain lock's holder ran on when it began to drain
    /// ([`NO_CPU`] while nobody drains): a waiter on that same CPU parks
    /// at once, since that holder cannot be running while the waiter is.
    /// Advisory, like `syncing`: it only chooses how a waiter waits.
    drain_cpu: AtomicU32,
}

pub(crate) struct WalBuffer {
    capacity: usize,
    producer: Mutex<Producer>,
    drain: Mutex<Drain>,
    drain_line: DrainLine,
    synced: AtomicU64,
    /// fsyncs done.
    syncs: AtomicU64,
    /// Where fsync latencies go (`Options::statistics`), set before the
    /// buffer is shared.
    pub(crate) statistics: Option<Arc<crate::Statistics>>,
    /// `Options::manual_wal_flush`, set before the buffer is shared:
    /// records stay in the buffer until someone asks for them to be
    /// written (a `flush_wal`, a sync, a full buffer, a rotation), so a
    /// release of the drain lock writes them out only for a waiter
    /// (`wanted`), not for any holder passing by (a warm-up, a look at
    /// the file).
    pub(crate) manual_flush: bool,
    /// The greatest position a waiter needs written (`wait_with`, `poll_wait`,
    /// `when_written`), stored before it tries the drain lock: a holder
    /// releasing the lock after that try sees it (SeqCst on both sides).
    wanted: AtomicU64,
    /// What the syncer thread is asked to do (`wal_syncer.rs`).
    pub(super) syncer: SyncRequests,
    failed: AtomicBool,
    /// Why the buffer failed (the error's kind, so a full disk stays one,
    /// and its message), for the error writers report. Cleared only by
    /// [`WalBuffer::restart`], under this lock.
    failure: Mutex<Option<(io::ErrorKind, String)>>,
    /// Signalled when `written` or `synced` advance, or on failure.
    progress_lock: Mutex<()>,
    /// Threads waiting on `progress`; a drain skips the notification
    /// (a lock and a futex call) when there are none.
    progress_waiters: AtomicUsize,
    /// Sleeps on the progress condvar (`wait_with`), for the tests.
    #[cfg(test)]
    parks: AtomicUsize,
    progress: Condvar,
    /// Async writers' tasks waiting for a position (`poll_wait`); counted
    /// in `progress_waiters` too, so a drain with no waiter of either kind
    /// still skips the notification.
    tasks: parking_lot::Mutex<TaskWaiters>,
    /// Positions tasks wait for (`tasks`' keys): the blocking path looks
    /// at the task list only when some task waits.
    task_positions: AtomicUsize,
    /// Tasks in `tasks.drain_lock`: a release of the drain lock looks at
    /// the task list only when some task waits for it.
    drain_lock_tasks: AtomicUsize,
    /// The number of the WAL file records go to (`Drain::number`, copied
    /// under the drain lock): read without that lock, which an fsync may
    /// hold for long.
    number: AtomicU64,
    /// WAL files the buffer has moved past, written in full but maybe not
    /// synced; the syncer syncs them in the background, and a sync of the
    /// current file first makes sure they are synced (WALs become durable
    /// in order).
    retired: Mutex<Vec<(u64, Box<dyn WritableFile>)>>,
    /// The syncer thread syncs retired files as soon as they retire,
    /// without a request: on when a flush will need them durable before
    /// it installs its table (another keyspace's writes may be in them,
    /// or the change feed keeps obsolete WALs), so that the flush finds
    /// the fsync done. Off, a retired file is synced only when a sync of
    /// a newer one or a flush needs it, and usually becomes obsolete and
    /// is forgotten first. Correctness does not depend on it.
    eager_retired_sync: AtomicBool,
    /// The drain lock's holder is in an fsync (milliseconds): a waiter
    /// parks at once rather than spin or yield through it. Advisory: it
    /// only chooses how a waiter waits.
    syncing: AtomicBool,
    /// Retired files not yet synced (taken for syncing included).
    retired_unsynced: AtomicUsize,
    /// Files the drain has moved past, and how many of those are synced:
    /// equal whenever a sync is acknowledged (checked in debug builds).
    /// Counted where the file is replaced, not where it is listed, so the
    /// check does not lean on the listing it guards.
    files_left: AtomicU64,
    files_left_synced: AtomicU64,
    retired_synced: Condvar,
}

impl WalBuffer {
    pub fn new(capacity: usize, file: Box<dyn WritableFile>, number: u64) -> Self {
        WalBuffer {
            capacity,
            producer: Mutex::new(
                Level::WalProducer,
                Producer {
                    buf: Vec::with_capacity(capacity.min(1 << 20)),
                    pushed: 0,
                    file_offset: file.len(),
                    file_base_lsn: 0,
                    file_base_offset: file.len(),
                    // The WAL an open starts: no earlier WAL to prove synced.
                    stated: Some(file.len()),
                },
            ),
            drain: Mutex::new(
                Level::WalDrain,
                Drain {
                    file,
                    number,
                    spare: Vec::with_capacity(capacity.min(1 << 20)),
                },
            ),
            drain_line: DrainLine {
                written: AtomicU64::new(0),
                drain_cpu: AtomicU32::new(NO_CPU),
            },
            synced: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            statistics: None,
            manual_flush: false,
            wanted: AtomicU64::new(0),
            syncer: SyncRequests::default(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(Level::WalFailure, None),
            progress_lock: Mutex::new(Level::WalProgress, ()),
            progress_waiters: AtomicUsize::new(0),
            #[cfg(test)]
            parks: AtomicUsize::new(0),
            progress: Condvar::new(),
            tasks: parking_lot::Mutex::new(TaskWaiters::default()),
            task_positions: AtomicUsize::new(0),
            drain_lock_tasks: AtomicUsize::new(0),
            number: AtomicU64::new(number),
            retired: Mutex::new(Level::WalRetired, Vec::new()),
            eager_retired_sync: AtomicBool::new(true),
            syncing: AtomicBool::new(false),
            retired_unsynced: AtomicUsize::new(0),
            files_left: AtomicU64::new(0),
            files_left_synced: AtomicU64::new(0),
            retired_synced: Condvar::new(),
        }
    }

    /// Take the drain lock, waiting for it.
    pub(super) fn lock_drain(&self) -> DrainGuard<'_> {
        DrainGuard {
            guard: Some(self.drain.lock()),
            wal: self,
        }
    }

    /// [`lock_drain`](Self::lock_drain) for a task: the lock if it is
    /// free; otherwise `waker` is woken when it is let go (and the task
    /// tries again). Its holder may be the syncer in an fsync.
    ///
    /// No lost wakeup: the waker is registered (and counted, SeqCst)
    /// before the second try, and a release lets the mutex go before it
    /// looks at the count (SeqCst fences on both sides, `drain_released`):
    /// either the second try sees the lock free, or that release sees
    /// the task and wakes it. A task whose second try succeeds stays
    /// registered: the next release wakes it for nothing, once.
    pub(super) fn poll_lock_drain(&self, waker: &Waker) -> Poll<DrainGuard<'_>> {
        let try_lock = || {
            self.drain.try_lock().map(|guard| DrainGuard {
                guard: Some(guard),
                wal: self,
            })
        };
        if let Some(d) = try_lock() {
            return Poll::Ready(d);
        }
        {
            let mut tasks = self.tasks.lock();
            if !tasks.drain_lock.iter().any(|w| w.will_wake(waker)) {
                tasks.drain_lock.push(waker.clone());
                self.drain_lock_tasks
                    .store(tasks.drain_lock.len(), Ordering::SeqCst);
            }
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        match try_lock() {
            Some(d) => Poll::Ready(d),
            None => Poll::Pending,
        }
    }

    /// The drain lock was just let go: wake the tasks waiting for it
    /// (`poll_lock_drain`). Every release calls this after unlocking.
    fn drain_released(&self) {
        // Pairs with the fence in `poll_lock_drain`.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.drain_lock_tasks.load(Ordering::SeqCst) == 0 {
            return;
        }
        let waiting = {
            let mut tasks = self.tasks.lock();
            self.drain_lock_tasks.store(0, Ordering::SeqCst);
            std::mem::take(&mut tasks.drain_lock)
        };
        waiting.into_iter().for_each(Waker::wake);
    }

    /// Whether a release of the drain lock must write out what is in the
    /// buffer: always, unless records wait for a manual flush and no
    /// waiter needs them written.
    pub(super) fn drain_wanted(&self) -> bool {
        if !self.manual_flush {
            return true;
        }
        // Pairs with the fence in `want` (the unlock before it is the
        // other side's `try_lock`); `drain_released` fenced already, once
        // more keeps the pairing local.
        std::sync::atomic::fence(Ordering::SeqCst);
        self.wanted.load(Ordering::SeqCst) > self.written()
    }

    /// A waiter needs `lsn` written out (see `wanted`): said before it
    /// tries the drain lock.
    fn want(&self, lsn: u64) {
        if self.manual_flush {
            self.wanted.fetch_max(lsn, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
        }
    }

    /// Frame `payload` as one log record and append it. Returns the LSN
    /// just past it. REQUIRES: callers are serialized (the write-group
    /// leader), so records enter in sequence order.
    pub fn push(&self, payload: &[u8]) -> io::Result<u64> {
        loop {
            if let Ok(end) = self.try_push(payload) {
                return Ok(end);
            }
            // Full: drain it ourselves, waiting for the drain lock if a
            // drainer holds it.
            let mut d = self.lock_drain();
            self.drain_locked(&mut d)?;
        }
    }

    /// [`push`](Self::push) for a task: `Pending` while the buffer is
    /// full and someone else holds the drain lock (an fsync, say), with
    /// `waker` woken once the buffer is written out; `stop` reports the
    /// error that ends the wait (as in [`poll_wait`](Self::poll_wait)).
    /// Nothing is pushed until there is room: a full buffer still holds
    /// its writer back (here its task), and never drops a record.
    ///
    /// What wakes the task: the buffer is full, so not empty, so whoever
    /// holds the drain lock writes it out before letting go (a drainer
    /// loops until the buffer is empty; any other holder drains at its
    /// release, `DrainGuard`, with `manual_wal_flush` because the task
    /// said it wants the position, `poll_wait`'s `want`), and that drain
    /// wakes the tasks waiting for
    /// a position it reached. The task waits for the position pushed
    /// when it found the buffer full, registered before it looks again
    /// (`poll_wait`), so no drain falls between its look and its wait
    /// unseen. Once that position is written the buffer is empty: only
    /// the caller, the leader, pushes.
    pub fn poll_push(
        &self,
        payload: &[u8],
        waker: &Waker,
        stop: impl Fn() -> Option<crate::Error>,
    ) -> Poll<crate::Result<u64>> {
        loop {
            let full_at = match self.try_push(payload) {
                Ok(end) => return Poll::Ready(Ok(end)),
                Err(full_at) => full_at,
            };
            // Drains it here if the drain lock is free (a `write`, no
            // fsync), as any task waiting for its record does.
            match self.poll_wait(full_at, Durability::Written, waker, &stop) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Frame `payload` into the buffer if it fits: the LSN just past it;
    /// `Err` with the LSN pushed so far if the buffer is full. Never grows
    /// the buffer past the capacity, except for one oversized record
    /// into an empty buffer.
    fn try_push(&self, payload: &[u8]) -> Result<u64, u64> {
        let mut p = self.producer.lock();
        let framed =
            (strata_wal::encoded_end(p.file_offset, payload.len()) - p.file_offset) as usize;
        if !p.buf.is_empty() && p.buf.len() + framed > self.capacity {
            return Err(p.pushed);
        }
        self.frame_sync_point(&mut p);
        let before = p.buf.len();
        let offset = p.file_offset;
        p.file_offset = strata_wal::encode_record(&mut p.buf, offset, payload);
        p.pushed += (p.buf.len() - before) as u64;
        Ok(p.pushed)
    }

    /// Before a record, state in the log how much of the current file is
    /// durably synced, if a sync completed since the last statement: a
    /// sync point (docs/wal-format.md). After a crash, damage below a
    /// stated length is corruption; anywhere else it is the torn tail a
    /// crash leaves. The first sync point of a file also proves every
    /// earlier WAL fully synced (a sync of this file syncs them first),
    /// which recovery relies on (`src/wal_replay.rs`).
    ///
    /// The stated length is what the sync published in `synced` covered:
    /// a drain boundary, so a fragment boundary, and synced before this
    /// is framed, as a sync point requires.
    fn frame_sync_point(&self, p: &mut Producer) {
        let synced = self.synced.load(Ordering::Acquire);
        if synced < p.file_base_lsn {
            return; // nothing of this file (or an older one) is synced yet
        }
        let synced_len = p.file_base_offset + (synced - p.file_base_lsn);
        if p.stated.is_some_and(|stated| stated >= synced_len) {
            return;
        }
        let before = p.buf.len();
        let offset = p.file_offset;
        p.file_offset = strata_wal::encode_sync_point(&mut p.buf, offset, synced_len);
        p.pushed += (p.buf.len() - before) as u64;
        p.stated = Some(synced_len);
    }

    /// Write everything in the buffer to the file. REQUIRES: the drain lock.
    fn drain_locked(&self, d: &mut Drain) -> io::Result<()> {
        self.check_failed()?;
        let _on_cpu = DrainCpu::mark(&self.drain_line.drain_cpu);
        loop {
            let end = {
                let mut p = self.producer.lock();
                if p.buf.is_empty() {
                    return Ok(());
                }
                std::mem::swap(&mut p.buf, &mut d.spare);
                p.pushed
            };
            let result = d.file.append(&d.spare).and_then(|_| d.file.flush());
            d.spare.clear();
            if let Err(e) = result {
                self.fail(&e);
                return Err(e);
            }
            // A growth of the file: its new pages are warmed up in the
            // background before the writer reaches them.
            if self.syncer.is_running() {
                if let Some(job) = d.file.take_warm_up() {
                    self.syncer.add_warm_up(job);
                }
            }
            self.drain_line.written.store(end, Ordering::Release);
            self.notify_progress();
        }
    }

    /// Drain if nobody else is draining; see the module comment.
    pub fn drain_if_idle(&self) -> io::Result<()> {
        loop {
            match self.drain.try_lock() {
                Some(mut d) => {
                    let drained = self.drain_locked(&mut d);
                    drop(d);
                    self.drain_released();
                    drained?;
                }
                None => return Ok(()),
            }
            if self.producer.lock().buf.is_empty() {
                return Ok(());
            }
        }
    }

    /// Drain and fsync if nobody else holds the drain lock (then re-check
    /// for records pushed meanwhile, as `drain_if_idle` does).
    fn sync_if_idle(&self) -> io::Result<()> {
        self.sync_retired()?;
        match self.drain.try_lock() {
            Some(mut d) => {
                let synced = self.sync_locked(&mut d);
                drop(d);
                self.drain_released();
                synced?;
            }
            None => return Ok(()),
        }
        self.drain_if_idle()
    }

    /// Drain, waiting for the drain lock.
    pub fn drain_all(&self) -> io::Result<()> {
        let mut d = self.lock_drain();
        self.drain_locked(&mut d)
    }

    /// Where the logged writes end, for a checkpoint: every retired WAL
    /// is synced (so it is closed and cut to its records: its size is
    /// final), everything pushed is written to the current file and
    /// synced, and the current WAL's number and length are returned. With
    /// writes stopped (the caller leads the write queue), the WALs up to
    /// that length hold every logged write sequenced so far, and nothing
    /// later. Synced, not only written: a checkpoint must not hold a write
    /// a power loss can still take from its source, or a replica started
    /// from it and fed by the change feed (which shows only synced
    /// batches) would keep a write its primary lost and miss the one that
    /// reuses its sequence number.
    pub fn synced_end(&self) -> io::Result<(u64, u64)> {
        self.sync_retired()?;
        let mut d = self.lock_drain();
        self.sync_locked(&mut d)?;
        Ok((d.number, d.file.len()))
    }

    /// Drain, then fsync. Everything pushed before the call is durable
    /// when it returns.
    pub fn sync_all(&self) -> io::Result<()> {
        self.sync_retired()?;
        let mut d = self.lock_drain();
        self.sync_locked(&mut d)
    }

    /// Drain, then fsync the current file and publish the synced
    /// position. Every retired file is synced first, so WALs become
    /// durable in log order. Callers sync them before they take the drain
    /// lock, so writers are not held up by those fsyncs (as `sync_closed`
    /// does for a flush); here only a file a rotation retired in between
    /// (it retires under the drain lock) is left, rarely.
    fn sync_locked(&self, d: &mut Drain) -> io::Result<()> {
        self.drain_locked(d)?;
        self.sync_retired()?;
        let target = self.drain_line.written.load(Ordering::Acquire);
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let start = std::time::Instant::now();
        let result = {
            let _syncing = Syncing::start(&self.syncing);
            d.file.sync()
        };
        if let Err(e) = result {
            self.fail(&e);
            return Err(e);
        }
        if let Some(s) = &self.statistics {
            s.record_since(crate::Histogram::WalFileSync, start);
        }
        // WALs become durable in log order: a sync acknowledged while an
        // older WAL is unsynced would cover records a power loss can take.
        debug_assert_eq!(
            self.files_left.load(Ordering::Acquire),
            self.files_left_synced.load(Ordering::Acquire),
            "a WAL sync acknowledged while an older WAL is unsynced"
        );
        self.synced.fetch_max(target, Ordering::AcqRel);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.notify_progress();
        Ok(())
    }

    /// Make the WAL files before the current one durable (those a rotation
    /// moved past), without holding the drain lock through an fsync:
    /// writers keep appending to the current file meanwhile. This is what
    /// a flush needs (RocksDB's `SyncClosedLogs`): its memtable was frozen
    /// by a rotation, so its writes and every write numbered before them
    /// were logged before that rotation, in these files. The synced
    /// position then covers them (up to the current file's first byte),
    /// as a sync of the current file would have.
    ///
    /// Holding the drain lock through the fsyncs (as `sync_all` does)
    /// stopped every writer for as long as the retired WAL took to sync:
    /// fillbatch's longest writes, 100 ms and more (docs/performance.md,
    /// issue 24 items 1 and 6).
    pub fn sync_closed(&self) -> io::Result<()> {
        // Read under the drain lock: a rotation lists the old file as
        // retired before it lets that lock go, so every file holding a
        // position below `base` is retired (or synced) by now.
        let d = self.lock_drain();
        let base = self.producer.lock().file_base_lsn;
        // Released after the producer lock: the release looks at the
        // buffer under it.
        drop(d);
        self.sync_retired()?;
        if self.synced.fetch_max(base, Ordering::AcqRel) < base {
            self.notify_progress();
        }
        Ok(())
    }

    /// Sync every retired file: those not yet taken here, and wait for the
    /// ones another thread is syncing. Retired files are no longer
    /// appended to, so this needs no drain lock.
    pub(super) fn sync_retired(&self) -> io::Result<()> {
        loop {
            let mut retired = self.retired.lock();
            let Some((_, mut file)) = retired.pop() else {
                // After a failed sync nothing counts as synced, even
                // once no retired file is left unsynced.
                self.check_failed()?;
                if self.retired_unsynced.load(Ordering::Acquire) == 0 {
                    return Ok(());
                }
                // Another thread is syncing one: wait for it, then look
                // at the list again (a file retired meanwhile is ours).
                self.retired_synced.wait_for(&mut retired, WAIT_SLICE);
                continue;
            };
            drop(retired);
            file.retire();
            let result = file.sync();
            drop(file);
            if let Err(e) = result {
                self.fail(&e);
                let _g = self.retired.lock();
                // Its sync is over (failed): `restart` waits for no other.
                self.retired_unsynced.fetch_sub(1, Ordering::AcqRel);
                self.retired_synced.notify_all();
                return Err(e);
            }
            let _g = self.retired.lock();
            self.files_left_synced.fetch_add(1, Ordering::AcqRel);
            self.retired_unsynced.fetch_sub(1, Ordering::AcqRel);
            self.retired_synced.notify_all();
        }
    }

    /// Forget the retired files numbered below `number` that no thread
    /// has taken for syncing: the WALs below the log number, whose every
    /// record is in synced tables (a flush installed them), so none needs
    /// syncing, and a sync of a newer file may skip them: they count as
    /// synced. Closed unsynced, their dirty pages go with the file when it
    /// is deleted instead of being written out. REQUIRES: WALs below
    /// `number` are obsolete (below the MANIFEST's log number).
    pub fn forget_retired_below(&self, number: u64) {
        let forgotten: Vec<Box<dyn WritableFile>> = {
            let mut retired = self.retired.lock();
            let (old, kept): (Vec<_>, Vec<_>) = retired.drain(..).partition(|(n, _)| *n < number);
            *retired = kept;
            if !old.is_empty() {
                let count = old.len();
                self.files_left_synced
                    .fetch_add(count as u64, Ordering::AcqRel);
                self.retired_unsynced.fetch_sub(count, Ordering::AcqRel);
                self.retired_synced.notify_all();
            }
            old.into_iter().map(|(_, f)| f).collect()
        };
        // Closed outside the lock: closing a mapped log truncates it.
        drop(forgotten);
    }

    /// Whether the syncer syncs retired files without being asked (see
    /// `eager_retired_sync`).
    pub fn set_eager_retired_sync(&self, eager: bool) {
        if !self.eager_retired_sync.swap(eager, Ordering::AcqRel) && eager {
            self.syncer.wake();
        }
    }

    pub(super) fn eager_retired_sync(&self) -> bool {
        self.eager_retired_sync.load(Ordering::Acquire)
    }

    /// Wait until `lsn` has the given durability. `inline` lets the caller
    /// drain (or drain and fsync) the buffer itself when no one else is, so a
    /// lone writer pays no thread handoff; while someone else drains or
    /// syncs, the caller waits, and the next sync covers every record
    /// pushed meanwhile (that is how the fsyncs of many groups coalesce).
    /// Without `inline`, a sync is left to the syncer thread. `stop`
    /// reports a background error that ends the wait. Parks at once; the
    /// write path waits through `wait_with`.
    #[cfg(test)]
    pub fn wait(
        &self,
        lsn: u64,
        durability: Durability,
        inline: bool,
        stop: impl Fn() -> Option<crate::Error>,
    ) -> crate::Result<()> {
        self.wait_with(lsn, durability, inline, Backoff::park_at_once(), stop)
    }

    /// Wait as `wait` (tests) does, spinning or yielding by `backoff` before it
    /// sleeps on the progress condvar, unless the drain lock's holder is
    /// in an fsync or began its drain on this thread's CPU: a `Written` wait is usually for another writer's copy
    /// into the log, microseconds, which a park and its futex wake-up (in
    /// the writer that finishes the copy) cost more than.
    pub fn wait_with(
        &self,
        lsn: u64,
        durability: Durability,
        inline: bool,
        mut backoff: Backoff,
        stop: impl Fn() -> Option<crate::Error>,
    ) -> crate::Result<()> {
        let reached = |wal: &Self| match durability {
            Durability::Buffered => true,
            Durability::Written => wal.drain_line.written.load(Ordering::Acquire) >= lsn,
            Durability::Synced => wal.synced.load(Ordering::Acquire) >= lsn,
        };
        if durability != Durability::Buffered {
            self.want(lsn);
        }
        if durability == Durability::Synced && !inline {
            self.syncer.request(lsn);
        }
        loop {
            if reached(self) {
                return Ok(());
            }
            if let Some(e) = stop() {
                return Err(e);
            }
            if inline {
                let done = match durability {
                    Durability::Buffered => Ok(()),
                    Durability::Written => self.drain_if_idle(),
                    Durability::Synced => self.sync_if_idle(),
                };
                if done.is_err() {
                    continue; // the failure is reported by `stop` next round
                }
            }
            if reached(self) {
                return Ok(());
            }
            if !self.syncing.load(Ordering::Relaxed)
                && !self.drain_holder_shares_this_cpu()
                && backoff.snooze()
            {
                continue;
            }
            let mut g = self.progress_lock.lock();
            // Registered before the re-check (SeqCst on both sides): a
            // notifier that advanced the position after our check sees us.
            self.progress_waiters.fetch_add(1, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if !reached(self) && !self.failed.load(Ordering::SeqCst) {
                #[cfg(test)]
                self.parks.fetch_add(1, Ordering::Relaxed);
                self.progress.wait_for(&mut g, WAIT_SLICE);
            }
            self.progress_waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The drain lock's holder began its drain on the CPU this thread
    /// runs on: unless it has moved since, it is not running while this
    /// thread is (it was preempted), and a spin would only keep it off the
    /// CPU for longer. With more writers than cores that is where a spin
    /// cost most: four and eight writers on two cores made 1.08x and 1.04x
    /// the writes with this rule (docs/performance.md, "Seventeenth
    /// session").
    fn drain_holder_shares_this_cpu(&self) -> bool {
        let holder = self.drain_line.drain_cpu.load(Ordering::Relaxed);
        holder != NO_CPU && current_cpu() == Some(holder)
    }

    /// [`wait_with`](Self::wait_with) for a task: ready once `lsn` has the given
    /// durability, or `stop` reports an error; otherwise `waker` is woken
    /// when the position advances or the buffer fails. Never blocks: the
    /// record is written out here only if no one else holds the drain lock
    /// (a `write`, no fsync), and a sync is always the syncer thread's.
    pub fn poll_wait(
        &self,
        lsn: u64,
        durability: Durability,
        waker: &Waker,
        stop: impl Fn() -> Option<crate::Error>,
    ) -> Poll<crate::Result<()>> {
        let reached = |wal: &Self| match durability {
            Durability::Buffered => true,
            Durability::Written => wal.drain_line.written.load(Ordering::Acquire) >= lsn,
            Durability::Synced => wal.synced.load(Ordering::Acquire) >= lsn,
        };
        if reached(self) {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = stop() {
            return Poll::Ready(Err(e));
        }
        if durability != Durability::Buffered {
            self.want(lsn);
        }
        match durability {
            Durability::Buffered => {}
            // A failure is reported by `stop` at the next poll.
            Durability::Written => {
                let _ = self.drain_if_idle();
            }
            Durability::Synced => self.syncer.request(lsn),
        }
        if reached(self) {
            return Poll::Ready(Ok(()));
        }
        {
            let mut tasks = self.tasks.lock();
            let map = match durability {
                Durability::Synced => &mut tasks.synced,
                _ => &mut tasks.written,
            };
            let entry = map.entry(lsn).or_default();
            if entry.is_empty() {
                // One count per position waited for (see `notify_progress`).
                self.progress_waiters.fetch_add(1, Ordering::SeqCst);
                self.task_positions.fetch_add(1, Ordering::SeqCst);
            }
            // Once per task, however often it is polled.
            if !entry.iter().any(|w| w.will_wake(waker)) {
                entry.push(waker.clone());
            }
        }
        // Registered before the re-check (SeqCst on both sides, as in
        // `wait_with`): a notifier that advanced after this look sees us.
        std::sync::atomic::fence(Ordering::SeqCst);
        if reached(self) {
            return Poll::Ready(Ok(()));
        }
        // Asked again once registered: an error recorded since the first
        // look woke the tasks registered then (`wake_waiters`), not this
        // one; one recorded from now on wakes it.
        match stop() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Pending,
        }
    }

    /// Run `then` once everything up to `lsn` is written to the file
    /// (`then(true)`), or the buffer fails first (`then(false)`): here, if
    /// it is already, or by whoever writes it out, which a drain of the
    /// buffer now, or a holder of the drain lock releasing it (see the
    /// module comment; with `manual_wal_flush` because of the `want`
    /// here), always does. Never blocks: how an async writer
    /// hands its group's completion over instead of waiting for its task
    /// to be polled again. `then` runs with no engine lock held but,
    /// maybe, the drain lock.
    pub fn when_written(&self, lsn: u64, then: WrittenThen) {
        self.want(lsn);
        let _ = self.drain_if_idle(); // a failure is `then(false)`, below
        let reached = |wal: &Self| wal.drain_line.written.load(Ordering::Acquire) >= lsn;
        if reached(self) {
            return then(true);
        }
        let once = Arc::new(OnWritten(parking_lot::Mutex::new(Some(then))));
        {
            let mut tasks = self.tasks.lock();
            let entry = tasks.on_written.entry(lsn).or_default();
            if entry.is_empty() {
                self.progress_waiters.fetch_add(1, Ordering::SeqCst);
                self.task_positions.fetch_add(1, Ordering::SeqCst);
            }
            entry.push(Arc::clone(&once));
        }
        // Registered before the re-check, as in `poll_wait`: either the
        // drain that reached `lsn` sees it, or this look sees the drain.
        std::sync::atomic::fence(Ordering::SeqCst);
        if reached(self) {
            once.run(true);
        } else if self.failed.load(Ordering::SeqCst) {
            once.run(false);
        }
    }

    /// Wake the tasks whose positions were reached (every one when `all`,
    /// or when the buffer failed: they then look at their stop condition),
    /// and run what was handed over to the positions reached (or all of
    /// it, when the buffer failed).
    fn wake_tasks(&self, all: bool) {
        let (ready, then) = {
            let mut tasks = self.tasks.lock();
            let before = tasks.len();
            let failed = self.failed.load(Ordering::Acquire);
            let ready = if all || failed {
                let written = std::mem::take(&mut tasks.written);
                let synced = std::mem::take(&mut tasks.synced);
                written
                    .into_values()
                    .chain(synced.into_values())
                    .flatten()
                    .collect()
            } else {
                let mut ready = take_reached(&mut tasks.written, self.written());
                ready.extend(take_reached(&mut tasks.synced, self.synced()));
                ready
            };
            let written = self.written();
            let then: Vec<(bool, Arc<OnWritten>)> = if failed {
                let all = std::mem::take(&mut tasks.on_written);
                // Those reached before the failure are written all the same.
                all.into_iter()
                    .flat_map(|(lsn, v)| v.into_iter().map(move |o| (lsn <= written, o)))
                    .collect()
            } else {
                take_reached(&mut tasks.on_written, written)
                    .into_iter()
                    .map(|o| (true, o))
                    .collect()
            };
            let removed = before - tasks.len();
            if removed > 0 {
                self.progress_waiters.fetch_sub(removed, Ordering::SeqCst);
                self.task_positions.fetch_sub(removed, Ordering::SeqCst);
            }
            (ready, then)
        };
        for (written, once) in then {
            once.run(written);
        }
        ready.into_iter().for_each(Waker::wake);
    }

    /// Switch to a new WAL file: write everything to the old one, then
    /// frame from offset 0 of the new file. The old file is synced in the
    /// background by the syncer thread (`background`), or here; either
    /// way before any sync of the new file completes, so WALs become
    /// durable in order. Returns the log position where the new file
    /// begins (its first record, the log start, is at it). REQUIRES: no
    /// concurrent `push` (the caller leads the write queue).
    pub fn switch_file(
        &self,
        file: Box<dyn WritableFile>,
        number: u64,
        background: bool,
    ) -> io::Result<u64> {
        self.switch_file_locked(self.lock_drain(), file, number, background)
    }

    /// [`switch_file`](Self::switch_file) with the drain lock `d` taken
    /// already (an async leader takes it with
    /// [`poll_lock_drain`](Self::poll_lock_drain)); lets it go.
    pub(super) fn switch_file_locked(
        &self,
        mut d: DrainGuard<'_>,
        file: Box<dyn WritableFile>,
        number: u64,
        background: bool,
    ) -> io::Result<u64> {
        if !background {
            self.sync_locked(&mut d)?;
        }
        self.drain_locked(&mut d)?;
        if background {
            self.syncer.set_warm_up(file.warm_up());
        }
        let mut p = self.producer.lock();
        debug_assert!(p.buf.is_empty());
        let (old_number, old_len) = (d.number, p.file_offset);
        p.file_offset = file.len();
        p.file_base_lsn = p.pushed;
        let base_lsn = p.file_base_lsn;
        p.file_base_offset = p.file_offset;
        p.stated = None;
        // The new WAL's first record names the old one and its length, so
        // recovery can tell whether the old one lost its tail.
        let start = crate::wal_record::encode_log_start(old_number, old_len);
        let offset = p.file_offset;
        p.file_offset = strata_wal::encode_record(&mut p.buf, offset, &start);
        p.pushed += p.buf.len() as u64;
        let old = std::mem::replace(&mut d.file, file);
        d.number = number;
        self.number.store(number, Ordering::Release);
        drop(p);
        self.files_left.fetch_add(1, Ordering::AcqRel);
        if background {
            // Listed (and counted) before the drain lock is released: a
            // sync takes that lock, so none can find the old WAL neither
            // current nor retired, sync only the new one, and publish a
            // synced position covering the old WAL's unsynced tail.
            let mut retired = self.retired.lock();
            self.retired_unsynced.fetch_add(1, Ordering::AcqRel);
            retired.push((old_number, old));
        } else {
            // Synced above, and nothing was appended since.
            self.files_left_synced.fetch_add(1, Ordering::AcqRel);
            drop(old);
        }
        drop(d);
        if background {
            self.syncer.wake();
        }
        Ok(base_lsn)
    }

    /// Make everything pushed durable, then seal the log: a sync point
    /// at the next block start stating all of it synced, itself synced,
    /// so any later damage to the file reads as corruption, not as a
    /// crash's torn tail (a clean close does this last). Nothing may be
    /// pushed after it.
    pub fn seal(&self) -> io::Result<()> {
        let mut d = self.lock_drain();
        self.sync_locked(&mut d)?;
        {
            let mut p = self.producer.lock();
            debug_assert!(p.buf.is_empty());
            let synced = self.synced.load(Ordering::Acquire);
            if synced < p.file_base_lsn || p.file_offset == p.file_base_offset {
                return Ok(()); // nothing written to this file: nothing to prove
            }
            let synced_len = p.file_base_offset + (synced - p.file_base_lsn);
            let offset = p.file_offset;
            p.file_offset = strata_wal::encode_seal(&mut p.buf, offset, synced_len);
            p.pushed += p.buf.len() as u64;
            p.stated = Some(synced_len);
        }
        self.sync_locked(&mut d)
    }

    /// Start over in `file` (WAL `number`), from a clean state: the
    /// failure, if any, is cleared, records still buffered are dropped,
    /// and `written` and `synced` cover every record pushed so far, so
    /// every waiter returns. The current file and the retired ones are
    /// abandoned unsynced and handed back, for the caller to close and
    /// delete. A resume calls this once the memtables holding every
    /// record pushed so far are in synced tables: no sync is claimed that
    /// was not made (the records are durable there, not in these WALs).
    /// REQUIRES: that, and no concurrent `push` (the caller leads the
    /// write queue).
    pub fn restart(&self, file: Box<dyn WritableFile>, number: u64) -> Vec<Box<dyn WritableFile>> {
        let mut d = self.lock_drain();
        let mut abandoned = Vec::new();
        {
            // A retired file another thread is syncing is off the list:
            // wait for that sync to end, in success or failure.
            let mut retired = self.retired.lock();
            while self.retired_unsynced.load(Ordering::Acquire) > retired.len() {
                self.retired_synced.wait_for(&mut retired, WAIT_SLICE);
            }
            abandoned.extend(retired.drain(..).map(|(_, f)| f));
            self.retired_unsynced.store(0, Ordering::Release);
        }
        let mut failure = self.failure.lock();
        let mut p = self.producer.lock();
        p.buf.clear();
        p.file_offset = file.len();
        let end = p.pushed;
        // The new file is the first live WAL (the resume's edit sets the
        // log number to it), like the one an open starts: no log start,
        // and no earlier WAL for a sync point to prove synced.
        p.file_base_lsn = end;
        p.file_base_offset = p.file_offset;
        p.stated = Some(p.file_offset);
        d.spare.clear();
        self.syncer.set_warm_up(file.warm_up());
        abandoned.push(std::mem::replace(&mut d.file, file));
        d.number = number;
        self.number.store(number, Ordering::Release);
        // Every file left behind counts as synced from now on: nothing
        // durable depends on it.
        let left = self.files_left.fetch_add(1, Ordering::AcqRel) + 1;
        self.files_left_synced.store(left, Ordering::Release);
        self.drain_line.written.fetch_max(end, Ordering::AcqRel);
        self.synced.fetch_max(end, Ordering::AcqRel);
        *failure = None;
        self.failed.store(false, Ordering::Release);
        drop(p);
        drop(failure);
        drop(d);
        self.notify_progress();
        self.syncer.wake();
        abandoned
    }

    /// The current WAL file's number, and how much of it is synced: its
    /// bytes up to the returned length if a sync covered any of it (every
    /// older WAL is then synced in full), `None` if none did.
    pub fn synced_in_current(&self) -> (u64, Option<u64>) {
        let p = self.producer.lock();
        // Under the producer lock: a switch changes both together.
        let number = self.number.load(Ordering::Acquire);
        let synced = self.synced.load(Ordering::Acquire);
        let len =
            (synced >= p.file_base_lsn).then(|| p.file_base_offset + (synced - p.file_base_lsn));
        (number, len)
    }

    /// The number of the WAL file records currently go to.
    pub fn wal_number(&self) -> u64 {
        self.number.load(Ordering::Acquire)
    }

    pub fn written(&self) -> u64 {
        self.drain_line.written.load(Ordering::Acquire)
    }

    /// fsyncs done so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// The log position just past the last record pushed.
    pub fn pushed(&self) -> u64 {
        self.producer.lock().pushed
    }

    /// Whether an append or a sync failed (until a restart).
    pub(super) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Retired files not yet synced.
    pub(super) fn retired_unsynced(&self) -> usize {
        self.retired_unsynced.load(Ordering::Acquire)
    }

    /// The warm-up of the file written now.
    pub(super) fn current_warm_up(&self) -> Option<crate::fs::WarmUp> {
        self.lock_drain().file.warm_up()
    }

    fn fail(&self, e: &io::Error) {
        self.failure
            .lock()
            .get_or_insert_with(|| (e.kind(), e.to_string()));
        self.failed.store(true, Ordering::Release);
        self.notify_progress();
    }

    /// Fail the buffer for `reason` (the syncer thread panicked): every
    /// wait on a position and every later write or sync fails.
    pub fn poison(&self, reason: &str) {
        self.fail(&io::Error::other(reason));
    }

    /// Wake the threads waiting for a position, so they look at their
    /// stop condition (a background error) now.
    pub fn wake_waiters(&self) {
        self.notify_progress();
        self.wake_tasks(true);
    }

    /// Why the buffer stopped, if an append or sync failed.
    pub fn failure(&self) -> Option<io::Error> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        let failure = self.failure.lock();
        failure
            .as_ref()
            .map(|(kind, message)| io::Error::new(*kind, message.clone()))
    }

    /// Run `record` on why the buffer stopped, if it has, under the lock
    /// [`restart`](Self::restart) clears the failure under: a failure a
    /// resume has cleared is never recorded after it.
    pub fn record_failure<R>(&self, record: impl FnOnce(io::Error) -> R) -> Option<R> {
        let failure = self.failure.lock();
        let (kind, message) = failure.as_ref()?;
        Some(record(io::Error::new(*kind, message.clone())))
    }

    fn check_failed(&self) -> io::Result<()> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let (kind, reason) = match self.failure.lock().as_ref() {
            Some((kind, message)) => (*kind, message.clone()),
            None => (io::ErrorKind::Other, "unknown".to_owned()),
        };
        Err(io::Error::new(
            kind,
            format!("an earlier WAL write failed: {reason}"),
        ))
    }

    fn notify_progress(&self) {
        // Pairs with the fence in `wait_with`: either the waiter sees the new
        // position, or we see the waiter.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.progress_waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        {
            let _g = self.progress_lock.lock();
            self.progress.notify_all();
        }
        if self.task_positions.load(Ordering::SeqCst) > 0 {
            self.wake_tasks(false);
        }
    }

    #[cfg(test)]
    pub(crate) fn drain_lock_for_test(&self) -> crate::lock_order::MutexGuard<'_, Drain> {
        self.drain.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FileSystem, MemFileSystem};
    use std::path::Path;
    use std::sync::Arc;

    fn buffer(capacity: usize) -> (MemFileSystem, Arc<WalBuffer>) {
        let fs = MemFileSystem::new();
        fs.create_dir_all(Path::new("/w")).unwrap();
        let file = fs.create(Path::new("/w/1.log")).unwrap();
        (fs, Arc::new(WalBuffer::new(capacity, file, 1)))
    }

    fn read_back(fs: &MemFileSystem) -> Vec<Vec<u8>> {
        let data = fs.read(Path::new("/w/1.log")).unwrap();
        let mut r = strata_wal::Reader::new(&data, strata_wal::RecoveryMode::AbsoluteConsistency);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push(rec.data.to_vec());
        }
        out
    }

    /// A waker that counts its wakes.
    struct CountWakes(AtomicUsize);

    impl std::task::Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A background error recorded (and its waiters woken) between a
    /// task's first look at its stop condition and its registration:
    /// the poll sees it, as it sees one recorded after (which wakes it).
    #[test]
    fn a_task_registering_after_an_error_was_recorded_sees_it() {
        let (_fs, wal) = buffer(1 << 16);
        let lsn = wal.push(b"record").unwrap();
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let looks = AtomicUsize::new(0);
        let stop = || {
            if looks.fetch_add(1, Ordering::SeqCst) == 0 {
                // Recorded just after this look: its wake finds no task.
                wal.wake_waiters();
                return None;
            }
            Some(crate::Error::Closed)
        };
        // No syncer thread here: a synced position is never reached.
        let polled = wal.poll_wait(lsn, Durability::Synced, &waker, stop);
        assert!(
            matches!(polled, Poll::Ready(Err(crate::Error::Closed)))
                || wakes.0.load(Ordering::SeqCst) > 0,
            "the task waits, unwoken, though an error was recorded: {polled:?}"
        );
    }

    /// Waits (`wait_with`, Written, not inline) for a record that the
    /// `stop` closure's fifth call writes out, with `backoff`; returns the
    /// parks it made.
    fn parks_of_a_written_wait(wal: &WalBuffer, backoff: Backoff) -> usize {
        let lsn = wal.push(b"record").unwrap();
        let looks = AtomicUsize::new(0);
        let stop = || {
            if looks.fetch_add(1, Ordering::SeqCst) == 4 {
                wal.drain_all().unwrap();
            }
            None
        };
        let before = wal.parks.load(Ordering::Relaxed);
        wal.wait_with(lsn, Durability::Written, false, backoff, stop)
            .unwrap();
        assert_eq!(looks.load(Ordering::SeqCst), 5, "written on the fifth look");
        wal.parks.load(Ordering::Relaxed) - before
    }

    #[test]
    fn a_written_wait_spins_through_a_short_copy_without_parking() {
        let (_fs, wal) = buffer(1 << 16);
        assert_eq!(parks_of_a_written_wait(&wal, Backoff::spin_only(512)), 0);
        // Parking at once, each of the four looks before the copy sleeps.
        assert_eq!(parks_of_a_written_wait(&wal, Backoff::park_at_once()), 4);
    }

    #[test]
    fn a_written_wait_parks_at_once_while_the_drain_lock_holder_syncs() {
        let (_fs, wal) = buffer(1 << 16);
        {
            let _syncing = Syncing::start(&wal.syncing);
            assert_eq!(parks_of_a_written_wait(&wal, Backoff::spin_only(512)), 4);
        }
        assert!(!wal.syncing.load(Ordering::Relaxed), "lowered when dropped");
        assert_eq!(parks_of_a_written_wait(&wal, Backoff::spin_only(512)), 0);
    }

    /// A waiter does not spin while the drain lock's holder took it on
    /// the waiter's own CPU (that holder is not running), and spins as
    /// before while the holder's CPU is another one.
    #[test]
    fn a_written_wait_parks_at_once_while_the_drain_lock_holder_shares_its_cpu() {
        let (_fs, wal) = buffer(1 << 16);
        // Nobody drains: the wait spins.
        assert_eq!(wal.drain_line.drain_cpu.load(Ordering::Relaxed), NO_CPU);
        assert_eq!(parks_of_a_written_wait(&wal, Backoff::spin_only(512)), 0);
        assert_eq!(
            wal.drain_line.drain_cpu.load(Ordering::Relaxed),
            NO_CPU,
            "cleared after a drain"
        );
        // Each look, this thread's CPU, as a holder draining here would
        // have stored it. A look whose thread moves to another CPU
        // between the store and the check spins; a wait that never parks
        // is what the rule would fail as.
        let here = || {
            if let Some(cpu) = current_cpu() {
                wal.drain_line.drain_cpu.store(cpu, Ordering::Relaxed);
            }
        };
        let lsn = wal.push(b"record").unwrap();
        let looks = AtomicUsize::new(0);
        let stop = || {
            if looks.fetch_add(1, Ordering::SeqCst) == 4 {
                wal.drain_all().unwrap();
            }
            here();
            None
        };
        let before = wal.parks.load(Ordering::Relaxed);
        wal.wait_with(
            lsn,
            Durability::Written,
            false,
            Backoff::spin_only(512),
            stop,
        )
        .unwrap();
        let parks = wal.parks.load(Ordering::Relaxed) - before;
        if current_cpu().is_some() {
            assert!((1..=4).contains(&parks), "{parks} parks");
        } else {
            assert_eq!(parks, 0, "no CPU is known: the wait spins");
        }
    }

    /// A drain names its CPU while it runs: work handed over to the drain
    /// (it runs inside it) sees a CPU; afterwards none is named.
    #[test]
    fn a_drain_names_its_cpu_while_it_runs() {
        let (_fs, wal) = buffer(1 << 16);
        let wal = Arc::new(wal);
        let lsn = wal.push(b"record").unwrap();
        let seen = Arc::new(AtomicU32::new(NO_CPU));
        {
            // Held: the hand-over cannot write the record out itself.
            let _held = wal.drain_lock_for_test();
            let (w, s) = (Arc::clone(&wal), Arc::clone(&seen));
            wal.when_written(
                lsn,
                Box::new(move |_| {
                    s.store(
                        w.drain_line.drain_cpu.load(Ordering::Relaxed),
                        Ordering::Relaxed,
                    )
                }),
            );
        }
        wal.drain_all().unwrap();
        let seen = seen.load(Ordering::Relaxed);
        if current_cpu().is_some() {
            assert_ne!(seen, NO_CPU, "the drain named no CPU");
        } else {
            assert_eq!(seen, NO_CPU);
        }
        assert_eq!(wal.drain_line.drain_cpu.load(Ordering::Relaxed), NO_CPU);
    }

    /// A task polled again while it waits is woken once, not once per
    /// poll: its waker is kept once.
    #[test]
    fn a_task_polled_twice_is_woken_once() {
        let (_fs, wal) = buffer(1 << 16);
        let lsn = wal.push(b"record").unwrap();
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        {
            // Held: the polls cannot write the record out themselves.
            let _held = wal.drain_lock_for_test();
            for _ in 0..3 {
                let polled = wal.poll_wait(lsn, Durability::Written, &waker, || None);
                assert!(polled.is_pending());
            }
        }
        wal.drain_all().unwrap();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(wal
            .poll_wait(lsn, Durability::Written, &waker, || None)
            .is_ready());
    }

    /// Work handed to whoever writes a position out runs once: with
    /// `true` by the drain that writes it, with `false` when the buffer
    /// fails first; neither while the position is only pushed.
    #[test]
    fn work_handed_over_runs_once_when_written_or_failed() {
        let (fs, wal) = buffer(1 << 16);
        let runs = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let then = |runs: &Arc<parking_lot::Mutex<Vec<bool>>>| -> WrittenThen {
            let runs = Arc::clone(runs);
            Box::new(move |written| runs.lock().push(written))
        };
        let first = wal.push(b"first").unwrap();
        {
            // Held: the hand-over cannot write the record out itself.
            let _held = wal.drain_lock_for_test();
            wal.when_written(first, then(&runs));
            assert!(runs.lock().is_empty(), "ran before its record was written");
        }
        wal.drain_all().unwrap();
        assert_eq!(*runs.lock(), [true]);
        wal.drain_all().unwrap();
        assert_eq!(*runs.lock(), [true], "ran twice");
        let second = wal.push(b"second").unwrap();
        {
            let _held = wal.drain_lock_for_test();
            wal.when_written(second, then(&runs));
        }
        fs.add_fault(crate::fs::FaultPlan::always(crate::fs::FsOp::Append));
        assert!(wal.drain_all().is_err());
        assert_eq!(*runs.lock(), [true, false]);
    }

    /// A task pushing into a full buffer while another holds the drain
    /// lock waits (pushing nothing: no record dropped, none reordered),
    /// and is woken by that holder's release, which writes the buffer
    /// out; then its record goes in.
    #[test]
    fn a_task_at_a_full_buffer_is_woken_when_the_holder_writes_it_out() {
        let (fs, wal) = buffer(256);
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let held = wal.lock_drain();
        let first = wal.push(&[1u8; 200]).unwrap();
        for _ in 0..2 {
            let polled = wal.poll_push(&[2u8; 200], &waker, || None);
            assert!(polled.is_pending(), "pushed into a full buffer");
        }
        assert_eq!(wal.pushed(), first, "nothing pushed while full");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        drop(held);
        assert_eq!(wal.written(), first, "the release wrote the buffer out");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken once");
        let second = match wal.poll_push(&[2u8; 200], &waker, || None) {
            Poll::Ready(Ok(end)) => end,
            other => panic!("room was made: {other:?}"),
        };
        assert!(second > first);
        wal.drain_all().unwrap();
        assert_eq!(read_back(&fs), vec![vec![1u8; 200], vec![2u8; 200]]);
    }

    /// With `manual_wal_flush`, a holder of the drain lock passing by (a
    /// warm-up, a look at the file) leaves the records in the buffer for
    /// the flush the user asks for; before, its release wrote them out,
    /// and a `flush_wal` meant to fail on them found nothing to write.
    #[test]
    fn a_manual_flush_buffer_is_not_written_out_by_a_passing_holder() {
        let (fs, wal) = buffer(1 << 16);
        let mut wal = Arc::into_inner(wal).unwrap();
        wal.manual_flush = true;
        let first = wal.push(b"first").unwrap();
        drop(wal.lock_drain());
        assert_eq!(wal.written(), 0, "a passing holder wrote the records");
        wal.drain_all().unwrap();
        assert_eq!(wal.written(), first);
        assert_eq!(read_back(&fs), vec![b"first".to_vec()]);
    }

    /// With `manual_wal_flush`, a task that needs its record written (a
    /// full buffer) is still served by the holder's release: it said so
    /// before it tried the lock.
    #[test]
    fn a_manual_flush_task_at_a_full_buffer_is_woken_by_the_holders_release() {
        let (fs, wal) = buffer(256);
        let mut wal = Arc::into_inner(wal).unwrap();
        wal.manual_flush = true;
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let held = wal.lock_drain();
        let first = wal.push(&[1u8; 200]).unwrap();
        assert!(wal.poll_push(&[2u8; 200], &waker, || None).is_pending());
        drop(held);
        assert_eq!(wal.written(), first, "the release wrote the buffer out");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken once");
        assert!(matches!(
            wal.poll_push(&[2u8; 200], &waker, || None),
            Poll::Ready(Ok(_))
        ));
        wal.drain_all().unwrap();
        assert_eq!(read_back(&fs), vec![vec![1u8; 200], vec![2u8; 200]]);
    }

    /// A task that finds the drain lock held is woken when it is let go,
    /// by any holder: a guard, or a drain that took it with `try_lock`.
    #[test]
    fn a_task_waiting_for_the_drain_lock_is_woken_at_its_release() {
        let (_fs, wal) = buffer(4096);
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let held = wal.lock_drain();
        assert!(wal.poll_lock_drain(&waker).is_pending());
        assert!(wal.poll_lock_drain(&waker).is_pending());
        drop(held);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken once");
        let Poll::Ready(guard) = wal.poll_lock_drain(&waker) else {
            panic!("the lock is free");
        };
        drop(guard);
        let raw = wal.drain_lock_for_test();
        assert!(wal.poll_lock_drain(&waker).is_pending());
        drop(raw);
        // A raw holder in the engine is a drain: its release announces.
        wal.push(b"record").unwrap();
        wal.drain_if_idle().unwrap();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn records_come_out_in_push_order_with_positions_advancing() {
        let (fs, wal) = buffer(1 << 16);
        let mut last = 0;
        for i in 0..100u32 {
            let lsn = wal.push(&i.to_le_bytes().repeat(i as usize)).unwrap();
            assert!(lsn > last);
            last = lsn;
        }
        assert_eq!(wal.written(), 0);
        wal.drain_if_idle().unwrap();
        assert_eq!(wal.written(), last);
        wal.sync_all().unwrap();
        assert_eq!(wal.synced(), last);
        let recs = read_back(&fs);
        assert_eq!(recs.len(), 100);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r, &(i as u32).to_le_bytes().repeat(i));
        }
    }

    #[test]
    fn a_full_buffer_blocks_its_pusher_until_drained_and_drops_nothing() {
        let (fs, wal) = buffer(256);
        // Hold the drain lock: a push that finds the buffer full must wait.
        let guard = wal.drain_lock_for_test();
        wal.push(&[1u8; 200]).unwrap();
        let pusher = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || wal.push(&[2u8; 200]).unwrap())
        };
        // The pusher cannot finish: the buffer is full and we hold the lock.
        assert_eq!(wal.pushed(), 200 + 7);
        drop(guard);
        let lsn = pusher.join().unwrap();
        wal.drain_all().unwrap();
        assert_eq!(wal.written(), lsn);
        assert_eq!(read_back(&fs), vec![vec![1u8; 200], vec![2u8; 200]]);
    }

    #[test]
    fn concurrent_waiters_see_their_records_written() {
        let (fs, wal) = buffer(4096);
        let wal2 = Arc::clone(&wal);
        let syncer = std::thread::spawn(move || wal2.run_syncer(&|| {}));
        let lsns: Vec<u64> = (0..50u8).map(|i| wal.push(&[i; 100]).unwrap()).collect();
        let waiters: Vec<_> = lsns
            .iter()
            .enumerate()
            .map(|(i, &lsn)| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || {
                    let d = if i % 3 == 0 {
                        Durability::Synced
                    } else {
                        Durability::Written
                    };
                    wal.wait(lsn, d, true, || None).unwrap();
                })
            })
            .collect();
        for w in waiters {
            w.join().unwrap();
        }
        wal.stop_syncer();
        syncer.join().unwrap();
        assert_eq!(read_back(&fs).len(), 50);
    }

    /// With no syncer thread running, a retired WAL stays unsynced until
    /// a sync of the current one, which must sync it first.
    #[test]
    fn syncing_the_new_wal_syncs_the_retired_one_first() {
        let (fs, wal) = buffer(1 << 16);
        wal.push(b"in the old log").unwrap();
        let next = fs.create(Path::new("/w/2.log")).unwrap();
        fs.sync_dir(Path::new("/w")).unwrap();
        wal.switch_file(next, 2, true).unwrap();
        wal.push(b"in the new log").unwrap();
        wal.sync_all().unwrap();
        fs.power_loss(crate::fs::UnsyncedData::Drop);
        assert_eq!(read_back(&fs), vec![b"in the old log".to_vec()]);
        let data = fs.read(Path::new("/w/2.log")).unwrap();
        assert!(!data.is_empty(), "the new log lost a synced record");
    }

    /// A retired WAL forgotten as obsolete (its records are in synced
    /// tables) is never synced: a sync of the current one skips it, and
    /// counts it synced (the debug check of WAL order holds).
    #[test]
    fn a_forgotten_retired_wal_is_never_synced() {
        let (fs, wal) = buffer(1 << 16);
        wal.push(b"in the old log").unwrap();
        let next = fs.create(Path::new("/w/2.log")).unwrap();
        fs.sync_dir(Path::new("/w")).unwrap();
        wal.switch_file(next, 2, true).unwrap();
        wal.forget_retired_below(2);
        assert_eq!(wal.retired_unsynced(), 0);
        wal.push(b"in the new log").unwrap();
        wal.sync_all().unwrap();
        fs.power_loss(crate::fs::UnsyncedData::Drop);
        assert_eq!(
            read_back(&fs),
            Vec::<Vec<u8>>::new(),
            "the old log was synced"
        );
        let data = fs.read(Path::new("/w/2.log")).unwrap();
        assert!(!data.is_empty(), "the new log lost a synced record");
    }

    /// A file whose `sync` says it started, then waits to be let go.
    struct HeldSync {
        file: Box<dyn WritableFile>,
        started: std::sync::mpsc::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    }

    impl WritableFile for HeldSync {
        fn append(&mut self, data: &[u8]) -> io::Result<()> {
            self.file.append(data)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.file.flush()
        }
        fn sync(&mut self) -> io::Result<()> {
            let _ = self.started.send(());
            let _ = self.release.recv();
            self.file.sync()
        }
        fn len(&self) -> u64 {
            self.file.len()
        }
    }

    /// What a flush syncs (`sync_closed`): the WALs before the current
    /// one, durable afterwards, and the synced position up to the current
    /// one's start; the current one untouched. Writers are not held up
    /// meanwhile: while the retired WAL's fsync is in progress, a record
    /// pushed to the current one is written out by its own writer (the
    /// drain lock is free).
    #[test]
    fn syncing_the_closed_wals_leaves_the_current_one_to_its_writers() {
        let (fs, wal) = buffer(1 << 16);
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        // The first WAL, `buffer`'s, is replaced by one whose sync we hold.
        let first = HeldSync {
            file: fs.create(Path::new("/w/2.log")).unwrap(),
            started: started_tx,
            release: release_rx,
        };
        wal.switch_file(Box::new(first), 2, true).unwrap();
        let old_end = wal.push(b"in the old log").unwrap();
        let next = fs.create(Path::new("/w/3.log")).unwrap();
        fs.sync_dir(Path::new("/w")).unwrap();
        wal.switch_file(next, 3, true).unwrap();
        let sync = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || wal.sync_closed())
        };
        started.recv().unwrap();
        // The old WAL's fsync is under way: a writer of the new one is
        // not held up by it.
        let lsn = wal.push(b"in the new log").unwrap();
        wal.drain_if_idle().unwrap();
        assert!(wal.written() >= lsn, "the writer waited for the fsync");
        release.send(()).unwrap();
        sync.join().unwrap().unwrap();
        assert_eq!(wal.synced(), old_end, "the old WAL, nothing of the new");
        // The first WAL (`buffer`'s) was retired and synced too.
        fs.power_loss(crate::fs::UnsyncedData::Drop);
        let old = fs.read(Path::new("/w/2.log")).unwrap();
        let mut r = strata_wal::Reader::new(&old, strata_wal::RecoveryMode::AbsoluteConsistency);
        let mut records = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            records.push(rec.data.to_vec());
        }
        assert_eq!(
            records.last().map(Vec::as_slice),
            Some(&b"in the old log"[..])
        );
        let new = fs.read(Path::new("/w/3.log")).unwrap();
        assert!(
            new.is_empty(),
            "the current WAL was synced: {} bytes",
            new.len()
        );
    }

    /// A sync of the current WAL (an inline writer's, `sync_all`'s) syncs
    /// the retired WAL before it takes the drain lock: while that fsync is
    /// in progress, a record pushed to the current WAL is written out by
    /// its own writer. The sync still covers both WALs, the retired first.
    #[test]
    fn a_sync_of_the_current_wal_does_not_hold_writers_through_the_retired_ones_fsync() {
        type Sync = fn(&WalBuffer, u64) -> io::Result<()>;
        let syncs: [(&str, Sync); 2] = [
            ("sync_all", |wal, _| wal.sync_all()),
            ("an inline wait", |wal, lsn| {
                wal.wait(lsn, Durability::Synced, true, || None)
                    .map_err(|e| io::Error::other(e.to_string()))
            }),
        ];
        for (name, sync) in syncs {
            let (fs, wal) = buffer(1 << 16);
            let (started_tx, started) = std::sync::mpsc::channel();
            let (release, release_rx) = std::sync::mpsc::channel();
            let held = HeldSync {
                file: fs.create(Path::new("/w/2.log")).unwrap(),
                started: started_tx,
                release: release_rx,
            };
            wal.switch_file(Box::new(held), 2, true).unwrap();
            wal.push(b"in the old log").unwrap();
            let next = fs.create(Path::new("/w/3.log")).unwrap();
            fs.sync_dir(Path::new("/w")).unwrap();
            wal.switch_file(next, 3, true).unwrap();
            let first_new = wal.push(b"in the new log").unwrap();
            let syncer = {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || sync(&wal, first_new))
            };
            started.recv().unwrap();
            let lsn = wal.push(b"while the old log syncs").unwrap();
            wal.drain_if_idle().unwrap();
            assert!(
                wal.written() >= lsn,
                "{name}: the writer waited for the fsync"
            );
            release.send(()).unwrap();
            syncer.join().unwrap().unwrap();
            assert!(wal.synced() >= first_new, "{name}");
            fs.power_loss(crate::fs::UnsyncedData::Drop);
            let old = fs.read(Path::new("/w/2.log")).unwrap();
            let new = fs.read(Path::new("/w/3.log")).unwrap();
            assert!(!old.is_empty() && !new.is_empty(), "{name}: a WAL lost");
        }
    }

    /// A resume restarts a failed buffer in a new file: the failure is
    /// gone, every record pushed counts as written and synced (the resume
    /// made them durable elsewhere), and the syncer thread, which met the
    /// failure, serves syncs again (it used to exit on a failure).
    #[test]
    fn a_restart_clears_the_failure_and_the_syncer_serves_syncs_again() {
        let (fs, wal) = buffer(4096);
        let syncer = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || wal.run_syncer(&|| {}))
        };
        fs.add_fault(crate::fs::FaultPlan::always(crate::fs::FsOp::Append));
        let lost = wal.push(b"lost with the old file").unwrap();
        let failed = {
            let wal2 = Arc::clone(&wal);
            wal.wait(lost, Durability::Synced, false, move || {
                wal2.failure()
                    .map(|e| crate::Error::io("sync", "/w/1.log", e))
            })
        };
        assert!(failed.is_err(), "the syncer's append did not fail");
        assert!(wal.failure().is_some());
        fs.clear_faults();
        let next = fs.create(Path::new("/w/2.log")).unwrap();
        let abandoned = wal.restart(next, 2);
        assert_eq!(abandoned.len(), 1, "the failed file is handed back");
        assert!(wal.failure().is_none());
        assert_eq!((wal.written(), wal.synced()), (lost, lost));
        assert_eq!(wal.wal_number(), 2);
        let after = wal.push(b"after the restart").unwrap();
        let (done, synced) = std::sync::mpsc::channel();
        let waiter = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let r = wal.wait(after, Durability::Synced, false, || None);
                done.send(r.is_ok()).unwrap();
            })
        };
        // A bound on a hang, not a synchronisation: only the syncer
        // thread serves this sync.
        let served = synced.recv_timeout(std::time::Duration::from_secs(30));
        wal.stop_syncer();
        syncer.join().unwrap();
        assert_eq!(
            served,
            Ok(true),
            "no syncer served the sync after the restart"
        );
        waiter.join().unwrap();
        let data = fs.read(Path::new("/w/2.log")).unwrap();
        let mut r = strata_wal::Reader::new(&data, strata_wal::RecoveryMode::AbsoluteConsistency);
        assert_eq!(
            r.next_record().unwrap().map(|rec| rec.data.to_vec()),
            Some(b"after the restart".to_vec())
        );
    }

    #[test]
    fn a_failed_write_is_reported_and_later_writes_refused() {
        let (fs, wal) = buffer(4096);
        fs.add_fault(crate::fs::FaultPlan::always(crate::fs::FsOp::Append));
        let lsn = wal.push(b"doomed").unwrap();
        assert!(wal.drain_all().is_err());
        assert!(wal.written() < lsn);
        fs.clear_faults();
        assert!(
            wal.drain_all().is_err(),
            "the wal kept writing after a failure"
        );
    }
}
