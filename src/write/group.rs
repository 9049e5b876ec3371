//! A sequenced write group: what its members share once the leader has
//! given them sequence numbers and logged their record.

use super::sync::{AtomicUsize, Ordering};
use crate::memtable::ActiveMemTables;
use std::sync::Arc;
use strata_sstable::SeqNo;

pub(crate) struct Group {
    /// The publisher's id for this group.
    pub id: u64,
    /// The group's last sequence number: visible once the group publishes.
    pub last_seq: SeqNo,
    /// The memtables the members insert into.
    pub mems: Arc<ActiveMemTables>,
    /// Log position just past the group's WAL record (`None` when the
    /// group skips the WAL).
    pub end_lsn: Option<u64>,
    /// Inserts still to finish: one per member, or one in all when the
    /// leader inserts every batch itself.
    inserts_left: AtomicUsize,
}

impl Group {
    pub fn new(
        id: u64,
        last_seq: SeqNo,
        mems: Arc<ActiveMemTables>,
        end_lsn: Option<u64>,
        inserts: usize,
    ) -> Self {
        Group {
            id,
            last_seq,
            mems,
            end_lsn,
            inserts_left: AtomicUsize::new(inserts),
        }
    }

    /// An insert finished. Returns true for the last one, whose caller
    /// then completes the group. (Acquire-release: every insert happens
    /// before the completion, and so before the publication.)
    pub fn inserted(&self) -> bool {
        self.inserts_left.fetch_sub(1, Ordering::AcqRel) == 1
    }
}
