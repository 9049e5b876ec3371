//! The engine's read path allocates nothing per key beyond the value it
//! returns, and a steady stream of puts allocates no batch buffers:
//! checked with a counting global allocator (counting only this test's
//! thread, so background threads do not interfere).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use strata::{Db, Options, WriteBatch};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static ALLOCATED_BYTES: Cell<u64> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
    ALLOCATED_BYTES.with(|c| c.set(c.get() + bytes as u64));
}

// SAFETY: forwards every call to the system allocator unchanged; the
// counter is a thread-local Cell that itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size.saturating_sub(layout.size()));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Bytes requested from the allocator by this thread (frees not counted).
fn allocated_bytes() -> usize {
    ALLOCATED_BYTES.with(Cell::get) as usize
}

/// The tests share the allocator; each counts only its own thread.
#[test]
fn gets_allocate_only_the_returned_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..2000 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    for i in 2000..4000 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    // Warm up per-table state (verified-block bits, lazily built parts).
    for i in 0..4000 {
        db.get(key(i)).unwrap();
    }
    let keys: Vec<Vec<u8>> = (0..4000).map(key).collect();
    let before = allocations();
    for k in &keys {
        let v = db.get(k).unwrap().unwrap();
        std::hint::black_box(v);
    }
    // At most one allocation per get: the value, copied out of a memtable,
    // or out of a cached block when short (a copy of a short value costs
    // less than sharing the block).
    let per_get = (allocations() - before) as f64 / keys.len() as f64;
    assert!(per_get <= 1.0 + 1e-9, "{per_get} allocations per get");

    let missing: Vec<Vec<u8>> = (10_000..14_000).map(key).collect();
    let before = allocations();
    for k in &missing {
        assert!(db.get(k).unwrap().is_none());
    }
    assert_eq!(
        allocations() - before,
        0,
        "a get that finds nothing allocated"
    );
}

/// A memtable large enough that no test here fills it (no flush, no
/// rotation during a measurement).
#[test]
fn long_values_from_cached_blocks_are_lent_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let long = |i: usize| vec![(i % 251) as u8; 1000];
    for i in 0..2000 {
        db.put(key(i), long(i)).unwrap();
    }
    db.flush().unwrap();
    for i in 0..2000 {
        db.get(key(i)).unwrap();
    }
    let keys: Vec<Vec<u8>> = (0..2000).map(key).collect();
    let before = allocations();
    for k in &keys {
        let v = db.get(k).unwrap().unwrap();
        assert_eq!(v.len(), 1000);
        std::hint::black_box(v);
    }
    assert_eq!(
        allocations() - before,
        0,
        "a long value from a cached block was copied"
    );
}

fn open_with_large_memtable(dir: &std::path::Path) -> Db {
    let opts = Options {
        write_buffer_size: 64 << 20,
        ..Options::default()
    };
    Db::open(dir, opts).unwrap()
}

#[test]
fn steady_puts_reuse_their_batch_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_with_large_memtable(dir.path());
    let k = key(1);
    let v = value(1, 0);
    for _ in 0..1000 {
        db.put(&k, &v).unwrap();
    }
    let before = allocations();
    for _ in 0..10_000 {
        db.put(&k, &v).unwrap();
    }
    // What remains per put is the write group; the skiplist node and the
    // value go into the memtable's arena (one block per MiB, at most three
    // in this window), and there is no batch buffer and no writer slot.
    // Besides: the WAL grows (doubling) through 1.4 MB here, and the
    // writer hands each growth's warm-up to the syncer (a job and its link
    // in the queue): at most three growths of 256 KiB or more.
    let per_put = (allocations() - before) as f64 / 10_000.0;
    assert!(
        per_put <= 1.0 + (3.0 + 3.0 * 2.0) / 10_000.0 + 1e-9,
        "{per_put} allocations per put"
    );
}

/// The memtable's size, which decides when it is flushed, is what its
/// entries really cost: within 10% of the bytes allocated for them.
#[test]
fn memtable_size_tracks_the_memory_its_entries_take() {
    let dir = tempfile::tempdir().unwrap();
    // No background threads: the block pool's preparer would allocate the
    // arena's blocks on its own thread, out of this thread's count.
    let opts = Options {
        write_buffer_size: 64 << 20,
        inline_background_work: true,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let active = || -> usize {
        let text = db.property("strata.cur-size-active-mem-table").unwrap();
        text.parse().unwrap()
    };
    // Warm up pooled buffers, the WAL buffer and the arena's first block.
    for i in 0..1000 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    // Batches of 100, built beforehand, so what the write path allocates
    // per write (its group) is a rounding error next to the entries.
    let n = 100_000;
    let mut payload = 0;
    let batches: Vec<WriteBatch> = (0..n / 100)
        .map(|b| {
            let mut batch = WriteBatch::new();
            for i in 1000 + b * 100..1000 + (b + 1) * 100 {
                let (k, v) = (key(i), value(i, 0));
                payload += k.len() + v.len();
                batch.put(k, v);
            }
            batch
        })
        .collect();
    let (size_before, bytes_before) = (active(), allocated_bytes());
    for batch in batches {
        db.write(batch).unwrap();
    }
    let charged = (active() - size_before) as f64;
    let allocated = (allocated_bytes() - bytes_before) as f64;
    let ratio = charged / allocated;
    assert!(
        (0.9..=1.1).contains(&ratio),
        "memtable charged {charged} bytes for {allocated} allocated ({ratio:.3})"
    );
    // And the entries are compact: key, value and under 80 bytes more.
    let (per_entry, payload) = (allocated / n as f64, payload as f64 / n as f64);
    assert!(
        per_entry < payload + 80.0,
        "{per_entry:.1} bytes per entry of {payload:.1} bytes"
    );
}

/// A memtable after a flush writes into the arena blocks the flushed one
/// left (`strata.memtable-pool-bytes`), not into newly allocated memory
/// (which the kernel must fault in and zero inside the writes). No
/// background threads, so no preparer adds blocks to the pool: what it
/// holds is exactly what the flushed memtable left (the preparer has its
/// own tests in `memtable/block_pool.rs`).
#[test]
fn a_memtable_after_a_flush_writes_into_the_flushed_ones_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        write_buffer_size: 8 << 20,
        inline_background_work: true,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let pooled = || -> usize {
        let text = db.property("strata.memtable-pool-bytes").unwrap();
        text.parse().unwrap()
    };
    let big = vec![7u8; 4096];
    for i in 0..1024 {
        db.put(key(i), &big).unwrap();
    }
    assert_eq!(pooled(), 0, "nothing flushed yet");
    db.flush().unwrap();
    let kept = pooled();
    assert!(
        (4 << 20..=8 << 20).contains(&kept),
        "{kept} bytes kept from a memtable of 4 MiB of values"
    );
    let before = allocated_bytes();
    for i in 1024..2048 {
        db.put(key(i), &big).unwrap();
    }
    let allocated = allocated_bytes() - before;
    assert!(
        allocated < 1 << 20,
        "{allocated} bytes allocated for 4 MiB of writes"
    );
    assert!(
        pooled() <= kept - (3 << 20),
        "{} bytes still kept",
        pooled()
    );
    for i in 0..2048 {
        assert_eq!(db.get(key(i)).unwrap().as_deref(), Some(&big[..]));
    }
}
