//! [`UpdatesSince`]: the batches from a sequence number on, read from the
//! synced prefix of the WALs, and [`ChangeBatch`], one of them decoded.

use super::state::{FeedState, Ingestion};
use crate::batch::DecodedBatch;
use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::filename::wal_path;
use crate::options::WalRecoveryMode;
use crate::wal_replay::read_wal_chain_with;
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use strata_sstable::{SeqNo, ValueKind};

/// Batch bytes one read of the WALs collects before it hands them out:
/// bounds the iterator's memory, whatever the WALs hold.
const READ_CHUNK_BYTES: usize = 4 << 20;

/// One committed write batch, as logged: its first sequence number and its
/// records (record `i` has sequence number `sequence() + i`).
#[derive(Clone)]
pub struct ChangeBatch {
    data: Bytes,
    names: Arc<BTreeMap<u32, String>>,
}

impl std::fmt::Debug for ChangeBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeBatch")
            .field("sequence", &self.sequence())
            .field("count", &self.len())
            .finish()
    }
}

/// What a record of a [`ChangeBatch`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind<'a> {
    /// `key` = the value.
    Put(&'a [u8]),
    /// `key` = the value, expiring at the time (microseconds since the
    /// Unix epoch, the database clock's): docs/design/ttl.md.
    PutWithExpiry {
        /// The value.
        value: &'a [u8],
        /// When it expires.
        expiry_micros: u64,
    },
    /// `key` deleted.
    Delete,
    /// A merge operand for `key`.
    Merge(&'a [u8]),
    /// Every key from `key` (included) to the end (excluded; `None`: no end) deleted.
    DeleteRange {
        /// The end, excluded.
        end: Option<&'a [u8]>,
    },
}

/// One record of a [`ChangeBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeRecord<'a> {
    /// Its sequence number.
    pub sequence: SeqNo,
    /// The keyspace's id.
    pub keyspace_id: u32,
    /// The keyspace's name, `None` if it was dropped before the batch was
    /// read.
    pub keyspace: Option<&'a str>,
    /// The key (a range delete's start).
    pub key: &'a [u8],
    /// What the record does.
    pub kind: ChangeKind<'a>,
}

impl ChangeBatch {
    /// The first record's sequence number.
    pub fn sequence(&self) -> SeqNo {
        header(&self.data).0
    }

    /// The last record's sequence number: a consumer that applied this
    /// batch acknowledges it ([`ChangeFeed::ack`](crate::ChangeFeed::ack)).
    pub fn last_sequence(&self) -> SeqNo {
        let (seq, count) = header(&self.data);
        seq + u64::from(count).saturating_sub(1)
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        header(&self.data).1 as usize
    }

    /// Whether it holds no record (never true of a batch the feed yields).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch's encoding, as in the WAL (docs/wal-format.md).
    pub fn encoded(&self) -> &[u8] {
        &self.data
    }

    /// The records, in order. The batch was checked when it was read, so
    /// an `Err` here means the bytes changed in memory.
    pub fn records(&self) -> impl Iterator<Item = Result<ChangeRecord<'_>>> + '_ {
        let first = self.sequence();
        let decoded = DecodedBatch::new(&self.data).ok();
        decoded
            .into_iter()
            .flat_map(|d| d.iter())
            .zip(first..)
            .map(move |(op, sequence)| {
                let op = op.map_err(|e| {
                    Error::InvalidArgument(format!(
                        "change batch at sequence {first}: damaged at byte {}: {}",
                        e.offset, e.reason
                    ))
                })?;
                let kind = match op.kind {
                    ValueKind::Put => ChangeKind::Put(op.value),
                    // `BatchIter` refuses it: batches hold no blob references.
                    ValueKind::BlobIndex => {
                        return Err(Error::InvalidArgument(format!(
                            "change batch at sequence {first}: a blob reference"
                        )))
                    }
                    ValueKind::Delete => ChangeKind::Delete,
                    ValueKind::Merge => ChangeKind::Merge(op.value),
                    ValueKind::RangeDelete => ChangeKind::DeleteRange {
                        end: op.range_end(),
                    },
                    ValueKind::PutWithExpiry => match crate::ttl::split_expiring(op.value) {
                        Some((expiry_micros, value)) => ChangeKind::PutWithExpiry {
                            value,
                            expiry_micros,
                        },
                        None => {
                            return Err(Error::InvalidArgument(format!(
                                "change batch at sequence {first}: an expiring value shorter than its expiry"
                            )))
                        }
                    },
                };
                Ok(ChangeRecord {
                    sequence,
                    keyspace_id: op.keyspace,
                    keyspace: self.names.get(&op.keyspace).map(String::as_str),
                    key: op.key,
                    kind,
                })
            })
    }
}

