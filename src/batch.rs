//! `WriteBatch`: a group of puts and deletes applied atomically, and its
//! encoding, which is also the payload of a WAL record.
//!
//! ```text
//! +-------------+-----------+-----------+-----+-----------+
//! | sequence u64| count u32 | record 1  | ... | record N  |
//! +-------------+-----------+-----------+-----+-----------+
//!    8 bytes LE   4 bytes LE
//!
//! record = tag u8: kind (1 = put, 0 = delete), plus 0x80 when a
//!                  keyspace id follows
//!          keyspace varint32               (tag & 0x80 only; else 0,
//!                                           the default keyspace)
//!          key_len varint32, key
//!          value_len varint32, value      (puts only)
//! ```
//! The sequence number is that of the first record; record `i` gets
//! `sequence + i`. The format is documented in `docs/wal-format.md`.

use crate::error::{Error, Result};
use crate::varint::{get_length_prefixed, get_varint64, put_length_prefixed, put_varint64};
use strata_sstable::{SeqNo, ValueKind};

/// The largest key strata accepts, in bytes (64 KiB). Longer keys are
/// rejected with [`Error::InvalidArgument`](crate::Error::InvalidArgument) and nothing is written.
pub const MAX_KEY_SIZE: usize = 64 * 1024;

/// The largest value strata accepts, in bytes (64 MiB).
pub const MAX_VALUE_SIZE: usize = 64 * 1024 * 1024;

/// Bytes before the first record: the sequence number and the count.
pub const HEADER_LEN: usize = 12;

/// Set in a record's tag when a keyspace id follows it.
const KEYSPACE_FLAG: u8 = 0x80;

/// The default keyspace's id: what a record without a keyspace is in.
const DEFAULT_KEYSPACE: u32 = 0;

/// An atomic group of writes: after a crash, either all of them are in the
/// database or none is.
///
/// ```
/// let mut batch = strata::WriteBatch::new();
/// batch.put(b"a", b"1");
/// batch.delete(b"b");
/// assert_eq!(batch.len(), 2);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WriteBatch {
    rep: Vec<u8>,
    /// The first key or value over the size limit, reported at write time
    /// (`put` cannot fail, so the check is remembered here).
    oversized: Option<String>,
    /// The keyspaces the records are in, each once, in order of first
    /// use: almost always one, so a write checks and inserts per
    /// keyspace without decoding the records.
    keyspaces: Vec<u32>,
    /// The database the keyspaces of `put_in` and `delete_in` belong to
    /// (`DbInner::instance`); `Some(0)` once keyspaces of two databases
    /// were named, which no write accepts.
    owner: Option<u64>,
}

