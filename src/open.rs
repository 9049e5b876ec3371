//! Opening a database: lock, load the version from the manifest, replay the
//! WALs written since the last flush, and start fresh WAL and manifest.

use crate::batch::DecodedBatch;
use crate::batch::{MAX_KEY_SIZE, MAX_VALUE_SIZE};
use crate::compaction::Stripes;
use crate::core::DbInner;
use crate::error::{table_error, Error, Result};
use crate::feed::{Feed, Recovered};
use crate::filename::{current_path, lock_path, parse_checked, parse_file_name, FileKind};
use crate::flush::write_memtable_table;
use crate::keyspace::{KeyspaceState, Keyspaces};
use crate::memtable::{ActiveMemTables, BlockPool, MemTable};
use crate::merge::check_merge_operator;
use crate::options::Options;
use crate::read::SuperVersion;
use crate::version::{
    TableFile, TableOpener, Version, VersionEdit, VersionSet, DEFAULT_KEYSPACE_ID,
    DEFAULT_KEYSPACE_NAME,
};
use crate::wal_replay::{read_wal_chain, BatchOutcome};
use crate::write::{
    create_wal, CommitPipeline, PipelineConfig, WalBuffer, WritePath, WAL_FIRST_BYTES,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_sstable::{SeqNo, MAX_SEQNO};

pub(crate) fn open(path: &Path, options: Options) -> Result<DbInner> {
    let _span = tracing::info_span!("open", path = %path.display()).entered();
    options.validate()?;
    let fs = Arc::clone(&options.fs);
    let dir = path.to_path_buf();
    if options.create_if_missing {
        fs.create_dir_all(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
    } else if !fs.exists(&dir) {
        return Err(Error::InvalidArgument(format!(
            "{} does not exist and create_if_missing is false",
            dir.display()
        )));
    }
    let lock_file = lock_path(&dir);
    let lock = fs.lock(&lock_file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked {
                path: lock_file.clone(),
            }
        } else {
            Error::io("lock", &lock_file, e)
        }
    })?;

    let exists = fs.exists(&current_path(&dir));
    if !exists {
        refuse_if_current_was_lost(&options, &dir)?;
    }
    if exists && options.error_if_exists {
        return Err(Error::InvalidArgument(format!(
            "a database exists in {} and error_if_exists is set",
            dir.display()
        )));
    }
    if !exists && !options.create_if_missing {
        return Err(Error::InvalidArgument(format!(
            "no database in {} and create_if_missing is false",
            dir.display()
        )));
    }
    let opener = TableOpener::new(Arc::clone(&fs), dir.clone(), &options);
    let mut versions = if exists {
        VersionSet::recover(opener)?
    } else {
        VersionSet::create(opener)?
    };
    refuse_levels_past_num_levels(&options, &versions)?;
    tracing::debug!(
        existed = exists,
        log_number = versions.log_number(),
        last_sequence = versions.last_sequence(),
        "manifest loaded"
    );

    let mut replayed = replay_wals(&options, &dir, &mut versions)?;
    let wal_number = versions.new_file_number()?;
    let wal = create_wal(
        &*fs,
        &dir,
        wal_number,
        WAL_FIRST_BYTES,
        options.wal_write_mode,
    )?;
    let feed = Feed::open(
        &options,
        &dir,
        Recovered {
            replayed_wals: &replayed.wals,
            first_seq: replayed.first_seq,
            last_seq: replayed.last_seq,
            fresh_wal: wal_number,
        },
    )?;
    // No write gets a number an ingestion took, even one a crash cut
    // short before its MANIFEST edit or one forgotten below the feed's
    // floor: the feed reports those numbers (`Feed::last_taken`).
    replayed.last_seq = replayed.last_seq.max(feed.last_taken());
    let versions_by_keyspace = log_replayed_tables(&mut versions, replayed, wal_number)?;
    remove_obsolete_files(&options, &dir, &versions, |_| false)?;
    // The WALs replay read are obsolete now: retention decides (`feed/`).
    feed.collect(&options, &dir, versions.log_number())?;

    if options.paranoid_checks {
        for version in versions_by_keyspace.values() {
            for (_, file) in version.all_files() {
                file.table()
                    .verify()
                    .map_err(|e| table_error(file.path(), e))?;
            }
        }
    }

    // Every keyspace starts with the database's keyspace options; opening
    // one with others (`Db::keyspace_with`) replaces them. The merge
    // operator is the default keyspace's own: another keyspace has none
    // until opened with one (docs/design/merge.md §5).
    let mut states = Vec::new();
    let mut mems: Option<ActiveMemTables> = None;
    // One thread drives a database with inline background work, and what
    // it writes is to depend only on what it was given.
    let block_pool = if options.inline_background_work {
        BlockPool::with_one_node_chunk(options.write_buffer_size)
    } else {
        BlockPool::new(options.write_buffer_size)
    };
    for (id, name) in versions.keyspaces() {
        let mem = Arc::new(MemTable::sized_for(
            wal_number,
            options.write_buffer_size,
            &block_pool,
        ));
        let version = versions_by_keyspace
            .get(&id)
            .cloned()
            .unwrap_or_else(|| versions.current(id));
        let super_version = SuperVersion {
            mem: Arc::clone(&mem),
            imms: Vec::new(),
            version,
        };
        states.push(Arc::new(if id == DEFAULT_KEYSPACE_ID {
            check_merge_operator(
                name,
                options.merge_operator.as_ref(),
                &super_version.version,
                [&mem],
            )?;
            KeyspaceState::new(id, name.to_owned(), options.clone(), super_version)
        } else {
            // The default keyspace's operator, filter and default time
            // to live may not be this keyspace's: it has none until it is
            // opened (docs/design/merge.md §5).
            let ks_options = Options {
                merge_operator: None,
                compaction_filter_factory: None,
                default_ttl: None,
                ..options.clone()
            };
            KeyspaceState::recovered(id, name.to_owned(), ks_options, super_version)
        }));
        // Ids in order: the default keyspace (0) first.
        mems = Some(match mems {
            None => ActiveMemTables::single(mem),
            Some(m) => m.with(id, Some(mem)),
        });
    }
    let mems = mems.unwrap_or_else(|| unreachable!("the default keyspace is always live"));
    let mut wal = WalBuffer::new(options.wal_buffer_capacity_bytes, wal, wal_number);
    wal.statistics = options.statistics.clone();
    wal.manual_flush = options.manual_wal_flush;
    let wal = Arc::new(wal);
    let config = PipelineConfig {
        max_group_bytes: options.max_write_group_bytes,
        manual_wal_flush: options.manual_wal_flush,
        sync_inline: options.inline_background_work,
    };
    let last_seq = versions.last_sequence();
    let pipeline = CommitPipeline::new(config, last_seq, mems);
    let write_path = WritePath::new(pipeline, wal, block_pool);
    Ok(DbInner::new(
        dir,
        options,
        versions,
        Keyspaces::new(states),
        write_path,
        feed,
        lock,
    ))
}

