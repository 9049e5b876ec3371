//! Exhaustive damage: every truncation point and every single-byte flip of a
//! small log, read in every recovery mode, with the exact expected outcome.
//!
//! The log (3 blocks and 281 bytes) has an empty record, a block tail of 3
//! padding bytes, a block tail of exactly 7 bytes (an empty FIRST fragment), a
//! record of FIRST + MIDDLE + LAST, and small records after it.
//!
//! Payloads are text (bytes a-z) in the exhaustive tests: no payload byte looks
//! like a fragment type, which keeps the reader's byte-by-byte damage scan
//! cheap enough to read the log ~1.2 million times in seconds. The same checks
//! on arbitrary payloads, where the scan meets plausible-looking headers, run
//! on every byte of the small records and the fragment edges.

#![allow(clippy::unwrap_used)] // an integration test crate: helpers outside #[test] fns unwrap too

mod common;

use common::{layout, payload, Layout, MODES};
use strata_wal::{Anomaly, Error, LogEnd, Reader, RecoveryMode, Writer, BLOCK_SIZE, HEADER_SIZE};

const SIZES: [usize; 7] = [
    100,
    0,
    // Ends 3 bytes before the end of block 0: padding.
    BLOCK_SIZE - 3 - 114 - HEADER_SIZE,
    // Fills block 1 but for a 7-byte tail.
    BLOCK_SIZE - 2 * HEADER_SIZE,
    // Empty FIRST in that tail, MIDDLE filling block 2, LAST in block 3.
    BLOCK_SIZE,
    10,
    200,
];

struct Fixture {
    log: Vec<u8>,
    records: Vec<Vec<u8>>,
    layout: Layout,
}

fn fixture(text: bool) -> Fixture {
    let records: Vec<Vec<u8>> = SIZES
        .iter()
        .enumerate()
        .map(|(i, &size)| payload(i, size, text))
        .collect();
    let mut writer = Writer::new(Vec::new());
    for record in &records {
        writer.add_record(record).unwrap();
    }
    let log = writer.into_inner();
    let layout = layout(0, &SIZES);
    // The fixture has the shape the comments promise.
    assert_eq!(layout.records[2].end, BLOCK_SIZE - 3);
    assert_eq!(layout.records[3].end, 2 * BLOCK_SIZE - HEADER_SIZE);
    assert_eq!(
        layout.fragments[4].end - layout.fragments[4].start,
        HEADER_SIZE
    );
    assert_eq!(layout.fragments.len(), 9);
    assert_eq!(log.len(), layout.records[6].end);
    Fixture {
        log,
        records,
        layout,
    }
}

/// What a reader returned, as indices into the fixture's records (`usize::MAX`
/// for a record that is not one of them, at its offset), without copying data.
struct Outcome {
    records: Vec<usize>,
    end: Result<LogEnd, Error>,
    anomalies: Vec<Anomaly>,
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

fn check_truncations(f: &Fixture) {
    check_truncations_at(f, 0..=f.log.len());
}

fn check_truncations_at(f: &Fixture, cuts: impl Iterator<Item = usize>) {
    let n = f.records.len();
    for cut in cuts.filter(|&cut| cut <= f.log.len()) {
        let complete = f.layout.records.iter().filter(|r| r.end <= cut).count();
        // Cut at a record end or inside the padding before the next header: clean.
        let (kind, offset) = match f.layout.records.get(complete) {
            Some(next) if cut > next.start => ("torn", next.start as u64),
            _ => ("clean", cut as u64),
        };
        assert!(complete < n || kind == "clean");
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
        }
    }
}

