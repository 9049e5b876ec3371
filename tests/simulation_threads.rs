//! The simulation with real threads: several writers and the background
//! threads (flush, compaction, WAL syncing) on the in-memory filesystem,
//! writing over four keyspaces (batches span them; some move a value from
//! one keyspace to another; some range-delete or prefix-delete keys, each
//! writer only inside its own partition of the key space, `w{t}-`, so its
//! model stays exact; the main thread flushes one now and then),
//! the plug pulled at a random moment, power lost keeping a random subset
//! of unsynced pages, and the recovered state checked against what the
//! writers were told. Thread scheduling makes a seed's run differ from run
//! to run (tests/simulation.rs is the deterministic one); what is checked
//! holds for every interleaving:
//!
//! - every write acknowledged with `sync` survives, and so does every
//!   write acknowledged before a synced write was issued (a sync makes
//!   everything sequenced before it durable);
//! - each writer's surviving writes are a prefix of its writes (plus,
//!   perhaps, the one in flight when the plug was pulled);
//! - across writers, the survivors form a prefix of the write sequence: if
//!   a write survived, every write acknowledged before it was issued
//!   survived too (no hole).
//!
//! `SIMULATION_THREADS_SEEDS=n` (default 40) and
//! `SIMULATION_THREADS_FIRST_SEED` choose the seeds; a failure names its
//! seed (which replays the choices, not the interleaving).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::ack_log::{apply, Model, Write, WriteOp};
use common::keyspaces::{model_key, model_range, scan_keyspaces, KEYSPACES};
use common::Rng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use strata::fs::{MemFileSystem, UnsyncedData};
use strata::{Db, Options, WalRecoveryMode, WalWriteMode, WriteBatch, WriteOptions};

/// One write a writer attempted.
#[derive(Clone, Debug)]
struct Attempt {
    write: Write,
    sync: bool,
    /// Acknowledgements made (by any writer) before this write was issued.
    issued_after: u64,
    /// This write's place in the order of acknowledgements (`None`: not
    /// acknowledged, it was in flight when the plug was pulled).
    acked_as: Option<u64>,
}

const KEYS_PER_WRITER: u64 = 40;

