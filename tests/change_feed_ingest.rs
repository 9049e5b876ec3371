//! Ingestions in the change feed (docs/design/change-feed.md §2): an
//! ingested table is in no WAL, so a reader crossing the sequence numbers
//! an ingestion took gets `ChangeFeedGap` naming exactly them, after every
//! batch before them; a reader starting after them does not. The numbers
//! are stored durably before the ingestion's MANIFEST edit: the gap is
//! reported after a reopen and after a power loss at any point of the
//! ingestion, and no write after a crash reuses them.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::PathBuf;
use strata::fs::{FileSystem, MemFileSystem, UnsyncedData};
use strata::{ChangeBatch, Db, Error, IngestOptions, SstWriter, WriteOptions};

fn sync() -> WriteOptions {
    WriteOptions {
        sync: true,
        ..Default::default()
    }
}

/// A table at `/ext/<name>` holding `keys`.
fn build(fs: &MemFileSystem, name: &str, keys: impl IntoIterator<Item = usize>) -> PathBuf {
    fs.create_dir_all(&PathBuf::from("/ext")).unwrap();
    let path = PathBuf::from("/ext").join(name);
    let mut w = SstWriter::create(&path, &mem_options(fs)).unwrap();
    for i in keys {
        w.put(key(i), value(i, 9)).unwrap();
    }
    w.finish().unwrap();
    path
}

/// What a read of the feed from `from` yields: the batches' first and
/// last sequence numbers, then the error that ended it, if any.
fn read(db: &Db, from: u64) -> (Vec<(u64, u64)>, Option<Error>) {
    let mut got = Vec::new();
    let it = match db.updates_since(from) {
        Ok(it) => it,
        Err(e) => return (got, Some(e)),
    };
    for b in it {
        match b {
            Ok(b) => got.push(span(&b)),
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

fn span(b: &ChangeBatch) -> (u64, u64) {
    (b.sequence(), b.last_sequence())
}

fn gap(e: &Option<Error>) -> Option<(u64, u64)> {
    match e {
        Some(Error::ChangeFeedGap { from, to }) => Some((*from, *to)),
        None => None,
        Some(other) => panic!("expected a gap or the end, got {other:?}"),
    }
}

/// Three synced puts (1, 2, 3), an ingestion of keys no write touched
/// (its table keeps sequence number 0: the ingestion takes 4 alone), a
/// synced put (5).
fn puts_ingestion_put(fs: &MemFileSystem, db: &Db) {
    for i in 0..3 {
        db.put_opt(key(i), value(i, 0), &sync()).unwrap();
    }
    let path = build(fs, "a.sst", 100..110);
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    db.put_opt(key(3), value(3, 0), &sync()).unwrap();
}

#[test]
fn a_reader_across_an_ingestion_gets_its_number_as_a_gap_after_the_batches_before_it() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    puts_ingestion_put(&fs, &db);
    let (batches, end) = read(&db, 1);
    assert_eq!(batches, vec![(1, 1), (2, 2), (3, 3)]);
    assert_eq!(gap(&end), Some((4, 4)));
    // A reader starting at it gets it at once; one after it, no gap.
    assert_eq!(read(&db, 4).into_pair(), (vec![], Some((4, 4))));
    let (batches, end) = read(&db, 5);
    assert_eq!(batches, vec![(5, 5)]);
    assert_eq!(gap(&end), None);
    // The ingested keys are there.
    assert_eq!(db.get(key(105)).unwrap().unwrap(), value(105, 9));
}

/// Batches' first and last sequence numbers.
type Spans = Vec<(u64, u64)>;

/// `(Vec, Option<Error>)` compared through the gap it names.
trait IntoPair {
    fn into_pair(self) -> (Spans, Option<(u64, u64)>);
}

impl IntoPair for (Spans, Option<Error>) {
    fn into_pair(self) -> (Spans, Option<(u64, u64)>) {
        let g = gap(&self.1);
        (self.0, g)
    }
}

#[test]
fn a_numbered_ingestion_is_a_gap_over_all_its_numbers_and_a_cursor_acks_past_it() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let feed = db.change_feed("replica").unwrap();
    db.put_opt(key(1), value(1, 0), &sync()).unwrap();
    db.put_opt(key(12), value(12, 0), &sync()).unwrap();
    // Overlapping the memtable: flushed first, the tables numbered 3, 4.
    let a = build(&fs, "a.sst", 0..5);
    let b = build(&fs, "b.sst", 10..15);
    db.ingest(&[&a, &b], &IngestOptions::default()).unwrap();
    db.put_opt(key(20), value(20, 0), &sync()).unwrap();
    let (batches, end) = read(&db, 1);
    assert_eq!(batches, vec![(1, 1), (2, 2)]);
    assert_eq!(gap(&end), Some((3, 4)));
    // Starting inside its numbers: the rest of them.
    assert_eq!(read(&db, 4).into_pair(), (vec![], Some((4, 4))));
    // A cursor reads the same, then acknowledges the gap away.
    let mut it = feed.updates().unwrap();
    assert_eq!(span(&it.next().unwrap().unwrap()), (1, 1));
    assert_eq!(span(&it.next().unwrap().unwrap()), (2, 2));
    match it.next() {
        Some(Err(Error::ChangeFeedGap { from: 3, to: 4 })) => {}
        other => panic!("expected the ingestion's gap, got {other:?}"),
    }
    assert!(it.next().is_none(), "the iterator stops at a gap");
    feed.ack(4).unwrap();
    let rest: Vec<_> = feed.updates().unwrap().map(|b| span(&b.unwrap())).collect();
    assert_eq!(rest, vec![(5, 5)]);
}

#[test]
fn a_following_iterator_reports_an_ingestion_made_while_it_follows() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put_opt(key(0), value(0, 0), &sync()).unwrap();
    let mut it = db.updates_since(1).unwrap();
    assert_eq!(span(&it.next().unwrap().unwrap()), (1, 1));
    assert!(it.next().is_none());
    let path = build(&fs, "a.sst", 100..110);
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    db.put_opt(key(1), value(1, 0), &sync()).unwrap();
    match it.next() {
        Some(Err(Error::ChangeFeedGap { from: 2, to: 2 })) => {}
        other => panic!("expected the ingestion's gap, got {other:?}"),
    }
}

