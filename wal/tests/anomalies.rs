//! Named damage scenarios: preallocated tails, lost blocks, orphan and
//! unfinished records, several damaged regions, garbage input.

#![allow(clippy::unwrap_used)] // an integration test crate: helpers outside #[test] fns unwrap too

mod common;

use common::{layout, payload, read_all, write_log, MODES};
use strata_wal::{
    encode_seal, mask_crc, CorruptionReason, Error, LogEnd, RecordType, RecoveryMode, TornReason,
    BLOCK_SIZE, HEADER_SIZE,
};

/// One fragment framed by hand, so tests can build sequences the writer never makes.
fn fragment(record_type: RecordType, payload: &[u8]) -> Vec<u8> {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[record_type as u8]);
    hasher.update(payload);
    let mut out = mask_crc(hasher.finalize()).to_le_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.push(record_type as u8);
    out.extend_from_slice(payload);
    out
}

fn records_of(outcome: &common::ReadOutcome) -> Vec<Vec<u8>> {
    outcome
        .records
        .iter()
        .map(|(_, data)| data.clone())
        .collect()
}

#[test]
fn zeroed_preallocated_tail_is_a_torn_tail_in_default_mode() {
    let records = vec![payload(1, 100, false), payload(2, 50_000, false)];
    let log = write_log(&records);
    for zeros in [1, 6, 7, 8, 1000, BLOCK_SIZE, 3 * BLOCK_SIZE + 5] {
        let mut file = log.clone();
        file.resize(log.len() + zeros, 0);
        let outcome = read_all(&file, RecoveryMode::default());
        assert_eq!(records_of(&outcome), records, "{zeros} zeros");
        assert_eq!(
            outcome.end,
            Ok(LogEnd::TornTail {
                offset: log.len() as u64,
                reason: TornReason::ZeroedTail
            }),
            "{zeros} zeros"
        );
        for mode in [
            RecoveryMode::PointInTimeRecovery,
            RecoveryMode::SkipAnyCorruptedRecords,
        ] {
            let outcome = read_all(&file, mode);
            assert_eq!(records_of(&outcome), records);
            assert!(matches!(
                outcome.end,
                Ok(LogEnd::TornTail {
                    reason: TornReason::ZeroedTail,
                    ..
                })
            ));
            assert!(outcome.anomalies.is_empty());
        }
        let strict = read_all(&file, RecoveryMode::AbsoluteConsistency);
        assert_eq!(records_of(&strict), records);
        assert!(matches!(
            strict.end,
            Err(Error::TornTail {
                reason: TornReason::ZeroedTail,
                ..
            })
        ));
    }
}

/// A crashed, preallocated WAL is mostly zeroed tail; the reader checks it
/// a word at a time. One nonzero byte anywhere in it, at any alignment, the
/// last byte included, makes it damage rather than zeroed space.
#[test]
fn a_zeroed_tail_is_zeroed_to_its_last_byte() {
    let records = vec![payload(1, 100, false)];
    let log = write_log(&records);
    let zeros = 4 * BLOCK_SIZE + 13;
    let mut file = log.clone();
    file.resize(log.len() + zeros, 0);
    let zeroed = TornReason::ZeroedTail;
    let outcome = read_all(&file, RecoveryMode::default());
    assert!(matches!(outcome.end, Ok(LogEnd::TornTail { reason, .. }) if reason == zeroed));
    let tail = log.len();
    let stray = (0..70)
        .map(|i| tail + 7 + i)
        .chain((1..=70).map(|i| file.len() - i))
        .chain([tail + 2 * BLOCK_SIZE + 1000]);
    for pos in stray {
        let mut damaged = file.clone();
        damaged[pos] = 0x80;
        let outcome = read_all(&damaged, RecoveryMode::default());
        assert_eq!(records_of(&outcome), records, "stray byte at {pos}");
        assert_eq!(
            outcome.end,
            Ok(LogEnd::TornTail {
                offset: tail as u64,
                reason: TornReason::DamagedTail(CorruptionReason::BadRecordType(0))
            }),
            "stray byte at {pos}"
        );
    }
}

