//! `WriteBatch`: a group of puts, deletes, merges and range deletes applied
//! atomically, and its encoding, which is also the payload of a WAL record.
//!
//! ```text
//! +-------------+-----------+-----------+-----+-----------+
//! | sequence u64| count u32 | record 1  | ... | record N  |
//! +-------------+-----------+-----------+-----+-----------+
//!    8 bytes LE   4 bytes LE
//!
//! record = tag u8: kind (1 = put, 0 = delete, 2 = merge, 3 = range
//!                  delete, 4 = put with expiry), plus
//!                  0x80 when a keyspace id follows
//!          keyspace varint32               (tag & 0x80 only; else 0,
//!                                           the default keyspace)
//!          key_len varint32, key           (a range delete's start)
//!          value_len varint32, value      (puts: the value; puts with
//!                                           expiry: the expiry, u64 LE
//!                                           micros, then the value;
//!                                           merges: the operand; range
//!                                           deletes: the end, empty for
//!                                           no end; deletes: absent)
//! ```
//! The sequence number is that of the first record; record `i` gets
//! `sequence + i`. A range delete's bounded end is after its start: an
//! empty range is never encoded, so an empty end can mean "no end". The
//! format is documented in `docs/wal-format.md`.

use crate::core::{prefix_upper_bound, successor_key};
use crate::error::{Error, Result};
use crate::varint::{get_length_prefixed, get_varint64, put_length_prefixed, put_varint64};
use std::ops::{Bound, RangeBounds};
use strata_sstable::{SeqNo, ValueKind};

/// The largest key strata accepts, in bytes (64 KiB). Longer keys are
/// rejected with [`Error::InvalidArgument`](crate::Error::InvalidArgument) and nothing is written.
pub const MAX_KEY_SIZE: usize = 64 * 1024;

/// The largest value strata accepts, in bytes (64 MiB).
pub const MAX_VALUE_SIZE: usize = 64 * 1024 * 1024;

