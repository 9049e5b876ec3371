//! Merge operands against a model: random puts, deletes, merges and range
//! deletes, spread over memtables and levels by flushes and compactions,
//! read by `get`, both iterator directions and a cursor that switches
//! direction, at the newest state and at every live snapshot, across
//! reopens. The operator appends with a separator (order matters, so an
//! operand merged out of turn shows), with and without a partial merge.

#![allow(clippy::unwrap_used)]

mod common;

use common::operators::FullOnlyAppend;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use strata::fs::{FileSystem, MemFileSystem};
use strata::{
    Append, Db, Error, KeyspaceOptions, Max, MergeError, MergeFailureScope, MergeOperator, Options,
    ReadOptions, Snapshot, UInt64Add, WriteBatch,
};

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Merge(u8, u8),
    DeleteRange(u8, u8),
    Flush,
    Compact,
    Snapshot,
    ReleaseSnapshot,
    Reopen,
    Cursor(u8, Vec<bool>),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..8;
    prop_oneof![
        3 => (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => key.clone().prop_map(Op::Delete),
        8 => (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::Merge(k, v)),
        1 => (key.clone(), key.clone()).prop_map(|(a, b)| Op::DeleteRange(a.min(b), a.max(b))),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Snapshot),
        1 => Just(Op::ReleaseSnapshot),
        1 => Just(Op::Reopen),
        1 => (key, proptest::collection::vec(any::<bool>(), 1..12)).prop_map(|(k, m)| Op::Cursor(k, m)),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key{k}").into_bytes()
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Apply one write to the model: merges append with ",".
fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Put(k, v) => {
            model.insert(key(*k), vec![*v]);
        }
        Op::Delete(k) => {
            model.remove(&key(*k));
        }
        Op::Merge(k, v) => match model.get_mut(&key(*k)) {
            Some(value) => value.extend_from_slice(&[b',', *v]),
            None => {
                model.insert(key(*k), vec![*v]);
            }
        },
        Op::DeleteRange(a, b) => {
            let (a, b) = (key(*a), key(*b));
            model.retain(|k, _| !(a <= *k && *k < b));
        }
        _ => {}
    }
}

struct Harness {
    fs: Arc<MemFileSystem>,
    full_only: bool,
    /// `Options::max_successive_merges`: 0, or small, so merges become
    /// puts of the merged value at once.
    max_successive_merges: usize,
    db: Option<Db>,
    snapshots: Vec<(Snapshot, Model)>,
    model: Model,
}

impl Harness {
    fn options(&self) -> Options {
        let operator: Arc<dyn MergeOperator> = if self.full_only {
            Arc::new(FullOnlyAppend)
        } else {
            Arc::new(Append::with_separator(","))
        };
        Options {
            fs: Arc::clone(&self.fs) as Arc<dyn FileSystem>,
            merge_operator: Some(operator),
            level0_file_num_compaction_trigger: 2,
            inline_background_work: true,
            // The smallest blocks: a key's operands span data blocks
            // and a read walks on into the next block.
            block_size: 256,
            max_successive_merges: self.max_successive_merges,
            ..Options::default()
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("open")
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Put(k, v) => self.db().put(key(*k), [*v]).unwrap(),
            Op::Delete(k) => self.db().delete(key(*k)).unwrap(),
            Op::Merge(k, v) => self.db().merge(key(*k), [*v]).unwrap(),
            Op::DeleteRange(a, b) => self.db().delete_range(key(*a)..key(*b)).unwrap(),
            Op::Flush => self.db().flush().unwrap(),
            Op::Compact => self.db().compact_range::<&[u8], _>(..).unwrap(),
            Op::Snapshot => {
                let snap = self.db().snapshot();
                self.snapshots.push((snap, self.model.clone()));
            }
            Op::ReleaseSnapshot => {
                if !self.snapshots.is_empty() {
                    self.snapshots.remove(0);
                }
            }
            Op::Reopen => {
                self.snapshots.clear();
                self.db.take().unwrap().close().unwrap();
                self.db = Some(Db::open("/db", self.options()).unwrap());
            }
            Op::Cursor(k, moves) => self.check_cursor(&key(*k), moves)?,
        }
        apply(&mut self.model, op);
        Ok(())
    }

