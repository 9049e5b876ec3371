//! Room for a write: the write stalls a leader meets before sequencing its
//! group (too many L0 tables, too many frozen memtables, RocksDB's delayed
//! writes), and memtable rotation onto the WAL and memtable made ready
//! ahead (`spare.rs`). The commit pipeline asks for room through
//! `CommitEnv::make_room`; a manual flush asks with `force`.

use super::pipeline::{Leadership, Room};
use super::spare::{create_wal, spare_wal_bytes, SpareWal};
use super::stall_park::StallPark;
use super::timer;
use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::events::{WriteStallCause, WriteStallCondition};
use crate::filename::wal_path;
use crate::keyspace::{KeyspaceState, Keyspaces};
use crate::memtable::MemTable;
use crate::read::SuperVersion;
use crate::version::DEFAULT_KEYSPACE_ID;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

/// What the keyspaces' levels and frozen memtables allow a write, as of
/// one background generation: the part of `make_room`'s judgement that
/// only background work (and keyspace creation and drop) changes.
pub(crate) struct Limits {
    generation: u64,
    /// Some keyspace's L0 is at its stop trigger.
    stop: bool,
    /// Some keyspace's L0 is at its slowdown trigger.
    slowdown: bool,
    /// Keyspaces that may not freeze another memtable.
    at_frozen_limit: Vec<u32>,
    /// Bytes of every keyspace's frozen memtables.
    frozen_bytes: usize,
    /// `max_total_wal_size`, or its default for these keyspaces.
    wal_limit: u64,
    /// Each keyspace's `write_buffer_size` and
    /// `memtable_max_range_deletions`, by id.
    memtable_limits: Vec<(u32, usize, usize)>,
    /// The keyspaces looked at.
    keyspaces: Arc<Keyspaces>,
}

impl Limits {
    /// Whether keyspace `id`'s memtable `mem` is full (never, for a
    /// keyspace not looked at).
    fn memtable_full(&self, id: u32, mem: &MemTable) -> bool {
        self.memtable_limits
            .iter()
            .find(|(k, _, _)| *k == id)
            .is_some_and(|&(_, size, range_deletions)| mem.is_full(size, range_deletions))
    }
}

/// What the keyspaces ask of a write, as `make_room` finds it.
#[derive(Default)]
struct Pressure {
    /// Some keyspace is at a stop trigger: wait.
    stop: bool,
    /// The stop is L0's (not a memtable limit's).
    l0_stop: bool,
    /// Some keyspace is at a slowdown trigger: delay.
    slowdown: bool,
    /// Keyspaces whose memtable is to be frozen now.
    rotate: Vec<Arc<KeyspaceState>>,
}

impl DbInner {
    /// Ensure the write may proceed: apply write stalls (too many L0
    /// tables, too many frozen memtables, in any keyspace: the write
    /// controller is the database's, as in RocksDB) and rotate the
    /// memtables that are full (or the one `room.force` names, if not
    /// empty), or that the database-wide budgets (`db_write_buffer_size`,
    /// `max_total_wal_size`) pick. With `no_slowdown`, a stall fails with
    /// `WriteStall` instead of waiting.
    pub(crate) fn make_room(&self, leader: &mut Leadership<'_>, room: Room) -> Result<()> {
        // An async leader's group may have waited out its delay in an
        // earlier poll.
        let mut delayed = leader.delay_served();
        loop {
            // Read before the state it guards: a flush or compaction that
            // finishes after this read but before the stall's wait still
            // ends the wait (it bumps the generation). Read after, its
            // notification could fall between the check and the wait and
            // the writer would wait for work that will never come.
            let generation = self.bg.state.lock().generation;
            self.check_bg_error()?;
            let pressure = self.pressure(leader, &room, generation);
            if pressure.stop {
                let cause = if pressure.l0_stop {
                    WriteStallCause::L0FileCountLimit
                } else {
                    WriteStallCause::MemtableLimit
                };
                self.stall_watch
                    .stalled(WriteStallCondition::Stopped, cause, &self.events);
                leader.stall(room.no_slowdown, |park| {
                    self.wait_for_background(None, generation, park)
                })?;
                continue;
            }
            if !delayed && room.bytes > 0 && pressure.slowdown {
                delayed = true;
                self.stall_watch.stalled(
                    WriteStallCondition::Delayed,
                    WriteStallCause::L0FileCountLimit,
                    &self.events,
                );
                // An async leader parked in this delay keeps its deadline
                // and the progress that ends it early.
                let (slot, since) = match leader.pending_delay() {
                    Some(pending) => pending,
                    None => (
                        self.write_controller.lock().slot_for(room.bytes),
                        generation,
                    ),
                };
                leader.stall(room.no_slowdown, |park| {
                    self.wait_for_background(Some(slot), since, park)
                })?;
                continue;
            }
            if !pressure.slowdown {
                self.write_controller.lock().reset();
                self.stall_watch.normal(&self.events);
            }
            return if pressure.rotate.is_empty() {
                Ok(())
            } else {
                self.rotate_memtables(leader, &pressure.rotate)
            };
        }
    }

