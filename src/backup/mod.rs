//! Backups (RocksDB's `BackupEngine`): incremental copies of a running
//! database kept in a backup directory, listed, verified, restored and
//! purged. Layout (docs/backup-format.md):
//!
//! ```text
//! <backup dir>/meta/<id>                         backup <id>'s metadata (meta.rs)
//! <backup dir>/shared/<number>_<crc32>_<size>.sst  a table, shared by every backup naming it
//! <backup dir>/private/<id>/<name>               backup <id>'s WALs, MANIFEST and CURRENT
//! ```
//!
//! A backup is a checkpoint (`src/checkpoint/`) written into this layout:
//! the same capture, so it holds exactly the writes at or below its
//! sequence number. Tables are immutable, so one already kept (same
//! number, size and checksum) is not copied again: each backup costs the
//! tables new since the last one, plus its WAL tail and MANIFEST. A
//! backup exists once its metadata file is renamed into `meta/`; what a
//! crash leaves before that is removed when the engine next opens.
//! One engine at a time may use a backup directory (RocksDB's rule too).

mod meta;

use crate::checkpoint::{Capture, CapturedFile, CheckpointOptions};
use crate::error::{Error, Result};
use crate::fs::{FileSystem, OsFileSystem};
use crate::snapshot::Snapshot;
use crate::Db;
use meta::{shared_name, BackupFile, BackupMeta};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A backup's identity: 1 for the first, then counting up.
pub type BackupId = u32;

/// What [`BackupEngine::list`] tells about one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// The backup's id.
    pub id: BackupId,
    /// When it was taken, in seconds since the Unix epoch.
    pub timestamp_secs: u64,
    /// It holds exactly the writes at or below this sequence number.
    pub sequence: u64,
    /// Bytes of its files (shared tables counted in full).
    pub size_bytes: u64,
    /// How many files it has.
    pub file_count: usize,
}

/// Incremental backups of databases into one directory.
pub struct BackupEngine {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    backups: BTreeMap<BackupId, BackupMeta>,
    /// Metadata files that do not read back: verify names the damage; a
    /// delete or purge removes them.
    damaged: BTreeMap<BackupId, (PathBuf, String)>,
}

impl BackupEngine {
    /// Open (creating it if needed) the backup directory `dir` on the OS
    /// filesystem.
    pub fn open(dir: impl AsRef<Path>) -> Result<BackupEngine> {
        BackupEngine::open_with(dir, Arc::new(OsFileSystem))
    }

    /// Open `dir` through `fs`. Reads every backup's metadata, and removes
    /// what an interrupted backup or delete left: files of backups with
    /// no metadata, shared tables no backup names, temporary files.
    pub fn open_with(dir: impl AsRef<Path>, fs: Arc<dyn FileSystem>) -> Result<BackupEngine> {
        let dir = dir.as_ref().to_path_buf();
        for sub in ["meta", "shared", "private"] {
            let d = dir.join(sub);
            fs.create_dir_all(&d)
                .map_err(|e| Error::io("create directory", &d, e))?;
        }
        let mut engine = BackupEngine {
            dir,
            fs,
            backups: BTreeMap::new(),
            damaged: BTreeMap::new(),
        };
        let meta_dir = engine.dir.join("meta");
        for name in engine.list_dir(&meta_dir)? {
            let path = meta_dir.join(&name);
            let Ok(id) = name.parse::<BackupId>() else {
                // A metadata file being written when a backup stopped.
                if name.ends_with(".tmp") {
                    let _ = engine.fs.remove(&path);
                }
                continue;
            };
            let read = engine
                .fs
                .read(&path)
                .map_err(|e| Error::io("read", &path, e))
                .and_then(|data| BackupMeta::decode(&path, &data));
            match read {
                Ok(meta) if meta.id == id => {
                    engine.backups.insert(id, meta);
                }
                Ok(meta) => {
                    let reason = format!("the file of backup {id} describes backup {}", meta.id);
                    engine.damaged.insert(id, (path, reason));
                }
                Err(e) => {
                    engine.damaged.insert(id, (path, e.to_string()));
                }
            }
        }
        engine.collect_garbage()?;
        Ok(engine)
    }

