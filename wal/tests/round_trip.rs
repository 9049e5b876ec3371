//! Records written by the Writer read back unchanged, wherever they land.

#![allow(clippy::unwrap_used)] // an integration test crate: helpers outside #[test] fns unwrap too

mod common;

use common::{layout, layout_of_ops, payload, read_all, write_log, write_ops, Op, MODES};
use proptest::prelude::*;
use strata_wal::{
    encode_record, encode_seal, encode_sync_point, encoded_end, seal_end, sync_point_end, LogEnd,
    Reader, RecoveryMode, Writer, BLOCK_SIZE, HEADER_SIZE, MAX_FRAGMENT_PAYLOAD, SYNC_POINT_SIZE,
};

/// Sizes that sit on the format's edges, mixed with ordinary ones.
fn record_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..200,
        2 => 200usize..4000,
        1 => Just(0usize),
        1 => Just(1usize),
        1 => Just(MAX_FRAGMENT_PAYLOAD),     // 32761: exactly one block
        1 => Just(BLOCK_SIZE),               // 32768
        1 => (MAX_FRAGMENT_PAYLOAD - 8)..(MAX_FRAGMENT_PAYLOAD + 8),
        1 => (2 * BLOCK_SIZE)..(4 * BLOCK_SIZE), // several blocks
    ]
}

fn records() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec((record_size(), any::<u8>()), 0..12).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (size, seed))| payload(i * 256 + usize::from(seed), size, false))
            .collect()
    })
}

