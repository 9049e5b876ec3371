//! The tail rule for logs whose every record was synced before the next was
//! written (the MANIFEST): `TailRule::EveryRecordSyncedButLast`. Damage
//! before the last record's append is corruption as soon as anything valid
//! after it shows a later append, without waiting for a sync point in a
//! later block; a crash, which only damages the last append, stays a torn tail.

#![allow(clippy::unwrap_used)] // an integration test crate: helpers outside #[test] fns unwrap too

mod common;

use common::{layout_of_ops, payload, read_all, read_all_with, write_ops, Layout, Op, MODES};
use strata_wal::{
    encode_record, encode_sync_point, Error, LogEnd, Reader, RecoveryMode, TailRule, BLOCK_SIZE,
    HEADER_SIZE, SYNC_POINT_SIZE,
};

const RULE: TailRule = TailRule::EveryRecordSyncedButLast;

/// Records written the MANIFEST's way: each synced before the next.
fn manifest_like(sizes: &[usize]) -> (Vec<u8>, Vec<Vec<u8>>, Layout) {
    let ops: Vec<Op> = sizes
        .iter()
        .flat_map(|&size| [Op::Record(size), Op::Sync])
        .collect();
    let records: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| payload(i, size, false))
        .collect();
    let log = write_ops(&ops, &records);
    let layout = layout_of_ops(0, &ops);
    assert_eq!(log.len(), layout.end);
    (log, records, layout)
}

/// A small MANIFEST in one block, like the engine's after a flush: every
/// byte flipped three ways. Before the last append (the last record and the
/// sync point framed before it) every flip is corruption. With sync points
/// alone, all in the damaged block, many of the same flips read as torn
/// tails, some (a length made to run past the end of the file) of a kind
/// the engine accepts as a torn write: synced edits dropped silently.
#[test]
fn every_flip_before_the_last_append_is_corruption() {
    let (log, _, layout) = manifest_like(&[9, 9, 44, 30]);
    let last = *layout.sync_points.last().unwrap();
    assert_eq!(last.end, layout.records[3].start);
    let mut torn_with_sync_points_alone = 0;
    for pos in 0..last.start {
        let (_, fragment) = layout.fragment_containing(pos).unwrap();
        let damaged_record = fragment
            .record
            .unwrap_or_else(|| layout.records_before(fragment.start));
        for mask in [0x01, 0x41, 0xff] {
            let mut damaged = log.clone();
            damaged[pos] ^= mask;
            let what = format!("flip {mask:#04x} at {pos}");
            let outcome = read_all_with(&damaged, RecoveryMode::default(), RULE);
            assert!(
                matches!(outcome.end, Err(Error::Corruption { offset, .. }) if offset == fragment.start as u64),
                "{what}: {:?}",
                outcome.end
            );
            assert_eq!(outcome.records.len(), damaged_record, "{what}");
            let plain = read_all(&damaged, RecoveryMode::default());
            assert_eq!(plain.records, outcome.records, "{what}");
            if matches!(plain.end, Ok(LogEnd::TornTail { .. })) {
                torn_with_sync_points_alone += 1;
            }
        }
    }
    assert!(torn_with_sync_points_alone > 0);
}

/// The last append holds a sync point, then the record. A crash that loses
/// the sync point's bytes and keeps the record (a page boundary between
/// them, the first page lost; or a copy that stores its first bytes last)
/// leaves a valid record after the damage, yet only the last append is
/// damaged: a torn tail. ("Any valid fragment after the damage" called it
/// corruption.)
#[test]
fn the_last_appends_sync_point_lost_and_its_record_kept_is_a_torn_tail() {
    let (log, _, layout) = manifest_like(&[100, 200, 300]);
    let point = *layout.sync_points.last().unwrap();
    let record = layout.records[2];
    assert_eq!(point.end, record.start);
    for lost in [1, 7, SYNC_POINT_SIZE] {
        let mut file = log.clone();
        file[point.start..point.start + lost].fill(0);
        for mode in [
            RecoveryMode::TolerateCorruptedTailRecords,
            RecoveryMode::PointInTimeRecovery,
        ] {
            let outcome = read_all_with(&file, mode, RULE);
            assert_eq!(outcome.records.len(), 2, "{lost} lost, {mode:?}");
            assert!(
                matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. }) if offset == point.start as u64),
                "{lost} lost, {mode:?}: {:?}",
                outcome.end
            );
        }
    }
}

/// A last record spanning blocks, whose FIRST fragment a crash damaged and
/// whose MIDDLE and LAST survived: one append, a torn tail.
#[test]
fn a_last_record_whose_first_fragment_is_lost_is_a_torn_tail() {
    let (log, _, layout) = manifest_like(&[100, 3 * BLOCK_SIZE]);
    let record = layout.records[1];
    assert!(record.end > 3 * BLOCK_SIZE);
    for (name, lost) in [
        ("header", record.start..record.start + HEADER_SIZE),
        ("payload", record.start + 100..record.start + 4000),
        ("sync point and header", record.start - 15..record.start + 3),
    ] {
        let mut file = log.clone();
        file[lost].fill(0);
        let outcome = read_all_with(&file, RecoveryMode::default(), RULE);
        assert_eq!(outcome.records.len(), 1, "{name}");
        assert!(
            matches!(outcome.end, Ok(LogEnd::TornTail { .. })),
            "{name}: {:?}",
            outcome.end
        );
    }
    // A MIDDLE fragment lost too (LAST kept): still one append.
    let mut file = log.clone();
    file[record.start + 100..2 * BLOCK_SIZE + 50].fill(0);
    let outcome = read_all_with(&file, RecoveryMode::default(), RULE);
    assert!(
        matches!(outcome.end, Ok(LogEnd::TornTail { .. })),
        "{:?}",
        outcome.end
    );
    // Damage to the record before it is corruption: its append was synced.
    let mut file = log.clone();
    file[50] ^= 1;
    let outcome = read_all_with(&file, RecoveryMode::default(), RULE);
    assert!(
        matches!(outcome.end, Err(Error::Corruption { offset: 0, .. })),
        "{:?}",
        outcome.end
    );
}

