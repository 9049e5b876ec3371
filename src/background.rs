//! Background work: the threads that flush frozen memtables, compact and
//! sync the WAL, the signalling between them and those who wait for them,
//! and what happens when one panics (a background error, never a hang).
//!
//! Background work has one shape: a job is marked running by a guard
//! ([`Flushing`], [`CompactionRunning`]) that unmarks it and wakes the
//! waiters when dropped, however the job ends; each job is one step of
//! progress (a flush's comes at its install if it gets that far,
//! [`Background::announce_flush_installed`]); whoever waits for
//! background progress waits through [`Background::wait_for`].

use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::hook::HookPoint;
use crate::keyspace::KeyspaceState;
use crate::lock_order::{Condvar, Level, Mutex};
use crate::memtable::MemTable;
use crate::panics::catch_panic;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::thread::JoinHandle;
use std::time::Instant;

/// Shared state of the background threads. Anyone who changes what the
/// background threads look at (a new frozen memtable, shutdown) calls
/// [`Background::notify_all`] afterwards, which takes `state`'s lock so a
/// thread that checked and is about to wait cannot miss the change.
pub(crate) struct Background {
    pub state: Mutex<BgState>,
    /// Background threads wait here for work.
    pub work: Condvar,
    /// Writers and `flush()` wait here for background progress.
    pub done: Condvar,
    /// Compactions picked and not yet finished: changed only through
    /// [`CompactionRunning`].
    compactions_running: AtomicUsize,
}

#[derive(Default)]
pub(crate) struct BgState {
    pub shutting_down: bool,
    /// The keyspace a flush is running for, if one is (only one at a
    /// time: they install in order). The flush's job goes on after its
    /// memtable left the read view (the WALs it made obsolete are
    /// collected): `flush()` waits for it to end.
    pub flushing: Option<u32>,
    /// The running flush installed its table and announced that as
    /// progress ([`Background::announce_flush_installed`]): its end then
    /// wakes the waiters without counting as progress a second time.
    flush_installed_announced: bool,
    /// Bumped by every `notify_all`, a flush's install and a job's end
    /// (a flush's only if its install did not): a waiter that saw generation `g`
    /// before checking for work waits only while it is still `g`, so no
    /// change is missed between its check and its wait.
    pub generation: u64,
    /// Tasks waiting for background progress ([`Background::poll_for`]):
    /// woken, and forgotten, at the next change.
    tasks: Vec<Waker>,
}

impl Default for Background {
    fn default() -> Self {
        Background {
            state: Mutex::new(Level::BgState, BgState::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            compactions_running: AtomicUsize::new(0),
        }
    }
}

/// How a wait for background progress ended.
pub(crate) enum Waited<T> {
    /// The condition held: what it gave.
    Done(T),
    /// The deadline passed first.
    TimedOut,
}

impl Background {
    pub fn notify_all(&self) {
        let tasks = {
            let mut state = self.state.lock();
            state.generation += 1;
            self.work.notify_all();
            self.done.notify_all();
            std::mem::take(&mut state.tasks)
        };
        tasks.into_iter().for_each(Waker::wake);
    }

    /// A flush installed its table: its memtable left the read view, the
    /// progress a write stalled on the memtable limit waits for. Announced
    /// at the install, not when the flush's job ends: the job then still
    /// collects the WALs the install made obsolete (an unmap and an unlink
    /// of each: 20% of the flush thread's CPU samples in a 4 KiB
    /// overwrite), which a stalled write need not wait for. The job's end
    /// (`Flushing`) then wakes the waiters for it (`flush()`, a resume,
    /// `wait_for_compactions`) without bumping the generation again: one
    /// flush is one step of progress, so a delayed write's delay is not
    /// cut short twice by it. Called by the flush thread while it holds
    /// the job's `Flushing`, which alone reads the mark back (at its drop).
    pub fn announce_flush_installed(&self) {
        {
            let mut state = self.state.lock();
            debug_assert!(state.flushing.is_some(), "announced outside a flush job");
            state.flush_installed_announced = state.flushing.is_some();
        }
        self.notify_all();
    }

    /// Wake the background threads to look for work that is not
    /// progress for anyone waiting (a spare WAL wanted): no generation is
    /// bumped, so no delayed write takes it for progress.
    pub fn wake_workers(&self) {
        let _state = self.state.lock();
        self.work.notify_all();
    }

