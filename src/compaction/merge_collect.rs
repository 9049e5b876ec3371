//! Combining a key's merge operands in compaction (RocksDB:
//! `MergeHelper::MergeUntil`).
//!
//! When the retainer keeps an operand (the newest entry of its key in a
//! snapshot stripe), the entries after it are walked while they are
//! operands of the same key in the same stripe. What ends the walk
//! decides what is written:
//! - a put (the base) in the stripe: one full merge onto it, written as a
//!   put at the newest operand's sequence number;
//! - a delete, or an entry a range tombstone of the stripe covers: a full
//!   merge onto nothing, also a put;
//! - the key's last entry, with no deeper level holding the key (the
//!   bottom): a full merge onto nothing;
//! - an entry of an older stripe, or a deeper level holding the key: the
//!   operands merged into one by `partial_merge` if the operator can,
//!   else kept as they are;
//! - an expiring put (docs/design/ttl.md): once expired, a delete; before,
//!   it is no base to merge onto (the merged value would outlive it, while
//!   readers after its expiry merge onto nothing), so the operands stay
//!   operands above it, as for an older stripe.
//!
//! Operands never merge across a stripe: a reader at a snapshot must see
//! the merge state at its sequence number. The entry that ended the walk
//! is not consumed: the retainer judges it next, and shadows what the
//! merge replaced (same stripe) or keeps it (older stripe).

use super::retain::Stripes;
use crate::error::{Error, Result};
use crate::iter::InternalIterator;
use crate::merge::{full_merge, MergeFailureScope, MergeOperator};
use std::sync::Arc;
use strata_sstable::{parse_internal_key, SeqNo, ValueKind};

/// The entries to write for one key's operands in one stripe, newest
/// first, as (seqno, kind, value).
pub(crate) type Merged = Vec<(SeqNo, ValueKind, Vec<u8>)>;

/// How the walk over a stripe's operands ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// A put of this value in the stripe.
    Base(Vec<u8>),
    /// A delete or a covered entry in the stripe: nothing below counts.
    Deleted,
    /// The key has no more entries in the inputs.
    LastEntry,
    /// The key's next entry is in an older stripe.
    OlderStripe,
    /// An expiring put, not yet expired, in the stripe.
    ExpiringBase,
}

/// What a compaction needs to combine operands.
pub(crate) struct MergeCollector<'a> {
    /// `None` when the compaction may not combine (no operator, or input
    /// operands written for another one): operands pass through as they
    /// are and the retainer judges every other entry as usual.
    pub operator: Option<&'a Arc<dyn MergeOperator>>,
    pub stripes: &'a Stripes,
    /// The clock (micros) when the compaction started: expiring puts
    /// whose expiry is not after it are deletes.
    pub now_micros: u64,
}

