//! Sync points: read back around records, the proof they give after damage,
//! and the proof they must not give when a record's payload imitates them.

#![allow(clippy::unwrap_used)] // an integration test crate: helpers outside #[test] fns unwrap too

mod common;

use common::{layout_of_ops, payload, read_all, write_ops, Op, MODES};
use strata_wal::{
    encode_record, encode_seal, encode_sync_point, mask_crc, CorruptionReason, Error, LogEnd,
    RecordType, RecoveryMode, TornReason, Writer, BLOCK_SIZE, HEADER_SIZE, SYNC_POINT_SIZE,
};

const BS: usize = BLOCK_SIZE;

fn records_of(outcome: &common::ReadOutcome) -> Vec<Vec<u8>> {
    outcome
        .records
        .iter()
        .map(|(_, data)| data.clone())
        .collect()
}

/// One fragment framed by hand, so tests can build sequences the writer never makes.
fn fragment(type_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[type_byte]);
    hasher.update(payload);
    let mut out = mask_crc(hasher.finalize()).to_le_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.push(type_byte);
    out.extend_from_slice(payload);
    out
}

#[test]
fn records_interleaved_with_sync_points_read_back_unchanged() {
    // A sync point landing at every block tail size around its 15 bytes, and
    // at block starts, between records of every shape.
    for tail in 0..=SYNC_POINT_SIZE + 2 {
        let mut log = Vec::new();
        let mut end = 0;
        let mut records = Vec::new();
        let mut stated = 0;
        for (i, size) in [BS - tail - 2 * HEADER_SIZE, 0, 70_000, 5]
            .into_iter()
            .enumerate()
        {
            let record = payload(i, size, false);
            end = encode_record(&mut log, end, &record);
            records.push(record);
            stated = end;
            end = encode_sync_point(&mut log, end, stated);
        }
        assert_eq!(end, log.len() as u64);
        for mode in MODES {
            let outcome = read_all(&log, mode);
            assert_eq!(records_of(&outcome), records, "tail {tail}, {mode:?}");
            assert_eq!(outcome.end, Ok(LogEnd::Clean { offset: end }));
            assert!(outcome.anomalies.is_empty());
            assert_eq!(outcome.synced_len, stated);
            assert!(outcome.has_sync_point);
        }
    }
}

#[test]
fn the_writer_frames_sync_points_where_the_model_says() {
    let ops = [
        Op::Record(10),
        Op::Sync,
        Op::Sync,
        Op::Record(BS),
        Op::Record(0),
        Op::Sync,
        Op::Record(3),
        Op::Seal,
        Op::Seal,
        Op::Record(7),
        Op::Sync,
        Op::Seal,
    ];
    let records: Vec<Vec<u8>> = [10, BS, 0, 3, 7]
        .iter()
        .enumerate()
        .map(|(i, &n)| payload(i, n, false))
        .collect();
    let log = write_ops(&ops, &records);
    let model = layout_of_ops(0, &ops);
    assert_eq!(log.len(), model.end);
    for mode in MODES {
        let outcome = read_all(&log, mode);
        let offsets: Vec<u64> = outcome.records.iter().map(|(o, _)| *o).collect();
        let expected: Vec<u64> = model.records.iter().map(|r| r.start as u64).collect();
        assert_eq!(offsets, expected);
        assert_eq!(records_of(&outcome), records);
        assert_eq!(outcome.synced_len, model.sync_points.last().unwrap().stated);
    }
}

/// A record's payload full of framed sync points, stating lengths both
/// possible and impossible, at every byte alignment.
fn imitations() -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    while out.len() < 3 * BS {
        for stated in [1u64 << 40, 40_000, 1] {
            // Framed at an offset that makes the statement possible where it can be.
            offset = offset.max(stated.min(1 << 20));
            let start = out.len();
            encode_sync_point(&mut out, offset, stated.min(offset));
            offset += (out.len() - start) as u64;
            out.extend_from_slice(&fragment(
                RecordType::SyncPoint as u8,
                &stated.to_le_bytes(),
            ));
            out.push(0xab); // shift the alignment by one byte each round
        }
    }
    out
}

