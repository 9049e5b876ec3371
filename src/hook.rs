//! Test hooks: named points in the engine where an integration test can
//! inject a panic or a failure (RocksDB's `TEST_SYNC_POINT`). Unset, a
//! point costs one branch on `Options::test_hook`.

use std::io;
use std::sync::Arc;

/// Where the engine calls [`Options::test_hook`](crate::Options::test_hook).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookPoint {
    /// A flush is about to write a frozen memtable out (flush thread, or
    /// the caller with `inline_background_work`).
    Flush,
    /// A compaction is about to run (a compaction thread, `compact_range`,
    /// or the caller with `inline_background_work`).
    Compaction,
    /// A compaction thread is about to look for a compaction to run (no
    /// lock held).
    CompactionPick,
    /// A wait for compactions (`wait_for_compactions`) found none running
    /// and is about to look, under the version set lock, whether one runs
    /// or is due (the waiter's thread, holding the background state lock).
    CompactionsIdleCheck,
    /// A flush installed its table: its memtable has left the read view,
    /// and the WALs it made obsolete are still to collect.
    FlushInstalled,
    /// A checkpoint or backup captured what it copies, writes went on,
    /// and it is about to link or copy the files (the caller's thread).
    CheckpointCaptured,
    /// An ingestion brought its tables into the database directory and
    /// is about to commit them (the caller's thread, no lock held).
    IngestPlaced,
    /// The WAL syncer thread woke up to sync or warm up a WAL.
    WalSyncer,
    /// A write group's leader took its group and is about to sequence it
    /// (its members wait, leadership is not yet handed on); or a control
    /// leader (a manual flush) is about to rotate the memtable.
    WriteGroupLeader,
    /// A leader sequenced its group, logged it to the WAL buffer and handed
    /// leadership on; the group's inserts and publication are still to do.
    WriteGroupSequenced,
    /// A leader logged its group to the WAL buffer (a sync may make it
    /// durable and show it in the change feed from now on) and is about
    /// to hand its numbers out; it still leads, holding the sequencer.
    WriteGroupLogged,
    /// A change feed acknowledgement is past the numbers registered and
    /// is about to ask the sequencer, waiting for a leader that logged a
    /// group and has not yet handed its numbers out (the caller's thread,
    /// no lock held).
    AckAsksSequencer,
    /// An automatic attempt to resume after a no-space error has just
    /// ended, whatever its outcome (the flush thread, or
    /// `run_background_work` with `inline_background_work`).
    AutoResumed,
    /// Open is about to start background thread number `n` (0-based, in
    /// start order: flush, WAL syncer, compaction threads).
    SpawnThread(usize),
    /// A read-only open or refresh loaded the MANIFEST and is about to
    /// list the WALs (a MANIFEST edit now makes the build start again).
    ReadOnlyManifestLoaded,
    /// A read-only open or refresh listed the WALs and is about to replay
    /// them (an ingestion now, the view may miss).
    ReadOnlyWalsListed,
    /// A change feed read checked the feed's floor and is about to list
    /// the WALs and how much of each is synced (the reader's thread, no
    /// lock held).
    FeedReadStarted,
}

/// A test hook. At [`HookPoint::SpawnThread`] an `Err` is returned as
/// the spawn's failure; at the other points the result is ignored, and a
/// test injects a panic by panicking in the hook.
#[doc(hidden)]
pub type TestHook = Arc<dyn Fn(HookPoint) -> io::Result<()> + Send + Sync>;

/// Call `hook` at `point`, if one is set.
#[inline]
pub(crate) fn call(hook: &Option<TestHook>, point: HookPoint) -> io::Result<()> {
    match hook {
        Some(h) => h(point),
        None => Ok(()),
    }
}
