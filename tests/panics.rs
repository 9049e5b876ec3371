//! A panic in a flush, compaction or WAL syncer thread, or in a write
//! group's leader, becomes a background error that every waiter sees:
//! writers queued, waiting on publication or on the WAL, `flush`,
//! `wait_for_compactions` and `compact_range` return it, dropping the last
//! handle finishes, and a reopen recovers every acknowledged write. A
//! thread that fails to start at open leaves no thread and no LOCK behind.
//!
//! Panics are injected through `Options::test_hook`. Every call that could
//! hang runs on a thread of its own and is waited for with a bound
//! (`BOUND`): a bound on a hang, so that a hang fails the test instead of
//! stalling the run, never a synchronisation.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata::fs::MemFileSystem;
use strata::{Db, Error, HookPoint, Options, TestHook, WriteOptions};

const BOUND: Duration = Duration::from_secs(60);
const INJECTED: &str = "injected by the test";

fn sync() -> WriteOptions {
    WriteOptions {
        sync: true,
        ..WriteOptions::default()
    }
}

/// A call running on a thread of its own.
struct Pending<T>(Receiver<T>, &'static str);

fn start<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Pending<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    Pending(rx, what)
}

impl<T> Pending<T> {
    /// Its result; fails the test if it hangs or panics.
    fn result(self) -> T {
        match self.0.recv_timeout(BOUND) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("{} hung: no result in {BOUND:?}", self.1),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{} panicked instead of returning an error", self.1)
            }
        }
    }
}

fn within<T: Send + 'static>(what: &'static str, f: impl FnOnce() -> T + Send + 'static) -> T {
    start(what, f).result()
}

/// Holds a thread inside the hook until the test opens it.
struct Gate {
    arrived: Mutex<Sender<()>>,
    open: Mutex<Receiver<()>>,
}

impl Gate {
    /// The gate, the test's view of arrivals, and its opener.
    fn new() -> (Arc<Gate>, Receiver<()>, Sender<()>) {
        let (arrived, arrivals) = mpsc::channel();
        let (opener, open) = mpsc::channel();
        let gate = Gate {
            arrived: Mutex::new(arrived),
            open: Mutex::new(open),
        };
        (Arc::new(gate), arrivals, opener)
    }

    fn hold(&self) {
        let _ = self.arrived.lock().unwrap().send(());
        let _ = self.open.lock().unwrap().recv();
    }
}

fn arrived(arrivals: &Receiver<()>, what: &str) {
    arrivals
        .recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("{what} never reached the hook"));
}

fn options(
    fs: &MemFileSystem,
    hook: impl Fn(HookPoint) -> io::Result<()> + Send + Sync + 'static,
) -> Options {
    Options {
        test_hook: Some(Arc::new(hook)),
        ..mem_options(fs)
    }
}

fn injected(point: HookPoint) -> ! {
    panic!("{INJECTED} at {point:?}")
}

/// A hook that panics the first time `at` is reached after the returned
/// flag is set.
fn panic_once_armed(
    at: HookPoint,
) -> (
    Arc<AtomicBool>,
    impl Fn(HookPoint) -> io::Result<()> + Send + Sync + 'static,
) {
    let armed = Arc::new(AtomicBool::new(false));
    let a = Arc::clone(&armed);
    let hook = move |p| {
        if p == at && a.swap(false, Ordering::SeqCst) {
            injected(p)
        }
        Ok(())
    };
    (armed, hook)
}

/// The error is the background error a panic at `place` left.
fn assert_panicked(e: &Error, place: &str) {
    match e {
        Error::Background(inner) => match &**inner {
            Error::Panic { place: p, message } => {
                assert_eq!(*p, place, "{e}");
                assert!(message.contains(INJECTED), "{e}");
            }
            other => panic!("expected a panic in {place}, got background error {other}"),
        },
        other => panic!("expected a panic in {place}, got {other}"),
    }
}

type Acked = Vec<(Vec<u8>, Vec<u8>)>;

