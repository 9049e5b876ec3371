//! A memtable's arena: its skiplist's nodes and the bytes of its entries'
//! values (and of keys too long to sit inside a node), carved out of large
//! blocks that are freed together when the memtable is dropped, or handed
//! to the next memtable through the database's
//! [`BlockPool`](super::block_pool).
//!
//! Why: with the value in its own heap allocation, a 100-byte value cost a
//! 112-byte allocator block and every entry two allocations. A memtable of
//! `write_buffer_size` bytes then held ~25% fewer entries than RocksDB's
//! (whose skiplist lives in an arena), so strata flushed more, smaller
//! tables and its level-0 compactions rewrote the base level more often.
//! A flushed memtable also returned a million small blocks to the
//! allocator at once. Here an entry's bytes cost exactly their length, and
//! a memtable frees one block per `block_bytes`.
//!
//! The nodes too (crossbeam-skiplist's, through strata's patch of it,
//! `NodeAlloc`): from the global allocator a node was one more allocation
//! (and one more free at the flush) per entry, and under mimalloc the
//! fresh huge pages those allocations faulted in on the write path made
//! most of fillbatch's slow rounds. Here a node costs its size plus
//! alignment, in the blocks the previous memtable already touched while
//! the pool has some (docs/performance.md, "Nineteenth session").
//!
//! Concurrency: a writer reserves the bytes of its whole batch in one
//! short critical section ([`Arena::reserve`]) and then fills its
//! [`Region`] without a lock; regions never overlap. Bytes are never
//! written again after the writer copied them in, and the entry pointing
//! at them is published through the skiplist's release/acquire links, so
//! readers see them complete. Nodes are allocated one at a time, inside
//! the skiplist's insert, so they come from per-CPU chunks (RocksDB's
//! `ConcurrentArena` does the same): each chunk is reserved from the
//! blocks like a batch's bytes, and a node is carved from the chunk of the
//! CPU its writer runs on, under that chunk's own lock, which another
//! thread takes only if the writer moved CPU meanwhile.

use super::block_pool::BlockPool;
use crossbeam_skiplist::base::NodeAlloc;
use parking_lot::Mutex;
use std::alloc::Layout;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The smallest block an arena allocates (tiny memtables in tests).
const MIN_BLOCK_BYTES: usize = 4096;

/// The largest block. Blocks are an eighth of the memtable up to 1 MiB,
/// RocksDB's default `arena_block_size`: few enough allocations, and the
/// unused tail of a block stays a rounding error.
const MAX_BLOCK_BYTES: usize = 1 << 20;

/// The block size of an arena for a memtable of about `capacity` bytes.
pub(super) fn block_bytes_for(capacity: usize) -> usize {
    (capacity / 8).clamp(MIN_BLOCK_BYTES, MAX_BLOCK_BYTES)
}

/// A reservation larger than this fraction of a block gets a block of its
/// own, so one large value never wastes most of the current block.
const LARGE_FRACTION: usize = 4;

/// The bytes a CPU's node chunk takes from the blocks at a time: some 300
/// nodes of a small entry, so the blocks' lock is taken once per 300
/// inserts. Less in a small arena ([`node_chunk_bytes_for`]).
const NODE_CHUNK_BYTES: usize = 16 << 10;

/// The node chunk of an arena for a memtable of about `capacity` bytes:
/// at most a quarter block, so a chunk never needs a block of its own,
/// and small enough that half-used chunks on every CPU hold at most an
/// eighth of the memtable (a writer moving between CPUs leaves one on
/// each), or a small memtable would count itself full of empty chunks.
fn node_chunk_bytes_for(capacity: usize, node_shards: usize) -> usize {
    NODE_CHUNK_BYTES
        .min(block_bytes_for(capacity) / LARGE_FRACTION)
        .min(capacity / (8 * node_shards))
}

/// How many node chunks an arena has: the CPUs, rounded up to a power of
/// two (a CPU number picks its chunk with a mask), at most 256.
pub(super) fn node_shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .next_power_of_two()
            .min(256)
    })
}

pub struct Arena {
    blocks: Mutex<Blocks>,
    block_bytes: usize,
    /// Bytes of all blocks allocated, for the memtable's size accounting.
    allocated: AtomicUsize,
    /// Where blocks of `block_bytes` come from first and go back to when
    /// the arena is dropped: only a pool of that block size.
    pool: Option<Arc<BlockPool>>,
    /// The node chunks, one per CPU (`node_shard_count`).
    nodes: Box<[NodeShard]>,
    /// Bytes a node chunk takes from the blocks at a time.
    node_chunk_bytes: usize,
}

