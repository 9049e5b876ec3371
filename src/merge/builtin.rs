//! The built-in operators, under RocksDB's names (db_bench's
//! `--merge_operator` values): `uint64add`, `stringappend` (with a
//! separator) and `max`. All three are associative, so each also merges
//! operands without a base.

use super::{MergeError, MergeOperator};

/// Adds unsigned 64-bit integers stored as 8 bytes little-endian, wrapping
/// on overflow; a missing value counts as 0. RocksDB: `UInt64AddOperator`
/// ("uint64add"), which logs a value of another length and counts it as 0:
/// strata fails the merge instead, so damage is not summed away.
///
/// ```
/// use std::sync::Arc;
/// # let dir = tempfile::tempdir().unwrap();
/// let options = strata::Options {
///     merge_operator: Some(Arc::new(strata::UInt64Add)),
///     ..Default::default()
/// };
/// let db = strata::Db::open(dir.path(), options)?;
/// db.merge("hits", 3u64.to_le_bytes())?;
/// db.merge("hits", 4u64.to_le_bytes())?;
/// assert_eq!(db.get("hits")?.as_deref(), Some(&7u64.to_le_bytes()[..]));
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct UInt64Add;

impl UInt64Add {
    fn sum<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<u64, MergeError> {
        values.into_iter().try_fold(0u64, |sum, v| {
            let bytes: [u8; 8] = v.try_into().map_err(|_| {
                MergeError(format!(
                    "a uint64add value is {} bytes, not 8 (little-endian u64)",
                    v.len()
                ))
            })?;
            Ok(sum.wrapping_add(u64::from_le_bytes(bytes)))
        })
    }
}

impl MergeOperator for UInt64Add {
    fn name(&self) -> &str {
        "uint64add"
    }

    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        let all = existing.into_iter().chain(operands.iter().copied());
        Ok(Self::sum(all)?.to_le_bytes().to_vec())
    }

    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        // A malformed operand stays as it is, for the full merge to report.
        Self::sum(operands.iter().copied())
            .ok()
            .map(|s| s.to_le_bytes().to_vec())
    }
}

/// Appends each operand to the value, with a separator between any two.
/// RocksDB: `StringAppendOperator` ("stringappend"; its default separator
/// is `,`).
#[derive(Debug, Clone, Default)]
pub struct Append {
    /// Put between the value and each operand (may be empty).
    pub separator: Vec<u8>,
}

impl Append {
    /// An append operator with `separator` between the parts.
    pub fn with_separator(separator: impl Into<Vec<u8>>) -> Self {
        Append {
            separator: separator.into(),
        }
    }

    fn join<'a>(&self, parts: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, part) in parts.enumerate() {
            if i > 0 {
                out.extend_from_slice(&self.separator);
            }
            out.extend_from_slice(part);
        }
        out
    }
}

impl MergeOperator for Append {
    fn name(&self) -> &str {
        "stringappend"
    }

    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        Ok(self.join(existing.into_iter().chain(operands.iter().copied())))
    }

    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        Some(self.join(operands.iter().copied()))
    }
}

/// Keeps the bytewise largest of the value and the operands. RocksDB:
/// `MaxOperator` ("max").
#[derive(Debug, Clone, Copy, Default)]
pub struct Max;

impl MergeOperator for Max {
    fn name(&self) -> &str {
        "max"
    }

    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        let all = existing.into_iter().chain(operands.iter().copied());
        Ok(all.max().unwrap_or_default().to_vec())
    }

    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        operands.iter().max().map(|v| v.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(v: u64) -> [u8; 8] {
        v.to_le_bytes()
    }

    #[test]
    fn uint64add_sums_from_zero_and_wraps() {
        let op = UInt64Add;
        let (a, b) = (le(5), le(7));
        assert_eq!(op.full_merge(b"k", None, &[&a, &b]).unwrap(), le(12));
        assert_eq!(op.full_merge(b"k", Some(&le(1)), &[&a]).unwrap(), le(6));
        let max = le(u64::MAX);
        assert_eq!(op.full_merge(b"k", Some(&max), &[&le(2)]).unwrap(), le(1));
        assert_eq!(op.partial_merge(b"k", &[&a, &b]), Some(le(12).to_vec()));
    }

    #[test]
    fn uint64add_refuses_a_value_that_is_not_eight_bytes() {
        let op = UInt64Add;
        let err = op.full_merge(b"k", Some(b"abc"), &[&le(1)]).unwrap_err();
        assert!(err.0.contains("3 bytes"), "{err}");
        assert!(op.full_merge(b"k", None, &[b"123456789"]).is_err());
        assert_eq!(op.partial_merge(b"k", &[&le(1), b"x"]), None);
    }

    #[test]
    fn append_puts_the_separator_between_parts_only() {
        let op = Append::with_separator(",");
        assert_eq!(op.full_merge(b"k", None, &[b"a"]).unwrap(), b"a");
        assert_eq!(
            op.full_merge(b"k", Some(b"x"), &[b"a", b"b"]).unwrap(),
            b"x,a,b"
        );
        assert_eq!(op.partial_merge(b"k", &[b"a", b"b"]).unwrap(), b"a,b");
        // Partial then full equals full over every operand.
        let partial = op.partial_merge(b"k", &[b"a", b"b"]).unwrap();
        assert_eq!(
            op.full_merge(b"k", Some(b"x"), &[&partial, b"c"]).unwrap(),
            op.full_merge(b"k", Some(b"x"), &[b"a", b"b", b"c"])
                .unwrap()
        );
    }

    #[test]
    fn max_keeps_the_bytewise_largest() {
        let op = Max;
        assert_eq!(
            op.full_merge(b"k", Some(b"b"), &[b"a", b"c", b"bb"])
                .unwrap(),
            b"c"
        );
        assert_eq!(op.full_merge(b"k", Some(b"z"), &[b"a"]).unwrap(), b"z");
        assert_eq!(op.partial_merge(b"k", &[b"a", b"ab"]).unwrap(), b"ab");
    }

    #[test]
    fn operators_compare_by_name() {
        let a: std::sync::Arc<dyn MergeOperator> = std::sync::Arc::new(Max);
        let b: std::sync::Arc<dyn MergeOperator> = std::sync::Arc::new(Max);
        let c: std::sync::Arc<dyn MergeOperator> = std::sync::Arc::new(UInt64Add);
        let options = |op: &std::sync::Arc<dyn MergeOperator>| crate::KeyspaceOptions {
            merge_operator: Some(std::sync::Arc::clone(op)),
            ..Default::default()
        };
        assert_eq!(options(&a), options(&b));
        assert_ne!(options(&a), options(&c));
        assert_eq!(format!("{c:?}"), "MergeOperator(\"uint64add\")");
    }
}
