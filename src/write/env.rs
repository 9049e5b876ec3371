//! The commit pipeline's environment in a database: `DbInner` gives it
//! the WAL buffer, the memtable insert, room for a write (`room.rs`), the
//! background error, statistics and test hooks.

use super::backoff::Backoff;
use super::pipeline::{CommitEnv, Durability, Leadership, Room};
use crate::batch::WriteBatch;
use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::filename::wal_path;
use crate::hook::HookPoint;
use crate::memtable::ActiveMemTables;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Poll, Waker};
use strata_sstable::SeqNo;

/// Spins of a writer waiting for its record to be copied into the log by
/// the writer holding the drain lock, before it parks. Measured on 2
/// cores, fillrandom, 800,000 writes over 2 and 8 writers, three rounds
/// (docs/performance.md, "Sixteenth session"): parking at once 336k and
/// 375k writes/s, 64 spins 362k and 371k, 512 spins 428k and 399k (in a
/// second run 2,048 spins did no better than 512). Spinning and then
/// yielding (the policy of `Backoff` for writers waiting on writers) did
/// better on a quiet machine, 459k and 424k, but with two CPU-bound
/// processes beside it four synced writers fell from 12k to 6k writes/s:
/// a yield can hand the core to the other process for a time slice,
/// where a parked waiter is woken at once.
const WRITTEN_WAIT_SPINS: u32 = 512;

impl CommitEnv for DbInner {
    fn make_room(&self, leader: &mut Leadership<'_>, room: Room) -> Result<()> {
        DbInner::make_room(self, leader, room)
    }

    fn log(&self, record: &[u8]) -> Result<u64> {
        self.write_path
            .wal
            .push(record)
            .map_err(|e| self.wal_failure(e))
    }

    fn poll_log(&self, record: &[u8], waker: &Waker) -> Poll<Result<u64>> {
        self.write_path
            .wal
            .poll_push(record, waker, || self.write_stop_error())
    }

    fn wait_logged(&self, end: u64, durability: Durability, inline: bool) -> Result<()> {
        let wal = &self.write_path.wal;
        // A sync takes milliseconds: park for it at once. A copy into the
        // log by another writer takes microseconds: spin first (see
        // `WRITTEN_WAIT_SPINS` for why not yield).
        let backoff = match durability {
            Durability::Synced => Backoff::park_at_once(),
            _ => Backoff::spin_only(WRITTEN_WAIT_SPINS),
        };
        wal.wait_with(end, durability, inline, backoff, || self.write_stop_error())?;
        if durability != Durability::Synced {
            self.sync_in_background_if_due();
        }
        Ok(())
    }

    fn poll_logged(&self, end: u64, durability: Durability, waker: &Waker) -> Poll<Result<()>> {
        if durability == Durability::Synced && self.options.inline_background_work {
            // No syncer thread to hand the fsync to: this mode does its
            // background work in the caller, an async one too.
            return Poll::Ready(self.wait_logged(end, durability, true));
        }
        let wal = &self.write_path.wal;
        let polled = wal.poll_wait(end, durability, waker, || self.write_stop_error());
        if durability != Durability::Synced && polled.is_ready() {
            self.sync_in_background_if_due();
        }
        polled
    }

    fn when_logged(&self, end: u64, then: super::wal_buffer::WrittenThen) {
        self.write_path.wal.when_written(end, then);
        self.sync_in_background_if_due();
    }

    fn apply(&self, mems: &ActiveMemTables, first_seq: SeqNo, batch: &WriteBatch) {
        // `max_successive_merges` (src/merge/successive.rs) looks only at
        // batches holding merges.
        if batch.merge_keyspaces().is_empty()
            || !self.insert_collapsing_merges(mems, first_seq, batch)
        {
            mems.insert(first_seq, batch);
        }
    }

    fn stop_error(&self) -> Option<Error> {
        self.write_stop_error()
    }

    fn record_panic(&self, panic: Error) -> Arc<Error> {
        self.set_bg_error(panic)
    }

    fn count_group(&self, writes: usize, records: u64, bytes: u64) {
        self.stats.write_groups.fetch_add(1, Ordering::Relaxed);
        self.stats.add_user_writes(writes as u64, records, bytes);
    }

    fn hook(&self, point: HookPoint) {
        let _ = DbInner::hook(self, point);
    }
}

impl DbInner {
    /// `wal_bytes_per_sync`: have the syncer thread sync in the background
    /// once enough is written unsynced.
    fn sync_in_background_if_due(&self) {
        let wal = &self.write_path.wal;
        let bytes_per_sync = self.options.wal_bytes_per_sync;
        let unsynced = wal.written().saturating_sub(wal.synced());
        if bytes_per_sync > 0 && unsynced >= bytes_per_sync {
            wal.request_sync(wal.written());
        }
    }

    /// The error that ends a writer's wait: a background failure, or a WAL
    /// failure not yet recorded as one.
    pub(crate) fn write_stop_error(&self) -> Option<Error> {
        self.record_wal_failure();
        self.check_bg_error().err()
    }

    /// Record the WAL buffer's failure, if it has failed, as the
    /// background error (unless one is recorded already); returns the
    /// background error then. Recorded under the buffer's failure lock, so
    /// a failure a resume has cleared is never recorded after it.
    fn record_wal_failure(&self) -> Option<Arc<Error>> {
        let wal = &self.write_path.wal;
        wal.failure()?;
        let path = wal_path(&self.dir, wal.wal_number());
        wal.record_failure(|e| self.set_bg_error(Error::io("write WAL", path, e)))
    }

    /// The error for a failed WAL operation: the background error it
    /// became.
    pub(crate) fn wal_failure(&self, e: std::io::Error) -> Error {
        match self.record_wal_failure() {
            Some(bg) => Error::Background(bg),
            // A resume restarted the WAL since: the failure was this
            // call's alone.
            None => {
                let path = wal_path(&self.dir, self.write_path.wal.wal_number());
                Error::io("write WAL", path, e)
            }
        }
    }
}