#[test]
fn zeroed_tail_after_a_partial_record_starts_at_the_partial_record() {
    let records = vec![payload(1, 10, false), payload(2, 40_000, false)];
    let log = write_log(&records);
    let second = layout(0, &[10, 40_000]).records[1];
    // The crash left the FIRST fragment and preallocated zeros where the rest would be.
    let mut file = log[..BLOCK_SIZE].to_vec();
    file.resize(2 * BLOCK_SIZE, 0);
    let outcome = read_all(&file, RecoveryMode::default());
    assert_eq!(records_of(&outcome), records[..1]);
    assert_eq!(
        outcome.end,
        Ok(LogEnd::TornTail {
            offset: second.start as u64,
            reason: TornReason::ZeroedTail
        })
    );
}

/// Appends a seal stating the whole log so far: proof, from a later block,
/// that every byte before it was synced.
fn sealed(mut log: Vec<u8>) -> Vec<u8> {
    let len = log.len() as u64;
    encode_seal(&mut log, len, len);
    log
}

/// A lost block followed by valid data is what a power loss leaves of
/// unsynced pages: a torn tail. Only a sync point proving the block synced
/// makes it corruption. (Under the old rule, "valid data after it", it was
/// always corruption and the database refused to open after a crash.)
#[test]
fn zeroed_block_in_the_middle_is_a_torn_tail_unless_proven_synced() {
    let sizes = [100, 40_000, 20, 70_000, 30];
    let records: Vec<Vec<u8>> = sizes.iter().map(|&n| payload(n, n, false)).collect();
    let model = layout(0, &sizes);
    for proven in [false, true] {
        let mut log = write_log(&records);
        if proven {
            log = sealed(log);
        }
        // Block 0 lost: record 0 and the FIRST fragment of record 1 are zeros.
        log[..BLOCK_SIZE].fill(0);
        let reason = CorruptionReason::BadRecordType(0);
        let outcome = read_all(&log, RecoveryMode::default());
        assert!(outcome.records.is_empty());
        let pitr = read_all(&log, RecoveryMode::PointInTimeRecovery);
        assert!(pitr.records.is_empty());
        if proven {
            assert_eq!(outcome.end, Err(Error::Corruption { offset: 0, reason }));
            assert!(matches!(pitr.end, Ok(LogEnd::Corruption { offset: 0, .. })));
            assert_eq!(outcome.synced_len, model.records[4].end as u64);
        } else {
            let torn = LogEnd::TornTail {
                offset: 0,
                reason: TornReason::DamagedTail(reason),
            };
            assert_eq!(outcome.end, Ok(torn));
            assert_eq!(pitr.end, Ok(torn));
            assert!(pitr.anomalies.is_empty());
            assert!(!outcome.has_sync_point);
        }
        // Salvage, either way: the LAST fragment of record 1 is an orphan,
        // skipped with the zeros.
        let skip = read_all(&log, RecoveryMode::SkipAnyCorruptedRecords);
        assert_eq!(records_of(&skip), records[2..]);
        assert_eq!(
            skip.end,
            Ok(LogEnd::Clean {
                offset: log.len() as u64
            })
        );
        assert_eq!(skip.anomalies.len(), 1);
        assert_eq!(skip.anomalies[0].offset, 0);
        assert_eq!(skip.anomalies[0].length, model.records[2].start as u64);
    }
}

