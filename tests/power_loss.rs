//! Simulated power loss at random points (in-memory filesystem): after
//! reopen, the database holds exactly the result of a prefix of the
//! writes, and that prefix includes every write acknowledged with
//! `sync: true`.

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
    let mode = if seed.is_multiple_of(2) {
        UnsyncedData::Drop
    } else {
        UnsyncedData::KeepRandomPrefix(seed)
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