    /// Wake the tasks waiting for background progress to look again,
    /// without counting as progress (a spare WAL is ready): a task
    /// parked in a stall finds its generation unchanged and parks again.
    pub fn wake_tasks(&self) {
        let tasks = std::mem::take(&mut self.state.lock().tasks);
        tasks.into_iter().for_each(Waker::wake);
    }

    /// [`wait_for`](Self::wait_for) for a task, without a deadline: ready
    /// when `check` gives a result (or the threads are shutting down);
    /// otherwise `waker` is woken at the next change announced.
    pub fn poll_for<T>(
        &self,
        waker: &Waker,
        check: impl FnOnce(&BgState) -> Option<Result<T>>,
    ) -> Poll<Result<T>> {
        let mut st = self.state.lock();
        if st.shutting_down {
            return Poll::Ready(Err(Error::Closed));
        }
        if let Some(result) = check(&st) {
            return Poll::Ready(result);
        }
        if !st.tasks.iter().any(|t| t.will_wake(waker)) {
            st.tasks.push(waker.clone());
        }
        Poll::Pending
    }

    /// Wait for background progress until `check` is satisfied: it is
    /// called under the state lock at once and after every wake-up, and
    /// the wait ends when it returns `Some` (its result is returned).
    /// Fails with `Closed` once the background threads are shutting down
    /// (checked before `check`). With a `deadline`, returns `TimedOut`
    /// when it passes first. Wake-ups come from
    /// [`notify_all`](Self::notify_all), which whoever changes what a
    /// waiter looks at calls after the change; it takes this lock, so no
    /// change falls between a check and the wait.
    pub fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut(&BgState) -> Option<Result<T>>,
    ) -> Result<Waited<T>> {
        let mut st = self.state.lock();
        loop {
            if st.shutting_down {
                return Err(Error::Closed);
            }
            if let Some(result) = check(&st) {
                return result.map(Waited::Done);
            }
            match deadline {
                Some(d) => {
                    if self.done.wait_until(&mut st, d).timed_out() {
                        return Ok(Waited::TimedOut);
                    }
                }
                None => self.done.wait(&mut st),
            }
        }
    }

    /// Count a compaction as running until the guard is dropped.
    /// REQUIRES: the version set lock, held since the compaction was
    /// picked (so `wait_for_compactions` and a resume, which look under
    /// it, never miss one), after checking for a background error there.
    pub fn compaction_started(&self) -> CompactionRunning<'_> {
        self.compactions_running.fetch_add(1, Ordering::AcqRel);
        CompactionRunning(self)
    }

    /// Compactions running now.
    pub fn compactions_running(&self) -> usize {
        self.compactions_running.load(Ordering::Acquire)
    }
}

/// A compaction counted as running; uncounted and announced when dropped,
/// so a compaction that fails or panics cannot leave anyone waiting for
/// it.
pub(crate) struct CompactionRunning<'a>(&'a Background);

impl Drop for CompactionRunning<'_> {
    fn drop(&mut self) {
        self.0.compactions_running.fetch_sub(1, Ordering::AcqRel);
        self.0.notify_all();
    }
}

/// Start the background threads. If one fails to start, the ones already
/// running are stopped and joined before the error is returned, so no
/// thread is left holding the database (and its LOCK).
pub(crate) fn spawn(inner: &Arc<DbInner>) -> std::io::Result<Vec<JoinHandle<()>>> {
    if inner.options.inline_background_work {
        return Ok(Vec::new());
    }
    let mut threads = Vec::new();
    match spawn_all(inner, &mut threads) {
        Ok(()) => Ok(threads),
        Err(e) => {
            stop(inner, threads);
            Err(e)
        }
    }
}

