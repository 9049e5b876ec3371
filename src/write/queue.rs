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

use crate::batch::WriteBatch;
use crate::error::Error;
use crate::options::WriteOptions;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::Thread;

use super::backoff::Backoff;
use super::group::Group;

const WAITING: u8 = 0;
const LEADER: u8 = 1;
const ASSIGNED: u8 = 2;
const FAILED: u8 = 3;
const DONE: u8 = 4;

/// What a writer hands to the queue and gets back. Reused through the
/// batch pool, so a steady stream of writes allocates nothing here.
pub(crate) struct Request {
    pub batch: WriteBatch,
    pub opts: WriteOptions,
    /// Set by the leader: the writer's group and its first sequence number.
    pub assignment: Option<(Arc<Group>, u64)>,
    /// The batch is in the memtable. Whoever holds this request's lock and
    /// finds it false may insert it: the writer itself, or its leader
    /// helping while the writer has not woken up yet.
    pub inserted: bool,
    pub error: Option<Error>,
}

/// One writer's slot in the queue.
///
/// `members` is the list this writer fills when it leads a group, kept
/// with the slot so leading allocates nothing; it is emptied before the
/// lead ends (it holds other writers' slots).
pub(crate) struct Writer {
    pub request: Mutex<Request>,
    pub members: Mutex<Vec<Arc<Writer>>>,
    state: AtomicU8,
    thread: Mutex<Option<Thread>>,
}

/// What a writer became after waiting in the queue.
pub(crate) enum Role {
    /// Lead a group.
    Leader,
    /// Sequenced: insert your own batch.
    Assigned,
    /// Your leader inserted and published your write.
    Done,
    /// Your leader failed your write; the error is in the request.
    Failed,
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            request: Mutex::new(Request {
                batch: WriteBatch::new(),
                opts: WriteOptions::default(),
                assignment: None,
                inserted: false,
                error: None,
            }),
            members: Mutex::new(Vec::new()),
            state: AtomicU8::new(WAITING),
            thread: Mutex::new(None),
        }
    }

    fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        if let Some(t) = self.thread.lock().as_ref() {
            t.unpark();
        }
    }

    /// Wake this writer as the new leader.
    pub fn make_leader(&self) {
        self.set_state(LEADER);
    }

    /// Hand this writer its place in a sequenced group.
    pub fn assign(&self, group: Arc<Group>, first_seq: u64) {
        {
            let mut r = self.request.lock();
            r.assignment = Some((group, first_seq));
            r.inserted = false;
        }
        self.set_state(ASSIGNED);
    }

    /// Tell this writer its write is inserted and visible (its leader did
    /// the work).
    pub fn done(&self) {
        self.set_state(DONE);
    }

    /// Fail this writer with `error`.
    pub fn fail(&self, error: Error) {
        self.request.lock().error = Some(error);
        self.set_state(FAILED);
    }

    /// Fail this writer if it still waits for its leader. Used by a leader
    /// that panicked: only it changes its members' states, so one still
    /// waiting was not released and must not wait forever.
    pub fn fail_if_waiting(&self, error: Error) {
        if self.state.load(Ordering::Acquire) == WAITING {
            self.fail(error);
        }
    }

    /// Wait until the leader assigns, fails or promotes this writer.
    fn wait(&self, mut backoff: Backoff) -> Role {
        loop {
            match self.state.load(Ordering::Acquire) {
                LEADER => return Role::Leader,
                ASSIGNED => return Role::Assigned,
                DONE => return Role::Done,
                FAILED => return Role::Failed,
                _ => {}
            }
            if !backoff.snooze() {
                // `set_state` stores before it unparks, and park returns at
                // once if an unpark came first: no lost wakeup.
                std::thread::park();
            }
        }
    }
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Arc<Writer>>,
    leader_active: bool,
    /// The leader is waiting out a write stall (`begin_stall`).
    stalled: bool,
    /// Set when a writer panicked: every writer joining from then on
    /// fails with it at once (no leader may be left to serve the queue).
    poisoned: Option<Arc<Error>>,
}

#[derive(Default)]
pub(crate) struct WriteQueue {
    state: Mutex<QueueState>,
}

