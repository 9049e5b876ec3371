//! The commit pipeline: the one way a write goes from a batch to a
//! durable, visible write (Pebble's `commitPipeline` is the model).
//!
//! Two invariants shape it. Batches reach the WAL in sequence-number
//! order, and become visible to reads in sequence-number order, a prefix
//! at a time. Writing the WAL buffer is a memory copy and is serialized
//! (one leader at a time); memtable inserts are the slow part and run
//! concurrently; publication is serialized again, but only over groups
//! that have finished inserting.
//!
//! ```text
//!  write ─► pool ─► queue ─┬─ leader: take group ─► sequence ─► hand off ─┐
//!                          │          (make room, numbers, one WAL record) │
//!                          └─ member: wait for the leader ◄───────────────┘
//!                                          │
//!           insert (each member its own, concurrently; a small group:
//!           the leader alone) ─► last insert completes the group (its
//!           record written) ─► publish in order ─► wait: synced if asked,
//!           visible ─► pool
//! ```
//!
//! Everything outside the pipeline's own ordering (making room: write
//! stalls and memtable rotation; the WAL; the memtable insert; errors and
//! statistics) goes through a [`CommitEnv`], so the ordering, grouping and
//! failure handling are tested alone against a fake (`pipeline_tests.rs`).

use super::backoff::ActiveWriters;
use super::group::Group;
use super::pool::WriterPool;
use super::publish::Publisher;
use super::queue::{Joined, Led, WriteQueue};
use super::stall_park::StallPark;
use super::writer::{Ask, Assignment, Member, Slot, Writer, WriterState};
use crate::batch::{WriteBatch, HEADER_LEN};
use crate::error::{Error, Result};
use crate::hook::HookPoint;
use crate::lock_order::{Level, Mutex, MutexGuard};
use crate::memtable::{ActiveMemTables, MemTable};
use crate::options::WriteOptions;
use crate::panics::catch_panic;
use crate::txn::{Certificate, Footprint, Oracle, OracleShared, Verdict};
use std::sync::Arc;
use std::task::Poll;
use strata_sstable::{SeqNo, MAX_SEQNO};

/// A group whose batches total at most this many bytes is inserted by its
/// leader alone; larger groups insert concurrently, each member its own.
/// Each member of a small group is woken once, when its write is done:
/// with more writers than cores a wake-up costs more than the insert.
const SERIAL_INSERT_MAX_BYTES: u64 = 64 * 1024;

/// How far a group's WAL record must have gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// In the WAL buffer (`manual_wal_flush`): lost with the process.
    Buffered,
    /// Handed to the operating system: survives a process crash.
    Written,
    /// fsynced: survives power loss.
    Synced,
}

/// What a leader asks the environment to make room for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Room {
    /// Fail with `WriteStall` rather than wait for a stall.
    pub no_slowdown: bool,
    /// Rotate this keyspace's memtable even if it is not full (unless it
    /// is empty).
    pub force: Option<u32>,
    /// Bytes of the group about to be written (0 for a control leader).
    pub bytes: u64,
}

