//! SST ingestion: tables built with `SstWriter` and added by
//! `Db::ingest` (RocksDB's SstFileWriter and IngestExternalFile), on the
//! in-memory filesystem.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::PathBuf;
use std::sync::Arc;
use strata::fs::{FileSystem, MemFileSystem, UnsyncedData};
use strata::{Db, Error, IngestOptions, Options, SstWriter, UInt64Add, WriteOptions};

fn ext_dir() -> PathBuf {
    PathBuf::from("/ext")
}

/// A table at `/ext/<name>` holding `keys` with `value(i, version)`.
fn build(
    fs: &MemFileSystem,
    name: &str,
    keys: impl IntoIterator<Item = usize>,
    version: usize,
) -> PathBuf {
    fs.create_dir_all(&ext_dir()).unwrap();
    let path = ext_dir().join(name);
    let mut w = SstWriter::create(&path, &mem_options(fs)).unwrap();
    for i in keys {
        w.put(key(i), value(i, version)).unwrap();
    }
    let info = w.finish().unwrap();
    assert_eq!(info.file_path, path);
    path
}

fn tables(fs: &MemFileSystem) -> Vec<PathBuf> {
    files_with_ext(fs, &mem_dir(), ".sst")
}

fn get(db: &Db, i: usize) -> Option<Vec<u8>> {
    db.get(key(i)).unwrap().map(|v| v.to_vec())
}

/// The level and sequence numbers of the live table holding key `i`
/// whose range holds it and that is the newest (smallest level).
fn file_of(db: &Db, i: usize) -> strata::LiveFile {
    let k = key(i);
    db.live_files()
        .into_iter()
        .filter(|f| f.smallest.as_slice() <= k.as_slice() && k.as_slice() <= f.largest.as_slice())
        .min_by_key(|f| (f.level, std::cmp::Reverse(f.largest_seqno)))
        .expect("a table holding the key")
}

#[test]
fn a_table_overlapping_nothing_keeps_sequence_zero_and_goes_to_the_last_level() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let path = build(&fs, "a.sst", 0..1000, 1);
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    for i in [0, 1, 500, 999] {
        assert_eq!(get(&db, i), Some(value(i, 1)));
    }
    assert_eq!(get(&db, 1000), None);
    let f = file_of(&db, 0);
    assert_eq!(f.level, Options::default().num_levels - 1);
    assert_eq!((f.smallest_seqno, f.largest_seqno), (0, 0));
    assert_eq!(scan_all(&db).len(), 1000);
    // Copied, not moved: the original stays.
    assert!(fs.exists(&path));
    db.check_invariants().unwrap();
}

#[test]
fn a_table_overlapping_the_memtable_is_ingested_after_a_flush_and_wins() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for i in 0..100 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    let path = build(&fs, "a.sst", 50..150, 1);

    let refused = IngestOptions {
        allow_blocking_flush: false,
        ..IngestOptions::default()
    };
    let e = db.ingest(&[&path], &refused).unwrap_err();
    assert!(e.to_string().contains("allow_blocking_flush"), "{e}");
    assert_eq!(
        get(&db, 60),
        Some(value(60, 0)),
        "a refused ingestion changed a value"
    );
    assert_eq!(get(&db, 120), None);

    let before = db.snapshot();
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    for i in 0..50 {
        assert_eq!(get(&db, i), Some(value(i, 0)));
    }
    for i in 50..150 {
        assert_eq!(get(&db, i), Some(value(i, 1)), "key {i}");
    }
    // The flushed memtable is in L0 below the ingested table, which is
    // numbered after it.
    let ingested = file_of(&db, 120);
    assert_eq!(ingested.level, 0);
    assert!(ingested.smallest_seqno > 100, "{ingested:?}");
    // A snapshot from before does not see it.
    assert_eq!(before.get(key(60)).unwrap().unwrap().to_vec(), value(60, 0));
    assert_eq!(before.get(key(120)).unwrap(), None);
    assert_eq!(before.iter().count(), 100);
    // Writes go on after it, and win over it.
    db.put(key(70), value(70, 2)).unwrap();
    assert_eq!(get(&db, 70), Some(value(70, 2)));
    db.check_invariants().unwrap();
}

