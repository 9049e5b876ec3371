//! Calling the listeners: each callback under `catch_unwind`, so a
//! listener that panics is logged and counted and the engine goes on;
//! and events that arise where no callback may run (inside a write, or
//! under an engine lock) kept in order until a thread free to call
//! listeners delivers them.

use super::listener::{
    BackgroundErrorInfo, CompactionJobInfo, EventListener, FlushJobInfo, TableFileCreationInfo,
    TableFileDeletionInfo, WalFileCreationInfo, WriteStallInfo,
};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// An event noted where listeners may not be called: stall changes,
/// background errors and WAL creations always; a flush's or compaction's
/// with `inline_background_work`, whose jobs may run inside a write.
#[derive(Debug, Clone)]
pub(crate) enum Deferred {
    Stall(WriteStallInfo),
    BackgroundError(BackgroundErrorInfo),
    WalCreated(WalFileCreationInfo),
    FlushBegin(FlushJobInfo),
    FlushCompleted(FlushJobInfo),
    CompactionBegin(CompactionJobInfo),
    CompactionCompleted(CompactionJobInfo),
    TableFileCreated(TableFileCreationInfo),
    TableFileDeleted(TableFileDeletionInfo),
}

/// The database's listeners and its events not yet delivered.
#[derive(Default)]
pub(crate) struct Notifier {
    listeners: Vec<Arc<dyn EventListener>>,
    /// Callbacks that panicked.
    panics: AtomicU64,
    /// Deferred events, oldest first. A leaf lock, never held while a
    /// listener runs.
    pending: Mutex<VecDeque<Deferred>>,
    /// Whether `pending` may hold something: what a writer checks (one
    /// relaxed load) before taking any lock.
    has_pending: AtomicBool,
    /// Held by the thread delivering deferred events, so they reach the
    /// listeners in the order they arose.
    delivering: Mutex<()>,
    /// Flush and compaction events are deferred too
    /// (`inline_background_work`: a write that stalls runs those jobs,
    /// and no listener may run inside a write).
    defer_jobs: bool,
}

impl Notifier {
    /// The listeners; `defer_jobs` with `inline_background_work`.
    pub fn new(listeners: Vec<Arc<dyn EventListener>>, defer_jobs: bool) -> Self {
        Notifier {
            listeners,
            defer_jobs,
            ..Notifier::default()
        }
    }

    /// A flush's or compaction's event: delivered now (the job's thread
    /// holds no engine lock and is in no write), or deferred with
    /// `inline_background_work`, where the job may run inside a write
    /// that stalled, and delivered with the other deferred events once
    /// that write returns. REQUIRES: no engine lock held.
    pub fn job_event(&self, event: Deferred) {
        if self.defer_jobs {
            self.defer(event);
        } else {
            // Events deferred before it arrive before it.
            self.deliver_deferred();
            self.deliver(event);
        }
    }

    /// Whether anyone listens (so building an event's info can be skipped).
    #[inline]
    pub fn any(&self) -> bool {
        !self.listeners.is_empty()
    }

    /// Callbacks that panicked so far.
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Call `f` on every listener. REQUIRES: no engine lock held, not
    /// inside a write.
    pub fn notify(&self, callback: &'static str, f: impl Fn(&dyn EventListener)) {
        for listener in &self.listeners {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(&**listener))) {
                self.panics.fetch_add(1, Ordering::Relaxed);
                let message = crate::panics::panic_error("an event listener", payload);
                tracing::error!(callback, %message, "event listener panicked");
            }
        }
    }

    /// A background error was recorded (it stops writes): logged now,
    /// reported to the listeners later (the recorder may hold locks).
    pub fn background_error(&self, error: &Arc<crate::Error>) {
        tracing::error!(%error, "background error: writes stop until it is cleared");
        self.defer(Deferred::BackgroundError(BackgroundErrorInfo {
            error: Arc::clone(error),
        }));
    }

    /// WAL `number` was created (perhaps inside a write, by a rotation
    /// that found no spare).
    pub fn wal_created(&self, file_number: u64) {
        tracing::debug!(file_number, "WAL created");
        self.defer(Deferred::WalCreated(WalFileCreationInfo { file_number }));
    }

    /// Keep `event` for [`deliver_deferred`](Self::deliver_deferred).
    /// Safe anywhere: takes only a leaf lock.
    pub fn defer(&self, event: Deferred) {
        if !self.any() {
            return;
        }
        self.pending.lock().push_back(event);
        self.has_pending.store(true, Ordering::Release);
    }

    /// Deliver the deferred events, oldest first. REQUIRES: no engine
    /// lock held, not inside a write. A thread that finds another
    /// delivering leaves the events to it (it delivers until none is
    /// left), so a listener that itself ends up here does not deadlock.
    #[inline]
    pub fn deliver_deferred(&self) {
        if self.has_pending.load(Ordering::Relaxed) {
            self.deliver_slow();
        }
    }

    #[cold]
    fn deliver_slow(&self) {
        loop {
            let Some(_delivering) = self.delivering.try_lock() else {
                return;
            };
            loop {
                let next = {
                    let mut pending = self.pending.lock();
                    let next = pending.pop_front();
                    if next.is_none() {
                        self.has_pending.store(false, Ordering::Release);
                    }
                    next
                };
                let Some(event) = next else { break };
                self.deliver(event);
            }
            drop(_delivering);
            // An event deferred after the queue was seen empty and before
            // the delivery lock was let go found the lock held: take it.
            if !self.has_pending.load(Ordering::Acquire) {
                return;
            }
        }
    }
}

