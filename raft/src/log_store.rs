//! The Raft log and vote in strata: openraft's `RaftLogStorage` and
//! `RaftLogReader`.
//!
//! Every write that openraft must find after a crash (a vote, appended
//! entries, the committed log id, a truncation, a purge) is one write batch written with
//! `sync = true` through strata's ordinary write path (`write_async`: it
//! joins the same write groups, so concurrent writers share an fsync),
//! and openraft hears of it (the method returns, or `LogFlushed` fires)
//! only once that write returned. Truncation and purge are range deletes.

use crate::error::{decode, encode, storage_error};
use crate::keys::{log_key, COMMITTED, LAST_PURGED, LOG_KEYSPACE, LOG_META_KEYSPACE, VOTE};
use crate::purge_floor::PurgeFloor;
use crate::types::{NodeId, TypeConfig};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError, Vote,
};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use strata::{Db, Keyspace, WriteBatch, WriteOptions};

/// The log half of a node's storage (see [`open`](crate::open)). Cloning
/// gives another handle to the same log: the log reader openraft's
/// replication tasks use is one.
#[derive(Clone)]
pub struct LogStore {
    db: Db,
    log: Keyspace,
    meta: Keyspace,
    /// How far a purge may go while a snapshot is being received.
    floor: Arc<PurgeFloor>,
    /// This node's id, if the application named it
    /// (`StorageOptions::node_id`): then `save_committed` syncs only while
    /// the stored vote says this node leads.
    node_id: Option<NodeId>,
}

/// A write openraft may rely on after a crash.
fn synced() -> WriteOptions {
    WriteOptions {
        sync: true,
        ..WriteOptions::default()
    }
}

impl LogStore {
    pub(crate) fn open(
        db: &Db,
        floor: Arc<PurgeFloor>,
        node_id: Option<NodeId>,
    ) -> Result<Self, strata::Error> {
        Ok(LogStore {
            db: db.clone(),
            log: db.keyspace(LOG_KEYSPACE)?,
            meta: db.keyspace(LOG_META_KEYSPACE)?,
            floor,
            node_id,
        })
    }

    /// Whether the committed id must be synced (see `save_committed`): the
    /// node's id is not known, or the stored vote is committed and names
    /// this node. Read from the stored vote each time (a lookup in the
    /// memtable beside an fsync): openraft's core saves a vote before any
    /// commit that depends on it, one command at a time, so the stored
    /// vote is the one the commit is made under, whoever else holds a
    /// clone of this store.
    fn committed_must_sync(&self) -> Result<bool, StorageError<NodeId>> {
        let Some(me) = self.node_id else {
            return Ok(true);
        };
        let vote: Option<Vote<NodeId>> = self.meta_value(VOTE, ErrorSubject::Vote)?;
        Ok(
            vote.is_some_and(|vote| {
                vote.is_committed() && vote.leader_id().voted_for() == Some(me)
            }),
        )
    }