/// Install the tables replay wrote and move every keyspace's log number
/// to the fresh WAL `wal_number`, with one edit: the WALs replayed may
/// hold unsynced bytes a power loss during this open can still take, so
/// no keyspace's replayed writes may become durable in tables without
/// every other's (a batch across keyspaces would be torn). Returns each
/// keyspace's version.
fn log_replayed_tables(
    versions: &mut VersionSet,
    replayed: Replayed,
    wal_number: u64,
) -> Result<BTreeMap<u32, Arc<Version>>> {
    let ids: Vec<u32> = versions.keyspaces().map(|(id, _)| id).collect();
    let mut tables = replayed.tables;
    let mut added = Vec::new();
    let mut parts: Vec<VersionEdit> = ids
        .iter()
        .map(|&id| {
            let mine = tables.remove(&id).unwrap_or_default();
            let part = VersionEdit {
                keyspace: id,
                log_number: Some(wal_number),
                new_files: mine.iter().map(|f| (0, f.meta.clone())).collect(),
                ..VersionEdit::default()
            };
            added.extend(mine);
            part
        })
        .collect();
    // The default keyspace (always live, first) carries the others.
    let mut edit = parts.remove(0);
    edit.last_sequence = Some(replayed.last_seq);
    edit.parts = parts;
    let installed = versions.log_and_apply_all(edit, &added)?;
    Ok(ids.into_iter().zip(installed).collect())
}