impl MergeCollector<'_> {
    /// Collect the operands starting at `input`'s current entry (an
    /// operand of `user_key` at `seqno`, kept by the retainer), leaving
    /// `input` at the entry that ended the walk. `covering` gives the
    /// seqnos of the compaction's range tombstones over `user_key`,
    /// newest first; `deeper_may_have_key` whether a level below the
    /// output may hold it. Returns what to write and how many input
    /// entries were consumed. REQUIRES: `self.operator` is `Some`.
    pub fn collect(
        &self,
        input: &mut dyn InternalIterator,
        user_key: &[u8],
        seqno: SeqNo,
        covering: &[SeqNo],
        deeper_may_have_key: bool,
    ) -> Result<(Merged, u64)> {
        let stripe = self.stripes.of(seqno);
        let mut operands: Vec<(SeqNo, Vec<u8>)> = vec![(seqno, input.value().to_vec())];
        input.next()?;
        let mut consumed = 1;
        let end = loop {
            if !input.valid() {
                break End::LastEntry;
            }
            let k = parse_internal_key(input.key()).ok_or_else(|| {
                Error::corruption("compaction input", 0, "malformed key after a merge operand")
            })?;
            if k.user_key != user_key {
                break End::LastEntry;
            }
            if self.stripes.of(k.seqno) != stripe {
                break End::OlderStripe;
            }
            // A tombstone newer than this entry in the same stripe deletes
            // it (and everything older in the stripe) for every reader.
            let newer = covering.partition_point(|&t| t > k.seqno);
            let covered = newer
                .checked_sub(1)
                .and_then(|i| covering.get(i))
                .is_some_and(|&t| self.stripes.of(t) == stripe);
            if covered {
                break End::Deleted;
            }
            match k.kind {
                ValueKind::Merge => {
                    operands.push((k.seqno, input.value().to_vec()));
                    input.next()?;
                    consumed += 1;
                }
                ValueKind::Put => break End::Base(input.value().to_vec()),
                // A value in a blob file: the operands stay operands above
                // it (a partial merge), as above an expiring put; reads
                // merge them onto the value.
                ValueKind::BlobIndex => break End::ExpiringBase,
                ValueKind::PutWithExpiry => match crate::ttl::split_expiring(input.value()) {
                    Some((expiry, _)) if expiry <= self.now_micros => break End::Deleted,
                    Some(_) => break End::ExpiringBase,
                    None => {
                        return Err(Error::corruption(
                            "compaction input",
                            0,
                            "an expiring value shorter than its expiry",
                        ))
                    }
                },
                ValueKind::Delete | ValueKind::RangeDelete => break End::Deleted,
            }
        };
        let base: Option<Option<&[u8]>> = match &end {
            End::Base(v) => Some(Some(v)),
            End::Deleted => Some(None),
            End::LastEntry if !deeper_may_have_key => Some(None),
            End::LastEntry | End::OlderStripe | End::ExpiringBase => None,
        };
        let values: Vec<&[u8]> = operands.iter().map(|(_, v)| v.as_slice()).collect();
        let merged = match base {
            Some(base) => match full_merge(self.operator, user_key, base, &values) {
                Ok(value) => vec![(seqno, ValueKind::Put, value)],
                Err(e) if self.keeps_operands_on_failure() => {
                    // MustMerge: the operands go out as they are and what
                    // ended the walk (the base) is judged afresh, so it is
                    // kept; reads of the key go on failing, nothing is lost.
                    tracing::warn!(error = %e, "merge failed at flush or compaction: operands kept as they are");
                    return Ok((as_operands(operands), consumed));
                }
                Err(e) => return Err(e),
            },
            None => self.partial(user_key, seqno, operands),
        };
        Ok((merged, consumed))
    }

    /// Whether a failing full merge keeps the operands rather than
    /// failing the flush or compaction ([`MergeFailureScope::MustMerge`]).
    fn keeps_operands_on_failure(&self) -> bool {
        self.operator
            .is_some_and(|o| o.failure_scope() == MergeFailureScope::MustMerge)
    }

    /// The operands as one (when there are several and the operator can
    /// merge them without a base) or as they are.
    fn partial(&self, user_key: &[u8], seqno: SeqNo, operands: Vec<(SeqNo, Vec<u8>)>) -> Merged {
        if operands.len() >= 2 {
            if let Some(operator) = self.operator {
                let oldest_first: Vec<&[u8]> =
                    operands.iter().rev().map(|(_, v)| v.as_slice()).collect();
                if let Some(one) = operator.partial_merge(user_key, &oldest_first) {
                    return vec![(seqno, ValueKind::Merge, one)];
                }
            }
        }
        as_operands(operands)
    }
}

/// Operands written as they are.
fn as_operands(operands: Vec<(SeqNo, Vec<u8>)>) -> Merged {
    operands
        .into_iter()
        .map(|(q, v)| (q, ValueKind::Merge, v))
        .collect()
}

/// The label of tables whose operands were written for operators that
/// differ: it names no operator, so no compaction combines them and the
/// open check refuses every operator for them.
pub(crate) const CONFLICTING_OPERATORS: &str = "\u{0}conflicting operators";