fn spawn_all(inner: &Arc<DbInner>, threads: &mut Vec<JoinHandle<()>>) -> std::io::Result<()> {
    let db = Arc::clone(inner);
    spawn_one(inner, threads, "strata-flush".into(), move || {
        guarded(&db, "flush thread", || flush_loop(&db));
    })?;
    let db = Arc::clone(inner);
    spawn_one(inner, threads, "strata-wal-sync".into(), move || {
        let wal = &db.write_path.wal;
        let woke = || {
            let _ = db.hook(HookPoint::WalSyncer);
        };
        if let Err(panic) = catch_panic("WAL syncer thread", || wal.run_syncer(&woke)) {
            // The syncer may have died holding a retired WAL it was
            // syncing: no sync can be promised any more, so the WAL
            // buffer fails too, and with it every wait on a WAL position.
            // The panic is recorded first, so waiters report it rather
            // than the buffer's failure.
            let reason = panic.to_string();
            db.set_bg_error(panic);
            wal.poison(&reason);
        }
    })?;
    // Arena blocks for the next memtable, made resident ahead of it
    // (`memtable/block_pool.rs`).
    let db = Arc::clone(inner);
    spawn_one(inner, threads, "strata-memtable-blocks".into(), move || {
        // Its page faults would otherwise be a writer's: worth doing only
        // on a CPU no writer (or flush) wants.
        crate::cpu::run_only_when_idle();
        guarded(&db, "memtable block preparer", || {
            db.write_path.block_pool.run_preparer()
        });
    })?;
    // One background job is the flush thread; the rest compact.
    for i in 0..inner.options.max_background_jobs.saturating_sub(1).max(1) {
        let db = Arc::clone(inner);
        spawn_one(inner, threads, format!("strata-compact-{i}"), move || {
            guarded(&db, "compaction thread", || db.compaction_loop());
        })?;
    }
    Ok(())
}

fn spawn_one(
    inner: &DbInner,
    threads: &mut Vec<JoinHandle<()>>,
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    inner.hook(HookPoint::SpawnThread(threads.len()))?;
    threads.push(std::thread::Builder::new().name(name).spawn(body)?);
    Ok(())
}

/// Run a background thread's loop; a panic in it becomes the database's
/// background error (which wakes and fails every waiter).
fn guarded(inner: &DbInner, place: &'static str, body: impl FnOnce()) {
    if let Err(panic) = catch_panic(place, body) {
        inner.set_bg_error(panic);
    }
}

/// Stop the background threads and wait for them to finish.
pub(crate) fn stop(inner: &DbInner, threads: Vec<JoinHandle<()>>) {
    inner.closing.store(true, Ordering::Release);
    inner.bg.state.lock().shutting_down = true;
    inner.bg.notify_all();
    inner.write_path.wal.stop_syncer();
    inner.write_path.block_pool.stop_preparer();
    for t in threads {
        // Their panics are caught inside (`guarded`); a join error is
        // a panic in the catching itself, with nothing left to report.
        let _ = t.join();
    }
}

/// Marks a flush as running while it exists; cleared and announced on
/// drop, so a flush that fails or panics cannot leave `flushing` set. Set
/// only under the state lock after checking for a background error (a
/// resume waits for no flush to run, and none to start).
pub(crate) struct Flushing<'a>(&'a Background);

impl Drop for Flushing<'_> {
    fn drop(&mut self) {
        let tasks = {
            let mut state = self.0.state.lock();
            state.flushing = None;
            // Progress once per flush: at its install if it announced one
            // there, else now (a flush that failed, or whose keyspace was
            // dropped, ends without an install).
            if !std::mem::take(&mut state.flush_installed_announced) {
                state.generation += 1;
            }
            self.0.work.notify_all();
            self.0.done.notify_all();
            std::mem::take(&mut state.tasks)
        };
        tasks.into_iter().for_each(Waker::wake);
    }
}

/// What the flush thread does next.
enum FlushJob<'a> {
    Flush(Arc<KeyspaceState>, Arc<MemTable>, Flushing<'a>),
    /// Try to resume after a no-space background error (`resume.rs`).
    Resume,
    /// An async leader's rotation waits for a spare WAL
    /// (`DbInner::poll_rotation`).
    MakeSpare,
}