/// Crash damage to unsynced bytes, followed by a record whose payload
/// imitates sync points everywhere (in the damaged block, right after a
/// zeroed header, inside later blocks): still a torn tail. Under the old rule
/// ("any valid fragment after the damage means corruption") and under any
/// byte-by-byte search for sync points, this refused the log.
#[test]
fn a_payload_imitating_sync_points_does_not_turn_a_torn_tail_into_corruption() {
    let evil = imitations();
    let records = vec![payload(1, 100, false), evil.clone(), payload(2, 50, false)];
    // A synced first record, then the others unsynced.
    let ops = [
        Op::Record(100),
        Op::Sync,
        Op::Record(evil.len()),
        Op::Record(50),
    ];
    let log = write_ops(&ops, &records);
    let model = layout_of_ops(0, &ops);
    let evil_at = model.records[1];
    let first_stated = model.sync_points[0];
    assert_eq!(model.sync_points.len(), 1);
    assert!(evil_at.end > 3 * BS);
    // Three crash patterns in the unsynced bytes.
    let mut header_lost = log.clone(); // a copy died having stored the payload, not the header
    header_lost[evil_at.start..evil_at.start + HEADER_SIZE].fill(0);
    let mut page_lost = log.clone(); // a lost page inside the record's first block
    page_lost[4096..8192].fill(0);
    let mut block_start_lost = log.clone(); // and one holding a later block start
    block_start_lost[2 * BS..2 * BS + 4096].fill(0);
    for (name, file, at) in [
        ("header lost", &header_lost, evil_at.start),
        ("page lost", &page_lost, evil_at.start),
        ("block start lost", &block_start_lost, 2 * BS),
    ] {
        let outcome = read_all(file, RecoveryMode::default());
        assert_eq!(records_of(&outcome), records[..1], "{name}");
        let Ok(LogEnd::TornTail { offset, reason }) = outcome.end else {
            panic!("{name}: {:?}", outcome.end);
        };
        assert_eq!(offset, evil_at.start as u64, "{name}");
        assert!(matches!(reason, TornReason::DamagedTail(_)), "{name}");
        assert!(at >= evil_at.start);
        // Only the real sync point counts, never an imitation.
        assert_eq!(outcome.synced_len, first_stated.stated, "{name}");
        let absolute = read_all(file, RecoveryMode::AbsoluteConsistency);
        assert!(
            matches!(absolute.end, Err(Error::TornTail { .. })),
            "{name}: {:?}",
            absolute.end
        );
    }
}

