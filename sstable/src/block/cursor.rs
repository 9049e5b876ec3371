//! Positioning within one block: entry decoding, restart binary search,
//! forward and backward steps. Works on a borrowed [`BlockView`] so that
//! owning iterators and the allocation-free `get` path share one decoder.

use std::cmp::Ordering;

use crate::block::reader::BlockView;
use crate::coding::get_varint32;
use crate::error::{Error, Result};
use crate::fence::Fence;

/// `current` of an unpositioned cursor.
const INVALID: usize = usize::MAX;

/// The most bytes a cursor keeps for steps back (`Cursor::passed` and
/// their keys). Past it a rescan keeps only the entries nearest where it
/// stops, and a step back beyond them rescans again: a crafted block
/// (one long key, then thousands of entries sharing all of it) would
/// otherwise make a rescan keep a copy of that key per entry, memory
/// quadratic in the block's size. A restart interval of 16 keys of a few
/// dozen bytes takes about 1 KiB.
pub(crate) const PASSED_BYTES_BUDGET: usize = 32 * 1024;

/// A decoded entry header.
struct Entry {
    shared: usize,
    /// Start of the key delta.
    key_start: usize,
    /// End of the key delta = start of the value.
    value_start: usize,
    /// End of the value = start of the next entry.
    value_end: usize,
}

/// Decodes the entry header at `pos`, checking that the entry ends before
/// `limit` (the restart array). `None` if it does not.
#[inline(always)]
fn decode_entry(data: &[u8], pos: usize, limit: usize) -> Option<Entry> {
    let buf = data.get(pos..limit)?;
    let (shared, unshared, value_len, header_len) = match *buf {
        // Fast path: all three lengths below 128, one byte each.
        [s, u, v, ..] if (s | u | v) < 0x80 => (s as usize, u as usize, v as usize, 3),
        _ => {
            let (s, a) = get_varint32(buf)?;
            let (u, b) = get_varint32(buf.get(a..)?)?;
            let (v, c) = get_varint32(buf.get(a + b..)?)?;
            (s as usize, u as usize, v as usize, a + b + c)
        }
    };
    let key_start = pos + header_len;
    let value_start = key_start.checked_add(unshared)?;
    let value_end = value_start.checked_add(value_len)?;
    if value_end > limit {
        return None;
    }
    Some(Entry {
        shared,
        key_start,
        value_start,
        value_end,
    })
}

/// An entry a backward rescan decoded on its way to the one it stopped
/// at, kept so that the next `prev` need not decode it again.
#[derive(Debug, Clone, Copy)]
struct Passed {
    offset: usize,
    next: usize,
    value_start: usize,
    value_end: usize,
    /// Where its whole key starts in `Cursor::passed_keys` (it runs to
    /// the end: entries are popped in reverse order of their push).
    key_start: usize,
}

/// A position in a block plus the current key, rebuilt from prefix
/// compression in a buffer that is reused across entries and blocks.
///
/// A backward step must rescan from a restart point (keys are stored as
/// deltas from the one before), so a reverse scan would decode half a
/// restart interval per entry. The rescan keeps every entry it passed
/// (`passed`), and the steps back within that interval take them from
/// there: about one decode per entry, as a forward scan (RocksDB's
/// `BlockIter::prev_entries_`).
#[derive(Debug)]
pub(crate) struct Cursor {
    /// Offset of the current entry, [`INVALID`] when unpositioned.
    current: usize,
    /// Offset of the entry after the current one.
    next: usize,
    /// Last restart point at or before `current`.
    restart_index: usize,
    value_start: usize,
    value_end: usize,
    key: Vec<u8>,
    /// The entries before `current` in its restart interval, in block
    /// order, when the last move was a backward rescan or a step back
    /// taken from here (or `seek_to_last`); otherwise stale or empty:
    /// `prev` uses the last one only if it chains to `current`, and a
    /// seek (the only way the cursor moves to another block) empties it.
    passed: Vec<Passed>,
    /// Their whole keys, one after another.
    passed_keys: Vec<u8>,
}

