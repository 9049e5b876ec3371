//! `KeyWalk`: a point read's walk down one key's versions, newest first,
//! across its sources (the memtables, then the tables).
//!
//! Without merge operands the first version found decides. Each operand
//! met is kept and the walk goes on to the next older version in the
//! same source (the next skiplist entry, the next entry of the data
//! block) without searching again from the top (RocksDB's `GetContext`
//! does the same), then on to older sources, until a put, a delete or a
//! covering range tombstone decides (docs/design/merge.md §3).

use bytes::Bytes;
use strata_sstable::{SeqNo, ValueKind};

/// The operands met so far and where older sources are asked.
pub(crate) struct KeyWalk {
    /// Merge operands, newest first.
    pub operands: Vec<Bytes>,
    /// Older sources are asked for versions at or below this.
    pub at: SeqNo,
}

/// The version that decided a walk: what lies under its operands.
#[derive(Debug, PartialEq)]
pub(crate) enum Base {
    /// No value: a delete, a covering range tombstone, or operands down
    /// to sequence number 0.
    None,
    /// A put's value.
    Value(Bytes),
    /// A put with an expiry, as stored (the expiry, then the value;
    /// `ttl/expiry.rs`): its value until it expires, then a delete. The
    /// reader, who knows the time, tells which.
    Expiring(Bytes),
}

/// What one source told a walk.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Decided by this version.
    Decided(Base),
    /// Nothing decided here: ask the next older source at `KeyWalk::at`.
    Continue,
}

impl KeyWalk {
    /// A walk of the versions at or below `seqno`.
    pub fn new(seqno: SeqNo) -> KeyWalk {
        KeyWalk {
            operands: Vec::new(),
            at: seqno,
        }
    }

    /// Take the version at `seqno` of kind `kind` (the newest not yet
    /// visited, at or below `at`): `Some` if it decides the read, `None`
    /// if it is an operand and older versions are needed, which are
    /// then at or below `at`.
    #[inline]
    pub fn visit(
        &mut self,
        seqno: SeqNo,
        kind: ValueKind,
        value: impl FnOnce() -> Bytes,
    ) -> Option<Base> {
        match kind {
            ValueKind::Put => Some(Base::Value(value())),
            ValueKind::PutWithExpiry => Some(Base::Expiring(value())),
            // A point lookup yields point kinds only.
            ValueKind::Delete | ValueKind::RangeDelete => Some(Base::None),
            // Never met: memtables hold no blob references (batches refuse
            // the kind) and a table's are resolved into puts before they
            // are visited (`Version::walk`).
            ValueKind::BlobIndex => {
                debug_assert!(false, "a walk met an unresolved blob reference");
                Some(Base::None)
            }
            ValueKind::Merge => {
                self.operands.push(value());
                match seqno.checked_sub(1) {
                    Some(below) => {
                        self.at = below;
                        None
                    }
                    None => Some(Base::None),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operands_move_the_walk_below_them_and_a_base_decides() {
        let mut w = KeyWalk::new(10);
        assert_eq!(w.visit(9, ValueKind::Merge, || Bytes::from("b")), None);
        assert_eq!(w.at, 8);
        assert_eq!(w.visit(4, ValueKind::Merge, || Bytes::from("a")), None);
        assert_eq!(w.at, 3);
        assert_eq!(
            w.visit(2, ValueKind::Put, || Bytes::from("base")),
            Some(Base::Value(Bytes::from("base")))
        );
        assert_eq!(w.operands, vec![Bytes::from("b"), Bytes::from("a")]);
        assert_eq!(w.visit(1, ValueKind::Delete, Bytes::new), Some(Base::None));
        assert_eq!(
            w.visit(1, ValueKind::PutWithExpiry, || Bytes::from("e")),
            Some(Base::Expiring(Bytes::from("e")))
        );
        let mut w = KeyWalk::new(5);
        assert_eq!(
            w.visit(0, ValueKind::Merge, || Bytes::from("x")),
            Some(Base::None)
        );
    }
}