/// What the pipeline needs from the database: the WAL, the memtable, room
/// for a write, and where errors go. `DbInner` is the real one
/// (`env.rs`); the tests use fakes.
pub(crate) trait CommitEnv {
    /// Before a group is sequenced: apply write stalls (waiting through
    /// [`Leadership::stall`]) and rotate the memtable when it is full
    /// ([`Leadership::switch_memtable`]).
    fn make_room(&self, leader: &mut Leadership<'_>, room: Room) -> Result<()>;
    /// Append one group's record to the WAL buffer; returns the log
    /// position just past it. Called in sequence order.
    fn log(&self, record: &[u8]) -> Result<u64>;
    /// [`log`](Self::log) for an async leader's task: `Pending` while the
    /// WAL buffer is full and someone else is writing it out, with `waker`
    /// woken once there is room; nothing is logged then. Fakes without a
    /// WAL buffer of their own may block.
    fn poll_log(&self, record: &[u8], _waker: &std::task::Waker) -> Poll<Result<u64>> {
        Poll::Ready(self.log(record))
    }
    /// Wait until the log holds everything up to `end` with `durability`.
    /// `inline`: the caller may do the writing or syncing itself when no
    /// one else is. Ends early with the error a background failure left.
    fn wait_logged(&self, end: u64, durability: Durability, inline: bool) -> Result<()>;
    /// [`wait_logged`](Self::wait_logged) for an async writer's task:
    /// ready when done, or woken through `waker` when it may be; never
    /// blocks (a sync is left to the WAL syncer thread). Fakes without a
    /// WAL of their own may block.
    fn poll_logged(
        &self,
        end: u64,
        durability: Durability,
        _waker: &std::task::Waker,
    ) -> Poll<Result<()>> {
        Poll::Ready(self.wait_logged(end, durability, false))
    }
    /// Run `then` once the record ending at `end` is written to the WAL
    /// file (`then(true)`) or the log failed first (`then(false)`), never
    /// blocking: by whoever writes it out (see `WalBuffer::when_written`).
    /// How an async writer hands its group's completion over. Fakes
    /// without a WAL of their own may block.
    fn when_logged(&self, end: u64, then: super::wal_buffer::WrittenThen) {
        then(self.wait_logged(end, Durability::Written, true).is_ok());
    }
    /// Insert `batch`'s records into the memtables of their keyspaces,
    /// numbered from `first_seq`.
    /// Called concurrently for different batches.
    fn apply(&self, mems: &ActiveMemTables, first_seq: SeqNo, batch: &WriteBatch);
    /// The error that ends a wait (a background failure), if one stands.
    fn stop_error(&self) -> Option<Error>;
    /// Record a writer's panic as the background error; returns the
    /// background error that stands.
    fn record_panic(&self, panic: Error) -> Arc<Error>;
    /// A group of `writes` writes, `records` records and `bytes` bytes was
    /// sequenced (statistics).
    fn count_group(&self, _writes: usize, _records: u64, _bytes: u64) {}
    /// A named point for tests to inject panics at.
    fn hook(&self, _point: HookPoint) {}
}

/// How the pipeline waits and publishes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PipelineConfig {
    /// The most bytes a group takes (`Options::max_write_group_bytes`).
    pub max_group_bytes: usize,
    /// A group publishes once its record is in the WAL buffer, before it
    /// is written (`Options::manual_wal_flush`).
    pub manual_wal_flush: bool,
    /// Every writer syncs the WAL itself: there is no WAL syncer thread
    /// (`Options::inline_background_work`). Otherwise only a lone writer
    /// does, and with company the syncer thread coalesces the fsyncs.
    pub sync_inline: bool,
}

/// The leader's state: touched only by whoever leads the write queue (the
/// mutex is uncontended; it makes that rule checkable).
pub(crate) struct Sequencer {
    /// The last sequence number handed out.
    last_seq: SeqNo,
    /// The memtables groups insert into now (each keyspace's current
    /// super version's).
    mems: Arc<ActiveMemTables>,
    /// Reused buffer for a multi-writer group's WAL record.
    payload: Vec<u8>,
    /// Recent commits' keys, against which transactions are certified
    /// (`txn/oracle.rs`): here so that certifying and numbering are one
    /// critical section.
    oracle: Oracle,
}

/// Proof of leading the write queue: no group is sequenced by anyone
/// else while it lives. Held by a group's leader while it sequences, and
/// by a control leader (a manual flush, a resume) for its whole task.
pub(crate) struct Leadership<'a> {
    sequencer: MutexGuard<'a, Sequencer>,
    queue: &'a WriteQueue,
    publisher: &'a Publisher,
    /// An async leader's task: a stall parks it instead of blocking.
    park: Option<&'a mut StallPark>,
}

