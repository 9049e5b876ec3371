//! `--verify-only`: reopen the database after a crash and check it against
//! the expected state: every key, full and random range scans in both
//! directions, and batch atomicity. Keys whose write was in flight may
//! hold the old or the new state; the state found is then recorded as
//! committed, so the next run starts from an exact expected state.

use crate::expected::{AnyError, ExpectedState, Slot};
use crate::rng::Rng;
use crate::value;
use crate::workload::{check_exact, check_integrity};
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
    pub range_scans: u32,
}

impl Report {
    pub fn line(&self) -> String {
        format!(
            "verify ok: keys={} present={} pending_new={} pending_old={} pending_batches={} stray_tables={} wal_files={} range_scans={}",
            self.keys,
            self.present,
            self.pending_new,
            self.pending_old,
            self.pending_batches,
            self.stray_tables,
            self.wal_files,
            self.range_scans
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

pub fn verify(
    db_dir: &Path,
    open: impl FnOnce() -> strata::Result<Db>,
    state: &mut ExpectedState,
    seed: u64,
) -> Result<Report, AnyError> {
    let mut report = Report {
        keys: state.keys(),
        ..Report::default()
    };
    inspect_directory(db_dir, &mut report)?;
    let db = open().map_err(|e| format!("reopen failed: {e}"))?;
    // Open may start compactions; the stray-file check needs them done.
    db.wait_for_compactions()?;
    db.check_invariants()
        .map_err(|e| format!("invariants after reopen: {e}"))?;

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
    for (batch, keys) in &batches {
        if keys.len() > 1 {
            report.pending_batches += 1;
        }
        let old = keys.iter().any(|(_, o)| *o == Outcome::Old);
        let new = keys.iter().any(|(_, o)| *o == Outcome::New);
        if old && new {
            return Err(format!("verify: batch {batch:#x} is torn: {keys:?}").into());
        }
    }
    for (i, slot) in resolved {
        state.set(i, slot)?;
    }
    state.sync()?;

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
            .levels
            .iter()
            .flat_map(|l| l.keys().copied())
            .collect(),
        Err(_) => return Ok(()), // killed before the database was created
    };
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        match parse_file_name(&name.to_string_lossy()) {
            Some(FileKind::Table(n)) if !live.contains(&n) => report.stray_tables += 1,
            Some(FileKind::Wal(_)) => report.wal_files += 1,
            _ => {}
        }
    }
    Ok(())
}