/// Damage to a synced record is proven by a later sync point stating a
/// greater length: in a later block, or later in the damaged block when the
/// damaged header shows where its fragment ends (its type byte is a
/// writer's and both its length bytes are nonzero, so neither was lost).
#[test]
fn damage_is_proven_by_a_sync_point_later_in_its_block_or_in_a_later_block() {
    // Three records in block 0: 0 and 1 synced, the sync point stating them
    // in block 0 before record 2.
    let block_0_log = |size: usize| {
        let records: Vec<Vec<u8>> = (0..3).map(|i| payload(i, size, false)).collect();
        let ops = [
            Op::Record(size),
            Op::Record(size),
            Op::Sync,
            Op::Record(size),
        ];
        let log = write_ops(&ops, &records);
        let model = layout_of_ops(0, &ops);
        let point = model.sync_points[0];
        assert_eq!(point.stated, model.records[1].end as u64);
        assert!(point.end < BS);
        (log, records, model.records[1].start)
    };
    let damage = |log: &[u8], at: usize| {
        let mut damaged = log.to_vec();
        damaged[at] ^= 1;
        read_all(&damaged, RecoveryMode::default())
    };

    // 1000 bytes (length bytes e8 03): the walk resumes at the damaged
    // record's end and reaches the sync point after it.
    let (log, records, record_1) = block_0_log(1000);
    for at in [
        record_1,
        record_1 + HEADER_SIZE + 500,
        record_1 + HEADER_SIZE + 999,
    ] {
        let outcome = damage(&log, at);
        assert_eq!(records_of(&outcome), records[..1], "damage at {at}");
        assert!(
            matches!(outcome.end, Err(Error::Corruption {
                offset,
                reason: CorruptionReason::ChecksumMismatch { .. }
            }) if offset == record_1 as u64),
            "damage at {at}: {:?}",
            outcome.end
        );
        assert!(outcome.has_sync_point);
    }

    // 200 bytes (c8 00) and 512 bytes (00 02): a zero length byte may be a
    // lost one, so the damaged record's end is not trusted and only a later
    // block could prove the damage: the lag, a torn tail.
    for size in [200, 512] {
        let (log, records, record_1) = block_0_log(size);
        let outcome = damage(&log, record_1 + HEADER_SIZE + 100);
        assert_eq!(records_of(&outcome), records[..1], "size {size}");
        assert!(
            matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. }) if offset == record_1 as u64),
            "size {size}: {:?}",
            outcome.end
        );
        assert!(!outcome.has_sync_point, "not reachable past the damage");
        // A sync point in a later block (a seal here) proves it.
        let mut sealed = log.clone();
        let len = sealed.len() as u64;
        encode_seal(&mut sealed, len, len);
        let outcome = damage(&sealed, record_1 + HEADER_SIZE + 100);
        assert_eq!(records_of(&outcome), records[..1]);
        assert!(matches!(
            outcome.end,
            Err(Error::Corruption {
                offset,
                reason: CorruptionReason::ChecksumMismatch { .. }
            }) if offset == record_1 as u64
        ));
        assert_eq!(outcome.synced_len, len);
        // A later-block sync point stating no more than the damaged
        // fragment's offset proves nothing about it.
        let mut short = log;
        let len = short.len() as u64;
        encode_seal(&mut short, len, record_1 as u64);
        let outcome = damage(&short, record_1 + HEADER_SIZE + 100);
        assert!(
            matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. }) if offset == record_1 as u64),
            "size {size}: {:?}",
            outcome.end
        );
        assert_eq!(outcome.synced_len, record_1 as u64, "found after the end");
        assert!(outcome.has_sync_point);
    }

    // A damaged length byte: the end it claims is not the record's, and
    // the walk from it finds nothing, so only a later block proves it.
    let (log, records, record_1) = block_0_log(1000);
    let outcome = damage(&log, record_1 + 4);
    assert_eq!(records_of(&outcome), records[..1]);
    assert!(
        matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. }) if offset == record_1 as u64),
        "{:?}",
        outcome.end
    );
}

