//! Reads a whole log held in memory, record by record, under a [`RecoveryMode`].

use crate::error::{CorruptionReason, Error, TornReason};
use crate::format::RecordType;
use crate::fragment::{parse_at, Parsed};
use crate::last_append::crash_can_leave;
use crate::proof::{sync_points_after, trusted_end, Found};
use crate::recovery::{Anomaly, LogEnd, RecoveryMode, TailRule};
use crate::scan::ForwardScan;
use crate::sync_point::stated_synced_len;
use crate::zeroed::is_zeroed;

/// One record read from a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'r> {
    /// File offset of the record's first fragment header.
    pub offset: u64,
    /// The payload: borrowed from the input for a FULL record, from the
    /// reader's reused scratch buffer for a record assembled from fragments.
    pub data: &'r [u8],
}

/// Reads a log held in memory (the engine reads WAL and MANIFEST files into
/// memory or a mapping). Sync points are read, never returned as records.
///
/// # Torn tail or corruption
/// After a crash a log can hold any pattern of lost bytes past the length
/// last synced: the process died inside a copy (which may store later bytes
/// first), or a power loss kept an arbitrary subset of the unsynced pages.
/// Only bytes that were durably synced must read back intact. So an anomaly
/// at offset `X` (a damaged fragment, an orphan MIDDLE/LAST, an unfinished
/// record, a truncated header or payload) is **corruption** if the log
/// proves the bytes at `X` were synced: a sync point (see
/// [`encode_sync_point`](crate::encode_sync_point)) states a synced length
/// greater than `X`. Otherwise it is a **torn tail**, the normal end after a
/// crash: reading ends at `X`, or at the start of the record being assembled.
/// Zeroed space to the end of the file is a torn tail reported as
/// [`TornReason::ZeroedTail`]; the file ending inside block-tail padding is a
/// clean end. Padding bytes are not checked (no checksum covers them), as in LevelDB.
///
/// Sync points before `X` state lengths at most their own offset, so the
/// proof comes from sync points after `X`, found by walking fragments from
/// each block start after `X` and from the end of the damaged fragment when
/// its header shows that end beyond doubt (never by trying every byte,
/// which would let a record's payload pose as a sync point). Hence a lag:
/// damage is proven only by a sync point written after a later sync, in a
/// later block or (for a fragment of 256 bytes or more) later in its own
/// block. A sync point stating more bytes than precede it cannot come from
/// a correct writer and is corruption. That is the default [`TailRule`];
/// a log whose writer synced every record before writing the next (the
/// MANIFEST) is read with [`TailRule::EveryRecordSyncedButLast`], which
/// calls corruption whatever no crash can leave, without waiting for proof.
///
/// What happens next depends on the [`RecoveryMode`]; see [`Reader::next_record`].
///
/// ```
/// use strata_wal::{LogEnd, Reader, RecoveryMode, TornReason, Writer};
///
/// let mut writer = Writer::new(Vec::new());
/// writer.add_record(b"kept").unwrap();
/// writer.add_record(&[7u8; 100]).unwrap();
/// let mut log = writer.into_inner();
/// log.truncate(log.len() - 10); // a crash tore the second record
///
/// let mut reader = Reader::new(&log, RecoveryMode::TolerateCorruptedTailRecords);
/// assert_eq!(reader.next_record().unwrap().unwrap().data, b"kept");
/// assert_eq!(reader.next_record().unwrap(), None);
/// assert!(matches!(
///     reader.end(),
///     Some(LogEnd::TornTail { offset: 11, reason: TornReason::TruncatedPayload { .. } })
/// ));
/// ```
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    mode: RecoveryMode,
    tail_rule: TailRule,
    /// Where the next fragment header is expected.
    pos: usize,
    /// Offset of the FIRST fragment of the record being assembled in `scratch`.
    partial: Option<usize>,
    /// Reused for every fragmented record; never larger than the input.
    scratch: Vec<u8>,
    /// Skip mode only: the damaged region being skipped, closed at the next
    /// fragment that starts a record.
    skipping: Option<SkippedRegion>,
    scan: ForwardScan,
    state: State,
    anomalies: Vec<Anomaly>,
    /// Offset of the last record returned, to assert offsets increase.
    last_record: Option<u64>,
    /// Sync points read before the first anomaly, then those found after it.
    sync_points: Found,
    /// Whether the first anomaly was met (and the sync points after it searched).
    searched: bool,
}