impl Leadership<'_> {
    /// The last sequence number handed out.
    pub fn last_seq(&self) -> SeqNo {
        self.sequencer.last_seq
    }

    /// The memtables groups insert into now.
    pub fn mems(&self) -> &Arc<ActiveMemTables> {
        &self.sequencer.mems
    }

    /// Send later groups to `mems`, in which some keyspaces' memtables are
    /// replaced (or added, or removed); each replaced or removed memtable
    /// is sealed at the last sequence number given to it, and returned
    /// with its keyspace id. Groups sequenced into it may still be
    /// inserting: once that number is published they have all finished
    /// (see `MemTable::seal`).
    pub fn switch_memtables(&mut self, mems: ActiveMemTables) -> Vec<(u32, Arc<MemTable>)> {
        let old = std::mem::replace(&mut self.sequencer.mems, Arc::new(mems));
        let mut replaced = Vec::new();
        for (id, mem) in old.iter() {
            let kept = self
                .sequencer
                .mems
                .get(id)
                .is_some_and(|now| Arc::ptr_eq(now, mem));
            if !kept {
                mem.seal(self.sequencer.last_seq);
                replaced.push((id, Arc::clone(mem)));
            }
        }
        replaced
    }

    /// Wait out a write stall with `wait`, with the stall barrier up:
    /// queued `no_slowdown` writers fail now, and those arriving during
    /// the wait fail as they join; none waits. With `no_slowdown` the
    /// leader itself does not wait: it fails with `WriteStall`, and so do
    /// the queued `no_slowdown` writers.
    ///
    /// An async leader's `wait` is given its [`StallPark`] and may park
    /// (`Poll::Pending`): the barrier then stays up, `park.parked` is set,
    /// and this returns `WriteStall` for `make_room` to pass up; the
    /// leader tries again when woken.
    pub fn stall(
        &mut self,
        no_slowdown: bool,
        wait: impl FnOnce(Option<&mut StallPark>) -> Result<Poll<()>>,
    ) -> Result<()> {
        if no_slowdown {
            for m in self.queue.take_no_slowdown() {
                m.fail(Error::WriteStall);
            }
            return Err(Error::WriteStall);
        }
        if let Some(park) = self.park.as_deref_mut() {
            for m in self.queue.begin_stall() {
                m.fail(Error::WriteStall);
            }
            park.barrier = true;
            return match wait(Some(&mut *park)) {
                Ok(Poll::Pending) => {
                    park.parked = true;
                    Err(Error::WriteStall)
                }
                // Over (or failed): down now, as a blocking leader's
                // barrier comes down here, not after a rotation.
                waited => {
                    park.barrier = false;
                    self.queue.end_stall();
                    waited.map(|_| ())
                }
            };
        }
        struct Barrier<'q>(&'q WriteQueue);
        impl Drop for Barrier<'_> {
            fn drop(&mut self) {
                self.0.end_stall();
            }
        }
        let _barrier = Barrier(self.queue);
        for m in self.queue.begin_stall() {
            m.fail(Error::WriteStall);
        }
        wait(None).map(|_| ())
    }

    /// An async leader's task: what a wait for room other than a
    /// stall's (the WAL's drain lock, a spare WAL) registers before
    /// [`park`](Self::park).
    pub fn task_waker(&self) -> Option<std::task::Waker> {
        self.park.as_ref().map(|p| p.waker.clone())
    }

    /// Park an async leader's task (registered with whatever will wake
    /// it) until its next poll, which makes room again from the start:
    /// returns the error `make_room` passes up (`try_sequence` turns it
    /// into `Pending`). REQUIRES: an async leader ([`task_waker`]
    /// gave a waker), nothing changed since the last look that a next
    /// poll would not redo.
    ///
    /// [`task_waker`]: Self::task_waker
    pub fn park(&mut self) -> Error {
        if let Some(park) = self.park.as_deref_mut() {
            park.parked = true;
        }
        Error::WriteStall
    }

    /// A delayed write waits once per group: true when an async leader's
    /// group already waited out its delay (in an earlier poll).
    pub fn delay_served(&self) -> bool {
        self.park.as_ref().is_some_and(|p| p.delay_served)
    }

    /// An async leader parked in its group's delay: the deadline and the
    /// background generation the delay started from.
    pub fn pending_delay(&self) -> Option<(std::time::Instant, u64)> {
        self.park.as_ref().and_then(|p| p.delay_pending)
    }

    /// Wait until every group sequenced so far has inserted its batches
    /// (a resume then writes the memtables out). Fails if a writer's panic
    /// poisoned the queue meanwhile: its group may never finish.
    pub fn wait_inserted(&self) -> Result<()> {
        self.publisher
            .wait_inserted(|| self.queue.poisoned().map(Error::Background))
    }

    /// Hand the numbers after the last one up to `last` to something
    /// that is not a logged write (an ingestion's tables, already durable
    /// in the MANIFEST), and publish them behind every group numbered
    /// before. The oracle does not know their keys, so a transaction
    /// older than them is validated by lookups, which find them.
    /// REQUIRES: `last` is above every number handed out.
    pub fn number_unlogged(&mut self, last: SeqNo) {
        debug_assert!(last > self.sequencer.last_seq);
        self.sequencer.last_seq = last;
        self.sequencer.oracle.unrecorded(last);
        let id = self.publisher.register(last);
        self.publisher.complete(id);
    }

    /// Publish every group sequenced so far, finished or not. REQUIRES:
    /// every one has inserted ([`wait_inserted`](Self::wait_inserted)) and
    /// is durable elsewhere (a resume wrote the memtables to tables): the
    /// groups a background error held back have an outcome, applied.
    pub fn publish_all(&self) {
        self.publisher.publish_all();
    }
}

/// A group the leader sequenced, and how it is inserted.
pub(super) struct Sequenced {
    pub group: Arc<Group>,
    pub first_seq: SeqNo,
    /// The leader inserts every batch (one writer, or a small group).
    pub serial: bool,
}

pub(crate) struct CommitPipeline {
    pub(super) queue: WriteQueue,
    pub(super) pool: WriterPool,
    sequencer: Mutex<Sequencer>,
    /// Shared with the work async writers hand over (`when_logged`).
    pub(super) publisher: Arc<Publisher>,
    pub(super) active: ActiveWriters,
    pub(super) config: PipelineConfig,
    /// The oracle's side read outside the sequencer.
    pub(crate) oracle: Arc<OracleShared>,
}

