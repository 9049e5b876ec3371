//! Model test: random operation sequences against strata and a `BTreeMap`,
//! including snapshots (each with its own copy of the model), flushes and
//! reopens. Any divergence fails with the shrunk sequence.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::ack_log::{AckLog, Model};
use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use strata::fs::MemFileSystem;
use strata::WriteBatch;

/// How a batch is written. Every kind must be readable at once and survive
/// a clean close (`Reopen`): unlogged writes too, which the close flushes.
#[derive(Debug, Clone, Copy)]
enum WriteMode {
    Default,
    Sync,
    DisableWal,
}

impl WriteMode {
    fn options(self) -> strata::WriteOptions {
        strata::WriteOptions {
            sync: matches!(self, WriteMode::Sync),
            disable_wal: matches!(self, WriteMode::DisableWal),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u16),
    Delete(u8),
    /// A batch written as the `WriteMode` says.
    Batch(Vec<(u8, Option<u16>)>, WriteMode),
    Get(u8),
    Range(u8, u8, bool),
    Prefix(u8, bool),
    TakeSnapshot,
    SnapshotGet(usize, u8),
    SnapshotScan(usize, bool),
    DropSnapshot(usize),
    Cursor(u8, bool),
    Flush,
    CompactRange(u8, u8),
    WaitForCompactions,
    Reopen,
}

/// Keys from a small space so operations collide; two-byte keys make
/// prefixes meaningful.
fn k(i: u8) -> Vec<u8> {
    vec![b'a' + i / 8, b'0' + i % 8]
}

fn v(key: u8, n: u16) -> Vec<u8> {
    // Values of varied length, some spanning restart and block boundaries.
    let mut out = format!("{key}:{n}:").into_bytes();
    out.resize(8 + (n as usize % 7) * 40, b'v');
    out
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..40;
    prop_oneof![
        8 => (key.clone(), any::<u16>()).prop_map(|(a, b)| Op::Put(a, b)),
        3 => key.clone().prop_map(Op::Delete),
        2 => (
            proptest::collection::vec((key.clone(), proptest::option::of(any::<u16>())), 0..8),
            prop_oneof![Just(WriteMode::Default), Just(WriteMode::Sync), Just(WriteMode::DisableWal)],
        )
            .prop_map(|(items, mode)| Op::Batch(items, mode)),
        4 => key.clone().prop_map(Op::Get),
        2 => (key.clone(), key.clone(), any::<bool>()).prop_map(|(a, b, r)| Op::Range(a, b, r)),
        1 => (0u8..5, any::<bool>()).prop_map(|(p, r)| Op::Prefix(p, r)),
        1 => Just(Op::TakeSnapshot),
        2 => (any::<usize>(), key.clone()).prop_map(|(s, k)| Op::SnapshotGet(s, k)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(s, r)| Op::SnapshotScan(s, r)),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        2 => (key.clone(), any::<bool>()).prop_map(|(k, fwd)| Op::Cursor(k, fwd)),
        1 => Just(Op::Flush),
        1 => (key.clone(), key.clone()).prop_map(|(a, b)| Op::CompactRange(a, b)),
        1 => Just(Op::WaitForCompactions),
        1 => Just(Op::Reopen),
    ]
}

fn collect(it: strata::Iter) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let fs = MemFileSystem::new();
    let mut db = Some(open_mem(&fs));
    let mut model = Model::new();
    let mut snapshots: Vec<(strata::Snapshot, Model)> = Vec::new();
    for op in ops {
        let d = db.as_ref().unwrap();
        match op {
            Op::Put(key, n) => {
                d.put(k(key), v(key, n)).unwrap();
                model.insert(k(key), v(key, n));
            }
            Op::Delete(key) => {
                d.delete(k(key)).unwrap();
                model.remove(&k(key));
            }
            Op::Batch(items, mode) => {
                let mut b = WriteBatch::new();
                for (key, val) in items {
                    match val {
                        Some(n) => {
                            b.put(k(key), v(key, n));
                            model.insert(k(key), v(key, n));
                        }
                        None => {
                            b.delete(k(key));
                            model.remove(&k(key));
                        }
                    }
                }
                d.write_opt(b, &mode.options()).unwrap();
            }
            Op::Get(key) => {
                let got = d.get(k(key)).unwrap().map(|b| b.to_vec());
                prop_assert_eq!(got, model.get(&k(key)).cloned());
            }
            Op::Range(a, b, rev) => check_range(d, &model, a, b, rev)?,
            Op::Prefix(p, rev) => {
                let prefix = vec![b'a' + p];
                let mut want: Vec<_> = model
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let got = if rev {
                    want.reverse();
                    collect_rev(d.prefix(&prefix))
                } else {
                    collect(d.prefix(&prefix))
                };
                prop_assert_eq!(got, want);
            }
            Op::TakeSnapshot => snapshots.push((d.snapshot(), model.clone())),
            Op::SnapshotGet(i, key) if !snapshots.is_empty() => {
                let (snap, m) = &snapshots[i % snapshots.len()];
                let got = snap.get(k(key)).unwrap().map(|b| b.to_vec());
                prop_assert_eq!(got, m.get(&k(key)).cloned());
            }
            Op::SnapshotScan(i, rev) if !snapshots.is_empty() => {
                let (snap, m) = &snapshots[i % snapshots.len()];
                let mut want: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let got = if rev {
                    want.reverse();
                    collect_rev(snap.iter())
                } else {
                    collect(snap.iter())
                };
                prop_assert_eq!(got, want);
            }
            Op::DropSnapshot(i) if !snapshots.is_empty() => {
                let n = snapshots.len();
                snapshots.remove(i % n);
            }
            Op::Cursor(key, forward) => {
                let mut c = d.cursor();
                let target = k(key);
                if forward {
                    c.seek(&target).unwrap();
                    let want: Vec<_> = model.range(target.clone()..).take(3).collect();
                    for (wk, wv) in want {
                        prop_assert_eq!(c.key(), Some(wk.as_slice()));
                        prop_assert_eq!(c.value(), Some(wv.as_slice()));
                        c.next().unwrap();
                    }
                } else {
                    c.seek_for_prev(&target).unwrap();
                    let want: Vec<_> = model.range(..=target.clone()).rev().take(3).collect();
                    for (wk, wv) in want {
                        prop_assert_eq!(c.key(), Some(wk.as_slice()));
                        prop_assert_eq!(c.value(), Some(wv.as_slice()));
                        c.prev().unwrap();
                    }
                }
            }
            Op::Flush => d.flush().unwrap(),
            Op::CompactRange(a, b) => {
                let (lo, hi) = (k(a.min(b)), k(a.max(b)));
                d.compact_range(lo.as_slice()..=hi.as_slice()).unwrap();
            }
            Op::WaitForCompactions => {
                d.wait_for_compactions().unwrap();
                // Snapshots pin old tables: only then may strays exist.
                d.check_invariants().map_err(TestCaseError::fail)?;
            }
            Op::Reopen => {
                // Snapshots hold the database open; a reopen ends them.
                snapshots.clear();
                drop(db.take());
                db = Some(open_mem(&fs));
                let got = scan_all(db.as_ref().unwrap());
                let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                prop_assert_eq!(got, want);
            }
            Op::SnapshotGet(..) | Op::SnapshotScan(..) | Op::DropSnapshot(..) => {}
        }
    }
    let got = scan_all(db.as_ref().unwrap());
    let want: Vec<_> = model.into_iter().collect();
    prop_assert_eq!(got, want);
    Ok(())
}

