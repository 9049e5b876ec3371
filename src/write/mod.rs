//! The write path: a batch becomes a durable, visible write.
//!
//! The commit pipeline (`pipeline.rs`) is the one way through; its stages
//! (`ARCHITECTURE.md` has the picture):
//!
//! 1. **Pool** (`pool.rs`): the writer takes a slot whose batch buffer is
//!    recycled from an earlier write.
//! 2. **Queue** (`queue.rs`, `writer.rs`): it joins the write queue. The
//!    first writer leads; later ones wait (spin, yield, then park:
//!    `backoff.rs`) to be grouped.
//! 3. **Sequence** (leader only): the leader makes room (write stalls and
//!    memtable rotation onto the WAL and memtable made ready ahead:
//!    `room.rs`, `spare.rs`), assigns the group's sequence numbers in one
//!    step, frames one WAL record for the whole group into the WAL buffer
//!    (`wal_buffer.rs`), registers the group with the publisher, and hands
//!    leadership to the next queued writer.
//! 4. **Insert** (`group.rs`): members insert their batches into the
//!    skiplist memtable concurrently, each its own, with the leader
//!    helping those not yet awake. A group of small batches (at most 64
//!    KiB together) is inserted by the leader alone, and each member is
//!    woken only once, when its write is done.
//! 5. **Log**: the last insert makes sure the group's record reached the
//!    OS (writing the buffer out itself when no one else is: a lone writer
//!    pays no thread handoff); sync writers wait for an fsync, which the
//!    WAL syncer thread (`wal_syncer.rs`) coalesces for every group
//!    waiting.
//! 6. **Publish** (`publish.rs`): the group's sequence numbers become
//!    visible once every earlier group's have; each member returns when
//!    its own write is visible and as durable as it asked.
//!
//! The pipeline reaches the rest of the database only through its
//! environment (`CommitEnv`, implemented for `DbInner` in `env.rs`). A
//! resume's side of the write path is `restart.rs`.

mod async_write;
pub(crate) mod backoff;
mod env;
mod group;
#[cfg(test)]
mod group_tests;
#[cfg(all(test, loom))]
mod handoff_model;
mod pipeline;
#[cfg(test)]
mod pipeline_tests;
mod pool;
mod proxy;
mod publish;
mod queue;
mod restart;
mod room;
mod spare;
mod stall_park;
mod sync;
mod timer;
mod waker_slot;
mod wal_buffer;
mod wal_syncer;
mod writer;

pub(crate) use async_write::AsyncWrite;
pub(crate) use pipeline::{CommitPipeline, Leadership, PipelineConfig};
pub(crate) use room::Limits;
pub(crate) use spare::{create_wal, WAL_FIRST_BYTES};
pub(crate) use wal_buffer::WalBuffer;

use crate::batch::WriteBatch;
use crate::core::DbInner;
use crate::error::Result;
use crate::memtable::BlockPool;
use crate::options::WriteOptions;
use spare::SpareSlot;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use strata_sstable::SeqNo;

/// The write path's parts a database holds.
pub(crate) struct WritePath {
    pub pipeline: CommitPipeline,
    /// Framed records on their way to the WAL file.
    pub wal: Arc<WalBuffer>,
    /// The next WAL and memtable, made by the flush thread.
    spare: SpareSlot,
    /// Each live WAL's number and the log position it began at, oldest
    /// first: what `max_total_wal_size` measures. A leaf lock.
    wal_starts: parking_lot::Mutex<VecDeque<(u64, u64)>>,
    /// Bytes the last WAL a rotation moved past reached: how large the
    /// next spare starts (`spare.rs`).
    last_wal_bytes: AtomicU64,
    /// Arena blocks a flushed memtable left for the next ones
    /// (`memtable/block_pool.rs`).
    pub block_pool: Arc<BlockPool>,
}

impl WritePath {
    pub fn new(pipeline: CommitPipeline, wal: Arc<WalBuffer>, block_pool: Arc<BlockPool>) -> Self {
        let first = (wal.wal_number(), wal.written());
        WritePath {
            pipeline,
            wal,
            spare: SpareSlot::default(),
            wal_starts: parking_lot::Mutex::new(VecDeque::from([first])),
            last_wal_bytes: AtomicU64::new(0),
            block_pool,
        }
    }

    /// An async leader's rotation waits for the flush thread to make a
    /// spare WAL (`spare.rs`).
    pub(crate) fn spare_wanted(&self) -> bool {
        self.spare.is_wanted()
    }

