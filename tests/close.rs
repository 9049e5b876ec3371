//! A clean close keeps every acknowledged write, whether or not the WAL
//! holds it: writes made with `disable_wal`, and writes acknowledged with
//! `manual_wal_flush` before the WAL failed, survive a close, a reopen
//! and even a power loss right after the close.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata::fs::{FaultPlan, FsOp, MemFileSystem, UnsyncedData};
use strata::{Db, Options, WriteOptions};

fn no_wal() -> WriteOptions {
    WriteOptions {
        disable_wal: true,
        ..Default::default()
    }
}

#[test]
fn writes_without_the_wal_survive_a_clean_close_and_a_power_loss_after_it() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put(b"logged", b"1").unwrap();
    for i in 0..300 {
        db.put_opt(key(i), value(i, 0), &no_wal()).unwrap();
    }
    db.delete_opt(key(7), &no_wal()).unwrap();
    drop(db);
    // The close made them durable: a power loss now changes nothing.
    fs.power_loss(UnsyncedData::Drop);
    let db = open_mem(&fs);
    assert_eq!(db.get(b"logged").unwrap().as_deref(), Some(&b"1"[..]));
    for i in 0..300 {
        let expected = (i != 7).then(|| value(i, 0).into());
        assert_eq!(db.get(key(i)).unwrap(), expected, "key {i}");
    }
}

#[test]
fn writes_without_the_wal_in_frozen_memtables_survive_a_close() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    // Several 64 KiB memtables' worth: some are frozen (or flushed) when
    // the close comes.
    let n = 3000;
    for i in 0..n {
        db.put_opt(key(i), value(i, 1), &no_wal()).unwrap();
    }
    db.close().unwrap();
    fs.power_loss(UnsyncedData::Drop);
    let db = open_mem(&fs);
    assert_eq!(scan_all(&db).len(), n);
    for i in (0..n).step_by(97) {
        assert_eq!(db.get(key(i)).unwrap(), Some(value(i, 1).into()));
    }
}

#[test]
fn close_on_a_clone_leaves_the_database_open_for_the_others() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let other = db.clone();
    db.close().unwrap();
    other.put(b"still", b"open").unwrap();
    other.close().unwrap();
    let db = open_mem(&fs);
    assert_eq!(db.get(b"still").unwrap().as_deref(), Some(&b"open"[..]));
}

#[test]
fn manual_wal_flush_writes_acknowledged_before_a_wal_failure_survive_a_close() {
    let fs = MemFileSystem::new();
    let options = Options {
        manual_wal_flush: true,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options.clone()).unwrap();
    for i in 0..50 {
        db.put(key(i), value(i, 2)).unwrap();
    }
    // The records are still in the WAL buffer: handing them to the WAL fails.
    fs.add_fault(FaultPlan {
        path_contains: Some(".log".into()),
        ..FaultPlan::always(FsOp::Append)
    });
    assert!(db.flush_wal(false).is_err());
    fs.clear_faults();
    db.close().unwrap();
    fs.power_loss(UnsyncedData::Drop);
    let db = Db::open(mem_dir(), options).unwrap();
    for i in 0..50 {
        assert_eq!(db.get(key(i)).unwrap(), Some(value(i, 2).into()), "key {i}");
    }
}
