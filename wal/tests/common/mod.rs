//! Shared by the integration tests: an independent model of where the
//! encoder puts fragments, and helpers to read a whole log.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used)] // test helpers, not library code

use strata_wal::{
    Anomaly, Error, LogEnd, Reader, RecoveryMode, TailRule, Writer, BLOCK_SIZE, HEADER_SIZE,
};

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
    /// The record it is part of; `None` for a sync point (or its filler).
    pub record: Option<usize>,
}

/// Where one record lies: from its first header (after any padding) to its end.
#[derive(Clone, Copy, Debug)]
pub struct RecordAt {
    pub start: usize,
    pub end: usize,
}

/// A sync point fragment that states a synced length.
#[derive(Clone, Copy, Debug)]
pub struct SyncPointAt {
    pub start: usize,
    pub end: usize,
    pub stated: u64,
}

#[derive(Debug, Default)]
pub struct Layout {
    pub records: Vec<RecordAt>,
    pub fragments: Vec<FragmentAt>,
    pub sync_points: Vec<SyncPointAt>,
    /// Where the log ends.
    pub end: usize,
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

    /// Whether the sync points prove that the bytes at `pos` were synced
    /// when no walk resumes in `pos`'s own block: one in a later block than
    /// `pos` states a length greater than `pos`.
    pub fn proves(&self, pos: usize) -> bool {
        self.proves_with(pos, None)
    }

    /// Whether the sync points prove the fragment at `at` synced, as
    /// docs/wal-format.md defines it, when the walk also resumes at `resume`
    /// (see [`walk_resumes_at`]): a sync point in a later block, or reached
    /// from `resume` in `at`'s block, states a length greater than `at`.
    /// Only the damaged fragment is damaged, so a walk from a fragment
    /// start reaches every later fragment of its block; a walk from inside
    /// a payload finds nothing (the payloads are not framed log bytes).
    pub fn proves_with(&self, at: usize, resume: Option<usize>) -> bool {
        self.sync_points
            .iter()
            .any(|sp| self.reached(at, resume, sp.start) && sp.stated > at as u64)
    }

    /// Whether the proof walk after damage at `at` reaches a fragment at `start`.
    pub fn reached(&self, at: usize, resume: Option<usize>, start: usize) -> bool {
        let block = |pos: usize| pos / BLOCK_SIZE;
        let from_resume = resume.is_some_and(|resume| {
            block(resume) == block(at)
                && start >= resume
                && block(start) == block(at)
                && self.fragments.iter().any(|f| f.start == resume)
        });
        block(start) > block(at) || from_resume
    }

    /// The number of records that start before `pos`.
    pub fn records_before(&self, pos: usize) -> usize {
        self.records.partition_point(|r| r.start < pos)
    }
}

/// Where the proof walk resumes after damage to the fragment at `at` of
/// `file` (the damaged bytes), by docs/wal-format.md: the end the header
/// claims, if its type byte is one a writer writes, both its length bytes
/// are nonzero, and the claimed fragment fits its block and the file.
pub fn walk_resumes_at(file: &[u8], at: usize) -> Option<usize> {
    let header = file.get(at..at + HEADER_SIZE)?;
    let known_type = matches!(header[6], 1..=4 | 144);
    let length = usize::from(u16::from_le_bytes([header[4], header[5]]));
    let end = at + HEADER_SIZE + length;
    let fits = end <= (at / BLOCK_SIZE + 1) * BLOCK_SIZE && end <= file.len();
    (known_type && header[4] != 0 && header[5] != 0 && fits).then_some(end)
}

/// Whether the fragment at `at` of `file` (the damaged bytes) is a record's
/// FULL or LAST fragment whose length runs past the end of the file but not
/// past its block: exactly what the log's last append cut short by a crash
/// reads as, its payload (the user's bytes) holding whatever follows. Under
/// `TailRule::EveryRecordSyncedButLast` that is a torn tail wherever it lies
/// (docs/wal-format.md).
pub fn claims_past_the_file(file: &[u8], at: usize) -> bool {
    let Some(header) = file.get(at..at + HEADER_SIZE) else {
        return false;
    };
    let end = at + HEADER_SIZE + usize::from(u16::from_le_bytes([header[4], header[5]]));
    matches!(header[6], 1 | 4) && end > file.len() && end <= (at / BLOCK_SIZE + 1) * BLOCK_SIZE
}

