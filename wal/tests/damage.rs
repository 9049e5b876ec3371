//! Exhaustive damage: every truncation point and every single-byte flip of
//! small logs, read in every recovery mode, with the exact expected outcome.
//!
//! Three logs, each of 3-4 blocks:
//! - **unsynced** (no sync points): an empty record, a block tail of 3
//!   padding bytes, a block tail of exactly 7 bytes (an empty FIRST
//!   fragment), a record of FIRST + MIDDLE + LAST, small records after it.
//!   No damage is proven synced, so outside salvage every flip is a torn tail.
//! - **synced**: records with syncs between them, so sync points are
//!   framed: one after a 10-byte block tail (a filler that states nothing,
//!   then the sync point at the next block start), one after 3 bytes of
//!   padding, one in the middle of a block. Damage is corruption exactly
//!   where a sync point proves it synced: one in a later block, or one
//!   later in the damaged block when the damaged header shows where its
//!   fragment ends (the 300-byte record before the mid-block sync point).
//! - **sealed**: the synced log, then a seal: everything before it proven.
//!
//! Payloads are text (bytes a-z) in the exhaustive tests: no payload byte looks
//! like a fragment type, which keeps salvage's byte-by-byte resync scan
//! cheap enough to read the logs millions of times in seconds. The same checks
//! on arbitrary payloads, where the scan meets plausible-looking headers, run
//! on every byte of the small records and the fragment edges.

#![allow(clippy::unwrap_used)] // an integration test crate: helpers outside #[test] fns unwrap too

mod common;

use common::{layout_of_ops, payload, walk_resumes_at, write_ops, Layout, Op, MODES};
use strata_wal::{Anomaly, Error, LogEnd, Reader, RecoveryMode, BLOCK_SIZE, HEADER_SIZE};

const BS: usize = BLOCK_SIZE;

/// The unsynced log's records.
const UNSYNCED: [Op; 7] = [
    Op::Record(100),
    Op::Record(0),
    // Ends 3 bytes before the end of block 0: padding.
    Op::Record(BS - 3 - 114 - HEADER_SIZE),
    // Fills block 1 but for a 7-byte tail.
    Op::Record(BS - 2 * HEADER_SIZE),
    // Empty FIRST in that tail, MIDDLE filling block 2, LAST in block 3.
    Op::Record(BS),
    Op::Record(10),
    Op::Record(200),
];

/// The synced log: a sync point before each record that follows a sync.
const SYNCED: [Op; 10] = [
    Op::Record(100), // 0..107
    Op::Sync,
    // Sync point at 107, then a record ending 10 bytes before block 0 ends.
    Op::Record(BS - 10 - 122 - HEADER_SIZE),
    Op::Sync,
    // 10-byte tail: a filler that states nothing, the sync point at block 1's
    // start, then a record ending 3 bytes before block 1 ends.
    Op::Record(BS - 3 - 15 - HEADER_SIZE),
    Op::Sync,
    // 3 bytes of padding, the sync point at block 2's start, then a record
    // of FIRST (block 2) and LAST (block 3).
    Op::Record(BS),
    // 300 bytes (length bytes 2c 01, both nonzero): damage to it is proven
    // by the sync point after it, in its own block.
    Op::Record(300),
    Op::Sync,
    // A sync point in the middle of block 3, which no later block proves.
    Op::Record(200),
];

struct Fixture {
    log: Vec<u8>,
    records: Vec<Vec<u8>>,
    layout: Layout,
}

fn fixture(ops: &[Op], text: bool) -> Fixture {
    let records: Vec<Vec<u8>> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Record(size) => Some(*size),
            _ => None,
        })
        .enumerate()
        .map(|(i, size)| payload(i, size, text))
        .collect();
    let log = write_ops(ops, &records);
    let layout = layout_of_ops(0, ops);
    assert_eq!(log.len(), layout.end);
    Fixture {
        log,
        records,
        layout,
    }
}

fn unsynced(text: bool) -> Fixture {
    let f = fixture(&UNSYNCED, text);
    // The fixture has the shape the comments promise.
    assert_eq!(f.layout.records[2].end, BS - 3);
    assert_eq!(f.layout.records[3].end, 2 * BS - HEADER_SIZE);
    assert_eq!(
        f.layout.fragments[4].end - f.layout.fragments[4].start,
        HEADER_SIZE
    );
    assert_eq!(f.layout.fragments.len(), 9);
    assert!(f.layout.sync_points.is_empty());
    f
}

