//! Background work: the thread that flushes frozen memtables, and the
//! signalling between it and the writers that wait for it.

use crate::core::DbInner;
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Shared state of the background threads. Anyone who changes what the
/// background threads look at (a new frozen memtable, shutdown) calls
/// [`Background::notify_all`] afterwards, which takes `state`'s lock so a
/// thread that checked and is about to wait cannot miss the change.
#[derive(Default)]
pub(crate) struct Background {
    pub state: Mutex<BgState>,
    /// Background threads wait here for work.
    pub work: Condvar,
    /// Writers and `flush()` wait here for background progress.
    pub done: Condvar,
}

#[derive(Default)]
pub(crate) struct BgState {
    pub shutting_down: bool,
    /// A flush is running (only one at a time: they install in order).
    pub flushing: bool,
    /// Bumped by every `notify_all`: a waiter that saw generation `g`
    /// before checking for work waits only while it is still `g`, so no
    /// change is missed between its check and its wait.
    pub generation: u64,
}

impl Background {
    pub fn notify_all(&self) {
        let mut state = self.state.lock();
        state.generation += 1;
        self.work.notify_all();
        self.done.notify_all();
    }
}

/// Start the background threads.
pub(crate) fn spawn(inner: &Arc<DbInner>) -> std::io::Result<Vec<JoinHandle<()>>> {
    if inner.options.inline_background_work {
        return Ok(Vec::new());
    }
    let flush = Arc::clone(inner);
    let flusher = std::thread::Builder::new()
        .name("strata-flush".into())
        .spawn(move || flush_loop(&flush))?;
    let ring = Arc::clone(&inner.write_path.ring);
    let wal = std::thread::Builder::new()
        .name("strata-wal".into())
        .spawn(move || ring.run_flusher())?;
    let mut threads = vec![flusher, wal];
    // One background job is the flush thread; the rest compact.
    for i in 0..inner.options.max_background_jobs.saturating_sub(1).max(1) {
        let db = Arc::clone(inner);
        threads.push(
            std::thread::Builder::new()
                .name(format!("strata-compact-{i}"))
                .spawn(move || db.compaction_loop())?,
        );
    }
    Ok(threads)
}

/// Flush frozen memtables, oldest first, until shutdown.
fn flush_loop(inner: &DbInner) {
    // The first rotation's WAL and memtable.
    inner.prepare_spare_wal();
    loop {
        let imm = {
            let mut st = inner.bg.state.lock();
            loop {
                if st.shutting_down {
                    return;
                }
                let oldest = inner.current_super_version().imms.last().cloned();
                match oldest {
                    Some(imm) if inner.check_bg_error().is_ok() => {
                        st.flushing = true;
                        break imm;
                    }
                    _ => inner.bg.work.wait(&mut st),
                }
            }
        };
        // The rotation that froze `imm` took the spare: make the next
        // one before the flush, which takes long enough for another
        // rotation to come.
        inner.prepare_spare_wal();
        let result = inner.flush_memtable(&imm);
        let mut st = inner.bg.state.lock();
        st.flushing = false;
        drop(st);
        if let Err(e) = result {
            inner.set_bg_error(e);
        }
        inner.bg.notify_all();
    }
}

impl DbInner {
    /// One unit of background work in the calling thread: flush the oldest
    /// frozen memtable, or else run the most urgent compaction. Returns
    /// whether there was anything to do. Used with
    /// `Options::inline_background_work`.
    pub(crate) fn background_step(&self) -> crate::Result<bool> {
        self.check_bg_error()?;
        let oldest = self.current_super_version().imms.last().cloned();
        let result = if let Some(imm) = oldest {
            self.flush_memtable(&imm)
        } else if let Some(result) = self.run_one_compaction() {
            result
        } else {
            return Ok(false);
        };
        if let Err(e) = result {
            return Err(crate::Error::Background(self.set_bg_error(e)));
        }
        self.bg.notify_all();
        Ok(true)
    }

    /// Run background steps until none is left (with background threads,
    /// wait for them to finish instead).
    pub(crate) fn run_background_work(&self) -> crate::Result<()> {
        if !self.options.inline_background_work {
            return self.wait_for_compactions();
        }
        while self.background_step()? {}
        Ok(())
    }
}
