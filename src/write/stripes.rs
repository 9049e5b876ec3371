//! The striped lock that coordinates memtable rotation with concurrent
//! memtable inserts.
//!
//! Every write group holds one stripe *shared* from the moment it is given
//! sequence numbers until its last member has inserted into the memtable.
//! Rotation (freeze the memtable, start a new one and a new WAL) takes
//! every stripe *exclusively*, so it waits for in-flight inserts and no
//! group can be sequenced into a memtable that is being frozen. Groups
//! spread over stripes round-robin, so concurrent groups touch different
//! cache lines instead of one shared reader count.
//!
//! A shared hold is a counter, not a thread-bound guard: the group leader
//! acquires it and whichever member finishes last releases it.

use crossbeam_utils::CachePadded;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const STRIPES: usize = 16;

pub(crate) struct StripedLock {
    holders: [CachePadded<AtomicUsize>; STRIPES],
    /// Set while someone holds or waits for the exclusive side.
    exclusive: AtomicBool,
    /// Slow path: shared acquirers wait for the exclusive side to finish,
    /// the exclusive side waits for holders to drain.
    gate: Mutex<()>,
    changed: Condvar,
}

/// A shared hold on one stripe; released on drop, from any thread.
pub(crate) struct SharedStripe {
    lock: Arc<StripedLock>,
    stripe: usize,
}

impl Drop for SharedStripe {
    fn drop(&mut self) {
        let prev = self.lock.holders[self.stripe].fetch_sub(1, Ordering::Release);
        debug_assert!(prev > 0);
        if prev == 1 && self.lock.exclusive.load(Ordering::SeqCst) {
            let _g = self.lock.gate.lock();
            self.lock.changed.notify_all();
        }
    }
}

/// The exclusive side; released on drop.
pub(crate) struct Exclusive<'a> {
    lock: &'a StripedLock,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        let _g = self.lock.gate.lock();
        self.lock.exclusive.store(false, Ordering::SeqCst);
        self.lock.changed.notify_all();
    }
}

impl StripedLock {
    pub fn new() -> Arc<Self> {
        Arc::new(StripedLock {
            holders: std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
            exclusive: AtomicBool::new(false),
            gate: Mutex::new(()),
            changed: Condvar::new(),
        })
    }

    /// Take stripe `hint % STRIPES` shared, waiting while the exclusive side
    /// is held.
    pub fn shared(self: &Arc<Self>, hint: usize) -> SharedStripe {
        let stripe = hint % STRIPES;
        loop {
            // Announce first, then check: the exclusive side sets its flag
            // first, then checks the counters, so (with SeqCst on both) at
            // least one of the two sees the other.
            self.holders[stripe].fetch_add(1, Ordering::SeqCst);
            if !self.exclusive.load(Ordering::SeqCst) {
                return SharedStripe {
                    lock: Arc::clone(self),
                    stripe,
                };
            }
            drop(SharedStripe {
                lock: Arc::clone(self),
                stripe,
            });
            let mut g = self.gate.lock();
            while self.exclusive.load(Ordering::SeqCst) {
                self.changed.wait(&mut g);
            }
        }
    }

    /// Take every stripe exclusively: returns once no shared hold remains.
    /// Only one thread may call this at a time (the write-group leader).
    pub fn exclusive(&self) -> Exclusive<'_> {
        let mut g = self.gate.lock();
        debug_assert!(!self.exclusive.load(Ordering::SeqCst));
        self.exclusive.store(true, Ordering::SeqCst);
        while self.holders.iter().any(|h| h.load(Ordering::SeqCst) != 0) {
            self.changed.wait(&mut g);
        }
        Exclusive { lock: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn exclusive_waits_for_every_shared_hold_released_on_other_threads() {
        let lock = StripedLock::new();
        let inserted = Arc::new(AtomicU64::new(0));
        for round in 0..200u64 {
            let holds: Vec<SharedStripe> =
                (0..4).map(|i| lock.shared(i + round as usize)).collect();
            let workers: Vec<_> = holds
                .into_iter()
                .map(|hold| {
                    let inserted = Arc::clone(&inserted);
                    std::thread::spawn(move || {
                        inserted.fetch_add(1, Ordering::Relaxed);
                        drop(hold);
                    })
                })
                .collect();
            let _x = lock.exclusive();
            // Every hold was released, so every worker's insert is visible.
            assert_eq!(inserted.load(Ordering::Relaxed), (round + 1) * 4);
            drop(_x);
            for w in workers {
                w.join().unwrap();
            }
        }
    }

    #[test]
    fn shared_waits_while_exclusive_is_held() {
        let lock = StripedLock::new();
        let x = lock.exclusive();
        let acquired = Arc::new(AtomicBool::new(false));
        let t = {
            let (lock, acquired) = (Arc::clone(&lock), Arc::clone(&acquired));
            std::thread::spawn(move || {
                let _s = lock.shared(3);
                acquired.store(true, Ordering::SeqCst);
            })
        };
        // The other thread cannot get past `shared` until we release; we
        // check the flag, release, and the thread then completes.
        assert!(!acquired.load(Ordering::SeqCst));
        drop(x);
        t.join().unwrap();
        assert!(acquired.load(Ordering::SeqCst));
    }
}
