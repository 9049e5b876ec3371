//! The order of a follower's snapshot install and the log purge openraft
//! runs beside it, and what an open does with a staged snapshot file.
//!
//! openraft 0.9.25 sends a follower's install to its state machine worker
//! and runs `PurgeLog { upto: the snapshot's last log id }` at once,
//! concurrently (`following_handler/mod.rs:321-325`). A purge durable
//! before the install's marker would leave, after a crash, a log purged
//! past a state machine that nothing finishes installing. Here the stores
//! are driven as openraft drives them: `begin_receiving_snapshot`, a purge
//! spawned beside the install, a crash at every filesystem operation; a
//! failed install must fail the purge waiting for it, not let it through
//! or hang it.
//!
//! A crash after an install's last batch (marker removed, last applied =
//! the snapshot's) but before its file's publishing is durable leaves the
//! staged file and no marker: the open must publish it, not remove it.

#![allow(clippy::result_large_err)]

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{RaftSnapshotBuilder, StorageError};
use std::path::Path;
use strata::fs::{MemFileSystem, UnsyncedData};
use strata_raft::{LogStore, StateMachineStore};

type Meta = openraft::SnapshotMeta<u64, openraft::BasicNode>;

#[path = "support/stores.rs"]
mod stores;
use stores::{leader_snapshot, log_id, membership, open, runtime, set};

/// Pull the plug (unsynced data treated as `mode`) and reopen.
fn power_cycle(
    fs: &MemFileSystem,
    stores: (LogStore, StateMachineStore),
    snapshots: &Path,
    mode: UnsyncedData,
) -> (LogStore, StateMachineStore) {
    fs.crash();
    drop(stores);
    fs.power_loss(mode);
    open(fs, snapshots)
}

/// The last log id of the leader's snapshot.
const SNAPSHOT_LAST: u64 = 40;
/// The follower's last applied index before the install.
const FOLLOWER_APPLIED: u64 = 4;

/// A follower applied up to `FOLLOWER_APPLIED`, durably (a purge syncs it).
async fn follower(fs: &MemFileSystem, snapshots: &Path) -> (LogStore, StateMachineStore) {
    let (mut log, mut sm) = open(fs, snapshots);
    sm.apply([
        membership(1, 1, &[1, 2, 3]),
        set(1, 2, "k2", "follower"),
        set(1, 3, "other", "follower only"),
        set(1, FOLLOWER_APPLIED, "k9", "follower"),
    ])
    .await
    .expect("apply on the follower");
    log.purge(log_id(1, 3))
        .await
        .expect("purge on the follower");
    (log, sm)
}

/// Purge `log` up to the snapshot in a task of its own, as openraft's core
/// does while the state machine worker installs it.
fn spawn_purge(log: &LogStore) -> tokio::task::JoinHandle<Result<(), StorageError<u64>>> {
    let mut log = log.clone();
    tokio::spawn(async move { log.purge(log_id(2, SNAPSHOT_LAST)).await })
}

/// Crash at every filesystem operation of an install with openraft's
/// purge running beside it: whenever the log is found purged up to the
/// snapshot after the reboot, the state machine is the snapshot's (its
/// marker was durable, and the open finished the install). Without the
/// wait, the purge's small synced write lands long before the marker, and
/// a crash in between leaves the log purged past the state machine.
#[test]
fn a_purge_beside_an_install_is_never_durable_before_the_install_marker() {
    let rt = runtime();
    let leader_snapshots = tempfile::tempdir().expect("snapshot directory");
    let (leader, snapshot) = rt.block_on(leader_snapshot(leader_snapshots.path(), SNAPSHOT_LAST));
    let upto = log_id(2, SNAPSHOT_LAST);
    for mode in [UnsyncedData::Drop, UnsyncedData::KeepRandomPrefix(7)] {
        let mut purged_after_crash = 0;
        let mut crash_at = 1;
        loop {
            let fs = MemFileSystem::new();
            let snapshots = tempfile::tempdir().expect("snapshot directory");
            let case = format!("{mode:?}, crash at op {crash_at}");
            let done = rt.block_on(async {
                let (log, mut sm) = follower(&fs, snapshots.path()).await;
                // As openraft's chunked transport does before the chunks.
                let _receiving = sm.begin_receiving_snapshot().await.expect("begin");
                fs.crash_after(crash_at);
                let purge = spawn_purge(&log);
                let mut leader = leader.clone();
                let current = leader
                    .get_current_snapshot()
                    .await
                    .expect("current")
                    .expect("the leader's snapshot");
                let installed = sm.install_snapshot(&snapshot.meta, current.snapshot).await;
                // Never hangs: the install ended, with or without its marker.
                let purged = purge.await.expect("the purge task");
                let done = installed.is_ok() && purged.is_ok() && !fs.is_crashed();
                let (mut log, mut sm) = power_cycle(&fs, (log, sm), snapshots.path(), mode);
                let state = log.get_log_state().await.expect("log state");
                let (applied, _) = sm.applied_state().await.expect("applied state");
                if state.last_purged_log_id == Some(upto) {
                    assert_eq!(
                        applied,
                        Some(upto),
                        "{case}: the log is purged up to the snapshot, the state machine is not it"
                    );
                    if !done {
                        purged_after_crash += 1;
                    }
                } else {
                    assert!(!done, "{case}: a purge that returned Ok is lost");
                }
                done
            });
            if done {
                break;
            }
            crash_at += 1;
            assert!(crash_at < 10_000, "{mode:?}: the install never finished");
        }
        // Some crash came after a durable purge (and so after the marker).
        assert!(purged_after_crash > 0, "{mode:?}: no crash after the purge");
    }
}

