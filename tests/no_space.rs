//! A full disk (a quota on the in-memory filesystem) and other failed
//! background work: writes stop with a clear error, and go on once the
//! cause is gone, through `Db::resume` or on their own, with no file left
//! behind and nothing acknowledged lost.
//!
//! The acknowledgement rule every check here relies on (`Ledger::check`).
//! Writes are issued one at a time, write `i` putting key `i`. After any
//! recovery (a resume, a reopen, a power loss and reopen):
//! - every write acknowledged before the last successful resume (or flush)
//!   is there, whatever durability it asked for: a resume writes every
//!   memtable to a synced table before it returns;
//! - there is no hole: if write `j` is there, so is every acknowledged
//!   write before it;
//! - a write that failed may be there or not (its outcome is unknown: its
//!   batch may have reached the memtable before the error), and nothing
//!   else is there; values are the ones written.
//!
//! Calls that could hang wait with a bound (`BOUND`): a bound on a hang,
//! never a synchronisation.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata::fs::{FaultPlan, FileSystem, FsOp, MemFileSystem, UnsyncedData};
use strata::inspect::{parse_file_name, read_current_manifest, read_manifest, FileKind};
use strata::{Db, Error, HookPoint, Options, WalWriteMode, WriteOptions};

const BOUND: Duration = Duration::from_secs(60);

/// Options for these tests: automatic retries off unless a test turns
/// them on, so `resume()` is what is tested.
fn options(fs: &MemFileSystem, inline: bool, mode: WalWriteMode) -> Options {
    Options {
        inline_background_work: inline,
        wal_write_mode: mode,
        max_bgerror_resume_count: 0,
        ..mem_options(fs)
    }
}

fn big_value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(1000, b'a' + (i % 26) as u8);
    v
}

/// The index in a key, its prefix cut off.
fn index_of(digits: &[u8]) -> usize {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a key no test wrote: {digits:?}"))
}

/// The writes issued, in order, and what each was told.
#[derive(Default)]
struct Ledger {
    acknowledged: Vec<bool>,
    /// Writes before this index that were acknowledged must be there.
    durable: usize,
    /// Bytes of each value (0: `big_value`).
    value_len: usize,
    /// The keys' prefix: `key` (common's `key(i)`) unless set, so that
    /// each writer thread keeps a ledger of its own.
    prefix: &'static str,
}

impl Ledger {
    fn key(&self, i: usize) -> Vec<u8> {
        format!("{}{i:08}", self.prefix_or_default()).into_bytes()
    }

    fn prefix_or_default(&self) -> &'static str {
        if self.prefix.is_empty() {
            "key"
        } else {
            self.prefix
        }
    }

    fn value(&self, i: usize) -> Vec<u8> {
        let mut v = big_value(i);
        if self.value_len > 0 {
            v.resize(self.value_len, b'v');
        }
        v
    }

    /// Issue the next write and note its outcome.
    fn write(&mut self, db: &Db, opts: &WriteOptions) -> Result<(), Error> {
        let i = self.acknowledged.len();
        let r = db.put_opt(self.key(i), self.value(i), opts);
        self.acknowledged.push(r.is_ok());
        r
    }

    /// The next write's index, for a write issued elsewhere.
    fn issued_elsewhere(&mut self, acknowledged: bool) {
        self.acknowledged.push(acknowledged);
    }

    /// A resume or flush succeeded: everything acknowledged so far is
    /// durable.
    fn all_durable(&mut self) {
        self.durable = self.acknowledged.len();
    }

    /// Check the rule in the module comment against what `db` holds.
    fn check(&self, db: &Db, when: &str) {
        let mut present = vec![false; self.acknowledged.len()];
        let prefix = self.prefix_or_default();
        for item in db.prefix(prefix) {
            let (k, v) = item.expect("scan");
            let i = index_of(&k[prefix.len()..]);
            assert!(i < present.len(), "{when}: key {i} was never written");
            assert!(v == self.value(i), "{when}: key {i} holds a wrong value");
            present[i] = true;
        }
        let lost = |upto: usize| (0..upto).find(|&i| self.acknowledged[i] && !present[i]);
        if let Some(i) = lost(self.durable) {
            panic!("{when}: write {i}, acknowledged before a resume or flush, was lost");
        }
        if let Some(last) = present.iter().rposition(|&p| p) {
            if let Some(i) = lost(last) {
                panic!("{when}: a hole: write {last} is there, acknowledged write {i} is not");
            }
        }
    }
}

