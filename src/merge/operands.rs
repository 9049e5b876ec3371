//! Running the operator over operands collected newest first, as every
//! reader collects them, and the error a failure becomes.

use super::MergeOperator;
use crate::error::{Error, Result};
use std::sync::Arc;

/// `full_merge` of `operands` given newest first (the order a forward
/// reader finds them in), as the error the read returns if it fails or
/// the keyspace has no operator.
pub(crate) fn full_merge<T: AsRef<[u8]>>(
    operator: Option<&Arc<dyn MergeOperator>>,
    key: &[u8],
    existing: Option<&[u8]>,
    operands_newest_first: &[T],
) -> Result<Vec<u8>> {
    let oldest_first: Vec<&[u8]> = operands_newest_first
        .iter()
        .rev()
        .map(AsRef::as_ref)
        .collect();
    full_merge_oldest_first(operator, key, existing, &oldest_first)
}

/// [`full_merge`] of operands given oldest first (the order a reverse
/// scan finds them in, and the operator's).
pub(crate) fn full_merge_oldest_first<T: AsRef<[u8]>>(
    operator: Option<&Arc<dyn MergeOperator>>,
    key: &[u8],
    existing: Option<&[u8]>,
    operands_oldest_first: &[T],
) -> Result<Vec<u8>> {
    let Some(operator) = operator else {
        return Err(merge_failed(
            key,
            "the key has merge operands and the keyspace has no merge operator",
        ));
    };
    let oldest_first: Vec<&[u8]> = operands_oldest_first.iter().map(AsRef::as_ref).collect();
    operator
        .full_merge(key, existing, &oldest_first)
        .map_err(|e| merge_failed(key, &format!("{} failed: {e}", operator.name())))
}

/// [`Error::MergeFailed`] for `key`, which it shows cut short (keys may be
/// 64 KiB).
pub(crate) fn merge_failed(key: &[u8], reason: &str) -> Error {
    const SHOWN: usize = 64;
    let mut shown = key.get(..SHOWN).unwrap_or(key).to_vec();
    if key.len() > SHOWN {
        shown.extend_from_slice(b"..");
    }
    Error::MergeFailed {
        key: shown,
        reason: reason.to_string(),
    }
}