    /// A cursor from `start` moving as `moves` says (true: next) against
    /// the model's sorted entries.
    fn check_cursor(&self, start: &[u8], moves: &[bool]) -> Result<(), TestCaseError> {
        let entries: Vec<_> = self.model.iter().collect();
        let mut pos = entries.partition_point(|(k, _)| k.as_slice() < start);
        let mut cursor = self.db().cursor();
        cursor.seek(start).unwrap();
        for &forward in moves {
            match entries.get(pos) {
                Some((k, v)) => {
                    prop_assert_eq!(cursor.key(), Some(k.as_slice()));
                    prop_assert_eq!(cursor.value(), Some(v.as_slice()));
                }
                None => {
                    prop_assert!(cursor.key().is_none());
                    return Ok(());
                }
            }
            if forward {
                cursor.next().unwrap();
                pos += 1;
            } else {
                cursor.prev().unwrap();
                match pos.checked_sub(1) {
                    Some(p) => pos = p,
                    None => {
                        prop_assert!(cursor.key().is_none());
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let db = self.db();
        let views = std::iter::once((None, &self.model))
            .chain(self.snapshots.iter().map(|(s, m)| (Some(s), m)));
        for (snap, model) in views {
            let read = ReadOptions {
                snapshot: snap,
                ..ReadOptions::default()
            };
            for k in 0..8 {
                let got = db.get_opt(key(k), &read).unwrap();
                prop_assert_eq!(got.as_deref(), model.get(&key(k)).map(|v| v.as_slice()));
            }
            let forward: Model = db
                .range_opt::<&[u8], _>(.., &read)
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert_eq!(&forward, model);
            let backward: Vec<_> = db
                .range_opt::<&[u8], _>(.., &read)
                .rev()
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                .collect();
            let want: Vec<_> = model
                .iter()
                .rev()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(backward, want);
        }
        Ok(())
    }
}

fn run_history(
    ops: &[Op],
    full_only: bool,
    max_successive_merges: usize,
) -> Result<(), TestCaseError> {
    let mut h = Harness {
        fs: Arc::new(MemFileSystem::new()),
        full_only,
        max_successive_merges,
        db: None,
        snapshots: Vec::new(),
        model: Model::new(),
    };
    h.db = Some(Db::open("/db", h.options()).unwrap());
    for op in ops {
        h.run(op)?;
        h.check()?;
    }
    h.db().check_invariants().map_err(TestCaseError::fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn merges_read_as_the_model_with_partial_merge(ops in proptest::collection::vec(op(), 1..60)) {
        run_history(&ops, false, 0)?;
    }

    #[test]
    fn merges_read_as_the_model_without_partial_merge(ops in proptest::collection::vec(op(), 1..60)) {
        run_history(&ops, true, 0)?;
    }

    /// `max_successive_merges` changes how operands are stored, never
    /// what is read.
    #[test]
    fn merges_read_as_the_model_with_max_successive_merges(
        ops in proptest::collection::vec(op(), 1..60),
        limit in 1usize..3,
    ) {
        run_history(&ops, true, limit)?;
    }
}

fn open_with(
    fs: &Arc<MemFileSystem>,
    operator: Option<Arc<dyn MergeOperator>>,
) -> strata::Result<Db> {
    Db::open(
        "/db",
        Options {
            fs: Arc::clone(fs) as Arc<dyn FileSystem>,
            merge_operator: operator,
            ..Options::default()
        },
    )
}

fn counter(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

#[test]
fn reopening_without_the_operator_the_operands_were_written_for_fails_at_open() {
    for flush in [false, true] {
        let fs = Arc::new(MemFileSystem::new());
        let db = open_with(&fs, Some(Arc::new(UInt64Add))).unwrap();
        db.merge("hits", counter(2)).unwrap();
        if flush {
            db.flush().unwrap();
        }
        db.close().unwrap();
        let none = open_with(&fs, None).map(drop).unwrap_err();
        let place = if flush {
            "uint64add"
        } else {
            "write-ahead log"
        };
        assert!(
            matches!(&none, Error::InvalidArgument(m) if m.contains("no merge operator") && m.contains(place)),
            "flush {flush}: {none}"
        );
        // The WAL names no operator: another one is caught in tables only.
        if flush {
            let other = open_with(&fs, Some(Arc::new(Max))).map(drop).unwrap_err();
            assert!(
                matches!(&other, Error::InvalidArgument(m) if m.contains("\"uint64add\"") && m.contains("\"max\"")),
                "{other}"
            );
        }
        let db = open_with(&fs, Some(Arc::new(UInt64Add))).unwrap();
        assert_eq!(db.get("hits").unwrap().as_deref(), Some(&counter(2)[..]));
    }
}

/// A merge into a keyspace with no operator is refused at write time,
/// single or in a batch (atomically: nothing of the batch is applied):
/// accepted, it could never be read and the database would not open again
/// without an operator.
#[test]
fn a_merge_without_an_operator_is_refused_naming_the_setting() {
    let fs = Arc::new(MemFileSystem::new());
    let db = open_with(&fs, None).unwrap();
    let e = db.merge("counter", counter(1)).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("no merge operator") && m.contains("Options::merge_operator")),
        "{e}"
    );
    let mut batch = WriteBatch::new();
    batch.put("plain", "v");
    batch.merge("counter", counter(1));
    let e = db.write(batch).unwrap_err();
    assert!(matches!(&e, Error::InvalidArgument(_)), "{e}");
    assert_eq!(db.get("plain").unwrap(), None);
    assert_eq!(db.get("counter").unwrap(), None);
    let ks = db.keyspace("ks").unwrap();
    let mut batch = WriteBatch::new();
    batch.merge_in(&ks, "k", counter(1));
    let e = db.write(batch).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("\"ks\"") && m.contains("KeyspaceOptions::merge_operator")),
        "{e}"
    );
    assert!(ks.merge("k", counter(1)).is_err());
    drop(ks);
    db.close().unwrap();
    // Nothing was stored: it opens without an operator.
    let db = open_with(&fs, None).unwrap();
    assert_eq!(db.get("counter").unwrap(), None);
}

/// Fails on an operand of "bad"; otherwise appends.
struct Picky;

impl MergeOperator for Picky {
    fn name(&self) -> &str {
        "picky"
    }

    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        if operands.contains(&&b"bad"[..]) {
            return Err(MergeError("operand 'bad'".to_string()));
        }
        Append::default().full_merge(key, existing, operands)
    }
}

#[test]
fn a_failing_operator_fails_reads_and_a_manual_compaction() {
    let fs = Arc::new(MemFileSystem::new());
    let db = open_with(&fs, Some(Arc::new(Picky))).unwrap();
    db.put("k", "a").unwrap();
    // Two overlapping L0 tables: the compaction merges them, no move.
    db.flush().unwrap();
    db.merge("k", "bad").unwrap();
    db.merge("other", "x").unwrap();
    let e = db.get("k").unwrap_err();
    assert!(
        matches!(&e, Error::MergeFailed { key, reason } if key == b"k" && reason.contains("picky failed: operand 'bad'")),
        "{e}"
    );
    assert_eq!(db.get("other").unwrap().as_deref(), Some(&b"x"[..]));
    let mut forward = db.iter();
    assert!(
        forward.next().unwrap().is_err(),
        "the forward scan meets k first"
    );
    assert!(db.iter().next_back().unwrap().unwrap().0 == "other");
    // Flush writes operands as they are; a manual compaction to the
    // bottom has a base and must merge: it fails and changes nothing.
    db.flush().unwrap();
    let e = db.compact_range::<&[u8], _>(..).unwrap_err();
    assert!(
        matches!(&e, Error::MergeFailed { key, .. } if key == b"k"),
        "{e}"
    );
    assert_eq!(db.live_files().len(), 2);
    assert!(db.get("k").is_err());
    assert_eq!(db.get("other").unwrap().as_deref(), Some(&b"x"[..]));
}

#[test]
fn a_failing_operator_in_a_background_compaction_stops_writes() {
    let fs = Arc::new(MemFileSystem::new());
    let db = Db::open(
        "/db",
        Options {
            fs: Arc::clone(&fs) as Arc<dyn FileSystem>,
            merge_operator: Some(Arc::new(Picky)),
            level0_file_num_compaction_trigger: 2,
            inline_background_work: true,
            ..Options::default()
        },
    )
    .unwrap();
    db.put("k", "a").unwrap();
    db.flush().unwrap();
    db.merge("k", "bad").unwrap();
    db.flush().unwrap();
    let e = db.run_background_work().unwrap_err();
    assert!(e.to_string().contains("operand 'bad'"), "{e}");
    let w = db.put("z", "1").unwrap_err();
    assert!(
        matches!(&w, Error::Background(inner) if matches!(**inner, Error::MergeFailed { .. })),
        "{w}"
    );
    drop(db);
    // Its operands stay in the tables: another operator is refused.
    let db = open_with(&fs, Some(Arc::new(Append::default()))).unwrap_err();
    assert!(
        matches!(&db, Error::InvalidArgument(m) if m.contains("picky")),
        "{db}"
    );
}

/// `Picky` under RocksDB's `kMustMerge`: a failure fails reads only, or,
/// once `mended`, appends "bad" like any operand.
struct MustMergePicky {
    mended: bool,
}

impl MergeOperator for MustMergePicky {
    fn name(&self) -> &str {
        "must-merge-picky"
    }

    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        if self.mended {
            Append::with_separator(",").full_merge(key, existing, operands)
        } else {
            Picky.full_merge(key, existing, operands)
        }
    }

