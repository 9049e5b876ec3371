//! The write queue: concurrent writers join it; one of them leads a group.
//!
//! The first writer to arrive when no leader is active becomes the leader
//! at once (no handoff for a lone writer). Others wait: spinning briefly,
//! then parked. The leader takes the queued writers into its group (up to
//! a byte cap, smaller when the leader's own batch is small, so a tiny
//! write is not delayed behind a huge group), sequences the group, and
//! hands leadership to the next queued writer before doing its own memtable
//! insert, so the next group forms while this one inserts.
//!
//! A group shares its leader's answer to a write stall and its WAL record,
//! so it never mixes writers that asked differently (RocksDB's
//! `EnterAsBatchGroupLeader` splits groups the same way): a `no_slowdown`
//! writer must fail at a stall, not wait in a normal leader's group, and a
//! normal writer must wait, not fail in a `no_slowdown` leader's group.
//! While the leader waits out a stall, the queue is marked stalled and a
//! `no_slowdown` writer that arrives fails at once instead of queueing
//! behind the stall (RocksDB's write-stall barrier in `LinkOne`).
//!
//! An async writer leads from its task's polls (`async_write.rs`), and a
//! task may not be polled for a while, or ever (its executor thread busy,
//! or blocked in a blocking call). A blocking writer must never wait for
//! that: while leadership sits with a task between polls (handed to it
//! and not yet claimed by its poll, or held by it parked in a write
//! stall), a blocking writer that waits or arrives takes it over and
//! leads the task's group on its own thread before its own
//! (`proxy.rs`); the task, polled later, finds itself a member of that
//! group. A task's own group therefore takes no blocking writer
//! (`Led::ByTask`): one queued behind the task stays in the queue, where
//! the task's park finds it to take the group over, and where a poison
//! fails it.

use super::backoff::Backoff;
use super::writer::{Ask, Member, Writer, WriterState};
use crate::error::Error;
use crate::lock_order::{Level, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;

/// Leaders whose own batch is at most this large cap their group at their
/// size plus this much (LevelDB's rule).
const SMALL_LEADER_BYTES: usize = 128 << 10;

#[derive(Default)]
struct QueueState {
    waiting: Waiting,
    leader_active: bool,
    /// The leader is waiting out a write stall (`begin_stall`).
    stalled: bool,
    /// Set when a writer panicked: every writer joining from then on
    /// fails with it at once (no leader may be left to serve the queue).
    poisoned: Option<Arc<Error>>,
    /// Leadership is an async writer's, and its task is between polls: a
    /// blocking writer may take it over.
    task_lead: Option<TaskLead>,
    /// A task's leadership a blocking writer took over: what that writer
    /// leads first (`take_stolen`), before its own group.
    stolen: Option<Stolen>,
}

/// An async writer holding leadership between polls of its task.
enum TaskLead {
    /// Handed to it (`hand_off`); its poll has not claimed it yet.
    Offered(Member),
    /// Its poll took a group and parked in a write stall (`park_lead`);
    /// the group is in the writer's `members`.
    Parked(Arc<Writer>),
}

/// A task's leadership, taken over by a blocking writer, which leads this
/// group on its own thread before its own (see `proxy.rs`).
pub(crate) enum Stolen {
    /// The group this writer (an async one, put back in `Queued`) heads,
    /// to be formed from the front of the queue.
    Offered(Member),
    /// The group this writer (an async one, put back in `Queued`) took
    /// before it parked: its `members`, itself first.
    Parked(Arc<Writer>),
}

/// Who leads a group a leader takes (`WriteQueue::take_group`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Led {
    /// A thread: a blocking writer, or one leading a task's group in its
    /// place (`proxy.rs`). It waits out a stall on its thread.
    ByThread,
    /// An async writer's poll, which may park in a write stall and not
    /// be polled again for a while.
    ByTask,
}

/// What became of a writer that joined the queue.
pub(crate) enum Joined {
    /// It leads a group (or, for a control writer, holds the queue).
    Leader,
    /// Its leader took it into a sequenced group (`Sequenced`), or
    /// finished (`Committed`) or failed (`Failed`) its write.
    Member(WriterState),
}

pub(crate) struct WriteQueue {
    state: Mutex<QueueState>,
}

impl Default for WriteQueue {
    fn default() -> Self {
        WriteQueue {
            state: Mutex::new(Level::WriteQueue, QueueState::default()),
        }
    }
}