/// The longest end of a range delete: an excluded start or an included
/// end of a longest key becomes `key ++ [0]`.
pub(crate) const MAX_RANGE_END_SIZE: usize = MAX_KEY_SIZE + 1;

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
    /// The first invalid argument (a key or value over the size limit, a
    /// range whose start is after its end), reported at write time (`put`
    /// and `delete_range` cannot fail, so the check is remembered here).
    invalid: Option<String>,
    /// The keyspaces the records are in, each once, in order of first
    /// use: almost always one, so a write checks and inserts per
    /// keyspace without decoding the records.
    keyspaces: Vec<u32>,
    /// The keyspaces holding merge operands, each once: a write checks
    /// they have a merge operator.
    merge_keyspaces: Vec<u32>,
    /// The database the keyspaces of `put_in`, `delete_in` and the range
    /// deletes belong to (`DbInner::instance`); `Some(0)` once keyspaces
    /// of two databases were named, which no write accepts.
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
            invalid: None,
            keyspaces: Vec::new(),
            merge_keyspaces: Vec::new(),
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

    /// Add a put of `key` = `value` (in the default keyspace) that expires
    /// at `expiry_micros` (microseconds since the Unix epoch, on the
    /// database clock: docs/design/ttl.md). What a change-feed consumer
    /// applies for [`ChangeKind::PutWithExpiry`](crate::ChangeKind), so a
    /// replica's copy expires when the primary's does; a write's
    /// [`WriteOptions::ttl`](crate::WriteOptions) leaves such a put as it
    /// is.
    pub fn put_with_expiry(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        expiry_micros: u64,
    ) {
        self.put_expiring_in_id(
            DEFAULT_KEYSPACE,
            key.as_ref(),
            value.as_ref(),
            expiry_micros,
        );
    }

    /// Add a put of `key` = `value` in `keyspace` that expires at
    /// `expiry_micros` (see [`put_with_expiry`](Self::put_with_expiry)).
    pub fn put_with_expiry_in(
        &mut self,
        keyspace: &crate::Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        expiry_micros: u64,
    ) {
        self.note_owner(keyspace.db_instance());
        self.put_expiring_in_id(keyspace.id(), key.as_ref(), value.as_ref(), expiry_micros);
    }

    /// Add a delete of `key` in `keyspace`.
    pub fn delete_in(&mut self, keyspace: &crate::Keyspace, key: impl AsRef<[u8]>) {
        self.note_owner(keyspace.db_instance());
        self.delete_in_id(keyspace.id(), key.as_ref());
    }

    /// Add a merge of `operand` into `key` (in the default keyspace): the
    /// keyspace's merge operator combines it with the key's value when it
    /// is read (see [`Db::merge`](crate::Db::merge)). RocksDB:
    /// `WriteBatch::Merge`.
    pub fn merge(&mut self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) {
        self.merge_in_id(DEFAULT_KEYSPACE, key.as_ref(), operand.as_ref());
    }

    /// Add a merge of `operand` into `key` in `keyspace`.
    pub fn merge_in(
        &mut self,
        keyspace: &crate::Keyspace,
        key: impl AsRef<[u8]>,
        operand: impl AsRef<[u8]>,
    ) {
        self.note_owner(keyspace.db_instance());
        self.merge_in_id(keyspace.id(), key.as_ref(), operand.as_ref());
    }

    /// Add the range delete `range_to_span` made of a range: nothing for
    /// an empty range, the remembered error for an inverted one.
    fn push_span(&mut self, keyspace: u32, span: std::result::Result<Option<Span>, String>) {
        match span {
            Ok(Some((start, end))) => self.delete_range_in_id(keyspace, &start, end.as_deref()),
            Ok(None) => {}
            Err(reason) => self.note_invalid(|| reason),
        }
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

    /// A put that expires at `expiry_micros` (docs/design/ttl.md).
    pub(crate) fn put_expiring_in_id(
        &mut self,
        keyspace: u32,
        key: &[u8],
        value: &[u8],
        expiry_micros: u64,
    ) {
        self.check_size("key", key.len(), MAX_KEY_SIZE);
        self.check_size("value", value.len(), MAX_VALUE_SIZE);
        self.push_tag(ValueKind::PutWithExpiry, keyspace);
        put_length_prefixed(&mut self.rep, key);
        put_varint64(&mut self.rep, (crate::ttl::EXPIRY_LEN + value.len()) as u64);
        crate::ttl::encode_expiring(&mut self.rep, expiry_micros, value);
        self.bump_count();
    }

    /// Make each plain put expire at `expiry_of(its keyspace)`, where
    /// that is `Some` (`ttl/stamp.rs`). Re-encodes the batch only when a
    /// put changes.
    pub(crate) fn expire_puts(&mut self, expiry_of: impl Fn(u32) -> Option<u64>) {
        let changes =
            |op: &BatchOp<'_>| op.kind == ValueKind::Put && expiry_of(op.keyspace).is_some();
        if !self.iter().any(|op| op.as_ref().is_ok_and(changes)) {
            return;
        }
        let mut out = WriteBatch::with_capacity(self.rep.len() + 8 * self.len());
        for op in self.iter() {
            // A batch built in memory always decodes.
            let Ok(op) = op else { return };
            match (op.kind, expiry_of(op.keyspace)) {
                (ValueKind::Put, Some(expiry)) => {
                    out.put_expiring_in_id(op.keyspace, op.key, op.value, expiry)
                }
                _ => out.push_op(op),
            }
        }
        self.rep = out.rep;
        self.keyspaces = out.keyspaces;
        if self.invalid.is_none() {
            self.invalid = out.invalid;
        }
    }

    pub(crate) fn merge_in_id(&mut self, keyspace: u32, key: &[u8], operand: &[u8]) {
        self.check_size("key", key.len(), MAX_KEY_SIZE);
        self.check_size("merge operand", operand.len(), MAX_VALUE_SIZE);
        self.push_tag(ValueKind::Merge, keyspace);
        if !self.merge_keyspaces.contains(&keyspace) {
            self.merge_keyspaces.push(keyspace);
        }
        put_length_prefixed(&mut self.rep, key);
        put_length_prefixed(&mut self.rep, operand);
        self.bump_count();
    }

    pub(crate) fn delete_in_id(&mut self, keyspace: u32, key: &[u8]) {
        self.check_size("key", key.len(), MAX_KEY_SIZE);
        self.push_tag(ValueKind::Delete, keyspace);
        put_length_prefixed(&mut self.rep, key);
        self.bump_count();
    }

    /// Add a range delete of `[start, end)` (`end` `None`: no end). An
    /// `end` not after `start` is refused at write time: the encoding never
    /// holds one (an empty end means no end, and the decoder rejects the
    /// rest). Each end may be one byte longer than [`MAX_KEY_SIZE`]: an
    /// excluded start or included end of a longest key becomes `key ++ [0]`.
    pub(crate) fn delete_range_in_id(&mut self, keyspace: u32, start: &[u8], end: Option<&[u8]>) {
        if let Some(end) = end {
            if end <= start {
                self.note_invalid(|| inverted_range_reason(start, end));
                return;
            }
        }
        self.check_size("range delete start", start.len(), MAX_RANGE_END_SIZE);
        let end = end.unwrap_or_default();
        self.check_size("range delete end", end.len(), MAX_RANGE_END_SIZE);
        self.push_tag(ValueKind::RangeDelete, keyspace);
        put_length_prefixed(&mut self.rep, start);
        put_length_prefixed(&mut self.rep, end);
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
            ValueKind::Merge => self.merge_in_id(op.keyspace, op.key, op.value),
            ValueKind::RangeDelete => self.delete_range_in_id(op.keyspace, op.key, op.range_end()),
            ValueKind::PutWithExpiry => match crate::ttl::split_expiring(op.value) {
                Some((expiry, value)) => {
                    self.put_expiring_in_id(op.keyspace, op.key, value, expiry)
                }
                None => self.note_invalid(|| "an expiring value shorter than its expiry".into()),
            },
            // Never decoded from a batch (`BatchIter` refuses it).
            ValueKind::BlobIndex => {
                self.note_invalid(|| "a blob reference is not a batch record".into())
            }
        }
    }

    /// The keyspaces the records are in, each once.
    pub(crate) fn keyspaces(&self) -> &[u32] {
        &self.keyspaces
    }

    /// The keyspaces holding merge operands, each once.
    pub(crate) fn merge_keyspaces(&self) -> &[u32] {
        &self.merge_keyspaces
    }

    /// Remove every record, keeping the allocated buffer.
    pub fn clear(&mut self) {
        self.rep.truncate(HEADER_LEN);
        self.rep.fill(0);
        self.invalid = None;
        self.keyspaces.clear();
        self.merge_keyspaces.clear();
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

    /// `Err(InvalidArgument)` if a key or value was over the limits, or a
    /// range's start after its end.
    pub(crate) fn validate(&self) -> Result<()> {
        match &self.invalid {
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
        if len > max {
            self.note_invalid(|| {
                format!("{what} of {len} bytes exceeds the maximum of {max} bytes")
            });
        }
    }

    /// Remember the first invalid argument (see `invalid`).
    fn note_invalid(&mut self, reason: impl FnOnce() -> String) {
        if self.invalid.is_none() {
            self.invalid = Some(reason());
        }
    }
}

/// Range deletes (RocksDB: `WriteBatch::DeleteRange`).
impl WriteBatch {
    /// Add a range delete of every key in `range` (in the default
    /// keyspace): each version of each such key written before it is
    /// deleted, and nothing written after it. Any range of byte strings
    /// works: `a..b`, `a..=b`, `a..` (no end), `..b`, `..`. An empty range
    /// adds nothing; a range whose start is after its end makes the write
    /// fail with [`Error::InvalidArgument`](crate::Error::InvalidArgument),
    /// and nothing in the batch is written. RocksDB:
    /// `WriteBatch::DeleteRange`, which takes `start..end` only.
    ///
    /// The full range `..` needs its key type named:
    /// `batch.delete_range::<&[u8]>(..)`, or use `delete_prefix(b"")`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// for k in ["a", "b", "c", "d"] {
    ///     db.put(k, "v")?;
    /// }
    /// let mut batch = strata::WriteBatch::new();
    /// batch.delete_range("b".."d"); // b and c, not d
    /// batch.put("c", "new"); // after the range delete: survives it
    /// db.write(batch)?;
    /// assert!(db.get("b")?.is_none());
    /// assert_eq!(db.get("c")?.as_deref(), Some(&b"new"[..]));
    /// assert!(db.get("d")?.is_some());
    ///
    /// let mut inverted = strata::WriteBatch::new();
    /// inverted.put("e", "v");
    /// inverted.delete_range("z"..="a");
    /// assert!(matches!(db.write(inverted), Err(strata::Error::InvalidArgument(_))));
    /// assert!(db.get("e")?.is_none(), "nothing in the batch was written");
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn delete_range<K: AsRef<[u8]>>(&mut self, range: impl RangeBounds<K>) {
        self.push_span(DEFAULT_KEYSPACE, range_to_span(&range));
    }

    /// Add a range delete of every key in `range` in `keyspace` (see
    /// [`delete_range`](Self::delete_range)).
    pub fn delete_range_in<K: AsRef<[u8]>>(
        &mut self,
        keyspace: &crate::Keyspace,
        range: impl RangeBounds<K>,
    ) {
        self.note_owner(keyspace.db_instance());
        self.push_span(keyspace.id(), range_to_span(&range));
    }

    /// Add a range delete of every key starting with `prefix` (in the
    /// default keyspace): the range from `prefix` up to the next byte
    /// string without that prefix. The empty prefix, or one of only 0xff
    /// bytes, has no such string: the range then has no end (the empty
    /// prefix deletes every key).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// db.put("user:1", "ada")?;
    /// db.put("users", "list")?;
    /// let mut batch = strata::WriteBatch::new();
    /// batch.delete_prefix("user:");
    /// db.write(batch)?;
    /// assert!(db.get("user:1")?.is_none());
    /// assert!(db.get("users")?.is_some());
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn delete_prefix(&mut self, prefix: impl AsRef<[u8]>) {
        self.push_span(DEFAULT_KEYSPACE, prefix_span(prefix.as_ref()));
    }

    /// Add a range delete of every key starting with `prefix` in
    /// `keyspace`.
    pub fn delete_prefix_in(&mut self, keyspace: &crate::Keyspace, prefix: impl AsRef<[u8]>) {
        self.note_owner(keyspace.db_instance());
        self.push_span(keyspace.id(), prefix_span(prefix.as_ref()));
    }
}

/// A range delete's start and end as a record holds them (`None`: no
/// end).
pub(crate) type Span = (Vec<u8>, Option<Vec<u8>>);

/// The one conversion of a range of user keys into the `[start, end)` a
/// range delete record holds, exact for bytewise order: an excluded start
/// `s` becomes `s ++ [0]` (the first key after `s`), an included end `e`
/// becomes `e ++ [0]`, an unbounded start `b""`, an unbounded end no end.
/// `Ok(None)` for an empty range, `Err` (the reason) when the start is
/// after the end.
pub(crate) fn range_to_span<K: AsRef<[u8]>>(
    range: &impl RangeBounds<K>,
) -> std::result::Result<Option<Span>, String> {
    let start = match range.start_bound() {
        Bound::Included(s) => s.as_ref().to_vec(),
        Bound::Excluded(s) => successor_key(s.as_ref()),
        Bound::Unbounded => Vec::new(),
    };
    let end = match range.end_bound() {
        Bound::Included(e) => Some(successor_key(e.as_ref())),
        Bound::Excluded(e) => Some(e.as_ref().to_vec()),
        Bound::Unbounded => None,
    };
    match &end {
        Some(end) if *end < start => Err(inverted_range_reason(&start, end)),
        Some(end) if *end == start => Ok(None),
        _ => Ok(Some((start, end))),
    }
}

/// The span of every key starting with `prefix`: `[prefix,
/// successor(prefix))`, where the successor increments the last byte that
/// is not 0xff after cutting off the 0xff bytes that follow it. An empty
/// or all-0xff prefix has no successor: the span has no end. Never empty
/// or inverted (the successor is after the prefix), but it goes through
/// `range_to_span` like every range.
pub(crate) fn prefix_span(prefix: &[u8]) -> std::result::Result<Option<Span>, String> {
    let successor = prefix_upper_bound(prefix);
    let end = match &successor {
        Some(s) => Bound::Excluded(s.as_slice()),
        None => Bound::Unbounded,
    };
    range_to_span::<&[u8]>(&(Bound::Included(prefix), end))
}

/// The error for a range whose start is after its end, with both shown
/// (cut short: keys may be 64 KiB).
fn inverted_range_reason(start: &[u8], end: &[u8]) -> String {
    format!(
        "range delete whose start {} is after its end {}",
        show_key(start),
        show_key(end)
    )
}

fn show_key(key: &[u8]) -> String {
    const SHOWN: usize = 32;
    let shown = key.get(..SHOWN).unwrap_or(key).escape_ascii();
    if key.len() > SHOWN {
        format!("'{shown}'.. ({} bytes)", key.len())
    } else {
        format!("'{shown}'")
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
    /// Put, delete, merge or range delete.
    pub kind: ValueKind,
    /// The user key (a range delete's start).
    pub key: &'a [u8],
    /// The value (a merge's operand; empty for deletes; a range delete's
    /// end, empty for no
    /// end: see [`range_end`](Self::range_end)).
    pub value: &'a [u8],
}

impl<'a> BatchOp<'a> {
    /// A range delete's end (exclusive), `None` if it has none. Only
    /// meaningful for [`ValueKind::RangeDelete`].
    pub fn range_end(&self) -> Option<&'a [u8]> {
        (!self.value.is_empty()).then_some(self.value)
    }

    /// Whether a key or value is longer than a `WriteBatch` accepts: a
    /// logged one is damage (the memtable relies on the limits).
    pub(crate) fn exceeds_limits(&self) -> bool {
        match self.kind {
            ValueKind::RangeDelete => {
                self.key.len() > MAX_RANGE_END_SIZE || self.value.len() > MAX_RANGE_END_SIZE
            }
            ValueKind::Put | ValueKind::Delete | ValueKind::Merge | ValueKind::BlobIndex => {
                self.key.len() > MAX_KEY_SIZE || self.value.len() > MAX_VALUE_SIZE
            }
            ValueKind::PutWithExpiry => {
                self.key.len() > MAX_KEY_SIZE
                    || self.value.len() > MAX_VALUE_SIZE + crate::ttl::EXPIRY_LEN
            }
        }
    }
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
        let Some(kind) = ValueKind::from_u8(tag & !KEYSPACE_FLAG) else {
            return Err("unknown record kind");
        };
        if kind == ValueKind::BlobIndex {
            // Blob references live in tables only, never in a batch.
            return Err("unknown record kind");
        }
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
        match kind {
            ValueKind::Put | ValueKind::Merge => {
                let (v, m) = get_length_prefixed(&self.input[used..]).ok_or("truncated value")?;
                value = v;
                used += m;
            }
            ValueKind::PutWithExpiry => {
                let (v, m) = get_length_prefixed(&self.input[used..]).ok_or("truncated value")?;
                if v.len() < crate::ttl::EXPIRY_LEN {
                    return Err("expiring value shorter than its expiry");
                }
                value = v;
                used += m;
            }
            ValueKind::RangeDelete => {
                let (end, m) =
                    get_length_prefixed(&self.input[used..]).ok_or("truncated range delete end")?;
                // Empty: no end. A bounded end is after the start (an
                // empty range is never encoded).
                if !end.is_empty() && end <= key {
                    return Err("range delete whose end is not after its start");
                }
                value = end;
                used += m;
            }
            ValueKind::Delete | ValueKind::BlobIndex => {}
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

    fn decode_all(b: &WriteBatch) -> Vec<BatchOp<'_>> {
        b.iter()
            .collect::<std::result::Result<_, _>>()
            .expect("own encoding")
    }

    fn range_op<'a>(keyspace: u32, start: &'a [u8], end: &'a [u8]) -> BatchOp<'a> {
        BatchOp {
            keyspace,
            kind: ValueKind::RangeDelete,
            key: start,
            value: end,
        }
    }

    #[test]
    fn range_deletes_come_back_as_written() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1");
        b.delete_range_in_id(0, b"b", Some(b"d"));
        b.delete_range_in_id(7, b"", None);
        b.delete_range_in_id(300, b"x", Some(b"y\0"));
        b.delete(b"z");
        assert_eq!(b.keyspaces(), &[0, 7, 300]);
        assert_eq!(b.len(), 5);
        b.set_sequence(40);
        let decoded = DecodedBatch::new(b.encoded()).unwrap();
        let ops: Vec<_> = decoded
            .iter()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(ops[1], range_op(0, b"b", b"d"));
        assert_eq!(ops[1].range_end(), Some(&b"d"[..]));
        assert_eq!(ops[2], range_op(7, b"", b""));
        assert_eq!(ops[2].range_end(), None, "an empty end is no end");
        assert_eq!(ops[3], range_op(300, b"x", b"y\0"));
        assert_eq!(ops[4].kind, ValueKind::Delete);
        // Written again record by record, the bytes are the same.
        let mut again = WriteBatch::new();
        for op in &ops {
            again.push_op(*op);
        }
        again.set_sequence(40);
        assert_eq!(again.encoded(), b.encoded());
    }

    /// The worked example of docs/wal-format.md, "The WAL's records".
    #[test]
    fn a_range_delete_record_is_laid_out_as_documented() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1");
        b.delete_range("b".."d");
        b.delete_range_in_id(7, b"k", None);
        b.set_sequence(100);
        #[rustfmt::skip]
        let documented = [
            0x64, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0,
            0x01, 0x01, 0x61, 0x01, 0x31,
            0x03, 0x01, 0x62, 0x01, 0x64,
            0x83, 0x07, 0x01, 0x6b, 0x00,
        ];
        assert_eq!(b.encoded(), documented);
    }

    /// A merge record is a put's layout with tag 2 (docs/wal-format.md).
    #[test]
    fn a_put_with_expiry_is_laid_out_as_documented() {
        let mut b = WriteBatch::new();
        b.put_expiring_in_id(0, b"a", b"1", 1_780_000_060_000_000);
        #[rustfmt::skip]
        let documented = [
            0x04, 0x01, 0x61, 0x09, 0x00, 0xc7, 0x46, 0x8f, 0xe6, 0x52, 0x06, 0x00, 0x31,
        ];
        assert_eq!(&b.encoded()[HEADER_LEN..], documented);
    }

    #[test]
    fn a_merge_record_is_laid_out_as_documented() {
        let mut b = WriteBatch::new();
        b.merge(b"n", b"+1");
        b.merge_in_id(7, b"n", b"");
        b.set_sequence(100);
        #[rustfmt::skip]
        let documented = [
            0x64, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
            0x02, 0x01, 0x6e, 0x02, 0x2b, 0x31,
            0x82, 0x07, 0x01, 0x6e, 0x00,
        ];
        assert_eq!(b.encoded(), documented);
        let ops = decode_all(&b);
        assert_eq!((ops[0].kind, ops[0].value), (ValueKind::Merge, &b"+1"[..]));
        assert_eq!((ops[1].keyspace, ops[1].value), (7, &b""[..]));
    }

    #[test]
    fn an_oversized_merge_operand_is_reported_at_validation() {
        let mut b = WriteBatch::new();
        b.merge(b"k", vec![0u8; MAX_VALUE_SIZE + 1]);
        let err = b.validate().unwrap_err().to_string();
        assert!(err.contains("merge operand"), "{err}");
    }

    /// A batch header (sequence 1) with `count` records, then `records`.
    fn raw_batch(count: u32, records: &[u8]) -> Vec<u8> {
        let mut rep = 1u64.to_le_bytes().to_vec();
        rep.extend_from_slice(&count.to_le_bytes());
        rep.extend_from_slice(records);
        rep
    }

    fn decode_error(rep: &[u8]) -> BatchError {
        let d = DecodedBatch::new(rep).unwrap();
        let errors: Vec<_> = d.iter().filter_map(|r| r.err()).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors[0].clone()
    }

    #[test]
    fn a_logged_range_delete_whose_end_is_not_after_its_start_is_damage() {
        for end in [&b"aa"[..], b"a", b"ab"] {
            let mut rec = vec![3, 2, b'a', b'b', end.len() as u8];
            rec.extend_from_slice(end);
            let rep = raw_batch(1, &rec);
            let e = decode_error(&rep);
            assert_eq!(e.reason, "range delete whose end is not after its start");
            assert_eq!(e.offset, HEADER_LEN, "end {end:?}");
        }
        // The end just after the start, and no end, are fine.
        let rep = raw_batch(2, &[3, 2, b'a', b'b', 3, b'a', b'b', 0, 3, 1, b'z', 0]);
        let d = DecodedBatch::new(&rep).unwrap();
        assert!(d.iter().all(|r| r.is_ok()));
        // A record cut off before its end length.
        let e = decode_error(&raw_batch(1, &[3, 1, b'a']));
        assert_eq!(e.reason, "truncated range delete end");
        // Kind 5 is unknown.
        let e = decode_error(&raw_batch(1, &[5, 1, b'a', 1, b'b']));
        assert_eq!(e.reason, "unknown record kind");
        // Kind 4, a put with expiry, needs the 8-byte expiry.
        let e = decode_error(&raw_batch(1, &[4, 1, b'a', 1, b'b']));
        assert_eq!(e.reason, "expiring value shorter than its expiry");
    }

    #[test]
    fn puts_get_their_expiry_by_keyspace_and_the_rest_stays() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1");
        b.put_in_id(3, b"b", b"2");
        b.delete(b"c");
        b.merge(b"d", b"+");
        b.expire_puts(|keyspace| (keyspace == 0).then_some(77));
        let ops = decode_all(&b);
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].kind, ValueKind::PutWithExpiry);
        assert_eq!(ops[0].value, [&77u64.to_le_bytes()[..], b"1"].concat());
        assert_eq!(
            (ops[1].kind, ops[1].keyspace, ops[1].value),
            (ValueKind::Put, 3, &b"2"[..])
        );
        assert_eq!(ops[2].kind, ValueKind::Delete);
        assert_eq!(ops[3].kind, ValueKind::Merge);
        assert_eq!(b.keyspaces(), [0, 3]);
        // Read back and written again, the record is the same.
        let mut copy = WriteBatch::new();
        for op in decode_all(&b) {
            copy.push_op(op);
        }
        assert_eq!(copy.encoded(), b.encoded());
    }

    #[test]
    fn bounds_convert_to_start_and_end_exactly() {
        fn span<K: AsRef<[u8]>>(r: impl RangeBounds<K>) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
            range_to_span(&r).expect("not inverted")
        }
        let s = |k: &[u8]| k.to_vec();
        assert_eq!(span(&b"a"[..]..&b"c"[..]), Some((s(b"a"), Some(s(b"c")))));
        assert_eq!(
            span(&b"a"[..]..=&b"c"[..]),
            Some((s(b"a"), Some(s(b"c\0"))))
        );
        assert_eq!(span(&b"a"[..]..), Some((s(b"a"), None)));
        assert_eq!(span(..&b"c"[..]), Some((s(b""), Some(s(b"c")))));
        assert_eq!(span(..=&b"c"[..]), Some((s(b""), Some(s(b"c\0")))));
        assert_eq!(span::<&[u8]>(..), Some((s(b""), None)));
        let excluded_start = (Bound::Excluded(&b"a"[..]), Bound::Excluded(&b"c"[..]));
        assert_eq!(
            span::<&[u8]>(excluded_start),
            Some((s(b"a\0"), Some(s(b"c"))))
        );
        let excluded_included = (Bound::Excluded(&b"a"[..]), Bound::Included(&b"c"[..]));
        assert_eq!(
            span::<&[u8]>(excluded_included),
            Some((s(b"a\0"), Some(s(b"c\0"))))
        );
        // Keys as strings and vectors.
        assert_eq!(span("a".."b"), Some((s(b"a"), Some(s(b"b")))));
        assert_eq!(span(vec![1u8]..vec![2u8]), Some((s(&[1]), Some(s(&[2])))));
    }

    #[test]
    fn empty_ranges_are_none_and_inverted_ones_errors() {
        let empty = |r: std::result::Result<Option<Span>, String>| r == Ok(None);
        assert!(empty(range_to_span(&("a".."a"))));
        assert!(empty(range_to_span::<&str>(&(
            Bound::Excluded("a"),
            Bound::Included("a")
        ))));
        // No key lies strictly between "a" and "a\0".
        assert!(empty(range_to_span::<&[u8]>(&(
            Bound::Excluded(&b"a"[..]),
            Bound::Excluded(&b"a\0"[..])
        ))));
        assert!(empty(range_to_span(&(..""))));
        let inverted = range_to_span(&("b".."a")).unwrap_err();
        assert!(
            inverted.contains("'b'") && inverted.contains("'a'"),
            "{inverted}"
        );
        assert!(range_to_span(&("b"..="a")).is_err());
        // As std's BTreeMap::range, a start and end both excluded and equal.
        assert!(range_to_span::<&str>(&(Bound::Excluded("a"), Bound::Excluded("a"))).is_err());
    }

    #[test]
    fn a_prefix_ends_at_its_successor() {
        let prefix = |p: &[u8]| prefix_span(p).expect("valid").expect("not empty");
        assert_eq!(prefix(b"ab"), (b"ab".to_vec(), Some(b"ac".to_vec())));
        assert_eq!(
            prefix(b"a\xff\xff"),
            (b"a\xff\xff".to_vec(), Some(b"b".to_vec()))
        );
        assert_eq!(prefix(b"\x00"), (b"\x00".to_vec(), Some(b"\x01".to_vec())));
        assert_eq!(
            prefix(b"\xfe\xff"),
            (b"\xfe\xff".to_vec(), Some(b"\xff".to_vec()))
        );
        assert_eq!(
            prefix(b"\xff\xff"),
            (b"\xff\xff".to_vec(), None),
            "no successor"
        );
        assert_eq!(prefix(b""), (Vec::new(), None), "every key");
    }

    #[test]
    fn an_inverted_range_fails_the_batch_and_an_empty_one_adds_nothing() {
        let mut b = WriteBatch::new();
        b.put(b"k", b"v");
        b.delete_range("a".."a");
        b.delete_prefix(b"p");
        assert_eq!(b.len(), 2, "the empty range added no record");
        let mut b = WriteBatch::new();
        b.put(b"k", b"v");
        b.delete_range("c".."a");
        assert_eq!(b.len(), 1, "the inverted range added no record");
        match b.validate() {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("start 'c'"), "{m}"),
            other => panic!("{other:?}"),
        }
        // So does one handed over as a record, which `push_op` cannot refuse.
        let mut b = WriteBatch::new();
        b.push_op(range_op(0, b"b", b"b"));
        assert!(b.is_empty());
        assert!(matches!(b.validate(), Err(Error::InvalidArgument(_))));
        b.clear();
        assert!(b.validate().is_ok());
    }

    #[test]
    fn range_delete_ends_may_be_one_byte_over_the_key_limit() {
        let longest = vec![7u8; MAX_KEY_SIZE];
        let mut b = WriteBatch::new();
        // `(longest, ..)` and `[longest, longest]`: `longest ++ [0]` as a
        // start and as an end.
        b.delete_range::<&[u8]>((Bound::Excluded(&longest[..]), Bound::Unbounded));
        b.delete_range(&longest[..]..=&longest[..]);
        assert_eq!(b.len(), 2);
        assert!(decode_all(&b).iter().all(|op| !op.exceeds_limits()));
        let over = vec![7u8; MAX_KEY_SIZE + 2];
        let mut b = WriteBatch::new();
        b.delete_range(&over[..]..);
        match b.validate() {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("range delete start"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut b = WriteBatch::new();
        b.delete_range(..&over[..]);
        match b.validate() {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("range delete end"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    /// One record as a proptest draws it: kind 0, 1, 2 or 3 (a range
    /// delete's end is `key ++ value`, or none when `value` is empty).
    fn arbitrary_op() -> impl Strategy<Value = (u8, u32, Vec<u8>, Vec<u8>)> {
        (
            prop_oneof![Just(0u8), Just(1), Just(2), Just(3)],
            prop_oneof![Just(0u32), 1..400u32],
            proptest::collection::vec(any::<u8>(), 0..6),
            proptest::collection::vec(any::<u8>(), 0..6),
        )
    }

    fn encode_ops(ops: &[(u8, u32, Vec<u8>, Vec<u8>)]) -> WriteBatch {
        let mut b = WriteBatch::new();
        for (kind, keyspace, key, value) in ops {
            match kind {
                0 => b.delete_in_id(*keyspace, key),
                1 => b.put_in_id(*keyspace, key, value),
                2 => b.merge_in_id(*keyspace, key, value),
                _ => {
                    let end = [&key[..], value].concat();
                    b.delete_range_in_id(*keyspace, key, (!value.is_empty()).then_some(&end));
                }
            }
        }
        b.set_sequence(1);
        b
    }

    /// Bytes to decode: arbitrary ones, or a batch of every record kind
    /// cut short and with one byte overwritten.
    fn batch_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            (
                proptest::collection::vec(arbitrary_op(), 0..8),
                any::<prop::sample::Index>(),
                any::<prop::sample::Index>(),
                any::<u8>()
            )
                .prop_map(|(ops, cut, at, byte)| {
                    let mut rep = encode_ops(&ops).encoded().to_vec();
                    rep.truncate(HEADER_LEN + cut.index(rep.len() - HEADER_LEN + 1));
                    let i = at.index(rep.len());
                    rep[i] = byte;
                    rep
                }),
        ]
    }

    proptest! {
        /// Any bytes decode to records or a clean error, never a panic, and
        /// never more records than the header counts; the records that
        /// decode, written again, decode the same.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in batch_bytes()) {
            if let Ok(d) = DecodedBatch::new(&bytes) {
                let ops: Vec<_> = d.iter().map_while(|r| r.ok()).collect();
                prop_assert!(ops.len() as u64 <= u64::from(d.count()));
                let mut again = WriteBatch::new();
                for op in &ops {
                    again.push_op(*op);
                }
                prop_assert_eq!(decode_all(&again), ops);
            }
        }

        /// Every record kind, range deletes with and without an end in any
        /// keyspace, comes back as written.
        #[test]
        fn encoded_records_round_trip(ops in proptest::collection::vec(arbitrary_op(), 0..8)) {
            let b = encode_ops(&ops);
            let decoded = decode_all(&b);
            prop_assert_eq!(decoded.len(), ops.len());
            for (op, (kind, keyspace, key, value)) in decoded.iter().zip(&ops) {
                prop_assert_eq!(op.kind as u8, *kind);
                prop_assert_eq!(op.keyspace, *keyspace);
                prop_assert_eq!(op.key, &key[..]);
                match kind {
                    0 => prop_assert_eq!(op.value, b""),
                    1 | 2 => prop_assert_eq!(op.value, &value[..]),
                    _ => {
                        let end = [&key[..], value].concat();
                        prop_assert_eq!(op.range_end(), (!value.is_empty()).then_some(&end[..]));
                    }
                }
            }
        }
    }
}
