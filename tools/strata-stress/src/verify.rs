//! `--verify-only`: reopen the database after a crash and check it. Before
//! the reopen, the live WALs and L0 tables are read (`write_log.rs`): the
//! logged write sequence must have no hole. After it, every key the WALs
//! write must hold what its last logged write left (recovery applied
//! exactly the logged prefix), and every key must match the expected
//! state: every acknowledged write present, a key whose write was in
//! flight holding the old or the new state, in-flight batches atomic, and
//! no in-flight batch missing while one numbered after it is present.
//! Then full and random range scans in both directions. The state found
//! for in-flight keys is recorded as committed, so the next run starts
//! from an exact expected state.

use crate::counters::{CounterReport, CounterState};
use crate::expected::{AnyError, ExpectedState, Slot};
use crate::rng::Rng;
use crate::value;
use crate::workload::{check_exact, check_integrity};
use crate::write_log;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use strata::Db;

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    pub keys: u32,
    pub present: u32,
    /// Keys with a write in flight at the crash, and what they held.
    pub pending_new: u32,
    pub pending_old: u32,
    /// In-flight batches of more than one key, all checked atomic.
    pub pending_batches: u32,
    /// Table files on disk that the manifest did not list: the process
    /// died during a flush or compaction.
    pub stray_tables: u32,
    pub wal_files: u32,
    /// Blob files in the database directory (runs with blob files on).
    pub blob_files: u32,
    pub range_scans: u32,
    /// Writes in the live WALs, all in one unbroken sequence.
    pub logged_writes: u64,
    /// Keys checked to hold their last logged write after the reopen.
    pub logged_keys: u64,
    /// Range deletes in the live WALs, each checked applied (its range
    /// holds only keys put after it).
    pub logged_range_deletes: u64,
    /// L0 tables checked to hold every sequence number of their range.
    pub l0_tables: u32,
    /// In-flight batches found in the live WALs (their record was
    /// complete): each must be present, and so must every write before it.
    pub in_flight_logged: u32,
    /// The log's last sequence number.
    pub last_seq: u64,
    /// Tokens found in exactly one of the two move keyspaces, and their
    /// moves in all.
    pub tokens: u32,
    pub token_moves: u64,
    /// Whether the bank's accounts exist (then audited: total intact, no
    /// balance negative, no half transfer), and its transfers that
    /// survived.
    pub bank_audited: bool,
    pub bank_transfers: u64,
    /// Acknowledged (or recovered in-flight) writes of every key so far:
    /// the sum of the keys' generations, for the crash test's progress.
    pub key_writes: u64,
    /// The merge counters (`counters.rs`): present, acknowledged writes
    /// so far, and those with a write in flight found after or before it.
    pub counters: CounterReport,
    /// Ingestions in flight at the kill (`ingest.rs`), and those found
    /// whole (the others: found absent whole); keys whose last write was
    /// an ingestion; files a kill left in the staging directory.
    pub in_flight_ingestions: u32,
    pub in_flight_ingestions_new: u32,
    pub ingested_keys: u32,
    pub ingest_leftovers: u32,
    /// In-flight ingestions (both kinds) the MANIFEST named before the
    /// reopen (each then found whole).
    pub in_flight_ingestions_in_manifest: u32,
    /// What keyspace `ingested` held (`ingested.rs`).
    pub ingested: crate::ingested::IngestedReport,
    /// What `D/backups` held (`backups.rs`).
    pub backups: crate::backups::BackupReport,
    /// The change feed's replica, caught up and compared (`replica.rs`).
    pub replica: crate::replica::Compared,
}

