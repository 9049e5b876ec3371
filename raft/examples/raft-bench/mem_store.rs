//! The in-memory peer: openraft's memstore (the `openraft-memstore` crate,
//! 0.9.25) as a v2 store for `strata_raft::TypeConfig`.
//!
//! Why not the published crate itself: `openraft-memstore` 0.9.25
//! implements the v1 `RaftStorage` trait, which openraft 0.9.25 only
//! exports without its `storage-v2` feature (`src/lib.rs`:
//! `#[cfg(not(feature = "storage-v2"))] pub use crate::storage::RaftStorage`),
//! and cargo unifies features: strata-raft needs `storage-v2`, so the
//! crate does not compile in this workspace (`error[E0432]: unresolved
//! import openraft::RaftStorage`). This store does what
//! memstore 0.9.25 does, written here for the v2 traits (the way
//! openraft's own `Adaptor` runs a v1 store): the log is a `BTreeMap` of
//! entries serialised as JSON strings under a tokio `RwLock`, the vote,
//! committed and purged ids in memory, an append acknowledged as soon as
//! it is in the map; the state machine is a map under a lock, applied in
//! place. Nothing is ever written to disk: it is the cost of openraft
//! itself, with a store that costs nothing.
//!
//! Snapshots (never triggered by the benchmark) are the state machine as
//! JSON in an anonymous temporary file, since the type configuration's
//! snapshot data is a `tokio::fs::File`.

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder,
    Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::RangeBounds;
use std::sync::Arc;
use strata_raft::{NodeId, Request, Response, TypeConfig};
use tokio::sync::RwLock;

/// The log half: cloning shares the same log.
#[derive(Clone, Default)]
pub struct MemLog {
    inner: Arc<LogInner>,
}

#[derive(Default)]
struct LogInner {
    last_purged: RwLock<Option<LogId<NodeId>>>,
    committed: RwLock<Option<LogId<NodeId>>>,
    vote: RwLock<Option<Vote<NodeId>>>,
    /// Entries by index, as JSON (as memstore keeps them).
    log: RwLock<BTreeMap<u64, String>>,
}

impl RaftLogReader<TypeConfig> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let log = self.inner.log.read().await;
        let mut entries = Vec::new();
        for (_, json) in log.range(range) {
            entries.push(serde_json::from_str(json).map_err(|e| StorageIOError::read_logs(&e))?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for MemLog {
    type LogReader = MemLog;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id = *self.inner.last_purged.read().await;
        let last = match self.inner.log.read().await.values().next_back() {
            Some(json) => {
                let entry: Entry<TypeConfig> =
                    serde_json::from_str(json).map_err(|e| StorageIOError::read_logs(&e))?;
                Some(entry.log_id)
            }
            None => None,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> MemLog {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        *self.inner.vote.write().await = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(*self.inner.vote.read().await)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        *self.inner.committed.write().await = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(*self.inner.committed.read().await)
    }

    /// In the map, then acknowledged at once (as openraft's `Adaptor`
    /// does for a v1 store such as memstore).
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut log = self.inner.log.write().await;
            for entry in entries {
                let json = serde_json::to_string(&entry)
                    .map_err(|e| StorageIOError::write_log_entry(entry.log_id, &e))?;
                log.insert(entry.log_id.index, json);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut log = self.inner.log.write().await;
        log.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        *self.inner.last_purged.write().await = Some(log_id);
        let mut log = self.inner.log.write().await;
        let kept = log.split_off(&log_id.index.saturating_add(1));
        *log = kept;
        Ok(())
    }
}

/// The state machine: a string map and what was last applied.
#[derive(Serialize, Deserialize, Default, Clone)]
struct SmState {
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    data: BTreeMap<String, String>,
}

/// The state machine half: cloning shares the same state.
#[derive(Clone, Default)]
pub struct MemStateMachine {
    state: Arc<RwLock<SmState>>,
    current: Arc<RwLock<Option<Current>>>,
}

/// The current snapshot: its meta and its bytes.
type Current = (SnapshotMeta<NodeId, BasicNode>, Vec<u8>);

/// `bytes` in an anonymous temporary file, at its start.
fn snapshot_file(bytes: &[u8]) -> Result<tokio::fs::File, StorageError<NodeId>> {
    let write = |e: std::io::Error| StorageIOError::write_snapshot(None, &e);
    let mut file = tempfile::tempfile().map_err(write)?;
    file.write_all(bytes).map_err(write)?;
    file.seek(SeekFrom::Start(0)).map_err(write)?;
    Ok(tokio::fs::File::from_std(file))
}

impl RaftSnapshotBuilder<TypeConfig> for MemStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let state = self.state.read().await.clone();
        let bytes =
            serde_json::to_vec(&state).map_err(|e| StorageIOError::read_state_machine(&e))?;
        let meta = SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.last_membership.clone(),
            snapshot_id: format!("{:?}", state.last_applied),
        };
        let file = snapshot_file(&bytes)?;
        *self.current.write().await = Some((meta.clone(), bytes));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

impl RaftStateMachine<TypeConfig> for MemStateMachine {
    type SnapshotBuilder = MemStateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let state = self.state.read().await;
        Ok((state.last_applied, state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut state = self.state.write().await;
        let mut responses = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            let value = match entry.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(request) => {
                    let value = request.response().value;
                    apply_request(&mut state.data, request);
                    value
                }
                EntryPayload::Membership(membership) => {
                    state.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    None
                }
            };
            responses.push(Response { value });
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> MemStateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<NodeId>> {
        Ok(Box::new(snapshot_file(&[])?))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<NodeId>> {
        let read = |e: std::io::Error| StorageIOError::read_snapshot(Some(meta.signature()), &e);
        let mut file = snapshot.into_std().await;
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).map_err(read)?;
        file.read_to_end(&mut bytes).map_err(read)?;
        let state: SmState = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        *self.state.write().await = state;
        *self.current.write().await = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        match &*self.current.read().await {
            Some((meta, bytes)) => Ok(Some(Snapshot {
                meta: meta.clone(),
                snapshot: Box::new(snapshot_file(bytes)?),
            })),
            None => Ok(None),
        }
    }
}

/// `request`'s effect on the map (a batch's requests in order), as
/// strata's state machine applies it.
fn apply_request(data: &mut BTreeMap<String, String>, request: Request) {
    match request {
        Request::Set { key, value } => {
            data.insert(key, value);
        }
        Request::Delete { key } => {
            data.remove(&key);
        }
        Request::Batch(requests) => {
            for request in requests {
                apply_request(data, request);
            }
        }
    }
}
