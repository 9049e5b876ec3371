//! Compactions of a database holding range tombstones, written through
//! `Db::delete_range`: covered versions dropped, tombstones kept for
//! snapshots and cut across output tables, the last level rewritten for
//! them, covered tables deleted unread.
//!
//! What compaction kept is read from the tables themselves (every point
//! entry), not through the database's reads, which hide covered keys.

use crate::fs::MemFileSystem;
use crate::read_options::ReadOptions;
use crate::version::{LargestBound, TableFile, Version};
use crate::{Db, Options};
use std::path::PathBuf;
use std::sync::Arc;

fn open(fs: &MemFileSystem, target_file_size_base: u64) -> Db {
    let options = Options {
        fs: Arc::new(fs.clone()),
        // Flushes and compactions run only when the test asks.
        inline_background_work: true,
        target_file_size_base,
        ..Options::default()
    };
    Db::open(PathBuf::from("/db"), options).unwrap()
}

fn key(i: usize) -> Vec<u8> {
    format!("k{i:02}").into_bytes()
}

/// Keys `k00..k29` with `value_len`-byte values, compacted to the last
/// level.
fn fill_last_level(db: &Db, value_len: usize) {
    for i in 0..30 {
        db.put(key(i), vec![b'v'; value_len]).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
}

fn current(db: &Db) -> Arc<Version> {
    db.inner().versions.lock().current(db.inner().default_ks.id)
}

fn holds_range_dels(f: &TableFile) -> bool {
    f.table().range_tombstones().is_some()
}

/// Every user key with a point entry in some live table, in order.
fn stored_keys(db: &Db) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for (_, f) in current(db).all_files() {
        let mut it = f.table().iter();
        it.seek_to_first().unwrap();
        while it.valid() {
            keys.push(it.parsed_key().user_key.to_vec());
            it.next().unwrap();
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// `(level, number, holds range tombstones)` of every live table.
fn tables(db: &Db) -> Vec<(usize, u64, bool)> {
    current(db)
        .all_files()
        .map(|(level, f)| (level, f.meta.number, holds_range_dels(f)))
        .collect()
}

#[test]
fn compaction_drops_covered_keys_and_keeps_the_tombstone_for_a_snapshot() {
    let fs = MemFileSystem::new();
    // Tables of about six keys: the kept tombstone spans several outputs.
    let db = open(&fs, 64 << 10);
    fill_last_level(&db, 10_000);
    let before = db.snapshot();
    db.delete_range(key(5)..key(25)).unwrap();
    let t = db.inner().visible_sequence();

    // The snapshot sees k05..k24: nothing is dropped and the tombstone is
    // written, cut at each output boundary inside it. Twice: the second
    // compact_range rewrites the last level, which holds a range delete.
    for _ in 0..2 {
        db.compact_range::<&[u8], _>(..).unwrap();
        db.check_invariants().unwrap();
        assert_eq!(stored_keys(&db).len(), 30);
        let at_snapshot = ReadOptions {
            snapshot: Some(&before),
            ..ReadOptions::default()
        };
        assert!(db.get_opt(key(10), &at_snapshot).unwrap().is_some());
        assert_eq!(db.get(key(10)).unwrap(), None);
        assert!(db.get(key(25)).unwrap().is_some());
    }
    let version = current(&db);
    assert!(version.all_files().all(|(level, _)| level == 6));
    let holding: Vec<&Arc<TableFile>> = version
        .files(6)
        .iter()
        .filter(|f| holds_range_dels(f))
        .collect();
    assert!(
        holding.len() >= 2,
        "the tombstone should span several outputs: {:?}",
        tables(&db)
    );
    // Its parts lie each inside its table's bounds, meet end to start,
    // and make up [k05, k25)@t again.
    let mut parts = Vec::new();
    for f in &holding {
        for part in f.table().range_tombstones().unwrap().fragments() {
            assert!(f.meta.may_contain(&part.start));
            let end = part.end.clone().unwrap();
            let past_table = LargestBound::cmp_end(
                &end,
                LargestBound::Excluded,
                &f.meta.largest,
                f.meta.largest_bound,
            );
            assert_ne!(past_table, std::cmp::Ordering::Greater);
            parts.push((part.start.to_vec(), end.to_vec(), part.seqno));
        }
    }
    assert_eq!(parts.first().map(|p| p.0.clone()), Some(key(5)));
    assert_eq!(parts.last().map(|p| p.1.clone()), Some(key(25)));
    for pair in parts.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "parts meet end to start");
    }
    assert!(parts.iter().all(|p| p.2 == t));
    drop(holding);
    drop(version);
    drop(before);

    // Without the snapshot, a rewrite of the last level (there because
    // tables there hold range tombstones) drops the covered keys and the
    // tombstone, which covers nothing deeper.
    db.compact_range::<&[u8], _>(..).unwrap();
    db.check_invariants().unwrap();
    let want: Vec<Vec<u8>> = (0..5).chain(25..30).map(key).collect();
    assert_eq!(stored_keys(&db), want);
    assert!(tables(&db).iter().all(|&(_, _, range_dels)| !range_dels));
    let dropped: u64 = db.stats().levels.iter().map(|l| l.keys_dropped).sum();
    assert!(dropped >= 20, "{}", db.stats().to_text());
    assert_eq!(db.get(key(10)).unwrap(), None);
    assert!(db.get(key(4)).unwrap().is_some());
}

#[test]
fn a_wholly_covered_table_is_deleted_unread_unless_a_snapshot_sees_it() {
    for with_snapshot in [false, true] {
        let fs = MemFileSystem::new();
        let db = open(&fs, 64 << 20);
        fill_last_level(&db, 100);
        let covered: Vec<u64> = tables(&db).iter().map(|&(_, n, _)| n).collect();
        assert_eq!(covered.len(), 1, "{:?}", tables(&db));
        let snapshot = with_snapshot.then(|| db.snapshot());
        db.delete_range(&b"k"[..]..&b"l"[..]).unwrap();
        db.flush().unwrap();
        let tombstone = tables(&db)[0];
        assert_eq!(tombstone.0, 0, "{:?}", tables(&db));

        let read_before = fs.bytes_read();
        db.run_background_work().unwrap();
        // Nothing was read either way: the table goes by a manifest edit
        // alone, or stays.
        assert_eq!(fs.bytes_read(), read_before);
        db.check_invariants().unwrap();
        let live: Vec<u64> = tables(&db).iter().map(|&(_, n, _)| n).collect();
        let deleted_bytes: u64 = db.stats().levels.iter().map(|l| l.deleted_only_bytes).sum();
        if with_snapshot {
            // The snapshot sees k00..k29 and not the tombstone.
            assert_eq!(live, vec![tombstone.1, covered[0]]);
            assert_eq!(deleted_bytes, 0);
            drop(snapshot);
        } else {
            assert_eq!(live, vec![tombstone.1]);
            assert!(deleted_bytes > 0);
            assert_eq!(db.stats().levels[6].deleted_only_bytes, deleted_bytes);
        }
        assert_eq!(db.get(key(3)).unwrap(), None);
    }
}

#[test]
fn compact_range_deletes_covered_tables_before_rewriting_the_rest() {
    let fs = MemFileSystem::new();
    let db = open(&fs, 64 << 20);
    fill_last_level(&db, 1000);
    let covered_bytes = current(&db).level_bytes(6);
    db.put(b"zz", b"kept").unwrap();
    db.delete_range(&b"a"[..]..&b"z"[..]).unwrap();
    let read_before = fs.bytes_read();
    db.compact_range::<&[u8], _>(..).unwrap();
    db.check_invariants().unwrap();
    // The L6 table went unread; the flushed table (zz and the tombstone)
    // was compacted into the last level, which the tombstone, covering
    // nothing deeper by then, did not reach.
    assert_eq!(db.stats().levels[6].deleted_only_bytes, covered_bytes);
    assert_eq!(stored_keys(&db), vec![b"zz".to_vec()]);
    assert!(tables(&db).iter().all(|&(_, _, range_dels)| !range_dels));
    let read = fs.bytes_read() - read_before;
    assert!(
        read < covered_bytes,
        "read {read} bytes: the covered table ({covered_bytes} bytes) was read"
    );
}
