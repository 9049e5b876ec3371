//! A transaction's buffered writes: one entry per key, in key order per
//! keyspace, and its range deletes, with an undo log for savepoints.
//!
//! Order within the transaction: a range delete drops the buffered
//! entries it covers (they were written before it, so it deletes them),
//! so every entry left was written after every range delete covering it.
//! The batch therefore holds the range deletes first and the entries
//! after, and applies exactly what the transaction did in its order.

use super::deleted::DeletedRanges;
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::merge::{full_merge_oldest_first, MergeOperator};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Bytes a record costs beyond its key and value in the batch (kind,
/// keyspace, lengths): what `max_write_bytes` counts with them.
const RECORD_OVERHEAD: usize = 8;

/// What the transaction did to one key, in the order it will be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub base: Base,
    /// Merge operands applied on top of `base`, oldest first.
    pub operands: Vec<Bytes>,
}

/// What lies under a key's merge operands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    /// The value at the transaction's snapshot (only operands were added).
    Snapshot,
    Put(Bytes),
    Deleted,
    /// Nothing: one of the transaction's range deletes, written before
    /// this key's records, covers the key (no record of its own).
    RangeDeleted,
}

impl Pending {
    fn size(&self, key: &[u8]) -> usize {
        let base = match &self.base {
            Base::Snapshot | Base::RangeDeleted => 0,
            Base::Put(v) => RECORD_OVERHEAD + key.len() + v.len(),
            Base::Deleted => RECORD_OVERHEAD + key.len(),
        };
        base + self
            .operands
            .iter()
            .map(|o| RECORD_OVERHEAD + key.len() + o.len())
            .sum::<usize>()
    }

    /// The key's value as the transaction sees it, with `snapshot` the
    /// value under it at the snapshot (read only if needed).
    pub fn resolve(
        &self,
        key: &[u8],
        operator: Option<&Arc<dyn MergeOperator>>,
        snapshot: impl FnOnce() -> Result<Option<Bytes>>,
    ) -> Result<Option<Bytes>> {
        let base = match &self.base {
            Base::Put(v) => Some(v.clone()),
            Base::Deleted | Base::RangeDeleted => None,
            Base::Snapshot => snapshot()?,
        };
        if self.operands.is_empty() {
            return Ok(base);
        }
        full_merge_oldest_first(operator, key, base.as_deref(), &self.operands)
            .map(|v| Some(Bytes::from(v)))
    }
}

/// A buffered key: keyspace id and key.
type BufferKey = (u32, Vec<u8>);

/// A range delete as the batch holds it: keyspace id, `[start, end)`.
pub(crate) type RangeDelete = (u32, Vec<u8>, Option<Vec<u8>>);

/// A change to undo at a rollback to a savepoint.
enum Undo {
    /// The key's entry as it was before.
    Key(BufferKey, Option<Pending>),
    /// The newest range delete was added.
    RangeDelete,
}

/// The write buffer.
#[derive(Default)]
pub(crate) struct WriteBuffer {
    /// Per keyspace id, per key (nested so a lookup borrows the key).
    map: BTreeMap<u32, BTreeMap<Vec<u8>, Pending>>,
    /// The range deletes, in the order made.
    range_deletes: Vec<RangeDelete>,
    /// Per keyspace id, what they cover.
    deleted: BTreeMap<u32, DeletedRanges>,
    /// What the batch will hold, as `max_write_bytes` counts it.
    bytes: usize,
    /// Changes since the oldest live savepoint, oldest first (only kept
    /// while one is).
    undo: Vec<Undo>,
    /// Each savepoint's length of `undo`.
    savepoints: Vec<usize>,
}