fn synced(text: bool) -> Fixture {
    let f = fixture(&SYNCED, text);
    let points: Vec<(usize, u64)> = f
        .layout
        .sync_points
        .iter()
        .map(|sp| (sp.start, sp.stated))
        .collect();
    let r = &f.layout.records;
    assert_eq!(
        points,
        [
            (107, 107),
            (BS, (BS - 10) as u64),
            (2 * BS, (2 * BS - 3) as u64),
            (r[4].end, r[4].end as u64)
        ]
    );
    assert!(r[4].end > 3 * BS);
    // Damage to record 4 is proven only by the walk from its end.
    let mut damaged = f.log.clone();
    damaged[r[4].start + 100] ^= 1;
    assert!(!f.layout.proves(r[4].start));
    let resume = walk_resumes_at(&damaged, r[4].start);
    assert_eq!(resume, Some(r[4].end));
    assert!(f.layout.proves_with(r[4].start, resume));
    // The filler in block 0's 10-byte tail.
    assert!(f
        .layout
        .fragments
        .iter()
        .any(|g| g.record.is_none() && (g.start, g.end) == (BS - 10, BS)));
    f
}

fn sealed(text: bool) -> Fixture {
    let mut ops = SYNCED.to_vec();
    ops.push(Op::Seal);
    let f = fixture(&ops, text);
    let seal = f.layout.sync_points.last().unwrap();
    assert_eq!(seal.start, 4 * BS);
    assert_eq!(seal.stated, f.layout.records.last().unwrap().end as u64);
    f
}

/// What a reader returned, as indices into the fixture's records (`usize::MAX`
/// for a record that is not one of them, at its offset), without copying data.
struct Outcome {
    records: Vec<usize>,
    end: Result<LogEnd, Error>,
    anomalies: Vec<Anomaly>,
    synced_len: u64,
}

fn read(f: &Fixture, data: &[u8], mode: RecoveryMode) -> Outcome {
    let mut reader = Reader::new(data, mode);
    let mut records = Vec::new();
    let end = loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                let index = f
                    .layout
                    .records
                    .iter()
                    .position(|r| r.start as u64 == record.offset)
                    .filter(|&i| f.records[i] == record.data)
                    .unwrap_or(usize::MAX);
                records.push(index);
            }
            Ok(None) => break Ok(*reader.end().unwrap()),
            Err(error) => break Err(error),
        }
    };
    Outcome {
        records,
        end,
        anomalies: reader.anomalies().to_vec(),
        synced_len: reader.synced_len(),
    }
}

