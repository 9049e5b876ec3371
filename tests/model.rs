//! Model test: random operation sequences against strata and a `BTreeMap`,
//! including snapshots (each with its own copy of the model), flushes and
//! reopens. Any divergence fails with the shrunk sequence.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::ack_log::{apply, AckLog, Model};
use common::keyspaces::KEYSPACES;
use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use strata::fs::MemFileSystem;
use strata::{Db, Keyspace, WriteBatch};

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

/// Each operation names the keyspace it works on: an index into
/// [`KEYSPACES`] (0 is the default keyspace; the others are created on
/// first use, and `DropKeyspace` drops one, which a later use re-creates
/// empty).
#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8, u16),
    Delete(u8, u8),
    /// A batch across keyspaces, written as the `WriteMode` says.
    Batch(Vec<(u8, u8, Option<u16>)>, WriteMode),
    /// Move a key's value from one keyspace to another in one batch.
    Move(u8, u8, u8),
    Get(u8, u8),
    Range(u8, u8, u8, bool),
    Prefix(u8, u8, bool),
    TakeSnapshot,
    SnapshotGet(usize, u8, u8),
    SnapshotScan(usize, u8, bool),
    DropSnapshot(usize),
    Cursor(u8, u8, bool),
    Flush(u8),
    FlushAll,
    CompactRange(u8, u8, u8),
    WaitForCompactions,
    DropKeyspace(u8),
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

