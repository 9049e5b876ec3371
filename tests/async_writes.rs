//! Async writes (`Db::write_async` and friends): correctness against a
//! model under two executors, mixed with blocking writers in the same
//! groups; what a dropped write means; and that a write waiting for its
//! fsync or for a write stall leaves the executor thread free.

#![allow(clippy::unwrap_used)]

mod common;

use common::{mem_dir, mem_options, power_cycle, scan_all, Rng};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use strata::fs::{FileLock, FileSystem, MemFileSystem, WritableFile};
use strata::{Db, HookPoint, Options, WriteOptions};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
/// A batch's writes (a `None` value deletes), and whether it is synced.
type ScriptedBatch = (Vec<(Vec<u8>, Option<Vec<u8>>)>, bool);

/// A bound on a hang, not a synchronisation: a test that would deadlock
/// fails after it instead.
const HANG: Duration = Duration::from_secs(60);

/// One writer's random batches over its own keys (so the expected state
/// does not depend on how writers interleave): returns the batches, each
/// with the writes it makes and whether it is synced.
fn script(seed: u64, writer: usize, batches: usize) -> Vec<ScriptedBatch> {
    let mut rng = Rng(seed ^ (writer as u64).wrapping_mul(0x9e37_79b9));
    (0..batches)
        .map(|b| {
            let ops = (0..1 + rng.below(4))
                .map(|_| {
                    let key = format!("w{writer:03}-k{:03}", rng.below(40)).into_bytes();
                    let value = (!rng.one_in(5)).then(|| {
                        let len = 10 + rng.below(300) as usize;
                        let mut v = format!("{writer}-{b}-").into_bytes();
                        v.resize(len, b'v');
                        v
                    });
                    (key, value)
                })
                .collect();
            (ops, rng.one_in(3))
        })
        .collect()
}

fn apply(model: &mut Model, ops: &[(Vec<u8>, Option<Vec<u8>>)]) {
    for (k, v) in ops {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

/// Small memtables and an L0 that stalls soon, so rotations, flushes and
/// write stalls happen while the writers run.
fn stalling_options(fs: &MemFileSystem) -> Options {
    Options {
        level0_file_num_compaction_trigger: 2,
        level0_slowdown_writes_trigger: 3,
        level0_stop_writes_trigger: 5,
        max_write_buffer_number: 2,
        write_buffer_size: 64 * 1024,
        ..mem_options(fs)
    }
}

async fn run_async_writer(db: Db, seed: u64, writer: usize, batches: usize) -> Model {
    let mut model = Model::new();
    for (ops, sync) in script(seed, writer, batches) {
        let opts = WriteOptions {
            sync,
            ..Default::default()
        };
        let result = if ops.len() == 1 && writer.is_multiple_of(2) {
            match &ops[0] {
                (k, Some(v)) => db.put_async(k, v, &opts).await,
                (k, None) => db.delete_async(k, &opts).await,
            }
        } else {
            let mut batch = db.new_batch();
            for (k, v) in &ops {
                match v {
                    Some(v) => batch.put(k, v),
                    None => batch.delete(k),
                }
            }
            db.write_async(batch, &opts).await
        };
        result.expect("async write");
        apply(&mut model, &ops);
    }
    model
}

fn run_blocking_writer(db: &Db, seed: u64, writer: usize, batches: usize) -> Model {
    let mut model = Model::new();
    for (ops, sync) in script(seed, writer, batches) {
        let mut batch = db.new_batch();
        for (k, v) in &ops {
            match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            }
        }
        let opts = WriteOptions {
            sync,
            ..Default::default()
        };
        db.write_opt(batch, &opts).expect("blocking write");
        apply(&mut model, &ops);
    }
    model
}

/// The database holds exactly `expected`, and still does after a reopen.
fn check(fs: &MemFileSystem, db: Db, expected: &Model) {
    let want: Vec<(Vec<u8>, Vec<u8>)> = expected.clone().into_iter().collect();
    assert!(scan_all(&db) == want, "the database differs from the model");
    db.close().expect("close");
    let db = Db::open(mem_dir(), stalling_options(fs)).expect("reopen");
    assert!(
        scan_all(&db) == want,
        "the reopened database differs from the model"
    );
}

const SEED: u64 = 0x5eed_a5c1;
const TASKS: usize = 48;
const BLOCKING: usize = 3;
const BATCHES: usize = 120;

/// Many tasks on tokio's multi-threaded runtime, and blocking writers
/// beside them in the same groups, through rotations, flushes and stalls.
#[test]
fn async_writes_match_the_model_under_tokio() {
    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), stalling_options(&fs)).expect("open");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let expected = rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| tokio::spawn(run_async_writer(db.clone(), SEED, t, BATCHES)))
            .collect();
        let blocking: Vec<_> = (0..BLOCKING)
            .map(|b| {
                let db = db.clone();
                tokio::task::spawn_blocking(move || {
                    run_blocking_writer(&db, SEED, TASKS + b, BATCHES)
                })
            })
            .collect();
        let mut expected = Model::new();
        for t in tasks {
            expected.extend(t.await.expect("task"));
        }
        for b in blocking {
            expected.extend(b.await.expect("blocking task"));
        }
        db.wait_for_compactions_async().await.expect("compactions");
        expected
    });
    check(&fs, db, &expected);
}

/// The same under another executor: the engine assumes no runtime.
#[test]
fn async_writes_match_the_model_under_a_futures_thread_pool() {
    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), stalling_options(&fs)).expect("open");
    let pool = futures_executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .expect("pool");
    let (tx, rx) = mpsc::channel();
    for t in 0..TASKS {
        let (db, tx) = (db.clone(), tx.clone());
        pool.spawn_ok(async move {
            let model = run_async_writer(db, SEED + 1, t, BATCHES).await;
            tx.send(model).expect("send");
        });
    }
    drop(tx);
    let mut expected = Model::new();
    for model in rx.iter() {
        expected.extend(model);
    }
    futures_executor::block_on(db.flush_wal_async(true)).expect("flush WAL");
    check(&fs, db, &expected);
}

/// A waker that counts nothing and wakes no one: the tests below poll by
/// hand, to stop a future at a chosen step.
struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Noop));
    f.poll(&mut Context::from_waker(&waker))
}

/// Blocks the first leader that reaches `WriteGroupLeader` once armed,
/// until released.
#[derive(Clone, Default)]
struct LeaderGate {
    armed: Arc<AtomicBool>,
    entered: Arc<Mutex<Option<mpsc::Sender<()>>>>,
    release: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
}