fn header(data: &[u8]) -> (SeqNo, u32) {
    match DecodedBatch::new(data) {
        Ok(d) => (d.sequence(), d.count()),
        Err(_) => (0, 0),
    }
}

/// The committed write batches from a sequence number on, in order,
/// across WAL rotations and reopens: from [`Db::updates_since`](crate::Db::updates_since)
/// or a [`ChangeFeed`](crate::ChangeFeed). It yields only batches whose
/// WAL bytes are synced (docs/design/change-feed.md); at the end of what
/// is synced it returns `None`, and a later `next` looks again, so one
/// iterator can follow the database. Writes with `disable_wal` are never
/// in it. If the WALs it needs are deleted meanwhile, it yields
/// [`Error::ChangeFeedGap`] and stops; so it does on reaching the
/// sequence numbers an ingestion took ([`Db::ingest`](crate::Db::ingest):
/// its tables are in no WAL), after every batch before them, with
/// `from..=to` those numbers: a consumer that applied the ingestion
/// another way reads on with `updates_since(to + 1)`.
pub struct UpdatesSince {
    db: Arc<DbInner>,
    /// The first sequence number not yet yielded.
    next_seq: SeqNo,
    /// The WAL the next read starts from (the one the last batch came from).
    resume_wal: u64,
    ready: VecDeque<ChangeBatch>,
    /// An ingestion's numbers, reached: reported after `ready`.
    gap: Option<(SeqNo, SeqNo)>,
    failed: bool,
}

