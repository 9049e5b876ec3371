//! The write path: pooled batches, group commit, concurrent memtable
//! inserts, and an asynchronous WAL ring.
//!
//! A write goes through these stages (`ARCHITECTURE.md` has the picture):
//!
//! 1. **Pool** (`pool.rs`): the writer takes a slot whose batch buffer is
//!    recycled from an earlier write.
//! 2. **Queue** (`queue.rs`): it joins the write queue. The first writer
//!    leads; later ones wait (spin, then park) to be grouped.
//! 3. **Sequence** (this file, leader only): the leader makes room (memtable
//!    rotation onto the WAL and memtable the flush thread made ready,
//!    `spare.rs`; stalls), takes one stripe of the rotation lock
//!    (`stripes.rs`) for the group, assigns the group's sequence numbers in
//!    one step, frames one WAL record for the whole group into the ring
//!    (`ring.rs`), registers the group with the publisher, and hands
//!    leadership to the next queued writer.
//! 4. **Insert**: members insert their batches into the skiplist memtable
//!    concurrently, each its own, with the leader helping those not yet
//!    awake; the last insert releases the stripe. A group of small batches
//!    (at most 64 KiB together) is inserted by the leader alone, and each
//!    member is woken only once, when its write is done: with more writers
//!    than cores a wake-up costs more than the insert.
//! 5. **Log**: the group's record must reach the durability each member
//!    asked for. The last member drains the ring into the WAL file itself
//!    when no one else is draining (a lone writer pays no thread handoff);
//!    sync writers ask the WAL flusher thread to fsync, and it coalesces
//!    the requests of every group waiting into one fsync.
//! 6. **Publish** (`publish.rs`): the group's sequence numbers become
//!    visible once every earlier group's have; each member returns when
//!    its own write is visible and as durable as it asked.

pub(crate) mod backoff;
mod group;
#[cfg(test)]
mod group_tests;
mod pool;
mod publish;
mod queue;
mod restart;
mod ring;
mod spare;
mod stripes;

pub(crate) use ring::WalRing;

use crate::batch::{WriteBatch, HEADER_LEN};
use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::filename::wal_path;
use crate::hook::HookPoint;
use crate::memtable::MemTable;
use crate::options::WriteOptions;
use crate::read::SuperVersion;
use backoff::ActiveWriters;
use group::Group;
use parking_lot::Mutex;
use pool::WriterPool;
use publish::Publisher;
use queue::{Role, WriteQueue, Writer};
use ring::Durability;
pub(crate) use spare::create_wal;
use spare::{SpareSlot, SpareWal};
use std::sync::Arc;
use strata_sstable::{SeqNo, MAX_SEQNO};
use stripes::StripedLock;

/// The sequencer's state: touched only by the current leader (the mutex
/// is uncontended; it makes that rule checkable).
/// A group whose batches total at most this many bytes is inserted by its
/// leader alone; larger groups insert concurrently, each member its own.
const SERIAL_INSERT_MAX_BYTES: u64 = 64 * 1024;

pub(crate) struct Sequencer {
    /// The last sequence number handed out.
    pub last_seq: SeqNo,
    /// The active memtable (the one the current super version holds).
    pub mem: Arc<MemTable>,
    /// Groups sequenced so far (spreads groups over stripes).
    groups: u64,
    /// Reused buffer for a multi-writer group's WAL payload.
    payload: Vec<u8>,
}

pub(crate) struct WritePath {
    queue: WriteQueue,
    pool: WriterPool,
    pub ring: Arc<WalRing>,
    stripes: Arc<StripedLock>,
    publisher: Publisher,
    pub sequencer: Mutex<Sequencer>,
    manual_wal_flush: bool,
    max_group_bytes: usize,
    bytes_per_sync: u64,
    active: ActiveWriters,
    /// The next WAL and memtable, made by the flush thread.
    spare: SpareSlot,
}

