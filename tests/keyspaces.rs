//! Keyspaces: isolation, atomic batches across them, snapshots, drop,
//! recovery with some flushed and others not, and WAL retention with a
//! keyspace written once and never again.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata::fs::{FaultPlan, FileSystem, FsOp, MemFileSystem, UnsyncedData};
use strata::{Compression, Db, Error, Keyspace, KeyspaceOptions, Options, WriteOptions};

fn scan(ks: &Keyspace) -> Vec<(Vec<u8>, Vec<u8>)> {
    ks.iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
    (k.as_bytes().to_vec(), v.as_bytes().to_vec())
}

#[test]
fn keyspaces_are_separate_and_a_batch_across_them_is_one_write() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let users = db.keyspace("users").unwrap();
    let events = db
        .keyspace_with(
            "events",
            KeyspaceOptions {
                compression: Compression::Zstd { level: 3 },
                ..Default::default()
            },
        )
        .unwrap();
    users.put(b"u1", b"ada").unwrap();
    events.put(b"2026-01", b"e").unwrap();
    db.put(b"u1", b"default").unwrap();
    assert_eq!(users.get(b"u1").unwrap().as_deref(), Some(&b"ada"[..]));
    assert_eq!(db.get(b"u1").unwrap().as_deref(), Some(&b"default"[..]));
    assert_eq!(events.get(b"u1").unwrap(), None);

    let before = db.snapshot();
    let mut batch = db.new_batch();
    batch.put_in(&users, b"u2", b"grace");
    batch.delete_in(&events, b"2026-01");
    batch.put_in(&events, b"2026-02", b"f");
    batch.put(b"d", b"1");
    db.write(batch).unwrap();
    let after = db.snapshot();
    assert_eq!(before.keyspace(&users).get(b"u2").unwrap(), None);
    assert!(before.keyspace(&events).get(b"2026-01").unwrap().is_some());
    assert!(after.keyspace(&users).get(b"u2").unwrap().is_some());
    assert_eq!(after.keyspace(&events).get(b"2026-01").unwrap(), None);
    let prefixed: Vec<_> = events
        .prefix(b"2026-")
        .map(|r| r.unwrap().0.to_vec())
        .collect();
    assert_eq!(prefixed, vec![b"2026-02".to_vec()]);
    assert_eq!(
        db.keyspace_names(),
        vec!["default".to_string(), "users".into(), "events".into()]
    );
    assert_eq!(
        db.keyspace("default")
            .unwrap()
            .get(b"d")
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );
    assert!(matches!(db.keyspace(""), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        db.drop_keyspace("default"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn keyspaces_and_their_data_survive_reopen_flushed_or_not() {
    let fs = MemFileSystem::new();
    {
        let db = open_mem(&fs);
        let a = db.keyspace("a").unwrap();
        let b = db.keyspace("b").unwrap();
        for i in 0..2000 {
            a.put(key(i), value(i, 0)).unwrap();
            if i % 3 == 0 {
                b.put(key(i), value(i, 1)).unwrap();
            }
        }
        a.flush().unwrap();
        b.put(b"only-in-wal", b"x").unwrap();
        db.close().unwrap();
    }
    let db = open_mem(&fs);
    assert_eq!(db.keyspace_names(), vec!["default", "a", "b"]);
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    assert_eq!(scan(&a).len(), 2000);
    assert_eq!(scan(&b).len(), 2000 / 3 + 2);
    assert_eq!(b.get(b"only-in-wal").unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(a.get(b"only-in-wal").unwrap(), None);
    assert!(scan_all(&db).is_empty());
    db.check_invariants().unwrap();
}

/// After a power loss, a batch that moved a value from one keyspace to
/// another shows it in exactly one, with one keyspace flushed since and
/// the other not (its writes replayed from the WAL, the other's not).
#[test]
fn a_move_across_keyspaces_is_atomic_through_power_loss() {
    for seed in 0..20u64 {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        let from = db.keyspace("from").unwrap();
        let to = db.keyspace("to").unwrap();
        let n = 300;
        for i in 0..n {
            from.put(key(i), value(i, 0)).unwrap();
        }
        let mut rng = Rng(seed);
        let mut synced_moves = 0;
        for i in 0..n {
            let mut batch = db.new_batch();
            batch.delete_in(&from, key(i));
            batch.put_in(&to, key(i), value(i, 0));
            let sync = rng.one_in(4);
            db.write_opt(
                batch,
                &WriteOptions {
                    sync,
                    ..Default::default()
                },
            )
            .unwrap();
            if sync {
                synced_moves = i + 1;
            }
            if rng.one_in(50) {
                to.flush().unwrap();
            }
        }
        power_cycle(&fs, db, UnsyncedData::KeepRandomPages(seed));
        let db = open_mem(&fs);
        let from = db.keyspace("from").unwrap();
        let to = db.keyspace("to").unwrap();
        let mut moved = 0;
        for i in 0..n {
            let in_from = from.get(key(i)).unwrap().is_some();
            let in_to = to.get(key(i)).unwrap().is_some();
            assert!(in_from != in_to, "seed {seed}: key {i} in both or neither");
            if in_to {
                assert_eq!(moved, i, "seed {seed}: moves are a prefix");
                moved += 1;
            }
        }
        assert!(moved >= synced_moves, "seed {seed}: a synced move was lost");
    }
}

#[test]
fn drop_keeps_open_readers_working_and_removes_the_files_after() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let tmp = db.keyspace("tmp").unwrap();
    for i in 0..500 {
        tmp.put(key(i), value(i, 0)).unwrap();
    }
    tmp.flush().unwrap();
    let tables = tmp.live_files();
    assert!(!tables.is_empty());
    assert!(tables.iter().all(|f| f.keyspace == "tmp"));
    let snap = db.snapshot();
    let mut iter = tmp.iter();
    db.drop_keyspace("tmp").unwrap();
    assert_eq!(db.keyspace_names(), vec!["default"]);
    assert!(matches!(
        tmp.put(b"k", b"v"),
        Err(Error::KeyspaceDropped { .. })
    ));
    let mut batch = db.new_batch();
    batch.put_in(&tmp, b"k", b"v");
    assert!(matches!(
        db.write(batch),
        Err(Error::KeyspaceDropped { .. })
    ));
    // Readers opened before (and the handle) still see the data.
    assert_eq!(iter.by_ref().count(), 500);
    assert!(snap.keyspace(&tmp).get(key(7)).unwrap().is_some());
    assert!(tmp.get(key(7)).unwrap().is_some());
    let table_path = |n: u64| mem_dir().join(format!("{n:06}.sst"));
    assert!(fs.exists(&table_path(tables[0].number)));
    drop((iter, snap, tmp));
    // A compaction of it that was running lets go of its inputs.
    db.wait_for_compactions().unwrap();
    for f in &tables {
        assert!(!fs.exists(&table_path(f.number)), "table {} left", f.number);
    }
    // A new keyspace of the same name is another, empty one.
    let again = db.keyspace("tmp").unwrap();
    assert_eq!(again.get(key(7)).unwrap(), None);
    drop(again);
    db.close().unwrap();
    let db = open_mem(&fs);
    assert_eq!(db.keyspace_names(), vec!["default", "tmp"]);
    assert_eq!(db.keyspace("tmp").unwrap().get(key(7)).unwrap(), None);
}

/// A crash right after the drop is durable, with the dropped keyspace's
/// files still on disk: the open removes them.
#[test]
fn a_crash_mid_drop_leaves_no_files_behind() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let tmp = db.keyspace("tmp").unwrap();
    for i in 0..500 {
        tmp.put(key(i), value(i, 0)).unwrap();
    }
    tmp.flush().unwrap();
    let tables = tmp.live_files();
    db.drop_keyspace("tmp").unwrap();
    // The handle holds the files: the process dies before they go.
    fs.crash();
    drop(tmp);
    power_cycle(&fs, db, UnsyncedData::Drop);
    let table_path = |n: u64| mem_dir().join(format!("{n:06}.sst"));
    assert!(
        fs.exists(&table_path(tables[0].number)),
        "still there before the open"
    );
    let db = open_mem(&fs);
    assert_eq!(db.keyspace_names(), vec!["default"]);
    for f in &tables {
        assert!(!fs.exists(&table_path(f.number)));
    }
}

/// A drop is a MANIFEST edit, synced before it returns: a power loss then
/// must not take the writes acknowledged before it, or the recovered state
/// (the keyspace gone, an earlier write missing) is no prefix of what was
/// acknowledged. Found by the simulation.
#[test]
fn a_drop_keeps_the_writes_acknowledged_before_it() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let tmp = db.keyspace("tmp").unwrap();
    tmp.put_opt(
        b"t",
        b"1",
        &WriteOptions {
            sync: true,
            ..Default::default()
        },
    )
    .unwrap();
    db.put(b"before-the-drop", b"1").unwrap();
    drop(tmp);
    db.drop_keyspace("tmp").unwrap();
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    assert_eq!(db.keyspace_names(), vec!["default"], "the drop is durable");
    assert_eq!(
        db.get(b"before-the-drop").unwrap().as_deref(),
        Some(&b"1"[..]),
        "a write acknowledged before the drop was lost while the drop survived"
    );
}

/// A keyspace flushed and then dropped raised the manifest's last
/// sequence past writes of the default keyspace still only in the WAL
/// (and its own, older, replayed into nothing): the open after a power
/// loss must replay them, not refuse them as out of sequence. Found by
/// the simulation.
#[test]
fn a_flushed_then_dropped_keyspace_leaves_a_database_that_opens() {
    for compact in [false, true] {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        let tmp = db.keyspace("tmp").unwrap();
        tmp.put(b"a", b"1").unwrap();
        db.put(b"d", b"1").unwrap();
        tmp.put(b"b", b"1").unwrap();
        if compact {
            tmp.compact_range::<&[u8], _>(..).unwrap();
        } else {
            tmp.flush().unwrap();
        }
        drop(tmp);
        db.drop_keyspace("tmp").unwrap();
        power_cycle(&fs, db, UnsyncedData::Drop);
        let db = Db::open(mem_dir(), mem_options(&fs))
            .unwrap_or_else(|e| panic!("compact {compact}: no open after a power loss: {e}"));
        assert_eq!(db.keyspace_names(), vec!["default"]);
        assert_eq!(
            db.get(b"d").unwrap().as_deref(),
            Some(&b"1"[..]),
            "a synced write lost"
        );
    }
}

/// A MANIFEST write that fails while creating or dropping a keyspace
/// stops writes like any failed background write and reports the I/O
/// error, with no panic on the way: the error used to be recorded while
/// holding the version set's lock, and recording it wakes the background
/// threads under theirs, a lock-order inversion (a possible deadlock; a
/// panic of the lock-order check in checked builds, which the write
/// queue's panic guard swallowed). Found by the simulation.
#[test]
fn a_failed_manifest_write_in_create_or_drop_is_an_io_error() {
    // Count the panics of this test's thread (the engine catches them).
    static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let me = std::thread::current().name().map(str::to_owned);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name().map(str::to_owned) == me {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        previous(info);
    }));
    for drop_it in [false, true] {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        drop(db.keyspace("tmp").unwrap());
        fs.add_fault(FaultPlan {
            op: Some(FsOp::Append),
            path_contains: Some("MANIFEST".into()),
            skip: 0,
            count: 1,
        });
        let e = if drop_it {
            db.drop_keyspace("tmp").unwrap_err()
        } else {
            db.keyspace("other").unwrap_err()
        };
        assert!(
            matches!(e, Error::Background(_)) && e.to_string().contains("injected fault"),
            "drop {drop_it}: {e:?}"
        );
        let later = db.put(b"k", b"v").unwrap_err();
        assert!(later.to_string().contains("injected fault"), "{later:?}");
        assert_eq!(
            PANICS.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "drop {drop_it}: a panic on the way"
        );
    }
}

