//! Ingestion into fresh key ranges: the keyspace `ingested`, written only
//! by ingestions, each a file of keys no table or memtable overlaps, so
//! it goes to the bottom level as it is, at sequence number 0, hard-linked
//! or copied (the other half of `Db::ingest`: the default keyspace's
//! ingestions, `ingest.rs`, overlap data and are numbered). While another
//! thread holds a snapshot, it is numbered all the same.
//!
//! Keys are `<time>-<batch>-<j>` (16, 16 and 4 hex digits: the clock's
//! microseconds, the ingestion's batch id, the key's place), so each
//! ingestion's range is its own and later ones sort after earlier ones.
//! A value names its batch, its place and the ingestion's key count, with
//! a checksum.
//!
//! The ledger `D/ingested` says what must be there: a record appended and
//! fsynced before each ingestion is issued (`issued`, with its key count),
//! one appended once it returned (`returned`), and, after a kill, one the
//! verifier appends for each ingestion it found in flight (`returned` if
//! found whole, `absent` if not at all). Records are 16 bytes, each with a
//! crc; a torn last record (the kill came within its write) is ignored.
//! After a kill: every key of the keyspace belongs to an ingestion in the
//! ledger, whose keys are there whole (all or nothing); every returned
//! one is there, every absent one is not (it never comes back).

use crate::expected::AnyError;
use crate::rng::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use strata::{Db, IngestOptions, Keyspace, Options, SstWriter};

pub const KEYSPACE: &str = "ingested";

const RECORD_BYTES: usize = 24;

/// What the ledger says of one ingestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Issued; a kill may have come before it returned.
    Issued,
    Returned,
    /// Found not to have happened, after a kill.
    Absent,
}

impl Fate {
    fn code(self) -> u8 {
        match self {
            Fate::Issued => 1,
            Fate::Returned => 2,
            Fate::Absent => 3,
        }
    }
}

/// One ingestion: its batch, its keys' time prefix and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub batch: u64,
    pub micros: u64,
    pub keys: u16,
}

impl Entry {
    /// Its first key, which the MANIFEST probe looks for.
    pub fn first_key(&self) -> Vec<u8> {
        key(self.micros, self.batch, 0)
    }
}