/// One write to buffer.
pub(crate) enum Op<'a> {
    Put(&'a [u8]),
    Delete,
    Merge(&'a [u8]),
}

impl WriteBuffer {
    pub fn is_empty(&self) -> bool {
        self.range_deletes.is_empty() && self.map.values().all(BTreeMap::is_empty)
    }

    /// Bytes buffered.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn get(&self, keyspace: u32, key: &[u8]) -> Option<&Pending> {
        // A lookup by borrowed key needs an owned tuple: keys are short.
        self.map.get(&keyspace)?.get(key)
    }

    /// Add `op` on `key`, unless the buffer would pass `max_bytes`.
    pub fn write(&mut self, keyspace: u32, key: &[u8], op: Op<'_>, max_bytes: usize) -> Result<()> {
        let old = self.get(keyspace, key);
        let new = match (op, old) {
            (Op::Put(v), _) => Pending {
                base: Base::Put(Bytes::copy_from_slice(v)),
                operands: Vec::new(),
            },
            (Op::Delete, _) => Pending {
                base: Base::Deleted,
                operands: Vec::new(),
            },
            (Op::Merge(o), Some(old)) => {
                let mut p = old.clone();
                p.operands.push(Bytes::copy_from_slice(o));
                p
            }
            (Op::Merge(o), None) => Pending {
                // Over the snapshot's value, unless the transaction
                // deleted it with a range delete.
                base: if self.range_deleted(keyspace, key) {
                    Base::RangeDeleted
                } else {
                    Base::Snapshot
                },
                operands: vec![Bytes::copy_from_slice(o)],
            },
        };
        let old_size = old.map_or(0, |p| p.size(key));
        let would_be = self.bytes - old_size + new.size(key);
        self.bytes = within_write_bytes(would_be, max_bytes)?;
        let old = self
            .map
            .entry(keyspace)
            .or_default()
            .insert(key.to_vec(), new);
        if !self.savepoints.is_empty() {
            self.undo.push(Undo::Key((keyspace, key.to_vec()), old));
        }
        Ok(())
    }

    /// Whether one of the transaction's range deletes covers `key`.
    pub fn range_deleted(&self, keyspace: u32, key: &[u8]) -> bool {
        self.deleted.get(&keyspace).is_some_and(|d| d.covers(key))
    }

    /// What the range deletes cover in `keyspace` within `[lower, upper)`
    /// (copied, for an iterator).
    pub fn deleted_within(
        &self,
        keyspace: u32,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> DeletedRanges {
        self.deleted
            .get(&keyspace)
            .map(|d| d.within(lower, upper))
            .unwrap_or_default()
    }

    /// Add a range delete of `[start, end)` (not empty) in `keyspace`,
    /// dropping the entries it covers, unless the buffer would pass
    /// `max_bytes`.
    pub fn delete_range(
        &mut self,
        keyspace: u32,
        start: &[u8],
        end: Option<&[u8]>,
        max_bytes: usize,
    ) -> Result<()> {
        let covered: Vec<Vec<u8>> = self
            .range(keyspace, Some(start), end)
            .map(|(k, _)| k.to_vec())
            .collect();
        let freed: usize = covered
            .iter()
            .filter_map(|k| self.get(keyspace, k).map(|p| p.size(k)))
            .sum();
        let cost = RECORD_OVERHEAD + start.len() + end.map_or(0, <[u8]>::len);
        self.bytes = within_write_bytes(self.bytes - freed + cost, max_bytes)?;
        let keeping = !self.savepoints.is_empty();
        if let Some(keys) = self.map.get_mut(&keyspace) {
            for k in covered {
                let old = keys.remove(&k);
                if keeping {
                    self.undo.push(Undo::Key((keyspace, k), old));
                }
            }
        }
        self.range_deletes
            .push((keyspace, start.to_vec(), end.map(<[u8]>::to_vec)));
        self.deleted.entry(keyspace).or_default().insert(start, end);
        if keeping {
            self.undo.push(Undo::RangeDelete);
        }
        Ok(())
    }

    pub fn set_savepoint(&mut self) {
        self.savepoints.push(self.undo.len());
    }

    /// Undo every write since the newest savepoint, and drop it. `false`
    /// if there is none.
    pub fn rollback_to_savepoint(&mut self) -> bool {
        let Some(mark) = self.savepoints.pop() else {
            return false;
        };
        let mut ranges_undone = false;
        while self.undo.len() > mark {
            let Some(undo) = self.undo.pop() else {
                break;
            };
            let ((ks, key), old) = match undo {
                Undo::Key(k, old) => (k, old),
                Undo::RangeDelete => {
                    if let Some((_, start, end)) = self.range_deletes.pop() {
                        self.bytes -= RECORD_OVERHEAD + start.len() + end.map_or(0, |e| e.len());
                    }
                    ranges_undone = true;
                    continue;
                }
            };
            let keys = self.map.entry(ks).or_default();
            if let Some(now) = keys.remove(&key) {
                self.bytes -= now.size(&key);
            }
            if let Some(old) = old {
                self.bytes += old.size(&key);
                keys.insert(key, old);
            }
        }
        if ranges_undone {
            // A union does not subtract: build it again (rollbacks are rare).
            self.deleted.clear();
            for (ks, start, end) in &self.range_deletes {
                self.deleted
                    .entry(*ks)
                    .or_default()
                    .insert(start, end.as_deref());
            }
        }
        if self.savepoints.is_empty() {
            self.undo.clear();
        }
        true
    }

    /// Forget every write and savepoint.
    pub fn clear(&mut self) {
        *self = WriteBuffer::default();
    }

    /// The buffered writes of `keyspace` in `[lower, upper)`, in key order.
    pub fn range<'a>(
        &'a self,
        keyspace: u32,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> impl DoubleEndedIterator<Item = (&'a [u8], &'a Pending)> + 'a {
        use std::ops::Bound;
        let start = Bound::Included(lower.unwrap_or_default().to_vec());
        let end = match upper {
            Some(u) => Bound::Excluded(u.to_vec()),
            None => Bound::Unbounded,
        };
        let empty = matches!((&start, &end), (Bound::Included(s), Bound::Excluded(e)) if s >= e);
        self.map
            .get(&keyspace)
            .filter(|_| !empty)
            .into_iter()
            .flat_map(move |keys| keys.range((start.clone(), end.clone())))
            .map(|(k, p)| (k.as_slice(), p))
    }

    /// The batch that applies the buffer: the range deletes first (every
    /// entry left was written after those covering it), then the entries
    /// in key order.
    pub fn fill(&self, batch: &mut WriteBatch) {
        for (ks, start, end) in &self.range_deletes {
            batch.delete_range_in_id(*ks, start, end.as_deref());
        }
        for (ks, key, p) in self
            .map
            .iter()
            .flat_map(|(ks, keys)| keys.iter().map(move |(k, p)| (ks, k, p)))
        {
            match &p.base {
                Base::Snapshot | Base::RangeDeleted => {}
                Base::Put(v) => batch.put_in_id(*ks, key, v),
                Base::Deleted => batch.delete_in_id(*ks, key),
            }
            for o in &p.operands {
                batch.merge_in_id(*ks, key, o);
            }
        }
    }
}

