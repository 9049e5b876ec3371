//! Simulated power loss at random points (in-memory filesystem): after
//! reopen, the database holds exactly the result of a prefix of the
//! writes, and that prefix includes every write acknowledged with
//! `sync: true`.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use strata::fs::{MemFileSystem, UnsyncedData};
use strata::{WriteBatch, WriteOptions};

/// One acknowledged write: the keys it set (`Some`) or deleted (`None`).
type Write = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn state_after(writes: &[Write]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut m = BTreeMap::new();
    for w in writes {
        for (k, v) in w {
            match v {
                Some(v) => m.insert(k.clone(), v.clone()),
                None => m.remove(k),
            };
        }
    }
    m.into_iter().collect()
}

fn run_seed(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let mut writes: Vec<Write> = Vec::new();
    let mut synced = 0;
    let n = 50 + rng.below(600) as usize;
    for i in 0..n {
        let mut batch = WriteBatch::new();
        let mut w = Write::new();
        for _ in 0..1 + rng.below(3) {
            let k = key(rng.below(200) as usize);
            if rng.below(5) == 0 {
                batch.delete(&k);
                w.push((k, None));
            } else {
                let v = value(i, rng.below(1000) as usize);
                batch.put(&k, &v);
                w.push((k, Some(v)));
            }
        }
        let sync = rng.below(4) == 0;
        db.write_opt(
            batch,
            &WriteOptions {
                sync,
                ..Default::default()
            },
        )
        .unwrap();
        writes.push(w);
        if sync {
            synced = writes.len();
        }
        if rng.below(100) == 0 {
            db.flush().unwrap();
        }
    }
    let mode = match seed % 3 {
        0 => UnsyncedData::Drop,
        1 => UnsyncedData::KeepRandomPrefix(seed),
        _ => UnsyncedData::KeepRandomPages(seed),
    };
    power_cycle(&fs, db, mode);
    let db = open_mem(&fs);
    let got = scan_all(&db);
    let prefix = (synced..=writes.len())
        .rev()
        .find(|&k| state_after(&writes[..k]) == got);
    assert!(
        prefix.is_some(),
        "seed {seed}: state after power loss is not a prefix of the writes containing all {synced} synced ones (of {})",
        writes.len()
    );
    // The reopened database takes new writes and survives another reopen.
    db.put(b"after", b"crash").unwrap();
    drop(db);
    let db = open_mem(&fs);
    assert_eq!(db.get(b"after").unwrap().as_deref(), Some(&b"crash"[..]));
}

#[test]
fn power_loss_at_random_points_keeps_a_prefix_with_every_synced_write() {
    for seed in 0..60 {
        run_seed(seed);
    }
}

#[test]
fn synced_writes_survive_power_loss_even_without_a_clean_close() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for i in 0..100 {
        db.put_opt(
            key(i),
            value(i, 0),
            &WriteOptions {
                sync: true,
                ..Default::default()
            },
        )
        .unwrap();
    }
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    for i in 0..100 {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i, 0));
    }
}

/// Rotations swap in a WAL the flush thread made ahead of them
/// (`src/write/spare.rs`): synced writes spread over many such WALs
/// survive a power loss, whether or not one was made and unused at the
/// time; and a clean close leaves only the WAL in use. (The random
/// power-loss
/// test above caught a spare numbered before the WAL in use.)
#[test]
fn wals_made_ahead_of_rotations_keep_synced_writes_and_are_retired() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let sync = WriteOptions {
        sync: true,
        ..Default::default()
    };
    // ~300 KB of writes into 64 KiB memtables: several rotations.
    let n = 2500;
    for i in 0..n {
        db.put_opt(key(i), value(i, 0), &sync).unwrap();
    }
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    for i in 0..n {
        assert_eq!(db.get(key(i)).unwrap(), Some(value(i, 0).into()), "key {i}");
    }
    drop(db);
    // The clean close deleted the WAL made ahead (the flush thread, which
    // makes them, is stopped first); the one in use stays.
    let wals = files_with_ext(&*mem_options(&fs).fs, &mem_dir(), ".log");
    assert_eq!(wals.len(), 1, "only the WAL in use: {wals:?}");
    let db = open_mem(&fs);
    assert_eq!(scan_all(&db).len(), n);
}

