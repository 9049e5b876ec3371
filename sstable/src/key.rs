//! Internal keys: a user key, a sequence number and a value kind.
//!
//! ```text
//! +----------------------+---------------------------------------+
//! | user key (any bytes) | trailer: u64 LE = seqno << 8 | kind   |
//! +----------------------+---------------------------------------+
//!                           8 bytes (TRAILER_LEN)
//! ```
//!
//! Order: user key bytewise ascending, then trailer *descending*, so the
//! newest version of a user key comes first and a seek for
//! `(user_key, seqno)` lands on the newest version visible at `seqno`.

use std::cmp::Ordering;

/// A sequence number: the position of a write in the database's history.
pub type SeqNo = u64;

/// Largest sequence number: 56 bits, the trailer's low byte holds the kind.
pub const MAX_SEQNO: SeqNo = (1 << 56) - 1;

/// Length of the trailer that follows the user key.
pub const TRAILER_LEN: usize = 8;

/// Kind byte of seek keys and shortened index separators. Never stored as
/// an entry's kind: it is larger than every real kind, so a seek key sorts
/// before every entry with the same user key and seqno, including kinds
/// added later.
pub const SEEK_KIND: u8 = 0xff;

/// What an entry is. A reader meeting any kind it does not know reports
/// corruption. Data blocks and the memtable's point skiplist hold only the
/// point kinds (`Delete`, `Put`, `Merge`, `PutWithExpiry`, and in tables
/// `BlobIndex`); a `RangeDelete`
/// lives in a batch record, the memtable's range-deletion list and a
/// table's range-deletion block, never among point entries.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// A tombstone: the user key was deleted at this sequence number.
    Delete = 0,
    /// A value.
    Put = 1,
    /// A merge operand: combined with the older versions of the key by
    /// the keyspace's merge operator when read.
    Merge = 2,
    /// A range tombstone: every version older than this sequence number of
    /// every user key in `[start, end)` is deleted.
    RangeDelete = 3,
    /// A value that expires: the value bytes are the expiry (u64 LE,
    /// microseconds since the Unix epoch) followed by the user's value.
    /// From the expiry on, readers treat it as a delete.
    PutWithExpiry = 4,
    /// A value stored in a blob file (key-value separation,
    /// `docs/blob-format.md`): the value bytes are an encoded
    /// [`BlobRef`](crate::blob::BlobRef). Read as the put of the value it
    /// references.
    BlobIndex = 5,
}

impl ValueKind {
    /// The kind for a stored byte, `None` for unknown or reserved kinds.
    #[inline]
    pub fn from_u8(b: u8) -> Option<ValueKind> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            2 => Some(ValueKind::Merge),
            3 => Some(ValueKind::RangeDelete),
            4 => Some(ValueKind::PutWithExpiry),
            5 => Some(ValueKind::BlobIndex),
            _ => None,
        }
    }

    /// Whether this kind may be stored as a point entry (a data block's or
    /// the memtable skiplist's): `Delete`, `Put`, `Merge`,
    /// `PutWithExpiry` and `BlobIndex` (tables only).
    #[inline]
    pub fn is_point(self) -> bool {
        matches!(
            self,
            ValueKind::Delete
                | ValueKind::Put
                | ValueKind::Merge
                | ValueKind::PutWithExpiry
                | ValueKind::BlobIndex
        )
    }
}

/// The trailer value for `seqno` and `kind`. REQUIRES: `seqno <= MAX_SEQNO`.
#[inline]
pub fn pack_trailer(seqno: SeqNo, kind: ValueKind) -> u64 {
    debug_assert!(seqno <= MAX_SEQNO, "seqno {seqno} exceeds 56 bits");
    (seqno << 8) | kind as u64
}

/// Appends `user_key ++ trailer`.
#[inline]
pub fn encode_internal_key(out: &mut Vec<u8>, user_key: &[u8], seqno: SeqNo, kind: ValueKind) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&pack_trailer(seqno, kind).to_le_bytes());
}