#[test]
fn the_gap_survives_reopening() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    // A cursor keeps the WALs across the close's flush.
    db.change_feed("replica").unwrap();
    puts_ingestion_put(&fs, &db);
    db.close().unwrap();
    let db = open_mem(&fs);
    let (batches, end) = read(&db, 1);
    assert_eq!(batches, vec![(1, 1), (2, 2), (3, 3)]);
    assert_eq!(gap(&end), Some((4, 4)));
    assert_eq!(read(&db, 5).into_pair(), (vec![(5, 5)], None));
    // A write after the reopen follows everything.
    db.put_opt(key(50), value(50, 0), &sync()).unwrap();
    assert_eq!(read(&db, 5).into_pair(), (vec![(5, 5), (6, 6)], None));
}

#[test]
fn the_gap_survives_a_power_loss_and_its_number_is_never_given_to_a_write() {
    for mode in [
        UnsyncedData::Drop,
        UnsyncedData::KeepRandomPrefix(7),
        UnsyncedData::KeepRandomPages(7),
    ] {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        // A cursor keeps the WALs from before the crash.
        db.change_feed("replica").unwrap();
        for i in 0..3 {
            db.put_opt(key(i), value(i, 0), &sync()).unwrap();
        }
        // Keys no write touched: the table keeps 0, the memtable keeps its
        // writes, and only the feed's state holds the number 4.
        let path = build(&fs, "a.sst", 100..110);
        db.ingest(&[&path], &IngestOptions::default()).unwrap();
        power_cycle(&fs, db, mode);
        let db = open_mem(&fs);
        assert_eq!(db.get(key(105)).unwrap().unwrap(), value(105, 9));
        let (batches, end) = read(&db, 1);
        assert_eq!(batches, vec![(1, 1), (2, 2), (3, 3)], "{mode:?}");
        assert_eq!(gap(&end), Some((4, 4)), "{mode:?}");
        db.put_opt(key(50), value(50, 0), &sync()).unwrap();
        assert_eq!(
            read(&db, 5).into_pair(),
            (vec![(5, 5)], None),
            "{mode:?}: the write after the crash"
        );
    }
}