/// One CPU's node chunk, on a cache line of its own so two CPUs' nodes
/// never share the line of their locks.
#[repr(align(64))]
struct NodeShard(Mutex<NodeChunk>);

/// The unallocated tail of a node chunk.
struct NodeChunk {
    next: NonNull<u8>,
    left: usize,
}

// SAFETY: a chunk is the address of arena bytes reserved for the chunk
// alone, reached only through its shard's mutex; which thread holds it
// does not matter.
unsafe impl Send for NodeChunk {}

/// The blocks an arena owns and the free tail of the current one.
struct Blocks {
    owned: Vec<Block>,
    /// The first unreserved byte of the current block.
    next: NonNull<u8>,
    /// Unreserved bytes left in the current block.
    left: usize,
}

// SAFETY: `Blocks` owns its blocks (raw pointers to heap allocations no
// one else frees); moving that ownership to another thread is sound. It is
// only reached through the arena's mutex.
unsafe impl Send for Blocks {}

/// One heap block, made from a `Box<[MaybeUninit<u8>]>` and turned back
/// into one to be freed.
pub(super) struct Block {
    start: NonNull<MaybeUninit<u8>>,
    len: usize,
}

// SAFETY: a `Block` owns its heap allocation outright (no one else frees
// or borrows it), so it may move to another thread: the block pool hands
// the blocks of a memtable dropped on one thread to an arena on another.
unsafe impl Send for Block {}

impl Block {
    pub(super) fn new(len: usize) -> Block {
        let boxed: Box<[MaybeUninit<u8>]> = Box::new_uninit_slice(len);
        let raw = Box::into_raw(boxed);
        Block {
            // `Box::into_raw` never returns null.
            start: NonNull::new(raw.cast::<MaybeUninit<u8>>()).expect("box pointer"),
            len,
        }
    }

    /// A block whose pages are all resident: each one written once, so
    /// the kernel faults it in (and zeroes it) now, on the caller's
    /// thread, rather than in the writer that first stores into it. `None`
    /// if `stop` was set meanwhile (looked at every 64 pages: the caller
    /// runs at idle priority, and a close waits for it).
    pub(super) fn resident(len: usize, stop: &AtomicBool) -> Option<Block> {
        /// The smallest page size of the platforms strata runs on; a
        /// larger page is touched more than once, which is harmless.
        const PAGE_BYTES: usize = 4096;
        let block = Block::new(len);
        let start = block.start();
        // The block need not start on a page: its last byte too, or the
        // last page might be one the writer faults in.
        let offsets = (0..len).step_by(PAGE_BYTES).chain(len.checked_sub(1));
        for (i, offset) in offsets.enumerate() {
            if i % 64 == 63 && stop.load(Ordering::Relaxed) {
                return None;
            }
            // SAFETY: `offset < len`, inside the block this function
            // owns; writing a byte to uninitialised memory is sound, and
            // the volatile write is not elided.
            unsafe { std::ptr::write_volatile(start.as_ptr().add(offset), 0) };
        }
        Some(block)
    }

    /// The block's start, its ownership handed to the caller (to park it
    /// in the block pool's lock-free slots); [`Block::from_raw`] takes it
    /// back.
    pub(super) fn into_raw(self) -> NonNull<u8> {
        let start = self.start();
        std::mem::forget(self);
        start
    }

    /// The block [`Block::into_raw`] gave up.
    ///
    /// # Safety
    /// `start` came from `into_raw` of a block of exactly `len` bytes, and
    /// no other `Block` has been made from it since (each `into_raw` is
    /// taken back once).
    pub(super) unsafe fn from_raw(start: NonNull<u8>, len: usize) -> Block {
        Block {
            start: start.cast(),
            len,
        }
    }

    fn start(&self) -> NonNull<u8> {
        self.start.cast()
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.start.as_ptr(), self.len);
        // SAFETY: `slice` is exactly the pointer and length `Box::into_raw`
        // returned in `Block::new`, and a block is dropped once.
        drop(unsafe { Box::from_raw(slice) });
    }
}

impl Arena {
    /// An arena for a memtable of about `capacity` bytes, allocating every
    /// block it needs, with a node chunk per CPU (the engine's memtables
    /// are `pooled`, replay's have one chunk: this is the tests').
    #[cfg(test)]
    pub fn new(capacity: usize) -> Arena {
        Self::with_node_shards(capacity, node_shard_count())
    }

