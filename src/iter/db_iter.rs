//! The user-facing view of an internal iterator: one entry per user key
//! (its newest version visible at the read's sequence number), tombstones
//! hidden, merge operands combined, optional key bounds. The logic
//! follows LevelDB's DBIter, and RocksDB's for merges and for its bound on
//! stepping over the versions of one key (`max_sequential_skip_in_
//! iterations`): past it, the rest are skipped with a seek, so a scan's
//! cost does not grow with a hot key's versions. A blob reference is
//! resolved here, in the arms that return it (`BlobIndex`), so only a
//! value the iterator returns is read from a blob file: the versions it
//! steps over and the keys deletes hide cost no blob read.

use super::{user_key, InternalIterator, MergingIter};
use crate::blob::BlobResolver;
use crate::error::Result;
use crate::ikey::{push_seek_key, seek_trailer};
use crate::merge::{full_merge, full_merge_oldest_first, MergeOperator};
use bytes::Bytes;
use std::sync::Arc;
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
    merge_operator: Option<Arc<dyn MergeOperator>>,
    /// Moving forward, the current key's value was merged (or is an
    /// expiring one, held without its expiry): the key is in `saved_key`,
    /// the value in `saved_value`, and the inner iterator is wherever
    /// collecting the operands stopped (at a version of the key, or past
    /// it).
    merged: bool,
    /// The operands being collected (newest first forward, oldest first
    /// in reverse).
    operands: Vec<Vec<u8>>,
    /// The clock (micros) expiry is judged by: an expiring version whose
    /// expiry is not after it reads as a delete (docs/design/ttl.md).
    now_micros: u64,
    /// Where the tables' blob references are resolved (`None`: the
    /// sources hold none).
    blobs: Option<Arc<BlobResolver>>,
    /// Moving forward and not `merged`, the current entry is a blob
    /// reference and this the value it points to (the inner iterator is
    /// at the reference).
    blob_value: Option<Bytes>,
}

