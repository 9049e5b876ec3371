//! The primitives the handoff between writers, rotation and flush is built
//! on (a group's insert count, the publisher): the real ones, or loom's
//! models under `cfg(loom)`, so `handoff_model.rs` checks the very code
//! that runs.
//!
//! Under loom a park has no timeout: a wait that would only end at its
//! timeout (a lost wake-up the timeout hides) is a deadlock loom reports.
//! The mutex keeps its place in the lock order in normal builds; loom's
//! does not check the order (the models take one lock).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize};
pub(crate) use std::sync::atomic::Ordering;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize};

#[cfg(not(loom))]
pub(crate) use crate::lock_order::Mutex;

/// Loom's mutex with the lock-order mutex's calls.
#[cfg(loom)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
impl<T> Mutex<T> {
    pub fn new(_level: crate::lock_order::Level, value: T) -> Self {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The current thread, and parking it.
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{current, Thread};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{current, park_timeout, Thread};

    /// Under loom, park until unparked: the timeout is not modelled.
    #[cfg(loom)]
    pub(crate) fn park_timeout(_timeout: std::time::Duration) {
        loom::thread::park();
    }
}
