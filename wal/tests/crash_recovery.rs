//! The crash contract, as properties over random logs: after any crash the
//! default mode reads a prefix of what was written that holds every synced
//! record, and damage to bytes a sync point proves synced is corruption.
//!
//! A log is written by a [`Writer`] with random records (0..100 KiB) and
//! syncs at random points, over a sink that notes the synced length at each
//! sync. A crash then keeps every byte below the last synced length `L` and
//! any pattern of the rest: (a) an arbitrary subset of the 4 KiB pages past
//! `L` survives (the others read as zeros, as unsynced pages of a
//! preallocated file do after a power loss), the file cut anywhere between
//! `L` and the written length, maybe with a torn copy (zeros in any byte
//! range past `L`) and preallocated zeros after the cut; (b) a plain
//! truncation anywhere past `L`; (c) the first bytes past `L` lost and the
//! rest kept (a copy that stores its first bytes last, as glibc's `memcpy`
//! does, killed; or the page holding them lost and later ones kept).
//!
//! Logs written the MANIFEST's way (every record synced before the next)
//! are also read with [`TailRule::EveryRecordSyncedButLast`]: crashes stay
//! torn tails, and a flipped byte anywhere before the last record's append
//! is corruption (but a length made to run past the end of the file, which
//! reads as the last append cut short). That rule is for a log appended by
//! `write(2)`, as the MANIFEST is, which a crash leaves cut short or with
//! whole 512-byte sectors lost, never bytes inside one: its crashes here
//! lose pages and sectors, not a torn copy's bytes.

#![allow(clippy::unwrap_used)] // an integration test crate: helpers outside #[test] fns unwrap too

mod common;

use common::{
    claims_past_the_file, layout_of_ops, payload, read_all_with, walk_resumes_at, Layout, Op,
};
use proptest::prelude::*;
use strata_wal::{
    Error, LogEnd, RecoveryMode, Sink, TailRule, TornReason, Writer, BLOCK_SIZE, SECTOR_SIZE,
};

const PAGE_SIZE: usize = 4096;

/// A log in memory that notes the length synced at each sync.
#[derive(Default)]
struct SyncNotingSink {
    data: Vec<u8>,
    synced_lens: Vec<usize>,
}

impl Sink for SyncNotingSink {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.synced_lens.push(self.data.len());
        Ok(())
    }
}

/// A written log and what is known about it.
struct Written {
    log: Vec<u8>,
    records: Vec<Vec<u8>>,
    layout: Layout,
    /// The length the last completed sync covered.
    synced_len: usize,
    /// The log's length at each sync.
    synced_lens: Vec<usize>,
}

impl Written {
    /// The moments a crash can hit, as (durable length, written length):
    /// during each sync (the one before it completed, or nothing did), and
    /// after the last operation.
    fn crash_points(&self) -> Vec<(usize, usize)> {
        let mut points = Vec::new();
        let mut durable = 0;
        for &len in &self.synced_lens {
            points.push((durable, len));
            durable = len;
        }
        points.push((durable, self.log.len()));
        points
    }
}

fn record_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..300,
        3 => 300usize..8_000,
        1 => 8_000usize..100_000,
    ]
}

/// Records, each maybe followed by a sync; maybe sealed at the end.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    (
        prop::collection::vec((record_size(), prop::bool::weighted(0.3)), 1..30),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(records, seal)| {
            let mut ops = Vec::new();
            for (size, sync) in records {
                ops.push(Op::Record(size));
                if sync {
                    ops.push(Op::Sync);
                }
            }
            if seal {
                ops.push(Op::Seal);
            }
            ops
        })
}

fn write(ops: &[Op], seed: usize) -> Written {
    let mut writer = Writer::new(SyncNotingSink::default());
    let mut records = Vec::new();
    for &op in ops {
        match op {
            Op::Record(size) => {
                let record = payload(seed * 64 + records.len(), size, false);
                writer.add_record(&record).unwrap();
                records.push(record);
            }
            Op::Sync => writer.sync().unwrap(),
            Op::Seal => writer.seal().unwrap(),
        }
    }
    let sink = writer.into_inner();
    let layout = layout_of_ops(0, ops);
    assert_eq!(sink.data.len(), layout.end);
    Written {
        synced_len: sink.synced_lens.last().copied().unwrap_or(0),
        synced_lens: sink.synced_lens,
        log: sink.data,
        records,
        layout,
    }
}

/// A small deterministic generator for the crash pattern, from one seed.
struct Bits(u64);

