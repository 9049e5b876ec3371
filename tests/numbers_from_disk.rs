//! Numbers read from disk (file names, MANIFEST counters, WAL batch
//! sequence numbers) are checked before they are used: a number out of
//! range makes open fail with `Corruption` naming the file, never a
//! panic (these tests run with overflow checks on) and never a wrapped
//! counter (and in release, without them).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use strata::fs::{FileSystem, MemFileSystem};
use strata::inspect::{VersionEdit, MAX_FILE_NUMBER};
use strata::{Db, Error, Options, WalRecoveryMode};
use strata_sstable::MAX_SEQNO;

const N: usize = 200;

/// The same with every key flushed: the WAL holds nothing to replay.
fn build_flushed(fs: &MemFileSystem) {
    table_and_wal(fs, N, N);
    open_mem(fs).flush().unwrap();
}

fn expect_corruption_in(result: Result<Db, Error>, file: &Path) -> (u64, String) {
    match result {
        Err(Error::Corruption {
            file: f,
            offset,
            reason,
        }) => {
            assert_eq!(f, file, "{reason}");
            (offset, reason)
        }
        Err(other) => panic!("expected corruption in {}, got {other}", file.display()),
        Ok(_) => panic!("opened despite {}", file.display()),
    }
}

fn all_there(db: &Db) {
    for i in 0..2 * N {
        assert_eq!(db.get(key(i)).unwrap(), Some(value(i, 0).into()), "key {i}");
    }
}

/// A stray file whose number would push the file counter to (or past)
/// `u64::MAX` is refused by name. Before the check, `18446744073709551614`
/// became the next file number and the counter wrapped two files later
/// (a panic with overflow checks, in release new files numbered from 0
/// that overwrite live ones).
#[test]
fn a_stray_file_with_a_huge_number_is_refused_by_name() {
    let names = [
        "18446744073709551614.log".to_owned(),
        "18446744073709551614.sst".to_owned(),
        "18446744073709551615.sst".to_owned(),
        format!("{}.log", MAX_FILE_NUMBER + 1),
        "MANIFEST-18446744073709551614".to_owned(),
        "18446744073709551614.dbtmp".to_owned(),
        "99999999999999999999999.log".to_owned(),
    ];
    for name in names {
        let fs = MemFileSystem::new();
        table_and_wal(&fs, N, N);
        let stray = mem_dir().join(&name);
        fs.write_durable(&stray, b"");
        expect_corruption_in(Db::open(mem_dir(), mem_options(&fs)), &stray);
        // Refused, not removed: moved away, the database opens whole.
        assert!(fs.exists(&stray), "{name} was deleted");
        fs.remove(&stray).unwrap();
        all_there(&open_mem(&fs));
    }
}

/// The live manifest's path and bytes.
fn manifest_of(fs: &MemFileSystem) -> (PathBuf, Vec<u8>) {
    let path = manifest_path(fs);
    let data = fs.read(&path).unwrap().to_vec();
    (path, data)
}

/// Append `edit` to the live manifest as one more record, framed by the
/// log writer's own encoder; returns the manifest and the record's offset.
fn append_edit(fs: &MemFileSystem, edit: &VersionEdit) -> (PathBuf, u64) {
    let (path, mut data) = manifest_of(fs);
    let mut payload = Vec::new();
    edit.encode(&mut payload);
    let offset = data.len() as u64;
    strata_wal::encode_record(&mut data, offset, &payload);
    fs.write_durable(&path, &data);
    (path, offset)
}

#[test]
fn manifest_counters_out_of_range_are_corruption_at_their_record() {
    let edits = [
        VersionEdit {
            next_file_number: Some(u64::MAX - 1),
            ..VersionEdit::default()
        },
        VersionEdit {
            next_file_number: Some(MAX_FILE_NUMBER + 2),
            ..VersionEdit::default()
        },
        VersionEdit {
            // Would hide every WAL from replay and retire new ones unread.
            log_number: Some(u64::MAX - 1),
            ..VersionEdit::default()
        },
        VersionEdit {
            last_sequence: Some(u64::MAX - 1),
            ..VersionEdit::default()
        },
        VersionEdit {
            last_sequence: Some(MAX_SEQNO + 1),
            ..VersionEdit::default()
        },
    ];
    for edit in edits {
        let fs = MemFileSystem::new();
        table_and_wal(&fs, N, N);
        let (manifest, offset) = append_edit(&fs, &edit);
        let (at, reason) = expect_corruption_in(Db::open(mem_dir(), mem_options(&fs)), &manifest);
        assert_eq!(at, offset, "{edit:?}: {reason}");
    }
}

