//! Read-only open: a consistent view of a database as of its last MANIFEST
//! and the WALs written since, with no LOCK taken and no file changed, so
//! any number of readers can follow a running writer (RocksDB's read-only
//! and secondary instances). `ReadOnlyDb::refresh` catches up.
//!
//! The view is built as an open recovers, without its writes: the version
//! from the MANIFEST (`VersionSet::load`), then every WAL at or above its
//! log number replayed into memtables held in memory (`apply_record`, the
//! replay's own), never flushed. A WAL is read as the writer left it at
//! that moment: a record the writer is still appending reads as a torn
//! tail and ends the replay there (`PointInTimeRecovery`), so a batch is
//! seen whole or not at all. The writer deletes files under the reader
//! (a flush retires a WAL, a compaction its inputs, a new MANIFEST the old
//! one): a file found missing while the view is built means the writer
//! moved on, and the build starts again from CURRENT.

use crate::cursor::Iter;
use crate::error::{Error, Result};
use crate::filename::{parse_file_name, FileKind};
use crate::memtable::MemTable;
use crate::open::{apply_record, replay_floor, ReplayTarget};
use crate::options::{Options, WalRecoveryMode};
use crate::read::{ReadView, SuperVersion};
use crate::version::{TableOpener, VersionSet, DEFAULT_KEYSPACE_ID, DEFAULT_KEYSPACE_NAME};
use crate::wal_replay::read_wal_chain;
use arc_swap::ArcSwap;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_sstable::{BlockReadOptions, SeqNo};

/// How many times a view is rebuilt when the writer deleted a file it
/// needed meanwhile, before the error is returned.
const BUILD_ATTEMPTS: usize = 8;

/// A database opened with [`Db::open_read_only`](crate::Db::open_read_only).
/// Reads see one consistent state: the last MANIFEST plus the WALs as they
/// were when the view was built (or last refreshed). Writes fail with
/// [`Error::ReadOnly`].
pub struct ReadOnlyDb {
    dir: PathBuf,
    options: Options,
    view: ArcSwap<View>,
}

impl std::fmt::Debug for ReadOnlyDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyDb")
            .field("path", &self.dir)
            .field("last_sequence", &self.view.load().last_seq)
            .finish()
    }
}

/// One built view: each keyspace's memtables and tables, by name, and the
/// last sequence number they hold.
struct View {
    keyspaces: BTreeMap<String, (u32, Arc<SuperVersion>)>,
    last_seq: SeqNo,
}

impl ReadOnlyDb {
    pub(crate) fn open(path: &Path, options: Options) -> Result<ReadOnlyDb> {
        options.validate()?;
        let dir = path.to_path_buf();
        let view = build(&dir, &options)?;
        Ok(ReadOnlyDb {
            dir,
            options,
            view: ArcSwap::from_pointee(view),
        })
    }

    /// Catch up with the writer: read the MANIFEST and replay the WALs
    /// again. Reads and iterators begun before keep the view they had.
    /// On an error (the writer deleted files the build needed during
    /// every attempt) the view is the one before; call again.
    pub fn refresh(&self) -> Result<()> {
        let view = build(&self.dir, &self.options)?;
        self.view.store(Arc::new(view));
        Ok(())
    }

    /// The last sequence number the view holds.
    pub fn last_sequence(&self) -> SeqNo {
        self.view.load().last_seq
    }

    /// The keyspaces the view holds.
    pub fn keyspace_names(&self) -> Vec<String> {
        self.view.load().keyspaces.keys().cloned().collect()
    }

