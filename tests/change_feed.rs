//! The change feed (docs/design/change-feed.md): a replica fed only by
//! `updates_since` / a `ChangeFeed` cursor ends identical to its primary,
//! also across the primary's power losses; WALs a reader needs and that
//! are gone are an error, never a silent skip; cursors survive reopening;
//! WALs go once nothing pins them and retention lets them.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use strata::fs::{FileSystem, MemFileSystem, UnsyncedData};
use strata::{
    Append, ChangeBatch, ChangeKind, Db, Error, HookPoint, ManualClock, Options, WriteBatch,
    WriteOptions,
};

const KEYSPACES: [&str; 2] = ["default", "orders"];

fn options(fs: &MemFileSystem) -> Options {
    Options {
        merge_operator: Some(Arc::new(Append::with_separator(","))),
        ..mem_options(fs)
    }
}

fn open(fs: &MemFileSystem) -> Db {
    Db::open(mem_dir(), options(fs)).unwrap()
}

fn sync() -> WriteOptions {
    WriteOptions {
        sync: true,
        ..Default::default()
    }
}

/// Apply a batch read from the primary's feed to `replica`, by keyspace
/// name, as one write.
fn apply(replica: &Db, batch: &ChangeBatch) {
    let mut out = WriteBatch::new();
    for r in batch.records() {
        let r = r.unwrap();
        let ks = replica.keyspace(r.keyspace.unwrap()).unwrap();
        match r.kind {
            ChangeKind::Put(v) => out.put_in(&ks, r.key, v),
            ChangeKind::Delete => out.delete_in(&ks, r.key),
            ChangeKind::Merge(v) => out.merge_in(&ks, r.key, v),
            ChangeKind::DeleteRange { end: Some(end) } => out.delete_range_in(&ks, r.key..end),
            ChangeKind::DeleteRange { end: None } => out.delete_range_in(&ks, r.key..),
            ChangeKind::PutWithExpiry {
                value,
                expiry_micros,
            } => out.put_with_expiry_in(&ks, r.key, value, expiry_micros),
        }
    }
    replica.write(out).unwrap();
}

/// Every keyspace's contents.
fn contents(db: &Db) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    KEYSPACES
        .iter()
        .map(|name| {
            db.keyspace(name)
                .unwrap()
                .iter()
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<Result<_, _>>()
                .unwrap()
        })
        .collect()
}

/// A random batch over both keyspaces: puts, deletes, merges (default
/// keyspace: the one with the operator) and range deletes.
fn random_batch(db: &Db, rng: &mut Rng, i: usize) -> WriteBatch {
    let ks: Vec<_> = KEYSPACES.iter().map(|n| db.keyspace(n).unwrap()).collect();
    let mut b = WriteBatch::new();
    for _ in 0..1 + rng.below(4) {
        let k = key(rng.below(300) as usize);
        let which = &ks[rng.below(2) as usize];
        match rng.below(10) {
            0 => b.delete_in(which, &k),
            1 => b.merge_in(&ks[0], &k, format!("m{i}")),
            2 => {
                let end = key(rng.below(300) as usize);
                if k < end {
                    b.delete_range_in(which, k.clone()..end);
                }
            }
            _ => b.put_in(which, &k, value(i, 20 + rng.below(200) as usize)),
        }
    }
    b
}

/// Pull every batch the feed shows into `replica`, acknowledging each.
fn pull(feed: &strata::ChangeFeed, replica: &Db) -> usize {
    let mut n = 0;
    for batch in feed.updates().unwrap() {
        let batch = batch.unwrap();
        assert!(
            batch.sequence() > feed.acked().unwrap(),
            "a batch shown twice"
        );
        apply(replica, &batch);
        feed.ack(batch.last_sequence()).unwrap();
        n += 1;
    }
    n
}

