//! A writer's slot in the commit pipeline, and the states it passes
//! through.
//!
//! ```text
//!            join                     leader takes it into its group
//!   ---> Queued ------------------+-----------------+-----------------+
//!          |                      |                 |                 |
//!          | promoted by          v                 v                 v
//!          | the last leader  Sequenced         Committed          Failed
//!          v                  (insert your      (a small group:    (the error
//!       Leading               batch, wait)      the leader did     is in the
//!       (form the next                          everything)        slot)
//!        group)
//! ```
//!
//! A writer waits in `Queued` (spinning, yielding, then parked) and leaves
//! it only when another thread sets one of the other states: the leader
//! that took it into a group, the leader handing leadership on, a leader
//! failing it at a write stall, or a panic poisoning the queue. Only the
//! thread that took the writer out of `Queued` sets its next state, once.
//! One exception: an async writer's `Leading`, while its task has not
//! taken up the lead (not yet polled, or parked in a write stall), may be
//! taken back to `Queued`, under the queue's lock, by a blocking writer
//! that leads its group in its place (`proxy.rs`); the task learns it
//! when it claims the lead (`WriteQueue::claim_lead`).
//!
//! The slot's batch is behind a mutex, but what the pipeline decides by
//! (the batch's size and record count, the write options) is copied into
//! an [`Ask`] when the writer joins, so grouping and sequencing read no
//! batch.

use super::backoff::Backoff;
use super::group::Group;
use super::waker_slot::WakerSlot;
use crate::batch::WriteBatch;
use crate::error::Error;
use crate::lock_order::{Level, Mutex};
use crate::options::WriteOptions;
use crate::txn::{Certificate, Footprint};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use strata_sstable::SeqNo;

/// Where a writer is in the pipeline (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WriterState {
    /// Waiting in the queue for a leader to take it, or to lead.
    Queued = 0,
    /// Promoted: it leads the next group.
    Leading = 1,
    /// In a sequenced group: insert your batch (unless your leader already
    /// has), then wait for your write to be durable and visible.
    Sequenced = 2,
    /// Your leader inserted, logged and published your write.
    Committed = 3,
    /// Your write failed; the error is in the slot.
    Failed = 4,
}

impl WriterState {
    fn from_u8(v: u8) -> WriterState {
        match v {
            1 => WriterState::Leading,
            2 => WriterState::Sequenced,
            3 => WriterState::Committed,
            4 => WriterState::Failed,
            _ => WriterState::Queued,
        }
    }
}

/// What a writer asks of the pipeline: fixed from the moment it joins,
/// read by its leader without touching its batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ask {
    /// The batch's encoded size.
    pub bytes: usize,
    /// Its records (sequence numbers it takes).
    pub count: u32,
    pub sync: bool,
    pub disable_wal: bool,
    pub no_slowdown: bool,
    /// The slot holds the batch's footprint for the transaction oracle
    /// (`txn/oracle.rs`): a transaction's, or a plain write's while a
    /// transaction is live.
    pub footprint: bool,
    /// The slot holds a transaction's certificate: the leader certifies
    /// it before numbering the group, and voids the write if it fails.
    pub certify: bool,
    /// A control writer's (a manual flush, a resume): it must lead, never
    /// ride along. Said outright, not read off `count == 0`: a voided
    /// transaction also counts no records, yet rides in its group.
    pub control: bool,
}

impl Ask {
    pub fn new(batch: &WriteBatch, opts: &WriteOptions) -> Ask {
        Ask {
            bytes: batch.encoded_size(),
            count: batch.count(),
            sync: opts.sync,
            disable_wal: opts.disable_wal,
            no_slowdown: opts.no_slowdown,
            footprint: false,
            certify: false,
            control: false,
        }
    }

    /// A control writer's (a manual flush, a resume): no batch, options by
    /// default. It leads or fails; it never rides in a group.
    pub fn control() -> Ask {
        Ask {
            bytes: crate::batch::HEADER_LEN,
            count: 0,
            sync: false,
            disable_wal: false,
            no_slowdown: false,
            footprint: false,
            certify: false,
            control: true,
        }
    }

    /// A control writer's ask: it must lead, never ride along.
    pub fn is_control(&self) -> bool {
        self.control
    }

    /// A transaction that failed certification: its batch is emptied, so
    /// it asks for no records and no bytes past the header; it still
    /// rides in its group to learn its verdict.
    pub fn void(&mut self) {
        self.bytes = crate::batch::HEADER_LEN;
        self.count = 0;
    }
}

/// Where a sequenced writer's batch goes.
pub(crate) struct Assignment {
    pub group: Arc<Group>,
    /// The sequence number of the batch's first record.
    pub first_seq: SeqNo,
}