/// The ending without its reason: (kind, offset, is an error).
fn ending(end: &Result<LogEnd, Error>) -> (&'static str, u64, bool) {
    match end {
        Ok(LogEnd::Clean { offset }) => ("clean", *offset, false),
        Ok(LogEnd::TornTail { offset, .. }) => ("torn", *offset, false),
        Ok(LogEnd::Corruption { offset, .. }) => ("corruption", *offset, false),
        Err(Error::TornTail { offset, .. }) => ("torn", *offset, true),
        Err(Error::Corruption { offset, .. }) => ("corruption", *offset, true),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// Anomalies without their reasons: (offset, length, detected_at).
fn regions(anomalies: &[Anomaly]) -> Vec<(u64, u64, u64)> {
    anomalies
        .iter()
        .map(|a| (a.offset, a.length, a.detected_at))
        .collect()
}

/// The greatest length stated by the sync points `include` selects.
fn greatest_stated(f: &Fixture, include: impl Fn(usize, usize) -> bool) -> u64 {
    f.layout
        .sync_points
        .iter()
        .filter(|sp| include(sp.start, sp.end))
        .map(|sp| sp.stated)
        .max()
        .unwrap_or(0)
}

fn check_truncations(f: &Fixture) {
    check_truncations_at(f, 0..=f.log.len());
}

fn check_truncations_at(f: &Fixture, cuts: impl Iterator<Item = usize>) {
    let n = f.records.len();
    for cut in cuts.filter(|&cut| cut <= f.log.len()) {
        let complete = f.layout.records.iter().filter(|r| r.end <= cut).count();
        // A cut inside a record (from its first header) or a sync point is
        // torn there; at an edge or inside padding it is clean.
        let cut_item = f
            .layout
            .records
            .iter()
            .map(|r| (r.start, r.end))
            .chain(
                f.layout
                    .fragments
                    .iter()
                    .filter(|g| g.record.is_none())
                    .map(|g| (g.start, g.end)),
            )
            .find(|&(start, end)| start < cut && cut < end);
        let (kind, offset) = match cut_item {
            Some((start, _)) => ("torn", start as u64),
            None => ("clean", cut as u64),
        };
        assert!(complete < n || kind == "clean" || cut_item.is_some());
        // A truncation cuts off any sync point that could prove the cut bytes synced.
        let synced_len = greatest_stated(f, |_, end| end <= cut);
        for mode in MODES {
            let outcome = read(f, &f.log[..cut], mode);
            assert_eq!(
                outcome.records,
                (0..complete).collect::<Vec<_>>(),
                "cut at {cut}, {mode:?}"
            );
            let error = kind == "torn" && mode == RecoveryMode::AbsoluteConsistency;
            assert_eq!(
                ending(&outcome.end),
                (kind, offset, error),
                "cut at {cut}, {mode:?}"
            );
            assert!(outcome.anomalies.is_empty(), "cut at {cut}, {mode:?}");
            assert_eq!(outcome.synced_len, synced_len, "cut at {cut}, {mode:?}");
        }
    }
}

/// The exact outcome of damaging the byte at `pos` in `mode`.
fn check_damaged(f: &Fixture, data: &[u8], pos: usize, mode: RecoveryMode, outcome: &Outcome) {
    let len = f.log.len() as u64;
    let context = || format!("damage at {pos}, {mode:?}: {:?}", outcome.end);
    let Some((index, fragment)) = f.layout.fragment_containing(pos) else {
        // Block-tail padding: no checksum covers it and nothing is lost.
        assert_eq!(
            outcome.records,
            (0..f.records.len()).collect::<Vec<_>>(),
            "{}",
            context()
        );
        assert_eq!(ending(&outcome.end), ("clean", len, false), "{}", context());
        assert_eq!(outcome.synced_len, greatest_stated(f, |_, _| true));
        return;
    };
    let at = fragment.start;
    // The records before the damaged fragment, and the first byte dropped:
    // the damaged record's start, or the damaged sync point.
    let (kept, dropped_from) = match fragment.record {
        Some(k) => (k, f.layout.records[k].start as u64),
        None => (f.layout.records_before(at), at as u64),
    };
    let resume = walk_resumes_at(data, at);
    let proven = f.layout.proves_with(at, resume);
    // Sync points read before the damage, and found by the walks after it.
    let synced_len = greatest_stated(f, |start, _| {
        start < at || f.layout.reached(at, resume, start)
    });
    let before: Vec<usize> = (0..kept).collect();
    let (records, end, anomalies) = match mode {
        RecoveryMode::TolerateCorruptedTailRecords | RecoveryMode::AbsoluteConsistency => {
            let error = proven || mode == RecoveryMode::AbsoluteConsistency;
            let end = if proven {
                ("corruption", at as u64, error)
            } else {
                ("torn", dropped_from, error)
            };
            (before, end, vec![])
        }
        RecoveryMode::PointInTimeRecovery => {
            if proven {
                let anomaly = (dropped_from, len - dropped_from, at as u64);
                (before, ("corruption", at as u64, false), vec![anomaly])
            } else {
                (before, ("torn", dropped_from, false), vec![])
            }
        }
        RecoveryMode::SkipAnyCorruptedRecords => {
            // Salvage skips any damage followed by a valid fragment, proven or not.
            let others: Vec<usize> = (0..f.records.len())
                .filter(|&i| Some(i) != fragment.record)
                .collect();
            let valid_after = index + 1 < f.layout.fragments.len();
            if !valid_after {
                (others, ("torn", dropped_from, false), vec![])
            } else if let Some(next) = f.layout.records.iter().find(|r| r.start > at) {
                let anomaly = (dropped_from, next.start as u64 - dropped_from, at as u64);
                (others, ("clean", len, false), vec![anomaly])
            } else {
                // Only orphans and sync points follow: skipped to the end.
                let anomaly = (dropped_from, len - dropped_from, at as u64);
                (others, ("corruption", at as u64, false), vec![anomaly])
            }
        }
    };
    assert_eq!(outcome.records, records, "{}", context());
    assert_eq!(ending(&outcome.end), end, "{}", context());
    assert_eq!(regions(&outcome.anomalies), anomalies, "{}", context());
    assert_eq!(outcome.synced_len, synced_len, "{}", context());
}

fn check_flips(f: &Fixture, masks: &[u8], positions: std::ops::Range<usize>) {
    let mut damaged = f.log.clone();
    for pos in positions.start..positions.end.min(f.log.len()) {
        for &mask in masks {
            damaged[pos] ^= mask;
            for mode in MODES {
                let outcome = read(f, &damaged, mode);
                check_damaged(f, &damaged, pos, mode, &outcome);
            }
            damaged[pos] ^= mask;
        }
    }
}

#[test]
fn every_truncation_point() {
    for f in [unsynced(true), synced(true), sealed(true)] {
        check_truncations(&f);
    }
}

// Every byte, flipped two ways; separate tests so the harness spreads them over the cores.
#[test]
fn every_byte_xor_01_unsynced() {
    check_flips(&unsynced(true), &[0x01], 0..usize::MAX);
}

#[test]
fn every_byte_xor_ff_unsynced() {
    check_flips(&unsynced(true), &[0xff], 0..usize::MAX);
}

#[test]
fn every_byte_xor_01_synced() {
    check_flips(&synced(true), &[0x01], 0..usize::MAX);
}

#[test]
fn every_byte_xor_ff_synced() {
    check_flips(&synced(true), &[0xff], 0..usize::MAX);
}

/// The seal adds a filler to the end of block 3 and the seal at block 4's
/// start, and proves every byte before them; every byte but the filler's
/// middle (all alike), flipped one way (`every_byte_*_synced` flip the same
/// bytes with less proof).
#[test]
fn every_byte_of_a_sealed_log_is_proven_before_the_seal() {
    let f = sealed(true);
    let seal = *f.layout.sync_points.last().unwrap();
    let data_end = seal.stated as usize;
    for pos in 0..data_end {
        if f.layout.fragment_containing(pos).is_some() {
            assert!(f.layout.proves(pos), "the seal proves byte {pos}");
        }
    }
    check_flips(&f, &[0xff], 0..data_end + 64);
    check_flips(&f, &[0xff], seal.start - 64..usize::MAX);
}

/// Headers and padding carry the structure: there, every bit of every byte.
#[test]
fn every_bit_of_headers_and_padding() {
    let bits = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80];
    for f in [unsynced(true), synced(true), sealed(true)] {
        for fragment in &f.layout.fragments {
            check_flips(&f, &bits, fragment.start..fragment.start + HEADER_SIZE);
            if fragment.record.is_none() {
                // A sync point's stated length too.
                check_flips(
                    &f,
                    &bits,
                    fragment.start..fragment.end.min(fragment.start + 15),
                );
            }
        }
        for block_end in [BS, 2 * BS, 3 * BS] {
            if f.layout.fragment_containing(block_end - 1).is_none() {
                check_flips(&f, &bits, block_end - 6..block_end);
            }
        }
    }
}

/// Arbitrary payloads: every byte of the small records, and every byte within
/// 64 of a fragment edge (headers, padding, payload ends), flipped two ways,
/// plus every truncation point in those places.
#[test]
fn arbitrary_payloads_near_fragment_edges() {
    for f in [unsynced(false), synced(false)] {
        let mut positions: Vec<usize> = Vec::new();
        for fragment in &f.layout.fragments {
            positions.extend(fragment.start.saturating_sub(64)..fragment.start + 64);
            positions.extend(fragment.end.saturating_sub(64)..fragment.end);
        }
        positions.sort_unstable();
        positions.dedup();
        for &pos in &positions {
            check_flips(&f, &[0x01, 0xff], pos..pos + 1);
        }
        check_truncations_at(&f, positions.iter().copied().chain([f.log.len()]));
    }
}
