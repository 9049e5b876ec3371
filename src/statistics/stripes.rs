//! Counters cheap enough to leave on: one stripe of counters per thread.
//! A thread owns a stripe while it lives (a stripe index taken from a
//! free list at its first count, given back when it exits), so it adds
//! with a plain load and store, no atomic read-modify-write and no cache
//! line shared with another writer. Threads beyond the owned stripes
//! share the last one and add atomically. Readers sum every stripe with
//! relaxed loads: a snapshot is not a single instant, as in RocksDB.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Stripes owned by one thread each; one more is shared.
pub(crate) const OWNED_STRIPES: usize = 16;

/// Stripe indices of threads that exited, and the next never used.
static FREE: Mutex<(Vec<usize>, usize)> = Mutex::new((Vec::new(), 0));

/// This thread's stripe index; given back when the thread exits.
struct StripeIndex(usize);

impl StripeIndex {
    fn take() -> StripeIndex {
        let mut free = FREE.lock();
        if let Some(i) = free.0.pop() {
            return StripeIndex(i);
        }
        if free.1 < OWNED_STRIPES {
            free.1 += 1;
            return StripeIndex(free.1 - 1);
        }
        StripeIndex(OWNED_STRIPES)
    }
}

impl Drop for StripeIndex {
    fn drop(&mut self) {
        if self.0 < OWNED_STRIPES {
            FREE.lock().0.push(self.0);
        }
    }
}

thread_local! {
    static STRIPE: StripeIndex = StripeIndex::take();
}

/// This thread's stripe: `(index, owned)`. A thread whose index is gone
/// (counting from another thread-local's destructor) shares.
#[inline]
fn stripe() -> (usize, bool) {
    STRIPE
        .try_with(|s| (s.0, s.0 < OWNED_STRIPES))
        .unwrap_or((OWNED_STRIPES, false))
}

/// One thread's counters: an allocation of its own, with [`PAD`] unused
/// counters at each end, so no cache line holds two threads' counters.
struct Stripe(Box<[AtomicU64]>);

/// 128 bytes: two cache lines (the adjacent-line prefetcher pairs them).
const PAD: usize = 16;

/// `slots` counters, striped by thread.
pub(crate) struct Striped {
    stripes: Box<[Stripe]>,
}

impl Striped {
    pub fn new(slots: usize) -> Self {
        Striped {
            stripes: (0..=OWNED_STRIPES)
                .map(|_| Stripe((0..slots + 2 * PAD).map(|_| AtomicU64::new(0)).collect()))
                .collect(),
        }
    }

    /// This thread's stripe, for several counts in a row.
    #[inline]
    pub fn local(&self) -> Local<'_> {
        let (i, owned) = stripe();
        let counters = &self.stripes[i].0;
        Local {
            counters: &counters[PAD..counters.len() - PAD],
            owned,
        }
    }

    /// Add `n` to counter `slot`.
    #[inline]
    pub fn add(&self, slot: usize, n: u64) {
        self.local().add(slot, n);
    }

    /// Counter `slot` summed over the stripes.
    pub fn sum(&self, slot: usize) -> u64 {
        self.stripes
            .iter()
            .filter_map(|s| s.0.get(PAD + slot))
            .fold(0u64, |sum, c| sum.wrapping_add(c.load(Ordering::Relaxed)))
    }

    /// Counter `slot`'s largest value over the stripes.
    pub fn max_of(&self, slot: usize) -> u64 {
        self.stripes
            .iter()
            .filter_map(|s| s.0.get(PAD + slot))
            .map(|c| c.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }
}

/// The calling thread's stripe.
pub(crate) struct Local<'a> {
    counters: &'a [AtomicU64],
    /// Only this thread writes it.
    owned: bool,
}

impl Local<'_> {
    /// Add `n` to counter `slot`.
    #[inline]
    pub fn add(&self, slot: usize, n: u64) {
        let Some(c) = self.counters.get(slot) else {
            return;
        };
        if self.owned {
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Raise counter `slot` to at least `n`.
    #[inline]
    pub fn max(&self, slot: usize, n: u64) {
        let Some(c) = self.counters.get(slot) else {
            return;
        };
        if self.owned {
            if c.load(Ordering::Relaxed) < n {
                c.store(n, Ordering::Relaxed);
            }
        } else {
            c.fetch_max(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many more threads than owned stripes, some exiting while others
    /// count: every add is kept (owned stripes handed on, the shared one
    /// added to atomically).
    #[test]
    fn no_count_is_lost_across_threads() {
        let s = Striped::new(3);
        std::thread::scope(|scope| {
            for t in 0..(3 * OWNED_STRIPES as u64) {
                let s = &s;
                scope.spawn(move || {
                    for _ in 0..1000 {
                        s.add(1, 2);
                    }
                    s.local().max(2, t);
                });
            }
        });
        assert_eq!(s.sum(1), 3 * OWNED_STRIPES as u64 * 2000);
        assert_eq!(s.sum(0), 0);
        assert_eq!(s.max_of(2), 3 * OWNED_STRIPES as u64 - 1);
        s.add(99, 1); // no such slot: ignored
    }
}
