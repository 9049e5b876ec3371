//! The concurrent write path: atomic visibility of batches under many
//! writers, in-order publication, fault handling, backpressure.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use strata::fs::{FaultPlan, FsOp, MemFileSystem, UnsyncedData};
use strata::{Db, Error, Options, WriteBatch, WriteOptions};

const WRITERS: usize = 8;
const BATCHES: usize = 1500;
const KEYS_PER_BATCH: usize = 4;

/// Writer `writer`'s `k`-th key; every batch of a writer overwrites the
/// same keys with its own id as the value.
fn batch_key(writer: usize, k: usize) -> String {
    format!("w{writer}/k{k}")
}

/// Every snapshot sees, for each writer, all keys of one batch: the values
/// carry the batch id, so a torn batch shows up as mixed ids.
#[test]
fn snapshots_see_each_batch_entirely_or_not_at_all() {
    let fs = MemFileSystem::new();
    let db = Db::open(
        mem_dir(),
        Options {
            write_buffer_size: 256 * 1024,
            ..mem_options(&fs)
        },
    )
    .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for b in 1..=BATCHES {
                    let mut batch = WriteBatch::new();
                    for k in 0..KEYS_PER_BATCH {
                        batch.put(batch_key(w, k), format!("{b:06}"));
                    }
                    let sync = b % 100 == 0;
                    db.write_opt(
                        batch,
                        &WriteOptions {
                            sync,
                            ..Default::default()
                        },
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, done) = (db.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut last_seq = 0;
                let mut last_ids = [0usize; WRITERS];
                let mut checks = 0;
                while !done.load(Ordering::Acquire) || checks == 0 {
                    let snap = db.snapshot();
                    assert!(
                        snap.sequence() >= last_seq,
                        "published sequence went backwards"
                    );
                    last_seq = snap.sequence();
                    let mut ids = [None::<usize>; WRITERS];
                    let mut counts = [0; WRITERS];
                    for item in snap.iter() {
                        let (k, v) = item.unwrap();
                        let k = String::from_utf8(k.to_vec()).unwrap();
                        let w: usize = k[1..k.find('/').unwrap()].parse().unwrap();
                        let id: usize = std::str::from_utf8(&v).unwrap().parse().unwrap();
                        assert!(
                            ids[w].is_none_or(|i| i == id),
                            "torn batch for writer {w}: {ids:?} vs {id}"
                        );
                        ids[w] = Some(id);
                        counts[w] += 1;
                    }
                    for w in 0..WRITERS {
                        assert!(counts[w] == 0 || counts[w] == KEYS_PER_BATCH);
                        let id = ids[w].unwrap_or(0);
                        // A writer's batches are visible in order: never an
                        // older one after a newer one was seen.
                        assert!(
                            id >= last_ids[w],
                            "writer {w} went back from {} to {id}",
                            last_ids[w]
                        );
                        last_ids[w] = id;
                    }
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    for w in 0..WRITERS {
        for k in 0..KEYS_PER_BATCH {
            let v = db.get(batch_key(w, k)).unwrap().unwrap();
            assert_eq!(v, format!("{BATCHES:06}").as_bytes());
        }
    }
}

/// Each write's own sequence number is published in order with no gaps:
/// after a write returns, a read sees it (read-your-writes), and the
/// visible sequence number covers exactly the writes that returned.
#[test]
fn a_returned_write_is_visible_to_its_writer_and_later_snapshots() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let k = format!("t{t}-{i}");
                    db.put(&k, b"v").unwrap();
                    assert!(db.get(&k).unwrap().is_some(), "own write not visible");
                    let snap = db.snapshot();
                    assert!(snap.get(&k).unwrap().is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(db.snapshot().sequence(), (WRITERS * 1000) as u64);
}

#[test]
fn a_failed_fsync_fails_the_sync_writers_and_stops_later_writes() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put(b"before", b"ok").unwrap();
    fs.add_fault(FaultPlan::always(FsOp::Sync));
    let sync = WriteOptions {
        sync: true,
        ..Default::default()
    };
    let results: Vec<_> = (0..4)
        .map(|i| {
            let (db, sync) = (db.clone(), sync.clone());
            std::thread::spawn(move || db.put_opt(format!("s{i}"), b"v", &sync))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for r in &results {
        assert!(matches!(r, Err(Error::Background(_))), "{r:?}");
    }
    fs.clear_faults();
    let later = db.put(b"after", b"refused");
    assert!(matches!(later, Err(Error::Background(_))), "{later:?}");
    assert!(later.unwrap_err().to_string().contains("injected fault"));
    // Reads still work.
    assert_eq!(db.get(b"before").unwrap().as_deref(), Some(&b"ok"[..]));
    // After reopening, writes work again; nothing reported durable was lost.
    drop(db);
    let db = open_mem(&fs);
    assert_eq!(db.get(b"before").unwrap().as_deref(), Some(&b"ok"[..]));
    db.put(b"after", b"reopened").unwrap();
}

#[test]
fn a_failed_wal_append_fails_the_writer() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put(b"a", b"1").unwrap();
    fs.add_fault(FaultPlan {
        path_contains: Some(".log".into()),
        ..FaultPlan::always(FsOp::Append)
    });
    assert!(matches!(db.put(b"b", b"2"), Err(Error::Background(_))));
    assert!(matches!(db.put(b"c", b"3"), Err(Error::Background(_))));
    assert_eq!(db.get(b"b").unwrap(), None, "a failed write became visible");
}

#[test]
fn power_loss_after_acknowledged_sync_writes_from_many_threads_keeps_them_all() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let sync = WriteOptions {
        sync: true,
        ..Default::default()
    };
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (db, sync) = (db.clone(), sync.clone());
            std::thread::spawn(move || {
                for i in 0..200 {
                    db.put_opt(key(t * 1000 + i), value(i, t), &sync).unwrap();
                    // Non-sync writes in between, which may be lost.
                    db.put(format!("loose-{t}-{i}"), b"x").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    for t in 0..WRITERS {
        for i in 0..200 {
            assert_eq!(db.get(key(t * 1000 + i)).unwrap().unwrap(), value(i, t));
        }
    }
}

#[test]
fn a_tiny_wal_buffer_applies_backpressure_and_loses_nothing() {
    let fs = MemFileSystem::new();
    let opts = Options {
        wal_buffer_capacity_bytes: 4096,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), opts.clone()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    // Values bigger than the buffer force the full-buffer path.
                    db.put(key(t * 1000 + i), vec![t as u8; 300 + (i % 5) * 1000])
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(db);
    let db = Db::open(mem_dir(), opts).unwrap();
    for t in 0..4 {
        for i in 0..500 {
            assert_eq!(
                db.get(key(t * 1000 + i)).unwrap().unwrap().len(),
                300 + (i % 5) * 1000
            );
        }
    }
}

#[test]
fn manual_wal_flush_keeps_records_until_flush_wal() {
    let fs = MemFileSystem::new();
    let opts = Options {
        manual_wal_flush: true,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), opts.clone()).unwrap();
    db.put(b"kept", b"1").unwrap();
    db.flush_wal(true).unwrap();
    db.put(b"lost", b"2").unwrap();
    assert_eq!(db.get(b"lost").unwrap().as_deref(), Some(&b"2"[..]));
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = Db::open(mem_dir(), opts).unwrap();
    assert_eq!(db.get(b"kept").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"lost").unwrap(), None);
}

#[test]
fn disable_wal_writes_are_readable_but_not_logged() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let no_wal = WriteOptions {
        disable_wal: true,
        ..Default::default()
    };
    db.put_opt(b"memory only", b"1", &no_wal).unwrap();
    db.put(b"logged", b"2").unwrap();
    assert_eq!(db.get(b"memory only").unwrap().as_deref(), Some(&b"1"[..]));
    power_cycle(&fs, db, UnsyncedData::KeepRandomPrefix(u64::MAX));
    let db = open_mem(&fs);
    assert_eq!(db.get(b"memory only").unwrap(), None);
}

/// After a memtable rotation the old WAL is synced in the background; a
/// sync write to the new WAL must still make every earlier write durable
/// (WALs become durable in order).
#[test]
fn a_sync_write_after_rotation_makes_the_old_wal_durable_too() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    // Enough non-sync writes to rotate the 64 KiB memtable several times.
    for i in 0..3000 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.put_opt(
        b"last",
        b"synced",
        &WriteOptions {
            sync: true,
            ..Default::default()
        },
    )
    .unwrap();
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    assert_eq!(db.get(b"last").unwrap().as_deref(), Some(&b"synced"[..]));
    for i in 0..3000 {
        assert_eq!(
            db.get(key(i)).unwrap().unwrap(),
            value(i, 0),
            "key {i} lost"
        );
    }
}
