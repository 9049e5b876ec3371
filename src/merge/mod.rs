//! Merge operators: read-modify-write without the read. A merge operand
//! is stored as an entry of kind `Merge`; readers, flushes and compactions
//! combine a key's operands with its older value through the keyspace's
//! [`MergeOperator`] (docs/design/merge.md).

mod builtin;
mod open_check;
mod operands;
mod operator;
mod successive;

pub use builtin::{Append, Max, UInt64Add};
pub(crate) use open_check::check_merge_operator;
pub(crate) use operands::{full_merge, full_merge_oldest_first};
pub use operator::{MergeError, MergeFailureScope, MergeOperator};
