//! The tail rule for logs whose every record was synced before the next was
//! written (the MANIFEST): `TailRule::EveryRecordSyncedButLast`. Damage
//! before the last record's append is corruption as soon as anything valid
//! after it shows a later append, without waiting for a sync point in a
//! later block; a crash, which only damages the last append, stays a torn tail.

#![allow(clippy::unwrap_used)] // an integration test crate: helpers outside #[test] fns unwrap too

mod common;

use common::{
    claims_past_the_file, layout_of_ops, payload, read_all, read_all_with, write_ops, Layout, Op,
    MODES,
};
use strata_wal::{
    encode_record, encode_sync_point, Error, LogEnd, Reader, RecoveryMode, TailRule, TornReason,
    BLOCK_SIZE, HEADER_SIZE, SECTOR_SIZE, SYNC_POINT_SIZE,
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
/// sync point framed before it) every flip is corruption, but one: a length
/// made to run past the end of the file reads as the last append cut short
/// (its payload could hold the records after it), a torn tail the engine
/// judges by what its bytes hold. With sync points alone, all in the
/// damaged block, many of the same flips read as torn tails.
#[test]
fn every_flip_before_the_last_append_is_corruption() {
    let (log, _, layout) = manifest_like(&[9, 9, 44, 30]);
    let last = *layout.sync_points.last().unwrap();
    assert_eq!(last.end, layout.records[3].start);
    let mut torn_with_sync_points_alone = 0;
    let mut cut_lookalikes = 0;
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
            assert_eq!(outcome.records.len(), damaged_record, "{what}");
            if claims_past_the_file(&damaged, fragment.start) {
                cut_lookalikes += 1;
                assert!(
                    matches!(outcome.end, Ok(LogEnd::TornTail { offset, reason: TornReason::TruncatedPayload { .. } }) if offset == fragment.start as u64),
                    "{what}: {:?}",
                    outcome.end
                );
                continue;
            }
            assert!(
                matches!(outcome.end, Err(Error::Corruption { offset, .. }) if offset == fragment.start as u64),
                "{what}: {:?}",
                outcome.end
            );
            let plain = read_all(&damaged, RecoveryMode::default());
            assert_eq!(plain.records, outcome.records, "{what}");
            if matches!(plain.end, Ok(LogEnd::TornTail { .. })) {
                torn_with_sync_points_alone += 1;
            }
        }
    }
    assert!(torn_with_sync_points_alone > 0);
    // Of each of the three records, the high length byte flipped by 0x01
    // and 0x41 and the low one by 0xff; of the third (44 bytes, 52 before
    // the end), the low one by 0x41 too.
    assert_eq!(cut_lookalikes, 10);
}

/// The last append holds a sync point, then the record. A power loss that
/// loses the sector holding the sync point (all of it, or its header with a
/// sector boundary inside it) and keeps the sector holding the record leaves
/// a valid record after the damage, yet only the last append is damaged: a
/// torn tail. ("Any valid fragment after the damage" called it corruption.)
#[test]
fn the_last_appends_sync_point_lost_and_its_record_kept_is_a_torn_tail() {
    for lost in [SYNC_POINT_SIZE, HEADER_SIZE, 3] {
        // The last sync point starts `lost` bytes before the boundary.
        let (log, _, layout) = manifest_like(&[100, SECTOR_SIZE - lost - 29 - 100, 300]);
        let point = *layout.sync_points.last().unwrap();
        assert_eq!(point.start + lost, SECTOR_SIZE);
        let mut file = log.clone();
        file[point.start..SECTOR_SIZE].fill(0);
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
        // One byte lost in a sector that kept the others is no crash's
        // doing (only a copy into a mapped file leaves that).
        let mut file = log.clone();
        file[point.start] = 0;
        let outcome = read_all_with(&file, RecoveryMode::default(), RULE);
        assert!(
            matches!(outcome.end, Err(Error::Corruption { offset, .. }) if offset == point.start as u64),
            "{lost}: {:?}",
            outcome.end
        );
    }
}

