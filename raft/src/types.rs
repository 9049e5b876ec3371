//! The type configuration of a strata-backed node: what a client asks
//! the state machine (a [`Request`]) and what it answers (a [`Response`]).

use serde::{Deserialize, Serialize};

/// A node's id.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's type configuration for a node stored in strata: string
    /// key-value requests, `u64` node ids, and snapshots kept in files.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A write to the replicated key-value map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Set `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Remove `key` (nothing happens if it is absent).
    Delete {
        /// The key.
        key: String,
    },
    /// Several requests in one log entry, applied in order and atomically
    /// (one write batch). openraft 0.9 makes one durable append on the
    /// leader per `client_write`, so an application that gathers its
    /// clients' concurrent writes into one `Batch` shares that append's
    /// fsync among them (as TiKV batches proposals). The entry's
    /// [`Response`] is empty; each request's own is
    /// [`Request::response`].
    Batch(Vec<Request>),
}

impl Request {
    /// What applying this request answers, known before it is applied:
    /// a set answers its value, a delete and a batch nothing.
    pub fn response(&self) -> Response {
        match self {
            Request::Set { value, .. } => Response {
                value: Some(value.clone()),
            },
            Request::Delete { .. } | Request::Batch(_) => Response { value: None },
        }
    }
}

/// What applying an entry gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The key's value after the entry: `Some` after a set, `None` after
    /// a delete, a batch, a blank entry or a membership change.
    pub value: Option<String>,
}