impl CommitPipeline {
    /// A pipeline that numbers writes after `last_seq` (every write up to
    /// it visible) into `mems`.
    pub fn new(config: PipelineConfig, last_seq: SeqNo, mems: ActiveMemTables) -> Self {
        let oracle = Arc::new(OracleShared::new(last_seq));
        CommitPipeline {
            queue: WriteQueue::default(),
            pool: WriterPool::default(),
            sequencer: Mutex::new(
                Level::Sequencer,
                Sequencer {
                    last_seq,
                    mems: Arc::new(mems),
                    payload: Vec::new(),
                    oracle: Oracle::new(Arc::clone(&oracle)),
                },
            ),
            publisher: Arc::new(Publisher::new(last_seq)),
            active: ActiveWriters::default(),
            config,
            oracle,
        }
    }

    /// Apply a user's batch atomically; its buffer is recycled afterwards
    /// (the buffer it displaces from the writer's slot is what
    /// [`new_batch`](Self::new_batch) hands out next).
    pub fn write_batch<E: CommitEnv>(
        &self,
        env: &E,
        batch: WriteBatch,
        opts: &WriteOptions,
    ) -> Result<()> {
        self.write(env, opts, |slot| {
            self.pool.install_batch(slot, batch);
            Ok(())
        })
    }

    /// Apply the writes `fill` adds to a pooled batch: no batch buffer is
    /// allocated in steady state.
    pub fn write_with<E: CommitEnv>(
        &self,
        env: &E,
        opts: &WriteOptions,
        fill: impl FnOnce(&mut WriteBatch),
    ) -> Result<()> {
        self.write(env, opts, |slot| {
            fill(slot);
            Ok(())
        })
    }

    /// An empty batch with a recycled buffer.
    pub fn new_batch(&self) -> WriteBatch {
        self.pool.take_batch()
    }

    /// Take a writer slot, fill its batch, commit it, and give the slot
    /// back: every write enters and leaves here.
    fn write<E: CommitEnv>(
        &self,
        env: &E,
        opts: &WriteOptions,
        fill: impl FnOnce(&mut WriteBatch) -> Result<()>,
    ) -> Result<()> {
        let w = self.pool.take();
        let ask = {
            let mut slot = w.slot.lock();
            fill(&mut slot.batch)
                .and_then(|()| slot.batch.validate())
                .map(|()| {
                    let mut ask = Ask::new(&slot.batch, opts);
                    self.bring_footprint(&mut slot, &mut ask);
                    ask
                })
        };
        let result = ask.and_then(|ask| self.commit(env, &w, ask));
        self.pool.give_back(w);
        result
    }

    /// While a transaction is live, a write brings its keys for the
    /// oracle, computed here by the writer rather than by its leader
    /// under the sequencer.
    #[inline]
    pub(super) fn bring_footprint(&self, slot: &mut Slot, ask: &mut Ask) {
        if self.oracle.recording() {
            slot.footprint = Some(Footprint::of_batch(&slot.batch));
            ask.footprint = true;
        }
    }

    /// Commit a transaction's `batch` if the leader certifies `cert`
    /// against every commit numbered before it; returns the write's
    /// outcome and the certificate with the leader's verdict (a voided
    /// write may return `Ok`: the verdict decides; `Pending` if the write
    /// failed before its group was certified). The leader checks the
    /// batch's own keys as well as the certificate's.
    pub fn write_certified<E: CommitEnv>(
        &self,
        env: &E,
        batch: WriteBatch,
        cert: Box<Certificate>,
        opts: &WriteOptions,
    ) -> (Result<()>, Option<Box<Certificate>>) {
        let w = self.pool.take();
        let ask = {
            let mut slot = w.slot.lock();
            self.pool.install_batch(&mut slot.batch, batch);
            let mut ask = Ask::new(&slot.batch, opts);
            slot.footprint = Some(Footprint::of_batch(&slot.batch));
            slot.certificate = Some(cert);
            ask.footprint = true;
            ask.certify = true;
            slot.batch.validate().map(|()| ask)
        };
        let result = ask.and_then(|ask| self.commit(env, &w, ask));
        let cert = w.slot.lock().certificate.take();
        self.pool.give_back(w);
        (result, cert)
    }

    /// Join the queue and carry the write through: lead a group, or follow
    /// a leader, or collect what the leader did.
    fn commit<E: CommitEnv>(&self, env: &E, w: &Arc<Writer>, ask: Ask) -> Result<()> {
        let _active = self.active.enter();
        let joined = self.queue.join(w, ask, self.active.backoff());
        let place = match joined {
            Joined::Leader => "write group leader",
            Joined::Member(_) => "writer",
        };
        // [panic guard] A panic while writing, above all while leading a
        // group, must not leave the group's members, the queue or later
        // writers waiting forever (see `panicked`).
        catch_panic(place, || match joined {
            Joined::Leader => {
                if let Some(stolen) = self.queue.take_stolen() {
                    self.lead_for_task(env, w, ask.no_slowdown, stolen)?;
                }
                self.lead(env, w, ask)
            }
            Joined::Member(WriterState::Sequenced) => self.follow(env, w, ask),
            Joined::Member(WriterState::Committed) => Ok(()),
            Joined::Member(_) => Err(w.take_error()),
        })
        .unwrap_or_else(|panic| Err(self.panicked(env, w, panic)))
    }

