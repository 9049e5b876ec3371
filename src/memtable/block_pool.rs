//! Arena blocks kept from one memtable for the next, and prepared ahead
//! of the memtable that will want them.
//!
//! Why: a flushed memtable's arena returned its blocks (a memtable's worth,
//! 64 MiB by default) to the allocator, which gave them back to the
//! operating system soon after (mimalloc purges freed pages after 10 ms);
//! the next memtable's blocks were then fresh pages, faulted in and zeroed
//! by the kernel on the writer's first store into each. With 4 KiB values
//! that was a 2 MiB huge page zeroed inside one write about every 500
//! writes, 2.6-2.8 ms each on this machine's virtual CPU: 266 of 200,000
//! writes (fillrandom then overwrite) took over 0.4 ms, and they set the
//! p99.9 (docs/performance.md, "Large values: the pages a memtable
//! writes"). Blocks kept here are resident already: the next memtable
//! writes into them at memory speed.
//!
//! Kept blocks come back only when a flush drops a memtable, so the first
//! memtables of a database (and a memtable that fills while its
//! predecessor still flushes) still faulted fresh pages on the write path:
//! in fillbatch that was a p99 per batch of 3.4-5.3 ms in a quarter of the
//! runs, against RocksDB's 0.8-1.3 (docs/performance.md, "Twentieth
//! session"). So the pool also *prepares* blocks: a background thread
//! (`strata-memtable-blocks`, [`BlockPool::run_preparer`]) allocates
//! blocks and touches every page of them while the memtables' blocks
//! outnumber the pool's, so that the next memtable finds as many blocks
//! ready as the current one has taken. The page faults still cost the
//! same CPU time, but on a thread no writer waits for: it runs at idle
//! CPU priority (`cpu::run_only_when_idle`), so it never takes a CPU a
//! writer wants, and it holds no lock: the pool is a fixed array of
//! slots, each empty or one block, filled and emptied with atomic
//! swaps. (A mutex here would let a writer wait behind the idle thread
//! preempted while holding it, for as long as the CPUs stay busy.)
//!
//! Memory: the pool keeps at most one memtable's worth (the database's
//! `write_buffer_size`), and prepares only while the blocks of its size in
//! memtables and in the pool together are fewer than two memtables'
//! worth, what the default `max_write_buffer_number` of 2 memtables may
//! hold anyway: a rotated memtable's blocks come back when its flush drops
//! it, while the active memtable takes them. A database holding little
//! data holds at most as many prepared blocks as its memtable has taken
//! (one block, 1 MiB, for a few keys). A database that goes idle after
//! writing keeps up to a memtable's worth until it writes again or
//! closes, as RocksDB's memtable arenas stay in glibc's heap after a
//! flush. The pooled bytes are not charged to `db_write_buffer_size` (a
//! budget of memtables, which decides when to flush: charging blocks no
//! memtable holds would flush for nothing); a process budgeting memory
//! counts them from `strata.memtable-pool-bytes`.
//!
//! Only blocks of one size are kept (the arena block size of a memtable of
//! `write_buffer_size`: 1 MiB for 8 MiB and more); an arena of another
//! block size (a keyspace with its own `write_buffer_size`) allocates and
//! frees as before, and so do the blocks a large value gets to itself.
//! With `inline_background_work` there is no preparer: blocks are kept,
//! not prepared.

use super::arena::{block_bytes_for, node_shard_count, Block};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;

pub struct BlockPool {
    /// One memtable's worth of slots, each null or the start of a block of
    /// `block_bytes` the pool owns ([`Block::into_raw`]).
    slots: Box<[AtomicPtr<u8>]>,
    /// Blocks in slots, plus places reserved for blocks on their way into
    /// one (given back, or being prepared): at most `slots.len()`, so a
    /// reserved place always finds an empty slot.
    ready: AtomicUsize,
    /// Blocks of this pool's size that arenas hold now: taken from the
    /// pool or allocated through it ([`BlockPool::take_or_allocate`]),
    /// not given back yet.
    in_arenas: AtomicUsize,
    /// Set at close: the preparer returns, and nothing is prepared again.
    stopped: AtomicBool,
    /// The preparer's thread, to unpark when blocks are wanted.
    preparer: OnceLock<Thread>,
    block_bytes: usize,
    /// The node chunks of the arenas taking blocks from this pool: one per
    /// CPU, or one alone ([`BlockPool::with_one_node_chunk`]).
    node_shards: usize,
}