impl Cursor {
    /// An unpositioned cursor that will use `key` as its key buffer.
    pub(crate) fn with_key_buffer(mut key: Vec<u8>) -> Cursor {
        key.clear();
        Cursor {
            current: INVALID,
            next: INVALID,
            restart_index: 0,
            value_start: 0,
            value_end: 0,
            key,
            passed: Vec::new(),
            passed_keys: Vec::new(),
        }
    }

    /// Gives the key buffer back (to be reused).
    pub(crate) fn into_key_buffer(self) -> Vec<u8> {
        self.key
    }

    #[inline]
    pub(crate) fn valid(&self) -> bool {
        self.current != INVALID
    }

    #[inline]
    pub(crate) fn invalidate(&mut self) {
        self.current = INVALID;
        self.next = INVALID;
        // `passed` may stay: an unpositioned cursor moves again only by a
        // seek, which forgets it.
    }

    #[inline]
    fn forget_passed(&mut self) {
        self.passed.clear();
        self.passed_keys.clear();
    }

    /// Whether there is room for entries kept for steps back (reserved,
    /// or grown by a rescan).
    #[inline]
    pub(crate) fn has_room_for_steps_back(&self) -> bool {
        self.passed.capacity() > 0
    }

    /// Bytes the entries kept for steps back take.
    #[inline]
    fn passed_bytes(&self) -> usize {
        self.passed_keys.len() + self.passed.len() * std::mem::size_of::<Passed>()
    }

    /// Room for the entries of one restart interval of `entries` keys of
    /// about `key_bytes` each (within the budget), so that steps back
    /// allocate only for longer keys: a table iterator asks at its first
    /// backward move.
    pub(crate) fn reserve_steps_back(&mut self, entries: usize, key_bytes: usize) {
        let per_entry = std::mem::size_of::<Passed>() + key_bytes;
        let entries = entries.min(PASSED_BYTES_BUDGET / per_entry.max(1));
        self.passed.reserve(entries);
        self.passed_keys.reserve(entries * key_bytes);
    }

    /// Keeps the current entry for a later step back, within the budget:
    /// past it the entries kept so far go (they are the farthest from
    /// where the rescan stops), and an entry larger than the budget on
    /// its own is not kept.
    #[inline]
    fn remember_current(&mut self) {
        let needs = self.key.len() + std::mem::size_of::<Passed>();
        if self.passed_bytes() + needs > PASSED_BYTES_BUDGET {
            self.forget_passed();
            if needs > PASSED_BYTES_BUDGET {
                return;
            }
        }
        self.passed.push(Passed {
            offset: self.current,
            next: self.next,
            value_start: self.value_start,
            value_end: self.value_end,
            key_start: self.passed_keys.len(),
        });
        self.passed_keys.extend_from_slice(&self.key);
    }

    /// Steps back to the entry a rescan passed just before the current
    /// one, if it kept it. The entries kept all lie in the current
    /// restart interval, so `restart_index` stays.
    #[inline]
    fn step_back_to_passed(&mut self) -> bool {
        match self.passed.last() {
            Some(p) if p.next == self.current => {
                let p = *p;
                self.passed.pop();
                self.key.clear();
                self.key.extend_from_slice(&self.passed_keys[p.key_start..]);
                self.passed_keys.truncate(p.key_start);
                self.current = p.offset;
                self.next = p.next;
                self.value_start = p.value_start;
                self.value_end = p.value_end;
                true
            }
            _ => false,
        }
    }

    /// Decodes entries from the restart point the cursor was put at up to
    /// the one that ends at `end`, keeping those before it (for `prev`).
    /// Returns false if none does: the entries ran out first, or one runs
    /// over `end` (a corrupt restart point or length, whose entries do not
    /// chain to it).
    #[inline]
    fn scan_interval_to(&mut self, v: &BlockView<'_>, end: usize) -> Result<bool> {
        loop {
            self.parse_next(v)?;
            if !self.valid() || self.next > end {
                return Ok(false);
            }
            if self.next == end {
                return Ok(true);
            }
            self.remember_current();
        }
    }

