//! Read-only open (`Db::open_read_only`): a view as of the last MANIFEST
//! and the WALs, taking no LOCK and changing no file; `refresh` catches up
//! with a running writer, and no refresh ever shows part of a batch.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use strata::fs::{FileSystem, MemFileSystem};
use strata::{Db, Error, ReadOnlyDb, WriteBatch};

/// Each batch `i` writes `a{i}` and `b{i}` (value `i`) and overwrites
/// `last` with `i`: a view holds both or neither, and `last` names the
/// newest batch it holds.
fn batch(i: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    let v = i.to_be_bytes();
    b.put(format!("a{i:08}"), v);
    b.put(format!("b{i:08}"), v);
    b.put("last", v);
    b
}

/// The number of batches the view holds, checking they are whole and a
/// prefix of the writes.
fn check_view(ro: &ReadOnlyDb) -> u64 {
    let entries: Vec<(Vec<u8>, Vec<u8>)> = ro
        .iter()
        .unwrap()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    let a: Vec<_> = entries.iter().filter(|(k, _)| k[0] == b'a').collect();
    let b: Vec<_> = entries.iter().filter(|(k, _)| k[0] == b'b').collect();
    assert_eq!(a.len(), b.len(), "a batch seen in part");
    for (i, ((ka, va), (kb, vb))) in a.iter().zip(&b).enumerate() {
        assert_eq!(&ka[1..], &kb[1..]);
        assert_eq!(va, vb);
        assert_eq!(
            va.as_slice(),
            (i as u64).to_be_bytes(),
            "not a prefix of the writes"
        );
    }
    let n = a.len() as u64;
    let last = ro.get("last").unwrap();
    match n {
        0 => assert_eq!(last, None),
        n => assert_eq!(last.as_deref(), Some(&(n - 1).to_be_bytes()[..])),
    }
    n
}

/// `refresh`, again while it fails with `Error::Io`: a writer changing
/// its MANIFEST or deleting files during every one of a refresh's builds
/// makes it give up and keep its view (a scheduling matter, not a
/// defect), and the caller tries again, as the crash test's reader does.
/// Bounded: 20 failures in a row fail the test.
fn refresh_retrying(ro: &ReadOnlyDb) {
    for _ in 0..20 {
        match ro.refresh() {
            Ok(()) => return,
            Err(Error::Io { .. }) => {}
            Err(e) => panic!("refresh: {e}"),
        }
    }
    panic!("20 refreshes in a row failed");
}

#[test]
fn a_reader_follows_a_writer_that_flushes_and_compacts_and_never_sees_part_of_a_batch() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.write(batch(0)).unwrap();
    // No LOCK: it opens beside the writer.
    let ro = Db::open_read_only(mem_dir(), mem_options(&fs)).unwrap();
    assert_eq!(check_view(&ro), 1);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, done) = (db.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            for i in 1..3000u64 {
                db.write(batch(i)).unwrap();
                if i % 500 == 0 {
                    db.flush().unwrap();
                    db.compact_range::<&[u8], _>(..).unwrap();
                }
            }
            done.store(true, Ordering::Release);
        })
    };
    let mut seen = 1;
    let mut refreshes = 0;
    while !done.load(Ordering::Acquire) {
        refresh_retrying(&ro);
        let n = check_view(&ro);
        assert!(n >= seen, "a refresh went back from {seen} to {n} batches");
        seen = n;
        refreshes += 1;
    }
    writer.join().unwrap();
    // Background compactions may still delete files: retried as above.
    refresh_retrying(&ro);
    assert_eq!(check_view(&ro), 3000);
    assert!(refreshes > 0);
    // Writes are refused.
    assert!(matches!(ro.put("x", "y"), Err(Error::ReadOnly { .. })));
    assert!(matches!(ro.write(batch(1)), Err(Error::ReadOnly { .. })));
    assert_eq!(db.get("x").unwrap(), None);
}