/// After the WAL failed, a close writes every keyspace's memtables to
/// tables, since the WAL may not hold their writes: the tables must take
/// effect together. One MANIFEST edit per keyspace, with the close cut
/// short between two (a failed MANIFEST write, or a crash), left a batch
/// across keyspaces in one keyspace's table and, in the other, only in
/// the unsynced WAL a power loss takes: a torn batch. Found by the
/// simulation (seeds 5736 and 13753).
#[test]
fn a_close_after_a_wal_failure_installs_every_keyspace_at_once() {
    for fail_edit in 1..4 {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        let a = db.keyspace("a").unwrap();
        let b = db.keyspace("b").unwrap();
        let mut batch = db.new_batch();
        batch.put_in(&a, b"x", b"1");
        batch.put_in(&b, b"y", b"1");
        db.write(batch).unwrap();
        // The WAL fails: the next synced write errs and writes stop.
        fs.add_fault(FaultPlan {
            op: Some(FsOp::Sync),
            path_contains: Some(".log".into()),
            skip: 0,
            count: u64::MAX,
        });
        let sync = WriteOptions {
            sync: true,
            ..Default::default()
        };
        assert!(db.put_opt(b"d", b"1", &sync).is_err());
        // The close's MANIFEST write number `fail_edit` fails.
        fs.add_fault(FaultPlan {
            op: Some(FsOp::Append),
            path_contains: Some("MANIFEST".into()),
            skip: fail_edit - 1,
            count: 1,
        });
        drop((a, b));
        let _ = db.close();
        fs.crash();
        fs.power_loss(UnsyncedData::Drop);
        let db = open_mem(&fs);
        let x = db.keyspace("a").unwrap().get(b"x").unwrap();
        let y = db.keyspace("b").unwrap().get(b"y").unwrap();
        assert_eq!(
            x.is_some(),
            y.is_some(),
            "failed MANIFEST write {fail_edit}: a batch across keyspaces is torn: x {x:?}, y {y:?}"
        );
    }
}