fn no_sync() -> WriteOptions {
    WriteOptions::default()
}

fn synced() -> WriteOptions {
    WriteOptions {
        sync: true,
        ..WriteOptions::default()
    }
}

/// Write until writes stop for good: the background error. Failures
/// before it (a rotation that could not create its WAL) must be no-space
/// errors too.
fn fill_until_stopped(db: &Db, ledger: &mut Ledger) -> Error {
    for _ in 0..100_000 {
        match ledger.write(db, &no_sync()) {
            Ok(()) => {}
            Err(e @ Error::Background(_)) => return e,
            Err(e) => assert!(e.is_no_space(), "a write failed for another reason: {e}"),
        }
    }
    panic!("writes never stopped on a full disk");
}

/// Every table in the directory is in the version on disk. REQUIRES: no
/// flush or compaction writing one.
fn assert_tables_live(fs: &MemFileSystem, when: &str) {
    let dir = mem_dir();
    let (manifest, data) = read_current_manifest(fs, &dir).unwrap();
    let contents = read_manifest(&manifest, &data).unwrap();
    for name in fs.list(&dir).unwrap() {
        if let Some(FileKind::Table(n)) = parse_file_name(&name) {
            assert!(
                contents.all_tables().any(|(_, _, meta)| meta.number == n),
                "{when}: table {name} is not in the version"
            );
        }
    }
}

/// No leftovers: the directory holds the files the version on
/// disk references, the current WAL and at most a spare one; nothing a
/// failure left behind. REQUIRES: no frozen memtable (after a resume or
/// a flush), so every live WAL is at or above the log number.
fn assert_no_orphans(fs: &MemFileSystem, when: &str) {
    let dir = mem_dir();
    let (manifest, data) = read_current_manifest(fs, &dir).unwrap();
    let contents = read_manifest(&manifest, &data).unwrap();
    let live: HashSet<u64> = contents
        .all_tables()
        .map(|(_, _, meta)| meta.number)
        .collect();
    let mut wals = Vec::new();
    for name in fs.list(&dir).unwrap() {
        match parse_file_name(&name) {
            Some(FileKind::Table(n)) => {
                assert!(
                    live.contains(&n),
                    "{when}: table {name} is not in the version"
                )
            }
            Some(FileKind::Wal(n)) => {
                assert!(
                    n >= contents.log_number(),
                    "{when}: WAL {name} is older than the log number {}",
                    contents.log_number()
                );
                wals.push(name);
            }
            Some(FileKind::Manifest(_)) => assert!(
                manifest.ends_with(&name),
                "{when}: {name} is not the current manifest"
            ),
            Some(FileKind::Current | FileKind::Lock) => {}
            _ => panic!("{when}: stray file {name}"),
        }
    }
    assert!(
        (1..=2).contains(&wals.len()),
        "{when}: WALs besides the current one and a spare: {wals:?}"
    );
}