/// Found by the simulation (seed 534603221330). The flush after an
/// ingestion records only its memtable's newest number (3) in the
/// MANIFEST; once the cursor acknowledges the ingestion's number (4), the
/// WAL goes, and the floor (5) forgets the recorded ingestion. An open
/// after a power loss must still give out no number up to 4: the next
/// write takes 5 and the feed shows it (given 4, it would be read as part
/// of the floor's gap: a hole in the feed).
#[test]
fn an_ingestion_forgotten_below_the_floor_keeps_its_number_after_a_power_loss() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let cursor = db.change_feed("replica").unwrap();
    for i in 0..3 {
        db.put_opt(key(i), value(i, 0), &sync()).unwrap();
    }
    let path = build(&fs, "a.sst", 100..110);
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    db.flush().unwrap();
    cursor.ack(4).unwrap();
    assert_eq!(read(&db, 1).into_pair(), (vec![], Some((1, 4))));
    drop(cursor);
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    assert_eq!(db.snapshot().sequence(), 4, "the ingestion's number");
    db.put_opt(key(50), value(50, 0), &sync()).unwrap();
    assert_eq!(read(&db, 5).into_pair(), (vec![(5, 5)], None));
    let cursor = db.change_feed("replica").unwrap();
    assert_eq!(cursor.acked().unwrap(), 4);
    let shown: Vec<_> = cursor
        .updates()
        .unwrap()
        .map(|b| span(&b.unwrap()))
        .collect();
    assert_eq!(shown, vec![(5, 5)], "the cursor's next batch");
}

/// A power loss at every filesystem operation of an ingestion: the
/// ingestion is all or nothing, the batches before it are all read, and
/// if its keys are there the feed reports its number; a write after the
/// reopen is never hidden by a gap.
#[test]
fn an_ingestion_cut_short_at_any_point_is_never_a_silent_hole_in_the_feed() {
    let mut cut = 1;
    loop {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        db.change_feed("replica").unwrap();
        for i in 0..3 {
            db.put_opt(key(i), value(i, 0), &sync()).unwrap();
        }
        let path = build(&fs, "a.sst", 100..110);
        fs.crash_after(cut);
        let done = db.ingest(&[&path], &IngestOptions::default()).is_ok();
        let crashed = fs.is_crashed();
        power_cycle(&fs, db, UnsyncedData::KeepRandomPages(cut));
        let db = open_mem(&fs);
        let ingested = db.get(key(105)).unwrap().is_some();
        let all = (100..110).all(|i| db.get(key(i)).unwrap().is_some());
        assert_eq!(ingested, all, "cut {cut}: a partial ingestion");
        if done {
            assert!(ingested, "cut {cut}: an acknowledged ingestion lost");
        }
        db.put_opt(key(50), value(50, 0), &sync()).unwrap();
        let (batches, end) = read(&db, 1);
        assert_eq!(&batches[..3], &[(1, 1), (2, 2), (3, 3)], "cut {cut}");
        match gap(&end) {
            Some((4, 4)) => {
                assert_eq!(batches.len(), 3, "cut {cut}");
                let (after, end) = read(&db, 5);
                assert_eq!(after, vec![(5, 5)], "cut {cut}: the write after the reopen");
                assert_eq!(gap(&end), None);
            }
            Some(other) => panic!("cut {cut}: unexpected gap {other:?}"),
            None => {
                assert!(!ingested, "cut {cut}: the ingestion vanished from the feed");
                assert_eq!(batches.len(), 4, "cut {cut}: {batches:?}");
            }
        }
        if !crashed {
            break;
        }
        cut += 1;
    }
    assert!(cut > 5, "the ingestion was cut at {cut} points only");
}

/// Without a cursor the WALs before a reopen go at once: a reader from
/// before them gets the floor's gap, then the ingestion's.
#[test]
fn without_a_cursor_the_ingestion_is_still_reported_after_a_power_loss() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for i in 0..3 {
        db.put_opt(key(i), value(i, 0), &sync()).unwrap();
    }
    let path = build(&fs, "a.sst", 100..110);
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    assert_eq!(read(&db, 1).into_pair(), (vec![], Some((1, 3))));
    assert_eq!(read(&db, 4).into_pair(), (vec![], Some((4, 4))));
    db.put_opt(key(50), value(50, 0), &sync()).unwrap();
    assert_eq!(read(&db, 5).into_pair(), (vec![(5, 5)], None));
}