impl Bits {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// Crash (a) with `synced` bytes durable and `written` written: every byte
/// below `synced` kept; past it, each 4 KiB page kept or lost, maybe a torn
/// copy (if `torn_copy`: a log written into a mapping), the file cut between
/// the two lengths, maybe preallocated zeros after it.
fn lose_pages(
    w: &Written,
    (synced, written): (usize, usize),
    seed: u64,
    torn_copy: bool,
) -> Vec<u8> {
    let mut bits = Bits(seed | 1);
    let cut = bits.between(synced, written);
    let mut file = w.log[..cut].to_vec();
    let keep_one_in = bits.between(1, 4) as u64; // how lossy this crash is
    for page_start in (synced / PAGE_SIZE * PAGE_SIZE..cut).step_by(PAGE_SIZE) {
        if !bits.next().is_multiple_of(keep_one_in) {
            let from = page_start.max(synced);
            let to = (page_start + PAGE_SIZE).min(cut);
            file[from..to].fill(0);
        }
    }
    if bits.next().is_multiple_of(2) && cut > synced && torn_copy {
        // A copy that died having stored some bytes and not others.
        let from = bits.between(synced, cut);
        let to = bits.between(from, cut.min(from + 64));
        file[from..to].fill(0);
    }
    if bits.next().is_multiple_of(3) {
        file.resize(cut + bits.between(0, 2 * BLOCK_SIZE), 0);
    }
    file
}

/// The MANIFEST's discipline: every record synced before the next is written.
fn every_record_synced() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(record_size(), 1..12).prop_map(|sizes| {
        sizes
            .into_iter()
            .flat_map(|size| [Op::Record(size), Op::Sync])
            .collect()
    })
}

fn read_all(data: &[u8], mode: RecoveryMode) -> common::ReadOutcome {
    read_all_with(data, mode, TailRule::SyncPoints)
}

/// Crash (c) with `synced` bytes durable and `written` written: the first
/// bytes past `synced` lost (1 to 64 KiB of them, from the seed), the rest
/// kept. If `unit` is given, the loss is rounded up to whole units.
fn lose_first_bytes(
    w: &Written,
    (synced, written): (usize, usize),
    seed: u64,
    unit: Option<usize>,
) -> Vec<u8> {
    let mut file = w.log[..written].to_vec();
    if written > synced {
        let lost = 1 + (seed as usize % (written - synced).min(2 * BLOCK_SIZE));
        let lost_to = unit.map_or(synced + lost, |unit| {
            (synced + lost).next_multiple_of(unit).min(written)
        });
        file[synced..lost_to].fill(0);
    }
    file
}

/// What every crash must give: a prefix of the records, with every one
/// below `synced`, the length durable at the crash.
fn check_crash_recovery(w: &Written, synced: usize, file: &[u8], what: &str) {
    check_crash_recovery_with(w, synced, file, what, TailRule::SyncPoints);
}

/// As [`check_crash_recovery`], reading under `rule`.
fn check_crash_recovery_with(w: &Written, synced: usize, file: &[u8], what: &str, rule: TailRule) {
    let read_all = |file: &[u8], mode| read_all_with(file, mode, rule);
    let outcome = read_all(file, RecoveryMode::default());
    assert!(
        outcome.end.is_ok(),
        "{what}: the default mode refused a crashed log: {:?}",
        outcome.end
    );
    // A prefix of what was written, at the offsets written.
    assert!(outcome.records.len() <= w.records.len(), "{what}");
    for (i, (offset, data)) in outcome.records.iter().enumerate() {
        assert_eq!(
            *offset, w.layout.records[i].start as u64,
            "{what}: record {i}"
        );
        assert_eq!(data, &w.records[i], "{what}: record {i}");
    }
    // Every record below the last completed sync.
    let synced_records = w.layout.records.iter().filter(|r| r.end <= synced).count();
    assert!(
        outcome.records.len() >= synced_records,
        "{what}: {} records read, {synced_records} were synced: {:?}",
        outcome.records.len(),
        outcome.end
    );
    // So also every record before the greatest sync point that survived.
    let survivors = w
        .layout
        .sync_points
        .iter()
        .filter(|sp| sp.end <= file.len() && file[sp.start..sp.end] == w.log[sp.start..sp.end]);
    if let Some(greatest) = survivors.map(|sp| sp.start).max() {
        let before = w
            .layout
            .records
            .iter()
            .filter(|r| r.end <= greatest)
            .count();
        assert!(outcome.records.len() >= before, "{what}");
    }
    // No sync point ever states more than was synced.
    assert!(outcome.synced_len <= synced as u64, "{what}");
    // The other modes: the same records; crash damage is never corruption.
    let pitr = read_all(file, RecoveryMode::PointInTimeRecovery);
    assert_eq!(pitr.records, outcome.records, "{what}");
    assert!(!matches!(pitr.end, Ok(LogEnd::Corruption { .. })), "{what}");
    let absolute = read_all(file, RecoveryMode::AbsoluteConsistency);
    assert_eq!(absolute.records, outcome.records, "{what}");
    assert!(
        matches!(
            absolute.end,
            Ok(LogEnd::Clean { .. }) | Err(Error::TornTail { .. })
        ),
        "{what}: {:?}",
        absolute.end
    );
    let skip = read_all(file, RecoveryMode::SkipAnyCorruptedRecords);
    assert!(skip.records.starts_with(&outcome.records), "{what}");
}