    fn failure_scope(&self) -> MergeFailureScope {
        MergeFailureScope::MustMerge
    }
}

#[test]
fn a_must_merge_operator_failing_keeps_operands_and_writes_going() {
    let fs = Arc::new(MemFileSystem::new());
    let open = |mended: bool| {
        Db::open(
            "/db",
            Options {
                fs: Arc::clone(&fs) as Arc<dyn FileSystem>,
                merge_operator: Some(Arc::new(MustMergePicky { mended })),
                level0_file_num_compaction_trigger: 2,
                inline_background_work: true,
                ..Options::default()
            },
        )
        .unwrap()
    };
    let db = open(false);
    db.put("k", "a").unwrap();
    db.flush().unwrap();
    db.merge("k", "bad").unwrap();
    db.merge("k", "c").unwrap();
    db.merge("other", "x").unwrap();
    // The base is in a table, so the flush writes the operands; the
    // background compaction of the two tables reaches the base, its full
    // merge fails, and the compaction goes on.
    db.flush().unwrap();
    db.run_background_work().unwrap();
    db.put("z", "1").unwrap();
    assert_eq!(db.get("z").unwrap().as_deref(), Some(&b"1"[..]));
    assert!(matches!(db.get("k").unwrap_err(), Error::MergeFailed { key, .. } if key == b"k"));
    // A manual compaction to the bottom goes through too, dropping nothing.
    db.compact_range::<&[u8], _>(..).unwrap();
    assert!(db.get("k").is_err());
    assert_eq!(db.get("other").unwrap().as_deref(), Some(&b"x"[..]));
    // A memtable holding the base and the failing operands: the flush
    // keeps them all.
    db.put("m", "a").unwrap();
    db.merge("m", "bad").unwrap();
    db.flush().unwrap();
    assert!(db.get("m").is_err());
    drop(db);
    // Mended under the same name, the kept entries merge as if nothing
    // had failed.
    let db = open(true);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"a,bad,c"[..]));
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"a,bad,c"[..]));
    assert_eq!(db.get("m").unwrap().as_deref(), Some(&b"a,bad"[..]));
}