impl Default for WriteBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch")
            .field("count", &self.len())
            .field("bytes", &self.rep.len())
            .finish()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::with_capacity(64)
    }

    /// An empty batch with room for `bytes` of encoded records.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut rep = Vec::with_capacity(HEADER_LEN + bytes);
        rep.resize(HEADER_LEN, 0);
        WriteBatch {
            rep,
            oversized: None,
            keyspaces: Vec::new(),
            owner: None,
        }
    }

    /// Add a put of `key` = `value` (in the default keyspace).
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.put_in_id(DEFAULT_KEYSPACE, key.as_ref(), value.as_ref());
    }

    /// Add a delete of `key` (in the default keyspace).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.delete_in_id(DEFAULT_KEYSPACE, key.as_ref());
    }

    /// Add a put of `key` = `value` in `keyspace`: applied atomically with
    /// the batch's other records, whatever keyspaces they are in.
    pub fn put_in(
        &mut self,
        keyspace: &crate::Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) {
        self.note_owner(keyspace.db_instance());
        self.put_in_id(keyspace.id(), key.as_ref(), value.as_ref());
    }

    /// Add a delete of `key` in `keyspace`.
    pub fn delete_in(&mut self, keyspace: &crate::Keyspace, key: impl AsRef<[u8]>) {
        self.note_owner(keyspace.db_instance());
        self.delete_in_id(keyspace.id(), key.as_ref());
    }

    fn note_owner(&mut self, instance: u64) {
        self.owner = match self.owner {
            None => Some(instance),
            Some(owner) if owner == instance => Some(owner),
            Some(_) => Some(0),
        };
    }

    /// The database whose keyspaces the batch names (see `owner`).
    pub(crate) fn owner(&self) -> Option<u64> {
        self.owner
    }

    pub(crate) fn put_in_id(&mut self, keyspace: u32, key: &[u8], value: &[u8]) {
        self.check_size("key", key.len(), MAX_KEY_SIZE);
        self.check_size("value", value.len(), MAX_VALUE_SIZE);
        self.push_tag(ValueKind::Put, keyspace);
        put_length_prefixed(&mut self.rep, key);
        put_length_prefixed(&mut self.rep, value);
        self.bump_count();
    }

    pub(crate) fn delete_in_id(&mut self, keyspace: u32, key: &[u8]) {
        self.check_size("key", key.len(), MAX_KEY_SIZE);
        self.push_tag(ValueKind::Delete, keyspace);
        put_length_prefixed(&mut self.rep, key);
        self.bump_count();
    }

    /// A record's tag (and keyspace id, unless the default).
    fn push_tag(&mut self, kind: ValueKind, keyspace: u32) {
        if self.keyspaces.last() != Some(&keyspace) && !self.keyspaces.contains(&keyspace) {
            self.keyspaces.push(keyspace);
        }
        if keyspace == DEFAULT_KEYSPACE {
            self.rep.push(kind as u8);
        } else {
            self.rep.push(kind as u8 | KEYSPACE_FLAG);
            put_varint64(&mut self.rep, u64::from(keyspace));
        }
    }

    /// Add a record as read back from a batch ([`DecodedBatch::iter`]),
    /// in the keyspace it names: for tools that rewrite logged batches.
    pub fn push_op(&mut self, op: BatchOp<'_>) {
        match op.kind {
            ValueKind::Put => self.put_in_id(op.keyspace, op.key, op.value),
            ValueKind::Delete => self.delete_in_id(op.keyspace, op.key),
            // Not yet a batch record kind: refused when the batch is
            // written, as an oversized key is, since `push_op` cannot fail.
            ValueKind::RangeDelete => {
                if self.oversized.is_none() {
                    self.oversized =
                        Some("a range deletion record is not supported yet".to_string());
                }
            }
        }
    }

    /// The keyspaces the records are in, each once.
    pub(crate) fn keyspaces(&self) -> &[u32] {
        &self.keyspaces
    }

    /// Remove every record, keeping the allocated buffer.
    pub fn clear(&mut self) {
        self.rep.truncate(HEADER_LEN);
        self.rep.fill(0);
        self.oversized = None;
        self.keyspaces.clear();
        self.owner = None;
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.count() as usize
    }

    /// True when the batch holds no records.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Bytes allocated for the encoding.
    pub(crate) fn capacity(&self) -> usize {
        self.rep.capacity()
    }

    /// Encoded size in bytes, header included.
    pub fn encoded_size(&self) -> usize {
        self.rep.len()
    }

    /// The records, in the order they were added.
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            input: self.rep.get(HEADER_LEN..).unwrap_or_default(),
            offset: HEADER_LEN,
            remaining: self.count(),
        }
    }

    /// `Err(InvalidArgument)` if a key or value was over the limits.
    pub(crate) fn validate(&self) -> Result<()> {
        match &self.oversized {
            Some(msg) => Err(Error::InvalidArgument(msg.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn count(&self) -> u32 {
        read_u32(&self.rep[8..HEADER_LEN])
    }

    pub(crate) fn set_sequence(&mut self, seq: SeqNo) {
        self.rep[..8].copy_from_slice(&seq.to_le_bytes());
    }

    /// The encoded bytes (header and records).
    pub(crate) fn encoded(&self) -> &[u8] {
        &self.rep
    }

    fn bump_count(&mut self) {
        let count = self.count() + 1;
        self.rep[8..HEADER_LEN].copy_from_slice(&count.to_le_bytes());
    }

    fn check_size(&mut self, what: &str, len: usize, max: usize) {
        if len > max && self.oversized.is_none() {
            self.oversized = Some(format!(
                "{what} of {len} bytes exceeds the maximum of {max} bytes"
            ));
        }
    }
}

fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// One record of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOp<'a> {
    /// The keyspace's id (0: the default keyspace).
    pub keyspace: u32,
    /// Put or delete.
    pub kind: ValueKind,
    /// The user key.
    pub key: &'a [u8],
    /// The value (empty for deletes).
    pub value: &'a [u8],
}

/// Iterates the records of a batch. Yields `Err` (and then stops) if the
/// encoding is damaged: only possible for batches decoded from disk.
#[derive(Clone)]
pub struct BatchIter<'a> {
    input: &'a [u8],
    offset: usize,
    remaining: u32,
}

/// Where a damaged batch went wrong: byte offset within the batch, reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    /// Offset within the encoded batch.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = std::result::Result<BatchOp<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            if self.input.is_empty() {
                return None;
            }
            let err = BatchError {
                offset: self.offset,
                reason: "bytes after the last counted record",
            };
            self.input = &[];
            return Some(Err(err));
        }
        let result = self.decode_one();
        match result {
            Ok(op) => {
                self.remaining -= 1;
                Some(Ok(op))
            }
            Err(reason) => {
                self.remaining = 0;
                self.input = &[];
                Some(Err(BatchError {
                    offset: self.offset,
                    reason,
                }))
            }
        }
    }
}

