//! The writer after I/O errors: offsets stay at what succeeded, and it stops.

#![allow(clippy::unwrap_used)] // an integration test crate: helpers outside #[test] fns unwrap too

mod common;

use std::io;

use common::read_all;
use strata_wal::{
    encode_record, LogEnd, RecoveryMode, Sink, TornReason, Writer, BLOCK_SIZE, SYNC_POINT_SIZE,
};

/// A sink that keeps what it is given, but fails on command: an append fails
/// after writing only `torn_bytes` of its data, as a short write would.
#[derive(Default)]
struct FaultySink {
    data: Vec<u8>,
    fail_append: bool,
    torn_bytes: usize,
    fail_sync: bool,
    appends: usize,
    syncs: usize,
}

impl Sink for FaultySink {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.appends += 1;
        if self.fail_append {
            self.data
                .extend_from_slice(&data[..self.torn_bytes.min(data.len())]);
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.syncs += 1;
        if self.fail_sync {
            return Err(io::Error::other("fsync failed"));
        }
        Ok(())
    }
}

#[test]
fn add_record_uses_one_append_per_record() {
    let mut writer = Writer::new(FaultySink::default());
    writer.add_record(&[1u8; 100_000]).unwrap();
    writer.add_record(b"").unwrap();
    assert_eq!(writer.sink().appends, 2);
    assert_eq!(writer.offset_written(), writer.sink().data.len() as u64);
    assert_eq!(writer.offset_synced(), 0);
    writer.sync().unwrap();
    assert_eq!(writer.offset_synced(), writer.offset_written());
}

#[test]
fn failed_append_leaves_offsets_and_fails_every_later_call() {
    let mut writer = Writer::new(FaultySink::default());
    let end = writer.add_record(b"durable").unwrap();
    writer.sync().unwrap();
    writer.sink_mut().fail_append = true;
    // The append holds the sync point stating `end`, then the record: tear it
    // 20 bytes into the record.
    writer.sink_mut().torn_bytes = SYNC_POINT_SIZE + 20;
    let error = writer.add_record(&[9u8; 1000]).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    assert!(writer.is_failed());
    assert_eq!(
        writer.offset_written(),
        end,
        "a failed append counts no bytes"
    );
    assert_eq!(writer.offset_synced(), end);

    // Even once the sink would work again, the writer refuses: its offset no
    // longer matches the file, which holds a torn record.
    writer.sink_mut().fail_append = false;
    let appends = writer.sink().appends;
    assert_eq!(
        writer.add_record(b"x").unwrap_err().kind(),
        io::ErrorKind::StorageFull
    );
    assert!(writer.sync().is_err());
    assert!(writer.flush().is_err());
    let mut framed = Vec::new();
    let framed_end = encode_record(&mut framed, end, b"y");
    assert!(writer.append_framed(&framed, framed_end).is_err());
    assert_eq!(
        writer.sink().appends,
        appends,
        "the sink is not touched again"
    );

    // What the file holds reads as the synced record, the sync point that
    // states it, and a torn tail.
    let file = writer.into_inner().data;
    let outcome = read_all(&file, RecoveryMode::default());
    assert_eq!(outcome.records, vec![(0, b"durable".to_vec())]);
    assert_eq!(
        outcome.end,
        Ok(LogEnd::TornTail {
            offset: end + SYNC_POINT_SIZE as u64,
            reason: TornReason::TruncatedPayload {
                length: 1000,
                available: 13
            }
        })
    );
    assert_eq!(outcome.synced_len, end);
}

#[test]
fn failed_sync_does_not_advance_offset_synced() {
    let mut writer = Writer::new(FaultySink::default());
    writer.add_record(b"one").unwrap();
    writer.sync().unwrap();
    let synced = writer.offset_synced();
    writer.add_record(b"two").unwrap();
    writer.sink_mut().fail_sync = true;
    assert!(writer.sync().is_err());
    assert_eq!(writer.offset_synced(), synced);
    assert!(writer.offset_written() > synced);
    assert!(writer.is_failed());
    writer.sink_mut().fail_sync = false;
    assert!(writer.sync().is_err(), "no retrying a failed fsync");
    assert_eq!(writer.offset_synced(), synced);
}

