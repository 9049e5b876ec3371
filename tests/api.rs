//! Every public API call, end to end, on the real filesystem and in memory.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata::fs::MemFileSystem;
use strata::{Db, Error, Options, ReadOptions, WriteBatch, WriteOptions};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn keys(it: strata::Iter) -> Vec<String> {
    it.map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap())
        .collect()
}

#[test]
fn db_is_send_sync_and_clone() {
    fn assert_shared<T: Send + Sync + Clone + 'static>() {}
    fn assert_send<T: Send>() {}
    assert_shared::<Db>();
    assert_send::<strata::Iter>();
    assert_send::<strata::Cursor>();
    assert_send::<strata::Snapshot>();
}

#[test]
fn open_creates_the_directory_and_put_get_delete_work() {
    let dir = tmp();
    let path = dir.path().join("nested/db");
    let db = Db::open(&path, Options::default()).unwrap();
    assert!(path.join("CURRENT").exists());
    db.put(b"k", b"v").unwrap();
    db.put("string key", "string value").unwrap();
    db.put(vec![1u8, 2], [3u8; 3]).unwrap();
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        db.get("string key").unwrap().as_deref(),
        Some(&b"string value"[..])
    );
    assert_eq!(db.get([1u8, 2]).unwrap().as_deref(), Some(&[3u8; 3][..]));
    assert_eq!(db.get(b"missing").unwrap(), None);
    db.put(b"k", b"v2").unwrap();
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v2"[..]));
    db.delete(b"k").unwrap();
    assert_eq!(db.get(b"k").unwrap(), None);
    db.delete(b"never existed").unwrap();
    // Empty keys and values are allowed.
    db.put(b"", b"").unwrap();
    assert_eq!(db.get(b"").unwrap().as_deref(), Some(&b""[..]));
}

#[test]
fn batches_apply_atomically_and_in_order() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put(b"b", b"old").unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1");
    batch.delete(b"b");
    batch.put(b"c", b"3");
    batch.put(b"c", b"3-final");
    db.write(batch).unwrap();
    assert_eq!(
        scan_all(&db),
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"c".to_vec(), b"3-final".to_vec())
        ]
    );
    let mut batch2 = WriteBatch::new();
    batch2.put(b"d", b"4");
    db.write_opt(
        batch2,
        &WriteOptions {
            sync: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(db.get(b"d").unwrap().as_deref(), Some(&b"4"[..]));
    db.write(WriteBatch::new()).unwrap();
}

#[test]
fn oversized_keys_and_values_are_rejected_and_nothing_is_written() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let big_key = vec![b'k'; strata::MAX_KEY_SIZE + 1];
    assert!(matches!(
        db.put(&big_key, b"v"),
        Err(Error::InvalidArgument(_))
    ));
    let mut batch = WriteBatch::new();
    batch.put(b"fine", b"v");
    batch.put(b"too big", vec![0u8; strata::MAX_VALUE_SIZE + 1]);
    assert!(matches!(db.write(batch), Err(Error::InvalidArgument(_))));
    assert_eq!(
        db.get(b"fine").unwrap(),
        None,
        "part of a rejected batch was written"
    );
    // At the limit is fine.
    db.put(vec![b'k'; strata::MAX_KEY_SIZE], b"v").unwrap();
}