#[test]
fn a_failed_ingestion_leaves_no_gap() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put_opt(key(1), value(1, 0), &sync()).unwrap();
    // Overlaps the memtable, and no flush is allowed: refused.
    let path = build(&fs, "a.sst", 0..5);
    let opts = IngestOptions {
        allow_blocking_flush: false,
        ..IngestOptions::default()
    };
    assert!(db.ingest(&[&path], &opts).is_err());
    db.put_opt(key(2), value(2, 0), &sync()).unwrap();
    assert_eq!(read(&db, 1).into_pair(), (vec![(1, 1), (2, 2)], None));
}

/// Found in review: an ingestion that failed after taking its numbers
/// (here its table cannot be opened at the commit) withdrew them from
/// the feed's state but never gave them back, so the next write skipped
/// them: a hole in the sequence no reader was told of. The commit now
/// takes numbers only once the edit alone is left to do.
#[test]
fn an_ingestion_failing_at_its_commit_leaves_no_hole() {
    use std::sync::Arc;
    use strata::fs::{FaultPlan, FsOp};
    use strata::{HookPoint, Options};
    let fs = MemFileSystem::new();
    let hook = {
        let fs = fs.clone();
        Arc::new(move |point: HookPoint| {
            if point == HookPoint::IngestPlaced {
                // The table brought in fails to open at the commit.
                fs.add_fault(FaultPlan {
                    op: Some(FsOp::Read),
                    path_contains: Some(".sst".into()),
                    skip: 0,
                    count: 1,
                });
            }
            Ok(())
        })
    };
    let options = Options {
        test_hook: Some(hook),
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    db.put_opt(key(1), value(1, 0), &sync()).unwrap();
    let path = build(&fs, "a.sst", 100..110);
    assert!(db.ingest(&[&path], &IngestOptions::default()).is_err());
    db.put_opt(key(2), value(2, 0), &sync()).unwrap();
    assert_eq!(read(&db, 1).into_pair(), (vec![(1, 1), (2, 2)], None));
}

/// A read took the feed's state (no ingestion in it), then an ingestion
/// took number 4 and a synced put took 5, then the read listed the WALs:
/// the read found batch 5 synced but judged it by the state it took
/// before, so it yielded 5 right after 3 with no gap (the crash test's
/// replica: "went from 534431 to a batch at 534433 with no gap"). The
/// read takes the state after its plan of the WALs now.
#[test]
fn a_read_that_started_before_an_ingestion_still_reports_its_gap() {
    use common::hold_at::HoldAt;
    use strata::{HookPoint, Options};
    let fs = MemFileSystem::new();
    let hold = HoldAt::new(HookPoint::FeedReadStarted);
    let options = Options {
        test_hook: Some(hold.hook()),
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    for i in 0..3 {
        db.put_opt(key(i), value(i, 0), &sync()).unwrap();
    }
    let path = build(&fs, "a.sst", 100..110);
    hold.arm();
    let reader = {
        let db = db.clone();
        std::thread::spawn(move || read(&db, 1).into_pair())
    };
    hold.wait_reached();
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    db.put_opt(key(3), value(3, 0), &sync()).unwrap();
    hold.release();
    assert_eq!(
        reader.join().unwrap(),
        (vec![(1, 1), (2, 2), (3, 3)], Some((4, 4)))
    );
}

/// A synced put (1), a `disable_wal` put (2), an ingestion of keys no
/// write touched.
fn synced_put_unlogged_put_ingestion(fs: &MemFileSystem, db: &Db) {
    db.put_opt(key(1), value(1, 0), &sync()).unwrap();
    let unlogged = WriteOptions {
        disable_wal: true,
        ..Default::default()
    };
    db.put_opt(key(2), value(2, 0), &unlogged).unwrap();
    let path = build(fs, "a.sst", 100..110);
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
}

/// Numbers below an ingestion that no WAL holds (a `disable_wal` write)
/// kept the reader from reaching the ingestion: its gap was reported only
/// once a later batch was logged, so a consumer at the tail waited for a
/// write that might never come. A read that planned the WALs after the
/// ingestion's note has read every batch below it, and reports the gap.
#[test]
fn an_ingestion_after_an_unlogged_write_is_reported_without_a_later_batch() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    synced_put_unlogged_put_ingestion(&fs, &db);
    let (batches, end) = read(&db, 1).into_pair();
    assert_eq!(batches, vec![(1, 1)]);
    let (from, to) = end.expect("the ingestion's gap, not the end of the feed");
    assert!(from > 2 && to >= from, "gap {from}..={to}");
    assert_eq!(db.get(key(105)).unwrap().unwrap(), value(105, 9));
}

/// The same across a reopen (the model test's seed 350406b2): the note of
/// how far the ingestion synced lives in the process that made it, so
/// after a reopen a reader at the tail waited for a later batch, and a
/// clean close's feed never showed the ingestion. Every batch numbered
/// before an earlier process's ingestion lies in that process's WALs,
/// which a read plans whole.
#[test]
fn an_ingestion_after_an_unlogged_write_is_reported_after_a_reopen() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.change_feed("replica").unwrap();
    synced_put_unlogged_put_ingestion(&fs, &db);
    db.close().unwrap();
    let db = open_mem(&fs);
    let (batches, end) = read(&db, 1).into_pair();
    assert_eq!(batches, vec![(1, 1)]);
    let (from, to) = end.expect("the ingestion's gap, not the end of the feed");
    assert!(from >= 2 && to >= from.max(3), "gap {from}..={to}");
    // And a write after the reopen follows the gap.
    db.put_opt(key(50), value(50, 0), &sync()).unwrap();
    let (batches, end) = read(&db, to + 1).into_pair();
    assert_eq!(batches, vec![(to + 1, to + 1)]);
    assert!(end.is_none(), "{end:?}");
}