/// The largest values in range are accepted: the bounds are not off by one.
#[test]
fn manifest_counters_at_the_limits_open() {
    let fs = MemFileSystem::new();
    build_flushed(&fs);
    append_edit(
        &fs,
        &VersionEdit {
            next_file_number: Some(MAX_FILE_NUMBER - 100),
            last_sequence: Some(MAX_SEQNO - 100),
            ..VersionEdit::default()
        },
    );
    let db = open_mem(&fs);
    all_there(&db);
    // The counters continue from there: a write takes the next sequence
    // number, the files the next numbers.
    db.put(b"after", b"limit").unwrap();
    db.flush().unwrap();
    let seqs: Vec<u64> = db.live_files().iter().map(|f| f.largest_seqno).collect();
    assert_eq!(seqs.iter().max(), Some(&(MAX_SEQNO - 99)), "{seqs:?}");
    assert!(db
        .live_files()
        .iter()
        .any(|f| f.number > MAX_FILE_NUMBER - 100));
}

/// A write that would take a sequence number past 56 bits is refused; it
/// is not stored under a truncated one.
#[test]
fn writes_past_the_last_sequence_number_are_refused() {
    let fs = MemFileSystem::new();
    build_flushed(&fs);
    append_edit(
        &fs,
        &VersionEdit {
            last_sequence: Some(MAX_SEQNO - 1),
            ..VersionEdit::default()
        },
    );
    let db = open_mem(&fs);
    db.put(b"last", b"fits").unwrap();
    let err = db.put(b"one", b"too many").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert_eq!(db.get(b"last").unwrap().as_deref(), Some(&b"fits"[..]));
    assert_eq!(db.get(b"one").unwrap(), None);
}

#[test]
fn a_table_newer_than_the_last_sequence_is_corruption() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, N);
    let db = open_mem(&fs);
    let table = db.live_files()[0].clone();
    drop(db);
    // Re-add the live table with a sequence range past the manifest's
    // last sequence: writes after the open would hide behind it.
    let meta = strata::inspect::FileMeta {
        number: table.number,
        size: table.size,
        smallest: table.smallest.clone(),
        largest: table.largest.clone(),
        largest_bound: table.largest_bound,
        smallest_seqno: table.smallest_seqno,
        largest_seqno: 1 << 40,
        blob_files: Vec::new(),
        blob_refs: Vec::new(),
    };
    let (manifest, _) = append_edit(
        &fs,
        &VersionEdit {
            deleted_files: vec![(table.level, table.number)],
            new_files: vec![(table.level, meta)],
            ..VersionEdit::default()
        },
    );
    let (_, reason) = expect_corruption_in(Db::open(mem_dir(), mem_options(&fs)), &manifest);
    assert!(reason.contains("past the last sequence"), "{reason}");
}

/// One logged write batch: header (first sequence, count), then puts.
fn batch(first: u64, count: u32, puts: &[(&[u8], &[u8])]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: usize) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&first.to_le_bytes());
    b.extend_from_slice(&count.to_le_bytes());
    for (k, v) in puts {
        b.push(1);
        varint(&mut b, k.len());
        b.extend_from_slice(k);
        varint(&mut b, v.len());
        b.extend_from_slice(v);
    }
    b
}

/// Replace the database's WAL with these batches (one record each);
/// returns the WAL and each record's offset.
fn plant_wal(fs: &MemFileSystem, batches: &[Vec<u8>]) -> (PathBuf, Vec<u64>) {
    let wals = files_with_ext(fs, &mem_dir(), ".log");
    let wal = wals.last().expect("a WAL").clone();
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for b in batches {
        offsets.push(data.len() as u64);
        let offset = data.len() as u64;
        strata_wal::encode_record(&mut data, offset, b);
    }
    fs.write_durable(&wal, &data);
    (wal, offsets)
}

/// The manifest's last sequence after `build` (what its table holds).
fn flushed_last_sequence(fs: &MemFileSystem) -> u64 {
    let (path, data) = manifest_of(fs);
    strata::inspect::read_manifest(&path, &data)
        .unwrap()
        .last_sequence
}