/// 100 acknowledged writes of keys of their own (by `round`).
fn write_some(db: &Db, round: usize) -> Acked {
    (round * 100..(round + 1) * 100)
        .map(|i| {
            let (k, v) = (key(i), value(i, round));
            db.put(&k, &v).unwrap();
            (k, v)
        })
        .collect()
}

/// Every kind of waiter started after the panic fails with it, without
/// waiting; then dropping the last handle finishes.
fn every_waiter_fails_then_close(db: Db, place: &str) {
    let put = {
        let db = db.clone();
        within("a put after the panic", move || db.put(b"late", b"write"))
    };
    assert_panicked(&put.unwrap_err(), place);
    let synced = {
        let db = db.clone();
        within("a sync put after the panic", move || {
            db.put_opt(b"late", b"sync write", &sync())
        })
    };
    assert_panicked(&synced.unwrap_err(), place);
    let flush = {
        let db = db.clone();
        within("flush after the panic", move || db.flush())
    };
    assert_panicked(&flush.unwrap_err(), place);
    let wait = {
        let db = db.clone();
        within("wait_for_compactions after the panic", move || {
            db.wait_for_compactions()
        })
    };
    assert_panicked(&wait.unwrap_err(), place);
    let compact = {
        let db = db.clone();
        within("compact_range after the panic", move || {
            db.compact_range::<&[u8], _>(..)
        })
    };
    assert_panicked(&compact.unwrap_err(), place);
    within("dropping the last handle", move || drop(db));
}

/// Reopened without hooks, the database holds every acknowledged write.
fn reopen_holds(fs: &MemFileSystem, acked: &Acked) {
    let db = open_mem(fs);
    for (k, v) in acked {
        assert_eq!(
            db.get(k).unwrap().as_deref(),
            Some(v.as_slice()),
            "acknowledged write of {} lost",
            String::from_utf8_lossy(k)
        );
    }
}

#[test]
fn a_panic_in_the_flush_thread_fails_every_waiter() {
    let fs = MemFileSystem::new();
    let (armed, hook) = panic_once_armed(HookPoint::Flush);
    let db = Db::open(mem_dir(), options(&fs, hook)).unwrap();
    let acked = write_some(&db, 0);
    armed.store(true, Ordering::SeqCst);
    // Waits for the flush thread, which panics.
    let flush = {
        let db = db.clone();
        within("flush", move || db.flush())
    };
    assert_panicked(&flush.unwrap_err(), "flush thread");
    every_waiter_fails_then_close(db, "flush thread");
    reopen_holds(&fs, &acked);
}