#[test]
fn a_table_beside_the_memtable_is_ingested_without_a_flush() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for i in 0..100 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    let path = build(&fs, "a.sst", 200..300, 1);
    let no_flush = IngestOptions {
        allow_blocking_flush: false,
        ..IngestOptions::default()
    };
    db.ingest(&[&path], &no_flush).unwrap();
    assert!(
        db.live_files().iter().all(|f| f.smallest_seqno == 0),
        "{:?}",
        db.live_files()
    );
    assert_eq!(get(&db, 5), Some(value(5, 0)));
    assert_eq!(get(&db, 250), Some(value(250, 1)));
    drop(db);
    let db = open_mem(&fs);
    assert_eq!(scan_all(&db).len(), 200);
    db.check_invariants().unwrap();
}

#[test]
fn each_overlapping_ingestion_lands_a_level_higher_and_is_newest() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let last = Options::default().num_levels - 1;
    let first = build(&fs, "0.sst", 0..100, 0);
    db.ingest(&[&first], &IngestOptions::default()).unwrap();
    assert_eq!(file_of(&db, 10).level, last);
    for version in 1..=last + 1 {
        // Each overlaps the one before by range, so it goes above it.
        let path = build(
            &fs,
            &format!("{version}.sst"),
            (version..100).step_by(3),
            version,
        );
        db.ingest(&[&path], &IngestOptions::default()).unwrap();
        let f = file_of(&db, version);
        assert_eq!(f.level, last.saturating_sub(version), "ingestion {version}");
        assert!(f.smallest_seqno > 0);
        for i in 0..100 {
            let newest = (0..=version)
                .rev()
                .find(|&v| v == 0 || (i >= v && (i - v) % 3 == 0))
                .unwrap();
            assert_eq!(
                get(&db, i),
                Some(value(i, newest)),
                "key {i} after ingestion {version}"
            );
        }
        db.check_invariants().unwrap();
    }
    // Two ingestions reached L0; compaction puts it all back in order.
    db.compact_range::<&[u8], _>(..).unwrap();
    db.check_invariants().unwrap();
    let after: Vec<_> = scan_all(&db);
    drop(db);
    let db = open_mem(&fs);
    assert_eq!(scan_all(&db), after);
}

#[test]
fn a_table_overlapping_flushed_and_compacted_levels_goes_above_them() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for i in 0..2000 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    for i in 3000..3100 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    let deepest = db.live_files().iter().map(|f| f.level).max().unwrap();
    assert!(deepest > 0);
    // Overlaps only the compacted range: one level above its top.
    let top_of_compacted = db
        .live_files()
        .iter()
        .filter(|f| {
            f.smallest.as_slice() <= key(1000).as_slice()
                && key(1000).as_slice() <= f.largest.as_slice()
        })
        .map(|f| f.level)
        .min()
        .unwrap();
    let mid = build(&fs, "mid.sst", 990..1010, 1);
    db.ingest(&[&mid], &IngestOptions::default()).unwrap();
    assert_eq!(file_of(&db, 1000).level, top_of_compacted - 1);
    // Overlaps the L0 table: L0.
    let top = build(&fs, "top.sst", 3050..3060, 1);
    db.ingest(&[&top], &IngestOptions::default()).unwrap();
    assert_eq!(file_of(&db, 3055).level, 0);
    for i in [0, 989, 1010, 3049, 3060, 3099] {
        assert_eq!(get(&db, i), Some(value(i, 0)), "key {i}");
    }
    for i in [990, 1009, 3050, 3059] {
        assert_eq!(get(&db, i), Some(value(i, 1)), "key {i}");
    }
    db.check_invariants().unwrap();
}

#[test]
fn a_snapshot_taken_before_an_ingestion_does_not_see_it() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put(b"x", b"1").unwrap();
    db.flush().unwrap();
    let snap = db.snapshot();
    // Overlaps nothing: only the snapshot makes it need a number.
    let path = build(&fs, "a.sst", 0..10, 1);
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    assert_eq!(snap.get(key(3)).unwrap(), None);
    assert_eq!(snap.iter().count(), 1);
    assert_eq!(get(&db, 3), Some(value(3, 1)));
    assert!(file_of(&db, 3).smallest_seqno > snap.sequence());
    drop(snap);
    db.check_invariants().unwrap();
}