impl Report {
    pub fn line(&self) -> String {
        format!(
            "verify ok: keys={} present={} pending_new={} pending_old={} pending_batches={} stray_tables={} wal_files={} blob_files={} range_scans={} logged_writes={} logged_keys={} logged_range_deletes={} l0_tables={} in_flight_logged={} last_seq={} key_writes={} tokens={} token_moves={} bank_audited={} bank_transfers={} counters={} counter_writes={} counters_pending_new={} counters_pending_old={} in_flight_ingestions={} in_flight_ingestions_new={} ingested_keys={} ingest_leftovers={} in_flight_ingestions_in_manifest={} fresh_ingestions_whole={} fresh_ingestions_in_flight_new={} fresh_ingestions_in_flight_old={} backups_listed={} backup_restored={} backup_keys_checked={} backup_bounds_from_kill={} backup_leftovers={} replica_applied={} replica_caught_up={} replica_followed={} replica_keyspaces={} replica_keys={} replica_full={} replica_copied={} replica_gaps={}",
            self.keys,
            self.present,
            self.pending_new,
            self.pending_old,
            self.pending_batches,
            self.stray_tables,
            self.wal_files,
            self.blob_files,
            self.range_scans,
            self.logged_writes,
            self.logged_keys,
            self.logged_range_deletes,
            self.l0_tables,
            self.in_flight_logged,
            self.last_seq,
            self.key_writes,
            self.tokens,
            self.token_moves,
            u8::from(self.bank_audited),
            self.bank_transfers,
            self.counters.present,
            self.counters.acked,
            self.counters.pending_new,
            self.counters.pending_old,
            self.in_flight_ingestions,
            self.in_flight_ingestions_new,
            self.ingested_keys,
            self.ingest_leftovers,
            self.in_flight_ingestions_in_manifest,
            self.ingested.whole,
            self.ingested.in_flight_new,
            self.ingested.in_flight_old,
            self.backups.listed,
            u8::from(self.backups.restored),
            self.backups.keys_checked,
            u8::from(self.backups.bounds_from_kill),
            self.backups.leftovers,
            self.replica.applied,
            self.replica.caught_up,
            self.replica.followed,
            self.replica.keyspaces,
            self.replica.keys,
            u8::from(self.replica.full),
            u8::from(self.replica.copied),
            self.replica.gaps
        )
    }
}

/// How one in-flight key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Old,
    New,
    /// Old and new look the same (a delete of an absent key).
    Either,
}

