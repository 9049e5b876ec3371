//! Async writes: a write that joins the same queue and the same groups as
//! the blocking writers, driven by polls instead of a thread.
//!
//! Wherever a blocking writer parks its thread, an async writer registers
//! its task's waker with the code that would unpark it, and its poll
//! returns `Pending`:
//!
//! | a blocking writer waits for      | an async writer's waker is in   |
//! |----------------------------------|---------------------------------|
//! | its leader (`Writer::wait`)      | its slot (`Writer::task`)       |
//! | a write stall (`Leadership::stall`) | `Background` (and `timer.rs`) |
//! | room in a full WAL buffer (`push`) | the WAL buffer (`poll_push`)  |
//! | the drain lock, to rotate (`switch_file`) | the WAL buffer (`poll_lock_drain`) |
//! | a WAL it creates to rotate (`new_wal`) | `Background` (the flush thread makes it) |
//! | its record written or synced     | the WAL buffer (`poll_wait`)    |
//! | publication                      | the publisher (`poll_visible`)  |
//!
//! A leader's waits for room (the stall, the WAL buffer, the rotation)
//! all come before its group is numbered: it parks holding the group and
//! the lead (`Leadership::park`), and its next poll makes room again from
//! the start. What a leader does between those waits is CPU work bounded
//! by its group (numbering, framing one WAL record, memtable inserts), and
//! an async leader does it inside its poll, as a blocking leader does on
//! its thread. An fsync is never done in a poll: a sync writer's fsync is
//! the WAL syncer thread's, which coalesces it with every other. Writing
//! the record to the OS is done in the poll only when nobody else holds
//! the WAL's drain lock (a `write`, or a copy into the mapped WAL and,
//! once per growth step of the file, an `fallocate`; never an fsync);
//! otherwise whoever holds it writes the record, and the task is woken.
//! The only other waits in a poll are for short leaf locks: the queue's,
//! a writer's slot (held by a leader for the insert of that one batch),
//! the publisher's, the background state's (never held across work); and
//! once per process, the first delayed write starts the timer thread.
//! With `inline_background_work` there are no background threads, and an
//! async write does the background work inline, as a blocking one does.
//! One exception to parking for room: a group holding a transaction is
//! certified before its record is pushed, and must not be sequenced
//! twice, so its leader waits for room in a full WAL buffer as a blocking
//! writer does (`CommitPipeline::number_and_log`).
//!
//! An async leader of a small group inserts every batch, then releases
//! its members to wait for their own durability and visibility
//! (`Sequenced`, already inserted), instead of waking them only when all
//! is done as a blocking leader does. The group's completion (publishing
//! it once its record is written) is not left to the task either: if the
//! record is not yet written, it is handed to whoever writes it out
//! (`WalBuffer::when_written`), so no group, and no later writer, ever
//! waits for an executor to poll a task, or for a future never polled
//! again. Nor does a blocking writer wait for a task's lead: while a task
//! holds leadership between polls (promoted, or parked in a stall), a
//! blocking writer takes it over and leads the task's group itself
//! (`proxy.rs`); the task learns it when it claims the lead at its next
//! poll (`Lead`). So that none waits inside a task's group, the group a
//! task takes stops before the first blocking writer (`Led::ByTask`).
//!
//! **Cancellation.** Dropping the future never leaves half a batch:
//! - while it waits in the queue, it is withdrawn and not applied;
//! - promoted to lead but not polled since, its own write is not applied
//!   and leadership passes on in the drop;
//! - while it leads a group that waits out a write stall (not yet
//!   sequenced), its own write is not applied, the members it took go
//!   back to the front of the queue and leadership passes on; unless a
//!   blocking writer took that parked group over (`proxy.rs`): then the
//!   group, its own write included, is applied;
//! - once a leader took it into a group (or it became leader with its
//!   own write sequenced), it is applied, and it owes the group nothing
//!   (the group's completion is done, or handed to whoever writes the
//!   record, in the poll that did the last insert). A dropped write in
//!   that window becomes durable as any other.
//!
//! Between the first and the last there is a moment when a leader has
//! taken the writer out of the queue but not yet told it: a drop then
//! cannot tell whether it will be applied, so a helper thread waits for
//! the answer and does what is owed (leads nothing: a promoted writer
//! whose future is gone hands leadership on at once, unapplied). Only
//! that moment: a drop that finds the answer given finishes in place,
//! so a dropped write leaves no thread holding the database open.

