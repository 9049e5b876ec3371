//! openraft's own storage conformance suite (`openraft::testing::Suite`,
//! written by openraft's authors) against the strata backend: every test
//! of the suite gets a fresh database and snapshot directory.

// The suite's tests return openraft's `StorageError` (224 bytes).
#![allow(clippy::result_large_err)]

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use std::path::Path;
use std::sync::Arc;
use strata::fs::MemFileSystem;
use strata::{Db, Options};
use strata_raft::{LogStore, NodeId, StateMachineStore, TypeConfig};
use tempfile::TempDir;

/// Where a built store's database lives.
enum Disk {
    /// strata's in-memory filesystem (syncs honoured, nothing touches
    /// the disk).
    Memory,
    /// The operating system's filesystem, in a temporary directory.
    Os,
}

struct StrataBuilder(Disk);

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for StrataBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = match self.0 {
            Disk::Memory => Db::open(
                Path::new("/db"),
                Options {
                    fs: Arc::new(MemFileSystem::new()),
                    ..Options::default()
                },
            ),
            Disk::Os => Db::open(dir.path().join("db"), Options::default()),
        }
        .expect("open a fresh database");
        let (log, sm) =
            strata_raft::open(&db, dir.path().join("snapshots")).expect("open the raft store");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_on_the_in_memory_filesystem() -> Result<(), StorageError<NodeId>> {
    Suite::test_all(StrataBuilder(Disk::Memory))
}

#[test]
fn openraft_storage_suite_on_the_os_filesystem() -> Result<(), StorageError<NodeId>> {
    Suite::test_all(StrataBuilder(Disk::Os))
}