    /// Current key. REQUIRES: valid.
    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// Range of the current value in the block. REQUIRES: valid.
    #[inline]
    pub(crate) fn value_range(&self) -> (usize, usize) {
        (self.value_start, self.value_end)
    }

    /// Offset of the current entry in the block. REQUIRES: valid.
    #[inline]
    pub(crate) fn entry_offset(&self) -> usize {
        self.current
    }

    /// Restart point at or before the current entry; for a block with
    /// restart interval 1 (the index) this is the entry's ordinal.
    #[inline]
    pub(crate) fn restart_index(&self) -> usize {
        self.restart_index
    }

    fn corrupt(&mut self, v: &BlockView<'_>, pos: usize, reason: &str) -> Error {
        self.invalidate();
        Error::corruption(v.origin.at(pos), format!("block entry: {reason}"))
    }

    #[inline]
    fn seek_to_restart(&mut self, v: &BlockView<'_>, index: usize) {
        self.forget_passed();
        self.key.clear();
        self.restart_index = index;
        self.current = INVALID;
        self.next = v.restart(index);
    }

    /// Decodes the entry at `self.next`, or becomes invalid at the end of
    /// the entries.
    #[inline]
    fn parse_next(&mut self, v: &BlockView<'_>) -> Result<()> {
        let pos = self.next;
        if pos >= v.restarts_offset {
            self.invalidate();
            return Ok(());
        }
        let Some(e) = decode_entry(v.data, pos, v.restarts_offset) else {
            return Err(self.corrupt(v, pos, "header or lengths run past the entries"));
        };
        if e.shared > self.key.len() {
            return Err(self.corrupt(v, pos, "shared prefix longer than the previous key"));
        }
        let Some(delta) = v.data.get(e.key_start..e.value_start) else {
            return Err(self.corrupt(v, pos, "key out of bounds"));
        };
        self.key.truncate(e.shared);
        self.key.extend_from_slice(delta);
        self.current = pos;
        self.next = e.value_end;
        self.value_start = e.value_start;
        self.value_end = e.value_end;
        while self.restart_index + 1 < v.num_restarts && v.restart(self.restart_index + 1) <= pos {
            self.restart_index += 1;
        }
        Ok(())
    }