    /// WAL `number` began at log position `lsn` (a rotation).
    pub(crate) fn note_wal_started(&self, number: u64, lsn: u64) {
        let mut starts = self.wal_starts.lock();
        if let Some(&(_, previous)) = starts.back() {
            self.last_wal_bytes
                .store(lsn.saturating_sub(previous), Ordering::Relaxed);
        }
        starts.push_back((number, lsn));
    }

    /// Bytes the WAL before the current one reached (0 before the first
    /// rotation).
    pub(crate) fn last_wal_bytes(&self) -> u64 {
        self.last_wal_bytes.load(Ordering::Relaxed)
    }

    /// WALs below `log_number` are no longer needed: stop counting them.
    pub(crate) fn note_log_number(&self, log_number: u64) {
        let mut starts = self.wal_starts.lock();
        while starts.len() > 1 && starts[1].0 <= log_number {
            starts.pop_front();
        }
    }

    /// Only WAL `number`, begun at `lsn`, is live (a resume's restart).
    pub(crate) fn reset_wal_starts(&self, number: u64, lsn: u64) {
        *self.wal_starts.lock() = VecDeque::from([(number, lsn)]);
    }

    /// How much of WAL `number` is known synced, for the change feed:
    /// `None` all of it, `Some(len)` its first `len` bytes (0: nothing
    /// known, or not written yet). A WAL older than every live one is
    /// durable in full: a flush made it obsolete, so its records are in
    /// synced tables (the flush synced it first only if another memtable
    /// or the change feed needed it: `closed_wals_must_be_durable`). So is
    /// one older than the current WAL once a sync covered part of the
    /// current one (WALs are synced in order). Otherwise a WAL the write
    /// path left is counted synced once a sync reached a later WAL's start
    /// (`wal_starts` positions are at or after the true starts, so this
    /// errs towards "not known"); the background sync of a retired WAL
    /// counts only from the next sync of the current one.
    pub(crate) fn wal_durable_len(&self, number: u64) -> Option<u64> {
        let (current, synced_len) = self.wal.synced_in_current();
        if number > current {
            return Some(0);
        }
        if number == current {
            return Some(synced_len.unwrap_or(0));
        }
        if synced_len.is_some() {
            return None;
        }
        let synced = self.wal.synced();
        let starts = self.wal_starts.lock();
        match starts.iter().position(|&(n, _)| n == number) {
            None if starts.front().is_some_and(|&(oldest, _)| number < oldest) => None,
            None => Some(0),
            Some(i) if starts.get(i + 1).is_some_and(|&(_, next)| synced >= next) => None,
            Some(_) => Some(0),
        }
    }

    /// The oldest WAL still needed.
    pub(crate) fn oldest_live_wal(&self) -> u64 {
        self.wal_starts.lock().front().map_or(0, |&(n, _)| n)
    }

    /// Bytes written to the live WALs.
    pub(crate) fn live_wal_bytes(&self) -> u64 {
        let start = self.wal_starts.lock().front().map_or(0, |&(_, lsn)| lsn);
        self.wal.written().saturating_sub(start)
    }

    /// Wake writers waiting on publication or on the WAL so they notice a
    /// background error.
    pub(crate) fn wake_waiters(&self) {
        self.pipeline.wake_waiters();
        self.wal.wake_waiters();
    }
}

impl DbInner {
    /// Apply a user's batch atomically; its buffer is recycled afterwards.
    pub(crate) fn write(&self, mut batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        self.stamp_expiry(&mut batch, opts.ttl);
        batch.validate()?;
        self.check_keyspaces(&batch)?;
        if batch.is_empty() {
            // Still a sync point: what was acknowledged before it must be
            // durable when a sync write returns.
            if opts.sync && !opts.disable_wal {
                return self.flush_wal(true);
            }
            return Ok(());
        }
        let start = self.write_start();
        let written = self.write_path.pipeline.write_batch(self, batch, opts);
        self.write_done(start);
        written
    }

