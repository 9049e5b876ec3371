//! The pool of writer slots. Each slot carries a `WriteBatch` buffer, so a
//! `put` reuses a buffer from an earlier write instead of allocating one,
//! and a user's batch, once written, becomes a recycled buffer too.

use super::writer::Writer;
use crate::batch::WriteBatch;
use crate::lock_order::{Level, Mutex};
use std::sync::Arc;

/// Slots kept for reuse; more than the writers that are ever concurrent.
const MAX_POOLED: usize = 64;
/// Buffers larger than this are not kept: one huge batch should not pin
/// its memory forever.
const MAX_POOLED_BATCH_BYTES: usize = 1 << 20;

pub(crate) struct WriterPool {
    free: Mutex<Vec<Arc<Writer>>>,
    /// Batch buffers displaced from slots by users' own batches, handed out
    /// again by `Db::new_batch`.
    spare_batches: Mutex<Vec<WriteBatch>>,
}

impl Default for WriterPool {
    fn default() -> Self {
        WriterPool {
            free: Mutex::new(Level::WriterPool, Vec::new()),
            spare_batches: Mutex::new(Level::SpareBatches, Vec::new()),
        }
    }
}

impl WriterPool {
    /// A slot whose batch is empty.
    pub fn take(&self) -> Arc<Writer> {
        self.free
            .lock()
            .pop()
            .unwrap_or_else(|| Arc::new(Writer::new()))
    }

    /// An empty batch, its buffer recycled from an earlier write when one
    /// is spare.
    pub fn take_batch(&self) -> WriteBatch {
        self.spare_batches.lock().pop().unwrap_or_default()
    }

    /// Put `batch` in `slot` (a writer's batch); the buffer it displaces
    /// becomes spare.
    pub fn install_batch(&self, slot: &mut WriteBatch, batch: WriteBatch) {
        let mut old = std::mem::replace(slot, batch);
        if old.capacity() > MAX_POOLED_BATCH_BYTES {
            return;
        }
        old.clear();
        let mut spare = self.spare_batches.lock();
        if spare.len() < MAX_POOLED {
            spare.push(old);
        }
    }

    /// Return a slot after its write completed.
    pub fn give_back(&self, w: Arc<Writer>) {
        // A leader's member list holds the leader itself; however its write
        // ended, the list must not outlive it.
        w.members.lock().clear();
        // A task's waker left registered (a leader parked in a stall
        // registers it, then claims the lead back) would keep its task
        // alive in the pool.
        w.task.clear();
        {
            let mut slot = w.slot.lock();
            if slot.batch.capacity() > MAX_POOLED_BATCH_BYTES {
                slot.batch = WriteBatch::new();
            } else {
                slot.batch.clear();
            }
            slot.assignment = None;
            slot.inserted = false;
            slot.error = None;
            slot.footprint = None;
            slot.certificate = None;
        }
        let mut free = self.free.lock();
        if free.len() < MAX_POOLED && Arc::strong_count(&w) == 1 {
            free.push(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::writer::{Ask, Member};

    #[test]
    fn a_users_batch_displaces_a_buffer_that_new_batches_reuse() {
        let pool = WriterPool::default();
        let w = pool.take();
        w.slot.lock().batch.put(b"k", b"v");
        let pooled_capacity = w.slot.lock().batch.capacity();
        let mut user = WriteBatch::new();
        user.put(b"user", b"batch");
        pool.install_batch(&mut w.slot.lock().batch, user);
        assert_eq!(w.slot.lock().batch.count(), 1);
        let reused = pool.take_batch();
        assert!(reused.is_empty());
        assert_eq!(reused.capacity(), pooled_capacity);
        assert_eq!(
            pool.take_batch().capacity(),
            WriteBatch::new().capacity(),
            "only one was spare"
        );
    }

    /// Regression (fuzz target db_model, a leak report): a leader whose
    /// write failed early kept its member list, which holds the leader
    /// itself, a reference cycle. Giving the slot back must break it.
    #[test]
    fn giving_a_slot_back_breaks_the_leaders_self_reference() {
        let pool = WriterPool::default();
        let w = pool.take();
        let me = Member::new(Arc::clone(&w), Ask::control());
        w.members.lock().push(me);
        let weak = Arc::downgrade(&w);
        pool.give_back(w);
        assert!(weak.upgrade().is_some(), "the slot was pooled");
        drop(pool);
        assert!(
            weak.upgrade().is_none(),
            "the slot leaked through its member list"
        );
    }
}
