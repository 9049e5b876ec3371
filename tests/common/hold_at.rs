//! [`HoldAt`]: a test hook that holds the thread reaching one hook point
//! until the test releases it, so a test can act in a chosen window of an
//! engine thread's work (deterministically, no sleeps).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use strata::{HookPoint, TestHook};

/// Holds the first thread that reaches `point` after [`arm`](Self::arm)
/// (once per arming) until [`release`](Self::release).
#[derive(Clone)]
pub struct HoldAt {
    inner: Arc<Inner>,
}

struct Inner {
    point: HookPoint,
    armed: AtomicBool,
    reached: (Mutex<Sender<()>>, Mutex<Receiver<()>>),
    release: (Mutex<Sender<()>>, Mutex<Receiver<()>>),
}

impl HoldAt {
    pub fn new(point: HookPoint) -> HoldAt {
        let (reached_tx, reached_rx) = channel();
        let (release_tx, release_rx) = channel();
        HoldAt {
            inner: Arc::new(Inner {
                point,
                armed: AtomicBool::new(false),
                reached: (Mutex::new(reached_tx), Mutex::new(reached_rx)),
                release: (Mutex::new(release_tx), Mutex::new(release_rx)),
            }),
        }
    }

    /// The hook to put in `Options::test_hook`.
    pub fn hook(&self) -> TestHook {
        let inner = Arc::clone(&self.inner);
        Arc::new(move |point| {
            if point == inner.point && inner.armed.swap(false, Ordering::SeqCst) {
                let _ = inner.reached.0.lock().unwrap().send(());
                let _ = inner.release.1.lock().unwrap().recv();
            }
            Ok(())
        })
    }

    /// Hold the next thread that reaches the point.
    pub fn arm(&self) {
        self.inner.armed.store(true, Ordering::SeqCst);
    }

    /// Wait until a thread is held at the point.
    pub fn wait_reached(&self) {
        self.inner.reached.1.lock().unwrap().recv().unwrap();
    }

    /// Let the held thread (or the next one held) go on.
    pub fn release(&self) {
        let _ = self.inner.release.0.lock().unwrap().send(());
    }
}