#[test]
fn a_panic_in_a_compaction_thread_fails_every_waiter() {
    let fs = MemFileSystem::new();
    let (gate, arrivals, opener) = Gate::new();
    let opts = Options {
        level0_file_num_compaction_trigger: 2,
        ..options(&fs, move |p| match p {
            HookPoint::Compaction => {
                gate.hold();
                injected(p)
            }
            _ => Ok(()),
        })
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    let mut acked = write_some(&db, 0);
    db.flush().unwrap();
    acked.extend(write_some(&db, 1));
    db.flush().unwrap();
    // Two L0 tables: the compaction thread picks them and stops in the
    // hook, counted as running.
    arrived(&arrivals, "the compaction thread");
    let wait = {
        let db = db.clone();
        start("wait_for_compactions", move || db.wait_for_compactions())
    };
    opener.send(()).unwrap();
    assert_panicked(&wait.result().unwrap_err(), "background compaction");
    every_waiter_fails_then_close(db, "background compaction");
    reopen_holds(&fs, &acked);
}

/// `compact_range` runs its compactions in the caller's thread: a panic
/// there is returned as the background error, not propagated.
#[test]
fn a_panic_in_a_manual_compaction_is_returned_by_compact_range() {
    let fs = MemFileSystem::new();
    let (armed, hook) = panic_once_armed(HookPoint::Compaction);
    let opts = Options {
        // No background compaction: the manual one meets the hook.
        level0_file_num_compaction_trigger: 10,
        ..options(&fs, hook)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    let mut acked = write_some(&db, 0);
    db.flush().unwrap();
    acked.extend(write_some(&db, 1));
    db.flush().unwrap();
    armed.store(true, Ordering::SeqCst);
    let compact = {
        let db = db.clone();
        within("compact_range", move || db.compact_range::<&[u8], _>(..))
    };
    assert_panicked(&compact.unwrap_err(), "manual compaction");
    every_waiter_fails_then_close(db, "manual compaction");
    reopen_holds(&fs, &acked);
}

/// A sync writer with company leaves its fsync to the WAL syncer thread
/// and waits on the WAL buffer; the syncer panics.
#[test]
fn a_panic_in_the_wal_syncer_fails_the_writers_waiting_for_a_sync() {
    let fs = MemFileSystem::new();
    let (gate, arrivals, opener) = Gate::new();
    let hold_next_group = Arc::new(AtomicBool::new(false));
    let syncer_armed = Arc::new(AtomicBool::new(false));
    let (h, f) = (Arc::clone(&hold_next_group), Arc::clone(&syncer_armed));
    let db = Db::open(
        mem_dir(),
        options(&fs, move |p| match p {
            HookPoint::WriteGroupSequenced if h.swap(false, Ordering::SeqCst) => {
                gate.hold();
                Ok(())
            }
            HookPoint::WalSyncer if f.load(Ordering::SeqCst) => injected(p),
            _ => Ok(()),
        }),
    )
    .unwrap();
    let mut acked = write_some(&db, 0);
    // B stays inside the write path, so A is not a lone writer: A asks the
    // syncer thread for its fsync instead of syncing itself.
    hold_next_group.store(true, Ordering::SeqCst);
    let b = {
        let db = db.clone();
        start("the held writer", move || db.put(b"b", b"held"))
    };
    arrived(&arrivals, "the held writer");
    syncer_armed.store(true, Ordering::SeqCst);
    let a = {
        let db = db.clone();
        within("a sync writer waiting on the WAL", move || {
            db.put_opt(b"a", b"synced", &sync())
        })
    };
    assert_panicked(&a.unwrap_err(), "WAL syncer thread");
    opener.send(()).unwrap();
    // B's record was written out before the panic; it may have published.
    match b.result() {
        Ok(()) => acked.push((b"b".to_vec(), b"held".to_vec())),
        Err(e) => assert_panicked(&e, "WAL syncer thread"),
    }
    every_waiter_fails_then_close(db, "WAL syncer thread");
    reopen_holds(&fs, &acked);
}

/// The leader panics after taking its group, before sequencing it: its
/// members and the writers queued behind it fail instead of waiting for
/// a leader.
#[test]
fn a_panic_in_a_group_leader_fails_its_members_and_the_queue() {
    let fs = MemFileSystem::new();
    let (gate, arrivals, opener) = Gate::new();
    let armed = Arc::new(AtomicBool::new(false));
    let held_one = Arc::new(AtomicBool::new(false));
    let (a, h) = (Arc::clone(&armed), Arc::clone(&held_one));
    let db = Db::open(
        mem_dir(),
        options(&fs, move |p| match p {
            HookPoint::WriteGroupLeader if a.load(Ordering::SeqCst) => {
                if h.swap(true, Ordering::SeqCst) {
                    injected(p)
                }
                // The first leader waits here while the others queue, and
                // then leads normally: the next leader takes them as its
                // group and panics.
                gate.hold();
                Ok(())
            }
            _ => Ok(()),
        }),
    )
    .unwrap();
    let mut acked = write_some(&db, 0);
    armed.store(true, Ordering::SeqCst);
    let first = {
        let db = db.clone();
        start("the first leader", move || db.put(b"first", b"leader"))
    };
    arrived(&arrivals, "the first leader");
    let queued: Vec<_> = (0..3)
        .map(|i| {
            let db = db.clone();
            start("a queued writer", move || {
                let opts = WriteOptions {
                    sync: i == 1,
                    ..WriteOptions::default()
                };
                db.put_opt(format!("queued{i}"), b"v", &opts)
            })
        })
        .collect();
    opener.send(()).unwrap();
    for w in queued {
        assert_panicked(&w.result().unwrap_err(), "write group leader");
    }
    // Sequenced before the panic; whether it finished before the panic
    // stopped the database depends on the interleaving.
    match first.result() {
        Ok(()) => acked.push((b"first".to_vec(), b"leader".to_vec())),
        Err(e) => assert_panicked(&e, "write group leader"),
    }
    every_waiter_fails_then_close(db, "write group leader");
    reopen_holds(&fs, &acked);
}

/// `flush` leads the write queue to rotate the memtable: a panic there
/// must not leave the queue with a leader that never hands off.
#[test]
fn a_panic_while_flush_leads_the_write_queue_fails_later_writers() {
    let fs = MemFileSystem::new();
    let (armed, hook) = panic_once_armed(HookPoint::WriteGroupLeader);
    let db = Db::open(mem_dir(), options(&fs, hook)).unwrap();
    let acked = write_some(&db, 0);
    armed.store(true, Ordering::SeqCst);
    let flush = {
        let db = db.clone();
        within("flush", move || db.flush())
    };
    assert_panicked(&flush.unwrap_err(), "write group leader");
    every_waiter_fails_then_close(db, "write group leader");
    reopen_holds(&fs, &acked);
}

/// The leader panics after sequencing its group and handing leadership
/// on: its sequence numbers never publish, so the next group's writer
/// waiting for publication must fail instead of waiting forever.
#[test]
fn a_panic_in_a_sequenced_group_fails_the_writers_waiting_for_publication() {
    let fs = MemFileSystem::new();
    let (gate, arrivals, opener) = Gate::new();
    let armed = Arc::new(AtomicBool::new(false));
    let a = Arc::clone(&armed);
    let db = Db::open(
        mem_dir(),
        options(&fs, move |p| match p {
            HookPoint::WriteGroupSequenced if a.swap(false, Ordering::SeqCst) => {
                gate.hold();
                injected(p)
            }
            _ => Ok(()),
        }),
    )
    .unwrap();
    let acked = write_some(&db, 0);
    armed.store(true, Ordering::SeqCst);
    let doomed = {
        let db = db.clone();
        start("the panicking leader", move || db.put(b"doomed", b"leader"))
    };
    arrived(&arrivals, "the panicking leader");
    let next = {
        let db = db.clone();
        start("the next group's writer", move || db.put(b"next", b"group"))
    };
    opener.send(()).unwrap();
    assert_panicked(&doomed.result().unwrap_err(), "write group leader");
    assert_panicked(&next.result().unwrap_err(), "write group leader");
    every_waiter_fails_then_close(db, "write group leader");
    reopen_holds(&fs, &acked);
}

/// A background thread that fails to start: open fails, the threads
/// already started are stopped and joined (none keeps the hook, which
/// they share through the options), and the LOCK is free again.
#[test]
fn a_failed_thread_spawn_at_open_leaves_no_thread_and_no_lock() {
    let fs = MemFileSystem::new();
    let acked = {
        let db = open_mem(&fs);
        write_some(&db, 0)
    };
    // Flush thread, WAL syncer, memtable block preparer, two compaction
    // threads.
    let threads = 5;
    for fail_at in 0..threads {
        let hook: TestHook = Arc::new(move |p: HookPoint| match p {
            HookPoint::SpawnThread(n) if n == fail_at => {
                Err(io::Error::other(format!("{INJECTED}: no thread {n}")))
            }
            _ => Ok(()),
        });
        let opts = Options {
            max_background_jobs: 3,
            test_hook: Some(Arc::clone(&hook)),
            ..mem_options(&fs)
        };
        let err = within("an open whose thread fails to start", move || {
            Db::open(mem_dir(), opts)
        })
        .unwrap_err();
        assert!(
            matches!(&err, Error::Io { op, .. } if *op == "spawn background thread"),
            "{err}"
        );
        assert!(err.to_string().contains(INJECTED), "{err}");
        assert_eq!(
            Arc::strong_count(&hook),
            1,
            "a thread started before thread {fail_at} failed is still running"
        );
        // The LOCK was released: the database opens, whole.
        reopen_holds(&fs, &acked);
    }
}
