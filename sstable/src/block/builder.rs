//! Encodes one block.
//!
//! ```text
//! +---------+---------+-----+---------+-------------------+-----------------+
//! | entry 0 | entry 1 | ... | entry n | restarts[r]: u32  | r: u32 LE       |
//! +---------+---------+-----+---------+-------------------+-----------------+
//!                                      u32 LE offsets of restart entries
//!
//! entry:
//! +----------------+------------------+-------------------+-----------+-------+
//! | shared: varint | unshared: varint | value_len: varint | key_delta | value |
//! +----------------+------------------+-------------------+-----------+-------+
//!   key = previous key[..shared] ++ key_delta  (key_delta has `unshared` bytes)
//! ```
//! Every `restart_interval`-th entry is a restart point: it stores its whole
//! key (shared = 0) and its offset is listed in the restart array, so a
//! reader can binary-search the restart points and decode from any of them.
//! The first restart is at offset 0; an empty block is just `[0u32, 1u32]`.

use crate::coding::put_varint32;

/// Builds one block in a buffer that is reused after [`BlockBuilder::reset`].
#[derive(Debug)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    /// Entries since the last restart point.
    counter: usize,
    num_entries: usize,
    last_key: Vec<u8>,
    finished: bool,
}

impl BlockBuilder {
    /// A builder that starts a restart point every `restart_interval`
    /// entries (at least 1).
    pub fn new(restart_interval: usize) -> BlockBuilder {
        debug_assert!(restart_interval >= 1);
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            restart_interval: restart_interval.max(1),
            counter: 0,
            num_entries: 0,
            last_key: Vec::new(),
            finished: false,
        }
    }

    /// Appends an entry. REQUIRES: `key` sorts after the previous key in the
    /// block's order (the caller enforces it), the block is not finished,
    /// and the block stays below 4 GiB (offsets are u32).
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(!self.finished, "add after finish");
        let shared = if self.counter < self.restart_interval {
            common_prefix_len(&self.last_key, key)
        } else {
            self.restarts.push(self.offset_u32());
            self.counter = 0;
            0
        };
        let unshared = key.len() - shared;
        put_varint32(&mut self.buf, shared as u32);
        put_varint32(&mut self.buf, unshared as u32);
        put_varint32(&mut self.buf, value.len() as u32);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(&key[shared..]);
        debug_assert_eq!(self.last_key, key);
        self.counter += 1;
        self.num_entries += 1;
    }

    fn offset_u32(&self) -> u32 {
        debug_assert!(self.buf.len() <= u32::MAX as usize, "block above 4 GiB");
        self.buf.len() as u32
    }

    /// Size of the block if it were finished now.
    #[inline]
    pub fn current_size_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// Appends the restart array and returns the finished block. The
    /// contents stay valid until [`BlockBuilder::reset`].
    pub fn finish(&mut self) -> &[u8] {
        if !self.finished {
            for &r in &self.restarts {
                self.buf.extend_from_slice(&r.to_le_bytes());
            }
            self.buf
                .extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
            self.finished = true;
        }
        &self.buf
    }

    /// Empties the builder, keeping its buffers' capacity.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.restarts.push(0);
        self.counter = 0;
        self.num_entries = 0;
        self.last_key.clear();
        self.finished = false;
    }

    /// True when no entry was added since the last reset.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.num_entries == 0
    }

    /// Entries added since the last reset.
    #[inline]
    pub fn num_entries(&self) -> usize {
        self.num_entries
    }

    /// The last key added (empty if none).
    #[inline]
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }
}

/// Length of the longest common prefix of `a` and `b`.
#[inline]
pub(crate) fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    // Compare 8 bytes at a time; keys in one block usually share long prefixes.
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let (Some(x), Some(y)) = (a.get(i..i + 8), b.get(i..i + 8)) else {
            break;
        };
        let x = u64::from_le_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_le_bytes(y.try_into().unwrap_or_default());
        let diff = x ^ y;
        if diff != 0 {
            return i + (diff.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a.get(i) == b.get(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix() {
        assert_eq!(common_prefix_len(b"", b"abc"), 0);
        assert_eq!(common_prefix_len(b"abc", b"abd"), 2);
        assert_eq!(common_prefix_len(b"abcdefghijk", b"abcdefghijx"), 10);
        assert_eq!(common_prefix_len(b"abcdefgh", b"abcdefgh"), 8);
        assert_eq!(common_prefix_len(b"abcdefghX", b"abcdefgh"), 8);
        assert_eq!(common_prefix_len(b"abcdeXgh12", b"abcdefgh12"), 5);
    }

    #[test]
    fn layout_matches_the_diagram() {
        let mut b = BlockBuilder::new(2);
        b.add(b"apple", b"1");
        b.add(b"apply", b"22");
        b.add(b"banana", b"");
        let estimate = b.current_size_estimate();
        let block = b.finish().to_vec();
        assert_eq!(estimate, block.len());
        let mut expected = Vec::new();
        expected.extend_from_slice(&[0, 5, 1]);
        expected.extend_from_slice(b"apple1");
        expected.extend_from_slice(&[4, 1, 2]);
        expected.extend_from_slice(b"y22");
        let second_restart = expected.len() as u32;
        expected.extend_from_slice(&[0, 6, 0]);
        expected.extend_from_slice(b"banana");
        expected.extend_from_slice(&0u32.to_le_bytes());
        expected.extend_from_slice(&second_restart.to_le_bytes());
        expected.extend_from_slice(&2u32.to_le_bytes());
        assert_eq!(block, expected);
        b.reset();
        assert!(b.is_empty());
        assert_eq!(b.finish(), &[0, 0, 0, 0, 1, 0, 0, 0]);
    }
}
