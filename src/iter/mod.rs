//! Iterators, composed as in LevelDB: internal iterators over memtables and
//! tables (in internal-key order, every version visible), a merging
//! iterator over all of them, and the user-facing iterator that hides
//! sequence numbers, old versions and tombstones. The public iterators
//! over a read view (`Cursor`, `Iter`) are in `cursor.rs`, one layer up.
//! Range tombstones are applied in the merging iterator, which skips the
//! entries they delete (`range_del.rs`).

mod db_iter;
#[cfg(test)]
mod db_iter_tests;
mod level;
mod merging;
mod range_del;
#[cfg(test)]
mod range_del_model_tests;
mod table;
#[cfg(test)]
mod vec_iter;

pub(crate) use db_iter::DbIter;
pub(crate) use level::LevelIter;
pub(crate) use merging::MergingIter;
pub(crate) use range_del::{RangeDelSkipper, TombstoneSource};
pub(crate) use table::TableFileIter;
#[cfg(test)]
pub(crate) use vec_iter::VecIter;

use crate::error::Result;
use bytes::Bytes;

/// An iterator over internal keys (`user_key ++ trailer`) in internal-key
/// order. Every movement can fail (a corrupt block); after an error the
/// iterator is not valid.
pub trait InternalIterator: Send {
    /// Positioned at an entry.
    fn valid(&self) -> bool;
    /// Position at the first entry.
    fn seek_to_first(&mut self) -> Result<()>;
    /// Position at the last entry.
    fn seek_to_last(&mut self) -> Result<()>;
    /// Position at the first entry `>= target`.
    fn seek(&mut self, target: &[u8]) -> Result<()>;
    /// Position at the last entry `<= target`.
    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()>;
    /// Move to the next entry. REQUIRES: `valid()`.
    fn next(&mut self) -> Result<()>;
    /// Move to the previous entry. REQUIRES: `valid()`.
    fn prev(&mut self) -> Result<()>;
    /// The current internal key. REQUIRES: `valid()`.
    fn key(&self) -> &[u8];
    /// The current value. REQUIRES: `valid()`.
    fn value(&self) -> &[u8];
    /// The current value as owned bytes; table iterators hand out a
    /// zero-copy slice of the mapping.
    fn value_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.value())
    }
}

impl InternalIterator for Box<dyn InternalIterator> {
    fn valid(&self) -> bool {
        (**self).valid()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        (**self).seek_to_first()
    }
    fn seek_to_last(&mut self) -> Result<()> {
        (**self).seek_to_last()
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        (**self).seek(target)
    }
    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        (**self).seek_for_prev(target)
    }
    fn next(&mut self) -> Result<()> {
        (**self).next()
    }
    fn prev(&mut self) -> Result<()> {
        (**self).prev()
    }
    fn key(&self) -> &[u8] {
        (**self).key()
    }
    fn value(&self) -> &[u8] {
        (**self).value()
    }
    fn value_bytes(&self) -> Bytes {
        (**self).value_bytes()
    }
}

/// The user key of an internal key (everything but the 8-byte trailer).
pub(crate) fn user_key(ikey: &[u8]) -> &[u8] {
    &ikey[..ikey.len().saturating_sub(strata_sstable::TRAILER_LEN)]
}