/// Trailer of the seek key for `seqno` (clamped to [`MAX_SEQNO`], so
/// `u64::MAX` means "the newest").
#[inline]
pub fn seek_trailer(seqno: SeqNo) -> u64 {
    (seqno.min(MAX_SEQNO) << 8) | u64::from(SEEK_KIND)
}

/// Appends the key that sorts before every entry of `user_key` with
/// seqno <= `seqno` (a seek target). Sequence numbers above [`MAX_SEQNO`]
/// are clamped to it.
#[inline]
pub fn encode_seek_key(out: &mut Vec<u8>, user_key: &[u8], seqno: SeqNo) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&seek_trailer(seqno).to_le_bytes());
}

/// An internal key split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The user's key.
    pub user_key: &'a [u8],
    /// Sequence number of the write.
    pub seqno: SeqNo,
    /// Put, Delete or Merge (never `RangeDelete`: see `parse_internal_key`).
    pub kind: ValueKind,
}

/// Splits a point entry's internal key; `None` if shorter than the trailer
/// or the kind is not a point kind (unknown, or a range deletion, which is
/// never stored among point entries), so every caller reports such an
/// entry as corruption.
#[inline]
pub fn parse_internal_key(ikey: &[u8]) -> Option<ParsedKey<'_>> {
    let split = ikey.len().checked_sub(TRAILER_LEN)?;
    let (user_key, trailer) = ikey.split_at(split);
    let trailer = u64::from_le_bytes(trailer.try_into().ok()?);
    let kind = ValueKind::from_u8(trailer as u8).filter(|k| k.is_point())?;
    Some(ParsedKey {
        user_key,
        seqno: trailer >> 8,
        kind,
    })
}

/// Splits any byte string as `(user_key, trailer)`. Strings shorter than
/// the trailer (only found in damaged tables) count as a user key with
/// trailer 0, so comparisons stay total and never panic.
#[inline]
pub(crate) fn split_key(ikey: &[u8]) -> (&[u8], u64) {
    match ikey.len().checked_sub(TRAILER_LEN) {
        Some(split) => {
            let (user_key, trailer) = ikey.split_at(split);
            let mut arr = [0u8; TRAILER_LEN];
            arr.copy_from_slice(trailer);
            (user_key, u64::from_le_bytes(arr))
        }
        None => (ikey, 0),
    }
}

/// Orders internal keys: user key ascending, then trailer descending.
#[inline]
pub fn compare_internal_keys(a: &[u8], b: &[u8]) -> Ordering {
    let (b_user, b_trailer) = split_key(b);
    compare_to_target(a, b_user, b_trailer)
}

/// Compares the internal key `key` with a target given as parts, so hot
/// paths need not build the target key in a buffer.
#[inline]
pub(crate) fn compare_to_target(key: &[u8], user_key: &[u8], trailer: u64) -> Ordering {
    let (k_user, k_trailer) = split_key(key);
    compare_user_keys(k_user, user_key).then_with(|| trailer.cmp(&k_trailer))
}

/// The first eight bytes of a user key as a big-endian word, zero-padded.
/// Where two keys' prefixes differ, they order as their keys do.
#[inline]
pub(crate) fn key_prefix(user_key: &[u8]) -> u64 {
    match user_key.first_chunk::<8>() {
        Some(p) => u64::from_be_bytes(*p),
        None => {
            let mut p = [0u8; 8];
            p[..user_key.len()].copy_from_slice(user_key);
            u64::from_be_bytes(p)
        }
    }
}