impl WritePath {
    pub fn new(
        ring: Arc<WalRing>,
        last_seq: SeqNo,
        mem: Arc<MemTable>,
        manual_wal_flush: bool,
        max_group_bytes: usize,
        bytes_per_sync: u64,
    ) -> Self {
        WritePath {
            queue: WriteQueue::default(),
            pool: WriterPool::default(),
            ring,
            stripes: StripedLock::new(),
            publisher: Publisher::new(),
            sequencer: Mutex::new(Sequencer {
                last_seq,
                mem,
                groups: 0,
                payload: Vec::new(),
            }),
            manual_wal_flush,
            max_group_bytes,
            bytes_per_sync,
            active: ActiveWriters::default(),
            spare: SpareSlot::default(),
        }
    }
}

impl WritePath {
    /// Wake writers parked on publication or on the WAL ring so they
    /// notice a background error.
    pub(crate) fn wake_waiters(&self) {
        self.publisher.wake_all();
        self.ring.wake_waiters();
    }
}

impl DbInner {
    /// Apply a user's batch atomically; its buffer is recycled afterwards.
    pub(crate) fn write(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        batch.validate()?;
        if batch.is_empty() {
            // Still a sync point: what was acknowledged before it must be
            // durable when a sync write returns.
            if opts.sync && !opts.disable_wal {
                return self.flush_wal(true);
            }
            return Ok(());
        }
        let w = self.write_path.pool.take();
        self.write_path.pool.install_batch(&w, batch);
        w.request.lock().opts = opts.clone();
        self.write_slot(w)
    }

    /// An empty batch with a recycled buffer (see [`crate::Db::new_batch`]).
    pub(crate) fn new_batch(&self) -> WriteBatch {
        self.write_path.pool.take_batch()
    }

    /// Apply writes built by `fill` into a pooled batch (`put`, `delete`):
    /// no batch buffer is allocated in steady state.
    pub(crate) fn write_with(
        &self,
        opts: &WriteOptions,
        fill: impl FnOnce(&mut WriteBatch),
    ) -> Result<()> {
        let w = self.write_path.pool.take();
        {
            let mut r = w.request.lock();
            fill(&mut r.batch);
            if let Err(e) = r.batch.validate() {
                drop(r);
                self.write_path.pool.give_back(w);
                return Err(e);
            }
            r.opts = opts.clone();
        }
        self.write_slot(w)
    }

    fn write_slot(&self, w: Arc<Writer>) -> Result<()> {
        let _active = self.write_path.active.enter();
        let backoff = self.write_path.active.backoff();
        let role = self.write_path.queue.join(&w, backoff);
        let leading = matches!(role, Role::Leader);
        // [panic guard] A panic while writing, above all while leading a
        // group, must not leave the group's members, the queue or later
        // writers waiting forever (see `write_panicked`).
        let result = crate::panics::catch_panic(
            if leading {
                "write group leader"
            } else {
                "writer"
            },
            || match role {
                Role::Leader => self.lead(&w),
                Role::Assigned | Role::Failed => self.finish_member(&w, false),
                Role::Done => self.finish_done(&w),
            },
        )
        .unwrap_or_else(|panic| Err(self.write_panicked(&w, panic)));
        self.write_path.pool.give_back(w);
        result
    }

    /// [panic guard] `w` panicked while writing: record the panic as the
    /// background error (which wakes writers waiting for publication or
    /// the WAL), fail the members its lead had not yet released, and
    /// poison the queue, so that queued and later writers fail at once
    /// instead of waiting for a leader or a publication that never comes.
    fn write_panicked(&self, w: &Writer, panic: Error) -> Error {
        let err = self.set_bg_error(panic);
        for m in w.members.lock().drain(..) {
            if !std::ptr::eq(Arc::as_ptr(&m), w) {
                m.fail_if_waiting(Error::Background(Arc::clone(&err)));
            }
        }
        self.write_path.queue.poison(&err);
        Error::Background(err)
    }

