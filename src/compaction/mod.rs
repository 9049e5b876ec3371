//! Leveled compaction: picking (`picker.rs`), which versions survive
//! (`retain.rs`, with the range tombstones of `range_dels.rs`), running
//! and installing (`job.rs`) into output tables (`outputs.rs`, cut where
//! `cut.rs` says), dropping covered tables unread (`delete_only.rs`),
//! write stalls (`stall.rs`), the background loop and the manual controls
//! (here).
//! `docs/compaction.md` explains the policy and its invariants.

mod blob_gc;
mod cut;
mod delete_only;
mod filtering;
mod job;
mod merge_collect;
mod outputs;
mod periodic;
mod picker;
#[cfg(test)]
mod range_del_tests;
mod range_dels;
mod retain;
mod stall;

pub(crate) use merge_collect::MergeCollector;
pub(crate) use picker::{level_scores, level_targets};
pub(crate) use range_dels::CompactionRangeDels;
pub(crate) use retain::{Decision, Retainer, Stripes};
pub(crate) use stall::WriteController;

use crate::background::CompactionRunning;
use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::hook::HookPoint;
use crate::keyspace::KeyspaceState;
use crate::panics::catch_panic;
use crate::version::{KeyRange, VersionSet};
use blob_gc::pick_forced_blob_gc;
use delete_only::{covered_tables, pick_delete_only};
use periodic::pick_periodic;
use picker::{pick_compaction, pick_manual, Compaction};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How often an idle compaction thread looks for tables past
/// `periodic_compaction_seconds` (only when some keyspace sets it).
const PERIODIC_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether a table of `version` is past its keyspace's period.
fn periodic_due(
    version: &std::sync::Arc<crate::version::Version>,
    options: &crate::options::Options,
    now_secs: u64,
) -> bool {
    let Some(cutoff) = now_secs.checked_sub(options.periodic_compaction_seconds) else {
        return false;
    };
    options.periodic_compaction_seconds > 0
        && (0..options.num_levels).any(|level| {
            version
                .files(level)
                .iter()
                .any(|f| f.table().properties().creation_time <= cutoff)
        })
}

impl DbInner {
    /// Pick the most urgent compaction of some keyspace and count it as
    /// running; none while a background error stands (checked under the
    /// version set lock, so a resume that saw none running under it sees
    /// none start). Keyspaces take turns: the search starts one further
    /// each time. In each, a delete-only compaction comes first: it costs
    /// one manifest edit and may leave the score picks less to do.
    fn pick_background_compaction(
        &self,
    ) -> Option<(Arc<KeyspaceState>, Compaction, CompactionRunning<'_>)> {
        let versions = self.versions.lock();
        self.check_bg_error().ok()?;
        // After the lock: every version seen below was installed before
        // the snapshots are read (see `pick_delete_only`).
        let stripes = self.compaction_stripes();
        let everything = KeyRange::inclusive(None, None);
        let keyspaces = self.keyspaces.load();
        let start = self.compaction_turn.fetch_add(1, Ordering::Relaxed);
        let all: Vec<&Arc<KeyspaceState>> = keyspaces.iter().collect();
        let n = all.len().max(1);
        for i in 0..all.len() {
            let ks = all[(start + i) % n];
            let version = versions.current(ks.id);
            let options = ks.options();
            let picked = pick_delete_only(&version, &stripes, &everything)
                .or_else(|| pick_compaction(&version, &options))
                .or_else(|| pick_periodic(&version, &options, self.now_secs()))
                .or_else(|| pick_forced_blob_gc(&version, &options));
            if let Some(picked) = picked {
                return Some((Arc::clone(ks), picked, self.bg.compaction_started()));
            }
        }
        None
    }

    /// Pick and run one compaction in the calling thread, if one is due.
    /// A failure is recorded as the background error while the compaction
    /// still counts as running (see `compaction_loop`).
    pub(crate) fn run_one_compaction(&self) -> Option<Result<()>> {
        let (ks, c, running) = self.pick_background_compaction()?;
        let result = self
            .run_compaction(&ks, c)
            .map(|_| ())
            .map_err(|e| Error::Background(self.set_bg_error(e)));
        // Let go of the keyspace before the end is announced: the last
        // reference to a dropped one frees its tables, which a waiter for
        // compactions expects gone.
        drop(ks);
        drop(running);
        Some(result)
    }

