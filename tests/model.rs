//! Model test: random operation sequences against strata and a `BTreeMap`,
//! including range and prefix deletes and merges (alone and in batches;
//! the operator appends, so an operand out of turn shows), snapshots
//! (each with its own copy of the model), flushes and reopens. Any
//! divergence fails with the shrunk sequence. Every keyspace has a
//! compaction filter whose decisions readers cannot tell apart from the
//! values left as they were (`common/filter.rs`): the model holds values
//! as the application means them, and reads are normalised the same way.
//! Puts with a time to live run on a clock only the driver moves
//! (`Op::Advance`); the model drops what expired at each move (in every
//! snapshot's copy too: expiry goes by the clock), keeping the merge
//! operands written on top of an expired value.
//! The change feed is read against the log of committed writes
//! (`common/feed_log.rs`: exact numbers and records, disable_wal holes,
//! ingestions as gaps of exactly their numbers, a cursor that pins
//! WALs), and a read-only open (or a refresh of one kept across
//! reopens) holds exactly what the model does once the writes are in
//! the WAL file.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::ack_log::{apply, AckLog, Model, WriteOp};
use common::feed_log::{visible, FeedLog, Rec, RecKind, Took};
use common::filter::{mark_filter, norm, norm_entries, MarkAwareAppend};
use common::keyspaces::KEYSPACES;
use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use strata::fs::MemFileSystem;
use strata::{Clock, Db, Error, Keyspace, ManualClock, Options, WriteBatch};

/// How a batch is written. Every kind must be readable at once and survive
/// a clean close (`Reopen`): unlogged writes too, which the close flushes.
#[derive(Debug, Clone, Copy)]
enum WriteMode {
    Default,
    Sync,
    DisableWal,
}

impl WriteMode {
    fn options(self) -> strata::WriteOptions {
        strata::WriteOptions {
            sync: matches!(self, WriteMode::Sync),
            disable_wal: matches!(self, WriteMode::DisableWal),
            ..Default::default()
        }
    }
}

/// Each operation names the keyspace it works on: an index into
/// [`KEYSPACES`] (0 is the default keyspace; the others are created on
/// first use, and `DropKeyspace` drops one, which a later use re-creates
/// empty).
#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8, u16),
    /// `put_with_ttl` for this many seconds.
    PutTtl(u8, u8, u16, u8),
    /// Move the clock this many seconds.
    Advance(u8),
    Delete(u8, u8),
    /// `merge` of [`operand`]`(n)` (every keyspace appends with `,`).
    Merge(u8, u8, u16),
    /// `delete_range(k(a)..k(b))`: `a > b` is an invalid argument that
    /// changes nothing, `a == b` an empty range; `b` = [`NO_END`] is
    /// `k(a)..`.
    DeleteRange(u8, u8, u8),
    /// `delete_prefix` of [`prefix`]`(p)`.
    DeletePrefix(u8, u8),
    /// A batch across keyspaces, written as the `WriteMode` says.
    Batch(Vec<BatchItem>, WriteMode),
    /// Move a key's value from one keyspace to another in one batch.
    Move(u8, u8, u8),
    Get(u8, u8),
    Range(u8, u8, u8, bool),
    Prefix(u8, u8, bool),
    TakeSnapshot,
    SnapshotGet(usize, u8, u8),
    SnapshotScan(usize, u8, bool),
    DropSnapshot(usize),
    Cursor(u8, u8, bool),
    Flush(u8),
    FlushAll,
    CompactRange(u8, u8, u8),
    WaitForCompactions,
    DropKeyspace(u8),
    Reopen,
    /// A checkpoint (through the stream with `true`, else to a
    /// directory), opened beside the database: every keyspace in it
    /// holds exactly what the model does.
    Checkpoint(bool),
    /// A table built with `SstWriter` from `(key, kind, n)` entries (kind
    /// 0 a put, 1 a delete, 2 a merge; sorted and deduplicated by key
    /// first) and, with `.3 = Some((a, b))`, a range delete `[a, b)`
    /// (`b` = [`NO_END`]: `delete_range_from(a)`; `a >= b` is refused and
    /// left out), ingested into the keyspace, moved or copied. The range
    /// delete hides what the keyspace held, not the table's own entries.
    Ingest(u8, Vec<(u8, u8, u16)>, bool, Option<(u8, u8)>),
    /// A transaction: its steps (writes, reads and scans of its own view,
    /// savepoints), then, with `.1`, a plain put of the first key it wrote
    /// (which must make its commit a conflict), and a commit (`.2`) or a
    /// drop.
    Transaction(Vec<TxStep>, bool, bool),
    /// Read the change feed from a position the log picks (`.0`), after
    /// syncing the WAL with `.1` (then it must show every write).
    Feed(usize, bool),
    /// Create the cursor `model`, or acknowledge a write the log picks.
    FeedAck(usize),
    /// Open the database read-only beside the writer (or, with `true`,
    /// refresh the reader kept from before): it holds what the model does.
    ReadOnly(bool),
}

/// One step of an `Op::Transaction`.
#[derive(Debug, Clone)]
enum TxStep {
    Write(BatchItem),
    Get(u8, u8),
    Scan(u8, u8, u8, bool),
    /// A cursor over keyspace `.0` walks `[.1, .2)` (either order) one way
    /// (backward with `.3`) and then, turning, back the other way.
    Cursor(u8, u8, u8, bool),
    SetSavepoint,
    RollbackToSavepoint,
}

/// One record of an `Op::Batch`, in keyspace `.0`.
#[derive(Debug, Clone)]
enum BatchItem {
    Put(u8, u8, u16),
    Delete(u8, u8),
    Merge(u8, u8, u16),
    /// As `Op::DeleteRange`; an inverted one fails the whole batch.
    DeleteRange(u8, u8, u8),
}

/// `Op::DeleteRange`'s end meaning no end.
const NO_END: u8 = 255;

/// The range `Op::DeleteRange(_, a, b)` deletes, in the model's terms:
/// `Err` for an inverted range.
fn range_op(a: u8, b: u8) -> Result<WriteOp, ()> {
    match b {
        NO_END => Ok(WriteOp::DeleteRange(k(a), None)),
        b if a <= b => Ok(WriteOp::DeleteRange(k(a), Some(k(b)))),
        _ => Err(()),
    }
}

/// Add `Op::DeleteRange(_, a, b)` to a batch.
fn add_range(batch: &mut WriteBatch, ks: &Keyspace, a: u8, b: u8) {
    match b {
        NO_END => batch.delete_range_in(ks, k(a)..),
        b => batch.delete_range_in(ks, k(a)..k(b)),
    }
}

/// The prefix `Op::DeletePrefix` deletes: one letter (the keys of a
/// group of eight) for `p < 5`, a whole key for `5 <= p < 45` (its
/// successor ends in a byte the key space never uses), every key for the
/// empty prefix otherwise.
fn prefix(p: u8) -> Vec<u8> {
    match p {
        0..5 => vec![b'a' + p],
        5..45 => k(p - 5),
        _ => Vec::new(),
    }
}

/// Keys from a small space so operations collide; two-byte keys make
/// prefixes meaningful.
fn k(i: u8) -> Vec<u8> {
    vec![b'a' + i / 8, b'0' + i % 8]
}

fn v(key: u8, n: u16) -> Vec<u8> {
    // Values of varied length, some spanning restart and block boundaries;
    // one in eight the filter removes, one in eight it upper-cases.
    let mark = match n % 8 {
        0 => "#",
        1 => "^",
        _ => "",
    };
    let mut out = format!("{mark}{key}:{n}:").into_bytes();
    out.resize(8 + (n as usize % 7) * 40, b'v');
    out
}

/// The model's put: the value as the application means it.
fn put_into(model: &mut Model, key: Vec<u8>, value: &[u8]) {
    match norm(value) {
        Some(value) => model.insert(key, value),
        None => model.remove(&key),
    };
}

/// A merge operand: short, so merged values stay readable.
fn operand(n: u16) -> Vec<u8> {
    format!("{}", n % 100).into_bytes()
}

/// The model's merge: what `Append` with `,` makes of `key`'s value.
fn merge_into(model: &mut Model, key: Vec<u8>, operand: Vec<u8>) {
    match model.get_mut(&key) {
        Some(value) => {
            value.push(b',');
            value.extend_from_slice(&operand);
        }
        None => {
            model.insert(key, operand);
        }
    }
}

