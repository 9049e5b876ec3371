//! A write batch the harness owns and reuses: keys and values are copied
//! into one buffer, so filling a batch allocates nothing once it has grown.
//! Each adapter turns it into its engine's batch type.

use std::ops::Range;

#[derive(Default)]
pub struct Batch {
    data: Vec<u8>,
    /// Key range in `data`, and the value range (`None` for a delete).
    entries: Vec<(Range<usize>, Option<Range<usize>>)>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }

    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        let k = self.push(key);
        let v = self.push(value);
        self.entries.push((k, Some(v)));
    }

    pub fn delete(&mut self, key: &[u8]) {
        let k = self.push(key);
        self.entries.push((k, None));
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

    /// `(key, Some(value))` for a put, `(key, None)` for a delete, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.entries
            .iter()
            .map(|(k, v)| (&self.data[k.clone()], v.clone().map(|v| &self.data[v])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_order() {
        let mut b = Batch::default();
        b.put(b"k1", b"v1");
        b.delete(b"k2");
        let all: Vec<_> = b.iter().collect();
        assert_eq!(
            all,
            vec![(&b"k1"[..], Some(&b"v1"[..])), (&b"k2"[..], None)]
        );
        b.clear();
        assert_eq!(b.len(), 0);
    }
}
