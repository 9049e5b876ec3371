//! How memtable entries are stored and ordered in the skiplist.

use std::borrow::Borrow;
use std::cmp::Ordering;
use strata_sstable::compare_internal_keys;

/// An internal key (`user_key ++ trailer`) viewed as a type whose order is
/// the internal-key order, so the skiplist can be searched with a borrowed
/// key without building an owned one.
#[repr(transparent)]
#[derive(Debug, PartialEq, Eq)]
pub struct IKey([u8]);

impl IKey {
    pub fn new(bytes: &[u8]) -> &IKey {
        // SAFETY: `IKey` is `#[repr(transparent)]` over `[u8]`, so a pointer
        // to `[u8]` is a valid pointer to `IKey` with the same metadata and
        // lifetime. This is the standard newtype-over-unsized cast.
        unsafe { &*(bytes as *const [u8] as *const IKey) }
    }
}

impl Ord for IKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal_keys(&self.0, &other.0)
    }
}

impl PartialOrd for IKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Internal keys up to this many bytes (user keys up to 24) live inside
/// the skiplist node itself.
const INLINE_KEY_BYTES: usize = 32;

/// One memtable entry. Searching a skiplist compares the target with a
/// node's key at every step; with the key inline in the node that costs
/// one cache miss per node instead of two (node, then a heap buffer). The
/// value, and a key too long to inline, live in one heap allocation.
pub struct MemEntry {
    inline: [u8; INLINE_KEY_BYTES],
    key_len: u32,
    /// The value; for a long key, the key followed by the value.
    heap: Box<[u8]>,
}

impl MemEntry {
    pub fn new(ikey_parts: (&[u8], [u8; 8]), value: &[u8]) -> Self {
        let (user_key, trailer) = ikey_parts;
        let key_len = user_key.len() + trailer.len();
        let mut inline = [0u8; INLINE_KEY_BYTES];
        let heap = if key_len <= INLINE_KEY_BYTES {
            inline[..user_key.len()].copy_from_slice(user_key);
            inline[user_key.len()..key_len].copy_from_slice(&trailer);
            Box::from(value)
        } else {
            let mut buf = Vec::with_capacity(key_len + value.len());
            buf.extend_from_slice(user_key);
            buf.extend_from_slice(&trailer);
            buf.extend_from_slice(value);
            buf.into_boxed_slice()
        };
        MemEntry {
            inline,
            // Keys are limited to MAX_KEY_SIZE (64 KiB) before they get here.
            key_len: key_len as u32,
            heap,
        }
    }

    pub fn ikey(&self) -> &[u8] {
        let len = self.key_len as usize;
        if len <= INLINE_KEY_BYTES {
            &self.inline[..len]
        } else {
            &self.heap[..len]
        }
    }

    pub fn value(&self) -> &[u8] {
        let len = self.key_len as usize;
        if len <= INLINE_KEY_BYTES {
            &self.heap
        } else {
            &self.heap[len..]
        }
    }

    /// Bytes this entry occupies beyond the skiplist node's fixed part.
    pub fn heap_bytes(&self) -> usize {
        self.heap.len() + INLINE_KEY_BYTES
    }
}

impl Borrow<IKey> for MemEntry {
    fn borrow(&self) -> &IKey {
        IKey::new(self.ikey())
    }
}

impl PartialEq for MemEntry {
    fn eq(&self, other: &Self) -> bool {
        self.ikey() == other.ikey()
    }
}

impl Eq for MemEntry {}

impl Ord for MemEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal_keys(self.ikey(), other.ikey())
    }
}

impl PartialOrd for MemEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_keys_round_trip() {
        for key_len in [0, 1, 24, 25, 100] {
            let key = vec![b'k'; key_len];
            let e = MemEntry::new((&key, [1, 2, 3, 4, 5, 6, 7, 8]), b"value");
            assert_eq!(&e.ikey()[..key_len], &key[..]);
            assert_eq!(&e.ikey()[key_len..], &[1, 2, 3, 4, 5, 6, 7, 8]);
            assert_eq!(e.value(), b"value");
        }
    }
}