    /// The value of `key` in the default keyspace.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.get_in(DEFAULT_KEYSPACE_NAME, key)
    }

    /// The value of `key` in keyspace `keyspace`.
    pub fn get_in(&self, keyspace: &str, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let view = self.view.load();
        let (id, sv) = find(&view, keyspace)?;
        let operator = self.merge_operator(id);
        let now = self.options.clock.now_micros();
        crate::read::get(
            sv,
            key.as_ref(),
            view.last_seq,
            BlockReadOptions::default(),
            &|| operator.clone(),
            &|| now,
        )
    }

    /// Every entry of the default keyspace, in key order.
    pub fn iter(&self) -> Result<Iter> {
        self.iter_in(DEFAULT_KEYSPACE_NAME)
    }

    /// Every entry of keyspace `keyspace`, in key order.
    pub fn iter_in(&self, keyspace: &str) -> Result<Iter> {
        let view = self.view.load();
        let (id, sv) = find(&view, keyspace)?;
        let read = ReadView {
            sv: Arc::clone(sv),
            seq: view.last_seq,
            blocks: BlockReadOptions::default(),
            max_skip: self.options.max_sequential_skip_in_iterations,
            merge_operator: self.merge_operator(id),
            now_micros: self.options.clock.now_micros(),
        };
        Ok(Iter::new(read, None, None))
    }

    /// Refused: the database is open read-only.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let _ = (key, value);
        Err(self.read_only())
    }

    /// Refused: the database is open read-only.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let _ = key;
        Err(self.read_only())
    }

    /// Refused: the database is open read-only.
    pub fn write(&self, batch: crate::WriteBatch) -> Result<()> {
        drop(batch);
        Err(self.read_only())
    }

    fn read_only(&self) -> Error {
        Error::ReadOnly {
            path: self.dir.clone(),
        }
    }

    /// The default keyspace's operator is the database's; another
    /// keyspace's is not known to a reader (docs/design/merge.md §5).
    fn merge_operator(&self, id: u32) -> Option<Arc<dyn crate::MergeOperator>> {
        (id == DEFAULT_KEYSPACE_ID)
            .then(|| self.options.merge_operator.clone())
            .flatten()
    }
}

fn find<'a>(view: &'a View, keyspace: &str) -> Result<(u32, &'a Arc<SuperVersion>)> {
    view.keyspaces
        .get(keyspace)
        .map(|(id, sv)| (*id, sv))
        .ok_or_else(|| Error::InvalidArgument(format!("no keyspace named {keyspace:?}")))
}

/// What one build made.
enum Built {
    View(View),
    /// The MANIFEST changed between its load and the WAL listing: a WAL
    /// the loaded version needs may have been deleted before the listing
    /// (not every WAL names the one before it: an open's or a resume's
    /// first does not), so the view could lack it and be older than the
    /// view before, or hold a hole. Such a build is dropped.
    Raced,
}

