//! Fuzzes strata-wal's Reader with arbitrary bytes, and with logs written by
//! the Writer (records, syncs, so sync points, and seals) then damaged, in
//! every recovery mode and under both tail rules.
//!
//! Input: an even first byte (or an empty input) means the rest is read as a
//! log. An odd first byte means a recipe: records to write, syncs and a seal,
//! then damage to do — anywhere, or only where a crash can do it (past the
//! length last synced).
//!
//! Every record read is also decoded the way sst-dump reads a WAL and a
//! MANIFEST (`tools/sst-dump/`): as a write batch (`DecodedBatch`) and as a
//! version edit (`VersionEdit::decode`), and the whole log is replayed as a
//! manifest (`read_manifest`), then its prefix before any damage.
//!
//! Checked on every input: no panic; record offsets increase and lie in the
//! input; record data is no longer than the input; every record starts with a
//! checksum-valid FULL or FIRST fragment (checked with a crc32 written here,
//! not the crate's); the modes agree with each other (a mode that stops at the
//! first anomaly returns the same records as the others up to it, and every
//! mode reports the same synced length); skipped regions are ordered and in
//! bounds; the tail rule for logs synced record by record
//! (`TailRule::EveryRecordSyncedButLast`) reads the same records and synced
//! length as the default rule, calls corruption at least wherever it does,
//! and changes nothing in salvage. For recipes, additionally: undamaged logs
//! read back exactly, with the synced length the writer stated; damaged ones
//! give a prefix of what was written in every mode but salvage; after
//! crash-like damage the default mode never fails and keeps every synced
//! record; and when every record but the last was synced (the MANIFEST's
//! way), the same holds under the MANIFEST's tail rule for the same crash
//! as a log appended by `write(2)` suffers it: each lost byte takes its
//! whole 512-byte sector with it (past the synced length), since a disk
//! keeps or loses sectors whole (that rule's crash model, docs/wal-format.md).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata::inspect::{read_manifest, DecodedBatch, VersionEdit};
use strata_wal::{
    sync_point_end, LogEnd, Reader, RecoveryMode, TailRule, Writer, BLOCK_SIZE, HEADER_SIZE,
    SECTOR_SIZE,
};

fuzz_target!(|input: &[u8]| {
    match input.split_first() {
        Some((selector, recipe)) if selector & 1 == 1 => write_damage_read(recipe),
        _ => {
            check_log(input);
        }
    }
});

/// What one mode read: records (offset, data), whether it ended without
/// error, the end if so, the skipped regions, and the sync points' proof.
#[derive(PartialEq, Debug)]
struct Outcome {
    records: Vec<(u64, Vec<u8>)>,
    end: Option<LogEnd>,
    anomalies: Vec<(u64, u64, u64)>,
    synced: (u64, bool),
}

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTailRecords,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTimeRecovery,
    RecoveryMode::SkipAnyCorruptedRecords,
];

fn read(log: &[u8], mode: RecoveryMode) -> Outcome {
    read_with(log, mode, TailRule::SyncPoints)
}

fn read_with(log: &[u8], mode: RecoveryMode, rule: TailRule) -> Outcome {
    let mut reader = Reader::with_tail_rule(log, mode, rule);
    let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
    let end = loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                assert!(record.offset < log.len() as u64);
                assert!(record.data.len() <= log.len());
                if let Some((last, _)) = records.last() {
                    assert!(record.offset > *last, "offsets increase");
                }
                if mode == RecoveryMode::SkipAnyCorruptedRecords {
                    // The other modes' records are a prefix of these (check_log).
                    assert_valid_start(log, record.offset, record.data);
                }
                records.push((record.offset, record.data.to_vec()));
            }
            Ok(None) => break Some(*reader.end().expect("an end after Ok(None)")),
            Err(error) => {
                assert!(reader.end().is_none());
                assert_eq!(reader.next_record().err(), Some(error), "errors are sticky");
                break None;
            }
        }
    };
    let anomalies: Vec<(u64, u64, u64)> = reader
        .anomalies()
        .iter()
        .map(|a| (a.offset, a.length, a.detected_at))
        .collect();
    let mut previous_end = 0;
    for &(offset, length, detected_at) in &anomalies {
        assert!(offset >= previous_end && offset <= detected_at);
        assert!(offset + length <= log.len() as u64);
        previous_end = offset + length;
    }
    match mode {
        RecoveryMode::PointInTimeRecovery => assert!(anomalies.len() <= 1),
        RecoveryMode::SkipAnyCorruptedRecords => {}
        _ => assert!(anomalies.is_empty()),
    }
    if mode != RecoveryMode::AbsoluteConsistency
        && mode != RecoveryMode::TolerateCorruptedTailRecords
    {
        assert!(end.is_some(), "{mode:?} never fails");
    }
    let synced = (reader.synced_len(), reader.has_sync_point());
    assert!(
        synced.0 <= log.len() as u64,
        "a proven length lies in the file"
    );
    assert!(synced.1 || synced.0 == 0);
    Outcome {
        records,
        end,
        anomalies,
        synced,
    }
}

