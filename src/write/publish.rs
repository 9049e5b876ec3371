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
use super::sync::thread::{self, Thread};
use super::sync::{AtomicU64, Mutex, Ordering};
use crate::lock_order::Level;
use std::collections::{BTreeMap, VecDeque};
use std::task::{Poll, Waker};
use std::time::Duration;
use strata_sstable::SeqNo;

/// A parked waiter re-checks at least this often; the wake-up protocol
/// does not depend on it.
const WAIT_SLICE: Duration = Duration::from_millis(10);

/// Where a registered group is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Sequenced: its members may still be inserting their batches.
    Inserting,
    /// Every batch is inserted but the group's record did not reach the
    /// WAL (a background error): held back until a resume publishes it.
    HeldBack,
    /// Inserted and logged: published once every earlier group is.
    Complete,
}

struct Pending {
    /// Group id of `groups[0]`.
    front_id: u64,
    /// Last sequence number of each registered group, and its stage.
    groups: VecDeque<(SeqNo, Stage)>,
    /// Parked writers and the sequence number each waits for.
    waiters: Vec<(SeqNo, Thread)>,
    /// Async writers' tasks, by the sequence number they wait for: woken
    /// a published prefix at a time (thousands of tasks may wait).
    tasks: BTreeMap<SeqNo, Vec<Waker>>,
    /// A resume waiting for every group's inserts (`wait_inserted`).
    inserts_waiter: Option<Thread>,
}

pub(crate) struct Publisher {
    /// The last sequence number whose write is published: fully in the
    /// memtable, with every earlier one. Reads and snapshots use it.
    visible: AtomicU64,
    /// The last sequence number registered (handed out), published or not.
    registered: AtomicU64,
    pending: Mutex<Pending>,
}

impl Publisher {
    /// A publisher with every write up to `last_seq` visible (recovered).
    pub fn new(last_seq: SeqNo) -> Self {
        Publisher {
            visible: AtomicU64::new(last_seq),
            registered: AtomicU64::new(last_seq),
            pending: Mutex::new(
                Level::Publisher,
                Pending {
                    front_id: 0,
                    groups: VecDeque::with_capacity(64),
                    waiters: Vec::with_capacity(64),
                    tasks: BTreeMap::new(),
                    inserts_waiter: None,
                },
            ),
        }
    }

    /// Register the next group (ids and sequence ranges in order) and
    /// return its id. REQUIRES: called by the sequencer, in order.
    pub fn register(&self, last_seq: SeqNo) -> u64 {
        let mut p = self.pending.lock();
        debug_assert!(p.groups.back().is_none_or(|&(s, _)| s < last_seq));
        p.groups.push_back((last_seq, Stage::Inserting));
        self.registered.store(last_seq, Ordering::Release);
        p.front_id + p.groups.len() as u64 - 1
    }

    /// Mark group `id` finished; advance `visible` over every finished
    /// group at the front. A group [`publish_all`](Self::publish_all)
    /// already published is left alone.
    pub fn complete(&self, id: u64) {
        let ready = {
            let mut p = self.pending.lock();
            Self::set_stage(&mut p, id, Stage::Complete);
            self.advance(&mut p)
        };
        ready.into_iter().for_each(Waker::wake);
    }

    /// The last published sequence number.
    pub fn visible(&self) -> SeqNo {
        self.visible.load(Ordering::Acquire)
    }

    /// The last sequence number registered, published or not: read
    /// without the sequencer, which a leader holds for its whole turn.
    pub fn registered(&self) -> SeqNo {
        self.registered.load(Ordering::Acquire)
    }

    /// Group `id` has inserted every batch, but its record failed to reach
    /// the WAL: it stays unpublished (until [`publish_all`](Self::publish_all)).
    pub fn hold_back(&self, id: u64) {
        let mut p = self.pending.lock();
        Self::set_stage(&mut p, id, Stage::HeldBack);
    }

