//! The version set: the current version, the file-number and sequence
//! counters, and the MANIFEST they are logged in.
//!
//! Every change goes through [`VersionSet::log_and_apply`]: the edit is
//! appended to the manifest and synced before the new version is
//! installed, so after a crash the manifest describes either the old or
//! the new version, never a mix.

use super::edit::VersionEdit;
use super::manifest::read_manifest;
use super::{TableFile, TableOpener, Version, NUM_LEVELS};
use crate::error::{Error, Result};
use crate::filename::{
    current_path, manifest_name, manifest_path, parse_checked, parse_file_name, temp_path,
    FileKind, MAX_FILE_NUMBER,
};
use crate::fs::{FileSystem, WritableFile};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_sstable::SeqNo;

/// A manifest larger than this is rewritten as one snapshot edit in a
/// fresh file, so replay on open stays quick.
const MANIFEST_ROLLOVER_BYTES: u64 = 64 << 20;

pub(crate) struct VersionSet {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    opener: TableOpener,
    current: Arc<Version>,
    next_file_number: u64,
    log_number: u64,
    last_sequence: SeqNo,
    manifest: Option<strata_wal::Writer<Box<dyn WritableFile>>>,
    manifest_number: u64,
    /// The manifest `recover` read (it then continues in a fresh one):
    /// what an error about the recovered state names.
    recovered_from: Option<PathBuf>,
    /// Set when a manifest write failed: the manifest's tail is unknown, so
    /// nothing more may be logged to it.
    poisoned: bool,
}

impl VersionSet {
    /// A fresh, empty database: writes the first manifest and CURRENT.
    pub fn create(opener: TableOpener) -> Result<VersionSet> {
        let mut set = VersionSet::empty(opener);
        set.next_file_number = 1;
        set.write_new_manifest()?;
        Ok(set)
    }

    /// Load the live version from CURRENT and the manifest it names, open
    /// every live table, then continue in a fresh manifest.
    pub fn recover(opener: TableOpener) -> Result<VersionSet> {
        let mut set = VersionSet::empty(opener);
        let (path, data) = read_current_manifest(&*set.fs, &set.dir)?;
        let contents = read_manifest(&path, &data)?;
        set.recovered_from = Some(path.clone());

        let mut levels: [Vec<Arc<TableFile>>; NUM_LEVELS] = Default::default();
        for (level, files) in contents.levels.iter().enumerate() {
            for meta in files.values() {
                levels[level].push(set.opener.open(meta.clone(), level)?);
            }
        }
        set.current = Arc::new(Version::from_levels(levels));
        set.log_number = contents.log_number;
        set.last_sequence = contents.last_sequence;
        // Files may exist with numbers the manifest had not yet recorded
        // (created just before a crash): never hand those numbers out
        // again, nor the log number's or a live table's. Every number here
        // is at most MAX_FILE_NUMBER (checked when read), so `+ 1` cannot
        // wrap.
        let mut next = contents
            .next_file_number
            .max(contents.log_number + 1)
            .max(contents.max_table_number().map_or(0, |n| n + 1));
        for name in set
            .fs
            .list(&set.dir)
            .map_err(|e| Error::io("list", &set.dir, e))?
        {
            if let Some(n) = parse_checked(&set.dir, &name)?.and_then(FileKind::number) {
                next = next.max(n + 1);
            }
        }
        set.next_file_number = next;
        set.write_new_manifest()?;
        Ok(set)
    }

    fn empty(opener: TableOpener) -> VersionSet {
        VersionSet {
            dir: opener.dir.clone(),
            fs: Arc::clone(&opener.fs),
            opener,
            current: Arc::new(Version::default()),
            next_file_number: 1,
            log_number: 0,
            last_sequence: 0,
            manifest: None,
            manifest_number: 0,
            recovered_from: None,
            poisoned: false,
        }
    }

    pub fn current(&self) -> Arc<Version> {
        Arc::clone(&self.current)
    }

    pub fn opener(&self) -> &TableOpener {
        &self.opener
    }