/// Flush frozen memtables, oldest first, until shutdown; after a
/// no-space background error, retry resuming on schedule instead.
fn flush_loop(inner: &DbInner) {
    // The first rotation's WAL and memtable.
    inner.prepare_spare_wal();
    loop {
        let job = {
            let mut st = inner.bg.state.lock();
            loop {
                if st.shutting_down {
                    return;
                }
                if inner.check_bg_error().is_err() {
                    match inner.auto_resume_due() {
                        Some(at) if at <= Instant::now() => break FlushJob::Resume,
                        Some(at) => {
                            inner.bg.work.wait_until(&mut st, at);
                        }
                        None => inner.bg.work.wait(&mut st),
                    }
                    continue;
                }
                if inner.write_path.spare_wanted() {
                    break FlushJob::MakeSpare;
                }
                // Bound first: a temporary in the `match` would hold the
                // super version (and the tables it holds) while waiting.
                let oldest = inner.oldest_frozen();
                match oldest {
                    Some((ks, imm)) => {
                        st.flushing = Some(ks.id);
                        break FlushJob::Flush(ks, imm, Flushing(&inner.bg));
                    }
                    None => inner.bg.work.wait(&mut st),
                }
            }
        };
        match job {
            FlushJob::MakeSpare => inner.prepare_spare_wal(),
            FlushJob::Resume => {
                // A failure is recorded as the background error, and
                // retried when next due.
                let _ = inner.auto_resume();
                inner.bg.notify_all();
            }
            FlushJob::Flush(ks, imm, flushing) => {
                // The rotation that froze `imm` took the spare: make the
                // next one before the flush, which takes long enough for
                // another rotation to come.
                inner.prepare_spare_wal();
                // A failure is recorded while the flush still counts as
                // running: a resume waits for none to run, and must not
                // meet its error after it cleared the one it resumed from.
                if let Err(e) = inner.flush_memtable(&ks, &imm) {
                    inner.set_bg_error(e);
                }
                // Let go of the keyspace before the end is announced (see
                // `run_one_compaction`).
                drop((ks, imm));
                // Ends the job; its progress is announced once, at the
                // install or else here: a second announcement would count
                // as background progress of its own, ending a delayed
                // write's delay with nothing new done.
                drop(flushing);
            }
        }
        // Events deferred by writers and by a failure just recorded. No
        // announcement here: the flush's end was announced once above.
        inner.events.deliver_deferred();
        inner.export_metrics();
    }
}

impl DbInner {
    /// The oldest frozen memtable of any live keyspace (the smallest
    /// sealed sequence number), with its keyspace: what to flush next.
    pub(crate) fn oldest_frozen(&self) -> Option<(Arc<KeyspaceState>, Arc<MemTable>)> {
        self.keyspaces
            .load()
            .iter()
            .filter_map(|ks| {
                let imm = ks.super_version.load().imms.last().cloned()?;
                Some((Arc::clone(ks), imm))
            })
            .min_by_key(|(_, imm)| imm.sealed_seq())
    }

    /// Whether some live keyspace has a frozen memtable.
    pub(crate) fn any_frozen(&self) -> bool {
        self.keyspaces
            .load()
            .iter()
            .any(|ks| !ks.super_version.load().imms.is_empty())
    }

    /// One unit of background work in the calling thread: flush the oldest
    /// frozen memtable, or else run the most urgent compaction. Returns
    /// whether there was anything to do. Used with
    /// `Options::inline_background_work`.
    pub(crate) fn background_step(&self) -> crate::Result<bool> {
        // Marked as the flush thread marks its flushes (see `Flushing`).
        let flush = {
            let mut st = self.bg.state.lock();
            self.check_bg_error()?;
            let oldest = self.oldest_frozen();
            match oldest {
                Some((ks, imm)) if st.flushing.is_none() => {
                    st.flushing = Some(ks.id);
                    Some((ks, imm, Flushing(&self.bg)))
                }
                _ => None,
            }
        };
        let step = catch_panic("background work", || {
            if let Some((ks, imm, _)) = &flush {
                Some(self.flush_memtable(ks, imm))
            } else {
                self.run_one_compaction()
            }
        });
        let result = match step {
            Ok(Some(result)) => result,
            Ok(None) => return Ok(false),
            Err(panic) => Err(panic),
        };
        // Recorded before the flush stops counting as running (see
        // `flush_loop`; `run_one_compaction` does the same).
        let result = result.map_err(|e| crate::Error::Background(self.set_bg_error(e)));
        // Ends the flush (`Flushing`), its progress announced once (at its
        // install or else here), as a compaction's end is announced once
        // by `run_one_compaction`: a second announcement would count as
        // background progress of its own.
        drop(flush);
        result?;
        Ok(true)
    }