impl LeaderGate {
    /// Arm it: returns (entered, release).
    fn arm(&self) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        *self.entered.lock().unwrap() = Some(entered_tx);
        *self.release.lock().unwrap() = Some(release_rx);
        self.armed.store(true, Ordering::SeqCst);
        (entered, release)
    }

    fn options(&self, fs: &MemFileSystem) -> Options {
        let gate = self.clone();
        Options {
            test_hook: Some(Arc::new(move |point| {
                if point == HookPoint::WriteGroupLeader && gate.armed.swap(false, Ordering::SeqCst)
                {
                    let entered = gate.entered.lock().unwrap().take();
                    let release = gate.release.lock().unwrap().take();
                    entered.expect("armed").send(()).expect("entered");
                    release
                        .expect("armed")
                        .recv_timeout(HANG)
                        .expect("released");
                }
                Ok(())
            })),
            ..mem_options(fs)
        }
    }
}

/// A write dropped while it waits in the queue is withdrawn: not applied,
/// and the queue goes on (were it left there, the leader would hand
/// leadership to a writer no one polls, and every later write would hang).
#[test]
fn a_write_dropped_in_the_queue_is_not_applied() {
    let fs = MemFileSystem::new();
    let gate = LeaderGate::default();
    let db = Db::open(mem_dir(), gate.options(&fs)).expect("open");
    let (entered, release) = gate.arm();
    let leader = {
        let db = db.clone();
        std::thread::spawn(move || db.put(b"leader", b"1"))
    };
    entered
        .recv_timeout(HANG)
        .expect("the leader holds the queue");
    {
        let mut dropped = pin!(db.put_async(b"dropped", b"x", &WriteOptions::default()));
        assert!(
            poll_once(dropped.as_mut()).is_pending(),
            "it waits behind the held leader"
        );
    }
    release.send(()).expect("release");
    leader.join().expect("leader").expect("leader's write");
    let (done, finished) = mpsc::channel();
    let later = {
        let db = db.clone();
        std::thread::spawn(move || done.send(db.put(b"after", b"2")))
    };
    let after = finished.recv_timeout(HANG).expect("the queue went on");
    after.expect("a later write");
    later.join().expect("later writer").expect("sent");
    assert_eq!(db.get(b"dropped").unwrap(), None);
    assert_eq!(db.get(b"leader").unwrap().as_deref(), Some(&b"1"[..]));
    db.close().unwrap();
    let db = Db::open(mem_dir(), mem_options(&fs)).unwrap();
    assert_eq!(db.get(b"dropped").unwrap(), None, "it reached the WAL");
    assert_eq!(db.get(b"after").unwrap().as_deref(), Some(&b"2"[..]));
}

/// A write dropped once a leader took it into its group is applied, and
/// durable like the rest of its group.
#[test]
fn a_write_dropped_after_its_leader_took_it_is_applied() {
    let fs = MemFileSystem::new();
    let gate = LeaderGate::default();
    let db = Db::open(mem_dir(), gate.options(&fs)).expect("open");
    let (entered, release) = gate.arm();
    let first = {
        let db = db.clone();
        std::thread::spawn(move || db.put(b"first", b"1"))
    };
    entered
        .recv_timeout(HANG)
        .expect("the first leader holds the queue");
    let sync = WriteOptions {
        sync: true,
        ..Default::default()
    };
    let mut next_leader = Box::pin(db.put_async(b"next-leader", b"2", &sync));
    let mut taken = Box::pin(db.put_async(b"taken", b"3", &sync));
    assert!(poll_once(next_leader.as_mut()).is_pending(), "queued");
    assert!(poll_once(taken.as_mut()).is_pending(), "queued behind it");
    release.send(()).expect("release");
    first.join().expect("first").expect("first write");
    // The first leader handed leadership to `next_leader`: polled, it
    // takes `taken` into its group and sequences both (and may finish its
    // write in this poll: then it must not be polled again).
    let led = poll_once(next_leader.as_mut());
    drop(taken);
    let result = match led {
        Poll::Ready(result) => result,
        Poll::Pending => futures_executor::block_on(next_leader),
    };
    result.expect("the leader's write");
    // Its group is published only once both batches are in: `taken`'s is.
    assert_eq!(db.get(b"taken").unwrap().as_deref(), Some(&b"3"[..]));
    // And synced with its group: it survives a power loss.
    common::power_cycle(&fs, db, strata::fs::UnsyncedData::Drop);
    let db = common::open_mem(&fs);
    assert_eq!(db.get(b"taken").unwrap().as_deref(), Some(&b"3"[..]));
}

/// A file system whose WAL fsyncs wait at a gate once it is closed,
/// reporting each fsync that arrives there.
#[derive(Clone)]
struct GatedFs {
    fs: MemFileSystem,
    gate: Arc<SyncGate>,
}

#[derive(Default)]
struct SyncGate {
    closed: AtomicBool,
    arrived: Mutex<Option<tokio::sync::mpsc::UnboundedSender<()>>>,
    open: Mutex<Option<mpsc::Receiver<()>>>,
    /// The name of the thread that created each WAL, in order.
    log_creators: Mutex<Vec<Option<String>>>,
}

struct GatedFile {
    file: Box<dyn WritableFile>,
    gate: Arc<SyncGate>,
}

impl WritableFile for GatedFile {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.file.append(data)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
    fn sync(&mut self) -> std::io::Result<()> {
        if self.gate.closed.swap(false, Ordering::SeqCst) {
            if let Some(arrived) = self.gate.arrived.lock().unwrap().take() {
                let _ = arrived.send(());
            }
            if let Some(open) = self.gate.open.lock().unwrap().take() {
                let _ = open.recv_timeout(HANG);
            }
        }
        self.file.sync()
    }
    fn len(&self) -> u64 {
        self.file.len()
    }
}

impl FileSystem for GatedFs {
    fn create_dir_all(&self, d: &Path) -> std::io::Result<()> {
        self.fs.create_dir_all(d)
    }
    fn create(&self, p: &Path) -> std::io::Result<Box<dyn WritableFile>> {
        let file = self.fs.create(p)?;
        if p.extension().is_some_and(|e| e == "log") {
            let creator = std::thread::current().name().map(str::to_owned);
            self.gate.log_creators.lock().unwrap().push(creator);
            return Ok(Box::new(GatedFile {
                file,
                gate: Arc::clone(&self.gate),
            }));
        }
        Ok(file)
    }
    fn read(&self, p: &Path) -> std::io::Result<strata::Bytes> {
        self.fs.read(p)
    }
    fn rename(&self, f: &Path, t: &Path) -> std::io::Result<()> {
        self.fs.rename(f, t)
    }
    fn remove(&self, p: &Path) -> std::io::Result<()> {
        self.fs.remove(p)
    }
    fn list(&self, d: &Path) -> std::io::Result<Vec<String>> {
        self.fs.list(d)
    }
    fn exists(&self, p: &Path) -> bool {
        self.fs.exists(p)
    }
    fn file_size(&self, p: &Path) -> std::io::Result<u64> {
        self.fs.file_size(p)
    }
    fn sync_dir(&self, d: &Path) -> std::io::Result<()> {
        self.fs.sync_dir(d)
    }
    fn lock(&self, p: &Path) -> std::io::Result<Box<dyn FileLock>> {
        self.fs.lock(p)
    }
}

