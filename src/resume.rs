//! Resuming after a background error: RocksDB's `ErrorHandler` and
//! `DB::Resume()`, in strata's terms.
//!
//! A failed WAL write, flush or compaction is recorded as the background
//! error (`DbInner::set_bg_error`): writes fail with it, and so does every
//! wait on background work. What may clear it depends on the error
//! ([`Error::recovery`]):
//!
//! - a full disk or an exhausted quota (ENOSPC, EDQUOT) clears once there
//!   is room: [`Db::resume`](crate::Db::resume) retries, and so does the
//!   flush thread on its own, every `bgerror_resume_retry_interval`, at
//!   most `max_bgerror_resume_count` times (RocksDB's auto-recovery from
//!   no-space errors);
//! - any other I/O error: `resume()` retries the failed work, and clears
//!   the error if it succeeds; nothing retries on its own;
//! - corruption, a panic, anything else: only a reopen, which reads and
//!   checks the files again, can say what is left; `resume()` refuses.
//!
//! A resume, with writes stopped (`write/restart.rs`) and no flush or
//! compaction running, rewrites the manifest if a write to it failed,
//! writes every memtable to an L0 table, and starts over in a fresh WAL.
//! Writing the memtables out is what makes it sound whatever the error
//! left behind: a WAL whose append stopped mid-copy, records the WAL buffer
//! held that never reached the file, a sync that failed after records
//! were acknowledged as written. Nothing depends on those WALs any more:
//! the new tables are synced and installed with a log number past every
//! one of them before they are deleted. Then the groups the error kept
//! from completing are published, the error is cleared and writes go on.
//! A failed flush is retried by the resume itself (its memtable is among
//! those written out), a failed compaction by the compaction threads
//! once they are woken.
//!
//! What a resume promises, and what it does not:
//!
//! - every write acknowledged before it is durable when it returns (in a
//!   synced table), whatever durability it asked for: a `sync: false`
//!   write survives a power loss from then on;
//! - nothing is reported synced that was not made durable: a sync write
//!   whose WAL sync failed got an error, and the WAL positions move on
//!   only once the tables holding its records are synced;
//! - a write that failed with the background error has an unknown
//!   outcome, as any failed write: its batch may already be in a
//!   memtable, and then the resume makes it durable and visible. A
//!   reopen without a resume may or may not recover it;
//! - a resume that fails changes nothing but the recorded error, which
//!   becomes the resume's own failure (the present reason writes stay
//!   stopped). The tables it wrote are leftovers, as are those of a
//!   failed flush or compaction and the WAL a failed creation left; the
//!   next successful resume or open deletes every file the version does
//!   not reference.

use crate::core::DbInner;
use crate::error::{Error, Recovery, Result};
use crate::hook::HookPoint;
use crate::lock_order::{Level, Mutex};
use crate::write::Leadership;
use std::time::Instant;

/// The resume state of a database.
pub(crate) struct ResumeState {
    /// Held by a resume from start to end: one at a time.
    running: Mutex<()>,
    /// The automatic attempts since the last successful resume.
    auto: Mutex<AutoAttempts>,
}

impl Default for ResumeState {
    fn default() -> Self {
        ResumeState {
            running: Mutex::new(Level::ResumeRunning, ()),
            auto: Mutex::new(Level::ResumeAuto, AutoAttempts::default()),
        }
    }
}

#[derive(Default)]
struct AutoAttempts {
    /// Attempts made (bounded by `max_bgerror_resume_count`).
    made: u32,
    /// When the next one is due (`None`: when first asked, an interval
    /// from then).
    next_at: Option<Instant>,
}

