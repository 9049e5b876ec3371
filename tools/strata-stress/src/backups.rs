//! Backups under the crash test: the workload takes incremental backups
//! (`BackupEngine`, docs/backup-format.md) into `D/backups` while the
//! other threads write, and after each kill the verifier checks every
//! backup listed and restores the newest.
//!
//! What a backup must hold is bounded by the expected state: every write
//! acknowledged before the backup started is in it, and nothing issued
//! after it finished. So before it starts the workload records, per key,
//! the committed state (`lo`: acknowledged), and once it returns the latest
//! state issued (`hi`: the pending write's, or the committed one), in
//! `D/backup-bounds/<id>`. Before the backup starts, `lo` is also written
//! as `D/backup-bounds/next` with the id the backup will get, so a kill
//! after the backup's metadata is in place but before its bounds are
//! leaves `lo`; the verifier then takes the expected state at the kill as
//! `hi` (later than the backup's end, so still a bound). The restored
//! backup's key `i` must then hold the state of one generation of `i`
//! between its `lo` and `hi` (the value names its generation and batch;
//! an absence or an empty value must be possible there), and across keys
//! it must be one consistent state: the bank's total intact and every
//! token in exactly one keyspace. Each backup the workload takes with
//! `check` is also restored at once and compared, keyspace by keyspace,
//! with a snapshot at its sequence number (`copy_check.rs`): the exact
//! check the crash cannot give.
//!
//! After each backup the workload purges all but the newest
//! [`BACKUPS_KEPT`], so the directory stays bounded. A kill in a backup
//! or a purge leaves what the engine's open must clean up (RocksDB leaves
//! a private `.tmp` directory it removes on the next open; strata's
//! layout leaves `meta/<id>.tmp`, `private/<id>/` without metadata, and
//! shared tables no metadata names): the verifier counts those before
//! opening the engine, and checks that none is left after.

use crate::expected::{AnyError, SharedState, Slot};
use crate::value::{self, ValueId};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use strata::{BackupEngine, BackupId, CheckpointOptions, Db, Options};

/// Backups kept after each purge.
pub const BACKUPS_KEPT: usize = 2;

/// One key's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyState {
    pub gen: u32,
    pub present: bool,
    pub batch: u64,
}

impl KeyState {
    /// The last acknowledged write's state.
    pub fn committed(slot: &Slot) -> KeyState {
        KeyState {
            gen: slot.gen,
            present: slot.present,
            batch: slot.batch,
        }
    }

    /// The state of the last write issued: the one in flight, if any.
    pub fn latest(slot: &Slot) -> KeyState {
        match slot.pending {
            Some(p) => KeyState {
                gen: p.gen,
                present: p.present,
                batch: p.batch,
            },
            None => KeyState::committed(slot),
        }
    }
}

/// What a backup must hold, key by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub id: BackupId,
    /// Acknowledged before the backup started.
    pub lo: Vec<KeyState>,
    /// Issued before it finished (`None`: not known; the kill came first).
    pub hi: Option<Vec<KeyState>>,
}

const MAGIC: &[u8; 8] = b"STRXBKBD";
const KEY_STATE_BYTES: usize = 13;