    /// Lead a group: sequence it, hand leadership on, then either insert
    /// every member's batch here (a small group) or let each member insert
    /// its own concurrently (a large one), and finish the leader's write.
    fn lead(&self, leader: &Arc<Writer>) -> Result<()> {
        let wp = &self.write_path;
        let mut members = leader.members.lock();
        wp.queue
            .take_group(leader, wp.max_group_bytes, &mut members);
        let _ = self.hook(HookPoint::WriteGroupLeader);
        let sequenced = self.sequence_group(&members);
        wp.queue.hand_off();
        let _ = self.hook(HookPoint::WriteGroupSequenced);
        let (group, first) = match sequenced {
            Ok(sequenced) => sequenced,
            Err(e) => {
                for m in members.iter().skip(1) {
                    m.fail(e.duplicate());
                }
                members.clear();
                return Err(e);
            }
        };
        let small = members.len() > 1 && group.bytes <= SERIAL_INSERT_MAX_BYTES;
        let mut next = first;
        for m in members.iter() {
            let count = u64::from(m.request.lock().batch.count());
            // A small group's members are not woken to insert: waking
            // costs more than the insert, above all with more writers than
            // cores. Each is woken once, when its write is done.
            if small || Arc::ptr_eq(m, leader) {
                let mut r = m.request.lock();
                r.assignment = Some((Arc::clone(&group), next));
                r.inserted = false;
            } else {
                m.assign(Arc::clone(&group), next);
            }
            next += count;
        }
        drop(members);
        if !small {
            // An early error return leaves the member list (which holds
            // the leader itself) filled; `give_back` empties it.
            return self.finish_member(leader, true);
        }
        let result = self.finish_group_for_all(leader, &group);
        let mut members = leader.members.lock();
        for m in members.iter().skip(1) {
            match &result {
                Ok(()) => m.done(),
                Err(e) => m.fail(e.duplicate()),
            }
        }
        members.clear();
        result
    }

    /// A small group, all on the leader: insert every batch, complete the
    /// group, make it as durable as its most demanding member asked, and
    /// wait until it is visible.
    fn finish_group_for_all(&self, leader: &Writer, group: &Group) -> Result<()> {
        let members = leader.members.lock();
        let mut sync = false;
        for m in members.iter() {
            if let Some(last) = self.insert_member(m) {
                self.complete_group(&last)?;
            }
            sync |= m.request.lock().opts.sync;
        }
        drop(members);
        self.wait_durable_and_visible(group, sync)
    }