#[test]
fn the_writer_refuses_keys_out_of_order_or_twice_naming_them_and_stays_usable() {
    let fs = MemFileSystem::new();
    fs.create_dir_all(&ext_dir()).unwrap();
    let path = ext_dir().join("w.sst");
    let mut w = SstWriter::create(&path, &mem_options(&fs)).unwrap();
    w.put(b"b", b"1").unwrap();
    let e = w.put(b"a", b"2").unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(
        e.to_string().contains("\"a\"") && e.to_string().contains("increasing"),
        "{e}"
    );
    assert!(e.to_string().contains("w.sst"), "{e}");
    let e = w.delete(b"b").unwrap_err();
    assert!(
        e.to_string().contains("\"b\"") && e.to_string().contains("already added"),
        "{e}"
    );
    let e = w.delete_range(b"d", b"c").unwrap_err();
    assert!(e.to_string().contains("not below its end"), "{e}");
    w.put(b"c", b"3").unwrap();
    let info = w.finish().unwrap();
    assert_eq!(
        (
            info.smallest_key.as_slice(),
            info.largest_key.as_slice(),
            info.num_entries
        ),
        (&b"b"[..], &b"c"[..], 2)
    );
    assert_eq!(info.file_size, fs.file_size(&path).unwrap());
    let db = open_mem(&fs);
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    assert_eq!(
        scan_all(&db),
        vec![
            (b"b".to_vec(), b"1".to_vec()),
            (b"c".to_vec(), b"3".to_vec())
        ]
    );

    // An empty table cannot be finished, and leaves no file.
    let empty = ext_dir().join("empty.sst");
    let e = SstWriter::create(&empty, &mem_options(&fs))
        .unwrap()
        .finish()
        .unwrap_err();
    assert!(e.to_string().contains("no entries"), "{e}");
    assert!(!fs.exists(&empty));
}

#[test]
fn a_damaged_file_is_refused_naming_it_and_nothing_changes() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put(key(5000), b"kept").unwrap();
    let good = build(&fs, "good.sst", 0..100, 1);
    let bad = build(&fs, "bad.sst", 200..300, 1);
    // A byte inside the first data block.
    fs.corrupt_byte(&bad, 100, 0x40).unwrap();
    let before = tables(&fs);
    let e = db
        .ingest(&[&good, &bad], &IngestOptions::default())
        .unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert!(e.to_string().contains("bad.sst"), "{e}");
    assert_eq!(get(&db, 50), None, "part of a refused ingestion went in");
    assert_eq!(
        tables(&fs),
        before,
        "a refused ingestion left tables behind"
    );
    // Without the check the damage is found when the block is read, not
    // at ingestion.
    let unchecked = IngestOptions {
        verify_checksums_before_ingest: false,
        ..IngestOptions::default()
    };
    match db.ingest(&[&bad], &unchecked) {
        Err(e) => assert!(e.to_string().contains("bad.sst"), "{e}"),
        Ok(()) => assert!(db.get(key(200)).is_err(), "damage went unnoticed"),
    }
}

#[test]
fn files_that_overlap_each_other_or_are_not_tables_are_refused() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let a = build(&fs, "a.sst", 0..100, 1);
    let b = build(&fs, "b.sst", 99..200, 1);
    let e = db.ingest(&[&a, &b], &IngestOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("a.sst")
            && e.to_string().contains("b.sst")
            && e.to_string().contains("overlap"),
        "{e}"
    );
    let e = db.ingest(&[&a, &a], &IngestOptions::default()).unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");
    let junk = ext_dir().join("junk.sst");
    fs.write_durable(&junk, b"this is not a table at all, not even close to one");
    let e = db.ingest(&[&junk], &IngestOptions::default()).unwrap_err();
    assert!(e.to_string().contains("junk.sst"), "{e}");
    let missing = ext_dir().join("missing.sst");
    let e = db
        .ingest(&[&missing], &IngestOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("missing.sst"), "{e}");
    assert!(tables(&fs).is_empty());
    assert_eq!(scan_all(&db), vec![]);
}

#[test]
fn moved_files_are_linked_in_their_names_removed_and_survive_reopen() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let a = build(&fs, "a.sst", 0..100, 1);
    let b = build(&fs, "b.sst", 100..200, 1);
    let moving = IngestOptions {
        move_files: true,
        ..IngestOptions::default()
    };
    db.ingest(&[&b, &a], &moving).unwrap();
    assert!(
        !fs.exists(&a) && !fs.exists(&b),
        "the original names stay after a move"
    );
    let link_ops = fs.op_counts().get(&strata::fs::FsOp::Link).copied();
    assert_eq!(link_ops, Some(2));
    drop(db);
    let db = open_mem(&fs);
    assert_eq!(scan_all(&db).len(), 200);
    assert_eq!(get(&db, 150), Some(value(150, 1)));
    db.check_invariants().unwrap();
}