fn assert_same(replica: &Db, primary: &Db, context: &str) {
    let (r, p) = (contents(replica), contents(primary));
    for (i, (r, p)) in r.iter().zip(&p).enumerate() {
        let show = |kv: Option<&(Vec<u8>, Vec<u8>)>| {
            kv.map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
        };
        if let Some(j) = (0..r.len().max(p.len())).find(|&j| r.get(j) != p.get(j)) {
            panic!(
                "{context}: keyspace {}: replica {} keys, primary {}; first difference at {j}: replica {:?}, primary {:?}",
                KEYSPACES[i], r.len(), p.len(), show(r.get(j)), show(p.get(j))
            );
        }
    }
}

fn with_keyspaces(db: &Db) -> &Db {
    for name in KEYSPACES {
        db.keyspace(name).unwrap();
    }
    db
}

#[test]
fn a_replica_fed_by_the_feed_ends_identical_across_rotations_and_flushes() {
    let fs = MemFileSystem::new();
    let primary = open(&fs);
    with_keyspaces(&primary);
    let replica_fs = MemFileSystem::new();
    let replica = open(&replica_fs);
    with_keyspaces(&replica);
    let feed = primary.change_feed("replica").unwrap();
    let mut rng = Rng(7);
    let mut pulled = 0;
    for i in 0..3000 {
        let b = random_batch(&primary, &mut rng, i);
        primary.write(b).unwrap();
        if rng.one_in(300) {
            primary.flush_all().unwrap();
        }
        if rng.one_in(200) {
            primary.flush_wal(true).unwrap();
            pulled += pull(&feed, &replica);
        }
    }
    primary.flush_wal(true).unwrap();
    pulled += pull(&feed, &replica);
    assert!(pulled > 2000, "only {pulled} batches came through the feed");
    assert_same(&replica, &primary, "after 3000 writes");
    // The cursor acknowledged everything and nothing else keeps WALs:
    // they are gone, and asking for the start is a gap, not a skip.
    assert!(matches!(
        primary.updates_since(1),
        Err(Error::ChangeFeedGap { from: 1, .. })
    ));
}

#[test]
fn unsynced_writes_are_not_shown_until_synced() {
    let fs = MemFileSystem::new();
    let db = open(&fs);
    db.put_opt(b"a", b"1", &sync()).unwrap();
    db.put(b"b", b"2").unwrap();
    let shown: Vec<_> = db
        .updates_since(1)
        .unwrap()
        .map(|b| b.unwrap().sequence())
        .collect();
    assert_eq!(shown, [1]);
    db.flush_wal(true).unwrap();
    let shown: Vec<_> = db
        .updates_since(1)
        .unwrap()
        .map(|b| b.unwrap().sequence())
        .collect();
    assert_eq!(shown, [1, 2]);
    // One iterator follows the database: at its end it looks again.
    let mut it = db.updates_since(3).unwrap();
    assert!(it.next().is_none());
    db.put_opt(b"c", b"3", &sync()).unwrap();
    assert_eq!(it.next().unwrap().unwrap().sequence(), 3);
}

#[test]
fn a_replica_never_gets_a_write_its_primary_lost_across_power_losses() {
    for seed in 0..12u64 {
        let fs = MemFileSystem::new();
        let replica_fs = MemFileSystem::new();
        let replica = open(&replica_fs);
        with_keyspaces(&replica);
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut i = 0;
        for cycle in 0..4 {
            let primary = open(&fs);
            with_keyspaces(&primary);
            let feed = primary.change_feed("replica").unwrap();
            // After the reopen the replica catches up with exactly what
            // the primary kept: had it been given a write the primary
            // lost, they would differ here.
            pull(&feed, &replica);
            assert_same(&replica, &primary, &format!("seed {seed} cycle {cycle}"));
            for _ in 0..200 + rng.below(400) {
                let b = random_batch(&primary, &mut rng, i);
                i += 1;
                let opts = WriteOptions {
                    sync: rng.one_in(8),
                    ..Default::default()
                };
                primary.write_opt(b, &opts).unwrap();
                if rng.one_in(150) {
                    primary.flush_all().unwrap();
                }
                if rng.one_in(60) {
                    pull(&feed, &replica);
                }
            }
            pull(&feed, &replica);
            let mode = match (seed + cycle) % 3 {
                0 => UnsyncedData::Drop,
                1 => UnsyncedData::KeepRandomPrefix(seed * 31 + cycle),
                _ => UnsyncedData::KeepRandomPages(seed * 31 + cycle),
            };
            drop(feed);
            power_cycle(&fs, primary, mode);
        }
        let primary = open(&fs);
        let feed = primary.change_feed("replica").unwrap();
        pull(&feed, &replica);
        assert_same(&replica, &primary, &format!("seed {seed} at the end"));
    }
}