#[derive(Debug)]
enum State {
    Reading,
    Ended(LogEnd),
    /// The error is returned again by every later call.
    Failed(Error),
}

#[derive(Debug)]
struct SkippedRegion {
    start: usize,
    detected_at: usize,
    reason: CorruptionReason,
}

/// What one step of reading produced.
enum Step<'a> {
    Full {
        offset: usize,
        data: &'a [u8],
    },
    /// A fragmented record, now whole in `scratch`.
    Assembled {
        offset: usize,
    },
    Ended,
}

/// Where skip mode resumes after an anomaly.
#[derive(Clone, Copy)]
enum Resume {
    /// At this position, known to hold a valid fragment.
    At(usize),
    /// At the first valid fragment found at any byte position from here.
    ScanFrom(usize),
}

/// `None`: keep reading; `Some(step)`: hand `step` to the caller.
type Flow<'a> = Result<Option<Step<'a>>, Error>;

impl<'a> Reader<'a> {
    /// A reader over a whole log, starting at its first byte, telling a torn
    /// tail from corruption by its sync points ([`TailRule::SyncPoints`]).
    pub fn new(data: &'a [u8], mode: RecoveryMode) -> Self {
        Self::with_tail_rule(data, mode, TailRule::SyncPoints)
    }

    /// A reader over a whole log, starting at its first byte, telling a torn
    /// tail from corruption by `tail_rule`: what the log's writer guarantees
    /// about its syncs.
    ///
    /// ```
    /// use strata_wal::{Reader, RecoveryMode, TailRule, Writer};
    ///
    /// // The MANIFEST's discipline: each record synced before the next.
    /// let mut writer = Writer::new(Vec::new());
    /// for edit in [&b"edit 1"[..], b"edit 2", b"edit 3"] {
    ///     writer.add_record(edit).unwrap();
    ///     writer.sync().unwrap();
    /// }
    /// let mut log = writer.into_inner();
    /// log[9] ^= 0x01; // a byte of the first record's payload
    ///
    /// // Sync points alone: they all sit in the damaged block, so this looks
    /// // like a crash's torn tail and the synced records would be dropped.
    /// let mut reader = Reader::new(&log, RecoveryMode::default());
    /// assert!(reader.next_record().unwrap().is_none());
    /// // Every record but the last was synced: no crash leaves a record
    /// // that holds its length and a bad checksum followed by more records.
    /// let rule = TailRule::EveryRecordSyncedButLast;
    /// let mut reader = Reader::with_tail_rule(&log, RecoveryMode::default(), rule);
    /// assert!(reader.next_record().is_err());
    /// ```
    pub fn with_tail_rule(data: &'a [u8], mode: RecoveryMode, tail_rule: TailRule) -> Self {
        Self {
            data,
            mode,
            tail_rule,
            pos: 0,
            partial: None,
            scratch: Vec::new(),
            skipping: None,
            scan: ForwardScan::default(),
            state: State::Reading,
            anomalies: Vec::new(),
            last_record: None,
            sync_points: Found::default(),
            searched: false,
        }
    }