fn three_puts() -> [(&'static [u8], &'static [u8]); 3] {
    [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
}

#[test]
fn wal_batches_past_56_bits_are_corruption_at_their_record() {
    let cases = [
        // Its last record would be 2^56: one past what a key holds.
        batch(MAX_SEQNO, 2, &three_puts()[..2]),
        batch(MAX_SEQNO + 1, 1, &three_puts()[..1]),
        // first + count overflows u64.
        batch(u64::MAX - 1, 3, &three_puts()),
    ];
    for bad in cases {
        let fs = MemFileSystem::new();
        table_and_wal(&fs, N, N);
        let good = flushed_last_sequence(&fs) + 1;
        let (wal, offsets) = plant_wal(&fs, &[batch(good, 1, &[(b"k", b"v")]), bad]);
        let (at, reason) = expect_corruption_in(Db::open(mem_dir(), mem_options(&fs)), &wal);
        assert_eq!(at, offsets[1], "{reason}");
    }
}

#[test]
fn wal_sequence_numbers_must_increase_from_record_to_record() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, N);
    let s = flushed_last_sequence(&fs);
    let cases = [
        // The second batch reuses the first's last sequence number.
        vec![
            batch(s + 1, 3, &three_puts()),
            batch(s + 3, 1, &[(b"d", b"4")]),
        ],
        // The second goes back before the first.
        vec![
            batch(s + 10, 1, &[(b"a", b"1")]),
            batch(s + 5, 1, &[(b"b", b"2")]),
        ],
        // The first is at or below what the flushed tables already hold.
        vec![batch(s, 1, &[(b"a", b"1")])],
        vec![batch(0, 1, &[(b"a", b"1")])],
    ];
    for batches in cases {
        let fs = MemFileSystem::new();
        table_and_wal(&fs, N, N);
        let (wal, offsets) = plant_wal(&fs, &batches);
        let (at, reason) = expect_corruption_in(Db::open(mem_dir(), mem_options(&fs)), &wal);
        assert_eq!(at, *offsets.last().unwrap(), "{reason}");
        // Sequence number 0 marks a log start record (src/wal_record.rs),
        // so a batch claiming it is refused as a malformed one.
        assert!(
            reason.contains("does not follow") || reason.contains("is not a log start"),
            "{reason}"
        );
    }
}

/// Gaps are fine (writes with `disable_wal` take sequence numbers and are
/// not logged); the recovered counter continues after the last record.
#[test]
fn wal_sequence_gaps_replay_and_the_counter_continues_after_them() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, N);
    let s = flushed_last_sequence(&fs);
    plant_wal(
        &fs,
        &[
            batch(s + 1, 1, &[(b"a", b"1")]),
            batch(s + 1000, 2, &[(b"b", b"2"), (b"c", b"3")]),
        ],
    );
    let db = open_mem(&fs);
    assert_eq!(db.get(b"c").unwrap().as_deref(), Some(&b"3"[..]));
    db.put(b"d", b"4").unwrap();
    db.flush().unwrap();
    let newest = db.live_files().iter().map(|f| f.largest_seqno).max();
    assert_eq!(newest, Some(s + 1002));
}

/// Point-in-time recovery treats a record out of sequence like any other
/// damaged record: the log ends before it, and the writes before it stay.
#[test]
fn point_in_time_recovery_stops_before_a_record_out_of_sequence() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, N);
    let s = flushed_last_sequence(&fs);
    plant_wal(
        &fs,
        &[
            batch(s + 1, 1, &[(b"a", b"1")]),
            batch(s + 1, 1, &[(b"b", b"2")]),
            batch(s + 2, 1, &[(b"c", b"3")]),
        ],
    );
    let opts = Options {
        wal_recovery_mode: WalRecoveryMode::PointInTimeRecovery,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"b").unwrap(), None);
    assert_eq!(db.get(b"c").unwrap(), None);
}

/// A database with tables below the last level `num_levels` allows is
/// refused: compaction would drop tombstones that hide their entries.
#[test]
fn opening_with_fewer_levels_than_the_tables_use_is_refused() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, N);
    let db = open_mem(&fs);
    db.compact_range::<&[u8], _>(..).unwrap();
    let deepest = db.live_files().iter().map(|f| f.level).max().unwrap();
    drop(db);
    assert!(deepest >= 2, "L{deepest}");
    let opts = Options {
        num_levels: deepest,
        ..mem_options(&fs)
    };
    let err = Db::open(mem_dir(), opts).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let opts = Options {
        num_levels: deepest + 1,
        ..mem_options(&fs)
    };
    all_there(&Db::open(mem_dir(), opts).unwrap());
}
