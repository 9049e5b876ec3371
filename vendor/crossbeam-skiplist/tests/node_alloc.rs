//! strata's patch: a skip list with its own node allocator allocates every
//! node there and frees each exactly once, on every path that frees one
//! (replacement, removal, `into_iter`, drop), also when the destruction is
//! deferred past the skip list's own drop.

use std::alloc::{alloc, dealloc, Layout};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_epoch as epoch;
use crossbeam_skiplist::base::NodeAlloc;
use crossbeam_skiplist::{SkipList, SkipMap};

/// Counts the nodes it hands out and checks each free matches a live
/// allocation with the same layout.
#[derive(Default)]
struct Counting {
    live: Mutex<HashMap<usize, Layout>>,
    allocated: AtomicUsize,
    freed: AtomicUsize,
    /// What `frees_nodes` answers: `true` unless a test says otherwise.
    keeps_nodes: bool,
}

unsafe impl NodeAlloc for Counting {
    fn allocate(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { alloc(layout) };
        assert!(!ptr.is_null());
        self.live.lock().unwrap().insert(ptr as usize, layout);
        self.allocated.fetch_add(1, Ordering::SeqCst);
        ptr
    }

    unsafe fn deallocate(&self, ptr: *mut u8, layout: Layout) {
        let was = self.live.lock().unwrap().remove(&(ptr as usize));
        assert_eq!(was, Some(layout), "freed a node it did not allocate");
        self.freed.fetch_add(1, Ordering::SeqCst);
        unsafe { dealloc(ptr, layout) };
    }

    fn frees_nodes(&self) -> bool {
        !self.keeps_nodes
    }
}

impl Drop for Counting {
    /// Frees what the skip list left to the allocator (as an arena would).
    fn drop(&mut self) {
        for (ptr, layout) in self.live.get_mut().unwrap().drain() {
            unsafe { dealloc(ptr as *mut u8, layout) };
        }
    }
}

impl Counting {
    fn keeping_nodes() -> Counting {
        let mut counting = Counting::default();
        counting.keeps_nodes = true;
        counting
    }

    fn live(&self) -> usize {
        self.live.lock().unwrap().len()
    }
}

#[test]
fn every_node_comes_from_the_allocator_and_goes_back_on_drop() {
    let counting = Arc::new(Counting::default());
    let map = SkipMap::with_node_alloc(Arc::clone(&counting) as Arc<dyn NodeAlloc>);
    for i in 0..1000u64 {
        map.insert(i, i.to_string());
    }
    assert_eq!(counting.allocated.load(Ordering::SeqCst), 1000);
    assert_eq!(map.get(&500).unwrap().value(), "500");
    drop(map);
    assert_eq!(counting.live(), 0);
    assert_eq!(counting.freed.load(Ordering::SeqCst), 1000);
}

#[test]
fn replaced_and_removed_nodes_are_freed_after_the_list_is_gone() {
    // A collector of the test's own: dropping it runs every destruction
    // still deferred, whatever other tests' threads have pinned.
    let counting = Arc::new(Counting::default());
    let collector = epoch::Collector::new();
    let handle = collector.register();
    let list = SkipList::with_node_alloc(
        collector.clone(),
        Arc::clone(&counting) as Arc<dyn NodeAlloc>,
    );
    let pinned = handle.pin();
    let guard = &pinned;
    for i in 0..100u64 {
        list.insert(i, vec![i; 3], guard).release(guard);
    }
    // Replacing and removing defer the old nodes' destruction to the
    // collector, which cannot run it while `guard` is pinned: it runs
    // after the list is dropped.
    for i in 0..50u64 {
        list.insert(i, vec![i + 1; 3], guard).release(guard);
    }
    for i in 50..100u64 {
        list.remove(&i, guard).unwrap().release(guard);
    }
    assert_eq!(*list.get(&10, guard).unwrap().value(), vec![11; 3]);
    drop(list);
    assert_eq!(counting.allocated.load(Ordering::SeqCst), 150);
    assert!(counting.live() > 0, "destructions still deferred");
    drop(pinned);
    drop(handle);
    drop(collector);
    assert_eq!(counting.live(), 0, "every node freed once");
    assert_eq!(counting.freed.load(Ordering::SeqCst), 150);
}

#[test]
fn into_iter_frees_each_node_it_yields_or_skips() {
    let counting = Arc::new(Counting::default());
    let map = SkipMap::with_node_alloc(Arc::clone(&counting) as Arc<dyn NodeAlloc>);
    for i in 0..200u64 {
        map.insert(i, i);
    }
    let firsts: Vec<_> = map.into_iter().take(10).collect();
    assert_eq!(firsts, (0..10).map(|i| (i, i)).collect::<Vec<_>>());
    assert_eq!(counting.live(), 0);
}

#[test]
fn concurrent_inserts_use_the_allocator() {
    let counting = Arc::new(Counting::default());
    let map = Arc::new(SkipMap::with_node_alloc(
        Arc::clone(&counting) as Arc<dyn NodeAlloc>
    ));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let map = Arc::clone(&map);
            std::thread::spawn(move || {
                for i in 0..2000u64 {
                    map.insert(i * 4 + t, t);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(map.len(), 8000);
    assert_eq!(counting.allocated.load(Ordering::SeqCst), 8000);
    drop(map);
    assert_eq!(counting.live(), 0);
}

#[test]
fn a_list_whose_allocator_keeps_its_nodes_skips_the_walk_only_without_destructors() {
    // Keys and values without drop glue: the drop frees nothing one by one.
    let keeping = Arc::new(Counting::keeping_nodes());
    let map = SkipMap::with_node_alloc(Arc::clone(&keeping) as Arc<dyn NodeAlloc>);
    for i in 0..100u64 {
        map.insert(i, i);
    }
    drop(map);
    assert_eq!(keeping.freed.load(Ordering::SeqCst), 0);
    assert_eq!(keeping.live(), 100, "left to the allocator");

    // Values with destructors: each node is still destroyed (its value
    // dropped), whatever the allocator does with the memory.
    let keeping = Arc::new(Counting::keeping_nodes());
    let map = SkipMap::with_node_alloc(Arc::clone(&keeping) as Arc<dyn NodeAlloc>);
    let value = Arc::new(());
    for i in 0..100u64 {
        map.insert(i, Arc::clone(&value));
    }
    drop(map);
    assert_eq!(Arc::strong_count(&value), 1, "every value dropped");
    assert_eq!(keeping.freed.load(Ordering::SeqCst), 100);
}