    /// Lead a group: take it, sequence it, hand leadership on; then either
    /// insert every batch here (one writer, or a small group) and release
    /// the members with the outcome, or wake each member to insert its
    /// own (helping those not yet awake); then wait like any writer.
    fn lead<E: CommitEnv>(&self, env: &E, leader: &Arc<Writer>, ask: Ask) -> Result<()> {
        let mut members = leader.members.lock();
        let me = Member::new(Arc::clone(leader), ask);
        self.queue
            .take_group(me, Led::ByThread, self.config.max_group_bytes, &mut members);
        env.hook(HookPoint::WriteGroupLeader);
        let sequenced = self.sequence(env, &mut members);
        // The next group forms while this one inserts.
        self.queue.hand_off();
        env.hook(HookPoint::WriteGroupSequenced);
        let result = match sequenced {
            Ok(Sequenced {
                group,
                first_seq,
                serial: true,
            }) => {
                let sync = members.iter().any(|m| m.ask.sync);
                let result = self
                    .insert_all(env, &members, &group, first_seq)
                    .and_then(|()| self.wait(env, &group, sync));
                for m in &members[1..] {
                    match &result {
                        Ok(()) => m.set(WriterState::Committed),
                        Err(e) => m.fail(e.duplicate()),
                    }
                }
                result
            }
            // Each member inserts its own batch, the leader helping; or
            // the group failed.
            sequenced => Self::insert_and_release(env, Some(leader), &members, sequenced).and_then(
                |(group, owes)| {
                    if owes {
                        self.complete(env, &group)?;
                    }
                    self.wait(env, &group, ask.sync)
                },
            ),
        };
        // The list holds the members' slots (the leader's too): it must
        // not outlive the write.
        members.clear();
        result
    }

    /// A member of a group whose members insert their own batches: insert
    /// (unless the leader did already), then wait.
    fn follow<E: CommitEnv>(&self, env: &E, w: &Writer, ask: Ask) -> Result<()> {
        let group = w
            .slot
            .lock()
            .assignment
            .as_ref()
            .map(|a| Arc::clone(&a.group));
        let Some(group) = group else {
            return Err(Error::Closed); // a leader sets it before waking us
        };
        self.insert(env, w)?;
        self.wait(env, &group, ask.sync)
    }

    /// Make room, number the group, log its record, register it with the
    /// publisher.
    fn sequence<E: CommitEnv>(&self, env: &E, members: &mut [Member]) -> Result<Sequenced> {
        let no_slowdown = members[0].ask.no_slowdown;
        match self.try_sequence(env, members, None, no_slowdown) {
            Poll::Ready(result) => result,
            // Only a leader with a stall park parks.
            Poll::Pending => Err(Error::WriteStall),
        }
    }

    /// [`sequence`](Self::sequence); with an async leader's `park`, a
    /// write stall parks its task (`Pending`) instead of blocking. With
    /// `no_slowdown` a stall fails with `WriteStall` instead (the group's
    /// lead asked so, or a blocking writer leading a task's group did:
    /// see `lead_for_task`).
    pub(super) fn try_sequence<E: CommitEnv>(
        &self,
        env: &E,
        members: &mut [Member],
        park: Option<&mut StallPark>,
        no_slowdown: bool,
    ) -> Poll<Result<Sequenced>> {
        let bytes: u64 = members.iter().map(|m| m.ask.bytes as u64).sum();
        let mut leadership = self.leadership();
        leadership.park = park;
        let room = Room {
            no_slowdown,
            force: None,
            bytes,
        };
        if let Err(e) = env.make_room(&mut leadership, room) {
            if leadership.park.as_ref().is_some_and(|p| p.parked) {
                return Poll::Pending;
            }
            return Poll::Ready(Err(e));
        }
        let voided = Self::certify(&mut leadership.sequencer, members);
        let records: u64 = members.iter().map(|m| u64::from(m.ask.count)).sum();
        if records == 0 {
            // Every member was a transaction that failed certification:
            // nothing to number. Each learns why from its certificate.
            return Poll::Ready(Err(Error::InvalidArgument(
                "every transaction in the write group failed certification".into(),
            )));
        }
        self.number_and_log(env, leadership, members, records, bytes - voided)
    }