    /// As [`Arena::new`], with one node chunk: for a memtable one thread
    /// fills (WAL replay), whose size accounting must not depend on the
    /// CPUs that thread ran on.
    pub fn with_one_node_chunk(capacity: usize) -> Arena {
        Self::with_node_shards(capacity, 1)
    }

    /// As [`Arena::new`], with `node_shards` node chunks (a power of two).
    fn with_node_shards(capacity: usize, node_shards: usize) -> Arena {
        debug_assert!(node_shards.is_power_of_two());
        let block_bytes = block_bytes_for(capacity);
        Arena {
            blocks: Mutex::new(Blocks {
                owned: Vec::new(),
                next: NonNull::dangling(),
                left: 0,
            }),
            block_bytes,
            allocated: AtomicUsize::new(0),
            pool: None,
            nodes: (0..node_shards)
                .map(|_| {
                    NodeShard(Mutex::new(NodeChunk {
                        next: NonNull::dangling(),
                        left: 0,
                    }))
                })
                .collect(),
            node_chunk_bytes: node_chunk_bytes_for(capacity, node_shards),
        }
    }

    /// An arena for a memtable of about `capacity` bytes that takes its
    /// blocks from `pool` while it has some, and gives them back when
    /// dropped; unless the pool's blocks are of another size.
    pub fn pooled(capacity: usize, pool: &Arc<BlockPool>) -> Arena {
        let mut arena = Arena::with_node_shards(capacity, pool.node_shards());
        if pool.block_bytes() == arena.block_bytes {
            arena.pool = Some(Arc::clone(pool));
        }
        arena
    }

    /// Bytes of all blocks allocated so far.
    pub fn allocated_bytes(&self) -> usize {
        self.allocated.load(Ordering::Relaxed)
    }

    /// Reserve `len` bytes for the caller alone to fill.
    pub fn reserve(&self, len: usize) -> Region<'_> {
        if len == 0 {
            return Region::new(NonNull::dangling(), 0);
        }
        let mut blocks = self.blocks.lock();
        if len > self.block_bytes / LARGE_FRACTION {
            let block = self.new_block(len);
            let start = block.start();
            blocks.owned.push(block);
            self.allocated.fetch_add(len, Ordering::Relaxed);
            return Region::new(start, len);
        }
        if blocks.left < len {
            let block = self.new_block(self.block_bytes);
            blocks.next = block.start();
            blocks.left = self.block_bytes;
            blocks.owned.push(block);
            self.allocated
                .fetch_add(self.block_bytes, Ordering::Relaxed);
        }
        let start = blocks.next;
        // SAFETY: `len <= left`, so `start + len` stays inside (or one past
        // the end of) the current block.
        blocks.next = unsafe { start.add(len) };
        blocks.left -= len;
        Region::new(start, len)
    }

    /// A block of `len` bytes: through the pool if it is of the pool's
    /// size (so the pool counts every block it may get back), else from
    /// the allocator.
    fn new_block(&self, len: usize) -> Block {
        match &self.pool {
            Some(pool) if len == self.block_bytes => pool.take_or_allocate(),
            _ => Block::new(len),
        }
    }

    /// Memory for one skiplist node of `layout`, from the chunk of the CPU
    /// the caller runs on; valid until the arena is dropped.
    fn allocate_node(&self, layout: Layout) -> NonNull<u8> {
        let cpu = crate::cpu::current_cpu().unwrap_or(0) as usize;
        let shard = &self.nodes[cpu & (self.nodes.len() - 1)];
        let mut chunk = shard.0.lock();
        // `align` is a power of two: the bytes from `next` to the next
        // multiple of it.
        let padding =
            |next: NonNull<u8>| next.as_ptr().addr().wrapping_neg() & (layout.align() - 1);
        let mut pad = padding(chunk.next);
        if chunk.left < pad + layout.size() {
            // The chunk's tail (under one node) is left unused.
            let bytes = self.node_chunk_bytes.max(layout.size() + layout.align());
            let (next, left) = self.reserve(bytes).into_raw();
            chunk.next = next;
            chunk.left = left;
            pad = padding(next);
        }
        // SAFETY: `pad + size <= left` (a fresh chunk has room for the
        // node at any alignment), so both stay inside the chunk's bytes.
        let at = unsafe { chunk.next.add(pad) };
        chunk.next = unsafe { at.add(layout.size()) };
        chunk.left -= pad + layout.size();
        at
    }
}