    /// Run background steps until none is left (with background threads,
    /// wait for them to finish instead). After a no-space background
    /// error, first make the automatic attempt to resume the flush thread
    /// would make (one per call while attempts are left: time is not
    /// simulated, so the retry interval is not waited for).
    pub(crate) fn run_background_work(&self) -> crate::Result<()> {
        if !self.options.inline_background_work {
            return self.wait_for_compactions();
        }
        if self.auto_resume_due().is_some() {
            self.auto_resume()?;
        }
        while self.background_step()? {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// One step of inline background work, a flush or a compaction,
    /// announces its end once: each announcement counts as progress (it
    /// ends a delayed write's delay), so a second one would be progress
    /// nobody made. (A flush's end was announced twice: by its guard,
    /// then again by the step.)
    #[test]
    fn an_inline_background_step_announces_its_end_once() {
        use crate::fs::{FileSystem, MemFileSystem};
        let options = crate::Options {
            fs: Arc::new(MemFileSystem::new()) as Arc<dyn FileSystem>,
            inline_background_work: true,
            write_buffer_size: 64 << 10,
            // Rotations freeze memtables without stalling: they wait for
            // the steps below.
            max_write_buffer_number: 8,
            level0_file_num_compaction_trigger: 2,
            ..crate::Options::default()
        };
        let db = crate::Db::open("/db", options).expect("open");
        let inner = db.inner();
        let generation = || inner.bg.state.lock().generation;
        let value = vec![b'v'; 1024];
        let mut i = 0;
        while !inner.any_frozen() {
            db.put(format!("k{i:06}"), &value).expect("put");
            i += 1;
        }
        let step = |what: &str| {
            let before = generation();
            assert!(inner.background_step().expect("step"), "no {what} to run");
            assert_eq!(generation(), before + 1, "a {what}'s end announced twice");
        };
        step("flush");
        assert!(!inner.any_frozen());
        // A second table in L0 (the manual flush runs its own steps):
        // a compaction is due.
        db.put("k000000", &value).expect("put");
        db.flush().expect("flush");
        step("compaction");
        while inner.background_step().expect("step") {}
        let after = generation();
        assert!(!inner.background_step().expect("step"));
        assert_eq!(generation(), after, "no work, no announcement");
    }

    /// A flush announces its progress at its install, while its job
    /// still runs (it collects the WALs it made obsolete next), and its
    /// end then wakes without a second announcement; a flush with no
    /// install (failed, or its keyspace dropped) announces at its end.
    #[test]
    fn a_flush_is_progress_once_at_its_install_or_else_at_its_end() {
        let bg = Background::default();
        let generation = || bg.state.lock().generation;
        let start = generation();
        bg.state.lock().flushing = Some(3);
        let flushing = Flushing(&bg);
        bg.announce_flush_installed();
        assert_eq!(generation(), start + 1, "the install is progress");
        assert_eq!(bg.state.lock().flushing, Some(3), "the job still runs");
        drop(flushing);
        assert_eq!(generation(), start + 1, "the end is no second progress");
        assert_eq!(bg.state.lock().flushing, None);
        bg.state.lock().flushing = Some(3);
        drop(Flushing(&bg));
        assert_eq!(generation(), start + 2, "a flush with no install");
    }

    /// A compaction that panics still uncounts itself and wakes whoever
    /// waits for it (by hand, a panic between the count and the uncount
    /// hung `wait_for_compactions`); shutdown ends every wait; a deadline
    /// ends a wait that nothing satisfies.
    #[test]
    fn waits_end_at_a_dropped_guard_at_shutdown_and_at_a_deadline() {
        let bg = Background::default();
        let running = bg.compaction_started();
        std::thread::scope(|s| {
            let waiter = s
                .spawn(|| bg.wait_for(None, |_| (bg.compactions_running() == 0).then_some(Ok(()))));
            let job = catch_unwind(AssertUnwindSafe(move || {
                let _running = running;
                panic!("injected by the test");
            }));
            assert!(job.is_err());
            let waited = waiter.join().expect("waiter");
            assert!(matches!(waited, Ok(Waited::Done(()))));
        });
        let now = Instant::now();
        let waited = bg.wait_for(Some(now), |_| None::<Result<()>>);
        assert!(matches!(waited, Ok(Waited::TimedOut)));
        bg.state.lock().shutting_down = true;
        let waited = bg.wait_for(None, |_| Some(Ok(())));
        assert!(
            matches!(waited, Err(Error::Closed)),
            "shutdown is checked first"
        );
    }
}
