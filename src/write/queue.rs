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
    waiting: VecDeque<Member>,
    leader_active: bool,
    /// The leader is waiting out a write stall (`begin_stall`).
    stalled: bool,
    /// Set when a writer panicked: every writer joining from then on
    /// fails with it at once (no leader may be left to serve the queue).
    poisoned: Option<Arc<Error>>,
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
        if let Some(joined) = self.enter(w, ask, || Member::new(Arc::clone(w), ask)) {
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
        self.enter(w, ask, || Member::for_task(Arc::clone(w), ask))
    }

    /// Lead at once, fail at once, or queue (`None`) as `member()`.
    fn enter(&self, w: &Arc<Writer>, ask: Ask, member: impl FnOnce() -> Member) -> Option<Joined> {
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
        match q.waiting.iter().position(|m| Arc::ptr_eq(&m.writer, w)) {
            Some(i) => {
                q.waiting.remove(i);
                true
            }
            None => false,
        }
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
    /// leader's decides how the group meets a stall).
    pub fn take_group(&self, leader: Member, max_group_bytes: usize, group: &mut Vec<Member>) {
        debug_assert!(group.is_empty());
        let lead = leader.ask;
        // A small leader caps the group near its own size, so a tiny
        // write does not wait for a megabyte of others.
        let cap = if lead.bytes <= SMALL_LEADER_BYTES {
            max_group_bytes.min(lead.bytes + SMALL_LEADER_BYTES)
        } else {
            max_group_bytes
        };
        group.push(leader);
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
        let (fail, keep): (Vec<_>, Vec<_>) = q.waiting.drain(..).partition(|m| m.ask.no_slowdown);
        q.waiting = keep.into();
        fail
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
            std::mem::take(&mut q.waiting)
        };
        for m in waiting {
            m.fail(Error::Background(Arc::clone(error)));
        }
    }

    /// The error a writer's panic poisoned the queue with, if one did.
    pub fn poisoned(&self) -> Option<Arc<Error>> {
        self.state.lock().poisoned.clone()
    }

    /// Pass leadership to the next queued writer, or mark none active.
    pub fn hand_off(&self) {
        let next = {
            let mut q = self.state.lock();
            let next = q.waiting.pop_front();
            if next.is_none() {
                q.leader_active = false;
            }
            next
        };
        if let Some(m) = next {
            m.set(WriterState::Leading);
        }
    }
}