/// A crash that loses bytes of a record's header can leave a length with
/// one or both bytes zeroed, claiming an end inside the record's own
/// payload: a page boundary between the two length bytes (the first page
/// lost) clears the low byte, a one-byte hole in a torn copy the high byte.
/// A payload holding a framed sync point exactly where such an end points
/// must not be walked to: the damage stays a torn tail. (Trusting any
/// length that fits its block and the file read it as corruption.)
#[test]
fn a_payload_imitating_a_sync_point_where_a_torn_length_points_stays_a_torn_tail() {
    // 0x0150 bytes: both length bytes nonzero, so an intact header is trusted.
    const LEN: usize = 0x0150;
    // A synced record, then the evil record appended right after it with no
    // sync point between (a log continued by `Writer::with_offset`, or an
    // append after one that was not synced), its header straddling a 4 KiB
    // page boundary between its length bytes.
    let first_len = 4096 - 5 - HEADER_SIZE;
    let evil_at = HEADER_SIZE + first_len;
    assert_eq!((evil_at + 5) % 4096, 0);
    // Fake sync points at the payload offsets a torn length claims as its
    // end: 0 (both bytes lost), LEN & 0xff (high byte lost), LEN & 0xff00
    // (low byte lost). Each states a length past the record's start and no
    // more than its own offset, so, reached, it would prove the damage.
    let mut evil = payload(7, LEN, false);
    let stated = (evil_at + 1) as u64;
    for offset in [0, LEN & 0xff, LEN & 0xff00] {
        let at = (evil_at + HEADER_SIZE + offset) as u64;
        let mut fake = Vec::new();
        encode_sync_point(&mut fake, at, stated);
        evil[offset..offset + SYNC_POINT_SIZE].copy_from_slice(&fake);
    }
    let first = payload(1, first_len, false);
    let mut log = Vec::new();
    let synced = encode_record(&mut log, 0, &first);
    assert_eq!(synced, evil_at as u64);
    encode_record(&mut log, synced, &evil);
    assert_eq!(&log[evil_at + 4..evil_at + 6], &[0x50, 0x01]);
    let crashes: [(&str, std::ops::Range<usize>); 4] = [
        // Also a torn copy of the append that stored all but its first bytes.
        (
            "the page before the high length byte lost",
            evil_at..evil_at + 5,
        ),
        ("the high length byte unstored", evil_at + 5..evil_at + 6),
        ("both length bytes unstored", evil_at + 4..evil_at + 6),
        ("the checksum unstored", evil_at..evil_at + 4),
    ];
    for (name, zeroed) in crashes {
        let mut file = log.clone();
        file[zeroed].fill(0);
        for mode in [
            RecoveryMode::TolerateCorruptedTailRecords,
            RecoveryMode::PointInTimeRecovery,
        ] {
            let outcome = read_all(&file, mode);
            assert_eq!(outcome.records.len(), 1, "{name}, {mode:?}");
            assert!(
                matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. }) if offset == evil_at as u64),
                "{name}, {mode:?}: {:?}",
                outcome.end
            );
            assert!(!outcome.has_sync_point, "{name}: an imitation counted");
        }
        let absolute = read_all(&file, RecoveryMode::AbsoluteConsistency);
        assert!(
            matches!(absolute.end, Err(Error::TornTail { .. })),
            "{name}: {:?}",
            absolute.end
        );
    }
}