    /// `Err(KeyspaceDropped)` if a record of `batch` is in a keyspace that
    /// is not live (dropped), `Err(InvalidArgument)` if it names a keyspace
    /// of another database or merges into one with no merge operator.
    pub(crate) fn check_keyspaces(&self, batch: &WriteBatch) -> Result<()> {
        if batch.owner().is_some_and(|owner| owner != self.instance) {
            return Err(crate::Error::InvalidArgument(
                "the batch names a keyspace of another database".into(),
            ));
        }
        let ids = batch.keyspaces();
        if ids
            .iter()
            .all(|&id| id == crate::version::DEFAULT_KEYSPACE_ID)
            && batch.merge_keyspaces().is_empty()
        {
            return Ok(());
        }
        let keyspaces = self.keyspaces.load();
        if let Some(id) = ids.iter().find(|&&id| keyspaces.get(id).is_none()) {
            return Err(crate::Error::KeyspaceDropped {
                name: format!("#{id}"),
            });
        }
        for &id in batch.merge_keyspaces() {
            if let Some(ks) = keyspaces.get(id) {
                check_merge_operator_set(ks)?;
            }
        }
        Ok(())
    }

    /// An empty batch with a recycled buffer (see [`crate::Db::new_batch`]).
    pub(crate) fn new_batch(&self) -> WriteBatch {
        self.write_path.pipeline.new_batch()
    }

    /// Apply writes built by `fill` into a pooled batch (`put`, `delete`):
    /// no batch buffer is allocated in steady state.
    pub(crate) fn write_with(
        &self,
        opts: &WriteOptions,
        fill: impl FnOnce(&mut WriteBatch),
    ) -> Result<()> {
        let start = self.write_start();
        let fill = |b: &mut WriteBatch| {
            fill(b);
            self.stamp_expiry(b, opts.ttl);
        };
        let written = self.write_path.pipeline.write_with(self, opts, fill);
        self.write_done(start);
        written
    }

    /// A write begins: its start time, if statistics are kept and it is
    /// one of the writes timed.
    #[inline]
    pub(crate) fn write_start(&self) -> Option<Instant> {
        self.options
            .statistics
            .as_ref()
            .and_then(|_| crate::statistics::start_operation())
    }

    /// After a write (begun at `start` if timed): counted, and the stall
    /// changes it met delivered now that it holds nothing.
    #[inline]
    pub(crate) fn write_done(&self, start: Option<Instant>) {
        if let Some(s) = &self.options.statistics {
            s.record_operation(crate::Histogram::DbWrite, start);
        }
        self.events.deliver_deferred();
    }

    /// The last sequence number published: every write at or below it is
    /// in a memtable or table, and every one above is not visible.
    pub(crate) fn visible_sequence(&self) -> SeqNo {
        self.write_path.pipeline.visible()
    }

    /// The last sequence number handed out to a write group or an
    /// ingestion, published or not.
    pub(crate) fn last_sequence_handed_out(&self) -> SeqNo {
        self.write_path.pipeline.last_registered()
    }

    /// Wait until every write up to `seq` is published.
    pub(crate) fn wait_published(&self, seq: SeqNo) -> Result<()> {
        self.write_path.pipeline.wait_visible(self, seq)
    }

    /// Make every logged write durable and seal the WAL (a clean close:
    /// see `WalBuffer::seal`).
    pub(crate) fn seal_wal(&self) -> Result<()> {
        self.write_path.wal.seal().map_err(|e| self.wal_failure(e))
    }

    /// Make the WALs before the current one durable, without stopping
    /// writers for the fsyncs (see `WalBuffer::sync_closed`): what a flush
    /// needs before it installs its table.
    pub(crate) fn sync_closed_wals(&self) -> Result<()> {
        self.write_path
            .wal
            .sync_closed()
            .map_err(|e| self.wal_failure(e))
    }

    /// Write the buffered records to the WAL file, and fsync if `sync`.
    pub(crate) fn flush_wal(&self, sync: bool) -> Result<()> {
        let wal = &self.write_path.wal;
        let r = if sync {
            wal.sync_all()
        } else {
            wal.drain_all()
        };
        r.map_err(|e| self.wal_failure(e))
    }
}

/// `Err(InvalidArgument)` if `keyspace` has no merge operator: an operand
/// written there could never be read, and the database would not open
/// again without an operator (RocksDB's `Merge` refuses it the same way).
pub(crate) fn check_merge_operator_set(keyspace: &crate::keyspace::KeyspaceState) -> Result<()> {
    if keyspace.options().merge_operator.is_some() {
        return Ok(());
    }
    let setting = if keyspace.id == crate::version::DEFAULT_KEYSPACE_ID {
        "Options::merge_operator"
    } else {
        "KeyspaceOptions::merge_operator"
    };
    Err(crate::Error::InvalidArgument(format!(
        "merge into keyspace {:?}, which has no merge operator: set {setting}",
        keyspace.name
    )))
}