use super::group::Group;
use super::pipeline::{CommitEnv, CommitPipeline, Durability};
use super::queue::{Joined, Led};
use super::stall_park::StallPark;
use super::writer::{Ask, Member, Writer, WriterState};
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::hook::HookPoint;
use crate::panics::catch_panic;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Where an async write is.
enum Step {
    /// Not yet in the queue.
    Start(WriteBatch, Ask),
    /// Waiting in the queue for a leader, or to lead.
    Queued(Arc<Writer>, Ask),
    /// Leading a group; parked in a write stall if stored here.
    Leading(Arc<Writer>, Ask, Lead),
    /// In a group whose members insert their own batches.
    Sequenced(Arc<Writer>, Ask),
    /// Did the group's last insert: completes it now if its record is
    /// written, or hands the completion over to whoever writes it
    /// (`CommitEnv::when_logged`); never waits here.
    Completing(Arc<Writer>, Ask, Arc<Group>),
    /// Waits for its record to be synced (if it asked) and published.
    Settling(Arc<Writer>, Ask, Arc<Group>),
    Done,
}

impl Step {
    /// The step's writer, if it has one yet.
    fn writer(&self) -> Option<Arc<Writer>> {
        match self {
            Step::Start(..) | Step::Done => None,
            Step::Queued(w, _)
            | Step::Leading(w, _, _)
            | Step::Sequenced(w, _)
            | Step::Completing(w, _, _)
            | Step::Settling(w, _, _) => Some(Arc::clone(w)),
        }
    }
}

/// How an async writer holds the lead it is about to use.
enum Lead {
    /// It joined an idle queue in this poll: no one else can have it.
    Held,
    /// Handed to it by the last leader: to claim, as a blocking writer
    /// may have taken it over before the task ran.
    Offered,
    /// Parked in a write stall with its group since an earlier poll: to
    /// claim again, likewise.
    Parked(StallPark),
}

/// An async write's state, polled by [`CommitPipeline::poll_write`].
pub(crate) struct AsyncWrite {
    step: Step,
    /// Counted in the pipeline's active writers.
    active: bool,
    /// Its future was dropped: finish what is owed, wait for nothing.
    cancelled: bool,
}

/// What one step leads to.
enum Next {
    /// Go on to this step in the same poll.
    Go(Step),
    /// Wait at this step: the task is registered to be woken.
    Wait(Step),
    /// The write is over.
    Finish(Arc<Writer>, Result<()>),
}

impl AsyncWrite {
    /// A write of `batch` (validated, not empty) with `ask`.
    pub fn new(batch: WriteBatch, ask: Ask) -> Self {
        AsyncWrite {
            step: Step::Start(batch, ask),
            active: false,
            cancelled: false,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.step, Step::Done)
    }
}

impl CommitPipeline {
    /// Carry an async write as far as it can go without blocking.
    pub(crate) fn poll_write<E: CommitEnv>(
        &self,
        env: &E,
        op: &mut AsyncWrite,
        cx: &mut Context<'_>,
    ) -> Poll<Result<()>> {
        loop {
            let step = std::mem::replace(&mut op.step, Step::Done);
            let writer = step.writer();
            // [panic guard] Every step, as the blocking `commit` guards
            // the whole write: a panic (a file system's append in a drain,
            // say) must not unwind out of the poll with the group neither
            // completed nor held back and the queue not poisoned.
            let next = catch_panic("async writer", || self.step(env, op, step, cx)).unwrap_or_else(
                |panic| {
                    // Panicked in `Start`: no writer of its own yet (or
                    // lost in the unwinding); a fresh one stands in.
                    let w = writer.unwrap_or_else(|| self.pool.take());
                    let e = self.panicked(env, &w, panic);
                    Next::Finish(w, Err(e))
                },
            );
            match next {
                Next::Go(step) => op.step = step,
                Next::Wait(step) => {
                    op.step = step;
                    return Poll::Pending;
                }
                Next::Finish(w, result) => {
                    self.pool.give_back(w);
                    if std::mem::take(&mut op.active) {
                        self.active.leave_task();
                    }
                    return Poll::Ready(result);
                }
            }
        }
    }

