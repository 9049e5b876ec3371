//! A transaction's cursor: a seekable position over its buffered writes
//! laid on its snapshot (read-your-own-writes), moving both ways.
//!
//! It keeps two positions in step: the snapshot's [`Cursor`] and an index
//! into the buffered writes, copied (sorted) when the cursor is made. The
//! entry shown is the smaller key of the two going forward (the larger
//! going backward); a buffered write of the same key resolves over the
//! snapshot's value, and a key the transaction deleted is stepped over.
//!
//! Moving forward, the snapshot cursor stands at the first snapshot key
//! `>=` the current key and `buffered` index `at` at the first buffered
//! key `>=` it; moving backward, the snapshot cursor stands at the last
//! snapshot key `<=` it and `at` counts the buffered keys `<=` it. A turn
//! repositions both around the current key (one seek, as a database
//! cursor's own turn does). The snapshot cursor never rests on a key the
//! transaction's range deletes cover: it seeks past the range, the way it
//! moves.

use super::buffer::Pending;
use super::deleted::DeletedRanges;
use crate::cursor::Cursor;
use crate::error::Result;
use crate::merge::MergeOperator;
use bytes::Bytes;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

/// The entry the cursor is at.
enum Current {
    /// Not at an entry.
    None,
    /// The snapshot cursor's entry, unchanged by the transaction.
    Snapshot,
    /// A key the transaction wrote, as it sees it.
    Buffered(Bytes, Bytes),
}

/// A seekable position in one keyspace as a transaction sees it: its
/// snapshot with its own puts and merges shown and its deletes (range
/// deletes too) hidden.
/// The buffered writes are copied when it is made: later writes of the
/// transaction do not show in it. RocksDB: `Transaction::GetIterator`.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = strata::Db::open(dir.path(), strata::Options::default()).unwrap();
/// db.put(b"a", b"1")?;
/// db.put(b"c", b"3")?;
/// let mut tx = db.transaction();
/// tx.put(b"b", b"2")?;
/// tx.delete(b"c")?;
/// let mut cursor = tx.cursor()?;
/// cursor.seek(b"b")?;
/// assert_eq!(cursor.key(), Some(&b"b"[..]));
/// cursor.next()?;
/// assert!(!cursor.valid(), "c is deleted in the transaction");
/// cursor.seek_to_last()?;
/// assert_eq!(cursor.value(), Some(&b"2"[..]));
/// # Ok::<(), strata::Error>(())
/// ```
pub struct TransactionCursor {
    snapshot: Cursor,
    buffered: Vec<(Bytes, Pending)>,
    /// What the transaction's range deletes cover.
    deleted: DeletedRanges,
    operator: Option<Arc<dyn MergeOperator>>,
    /// Forward: the first buffered index with a key `>=` the current
    /// key; backward: the count of buffered keys `<=` it.
    at: usize,
    direction: Direction,
    current: Current,
}

impl TransactionCursor {
    pub(crate) fn new(
        snapshot: Cursor,
        buffered: Vec<(Bytes, Pending)>,
        deleted: DeletedRanges,
        operator: Option<Arc<dyn MergeOperator>>,
    ) -> Self {
        TransactionCursor {
            snapshot,
            buffered,
            deleted,
            operator,
            at: 0,
            direction: Direction::Forward,
            current: Current::None,
        }
    }

    /// Whether the cursor is at an entry.
    pub fn valid(&self) -> bool {
        !matches!(self.current, Current::None)
    }

    /// The current key, or `None` when not valid.
    pub fn key(&self) -> Option<&[u8]> {
        match &self.current {
            Current::None => None,
            Current::Snapshot => self.snapshot.key(),
            Current::Buffered(k, _) => Some(k),
        }
    }

    /// The current value, or `None` when not valid.
    pub fn value(&self) -> Option<&[u8]> {
        match &self.current {
            Current::None => None,
            Current::Snapshot => self.snapshot.value(),
            Current::Buffered(_, v) => Some(v),
        }
    }

    /// Position at the first key `>= key`.
    pub fn seek(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        self.snapshot.seek(key)?;
        self.at = self.buffered.partition_point(|(k, _)| &k[..] < key);
        self.settle(Direction::Forward)
    }

    /// Position at the last key `<= key`.
    pub fn seek_for_prev(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        self.snapshot.seek_for_prev(key)?;
        self.at = self.buffered.partition_point(|(k, _)| &k[..] <= key);
        self.settle(Direction::Backward)
    }