impl BlockPool {
    /// A pool for the arenas of memtables of `write_buffer_size` bytes,
    /// keeping at most that many bytes of blocks.
    pub fn new(write_buffer_size: usize) -> Arc<BlockPool> {
        Self::with_node_shards(write_buffer_size, node_shard_count())
    }

    fn with_node_shards(write_buffer_size: usize, node_shards: usize) -> Arc<BlockPool> {
        let block_bytes = block_bytes_for(write_buffer_size);
        let max_blocks = write_buffer_size / block_bytes;
        Arc::new(BlockPool {
            slots: (0..max_blocks)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            ready: AtomicUsize::new(0),
            in_arenas: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            preparer: OnceLock::new(),
            block_bytes,
            node_shards,
        })
    }

    /// As [`BlockPool::new`], for arenas that carve every node from one
    /// chunk instead of one per CPU: a database with
    /// `inline_background_work` is driven from one thread, and per-CPU
    /// chunks would make where its memtables fill up (and so its files)
    /// depend on which CPUs the scheduler ran that thread on.
    pub fn with_one_node_chunk(write_buffer_size: usize) -> Arc<BlockPool> {
        Self::with_node_shards(write_buffer_size, 1)
    }

    /// How many node chunks an arena of this pool has.
    pub(super) fn node_shards(&self) -> usize {
        self.node_shards
    }

    /// The size of the blocks this pool keeps.
    pub(super) fn block_bytes(&self) -> usize {
        self.block_bytes
    }

    fn max_blocks(&self) -> usize {
        self.slots.len()
    }

    /// A block of this pool's size for an arena: a kept one if there is
    /// one, else a fresh one. Either way it counts as the arenas' until
    /// given back, and the preparer hears that one more is wanted.
    pub(super) fn take_or_allocate(&self) -> Block {
        self.in_arenas.fetch_add(1, Ordering::SeqCst);
        let kept = self.take();
        // Pairs with the fence in `run_preparer`: either the preparer sees
        // this arena's count, or this sees the preparer to wake.
        fence(Ordering::SeqCst);
        if self.wants_block() {
            if let Some(preparer) = self.preparer.get() {
                preparer.unpark();
            }
        }
        kept.unwrap_or_else(|| Block::new(self.block_bytes))
    }

    /// A block from the slots, if one is there.
    fn take(&self) -> Option<Block> {
        for slot in self.slots.iter() {
            if slot.load(Ordering::Relaxed).is_null() {
                continue;
            }
            let Some(start) = NonNull::new(slot.swap(std::ptr::null_mut(), Ordering::AcqRel))
            else {
                continue;
            };
            self.ready.fetch_sub(1, Ordering::SeqCst);
            // SAFETY: a non-null slot holds the start of a block of
            // `block_bytes` that `park` put there with `into_raw`, and the
            // swap took it out for this caller alone.
            return Some(unsafe { Block::from_raw(start, self.block_bytes) });
        }
        None
    }

