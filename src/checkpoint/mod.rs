//! Checkpoints: an openable, consistent copy of a running database at one
//! sequence number (RocksDB's `Checkpoint::CreateCheckpoint`), written to
//! a directory ([`Db::checkpoint`]) or as one byte stream
//! ([`Db::checkpoint_to_writer`], installed by [`install_checkpoint`]).
//!
//! How (see `capture.rs`): writes stop for a moment while the WAL buffer
//! is drained, the live state of every keyspace is taken from the version
//! set and the WALs it still needs are opened; then writes go on while
//! the tables are hard-linked (copied across devices) and the WAL tail,
//! a fresh MANIFEST and CURRENT are written. The copy holds exactly the
//! writes at or below the sequence number returned, and opening it runs
//! the ordinary crash recovery over it.
//!
//! Unlike RocksDB's default (`log_size_for_flush = 0`: flush first), no
//! memtable is flushed unless [`CheckpointOptions::log_size_for_flush`]
//! asks, so a checkpoint costs a time that grows with the number of files,
//! not the data: the WAL tail holds what the memtables do. A memtable
//! holding writes made with `disable_wal` is flushed first (no WAL has
//! them).

mod capture;
mod stream;
mod to_dir;

pub(crate) use capture::{Capture, CapturedFile};

use crate::error::Result;
use crate::fs::{FileSystem, OsFileSystem};
use crate::snapshot::Snapshot;
use crate::Db;
use std::io::{Read, Write};
use std::path::Path;
use strata_sstable::SeqNo;

/// How a checkpoint is taken.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// Flush every memtable first when the live WALs hold this many bytes
    /// or more (RocksDB's `log_size_for_flush`; `0`: always flush).
    /// Default: `u64::MAX`, never: the WAL tail is copied instead, so the
    /// checkpoint's cost follows the number of files, not the data.
    pub log_size_for_flush: u64,
    /// Return a [`Snapshot`] of the source at the checkpoint's sequence
    /// number in [`CheckpointInfo::snapshot`] (to compare with, or to
    /// follow the changes made after it). Default: false.
    pub keep_snapshot: bool,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions {
            log_size_for_flush: u64::MAX,
            keep_snapshot: false,
        }
    }
}

/// What a checkpoint holds.
#[derive(Debug)]
pub struct CheckpointInfo {
    /// The copy holds exactly the writes at or below this sequence number.
    pub sequence: SeqNo,
    /// Files in the copy (tables, WALs, MANIFEST, CURRENT).
    pub files: usize,
    /// Tables hard-linked rather than copied (directory checkpoints).
    pub tables_linked: usize,
    /// Bytes written to the stream (streamed checkpoints).
    pub stream_bytes: u64,
    /// A snapshot at `sequence`, when [`CheckpointOptions::keep_snapshot`]
    /// asked for one.
    pub snapshot: Option<Snapshot>,
}

impl Db {
    /// Write an openable copy of the database, as of one sequence number,
    /// into the new directory `dir` (which must not exist), while writes
    /// go on. See [`checkpoint_with`](Self::checkpoint_with).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = strata::Db::open(dir.path().join("db"), strata::Options::default()).unwrap();
    /// db.put(b"k", b"v")?;
    /// db.checkpoint(dir.path().join("copy"))?;
    /// let copy = strata::Db::open(dir.path().join("copy"), strata::Options::default())?;
    /// assert_eq!(copy.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<CheckpointInfo> {
        self.checkpoint_with(dir, &CheckpointOptions::default())
    }

    /// [`checkpoint`](Self::checkpoint) with options. The copy's tables
    /// are hard links where the filesystem allows (the same device),
    /// copies otherwise; it goes into `<dir>.tmp` first and is renamed to
    /// `dir` once complete. An existing `dir`, or a `<dir>.tmp` left by an
    /// interrupted checkpoint, is refused with
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    pub fn checkpoint_with(
        &self,
        dir: impl AsRef<Path>,
        options: &CheckpointOptions,
    ) -> Result<CheckpointInfo> {
        let dir = dir.as_ref();
        let fs = &*self.inner().fs;
        let _span = tracing::info_span!("checkpoint", dir = %dir.display()).entered();
        to_dir::check_target(fs, dir)?;
        let capture = Capture::take(self, options.log_size_for_flush, options.keep_snapshot)?;
        let tables_linked = to_dir::write_dir(fs, &capture.files, dir)?;
        tracing::info!(
            sequence = capture.sequence,
            files = capture.files.len(),
            tables_linked,
            "checkpoint written"
        );
        Ok(CheckpointInfo {
            sequence: capture.sequence,
            files: capture.files.len(),
            tables_linked,
            stream_bytes: 0,
            snapshot: capture.snapshot,
        })
    }

    /// Write a checkpoint to `out` as one byte stream
    /// (docs/checkpoint-stream.md): every file with its name, length and
    /// checksum, read straight from the database's files, with no
    /// temporary directory. [`install_checkpoint`] writes it out.
    pub fn checkpoint_to_writer(&self, out: &mut impl Write) -> Result<CheckpointInfo> {
        self.checkpoint_to_writer_with(out, &CheckpointOptions::default())
    }

    /// [`checkpoint_to_writer`](Self::checkpoint_to_writer) with options.
    pub fn checkpoint_to_writer_with(
        &self,
        out: &mut impl Write,
        options: &CheckpointOptions,
    ) -> Result<CheckpointInfo> {
        let capture = Capture::take(self, options.log_size_for_flush, options.keep_snapshot)?;
        let sent = stream::write_stream(&*self.inner().fs, &capture, out)?;
        Ok(CheckpointInfo {
            sequence: capture.sequence,
            files: sent.files,
            tables_linked: 0,
            stream_bytes: sent.bytes,
            snapshot: capture.snapshot,
        })
    }
}

/// Write the checkpoint stream read from `input` into `dir` (missing or
/// empty) on the OS filesystem, checking every file's checksum and the
/// stream's. CURRENT is written last, only once everything checked out;
/// a stream that fails leaves no file behind. Returns what was installed
/// (`snapshot` is `None`).
pub fn install_checkpoint(input: impl Read, dir: impl AsRef<Path>) -> Result<CheckpointInfo> {
    install_checkpoint_with(&OsFileSystem, input, dir)
}

/// [`install_checkpoint`] through `fs`.
pub fn install_checkpoint_with(
    fs: &dyn FileSystem,
    input: impl Read,
    dir: impl AsRef<Path>,
) -> Result<CheckpointInfo> {
    let installed = stream::install_stream(fs, input, dir.as_ref())?;
    Ok(CheckpointInfo {
        sequence: installed.sequence,
        files: installed.files,
        tables_linked: 0,
        stream_bytes: 0,
        snapshot: None,
    })
}