/// Recovery writes what it replays to tables, per keyspace. After a
/// process crash the WAL may hold writes never synced (the page cache
/// kept them): the keyspaces' tables must then take effect together, or
/// an open cut short between two edits, followed by a power loss, leaves
/// a batch across keyspaces torn. Found by the simulation (seeds 5736 and
/// 13753).
#[test]
fn recovery_installs_every_keyspace_at_once() {
    let mut torn = Vec::new();
    for fail_edit in 1..6 {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        let a = db.keyspace("a").unwrap();
        let b = db.keyspace("b").unwrap();
        let mut batch = db.new_batch();
        batch.put_in(&a, b"x", b"1");
        batch.put_in(&b, b"y", b"1");
        db.write(batch).unwrap();
        drop((a, b));
        // The close cannot sync the WAL: the batch is in the page cache
        // only, as a process crash leaves it.
        fs.add_fault(FaultPlan {
            op: Some(FsOp::Sync),
            path_contains: Some(".log".into()),
            skip: 0,
            count: 1,
        });
        assert!(db.close().is_err());
        // The open replays it, and its MANIFEST write `fail_edit` fails.
        fs.add_fault(FaultPlan {
            op: Some(FsOp::Append),
            path_contains: Some("MANIFEST".into()),
            skip: fail_edit - 1,
            count: 1,
        });
        if let Ok(db) = Db::open(mem_dir(), mem_options(&fs)) {
            drop(db);
        }
        fs.crash();
        fs.power_loss(UnsyncedData::Drop);
        let db = open_mem(&fs);
        let x = db.keyspace("a").unwrap().get(b"x").unwrap();
        let y = db.keyspace("b").unwrap().get(b"y").unwrap();
        if x.is_some() != y.is_some() {
            torn.push(fail_edit);
        }
    }
    assert!(
        torn.is_empty(),
        "a batch across keyspaces torn when MANIFEST write {torn:?} of the open failed"
    );
}