    /// Reserve a place for one more block, if the pool has room and
    /// `wanted(ready)` holds.
    fn reserve_place(&self, wanted: impl Fn(usize) -> bool) -> bool {
        let max = self.max_blocks();
        self.ready
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ready| {
                (ready < max && wanted(ready)).then_some(ready + 1)
            })
            .is_ok()
    }

    /// Put `block` in an empty slot, for which a place was reserved.
    fn park(&self, block: Block) {
        debug_assert_eq!(block.len(), self.block_bytes);
        let start = block.into_raw().as_ptr();
        // The reservation keeps blocks in slots (plus the others reserved)
        // at most the slots' number, so an empty slot exists at any moment;
        // a pass can miss it only while other threads move blocks.
        loop {
            for slot in self.slots.iter() {
                if slot
                    .compare_exchange(
                        std::ptr::null_mut(),
                        start,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    return;
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Keep the blocks of this pool's size, up to its bound; free the rest.
    /// Every block of this size an arena gives back came from
    /// [`take_or_allocate`](Self::take_or_allocate).
    pub(super) fn give_back(&self, blocks: Vec<Block>) {
        for block in blocks {
            if block.len() != self.block_bytes {
                continue;
            }
            let counted = self
                .in_arenas
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            debug_assert!(counted.is_ok(), "a block given back was never counted");
            if self.reserve_place(|_| true) {
                self.park(block);
            }
            // Else `block` is freed here.
        }
    }

    /// Whether the preparer should make one more block: fewer ready than
    /// the memtables hold, below the pool's bound and below two
    /// memtables' worth of blocks in all. (The counts are read apart, so
    /// the bound may be passed by a block while arenas take and give.)
    fn wants_block(&self) -> bool {
        let in_arenas = self.in_arenas.load(Ordering::SeqCst);
        let ready = self.ready.load(Ordering::SeqCst);
        !self.stopped.load(Ordering::SeqCst) && Self::wanted(ready, in_arenas, self.max_blocks())
    }

    fn wanted(ready: usize, in_arenas: usize, max_blocks: usize) -> bool {
        ready < in_arenas && ready + in_arenas < 2 * max_blocks
    }

    /// Prepare the blocks wanted now, without waiting for more to be
    /// wanted: reserve a place, then allocate the block and touch its
    /// pages.
    pub(crate) fn prepare_wanted(&self) {
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let in_arenas = self.in_arenas.load(Ordering::SeqCst);
            let max = self.max_blocks();
            if !self.reserve_place(|ready| Self::wanted(ready, in_arenas, max)) {
                return;
            }
            match Block::resident(self.block_bytes, &self.stopped) {
                Some(block) => self.park(block),
                None => {
                    // Stopped halfway: the place goes unused.
                    self.ready.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            }
        }
    }

    /// The preparer thread's body: prepare blocks whenever they are
    /// wanted, until [`stop_preparer`](Self::stop_preparer).
    pub(crate) fn run_preparer(&self) {
        let _ = self.preparer.set(std::thread::current());
        // Pairs with the fences in `take_or_allocate` and `stop_preparer`.
        fence(Ordering::SeqCst);
        while !self.stopped.load(Ordering::SeqCst) {
            if self.wants_block() {
                self.prepare_wanted();
            } else {
                // An unpark since the check (a block taken, a stop) makes
                // this return at once; so may nothing, and the loop looks
                // again.
                std::thread::park();
            }
        }
    }

    /// Make the preparer return (at close); blocks are kept, not prepared,
    /// from then on.
    pub(crate) fn stop_preparer(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if let Some(preparer) = self.preparer.get() {
            preparer.unpark();
        }
    }

    /// Bytes of the blocks kept now (those on their way into the pool
    /// included).
    pub fn pooled_bytes(&self) -> usize {
        self.ready.load(Ordering::SeqCst) * self.block_bytes
    }
}

impl Drop for BlockPool {
    fn drop(&mut self) {
        for slot in self.slots.iter_mut() {
            if let Some(start) = NonNull::new(*slot.get_mut()) {
                // SAFETY: as in `take`: the slot owned the block, and the
                // pool is going, so nothing else can take it.
                drop(unsafe { Block::from_raw(start, self.block_bytes) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memtable::arena::Arena;

    /// Where an arena put a one-byte reservation: which block it used.
    fn first_block(arena: &Arena) -> usize {
        let mut region = arena.reserve(1);
        region.push(b"x").as_ptr() as usize
    }

    /// Make an arena of `pool`'s memtable size take `blocks` blocks.
    fn take_blocks(arena: &Arena, pool: &BlockPool, blocks: usize) {
        let quarter = pool.block_bytes() / 4;
        for _ in 0..blocks * 4 {
            arena.reserve(quarter).push(&vec![3; quarter]);
        }
    }

    #[test]
    fn a_dropped_arena_hands_its_blocks_to_the_next_one() {
        let pool = BlockPool::new(8 << 20);
        let first = Arena::pooled(8 << 20, &pool);
        let used = first_block(&first);
        assert_eq!(pool.pooled_bytes(), 0);
        drop(first);
        assert_eq!(pool.pooled_bytes(), 1 << 20, "the arena's one block");
        let second = Arena::pooled(8 << 20, &pool);
        assert_eq!(first_block(&second), used, "the kept block, not a new one");
        assert_eq!(pool.pooled_bytes(), 0);
    }

    #[test]
    fn the_pool_keeps_at_most_one_memtable_of_blocks_of_its_size() {
        let pool = BlockPool::new(4 << 20);
        let block = pool.block_bytes();
        assert_eq!(block, 512 << 10);
        let arena = Arena::pooled(4 << 20, &pool);
        // Twelve blocks' worth, a value large enough for its own block
        // and one exactly a block long (taken through the pool).
        for _ in 0..12 * 8 {
            arena.reserve(block / 8).push(&vec![7; block / 8]);
        }
        arena.reserve(2 * block).push(&vec![9; 2 * block]);
        arena.reserve(block).push(&vec![8; block]);
        drop(arena);
        assert_eq!(pool.pooled_bytes(), 4 << 20, "eight blocks kept");
        assert_eq!(
            pool.in_arenas.load(Ordering::SeqCst),
            0,
            "every block came back"
        );
        // An arena of another block size neither takes nor gives.
        let other = Arena::pooled(64 << 20, &pool);
        first_block(&other);
        drop(other);
        assert_eq!(pool.pooled_bytes(), 4 << 20);
    }

    #[test]
    fn the_preparer_readies_as_many_blocks_as_the_memtable_took() {
        let pool = BlockPool::new(8 << 20);
        let arena = Arena::pooled(8 << 20, &pool);
        take_blocks(&arena, &pool, 3);
        assert_eq!(pool.pooled_bytes(), 0, "nothing prepared yet");
        pool.prepare_wanted();
        assert_eq!(pool.pooled_bytes(), 3 << 20);
        // The next memtable takes the prepared blocks, not fresh ones.
        let next = Arena::pooled(8 << 20, &pool);
        take_blocks(&next, &pool, 2);
        assert_eq!(pool.pooled_bytes(), 1 << 20);
        // Five blocks in arenas, one ready: four more are wanted.
        pool.prepare_wanted();
        assert_eq!(pool.pooled_bytes(), 5 << 20);
    }

    #[test]
    fn preparing_stops_at_two_memtables_of_blocks_in_all() {
        let pool = BlockPool::new(8 << 20);
        let full = Arena::pooled(8 << 20, &pool);
        take_blocks(&full, &pool, 8);
        pool.prepare_wanted();
        assert_eq!(pool.pooled_bytes(), 8 << 20, "one memtable's worth");
        // The next memtable takes three of them while `full` flushes:
        // eleven blocks in arenas and five ready make two memtables'
        // worth, so none is prepared.
        let next = Arena::pooled(8 << 20, &pool);
        take_blocks(&next, &pool, 3);
        pool.prepare_wanted();
        assert_eq!(pool.pooled_bytes(), 5 << 20);
        // The flush drops `full`: the pool keeps at most a memtable's
        // worth of what comes back.
        drop(full);
        assert_eq!(pool.pooled_bytes(), 8 << 20);
        pool.prepare_wanted();
        assert_eq!(pool.pooled_bytes(), 8 << 20);
        drop(next);
        assert_eq!(pool.in_arenas.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_preparer_thread_prepares_when_woken_and_returns_when_stopped() {
        let pool = BlockPool::new(8 << 20);
        let preparer = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || pool.run_preparer())
        };
        let arena = Arena::pooled(8 << 20, &pool);
        take_blocks(&arena, &pool, 2);
        // Whichever of the two prepares them (places are reserved one at
        // a time), exactly the two blocks wanted have places.
        pool.prepare_wanted();
        assert_eq!(pool.pooled_bytes(), 2 << 20);
        // A stop may catch the thread halfway through a block: it drops
        // the block and gives up its place, so what is counted is what
        // the slots hold.
        pool.stop_preparer();
        preparer.join().unwrap();
        let counted = pool.pooled_bytes() >> 20;
        assert!((1..=2).contains(&counted), "{counted} blocks counted");
        for _ in 0..counted {
            assert!(pool.take().is_some());
        }
        assert!(
            pool.take().is_none(),
            "more blocks in the slots than counted"
        );
        // Stopped: blocks are still kept, no longer prepared.
        take_blocks(&arena, &pool, 1);
        pool.prepare_wanted();
        assert_eq!(pool.pooled_bytes(), 0);
    }
}
