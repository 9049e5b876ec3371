//! The check that a keyspace holding merge operands is given the operator
//! they were written for: at open (the default keyspace) and when
//! `Db::keyspace_with` sets a keyspace's options. Cheap: the tables'
//! properties are in memory, and each memtable counts its operands.

use super::MergeOperator;
use crate::error::{Error, Result};
use crate::memtable::MemTable;
use crate::version::Version;
use std::sync::Arc;

/// `InvalidArgument` naming the keyspace, the table and both operators if
/// a table of `version` holds operands labelled with another operator
/// than `operator`, or if some table or memtable holds operands and
/// `operator` is `None`. Operands labelled with no name (written while
/// the keyspace had no operator) are accepted by any operator.
pub(crate) fn check_merge_operator<'a>(
    keyspace: &str,
    operator: Option<&Arc<dyn MergeOperator>>,
    version: &Version,
    memtables: impl IntoIterator<Item = &'a Arc<MemTable>>,
) -> Result<()> {
    for (level, file) in version.all_files() {
        let props = file.table().properties();
        if props.num_merge_operands == 0 {
            continue;
        }
        let written_for = props.merge_operator.as_str();
        match operator {
            None => {
                return Err(Error::InvalidArgument(format!(
                    "keyspace {keyspace:?} holds merge operands (table {} in L{level}, written for {written_for:?}) but no merge operator is set",
                    file.meta.number
                )))
            }
            Some(op) if !written_for.is_empty() && written_for != op.name() => {
                return Err(Error::InvalidArgument(format!(
                    "keyspace {keyspace:?} holds merge operands written for operator {written_for:?} (table {} in L{level}), but the options set {:?}",
                    file.meta.number,
                    op.name()
                )))
            }
            Some(_) => {}
        }
    }
    if operator.is_none() && memtables.into_iter().any(|m| m.has_merge_operands()) {
        return Err(Error::InvalidArgument(format!(
            "keyspace {keyspace:?} holds merge operands in its memtables but no merge operator is set"
        )));
    }
    Ok(())
}