/// On a runtime with a single thread, a `sync: true` write waiting for
/// its fsync leaves the thread to other tasks: here the task that lets
/// the fsync finish. Had the write blocked the thread (a blocking `put`
/// does, and so would an inline fsync), that task could never run and
/// the fsync never end.
#[test]
fn a_sync_write_waiting_for_its_fsync_leaves_the_executor_thread_free() {
    let fs = MemFileSystem::new();
    let gate = Arc::new(SyncGate::default());
    let gated = GatedFs {
        fs: fs.clone(),
        gate: Arc::clone(&gate),
    };
    let db = Db::open(
        mem_dir(),
        Options {
            fs: Arc::new(gated),
            ..mem_options(&fs)
        },
    )
    .expect("open");
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let (open, open_rx) = mpsc::channel();
    *gate.arrived.lock().unwrap() = Some(arrived_tx);
    *gate.open.lock().unwrap() = Some(open_rx);
    gate.closed.store(true, Ordering::SeqCst);
    let (done, finished) = mpsc::channel();
    let runner = {
        let db = db.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            let result = rt.block_on(async move {
                let sync = WriteOptions {
                    sync: true,
                    ..Default::default()
                };
                let write = tokio::spawn({
                    let db = db.clone();
                    async move { db.put_async(b"synced", b"1", &sync).await }
                });
                // Runs only while the write waits without the thread.
                arrived.recv().await.expect("the fsync reached the gate");
                open.send(()).expect("open the gate");
                write.await.expect("task")
            });
            let _ = done.send(result);
        })
    };
    let result = finished
        .recv_timeout(HANG)
        .expect("the executor thread was blocked by the write");
    result.expect("the synced write");
    runner.join().expect("runner");
    assert_eq!(db.get(b"synced").unwrap().as_deref(), Some(&b"1"[..]));
}

/// Blocks every flush while armed, so the memtables fill and writes stall.
#[derive(Clone, Default)]
struct FlushGate {
    held: Arc<(Mutex<bool>, std::sync::Condvar)>,
}

impl FlushGate {
    fn hold(&self) {
        *self.held.0.lock().unwrap() = true;
    }
    fn release(&self) {
        *self.held.0.lock().unwrap() = false;
        self.held.1.notify_all();
    }
    fn wait(&self) {
        let (lock, cv) = &*self.held;
        let mut held = lock.lock().unwrap();
        while *held {
            held = cv.wait_timeout(held, HANG).unwrap().0;
        }
    }
}

/// A database whose writes stall: its flushes wait at the returned gate
/// (held), and the memtable and the one frozen memtable allowed are
/// full, so a write must wait for a flush (a `no_slowdown` write found
/// out when).
fn open_stalled(fs: &MemFileSystem) -> (Db, FlushGate) {
    let flushes = FlushGate::default();
    let options = {
        let flushes = flushes.clone();
        Options {
            write_buffer_size: 64 * 1024,
            max_write_buffer_number: 2,
            test_hook: Some(Arc::new(move |point| {
                if point == HookPoint::Flush {
                    flushes.wait();
                }
                Ok(())
            })),
            ..mem_options(fs)
        }
    };
    let db = Db::open(mem_dir(), options).expect("open");
    flushes.hold();
    let value = vec![b'v'; 1024];
    let no_slowdown = WriteOptions {
        no_slowdown: true,
        ..Default::default()
    };
    for i in 0.. {
        match db.put_opt(format!("k{i:04}"), &value, &no_slowdown) {
            Ok(()) => assert!(i < 1000, "no stall after {i} writes"),
            Err(strata::Error::WriteStall) => break,
            Err(e) => panic!("{e}"),
        }
    }
    (db, flushes)
}

/// Poll `write` once, failing (not hanging) if the poll blocks in the
/// stall: a watchdog releases the flushes after `HANG`.
fn poll_once_in_stall<F: Future>(
    flushes: &FlushGate,
    write: std::pin::Pin<&mut F>,
) -> Poll<F::Output> {
    let (polled, watchdog) = mpsc::channel::<()>();
    let timed_out = Arc::new(AtomicBool::new(false));
    {
        let (flushes, timed_out) = (flushes.clone(), Arc::clone(&timed_out));
        std::thread::spawn(move || {
            if watchdog.recv_timeout(HANG).is_err() {
                timed_out.store(true, Ordering::SeqCst);
                flushes.release();
            }
        });
    }
    let poll = poll_once(write);
    let _ = polled.send(());
    assert!(
        !timed_out.load(Ordering::SeqCst),
        "the poll blocked in the stall"
    );
    poll
}

/// A leader that meets a write stall parks its task (the poll returns)
/// instead of blocking; dropped there, its own write is not applied and
/// the writer queued behind it leads once the stall ends.
#[test]
fn a_stalled_async_leader_parks_and_can_be_dropped() {
    let fs = MemFileSystem::new();
    let (db, flushes) = open_stalled(&fs);
    let mut stalled = Box::pin(db.put_async(b"stalled", b"x", &WriteOptions::default()));
    assert!(
        poll_once_in_stall(&flushes, stalled.as_mut()).is_pending(),
        "it waits out the stall"
    );
    // An async writer queues behind the stalled leader. (A blocking one
    // would take its group over: see the test below.)
    let mut behind = Box::pin(db.put_async(b"behind", b"1", &WriteOptions::default()));
    assert!(poll_once(behind.as_mut()).is_pending(), "queued");
    drop(stalled);
    flushes.release();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || done.send(futures_executor::block_on(behind)));
    finished
        .recv_timeout(HANG)
        .expect("the writer behind the dropped leader went on")
        .expect("its write");
    assert_eq!(db.get(b"behind").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        db.get(b"stalled").unwrap(),
        None,
        "the dropped leader's write was applied"
    );
}

/// A blocking writer arriving behind an async leader parked in a write
/// stall does not wait for that task to be polled again (it may never
/// be): it takes the parked group over, waits out the stall on its own
/// thread, and writes the group, then its own write. The task, polled
/// afterwards, finds its write done. (It used to wait for the task's
/// next poll; with the task never polled, forever.)
#[test]
fn a_blocking_writer_behind_a_parked_async_leader_leads_its_group_without_its_task() {
    let fs = MemFileSystem::new();
    let (db, flushes) = open_stalled(&fs);
    let mut parked = Box::pin(db.put_async(b"parked", b"x", &WriteOptions::default()));
    assert!(
        poll_once_in_stall(&flushes, parked.as_mut()).is_pending(),
        "it waits out the stall"
    );
    let (done, finished) = mpsc::channel();
    {
        let db = db.clone();
        std::thread::spawn(move || done.send(db.put(b"behind", b"1")));
    }
    // Not polled again until the blocking write is through.
    flushes.release();
    finished
        .recv_timeout(HANG)
        .expect("the blocking writer waited for the parked task")
        .expect("its write");
    assert_eq!(db.get(b"behind").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        db.get(b"parked").unwrap().as_deref(),
        Some(&b"x"[..]),
        "the parked group was written with the blocking writer's"
    );
    assert!(matches!(poll_once(parked.as_mut()), Poll::Ready(Ok(()))));
    db.put(b"after", b"2").expect("the queue goes on");
}