/// Reads `log` in every mode and checks how the modes and the tail rules
/// relate. Returns the outcomes under the default rule.
fn check_log(log: &[u8]) -> Vec<Outcome> {
    let outcomes: Vec<Outcome> = MODES.iter().map(|&mode| read(log, mode)).collect();
    check_tail_rules(log, &outcomes);
    let [tolerate, absolute, pitr, skip] = [&outcomes[0], &outcomes[1], &outcomes[2], &outcomes[3]];
    // Every mode agrees up to the first anomaly; the stopping modes stop there.
    assert_eq!(tolerate.records, pitr.records);
    assert_eq!(absolute.records, pitr.records);
    assert!(skip.records.starts_with(&pitr.records));
    let clean = matches!(pitr.end, Some(LogEnd::Clean { .. }));
    assert_eq!(clean, absolute.end.is_some());
    assert_eq!(clean, matches!(tolerate.end, Some(LogEnd::Clean { .. })));
    match pitr.end {
        Some(LogEnd::Corruption { .. }) => {
            assert!(tolerate.end.is_none());
            assert!(!skip.anomalies.is_empty());
        }
        Some(LogEnd::TornTail { .. }) => assert!(tolerate.end.is_some()),
        _ => {}
    }
    if skip.anomalies.is_empty() {
        assert_eq!(skip.records, pitr.records);
        assert_eq!(skip.end, pitr.end);
    }
    // The proof is found the same way in every mode.
    for outcome in &outcomes {
        assert_eq!(
            outcome.synced, pitr.synced,
            "the same synced length in every mode"
        );
    }
    decode_as_sst_dump_does(log, skip, tolerate);
    outcomes
}

/// The MANIFEST's tail rule changes only how an anomaly is classified, and
/// only from torn tail to corruption: the same records and proof in every
/// mode, an error wherever the default rule gives one, salvage untouched.
fn check_tail_rules(log: &[u8], by_sync_points: &[Outcome]) {
    for (&mode, plain) in MODES.iter().zip(by_sync_points) {
        let ruled = read_with(log, mode, TailRule::EveryRecordSyncedButLast);
        assert_eq!(ruled.records, plain.records, "{mode:?}: the same records");
        assert_eq!(ruled.synced, plain.synced, "{mode:?}: the same proof");
        match mode {
            RecoveryMode::SkipAnyCorruptedRecords => assert_eq!(&ruled, plain),
            RecoveryMode::PointInTimeRecovery => {
                if matches!(plain.end, Some(LogEnd::Corruption { .. })) {
                    assert_eq!(ruled.end, plain.end);
                }
                if matches!(ruled.end, Some(LogEnd::Clean { .. })) {
                    assert_eq!(ruled.end, plain.end);
                }
            }
            _ => {
                if plain.end.is_none() {
                    assert!(ruled.end.is_none(), "{mode:?}: corruption stays corruption");
                }
            }
        }
    }
}

