//! The live snapshots' sequence numbers: what flush and compaction must
//! keep. The public handle, `Snapshot`, is in `snapshot.rs`.

use crate::lock_order::{Condvar, Level, Mutex};
use std::collections::BTreeMap;
use strata_sstable::SeqNo;

/// The live snapshots' sequence numbers, so flush and compaction keep the
/// versions they can still see.
pub(crate) struct SnapshotList {
    live: Mutex<Live>,
    /// Signalled when a [`SnapshotFreeze`] ends.
    thawed: Condvar,
}

struct Live {
    /// Sequence number → how many snapshots hold it.
    by_seq: BTreeMap<SeqNo, usize>,
    /// A freeze is in force: no snapshot is taken until it ends.
    frozen: bool,
}

impl Default for SnapshotList {
    fn default() -> Self {
        SnapshotList {
            live: Mutex::new(
                Level::Snapshots,
                Live {
                    by_seq: BTreeMap::new(),
                    frozen: false,
                },
            ),
            thawed: Condvar::new(),
        }
    }
}

/// While it lives no snapshot is taken (takers wait): an ingestion that
/// found no snapshot gives its tables sequence number 0, which every
/// snapshot would see, and none may be taken before the tables are in.
pub(crate) struct SnapshotFreeze<'a> {
    list: &'a SnapshotList,
}

impl Drop for SnapshotFreeze<'_> {
    fn drop(&mut self) {
        self.list.live.lock().frozen = false;
        self.list.thawed.notify_all();
    }
}

impl SnapshotList {
    /// Register a snapshot at the sequence `current()` returns, read under
    /// the list's lock so compaction never misses a snapshot being taken.
    /// Waits out a [`freeze`](Self::freeze_if_none).
    pub fn acquire(&self, current: impl FnOnce() -> SeqNo) -> SeqNo {
        let mut live = self.live.lock();
        while live.frozen {
            self.thawed.wait(&mut live);
        }
        let seq = current();
        *live.by_seq.entry(seq).or_default() += 1;
        seq
    }

    /// Stop snapshots from being taken until the returned guard drops, if
    /// none is live now; `None` (and no freeze) if one is.
    pub fn freeze_if_none(&self) -> Option<SnapshotFreeze<'_>> {
        let mut live = self.live.lock();
        if !live.by_seq.is_empty() || live.frozen {
            return None;
        }
        live.frozen = true;
        Some(SnapshotFreeze { list: self })
    }

    /// Let go of one snapshot at `seq`; true when it was the last one
    /// there (the list changed, and with it what compaction may drop).
    pub fn release(&self, seq: SeqNo) -> bool {
        let mut live = self.live.lock();
        let Some(n) = live.by_seq.get_mut(&seq) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            live.by_seq.remove(&seq);
            return true;
        }
        false
    }

    /// The newest live snapshot's sequence number.
    pub fn newest(&self) -> Option<SeqNo> {
        self.live.lock().by_seq.keys().next_back().copied()
    }

    /// Sequence numbers of live snapshots, ascending.
    pub fn sequences(&self) -> Vec<SeqNo> {
        self.live.lock().by_seq.keys().copied().collect()
    }
}