#[test]
fn range_prefix_and_reverse_iteration() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for k in ["a", "b", "c", "m", "user:1", "user:2", "user:3", "v", "z"] {
        db.put(k, format!("val-{k}")).unwrap();
    }
    db.delete("user:2").unwrap();
    assert_eq!(
        keys(db.range(b"a".as_slice()..b"m".as_slice())),
        ["a", "b", "c"]
    );
    assert_eq!(
        keys(db.range(b"b".as_slice()..=b"m".as_slice())),
        ["b", "c", "m"]
    );
    assert_eq!(
        keys(db.range(b"user:".as_slice()..)),
        ["user:1", "user:3", "v", "z"]
    );
    assert_eq!(keys(db.range(..b"b".as_slice())), ["a"]);
    assert_eq!(keys(db.prefix(b"user:")), ["user:1", "user:3"]);
    assert!(keys(db.prefix(b"nothing")).is_empty());
    let reversed: Vec<String> = db
        .iter()
        .rev()
        .map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap())
        .collect();
    assert_eq!(reversed, ["z", "v", "user:3", "user:1", "m", "c", "b", "a"]);
    let prefix_rev: Vec<_> = db.prefix(b"user:").rev().map(|r| r.unwrap().1).collect();
    assert_eq!(prefix_rev, [&b"val-user:3"[..], b"val-user:1"]);
    // Both ends at once meet in the middle without repeating.
    let mut it = db.range(b"a".as_slice()..b"v".as_slice());
    assert_eq!(it.next().unwrap().unwrap().0, &b"a"[..]);
    assert_eq!(it.next_back().unwrap().unwrap().0, &b"user:3"[..]);
    let middle: Vec<_> = it.map(|r| r.unwrap().0).collect();
    assert_eq!(middle, [&b"b"[..], b"c", b"m", b"user:1"]);
}

#[test]
fn cursor_seeks_and_moves_both_ways() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for k in ["b", "d", "f"] {
        db.put(k, k.to_uppercase()).unwrap();
    }
    let mut c = db.cursor();
    assert!(!c.valid());
    c.seek(b"c").unwrap();
    assert_eq!(c.key(), Some(&b"d"[..]));
    assert_eq!(c.value(), Some(&b"D"[..]));
    c.next().unwrap();
    assert_eq!(c.key(), Some(&b"f"[..]));
    c.next().unwrap();
    assert!(!c.valid());
    assert_eq!(c.key(), None);
    c.seek_for_prev(b"e").unwrap();
    assert_eq!(c.key(), Some(&b"d"[..]));
    c.prev().unwrap();
    assert_eq!(c.key(), Some(&b"b"[..]));
    c.prev().unwrap();
    assert!(!c.valid());
    c.seek_to_last().unwrap();
    assert_eq!(c.key(), Some(&b"f"[..]));
    c.seek_to_first().unwrap();
    assert_eq!(c.key(), Some(&b"b"[..]));
    c.seek_for_prev(b"a").unwrap();
    assert!(!c.valid());
    c.seek(b"g").unwrap();
    assert!(!c.valid());
}

#[test]
fn snapshots_read_a_fixed_point() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put(b"a", b"1").unwrap();
    db.put(b"b", b"1").unwrap();
    let snap = db.snapshot();
    db.put(b"a", b"2").unwrap();
    db.delete(b"b").unwrap();
    db.put(b"c", b"2").unwrap();
    db.flush().unwrap();
    assert_eq!(snap.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get(b"b").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get(b"c").unwrap(), None);
    assert_eq!(keys(snap.iter()), ["a", "b"]);
    assert_eq!(keys(snap.range(b"b".as_slice()..)), ["b"]);
    assert_eq!(keys(snap.prefix(b"a")), ["a"]);
    let opts = ReadOptions {
        snapshot: Some(&snap),
        ..Default::default()
    };
    assert_eq!(db.get_opt(b"a", &opts).unwrap().as_deref(), Some(&b"1"[..]));
    let mut c = snap.cursor();
    c.seek_to_last().unwrap();
    assert_eq!(c.key(), Some(&b"b"[..]));
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(keys(db.iter()), ["a", "c"]);
    assert!(snap.sequence() > 0);
}

#[test]
fn iterators_are_stable_while_writes_and_flushes_go_on() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for i in 0..500 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    let mut it = db.iter();
    let first = it.next().unwrap().unwrap();
    for i in 0..2000 {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.flush().unwrap();
    let rest: Vec<_> = it.map(|r| r.unwrap()).collect();
    assert_eq!(rest.len(), 499);
    assert_eq!(first.1, value(0, 0));
    for (i, (k, v)) in rest.iter().enumerate() {
        assert_eq!(k.as_ref(), key(i + 1));
        assert_eq!(v.as_ref(), value(i + 1, 0));
    }
}