#[test]
fn deletes_range_deletes_and_merges_in_a_table_apply_over_older_data() {
    let fs = MemFileSystem::new();
    let options = Options {
        merge_operator: Some(Arc::new(UInt64Add)),
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options.clone()).unwrap();
    for i in 0..20 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.put(b"counter", 5u64.to_le_bytes()).unwrap();
    db.flush().unwrap();
    fs.create_dir_all(&ext_dir()).unwrap();
    let path = ext_dir().join("ops.sst");
    let mut w = SstWriter::create(&path, &options).unwrap();
    w.merge(b"counter", 7u64.to_le_bytes()).unwrap();
    w.delete(key(3)).unwrap();
    w.put(key(12), b"new").unwrap();
    w.delete_range(key(10), key(15)).unwrap();
    w.finish().unwrap();
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    assert_eq!(
        db.get(b"counter").unwrap().unwrap().to_vec(),
        12u64.to_le_bytes()
    );
    assert_eq!(get(&db, 3), None);
    assert_eq!(get(&db, 4), Some(value(4, 0)));
    for i in [10, 11, 13, 14] {
        assert_eq!(get(&db, i), None, "key {i} under the ingested range delete");
    }
    // A point entry of the same table is as new as its range delete.
    assert_eq!(db.get(key(12)).unwrap().unwrap().to_vec(), b"new");
    assert_eq!(get(&db, 15), Some(value(15, 0)));
    db.check_invariants().unwrap();

    // Operands go only where an operator merges them.
    let plain = Db::open("/db2", mem_options(&fs)).unwrap();
    let again = ext_dir().join("ops2.sst");
    let mut w = SstWriter::create(&again, &options).unwrap();
    w.merge(b"counter", 1u64.to_le_bytes()).unwrap();
    w.finish().unwrap();
    let e = plain
        .ingest(&[&again], &IngestOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("merge operator"), "{e}");
}

#[test]
fn a_keyspace_ingests_into_itself_only() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let ks = db.keyspace("other").unwrap();
    ks.put(key(1), b"old").unwrap();
    let path = build(&fs, "a.sst", 0..10, 1);
    ks.ingest(&[&path], &IngestOptions::default()).unwrap();
    assert_eq!(ks.get(key(1)).unwrap().unwrap().to_vec(), value(1, 1));
    assert_eq!(get(&db, 1), None);
    drop((ks, db));
    let db = open_mem(&fs);
    let ks = db.keyspace("other").unwrap();
    assert_eq!(ks.get(key(9)).unwrap().unwrap().to_vec(), value(9, 1));
    db.check_invariants().unwrap();
}

