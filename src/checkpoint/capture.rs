//! Capturing what a checkpoint copies: the live tables (pinned), the WAL
//! tail (held open, cut at the length that ends the checkpoint's
//! sequence number), and a fresh MANIFEST and CURRENT made in memory.
//!
//! The copy is what the source database would recover if it crashed at
//! the capture with everything handed to the operating system intact:
//! the same manifest state (taken under the version set's lock) and the
//! same WALs (every one at or above the smallest keyspace log number, the
//! current one up to the bytes written when the capture stopped writes).
//! Opening it runs the ordinary recovery: no format of its own, and the
//! replay's checks apply.
//!
//! Writes stop only while the capture looks (a drain of the WAL buffer,
//! the manifest state, opening the WALs): no table or WAL byte is read
//! under it, so writes pause for a time that grows with the number of
//! files, not the data.

use crate::blob::BlobFile;
use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::filename::{current_path, manifest_name, parse_file_name, FileKind};
use crate::fs::{FileSystem, RandomAccessFile, RandomAccessOptions};
use crate::held_files::FileHold;
use crate::snapshot::Snapshot;
use crate::version::Version;
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use strata_sstable::SeqNo;

/// How many times a capture flushes the memtables and looks again when
/// it finds writes no WAL holds (made with `disable_wal`) before giving
/// up: each look needs a moment with none unflushed.
const UNLOGGED_RETRIES: usize = 3;

/// Bytes read from a source file at a time while copying it.
pub(crate) const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Where a captured file's bytes come from.
pub(crate) enum Source {
    /// A live table or blob file, kept from deletion by the capture's pinned versions:
    /// read (or hard-linked) by its path.
    Table(PathBuf),
    /// A WAL held open since the capture (it may be deleted meanwhile;
    /// the handle keeps its bytes), read up to the captured length.
    Wal(Arc<dyn RandomAccessFile>, PathBuf),
    /// Made by the capture: the MANIFEST and CURRENT.
    Made(Bytes),
}

/// One file of a checkpoint: its name in the copy, its length, and where
/// its bytes come from.
pub(crate) struct CapturedFile {
    pub name: String,
    pub len: u64,
    pub source: Source,
}

impl CapturedFile {
    /// The table's file number, if it is a table (backups share tables).
    pub fn table_number(&self) -> Option<u64> {
        match parse_file_name(&self.name) {
            Some(FileKind::Table(n)) => Some(n),
            _ => None,
        }
    }

    /// The source path for messages (the file made in memory: its name).
    pub fn source_path(&self) -> PathBuf {
        match &self.source {
            Source::Table(p) | Source::Wal(_, p) => p.clone(),
            Source::Made(_) => PathBuf::from(&self.name),
        }
    }

    /// Call `each` with the file's bytes in order, a chunk at a time.
    pub fn read_chunks(
        &self,
        fs: &dyn FileSystem,
        mut each: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let file = match &self.source {
            Source::Made(bytes) => return each(bytes),
            Source::Wal(file, _) => Arc::clone(file),
            Source::Table(path) => fs
                .open_random_access(path, RandomAccessOptions::default())
                .map_err(|e| Error::io("open", path, e))?,
        };
        let mut offset = 0u64;
        while offset < self.len {
            let n = (self.len - offset).min(COPY_CHUNK_BYTES as u64) as usize;
            let chunk = file
                .read_at(offset, n)
                .map_err(|e| Error::io("read", self.source_path(), e))?;
            each(&chunk)?;
            offset += n as u64;
        }
        Ok(())
    }
}

/// What a checkpoint copies, pinned until it is dropped.
pub(crate) struct Capture {
    /// The checkpoint holds exactly the writes at or below this.
    pub sequence: SeqNo,
    /// Tables first, then WALs, then the MANIFEST, CURRENT last.
    pub files: Vec<CapturedFile>,
    /// A snapshot at `sequence`, when asked for.
    pub snapshot: Option<Snapshot>,
    /// Keep every listed table from deletion.
    _versions: Vec<Arc<Version>>,
    /// Keep the listed tables and blob files from a resume's clean-up,
    /// which deletes what the current versions do not name: a compaction
    /// may replace them while they are copied.
    _held: FileHold,
}

impl Capture {
    /// Capture the database. Memtables holding writes no WAL has
    /// (`disable_wal`) are flushed first, as is everything when the live
    /// WALs hold `log_size_for_flush` bytes or more.
    pub fn take(db: &crate::Db, log_size_for_flush: u64, with_snapshot: bool) -> Result<Capture> {
        let inner = db.inner();
        inner.check_bg_error()?;
        if inner.write_path.live_wal_bytes() >= log_size_for_flush {
            db.flush_all()?;
        }
        for _ in 0..UNLOGGED_RETRIES {
            if let Some(capture) = try_take(inner, with_snapshot)? {
                let _ = inner.hook(crate::hook::HookPoint::CheckpointCaptured);
                return Ok(capture);
            }
            db.flush_all()?;
        }
        Err(Error::InvalidArgument(format!(
            "checkpoint of {}: writes with disable_wal kept arriving between {UNLOGGED_RETRIES} flushes; \
             a checkpoint needs a moment when every unlogged write is in a table",
            inner.dir.display()
        )))
    }
}

