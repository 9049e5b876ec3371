//! How memtable entries are stored and ordered in the skiplist.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ptr::NonNull;
use strata_sstable::compare_internal_keys;

use super::arena::Region;

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

/// Internal keys up to this many bytes (user keys up to 16) live inside
/// the skiplist node itself: db_bench's and most services' keys. 24 keeps
/// the node at 56 bytes for a tower of one; longer keys live in the
/// arena's bytes after the node.
const INLINE_KEY_BYTES: usize = 24;

/// One memtable entry, the key of a skiplist node. Searching a skiplist
/// compares the target with a node's key at every step; with the key
/// inline in the node that costs one cache miss per node instead of two
/// (node, then the arena). The value, and a key too long to inline, live
/// in the memtable's arena.
pub struct MemEntry {
    inline: [u8; INLINE_KEY_BYTES],
    key_len: u32,
    value_len: u32,
    /// In the arena: the key if it is not inline, then the value.
    data: NonNull<u8>,
}

// An entry is freed without reading its bytes. Crossbeam would destroy a
// node replaced by an insert of an equal key later, possibly after the
// memtable is gone (holding the whole arena until then); strata never
// inserts an internal key twice (sequence numbers are unique), and even
// then dropping an entry runs no code.
const _: () = assert!(!std::mem::needs_drop::<MemEntry>());

// SAFETY: `data` points at arena bytes that are written once, before the
// entry exists, and never again; sharing or sending an entry only ever
// reads immutable memory. The arena that owns the bytes outlives the entry
// (the contract of `MemEntry::new`).
unsafe impl Send for MemEntry {}
// SAFETY: as for `Send`: every access through `&MemEntry` is a read.
unsafe impl Sync for MemEntry {}

impl MemEntry {
    /// Arena bytes an entry for this key and value needs.
    pub fn arena_bytes(user_key: &[u8], value: &[u8]) -> usize {
        let key_len = user_key.len() + 8;
        let key_in_arena = if key_len <= INLINE_KEY_BYTES {
            0
        } else {
            key_len
        };
        key_in_arena + value.len()
    }

    /// An entry for `user_key ++ trailer` and `value`, copying into
    /// `region` the [`MemEntry::arena_bytes`] it needs.
    ///
    /// # Safety
    /// The arena `region` comes from must outlive the entry: the entry
    /// reads its bytes from there without a lifetime to say so. A
    /// memtable's skiplist holds its arena until the last node is gone.
    pub unsafe fn new(ikey_parts: (&[u8], [u8; 8]), value: &[u8], region: &mut Region<'_>) -> Self {
        let (user_key, trailer) = ikey_parts;
        let key_len = user_key.len() + trailer.len();
        let mut inline = [0u8; INLINE_KEY_BYTES];
        let data = if key_len <= INLINE_KEY_BYTES {
            inline[..user_key.len()].copy_from_slice(user_key);
            inline[user_key.len()..key_len].copy_from_slice(&trailer);
            region.push(value)
        } else {
            let data = region.push(user_key);
            region.push(&trailer);
            region.push(value);
            data
        };
        MemEntry {
            inline,
            // Keys and values are limited (MAX_KEY_SIZE, MAX_VALUE_SIZE)
            // to well under 4 GiB before they get here: by `WriteBatch`
            // for writes, by the replay's check for logged batches.
            key_len: u32::try_from(key_len).expect("key within MAX_KEY_SIZE"),
            value_len: u32::try_from(value.len()).expect("value within MAX_VALUE_SIZE"),
            data,
        }
    }

    fn arena_slice(&self, offset: usize, len: usize) -> &[u8] {
        // SAFETY: `data..data + arena_bytes` was filled by `new` from a
        // region of an arena that outlives `self` (its contract) and is
        // never written again; `offset + len` stays within those bytes.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(offset), len) }
    }

    pub fn ikey(&self) -> &[u8] {
        let len = self.key_len as usize;
        if len <= INLINE_KEY_BYTES {
            &self.inline[..len]
        } else {
            self.arena_slice(0, len)
        }
    }

    pub fn value(&self) -> &[u8] {
        let len = self.key_len as usize;
        let offset = if len <= INLINE_KEY_BYTES { 0 } else { len };
        self.arena_slice(offset, self.value_len as usize)
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
        let arena = super::super::arena::Arena::new(0);
        for key_len in [0, 1, 16, 17, 100] {
            let key = vec![b'k'; key_len];
            let trailer = [1, 2, 3, 4, 5, 6, 7, 8];
            let mut region = arena.reserve(MemEntry::arena_bytes(&key, b"value"));
            // SAFETY: `arena` outlives `e`, dropped at the end of the loop body.
            let e = unsafe { MemEntry::new((&key, trailer), b"value", &mut region) };
            assert_eq!(region.left(), 0, "arena_bytes matches what new used");
            assert_eq!(&e.ikey()[..key_len], &key[..]);
            assert_eq!(&e.ikey()[key_len..], &trailer);
            assert_eq!(e.value(), b"value");
        }
    }
}