/// A keyspace: the default one as often as the three others together.
fn keyspace() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..40;
    let ks = keyspace;
    prop_oneof![
        8 => (ks(), key.clone(), any::<u16>()).prop_map(|(s, a, b)| Op::Put(s, a, b)),
        3 => (ks(), key.clone()).prop_map(|(s, a)| Op::Delete(s, a)),
        2 => (
            proptest::collection::vec((ks(), key.clone(), proptest::option::of(any::<u16>())), 0..8),
            prop_oneof![Just(WriteMode::Default), Just(WriteMode::Sync), Just(WriteMode::DisableWal)],
        )
            .prop_map(|(items, mode)| Op::Batch(items, mode)),
        2 => (ks(), ks(), key.clone()).prop_map(|(a, b, k)| Op::Move(a, b, k)),
        4 => (ks(), key.clone()).prop_map(|(s, a)| Op::Get(s, a)),
        2 => (ks(), key.clone(), key.clone(), any::<bool>()).prop_map(|(s, a, b, r)| Op::Range(s, a, b, r)),
        1 => (ks(), 0u8..5, any::<bool>()).prop_map(|(s, p, r)| Op::Prefix(s, p, r)),
        1 => Just(Op::TakeSnapshot),
        2 => (any::<usize>(), ks(), key.clone()).prop_map(|(i, s, k)| Op::SnapshotGet(i, s, k)),
        1 => (any::<usize>(), ks(), any::<bool>()).prop_map(|(i, s, r)| Op::SnapshotScan(i, s, r)),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        2 => (ks(), key.clone(), any::<bool>()).prop_map(|(s, k, fwd)| Op::Cursor(s, k, fwd)),
        1 => ks().prop_map(Op::Flush),
        1 => Just(Op::FlushAll),
        1 => (ks(), key.clone(), key.clone()).prop_map(|(s, a, b)| Op::CompactRange(s, a, b)),
        1 => Just(Op::WaitForCompactions),
        1 => (1u8..4).prop_map(Op::DropKeyspace),
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

/// A snapshot, what each keyspace held when it was taken, and the
/// handles open then (reads go through them, also after a drop).
struct ModelSnapshot {
    snap: strata::Snapshot,
    models: BTreeMap<&'static str, Model>,
    handles: BTreeMap<&'static str, Keyspace>,
    /// Dropped keyspaces' handles keep their tables on disk.
    holds_dropped: bool,
}

/// The database under test with its handles, and the model: one map per
/// keyspace name, present while the keyspace exists.
struct Harness {
    fs: MemFileSystem,
    db: Option<Db>,
    handles: BTreeMap<&'static str, Keyspace>,
    models: BTreeMap<&'static str, Model>,
    snapshots: Vec<ModelSnapshot>,
}

impl Harness {
    fn new() -> Harness {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        Harness {
            fs,
            db: Some(db),
            handles: BTreeMap::new(),
            models: BTreeMap::from([("default", Model::new())]),
            snapshots: Vec::new(),
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    /// The handle on keyspace `i`, created (empty, in the model too) on
    /// first use.
    fn ks(&mut self, i: u8) -> Keyspace {
        let name = KEYSPACES[usize::from(i)];
        if let Some(h) = self.handles.get(name) {
            return h.clone();
        }
        let h = self.db().keyspace(name).unwrap();
        self.models.entry(name).or_default();
        self.handles.insert(name, h.clone());
        h
    }

    fn model(&mut self, i: u8) -> &mut Model {
        self.ks(i);
        self.models.get_mut(KEYSPACES[usize::from(i)]).unwrap()
    }

    fn reopen(&mut self) -> Result<(), TestCaseError> {
        // Snapshots and keyspace handles hold the database open.
        self.snapshots.clear();
        self.handles.clear();
        drop(self.db.take());
        self.db = Some(open_mem(&self.fs));
        let names: Vec<String> = self.models.keys().map(|n| n.to_string()).collect();
        let mut live = self.db().keyspace_names();
        live.sort();
        prop_assert_eq!(live, names);
        for (name, model) in &self.models {
            let got = collect(self.db().keyspace(name).unwrap().iter());
            let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(got, want, "keyspace {}", name);
        }
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    for op in ops {
        match op {
            Op::Put(s, key, n) => {
                h.ks(s).put(k(key), v(key, n)).unwrap();
                h.model(s).insert(k(key), v(key, n));
            }
            Op::Delete(s, key) => {
                h.ks(s).delete(k(key)).unwrap();
                h.model(s).remove(&k(key));
            }
            Op::Batch(items, mode) => {
                let mut b = WriteBatch::new();
                for (s, key, val) in items {
                    let ks = h.ks(s);
                    match val {
                        Some(n) => {
                            b.put_in(&ks, k(key), v(key, n));
                            h.model(s).insert(k(key), v(key, n));
                        }
                        None => {
                            b.delete_in(&ks, k(key));
                            h.model(s).remove(&k(key));
                        }
                    }
                }
                h.db().write_opt(b, &mode.options()).unwrap();
            }
            Op::Move(from, to, key) if from != to => {
                let Some(value) = h.model(from).remove(&k(key)) else {
                    continue;
                };
                let (a, b) = (h.ks(from), h.ks(to));
                let mut batch = WriteBatch::new();
                batch.delete_in(&a, k(key));
                batch.put_in(&b, k(key), &value);
                h.db().write(batch).unwrap();
                h.model(to).insert(k(key), value);
            }
            Op::Get(s, key) => {
                let got = h.ks(s).get(k(key)).unwrap().map(|b| b.to_vec());
                prop_assert_eq!(got, h.model(s).get(&k(key)).cloned());
            }
            Op::Range(s, a, b, rev) => {
                let ks = h.ks(s);
                check_range(&ks, h.model(s), a, b, rev)?
            }
            Op::Prefix(s, p, rev) => {
                let prefix = vec![b'a' + p];
                let ks = h.ks(s);
                let mut want: Vec<_> = h
                    .model(s)
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let got = if rev {
                    want.reverse();
                    collect_rev(ks.prefix(&prefix))
                } else {
                    collect(ks.prefix(&prefix))
                };
                prop_assert_eq!(got, want);
            }
            Op::TakeSnapshot => {
                let snap = h.db().snapshot();
                h.snapshots.push(ModelSnapshot {
                    snap,
                    models: h.models.clone(),
                    handles: h.handles.clone(),
                    holds_dropped: false,
                });
            }
            Op::SnapshotGet(i, s, key) if !h.snapshots.is_empty() => {
                let n = h.snapshots.len();
                let ms = &h.snapshots[i % n];
                let name = KEYSPACES[usize::from(s)];
                if let Some(ks) = ms.handles.get(name) {
                    let got = ms
                        .snap
                        .keyspace(ks)
                        .get(k(key))
                        .unwrap()
                        .map(|b| b.to_vec());
                    prop_assert_eq!(got, ms.models[name].get(&k(key)).cloned());
                }
            }
            Op::SnapshotScan(i, s, rev) if !h.snapshots.is_empty() => {
                let n = h.snapshots.len();
                let ms = &h.snapshots[i % n];
                let name = KEYSPACES[usize::from(s)];
                if let Some(ks) = ms.handles.get(name) {
                    let view = ms.snap.keyspace(ks);
                    let mut want: Vec<_> = ms.models[name]
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let got = if rev {
                        want.reverse();
                        collect_rev(view.iter())
                    } else {
                        collect(view.iter())
                    };
                    prop_assert_eq!(got, want);
                }
            }
            Op::DropSnapshot(i) if !h.snapshots.is_empty() => {
                let n = h.snapshots.len();
                h.snapshots.remove(i % n);
            }
            Op::Cursor(s, key, forward) => {
                let mut c = h.ks(s).cursor();
                let model = h.model(s);
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
            Op::Flush(s) => h.ks(s).flush().unwrap(),
            Op::FlushAll => h.db().flush_all().unwrap(),
            Op::CompactRange(s, a, b) => {
                let (lo, hi) = (k(a.min(b)), k(a.max(b)));
                h.ks(s)
                    .compact_range(lo.as_slice()..=hi.as_slice())
                    .unwrap();
            }
            Op::WaitForCompactions => {
                h.db().wait_for_compactions().unwrap();
                // Snapshots pin old tables, and handles on dropped
                // keyspaces theirs: only then may strays exist.
                if !h.snapshots.iter().any(|s| s.holds_dropped) {
                    h.db().check_invariants().map_err(TestCaseError::fail)?;
                }
            }
            Op::DropKeyspace(s) => {
                let name = KEYSPACES[usize::from(s)];
                if h.models.remove(name).is_some() {
                    h.handles.remove(name);
                    h.db().drop_keyspace(name).unwrap();
                    for ms in &mut h.snapshots {
                        ms.holds_dropped |= ms.handles.contains_key(name);
                    }
                }
            }
            Op::Reopen => h.reopen()?,
            Op::Move(..) | Op::SnapshotGet(..) | Op::SnapshotScan(..) | Op::DropSnapshot(..) => {}
        }
    }
    h.reopen()
}

/// A range scan between keys `a` and `b`, in either direction, agrees
/// with the model.
fn check_range(
    ks: &Keyspace,
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
        collect_rev(ks.range(lo.as_slice()..hi.as_slice()))
    } else {
        collect(ks.range(lo.as_slice()..hi.as_slice()))
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
    run(vec![Op::Put(0, 21, 0), Op::Delete(0, 21)]).unwrap();
}

/// Operations for the power-loss model: writes (some synced) over the
/// keyspaces, moves between them, reads in both directions, flushes,
/// compactions and drops of one keyspace, clean reopens and power losses.
#[derive(Debug, Clone)]
enum CrashOp {
    Put(u8, u8, u16, bool),
    Delete(u8, u8, bool),
    Move(u8, u8, u8, bool),
    Get(u8, u8),
    Range(u8, u8, u8, bool),
    Flush(u8),
    CompactRange(u8, u8, u8),
    DropKeyspace(u8),
    Reopen,
    PowerLoss(u64),
}

fn crash_op() -> impl Strategy<Value = CrashOp> {
    let key = 0u8..40;
    let ks = keyspace;
    let sync = || proptest::bool::weighted(0.2);
    prop_oneof![
        10 => (ks(), key.clone(), any::<u16>(), sync()).prop_map(|(s, a, b, y)| CrashOp::Put(s, a, b, y)),
        3 => (ks(), key.clone(), sync()).prop_map(|(s, a, y)| CrashOp::Delete(s, a, y)),
        3 => (ks(), ks(), key.clone(), sync()).prop_map(|(a, b, k, y)| CrashOp::Move(a, b, k, y)),
        3 => (ks(), key.clone()).prop_map(|(s, a)| CrashOp::Get(s, a)),
        2 => (ks(), key.clone(), key.clone(), any::<bool>()).prop_map(|(s, a, b, r)| CrashOp::Range(s, a, b, r)),
        1 => ks().prop_map(CrashOp::Flush),
        1 => (ks(), key.clone(), key.clone()).prop_map(|(s, a, b)| CrashOp::CompactRange(s, a, b)),
        1 => (1u8..4).prop_map(CrashOp::DropKeyspace),
        1 => Just(CrashOp::Reopen),
        2 => any::<u64>().prop_map(CrashOp::PowerLoss),
    ]
}

/// After every power loss the database holds the state after a prefix of
/// the acknowledged writes (over every keyspace: model keys carry the
/// keyspace, so a move is never half there) that includes every durable
/// one: synced, followed by a flush of its keyspace or of one written
/// after it, or by a drop; in between, reads agree with the model.
fn run_with_power_loss(ops: Vec<CrashOp>) -> Result<(), TestCaseError> {
    use common::keyspaces::{drop_write, model_key, scan_keyspaces};
    use strata::fs::UnsyncedData;
    use strata::WriteOptions;
    let fs = MemFileSystem::new();
    let mut db = Some(open_mem(&fs));
    let mut handles: BTreeMap<u8, Keyspace> = BTreeMap::new();
    let mut acks = AckLog::default();
    let mut model = Model::new();
    let opts = |sync| WriteOptions {
        sync,
        ..Default::default()
    };
    for op in ops {
        let d = db.as_ref().unwrap();
        let mut ks = |i: u8| {
            handles
                .entry(i)
                .or_insert_with(|| d.keyspace(KEYSPACES[usize::from(i)]).unwrap())
                .clone()
        };
        match op {
            CrashOp::Put(s, key, n, sync) => {
                ks(s).put_opt(k(key), v(key, n), &opts(sync)).unwrap();
                let w = vec![(model_key(s.into(), &k(key)), Some(v(key, n)))];
                apply(&mut model, &w);
                acks.acknowledged(w, sync);
            }
            CrashOp::Delete(s, key, sync) => {
                ks(s).delete_opt(k(key), &opts(sync)).unwrap();
                let w = vec![(model_key(s.into(), &k(key)), None)];
                apply(&mut model, &w);
                acks.acknowledged(w, sync);
            }
            CrashOp::Move(from, to, key, sync) if from != to => {
                let Some(value) = model.get(&model_key(from.into(), &k(key))).cloned() else {
                    continue;
                };
                let mut batch = WriteBatch::new();
                batch.delete_in(&ks(from), k(key));
                batch.put_in(&ks(to), k(key), &value);
                d.write_opt(batch, &opts(sync)).unwrap();
                let w = vec![
                    (model_key(from.into(), &k(key)), None),
                    (model_key(to.into(), &k(key)), Some(value)),
                ];
                apply(&mut model, &w);
                acks.acknowledged(w, sync);
            }
            CrashOp::Move(..) => {}
            CrashOp::Get(s, key) => {
                let got = ks(s).get(k(key)).unwrap().map(|b| b.to_vec());
                prop_assert_eq!(got, model.get(&model_key(s.into(), &k(key))).cloned());
            }
            CrashOp::Range(s, a, b, rev) => {
                let mine: Model = common::keyspaces::entries_of(&model, s.into())
                    .map(|(k, v)| (k.to_vec(), v.clone()))
                    .collect();
                check_range(&ks(s), &mine, a, b, rev)?
            }
            CrashOp::Flush(s) => {
                ks(s).flush().unwrap();
                acks.durable_through_last(|key| key[0] == s);
            }
            CrashOp::CompactRange(s, a, b) => {
                let (lo, hi) = (k(a.min(b)), k(a.max(b)));
                ks(s).compact_range(lo.as_slice()..=hi.as_slice()).unwrap();
                acks.durable_through_last(|key| key[0] == s);
            }
            CrashOp::DropKeyspace(s) => {
                let name = KEYSPACES[usize::from(s)];
                if d.keyspace_names().iter().any(|n| n == name) {
                    handles.remove(&s);
                    d.drop_keyspace(name).unwrap();
                    let w = drop_write(&model, s.into());
                    apply(&mut model, &w);
                    acks.acknowledged(w, true);
                }
            }
            CrashOp::Reopen => {
                handles.clear();
                drop(db.take());
                db = Some(open_mem(&fs));
                let got = scan_keyspaces(db.as_ref().unwrap()).unwrap();
                prop_assert_eq!(&got, &model);
                acks.all_durable();
            }
            CrashOp::PowerLoss(seed) => {
                let mode = match seed % 3 {
                    0 => UnsyncedData::Drop,
                    1 => UnsyncedData::KeepRandomPrefix(seed),
                    _ => UnsyncedData::KeepRandomPages(seed),
                };
                handles.clear();
                power_cycle(&fs, db.take().expect("open"), mode);
                db = Some(open_mem(&fs));
                let got = scan_keyspaces(db.as_ref().unwrap()).unwrap();
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