fn wal_count(fs: &MemFileSystem) -> usize {
    files_with_ext(fs, &mem_dir(), ".log").len()
}

/// Enough writes and flushes that several WALs become obsolete.
fn fill_and_flush(db: &Db, from: usize, n: usize) {
    for i in from..from + n {
        db.put(key(i), value(i, 300)).unwrap();
        if i % 100 == 99 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
}

#[test]
fn a_cursor_pins_wals_until_it_acknowledges_them() {
    let fs = MemFileSystem::new();
    let db = open(&fs);
    let feed = db.change_feed("cdc").unwrap();
    fill_and_flush(&db, 0, 600);
    let pinned = wal_count(&fs);
    assert!(
        pinned > 4,
        "{pinned} WALs: the cursor should keep the flushed ones"
    );
    // Acknowledging half lets the older WALs go, not the rest.
    let batches: Vec<_> = feed.updates().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 600);
    feed.ack(batches[299].last_sequence()).unwrap();
    let half = wal_count(&fs);
    assert!(half < pinned && half > 2, "{pinned} then {half} WALs");
    let rest: Vec<_> = feed.updates().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(rest.first().unwrap().sequence(), batches[300].sequence());
    feed.ack(batches[599].last_sequence()).unwrap();
    // Only the live WAL and the one made ahead are left.
    assert!(wal_count(&fs) <= 2, "{} WALs left", wal_count(&fs));
    // Without a cursor and without limits, WALs go at once: a reader
    // asking for deleted writes gets the gap, not a silent skip.
    db.drop_change_feed("cdc").unwrap();
    fill_and_flush(&db, 600, 300);
    match db.updates_since(1) {
        Err(Error::ChangeFeedGap { from: 1, to }) => assert!(to >= 600, "gap to {to}"),
        other => panic!("expected a gap, got {other:?}"),
    }
}