    /// [sequencer] Certify the group's transactions against the oracle in
    /// queue order (the order they are numbered in), and record each
    /// write's footprint under the last sequence number it will get, so a
    /// later member is certified against an earlier one. A transaction
    /// that fails is voided: its batch emptied, its ask counting no
    /// records; it rides along and learns its verdict from its
    /// certificate. Returns the bytes voided.
    fn certify(sq: &mut Sequencer, members: &mut [Member]) -> u64 {
        let mut next = sq.last_seq + 1;
        let mut voided = 0;
        let certifying = members.iter().filter(|m| m.ask.certify).count();
        let record = sq.oracle.record_needed(certifying);
        for m in members.iter_mut() {
            let count = u64::from(m.ask.count);
            if !m.ask.footprint {
                sq.oracle.unrecorded(next + count - 1);
                next += count;
                continue;
            }
            let mut slot = m.writer.slot.lock();
            let slot = &mut *slot;
            if let (true, Some(cert)) = (m.ask.certify, slot.certificate.as_deref_mut()) {
                cert.verdict = sq.oracle.certify(cert, slot.footprint.as_ref());
                if cert.verdict != Verdict::Accepted {
                    slot.batch.clear();
                    slot.footprint = None;
                    voided += m.ask.bytes as u64 - HEADER_LEN as u64;
                    m.ask.void();
                    continue;
                }
            }
            let last = next + count - 1;
            match slot.footprint.take() {
                Some(fp) if record => sq.oracle.record(last, fp),
                _ => sq.oracle.unrecorded(last),
            }
            next = last + 1;
        }
        voided
    }

    /// The rest of sequencing, with room made. An async leader's task
    /// (`leadership.park`) parks (`Pending`) while the WAL buffer is full
    /// and being written out by someone else, before anything is numbered
    /// or logged: its next poll makes room and sequences again, from the
    /// start.
    fn number_and_log<E: CommitEnv>(
        &self,
        env: &E,
        mut leadership: Leadership<'_>,
        members: &[Member],
        records: u64,
        bytes: u64,
    ) -> Poll<Result<Sequenced>> {
        let lead = members[0].ask;
        let park: Option<&StallPark> = leadership.park.take().map(|p| p as &StallPark);
        // A group holding a transaction was certified (`certify`): its
        // verdicts are given, its voided batches emptied and its writes
        // recorded in the oracle under the numbers it is about to get. It
        // must be numbered now, never parked and sequenced again: a second
        // certification would judge an emptied batch anew (and accept a
        // transaction whose writes are gone), or meet its own writes. Its
        // record waits for room in the WAL buffer as a blocking write's
        // does, bounded by the flusher's next write.
        let certified = members.iter().any(|m| m.ask.certify);
        let task = park.filter(|_| !certified).map(|p| &p.waker);
        let sq = &mut *leadership.sequencer;
        let first = sq.last_seq + 1;
        let last = first + records - 1;
        // Recovery leaves `last_seq` within the 56 bits an internal key
        // holds (checked as read); a write that would pass them is refused
        // rather than stored under a wrapped or truncated number.
        if last > MAX_SEQNO {
            sq.oracle.not_numbered(sq.last_seq);
            return Poll::Ready(Err(Error::InvalidArgument(format!(
                "sequence numbers are exhausted: this write needs up to {last}, past {MAX_SEQNO}"
            ))));
        }
        let end_lsn = if lead.disable_wal {
            for m in members {
                sq.mems
                    .mark_unlogged(m.writer.slot.lock().batch.keyspaces());
            }
            None
        } else {
            match Self::log(env, sq, members, first, records, task) {
                Poll::Ready(Ok(end)) => Some(end),
                Poll::Ready(Err(e)) => {
                    sq.oracle.not_numbered(sq.last_seq);
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    sq.oracle.not_numbered(sq.last_seq);
                    return Poll::Pending;
                }
            }
        };
        if end_lsn.is_some() {
            env.hook(HookPoint::WriteGroupLogged);
        }
        sq.last_seq = last;
        env.count_group(members.len(), records, bytes);
        let id = self.publisher.register(last);
        let serial = members.len() == 1 || bytes <= SERIAL_INSERT_MAX_BYTES;
        let inserts = if serial { 1 } else { members.len() };
        let group = Group::new(id, last, Arc::clone(&sq.mems), end_lsn, inserts);
        Poll::Ready(Ok(Sequenced {
            group: Arc::new(group),
            first_seq: first,
            serial,
        }))
    }

    /// Log the group as one WAL record: a lone writer's batch as it is, a
    /// group's batches under one header. With an async leader's `task`,
    /// `Pending` (nothing logged) while the WAL buffer has no room.
    fn log<E: CommitEnv>(
        env: &E,
        sq: &mut Sequencer,
        members: &[Member],
        first: SeqNo,
        records: u64,
        task: Option<&std::task::Waker>,
    ) -> Poll<Result<u64>> {
        let log = |record: &[u8]| match task {
            Some(waker) => env.poll_log(record, waker),
            None => Poll::Ready(env.log(record)),
        };
        if let [only] = members {
            let mut slot = only.writer.slot.lock();
            slot.batch.set_sequence(first);
            return log(slot.batch.encoded());
        }
        encode_group(&mut sq.payload, first, records, members);
        log(&sq.payload)
    }