    fn set_stage(p: &mut Pending, id: u64, stage: Stage) {
        let Some(index) = id.checked_sub(p.front_id) else {
            return; // published already by `publish_all`
        };
        if let Some(g) = p.groups.get_mut(index as usize) {
            debug_assert_eq!(g.1, Stage::Inserting, "a group finished twice");
            g.1 = stage;
        }
        if let Some(t) = &p.inserts_waiter {
            t.unpark();
        }
    }

    /// Wait until no registered group is still inserting, or `stop`
    /// reports an error. A resume calls this with writes stopped (no group
    /// is registered meanwhile): afterwards every batch sequenced so far
    /// is in a memtable. A group whose writer panicked mid-insert never
    /// finishes; the panic poisons the write queue, which `stop` reports.
    pub fn wait_inserted(&self, stop: impl Fn() -> Option<crate::Error>) -> crate::Result<()> {
        loop {
            {
                let mut p = self.pending.lock();
                if p.groups.iter().all(|&(_, stage)| stage != Stage::Inserting) {
                    p.inserts_waiter = None;
                    return Ok(());
                }
                // Registered before `stop` is asked: an error recorded
                // after it wakes us (`wake_all`).
                p.inserts_waiter = Some(thread::current());
            }
            if let Some(e) = stop() {
                self.pending.lock().inserts_waiter = None;
                return Err(e);
            }
            thread::park_timeout(WAIT_SLICE);
        }
    }

    /// Publish every registered group, finished or not: a resume does
    /// this once every group's batches are inserted and durable, for the
    /// groups whose completion a background error cut short (their
    /// writers were told the write failed; its outcome is that it was
    /// applied). REQUIRES: no group is being registered (the caller leads
    /// the write queue).
    pub fn publish_all(&self) {
        let ready = {
            let mut p = self.pending.lock();
            for g in p.groups.iter_mut() {
                g.1 = Stage::Complete;
            }
            self.advance(&mut p)
        };
        ready.into_iter().for_each(Waker::wake);
    }

    /// Advance `visible` over the finished groups at the front and wake
    /// the threads that now see their writes; returns the tasks that do,
    /// for the caller to wake once the lock is released (a waker's wake,
    /// or its drop, may run code that re-enters the engine).
    #[must_use = "the tasks must be woken"]
    fn advance(&self, p: &mut Pending) -> Vec<Waker> {
        let mut advanced = None;
        while let Some(&(last, Stage::Complete)) = p.groups.front() {
            p.groups.pop_front();
            p.front_id += 1;
            advanced = Some(last);
        }
        if let Some(last) = advanced {
            // Not under loom: it tracks only the last access to an atomic,
            // and this load would hide a reader's load from the store
            // below (the models would not explore the reader seeing it).
            #[cfg(not(loom))]
            debug_assert!(self.visible.load(Ordering::Relaxed) < last);
            self.visible.store(last, Ordering::Release);
            p.waiters.retain(|(seq, thread)| {
                let ready = *seq <= last;
                if ready {
                    thread.unpark();
                }
                !ready
            });
            if !p.tasks.is_empty() {
                let later = p.tasks.split_off(&(last + 1));
                let ready = std::mem::replace(&mut p.tasks, later);
                return ready.into_values().flatten().collect();
            }
        }
        Vec::new()
    }

    /// Wake every parked waiter (an error ended the waits).
    pub fn wake_all(&self) {
        let tasks = {
            let mut p = self.pending.lock();
            for (_, thread) in p.waiters.drain(..) {
                thread.unpark();
            }
            if let Some(t) = &p.inserts_waiter {
                t.unpark();
            }
            std::mem::take(&mut p.tasks)
        };
        // Woken (and dropped) with the lock released, as in `complete`.
        tasks.into_values().flatten().for_each(Waker::wake);
    }

