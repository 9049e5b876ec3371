//! Loom models of the handoff that replaced the striped rotation lock. A
//! rotation does not wait for inserts in flight: it seals the memtable at
//! the last sequence number given to it (`MemTable::seal`), and the flush
//! that reads the whole memtable waits until that number is published; a
//! resume, which writes every memtable out, waits until no group is still
//! inserting (`Publisher::wait_inserted`).
//!
//! The real code runs: `Group::inserted`, the `Publisher` (register,
//! complete, hold back, wake, both waits) and `MemTable::seal`, on loom's
//! atomics, mutex and park (`sync.rs`), under every interleaving and every
//! value the memory model lets a load read. Two things stand in. A batch's
//! insert into the skiplist is an access to a loom cell of its own (the
//! skiplist's own concurrency is crossbeam's), and reading the memtable is
//! an access to every cell: loom reports two accesses with no
//! happens-before between them, so a flush or resume that could miss an
//! insert fails the model. A writer's steps are those of
//! `CommitPipeline::insert` and `complete`: insert, count the insert
//! (`Group::inserted`), and the group's last insert completes it, or holds
//! it back when the group's record failed to reach the WAL. A park has no
//! timeout under loom, so a lost wake-up is a deadlock loom reports.
//!
//! The rotation and the flush run on one thread: in the engine the flush
//! thread finds the sealed memtable through the super version, a
//! release/acquire handoff that adds nothing for loom to explore.
//!
//! Run (docs/testing.md):
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --profile checked --lib write::handoff_model`

use super::backoff::Backoff;
use super::group::Group;
use super::publish::Publisher;
use crate::error::Error;
use crate::memtable::{ActiveMemTables, MemTable};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use std::sync::Arc;
use strata_sstable::SeqNo;

/// A batch's entries in the memtable: written by its insert, read by
/// whoever reads the whole memtable.
#[derive(Default)]
struct Batch(UnsafeCell<()>);

/// The background error, as the waits' `stop` sees it.
#[derive(Default)]
struct BackgroundError(AtomicBool);

impl BackgroundError {
    /// Record it, then wake the publisher's waiters: `set_bg_error`'s
    /// order.
    fn set(&self, publisher: &Publisher) {
        self.0.store(true, Ordering::Release);
        publisher.wake_all();
    }

    fn stop(&self) -> Option<Error> {
        self.0.load(Ordering::Acquire).then_some(Error::Closed)
    }
}

/// How a group's record fared in the WAL.
#[derive(Clone, Copy, PartialEq)]
enum Log {
    Written,
    /// The append failed: the background error is recorded and the group
    /// is held back.
    Failed,
}

/// One writer: insert its batch; the group's last insert completes it.
fn insert(publisher: &Publisher, group: &Group, batch: &Batch, log: Log, bg: &BackgroundError) {
    batch.0.with_mut(|_| ());
    if group.inserted() {
        match log {
            Log::Written => publisher.complete(group.id),
            Log::Failed => {
                bg.set(publisher);
                publisher.hold_back(group.id);
            }
        }
    }
}

/// A flush of the sealed memtable: wait until its sealed number is
/// published, then read it all.
fn flush(
    publisher: &Publisher,
    mem: &MemTable,
    batches: &[Arc<Batch>],
    bg: &BackgroundError,
) -> crate::Result<()> {
    let sealed = mem.sealed_seq().expect("flushed after its rotation");
    publisher.wait_visible(sealed, Backoff::park_at_once(), || bg.stop())?;
    for b in batches {
        b.0.with(|_| ());
    }
    Ok(())
}

/// The leader's part: register a group ending at `last_seq` into `mem`,
/// with `inserts` inserts to come.
fn sequence(
    publisher: &Publisher,
    mem: &Arc<MemTable>,
    last_seq: SeqNo,
    inserts: usize,
) -> Arc<Group> {
    let id = publisher.register(last_seq);
    let mems = Arc::new(ActiveMemTables::single(Arc::clone(mem)));
    Arc::new(Group::new(id, last_seq, mems, None, inserts))
}

struct Writes {
    publisher: Arc<Publisher>,
    mem: Arc<MemTable>,
    bg: Arc<BackgroundError>,
    batches: Vec<Arc<Batch>>,
    writers: Vec<thread::JoinHandle<()>>,
}

impl Writes {
    fn new() -> Self {
        Writes {
            publisher: Arc::new(Publisher::new(0)),
            mem: Arc::new(MemTable::unfiltered(1, 0)),
            bg: Arc::default(),
            batches: Vec::new(),
            writers: Vec::new(),
        }
    }

    /// Start a writer inserting its batch into `group`.
    fn spawn(&mut self, group: &Arc<Group>, log: Log) {
        let batch = Arc::new(Batch::default());
        self.batches.push(Arc::clone(&batch));
        let (publisher, group, bg) = (
            Arc::clone(&self.publisher),
            Arc::clone(group),
            Arc::clone(&self.bg),
        );
        self.writers.push(thread::spawn(move || {
            insert(&publisher, &group, &batch, log, &bg);
        }));
    }

    fn join(self) {
        for w in self.writers {
            w.join().expect("writer");
        }
    }
}

/// A group of two members inserting their own batches concurrently,
/// sealed by a rotation meanwhile: its flush reads both batches, whichever
/// member inserts last.
#[test]
fn a_flush_reads_every_insert_of_a_group_sealed_while_its_members_insert() {
    loom::model(|| {
        let mut w = Writes::new();
        let group = sequence(&w.publisher, &w.mem, 2, 2);
        w.spawn(&group, Log::Written);
        w.spawn(&group, Log::Written);
        w.mem.seal(2);
        flush(&w.publisher, &w.mem, &w.batches, &w.bg).expect("published");
        w.join();
    });
}

/// Two groups in the sealed memtable finishing in either order: the
/// sealed number is published only after both have inserted.
#[test]
fn a_flush_waits_for_an_earlier_group_that_finishes_last() {
    loom::model(|| {
        let mut w = Writes::new();
        let first = sequence(&w.publisher, &w.mem, 1, 1);
        let second = sequence(&w.publisher, &w.mem, 2, 1);
        w.spawn(&first, Log::Written);
        w.spawn(&second, Log::Written);
        w.mem.seal(2);
        flush(&w.publisher, &w.mem, &w.batches, &w.bg).expect("published");
        w.join();
    });
}

/// A reader takes the published number (`Db::get`, a snapshot) without
/// the publisher's lock: once it sees a group's number, it sees the
/// group's insert.
#[test]
fn a_reader_that_sees_a_number_published_sees_its_insert() {
    loom::model(|| {
        let mut w = Writes::new();
        let group = sequence(&w.publisher, &w.mem, 1, 1);
        w.spawn(&group, Log::Written);
        if w.publisher.visible() >= 1 {
            w.batches[0].0.with(|_| ());
        }
        w.join();
    });
}

/// A group whose record failed to reach the WAL is held back, never
/// published: the flush waiting for it ends with the background error
/// instead of waiting forever.
#[test]
fn a_flush_waiting_for_a_held_back_group_ends_with_the_error() {
    loom::model(|| {
        let mut w = Writes::new();
        let group = sequence(&w.publisher, &w.mem, 1, 1);
        w.spawn(&group, Log::Failed);
        w.mem.seal(1);
        let flushed = flush(&w.publisher, &w.mem, &w.batches, &w.bg);
        assert!(matches!(flushed, Err(Error::Closed)), "{flushed:?}");
        w.join();
    });
}

/// A resume (leading the write queue: no group is sequenced meanwhile)
/// waits until every group sequenced has inserted, published or held
/// back, then reads every memtable: it sees every insert.
#[test]
fn a_resume_reads_every_insert_of_the_groups_sequenced_before_it() {
    let mut builder = loom::model::Builder::new();
    // Three threads: bound the preemptions so the model takes seconds
    // (loom's docs: bugs rarely need more than two or three).
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let mut w = Writes::new();
        let held_back = sequence(&w.publisher, &w.mem, 1, 1);
        let published = sequence(&w.publisher, &w.mem, 2, 1);
        w.spawn(&held_back, Log::Failed);
        w.spawn(&published, Log::Written);
        w.publisher
            .wait_inserted(|| None)
            .expect("no writer panicked");
        for b in &w.batches {
            b.0.with(|_| ());
        }
        w.publisher.publish_all();
        assert_eq!(w.publisher.visible(), 2);
        w.join();
    });
}

/// A writer that panicked mid-insert never finishes its group: the panic
/// poisons the queue and wakes the resume waiting for inserts, which then
/// fails instead of waiting forever.
#[test]
fn a_resume_waiting_for_inserts_stops_when_a_writer_panics() {
    loom::model(|| {
        let publisher = Arc::new(Publisher::new(0));
        let mem = Arc::new(MemTable::unfiltered(1, 0));
        let _group = sequence(&publisher, &mem, 1, 1);
        let poisoned = Arc::new(BackgroundError::default());
        let writer = {
            let (publisher, poisoned) = (Arc::clone(&publisher), Arc::clone(&poisoned));
            // `CommitPipeline::panicked`: poison the queue, then wake.
            thread::spawn(move || poisoned.set(&publisher))
        };
        let waited = publisher.wait_inserted(|| poisoned.stop());
        assert!(matches!(waited, Err(Error::Closed)), "{waited:?}");
        writer.join().expect("writer");
    });
}