    /// After sequencing, by a leader that must not wait for its members
    /// (an async leader, `own`; a blocking writer leading a task's group,
    /// `lead_for_task`, with no write of its own in it), or that lets them
    /// insert their own batches (a blocking leader of a large group,
    /// `own`): insert every batch it can and release the members to wait
    /// for their own durability and visibility, or fail them with the
    /// group's error. Returns the group, and whether the caller did its
    /// last insert and so owes its completion.
    pub(super) fn insert_and_release<E: CommitEnv>(
        env: &E,
        own: Option<&Arc<Writer>>,
        members: &[Member],
        sequenced: Result<Sequenced>,
    ) -> Result<(Arc<Group>, bool)> {
        let is_own = |m: &Member| own.is_some_and(|w| Arc::ptr_eq(&m.writer, w));
        match sequenced {
            Err(e) => {
                for m in members.iter().filter(|m| !is_own(m)) {
                    m.fail(e.duplicate());
                }
                Err(e)
            }
            Ok(Sequenced {
                group,
                first_seq,
                serial: true,
            }) => {
                // Every batch inserted here; the members then wait for
                // their own durability and visibility.
                let mut next = first_seq;
                for m in members {
                    let mut slot = m.writer.slot.lock();
                    env.apply(&group.mems, next, &slot.batch);
                    slot.assignment = Some(Assignment {
                        group: Arc::clone(&group),
                        first_seq: next,
                    });
                    slot.inserted = true;
                    next += u64::from(m.ask.count);
                }
                let last = group.inserted();
                debug_assert!(last, "a serial group has one insert");
                for m in members.iter().filter(|m| !is_own(m)) {
                    m.set(WriterState::Sequenced);
                }
                Ok((group, true))
            }
            Ok(Sequenced {
                group,
                first_seq,
                serial: false,
            }) => {
                let mut next = first_seq;
                for m in members {
                    if is_own(m) {
                        let mut slot = m.writer.slot.lock();
                        slot.assignment = Some(Assignment {
                            group: Arc::clone(&group),
                            first_seq: next,
                        });
                        slot.inserted = false;
                    } else {
                        m.assign(&group, next);
                    }
                    next += u64::from(m.ask.count);
                }
                // Its own batch, then those of members not yet awake:
                // with more writers than cores, a member is often still
                // waiting for a core when its batch could be inserted;
                // helping saves it a second wake-up (it wakes to find its
                // write already inserted). A member that is running
                // inserts its own batch, concurrently.
                let mut owes = false;
                for m in members {
                    owes |= Self::apply_assigned(env, &m.writer).is_some();
                }
                Ok((group, owes))
            }
        }
    }

    /// Insert every member's batch (the leader of a serial group), then
    /// complete the group.
    fn insert_all<E: CommitEnv>(
        &self,
        env: &E,
        members: &[Member],
        group: &Group,
        first_seq: SeqNo,
    ) -> Result<()> {
        let mut next = first_seq;
        for m in members {
            let slot = m.writer.slot.lock();
            env.apply(&group.mems, next, &slot.batch);
            next += u64::from(m.ask.count);
        }
        let last = group.inserted();
        debug_assert!(last, "a serial group has one insert");
        self.complete(env, group)
    }

    /// Insert `w`'s batch unless someone has; if that was the group's last
    /// insert, complete the group.
    fn insert<E: CommitEnv>(&self, env: &E, w: &Writer) -> Result<()> {
        match Self::apply_assigned(env, w) {
            Some(group) => self.complete(env, &group),
            None => Ok(()),
        }
    }

    /// Insert `w`'s batch unless someone has; returns its group if that
    /// was the group's last insert (the caller then completes it).
    pub(super) fn apply_assigned<E: CommitEnv>(env: &E, w: &Writer) -> Option<Arc<Group>> {
        let mut slot = w.slot.lock();
        let slot = &mut *slot;
        let a = slot.assignment.as_ref()?;
        if slot.inserted {
            return None;
        }
        env.apply(&a.group.mems, a.first_seq, &slot.batch);
        slot.inserted = true;
        a.group.inserted().then(|| Arc::clone(&a.group))
    }

    /// The group's last insert is done: once its record is written (in
    /// the buffer, with `manual_wal_flush`), publish it. If the log failed
    /// the group is held back (inserted, not published).
    pub(super) fn complete<E: CommitEnv>(&self, env: &E, group: &Group) -> Result<()> {
        if let Some(end) = group.end_lsn {
            let durability = if self.config.manual_wal_flush {
                Durability::Buffered
            } else {
                Durability::Written
            };
            if let Err(e) = env.wait_logged(end, durability, true) {
                self.publisher.hold_back(group.id);
                return Err(e);
            }
        }
        self.publisher.complete(group.id);
        Ok(())
    }

