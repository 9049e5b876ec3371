//! Building internal-key search targets without a heap allocation.

use strata_sstable::{SeqNo, TRAILER_LEN};

/// Keys up to this length build their seek target on the stack.
const INLINE_KEY_BYTES: usize = 256;

/// The trailer of a seek target: internal keys order trailers descending,
/// and a kind byte of 0xff sorts before every real kind at the same
/// sequence number, so the target lands on the newest version `<= seqno`.
pub fn seek_trailer(seqno: SeqNo) -> [u8; TRAILER_LEN] {
    ((seqno << 8) | 0xff).to_le_bytes()
}

/// Call `f` with the internal key that sorts before every version of
/// `user_key` with a sequence number `<= seqno` (the target of a point
/// lookup or a seek). Short keys use a stack buffer: the read path does no
/// allocation for the target.
pub fn with_seek_key<R>(user_key: &[u8], seqno: SeqNo, f: impl FnOnce(&[u8]) -> R) -> R {
    let len = user_key.len() + TRAILER_LEN;
    if len <= INLINE_KEY_BYTES {
        let mut buf = [0u8; INLINE_KEY_BYTES];
        buf[..user_key.len()].copy_from_slice(user_key);
        buf[user_key.len()..len].copy_from_slice(&seek_trailer(seqno));
        f(&buf[..len])
    } else {
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(user_key);
        buf.extend_from_slice(&seek_trailer(seqno));
        f(&buf)
    }
}

/// Append the seek target for (`user_key`, `seqno`) to `out`.
pub fn push_seek_key(out: &mut Vec<u8>, user_key: &[u8], seqno: SeqNo) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&seek_trailer(seqno));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;
    use strata_sstable::{compare_internal_keys, encode_internal_key, ValueKind, MAX_SEQNO};

    #[test]
    fn seek_key_sorts_before_exactly_the_visible_versions() {
        for user_key in [&b""[..], b"k", &[7u8; 300][..]] {
            for seq in [0, 1, 5, MAX_SEQNO] {
                with_seek_key(user_key, seq, |target| {
                    for entry_seq in [0, 1, 4, 5, 6, MAX_SEQNO] {
                        for kind in [ValueKind::Put, ValueKind::Delete] {
                            let mut entry = Vec::new();
                            encode_internal_key(&mut entry, user_key, entry_seq, kind);
                            let ord = compare_internal_keys(target, &entry);
                            let visible = entry_seq <= seq;
                            assert_eq!(
                                ord == Ordering::Less,
                                visible,
                                "seq {seq} entry {entry_seq}"
                            );
                        }
                    }
                });
            }
        }
    }
}