impl Bounds {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 + 2 * KEY_STATE_BYTES * self.lo.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.id.to_le_bytes());
        b.extend_from_slice(&(self.lo.len() as u32).to_le_bytes());
        b.push(u8::from(self.hi.is_some()));
        for s in self.lo.iter().chain(self.hi.iter().flatten()) {
            b.extend_from_slice(&s.gen.to_le_bytes());
            b.push(u8::from(s.present));
            b.extend_from_slice(&s.batch.to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(path: &Path, b: &[u8]) -> Result<Bounds, AnyError> {
        let bad = |why: &str| -> AnyError { format!("{}: {why}", path.display()).into() };
        if b.len() < 21 + 4 || &b[..8] != MAGIC {
            return Err(bad("not a backup-bounds file"));
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(bad("checksum mismatch"));
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]);
        let id = u32_at(8);
        let keys = u32_at(12) as usize;
        let has_hi = body[16] == 1;
        let lists = if has_hi { 2 } else { 1 };
        if body.len() != 17 + lists * keys * KEY_STATE_BYTES {
            return Err(bad("wrong length"));
        }
        let state_at = |n: usize| {
            let o = 17 + n * KEY_STATE_BYTES;
            let mut batch = [0u8; 8];
            batch.copy_from_slice(&body[o + 5..o + 13]);
            KeyState {
                gen: u32_at(o),
                present: body[o + 4] == 1,
                batch: u64::from_le_bytes(batch),
            }
        };
        Ok(Bounds {
            id,
            lo: (0..keys).map(state_at).collect(),
            hi: has_hi.then(|| (keys..2 * keys).map(state_at).collect()),
        })
    }

    /// Write as `dir/name`: a temporary file renamed (no fsync: the crash
    /// test kills processes, and the page cache survives that).
    fn write(&self, dir: &Path, name: &str) -> Result<(), AnyError> {
        std::fs::create_dir_all(dir)?;
        let temp = dir.join(format!("{name}.tmp"));
        std::fs::write(&temp, self.encode())?;
        std::fs::rename(&temp, dir.join(name))?;
        Ok(())
    }

    fn read(path: &Path) -> Result<Option<Bounds>, AnyError> {
        match std::fs::read(path) {
            Ok(data) => Bounds::decode(path, &data).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display()).into()),
        }
    }
}

/// Where a run's backups go.
pub struct BackupTarget {
    pub engine: parking_lot::Mutex<BackupEngine>,
    /// `D/backup-bounds`.
    pub bounds_dir: PathBuf,
    /// Where a checked backup is restored (`D/checkpoints`).
    pub restore_dir: PathBuf,
}

impl std::fmt::Debug for BackupTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupTarget")
            .field("bounds_dir", &self.bounds_dir)
            .finish_non_exhaustive()
    }
}

/// `<id>.restored` in `D/backup-bounds` marks a backup a verification
/// already restored and checked: a backup does not change (every verify
/// checks its files' checksums), so the next ones skip the restore.
const RESTORED: &str = ".restored";

/// The file of `D` holding the next backup's `lo` before it exists.
const NEXT: &str = "next";

impl BackupTarget {
    /// Open the engine on `D/backups` (which removes what a kill left).
    pub fn open(dir: &Path) -> Result<BackupTarget, AnyError> {
        // Backups a killed run was restoring to check are garbage.
        let restores = dir.join("checkpoints");
        if restores.exists() {
            for entry in std::fs::read_dir(&restores)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().contains("-backup") {
                    std::fs::remove_dir_all(entry.path())?;
                }
            }
        }
        Ok(BackupTarget {
            engine: parking_lot::Mutex::new(BackupEngine::open(dir.join("backups"))?),
            bounds_dir: dir.join("backup-bounds"),
            restore_dir: dir.join("checkpoints"),
        })
    }

    /// Take a backup of `db` while the other threads write, recording its
    /// bounds; with `check`, restore it and compare it with a snapshot at
    /// its sequence number. Then purge all but the newest few. `name`
    /// names the restored copy.
    pub fn take(
        &self,
        db: &Db,
        state: &SharedState,
        check: bool,
        name: &str,
        options: &Options,
    ) -> Result<(), AnyError> {
        let mut engine = self.engine.lock();
        let id = engine.list().last().map_or(1, |b| b.id + 1);
        let keys = state.keys();
        let lo: Vec<KeyState> = (0..keys)
            .map(|i| KeyState::committed(&state.get(i)))
            .collect();
        let mut bounds = Bounds { id, lo, hi: None };
        bounds.write(&self.bounds_dir, NEXT)?;
        let (info, snapshot) = engine.create_backup_with(
            db,
            &CheckpointOptions {
                keep_snapshot: check,
                ..CheckpointOptions::default()
            },
        )?;
        bounds.hi = Some((0..keys).map(|i| KeyState::latest(&state.get(i))).collect());
        if info.id != id {
            return Err(format!("the backup took id {}, not the next one, {id}", info.id).into());
        }
        bounds.write(&self.bounds_dir, &id.to_string())?;
        std::fs::remove_file(self.bounds_dir.join(NEXT))?;
        if let Some(snapshot) = snapshot {
            let to = self.restore_dir.join(name);
            std::fs::create_dir_all(&self.restore_dir)?;
            engine.restore(id, &to)?;
            let copy = Db::open(&to, options.clone())?;
            crate::copy_check::equals_snapshot(
                db,
                &snapshot,
                &copy,
                options,
                &format!("backup {id} restored"),
                info.sequence,
            )?;
            copy.close()?;
            std::fs::remove_dir_all(&to)?;
        }
        engine.purge_old_backups(BACKUPS_KEPT)?;
        let live: BTreeSet<BackupId> = engine.list().iter().map(|b| b.id).collect();
        remove_stale_bounds(&self.bounds_dir, &live)?;
        Ok(())
    }
}