    /// Hand out a file number; an error once the counter has passed
    /// [`MAX_FILE_NUMBER`] (only a manifest recording a counter near the
    /// limit gets there: one file a microsecond takes 146,000 years).
    pub fn new_file_number(&mut self) -> Result<u64> {
        let n = self.next_file_number;
        if n > MAX_FILE_NUMBER {
            // The counter lives in the manifest (while recovering, the
            // one CURRENT names).
            let manifest = match self.manifest_number {
                0 => current_path(&self.dir),
                m => manifest_path(&self.dir, m),
            };
            return Err(Error::corruption(
                manifest,
                0,
                format!(
                    "file numbers are exhausted: the next would be {n}, past {MAX_FILE_NUMBER}"
                ),
            ));
        }
        self.next_file_number = n + 1;
        Ok(n)
    }

    /// WALs below this number are no longer needed.
    pub fn log_number(&self) -> u64 {
        self.log_number
    }

    /// The last sequence number recorded in the manifest.
    pub fn last_sequence(&self) -> SeqNo {
        self.last_sequence
    }

    pub fn manifest_number(&self) -> u64 {
        self.manifest_number
    }

    /// The manifest the live state was recovered from, or the current one
    /// for a database created by this open.
    pub fn recovered_from(&self) -> PathBuf {
        self.recovered_from
            .clone()
            .unwrap_or_else(|| manifest_path(&self.dir, self.manifest_number))
    }

    /// Log `edit` durably, then install the version it produces. `added`
    /// holds the opened tables for the edit's new files.
    pub fn log_and_apply(
        &mut self,
        mut edit: VersionEdit,
        added: &[Arc<TableFile>],
    ) -> Result<Arc<Version>> {
        if self.poisoned {
            return Err(Error::InvalidArgument(
                "the manifest cannot be written after an earlier write to it failed".into(),
            ));
        }
        let log_number = edit
            .log_number
            .unwrap_or(self.log_number)
            .max(self.log_number);
        let last_sequence = edit.last_sequence.unwrap_or(0).max(self.last_sequence);
        edit.log_number = Some(log_number);
        edit.last_sequence = Some(last_sequence);
        edit.next_file_number = Some(self.next_file_number);

        let new_version = self.apply_to_current(&edit, added)?;
        let mut record = Vec::new();
        edit.encode(&mut record);
        let path = manifest_path(&self.dir, self.manifest_number);
        let written = match self.manifest.as_mut() {
            Some(m) => m.add_record(&record).and_then(|_| m.sync()),
            None => Err(std::io::Error::other("no manifest open")),
        };
        if let Err(e) = written {
            self.poisoned = true;
            return Err(Error::io("append to manifest", path, e));
        }
        self.log_number = log_number;
        self.last_sequence = last_sequence;
        self.install(new_version, &edit);

        let manifest_bytes = self.manifest.as_ref().map_or(0, |m| m.offset_written());
        if manifest_bytes > MANIFEST_ROLLOVER_BYTES {
            self.write_new_manifest()?;
        }
        Ok(self.current())
    }

    /// After a failed manifest write, start a fresh manifest describing
    /// the current version (and point CURRENT at it), so edits can be
    /// logged again; nothing to do otherwise. The failed edit's outcome is
    /// unknown (its record may be durable in the old manifest), so the
    /// tables it added stay on disk until this succeeds: from then on the
    /// new manifest alone counts, and they are leftovers (RocksDB
    /// likewise moves to a new manifest when it resumes after a failed
    /// manifest write).
    pub fn rewrite_manifest_if_failed(&mut self) -> Result<()> {
        if self.poisoned {
            self.write_new_manifest()?;
        }
        Ok(())
    }