    /// Whether some level of some keyspace scores at least 1, or some
    /// table is covered for a delete-only compaction (a compaction is
    /// due). Tables a picked compaction holds count for neither: hence
    /// `versions`, the version set's lock held (see `compactions_idle`).
    fn compaction_needed(&self, versions: &VersionSet) -> bool {
        self.keyspaces.load().iter().any(|ks| {
            let version = versions.current(ks.id);
            let options = ks.options();
            let targets = level_targets(&version, &options);
            let scores = level_scores(&version, &options, &targets);
            scores
                .iter()
                .take(options.num_levels - 1)
                .any(|&s| s >= 1.0)
                || covered_tables(
                    &version,
                    &self.compaction_stripes(),
                    &KeyRange::inclusive(None, None),
                )
                .is_some()
                || periodic_due(&version, &options, self.now_secs())
                || blob_gc::forced_blob_gc_due(&version, &options)
        })
    }

    /// The database clock's seconds since the Unix epoch.
    fn now_secs(&self) -> u64 {
        self.options.clock.now_micros() / 1_000_000
    }

    /// Whether some keyspace compacts tables by age: then an idle
    /// compaction thread looks again now and then, since time passing is
    /// no event that wakes it.
    fn any_periodic_compaction(&self) -> bool {
        self.keyspaces
            .load()
            .iter()
            .any(|ks| ks.options().periodic_compaction_seconds > 0)
    }