struct Replayed {
    last_seq: SeqNo,
    /// The WALs read, and the first batch sequence number met in them.
    wals: Vec<u64>,
    first_seq: Option<SeqNo>,
    /// L0 tables written from the replayed writes, by keyspace.
    tables: BTreeMap<u32, Vec<Arc<TableFile>>>,
}

/// One keyspace's side of replay: the memtable its replayed writes go to,
/// and the WAL from which on they are replayed into it.
pub(crate) struct ReplayTarget {
    pub mem: Arc<MemTable>,
    pub log_number: u64,
}

/// Replay, in order, every WAL not yet covered by a flush into memtables,
/// writing them out as L0 tables: each keyspace's records from the WALs
/// at or above its log number (the older ones are in its tables), records
/// of keyspaces no longer live not at all. The recovery mode decides what
/// damage is tolerated; the result is always a prefix of the logged
/// writes (except in `SkipAnyCorruptedRecords`, which salvages what
/// checks out).
fn replay_wals(options: &Options, dir: &Path, versions: &mut VersionSet) -> Result<Replayed> {
    let fs = &options.fs;
    let mut numbers = Vec::new();
    for name in fs.list(dir).map_err(|e| Error::io("list", dir, e))? {
        match parse_checked(dir, &name)? {
            Some(FileKind::Wal(n)) if n >= versions.log_number() => numbers.push(n),
            _ => {}
        }
    }
    numbers.sort_unstable();

    let mode = options.wal_recovery_mode;
    // Replayed records follow everything the tables of the keyspaces they
    // go to hold (see `replay_floor`).
    let mut last_seq = replay_floor(versions);
    let manifest_last_seq = versions.last_sequence();
    let mut targets: BTreeMap<u32, ReplayTarget> = versions
        .keyspaces()
        .map(|(id, _)| {
            let target = ReplayTarget {
                mem: Arc::new(MemTable::unfiltered(0, options.write_buffer_size)),
                log_number: versions.keyspace_log_number(id).unwrap_or(0),
            };
            (id, target)
        })
        .collect();
    let mut tables: BTreeMap<u32, Vec<Arc<TableFile>>> = BTreeMap::new();
    let flush = |id: u32,
                 mem: &Arc<MemTable>,
                 versions: &mut VersionSet,
                 tables: &mut BTreeMap<u32, Vec<Arc<TableFile>>>| {
        let number = versions.new_file_number()?;
        let opener = versions.opener().clone();
        // Only the default keyspace's operator is known here: the others'
        // operands get no operator's name (docs/design/merge.md §5). The
        // WAL names no operator, so only a missing one can be caught.
        if id == DEFAULT_KEYSPACE_ID && options.merge_operator.is_none() && mem.has_merge_operands()
        {
            return Err(Error::InvalidArgument(format!(
                "keyspace {DEFAULT_KEYSPACE_NAME:?} holds merge operands in the write-ahead log but no merge operator is set"
            )));
        }
        let unlabelled;
        let table_options = if id == DEFAULT_KEYSPACE_ID {
            options
        } else {
            unlabelled = Options {
                merge_operator: None,
                ..options.clone()
            };
            &unlabelled
        };
        if let Some(t) = write_memtable_table(
            table_options,
            &opener,
            number,
            mem,
            None,
            SeqNo::MAX,
            // No snapshot exists yet: one stripe, newest version only.
            &Stripes::new(Vec::new()),
            None,
            None,
        )? {
            tables.entry(id).or_default().push(t);
        }
        Ok::<_, Error>(())
    };

    let log_number = versions.log_number();
    let manifest = versions.recovered_from();
    let mut batches_replayed = 0u64;
    let mut first_seq = None;
    let mut on_batch = |wal: u64, _offset: u64, batch: &[u8]| -> Result<BatchOutcome> {
        match apply_record(batch, wal, &targets, last_seq) {
            Ok(Some(end)) => {
                if first_seq.is_none() {
                    first_seq = DecodedBatch::new(batch).ok().map(|b| b.sequence());
                }
                last_seq = last_seq.max(end);
                batches_replayed += 1;
            }
            Ok(None) => {}
            Err(reason) => return Ok(Err(reason)),
        }
        for (&id, target) in targets.iter_mut() {
            if target.mem.is_full(
                options.write_buffer_size,
                options.memtable_max_range_deletions,
            ) {
                flush(id, &target.mem, versions, &mut tables)?;
                target.mem = Arc::new(MemTable::unfiltered(0, options.write_buffer_size));
            }
        }
        Ok(Ok(()))
    };
    read_wal_chain(
        &**fs,
        dir,
        &manifest,
        log_number,
        &numbers,
        mode,
        &mut on_batch,
    )?;
    for (&id, target) in &targets {
        flush(id, &target.mem, versions, &mut tables)?;
    }
    tracing::info!(
        wals = ?numbers,
        batches_replayed,
        tables_written = tables.values().map(Vec::len).sum::<usize>(),
        last_sequence = last_seq.max(manifest_last_seq),
        ?mode,
        "WAL replay done"
    );
    Ok(Replayed {
        last_seq: last_seq.max(manifest_last_seq),
        wals: numbers,
        first_seq,
        tables,
    })
}

