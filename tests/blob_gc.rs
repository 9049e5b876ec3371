//! Blob garbage accounting and garbage collection (issue 23,
//! docs/design/blob-files.md): compaction counts the references it drops
//! or relocates as garbage of their blob files, exactly and durably, and
//! with `enable_blob_garbage_collection` relocates live values out of the
//! oldest blob files so those files go.

// Helpers outside `#[test]` functions unwrap too: a failure is the test's.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use strata::{Db, LiveBlobFile, Options};

fn blob_options() -> Options {
    Options {
        enable_blob_files: true,
        min_blob_size: 100,
        // No compaction but the ones a test asks for.
        level0_file_num_compaction_trigger: 10,
        // RocksDB's rule: every file within the age cutoff, whatever its
        // garbage (the tests of the ratio set it themselves).
        blob_garbage_collection_min_garbage_ratio: 0.0,
        ..Options::default()
    }
}

fn gc_options(age_cutoff: f64, force_threshold: f64) -> Options {
    Options {
        enable_blob_garbage_collection: true,
        blob_garbage_collection_age_cutoff: age_cutoff,
        blob_garbage_collection_force_threshold: force_threshold,
        ..blob_options()
    }
}

/// Values of distinct sizes, so that garbage bytes say which ones.
fn big(i: usize, round: u8) -> Vec<u8> {
    let mut v = format!("value-{i:05}-round-{round}-").into_bytes();
    v.resize(300 + (i % 101) * 7, b'a' + round);
    v
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn blob_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".blob"))
        .collect();
    v.sort();
    v
}

fn blob_bytes_on_disk(dir: &std::path::Path) -> u64 {
    blob_names(dir)
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).unwrap().len())
        .sum()
}

fn check(db: &Db, expect: &BTreeMap<Vec<u8>, Vec<u8>>) {
    for (k, v) in expect {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(v.as_slice()), "{k:?}");
    }
    let scanned: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> =
        expect.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(scanned, want);
}

/// `(number, total count, total bytes, garbage count, garbage bytes)`.
fn summary(files: &[LiveBlobFile]) -> Vec<(u64, u64, u64, u64, u64)> {
    files
        .iter()
        .map(|f| {
            (
                f.number,
                f.total_count,
                f.total_bytes,
                f.garbage_count,
                f.garbage_bytes,
            )
        })
        .collect()
}

#[test]
fn compaction_counts_dropped_references_as_garbage_exactly_and_it_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut expect = BTreeMap::new();
    let db = Db::open(dir.path(), blob_options()).unwrap();
    for i in 0..100 {
        db.put(key(i), big(i, 0)).unwrap();
        expect.insert(key(i), big(i, 0));
    }
    db.flush().unwrap();
    let first = db.live_blob_files().unwrap();
    let round0_bytes: u64 = (0..100).map(|i| big(i, 0).len() as u64).sum();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (
            first[0].total_count,
            first[0].total_bytes,
            first[0].garbage_count
        ),
        (100, round0_bytes, 0)
    );
    let a = first[0].number;

    // Overwrite 0..30 and delete 30..50: 50 of the first file's values
    // are dead once a compaction drops their references.
    for i in 0..30 {
        db.put(key(i), big(i, 1)).unwrap();
        expect.insert(key(i), big(i, 1));
    }
    for i in 30..50 {
        db.delete(key(i)).unwrap();
        expect.remove(&key(i));
    }
    db.flush().unwrap();
    let before = db.live_blob_files().unwrap();
    assert_eq!(before.len(), 2);
    assert!(
        before.iter().all(|f| f.garbage_count == 0),
        "no compaction yet: {before:?}"
    );
    let b = before[1].number;
    db.compact_range::<&[u8], _>(..).unwrap();
    check(&db, &expect);

    let dead_bytes: u64 = (0..50).map(|i| big(i, 0).len() as u64).sum();
    let round1_bytes: u64 = (0..30).map(|i| big(i, 1).len() as u64).sum();
    let want = vec![
        (a, 100, round0_bytes, 50, dead_bytes),
        (b, 30, round1_bytes, 0, 0),
    ];
    assert_eq!(summary(&db.live_blob_files().unwrap()), want);
    let text = db.property("strata.blob-stats").unwrap();
    assert!(
        text.contains(&format!("{a:06}.blob"))
            && text.contains(&format!(" 100 {round0_bytes} 50 {dead_bytes} ")),
        "{text}"
    );
    assert!(text.contains("total(2 files)"), "{text}");

    // Recorded in the MANIFEST: the same after a reopen (which starts a
    // fresh MANIFEST from a snapshot of the state), and after another.
    drop(db);
    for _ in 0..2 {
        let db = Db::open(dir.path(), blob_options()).unwrap();
        assert_eq!(summary(&db.live_blob_files().unwrap()), want);
        check(&db, &expect);
    }

    // Garbage adds up over compactions: delete 50..60 too.
    let db = Db::open(dir.path(), blob_options()).unwrap();
    for i in 50..60 {
        db.delete(key(i)).unwrap();
        expect.remove(&key(i));
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let more: u64 = (50..60).map(|i| big(i, 0).len() as u64).sum();
    assert_eq!(
        summary(&db.live_blob_files().unwrap()),
        vec![
            (a, 100, round0_bytes, 60, dead_bytes + more),
            (b, 30, round1_bytes, 0, 0),
        ]
    );
    check(&db, &expect);
    db.check_invariants().unwrap();
}

