//! Deterministic simulation: the whole engine on the in-memory filesystem,
//! with `inline_background_work` (no threads: flushes and compactions run
//! as steps of the one simulated thread), driven from a seed.
//!
//! Each seed runs a few hundred random operations (writes, batches, range
//! and prefix deletes, alone and in batches, reads, scans in both
//! directions, snapshots, flushes, compactions, clean reopens) while arming power losses at random points (`crash_after`) and
//! I/O errors on every kind of filesystem operation. The operations spread
//! over the default keyspace and three more (`tests/common/keyspaces.rs`),
//! created on first use and now and then dropped (and later re-created);
//! batches span keyspaces, some move a value from one to another, flushes
//! and compactions are per keyspace, and snapshot reads go through the
//! handle open when the snapshot was taken. Every keyspace has the
//! compaction filter of `tests/common/filter.rs` (values marked `#` are
//! removed, `^` upper-cased), whose decisions readers cannot tell apart:
//! the model and the ledger hold values as the application means them,
//! and what is read is normalised the same way.
//!
//! Time runs on a `ManualClock` only the simulation moves (a step now and
//! then, by up to 40 s; never back, and on through power losses). One
//! write in six carries a time to live (`WriteOptions::ttl`, 1-60 s), and
//! `ks3` has a default one (30 s) and `periodic_compaction_seconds`; the
//! model holds each expiring value with its expiry (`common/expiring.rs`)
//! and every comparison, the ledger's after a power loss included, sees
//! it through the same clock. Seeds that salvage (`SkipAnyCorruptedRecords`,
//! no prefix promised) write no time to live: which expiring write a
//! salvage kept could not be told. The rules checked:
//!
//! - every read agrees with a `BTreeMap` model;
//! - an injected error surfaces as an `Err` naming it (then the machine
//!   crashes, loses power and reboots), never as wrong data;
//! - after every power loss, reopening gives exactly the state after a
//!   prefix of the acknowledged writes (plus, possibly, the one write that
//!   failed), and that prefix holds every write acknowledged with
//!   `sync: true` or followed by a successful `flush` (of its keyspace, or
//!   of a keyspace written after it) or `drop_keyspace`; a move is in
//!   exactly one of its keyspaces, as the prefix rule implies;
//! - a reopen without power loss loses nothing acknowledged;
//! - reopening after a plain power loss (no fault armed) never fails;
//! - the change feed (`common/feed_log.rs`), read now and then and after
//!   every recovery, yields exactly the numbers of the writes the seed
//!   knows survived, in order, each ingestion (`SstWriter` tables ingested
//!   between the writes, moved or copied) as a gap of exactly its
//!   numbers; two seeds in three keep a cursor that pins the WALs it has
//!   not acknowledged, so no other gap may reach past it. Salvaging seeds
//!   promise no prefix and do not read the feed.
//!
//! Half the seeds recover in the default mode, a quarter in
//! `PointInTimeRecovery`, an eighth each in `AbsoluteConsistency` (which
//! refuses the torn tail a power loss leaves: the seed then recovers in the
//! default mode, as an operator would) and `SkipAnyCorruptedRecords`
//! (salvage: checked for keeping every durable write and inventing
//! nothing, since it promises no prefix). Seeds alternate, in runs of
//! eight, between a memory-mapped WAL and one written with write(2).
//!
//! `SIMULATION_SEEDS=n` (default 1000) and `SIMULATION_FIRST_SEED` choose
//! the seeds, `SIMULATION_SECONDS=s` runs seeds until time is up instead,
//! and `SIMULATION_SEED=n` replays one seed (a failure prints that line);
//! `SIMULATION_FULL_TRACE=1` makes a failure print every event of its
//! seed, not only the last twelve.
//! The same seed replays the same run exactly.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::ack_log::{apply, AckLog, Model, Write, WriteOp};
use common::expiring::{expiring, live, live_model};
use common::feed_log::{visible, FeedLog, Took};
use common::filter::{mark_filter, norm, MarkAwareAppend};
use common::keyspaces::{
    drop_write, entries_of, keyspace_range, model_key, model_range, scan_keyspaces, KEYSPACES,
};
use common::Rng;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata::fs::{FaultPlan, FsOp, MemFileSystem, UnsyncedData};
use strata::{
    Clock, Compression, CompressionOptions, Db, Error, Keyspace, KeyspaceOptions, ManualClock,
    Options, Snapshot, WalRecoveryMode, WalWriteMode, WriteBatch, WriteOptions,
};

/// An iterator over a scan's entries, in either direction.
type Entries = Box<dyn Iterator<Item = strata::Result<(strata::Bytes, strata::Bytes)>>>;

type Entry = (Vec<u8>, Vec<u8>);

const KEYS: u64 = 300;
/// `ks3`'s default time to live.
const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// A dropped keyspace stays dropped through a power loss, and so does
/// every write acknowledged before the drop: the drop is a MANIFEST edit,
/// synced before it returns, and the state after it must be a prefix.
const DROP_IS_DURABLE: bool = true;
const FAULT_KINDS: [FsOp; 8] = [
    FsOp::Append,
    FsOp::Sync,
    FsOp::Read,
    FsOp::Rename,
    FsOp::Remove,
    FsOp::Create,
    FsOp::SyncDir,
    FsOp::List,
];