/// Once the last handle on a dropped keyspace is gone and compactions are
/// waited for, none of its tables is left: the background job that ran
/// last on it let go of its keyspace (and so of its tables) only after
/// announcing the job's end, so a waiter could look in between. Found by
/// the model test; it also made drop_keeps_open_readers_working_and_removes_the_files_after
/// flaky.
#[test]
fn a_dropped_keyspace_leaves_no_tables_once_compactions_are_waited_for() {
    for round in 0..20 {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        let t = db.keyspace("t").unwrap();
        for i in 0..3000 + round * 500 {
            t.put(key(i), value(i, 0)).unwrap();
        }
        t.flush().unwrap();
        drop(t);
        db.drop_keyspace("t").unwrap();
        db.wait_for_compactions().unwrap();
        db.check_invariants()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
}

/// Writes to the default keyspace with a keyspace written once beside
/// it; returns the most WALs live at once.
fn most_wals_with_a_cold_keyspace(max_total_wal_size: u64) -> usize {
    let fs = MemFileSystem::new();
    let options = Options {
        max_total_wal_size,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options.clone()).unwrap();
    let cold = db.keyspace("cold").unwrap();
    cold.put(b"written", b"once").unwrap();
    let mut most_wals = 0;
    for i in 0..20_000 {
        db.put(key(i % 3000), value(i, 100)).unwrap();
        if i % 500 == 0 {
            most_wals = most_wals.max(files_with_ext(&fs, &mem_dir(), ".log").len());
        }
    }
    db.wait_for_compactions().unwrap();
    drop(cold);
    db.close().unwrap();
    let db = Db::open(mem_dir(), options).unwrap();
    let cold = db.keyspace("cold").unwrap();
    assert_eq!(cold.get(b"written").unwrap().as_deref(), Some(&b"once"[..]));
    most_wals
}

/// A keyspace written once and never again does not keep every WAL after
/// it: past `max_total_wal_size` it is flushed, and the WALs go.
#[test]
fn a_cold_keyspace_does_not_pin_the_wals() {
    // 20,000 writes of ~130 bytes fill some 40 memtables of 64 KiB.
    let unlimited = most_wals_with_a_cold_keyspace(u64::MAX);
    assert!(
        unlimited >= 30,
        "the cold keyspace pins every WAL: {unlimited}"
    );
    // 256 KiB is four WALs, plus the current one, the one made ahead and
    // those of memtables waiting for their flush.
    let limited = most_wals_with_a_cold_keyspace(256 * 1024);
    assert!(limited <= 12, "{limited} WALs live at once");
}

/// The default keyspace's flushes move an idle keyspace's log number, so
/// an empty keyspace never keeps a WAL.
#[test]
fn an_empty_keyspace_keeps_no_wal() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let _idle = db.keyspace("idle").unwrap();
    for i in 0..5_000 {
        db.put(key(i), value(i, 100)).unwrap();
    }
    db.flush().unwrap();
    let wals = files_with_ext(&fs, &mem_dir(), ".log").len();
    assert!(
        wals <= 2,
        "{wals} WALs after a flush of the only written keyspace"
    );
}