impl Notifier {
    /// Call the listeners' callback for `event`.
    fn deliver(&self, event: Deferred) {
        match event {
            Deferred::Stall(info) => self.notify("on_stall_conditions_changed", |l| {
                l.on_stall_conditions_changed(&info)
            }),
            Deferred::BackgroundError(info) => {
                self.notify("on_background_error", |l| l.on_background_error(&info))
            }
            Deferred::WalCreated(info) => {
                self.notify("on_wal_file_created", |l| l.on_wal_file_created(&info))
            }
            Deferred::FlushBegin(info) => {
                self.notify("on_flush_begin", |l| l.on_flush_begin(&info))
            }
            Deferred::FlushCompleted(info) => {
                self.notify("on_flush_completed", |l| l.on_flush_completed(&info))
            }
            Deferred::CompactionBegin(info) => {
                self.notify("on_compaction_begin", |l| l.on_compaction_begin(&info))
            }
            Deferred::CompactionCompleted(info) => self.notify("on_compaction_completed", |l| {
                l.on_compaction_completed(&info)
            }),
            Deferred::TableFileCreated(info) => {
                self.notify("on_table_file_created", |l| l.on_table_file_created(&info))
            }
            Deferred::TableFileDeleted(info) => {
                self.notify("on_table_file_deleted", |l| l.on_table_file_deleted(&info))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::listener::{WriteStallCause, WriteStallCondition};

    #[derive(Default)]
    struct Recorder(Mutex<Vec<WriteStallCondition>>);

    impl EventListener for Recorder {
        fn on_stall_conditions_changed(&self, info: &WriteStallInfo) {
            if info.condition == WriteStallCondition::Delayed {
                panic!("listener fails on a delay");
            }
            self.0.lock().push(info.condition);
        }
    }

    fn stall(condition: WriteStallCondition) -> Deferred {
        Deferred::Stall(WriteStallInfo {
            condition,
            previous: WriteStallCondition::Normal,
            cause: WriteStallCause::None,
        })
    }

    /// Deferred events arrive in order, once; a panicking callback is
    /// counted and the next listener and the next event still run.
    #[test]
    fn deferred_events_arrive_in_order_past_a_panic() {
        let first = Arc::new(Recorder::default());
        let second = Arc::new(Recorder::default());
        let n = Notifier::new(vec![first.clone(), second.clone()], false);
        n.defer(stall(WriteStallCondition::Stopped));
        n.defer(stall(WriteStallCondition::Delayed));
        n.defer(stall(WriteStallCondition::Normal));
        n.deliver_deferred();
        n.deliver_deferred();
        use WriteStallCondition::*;
        assert_eq!(*first.0.lock(), vec![Stopped, Normal]);
        assert_eq!(*second.0.lock(), vec![Stopped, Normal]);
        assert_eq!(n.panics(), 2);
    }

    #[test]
    fn nothing_is_kept_without_listeners() {
        let n = Notifier::new(Vec::new(), false);
        n.defer(stall(WriteStallCondition::Stopped));
        assert!(n.pending.lock().is_empty());
    }
}