/// The name of the merge operator a compaction's output tables are
/// labelled with, and whether it may combine: the label the input tables
/// holding operands share, unlabelled ones left out (operands replayed
/// from a WAL, written for an operator the open check let the keyspace's
/// one stand for); the keyspace's operator's name when none holds a
/// labelled one; [`CONFLICTING_OPERATORS`] when they differ. Combinable
/// only when it is the keyspace's operator's. Unlabelled inputs must not
/// make the output unlabelled: the open check accepts any operator for
/// unlabelled operands, so that would launder a table written for another
/// operator, and a keyspace reopened once would never combine again.
pub(crate) fn output_label<'a>(
    operator: Option<&Arc<dyn MergeOperator>>,
    input_labels: impl Iterator<Item = &'a str>,
) -> (String, bool) {
    let mut label: Option<&str> = None;
    for l in input_labels.filter(|l| !l.is_empty()) {
        match label {
            None => label = Some(l),
            Some(seen) if seen == l => {}
            Some(_) => return (CONFLICTING_OPERATORS.to_string(), false),
        }
    }
    let own = operator.map(|o| o.name()).unwrap_or_default();
    let label = label.unwrap_or(own);
    (
        label.to_string(),
        operator.is_some() && !label.is_empty() && label == own,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::VecIter;
    use crate::merge::{Append, UInt64Add};
    use strata_sstable::encode_internal_key;

    /// A compaction input of `(key, seqno, kind, value)` entries, in
    /// internal-key order.
    fn input(entries: &[(&str, SeqNo, ValueKind, &str)]) -> VecIter {
        VecIter::new(
            entries
                .iter()
                .map(|&(k, s, kind, v)| {
                    let mut ikey = Vec::new();
                    encode_internal_key(&mut ikey, k.as_bytes(), s, kind);
                    (ikey, v.as_bytes().to_vec())
                })
                .collect(),
        )
    }

    fn run(
        operator: &Arc<dyn MergeOperator>,
        snapshots: Vec<SeqNo>,
        covering: &[SeqNo],
        deeper: bool,
        entries: &[(&str, SeqNo, ValueKind, &str)],
    ) -> (Vec<(SeqNo, ValueKind, String)>, u64, Option<SeqNo>) {
        let stripes = Stripes::new(snapshots);
        let c = MergeCollector {
            operator: Some(operator),
            stripes: &stripes,
            now_micros: 100,
        };
        let mut it = input(entries);
        it.seek_to_first().unwrap();
        let (k, s) = (entries[0].0, entries[0].1);
        let (merged, consumed) = c
            .collect(&mut it, k.as_bytes(), s, covering, deeper)
            .unwrap();
        let left_at = it
            .valid()
            .then(|| parse_internal_key(it.key()).unwrap().seqno);
        let shown = merged
            .into_iter()
            .map(|(q, kind, v)| (q, kind, String::from_utf8(v).unwrap()))
            .collect();
        (shown, consumed, left_at)
    }

    fn append() -> Arc<dyn MergeOperator> {
        Arc::new(Append::with_separator(","))
    }

    use ValueKind::{Delete, Merge, Put};

    #[test]
    fn a_base_in_the_stripe_gives_one_put_at_the_newest_operand() {
        let got = run(
            &append(),
            vec![],
            &[],
            true,
            &[
                ("k", 9, Merge, "c"),
                ("k", 7, Merge, "b"),
                ("k", 5, Put, "a"),
                ("k", 2, Put, "old"),
            ],
        );
        assert_eq!(got, (vec![(9, Put, "a,b,c".into())], 2, Some(5)));
    }

    #[test]
    fn a_delete_or_a_covering_tombstone_merges_onto_nothing() {
        let got = run(
            &append(),
            vec![],
            &[],
            true,
            &[("k", 9, Merge, "b"), ("k", 5, Delete, "")],
        );
        assert_eq!(got.0, vec![(9, Put, "b".into())]);
        // The tombstone at 6 covers the put at 5: the put is no base.
        let got = run(
            &append(),
            vec![],
            &[6],
            true,
            &[("k", 9, Merge, "b"), ("k", 5, Put, "a")],
        );
        assert_eq!(got.0, vec![(9, Put, "b".into())]);
    }

    #[test]
    fn operands_never_merge_across_a_snapshot() {
        // Snapshot at 6: stripes (..6] and (6..).
        let got = run(
            &(Arc::new(UInt64Add) as Arc<dyn MergeOperator>),
            vec![6],
            &[],
            true,
            &[
                ("k", 9, Merge, "x"),
                ("k", 5, Merge, "y"),
                ("k", 3, Put, "z"),
            ],
        );
        // One operand in its stripe: kept as it is; the walk stops at 5.
        assert_eq!(got, (vec![(9, Merge, "x".into())], 1, Some(5)));
        // A tombstone in the older stripe does not end the newer one's walk
        // as a delete.
        let got = run(
            &append(),
            vec![6],
            &[4],
            false,
            &[
                ("k", 9, Merge, "b"),
                ("k", 8, Merge, "a"),
                ("k", 3, Put, "z"),
            ],
        );
        assert_eq!(got, (vec![(9, Merge, "a,b".into())], 2, Some(3)));
    }

    /// An expiring put's stored value (`ttl/expiry.rs`).
    fn expiring(expiry: u64, value: &str) -> String {
        let mut stored = Vec::new();
        crate::ttl::encode_expiring(&mut stored, expiry, value.as_bytes());
        String::from_utf8(stored).unwrap()
    }

    #[test]
    fn an_expiring_base_is_a_delete_once_expired_and_no_base_before() {
        // The collector's clock reads 100.
        let expired = expiring(100, "a");
        let got = run(
            &append(),
            vec![],
            &[],
            true,
            &[
                ("k", 9, Merge, "b"),
                ("k", 5, ValueKind::PutWithExpiry, &expired),
            ],
        );
        assert_eq!(got.0, vec![(9, Put, "b".into())]);
        let live = expiring(101, "a");
        let got = run(
            &(Arc::new(NoPartial) as Arc<dyn MergeOperator>),
            vec![],
            &[],
            false,
            &[
                ("k", 9, Merge, "c"),
                ("k", 8, Merge, "b"),
                ("k", 5, ValueKind::PutWithExpiry, &live),
            ],
        );
        // Operands stay operands; the walk stops at the expiring put.
        assert_eq!(
            got,
            (
                vec![(9, Merge, "c".into()), (8, Merge, "b".into())],
                2,
                Some(5)
            )
        );
    }

    #[test]
    fn at_the_bottom_the_last_operands_merge_onto_nothing() {
        let entries = [
            ("k", 9, Merge, "b"),
            ("k", 8, Merge, "a"),
            ("l", 1, Put, "other"),
        ];
        let bottom = run(&append(), vec![], &[], false, &entries);
        assert_eq!(bottom, (vec![(9, Put, "a,b".into())], 2, Some(1)));
        // A deeper level may hold the key: one operand, not a value.
        let above = run(&append(), vec![], &[], true, &entries);
        assert_eq!(above.0, vec![(9, Merge, "a,b".into())]);
    }

    /// An operator with no partial merge keeps the operands as they are.
    struct NoPartial;
    impl MergeOperator for NoPartial {
        fn name(&self) -> &str {
            "no-partial"
        }
        fn full_merge(
            &self,
            _: &[u8],
            _: Option<&[u8]>,
            ops: &[&[u8]],
        ) -> std::result::Result<Vec<u8>, crate::MergeError> {
            Ok(ops.concat())
        }
    }

    #[test]
    fn without_a_partial_merge_operands_stay_as_they_are() {
        let op: Arc<dyn MergeOperator> = Arc::new(NoPartial);
        let got = run(
            &op,
            vec![],
            &[],
            true,
            &[("k", 9, Merge, "b"), ("k", 8, Merge, "a")],
        );
        assert_eq!(got.0, vec![(9, Merge, "b".into()), (8, Merge, "a".into())]);
    }

    #[test]
    fn a_failing_full_merge_is_the_compaction_error_naming_the_key() {
        let op: Arc<dyn MergeOperator> = Arc::new(UInt64Add);
        let stripes = Stripes::new(vec![]);
        let c = MergeCollector {
            operator: Some(&op),
            stripes: &stripes,
            now_micros: 100,
        };
        let mut it = input(&[
            ("counter", 9, Merge, "not eight bytes"),
            ("counter", 5, Delete, ""),
        ]);
        it.seek_to_first().unwrap();
        let err = c.collect(&mut it, b"counter", 9, &[], true).unwrap_err();
        assert!(
            matches!(&err, Error::MergeFailed { key, .. } if key == b"counter"),
            "{err}"
        );
    }

    /// `UInt64Add` that keeps operands when it fails (RocksDB's `kMustMerge`).
    struct MustMergeAdd;

    impl MergeOperator for MustMergeAdd {
        fn name(&self) -> &str {
            "uint64add"
        }

        fn full_merge(
            &self,
            key: &[u8],
            existing: Option<&[u8]>,
            operands: &[&[u8]],
        ) -> std::result::Result<Vec<u8>, crate::MergeError> {
            UInt64Add.full_merge(key, existing, operands)
        }

        fn failure_scope(&self) -> MergeFailureScope {
            MergeFailureScope::MustMerge
        }
    }

    #[test]
    fn a_failing_must_merge_operator_keeps_the_operands_and_leaves_the_base() {
        let op: Arc<dyn MergeOperator> = Arc::new(MustMergeAdd);
        let stripes = Stripes::new(vec![]);
        let c = MergeCollector {
            operator: Some(&op),
            stripes: &stripes,
            now_micros: 100,
        };
        let mut it = input(&[
            ("counter", 9, Merge, "not eight bytes"),
            ("counter", 8, Merge, "12345678"),
            ("counter", 5, Put, "87654321"),
        ]);
        it.seek_to_first().unwrap();
        let (merged, consumed) = c.collect(&mut it, b"counter", 9, &[], true).unwrap();
        assert_eq!(
            merged,
            vec![
                (9, Merge, b"not eight bytes".to_vec()),
                (8, Merge, b"12345678".to_vec())
            ]
        );
        assert_eq!(consumed, 2);
        // The base is left for the retainer to judge (and keep).
        assert!(it.valid());
        assert_eq!(parse_internal_key(it.key()).unwrap().seqno, 5);
    }

    #[test]
    fn the_output_label_is_the_inputs_shared_one() {
        let op: Arc<dyn MergeOperator> = Arc::new(UInt64Add);
        assert_eq!(
            output_label(Some(&op), std::iter::empty()),
            ("uint64add".into(), true)
        );
        assert_eq!(
            output_label(Some(&op), ["uint64add"; 2].into_iter()),
            ("uint64add".into(), true)
        );
        assert_eq!(
            output_label(Some(&op), ["max"].into_iter()),
            ("max".into(), false)
        );
        assert_eq!(
            output_label(Some(&op), ["uint64add", "max"].into_iter()),
            (CONFLICTING_OPERATORS.into(), false)
        );
        // Unlabelled inputs (replayed from a WAL) take the label of the
        // labelled ones, or the keyspace's operator's.
        assert_eq!(
            output_label(Some(&op), [""].into_iter()),
            ("uint64add".into(), true)
        );
        assert_eq!(
            output_label(Some(&op), ["", "uint64add"].into_iter()),
            ("uint64add".into(), true)
        );
        assert_eq!(
            output_label(None, ["max", ""].into_iter()),
            ("max".into(), false)
        );
        assert_eq!(output_label(None, [""].into_iter()), ("".into(), false));
        assert_eq!(
            output_label(None, ["max"].into_iter()),
            ("max".into(), false)
        );
        assert_eq!(output_label(None, std::iter::empty()), ("".into(), false));
    }
}
