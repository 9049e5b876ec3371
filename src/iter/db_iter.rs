//! The user-facing view of an internal iterator: one entry per user key
//! (its newest version visible at the read's sequence number), tombstones
//! hidden, merge operands combined, optional key bounds. The logic
//! follows LevelDB's DBIter, and RocksDB's for merges.

use super::{user_key, InternalIterator, MergingIter};
use crate::error::Result;
use crate::ikey::{push_seek_key, seek_trailer};
use crate::merge::{full_merge, MergeOperator};
use bytes::Bytes;
use std::sync::Arc;
use strata_sstable::{compare_user_keys, parse_internal_key, SeqNo, ValueKind, MAX_SEQNO};

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
    merge_operator: Option<Arc<dyn MergeOperator>>,
    /// Moving forward, the current key's value was merged: the key is in
    /// `saved_key`, the value in `saved_value`, and the inner iterator is
    /// wherever collecting the operands stopped (at an older version of
    /// the key, or past it).
    merged: bool,
    /// The operands being collected (newest first forward, oldest first
    /// in reverse).
    operands: Vec<Vec<u8>>,
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
            merge_operator: None,
            merged: false,
            operands: Vec::new(),
        }
    }

    /// Combine merge operands with `operator` (none: a key with operands
    /// is an error when the iterator reaches it).
    pub fn with_merge_operator(mut self, operator: Option<Arc<dyn MergeOperator>>) -> Self {
        self.merge_operator = operator;
        self
    }

    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current user key. REQUIRES: `valid()`.
    pub fn key(&self) -> &[u8] {
        match self.direction {
            Direction::Forward if !self.merged => user_key(self.inner.key()),
            _ => &self.saved_key,
        }
    }

    /// The current value. REQUIRES: `valid()`.
    pub fn value(&self) -> &[u8] {
        match self.direction {
            Direction::Forward if !self.merged => self.inner.value(),
            _ => &self.saved_value,
        }
    }

    /// The current value as owned bytes (zero-copy from an uncompressed
    /// table when moving forward).
    pub fn value_bytes(&self) -> Bytes {
        match self.direction {
            Direction::Forward if !self.merged => self.inner.value_bytes(),
            _ => Bytes::copy_from_slice(&self.saved_value),
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
        self.merged = false;
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
        self.merged = false;
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
        self.merged = false;
        self.inner.seek_to_first()?;
        self.find_next_user_entry(false)
    }

    pub fn seek_to_last(&mut self) -> Result<()> {
        self.direction = Direction::Reverse;
        self.merged = false;
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
        } else if self.merged {
            // `saved_key` names the key; the inner iterator is where
            // collecting its operands stopped.
            self.merged = false;
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
        if self.direction == Direction::Forward && self.merged {
            // `saved_key` names the key; the inner iterator may be past
            // it, or at its end: scan back to before its first entry.
            self.merged = false;
            if !self.inner.valid() {
                self.inner.seek_to_last()?;
            }
            while self.inner.valid()
                && compare_user_keys(user_key(self.inner.key()), &self.saved_key).is_ge()
            {
                self.inner.prev()?;
            }
            if !self.inner.valid() {
                self.valid = false;
                self.saved_key.clear();
                self.saved_value.clear();
                return Ok(());
            }
            self.direction = Direction::Reverse;
        } else if self.direction == Direction::Forward {
            // Scan back past every entry of the current key.
            self.saved_key.clear();
            self.saved_key.extend_from_slice(user_key(self.inner.key()));
            loop {
                self.inner.prev()?;
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

    /// Forward: skip entries newer than the read, older versions of
    /// `saved_key` (when `skipping`), and deleted keys.
    fn find_next_user_entry(&mut self, mut skipping: bool) -> Result<()> {
        while self.inner.valid() {
            let ikey = self.inner.key();
            if let Some(k) = parse_internal_key(ikey) {
                if self.above_upper(k.user_key) {
                    break;
                }
                if k.seqno <= self.seq {
                    match k.kind {
                        // `parse_internal_key` yields point kinds only.
                        ValueKind::Delete | ValueKind::RangeDelete => {
                            self.saved_key.clear();
                            self.saved_key.extend_from_slice(k.user_key);
                            skipping = true;
                        }
                        ValueKind::Put => {
                            if !(skipping && compare_user_keys(k.user_key, &self.saved_key).is_le())
                            {
                                self.valid = true;
                                self.saved_key.clear();
                                return Ok(());
                            }
                        }
                        ValueKind::Merge => {
                            if !(skipping && compare_user_keys(k.user_key, &self.saved_key).is_le())
                            {
                                self.saved_key.clear();
                                self.saved_key.extend_from_slice(k.user_key);
                                return self.merge_forward();
                            }
                        }
                    }
                }
            }
            self.inner.next()?;
        }
        self.valid = false;
        self.saved_key.clear();
        Ok(())
    }

    /// Forward, at the newest visible entry of `saved_key`, an operand:
    /// collect it and the key's older operands down to a put (the base),
    /// a delete or the next key, and merge them into `saved_value`. The
    /// range tombstones' skipping already hid the entries they delete.
    fn merge_forward(&mut self) -> Result<()> {
        self.operands.clear();
        self.operands.push(self.inner.value().to_vec());
        self.inner.next()?;
        let mut base: Option<&[u8]> = None;
        while self.inner.valid() {
            let Some(k) = parse_internal_key(self.inner.key()) else {
                self.inner.next()?;
                continue;
            };
            if k.user_key != self.saved_key.as_slice() {
                break;
            }
            match k.kind {
                ValueKind::Merge => {
                    self.operands.push(self.inner.value().to_vec());
                    self.inner.next()?;
                }
                ValueKind::Put => {
                    base = Some(self.inner.value());
                    break;
                }
                ValueKind::Delete | ValueKind::RangeDelete => break,
            }
        }
        let merged = full_merge(
            self.merge_operator.as_ref(),
            &self.saved_key,
            base,
            &self.operands,
        );
        self.saved_value = match merged {
            Ok(v) => v,
            Err(e) => {
                self.valid = false;
                return Err(e);
            }
        };
        self.merged = true;
        self.valid = true;
        Ok(())
    }

    /// Reverse: find the previous key whose newest visible version is a
    /// put or an operand, leaving the inner iterator before all its
    /// entries. A key's entries come oldest first: a put sets the base, a
    /// delete clears it, operands pile up on it; the last one decides.
    fn find_prev_user_entry(&mut self) -> Result<()> {
        let mut kind = ValueKind::Delete;
        // Whether `saved_value` holds a put the operands go on.
        let mut has_base = false;
        self.operands.clear();
        while self.inner.valid() {
            let ikey = self.inner.key();
            if let Some(k) = parse_internal_key(ikey) {
                if kind != ValueKind::Delete
                    && compare_user_keys(k.user_key, &self.saved_key).is_lt()
                {
                    // Entries of an earlier key: the saved one is the answer.
                    break;
                }
                if self.below_lower(k.user_key) {
                    break;
                }
                if k.seqno <= self.seq && !self.above_upper(k.user_key) {
                    match k.kind {
                        ValueKind::Delete | ValueKind::RangeDelete => {
                            kind = ValueKind::Delete;
                            has_base = false;
                            self.operands.clear();
                            self.saved_key.clear();
                            self.saved_value.clear();
                        }
                        ValueKind::Put => {
                            kind = ValueKind::Put;
                            has_base = true;
                            self.operands.clear();
                            self.saved_key.clear();
                            self.saved_key.extend_from_slice(k.user_key);
                            self.saved_value.clear();
                            self.saved_value.extend_from_slice(self.inner.value());
                        }
                        ValueKind::Merge => {
                            if kind == ValueKind::Delete {
                                self.saved_key.clear();
                                self.saved_key.extend_from_slice(k.user_key);
                            }
                            kind = ValueKind::Merge;
                            self.operands.push(self.inner.value().to_vec());
                        }
                    }
                }
            }
            self.inner.prev()?;
        }
        match kind {
            ValueKind::Delete | ValueKind::RangeDelete => {
                self.valid = false;
                self.saved_key.clear();
                self.saved_value.clear();
                self.direction = Direction::Forward;
            }
            ValueKind::Put => self.valid = true,
            ValueKind::Merge => {
                // Collected oldest first; `full_merge` takes newest first.
                self.operands.reverse();
                let base = has_base.then_some(self.saved_value.as_slice());
                let merged = full_merge(
                    self.merge_operator.as_ref(),
                    &self.saved_key,
                    base,
                    &self.operands,
                );
                match merged {
                    Ok(v) => {
                        self.saved_value = v;
                        self.valid = true;
                    }
                    Err(e) => {
                        self.valid = false;
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }
}
