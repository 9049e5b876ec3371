//! A sequenced write group: what its members share once the leader has
//! given them sequence numbers and logged their record.

use crate::memtable::MemTable;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strata_sstable::SeqNo;

pub(crate) struct Group {
    /// The publisher's id for this group.
    pub id: u64,
    /// The group's last sequence number: visible once the group publishes.
    pub last_seq: SeqNo,
    /// The memtable every member inserts into.
    pub mem: Arc<MemTable>,
    /// Ring position just past the group's WAL record (`None` when the
    /// group skips the WAL).
    pub end_lsn: Option<u64>,
    /// Bytes of the members' batches.
    pub bytes: u64,
    remaining: AtomicUsize,
}

impl Group {
    pub fn new(
        id: u64,
        last_seq: SeqNo,
        mem: Arc<MemTable>,
        end_lsn: Option<u64>,
        members: usize,
        bytes: u64,
    ) -> Self {
        Group {
            id,
            last_seq,
            mem,
            end_lsn,
            bytes,
            remaining: AtomicUsize::new(members),
        }
    }

    /// A member finished its memtable insert. Returns true for the last
    /// one, which then completes the group.
    pub fn member_inserted(&self) -> bool {
        self.remaining.fetch_sub(1, Ordering::AcqRel) == 1
    }
}