#[test]
fn references_dropped_by_range_deletes_are_garbage_whether_tables_are_read_or_not() {
    // Small tables: the range delete covers some whole (dropped unread,
    // by a delete-only compaction, their recorded references counted)
    // and some in part (rewritten). Either way each dead value counts
    // once.
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        target_file_size_base: 64 << 10,
        ..blob_options()
    };
    let db = Db::open(dir.path(), options).unwrap();
    let mut expect = BTreeMap::new();
    for i in 0..12_000 {
        db.put(key(i), big(i, 0)).unwrap();
        expect.insert(key(i), big(i, 0));
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert!(db.live_files().len() > 2, "{}", db.live_files().len());
    db.delete_range(key(10)..key(9_000)).unwrap();
    for i in 10..9_000 {
        expect.remove(&key(i));
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    check(&db, &expect);
    let files = db.live_blob_files().unwrap();
    let dead: u64 = (10..9_000).map(|i| big(i, 0).len() as u64).sum();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        (files[0].garbage_count, files[0].garbage_bytes),
        (8_990, dead)
    );
    db.check_invariants().unwrap();
}

/// Write 100 values, overwrite all but the first, compact everything:
/// the first blob file holds one live value among 99 dead ones.
fn overwrite_all_but_one(db: &Db, expect: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for i in 0..100 {
        db.put(key(i), big(i, 0)).unwrap();
        expect.insert(key(i), big(i, 0));
    }
    db.flush().unwrap();
    for i in 1..100 {
        db.put(key(i), big(i, 1)).unwrap();
        expect.insert(key(i), big(i, 1));
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    db.wait_for_compactions().unwrap();
}

#[test]
fn garbage_collection_relocates_live_values_so_old_blob_files_go() {
    let mut disk = Vec::new();
    for gc in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            enable_blob_garbage_collection: gc,
            // Of two blob files, the older is collected.
            blob_garbage_collection_age_cutoff: 0.5,
            ..blob_options()
        };
        let mut expect = BTreeMap::new();
        let db = Db::open(dir.path(), options.clone()).unwrap();
        overwrite_all_but_one(&db, &mut expect);
        let files = db.live_blob_files().unwrap();
        check(&db, &expect);
        if gc {
            // The first file's one live value moved to a file of the
            // compaction's; the first file is gone.
            assert_eq!(files.len(), 2, "{files:?}");
            assert_eq!((files[0].total_count, files[0].garbage_count), (99, 0));
            assert_eq!((files[1].total_count, files[1].garbage_count), (1, 0));
            assert!(files[1].number > files[0].number);
        } else {
            assert_eq!(files.len(), 2, "{files:?}");
            assert_eq!((files[0].total_count, files[0].garbage_count), (100, 99));
            assert_eq!((files[1].total_count, files[1].garbage_count), (99, 0));
        }
        assert_eq!(blob_names(dir.path()).len(), 2);
        disk.push(blob_bytes_on_disk(dir.path()));
        drop(db);
        let db = Db::open(dir.path(), options).unwrap();
        check(&db, &expect);
        db.check_invariants().unwrap();
    }
    // The first file held 100 values of which one lives on: collecting it
    // returns nearly half the space.
    assert!(disk[1] * 10 < disk[0] * 6, "{disk:?}");
}