/// What a seed did, summed over seeds for the report.
#[derive(Debug, Default, Clone)]
struct Figures {
    seeds: u64,
    ops: u64,
    acked_writes: u64,
    acked_sync_writes: u64,
    power_losses: u64,
    crash_points_hit: u64,
    clean_reopens: u64,
    failed_opens: u64,
    errors_surfaced: u64,
    in_doubt_applied: u64,
    in_doubt_dropped: u64,
    unsynced_writes_lost: u64,
    absolute_refusals: u64,
    moves: u64,
    keyspace_drops: u64,
    keyspace_flushes: u64,
    /// Acknowledged range deletes (alone or in a batch) and prefix deletes.
    range_deletes: u64,
    prefix_deletes: u64,
    /// Acknowledged merge operands (in batches).
    merges: u64,
    /// Acknowledged puts with a time to live (the write's or `ks3`'s
    /// default), and moves of the clock.
    expiring_puts: u64,
    ingestions: u64,
    /// Change feed reads checked, the batches and the gaps they met.
    feed_reads: u64,
    feed_batches: u64,
    feed_gaps: u64,
    clock_moves: u64,
    faults: BTreeMap<String, u64>,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        self.seeds += o.seeds;
        self.ops += o.ops;
        self.acked_writes += o.acked_writes;
        self.acked_sync_writes += o.acked_sync_writes;
        self.power_losses += o.power_losses;
        self.crash_points_hit += o.crash_points_hit;
        self.clean_reopens += o.clean_reopens;
        self.failed_opens += o.failed_opens;
        self.errors_surfaced += o.errors_surfaced;
        self.in_doubt_applied += o.in_doubt_applied;
        self.in_doubt_dropped += o.in_doubt_dropped;
        self.unsynced_writes_lost += o.unsynced_writes_lost;
        self.absolute_refusals += o.absolute_refusals;
        self.moves += o.moves;
        self.keyspace_drops += o.keyspace_drops;
        self.keyspace_flushes += o.keyspace_flushes;
        self.range_deletes += o.range_deletes;
        self.prefix_deletes += o.prefix_deletes;
        self.merges += o.merges;
        self.expiring_puts += o.expiring_puts;
        self.ingestions += o.ingestions;
        self.feed_reads += o.feed_reads;
        self.feed_batches += o.feed_batches;
        self.feed_gaps += o.feed_gaps;
        self.clock_moves += o.clock_moves;
        for (k, v) in &o.faults {
            *self.faults.entry(k.clone()).or_default() += v;
        }
    }
}

struct Sim {
    seed: u64,
    rng: Rng,
    fs: MemFileSystem,
    db: Option<Db>,
    /// Writes acknowledged since the last reboot, which must survive a
    /// power loss, and a failed one that may or may not have.
    acks: AckLog,
    /// What reads must see now, over every keyspace (`common::keyspaces`).
    model: Model,
    /// Handles on the keyspaces of [`KEYSPACES`] opened since the last
    /// (re)open; the others are opened, and created, on first use.
    handles: [Option<Keyspace>; KEYSPACES.len()],
    /// Each snapshot with the model it must see and the handles open when
    /// it was taken (a keyspace dropped since reads through its old one).
    snapshots: Vec<(Snapshot, Model, Vec<Option<Keyspace>>)>,
    /// How many times each keyspace was dropped: a snapshot holding a
    /// handle from before a drop keeps the dropped keyspace's tables.
    drops: [u64; KEYSPACES.len()],
    /// `drops` when each snapshot was taken.
    snapshot_drops: Vec<[u64; KEYSPACES.len()]>,
    /// A fault plan or crash point is armed (errors are expected).
    armed: bool,
    /// Recovery mode for this seed.
    mode: WalRecoveryMode,
    /// How this seed's WALs are written.
    wal_write_mode: WalWriteMode,
    writes: u64,
    trace: Vec<String>,
    fig: Figures,
    /// The database's clock, moved only by the simulation.
    clock: Arc<ManualClock>,
    /// Whether writes may carry a time to live (not when salvaging).
    ttl_writes: bool,
    /// The committed writes' sequence numbers, for the change feed.
    feed: FeedLog,
    /// What the failed operation would have taken of the numbers.
    in_doubt_took: Option<Took>,
    /// Tables built for ingestion so far (their names).
    ingested: u64,
}

