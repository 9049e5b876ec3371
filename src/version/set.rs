//! The version set: the current version, the file-number and sequence
//! counters, and the MANIFEST they are logged in.
//!
//! Every change goes through [`VersionSet::log_and_apply`]: the edit is
//! appended to the manifest and synced before the new version is
//! installed, so after a crash the manifest describes either the old or
//! the new version, never a mix.

use super::edit::{VersionEdit, DEFAULT_KEYSPACE_ID};
use super::manifest::{read_manifest, DEFAULT_KEYSPACE_NAME};
use super::{TableFile, TableOpener, Version, NUM_LEVELS};
use crate::error::{Error, Result};
use crate::filename::{
    current_path, manifest_name, manifest_path, parse_checked, parse_file_name, temp_path,
    FileKind, MAX_FILE_NUMBER,
};
use crate::fs::{FileSystem, WritableFile};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_sstable::SeqNo;

/// A manifest larger than this is rewritten as one snapshot edit in a
/// fresh file, so replay on open stays quick.
const MANIFEST_ROLLOVER_BYTES: u64 = 64 << 20;

/// One keyspace's part of the version set: its name, its live tables and
/// its log number.
struct KeyspaceVersions {
    name: String,
    current: Arc<Version>,
    /// WALs below this hold nothing of the keyspace not in its tables.
    log_number: u64,
}

pub(crate) struct VersionSet {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    opener: TableOpener,
    keyspaces: BTreeMap<u32, KeyspaceVersions>,
    next_keyspace_id: u32,
    next_file_number: u64,
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

    /// Load the live versions from CURRENT and the manifest it names, open
    /// every live table, then continue in a fresh manifest.
    pub fn recover(opener: TableOpener) -> Result<VersionSet> {
        let mut set = VersionSet::load(opener)?;
        set.write_new_manifest()?;
        Ok(set)
    }

    /// The version set as the current MANIFEST describes it, changing no
    /// file (a read-only open, `src/read_only.rs`; [`recover`](Self::recover)
    /// then starts a fresh MANIFEST).
    pub fn load(opener: TableOpener) -> Result<VersionSet> {
        let mut set = VersionSet::empty(opener);
        let (path, data) = read_current_manifest(&*set.fs, &set.dir)?;
        let contents = read_manifest(&path, &data)?;
        set.recovered_from = Some(path.clone());

        set.keyspaces.clear();
        for (&id, ks) in &contents.keyspaces {
            let mut levels: [Vec<Arc<TableFile>>; NUM_LEVELS] = Default::default();
            for (level, files) in ks.levels.iter().enumerate() {
                for meta in files.values() {
                    levels[level].push(set.opener.open(meta.clone(), level)?);
                }
            }
            set.keyspaces.insert(
                id,
                KeyspaceVersions {
                    name: ks.name.clone(),
                    current: Arc::new(
                        Version::from_levels(levels).with_blob_garbage(ks.blob_garbage.clone()),
                    ),
                    log_number: ks.log_number,
                },
            );
        }
        set.next_keyspace_id = contents.next_keyspace_id;
        set.last_sequence = contents.last_sequence;
        // Files may exist with numbers the manifest had not yet recorded
        // (created just before a crash): never hand those numbers out
        // again, nor a log number's or a live table's. Every number here
        // is at most MAX_FILE_NUMBER (checked when read), so `+ 1` cannot
        // wrap.
        let max_log_number = contents
            .keyspaces
            .values()
            .map(|ks| ks.log_number)
            .max()
            .unwrap_or(0);
        let mut next = contents
            .next_file_number
            .max(max_log_number + 1)
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
        Ok(set)
    }

    fn empty(opener: TableOpener) -> VersionSet {
        let default = KeyspaceVersions {
            name: DEFAULT_KEYSPACE_NAME.to_owned(),
            current: Arc::new(Version::default()),
            log_number: 0,
        };
        VersionSet {
            dir: opener.dir.clone(),
            fs: Arc::clone(&opener.fs),
            opener,
            keyspaces: BTreeMap::from([(DEFAULT_KEYSPACE_ID, default)]),
            next_keyspace_id: DEFAULT_KEYSPACE_ID + 1,
            next_file_number: 1,
            last_sequence: 0,
            manifest: None,
            manifest_number: 0,
            recovered_from: None,
            poisoned: false,
        }
    }

