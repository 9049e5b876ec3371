//! What a flush writes: of a key's versions in one snapshot stripe only
//! the newest (as a compaction keeps them), every version a live snapshot
//! can still read, and merge operands whole when no operator combines them.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::operators::FullOnlyAppend;
use common::*;
use std::sync::Arc;
use std::time::Duration;
use strata::fs::{MemFileSystem, UnsyncedData};
use strata::{
    Db, ManualClock, MergeError, MergeFailureScope, MergeOperator, Options, UInt64Add, WriteOptions,
};

fn options(fs: &MemFileSystem) -> Options {
    Options {
        inline_background_work: true,
        fs: Arc::new(fs.clone()),
        ..Options::default()
    }
}

/// The entries of the one live table (the flush's).
fn table_entries(db: &Db) -> u64 {
    let files = db.live_files();
    assert_eq!(files.len(), 1, "one flushed table: {files:?}");
    assert_eq!(files[0].level, 0);
    files[0].num_entries
}

#[test]
fn a_flush_writes_a_hot_keys_newest_version_only() {
    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), options(&fs)).unwrap();
    for n in 0..1_000 {
        db.put(b"hot", format!("v{n}")).unwrap();
    }
    db.put(b"cold", b"c").unwrap();
    db.put(b"gone", b"g").unwrap();
    db.delete(b"gone").unwrap();
    db.flush().unwrap();
    // "hot" once, "cold", and "gone"'s tombstone (tables below could hold
    // it, so a flush keeps it; the put under it is dropped).
    assert_eq!(table_entries(&db), 3);
    assert_eq!(db.get(b"hot").unwrap().unwrap(), "v999");
    assert_eq!(db.get(b"cold").unwrap().unwrap(), "c");
    assert_eq!(db.get(b"gone").unwrap(), None);
}

#[test]
fn a_flush_keeps_the_version_each_snapshot_reads() {
    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), options(&fs)).unwrap();
    let mut snapshots = Vec::new();
    for n in 0..300 {
        db.put(b"hot", format!("v{n}")).unwrap();
        if n % 100 == 99 {
            snapshots.push((n, db.snapshot()));
        }
    }
    db.delete(b"hot").unwrap();
    let deleted = db.snapshot();
    db.put(b"hot", b"last").unwrap();
    db.flush().unwrap();
    // v99, v199, v299 (one per snapshot), the delete, "last".
    assert_eq!(table_entries(&db), 5);
    for (n, snapshot) in &snapshots {
        assert_eq!(snapshot.get(b"hot").unwrap().unwrap(), format!("v{n}"));
    }
    assert_eq!(deleted.get(b"hot").unwrap(), None);
    assert_eq!(db.get(b"hot").unwrap().unwrap(), "last");
}