#[test]
fn relocated_values_go_back_into_tables_when_blob_files_are_off() {
    // RocksDB's behaviour: garbage collection with blob files disabled
    // (since the values were written) inlines them.
    let dir = tempfile::tempdir().unwrap();
    let mut expect = BTreeMap::new();
    {
        let db = Db::open(dir.path(), blob_options()).unwrap();
        for i in 0..20 {
            db.put(key(i), big(i, 0)).unwrap();
            expect.insert(key(i), big(i, 0));
        }
        db.flush().unwrap();
    }
    let options = Options {
        enable_blob_files: false,
        ..gc_options(1.0, 1.0)
    };
    let db = Db::open(dir.path(), options).unwrap();
    db.put(key(5), b"small").unwrap();
    expect.insert(key(5), b"small".to_vec());
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    db.wait_for_compactions().unwrap();
    check(&db, &expect);
    assert!(db.live_blob_files().unwrap().is_empty());
    assert!(blob_names(dir.path()).is_empty());
}

#[test]
fn force_threshold_compacts_the_tables_that_pin_the_oldest_blob_file() {
    for (threshold, collected) in [(1.0, false), (0.4, true)] {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            // Small tables: the overwrite's compaction meets only some of
            // the tables referring to the first blob file.
            target_file_size_base: 64 << 10,
            ..gc_options(0.5, threshold)
        };
        let db = Db::open(dir.path(), options).unwrap();
        let mut expect = BTreeMap::new();
        for i in 0..12_000 {
            db.put(key(i), big(i, 0)).unwrap();
            expect.insert(key(i), big(i, 0));
        }
        db.flush().unwrap();
        db.compact_range::<&[u8], _>(..).unwrap();
        let a = db.live_blob_files().unwrap()[0].number;
        assert!(db.live_files().len() > 2, "{:?}", db.live_files().len());
        // Overwrite the first half: compacted with the tables holding
        // it, the first file is half garbage (the tables holding the
        // other half are not in that compaction).
        for i in 0..6_000 {
            db.put(key(i), big(i, 1)).unwrap();
            expect.insert(key(i), big(i, 1));
        }
        db.flush().unwrap();
        db.compact_range(key(0)..=key(5_999)).unwrap();
        db.wait_for_compactions().unwrap();
        check(&db, &expect);
        let files = db.live_blob_files().unwrap();
        assert_eq!(
            files.iter().any(|f| f.number == a),
            !collected,
            "threshold {threshold}: {files:?}"
        );
        if collected {
            assert!(files.iter().all(|f| f.garbage_count == 0), "{files:?}");
        } else {
            let first = &files[0];
            assert!(first.garbage_ratio() >= 0.4, "{first:?}");
        }
        db.check_invariants().unwrap();
    }
}