/// What a [`Writer`] is asked to do, for the layout model.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Record(usize),
    Sync,
    Seal,
}

/// The layout the format prescribes for records of `sizes` written from `start`,
/// computed from the rules in docs/wal-format.md, not from the encoder.
pub fn layout(start: usize, sizes: &[usize]) -> Layout {
    let ops: Vec<Op> = sizes.iter().map(|&size| Op::Record(size)).collect();
    layout_of_ops(start, &ops)
}

/// The layout a [`Writer`] continuing a log of `start` bytes produces for
/// `ops`, computed from the rules in docs/wal-format.md (a sync point before
/// the first record after a sync; a seal at a block start), not from the encoder.
pub fn layout_of_ops(start: usize, ops: &[Op]) -> Layout {
    let mut out = Layout::default();
    let mut pos = start;
    let mut synced = start;
    let mut stated = start;
    let mut sealed = false;
    for &op in ops {
        match op {
            Op::Sync => synced = pos,
            Op::Seal if sealed && synced == pos => {}
            Op::Seal => {
                synced = pos;
                if !pos.is_multiple_of(BLOCK_SIZE) {
                    let room = BLOCK_SIZE - pos % BLOCK_SIZE;
                    if room >= HEADER_SIZE {
                        model_sync_point(&mut out, pos, pos + room, synced);
                    }
                    pos += room;
                }
                model_sync_point(&mut out, pos, pos + 15, synced);
                pos += 15;
                stated = synced;
                synced = pos;
                sealed = true;
            }
            Op::Record(size) => {
                sealed = false;
                if synced > stated {
                    let room = BLOCK_SIZE - pos % BLOCK_SIZE;
                    if room < HEADER_SIZE {
                        pos += room;
                    } else if room < 15 {
                        model_sync_point(&mut out, pos, pos + room, synced);
                        pos += room;
                    }
                    model_sync_point(&mut out, pos, pos + 15, synced);
                    pos += 15;
                    stated = synced;
                }
                pos = model_record(&mut out, pos, size);
            }
        }
    }
    out.end = pos;
    out
}

/// A sync point fragment over `start..end`; it states `synced` if its
/// payload has the 8 bytes for it.
fn model_sync_point(out: &mut Layout, start: usize, end: usize, synced: usize) {
    out.fragments.push(FragmentAt {
        start,
        end,
        record: None,
    });
    if end - start >= HEADER_SIZE + 8 {
        out.sync_points.push(SyncPointAt {
            start,
            end,
            stated: synced as u64,
        });
    }
}

fn model_record(out: &mut Layout, mut pos: usize, size: usize) -> usize {
    let record = out.records.len();
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
            record: Some(record),
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
    pos
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

/// Writes a fresh log with a [`Writer`]: `Op::Record(i)` appends
/// `records[i]` (the ops' sizes are ignored), `Op::Sync` syncs, `Op::Seal` seals.
pub fn write_ops(ops: &[Op], records: &[Vec<u8>]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new());
    let mut next = 0;
    for &op in ops {
        match op {
            Op::Record(_) => {
                writer.add_record(&records[next]).unwrap();
                next += 1;
            }
            Op::Sync => writer.sync().unwrap(),
            Op::Seal => writer.seal().unwrap(),
        }
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
    /// `Reader::synced_len` and `Reader::has_sync_point` once reading ended.
    pub synced_len: u64,
    pub has_sync_point: bool,
}

pub fn read_all(data: &[u8], mode: RecoveryMode) -> ReadOutcome {
    read_all_with(data, mode, TailRule::SyncPoints)
}

pub fn read_all_with(data: &[u8], mode: RecoveryMode, rule: TailRule) -> ReadOutcome {
    let mut reader = Reader::with_tail_rule(data, mode, rule);
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
        synced_len: reader.synced_len(),
        has_sync_point: reader.has_sync_point(),
    }
}