    /// A background compaction thread: run compactions while any is due,
    /// otherwise wait for new work (a flush, a finished compaction).
    pub(crate) fn compaction_loop(&self) {
        loop {
            let generation = {
                let st = self.bg.state.lock();
                if st.shutting_down {
                    return;
                }
                st.generation
            };
            let _ = self.hook(HookPoint::CompactionPick);
            let picked = if self.check_bg_error().is_ok() {
                self.pick_background_compaction()
            } else {
                None
            };
            match picked {
                Some((ks, c, running)) => {
                    // A failure is recorded while the compaction still
                    // counts as running: a resume waits for none to run,
                    // and must not meet its error after it cleared the one
                    // it resumed from.
                    // A panic (a user's merge operator, or ours) is this
                    // compaction's failure: the thread and the picked
                    // compaction's bookkeeping live on, as in the manual
                    // and delete-only paths.
                    let result =
                        catch_panic("background compaction", || self.run_compaction(&ks, c))
                            .unwrap_or_else(Err);
                    match result {
                        Ok(_) | Err(Error::Closed) => {}
                        Err(e) => {
                            self.set_bg_error(e);
                        }
                    }
                    // As in `run_one_compaction`: the keyspace first.
                    drop(ks);
                    drop(running);
                    self.events.deliver_deferred();
                    self.export_metrics();
                }
                None => {
                    let periodic = self.any_periodic_compaction();
                    let mut st = self.bg.state.lock();
                    while st.generation == generation && !st.shutting_down {
                        if !periodic {
                            self.bg.work.wait(&mut st);
                        } else if self
                            .bg
                            .work
                            .wait_for(&mut st, PERIODIC_CHECK_INTERVAL)
                            .timed_out()
                        {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Compact everything of `ks` overlapping `[lower, upper]` down to
    /// the last level: flush, drop the tables range tombstones cover
    /// whole (delete-only), then L0 into the base level, then each level
    /// into the next, and finally rewrite the last level's tables that
    /// hold tombstones, which only a compaction of the last level can
    /// drop.
    pub(crate) fn compact_range(
        &self,
        ks: &Arc<KeyspaceState>,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> Result<()> {
        self.flush_and_wait(ks)?;
        let options = ks.options();
        let last = options.num_levels - 1;
        let range = KeyRange::inclusive(lower, upper);
        self.delete_covered_tables(ks, &range)?;
        // Whether the last level held keys of the range before this
        // compaction moved any there (RocksDB's `max_level_with_files`):
        // only those are rewritten in place for a filter, below, not the
        // tables this compaction has just written (the filter saw them).
        let last_had_tables = {
            let version = self.versions.lock().current(ks.id);
            version.files(last).iter().any(|f| f.meta.overlaps(&range))
        };
        for level in 0..=last {
            if level == last {
                let version = self.versions.lock().current(ks.id);
                let now = self.options.clock.now_micros();
                let has_tombstones = version.files(last).iter().any(|f| {
                    let p = f.table().properties();
                    // Expired values are tombstones now.
                    let expired = p.earliest_expiry > 0 && p.earliest_expiry <= now;
                    (p.num_deletions > 0 || p.num_range_deletions > 0 || expired)
                        && f.meta.overlaps(&range)
                });
                // With a compaction filter the last level is rewritten all
                // the same, so the filter sees its keys (RocksDB's default
                // `bottommost_level_compaction = kIfHaveCompactionFilter`).
                let for_filter = options.compaction_filter_factory.is_some() && last_had_tables;
                if !has_tombstones && !for_filter {
                    break;
                }
            }
            loop {
                self.check_bg_error()?;
                let generation = self.bg.state.lock().generation;
                let picked = {
                    let versions = self.versions.lock();
                    // Again under the lock: see `pick_background_compaction`.
                    self.check_bg_error()?;
                    ks.check_live()?;
                    let version = versions.current(ks.id);
                    let output = if level == 0 {
                        level_targets(&version, &options).base_level
                    } else {
                        (level + 1).min(last)
                    };
                    pick_manual(&version, level, output, &range).map(|c| {
                        c.map(|mut c| {
                            c.manual = true;
                            (c, self.bg.compaction_started())
                        })
                    })
                };
                match picked {
                    Ok(None) => break,
                    Ok(Some((c, running))) => {
                        // Runs in the caller's thread: a panic in it (or
                        // one a compaction filter's call caught) is still
                        // the database's background error.
                        let result =
                            catch_panic("manual compaction", || self.run_compaction(ks, c))
                                .and_then(|r| r)
                                .map_err(|e| match e {
                                    Error::Panic { .. } => Error::Background(self.set_bg_error(e)),
                                    e => e,
                                });
                        drop(running);
                        result?;
                        break;
                    }
                    // A background compaction holds some of the tables:
                    // wait for it to finish and look again.
                    Err(()) if self.options.inline_background_work => {
                        // Nothing else runs compactions: cannot be busy.
                        return Err(Error::InvalidArgument("compaction inputs busy".into()));
                    }
                    Err(()) => {
                        self.bg
                            .wait_for(None, |st| (st.generation != generation).then_some(Ok(())))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Run delete-only compactions of `ks` over `range` in the calling
    /// thread until no idle table there is covered (each removes one
    /// level's covered tables), so that the rest of a manual compaction
    /// rewrites only what tombstones cover in part.
    fn delete_covered_tables(&self, ks: &Arc<KeyspaceState>, range: &KeyRange) -> Result<()> {
        loop {
            let picked = {
                let versions = self.versions.lock();
                self.check_bg_error()?;
                ks.check_live()?;
                let version = versions.current(ks.id);
                let stripes = self.compaction_stripes();
                pick_delete_only(&version, &stripes, range)
                    .map(|c| (c, self.bg.compaction_started()))
            };
            let Some((c, running)) = picked else {
                return Ok(());
            };
            let result = catch_panic("delete-only compaction", || self.run_compaction(ks, c))
                .unwrap_or_else(|panic| Err(Error::Background(self.set_bg_error(panic))));
            drop(running);
            result?;
        }
    }

    /// Wait until no flush or compaction is pending or running.
    pub(crate) fn wait_for_compactions(&self) -> Result<()> {
        if self.options.inline_background_work {
            return self.run_background_work();
        }
        if self.any_periodic_compaction() {
            // Tables may have come of age since the threads last looked.
            self.bg.notify_all();
        }
        self.bg.wait_for(None, |st| self.compactions_idle(st))?;
        Ok(())
    }

    /// [`wait_for_compactions`](Self::wait_for_compactions) for a task.
    /// With `inline_background_work` the work is done here, blocking: that
    /// mode has no background threads to wait for.
    pub(crate) fn poll_compactions_idle(
        &self,
        waker: &std::task::Waker,
    ) -> std::task::Poll<Result<()>> {
        if self.options.inline_background_work {
            return std::task::Poll::Ready(self.run_background_work());
        }
        self.bg.poll_for(waker, |st| self.compactions_idle(st))
    }

    /// `Some` when no flush or compaction runs or is due (or with the
    /// background error that stops them).
    fn compactions_idle(&self, st: &crate::background::BgState) -> Option<Result<()>> {
        if let Err(e) = self.check_bg_error() {
            return Some(Err(e));
        }
        let idle =
            !self.any_frozen() && st.flushing.is_none() && self.no_compaction_running_or_due();
        idle.then_some(Ok(()))
    }

    /// Whether no compaction runs and none is due, seen at one moment.
    /// A pick marks its inputs busy, which takes them out of the scores,
    /// and counts itself running, both under the version set lock: the
    /// count and the scores are read under it too. Read apart, a pick
    /// between the two (the count read before it, the busy marks after)
    /// looked like nothing running and nothing due: a waiter returned
    /// while a compaction was picked, and its failure came after. The end
    /// of a compaction needs no lock: its inputs are unmarked (and a
    /// failure recorded) before it is uncounted, so a count of none sees
    /// them unmarked.
    fn no_compaction_running_or_due(&self) -> bool {
        if self.bg.compactions_running() > 0 {
            return false;
        }
        let _ = self.hook(HookPoint::CompactionsIdleCheck);
        let versions = self.versions.lock();
        self.bg.compactions_running() == 0 && !self.compaction_needed(&versions)
    }
}