    /// Wait until `group` is visible, and synced first if `sync`.
    fn wait<E: CommitEnv>(&self, env: &E, group: &Group, sync: bool) -> Result<()> {
        if let (true, Some(end)) = (sync, group.end_lsn) {
            // A lone writer syncs itself (no handoff to the syncer thread);
            // with company, the syncer syncs while the others queue up, so
            // one fsync covers many groups. fillsync on 2 cores: 1 writer
            // ~15% faster inline; 8 writers ~25% faster through the syncer.
            let inline = self.config.sync_inline || self.active.count() <= 1;
            env.wait_logged(end, Durability::Synced, inline)?;
        }
        self.publisher
            .wait_visible(group.last_seq, self.active.backoff(), || env.stop_error())
    }

    /// [panic guard] `w` panicked while writing: record the panic as the
    /// background error (which wakes writers waiting for publication or
    /// the WAL), fail the members its lead had not yet released, and
    /// poison the queue, so that queued and later writers fail at once
    /// instead of waiting for a leader or a publication that never comes.
    pub(super) fn panicked<E: CommitEnv>(&self, env: &E, w: &Arc<Writer>, panic: Error) -> Error {
        let err = env.record_panic(panic);
        for m in w.members.lock().drain(..) {
            if !Arc::ptr_eq(&m.writer, w) {
                m.fail_if_queued(Error::Background(Arc::clone(&err)));
            }
        }
        self.queue.poison(&err);
        // A resume waiting for every group's inserts stops at the poison.
        self.publisher.wake_all();
        Error::Background(err)
    }

    fn leadership(&self) -> Leadership<'_> {
        Leadership {
            sequencer: self.sequencer.lock(),
            queue: &self.queue,
            publisher: &self.publisher,
            park: None,
        }
    }

    /// Run `f` leading the write queue, with no batch of its own (a manual
    /// flush's rotation, a resume): no group is sequenced meanwhile.
    pub fn with_leadership<E: CommitEnv, R>(
        &self,
        env: &E,
        f: impl FnOnce(&mut Leadership<'_>) -> Result<R>,
    ) -> Result<R> {
        let w = self.pool.take();
        let result = match self.queue.join(&w, Ask::control(), self.active.backoff()) {
            Joined::Leader => {
                // [panic guard] As in `commit`: a panic here would leave
                // the queue with a leader that never hands off.
                let r = catch_panic("write group leader", || {
                    if let Some(stolen) = self.queue.take_stolen() {
                        // Never `Err`: a control writer waits out a stall
                        // (see `lead_for_task`), so it never gives the
                        // group back and leadership stays here.
                        self.lead_for_task(env, &w, false, stolen)?;
                    }
                    env.hook(HookPoint::WriteGroupLeader);
                    f(&mut self.leadership())
                })
                .unwrap_or_else(|panic| Err(self.panicked(env, &w, panic)));
                self.queue.hand_off();
                r
            }
            // The queue was poisoned by a writer's panic.
            Joined::Member(WriterState::Failed) => Err(w.take_error()),
            // A control writer never rides in a group: it can only be
            // promoted, or fail.
            Joined::Member(_) => Err(Error::Closed),
        };
        self.pool.give_back(w);
        result
    }

    /// The last sequence number published.
    pub fn visible(&self) -> SeqNo {
        self.publisher.visible()
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> SeqNo {
        self.sequencer.lock().last_seq
    }

    /// The last sequence number handed out, without waiting for the
    /// sequencer (a leader holds it for its whole turn, an ingestion for
    /// its whole job): every number handed out is registered with the
    /// publisher in the same step.
    pub fn last_registered(&self) -> SeqNo {
        self.publisher.registered()
    }

    /// Wait until every write up to `seq` is published (or `env` reports
    /// an error).
    pub fn wait_visible<E: CommitEnv>(&self, env: &E, seq: SeqNo) -> Result<()> {
        self.publisher
            .wait_visible(seq, self.active.backoff(), || env.stop_error())
    }

    /// Wake the writers waiting for publication, so they look at their
    /// stop condition (a background error) now.
    pub fn wake_waiters(&self) {
        self.publisher.wake_all();
    }

    /// How many writers wait in the queue (tests shape groups with it).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.waiting_len()
    }
}

/// One WAL payload for a group: a batch header with the group's first
/// sequence number and total count, then every member's records.
fn encode_group(out: &mut Vec<u8>, first: SeqNo, total: u64, members: &[Member]) {
    out.clear();
    out.extend_from_slice(&first.to_le_bytes());
    // Groups are capped around a megabyte, far below u32::MAX records.
    out.extend_from_slice(&(total as u32).to_le_bytes());
    for m in members {
        let slot = m.writer.slot.lock();
        out.extend_from_slice(&slot.batch.encoded()[HEADER_LEN..]);
    }
}
