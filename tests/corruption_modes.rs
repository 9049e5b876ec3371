//! LevelDB-style corruption tests, swept over whole files: bytes flipped or
//! files cut in a WAL, a table, the MANIFEST and CURRENT, and the outcome
//! each recovery mode documents (`docs/testing.md` has the table):
//!
//! | damage            | outcome                                                        |
//! |-------------------|----------------------------------------------------------------|
//! | WAL byte flipped  | Tolerate/Absolute: `Corruption` naming the WAL and an offset at or before the damage, or (damage in the last record: a torn tail) the prefix before it; PointInTime: the prefix; Skip: every undamaged record |
//! | WAL cut           | the prefix before the cut (Absolute: `Corruption`, or everything when cut at a record boundary) |
//! | table byte flipped| with `paranoid_checks`: open fails with `Corruption` naming the table |
//! | MANIFEST flipped  | open fails with `Corruption` naming the manifest, or opens with everything; except damage to the last record's length, which is a torn tail: that edit is dropped |
//! | CURRENT damaged   | open fails with `Corruption` naming CURRENT or the manifest it names |
//!
//! In every case: never a panic, never a wrong value.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata::fs::{FileSystem, MemFileSystem};
use strata::{Db, Error, Options, WalRecoveryMode};

const N: usize = 300;

const MODES: [WalRecoveryMode; 4] = [
    WalRecoveryMode::TolerateCorruptedTailRecords,
    WalRecoveryMode::AbsoluteConsistency,
    WalRecoveryMode::PointInTimeRecovery,
    WalRecoveryMode::SkipAnyCorruptedRecords,
];

/// N keys flushed to a table, then N more only in the WAL; closed cleanly.
fn build() -> MemFileSystem {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, N, N);
    fs
}

fn file_ending(fs: &MemFileSystem, suffix: &str) -> PathBuf {
    let files = files_with_ext(fs, &mem_dir(), suffix);
    assert_eq!(files.len(), 1, "{suffix}: {files:?}");
    files[0].clone()
}

fn open_with(fs: &MemFileSystem, mode: WalRecoveryMode, paranoid: bool) -> Result<Db, Error> {
    Db::open(
        mem_dir(),
        Options {
            wal_recovery_mode: mode,
            paranoid_checks: paranoid,
            ..mem_options(fs)
        },
    )
}

/// Which of the 2N keys are present; panics on a wrong value.
fn present(db: &Db) -> Vec<bool> {
    (0..2 * N)
        .map(|i| match db.get(key(i)).unwrap() {
            Some(v) => {
                assert_eq!(v.to_vec(), value(i, 0), "wrong value for key {i}");
                true
            }
            None => false,
        })
        .collect()
}

/// Every table key present and the WAL keys a prefix; returns its length.
fn assert_prefix(p: &[bool], what: &str) -> usize {
    assert!(
        p[..N].iter().all(|&x| x),
        "{what}: a flushed key is missing"
    );
    let kept = p[N..].iter().take_while(|&&x| x).count();
    assert!(
        p[N + kept..].iter().all(|&x| !x),
        "{what}: a hole: a later write survived an earlier lost one"
    );
    kept
}

fn assert_corruption_in(e: &Error, file: &Path, at_or_before: Option<u64>, what: &str) {
    match e {
        Error::Corruption {
            file: f, offset, ..
        } => {
            assert_eq!(f, file, "{what}: {e}");
            if let Some(limit) = at_or_before {
                assert!(
                    *offset <= limit,
                    "{what}: {e} names an offset past the damage"
                );
            }
        }
        other => panic!(
            "{what}: expected corruption in {}, got {other}",
            file.display()
        ),
    }
}

/// Outcome counts per mode, printed as the table the docs summarise.
type Tally = BTreeMap<String, BTreeMap<&'static str, usize>>;

fn count(t: &mut Tally, mode: WalRecoveryMode, outcome: &'static str) {
    *t.entry(format!("{mode:?}"))
        .or_default()
        .entry(outcome)
        .or_default() += 1;
}