    /// Which keyspaces stall the write, and which memtables to freeze.
    /// What only background work changes (tables in L0, frozen memtables,
    /// the keyspaces and their options) is looked at once per background
    /// `generation` (`Limits`); per group only the active memtables are.
    fn pressure(&self, leader: &Leadership<'_>, room: &Room, generation: u64) -> Pressure {
        let limits = self.limits(generation);
        let mut p = Pressure {
            stop: limits.stop,
            l0_stop: limits.stop,
            slowdown: limits.slowdown,
            rotate: Vec::new(),
        };
        let mut mutable_bytes = 0;
        for (id, mem) in leader.mems().iter() {
            let Some(ks) = limits.keyspaces.get(id) else {
                continue;
            };
            let bytes = mem.approximate_bytes();
            mutable_bytes += bytes;
            // The keyspace's size as it is now: options changed since the
            // memtable was made apply to it too.
            let full = limits.memtable_full(id, mem);
            let rotate = full || room.force == Some(id) && !mem.is_empty();
            if !rotate {
                continue;
            }
            if limits.at_frozen_limit.contains(&id) {
                p.stop = true;
            } else {
                p.rotate.push(Arc::clone(ks));
            }
        }
        if p.rotate.is_empty() && !p.stop {
            let all_bytes = mutable_bytes + limits.frozen_bytes;
            if let Some(ks) = self.over_memtable_budget(leader, &limits, mutable_bytes, all_bytes) {
                p.rotate.push(ks);
            }
        }
        if p.rotate.is_empty() && !p.stop {
            p.rotate = self.pinning_old_wals(leader, &limits);
        }
        p
    }

    /// The keyspaces' limits as of background `generation`, computed again
    /// only when the generation moved (every flush, compaction, rotation,
    /// resume and keyspace creation or drop bumps it after its change) or
    /// the set of keyspaces changed.
    fn limits(&self, generation: u64) -> Arc<Limits> {
        let keyspaces = self.keyspaces.load_full();
        let mut cached = self.room_limits.lock();
        if let Some(limits) = cached.as_ref() {
            if limits.generation == generation && Arc::ptr_eq(&limits.keyspaces, &keyspaces) {
                return Arc::clone(limits);
            }
        }
        let mut limits = Limits {
            generation,
            stop: false,
            slowdown: false,
            at_frozen_limit: Vec::new(),
            frozen_bytes: 0,
            wal_limit: 0,
            memtable_limits: Vec::with_capacity(keyspaces.len()),
            keyspaces: Arc::clone(&keyspaces),
        };
        for ks in keyspaces.iter() {
            let opts = ks.options();
            let sv = ks.super_version.load();
            let (l0, frozen) = (sv.version.files(0).len(), sv.imms.len());
            limits.stop |= l0 >= opts.level0_stop_writes_trigger;
            limits.slowdown |= l0 >= opts.level0_slowdown_writes_trigger;
            if frozen >= opts.max_write_buffer_number - 1 {
                limits.at_frozen_limit.push(ks.id);
            }
            limits.frozen_bytes += sv.imms.iter().map(|m| m.approximate_bytes()).sum::<usize>();
            limits.wal_limit += (opts.write_buffer_size * opts.max_write_buffer_number) as u64;
            limits.memtable_limits.push((
                ks.id,
                opts.write_buffer_size,
                opts.memtable_max_range_deletions,
            ));
        }
        limits.wal_limit = match self.options.max_total_wal_size {
            0 => 4 * limits.wal_limit,
            limit => limit,
        };
        let limits = Arc::new(limits);
        *cached = Some(Arc::clone(&limits));
        limits
    }

