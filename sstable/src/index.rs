//! The index block: one entry per data block, `separator → handle`.
//!
//! ```text
//! index block (block format, restart interval 1, so every entry is a
//! restart point and the binary search lands on the exact entry):
//!   key   = separator: an internal key with
//!             last key of block i <= separator < first key of block i+1
//!   value = handle of block i: offset varint64 | size varint64
//! ```
//! Separators are shortened the LevelDB way on the user key; a shortened
//! user key gets the trailer `(MAX_SEQNO << 8) | SEEK_KIND`, the largest
//! trailer, so the separator sorts before every real entry of that user
//! key. The last block's separator is a short successor of its last key.
//! Handles are consecutive: block 0 starts at offset 0 and block i+1 starts
//! right after block i's trailer.

use crate::block::builder::common_prefix_len;
use crate::key::{seek_trailer, split_key, MAX_SEQNO};

/// Appends a short internal key `s` with `last <= s < next` (internal-key
/// order). REQUIRES: `last < next`.
pub(crate) fn shortest_separator(out: &mut Vec<u8>, last: &[u8], next: &[u8]) {
    let (last_user, _) = split_key(last);
    let (next_user, _) = split_key(next);
    let n = common_prefix_len(last_user, next_user);
    if let (Some(&a), Some(&b)) = (last_user.get(n), next_user.get(n)) {
        // Shorten only when a byte can be bumped and the result is shorter
        // than the original user key (otherwise nothing is gained).
        if a < 0xff && a + 1 < b && n + 1 < last_user.len() {
            out.extend_from_slice(&last_user[..n]);
            out.push(a + 1);
            out.extend_from_slice(&seek_trailer(MAX_SEQNO).to_le_bytes());
            return;
        }
    }
    out.extend_from_slice(last);
}

/// Appends a short internal key `s >= last`.
pub(crate) fn short_successor(out: &mut Vec<u8>, last: &[u8]) {
    let (last_user, _) = split_key(last);
    if let Some(i) = last_user.iter().position(|&b| b != 0xff) {
        if i + 1 < last_user.len() {
            out.extend_from_slice(&last_user[..i]);
            out.push(last_user[i] + 1);
            out.extend_from_slice(&seek_trailer(MAX_SEQNO).to_le_bytes());
            return;
        }
    }
    out.extend_from_slice(last);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{compare_internal_keys, encode_internal_key, ValueKind};
    use std::cmp::Ordering;

    fn ik(user: &[u8], seqno: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_internal_key(&mut out, user, seqno, ValueKind::Put);
        out
    }

    fn sep(a: &[u8], b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        shortest_separator(&mut out, a, b);
        assert_ne!(compare_internal_keys(a, &out), Ordering::Greater);
        assert_eq!(compare_internal_keys(&out, b), Ordering::Less);
        out
    }

    #[test]
    fn separators_are_short_and_between() {
        assert_eq!(
            split_key(&sep(&ik(b"abcdefg", 5), &ik(b"abzzz", 9))).0,
            b"abd"
        );
        // Adjacent bytes: cannot shorten.
        assert_eq!(sep(&ik(b"abc1", 5), &ik(b"abd", 1)), ik(b"abc1", 5));
        // Same user key: keep the whole last key.
        assert_eq!(sep(&ik(b"same", 5), &ik(b"same", 4)), ik(b"same", 5));
        // Prefix: keep.
        assert_eq!(sep(&ik(b"ab", 5), &ik(b"abc", 4)), ik(b"ab", 5));
        // 0xff cannot be bumped.
        assert_eq!(
            sep(&ik(&[1, 0xff, 7], 5), &ik(&[1, 0xff, 9, 0], 4)),
            ik(&[1, 0xff, 7], 5)
        );
        assert_eq!(split_key(&sep(&ik(b"", 5), &ik(b"x", 4))).0, b"");
    }

    #[test]
    fn successors() {
        let succ = |k: &[u8]| {
            let mut out = Vec::new();
            short_successor(&mut out, k);
            assert_ne!(compare_internal_keys(k, &out), Ordering::Greater);
            out
        };
        assert_eq!(split_key(&succ(&ik(b"hello", 3))).0, b"i");
        assert_eq!(
            split_key(&succ(&ik(&[0xff, 0xff, 3, 4], 3))).0,
            &[0xff, 0xff, 4]
        );
        assert_eq!(succ(&ik(&[0xff, 0xff], 3)), ik(&[0xff, 0xff], 3));
        assert_eq!(succ(&ik(b"a", 3)), ik(b"a", 3));
    }
}