impl WriteQueue {
    /// Join the queue; returns when this writer leads, is assigned to a
    /// group, or has failed (at once, with `WriteStall`, for a
    /// `no_slowdown` writer arriving during a stall).
    pub fn join(&self, w: &Arc<Writer>, backoff: Backoff) -> Role {
        w.state.store(WAITING, Ordering::Relaxed);
        {
            let mut q = self.state.lock();
            if let Some(e) = &q.poisoned {
                w.request.lock().error = Some(Error::Background(Arc::clone(e)));
                return Role::Failed;
            }
            if !q.leader_active {
                q.leader_active = true;
                return Role::Leader;
            }
            if q.stalled {
                let mut r = w.request.lock();
                if r.opts.no_slowdown {
                    r.error = Some(Error::WriteStall);
                    return Role::Failed;
                }
            }
            *w.thread.lock() = Some(std::thread::current());
            q.waiting.push_back(Arc::clone(w));
        }
        w.wait(backoff)
    }

    /// The leader takes its group: itself, then queued writers in order
    /// while they fit under the byte cap and share the leader's WAL
    /// setting (a group is one WAL record, or none: a logged write in a
    /// `disable_wal` group would be acknowledged unlogged) and its
    /// `no_slowdown` setting (the leader's decides how the group meets a
    /// stall).
    /// `group` is the leader's reusable list; it must be empty.
    pub fn take_group(
        &self,
        leader: &Arc<Writer>,
        max_group_bytes: usize,
        group: &mut Vec<Arc<Writer>>,
    ) {
        debug_assert!(group.is_empty());
        let (leader_bytes, leader_disable_wal, leader_no_slowdown) = {
            let r = leader.request.lock();
            (
                r.batch.encoded_size(),
                r.opts.disable_wal,
                r.opts.no_slowdown,
            )
        };
        // LevelDB's rule: a small leader caps the group near its own size,
        // so a tiny write does not wait for a megabyte of others.
        let cap = if leader_bytes <= 128 << 10 {
            max_group_bytes.min(leader_bytes + (128 << 10))
        } else {
            max_group_bytes
        };
        group.push(Arc::clone(leader));
        let mut bytes = leader_bytes;
        let mut q = self.state.lock();
        while let Some(next) = q.waiting.front() {
            let (size, disable_wal, no_slowdown) = {
                let r = next.request.lock();
                (
                    r.batch.encoded_size(),
                    r.opts.disable_wal,
                    r.opts.no_slowdown,
                )
            };
            // An empty batch is a control writer (e.g. a manual flush):
            // it must lead, never ride along.
            if size == crate::batch::HEADER_LEN
                || disable_wal != leader_disable_wal
                || no_slowdown != leader_no_slowdown
                || bytes + size > cap
            {
                break;
            }
            bytes += size;
            if let Some(w) = q.waiting.pop_front() {
                group.push(w);
            }
        }
    }

    /// Remove and return the queued writers that asked not to wait for a
    /// write stall (they fail with `WriteStall` instead).
    pub fn take_no_slowdown(&self) -> Vec<Arc<Writer>> {
        let mut q = self.state.lock();
        Self::drain_no_slowdown(&mut q)
    }

    /// The leader is about to wait out a write stall: until `end_stall`,
    /// a `no_slowdown` writer that joins fails at once. Returns the ones
    /// already queued, for the caller to fail. Marking and draining under
    /// one lock leaves no gap for a writer to join unseen by both.
    pub fn begin_stall(&self) -> Vec<Arc<Writer>> {
        let mut q = self.state.lock();
        q.stalled = true;
        Self::drain_no_slowdown(&mut q)
    }

    /// The stall the leader waited for is over (or its wait failed).
    pub fn end_stall(&self) {
        self.state.lock().stalled = false;
    }

    fn drain_no_slowdown(q: &mut QueueState) -> Vec<Arc<Writer>> {
        let (fail, keep): (Vec<_>, Vec<_>) = q
            .waiting
            .drain(..)
            .partition(|w| w.request.lock().opts.no_slowdown);
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
        for w in waiting {
            w.fail(Error::Background(Arc::clone(error)));
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
        if let Some(w) = next {
            w.make_leader();
        }
    }
}