/// Every mode reads `records` back from `log`, at the offsets the model predicts.
fn assert_reads_back(log: &[u8], records: &[Vec<u8>]) {
    let sizes: Vec<usize> = records.iter().map(Vec::len).collect();
    let expected_layout = layout(0, &sizes);
    for mode in MODES {
        let mut reader = Reader::new(log, mode);
        for (record, at) in records.iter().zip(&expected_layout.records) {
            let got = reader.next_record().unwrap().unwrap();
            assert_eq!(got.offset, at.start as u64);
            assert_eq!(got.data, record.as_slice());
        }
        assert_eq!(reader.next_record().unwrap(), None);
        assert_eq!(
            reader.end(),
            Some(&LogEnd::Clean {
                offset: log.len() as u64
            })
        );
        assert!(reader.anomalies().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn writer_to_reader_round_trip(records in records()) {
        let log = write_log(&records);
        let sizes: Vec<usize> = records.iter().map(Vec::len).collect();
        let expected = layout(0, &sizes);
        prop_assert_eq!(log.len(), expected.records.last().map_or(0, |r| r.end));
        assert_reads_back(&log, &records);
    }

    #[test]
    fn encode_record_then_append_framed_matches_add_record(records in records(), split in 0usize..12) {
        let reference = write_log(&records);
        // Frame the first `split` records one by one, then the rest as one batch,
        // as the engine's ring buffer does.
        let split = split.min(records.len());
        let mut writer = Writer::new(Vec::new());
        for record in &records[..split] {
            let mut framed = Vec::new();
            let end = encode_record(&mut framed, writer.offset_written(), record);
            writer.append_framed(&framed, end).unwrap();
        }
        let mut batch = Vec::new();
        let mut end = writer.offset_written();
        for record in &records[split..] {
            let predicted = encoded_end(end, record.len());
            end = encode_record(&mut batch, end, record);
            prop_assert_eq!(end, predicted);
        }
        writer.append_framed(&batch, end).unwrap();
        prop_assert_eq!(writer.offset_written(), reference.len() as u64);
        prop_assert_eq!(writer.into_inner(), reference);
    }

    #[test]
    fn with_offset_continues_a_log(first in records(), second in records()) {
        let mut log = write_log(&first);
        let len = log.len() as u64;
        let mut writer = Writer::with_offset(&mut log, len);
        for record in &second {
            writer.add_record(record).unwrap();
        }
        let all: Vec<Vec<u8>> = first.iter().chain(&second).cloned().collect();
        prop_assert_eq!(&log, &write_log(&all));
        assert_reads_back(&log, &all);
    }

    /// Syncs and seals between the records: sync points everywhere the
    /// model puts them, and the records read back unchanged in every mode.
    #[test]
    fn records_with_syncs_and_seals_round_trip(
        records in records(),
        after in prop::collection::vec(0u8..4, 12),
    ) {
        let mut ops = Vec::new();
        for (record, &then) in records.iter().zip(&after) {
            ops.push(Op::Record(record.len()));
            match then {
                1 => ops.push(Op::Sync),
                2 => ops.push(Op::Seal),
                _ => {}
            }
        }
        let log = write_ops(&ops, &records);
        let model = layout_of_ops(0, &ops);
        prop_assert_eq!(log.len(), model.end);
        let stated = model.sync_points.iter().map(|sp| sp.stated).max();
        for mode in MODES {
            let outcome = read_all(&log, mode);
            let offsets: Vec<u64> = outcome.records.iter().map(|(o, _)| *o).collect();
            let expected: Vec<u64> = model.records.iter().map(|r| r.start as u64).collect();
            prop_assert_eq!(offsets, expected);
            prop_assert!(outcome.records.iter().map(|(_, r)| r).eq(records.iter()));
            prop_assert_eq!(outcome.end, Ok(LogEnd::Clean { offset: log.len() as u64 }));
            prop_assert_eq!(outcome.has_sync_point, stated.is_some());
            prop_assert_eq!(outcome.synced_len, stated.unwrap_or(0));
        }
    }

    #[test]
    fn sync_point_encoding_at_any_offset_matches_its_end(offset in 0u64..(3 * BLOCK_SIZE as u64)) {
        let mut framed = Vec::new();
        let end = encode_sync_point(&mut framed, offset, offset);
        prop_assert_eq!(end, offset + framed.len() as u64);
        prop_assert_eq!(end, sync_point_end(offset));
        let mut sealed = Vec::new();
        let end = encode_seal(&mut sealed, offset, offset);
        prop_assert_eq!(end, offset + sealed.len() as u64);
        prop_assert_eq!(end, seal_end(offset));
        prop_assert_eq!((end as usize - SYNC_POINT_SIZE) % BLOCK_SIZE, 0);
    }

    #[test]
    fn encoding_at_any_offset_matches_the_model(offset in 0u64..(3 * BLOCK_SIZE as u64), size in record_size()) {
        let record = payload(size, size, false);
        let mut framed = Vec::new();
        let end = encode_record(&mut framed, offset, &record);
        prop_assert_eq!(end, offset + framed.len() as u64);
        prop_assert_eq!(end, encoded_end(offset, size));
        let model = layout(offset as usize, &[size]);
        prop_assert_eq!(model.records[0].end as u64, end);
    }
}

/// Every block tail size 0..=7 (and a few more) before records of edge sizes.
#[test]
fn records_landing_at_every_block_tail() {
    for tail in 0..=HEADER_SIZE + 2 {
        for next in [
            0,
            1,
            6,
            7,
            8,
            MAX_FRAGMENT_PAYLOAD,
            BLOCK_SIZE,
            2 * BLOCK_SIZE + 3,
        ] {
            // A first record that ends `tail` bytes before the end of block 0 (tail 0:
            // exactly at the block end), then the record under test, then a small one.
            let filler = BLOCK_SIZE - tail - HEADER_SIZE;
            let records = vec![
                payload(1, filler, false),
                payload(2, next, false),
                payload(3, 5, false),
            ];
            let log = write_log(&records);
            let model = layout(0, &[filler, next, 5]);
            assert_eq!(model.records[0].end, BLOCK_SIZE - tail);
            assert_eq!(log.len(), model.records[2].end, "tail {tail} next {next}");
            if tail < HEADER_SIZE {
                assert!(log[BLOCK_SIZE - tail..BLOCK_SIZE].iter().all(|&b| b == 0));
            }
            assert_reads_back(&log, &records);
            // The file may also end inside the padding: a clean end.
            for cut in BLOCK_SIZE - tail..=BLOCK_SIZE.min(model.records[1].start) {
                let outcome = read_all(&log[..cut], RecoveryMode::AbsoluteConsistency);
                assert_eq!(outcome.records.len(), 1);
                assert_eq!(outcome.end, Ok(LogEnd::Clean { offset: cut as u64 }));
            }
        }
    }
}

/// A writer continuing a log that ends 0..=7 bytes before a block end pads
/// the tail exactly as one writer would have.
#[test]
fn with_offset_continues_at_every_block_tail() {
    for tail in 0..=HEADER_SIZE + 1 {
        let first = vec![payload(1, BLOCK_SIZE - tail - HEADER_SIZE, false)];
        let second = vec![payload(2, 0, false), payload(3, 40_000, false)];
        let mut log = write_log(&first);
        let mut writer = Writer::with_offset(&mut log, (BLOCK_SIZE - tail) as u64);
        for record in &second {
            writer.add_record(record).unwrap();
        }
        let all: Vec<Vec<u8>> = first.iter().chain(&second).cloned().collect();
        assert_eq!(log, write_log(&all), "tail {tail}");
        assert_reads_back(&log, &all);
    }
}

#[test]
fn empty_log_and_empty_records() {
    for mode in MODES {
        assert_eq!(read_all(&[], mode).end, Ok(LogEnd::Clean { offset: 0 }));
    }
    let records = vec![Vec::new(); 5000]; // 5000 × 7 bytes: crosses a block boundary
    let log = write_log(&records);
    assert_reads_back(&log, &records);
}

#[test]
fn fragmented_records_reuse_the_scratch_buffer_and_full_records_borrow_input() {
    let records = vec![payload(1, 3 * BLOCK_SIZE, false), payload(2, 10, false)];
    let log = write_log(&records);
    let mut reader = Reader::new(&log, RecoveryMode::default());
    let big = reader.next_record().unwrap().unwrap();
    assert_eq!(big.data, records[0].as_slice());
    let small = reader.next_record().unwrap().unwrap();
    let input = log.as_ptr_range();
    assert!(
        input.contains(&small.data.as_ptr()),
        "FULL records are borrowed from the input"
    );
}