impl WriteQueue {
    /// Join the queue and wait; returns when this writer leads, or its
    /// leader moved it on. Fails at once (`Failed`, the error in the slot)
    /// in a poisoned queue, and with `WriteStall` for a `no_slowdown`
    /// writer arriving during a stall.
    pub fn join(&self, w: &Arc<Writer>, ask: Ask, backoff: Backoff) -> Joined {
        if let Some(joined) = self.enter(w, ask, true, || Member::new(Arc::clone(w), ask)) {
            return joined;
        }
        match w.wait(backoff) {
            WriterState::Leading => Joined::Leader,
            state => Joined::Member(state),
        }
    }

    /// Join without waiting (an async writer): `None` when it was queued,
    /// and then its task is woken through `w.task` when a leader or the
    /// previous leader moves it on. Fails as [`join`](Self::join) does.
    pub fn join_task(&self, w: &Arc<Writer>, ask: Ask) -> Option<Joined> {
        self.enter(w, ask, false, || Member::for_task(Arc::clone(w), ask))
    }

    /// Lead at once, fail at once, or queue (`None`) as `member()`. A
    /// blocking writer (`takes_over`) finding leadership with a task
    /// between polls takes it over and leads (`take_stolen` says what).
    fn enter(
        &self,
        w: &Arc<Writer>,
        ask: Ask,
        takes_over: bool,
        member: impl FnOnce() -> Member,
    ) -> Option<Joined> {
        let mut q = self.state.lock();
        if let Some(e) = &q.poisoned {
            w.slot.lock().error = Some(Error::Background(Arc::clone(e)));
            w.reset(WriterState::Failed);
            return Some(Joined::Member(WriterState::Failed));
        }
        if !q.leader_active {
            q.leader_active = true;
            w.reset(WriterState::Leading);
            return Some(Joined::Leader);
        }
        if q.stalled && ask.no_slowdown {
            w.slot.lock().error = Some(Error::WriteStall);
            w.reset(WriterState::Failed);
            return Some(Joined::Member(WriterState::Failed));
        }
        if takes_over {
            if let Some(lead) = q.task_lead.take() {
                q.stolen = Some(Self::take_back(&mut q, lead));
                w.reset(WriterState::Leading);
                return Some(Joined::Leader);
            }
        }
        w.reset(WriterState::Queued);
        q.waiting.push_back(member());
        None
    }

    /// Take a queued writer back out of the queue (an async write dropped
    /// before a leader took it): true if it was still waiting there, and
    /// so will never be written. False once a leader took it into a group
    /// or is promoting it: its state is about to change.
    pub fn withdraw(&self, w: &Arc<Writer>) -> bool {
        let mut q = self.state.lock();
        q.waiting
            .take_first(|m| Arc::ptr_eq(&m.writer, w))
            .is_some()
    }

    /// Put writers a leader took but will not sequence back at the front
    /// of the queue, in their order (an async leader dropped while its
    /// group waited out a write stall): the next leader takes them.
    pub fn requeue_front(&self, members: impl DoubleEndedIterator<Item = Member>) {
        let mut q = self.state.lock();
        for m in members.rev() {
            q.waiting.push_front(m);
        }
    }

    /// The leader takes its group into `group` (empty, the leader's
    /// reusable list): itself, then queued writers in order while they fit
    /// under the byte cap and share the leader's WAL setting (a group is
    /// one WAL record, or none: a logged write in a `disable_wal` group
    /// would be acknowledged unlogged) and its `no_slowdown` setting (the
    /// leader's decides how the group meets a stall). A group a task's
    /// poll leads (`Led::ByTask`) stops before the first blocking writer:
    /// the task may park with its group in a write stall, and a blocking
    /// writer must then be in the queue, where the park finds it to take
    /// the group over (`park_lead`) and where a poison fails it, never
    /// in a group that waits for the task's next poll.
    pub fn take_group(
        &self,
        leader: Member,
        led: Led,
        max_group_bytes: usize,
        group: &mut Vec<Member>,
    ) {
        let lead = leader.ask;
        // First, before anything that may panic: a blocking writer
        // leading a task's group (`proxy.rs`) holds the task nowhere else,
        // and a panic fails only the writers in its list.
        group.push(leader);
        debug_assert_eq!(group.len(), 1, "a leader's list starts empty");
        // A small leader caps the group near its own size, so a tiny
        // write does not wait for a megabyte of others.
        let cap = if lead.bytes <= SMALL_LEADER_BYTES {
            max_group_bytes.min(lead.bytes + SMALL_LEADER_BYTES)
        } else {
            max_group_bytes
        };
        let mut bytes = lead.bytes;
        let mut q = self.state.lock();
        while let Some(next) = q.waiting.front() {
            let ask = next.ask;
            // A control writer (e.g. a manual flush) must lead, never
            // ride along.
            if ask.is_control()
                || ask.disable_wal != lead.disable_wal
                || ask.no_slowdown != lead.no_slowdown
                || bytes + ask.bytes > cap
                || (led == Led::ByTask && !next.is_task())
            {
                break;
            }
            bytes += ask.bytes;
            if let Some(m) = q.waiting.pop_front() {
                group.push(m);
            }
        }
    }

