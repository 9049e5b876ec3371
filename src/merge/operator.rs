//! The `MergeOperator` trait (RocksDB: `MergeOperator`, FullMergeV2 and
//! PartialMergeMulti).

use std::fmt;

/// Why a merge operator could not combine: carried to the reader as
/// [`Error::MergeFailed`](crate::Error::MergeFailed), which names the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeError(pub String);

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MergeError {}

/// Combines a key's merge operands with its older value.
///
/// Set one per keyspace ([`KeyspaceOptions::merge_operator`](crate::KeyspaceOptions::merge_operator),
/// [`Options::merge_operator`](crate::Options::merge_operator) for the
/// default keyspace), then write operands with
/// [`Db::merge`](crate::Db::merge). A read of a key whose newest versions
/// are operands calls [`full_merge`](Self::full_merge) once with the value
/// below them (or `None`) and every operand, oldest first. Compaction calls
/// it too, and [`partial_merge`](Self::partial_merge) where no base value
/// is in reach. The operator must be deterministic: the same inputs give
/// the same output whenever and wherever it runs.
///
/// ```
/// use std::sync::Arc;
/// use strata::{MergeError, MergeOperator};
/// /// Keeps the longest operand.
/// struct Longest;
/// impl MergeOperator for Longest {
///     fn name(&self) -> &str {
///         "longest"
///     }
///     fn full_merge(
///         &self,
///         _key: &[u8],
///         existing: Option<&[u8]>,
///         operands: &[&[u8]],
///     ) -> Result<Vec<u8>, MergeError> {
///         let all = existing.into_iter().chain(operands.iter().copied());
///         Ok(all.max_by_key(|v| v.len()).unwrap_or_default().to_vec())
///     }
/// }
/// # let dir = tempfile::tempdir().unwrap();
/// let options = strata::Options {
///     merge_operator: Some(Arc::new(Longest)),
///     ..Default::default()
/// };
/// let db = strata::Db::open(dir.path(), options)?;
/// db.merge("k", "ab")?;
/// db.merge("k", "abcd")?;
/// db.merge("k", "a")?;
/// assert_eq!(db.get("k")?.as_deref(), Some(&b"abcd"[..]));
/// # Ok::<(), strata::Error>(())
/// ```
pub trait MergeOperator: Send + Sync + 'static {
    /// The operator's name, stored in every table holding its operands:
    /// opening the database with another operator (or none) while
    /// operands exist is an error, and compaction combines only operands
    /// written for this name. Change it when the operator's meaning
    /// changes.
    fn name(&self) -> &str;

    /// The value of `key` given the value below the operands (`None`: the
    /// key did not exist, or was deleted) and the operands, oldest first
    /// (never empty). RocksDB: `FullMergeV2`.
    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError>;

    /// One operand equivalent to `operands` (oldest first, at least two)
    /// applied in turn, for operators where that exists (associative
    /// ones); `None` keeps the operands as they are. The default is
    /// `None`. RocksDB: `PartialMergeMulti`.
    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        let _ = (key, operands);
        None
    }

    /// What a failure of [`full_merge`](Self::full_merge) fails besides
    /// the read that needed it. The default,
    /// [`TryMerge`](MergeFailureScope::TryMerge), is RocksDB's: a flush or
    /// compaction that meets it fails, which stops writes.
    /// [`MustMerge`](MergeFailureScope::MustMerge) keeps the operands as
    /// they are there instead. RocksDB: `MergeOperationOutput::op_failure_scope`.
    fn failure_scope(&self) -> MergeFailureScope {
        MergeFailureScope::TryMerge
    }
}

/// Which operations a failing [`MergeOperator::full_merge`] fails
/// (RocksDB's `OpFailureScope`). Reads of the key fail with
/// [`Error::MergeFailed`](crate::Error::MergeFailed) either way, and no
/// operand is ever dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MergeFailureScope {
    /// Every operation that tried the merge fails, flushes and compactions
    /// included: the failure becomes the background error, writes stop
    /// until the database is reopened with an operator that does not fail.
    /// RocksDB: `kTryMerge` (its default).
    #[default]
    TryMerge,
    /// Only operations that must produce the merged value fail (reads).
    /// A flush or compaction writes the key's operands and base as they
    /// are and goes on, so one bad operand does not stop the database's
    /// writes; the key's entries then stay uncombined until the operator
    /// succeeds on them. RocksDB: `kMustMerge`.
    MustMerge,
}

/// Operators compare by name: the name is what the database stores and
/// checks, so options holding the same operator compare equal.
impl PartialEq for dyn MergeOperator {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl fmt::Debug for dyn MergeOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MergeOperator({:?})", self.name())
    }
}