/// A range scan between keys `a` and `b`, in either direction, agrees
/// with the model.
fn check_range(
    d: &strata::Db,
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    a: u8,
    b: u8,
    rev: bool,
) -> Result<(), TestCaseError> {
    let (lo, hi) = (k(a.min(b)), k(a.max(b)));
    let mut want: Vec<_> = model
        .range(lo.clone()..hi.clone())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let got = if rev {
        want.reverse();
        collect_rev(d.range(lo.as_slice()..hi.as_slice()))
    } else {
        collect(d.range(lo.as_slice()..hi.as_slice()))
    };
    prop_assert_eq!(got, want);
    Ok(())
}

fn collect_rev(it: strata::Iter) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.rev()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn strata_agrees_with_a_btreemap(ops in proptest::collection::vec(op(), 1..300)) {
        run(ops)?;
    }
}

/// Enough writes to force several memtable flushes, with every operation
/// kind mixed in, on a fixed seed (deterministic and quick).
#[test]
fn long_sequence_with_many_flushes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let ops = proptest::collection::vec(op(), 3000..3001)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    run(ops).unwrap();
}

/// Shrunk failure from `model.proptest-regressions`: a delete right after
/// a put of the same key (the tombstone must hide the put in every path).
#[test]
fn regression_put_then_delete_of_one_key() {
    run(vec![Op::Put(21, 0), Op::Delete(21)]).unwrap();
}

/// Operations for the power-loss model: writes (some synced), reads in
/// both directions, flushes, compactions, clean reopens and power losses.
#[derive(Debug, Clone)]
enum CrashOp {
    Put(u8, u16, bool),
    Delete(u8, bool),
    Get(u8),
    Range(u8, u8, bool),
    Flush,
    CompactRange(u8, u8),
    Reopen,
    PowerLoss(u64),
}

fn crash_op() -> impl Strategy<Value = CrashOp> {
    let key = 0u8..40;
    prop_oneof![
        10 => (key.clone(), any::<u16>(), proptest::bool::weighted(0.2)).prop_map(|(a, b, s)| CrashOp::Put(a, b, s)),
        3 => (key.clone(), proptest::bool::weighted(0.2)).prop_map(|(a, s)| CrashOp::Delete(a, s)),
        3 => key.clone().prop_map(CrashOp::Get),
        2 => (key.clone(), key.clone(), any::<bool>()).prop_map(|(a, b, r)| CrashOp::Range(a, b, r)),
        1 => Just(CrashOp::Flush),
        1 => (key.clone(), key.clone()).prop_map(|(a, b)| CrashOp::CompactRange(a, b)),
        1 => Just(CrashOp::Reopen),
        2 => any::<u64>().prop_map(CrashOp::PowerLoss),
    ]
}