    /// With `db_write_buffer_size` set and exceeded (RocksDB's
    /// WriteBufferManager rule: the active memtables above 7/8 of it, or
    /// all memtables at it with the active ones at half), the keyspace
    /// with the largest active memtable, unless it may not freeze another.
    fn over_memtable_budget(
        &self,
        leader: &Leadership<'_>,
        limits: &Limits,
        mutable_bytes: usize,
        all_bytes: usize,
    ) -> Option<Arc<KeyspaceState>> {
        let budget = self.options.db_write_buffer_size;
        let over = budget > 0
            && (mutable_bytes > budget / 8 * 7
                || all_bytes >= budget && mutable_bytes >= budget / 2);
        if !over {
            return None;
        }
        leader
            .mems()
            .iter()
            .filter(|(id, mem)| !mem.is_empty() && !limits.at_frozen_limit.contains(id))
            .max_by_key(|(_, mem)| mem.approximate_bytes())
            .and_then(|(id, _)| limits.keyspaces.get(id).cloned())
    }

    /// With several keyspaces and the live WALs over `max_total_wal_size`,
    /// the keyspaces whose memtables keep the oldest live WAL (a rarely
    /// written keyspace must not keep gigabytes of log: RocksDB's
    /// `SwitchWAL`). Those that may not freeze another memtable wait for
    /// their flush.
    fn pinning_old_wals(
        &self,
        leader: &Leadership<'_>,
        limits: &Limits,
    ) -> Vec<Arc<KeyspaceState>> {
        if limits.keyspaces.len() < 2 || self.write_path.live_wal_bytes() <= limits.wal_limit {
            return Vec::new();
        }
        let oldest = self.write_path.oldest_live_wal();
        leader
            .mems()
            .iter()
            .filter(|(id, mem)| {
                !mem.is_empty()
                    && mem.wal_number() <= oldest
                    && !limits.at_frozen_limit.contains(id)
            })
            .filter_map(|(id, _)| limits.keyspaces.get(id).cloned())
            .collect()
    }

    /// A stall's wait: background progress since `generation` was read (a
    /// flush's install, a compaction's end), or `deadline` when delaying; counts
    /// the time as stall time. An async leader's `park` parks its task
    /// instead (`Pending`), woken by that progress or at the deadline.
    fn wait_for_background(
        &self,
        deadline: Option<Instant>,
        generation: u64,
        park: Option<&mut StallPark>,
    ) -> Result<Poll<()>> {
        if self.options.inline_background_work {
            // No thread will make progress for us: do the work here (an
            // async leader too: this mode has no background threads). A
            // delay (deadline) is skipped: time is not simulated.
            if deadline.is_none() && !self.background_step()? {
                return Err(Error::InvalidArgument(
                    "write stall with no background work to resolve it".into(),
                ));
            }
            return Ok(Poll::Ready(()));
        }
        if let Some(park) = park {
            return self.park_for_background(deadline, generation, park);
        }
        let start = Instant::now();
        // A background error ends the wait too: the caller reports it.
        let waited = self.bg.wait_for(deadline, |st| {
            (st.generation != generation || self.check_bg_error().is_err()).then_some(Ok(()))
        });
        self.stats.record_stall(start.elapsed().as_micros() as u64);
        waited.map(|_| Poll::Ready(()))
    }

    /// An async leader's stall: ready if background progress came since
    /// `generation` was read (or a background error stands, for the caller
    /// to report), or the delay's `deadline` passed; otherwise its task
    /// is woken at the next progress or at the deadline.
    fn park_for_background(
        &self,
        deadline: Option<Instant>,
        generation: u64,
        park: &mut StallPark,
    ) -> Result<Poll<()>> {
        let passed = deadline.is_some_and(|d| Instant::now() >= d);
        let progressed = if passed {
            Poll::Ready(())
        } else {
            self.bg.poll_for(&park.waker, |st| {
                (st.generation != generation || self.check_bg_error().is_err()).then_some(Ok(()))
            })?
        };
        if let Some(d) = deadline {
            if progressed.is_ready() {
                // Served at its deadline or at progress, as a blocking
                // leader's delay is; a poll that finds neither (woken for
                // nothing) parks again.
                park.delay_served = true;
                park.delay_pending = None;
            } else {
                if !park.timer_armed || park.delay_pending != Some((d, generation)) {
                    timer::wake_at(d, &park.waker);
                    park.timer_armed = true;
                }
                park.delay_pending = Some((d, generation));
            }
        }
        Ok(progressed)
    }

