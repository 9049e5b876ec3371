//! The table read path as the filesystem sees it: what a cold point
//! lookup reads, what the block cache saves, what a compaction reads at
//! once, and that a block damaged on disk is caught when it is read.
//! Counted in bytes and calls through the `FileSystem` trait, never timed.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata::fs::{FileSystem, FsOp, MemFileSystem};
use strata::{Db, Error, Options};

const BLOCK_SIZE: usize = 4096;
const KEYS: usize = 60_000;

fn lookup_value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(100, b'v');
    v
}

/// About 60,000 keys with 100-byte values (7 MB) in tables of 4 KiB
/// blocks over several levels, nothing left in memtables. Flushes and
/// compactions run in the writing thread (`inline_background_work`): the
/// tree's shape is the same on every run, and no background compaction
/// reads through the filesystem while a test counts a lookup's reads.
fn options(fs: &MemFileSystem) -> Options {
    Options {
        inline_background_work: true,
        fs: Arc::new(fs.clone()),
        write_buffer_size: 512 << 10,
        block_size: BLOCK_SIZE,
        target_file_size_base: 512 << 10,
        max_bytes_for_level_base: 2 << 20,
        ..Options::default()
    }
}

fn fill(fs: &MemFileSystem) {
    let db = Db::open(mem_dir(), options(fs)).unwrap();
    // A shuffled order, so compactions merge overlapping tables.
    for n in 0..KEYS {
        let i = (n * 7919) % KEYS;
        db.put(key(i), lookup_value(i)).unwrap();
    }
    db.flush().unwrap();
    db.run_background_work().unwrap();
    // Every tenth key written again (same value) and flushed with no
    // compaction after it: L0 tables over the whole key range above the
    // deeper levels, so a lookup may pass tables that do not hold its key
    // and a full compaction has every deeper table to read.
    for i in (0..KEYS).step_by(10) {
        db.put(key(i), lookup_value(i)).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
}

/// The largest a lookup may read: one data block (cut once it reaches
/// the block size, so at most one entry longer) and its 5-byte trailer.
fn max_block_bytes() -> u64 {
    (BLOCK_SIZE + key(0).len() + 8 + 100 + 16 + 5) as u64
}

#[test]
fn a_cold_point_lookup_reads_one_data_block_and_a_warm_one_reads_nothing() {
    let fs = MemFileSystem::new();
    fill(&fs);
    // Reopen: the block cache is empty, tables are opened (footer, index
    // and filter read) before the first lookup, and their data is not.
    let table_bytes: u64 = files_with_ext(&fs, &mem_dir(), ".sst")
        .iter()
        .map(|p| fs.file_size(p).unwrap())
        .sum();
    let before_open = fs.bytes_read();
    let db = Db::open(mem_dir(), options(&fs)).unwrap();
    let opened = fs.bytes_read() - before_open;
    assert!(
        opened * 10 < table_bytes,
        "opening read {opened} of {table_bytes} table bytes"
    );
    let levels: Vec<usize> = (0..7)
        .map(|l| {
            db.property(&format!("strata.num-files-at-level{l}"))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        levels.iter().filter(|&&n| n > 0).count() >= 2,
        "want a tree of several levels: {levels:?}"
    );
    let block = max_block_bytes();
    let mut total = 0;
    let mut lookups = 0;
    let mut worst = 0;
    for i in (0..KEYS).step_by(97) {
        let before = fs.bytes_read();
        assert_eq!(db.get(key(i)).unwrap().unwrap(), lookup_value(i));
        let read = fs.bytes_read() - before;
        // One data block; a bloom false positive in another table can
        // add a second (1% per table at 10 bits per key).
        assert!(read <= 2 * block, "lookup of key {i} read {read} bytes");
        worst = worst.max(read);
        total += read;
        lookups += 1;
        // Now cached: the same lookup reads nothing from the filesystem.
        let before = fs.bytes_read();
        db.get(key(i)).unwrap().unwrap();
        assert_eq!(fs.bytes_read(), before, "a cached lookup read from a file");
    }
    let mean = total as f64 / lookups as f64;
    assert!(
        mean <= 1.05 * block as f64,
        "{mean:.0} bytes per cold lookup, a block is at most {block}"
    );
    println!("{lookups} cold lookups: {mean:.0} bytes each on average, {worst} at most");
    // Keys the filters rule out read nothing, nearly always.
    let before = fs.bytes_read();
    for i in KEYS..KEYS + 1000 {
        assert!(db.get(key(i)).unwrap().is_none());
    }
    assert!(fs.bytes_read() - before <= 40 * block);
}

#[test]
fn without_a_block_cache_every_lookup_reads_its_block_again() {
    let fs = MemFileSystem::new();
    fill(&fs);
    let db = Db::open(
        mem_dir(),
        Options {
            block_cache_bytes: 0,
            ..options(&fs)
        },
    )
    .unwrap();
    let before = fs.bytes_read();
    for _ in 0..10 {
        db.get(key(1234)).unwrap().unwrap();
    }
    let read = fs.bytes_read() - before;
    assert!(read >= 10 * (BLOCK_SIZE as u64 * 9 / 10) && read <= 20 * max_block_bytes());
}

#[test]
fn with_index_and_filter_in_the_cache_a_cold_table_costs_them_once() {
    let fs = MemFileSystem::new();
    fill(&fs);
    let opts = Options {
        cache_index_and_filter_blocks: true,
        ..options(&fs)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    let usage: usize = db
        .property("strata.block-cache-usage")
        .unwrap()
        .parse()
        .unwrap();
    assert!(usage > 0, "index and filter blocks were not cached at open");
    // Lookups find them in the cache: each reads only its data block.
    let block = max_block_bytes();
    for i in (0..KEYS).step_by(1013) {
        let before = fs.bytes_read();
        db.get(key(i)).unwrap().unwrap();
        assert!(fs.bytes_read() - before <= 2 * block);
    }
}

#[test]
fn l0_index_and_filter_pinned_in_the_cache_are_released_with_their_tables() {
    let fs = MemFileSystem::new();
    let opts = Options {
        cache_index_and_filter_blocks: true,
        pin_l0_filter_and_index_blocks_in_cache: true,
        level0_file_num_compaction_trigger: 20,
        level0_slowdown_writes_trigger: 30,
        level0_stop_writes_trigger: 40,
        ..options(&fs)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    let pinned = |db: &Db| -> usize {
        db.property("strata.block-cache-pinned-usage")
            .unwrap()
            .parse()
            .unwrap()
    };
    for i in 0..20_000 {
        db.put(key(i), lookup_value(i)).unwrap();
    }
    db.flush().unwrap();
    assert!(db.property("strata.num-files-at-level0").unwrap() != "0");
    assert!(pinned(&db) > 0, "L0 index and filter not pinned");
    // Compacted out of L0: the L1 tables do not pin theirs, and the L0
    // tables' pins went with them.
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.property("strata.num-files-at-level0").unwrap(), "0");
    assert_eq!(pinned(&db), 0);
    assert_eq!(db.get(key(77)).unwrap().unwrap(), lookup_value(77));
}

#[test]
fn compactions_read_their_inputs_in_windows_of_compaction_readahead_size() {
    let reads_of_a_full_compaction = |readahead: usize| {
        let fs = MemFileSystem::new();
        fill(&fs);
        let db = Db::open(
            mem_dir(),
            Options {
                compaction_readahead_size: readahead,
                ..options(&fs)
            },
        )
        .unwrap();
        let before = fs.op_counts().get(&FsOp::ReadAt).copied().unwrap_or(0);
        db.compact_range::<&[u8], _>(..).unwrap();
        fs.op_counts().get(&FsOp::ReadAt).copied().unwrap_or(0) - before
    };
    let windowed = reads_of_a_full_compaction(2 << 20);
    let automatic = reads_of_a_full_compaction(0);
    // 7 MB of input in about 15 tables: with 2 MiB windows a read or two
    // per input table's data, plus the footer, index and filter reads
    // that open each output table; a read per block would be about
    // `blocks`. With automatic readahead (windows growing from 8 KiB to
    // 256 KiB) more.
    let blocks = (KEYS * 130 / BLOCK_SIZE) as u64;
    assert!(
        windowed * 10 < blocks,
        "{windowed} reads for about {blocks} blocks"
    );
    println!("a full compaction: {windowed} reads with 2 MiB windows, {automatic} automatic");
    assert!(automatic > windowed, "{automatic} vs {windowed}");
}

/// The first data block of the first table file of `dir` that holds key
/// 0, found the way a reader finds it: the table's smallest key is key 0
/// and its first block starts at offset 0.
fn table_with_key_zero(fs: &dyn FileSystem, dir: &Path, db: &Db) -> PathBuf {
    let live = db.live_files();
    let meta = live
        .iter()
        .find(|f| f.smallest.as_slice() == key(0).as_slice())
        .expect("a table starting at key 0");
    let path = dir.join(format!("{:06}.sst", meta.number));
    assert!(fs.exists(&path));
    path
}

#[test]
fn a_block_damaged_on_disk_is_corruption_naming_file_and_offset_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options {
        block_size: BLOCK_SIZE,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..5000 {
        db.put(key(i), lookup_value(i)).unwrap();
    }
    db.flush().unwrap();
    let table = table_with_key_zero(&strata::fs::OsFileSystem, dir.path(), &db);
    db.close().unwrap();
    // Flip a byte inside the first data block (past its first entry, so
    // the key still parses; the checksum must catch it).
    let mut bytes = std::fs::read(&table).unwrap();
    bytes[200] ^= 0x20;
    std::fs::write(&table, &bytes).unwrap();
    // Open reads footer, meta blocks, index and filter, all intact.
    let db = Db::open(dir.path(), opts()).unwrap();
    for _ in 0..2 {
        match db.get(key(0)) {
            Err(Error::Corruption {
                file,
                offset,
                reason,
            }) => {
                assert_eq!(file, table);
                assert_eq!(offset, 0, "the damaged block starts at 0");
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("a damaged block read as {other:?}"),
        }
    }
    // Keys in other blocks still read.
    assert_eq!(db.get(key(4999)).unwrap().unwrap(), lookup_value(4999));
    let mut it = db.iter();
    assert!(matches!(it.next(), Some(Err(Error::Corruption { .. }))));
}

/// Tables are read with `pread`, not mapped (UNSAFE.md): a table that
/// another program truncates under an open database reads short, which
/// is an error naming the file, not a SIGBUS that kills the process.
#[test]
fn a_table_truncated_under_an_open_database_is_corruption_not_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            block_size: BLOCK_SIZE,
            ..Options::default()
        },
    )
    .unwrap();
    for i in 0..5000 {
        db.put(key(i), lookup_value(i)).unwrap();
    }
    db.flush().unwrap();
    let table = table_with_key_zero(&strata::fs::OsFileSystem, dir.path(), &db);
    let len = std::fs::metadata(&table).unwrap().len();
    // Keep the first quarter: key 0's block survives, the last keys' go.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&table)
        .unwrap()
        .set_len(len / 4)
        .unwrap();
    match db.get(key(4999)) {
        Err(Error::Corruption { file, reason, .. }) => {
            assert_eq!(file, table);
            assert!(reason.contains("past the end of the file"), "{reason}");
        }
        other => panic!("a read past a truncated table's end gave {other:?}"),
    }
    assert_eq!(db.get(key(0)).unwrap().unwrap(), lookup_value(0));
}

#[test]
fn damage_after_open_is_caught_by_the_next_cold_read() {
    let fs = MemFileSystem::new();
    fill(&fs);
    let db = Db::open(mem_dir(), options(&fs)).unwrap();
    let table = table_with_key_zero(&fs, &mem_dir(), &db);
    fs.corrupt_byte(&table, 300, 0x01).unwrap();
    match db.get(key(0)) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!((file, offset), (table, 0));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_block_read_is_an_io_error_and_the_next_read_succeeds() {
    let fs = MemFileSystem::new();
    fill(&fs);
    let db = Db::open(mem_dir(), options(&fs)).unwrap();
    fs.add_fault(strata::fs::FaultPlan::always(FsOp::ReadAt));
    match db.get(key(4242)) {
        Err(Error::Io { op, path, .. }) => {
            assert_eq!(op, "read table");
            assert!(path.extension().is_some_and(|e| e == "sst"), "{path:?}");
        }
        other => panic!("{other:?}"),
    }
    fs.clear_faults();
    assert_eq!(db.get(key(4242)).unwrap().unwrap(), lookup_value(4242));
}

/// A failed table write (a flush's output here) is named as a write, so a
/// full disk under a flush does not read as a failed table read.
#[test]
fn a_failed_table_write_is_an_io_error_naming_the_write() {
    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), options(&fs)).unwrap();
    db.put(key(1), lookup_value(1)).unwrap();
    fs.add_fault(strata::fs::FaultPlan {
        path_contains: Some(".sst".into()),
        ..strata::fs::FaultPlan::always(FsOp::Append)
    });
    let err = db.flush().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("write table"), "{text}");
    assert!(!text.contains("read table"), "{text}");
}

#[test]
fn memory_mapped_reads_return_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    for allow_mmap_reads in [false, true] {
        let opts = || Options {
            allow_mmap_reads,
            block_size: BLOCK_SIZE,
            write_buffer_size: 256 << 10,
            ..Options::default()
        };
        let path = dir.path().join(format!("mmap-{allow_mmap_reads}"));
        let db = Db::open(&path, opts()).unwrap();
        for i in 0..20_000 {
            db.put(key(i), lookup_value(i)).unwrap();
        }
        db.flush().unwrap();
        db.close().unwrap();
        let db = Db::open(&path, opts()).unwrap();
        for i in (0..20_000).step_by(37) {
            assert_eq!(db.get(key(i)).unwrap().unwrap(), lookup_value(i));
        }
        assert_eq!(db.iter().count(), 20_000);
        assert_eq!(db.iter().rev().count(), 20_000);
    }
}