// The caller's own checks (`also`) run on the reopened database, which
// only this function holds.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    db_dir: &Path,
    open: impl FnOnce() -> strata::Result<Db>,
    state: &mut ExpectedState,
    counter_state: &CounterState,
    ingest_ledger: Option<&crate::ingested::Ledger>,
    options: &strata::Options,
    seed: u64,
    also: impl FnOnce(&Db, &mut Report) -> Result<(), AnyError>,
) -> Result<Report, AnyError> {
    let mut report = Report {
        keys: state.keys(),
        ..Report::default()
    };
    inspect_directory(db_dir, &mut report)?;
    let log = write_log::read(db_dir)?;
    // In-flight ingestions the MANIFEST already names: each must be
    // there after the reopen, and no other (`manifest_probe.rs`).
    let fresh = ingest_ledger
        .map(crate::ingested::in_flight)
        .transpose()?
        .unwrap_or_default();
    let probes = ingestion_probes(state, &fresh);
    let probed: BTreeSet<u64> = probes.iter().map(|p| p.batch).collect();
    let committed = crate::manifest_probe::committed(db_dir, &probes, &|ks, v| {
        if ks == crate::ingested::KEYSPACE {
            crate::ingested::batch_of(v)
        } else {
            value::decode(v).ok().flatten().map(|id| id.batch)
        }
    })?
    .unwrap_or_default();
    report.in_flight_ingestions_in_manifest = committed.len() as u32;
    let db = open().map_err(|e| format!("reopen failed: {e}"))?;
    // Before anything reads the counters: their keyspace needs its
    // operator (the database's options, default or not, have none).
    let counter_keyspace = crate::counters::open(&db, options)?;
    if let Some(log) = &log {
        report.logged_keys = log.check_applied(&db)?;
        report.logged_writes = log.logged_writes;
        report.logged_range_deletes = log.range_deletes.len() as u64;
        report.l0_tables = log.l0_tables;
        report.last_seq = log.last_seq;
    }
    // Every token in exactly one of the move keyspaces: moves are atomic.
    // Looking them up creates the keyspaces in a database without them.
    if let Some(tokens) = crate::moves::locate(&crate::moves::open(&db)?)? {
        report.tokens = tokens.len() as u32;
        report.token_moves = tokens.iter().map(|(_, m)| m).sum();
    }
    // The bank's total intact and no balance negative: transactions are
    // atomic and none overwrote another's update.
    if let Some(audit) = crate::bank::audit(&crate::bank::open(&db)?)? {
        report.bank_audited = true;
        report.bank_transfers = audit.transfers;
    }
    report.counters = crate::counters::verify(&counter_keyspace, counter_state)?;
    // Ingestions into fresh ranges: each whole or absent, as the ledger says.
    if let Some(ledger) = ingest_ledger {
        report.ingested =
            crate::ingested::verify(&db.keyspace(crate::ingested::KEYSPACE)?, ledger, &committed)?;
    }
    // Open may start compactions; the stray-file check needs them done.
    db.wait_for_compactions()?;
    db.check_invariants()
        .map_err(|e| format!("invariants after reopen: {e}"))?;
    // The caller's checks of the reopened database (the replica's).
    also(&db, &mut report)?;

    // Batches known acknowledged: a key's committed part was written by
    // one. A key still marked in flight whose batch is among them was cut
    // off while its siblings were being marked committed: the batch was
    // acknowledged, so the key has one right answer, the new state.
    let acknowledged: BTreeSet<u64> = state
        .slots()
        .iter()
        .map(|slot| slot.batch)
        .filter(|&b| b != 0)
        .collect();
    // Every key: committed state exactly, or old/new for in-flight ones.
    let mut batches: BTreeMap<u64, Vec<(u32, Outcome)>> = BTreeMap::new();
    let mut resolved: Vec<(u32, Slot)> = Vec::new();
    for (i, slot) in state.slots().iter().enumerate() {
        let i = i as u32;
        let got = db.get(value::key(i))?;
        let Some(p) = slot.pending else {
            check_exact(i, slot, got.as_deref(), "verify")?;
            continue;
        };
        let new = Slot {
            gen: p.gen,
            present: p.present,
            batch: p.batch,
            pending: None,
        };
        let old = Slot {
            pending: None,
            ..*slot
        };
        let is_old = check_exact(i, &old, got.as_deref(), "verify").is_ok();
        let is_new = check_exact(i, &new, got.as_deref(), "verify").is_ok();
        let outcome = match (is_old, is_new) {
            (true, true) => Outcome::Either,
            (true, false) => Outcome::Old,
            (false, true) => Outcome::New,
            (false, false) => {
                return Err(format!(
                    "verify: key {i} with a write in flight holds neither the old state {old:?} nor the new {new:?}: {:?}",
                    got.as_deref().map(value::decode)
                )
                .into())
            }
        };
        if outcome == Outcome::Old && acknowledged.contains(&p.batch) {
            return Err(format!(
                "verify: key {i} lost its write of batch {:#x}, which was acknowledged (a sibling key is committed): {:?}",
                p.batch,
                got.as_deref().map(value::decode)
            )
            .into());
        }
        match outcome {
            Outcome::New => report.pending_new += 1,
            _ => report.pending_old += 1,
        }
        batches.entry(p.batch).or_default().push((i, outcome));
        resolved.push((i, if outcome == Outcome::New { new } else { old }));
    }
    // Batch atomicity: an in-flight batch is entirely old or entirely new.
    let mut logged: Vec<(u64, u64, bool)> = Vec::new(); // (seq, batch, present)
    for (batch, keys) in &batches {
        if keys.len() > 1 {
            report.pending_batches += 1;
        }
        let old = keys.iter().any(|(_, o)| *o == Outcome::Old);
        let new = keys.iter().any(|(_, o)| *o == Outcome::New);
        if old && new {
            return Err(format!(
                "verify: {} {batch:#x} is torn: {keys:?}",
                if crate::ingest::is_ingestion(*batch) {
                    "ingestion"
                } else {
                    "batch"
                }
            )
            .into());
        }
        if crate::ingest::is_ingestion(*batch) {
            report.in_flight_ingestions += 1;
            report.in_flight_ingestions_new += u32::from(new);
            if probed.contains(batch) && new != committed.contains(batch) {
                return Err(format!(
                    "verify: ingestion {batch:#x}, in flight at the kill, is {} after the reopen, \
                     but the MANIFEST {} it before: {keys:?}",
                    if new { "there" } else { "absent" },
                    if new { "did not name" } else { "named" }
                )
                .into());
            }
        }
        if let Some(&seq) = log.as_ref().and_then(|l| l.batch_seq.get(batch)) {
            logged.push((seq, *batch, new || !old));
        }
    }
    // Across threads, by sequence number: an in-flight batch whose record
    // reached the log is present, as is every one numbered before a
    // present one. (Implied by the logged-prefix check above; stated here
    // in the terms of the writers.)
    logged.sort_unstable();
    report.in_flight_logged = logged.len() as u32;
    if let Some(&(seq, batch, _)) = logged.iter().find(|(_, _, present)| !present) {
        return Err(format!(
            "verify: in-flight batch {batch:#x} (sequence number {seq}) reached the log but is missing after recovery{}",
            logged
                .iter()
                .find(|(s, _, present)| *present && *s > seq)
                .map(|(s, b, _)| format!(", while batch {b:#x} numbered after it ({s}) is present"))
                .unwrap_or_default()
        )
        .into());
    }
    for (i, slot) in resolved {
        state.set(i, slot)?;
    }
    state.sync()?;
    report.key_writes = state.slots().iter().map(|s| u64::from(s.gen)).sum();
    report.ingested_keys = state
        .slots()
        .iter()
        .filter(|s| crate::ingest::is_ingestion(s.batch))
        .count() as u32;

    // Scans: the whole key space both ways, then random ranges.
    let expected: Vec<u32> = (0..state.keys())
        .filter(|&i| state.slots()[i as usize].present)
        .collect();
    report.present = expected.len() as u32;
    check_scan(state, db.iter(), &expected, "full scan")?;
    let reversed: Vec<u32> = expected.iter().rev().copied().collect();
    check_scan(state, db.iter().rev(), &reversed, "full reverse scan")?;
    let mut rng = Rng::new(seed);
    for _ in 0..64 {
        let lo = rng.below(u64::from(state.keys())) as u32;
        let hi = (lo + rng.below(500) as u32).min(state.keys());
        let (klo, khi) = (value::key(lo), value::key(hi));
        let want: Vec<u32> = expected
            .iter()
            .copied()
            .filter(|i| (lo..hi).contains(i))
            .collect();
        let it = db.range(klo.as_slice()..khi.as_slice());
        if rng.one_in(2) {
            let rev: Vec<u32> = want.iter().rev().copied().collect();
            check_scan(state, it.rev(), &rev, "reverse range scan")?;
        } else {
            check_scan(state, it, &want, "range scan")?;
        }
        report.range_scans += 1;
    }
    db.verify_checksums()?;
    Ok(report)
}