    /// Remove and return the queued writers that asked not to wait for a
    /// write stall (they fail with `WriteStall` instead).
    pub fn take_no_slowdown(&self) -> Vec<Member> {
        let mut q = self.state.lock();
        Self::drain_no_slowdown(&mut q)
    }

    /// The leader is about to wait out a write stall: until `end_stall`,
    /// a `no_slowdown` writer that joins fails at once. Returns the ones
    /// already queued, for the caller to fail. Marking and draining under
    /// one lock leaves no gap for a writer to join unseen by both.
    pub fn begin_stall(&self) -> Vec<Member> {
        let mut q = self.state.lock();
        q.stalled = true;
        Self::drain_no_slowdown(&mut q)
    }

    /// The stall the leader waited for is over (or its wait failed).
    pub fn end_stall(&self) {
        self.state.lock().stalled = false;
    }

    fn drain_no_slowdown(q: &mut QueueState) -> Vec<Member> {
        q.waiting.take_all_of(|m| m.ask.no_slowdown)
    }

    /// How many writers wait in the queue (tests hold writers there to
    /// shape groups).
    #[cfg(test)]
    pub fn waiting_len(&self) -> usize {
        self.state.lock().waiting.len()
    }

    /// Fail every queued writer with `error`, and every writer that joins
    /// later (a writer panicked: the state it left is not to be built on).
    pub fn poison(&self, error: &Arc<Error>) {
        let waiting = {
            let mut q = self.state.lock();
            q.poisoned.get_or_insert_with(|| Arc::clone(error));
            std::mem::take(&mut q.waiting).members
        };
        for m in waiting {
            m.fail(Error::Background(Arc::clone(error)));
        }
    }

    /// The error a writer's panic poisoned the queue with, if one did.
    pub fn poisoned(&self) -> Option<Arc<Error>> {
        self.state.lock().poisoned.clone()
    }

    /// Pass leadership to the next queued writer, or mark none active. An
    /// async writer's task gets it only if no blocking writer waits: one
    /// that does leads the task's group in its place, now (see the module
    /// comment), rather than wait for the task to be polled.
    pub fn hand_off(&self) {
        let promoted = {
            let mut q = self.state.lock();
            // Called by the one leader, which no task holds between polls.
            debug_assert!(q.task_lead.is_none() && q.stolen.is_none());
            let Some(next) = q.waiting.pop_front() else {
                q.leader_active = false;
                return;
            };
            if !next.is_task() {
                next.mark(WriterState::Leading);
                next
            } else if let Some(proxy) = Self::take_proxy(&mut q) {
                // The task was never told: it stays `Queued`.
                q.stolen = Some(Stolen::Offered(next));
                proxy.mark(WriterState::Leading);
                proxy
            } else {
                // Marked under the lock: a blocking writer taking it over
                // (`take_back`) must find it `Leading`, not have its
                // `Queued` overwritten by a late mark.
                next.mark(WriterState::Leading);
                q.task_lead = Some(TaskLead::Offered(next.clone()));
                next
            }
        };
        promoted.wake();
    }

    /// An async leader `w` is polled to lead: true if the lead is still
    /// its own (it was handed to it, or it parked holding it), false if a
    /// blocking writer took it over meanwhile (then `w` is `Queued` again,
    /// in the group that writer leads: it waits as a member).
    pub fn claim_lead(&self, w: &Arc<Writer>) -> bool {
        let mut q = self.state.lock();
        let own = match &q.task_lead {
            Some(TaskLead::Offered(m)) => Arc::ptr_eq(&m.writer, w),
            Some(TaskLead::Parked(t)) => Arc::ptr_eq(t, w),
            None => false,
        };
        if own {
            q.task_lead = None;
        }
        own
    }