/// On a runtime with one thread, a task's blocking `put` behind an async
/// writer of another task does not deadlock. Leadership reaches the async
/// writer while the runtime's only thread is blocked in the `put`, so its
/// task cannot run; the blocking writer leads the async writer's group
/// in its place. (Before, it waited for that task: a deadlock.)
#[test]
fn a_blocking_put_on_a_single_threaded_runtime_does_not_wait_for_an_async_writer() {
    let fs = MemFileSystem::new();
    let gate = LeaderGate::default();
    let db = Db::open(mem_dir(), gate.options(&fs)).expect("open");
    let (entered, release) = gate.arm();
    let first = {
        let db = db.clone();
        std::thread::spawn(move || db.put(b"first", b"0"))
    };
    entered
        .recv_timeout(HANG)
        .expect("the first leader holds the queue");
    let (done, finished) = mpsc::channel();
    {
        let db = db.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            let result = rt.block_on(async move {
                let (queued_tx, queued) = tokio::sync::oneshot::channel::<()>();
                let writer = {
                    let db = db.clone();
                    tokio::spawn(async move {
                        let mut write =
                            Box::pin(db.put_async(b"async", b"1", &WriteOptions::default()));
                        // Queued behind the held leader, then left to the
                        // executor.
                        assert!(poll_once(write.as_mut()).is_pending(), "queued");
                        queued_tx.send(()).expect("test alive");
                        write.await
                    })
                };
                queued.await.expect("the async writer queued");
                // The leader goes on and hands leadership to the async
                // writer, whose task cannot run while this one blocks.
                release.send(()).expect("release");
                let blocking = db.put(b"blocking", b"2");
                let written = writer.await.expect("async task");
                (blocking, written)
            });
            let _ = done.send(result);
        });
    }
    let (blocking, written) = finished
        .recv_timeout(HANG)
        .expect("the blocking put waited for a task its thread was to run");
    blocking.expect("the blocking put");
    written.expect("the async write");
    first.join().expect("first").expect("first write");
    assert_eq!(db.get(b"async").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"blocking").unwrap().as_deref(), Some(&b"2"[..]));
}

/// A waker that counts its wakes and unparks the test thread.
struct CountingWaker {
    thread: std::thread::Thread,
    wakes: std::sync::atomic::AtomicUsize,
}

