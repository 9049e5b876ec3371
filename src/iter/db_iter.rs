//! The user-facing view of an internal iterator: one entry per user key
//! (its newest version visible at the read's sequence number), tombstones
//! hidden, optional key bounds. The logic follows LevelDB's DBIter, with
//! RocksDB's bound on stepping over the versions of one key
//! (`max_sequential_skip_in_iterations`): past it, the rest are skipped
//! with a seek, so a scan's cost does not grow with a hot key's versions.

use super::{user_key, InternalIterator, MergingIter};
use crate::error::Result;
use crate::ikey::{push_seek_key, seek_trailer};
use bytes::Bytes;
use strata_sstable::{
    compare_user_keys, parse_internal_key, SeqNo, ValueKind, MAX_SEQNO, TRAILER_LEN,
};

/// `max_sequential_skip_in_iterations` when none is given (RocksDB's
/// default).
const DEFAULT_MAX_SKIP: usize = 8;

/// The trailer that sorts after every version of a user key (sequence
/// number 0, the lowest kind): seeking to `key ++ this` passes them all.
const AFTER_EVERY_VERSION: [u8; TRAILER_LEN] = [0; TRAILER_LEN];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Direction {
    /// The inner iterator is at the entry that is the current key's value.
    Forward,
    /// The inner iterator is before all entries of the current key, which
    /// is held in `saved_key` / `saved_value`.
    Reverse,
}

/// Iterates user keys at a fixed sequence number within `[lower, upper)`.
pub struct DbIter {
    inner: MergingIter,
    seq: SeqNo,
    direction: Direction,
    valid: bool,
    saved_key: Vec<u8>,
    saved_value: Vec<u8>,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    scratch: Vec<u8>,
    /// Entries of one user key stepped over in a row before the rest are
    /// skipped with a seek.
    max_skip: usize,
}

impl DbIter {
    pub fn new(
        inner: MergingIter,
        seq: SeqNo,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
    ) -> Self {
        DbIter {
            inner,
            seq,
            direction: Direction::Forward,
            valid: false,
            saved_key: Vec::new(),
            saved_value: Vec::new(),
            lower,
            upper,
            scratch: Vec::new(),
            max_skip: DEFAULT_MAX_SKIP,
        }
    }

    /// Step over at most `max_skip` entries of one user key in a row, then
    /// seek (`max_sequential_skip_in_iterations`).
    pub fn with_max_skip(mut self, max_skip: usize) -> Self {
        self.max_skip = max_skip;
        self
    }

    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current user key. REQUIRES: `valid()`.
    pub fn key(&self) -> &[u8] {
        match self.direction {
            Direction::Forward => user_key(self.inner.key()),
            Direction::Reverse => &self.saved_key,
        }
    }

    /// The current value. REQUIRES: `valid()`.
    pub fn value(&self) -> &[u8] {
        match self.direction {
            Direction::Forward => self.inner.value(),
            Direction::Reverse => &self.saved_value,
        }
    }

    /// The current value as owned bytes (zero-copy from an uncompressed
    /// table when moving forward).
    pub fn value_bytes(&self) -> Bytes {
        match self.direction {
            Direction::Forward => self.inner.value_bytes(),
            Direction::Reverse => Bytes::copy_from_slice(&self.saved_value),
        }
    }

    fn above_upper(&self, ukey: &[u8]) -> bool {
        self.upper
            .as_deref()
            .is_some_and(|u| compare_user_keys(ukey, u).is_ge())
    }

    fn below_lower(&self, ukey: &[u8]) -> bool {
        self.lower
            .as_deref()
            .is_some_and(|l| compare_user_keys(ukey, l).is_lt())
    }

    /// Position at the first key `>= target` (clamped to the bounds).
    pub fn seek(&mut self, target: &[u8]) -> Result<()> {
        let target = match self.lower.as_deref() {
            Some(l) if target < l => l.to_vec(),
            _ => target.to_vec(),
        };
        self.direction = Direction::Forward;
        self.scratch.clear();
        push_seek_key(&mut self.scratch, &target, self.seq);
        self.inner.seek(&self.scratch)?;
        self.find_next_user_entry(false)
    }

