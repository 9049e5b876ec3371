//! One task's waker, registered where the code that will wake it looks:
//! the async writer's counterpart of a parked thread.
//!
//! The protocol is the same as parking's: register, then look at the
//! condition; the waking side changes the condition, then wakes. Either
//! the look sees the change, or the wake finds the waker (the slot's lock
//! orders the two).

use parking_lot::Mutex;
use std::task::Waker;

/// A leaf lock: no engine lock is taken under it, and wakers are woken
/// after it is released.
#[derive(Default)]
pub(crate) struct WakerSlot(Mutex<Option<Waker>>);

impl WakerSlot {
    /// Wake `waker` at the next [`wake`](Self::wake), replacing any other.
    pub fn register(&self, waker: &Waker) {
        let mut slot = self.0.lock();
        match &mut *slot {
            Some(old) if old.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// Wake the registered waker, if any (once: it is taken).
    pub fn wake(&self) {
        let waker = self.0.lock().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Forget the registered waker (its task no longer waits here).
    pub fn clear(&self) {
        self.0.lock().take();
    }
}
