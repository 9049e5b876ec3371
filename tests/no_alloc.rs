//! The engine's read path allocates nothing per key beyond the value it
//! returns, and a steady stream of puts allocates no batch buffers:
//! checked with a counting global allocator (counting only this test's
//! thread, so background threads do not interfere).

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use strata::{Db, Options};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the
// counter is a thread-local Cell that itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Both tests share the allocator; each counts only its own thread.
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
    // At most one allocation per get: a value copied out of a memtable.
    // Values from tables are zero-copy slices of the mapped file.
    let per_get = (allocations() - before) as f64 / keys.len() as f64;
    assert!(per_get <= 0.5 + 1e-9, "{per_get} allocations per get");

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

#[test]
fn steady_puts_reuse_their_batch_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        write_buffer_size: 64 << 20,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let k = key(1);
    let v = value(1, 0);
    for _ in 0..1000 {
        db.put(&k, &v).unwrap();
    }
    let before = allocations();
    for _ in 0..10_000 {
        db.put(&k, &v).unwrap();
    }
    // What remains per put is the memtable entry itself (one allocation
    // for the value, one for the skiplist node) and the group record;
    // no batch buffer, no writer slot.
    let per_put = (allocations() - before) as f64 / 10_000.0;
    assert!(per_put <= 3.0 + 1e-9, "{per_put} allocations per put");
}
