//! Range deletes at the database level, as the filesystem sees them: an
//! iterator skips a span covered by one range tombstone with a seek per
//! table, not a block read per covered key; and `compact_range` after
//! deleting most of the keys returns their space. Counted in block reads
//! and table bytes through the `FileSystem` trait, never timed.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::sync::Arc;
use strata::fs::{FsOp, MemFileSystem};
use strata::{Cursor, Db, Options};

const BLOCK_SIZE: usize = 4096;

fn big_value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(100, b'v');
    v
}

/// 4 KiB blocks and no block cache, so every data block a read needs is
/// a `read_at` on the filesystem; flushes and compactions run in the
/// writing thread, so nothing else reads while a test counts.
fn read_options(fs: &MemFileSystem) -> Options {
    Options {
        inline_background_work: true,
        fs: Arc::new(fs.clone()),
        write_buffer_size: 512 << 10,
        block_size: BLOCK_SIZE,
        block_cache_bytes: 0,
        target_file_size_base: 512 << 10,
        max_bytes_for_level_base: 2 << 20,
        ..Options::default()
    }
}

/// Block reads (`read_at` calls) and bytes read by `f`.
fn reads_of(fs: &MemFileSystem, f: impl FnOnce()) -> (u64, u64) {
    let calls = |fs: &MemFileSystem| fs.op_counts().get(&FsOp::ReadAt).copied().unwrap_or(0);
    let (calls_before, bytes_before) = (calls(fs), fs.bytes_read());
    f();
    (calls(fs) - calls_before, fs.bytes_read() - bytes_before)
}

fn keys_forward(c: &mut Cursor) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    while c.valid() {
        keys.push(c.key().unwrap().to_vec());
        c.next().unwrap();
    }
    keys
}

fn keys_backward(c: &mut Cursor) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    while c.valid() {
        keys.push(c.key().unwrap().to_vec());
        c.prev().unwrap();
    }
    keys
}

/// 40,000 keys of 100-byte values (about 5 MB, over 1,000 data blocks)
/// compacted into tables on several levels; then one range tombstone over
/// all but the first and last `EDGE` keys, flushed into an L0 table of
/// its own. A forward or reverse scan, and a seek into the span from
/// either side, reads the blocks of the visible keys and about one block
/// per table it seeks past the span in, never the covered blocks.
#[test]
fn iterating_over_a_range_tombstone_seeks_past_its_span_in_every_table() {
    const KEYS: usize = 40_000;
    const EDGE: usize = 100;
    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), read_options(&fs)).unwrap();
    for n in 0..KEYS {
        // A shuffled order, so compactions merge overlapping tables.
        let i = (n * 7919) % KEYS;
        db.put(key(i), big_value(i)).unwrap();
    }
    db.flush().unwrap();
    db.run_background_work().unwrap();
    // A snapshot from before the range delete keeps the covered tables:
    // without it a delete-only compaction drops them unread, and there
    // would be nothing left to skip.
    let before = db.snapshot();
    db.delete_range(key(EDGE)..key(KEYS - EDGE)).unwrap();
    db.flush().unwrap();
    db.run_background_work().unwrap();

    let files = db.live_files();
    let levels: std::collections::BTreeSet<usize> = files.iter().map(|f| f.level).collect();
    let tables_under = files.iter().filter(|f| f.level > 0).count() as u64;
    let table_bytes: u64 = files.iter().map(|f| f.size).sum();
    assert!(
        levels.contains(&0) && levels.len() >= 2 && tables_under >= 4,
        "want the tombstone in L0 over tables on several levels: {files:?}"
    );
    // What the visible keys take, and a bound on every scan below: their
    // blocks (at both edges, read twice by a scan that seeks back, and a
    // block boundary each), plus one block per table the skip seeks into.
    let visible_blocks = (2 * EDGE * (key(0).len() + 8 + 100 + 8)).div_ceil(BLOCK_SIZE) as u64;
    let bound = 2 * (visible_blocks + 4) + tables_under;
    let total_blocks = table_bytes / BLOCK_SIZE as u64;
    assert!(
        bound * 10 < total_blocks,
        "{bound} reads would not tell a seek from a scan of {total_blocks} blocks"
    );
    let expected: Vec<Vec<u8>> = (0..EDGE).chain(KEYS - EDGE..KEYS).map(key).collect();
    let mut reversed = expected.clone();
    reversed.reverse();

    let mut cursor = db.cursor();
    let (forward, forward_bytes) = reads_of(&fs, || {
        cursor.seek_to_first().unwrap();
        assert_eq!(keys_forward(&mut cursor), expected);
    });
    let (backward, backward_bytes) = reads_of(&fs, || {
        cursor.seek_to_last().unwrap();
        assert_eq!(keys_backward(&mut cursor), reversed);
    });
    let (seeks, seek_bytes) = reads_of(&fs, || {
        cursor.seek(key(KEYS / 2)).unwrap();
        assert_eq!(cursor.key(), Some(&key(KEYS - EDGE)[..]));
        cursor.seek_for_prev(key(KEYS / 2)).unwrap();
        assert_eq!(cursor.key(), Some(&key(EDGE - 1)[..]));
        // Turning around inside the gap crosses it again by a seek.
        cursor.next().unwrap();
        assert_eq!(cursor.key(), Some(&key(KEYS - EDGE)[..]));
        cursor.prev().unwrap();
        assert_eq!(cursor.key(), Some(&key(EDGE - 1)[..]));
    });
    let iter_keys: Vec<Vec<u8>> = db.iter().rev().map(|r| r.unwrap().0.to_vec()).collect();
    assert_eq!(iter_keys, reversed);
    // The snapshot still sees every key the tombstone covers.
    assert_eq!(before.iter().count(), KEYS);
    println!(
        "{} tables ({tables_under} below L0), {total_blocks} blocks: \
         forward {forward} reads ({forward_bytes} B), backward {backward} ({backward_bytes} B), \
         seeks {seeks} ({seek_bytes} B), bound {bound}",
        files.len()
    );
    // Readahead makes a step-by-step scan few reads of large windows:
    // bytes tell it too (stepping reads every table whole).
    for (what, reads, bytes) in [
        ("forward scan", forward, forward_bytes),
        ("reverse scan", backward, backward_bytes),
        ("seeks", seeks, seek_bytes),
    ] {
        assert!(
            reads <= bound && bytes * 20 <= table_bytes,
            "{what} made {reads} reads (bound {bound}) of {bytes} bytes (of {table_bytes}): \
             it stepped through the covered span"
        );
    }
}

