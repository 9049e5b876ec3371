//! Write stalls: slowing and stopping writers while L0 is too deep for
//! compaction to keep up, as RocksDB does.
//!
//! Between `level0_slowdown_writes_trigger` and `level0_stop_writes_trigger`
//! each write group is given a time slot so the write rate stays at
//! `delayed_write_rate`: the leader waits until its slot (a computed
//! deadline, woken early if compaction catches up), not in a polling loop.
//! At the stop trigger, writers wait until compaction brings L0 back down.

use std::time::{Duration, Instant};

/// Hands out delayed writers' time slots.
pub(crate) struct WriteController {
    bytes_per_sec: u64,
    next_slot: Instant,
}

impl WriteController {
    pub fn new(bytes_per_sec: u64) -> Self {
        WriteController {
            bytes_per_sec: bytes_per_sec.max(1),
            next_slot: Instant::now(),
        }
    }

    /// The time a delayed write of `bytes` may proceed; reserves its slot.
    pub fn slot_for(&mut self, bytes: u64) -> Instant {
        let now = Instant::now();
        let start = self.next_slot.max(now);
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
        self.next_slot = start + cost;
        start + cost
    }

    /// Forget reserved slots once the stall ends.
    pub fn reset(&mut self) {
        self.next_slot = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_write_rate() {
        let mut c = WriteController::new(1 << 20);
        let a = c.slot_for(1 << 20);
        let b = c.slot_for(1 << 19);
        let gap = b.duration_since(a);
        assert!(
            gap >= Duration::from_millis(499) && gap <= Duration::from_millis(501),
            "{gap:?}"
        );
    }
}