fn dir() -> PathBuf {
    PathBuf::from("/sim")
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

impl Sim {
    fn options(&self) -> Options {
        Options {
            fs: Arc::new(self.fs.clone()),
            inline_background_work: true,
            write_buffer_size: 64 * 1024,
            block_size: 512,
            target_file_size_base: 64 * 1024,
            max_bytes_for_level_base: 128 * 1024,
            level0_file_num_compaction_trigger: 2,
            wal_recovery_mode: self.mode,
            wal_write_mode: self.wal_write_mode,
            // A quarter of the seeds cap the WALs and the memtables'
            // total, which flush the keyspaces pinning the oldest WAL and
            // the largest memtable.
            max_total_wal_size: if self.seed % 4 == 1 { 192 * 1024 } else { 0 },
            db_write_buffer_size: if self.seed % 4 == 1 { 160 * 1024 } else { 0 },
            // Scans step over 0, 1 or 8 (the default) versions of a key
            // before seeking past the rest.
            max_sequential_skip_in_iterations: [0, 1, 8][(self.seed % 3) as usize],
            // The table writers' writeback pacing every 4 KiB (several
            // times a table here; on this filesystem a writeback is a
            // flush), never, or at the default (never, for tables this
            // small).
            bytes_per_sync: [4 << 10, 0, 1 << 20][(self.seed / 7 % 3) as usize],
            // Merges append (the model's `WriteOp::Merge`), a `#` base
            // counting as none.
            merge_operator: Some(Arc::new(MarkAwareAppend)),
            // A fifth of the seeds store a merge over two operands as a
            // put of the merged value.
            max_successive_merges: if self.seed % 5 == 3 { 2 } else { 0 },
            compaction_filter_factory: Some(mark_filter()),
            clock: Arc::clone(&self.clock) as Arc<dyn Clock>,
            ..Options::default()
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_micros()
    }

    /// The time to live a put into keyspace `ks` gets from its options.
    fn default_ttl(&self, ks: usize) -> Option<Duration> {
        (ks == 3 && self.ttl_writes).then_some(DEFAULT_TTL)
    }

    /// `ks2` runs with options of its own (larger memtables and blocks,
    /// another compression, and in a third of the seeds its values of 16
    /// bytes or more in blob files, half of those with blob garbage
    /// collection relocating from the older half of the blob files and
    /// forced at a garbage ratio of 0.3), as an application may give each keyspace;
    /// `ks3` with a default time to live and periodic compaction.
    fn keyspace_options(&self, ks: usize) -> Option<KeyspaceOptions> {
        match ks {
            2 => Some(KeyspaceOptions {
                write_buffer_size: 96 * 1024,
                block_size: 2048,
                compression: Compression::Zstd { level: 1 },
                // A dictionary per table in half the seeds: raw content,
                // or trained (where a table is large enough).
                compression_opts: CompressionOptions {
                    max_dict_bytes: if self.seed % 2 == 1 { 1024 } else { 0 },
                    zstd_max_train_bytes: if self.seed % 4 == 3 { 16 << 10 } else { 0 },
                },
                enable_blob_files: self.seed % 3 == 2,
                min_blob_size: 16,
                blob_file_size: 64 * 1024,
                enable_blob_garbage_collection: self.seed % 6 == 5,
                blob_garbage_collection_age_cutoff: 0.5,
                blob_garbage_collection_force_threshold: 0.3,
                // RocksDB's rule (any garbage) or strata's default ratio.
                blob_garbage_collection_min_garbage_ratio: if self.seed % 4 < 2 {
                    0.0
                } else {
                    0.25
                },
                ..self.options().keyspace_options()
            }),
            3 if self.ttl_writes => Some(KeyspaceOptions {
                default_ttl: self.default_ttl(3),
                periodic_compaction_seconds: 120,
                ..self.options().keyspace_options()
            }),
            _ => None,
        }
    }

    /// The handle on keyspace `ks`, opening (creating) it on first use.
    fn handle(&mut self, ks: usize) -> Result<Keyspace, Error> {
        if let Some(h) = &self.handles[ks] {
            return Ok(h.clone());
        }
        let h = match self.keyspace_options(ks) {
            Some(o) => self.db().keyspace_with(KEYSPACES[ks], o)?,
            None => self.db().keyspace(KEYSPACES[ks])?,
        };
        self.handles[ks] = Some(h.clone());
        Ok(h)
    }

    /// A keyspace to work on: the default one as often as the others
    /// together.
    fn pick_keyspace(&mut self) -> usize {
        if self.rng.one_in(2) {
            0
        } else {
            1 + self.rng.below(KEYSPACES.len() as u64 - 1) as usize
        }
    }

    /// A snapshot holds a handle on a keyspace dropped since: its tables
    /// stay on disk, in no version, until the snapshot goes.
    fn dropped_keyspace_held(&self) -> bool {
        self.snapshots
            .iter()
            .zip(&self.snapshot_drops)
            .any(|((_, _, handles), drops)| {
                (0..KEYSPACES.len()).any(|i| handles[i].is_some() && drops[i] != self.drops[i])
            })
    }

    /// Handles hold the database open: a close or crash lets go of them.
    fn close_db(&mut self) {
        self.snapshots.clear();
        self.snapshot_drops.clear();
        self.handles = Default::default();
        drop(self.db.take());
    }

    fn new(seed: u64) -> Sim {
        let mut sim = Sim {
            seed,
            rng: Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x1234_5678),
            fs: MemFileSystem::new(),
            db: None,
            acks: AckLog::default(),
            model: Model::new(),
            handles: Default::default(),
            snapshots: Vec::new(),
            drops: Default::default(),
            snapshot_drops: Vec::new(),
            armed: false,
            // Half the seeds recover in the default mode, the rest in the
            // other three.
            mode: match seed % 8 {
                0..=3 => WalRecoveryMode::TolerateCorruptedTailRecords,
                4 | 5 => WalRecoveryMode::PointInTimeRecovery,
                6 => WalRecoveryMode::AbsoluteConsistency,
                _ => WalRecoveryMode::SkipAnyCorruptedRecords,
            },
            // Both WAL kinds: appended through a mapping, or with write(2).
            wal_write_mode: if (seed / 8).is_multiple_of(2) {
                WalWriteMode::MemoryMapped
            } else {
                WalWriteMode::Write
            },
            writes: 0,
            trace: Vec::new(),
            fig: Figures {
                seeds: 1,
                ..Figures::default()
            },
            clock: Arc::new(ManualClock::new(1_780_000_000_000_000)),
            ttl_writes: seed % 8 != 7,
            feed: FeedLog::default(),
            in_doubt_took: None,
            ingested: 0,
        };
        sim.db = Some(Db::open(dir(), sim.options()).expect("first open"));
        // Where tables to ingest are built.
        strata::fs::FileSystem::create_dir_all(&sim.fs, &PathBuf::from("/ext")).expect("/ext");
        if !seed.is_multiple_of(3) {
            let cursor = sim.db().change_feed("sim").expect("a cursor");
            sim.feed.acked = Some(cursor.acked().expect("its position"));
        }
        sim
    }

    /// Whether the feed is checked: salvage promises no prefix.
    fn feed_checked(&self) -> bool {
        self.mode != WalRecoveryMode::SkipAnyCorruptedRecords
    }

    /// Read the change feed from a position the log picks (or the
    /// cursor's) and check it; with `synced`, every write must show.
    fn read_feed(&mut self, synced: bool) -> Result<String, Error> {
        if !self.feed_checked() {
            return Ok("feed (not checked when salvaging)".into());
        }
        let from = match self.feed.acked {
            Some(acked) if self.rng.one_in(3) => acked + 1,
            _ => {
                let choice = self.rng.next() as usize;
                self.feed.position(choice)
            }
        };
        let synced = synced || self.rng.one_in(2);
        if synced {
            self.db().flush_wal(true)?;
        }
        match self.feed.check(self.db(), from, synced)? {
            Ok((batches, gaps)) => {
                self.fig.feed_reads += 1;
                self.fig.feed_batches += batches as u64;
                self.fig.feed_gaps += gaps as u64;
                Ok(format!("feed from {from}: {batches} batches, {gaps} gaps"))
            }
            Err(e) => self.fail(format!("change feed from {from}: {e}")),
        }
    }

    /// Acknowledge a write through the cursor, if this seed keeps one.
    fn ack_feed(&mut self) -> Result<String, Error> {
        let choice = self.rng.next() as usize;
        let Some(seq) = self.feed.ack_point(choice) else {
            return Ok("no ack".into());
        };
        self.db().change_feed("sim")?.ack(seq)?;
        self.feed.acked = Some(seq);
        Ok(format!("ack {seq}"))
    }

    /// Build a table of a few keys of a keyspace with `SstWriter` and
    /// ingest it: to the model, one synced write of those puts (the
    /// ingestion syncs the WAL before its MANIFEST edit, which it waits
    /// for); to the feed, a gap of its numbers.
    fn ingest(&mut self) -> Result<String, (Error, Option<Write>)> {
        // Not `ks3`: its default time to live is the write path's.
        let ks = self.rng.below(3) as usize;
        let start = self.rng.below(KEYS);
        let n = 1 + self.rng.below(12);
        let step = 1 + self.rng.below(3);
        let keys: Vec<u64> = (0..n)
            .map(|i| start + i * step)
            .filter(|&k| k < KEYS)
            .collect();
        let mut w = Write::new();
        for &k in &keys {
            let v = self.value(k);
            w.push(WriteOp::Put(model_key(ks, &key(k)), v));
        }
        self.ingested += 1;
        let ext = PathBuf::from("/ext");
        let path = ext.join(format!("{}.sst", self.ingested));
        let moving = self.rng.one_in(2);
        let h = self.handle(ks).map_err(|e| (e, None))?;
        let built = (|| {
            let mut sst = strata::SstWriter::create(&path, &self.options())?;
            for op in &w {
                if let WriteOp::Put(mk, v) = op {
                    sst.put(&mk[1..], v)?;
                }
            }
            sst.finish()
        })();
        built.map_err(|e| (e, None))?;
        let before = visible(self.db());
        let opts = strata::IngestOptions {
            move_files: moving,
            ..Default::default()
        };
        let w = norm_write(w);
        self.in_doubt_took = Some(Took::Ingestion);
        h.ingest(&[&path], &opts)
            .map_err(|e| (e, Some(w.clone())))?;
        self.in_doubt_took = None;
        self.feed
            .committed(before, visible(self.db()), Took::Ingestion);
        apply(&mut self.model, &w);
        self.acks.acknowledged(w, true);
        self.fig.ingestions += 1;
        Ok(format!(
            "ingest {} keys into {} (move {moving})",
            keys.len(),
            KEYSPACES[ks]
        ))
    }

    fn fail(&self, what: String) -> ! {
        let shown = if std::env::var_os("SIMULATION_FULL_TRACE").is_some() {
            self.trace.len()
        } else {
            12
        };
        panic!(
            "simulation seed {}: {what}\nreplay: SIMULATION_SEED={} cargo test --profile checked --test simulation -- --nocapture\nlast events: {:?}",
            self.seed,
            self.seed,
            &self.trace[self.trace.len().saturating_sub(shown)..]
        )
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("database open")
    }

    fn value(&mut self, k: u64) -> Vec<u8> {
        self.writes += 1;
        let len = if self.rng.one_in(20) {
            2000 + self.rng.below(6000)
        } else {
            20 + self.rng.below(400)
        } as usize;
        // One in ten marked for the filter to remove, one in ten to
        // upper-case.
        let mark = match self.rng.below(10) {
            0 => "#",
            1 => "^",
            _ => "",
        };
        let mut v = format!("{mark}{k}:{}:{}:", self.seed, self.writes).into_bytes();
        v.resize(len.max(v.len()), b'a' + (self.writes % 26) as u8);
        v
    }

    fn run(&mut self) {
        let ops = 150 + self.rng.below(250);
        for i in 0..ops {
            self.fig.ops += 1;
            self.step(i);
        }
        // End of the seed: a final power loss, then a clean reopen.
        self.power_loss_and_recover("final power loss");
        self.clean_reopen();
        self.fig.faults = self
            .fs
            .fault_counts()
            .into_iter()
            .map(|(k, v)| (format!("{k:?}"), v))
            .collect();
    }

    fn step(&mut self, i: u64) {
        let r = self.rng.below(1000);
        let outcome: Result<String, (Error, Option<Write>)> = match r {
            0..=299 => self.write_one(false),
            300..=359 => self.write_one(true),
            360..=379 => self.delete_range(),
            380..=439 => self.write_batch(),
            440..=469 => self.move_between_keyspaces(),
            470..=559 => self.get().map_err(|e| (e, None)),
            560..=574 => self.read_feed(false).map_err(|e| (e, None)),
            575..=584 => self.ingest(),
            585..=589 => self.ack_feed().map_err(|e| (e, None)),
            590..=659 => self.scan().map_err(|e| (e, None)),
            660..=689 => {
                let snap = self.db().snapshot();
                let handles = self.handles.to_vec();
                self.snapshots.push((snap, self.model.clone(), handles));
                self.snapshot_drops.push(self.drops);
                Ok("snapshot".into())
            }
            690..=729 => self.snapshot_read().map_err(|e| (e, None)),
            730..=739 => {
                if !self.snapshots.is_empty() {
                    let n = self.rng.below(self.snapshots.len() as u64) as usize;
                    self.snapshots.remove(n);
                    self.snapshot_drops.remove(n);
                }
                Ok("drop snapshot".into())
            }
            740..=769 => self.flush().map_err(|e| (e, None)),
            770..=789 => self.compact_range().map_err(|e| (e, None)),
            790..=819 => self
                .db()
                .run_background_work()
                .map(|_| "background work".into())
                .map_err(|e| (e, None)),
            820..=834 => {
                self.clean_reopen();
                Ok("clean reopen".into())
            }
            835..=839 => self.drop_keyspace(),
            840..=869 => {
                self.power_loss_and_recover("power loss");
                Ok("power loss".into())
            }
            870..=909 => {
                let n = 1 + self.rng.below(300);
                self.fs.crash_after(n);
                self.armed = true;
                Ok(format!("crash after {n} fs ops"))
            }
            910..=969 => Ok(self.arm_fault()),
            970..=984 => {
                let by = Duration::from_millis(self.rng.below(40_000));
                self.clock.advance(by);
                self.fig.clock_moves += 1;
                Ok(format!("clock +{by:?}"))
            }
            _ => {
                if !self.armed && !self.dropped_keyspace_held() {
                    if let Err(e) = self.db().check_invariants() {
                        self.fail(format!("invariants: {e}"));
                    }
                }
                Ok("invariants".into())
            }
        };
        match outcome {
            Ok(what) => self.trace.push(format!("{i}: {what}")),
            Err((e, write)) => {
                self.trace.push(format!("{i}: error {e}"));
                self.check_error(&e, "an operation");
                self.fig.errors_surfaced += 1;
                self.acks.in_doubt(write);
                self.power_loss_and_recover("after an error");
            }
        }
    }

    fn arm_fault(&mut self) -> String {
        let op = FAULT_KINDS[self.rng.below(FAULT_KINDS.len() as u64) as usize];
        let path_contains = match self.rng.below(6) {
            0 => Some(".log".to_owned()),
            1 => Some(".sst".to_owned()),
            2 => Some("MANIFEST".to_owned()),
            3 => Some("CURRENT".to_owned()),
            _ => None,
        };
        let plan = FaultPlan {
            op: Some(op),
            path_contains,
            skip: self.rng.below(40),
            count: if self.rng.one_in(4) { u64::MAX } else { 1 },
        };
        let what = format!("arm {plan:?}");
        self.fs.add_fault(plan);
        self.armed = true;
        what
    }

    /// An error must come from something the simulation armed and say so.
    fn check_error(&self, e: &Error, during: &str) {
        if !self.armed {
            self.fail(format!("{during} failed with no fault or crash armed: {e}"));
        }
        let text = e.to_string();
        let explained = ["injected fault", "simulated crash", "power loss"]
            .iter()
            .any(|s| text.contains(s));
        if !explained {
            self.fail(format!(
                "{during} failed with an error that does not name the injected fault: {e:?}"
            ));
        }
    }

    fn write_one(&mut self, delete: bool) -> Result<String, (Error, Option<Write>)> {
        let ks = self.pick_keyspace();
        let k = self.rng.below(KEYS);
        let w: Write = if delete {
            vec![WriteOp::Delete(model_key(ks, &key(k)))]
        } else {
            let v = self.value(k);
            vec![WriteOp::Put(model_key(ks, &key(k)), v)]
        };
        self.apply_write(w)
    }

    fn write_batch(&mut self) -> Result<String, (Error, Option<Write>)> {
        // Empty batches too: an empty sync write is still a sync point.
        // Each entry in a keyspace of its own choosing: one atomic write
        // across them.
        let n = self.rng.below(7);
        let mut w = Write::new();
        for _ in 0..n {
            let ks = self.pick_keyspace();
            let k = self.rng.below(KEYS);
            if self.rng.one_in(12) {
                let range = self.pick_range(ks);
                w.push(range);
            } else if self.rng.one_in(5) {
                // No letters: upper-casing a `^` value (the filter) leaves
                // operands merged into it as they were.
                let operand = format!("+{}", self.rng.below(100)).into_bytes();
                w.push(WriteOp::Merge(model_key(ks, &key(k)), operand));
            } else if self.rng.one_in(4) {
                w.push(WriteOp::Delete(model_key(ks, &key(k))));
            } else {
                let v = self.value(k);
                w.push(WriteOp::Put(model_key(ks, &key(k)), v));
            }
        }
        self.apply_write(w)
    }

    /// Move a key's value from one keyspace to another in one batch (a
    /// delete in one, a put in the other): after any power loss it is in
    /// exactly one of them, which the prefix rule checks. A key in
    /// neither is put in the first.
    fn move_between_keyspaces(&mut self) -> Result<String, (Error, Option<Write>)> {
        let a = self.pick_keyspace();
        let b = (a + 1 + self.rng.below(KEYSPACES.len() as u64 - 1) as usize) % KEYSPACES.len();
        let k = key(self.rng.below(KEYS));
        let now = self.now();
        let live_in = |ks: usize| {
            self.model
                .get(&model_key(ks, &k))
                .and_then(|v| live(v, now))
        };
        let (from, to) = if live_in(b).is_some() { (b, a) } else { (a, b) };
        let w: Write = match live_in(from) {
            Some(v) => {
                self.fig.moves += 1;
                vec![
                    WriteOp::Delete(model_key(from, &k)),
                    WriteOp::Put(model_key(to, &k), v),
                ]
            }
            None => {
                let v = self.value(0);
                vec![WriteOp::Put(model_key(from, &k), v)]
            }
        };
        self.apply_write(w)
    }

    /// A range of keyspace `ks`'s keys as a model range delete, like
    /// db_stress's `TestDeleteRange`: `[i, i + width)` in key order, the
    /// width mostly under 16, now and then a tenth of the key space or no
    /// end at all.
    fn pick_range(&mut self, ks: usize) -> WriteOp {
        let start = self.rng.below(KEYS);
        let width = match self.rng.below(10) {
            0 => KEYS / 10,
            1 => return model_range(ks, &key(start), None),
            _ => 1 + self.rng.below(15),
        };
        model_range(ks, &key(start), Some(&key(start + width)))
    }

    /// A write of one range delete (or, one time in three, a prefix
    /// delete over the key encoding's prefix: `key001` is keys
    /// 100..200, `key0012` keys 120..130).
    fn delete_range(&mut self) -> Result<String, (Error, Option<Write>)> {
        let ks = self.pick_keyspace();
        if !self.rng.one_in(3) {
            let range = self.pick_range(ks);
            return self.apply_write(vec![range]);
        }
        let digits = if self.rng.one_in(2) { 3 } else { 4 };
        let mut prefix = key(self.rng.below(KEYS));
        prefix.truncate(3 + digits);
        // Its successor: the key encoding's digits are never 0xff.
        let mut end = prefix.clone();
        *end.last_mut().unwrap() += 1;
        let w = vec![model_range(ks, &prefix, Some(&end))];
        let mut batch = WriteBatch::new();
        batch.delete_prefix_in(&self.handle(ks).map_err(|e| (e, None))?, &prefix);
        let r = self.commit(w, batch);
        if r.is_ok() {
            self.fig.prefix_deletes += 1;
        }
        r
    }

    fn apply_write(&mut self, w: Write) -> Result<String, (Error, Option<Write>)> {
        let mut batch = WriteBatch::new();
        for op in &w {
            let ks = usize::from(op.first_key()[0]);
            // Opening a keyspace the first time creates it: a MANIFEST
            // write, which may fail; the model holds nothing for it yet.
            let h = self.handle(ks).map_err(|e| (e, None))?;
            match op {
                WriteOp::Put(mk, v) => batch.put_in(&h, &mk[1..], v),
                WriteOp::Delete(mk) => batch.delete_in(&h, &mk[1..]),
                WriteOp::Merge(mk, operand) => batch.merge_in(&h, &mk[1..], operand),
                WriteOp::DeleteRange(start, end) => {
                    let (_, bounds) = keyspace_range(start, end.as_deref());
                    batch.delete_range_in::<&[u8]>(&h, bounds);
                }
            }
        }
        self.commit(w, batch)
    }

    /// Write `batch`, which `w` describes to the model.
    fn commit(&mut self, w: Write, batch: WriteBatch) -> Result<String, (Error, Option<Write>)> {
        let sync = self.rng.one_in(5);
        let ttl = (self.ttl_writes && self.rng.one_in(6))
            .then(|| Duration::from_millis(1000 + self.rng.below(59_000)));
        let opts = WriteOptions {
            sync,
            ttl,
            ..Default::default()
        };
        // The model and the ledger hold what the application means, each
        // put that expires with its expiry.
        let w = self.stamp_expiry(norm_write(w), ttl);
        let before = visible(self.db());
        self.in_doubt_took = Some(Took::Logged(None));
        match self.db().write_opt(batch, &opts) {
            Ok(()) => {
                self.in_doubt_took = None;
                self.feed
                    .committed(before, visible(self.db()), Took::Logged(None));
                apply(&mut self.model, &w);
                let keys: Vec<String> = w
                    .iter()
                    .map(|op| {
                        let k = op.first_key();
                        let (what, end) = match op {
                            WriteOp::Put(_, v) if live(v, 0).as_ref() != Some(v) => {
                                self.fig.expiring_puts += 1;
                                ("put (expiring)", String::new())
                            }
                            WriteOp::Put(..) => ("put", String::new()),
                            WriteOp::Delete(_) => ("delete", String::new()),
                            WriteOp::Merge(..) => {
                                self.fig.merges += 1;
                                ("merge", String::new())
                            }
                            WriteOp::DeleteRange(_, end) => {
                                self.fig.range_deletes += 1;
                                // The next keyspace's first model key: no end.
                                let end = match end.as_deref() {
                                    Some(e) if e.len() > 1 => short(&e[1..]),
                                    _ => "+inf".to_owned(),
                                };
                                ("delete_range", format!(" .. {end}"))
                            }
                        };
                        format!(
                            "{what} {}/{}{end}",
                            KEYSPACES[usize::from(k[0])],
                            short(&k[1..])
                        )
                    })
                    .collect();
                self.acks.acknowledged(w, sync);
                self.fig.acked_writes += 1;
                if sync {
                    self.fig.acked_sync_writes += 1;
                }
                Ok(format!("write {keys:?} (sync {sync})"))
            }
            Err(e) => Err((e, Some(w))),
        }
    }

    fn get(&mut self) -> Result<String, Error> {
        let ks = self.pick_keyspace();
        let k = key(self.rng.below(KEYS));
        let got = self.handle(ks)?.get(&k)?.and_then(|v| norm(&v));
        let now = self.now();
        let want = self
            .model
            .get(&model_key(ks, &k))
            .and_then(|v| live(v, now));
        let want = want.as_ref();
        if got.as_ref() != want {
            self.fail(format!(
                "wrong read: get {:?} in {} returned {:?}, the model has {:?}",
                String::from_utf8_lossy(&k),
                KEYSPACES[ks],
                got.map(|v| short(&v)),
                want.map(|v| short(v))
            ));
        }
        Ok(format!("get in {}", KEYSPACES[ks]))
    }

    fn scan(&mut self) -> Result<String, Error> {
        let ks = self.pick_keyspace();
        let (a, b) = (self.rng.below(KEYS + 1), self.rng.below(KEYS + 1));
        let (lo, hi) = (key(a.min(b)), key(a.max(b)));
        let reverse = self.rng.one_in(2);
        let it = self.handle(ks)?.range(lo.as_slice()..hi.as_slice());
        let got = collect(it, reverse)?;
        let now = self.now();
        let mut want: Vec<Entry> = self
            .model
            .range(model_key(ks, &lo)..model_key(ks, &hi))
            .filter_map(|(k, v)| Some((k[1..].to_vec(), live(v, now)?)))
            .collect();
        if reverse {
            want.reverse();
        }
        if got != want {
            self.fail(format!(
                "wrong read: scan [{a}, {b}) of {} reverse={reverse} returned {} entries, the model has {}",
                KEYSPACES[ks],
                got.len(),
                want.len()
            ));
        }
        Ok(format!("scan of {} reverse={reverse}", KEYSPACES[ks]))
    }

    /// A scan of one keyspace as of a snapshot, through the handle open
    /// when it was taken (the keyspace may have been dropped since).
    fn snapshot_read(&mut self) -> Result<String, Error> {
        if self.snapshots.is_empty() {
            return Ok("no snapshot".into());
        }
        let n = self.rng.below(self.snapshots.len() as u64) as usize;
        let ks = self.pick_keyspace();
        let reverse = self.rng.one_in(2);
        let (snap, model, handles) = &self.snapshots[n];
        let Some(h) = &handles[ks] else {
            return Ok("no handle at the snapshot".into());
        };
        let got = collect(snap.keyspace(h).iter(), reverse)?;
        // A snapshot fixes the sequence number, not the time: what
        // expired since it was taken is gone from it too.
        let now = self.clock.now_micros();
        let mut want: Vec<Entry> = entries_of(model, ks)
            .filter_map(|(k, v)| Some((k.to_vec(), live(v, now)?)))
            .collect();
        if reverse {
            want.reverse();
        }
        if got != want {
            self.fail(format!(
                "wrong read: snapshot scan of {} returned {} entries, its model has {}",
                KEYSPACES[ks],
                got.len(),
                want.len()
            ));
        }
        Ok(format!("snapshot scan of {}", KEYSPACES[ks]))
    }

    /// Flush the default keyspace, another one, or all. A keyspace's
    /// flush makes its writes durable, and with them every write before
    /// (a flush syncs the WAL first when there are several keyspaces);
    /// later writes to other keyspaces may still be lost.
    fn flush(&mut self) -> Result<String, Error> {
        match self.rng.below(4) {
            0 => {
                self.db().flush()?;
                self.acks.durable_through_last(|k| k[0] == 0);
                Ok("flush of default".to_owned())
            }
            1 => {
                self.db().flush_all()?;
                self.acks.all_durable();
                Ok("flush of all keyspaces".to_owned())
            }
            _ => {
                let ks = 1 + self.rng.below(KEYSPACES.len() as u64 - 1) as usize;
                self.handle(ks)?.flush()?;
                self.acks.durable_through_last(|k| usize::from(k[0]) == ks);
                self.fig.keyspace_flushes += 1;
                Ok(format!("flush of {}", KEYSPACES[ks]))
            }
        }
    }

    fn compact_range(&mut self) -> Result<String, Error> {
        let ks = self.pick_keyspace();
        let (a, b) = (self.rng.below(KEYS), self.rng.below(KEYS));
        let (lo, hi) = (key(a.min(b)), key(a.max(b)));
        self.handle(ks)?
            .compact_range(lo.as_slice()..=hi.as_slice())?;
        // It flushes the keyspace first.
        self.acks.durable_through_last(|k| usize::from(k[0]) == ks);
        Ok(format!("compact_range of {}", KEYSPACES[ks]))
    }

    /// Drop a keyspace (a later write re-creates it empty): to the model,
    /// a write deleting every key it held.
    fn drop_keyspace(&mut self) -> Result<String, (Error, Option<Write>)> {
        let ks = 1 + self.rng.below(KEYSPACES.len() as u64 - 1) as usize;
        let name = KEYSPACES[ks];
        if !self.db().keyspace_names().iter().any(|n| n == name) {
            return Ok(format!("no {name} to drop"));
        }
        let w = drop_write(ks);
        match self.db().drop_keyspace(name) {
            Ok(()) => {
                self.handles[ks] = None;
                self.drops[ks] += 1;
                apply(&mut self.model, &w);
                self.acks.acknowledged(w, DROP_IS_DURABLE);
                self.fig.keyspace_drops += 1;
                Ok(format!("drop {name}"))
            }
            Err(e) => Err((e, Some(w))),
        }
    }

    /// Close cleanly (no power loss) and reopen: nothing acknowledged may
    /// be lost. A fault armed during close or open may make the open fail;
    /// that is handled as a power loss.
    fn clean_reopen(&mut self) {
        self.close_db();
        self.fig.clean_reopens += 1;
        match Db::open(dir(), self.options()) {
            Ok(db) => {
                self.db = Some(db);
                let got = match scan_normalised(self.db()) {
                    Ok(m) => m,
                    Err(e) => {
                        self.check_error(&e, "the scan after a clean reopen");
                        self.power_loss_and_recover("after a failed scan");
                        return;
                    }
                };
                let want = live_model(&self.model, self.now());
                if got != want {
                    self.fail(format!(
                        "a clean reopen lost acknowledged writes: {} keys, the model has {}",
                        got.len(),
                        want.len()
                    ));
                }
                // Everything acknowledged before a clean close was synced by it.
                self.acks.all_durable();
            }
            Err(e) => {
                self.check_error(&e, "a clean reopen");
                self.fig.failed_opens += 1;
                self.power_loss_and_recover("after a failed reopen");
            }
        }
    }

    fn power_loss_and_recover(&mut self, why: &str) {
        if self.fs.is_crashed() {
            self.fig.crash_points_hit += 1;
        }
        self.fs.crash();
        self.close_db();
        let mut attempts = 0;
        let mut in_default_mode = false;
        let db = loop {
            // Half the power losses keep a random subset of the unsynced
            // pages of every file (zeros where one was lost), as a real
            // disk may; the rest drop everything unsynced or keep a prefix.
            let mode = match self.rng.below(4) {
                0 => UnsyncedData::Drop,
                1 => UnsyncedData::KeepRandomPrefix(self.rng.next()),
                _ => UnsyncedData::KeepRandomPages(self.rng.next()),
            };
            self.fs.power_loss(mode);
            self.fig.power_losses += 1;
            self.armed = false;
            // Sometimes fail recovery itself, at first.
            if attempts < 3 && self.rng.one_in(4) {
                if self.rng.one_in(2) {
                    let what = self.arm_fault();
                    self.trace.push(format!("recovery: {what}"));
                } else {
                    let n = 1 + self.rng.below(60);
                    self.fs.crash_after(n);
                    self.armed = true;
                    self.trace.push(format!("recovery: crash after {n}"));
                }
            }
            attempts += 1;
            // AbsoluteConsistency refuses any torn tail, which a power
            // loss leaves: the operator then recovers in the default mode,
            // and the rules below hold for that recovery.
            let options = Options {
                wal_recovery_mode: if in_default_mode {
                    WalRecoveryMode::TolerateCorruptedTailRecords
                } else {
                    self.mode
                },
                ..self.options()
            };
            match Db::open(dir(), options) {
                Ok(db) => break db,
                Err(Error::Corruption { reason, .. })
                    if self.mode == WalRecoveryMode::AbsoluteConsistency
                        && !in_default_mode
                        && (reason.contains("torn tail")
                            || reason.contains("the next WAL says this one held")) =>
                {
                    self.fig.absolute_refusals += 1;
                    self.trace
                        .push("absolute consistency refused a torn tail".into());
                    in_default_mode = true;
                    self.fs.crash();
                }
                Err(e) => {
                    self.check_error(&e, &format!("reopen {why}"));
                    self.fig.failed_opens += 1;
                    self.trace.push(format!("reopen failed: {e}"));
                    self.fs.crash();
                }
            }
        };
        self.db = Some(db);
        let got = match scan_normalised(self.db()) {
            Ok(m) => m,
            Err(e) => {
                self.check_error(&e, "the scan after recovery");
                return self.power_loss_and_recover("after a failed scan");
            }
        };
        // The feed: the writes up to what the database kept, the failed
        // one among them if it took numbers past the last acknowledged.
        let kept = visible(self.db());
        self.feed.recovered(kept);
        let last = self.feed.entries.last().map_or(0, |e| e.last);
        if let Some(took) = self.in_doubt_took.take() {
            self.feed.committed(last, kept, took);
        }
        if self.mode == WalRecoveryMode::SkipAnyCorruptedRecords {
            // Salvage keeps what checks out: no prefix promised.
            if let Err(e) = self.acks.salvaged(&got) {
                self.fail(format!("salvage {why}: {e}"));
            }
            self.trace.push(format!("salvaged {why}"));
            self.model = got;
            return;
        }
        // The recovered state must be a prefix of the acknowledged writes
        // holding every durable one, or all of them plus the failed one.
        let now = self.now();
        let (r, recovered) = match self.acks.recovered_as(&got, &|m| live_model(m, now)) {
            Ok(r) => r,
            Err(e) => self.fail(format!(
                "recovery {why}: {e} (model has {} keys)",
                self.model.len()
            )),
        };
        match r.in_doubt_applied {
            Some(true) => self.fig.in_doubt_applied += 1,
            Some(false) => self.fig.in_doubt_dropped += 1,
            None => {}
        }
        self.fig.unsynced_writes_lost += (r.acknowledged - r.prefix) as u64;
        self.trace.push(format!(
            "recovered {why}: prefix {} of {}",
            r.prefix, r.acknowledged
        ));
        // The state as the ledger holds it: with the expiries.
        self.model = recovered;
        if let Err(e) = self.read_feed(true) {
            self.check_error(&e, "the feed after recovery");
            self.power_loss_and_recover("after a failed feed read");
        }
    }

    /// `w` (normalised) as the model holds it: each put that gets a time
    /// to live, the write's `ttl` or its keyspace's default, carries the
    /// expiry the database gives it (the clock's time now plus the ttl).
    fn stamp_expiry(&self, w: Write, ttl: Option<Duration>) -> Write {
        let now = self.now();
        w.into_iter()
            .map(|op| match op {
                WriteOp::Put(k, v) => match ttl.or(self.default_ttl(usize::from(k[0]))) {
                    Some(t) => WriteOp::Put(k, expiring(&v, now + t.as_micros() as u64)),
                    None => WriteOp::Put(k, v),
                },
                op => op,
            })
            .collect()
    }
}

fn short(v: &[u8]) -> String {
    String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned()
}

/// The entries, normalised (`tests/common/filter.rs`).
fn collect(it: strata::Iter, reverse: bool) -> Result<Vec<Entry>, Error> {
    let items: Entries = if reverse {
        Box::new(it.rev())
    } else {
        Box::new(it)
    };
    let mut out = Vec::new();
    for r in items {
        let (k, v) = r?;
        if let Some(v) = norm(&v) {
            out.push((k.to_vec(), v));
        }
    }
    Ok(out)
}

/// A write as the application means it: a put of a `#` value is a
/// delete, a `^` value upper-cased.
fn norm_write(w: Write) -> Write {
    w.into_iter()
        .map(|op| match op {
            WriteOp::Put(k, v) => match norm(&v) {
                Some(v) => WriteOp::Put(k, v),
                None => WriteOp::Delete(k),
            },
            op => op,
        })
        .collect()
}

/// Every keyspace's entries, normalised.
fn scan_normalised(db: &Db) -> Result<Model, Error> {
    Ok(scan_keyspaces(db)?
        .into_iter()
        .filter_map(|(k, v)| norm(&v).map(|v| (k, v)))
        .collect())
}

/// Run one seed; `Err` holds the panic message.
fn run_seed(seed: u64) -> Result<(Figures, Vec<String>), String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Sim::new(seed);
        sim.run();
        (sim.fig.clone(), std::mem::take(&mut sim.trace))
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| format!("seed {seed} panicked"))
    })
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn simulation_of_many_seeds_never_loses_acknowledged_writes() {
    // Injected faults panic inside the engine's callers only as test
    // failures; keep the default hook quiet for the caught panics.
    let (first, count, deadline) = match env_u64("SIMULATION_SEED") {
        Some(s) => (s, 1, None),
        None => (
            env_u64("SIMULATION_FIRST_SEED").unwrap_or(0),
            env_u64("SIMULATION_SEEDS").unwrap_or(1000),
            env_u64("SIMULATION_SECONDS").map(|s| Instant::now() + Duration::from_secs(s)),
        ),
    };
    let next = AtomicU64::new(first);
    let total = Mutex::new(Figures::default());
    let failures = Mutex::new(Vec::new());
    let start = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                let done = match deadline {
                    Some(d) => Instant::now() >= d,
                    None => seed >= first + count,
                };
                if done || failures.lock().unwrap().len() >= 5 {
                    return;
                }
                match run_seed(seed) {
                    Ok((fig, _)) => total.lock().unwrap().add(&fig),
                    Err(msg) => failures.lock().unwrap().push((seed, msg)),
                }
            });
        }
    });
    let t = total.into_inner().unwrap();
    println!(
        "simulation: seeds={} ops={} acked_writes={} acked_sync_writes={} power_losses={} \
         crash_points_hit={} clean_reopens={} failed_opens={} errors_surfaced={} \
         in_doubt_applied={} in_doubt_dropped={} unsynced_writes_lost={} \
         absolute_consistency_refusals={} moves={} keyspace_drops={} keyspace_flushes={} \
         range_deletes={} prefix_deletes={} merges={} expiring_puts={} ingestions={} feed_reads={} \
         feed_batches={} feed_gaps={} clock_moves={} \
         seconds={:.1}",
        t.seeds,
        t.ops,
        t.acked_writes,
        t.acked_sync_writes,
        t.power_losses,
        t.crash_points_hit,
        t.clean_reopens,
        t.failed_opens,
        t.errors_surfaced,
        t.in_doubt_applied,
        t.in_doubt_dropped,
        t.unsynced_writes_lost,
        t.absolute_refusals,
        t.moves,
        t.keyspace_drops,
        t.keyspace_flushes,
        t.range_deletes,
        t.prefix_deletes,
        t.merges,
        t.expiring_puts,
        t.ingestions,
        t.feed_reads,
        t.feed_batches,
        t.feed_gaps,
        t.clock_moves,
        start.elapsed().as_secs_f64()
    );
    let faults: u64 = t.faults.values().sum();
    println!(
        "simulation: faults injected={faults} by kind {:?}",
        t.faults
    );
    let failures = failures.into_inner().unwrap();
    for (seed, msg) in &failures {
        eprintln!("FAILED seed {seed}: {msg}");
    }
    assert!(
        failures.is_empty(),
        "{} seeds failed (see above)",
        failures.len()
    );
    if deadline.is_none() {
        assert_eq!(t.seeds, count);
    }
}