    /// Freeze the active memtables of `which` and start new ones, with a
    /// new WAL (every keyspace's later writes go to it).
    fn rotate_memtables(
        &self,
        leader: &mut Leadership<'_>,
        which: &[Arc<KeyspaceState>],
    ) -> Result<()> {
        let wp = &self.write_path;
        // With background threads, an async leader's task waits for what
        // a blocking leader would block for, parked (see
        // `poll_rotation`); without them it does the work, as the mode
        // does all its background work in the caller.
        let background = !self.options.inline_background_work;
        let task = leader.task_waker().filter(|_| background);
        let (spare, drain) = match task {
            Some(waker) => match self.poll_rotation(&waker)? {
                Poll::Ready((spare, drain)) => (spare, Some(drain)),
                Poll::Pending => return Err(leader.park()),
            },
            // WAL numbers must grow in the order the WALs are used
            // (recovery replays them by number). A spare numbered before
            // the current WAL was made while a rotation that found none
            // created its own: drop it.
            None => match wp.spare.take() {
                Some(spare) if spare.number > wp.wal.wal_number() => (spare, None),
                Some(stale) => {
                    self.remove_spare(stale);
                    (self.new_wal()?, None)
                }
                None => (self.new_wal()?, None),
            },
        };
        // Writes the old WAL out; it is synced before the new one is.
        // With a syncer thread the old WAL is synced in the background, so
        // rotation does not stall writers for a whole WAL's fsync, when
        // the flush of the memtables frozen here will likely need it
        // durable (`closed_wals_must_be_durable`): another keyspace holds
        // writes, or the change feed keeps WALs. Otherwise it is likely
        // obsolete before anything needs it synced, and never is.
        let others_hold_writes = self.keyspaces.load().iter().any(|k| {
            !which.iter().any(|w| w.id == k.id) && {
                let sv = k.super_version.load();
                !sv.mem.is_empty() || !sv.imms.is_empty()
            }
        });
        wp.wal
            .set_eager_retired_sync(others_hold_writes || self.feed.keeps_wals(&self.options));
        let started_at = match drain {
            Some(d) => wp
                .wal
                .switch_file_locked(d, spare.file, spare.number, background),
            None => wp.wal.switch_file(spare.file, spare.number, background),
        }
        .map_err(|e| self.wal_failure(e))?;
        // Where the new WAL begins, not `written()`: the drain lock's
        // release has written the new WAL's log start by now, and a start
        // past the file's base would make a flush's `sync_closed` (which
        // publishes the base as synced) look short of covering the old
        // WAL, hiding its durable batches from the change feed.
        wp.note_wal_started(spare.number, started_at);
        self.feed.note_wal_started(spare.number, leader.last_seq());
        tracing::debug!(wal_number = spare.number, "WAL rotated");
        // The spare's memtable is sized for the default keyspace as the
        // database was opened; any other gets its own.
        let mut spare_mem = Some(spare.mem);
        let mut mems = (**leader.mems()).clone();
        let mut fresh = Vec::with_capacity(which.len());
        for ks in which {
            let mem = self.fresh_memtable(ks, spare.number, &mut spare_mem);
            mems = mems.with(ks.id, Some(Arc::clone(&mem)));
            fresh.push((ks, mem));
        }
        // Groups sequenced into the old memtables may still be inserting:
        // a flush waits until the last sequence number sealed into one is
        // published.
        let frozen = leader.switch_memtables(mems);
        for (ks, mem) in fresh {
            let Some((_, old)) = frozen.iter().find(|(id, _)| *id == ks.id) else {
                continue;
            };
            self.update_super_version(ks, |sv| SuperVersion {
                mem,
                imms: std::iter::once(Arc::clone(old))
                    .chain(sv.imms.iter().cloned())
                    .collect(),
                version: Arc::clone(&sv.version),
            });
        }
        self.bg.notify_all();
        Ok(())
    }

