//! `ReadOptions::verify_checksums` and `ReadOptions::fill_cache` reach the
//! table reads of gets and scans.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::PathBuf;
use strata::fs::{FileSystem, MemFileSystem};
use strata::{Compression, Db, Error, Options, ReadOptions};

const N: usize = 400;
const MARKED: usize = 123;
const MARKER: &[u8] = b"a-value-whose-bytes-the-test-damages";

fn unchecked() -> ReadOptions<'static> {
    ReadOptions {
        verify_checksums: false,
        ..ReadOptions::default()
    }
}

fn no_fill() -> ReadOptions<'static> {
    ReadOptions {
        fill_cache: false,
        ..ReadOptions::default()
    }
}

/// N keys in one table, key `MARKED` holding `MARKER`; closed.
fn build(opts: &Options) {
    let db = Db::open(mem_dir(), opts.clone()).unwrap();
    for i in 0..N {
        let v = if i == MARKED {
            MARKER.to_vec()
        } else {
            value(i, 0)
        };
        db.put(key(i), v).unwrap();
    }
    db.flush().unwrap();
}

fn the_table(fs: &MemFileSystem) -> PathBuf {
    let tables = files_with_ext(fs, &mem_dir(), ".sst");
    assert_eq!(tables.len(), 1, "{tables:?}");
    tables[0].clone()
}

/// Flip one byte inside the marked value, in the table file: its data
/// block no longer matches its checksum, but still parses.
fn damage_marked_value(fs: &MemFileSystem) -> PathBuf {
    let table = the_table(fs);
    let data = fs.read(&table).unwrap();
    let at = data
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .expect("the value is stored uncompressed");
    fs.corrupt_byte(&table, at + 3, 0x20).unwrap();
    table
}

fn assert_corruption_in(e: &Error, table: &PathBuf) {
    match e {
        Error::Corruption { file, reason, .. } => {
            assert_eq!(file, table, "{e}");
            assert!(reason.contains("checksum"), "{e}");
        }
        other => panic!(
            "expected a checksum error in {}, got {other}",
            table.display()
        ),
    }
}

#[test]
fn verify_checksums_decides_whether_a_damaged_block_is_reported() {
    let fs = MemFileSystem::new();
    build(&mem_options(&fs));
    let table = damage_marked_value(&fs);
    let db = open_mem(&fs);
    // Unchecked, the damaged bytes come back; checked, the damage is
    // reported; and the failed check leaves the block untrusted, while
    // the unchecked read still does not fail.
    for round in 0..2 {
        let unchecked_get = db.get_opt(key(MARKED), &unchecked()).unwrap();
        let damaged = unchecked_get.expect("the key is there");
        assert_ne!(&damaged[..], MARKER, "round {round}");
        assert_eq!(damaged.len(), MARKER.len());
        assert_corruption_in(&db.get(key(MARKED)).unwrap_err(), &table);
    }
    // Scans likewise.
    let scanned: Vec<_> = db
        .range_opt::<&[u8], _>(.., &unchecked())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(scanned.len(), N);
    let scan_err = db.iter().collect::<Result<Vec<_>, _>>().unwrap_err();
    assert_corruption_in(&scan_err, &table);
    let mut cursor = db.cursor_opt(&unchecked());
    cursor.seek(key(MARKED)).unwrap();
    assert!(cursor.valid());
}

#[test]
fn a_read_that_checks_first_does_not_make_later_unchecked_reads_fail() {
    let fs = MemFileSystem::new();
    build(&mem_options(&fs));
    let table = damage_marked_value(&fs);
    let db = open_mem(&fs);
    assert_corruption_in(&db.get(key(MARKED)).unwrap_err(), &table);
    assert!(db.get_opt(key(MARKED), &unchecked()).unwrap().is_some());
}

fn compressed(fs: &MemFileSystem) -> Options {
    Options {
        compression: Compression::Zstd { level: 1 },
        ..mem_options(fs)
    }
}

fn cache_usage(db: &Db) -> u64 {
    db.property("strata.block-cache-usage")
        .expect("the property exists")
        .parse()
        .unwrap()
}

#[test]
fn fill_cache_false_leaves_the_block_cache_as_it_was() {
    let fs = MemFileSystem::new();
    let opts = compressed(&fs);
    build(&opts);
    let db = Db::open(mem_dir(), opts.clone()).unwrap();
    assert_eq!(cache_usage(&db), 0, "a fresh open caches nothing");
    for i in 0..N {
        assert!(db.get_opt(key(i), &no_fill()).unwrap().is_some());
    }
    let scanned = db.range_opt::<&[u8], _>(.., &no_fill()).count();
    assert_eq!(scanned, N);
    assert_eq!(
        cache_usage(&db),
        0,
        "reads with fill_cache = false filled it"
    );
    // The same reads with the default fill it: the check above can fail.
    for i in 0..N {
        db.get(key(i)).unwrap();
    }
    let filled = cache_usage(&db);
    assert!(filled > 0);
    // Cached blocks serve reads that do not fill, and the usage stays.
    for i in 0..N {
        assert!(db.get_opt(key(i), &no_fill()).unwrap().is_some());
    }
    assert_eq!(cache_usage(&db), filled);
}

/// Blocks read without a checksum check still enter the cache (checked
/// on the way in), so such reads do not lose the cache.
#[test]
fn unchecked_reads_still_fill_the_cache() {
    let fs = MemFileSystem::new();
    let opts = compressed(&fs);
    build(&opts);
    let db = Db::open(mem_dir(), opts).unwrap();
    for i in 0..N {
        db.get_opt(key(i), &unchecked()).unwrap();
    }
    assert!(cache_usage(&db) > 0);
}

/// Compaction reads its inputs with `fill_cache = false`: blocks of tables
/// about to be deleted would only evict what readers use.
#[test]
fn compaction_does_not_fill_the_cache() {
    let fs = MemFileSystem::new();
    let opts = compressed(&fs);
    build(&opts);
    let db = Db::open(mem_dir(), opts).unwrap();
    for i in 0..N {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(cache_usage(&db), 0);
    assert_eq!(db.get(key(7)).unwrap().as_deref(), Some(&value(7, 1)[..]));
}