/// Seeds outside the fixed range that found bugs, replayed on every run.
/// 510381863112, 510381865382, 510381866562, 510381866892, 510381870409:
/// a failed removal of an obsolete WAL left it while newer ones were
/// deleted (a hole read as a lost WAL). 511532288414, 511532293806: WALs
/// already collected came back (a failed removal, or a power loss undoing
/// unsynced removals) and the feed read them across old crash boundaries
/// (the state file's `first_wal`).
#[test]
fn seeds_that_found_bugs_pass() {
    for seed in [
        510381863112,
        510381865382,
        510381866562,
        510381866892,
        510381870409,
        511532288414,
        511532293806,
    ] {
        if let Err(e) = run_seed(seed) {
            panic!("{e}");
        }
    }
}

/// The same seed gives the same run: every event and outcome identical.
#[test]
fn a_seed_replays_exactly() {
    for seed in [7, 4242] {
        let (fig_a, trace_a) = run_seed(seed).unwrap();
        let (fig_b, trace_b) = run_seed(seed).unwrap();
        assert_eq!(trace_a, trace_b, "seed {seed} did not replay");
        assert_eq!(format!("{fig_a:?}"), format!("{fig_b:?}"));
        assert!(trace_a.len() > 100);
    }
}

#[test]
fn an_expiring_value_reads_as_itself_then_as_its_operands() {
    let mut m = Model::new();
    m.insert(b"k".to_vec(), expiring(b"v", 10));
    assert_eq!(live(&m[&b"k"[..]], 9).as_deref(), Some(&b"v"[..]));
    assert_eq!(live(&m[&b"k"[..]], 10), None);
    apply(&mut m, &vec![WriteOp::Merge(b"k".to_vec(), b"+1".to_vec())]);
    assert_eq!(live(&m[&b"k"[..]], 9).as_deref(), Some(&b"v,+1"[..]));
    assert_eq!(live(&m[&b"k"[..]], 10).as_deref(), Some(&b"+1"[..]));
    assert_eq!(live(b"plain", 99).as_deref(), Some(&b"plain"[..]));
}