impl CountingWaker {
    fn new() -> Arc<Self> {
        Arc::new(CountingWaker {
            thread: std::thread::current(),
            wakes: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }

    /// Park until woken at least once more than `seen` (or `HANG`
    /// passes: then the test fails on what it finds).
    fn wait_past(&self, seen: usize) {
        let until = std::time::Instant::now() + HANG;
        while self.wakes() <= seen {
            let now = std::time::Instant::now();
            if now >= until {
                return;
            }
            std::thread::park_timeout(until - now);
        }
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Open a database whose WAL fsyncs can be held at a gate.
fn open_gated(fs: &MemFileSystem) -> (Db, Arc<SyncGate>) {
    let gate = Arc::new(SyncGate::default());
    let gated = GatedFs {
        fs: fs.clone(),
        gate: Arc::clone(&gate),
    };
    let db = Db::open(
        mem_dir(),
        Options {
            fs: Arc::new(gated),
            ..mem_options(fs)
        },
    )
    .expect("open");
    (db, gate)
}

/// Close the gate: the next WAL fsync reports its arrival and waits
/// until the returned sender sends.
fn hold_next_fsync(
    gate: &SyncGate,
) -> (tokio::sync::mpsc::UnboundedReceiver<()>, mpsc::Sender<()>) {
    let (arrived_tx, arrived) = tokio::sync::mpsc::unbounded_channel();
    let (open, open_rx) = mpsc::channel();
    *gate.arrived.lock().unwrap() = Some(arrived_tx);
    *gate.open.lock().unwrap() = Some(open_rx);
    gate.closed.store(true, Ordering::SeqCst);
    (arrived, open)
}

/// An async write whose record is pushed while `Db::flush_wal` holds the
/// WAL's drain lock (in its fsync) cannot write the record out itself;
/// the flush, releasing the lock, must, and wake the task. (A blocking
/// writer escapes by re-checking now and then; a task is polled only
/// when woken, so it waited forever.)
#[test]
fn an_async_write_behind_a_flush_wal_is_written_and_woken() {
    let fs = MemFileSystem::new();
    let (db, gate) = open_gated(&fs);
    db.put(b"a", b"1").unwrap(); // written, not synced: the flush fsyncs
    let (mut arrived, open) = hold_next_fsync(&gate);
    let flusher = {
        let db = db.clone();
        std::thread::spawn(move || db.flush_wal(true))
    };
    arrived
        .blocking_recv()
        .expect("the flush holds the drain lock, in its fsync");
    let mut write = Box::pin(db.put_async(b"b", b"2", &WriteOptions::default()));
    let counter = CountingWaker::new();
    let waker = Waker::from(Arc::clone(&counter));
    let mut cx = Context::from_waker(&waker);
    assert!(
        write.as_mut().poll(&mut cx).is_pending(),
        "its record cannot be written while the flush holds the lock"
    );
    open.send(()).expect("open the gate");
    flusher.join().expect("flusher").expect("flush_wal");
    counter.wait_past(0);
    assert!(counter.wakes() > 0, "the task was never woken");
    match write.as_mut().poll(&mut cx) {
        Poll::Ready(result) => result.expect("the write"),
        Poll::Pending => panic!("woken, but its record is not written"),
    }
    assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
}

/// A file system whose WAL append panics once, when armed.
#[derive(Clone)]
struct PanickyFs {
    fs: MemFileSystem,
    armed: Arc<AtomicBool>,
}

struct PanickyFile {
    file: Box<dyn WritableFile>,
    armed: Arc<AtomicBool>,
}

impl WritableFile for PanickyFile {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!("injected WAL append panic");
        }
        self.file.append(data)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync()
    }
    fn len(&self) -> u64 {
        self.file.len()
    }
}

impl FileSystem for PanickyFs {
    fn create_dir_all(&self, d: &Path) -> std::io::Result<()> {
        self.fs.create_dir_all(d)
    }
    fn create(&self, p: &Path) -> std::io::Result<Box<dyn WritableFile>> {
        let file = self.fs.create(p)?;
        if p.extension().is_some_and(|e| e == "log") {
            return Ok(Box::new(PanickyFile {
                file,
                armed: Arc::clone(&self.armed),
            }));
        }
        Ok(file)
    }
    fn read(&self, p: &Path) -> std::io::Result<strata::Bytes> {
        self.fs.read(p)
    }
    fn rename(&self, f: &Path, t: &Path) -> std::io::Result<()> {
        self.fs.rename(f, t)
    }
    fn remove(&self, p: &Path) -> std::io::Result<()> {
        self.fs.remove(p)
    }
    fn list(&self, d: &Path) -> std::io::Result<Vec<String>> {
        self.fs.list(d)
    }
    fn exists(&self, p: &Path) -> bool {
        self.fs.exists(p)
    }
    fn file_size(&self, p: &Path) -> std::io::Result<u64> {
        self.fs.file_size(p)
    }
    fn sync_dir(&self, d: &Path) -> std::io::Result<()> {
        self.fs.sync_dir(d)
    }
    fn lock(&self, p: &Path) -> std::io::Result<Box<dyn FileLock>> {
        self.fs.lock(p)
    }
}

/// A panic in an async writer's poll outside its leading (here the WAL
/// append of its own group's record, while it completes the group) is
/// what a blocking writer's panic is: the write fails with the panic as
/// the background error, and later writers fail at once instead of
/// waiting for a group that is never completed.
#[test]
fn a_panic_while_an_async_writer_completes_its_group_fails_later_writes() {
    let fs = MemFileSystem::new();
    let armed = Arc::new(AtomicBool::new(false));
    let panicky = PanickyFs {
        fs: fs.clone(),
        armed: Arc::clone(&armed),
    };
    let db = Db::open(
        mem_dir(),
        Options {
            fs: Arc::new(panicky),
            ..mem_options(&fs)
        },
    )
    .expect("open");
    db.put(b"a", b"1").unwrap();
    armed.store(true, Ordering::SeqCst);
    let first = {
        let db = db.clone();
        std::thread::spawn(move || {
            futures_executor::block_on(db.put_async(b"b", b"2", &WriteOptions::default()))
        })
    };
    let first = first
        .join()
        .expect("the panic unwound out of the write's poll");
    assert!(
        matches!(first, Err(strata::Error::Background(_))),
        "{first:?}"
    );
    assert!(!armed.load(Ordering::SeqCst), "the append panicked");
    let (done, finished) = mpsc::channel();
    {
        let db = db.clone();
        std::thread::spawn(move || done.send(db.put(b"c", b"3")));
    }
    let later = finished.recv_timeout(HANG).expect("a later write hung");
    assert!(
        matches!(later, Err(strata::Error::Background(_))),
        "{later:?}"
    );
    drop(db);
}

/// The completion of an async leader's group (publishing it once its
/// record is written) does not wait for the leader's task to be polled
/// again: here the task is never polled again after its first poll, and
/// its write is published, and a blocking write after it goes through,
/// all the same. (Were the completion the task's, every later group
/// would wait for an executor to poll it: a blocking `put` inside a
/// single-threaded runtime would deadlock.)
#[test]
fn a_group_is_published_without_its_async_leader_being_polled_again() {
    let fs = MemFileSystem::new();
    let (db, gate) = open_gated(&fs);
    db.put(b"a", b"1").unwrap(); // written, not synced: the flush fsyncs
    let (mut arrived, open) = hold_next_fsync(&gate);
    let flusher = {
        let db = db.clone();
        std::thread::spawn(move || db.flush_wal(true))
    };
    arrived
        .blocking_recv()
        .expect("the flush holds the drain lock, in its fsync");
    let mut unpolled = Box::pin(db.put_async(b"b", b"2", &WriteOptions::default()));
    assert!(
        poll_once(unpolled.as_mut()).is_pending(),
        "its record cannot be written while the flush holds the lock"
    );
    open.send(()).expect("open the gate");
    flusher.join().expect("flusher").expect("flush_wal");
    let (done, finished) = mpsc::channel();
    {
        let db = db.clone();
        std::thread::spawn(move || done.send(db.put(b"c", b"3")));
    }
    finished
        .recv_timeout(HANG)
        .expect("a later write waited for the unpolled task")
        .expect("the later write");
    assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(db.get(b"c").unwrap().as_deref(), Some(&b"3"[..]));
    assert!(matches!(poll_once(unpolled.as_mut()), Poll::Ready(Ok(()))));
}

/// An async leader delayed by `delayed_write_rate` waits out the delay
/// even when polled for nothing before the deadline (executors may poll
/// spuriously): the delay ends at its deadline or at background progress,
/// not at the next poll.
#[test]
fn a_delayed_async_write_is_not_let_through_by_a_spurious_poll() {
    let fs = MemFileSystem::new();
    // Compactions are held at their start: no background progress ends
    // the delay while the test looks.
    let compactions = FlushGate::default();
    let (entered_tx, entered) = mpsc::channel();
    let entered_tx = Mutex::new(Some(entered_tx));
    let options = {
        let compactions = compactions.clone();
        Options {
            level0_file_num_compaction_trigger: 1,
            level0_slowdown_writes_trigger: 1,
            level0_stop_writes_trigger: 100,
            // About a minute for the write below: far past this test.
            delayed_write_rate: 1,
            test_hook: Some(Arc::new(move |point| {
                if point == HookPoint::Compaction {
                    if let Some(tx) = entered_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                    compactions.wait();
                }
                Ok(())
            })),
            ..mem_options(&fs)
        }
    };
    let db = Db::open(mem_dir(), options).expect("open");
    compactions.hold();
    /// Released however the test ends, so the database can close.
    struct Release(FlushGate);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.release();
        }
    }
    let _release = Release(compactions.clone());
    db.put(b"a", b"1").unwrap();
    db.flush().unwrap(); // one table in L0: writes are delayed
    entered
        .recv_timeout(HANG)
        .expect("the compaction of L0 started");
    let mut delayed = Box::pin(db.put_async(b"delayed", vec![b'v'; 60], &WriteOptions::default()));
    assert!(poll_once(delayed.as_mut()).is_pending(), "it is delayed");
    assert!(
        poll_once(delayed.as_mut()).is_pending(),
        "a spurious poll let the delayed write through"
    );
    assert_eq!(db.get(b"delayed").unwrap(), None);
    drop(delayed); // parked in its delay: withdrawn, not applied
    assert_eq!(db.get(b"delayed").unwrap(), None);
}

