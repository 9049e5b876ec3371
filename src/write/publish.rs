//! In-order publication of sequence numbers.
//!
//! Groups get their sequence numbers in order but finish their memtable
//! inserts in any order. The visible sequence number (what reads and new
//! snapshots use) advances only over a contiguous prefix of finished
//! groups, so a reader never sees a later write without every earlier one,
//! nor part of a batch.
//!
//! Writers waiting for their write to become visible park on their own
//! thread; the publisher wakes exactly those whose sequence number it just
//! published (no herd of every waiting writer on every publication).

use super::backoff::Backoff;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::Thread;
use std::time::Duration;
use strata_sstable::SeqNo;

/// A parked waiter re-checks at least this often; the wake-up protocol
/// does not depend on it.
const WAIT_SLICE: Duration = Duration::from_millis(10);

struct Pending {
    /// Group id of `groups[0]`.
    front_id: u64,
    /// Last sequence number of each registered group, and whether it is done.
    groups: VecDeque<(SeqNo, bool)>,
    /// Parked writers and the sequence number each waits for.
    waiters: Vec<(SeqNo, Thread)>,
}

pub(crate) struct Publisher {
    pending: Mutex<Pending>,
}

impl Publisher {
    pub fn new() -> Self {
        Publisher {
            pending: Mutex::new(Pending {
                front_id: 0,
                groups: VecDeque::with_capacity(64),
                waiters: Vec::with_capacity(64),
            }),
        }
    }

    /// Register the next group (ids and sequence ranges in order) and
    /// return its id. REQUIRES: called by the sequencer, in order.
    pub fn register(&self, last_seq: SeqNo) -> u64 {
        let mut p = self.pending.lock();
        debug_assert!(p.groups.back().is_none_or(|&(s, _)| s < last_seq));
        p.groups.push_back((last_seq, false));
        p.front_id + p.groups.len() as u64 - 1
    }

    /// Mark group `id` finished; advance `visible` over every finished
    /// group at the front. A group [`publish_all`](Self::publish_all)
    /// already published is left alone.
    pub fn complete(&self, id: u64, visible: &AtomicU64) {
        let mut p = self.pending.lock();
        let Some(index) = id.checked_sub(p.front_id) else {
            return;
        };
        if let Some(g) = p.groups.get_mut(index as usize) {
            g.1 = true;
        }
        Self::advance(&mut p, visible);
    }

    /// Publish every registered group, finished or not: a resume does
    /// this once every group's batches are inserted and durable, for the
    /// groups whose completion a background error cut short (their
    /// writers were told the write failed; its outcome is that it was
    /// applied). REQUIRES: no group is being registered (the caller leads
    /// the write queue).
    pub fn publish_all(&self, visible: &AtomicU64) {
        let mut p = self.pending.lock();
        for g in p.groups.iter_mut() {
            g.1 = true;
        }
        Self::advance(&mut p, visible);
    }

    /// Advance `visible` over the finished groups at the front and wake
    /// the waiters that now see their writes.
    fn advance(p: &mut Pending, visible: &AtomicU64) {
        let mut advanced = None;
        while let Some(&(last, true)) = p.groups.front() {
            p.groups.pop_front();
            p.front_id += 1;
            advanced = Some(last);
        }
        if let Some(last) = advanced {
            debug_assert!(visible.load(Ordering::Relaxed) < last);
            visible.store(last, Ordering::Release);
            p.waiters.retain(|(seq, thread)| {
                let ready = *seq <= last;
                if ready {
                    thread.unpark();
                }
                !ready
            });
        }
    }

    /// Wake every parked waiter (an error ended the waits).
    pub fn wake_all(&self) {
        for (_, thread) in self.pending.lock().waiters.drain(..) {
            thread.unpark();
        }
    }