#[test]
fn a_full_disk_stops_writes_with_a_clear_error_and_resume_brings_them_back() {
    // Room for several flushes (one of them meets the full disk), or for
    // less than the memtable holds after a flush (a WAL append meets it).
    for (seed, room) in [(0, 600 << 10), (1, 20 << 10), (2, 607 << 10), (3, 9 << 10)] {
        let fs = MemFileSystem::new();
        // Appended WALs: a full disk meets the WAL append itself.
        let opts = || options(&fs, true, WalWriteMode::Write);
        let db = Db::open(mem_dir(), opts()).unwrap();
        let mut ledger = Ledger::default();
        for _ in 0..200 {
            ledger.write(&db, &no_sync()).unwrap();
        }
        if room < 64 << 10 {
            db.flush().unwrap();
        }
        fs.set_quota(Some(fs.used_bytes() + room));
        let stopped = fill_until_stopped(&db, &mut ledger);
        assert!(stopped.is_no_space(), "{stopped}");
        let text = stopped.to_string();
        assert!(
            text.contains("no space left on device") && text.contains("/db/0"),
            "the error names neither the cause nor the file: {text}"
        );
        assert!(text.contains("Db::resume()"), "no remedy named: {text}");
        // Stopped for good: writes keep failing.
        let again = ledger.write(&db, &no_sync()).unwrap_err();
        assert!(matches!(again, Error::Background(_)), "{again}");
        // Still full: a resume fails and changes nothing, and leaves no
        // table behind to take the room a retry needs.
        let e = db.resume().unwrap_err();
        assert!(e.is_no_space(), "{e}");
        assert_tables_live(&fs, "after a failed resume");
        let again = ledger.write(&db, &no_sync()).unwrap_err();
        assert!(again.is_no_space(), "{again}");
        ledger.check(&db, "while full");

        fs.set_quota(None);
        db.resume().unwrap();
        ledger.all_durable();
        ledger.check(&db, "after the resume");
        assert_no_orphans(&fs, "after the resume");
        for _ in 0..300 {
            ledger.write(&db, &no_sync()).unwrap();
        }
        ledger.check(&db, "after writing on");
        // The power loss keeps a random subset of the unsynced pages; the
        // WAL is synced first (the open does not yet tell a hole in an
        // unsynced WAL tail from damage), so what it tests is that what
        // the resume made durable, and the WALs it abandoned, do not
        // depend on pages it did not sync.
        ledger.write(&db, &synced()).unwrap();
        ledger.all_durable();
        power_cycle(&fs, db, UnsyncedData::KeepRandomPages(seed));
        let db = Db::open(mem_dir(), opts()).unwrap();
        ledger.check(&db, "after a power loss");
        db.put(b"zz", b"still writable").unwrap();
    }
}

#[test]
fn failed_wal_creations_leave_no_file_behind_and_writes_go_on_once_there_is_room() {
    let fs = MemFileSystem::new();
    // Mapped WALs (MemFileSystem's default): a new WAL is allocated
    // 256 KiB at creation, at least, so a disk with less room fails its
    // creation. Inline background work: no flush frees room meanwhile.
    let opts = || options(&fs, true, WalWriteMode::Auto);
    let db = Db::open(mem_dir(), opts()).unwrap();
    let mut ledger = Ledger::default();
    for _ in 0..100 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    db.flush().unwrap();
    ledger.all_durable();
    fs.set_quota(Some(fs.used_bytes() + (256 << 10)));
    let mut failures = 0;
    while failures < 20 {
        if let Err(e) = ledger.write(&db, &no_sync()) {
            // Each write that needs a new memtable tries to create its WAL.
            assert!(!matches!(e, Error::Background(_)), "{e}");
            assert!(e.is_no_space(), "{e}");
            let text = e.to_string();
            assert!(
                text.contains("create WAL") && text.contains(".log"),
                "the WAL is not named: {text}"
            );
            failures += 1;
        }
    }
    let logs = files_with_ext(&fs, &mem_dir(), ".log");
    assert_eq!(logs.len(), 1, "failed WAL creations left files: {logs:?}");
    fs.set_quota(None);
    // No background job failed: the next rotation creates its WAL.
    for _ in 0..500 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    db.flush().unwrap();
    ledger.all_durable();
    assert_no_orphans(&fs, "after writes went on");
    ledger.check(&db, "after writes went on");
    drop(db);
    let db = Db::open(mem_dir(), opts()).unwrap();
    ledger.check(&db, "after a reopen");
}

/// The size of the largest WAL in the directory (the one in use, grown
/// past any spare).
fn largest_wal(fs: &MemFileSystem) -> u64 {
    files_with_ext(fs, &mem_dir(), ".log")
        .iter()
        .map(|p| fs.file_size(p).unwrap())
        .max()
        .unwrap_or(0)
}