    fn apply_to_current(&self, edit: &VersionEdit, added: &[Arc<TableFile>]) -> Result<Version> {
        let mut levels: [Vec<Arc<TableFile>>; NUM_LEVELS] =
            std::array::from_fn(|level| self.current.files(level).to_vec());
        for &(level, number) in &edit.deleted_files {
            let before = levels[level].len();
            levels[level].retain(|f| f.meta.number != number);
            if levels[level].len() == before {
                return Err(Error::InvalidArgument(format!(
                    "version edit deletes table {number} which is not live in L{level}"
                )));
            }
        }
        let by_number: HashMap<u64, &Arc<TableFile>> =
            added.iter().map(|f| (f.meta.number, f)).collect();
        for (level, meta) in &edit.new_files {
            let file = by_number.get(&meta.number).ok_or_else(|| {
                Error::InvalidArgument(format!("table {} added without its reader", meta.number))
            })?;
            levels[*level].push(Arc::clone(file));
        }
        Ok(Version::from_levels(levels))
    }

    fn install(&mut self, version: Version, edit: &VersionEdit) {
        for &(level, number) in &edit.deleted_files {
            // A trivial move deletes and re-adds the same table.
            if edit.new_files.iter().any(|(_, m)| m.number == number) {
                continue;
            }
            if let Some(f) = self
                .current
                .files(level)
                .iter()
                .find(|f| f.meta.number == number)
            {
                f.mark_obsolete();
            }
        }
        self.current = Arc::new(version);
    }

    /// Start a fresh manifest holding one edit that describes the whole
    /// current state, point CURRENT at it, and delete the old one.
    fn write_new_manifest(&mut self) -> Result<()> {
        let number = self.new_file_number()?;
        let path = manifest_path(&self.dir, number);
        let mut snapshot = VersionEdit {
            log_number: Some(self.log_number),
            next_file_number: Some(self.next_file_number),
            last_sequence: Some(self.last_sequence),
            ..VersionEdit::default()
        };
        for (level, file) in self.current.all_files() {
            snapshot.new_files.push((level, file.meta.clone()));
        }
        let mut record = Vec::new();
        snapshot.encode(&mut record);
        let file = self
            .fs
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let mut writer = strata_wal::Writer::new(file);
        writer
            .add_record(&record)
            .and_then(|_| writer.sync())
            .map_err(|e| Error::io("write manifest", &path, e))?;
        let temp_number = self.new_file_number()?;
        set_current(&*self.fs, &self.dir, number, temp_number)?;
        let old = std::mem::replace(&mut self.manifest_number, number);
        self.manifest = Some(writer);
        self.poisoned = false;
        if old != 0 {
            // Best effort: a leftover old manifest is removed on next open.
            let _ = self.fs.remove(&manifest_path(&self.dir, old));
        }
        Ok(())
    }
}

/// The path and bytes of the manifest CURRENT names.
pub fn read_current_manifest(fs: &dyn FileSystem, dir: &Path) -> Result<(PathBuf, bytes::Bytes)> {
    let current = current_path(dir);
    let bytes = fs
        .read(&current)
        .map_err(|e| Error::io("read", &current, e))?;
    let name = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .filter(|s| matches!(parse_file_name(s), Some(FileKind::Manifest(_))))
        .ok_or_else(|| Error::corruption(&current, 0, "CURRENT does not name a manifest"))?;
    let path = dir.join(name);
    let data = fs.read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::corruption(&path, 0, "the manifest named by CURRENT is missing")
        } else {
            Error::io("read", &path, e)
        }
    })?;
    Ok((path, data))
}

/// Point CURRENT at manifest `number` atomically: write a temporary file,
/// sync it, rename it over CURRENT, sync the directory.
fn set_current(fs: &dyn FileSystem, dir: &Path, number: u64, temp_number: u64) -> Result<()> {
    let temp = temp_path(dir, temp_number);
    let contents = format!("{}\n", manifest_name(number));
    let mut f = fs
        .create(&temp)
        .map_err(|e| Error::io("create", &temp, e))?;
    f.append(contents.as_bytes())
        .and_then(|_| f.sync())
        .map_err(|e| Error::io("write", &temp, e))?;
    drop(f);
    let current = current_path(dir);
    fs.rename(&temp, &current)
        .map_err(|e| Error::io("rename", &current, e))?;
    fs.sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))
}