/// Remove the bounds files (and restored marks) of backups not in `live`,
/// `next` (whose backup is done, or never came to be) and temporary files.
fn remove_stale_bounds(dir: &Path, live: &BTreeSet<BackupId>) -> Result<(), AnyError> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let id = name.strip_suffix(RESTORED).unwrap_or(&name);
        let stale = match id.parse::<BackupId>() {
            Ok(id) => !live.contains(&id),
            Err(_) => true,
        };
        if stale {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// The newest backup whose bounds were written: one that returned.
fn newest_bounds(dir: &Path) -> Result<Option<BackupId>, AnyError> {
    if !dir.exists() {
        return Ok(None);
    }
    let mut newest = None;
    for entry in std::fs::read_dir(dir)? {
        if let Ok(id) = entry?.file_name().to_string_lossy().parse::<BackupId>() {
            newest = newest.max(Some(id));
        }
    }
    Ok(newest)
}

/// What the verifier found in `D/backups`.
#[derive(Debug, Default)]
pub struct BackupReport {
    /// Backups listed, each verified (every file's size and checksum).
    pub listed: u32,
    /// Whether the newest was restored, opened and checked (not done again
    /// once done for a backup).
    pub restored: bool,
    /// Keys of the restored backup checked against its bounds.
    pub keys_checked: u32,
    /// Whether the newest backup's bounds were cut short by the kill
    /// (`hi` taken from the expected state at the kill).
    pub bounds_from_kill: bool,
    /// What an interrupted backup or purge left before the engine opened.
    pub leftovers: u32,
}

/// Check `D/backups` after a kill: count what an interrupted backup left,
/// open the engine (which must clean it all), verify every backup, and
/// restore the newest into an empty directory, open it with `options` and
/// check it against its bounds. `latest` is each key's latest issued
/// state at the kill (the upper bound when the kill cut a backup's own
/// short).
pub fn verify(
    dir: &Path,
    options: &Options,
    latest: &[KeyState],
) -> Result<BackupReport, AnyError> {
    let mut report = BackupReport::default();
    let backups = dir.join("backups");
    if !backups.exists() {
        return Ok(report);
    }
    report.leftovers = leftovers(&backups)?.len() as u32;
    let engine = BackupEngine::open(&backups)?;
    let left = leftovers(&backups)?;
    if !left.is_empty() {
        return Err(format!(
            "opening the backup engine left what an interrupted backup made: {left:?}"
        )
        .into());
    }
    let list = engine.list();
    report.listed = list.len() as u32;
    for b in &list {
        engine
            .verify(b.id)
            .map_err(|e| format!("backup {} fails verify: {e}", b.id))?;
    }
    let bounds_dir = dir.join("backup-bounds");
    // The last backup that returned (its bounds were written after) is
    // never lost: purges keep the newest.
    if let Some(returned) = newest_bounds(&bounds_dir)? {
        if list.last().is_none_or(|b| b.id < returned) {
            return Err(format!(
                "backup {returned} returned before the kill, but the newest backup listed is {:?}",
                list.last().map(|b| b.id)
            )
            .into());
        }
    }
    let Some(newest) = list.last() else {
        remove_stale_bounds(&bounds_dir, &BTreeSet::new())?;
        return Ok(report);
    };
    let next = Bounds::read(&bounds_dir.join(NEXT))?.filter(|b| b.id == newest.id);
    let bounds = match Bounds::read(&bounds_dir.join(newest.id.to_string()))? {
        Some(b) => b,
        None => {
            // The kill came after the backup's metadata, before its
            // bounds: the state at the kill bounds it from above.
            let mut b = next.ok_or_else(|| {
                format!(
                    "backup {} has no bounds file (nor {NEXT} for it) in {}",
                    newest.id,
                    bounds_dir.display()
                )
            })?;
            b.hi = Some(latest.to_vec());
            report.bounds_from_kill = true;
            b.write(&bounds_dir, &newest.id.to_string())?;
            b
        }
    };
    if bounds.lo.len() != latest.len() {
        return Err(format!(
            "backup {}'s bounds cover {} keys, the expected state {}",
            newest.id,
            bounds.lo.len(),
            latest.len()
        )
        .into());
    }
    let live: BTreeSet<BackupId> = list.iter().map(|b| b.id).collect();
    remove_stale_bounds(&bounds_dir, &live)?;

    let restored_mark = bounds_dir.join(format!("{}{RESTORED}", newest.id));
    if restored_mark.exists() {
        return Ok(report);
    }
    let to = dir.join("checkpoints").join("restored");
    if to.exists() {
        std::fs::remove_dir_all(&to)?;
    }
    engine.restore(newest.id, &to)?;
    let db = Db::open(&to, options.clone())
        .map_err(|e| format!("backup {} restored does not open: {e}", newest.id))?;
    crate::counters::open(&db, options)?;
    let hi = bounds.hi.as_deref().unwrap_or(latest);
    for (i, (lo, hi)) in bounds.lo.iter().zip(hi).enumerate() {
        let got = db.get(value::key(i as u32))?;
        check_between(i as u32, lo, hi, got.as_deref())
            .map_err(|e| format!("backup {} (sequence {}): {e}", newest.id, newest.sequence))?;
        report.keys_checked += 1;
    }
    // One consistent state across keys and keyspaces.
    crate::moves::locate(&crate::moves::open(&db)?)?;
    crate::bank::audit(&crate::bank::open(&db)?)?;
    db.check_invariants()?;
    db.verify_checksums()?;
    db.close()?;
    std::fs::remove_dir_all(&to)?;
    std::fs::write(&restored_mark, b"")?;
    report.restored = true;
    Ok(report)
}

/// Key `i` of a backup holds `got`: it must be the state one of the key's
/// generations from `lo` to `hi` left. The states between are not
/// recorded: a value names its generation (and is checked exactly at
/// either end), an absence or an empty value is allowed wherever one
/// might have been written.
pub fn check_between(
    i: u32,
    lo: &KeyState,
    hi: &KeyState,
    got: Option<&[u8]>,
) -> Result<(), String> {
    if hi.gen < lo.gen {
        return Err(format!("key {i}: bounds out of order: {lo:?} then {hi:?}"));
    }
    let between = hi.gen - lo.gen >= 2;
    let empty_at = |s: &KeyState| {
        s.present
            && value::is_empty_value(&ValueId {
                key: i,
                gen: s.gen,
                batch: s.batch,
            })
    };
    let decoded = got
        .map(value::decode)
        .transpose()
        .map_err(|e| format!("key {i}: {e}"))?;
    let ok = match decoded {
        None => !lo.present || !hi.present || between,
        Some(None) => empty_at(lo) || empty_at(hi) || between,
        Some(Some(id)) => {
            id.key == i
                && (lo.gen..=hi.gen).contains(&id.gen)
                && (id.gen != lo.gen || lo.present && id.batch == lo.batch)
                && (id.gen != hi.gen || hi.present && id.batch == hi.batch)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key {i} holds {:?}, no state between the one acknowledged before the backup \
             started ({lo:?}) and the last issued before it ended ({hi:?})",
            got.map(|v| (v.len(), value::decode(v)))
        ))
    }
}