    /// [`wait_visible`](Self::wait_visible) for a task: ready once
    /// `visible >= seq` or `stop` reports an error; otherwise `waker` is
    /// woken when either may have changed.
    pub fn poll_visible(
        &self,
        seq: SeqNo,
        waker: &Waker,
        stop: impl Fn() -> Option<crate::Error>,
    ) -> Poll<crate::Result<()>> {
        if self.visible.load(Ordering::Acquire) >= seq {
            return Poll::Ready(Ok(()));
        }
        {
            let mut p = self.pending.lock();
            // Under the lock `advance` publishes under, as in `wait_visible`.
            if self.visible.load(Ordering::Acquire) >= seq {
                return Poll::Ready(Ok(()));
            }
            let wakers = p.tasks.entry(seq).or_default();
            // Once per task, however often it is polled.
            if !wakers.iter().any(|w| w.will_wake(waker)) {
                wakers.push(waker.clone());
            }
        }
        // Asked once registered: an error recorded later wakes the task
        // (`wake_all`).
        match stop() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Pending,
        }
    }

    /// Wait until `visible >= seq`, or `stop` reports an error. `stop` is
    /// never called with the publisher's lock held (it may record a
    /// background error, which wakes every waiter under that lock).
    pub fn wait_visible(
        &self,
        seq: SeqNo,
        mut backoff: Backoff,
        stop: impl Fn() -> Option<crate::Error>,
    ) -> crate::Result<()> {
        while self.visible.load(Ordering::Acquire) < seq {
            if !backoff.snooze() {
                break;
            }
        }
        // An error that stands already ends the wait, as it always has.
        if let Some(e) = stop() {
            return Err(e);
        }
        let me = thread::current();
        loop {
            {
                let mut p = self.pending.lock();
                // Checked under the lock `complete` publishes under: either
                // it is visible now, or `complete` will see our entry.
                if self.visible.load(Ordering::Acquire) >= seq {
                    return Ok(());
                }
                if !p.waiters.iter().any(|(_, t)| t.id() == me.id()) {
                    p.waiters.push((seq, me.clone()));
                }
            }
            // Asked once registered: an error recorded after this look
            // wakes us (`wake_all`). Asked before registering, an error
            // recorded in between woke no one, and the wait lasted until
            // its timeout (the loom models found it).
            if let Some(e) = stop() {
                self.pending
                    .lock()
                    .waiters
                    .retain(|(_, t)| t.id() != me.id());
                return Err(e);
            }
            thread::park_timeout(WAIT_SLICE);
            // Once visible, `complete` has already removed our entry.
            if self.visible.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waker whose wake re-enters the publisher (as a task's wake or
    /// drop may, through the engine): wakes it once.
    struct Reenter {
        publisher: std::sync::Arc<Publisher>,
        woken: std::sync::atomic::AtomicUsize,
    }

    impl std::task::Wake for Reenter {
        fn wake(self: std::sync::Arc<Self>) {
            self.woken.fetch_add(1, Ordering::SeqCst);
            self.publisher.wake_all();
        }
    }

    /// Tasks are woken with the publisher's lock released: a wake that
    /// takes it again (here `wake_all`) neither deadlocks nor trips the
    /// lock order. Polled twice, the task is woken once.
    #[test]
    fn tasks_are_woken_outside_the_lock_once_each() {
        use std::sync::Arc;
        let publisher = Arc::new(Publisher::new(0));
        let id = publisher.register(1);
        let reenter = Arc::new(Reenter {
            publisher: Arc::clone(&publisher),
            woken: std::sync::atomic::AtomicUsize::new(0),
        });
        let waker = Waker::from(Arc::clone(&reenter));
        for _ in 0..2 {
            assert!(publisher.poll_visible(1, &waker, || None).is_pending());
        }
        let (done, finished) = std::sync::mpsc::channel();
        let completer = {
            let publisher = Arc::clone(&publisher);
            std::thread::spawn(move || {
                publisher.complete(id);
                let _ = done.send(());
            })
        };
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("completing deadlocked in the task's wake");
        completer.join().expect("completer");
        assert_eq!(reenter.woken.load(Ordering::SeqCst), 1);
        assert!(publisher.poll_visible(1, &waker, || None).is_ready());
    }

    /// Regression: `stop` records a background error, which wakes every
    /// waiter through the publisher's lock. Called under that lock, it
    /// deadlocked; this test would hang.
    #[test]
    fn a_stop_that_wakes_waiters_does_not_deadlock() {
        let p = Publisher::new(0);
        p.register(5);
        let backoff = crate::write::backoff::ActiveWriters::default().backoff();
        let result = p.wait_visible(5, backoff, || {
            p.wake_all();
            Some(crate::Error::Closed)
        });
        assert!(matches!(result, Err(crate::Error::Closed)));
    }

    #[test]
    fn visible_advances_only_over_a_finished_prefix() {
        let p = Publisher::new(0);
        let a = p.register(3);
        let b = p.register(5);
        let c = p.register(9);
        p.complete(b);
        assert_eq!(p.visible(), 0);
        p.complete(c);
        assert_eq!(p.visible(), 0);
        p.complete(a);
        assert_eq!(p.visible(), 9);
        let d = p.register(10);
        p.complete(d);
        assert_eq!(p.visible(), 10);
    }

    /// A resume publishes the groups a background error left unfinished;
    /// their writers may still complete them afterwards, which must
    /// change nothing (an id below the front used to underflow).
    #[test]
    fn publish_all_publishes_unfinished_groups_and_late_completions_are_ignored() {
        let p = Publisher::new(0);
        let a = p.register(3);
        let b = p.register(5);
        let c = p.register(9);
        p.complete(b);
        assert_eq!(p.visible(), 0);
        p.publish_all();
        assert_eq!(p.visible(), 9);
        p.complete(a);
        p.complete(c);
        assert_eq!(p.visible(), 9);
        let d = p.register(12);
        p.complete(d);
        assert_eq!(p.visible(), 12);
    }

    /// A group whose record failed to reach the WAL stays unpublished, and
    /// so does every later group; a resume's `publish_all` releases them.
    #[test]
    fn a_held_back_group_blocks_publication_until_publish_all() {
        let p = Publisher::new(0);
        let a = p.register(3);
        let b = p.register(5);
        let c = p.register(9);
        p.complete(a);
        p.hold_back(b);
        p.complete(c);
        assert_eq!(p.visible(), 3);
        p.publish_all();
        assert_eq!(p.visible(), 9);
    }

    /// A resume waits until no group is still inserting: finished groups,
    /// published or held back, do not hold it; an inserting one does
    /// until it finishes, or until `stop` reports an error.
    #[test]
    fn waiting_for_inserts_ends_when_every_group_finished_or_at_a_stop() {
        let p = std::sync::Arc::new(Publisher::new(0));
        let a = p.register(3);
        let b = p.register(5);
        p.complete(a);
        let stopped = p.wait_inserted(|| Some(crate::Error::Closed));
        assert!(matches!(stopped, Err(crate::Error::Closed)));
        let waiter = {
            let p = std::sync::Arc::clone(&p);
            std::thread::spawn(move || p.wait_inserted(|| None))
        };
        p.hold_back(b);
        waiter.join().unwrap().unwrap();
        assert_eq!(p.visible(), 3, "b is held back");
        p.wait_inserted(|| Some(crate::Error::Closed))
            .expect("nothing is inserting: no need to stop");
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
            let p = Publisher::new(0);
            let ids: Vec<u64> = lasts.iter().map(|&l| p.register(l)).collect();
            let mut finished = [false; 6];
            let mut prev = 0;
            for &g in &order {
                p.complete(ids[g]);
                finished[g] = true;
                let v = p.visible();
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
            let p = Arc::new(Publisher::new(0));
            let lasts: Vec<u64> = (1..=40).map(|i| i * 3).collect();
            let ids: Vec<u64> = lasts.iter().map(|&l| p.register(l)).collect();
            let observer = {
                let p = Arc::clone(&p);
                std::thread::spawn(move || {
                    let mut prev = 0;
                    while prev < 120 {
                        let v = p.visible();
                        assert!(v >= prev && v.is_multiple_of(3));
                        prev = v;
                    }
                })
            };
            let workers: Vec<_> = (0..4u64)
                .map(|t| {
                    let (p, ids) = (Arc::clone(&p), ids.clone());
                    std::thread::spawn(move || {
                        for (i, id) in ids.iter().enumerate() {
                            if (i as u64 * 7 + t + round).is_multiple_of(4) {
                                p.complete(*id);
                            }
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            observer.join().unwrap();
            assert_eq!(p.visible(), 120);
        }
    }
}