/// Bytewise order of user keys. The first eight bytes are compared as one
/// big-endian word first: for typical keys that decides, and it avoids a
/// call to `memcmp` (a large share of skiplist and block search time).
#[inline]
pub fn compare_user_keys(a: &[u8], b: &[u8]) -> Ordering {
    if let (Some(a8), Some(b8)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        let (x, y) = (u64::from_be_bytes(*a8), u64::from_be_bytes(*b8));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ikey(user: &[u8], seqno: SeqNo, kind: ValueKind) -> Vec<u8> {
        let mut out = Vec::new();
        encode_internal_key(&mut out, user, seqno, kind);
        out
    }

    #[test]
    fn user_key_order_is_bytewise() {
        let keys: [&[u8]; 9] = [
            b"",
            b"a",
            b"a\0",
            b"ab",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefgi",
            b"b",
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(compare_user_keys(a, b), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn parse_round_trip() {
        let k = ikey(b"apple", 42, ValueKind::Put);
        assert_eq!(k.len(), 5 + TRAILER_LEN);
        let p = parse_internal_key(&k).unwrap();
        assert_eq!(
            p,
            ParsedKey {
                user_key: b"apple",
                seqno: 42,
                kind: ValueKind::Put
            }
        );
        let d = ikey(b"", MAX_SEQNO, ValueKind::Delete);
        let p = parse_internal_key(&d).unwrap();
        assert_eq!(
            (p.user_key, p.seqno, p.kind),
            (&b""[..], MAX_SEQNO, ValueKind::Delete)
        );
    }

    #[test]
    fn a_range_deletion_is_a_known_kind_but_not_a_point_entry() {
        assert_eq!(ValueKind::from_u8(3), Some(ValueKind::RangeDelete));
        assert!(!ValueKind::RangeDelete.is_point());
        assert!(ValueKind::Put.is_point() && ValueKind::Delete.is_point());
    }

    #[test]
    fn a_merge_operand_is_a_point_entry_of_kind_two() {
        assert_eq!(ValueKind::from_u8(2), Some(ValueKind::Merge));
        assert!(ValueKind::Merge.is_point());
        let k = ikey(b"counter", 9, ValueKind::Merge);
        assert_eq!(
            parse_internal_key(&k).map(|p| p.kind),
            Some(ValueKind::Merge)
        );
    }

    #[test]
    fn parse_rejects_short_and_unknown_kinds() {
        assert!(parse_internal_key(b"short").is_none());
        for kind in [3u8, 6, SEEK_KIND] {
            let mut k = b"key".to_vec();
            k.extend_from_slice(&((7u64 << 8) | u64::from(kind)).to_le_bytes());
            assert!(parse_internal_key(&k).is_none(), "kind {kind}");
        }
    }

    #[test]
    fn order_is_user_key_then_newest_first() {
        let a5 = ikey(b"a", 5, ValueKind::Put);
        let a3 = ikey(b"a", 3, ValueKind::Put);
        let a3d = ikey(b"a", 3, ValueKind::Delete);
        let b9 = ikey(b"b", 9, ValueKind::Put);
        let ab1 = ikey(b"ab", 1, ValueKind::Put);
        assert_eq!(compare_internal_keys(&a5, &a3), Ordering::Less);
        assert_eq!(compare_internal_keys(&a3, &a3d), Ordering::Less);
        assert_eq!(compare_internal_keys(&a3, &b9), Ordering::Less);
        assert_eq!(compare_internal_keys(&a3d, &ab1), Ordering::Less);
        assert_eq!(compare_internal_keys(&ab1, &b9), Ordering::Less);
        assert_eq!(compare_internal_keys(&b9, &b9), Ordering::Equal);
    }

    #[test]
    fn seek_key_precedes_visible_versions_only() {
        let mut seek = Vec::new();
        encode_seek_key(&mut seek, b"k", 5);
        assert_eq!(
            compare_internal_keys(&seek, &ikey(b"k", 5, ValueKind::Put)),
            Ordering::Less
        );
        assert_eq!(
            compare_internal_keys(&seek, &ikey(b"k", 4, ValueKind::Delete)),
            Ordering::Less
        );
        assert_eq!(
            compare_internal_keys(&seek, &ikey(b"k", 6, ValueKind::Put)),
            Ordering::Greater
        );
        assert_eq!(
            compare_internal_keys(&seek, &ikey(b"j", 0, ValueKind::Put)),
            Ordering::Greater
        );
        let mut newest = Vec::new();
        encode_seek_key(&mut newest, b"k", u64::MAX);
        assert_eq!(split_key(&newest).1, u64::MAX);
    }

    #[test]
    fn short_keys_compare_without_panicking() {
        assert_eq!(compare_internal_keys(b"ab", b"ab"), Ordering::Equal);
        assert_eq!(
            compare_internal_keys(b"", &ikey(b"", 1, ValueKind::Put)),
            Ordering::Greater
        );
    }
}
