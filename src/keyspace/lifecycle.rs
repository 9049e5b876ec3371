//! Creating and dropping keyspaces.
//!
//! Both happen while leading the write queue, so no write group is being
//! sequenced meanwhile: a created keyspace's memtable is in the set groups
//! insert into before any write can name it, and a dropped one's is out
//! of it before the drop returns (a write that named it and was checked
//! before the drop still goes in, and counts as made just before it).

use super::options::KeyspaceOptions;
use super::state::KeyspaceState;
use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::memtable::MemTable;
use crate::read::SuperVersion;
use crate::version::{VersionEdit, DEFAULT_KEYSPACE_NAME};
use std::sync::Arc;

/// The longest keyspace name, in bytes.
pub const MAX_KEYSPACE_NAME_LEN: usize = 255;

impl DbInner {
    /// The keyspace named `name`, created (with `options`, or the
    /// database's keyspace options) if it does not exist. Given
    /// `options`, an existing keyspace is read and written with them from
    /// now on.
    pub(crate) fn open_keyspace(
        &self,
        name: &str,
        options: Option<&KeyspaceOptions>,
    ) -> Result<Arc<KeyspaceState>> {
        check_name(name)?;
        let resolved = match options {
            Some(o) => Some(self.options.for_keyspace(o)?),
            None => None,
        };
        let _admin = self.keyspace_admin.lock();
        if let Some(ks) = self.keyspaces.load().by_name(name) {
            if let Some(options) = resolved {
                // Fewer levels would make a level holding tables (or
                // about to, from a compaction picked with the old
                // options) the last, where tombstones are dropped.
                let levels = ks.options().num_levels;
                if options.num_levels < levels {
                    return Err(Error::InvalidArgument(format!(
                        "keyspace {name:?} is open with num_levels {levels}: reopen the database to lower it to {}",
                        options.num_levels
                    )));
                }
                let version = self.versions.lock().current(ks.id);
                if let Some((level, f)) = version
                    .all_files()
                    .find(|(level, _)| *level >= options.num_levels)
                {
                    return Err(Error::InvalidArgument(format!(
                        "keyspace {name:?} has table {} in L{level}, but num_levels is {}",
                        f.meta.number, options.num_levels
                    )));
                }
                let sv = ks.current_super_version();
                // Operands in the memtables carry no operator's name until
                // a flush labels them with the keyspace's operator then:
                // switching operators now would merge them with, and label
                // them for, one they were not written for.
                let current = ks.options().merge_operator.clone();
                if let Some(current) = current {
                    let same = options
                        .merge_operator
                        .as_ref()
                        .is_some_and(|o| o.name() == current.name());
                    let memtables = std::iter::once(&sv.mem).chain(&sv.imms);
                    if !same && memtables.into_iter().any(|m| m.has_merge_operands()) {
                        return Err(Error::InvalidArgument(format!(
                            "keyspace {name:?} holds merge operands written for operator {:?} in its memtables; it cannot switch to {:?}",
                            current.name(),
                            options.merge_operator.as_ref().map(|o| o.name())
                        )));
                    }
                }
                crate::merge::check_merge_operator(
                    name,
                    options.merge_operator.as_ref(),
                    &version,
                    std::iter::once(&sv.mem).chain(&sv.imms),
                )?;
                ks.set_opened_options(options);
                // Writers look at the keyspaces' limits again.
                self.bg.notify_all();
            } else if ks.awaits_opening() {
                // A keyspace recovered at open has no merge operator,
                // compaction filter or default time to live (the
                // database's may not be its own); opened without options,
                // it takes the database's keyspace options' ones, as every
                // other option (docs/design/merge.md §5). One created or
                // opened with options keeps what it was given, None
                // included.
                if self.options.merge_operator.is_some() {
                    let version = self.versions.lock().current(ks.id);
                    let sv = ks.current_super_version();
                    crate::merge::check_merge_operator(
                        name,
                        self.options.merge_operator.as_ref(),
                        &version,
                        std::iter::once(&sv.mem).chain(&sv.imms),
                    )?;
                }
                let options = crate::options::Options {
                    merge_operator: self.options.merge_operator.clone(),
                    compaction_filter_factory: self.options.compaction_filter_factory.clone(),
                    default_ttl: self.options.default_ttl,
                    ..(**ks.options()).clone()
                };
                ks.set_opened_options(options);
            }
            return Ok(Arc::clone(ks));
        }
        self.check_bg_error()?;
        let options = match resolved {
            Some(options) => options,
            None => self
                .options
                .for_keyspace(&self.options.keyspace_options())?,
        };
        self.write_path
            .pipeline
            .with_leadership(self, |leader| {
                // Its writes go to the current WAL and later ones: the log
                // number recovery replays them into it from.
                let wal_number = self.write_path.wal.wal_number();
                let mem = Arc::new(MemTable::sized_for(
                    wal_number,
                    options.write_buffer_size,
                    &self.write_path.block_pool,
                ));
                let mut versions = self.versions.lock();
                let id = versions.new_keyspace_id()?;
                let edit = VersionEdit {
                    keyspace: id,
                    create_keyspace: Some(name.to_owned()),
                    log_number: Some(wal_number),
                    ..VersionEdit::default()
                };
                let applied = versions.log_and_apply(edit, &[]);
                // A failure is recorded after letting go of the version set:
                // recording it wakes the background threads under their lock.
                drop(versions);
                let version = applied.map_err(|e| self.manifest_failure(e))?;
                let state = Arc::new(KeyspaceState::new(
                    id,
                    name.to_owned(),
                    options,
                    SuperVersion {
                        mem: Arc::clone(&mem),
                        imms: Vec::new(),
                        version,
                    },
                ));
                let mems = leader.mems().with(id, Some(mem));
                leader.switch_memtables(mems);
                let keyspaces = self.keyspaces.load().with(Arc::clone(&state));
                self.keyspaces.store(Arc::new(keyspaces));
                Ok(state)
            })
            .inspect(|_| self.bg.notify_all())
    }

