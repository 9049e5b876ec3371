//! `Db` and `Keyspace` range deletes: argument checks, what reaches the
//! write path, reads of memtables, flush and WAL replay: the checks that
//! look inside (memtables, L0 tables' tombstones, sequence numbers).

use crate::fs::{FileSystem, MemFileSystem, UnsyncedData};
use crate::inspect::BatchOp;
use crate::{Db, Error, Options, WriteBatch, WriteOptions};
use bytes::Bytes;
use std::sync::Arc;
use strata_sstable::{FragmentedRangeTombstones, ValueKind};

fn open() -> Db {
    open_on(Arc::new(MemFileSystem::new()), Options::default())
}

fn open_on(fs: Arc<MemFileSystem>, options: Options) -> Db {
    let options = Options {
        fs: fs as Arc<dyn FileSystem>,
        ..options
    };
    Db::open("/db", options).expect("open")
}

fn get(db: &Db, key: &str) -> Option<Bytes> {
    db.get(key).expect("get")
}

/// The range tombstones of the default keyspace's L0 tables, newest
/// table first.
fn l0_tombstones(db: &Db) -> Vec<Option<Arc<FragmentedRangeTombstones>>> {
    let sv = db.inner().default_ks.super_version.load();
    sv.version
        .files(0)
        .iter()
        .map(|f| f.table().range_tombstones().cloned())
        .collect()
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

#[test]
fn a_range_delete_hides_older_keys_in_the_memtable_and_not_newer_ones() {
    let db = open();
    for k in ["a", "b", "ba", "c"] {
        db.put(k, "old").unwrap();
    }
    let snapshot = db.snapshot();
    db.delete_range("b".."c").unwrap();
    assert_eq!(get(&db, "a").as_deref(), Some(&b"old"[..]));
    assert_eq!(get(&db, "b"), None);
    assert_eq!(get(&db, "ba"), None);
    assert_eq!(
        get(&db, "c").as_deref(),
        Some(&b"old"[..]),
        "the end is exclusive"
    );
    // A snapshot taken before it still sees the keys.
    assert_eq!(snapshot.get("ba").unwrap().as_deref(), Some(&b"old"[..]));
    db.put("b", "new").unwrap();
    assert_eq!(get(&db, "b").as_deref(), Some(&b"new"[..]));
    assert_eq!(get(&db, "ba"), None);
    db.delete_range_opt("a"..="a", &sync()).unwrap();
    assert_eq!(get(&db, "a"), None, "an included end");
}

#[test]
fn a_prefix_delete_hides_exactly_the_keys_with_the_prefix() {
    let db = open();
    for k in [
        &b"us"[..],
        b"user",
        b"user:1",
        b"user\xff",
        b"usf",
        b"\xff\xff",
    ] {
        db.put(k, "v").unwrap();
    }
    db.delete_prefix("use").unwrap();
    let left: Vec<bool> = [&b"us"[..], b"user", b"user:1", b"user\xff", b"usf"]
        .iter()
        .map(|k| db.get(k).unwrap().is_some())
        .collect();
    assert_eq!(left, [true, false, false, false, true]);
    db.delete_prefix_opt(b"\xff", &sync()).unwrap();
    assert_eq!(
        db.get(b"\xff\xff").unwrap(),
        None,
        "a prefix without successor"
    );
    db.delete_prefix("").unwrap();
    assert_eq!(get(&db, "us"), None, "the empty prefix: every key");
}

#[test]
fn a_keyspace_range_delete_stays_in_its_keyspace() {
    let db = open();
    let ks = db.keyspace("ks").unwrap();
    db.put("k", "default").unwrap();
    ks.put("k", "ks").unwrap();
    ks.delete_range("a".."z").unwrap();
    assert_eq!(ks.get("k").unwrap(), None);
    assert_eq!(get(&db, "k").as_deref(), Some(&b"default"[..]));
    ks.put("k2", "v").unwrap();
    ks.delete_prefix_opt("k2", &sync()).unwrap();
    assert_eq!(ks.get("k2").unwrap(), None);
    // One batch: a range delete in one keyspace, a put in the other.
    let mut batch = WriteBatch::new();
    batch.delete_range("a".."z");
    batch.put_in(&ks, "k3", "v");
    db.write(batch).unwrap();
    assert_eq!(get(&db, "k"), None);
    assert_eq!(ks.get("k3").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_range_delete_through_push_op_is_written() {
    let db = open();
    for k in ["a", "b", "c"] {
        db.put(k, "v").unwrap();
    }
    let mut batch = WriteBatch::new();
    batch.push_op(BatchOp {
        keyspace: 0,
        kind: ValueKind::RangeDelete,
        key: b"a",
        value: b"c",
    });
    assert_eq!(batch.len(), 1, "encoded");
    db.write(batch).unwrap();
    assert_eq!(get(&db, "a"), None);
    assert_eq!(get(&db, "b"), None);
    assert_eq!(get(&db, "c").as_deref(), Some(&b"v"[..]), "the end");
    // An empty end is no end, as a decoded record says.
    let mut batch = WriteBatch::new();
    batch.push_op(BatchOp {
        keyspace: 0,
        kind: ValueKind::RangeDelete,
        key: b"c",
        value: b"",
    });
    db.write(batch).unwrap();
    assert_eq!(get(&db, "c"), None);
}

#[test]
fn a_memtable_holding_only_a_range_delete_is_flushed_to_a_table() {
    let db = open();
    // "d" keeps the older table out of the range delete's reach: a table
    // it covered whole would go by a delete-only compaction.
    db.put("b", "v").unwrap();
    db.put("d", "v").unwrap();
    db.flush().unwrap();
    db.delete_range("a".."c").unwrap();
    let seq = db.inner().visible_sequence();
    db.flush().unwrap();
    let tables = l0_tombstones(&db);
    assert_eq!(tables.len(), 2, "the range delete made a table");
    let tombstones = tables[0].as_ref().expect("the newest table holds it");
    assert_eq!(tombstones.max_covering_seqno(b"b", seq), Some(seq));
    assert_eq!(tombstones.max_covering_seqno(b"c", seq), None);
    assert!(tables[1].is_none(), "the older table holds only the put");
}

#[test]
fn a_wal_holding_only_a_range_delete_replays_into_a_table() {
    let fs = Arc::new(MemFileSystem::new());
    let db = open_on(Arc::clone(&fs), Options::default());
    // "d" keeps the older table out of the range delete's reach (see
    // above).
    db.put("b", "v").unwrap();
    db.put("d", "v").unwrap();
    db.flush().unwrap();
    db.delete_range_opt("a".."c", &sync()).unwrap();
    let seq = db.inner().visible_sequence();
    // Crash: the range delete is only in the WAL.
    fs.crash();
    drop(db);
    fs.power_loss(UnsyncedData::Drop);
    let db = open_on(fs, Options::default());
    assert!(
        db.inner().visible_sequence() >= seq,
        "its sequence number was recovered"
    );
    let tables = l0_tombstones(&db);
    assert_eq!(tables.len(), 2, "replay flushed the range delete to L0");
    let tombstones = tables[0].as_ref().expect("the replayed table holds it");
    assert_eq!(tombstones.len(), 1);
    assert_eq!(tombstones.max_covering_seqno(b"a", seq), Some(seq));
    assert_eq!(tombstones.max_covering_seqno(b"b", seq - 1), None);
}

#[test]
fn a_memtable_with_memtable_max_range_deletions_of_them_is_frozen() {
    let options = Options {
        memtable_max_range_deletions: 2,
        ..Options::default()
    };
    let db = open_on(Arc::new(MemFileSystem::new()), options);
    let active = || db.inner().default_ks.super_version.load().mem.clone();
    db.delete_range("a".."b").unwrap();
    db.delete_range("c".."d").unwrap();
    let full = active();
    assert_eq!(full.range_tombstones().len(), 2);
    db.put("k", "v").unwrap();
    assert!(!Arc::ptr_eq(&full, &active()), "the next write froze it");
    assert!(active().range_tombstones().is_empty());
    assert_eq!(get(&db, "k").as_deref(), Some(&b"v"[..]));
}

fn keys(iter: impl Iterator<Item = crate::Result<(Bytes, Bytes)>>) -> Vec<String> {
    iter.map(|r| String::from_utf8(r.expect("iterate").0.to_vec()).expect("utf-8"))
        .collect()
}

fn key_range(from: usize, to: usize) -> impl Iterator<Item = String> {
    (from..to).map(|i| format!("k{i:03}"))
}

#[test]
fn iterators_skip_range_deleted_keys_in_memtables_and_tables_both_ways() {
    let db = open();
    for k in key_range(0, 200) {
        db.put(&k, "old").unwrap();
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let before = db.snapshot();
    db.delete_range("k050".."k150").unwrap();
    db.put("k100", "new").unwrap();
    let want: Vec<String> = key_range(0, 50)
        .chain(["k100".to_string()])
        .chain(key_range(150, 200))
        .collect();
    let mut reversed = want.clone();
    reversed.reverse();

    // The tombstone in the memtable, then flushed into an L0 table, over
    // the keys in a deeper level.
    for stage in ["memtable", "L0 table"] {
        assert_eq!(keys(db.iter()), want, "{stage}: forward");
        assert_eq!(keys(db.iter().rev()), reversed, "{stage}: reverse");
        assert_eq!(
            keys(db.range("k040".."k160")),
            want[40..want.len() - 40],
            "{stage}: bounded"
        );
        let mut cursor = db.cursor();
        cursor.seek("k060").unwrap();
        assert_eq!(
            cursor.key(),
            Some(&b"k100"[..]),
            "{stage}: seek into the span"
        );
        cursor.prev().unwrap();
        assert_eq!(cursor.key(), Some(&b"k049"[..]), "{stage}: back across it");
        cursor.seek_for_prev("k140").unwrap();
        assert_eq!(cursor.key(), Some(&b"k100"[..]), "{stage}: seek_for_prev");
        cursor.next().unwrap();
        assert_eq!(
            cursor.key(),
            Some(&b"k150"[..]),
            "{stage}: forward across it"
        );
        assert_eq!(keys(before.iter()).len(), 200, "{stage}: an older snapshot");
        db.flush().unwrap();
        assert_eq!(l0_tombstones(&db).len(), 1);
    }
    assert!(
        l0_tombstones(&db)[0].is_some(),
        "the flush kept the tombstone"
    );
}

#[test]
fn a_table_range_delete_hides_older_tables_keys_and_not_its_newer_points() {
    let db = open();
    for k in ["a", "b", "c", "d"] {
        db.put(k, "old").unwrap();
    }
    db.flush().unwrap();
    let before = db.snapshot();
    db.delete_range("b".."d").unwrap();
    // Written after the range delete into the same memtable: survives it.
    db.put("c", "new").unwrap();
    db.flush().unwrap();
    assert_eq!(l0_tombstones(&db).len(), 2, "both memtables are tables");
    assert_eq!(get(&db, "a").as_deref(), Some(&b"old"[..]));
    // "b" is in the older table only; the newer table's bloom filter says
    // no for it, and its tombstone still deletes it.
    assert_eq!(get(&db, "b"), None);
    assert_eq!(get(&db, "c").as_deref(), Some(&b"new"[..]));
    assert_eq!(
        get(&db, "d").as_deref(),
        Some(&b"old"[..]),
        "the end is exclusive"
    );
    // A snapshot taken before the range delete still sees the old keys.
    assert_eq!(before.get("b").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(before.get("c").unwrap().as_deref(), Some(&b"old"[..]));
}

/// A read takes its sequence number, then a range delete and a
/// delete-only compaction that drops the tables it covers install before
/// the read loads its super version. Reading that super version at the
/// earlier sequence number would show neither the old keys (their tables
/// are gone) nor a write made before the range delete: a state no prefix
/// of the writes has. The read must pin a consistent pair instead.
#[test]
fn a_read_pins_a_super_version_no_compaction_changed_after_its_sequence_number() {
    let db = open_on(
        Arc::new(MemFileSystem::new()),
        Options {
            inline_background_work: true,
            target_file_size_base: 64 << 10,
            ..Options::default()
        },
    );
    let key = |i: usize| format!("k{i:04}");
    for i in 0..300 {
        db.put(key(i), "old").unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let inner = db.inner();
    let mut changed = false;
    let (sv, seq) = inner.pin_with(&inner.default_ks, Default::default(), || {
        if !changed {
            changed = true;
            db.put("y", "written before the range delete").unwrap();
            db.delete_range(key(0)..key(300)).unwrap();
            db.flush().unwrap();
            db.run_background_work().unwrap();
        }
    });
    assert!(changed);
    let read = |k: &str| {
        crate::read::get(&sv, k.as_bytes(), seq, Default::default(), &|| None, &|| 0)
            .unwrap()
            .is_some()
    };
    // Either before both writes (old key there, no "y") or after both.
    assert_eq!(
        (read(&key(3)), read("y")),
        if read("y") {
            (false, true)
        } else {
            (true, false)
        },
        "read at seq {seq}"
    );
}

/// Releasing a snapshot wakes the background threads (a delete-only
/// compaction it blocked may be due) only when some table holds range
/// tombstones: a wake-up ends write delays early and makes every thread
/// pick again, which a snapshot per request must not cost otherwise.
#[test]
fn releasing_a_snapshot_wakes_the_background_only_with_range_tombstones_in_tables() {
    // Inline: no background thread bumps the generation meanwhile.
    let db = open_on(
        Arc::new(MemFileSystem::new()),
        Options {
            inline_background_work: true,
            ..Options::default()
        },
    );
    let generation = |db: &Db| db.inner().bg.state.lock().generation;
    db.put("a", "v").unwrap();
    db.flush().unwrap();
    let before = generation(&db);
    drop(db.snapshot());
    assert_eq!(generation(&db), before, "no table holds range tombstones");
    // Delete-only compaction removes the tables the tombstone covers, not
    // the tombstone's own table: it stays after the background work.
    db.delete_range("a".."b").unwrap();
    db.flush().unwrap();
    db.run_background_work().unwrap();
    let before = generation(&db);
    let first = db.snapshot();
    let second = db.snapshot();
    drop(first);
    assert_eq!(
        generation(&db),
        before,
        "another snapshot at that seq lives"
    );
    drop(second);
    assert!(generation(&db) > before, "the last one at its seq went");
}
