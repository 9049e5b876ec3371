//! How far a follower that is receiving a snapshot may purge its log:
//! shared by the [`LogStore`](crate::LogStore) and the
//! [`StateMachineStore`](crate::StateMachineStore) of one node.
//!
//! openraft 0.9.25 installs a snapshot on a follower by sending the
//! install to its state machine worker and then, without waiting for it,
//! running `PurgeLog { upto: snapshot's last log id }` in its core
//! (`following_handler/mod.rs:321-325`; `command.rs:193`: a purge waits
//! for nothing). The purge is one small synced write; the install copies
//! and stages the snapshot file first, which takes seconds. A crash in
//! between would leave the log purged past the recovered state machine,
//! without the install's marker that makes the next open finish the
//! install: entries the state machine still needs would be gone, and the
//! node could not restart. So while a snapshot is being received, a purge
//! past the state machine's last applied id waits until the install's
//! marker is durable (the applied id is then the snapshot's: the next open
//! finishes the install). The purge's synced write then comes after the
//! marker's in the one WAL, so a durable purge implies a durable marker.
//!
//! Only while receiving: openraft's storage conformance suite purges logs
//! without applying anything, and a leader purges only up to a snapshot it
//! built, from entries it applied. A follower always calls
//! `begin_receiving_snapshot` before the snapshot's last chunk makes it
//! install and purge (openraft's chunked transport awaits it through the
//! core, `snapshot_transport.rs:326`), and so does an application with a
//! transport of its own that takes the file to receive into from
//! `Raft::begin_receiving_snapshot` before `Raft::install_full_snapshot`,
//! as openraft documents. One that opens the file itself skips it; the
//! install sets the flag too, on entry, but that only narrows the window:
//! openraft pushes the purge right after it sends the install to the state
//! machine worker, so the purge can run before the worker reaches the
//! install (docs/design/raft.md, "Snapshots").

use crate::types::NodeId;
use openraft::LogId;
use tokio::sync::watch;

#[derive(Debug, Default)]
struct Floor {
    /// The state machine's last applied id, or the id of a snapshot whose
    /// install marker is durable.
    applied: Option<LogId<NodeId>>,
    /// A snapshot is being received or installed.
    receiving: bool,
    /// The install being waited for failed before its marker was durable.
    failed: Option<String>,
}

/// See the module doc.
#[derive(Debug)]
pub struct PurgeFloor {
    floor: watch::Sender<Floor>,
}

impl PurgeFloor {
    pub fn new() -> Self {
        PurgeFloor {
            floor: watch::Sender::new(Floor::default()),
        }
    }

    /// The state machine has applied up to `id` (at open, after an apply),
    /// or an install's marker naming a snapshot up to `id` is durable.
    pub fn set_applied(&self, id: Option<LogId<NodeId>>) {
        self.floor.send_modify(|f| f.applied = id);
    }

    /// A snapshot is about to be received or installed.
    pub fn begin_receiving(&self) {
        self.floor.send_modify(|f| {
            f.receiving = true;
            f.failed = None;
        });
    }

    /// An install is done: the state machine is the snapshot's, up to `id`.
    pub fn installed(&self, id: Option<LogId<NodeId>>) {
        self.floor.send_modify(|f| {
            f.applied = id;
            f.receiving = false;
            f.failed = None;
        });
    }

    /// An install failed before its marker was durable: a purge waiting
    /// for it fails with `why` rather than wait for ever.
    pub fn install_failed(&self, why: String) {
        self.floor.send_modify(|f| f.failed = Some(why));
    }

    /// Wait until purging the log up to `upto` cannot leave it purged past
    /// the state machine after a crash. `Err` (why) if the install it
    /// waited for failed.
    pub async fn wait_to_purge(&self, upto: &LogId<NodeId>) -> Result<(), String> {
        let blocked = |f: &Floor| f.receiving && f.applied.as_ref() < Some(upto);
        let mut rx = self.floor.subscribe();
        // Never `Err`: the sender is `self.floor`, alive while `self` is.
        let floor = rx
            .wait_for(|f| !blocked(f) || f.failed.is_some())
            .await
            .map_err(|e| e.to_string())?;
        match &floor.failed {
            Some(why) if blocked(&floor) => Err(format!(
                "purging the log up to {upto} waited for a snapshot install that failed: {why}"
            )),
            _ => Ok(()),
        }
    }
}