#[test]
fn keyspaces_have_their_own_operators_checked_when_opened_with_options() {
    let fs = Arc::new(MemFileSystem::new());
    let db = open_with(&fs, Some(Arc::new(UInt64Add))).unwrap();
    let ks_options = |op: Arc<dyn MergeOperator>| KeyspaceOptions {
        merge_operator: Some(op),
        ..KeyspaceOptions::default()
    };
    let tags = db
        .keyspace_with("tags", ks_options(Arc::new(Append::with_separator("|"))))
        .unwrap();
    tags.merge("t", "a").unwrap();
    tags.merge("t", "b").unwrap();
    db.merge("n", counter(5)).unwrap();
    let mut batch = WriteBatch::new();
    batch.merge_in(&tags, "t", "c");
    batch.merge("n", counter(1));
    db.write(batch).unwrap();
    assert_eq!(tags.get("t").unwrap().as_deref(), Some(&b"a|b|c"[..]));
    assert_eq!(db.get("n").unwrap().as_deref(), Some(&counter(6)[..]));
    tags.flush().unwrap();
    drop(tags);
    db.close().unwrap();
    let db = open_with(&fs, Some(Arc::new(UInt64Add))).unwrap();
    let e = db
        .keyspace_with("tags", ks_options(Arc::new(Max)))
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("stringappend")),
        "{e}"
    );
    let tags = db
        .keyspace_with("tags", ks_options(Arc::new(Append::with_separator("|"))))
        .unwrap();
    assert_eq!(tags.get("t").unwrap().as_deref(), Some(&b"a|b|c"[..]));
    assert_eq!(db.get("n").unwrap().as_deref(), Some(&counter(6)[..]));
}

/// A keyspace recovered at open has no merge operator of its own (it may
/// not be the database's); opened without options it takes the
/// database's, as every other option, after the check.
#[test]
fn a_recovered_keyspace_opened_without_options_takes_the_databases_operator() {
    let fs = Arc::new(MemFileSystem::new());
    let append = || -> Arc<dyn MergeOperator> { Arc::new(Append::with_separator("+")) };
    let db = open_with(&fs, Some(append())).unwrap();
    let ks = db.keyspace("log").unwrap();
    ks.merge("k", "a").unwrap();
    ks.flush().unwrap();
    ks.merge("k", "b").unwrap();
    drop(ks);
    db.close().unwrap();
    let db = open_with(&fs, Some(append())).unwrap();
    let ks = db.keyspace("log").unwrap();
    assert_eq!(ks.get("k").unwrap().as_deref(), Some(&b"a+b"[..]));
    drop(ks);
    db.close().unwrap();
    // The database's operator is not the one the keyspace's tables name.
    let db = open_with(&fs, Some(Arc::new(Max))).unwrap();
    let e = db.keyspace("log").map(drop).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("stringappend")),
        "{e}"
    );
}