fn key(writer: usize, k: u64) -> Vec<u8> {
    format!("w{writer}-k{k:03}").into_bytes()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn run_seed(seed: u64) -> Result<String, String> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
    let writers = 2 + rng.below(5) as usize;
    let fs = MemFileSystem::new();
    let options = Options {
        fs: Arc::new(fs.clone()),
        write_buffer_size: 64 * 1024,
        max_write_buffer_number: 2 + rng.below(3) as usize,
        target_file_size_base: 64 * 1024,
        max_bytes_for_level_base: 256 * 1024,
        level0_file_num_compaction_trigger: 2,
        wal_write_mode: if rng.one_in(2) {
            WalWriteMode::MemoryMapped
        } else {
            WalWriteMode::Write
        },
        wal_recovery_mode: if rng.one_in(4) {
            WalRecoveryMode::PointInTimeRecovery
        } else {
            WalRecoveryMode::TolerateCorruptedTailRecords
        },
        ..Options::default()
    };
    let db = Db::open("/db", options.clone()).map_err(|e| format!("open: {e}"))?;
    let handles: Vec<strata::Keyspace> = KEYSPACES
        .iter()
        .map(|name| db.keyspace(name))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("open the keyspaces: {e}"))?;
    let acks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let logs: Vec<Arc<Mutex<Vec<Attempt>>>> = (0..writers).map(|_| Arc::default()).collect();
    let threads: Vec<_> = (0..writers)
        .map(|t| {
            let (db, acks, stop, ack_tx) = (db.clone(), acks.clone(), stop.clone(), ack_tx.clone());
            let handles = handles.clone();
            let log = Arc::clone(&logs[t]);
            let mut rng = Rng(seed ^ (t as u64 + 1).wrapping_mul(0xa076_1d64_78bd_642f));
            std::thread::spawn(move || {
                // What this writer's keys hold (they are its own), so a
                // move knows where a key is.
                let mut mine = Model::new();
                for n in 0u64.. {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let mut write = Write::new();
                    let mut batch = WriteBatch::new();
                    for _ in 0..1 + rng.below(3) {
                        let ks = rng.below(KEYSPACES.len() as u64) as usize;
                        let k = key(t, rng.below(KEYS_PER_WRITER));
                        let to = (ks + 1 + rng.below(KEYSPACES.len() as u64 - 1) as usize)
                            % KEYSPACES.len();
                        let moved = mine.get(&model_key(ks, &k)).cloned();
                        if let (Some(v), true) = (moved, rng.one_in(3)) {
                            // A move: gone from one keyspace, in the other.
                            batch.delete_in(&handles[ks], &k);
                            batch.put_in(&handles[to], &k, &v);
                            write.push(WriteOp::Delete(model_key(ks, &k)));
                            write.push(WriteOp::Put(model_key(to, &k), v));
                        } else if rng.one_in(12) {
                            write.push(range_delete(&mut rng, &mut batch, &handles[ks], ks, t));
                        } else if rng.one_in(5) {
                            batch.delete_in(&handles[ks], &k);
                            write.push(WriteOp::Delete(model_key(ks, &k)));
                        } else {
                            let len = if rng.one_in(10) {
                                3000
                            } else {
                                40 + rng.below(300)
                            };
                            let mut v = format!("{seed}:{t}:{n}:").into_bytes();
                            v.resize(len as usize, b'a' + (n % 26) as u8);
                            batch.put_in(&handles[ks], &k, &v);
                            write.push(WriteOp::Put(model_key(ks, &k), v));
                        }
                    }
                    apply(&mut mine, &write);
                    let sync = rng.one_in(4);
                    let issued_after = acks.load(Ordering::SeqCst);
                    log.lock().unwrap().push(Attempt {
                        write,
                        sync,
                        issued_after,
                        acked_as: None,
                    });
                    let opts = WriteOptions {
                        sync,
                        ..Default::default()
                    };
                    if db.write_opt(batch, &opts).is_err() {
                        return; // the machine is off
                    }
                    let acked_as = acks.fetch_add(1, Ordering::SeqCst);
                    if let Some(last) = log.lock().unwrap().last_mut() {
                        last.acked_as = Some(acked_as);
                    }
                    if ack_tx.send(()).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(ack_tx);
    let pull_after = 200 + rng.below(1500);
    for n in 0..pull_after {
        if ack_rx.recv().is_err() {
            break;
        }
        // A keyspace's flush syncs the WALs its rotation retired first
        // (there are several keyspaces): the writers' later writes race
        // with it.
        if n % 150 == 149 {
            let ks = rng.below(KEYSPACES.len() as u64) as usize;
            if let Err(e) = handles[ks].flush() {
                return Err(format!("flush of {} with power on: {e}", KEYSPACES[ks]));
            }
        }
    }
    fs.crash();
    stop.store(true, Ordering::Release);
    drop(ack_rx);
    drop(handles);
    for t in threads {
        t.join().map_err(|_| "a writer panicked".to_owned())?;
    }
    drop(db);
    let loss = match rng.below(3) {
        0 => UnsyncedData::Drop,
        1 => UnsyncedData::KeepRandomPrefix(rng.next()),
        _ => UnsyncedData::KeepRandomPages(rng.next()),
    };
    fs.power_loss(loss);
    let db = Db::open("/db", options).map_err(|e| format!("reopen after {loss:?}: {e}"))?;
    let recovered: Model = scan_keyspaces(&db).map_err(|e| format!("scan: {e}"))?;
    let logs: Vec<Vec<Attempt>> = logs.iter().map(|l| l.lock().unwrap().clone()).collect();
    check(&logs, &recovered).map_err(|e| format!("{e} (after {loss:?}, {writers} writers)"))?;
    Ok(format!("{writers} writers, {pull_after} acks, {loss:?}"))
}

/// Add a range delete inside writer `t`'s partition of keyspace `ks` to
/// `batch`, and return it as the model sees it: keys `[a, a + width)`
/// (width mostly under 16, its end may pass the last key), the ten keys
/// of a prefix `w{t}-k0{d}`, or the whole partition, prefix `w{t}-`.
fn range_delete(
    rng: &mut Rng,
    batch: &mut WriteBatch,
    handle: &strata::Keyspace,
    ks: usize,
    t: usize,
) -> WriteOp {
    let (start, end) = match rng.below(8) {
        0 => {
            let d = rng.below(KEYS_PER_WRITER / 10);
            let prefix = format!("w{t}-k0{d}").into_bytes();
            batch.delete_prefix_in(handle, &prefix);
            (prefix, format!("w{t}-k0{}", d + 1).into_bytes())
        }
        1 => {
            let prefix = format!("w{t}-").into_bytes();
            batch.delete_prefix_in(handle, &prefix);
            // The successor of the prefix: '-' + 1.
            (prefix, format!("w{t}.").into_bytes())
        }
        _ => {
            let a = rng.below(KEYS_PER_WRITER);
            let (start, end) = (key(t, a), key(t, a + 1 + rng.below(15)));
            batch.delete_range_in(handle, start.as_slice()..end.as_slice());
            (start, end)
        }
    };
    model_range(ks, &start, Some(&end))
}

/// The rules in the module comment.
fn check(logs: &[Vec<Attempt>], recovered: &Model) -> Result<(), String> {
    // Per writer: which prefixes of its attempts match what it recovered
    // (its keys are its own). The last attempt counts only if in flight.
    let mut matching: Vec<(usize, usize)> = Vec::new(); // (min, max) prefix
    for (t, log) in logs.iter().enumerate() {
        let prefix = format!("w{t}-").into_bytes();
        let mine: Model = recovered
            .iter()
            .filter(|(k, _)| k[1..].starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut state = Model::new();
        let mut found = Vec::new();
        for p in 0..=log.len() {
            if p > 0 {
                apply(&mut state, &log[p - 1].write);
            }
            if state == mine {
                found.push(p);
            }
        }
        let (Some(&min), Some(&max)) = (found.first(), found.last()) else {
            return Err(format!(
                "writer {t}: what survived is no prefix of its {} writes (a lost write or a hole)",
                log.len()
            ));
        };
        matching.push((min, max));
    }
    // What must be there: every write acknowledged with `sync`, and every
    // write acknowledged before a synced write was issued (sequenced
    // before it, so covered by its sync). A write acknowledged later may
    // have been sequenced after the synced one: not covered.
    let durable_before = logs
        .iter()
        .flatten()
        .filter(|a| a.sync && a.acked_as.is_some())
        .map(|a| a.issued_after)
        .max()
        .unwrap_or(0);
    for (t, log) in logs.iter().enumerate() {
        let durable = |a: &Attempt| a.acked_as.is_some_and(|n| n < durable_before || a.sync);
        // A writer's writes are sequenced in its order: the last durable
        // one makes its whole prefix durable.
        let needed = log.iter().rposition(durable).map_or(0, |i| i + 1);
        if matching[t].1 < needed {
            return Err(format!(
                "writer {t}: {} of its writes survived, but the first {needed} were durable",
                matching[t].1
            ));
        }
    }
    // No hole across writers: a write that surely survived (within every
    // matching prefix) was issued after some acknowledgements; all of them
    // must have survived.
    for (t, log) in logs.iter().enumerate() {
        let (min, _) = matching[t];
        if min == 0 {
            continue;
        }
        let issued_after = log[min - 1].issued_after;
        for (u, other) in logs.iter().enumerate() {
            let needed = other
                .iter()
                .rposition(|a| a.acked_as.is_some_and(|n| n < issued_after))
                .map_or(0, |i| i + 1);
            if matching[u].1 < needed {
                return Err(format!(
                    "a hole: writer {t}'s write {} survived, but writer {u} kept only {} of the {needed} \
                     writes acknowledged before it was issued",
                    min - 1,
                    matching[u].1
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn writers_and_background_threads_lose_power_and_recover_a_prefix() {
    let first = env_u64("SIMULATION_THREADS_FIRST_SEED").unwrap_or(0);
    let count = env_u64("SIMULATION_THREADS_SEEDS").unwrap_or(40);
    let mut failures = Vec::new();
    for seed in first..first + count {
        if let Err(e) = run_seed(seed) {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    println!(
        "simulation with threads: seeds={count} first={first} failures={}",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{}\nreplay one: SIMULATION_THREADS_FIRST_SEED=n SIMULATION_THREADS_SEEDS=1",
        failures.join("\n")
    );
}