/// An install that fails before its marker (the file is not the snapshot
/// openraft names) fails the purge waiting for it: the log keeps the
/// entries the state machine still needs, and openraft's core is not left
/// waiting. A purge the state machine covers still goes through.
#[test]
fn a_failed_install_fails_the_purge_waiting_for_it() {
    let rt = runtime();
    rt.block_on(async {
        let leader_snapshots = tempfile::tempdir().expect("snapshot directory");
        let (mut leader, snapshot) = leader_snapshot(leader_snapshots.path(), SNAPSHOT_LAST).await;
        let fs = MemFileSystem::new();
        let snapshots = tempfile::tempdir().expect("snapshot directory");
        let (log, mut sm) = follower(&fs, snapshots.path()).await;
        let _receiving = sm.begin_receiving_snapshot().await.expect("begin");
        let purge = spawn_purge(&log);

        let mut wrong = snapshot.meta.clone();
        wrong.snapshot_id = format!("{}-not-this-one", wrong.snapshot_id);
        let current = leader
            .get_current_snapshot()
            .await
            .expect("current")
            .expect("the leader's snapshot");
        let installed = sm.install_snapshot(&wrong, current.snapshot).await;
        assert!(
            installed.is_err(),
            "an install of a misnamed file succeeded"
        );
        let purged = purge.await.expect("the purge task");
        let err = purged.expect_err("the purge went on without the install");
        assert!(
            err.to_string().contains("snapshot install that failed"),
            "{err}"
        );

        let (mut log, mut sm) = power_cycle(&fs, (log, sm), snapshots.path(), UnsyncedData::Drop);
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
        let (applied, _) = sm.applied_state().await.expect("applied state");
        assert_eq!(applied, Some(log_id(1, FOLLOWER_APPLIED)));

        // Receiving again, a purge the state machine covers does not wait.
        let _receiving = sm.begin_receiving_snapshot().await.expect("begin");
        log.purge(log_id(1, FOLLOWER_APPLIED))
            .await
            .expect("a purge up to the applied id");
    });
}

/// An install of a snapshot file that names the right snapshot but whose
/// checkpoint stream is damaged (openraft's chunks carry no checksum)
/// fails before its marker: the purge waiting for it fails, and the node
/// reopens with its old state machine and log. Were the marker written
/// first, the purge would go through and every later open would retry the
/// install from the same damaged file and fail: a node that cannot start.
#[test]
fn an_install_of_a_damaged_stream_fails_before_its_marker() {
    let rt = runtime();
    rt.block_on(async {
        let leader_snapshots = tempfile::tempdir().expect("snapshot directory");
        let (_leader, snapshot) = leader_snapshot(leader_snapshots.path(), SNAPSHOT_LAST).await;
        let mut bytes =
            std::fs::read(leader_snapshots.path().join(CURRENT)).expect("the leader's snapshot");
        // A byte in the middle of the stream (the trailer, at the end,
        // still names the snapshot).
        let middle = bytes.len() / 3;
        bytes[middle] ^= 0x55;
        let damaged_dir = tempfile::tempdir().expect("directory");
        let damaged = damaged_dir.path().join("damaged.snapshot");
        std::fs::write(&damaged, &bytes).expect("write the damaged file");
        let file = tokio::fs::File::open(&damaged).await.expect("open it");

        let fs = MemFileSystem::new();
        let snapshots = tempfile::tempdir().expect("snapshot directory");
        let (log, mut sm) = follower(&fs, snapshots.path()).await;
        let _receiving = sm.begin_receiving_snapshot().await.expect("begin");
        let purge = spawn_purge(&log);
        let installed = sm.install_snapshot(&snapshot.meta, Box::new(file)).await;
        assert!(installed.is_err(), "a damaged stream was installed");
        let purged = purge.await.expect("the purge task");
        assert!(purged.is_err(), "the purge went on past a failed install");

        let (mut log, mut sm) = power_cycle(&fs, (log, sm), snapshots.path(), UnsyncedData::Drop);
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
        let (applied, _) = sm.applied_state().await.expect("applied state");
        assert_eq!(applied, Some(log_id(1, FOLLOWER_APPLIED)));
    });
}