/// Crash at every filesystem operation of an ingestion in turn: after the
/// power loss the database holds all of the ingested keys or none, every
/// write synced before it, and no table no version names.
#[test]
fn an_ingestion_is_all_or_nothing_under_power_loss() {
    for (overlap, moving) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut crash_at = 1;
        // Crashes that left the ingestion out, and that left it in.
        let mut outcomes = [0, 0];
        loop {
            let fs = MemFileSystem::new();
            let db = open_mem(&fs);
            let sync = WriteOptions {
                sync: true,
                ..WriteOptions::default()
            };
            for i in 0..50 {
                db.put_opt(key(i), value(i, 0), &sync).unwrap();
            }
            db.flush().unwrap();
            // Unsynced writes: in the range of a table (the ingestion
            // flushes them first and numbers the tables), or beside
            // everything (the tables keep number 0; it only syncs the WAL).
            let unsynced = if overlap { 50..60 } else { 200..210 };
            for i in unsynced.clone() {
                db.put(key(i), value(i, 0)).unwrap();
            }
            let a_keys = if overlap { 40..70 } else { 60..90 };
            let a = build(&fs, "a.sst", a_keys.clone().step_by(2), 1);
            let b = build(&fs, "b.sst", 100..130, 1);
            fs.sync_dir(&ext_dir()).unwrap();
            let opts = IngestOptions {
                move_files: moving,
                ..IngestOptions::default()
            };
            fs.crash_after(crash_at);
            let done = db.ingest(&[&a, &b], &opts).is_ok();
            let crashed = fs.is_crashed();
            if !crashed {
                assert!(done, "the ingestion failed without a crash");
            }
            power_cycle(&fs, db, UnsyncedData::KeepRandomPages(crash_at));
            let db = open_mem(&fs);
            let has_b = get(&db, 100).is_some();
            let has_a = get(&db, a_keys.start) == Some(value(a_keys.start, 1));
            assert_eq!(
                has_a, has_b,
                "half an ingestion (crash at op {crash_at}, overlap {overlap})"
            );
            if crashed {
                outcomes[usize::from(has_b)] += 1;
            }
            if has_b {
                for i in 100..130 {
                    assert_eq!(get(&db, i), Some(value(i, 1)));
                }
                for i in a_keys.clone().step_by(2) {
                    assert_eq!(get(&db, i), Some(value(i, 1)));
                }
                // Acknowledged before the ingestion, which made them
                // durable first.
                for i in unsynced.filter(|i| !a_keys.contains(i) || i % 2 == 1) {
                    assert_eq!(
                        get(&db, i),
                        Some(value(i, 0)),
                        "key {i} (crash at op {crash_at})"
                    );
                }
            }
            for i in 0..50 {
                if !(has_a && a_keys.contains(&i) && i % 2 == 0) {
                    assert_eq!(
                        get(&db, i),
                        Some(value(i, 0)),
                        "synced key {i} (crash at op {crash_at})"
                    );
                }
            }
            db.check_invariants().unwrap();
            let live: Vec<u64> = db.live_files().iter().map(|f| f.number).collect();
            for t in tables(&fs) {
                let n: u64 = t.file_stem().unwrap().to_str().unwrap().parse().unwrap();
                assert!(
                    live.contains(&n),
                    "stray table {} after reopen (crash at op {crash_at})",
                    t.display()
                );
            }
            if !crashed {
                assert!(has_b);
                break;
            }
            crash_at += 1;
        }
        // Crashes before the commit point were tried, and after it when
        // a move leaves work to do (removing the files' old names).
        assert!(
            outcomes[0] > 5,
            "{outcomes:?} (overlap {overlap}, move {moving})"
        );
        if moving {
            assert!(outcomes[1] > 0, "{outcomes:?} (overlap {overlap})");
        }
    }
}

/// A numbered ingestion into one keyspace while another keyspace's writes
/// sit in the WAL: the WAL stays replayable after the other keyspace
/// flushes (it holds this one's later writes), and replay must still
/// accept the other keyspace's older records (the model test found it).
#[test]
fn a_numbered_ingestion_beside_another_keyspaces_unflushed_writes_reopens() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let other = db.keyspace("other").unwrap();
    other.put(key(1), b"old").unwrap();
    other.flush().unwrap();
    db.put(key(2), b"default").unwrap();
    // Overlaps `other`'s table: numbered after the default keyspace's put.
    let path = build(&fs, "a.sst", 0..5, 1);
    other.ingest(&[&path], &IngestOptions::default()).unwrap();
    other.put(key(7), b"after").unwrap();
    db.flush().unwrap();
    drop((other, db));
    let db = open_mem(&fs);
    let other = db.keyspace("other").unwrap();
    assert_eq!(other.get(key(1)).unwrap().unwrap().to_vec(), value(1, 1));
    assert_eq!(other.get(key(7)).unwrap().unwrap().to_vec(), b"after");
    assert_eq!(get(&db, 2), Some(b"default".to_vec()));
    db.check_invariants().unwrap();
}

/// A copied file larger than the copy's read window (4 MiB) arrives whole.
#[test]
fn a_large_file_is_copied_in_whole() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    fs.create_dir_all(&ext_dir()).unwrap();
    let path = ext_dir().join("large.sst");
    let mut w = SstWriter::create(&path, &mem_options(&fs)).unwrap();
    for i in 0..60_000 {
        w.put(key(i), [b'v'; 100]).unwrap();
    }
    let info = w.finish().unwrap();
    assert!(info.file_size > 5 << 20, "{}", info.file_size);
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    assert_eq!(db.iter().count(), 60_000);
    assert_eq!(
        db.get(key(59_999)).unwrap().unwrap().to_vec(),
        vec![b'v'; 100]
    );
    db.check_invariants().unwrap();
}