    /// An async leader `w` parks in a write stall holding its group (in
    /// its `members`) and the stall barrier: true if it keeps leadership
    /// until a later poll; false if a blocking writer waiting in the queue
    /// takes the group over now (then `w` is `Queued` again, as in
    /// [`claim_lead`](Self::claim_lead), and the stall barrier is down
    /// until that writer meets the stall itself).
    pub fn park_lead(&self, w: &Arc<Writer>) -> bool {
        let promoted = {
            let mut q = self.state.lock();
            debug_assert!(q.task_lead.is_none() && q.stolen.is_none());
            let Some(proxy) = Self::take_proxy(&mut q) else {
                q.task_lead = Some(TaskLead::Parked(Arc::clone(w)));
                return true;
            };
            q.stolen = Some(Self::take_back(&mut q, TaskLead::Parked(Arc::clone(w))));
            proxy.mark(WriterState::Leading);
            proxy
        };
        promoted.wake();
        false
    }

    /// The task's leadership a blocking writer took over when it was
    /// made leader, if it was: to lead before its own group.
    pub fn take_stolen(&self) -> Option<Stolen> {
        self.state.lock().stolen.take()
    }

    /// Take a task's leadership back: the task is `Queued` again (its next
    /// claim fails), and the barrier of a parked one comes down.
    fn take_back(q: &mut QueueState, lead: TaskLead) -> Stolen {
        match lead {
            TaskLead::Offered(m) => {
                m.writer.reset(WriterState::Queued);
                Stolen::Offered(m)
            }
            TaskLead::Parked(t) => {
                t.reset(WriterState::Queued);
                q.stalled = false;
                Stolen::Parked(t)
            }
        }
    }

    /// The first blocking writer waiting, taken out of the queue to lead.
    fn take_proxy(q: &mut QueueState) -> Option<Member> {
        if q.waiting.threads == 0 {
            return None; // no walk through thousands of queued tasks
        }
        q.waiting.take_first(|m| !m.is_task())
    }
}

/// The queued writers in order, counting the blocking ones (a hand-off to
/// a task asks whether one waits: with thousands of tasks queued, the
/// answer must not cost a walk through them).
#[derive(Default)]
struct Waiting {
    members: VecDeque<Member>,
    /// Members that are not tasks.
    threads: usize,
}

impl Waiting {
    fn count(&mut self, m: &Member, added: bool) {
        if !m.is_task() {
            if added {
                self.threads += 1;
            } else {
                self.threads -= 1;
            }
        }
    }

    fn push_back(&mut self, m: Member) {
        self.count(&m, true);
        self.members.push_back(m);
    }

    fn push_front(&mut self, m: Member) {
        self.count(&m, true);
        self.members.push_front(m);
    }

    fn front(&self) -> Option<&Member> {
        self.members.front()
    }

    fn pop_front(&mut self) -> Option<Member> {
        let m = self.members.pop_front()?;
        self.count(&m, false);
        Some(m)
    }

    /// Remove and return the first member `pick` chooses.
    fn take_first(&mut self, pick: impl Fn(&Member) -> bool) -> Option<Member> {
        let i = self.members.iter().position(pick)?;
        let m = self.members.remove(i)?;
        self.count(&m, false);
        Some(m)
    }

