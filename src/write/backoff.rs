//! How a writer waits for another writer (its leader, or the publication
//! of an earlier group): briefly spin, then yield the core, then park.
//!
//! What is waited for usually takes microseconds, so spinning beats a
//! park/unpark round trip (two context switches) when every writer has a
//! core. With more writers than cores a spinning waiter steals the core
//! the awaited writer needs, so then it barely spins and yields instead:
//! the awaited writer is usually runnable, waiting for a core, and a
//! yield hands it one for a single system call, where parking costs two
//! context switches plus a futex wake in the writer that finishes the
//! work. Only a long wait (a group's fsync) ends in a park. The number of
//! writers inside the write path decides which case holds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Spin iterations before yielding (a `spin_loop` hint costs ~10-140
/// cycles depending on the CPU).
const SPINS: u32 = 64;
/// `yield_now` rounds before parking, when writers do not outnumber cores.
const YIELDS: u32 = 64;
/// Spins when writers outnumber cores: barely any.
const OVERSUBSCRIBED_SPINS: u32 = 8;
/// `yield_now` rounds before parking when writers outnumber cores.
/// Measured on 2 cores, fillrandom with 4 and 8 writers (800k writes, three
/// runs each, medians): parking at once 420k and 413k writes/s, 32 yields
/// 668k and 617k, 128 yields 562k and 604k; synced writes unchanged.
const OVERSUBSCRIBED_YIELDS: u32 = 32;

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Counts writers inside the write path.
#[derive(Default)]
pub(crate) struct ActiveWriters(AtomicUsize);

/// Held while a writer is inside the write path.
pub(crate) struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ActiveWriters {
    pub fn enter(&self) -> ActiveGuard<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(&self.0)
    }

    /// An async writer entered the write path; it calls
    /// [`leave_task`](Self::leave_task) when its write ends, in whatever
    /// poll or thread that is (it cannot hold a guard across polls).
    pub fn enter_task(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// An async writer's write ended (or was dropped).
    pub fn leave_task(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// Writers inside the write path now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// A waiting policy for the current load.
    pub fn backoff(&self) -> Backoff {
        let oversubscribed = self.0.load(Ordering::Relaxed) > cores();
        Backoff {
            spins_left: if oversubscribed {
                OVERSUBSCRIBED_SPINS
            } else {
                SPINS
            },
            yields_left: if oversubscribed {
                OVERSUBSCRIBED_YIELDS
            } else {
                YIELDS
            },
        }
    }
}

/// One wait's budget: call [`Backoff::snooze`] between checks; when it
/// returns false, park.
pub(crate) struct Backoff {
    spins_left: u32,
    yields_left: u32,
}

impl Backoff {
    /// No spinning or yielding: park at once. The loom models wait this
    /// way (a spin is a branch loom explores, and does not change what a
    /// wait can miss), and so does a wait for an fsync (milliseconds).
    pub fn park_at_once() -> Backoff {
        Backoff {
            spins_left: 0,
            yields_left: 0,
        }
    }

    /// Spin `spins` times, never yield, then park.
    pub fn spin_only(spins: u32) -> Backoff {
        Backoff {
            spins_left: spins,
            yields_left: 0,
        }
    }

    /// Spin or yield once; false when the budget is spent.
    pub fn snooze(&mut self) -> bool {
        if self.spins_left > 0 {
            self.spins_left -= 1;
            std::hint::spin_loop();
            true
        } else if self.yields_left > 0 {
            self.yields_left -= 1;
            std::thread::yield_now();
            true
        } else {
            false
        }
    }
}