/// Options with a memtable far larger than the WALs here grow: no
/// rotation, no flush, unless a test asks for one.
fn large_memtable(fs: &MemFileSystem, inline: bool) -> Options {
    Options {
        write_buffer_size: 32 << 20,
        ..options(fs, inline, WalWriteMode::MemoryMapped)
    }
}

#[test]
fn a_full_disk_stops_no_write_that_fits_in_the_wal_already_allocated() {
    // A mapped WAL grows half a step before it needs the room: a full disk
    // must not fail the write that asked early (writes would stop until a
    // resume), only one past what the WAL holds. (Appended WALs grow with
    // each write: there every write meets the full disk.) With and
    // without background threads (the syncer warms up each growth).
    for inline in [true, false] {
        let fs = MemFileSystem::new();
        let db = Db::open(mem_dir(), large_memtable(&fs, inline)).unwrap();
        let mut ledger = Ledger::default();
        // The WAL starts at 256 KiB and doubles half a step early: it is
        // 2 MiB once 512 KiB are written (and grows again at 1 MiB).
        while largest_wal(&fs) < 2 << 20 {
            ledger.write(&db, &no_sync()).unwrap();
        }
        // Room for a spare WAL (256 KiB) the flush thread may be making,
        // not for the next growth (2 MiB).
        fs.set_quota(Some(fs.used_bytes() + (300 << 10)));
        // Past 1 MiB and short of 2 MiB: 1.25 MiB more, at most 1100
        // bytes a write (key, value, batch header, record header).
        let from = ledger.acknowledged.len();
        while (ledger.acknowledged.len() - from) * 1100 < (1 << 20) + (256 << 10) {
            let i = ledger.acknowledged.len() - from;
            ledger
                .write(&db, &no_sync())
                .unwrap_or_else(|e| panic!("inline {inline}: write {i} fits in the WAL: {e}"));
        }
        // Past the WAL's end writes stop, once even the pages a write
        // needs do not fit.
        let stopped = fill_until_stopped(&db, &mut ledger);
        assert!(stopped.is_no_space(), "inline {inline}: {stopped}");
        ledger.check(&db, "while full");
        fs.set_quota(None);
        db.resume().unwrap();
        ledger.all_durable();
        ledger.check(&db, "after the resume");
        ledger.write(&db, &synced()).unwrap();
        ledger.check(&db, "after writing on");
    }
}

#[test]
fn a_resume_after_a_full_disk_starts_a_small_wal_whatever_size_the_last_one_reached() {
    let fs = MemFileSystem::new();
    // No background threads: no spare WAL for the resume to take.
    let db = Db::open(mem_dir(), large_memtable(&fs, true)).unwrap();
    let mut ledger = Ledger::default();
    for _ in 0..3000 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    // The next WAL made after this one (3 MiB) moved on is made as large.
    let last_wal = largest_wal(&fs);
    assert!(last_wal >= 2 << 20, "{last_wal} bytes: no large WAL");
    db.flush().unwrap();
    ledger.all_durable();
    ledger.write(&db, &no_sync()).unwrap();
    // Below what is in use: the next store into the WAL fails.
    fs.set_quota(Some(fs.used_bytes() - 1));
    let e = ledger.write(&db, &no_sync()).unwrap_err();
    assert!(matches!(e, Error::Background(_)) && e.is_no_space(), "{e}");
    // Room for a table of two writes and a small WAL, not for a WAL as
    // large as the last.
    fs.set_quota(Some(fs.used_bytes() + (1 << 20)));
    db.resume().unwrap();
    ledger.all_durable();
    assert_no_orphans(&fs, "after the resume");
    assert!(
        largest_wal(&fs) < last_wal,
        "the resume made a WAL as large as the last"
    );
    for _ in 0..300 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    ledger.check(&db, "after writing on");
    drop(db);
    let db = Db::open(mem_dir(), large_memtable(&fs, true)).unwrap();
    ledger.check(&db, "after a reopen");
}

