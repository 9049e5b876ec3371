//! An open database holding little takes little disk: its WALs (the one
//! in use and the spare made ahead of the next rotation) start small and
//! grow in steps as records are appended (`src/fs/mapped_log.rs`,
//! `src/write/spare.rs`). A WAL grown across several steps replays every
//! record, and a power loss over a growth keeps every synced write.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{files_with_ext, key, mem_dir, power_cycle, scan_all};
use std::path::Path;
use std::sync::Arc;
use strata::fs::{FileSystem, MemFileSystem, UnsyncedData};
use strata::{Db, Options, WriteOptions};

/// The goal: an open database with little data takes less than this
/// beyond its data (issue 24, item 5).
const FOOTPRINT_BOUND: u64 = 2 << 20;

/// The default options (a 64 MiB memtable, the mapped WAL the memory
/// filesystem stands in for ext4 with) on `fs`.
fn default_options(fs: &MemFileSystem) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        ..Options::default()
    }
}

/// Every file in `dir` and its size, for failure messages.
fn listing(fs: &dyn FileSystem, dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .map(|n| {
            let size = fs.file_size(&dir.join(&n)).unwrap();
            (n, size)
        })
        .collect();
    files.sort();
    files
}

fn table_bytes(fs: &dyn FileSystem, dir: &Path) -> u64 {
    files_with_ext(fs, dir, "sst")
        .iter()
        .map(|p| fs.file_size(p).unwrap())
        .sum()
}

#[test]
fn an_open_database_holding_one_key_takes_under_two_mib() {
    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), default_options(&fs)).unwrap();
    db.put(b"tenant", b"one key").unwrap();
    // The spare WAL may or may not be made yet: the bound holds either way.
    let used = fs.used_bytes();
    assert!(
        used < FOOTPRINT_BOUND,
        "{used} bytes after one put: {:?}",
        listing(&fs, &mem_dir())
    );
    // A flush rotates onto a new WAL, and the flush thread makes a spare
    // for the next rotation: the bound holds with both. (Whether a spare
    // is there now is a race: a rotation that comes while the first spare
    // is being made makes its own WAL, numbered after the spare, and the
    // flush deletes the spare's file as obsolete.)
    db.flush().unwrap();
    let beyond_data = fs.used_bytes() - table_bytes(&fs, &mem_dir());
    assert!(
        beyond_data < FOOTPRINT_BOUND,
        "{beyond_data} bytes beyond the data after a flush: {:?}",
        listing(&fs, &mem_dir())
    );
    assert_eq!(db.get(b"tenant").unwrap().as_deref(), Some(&b"one key"[..]));
}

#[cfg(unix)]
#[test]
fn on_the_os_filesystem_the_blocks_and_sizes_of_a_one_key_database_stay_under_two_mib() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"tenant", b"one key").unwrap();
    db.flush().unwrap();
    // What `du` counts (allocated blocks, preallocation included) and
    // what `du --apparent-size` counts.
    let (mut allocated, mut apparent) = (0, 0);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        allocated += meta.blocks() * 512;
        apparent += meta.len();
        files.push((entry.file_name(), meta.len(), meta.blocks() * 512));
    }
    assert!(
        allocated < FOOTPRINT_BOUND && apparent < FOOTPRINT_BOUND,
        "{allocated} bytes allocated, {apparent} apparent: {files:?}"
    );
    drop(db);
}

/// About 1 KiB a value, so a few thousand writes cross several growth
/// steps of a WAL that starts at 256 KiB.
fn big_value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(1000, b'a' + (i % 26) as u8);
    v
}

/// The size of the only WAL in `dir`.
fn wal_size(fs: &MemFileSystem) -> u64 {
    let wals = files_with_ext(fs, &mem_dir(), "log");
    assert_eq!(wals.len(), 1, "one WAL, no rotation: {wals:?}");
    fs.file_size(&wals[0]).unwrap()
}

#[test]
fn a_wal_grown_across_several_steps_replays_every_record() {
    let fs = MemFileSystem::new();
    // No background threads: no spare, so the WAL in use is the only one.
    let options = Options {
        inline_background_work: true,
        ..default_options(&fs)
    };
    let db = Db::open(mem_dir(), options.clone()).unwrap();
    let first_size = wal_size(&fs);
    let n = 3000; // ~3 MiB: 256 KiB doubled four times, and more
    for i in 0..n {
        db.put(key(i), big_value(i)).unwrap();
    }
    let grown_size = wal_size(&fs);
    assert!(
        grown_size >= 8 * first_size,
        "the WAL did not grow through several steps: {first_size} then {grown_size}"
    );
    db.flush_wal(true).unwrap();
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = Db::open(mem_dir(), options).unwrap();
    let got = scan_all(&db);
    assert_eq!(got.len(), n, "records lost from a grown WAL");
    for (i, (k, v)) in got.iter().enumerate() {
        assert!(*k == key(i) && *v == big_value(i), "record {i} differs");
    }
}

#[test]
fn a_power_loss_over_a_growth_keeps_every_synced_write_and_leaves_no_hole() {
    let sync = WriteOptions {
        sync: true,
        ..Default::default()
    };
    let mut lost_unsynced = false;
    for seed in 0..12 {
        let fs = MemFileSystem::new();
        let options = Options {
            inline_background_work: true,
            ..default_options(&fs)
        };
        let db = Db::open(mem_dir(), options.clone()).unwrap();
        let first_size = wal_size(&fs);
        // Every 7th write of the first half synced; the second half, as
        // large, crosses a growth no sync covers (the WAL at most doubled
        // past what the first half needed).
        let n = 3000 + 100 * seed as usize;
        let mut synced = 0;
        let mut size_at_last_sync = 0;
        for i in 0..n {
            if i % 7 == 0 && i < n / 2 {
                db.put_opt(key(i), big_value(i), &sync).unwrap();
                synced = i + 1;
                size_at_last_sync = wal_size(&fs);
            } else {
                db.put(key(i), big_value(i)).unwrap();
            }
        }
        assert!(
            size_at_last_sync >= 4 * first_size && wal_size(&fs) > size_at_last_sync,
            "seed {seed}: no growth before and after the last sync"
        );
        power_cycle(&fs, db, UnsyncedData::KeepRandomPages(seed));
        let db = Db::open(mem_dir(), options).unwrap();
        let got = scan_all(&db);
        assert!(
            got.len() >= synced,
            "seed {seed}: {} writes recovered, {synced} were synced",
            got.len()
        );
        // A prefix: write `i` is key `i`, in order, with its value.
        for (i, (k, v)) in got.iter().enumerate() {
            assert!(
                *k == key(i) && *v == big_value(i),
                "seed {seed}: not a prefix of the writes at {i}"
            );
        }
        lost_unsynced |= got.len() < n;
    }
    assert!(
        lost_unsynced,
        "no seed lost an unsynced write: no power loss was simulated"
    );
}