/// One try: `None` if some memtable holds a write no WAL has.
fn try_take(inner: &Arc<DbInner>, with_snapshot: bool) -> Result<Option<Capture>> {
    let fs = &*inner.fs;
    let dir = &inner.dir;
    inner.with_writes_stopped(|leader| {
        inner.check_bg_error()?;
        let unlogged = inner.all_keyspaces().iter().any(|ks| {
            ks.current_super_version()
                .memtables_oldest_first()
                .iter()
                .any(|m| m.has_unlogged_writes())
        });
        if unlogged {
            return Ok(None);
        }
        let (wal_number, wal_len) = inner
            .write_path
            .wal
            .synced_end()
            .map_err(|e| inner.wal_failure(e))?;
        let sequence = leader.last_seq();
        // Every write at or below `sequence` is inserted (writes are
        // stopped after every sequenced group inserted), so a snapshot
        // registered at it reads exactly the checkpoint's contents.
        let snapshot = with_snapshot.then(|| Snapshot::at(Arc::clone(inner), sequence));

        // Under the version set's lock: no flush installs a new log
        // number (and so deletes the WALs below it) before the WALs the
        // captured state needs are open.
        let mut versions = inner.versions.lock();
        let image = versions.checkpoint_image()?;
        let mut numbers: Vec<u64> = Vec::new();
        for name in fs.list(dir).map_err(|e| Error::io("list", dir, e))? {
            if let Some(FileKind::Wal(n)) = parse_file_name(&name) {
                if n >= image.log_number && n <= wal_number {
                    numbers.push(n);
                }
            }
        }
        numbers.sort_unstable();
        let mut wals = Vec::with_capacity(numbers.len());
        for n in numbers {
            let path = crate::filename::wal_path(dir, n);
            let file = match fs.open_random_access(&path, RandomAccessOptions::default()) {
                Ok(file) => file,
                // Gone since the listing: a WAL made ahead for a rotation
                // that went another way, removed by the thread that made
                // it (writes being stopped does not stop that). A WAL that
                // held records cannot go meanwhile: only one below the log
                // number is deleted, which this lock holds still, or a
                // restart's, which needs the write queue we lead.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && n != wal_number => continue,
                Err(e) => return Err(Error::io("open", &path, e)),
            };
            // Older WALs are synced and cut to their records
            // (`synced_end`): their size is final. One that never held
            // a record (a WAL made ahead for a rotation that went
            // another way, deleted once writes go on) is left out:
            // recovery skips such a WAL too.
            let len = if n == wal_number {
                wal_len
            } else if never_written(&*file).map_err(|e| Error::io("read", &path, e))? {
                continue;
            } else {
                file.size()
            };
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            wals.push(CapturedFile {
                name,
                len,
                source: Source::Wal(file, path),
            });
        }
        drop(versions);

        let mut files = Vec::new();
        // Held before writes go on, as a resume leads the write queue.
        let mut held = inner.held_files.hold([]);
        // The blob files the captured tables list (pinned with them: a
        // blob file lives while a table holding it does). A blob file is
        // complete and never changes once listed; its size is its open
        // reader's (opened with the table), so none is opened here.
        let mut blobs: Vec<Arc<BlobFile>> = image
            .versions
            .iter()
            .flat_map(|v| {
                v.all_files()
                    .flat_map(|(_, t)| t.blob_files().iter().cloned())
                    .collect::<Vec<_>>()
            })
            .collect();
        blobs.sort_unstable_by_key(|b| b.number());
        blobs.dedup_by_key(|b| b.number());
        for blob in blobs {
            held.add(blob.number());
            files.push(CapturedFile {
                name: format!("{:06}.blob", blob.number()),
                len: blob.file_size()?,
                source: Source::Table(blob.path().to_path_buf()),
            });
        }
        for version in &image.versions {
            for (_, table) in version.all_files() {
                held.add(table.meta.number);
                let path = table.path().to_path_buf();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_owned();
                files.push(CapturedFile {
                    name,
                    len: table.meta.size,
                    source: Source::Table(path),
                });
            }
        }
        files.extend(wals);
        let manifest = manifest_bytes(&image.records)?;
        let manifest_name = manifest_name(image.manifest_number);
        files.push(CapturedFile {
            name: manifest_name.clone(),
            len: manifest.len() as u64,
            source: Source::Made(manifest),
        });
        let current = Bytes::from(format!("{manifest_name}\n"));
        files.push(CapturedFile {
            name: current_path(std::path::Path::new(""))
                .to_string_lossy()
                .into_owned(),
            len: current.len() as u64,
            source: Source::Made(current),
        });
        Ok(Some(Capture {
            sequence,
            files,
            snapshot,
            _versions: image.versions,
            _held: held,
        }))
    })
}

/// Whether a WAL holds no record: empty, or zeros where the first
/// fragment's header would be (a record's header always has a nonzero
/// type byte within its first 7 bytes).
fn never_written(file: &dyn RandomAccessFile) -> std::io::Result<bool> {
    let head = file.size().min(strata_wal::HEADER_SIZE as u64) as usize;
    Ok(head == 0 || file.read_at(0, head)?.iter().all(|&b| b == 0))
}

/// The manifest's records framed as the MANIFEST file holds them.
fn manifest_bytes(records: &[Vec<u8>]) -> Result<Bytes> {
    let mut writer = strata_wal::Writer::new(VecSink(Vec::new()));
    for record in records {
        writer
            .add_record(record)
            .map_err(|e| Error::io("frame manifest", "MANIFEST", e))?;
    }
    // As `VersionSet` writes a fresh manifest: the records, then a sync
    // (which frames the sync point a reader checks damage against).
    writer
        .sync()
        .map_err(|e| Error::io("frame manifest", "MANIFEST", e))?;
    Ok(Bytes::from(writer.into_inner().0))
}

/// A log sink into memory.
struct VecSink(Vec<u8>);

impl strata_wal::Sink for VecSink {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