/// A stalled async leader that took other writers into its group, dropped
/// while parked: its own write is not applied, the writers it took go
/// back to the front of the queue (not lost, not applied twice), and the
/// first of them leads once the stall ends.
#[test]
fn a_stalled_async_leader_dropped_with_taken_members_requeues_them() {
    let fs = MemFileSystem::new();
    let flushes = FlushGate::default();
    let leaders = LeaderGate::default();
    let options = {
        let flushes = flushes.clone();
        let leader_hook = leaders
            .options(&fs)
            .test_hook
            .expect("the leader gate's hook");
        Options {
            write_buffer_size: 64 * 1024,
            max_write_buffer_number: 2,
            test_hook: Some(Arc::new(move |point| {
                if point == HookPoint::Flush {
                    flushes.wait();
                }
                leader_hook(point)
            })),
            ..mem_options(&fs)
        }
    };
    let db = Db::open(mem_dir(), options).expect("open");
    flushes.hold();
    /// Released however the test ends, so the database can close.
    struct Release(FlushGate);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.release();
        }
    }
    let _release = Release(flushes.clone());
    let value = vec![b'v'; 1024];
    let no_slowdown = WriteOptions {
        no_slowdown: true,
        ..Default::default()
    };
    for i in 0.. {
        match db.put_opt(format!("k{i:04}"), &value, &no_slowdown) {
            Ok(()) => assert!(i < 1000, "no stall after {i} writes"),
            Err(strata::Error::WriteStall) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // A leader held at the gate, so that two async writers queue up.
    let (entered, release) = leaders.arm();
    let gatekeeper = {
        let db = db.clone();
        std::thread::spawn(move || db.put_opt(b"gatekeeper", b"0", &no_slowdown))
    };
    entered.recv_timeout(HANG).expect("the gatekeeper leads");
    let mut leader = Box::pin(db.put_async(b"leader", b"1", &WriteOptions::default()));
    let mut member = Box::pin(db.put_async(b"member", b"2", &WriteOptions::default()));
    assert!(poll_once(leader.as_mut()).is_pending(), "queued");
    assert!(poll_once(member.as_mut()).is_pending(), "queued behind it");
    release.send(()).expect("release the gatekeeper");
    let kept_out = gatekeeper.join().expect("gatekeeper");
    assert!(
        matches!(kept_out, Err(strata::Error::WriteStall)),
        "{kept_out:?}"
    );
    // Promoted, it takes `member` into its group and parks in the stall.
    assert!(
        poll_once(leader.as_mut()).is_pending(),
        "it waits out the stall"
    );
    assert!(
        poll_once(member.as_mut()).is_pending(),
        "taken, not released"
    );
    drop(leader);
    flushes.release();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || done.send(futures_executor::block_on(member)));
    finished
        .recv_timeout(HANG)
        .expect("the taken writer was lost")
        .expect("the taken writer's write");
    assert_eq!(db.get(b"member").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(
        db.get(b"leader").unwrap(),
        None,
        "the dropped leader's write"
    );
    assert_eq!(db.get(b"gatekeeper").unwrap(), None);
    db.put(b"after", b"3").expect("the queue goes on");
}

/// Keyspaces through the async API: `Keyspace::put_async` and
/// `delete_async` write the keyspace they are called on, a batch across
/// keyspaces is applied whole, and a write is checked as a blocking one
/// is: a batch naming another database's keyspace is refused, and so is
/// a write to a dropped keyspace.
#[test]
fn async_writes_reach_their_keyspaces_and_are_checked_as_blocking_writes_are() {
    use futures_executor::block_on;
    let fs = MemFileSystem::new();
    let db = common::open_mem(&fs);
    let users = db.keyspace("users").unwrap();
    let sync = WriteOptions {
        sync: true,
        ..Default::default()
    };
    block_on(users.put_async(b"u1", b"ada", &sync)).unwrap();
    block_on(users.put_async(b"u2", b"bob", &sync)).unwrap();
    block_on(users.delete_async(b"u2", &sync)).unwrap();
    assert_eq!(users.get(b"u1").unwrap().as_deref(), Some(&b"ada"[..]));
    assert_eq!(users.get(b"u2").unwrap(), None);
    assert_eq!(
        db.get(b"u1").unwrap(),
        None,
        "the default keyspace is another"
    );

    let mut both = db.new_batch();
    both.put(b"count", b"1");
    both.put_in(&users, b"u3", b"cy");
    block_on(db.write_async(both, &sync)).unwrap();
    assert_eq!(db.get(b"count").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(users.get(b"u3").unwrap().as_deref(), Some(&b"cy"[..]));

    // Another database with a keyspace of the same id: its handle must
    // not write into this one.
    let other_fs = MemFileSystem::new();
    let other = common::open_mem(&other_fs);
    let foreign = other.keyspace("users").unwrap();
    let mut batch = db.new_batch();
    batch.put_in(&foreign, b"u4", b"mallory");
    let refused = block_on(db.write_async(batch, &sync));
    assert!(
        matches!(refused, Err(strata::Error::InvalidArgument(_))),
        "{refused:?}"
    );
    assert_eq!(users.get(b"u4").unwrap(), None);

    // A batch built before its keyspace is dropped, and a write through
    // the dropped keyspace's handle.
    let mut before_drop = db.new_batch();
    before_drop.put_in(&users, b"u5", b"late");
    db.drop_keyspace("users").unwrap();
    let late = block_on(db.write_async(before_drop, &sync));
    assert!(
        matches!(late, Err(strata::Error::KeyspaceDropped { .. })),
        "{late:?}"
    );
    let through_handle = block_on(users.put_async(b"u6", b"late", &sync));
    assert!(
        matches!(through_handle, Err(strata::Error::KeyspaceDropped { .. })),
        "{through_handle:?}"
    );
    let delete = block_on(users.delete_async(b"u1", &sync));
    assert!(
        matches!(delete, Err(strata::Error::KeyspaceDropped { .. })),
        "{delete:?}"
    );

    // What was acknowledged survives a power loss.
    common::power_cycle(&fs, db, strata::fs::UnsyncedData::Drop);
    let db = common::open_mem(&fs);
    assert_eq!(db.get(b"count").unwrap().as_deref(), Some(&b"1"[..]));
    assert!(db.keyspace_names().iter().all(|n| n != "users"));
}

/// A write future polled again after it resolved says so, with an error,
/// instead of never resolving (it used to answer `Pending` with no waker
/// kept, and an executor polling it waited forever: the hang in
/// `a_write_dropped_after_its_leader_took_it_is_applied`, which polled
/// its leader once more after that poll had finished the write).
#[test]
fn a_write_future_polled_after_it_resolved_is_an_error_not_a_hang() {
    let fs = MemFileSystem::new();
    let db = common::open_mem(&fs);
    let sync = WriteOptions {
        sync: true,
        ..Default::default()
    };
    let mut write = Box::pin(db.put_async(b"k", b"v", &sync));
    let first = futures_executor::block_on(write.as_mut());
    first.expect("the write");
    let again = poll_once(write.as_mut());
    assert!(
        matches!(again, Poll::Ready(Err(strata::Error::InvalidArgument(_)))),
        "{again:?}"
    );
    // The same for a write refused before it started, and for an empty
    // sync batch (a sync point).
    let mut refused = Box::pin(db.put_async(vec![0u8; 10 << 20], b"v", &sync));
    assert!(futures_executor::block_on(refused.as_mut()).is_err());
    assert!(matches!(
        poll_once(refused.as_mut()),
        Poll::Ready(Err(strata::Error::InvalidArgument(_)))
    ));
    let mut sync_point = Box::pin(db.write_async(db.new_batch(), &sync));
    futures_executor::block_on(sync_point.as_mut()).expect("a sync point");
    assert!(matches!(
        poll_once(sync_point.as_mut()),
        Poll::Ready(Err(strata::Error::InvalidArgument(_)))
    ));
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// `delete_range_async` and `delete_prefix_async`, on the database and on
/// a keyspace, delete what their blocking forms delete; an inverted range
/// resolves to `InvalidArgument` and writes nothing; and a synced range
/// delete survives a power loss that drops every unsynced byte.
#[test]
fn range_and_prefix_deletes_resolve_as_their_blocking_forms() {
    use strata::fs::UnsyncedData;
    use strata::Error;
    let fs = MemFileSystem::new();
    let db = common::open_mem(&fs);
    let users = db.keyspace("users").unwrap();
    let sync = WriteOptions {
        sync: true,
        ..WriteOptions::default()
    };
    for k in ["a", "b1", "b2", "c", "p:1", "p:2", "q"] {
        db.put(k, "v").unwrap();
        users.put(k, "u").unwrap();
    }
    let keys = |pairs: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<String> {
        pairs
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    };
    let users_keys = |users: &strata::Keyspace| -> Vec<String> {
        users
            .iter()
            .map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap())
            .collect()
    };
    futures_executor::block_on(async {
        db.delete_range_async("b".."c", &sync).await.unwrap();
        db.delete_prefix_async("p:", &WriteOptions::default())
            .await
            .unwrap();
        users.delete_range_async("a"..="b1", &sync).await.unwrap();
        users
            .delete_prefix_async("q", &WriteOptions::default())
            .await
            .unwrap();
        // Inverted: refused, and nothing written.
        let inverted = db.delete_range_async("z".."a", &sync).await;
        assert!(
            matches!(inverted, Err(Error::InvalidArgument(_))),
            "{inverted:?}"
        );
        let inverted = users.delete_range_async("z".."a", &sync).await;
        assert!(
            matches!(inverted, Err(Error::InvalidArgument(_))),
            "{inverted:?}"
        );
        // Empty: nothing to delete, and it still resolves.
        db.delete_range_async("c".."c", &sync).await.unwrap();
    });
    let db_expected = ["a", "c", "q"];
    let users_expected = ["b2", "c", "p:1", "p:2"];
    assert_eq!(keys(scan_all(&db)), db_expected);
    assert_eq!(users_keys(&users), users_expected);

    // The last call, an empty range with `sync`, is a sync point: every
    // write before it is durable, the unsynced prefix delete included.
    drop(users);
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = common::open_mem(&fs);
    assert_eq!(keys(scan_all(&db)), db_expected);
    let users = db.keyspace("users").unwrap();
    assert_eq!(users_keys(&users), users_expected);

    // A dropped keyspace's handle fails as its blocking form does.
    db.drop_keyspace("users").unwrap();
    let dropped = futures_executor::block_on(users.delete_range_async("a".."z", &sync));
    assert!(
        matches!(dropped, Err(Error::KeyspaceDropped { .. })),
        "{dropped:?}"
    );
    let dropped = futures_executor::block_on(users.delete_prefix_async("", &sync));
    assert!(
        matches!(dropped, Err(Error::KeyspaceDropped { .. })),
        "{dropped:?}"
    );
}

/// Write to the default keyspace with blocking puts until its active
/// memtable is full (`write_buffer_size`), and stop there: the next write
/// rotates it.
fn fill_active_memtable(db: &Db, write_buffer_size: usize, prefix: &str) {
    let value = vec![b'f'; 1024];
    for i in 0.. {
        let size: usize = db
            .property("strata.cur-size-active-mem-table")
            .expect("property")
            .parse()
            .expect("a number");
        if size >= write_buffer_size {
            return;
        }
        assert!(i < 10_000, "the memtable never filled");
        db.put(format!("{prefix}{i:05}"), &value).expect("fill");
    }
}

/// Poll `write` once in a task of the current runtime and report when
/// that poll returned; then drive it to the end. Were the first poll to
/// block the runtime's thread, nothing else on that thread would run.
fn spawn_polled_once<F>(
    write: F,
) -> (
    tokio::task::JoinHandle<F::Output>,
    tokio::sync::oneshot::Receiver<bool>,
)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (polled_tx, polled) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut write = Box::pin(write);
        let pending = poll_once(write.as_mut()).is_pending();
        let _ = polled_tx.send(pending);
        write.await
    });
    (task, polled)
}

