//! `get` and iteration over uncompressed blocks do not allocate: checked
//! with a counting global allocator (counts only this test's thread).

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use strata_sstable::*;

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

#[test]
fn get_and_scan_do_not_allocate() {
    let entries: Vec<Entry> = (0..5000u32)
        .map(|i| Entry {
            user_key: format!("key{i:08}").into_bytes(),
            seqno: u64::from(i) + 1,
            kind: ValueKind::Put,
            value: vec![b'v'; 100],
        })
        .collect();
    let (bytes, _) = build(&entries, TableOptions::default());
    let table = open(bytes);
    // Warm up: the per-thread key buffer, the verified-block bits, and the
    // one-time promotion of the Vec-backed Bytes to a shared one.
    for e in &entries {
        table.get(&e.user_key, MAX_SEQNO).unwrap().unwrap();
    }
    let mut it = table.iter();
    it.seek_to_first().unwrap();
    it.seek_to_last().unwrap();

    let target = entries[2500].ikey();
    let before = allocations();
    let mut found = 0;
    for e in entries.iter().step_by(7) {
        found += usize::from(table.get(&e.user_key, MAX_SEQNO).unwrap().is_some());
        assert!(table.get(b"absent-key", MAX_SEQNO).unwrap().is_none());
    }
    assert_eq!(allocations(), before, "get allocated");

    it.seek_to_first().unwrap();
    let mut n = 0;
    while it.valid() {
        n += it.value_bytes().len();
        it.next().unwrap();
    }
    it.seek_to_last().unwrap();
    while it.valid() {
        it.prev().unwrap();
    }
    it.seek(&target).unwrap();
    assert!(it.valid());
    assert_eq!(allocations(), before, "iteration allocated");
    assert_eq!(n, 5000 * 100);
    assert_eq!(found, entries.len().div_ceil(7));
}