impl std::fmt::Debug for UpdatesSince {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdatesSince")
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl UpdatesSince {
    pub(crate) fn new(db: Arc<DbInner>, next_seq: SeqNo) -> Self {
        UpdatesSince {
            db,
            next_seq,
            resume_wal: 0,
            ready: VecDeque::new(),
            gap: None,
            failed: false,
        }
    }

    /// The first sequence number the iterator has not yielded yet.
    pub fn next_sequence(&self) -> SeqNo {
        self.next_seq
    }

    fn refill(&mut self) -> Result<()> {
        // A WAL deleted between the listing and its read: look again (the
        // floor then says whether it held anything still wanted).
        let mut attempts = 0;
        loop {
            match self.read_chunk() {
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && attempts < 3 =>
                {
                    attempts += 1;
                }
                r => return r,
            }
        }
    }

    /// Read what is synced from `next_seq` on, up to a chunk's worth or
    /// up to an ingestion's numbers (then noting its gap, to report).
    fn read_chunk(&mut self) -> Result<()> {
        match self.read_pass(None)? {
            None => Ok(()),
            // An ingestion syncs the WAL before it notes its numbers, and
            // notes how far (`Feed::synced_before`): a plan made after a
            // state that holds the note, and reaching that far, covers
            // every batch logged below them: read again; what is still
            // missing below them was never logged (`disable_wal`).
            // Without this the gap would wait for a later batch.
            Some(unreached) => self.read_pass(Some(unreached)).map(drop),
        }
    }

    /// One read of the WALs' synced bytes; returns the ingestion the read
    /// did not reach (batches below it may be synced after this pass's
    /// plan). `known`: an ingestion the state held before this pass's
    /// plan was made, so the plan covers every batch logged below it.
    fn read_pass(&mut self, known: Option<Ingestion>) -> Result<Option<Ingestion>> {
        let db = Arc::clone(&self.db);
        let (floor, state) = db.feed.floor_and_epochs();
        if self.next_seq < floor {
            return Err(Error::ChangeFeedGap {
                from: self.next_seq,
                to: floor - 1,
            });
        }
        let _ = db.hook(crate::hook::HookPoint::FeedReadStarted);
        // What the known ingestion synced before it took its numbers: the
        // write path's account of a WAL it retired errs towards "nothing
        // synced", which would hide batches below the ingestion.
        let mark = known.and_then(|i| db.feed.synced_before(i.first));
        // The WALs from `resume_wal` on, up to the last one with synced
        // bytes, with how much of each is synced (`None`: all).
        let mut plan: Vec<(u64, Option<u64>)> = Vec::new();
        for n in super::list_wals(&*db.fs, &db.dir)? {
            if n < self.resume_wal || n < state.first_wal {
                continue;
            }
            let durable = match (db.write_path.wal_durable_len(n), mark) {
                // WALs are synced in order: all of an earlier one.
                (_, Some((wal, _))) if n < wal => None,
                (Some(len), Some((wal, synced))) if n == wal => Some(len.max(synced)),
                (durable, _) => durable,
            };
            match durable {
                Some(0) => break,
                durable => {
                    plan.push((n, durable));
                    if durable.is_some() {
                        break;
                    }
                }
            }
        }
        // The state again, read after the plan: every batch in the plan
        // was synced before this, and an ingestion numbered before a
        // batch noted its numbers before that batch was numbered (it
        // leads the writers meanwhile), so this state knows every
        // ingestion below the plan's batches. The state read before the
        // plan may not: a reader that missed one would yield the batch
        // after it with no gap (the crash test's replica saw it).
        let (_, state) = db.feed.floor_and_epochs();
        let names: Arc<BTreeMap<u32, String>> = Arc::new(
            db.all_keyspaces()
                .iter()
                .map(|ks| (ks.id, ks.name.clone()))
                .collect(),
        );
        // Each run of WALs between two opens' recovery points is one
        // chain: an open starts a WAL that continues none.
        let mut segments: Vec<Vec<u64>> = Vec::new();
        let mut last_open = None;
        for &(n, _) in &plan {
            // Which open started the run of WALs `n` is in.
            let open = state.epochs.iter().filter(|e| e.first_wal <= n).count();
            if last_open != Some(open) {
                segments.push(Vec::new());
                last_open = Some(open);
            }
            if let Some(s) = segments.last_mut() {
                s.push(n);
            }
        }
        let durable: BTreeMap<u64, Option<u64>> = plan.iter().copied().collect();
        let load = |n: u64| -> Result<Bytes> {
            let path = wal_path(&db.dir, n);
            let data = db.fs.read(&path).map_err(|e| Error::io("read", &path, e))?;
            Ok(match durable.get(&n).copied().flatten() {
                Some(len) => data.slice(..(len as usize).min(data.len())),
                None => data,
            })
        };
        // The first ingestion not yet passed: the batches after it wait
        // until its gap is reported. Every batch before it is synced (an
        // ingestion syncs the WAL before noting its numbers), so it is
        // reached once this read has yielded what is before it.
        let ingestion = state
            .ingestions
            .iter()
            .filter(|i| i.last >= self.next_seq)
            .min_by_key(|i| i.first)
            .copied();
        let mut passed_ingestion = false;
        let mode = db.options.wal_recovery_mode;
        let mut chunk_full = false;
        let mut bytes = 0usize;
        for segment in &segments {
            let Some(&first) = segment.first() else {
                continue;
            };
            let cap = cap_of(&state, first);
            // A run of WALs an open already recovered ends where that
            // open said (its recovery point caps it): a torn tail past
            // it is that crash's, which the open tolerated (after an
            // `AbsoluteConsistency` refusal, in the default mode).
            let mode = match mode {
                WalRecoveryMode::AbsoluteConsistency if cap != SeqNo::MAX => {
                    WalRecoveryMode::TolerateCorruptedTailRecords
                }
                mode => mode,
            };
            let next_seq = &mut self.next_seq;
            let resume_wal = &mut self.resume_wal;
            let ready = &mut self.ready;
            let read = read_wal_chain_with(
                &*db.fs,
                &db.dir,
                &super::state::state_path(&db.dir),
                first,
                segment,
                mode,
                &load,
                &mut |wal, _offset, data| {
                    let Ok(batch) = DecodedBatch::new(data) else {
                        return Ok(Err("record shorter than a batch header".to_owned()));
                    };
                    let (first_seq, count) = (batch.sequence(), u64::from(batch.count()));
                    if count == 0 || first_seq > cap {
                        // Empty, or a write the crash before the next
                        // open lost (that open reused its numbers).
                        return Ok(Ok(()));
                    }
                    let last = first_seq + count - 1;
                    if last < *next_seq {
                        return Ok(Ok(()));
                    }
                    if ingestion.is_some_and(|i| first_seq > i.last) {
                        passed_ingestion = true;
                        return Err(Error::Closed); // stops the read; see below
                    }
                    if let Some(Err(e)) = batch.iter().find(|op| op.is_err()) {
                        return Ok(Err(format!(
                            "bad write batch at byte {}: {}",
                            e.offset, e.reason
                        )));
                    }
                    ready.push_back(ChangeBatch {
                        data: Bytes::copy_from_slice(data),
                        names: Arc::clone(&names),
                    });
                    *next_seq = last + 1;
                    *resume_wal = wal;
                    bytes += data.len();
                    if bytes >= READ_CHUNK_BYTES {
                        chunk_full = true;
                        return Err(Error::Closed); // stops the read; see below
                    }
                    Ok(Ok(()))
                },
            );
            match read {
                Ok(()) => {}
                // The stops the callback asked for, not failures.
                Err(Error::Closed) if chunk_full => return Ok(None),
                Err(Error::Closed) if passed_ingestion => break,
                Err(e) => return Err(e),
            }
        }
        if let Some(&(last, _)) = plan.last() {
            self.resume_wal = self.resume_wal.max(plan.first().map_or(last, |p| p.0));
        }
        // The gap is reported once this reader stands at it: everything
        // before the ingestion yielded, or a later batch seen (past a
        // hole no WAL record fills), or a plan made after the ingestion's
        // note covered what it synced before taking its numbers (what is
        // left below them was never logged). Reported early, a consumer
        // going on past it would never see the batches before it that
        // this read did not reach.
        if let Some(i) = ingestion {
            let covered = known == Some(i) && mark.is_some();
            if passed_ingestion || self.next_seq >= i.first || covered {
                self.gap = Some((i.first.max(self.next_seq), i.last));
            } else {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

/// The cap of the segment starting at WAL `first` (every WAL in a segment
/// has the same).
fn cap_of(state: &FeedState, first: u64) -> SeqNo {
    state.cap_for(first)
}

impl Iterator for UpdatesSince {
    type Item = Result<ChangeBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.ready.is_empty() && self.gap.is_none() {
            if let Err(e) = self.refill() {
                self.failed = true;
                return Some(Err(e));
            }
        }
        if let Some(batch) = self.ready.pop_front() {
            return Some(Ok(batch));
        }
        let (from, to) = self.gap.take()?;
        self.failed = true;
        Some(Err(Error::ChangeFeedGap { from, to }))
    }
}