/// A payload holding framed log bytes: a FULL record, and a sync point
/// stating more than any damage offset. Framed so that every byte alignment is tried.
fn imitations() -> Vec<u8> {
    let mut out = Vec::new();
    for shift in 0..8 {
        out.extend(std::iter::repeat_n(0xab, shift));
        let at = out.len() as u64;
        let end = encode_record(&mut out, at, b"an edit that was never written");
        encode_sync_point(&mut out, end, end);
    }
    out
}

/// The last record's payload is not searched when its header stands up (a
/// known type, a length that fits, its end confirmed by the end of the
/// file): a crash that lost only its checksum or payload bytes leaves a
/// torn tail even when the payload imitates framing.
#[test]
fn the_torn_last_records_own_payload_is_not_searched_when_its_header_stands() {
    let mut evil = payload(3, 200, false);
    evil.extend(imitations());
    let records = vec![payload(1, 100, false), evil.clone()];
    let ops = [Op::Record(100), Op::Sync, Op::Record(evil.len()), Op::Sync];
    let log = write_ops(&ops, &records);
    let layout = layout_of_ops(0, &ops);
    let evil_at = layout.records[1].start;
    for (name, lost) in [
        ("checksum", evil_at..evil_at + 4),
        ("payload page", evil_at + 20..evil_at + 150),
    ] {
        let mut file = log.clone();
        file[lost].fill(0);
        let outcome = read_all_with(&file, RecoveryMode::default(), RULE);
        assert_eq!(outcome.records.len(), 1, "{name}");
        assert!(
            matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. }) if offset == evil_at as u64),
            "{name}: {:?}",
            outcome.end
        );
    }
    // The caveat that remains (docs/wal-format.md): with the type byte lost
    // the extent is unknown, the payload is searched, and the imitation
    // reads as a later append. If this starts to pass as a torn tail, the
    // caveat can go from the docs.
    let mut file = log.clone();
    file[evil_at + 6] = 0;
    let outcome = read_all_with(&file, RecoveryMode::default(), RULE);
    assert!(
        matches!(outcome.end, Err(Error::Corruption { .. })),
        "{:?}",
        outcome.end
    );
}

#[test]
fn the_rule_changes_only_the_ending_and_salvage_ignores_it() {
    let (log, _, layout) = manifest_like(&[10, 20, 30, 40]);
    let mut damaged = log.clone();
    damaged[layout.records[1].start + 4] ^= 0x40; // a length past the file
    for mode in MODES {
        let plain = read_all(&damaged, mode);
        let ruled = read_all_with(&damaged, mode, RULE);
        assert_eq!(plain.records, ruled.records, "{mode:?}");
        assert_eq!(plain.synced_len, ruled.synced_len, "{mode:?}");
        match mode {
            RecoveryMode::SkipAnyCorruptedRecords => assert_eq!(plain, ruled),
            RecoveryMode::PointInTimeRecovery => {
                assert!(matches!(plain.end, Ok(LogEnd::TornTail { .. })));
                assert!(matches!(ruled.end, Ok(LogEnd::Corruption { .. })));
                assert_eq!(ruled.anomalies.len(), 1);
            }
            _ => assert!(
                matches!(ruled.end, Err(Error::Corruption { .. })),
                "{mode:?}"
            ),
        }
    }
    let reader = Reader::with_tail_rule(&log, RecoveryMode::default(), RULE);
    assert_eq!(reader.tail_rule(), RULE);
    assert_eq!(
        Reader::new(&log, RecoveryMode::default()).tail_rule(),
        TailRule::SyncPoints
    );
    // An undamaged log reads the same under both rules.
    assert_eq!(
        read_all(&log, RecoveryMode::default()),
        read_all_with(&log, RecoveryMode::default(), RULE)
    );
}

/// A crash only zeroes bytes, so a header it damaged has a length whose
/// bytes are the written ones or zero; a sync point's written length is 8
/// (or fills its block). A sync point claiming some other length is no
/// crash's doing, and its claimed extent is not skipped even where its end
/// lands exactly on a later record, over the sync point that proves it.
#[test]
fn a_length_no_writer_writes_is_not_taken_for_crash_damage() {
    let (log, _, layout) = manifest_like(&[9, 9, 30]);
    let point = layout.sync_points[0];
    let last = layout.records[2];
    let mut damaged = log.clone();
    damaged[point.start + 4] = u8::try_from(last.start - point.start - HEADER_SIZE).unwrap();
    let outcome = read_all_with(&damaged, RecoveryMode::default(), RULE);
    assert!(
        matches!(outcome.end, Err(Error::Corruption { offset, .. }) if offset == point.start as u64),
        "{:?}",
        outcome.end
    );
    // Zeroed, the same byte is what a crash can leave: the sync point then
    // claims no payload, and the records after it prove it synced.
    damaged[point.start + 4] = 0;
    let outcome = read_all_with(&damaged, RecoveryMode::default(), RULE);
    assert!(
        matches!(outcome.end, Err(Error::Corruption { .. })),
        "{:?}",
        outcome.end
    );
}