/// Run `body` on a runtime with one thread, on a thread of its own;
/// fails (not hangs) if it is not done in `HANG`: the runtime's thread
/// was blocked.
fn on_one_thread<T: Send + 'static>(
    body: impl Future<Output = T> + Send + 'static,
    what: &str,
) -> T {
    let (done, finished) = mpsc::channel();
    let runner = std::thread::Builder::new()
        .name("one-worker-runtime".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            let _ = done.send(rt.block_on(body));
        })
        .expect("runner");
    match finished.recv_timeout(HANG) {
        Ok(result) => {
            runner.join().expect("runner");
            result
        }
        // The body panicked: its panic is the test's.
        Err(mpsc::RecvTimeoutError::Disconnected) => match runner.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the runner ended without an answer"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the runtime's only thread was blocked: {what}")
        }
    }
}

/// A write whose group finds the WAL buffer full while someone else holds
/// the drain lock (here `flush_wal`, in its fsync) parks its task instead
/// of blocking its executor thread until the lock is let go: another
/// task on that thread (the one that lets the fsync end) still runs, and
/// both writes land, in order, none dropped. (The leader used to wait
/// for the drain lock inside its poll: with one thread, forever.)
#[test]
fn a_write_at_a_full_wal_buffer_leaves_the_executor_thread_free() {
    let fs = MemFileSystem::new();
    let gate = Arc::new(SyncGate::default());
    let gated = GatedFs {
        fs: fs.clone(),
        gate: Arc::clone(&gate),
    };
    let db = Db::open(
        mem_dir(),
        Options {
            fs: Arc::new(gated),
            wal_buffer_capacity_bytes: 4096,
            ..mem_options(&fs)
        },
    )
    .expect("open");
    db.put(b"a", b"1").unwrap(); // written, not synced: the flush fsyncs
    let (mut arrived, open) = hold_next_fsync(&gate);
    let flusher = {
        let db = db.clone();
        std::thread::spawn(move || db.flush_wal(true))
    };
    arrived
        .blocking_recv()
        .expect("the flush holds the drain lock, in its fsync");
    let (first, second) = on_one_thread(
        {
            let db = db.clone();
            async move {
                let value = vec![b'x'; 3000];
                let opts = WriteOptions::default();
                // Its record fills the buffer: nobody may write it out.
                let (first, first_polled) =
                    spawn_polled_once(db.put_async(b"first", &value, &opts));
                let first_pending = first_polled.await.unwrap();
                // Its record does not fit behind the first one.
                let (second, second_polled) =
                    spawn_polled_once(db.put_async(b"second", &value, &opts));
                let second_pending = second_polled.await.unwrap();
                // Runs only if neither write holds the thread.
                open.send(()).expect("open the gate");
                assert!(first_pending, "its record waits for the drain lock");
                assert!(second_pending, "the buffer is full");
                (first.await.expect("task"), second.await.expect("task"))
            }
        },
        "a write waited for room in the WAL buffer",
    );
    first.expect("the first write");
    second.expect("the second write");
    flusher.join().expect("flusher").expect("flush_wal");
    assert_eq!(db.get(b"first").unwrap().map(|v| v.len()), Some(3000));
    assert_eq!(db.get(b"second").unwrap().map(|v| v.len()), Some(3000));
    db.close().expect("close");
    let db = Db::open(mem_dir(), mem_options(&fs)).expect("reopen");
    assert_eq!(db.get(b"second").unwrap().map(|v| v.len()), Some(3000));
}