    /// Drop the keyspace named `name`: recorded in the MANIFEST at once;
    /// its memtables and tables stay readable through handles, snapshots
    /// and iterators already open on it, and its table files are deleted
    /// when the last of those lets go (at once if none is left).
    pub(crate) fn drop_keyspace(&self, name: &str) -> Result<()> {
        if name == DEFAULT_KEYSPACE_NAME {
            return Err(Error::InvalidArgument(
                "the default keyspace cannot be dropped".into(),
            ));
        }
        let _admin = self.keyspace_admin.lock();
        let Some(ks) = self.keyspaces.load().by_name(name).cloned() else {
            return Err(Error::InvalidArgument(format!(
                "no keyspace named {name:?}"
            )));
        };
        self.check_bg_error()?;
        // The drop is durable once its MANIFEST edit is: the writes
        // acknowledged before it must be too, or a power loss could keep
        // the drop and lose them, a state no prefix of the acknowledged
        // writes gives (as for a flush with several keyspaces).
        self.flush_wal(true)?;
        self.write_path.pipeline.with_leadership(self, |leader| {
            let edit = VersionEdit {
                keyspace: ks.id,
                drop_keyspace: true,
                // Its writes may be the newest and, once no WAL needs
                // them, in no file: without this an open after a clean
                // close could give their numbers to new writes, and the
                // change feed would show two batches with one number.
                last_sequence: Some(leader.last_seq()),
                ..VersionEdit::default()
            };
            let mut versions = self.versions.lock();
            let applied = versions.log_and_apply(edit, &[]);
            let log_number = versions.log_number();
            // As in `open_keyspace`: the failure is recorded unlocked.
            drop(versions);
            applied.map_err(|e| self.manifest_failure(e))?;
            ks.mark_dropped();
            let mems = leader.mems().with(ks.id, None);
            leader.switch_memtables(mems);
            let keyspaces = self.keyspaces.load().without(ks.id);
            self.keyspaces.store(Arc::new(keyspaces));
            // The writers' cached view holds the keyspaces it looked at:
            // it must not keep this one's tables.
            *self.room_limits.lock() = None;
            // It kept no WAL alive from now on.
            self.write_path.note_log_number(log_number);
            self.remove_wals_below(log_number);
            Ok(())
        })?;
        // Flushes and compactions of it stop; waiters on it look again.
        self.bg.notify_all();
        Ok(())
    }

    /// The names of the live keyspaces, the default one first.
    pub(crate) fn keyspace_names(&self) -> Vec<String> {
        self.keyspaces
            .load()
            .iter()
            .map(|ks| ks.name.clone())
            .collect()
    }

    /// A failed manifest write stops writes like any failed background
    /// write (until a resume rewrites the manifest).
    fn manifest_failure(&self, e: Error) -> Error {
        match e {
            Error::Io { .. } => Error::Background(self.set_bg_error(e)),
            other => other,
        }
    }
}

/// A keyspace name: 1 to 255 bytes of UTF-8, no control characters (it
/// is shown in stats, properties and `sst-dump`).
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_KEYSPACE_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "keyspace name {name:?} must be 1 to {MAX_KEYSPACE_NAME_LEN} bytes"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "keyspace name {name:?} holds a control character"
        )));
    }
    Ok(())
}
