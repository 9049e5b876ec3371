//! The replicated key-value map in strata: openraft's `RaftStateMachine`
//! and `RaftSnapshotBuilder`.
//!
//! Applying an entry is one write batch: its effect on `sm_data` and the
//! new last applied log id (and, for a membership entry, the membership)
//! in `sm_meta`. strata applies a batch whole or not at all, and after a
//! crash holds a prefix of the batches written, so the state machine
//! recovers to exactly the entries up to its recovered last applied id:
//! none twice, none skipped.
//!
//! The applies are not synced. What `apply` returned may be lost in a
//! crash, but only with everything written after it: the log, the vote
//! and the state machine share one database and so one WAL, and strata
//! recovers a prefix of the writes, so any later synced write (an append,
//! a vote, a leader's committed id, a truncation, a purge, a snapshot install)
//! makes every apply before it durable. openraft re-applies what was lost from the log
//! (`get_initial_state` re-applies from the recovered last applied id up
//! to the saved committed id, and the leader's commit index brings the
//! rest): the log is purged only up to a snapshot, the snapshot was built
//! from applies that had returned, and the purge is a synced write after
//! them, so an apply can be lost only while its entry is still in the
//! log. A snapshot is built from applies that had returned, and the WAL
//! is synced before its file is published, so no current snapshot is
//! newer than the state machine after a crash. A node's local reads (`get`) may go back after a crash until it
//! re-applies; reads behind openraft's read index wait for that.
//! docs/design/raft.md, "Durability points".

use crate::error::{decode, encode, storage_error, OpenError};
use crate::keys::{INSTALLING, LAST_APPLIED, LAST_MEMBERSHIP, SM_DATA_KEYSPACE, SM_META_KEYSPACE};
use crate::purge_floor::PurgeFloor;
use crate::snapshot_file::{read_trailer, write_trailer, Meta, SnapshotDir};
use crate::snapshot_install::{clear_work_dir, install_table_bytes, replace_data, work_dir};
use crate::types::{NodeId, Request, Response, TypeConfig};
use crate::StorageOptions;
use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftSnapshotBuilder, Snapshot, StorageError, StoredMembership,
};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use strata::{CheckpointOptions, Db, Keyspace, Options, ReadOnlyDb, WriteBatch, WriteOptions};
use tokio::io::AsyncWriteExt;

/// The state machine half of a node's storage (see [`open`](crate::open)).
///
/// An application that moves snapshots with a transport of its own gets
/// the file to receive one into from `Raft::begin_receiving_snapshot`
/// and then calls `Raft::install_full_snapshot`, as openraft documents.
/// A file opened by the application itself would skip what holds the
/// follower's log purge until the install can no longer be lost
/// (`purge_floor`): a power loss in between could leave a node that
/// cannot restart.
#[derive(Clone)]
pub struct StateMachineStore {
    db: Db,
    data: Keyspace,
    meta: Keyspace,
    snapshots: Arc<SnapshotDir>,
    /// Held by an install from its marker to the batch that ends it, and
    /// by a snapshot build while it takes its checkpoint: a checkpoint
    /// never sees a half-installed state machine (new data, old last
    /// applied id).
    installing: Arc<Mutex<()>>,
    install_table_bytes: u64,
    /// Tells the log store how far it may purge while a snapshot is
    /// being received (`purge_floor`).
    floor: Arc<PurgeFloor>,
}

/// Builds a snapshot of a [`StateMachineStore`]: a checkpoint of its
/// database.
pub struct SnapshotBuilder {
    store: StateMachineStore,
}

type Applied = (Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>);

impl StateMachineStore {
    pub(crate) fn open(
        db: &Db,
        snapshot_dir: PathBuf,
        options: &StorageOptions,
        floor: Arc<PurgeFloor>,
    ) -> Result<Self, OpenError> {
        let snapshots = SnapshotDir::open(snapshot_dir.clone())
            .map_err(|e| OpenError::SnapshotDir(snapshot_dir.clone(), e))?;
        let store = StateMachineStore {
            db: db.clone(),
            data: db.keyspace(SM_DATA_KEYSPACE)?,
            meta: db.keyspace(SM_META_KEYSPACE)?,
            snapshots: Arc::new(snapshots),
            installing: Arc::new(Mutex::new(())),
            install_table_bytes: options.install_table_bytes,
            floor,
        };
        match store.meta.get(INSTALLING)? {
            // A crash came after the install's marker: finish it.
            Some(marker) => {
                let meta: Meta = decode(&marker, ErrorSubject::Snapshot(None))
                    .map_err(|e| OpenError::Install(Box::new(e)))?;
                store
                    .install_staged(&meta)
                    .map_err(|e| OpenError::Install(Box::new(e)))?;
            }
            // No install to finish.
            None => {
                store
                    .publish_or_remove_staged()
                    .map_err(|e| OpenError::SnapshotDir(snapshot_dir, e))?;
                clear_work_dir(db.file_system().as_ref(), &work_dir(db))?;
            }
        }
        let (applied, _) = store
            .read_applied()
            .map_err(|e| OpenError::Install(Box::new(e)))?;
        store.floor.set_applied(applied);
        Ok(store)
    }

