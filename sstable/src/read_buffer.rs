//! Memory for blocks read from a table, reused instead of freed.
//!
//! A point lookup that misses the block cache reads one block (a 4 KiB
//! page for aligned tables) into memory of its own; the block either
//! enters the cache, pushing out another, or is dropped when the lookup
//! returns. Freshly allocated, each read buffer cost the allocator a
//! malloc and a free, and the kernel zeroing the pages the allocator had
//! given back: with the data in memory and a block cache smaller than it,
//! about 15% of a lookup's time (docs/performance.md, "Fourth pass").
//! So the buffer of a block that is dropped (a lookup's block that did not
//! enter the cache, or one the cache evicts) goes back to a small pool of
//! the thread that drops it, and the next read on that thread takes it.
//!
//! Buffers come in multiples of [`CLASS_BYTES`], so one buffer serves
//! every block of a size class; the pool keeps at most
//! [`POOL_BUFFERS_MAX`] buffers of at most [`POOLED_BYTES_MAX`] each, so
//! a thread holds at most 256 KiB idle.

use std::cell::RefCell;

use bytes::Bytes;

/// Buffer capacities are multiples of this.
const CLASS_BYTES: usize = 4096;
/// Larger buffers (an index, a filter) are freed, not pooled.
const POOLED_BYTES_MAX: usize = 64 << 10;
/// Buffers a thread keeps at most.
const POOL_BUFFERS_MAX: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer for one block read, from this thread's pool when it has one
/// of the right size class; back to the pool of the thread that drops it.
#[derive(Debug)]
pub(crate) struct ReadBuffer(Vec<u8>);

impl ReadBuffer {
    /// A buffer with room for `len` bytes (its contents are whatever a
    /// previous read left: readers overwrite them).
    pub(crate) fn for_len(len: usize) -> ReadBuffer {
        let capacity = len.div_ceil(CLASS_BYTES).max(1) * CLASS_BYTES;
        if capacity <= POOLED_BYTES_MAX {
            let reused = POOL
                .try_with(|pool| {
                    let mut pool = pool.borrow_mut();
                    let at = pool.iter().rposition(|b| b.capacity() == capacity)?;
                    Some(pool.swap_remove(at))
                })
                .ok()
                .flatten();
            if let Some(buf) = reused {
                return ReadBuffer(buf);
            }
        }
        ReadBuffer(Vec::with_capacity(capacity))
    }

    /// The memory to read into.
    pub(crate) fn vec_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    /// Bytes of memory the buffer takes.
    pub(crate) fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// The bytes read, shared without a copy; the buffer goes back to a
    /// pool when the last `Bytes` (or slice) of them is dropped.
    pub(crate) fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for ReadBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        let capacity = self.0.capacity();
        if capacity == 0 || capacity > POOLED_BYTES_MAX || !capacity.is_multiple_of(CLASS_BYTES) {
            return;
        }
        let buf = std::mem::take(&mut self.0);
        // A thread being torn down has no pool any more: the buffer is
        // then freed.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_BUFFERS_MAX {
                pool.push(buf);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_serves_the_next_read_of_its_size_class() {
        let mut first = ReadBuffer::for_len(4000);
        first.vec_mut().extend_from_slice(&[7; 4000]);
        let at = first.0.as_ptr();
        let bytes = first.into_bytes();
        let slice = bytes.slice(10..20);
        drop(bytes);
        // A slice still holds it: not back in the pool yet.
        let other = ReadBuffer::for_len(4096);
        assert_ne!(other.0.as_ptr(), at);
        drop(other);
        drop(slice);
        // Both are pooled now; the one dropped last is taken first.
        let again = ReadBuffer::for_len(4096);
        assert_eq!(again.0.as_ptr(), at);
        assert_eq!(again.0.capacity(), 4096);
        // Another size class does not take it.
        drop(again);
        let larger = ReadBuffer::for_len(4097);
        assert_eq!(larger.0.capacity(), 8192);
        assert_ne!(larger.0.as_ptr(), at);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_small_buffers() {
        let buffers: Vec<_> = (0..POOL_BUFFERS_MAX + 8)
            .map(|_| ReadBuffer::for_len(100))
            .collect();
        drop(buffers);
        let big = ReadBuffer::for_len(POOLED_BYTES_MAX + 1);
        drop(big);
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert_eq!(pool.len(), POOL_BUFFERS_MAX);
            assert!(pool.iter().all(|b| b.capacity() == CLASS_BYTES));
        });
    }
}