    /// What an async leader's rotation needs, without blocking its
    /// executor thread: a spare WAL made ahead and the WAL's drain lock.
    /// `Pending` (the task registered to be woken) while either is
    /// missing; nothing is taken or changed then, so the next poll makes
    /// room again from the start.
    ///
    /// - No spare (or a stale one): a blocking leader creates a WAL
    ///   itself (a file create, an allocation, a directory fsync); the
    ///   task asks the flush thread instead (`SpareSlot::want`, then the
    ///   thread is woken) and waits on background progress
    ///   (`Background::poll_for`, which looks under the state lock, the
    ///   lock the maker takes to wake the tasks after it put the spare:
    ///   either the look sees the spare, or the maker finds the waker).
    ///   If that attempt fails, this rotation reports its error, as a
    ///   blocking one reports its own.
    /// - The drain lock held (the syncer in an fsync, a `flush_wal`): a
    ///   blocking leader waits for it; the task registers to be woken at
    ///   its release (`WalBuffer::poll_lock_drain`).
    ///
    /// Under the lead the WAL in use does not change, so its number read
    /// here holds until the switch.
    fn poll_rotation(
        &self,
        waker: &std::task::Waker,
    ) -> Result<Poll<(SpareWal, super::wal_buffer::DrainGuard<'_>)>> {
        let wp = &self.write_path;
        let current = wp.wal.wal_number();
        if !wp.spare.is_ready_after(current) {
            if let Some(e) = wp.spare.take_failure() {
                return Err(e);
            }
            wp.spare.want();
            self.bg.wake_workers();
            let made = self.bg.poll_for(waker, |_| {
                let made = wp.spare.is_ready_after(current) || wp.spare.has_failure();
                // A background error stands: the caller reports it.
                (made || self.check_bg_error().is_err()).then_some(Ok(()))
            })?;
            if made.is_pending() {
                return Ok(Poll::Pending);
            }
            self.check_bg_error()?;
            if let Some(e) = wp.spare.take_failure() {
                return Err(e);
            }
        }
        let Poll::Ready(drain) = wp.wal.poll_lock_drain(waker) else {
            return Ok(Poll::Pending);
        };
        // Only a rotation takes the spare (and a resume, which leads the
        // queue too), and the maker replaces only a stale one: it is
        // still there.
        match wp.spare.take() {
            Some(spare) if spare.number > current => Ok(Poll::Ready((spare, drain))),
            other => {
                debug_assert!(false, "the spare went while an async leader led");
                drop(drain);
                if let Some(stale) = other {
                    self.remove_spare(stale);
                }
                Err(Error::InvalidArgument(
                    "internal: the spare WAL went while a rotation led".into(),
                ))
            }
        }
    }

    /// A new active memtable for `ks`, logging to WAL `wal_number`: the
    /// spare's (made ahead, sized for the default keyspace as the database
    /// was opened) if it fits, else a new one.
    pub(super) fn fresh_memtable(
        &self,
        ks: &KeyspaceState,
        wal_number: u64,
        spare_mem: &mut Option<Arc<MemTable>>,
    ) -> Arc<MemTable> {
        let size = ks.options().write_buffer_size;
        if ks.id == DEFAULT_KEYSPACE_ID && size == self.options.write_buffer_size {
            if let Some(mem) = spare_mem.take() {
                return mem;
            }
        }
        Arc::new(MemTable::sized_for(
            wal_number,
            size,
            &self.write_path.block_pool,
        ))
    }

    /// A new WAL (created, allocated as large as the last one grew, its
    /// directory entry synced: `spare.rs`) and the memtable that will log
    /// to it.
    pub(super) fn new_wal(&self) -> Result<SpareWal> {
        let size = self.options.write_buffer_size as u64;
        self.new_wal_of(spare_wal_bytes(self.write_path.last_wal_bytes(), size))
    }