/// With `blob_garbage_collection_min_garbage_ratio`, a compaction leaves
/// the values of an old blob file with too little garbage where they are
/// (RocksDB's rule rewrote them on every compaction: a fill, which makes
/// no garbage, relocated a quarter of its data again and again), and
/// relocates them once the file's garbage reaches the ratio. Automatic
/// compactions (a manual one relocates at any garbage, below).
#[test]
fn only_files_with_enough_garbage_are_relocated() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        enable_blob_garbage_collection: true,
        // Of the blob files, all but the newest are old enough.
        blob_garbage_collection_age_cutoff: 0.9,
        blob_garbage_collection_min_garbage_ratio: 0.25,
        // Every flush is compacted into the table below it.
        level0_file_num_compaction_trigger: 1,
        ..blob_options()
    };
    let mut expect = BTreeMap::new();
    let db = Db::open(dir.path(), options.clone()).unwrap();
    // A flush of `keys` at `round`, and the compaction it triggers.
    let write = |expect: &mut BTreeMap<Vec<u8>, Vec<u8>>, keys: &[usize], round: u8| {
        for &i in keys {
            db.put(key(i), big(i, round)).unwrap();
            expect.insert(key(i), big(i, round));
        }
        db.flush().unwrap();
        db.wait_for_compactions().unwrap();
    };
    let evens: Vec<usize> = (0..100).step_by(2).collect();
    let odds: Vec<usize> = (1..100).step_by(2).collect();
    write(&mut expect, &evens, 0);
    let first = db.live_blob_files().unwrap()[0].number;
    write(&mut expect, &odds, 1);
    // No garbage anywhere: the compactions relocated nothing.
    let files = summary(&db.live_blob_files().unwrap());
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files[0].0, first);
    write(&mut expect, &[99], 2);
    check(&db, &expect);

    // 10 of the first file's 50 values overwritten: 20% of its values
    // garbage once a compaction counts it (13% of its bytes), below the
    // ratio; the next compaction relocates nothing still.
    let ten: Vec<usize> = (0..20).step_by(2).collect();
    write(&mut expect, &ten, 3);
    write(&mut expect, &[99], 4);
    let files = db.live_blob_files().unwrap();
    let f = files.iter().find(|f| f.number == first).unwrap();
    assert_eq!((f.total_count, f.garbage_count), (50, 10), "{files:?}");

    // 10 more: 40% once counted (27% of its bytes, which the ratio is
    // of), then the next compaction relocates the 30 live values and the
    // file goes.
    let ten: Vec<usize> = (20..40).step_by(2).collect();
    write(&mut expect, &ten, 5);
    let f = db
        .live_blob_files()
        .unwrap()
        .into_iter()
        .find(|f| f.number == first);
    assert_eq!(
        f.map(|f| f.garbage_count),
        Some(20),
        "counted, not yet collected"
    );
    write(&mut expect, &[99], 6);
    let files = db.live_blob_files().unwrap();
    assert!(
        files.iter().all(|f| f.number != first),
        "the first file is collected: {files:?}"
    );
    check(&db, &expect);
    drop(db);
    let db = Db::open(dir.path(), options).unwrap();
    check(&db, &expect);
    db.check_invariants().unwrap();
}

/// `compact_range` is how a user asks for the space back now: it
/// relocates out of every old blob file with any garbage, below
/// `blob_garbage_collection_min_garbage_ratio` too.
#[test]
fn a_manual_compaction_relocates_out_of_old_files_with_any_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        enable_blob_garbage_collection: true,
        blob_garbage_collection_age_cutoff: 0.5,
        blob_garbage_collection_min_garbage_ratio: 0.9,
        ..blob_options()
    };
    let mut expect = BTreeMap::new();
    let db = Db::open(dir.path(), options).unwrap();
    // The first file: 1 of its 100 values garbage once counted.
    overwrite_first_of_hundred(&db, &mut expect);
    let first = db.live_blob_files().unwrap()[0].number;
    // A write inside the range, so that the next manual compaction
    // rewrites the table (a lone bottom table is not compacted again).
    db.put(key(50), b"small").unwrap();
    expect.insert(key(50), b"small".to_vec());
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let files = db.live_blob_files().unwrap();
    assert!(
        files.iter().all(|f| f.number != first),
        "the first file is collected: {files:?}"
    );
    check(&db, &expect);
}

/// 100 values in one blob file, then key 0 overwritten and everything
/// compacted: the first file holds one value of garbage, counted.
fn overwrite_first_of_hundred(db: &Db, expect: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for i in 0..100 {
        db.put(key(i), big(i, 0)).unwrap();
        expect.insert(key(i), big(i, 0));
    }
    db.flush().unwrap();
    db.put(key(0), big(0, 1)).unwrap();
    expect.insert(key(0), big(0, 1));
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let files = db.live_blob_files().unwrap();
    assert_eq!(
        (files[0].total_count, files[0].garbage_count),
        (100, 1),
        "{files:?}"
    );
}