/// Decodes every record as a batch and as an edit, and replays the log as a
/// manifest; the replay keeps one edit per record the tolerant reader read.
fn decode_as_sst_dump_does(log: &[u8], skip: &Outcome, tolerate: &Outcome) {
    for (_, data) in &skip.records {
        if let Ok(batch) = DecodedBatch::new(data) {
            let _ = batch.sequence();
            let ops = batch.iter().take_while(Result::is_ok).count();
            assert!(ops as u64 <= u64::from(batch.count()));
        }
        let _ = VersionEdit::decode(data);
    }
    let path = Path::new("MANIFEST-000001");
    match read_manifest(path, log) {
        Ok(contents) => {
            assert!(
                tolerate.end.is_some(),
                "a manifest that replays reads tolerantly"
            );
            assert_eq!(contents.edits.len(), tolerate.records.len());
        }
        Err(strata::Error::Corruption { offset, .. }) => {
            // sst-dump shows the version before the damage.
            if let Some(prefix) = log.get(..offset as usize).filter(|p| p.len() < log.len()) {
                let _ = read_manifest(path, prefix);
            }
        }
        Err(other) => panic!("replaying bytes in memory gave {other}"),
    }
}

/// The record at `offset` starts with a checksum-valid FULL fragment holding
/// exactly `data`, or a FIRST fragment holding a prefix of it.
fn assert_valid_start(log: &[u8], offset: u64, data: &[u8]) {
    let at = offset as usize;
    let header = &log[at..at + HEADER_SIZE];
    let stored = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let length = usize::from(u16::from_le_bytes([header[4], header[5]]));
    let record_type = header[6];
    assert!(
        at % BLOCK_SIZE + HEADER_SIZE + length <= BLOCK_SIZE,
        "fragment inside its block"
    );
    let payload = &log[at + HEADER_SIZE..at + HEADER_SIZE + length];
    assert_eq!(stored, masked_crc(record_type, payload), "checksum-valid");
    match record_type {
        1 => assert_eq!(payload, data),
        2 => assert!(data.starts_with(payload)),
        other => panic!("record starts with fragment type {other}"),
    }
}