    /// Position at the first key.
    pub fn seek_to_first(&mut self) -> Result<()> {
        self.snapshot.seek_to_first()?;
        self.at = 0;
        self.settle(Direction::Forward)
    }

    /// Position at the last key.
    pub fn seek_to_last(&mut self) -> Result<()> {
        self.snapshot.seek_to_last()?;
        self.at = self.buffered.len();
        self.settle(Direction::Backward)
    }

    /// Move to the next key; no-op when not valid.
    #[expect(
        clippy::should_implement_trait,
        reason = "a cursor moves in place and can fail; it is not an Iterator"
    )]
    pub fn next(&mut self) -> Result<()> {
        let Some(key) = self.key().map(Bytes::copy_from_slice) else {
            return Ok(());
        };
        if self.direction == Direction::Backward {
            // Turn: both positions to the first key `>=` the current one.
            self.snapshot.seek(&key)?;
            self.at = self.buffered.partition_point(|(k, _)| *k < key);
        }
        if self.snapshot.key() == Some(&key[..]) {
            self.snapshot.next()?;
        }
        if self.buffered.get(self.at).is_some_and(|(k, _)| *k == key) {
            self.at += 1;
        }
        self.settle(Direction::Forward)
    }

    /// Move to the previous key; no-op when not valid.
    pub fn prev(&mut self) -> Result<()> {
        let Some(key) = self.key().map(Bytes::copy_from_slice) else {
            return Ok(());
        };
        if self.direction == Direction::Forward {
            // Turn: both positions to the last key `<=` the current one.
            self.snapshot.seek_for_prev(&key)?;
            self.at = self.buffered.partition_point(|(k, _)| *k <= key);
        }
        if self.snapshot.key() == Some(&key[..]) {
            self.snapshot.prev()?;
        }
        if self.at > 0 && self.buffered[self.at - 1].0 == key {
            self.at -= 1;
        }
        self.settle(Direction::Backward)
    }

    /// From the two positions, find the entry to show moving in
    /// `direction`, stepping over keys the transaction deleted. A failure
    /// (a merge operator's) leaves the cursor not valid.
    fn settle(&mut self, direction: Direction) -> Result<()> {
        self.direction = direction;
        self.current = Current::None;
        let forward = direction == Direction::Forward;
        self.skip_deleted(forward)?;
        loop {
            let buffered = if forward {
                self.buffered.get(self.at)
            } else {
                self.at.checked_sub(1).map(|i| &self.buffered[i])
            };
            let Some((key, pending)) = buffered else {
                if self.snapshot.valid() {
                    self.current = Current::Snapshot;
                }
                return Ok(());
            };
            let snapshot_first =
                self.snapshot.key().is_some_and(
                    |s| {
                        if forward {
                            s < &key[..]
                        } else {
                            s > &key[..]
                        }
                    },
                );
            if snapshot_first {
                self.current = Current::Snapshot;
                return Ok(());
            }
            let same_key = self.snapshot.key() == Some(&key[..]);
            let under = same_key.then(|| self.snapshot.value().map(Bytes::copy_from_slice));
            let value = pending.resolve(key, self.operator.as_ref(), || Ok(under.flatten()))?;
            if let Some(value) = value {
                self.current = Current::Buffered(key.clone(), value);
                return Ok(());
            }
            // Deleted by the transaction: step over the key.
            if same_key {
                if forward {
                    self.snapshot.next()?;
                } else {
                    self.snapshot.prev()?;
                }
                self.skip_deleted(forward)?;
            }
            if forward {
                self.at += 1;
            } else {
                self.at -= 1;
            }
        }
    }

    /// Move the snapshot cursor off the keys the transaction's range
    /// deletes cover, the way it moves: past the covering range's end
    /// (forward) or before its start (backward), one seek a range.
    fn skip_deleted(&mut self, forward: bool) -> Result<()> {
        loop {
            let Some(key) = self.snapshot.key() else {
                return Ok(());
            };
            let Some((start, end)) = self.deleted.covering(key) else {
                return Ok(());
            };
            if forward {
                match end.map(<[u8]>::to_vec) {
                    Some(end) => self.snapshot.seek(&end)?,
                    None => {
                        // Every key from here on is deleted: past the last.
                        self.snapshot.seek_to_last()?;
                        self.snapshot.next()?;
                    }
                }
            } else {
                let start = start.to_vec();
                self.snapshot.seek_before(&start)?;
            }
        }
    }
}
