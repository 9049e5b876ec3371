//! A transaction's cursor: seeks and steps both ways over the snapshot
//! with the transaction's own writes laid on it, checked step by step
//! against a model (a sorted map of what the transaction sees), turns of
//! direction included; and serializable transactions count a cursor as a
//! read of the whole keyspace.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use strata::fs::MemFileSystem;
use strata::{Error, Isolation, TransactionCursor, TransactionOptions};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(n: u64) -> Vec<u8> {
    format!("k{n:03}").into_bytes()
}

/// Where the model's cursor is: an entry's key, or nowhere.
fn model_at(model: &Model, at: Option<Vec<u8>>) -> Option<(Vec<u8>, Vec<u8>)> {
    at.map(|k| (k.clone(), model[&k].clone()))
}

fn cursor_at(c: &TransactionCursor) -> Option<(Vec<u8>, Vec<u8>)> {
    assert_eq!(c.valid(), c.key().is_some());
    Some((c.key()?.to_vec(), c.value()?.to_vec()))
}

/// Random transactions over a random database: every seek and step of
/// the cursor lands where the model's does.
#[test]
fn a_cursor_walks_the_snapshot_with_the_transactions_writes_both_ways() {
    for seed in 0..40 {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        let mut rng = Rng(seed);
        let mut model = Model::new();
        for _ in 0..rng.below(60) {
            let n = rng.below(100);
            let v = format!("db{}", rng.below(1000)).into_bytes();
            db.put(key(n), &v).unwrap();
            model.insert(key(n), v);
        }
        if rng.one_in(2) {
            db.flush().unwrap(); // some entries from a table, some not
            for _ in 0..rng.below(20) {
                let n = rng.below(100);
                db.delete(key(n)).unwrap();
                model.remove(&key(n));
            }
        }
        let mut tx = db.transaction();
        db.put(key(200), "after the snapshot").unwrap(); // never seen
        for _ in 0..rng.below(40) {
            let n = rng.below(100);
            if rng.one_in(3) {
                tx.delete(key(n)).unwrap();
                model.remove(&key(n));
            } else {
                let v = format!("tx{}", rng.below(1000)).into_bytes();
                tx.put(key(n), &v).unwrap();
                model.insert(key(n), v);
            }
        }
        let mut cursor = tx.cursor().unwrap();
        // A write after the cursor is made does not show in it.
        tx.put(key(150), "after the cursor").unwrap();
        let mut at: Option<Vec<u8>> = None;
        for step in 0..200 {
            let target = key(rng.below(105));
            match rng.below(8) {
                0 => {
                    cursor.seek(&target).unwrap();
                    at = model.range(target..).next().map(|(k, _)| k.clone());
                }
                1 => {
                    cursor.seek_for_prev(&target).unwrap();
                    at = model.range(..=target).next_back().map(|(k, _)| k.clone());
                }
                2 => {
                    cursor.seek_to_first().unwrap();
                    at = model.keys().next().cloned();
                }
                3 => {
                    cursor.seek_to_last().unwrap();
                    at = model.keys().next_back().cloned();
                }
                4 | 5 => {
                    cursor.next().unwrap();
                    if let Some(k) = &at {
                        at = model
                            .range::<Vec<u8>, _>((
                                std::ops::Bound::Excluded(k),
                                std::ops::Bound::Unbounded,
                            ))
                            .next()
                            .map(|(k, _)| k.clone());
                    }
                }
                _ => {
                    cursor.prev().unwrap();
                    if let Some(k) = &at {
                        at = model.range(..k.clone()).next_back().map(|(k, _)| k.clone());
                    }
                }
            }
            assert_eq!(
                cursor_at(&cursor),
                model_at(&model, at.clone()),
                "seed {seed}, step {step}"
            );
        }
    }
}

/// A merge the transaction made shows merged over the snapshot's value.
#[test]
fn a_cursor_shows_the_transactions_merges_over_the_snapshot() {
    let fs = MemFileSystem::new();
    let options = strata::Options {
        merge_operator: Some(std::sync::Arc::new(strata::Append::with_separator(","))),
        ..mem_options(&fs)
    };
    let db = strata::Db::open(mem_dir(), options).unwrap();
    db.put("a", "1").unwrap();
    db.put("b", "2").unwrap();
    let mut tx = db.transaction();
    tx.merge("b", "3").unwrap();
    tx.merge("c", "4").unwrap();
    let mut c = tx.cursor().unwrap();
    c.seek_to_last().unwrap();
    assert_eq!(c.key(), Some(&b"c"[..]));
    assert_eq!(c.value(), Some(&b"4"[..]));
    c.prev().unwrap();
    assert_eq!(c.value(), Some(&b"2,3"[..]));
    c.prev().unwrap();
    assert_eq!(c.value(), Some(&b"1"[..]));
    c.prev().unwrap();
    assert!(!c.valid());
    c.prev().unwrap(); // a no-op when not valid
    assert!(!c.valid());
}

/// Serializable: a key another commit puts anywhere in the keyspace after
/// the snapshot aborts a transaction that made a cursor (a phantom); at
/// snapshot isolation it commits.
#[test]
fn a_serializable_cursor_reads_the_whole_keyspace() {
    for isolation in [Isolation::Snapshot, Isolation::Serializable] {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        let other = db.keyspace("other").unwrap();
        db.put("a", "1").unwrap();
        let mut tx = db.transaction_with(TransactionOptions {
            isolation,
            ..TransactionOptions::default()
        });
        let mut c = tx.cursor().unwrap();
        c.seek_to_first().unwrap();
        assert_eq!(c.key(), Some(&b"a"[..]));
        tx.put("a", "2").unwrap();
        other.put("z", "elsewhere").unwrap(); // another keyspace: no conflict
        db.put("zz", "phantom").unwrap();
        let r = tx.commit();
        match isolation {
            Isolation::Snapshot => r.unwrap(),
            Isolation::Serializable => {
                assert!(matches!(r, Err(Error::Conflict { .. })), "{r:?}")
            }
        }
    }
}
