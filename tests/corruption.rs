//! Damaged files give a clear error naming the file (and offset), or, where
//! the recovery mode allows, recovery of the undamaged prefix; never a
//! panic and never wrong data.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use strata::fs::{FileSystem, MemFileSystem};
use strata::{Db, Error, Options, WalRecoveryMode};

const N: usize = 400;

fn only(fs: &MemFileSystem, ext: &str) -> PathBuf {
    let files = files_with_ext(fs, &mem_dir(), ext);
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn assert_corruption_in(e: &Error, file: &Path) {
    match e {
        Error::Corruption { file: f, .. } => assert_eq!(f, file, "{e}"),
        other => panic!("expected corruption in {}, got {other}", file.display()),
    }
}

/// Read every key; each read returns the right value or a corruption error
/// naming `file`. Returns how many reads failed.
fn check_reads(db: &Db, file: &Path, keys: usize) -> usize {
    let mut failed = 0;
    for i in 0..keys {
        match db.get(key(i)) {
            Ok(v) => assert_eq!(
                v.map(|v| v.to_vec()),
                Some(value(i, 0)),
                "wrong data for key {i}"
            ),
            Err(e) => {
                assert_corruption_in(&e, file);
                failed += 1;
            }
        }
    }
    failed
}

#[test]
fn flipped_table_bytes_are_detected_on_open_or_read() {
    let base = MemFileSystem::new();
    table_and_wal(&base, N, 0);
    let table = only(&base, ".sst");
    let size = base.file_size(&table).unwrap() as usize;
    let mut detected = 0;
    for offset in (0..size).step_by(37) {
        let fs = MemFileSystem::new();
        table_and_wal(&fs, N, 0);
        let table = only(&fs, ".sst");
        fs.corrupt_byte(&table, offset, 0x5a).unwrap();
        match Db::open(mem_dir(), mem_options(&fs)) {
            Err(e) => {
                assert_corruption_in(&e, &table);
                detected += 1;
            }
            Ok(db) => {
                let failed = check_reads(&db, &table, N);
                let scan: Result<Vec<_>, _> = db.iter().collect();
                if failed > 0 || scan.is_err() {
                    detected += 1;
                }
                if let Err(e) = scan {
                    assert_corruption_in(&e, &table);
                }
            }
        }
    }
    assert!(detected > 0);
}

#[test]
fn paranoid_checks_refuse_a_damaged_table_at_open() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, 0);
    let table = only(&fs, ".sst");
    fs.corrupt_byte(&table, 10, 0x01).unwrap();
    let opts = Options {
        paranoid_checks: true,
        ..mem_options(&fs)
    };
    let err = Db::open(mem_dir(), opts).unwrap_err();
    assert_corruption_in(&err, &table);
}

#[test]
fn truncated_tables_fail_to_open() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, 0);
    let table = only(&fs, ".sst");
    let size = fs.file_size(&table).unwrap() as usize;
    fs.truncate(&table, size - 1).unwrap();
    let err = Db::open(mem_dir(), mem_options(&fs)).unwrap_err();
    assert_corruption_in(&err, &table);
}

#[test]
fn a_missing_table_fails_to_open() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, 0);
    let table = only(&fs, ".sst");
    fs.remove(&table).unwrap();
    let err = Db::open(mem_dir(), mem_options(&fs)).unwrap_err();
    assert_corruption_in(&err, &table);
}

#[test]
fn a_damaged_manifest_fails_to_open() {
    // The manifest after a clean open holds a snapshot edit and the open's
    // edit; damage in the first record has valid data after it.
    // Header (checksum, length, type) and the start of the payload.
    for offset in 0..7 + 10 {
        let fs = MemFileSystem::new();
        table_and_wal(&fs, N, 0);
        let manifest = manifest_path(&fs);
        fs.corrupt_byte(&manifest, offset, 0x10).unwrap();
        let err = Db::open(mem_dir(), mem_options(&fs)).unwrap_err();
        assert_corruption_in(&err, &manifest);
    }
}