#[test]
fn the_automatic_retries_resume_once_there_is_room_and_stop_after_the_limit() {
    let fs = MemFileSystem::new();
    let opts = Options {
        max_bgerror_resume_count: 2,
        ..options(&fs, true, WalWriteMode::Write)
    };
    let db = Db::open(mem_dir(), opts.clone()).unwrap();
    let mut ledger = Ledger::default();
    for _ in 0..100 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    fs.set_quota(Some(fs.used_bytes() + (400 << 10)));
    let stopped = fill_until_stopped(&db, &mut ledger);
    assert!(stopped.is_no_space(), "{stopped}");
    // Still full: each call makes one attempt, which fails.
    for attempt in 1..=2 {
        let e = db.run_background_work().unwrap_err();
        assert!(e.is_no_space(), "attempt {attempt}: {e}");
    }
    fs.set_quota(None);
    // Both attempts are spent: the error stands until a resume.
    let e = db.run_background_work().unwrap_err();
    assert!(e.is_no_space(), "{e}");
    assert!(ledger.write(&db, &no_sync()).is_err());
    db.resume().unwrap();
    ledger.all_durable();

    // A second full disk: the count starts over, and the first attempt
    // with room resumes.
    fs.set_quota(Some(fs.used_bytes() + (400 << 10)));
    let stopped = fill_until_stopped(&db, &mut ledger);
    assert!(stopped.is_no_space(), "{stopped}");
    fs.set_quota(None);
    db.run_background_work().unwrap();
    ledger.all_durable();
    for _ in 0..200 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    db.flush().unwrap();
    ledger.all_durable();
    assert_no_orphans(&fs, "after the automatic resume");
    ledger.check(&db, "after the automatic resume");
    power_cycle(&fs, db, UnsyncedData::KeepRandomPages(7));
    let db = Db::open(mem_dir(), opts).unwrap();
    ledger.check(&db, "after a power loss");
}

/// Signals each time a thread reaches the hook; holds the first one there
/// until the test opens the gate.
struct FirstHeld {
    arrived: Mutex<Sender<()>>,
    open: Mutex<Receiver<()>>,
    held: Mutex<bool>,
}

impl FirstHeld {
    fn new() -> (Arc<FirstHeld>, Receiver<()>, Sender<()>) {
        let (arrived, arrivals) = mpsc::channel();
        let (opener, open) = mpsc::channel();
        let gate = FirstHeld {
            arrived: Mutex::new(arrived),
            open: Mutex::new(open),
            held: Mutex::new(false),
        };
        (Arc::new(gate), arrivals, opener)
    }

    fn reached(&self) {
        let _ = self.arrived.lock().unwrap().send(());
        let first = !std::mem::replace(&mut *self.held.lock().unwrap(), true);
        if first {
            let _ = self.open.lock().unwrap().recv();
        }
    }
}

fn arrived(arrivals: &Receiver<()>, what: &str) {
    arrivals
        .recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("{what} never came"));
}