// SAFETY: `allocate` hands out bytes of this arena's blocks reserved for
// one node alone (`allocate_node`: a node chunk's bytes are the chunk's
// alone, and a node is carved from them under the chunk's lock), aligned
// as asked, valid until the arena is dropped; the skip list holds an
// `Arc` of the arena for as long as any node may be reached, deferred
// destructions included. A node is freed with its arena, so `deallocate`
// does nothing.
unsafe impl NodeAlloc for Arena {
    fn allocate(&self, layout: Layout) -> *mut u8 {
        self.allocate_node(layout).as_ptr()
    }

    unsafe fn deallocate(&self, _ptr: *mut u8, _layout: Layout) {}

    /// Nodes go with the arena: a dropped memtable's skiplist need not
    /// walk its nodes (a cache miss each, some 400,000 per 64 MiB).
    fn frees_nodes(&self) -> bool {
        false
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            // The last `Arc` of the arena is gone: the memtable's, its
            // skiplist's (held until its last node was destroyed) and its
            // readers'. No node or entry is left, so the bytes are free to
            // be written over by the next memtable.
            pool.give_back(std::mem::take(&mut self.blocks.get_mut().owned));
        }
    }
}

/// Bytes of an arena reserved for one writer, filled front to back.
pub struct Region<'a> {
    next: NonNull<u8>,
    left: usize,
    _arena: PhantomData<&'a Arena>,
}