/// Reopening with other options per keyspace: they apply from then on.
#[test]
fn reopen_with_other_keyspace_options() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_options()).unwrap();
    let ks = db.keyspace("k").unwrap();
    for i in 0..3000 {
        ks.put(key(i), value(i, 0)).unwrap();
    }
    ks.flush().unwrap();
    drop(ks); // a handle keeps the database open, as a clone of it does
    db.close().unwrap();
    let db = Db::open(dir.path(), small_options()).unwrap();
    let ks = db
        .keyspace_with(
            "k",
            KeyspaceOptions {
                compression: Compression::Zstd { level: 1 },
                write_buffer_size: 1 << 20,
                ..small_options().keyspace_options()
            },
        )
        .unwrap();
    for i in 3000..6000 {
        ks.put(key(i), value(i, 0)).unwrap();
    }
    ks.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(scan(&ks).len(), 6000);
    assert!(ks.property("strata.stats").unwrap().contains("[k]"));
    assert!(
        matches!(
            db.keyspace_with(
                "k",
                KeyspaceOptions {
                    num_levels: 2,
                    ..Default::default()
                }
            ),
            Err(Error::InvalidArgument(_))
        ) || ks.live_files().iter().all(|f| f.level < 2)
    );
    assert_eq!(kv("a", "b").0, b"a");
}