#[test]
fn the_flush_thread_resumes_on_its_own_once_there_is_room() {
    let fs = MemFileSystem::new();
    let (gate, arrivals, opener) = FirstHeld::new();
    let hook = {
        let gate = Arc::clone(&gate);
        move |point| {
            if point == HookPoint::AutoResumed {
                gate.reached();
            }
            Ok(())
        }
    };
    let opts = Options {
        max_bgerror_resume_count: u32::MAX,
        // Retried at once: the hook, not time, paces the test.
        bgerror_resume_retry_interval: Duration::ZERO,
        test_hook: Some(Arc::new(hook)),
        ..options(&fs, false, WalWriteMode::Write)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    let mut ledger = Ledger::default();
    for _ in 0..300 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    // An empty memtable, so the next writes need no rotation (which,
    // failing, would not stop writes).
    db.flush().unwrap();
    for _ in 0..10 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    // Over the quota at once: every write of data fails, so the first
    // automatic attempt must fail too.
    fs.set_quota(Some(0));
    let stopped = fill_until_stopped(&db, &mut ledger);
    assert!(stopped.is_no_space(), "{stopped}");
    arrived(&arrivals, "a first automatic attempt");
    assert!(
        ledger.write(&db, &no_sync()).is_err(),
        "resumed on a full disk"
    );
    fs.set_quota(None);
    opener.send(()).unwrap();
    arrived(&arrivals, "a second automatic attempt");
    for _ in 0..300 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    db.flush().unwrap();
    // Compactions write tables not yet in the version: wait them out.
    db.wait_for_compactions().unwrap();
    ledger.all_durable();
    assert_no_orphans(&fs, "after the automatic resume");
    ledger.check(&db, "after the automatic resume");
}

#[test]
fn a_writer_stalled_when_a_flush_fails_gets_the_error_and_writes_after_a_resume_succeed() {
    let fs = MemFileSystem::new();
    let (gate, arrivals, opener) = FirstHeld::new();
    let hook = {
        let gate = Arc::clone(&gate);
        move |point| {
            if point == HookPoint::Flush {
                gate.reached();
            }
            Ok(())
        }
    };
    let opts = Options {
        test_hook: Some(Arc::new(hook)),
        ..options(&fs, false, WalWriteMode::Auto)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    let mut ledger = Ledger::default();
    // Fill the first memtable until its flush starts (and is held), then
    // the second until a write would stall.
    let no_slowdown = WriteOptions {
        no_slowdown: true,
        ..WriteOptions::default()
    };
    let mut flush_held = false;
    loop {
        match ledger.write(&db, &no_slowdown) {
            Ok(()) => {}
            Err(Error::WriteStall) if flush_held => break,
            // The stall may come before the flush thread reaches the
            // hook; once held there, nothing ends the stall.
            Err(Error::WriteStall) => {
                arrived(&arrivals, "the first flush");
                flush_held = true;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(ledger.acknowledged.len() < 100_000, "writes never stalled");
    }
    // A normal writer waits out the stall: the held flush is what ends it.
    let writer = {
        let db = db.clone();
        let value = ledger.value(ledger.acknowledged.len());
        let k = ledger.key(ledger.acknowledged.len());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(db.put(k, value));
        });
        rx
    };
    // The flush fails: no room for its table.
    fs.set_quota(Some(0));
    opener.send(()).unwrap();
    let r = writer
        .recv_timeout(BOUND)
        .expect("the stalled writer hung after the flush failed");
    let e = r.expect_err("a write succeeded over a failed flush");
    assert!(e.is_no_space(), "{e}");
    ledger.issued_elsewhere(false);
    fs.set_quota(None);
    db.resume().unwrap();
    ledger.all_durable();
    for _ in 0..500 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    db.flush().unwrap();
    // Compactions write tables not yet in the version: wait them out.
    db.wait_for_compactions().unwrap();
    ledger.all_durable();
    assert_no_orphans(&fs, "after the resume");
    ledger.check(&db, "after the resume");
}

#[test]
fn a_mapped_wal_append_failing_mid_copy_or_a_failed_wal_sync_is_resumed_without_loss() {
    let sync = synced();
    for seed in 0..4 {
        for failing in [FsOp::Append, FsOp::Sync] {
            let fs = MemFileSystem::new();
            let opts = || options(&fs, true, WalWriteMode::Auto);
            let db = Db::open(mem_dir(), opts()).unwrap();
            // Records of three pages and more: a store fails mid-copy.
            let mut ledger = Ledger {
                value_len: 10_000,
                ..Ledger::default()
            };
            for _ in 0..5 {
                ledger.write(&db, &no_sync()).unwrap();
            }
            // The second page store of the next record fails (or the
            // next WAL sync): acknowledged-but-unsynced records precede.
            fs.add_fault(FaultPlan {
                path_contains: Some(".log".into()),
                ..FaultPlan::nth(failing, u64::from(failing == FsOp::Append))
            });
            let opts_for = if failing == FsOp::Sync {
                &sync
            } else {
                &no_sync()
            };
            let e = ledger.write(&db, opts_for).unwrap_err();
            assert!(matches!(e, Error::Background(_)), "{e}");
            assert!(!e.is_no_space(), "{e}");
            assert!(e.to_string().contains("Db::resume()"), "{e}");
            fs.clear_faults();
            // Not a full disk: nothing retries on its own.
            assert!(db.run_background_work().is_err());
            db.resume().unwrap();
            ledger.all_durable();
            assert_no_orphans(&fs, "after the resume");
            // Writes go on, durable and visible after the ones the error
            // cut short.
            ledger.write(&db, &synced()).unwrap();
            ledger.check(&db, "after the resume");
            // Every write acknowledged before the resume is in a synced
            // table now: even a power loss that keeps no unsynced byte
            // keeps them, and the abandoned WAL, torn mid-record or
            // unsynced, is never replayed.
            let loss = if seed % 2 == 0 {
                UnsyncedData::Drop
            } else {
                UnsyncedData::KeepRandomPages(seed)
            };
            power_cycle(&fs, db, loss);
            let db = Db::open(mem_dir(), opts()).unwrap();
            ledger.check(&db, &format!("{failing:?} seed {seed}, after a power loss"));
            for _ in 0..5 {
                ledger.write(&db, &no_sync()).unwrap();
            }
        }
    }
}

#[test]
fn a_failed_manifest_write_is_resumed_in_a_new_manifest() {
    let fs = MemFileSystem::new();
    let opts = || options(&fs, true, WalWriteMode::Auto);
    let db = Db::open(mem_dir(), opts()).unwrap();
    let mut ledger = Ledger::default();
    for _ in 0..100 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    fs.add_fault(FaultPlan {
        path_contains: Some("MANIFEST".into()),
        ..FaultPlan::nth(FsOp::Sync, 0)
    });
    let e = db.flush().unwrap_err();
    assert!(matches!(e, Error::Background(_)), "{e}");
    fs.clear_faults();
    assert!(ledger.write(&db, &no_sync()).is_err());
    db.resume().unwrap();
    ledger.all_durable();
    assert_no_orphans(&fs, "after the resume");
    for _ in 0..100 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    db.flush().unwrap();
    ledger.all_durable();
    ledger.check(&db, "after the resume");
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = Db::open(mem_dir(), opts()).unwrap();
    ledger.check(&db, "after a power loss");
}

#[test]
fn resume_refuses_a_corruption() {
    let fs = MemFileSystem::new();
    let opts = || options(&fs, true, WalWriteMode::Auto);
    let db = Db::open(mem_dir(), opts()).unwrap();
    // Four overlapping L0 tables: a compaction that reads them all is due.
    for round in 0..4 {
        for i in 0..50 {
            db.put(key(i), value(i, round)).unwrap();
        }
        db.flush().unwrap();
    }
    drop(db);
    // Damage a data block (the open checks the footer and the index, not
    // every block); the compaction finds it.
    let tables = files_with_ext(&fs, &mem_dir(), ".sst");
    assert_eq!(tables.len(), 4);
    fs.corrupt_byte(&tables[1], 100, 0x5a).unwrap();
    let db = Db::open(mem_dir(), opts()).unwrap();
    let e = db.run_background_work().unwrap_err();
    assert!(e.is_corruption(), "{e}");
    let e = db.resume().unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert!(
        e.to_string().contains("reopen the database"),
        "no remedy named: {e}"
    );
    assert!(db.put(b"k", b"v").unwrap_err().is_corruption());
}

#[test]
fn a_resume_that_fails_halfway_leaves_no_table_behind_and_a_retry_succeeds() {
    let fs = MemFileSystem::new();
    // Two frozen memtables may wait for their flush: with inline
    // background work, one stays frozen while the next fills.
    let opts = || Options {
        max_write_buffer_number: 3,
        ..options(&fs, true, WalWriteMode::Write)
    };
    let db = Db::open(mem_dir(), opts()).unwrap();
    let mut ledger = Ledger::default();
    for _ in 0..100 {
        ledger.write(&db, &no_sync()).unwrap();
    }
    // The WAL append fails: a frozen memtable and the active one, both
    // holding writes, wait for the resume.
    fs.add_fault(FaultPlan {
        path_contains: Some(".log".into()),
        ..FaultPlan::always(FsOp::Append)
    });
    let e = ledger.write(&db, &no_sync()).unwrap_err();
    assert!(matches!(e, Error::Background(_)), "{e}");
    fs.clear_faults();
    // The resume writes the frozen memtable's table, then fails to
    // create the active one's.
    fs.add_fault(FaultPlan {
        path_contains: Some(".sst".into()),
        ..FaultPlan::nth(FsOp::Create, 1)
    });
    let e = db.resume().unwrap_err();
    assert!(e.to_string().contains("injected fault"), "{e}");
    assert_eq!(
        fs.fault_counts().get(&FsOp::Create),
        Some(&1),
        "the resume did not reach its second table"
    );
    assert_tables_live(&fs, "after the failed resume");
    fs.clear_faults();
    db.resume().unwrap();
    ledger.all_durable();
    assert_no_orphans(&fs, "after the second resume");
    ledger.check(&db, "after the second resume");
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = Db::open(mem_dir(), opts()).unwrap();
    ledger.check(&db, "after a power loss");
}

#[test]
fn writers_in_flight_when_the_disk_fills_fail_and_go_on_after_a_resume_with_nothing_lost() {
    const WRITERS: usize = 4;
    const PREFIXES: [&str; WRITERS] = ["a-", "b-", "c-", "d-"];
    let fs = MemFileSystem::new();
    let opts = || options(&fs, false, WalWriteMode::Auto);
    let db = Db::open(mem_dir(), opts()).unwrap();
    let (progress, progressed) = mpsc::channel();
    let (failure, failed) = mpsc::channel();
    let mut go = Vec::new();
    let writers: Vec<_> = PREFIXES
        .iter()
        .map(|&prefix| {
            let (db, progress, failure) = (db.clone(), progress.clone(), failure.clone());
            let (go_tx, go_rx) = mpsc::channel::<()>();
            go.push(go_tx);
            std::thread::spawn(move || {
                let mut ledger = Ledger {
                    prefix,
                    ..Ledger::default()
                };
                // Every seventh write synced: some wait on a WAL sync
                // when the disk fills.
                let opts = |i: usize| {
                    if i.is_multiple_of(7) {
                        synced()
                    } else {
                        no_sync()
                    }
                };
                for i in 0..100_000 {
                    if i == 300 {
                        progress.send(()).unwrap();
                    }
                    if let Err(e) = ledger.write(&db, &opts(i)) {
                        assert!(e.is_no_space(), "{prefix}: {e}");
                        failure.send(()).unwrap();
                        go_rx.recv().unwrap();
                        // Everything this writer issued came before the
                        // resume.
                        ledger.all_durable();
                        break;
                    }
                }
                assert!(ledger.durable > 0, "{prefix}: never met the full disk");
                for i in 0..300 {
                    ledger.write(&db, &opts(i)).unwrap();
                }
                ledger
            })
        })
        .collect();
    for _ in 0..WRITERS {
        progressed
            .recv_timeout(BOUND)
            .expect("a writer made no progress");
    }
    // Over the quota at once: the WAL, the flushes, everything fails.
    fs.set_quota(Some(0));
    for _ in 0..WRITERS {
        failed
            .recv_timeout(BOUND)
            .expect("a writer hung on the full disk");
    }
    fs.set_quota(None);
    db.resume().unwrap();
    for g in &go {
        g.send(()).unwrap();
    }
    let ledgers: Vec<Ledger> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    for ledger in &ledgers {
        ledger.check(&db, &format!("{}, after the resume", ledger.prefix));
    }
    db.wait_for_compactions().unwrap();
    assert_no_orphans(&fs, "after the resume");
    // A power loss that keeps no unsynced byte: every write issued before
    // the resume is in a synced table.
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = Db::open(mem_dir(), opts()).unwrap();
    for ledger in &ledgers {
        ledger.check(&db, &format!("{}, after a power loss", ledger.prefix));
    }
}
