//! Wake a task at a deadline: what an async leader delayed by a write
//! stall (`delayed_write_rate`) waits for, besides background progress.
//!
//! The engine depends on no async runtime, so it has no runtime's timer.
//! One thread for the whole process serves every deadline; it starts at
//! the first one. Only a leader waits on a delay, one group at a time per
//! database, so the list stays short and a scan is enough.

use parking_lot::{Condvar, Mutex};
use std::sync::OnceLock;
use std::task::Waker;
use std::time::Instant;

struct Timer {
    /// Deadlines and the tasks to wake then. A leaf lock: wakers are woken
    /// after it is released.
    due: Mutex<Vec<(Instant, Waker)>>,
    changed: Condvar,
}

fn timer() -> Option<&'static Timer> {
    static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
    *TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            due: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }));
        let started = std::thread::Builder::new()
            .name("strata-timer".into())
            .spawn(move || run(timer));
        started.is_ok().then_some(timer)
    })
}

/// Wake `waker` once `deadline` has passed. If no timer thread could be
/// started it is woken at once: the caller then finds its deadline not yet
/// passed and asks again, a busy wait rather than a lost one.
pub(crate) fn wake_at(deadline: Instant, waker: &Waker) {
    let Some(timer) = timer() else {
        waker.wake_by_ref();
        return;
    };
    timer.due.lock().push((deadline, waker.clone()));
    timer.changed.notify_one();
}

fn run(timer: &Timer) {
    let mut due = timer.due.lock();
    loop {
        let now = Instant::now();
        let (ready, later): (Vec<_>, Vec<_>) = due.drain(..).partition(|(at, _)| *at <= now);
        *due = later;
        if !ready.is_empty() {
            drop(due);
            ready.into_iter().for_each(|(_, w)| w.wake());
            due = timer.due.lock();
            continue;
        }
        match due.iter().map(|(at, _)| *at).min() {
            Some(next) => {
                timer.changed.wait_until(&mut due, next);
            }
            None => timer.changed.wait(&mut due),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    /// Notes when it is woken, and unparks the test thread.
    struct Woken {
        thread: std::thread::Thread,
        at: parking_lot::Mutex<Option<Instant>>,
    }

    impl Wake for Woken {
        fn wake(self: Arc<Self>) {
            *self.at.lock() = Some(Instant::now());
            self.thread.unpark();
        }
    }

    /// The task is woken, and not before its deadline.
    #[test]
    fn a_task_is_woken_once_its_deadline_passed() {
        let deadline = Instant::now() + std::time::Duration::from_millis(20);
        let woken = Arc::new(Woken {
            thread: std::thread::current(),
            at: parking_lot::Mutex::new(None),
        });
        wake_at(deadline, &Waker::from(Arc::clone(&woken)));
        // A bound on a hang, not a synchronisation.
        let until = Instant::now() + std::time::Duration::from_secs(60);
        let at = loop {
            if let Some(at) = *woken.at.lock() {
                break at;
            }
            assert!(Instant::now() < until, "never woken");
            std::thread::park_timeout(until - Instant::now());
        };
        assert!(at >= deadline, "woken before its deadline");
    }
}
