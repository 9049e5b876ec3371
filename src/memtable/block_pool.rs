//! Arena blocks kept from one memtable for the next.
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
//! The pool keeps at most one memtable's worth (the database's
//! `write_buffer_size`), so memory in memtables and pool together stays
//! within what `max_write_buffer_number` memtables may hold anyway: a
//! rotated memtable's blocks come back when its flush drops it, while the
//! active memtable takes them. A database that goes idle after writing
//! keeps up to that much until it writes again or closes, as RocksDB's
//! memtable arenas stay in glibc's heap after a flush. The pooled bytes are
//! not charged to `db_write_buffer_size` (a budget of memtables, which
//! decides when to flush: charging blocks no memtable holds would flush
//! for nothing); a process budgeting memory counts them from
//! `strata.memtable-pool-bytes`.
//!
//! Only blocks of one size are kept (the arena block size of a memtable of
//! `write_buffer_size`: 1 MiB for 8 MiB and more); an arena of another
//! block size (a keyspace with its own `write_buffer_size`) allocates and
//! frees as before, and so do the blocks a large value gets to itself.

use super::arena::{block_bytes_for, Block};
use parking_lot::Mutex;
use std::sync::Arc;

pub struct BlockPool {
    /// Blocks no memtable uses. A leaf lock, held to push or pop.
    free: Mutex<Vec<Block>>,
    block_bytes: usize,
    max_blocks: usize,
}

impl BlockPool {
    /// A pool for the arenas of memtables of `write_buffer_size` bytes,
    /// keeping at most that many bytes of blocks.
    pub fn new(write_buffer_size: usize) -> Arc<BlockPool> {
        let block_bytes = block_bytes_for(write_buffer_size);
        Arc::new(BlockPool {
            free: Mutex::new(Vec::new()),
            block_bytes,
            max_blocks: write_buffer_size / block_bytes,
        })
    }

    /// The size of the blocks this pool keeps.
    pub(super) fn block_bytes(&self) -> usize {
        self.block_bytes
    }

    /// A kept block, if there is one.
    pub(super) fn take(&self) -> Option<Block> {
        self.free.lock().pop()
    }

    /// Keep the blocks of this pool's size, up to its bound; free the rest
    /// (outside the lock: freeing a large block may unmap it).
    pub(super) fn give_back(&self, blocks: Vec<Block>) {
        let mut unkept = Vec::new();
        {
            let mut free = self.free.lock();
            for block in blocks {
                if block.len() == self.block_bytes && free.len() < self.max_blocks {
                    free.push(block);
                } else {
                    unkept.push(block);
                }
            }
        }
        drop(unkept);
    }

    /// Bytes of the blocks kept now.
    pub fn pooled_bytes(&self) -> usize {
        self.free.lock().len() * self.block_bytes
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

    #[test]
    fn a_dropped_arena_hands_its_blocks_to_the_next_one() {
        let pool = BlockPool::new(8 << 20);
        let first = Arena::pooled(8 << 20, &pool);
        let used = first_block(&first);
        assert_eq!(pool.pooled_bytes(), 0);
        drop(first);
        assert_eq!(pool.pooled_bytes(), 1 << 20, "the arena's one block");
        let second = Arena::pooled(8 << 20, &pool);
        assert_eq!(first_block(&second), used, "a new block, not the kept one");
        assert_eq!(pool.pooled_bytes(), 0);
    }

    #[test]
    fn the_pool_keeps_at_most_one_memtable_of_blocks_of_its_size() {
        let pool = BlockPool::new(4 << 20);
        let block = pool.block_bytes();
        assert_eq!(block, 512 << 10);
        let arena = Arena::pooled(4 << 20, &pool);
        // Twelve blocks' worth and a value large enough for its own block.
        for _ in 0..12 * 8 {
            arena.reserve(block / 8).push(&vec![7; block / 8]);
        }
        arena.reserve(2 * block).push(&vec![9; 2 * block]);
        drop(arena);
        assert_eq!(pool.pooled_bytes(), 4 << 20, "eight blocks kept");
        // An arena of another block size neither takes nor gives.
        let other = Arena::pooled(64 << 20, &pool);
        first_block(&other);
        drop(other);
        assert_eq!(pool.pooled_bytes(), 4 << 20);
    }
}