#[test]
fn a_cursor_behind_the_time_limit_gets_a_gap_and_can_move_past_it() {
    let fs = MemFileSystem::new();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let opts = Options {
        wal_ttl_seconds: 10,
        clock: Arc::clone(&clock) as Arc<dyn strata::Clock>,
        ..options(&fs)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    let slow = db.change_feed("slow").unwrap();
    fill_and_flush(&db, 0, 500);
    let kept = wal_count(&fs);
    assert!(kept > 4, "{kept}");
    // Within the limit, the slow cursor still reads from the start.
    assert_eq!(
        slow.updates().unwrap().next().unwrap().unwrap().sequence(),
        1
    );
    clock.advance(Duration::from_secs(11));
    fill_and_flush(&db, 500, 100);
    assert!(wal_count(&fs) < kept);
    let err = slow.updates().unwrap_err();
    let Error::ChangeFeedGap { from, to } = err else {
        panic!("expected a gap, got {err:?}");
    };
    assert_eq!(from, 1);
    assert!(
        to >= 500,
        "the first 500 writes' WALs are gone; gap to {to}"
    );
    // What is still kept starts right after the gap.
    slow.ack(to).unwrap();
    let next = slow.updates().unwrap().next().unwrap().unwrap();
    assert_eq!(next.sequence(), to + 1);
    // updates_since says the same.
    assert!(matches!(
        db.updates_since(to),
        Err(Error::ChangeFeedGap { .. })
    ));
}

/// A put with a time to live reaches the feed with its absolute expiry,
/// and a replica applying it with `put_with_expiry_in` holds it until
/// exactly the moment the primary stops showing it (a relative TTL
/// applied later would outlive the primary's copy).
#[test]
fn a_replica_reproduces_the_expiry_of_a_put_with_a_time_to_live() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let with_clock = |fs: &MemFileSystem| Options {
        clock: Arc::clone(&clock) as Arc<dyn strata::Clock>,
        ..options(fs)
    };
    let (fs, replica_fs) = (MemFileSystem::new(), MemFileSystem::new());
    let primary = Db::open(mem_dir(), with_clock(&fs)).unwrap();
    let replica = Db::open(mem_dir(), with_clock(&replica_fs)).unwrap();
    with_keyspaces(&primary);
    with_keyspaces(&replica);
    let feed = primary.change_feed("replica").unwrap();
    primary
        .put_with_ttl("k", "v", Duration::from_secs(10))
        .unwrap();
    let orders = primary.keyspace("orders").unwrap();
    orders
        .put_with_ttl("o", "w", Duration::from_secs(20))
        .unwrap();
    primary.flush_wal(true).unwrap();
    // The replica applies later: its own clock has moved on.
    clock.advance(Duration::from_secs(5));
    assert_eq!(pull(&feed, &replica), 2);
    assert_same(&replica, &primary, "before any expiry");
    clock.advance(Duration::from_secs(5));
    assert_same(&replica, &primary, "at the first expiry");
    assert_eq!(replica.get("k").unwrap(), None);
    clock.advance(Duration::from_secs(10));
    assert_same(&replica, &primary, "at the second expiry");
    assert_eq!(replica.keyspace("orders").unwrap().get("o").unwrap(), None);
}