    /// With no install marker, what a staged snapshot file is: either an
    /// install whose marker never became durable (not needed: removed), or
    /// an install that finished (the batch that removed the marker set the
    /// last applied id to the snapshot's) whose publishing a crash stopped
    /// (the rename or the directory's fsync was not durable). The latter is
    /// published, unless the current snapshot is newer: removing it would
    /// leave a current snapshot older than the state machine, and the log
    /// is purged up to the installed one.
    fn publish_or_remove_staged(&self) -> std::io::Result<()> {
        let staged = match self.snapshots.open_staged() {
            Ok(staged) => staged.map(|(meta, _, _)| meta),
            // A file stage() made is complete and synced: one whose
            // trailer does not read is not an install's to keep. Any other
            // error (the file could not be read now) is the open's: the
            // file may be the only copy of the installed snapshot.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => None,
            Err(e) => return Err(e),
        };
        let (applied, _) = self.read_applied().map_err(std::io::Error::other)?;
        match staged {
            Some(meta) if meta.last_log_id.is_some() && meta.last_log_id == applied => {
                // publish() keeps a newer current snapshot (and removes this).
                self.snapshots
                    .publish(&self.snapshots.staged_path(), &meta)
                    .map(|_| ())
            }
            _ => self.snapshots.remove_staged(),
        }
    }

