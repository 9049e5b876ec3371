//! Where the time goes, seen from openraft's side of the storage API: a
//! wrapper around a node's log store and state machine that counts the
//! calls openraft makes and the entries in each (how much openraft
//! batches), and the time the log's appends take until they are durable.
//! The same wrapper goes around the strata store and the in-memory one.

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::{
    BasicNode, Entry, LogId, OptionalSend, RaftLogReader, Snapshot, SnapshotMeta, StorageError,
    StoredMembership, Vote,
};
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use strata_raft::{NodeId, Response, TypeConfig};

/// One node's counts.
#[derive(Default, Debug)]
pub struct Counters {
    pub appends: AtomicU64,
    pub appended: AtomicU64,
    /// Time in `append` (for strata: the write and its fsync), microseconds.
    pub append_micros: AtomicU64,
    pub applies: AtomicU64,
    pub applied: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Default, Debug, Clone, Copy)]
pub struct Counts {
    pub appends: u64,
    pub appended: u64,
    pub append_micros: u64,
    pub applies: u64,
    pub applied: u64,
}

impl Counters {
    pub fn now(&self) -> Counts {
        Counts {
            appends: self.appends.load(Relaxed),
            appended: self.appended.load(Relaxed),
            append_micros: self.append_micros.load(Relaxed),
            applies: self.applies.load(Relaxed),
            applied: self.applied.load(Relaxed),
        }
    }
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, before: Counts) -> Counts {
        Counts {
            appends: self.appends - before.appends,
            appended: self.appended - before.appended,
            append_micros: self.append_micros - before.append_micros,
            applies: self.applies - before.applies,
            applied: self.applied - before.applied,
        }
    }
}

/// A store `T` whose calls are counted in `counters`.
pub struct Counted<T> {
    pub inner: T,
    pub counters: Arc<Counters>,
}

impl<T: RaftLogReader<TypeConfig>> RaftLogReader<TypeConfig> for Counted<T> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        self.inner.try_get_log_entries(range).await
    }
}

impl<T: RaftLogStorage<TypeConfig>> RaftLogStorage<TypeConfig> for Counted<T> {
    type LogReader = T::LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        self.inner.get_log_state().await
    }

    async fn get_log_reader(&mut self) -> T::LogReader {
        self.inner.get_log_reader().await
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.inner.save_vote(vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.inner.read_vote().await
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.inner.save_committed(committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        self.inner.read_committed().await
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        self.counters.appends.fetch_add(1, Relaxed);
        self.counters
            .appended
            .fetch_add(entries.len() as u64, Relaxed);
        let start = Instant::now();
        let result = self.inner.append(entries, callback).await;
        self.counters
            .append_micros
            .fetch_add(start.elapsed().as_micros() as u64, Relaxed);
        result
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.inner.truncate(log_id).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.inner.purge(log_id).await
    }
}

impl<T: RaftStateMachine<TypeConfig>> RaftStateMachine<TypeConfig> for Counted<T> {
    type SnapshotBuilder = T::SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        self.inner.applied_state().await
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        self.counters.applies.fetch_add(1, Relaxed);
        self.counters
            .applied
            .fetch_add(entries.len() as u64, Relaxed);
        self.inner.apply(entries).await
    }

    async fn get_snapshot_builder(&mut self) -> T::SnapshotBuilder {
        self.inner.get_snapshot_builder().await
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<NodeId>> {
        self.inner.begin_receiving_snapshot().await
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<NodeId>> {
        self.inner.install_snapshot(meta, snapshot).await
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        self.inner.get_current_snapshot().await
    }
}
