//! A follower loses power at every step of installing a snapshot (its
//! synced "installing" marker, the tables streamed from the snapshot, the
//! ingestion of them, the batch naming the new state), and then again at
//! a step of the reopen that finishes an interrupted install: after the
//! reboots its state machine is either all its own old state or all the
//! snapshot's (map, last applied id and membership together), an install
//! that returned `Ok` is all there, and the snapshot it then reports as
//! current is never newer than what it holds. The install builds tables
//! of a few entries each, so that it ingests several at once.

#![allow(clippy::result_large_err)]

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{BasicNode, LogId, StoredMembership};
use std::path::Path;
use std::sync::Arc;
use strata::fs::{MemFileSystem, UnsyncedData};
use strata::{Db, Options};
use strata_raft::{LogStore, StateMachineStore, StorageOptions};

#[path = "support/stores.rs"]
mod stores;
use stores::{leader_snapshot, log_id, membership, set};

/// Tables of about three entries: the install ingests several.
const TABLE_BYTES: u64 = 40;

fn try_open(fs: &MemFileSystem, snapshots: &Path) -> Result<(LogStore, StateMachineStore), String> {
    let options = Options {
        fs: Arc::new(fs.clone()),
        // Flushes in the calling thread and no compaction: the n-th
        // filesystem operation is the same one in every run, and none
        // comes after the install returned (an ingestion's L0 tables
        // would otherwise start a compaction that the crash could meet
        // after an install that finished).
        inline_background_work: true,
        level0_file_num_compaction_trigger: 1000,
        level0_slowdown_writes_trigger: 1000,
        level0_stop_writes_trigger: 1000,
        ..Options::default()
    };
    let db = Db::open(Path::new("/db"), options).map_err(|e| e.to_string())?;
    let storage = StorageOptions {
        install_table_bytes: TABLE_BYTES,
        ..StorageOptions::default()
    };
    strata_raft::open_with(&db, snapshots, &storage).map_err(|e| e.to_string())
}

fn open(fs: &MemFileSystem, snapshots: &Path) -> (LogStore, StateMachineStore) {
    try_open(fs, snapshots).expect("open the raft store")
}

type State = (
    Vec<(String, String)>,
    Option<LogId<u64>>,
    StoredMembership<u64, BasicNode>,
);

async fn state(sm: &mut StateMachineStore) -> State {
    let (applied, membership) = sm.applied_state().await.expect("applied state");
    (sm.entries().expect("scan"), applied, membership)
}

#[test]
fn a_crash_at_every_step_of_installing_a_snapshot_leaves_the_old_or_the_new_state() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime");
    rt.block_on(async {
        // The leader's state machine and a snapshot of it.
        let leader_snapshots = tempfile::tempdir().expect("snapshot directory");
        let (mut leader, snapshot) = leader_snapshot(leader_snapshots.path(), 40).await;
        let new_state = state(&mut leader).await;

        let (mut redone, mut old_after_crash, mut new_after_crash) = (0, 0, 0);
        for mode in [
            UnsyncedData::Drop,
            UnsyncedData::KeepRandomPrefix(3),
            UnsyncedData::KeepRandomPages(4),
        ] {
            let mut crash_at = 1;
            loop {
                let fs = MemFileSystem::new();
                let snapshots = tempfile::tempdir().expect("snapshot directory");
                let (mut follower_log, mut follower) = open(&fs, snapshots.path());
                follower
                    .apply([
                        membership(1, 1, &[1, 2, 3]),
                        set(1, 2, "k2", "follower"),
                        set(1, 3, "other", "follower only"),
                        set(1, 4, "k9", "follower"),
                    ])
                    .await
                    .expect("apply on the follower");
                // The applies are not synced: a synced write after them
                // (a purge here) makes them durable.
                follower_log
                    .purge(log_id(1, 3))
                    .await
                    .expect("purge on the follower");
                let old_state = state(&mut follower).await;

                fs.crash_after(crash_at);
                let current = leader
                    .get_current_snapshot()
                    .await
                    .expect("current")
                    .expect("a snapshot");
                let installed = follower
                    .install_snapshot(&snapshot.meta, current.snapshot)
                    .await;
                // A background operation of the database (the spare WAL
                // an open makes) may be the crash's, after the install. An
                // install that returned `Ok` did all its own operations
                // before the crash (which fails its operation and every
                // later one): it must stay installed.
                assert!(
                    installed.is_ok() || fs.is_crashed(),
                    "{mode:?}, op {crash_at}: {installed:?} with the machine up"
                );
                let acknowledged = installed.is_ok();
                let finished = acknowledged && !fs.is_crashed();
                fs.crash();
                drop((follower_log, follower));
                fs.power_loss(mode);
                let case = format!("{mode:?}, crash at op {crash_at}");

                // A second power loss at the same step of the reopen, which
                // redoes an install its marker says is unfinished.
                fs.crash_after(crash_at);
                // (The open may also return before the crash, which then
                // meets its background work.)
                let reopened = try_open(&fs, snapshots.path());
                if let Err(e) = &reopened {
                    assert!(fs.is_crashed(), "{case}: reopen failed: {e}");
                    redone += 1;
                }
                fs.crash();
                drop(reopened);
                fs.power_loss(mode);

                let (_follower_log, mut follower) = open(&fs, snapshots.path());
                let got = state(&mut follower).await;
                if acknowledged {
                    assert_eq!(got, new_state, "{case}: install returned Ok");
                } else if got == old_state {
                    old_after_crash += 1;
                } else {
                    assert_eq!(got, new_state, "{case}: neither old nor new");
                    new_after_crash += 1;
                }
                if let Some(current) = follower.get_current_snapshot().await.expect("current") {
                    assert!(
                        current.meta.last_log_id <= got.1,
                        "{case}: current snapshot {} is newer than the state",
                        current.meta
                    );
                }
                if acknowledged {
                    let current = follower.get_current_snapshot().await.expect("current");
                    assert_eq!(
                        current.map(|c| c.meta),
                        Some(snapshot.meta.clone()),
                        "{case}: the installed snapshot is not the current one"
                    );
                }
                if finished {
                    break;
                }
                crash_at += 1;
                assert!(crash_at < 10_000, "{mode:?}: the install never finished");
            }
            assert!(
                crash_at > 1,
                "{mode:?}: the install did no filesystem operation"
            );
        }
        // Both outcomes of an interrupted install were met: the marker not
        // yet durable (old), and durable, the install redone at open (new).
        assert!(redone > 0, "no reopen failed by a crash");
        assert!(old_after_crash > 0, "no crash left the old state");
        assert!(new_after_crash > 0, "no crash left the new state");
    });
}
