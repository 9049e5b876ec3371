//! A write batch the harness owns and reuses: keys and values are copied
//! into one buffer, so filling a batch allocates nothing once it has grown.
//! Each adapter turns it into its engine's batch type.

use std::ops::Range;

/// What one entry of a [`Batch`] does to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Put(&'a [u8]),
    Delete,
    /// Delete every key from the entry's key up to this one (excluded):
    /// RocksDB's `DeleteRange`.
    DeleteRange(&'a [u8]),
    /// Merge this operand into the key (RocksDB's `Merge`).
    Merge(&'a [u8]),
}

/// How an entry is stored: ranges in `Batch::data`.
#[derive(Clone)]
enum Stored {
    Put(Range<usize>),
    Delete,
    DeleteRange(Range<usize>),
    Merge(Range<usize>),
}

#[derive(Default)]
pub struct Batch {
    data: Vec<u8>,
    /// Keyspace index, key range in `data`, and what the entry does.
    entries: Vec<(usize, Range<usize>, Stored)>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }

    /// Put `key` in keyspace `keyspace` (an index, 0 the default).
    pub fn put(&mut self, keyspace: usize, key: &[u8], value: &[u8]) {
        let k = self.push(key);
        let v = self.push(value);
        self.entries.push((keyspace, k, Stored::Put(v)));
    }

    /// Delete `key` in keyspace `keyspace`.
    pub fn delete(&mut self, keyspace: usize, key: &[u8]) {
        let k = self.push(key);
        self.entries.push((keyspace, k, Stored::Delete));
    }

    /// Delete every key of keyspace `keyspace` in `[start, end)`.
    pub fn delete_range(&mut self, keyspace: usize, start: &[u8], end: &[u8]) {
        let k = self.push(start);
        let e = self.push(end);
        self.entries.push((keyspace, k, Stored::DeleteRange(e)));
    }

    /// Merge `operand` into `key` in keyspace `keyspace`.
    pub fn merge(&mut self, keyspace: usize, key: &[u8], operand: &[u8]) {
        let k = self.push(key);
        let v = self.push(operand);
        self.entries.push((keyspace, k, Stored::Merge(v)));
    }

    fn push(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        start..self.data.len()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `(keyspace, key, op)` for each entry, in order (a range delete's
    /// key is its start).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8], Op<'_>)> {
        self.entries.iter().map(|(ks, k, stored)| {
            let op = match stored {
                Stored::Put(v) => Op::Put(&self.data[v.clone()]),
                Stored::Delete => Op::Delete,
                Stored::DeleteRange(e) => Op::DeleteRange(&self.data[e.clone()]),
                Stored::Merge(v) => Op::Merge(&self.data[v.clone()]),
            };
            (*ks, &self.data[k.clone()], op)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_order() {
        let mut b = Batch::default();
        b.put(0, b"k1", b"v1");
        b.delete(3, b"k2");
        b.delete_range(1, b"a", b"c");
        let all: Vec<_> = b.iter().collect();
        assert_eq!(
            all,
            vec![
                (0, &b"k1"[..], Op::Put(b"v1")),
                (3, &b"k2"[..], Op::Delete),
                (1, &b"a"[..], Op::DeleteRange(b"c")),
            ]
        );
        b.clear();
        assert_eq!(b.len(), 0);
    }
}
