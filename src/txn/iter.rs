//! A transaction's iterator: its buffered writes laid over its snapshot's
//! entries (read-your-own-writes), in key order, from both ends.

use super::buffer::Pending;
use super::deleted::DeletedRanges;
use crate::cursor::Iter;
use crate::error::Result;
use crate::merge::MergeOperator;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;

/// Entries of a keyspace in a range as a transaction sees them: the
/// snapshot's, with the transaction's puts and merges shown and its
/// deletes (range deletes too) hidden. The buffered writes are copied when it is made:
/// later writes of the transaction do not show in it.
pub struct TransactionIter {
    snapshot: Iter,
    buffered: VecDeque<(Bytes, Pending)>,
    /// What the transaction's range deletes cover: snapshot entries there
    /// are skipped (a seek past each range).
    deleted: DeletedRanges,
    operator: Option<Arc<dyn MergeOperator>>,
    /// Snapshot entries taken from one end but not yet yielded.
    front: Option<(Bytes, Bytes)>,
    back: Option<(Bytes, Bytes)>,
    /// The last key yielded from each end: the ends stop where they meet.
    front_last: Option<Bytes>,
    back_last: Option<Bytes>,
    done: bool,
}

impl TransactionIter {
    pub(crate) fn new(
        snapshot: Iter,
        buffered: VecDeque<(Bytes, Pending)>,
        deleted: DeletedRanges,
        operator: Option<Arc<dyn MergeOperator>>,
    ) -> Self {
        TransactionIter {
            snapshot,
            buffered,
            deleted,
            operator,
            front: None,
            back: None,
            front_last: None,
            back_last: None,
            done: false,
        }
    }

    fn fail<T>(&mut self, e: crate::Error) -> Option<Result<T>> {
        self.done = true;
        Some(Err(e))
    }

    /// The next snapshot entry from the front: the one held from an
    /// earlier look, else the iterator's, else (the snapshot's two ends
    /// met) the one the back holds; past the keys the transaction's range
    /// deletes cover.
    fn snapshot_front(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        loop {
            if self.front.is_none() {
                self.front = self.snapshot.next().transpose()?;
            }
            if self.front.is_none() {
                self.front = self.back.take();
            }
            let deleted_to = match &self.front {
                Some((k, _)) => match self.deleted.covering(k) {
                    Some((_, end)) => end.map(<[u8]>::to_vec),
                    None => return Ok(self.front.clone()),
                },
                None => return Ok(None),
            };
            self.front = None;
            self.snapshot.skip_front_to(deleted_to.as_deref())?;
        }
    }

    fn snapshot_back(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        loop {
            if self.back.is_none() {
                self.back = self.snapshot.next_back().transpose()?;
            }
            if self.back.is_none() {
                self.back = self.front.take();
            }
            let deleted_from = match &self.back {
                Some((k, _)) => match self.deleted.covering(k) {
                    Some((start, _)) => start.to_vec(),
                    None => return Ok(self.back.clone()),
                },
                None => return Ok(None),
            };
            self.back = None;
            self.snapshot.skip_back_before(&deleted_from)?;
        }
    }

    /// Resolve a buffered entry over the snapshot's value of its key.
    fn resolve(&self, key: &Bytes, p: &Pending, under: Option<Bytes>) -> Result<Option<Bytes>> {
        p.resolve(key, self.operator.as_ref(), || Ok(under))
    }
}

impl Iterator for TransactionIter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let snap = match self.snapshot_front() {
                Ok(s) => s,
                Err(e) => return self.fail(e),
            };
            let buf_key = self.buffered.front().map(|(k, _)| k.clone());
            let (key, value) = match (snap, buf_key) {
                (None, None) => {
                    self.done = true;
                    return None;
                }
                (Some((k, v)), b) if b.as_ref().is_none_or(|b| k < *b) => {
                    self.front = None;
                    (k, Some(v))
                }
                (s, Some(_)) => {
                    let Some((k, p)) = self.buffered.pop_front() else {
                        continue;
                    };
                    let under = match s {
                        Some((sk, sv)) if sk == k => {
                            self.front = None;
                            Some(sv)
                        }
                        _ => None,
                    };
                    match self.resolve(&k, &p, under) {
                        Ok(v) => (k, v),
                        Err(e) => return self.fail(e),
                    }
                }
                (Some(_), None) => continue, // covered by the arm above
            };
            if self.back_last.as_ref().is_some_and(|b| key >= *b) {
                self.done = true;
                return None;
            }
            self.front_last = Some(key.clone());
            if let Some(value) = value {
                return Some(Ok((key, value)));
            }
        }
        None
    }
}

impl DoubleEndedIterator for TransactionIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        while !self.done {
            let snap = match self.snapshot_back() {
                Ok(s) => s,
                Err(e) => return self.fail(e),
            };
            let buf_key = self.buffered.back().map(|(k, _)| k.clone());
            let (key, value) = match (snap, buf_key) {
                (None, None) => {
                    self.done = true;
                    return None;
                }
                (Some((k, v)), b) if b.as_ref().is_none_or(|b| k > *b) => {
                    self.back = None;
                    (k, Some(v))
                }
                (s, Some(_)) => {
                    let Some((k, p)) = self.buffered.pop_back() else {
                        continue;
                    };
                    let under = match s {
                        Some((sk, sv)) if sk == k => {
                            self.back = None;
                            Some(sv)
                        }
                        _ => None,
                    };
                    match self.resolve(&k, &p, under) {
                        Ok(v) => (k, v),
                        Err(e) => return self.fail(e),
                    }
                }
                (Some(_), None) => continue,
            };
            if self.front_last.as_ref().is_some_and(|f| key <= *f) {
                self.done = true;
                return None;
            }
            self.back_last = Some(key.clone());
            if let Some(value) = value {
                return Some(Ok((key, value)));
            }
        }
        None
    }
}

impl std::iter::FusedIterator for TransactionIter {}