/// An expiring version's value without its expiry, `None` once expired
/// at `now`.
fn unexpired(now: u64, stored: &[u8]) -> Result<Option<&[u8]>> {
    crate::ttl::unexpired_value(stored, now, "an iterator")
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
            merge_operator: None,
            merged: false,
            operands: Vec::new(),
            now_micros: 0,
            blobs: None,
            blob_value: None,
        }
    }

    /// Resolve the blob references of the sources through `blobs`.
    pub(crate) fn with_blobs(mut self, blobs: Option<Arc<BlobResolver>>) -> Self {
        self.blobs = blobs;
        self
    }

    /// The value blob reference `reference` of `key` points to.
    fn resolve_blob(&self, reference: &[u8], key: &[u8]) -> Result<Bytes> {
        match &self.blobs {
            Some(blobs) => blobs.resolve(reference, key),
            None => Err(unresolved_blob_reference()),
        }
    }

    /// Judge expiry at `now_micros` (none expires without it).
    pub fn with_now(mut self, now_micros: u64) -> Self {
        self.now_micros = now_micros;
        self
    }

    /// Step over at most `max_skip` entries of one user key in a row, then
    /// seek (`max_sequential_skip_in_iterations`).
    pub fn with_max_skip(mut self, max_skip: usize) -> Self {
        self.max_skip = max_skip;
        self
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
            Direction::Forward if !self.merged => match &self.blob_value {
                Some(v) => v,
                None => self.inner.value(),
            },
            _ => &self.saved_value,
        }
    }

    /// The current value as owned bytes (zero-copy from an uncompressed
    /// table when moving forward).
    pub fn value_bytes(&self) -> Bytes {
        match self.direction {
            Direction::Forward if !self.merged => match &self.blob_value {
                Some(v) => v.clone(),
                None => self.inner.value_bytes(),
            },
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

    /// Position at the last key `< target`: before every key from
    /// `target` on (a range a transaction deleted, a skipped range).
    pub fn seek_before(&mut self, target: &[u8]) -> Result<()> {
        self.seek_for_prev(target)?;
        if self.valid() && self.key() == target {
            self.prev()?;
        }
        Ok(())
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
        if self.direction == Direction::Forward {
            if self.merged {
                // `saved_key` names the key; the inner iterator is where
                // collecting its operands stopped (at an older version of
                // it, or past it): back before the key with one seek.
                self.merged = false;
                self.seek_before_saved_key()?;
            } else {
                // Back past every entry of the current key: a few steps,
                // then a seek to before its newest possible version.
                self.saved_key.clear();
                self.saved_key.extend_from_slice(user_key(self.inner.key()));
                let mut steps = 0;
                loop {
                    if steps == self.max_skip {
                        self.seek_before_saved_key()?;
                        break;
                    }
                    steps += 1;
                    self.inner.prev()?;
                    if !self.inner.valid()
                        || compare_user_keys(user_key(self.inner.key()), &self.saved_key).is_lt()
                    {
                        break;
                    }
                }
            }
            if !self.inner.valid() {
                self.valid = false;
                self.saved_key.clear();
                self.saved_value.clear();
                return Ok(());
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
        self.blob_value = None;
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
                            ValueKind::PutWithExpiry => {
                                self.saved_key.clear();
                                self.saved_key.extend_from_slice(k.user_key);
                                match unexpired(self.now_micros, self.inner.value())? {
                                    Some(v) => {
                                        self.saved_value.clear();
                                        self.saved_value.extend_from_slice(v);
                                        self.merged = true;
                                        self.valid = true;
                                        return Ok(());
                                    }
                                    // Expired: a delete.
                                    None => skipping = true,
                                }
                            }
                            ValueKind::Merge => {
                                self.saved_key.clear();
                                self.saved_key.extend_from_slice(k.user_key);
                                return self.merge_forward();
                            }
                            ValueKind::BlobIndex => {
                                // The one version returned: read its value.
                                match self.resolve_blob(self.inner.value(), k.user_key) {
                                    Ok(v) => self.blob_value = Some(v),
                                    Err(e) => {
                                        self.valid = false;
                                        return Err(e);
                                    }
                                }
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
                    // Ahead of the current entry: the sources past it (an
                    // L0 table under a hot key in the memtable) stay put.
                    self.inner.seek_forward(&self.scratch)?;
                    continue;
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
        match self.merge_from_here() {
            Ok(v) => self.saved_value = v,
            Err(e) => {
                self.valid = false;
                return Err(e);
            }
        }
        self.merged = true;
        self.valid = true;
        Ok(())
    }

    /// At the newest visible operand of `saved_key`: collect it and the
    /// key's older operands down to a put (the base), a delete or the next
    /// key (the inner iterator stops there), and merge them.
    fn merge_from_here(&mut self) -> Result<Vec<u8>> {
        self.operands.clear();
        self.operands.push(self.inner.value().to_vec());
        self.inner.next()?;
        let mut base: Option<&[u8]> = None;
        let mut blob_base: Option<Bytes> = None;
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
                ValueKind::PutWithExpiry => {
                    base = unexpired(self.now_micros, self.inner.value())?;
                    break;
                }
                ValueKind::Delete | ValueKind::RangeDelete => break,
                ValueKind::BlobIndex => {
                    blob_base = Some(self.resolve_blob(self.inner.value(), &self.saved_key)?);
                    break;
                }
            }
        }
        full_merge(
            self.merge_operator.as_ref(),
            &self.saved_key,
            blob_base.as_deref().or(base),
            &self.operands,
        )
    }

    /// Reverse: find the previous key whose newest visible version is a
    /// put or an operand, leaving the inner iterator before all its
    /// entries. A key's entries come oldest first: a put sets the base, a
    /// delete clears it, operands pile up on it; the last one decides.
    /// Past `max_skip` of them the newest visible version is found with a
    /// seek instead (RocksDB's `FindValueForCurrentKeyUsingSeek`).
    fn find_prev_user_entry(&mut self) -> Result<()> {
        self.blob_value = None;
        // What the key in `saved_key` holds at the read's sequence number,
        // from its entries seen so far: `Delete` nothing (deleted, or
        // nothing visible yet), `Put` the value in `saved_value`, `Merge`
        // operands on a base (in `saved_value` if `has_base`).
        let mut kind = ValueKind::Delete;
        let mut has_base = false;
        // The base in `saved_value` is a blob reference, resolved only if
        // it is the answer (older versions are overwritten unread).
        let mut blob_base = false;
        self.operands.clear();
        // Entries of `saved_key` seen; 0 before the first key.
        let mut seen = 0usize;
        while self.inner.valid() {
            let ikey = self.inner.key();
            if let Some(k) = parse_internal_key(ikey) {
                if seen == 0 || compare_user_keys(k.user_key, &self.saved_key).is_lt() {
                    if kind != ValueKind::Delete {
                        // Entries of an earlier key: the saved one is the answer.
                        break;
                    }
                    if self.below_lower(k.user_key) {
                        break;
                    }
                    self.saved_key.clear();
                    self.saved_key.extend_from_slice(k.user_key);
                    seen = 0;
                    blob_base = false;
                }
                seen += 1;
                if seen > self.max_skip {
                    kind = if self.value_of_saved_key_by_seek()? {
                        ValueKind::Put
                    } else {
                        ValueKind::Delete
                    };
                    has_base = false;
                    blob_base = false;
                    self.operands.clear();
                    self.seek_before_saved_key()?;
                    continue;
                }
                if k.seqno <= self.seq && !self.above_upper(k.user_key) {
                    match k.kind {
                        ValueKind::Delete | ValueKind::RangeDelete => {
                            kind = ValueKind::Delete;
                            has_base = false;
                            self.operands.clear();
                        }
                        ValueKind::Put | ValueKind::BlobIndex => {
                            kind = ValueKind::Put;
                            has_base = true;
                            blob_base = k.kind == ValueKind::BlobIndex;
                            self.operands.clear();
                            self.saved_value.clear();
                            self.saved_value.extend_from_slice(self.inner.value());
                        }
                        ValueKind::Merge => {
                            kind = ValueKind::Merge;
                            self.operands.push(self.inner.value().to_vec());
                        }
                        ValueKind::PutWithExpiry => {
                            self.operands.clear();
                            match unexpired(self.now_micros, self.inner.value())? {
                                Some(v) => {
                                    kind = ValueKind::Put;
                                    has_base = true;
                                    blob_base = false;
                                    self.saved_value.clear();
                                    self.saved_value.extend_from_slice(v);
                                }
                                None => {
                                    kind = ValueKind::Delete;
                                    has_base = false;
                                }
                            }
                        }
                    }
                }
            }
            self.inner.prev()?;
        }
        if blob_base && has_base && kind != ValueKind::Delete {
            // The key's base is the answer (or under its operands): read it.
            match self.resolve_blob(&self.saved_value, &self.saved_key) {
                Ok(v) => {
                    self.saved_value.clear();
                    self.saved_value.extend_from_slice(&v);
                }
                Err(e) => {
                    self.valid = false;
                    return Err(e);
                }
            }
        }
        match kind {
            // (`kind` is never `PutWithExpiry`: that is a put or a delete;
            // nor `BlobIndex`, a put of a resolved value.)
            ValueKind::Delete
            | ValueKind::RangeDelete
            | ValueKind::PutWithExpiry
            | ValueKind::BlobIndex => {
                self.valid = false;
                self.saved_key.clear();
                self.saved_value.clear();
                self.direction = Direction::Forward;
            }
            ValueKind::Put => self.valid = true,
            ValueKind::Merge => {
                // Collected oldest first, the operator's order.
                let base = has_base.then_some(self.saved_value.as_slice());
                let merged = full_merge_oldest_first(
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

    /// Seek to the newest version of `saved_key` the read can see and
    /// put the key's value into `saved_value` (merging operands if that
    /// version is one): whether it has one (not a delete, a range
    /// deletion or nothing).
    fn value_of_saved_key_by_seek(&mut self) -> Result<bool> {
        if self.above_upper(&self.saved_key) {
            return Ok(false);
        }
        self.scratch.clear();
        push_seek_key(&mut self.scratch, &self.saved_key, self.seq);
        self.inner.seek(&self.scratch)?;
        if !self.inner.valid() {
            return Ok(false);
        }
        let kind = match parse_internal_key(self.inner.key()) {
            Some(k) if k.user_key == self.saved_key.as_slice() => k.kind,
            _ => return Ok(false),
        };
        match kind {
            ValueKind::Put => {
                self.saved_value.clear();
                self.saved_value.extend_from_slice(self.inner.value());
                Ok(true)
            }
            ValueKind::PutWithExpiry => match unexpired(self.now_micros, self.inner.value())? {
                Some(v) => {
                    self.saved_value.clear();
                    self.saved_value.extend_from_slice(v);
                    Ok(true)
                }
                None => Ok(false),
            },
            ValueKind::Merge => match self.merge_from_here() {
                Ok(v) => {
                    self.saved_value = v;
                    Ok(true)
                }
                Err(e) => {
                    self.valid = false;
                    Err(e)
                }
            },
            ValueKind::Delete | ValueKind::RangeDelete => Ok(false),
            ValueKind::BlobIndex => {
                let v = self.resolve_blob(self.inner.value(), &self.saved_key)?;
                self.saved_value.clear();
                self.saved_value.extend_from_slice(&v);
                Ok(true)
            }
        }
    }
}

/// A blob reference reached a user-key iterator given no blob files to
/// resolve it in: a bug (only tables listing blob files hold them),
/// reported as corruption rather than answered with the reference's bytes.
fn unresolved_blob_reference() -> crate::error::Error {
    crate::error::Error::corruption(
        "iterator",
        0,
        "a blob reference reached the iterator unresolved",
    )
}