#[test]
fn a_read_only_open_changes_no_file_and_sees_the_wals() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for i in 0..100 {
        db.write(batch(i)).unwrap();
    }
    db.flush().unwrap();
    for i in 100..150 {
        db.write(batch(i)).unwrap();
    }
    let listing = |fs: &MemFileSystem| {
        let mut v: Vec<(String, u64)> = fs
            .list(&mem_dir())
            .unwrap()
            .into_iter()
            .map(|n| {
                let size = fs.file_size(&mem_dir().join(&n)).unwrap();
                (n, size)
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(&fs);
    let ro = Db::open_read_only(mem_dir(), mem_options(&fs)).unwrap();
    // The 50 batches after the flush are only in the WAL.
    assert_eq!(check_view(&ro), 150);
    ro.refresh().unwrap();
    assert_eq!(listing(&fs), before);
    // A keyspace created by the writer appears at the next refresh.
    let ks = db.keyspace("orders").unwrap();
    ks.put("o1", "x").unwrap();
    assert_eq!(ro.keyspace_names(), ["default"]);
    ro.refresh().unwrap();
    assert_eq!(
        ro.get_in("orders", "o1").unwrap().as_deref(),
        Some(&b"x"[..])
    );
    assert!(matches!(
        ro.get_in("nope", "o1"),
        Err(Error::InvalidArgument(_))
    ));
}

/// A read-only open whose WAL listing is followed, before its WAL replay,
/// by a writer's ingestion (an edit no WAL holds) and a synced put: built
/// once, the view would hold the put but not the ingested key, which is no
/// prefix of the writes. The build sees the MANIFEST change and builds
/// again. `changes` is how many builds the writer changes the MANIFEST
/// under (`usize::MAX`: every one).
fn open_read_only_while_a_writer_ingests(changes: usize) -> (ReadOnlyDb, usize) {
    use std::sync::atomic::AtomicUsize;
    let fs = MemFileSystem::new();
    let writer = Arc::new(open_mem(&fs));
    writer
        .put_opt(
            "before",
            "1",
            &strata::WriteOptions {
                sync: true,
                ..Default::default()
            },
        )
        .unwrap();
    let loads = Arc::new(AtomicUsize::new(0));
    let hook: strata::TestHook = {
        let (writer, loads, fs) = (Arc::clone(&writer), Arc::clone(&loads), fs.clone());
        Arc::new(move |point| {
            if point == strata::HookPoint::ReadOnlyWalsListed {
                let n = loads.fetch_add(1, Ordering::SeqCst);
                if n < changes {
                    let ext = std::path::PathBuf::from(format!("/ext{n}"));
                    fs.create_dir_all(&ext).unwrap();
                    let path = ext.join("t.sst");
                    let mut w = strata::SstWriter::create(&path, &mem_options(&fs)).unwrap();
                    w.put(format!("ingested{n:04}"), "i").unwrap();
                    w.finish().unwrap();
                    writer
                        .ingest(&[&path], &strata::IngestOptions::default())
                        .unwrap();
                    let sync = strata::WriteOptions {
                        sync: true,
                        ..Default::default()
                    };
                    writer.put_opt(format!("after{n:04}"), "a", &sync).unwrap();
                }
            }
            Ok(())
        })
    };
    let options = strata::Options {
        test_hook: Some(hook),
        ..mem_options(&fs)
    };
    let ro = Db::open_read_only(mem_dir(), options).unwrap();
    let loads = loads.load(Ordering::SeqCst);
    (ro, loads)
}

#[test]
fn a_manifest_changed_during_the_build_makes_the_view_build_again() {
    let (ro, loads) = open_read_only_while_a_writer_ingests(1);
    assert_eq!(ro.get("before").unwrap().as_deref(), Some(&b"1"[..]));
    // The put made after the ingestion is seen, and so is the ingestion.
    assert_eq!(ro.get("after0000").unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(
        ro.get("ingested0000").unwrap().as_deref(),
        Some(&b"i"[..]),
        "not a prefix"
    );
    assert_eq!(loads, 2, "built once more after the MANIFEST changed");
}

#[test]
fn a_manifest_changing_during_every_build_ends_the_builds_at_the_bound() {
    let (ro, loads) = open_read_only_while_a_writer_ingests(usize::MAX);
    // Bounded: the open returns, with the last view built (docs/design/read-only.md).
    assert_eq!(loads, 8);
    assert_eq!(ro.get("before").unwrap().as_deref(), Some(&b"1"[..]));
    for n in 0..7 {
        assert!(
            ro.get(format!("ingested{n:04}")).unwrap().is_some(),
            "ingestion {n}"
        );
    }
}

/// A writer whose flushes never start a compaction: a background
/// compaction deleting a table during a reader's MANIFEST load makes that
/// build end before the hook the tests count (a file gone), so the counts
/// would depend on timing.
fn open_writer_that_never_compacts(fs: &MemFileSystem) -> Db {
    let options = strata::Options {
        level0_file_num_compaction_trigger: 1000,
        level0_slowdown_writes_trigger: 1000,
        level0_stop_writes_trigger: 1000,
        ..mem_options(fs)
    };
    Db::open(mem_dir(), options).expect("open in-memory database")
}

/// A refresh never goes back (the crash test's reader: "a refresh went
/// back: 39162 transfers after 39163"). A writer changing its MANIFEST
/// during every build got the last build's view even so; in that build
/// the writer flushed, and deleted, the WAL holding `x` between the
/// MANIFEST's load (before the flush) and the WAL listing: the chain
/// began at a WAL whose predecessor was gone, the replay ended there, and
/// the view lacked `x`, which the view before it held. A build whose
/// MANIFEST changed before its WAL listing is built again, as for any
/// file gone.
#[test]
fn a_refresh_racing_a_flush_that_deletes_a_wal_never_goes_back() {
    use std::sync::atomic::AtomicUsize;
    let fs = MemFileSystem::new();
    let writer = Arc::new(open_writer_that_never_compacts(&fs));
    let a = writer.keyspace("a").unwrap();
    let b = writer.keyspace("b").unwrap();
    let sync = strata::WriteOptions {
        sync: true,
        ..Default::default()
    };
    a.put_opt("x", "1", &sync).unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let loads = Arc::new(AtomicUsize::new(0));
    let hook: strata::TestHook = {
        let (armed, loads) = (Arc::clone(&armed), Arc::clone(&loads));
        let (a, b) = (a.clone(), b.clone());
        Arc::new(move |point| {
            if point == strata::HookPoint::ReadOnlyManifestLoaded && armed.load(Ordering::SeqCst) {
                let n = loads.fetch_add(1, Ordering::SeqCst);
                if n < 7 {
                    // A MANIFEST change that keeps `x`'s WAL (keyspace
                    // `a` still needs it).
                    b.put(format!("b{n}"), "2").unwrap();
                    b.flush().unwrap();
                } else {
                    // The last builds: `x`'s WAL (and every other) goes.
                    a.put(format!("y{n}"), "3").unwrap();
                    a.flush().unwrap();
                    b.flush().unwrap();
                }
            }
            Ok(())
        })
    };
    let options = strata::Options {
        test_hook: Some(hook),
        ..mem_options(&fs)
    };
    let ro = Db::open_read_only(mem_dir(), options).unwrap();
    assert_eq!(ro.get_in("a", "x").unwrap().as_deref(), Some(&b"1"[..]));
    armed.store(true, Ordering::SeqCst);
    // The writer moved on between the load and the listing in every
    // build: the refresh gives up and the view stays as it was.
    let refreshed = ro.refresh();
    assert_eq!(loads.load(Ordering::SeqCst), 8, "bounded");
    assert_eq!(
        ro.get_in("a", "x").unwrap().as_deref(),
        Some(&b"1"[..]),
        "the refresh ({refreshed:?}) went back"
    );
    assert!(matches!(refreshed, Err(Error::Io { .. })), "{refreshed:?}");
    // Once the writer lets one build through, the refresh catches up.
    armed.store(false, Ordering::SeqCst);
    ro.refresh().unwrap();
    assert_eq!(ro.get_in("a", "x").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(ro.get_in("a", "y7").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(ro.get_in("b", "b6").unwrap().as_deref(), Some(&b"2"[..]));
}

/// The same race with a WAL that names no WAL before it: the writer
/// reopens between the reader's MANIFEST load and its WAL listing, in
/// every build (the open writes the old WAL's `y{n-1}` to a table and
/// deletes that WAL; the open's WAL has no log start, so the chain cannot
/// tell a WAL is missing). The last build, accepted under a MANIFEST that
/// changed during every one, was the old MANIFEST and the new WAL: `y{n}`
/// without `y{n-1}`, a hole. The listing is trusted only when the
/// MANIFEST did not change since its load.
#[test]
fn a_writer_reopening_between_the_manifest_load_and_the_wal_listing_leaves_no_hole() {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;
    let fs = MemFileSystem::new();
    let sync = strata::WriteOptions {
        sync: true,
        ..Default::default()
    };
    let writer = open_writer_that_never_compacts(&fs);
    writer.put_opt("x", "1", &sync).unwrap();
    let writer = Arc::new(Mutex::new(Some(writer)));
    let armed = Arc::new(AtomicBool::new(false));
    let reopens = Arc::new(AtomicUsize::new(0));
    let hook: strata::TestHook = {
        let (armed, writer, fs) = (Arc::clone(&armed), Arc::clone(&writer), fs.clone());
        let reopens = Arc::clone(&reopens);
        Arc::new(move |point| {
            if point == strata::HookPoint::ReadOnlyManifestLoaded && armed.load(Ordering::SeqCst) {
                let n = reopens.fetch_add(1, Ordering::SeqCst);
                let mut w = writer.lock().unwrap();
                w.take().unwrap().close().unwrap();
                let reopened = open_writer_that_never_compacts(&fs);
                let sync = strata::WriteOptions {
                    sync: true,
                    ..Default::default()
                };
                reopened.put_opt(format!("y{n}"), "2", &sync).unwrap();
                *w = Some(reopened);
            }
            Ok(())
        })
    };
    let options = strata::Options {
        test_hook: Some(hook),
        ..mem_options(&fs)
    };
    let ro = Db::open_read_only(mem_dir(), options).unwrap();
    assert_eq!(ro.get("x").unwrap().as_deref(), Some(&b"1"[..]));
    armed.store(true, Ordering::SeqCst);
    let refreshed = ro.refresh();
    armed.store(false, Ordering::SeqCst);
    let n = reopens.load(Ordering::SeqCst);
    assert!(n >= 8, "the writer reopened under every build ({n})");
    // Whatever the refresh did, the view is a prefix of the writes.
    let seen: Vec<bool> = std::iter::once("x".to_owned())
        .chain((0..n).map(|i| format!("y{i}")))
        .map(|k| ro.get(k).unwrap().is_some())
        .collect();
    assert!(
        seen.windows(2).all(|w| w[0] || !w[1]),
        "a hole: {seen:?} (refresh: {refreshed:?})"
    );
    assert!(seen[0], "x went: {refreshed:?}");
    // Once a build gets through, the refresh catches up with all.
    ro.refresh().unwrap();
    for i in 0..n {
        assert!(ro.get(format!("y{i}")).unwrap().is_some(), "y{i}");
    }
}
