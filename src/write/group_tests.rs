//! Which writers share a group, around write stalls and the WAL setting.
//!
//! These tests shape groups deterministically: a helper thread holds the
//! queue's leadership while writers join behind it in a known order, then
//! hands leadership to the first of them, which takes its group. Stalls
//! come from L0 at the stop trigger with `inline_background_work`: the
//! stalled leader compacts L0 itself, so the stall ends without timing.

use super::*;
use crate::error::Error;
use crate::fs::{FileLock, FileSystem, MemFileSystem, UnsyncedData, WritableFile};
use crate::options::Options;
use crate::read::ReadSpec;
use crate::write::pipeline::Room;
use bytes::Bytes;
use parking_lot::Condvar;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

fn dir() -> PathBuf {
    PathBuf::from("/db")
}

/// No background threads; L0 stops writes at two tables.
fn stall_options(fs: Arc<dyn FileSystem>) -> Options {
    Options {
        fs,
        inline_background_work: true,
        level0_file_num_compaction_trigger: 2,
        level0_slowdown_writes_trigger: 2,
        level0_stop_writes_trigger: 2,
        ..Options::default()
    }
}

fn open_db(options: Options) -> Arc<DbInner> {
    Arc::new(crate::open::open(&dir(), options).expect("open"))
}

/// Flush two tables into L0: the next write stalls.
fn reach_stop_trigger(db: &DbInner) {
    for i in 0..2 {
        db.write_with(&WriteOptions::default(), |b| {
            b.put(format!("table {i}"), "v")
        })
        .expect("write");
        db.flush_and_wait(&db.default_ks).expect("flush");
    }
    assert_eq!(db.default_ks.super_version.load().version.files(0).len(), 2);
}

fn get(db: &DbInner, key: &str) -> Option<Bytes> {
    db.get(&db.default_ks, key.as_bytes(), ReadSpec::default())
        .expect("get")
}

fn no_slowdown() -> WriteOptions {
    WriteOptions {
        no_slowdown: true,
        ..Default::default()
    }
}

/// Wait for a condition another thread brings about (not for time).
fn wait_until(cond: impl Fn() -> bool) {
    while !cond() {
        std::thread::yield_now();
    }
}

/// The write queue's leadership, held by a helper thread until released;
/// then the helper runs `then` as the leader and hands leadership on.
struct HeldLeadership {
    release: mpsc::Sender<()>,
    thread: JoinHandle<Result<()>>,
}