    /// Position at the last key `<= target` (clamped to the bounds).
    pub fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        if self.upper.as_deref().is_some_and(|u| target >= u) {
            return self.seek_to_last();
        }
        self.direction = Direction::Reverse;
        self.scratch.clear();
        // The oldest possible entry of `target`: every version of it sorts
        // at or before this key.
        self.scratch.extend_from_slice(target);
        self.scratch.extend_from_slice(&0u64.to_le_bytes());
        self.inner.seek_for_prev(&self.scratch)?;
        self.find_prev_user_entry()
    }

    pub fn seek_to_first(&mut self) -> Result<()> {
        if let Some(lower) = self.lower.clone() {
            return self.seek(&lower);
        }
        self.direction = Direction::Forward;
        self.inner.seek_to_first()?;
        self.find_next_user_entry(false)
    }

    pub fn seek_to_last(&mut self) -> Result<()> {
        self.direction = Direction::Reverse;
        match self.upper.as_deref() {
            Some(upper) => {
                // The key before every version of `upper` (exclusive bound).
                self.scratch.clear();
                self.scratch.extend_from_slice(upper);
                self.scratch.extend_from_slice(&seek_trailer(MAX_SEQNO));
                self.inner.seek_for_prev(&self.scratch)?;
            }
            None => self.inner.seek_to_last()?,
        }
        self.find_prev_user_entry()
    }

    /// Move to the next user key. REQUIRES: `valid()`.
    pub fn next(&mut self) -> Result<()> {
        debug_assert!(self.valid);
        if self.direction == Direction::Reverse {
            self.direction = Direction::Forward;
            // The inner iterator is just before the current key's entries:
            // step into them; `saved_key` already names the key to skip.
            if self.inner.valid() {
                self.inner.next()?;
            } else {
                self.inner.seek_to_first()?;
            }
            if !self.inner.valid() {
                self.valid = false;
                self.saved_key.clear();
                return Ok(());
            }
        } else {
            self.saved_key.clear();
            self.saved_key.extend_from_slice(user_key(self.inner.key()));
            self.inner.next()?;
        }
        self.find_next_user_entry(true)
    }

    /// Move to the previous user key. REQUIRES: `valid()`.
    pub fn prev(&mut self) -> Result<()> {
        debug_assert!(self.valid);
        if self.direction == Direction::Forward {
            // Back past every entry of the current key: a few steps, then
            // a seek to before its newest possible version.
            self.saved_key.clear();
            self.saved_key.extend_from_slice(user_key(self.inner.key()));
            let mut steps = 0;
            loop {
                if steps == self.max_skip {
                    self.seek_before_saved_key()?;
                } else {
                    steps += 1;
                    self.inner.prev()?;
                }
                if !self.inner.valid() {
                    self.valid = false;
                    self.saved_key.clear();
                    self.saved_value.clear();
                    return Ok(());
                }
                if compare_user_keys(user_key(self.inner.key()), &self.saved_key).is_lt() {
                    break;
                }
            }
            self.direction = Direction::Reverse;
        }
        self.find_prev_user_entry()
    }

    /// Position the inner iterator at the last entry before every version
    /// of `saved_key`.
    fn seek_before_saved_key(&mut self) -> Result<()> {
        self.scratch.clear();
        push_seek_key(&mut self.scratch, &self.saved_key, MAX_SEQNO);
        self.inner.seek_for_prev(&self.scratch)
    }

    /// Forward: skip entries newer than the read, older versions of
    /// `saved_key` (when `skipping`), and deleted keys. More than
    /// `max_skip` entries of one key in a row are passed with a seek
    /// (RocksDB's `FindNextUserEntryInternal`).
    fn find_next_user_entry(&mut self, mut skipping: bool) -> Result<()> {
        // Entries of `saved_key` passed over in a row, and whether they
        // were already cut short by a seek (once per key: a seek that
        // lands on more of them must not loop).
        let mut skipped = 0usize;
        let mut reseeked = false;
        while self.inner.valid() {
            let ikey = self.inner.key();
            if let Some(k) = parse_internal_key(ikey) {
                if self.above_upper(k.user_key) {
                    break;
                }
                if k.seqno <= self.seq {
                    if skipping && compare_user_keys(k.user_key, &self.saved_key).is_le() {
                        skipped += 1;
                    } else {
                        skipped = 0;
                        reseeked = false;
                        match k.kind {
                            // `parse_internal_key` yields point kinds only.
                            ValueKind::Delete | ValueKind::RangeDelete => {
                                self.saved_key.clear();
                                self.saved_key.extend_from_slice(k.user_key);
                                skipping = true;
                            }
                            ValueKind::Put => {
                                self.valid = true;
                                self.saved_key.clear();
                                return Ok(());
                            }
                        }
                    }
                } else if k.user_key == self.saved_key.as_slice() {
                    // Newer than the read: a run of them is skipped too.
                    skipped += 1;
                } else {
                    // A new key, newer than the read: what was skipped
                    // before it is behind us.
                    self.saved_key.clear();
                    self.saved_key.extend_from_slice(k.user_key);
                    skipping = false;
                    skipped = 1;
                    reseeked = false;
                }
                if skipped > self.max_skip && !reseeked {
                    skipped = 0;
                    reseeked = true;
                    self.scratch.clear();
                    self.scratch.extend_from_slice(&self.saved_key);
                    if skipping {
                        // Past every version of the key being skipped.
                        self.scratch.extend_from_slice(&AFTER_EVERY_VERSION);
                    } else {
                        // To its newest version the read can see.
                        self.scratch.extend_from_slice(&seek_trailer(self.seq));
                    }
                    self.inner.seek(&self.scratch)?;
                    continue;
                }
            }
            self.inner.next()?;
        }
        self.valid = false;
        self.saved_key.clear();
        Ok(())
    }

    /// Reverse: find the previous key whose newest visible version is a
    /// put, leaving the inner iterator before all its entries. Walking
    /// back meets a key's versions oldest first; past `max_skip` of them
    /// the newest visible one is found with a seek instead (RocksDB's
    /// `FindValueForCurrentKeyUsingSeek`).
    fn find_prev_user_entry(&mut self) -> Result<()> {
        // What the key in `saved_key` holds at the read's sequence number,
        // from the entries seen so far: a value (in `saved_value`), or not
        // (deleted, or nothing visible yet).
        let mut has_value = false;
        // Entries of `saved_key` seen; 0 before the first key.
        let mut seen = 0usize;
        while self.inner.valid() {
            let ikey = self.inner.key();
            if let Some(k) = parse_internal_key(ikey) {
                if seen == 0 || compare_user_keys(k.user_key, &self.saved_key).is_lt() {
                    if has_value {
                        // Entries of an earlier key: the saved one is the answer.
                        break;
                    }
                    if self.below_lower(k.user_key) {
                        break;
                    }
                    self.saved_key.clear();
                    self.saved_key.extend_from_slice(k.user_key);
                    seen = 0;
                }
                seen += 1;
                if seen > self.max_skip {
                    has_value = self.newest_visible_value_of_saved_key()?;
                    self.seek_before_saved_key()?;
                    continue;
                }
                if k.seqno <= self.seq && !self.above_upper(k.user_key) {
                    has_value = k.kind == ValueKind::Put;
                    if has_value {
                        self.saved_value.clear();
                        self.saved_value.extend_from_slice(self.inner.value());
                    }
                }
            }
            self.inner.prev()?;
        }
        if has_value {
            self.valid = true;
        } else {
            self.valid = false;
            self.saved_key.clear();
            self.saved_value.clear();
            self.direction = Direction::Forward;
        }
        Ok(())
    }

    /// Seek to the newest version of `saved_key` the read can see and
    /// take its value into `saved_value`: whether it has one (a put, not
    /// a delete, a range deletion or nothing).
    fn newest_visible_value_of_saved_key(&mut self) -> Result<bool> {
        if self.above_upper(&self.saved_key) {
            return Ok(false);
        }
        self.scratch.clear();
        push_seek_key(&mut self.scratch, &self.saved_key, self.seq);
        self.inner.seek(&self.scratch)?;
        if !self.inner.valid() {
            return Ok(false);
        }
        match parse_internal_key(self.inner.key()) {
            Some(k) if k.user_key == self.saved_key.as_slice() && k.kind == ValueKind::Put => {
                self.saved_value.clear();
                self.saved_value.extend_from_slice(self.inner.value());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