/// Found in review: a resume's clean-up deleted the tables an ingestion
/// had brought in and not yet committed (no version names them), and the
/// ingestion then failed on the missing file. Here the resume runs
/// between the two.
#[test]
fn a_resume_during_an_ingestion_leaves_the_tables_it_brought_in() {
    use std::sync::Mutex;
    use strata::HookPoint;
    let fs = MemFileSystem::new();
    let handle: Arc<Mutex<Option<Db>>> = Arc::default();
    let hook = {
        let (handle, fs) = (Arc::clone(&handle), fs.clone());
        Arc::new(move |point: HookPoint| {
            if point != HookPoint::IngestPlaced {
                return Ok(());
            }
            let Some(db) = handle.lock().unwrap().take() else {
                return Ok(());
            };
            fail_wal_sync_and_resume(&fs, &db);
            Ok(())
        })
    };
    let options = Options {
        test_hook: Some(hook),
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    let file = build(&fs, "a.sst", 0..10, 1);
    *handle.lock().unwrap() = Some(db.clone());
    db.ingest(&[&file], &IngestOptions::default()).unwrap();
    assert!(handle.lock().unwrap().is_none(), "the hook ran");
    assert_eq!(get(&db, 3), Some(value(3, 1)));
}

/// What strata-raft's snapshot install does: tables built through the
/// database's own filesystem (`Db::file_system`), whose range deletes tile
/// the whole key space (`[b"", k)` in one, `[k, +inf)` in the next, with
/// `delete_range_from`, which reaches the largest key there can be),
/// replace a keyspace's contents in one ingestion: tables sharing an
/// exclusive end are disjoint, each table's own keys survive its range
/// delete, and every older key goes, in the memtable and in tables alike.
#[test]
fn tables_whose_range_deletes_tile_the_key_space_replace_a_keyspace() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let ks = db.keyspace("data").unwrap();
    let largest = vec![0xFF; strata::MAX_KEY_SIZE];
    for i in 0..100 {
        ks.put(key(i), value(i, 0)).unwrap();
    }
    ks.put(&largest, b"old").unwrap();
    ks.flush().unwrap();
    for i in 100..120 {
        ks.put(key(i), value(i, 0)).unwrap();
    }
    db.put(key(1), b"default keyspace").unwrap();

    let sys = db.file_system();
    sys.create_dir_all(&ext_dir()).unwrap();
    let options = Options {
        fs: db.file_system(),
        ..Options::default()
    };
    let mut first = SstWriter::create(ext_dir().join("first.sst"), &options).unwrap();
    first.delete_range(b"", key(50)).unwrap();
    let mut second = SstWriter::create(ext_dir().join("second.sst"), &options).unwrap();
    second.delete_range_from(key(50)).unwrap();
    let mut expected = Vec::new();
    for i in (10..70).step_by(3) {
        let writer = if key(i) < key(50) {
            &mut first
        } else {
            &mut second
        };
        writer.put(key(i), value(i, 1)).unwrap();
        expected.push((key(i), value(i, 1)));
    }
    let files = [
        first.finish().unwrap().file_path,
        second.finish().unwrap().file_path,
    ];
    ks.ingest(&files, &IngestOptions::default()).unwrap();

    let contents = |ks: &strata::Keyspace| -> Vec<(Vec<u8>, Vec<u8>)> {
        ks.iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect()
    };
    assert_eq!(contents(&ks), expected);
    assert_eq!(ks.get(&largest).unwrap(), None, "the largest key survived");
    assert_eq!(
        db.get(key(1)).unwrap().as_deref(),
        Some(&b"default keyspace"[..])
    );
    drop(ks);
    drop(db);
    let db = open_mem(&fs);
    let ks = db.keyspace("data").unwrap();
    assert_eq!(contents(&ks), expected, "after reopening");
}

#[test]
fn a_range_delete_to_the_end_refuses_a_start_longer_than_a_key() {
    let fs = MemFileSystem::new();
    fs.create_dir_all(&ext_dir()).unwrap();
    let mut w = SstWriter::create(ext_dir().join("t.sst"), &mem_options(&fs)).unwrap();
    let err = w
        .delete_range_from(vec![b'a'; strata::MAX_KEY_SIZE + 1])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    w.delete_range_from(b"a").unwrap();
    assert_eq!(w.finish().unwrap().num_range_del_entries, 1);
}