    /// A metadata value, decoded.
    fn meta_value<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        subject: ErrorSubject<NodeId>,
    ) -> Result<Option<T>, StorageError<NodeId>> {
        match self.meta.get(key) {
            Ok(Some(bytes)) => decode(&bytes, subject).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(storage_error(subject, ErrorVerb::Read, &e)),
        }
    }

    /// Write `batch` with `sync = true`; `Ok` once it is durable.
    async fn write_synced(
        &self,
        batch: WriteBatch,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError<NodeId>> {
        self.write(batch, &synced(), subject).await
    }

    /// Write `batch` through strata's group commit.
    async fn write(
        &self,
        batch: WriteBatch,
        options: &WriteOptions,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError<NodeId>> {
        self.db
            .write_async(batch, options)
            .await
            .map_err(|e| storage_error(subject, ErrorVerb::Write, &e))
    }

    /// The entry with the greatest index, if the log holds any.
    fn last_entry(&self) -> Result<Option<Entry<TypeConfig>>, StorageError<NodeId>> {
        match self.log.iter().next_back() {
            None => Ok(None),
            Some(Ok((_, value))) => decode(&value, ErrorSubject::Logs).map(Some),
            Some(Err(e)) => Err(storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e)),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        // As indexes: `[lo, hi)`, `hi = None` for no end.
        let lo = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => match i.checked_add(1) {
                Some(lo) => lo,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Bound::Included(&i) => i.checked_add(1),
            Bound::Excluded(&i) => Some(i),
            Bound::Unbounded => None,
        };
        let keys = match hi {
            Some(hi) if hi <= lo => return Ok(Vec::new()),
            Some(hi) => (Bound::Included(log_key(lo)), Bound::Excluded(log_key(hi))),
            None => (Bound::Included(log_key(lo)), Bound::Unbounded),
        };
        let mut entries = Vec::new();
        for item in self.log.range(keys) {
            let (_, value) =
                item.map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
            entries.push(decode(&value, ErrorSubject::Logs)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> =
            self.meta_value(LAST_PURGED, ErrorSubject::Logs)?;
        let last_log_id = match self.last_entry()? {
            Some(entry) => Some(entry.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut batch = WriteBatch::new();
        batch.put_in(&self.meta, VOTE, encode(vote, ErrorSubject::Vote)?);
        self.write_synced(batch, ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.meta_value(VOTE, ErrorSubject::Vote)
    }

    /// Synced while this node leads, like the appends (sharing their write
    /// groups). openraft awaits it before it dispatches the apply of the
    /// entries it names (openraft 0.9.25 raft_core.rs:1699), so a leader's
    /// committed id is durable before any response. It must be: the
    /// applies are not synced, and a leader that restarts in the same term
    /// (its vote is committed) takes the committed id it recovers (from
    /// this id and the recovered last applied one) as its read index
    /// without asking the followers, so an unsynced id here would let it
    /// answer a linearizable read without a write it had acknowledged
    /// (docs/design/raft.md, "Durability points").
    ///
    /// A node that does not lead (its vote is not committed, or names
    /// another node) writes it without a sync when the application named
    /// the node (`StorageOptions::node_id`): Raft keeps the commit index in
    /// volatile state, a follower answers no read index, and one that
    /// becomes leader does so in a new term whose first entry it commits
    /// before its read index can pass it. A lost id only makes the node
    /// apply again from the log after a restart; the next synced write
    /// (an append) makes it durable, in log order.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut batch = WriteBatch::new();
        batch.put_in(
            &self.meta,
            COMMITTED,
            encode(&committed, ErrorSubject::Store)?,
        );
        let options = if self.committed_must_sync()? {
            synced()
        } else {
            WriteOptions::default()
        };
        self.write(batch, &options, ErrorSubject::Store).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .meta_value::<Option<LogId<NodeId>>>(COMMITTED, ErrorSubject::Store)?
            .flatten())
    }

    /// The entries are visible when the synced write returns, and durable:
    /// the callback fires right after it (never before the fsync).
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::new();
        for entry in entries {
            let value = encode(&entry, ErrorSubject::Log(entry.log_id))?;
            batch.put_in(&self.log, log_key(entry.log_id.index), value);
        }
        match self.write_synced(batch, ErrorSubject::Logs).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    /// Remove entries `[log_id.index, ∞)`: one synced range delete.
    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut batch = WriteBatch::new();
        batch.delete_range_in(&self.log, log_key(log_id.index)..);
        self.write_synced(batch, ErrorSubject::Logs).await
    }

    /// Remove entries `(-∞, log_id.index]` and record `log_id` as the last
    /// purged, in one synced batch: the log state never shows a hole.
    ///
    /// While a snapshot is being received, a purge past the state
    /// machine's last applied id first waits for the install's marker to
    /// be durable, and fails if the install fails before it
    /// (`purge_floor`): the purge is never durable without the marker.
    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.floor.wait_to_purge(&log_id).await.map_err(|why| {
            storage_error(
                ErrorSubject::Logs,
                ErrorVerb::Write,
                &std::io::Error::other(why),
            )
        })?;
        let mut batch = WriteBatch::new();
        batch.put_in(
            &self.meta,
            LAST_PURGED,
            encode(&log_id, ErrorSubject::Logs)?,
        );
        batch.delete_range_in(&self.log, ..=log_key(log_id.index));
        self.write_synced(batch, ErrorSubject::Logs).await
    }
}
