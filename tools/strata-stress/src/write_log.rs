//! The write sequence a crashed process left on disk, read before the
//! database is reopened: the prefix property checked by sequence number,
//! across threads.
//!
//! Every write gets a sequence number; a write group is one WAL record
//! holding its first number and count (`src/batch.rs`), framed into the
//! WAL in sequence order. A memtable holds a contiguous run of numbers,
//! flushed whole into one L0 table, after which the MANIFEST's
//! `last_sequence` is the run's last number and its WAL is retired. So,
//! with no `disable_wal` write (the workload never makes one), the disk
//! must show one unbroken sequence:
//!
//! 1. each L0 table holds exactly `largest_seqno - smallest_seqno + 1`
//!    writes: its entries and its range deletes (the distinct sequence
//!    numbers of its tombstone fragments; a missing write in a flushed
//!    memtable is a hole);
//! 2. the records of the live WALs (those recovery replays, read with the
//!    same reader and the same stopping rules) number their writes
//!    `last_sequence + 1, + 2, ...` with no gap and no overlap;
//! 3. after reopening, every key the live WALs write holds exactly what its
//!    last logged write left (`WriteLog::check_applied`): recovery applied
//!    the logged prefix, no less (a lost write) and no more. A logged range
//!    delete is the last write of every key in its range logged before it,
//!    and after reopening its range holds only keys put after it.
//!
//! With several keyspaces (the workload moves tokens between two, see
//! `moves.rs`) each keyspace has its own memtables and log number: a
//! keyspace's L0 table holds only its share of a run of sequence numbers,
//! so rule 1 applies while the database has one keyspace; rule 2 holds
//! for the chain of live WALs (those at or above the smallest log
//! number), continuing the MANIFEST's `last_sequence` when every keyspace
//! has the same log number (all were flushed, or idle, at the rotation
//! that started that WAL, so every earlier write is in a table; none was
//! ever dropped, whose flushes would have raised `last_sequence` past
//! them), and otherwise from its first record on; and rule 3 counts a record's
//! writes to a keyspace only from WALs at or above that keyspace's log
//! number (older ones are in its tables), and never a dropped keyspace's.
//!
//! Together with the expected state (every acknowledged write present)
//! that is the prefix rule: the database holds exactly the writes numbered
//! up to the end of the log, so an in-flight write of one thread is present
//! only if every write numbered before it, by any thread, is.

use crate::expected::AnyError;
use crate::value;
use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use strata::inspect::{
    parse_file_name, read_current_manifest, read_manifest, read_wal_chain, DecodedBatch, FileKind,
};
use strata::Db;
use strata_sstable::bytes::Bytes;
use strata_sstable::{Table, TableReadOptions, ValueKind};
use strata_wal::RecoveryMode;

/// The last logged write of one key.
#[derive(Debug, Clone)]
pub struct LastWrite {
    pub seq: u64,
    /// The value put, or `None` for a delete.
    pub value: Option<Vec<u8>>,
    /// The last write is a merge operand: the key holds some value, which
    /// only its merge operator and the writes before it say (the merge
    /// counters check it exactly: `counters.rs`).
    pub merged: bool,
    pub wal: u64,
}

/// A range delete in the live WALs: every key of `keyspace` in `[start,
/// end)` (`end` `None`: no end) written before `seq` is deleted.
#[derive(Debug, Clone)]
pub struct LoggedRangeDelete {
    pub keyspace: String,
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
    pub seq: u64,
    pub wal: u64,
}

impl LoggedRangeDelete {
    fn covers(&self, keyspace: &str, key: &[u8]) -> bool {
        self.keyspace == keyspace
            && self.start.as_slice() <= key
            && self.end.as_deref().is_none_or(|end| key < end)
    }
}

/// What the live WALs and L0 tables say.
#[derive(Debug, Default)]
pub struct WriteLog {
    /// Per keyspace name and user key, its last write in the live WALs
    /// that recovery replays into that keyspace (a range delete covering
    /// the key counts: its value is then `None`).
    pub last_write: HashMap<(String, Vec<u8>), LastWrite>,
    /// The range deletes recovery replays, in log order.
    pub range_deletes: Vec<LoggedRangeDelete>,
    /// The live keyspaces by id: name and log number.
    pub keyspaces: HashMap<u32, (String, u64)>,
    /// Batch ids of the values put in the live WALs, with their sequence
    /// numbers (the smallest, for a batch of several keys).
    pub batch_seq: HashMap<u64, u64>,
    /// The MANIFEST's `last_sequence`: every write up to it is in a table.
    pub flushed_seq: u64,
    /// The last logged sequence number (`flushed_seq` if nothing is logged).
    pub last_seq: u64,
    /// Writes (records' entries) in the live WALs.
    pub logged_writes: u64,
    pub live_wals: u32,
    /// L0 tables whose sequence numbers were checked without a hole.
    pub l0_tables: u32,
    /// Sequence numbers ingestions took (first, last), from the change
    /// feed's state file: no WAL record holds them, so the write sequence
    /// steps over them (docs/design/change-feed.md §2a).
    pub ingested: Vec<(u64, u64)>,
}