#[test]
fn flush_writes_tables_and_reads_see_them() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for i in 0..3000 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    assert!(!files_with_ext(&fs, &mem_dir(), ".sst").is_empty());
    for i in (0..3000).step_by(7) {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i, 0));
    }
    assert_eq!(scan_all(&db).len(), 3000);
}

#[test]
fn reads_during_flush_see_every_write() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 0..5000 {
                db.put(key(i), value(i, 0)).unwrap();
                if i % 1000 == 999 {
                    db.flush().unwrap();
                }
            }
        })
    };
    // Every key the reader sees as written stays readable while flushes
    // move it from memtables to tables.
    let mut highest_seen = 0;
    while !writer.is_finished() {
        for i in (0..highest_seen).step_by(13) {
            assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i, 0), "key {i}");
        }
        while db.get(key(highest_seen)).unwrap().is_some() {
            highest_seen += 1;
        }
    }
    writer.join().unwrap();
    assert_eq!(scan_all(&db).len(), 5000);
}

#[test]
fn reopen_after_clean_close_keeps_everything() {
    let dir = tmp();
    {
        let db = Db::open(dir.path(), Options::default()).unwrap();
        for i in 0..1000 {
            db.put(key(i), value(i, 0)).unwrap();
        }
        db.flush().unwrap();
        for i in 0..1000 {
            if i % 3 == 0 {
                db.delete(key(i)).unwrap();
            } else if i % 3 == 1 {
                db.put(key(i), value(i, 1)).unwrap();
            }
        }
    }
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..1000 {
        let expected = match i % 3 {
            0 => None,
            1 => Some(value(i, 1)),
            _ => Some(value(i, 0)),
        };
        assert_eq!(db.get(key(i)).unwrap().map(|v| v.to_vec()), expected);
    }
    // Writes after reopen get fresh sequence numbers: they win.
    db.put(key(1), b"after reopen").unwrap();
    assert_eq!(
        db.get(key(1)).unwrap().as_deref(),
        Some(&b"after reopen"[..])
    );
}

#[test]
fn a_second_open_is_locked_out() {
    let dir = tmp();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Locked { path }) => assert!(path.ends_with("LOCK")),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(db);
    Db::open(dir.path(), Options::default()).unwrap();

    let fs = MemFileSystem::new();
    let _db = open_mem(&fs);
    assert!(matches!(
        Db::open(mem_dir(), mem_options(&fs)),
        Err(Error::Locked { .. })
    ));
}

#[test]
fn create_and_exists_options_are_honoured() {
    let dir = tmp();
    let missing = dir.path().join("missing");
    let no_create = Options {
        create_if_missing: false,
        ..Options::default()
    };
    assert!(matches!(
        Db::open(&missing, no_create.clone()),
        Err(Error::InvalidArgument(_))
    ));
    drop(Db::open(&missing, Options::default()).unwrap());
    drop(Db::open(&missing, no_create).unwrap());
    let exclusive = Options {
        error_if_exists: true,
        ..Options::default()
    };
    assert!(matches!(
        Db::open(&missing, exclusive),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn bad_options_are_rejected() {
    let dir = tmp();
    for bad in [
        Options {
            write_buffer_size: 10,
            ..Options::default()
        },
        Options {
            max_write_buffer_number: 1,
            ..Options::default()
        },
        Options {
            block_restart_interval: 0,
            ..Options::default()
        },
    ] {
        assert!(matches!(
            Db::open(dir.path(), bad),
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[test]
fn compressed_tables_read_back_through_the_block_cache() {
    let dir = tmp();
    let opts = || Options {
        compression: strata::Compression::Zstd { level: 3 },
        write_buffer_size: 256 * 1024,
        ..Options::default()
    };
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        for i in 0..5000 {
            db.put(key(i), value(i, 0)).unwrap();
        }
        db.flush().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    for _ in 0..2 {
        for i in (0..5000).step_by(11) {
            assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i, 0));
        }
    }
    assert_eq!(scan_all(&db).len(), 5000);
}
