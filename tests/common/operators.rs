//! Merge operators the tests share.

use strata::{Append, MergeError, MergeOperator};

/// `Append` (with a `,` separator) without a partial merge: operands no
/// base is found for stay operands, in a flush and in a compaction.
pub struct FullOnlyAppend;

impl MergeOperator for FullOnlyAppend {
    fn name(&self) -> &str {
        "full-only-append"
    }

    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        Append::with_separator(",").full_merge(key, existing, operands)
    }
}