/// Several writers making synced writes while the memtable rotates every
/// few dozen writes: each rotation retires a WAL whose tail the syncer
/// thread syncs in the background. A sync of the new WAL must never be
/// acknowledged while the retired one is unsynced (the write path once
/// listed the retired WAL only after releasing the lock that syncs take,
/// and a sync in that window covered records still unsynced in the old
/// WAL). The power goes out after a random number of acknowledgements;
/// every write acknowledged with `sync` must survive it.
#[test]
fn synced_writes_from_many_writers_survive_power_loss_across_rotations() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    const WRITERS: usize = 4;
    // ~1 KiB values: a 64 KiB memtable rotates every ~60 writes.
    let value = |i: usize, t: usize| format!("{t}-{i}-{}", "v".repeat(1000)).into_bytes();
    for seed in 0..64u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let fs = MemFileSystem::new();
        let options = strata::Options {
            write_buffer_size: 64 * 1024,
            max_write_buffer_number: 6,
            ..mem_options(&fs)
        };
        let db = strata::Db::open(mem_dir(), options.clone()).unwrap();
        let acked: Arc<Vec<AtomicUsize>> =
            Arc::new((0..WRITERS).map(|_| AtomicUsize::new(0)).collect());
        let (ack_tx, ack_rx) = mpsc::channel::<()>();
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let (db, acked, ack_tx) = (db.clone(), Arc::clone(&acked), ack_tx.clone());
                std::thread::spawn(move || {
                    let sync = WriteOptions {
                        sync: true,
                        ..Default::default()
                    };
                    for i in 0.. {
                        let k = format!("w{t}-{i:06}");
                        if db.put_opt(&k, value(i, t), &sync).is_err() {
                            return; // the machine is off
                        }
                        acked[t].store(i + 1, Ordering::SeqCst);
                        if ack_tx.send(()).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        drop(ack_tx);
        // Pull the plug after a seed-chosen number of acknowledgements.
        let crash_after = 100 + rng.below(900) as usize;
        for _ in 0..crash_after {
            ack_rx.recv().expect("writers stopped before the crash");
        }
        fs.crash();
        drop(ack_rx);
        for w in writers {
            w.join().expect("writer panicked");
        }
        let acked: Vec<usize> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
        drop(db);
        let mode = match seed % 3 {
            0 => UnsyncedData::Drop,
            1 => UnsyncedData::KeepRandomPrefix(seed),
            _ => UnsyncedData::KeepRandomPages(seed),
        };
        fs.power_loss(mode);
        let db = strata::Db::open(mem_dir(), options).unwrap();
        for (t, &n) in acked.iter().enumerate() {
            for i in 0..n {
                let k = format!("w{t}-{i:06}");
                assert_eq!(
                    db.get(&k).unwrap(),
                    Some(value(i, t).into()),
                    "seed {seed}: writer {t}'s synced write {i} of {n} was lost"
                );
            }
            // Per writer, what survived beyond the acknowledged writes is
            // a prefix of its later writes too.
            let survivors = db.prefix(format!("w{t}-")).count();
            let expected_run = (n..)
                .take_while(|i| db.get(format!("w{t}-{i:06}")).unwrap().is_some())
                .count();
            assert_eq!(
                survivors,
                n + expected_run,
                "seed {seed}: a hole in writer {t}'s writes"
            );
        }
    }
}

/// Holds the thread that reaches a hook point until released.
#[derive(Default)]
struct Gate {
    hold_flush: std::sync::atomic::AtomicBool,
    released: std::sync::Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Gate {
    fn hold(&self) {
        let mut r = self.released.lock().unwrap();
        while !*r {
            r = self.cv.wait(r).unwrap();
        }
    }
    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

/// Found in review: the first live WAL (nothing before it unflushed) is
/// retired by a rotation and never synced (the WAL syncer is held); a
/// power loss takes every page of it but keeps the next WAL's first page.
/// The first WAL then reads as all zeros, and recovery must not take the
/// next one's log start as "follows a flushed WAL" and replay it over the
/// hole.
#[test]
fn a_first_live_wal_that_lost_every_page_does_not_let_its_successor_replay() {
    use std::sync::atomic::Ordering;
    use std::sync::{mpsc, Arc, Mutex};
    use strata::{Db, HookPoint, Options, WalWriteMode};
    let run = |seed: u64, mode: WalWriteMode| -> Result<(), String> {
        let fs = MemFileSystem::new();
        let gate = Arc::new(Gate::default());
        let (reached_tx, reached_rx) = mpsc::channel::<()>();
        let reached_tx = Mutex::new(reached_tx);
        let hook = {
            let gate = Arc::clone(&gate);
            Arc::new(move |point: HookPoint| {
                match point {
                    // The retired WAL is never synced.
                    HookPoint::WalSyncer => gate.hold(),
                    HookPoint::Flush if gate.hold_flush.load(Ordering::SeqCst) => {
                        let _ = reached_tx.lock().unwrap().send(());
                        gate.hold();
                    }
                    _ => {}
                }
                Ok(())
            })
        };
        let options = Options {
            wal_write_mode: mode,
            test_hook: Some(hook),
            ..mem_options(&fs)
        };
        let db = Arc::new(Db::open(mem_dir(), options).unwrap());
        db.put("k0", "flushed").unwrap();
        db.flush().unwrap(); // the WAL in use is now the first live one
        gate.hold_flush.store(true, Ordering::SeqCst);
        db.put("a", "in the first live WAL").unwrap();
        let syncer = {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let _ = db.flush();
            })
        };
        reached_rx.recv().unwrap(); // rotated to the next WAL; its flush held
        db.put("c", "in the next WAL").unwrap();
        fs.crash();
        gate.release();
        syncer.join().unwrap();
        drop(Arc::try_unwrap(db).ok().unwrap());
        fs.power_loss(UnsyncedData::KeepRandomPages(seed));
        let db = Db::open(mem_dir(), mem_options(&fs)).map_err(|e| format!("open: {e}"))?;
        if db.get("c").unwrap().is_some() && db.get("a").unwrap().is_none() {
            return Err("a hole: \"c\" recovered without \"a\"".into());
        }
        Ok(())
    };
    let mut failures = Vec::new();
    for mode in [WalWriteMode::MemoryMapped, WalWriteMode::Write] {
        for seed in 0..32 {
            if let Err(e) = run(seed, mode) {
                failures.push(format!("{mode:?} seed {seed}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Found in review of the flush's `sync_closed`: with the WAL syncer held,
/// a rotation's retired WAL is made durable only by the flush that follows
/// it. `b1-*` (keyspace `b`) are older than `a1` (default keyspace);
/// flushing the default keyspace installs `a1` in a table, so a power loss
/// must not keep `a1` and lose any `b1-*` (a hole). Fails if the flush
/// skips the retired WAL's sync.
#[test]
fn a_flush_of_one_keyspace_keeps_the_older_writes_of_another_durable() {
    use std::sync::Arc;
    for seed in 0..16u64 {
        let fs = MemFileSystem::new();
        let gate = Arc::new(Gate::default());
        let (db, b) = older_b1_then_a1(&fs, &gate, |_| {});
        db.flush().unwrap();
        for i in 0..20 {
            b.put(format!("b2-{i}"), "later").unwrap();
            db.put(format!("a2-{i}"), "later").unwrap();
        }
        fs.crash();
        gate.release();
        drop(b);
        drop(db);
        lose_power(&fs, seed);
        assert!(
            a1_kept_with_the_older_b1(&fs, &format!("seed {seed}")),
            "seed {seed}: the flushed a1 lost"
        );
    }
}

/// A flush syncs the WALs the rotation retired before it installs its
/// table, not merely before it returns: it writes the table first and
/// syncs them after (the WAL syncer has mostly synced them by then), and
/// a power loss the instant the table is installed must find the older
/// writes of another keyspace durable. `b1-*` (keyspace `b`) are older
/// than `a1`; the WAL syncer is held, so only the flush syncs their WAL.
/// Fails if the sync moves after the super version's update (the next
/// test also catches it moved to just after the edit).
#[test]
fn a_power_loss_right_after_a_flush_installs_its_table_keeps_the_older_writes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use strata::HookPoint;
    for seed in 0..16u64 {
        let fs = MemFileSystem::new();
        let gate = Arc::new(Gate::default());
        let armed = Arc::new(AtomicBool::new(false));
        let installed = Arc::new(AtomicBool::new(false));
        let (db, b) = {
            let (armed, installed, fs) = (Arc::clone(&armed), Arc::clone(&installed), fs.clone());
            older_b1_then_a1(&fs.clone(), &gate, move |p| {
                if p == HookPoint::FlushInstalled && armed.load(Ordering::SeqCst) {
                    // The machine stops with the table's edit durable.
                    fs.crash();
                    installed.store(true, Ordering::SeqCst);
                }
            })
        };
        armed.store(true, Ordering::SeqCst);
        // Fails or not: the machine stops inside it.
        let _ = db.flush();
        assert!(
            installed.load(Ordering::SeqCst),
            "seed {seed}: the flush never installed its table"
        );
        gate.release();
        drop(b);
        drop(db);
        lose_power(&fs, seed);
        assert!(
            a1_kept_with_the_older_b1(&fs, &format!("seed {seed}")),
            "seed {seed}: the installed a1 lost"
        );
    }
}

/// The test above stops the machine at `FlushInstalled`, after the edit
/// and the super version: it would not see a sync moved to just after the
/// edit (a reviewer's finding). Here the machine stops at every step of
/// the flush in turn (`crash_after(n)` from its start, the WAL syncer
/// held), and whatever it stopped at, the older writes of keyspace `b`
/// are there whenever the newer `a1`, which the flush made durable, is.
#[test]
fn a_power_loss_at_any_step_of_a_flush_leaves_a_prefix_across_keyspaces() {
    use std::sync::Arc;
    let mut steps_with_a1 = 0;
    for n in 1..=80u64 {
        let fs = MemFileSystem::new();
        let gate = Arc::new(Gate::default());
        let (db, b) = older_b1_then_a1(&fs, &gate, |_| {});
        fs.crash_after(n);
        // Fails or not: the machine may stop inside it.
        let _ = db.flush();
        fs.crash();
        gate.release();
        drop(b);
        drop(db);
        lose_power(&fs, n);
        if a1_kept_with_the_older_b1(&fs, &format!("step {n}")) {
            steps_with_a1 += 1;
        }
    }
    // The sweep reached past the flush's install.
    assert!(steps_with_a1 > 0, "no step kept a1: sweep too short");
}

/// Cut power, with the unsynced data `seed` picks: dropped, a random
/// prefix of it kept, or random pages.
fn lose_power(fs: &MemFileSystem, seed: u64) {
    let mode = match seed % 3 {
        0 => UnsyncedData::Drop,
        1 => UnsyncedData::KeepRandomPrefix(seed),
        _ => UnsyncedData::KeepRandomPages(seed),
    };
    fs.power_loss(mode);
}

/// After a power loss: whether `a1` (default keyspace, "newer") survived;
/// if it did, every older `b1-*` of keyspace `b` did too (no hole).
fn a1_kept_with_the_older_b1(fs: &MemFileSystem, context: &str) -> bool {
    let db = strata::Db::open(mem_dir(), mem_options(fs)).unwrap();
    let b = db.keyspace("b").unwrap();
    match db.get("a1").unwrap() {
        None => false,
        Some(v) => {
            assert_eq!(&v[..], b"newer", "{context}");
            for i in 0..20 {
                assert!(
                    b.get(format!("b1-{i}")).unwrap().is_some(),
                    "{context}: a hole: a1 kept, b1-{i} lost"
                );
            }
            true
        }
    }
}

/// A database on `fs` whose WAL syncer thread waits at `gate` (so only
/// flushes sync retired WALs) and whose other hook points go to `also`,
/// holding `b1-*` in keyspace `b`, then `a1` (default keyspace), unsynced.
fn older_b1_then_a1(
    fs: &MemFileSystem,
    gate: &std::sync::Arc<Gate>,
    also: impl Fn(strata::HookPoint) + Send + Sync + 'static,
) -> (strata::Db, strata::Keyspace) {
    let gate = std::sync::Arc::clone(gate);
    let hook: strata::TestHook = std::sync::Arc::new(move |p| {
        if p == strata::HookPoint::WalSyncer {
            gate.hold();
        }
        also(p);
        Ok(())
    });
    let options = strata::Options {
        test_hook: Some(hook),
        ..mem_options(fs)
    };
    let db = strata::Db::open(mem_dir(), options).unwrap();
    let b = db.keyspace("b").unwrap();
    for i in 0..20 {
        b.put(format!("b1-{i}"), "older").unwrap();
    }
    db.put("a1", "newer").unwrap();
    (db, b)
}

/// A database on `fs` whose WAL syncs all fail from now on: a flush that
/// syncs a WAL fails.
fn failing_wal_syncs(fs: &MemFileSystem) {
    fs.add_fault(strata::fs::FaultPlan {
        op: Some(strata::fs::FsOp::Sync),
        path_contains: Some(".log".into()),
        skip: 0,
        count: u64::MAX,
    });
}

/// With one keyspace written and no change feed cursor, a flush makes
/// the WAL its memtable was logged in obsolete without syncing it (the
/// memtable reaches the disk once, as a table: RocksDB syncs no WAL at a
/// flush with one column family); a power loss then keeps every write
/// the flush took, from the table.
#[test]
fn a_flush_with_one_keyspace_written_syncs_no_wal() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for i in 0..100 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    failing_wal_syncs(&fs);
    db.flush().unwrap();
    fs.clear_faults();
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    for i in 0..100 {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i, 0), "key {i}");
    }
}

/// The flush syncs the WALs when they must be durable before its table
/// is: another keyspace holds writes in them (without it, a power loss
/// could keep the table's newer writes and lose the other keyspace's
/// older ones), or a change feed cursor keeps WALs past their flush.
#[test]
fn a_flush_syncs_the_wals_another_keyspace_or_a_cursor_needs() {
    for case in ["another keyspace", "a cursor"] {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        match case {
            "another keyspace" => db.keyspace("b").unwrap().put("b", "1").unwrap(),
            _ => drop(db.change_feed("replica").unwrap()),
        }
        db.put("a", "1").unwrap();
        failing_wal_syncs(&fs);
        assert!(db.flush().is_err(), "{case}: the flush synced no WAL");
    }
}

/// The same sweep with one keyspace and no cursor, where the flush
/// syncs no WAL: whatever step the machine stops at, the database holds a
/// prefix of the writes (the table's, or the WAL's synced part).
#[test]
fn a_power_loss_at_any_step_of_a_flush_that_syncs_no_wal_leaves_a_prefix() {
    let mut steps_with_all = 0;
    for n in 1..=60u64 {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        for i in 0..200 {
            db.put(key(i), value(i, 0)).unwrap();
            if i == 49 {
                // A synced prefix, so a lost flush keeps something.
                db.flush_wal(true).unwrap();
            }
        }
        fs.crash_after(n);
        let _ = db.flush();
        fs.crash();
        drop(db);
        lose_power(&fs, n);
        let db = open_mem(&fs);
        let kept = (0..200)
            .take_while(|&i| db.get(key(i)).unwrap().is_some())
            .count();
        assert!(kept >= 50, "step {n}: the synced writes lost ({kept} kept)");
        for i in kept..200 {
            assert!(
                db.get(key(i)).unwrap().is_none(),
                "step {n}: a hole: key {i} kept, key {kept} lost"
            );
        }
        if kept == 200 {
            steps_with_all += 1;
        }
    }
    // The sweep reached past the flush's install.
    assert!(
        steps_with_all > 0,
        "no step kept every write: sweep too short"
    );
}

/// Found in review: with several frozen memtables (a flush behind the
/// writer), the flush of the oldest took the next one, of its own
/// keyspace and logged after it, for a memtable with writes in the WALs
/// before it, and synced them: the frozen memtables are listed newest
/// first. Here three or more memtables freeze while the flush thread is
/// held; the flushes then sync no WAL.
#[test]
fn flushes_behind_the_writer_sync_no_wal_with_one_keyspace() {
    use common::hold_at::HoldAt;
    let fs = MemFileSystem::new();
    let hold = HoldAt::new(strata::HookPoint::Flush);
    let options = strata::Options {
        write_buffer_size: 64 << 10,
        max_write_buffer_number: 6,
        test_hook: Some(hold.hook()),
        ..mem_options(&fs)
    };
    let db = strata::Db::open(mem_dir(), options.clone()).unwrap();
    hold.arm();
    // Some 3.5 memtables of writes: the first rotation's flush is held.
    for i in 0..700 {
        db.put(key(i), vec![b'v'; 300]).unwrap();
    }
    hold.wait_reached();
    failing_wal_syncs(&fs);
    hold.release();
    db.flush().unwrap();
    fs.clear_faults();
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = strata::Db::open(mem_dir(), options).unwrap();
    for i in 0..700 {
        assert!(db.get(key(i)).unwrap().is_some(), "key {i} lost");
    }
}