    /// The next complete record, or `Ok(None)` at the end of the log (then
    /// [`end`](Self::end) says which ending).
    ///
    /// Per mode, at an anomaly:
    /// - `TolerateCorruptedTailRecords`: a torn tail ends the log; corruption is an `Err`.
    /// - `AbsoluteConsistency`: a torn tail and corruption are both an `Err`.
    /// - `PointInTimeRecovery`: the first anomaly ends the log (`LogEnd::TornTail` or
    ///   `LogEnd::Corruption`, the latter also listed in [`anomalies`](Self::anomalies)).
    /// - `SkipAnyCorruptedRecords` (salvage): any anomaly followed by a
    ///   checksum-valid fragment at *any* byte position is skipped up to the
    ///   next FULL or FIRST fragment (orphan MIDDLE/LAST fragments and sync
    ///   points on the way are skipped too) and listed in `anomalies`; an
    ///   anomaly with no valid fragment after it ends the log as a torn tail.
    ///   Caveat: a payload holding framed log bytes can be mistaken for valid
    ///   fragments after damage, and its embedded records returned.
    ///
    /// Records before the anomaly are always returned first; the record whose
    /// fragments were being assembled is dropped. After an `Err`, every later
    /// call returns the same error.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, Error> {
        match &self.state {
            State::Reading => {}
            State::Ended(_) => return Ok(None),
            State::Failed(error) => return Err(*error),
        }
        let (offset, data) = match self.advance() {
            Err(error) => {
                self.state = State::Failed(error);
                return Err(error);
            }
            Ok(Step::Ended) => return Ok(None),
            Ok(Step::Full { offset, data }) => (offset as u64, data),
            Ok(Step::Assembled { offset }) => (offset as u64, self.scratch.as_slice()),
        };
        debug_assert!(self.last_record.is_none_or(|last| last < offset));
        self.last_record = Some(offset);
        Ok(Some(Record { offset, data }))
    }

    /// How the log ended, once [`next_record`](Self::next_record) has returned
    /// `Ok(None)`; `None` before that and after an error.
    pub fn end(&self) -> Option<&LogEnd> {
        match &self.state {
            State::Ended(end) => Some(end),
            State::Reading | State::Failed(_) => None,
        }
    }

    /// Regions skipped in `SkipAnyCorruptedRecords` mode, and the corruption
    /// stopped at in `PointInTimeRecovery` mode, in file order.
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    /// The recovery mode this reader applies.
    pub fn mode(&self) -> RecoveryMode {
        self.mode
    }

    /// How this reader tells a torn tail from corruption.
    pub fn tail_rule(&self) -> TailRule {
        self.tail_rule
    }

    /// The greatest length of this file that its sync points prove was
    /// durably synced (0 if none does). Final once
    /// [`next_record`](Self::next_record) has returned `Ok(None)` or an
    /// error; it then counts the sync points read before the first anomaly
    /// and those found after it by walking framing (see [`Reader`]; including
    /// after the point where reading ended), the same in every mode and
    /// under every [`TailRule`]. Sync
    /// points stating more bytes than precede them are not counted (they are
    /// corruption).
    pub fn synced_len(&self) -> u64 {
        self.sync_points.synced_len
    }

    /// Whether the file holds a sync point that states a synced length (no
    /// more than precede it), among those counted by
    /// [`synced_len`](Self::synced_len) (so a sync point after the first
    /// anomaly that no walk of framing reaches is not seen). Final when
    /// `synced_len` is.
    pub fn has_sync_point(&self) -> bool {
        self.sync_points.any
    }

    fn advance(&mut self) -> Result<Step<'a>, Error> {
        loop {
            let at = self.pos;
            let flow = match parse_at(self.data, at) {
                Parsed::EndOfFile => self.end_of_file(),
                Parsed::Padding { next_block } => {
                    self.pos = next_block.min(self.data.len());
                    Ok(None)
                }
                Parsed::TruncatedHeader => self.torn_tail(at, TornReason::TruncatedHeader),
                Parsed::TruncatedPayload { length, available } => self.anomaly(
                    at,
                    Resume::ScanFrom(at + 1),
                    None,
                    CorruptionReason::BadLength {
                        length,
                        room: available,
                    },
                    TornReason::TruncatedPayload { length, available },
                ),
                Parsed::Damaged { reason } => self.anomaly(
                    at,
                    Resume::ScanFrom(at + 1),
                    trusted_end(self.data, at),
                    reason,
                    TornReason::DamagedTail(reason),
                ),
                Parsed::Fragment {
                    record_type,
                    payload,
                    end,
                } => self.fragment(at, record_type, payload, end),
            };
            if let Some(step) = flow? {
                return Ok(step);
            }
        }
    }

    /// A checksum-valid fragment at `at`: assemble, or an anomaly of sequence.
    fn fragment(
        &mut self,
        at: usize,
        record_type: RecordType,
        payload: &'a [u8],
        end: usize,
    ) -> Flow<'a> {
        let interrupts = matches!(
            record_type,
            RecordType::Full | RecordType::First | RecordType::SyncPoint
        );
        if let Some(record_offset) = self.partial.filter(|_| interrupts) {
            // The record being assembled lacks its LAST fragment. Skip mode
            // resumes here: the fragment is read again once the partial
            // record is dropped.
            let reason = CorruptionReason::UnfinishedRecord {
                record_offset: record_offset as u64,
                found: record_type,
            };
            let torn = TornReason::DamagedTail(reason);
            return self.anomaly(at, Resume::At(at), Some(at), reason, torn);
        }
        match record_type {
            RecordType::Full | RecordType::First => {
                self.close_skipped(at);
                self.pos = end;
                if record_type == RecordType::Full {
                    return Ok(Some(Step::Full {
                        offset: at,
                        data: payload,
                    }));
                }
                self.scratch.clear();
                self.scratch.extend_from_slice(payload);
                self.partial = Some(at);
                Ok(None)
            }
            RecordType::Middle | RecordType::Last => {
                let Some(record_offset) = self.partial else {
                    if self.skipping.is_some() {
                        // Part of a record whose start was damaged: skipped with it.
                        self.pos = end;
                        return Ok(None);
                    }
                    let reason = CorruptionReason::OrphanFragment(record_type);
                    let torn = TornReason::DamagedTail(reason);
                    return self.anomaly(at, Resume::ScanFrom(end), Some(end), reason, torn);
                };
                self.pos = end;
                self.scratch.extend_from_slice(payload);
                if record_type == RecordType::Last {
                    self.partial = None;
                    return Ok(Some(Step::Assembled {
                        offset: record_offset,
                    }));
                }
                Ok(None)
            }
            RecordType::SyncPoint => {
                if let Some(synced_len) = stated_synced_len(payload) {
                    if synced_len > at as u64 {
                        return self.impossible_sync_point(at, end, synced_len);
                    }
                    if !self.searched {
                        self.sync_points.note(at, synced_len);
                    }
                }
                self.pos = end;
                Ok(None)
            }
            RecordType::Zero => {
                // parse_at never yields a Zero fragment; treated as damage all the same.
                let reason = CorruptionReason::BadRecordType(0);
                let torn = TornReason::DamagedTail(reason);
                self.anomaly(at, Resume::ScanFrom(at + 1), None, reason, torn)
            }
        }
    }

    /// The first anomaly: finds the sync points after it, once, walking
    /// from `walk_from` (a fragment boundary after `at`, if known) and from
    /// the block starts after `at`.
    fn search_after(&mut self, at: usize, walk_from: Option<usize>) {
        if !self.searched {
            self.searched = true;
            let after = sync_points_after(self.data, at, walk_from);
            self.sync_points.merge(after);
        }
    }

    /// Classifies an anomaly found at `at`: corruption if the [`TailRule`]
    /// says the bytes at `at` were synced, else a torn tail. Skip mode instead
    /// skips it if a valid fragment follows (`resume`), proven or not.
    /// `walk_from`: where the fragment at `at` is known to end, if it is.
    fn anomaly(
        &mut self,
        at: usize,
        resume: Resume,
        walk_from: Option<usize>,
        corruption: CorruptionReason,
        torn: TornReason,
    ) -> Flow<'a> {
        self.search_after(at, walk_from);
        if self.mode == RecoveryMode::SkipAnyCorruptedRecords {
            let next = match resume {
                Resume::At(pos) => Some(pos),
                Resume::ScanFrom(pos) => self.scan.next_valid(self.data, pos),
            };
            return match next {
                Some(resume) => self.corruption(at, corruption, resume),
                None => self.torn_tail(at, torn),
            };
        }
        let synced = match self.tail_rule {
            TailRule::SyncPoints => self.sync_points.proves(at),
            TailRule::EveryRecordSyncedButLast => {
                self.sync_points.proves(at)
                    || !crash_can_leave(self.data, at, self.partial.is_some())
            }
        };
        if synced {
            self.corruption(at, corruption, at)
        } else {
            self.torn_tail(at, torn)
        }
    }

    /// A checksum-valid sync point at `at` stating more bytes than precede
    /// it: no correct writer wrote it, so it is corruption, proven or not.
    fn impossible_sync_point(&mut self, at: usize, end: usize, synced_len: u64) -> Flow<'a> {
        self.search_after(at, Some(end));
        let resume = match self.mode {
            RecoveryMode::SkipAnyCorruptedRecords => self
                .scan
                .next_valid(self.data, end)
                .unwrap_or(self.data.len()),
            _ => at,
        };
        self.corruption(
            at,
            CorruptionReason::ImpossibleSyncPoint { synced_len },
            resume,
        )
    }

    /// Corruption detected at `at`; in skip mode reading resumes at `resume`.
    fn corruption(&mut self, at: usize, reason: CorruptionReason, resume: usize) -> Flow<'a> {
        debug_assert!(resume >= at);
        let dropped_from = self
            .partial
            .take()
            .or(self.skipping.as_ref().map(|region| region.start))
            .unwrap_or(at);
        match self.mode {
            RecoveryMode::TolerateCorruptedTailRecords | RecoveryMode::AbsoluteConsistency => {
                Err(Error::Corruption {
                    offset: at as u64,
                    reason,
                })
            }
            RecoveryMode::PointInTimeRecovery => {
                self.anomalies.push(Anomaly {
                    offset: dropped_from as u64,
                    length: (self.data.len() - dropped_from) as u64,
                    detected_at: at as u64,
                    reason,
                });
                self.state = State::Ended(LogEnd::Corruption {
                    offset: at as u64,
                    reason,
                });
                Ok(Some(Step::Ended))
            }
            RecoveryMode::SkipAnyCorruptedRecords => {
                // A region already open absorbs further damage until a record starts.
                self.skipping.get_or_insert(SkippedRegion {
                    start: dropped_from,
                    detected_at: at,
                    reason,
                });
                self.pos = resume;
                Ok(None)
            }
        }
    }

    /// The log ends at a torn tail found at `at`.
    fn torn_tail(&mut self, at: usize, reason: TornReason) -> Flow<'a> {
        let zeroed = self
            .data
            .get(at..)
            .is_some_and(|tail| !tail.is_empty() && is_zeroed(tail));
        let reason = if zeroed {
            TornReason::ZeroedTail
        } else {
            reason
        };
        self.close_skipped(at);
        let offset = self.partial.take().unwrap_or(at) as u64;
        if self.mode == RecoveryMode::AbsoluteConsistency {
            return Err(Error::TornTail { offset, reason });
        }
        self.state = State::Ended(LogEnd::TornTail { offset, reason });
        Ok(Some(Step::Ended))
    }

    fn end_of_file(&mut self) -> Flow<'a> {
        let len = self.data.len();
        if self.partial.is_some() {
            return self.torn_tail(len, TornReason::PartialRecord);
        }
        if let Some(region) = self.skipping.take() {
            // The skipped region runs to the end of the file: only orphan
            // fragments followed the damage, so the tail is corrupt, not torn.
            self.anomalies.push(Anomaly {
                offset: region.start as u64,
                length: (len - region.start) as u64,
                detected_at: region.detected_at as u64,
                reason: region.reason,
            });
            self.state = State::Ended(LogEnd::Corruption {
                offset: region.detected_at as u64,
                reason: region.reason,
            });
            return Ok(Some(Step::Ended));
        }
        self.state = State::Ended(LogEnd::Clean { offset: len as u64 });
        Ok(Some(Step::Ended))
    }

    /// Skip mode: a record starts (or the log ends) at `at`, closing the skipped region.
    fn close_skipped(&mut self, at: usize) {
        if let Some(region) = self.skipping.take() {
            self.anomalies.push(Anomaly {
                offset: region.start as u64,
                length: (at - region.start) as u64,
                detected_at: region.detected_at as u64,
                reason: region.reason,
            });
        }
    }
}