/// A last record spanning blocks, whose FIRST fragment a crash damaged
/// (sectors of it lost) and whose MIDDLE and LAST survived: one append, a
/// torn tail.
#[test]
fn a_last_record_whose_first_fragment_is_lost_is_a_torn_tail() {
    let (log, _, layout) = manifest_like(&[100, 3 * BLOCK_SIZE]);
    let record = layout.records[1];
    let point = *layout.sync_points.last().unwrap();
    assert!(record.end > 3 * BLOCK_SIZE && record.start < SECTOR_SIZE);
    for (name, lost) in [
        ("header", record.start..SECTOR_SIZE),
        ("payload", 2 * SECTOR_SIZE..8 * SECTOR_SIZE),
        ("sync point and header", point.start..SECTOR_SIZE),
        ("sync point to the FIRST's end", point.start..BLOCK_SIZE),
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
    file[SECTOR_SIZE..2 * BLOCK_SIZE + SECTOR_SIZE].fill(0);
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

/// The last record's payload is never read as framing, whatever a crash
/// did to the record: its checksum's sector lost (a sector boundary inside
/// its header), its header's type and length lost, a payload sector lost,
/// or the file cut inside it. A payload imitating framing (a record, a sync
/// point stating more than any offset here) leaves a torn tail.
#[test]
fn the_torn_last_records_payload_is_never_read_as_framing() {
    let mut evil = payload(3, 200, false);
    evil.extend(imitations());
    // The last record's header starts 4 bytes before the first boundary:
    // its checksum in one sector, its length and type in the next.
    let first = SECTOR_SIZE - 4 - SYNC_POINT_SIZE - HEADER_SIZE;
    let records = vec![payload(1, first, false), evil.clone()];
    let ops = [
        Op::Record(first),
        Op::Sync,
        Op::Record(evil.len()),
        Op::Sync,
    ];
    let log = write_ops(&ops, &records);
    let layout = layout_of_ops(0, &ops);
    let append = layout.sync_points[0].start;
    let evil_at = layout.records[1].start;
    assert_eq!(evil_at + 4, SECTOR_SIZE);
    assert!(layout.records[1].end > 2 * SECTOR_SIZE);
    let mut crashes = vec![
        ("sync point and checksum", append..SECTOR_SIZE),
        ("length and type", SECTOR_SIZE..2 * SECTOR_SIZE),
        ("payload sector", 2 * SECTOR_SIZE..3 * SECTOR_SIZE),
        ("whole header", append..2 * SECTOR_SIZE),
    ];
    crashes.retain(|(_, lost)| lost.end <= log.len());
    for (name, lost) in crashes {
        let mut file = log.clone();
        file[lost].fill(0);
        let outcome = read_all_with(&file, RecoveryMode::default(), RULE);
        assert_eq!(outcome.records.len(), 1, "{name}");
        assert!(
            matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. }) if offset >= append as u64),
            "{name}: {:?}",
            outcome.end
        );
    }
    for cut in evil_at + 1..log.len() {
        let outcome = read_all_with(&log[..cut], RecoveryMode::default(), RULE);
        assert!(
            matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. }) if offset == evil_at as u64),
            "cut at {cut}: {:?}",
            outcome.end
        );
    }
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

/// The recipe of fuzz/corpus/wal_reader/seed-regression-cut-last-record-
/// holding-framed-fragments (after its selector byte), the `wal_reader`
/// fuzz target's counterexample as a write(2)-appended log meets it: two
/// records, the first synced; the last one cut at 72,000 (then three zeros
/// appended). The recipe, which fills the records, holds a framed FULL
/// fragment at offset 10, as a MANIFEST edit's table boundary key may.
const FUZZ_RECIPE: [u8; 28] = [
    0xd2, 0x2c, 0xff, 0x00, 0xa3, 0x00, 0x6b, 0x92, 0x03, 0x00, 0x12, 0xe7, 0x31, 0x1a, 0x0b, 0x00,
    0x01, 0x03, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0b, 0x01,
];

