//! A write batch the harness owns and reuses: keys and values are copied
//! into one buffer, so filling a batch allocates nothing once it has grown.
//! Each adapter turns it into its engine's batch type.

use std::ops::Range;

#[derive(Default)]
pub struct Batch {
    data: Vec<u8>,
    /// Keyspace index, key range in `data`, and the value range (`None`
    /// for a delete).
    entries: Vec<(usize, Range<usize>, Option<Range<usize>>)>,
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
        self.entries.push((keyspace, k, Some(v)));
    }

    /// Delete `key` in keyspace `keyspace`.
    pub fn delete(&mut self, keyspace: usize, key: &[u8]) {
        let k = self.push(key);
        self.entries.push((keyspace, k, None));
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

    /// `(keyspace, key, Some(value))` for a put, `(keyspace, key, None)`
    /// for a delete, in order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8], Option<&[u8]>)> {
        self.entries
            .iter()
            .map(|(ks, k, v)| (*ks, &self.data[k.clone()], v.clone().map(|v| &self.data[v])))
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
        let all: Vec<_> = b.iter().collect();
        assert_eq!(
            all,
            vec![(0, &b"k1"[..], Some(&b"v1"[..])), (3, &b"k2"[..], None)]
        );
        b.clear();
        assert_eq!(b.len(), 0);
    }
}