/// The writer's batch and what its leader tells it.
pub(crate) struct Slot {
    pub batch: WriteBatch,
    /// Set by the leader of a group whose members insert their own
    /// batches.
    pub assignment: Option<Assignment>,
    /// The batch is in the memtable. Whoever holds this slot's lock and
    /// finds it false (with an assignment) may insert it: the writer
    /// itself, or its leader helping while the writer has not woken yet.
    pub inserted: bool,
    /// Why the write failed, set with [`WriterState::Failed`].
    pub error: Option<Error>,
    /// The batch's keys for the transaction oracle ([`Ask::footprint`]),
    /// taken by the leader.
    pub footprint: Option<Footprint>,
    /// A transaction's certificate ([`Ask::certify`]); the leader writes
    /// its verdict in it.
    pub certificate: Option<Box<Certificate>>,
}

/// A writer's slot. Reused through the pool, so a steady stream of writes
/// allocates nothing here.
pub(crate) struct Writer {
    pub slot: Mutex<Slot>,
    /// The group this writer leads, when it leads one: the members with
    /// what they ask, itself first. Kept with the slot so leading
    /// allocates nothing; emptied before the write ends (it holds other
    /// writers' slots).
    pub members: Mutex<Vec<Member>>,
    state: AtomicU8,
    /// The task to wake when an async writer (`async_write.rs`) leaves
    /// `Queued`: it registers its waker here before each look at the state.
    pub task: WakerSlot,
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            slot: Mutex::new(
                Level::WriterSlot,
                Slot {
                    batch: WriteBatch::new(),
                    assignment: None,
                    inserted: false,
                    error: None,
                    footprint: None,
                    certificate: None,
                },
            ),
            members: Mutex::new(Level::WriterMembers, Vec::new()),
            state: AtomicU8::new(WriterState::Queued as u8),
            task: WakerSlot::default(),
        }
    }

    pub fn state(&self) -> WriterState {
        WriterState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Enter the queue (or lead at once: `Leading`).
    pub fn reset(&self, state: WriterState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// Wait until another thread moves this writer out of `Queued`.
    pub fn wait(&self, mut backoff: Backoff) -> WriterState {
        loop {
            let state = self.state();
            if state != WriterState::Queued {
                return state;
            }
            if !backoff.snooze() {
                // `Member::set` stores before it unparks, and park returns
                // at once if an unpark came first: no lost wake-up.
                std::thread::park();
            }
        }
    }

    /// The error a failed writer was given.
    pub fn take_error(&self) -> Error {
        self.slot.lock().error.take().unwrap_or(Error::Closed)
    }
}

/// Who waits for a writer's state to change.
#[derive(Clone)]
enum Waiter {
    /// A thread in the blocking API, parked in [`Writer::wait`].
    Thread(Thread),
    /// An async writer's task, through its [`Writer::task`] slot.
    Task,
}

/// A writer as the queue and its leader hold it: the slot, what it asks,
/// and who to wake.
#[derive(Clone)]
pub(crate) struct Member {
    pub writer: Arc<Writer>,
    pub ask: Ask,
    waiter: Waiter,
}

impl Member {
    /// A writer whose thread waits (the blocking API).
    pub fn new(writer: Arc<Writer>, ask: Ask) -> Member {
        Member {
            writer,
            ask,
            waiter: Waiter::Thread(std::thread::current()),
        }
    }

    /// A writer whose task waits (the async API): woken through its slot.
    pub fn for_task(writer: Arc<Writer>, ask: Ask) -> Member {
        Member {
            writer,
            ask,
            waiter: Waiter::Task,
        }
    }

    /// Move the writer out of `Queued` and wake it. REQUIRES: it is
    /// `Queued`, and the caller took it out of the queue (only one thread
    /// may decide its next state).
    pub fn set(&self, state: WriterState) {
        self.mark(state);
        self.wake();
    }

    /// [`set`](Self::set)'s first half: the new state, stored (under the
    /// queue's lock when the queue may take it back, see
    /// `WriteQueue::hand_off`), and woken later with [`wake`](Self::wake).
    pub fn mark(&self, state: WriterState) {
        debug_assert_ne!(state, WriterState::Queued);
        self.writer.state.store(state as u8, Ordering::Release);
    }

    /// Wake whoever waits for this writer to move on.
    pub fn wake(&self) {
        match &self.waiter {
            Waiter::Thread(thread) => thread.unpark(),
            Waiter::Task => self.writer.task.wake(),
        }
    }

    /// An async writer's (its task waits, not a thread).
    pub fn is_task(&self) -> bool {
        matches!(self.waiter, Waiter::Task)
    }

    /// Give the writer its place in `group` and wake it to insert.
    pub fn assign(&self, group: &Arc<Group>, first_seq: SeqNo) {
        {
            let mut slot = self.writer.slot.lock();
            slot.assignment = Some(Assignment {
                group: Arc::clone(group),
                first_seq,
            });
            slot.inserted = false;
        }
        self.set(WriterState::Sequenced);
    }

    /// Fail the writer with `error` and wake it.
    pub fn fail(&self, error: Error) {
        self.writer.slot.lock().error = Some(error);
        self.set(WriterState::Failed);
    }

    /// Fail the writer if it still waits in `Queued`. Used by a leader
    /// that panicked: it alone decides its members' states, so one still
    /// queued was not released and must not wait forever.
    pub fn fail_if_queued(&self, error: Error) {
        if self.writer.state() == WriterState::Queued {
            self.fail(error);
        }
    }
}
