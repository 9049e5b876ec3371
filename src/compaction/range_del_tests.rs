//! Compactions of a database holding range tombstones: covered versions
//! dropped, tombstones kept for snapshots and cut across output tables,
//! the last level rewritten for them, covered tables deleted unread.
//!
//! Until the write path takes range deletes, the tombstones are put in
//! tables built here and installed by a version edit, at a sequence number
//! a put of a key outside every range has published.

use crate::error::Result;
use crate::filename::table_path;
use crate::flush::finish_table;
use crate::fs::MemFileSystem;
use crate::rate_limiter::IoPriority;
use crate::read::SuperVersion;
use crate::version::{LargestBound, TableFile, VersionEdit};
use crate::{Db, Options};
use std::path::PathBuf;
use std::sync::Arc;
use strata_sstable::{SeqNo, TableBuilder, TableOptions};

fn open(fs: &MemFileSystem, target_file_size_base: u64) -> Db {
    let options = Options {
        fs: Arc::new(fs.clone()),
        // Compactions run only when the test asks.
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

/// Publish one more sequence number (a put of a key outside every
/// range) and return it: a tombstone installed at it is visible.
fn next_seqno(db: &Db) -> SeqNo {
    db.put(b"~marker", b"").unwrap();
    db.inner().visible_sequence()
}

/// Build a table holding only the range tombstone `[start, end)@seqno`
/// and install it at `level` of the default keyspace, as a flush or
/// compaction would.
fn install_tombstone(
    db: &Db,
    level: usize,
    start: &[u8],
    end: Option<&[u8]>,
    seqno: SeqNo,
) -> Result<Arc<TableFile>> {
    let inner = db.inner();
    let number = inner.versions.lock().new_file_number()?;
    let path = table_path(&inner.dir, number);
    let file = inner.fs.create(&path).unwrap();
    let mut builder = TableBuilder::new(
        inner.table_writer(file, IoPriority::Low),
        TableOptions::default(),
    )
    .unwrap();
    builder.add_range_tombstone(start, end, seqno).unwrap();
    let opener = inner.versions.lock().opener().clone();
    let table = finish_table(&opener, number, builder, level)?;
    inner.fs.sync_dir(&inner.dir).unwrap();
    let ks = &inner.default_ks;
    let mut versions = inner.versions.lock();
    let edit = VersionEdit {
        keyspace: ks.id,
        new_files: vec![(level, table.meta.clone())],
        ..VersionEdit::default()
    };
    let version = versions.log_and_apply(edit, std::slice::from_ref(&table))?;
    inner.update_super_version(ks, |sv| SuperVersion {
        mem: Arc::clone(&sv.mem),
        imms: sv.imms.clone(),
        version,
    });
    Ok(table)
}

fn holds_range_dels(f: &TableFile) -> bool {
    f.table().range_tombstones().is_some()
}

/// Every user key in the tables, in order (reads ignore range tombstones
/// on this branch: what is left is what compaction kept).
fn keys(db: &Db) -> Vec<Vec<u8>> {
    db.iter().map(|r| r.unwrap().0.to_vec()).collect()
}

/// `(level, number, holds range tombstones)` of every live table.
fn tables(db: &Db) -> Vec<(usize, u64, bool)> {
    let version = db.inner().versions.lock().current(db.inner().default_ks.id);
    version
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
    let t = next_seqno(&db);
    install_tombstone(&db, 5, b"k05", Some(b"k25"), t).unwrap();

    // The snapshot sees k05..k24: nothing is dropped and the tombstone is
    // written, cut at each output boundary inside it.
    db.compact_range::<&[u8], _>(..).unwrap();
    db.check_invariants().unwrap();
    assert_eq!(keys(&db).len(), 31);
    let version = db.inner().versions.lock().current(db.inner().default_ks.id);
    let last: Vec<Arc<TableFile>> = version.files(6).to_vec();
    assert!(version.all_files().all(|(level, _)| level == 6));
    let holding: Vec<&Arc<TableFile>> = last.iter().filter(|f| holds_range_dels(f)).collect();
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
    assert_eq!(parts.first().map(|p| p.0.clone()), Some(b"k05".to_vec()));
    assert_eq!(parts.last().map(|p| p.1.clone()), Some(b"k25".to_vec()));
    for pair in parts.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "parts meet end to start");
    }
    assert!(parts.iter().all(|p| p.2 == t));
    drop(holding);
    drop((version, last));
    drop(before);

    // Without the snapshot, a rewrite of the last level (there because
    // tables there hold range tombstones) drops the covered keys and the
    // tombstone, which covers nothing deeper.
    db.compact_range::<&[u8], _>(..).unwrap();
    db.check_invariants().unwrap();
    let want: Vec<Vec<u8>> = (0..5)
        .chain(25..30)
        .map(key)
        .chain([b"~marker".to_vec()])
        .collect();
    assert_eq!(keys(&db), want);
    assert!(tables(&db).iter().all(|&(_, _, range_dels)| !range_dels));
    let dropped: u64 = db.stats().levels.iter().map(|l| l.keys_dropped).sum();
    assert!(dropped >= 20, "{}", db.stats().to_text());
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
        let t = next_seqno(&db);
        let tombstone = install_tombstone(&db, 5, b"k", Some(b"l"), t).unwrap();

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
            assert_eq!(live, vec![tombstone.meta.number, covered[0]]);
            assert_eq!(deleted_bytes, 0);
            drop(snapshot);
        } else {
            assert_eq!(live, vec![tombstone.meta.number]);
            assert!(deleted_bytes > 0);
            assert_eq!(db.stats().levels[6].deleted_only_bytes, deleted_bytes);
        }
    }
}

#[test]
fn compact_range_deletes_covered_tables_before_rewriting_the_rest() {
    let fs = MemFileSystem::new();
    let db = open(&fs, 64 << 20);
    fill_last_level(&db, 1000);
    let covered_bytes = {
        let version = db.inner().versions.lock().current(db.inner().default_ks.id);
        version.level_bytes(6)
    };
    let t = next_seqno(&db);
    install_tombstone(&db, 5, b"a", Some(b"~"), t).unwrap();
    let read_before = fs.bytes_read();
    db.compact_range::<&[u8], _>(..).unwrap();
    db.check_invariants().unwrap();
    // The L6 table went unread; the flushed marker's table and the
    // tombstone's were compacted (read) into the last level, which the
    // tombstone, covering nothing deeper by then, did not reach.
    assert_eq!(db.stats().levels[6].deleted_only_bytes, covered_bytes);
    assert_eq!(keys(&db), vec![b"~marker".to_vec()]);
    assert!(tables(&db).iter().all(|&(_, _, range_dels)| !range_dels));
    let read = fs.bytes_read() - read_before;
    assert!(
        read < covered_bytes,
        "read {read} bytes: the covered table ({covered_bytes} bytes) was read"
    );
}
