//! What the storage tests that drive strata-raft's stores directly (no
//! Raft) share: entries to apply and a node's stores on strata's
//! in-memory filesystem. Included by path; not every test uses all.
#![allow(dead_code)]

use openraft::storage::RaftStateMachine;
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder, Snapshot,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use strata::fs::MemFileSystem;
use strata::{Db, Options};
use strata_raft::{LogStore, Request, StateMachineStore, TypeConfig};

/// The log id at `index` of `term`'s leader (node 1).
pub fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

/// An entry setting `key` to `value`.
pub fn set(term: u64, index: u64, key: &str, value: &str) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::Set {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// A membership entry of `voters`.
pub fn membership(term: u64, index: u64, voters: &[u64]) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(
            vec![voters.iter().copied().collect::<BTreeSet<_>>()],
            (),
        )),
    }
}

/// A node's stores over the database `/db` on `fs`, with default options.
pub fn open(fs: &MemFileSystem, snapshots: &Path) -> (LogStore, StateMachineStore) {
    let options = Options {
        fs: Arc::new(fs.clone()),
        ..Options::default()
    };
    let db = Db::open(Path::new("/db"), options).expect("open the database");
    strata_raft::open(&db, snapshots).expect("open the raft store")
}

/// A leader's state machine, on a filesystem of its own, that applied a
/// membership at index 1 and sets of 13 keys in term 2 up to `last`, and
/// a snapshot of it.
pub async fn leader_snapshot(
    snapshots: &Path,
    last: u64,
) -> (StateMachineStore, Snapshot<TypeConfig>) {
    let fs = MemFileSystem::new();
    let (_log, mut leader) = open(&fs, snapshots);
    let mut entries = vec![membership(1, 1, &[1, 2, 3])];
    for i in 2..=last {
        entries.push(set(2, i, &format!("k{}", i % 13), &format!("leader {i}")));
    }
    leader.apply(entries).await.expect("apply on the leader");
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build the leader's snapshot");
    (leader, snapshot)
}

/// A runtime on the test's thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}