/// The sequence number every replayed record must follow: the manifest's
/// last sequence in a database that never had a keyspace besides the
/// default one; otherwise the smallest of the live keyspaces' newest table
/// entries (a keyspace's replayed records follow its own tables, not
/// another's).
pub(crate) fn replay_floor(versions: &VersionSet) -> SeqNo {
    // A keyspace since dropped may have flushed writes newer than those
    // the default one replays: only a database that never had another
    // keyspace can use the manifest's last sequence.
    if !versions.had_keyspaces() {
        return versions.last_sequence();
    }
    let ids: Vec<u32> = versions.keyspaces().map(|(id, _)| id).collect();
    ids.iter()
        .map(|&id| {
            versions
                .current(id)
                .all_files()
                .map(|(_, f)| f.meta.largest_seqno)
                .max()
                .unwrap_or(0)
        })
        .min()
        .unwrap_or(0)
}

/// Insert one WAL record's batch, read from WAL `wal`, into the replay
/// memtables of its keyspaces (those whose log number the WAL is at or
/// above); returns its last sequence number. The batch is decoded fully
/// before anything is inserted, so a damaged batch is applied not at all,
/// never in part. `after` is the last sequence number recovered so far
/// (the floor, then each replayed record's): see [`check_sequence`].
pub(crate) fn apply_record(
    data: &[u8],
    wal: u64,
    targets: &BTreeMap<u32, ReplayTarget>,
    after: SeqNo,
) -> std::result::Result<Option<SeqNo>, String> {
    let batch = DecodedBatch::new(data).map_err(|e| e.reason.to_owned())?;
    let mut keyspaces: Vec<u32> = Vec::new();
    for op in batch.iter() {
        let op = op.map_err(|e| format!("bad write batch at byte {}: {}", e.offset, e.reason))?;
        // A write never carries more than these (`WriteBatch` refuses it),
        // so a longer one is damage; the memtable relies on the limits.
        if op.exceeds_limits() {
            return Err(format!(
                "write batch entry of {} key and {} value bytes exceeds the limits ({MAX_KEY_SIZE}, {MAX_VALUE_SIZE}; a range delete's ends {} each)",
                op.key.len(),
                op.value.len(),
                MAX_KEY_SIZE + 1
            ));
        }
        if !keyspaces.contains(&op.keyspace) {
            keyspaces.push(op.keyspace);
        }
    }
    let first = batch.sequence();
    let count = u64::from(batch.count());
    if count == 0 {
        return Ok(None);
    }
    let last = check_sequence(first, count, after)?;
    for id in keyspaces {
        // A keyspace not live was dropped: its writes go nowhere.
        let Some(target) = targets.get(&id) else {
            continue;
        };
        if wal < target.log_number {
            continue; // already in the keyspace's tables
        }
        let entries = (first..)
            .zip(batch.iter().flatten())
            .filter(move |(_, op)| op.keyspace == id);
        target.mem.insert_entries(entries);
    }
    Ok(Some(last))
}