/// `flush` returns once its flush job has ended, the WALs it made
/// obsolete collected, not as soon as its memtable leaves the read view:
/// what a caller looks at next (a gap, the WALs kept, retention's clock
/// for them) is settled. Here a keyspace created while the job is held
/// between the two wakes the waiting `flush`, as a compaction's end can.
#[test]
fn flush_returns_after_its_job_collected_the_wals_it_made_obsolete() {
    use common::hold_at::HoldAt;
    use std::sync::mpsc;
    let fs = MemFileSystem::new();
    let hold = HoldAt::new(HookPoint::FlushInstalled);
    let opts = Options {
        test_hook: Some(hold.hook()),
        ..options(&fs)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    db.put(key(0), value(0, 10)).unwrap();
    hold.arm();
    let (done_tx, done_rx) = mpsc::channel();
    let flusher = {
        let (db, fs) = (db.clone(), fs.clone());
        std::thread::spawn(move || {
            db.flush().unwrap();
            done_tx.send(wal_count(&fs)).unwrap();
        })
    };
    hold.wait_reached();
    db.keyspace("orders").unwrap();
    // How long an early return is given to show, not a synchronisation:
    // a correct `flush` waits for the release, however long this is.
    let early = done_rx.recv_timeout(Duration::from_millis(200)).ok();
    hold.release();
    flusher.join().unwrap();
    assert_eq!(
        early, None,
        "flush returned before its job collected WALs (WALs left: {early:?})"
    );
    let left = done_rx.recv().unwrap();
    // The live WAL and the one made ahead.
    assert!(left <= 2, "{left} WALs left");
}

#[test]
fn without_a_cursor_the_time_limit_keeps_obsolete_wals_until_it_passes() {
    let fs = MemFileSystem::new();
    let clock = Arc::new(ManualClock::new(0));
    let opts = Options {
        wal_ttl_seconds: 60,
        clock: Arc::clone(&clock) as Arc<dyn strata::Clock>,
        ..options(&fs)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    fill_and_flush(&db, 0, 400);
    assert!(wal_count(&fs) > 3);
    assert_eq!(db.updates_since(1).unwrap().count(), 400);
    let before = wal_count(&fs);
    clock.advance(Duration::from_secs(61));
    db.put(b"x", b"y").unwrap();
    db.flush().unwrap();
    // Those obsolete for over a minute went; the one this flush made
    // obsolete stays, beside the live WAL and the one made ahead.
    assert!(wal_count(&fs) <= 3, "{before} then {} WALs", wal_count(&fs));
    assert!(before > 4);
}

#[test]
fn a_cursor_position_and_its_wals_survive_reopening() {
    let fs = MemFileSystem::new();
    let db = open(&fs);
    let feed = db.change_feed("replica").unwrap();
    fill_and_flush(&db, 0, 300);
    let batches: Vec<_> = feed.updates().unwrap().collect::<Result<_, _>>().unwrap();
    feed.ack(batches[99].last_sequence()).unwrap();
    drop(feed);
    db.close().unwrap();
    let db = open(&fs);
    let feed = db.change_feed("replica").unwrap();
    assert_eq!(feed.acked().unwrap(), batches[99].last_sequence());
    let rest: Vec<_> = feed.updates().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(rest.len(), 200);
    for (a, b) in rest.iter().zip(&batches[100..]) {
        assert_eq!(a.encoded(), b.encoded());
    }
    // Moving back is refused; so is a number not written yet.
    assert!(feed.ack(1).is_err());
    assert!(feed.ack(1_000_000).is_err());
    // The state file is checked: damage is corruption naming it.
    drop(feed);
    db.close().unwrap();
    let path = Path::new("/db/CHANGEFEEDS");
    fs.corrupt_byte(path, 20, 0x40).unwrap();
    match Db::open(mem_dir(), options(&fs)) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(fs.exists(path));
}

/// A resume after a failed WAL sync starts over in a fresh WAL, the old
/// ones abandoned (their tails may miss writes that went straight to
/// tables): a cursor behind that point gets the gap, and reads on after it.
#[test]
fn a_resume_after_a_wal_failure_is_a_gap_for_the_cursors_behind_it() {
    use strata::fs::{FaultPlan, FsOp};
    let fs = MemFileSystem::new();
    let db = open(&fs);
    let feed = db.change_feed("c").unwrap();
    for i in 0..10 {
        db.put_opt(key(i), value(i, 1), &sync()).unwrap();
    }
    fs.add_fault(FaultPlan {
        path_contains: Some(".log".into()),
        ..FaultPlan::always(FsOp::Sync)
    });
    assert!(db.put_opt(key(10), value(10, 1), &sync()).is_err());
    fs.clear_faults();
    db.resume().unwrap();
    db.put_opt(key(11), value(11, 1), &sync()).unwrap();
    let Err(Error::ChangeFeedGap { from: 1, to }) = feed.updates() else {
        panic!("expected a gap");
    };
    assert!(to >= 10, "gap to {to}");
    feed.ack(to).unwrap();
    let after: Vec<_> = feed.updates().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(after.len(), 1);
    let rec = after[0].records().next().unwrap().unwrap();
    assert_eq!(rec.key, key(11));
}

/// `wal_size_limit_mb`: obsolete WALs are kept while they hold at most
/// the limit together, the oldest deleted first beyond it.
#[test]
fn the_size_limit_keeps_the_newest_obsolete_wals_within_it() {
    let fs = MemFileSystem::new();
    let opts = Options {
        wal_size_limit_mb: 1,
        ..options(&fs)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    let big = vec![b'v'; 2000];
    for i in 0..3000 {
        db.put(key(i), &big).unwrap();
        if i % 200 == 199 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    let mut wals = files_with_ext(&fs, &mem_dir(), ".log");
    wals.sort();
    let sizes: Vec<u64> = wals.iter().map(|p| fs.file_size(p).unwrap()).collect();
    // The live WAL and the one made ahead are the two newest.
    let obsolete: u64 = sizes[..sizes.len().saturating_sub(2)].iter().sum();
    assert!(wals.len() > 3, "{sizes:?}: obsolete WALs should be kept");
    assert!(
        obsolete <= 1 << 20,
        "{sizes:?}: {obsolete} obsolete bytes kept"
    );
    // The oldest went: a reader from the start gets the gap; one from the
    // newest kept writes reads on.
    let Err(Error::ChangeFeedGap { from: 1, to }) = db.updates_since(1) else {
        panic!("expected a gap");
    };
    let rest: Vec<_> = db
        .updates_since(to + 1)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rest.first().unwrap().sequence(), to + 1);
    assert_eq!(rest.last().unwrap().last_sequence(), 3000);
}

/// A close that writes memtables to tables (here for a `disable_wal`
/// write) leaves the WALs behind for the feed fully written and synced:
/// before, a `manual_wal_flush` record still in the buffer never reached
/// its WAL, and the feed skipped it with no gap reported.
#[test]
fn a_close_that_flushes_memtables_leaves_the_feed_every_logged_write() {
    let fs = MemFileSystem::new();
    let manual = Options {
        manual_wal_flush: true,
        ..options(&fs)
    };
    let db = Db::open(mem_dir(), manual.clone()).unwrap();
    let feed = db.change_feed("r").unwrap();
    drop(feed);
    db.put(b"a", b"1").unwrap(); // in the WAL buffer
    let no_wal = WriteOptions {
        disable_wal: true,
        ..Default::default()
    };
    db.put_opt(b"b", b"2", &no_wal).unwrap();
    db.close().unwrap();
    let db = Db::open(mem_dir(), manual).unwrap();
    db.put_opt(b"c", b"3", &sync()).unwrap();
    let feed = db.change_feed("r").unwrap();
    let keys: Vec<Vec<u8>> = feed
        .updates()
        .unwrap()
        .flat_map(|b| {
            let b = b.unwrap();
            b.records()
                .map(|r| r.unwrap().key.to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(keys, [b"a".to_vec(), b"c".to_vec()]);
}

/// Found by the model test: WALs kept from earlier runs, the newest of
/// those deleted empty (an open started it and nothing was written
/// before the next open). The floor must still pass the batches of the
/// older ones, or a reader from before them silently starts later.
#[test]
fn deleting_wals_whose_newest_is_empty_still_raises_the_floor_past_the_older_ones() {
    let fs = MemFileSystem::new();
    let db = open(&fs);
    let feed = db.change_feed("cdc").unwrap();
    for i in 0..3 {
        db.put_opt(key(i), value(i, 0), &sync()).unwrap();
    }
    drop(feed);
    db.close().unwrap();
    // An open that writes nothing: its WAL stays empty.
    open(&fs).close().unwrap();
    let db = open(&fs);
    for i in 3..6 {
        db.put_opt(key(i), value(i, 0), &sync()).unwrap();
    }
    db.close().unwrap();
    let db = open(&fs);
    // Lets go of the WALs up to the empty one; the next is pinned.
    db.change_feed("cdc").unwrap().ack(3).unwrap();
    match db.updates_since(1) {
        Err(Error::ChangeFeedGap { from: 1, to }) => assert_eq!(to, 3),
        Err(e) => panic!("expected the gap 1..=3, got {e}"),
        Ok(it) => {
            let got: Vec<_> = it.map(|b| b.unwrap().sequence()).collect();
            panic!("expected the gap 1..=3, read {got:?}");
        }
    }
    let rest: Vec<_> = db
        .updates_since(4)
        .unwrap()
        .map(|b| b.unwrap().sequence())
        .collect();
    assert_eq!(rest, vec![4, 5, 6]);
}

/// Found by the model test: the newest writes were to a keyspace dropped
/// since; a clean close and reopen must not give their numbers to new
/// writes (a consumer would take the new batch for one it has seen).
#[test]
fn a_reopen_after_dropping_the_keyspace_of_the_newest_writes_reuses_no_number() {
    let fs = MemFileSystem::new();
    let db = open(&fs);
    let feed = db.change_feed("cdc").unwrap();
    db.put_opt(key(0), value(0, 0), &sync()).unwrap();
    let orders = db.keyspace("orders").unwrap();
    orders.put_opt(key(1), value(1, 0), &sync()).unwrap();
    // The flush records its table's newest number (1), and moves the
    // default keyspace to a new WAL; the drop leaves the old one to no
    // keyspace: write 2 is in no file an open replays.
    db.flush().unwrap();
    drop(orders);
    db.drop_keyspace("orders").unwrap();
    drop(feed);
    db.close().unwrap();
    let db = open(&fs);
    db.put_opt(key(2), value(2, 0), &sync()).unwrap();
    let seqs: Vec<_> = db
        .updates_since(1)
        .unwrap()
        .map(|b| b.unwrap().sequence())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

/// A database with a cursor, `a` written, then a write of `b` held at
/// `hold`'s point on a thread of its own while the WAL is synced: the
/// database, the cursor, the writer and the last sequence number the feed
/// then shows (asserted to be `b`'s, 2).
fn hold_a_write_and_sync(
    fs: &MemFileSystem,
    hold: &common::hold_at::HoldAt,
    hook: strata::TestHook,
) -> (
    Db,
    strata::ChangeFeed,
    std::thread::JoinHandle<strata::Result<()>>,
    u64,
) {
    let db = Db::open(
        mem_dir(),
        Options {
            test_hook: Some(hook),
            ..options(fs)
        },
    )
    .unwrap();
    let feed = db.change_feed("replica").unwrap();
    db.put(b"a", b"1").unwrap();
    hold.arm();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || db.put(b"b", b"2"))
    };
    hold.wait_reached();
    db.flush_wal(true).unwrap();
    let seen: Vec<ChangeBatch> = feed.updates().unwrap().map(|b| b.unwrap()).collect();
    let last = seen.last().map(ChangeBatch::last_sequence).unwrap();
    assert_eq!(last, 2, "the feed shows the synced batch");
    (db, feed, writer, last)
}

/// A consumer may acknowledge any batch the feed gave it. The feed shows a
/// batch once its WAL bytes are synced, which can be before the write is
/// published (its inserts still running); acknowledging it must not be
/// refused as "not written yet" (the crash test's replica met this).
#[test]
fn a_batch_read_before_it_is_published_can_be_acknowledged() {
    use common::hold_at::HoldAt;
    let fs = MemFileSystem::new();
    // The writer's group held sequenced and in the WAL buffer, not published.
    let hold = HoldAt::new(HookPoint::WriteGroupSequenced);
    let (db, feed, writer, last) = hold_a_write_and_sync(&fs, &hold, hold.hook());
    assert!(
        db.get(b"b").unwrap().is_none(),
        "the batch is not published yet"
    );
    feed.ack(last).unwrap();
    assert_eq!(feed.acked().unwrap(), 2);
    hold.release();
    writer.join().unwrap().unwrap();
}

/// A leader logs its group to the WAL buffer before it registers the
/// group's numbers; a sync by another thread in between shows the batch
/// in the feed, and acknowledging it was refused as "not written yet".
/// `ack` now asks the sequencer in that case, which waits for the leader.
#[test]
fn a_batch_synced_before_its_numbers_are_registered_can_be_acknowledged() {
    use common::hold_at::HoldAt;
    let fs = MemFileSystem::new();
    // The writer's group held in the WAL buffer, its numbers not registered.
    let hold = HoldAt::new(HookPoint::WriteGroupLogged);
    let held = hold.hook();
    let release = hold.clone();
    let hook: strata::TestHook = Arc::new(move |p| {
        // The acknowledgement waits for the leader: let it go on.
        if p == HookPoint::AckAsksSequencer {
            release.release();
        }
        held(p)
    });
    let (_db, feed, writer, last) = hold_a_write_and_sync(&fs, &hold, hook);
    // The acknowledgement releases the leader (the hook) and waits for it
    // to hand its numbers out.
    feed.ack(last).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(feed.acked().unwrap(), 2);
}
