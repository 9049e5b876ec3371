//! The pool of writer slots. Each slot carries a `WriteBatch` buffer, so a
//! `put` reuses a buffer from an earlier write instead of allocating one,
//! and a user's batch, once written, becomes a recycled buffer too.

use super::queue::Writer;
use crate::batch::WriteBatch;
use parking_lot::Mutex;
use std::sync::Arc;

/// Slots kept for reuse; more than the writers that are ever concurrent.
const MAX_POOLED: usize = 64;
/// Buffers larger than this are not kept: one huge batch should not pin
/// its memory forever.
const MAX_POOLED_BATCH_BYTES: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct WriterPool {
    free: Mutex<Vec<Arc<Writer>>>,
}

impl WriterPool {
    /// A slot whose batch is empty.
    pub fn take(&self) -> Arc<Writer> {
        self.free
            .lock()
            .pop()
            .unwrap_or_else(|| Arc::new(Writer::new()))
    }

    /// Return a slot after its write completed.
    pub fn give_back(&self, w: Arc<Writer>) {
        {
            let mut r = w.request.lock();
            if r.batch.capacity() > MAX_POOLED_BATCH_BYTES {
                r.batch = WriteBatch::new();
            } else {
                r.batch.clear();
            }
            r.assignment = None;
            r.inserted = false;
            r.error = None;
        }
        let mut free = self.free.lock();
        if free.len() < MAX_POOLED && Arc::strong_count(&w) == 1 {
            free.push(w);
        }
    }
}