/// A force threshold of 0 with no garbage anywhere forces nothing. The
/// check was "garbage below threshold × total", never true at 0: every
/// batch of old files was due, the next one as soon as the one before was
/// collected, and compactions never ended (a reviewer's finding). The hook
/// stops a runaway after 20 compactions (a panic there is a background
/// error every waiter sees).
#[test]
fn a_force_threshold_of_zero_forces_nothing_without_garbage() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use strata::HookPoint;
    let dir = tempfile::tempdir().unwrap();
    let compactions = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&compactions);
    let options = Options {
        test_hook: Some(Arc::new(move |p| {
            if p == HookPoint::Compaction && counted.fetch_add(1, Ordering::SeqCst) >= 20 {
                panic!("compactions without end");
            }
            Ok(())
        })),
        ..gc_options(1.0, 0.0)
    };
    let db = Db::open(dir.path(), options).unwrap();
    let mut expect = BTreeMap::new();
    // Four blob files of distinct keys: old enough, no garbage.
    for round in 0..4u8 {
        for i in (0..100).filter(|i| i % 4 == usize::from(round)) {
            db.put(key(i), big(i, round)).unwrap();
            expect.insert(key(i), big(i, round));
        }
        db.flush().unwrap();
    }
    db.wait_for_compactions().unwrap();
    assert_eq!(compactions.load(Ordering::SeqCst), 0);
    assert_eq!(db.live_blob_files().unwrap().len(), 4);
    check(&db, &expect);
}

/// A compaction that fails after writing its outputs (here the directory
/// sync before its edit) gives back the live-table counts its outputs
/// took on the blob files they list when they were opened: they were
/// dropped without that, so such a blob file outlived its last real table
/// on disk (a reviewer's finding). Here the first blob file: after the
/// failure, key 0 (its last live value) is overwritten and compacted away,
/// and the file must go.
#[test]
fn a_failed_compaction_leaves_no_blob_file_alive() {
    use std::path::PathBuf;
    use std::sync::Arc;
    use strata::fs::{FaultPlan, FileSystem, FsOp, MemFileSystem};
    let fs = MemFileSystem::new();
    let dir = PathBuf::from("/db");
    let options = Options {
        fs: Arc::new(fs.clone()),
        ..blob_options()
    };
    let blobs = |fs: &MemFileSystem| -> Vec<String> {
        let mut v: Vec<String> = fs
            .list(&dir)
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".blob"))
            .collect();
        v.sort();
        v
    };
    let db = Db::open(&dir, options).unwrap();
    let mut expect = BTreeMap::new();
    overwrite_first_of_hundred_no_compaction(&db, &mut expect);
    let first = format!("{:06}.blob", db.live_blob_files().unwrap()[0].number);
    fs.add_fault(FaultPlan {
        op: Some(FsOp::SyncDir),
        path_contains: None,
        skip: 0,
        count: 1,
    });
    assert!(db.compact_range::<&[u8], _>(..).is_err());
    fs.clear_faults();
    let _ = db.resume();
    db.put(key(0), b"small").unwrap();
    expect.insert(key(0), b"small".to_vec());
    db.compact_range::<&[u8], _>(..).unwrap();
    db.wait_for_compactions().unwrap();
    let live = db.live_blob_files().unwrap();
    assert!(live
        .iter()
        .all(|f| format!("{:06}.blob", f.number) != first));
    assert!(
        !blobs(&fs).contains(&first),
        "{first} outlived its last table: {:?}",
        blobs(&fs)
    );
    check(&db, &expect);
}

/// 100 values in one blob file, then 99 of them overwritten into a second
/// (flushed, not compacted): the first file's one live value is key 0's.
fn overwrite_first_of_hundred_no_compaction(db: &Db, expect: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for i in 0..100 {
        db.put(key(i), big(i, 0)).unwrap();
        expect.insert(key(i), big(i, 0));
    }
    db.flush().unwrap();
    for i in 1..100 {
        db.put(key(i), big(i, 1)).unwrap();
        expect.insert(key(i), big(i, 1));
    }
    db.flush().unwrap();
}