    fn step<E: CommitEnv>(
        &self,
        env: &E,
        op: &mut AsyncWrite,
        step: Step,
        cx: &mut Context<'_>,
    ) -> Next {
        match step {
            Step::Start(batch, mut ask) => {
                let w = self.pool.take();
                {
                    let mut slot = w.slot.lock();
                    self.pool.install_batch(&mut slot.batch, batch);
                    self.bring_footprint(&mut slot, &mut ask);
                }
                self.active.enter_task();
                op.active = true;
                match self.queue.join_task(&w, ask) {
                    Some(Joined::Leader) => Next::Go(Step::Leading(w, ask, Lead::Held)),
                    Some(Joined::Member(state)) => Self::moved_on(w, ask, state),
                    None => Next::Go(Step::Queued(w, ask)),
                }
            }
            Step::Queued(w, ask) => {
                // Registered before the look (see `WakerSlot`).
                w.task.register(cx.waker());
                match w.state() {
                    WriterState::Queued => Next::Wait(Step::Queued(w, ask)),
                    state => {
                        w.task.clear();
                        Self::moved_on(w, ask, state)
                    }
                }
            }
            Step::Leading(w, ask, lead) => {
                let park = match lead {
                    Lead::Held => None,
                    Lead::Offered | Lead::Parked(_) if !self.queue.claim_lead(&w) => {
                        // A blocking writer took the lead over, with this
                        // write in the group it leads: wait as a member.
                        return Next::Go(Step::Queued(w, ask));
                    }
                    Lead::Offered => None,
                    Lead::Parked(park) => Some(park),
                };
                if op.cancelled {
                    // Promoted after its future was dropped (a helper
                    // thread polls it): write nothing, pass leadership on.
                    self.queue.hand_off();
                    return Next::Finish(w, Err(Error::Closed));
                }
                let mut park = park.unwrap_or_else(|| StallPark::new(cx.waker()));
                if !park.waker.will_wake(cx.waker()) {
                    park.waker = cx.waker().clone();
                    park.timer_armed = false; // it holds the old waker
                }
                park.parked = false;
                // [panic guard] as the blocking `commit`'s.
                match catch_panic("write group leader", || {
                    self.poll_lead(env, &w, ask, &mut park)
                }) {
                    // Parked holding the lead, unless a blocking writer
                    // waits: that one leads the group now, on its thread.
                    Ok(Poll::Pending) => {
                        // Registered before the lead is left parked: from
                        // then on a blocking writer may take the group
                        // over (`park_lead`, `enter`), and it moves this
                        // writer on, or fails it when it panics, through
                        // this slot (`Member::set`), not the stall's
                        // wake-up, which may never come.
                        w.task.register(cx.waker());
                        if self.queue.park_lead(&w) {
                            Next::Wait(Step::Leading(w, ask, Lead::Parked(park)))
                        } else {
                            Next::Go(Step::Queued(w, ask))
                        }
                    }
                    Ok(Poll::Ready(Ok((group, true)))) => Next::Go(Step::Completing(w, ask, group)),
                    Ok(Poll::Ready(Ok((group, false)))) => Next::Go(Step::Settling(w, ask, group)),
                    Ok(Poll::Ready(Err(e))) => Next::Finish(w, Err(e)),
                    Err(panic) => {
                        let e = self.panicked(env, &w, panic);
                        Next::Finish(w, Err(e))
                    }
                }
            }
            Step::Sequenced(w, ask) => {
                let group = w
                    .slot
                    .lock()
                    .assignment
                    .as_ref()
                    .map(|a| Arc::clone(&a.group));
                let Some(group) = group else {
                    return Next::Finish(w, Err(Error::Closed)); // set before waking us
                };
                match catch_panic("writer", || Self::apply_assigned(env, &w)) {
                    Ok(Some(_)) => Next::Go(Step::Completing(w, ask, group)),
                    Ok(None) => Next::Go(Step::Settling(w, ask, group)),
                    Err(panic) => {
                        let e = self.panicked(env, &w, panic);
                        Next::Finish(w, Err(e))
                    }
                }
            }
            Step::Completing(w, ask, group) => {
                self.hand_over_completion(env, &group);
                Next::Go(Step::Settling(w, ask, group))
            }
            Step::Settling(w, _, _) if op.cancelled => Next::Finish(w, Err(Error::Closed)),
            Step::Settling(w, ask, group) => {
                if let (true, Some(end)) = (ask.sync, group.end_lsn) {
                    match env.poll_logged(end, Durability::Synced, cx.waker()) {
                        Poll::Pending => return Next::Wait(Step::Settling(w, ask, group)),
                        Poll::Ready(Err(e)) => return Next::Finish(w, Err(e)),
                        Poll::Ready(Ok(())) => {}
                    }
                }
                match self
                    .publisher
                    .poll_visible(group.last_seq, cx.waker(), || env.stop_error())
                {
                    Poll::Pending => {
                        // Synced already: the next poll looks only at
                        // publication.
                        let ask = Ask { sync: false, ..ask };
                        Next::Wait(Step::Settling(w, ask, group))
                    }
                    Poll::Ready(result) => Next::Finish(w, result),
                }
            }
            Step::Done => Next::Wait(Step::Done),
        }
    }