/// `would_be` bytes of buffered writes, if within `max_bytes`
/// (`max_write_bytes`).
fn within_write_bytes(would_be: usize, max_bytes: usize) -> Result<usize> {
    if would_be > max_bytes {
        return Err(Error::TransactionTooLarge {
            limit: "max_write_bytes",
            max: max_bytes,
            would_be,
        });
    }
    Ok(would_be)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MAX: usize = usize::MAX;

    #[test]
    fn savepoints_undo_writes_and_their_bytes() {
        let mut b = WriteBuffer::default();
        b.write(0, b"a", Op::Put(b"1"), MAX).unwrap();
        let before = b.bytes();
        b.set_savepoint();
        b.write(0, b"a", Op::Put(b"22"), MAX).unwrap();
        b.write(0, b"b", Op::Delete, MAX).unwrap();
        b.set_savepoint();
        b.write(0, b"c", Op::Merge(b"x"), MAX).unwrap();
        assert!(b.rollback_to_savepoint());
        assert!(b.get(0, b"c").is_none());
        assert!(b.get(0, b"b").is_some());
        assert!(b.rollback_to_savepoint());
        assert_eq!(
            b.get(0, b"a").unwrap().base,
            Base::Put(Bytes::from_static(b"1"))
        );
        assert!(b.get(0, b"b").is_none());
        assert_eq!(b.bytes(), before);
        assert!(!b.rollback_to_savepoint(), "none left");
    }

    #[test]
    fn the_size_limit_refuses_the_write_that_passes_it() {
        let mut b = WriteBuffer::default();
        b.write(0, b"a", Op::Put(&[0; 10]), 40).unwrap();
        let e = b.write(0, b"b", Op::Put(&[0; 30]), 40).unwrap_err();
        assert!(
            matches!(e, Error::TransactionTooLarge { max: 40, .. }),
            "{e}"
        );
        assert!(b.get(0, b"b").is_none());
        // Overwriting a key replaces its bytes rather than adding.
        b.write(0, b"a", Op::Put(&[0; 20]), 40).unwrap();
        assert_eq!(b.bytes(), RECORD_OVERHEAD + 1 + 20);
    }

    #[test]
    fn a_range_delete_drops_what_it_covers_and_a_savepoint_brings_it_back() {
        let mut b = WriteBuffer::default();
        b.write(0, b"b", Op::Put(b"1"), MAX).unwrap();
        b.write(0, b"x", Op::Put(b"1"), MAX).unwrap();
        b.write(1, b"c", Op::Put(b"1"), MAX).unwrap();
        let before = b.bytes();
        b.set_savepoint();
        b.delete_range(0, b"a", Some(b"m"), MAX).unwrap();
        assert!(b.get(0, b"b").is_none(), "written before: deleted");
        assert!(b.get(1, b"c").is_some(), "another keyspace");
        assert!(b.range_deleted(0, b"c") && !b.range_deleted(0, b"m"));
        assert!(!b.range_deleted(1, b"c"));
        // After it: a merge starts from nothing, a put stands.
        b.write(0, b"c", Op::Merge(b"o"), MAX).unwrap();
        assert_eq!(b.get(0, b"c").unwrap().base, Base::RangeDeleted);
        b.write(0, b"zz", Op::Merge(b"o"), MAX).unwrap();
        assert_eq!(b.get(0, b"zz").unwrap().base, Base::Snapshot);
        // b's put freed; the range delete, and the two operands, added.
        let (freed, range, c, zz) = (
            RECORD_OVERHEAD + 2,
            RECORD_OVERHEAD + 2,
            RECORD_OVERHEAD + 2,
            RECORD_OVERHEAD + 3,
        );
        assert_eq!(b.bytes(), before - freed + range + c + zz);
        assert!(b.rollback_to_savepoint());
        assert_eq!(b.bytes(), before);
        assert!(b.get(0, b"b").is_some());
        assert!(!b.range_deleted(0, b"c"));
        assert!(b.range_deletes.is_empty());
    }

    #[test]
    fn the_batch_holds_range_deletes_before_the_entries() {
        let mut b = WriteBuffer::default();
        b.write(0, b"a", Op::Put(b"1"), MAX).unwrap();
        b.delete_range(0, b"b", None, MAX).unwrap();
        b.write(0, b"c", Op::Put(b"2"), MAX).unwrap();
        b.delete_range(2, b"", Some(b"z"), MAX).unwrap();
        let mut batch = WriteBatch::new();
        b.fill(&mut batch);
        let ops: Vec<_> = batch
            .iter()
            .map(|op| {
                let op = op.unwrap();
                (op.keyspace, op.kind, op.key.to_vec())
            })
            .collect();
        use strata_sstable::ValueKind::{Put, RangeDelete};
        assert_eq!(
            ops,
            vec![
                (0, RangeDelete, b"b".to_vec()),
                (2, RangeDelete, b"".to_vec()),
                (0, Put, b"a".to_vec()),
                (0, Put, b"c".to_vec()),
            ]
        );
    }

    #[test]
    fn range_stays_in_its_keyspace_and_bounds() {
        let mut b = WriteBuffer::default();
        for (ks, k) in [(0, "a"), (0, "m"), (1, "a"), (1, "b"), (2, "")] {
            b.write(ks, k.as_bytes(), Op::Delete, MAX).unwrap();
        }
        let keys = |ks, lo: Option<&str>, hi: Option<&str>| -> Vec<String> {
            b.range(ks, lo.map(str::as_bytes), hi.map(str::as_bytes))
                .map(|(k, _)| String::from_utf8(k.to_vec()).unwrap())
                .collect()
        };
        assert_eq!(keys(1, None, None), vec!["a", "b"]);
        assert_eq!(keys(0, Some("b"), None), vec!["m"]);
        assert_eq!(keys(0, None, Some("m")), vec!["a"]);
        assert_eq!(keys(2, None, None), vec![""]);
    }
}