    /// Remove and return every member `pick` chooses, the others kept in
    /// order.
    fn take_all_of(&mut self, pick: impl Fn(&Member) -> bool) -> Vec<Member> {
        let (taken, kept): (Vec<_>, Vec<_>) = self.members.drain(..).partition(pick);
        self.members = kept.into();
        self.threads = self.members.iter().filter(|m| !m.is_task()).count();
        taken
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.members.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::WriteBatch;
    use crate::options::WriteOptions;
    use crate::write::backoff::ActiveWriters;
    use std::sync::mpsc;

    /// A bound on a hang, not a synchronisation.
    const HANG: std::time::Duration = std::time::Duration::from_secs(60);

    fn ask() -> Ask {
        let mut batch = WriteBatch::new();
        batch.put(b"k", b"v");
        Ask::new(&batch, &WriteOptions::default())
    }

    /// Regression (review of issue 22, F1): a blocking writer that queued
    /// while an async writer's poll led, before it took its group, went
    /// into the task's group; the task then parked in a write stall, and
    /// the park, looking for a blocking writer only in the queue, kept
    /// the lead with the task: the blocking writer waited for the task's
    /// next poll (forever for a task never polled again), out of reach
    /// of a poison. A task's group now stops before a blocking writer,
    /// which the park finds in the queue and makes leader of the group.
    #[test]
    fn a_blocking_writer_queued_while_a_task_leads_takes_the_group_over_when_it_parks() {
        let q = Arc::new(WriteQueue::default());
        let task = Arc::new(Writer::new());
        assert!(
            matches!(q.join_task(&task, ask()), Some(Joined::Leader)),
            "an idle queue: the task leads"
        );
        let (joined_tx, joined) = mpsc::channel();
        {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                let blocking = Arc::new(Writer::new());
                let led = matches!(
                    q.join(&blocking, ask(), ActiveWriters::default().backoff()),
                    Joined::Leader
                );
                let _ = joined_tx.send(led);
            });
        }
        while q.waiting_len() != 1 {
            std::thread::yield_now();
        }
        // The task's poll takes its group, meets a stall and parks.
        {
            let mut group = task.members.lock();
            q.take_group(
                Member::for_task(Arc::clone(&task), ask()),
                Led::ByTask,
                1 << 20,
                &mut group,
            );
            assert_eq!(group.len(), 1, "a blocking writer rode in a task's group");
        }
        assert_eq!(q.waiting_len(), 1, "the blocking writer is still queued");
        assert!(
            !q.park_lead(&task),
            "the task kept the lead with a blocking writer waiting"
        );
        assert!(
            joined
                .recv_timeout(HANG)
                .expect("the blocking writer waited"),
            "it leads"
        );
        assert!(
            matches!(q.take_stolen(), Some(Stolen::Parked(t)) if Arc::ptr_eq(&t, &task)),
            "it leads the task's parked group first"
        );
        assert!(
            !q.claim_lead(&task),
            "the task's next poll finds the lead taken"
        );
        assert_eq!(task.state(), WriterState::Queued);
        task.members.lock().clear(); // the list holds the task itself
    }

    /// Regression: whether an ask was a control writer's was read off its
    /// record count, so a voided transaction's ask (no records, as
    /// certification leaves it) passed for a control writer's, which must
    /// lead: a group stopped before it. A voided ask rides along; only a
    /// control ask stops a group.
    #[test]
    fn a_voided_ask_rides_in_a_group_and_a_control_ask_stops_it() {
        let q = WriteQueue::default();
        let leader = Arc::new(Writer::new());
        assert!(matches!(
            q.enter(&leader, ask(), true, || unreachable!("it leads")),
            Some(Joined::Leader)
        ));
        let mut voided = ask();
        voided.void();
        assert!(!voided.is_control());
        assert!(Ask::control().is_control());
        let queued: Vec<Member> = [voided, ask(), Ask::control()]
            .into_iter()
            .map(|a| {
                let w = Arc::new(Writer::new());
                let m = Member::new(Arc::clone(&w), a);
                assert!(q.enter(&w, a, false, || m.clone()).is_none(), "queued");
                m
            })
            .collect();
        let mut group = Vec::new();
        q.take_group(
            Member::new(Arc::clone(&leader), ask()),
            Led::ByThread,
            1 << 20,
            &mut group,
        );
        assert_eq!(group.len(), 3, "the leader, the voided ask and the next");
        assert!(Arc::ptr_eq(&group[1].writer, &queued[0].writer));
        assert_eq!(q.waiting_len(), 1, "the control writer waits to lead");
    }

    /// A group a thread leads still takes blocking writers and tasks
    /// alike: only a task's poll stops before a blocking writer.
    #[test]
    fn a_thread_leads_a_group_of_tasks_and_blocking_writers() {
        let q = WriteQueue::default();
        let leader = Arc::new(Writer::new());
        assert!(matches!(
            q.enter(&leader, ask(), true, || unreachable!("it leads")),
            Some(Joined::Leader)
        ));
        let queued: Vec<Member> = (0..4)
            .map(|i| {
                let w = Arc::new(Writer::new());
                let m = if i % 2 == 0 {
                    Member::for_task(Arc::clone(&w), ask())
                } else {
                    Member::new(Arc::clone(&w), ask())
                };
                let joined = q.enter(&w, ask(), false, || m.clone());
                assert!(joined.is_none(), "queued");
                m
            })
            .collect();
        let mut group = Vec::new();
        q.take_group(
            Member::new(Arc::clone(&leader), ask()),
            Led::ByThread,
            1 << 20,
            &mut group,
        );
        assert_eq!(group.len(), 5, "the leader and all four");
        assert!(group[1..]
            .iter()
            .zip(&queued)
            .all(|(g, m)| Arc::ptr_eq(&g.writer, &m.writer)));
    }
}