/// The last sequence number of a logged batch of `count` records from
/// `first`, if the batch may follow `after`. The rule: a batch's
/// sequence numbers lie above everything recovered before it, the
/// manifest's last sequence (what flushed tables hold) and every earlier
/// record's, and fit the 56 bits of an internal key. Groups are
/// sequenced and logged in one order, and a WAL replayed holds only
/// writes newer than any flushed table, so anything else is damage;
/// replaying it would reorder writes or wrap the counter. Gaps are
/// allowed: writes with `disable_wal` take sequence numbers too.
fn check_sequence(first: SeqNo, count: u64, after: SeqNo) -> std::result::Result<SeqNo, String> {
    if first <= after {
        return Err(format!(
            "write batch sequence {first} does not follow the last recovered sequence {after}"
        ));
    }
    match first.checked_add(count - 1) {
        Some(last) if last <= MAX_SEQNO => Ok(last),
        _ => Err(format!(
            "write batch of {count} records from sequence {first} runs past the largest sequence number ({MAX_SEQNO})"
        )),
    }
}

/// Compaction treats level `num_levels - 1` as the last: it drops
/// tombstones there that hide older versions in deeper levels, so a
/// database with tables below it cannot be opened with fewer levels.
/// RocksDB refuses it the same way.
fn refuse_levels_past_num_levels(options: &Options, versions: &VersionSet) -> Result<()> {
    let deepest = versions.keyspaces().find_map(|(id, _)| {
        versions
            .current(id)
            .all_files()
            .map(|(level, f)| (level, f.meta.number))
            .find(|(level, _)| *level >= options.num_levels)
    });
    match deepest {
        Some((level, number)) => Err(Error::InvalidArgument(format!(
            "table {number} is in L{level}, but num_levels is {}: open with num_levels {} or more",
            options.num_levels,
            level + 1
        ))),
        None => Ok(()),
    }
}

/// A WAL or table is created only after CURRENT is durable, so finding one
/// without CURRENT means CURRENT was lost: creating a fresh database here
/// would delete every table as obsolete.
fn refuse_if_current_was_lost(options: &Options, dir: &Path) -> Result<()> {
    let names = match options.fs.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let data = names.iter().any(|name| {
        matches!(
            parse_file_name(name),
            Some(FileKind::Wal(_) | FileKind::Table(_))
        )
    });
    if data {
        return Err(Error::corruption(
            current_path(dir),
            0,
            "CURRENT is missing but the directory holds WAL or table files",
        ));
    }
    Ok(())
}

/// Delete files no version needs: tables not live, manifests other than
/// the current one, temporary files. WALs before the log number are left
/// to retention (`Feed::collect`), which may keep them for the change
/// feed. Tables and blob files numbered `held` stay too: a resume
/// (`resume.rs`) runs this with nothing creating files but what a job
/// holds (`held_files.rs`), and with old versions still held.
pub(crate) fn remove_obsolete_files(
    options: &Options,
    dir: &Path,
    versions: &VersionSet,
    held: impl Fn(u64) -> bool,
) -> Result<()> {
    let fs = &options.fs;
    let live = versions.live_table_numbers();
    let live_blobs = versions.live_blob_numbers();
    for name in fs.list(dir).map_err(|e| Error::io("list", dir, e))? {
        let obsolete = match parse_file_name(&name) {
            Some(FileKind::Table(n)) => !live.contains(&n) && !held(n),
            // Written by a flush whose MANIFEST edit never happened (or
            // listed only by tables no longer live).
            Some(FileKind::Blob(n)) => !live_blobs.contains(&n) && !held(n),
            Some(FileKind::Manifest(n)) => n != versions.manifest_number(),
            Some(FileKind::Temp(_)) => true,
            _ => false,
        };
        if obsolete {
            let path: PathBuf = dir.join(&name);
            // Best effort: a file that cannot be removed now is retried at
            // the next open; it is not referenced either way.
            let _ = fs.remove(&path);
        }
    }
    Ok(())
}