    /// A queued writer's next step once moved out of `Queued`.
    fn moved_on(w: Arc<Writer>, ask: Ask, state: WriterState) -> Next {
        match state {
            WriterState::Leading => Next::Go(Step::Leading(w, ask, Lead::Offered)),
            WriterState::Sequenced => Next::Go(Step::Sequenced(w, ask)),
            WriterState::Committed => Next::Finish(w, Ok(())),
            WriterState::Failed => {
                let e = w.take_error();
                Next::Finish(w, Err(e))
            }
            // Not moved on after all: keep waiting.
            WriterState::Queued => Next::Wait(Step::Queued(w, ask)),
        }
    }

    /// Lead a group from an async writer's poll: take it (first poll),
    /// sequence it (parking in a write stall), hand leadership on, insert.
    /// Returns the group and whether this task owes its completion.
    fn poll_lead<E: CommitEnv>(
        &self,
        env: &E,
        leader: &Arc<Writer>,
        ask: Ask,
        park: &mut StallPark,
    ) -> Poll<Result<(Arc<Group>, bool)>> {
        let mut members = leader.members.lock();
        if members.is_empty() {
            let me = Member::for_task(Arc::clone(leader), ask);
            self.queue
                .take_group(me, Led::ByTask, self.config.max_group_bytes, &mut members);
            env.hook(HookPoint::WriteGroupLeader);
        }
        let no_slowdown = members[0].ask.no_slowdown;
        let sequenced = match self.try_sequence(env, &mut members, Some(park), no_slowdown) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(sequenced) => sequenced,
        };
        if std::mem::take(&mut park.barrier) {
            self.queue.end_stall();
        }
        // The next group forms while this one inserts.
        self.queue.hand_off();
        env.hook(HookPoint::WriteGroupSequenced);
        let result = Self::insert_and_release(env, Some(leader), &members, sequenced);
        // The list holds the members' slots (the leader's too).
        members.clear();
        Poll::Ready(result)
    }

    /// Complete `group`, whose last insert the caller did, without
    /// waiting: now if its record is written (or need not be: no record,
    /// or `manual_wal_flush`), otherwise by whoever writes the record out
    /// (`CommitEnv::when_logged`). Were the completion the caller's to do
    /// later (an async writer at its next poll), every later group,
    /// blocking writers' too, would wait for the executor to poll it, and
    /// forever for a future never polled again; were it awaited here (a
    /// blocking writer leading a task's group, `proxy.rs`), the caller
    /// would hold the queue's leadership through someone else's WAL write
    /// or fsync. If the log fails first the group is held back, and every
    /// writer waiting for publication is woken to find the failure
    /// (`stop_error`, which records it as the background error).
    pub(super) fn hand_over_completion<E: CommitEnv>(&self, env: &E, group: &Group) {
        match group.end_lsn {
            Some(end) if !self.config.manual_wal_flush => {
                let publisher = Arc::clone(&self.publisher);
                let id = group.id;
                env.when_logged(
                    end,
                    Box::new(move |written| {
                        if written {
                            // Wakes those waiting for publication.
                            publisher.complete(id);
                        } else {
                            publisher.hold_back(id);
                            publisher.wake_all();
                        }
                    }),
                );
            }
            // In the buffer is enough (`manual_wal_flush`), or no record.
            _ => self.publisher.complete(group.id),
        }
    }

    /// What a dropped writer owes once out of the queue (not withdrawn):
    /// its state says. A state other than `Queued` is final here, except
    /// a task's `Leading`, which a blocking writer may take back (see
    /// `WriteQueue::claim_lead`): claimed, it is passed on.
    fn cancel_taken(&self, w: Arc<Writer>, ask: Ask) -> Option<Step> {
        loop {
            match w.state() {
                // Promoted, and its task never ran since: pass
                // leadership on now, its own write not applied.
                WriterState::Leading => {
                    if self.queue.claim_lead(&w) {
                        self.queue.hand_off();
                        self.pool.give_back(w);
                        return None;
                    }
                    // Taken over: `Queued` now (the claim's lock shows it).
                }
                // Its leader decided: applied (a member's batch is inserted
                // by its leader if not by itself) or failed. Nothing owed;
                // the slot is not given back to the pool, as the leader
                // may still be inserting from it (it holds the slot too).
                WriterState::Sequenced | WriterState::Committed | WriterState::Failed => {
                    return None;
                }
                // Taken by a leader that has not said yet what it did with
                // it: only waiting tells.
                WriterState::Queued => return Some(Step::Queued(w, ask)),
            }
        }
    }

    /// The future of `op` was dropped. Undo what can be undone without
    /// waiting (see the module comment); returns the write if something is
    /// still owed, for a helper thread to finish (polling it to the end).
    pub(crate) fn cancel(&self, op: &mut AsyncWrite) -> Option<AsyncWrite> {
        let step = std::mem::replace(&mut op.step, Step::Done);
        let owed = match step {
            Step::Queued(w, ask) => {
                if self.queue.withdraw(&w) {
                    self.pool.give_back(w);
                    None
                } else {
                    self.cancel_taken(w, ask)
                }
            }
            // Parked in a stall, before sequencing; the lead is to claim
            // again (a blocking writer may have taken it over).
            Step::Leading(w, ask, Lead::Parked(park)) => {
                if self.queue.claim_lead(&w) {
                    {
                        let mut members = w.members.lock();
                        let taken: Vec<Member> = members.drain(..).skip(1).collect();
                        self.queue.requeue_front(taken.into_iter());
                    }
                    if park.barrier {
                        self.queue.end_stall();
                    }
                    self.queue.hand_off();
                    self.pool.give_back(w);
                    None
                } else {
                    // In the group the blocking writer leads now.
                    self.cancel_taken(w, ask)
                }
            }
            // Not stored (left in the poll that reached them); as a writer
            // out of the queue whose state says what it owes.
            Step::Leading(w, ask, Lead::Held | Lead::Offered) => self.cancel_taken(w, ask),
            // Not waited in (left in the poll that reached it); were it,
            // the completion would be owed.
            step @ Step::Completing(..) => Some(step),
            // Nothing owed: a member's batch is inserted by its leader if
            // not by itself; a completed group needs no one.
            Step::Start(..) | Step::Sequenced(..) | Step::Settling(..) | Step::Done => None,
        };
        match owed {
            Some(step) => Some(AsyncWrite {
                step,
                active: std::mem::take(&mut op.active),
                cancelled: true,
            }),
            None => {
                if std::mem::take(&mut op.active) {
                    self.active.leave_task();
                }
                None
            }
        }
    }
}