    /// Back up `db`: a checkpoint of it (exactly the writes at or below
    /// one sequence number, taken while writes go on) whose tables not
    /// already kept are copied into `shared/`, the rest into
    /// `private/<id>/`. Returns the new backup's description.
    pub fn create_backup(&mut self, db: &Db) -> Result<BackupInfo> {
        self.create_backup_with(db, &CheckpointOptions::default())
            .map(|(info, _)| info)
    }

    /// [`create_backup`](Self::create_backup), taking the checkpoint with
    /// `options`; with [`CheckpointOptions::keep_snapshot`], also returns
    /// a snapshot of `db` at the backup's sequence number.
    pub fn create_backup_with(
        &mut self,
        db: &Db,
        options: &CheckpointOptions,
    ) -> Result<(BackupInfo, Option<Snapshot>)> {
        let _span = tracing::info_span!("create_backup", dir = %self.dir.display()).entered();
        let id = self
            .backups
            .keys()
            .chain(self.damaged.keys())
            .max()
            .map_or(Ok(1), |&last| {
                last.checked_add(1)
                    .ok_or_else(|| Error::InvalidArgument("backup ids are exhausted".into()))
            })?;
        let capture = Capture::take(db, options.log_size_for_flush, options.keep_snapshot)?;
        let source_fs = &*db.inner().fs;
        let private = self.dir.join(format!("private/{id}"));
        self.fs
            .create_dir_all(&private)
            .map_err(|e| Error::io("create directory", &private, e))?;
        let mut files = Vec::with_capacity(capture.files.len());
        let mut copied_bytes = 0u64;
        let shared: BTreeSet<String> = self
            .list_dir(&self.dir.join("shared"))?
            .into_iter()
            .collect();
        for file in &capture.files {
            let (kept, copied) = match file.table_number() {
                Some(number) => self.keep_table(source_fs, file, number, &shared)?,
                None => {
                    let stored = format!("private/{id}/{}", file.name);
                    let crc32 = self.copy_in(source_fs, file, &self.dir.join(&stored))?;
                    let kept = BackupFile {
                        stored,
                        size: file.len,
                        crc32,
                        name: file.name.clone(),
                    };
                    (kept, true)
                }
            };
            if copied {
                copied_bytes += kept.size;
            }
            files.push(kept);
        }
        for d in [&private, &self.dir.join("shared")] {
            self.fs
                .sync_dir(d)
                .map_err(|e| Error::io("sync directory", d, e))?;
        }
        let meta = BackupMeta {
            id,
            timestamp_secs: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            sequence: capture.sequence,
            files,
        };
        self.write_meta(&meta)?;
        let info = info_of(&meta);
        tracing::info!(
            id,
            sequence = meta.sequence,
            files = info.file_count,
            copied_bytes,
            "backup created"
        );
        self.backups.insert(id, meta);
        Ok((info, capture.snapshot))
    }

    /// Every readable backup, oldest first.
    pub fn list(&self) -> Vec<BackupInfo> {
        self.backups.values().map(info_of).collect()
    }