/// What an interrupted backup or purge leaves in `backups`: metadata
/// being written, private directories of backups with no metadata, and
/// shared tables no metadata names (copies being made included).
fn leftovers(backups: &Path) -> Result<Vec<String>, AnyError> {
    let names = |d: &Path| -> Result<Vec<String>, AnyError> {
        if !d.exists() {
            return Ok(Vec::new());
        }
        std::fs::read_dir(d)?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect()
    };
    let mut left = Vec::new();
    let mut metas = BTreeSet::new();
    let mut named = BTreeSet::new();
    for name in names(&backups.join("meta"))? {
        if name.parse::<BackupId>().is_err() {
            left.push(format!("meta/{name}"));
            continue;
        }
        // The format's `file <stored> <size> <crc32> <name>` lines
        // (docs/backup-format.md).
        let text = std::fs::read_to_string(backups.join("meta").join(&name))?;
        for line in text.lines() {
            if let Some(stored) = line.strip_prefix("file ").and_then(|l| l.split(' ').next()) {
                named.insert(stored.to_string());
            }
        }
        metas.insert(name);
    }
    for name in names(&backups.join("private"))? {
        if !metas.contains(&name) {
            left.push(format!("private/{name}"));
        }
    }
    for name in names(&backups.join("shared"))? {
        if !named.contains(&format!("shared/{name}")) {
            left.push(format!("shared/{name}"));
        }
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_round_trip_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = |gen, present, batch| KeyState {
            gen,
            present,
            batch,
        };
        let b = Bounds {
            id: 7,
            lo: vec![s(1, true, 5), s(0, false, 0)],
            hi: Some(vec![s(3, false, 9), s(1, true, 6)]),
        };
        b.write(dir.path(), "7").unwrap();
        assert_eq!(
            Bounds::read(&dir.path().join("7")).unwrap(),
            Some(b.clone())
        );
        assert_eq!(Bounds::read(&dir.path().join("8")).unwrap(), None);
        let mut data = b.encode();
        data[20] ^= 1;
        assert!(Bounds::decode(Path::new("x"), &data).is_err());
    }

    #[test]
    fn a_key_must_hold_a_state_between_its_bounds() {
        let s = |gen, present, batch| KeyState {
            gen,
            present,
            batch,
        };
        // A batch whose value at generation 2 is not empty.
        let batch = (1..)
            .find(|&b| {
                !value::is_empty_value(&ValueId {
                    key: 3,
                    gen: 2,
                    batch: b,
                })
            })
            .unwrap();
        let v = value::encode(
            &ValueId {
                key: 3,
                gen: 2,
                batch,
            },
            10,
        );
        // No write between: exactly the acknowledged state.
        assert!(check_between(3, &s(2, true, batch), &s(2, true, batch), Some(&v)).is_ok());
        assert!(check_between(3, &s(2, true, batch), &s(2, true, batch), None).is_err());
        assert!(
            check_between(3, &s(2, true, batch + 1), &s(2, true, batch + 1), Some(&v)).is_err()
        );
        // One write in flight: the old state or the new.
        assert!(check_between(3, &s(1, false, 0), &s(2, true, batch), None).is_ok());
        assert!(check_between(3, &s(1, false, 0), &s(2, true, batch), Some(&v)).is_ok());
        assert!(check_between(3, &s(1, true, 1), &s(2, true, batch), None).is_err());
        // A generation outside the bounds: too old or too new.
        assert!(check_between(3, &s(3, true, 1), &s(5, true, 1), Some(&v)).is_err());
        assert!(check_between(3, &s(0, false, 0), &s(1, true, 1), Some(&v)).is_err());
        // Another key's value.
        assert!(check_between(4, &s(1, false, 0), &s(3, true, 1), Some(&v)).is_err());
        // Writes between the bounds: anything of the key in range.
        assert!(check_between(3, &s(1, true, 1), &s(3, true, 1), None).is_ok());
        assert!(check_between(3, &s(1, true, 1), &s(3, true, 1), Some(&v)).is_ok());
    }
}