/// The batch a value of this keyspace names.
pub fn batch_of(v: &[u8]) -> Option<u64> {
    let b: [u8; 8] = v.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// The ingestions' ledger, appended to.
#[derive(Debug)]
pub struct Ledger {
    file: File,
    path: PathBuf,
}

impl Ledger {
    pub fn open(path: &Path) -> Result<Ledger, AnyError> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Ledger {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Append one record (one `write`), fsynced if `sync`.
    pub fn append(&self, e: &Entry, fate: Fate, sync: bool) -> Result<(), AnyError> {
        let mut r = [0u8; RECORD_BYTES];
        r[..8].copy_from_slice(&e.batch.to_le_bytes());
        r[8..16].copy_from_slice(&e.micros.to_le_bytes());
        r[16..18].copy_from_slice(&e.keys.to_le_bytes());
        r[18] = fate.code();
        let crc = crc32fast::hash(&r[..20]);
        r[20..].copy_from_slice(&crc.to_le_bytes());
        (&self.file).write_all(&r)?;
        if sync {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Every ingestion the ledger names, by batch, with its latest fate.
    pub fn read(&self) -> Result<BTreeMap<u64, (Entry, Fate)>, AnyError> {
        let data = std::fs::read(&self.path)?;
        let mut out = BTreeMap::new();
        let whole = data.len() / RECORD_BYTES * RECORD_BYTES;
        for (n, r) in data[..whole].chunks(RECORD_BYTES).enumerate() {
            let crc = u32::from_le_bytes([r[20], r[21], r[22], r[23]]);
            if crc32fast::hash(&r[..20]) != crc {
                // Only the last record may be torn by a kill.
                if (n + 1) * RECORD_BYTES == whole {
                    break;
                }
                return Err(format!("{}: record {n} is damaged", self.path.display()).into());
            }
            let u64_at = |o: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&r[o..o + 8]);
                u64::from_le_bytes(b)
            };
            let fate = match r[18] {
                1 => Fate::Issued,
                2 => Fate::Returned,
                3 => Fate::Absent,
                x => return Err(format!("{}: record {n} has fate {x}", self.path.display()).into()),
            };
            let e = Entry {
                batch: u64_at(0),
                micros: u64_at(8),
                keys: u16::from_le_bytes([r[16], r[17]]),
            };
            out.insert(e.batch, (e, fate));
        }
        Ok(out)
    }
}

fn key(micros: u64, batch: u64, j: u16) -> Vec<u8> {
    format!("{micros:016x}-{batch:016x}-{j:04x}").into_bytes()
}

/// The batch and place a key names.
fn parse_key(k: &[u8]) -> Option<(u64, u16)> {
    let s = std::str::from_utf8(k).ok()?;
    let mut parts = s.split('-');
    let (_, batch, j) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || s.len() != 16 + 1 + 16 + 1 + 4 {
        return None;
    }
    Some((
        u64::from_str_radix(batch, 16).ok()?,
        u16::from_str_radix(j, 16).ok()?,
    ))
}

fn value(batch: u64, j: u16, keys: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + 4);
    v.extend_from_slice(&batch.to_le_bytes());
    v.extend_from_slice(&j.to_le_bytes());
    v.extend_from_slice(&keys.to_le_bytes());
    v.extend_from_slice(&[0x5a; 4]);
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

/// Ingest a fresh range of 1-32 keys as batch `batch`, its file built as
/// `staging/<name>-f.sst`. Returns whether it was moved and whether its
/// table is at sequence number 0 (as far as the live files still show).
#[allow(clippy::too_many_arguments)]
pub fn ingest_fresh(
    db: &Db,
    ks: &Keyspace,
    ledger: &Ledger,
    rng: &mut Rng,
    batch: u64,
    staging: &Path,
    name: &str,
    options: &Options,
) -> Result<(bool, bool), AnyError> {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros() as u64;
    let keys = 1 + rng.below(32) as u16;
    let path = staging.join(format!("{name}-f.sst"));
    let mut writer = SstWriter::create(&path, options)?;
    for j in 0..keys {
        writer.put(key(micros, batch, j), value(batch, j, keys))?;
    }
    writer.finish()?;
    let entry = Entry {
        batch,
        micros,
        keys,
    };
    ledger.append(&entry, Fate::Issued, true)?;
    let moved = rng.one_in(2);
    ks.ingest(
        &[&path],
        &IngestOptions {
            move_files: moved,
            verify_checksums_before_ingest: !rng.one_in(4),
            ..IngestOptions::default()
        },
    )?;
    ledger.append(&entry, Fate::Returned, false)?;
    if moved {
        if path.exists() {
            return Err(format!(
                "ingest with move_files returned but left the source file {}",
                path.display()
            )
            .into());
        }
    } else {
        std::fs::remove_file(&path)?;
    }
    let (first, last) = (key(micros, batch, 0), key(micros, batch, keys - 1));
    for (k, j) in [(&first, 0), (&last, keys - 1)] {
        let got = ks.get(k)?;
        if got.as_deref() != Some(value(batch, j, keys).as_slice()) {
            return Err(format!(
                "ingested key {} reads {got:?} once the ingestion returned",
                String::from_utf8_lossy(k)
            )
            .into());
        }
    }
    let unnumbered = db.live_files().iter().any(|f| {
        f.keyspace == KEYSPACE && f.smallest == first && f.largest == last && f.largest_seqno == 0
    });
    Ok((moved, unnumbered))
}

/// What the verifier found in the keyspace.
#[derive(Debug, Default)]
pub struct IngestedReport {
    /// Ingestions found whole, and those in flight at the kill found whole
    /// and found absent.
    pub whole: u32,
    pub in_flight_new: u32,
    pub in_flight_old: u32,
}

/// The ingestions in flight at the kill, for the MANIFEST probe.
pub fn in_flight(ledger: &Ledger) -> Result<Vec<Entry>, AnyError> {
    Ok(ledger
        .read()?
        .into_values()
        .filter(|(_, f)| *f == Fate::Issued)
        .map(|(e, _)| e)
        .collect())
}

/// After a kill: check the keyspace against the ledger (every key of an
/// ingestion the ledger names, each ingestion whole or, if in flight or
/// absent, not at all, every returned one whole, an in-flight one whole
/// exactly if the MANIFEST named it before the reopen: `committed`), then
/// record the fate of those in flight.
pub fn verify(
    ks: &Keyspace,
    ledger: &Ledger,
    committed: &BTreeSet<u64>,
) -> Result<IngestedReport, AnyError> {
    let fates = ledger.read()?;
    let mut found: BTreeMap<u64, Vec<u16>> = BTreeMap::new();
    for entry in ks.iter() {
        let (k, v) = entry?;
        let shown = || String::from_utf8_lossy(&k).into_owned();
        let (batch, j) = parse_key(&k)
            .ok_or_else(|| format!("keyspace {KEYSPACE} holds a foreign key {:?}", shown()))?;
        let &(e, fate) = fates.get(&batch).ok_or_else(|| {
            format!(
                "key {:?} belongs to ingestion {batch:#x}, which the ledger does not name",
                shown()
            )
        })?;
        if fate == Fate::Absent {
            return Err(format!(
                "key {:?} of ingestion {batch:#x}, found absent after an earlier kill, is back",
                shown()
            )
            .into());
        }
        if v.as_ref() != value(batch, j, e.keys).as_slice() {
            return Err(format!("key {:?} holds a wrong value {v:?}", shown()).into());
        }
        found.entry(batch).or_default().push(j);
    }
    let mut report = IngestedReport::default();
    let mut fates_found = Vec::new();
    for (&batch, &(e, fate)) in &fates {
        let got = found.get(&batch).map_or(0, Vec::len);
        let whole = got == usize::from(e.keys);
        if got != 0 && !whole {
            return Err(format!(
                "ingestion {batch:#x} is torn: {got} of its {} keys are there",
                e.keys
            )
            .into());
        }
        match (fate, whole) {
            (Fate::Returned, false) => {
                return Err(format!(
                "ingestion {batch:#x} returned before the kill, but none of its {} keys is there",
                e.keys
            )
                .into())
            }
            (Fate::Issued, _) if whole != committed.contains(&batch) => {
                return Err(format!(
                    "ingestion {batch:#x}, in flight at the kill, is {} after the reopen, but the \
                     MANIFEST {} it before",
                    if whole { "there" } else { "absent" },
                    if whole { "did not name" } else { "named" }
                )
                .into())
            }
            (Fate::Issued, true) => {
                report.in_flight_new += 1;
                fates_found.push((e, Fate::Returned));
            }
            (Fate::Issued, false) => {
                report.in_flight_old += 1;
                fates_found.push((e, Fate::Absent));
            }
            _ => {}
        }
        report.whole += u32::from(whole);
    }
    // Recorded only once everything passed.
    for (e, fate) in fates_found {
        ledger.append(&e, fate, false)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(batch: u64, keys: u16) -> Entry {
        Entry {
            batch,
            micros: 1,
            keys,
        }
    }

    #[test]
    fn the_ledger_finds_torn_lost_and_resurrected_ingestions() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db"), Options::default()).unwrap();
        let ks = db.keyspace(KEYSPACE).unwrap();
        let staging = dir.path().join("ingest");
        std::fs::create_dir_all(&staging).unwrap();
        let ledger = Ledger::open(&dir.path().join("ingested")).unwrap();
        let mut rng = Rng::new(3);
        for n in 0..4u64 {
            let name = format!("t{n}");
            ingest_fresh(
                &db,
                &ks,
                &ledger,
                &mut rng,
                10 + n,
                &staging,
                &name,
                &Options::default(),
            )
            .unwrap();
        }
        let none = BTreeSet::new();
        let r = verify(&ks, &ledger, &none).unwrap();
        assert_eq!((r.whole, r.in_flight_new, r.in_flight_old), (4, 0, 0));

        // Issued and not returned: found whole (the MANIFEST named it), or
        // absent (it did not), then recorded.
        ledger.append(&entry(20, 3), Fate::Issued, false).unwrap();
        ledger.append(&entry(21, 2), Fate::Issued, false).unwrap();
        for j in 0..3 {
            ks.put(key(1, 20, j), value(20, j, 3)).unwrap();
        }
        let in_flight: Vec<u64> = in_flight(&ledger)
            .unwrap()
            .iter()
            .map(|e| e.batch)
            .collect();
        assert_eq!(in_flight, [20, 21]);
        // Whole, but the MANIFEST named none of its tables: refused.
        let e = verify(&ks, &ledger, &none).unwrap_err().to_string();
        assert!(e.contains("did not name"), "{e}");
        // Absent, though the MANIFEST named it: refused.
        let both = BTreeSet::from([20, 21]);
        let e = verify(&ks, &ledger, &both).unwrap_err().to_string();
        assert!(e.contains("is absent after the reopen"), "{e}");
        let r = verify(&ks, &ledger, &BTreeSet::from([20])).unwrap();
        assert_eq!((r.whole, r.in_flight_new, r.in_flight_old), (5, 1, 1));
        assert_eq!(ledger.read().unwrap()[&21].1, Fate::Absent);

        // An absent one that comes back.
        ks.put(key(1, 21, 0), value(21, 0, 2)).unwrap();
        let e = verify(&ks, &ledger, &none).unwrap_err().to_string();
        assert!(e.contains("is back"), "{e}");
        ks.delete(key(1, 21, 0)).unwrap();
        // A torn one.
        ks.delete(key(1, 20, 1)).unwrap();
        let e = verify(&ks, &ledger, &none).unwrap_err().to_string();
        assert!(e.contains("is torn"), "{e}");
        // A returned one lost whole.
        for j in 0..3 {
            ks.delete(key(1, 20, j)).unwrap();
        }
        let e = verify(&ks, &ledger, &none).unwrap_err().to_string();
        assert!(e.contains("returned before the kill"), "{e}");
        // A key no ingestion the ledger names made.
        for j in 0..3 {
            ks.put(key(1, 20, j), value(20, j, 3)).unwrap();
        }
        ks.put(key(1, 99, 0), value(99, 0, 1)).unwrap();
        let e = verify(&ks, &ledger, &none).unwrap_err().to_string();
        assert!(e.contains("does not name"), "{e}");
    }

    #[test]
    fn a_torn_last_record_is_ignored_and_an_earlier_one_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingested");
        let ledger = Ledger::open(&path).unwrap();
        ledger.append(&entry(1, 4), Fate::Issued, false).unwrap();
        ledger.append(&entry(1, 4), Fate::Returned, false).unwrap();
        ledger.append(&entry(2, 4), Fate::Issued, false).unwrap();
        let mut data = std::fs::read(&path).unwrap();
        data.truncate(data.len() - 5);
        std::fs::write(&path, &data).unwrap();
        assert_eq!(ledger.read().unwrap().len(), 1);
        data[3] ^= 1;
        std::fs::write(&path, &data).unwrap();
        assert!(ledger.read().unwrap_err().to_string().contains("record 0"));
    }
}