/// A keyspace created (or opened) with no merge operator keeps none when
/// opened again without options: only one recovered at open and not
/// opened since takes the database's.
#[test]
fn a_keyspace_given_no_operator_does_not_take_the_databases() {
    let fs = Arc::new(MemFileSystem::new());
    let db = open_with(&fs, Some(Arc::new(UInt64Add))).unwrap();
    let ks = db
        .keyspace_with("plain", KeyspaceOptions::default())
        .unwrap();
    assert!(ks.merge("k", counter(1)).is_err());
    drop(ks);
    let ks = db.keyspace("plain").unwrap();
    let e = ks.merge("k", counter(1)).unwrap_err();
    assert!(matches!(&e, Error::InvalidArgument(_)), "{e}");
    drop(ks);
    db.close().unwrap();
    // Recovered and opened without options, it takes the database's.
    let db = open_with(&fs, Some(Arc::new(UInt64Add))).unwrap();
    let ks = db.keyspace("plain").unwrap();
    ks.merge("k", counter(2)).unwrap();
    assert_eq!(ks.get("k").unwrap().as_deref(), Some(&counter(2)[..]));
}

/// Operands replayed from the WAL carry no operator's name. Compacted
/// with a table written for another operator, they used to make the
/// output unlabelled, which the open check accepts under any operator:
/// the keyspace then opened with the wrong one and merged 5 and 7 into
/// 12. The output keeps the table's label, and the check refuses.
#[test]
fn unlabelled_operands_do_not_launder_a_tables_operator() {
    let fs = Arc::new(MemFileSystem::new());
    let db = open_with(&fs, Some(Arc::new(UInt64Add))).unwrap();
    let ks = db
        .keyspace_with(
            "ks",
            KeyspaceOptions {
                merge_operator: Some(Arc::new(Max)),
                ..KeyspaceOptions::default()
            },
        )
        .unwrap();
    ks.merge("k", counter(5)).unwrap();
    ks.flush().unwrap();
    ks.merge("k", counter(7)).unwrap();
    drop(ks);
    db.close().unwrap();
    // The replayed operand is flushed at open, and two L0 tables start a
    // compaction of the keyspace before anyone opens it.
    let db = Db::open(
        "/db",
        Options {
            fs: Arc::clone(&fs) as Arc<dyn FileSystem>,
            merge_operator: Some(Arc::new(UInt64Add)),
            level0_file_num_compaction_trigger: 2,
            ..Options::default()
        },
    )
    .unwrap();
    db.wait_for_compactions().unwrap();
    let e = db.keyspace("ks").map(drop).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("\"max\"")),
        "{e}"
    );
}

/// A keyspace open with one operator, whose memtable holds operands, is
/// not switched to another by `keyspace_with`: the operands would be
/// merged with (5 and 7 read as 12) and labelled for an operator they
/// were not written for.
#[test]
fn an_open_keyspace_does_not_switch_operators_over_unflushed_operands() {
    let fs = Arc::new(MemFileSystem::new());
    let db = open_with(&fs, Some(Arc::new(UInt64Add))).unwrap();
    let with = |op: Arc<dyn MergeOperator>| KeyspaceOptions {
        merge_operator: Some(op),
        ..KeyspaceOptions::default()
    };
    let ks = db.keyspace_with("ks", with(Arc::new(Max))).unwrap();
    ks.merge("k", counter(5)).unwrap();
    ks.merge("k", counter(7)).unwrap();
    let e = db
        .keyspace_with("ks", with(Arc::new(UInt64Add)))
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("\"max\"") && m.contains("memtables")),
        "{e}"
    );
    // The same operator again is fine, and the value is still the max.
    let ks2 = db.keyspace_with("ks", with(Arc::new(Max))).unwrap();
    assert_eq!(ks2.get("k").unwrap().as_deref(), Some(&counter(7)[..]));
    // Flushed, the tables' label refuses the switch too.
    ks.flush().unwrap();
    let e = db
        .keyspace_with("ks", with(Arc::new(UInt64Add)))
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("\"max\"")),
        "{e}"
    );
}

/// A read walks down a key's operands in a table block by block, not
/// with a search of the table per operand: 40 operands over a base, in
/// 256-byte blocks of one table, read with one block access per block they
/// span (the old read asked the table again for each: 41 accesses).
#[test]
fn a_read_walks_operands_in_a_table_without_searching_again() {
    let fs = Arc::new(MemFileSystem::new());
    let statistics = strata::Statistics::new();
    let db = Db::open(
        "/db",
        Options {
            fs: Arc::clone(&fs) as Arc<dyn FileSystem>,
            merge_operator: Some(Arc::new(Append::with_separator(","))),
            block_size: 256,
            statistics: Some(Arc::clone(&statistics)),
            ..Options::default()
        },
    )
    .unwrap();
    db.put("a", "before").unwrap();
    db.put("k", "base").unwrap();
    let mut want = String::from("base");
    for i in 0..40 {
        let operand = format!("{i:02}-operand-of-thirty-bytes-");
        db.merge("k", &operand).unwrap();
        want.push_str(&format!(",{operand}"));
    }
    db.put("z", "after").unwrap();
    db.flush().unwrap();
    let accesses = || {
        let s = db.statistics().unwrap();
        s.ticker(strata::Ticker::BlockCacheHit) + s.ticker(strata::Ticker::BlockCacheMiss)
    };
    let before = accesses();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(want.as_bytes()));
    let spent = accesses() - before;
    // 41 entries of about 45 bytes: about 8 blocks of 256 bytes.
    assert!(spent <= 16, "{spent} block accesses for one read");
    // The memtable walks the same way, and a snapshot stops on time.
    let snapshot = db.snapshot();
    db.merge("k", "late").unwrap();
    assert_eq!(
        db.get("k").unwrap().as_deref(),
        Some(format!("{want},late").as_bytes())
    );
    let read = ReadOptions {
        snapshot: Some(&snapshot),
        ..ReadOptions::default()
    };
    assert_eq!(
        db.get_opt("k", &read).unwrap().as_deref(),
        Some(want.as_bytes())
    );
}