impl DbInner {
    /// Clear the background error once its cause is gone: see the module
    /// comment for what it does and promises. `Ok` at once if there is no
    /// error; the error itself if it is one no resume can clear.
    pub(crate) fn resume(&self) -> Result<()> {
        let _one_at_a_time = self.resume.running.lock();
        let result = match self.bg_error() {
            None => Ok(()),
            Some(err) if err.recovery() == Recovery::None => return Err(Error::Background(err)),
            Some(err) => {
                let resumed =
                    self.with_writes_stopped(|leader| self.start_over_after_error(leader));
                match &resumed {
                    Ok(()) => tracing::info!(error = %err, "resumed after background error"),
                    Err(e) => tracing::warn!(error = %err, failure = %e, "resume failed"),
                }
                resumed
            }
        };
        match &result {
            Ok(()) => {
                *self.resume.auto.lock() = AutoAttempts::default();
                // Stalled writers, `flush` and the background threads
                // look again.
                self.bg.notify_all();
            }
            // Closing, or the error changed under us (a panic poisoned the
            // write queue): the recorded error stands.
            Err(Error::Closed | Error::Background(_)) => {}
            Err(e) => {
                self.replace_bg_error(e.duplicate());
            }
        }
        result
    }

    /// The resume proper. REQUIRES: writes stopped.
    fn start_over_after_error(&self, leader: &mut Leadership<'_>) -> Result<()> {
        self.wait_for_background_jobs()?;
        // After the jobs: a flush holds `flushing` while it makes a spare.
        let _no_spares = self.stop_making_wals();
        self.versions.lock().rewrite_manifest_if_failed()?;
        self.start_over(leader, |all, log_number, last_seq| {
            self.flush_all_to_l0(all, log_number, last_seq, strata_sstable::SeqNo::MAX)
        })?;
        // No flush or compaction runs: whatever the current versions do
        // not reference is a leftover (the old WALs, failed tables, a
        // failed manifest), unless a job holds it (a checkpoint about to
        // link a table a compaction replaced, an ingestion's tables before
        // its edit). Best effort, as at open.
        let held = |n| self.held_files.is_held(n);
        let _ = crate::open::remove_obsolete_files(
            &self.options,
            &self.dir,
            &self.versions.lock(),
            held,
        );
        let log_number = self.versions.lock().log_number();
        self.collect_wals(log_number);
        self.clear_bg_error();
        Ok(())
    }

    /// Wait until no flush or compaction runs. None starts while the
    /// background error stands: the flush thread checks for it under the
    /// background state lock before it marks a flush running, and a
    /// compaction is picked and counted under the version set lock after
    /// checking for it. And each records its failure before it stops
    /// counting as running, so none records one after this returns.
    fn wait_for_background_jobs(&self) -> Result<()> {
        loop {
            self.bg.wait_for(None, |st| {
                (st.flushing.is_none() && self.bg.compactions_running() == 0).then_some(Ok(()))
            })?;
            // Seen idle under the version set lock, no compaction can
            // start after (see above).
            let _versions = self.versions.lock();
            if self.bg.compactions_running() == 0 {
                return Ok(());
            }
        }
    }

    /// When the next automatic attempt to resume is due: `Some` while a
    /// no-space error stands and attempts are left. The first is due an
    /// interval after this is first asked (a disk that just filled rarely
    /// has room a moment later), each later one an interval after the
    /// last failed.
    pub(crate) fn auto_resume_due(&self) -> Option<Instant> {
        let err = self.bg_error()?;
        if err.recovery() != Recovery::Automatic {
            return None;
        }
        let mut auto = self.resume.auto.lock();
        if auto.made >= self.options.max_bgerror_resume_count {
            return None;
        }
        if auto.next_at.is_none() {
            // An interval too long to add to a time never comes.
            auto.next_at = Instant::now().checked_add(self.options.bgerror_resume_retry_interval);
        }
        auto.next_at
    }

    /// Make one automatic attempt to resume (the flush thread, or
    /// `run_background_work` with `inline_background_work`).
    pub(crate) fn auto_resume(&self) -> Result<()> {
        self.resume.auto.lock().made += 1;
        let result = self.resume();
        if result.is_err() {
            let mut auto = self.resume.auto.lock();
            auto.next_at = Instant::now().checked_add(self.options.bgerror_resume_retry_interval);
        }
        let _ = self.hook(HookPoint::AutoResumed);
        result
    }
}