/// The options every keyspace of the model test has: the in-memory
/// database's, with an appending merge operator and the marks' filter.
fn merge_options(fs: &MemFileSystem) -> Options {
    Options {
        merge_operator: Some(Arc::new(MarkAwareAppend)),
        compaction_filter_factory: Some(mark_filter()),
        // The table writers' writeback pacing runs several times a table
        // (on this filesystem a writeback is a flush).
        bytes_per_sync: 4 << 10,
        ..mem_options(fs)
    }
}

/// The options of keyspace `name`: `ks2` keeps values of 4 bytes or more
/// in blob files (docs/design/blob-files.md), the others inline.
fn keyspace_options_of(fs: &MemFileSystem, name: &str) -> strata::KeyspaceOptions {
    strata::KeyspaceOptions {
        enable_blob_files: name == "ks2",
        min_blob_size: 4,
        ..merge_options(fs).keyspace_options()
    }
}

/// `options` on `clock`.
fn clocked(options: Options, clock: &Arc<ManualClock>) -> Options {
    Options {
        clock: Arc::clone(clock) as Arc<dyn strata::Clock>,
        ..options
    }
}

/// A keyspace: the default one as often as the three others together.
fn keyspace() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)]
}

/// The end of a range delete: mostly a key near any start, now and then
/// no end.
fn range_end() -> impl Strategy<Value = u8> {
    prop_oneof![8 => 0u8..40, 1 => Just(NO_END)]
}

fn batch_item() -> impl Strategy<Value = BatchItem> {
    let key = 0u8..40;
    prop_oneof![
        6 => (keyspace(), key.clone(), any::<u16>()).prop_map(|(s, a, n)| BatchItem::Put(s, a, n)),
        2 => (keyspace(), key.clone()).prop_map(|(s, a)| BatchItem::Delete(s, a)),
        2 => (keyspace(), key.clone(), any::<u16>()).prop_map(|(s, a, n)| BatchItem::Merge(s, a, n)),
        1 => (keyspace(), key, range_end()).prop_map(|(s, a, b)| BatchItem::DeleteRange(s, a, b)),
    ]
}