/// The write path counts a WAL it retired as synced only once a sync
/// reached the next WAL ("nothing known" before, erring towards safety).
/// Batch 2 lay in such a WAL, synced by the ingestion that took 3 (a later
/// unsynced batch, then a rotation, retired it): a read found the
/// ingestion without reaching 2, read again, and the second plan still
/// saw nothing of that WAL, so it reported the gap and the consumer
/// skipped 2 (a stress run's replica: "gap 6973..=6973 after the replica
/// applied 6970"). The ingestion notes how far it synced; a read uses it.
#[test]
fn batches_before_an_ingestion_in_a_retired_wal_come_before_its_gap() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc, Condvar, Mutex};
    use strata::{HookPoint, Options};
    let fs = MemFileSystem::new();
    let armed = Arc::new(AtomicBool::new(false));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let (rotated_tx, rotated_rx) = mpsc::channel::<()>();
    let rotated_tx = Mutex::new(rotated_tx);
    let hook = {
        let (armed, gate) = (Arc::clone(&armed), Arc::clone(&gate));
        Arc::new(move |point: HookPoint| {
            // The flush thread before it syncs the retired WAL (the
            // rotation is done by then), and the WAL syncer thread, wait
            // for the gate.
            if matches!(point, HookPoint::Flush | HookPoint::WalSyncer)
                && armed.load(Ordering::SeqCst)
            {
                if point == HookPoint::Flush {
                    let _ = rotated_tx.lock().unwrap().send(());
                }
                let (open, cv) = &*gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
            }
            Ok(())
        })
    };
    let options = Options {
        test_hook: Some(hook),
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    db.put_opt(key(1), value(1, 0), &sync()).unwrap();
    db.put(key(2), value(2, 0)).unwrap();
    let path = build(&fs, "a.sst", 100..110);
    db.ingest(&[&path], &IngestOptions::default()).unwrap();
    db.put(key(4), value(4, 0)).unwrap();
    // A flush rotates the WAL (retiring it with batch 4 unsynced) and
    // waits, with the syncer, at the gate.
    armed.store(true, Ordering::SeqCst);
    let flusher = {
        let db = db.clone();
        std::thread::spawn(move || db.flush())
    };
    rotated_rx.recv().unwrap();
    let got = read(&db, 1).into_pair();
    armed.store(false, Ordering::SeqCst);
    {
        let (open, cv) = &*gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
    flusher.join().unwrap().unwrap();
    assert_eq!(got, (vec![(1, 1), (2, 2)], Some((3, 3))));
}
