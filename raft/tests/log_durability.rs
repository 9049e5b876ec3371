//! What the log store acknowledges survives a power loss: a vote, an
//! append, the committed log id, a truncation and a purge are each synced before openraft hears
//! of them (unsynced data is dropped here, so a missing sync fails), and
//! a crash at any filesystem operation of an append leaves the log
//! either without the appended entries or with all of them.

#![allow(clippy::result_large_err)]

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};
use std::path::Path;
use std::sync::Arc;
use strata::fs::{MemFileSystem, UnsyncedData};
use strata::{Db, Options};
use strata_raft::{LogStore, Request, StorageOptions, TypeConfig};

#[path = "support/stores.rs"]
mod stores;
use stores::runtime;

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(2, 1), index)
}

fn entry(index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(Request::Set {
            key: format!("k{index}"),
            value: format!("v{index}"),
        }),
    }
}

fn open(fs: &MemFileSystem, snapshots: &Path) -> LogStore {
    open_node(fs, snapshots, None)
}

/// The log store of a node whose id the application gave (or not).
fn open_node(fs: &MemFileSystem, snapshots: &Path, node_id: Option<u64>) -> LogStore {
    let options = Options {
        fs: Arc::new(fs.clone()),
        ..Options::default()
    };
    let db = Db::open(Path::new("/db"), options).expect("open the database");
    let storage = StorageOptions {
        node_id,
        ..StorageOptions::default()
    };
    let (log, _sm) = strata_raft::open_with(&db, snapshots, &storage).expect("open the raft store");
    log
}

/// Pull the plug, dropping every unsynced byte, and reopen.
fn power_cycle(fs: &MemFileSystem, log: LogStore, snapshots: &Path) -> LogStore {
    power_cycle_node(fs, log, snapshots, None)
}

fn power_cycle_node(
    fs: &MemFileSystem,
    log: LogStore,
    snapshots: &Path,
    node_id: Option<u64>,
) -> LogStore {
    fs.crash();
    drop(log);
    fs.power_loss(UnsyncedData::Drop);
    open_node(fs, snapshots, node_id)
}

/// The indexes of the entries in the log.
async fn indexes(log: &mut LogStore) -> Vec<u64> {
    log.try_get_log_entries(..)
        .await
        .expect("read the log")
        .iter()
        .map(|e| e.log_id.index)
        .collect()
}

#[test]
fn vote_append_committed_truncate_and_purge_are_durable_when_acknowledged() {
    let rt = runtime();
    rt.block_on(async {
        let fs = MemFileSystem::new();
        let snapshots = tempfile::tempdir().expect("snapshot directory");
        let mut log = open(&fs, snapshots.path());
        let vote = Vote::new(2, 1);
        log.save_vote(&vote).await.expect("save vote");
        log.blocking_append((1..=10).map(entry))
            .await
            .expect("append");

        let mut log = power_cycle(&fs, log, snapshots.path());
        assert_eq!(log.read_vote().await.expect("read vote"), Some(vote));
        assert_eq!(indexes(&mut log).await, (1..=10).collect::<Vec<_>>());
        // Empty and inverted ranges read nothing.
        #[allow(clippy::reversed_empty_ranges)]
        for empty in [5..5, 8..3] {
            let got = log.try_get_log_entries(empty.clone()).await.expect("read");
            assert!(got.is_empty(), "{empty:?} read {} entries", got.len());
        }
        let past_the_end = (
            std::ops::Bound::Excluded(u64::MAX),
            std::ops::Bound::Unbounded,
        );
        let got = log.try_get_log_entries(past_the_end).await.expect("read");
        assert!(got.is_empty());
        let got = log.try_get_log_entries(3..=4).await.expect("read");
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            [3, 4]
        );

        // The committed id: a leader that restarts in its term takes it
        // (with the last applied id) as its read index.
        log.save_committed(Some(log_id(9)))
            .await
            .expect("save committed");
        let mut log = power_cycle(&fs, log, snapshots.path());
        assert_eq!(
            log.read_committed().await.expect("read committed"),
            Some(log_id(9))
        );

        log.truncate(log_id(7)).await.expect("truncate");
        let mut log = power_cycle(&fs, log, snapshots.path());
        assert_eq!(indexes(&mut log).await, (1..=6).collect::<Vec<_>>());

        log.purge(log_id(3)).await.expect("purge");
        let mut log = power_cycle(&fs, log, snapshots.path());
        assert_eq!(indexes(&mut log).await, vec![4, 5, 6]);
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_purged_log_id, Some(log_id(3)));
        assert_eq!(state.last_log_id, Some(log_id(6)));

        // Purging everything leaves the purged id as the last log id.
        log.purge(log_id(6)).await.expect("purge all");
        let mut log = power_cycle(&fs, log, snapshots.path());
        assert!(indexes(&mut log).await.is_empty());
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_log_id, Some(log_id(6)));
    });
}

