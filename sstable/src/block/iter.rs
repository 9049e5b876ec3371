//! An owning iterator over one block.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::block::cursor::Cursor;
use crate::block::reader::Block;
use crate::error::Result;
use crate::key::{compare_to_target, split_key};

/// Walks a [`Block`] forward and backward and seeks in it.
///
/// Every move returns `Result`: a malformed entry gives
/// `Err(Corruption)` and leaves the iterator unpositioned. `next` and
/// `prev` on an unpositioned iterator do nothing and return `Ok`.
#[derive(Debug)]
pub struct BlockIter {
    block: Block,
    cursor: Cursor,
}

impl BlockIter {
    /// An unpositioned iterator over `block`.
    pub fn new(block: Block) -> BlockIter {
        BlockIter {
            block,
            cursor: Cursor::with_key_buffer(Vec::new()),
        }
    }

    /// The block being iterated.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// True when positioned on an entry.
    #[inline]
    pub fn valid(&self) -> bool {
        self.cursor.valid()
    }

    /// Unpositions the iterator.
    pub fn invalidate(&mut self) {
        self.cursor.invalidate();
    }

    /// Moves to the first entry (unpositioned if the block is empty).
    pub fn seek_to_first(&mut self) -> Result<()> {
        self.cursor.seek_to_first(&self.block.view())
    }

    /// Moves to the last entry (unpositioned if the block is empty).
    pub fn seek_to_last(&mut self) -> Result<()> {
        self.cursor.seek_to_last(&self.block.view())
    }

    /// Moves to the first entry whose key is >= `target` in internal-key
    /// order (data and index blocks).
    pub fn seek(&mut self, target: &[u8]) -> Result<()> {
        let (user_key, trailer) = split_key(target);
        self.cursor.seek_by(&self.block.view(), |k| {
            compare_to_target(k, user_key, trailer)
        })
    }

    /// Moves to the first entry for which `cmp(key)` is not `Less`, where
    /// `cmp` orders an entry's key against the target (e.g. `|k| k.cmp(t)`
    /// for the bytewise order of meta blocks).
    pub fn seek_by<F: Fn(&[u8]) -> Ordering>(&mut self, cmp: F) -> Result<()> {
        self.cursor.seek_by(&self.block.view(), cmp)
    }