fn hold_leadership(
    db: &Arc<DbInner>,
    then: impl FnOnce(&DbInner, &mut Leadership<'_>) -> Result<()> + Send + 'static,
) -> HeldLeadership {
    let (leading_tx, leading) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let db = Arc::clone(db);
    let thread = std::thread::spawn(move || {
        db.write_path.pipeline.with_leadership(&*db, |leader| {
            leading_tx.send(()).expect("test alive");
            release_rx.recv().expect("test alive");
            then(&db, leader)
        })
    });
    leading.recv().expect("helper leads");
    HeldLeadership { release, thread }
}

impl HeldLeadership {
    fn release(self) -> Result<()> {
        self.release.send(()).expect("helper alive");
        self.thread.join().expect("helper panicked")
    }
}

/// Start a write of `key` and return once it waits in the queue.
fn queue_write(db: &Arc<DbInner>, key: &'static str, opts: WriteOptions) -> JoinHandle<Result<()>> {
    let queued = db.write_path.pipeline.queued();
    let writer = {
        let db = Arc::clone(db);
        std::thread::spawn(move || db.write_with(&opts, |b| b.put(key, "v")))
    };
    wait_until(|| db.write_path.pipeline.queued() == queued + 1);
    writer
}

fn join<T>(t: JoinHandle<T>) -> T {
    t.join().expect("writer panicked")
}

/// Regression (trust review item 9): the follower rode in its
/// `no_slowdown` leader's group and failed with it.
#[test]
fn a_normal_writer_behind_a_no_slowdown_leader_waits_out_the_stall() {
    let db = open_db(stall_options(Arc::new(MemFileSystem::new())));
    reach_stop_trigger(&db);
    let held = hold_leadership(&db, |_, _| Ok(()));
    let leader = queue_write(&db, "impatient leader", no_slowdown());
    let follower = queue_write(&db, "patient follower", WriteOptions::default());
    held.release().expect("helper");
    assert!(matches!(join(leader), Err(Error::WriteStall)));
    join(follower).expect("a normal write waits for the stall to end");
    assert!(get(&db, "patient follower").is_some());
    assert_eq!(get(&db, "impatient leader"), None);
    assert!(
        db.default_ks.super_version.load().version.files(0).len() < 2,
        "the stall ended"
    );
}

/// Regression (trust review item 9): the follower rode in its normal
/// leader's group and waited out the stall with it.
#[test]
fn a_no_slowdown_writer_behind_a_stalled_normal_leader_fails_fast() {
    let db = open_db(stall_options(Arc::new(MemFileSystem::new())));
    reach_stop_trigger(&db);
    let held = hold_leadership(&db, |_, _| Ok(()));
    let leader = queue_write(&db, "patient leader", WriteOptions::default());
    let follower = queue_write(&db, "impatient follower", no_slowdown());
    held.release().expect("helper");
    join(leader).expect("a normal write waits for the stall to end");
    assert!(matches!(join(follower), Err(Error::WriteStall)));
    assert!(get(&db, "patient leader").is_some());
    assert_eq!(get(&db, "impatient follower"), None);
}

/// A filesystem that holds every table creation while its gate is
/// closed: the flush or compaction that would end a stall stays in
/// progress until the test opens the gate.
struct GatedFs {
    fs: MemFileSystem,
    gate: Mutex<Gate>,
    changed: Condvar,
}

#[derive(Default)]
struct Gate {
    closed: bool,
    held: usize,
}

impl GatedFs {
    fn new() -> Arc<Self> {
        Arc::new(GatedFs {
            fs: MemFileSystem::new(),
            gate: Mutex::new(Gate::default()),
            changed: Condvar::new(),
        })
    }

    fn set_closed(&self, closed: bool) {
        self.gate.lock().closed = closed;
        self.changed.notify_all();
    }

    fn wait_for_held_creation(&self) {
        let mut g = self.gate.lock();
        while g.held == 0 {
            self.changed.wait(&mut g);
        }
    }
}

impl FileSystem for GatedFs {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.fs.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn WritableFile>> {
        if path.extension().is_some_and(|e| e == "sst") {
            let mut g = self.gate.lock();
            if g.closed {
                g.held += 1;
                self.changed.notify_all();
                while g.closed {
                    self.changed.wait(&mut g);
                }
                g.held -= 1;
            }
        }
        self.fs.create(path)
    }
    fn create_log(
        &self,
        path: &Path,
        expected: u64,
        kind: crate::fs::LogKind,
    ) -> std::io::Result<Box<dyn WritableFile>> {
        self.fs.create_log(path, expected, kind)
    }
    fn auto_log_kind(&self, dir: &Path) -> crate::fs::LogKind {
        self.fs.auto_log_kind(dir)
    }
    fn read(&self, path: &Path) -> std::io::Result<Bytes> {
        self.fs.read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.fs.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.fs.remove(path)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.fs.list(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.fs.exists(path)
    }
    fn file_size(&self, path: &Path) -> std::io::Result<u64> {
        self.fs.file_size(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.fs.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn FileLock>> {
        self.fs.lock(path)
    }
}

/// A `no_slowdown` writer that arrives while the leader waits out a
/// stall fails at once; it does not queue behind the stall. (The group
/// split alone does not give this: the leader fails the queued ones when
/// its stall begins, not the ones that come later.)
#[test]
fn a_no_slowdown_writer_arriving_during_a_stall_fails_without_queueing() {
    let fs = GatedFs::new();
    let db = open_db(stall_options(Arc::clone(&fs) as Arc<dyn FileSystem>));
    reach_stop_trigger(&db);
    fs.set_closed(true);
    let leader = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            db.write_with(&WriteOptions::default(), |b| b.put("patient leader", "v"))
        })
    };
    // With no background threads, only the stalled leader compacts: its
    // compaction's output table is held, so the stall is in progress.
    fs.wait_for_held_creation();
    let late = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || db.write_with(&no_slowdown(), |b| b.put("impatient", "v")))
    };
    wait_until(|| late.is_finished() || db.write_path.pipeline.queued() > 0);
    let failed_without_waiting = late.is_finished();
    fs.set_closed(false);
    assert!(
        failed_without_waiting,
        "the no_slowdown writer queued behind the stall"
    );
    assert!(matches!(join(late), Err(Error::WriteStall)));
    join(leader).expect("the leader waits out the stall");
    assert_eq!(get(&db, "impatient"), None);
}