fn tx_step() -> impl Strategy<Value = TxStep> {
    let ks = keyspace;
    prop_oneof![
        6 => batch_item().prop_map(TxStep::Write),
        3 => (ks(), 0u8..40).prop_map(|(s, a)| TxStep::Get(s, a)),
        2 => (ks(), 0u8..40, 0u8..40, any::<bool>()).prop_map(|(s, a, b, r)| TxStep::Scan(s, a, b, r)),
        1 => (ks(), 0u8..40, 0u8..40, any::<bool>()).prop_map(|(s, a, b, r)| TxStep::Cursor(s, a, b, r)),
        1 => Just(TxStep::SetSavepoint),
        1 => Just(TxStep::RollbackToSavepoint),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..40;
    let ks = keyspace;
    prop_oneof![
        8 => (ks(), key.clone(), any::<u16>()).prop_map(|(s, a, b)| Op::Put(s, a, b)),
        3 => (ks(), key.clone(), any::<u16>(), 1u8..4).prop_map(|(s, a, b, t)| Op::PutTtl(s, a, b, t)),
        2 => (1u8..3).prop_map(Op::Advance),
        3 => (ks(), key.clone()).prop_map(|(s, a)| Op::Delete(s, a)),
        5 => (ks(), key.clone(), any::<u16>()).prop_map(|(s, a, n)| Op::Merge(s, a, n)),
        2 => (ks(), key.clone(), range_end()).prop_map(|(s, a, b)| Op::DeleteRange(s, a, b)),
        1 => (ks(), 0u8..46).prop_map(|(s, p)| Op::DeletePrefix(s, p)),
        2 => (
            proptest::collection::vec(batch_item(), 0..8),
            prop_oneof![Just(WriteMode::Default), Just(WriteMode::Sync), Just(WriteMode::DisableWal)],
        )
            .prop_map(|(items, mode)| Op::Batch(items, mode)),
        2 => (ks(), ks(), key.clone()).prop_map(|(a, b, k)| Op::Move(a, b, k)),
        4 => (ks(), key.clone()).prop_map(|(s, a)| Op::Get(s, a)),
        2 => (ks(), key.clone(), key.clone(), any::<bool>()).prop_map(|(s, a, b, r)| Op::Range(s, a, b, r)),
        1 => (ks(), 0u8..5, any::<bool>()).prop_map(|(s, p, r)| Op::Prefix(s, p, r)),
        1 => Just(Op::TakeSnapshot),
        2 => (any::<usize>(), ks(), key.clone()).prop_map(|(i, s, k)| Op::SnapshotGet(i, s, k)),
        1 => (any::<usize>(), ks(), any::<bool>()).prop_map(|(i, s, r)| Op::SnapshotScan(i, s, r)),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        2 => (ks(), key.clone(), any::<bool>()).prop_map(|(s, k, fwd)| Op::Cursor(s, k, fwd)),
        1 => ks().prop_map(Op::Flush),
        1 => Just(Op::FlushAll),
        1 => (ks(), key.clone(), key.clone()).prop_map(|(s, a, b)| Op::CompactRange(s, a, b)),
        1 => Just(Op::WaitForCompactions),
        1 => (1u8..4).prop_map(Op::DropKeyspace),
        1 => Just(Op::Reopen),
        1 => any::<bool>().prop_map(Op::Checkpoint),
        2 => (
            ks(),
            proptest::collection::vec((key.clone(), 0u8..3, any::<u16>()), 1..12),
            any::<bool>(),
            proptest::option::weighted(0.3, (key.clone(), range_end())),
        )
            .prop_map(|(s, entries, moving, range)| Op::Ingest(s, entries, moving, range)),
        3 => (proptest::collection::vec(tx_step(), 1..12), any::<bool>(), prop_oneof![4 => Just(true), 1 => Just(false)])
            .prop_map(|(steps, interfere, commit)| Op::Transaction(steps, interfere, commit)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(from, sync)| Op::Feed(from, sync)),
        1 => any::<usize>().prop_map(Op::FeedAck),
        1 => any::<bool>().prop_map(Op::ReadOnly),
    ]
}

/// The entries as the application sees them (`common/filter.rs`).
fn collect(it: strata::Iter) -> Vec<(Vec<u8>, Vec<u8>)> {
    norm_entries(
        it.map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect(),
    )
}

/// Per keyspace, the keys whose newest value expires: its expiry (micros)
/// and the operands merged onto it since (what the key holds once it has
/// expired).
type Expiries = BTreeMap<&'static str, BTreeMap<Vec<u8>, (u64, Vec<Vec<u8>>)>>;

/// `key` of keyspace `name` was written over (a put, a delete): its
/// expiring value, if any, no longer matters.
fn overwritten(exp: &mut Expiries, name: &'static str, key: &[u8]) {
    if let Some(m) = exp.get_mut(name) {
        m.remove(key);
    }
}

/// An operand was merged onto `key`.
fn merged_onto(exp: &mut Expiries, name: &'static str, key: &[u8], operand: &[u8]) {
    if let Some((_, ops)) = exp.get_mut(name).and_then(|m| m.get_mut(key)) {
        ops.push(operand.to_vec());
    }
}

/// A range delete (as the model's write) over keyspace `name`.
fn range_deleted(exp: &mut Expiries, name: &'static str, w: &WriteOp) {
    if let (Some(m), WriteOp::DeleteRange(start, end)) = (exp.get_mut(name), w) {
        m.retain(|k, _| k < start || end.as_ref().is_some_and(|e| k >= e));
    }
}

/// What expired by `now` leaves: the operands merged onto it, or nothing.
fn expire(models: &mut BTreeMap<&'static str, Model>, exp: &mut Expiries, now: u64) {
    for (name, keys) in exp.iter_mut() {
        let Some(model) = models.get_mut(name) else {
            continue;
        };
        keys.retain(|key, (expiry, ops)| {
            if *expiry > now {
                return true;
            }
            if ops.is_empty() {
                model.remove(key);
            } else {
                model.insert(key.clone(), ops.join(&b","[..]));
            }
            false
        });
    }
}

/// A snapshot, what each keyspace held when it was taken, and the
/// handles open then (reads go through them, also after a drop).
struct ModelSnapshot {
    snap: strata::Snapshot,
    models: BTreeMap<&'static str, Model>,
    handles: BTreeMap<&'static str, Keyspace>,
    /// Dropped keyspaces' handles keep their tables on disk.
    holds_dropped: bool,
    /// What expires in `models`.
    exp: Expiries,
}

/// The database under test with its handles, and the model: one map per
/// keyspace name, present while the keyspace exists.
struct Harness {
    fs: MemFileSystem,
    db: Option<Db>,
    handles: BTreeMap<&'static str, Keyspace>,
    models: BTreeMap<&'static str, Model>,
    snapshots: Vec<ModelSnapshot>,
    /// What expires in `models`, and the clock the driver moves.
    exp: Expiries,
    clock: Arc<ManualClock>,
    /// Tables built for `Op::Ingest` so far (their names).
    ingested: u32,
    /// The committed writes' sequence numbers, for the change feed.
    feed: FeedLog,
    /// A `disable_wal` write may be in no file yet (until a flush of
    /// every keyspace or a reopen): a read-only open would not see it.
    unlogged: bool,
    /// The reader of `Op::ReadOnly`, kept across reopens of the writer.
    read_only: Option<strata::ReadOnlyDb>,
}

impl Harness {
    fn new() -> Harness {
        let fs = MemFileSystem::new();
        let clock = Arc::new(ManualClock::new(1_780_000_000_000_000));
        let db = Db::open(mem_dir(), clocked(merge_options(&fs), &clock)).unwrap();
        Harness {
            fs,
            db: Some(db),
            handles: BTreeMap::new(),
            models: BTreeMap::from([("default", Model::new())]),
            snapshots: Vec::new(),
            exp: Expiries::new(),
            clock,
            ingested: 0,
            feed: FeedLog::default(),
            unlogged: false,
            read_only: None,
        }
    }

    /// Read the change feed from the log's position `choice` and check
    /// it (`common/feed_log.rs`); with `sync`, sync the WAL first.
    fn check_feed(&self, choice: usize, sync: bool) -> Result<(), TestCaseError> {
        if sync {
            self.db().flush_wal(true).unwrap();
        }
        let from = self.feed.position(choice);
        self.feed
            .check(self.db(), from, sync)
            .unwrap()
            .map_err(|e| TestCaseError::fail(format!("change feed from {from}: {e}")))?;
        Ok(())
    }

    /// Open (or refresh) a read-only view and compare it with the model,
    /// once every write is in the WAL file or a table.
    fn check_read_only(&mut self, refresh: bool) -> Result<(), TestCaseError> {
        if self.unlogged {
            self.db().flush_all().unwrap();
            self.unlogged = false;
        }
        self.db().flush_wal(false).unwrap();
        let options = clocked(merge_options(&self.fs), &self.clock);
        match &self.read_only {
            Some(ro) if refresh => ro.refresh().unwrap(),
            _ => self.read_only = Some(Db::open_read_only(mem_dir(), options).unwrap()),
        }
        let ro = self.read_only.as_ref().unwrap();
        let names: Vec<String> = self.models.keys().map(|n| n.to_string()).collect();
        let mut live = ro.keyspace_names();
        live.sort();
        prop_assert_eq!(live, names);
        for (name, model) in &self.models {
            let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let got: Result<Vec<_>, _> = ro
                .iter_in(name)
                .unwrap()
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect();
            match got {
                Ok(got) => prop_assert_eq!(norm_entries(got), want, "read-only keyspace {}", name),
                // A reader knows no keyspace's merge operator but the
                // default one's (docs/design/read-only.md).
                Err(Error::MergeFailed { .. }) if *name != "default" => {}
                Err(e) => return Err(TestCaseError::fail(format!("read-only {name}: {e}"))),
            }
        }
        Ok(())
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    /// The handle on keyspace `i`, created (empty, in the model too) on
    /// first use.
    fn ks(&mut self, i: u8) -> Keyspace {
        let name = KEYSPACES[usize::from(i)];
        if let Some(h) = self.handles.get(name) {
            return h.clone();
        }
        let h = self.open_keyspace(name);
        self.models.entry(name).or_default();
        self.handles.insert(name, h.clone());
        h
    }

    /// A keyspace opened with the merge operator: one recovered at open
    /// has none until opened with options (docs/design/merge.md §5).
    fn open_keyspace(&self, name: &str) -> Keyspace {
        let options = keyspace_options_of(&self.fs, name);
        self.db().keyspace_with(name, options).unwrap()
    }

    fn model(&mut self, i: u8) -> &mut Model {
        self.ks(i);
        self.models.get_mut(KEYSPACES[usize::from(i)]).unwrap()
    }

    /// Take a checkpoint, open it, and compare every keyspace in it with
    /// the model (nothing writes meanwhile: it holds everything).
    fn checkpoint(&mut self, stream: bool) -> Result<(), TestCaseError> {
        let dir = (0..)
            .map(|n| std::path::PathBuf::from(format!("/checkpoint{n}")))
            .find(|d| !strata::fs::FileSystem::exists(&self.fs, d))
            .unwrap();
        if stream {
            let mut bytes = Vec::new();
            self.db().checkpoint_to_writer(&mut bytes).unwrap();
            strata::install_checkpoint_with(&self.fs, &bytes[..], &dir).unwrap();
        } else {
            self.db().checkpoint(&dir).unwrap();
        }
        let options = clocked(merge_options(&self.fs), &self.clock);
        let copy = Db::open(&dir, options).unwrap();
        let names: Vec<String> = self.models.keys().map(|n| n.to_string()).collect();
        let mut live = copy.keyspace_names();
        live.sort();
        prop_assert_eq!(live, names);
        for (name, model) in &self.models {
            let ks_options = keyspace_options_of(&self.fs, name);
            let got = collect(copy.keyspace_with(name, ks_options).unwrap().iter());
            let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(got, want, "keyspace {} in checkpoint {:?}", name, dir);
        }
        Ok(())
    }

    fn reopen(&mut self) -> Result<(), TestCaseError> {
        // Snapshots and keyspace handles hold the database open.
        self.snapshots.clear();
        self.handles.clear();
        drop(self.db.take());
        self.db = Some(Db::open(mem_dir(), clocked(merge_options(&self.fs), &self.clock)).unwrap());
        let names: Vec<String> = self.models.keys().map(|n| n.to_string()).collect();
        let mut live = self.db().keyspace_names();
        live.sort();
        prop_assert_eq!(live, names);
        for (name, model) in &self.models {
            let got = collect(self.open_keyspace(name).iter());
            let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(got, want, "keyspace {}", name);
        }
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    for op in ops {
        let before = visible(h.db());
        // What the operation's numbers are to the feed, when it says.
        let mut took: Option<Took> = None;
        match op {
            Op::Put(s, key, n) => {
                h.ks(s).put(k(key), v(key, n)).unwrap();
                took = Some(logged(&[(s, k(key), RecKind::Put(v(key, n)))]));
                put_into(h.model(s), k(key), &v(key, n));
                overwritten(&mut h.exp, KEYSPACES[usize::from(s)], &k(key));
            }
            Op::PutTtl(s, key, n, secs) => {
                let ttl = Duration::from_secs(secs.into());
                h.ks(s).put_with_ttl(k(key), v(key, n), ttl).unwrap();
                put_into(h.model(s), k(key), &v(key, n));
                let expiry = h.clock.now_micros() + ttl.as_micros() as u64;
                took = Some(logged(&[(
                    s,
                    k(key),
                    RecKind::PutWithExpiry(v(key, n), expiry),
                )]));
                h.exp
                    .entry(KEYSPACES[usize::from(s)])
                    .or_default()
                    .insert(k(key), (expiry, Vec::new()));
            }
            Op::Ingest(s, mut entries, moving, range) => {
                entries.sort_by_key(|e| e.0);
                entries.dedup_by_key(|e| e.0);
                let dir = std::path::PathBuf::from("/ext");
                strata::fs::FileSystem::create_dir_all(&h.fs, &dir).unwrap();
                h.ingested += 1;
                let path = dir.join(format!("{}.sst", h.ingested));
                let options = clocked(merge_options(&h.fs), &h.clock);
                let mut w = strata::SstWriter::create(&path, &options).unwrap();
                let deleted = match range {
                    Some((a, NO_END)) => {
                        w.delete_range_from(k(a)).unwrap();
                        Some(WriteOp::DeleteRange(k(a), None))
                    }
                    Some((a, b)) if a < b => {
                        w.delete_range(k(a), k(b)).unwrap();
                        Some(WriteOp::DeleteRange(k(a), Some(k(b))))
                    }
                    Some((a, b)) => {
                        let r = w.delete_range(k(a), k(b));
                        prop_assert!(
                            matches!(r, Err(Error::InvalidArgument(_))),
                            "an empty or inverted range gave {:?}",
                            r
                        );
                        None
                    }
                    None => None,
                };
                for &(key, kind, n) in &entries {
                    match kind {
                        0 => w.put(k(key), v(key, n)),
                        1 => w.delete(k(key)),
                        _ => w.merge(k(key), operand(n)),
                    }
                    .unwrap();
                }
                w.finish().unwrap();
                let opts = strata::IngestOptions {
                    move_files: moving,
                    ..strata::IngestOptions::default()
                };
                h.ks(s).ingest(&[&path], &opts).unwrap();
                took = Some(Took::Ingestion);
                let name = KEYSPACES[usize::from(s)];
                if let Some(w) = deleted {
                    range_deleted(&mut h.exp, name, &w);
                    apply(h.model(s), &vec![w]);
                }
                for (key, kind, n) in entries {
                    match kind {
                        0 => {
                            put_into(h.model(s), k(key), &v(key, n));
                            overwritten(&mut h.exp, name, &k(key));
                        }
                        1 => {
                            h.model(s).remove(&k(key));
                            overwritten(&mut h.exp, name, &k(key));
                        }
                        _ => {
                            merge_into(h.model(s), k(key), operand(n));
                            merged_onto(&mut h.exp, name, &k(key), &operand(n));
                        }
                    }
                }
            }
            Op::Advance(secs) => {
                h.clock.advance(Duration::from_secs(secs.into()));
                let now = h.clock.now_micros();
                expire(&mut h.models, &mut h.exp, now);
                for ms in &mut h.snapshots {
                    expire(&mut ms.models, &mut ms.exp, now);
                }
            }
            Op::Delete(s, key) => {
                h.ks(s).delete(k(key)).unwrap();
                took = Some(logged(&[(s, k(key), RecKind::Delete)]));
                h.model(s).remove(&k(key));
                overwritten(&mut h.exp, KEYSPACES[usize::from(s)], &k(key));
            }
            Op::Merge(s, key, n) => {
                h.ks(s).merge(k(key), operand(n)).unwrap();
                took = Some(logged(&[(s, k(key), RecKind::Merge(operand(n)))]));
                merge_into(h.model(s), k(key), operand(n));
                merged_onto(&mut h.exp, KEYSPACES[usize::from(s)], &k(key), &operand(n));
            }
            Op::DeleteRange(s, a, b) => {
                let ks = h.ks(s);
                let r = match b {
                    NO_END => ks.delete_range(k(a)..),
                    b => ks.delete_range(k(a)..k(b)),
                };
                match range_op(a, b) {
                    Ok(w) => {
                        r.unwrap();
                        took = Some(logged(&[(s, k(a), range_rec(b))]));
                        range_deleted(&mut h.exp, KEYSPACES[usize::from(s)], &w);
                        apply(h.model(s), &vec![w]);
                    }
                    // The model is unchanged, and so must the database be.
                    Err(()) => prop_assert!(
                        matches!(r, Err(Error::InvalidArgument(_))),
                        "an inverted range gave {:?}",
                        r
                    ),
                }
            }
            Op::DeletePrefix(s, p) => {
                let prefix = prefix(p);
                h.ks(s).delete_prefix(&prefix).unwrap();
                h.model(s).retain(|k, _| !k.starts_with(&prefix));
                if let Some(m) = h.exp.get_mut(KEYSPACES[usize::from(s)]) {
                    m.retain(|k, _| !k.starts_with(&prefix));
                }
            }
            Op::Batch(items, mode) => {
                let mut b = WriteBatch::new();
                // Each keyspace's model as the batch would leave it.
                let mut after = h.models.clone();
                let mut after_exp = h.exp.clone();
                let mut inverted = false;
                let mut recs = Vec::new();
                for item in items {
                    let s = match item {
                        BatchItem::Put(s, ..)
                        | BatchItem::Delete(s, _)
                        | BatchItem::Merge(s, ..)
                        | BatchItem::DeleteRange(s, ..) => s,
                    };
                    let ks = h.ks(s);
                    let name = KEYSPACES[usize::from(s)];
                    let model = after.entry(name).or_default();
                    match item {
                        BatchItem::Put(_, key, n) => {
                            b.put_in(&ks, k(key), v(key, n));
                            recs.push((s, k(key), RecKind::Put(v(key, n))));
                            put_into(model, k(key), &v(key, n));
                            overwritten(&mut after_exp, name, &k(key));
                        }
                        BatchItem::Delete(_, key) => {
                            b.delete_in(&ks, k(key));
                            recs.push((s, k(key), RecKind::Delete));
                            model.remove(&k(key));
                            overwritten(&mut after_exp, name, &k(key));
                        }
                        BatchItem::Merge(_, key, n) => {
                            b.merge_in(&ks, k(key), operand(n));
                            recs.push((s, k(key), RecKind::Merge(operand(n))));
                            merge_into(model, k(key), operand(n));
                            merged_onto(&mut after_exp, name, &k(key), &operand(n));
                        }
                        BatchItem::DeleteRange(_, a, e) => {
                            add_range(&mut b, &ks, a, e);
                            // An empty range writes no record.
                            if a != e {
                                recs.push((s, k(a), range_rec(e)));
                            }
                            match range_op(a, e) {
                                Ok(w) => {
                                    range_deleted(&mut after_exp, name, &w);
                                    apply(model, &vec![w]);
                                }
                                Err(()) => inverted = true,
                            }
                        }
                    }
                }
                let r = h.db().write_opt(b, &mode.options());
                took = Some(match mode {
                    WriteMode::DisableWal => {
                        h.unlogged = true;
                        Took::Unlogged
                    }
                    _ => logged(&recs),
                });
                if inverted {
                    // Nothing of the batch is written.
                    prop_assert!(matches!(r, Err(Error::InvalidArgument(_))), "{:?}", r);
                } else {
                    r.unwrap();
                    h.models = after;
                    h.exp = after_exp;
                }
            }
            Op::Move(from, to, key) if from != to => {
                let Some(value) = h.model(from).remove(&k(key)) else {
                    continue;
                };
                overwritten(&mut h.exp, KEYSPACES[usize::from(from)], &k(key));
                overwritten(&mut h.exp, KEYSPACES[usize::from(to)], &k(key));
                let (a, b) = (h.ks(from), h.ks(to));
                let mut batch = WriteBatch::new();
                batch.delete_in(&a, k(key));
                batch.put_in(&b, k(key), &value);
                h.db().write(batch).unwrap();
                took = Some(logged(&[
                    (from, k(key), RecKind::Delete),
                    (to, k(key), RecKind::Put(value.clone())),
                ]));
                h.model(to).insert(k(key), value);
            }
            Op::Get(s, key) => {
                let got = h.ks(s).get(k(key)).unwrap().and_then(|b| norm(&b));
                prop_assert_eq!(got, h.model(s).get(&k(key)).cloned());
            }
            Op::Range(s, a, b, rev) => {
                let ks = h.ks(s);
                check_range(&ks, h.model(s), a, b, rev)?
            }
            Op::Prefix(s, p, rev) => {
                let prefix = vec![b'a' + p];
                let ks = h.ks(s);
                let mut want: Vec<_> = h
                    .model(s)
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let got = if rev {
                    want.reverse();
                    collect_rev(ks.prefix(&prefix))
                } else {
                    collect(ks.prefix(&prefix))
                };
                prop_assert_eq!(got, want);
            }
            Op::TakeSnapshot => {
                let snap = h.db().snapshot();
                h.snapshots.push(ModelSnapshot {
                    snap,
                    models: h.models.clone(),
                    handles: h.handles.clone(),
                    holds_dropped: false,
                    exp: h.exp.clone(),
                });
            }
            Op::SnapshotGet(i, s, key) if !h.snapshots.is_empty() => {
                let n = h.snapshots.len();
                let ms = &h.snapshots[i % n];
                let name = KEYSPACES[usize::from(s)];
                if let Some(ks) = ms.handles.get(name) {
                    let got = ms
                        .snap
                        .keyspace(ks)
                        .get(k(key))
                        .unwrap()
                        .and_then(|b| norm(&b));
                    prop_assert_eq!(got, ms.models[name].get(&k(key)).cloned());
                }
            }
            Op::SnapshotScan(i, s, rev) if !h.snapshots.is_empty() => {
                let n = h.snapshots.len();
                let ms = &h.snapshots[i % n];
                let name = KEYSPACES[usize::from(s)];
                if let Some(ks) = ms.handles.get(name) {
                    let view = ms.snap.keyspace(ks);
                    let mut want: Vec<_> = ms.models[name]
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let got = if rev {
                        want.reverse();
                        collect_rev(view.iter())
                    } else {
                        collect(view.iter())
                    };
                    prop_assert_eq!(got, want);
                }
            }
            Op::DropSnapshot(i) if !h.snapshots.is_empty() => {
                let n = h.snapshots.len();
                h.snapshots.remove(i % n);
            }
            Op::Cursor(s, key, forward) => {
                let mut c = h.ks(s).cursor();
                let model = h.model(s);
                let target = k(key);
                // Three entries as the application sees them (values the
                // filter has yet to remove are stepped over).
                let mut got = Vec::new();
                let want: Vec<_> = if forward {
                    c.seek(&target).unwrap();
                    model.range(target.clone()..).take(3).collect()
                } else {
                    c.seek_for_prev(&target).unwrap();
                    model.range(..=target.clone()).rev().take(3).collect()
                };
                while got.len() < want.len() {
                    let (Some(ck), Some(cv)) = (c.key(), c.value()) else {
                        break;
                    };
                    if let Some(cv) = norm(cv) {
                        got.push((ck.to_vec(), cv));
                    }
                    if forward {
                        c.next().unwrap();
                    } else {
                        c.prev().unwrap();
                    }
                }
                let want: Vec<_> = want
                    .into_iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                prop_assert_eq!(got, want);
            }
            Op::Flush(s) => h.ks(s).flush().unwrap(),
            Op::FlushAll => {
                h.db().flush_all().unwrap();
                h.unlogged = false;
            }
            Op::CompactRange(s, a, b) => {
                let (lo, hi) = (k(a.min(b)), k(a.max(b)));
                h.ks(s)
                    .compact_range(lo.as_slice()..=hi.as_slice())
                    .unwrap();
            }
            Op::WaitForCompactions => {
                h.db().wait_for_compactions().unwrap();
                // Snapshots pin old tables, and handles on dropped
                // keyspaces theirs: only then may strays exist.
                if !h.snapshots.iter().any(|s| s.holds_dropped) {
                    h.db().check_invariants().map_err(TestCaseError::fail)?;
                }
            }
            Op::DropKeyspace(s) => {
                let name = KEYSPACES[usize::from(s)];
                if h.models.remove(name).is_some() {
                    h.exp.remove(name);
                    h.handles.remove(name);
                    h.db().drop_keyspace(name).unwrap();
                    for ms in &mut h.snapshots {
                        ms.holds_dropped |= ms.handles.contains_key(name);
                    }
                }
            }
            Op::Reopen => {
                h.reopen()?;
                h.unlogged = false;
            }
            Op::Feed(choice, sync) => h.check_feed(choice, sync)?,
            Op::FeedAck(choice) => {
                let feed = h.db().change_feed("model").unwrap();
                match (h.feed.acked, h.feed.ack_point(choice)) {
                    (None, _) => h.feed.acked = Some(feed.acked().unwrap()),
                    (Some(_), Some(seq)) => {
                        feed.ack(seq).unwrap();
                        h.feed.acked = Some(seq);
                    }
                    (Some(_), None) => {}
                }
            }
            Op::ReadOnly(refresh) => h.check_read_only(refresh)?,
            Op::Checkpoint(stream) => h.checkpoint(stream)?,
            Op::Transaction(steps, interfere, commit) => {
                run_transaction(&mut h, steps, interfere, commit)?
            }
            Op::Move(..) | Op::SnapshotGet(..) | Op::SnapshotScan(..) | Op::DropSnapshot(..) => {}
        }
        // Numbers taken by an operation that does not say how (a prefix
        // delete, a transaction): WAL batches that tile them.
        let after = visible(h.db());
        h.feed
            .committed(before, after, took.unwrap_or(Took::Logged(None)));
    }
    h.reopen()?;
    // A clean close synced every write: the feed shows them all.
    h.check_feed(0, true)
}

/// A write's records, as the feed must show them, keyspaces by index.
fn logged(records: &[(u8, Vec<u8>, RecKind)]) -> Took {
    Took::Logged(Some(
        records
            .iter()
            .map(|(s, key, kind)| Rec::new(KEYSPACES[usize::from(*s)], key, kind.clone()))
            .collect(),
    ))
}

/// The record of `Op::DeleteRange(_, _, b)`: its end.
fn range_rec(b: u8) -> RecKind {
    RecKind::DeleteRange((b != NO_END).then(|| k(b)))
}

/// Entries a cursor met, in the order met.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Walk `c` over `[lo, hi)`: forward from `lo` (backward from `hi` with
/// `rev`), then turn where the walk stopped and walk back. The entries
/// met each way.
fn walk_cursor(
    mut c: strata::TransactionCursor,
    lo: &[u8],
    hi: &[u8],
    rev: bool,
) -> (Entries, Entries) {
    let entry =
        |c: &strata::TransactionCursor| (c.key().unwrap().to_vec(), c.value().unwrap().to_vec());
    let (mut there, mut back) = (Vec::new(), Vec::new());
    if rev {
        c.seek_for_prev(hi).unwrap();
        if c.key() == Some(hi) {
            c.prev().unwrap();
        }
        while c.key().is_some_and(|key| key >= lo) {
            there.push(entry(&c));
            c.prev().unwrap();
        }
        if c.valid() {
            c.next().unwrap();
        } else {
            c.seek_to_first().unwrap();
        }
        while c.key().is_some_and(|key| key < hi) {
            back.push(entry(&c));
            c.next().unwrap();
        }
    } else {
        c.seek(lo).unwrap();
        while c.key().is_some_and(|key| key < hi) {
            there.push(entry(&c));
            c.next().unwrap();
        }
        if c.valid() {
            c.prev().unwrap();
        } else {
            c.seek_to_last().unwrap();
        }
        while c.key().is_some_and(|key| key >= lo) {
            back.push(entry(&c));
            c.prev().unwrap();
        }
    }
    (there, back)
}

/// An `Op::Transaction`: every read and scan of the transaction agrees
/// with the model as of its start plus its own writes (savepoints undo
/// them); the commit applies them all, or a conflict none.
fn run_transaction(
    h: &mut Harness,
    steps: Vec<TxStep>,
    interfere: bool,
    commit: bool,
) -> Result<(), TestCaseError> {
    let step_ks = |step: &TxStep| match step {
        TxStep::Write(
            BatchItem::Put(s, ..) | BatchItem::Delete(s, _) | BatchItem::Merge(s, ..),
        )
        | TxStep::Write(BatchItem::DeleteRange(s, ..))
        | TxStep::Get(s, _)
        | TxStep::Scan(s, ..)
        | TxStep::Cursor(s, ..) => Some(*s),
        TxStep::SetSavepoint | TxStep::RollbackToSavepoint => None,
    };
    for s in steps.iter().filter_map(step_ks) {
        h.ks(s);
    }
    let mut tx = h.db().transaction();
    let mut view = h.models.clone();
    // What expires, as the view knows it: the transaction's puts and
    // deletes overwrite expiring values, its merges go onto them.
    let mut view_exp = h.exp.clone();
    // The view, its expiries and how many keys were written, at each
    // savepoint.
    let mut savepoints: Vec<(BTreeMap<&'static str, Model>, Expiries, usize)> = Vec::new();
    let mut written: Vec<(u8, u8)> = Vec::new();
    for step in steps {
        match step {
            TxStep::Write(item) => {
                let s = step_ks(&TxStep::Write(item.clone())).unwrap_or(0);
                let ks = h.ks(s);
                let model = view.get_mut(KEYSPACES[usize::from(s)]).unwrap();
                let key = match item {
                    BatchItem::Put(_, key, n) => {
                        tx.put_in(&ks, k(key), v(key, n)).unwrap();
                        put_into(model, k(key), &v(key, n));
                        overwritten(&mut view_exp, KEYSPACES[usize::from(s)], &k(key));
                        key
                    }
                    BatchItem::Delete(_, key) => {
                        tx.delete_in(&ks, k(key)).unwrap();
                        model.remove(&k(key));
                        overwritten(&mut view_exp, KEYSPACES[usize::from(s)], &k(key));
                        key
                    }
                    BatchItem::Merge(_, key, n) => {
                        tx.merge_in(&ks, k(key), operand(n)).unwrap();
                        merge_into(model, k(key), operand(n));
                        merged_onto(
                            &mut view_exp,
                            KEYSPACES[usize::from(s)],
                            &k(key),
                            &operand(n),
                        );
                        key
                    }
                    BatchItem::DeleteRange(_, a, e) => {
                        let name = KEYSPACES[usize::from(s)];
                        if !tx_delete_range(&mut tx, &ks, model, &mut view_exp, name, a, e)? {
                            continue;
                        }
                        a // the range's first key: a write into it conflicts
                    }
                };
                written.push((s, key));
            }
            TxStep::Get(s, key) => {
                let ks = h.ks(s);
                let got = tx.get_in(&ks, k(key)).unwrap().and_then(|b| norm(&b));
                prop_assert_eq!(got, view[KEYSPACES[usize::from(s)]].get(&k(key)).cloned());
            }
            TxStep::Scan(s, a, b, rev) => {
                let ks = h.ks(s);
                let (lo, hi) = (k(a.min(b)), k(a.max(b)));
                let mut want: Vec<_> = view[KEYSPACES[usize::from(s)]]
                    .range(lo.clone()..hi.clone())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let it = tx.range_in(&ks, lo.as_slice()..hi.as_slice()).unwrap();
                let got: Vec<_> = if rev {
                    want.reverse();
                    it.rev()
                        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                        .collect()
                } else {
                    it.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                        .collect()
                };
                prop_assert_eq!(norm_entries(got), want);
            }
            TxStep::Cursor(s, a, b, rev) => {
                let ks = h.ks(s);
                let (lo, hi) = (k(a.min(b)), k(a.max(b)));
                let want: Vec<_> = view[KEYSPACES[usize::from(s)]]
                    .range(lo.clone()..hi.clone())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let (there, back) = walk_cursor(tx.cursor_in(&ks).unwrap(), &lo, &hi, rev);
                let mut want_back = want.clone();
                want_back.reverse();
                if rev {
                    prop_assert_eq!(norm_entries(there), want_back);
                    prop_assert_eq!(norm_entries(back), want);
                } else {
                    prop_assert_eq!(norm_entries(there), want);
                    prop_assert_eq!(norm_entries(back), want_back);
                }
            }
            TxStep::SetSavepoint => {
                tx.set_savepoint();
                savepoints.push((view.clone(), view_exp.clone(), written.len()));
            }
            TxStep::RollbackToSavepoint => match savepoints.pop() {
                Some((before, before_exp, n)) => {
                    tx.rollback_to_savepoint().unwrap();
                    view = before;
                    view_exp = before_exp;
                    written.truncate(n);
                }
                None => prop_assert!(tx.rollback_to_savepoint().is_err()),
            },
        }
    }
    let conflict = match (interfere, written.first().copied()) {
        (true, Some((s, key))) => {
            h.ks(s).put(k(key), v(key, 0)).unwrap();
            put_into(h.model(s), k(key), &v(key, 0));
            overwritten(&mut h.exp, KEYSPACES[usize::from(s)], &k(key));
            true
        }
        _ => false,
    };
    if !commit {
        drop(tx); // rolled back: the model is unchanged
        return Ok(());
    }
    let r = tx.commit();
    if conflict {
        prop_assert!(matches!(r, Err(Error::Conflict { .. })), "{:?}", r);
    } else {
        r.unwrap();
        h.models = view;
        h.exp = view_exp;
    }
    Ok(())
}

/// A transaction's `BatchItem::DeleteRange(_, a, e)` in `ks`, applied to
/// its view `model` (and expiries): `Ok(true)` if it deleted a range that
/// holds key `a`, `Ok(false)` if empty; an inverted one fails with
/// `InvalidArgument` and changes nothing.
fn tx_delete_range(
    tx: &mut strata::Transaction,
    ks: &Keyspace,
    model: &mut Model,
    exp: &mut Expiries,
    name: &'static str,
    a: u8,
    e: u8,
) -> Result<bool, TestCaseError> {
    let r = match e {
        NO_END => tx.delete_range_in(ks, k(a)..),
        e => tx.delete_range_in(ks, k(a)..k(e)),
    };
    match range_op(a, e) {
        Ok(w) => {
            r.unwrap();
            range_deleted(exp, name, &w);
            apply(model, &vec![w]);
            Ok(e != a)
        }
        Err(()) => {
            prop_assert!(matches!(r, Err(Error::InvalidArgument(_))), "{:?}", r);
            Ok(false)
        }
    }
}

/// A range scan between keys `a` and `b`, in either direction, agrees
/// with the model.
fn check_range(
    ks: &Keyspace,
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    a: u8,
    b: u8,
    rev: bool,
) -> Result<(), TestCaseError> {
    let (lo, hi) = (k(a.min(b)), k(a.max(b)));
    let mut want: Vec<_> = model
        .range(lo.clone()..hi.clone())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let got = if rev {
        want.reverse();
        collect_rev(ks.range(lo.as_slice()..hi.as_slice()))
    } else {
        collect(ks.range(lo.as_slice()..hi.as_slice()))
    };
    prop_assert_eq!(got, want);
    Ok(())
}

fn collect_rev(it: strata::Iter) -> Vec<(Vec<u8>, Vec<u8>)> {
    norm_entries(
        it.rev()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn strata_agrees_with_a_btreemap(ops in proptest::collection::vec(op(), 1..300)) {
        run(ops)?;
    }
}

/// Enough writes to force several memtable flushes, with every operation
/// kind mixed in, on a fixed seed (deterministic and quick).
#[test]
fn long_sequence_with_many_flushes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let ops = proptest::collection::vec(op(), 3000..3001)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    run(ops).unwrap();
}

/// Shrunk failure from `model.proptest-regressions`: a delete right after
/// a put of the same key (the tombstone must hide the put in every path).
#[test]
fn regression_put_then_delete_of_one_key() {
    run(vec![Op::Put(0, 21, 0), Op::Delete(0, 21)]).unwrap();
}

/// A value the filter removes, newer than one a snapshot keeps: it must
/// become a tombstone, or the older value shows through again.
#[test]
fn regression_a_filtered_value_above_a_snapshot_hides_the_older_one() {
    run(vec![
        Op::Put(0, 3, 2),
        Op::TakeSnapshot,
        Op::Put(0, 3, 0),
        Op::CompactRange(0, 0, 39),
        Op::Get(0, 3),
        Op::SnapshotGet(0, 0, 3),
    ])
    .unwrap();
}

/// Operations for the power-loss model: writes (some synced) over the
/// keyspaces, moves between them, reads in both directions, flushes,
/// compactions and drops of one keyspace, clean reopens and power losses.
#[derive(Debug, Clone)]
enum CrashOp {
    Put(u8, u8, u16, bool),
    Delete(u8, u8, bool),
    /// As `Op::DeleteRange` (inverted ranges are left to `run`).
    DeleteRange(u8, u8, u8, bool),
    Move(u8, u8, u8, bool),
    Get(u8, u8),
    Range(u8, u8, u8, bool),
    Flush(u8),
    CompactRange(u8, u8, u8),
    DropKeyspace(u8),
    Reopen,
    PowerLoss(u64),
}

fn crash_op() -> impl Strategy<Value = CrashOp> {
    let key = 0u8..40;
    let ks = keyspace;
    let sync = || proptest::bool::weighted(0.2);
    prop_oneof![
        10 => (ks(), key.clone(), any::<u16>(), sync()).prop_map(|(s, a, b, y)| CrashOp::Put(s, a, b, y)),
        3 => (ks(), key.clone(), sync()).prop_map(|(s, a, y)| CrashOp::Delete(s, a, y)),
        2 => (ks(), key.clone(), range_end(), sync()).prop_map(|(s, a, b, y)| CrashOp::DeleteRange(s, a, b, y)),
        3 => (ks(), ks(), key.clone(), sync()).prop_map(|(a, b, k, y)| CrashOp::Move(a, b, k, y)),
        3 => (ks(), key.clone()).prop_map(|(s, a)| CrashOp::Get(s, a)),
        2 => (ks(), key.clone(), key.clone(), any::<bool>()).prop_map(|(s, a, b, r)| CrashOp::Range(s, a, b, r)),
        1 => ks().prop_map(CrashOp::Flush),
        1 => (ks(), key.clone(), key.clone()).prop_map(|(s, a, b)| CrashOp::CompactRange(s, a, b)),
        1 => (1u8..4).prop_map(CrashOp::DropKeyspace),
        1 => Just(CrashOp::Reopen),
        2 => any::<u64>().prop_map(CrashOp::PowerLoss),
    ]
}

/// After every power loss the database holds the state after a prefix of
/// the acknowledged writes (over every keyspace: model keys carry the
/// keyspace, so a move is never half there) that includes every durable
/// one: synced, followed by a flush of its keyspace or of one written
/// after it, or by a drop; in between, reads agree with the model.
fn run_with_power_loss(ops: Vec<CrashOp>) -> Result<(), TestCaseError> {
    use common::keyspaces::{drop_write, model_key, model_range, scan_keyspaces};
    use strata::fs::UnsyncedData;
    use strata::WriteOptions;
    let fs = MemFileSystem::new();
    let open = |fs: &MemFileSystem| {
        Db::open(
            mem_dir(),
            Options {
                compaction_filter_factory: Some(mark_filter()),
                ..mem_options(fs)
            },
        )
        .unwrap()
    };
    // What the database holds, as the application means it.
    let scan = |db: &Db| -> Model {
        scan_keyspaces(db)
            .unwrap()
            .into_iter()
            .filter_map(|(k, v)| norm(&v).map(|v| (k, v)))
            .collect()
    };
    let mut db = Some(open(&fs));
    let mut handles: BTreeMap<u8, Keyspace> = BTreeMap::new();
    let mut acks = AckLog::default();
    let mut model = Model::new();
    let opts = |sync| WriteOptions {
        sync,
        ..Default::default()
    };
    for op in ops {
        let d = db.as_ref().unwrap();
        let mut ks = |i: u8| {
            handles
                .entry(i)
                .or_insert_with(|| d.keyspace(KEYSPACES[usize::from(i)]).unwrap())
                .clone()
        };
        match op {
            CrashOp::Put(s, key, n, sync) => {
                let key_byte = key;
                ks(s).put_opt(k(key), v(key, n), &opts(sync)).unwrap();
                let key = model_key(s.into(), &k(key));
                let w = vec![match norm(&v(key_byte, n)) {
                    Some(value) => WriteOp::Put(key, value),
                    None => WriteOp::Delete(key),
                }];
                apply(&mut model, &w);
                acks.acknowledged(w, sync);
            }
            CrashOp::Delete(s, key, sync) => {
                ks(s).delete_opt(k(key), &opts(sync)).unwrap();
                let w = vec![WriteOp::Delete(model_key(s.into(), &k(key)))];
                apply(&mut model, &w);
                acks.acknowledged(w, sync);
            }
            CrashOp::DeleteRange(s, a, b, sync) => {
                let (start, end) = match b {
                    NO_END => (k(a), None),
                    b => (k(a.min(b)), Some(k(a.max(b)))),
                };
                let w = vec![model_range(s.into(), &start, end.as_deref())];
                match &end {
                    None => ks(s).delete_range_opt(start.as_slice().., &opts(sync)),
                    Some(end) => {
                        ks(s).delete_range_opt(start.as_slice()..end.as_slice(), &opts(sync))
                    }
                }
                .unwrap();
                apply(&mut model, &w);
                acks.acknowledged(w, sync);
            }
            CrashOp::Move(from, to, key, sync) if from != to => {
                let Some(value) = model.get(&model_key(from.into(), &k(key))).cloned() else {
                    continue;
                };
                let mut batch = WriteBatch::new();
                batch.delete_in(&ks(from), k(key));
                batch.put_in(&ks(to), k(key), &value);
                d.write_opt(batch, &opts(sync)).unwrap();
                let w = vec![
                    WriteOp::Delete(model_key(from.into(), &k(key))),
                    WriteOp::Put(model_key(to.into(), &k(key)), value),
                ];
                apply(&mut model, &w);
                acks.acknowledged(w, sync);
            }
            CrashOp::Move(..) => {}
            CrashOp::Get(s, key) => {
                let got = ks(s).get(k(key)).unwrap().and_then(|b| norm(&b));
                prop_assert_eq!(got, model.get(&model_key(s.into(), &k(key))).cloned());
            }
            CrashOp::Range(s, a, b, rev) => {
                let mine: Model = common::keyspaces::entries_of(&model, s.into())
                    .map(|(k, v)| (k.to_vec(), v.clone()))
                    .collect();
                check_range(&ks(s), &mine, a, b, rev)?
            }
            CrashOp::Flush(s) => {
                ks(s).flush().unwrap();
                acks.durable_through_last(|key| key[0] == s);
            }
            CrashOp::CompactRange(s, a, b) => {
                let (lo, hi) = (k(a.min(b)), k(a.max(b)));
                ks(s).compact_range(lo.as_slice()..=hi.as_slice()).unwrap();
                acks.durable_through_last(|key| key[0] == s);
            }
            CrashOp::DropKeyspace(s) => {
                let name = KEYSPACES[usize::from(s)];
                if d.keyspace_names().iter().any(|n| n == name) {
                    handles.remove(&s);
                    d.drop_keyspace(name).unwrap();
                    let w = drop_write(s.into());
                    apply(&mut model, &w);
                    acks.acknowledged(w, true);
                }
            }
            CrashOp::Reopen => {
                handles.clear();
                drop(db.take());
                db = Some(open(&fs));
                let got = scan(db.as_ref().unwrap());
                prop_assert_eq!(&got, &model);
                acks.all_durable();
            }
            CrashOp::PowerLoss(seed) => {
                let mode = match seed % 3 {
                    0 => UnsyncedData::Drop,
                    1 => UnsyncedData::KeepRandomPrefix(seed),
                    _ => UnsyncedData::KeepRandomPages(seed),
                };
                handles.clear();
                power_cycle(&fs, db.take().expect("open"), mode);
                db = Some(open(&fs));
                let got = scan(db.as_ref().unwrap());
                if let Err(e) = acks.recovered(&got) {
                    return Err(TestCaseError::fail(format!("after power loss: {e}")));
                }
                model = got;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn strata_agrees_with_a_btreemap_across_power_loss(ops in proptest::collection::vec(crash_op(), 1..300)) {
        run_with_power_loss(ops)?;
    }
}

/// The ledger the crash tests share (`tests/common/ack_log.rs`) accepts
/// exactly the states its rule allows.
mod ack_log_rule {
    use super::common::ack_log::*;

    fn put(k: &str, v: &str) -> Write {
        vec![WriteOp::Put(k.into(), v.into())]
    }

    fn model(pairs: &[(&str, &str)]) -> Model {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_prefix_holding_every_durable_write_passes_and_anything_else_fails() {
        let mut acks = AckLog::new(model(&[("a", "0")]));
        acks.acknowledged(put("a", "1"), true);
        acks.acknowledged(put("b", "1"), false);
        acks.acknowledged(put("c", "1"), false);
        // Lost the unsynced tail: fine.
        let r = acks.recovered(&model(&[("a", "1"), ("b", "1")])).unwrap();
        assert_eq!((r.prefix, r.acknowledged), (2, 3));

        let mut acks = AckLog::new(model(&[]));
        acks.acknowledged(put("a", "1"), false);
        acks.acknowledged(put("b", "1"), true);
        // Lost a synced write.
        assert!(acks.recovered(&model(&[("a", "1")])).is_err());

        let mut acks = AckLog::new(model(&[]));
        acks.acknowledged(put("a", "1"), false);
        acks.acknowledged(put("b", "1"), false);
        // A hole: the second write without the first.
        assert!(acks.recovered(&model(&[("b", "1")])).is_err());
    }

    #[test]
    fn the_write_in_doubt_may_land_after_all_acknowledged_ones() {
        let mut acks = AckLog::new(model(&[]));
        acks.acknowledged(put("a", "1"), false);
        acks.in_doubt(Some(put("b", "1")));
        let r = acks.recovered(&model(&[("a", "1"), ("b", "1")])).unwrap();
        assert_eq!(r.in_doubt_applied, Some(true));
        // The next epoch starts from what was recovered.
        acks.acknowledged(put("c", "1"), true);
        assert!(acks
            .recovered(&model(&[("a", "1"), ("b", "1"), ("c", "1")]))
            .is_ok());
    }
}

/// Range deletes in the shared ledger: applied as ranges, checked by the
/// same prefix rule, made durable by a flush of the keyspace their start
/// is in, and allowed by salvage to have removed any key in their range.
mod ack_log_range_deletes {
    use super::common::ack_log::*;
    use super::common::keyspaces::{keyspace_range, model_key, model_range};
    use std::ops::Bound;

    fn model(keys: &[&str]) -> Model {
        keys.iter()
            .map(|k| (k.as_bytes().to_vec(), b"v".to_vec()))
            .collect()
    }

    fn range(start: &str, end: Option<&str>) -> Write {
        vec![WriteOp::DeleteRange(start.into(), end.map(Into::into))]
    }

    #[test]
    fn a_range_delete_removes_exactly_its_keys() {
        let mut m = model(&["a", "b", "ba", "c", "d"]);
        apply(&mut m, &range("b", Some("c")));
        assert_eq!(m, model(&["a", "c", "d"]));
        apply(&mut m, &range("c", None));
        assert_eq!(m, model(&["a"]));
        // Not after its start: nothing.
        apply(&mut m, &range("b", Some("a")));
        assert_eq!(m, model(&["a"]));
    }

    #[test]
    fn a_lost_durable_range_delete_fails_and_a_lost_unsynced_one_passes() {
        let base = model(&["a", "b", "c"]);
        let mut acks = AckLog::new(base.clone());
        acks.acknowledged(range("a", Some("c")), true);
        assert!(acks.recovered(&base).is_err(), "the synced delete was lost");

        let mut acks = AckLog::new(base.clone());
        acks.acknowledged(range("a", Some("c")), false);
        let r = acks.recovered(&base).unwrap();
        assert_eq!((r.prefix, r.acknowledged), (0, 1));
        // Half a range delete is no prefix.
        let mut acks = AckLog::new(base);
        acks.acknowledged(range("a", Some("c")), false);
        assert!(acks.recovered(&model(&["b", "c"])).is_err());
    }

    #[test]
    fn a_flush_makes_a_range_delete_durable_by_its_start_keyspace() {
        let base: Model = [model_key(1, b"k"), model_key(2, b"k")]
            .into_iter()
            .map(|k| (k, b"v".to_vec()))
            .collect();
        let mut acks = AckLog::new(base.clone());
        acks.acknowledged(vec![model_range(1, b"", None)], false);
        acks.durable_through_last(|k| k[0] == 2);
        assert!(acks.recovered(&base).is_ok(), "keyspace 2's flush");
        let mut acks = AckLog::new(base.clone());
        acks.acknowledged(vec![model_range(1, b"", None)], false);
        acks.durable_through_last(|k| k[0] == 1);
        assert!(acks.recovered(&base).is_err(), "keyspace 1's flush");
    }

    /// Found by the power-loss model: an empty range writes no record,
    /// so a flush of its keyspace makes nothing before it durable.
    #[test]
    fn an_empty_range_makes_nothing_durable() {
        let mut acks = AckLog::new(Model::new());
        acks.acknowledged(vec![WriteOp::Put(model_key(0, b"k"), b"v".to_vec())], false);
        acks.acknowledged(vec![model_range(2, b"a", Some(b"a"))], false);
        acks.durable_through_last(|k| k[0] == 2);
        assert!(acks.recovered(&Model::new()).is_ok());
    }

    #[test]
    fn a_keyspace_range_round_trips_through_the_model() {
        let WriteOp::DeleteRange(start, end) = model_range(2, b"a", None) else {
            unreachable!()
        };
        assert_eq!(end.as_deref(), Some(&[3u8][..]), "the next keyspace");
        let (ks, bounds) = keyspace_range(&start, end.as_deref());
        assert_eq!(ks, 2);
        assert_eq!(bounds, (Bound::Included(&b"a"[..]), Bound::Unbounded));
        let WriteOp::DeleteRange(start, end) = model_range(2, b"a", Some(b"c")) else {
            unreachable!()
        };
        let (_, bounds) = keyspace_range(&start, end.as_deref());
        assert_eq!(
            bounds,
            (Bound::Included(&b"a"[..]), Bound::Excluded(&b"c"[..]))
        );
    }

    #[test]
    fn salvage_may_lose_keys_in_a_later_range_only() {
        let base = model(&["a", "b", "c"]);
        let mut acks = AckLog::new(base.clone());
        acks.acknowledged(range("b", Some("c")), false);
        assert!(acks.salvaged(&model(&["a", "c"])).is_ok());
        let mut acks = AckLog::new(base);
        acks.acknowledged(range("b", Some("c")), false);
        assert!(
            acks.salvaged(&model(&["a", "b"])).is_err(),
            "c is outside the range"
        );
    }
}

/// Found by the feed check: a write to a keyspace dropped later, after
/// the cursor acknowledged everything before it.
#[test]
fn regression_the_feed_keeps_a_dropped_keyspace_write_past_the_cursor() {
    run(vec![
        Op::FeedAck(0),
        Op::DeleteRange(1, 10, 255),
        Op::Put(0, 14, 37129),
        Op::Put(0, 21, 63770),
        Op::Put(0, 25, 4113),
        Op::Delete(0, 28),
        Op::Ingest(0, vec![(20, 0, 51442), (21, 2, 58752)], true, None),
        Op::Merge(0, 8, 7092),
        Op::Ingest(
            0,
            vec![(14, 1, 11746), (4, 2, 20475), (36, 2, 53277), (5, 0, 20139)],
            true,
            None,
        ),
        Op::PutTtl(3, 37, 4368, 3),
        Op::CompactRange(0, 27, 28),
        Op::Put(2, 37, 12739),
        Op::DropKeyspace(2),
        Op::FeedAck(17403707705691208958),
        Op::Advance(2),
        Op::CompactRange(3, 16, 7),
        Op::DropKeyspace(1),
    ])
    .unwrap();
}

/// An ingested table's range deletes (bounded, to the end, refused when
/// empty) hide what the keyspace held in tables and memtables, not the
/// table's own entries, and not what a snapshot taken before sees;
/// compared with the model through a flush, a compaction and a reopen.
#[test]
fn ingested_range_deletes_hide_older_data_only() {
    run(vec![
        Op::Put(0, 3, 1),
        Op::Put(0, 5, 2),
        Op::Put(0, 9, 3),
        Op::Flush(0),
        Op::Put(0, 6, 4),
        Op::Merge(0, 7, 5),
        Op::TakeSnapshot,
        Op::Ingest(0, vec![(5, 0, 6), (7, 2, 7)], true, Some((4, 8))),
        Op::SnapshotScan(0, 0, false),
        Op::Ingest(0, vec![(20, 0, 8)], false, Some((8, 8))),
        Op::Put(0, 30, 9),
        Op::Ingest(0, vec![(12, 1, 0)], true, Some((10, NO_END))),
        Op::CompactRange(0, 0, 39),
        Op::Reopen,
        Op::SnapshotScan(0, 0, true),
    ])
    .unwrap();
}
