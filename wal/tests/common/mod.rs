//! Shared by the integration tests: an independent model of where the
//! encoder puts fragments, and helpers to read a whole log.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used)] // test helpers, not library code

use strata_wal::{Anomaly, Error, LogEnd, Reader, RecoveryMode, Writer, BLOCK_SIZE, HEADER_SIZE};

pub const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTailRecords,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTimeRecovery,
    RecoveryMode::SkipAnyCorruptedRecords,
];

/// Where one fragment lies in the file.
#[derive(Clone, Copy, Debug)]
pub struct FragmentAt {
    pub start: usize,
    pub end: usize,
    pub record: usize,
}

/// Where one record lies: from its first header (after any padding) to its end.
#[derive(Clone, Copy, Debug)]
pub struct RecordAt {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Default)]
pub struct Layout {
    pub records: Vec<RecordAt>,
    pub fragments: Vec<FragmentAt>,
}

impl Layout {
    /// The fragment whose bytes include `pos`; `None` for block-tail padding.
    pub fn fragment_containing(&self, pos: usize) -> Option<(usize, FragmentAt)> {
        let index = self.fragments.partition_point(|f| f.end <= pos);
        self.fragments
            .get(index)
            .filter(|f| f.start <= pos)
            .map(|f| (index, *f))
    }
}

/// The layout the format prescribes for records of `sizes` written from `start`,
/// computed from the rules in docs/wal-format.md, not from the encoder.
pub fn layout(start: usize, sizes: &[usize]) -> Layout {
    let mut out = Layout::default();
    let mut pos = start;
    for (record, &size) in sizes.iter().enumerate() {
        let mut rest = size;
        let mut record_start = None;
        loop {
            let room = BLOCK_SIZE - pos % BLOCK_SIZE;
            if room < HEADER_SIZE {
                pos += room;
                continue;
            }
            let take = rest.min(room - HEADER_SIZE);
            record_start.get_or_insert(pos);
            out.fragments.push(FragmentAt {
                start: pos,
                end: pos + HEADER_SIZE + take,
                record,
            });
            pos += HEADER_SIZE + take;
            rest -= take;
            if rest == 0 {
                break;
            }
        }
        out.records.push(RecordAt {
            start: record_start.unwrap(),
            end: pos,
        });
    }
    out
}

/// A deterministic payload; `text` keeps bytes in a-z (no byte looks like a
/// fragment type, so damage scans stay short), otherwise bytes are arbitrary.
pub fn payload(seed: usize, len: usize, text: bool) -> Vec<u8> {
    let mut state = (seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if text {
                b'a' + (state % 26) as u8
            } else {
                (state >> 24) as u8
            }
        })
        .collect()
}

/// Writes `records` to a fresh log.
pub fn write_log(records: &[Vec<u8>]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new());
    for record in records {
        writer.add_record(record).unwrap();
    }
    writer.into_inner()
}

/// Everything a reader said about a log.
#[derive(Debug, PartialEq)]
pub struct ReadOutcome {
    pub records: Vec<(u64, Vec<u8>)>,
    /// `Ok(end)` when reading finished with `Ok(None)`, else the error.
    pub end: Result<LogEnd, Error>,
    pub anomalies: Vec<Anomaly>,
}

pub fn read_all(data: &[u8], mode: RecoveryMode) -> ReadOutcome {
    let mut reader = Reader::new(data, mode);
    let mut records = Vec::new();
    let end = loop {
        match reader.next_record() {
            Ok(Some(record)) => records.push((record.offset, record.data.to_vec())),
            Ok(None) => break Ok(*reader.end().unwrap()),
            Err(error) => {
                assert!(reader.end().is_none());
                // The reader is fused on its error.
                assert_eq!(reader.next_record().unwrap_err(), error);
                break Err(error);
            }
        }
    };
    assert!(reader.next_record().map(|r| r.is_none()).unwrap_or(true));
    ReadOutcome {
        records,
        end,
        anomalies: reader.anomalies().to_vec(),
    }
}
