//! An async leader's wait for room. A blocking leader waits out a write
//! stall on a condition variable (`Leadership::stall`); an async leader
//! must not block its executor thread, so it parks its task instead: its
//! waker is registered on background progress (`Background::poll_for`)
//! and, for a delayed write, on a timer (`timer.rs`), and its poll
//! returns `Pending` with the group it took still held and leadership not
//! handed on (unless a blocking writer waits, or arrives before the next
//! poll: that one takes the group over and waits out the stall on its
//! own thread, see `proxy.rs`). Each poll makes room again from the state as it is then,
//! so the stall is re-judged exactly as a blocking leader re-judges it
//! after each wake-up. The other waits for room park the same way
//! (`Leadership::park`), registered elsewhere: the WAL buffer (full, or
//! its drain lock held at a rotation) and the flush thread (a spare WAL).

use std::task::Waker;
use std::time::Instant;

pub(crate) struct StallPark {
    /// The leader's task.
    pub waker: Waker,
    /// The stall barrier is up for this leader (`WriteQueue::begin_stall`):
    /// it stays up across polls, until the leader sequences its group or
    /// gives it up.
    pub barrier: bool,
    /// The group waited out its delay (`delayed_write_rate`): a group is
    /// delayed once, and the delay ends at its deadline or at background
    /// progress, as a blocking leader's does.
    pub delay_served: bool,
    /// Parked in its delay: the deadline and the background generation
    /// read before it, kept across polls so that a poll that finds
    /// neither passed (a spurious one) parks again, not skip the delay.
    pub delay_pending: Option<(Instant, u64)>,
    /// The timer holds `waker` for the pending delay's deadline.
    pub timer_armed: bool,
    /// The last poll parked (the room it asked for was not there).
    pub parked: bool,
}

impl StallPark {
    pub fn new(waker: &Waker) -> Self {
        StallPark {
            waker: waker.clone(),
            barrier: false,
            delay_served: false,
            delay_pending: None,
            timer_armed: false,
            parked: false,
        }
    }
}
