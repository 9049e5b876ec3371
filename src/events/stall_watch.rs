//! The write stall condition as writers meet it: set by a group's leader
//! when it begins to wait (delayed or stopped) and when it next finds
//! room without waiting (normal). Only a change costs anything more than
//! one relaxed load: a tracing event, and a deferred listener event (the
//! leader is inside a write, where no listener may run).

use super::listener::{WriteStallCause, WriteStallCondition, WriteStallInfo};
use super::notifier::{Deferred, Notifier};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

#[derive(Default)]
pub(crate) struct StallWatch {
    /// The condition last set, as `WriteStallCondition as u8`.
    condition: AtomicU8,
    /// When the stall now standing began. Taken only at a change.
    since: Mutex<Option<Instant>>,
}

impl StallWatch {
    /// Writes flow: called by a leader that found room without waiting.
    #[inline]
    pub fn normal(&self, notifier: &Notifier) {
        if self.condition.load(Ordering::Relaxed) != WriteStallCondition::Normal as u8 {
            self.change(WriteStallCondition::Normal, WriteStallCause::None, notifier);
        }
    }

    /// A leader is about to wait: `condition` (delayed or stopped) for
    /// `cause`.
    pub fn stalled(
        &self,
        condition: WriteStallCondition,
        cause: WriteStallCause,
        notifier: &Notifier,
    ) {
        if self.condition.load(Ordering::Relaxed) != condition as u8 {
            self.change(condition, cause, notifier);
        }
    }

    #[cold]
    fn change(&self, condition: WriteStallCondition, cause: WriteStallCause, notifier: &Notifier) {
        // Only the write queue's leader gets here, one at a time.
        let previous = match self.condition.swap(condition as u8, Ordering::Relaxed) {
            x if x == WriteStallCondition::Delayed as u8 => WriteStallCondition::Delayed,
            x if x == WriteStallCondition::Stopped as u8 => WriteStallCondition::Stopped,
            _ => WriteStallCondition::Normal,
        };
        if previous == condition {
            return;
        }
        let mut since = self.since.lock();
        match condition {
            WriteStallCondition::Normal => {
                let stalled_micros = since.take().map_or(0, |t| t.elapsed().as_micros() as u64);
                tracing::info!(?previous, stalled_micros, "write stall ended");
            }
            WriteStallCondition::Delayed => {
                since.get_or_insert_with(Instant::now);
                tracing::warn!(?cause, ?previous, "write stall began: writes delayed");
            }
            WriteStallCondition::Stopped => {
                since.get_or_insert_with(Instant::now);
                tracing::warn!(?cause, ?previous, "write stall began: writes stopped");
            }
        }
        drop(since);
        notifier.defer(Deferred::Stall(WriteStallInfo {
            condition,
            previous,
            cause,
        }));
    }
}