/// crc32 (IEEE, reflected) over the type byte and the payload, masked as LevelDB does.
fn masked_crc(record_type: u8, payload: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in std::iter::once(&record_type).chain(payload) {
        crc = CRC_TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
    }
    (!crc).rotate_right(15).wrapping_add(0xa282_ead8)
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Recipe: byte 0 = record count (low 4 bits), bit 4 = damage only where a
/// crash can (past the length last synced), bit 5 = seal the log at the end;
/// per record two bytes of length (up to ~72 KiB, so records span blocks) whose
/// bit 12 also asks for a sync after the record; payloads repeat the recipe's
/// bytes. Then damage operations, three bytes each: kind, and a position
/// scaled to the log (to the part past the synced length, for crash damage).
fn write_damage_read(recipe: &[u8]) {
    let mut bytes = recipe.iter().copied();
    let head = bytes.next().unwrap_or(0);
    let count = usize::from(head % 16);
    let crash_only = head & 0x10 != 0;
    let seal = head & 0x20 != 0;
    let fill: Vec<u8> = if recipe.is_empty() {
        vec![0]
    } else {
        recipe.to_vec()
    };
    let mut writer = Writer::new(Vec::new());
    let mut written: Vec<(u64, Vec<u8>)> = Vec::new();
    // Whether each record was followed by a sync.
    let mut synced_after: Vec<bool> = Vec::new();
    for i in 0..count {
        // Four blocks show every structure (tails, spans); bigger logs only slow executions.
        if writer.offset_written() > 4 * BLOCK_SIZE as u64 {
            break;
        }
        let raw = u16::from_le_bytes([bytes.next().unwrap_or(0), bytes.next().unwrap_or(0)]);
        // Mostly small records (they keep executions fast); three high bits
        // make one of up to ~72 KiB, spanning up to three blocks.
        let len = if raw & 0xe000 == 0xe000 {
            usize::from(raw & 0x1fff) * 9
        } else {
            usize::from(raw % 512)
        };
        // Built with bulk copies: a per-byte loop is slow under coverage instrumentation.
        let mut payload = fill.repeat(len / fill.len() + 1);
        payload.truncate(len);
        if let Some(first) = payload.first_mut() {
            *first = i as u8; // records differ even when the fill repeats
        }
        let start = writer.offset_written();
        let stated = writer.offset_stated();
        let end = writer
            .add_record(&payload)
            .expect("a Vec sink does not fail");
        // A sync point precedes the record if a sync happened since the last one.
        let start = if writer.offset_stated() != stated {
            sync_point_end(start)
        } else {
            start
        };
        let offset = if (start as usize) % BLOCK_SIZE + HEADER_SIZE > BLOCK_SIZE {
            start.next_multiple_of(BLOCK_SIZE as u64)
        } else {
            start
        };
        assert!(end > offset);
        written.push((offset, payload));
        synced_after.push(raw & 0x1000 != 0);
        if raw & 0x1000 != 0 {
            writer.sync().expect("a Vec sink does not fail");
        }
    }
    // The MANIFEST's way: every record synced before the next was written.
    let every_record_synced_but_last = synced_after
        .split_last()
        .is_none_or(|(_, before)| before.iter().all(|&synced| synced));
    if seal {
        writer.seal().expect("a Vec sink does not fail");
    }
    // What a crash must keep: every byte below the last completed sync.
    let synced = writer.offset_synced() as usize;
    let stated = writer.offset_stated();
    let mut log = writer.into_inner();
    let intact = log.clone();
    // The same crash as a write(2)-appended log suffers it: zeroed bytes
    // rounded out to whole sectors. Only for crash damage.
    let mut sector_log = log.clone();
    let mut damaged = false;
    while let (Some(kind), Some(lo), Some(hi)) = (bytes.next(), bytes.next(), bytes.next()) {
        let from = if crash_only { synced } else { 0 };
        if log.len() <= from {
            break;
        }
        let scaled = usize::from(u16::from_le_bytes([lo, hi])) * (log.len() - from) / 65_536;
        let pos = from + scaled;
        let zeroed = match kind % 4 {
            0 => {
                log.truncate(pos);
                sector_log.truncate(pos);
                None
            }
            1 if crash_only => Some(pos..pos + 1), // a lost byte reads as zero
            1 => {
                log[pos] ^= kind | 1;
                None
            }
            2 => Some(pos..(pos + usize::from(kind)).min(log.len())),
            _ => {
                log.extend(std::iter::repeat_n(0u8, usize::from(kind)));
                sector_log.extend(std::iter::repeat_n(0u8, usize::from(kind)));
                None
            }
        };
        if let Some(zeroed) = zeroed {
            log[zeroed.clone()].fill(0);
            if crash_only {
                let start = (zeroed.start - zeroed.start % SECTOR_SIZE).max(synced);
                let end = zeroed.end.next_multiple_of(SECTOR_SIZE).min(log.len());
                sector_log[start..end].fill(0);
            }
        }
        damaged = true;
    }
    let outcomes = check_log(&log);
    if !damaged || log == intact {
        for outcome in &outcomes {
            assert_eq!(outcome.records, written, "an undamaged log reads back");
            assert_eq!(
                outcome.end,
                Some(LogEnd::Clean {
                    offset: log.len() as u64
                })
            );
            assert_eq!(outcome.synced.0, stated, "every sync point is read");
        }
    } else {
        // Damage never invents records before the first anomaly. Salvage may,
        // when a payload itself holds framed log bytes.
        for outcome in &outcomes[..3] {
            assert!(
                written.starts_with(&outcome.records),
                "a prefix of what was written"
            );
        }
    }
    if crash_only {
        // A crash never makes the default mode refuse the log, nor lose a
        // record that was synced, nor finds a proof beyond what was synced.
        let tolerate = &outcomes[0];
        assert!(tolerate.end.is_some(), "crash damage is never corruption");
        let synced_records = written
            .iter()
            .filter(|(offset, data)| {
                // The record's end: at most `synced` if it was synced whole.
                let end = strata_wal::encoded_end(*offset, data.len());
                end <= synced as u64
            })
            .count();
        assert!(
            tolerate.records.len() >= synced_records,
            "synced records kept"
        );
        assert!(tolerate.synced.0 <= synced as u64);
        if every_record_synced_but_last {
            // Only the last record's append can be damaged: under the
            // MANIFEST's rule too, never corruption, when the crash lost
            // whole sectors as it does to a write(2)-appended log.
            let mode = RecoveryMode::TolerateCorruptedTailRecords;
            let plain = read(&sector_log, mode);
            let ruled = read_with(&sector_log, mode, TailRule::EveryRecordSyncedButLast);
            assert!(plain.end.is_some(), "crash damage is never corruption");
            assert!(ruled.end.is_some(), "crash damage is never corruption");
            assert_eq!(ruled.records, plain.records);
            assert!(plain.records.len() >= synced_records, "synced records kept");
        }
    }
}
