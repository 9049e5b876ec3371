//! Room for a write: the write stalls a leader meets before sequencing its
//! group (too many L0 tables, too many frozen memtables, RocksDB's delayed
//! writes), and memtable rotation onto the WAL and memtable made ready
//! ahead (`spare.rs`). The commit pipeline asks for room through
//! `CommitEnv::make_room`; a manual flush asks with `force`.

use super::pipeline::{Leadership, Room};
use super::spare::{create_wal, SpareWal};
use super::stall_park::StallPark;
use super::timer;
use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::filename::wal_path;
use crate::memtable::MemTable;
use crate::read::SuperVersion;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

impl DbInner {
    /// Ensure the write may proceed: apply write stalls (too many L0
    /// tables, too many frozen memtables) and rotate the memtable when full
    /// (or when `room.force` and it is not empty). With `no_slowdown`, a
    /// stall fails with `WriteStall` instead of waiting.
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
            let (l0, frozen) = {
                let sv = self.super_version.load();
                (sv.version.files(0).len(), sv.imms.len())
            };
            let mem = leader.mem();
            let full = mem.approximate_bytes() >= self.options.write_buffer_size;
            let needs_rotation = full || room.force && !mem.is_empty();
            let stop = l0 >= self.options.level0_stop_writes_trigger
                || needs_rotation && frozen >= self.options.max_write_buffer_number - 1;
            if stop {
                leader.stall(room.no_slowdown, |park| {
                    self.wait_for_background(None, generation, park)
                })?;
                continue;
            }
            if !delayed && room.bytes > 0 && l0 >= self.options.level0_slowdown_writes_trigger {
                delayed = true;
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
            if l0 < self.options.level0_slowdown_writes_trigger {
                self.write_controller.lock().reset();
            }
            return if needs_rotation {
                self.rotate_memtable(leader)
            } else {
                Ok(())
            };
        }
    }

    /// A stall's wait: background progress since `generation` was read (a
    /// flush or compaction finishing), or `deadline` when delaying; counts
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

    /// Freeze the active memtable and start a new one with a new WAL.
    fn rotate_memtable(&self, leader: &mut Leadership<'_>) -> Result<()> {
        let wp = &self.write_path;
        // WAL numbers must grow in the order the WALs are used (recovery
        // replays them by number). A spare numbered before the current WAL
        // was made while a rotation that found none created its own: drop it.
        let spare = match wp.spare.take() {
            Some(spare) if spare.number > wp.wal.wal_number() => spare,
            Some(stale) => {
                self.remove_spare(stale);
                self.new_wal()?
            }
            None => self.new_wal()?,
        };
        // Writes the old WAL out; it is synced before the new one is.
        // With a syncer thread the old WAL is synced in the background, so
        // rotation does not stall writers for a whole WAL's fsync.
        let background = !self.options.inline_background_work;
        wp.wal
            .switch_file(spare.file, spare.number, background)
            .map_err(|e| self.wal_failure(e))?;
        let mem = spare.mem;
        // Groups sequenced into the old memtable may still be inserting: a
        // flush waits until the last sequence number sealed into it is
        // published.
        let frozen = leader.switch_memtable(Arc::clone(&mem));
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
    pub(super) fn new_wal(&self) -> Result<SpareWal> {
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
    pub(super) fn remove_spare(&self, spare: SpareWal) {
        let path = wal_path(&self.dir, spare.number);
        drop(spare);
        let _ = self.fs.remove(&path);
    }

    /// Freeze the active memtable (if it holds anything) and wait until
    /// every frozen memtable is flushed.
    pub(crate) fn flush_and_wait(&self) -> Result<()> {
        let room = Room {
            no_slowdown: false,
            force: true,
            bytes: 0,
        };
        self.write_path
            .pipeline
            .with_leadership(self, |leader| self.make_room(leader, room))?;
        if self.options.inline_background_work {
            while !self.super_version.load().imms.is_empty() {
                self.background_step()?;
            }
            return Ok(());
        }
        self.bg.wait_for(None, |_| {
            if let Err(e) = self.check_bg_error() {
                return Some(Err(e));
            }
            self.super_version.load().imms.is_empty().then_some(Ok(()))
        })?;
        Ok(())
    }
}
