//! The writer after I/O errors: offsets stay at what succeeded, and it stops.

#![allow(clippy::unwrap_used)] // an integration test crate: helpers outside #[test] fns unwrap too

mod common;

use std::io;

use common::read_all;
use strata_wal::{encode_record, LogEnd, RecoveryMode, Sink, TornReason, Writer};

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
    writer.sink_mut().torn_bytes = 20;
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

    // What the file holds reads as the synced record plus a torn tail.
    let file = writer.into_inner().data;
    let outcome = read_all(&file, RecoveryMode::default());
    assert_eq!(outcome.records, vec![(0, b"durable".to_vec())]);
    assert_eq!(
        outcome.end,
        Ok(LogEnd::TornTail {
            offset: end,
            reason: TornReason::TruncatedPayload {
                length: 1000,
                available: 13
            }
        })
    );
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