/// Writes spread over three keyspaces with memtables of 4 MiB each and
/// `db_write_buffer_size` set as given; returns the most bytes of active
/// memtables seen at once and whether every keyspace was flushed.
fn memtables_under_a_budget(budget: usize) -> (usize, bool) {
    let fs = MemFileSystem::new();
    let options = Options {
        write_buffer_size: 4 << 20,
        db_write_buffer_size: budget,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    let keyspaces: Vec<Keyspace> = ["a", "b", "c"]
        .iter()
        .map(|n| db.keyspace(n).unwrap())
        .collect();
    let mem_bytes = |ks: &Keyspace| -> usize {
        ks.property("strata.cur-size-active-mem-table")
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut most = 0;
    // Some 100 bytes per entry (key, value and skiplist node), 2 MB per
    // keyspace.
    for i in 0..60_000 {
        let ks = &keyspaces[i % 3];
        ks.put(key(i), value(i, 100)).unwrap();
        if i % 1000 == 0 {
            most = most.max(keyspaces.iter().map(mem_bytes).sum::<usize>());
        }
    }
    db.wait_for_compactions().unwrap();
    for ks in &keyspaces {
        assert_eq!(scan(ks).len(), 20_000);
    }
    (most, keyspaces.iter().all(|ks| !ks.live_files().is_empty()))
}

/// `db_write_buffer_size` bounds the memtables of all keyspaces together:
/// no keyspace's own `write_buffer_size` is reached, yet they are flushed
/// (the largest first).
#[test]
fn the_memtable_budget_spans_keyspaces() {
    // Some 6 MB of writes: under 4 MiB per keyspace, nothing is flushed.
    let (unbounded, flushed) = memtables_under_a_budget(0);
    assert!(
        !flushed && unbounded > 5 << 20,
        "{unbounded} bytes, flushed: {flushed}"
    );
    let (most, flushed) = memtables_under_a_budget(2 << 20);
    assert!(flushed, "every keyspace was flushed");
    // 7/8 of the budget (RocksDB's trigger for the active memtables), plus
    // what the writes between two checks add and a fresh memtable's first
    // arena block per keyspace.
    assert!(most < 3 << 20, "{most} bytes of active memtables");
}

// Found by review: recovery and atomicity after a drop, a close and a resume.

/// Default keyspace written (synced) but never flushed; another keyspace
/// written, flushed (raising the manifest's last sequence), then dropped:
/// the default keyspace's WAL records lie below the manifest's last
/// sequence, and must still be replayed (the open refused them as damage).
fn default_writes_then_a_flushed_keyspace_dropped(fs: &MemFileSystem) -> Db {
    let db = open_mem(fs);
    let b = db.keyspace("b").unwrap();
    let sync = WriteOptions {
        sync: true,
        ..Default::default()
    };
    for i in 0..10 {
        db.put_opt(key(i), value(i, 0), &sync).unwrap();
    }
    for i in 0..100 {
        b.put(key(i), value(i, 1)).unwrap();
    }
    b.flush().unwrap();
    drop(b);
    db.drop_keyspace("b").unwrap();
    db
}

fn assert_default_writes_kept(db: &Db, when: &str) {
    for i in 0..10 {
        assert!(
            db.get(key(i)).unwrap().is_some(),
            "default key {i} lost {when}"
        );
    }
}

#[test]
fn drop_leaves_one_keyspace_whose_wal_is_below_last_sequence() {
    let fs = MemFileSystem::new();
    let db = default_writes_then_a_flushed_keyspace_dropped(&fs);
    db.close().unwrap();
    let db = open_mem(&fs);
    assert_default_writes_kept(&db, "after a clean close");
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    assert_default_writes_kept(&db, "after a power loss");
}

/// Same, with a crash instead of a clean close.
#[test]
fn drop_then_crash() {
    let fs = MemFileSystem::new();
    let db = default_writes_then_a_flushed_keyspace_dropped(&fs);
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    assert_default_writes_kept(&db, "after a crash");
}

/// A batch across two keyspaces written with disable_wal: a close writes
/// it to tables. Crash at every point of the close: the batch must be all
/// there or not at all (with one edit per keyspace it was torn).
#[test]
fn close_with_unlogged_cross_keyspace_batch_is_atomic_through_a_crash() {
    let mut torn = Vec::new();
    for n in 1..400u64 {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        let b = db.keyspace("b").unwrap();
        let mut batch = db.new_batch();
        batch.put(b"x", b"1");
        batch.put_in(&b, b"y", b"1");
        db.write_opt(
            batch,
            &WriteOptions {
                disable_wal: true,
                ..Default::default()
            },
        )
        .unwrap();
        drop(b);
        fs.crash_after(n);
        let closed = db.close();
        let finished = closed.is_ok() && !fs.is_crashed();
        fs.crash();
        fs.power_loss(UnsyncedData::Drop);
        let db = open_mem(&fs);
        let b = db.keyspace("b").unwrap();
        let x = db.get(b"x").unwrap().is_some();
        let y = b.get(b"y").unwrap().is_some();
        if x != y {
            torn.push((n, x, y));
        }
        if finished {
            break;
        }
    }
    assert!(
        torn.is_empty(),
        "half a batch after a crash in close: {torn:?}"
    );
}

/// A batch across two keyspaces whose WAL append failed: a resume writes
/// every keyspace's memtables out. Crash at every point of the resume: the
/// batch must be all there or not at all (with one edit per keyspace it
/// was torn).
#[test]
fn resume_after_wal_failure_is_atomic_across_keyspaces_through_a_crash() {
    use strata::fs::{FaultPlan, FsOp};
    let mut torn = Vec::new();
    let mut resumed_ok = false;
    for n in 1..600u64 {
        let fs = MemFileSystem::new();
        let options = strata::Options {
            inline_background_work: true,
            ..mem_options(&fs)
        };
        let db = strata::Db::open(mem_dir(), options.clone()).unwrap();
        let b = db.keyspace("b").unwrap();
        fs.add_fault(FaultPlan {
            op: Some(FsOp::Append),
            path_contains: Some(".log".into()),
            skip: 0,
            count: u64::MAX,
        });
        let mut batch = db.new_batch();
        batch.put(b"x", b"1");
        batch.put_in(&b, b"y", b"1");
        let w = db.write_opt(
            batch,
            &WriteOptions {
                sync: true,
                ..Default::default()
            },
        );
        fs.clear_faults();
        assert!(w.is_err(), "the WAL append failed");
        fs.crash_after(n);
        let r = db.resume();
        let finished = r.is_ok() && !fs.is_crashed();
        drop(b);
        fs.crash();
        drop(db);
        fs.power_loss(UnsyncedData::Drop);
        let db = strata::Db::open(mem_dir(), options).unwrap();
        let b = db.keyspace("b").unwrap();
        let x = db.get(b"x").unwrap().is_some();
        let y = b.get(b"y").unwrap().is_some();
        if x != y {
            torn.push((n, x, y));
        }
        if finished {
            resumed_ok = true;
            break;
        }
    }
    assert!(resumed_ok, "the resume never finished");
    assert!(
        torn.is_empty(),
        "half a batch after a crash in resume: {torn:?}"
    );
}

/// A keyspace handle names its keyspace by id; a batch or snapshot of
/// another database must not take it for one of its own.
#[test]
fn a_keyspace_of_another_database_is_refused() {
    let (fs1, fs2) = (MemFileSystem::new(), MemFileSystem::new());
    let (db1, db2) = (open_mem(&fs1), open_mem(&fs2));
    let a1 = db1.keyspace("a").unwrap();
    let _a2 = db2.keyspace("a").unwrap(); // the same id in db2
    let mut batch = db2.new_batch();
    batch.put_in(&a1, b"k", b"v");
    assert!(matches!(db2.write(batch), Err(Error::InvalidArgument(_))));
    let snap = db2.snapshot();
    assert!(matches!(
        snap.keyspace(&a1).get(b"k"),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(_a2.get(b"k").unwrap(), None);
}

/// A smaller `write_buffer_size` given to an open keyspace applies to the
/// memtable it is writing now, not only to the next one (after a reopen
/// every keyspace's first memtable has the database's size).
#[test]
fn a_smaller_write_buffer_applies_to_the_active_memtable() {
    let fs = MemFileSystem::new();
    let options = Options {
        write_buffer_size: 4 << 20,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    // Made with the database's 4 MiB, then given its own size.
    let _made = db.keyspace("logs").unwrap();
    let logs = db
        .keyspace_with(
            "logs",
            KeyspaceOptions {
                write_buffer_size: 256 * 1024,
                ..db_keyspace_defaults()
            },
        )
        .unwrap();
    // About 650 KiB: past 256 KiB, far below 4 MiB.
    for i in 0..5000 {
        logs.put(key(i), value(i, 100)).unwrap();
    }
    db.wait_for_compactions().unwrap();
    assert!(
        !logs.live_files().is_empty(),
        "the keyspace was flushed at its own size"
    );
}

fn db_keyspace_defaults() -> KeyspaceOptions {
    Options {
        write_buffer_size: 4 << 20,
        ..small_options()
    }
    .keyspace_options()
}