    /// The live version of keyspace `id` (an empty one if it was
    /// dropped).
    pub fn current(&self, id: u32) -> Arc<Version> {
        self.keyspaces.get(&id).map_or_else(
            || Arc::new(Version::default()),
            |ks| Arc::clone(&ks.current),
        )
    }

    /// The live keyspaces: (id, name).
    pub fn keyspaces(&self) -> impl Iterator<Item = (u32, &str)> {
        self.keyspaces
            .iter()
            .map(|(&id, ks)| (id, ks.name.as_str()))
    }

    /// The numbers of every live table, of every keyspace.
    pub fn live_table_numbers(&self) -> std::collections::HashSet<u64> {
        self.keyspaces
            .values()
            .flat_map(|ks| ks.current.all_files().map(|(_, f)| f.meta.number))
            .collect()
    }

    /// Every blob file a live table of a current version lists.
    pub fn live_blob_numbers(&self) -> std::collections::HashSet<u64> {
        self.keyspaces
            .values()
            .flat_map(|ks| {
                ks.current
                    .all_files()
                    .flat_map(|(_, f)| f.meta.blob_files.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Hand out the id for a new keyspace (recorded in the manifest by
    /// the edit that creates it); an error once ids are exhausted.
    pub fn new_keyspace_id(&mut self) -> Result<u32> {
        let id = self.next_keyspace_id;
        self.next_keyspace_id = id.checked_add(1).ok_or_else(|| {
            Error::InvalidArgument("keyspace ids are exhausted (2^32 were created)".into())
        })?;
        Ok(id)
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

    /// WALs below this number are no longer needed: the smallest log
    /// number of a live keyspace.
    pub fn log_number(&self) -> u64 {
        self.keyspaces
            .values()
            .map(|ks| ks.log_number)
            .min()
            .unwrap_or(0)
    }

    /// Whether any keyspace besides the default one was ever created.
    pub fn had_keyspaces(&self) -> bool {
        self.next_keyspace_id > DEFAULT_KEYSPACE_ID + 1
    }

    /// Keyspace `id`'s log number: WALs below it hold nothing of it that
    /// is not in its tables (`None` if it is not live).
    pub fn keyspace_log_number(&self, id: u32) -> Option<u64> {
        self.keyspaces.get(&id).map(|ks| ks.log_number)
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

    /// Log `edit` durably, then install the version it produces for its
    /// keyspace, which it returns. `added` holds the opened tables for the
    /// edit's new files. An edit about a keyspace that is not live (it
    /// was dropped) fails with [`Error::KeyspaceDropped`] and logs nothing.
    pub fn log_and_apply(
        &mut self,
        edit: VersionEdit,
        added: &[Arc<TableFile>],
    ) -> Result<Arc<Version>> {
        let mut versions = self.log_and_apply_all(edit, added)?;
        Ok(versions.swap_remove(0))
    }

    /// Log `edit` and its keyspace parts as one record, durably, then
    /// install the version each produces: all or none, whatever a crash
    /// interrupts. Returns the new versions, the edit's own keyspace's
    /// first, then its parts' in order. `added` holds the opened tables
    /// for every new file of the edit and its parts.
    pub fn log_and_apply_all(
        &mut self,
        mut edit: VersionEdit,
        added: &[Arc<TableFile>],
    ) -> Result<Vec<Arc<Version>>> {
        if self.poisoned {
            return Err(Error::InvalidArgument(
                "the manifest cannot be written after an earlier write to it failed".into(),
            ));
        }
        if !edit.parts.is_empty() && (edit.create_keyspace.is_some() || edit.drop_keyspace) {
            return Err(Error::InvalidArgument(
                "a keyspace is created or dropped by an edit of its own".into(),
            ));
        }
        let id = edit.keyspace;
        let (base, log_number) = match (&edit.create_keyspace, self.keyspaces.get(&id)) {
            (Some(name), None) => {
                if self.keyspaces.values().any(|ks| &ks.name == name) {
                    return Err(Error::InvalidArgument(format!("keyspace {name:?} exists")));
                }
                edit.next_keyspace_id = Some(self.next_keyspace_id);
                (Arc::new(Version::default()), edit.log_number.unwrap_or(0))
            }
            (Some(name), Some(_)) => {
                return Err(Error::InvalidArgument(format!(
                    "keyspace id {id} for {name:?} is taken"
                )))
            }
            (None, Some(ks)) => (
                Arc::clone(&ks.current),
                edit.log_number.unwrap_or(ks.log_number).max(ks.log_number),
            ),
            (None, None) => {
                return Err(Error::KeyspaceDropped {
                    name: format!("#{id}"),
                })
            }
        };
        let last_sequence = edit.last_sequence.unwrap_or(0).max(self.last_sequence);
        edit.log_number = Some(log_number);
        edit.last_sequence = Some(last_sequence);
        edit.next_file_number = Some(self.next_file_number);
        // Only live keyspaces' log numbers move (one dropped meanwhile is
        // left out), and never back.
        edit.keyspace_log_numbers.retain(|&(other, number)| {
            self.keyspaces
                .get(&other)
                .is_some_and(|ks| other != id && number > ks.log_number)
        });

        // Each keyspace changed: (id, its new version, its log number).
        let mut changed = vec![(id, apply_to(&base, &edit, added)?, log_number)];
        for part in &mut edit.parts {
            let Some(ks) = self.keyspaces.get(&part.keyspace) else {
                return Err(Error::KeyspaceDropped {
                    name: format!("#{}", part.keyspace),
                });
            };
            if changed.iter().any(|(other, _, _)| *other == part.keyspace) {
                return Err(Error::InvalidArgument(format!(
                    "keyspace {} changed twice in one edit",
                    part.keyspace
                )));
            }
            let log_number = part.log_number.unwrap_or(ks.log_number).max(ks.log_number);
            part.log_number = Some(log_number);
            changed.push((
                part.keyspace,
                apply_to(&ks.current, part, added)?,
                log_number,
            ));
        }

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
        self.last_sequence = last_sequence;
        for &(other, number) in &edit.keyspace_log_numbers {
            if let Some(ks) = self.keyspaces.get_mut(&other) {
                ks.log_number = number;
            }
        }
        if edit.drop_keyspace {
            if let Some(ks) = self.keyspaces.remove(&id) {
                for (_, f) in ks.current.all_files() {
                    f.mark_obsolete();
                }
            }
            return Ok(vec![Arc::new(Version::default())]);
        }
        let parts = std::iter::once(&edit).chain(edit.parts.iter());
        let mut installed = Vec::with_capacity(changed.len());
        for (part, (ks_id, version, log_number)) in parts.zip(changed) {
            let version = Arc::new(version);
            let name = match (&part.create_keyspace, self.keyspaces.get(&ks_id)) {
                (Some(name), _) => name.clone(),
                (None, Some(ks)) => {
                    mark_deleted_obsolete(&ks.current, part);
                    ks.name.clone()
                }
                (None, None) => String::new(),
            };
            self.keyspaces.insert(
                ks_id,
                KeyspaceVersions {
                    name,
                    current: Arc::clone(&version),
                    log_number,
                },
            );
            installed.push(version);
        }

        let manifest_bytes = self.manifest.as_ref().map_or(0, |m| m.offset_written());
        if manifest_bytes > MANIFEST_ROLLOVER_BYTES {
            self.write_new_manifest()?;
        }
        Ok(installed)
    }

    /// After a failed manifest write, start a fresh manifest describing
    /// the current versions (and point CURRENT at it), so edits can be
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

    /// Start a fresh manifest describing the whole current state (one
    /// edit with the counters and the default keyspace, then one creating
    /// each other keyspace with its tables), point CURRENT at it, and
    /// delete the old one. The new manifest counts only once CURRENT
    /// names it, after every edit in it is synced.
    fn write_new_manifest(&mut self) -> Result<()> {
        let number = self.new_file_number()?;
        let path = manifest_path(&self.dir, number);
        let records = self.snapshot_records();
        let file = self
            .fs
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let mut writer = strata_wal::Writer::new(file);
        records
            .iter()
            .try_for_each(|record| writer.add_record(record).map(|_| ()))
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

    /// The live state for a checkpoint (`src/checkpoint/`): a manifest
    /// number handed out for the copy's MANIFEST, the edits of a fresh
    /// manifest describing every live keyspace (as a rollover writes
    /// them, counters included), and the versions they name, which the
    /// caller holds so no table they list is deleted before it is copied.
    pub fn checkpoint_image(&mut self) -> Result<ManifestImage> {
        let manifest_number = self.new_file_number()?;
        Ok(ManifestImage {
            manifest_number,
            records: self.snapshot_records(),
            versions: self
                .keyspaces
                .values()
                .map(|ks| Arc::clone(&ks.current))
                .collect(),
            log_number: self.log_number(),
        })
    }

    /// The edits of a manifest describing the whole current state: one
    /// with the counters and the default keyspace, then one creating each
    /// other keyspace with its tables.
    fn snapshot_records(&self) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        for (&id, ks) in &self.keyspaces {
            let mut snapshot = VersionEdit {
                keyspace: id,
                log_number: Some(ks.log_number),
                ..VersionEdit::default()
            };
            if id == DEFAULT_KEYSPACE_ID {
                snapshot.next_file_number = Some(self.next_file_number);
                snapshot.last_sequence = Some(self.last_sequence);
                // Only once a keyspace was made: a database that never had
                // one stays readable by a strata from before keyspaces.
                if self.next_keyspace_id > DEFAULT_KEYSPACE_ID + 1 {
                    snapshot.next_keyspace_id = Some(self.next_keyspace_id);
                }
            } else {
                snapshot.create_keyspace = Some(ks.name.clone());
            }
            for (level, file) in ks.current.all_files() {
                snapshot.new_files.push((level, file.meta.clone()));
            }
            snapshot.blob_garbage = ks
                .current
                .blob_garbage()
                .iter()
                .map(|(&n, &g)| (n, g))
                .collect();
            let mut record = Vec::new();
            snapshot.encode(&mut record);
            records.push(record);
        }
        records
    }
}

/// What [`VersionSet::checkpoint_image`] returns.
pub(crate) struct ManifestImage {
    /// The number the copy's MANIFEST takes (handed out by the source, so
    /// below the next file number the records state).
    pub manifest_number: u64,
    /// The fresh manifest's edits, each one log record.
    pub records: Vec<Vec<u8>>,
    /// Every live keyspace's version: hold them until the tables are
    /// copied.
    pub versions: Vec<Arc<Version>>,
    /// The smallest live keyspace log number: the WALs from it on hold
    /// what the tables do not.
    pub log_number: u64,
}

/// The version `edit` makes of `base` (empty for a drop). `added` holds
/// the opened tables for the edit's new files.
fn apply_to(base: &Version, edit: &VersionEdit, added: &[Arc<TableFile>]) -> Result<Version> {
    if edit.drop_keyspace {
        return Ok(Version::default());
    }
    let mut levels: [Vec<Arc<TableFile>>; NUM_LEVELS] =
        std::array::from_fn(|level| base.files(level).to_vec());
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
    // Garbage adds up; what blob files no table lists any more had goes
    // with them (`with_blob_garbage`).
    let mut garbage = base.blob_garbage().clone();
    for &(number, g) in &edit.blob_garbage {
        let total = garbage.entry(number).or_default();
        *total = total.plus(g);
    }
    Ok(Version::from_levels(levels).with_blob_garbage(garbage))
}

/// Mark the tables `edit` removed from `base` obsolete: each is deleted
/// when the last version or iterator holding it lets go.
fn mark_deleted_obsolete(base: &Version, edit: &VersionEdit) {
    for &(level, number) in &edit.deleted_files {
        // A trivial move deletes and re-adds the same table.
        if edit.new_files.iter().any(|(_, m)| m.number == number) {
            continue;
        }
        if let Some(f) = base.files(level).iter().find(|f| f.meta.number == number) {
            f.mark_obsolete();
        }
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