const CURRENT: &str = "current.snapshot";
const STAGED: &str = "installing.snapshot";

/// A follower with a snapshot of its own (up to `FOLLOWER_APPLIED`), the
/// bytes of that snapshot file, and the bytes and name of the leader's
/// snapshot file.
async fn follower_with_snapshot(
    fs: &MemFileSystem,
    snapshots: &Path,
) -> ((LogStore, StateMachineStore), Vec<u8>, Vec<u8>, Meta) {
    let leader_snapshots = tempfile::tempdir().expect("snapshot directory");
    let (_leader, snapshot) = leader_snapshot(leader_snapshots.path(), SNAPSHOT_LAST).await;
    let leader_file = std::fs::read(leader_snapshots.path().join(CURRENT)).expect("read");
    let (log, mut sm) = follower(fs, snapshots).await;
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build the follower's snapshot");
    let own_file = std::fs::read(snapshots.join(CURRENT)).expect("read");
    ((log, sm), own_file, leader_file, snapshot.meta)
}

/// The state a crash between an install's last batch and the durable
/// publishing of its file leaves: the state machine and the log purged up
/// to the snapshot, no marker, the snapshot still staged and the current
/// snapshot the older one. The open publishes the staged file.
#[test]
fn open_publishes_a_staged_snapshot_whose_install_finished() {
    let rt = runtime();
    rt.block_on(async {
        let fs = MemFileSystem::new();
        let snapshots = tempfile::tempdir().expect("snapshot directory");
        let ((mut log, mut sm), own_file, leader_file, meta) =
            follower_with_snapshot(&fs, snapshots.path()).await;
        let upto = log_id(2, SNAPSHOT_LAST);
        // Install the leader's snapshot, then put the files back as the
        // crash leaves them.
        let received = snapshots.path().join("received");
        std::fs::write(&received, &leader_file).expect("write");
        let file = tokio::fs::File::open(&received).await.expect("open");
        sm.install_snapshot(&meta, Box::new(file))
            .await
            .expect("install");
        log.purge(upto).await.expect("purge up to the snapshot");
        std::fs::remove_file(&received).expect("remove");
        let staged = snapshots.path().join(STAGED);
        std::fs::write(&staged, &leader_file).expect("write");
        std::fs::write(snapshots.path().join(CURRENT), &own_file).expect("write");

        let (_log, mut sm) = power_cycle(&fs, (log, sm), snapshots.path(), UnsyncedData::Drop);
        let (applied, _) = sm.applied_state().await.expect("applied state");
        assert_eq!(applied, Some(upto));
        let current = sm.get_current_snapshot().await.expect("current");
        assert_eq!(current.map(|c| c.meta), Some(meta), "not published");
        assert!(!staged.exists(), "the staged file is left");
    });
}

/// A staged snapshot whose install's marker never became durable (the
/// state machine is still the follower's own) is removed at open, and the
/// current snapshot stays.
#[test]
fn open_removes_a_staged_snapshot_whose_install_never_began() {
    let rt = runtime();
    rt.block_on(async {
        let fs = MemFileSystem::new();
        let snapshots = tempfile::tempdir().expect("snapshot directory");
        let (stores, own_file, leader_file, _) =
            follower_with_snapshot(&fs, snapshots.path()).await;
        let staged = snapshots.path().join(STAGED);
        std::fs::write(&staged, &leader_file).expect("write");

        let (_log, mut sm) = power_cycle(&fs, stores, snapshots.path(), UnsyncedData::Drop);
        let (applied, _) = sm.applied_state().await.expect("applied state");
        assert_eq!(applied, Some(log_id(1, FOLLOWER_APPLIED)));
        assert!(!staged.exists(), "the staged file is left");
        let current = std::fs::read(snapshots.path().join(CURRENT)).expect("read");
        assert!(current == own_file, "the current snapshot changed");
    });
}