/// Read the database in `dir` as recovery will; `None` if there is none
/// yet (the process died before creating it).
pub fn read(dir: &Path) -> Result<Option<WriteLog>, AnyError> {
    if !dir.join("CURRENT").exists() {
        return Ok(None);
    }
    let fs = strata::fs::OsFileSystem;
    let (manifest_path, data) = read_current_manifest(&fs, dir)?;
    let manifest = read_manifest(&manifest_path, &data)?;
    let several = manifest.keyspaces.len() > 1;
    let log_numbers: std::collections::BTreeSet<u64> = manifest
        .keyspaces
        .values()
        .map(|ks| ks.log_number)
        .collect();
    let none_dropped = manifest.next_keyspace_id as usize == manifest.keyspaces.len();
    // Rule 2 from the MANIFEST's last sequence, or from the first record.
    let from_manifest = !several || (log_numbers.len() == 1 && none_dropped);
    let mut log = WriteLog {
        flushed_seq: manifest.last_sequence,
        last_seq: manifest.last_sequence,
        keyspaces: manifest
            .keyspaces
            .iter()
            .map(|(&id, ks)| (id, (ks.name.clone(), ks.log_number)))
            .collect(),
        ingested: strata::inspect::recorded_ingestions(&fs, dir)?,
        ..WriteLog::default()
    };
    // With several keyspaces a table holds one keyspace's share of a run
    // of sequence numbers: rule 1 cannot be checked there.
    let one_keyspace_tables = if several {
        None
    } else {
        Some(manifest.default_keyspace())
    };
    for meta in one_keyspace_tables
        .iter()
        .flat_map(|ks| ks.levels[0].values())
    {
        let path = dir.join(format!("{:06}.sst", meta.number));
        let table = Table::open(
            Bytes::from(std::fs::read(&path)?),
            TableReadOptions::default(),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        // A range delete's fragments share its sequence number.
        let range_deletes = table.range_tombstones().map_or(0, |t| {
            let seqnos: std::collections::BTreeSet<u64> = t.fragments().map(|f| f.seqno).collect();
            seqnos.len() as u64
        });
        let entries = table.properties().num_entries + range_deletes;
        let span = meta.largest_seqno - meta.smallest_seqno + 1;
        if entries != span {
            return Err(format!(
                "hole in the write sequence: L0 table {} holds {entries} writes (entries and \
                 range deletes) for the {span} sequence numbers {}..={} (a flushed memtable \
                 missed a write)",
                path.display(),
                meta.smallest_seqno,
                meta.largest_seqno
            )
            .into());
        }
        log.l0_tables += 1;
    }

    let mut numbers: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(
            |e| match parse_file_name(&e.file_name().to_string_lossy()) {
                Some(FileKind::Wal(n)) if n >= manifest.log_number() => Some(n),
                _ => None,
            },
        )
        .collect();
    numbers.sort_unstable();
    log.live_wals = numbers.len() as u32;
    // Recovery's own reading of the WAL chain (`src/wal_replay.rs`), in
    // the default mode (the stress tool never changes it): the records it
    // yields are the logged prefix recovery will replay.
    read_wal_chain(
        &fs,
        dir,
        &manifest_path,
        manifest.log_number(),
        &numbers,
        RecoveryMode::TolerateCorruptedTailRecords,
        &mut |wal, _offset, batch| Ok(log.add_record(batch, wal, from_manifest)),
    )
    .map_err(|e| format!("recovery will refuse these WALs: {e}"))?;
    Ok(Some(log))
}

impl WriteLog {
    /// One WAL record: its writes must continue the sequence exactly
    /// (from the manifest's last sequence, or, unless `from_manifest`,
    /// from the first record: a keyspace flushed later may have raised
    /// the last sequence past records others still replay).
    fn add_record(&mut self, data: &[u8], wal: u64, from_manifest: bool) -> Result<(), String> {
        let batch = DecodedBatch::new(data)
            .map_err(|e| format!("bad write batch at byte {}: {}", e.offset, e.reason))?;
        if batch.count() == 0 {
            return Ok(());
        }
        let first = batch.sequence();
        let first_record = self.logged_writes == 0;
        if !from_manifest && first_record {
            self.last_seq = first - 1;
        }
        // Step over the numbers ingestions took after the last write.
        let mut expected = self.last_seq + 1;
        while let Some(&(_, last)) = self.ingested.iter().find(|&&(f, _)| f == expected) {
            expected = last + 1;
        }
        if first != expected {
            return Err(format!(
                "hole in the write sequence: this record's writes start at sequence number \
                 {first}, but the writes before it (tables up to {}, then the live WALs) end at {}",
                self.flushed_seq, self.last_seq
            ));
        }
        for (i, op) in batch.iter().enumerate() {
            let op =
                op.map_err(|e| format!("bad write batch at byte {}: {}", e.offset, e.reason))?;
            let seq = first + i as u64;
            let value = match op.kind {
                ValueKind::Put => Some(op.value.to_vec()),
                // The expiry (8 bytes) then the value; the stress tool's
                // times to live outlast any run, so the value is live.
                ValueKind::PutWithExpiry => Some(
                    op.value
                        .get(8..)
                        .ok_or_else(|| {
                            format!(
                                "an expiring value at sequence number {seq} is {} bytes, \
                                 shorter than its expiry",
                                op.value.len()
                            )
                        })?
                        .to_vec(),
                ),
                _ => None,
            };
            self.logged_writes += 1;
            // Only what recovery replays into a live keyspace.
            let Some((name, log_number)) = self.keyspaces.get(&op.keyspace) else {
                continue;
            };
            if wal < *log_number {
                continue;
            }
            if op.kind == ValueKind::RangeDelete {
                let range = LoggedRangeDelete {
                    keyspace: name.clone(),
                    start: op.key.to_vec(),
                    end: op.range_end().map(<[u8]>::to_vec),
                    seq,
                    wal,
                };
                // The last write of every key logged in the range so far.
                for ((ks, key), last) in self.last_write.iter_mut() {
                    if range.covers(ks, key) {
                        *last = LastWrite {
                            seq,
                            value: None,
                            merged: false,
                            wal,
                        };
                    }
                }
                self.range_deletes.push(range);
                continue;
            }
            if op.keyspace == 0 {
                if let Some(Ok(Some(id))) = value.as_deref().map(value::decode) {
                    self.batch_seq.entry(id.batch).or_insert(seq);
                }
            }
            self.last_write.insert(
                (name.clone(), op.key.to_vec()),
                LastWrite {
                    seq,
                    value,
                    merged: op.kind == ValueKind::Merge,
                    wal,
                },
            );
        }
        self.last_seq = first + u64::from(batch.count()) - 1;
        Ok(())
    }

    /// After reopening: every key the live WALs write holds what its last
    /// logged write left, and every logged range delete's range holds only
    /// keys put after it. Returns the keys checked.
    pub fn check_applied(&self, db: &Db) -> Result<u64, AnyError> {
        for range in &self.range_deletes {
            let keyspace = db.keyspace(&range.keyspace)?;
            let end = match &range.end {
                Some(end) => Bound::Excluded(end.as_slice()),
                None => Bound::Unbounded,
            };
            for entry in keyspace.range::<&[u8], _>((Bound::Included(range.start.as_slice()), end))
            {
                let (key, _) = entry?;
                let rewritten = self
                    .last_write
                    .get(&(range.keyspace.clone(), key.to_vec()))
                    .is_some_and(|last| last.seq > range.seq);
                if !rewritten {
                    return Err(format!(
                        "recovery did not apply exactly the logged prefix: key {:?} of keyspace \
                         {:?} is in the range deleted at sequence number {} (WAL {}, {:?} .. {:?}) \
                         and no write logged after it put it back",
                        String::from_utf8_lossy(&key),
                        range.keyspace,
                        range.seq,
                        range.wal,
                        String::from_utf8_lossy(&range.start),
                        range.end.as_deref().map(String::from_utf8_lossy)
                    )
                    .into());
                }
            }
        }
        for ((keyspace, key), last) in &self.last_write {
            let got = db.keyspace(keyspace)?.get(key)?;
            let applied = if last.merged {
                got.is_some()
            } else {
                got.as_deref() == last.value.as_deref()
            };
            if !applied {
                let show = |v: Option<&[u8]>| match v {
                    None if last.merged => "a merge operand (some value)".to_string(),
                    None => "nothing".to_string(),
                    Some(v) => format!("{} bytes {:?}", v.len(), value::decode(v)),
                };
                return Err(format!(
                    "recovery did not apply exactly the logged prefix: key {:?} of keyspace \
                     {keyspace:?}: its last logged write (sequence number {} in WAL {}, log ends \
                     at {}) left {}, the reopened database holds {}",
                    String::from_utf8_lossy(key),
                    last.seq,
                    last.wal,
                    self.last_seq,
                    show(last.value.as_deref()),
                    show(got.as_deref())
                )
                .into());
            }
        }
        Ok(self.last_write.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_prefix_is_read_and_a_different_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), strata::Options::default()).unwrap();
        db.put(b"a", b"1").unwrap();
        db.put(b"", b"").unwrap();
        db.delete(b"b").unwrap();
        db.put(b"a", b"2").unwrap();
        drop(db);
        let log = read(dir.path()).unwrap().unwrap();
        assert_eq!(log.logged_writes, 4);
        assert_eq!((log.flushed_seq, log.last_seq), (0, 4));
        let at = |k: &[u8]| ("default".to_string(), k.to_vec());
        assert_eq!(log.last_write[&at(b"a")].value.as_deref(), Some(&b"2"[..]));
        assert_eq!(log.last_write[&at(b"b")].value, None);

        let db = Db::open(dir.path(), strata::Options::default()).unwrap();
        assert_eq!(log.check_applied(&db).unwrap(), 3);
        // A state the log does not end in: refused, naming the key.
        db.put(b"b", b"back").unwrap();
        let e = log.check_applied(&db).unwrap_err().to_string();
        assert!(e.contains("key \"b\" of keyspace \"default\""), "{e}");
    }

    #[test]
    fn a_key_whose_last_logged_write_is_a_merge_operand_holds_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let options = || strata::Options {
            merge_operator: Some(std::sync::Arc::new(strata::UInt64Add)),
            ..Default::default()
        };
        let db = Db::open(dir.path(), options()).unwrap();
        db.put("a", 5u64.to_le_bytes()).unwrap();
        db.merge("a", 1u64.to_le_bytes()).unwrap();
        db.merge("b", 2u64.to_le_bytes()).unwrap();
        drop(db);
        let log = read(dir.path()).unwrap().unwrap();
        let at = |k: &str| ("default".to_string(), k.as_bytes().to_vec());
        assert!(log.last_write[&at("a")].merged && log.last_write[&at("b")].merged);

        let db = Db::open(dir.path(), options()).unwrap();
        assert_eq!(log.check_applied(&db).unwrap(), 2);
        // The operand's key lost: refused.
        db.delete("b").unwrap();
        let e = log.check_applied(&db).unwrap_err().to_string();
        assert!(
            e.contains("key \"b\"") && e.contains("a merge operand"),
            "{e}"
        );
    }

    #[test]
    fn an_expiring_value_is_logged_as_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), strata::Options::default()).unwrap();
        db.put_with_ttl("a", "1", std::time::Duration::from_secs(86_400))
            .unwrap();
        drop(db);
        let log = read(dir.path()).unwrap().unwrap();
        let at = ("default".to_string(), b"a".to_vec());
        assert_eq!(log.last_write[&at].value.as_deref(), Some(&b"1"[..]));
        let db = Db::open(dir.path(), strata::Options::default()).unwrap();
        assert_eq!(log.check_applied(&db).unwrap(), 1);
    }

    #[test]
    fn a_logged_range_delete_is_the_last_write_of_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), strata::Options::default()).unwrap();
        for k in ["a", "b", "c"] {
            db.put(k, "1").unwrap();
        }
        db.delete_range("a".."c").unwrap();
        db.put("b", "2").unwrap();
        drop(db);
        let log = read(dir.path()).unwrap().unwrap();
        assert_eq!((log.logged_writes, log.last_seq), (5, 5));
        let at = |k: &str| ("default".to_string(), k.as_bytes().to_vec());
        assert_eq!(log.last_write[&at("a")].value, None, "deleted by the range");
        assert_eq!(log.last_write[&at("a")].seq, 4);
        assert_eq!(log.last_write[&at("b")].value.as_deref(), Some(&b"2"[..]));
        assert_eq!(log.last_write[&at("c")].value.as_deref(), Some(&b"1"[..]));
        assert_eq!(log.range_deletes.len(), 1);
        assert_eq!(log.range_deletes[0].end.as_deref(), Some(&b"c"[..]));

        let db = Db::open(dir.path(), strata::Options::default()).unwrap();
        assert_eq!(log.check_applied(&db).unwrap(), 3);
        // A key in the range that no logged write after it put back.
        db.put("ab", "back").unwrap();
        let e = log.check_applied(&db).unwrap_err().to_string();
        assert!(
            e.contains("key \"ab\"") && e.contains("range deleted"),
            "{e}"
        );
    }

    #[test]
    fn an_l0_table_counts_its_range_deletes_as_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), strata::Options::default()).unwrap();
        db.put("a", "1").unwrap();
        db.delete_range("b".."d").unwrap();
        db.delete_range("c".."e").unwrap();
        db.put("f", "1").unwrap();
        db.flush().unwrap();
        drop(db);
        // Four sequence numbers: two entries, two range deletes (three
        // fragments).
        let log = read(dir.path()).unwrap().unwrap();
        assert_eq!((log.l0_tables, log.flushed_seq), (1, 4));
    }
}