/// A group is logged or not as its leader says: a logged (sync) write
/// must not ride in a `disable_wal` leader's group, where it would be
/// acknowledged but never logged; nor an unlogged one in a logged group.
#[test]
fn groups_never_mix_logged_and_unlogged_writes() {
    let fs = MemFileSystem::new();
    let options = Options {
        fs: Arc::new(fs.clone()),
        inline_background_work: true,
        ..Options::default()
    };
    let db = open_db(options.clone());
    let unlogged = WriteOptions {
        disable_wal: true,
        ..Default::default()
    };
    let synced = WriteOptions {
        sync: true,
        ..Default::default()
    };
    for (leader, follower) in [
        (("unlogged leader", &unlogged), ("synced follower", &synced)),
        (("synced leader", &synced), ("unlogged follower", &unlogged)),
    ] {
        let held = hold_leadership(&db, |_, _| Ok(()));
        let leader = queue_write(&db, leader.0, leader.1.clone());
        let follower = queue_write(&db, follower.0, follower.1.clone());
        held.release().expect("helper");
        join(leader).expect("leader");
        join(follower).expect("follower");
    }
    fs.crash();
    drop(db);
    fs.power_loss(UnsyncedData::Drop);
    let db = open_db(options);
    assert!(
        get(&db, "synced follower").is_some(),
        "an acknowledged sync write was lost"
    );
    assert!(get(&db, "synced leader").is_some());
    assert_eq!(get(&db, "unlogged leader"), None);
    assert_eq!(
        get(&db, "unlogged follower"),
        None,
        "a disable_wal write was logged"
    );
}

/// Regression: a manual flush took a recycled writer slot, with the
/// options of the slot's last write (`no_slowdown`): it was failed as a
/// `no_slowdown` writer when a stall began and returned `Closed`. A
/// control writer's ask is its own now, never a slot's; the slot's last
/// write here was `no_slowdown`.
#[test]
fn a_manual_flush_queued_at_a_stall_is_not_failed_by_a_recycled_slots_options() {
    let db = open_db(stall_options(Arc::new(MemFileSystem::new())));
    reach_stop_trigger(&db);
    db.write_with(&no_slowdown(), |b| b.put("no_slowdown", "v"))
        .expect_err("stalled");
    // The helper, once released, meets the stall as a leader.
    let room = Room {
        no_slowdown: false,
        force: None,
        bytes: 1,
    };
    let held = hold_leadership(&db, move |db, leader| db.make_room(leader, room));
    let flush = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || db.flush_and_wait(&db.default_ks))
    };
    wait_until(|| db.write_path.pipeline.queued() == 1);
    held.release().expect("the helper waits out the stall");
    join(flush).expect("the flush is not failed");
}