/// After every power loss the database holds the state after a prefix of
/// the acknowledged writes that includes every synced (or flushed) one;
/// in between, reads agree with the model.
fn run_with_power_loss(ops: Vec<CrashOp>) -> Result<(), TestCaseError> {
    use strata::fs::UnsyncedData;
    use strata::WriteOptions;
    let fs = MemFileSystem::new();
    let mut db = Some(open_mem(&fs));
    let mut acks = AckLog::default();
    let mut model = Model::new();
    for op in ops {
        let d = db.as_ref().unwrap();
        match op {
            CrashOp::Put(key, n, sync) => {
                let opts = WriteOptions {
                    sync,
                    ..Default::default()
                };
                d.put_opt(k(key), v(key, n), &opts).unwrap();
                model.insert(k(key), v(key, n));
                acks.acknowledged(vec![(k(key), Some(v(key, n)))], sync);
            }
            CrashOp::Delete(key, sync) => {
                let opts = WriteOptions {
                    sync,
                    ..Default::default()
                };
                d.delete_opt(k(key), &opts).unwrap();
                model.remove(&k(key));
                acks.acknowledged(vec![(k(key), None)], sync);
            }
            CrashOp::Get(key) => {
                let got = d.get(k(key)).unwrap().map(|b| b.to_vec());
                prop_assert_eq!(got, model.get(&k(key)).cloned());
            }
            CrashOp::Range(a, b, rev) => check_range(d, &model, a, b, rev)?,
            CrashOp::Flush => {
                d.flush().unwrap();
                acks.all_durable();
            }
            CrashOp::CompactRange(a, b) => {
                let (lo, hi) = (k(a.min(b)), k(a.max(b)));
                d.compact_range(lo.as_slice()..=hi.as_slice()).unwrap();
                acks.all_durable();
            }
            CrashOp::Reopen => {
                drop(db.take());
                db = Some(open_mem(&fs));
                let got: Model = scan_all(db.as_ref().unwrap()).into_iter().collect();
                prop_assert_eq!(&got, &model);
                acks.all_durable();
            }
            CrashOp::PowerLoss(seed) => {
                let mode = match seed % 3 {
                    0 => UnsyncedData::Drop,
                    1 => UnsyncedData::KeepRandomPrefix(seed),
                    _ => UnsyncedData::KeepRandomPages(seed),
                };
                power_cycle(&fs, db.take().expect("open"), mode);
                db = Some(open_mem(&fs));
                let got: Model = scan_all(db.as_ref().unwrap()).into_iter().collect();
                if let Err(e) = acks.recovered(&got) {
                    return Err(TestCaseError::fail(format!("after power loss: {e}")));
                }
                model = got;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn strata_agrees_with_a_btreemap_across_power_loss(ops in proptest::collection::vec(crash_op(), 1..300)) {
        run_with_power_loss(ops)?;
    }
}

/// The ledger the crash tests share (`tests/common/ack_log.rs`) accepts
/// exactly the states its rule allows.
mod ack_log_rule {
    use super::common::ack_log::*;

    fn put(k: &str, v: &str) -> Write {
        vec![(k.into(), Some(v.into()))]
    }

    fn model(pairs: &[(&str, &str)]) -> Model {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_prefix_holding_every_durable_write_passes_and_anything_else_fails() {
        let mut acks = AckLog::new(model(&[("a", "0")]));
        acks.acknowledged(put("a", "1"), true);
        acks.acknowledged(put("b", "1"), false);
        acks.acknowledged(put("c", "1"), false);
        // Lost the unsynced tail: fine.
        let r = acks.recovered(&model(&[("a", "1"), ("b", "1")])).unwrap();
        assert_eq!((r.prefix, r.acknowledged), (2, 3));

        let mut acks = AckLog::new(model(&[]));
        acks.acknowledged(put("a", "1"), false);
        acks.acknowledged(put("b", "1"), true);
        // Lost a synced write.
        assert!(acks.recovered(&model(&[("a", "1")])).is_err());

        let mut acks = AckLog::new(model(&[]));
        acks.acknowledged(put("a", "1"), false);
        acks.acknowledged(put("b", "1"), false);
        // A hole: the second write without the first.
        assert!(acks.recovered(&model(&[("b", "1")])).is_err());
    }

    #[test]
    fn the_write_in_doubt_may_land_after_all_acknowledged_ones() {
        let mut acks = AckLog::new(model(&[]));
        acks.acknowledged(put("a", "1"), false);
        acks.in_doubt(Some(put("b", "1")));
        let r = acks.recovered(&model(&[("a", "1"), ("b", "1")])).unwrap();
        assert_eq!(r.in_doubt_applied, Some(true));
        // The next epoch starts from what was recovered.
        acks.acknowledged(put("c", "1"), true);
        assert!(acks
            .recovered(&model(&[("a", "1"), ("b", "1"), ("c", "1")]))
            .is_ok());
    }
}