/// A write whose group rotates the memtable while someone else holds the
/// WAL's drain lock (`flush_wal`, in its fsync) parks its task until the
/// lock is let go, instead of blocking its executor thread: the rotation
/// writes the old WAL out and switches files under that lock. Another
/// task on the thread (the one that lets the fsync end) still runs. (The
/// rotation used to wait for the lock inside the poll: with one thread,
/// forever.)
#[test]
fn a_rotation_behind_a_held_drain_lock_leaves_the_executor_thread_free() {
    const WRITE_BUFFER: usize = 64 * 1024;
    let fs = MemFileSystem::new();
    let gate = Arc::new(SyncGate::default());
    let gated = GatedFs {
        fs: fs.clone(),
        gate: Arc::clone(&gate),
    };
    let db = Db::open(
        mem_dir(),
        Options {
            fs: Arc::new(gated),
            write_buffer_size: WRITE_BUFFER,
            ..mem_options(&fs)
        },
    )
    .expect("open");
    fill_active_memtable(&db, WRITE_BUFFER, "fill");
    let (mut arrived, open) = hold_next_fsync(&gate);
    let flusher = {
        let db = db.clone();
        std::thread::spawn(move || db.flush_wal(true))
    };
    arrived
        .blocking_recv()
        .expect("the flush holds the drain lock, in its fsync");
    let written = on_one_thread(
        {
            let db = db.clone();
            async move {
                let (write, polled) =
                    spawn_polled_once(db.put_async(b"rotates", b"1", &WriteOptions::default()));
                let pending = polled.await.unwrap();
                open.send(()).expect("open the gate");
                assert!(pending, "the rotation waits for the drain lock");
                write.await.expect("task")
            }
        },
        "a rotation waited for the WAL's drain lock",
    );
    written.expect("the write");
    flusher.join().expect("flusher").expect("flush_wal");
    let size: usize = db
        .property("strata.cur-size-active-mem-table")
        .unwrap()
        .parse()
        .unwrap();
    assert!(size < WRITE_BUFFER, "the full memtable was not rotated");
    assert_eq!(db.get(b"rotates").unwrap().as_deref(), Some(&b"1"[..]));
    db.close().expect("close");
    let db = Db::open(mem_dir(), mem_options(&fs)).expect("reopen");
    assert_eq!(db.get(b"rotates").unwrap().as_deref(), Some(&b"1"[..]));
    assert!(db.get(b"fill00000").unwrap().is_some());
}

/// A rotation by an async leader that finds no spare WAL made ahead does
/// not create one in its poll (a file create, an allocation and a
/// directory fsync, up to tens of milliseconds on a busy disk): its task
/// waits while the flush thread makes it. Here the flush thread is held
/// in a flush, so no spare is ready; the task that releases it runs on
/// the write's executor thread, and every WAL created from then on is
/// the flush thread's.
#[test]
fn an_async_rotation_without_a_spare_wal_leaves_its_creation_to_the_flush_thread() {
    const WRITE_BUFFER: usize = 64 * 1024;
    let fs = MemFileSystem::new();
    let gate = Arc::new(SyncGate::default());
    let gated = GatedFs {
        fs: fs.clone(),
        gate: Arc::clone(&gate),
    };
    let flushes = FlushGate::default();
    let (entered_tx, entered) = mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let db = Db::open(
        mem_dir(),
        Options {
            fs: Arc::new(gated),
            write_buffer_size: WRITE_BUFFER,
            // Room for three frozen memtables: no stall before the third
            // rotation.
            max_write_buffer_number: 4,
            test_hook: Some(Arc::new({
                let flushes = flushes.clone();
                move |point| {
                    if point == HookPoint::Flush {
                        let _ = entered_tx.lock().unwrap().send(());
                        flushes.wait();
                    }
                    Ok(())
                }
            })),
            ..mem_options(&fs)
        },
    )
    .expect("open");
    flushes.hold();
    // Released however the test ends: a flush held at close would hang it.
    struct Release(FlushGate);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.release();
        }
    }
    let _release = Release(flushes.clone());
    // First rotation: the flush thread makes the next spare, then holds
    // in the flush of the frozen memtable.
    fill_active_memtable(&db, WRITE_BUFFER, "one");
    db.put(b"rotate-1", b"1").expect("first rotation");
    entered
        .recv_timeout(HANG)
        .expect("the flush thread reached the flush");
    // Second rotation (blocking) takes that spare; none is made now.
    fill_active_memtable(&db, WRITE_BUFFER, "two");
    db.put(b"rotate-2", b"2").expect("second rotation");
    fill_active_memtable(&db, WRITE_BUFFER, "three");
    let created_before = gate.log_creators.lock().unwrap().len();
    let written = on_one_thread(
        {
            let db = db.clone();
            let flushes = flushes.clone();
            async move {
                let (write, polled) =
                    spawn_polled_once(db.put_async(b"rotate-3", b"3", &WriteOptions::default()));
                let pending = polled.await.unwrap();
                flushes.release();
                assert!(pending, "the rotation waits for a spare WAL");
                write.await.expect("task")
            }
        },
        "a rotation waited for a spare WAL",
    );
    written.expect("the third rotation's write");
    let creators = gate.log_creators.lock().unwrap()[created_before..].to_vec();
    assert!(!creators.is_empty(), "the third rotation used no new WAL");
    assert!(
        creators
            .iter()
            .all(|c| c.as_deref() == Some("strata-flush")),
        "a WAL was created on another thread than the flush thread: {creators:?}"
    );
    assert_eq!(db.get(b"rotate-3").unwrap().as_deref(), Some(&b"3"[..]));
    db.close().expect("close");
    let db = Db::open(mem_dir(), mem_options(&fs)).expect("reopen");
    for key in ["rotate-1", "rotate-2", "rotate-3"] {
        assert!(db.get(key).unwrap().is_some(), "{key} lost");
    }
}