/// What to look for in the MANIFEST's tables for each in-flight
/// ingestion: a key it puts a non-empty value to (of the default
/// keyspace's, the first; of those into fresh ranges, `fresh`, the first
/// key). An ingestion of deletes only has none, and is not probed.
fn ingestion_probes<'a>(
    state: &ExpectedState,
    fresh: &[crate::ingested::Entry],
) -> Vec<crate::manifest_probe::Probe<'a>> {
    let mut probes: Vec<crate::manifest_probe::Probe<'a>> = Vec::new();
    for (i, slot) in state.slots().iter().enumerate() {
        let Some(p) = slot.pending else { continue };
        let id = value::ValueId {
            key: i as u32,
            gen: p.gen,
            batch: p.batch,
        };
        if !crate::ingest::is_ingestion(p.batch)
            || !p.present
            || value::is_empty_value(&id)
            || probes.iter().any(|q| q.batch == p.batch)
        {
            continue;
        }
        probes.push(crate::manifest_probe::Probe {
            keyspace: "default",
            key: value::key(i as u32),
            batch: p.batch,
        });
    }
    for e in fresh {
        probes.push(crate::manifest_probe::Probe {
            keyspace: crate::ingested::KEYSPACE,
            key: e.first_key(),
            batch: e.batch,
        });
    }
    probes
}

fn check_scan(
    state: &ExpectedState,
    it: impl Iterator<Item = strata::Result<(strata::Bytes, strata::Bytes)>>,
    want: &[u32],
    what: &str,
) -> Result<(), AnyError> {
    let mut n = 0;
    for item in it {
        let (k, v) = item?;
        let i = value::key_index(&k).ok_or_else(|| format!("{what}: foreign key {k:?}"))?;
        let expected = want.get(n).copied();
        if expected != Some(i) {
            return Err(format!("{what}: entry {n} is key {i}, expected {expected:?}").into());
        }
        check_integrity(i, Some(&v), what)?;
        check_exact(i, &state.slots()[i as usize], Some(&v), what)?;
        n += 1;
    }
    if n != want.len() {
        return Err(format!("{what}: {n} entries, expected {}", want.len()).into());
    }
    Ok(())
}

/// Count what the crash left in the directory before the open cleans up.
fn inspect_directory(dir: &Path, report: &mut Report) -> Result<(), AnyError> {
    use strata::inspect::{parse_file_name, read_current_manifest, read_manifest, FileKind};
    if !dir.exists() {
        return Ok(());
    }
    let fs = strata::fs::OsFileSystem;
    let live: std::collections::BTreeSet<u64> = match read_current_manifest(&fs, dir) {
        Ok((path, data)) => read_manifest(&path, &data)?
            .all_tables()
            .map(|(_, _, meta)| meta.number)
            .collect(),
        Err(_) => return Ok(()), // killed before the database was created
    };
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        match parse_file_name(&name.to_string_lossy()) {
            Some(FileKind::Table(n)) if !live.contains(&n) => report.stray_tables += 1,
            Some(FileKind::Wal(_)) => report.wal_files += 1,
            Some(FileKind::Blob(_)) => report.blob_files += 1,
            _ => {}
        }
    }
    Ok(())
}
