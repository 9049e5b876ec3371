//! Turning strata's, serde's and the filesystem's errors into openraft's
//! `StorageError`, naming what was being done.

use crate::types::NodeId;
use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};

/// An openraft storage error about `subject`, failed while doing `verb`.
pub fn storage_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    source: &(dyn std::error::Error + 'static),
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, AnyError::from_dyn(source, None)).into()
}

/// Decode a stored JSON value, `what` naming it in the error.
pub fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    subject: ErrorSubject<NodeId>,
) -> Result<T, StorageError<NodeId>> {
    serde_json::from_slice(bytes).map_err(|e| storage_error(subject, ErrorVerb::Read, &e))
}

/// Encode a value as JSON for storage.
pub fn encode<T: serde::Serialize>(
    value: &T,
    subject: ErrorSubject<NodeId>,
) -> Result<Vec<u8>, StorageError<NodeId>> {
    serde_json::to_vec(value).map_err(|e| storage_error(subject, ErrorVerb::Write, &e))
}

/// Why [`open`](crate::open) failed.
#[derive(Debug)]
pub enum OpenError {
    /// Opening a keyspace of the database failed.
    Db(strata::Error),
    /// The snapshot directory could not be created or cleaned.
    SnapshotDir(std::path::PathBuf, std::io::Error),
    /// An install of a snapshot that a crash interrupted could not be
    /// finished.
    Install(Box<openraft::StorageError<NodeId>>),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Db(e) => write!(f, "open the raft keyspaces: {e}"),
            OpenError::SnapshotDir(dir, e) => {
                write!(f, "open the snapshot directory {}: {e}", dir.display())
            }
            OpenError::Install(e) => write!(f, "finish an interrupted snapshot install: {e}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Db(e) => Some(e),
            OpenError::SnapshotDir(_, e) => Some(e),
            OpenError::Install(e) => Some(e.as_ref()),
        }
    }
}

impl From<strata::Error> for OpenError {
    fn from(e: strata::Error) -> Self {
        OpenError::Db(e)
    }
}