    /// The value of `key` in the replicated map, as this node has applied
    /// it (a local read: linearizable only behind openraft's read index).
    pub fn get(&self, key: &str) -> Result<Option<String>, strata::Error> {
        Ok(self
            .data
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Every key and value of the replicated map, in key order.
    pub fn entries(&self) -> Result<Vec<(String, String)>, strata::Error> {
        self.data
            .iter()
            .map(|item| {
                item.map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
            })
            .collect()
    }

    /// The last applied log id and membership, as stored.
    fn read_applied(&self) -> Result<Applied, StorageError<NodeId>> {
        let read = |key: &[u8]| {
            self.meta
                .get(key)
                .map_err(|e| storage_error(ErrorSubject::StateMachine, ErrorVerb::Read, &e))
        };
        let last_applied = match read(LAST_APPLIED)? {
            Some(v) => Some(decode(&v, ErrorSubject::StateMachine)?),
            None => None,
        };
        let membership = match read(LAST_MEMBERSHIP)? {
            Some(v) => decode(&v, ErrorSubject::StateMachine)?,
            None => StoredMembership::default(),
        };
        Ok((last_applied, membership))
    }

    /// Add `request`'s effect on the map to `batch` (a batch's requests
    /// in order, so a later one wins).
    fn request_into(&self, request: &Request, batch: &mut WriteBatch) {
        match request {
            Request::Set { key, value } => batch.put_in(&self.data, key, value),
            Request::Delete { key } => batch.delete_in(&self.data, key),
            Request::Batch(requests) => {
                for request in requests {
                    self.request_into(request, batch);
                }
            }
        }
    }

    /// One entry's write batch: its effect, and the state machine's new
    /// last applied id (and membership), applied together or not at all.
    fn entry_batch(
        &self,
        entry: Entry<TypeConfig>,
    ) -> Result<(WriteBatch, Response), StorageError<NodeId>> {
        let subject = ErrorSubject::Apply(entry.log_id);
        let mut batch = WriteBatch::new();
        batch.put_in(
            &self.meta,
            LAST_APPLIED,
            encode(&entry.log_id, subject.clone())?,
        );
        let response = match entry.payload {
            EntryPayload::Blank => Response::default(),
            EntryPayload::Normal(request) => {
                self.request_into(&request, &mut batch);
                request.response()
            }
            EntryPayload::Membership(membership) => {
                let stored = StoredMembership::new(Some(entry.log_id), membership);
                batch.put_in(&self.meta, LAST_MEMBERSHIP, encode(&stored, subject)?);
                Response::default()
            }
        };
        Ok((batch, response))
    }

    /// Take a checkpoint into a new snapshot file and make it current;
    /// returns its name and the file at its start. Blocking.
    fn build_snapshot_file(&self) -> Result<(Meta, File), StorageError<NodeId>> {
        let fail = |e: &(dyn std::error::Error + 'static)| {
            storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, e)
        };
        let tmp = self.snapshots.temp_path("tmp");
        let mut file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| fail(&e))?;
        let mut out = BufWriter::new(&mut file);
        let options = CheckpointOptions {
            keep_snapshot: true,
            ..CheckpointOptions::default()
        };
        let held = self.installing.lock().unwrap_or_else(|e| e.into_inner());
        let info = self
            .db
            .checkpoint_to_writer_with(&mut out, &options)
            .map_err(|e| fail(&e))?;
        drop(held);
        // The applied id and membership as of the checkpoint's sequence
        // number: exactly the state it holds, whatever was applied since.
        let view = info
            .snapshot
            .ok_or_else(|| fail(&std::io::Error::other("checkpoint kept no snapshot")))?;
        let view = view.keyspace(&self.meta);
        let get = |key: &[u8]| view.get(key).map_err(|e| fail(&e));
        if get(INSTALLING)?.is_some() {
            // An install failed in this process and left its marker: the
            // state machine is the next open's to finish, not to snapshot.
            return Err(fail(&std::io::Error::other(
                "a snapshot install is unfinished (it is finished at the next open)",
            )));
        }
        let last_log_id: Option<LogId<NodeId>> = match get(LAST_APPLIED)? {
            Some(v) => Some(decode(&v, ErrorSubject::Snapshot(None))?),
            None => None,
        };
        let last_membership = match get(LAST_MEMBERSHIP)? {
            Some(v) => decode(&v, ErrorSubject::Snapshot(None))?,
            None => StoredMembership::default(),
        };
        let snapshot_id = match &last_log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, info.sequence),
            None => format!("--{}", info.sequence),
        };
        let meta = Meta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        write_trailer(&mut out, &meta).map_err(|e| fail(&e))?;
        out.flush().map_err(|e| fail(&e))?;
        drop(out);
        file.sync_all().map_err(|e| fail(&e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| fail(&e))?;
        // The applies the snapshot holds are not synced (module doc): they
        // must be durable before the snapshot is, or a crash could leave a
        // current snapshot newer than the recovered state machine, which
        // openraft's restart does not allow (its snapshot must not be past
        // the committed id it derives from the last applied one). strata's
        // checkpoint syncs the WAL up to its sequence number already (its
        // capture takes the WAL's synced end); this sync says so here
        // rather than leaning on that detail, for one fsync per snapshot.
        self.db.flush_wal(true).map_err(|e| fail(&e))?;
        // The handle stays valid whether the file becomes current or not.
        self.snapshots.publish(&tmp, &meta).map_err(|e| fail(&e))?;
        Ok((meta, file))
    }

    /// Replace the state machine with the snapshot in `received` (named
    /// `meta`) and make it the current snapshot. Blocking.
    ///
    /// The steps, and what a crash at each leaves (docs/design/raft.md,
    /// "Snapshots"):
    /// 1. Copy `received` to a file of ours, fsync it, check its trailer
    ///    names `meta`, and stage it as `installing.snapshot` (renamed,
    ///    the directory synced). A crash: the old state machine; the
    ///    staged file is removed at the next open (no marker).
    /// 2. [`restore_staged`](Self::restore_staged): restore its
    ///    checkpoint beside the database and check it is the snapshot's
    ///    state machine. A failure here leaves the old state machine and
    ///    log, as a crash does.
    /// 3. A synced write of the marker `INSTALLING = meta` in `sm_meta`.
    ///    From here the install is the next open's to finish if a crash
    ///    stops it, whatever state `sm_data` is in, and the log may be
    ///    purged up to the snapshot.
    /// 4. [`finish_install`](Self::finish_install): replace `sm_data` by
    ///    the snapshot's, in one ingestion; then one synced batch
    ///    replacing `sm_meta` by the snapshot's last applied id and
    ///    membership, which removes the marker; then publish the staged
    ///    file as the current snapshot. A crash before the publish is
    ///    durable leaves the staged file and no marker: the next open
    ///    publishes it, since it names the recovered last applied id.
    fn install_snapshot_file(
        &self,
        meta: &Meta,
        mut received: File,
    ) -> Result<(), StorageError<NodeId>> {
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let fail = |e: &(dyn std::error::Error + 'static)| {
            storage_error(subject.clone(), ErrorVerb::Write, e)
        };
        // Our own copy: the received file may be anyone's (openraft hands
        // over the box begin_receiving_snapshot gave, or another), and
        // it becomes the current snapshot once installed.
        let tmp = self.snapshots.temp_path("tmp");
        let copied = (|| {
            let mut copy = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            received.seek(SeekFrom::Start(0))?;
            std::io::copy(&mut received, &mut copy)?;
            copy.sync_all()?;
            let (named, _) = read_trailer(&mut copy)?;
            if named != *meta {
                return Err(std::io::Error::other(format!(
                    "snapshot file names {named}, openraft installs {meta}"
                )));
            }
            self.snapshots.stage(&tmp)
        })();
        if let Err(e) = copied {
            // Best effort: what is left is removed at the next open anyway.
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(&e));
        }

        // Restored and checked before the marker: once the marker is
        // durable the log may be purged up to the snapshot, and the next
        // open must be able to finish the install from the staged file.
        // A stream that does not restore (openraft's chunks carry no
        // checksum) or a state machine that is not the snapshot's fails
        // here, with the old state machine and log intact.
        let restored = self.restore_staged(meta)?;
        let result = (|| {
            let _held = self.installing.lock().unwrap_or_else(|e| e.into_inner());
            let marker = encode(meta, subject.clone())?;
            self.meta
                .put_opt(INSTALLING, marker, &synced())
                .map_err(|e| fail(&e))?;
            // The next open finishes the install: the log may be purged
            // up to the snapshot now (a purge waits for this:
            // `purge_floor`).
            self.floor.set_applied(meta.last_log_id);
            self.finish_install(meta, &restored)
        })();
        drop(restored);
        result
    }

    /// Install the staged snapshot `meta`, whose marker is durable: steps
    /// 2 and 4 of [`install_snapshot_file`](Self::install_snapshot_file),
    /// what an open does after a crash came during them. Each step may be
    /// redone: `sm_data` is replaced whole, and `sm_meta` is written only
    /// once `sm_data` is the snapshot's. Blocking.
    fn install_staged(&self, meta: &Meta) -> Result<(), StorageError<NodeId>> {
        let restored = self.restore_staged(meta)?;
        self.finish_install(meta, &restored)
    }

    /// Restore the staged snapshot `meta`'s checkpoint beside the database
    /// (on disk, not in memory) and check it holds the state machine
    /// applied up to `meta`'s last log id.
    fn restore_staged(&self, meta: &Meta) -> Result<Restored, StorageError<NodeId>> {
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let fail = |e: &(dyn std::error::Error + 'static)| {
            storage_error(subject.clone(), ErrorVerb::Write, e)
        };
        let Some((named, stream_len, mut file)) =
            self.snapshots.open_staged().map_err(|e| fail(&e))?
        else {
            return Err(fail(&std::io::Error::other(format!(
                "the state machine is installing snapshot {meta}, but {} is gone",
                self.snapshots.staged_path().display()
            ))));
        };
        if named != *meta {
            return Err(fail(&std::io::Error::other(format!(
                "the state machine is installing snapshot {meta}, but {} holds {named}",
                self.snapshots.staged_path().display()
            ))));
        }
        let dir = self.snapshots.temp_path("install");
        let source = (|| {
            file.seek(SeekFrom::Start(0)).map_err(|e| fail(&e))?;
            let stream = BufReader::new((&mut file).take(stream_len));
            strata::install_checkpoint(stream, &dir).map_err(|e| fail(&e))?;
            let source = Db::open_read_only(&dir, Options::default()).map_err(|e| fail(&e))?;
            let stored = source
                .get_in(SM_META_KEYSPACE, LAST_APPLIED)
                .map_err(|e| fail(&e))?;
            let stored: Option<LogId<NodeId>> = match stored {
                Some(v) => Some(decode(&v, subject.clone())?),
                None => None,
            };
            if stored != meta.last_log_id {
                return Err(fail(&std::io::Error::other(format!(
                    "snapshot {meta} holds a state machine applied up to {stored:?}"
                ))));
            }
            Ok(source)
        })();
        match source {
            Ok(source) => Ok(Restored {
                source: Some(source),
                dir,
            }),
            Err(e) => {
                // Best effort: an open removes it anyway.
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// With the marker durable and the snapshot restored into `source`:
    /// replace `sm_data` by the snapshot's in one ingestion, then
    /// `sm_meta` (the marker goes) in one synced batch, then publish the
    /// staged file.
    fn finish_install(&self, meta: &Meta, restored: &Restored) -> Result<(), StorageError<NodeId>> {
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let fail = |e: &(dyn std::error::Error + 'static)| {
            storage_error(subject.clone(), ErrorVerb::Write, e)
        };
        let snapshot_bytes = restored.bytes().map_err(|e| fail(&e))?;
        let table_bytes = install_table_bytes(self.install_table_bytes, snapshot_bytes);
        replace_data(&self.db, &self.data, restored.source(), table_bytes).map_err(|e| fail(&e))?;

        // sm_data is the snapshot's: now its last applied id and
        // membership, and the marker goes, in one synced batch.
        let mut batch = WriteBatch::new();
        batch.delete_prefix_in(&self.meta, b"");
        if let Some(id) = &meta.last_log_id {
            batch.put_in(&self.meta, LAST_APPLIED, encode(id, subject.clone())?);
        }
        let membership = encode(&meta.last_membership, subject.clone())?;
        batch.put_in(&self.meta, LAST_MEMBERSHIP, membership);
        self.db.write_opt(batch, &synced()).map_err(|e| fail(&e))?;
        self.snapshots
            .publish(&self.snapshots.staged_path(), meta)
            .map_err(|e| fail(&e))?;
        Ok(())
    }
}

/// A staged snapshot restored beside the database, open read-only; the
/// view is closed and its directory removed when this is dropped.
struct Restored {
    /// `Some` until dropped.
    source: Option<ReadOnlyDb>,
    dir: PathBuf,
}

impl Restored {
    fn source(&self) -> &ReadOnlyDb {
        self.source
            .as_ref()
            .expect("a restored snapshot's view lives until it is dropped")
    }

    /// The bytes of the restored checkpoint's files: a bound on its data
    /// keyspace's (the checkpoint holds every keyspace, the log too).
    fn bytes(&self) -> std::io::Result<u64> {
        let mut total = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let metadata = entry?.metadata()?;
            if metadata.is_file() {
                total += metadata.len();
            }
        }
        Ok(total)
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        drop(self.source.take());
        // Best effort: an open removes it anyway (`SnapshotDir::open`).
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A write that must be durable before the install goes on.
fn synced() -> WriteOptions {
    WriteOptions {
        sync: true,
        ..WriteOptions::default()
    }
}

/// Run blocking snapshot work off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError<NodeId>> + Send + 'static,
) -> Result<T, StorageError<NodeId>> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, &e))?
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let store = self.store.clone();
        let (meta, file) = blocking(move || store.build_snapshot_file()).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<Applied, StorageError<NodeId>> {
        self.read_applied()
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            let (batch, response) = self.entry_batch(entry)?;
            // Not synced: the next synced write makes it durable (module
            // doc); openraft re-applies from the log what a crash loses.
            self.db
                .write_async(batch, &WriteOptions::default())
                .await
                .map_err(|e| storage_error(ErrorSubject::Apply(log_id), ErrorVerb::Write, &e))?;
            self.floor.set_applied(Some(log_id));
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.clone(),
        }
    }

    /// An anonymous file (unlinked at once): whatever becomes of it,
    /// nothing is left in the snapshot directory.
    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<NodeId>> {
        // Before the last chunk makes openraft install and purge at once.
        self.floor.begin_receiving();
        let fail =
            |e: std::io::Error| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, &e);
        let path = self.snapshots.temp_path("tmp");
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(fail)?;
        tokio::fs::remove_file(&path).await.map_err(fail)?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<NodeId>> {
        // Set here too, before anything is awaited: an application may
        // hand openraft a snapshot without begin_receiving_snapshot
        // (`Raft::install_full_snapshot`). That only narrows the window:
        // openraft may run the purge before this (`purge_floor`).
        self.floor.begin_receiving();
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let installed = async {
            snapshot
                .flush()
                .await
                .map_err(|e| storage_error(subject, ErrorVerb::Write, &e))?;
            let file = snapshot.into_std().await;
            let store = self.clone();
            let meta = meta.clone();
            blocking(move || store.install_snapshot_file(&meta, file)).await
        }
        .await;
        match &installed {
            Ok(()) => self.floor.installed(meta.last_log_id),
            // A purge waiting for it fails, unless the marker was durable
            // (then the next open finishes the install, and the purge went
            // on once the marker was written).
            Err(e) => self.floor.install_failed(e.to_string()),
        }
        installed
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self
            .snapshots
            .open_current()
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, &e))?;
        Ok(current.map(|(meta, file)| Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        }))
    }
}