/// An operator that panics on the operand "boom".
struct Boom;

impl MergeOperator for Boom {
    fn name(&self) -> &str {
        "boom"
    }

    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        assert!(!operands.contains(&&b"boom"[..]), "the operator panicked");
        Append::default().full_merge(key, existing, operands)
    }
}

/// A merge operator panicking in a background compaction is that
/// compaction's failure, caught where the compaction runs (not by the
/// thread's last-resort guard, which ends the thread): writes stop with
/// the panic as the background error, naming the compaction. The second
/// `flush` is `Ok` even when that compaction fails before its waiter looks
/// (it once returned the compaction's error, rarely: `wait_flushed`).
#[test]
fn an_operator_panicking_in_a_background_compaction_is_its_failure() {
    let fs = Arc::new(MemFileSystem::new());
    let db = Db::open(
        "/db",
        Options {
            fs: Arc::clone(&fs) as Arc<dyn FileSystem>,
            merge_operator: Some(Arc::new(Boom)),
            level0_file_num_compaction_trigger: 2,
            ..Options::default()
        },
    )
    .unwrap();
    db.put("k", "a").unwrap();
    db.flush().unwrap();
    db.merge("k", "boom").unwrap();
    db.flush().unwrap();
    let e = db.wait_for_compactions().unwrap_err();
    assert!(e.to_string().contains("background compaction"), "{e}");
    let w = db.put("z", "1").unwrap_err();
    assert!(
        matches!(&w, Error::Background(inner) if matches!(**inner, Error::Panic { place: "background compaction", .. })),
        "{w}"
    );
}

/// The test above, with its race made to happen every time: a
/// compaction thread picks the due compaction while `wait_for_compactions`
/// looks, after it read the count of compactions running (none) and
/// before it looked whether one is due (none: the picked inputs are
/// busy, out of the scores). That waiter returned `Ok` and the picked
/// compaction failed after. The count and the scores are read under the
/// lock the pick holds now: the waiter sees the pick and waits for it.
#[test]
fn a_compaction_picked_while_a_waiter_looks_is_waited_for() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Mutex};
    use strata::HookPoint;
    let (at_gate_tx, at_gate_rx) = mpsc::channel::<()>();
    let (open_tx, open_rx) = mpsc::channel::<()>();
    let (picked_tx, picked_rx) = mpsc::channel::<()>();
    let (open_rx, picked_rx) = (Mutex::new(open_rx), Mutex::new(picked_rx));
    let gate_open = AtomicBool::new(false);
    let armed = Arc::new(AtomicBool::new(false));
    let hook = {
        let armed = Arc::clone(&armed);
        Arc::new(move |point: HookPoint| {
            match point {
                // The compaction thread waits before its first look for
                // work until the waiter below has counted none running.
                HookPoint::CompactionPick if !gate_open.load(Ordering::SeqCst) => {
                    let _ = at_gate_tx.send(());
                    let _ = open_rx.lock().unwrap().recv();
                    gate_open.store(true, Ordering::SeqCst);
                }
                // The waiter counted none running: let the compaction
                // thread pick, and go on once the pick is counted.
                HookPoint::CompactionsIdleCheck if armed.swap(false, Ordering::SeqCst) => {
                    let _ = open_tx.send(());
                    let _ = picked_rx.lock().unwrap().recv();
                }
                HookPoint::Compaction => {
                    let _ = picked_tx.send(());
                }
                _ => {}
            }
            Ok(())
        })
    };
    let fs = Arc::new(MemFileSystem::new());
    let db = Db::open(
        "/db",
        Options {
            fs: Arc::clone(&fs) as Arc<dyn FileSystem>,
            merge_operator: Some(Arc::new(Boom)),
            level0_file_num_compaction_trigger: 2,
            // One compaction thread, held at the gate.
            max_background_jobs: 2,
            test_hook: Some(hook),
            ..Options::default()
        },
    )
    .unwrap();
    at_gate_rx.recv().unwrap();
    db.put("k", "a").unwrap();
    db.flush().unwrap();
    db.merge("k", "boom").unwrap();
    db.flush().unwrap();
    armed.store(true, Ordering::SeqCst);
    let e = db
        .wait_for_compactions()
        .expect_err("returned while a compaction was picked, and it failed after");
    assert!(e.to_string().contains("background compaction"), "{e}");
    assert!(!armed.load(Ordering::SeqCst), "the waiter never looked");
}