#[test]
fn a_garbled_current_file_fails_to_open() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, 0);
    let current = mem_dir().join("CURRENT");
    fs.write_durable(&current, b"not a manifest name");
    let err = Db::open(mem_dir(), mem_options(&fs)).unwrap_err();
    assert_corruption_in(&err, &current);
}

fn wal_damage(mode: WalRecoveryMode) -> (MemFileSystem, PathBuf, Result<Db, Error>) {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, N);
    let wal = only(&fs, ".log");
    // Damage a record in the middle of the log: valid records follow.
    let size = fs.file_size(&wal).unwrap() as usize;
    fs.corrupt_byte(&wal, size / 2, 0xff).unwrap();
    let opts = Options {
        wal_recovery_mode: mode,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), opts);
    (fs, wal, db)
}

#[test]
fn wal_corruption_in_the_middle_is_an_error_by_default() {
    for mode in [
        WalRecoveryMode::TolerateCorruptedTailRecords,
        WalRecoveryMode::AbsoluteConsistency,
    ] {
        let (_fs, wal, db) = wal_damage(mode);
        let err = db.unwrap_err();
        assert_corruption_in(&err, &wal);
    }
}

#[test]
fn point_in_time_recovery_keeps_the_prefix_before_wal_damage() {
    let (_fs, _wal, db) = wal_damage(WalRecoveryMode::PointInTimeRecovery);
    let db = db.unwrap();
    let present: Vec<bool> = (N..2 * N)
        .map(|i| db.get(key(i)).unwrap().is_some())
        .collect();
    let kept = present.iter().take_while(|p| **p).count();
    assert!(kept > 0 && kept < N, "kept {kept}");
    assert!(
        present[kept..].iter().all(|p| !p),
        "a hole: later writes survived"
    );
    for i in 0..N {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i, 0));
    }
}

#[test]
fn skip_mode_salvages_records_after_wal_damage() {
    let (_fs, _wal, db) = wal_damage(WalRecoveryMode::SkipAnyCorruptedRecords);
    let db = db.unwrap();
    let present = (N..2 * N)
        .filter(|&i| db.get(key(i)).unwrap().is_some())
        .count();
    assert!(present > N / 2 && present < N, "salvaged {present}");
    assert_eq!(
        db.get(key(2 * N - 1)).unwrap().unwrap(),
        value(2 * N - 1, 0)
    );
}

#[test]
fn a_truncated_wal_recovers_its_prefix() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, N);
    let wal = only(&fs, ".log");
    let size = fs.file_size(&wal).unwrap() as usize;
    fs.truncate(&wal, size * 2 / 3).unwrap();
    let db = open_mem(&fs);
    let kept = (N..2 * N)
        .take_while(|&i| db.get(key(i)).unwrap().is_some())
        .count();
    assert!(kept > 0 && kept < N);
    assert!((N + kept..2 * N).all(|i| db.get(key(i)).unwrap().is_none()));
}

fn push_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A logged batch whose value is over `MAX_VALUE_SIZE` can only be damage
/// (`WriteBatch` refuses one, and the memtable relies on the limit):
/// replay reports it, naming the WAL, instead of inserting it.
#[test]
fn a_logged_value_over_the_size_limit_is_corruption() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, N);
    let wal = only(&fs, ".log");
    let mut batch = Vec::new();
    batch.extend_from_slice(&(1u64 << 40).to_le_bytes()); // sequence
    batch.extend_from_slice(&1u32.to_le_bytes()); // count
    batch.push(1); // put
    push_varint(&mut batch, 3);
    batch.extend_from_slice(b"big");
    push_varint(&mut batch, strata::MAX_VALUE_SIZE + 1);
    batch.resize(batch.len() + strata::MAX_VALUE_SIZE + 1, b'v');
    let mut framed = Vec::new();
    strata_wal::encode_record(&mut framed, 0, &batch);
    let mut file = fs.create(&wal).unwrap();
    file.append(&framed).unwrap();
    file.sync().unwrap();
    drop(file);
    let e = Db::open(mem_dir(), mem_options(&fs)).unwrap_err();
    assert_corruption_in(&e, &wal);
    assert!(e.to_string().contains("exceeds the limits"), "{e}");
}