    /// Check backup `id`: every file is there with its size and checksum.
    /// A damaged or missing file is an [`Error::Corruption`] naming it.
    pub fn verify(&self, id: BackupId) -> Result<()> {
        let meta = self.meta(id)?;
        for file in &meta.files {
            let path = self.dir.join(&file.stored);
            let crc = self.checksum(&path, file.size)?;
            if crc != file.crc32 {
                return Err(Error::corruption(
                    &path,
                    0,
                    format!(
                        "checksum mismatch: backup {id} records crc32 {:08x}, the file gives {crc:08x}",
                        file.crc32
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Restore backup `id` into `dir` (missing or empty), checking every
    /// file's checksum as it is copied; CURRENT is written last, so a
    /// restore that fails leaves no database (and its files are removed).
    pub fn restore(&self, id: BackupId, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let meta = self.meta(id)?;
        if self.fs.exists(dir) {
            let names = self.fs.list(dir).map_err(|e| Error::io("list", dir, e))?;
            if !names.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "{} is not empty: a backup is restored into an empty directory",
                    dir.display()
                )));
            }
        }
        self.fs
            .create_dir_all(dir)
            .map_err(|e| Error::io("create directory", dir, e))?;
        let mut written = Vec::new();
        let result = meta.files.iter().try_for_each(|file| {
            let to = dir.join(&file.name);
            written.push(to.clone());
            self.restore_file(id, file, &to)
        });
        let result = result.and_then(|()| {
            self.fs
                .sync_dir(dir)
                .map_err(|e| Error::io("sync directory", dir, e))
        });
        if result.is_err() {
            for path in written.iter().rev() {
                let _ = self.fs.remove(path);
            }
        }
        result
    }

    /// Delete every backup but the newest `keep`.
    pub fn purge_old_backups(&mut self, keep: usize) -> Result<()> {
        let ids: Vec<BackupId> = self.backups.keys().copied().collect();
        let excess = ids.len().saturating_sub(keep);
        for &id in &ids[..excess] {
            self.delete_backup(id)?;
        }
        Ok(())
    }

    /// Delete backup `id` (readable or damaged), and the shared tables no
    /// other backup names.
    pub fn delete_backup(&mut self, id: BackupId) -> Result<()> {
        if !self.backups.contains_key(&id) && !self.damaged.contains_key(&id) {
            return Err(self.no_such_backup(id));
        }
        // The backup ends when its metadata goes; the rest is garbage a
        // crash may leave, which the next open removes.
        let path = self.dir.join(format!("meta/{id}"));
        self.fs
            .remove(&path)
            .map_err(|e| Error::io("remove", &path, e))?;
        let meta_dir = self.dir.join("meta");
        self.fs
            .sync_dir(&meta_dir)
            .map_err(|e| Error::io("sync directory", &meta_dir, e))?;
        self.backups.remove(&id);
        self.damaged.remove(&id);
        self.collect_garbage()
    }

    fn meta(&self, id: BackupId) -> Result<&BackupMeta> {
        if let Some((path, reason)) = self.damaged.get(&id) {
            return Err(Error::corruption(path, 0, reason.clone()));
        }
        self.backups.get(&id).ok_or_else(|| self.no_such_backup(id))
    }

    fn no_such_backup(&self, id: BackupId) -> Error {
        Error::InvalidArgument(format!("no backup {id} in {}", self.dir.display()))
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        self.fs.list(dir).map_err(|e| Error::io("list", dir, e))
    }

    /// Keep table `file` in `shared/` (whose names are `shared`): reuse
    /// the file kept under its number, checksum and size if there is one
    /// (reading the source to learn its checksum), else copy it. Returns
    /// whether it was copied.
    fn keep_table(
        &self,
        source_fs: &dyn FileSystem,
        file: &CapturedFile,
        number: u64,
        shared: &BTreeSet<String>,
    ) -> Result<(BackupFile, bool)> {
        let prefix = format!("{number:06}_");
        let suffix = format!("_{}.sst", file.len);
        let candidates: Vec<&String> = shared
            .range(prefix.clone()..)
            .take_while(|n| n.starts_with(&prefix))
            .filter(|n| n.ends_with(&suffix))
            .collect();
        if !candidates.is_empty() {
            let mut hasher = crc32fast::Hasher::new();
            file.read_chunks(source_fs, |chunk| {
                hasher.update(chunk);
                Ok(())
            })?;
            let crc32 = hasher.finalize();
            let stored = shared_name(number, crc32, file.len);
            if candidates.iter().any(|n| format!("shared/{n}") == stored) {
                let kept = BackupFile {
                    stored,
                    size: file.len,
                    crc32,
                    name: file.name.clone(),
                };
                return Ok((kept, false));
            }
        }
        // Copied under a temporary name, then renamed to the name its
        // checksum gives: a shared file is whole or absent.
        let temp = self.dir.join(format!("shared/{number:06}.sst.tmp"));
        let crc32 = self.copy_in(source_fs, file, &temp)?;
        let stored = shared_name(number, crc32, file.len);
        let to = self.dir.join(&stored);
        self.fs
            .rename(&temp, &to)
            .map_err(|e| Error::io("rename", &temp, e))?;
        let kept = BackupFile {
            stored,
            size: file.len,
            crc32,
            name: file.name.clone(),
        };
        Ok((kept, true))
    }

    /// Copy `file` from the source database into `to`, synced; returns
    /// its checksum.
    fn copy_in(&self, source_fs: &dyn FileSystem, file: &CapturedFile, to: &Path) -> Result<u32> {
        let mut out = self.fs.create(to).map_err(|e| Error::io("create", to, e))?;
        let mut hasher = crc32fast::Hasher::new();
        file.read_chunks(source_fs, |chunk| {
            hasher.update(chunk);
            out.append(chunk).map_err(|e| Error::io("append", to, e))
        })?;
        out.sync().map_err(|e| Error::io("sync", to, e))?;
        Ok(hasher.finalize())
    }

    /// Copy one backup file to `to`, checking its size and checksum.
    fn restore_file(&self, id: BackupId, file: &BackupFile, to: &Path) -> Result<()> {
        let from = self.dir.join(&file.stored);
        let data = self
            .fs
            .read(&from)
            .map_err(|e| Error::io("read", &from, e))?;
        if data.len() as u64 != file.size || crc32fast::hash(&data) != file.crc32 {
            return Err(Error::corruption(
                &from,
                0,
                format!(
                    "backup {id} records {} bytes with crc32 {:08x}; the file does not match",
                    file.size, file.crc32
                ),
            ));
        }
        let mut out = self.fs.create(to).map_err(|e| Error::io("create", to, e))?;
        out.append(&data)
            .and_then(|()| out.sync())
            .map_err(|e| Error::io("write", to, e))
    }

    /// The checksum of the `size` bytes of `path`; a file of another size
    /// is corruption naming it.
    fn checksum(&self, path: &Path, size: u64) -> Result<u32> {
        let data = self.fs.read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::corruption(path, 0, "the file is missing")
            } else {
                Error::io("read", path, e)
            }
        })?;
        if data.len() as u64 != size {
            return Err(Error::corruption(
                path,
                data.len() as u64,
                format!(
                    "the file has {} bytes; the backup records {size}",
                    data.len()
                ),
            ));
        }
        Ok(crc32fast::hash(&data))
    }

    /// Write `meta` as `meta/<id>`: a temporary file, synced, renamed.
    fn write_meta(&self, meta: &BackupMeta) -> Result<()> {
        let meta_dir = self.dir.join("meta");
        let temp = meta_dir.join(format!("{}.tmp", meta.id));
        let path = meta_dir.join(meta.id.to_string());
        let mut out = self
            .fs
            .create(&temp)
            .map_err(|e| Error::io("create", &temp, e))?;
        out.append(meta.encode().as_bytes())
            .and_then(|()| out.sync())
            .map_err(|e| Error::io("write", &temp, e))?;
        drop(out);
        self.fs
            .rename(&temp, &path)
            .map_err(|e| Error::io("rename", &temp, e))?;
        self.fs
            .sync_dir(&meta_dir)
            .map_err(|e| Error::io("sync directory", &meta_dir, e))
    }

    /// Remove what no backup names: private directories of backups that
    /// do not exist, and (unless a metadata file is damaged, when what it
    /// names is unknown) shared tables and temporary files.
    fn collect_garbage(&self) -> Result<()> {
        let private = self.dir.join("private");
        for name in self.list_dir(&private)? {
            let live = name
                .parse::<BackupId>()
                .is_ok_and(|id| self.backups.contains_key(&id) || self.damaged.contains_key(&id));
            if !live {
                let d = private.join(&name);
                for file in self.list_dir(&d).unwrap_or_default() {
                    let _ = self.fs.remove(&d.join(file));
                }
                let _ = self.fs.remove_dir(&d);
            }
        }
        if !self.damaged.is_empty() {
            return Ok(());
        }
        let named: BTreeSet<&str> = self
            .backups
            .values()
            .flat_map(|m| m.files.iter().map(|f| f.stored.as_str()))
            .collect();
        let shared = self.dir.join("shared");
        for name in self.list_dir(&shared)? {
            if !named.contains(format!("shared/{name}").as_str()) {
                let _ = self.fs.remove(&shared.join(&name));
            }
        }
        Ok(())
    }
}

fn info_of(meta: &BackupMeta) -> BackupInfo {
    BackupInfo {
        id: meta.id,
        timestamp_secs: meta.timestamp_secs,
        sequence: meta.sequence,
        size_bytes: meta.files.iter().map(|f| f.size).sum(),
        file_count: meta.files.len(),
    }
}