/// Build a view, again from CURRENT while the writer deleted a file this
/// needed meanwhile.
fn build(dir: &Path, options: &Options) -> Result<View> {
    // Builds that saw the MANIFEST change during the replay, and builds
    // that met a file gone or a MANIFEST changed before the listing:
    // bounded apart, so that a last build accepted under a changing
    // MANIFEST is still one whose WALs were all there.
    let mut attempt = 1;
    let mut vanishes = 1;
    loop {
        let before = manifest_state(dir, options);
        match try_build(dir, options, &before) {
            Err(e) if vanishes < BUILD_ATTEMPTS && vanished(options, &e) => {
                tracing::debug!(error = %e, vanishes, "read-only view: a file went, building again");
                vanishes += 1;
            }
            Ok(Built::Raced) if vanishes < BUILD_ATTEMPTS => {
                tracing::debug!(
                    vanishes,
                    "read-only view: the MANIFEST changed before the WALs were listed, building again"
                );
                vanishes += 1;
            }
            Ok(Built::Raced) => {
                return Err(Error::io(
                    "list WALs of",
                    dir,
                    std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        format!(
                            "the writer changed the MANIFEST between its load and the WAL listing in {BUILD_ATTEMPTS} builds in a row"
                        ),
                    ),
                ))
            }
            // The MANIFEST changed while the WALs were replayed: an edit
            // that adds data no WAL holds (an ingested table) may be
            // missing from the version while the WALs read after it show
            // later writes, which is no prefix of the writes. Build again.
            Ok(Built::View(_)) if attempt < BUILD_ATTEMPTS && changed(dir, options, &before) => {
                tracing::debug!(
                    attempt,
                    "read-only view: the MANIFEST changed, building again"
                );
                attempt += 1;
            }
            // Still changing at the last attempt (a writer flushing and
            // compacting without pause): the view as built, which holds
            // every write the listed WALs and that MANIFEST do; only an
            // ingestion in the same window can be missing from it
            // (docs/design/read-only.md).
            Ok(Built::View(view)) => {
                if changed(dir, options, &before) {
                    tracing::warn!(
                        attempts = BUILD_ATTEMPTS,
                        "read-only view: the MANIFEST changed during every build; using the last"
                    );
                }
                return Ok(view);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether CURRENT or its MANIFEST changed since `before` was taken (or
/// could not be read then or now).
fn changed(dir: &Path, options: &Options, before: &Option<(Vec<u8>, u64)>) -> bool {
    before.is_none() || manifest_state(dir, options) != *before
}

/// What CURRENT names and that MANIFEST's length: unchanged from before
/// a view was built to after it, the view's version is the MANIFEST the
/// whole build saw (`None` if either cannot be read, which counts as a
/// change).
fn manifest_state(dir: &Path, options: &Options) -> Option<(Vec<u8>, u64)> {
    let fs = &options.fs;
    let current = fs.read(&crate::filename::current_path(dir)).ok()?;
    let name = std::str::from_utf8(&current).ok()?.trim();
    let len = fs.file_size(&dir.join(name)).ok()?;
    Some((current.to_vec(), len))
}

/// Whether `e` names a file that is no longer there (the writer deleted
/// it: a retired WAL, a compacted table, an old MANIFEST).
fn vanished(options: &Options, e: &Error) -> bool {
    match e {
        Error::Io { path, .. } | Error::Corruption { file: path, .. } => !options.fs.exists(path),
        _ => false,
    }
}

fn try_build(dir: &Path, options: &Options, before: &Option<(Vec<u8>, u64)>) -> Result<Built> {
    let fs = &options.fs;
    let opener = TableOpener::new(Arc::clone(fs), dir.to_path_buf(), options);
    let versions = VersionSet::load(opener)?;
    let _ = crate::hook::call(
        &options.test_hook,
        crate::hook::HookPoint::ReadOnlyManifestLoaded,
    );
    let log_number = versions.log_number();
    let mut numbers: Vec<u64> = fs
        .list(dir)
        .map_err(|e| Error::io("list", dir, e))?
        .iter()
        .filter_map(|name| match parse_file_name(name) {
            Some(FileKind::Wal(n)) if n >= log_number => Some(n),
            _ => None,
        })
        .collect();
    numbers.sort_unstable();
    if changed(dir, options, before) {
        return Ok(Built::Raced);
    }
    let _ = crate::hook::call(
        &options.test_hook,
        crate::hook::HookPoint::ReadOnlyWalsListed,
    );
    let new_mem = || Arc::new(MemTable::unfiltered(0, options.write_buffer_size));
    let mut targets: BTreeMap<u32, ReplayTarget> = versions
        .keyspaces()
        .map(|(id, _)| {
            let target = ReplayTarget {
                mem: new_mem(),
                log_number: versions.keyspace_log_number(id).unwrap_or(0),
            };
            (id, target)
        })
        .collect();
    // Memtables filled during the replay, oldest first.
    let mut frozen: BTreeMap<u32, Vec<Arc<MemTable>>> = BTreeMap::new();
    let mut last_seq = replay_floor(&versions);
    read_wal_chain(
        &**fs,
        dir,
        &versions.recovered_from(),
        log_number,
        &numbers,
        WalRecoveryMode::PointInTimeRecovery,
        &mut |wal, _offset, batch| {
            match apply_record(batch, wal, &targets, last_seq) {
                Ok(Some(end)) => last_seq = last_seq.max(end),
                Ok(None) => {}
                Err(reason) => return Ok(Err(reason)),
            }
            for (&id, target) in targets.iter_mut() {
                if target.mem.is_full(options.write_buffer_size, 0) {
                    let full = std::mem::replace(&mut target.mem, new_mem());
                    frozen.entry(id).or_default().push(full);
                }
            }
            Ok(Ok(()))
        },
    )?;
    let names: BTreeMap<u32, String> = versions
        .keyspaces()
        .map(|(id, name)| (id, name.to_owned()))
        .collect();
    let keyspaces = targets
        .into_iter()
        .map(|(id, target)| {
            let mut imms = frozen.remove(&id).unwrap_or_default();
            imms.reverse(); // newest first
            let sv = SuperVersion {
                mem: target.mem,
                imms,
                version: versions.current(id),
            };
            let name = names.get(&id).cloned().unwrap_or_default();
            (name, (id, Arc::new(sv)))
        })
        .collect();
    Ok(Built::View(View {
        keyspaces,
        last_seq: last_seq.max(versions.last_sequence()),
    }))
}