#[test]
fn wal_flips_give_each_modes_documented_outcome() {
    let size = {
        let fs = build();
        fs.file_size(&file_ending(&fs, ".log")).unwrap() as usize
    };
    let mut tally = Tally::new();
    for offset in (0..size).step_by(size / 50 + 1).chain([size - 1]) {
        for mode in MODES {
            let fs = build();
            let wal = file_ending(&fs, ".log");
            fs.corrupt_byte(&wal, offset, 0x20).unwrap();
            let what = format!("{mode:?}, byte {offset} of {size} flipped");
            match open_with(&fs, mode, false) {
                Err(e) => {
                    assert!(
                        matches!(
                            mode,
                            WalRecoveryMode::TolerateCorruptedTailRecords
                                | WalRecoveryMode::AbsoluteConsistency
                        ),
                        "{what}: {mode:?} must not fail: {e}"
                    );
                    assert_corruption_in(&e, &wal, Some(offset as u64), &what);
                    count(&mut tally, mode, "corruption error");
                }
                Ok(db) => {
                    let p = present(&db);
                    if mode == WalRecoveryMode::SkipAnyCorruptedRecords {
                        assert!(
                            p[..N].iter().all(|&x| x),
                            "{what}: a flushed key is missing"
                        );
                        let lost = p.iter().filter(|&&x| !x).count();
                        count(
                            &mut tally,
                            mode,
                            if lost == 0 { "everything" } else { "salvaged" },
                        );
                        continue;
                    }
                    let kept = assert_prefix(&p, &what);
                    if mode == WalRecoveryMode::AbsoluteConsistency {
                        assert_eq!(kept, N, "{what}: absolute consistency dropped writes");
                    }
                    if mode == WalRecoveryMode::TolerateCorruptedTailRecords && kept < N {
                        // Only a damaged last record is a torn tail.
                        assert!(kept >= N - 1, "{what}: tolerated damage before the tail");
                    }
                    count(
                        &mut tally,
                        mode,
                        if kept == N { "everything" } else { "prefix" },
                    );
                }
            }
        }
    }
    println!("WAL byte flips: {tally:#?}");
    let pitr = &tally["PointInTimeRecovery"];
    assert!(pitr.get("prefix").copied().unwrap_or(0) > 10, "{tally:?}");
}

#[test]
fn wal_cuts_keep_a_prefix_in_every_mode() {
    let size = {
        let fs = build();
        fs.file_size(&file_ending(&fs, ".log")).unwrap() as usize
    };
    let mut tally = Tally::new();
    for len in (0..size).step_by(size / 40 + 1) {
        for mode in MODES {
            let fs = build();
            let wal = file_ending(&fs, ".log");
            fs.truncate(&wal, len).unwrap();
            let what = format!("{mode:?}, WAL cut to {len} of {size}");
            match open_with(&fs, mode, false) {
                Err(e) => {
                    assert_eq!(mode, WalRecoveryMode::AbsoluteConsistency, "{what}: {e}");
                    assert_corruption_in(&e, &wal, Some(len as u64), &what);
                    count(&mut tally, mode, "corruption error");
                }
                Ok(db) => {
                    let kept = assert_prefix(&present(&db), &what);
                    count(
                        &mut tally,
                        mode,
                        if kept == N { "everything" } else { "prefix" },
                    );
                }
            }
        }
    }
    println!("WAL cuts: {tally:#?}");
}

#[test]
fn every_flipped_table_byte_is_refused_by_paranoid_checks() {
    let size = {
        let fs = build();
        fs.file_size(&file_ending(&fs, ".sst")).unwrap() as usize
    };
    for offset in (0..size).step_by(size / 120 + 1).chain(size - 60..size) {
        let fs = build();
        let table = file_ending(&fs, ".sst");
        fs.corrupt_byte(&table, offset, 0x04).unwrap();
        let what = format!("table byte {offset} of {size} flipped");
        match open_with(&fs, WalRecoveryMode::default(), true) {
            Err(e) => assert_corruption_in(&e, &table, None, &what),
            Ok(_) => panic!("{what}: paranoid_checks opened a damaged table"),
        }
    }
}