/// What flipping the byte at `pos` of an undamaged log must give in the
/// default mode, exactly: corruption where a sync point states a length past
/// the damaged fragment's start, in a later block or reached from the end
/// the damaged header claims (docs/wal-format.md says when), a torn tail
/// elsewhere, nothing at all in block-tail padding (no checksum covers it).
fn check_flip(w: &Written, pos: usize, mask: u8) {
    let mut file = w.log.clone();
    file[pos] ^= mask;
    let outcome = read_all(&file, RecoveryMode::default());
    let what = format!("flip {mask:#04x} at {pos}");
    let Some((_, fragment)) = w.layout.fragment_containing(pos) else {
        assert_eq!(outcome.records.len(), w.records.len(), "{what}");
        assert_eq!(
            outcome.end,
            Ok(LogEnd::Clean {
                offset: w.log.len() as u64
            }),
            "{what}"
        );
        return;
    };
    let at = fragment.start;
    let (kept, dropped_from) = match fragment.record {
        Some(k) => (k, w.layout.records[k].start),
        None => (w.layout.records_before(at), at),
    };
    let records: Vec<(u64, Vec<u8>)> = (0..kept)
        .map(|i| (w.layout.records[i].start as u64, w.records[i].clone()))
        .collect();
    assert_eq!(outcome.records, records, "{what}");
    if w.layout.proves_with(at, walk_resumes_at(&file, at)) {
        assert!(
            matches!(outcome.end, Err(Error::Corruption { offset, .. }) if offset == at as u64),
            "{what}: proven synced, got {:?}",
            outcome.end
        );
    } else {
        assert!(
            matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. }) if offset == dropped_from as u64),
            "{what}: not proven synced, got {:?}",
            outcome.end
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_crash_that_loses_unsynced_pages_keeps_a_prefix_with_every_synced_record(
        ops in ops(),
        seed in any::<u64>(),
    ) {
        let w = write(&ops, seed as usize % 1000);
        let points = w.crash_points();
        let last = *points.last().unwrap();
        for round in 0..4 {
            // After the last operation, and during a sync picked by the seed.
            let point = if round % 2 == 0 { last } else { points[(seed >> 32) as usize % points.len()] };
            let file = lose_pages(&w, point, seed.wrapping_add(round), true);
            check_crash_recovery(&w, point.0, &file, &format!("pages lost at {point:?}, round {round}"));
            let file = lose_first_bytes(&w, point, seed >> (8 * round), None);
            check_crash_recovery(&w, point.0, &file, &format!("first bytes lost at {point:?}, round {round}"));
        }
    }

    #[test]
    fn a_crash_that_truncates_unsynced_bytes_keeps_a_prefix_with_every_synced_record(
        ops in ops(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 4),
    ) {
        let w = write(&ops, 7);
        for cut in cuts {
            let cut = w.synced_len + cut.index(w.log.len() - w.synced_len + 1);
            check_crash_recovery(&w, w.synced_len, &w.log[..cut], &format!("cut at {cut}"));
        }
    }

    /// Flips anywhere, and flips below the greatest length a sync point
    /// states, where the proof applies unless the sync point sits in the
    /// damage's own block and the damaged header does not show its end.
    #[test]
    fn a_flipped_byte_is_corruption_exactly_where_proven_synced(
        ops in ops(),
        anywhere in prop::collection::vec(any::<prop::sample::Index>(), 4),
        below_stated in prop::collection::vec(any::<prop::sample::Index>(), 4),
        mask in 1u8..=255,
    ) {
        let w = write(&ops, 3);
        for index in anywhere {
            check_flip(&w, index.index(w.log.len()), mask);
        }
        let stated = w.layout.sync_points.iter().map(|sp| sp.stated).max().unwrap_or(0) as usize;
        if stated > 0 {
            for index in below_stated {
                check_flip(&w, index.index(stated), mask);
            }
        }
    }
}