#[test]
fn a_sync_point_stating_more_than_precedes_it_is_corruption() {
    let a = fragment(RecordType::Full as u8, b"a");
    let liar = fragment(RecordType::SyncPoint as u8, &1000u64.to_le_bytes());
    let log = [
        a.clone(),
        liar.clone(),
        fragment(RecordType::Full as u8, b"b"),
    ]
    .concat();
    let at = a.len() as u64;
    let reason = CorruptionReason::ImpossibleSyncPoint { synced_len: 1000 };
    for mode in [
        RecoveryMode::TolerateCorruptedTailRecords,
        RecoveryMode::AbsoluteConsistency,
    ] {
        let outcome = read_all(&log, mode);
        assert_eq!(records_of(&outcome), [b"a".to_vec()]);
        assert_eq!(outcome.end, Err(Error::Corruption { offset: at, reason }));
        assert_eq!(
            outcome.synced_len, 0,
            "an impossible statement proves nothing"
        );
        assert!(!outcome.has_sync_point);
    }
    let pitr = read_all(&log, RecoveryMode::PointInTimeRecovery);
    assert_eq!(pitr.end, Ok(LogEnd::Corruption { offset: at, reason }));
    let skip = read_all(&log, RecoveryMode::SkipAnyCorruptedRecords);
    assert_eq!(records_of(&skip), [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(
        (skip.anomalies[0].offset, skip.anomalies[0].length),
        (at, liar.len() as u64)
    );
    // Even as the last fragment: it is not crash damage.
    let outcome = read_all(&[a, liar].concat(), RecoveryMode::default());
    assert_eq!(outcome.end, Err(Error::Corruption { offset: at, reason }));
    assert_eq!(
        reason.to_string(),
        "sync point states 1000 synced bytes, more than precede it"
    );
}

#[test]
fn a_sync_point_inside_a_record_interrupts_it() {
    let first = fragment(RecordType::First as u8, b"begun");
    let point = fragment(RecordType::SyncPoint as u8, &0u64.to_le_bytes());
    let last = fragment(RecordType::Last as u8, b"ended");
    let log = [first.clone(), point, last].concat();
    let reason = CorruptionReason::UnfinishedRecord {
        record_offset: 0,
        found: RecordType::SyncPoint,
    };
    let outcome = read_all(&log, RecoveryMode::default());
    assert!(outcome.records.is_empty());
    assert_eq!(
        outcome.end,
        Ok(LogEnd::TornTail {
            offset: 0,
            reason: TornReason::DamagedTail(reason)
        })
    );
    assert_eq!(
        reason.to_string(),
        "SYNC_POINT fragment before the LAST fragment of the record at offset 0"
    );
    // Proven synced, it is corruption where the sync point was found.
    let mut sealed = log.clone();
    let len = sealed.len() as u64;
    encode_seal(&mut sealed, len, len);
    let outcome = read_all(&sealed, RecoveryMode::default());
    assert_eq!(
        outcome.end,
        Err(Error::Corruption {
            offset: first.len() as u64,
            reason
        })
    );
}

#[test]
fn a_filler_states_nothing() {
    // Fillers of every short length, and nothing else.
    let mut log = Vec::new();
    for len in 0..8 {
        log.extend(fragment(RecordType::SyncPoint as u8, &vec![0xee; len]));
    }
    log.extend(fragment(RecordType::Full as u8, b"r"));
    for mode in MODES {
        let outcome = read_all(&log, mode);
        assert_eq!(records_of(&outcome), [b"r".to_vec()]);
        assert_eq!(
            outcome.end,
            Ok(LogEnd::Clean {
                offset: log.len() as u64
            })
        );
        assert!(!outcome.has_sync_point);
        assert_eq!(outcome.synced_len, 0);
    }
}

#[test]
fn a_sealed_log_is_proven_to_its_seal() {
    let mut writer = Writer::new(Vec::new());
    for i in 0..50 {
        writer.add_record(&payload(i, 997 * i, false)).unwrap();
    }
    let data_end = writer.offset_written();
    writer.seal().unwrap();
    let log = writer.into_inner();
    let outcome = read_all(&log, RecoveryMode::default());
    assert_eq!(outcome.synced_len, data_end);
    // The last record's last byte: corruption, not a torn tail.
    let mut damaged = log.clone();
    damaged[data_end as usize - 1] ^= 0x10;
    let outcome = read_all(&damaged, RecoveryMode::default());
    assert!(matches!(outcome.end, Err(Error::Corruption { .. })));
    assert_eq!(outcome.records.len(), 49);
}

/// Regression (found by the fuzzer): salvage resynchronising onto a sync
/// point after damage counted it, so `has_sync_point` differed by mode. The
/// proof is the sync points read before the first anomaly and those found
/// from later block starts, in every mode.
#[test]
fn the_proof_is_the_same_in_every_mode() {
    let mut damaged = fragment(RecordType::Full as u8, b"damaged");
    damaged[0] ^= 1;
    let behind = damaged.len() as u64;
    for point in [
        fragment(RecordType::SyncPoint as u8, &0u64.to_le_bytes()),
        fragment(RecordType::SyncPoint as u8, &(behind + 1).to_le_bytes()),
    ] {
        let log = [
            damaged.clone(),
            point,
            fragment(RecordType::Full as u8, b"r"),
        ]
        .concat();
        for mode in MODES {
            let outcome = read_all(&log, mode);
            assert!(!outcome.has_sync_point, "{mode:?}");
            assert_eq!(outcome.synced_len, 0, "{mode:?}");
        }
        // Salvage did resynchronise onto it.
        let skip = read_all(&log, RecoveryMode::SkipAnyCorruptedRecords);
        assert_eq!(records_of(&skip), [b"r".to_vec()]);
    }
}