#[test]
fn append_framed_with_a_wrong_end_is_refused_and_the_writer_stays_usable() {
    let mut writer = Writer::new(FaultySink::default());
    writer.add_record(b"a").unwrap();
    let mut framed = Vec::new();
    let end = encode_record(&mut framed, writer.offset_written(), b"b");
    let error = writer.append_framed(&framed, end + 1).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert!(!writer.is_failed());
    assert_eq!(writer.sink().appends, 1);
    writer.append_framed(&framed, end).unwrap();
    assert_eq!(writer.offset_written(), end);
    let outcome = read_all(&writer.into_inner().data, RecoveryMode::AbsoluteConsistency);
    assert_eq!(outcome.records.len(), 2);
}

#[test]
fn a_sync_point_rides_in_the_next_records_append() {
    let mut writer = Writer::new(FaultySink::default());
    let first = writer.add_record(b"one").unwrap();
    writer.sync().unwrap();
    assert_eq!(writer.offset_stated(), 0, "stated only once written");
    let second = writer.add_record(b"two").unwrap();
    assert_eq!(
        writer.sink().appends,
        2,
        "one append per record, sync point included"
    );
    assert_eq!(second, first + SYNC_POINT_SIZE as u64 + 7 + 3);
    assert_eq!(writer.offset_stated(), first);
    // No sync since: no second sync point.
    let third = writer.add_record(b"three").unwrap();
    assert_eq!(third, second + 7 + 5);
    let outcome = read_all(&writer.into_inner().data, RecoveryMode::AbsoluteConsistency);
    let records: Vec<&[u8]> = outcome.records.iter().map(|(_, r)| r.as_slice()).collect();
    assert_eq!(records, [&b"one"[..], b"two", b"three"]);
    assert_eq!(outcome.synced_len, first);
}

#[test]
fn a_failed_append_does_not_count_its_sync_point_as_stated() {
    let mut writer = Writer::new(FaultySink::default());
    let end = writer.add_record(b"durable").unwrap();
    writer.sync().unwrap();
    writer.sink_mut().fail_append = true;
    assert!(writer.add_record(b"lost").is_err());
    assert_eq!(writer.offset_stated(), 0);
    assert_eq!(writer.offset_synced(), end);
}

#[test]
fn seal_syncs_before_and_after_the_sync_point_and_only_once() {
    let mut writer = Writer::new(FaultySink::default());
    let end = writer.add_record(b"last").unwrap();
    writer.seal().unwrap();
    assert_eq!(writer.sink().syncs, 2, "the records, then the seal");
    assert_eq!(writer.offset_stated(), end);
    let sealed_len = writer.offset_written();
    assert_eq!(sealed_len, (BLOCK_SIZE + SYNC_POINT_SIZE) as u64);
    assert_eq!(writer.offset_synced(), sealed_len);
    writer.seal().unwrap();
    assert_eq!(writer.offset_written(), sealed_len, "nothing new to seal");
    assert_eq!(writer.sink().syncs, 2);
    let outcome = read_all(&writer.into_inner().data, RecoveryMode::AbsoluteConsistency);
    assert_eq!(outcome.records, vec![(0, b"last".to_vec())]);
    assert_eq!(outcome.synced_len, end);
}

#[test]
fn seal_after_a_failed_first_sync_appends_nothing() {
    let mut writer = Writer::new(FaultySink::default());
    writer.add_record(b"x").unwrap();
    writer.sink_mut().fail_sync = true;
    assert!(writer.seal().is_err());
    assert_eq!(writer.sink().appends, 1, "no seal states an unsynced log");
    assert_eq!(writer.offset_stated(), 0);
}

#[test]
fn a_continued_log_states_only_what_this_writer_synced() {
    let mut old = Writer::new(Vec::new());
    old.add_record(b"from before").unwrap();
    let before = old.offset_written();
    let mut writer = Writer::with_offset(old.into_inner(), before);
    assert_eq!(writer.offset_stated(), before);
    // Its first record states nothing: the earlier bytes may be in the page cache only.
    let after = writer.add_record(b"a").unwrap();
    assert_eq!(after, before + 7 + 1);
    writer.sync().unwrap();
    writer.add_record(b"b").unwrap();
    assert_eq!(writer.offset_stated(), after);
    let outcome = read_all(&writer.into_inner(), RecoveryMode::AbsoluteConsistency);
    assert_eq!(outcome.records.len(), 3);
    assert_eq!(outcome.synced_len, after);
}