    /// A new WAL allocated to `initial` bytes at first (if mapped), and
    /// its memtable.
    pub(super) fn new_wal_of(&self, initial: u64) -> Result<SpareWal> {
        let number = self.versions.lock().new_file_number()?;
        let mode = self.options.wal_write_mode;
        let file = create_wal(&*self.fs, &self.dir, number, initial, mode)?;
        self.events.wal_created(number);
        let mem = Arc::new(MemTable::sized_for(
            number,
            self.options.write_buffer_size,
            &self.write_path.block_pool,
        ));
        Ok(SpareWal { number, file, mem })
    }

    /// Make the next rotation's WAL and memtable now, unless they are
    /// ready (see `spare.rs`). A failure is left for the rotation to meet
    /// and report: it then tries again itself.
    ///
    /// An async leader's rotation may wait for it (`poll_rotation`): its
    /// task is woken after the attempt, with the failure kept for it.
    pub(crate) fn prepare_spare_wal(&self) {
        let spare = &self.write_path.spare;
        let wanted = {
            let _making = spare.making();
            if let Some(stale) = spare.take_stale(self.write_path.wal.wal_number()) {
                self.remove_spare(stale);
            }
            let mut failed = None;
            if !spare.is_ready() {
                match self.new_wal() {
                    Ok(made) => {
                        // A failure kept for an earlier rotation is
                        // over: none may report it now.
                        spare.take_failure();
                        spare.put(made);
                    }
                    Err(e) => failed = Some(e),
                }
            }
            // Asked for by the time the wish is taken (not only when the
            // file failed: a task that asked in between would otherwise
            // find neither a spare nor the failure, and wait for nothing).
            let wanted = spare.take_wanted();
            if let (true, Some(e)) = (wanted, failed) {
                spare.set_failure(e);
            }
            wanted
        };
        if wanted {
            self.bg.wake_tasks();
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
    pub(super) fn remove_spare(&self, spare: SpareWal) {
        let path = wal_path(&self.dir, spare.number);
        drop(spare);
        let _ = self.fs.remove(&path);
    }

    /// Freeze `ks`'s active memtable (if it holds anything) and wait until
    /// every frozen memtable of it is flushed.
    pub(crate) fn flush_and_wait(&self, ks: &Arc<KeyspaceState>) -> Result<()> {
        let room = Room {
            no_slowdown: false,
            force: Some(ks.id),
            bytes: 0,
        };
        self.write_path
            .pipeline
            .with_leadership(self, |leader| self.make_room(leader, room))?;
        self.wait_flushed(ks)
    }

    /// As [`flush_and_wait`](Self::flush_and_wait), by the write queue's
    /// leader, which keeps leading meanwhile: no write enters the
    /// memtable before the flush is done (an ingestion that must number
    /// its tables above everything in the memtables).
    pub(crate) fn flush_while_leading(
        &self,
        leader: &mut Leadership<'_>,
        ks: &Arc<KeyspaceState>,
    ) -> Result<()> {
        let room = Room {
            no_slowdown: false,
            force: Some(ks.id),
            bytes: 0,
        };
        self.make_room(leader, room)?;
        self.wait_flushed(ks)
    }

    /// Wait until every frozen memtable of `ks` is flushed and the flush
    /// job of its last one has ended: a memtable leaves the read view at
    /// its install, before the job collects the WALs it made obsolete, and
    /// a caller looking at them next (the change feed's gaps, retention's
    /// clock) must find that done, whatever wakes it in between (a
    /// compaction ending, another keyspace's rotation).
    ///
    /// A running flush job of `ks` is waited for even when a background
    /// error is set (its `Flushing` guard clears the mark and wakes this
    /// waiter however it ends), and a flush that is done is `Ok`: a
    /// compaction the flush set off may fail before this waiter wakes, and
    /// that error is the next write's, not this flush's.
    fn wait_flushed(&self, ks: &Arc<KeyspaceState>) -> Result<()> {
        if self.options.inline_background_work {
            ks.check_live()?;
            while !ks.super_version.load().imms.is_empty() {
                ks.check_live()?;
                self.background_step()?;
            }
            return Ok(());
        }
        self.bg.wait_for(None, |st| {
            if let Err(e) = ks.check_live() {
                return Some(Err(e));
            }
            if st.flushing == Some(ks.id) {
                return None;
            }
            if ks.super_version.load().imms.is_empty() {
                return Some(Ok(()));
            }
            self.check_bg_error().err().map(Err)
        })?;
        Ok(())
    }
}