    /// Moves to the next entry.
    #[inline]
    #[expect(
        clippy::should_implement_trait,
        reason = "a cursor move that can fail, not an item-yielding Iterator"
    )]
    pub fn next(&mut self) -> Result<()> {
        self.cursor.next(&self.block.view())
    }

    /// Moves to the previous entry.
    pub fn prev(&mut self) -> Result<()> {
        self.cursor.prev(&self.block.view())
    }

    /// Current key (empty when unpositioned).
    #[inline]
    pub fn key(&self) -> &[u8] {
        if self.valid() {
            self.cursor.key()
        } else {
            &[]
        }
    }

    /// Current value (empty when unpositioned).
    #[inline]
    pub fn value(&self) -> &[u8] {
        if !self.valid() {
            return &[];
        }
        let (start, end) = self.cursor.value_range();
        self.block.data().get(start..end).unwrap_or_default()
    }

    /// Current value as a zero-copy slice of the block.
    pub fn value_bytes(&self) -> Bytes {
        if !self.valid() {
            return Bytes::new();
        }
        let (start, end) = self.cursor.value_range();
        let data = self.block.data();
        if start <= end && end <= data.len() {
            data.slice(start..end)
        } else {
            Bytes::new()
        }
    }

    /// Offset of the current entry within the block.
    pub fn entry_offset(&self) -> usize {
        self.cursor.entry_offset()
    }

    /// Restart point at or before the current entry (the entry's ordinal in
    /// a block with restart interval 1).
    pub fn restart_index(&self) -> usize {
        self.cursor.restart_index()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockBuilder;
    use crate::error::Error;

    fn build(keys: &[&[u8]], interval: usize) -> Block {
        let mut b = BlockBuilder::new(interval);
        for k in keys {
            b.add(k, &[k.len() as u8]);
        }
        Block::new(Bytes::copy_from_slice(b.finish())).unwrap()
    }

    fn keys_forward(it: &mut BlockIter) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        it.seek_to_first().unwrap();
        while it.valid() {
            out.push(it.key().to_vec());
            it.next().unwrap();
        }
        out
    }

    #[test]
    fn iterate_both_ways_and_seek() {
        let keys: Vec<Vec<u8>> = (0..50u32)
            .map(|i| format!("key{:04}", i * 2).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        for interval in [1, 2, 3, 16, 100] {
            let block = build(&refs, interval);
            let mut it = block.iter();
            assert_eq!(keys_forward(&mut it), keys);
            let mut back = Vec::new();
            it.seek_to_last().unwrap();
            while it.valid() {
                back.push(it.key().to_vec());
                it.prev().unwrap();
            }
            back.reverse();
            assert_eq!(back, keys);
            // next/prev when unpositioned are no-ops.
            it.next().unwrap();
            it.prev().unwrap();
            assert!(!it.valid());
            for i in 0..101u32 {
                let target = format!("key{i:04}").into_bytes();
                it.seek_by(|k| k.cmp(&target)).unwrap();
                let expect = keys.iter().find(|k| **k >= target);
                assert_eq!(it.valid(), expect.is_some());
                if let Some(e) = expect {
                    assert_eq!(it.key(), e.as_slice());
                    assert_eq!(it.value(), &[e.len() as u8]);
                }
                // Seeking again from here (the shortcut path) agrees.
                let target2 = format!("key{:04}", (i * 37) % 101).into_bytes();
                it.seek_by(|k| k.cmp(&target2)).unwrap();
                let expect2 = keys.iter().find(|k| **k >= target2);
                assert_eq!(it.valid().then(|| it.key().to_vec()), expect2.cloned());
            }
        }
    }

    /// A walk of steps forward and back, seeks and jumps to either end
    /// lands where a model of the sorted keys says, whatever the restart
    /// interval: backward steps taken from the entries a rescan kept
    /// (`Cursor::prev`) agree with rescans, and a move in between makes
    /// the next step back start over rather than use stale entries.
    #[test]
    fn a_random_walk_both_ways_agrees_with_the_model() {
        // Keys with shared prefixes of varying length, and values of
        // varying size, so that offsets and key deltas differ per entry.
        let keys: Vec<Vec<u8>> = (0..200u32)
            .map(|i| format!("k{:03}{}", i, "x".repeat((i % 7) as usize)).into_bytes())
            .collect();
        for interval in [1, 2, 3, 5, 16] {
            let mut b = BlockBuilder::new(interval);
            for (i, k) in keys.iter().enumerate() {
                b.add(k, &vec![i as u8; i % 11]);
            }
            let block = Block::new(Bytes::copy_from_slice(b.finish())).unwrap();
            let mut it = block.iter();
            let mut at: Option<usize> = None;
            let mut rng = 0x2545_f491_4f6c_dd1du64 ^ interval as u64;
            for _ in 0..5_000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                match rng % 16 {
                    0..=6 => {
                        it.prev().unwrap();
                        at = at.and_then(|i| i.checked_sub(1));
                    }
                    7..=11 => {
                        it.next().unwrap();
                        at = at.map(|i| i + 1).filter(|&i| i < keys.len());
                    }
                    12 => {
                        it.seek_to_last().unwrap();
                        at = Some(keys.len() - 1);
                    }
                    13 => {
                        it.seek_to_first().unwrap();
                        at = Some(0);
                    }
                    _ => {
                        let i = (rng >> 8) as usize % keys.len();
                        let target = keys[i].clone();
                        it.seek_by(|k| k.cmp(&target)).unwrap();
                        at = Some(i);
                    }
                }
                assert_eq!(it.valid(), at.is_some(), "interval {interval}");
                if let Some(i) = at {
                    assert_eq!(it.key(), keys[i].as_slice(), "interval {interval}");
                    assert_eq!(it.value(), vec![i as u8; i % 11].as_slice());
                    // The same place as a fresh seek finds it.
                    let mut fresh = block.iter();
                    fresh.seek_by(|k| k.cmp(&keys[i])).unwrap();
                    assert_eq!(it.entry_offset(), fresh.entry_offset());
                    assert_eq!(it.restart_index(), fresh.restart_index());
                }
            }
        }
    }

    #[test]
    fn empty_block() {
        let block = build(&[], 4);
        let mut it = block.iter();
        it.seek_to_first().unwrap();
        assert!(!it.valid());
        it.seek_to_last().unwrap();
        assert!(!it.valid());
        it.seek_by(|k| k.cmp(b"x")).unwrap();
        assert!(!it.valid());
    }

    #[test]
    fn entry_past_restart_array_is_corruption() {
        // One entry claiming a 100-byte value in a tiny block.
        let mut raw = vec![0u8, 1, 100, b'k'];
        raw.extend_from_slice(&0u32.to_le_bytes());
        raw.extend_from_slice(&1u32.to_le_bytes());
        let mut it = Block::new(Bytes::from(raw)).unwrap().iter();
        let err = it.seek_to_first().unwrap_err();
        assert!(matches!(err, Error::Corruption { offset: 0, .. }), "{err}");
        assert!(!it.valid());
    }
}