/// The exact outcome of damaging the byte at `pos` in `mode`.
fn check_damaged(f: &Fixture, pos: usize, mode: RecoveryMode, outcome: &Outcome) {
    let len = f.log.len() as u64;
    let Some((index, fragment)) = f.layout.fragment_containing(pos) else {
        // Block-tail padding: no checksum covers it and nothing is lost.
        assert_eq!(
            outcome.records,
            (0..f.records.len()).collect::<Vec<_>>(),
            "damage at {pos}, {mode:?}: {:?}",
            outcome.end
        );
        assert_eq!(
            ending(&outcome.end),
            ("clean", len, false),
            "damage at {pos}, {mode:?}: {:?}",
            outcome.end
        );
        return;
    };
    let k = fragment.record;
    let record_start = f.layout.records[k].start as u64;
    let at = fragment.start as u64;
    // Torn iff no valid fragment follows the damaged one.
    let torn = index + 1 == f.layout.fragments.len();
    let (records, end, anomalies) = match mode {
        RecoveryMode::TolerateCorruptedTailRecords | RecoveryMode::AbsoluteConsistency => {
            let error = !torn || mode == RecoveryMode::AbsoluteConsistency;
            let end = if torn {
                ("torn", record_start, error)
            } else {
                ("corruption", at, error)
            };
            ((0..k).collect::<Vec<_>>(), end, vec![])
        }
        RecoveryMode::PointInTimeRecovery => {
            if torn {
                (
                    (0..k).collect::<Vec<_>>(),
                    ("torn", record_start, false),
                    vec![],
                )
            } else {
                let anomaly = (record_start, len - record_start, at);
                (
                    (0..k).collect::<Vec<_>>(),
                    ("corruption", at, false),
                    vec![anomaly],
                )
            }
        }
        RecoveryMode::SkipAnyCorruptedRecords => {
            let others: Vec<usize> = (0..f.records.len()).filter(|&i| i != k).collect();
            if torn {
                (others, ("torn", record_start, false), vec![])
            } else if let Some(next) = f.layout.records.get(k + 1) {
                let anomaly = (record_start, next.start as u64 - record_start, at);
                (others, ("clean", len, false), vec![anomaly])
            } else {
                // Only the damaged record's own later fragments follow: skipped to the end.
                let anomaly = (record_start, len - record_start, at);
                (others, ("corruption", at, false), vec![anomaly])
            }
        }
    };
    assert_eq!(
        outcome.records, records,
        "damage at {pos}, {mode:?}: {:?}",
        outcome.end
    );
    assert_eq!(
        ending(&outcome.end),
        end,
        "damage at {pos}, {mode:?}: {:?}",
        outcome.end
    );
    assert_eq!(
        regions(&outcome.anomalies),
        anomalies,
        "damage at {pos}, {mode:?}: {:?}",
        outcome.end
    );
}

fn check_flips(f: &Fixture, masks: &[u8], positions: std::ops::Range<usize>) {
    let mut damaged = f.log.clone();
    for pos in positions.start..positions.end.min(f.log.len()) {
        for &mask in masks {
            damaged[pos] ^= mask;
            for mode in MODES {
                let outcome = read(f, &damaged, mode);
                check_damaged(f, pos, mode, &outcome);
            }
            damaged[pos] ^= mask;
        }
    }
}

#[test]
fn every_truncation_point() {
    check_truncations(&fixture(true));
}

// Every byte, flipped two ways; two tests so the harness spreads them over the cores.
#[test]
fn every_byte_xor_01() {
    check_flips(&fixture(true), &[0x01], 0..usize::MAX);
}

#[test]
fn every_byte_xor_ff() {
    check_flips(&fixture(true), &[0xff], 0..usize::MAX);
}

/// Headers and padding carry the structure: there, every bit of every byte.
#[test]
fn every_bit_of_headers_and_padding() {
    let f = fixture(true);
    let bits = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80];
    for fragment in &f.layout.fragments {
        check_flips(&f, &bits, fragment.start..fragment.start + HEADER_SIZE);
    }
    check_flips(&f, &bits, BLOCK_SIZE - 3..BLOCK_SIZE);
}

/// Arbitrary payloads: every byte of the small records, and every byte within
/// 64 of a fragment edge (headers, padding, payload ends), flipped two ways,
/// plus every truncation point in those places.
#[test]
fn arbitrary_payloads_near_fragment_edges() {
    let f = fixture(false);
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