/// `UInt64Add` that records the most operands a read's full merge was
/// given.
struct CountingAdd(std::sync::atomic::AtomicUsize);

impl MergeOperator for CountingAdd {
    fn name(&self) -> &str {
        "uint64add"
    }

    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        self.0
            .fetch_max(operands.len(), std::sync::atomic::Ordering::Relaxed);
        UInt64Add.full_merge(key, existing, operands)
    }

    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        UInt64Add.partial_merge(key, operands)
    }
}

fn sum_of(v: Option<strata::Bytes>) -> u64 {
    u64::from_le_bytes(v.unwrap().as_ref().try_into().unwrap())
}

/// RocksDB's `max_successive_merges`: a counter merged 200 times reads
/// by merging at most the limit's operands (plus its own base), not 200;
/// snapshots, a reopen (the WAL holds operands) and a flush read the same
/// sums.
#[test]
fn max_successive_merges_bounds_the_operands_a_read_merges() {
    let fs = Arc::new(MemFileSystem::new());
    let counting = Arc::new(CountingAdd(Default::default()));
    let options = || Options {
        fs: Arc::clone(&fs) as Arc<dyn FileSystem>,
        merge_operator: Some(Arc::clone(&counting) as Arc<dyn MergeOperator>),
        max_successive_merges: 3,
        ..Options::default()
    };
    let db = Db::open("/db", options()).unwrap();
    db.put("k", counter(1000)).unwrap();
    let mut snap = None;
    for i in 0..200 {
        if i == 100 {
            snap = Some(db.snapshot());
        }
        db.merge("k", counter(1)).unwrap();
    }
    counting.0.store(0, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(sum_of(db.get("k").unwrap()), 1200);
    let most = counting.0.load(std::sync::atomic::Ordering::Relaxed);
    assert!(most <= 3, "a read merged {most} operands");
    let snap = snap.unwrap();
    let at = ReadOptions {
        snapshot: Some(&snap),
        ..ReadOptions::default()
    };
    assert_eq!(sum_of(db.get_opt("k", &at).unwrap()), 1100);
    drop(snap);
    drop(db);
    // The WAL holds every operand: the replay stores them as operands.
    let db = Db::open("/db", options()).unwrap();
    assert_eq!(sum_of(db.get("k").unwrap()), 1200);
    db.merge("k", counter(1)).unwrap();
    db.flush().unwrap();
    assert_eq!(sum_of(db.get("k").unwrap()), 1201);
}

/// Merges of one key from several threads at once, with the limit at 1:
/// a merge stored as a put only when every earlier write is in the
/// memtable, so no increment is overwritten.
#[test]
fn max_successive_merges_loses_no_concurrent_increment() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            merge_operator: Some(Arc::new(UInt64Add)),
            max_successive_merges: 1,
            ..Options::default()
        },
    )
    .unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..2000u64 {
                    db.merge("k", counter(1)).unwrap();
                    if (i + t) % 500 == 0 {
                        let _ = db.get("k").unwrap();
                    }
                }
            });
        }
    });
    assert_eq!(sum_of(db.get("k").unwrap()), 8000);
}

/// An expiring value is no base to store a merge onto: once it expires
/// the key reads as its operands alone (docs/design/ttl.md), which a put
/// of the merged value would not.
#[test]
fn max_successive_merges_does_not_fold_into_an_expiring_value() {
    let clock = Arc::new(strata::ManualClock::new(1_780_000_000_000_000));
    let db = Db::open(
        tempfile::tempdir().unwrap().keep(),
        Options {
            merge_operator: Some(Arc::new(UInt64Add)),
            max_successive_merges: 2,
            clock: Arc::clone(&clock) as Arc<dyn strata::Clock>,
            ..Options::default()
        },
    )
    .unwrap();
    db.put_with_ttl("k", counter(1000), std::time::Duration::from_secs(10))
        .unwrap();
    for _ in 0..10 {
        db.merge("k", counter(1)).unwrap();
    }
    assert_eq!(sum_of(db.get("k").unwrap()), 1010);
    clock.advance(std::time::Duration::from_secs(11));
    assert_eq!(sum_of(db.get("k").unwrap()), 10);
    // Merges after the expiry fold onto nothing.
    for _ in 0..10 {
        db.merge("k", counter(1)).unwrap();
    }
    assert_eq!(sum_of(db.get("k").unwrap()), 20);
}

