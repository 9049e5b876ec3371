//! The WAL syncer thread: an fsync coalescer. Sync writers with company
//! ask it to sync up to their record; it fsyncs once for every request
//! that arrived while the previous fsync ran. It also syncs the WAL files
//! a rotation retired (in the background, so a rotation does not stall
//! writers for a whole WAL's fsync) when a flush will need them durable
//! (`WalBuffer::set_eager_retired_sync`), and warms each new WAL file up a step
//! at a time while no sync is wanted (`WritableFile::warm_up`), and each
//! growth of it (`WritableFile::take_warm_up`). A lone writer syncs inline
//! instead (`WalBuffer::wait_with`).

use super::wal_buffer::WalBuffer;
use crate::fs::WarmUp;
use crate::lock_order::{Condvar, Level, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What the syncer thread is asked to do.
pub(crate) struct SyncRequests {
    /// Highest LSN some writer wants synced.
    requested: AtomicU64,
    /// The current file's warm-up, run a step at a time when no sync is
    /// wanted.
    warm_up: Mutex<WarmUpSlot>,
    /// The thread runs: warm-ups of growth are worth handing it (without
    /// it nothing would run them, and they would hold their file open).
    running: AtomicBool,
    /// Set to stop the thread. The thread waits on `wake` under this lock
    /// for work.
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Default for SyncRequests {
    fn default() -> Self {
        SyncRequests {
            requested: AtomicU64::new(0),
            warm_up: Mutex::new(Level::SyncerWarmUp, WarmUpSlot::default()),
            running: AtomicBool::new(false),
            stop: Mutex::new(Level::SyncerStop, false),
            wake: Condvar::new(),
        }
    }
}

impl SyncRequests {
    /// Ask for a sync up to `lsn`; wakes the thread unless a request at
    /// least as far is pending.
    pub fn request(&self, lsn: u64) {
        if self.requested.fetch_max(lsn, Ordering::AcqRel) < lsn {
            self.wake();
        }
    }

    /// Wake the thread to look for work (a retired file, a warm-up).
    pub fn wake(&self) {
        let _g = self.stop.lock();
        self.wake.notify_one();
    }

    /// The warm-up of a new file, replacing any unfinished one.
    pub fn set_warm_up(&self, job: Option<WarmUp>) {
        let mut slot = self.warm_up.lock();
        slot.job = job;
        slot.file += 1;
    }

    /// Whether the syncer thread runs (and so runs warm-ups).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// The warm-up of the current file's growth, run after any unfinished
    /// one (which covers the pages the writer reaches first); wakes the
    /// thread.
    pub fn add_warm_up(&self, job: WarmUp) {
        self.warm_up.lock().queue(job);
        self.wake();
    }

    fn requested(&self) -> u64 {
        self.requested.load(Ordering::Acquire)
    }

    /// Run one step of the pending warm-up; true if one ran. The step
    /// runs outside the lock: a newer file's warm-up installed meanwhile
    /// replaces the rest of this one, and a growth's added meanwhile runs
    /// after it.
    fn warm_up_step(&self) -> bool {
        let (mut job, file) = {
            let mut slot = self.warm_up.lock();
            let Some(job) = slot.job.take() else {
                return false;
            };
            (job, slot.file)
        };
        if job() {
            let mut slot = self.warm_up.lock();
            if slot.file == file {
                let added = slot.job.take();
                slot.job = Some(job);
                if let Some(added) = added {
                    slot.queue(added);
                }
            }
        }
        true
    }
}

/// The pending warm-up, and which file it is for.
#[derive(Default)]
struct WarmUpSlot {
    job: Option<WarmUp>,
    /// Counts `set_warm_up` calls (one per new file), so that a step run
    /// outside the lock can tell whether its job is still the current
    /// file's.
    file: u64,
}

impl WarmUpSlot {
    /// Queue `job` after the pending one, if any.
    fn queue(&mut self, job: WarmUp) {
        self.job = Some(match self.job.take() {
            None => job,
            Some(earlier) => chain(earlier, job),
        });
    }
}

/// `first`'s steps, then `then`'s. `first` is dropped as soon as it is
/// done: a warm-up holds a file descriptor and its mappings.
fn chain(first: WarmUp, mut then: WarmUp) -> WarmUp {
    let mut first = Some(first);
    Box::new(move || {
        if let Some(job) = first.as_mut() {
            if !job() {
                first = None;
            }
            return true;
        }
        then()
    })
}

impl WalBuffer {
    /// Ask the syncer thread to sync up to `lsn` (`wal_bytes_per_sync`).
    pub fn request_sync(&self, lsn: u64) {
        self.syncer.request(lsn);
    }

    /// The syncer thread's loop: sync whenever a writer asks, coalescing
    /// the requests that arrive while a sync is in progress into the next
    /// one; sync retired files; warm up each new WAL file. Returns when
    /// [`stop_syncer`](Self::stop_syncer) is called. `woke` is called each
    /// time it wakes for work (a test hook).
    pub fn run_syncer(&self, woke: &dyn Fn()) {
        let s = &self.syncer;
        s.set_warm_up(self.current_warm_up());
        s.running.store(true, Ordering::Release);
        loop {
            {
                let mut stop = s.stop.lock();
                // A failed buffer waits for `restart` (a resume) or stop.
                while !*stop
                    && (self.is_failed()
                        || s.warm_up.lock().job.is_none()
                            && s.requested() <= self.synced()
                            && (self.retired_unsynced() == 0 || !self.eager_retired_sync()))
                {
                    s.wake.wait(&mut stop);
                }
                if *stop {
                    s.running.store(false, Ordering::Release);
                    return;
                }
            }
            woke();
            // Sync requests first; otherwise warm the new file up a step at
            // a time before the retired file's sync (which can take long):
            // the writers are about to need those pages.
            let sync_wanted = s.requested() > self.synced();
            if !sync_wanted && s.warm_up_step() {
                continue;
            }
            // Retired files first, outside the drain lock: syncing a whole
            // 64 MiB WAL takes long, and writers keep appending meanwhile.
            // Not eager: only for a sync asked for (which needs them).
            let retired = if sync_wanted || self.eager_retired_sync() {
                self.sync_retired()
            } else {
                Ok(())
            };
            let result = retired.and_then(|_| {
                if s.requested() > self.synced() {
                    self.sync_all()
                } else {
                    Ok(())
                }
            });
            if result.is_err() {
                // The failure already woke every waiter; nothing more to
                // sync until a resume restarts the buffer.
                debug_assert!(self.is_failed());
                continue;
            }
            // Records pushed while we held the drain lock are ours to
            // write (their pushers saw the lock taken), unless they wait
            // for a manual flush no one asked for yet.
            if self.drain_wanted() {
                let _ = self.drain_if_idle();
            }
        }
    }

    /// Stop the syncer thread.
    pub fn stop_syncer(&self) {
        let mut stop = self.syncer.stop.lock();
        *stop = true;
        self.syncer.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FileSystem, MemFileSystem, WritableFile};
    use crate::write::pipeline::Durability;
    use std::io;
    use std::path::Path;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    fn buffer(capacity: usize) -> (MemFileSystem, Arc<WalBuffer>) {
        let fs = MemFileSystem::new();
        fs.create_dir_all(Path::new("/w")).unwrap();
        let file = fs.create(Path::new("/w/1.log")).unwrap();
        (fs, Arc::new(WalBuffer::new(capacity, file, 1)))
    }

    /// A file whose warm-up jobs come from `make`, so a test controls them.
    struct WithWarmUp {
        file: Box<dyn WritableFile>,
        make: Box<dyn Fn() -> WarmUp + Send>,
    }

    impl WritableFile for WithWarmUp {
        fn append(&mut self, data: &[u8]) -> io::Result<()> {
            self.file.append(data)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.file.flush()
        }
        fn sync(&mut self) -> io::Result<()> {
            self.file.sync()
        }
        fn len(&self) -> u64 {
            self.file.len()
        }
        fn warm_up(&self) -> Option<WarmUp> {
            Some((self.make)())
        }
    }

    /// A file that grows at its first append: `take_warm_up` then hands
    /// out `growth`. Its own warm-up reports on `started`.
    struct Growing {
        file: Box<dyn WritableFile>,
        started: std::sync::mpsc::Sender<()>,
        growth: Option<WarmUp>,
    }

    impl WritableFile for Growing {
        fn append(&mut self, data: &[u8]) -> io::Result<()> {
            self.file.append(data)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.file.flush()
        }
        fn sync(&mut self) -> io::Result<()> {
            self.file.sync()
        }
        fn len(&self) -> u64 {
            self.file.len()
        }
        fn warm_up(&self) -> Option<WarmUp> {
            let started = self.started.clone();
            Some(Box::new(move || {
                let _ = started.send(());
                false
            }))
        }
        fn take_warm_up(&mut self) -> Option<WarmUp> {
            (!self.file.is_empty())
                .then(|| self.growth.take())
                .flatten()
        }
    }

    #[test]
    fn the_syncer_warms_up_a_growth_of_the_current_file() {
        let (fs, wal) = buffer(1 << 16);
        let syncer = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || wal.run_syncer(&|| {}))
        };
        let (started, running) = std::sync::mpsc::channel();
        let (ran, warmed) = std::sync::mpsc::channel();
        let growth: WarmUp = Box::new(move || {
            ran.send(()).unwrap();
            false
        });
        let file = Growing {
            file: fs.create(Path::new("/w/2.log")).unwrap(),
            started,
            growth: Some(growth),
        };
        wal.switch_file(Box::new(file), 2, true).unwrap();
        // Bounds on a hang, not synchronisations: the file's own warm-up
        // runs once the thread runs, and then a drain hands it the growth.
        running
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the syncer ran the new file's warm-up");
        wal.push(b"a record that grows the file").unwrap();
        wal.drain_all().unwrap();
        warmed
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the syncer ran the growth's warm-up");
        wal.stop_syncer();
        syncer.join().unwrap();
    }

    #[test]
    fn a_growth_warm_up_runs_after_the_unfinished_one_it_joins() {
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let job = |name: &'static str, steps: usize| -> WarmUp {
            let (order, mut left) = (Arc::clone(&order), steps);
            Box::new(move || {
                order.lock().push(name);
                left -= 1;
                left > 0
            })
        };
        let mut both = chain(job("earlier", 2), job("growth", 2));
        let mut more = Vec::new();
        for _ in 0..4 {
            more.push(both());
        }
        assert_eq!(*order.lock(), ["earlier", "earlier", "growth", "growth"]);
        assert_eq!(more, [true, true, true, false]);
    }

    /// A warm-up job of `steps` steps that records `name` at each; the
    /// first step reports on `entered` and waits for `go`.
    fn held_job(
        order: &Arc<parking_lot::Mutex<Vec<&'static str>>>,
        name: &'static str,
        steps: usize,
        entered: std::sync::mpsc::Sender<()>,
        go: std::sync::mpsc::Receiver<()>,
    ) -> WarmUp {
        let (order, mut left, mut first) = (Arc::clone(order), steps, true);
        Box::new(move || {
            if std::mem::take(&mut first) {
                entered.send(()).unwrap();
                go.recv().unwrap();
            }
            order.lock().push(name);
            left -= 1;
            left > 0
        })
    }

    #[test]
    fn a_warm_up_handed_over_during_a_step_runs_after_the_rest_of_the_job_or_replaces_it() {
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let job = |name: &'static str, steps: usize| -> WarmUp {
            let (order, mut left) = (Arc::clone(&order), steps);
            Box::new(move || {
                order.lock().push(name);
                left -= 1;
                left > 0
            })
        };
        // While a step of the file's warm-up runs (outside the lock), a
        // drain adds a growth's: it runs after the rest of the job; or a
        // new file's is set (or none, for a file with no warm-up): it
        // replaces the rest.
        for handed_over in ["growth", "next file", "none"] {
            order.lock().clear();
            let requests = Arc::new(SyncRequests::default());
            let (entered, in_step) = std::sync::mpsc::channel();
            let (go, wait) = std::sync::mpsc::channel();
            requests.set_warm_up(Some(held_job(&order, "first", 3, entered, wait)));
            let stepping = {
                let requests = Arc::clone(&requests);
                std::thread::spawn(move || requests.warm_up_step())
            };
            in_step.recv().unwrap();
            match handed_over {
                "growth" => requests.add_warm_up(job("growth", 1)),
                "next file" => requests.set_warm_up(Some(job("next file", 1))),
                _ => requests.set_warm_up(None),
            }
            go.send(()).unwrap();
            assert!(stepping.join().unwrap());
            while requests.warm_up_step() {}
            let expected: &[&str] = match handed_over {
                "growth" => &["first", "first", "first", "growth"],
                "next file" => &["first", "next file"],
                _ => &["first"],
            };
            assert_eq!(*order.lock(), expected, "handed over: {handed_over}");
        }
    }

    #[test]
    fn the_syncer_warms_up_each_new_file() {
        let (fs, wal) = buffer(1 << 16);
        let syncer = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || wal.run_syncer(&|| {}))
        };
        let (ran, warmed) = std::sync::mpsc::channel();
        for number in 2..4 {
            let path = format!("/w/{number}.log");
            let ran = ran.clone();
            // Three steps, the last one reporting.
            let make = move || -> WarmUp {
                let (ran, mut steps) = (ran.clone(), 0);
                Box::new(move || {
                    steps += 1;
                    if steps == 3 {
                        ran.send(()).unwrap();
                    }
                    steps < 3
                })
            };
            let file = WithWarmUp {
                file: fs.create(Path::new(&path)).unwrap(),
                make: Box::new(make),
            };
            wal.switch_file(Box::new(file), number, true).unwrap();
            // A bound on a hang, not a synchronisation: the job runs as
            // soon as the syncer wakes.
            warmed
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("the syncer ran the new file's warm-up");
        }
        wal.stop_syncer();
        syncer.join().unwrap();
    }

    #[test]
    fn a_sync_is_served_between_warm_up_steps() {
        let (fs, wal) = buffer(1 << 16);
        let syncer = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || wal.run_syncer(&|| {}))
        };
        // A warm-up that never ends by itself: each step counts itself and
        // waits for a token; the job ends when the token sender is gone.
        let (token, tokens) = std::sync::mpsc::channel::<()>();
        let tokens = Arc::new(parking_lot::Mutex::new(tokens));
        let steps = Arc::new(AtomicUsize::new(0));
        let make = {
            let steps = Arc::clone(&steps);
            move || -> WarmUp {
                let (tokens, steps) = (Arc::clone(&tokens), Arc::clone(&steps));
                Box::new(move || {
                    steps.fetch_add(1, Ordering::SeqCst);
                    tokens.lock().recv().is_ok()
                })
            }
        };
        let next = WithWarmUp {
            file: fs.create(Path::new("/w/2.log")).unwrap(),
            make: Box::new(make),
        };
        wal.switch_file(Box::new(next), 2, true).unwrap();
        let lsn = wal.push(b"synced while warming up").unwrap();
        // Asked before the token below ends the step under way (if one
        // is): the syncer must sync before it starts another.
        wal.request_sync(lsn);
        let (done, synced) = std::sync::mpsc::channel();
        let waiter = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                wal.wait(lsn, Durability::Synced, false, || None).unwrap();
                done.send(()).unwrap();
            })
        };
        token.send(()).unwrap();
        // A bound on a hang, not a synchronisation: were the warm-up run
        // before the sync, the next step would wait for a token that never
        // comes and the sync with it.
        let served = synced.recv_timeout(std::time::Duration::from_secs(30));
        let steps_then = steps.load(Ordering::SeqCst);
        drop(token); // ends the job, so the threads can finish either way
        waiter.join().unwrap();
        wal.stop_syncer();
        syncer.join().unwrap();
        served.expect("the sync waited for the warm-up");
        assert!(
            steps_then <= 2,
            "{steps_then} warm-up steps ran before the sync"
        );
    }
}