#[test]
fn a_flush_keeps_operands_above_a_snapshot_and_the_version_under_them() {
    let fs = MemFileSystem::new();
    let options = Options {
        merge_operator: Some(Arc::new(FullOnlyAppend)),
        ..options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    db.put(b"k", b"old").unwrap();
    db.put(b"k", b"base").unwrap();
    let snapshot = db.snapshot();
    db.merge(b"k", b"+1").unwrap();
    db.merge(b"k", b"+2").unwrap();
    db.flush().unwrap();
    // Both operands (their stripe holds no base to merge onto) and the
    // put they apply to; "old" is hidden by "base" in the same stripe.
    assert_eq!(table_entries(&db), 3);
    assert_eq!(snapshot.get(b"k").unwrap().unwrap(), "base");
    assert_eq!(db.get(b"k").unwrap().unwrap(), "base,+1,+2");
}

#[test]
fn a_reopen_writes_the_recovered_newest_versions_only() {
    let fs = MemFileSystem::new();
    let dir = mem_dir();
    {
        let db = Db::open(&dir, options(&fs)).unwrap();
        for n in 0..500 {
            db.put(b"hot", format!("v{n}")).unwrap();
        }
        db.put_opt(
            b"cold",
            b"c",
            &WriteOptions {
                sync: true,
                ..WriteOptions::default()
            },
        )
        .unwrap();
        // A power loss: the open replays the synced WAL into a table.
        power_cycle(&fs, db, UnsyncedData::Drop);
    }
    let db = Db::open(&dir, options(&fs)).unwrap();
    let entries: u64 = db.live_files().iter().map(|f| f.num_entries).sum();
    assert_eq!(entries, 2);
    assert_eq!(db.get(b"hot").unwrap().unwrap(), "v499");
}

#[test]
fn an_expiring_version_hides_the_older_ones_after_it_expires() {
    let fs = MemFileSystem::new();
    let clock = Arc::new(ManualClock::new(1_780_000_000_000_000));
    let options = Options {
        clock: Arc::clone(&clock) as Arc<dyn strata::Clock>,
        ..options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    db.put(b"k", b"forever").unwrap();
    db.put_with_ttl(b"k", b"brief", Duration::from_secs(60))
        .unwrap();
    db.flush().unwrap();
    assert_eq!(table_entries(&db), 1);
    assert_eq!(db.get(b"k").unwrap().unwrap(), "brief");
    clock.advance(Duration::from_secs(61));
    assert_eq!(db.get(b"k").unwrap(), None, "the older put came back");
    assert_eq!(db.iter().count(), 0);
}

/// Every entry of `it`, in its order.
fn read(
    it: impl Iterator<Item = strata::Result<(bytes::Bytes, bytes::Bytes)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|e| {
        let (k, v) = e.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

#[test]
fn a_range_delete_between_a_snapshot_and_newer_puts_reads_as_before() {
    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), options(&fs)).unwrap();
    for k in [b"a", b"b", b"c"] {
        db.put(k, b"1").unwrap();
    }
    let before = db.snapshot();
    db.put(b"b", b"2").unwrap();
    db.delete_range(b"a".as_slice()..b"c".as_slice()).unwrap();
    db.put(b"a", b"3").unwrap();
    db.put(b"a", b"4").unwrap();
    let (now, then) = (read(db.iter()), read(before.iter()));
    let (now_rev, then_rev) = (read(db.iter().rev()), read(before.iter().rev()));
    db.flush().unwrap();
    // a@4, a@1 (the snapshot's), b@1, c@1; b@2 is under the tombstone in
    // its stripe, left out as compaction leaves it out.
    assert_eq!(table_entries(&db), 4);
    assert_eq!(read(db.iter()), now);
    assert_eq!(read(before.iter()), then);
    assert_eq!(read(db.iter().rev()), now_rev);
    assert_eq!(read(before.iter().rev()), then_rev);
    assert_eq!(now.len(), 2, "a and c: {now:?}");
    assert_eq!(then.len(), 3);
}

/// `UInt64Add` whose failing full merge keeps the operands
/// (`MergeFailureScope::MustMerge`).
struct MustMergeAdd;

impl MergeOperator for MustMergeAdd {
    fn name(&self) -> &str {
        "must-merge-add"
    }

    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        UInt64Add.full_merge(key, existing, operands)
    }

    fn failure_scope(&self) -> MergeFailureScope {
        MergeFailureScope::MustMerge
    }
}

#[test]
fn after_a_failed_merge_a_covered_operand_of_the_stripe_is_left_out_as_compaction_leaves_it() {
    let fs = MemFileSystem::new();
    let options = Options {
        merge_operator: Some(Arc::new(MustMergeAdd)),
        ..options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    db.put(b"k", 5u64.to_le_bytes()).unwrap();
    db.merge(b"k", 1u64.to_le_bytes()).unwrap();
    db.delete_range("k".."l").unwrap();
    db.merge(b"k", b"bad").unwrap();
    db.flush().unwrap();
    // The walk from "bad" stops at the operand the range delete covers and
    // its full merge fails, so "bad" stays an operand. The covered operand
    // and the put are left out, as a compaction leaves them (every reader
    // that sees them sees the range delete), not combined by a second walk.
    assert_eq!(table_entries(&db), 1);
    assert!(db.get(b"k").is_err(), "\"bad\" is no u64: reads fail");
}

#[test]
fn a_flush_leaves_out_the_versions_a_range_delete_of_their_stripe_covers() {
    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), options(&fs)).unwrap();
    db.put(b"a", b"1").unwrap();
    db.put(b"b", b"1").unwrap();
    let snapshot = db.snapshot();
    db.put(b"c", b"1").unwrap();
    db.delete_range("a".."d").unwrap();
    db.put(b"d", b"1").unwrap();
    db.flush().unwrap();
    // "a" and "b" stay for the snapshot; "c" is covered for every reader
    // that could see it; "d" is past the range.
    assert_eq!(table_entries(&db), 3);
    assert_eq!(snapshot.get(b"a").unwrap().unwrap(), "1");
    assert_eq!(snapshot.get(b"c").unwrap(), None);
    assert_eq!(db.get(b"a").unwrap(), None);
    assert_eq!(db.get(b"c").unwrap(), None);
    assert_eq!(db.get(b"d").unwrap().unwrap(), "1");
}