    /// The whole key stored at restart point `index` (shared must be 0).
    #[inline]
    fn restart_key<'v>(&mut self, v: &BlockView<'v>, index: usize) -> Result<&'v [u8]> {
        let pos = v.restart(index);
        let data = v.data;
        match decode_entry(data, pos, v.restarts_offset) {
            Some(e) if e.shared == 0 => match data.get(e.key_start..e.value_start) {
                Some(key) => Ok(key),
                None => Err(self.corrupt(v, pos, "restart key out of bounds")),
            },
            Some(_) => Err(self.corrupt(v, pos, "restart entry shares a prefix")),
            None => Err(self.corrupt(v, pos, "bad restart entry")),
        }
    }

    pub(crate) fn seek_to_first(&mut self, v: &BlockView<'_>) -> Result<()> {
        self.seek_to_restart(v, 0);
        self.parse_next(v)
    }

    pub(crate) fn seek_to_last(&mut self, v: &BlockView<'_>) -> Result<()> {
        self.seek_to_restart(v, v.num_restarts - 1);
        // Keeps the last interval's entries: a reverse scan starts here.
        self.scan_interval_to(v, v.restarts_offset)?;
        Ok(())
    }

    /// Moves to the next entry. No-op when unpositioned.
    #[inline]
    pub(crate) fn next(&mut self, v: &BlockView<'_>) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.parse_next(v)
    }

    /// Moves to the previous entry: from the entries the last rescan
    /// passed if it kept it, else by rescanning from the restart point
    /// before the current entry. No-op when unpositioned.
    pub(crate) fn prev(&mut self, v: &BlockView<'_>) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        if self.step_back_to_passed() {
            return Ok(());
        }
        let original = self.current;
        while v.restart(self.restart_index) >= original {
            if self.restart_index == 0 {
                self.invalidate();
                return Ok(());
            }
            self.restart_index -= 1;
        }
        self.seek_to_restart(v, self.restart_index);
        if self.scan_interval_to(v, original)? {
            return Ok(());
        }
        // Only a block whose entries do not chain up to `original` gets
        // here.
        Err(self.corrupt(v, original, "entries do not chain to the current entry"))
    }

    /// [`Cursor::seek_by`] narrowed by a fence: `fence[i]` is the user-key
    /// prefix (`key_prefix`) of restart point `i`'s key and `prefix` the
    /// target's. Restarts whose prefix is below the target's sort before
    /// it, those above after it, so only the restarts sharing the target's
    /// prefix (usually none or one) need their keys read: a search of the
    /// index block touches a dense array instead of a cache line per probe.
    /// Falls back to `seek_by` if the fence does not fit the block.
    pub(crate) fn seek_by_fenced<F>(
        &mut self,
        v: &BlockView<'_>,
        fence: &Fence,
        prefix: u64,
        cmp: F,
    ) -> Result<()>
    where
        F: Fn(&[u8]) -> Ordering,
    {
        if fence.len() != v.num_restarts {
            return self.seek_by(v, cmp);
        }
        let (lo, hi) = fence.equal_range(prefix);
        // Restarts before `lo` sort before the target, those from `hi` on
        // after it: the last restart before the target is in lo-1..hi.
        // When no restart shares the target's prefix, restart `lo` (if
        // any) is the first not before it: start there, reading one key
        // of the index block instead of two.
        let left = if lo == hi && lo < fence.len() {
            lo
        } else {
            lo.saturating_sub(1)
        };
        let right = hi.saturating_sub(1).max(left);
        self.search_restarts(v, left, right, cmp)
    }

    /// Moves to the first entry whose key is not less than the target;
    /// `cmp(key)` orders a key against the target. Binary search over the
    /// restart points, then a linear scan of one restart interval.
    #[inline]
    pub(crate) fn seek_by<F>(&mut self, v: &BlockView<'_>, cmp: F) -> Result<()>
    where
        F: Fn(&[u8]) -> Ordering,
    {
        let mut left = 0;
        let mut right = v.num_restarts - 1;
        // Start from the current position when it already bounds the
        // target: sequential seeks (the merging iterator's pattern) then
        // skip most of the binary search.
        if self.valid() && self.restart_index < v.num_restarts {
            match cmp(&self.key) {
                Ordering::Less => left = self.restart_index,
                Ordering::Greater => right = self.restart_index,
                Ordering::Equal => return Ok(()),
            }
        }
        self.search_restarts(v, left, right, cmp)
    }

    /// Binary search for the last restart point in `left..=right` whose
    /// key sorts before the target (or `left`), then a linear scan to the
    /// first entry not less than the target. REQUIRES: every restart
    /// before `left` sorts before the target, every one after `right`
    /// does not.
    #[inline]
    fn search_restarts<F>(
        &mut self,
        v: &BlockView<'_>,
        mut left: usize,
        mut right: usize,
        cmp: F,
    ) -> Result<()>
    where
        F: Fn(&[u8]) -> Ordering,
    {
        while left < right {
            let mid = left + (right - left).div_ceil(2);
            let key = self.restart_key(v, mid)?;
            if cmp(key) == Ordering::Less {
                left = mid;
            } else {
                right = mid - 1;
            }
        }
        self.seek_to_restart(v, left);
        loop {
            self.parse_next(v)?;
            if !self.valid() || cmp(&self.key) != Ordering::Less {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::reader::Block;
    use crate::block::BlockBuilder;
    use bytes::Bytes;

    fn block(keys: &[Vec<u8>], interval: usize) -> Block {
        let mut b = BlockBuilder::new(interval);
        for (i, k) in keys.iter().enumerate() {
            b.add(k, &[i as u8]);
        }
        Block::new(Bytes::copy_from_slice(b.finish())).unwrap()
    }

    /// One long key and then thousands of entries sharing all of it in a
    /// single restart interval: a reverse walk still visits every entry,
    /// and what the cursor keeps for steps back never passes its budget
    /// (a copy of the long key per entry would be 20 MiB here).
    #[test]
    fn a_long_shared_key_keeps_the_steps_back_within_the_budget() {
        let long = vec![b'k'; 8 * 1024];
        let keys: Vec<Vec<u8>> = (0..2_500u32)
            .map(|i| {
                let mut k = long.clone();
                // Every key shares the long prefix; a short suffix keeps
                // them distinct and ordered.
                k.extend_from_slice(&i.to_be_bytes());
                k
            })
            .collect();
        let b = block(&keys, 4096);
        let v = b.view();
        let mut c = Cursor::with_key_buffer(Vec::new());
        c.seek_to_last(&v).unwrap();
        let mut seen = 0;
        while c.valid() {
            assert!(
                c.passed_bytes() <= PASSED_BYTES_BUDGET,
                "{}",
                c.passed_bytes()
            );
            assert_eq!(c.key(), keys[keys.len() - 1 - seen].as_slice());
            seen += 1;
            c.prev(&v).unwrap();
        }
        assert_eq!(seen, keys.len());
    }

    /// A restart point moved into an entry's value, where the bytes read
    /// as an entry that runs over the current one: a step back from there
    /// is corruption naming the block, not a jump to the made-up entry.
    #[test]
    fn a_step_back_over_entries_that_do_not_chain_is_corruption() {
        let mut b = BlockBuilder::new(2);
        b.add(b"a", &[0]);
        // At offset 9, this value reads as an entry of key "z" and a value
        // of 10 bytes, ending at 23: past the fourth entry's start (20).
        b.add(b"b", &[0, 1, 10, b'z', 0, 0]);
        b.add(b"c", &[0]);
        b.add(b"d", &[0; 16]);
        let mut bytes = b.finish().to_vec();
        assert_eq!(bytes.len(), 40 + 3 * 4, "entries, two restarts, count");
        assert_eq!(bytes[44..48], 15u32.to_le_bytes(), "restart 1 at \"c\"");
        bytes[44..48].copy_from_slice(&9u32.to_le_bytes());
        let block = Block::new(Bytes::from(bytes)).unwrap();
        let v = block.view();
        let mut c = Cursor::with_key_buffer(Vec::new());
        c.seek_to_first(&v).unwrap();
        for _ in 0..3 {
            c.next(&v).unwrap();
        }
        assert_eq!((c.key(), c.entry_offset()), (&b"d"[..], 20));
        let e = c.prev(&v).unwrap_err().to_string();
        assert!(e.contains("do not chain"), "{e}");
        assert!(!c.valid());
    }

    /// A cursor that moves to another block of the same layout by a seek
    /// forgets the entries it kept in the first: a step back there gives
    /// the second block's entry, though the kept one would chain by
    /// offset.
    #[test]
    fn a_seek_into_another_block_forgets_the_kept_entries() {
        let keys_in = |prefix: u8| -> Vec<Vec<u8>> {
            (0..40u32)
                .map(|i| format!("{}{i:04}", prefix as char).into_bytes())
                .collect()
        };
        let (a_keys, b_keys) = (keys_in(b'a'), keys_in(b'b'));
        let (a, b) = (block(&a_keys, 16), block(&b_keys, 16));
        let mut c = Cursor::with_key_buffer(Vec::new());
        // In `a`: from the end back to entry 30, keeping 16..30.
        c.seek_to_last(&a.view()).unwrap();
        while c.key() != a_keys[30].as_slice() {
            c.prev(&a.view()).unwrap();
        }
        // The same place in `b`, by a seek, then a step back.
        let target = b_keys[30].clone();
        c.seek_by(&b.view(), |k| k.cmp(&target)).unwrap();
        assert_eq!(c.key(), b_keys[30].as_slice());
        c.prev(&b.view()).unwrap();
        assert_eq!(c.key(), b_keys[29].as_slice());
        assert_eq!(c.value_range().1 - c.value_range().0, 1);
    }
}