impl Region<'_> {
    fn new(next: NonNull<u8>, left: usize) -> Self {
        Region {
            next,
            left,
            _arena: PhantomData,
        }
    }

    /// Copy `bytes` into the region and return where they now live.
    ///
    /// # Panics
    /// If the region has fewer than `bytes.len()` bytes left: the caller
    /// reserved too little, a bug in the memtable.
    pub fn push(&mut self, bytes: &[u8]) -> NonNull<u8> {
        assert!(bytes.len() <= self.left, "arena region overrun");
        let at = self.next;
        // SAFETY: `at..at + len` lies inside this region (checked above),
        // which `Arena::reserve` handed to this region alone and which no
        // one reads before the entry pointing at it is published; the
        // source is a live slice that cannot overlap arena memory handed
        // out for writing.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.as_ptr(), bytes.len());
            self.next = at.add(bytes.len());
        }
        self.left -= bytes.len();
        at
    }

    /// Bytes not yet filled.
    pub fn left(&self) -> usize {
        self.left
    }

    /// The unfilled bytes' start and length, for a caller that fills
    /// them itself (the node chunks).
    fn into_raw(self) -> (NonNull<u8>, usize) {
        (self.next, self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn read(at: NonNull<u8>, len: usize) -> Vec<u8> {
        // SAFETY: `at..at + len` was filled by `Region::push` in an arena
        // the caller keeps alive.
        unsafe { std::slice::from_raw_parts(at.as_ptr(), len) }.to_vec()
    }

    #[test]
    fn small_and_large_reservations_hold_their_bytes() {
        let arena = Arena::new(64 << 10);
        let mut placed = Vec::new();
        for i in 0..2000usize {
            // Mostly small, now and then larger than a quarter block.
            let len = if i % 97 == 0 { 5000 } else { i % 300 };
            let bytes: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            let mut region = arena.reserve(len);
            let at = region.push(&bytes);
            assert_eq!(region.left(), 0);
            placed.push((at, bytes));
        }
        for (at, bytes) in &placed {
            assert_eq!(&read(*at, bytes.len()), bytes);
        }
        let reserved: usize = placed.iter().map(|(_, b)| b.len()).sum();
        assert!(arena.allocated_bytes() >= reserved);
        // Block tails wasted stay below one small reservation per block.
        assert!(arena.allocated_bytes() < reserved + reserved / 4 + MIN_BLOCK_BYTES);
    }

    /// What `work(arena, t)` returns on each of four threads `t` sharing
    /// `arena`.
    fn on_four_threads<T: Send + 'static>(
        arena: &Arc<Arena>,
        work: fn(&Arena, u8) -> Vec<T>,
    ) -> Vec<Vec<T>> {
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let arena = Arc::clone(arena);
                std::thread::spawn(move || work(&arena, t))
            })
            .collect();
        threads.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn concurrent_writers_get_disjoint_regions() {
        let arena = Arc::new(Arena::new(1 << 20));
        let results = on_four_threads(&arena, |arena, t| {
            let mut placed = Vec::new();
            for i in 0..5000usize {
                let len = 1 + (i * 7 + t as usize) % 200;
                let mut region = arena.reserve(2 * len);
                let first = region.push(&vec![t; len]);
                let second = region.push(&vec![!t; len]);
                placed.push((first.as_ptr() as usize, second.as_ptr() as usize, len));
            }
            placed
        });
        // Every byte still holds what its writer put there: no region was
        // handed to two writers.
        for (t, placed) in results.iter().enumerate() {
            for &(first, second, len) in placed {
                let first = NonNull::new(first as *mut u8).unwrap();
                let second = NonNull::new(second as *mut u8).unwrap();
                assert_eq!(read(first, len), vec![t as u8; len]);
                assert_eq!(read(second, len), vec![!(t as u8); len]);
            }
        }
    }

    #[test]
    fn nodes_are_aligned_disjoint_and_counted_across_threads() {
        let arena = Arc::new(Arena::new(1 << 20));
        let placed: Vec<_> = on_four_threads(&arena, |arena, t| {
            let mut placed = Vec::new();
            for i in 0..3000usize {
                // Node sizes as crossbeam asks for them: a header and
                // entry, then a tower of 1 to 32 pointers.
                let align = if i % 5 == 0 { 16 } else { 8 };
                let size = 48 + 8 * (1 + (i * 7 + t as usize) % 32);
                let layout = Layout::from_size_align(size, align).unwrap();
                let at = arena.allocate(layout);
                assert_eq!(at.addr() % align, 0, "misaligned node");
                let byte = (i as u8) ^ t;
                // SAFETY: `allocate` gave `size` bytes to this thread
                // alone.
                unsafe { at.write_bytes(byte, size) };
                placed.push((at.addr(), size, byte));
            }
            placed
        })
        .into_iter()
        .flatten()
        .collect();
        // Every byte still holds what its node's writer put there: no two
        // nodes overlap.
        for &(addr, size, byte) in &placed {
            let at = NonNull::new(addr as *mut u8).unwrap();
            assert!(
                read(at, size).iter().all(|&b| b == byte),
                "node at {addr:#x} overwritten"
            );
        }
        // The nodes are the arena's: counted in its blocks, with little
        // lost to chunk tails and padding.
        let bytes: usize = placed.iter().map(|&(_, size, _)| size).sum();
        assert!(arena.allocated_bytes() >= bytes);
        assert!(arena.allocated_bytes() < bytes + bytes / 8 + 5 * MAX_BLOCK_BYTES);
    }

    #[test]
    fn half_used_node_chunks_on_every_cpu_hold_at_most_an_eighth() {
        for capacity in [4 << 10, 64 << 10, 1 << 20, 4 << 20, 64 << 20, 1 << 30] {
            let chunk = node_chunk_bytes_for(capacity, node_shard_count());
            assert!(
                chunk * node_shard_count() <= capacity / 8,
                "{chunk} at {capacity}"
            );
            assert!(chunk <= block_bytes_for(capacity) / LARGE_FRACTION);
        }
    }

    #[test]
    fn a_small_arenas_node_chunks_stay_inside_its_blocks() {
        // A chunk of nothing (no capacity): a node is larger than a chunk
        // and still gets its bytes.
        let arena = Arena::new(0);
        assert_eq!(arena.node_chunk_bytes, 0);
        let big = Layout::from_size_align(2000, 8).unwrap();
        let at = arena.allocate(big);
        // SAFETY: `allocate` gave 2000 bytes.
        unsafe { at.write_bytes(0x5A, 2000) };
        let small = arena.allocate(Layout::from_size_align(64, 8).unwrap());
        assert!(
            small.addr() >= at.addr() + 2000 || small.addr() + 64 <= at.addr(),
            "nodes overlap"
        );
        assert!(read(NonNull::new(at).unwrap(), 2000)
            .iter()
            .all(|&b| b == 0x5A));
    }

    #[test]
    #[should_panic(expected = "arena region overrun")]
    fn overrunning_a_region_panics_before_writing() {
        let arena = Arena::new(0);
        let mut region = arena.reserve(3);
        region.push(b"four");
    }

    #[test]
    fn empty_reservations_need_no_block() {
        let arena = Arena::new(1 << 20);
        let mut region = arena.reserve(0);
        region.push(b"");
        assert_eq!(arena.allocated_bytes(), 0);
    }

    #[test]
    fn bytes_written_into_a_reused_block_read_back() {
        let pool = crate::memtable::BlockPool::new(1 << 20);
        let old = Arena::pooled(1 << 20, &pool);
        old.reserve(1000).push(&[0xAA; 1000]);
        drop(old);
        let new = Arena::pooled(1 << 20, &pool);
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let at = new.reserve(1000).push(&bytes);
        assert_eq!(read(at, 1000), bytes);
    }
}