impl<'a> BatchIter<'a> {
    fn decode_one(&mut self) -> std::result::Result<BatchOp<'a>, &'static str> {
        let (&tag, rest) = self
            .input
            .split_first()
            .ok_or("batch ends before its counted records")?;
        let kind = match ValueKind::from_u8(tag & !KEYSPACE_FLAG) {
            Some(k @ (ValueKind::Put | ValueKind::Delete)) => k,
            _ => return Err("unknown record kind"),
        };
        let mut used = 1;
        let mut keyspace = DEFAULT_KEYSPACE;
        if tag & KEYSPACE_FLAG != 0 {
            let (id, n) = get_varint64(rest).ok_or("truncated keyspace id")?;
            keyspace = u32::try_from(id).map_err(|_| "keyspace id out of range")?;
            used += n;
        }
        let (key, n) = get_length_prefixed(&self.input[used..]).ok_or("truncated key")?;
        used += n;
        let mut value: &[u8] = &[];
        if kind == ValueKind::Put {
            let (v, m) = get_length_prefixed(&self.input[used..]).ok_or("truncated value")?;
            value = v;
            used += m;
        }
        self.input = &self.input[used..];
        self.offset += used;
        Ok(BatchOp {
            keyspace,
            kind,
            key,
            value,
        })
    }
}

/// A batch read back from a WAL record: checks the header and leaves record
/// decoding to [`DecodedBatch::iter`].
pub struct DecodedBatch<'a> {
    rep: &'a [u8],
}

impl<'a> DecodedBatch<'a> {
    /// Check that `rep` is at least a header.
    pub fn new(rep: &'a [u8]) -> std::result::Result<Self, BatchError> {
        if rep.len() < HEADER_LEN {
            return Err(BatchError {
                offset: rep.len(),
                reason: "record shorter than a batch header",
            });
        }
        Ok(DecodedBatch { rep })
    }

    /// Sequence number of the first record.
    pub fn sequence(&self) -> SeqNo {
        read_u64(&self.rep[..8])
    }

    /// Number of records the header claims.
    pub fn count(&self) -> u32 {
        read_u32(&self.rep[8..HEADER_LEN])
    }

    /// The records.
    pub fn iter(&self) -> BatchIter<'a> {
        BatchIter {
            input: &self.rep[HEADER_LEN..],
            offset: HEADER_LEN,
            remaining: self.count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_come_back_in_order() {
        let mut b = WriteBatch::new();
        b.put(b"k1", b"v1");
        b.delete(b"k2");
        b.put(b"", b"");
        b.set_sequence(100);
        let decoded = DecodedBatch::new(b.encoded()).unwrap();
        assert_eq!(decoded.sequence(), 100);
        let ops: Vec<_> = decoded
            .iter()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(
            ops,
            [
                BatchOp {
                    keyspace: 0,
                    kind: ValueKind::Put,
                    key: b"k1",
                    value: b"v1"
                },
                BatchOp {
                    keyspace: 0,
                    kind: ValueKind::Delete,
                    key: b"k2",
                    value: b""
                },
                BatchOp {
                    keyspace: 0,
                    kind: ValueKind::Put,
                    key: b"",
                    value: b""
                },
            ]
        );
    }

    #[test]
    fn records_carry_their_keyspace() {
        let mut b = WriteBatch::new();
        b.put_in_id(7, b"a", b"1");
        b.put(b"b", b"2");
        b.delete_in_id(300, b"c");
        b.put_in_id(7, b"d", b"4");
        assert_eq!(b.keyspaces(), &[7, 0, 300]);
        b.set_sequence(10);
        let decoded = DecodedBatch::new(b.encoded()).unwrap();
        let ops: Vec<_> = decoded
            .iter()
            .map(|op| op.map(|op| (op.keyspace, op.kind, op.key, op.value)))
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(
            ops,
            [
                (7, ValueKind::Put, &b"a"[..], &b"1"[..]),
                (0, ValueKind::Put, b"b", b"2"),
                (300, ValueKind::Delete, b"c", b""),
                (7, ValueKind::Put, b"d", b"4"),
            ]
        );
        b.clear();
        assert!(b.keyspaces().is_empty());
    }

    #[test]
    fn oversized_keys_are_reported_at_validation() {
        let mut b = WriteBatch::new();
        b.put(vec![0u8; MAX_KEY_SIZE + 1], b"v");
        assert!(matches!(b.validate(), Err(Error::InvalidArgument(_))));
        b.clear();
        assert!(b.validate().is_ok());
        assert!(b.is_empty());
    }

    proptest! {
        /// Any bytes decode to records or a clean error, never a panic, and
        /// never more records than the header counts.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(d) = DecodedBatch::new(&bytes) {
                let n = d.iter().take_while(|r| r.is_ok()).count();
                prop_assert!(n as u64 <= u64::from(d.count()));
            }
        }
    }
}