impl crate::core::DbInner {
    /// An async write of `batch` with `opts`; `None` when there is nothing
    /// to write (an empty batch: a `sync` one is a sync point instead, see
    /// [`DbInner::write`]). Checked as a blocking write is: a batch naming
    /// another database's keyspace, or a dropped one, is refused here.
    pub(crate) fn async_write(
        &self,
        mut batch: WriteBatch,
        opts: &crate::options::WriteOptions,
    ) -> Result<Option<AsyncWrite>> {
        self.stamp_expiry(&mut batch, opts.ttl);
        batch.validate()?;
        self.check_keyspaces(&batch)?;
        if batch.is_empty() {
            return Ok(None);
        }
        let ask = Ask::new(&batch, opts);
        Ok(Some(AsyncWrite::new(batch, ask)))
    }

    pub(crate) fn poll_async_write(
        &self,
        op: &mut AsyncWrite,
        cx: &mut Context<'_>,
    ) -> Poll<Result<()>> {
        self.write_path.pipeline.poll_write(self, op, cx)
    }

    /// See [`CommitPipeline::cancel`].
    pub(crate) fn cancel_async_write(&self, op: &mut AsyncWrite) -> Option<AsyncWrite> {
        self.write_path.pipeline.cancel(op)
    }

    /// The log position a WAL flush now must reach: everything pushed.
    pub(crate) fn wal_flush_target(&self) -> u64 {
        self.write_path.wal.pushed()
    }

    /// [`DbInner::flush_wal`] for a task: ready once every record pushed
    /// up to `target` is written to the WAL file (and synced, if `sync`).
    pub(crate) fn poll_flush_wal(
        &self,
        target: u64,
        sync: bool,
        waker: &std::task::Waker,
    ) -> Poll<Result<()>> {
        let durability = if sync {
            Durability::Synced
        } else {
            Durability::Written
        };
        super::pipeline::CommitEnv::poll_logged(self, target, durability, waker)
    }
}
