//! Where things live in the database: keyspace names and key encodings
//! (docs/design/raft.md draws the layout).

/// The Raft log: key = entry index, 8 bytes big-endian (so the keyspace's
/// order is the log's), value = the entry as JSON.
pub const LOG_KEYSPACE: &str = "raft_log";
/// The log's metadata: [`VOTE`], [`LAST_PURGED`], [`COMMITTED`].
pub const LOG_META_KEYSPACE: &str = "raft_meta";
/// The state machine's key-value data, keys and values as given.
pub const SM_DATA_KEYSPACE: &str = "sm_data";
/// The state machine's metadata: [`LAST_APPLIED`], [`LAST_MEMBERSHIP`],
/// [`INSTALLING`].
pub const SM_META_KEYSPACE: &str = "sm_meta";

/// The vote (JSON `Vote`).
pub const VOTE: &[u8] = b"vote";
/// The last purged log id (JSON `LogId`).
pub const LAST_PURGED: &[u8] = b"last_purged";
/// The last committed log id openraft saved (JSON `Option<LogId>`).
pub const COMMITTED: &[u8] = b"committed";
/// The last applied log id (JSON `LogId`), written with each entry's
/// effects.
pub const LAST_APPLIED: &[u8] = b"last_applied";
/// The last applied membership (JSON `StoredMembership`).
pub const LAST_MEMBERSHIP: &[u8] = b"last_membership";

/// The snapshot being installed (JSON `SnapshotMeta`), present from
/// before the install changes anything until the batch that ends it: a
/// node that opens with it finishes the install from the staged snapshot
/// file (docs/design/raft.md, "Snapshots").
pub const INSTALLING: &[u8] = b"installing_snapshot";

/// The log key of entry `index`.
pub fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}