#[test]
fn table_damage_without_paranoid_checks_never_gives_wrong_data() {
    let size = {
        let fs = build();
        fs.file_size(&file_ending(&fs, ".sst")).unwrap() as usize
    };
    for offset in (0..size).step_by(size / 60 + 1) {
        let fs = build();
        let table = file_ending(&fs, ".sst");
        fs.corrupt_byte(&table, offset, 0x80).unwrap();
        let what = format!("table byte {offset} of {size} flipped");
        let db = match open_with(&fs, WalRecoveryMode::default(), false) {
            Err(e) => {
                assert_corruption_in(&e, &table, None, &what);
                continue;
            }
            Ok(db) => db,
        };
        for i in 0..2 * N {
            match db.get(key(i)) {
                Ok(Some(v)) => assert_eq!(v.to_vec(), value(i, 0), "{what}: key {i}"),
                Ok(None) => panic!("{what}: key {i} silently missing"),
                Err(e) => assert_corruption_in(&e, &table, None, &what),
            }
        }
        for item in db.iter().rev() {
            match item {
                Ok((k, v)) => {
                    let i: usize = std::str::from_utf8(&k[3..]).unwrap().parse().unwrap();
                    assert_eq!(v.to_vec(), value(i, 0), "{what}: scan");
                }
                Err(e) => {
                    assert_corruption_in(&e, &table, None, &what);
                    break;
                }
            }
        }
    }
}

#[test]
fn every_flipped_manifest_byte_fails_the_open_or_loses_nothing() {
    let size = {
        let fs = build();
        fs.file_size(&manifest_path(&fs)).unwrap() as usize
    };
    // The last record's length field: damage there makes the record run
    // past the end of the file, which is exactly what a torn write looks
    // like, so the edit is dropped (LevelDB and RocksDB behave the same).
    let last_length_field = {
        let fs = build();
        let path = manifest_path(&fs);
        let data = fs.read(&path).unwrap();
        let (last, _) = *strata::inspect::read_manifest(&path, &data)
            .unwrap()
            .edits
            .last()
            .unwrap();
        last as usize + 4..last as usize + 6
    };
    let mut failed = 0;
    for offset in 0..size {
        let fs = build();
        let path = manifest_path(&fs);
        fs.corrupt_byte(&path, offset, 0x41).unwrap();
        let what = format!("manifest byte {offset} of {size} flipped");
        match open_with(&fs, WalRecoveryMode::default(), false) {
            Err(e) => {
                assert_corruption_in(&e, &path, Some(offset as u64), &what);
                failed += 1;
            }
            Ok(db) => {
                let p = present(&db);
                if !last_length_field.contains(&offset) {
                    assert!(p.iter().all(|&x| x), "{what}: opened but lost writes");
                }
            }
        }
    }
    assert!(failed > size / 2, "only {failed} of {size} flips detected");
}

#[test]
fn a_cut_manifest_never_gives_wrong_values() {
    let size = {
        let fs = build();
        fs.file_size(&manifest_path(&fs)).unwrap() as usize
    };
    for len in 0..size {
        let fs = build();
        let path = manifest_path(&fs);
        fs.truncate(&path, len).unwrap();
        let what = format!("manifest cut to {len} of {size}");
        match open_with(&fs, WalRecoveryMode::default(), false) {
            Err(e) => assert_corruption_in(&e, &path, None, &what),
            Ok(db) => {
                present(&db);
            }
        }
    }
}

#[test]
fn damaged_current_fails_with_an_error_naming_it() {
    let base = build();
    let current = mem_dir().join("CURRENT");
    let contents = base.read(&current).unwrap();
    for len in 0..contents.len() {
        let fs = build();
        fs.truncate(&current, len).unwrap();
        let e = open_with(&fs, WalRecoveryMode::default(), false).unwrap_err();
        assert_corruption_in(&e, &current, None, &format!("CURRENT cut to {len}"));
    }
    for offset in 0..contents.len() {
        let fs = build();
        fs.corrupt_byte(&current, offset, 0x01).unwrap();
        let what = format!("CURRENT byte {offset} flipped");
        match open_with(&fs, WalRecoveryMode::default(), false) {
            Err(Error::Corruption { file, .. }) => {
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    name == "CURRENT" || name.starts_with("MANIFEST-"),
                    "{what}: names {}",
                    file.display()
                );
            }
            Err(e) => panic!("{what}: {e}"),
            Ok(db) => {
                // Only if the flip still names the live manifest (impossible
                // for a one-bit change of a digit, but cheap to allow).
                assert!(present(&db).iter().all(|&x| x), "{what}");
            }
        }
    }
}
