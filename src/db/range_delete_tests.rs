//! `Db` and `Keyspace` range deletes: argument checks and what reaches the
//! write path. (The API is crate-private until reads honour range
//! tombstones everywhere; then these move to `tests/range_deletes.rs`.)

use crate::fs::MemFileSystem;
use crate::{Db, Error, Options, WriteBatch, WriteOptions};
use std::sync::Arc;

fn open() -> Db {
    let options = Options {
        fs: Arc::new(MemFileSystem::new()),
        ..Options::default()
    };
    Db::open("/db", options).expect("open")
}

fn visible(db: &Db) -> u64 {
    db.inner().visible_sequence()
}

fn sync() -> WriteOptions {
    WriteOptions {
        sync: true,
        ..WriteOptions::default()
    }
}

#[test]
fn an_inverted_range_is_an_invalid_argument_and_writes_nothing() {
    let db = open();
    db.put(b"k", b"v").unwrap();
    let before = visible(&db);
    let e = db.delete_range("c".."a").unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("start 'c'")),
        "{e}"
    );
    // In a batch, the batch's other records are not written either.
    let mut batch = WriteBatch::new();
    batch.put(b"x", b"1");
    batch.delete_range("c"..="a");
    let e = db.write(batch).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert_eq!(visible(&db), before, "no sequence number was taken");
    assert_eq!(db.get(b"x").unwrap(), None);
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn an_empty_range_writes_nothing() {
    let db = open();
    db.put(b"a", b"v").unwrap();
    let before = visible(&db);
    db.delete_range("a".."a").unwrap();
    // A sync call is still a sync point, as an empty batch is.
    db.delete_range_opt("b".."b", &sync()).unwrap();
    assert_eq!(visible(&db), before, "no sequence number was taken");
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_keyspace_checks_its_ranges_and_that_it_is_live() {
    let db = open();
    let ks = db.keyspace("ks").unwrap();
    let e = ks.delete_range("b".."a").unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    ks.delete_range("a".."a").unwrap();
    db.drop_keyspace("ks").unwrap();
    let e = ks.delete_range("a".."b").unwrap_err();
    assert!(matches!(e, Error::KeyspaceDropped { .. }), "{e}");
    let e = ks.delete_prefix("a").unwrap_err();
    assert!(matches!(e, Error::KeyspaceDropped { .. }), "{e}");
}

#[test]
fn range_deletes_are_refused_until_the_memtable_keeps_them() {
    let db = open();
    db.put(b"p1", b"v").unwrap();
    let before = visible(&db);
    for result in [
        db.delete_range("a".."z"),
        db.delete_prefix("p"),
        db.delete_prefix_opt("", &sync()),
    ] {
        let e = result.unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument(m) if m.contains("not applied")),
            "{e}"
        );
    }
    assert_eq!(visible(&db), before);
    assert_eq!(db.get(b"p1").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_batch_names_the_keyspace_of_its_range_deletes() {
    let db = open();
    let ks = db.keyspace("ks").unwrap();
    let mut batch = WriteBatch::new();
    batch.delete_range_in(&ks, "a".."c");
    batch.delete_prefix_in(&ks, "p");
    batch.delete_range_in(&ks, "x".."x");
    assert_eq!(batch.keyspaces(), &[ks.id()]);
    let ops: Vec<_> = batch.iter().map(|op| op.unwrap()).collect();
    assert_eq!(ops.len(), 2, "the empty range added nothing");
    assert!(ops.iter().all(|op| op.keyspace == ks.id()));
    assert_eq!(
        (ops[0].key, ops[0].range_end()),
        (&b"a"[..], Some(&b"c"[..]))
    );
    assert_eq!(
        (ops[1].key, ops[1].range_end()),
        (&b"p"[..], Some(&b"q"[..]))
    );
    // A keyspace of another database makes the batch fail.
    let other = open();
    let theirs = other.keyspace("ks").unwrap();
    let mut batch = WriteBatch::new();
    batch.delete_range_in(&ks, "a".."c");
    batch.delete_prefix_in(&theirs, "p");
    assert_eq!(batch.owner(), Some(0));
}
