//! The live snapshots' sequence numbers: what flush and compaction must
//! keep. The public handle, `Snapshot`, is in `snapshot.rs`.

use crate::lock_order::{Level, Mutex};
use std::collections::BTreeMap;
use strata_sstable::SeqNo;

/// The live snapshots' sequence numbers, so flush and compaction keep the
/// versions they can still see.
pub(crate) struct SnapshotList {
    live: Mutex<BTreeMap<SeqNo, usize>>,
}

impl Default for SnapshotList {
    fn default() -> Self {
        SnapshotList {
            live: Mutex::new(Level::Snapshots, BTreeMap::new()),
        }
    }
}

impl SnapshotList {
    /// Register a snapshot at the sequence `current()` returns, read under
    /// the list's lock so compaction never misses a snapshot being taken.
    pub fn acquire(&self, current: impl FnOnce() -> SeqNo) -> SeqNo {
        let mut live = self.live.lock();
        let seq = current();
        *live.entry(seq).or_default() += 1;
        seq
    }

    /// Let go of one snapshot at `seq`; true when it was the last one
    /// there (the list changed, and with it what compaction may drop).
    pub fn release(&self, seq: SeqNo) -> bool {
        let mut live = self.live.lock();
        let Some(n) = live.get_mut(&seq) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            live.remove(&seq);
            return true;
        }
        false
    }

    /// The newest live snapshot's sequence number.
    pub fn newest(&self) -> Option<SeqNo> {
        self.live.lock().keys().next_back().copied()
    }

    /// Sequence numbers of live snapshots, ascending.
    pub fn sequences(&self) -> Vec<SeqNo> {
        self.live.lock().keys().copied().collect()
    }
}