/// A record the way the fuzz target fills it: the recipe repeated, the
/// first byte set to the record's index.
fn fuzz_payload(index: u8, len: usize) -> Vec<u8> {
    let mut payload = FUZZ_RECIPE.repeat(len / FUZZ_RECIPE.len() + 1);
    payload.truncate(len);
    payload[0] = index;
    payload
}

/// A MANIFEST-like log of `first` (synced) and then the fuzz target's last
/// record, unsynced: 256 bytes repeating the recipe, so nine framed FULL
/// fragments lie in its payload. Returns the log and where the last append
/// and its record start.
fn with_framed_last_record(first: usize) -> (Vec<u8>, usize, usize) {
    let records = vec![fuzz_payload(0, first), fuzz_payload(1, 256)];
    let ops = [Op::Record(first), Op::Sync, Op::Record(256)];
    let log = write_ops(&ops, &records);
    let layout = layout_of_ops(0, &ops);
    let point = *layout.sync_points.last().unwrap();
    assert_eq!(point.end, layout.records[1].start);
    (log, point.start, layout.records[1].start)
}

fn assert_torn_after_one_record(file: &[u8], append: usize, what: &str) {
    for mode in [
        RecoveryMode::TolerateCorruptedTailRecords,
        RecoveryMode::PointInTimeRecovery,
    ] {
        let outcome = read_all_with(file, mode, RULE);
        assert_eq!(outcome.records.len(), 1, "{what}, {mode:?}");
        // A cut just past the sync point leaves a clean end.
        assert!(
            matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. } | LogEnd::Clean { offset }) if offset >= append as u64),
            "{what}, {mode:?}: {:?}",
            outcome.end
        );
    }
}

/// The fuzz target's log (a synced record of 71,820 bytes, then the last
/// one), cut anywhere in the last append, the crash every writer meets. The
/// rule used to search every byte position after a cut header and took the
/// framed fragments in the record's own payload for a later append: the
/// MANIFEST would not open after a crash whenever its last edit held a key
/// with framed log bytes in it.
#[test]
fn a_cut_last_record_holding_framed_fragments_is_a_torn_tail() {
    let (log, append, record) = with_framed_last_record(71_820);
    assert!(read_all_with(&log, RecoveryMode::default(), RULE)
        .end
        .is_ok());
    // The corpus seed's crash.
    let mut seed_crash = log[..72_000].to_vec();
    seed_crash.extend([0; 3]);
    assert_torn_after_one_record(&seed_crash, append, "cut at 72,000, three zeros after");
    for cut in append + 1..log.len() {
        let what = format!("cut at {cut} (record at {record})");
        assert_torn_after_one_record(&log[..cut], append, &what);
    }
}

/// The same last record, placed so that a sector boundary falls inside its
/// header, 3 bytes in: a power loss that loses the sector before the
/// boundary (the sync point and the header's checksum) and keeps the one
/// after it. The rule used to search from the lost sync point on, past the
/// damaged header, into the payload.
#[test]
fn a_last_record_whose_header_lost_a_sector_holding_framed_fragments_is_a_torn_tail() {
    // The first record ends 15 + 3 bytes before the 1024-byte boundary.
    let (log, append, record) = with_framed_last_record(2 * SECTOR_SIZE - 18 - HEADER_SIZE);
    assert_eq!(record + 3, 2 * SECTOR_SIZE);
    let mut file = log.clone();
    file[append..2 * SECTOR_SIZE].fill(0);
    assert_torn_after_one_record(&file, append, "the sector before the boundary lost");
    // Cut as well.
    for cut in 2 * SECTOR_SIZE..log.len() {
        assert_torn_after_one_record(&file[..cut], append, &format!("lost and cut at {cut}"));
    }
}