/// With the node's id known (`StorageOptions::node_id`), the committed id
/// is synced only while the stored vote says the node leads: a follower's
/// is lost with the unsynced bytes (Raft keeps it in volatile state) unless
/// a later synced write carried it, a leader's survives, before and after
/// a restart.
#[test]
fn with_its_id_known_only_a_leader_syncs_the_committed_id() {
    let rt = runtime();
    rt.block_on(async {
        let fs = MemFileSystem::new();
        let snapshots = tempfile::tempdir().expect("snapshot directory");
        let dir = snapshots.path();
        let me = Some(1);
        let mut log = open_node(&fs, dir, me);
        log.blocking_append((1..=10).map(entry))
            .await
            .expect("append");
        // No vote yet: the node cannot lead.
        let (mut log, got) = committed_after_power_loss(&fs, log, dir, me, 1).await;
        assert_eq!(got, None);

        // A follower of node 2: unsynced, also after a restart ...
        log.save_vote(&Vote::new_committed(2, 2))
            .await
            .expect("save vote");
        let (log, got) = committed_after_power_loss(&fs, log, dir, me, 5).await;
        assert_eq!(got, None);
        let (mut log, got) = committed_after_power_loss(&fs, log, dir, me, 5).await;
        assert_eq!(got, None);
        // ... until a synced append carries it.
        log.save_committed(Some(log_id(6)))
            .await
            .expect("save committed");
        log.blocking_append([entry(11)]).await.expect("append");
        let mut log = power_cycle_node(&fs, log, dir, me);
        assert_eq!(
            log.read_committed().await.expect("read committed"),
            Some(log_id(6))
        );

        // Leading: synced, and again after a restart in the same term.
        log.save_vote(&Vote::new_committed(3, 1))
            .await
            .expect("save vote");
        let (log, got) = committed_after_power_loss(&fs, log, dir, me, 9).await;
        assert_eq!(got, Some(log_id(9)));
        let (mut log, got) = committed_after_power_loss(&fs, log, dir, me, 10).await;
        assert_eq!(got, Some(log_id(10)));

        // A candidate's own vote, not committed, does not lead.
        log.save_vote(&Vote::new(4, 1)).await.expect("save vote");
        let (log, got) = committed_after_power_loss(&fs, log, dir, me, 11).await;
        assert_eq!(got, Some(log_id(10)));

        // Without the node's id, always synced.
        drop(log);
        let log = open_node(&fs, dir, None);
        let (_log, got) = committed_after_power_loss(&fs, log, dir, None, 11).await;
        assert_eq!(got, Some(log_id(11)));
    });
}

/// Save `index` as the committed id, lose power (every unsynced byte),
/// reopen as node `node_id`: the store and the committed id it reads back.
async fn committed_after_power_loss(
    fs: &MemFileSystem,
    mut log: LogStore,
    snapshots: &Path,
    node_id: Option<u64>,
    index: u64,
) -> (LogStore, Option<LogId<u64>>) {
    log.save_committed(Some(log_id(index)))
        .await
        .expect("save committed");
    let mut log = power_cycle_node(fs, log, snapshots, node_id);
    let committed = log.read_committed().await.expect("read committed");
    (log, committed)
}

#[test]
fn a_crash_during_an_append_leaves_none_or_all_of_its_entries() {
    let rt = runtime();
    let mut modes = vec![UnsyncedData::Drop];
    for seed in 0..4 {
        modes.push(UnsyncedData::KeepRandomPrefix(seed));
        modes.push(UnsyncedData::KeepRandomPages(seed));
    }
    for mode in modes {
        let mut crash_at = 1;
        loop {
            let finished = rt.block_on(async {
                let fs = MemFileSystem::new();
                let snapshots = tempfile::tempdir().expect("snapshot directory");
                let mut log = open(&fs, snapshots.path());
                log.blocking_append((1..=3).map(entry))
                    .await
                    .expect("append");
                fs.crash_after(crash_at);
                let appended = log.blocking_append((4..=20).map(entry)).await;
                // The database's own threads count operations too (the
                // spare WAL made after the open): one of theirs may be
                // the crash's, after the append was acknowledged. What
                // must hold is that an acknowledged append survives.
                let finished = appended.is_ok() && !fs.is_crashed();
                fs.crash();
                drop(log);
                fs.power_loss(mode);
                let mut log = open(&fs, snapshots.path());
                let got = indexes(&mut log).await;
                let case = format!("{mode:?}, crash at op {crash_at}: log {got:?}");
                if appended.is_ok() {
                    assert_eq!(got, (1..=20).collect::<Vec<_>>(), "{case}");
                } else {
                    assert!(
                        got == (1..=3).collect::<Vec<_>>() || got == (1..=20).collect::<Vec<_>>(),
                        "{case}"
                    );
                }
                finished
            });
            if finished {
                break;
            }
            crash_at += 1;
            assert!(crash_at < 10_000, "{mode:?}: the append never finished");
        }
        assert!(
            crash_at > 1,
            "{mode:?}: the append did no filesystem operation"
        );
    }
}