/// What flipping the byte at `pos` of an undamaged log written the
/// MANIFEST's way must give under [`TailRule::EveryRecordSyncedButLast`]:
/// corruption where the damaged fragment lies before the last record's
/// append (the records after it prove that append was synced), unless its
/// length now runs past the end of the file, which reads as the last append
/// cut short (a torn tail); in the last append, the records before it and a
/// torn tail, or corruption where the damage is none a crash leaves;
/// nothing at all in block-tail padding.
fn check_flip_every_record_synced(w: &Written, pos: usize, mask: u8) {
    let mut file = w.log.clone();
    file[pos] ^= mask;
    let what = format!("flip {mask:#04x} at {pos}");
    let outcome = read_all_with(
        &file,
        RecoveryMode::default(),
        TailRule::EveryRecordSyncedButLast,
    );
    let Some((_, fragment)) = w.layout.fragment_containing(pos) else {
        assert_eq!(outcome.records.len(), w.records.len(), "{what}");
        assert!(matches!(outcome.end, Ok(LogEnd::Clean { .. })), "{what}");
        return;
    };
    let at = fragment.start;
    let (kept, dropped_from) = match fragment.record {
        Some(k) => (k, w.layout.records[k].start),
        None => (w.layout.records_before(at), at),
    };
    assert_eq!(outcome.records.len(), kept, "{what}");
    let last_append = w
        .synced_lens
        .len()
        .checked_sub(2)
        .map_or(0, |i| w.synced_lens[i]);
    let corruption =
        matches!(outcome.end, Err(Error::Corruption { offset, .. }) if offset == at as u64);
    if at < last_append && claims_past_the_file(&file, at) {
        assert!(
            matches!(outcome.end, Ok(LogEnd::TornTail { offset, reason: TornReason::TruncatedPayload { .. } }) if offset == dropped_from as u64),
            "{what}: a length past the file, got {:?}",
            outcome.end
        );
    } else if at < last_append {
        assert!(
            corruption,
            "{what}: before the last append, got {:?}",
            outcome.end
        );
    } else {
        let torn = matches!(outcome.end, Ok(LogEnd::TornTail { offset, .. }) if offset == dropped_from as u64);
        assert!(
            torn || corruption,
            "{what}: in the last append, got {:?}",
            outcome.end
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A crash while the MANIFEST syncs its latest edit damages only that
    /// edit's append: under either tail rule a torn tail, never corruption.
    #[test]
    fn every_record_synced_a_crash_damages_only_the_last_append(
        ops in every_record_synced(),
        seed in any::<u64>(),
    ) {
        let w = write(&ops, seed as usize % 1000);
        for (point, round) in w.crash_points().into_iter().zip(0u64..) {
            let file = lose_pages(&w, point, seed.wrapping_add(round), false);
            let what = format!("pages lost at {point:?}");
            check_crash_recovery_with(&w, point.0, &file, &what, TailRule::EveryRecordSyncedButLast);
            // Small losses often: the sync point framed before the record.
            let first = if round % 2 == 0 { seed % 24 } else { seed >> 8 };
            let file = lose_first_bytes(&w, point, first, Some(SECTOR_SIZE));
            let what = format!("first sectors lost at {point:?}");
            check_crash_recovery_with(&w, point.0, &file, &what, TailRule::EveryRecordSyncedButLast);
            let cut = &w.log[..point.0 + (seed as usize % (point.1 - point.0 + 1))];
            let what = format!("cut at {} in {point:?}", cut.len());
            check_crash_recovery_with(&w, point.0, cut, &what, TailRule::EveryRecordSyncedButLast);
        }
    }

    #[test]
    fn every_record_synced_a_flip_before_the_last_append_is_corruption(
        ops in every_record_synced(),
        positions in prop::collection::vec(any::<prop::sample::Index>(), 8),
        mask in 1u8..=255,
    ) {
        let w = write(&ops, 5);
        for index in positions {
            check_flip_every_record_synced(&w, index.index(w.log.len()), mask);
        }
    }
}

/// The corruption half of the contract in its plainest form: a sealed log's
/// every checksummed byte below the seal's stated length is proven synced,
/// so a flip there is corruption, never silently a torn tail.
#[test]
fn in_a_sealed_log_every_flip_below_the_seal_is_corruption() {
    let ops = [
        Op::Record(40_000),
        Op::Sync,
        Op::Record(10),
        Op::Record(0),
        Op::Sync,
        Op::Record(5_000),
        Op::Seal,
    ];
    let w = write(&ops, 11);
    let seal = *w.layout.sync_points.last().unwrap();
    let mut checked = 0;
    for pos in (0..seal.stated as usize).step_by(7) {
        if w.layout.fragment_containing(pos).is_none() {
            continue; // block-tail padding
        }
        let mut file = w.log.clone();
        file[pos] ^= 0x20;
        let outcome = read_all(&file, RecoveryMode::default());
        assert!(
            matches!(outcome.end, Err(Error::Corruption { .. })),
            "flip at {pos}: {:?}",
            outcome.end
        );
        checked += 1;
    }
    assert!(checked > 6_000);
}
