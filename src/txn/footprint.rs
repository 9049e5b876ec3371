//! What a write touched, and what a transaction must find untouched: keys
//! (fingerprinted for the oracle's table, kept whole for range checks and
//! error messages) and key ranges.

use crate::batch::WriteBatch;
use strata_sstable::ValueKind;

/// A 64-bit fingerprint of `key` in keyspace `keyspace`. Two different
/// keys share one with probability 2^-64 per pair: a false conflict (an
/// abort that could have committed), never a missed one.
pub(crate) fn fingerprint(keyspace: u32, key: &[u8]) -> u64 {
    // FNV-1a over 8-byte words, finished with a 64-bit mixer (from
    // splitmix64): the table indexes by the fingerprint itself, so its low
    // bits must be as good as its high ones.
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ u64::from(keyspace);
    let mut words = key.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(a)).wrapping_mul(PRIME);
    }
    let mut tail = [0u8; 8];
    let rest = words.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    h = (h ^ u64::from_le_bytes(tail) ^ ((key.len() as u64) << 56)).wrapping_mul(PRIME);
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// One key of a [`Footprint`].
#[derive(Clone, Copy, Debug)]
struct FootKey {
    keyspace: u32,
    fingerprint: u64,
    /// Where the key's bytes are in `Footprint::bytes`.
    start: u32,
    len: u32,
}

/// A key range `[start, end)` in a keyspace (`end` `None`: no end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub keyspace: u32,
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    pub fn contains(&self, keyspace: u32, key: &[u8]) -> bool {
        keyspace == self.keyspace
            && key >= self.start.as_slice()
            && self.end.as_deref().is_none_or(|e| key < e)
    }

    pub fn overlaps(&self, other: &KeyRange) -> bool {
        self.keyspace == other.keyspace
            && other
                .end
                .as_deref()
                .is_none_or(|e| self.start.as_slice() < e)
            && self
                .end
                .as_deref()
                .is_none_or(|e| other.start.as_slice() < e)
    }
}

/// Keys and ranges: a commit's writes as the oracle records them, or the
/// keys and ranges a transaction asks the oracle to find untouched.
#[derive(Clone, Debug, Default)]
pub(crate) struct Footprint {
    bytes: Vec<u8>,
    keys: Vec<FootKey>,
    pub ranges: Vec<KeyRange>,
}

impl Footprint {
    /// The keys and range deletes of `batch`.
    pub fn of_batch(batch: &WriteBatch) -> Footprint {
        let mut fp = Footprint::default();
        fp.add_batch(batch);
        fp
    }

    /// Add the keys and range deletes of `batch`.
    pub fn add_batch(&mut self, batch: &WriteBatch) {
        for op in batch.iter().flatten() {
            match op.kind {
                ValueKind::RangeDelete => self.ranges.push(KeyRange {
                    keyspace: op.keyspace,
                    start: op.key.to_vec(),
                    end: op.range_end().map(<[u8]>::to_vec),
                }),
                _ => self.push_key(op.keyspace, op.key),
            }
        }
    }

    pub fn push_key(&mut self, keyspace: u32, key: &[u8]) {
        self.push_with(keyspace, key, fingerprint(keyspace, key));
    }

    pub fn push_with(&mut self, keyspace: u32, key: &[u8], fingerprint: u64) {
        // Keys are at most `MAX_KEY_SIZE` and a footprint at most a
        // transaction's size limit, both far below 4 GiB.
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(key);
        self.keys.push(FootKey {
            keyspace,
            fingerprint,
            start,
            len: key.len() as u32,
        });
    }

    /// How many keys (the oracle's budget counts them).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Each key: keyspace, fingerprint, bytes.
    pub fn keys(&self) -> impl Iterator<Item = (u32, u64, &[u8])> + '_ {
        self.keys.iter().map(|k| {
            let s = k.start as usize;
            (
                k.keyspace,
                k.fingerprint,
                &self.bytes[s..s + k.len as usize],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_by_keyspace_length_and_bytes() {
        let a = fingerprint(0, b"key");
        assert_ne!(a, fingerprint(1, b"key"));
        assert_ne!(a, fingerprint(0, b"key\0"));
        assert_ne!(a, fingerprint(0, b"kez"));
        assert_ne!(fingerprint(0, b""), fingerprint(0, b"\0"));
        assert_eq!(a, fingerprint(0, b"key"));
        // The table indexes by the low bits: consecutive keys spread.
        let lows: std::collections::HashSet<u64> = (0u32..256)
            .map(|i| fingerprint(0, &i.to_be_bytes()) & 0xff)
            .collect();
        assert!(lows.len() > 128, "low bits cluster: {}", lows.len());
    }

    #[test]
    fn batch_footprint_has_keys_and_range_deletes() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1");
        b.delete(b"b");
        b.delete_range(b"c".as_slice()..b"f".as_slice());
        let fp = Footprint::of_batch(&b);
        let keys: Vec<_> = fp.keys().map(|(_, _, k)| k.to_vec()).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(fp.ranges.len(), 1);
        assert!(fp.ranges[0].contains(0, b"e"));
        assert!(!fp.ranges[0].contains(0, b"f"));
        assert!(!fp.ranges[0].contains(1, b"d"));
    }

    #[test]
    fn ranges_overlap_only_when_they_share_a_key() {
        let r = |s: &str, e: Option<&str>| KeyRange {
            keyspace: 0,
            start: s.as_bytes().to_vec(),
            end: e.map(|e| e.as_bytes().to_vec()),
        };
        assert!(r("a", Some("c")).overlaps(&r("b", Some("d"))));
        assert!(!r("a", Some("c")).overlaps(&r("c", Some("d"))));
        assert!(r("a", None).overlaps(&r("z", Some("zz"))));
        assert!(!r("b", None).overlaps(&r("a", Some("b"))));
    }
}