/// Flush combines the operands no snapshot needs apart (docs/design/merge.md
/// §4): onto a put in the memtable a full merge, over a snapshot's stripe
/// boundary a partial one; snapshots read what they read before.
#[test]
fn flush_combines_operands_within_each_snapshot_stripe() {
    let fs = Arc::new(MemFileSystem::new());
    let counting = Arc::new(CountingAdd(Default::default()));
    let db = Db::open(
        "/db",
        Options {
            fs: Arc::clone(&fs) as Arc<dyn FileSystem>,
            merge_operator: Some(Arc::clone(&counting) as Arc<dyn MergeOperator>),
            ..Options::default()
        },
    )
    .unwrap();
    let most = || counting.0.swap(0, std::sync::atomic::Ordering::Relaxed);
    // A put and five operands: one put after the flush.
    db.put("full", counter(100)).unwrap();
    // Operands alone (tables below may hold the key): one operand.
    for _ in 0..5 {
        db.merge("full", counter(1)).unwrap();
        db.merge("partial", counter(2)).unwrap();
    }
    // A snapshot in the middle: each side combined on its own.
    db.put("striped", counter(1000)).unwrap();
    db.merge("striped", counter(1)).unwrap();
    db.merge("striped", counter(1)).unwrap();
    let snap = db.snapshot();
    db.merge("striped", counter(10)).unwrap();
    db.merge("striped", counter(10)).unwrap();
    db.flush().unwrap();
    most();
    assert_eq!(sum_of(db.get("full").unwrap()), 105);
    assert_eq!(most(), 0, "the flush wrote the merged value as a put");
    assert_eq!(sum_of(db.get("partial").unwrap()), 10);
    assert_eq!(most(), 1, "the flush merged the operands into one");
    assert_eq!(sum_of(db.get("striped").unwrap()), 1022);
    assert_eq!(most(), 1, "the newest stripe's two operands as one");
    let at = ReadOptions {
        snapshot: Some(&snap),
        ..ReadOptions::default()
    };
    assert_eq!(sum_of(db.get_opt("striped", &at).unwrap()), 1002);
    assert_eq!(most(), 0, "the snapshot's stripe merged onto its put");
    // Scans agree, both ways.
    let forward: Vec<u64> = db.iter().map(|r| sum_of(Some(r.unwrap().1))).collect();
    assert_eq!(forward, vec![105, 10, 1022]);
    let backward: Vec<u64> = db
        .iter()
        .rev()
        .map(|r| sum_of(Some(r.unwrap().1)))
        .collect();
    assert_eq!(backward, vec![1022, 10, 105]);
}

/// A failing operator fails the flush that must merge onto a base, as it
/// fails a compaction, and nothing is lost: reads report the failure.
#[test]
fn a_failing_operator_fails_a_flush_that_merges_onto_a_base() {
    let fs = Arc::new(MemFileSystem::new());
    let db = open_with(&fs, Some(Arc::new(Picky))).unwrap();
    db.put("k", "a").unwrap();
    db.merge("k", "bad").unwrap();
    let e = db.flush().unwrap_err();
    assert!(e.to_string().contains("operand 'bad'"), "{e}");
    assert!(db.live_files().is_empty());
    assert!(db.get("k").is_err());
}

/// After a flush's full merge onto a put, the key's older entries in the
/// stripe are left out: no reader sees them, and every read of the table
/// would step over them. A snapshot's stripe keeps its own.
#[test]
fn a_flush_leaves_out_what_a_full_merge_shadows() {
    let fs = Arc::new(MemFileSystem::new());
    let db = open_with(&fs, Some(Arc::new(UInt64Add))).unwrap();
    for round in 0..3u64 {
        db.put("k", counter(100 * round)).unwrap();
        for _ in 0..4 {
            db.merge("k", counter(1)).unwrap();
        }
    }
    db.flush().unwrap();
    let files = db.live_files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].num_entries, 1, "one put: 200 + 4");
    assert_eq!(sum_of(db.get("k").unwrap()), 204);

    db.put("s", counter(0)).unwrap();
    db.merge("s", counter(1)).unwrap();
    let snap = db.snapshot();
    db.put("s", counter(10)).unwrap();
    db.merge("s", counter(1)).unwrap();
    db.flush().unwrap();
    let s_entries: u64 = db
        .live_files()
        .iter()
        .filter(|f| f.smallest.as_slice() == b"s")
        .map(|f| f.num_entries)
        .sum();
    assert_eq!(s_entries, 2, "one put per stripe");
    let at = ReadOptions {
        snapshot: Some(&snap),
        ..ReadOptions::default()
    };
    assert_eq!(sum_of(db.get_opt("s", &at).unwrap()), 1);
    assert_eq!(sum_of(db.get("s").unwrap()), 11);
}