/// Small values, so table bytes are mostly keys: what a compaction keeps
/// shows in the total.
fn small_value(i: usize) -> Vec<u8> {
    format!("v{i:07}").into_bytes()
}

fn space_options(fs: &MemFileSystem) -> Options {
    Options {
        inline_background_work: true,
        fs: Arc::new(fs.clone()),
        write_buffer_size: 1 << 20,
        target_file_size_base: 1 << 20,
        max_bytes_for_level_base: 4 << 20,
        ..Options::default()
    }
}

/// Write `keys` in a shuffled order, flushing and compacting as it goes.
fn write_shuffled(db: &Db, keys: &[usize]) {
    let n = keys.len();
    for j in 0..n {
        let i = keys[(j * 7919) % n];
        db.put(key(i), small_value(i)).unwrap();
    }
    db.flush().unwrap();
    db.run_background_work().unwrap();
}

fn live_table_bytes(db: &Db) -> u64 {
    db.live_files().iter().map(|f| f.size).sum()
}

/// The space target at test scale: 200,000 keys, nine in every
/// ten deleted by range (180 range deletes of 1,000 keys), then
/// `compact_range` over everything. The tables left hold about what a
/// database that only ever held the remaining tenth holds, and a scan
/// returns exactly that tenth.
#[test]
fn compact_range_after_deleting_nine_tenths_by_range_returns_their_space() {
    const KEYS: usize = 200_000;
    const CHUNK: usize = 1_000;
    let kept = |i: usize| (i / CHUNK) % 10 == 3;
    let all: Vec<usize> = (0..KEYS).collect();
    let remaining: Vec<usize> = all.iter().copied().filter(|&i| kept(i)).collect();

    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), space_options(&fs)).unwrap();
    write_shuffled(&db, &all);
    let full = live_table_bytes(&db);
    for chunk in (0..KEYS / CHUNK).filter(|c| !kept(c * CHUNK)) {
        db.delete_range(key(chunk * CHUNK)..key((chunk + 1) * CHUNK))
            .unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let after = live_table_bytes(&db);

    let reference_fs = MemFileSystem::new();
    let reference = Db::open(mem_dir(), space_options(&reference_fs)).unwrap();
    write_shuffled(&reference, &remaining);
    reference.compact_range::<&[u8], _>(..).unwrap();
    let tenth = live_table_bytes(&reference);

    println!(
        "{KEYS} keys: {full} table bytes; after deleting 90% by range and compacting: \
         {after}; a database of the remaining 10%: {tenth} ({:.3}x)",
        after as f64 / tenth as f64
    );
    assert!(
        after * 100 <= tenth * 110,
        "{after} table bytes after compact_range, {tenth} for a database of the remaining keys"
    );
    let want: Vec<(Vec<u8>, Vec<u8>)> = remaining
        .iter()
        .map(|&i| (key(i), small_value(i)))
        .collect();
    assert_eq!(scan_all(&db), want);
    let backward: Vec<Vec<u8>> = db.iter().rev().map(|r| r.unwrap().0.to_vec()).collect();
    assert_eq!(
        backward,
        want.iter()
            .rev()
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    );
}