    /// Wait until `visible >= seq`, or `stop` reports an error. `stop` is
    /// never called with the publisher's lock held.
    pub fn wait_visible(
        &self,
        seq: SeqNo,
        visible: &AtomicU64,
        mut backoff: Backoff,
        stop: impl Fn() -> Option<crate::Error>,
    ) -> crate::Result<()> {
        while visible.load(Ordering::Acquire) < seq {
            if !backoff.snooze() {
                break;
            }
        }
        loop {
            // `stop` may record a background error, which wakes every
            // waiter under our lock: call it before taking the lock.
            if let Some(e) = stop() {
                let me = std::thread::current().id();
                self.pending.lock().waiters.retain(|(_, t)| t.id() != me);
                return Err(e);
            }
            {
                let mut p = self.pending.lock();
                // Checked under the lock `complete` publishes under: either
                // it is visible now, or `complete` will see our entry.
                if visible.load(Ordering::Acquire) >= seq {
                    return Ok(());
                }
                let me = std::thread::current();
                if !p.waiters.iter().any(|(_, t)| t.id() == me.id()) {
                    p.waiters.push((seq, me));
                }
            }
            std::thread::park_timeout(WAIT_SLICE);
            // Once visible, `complete` has already removed our entry.
            if visible.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `stop` records a background error, which wakes every
    /// waiter through the publisher's lock. Called under that lock, it
    /// deadlocked; this test would hang.
    #[test]
    fn a_stop_that_wakes_waiters_does_not_deadlock() {
        let p = Publisher::new();
        let visible = AtomicU64::new(0);
        p.register(5);
        let backoff = crate::write::backoff::ActiveWriters::default().backoff();
        let result = p.wait_visible(5, &visible, backoff, || {
            p.wake_all();
            Some(crate::Error::Closed)
        });
        assert!(matches!(result, Err(crate::Error::Closed)));
    }

    #[test]
    fn visible_advances_only_over_a_finished_prefix() {
        let p = Publisher::new();
        let visible = AtomicU64::new(0);
        let a = p.register(3);
        let b = p.register(5);
        let c = p.register(9);
        p.complete(b, &visible);
        assert_eq!(visible.load(Ordering::SeqCst), 0);
        p.complete(c, &visible);
        assert_eq!(visible.load(Ordering::SeqCst), 0);
        p.complete(a, &visible);
        assert_eq!(visible.load(Ordering::SeqCst), 9);
        let d = p.register(10);
        p.complete(d, &visible);
        assert_eq!(visible.load(Ordering::SeqCst), 10);
    }

    /// A resume publishes the groups a background error left unfinished;
    /// their writers may still complete them afterwards, which must
    /// change nothing (an id below the front used to underflow).
    #[test]
    fn publish_all_publishes_unfinished_groups_and_late_completions_are_ignored() {
        let p = Publisher::new();
        let visible = AtomicU64::new(0);
        let a = p.register(3);
        let b = p.register(5);
        let c = p.register(9);
        p.complete(b, &visible);
        assert_eq!(visible.load(Ordering::SeqCst), 0);
        p.publish_all(&visible);
        assert_eq!(visible.load(Ordering::SeqCst), 9);
        p.complete(a, &visible);
        p.complete(c, &visible);
        assert_eq!(visible.load(Ordering::SeqCst), 9);
        let d = p.register(12);
        p.complete(d, &visible);
        assert_eq!(visible.load(Ordering::SeqCst), 12);
    }

    /// Every order in which six groups can finish (720 permutations): the
    /// published number only moves forward, only onto a group boundary,
    /// and never past a group that has not finished. The publisher's state
    /// changes only under its lock, so completion orders are all the
    /// interleavings there are.
    #[test]
    fn every_completion_order_publishes_a_finished_prefix() {
        fn permutations(n: usize) -> Vec<Vec<usize>> {
            if n == 0 {
                return vec![vec![]];
            }
            let mut out = Vec::new();
            for p in permutations(n - 1) {
                for i in 0..=p.len() {
                    let mut q = p.clone();
                    q.insert(i, n - 1);
                    out.push(q);
                }
            }
            out
        }
        let lasts = [2u64, 3, 7, 8, 12, 20];
        let orders = permutations(lasts.len());
        assert_eq!(orders.len(), 720);
        for order in orders {
            let p = Publisher::new();
            let visible = AtomicU64::new(0);
            let ids: Vec<u64> = lasts.iter().map(|&l| p.register(l)).collect();
            let mut finished = [false; 6];
            let mut prev = 0;
            for &g in &order {
                p.complete(ids[g], &visible);
                finished[g] = true;
                let v = visible.load(Ordering::SeqCst);
                let prefix = finished.iter().take_while(|f| **f).count();
                let expected = if prefix == 0 { 0 } else { lasts[prefix - 1] };
                assert_eq!(v, expected, "order {order:?}");
                assert!(v >= prev);
                prev = v;
            }
            assert_eq!(prev, 20);
        }
    }

    #[test]
    fn randomized_completion_orders_publish_in_order() {
        // Many threads complete groups in arbitrary order; an observer
        // checks the published number only moves forward and always lands
        // on a group boundary.
        use std::sync::Arc;
        for round in 0..50u64 {
            let p = Arc::new(Publisher::new());
            let visible = Arc::new(AtomicU64::new(0));
            let lasts: Vec<u64> = (1..=40).map(|i| i * 3).collect();
            let ids: Vec<u64> = lasts.iter().map(|&l| p.register(l)).collect();
            let observer = {
                let visible = Arc::clone(&visible);
                std::thread::spawn(move || {
                    let mut prev = 0;
                    while prev < 120 {
                        let v = visible.load(Ordering::Acquire);
                        assert!(v >= prev && v.is_multiple_of(3));
                        prev = v;
                    }
                })
            };
            let workers: Vec<_> = (0..4u64)
                .map(|t| {
                    let (p, visible, ids) = (Arc::clone(&p), Arc::clone(&visible), ids.clone());
                    std::thread::spawn(move || {
                        for (i, id) in ids.iter().enumerate() {
                            if (i as u64 * 7 + t + round).is_multiple_of(4) {
                                p.complete(*id, &visible);
                            }
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            observer.join().unwrap();
            assert_eq!(visible.load(Ordering::SeqCst), 120);
        }
    }
}
