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

/// One memtable entry in a single allocation: the internal key, then the
/// value. One allocation per insert (plus the skiplist node) keeps the
/// write path lean.
pub struct MemEntry {
    buf: Box<[u8]>,
    key_len: u32,
}

impl MemEntry {
    pub fn new(ikey_parts: (&[u8], [u8; 8]), value: &[u8]) -> Self {
        let (user_key, trailer) = ikey_parts;
        let key_len = user_key.len() + trailer.len();
        let mut buf = Vec::with_capacity(key_len + value.len());
        buf.extend_from_slice(user_key);
        buf.extend_from_slice(&trailer);
        buf.extend_from_slice(value);
        MemEntry {
            buf: buf.into_boxed_slice(),
            // Keys are limited to MAX_KEY_SIZE (64 KiB) before they get here.
            key_len: key_len as u32,
        }
    }

    pub fn ikey(&self) -> &[u8] {
        &self.buf[..self.key_len as usize]
    }

    pub fn value(&self) -> &[u8] {
        &self.buf[self.key_len as usize..]
    }

    /// Heap bytes this entry holds.
    pub fn heap_bytes(&self) -> usize {
        self.buf.len()
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
