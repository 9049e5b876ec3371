//! Backups (issue 20): taken while writes go on, each restores to exactly
//! what a snapshot at its sequence number reads; tables are shared
//! between backups; verify names a damaged file; purge keeps the newest.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use strata::fs::{FileSystem, MemFileSystem};
use strata::{BackupEngine, CheckpointOptions, Db, Error, Snapshot};

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

const KEYSPACE: &str = "second";

fn collect(it: strata::Iter) -> Entries {
    it.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn contents(db: &Db) -> (Entries, Entries) {
    let ks = db.keyspace(KEYSPACE).unwrap();
    (collect(db.iter()), collect(ks.iter()))
}

fn snapshot_contents(db: &Db, snapshot: &Snapshot) -> (Entries, Entries) {
    let ks = db.keyspace(KEYSPACE).unwrap();
    (
        collect(snapshot.iter()),
        collect(snapshot.keyspace(&ks).iter()),
    )
}

fn engine(fs: &MemFileSystem) -> BackupEngine {
    BackupEngine::open_with("/backups", Arc::new(fs.clone())).unwrap()
}

fn keep_snapshot() -> CheckpointOptions {
    CheckpointOptions {
        keep_snapshot: true,
        ..CheckpointOptions::default()
    }
}

/// Run `body` while two threads write batches across both keyspaces;
/// `wait(n)` returns once `n` more batches were written.
fn with_writers<R>(db: &Db, body: impl FnOnce(&dyn Fn(u64)) -> R) -> R {
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let (db, stop, written) = (db.clone(), Arc::clone(&stop), Arc::clone(&written));
            std::thread::spawn(move || {
                let ks = db.keyspace(KEYSPACE).unwrap();
                let mut rng = Rng(t + 100);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("k{:05}", rng.below(2000));
                    let value = format!("t{t}-{i}-{}", "y".repeat(rng.below(150) as usize));
                    let mut batch = db.new_batch();
                    batch.put(&key, &value);
                    batch.put_in(&ks, &key, &value);
                    if rng.one_in(5) {
                        batch.delete_in(&ks, format!("k{:05}", rng.below(2000)));
                    }
                    db.write(batch).unwrap();
                    written.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let wait = |n: u64| {
        let target = written.load(Ordering::Relaxed) + n;
        while written.load(Ordering::Relaxed) < target {
            std::thread::yield_now();
        }
    };
    let result = body(&wait);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    result
}

#[test]
fn backups_taken_during_writes_restore_to_their_snapshot() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    let mut backups = engine(&fs);
    let taken = with_writers(&db, |wait| {
        (0..3)
            .map(|_| {
                wait(1500);
                backups.create_backup_with(&db, &keep_snapshot()).unwrap()
            })
            .collect::<Vec<_>>()
    });
    let list = backups.list();
    assert_eq!(list.iter().map(|b| b.id).collect::<Vec<_>>(), [1, 2, 3]);
    for ((info, snapshot), listed) in taken.iter().zip(&list) {
        assert_eq!(info, listed);
        let snapshot = snapshot.as_ref().unwrap();
        assert_eq!(snapshot.sequence(), info.sequence);
        backups.verify(info.id).unwrap();
        let dir = format!("/restored{}", info.id);
        backups.restore(info.id, &dir).unwrap();
        let restored = Db::open(&dir, mem_options(&fs)).unwrap();
        let expected = snapshot_contents(&db, snapshot);
        assert!(!expected.0.is_empty());
        assert!(
            contents(&restored) == expected,
            "backup {} differs from the snapshot at {}",
            info.id,
            info.sequence
        );
        restored.wait_for_compactions().unwrap();
        restored.check_invariants().unwrap();
    }
    // A reopened engine reads the same backups.
    drop(backups);
    assert_eq!(engine(&fs).list(), list);
}

#[test]
fn tables_are_shared_between_backups() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    for i in 0..3000u32 {
        db.put(format!("k{i:05}"), format!("v{i}")).unwrap();
    }
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    let mut backups = engine(&fs);
    backups.create_backup(&db).unwrap();
    let shared = || fs.list(Path::new("/backups/shared")).unwrap();
    let first = shared();
    assert!(!first.is_empty());
    let creates = || {
        fs.op_counts()
            .get(&strata::fs::FsOp::Create)
            .copied()
            .unwrap_or(0)
    };
    let before = creates();
    // Nothing changed: the second backup copies no table, only its
    // private files (WALs, MANIFEST, CURRENT) and its metadata.
    let second = backups.create_backup(&db).unwrap();
    assert_eq!(shared(), first);
    let private = second.file_count - first.len();
    assert_eq!(creates() - before, private as u64 + 1);
    // New tables are added beside the old ones.
    for i in 0..500u32 {
        db.put(format!("n{i:05}"), format!("w{i}")).unwrap();
    }
    db.flush().unwrap();
    backups.create_backup(&db).unwrap();
    let third = shared();
    assert!(third.len() > first.len());
    assert!(first.iter().all(|n| third.contains(n)));

    // Purging keeps the newest, and the tables only older ones used go.
    backups.purge_old_backups(1).unwrap();
    assert_eq!(backups.list().iter().map(|b| b.id).collect::<Vec<_>>(), [3]);
    backups.verify(3).unwrap();
    assert!(!fs.exists(Path::new("/backups/meta/1")));
    assert!(!fs.exists(Path::new("/backups/private/1")));
    backups.restore(3, "/r").unwrap();
    let restored = Db::open("/r", mem_options(&fs)).unwrap();
    assert!(contents(&restored) == contents(&db));
}

#[test]
fn a_damaged_backup_file_fails_verify_and_restore_naming_it() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    for i in 0..2000u32 {
        db.put(format!("k{i:05}"), format!("v{i}")).unwrap();
    }
    db.flush().unwrap();
    db.put(b"in-the-wal", b"1").unwrap();
    let mut backups = engine(&fs);
    backups.create_backup(&db).unwrap();
    backups.verify(1).unwrap();

    for victim in ["shared", "private/1"] {
        let dir = Path::new("/backups").join(victim);
        let name = fs
            .list(&dir)
            .unwrap()
            .into_iter()
            .find(|n| n.ends_with(".sst") || n.ends_with(".log"))
            .unwrap();
        let path = dir.join(&name);
        fs.corrupt_byte(&path, 20, 0x10).unwrap();
        match backups.verify(1) {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
            other => panic!("{other:?}"),
        }
        match backups.restore(1, "/r") {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
            other => panic!("{other:?}"),
        }
        assert!(
            !fs.exists(Path::new("/r/CURRENT")),
            "a failed restore leaves no database"
        );
        assert_eq!(fs.list(Path::new("/r")).unwrap(), Vec::<String>::new());
        fs.corrupt_byte(&path, 20, 0x10).unwrap(); // undo
        backups.verify(1).unwrap();
    }

    // A missing file is named too.
    let private = Path::new("/backups/private/1");
    let manifest = fs
        .list(private)
        .unwrap()
        .into_iter()
        .find(|n| n.starts_with("MANIFEST"))
        .unwrap();
    fs.remove(&private.join(&manifest)).unwrap();
    match backups.verify(1) {
        Err(Error::Corruption { file, reason, .. }) => {
            assert_eq!(file, private.join(&manifest));
            assert!(reason.contains("missing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_damaged_metadata_file_is_reported_and_the_others_still_work() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    db.put(b"a", b"1").unwrap();
    let mut backups = engine(&fs);
    backups.create_backup(&db).unwrap();
    db.put(b"b", b"2").unwrap();
    backups.create_backup(&db).unwrap();
    drop(backups);
    let meta = Path::new("/backups/meta/1");
    fs.corrupt_byte(meta, 30, 0x01).unwrap();
    let mut backups = engine(&fs);
    assert_eq!(backups.list().iter().map(|b| b.id).collect::<Vec<_>>(), [2]);
    match backups.verify(1) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, meta),
        other => panic!("{other:?}"),
    }
    backups.verify(2).unwrap();
    // The next backup never reuses the damaged one's id.
    assert_eq!(backups.create_backup(&db).unwrap().id, 3);
    backups.delete_backup(1).unwrap();
    assert!(!fs.exists(meta));
    backups.restore(2, "/r").unwrap();
    let restored = Db::open("/r", mem_options(&fs)).unwrap();
    assert_eq!(restored.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn restore_refuses_a_directory_that_holds_something() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    db.put(b"a", b"1").unwrap();
    let mut backups = engine(&fs);
    backups.create_backup(&db).unwrap();
    fs.create_dir_all(Path::new("/busy")).unwrap();
    fs.write_durable(Path::new("/busy/notes"), b"mine");
    match backups.restore(1, "/busy") {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("not empty"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        backups.restore(9, "/x"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn an_interrupted_backup_leaves_nothing_after_the_next_open() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    for i in 0..1000u32 {
        db.put(format!("k{i:05}"), format!("v{i}")).unwrap();
    }
    db.flush().unwrap();
    let mut backups = engine(&fs);
    backups.create_backup(&db).unwrap();
    let shared_before = fs.list(Path::new("/backups/shared")).unwrap();
    // What a backup stopped before its metadata was renamed leaves.
    fs.create_dir_all(Path::new("/backups/private/2")).unwrap();
    fs.write_durable(
        Path::new("/backups/private/2/CURRENT"),
        b"MANIFEST-000009\n",
    );
    fs.write_durable(Path::new("/backups/shared/000099_00000000_5.sst"), b"12345");
    fs.write_durable(Path::new("/backups/shared/000100.sst.tmp"), b"123");
    fs.write_durable(Path::new("/backups/meta/2.tmp"), b"strata-backup 1\n");
    let backups = engine(&fs);
    assert_eq!(backups.list().len(), 1);
    assert!(!fs.exists(Path::new("/backups/private/2")));
    assert!(!fs.exists(Path::new("/backups/meta/2.tmp")));
    assert_eq!(
        fs.list(Path::new("/backups/shared")).unwrap(),
        shared_before
    );
    backups.verify(1).unwrap();
}