    /// A writer whose leader did everything: only the error, if any, is
    /// left to collect.
    fn finish_done(&self, w: &Writer) -> Result<()> {
        match w.request.lock().error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Insert `w`'s batch if nobody has yet; returns its group if this
    /// call did the insert and it was the group's last (the caller then
    /// completes the group).
    fn insert_member(&self, w: &Writer) -> Option<Arc<Group>> {
        let mut r = w.request.lock();
        if r.inserted {
            return None;
        }
        let (group, first) = r.assignment.clone()?;
        group.mem.insert_batch(first, r.batch.iter().flatten());
        r.inserted = true;
        drop(r);
        group.member_inserted().then_some(group)
    }

    /// The leader inserts the batches of members that have not woken up
    /// yet. With more writers than cores, a member is often still waiting
    /// for a core when its batch could be inserted; helping saves it a
    /// second wake-up (it wakes to find its write already published). A
    /// member that is running inserts its own batch, concurrently.
    fn help_members(&self, leader: &Writer) -> Result<()> {
        let mut members = leader.members.lock();
        let mut result = Ok(());
        for m in members.iter().skip(1) {
            if let Some(group) = self.insert_member(m) {
                if let Err(e) = self.complete_group(&group) {
                    result = Err(e);
                }
            }
        }
        members.clear();
        result
    }

    /// The last insert of a group is done: make sure its record reached
    /// the durability every member needs at least, then publish it.
    fn complete_group(&self, group: &Group) -> Result<()> {
        let wp = &self.write_path;
        if let Some(end) = group.end_lsn {
            let durability = if wp.manual_wal_flush {
                Durability::InRing
            } else {
                Durability::Written
            };
            wp.ring
                .wait(end, durability, true, || self.write_stop_error())?;
        }
        wp.publisher.complete(group.id, &self.visible_seq);
        let unsynced = wp.ring.written().saturating_sub(wp.ring.synced());
        if wp.bytes_per_sync > 0 && unsynced >= wp.bytes_per_sync {
            wp.ring.request_sync(wp.ring.written());
        }
        Ok(())
    }

    /// Make room, assign sequence numbers, log the group's record.
    fn sequence_group(&self, members: &[Arc<Writer>]) -> Result<(Arc<Group>, SeqNo)> {
        let wp = &self.write_path;
        let (no_slowdown, disable_wal) = {
            let r = members[0].request.lock();
            (r.opts.no_slowdown, r.opts.disable_wal)
        };
        let group_bytes: u64 = members
            .iter()
            .map(|m| m.request.lock().batch.encoded_size() as u64)
            .sum();
        let mut sq = wp.sequencer.lock();
        self.make_room(&mut sq, no_slowdown, false, group_bytes)?;
        let stripe = wp.stripes.shared(sq.groups as usize);
        let first = sq.last_seq + 1;
        let total: u64 = members
            .iter()
            .map(|m| u64::from(m.request.lock().batch.count()))
            .sum();
        let last = first + total - 1;
        // Recovery leaves `last_seq` within the 56 bits an internal key
        // holds (checked as read); a write that would pass them is refused
        // rather than stored under a wrapped or truncated number.
        if last > MAX_SEQNO {
            return Err(Error::InvalidArgument(format!(
                "sequence numbers are exhausted: this write needs up to {last}, past {MAX_SEQNO}"
            )));
        }
        let end_lsn = if disable_wal {
            sq.mem.mark_unlogged();
            None
        } else {
            let pushed = if let [only] = members {
                let mut r = only.request.lock();
                r.batch.set_sequence(first);
                wp.ring.push(r.batch.encoded())
            } else {
                let Sequencer { payload, .. } = &mut *sq;
                encode_group(payload, first, total, members);
                wp.ring.push(payload)
            };
            Some(pushed.map_err(|e| self.wal_failure(e))?)
        };
        sq.last_seq = last;
        sq.groups += 1;
        self.stats
            .write_groups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for m in members {
            let r = m.request.lock();
            self.stats
                .add_user_write(u64::from(r.batch.count()), r.batch.encoded_size() as u64);
        }
        let id = wp.publisher.register(last);
        let group = Group::new(
            id,
            last,
            Arc::clone(&sq.mem),
            end_lsn,
            members.len(),
            stripe,
            group_bytes,
        );
        Ok((Arc::new(group), first))
    }

    /// Insert this member's batch (unless its leader already did),
    /// complete the group if last, and wait until the write is visible and
    /// as durable as asked.
    fn finish_member(&self, w: &Arc<Writer>, leader: bool) -> Result<()> {
        let (group, sync) = {
            let mut r = w.request.lock();
            if let Some(e) = r.error.take() {
                return Err(e);
            }
            let Some((group, _)) = r.assignment.clone() else {
                return Err(Error::Closed);
            };
            (group, r.opts.sync)
        };
        if let Some(last) = self.insert_member(w) {
            self.complete_group(&last)?;
        }
        if leader {
            self.help_members(w)?;
        }
        self.wait_durable_and_visible(&group, sync)
    }

    /// Wait until `group` is visible, and synced if `sync`.
    fn wait_durable_and_visible(&self, group: &Group, sync: bool) -> Result<()> {
        let wp = &self.write_path;
        let stop = || self.write_stop_error();
        if let (true, Some(end)) = (sync, group.end_lsn) {
            // A lone writer syncs itself (no handoff to the flusher thread);
            // with company, the flusher syncs while the others queue up, so
            // one fsync covers many groups. fillsync on 2 cores: 1 writer
            // ~15% faster inline; 8 writers ~25% faster through the flusher.
            // With no background threads there is no flusher to ask.
            let inline = self.options.inline_background_work || wp.active.count() <= 1;
            wp.ring.wait(end, Durability::Synced, inline, stop)?;
        }
        wp.publisher
            .wait_visible(group.last_seq, &self.visible_seq, wp.active.backoff(), stop)
    }

    /// The error that ends a writer's wait: a background failure, or a WAL
    /// failure not yet recorded as one.
    fn write_stop_error(&self) -> Option<Error> {
        self.record_wal_failure();
        self.check_bg_error().err()
    }

    /// Record the WAL ring's failure, if it has failed, as the background
    /// error (unless one is recorded already); returns the background
    /// error then. Recorded under the ring's failure lock, so a failure a
    /// resume has cleared is never recorded after it.
    fn record_wal_failure(&self) -> Option<Arc<Error>> {
        let ring = &self.write_path.ring;
        ring.failure()?;
        let path = wal_path(&self.dir, ring.wal_number());
        ring.record_failure(|e| self.set_bg_error(Error::io("write WAL", path, e)))
    }

    fn wal_failure(&self, e: std::io::Error) -> Error {
        match self.record_wal_failure() {
            Some(bg) => Error::Background(bg),
            // A resume restarted the ring since: the failure was this
            // call's alone.
            None => {
                let path = wal_path(&self.dir, self.write_path.ring.wal_number());
                Error::io("write WAL", path, e)
            }
        }
    }

    /// Ensure the write may proceed: apply write stalls (too many L0
    /// tables, too many frozen memtables) and rotate the memtable when full
    /// (or when `force` and it is not empty). With `no_slowdown`, a stall
    /// fails with `WriteStall` instead of waiting. REQUIRES: the caller
    /// leads the write queue.
    fn make_room(
        &self,
        sq: &mut Sequencer,
        no_slowdown: bool,
        force: bool,
        group_bytes: u64,
    ) -> Result<()> {
        let mut delayed = false;
        loop {
            // Read before the state it guards: a flush or compaction that
            // finishes after this read but before `stall_until` waits still
            // ends the wait (it bumps the generation). Read after, its
            // notification could fall between the check and the wait and
            // the writer would wait for work that will never come.
            let generation = self.bg.state.lock().generation;
            self.check_bg_error()?;
            let (l0, frozen) = {
                let sv = self.super_version.load();
                (sv.version.files(0).len(), sv.imms.len())
            };
            let full = sq.mem.approximate_bytes() >= self.options.write_buffer_size;
            let needs_rotation = full || force && !sq.mem.is_empty();
            let stop = l0 >= self.options.level0_stop_writes_trigger
                || needs_rotation && frozen >= self.options.max_write_buffer_number - 1;
            if stop {
                self.stall_until(no_slowdown, None, generation)?;
                continue;
            }
            if !delayed && group_bytes > 0 && l0 >= self.options.level0_slowdown_writes_trigger {
                delayed = true;
                let slot = self.write_controller.lock().slot_for(group_bytes);
                self.stall_until(no_slowdown, Some(slot), generation)?;
                continue;
            }
            if l0 < self.options.level0_slowdown_writes_trigger {
                self.write_controller.lock().reset();
            }
            return if needs_rotation {
                self.rotate_memtable(sq)
            } else {
                Ok(())
            };
        }
    }

    /// Wait for background progress since `generation` was read (a flush
    /// or compaction finishing), or until `deadline` when delaying; counts
    /// the time as stall time. Queued `no_slowdown` writers fail now, and
    /// those arriving during the wait fail as they join: none waits.
    fn stall_until(
        &self,
        no_slowdown: bool,
        deadline: Option<std::time::Instant>,
        generation: u64,
    ) -> Result<()> {
        let queue = &self.write_path.queue;
        if no_slowdown {
            for w in queue.take_no_slowdown() {
                w.fail(Error::WriteStall);
            }
            return Err(Error::WriteStall);
        }
        for w in queue.begin_stall() {
            w.fail(Error::WriteStall);
        }
        let result = self.wait_for_background(deadline, generation);
        queue.end_stall();
        result
    }

    /// `stall_until`'s wait: background progress since `generation`, or
    /// `deadline`.
    fn wait_for_background(
        &self,
        deadline: Option<std::time::Instant>,
        generation: u64,
    ) -> Result<()> {
        if self.options.inline_background_work {
            // No thread will make progress for us: do the work here. A
            // delay (deadline) is skipped: time is not simulated.
            if deadline.is_none() && !self.background_step()? {
                return Err(Error::InvalidArgument(
                    "write stall with no background work to resolve it".into(),
                ));
            }
            return Ok(());
        }
        let start = std::time::Instant::now();
        let mut st = self.bg.state.lock();
        while st.generation == generation && !st.shutting_down && self.check_bg_error().is_ok() {
            match deadline {
                Some(d) => {
                    if self.bg.done.wait_until(&mut st, d).timed_out() {
                        break;
                    }
                }
                None => self.bg.done.wait(&mut st),
            }
        }
        let shutting_down = st.shutting_down;
        drop(st);
        self.stats.record_stall(start.elapsed().as_micros() as u64);
        if shutting_down {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Freeze the active memtable and start a new one with a new WAL.
    fn rotate_memtable(&self, sq: &mut Sequencer) -> Result<()> {
        let wp = &self.write_path;
        // Every group sequenced into the old memtable has inserted.
        let _all_stripes = wp.stripes.exclusive();
        // WAL numbers must grow in the order the WALs are used (recovery
        // replays them by number). A spare numbered before the current WAL
        // was made while a rotation that found none created its own: drop it.
        let spare = match wp.spare.take() {
            Some(spare) if spare.number > wp.ring.wal_number() => spare,
            Some(stale) => {
                self.remove_spare(stale);
                self.new_wal()?
            }
            None => self.new_wal()?,
        };
        // Writes the old WAL out; it is synced before the new one is.
        // With a flusher thread the old WAL is synced in the background, so
        // rotation does not stall writers for a whole WAL's fsync.
        let background = !self.options.inline_background_work;
        wp.ring
            .switch_file(spare.file, spare.number, background)
            .map_err(|e| self.wal_failure(e))?;
        let mem = spare.mem;
        let frozen = std::mem::replace(&mut sq.mem, Arc::clone(&mem));
        self.update_super_version(|sv| SuperVersion {
            mem,
            imms: std::iter::once(frozen)
                .chain(sv.imms.iter().cloned())
                .collect(),
            version: Arc::clone(&sv.version),
        });
        self.bg.notify_all();
        Ok(())
    }

    /// A new WAL (created, preallocated, its directory entry synced) and
    /// the memtable that will log to it.
    fn new_wal(&self) -> Result<SpareWal> {
        let number = self.versions.lock().new_file_number()?;
        let size = self.options.write_buffer_size;
        let mode = self.options.wal_write_mode;
        let file = create_wal(&*self.fs, &self.dir, number, size as u64, mode)?;
        let mem = Arc::new(MemTable::sized_for(number, self.options.write_buffer_size));
        Ok(SpareWal { number, file, mem })
    }

    /// Make the next rotation's WAL and memtable now, unless they are
    /// ready (see `spare.rs`). A failure is left for the rotation to meet
    /// and report: it then tries again itself.
    pub(crate) fn prepare_spare_wal(&self) {
        let _making = self.write_path.spare.making();
        if self.write_path.spare.is_ready() {
            return;
        }
        if let Ok(spare) = self.new_wal() {
            self.write_path.spare.put(spare);
        }
    }

    /// Remove the WAL made ahead, if any (a clean close, with the flush
    /// thread stopped).
    pub(crate) fn discard_spare_wal(&self) {
        if let Some(spare) = self.write_path.spare.take() {
            self.remove_spare(spare);
        }
    }

    /// Close and delete an unused spare WAL. It holds no record, so a
    /// failed removal only leaves an empty log the next open retires.
    fn remove_spare(&self, spare: SpareWal) {
        let path = wal_path(&self.dir, spare.number);
        drop(spare);
        let _ = self.fs.remove(&path);
    }

    /// Run `f` as the write-queue leader (no batch of its own), e.g. to
    /// rotate the memtable for a manual flush.
    fn as_leader<R>(&self, f: impl FnOnce(&mut Sequencer) -> Result<R>) -> Result<R> {
        let wp = &self.write_path;
        let w = wp.pool.take();
        // A recycled slot keeps its last write's options; a control writer
        // must not carry them (a stale `no_slowdown` would fail it at a
        // stall).
        w.request.lock().opts = WriteOptions::default();
        let result = match wp.queue.join(&w, wp.active.backoff()) {
            Role::Leader => {
                // [panic guard] As in `write_slot`: a panic here would
                // leave the queue with a leader that never hands off.
                let r = crate::panics::catch_panic("write group leader", || {
                    let _ = self.hook(HookPoint::WriteGroupLeader);
                    f(&mut wp.sequencer.lock())
                })
                .unwrap_or_else(|panic| Err(self.write_panicked(&w, panic)));
                wp.queue.hand_off();
                r
            }
            // The queue was poisoned by a writer's panic.
            Role::Failed => Err(w.request.lock().error.take().unwrap_or(Error::Closed)),
            // A control writer has an empty batch, which `take_group`
            // never takes into a group; it can only be promoted.
            Role::Assigned | Role::Done => Err(Error::Closed),
        };
        wp.pool.give_back(w);
        result
    }

    /// Freeze the active memtable (if it holds anything) and wait until
    /// every frozen memtable is flushed.
    pub(crate) fn flush_and_wait(&self) -> Result<()> {
        self.as_leader(|sq| self.make_room(sq, false, true, 0))?;
        if self.options.inline_background_work {
            while !self.super_version.load().imms.is_empty() {
                self.background_step()?;
            }
            return Ok(());
        }
        let mut st = self.bg.state.lock();
        loop {
            self.check_bg_error()?;
            if self.super_version.load().imms.is_empty() {
                return Ok(());
            }
            if st.shutting_down {
                return Err(Error::Closed);
            }
            self.bg.done.wait(&mut st);
        }
    }

    /// Wait until every write up to `seq` is published.
    pub(crate) fn wait_published(&self, seq: SeqNo) -> Result<()> {
        let stop = || self.write_stop_error();
        let wp = &self.write_path;
        wp.publisher
            .wait_visible(seq, &self.visible_seq, wp.active.backoff(), stop)
    }

    /// Make every logged write durable and seal the WAL (a clean close:
    /// see `WalRing::seal`).
    pub(crate) fn seal_wal(&self) -> Result<()> {
        self.write_path.ring.seal().map_err(|e| self.wal_failure(e))
    }

    /// Write the ring's records to the WAL file, and fsync if `sync`.
    pub(crate) fn flush_wal(&self, sync: bool) -> Result<()> {
        let ring = &self.write_path.ring;
        let r = if sync {
            ring.sync_all()
        } else {
            ring.drain_all()
        };
        r.map_err(|e| self.wal_failure(e))
    }
}

/// One WAL payload for a group: a batch header with the group's first
/// sequence number and total count, then every member's records.
fn encode_group(out: &mut Vec<u8>, first: SeqNo, total: u64, members: &[Arc<Writer>]) {
    out.clear();
    out.extend_from_slice(&first.to_le_bytes());
    // Groups are capped around a megabyte, far below u32::MAX records.
    out.extend_from_slice(&(total as u32).to_le_bytes());
    for m in members {
        let r = m.request.lock();
        out.extend_from_slice(&r.batch.encoded()[HEADER_LEN..]);
    }
}