#[test]
fn orphan_middle_followed_by_data_is_corruption_only_when_proven_synced() {
    let a = fragment(RecordType::Full, b"a");
    let orphan = fragment(RecordType::Middle, b"lost its FIRST");
    let c = fragment(RecordType::Full, b"c");
    let unproven = [a.clone(), orphan.clone(), c.clone()].concat();
    let orphan_at = a.len() as u64;
    let reason = CorruptionReason::OrphanFragment(RecordType::Middle);
    for log in [unproven.clone(), sealed(unproven)] {
        let proven = log.len() > BLOCK_SIZE;
        let outcome = read_all(&log, RecoveryMode::default());
        assert_eq!(records_of(&outcome), vec![b"a".to_vec()]);
        let expected = if proven {
            Err(Error::Corruption {
                offset: orphan_at,
                reason,
            })
        } else {
            Ok(LogEnd::TornTail {
                offset: orphan_at,
                reason: TornReason::DamagedTail(reason),
            })
        };
        assert_eq!(outcome.end, expected);
        let skip = read_all(&log, RecoveryMode::SkipAnyCorruptedRecords);
        assert_eq!(records_of(&skip), vec![b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(skip.anomalies.len(), 1);
        assert_eq!(skip.anomalies[0].offset, orphan_at);
        assert_eq!(skip.anomalies[0].length, orphan.len() as u64);
    }
}

#[test]
fn orphan_last_at_the_end_is_a_torn_tail() {
    let a = fragment(RecordType::Full, b"a");
    let log = [a.clone(), fragment(RecordType::Last, b"tail")].concat();
    for mode in [
        RecoveryMode::TolerateCorruptedTailRecords,
        RecoveryMode::PointInTimeRecovery,
    ] {
        let outcome = read_all(&log, mode);
        assert_eq!(records_of(&outcome), vec![b"a".to_vec()]);
        assert_eq!(
            outcome.end,
            Ok(LogEnd::TornTail {
                offset: a.len() as u64,
                reason: TornReason::DamagedTail(CorruptionReason::OrphanFragment(RecordType::Last))
            })
        );
    }
}

#[test]
fn unfinished_record_interrupted_by_a_full_one() {
    let first = fragment(RecordType::First, b"never finished");
    let full = fragment(RecordType::Full, b"whole");
    let unproven = [first.clone(), full].concat();
    let at = first.len() as u64;
    let reason = CorruptionReason::UnfinishedRecord {
        record_offset: 0,
        found: RecordType::Full,
    };
    // Not proven synced: a torn tail at the unfinished record.
    let outcome = read_all(&unproven, RecoveryMode::default());
    assert!(outcome.records.is_empty());
    let torn = LogEnd::TornTail {
        offset: 0,
        reason: TornReason::DamagedTail(reason),
    };
    assert_eq!(outcome.end, Ok(torn));
    assert_eq!(
        read_all(&unproven, RecoveryMode::PointInTimeRecovery).end,
        Ok(torn)
    );
    // Proven synced: corruption where the LAST fragment was expected.
    let log = sealed(unproven);
    let outcome = read_all(&log, RecoveryMode::default());
    assert!(outcome.records.is_empty());
    assert_eq!(outcome.end, Err(Error::Corruption { offset: at, reason }));
    let pitr = read_all(&log, RecoveryMode::PointInTimeRecovery);
    assert_eq!(pitr.end, Ok(LogEnd::Corruption { offset: at, reason }));
    assert_eq!(
        pitr.anomalies[0].offset, 0,
        "the dropped region starts at the unfinished record"
    );
    assert_eq!(pitr.anomalies[0].detected_at, at);
    let skip = read_all(&log, RecoveryMode::SkipAnyCorruptedRecords);
    assert_eq!(records_of(&skip), vec![b"whole".to_vec()]);
    assert_eq!(skip.records[0].0, at);
    assert_eq!(
        (skip.anomalies[0].offset, skip.anomalies[0].length),
        (0, at)
    );
    assert_eq!(
        skip.end,
        Ok(LogEnd::Clean {
            offset: log.len() as u64
        })
    );
}

#[test]
fn skip_mode_recovers_around_several_damaged_regions() {
    let sizes: Vec<usize> = (0..40).map(|i| (i * 997) % 5000).collect();
    let records: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| payload(i, n, false))
        .collect();
    let mut log = write_log(&records);
    let model = layout(0, &sizes);
    let damaged = [3, 17, 18, 30];
    for &i in &damaged {
        log[model.records[i].end - 1] ^= 0x40; // last payload byte (or header byte of an empty record)
    }
    let outcome = read_all(&log, RecoveryMode::SkipAnyCorruptedRecords);
    let expected: Vec<Vec<u8>> = (0..records.len())
        .filter(|i| !damaged.contains(i))
        .map(|i| records[i].clone())
        .collect();
    assert_eq!(records_of(&outcome), expected);
    // Adjacent damaged records 17 and 18 make one region.
    let regions: Vec<(u64, u64)> = outcome
        .anomalies
        .iter()
        .map(|a| (a.offset, a.length))
        .collect();
    let span = |from: usize, to: usize| {
        (
            model.records[from].start as u64,
            (model.records[to + 1].start - model.records[from].start) as u64,
        )
    };
    assert_eq!(regions, vec![span(3, 3), span(17, 18), span(30, 30)]);
    // A merged region reports where its first damage was found.
    let last_fragment = |i: usize| {
        model
            .fragments
            .iter()
            .rfind(|f| f.record == Some(i))
            .unwrap()
            .start as u64
    };
    let detected: Vec<u64> = outcome.anomalies.iter().map(|a| a.detected_at).collect();
    assert_eq!(
        detected,
        vec![last_fragment(3), last_fragment(17), last_fragment(30)]
    );
    assert_eq!(
        outcome.end,
        Ok(LogEnd::Clean {
            offset: log.len() as u64
        })
    );
}

/// Regression: a damaged length that claims to end where a later fragment
/// happens to start must not make skip mode jump over the fragment in between.
#[test]
fn skip_mode_resyncs_at_the_first_valid_fragment_not_the_claimed_end() {
    // Record 1 ends 7 bytes before the block end; record 2 starts with an empty
    // FIRST in that tail and continues at the next block start.
    let sizes = [100, BLOCK_SIZE - 107 - 2 * HEADER_SIZE, 50, 10];
    let records: Vec<Vec<u8>> = sizes.iter().map(|&n| payload(n, n, false)).collect();
    let mut log = write_log(&records);
    let model = layout(0, &sizes);
    assert_eq!(model.records[2].start, BLOCK_SIZE - HEADER_SIZE);
    // Record 1's length + 1 now claims to end in the padding zone: just before the next block.
    log[model.records[1].start + 4] ^= 0x01;
    let outcome = read_all(&log, RecoveryMode::SkipAnyCorruptedRecords);
    assert_eq!(
        records_of(&outcome),
        vec![records[0].clone(), records[2].clone(), records[3].clone()]
    );
}

#[test]
fn garbage_input_never_panics_and_yields_no_records() {
    let garbage = payload(42, 1 << 20, false);
    for mode in MODES {
        let outcome = read_all(&garbage, mode);
        assert!(outcome.records.is_empty(), "{mode:?}");
        assert!(!matches!(outcome.end, Ok(LogEnd::Clean { .. })), "{mode:?}");
    }
    // Plausible headers everywhere: every type byte valid and every length maximal.
    let hostile: Vec<u8> = (0..4 * BLOCK_SIZE)
        .map(|i| if i % 7 == 6 { 1 } else { 0xff })
        .collect();
    for mode in MODES {
        let outcome = read_all(&hostile, mode);
        assert!(outcome.records.is_empty(), "{mode:?}");
    }
}

#[test]
fn errors_say_what_and_where() {
    let error = Error::Corruption {
        offset: 4096,
        reason: CorruptionReason::ChecksumMismatch {
            stored: 1,
            computed: 2,
        },
    };
    assert_eq!(
        error.to_string(),
        "log corruption at offset 4096: checksum mismatch (stored 0x00000001, computed 0x00000002)"
    );
    let torn = Error::TornTail {
        offset: 7,
        reason: TornReason::DamagedTail(CorruptionReason::BadRecordType(9)),
    };
    assert_eq!(
        torn.to_string(),
        "log has a torn tail at offset 7: unknown record type 9, in bytes not proven synced"
    );
    let io: std::io::Error = error.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn damage_found_while_skipping_extends_the_open_region() {
    let sizes = [10, 70_000, 10];
    let records: Vec<Vec<u8>> = sizes.iter().map(|&n| payload(n, n, false)).collect();
    let mut log = write_log(&records);
    let model = layout(0, &sizes);
    let [first, middle, last] = [1, 2, 3].map(|i| model.fragments[i]);
    assert_eq!(first.record, Some(1));
    assert_eq!(last.record, Some(1));
    log[first.end - 1] ^= 1;
    log[last.end - 1] ^= 1;
    let outcome = read_all(&log, RecoveryMode::SkipAnyCorruptedRecords);
    assert_eq!(
        records_of(&outcome),
        vec![records[0].clone(), records[2].clone()]
    );
    assert_eq!(
        outcome.anomalies.len(),
        1,
        "one region: FIRST damaged, MIDDLE orphaned, LAST damaged"
    );
    let region = outcome.anomalies[0];
    assert_eq!(region.offset, first.start as u64);
    assert_eq!(region.length, (model.records[2].start - first.start) as u64);
    assert_eq!(region.detected_at, first.start as u64);
    assert!(middle.start > first.start);
}
