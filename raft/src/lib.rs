//! strata as the storage of an [openraft](https://docs.rs/openraft/0.9.25)
//! node: the Raft log, the vote and a key-value state machine, all in one
//! strata database.
//!
//! [`open`] gives the two halves openraft 0.9 (feature `storage-v2`)
//! asks for: a [`LogStore`] (`RaftLogStorage`) and a [`StateMachineStore`]
//! (`RaftStateMachine`), sharing one [`strata::Db`] and so one WAL and
//! one group commit: a vote, an append and the state machine's applied
//! entries that arrive together share one fsync.
//!
//! - The log lives in keyspace `raft_log`, one entry per key (its index,
//!   big-endian), the vote and the last purged log id in `raft_meta`.
//!   A vote, an append, a truncation and a purge are written with
//!   `sync = true` and acknowledged to openraft only after that write
//!   returned; truncation and purge are range deletes. While a snapshot
//!   is being received, a purge past the state machine waits for the
//!   install's marker (`purge_floor`).
//! - The state machine is a string key-value map in keyspace `sm_data`;
//!   each entry's effects and the new last applied log id (and membership)
//!   go in one atomic write batch (keyspace `sm_meta`), so a crash never
//!   applies an entry twice and never loses one.
//! - A snapshot is a strata checkpoint of the whole database, streamed to
//!   a file; a follower installs one by restoring the checkpoint beside
//!   the database, streaming its state machine's data into tables of
//!   bounded size and ingesting them in one call, under a synced marker
//!   that makes a reopen after a crash finish the install (see
//!   `docs/design/raft.md`).
//!
//! Layout, durability points and what is not done yet:
//! `docs/design/raft.md`.

// openraft's traits return its `StorageError` (224 bytes); the helpers
// that build one return it too rather than boxing and unboxing it.
#![allow(clippy::result_large_err)]

mod error;
mod keys;
mod log_store;
mod purge_floor;
mod snapshot_file;
mod snapshot_install;
mod state_machine;
mod types;

pub use error::OpenError;
pub use log_store::LogStore;
pub use state_machine::{SnapshotBuilder, StateMachineStore};
pub use types::{NodeId, Request, Response, TypeConfig};

use std::path::PathBuf;

/// Open the Raft storage of one node over `db`, keeping snapshot files
/// in `snapshot_dir` (on the operating system's filesystem, created if
/// missing; leftovers of an interrupted snapshot are removed).
///
/// Creates the keyspaces it needs in `db` if they do not exist. The
/// database's other keyspaces are left alone, but a snapshot carries the
/// whole database (see `docs/design/raft.md`).
///
/// If a crash interrupted the install of a snapshot, the install is
/// finished here, from the snapshot file kept in `snapshot_dir`.
pub fn open(
    db: &strata::Db,
    snapshot_dir: impl Into<PathBuf>,
) -> Result<(LogStore, StateMachineStore), OpenError> {
    open_with(db, snapshot_dir, &StorageOptions::default())
}

/// [`open`] with `options`.
pub fn open_with(
    db: &strata::Db,
    snapshot_dir: impl Into<PathBuf>,
    options: &StorageOptions,
) -> Result<(LogStore, StateMachineStore), OpenError> {
    // The state machine sets the floor (its applied id, after any
    // install it finishes) before the log store can purge.
    let floor = std::sync::Arc::new(purge_floor::PurgeFloor::new());
    let sm = StateMachineStore::open(db, snapshot_dir.into(), options, floor.clone())?;
    let log = LogStore::open(db, floor, options.node_id)?;
    Ok((log, sm))
}

/// How the storage works, where it has a choice.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Installing a snapshot builds tables of about this many bytes of
    /// keys and values each (the last may be smaller) and ingests them,
    /// larger ones for a snapshot above 8 times this: an install makes at
    /// most 8 tables (`snapshot_install::MAX_INSTALL_TABLES`), all in
    /// level 0. The install's memory is one table's builder (its index and
    /// filter, some 2% of the table with 100-byte values). Default: 64 MiB.
    pub install_table_bytes: u64,
    /// This node's id: **exactly the id given to `Raft::new`**. With it,
    /// the committed log id openraft saves is synced only while the stored
    /// vote is committed and names this node (it leads), where openraft
    /// reads it back as a read index after a restart; otherwise it is
    /// written without a sync (Raft keeps it in volatile state). A wrong
    /// id is unsafe, not only slow: the leader's id would go unsynced, and
    /// a leader restarting in its term could answer a linearizable read
    /// without a write it acknowledged. The store cannot check it. Without
    /// it (`None`), the id is always synced. Default: `None`. Measured:
    /// docs/design/raft.md, "Performance".
    pub node_id: Option<NodeId>,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            install_table_bytes: snapshot_install::DEFAULT_INSTALL_TABLE_BYTES,
            node_id: None,
        }
    }
}
