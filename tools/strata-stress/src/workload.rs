//! The stress workload: threads doing random puts, deletes, batches, gets,
//! scans and snapshot reads, with sync and non-sync writes mixed, keeping
//! the expected state current around every write.
//!
//! Thread `t` of `n` writes only the keys with `index % n == t`, so it
//! knows the exact state of its own keys at every moment and checks every
//! read of them exactly; reads of other threads' keys are checked for
//! integrity (the value belongs to the key, its checksum holds).
//!
//! A range delete (db_stress's `TestDeleteRange`) covers a run of
//! consecutive keys, every thread's: it runs alone, holding the write side
//! of a lock every other operation on the keys holds the read side of, so
//! each thread's knowledge of its own keys stays exact.
//!
//! Besides the default keyspace's keys, threads move tokens between two
//! other keyspaces in batches across them (`moves.rs`), transfer money
//! between the accounts of a fourth in synced transactions (`bank.rs`),
//! increment merge counters in a fifth (`counters.rs`), and flush any of
//! them.
//!
//! No write uses `disable_wal`: the crash test's verifier relies on every
//! sequence number being logged (`write_log.rs`).

use crate::bank;
use crate::counters::{CounterState, CounterWriter};
use crate::expected::{AnyError, Pending, SharedState, Slot};
use crate::moves;
use crate::rng::Rng;
use crate::value::{self, ValueId, ValueSizes};
use parking_lot::RwLock;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use strata::{Db, Keyspace, WriteBatch, WriteOptions};

/// An iterator over a scan's entries, in either direction.
type Entries = Box<dyn Iterator<Item = strata::Result<(strata::Bytes, strata::Bytes)>>>;

/// What a stress run is asked to do.
#[derive(Debug, Clone)]
pub struct Workload {
    pub threads: u32,
    pub seed: u64,
    /// Operations per thread (0: until the deadline).
    pub ops_per_thread: u64,
    pub deadline: Option<Instant>,
    /// One write in `sync_one_in` is a sync write.
    pub sync_one_in: u64,
    /// One operation in `flush_one_in` is a manual flush (0: never).
    pub flush_one_in: u64,
    /// One operation in `compact_one_in` is a compact_range (0: never).
    pub compact_one_in: u64,
    /// One operation in `delete_range_one_in` is a range or prefix delete
    /// (0: never).
    pub delete_range_one_in: u64,
    /// One operation in `transfer_one_in` is a bank transfer (0: never).
    pub transfer_one_in: u64,
    /// One operation in `checkpoint_one_in` takes and checks a checkpoint
    /// (0: never).
    pub checkpoint_one_in: u64,
    /// Where checkpoints go (`D/checkpoints`), and the options they open
    /// with.
    pub checkpoint_dir: std::path::PathBuf,
    /// One operation in `ingest_one_in` ingests table files built with
    /// `SstWriter` in `ingest_dir` (0: never; `ingest.rs`).
    pub ingest_one_in: u64,
    pub ingest_dir: std::path::PathBuf,
    /// The ledger of ingestions into fresh ranges of keyspace `ingested`
    /// (one ingestion in three; `ingested.rs`).
    pub ingest_ledger: Option<Arc<crate::ingested::Ledger>>,
    /// One operation in `backup_one_in` takes a backup into `backups`
    /// (0: never; `backups.rs`), one in `backup_check_one_in` of them
    /// restored and compared with a snapshot at once.
    pub backup_one_in: u64,
    pub backup_check_one_in: u64,
    pub backups: Option<Arc<crate::backups::BackupTarget>>,
    pub options: strata::Options,
    pub value_sizes: ValueSizes,
}

/// The line a run prints once its first write is acknowledged: the crash
/// test waits for it before it starts the kill timer.
pub const FIRST_WRITE_LINE: &str = "first write acknowledged";

/// Operation counts, by kind.
#[derive(Default)]
pub struct Counters {
    pub puts: AtomicU64,
    pub deletes: AtomicU64,
    pub batches: AtomicU64,
    pub sync_writes: AtomicU64,
    pub gets: AtomicU64,
    pub scans: AtomicU64,
    pub snapshot_reads: AtomicU64,
    pub flushes: AtomicU64,
    pub compactions: AtomicU64,
    pub moves: AtomicU64,
    /// Bank transfers committed, declined (too little money) and
    /// conflicted.
    pub transfers: AtomicU64,
    pub transfers_declined: AtomicU64,
    pub transfer_conflicts: AtomicU64,
    pub range_deletes: AtomicU64,
    pub prefix_deletes: AtomicU64,
    /// Keys the range and prefix deletes covered, in all.
    pub range_deleted_keys: AtomicU64,
    /// Checkpoints taken, opened and found equal to their snapshot.
    pub checkpoints: AtomicU64,
    /// Ingestions returned, their files, those moved (not copied), those
    /// with a range delete, and the keys they changed.
    pub ingestions: AtomicU64,
    /// Ingestions into fresh ranges of keyspace `ingested`, and those
    /// whose table was seen at sequence number 0 right after.
    pub ingestions_fresh: AtomicU64,
    pub ingestions_unnumbered: AtomicU64,
    pub ingested_files: AtomicU64,
    pub ingestions_moved: AtomicU64,
    pub ingestions_range_deleting: AtomicU64,
    pub ingested_keys: AtomicU64,
    /// Backups taken, and those restored at once and found equal to their
    /// snapshot.
    pub backups: AtomicU64,
    pub backups_checked: AtomicU64,
    /// Counter writes (mostly merges) and counter reads.
    pub counter_writes: AtomicU64,
    pub counter_reads: AtomicU64,
    /// Writes of keys whose puts expire (a day later).
    pub expiring_writes: AtomicU64,
}

impl Counters {
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "puts={} deletes={} batches={} sync_writes={} gets={} scans={} snapshot_reads={} flushes={} compact_ranges={} moves={} transfers={} transfers_declined={} transfer_conflicts={} range_deletes={} prefix_deletes={} range_deleted_keys={} checkpoints={} ingestions={} ingestions_fresh={} ingestions_unnumbered={} ingested_files={} ingestions_moved={} ingestions_range_deleting={} ingested_keys={} backups={} backups_checked={} counter_writes={} counter_reads={} expiring_writes={}",
            g(&self.puts),
            g(&self.deletes),
            g(&self.batches),
            g(&self.sync_writes),
            g(&self.gets),
            g(&self.scans),
            g(&self.snapshot_reads),
            g(&self.flushes),
            g(&self.compactions),
            g(&self.moves),
            g(&self.transfers),
            g(&self.transfers_declined),
            g(&self.transfer_conflicts),
            g(&self.range_deletes),
            g(&self.prefix_deletes),
            g(&self.range_deleted_keys),
            g(&self.checkpoints),
            g(&self.ingestions),
            g(&self.ingestions_fresh),
            g(&self.ingestions_unnumbered),
            g(&self.ingested_files),
            g(&self.ingestions_moved),
            g(&self.ingestions_range_deleting),
            g(&self.ingested_keys),
            g(&self.backups),
            g(&self.backups_checked),
            g(&self.counter_writes),
            g(&self.counter_reads),
            g(&self.expiring_writes)
        )
    }
}

/// Run the workload to completion. A wrong read returns `Err` at once.
pub fn run(
    db: &Db,
    state: Arc<SharedState>,
    counter_keyspace: &Keyspace,
    counter_state: Arc<CounterState>,
    w: &Workload,
    run: u64,
) -> Result<Counters, AnyError> {
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let first_write = Arc::new(AtomicBool::new(false));
    let move_keyspaces = moves::open(db)?;
    let tokens = moves::place(db, &move_keyspaces)?;
    let bank = bank::open(db)?;
    bank::open_accounts(db, &bank)?;
    let keys_lock = Arc::new(RwLock::new(()));
    let handles: Vec<_> = (0..w.threads)
        .map(|t| {
            let mut worker = Worker {
                move_keyspaces: move_keyspaces.clone(),
                bank: bank.clone(),
                counter_writer: CounterWriter {
                    keyspace: counter_keyspace.clone(),
                    state: Arc::clone(&counter_state),
                    thread: t,
                    threads: w.threads,
                },
                tokens: (0..moves::TOKENS)
                    .filter(|j| j % w.threads == t)
                    .map(|j| (j, tokens[j as usize]))
                    .collect(),
                db: db.clone(),
                state: Arc::clone(&state),
                counters: Arc::clone(&counters),
                w: w.clone(),
                thread: t,
                rng: Rng::new(w.seed ^ (u64::from(t) << 48) ^ run.wrapping_mul(0x2545_f491)),
                next_batch: (run << 32) | (u64::from(t) << 24),
                run,
                first_write: Arc::clone(&first_write),
                keys_lock: Arc::clone(&keys_lock),
            };
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let r = worker.run(&stop);
                if r.is_err() {
                    stop.store(true, Ordering::Release);
                }
                r
            })
        })
        .collect();
    let mut first_error = None;
    for h in handles {
        let r = h.join().map_err(|_| "a stress thread panicked")?;
        if let (Err(e), None) = (r, &first_error) {
            first_error = Some(e);
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Arc::try_unwrap(counters).map_err(|_| "counters still shared".into())
}

struct Worker {
    db: Db,
    state: Arc<SharedState>,
    counters: Arc<Counters>,
    w: Workload,
    thread: u32,
    rng: Rng,
    next_batch: u64,
    /// This run's number (names its checkpoints).
    run: u64,
    /// Set by the first write acknowledged, by any thread.
    first_write: Arc<AtomicBool>,
    move_keyspaces: [Keyspace; 2],
    /// The bank's keyspace: every thread transfers between any accounts.
    bank: Keyspace,
    /// Writes and reads this thread's merge counters.
    counter_writer: CounterWriter,
    /// This thread's tokens: number, keyspace and moves so far.
    tokens: Vec<(u32, (usize, u64))>,
    /// Held for reading by every operation on the keys and their expected
    /// state, for writing by a range delete, which covers other threads'
    /// keys.
    keys_lock: Arc<RwLock<()>>,
}

impl Worker {
    fn run(&mut self, stop: &AtomicBool) -> Result<(), AnyError> {
        let mut done = 0u64;
        let keys = self.state.keys();
        if self.thread >= keys {
            return Ok(());
        }
        while !stop.load(Ordering::Acquire) {
            if self.w.ops_per_thread > 0 && done >= self.w.ops_per_thread {
                break;
            }
            if done.is_multiple_of(64) && self.w.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            done += 1;
            let choice = self.rng.below(100);
            if self.w.flush_one_in > 0 && self.rng.one_in(self.w.flush_one_in) {
                match self.rng.below(5) {
                    0 => self.db.flush()?,
                    1 => self.bank.flush()?,
                    2 => self.counter_writer.keyspace.flush()?,
                    n => self.move_keyspaces[n as usize - 3].flush()?,
                }
                self.counters.flushes.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.w.compact_one_in > 0 && self.rng.one_in(self.w.compact_one_in) {
                let a = value::key(self.rng.below(u64::from(keys)) as u32);
                let b = value::key(self.rng.below(u64::from(keys)) as u32);
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                self.db.compact_range(lo.as_slice()..=hi.as_slice())?;
                self.counters.compactions.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.w.checkpoint_one_in > 0 && self.rng.one_in(self.w.checkpoint_one_in) {
                self.checkpoint()?;
                continue;
            }
            if self.w.backup_one_in > 0 && self.rng.one_in(self.w.backup_one_in) {
                self.backup()?;
                continue;
            }
            if !self.tokens.is_empty() && self.rng.one_in(10) {
                let n = self.rng.below(self.tokens.len() as u64) as usize;
                let (j, at) = self.tokens[n];
                let sync = self.rng.one_in(self.w.sync_one_in);
                self.tokens[n].1 = moves::move_token(&self.db, &self.move_keyspaces, j, at, sync)?;
                self.counters.moves.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.w.transfer_one_in > 0 && self.rng.one_in(self.w.transfer_one_in) {
                self.transfer()?;
                continue;
            }
            if self.rng.one_in(8) {
                let batch_id = self.next_batch;
                self.next_batch += 1;
                if self.rng.one_in(4) {
                    self.counter_writer
                        .check(&self.db, &mut self.rng, batch_id)?;
                    self.counters.counter_reads.fetch_add(1, Ordering::Relaxed);
                } else {
                    let sync = self.rng.one_in(self.w.sync_one_in);
                    let n = self
                        .counter_writer
                        .write(&self.db, &mut self.rng, batch_id, sync)?;
                    self.counters
                        .counter_writes
                        .fetch_add(u64::from(n), Ordering::Relaxed);
                    if sync {
                        self.counters.sync_writes.fetch_add(1, Ordering::Relaxed);
                    }
                }
                continue;
            }
            let keys_lock = Arc::clone(&self.keys_lock);
            if self.w.delete_range_one_in > 0 && self.rng.one_in(self.w.delete_range_one_in) {
                let _alone = keys_lock.write();
                self.delete_range()?;
                continue;
            }
            if self.w.ingest_one_in > 0 && self.rng.one_in(self.w.ingest_one_in) {
                if self.rng.one_in(3) {
                    self.ingest_fresh()?;
                } else {
                    // It covers other threads' keys, as a range delete does.
                    let _alone = keys_lock.write();
                    self.ingest()?;
                }
                continue;
            }
            let _shared = keys_lock.read();
            match choice {
                0..=39 => self.write(1, false)?,
                40..=49 => self.write(1, true)?,
                50..=64 => {
                    let n = 2 + self.rng.below(4) as usize;
                    self.write(n, false)?;
                }
                65..=79 => self.get()?,
                80..=91 => self.scan()?,
                _ => self.snapshot_read()?,
            }
        }
        Ok(())
    }

    /// A transfer between two random accounts, at a random isolation
    /// level, committed with `sync`.
    fn transfer(&mut self) -> Result<(), AnyError> {
        let from = self.rng.below(u64::from(bank::ACCOUNTS)) as u32;
        let to = (from + 1 + self.rng.below(u64::from(bank::ACCOUNTS) - 1) as u32) % bank::ACCOUNTS;
        let amount = 1 + self.rng.below(200) as i64;
        let isolation = if self.rng.one_in(2) {
            strata::Isolation::Serializable
        } else {
            strata::Isolation::Snapshot
        };
        let counter = match bank::transfer(&self.db, &self.bank, from, to, amount, isolation)? {
            bank::Transfer::Committed => &self.counters.transfers,
            bank::Transfer::Declined => &self.counters.transfers_declined,
            bank::Transfer::Conflict => &self.counters.transfer_conflicts,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A random key this thread owns.
    fn own_key(&mut self) -> u32 {
        let n = self.w.threads.min(self.state.keys());
        let per = self.state.keys().div_ceil(n);
        loop {
            let i = self.rng.below(u64::from(per)) as u32 * n + self.thread;
            if i < self.state.keys() {
                return i;
            }
        }
    }

    /// Write `n` distinct own keys in one batch (a put or delete each;
    /// `delete` forces deletes for a single-key write).
    fn write(&mut self, n: usize, delete: bool) -> Result<(), AnyError> {
        let mut indices: Vec<u32> = Vec::with_capacity(n);
        for _ in 0..n * 4 {
            if indices.len() == n {
                break;
            }
            let i = self.own_key();
            if !indices.contains(&i) {
                indices.push(i);
            }
        }
        let batch_id = self.next_batch;
        self.next_batch += 1;
        let sync = self.rng.one_in(self.w.sync_one_in);
        let mut batch = WriteBatch::new();
        let mut planned = Vec::with_capacity(indices.len());
        for &i in &indices {
            let slot = self.state.get(i);
            let gen = slot.gen + 1;
            let put = !delete && (indices.len() > 1 && !self.rng.one_in(5) || indices.len() == 1);
            let k = value::key(i);
            if put {
                let fill = self.w.value_sizes.pick_fill(&mut self.rng);
                batch.put(
                    &k,
                    value::encode(
                        &ValueId {
                            key: i,
                            gen,
                            batch: batch_id,
                        },
                        fill,
                    ),
                );
            } else {
                batch.delete(&k);
            }
            let pending = Pending {
                gen,
                present: put,
                batch: batch_id,
            };
            self.state.set(
                i,
                Slot {
                    pending: Some(pending),
                    ..slot
                },
            )?;
            planned.push((i, pending));
        }
        // One write in eight expires, a day after it is made: longer than
        // any run, so the expected state need not know the time, while
        // the expiry travels through the WAL, flushes and compactions.
        let ttl = self
            .rng
            .one_in(8)
            .then_some(std::time::Duration::from_secs(86_400));
        self.commit_with_ttl(batch, sync, ttl, planned)?;
        let c = &self.counters;
        match (indices.len(), delete) {
            (1, true) => c.deletes.fetch_add(1, Ordering::Relaxed),
            (1, false) => c.puts.fetch_add(1, Ordering::Relaxed),
            _ => c.batches.fetch_add(1, Ordering::Relaxed),
        };
        if sync {
            c.sync_writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A range delete over key indices `[i, i + width)`, the width mostly
    /// under 16 and one time in ten a tenth of the keys (db_stress's
    /// `TestDeleteRange`), or, one time in four, a prefix delete over the
    /// key encoding's prefix: `k` and 7 or 6 of the 8 digits, 10 or 100
    /// consecutive indices. Every slot the range covers, whichever thread
    /// owns it, is marked pending-absent with the batch id before the
    /// write (so a crash leaves each old or new, the batch atomic, as for
    /// any batch), and committed after it. REQUIRES: `keys_lock` held for
    /// writing.
    fn delete_range(&mut self) -> Result<(), AnyError> {
        let keys = self.state.keys();
        let i = self.rng.below(u64::from(keys)) as u32;
        let mut batch = WriteBatch::new();
        let covered: Vec<u32> = if self.rng.one_in(4) {
            let digits = if self.rng.one_in(2) { 7 } else { 6 };
            let span = 10u32.pow(8 - digits);
            // Index 0's key is empty: take the prefix of the first key
            // of `i`'s run of `span`, which no index outside it shares.
            let lo = i / span * span;
            let prefix = value::key(lo.max(1))[..1 + digits as usize].to_vec();
            batch.delete_prefix(&prefix);
            self.counters.prefix_deletes.fetch_add(1, Ordering::Relaxed);
            (lo..lo.saturating_add(span).min(keys))
                .filter(|&j| value::key(j).starts_with(&prefix))
                .collect()
        } else {
            let width = if self.rng.one_in(10) {
                (keys / 10).max(1)
            } else {
                1 + self.rng.below(15) as u32
            };
            let end = i.saturating_add(width);
            batch.delete_range(value::key(i)..value::key(end));
            self.counters.range_deletes.fetch_add(1, Ordering::Relaxed);
            (i..end.min(keys)).collect()
        };
        let batch_id = self.next_batch;
        self.next_batch += 1;
        let sync = self.rng.one_in(self.w.sync_one_in);
        let mut planned = Vec::with_capacity(covered.len());
        for &j in &covered {
            let slot = self.state.get(j);
            let pending = Pending {
                gen: slot.gen + 1,
                present: false,
                batch: batch_id,
            };
            self.state.set(
                j,
                Slot {
                    pending: Some(pending),
                    ..slot
                },
            )?;
            planned.push((j, pending));
        }
        self.commit(batch, sync, planned)?;
        self.counters
            .range_deleted_keys
            .fetch_add(covered.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Write `batch`, whose keys' slots are marked pending as `planned`
    /// says, and commit those slots once it is acknowledged.
    fn commit(
        &mut self,
        batch: WriteBatch,
        sync: bool,
        planned: Vec<(u32, Pending)>,
    ) -> Result<(), AnyError> {
        self.commit_with_ttl(batch, sync, None, planned)
    }

    /// [`Worker::commit`], its puts expiring after `ttl`.
    fn commit_with_ttl(
        &mut self,
        batch: WriteBatch,
        sync: bool,
        ttl: Option<std::time::Duration>,
        planned: Vec<(u32, Pending)>,
    ) -> Result<(), AnyError> {
        if sync {
            // The expected state must be durable before a write that will be.
            self.state.sync()?;
        }
        self.db.write_opt(
            batch,
            &WriteOptions {
                sync,
                ttl,
                ..Default::default()
            },
        )?;
        if ttl.is_some() {
            self.counters
                .expiring_writes
                .fetch_add(1, Ordering::Relaxed);
        }
        for (i, p) in planned {
            self.state.set(
                i,
                Slot {
                    gen: p.gen,
                    present: p.present,
                    batch: p.batch,
                    pending: None,
                },
            )?;
        }
        if !self.first_write.swap(true, Ordering::AcqRel) {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{FIRST_WRITE_LINE}")?;
            out.flush()?;
        }
        Ok(())
    }

    fn get(&mut self) -> Result<(), AnyError> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        if self.rng.one_in(2) {
            let i = self.own_key();
            let got = self.db.get(value::key(i))?;
            check_exact(i, &self.state.get(i), got.as_deref(), "get")
        } else {
            let i = self.rng.below(u64::from(self.state.keys())) as u32;
            let got = self.db.get(value::key(i))?;
            check_integrity(i, got.as_deref(), "get")
        }
    }

    /// A range scan in either direction; own keys are checked exactly,
    /// every key for order and integrity.
    fn scan(&mut self) -> Result<(), AnyError> {
        self.counters.scans.fetch_add(1, Ordering::Relaxed);
        let keys = self.state.keys();
        let lo = self.rng.below(u64::from(keys)) as u32;
        let hi = (lo + 1 + self.rng.below(200) as u32).min(keys);
        let reverse = self.rng.one_in(2);
        let (klo, khi) = (value::key(lo), value::key(hi));
        let mut seen: Vec<(u32, Vec<u8>)> = Vec::new();
        let it = self.db.range(klo.as_slice()..khi.as_slice());
        let items: Entries = if reverse {
            Box::new(it.rev())
        } else {
            Box::new(it)
        };
        for item in items {
            let (k, v) = item?;
            let i =
                value::key_index(&k).ok_or_else(|| format!("scan returned a foreign key {k:?}"))?;
            if !(lo..hi).contains(&i) {
                return Err(format!("scan [{lo}, {hi}) returned key {i}").into());
            }
            if let Some((last, _)) = seen.last() {
                let ordered = if reverse { i < *last } else { i > *last };
                if !ordered {
                    return Err(
                        format!("scan out of order: {last} then {i} (reverse: {reverse})").into(),
                    );
                }
            }
            seen.push((i, v.to_vec()));
        }
        let n = self.w.threads.min(keys);
        for i in lo..hi {
            let got = seen
                .iter()
                .find(|(k, _)| *k == i)
                .map(|(_, v)| v.as_slice());
            if i % n == self.thread {
                check_exact(i, &self.state.get(i), got, "scan")?;
            } else {
                check_integrity(i, got, "scan")?;
            }
        }
        Ok(())
    }

    /// Take a checkpoint while the other threads write (into a directory,
    /// or through the stream and installed), open it, and check that every
    /// keyspace in it holds exactly what a snapshot at its sequence number
    /// reads: no write missing, torn or extra. Then delete it.
    fn checkpoint(&mut self) -> Result<(), AnyError> {
        let n = self.counters.checkpoints.load(Ordering::Relaxed);
        let name = format!("r{}-t{}-{n}", self.run, self.thread);
        let dir = self.w.checkpoint_dir.join(&name);
        let options = strata::CheckpointOptions {
            keep_snapshot: true,
            ..strata::CheckpointOptions::default()
        };
        std::fs::create_dir_all(&self.w.checkpoint_dir)?;
        let info = if self.rng.one_in(2) {
            self.db.checkpoint_with(&dir, &options)?
        } else {
            let mut stream = Vec::new();
            let info = self.db.checkpoint_to_writer_with(&mut stream, &options)?;
            strata::install_checkpoint(&stream[..], &dir)?;
            info
        };
        let snapshot = info
            .snapshot
            .as_ref()
            .ok_or("the checkpoint kept no snapshot")?;
        let copy = Db::open(&dir, self.w.options.clone())?;
        crate::copy_check::equals_snapshot(
            &self.db,
            snapshot,
            &copy,
            &self.w.options,
            &format!("checkpoint {name}"),
            info.sequence,
        )?;
        copy.close()?;
        std::fs::remove_dir_all(&dir)?;
        self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Ingest a run of keys from table files built outside the database
    /// (`ingest.rs`). REQUIRES: `keys_lock` held for writing.
    fn ingest(&mut self) -> Result<(), AnyError> {
        if self.next_batch & crate::ingest::INGEST_BATCH_BIT != 0 {
            return Err(
                "a thread made 2^23 writes in one run: its batch ids reach the ingestion bit"
                    .into(),
            );
        }
        let batch_id = self.next_batch | crate::ingest::INGEST_BATCH_BIT;
        self.next_batch += 1;
        let n = self.counters.ingestions.load(Ordering::Relaxed);
        let name = format!("r{}-t{}-{n}", self.run, self.thread);
        let done = crate::ingest::ingest(
            &self.db,
            &self.state,
            &mut self.rng,
            batch_id,
            &self.w.ingest_dir,
            &name,
            &self.w.options,
            &self.w.value_sizes,
        )?;
        let c = &self.counters;
        c.ingestions.fetch_add(1, Ordering::Relaxed);
        c.ingested_files
            .fetch_add(u64::from(done.files), Ordering::Relaxed);
        c.ingested_keys
            .fetch_add(u64::from(done.keys), Ordering::Relaxed);
        if done.moved {
            c.ingestions_moved.fetch_add(1, Ordering::Relaxed);
        }
        if done.range_delete {
            c.ingestions_range_deleting.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Ingest a fresh range of keyspace `ingested` (`ingested.rs`).
    fn ingest_fresh(&mut self) -> Result<(), AnyError> {
        let Some(ledger) = self.w.ingest_ledger.clone() else {
            return Ok(());
        };
        let batch_id = self.next_batch | crate::ingest::INGEST_BATCH_BIT;
        self.next_batch += 1;
        let n = self.counters.ingestions_fresh.load(Ordering::Relaxed);
        let name = format!("r{}-t{}-{n}", self.run, self.thread);
        let ks = self.db.keyspace(crate::ingested::KEYSPACE)?;
        let (moved, unnumbered) = crate::ingested::ingest_fresh(
            &self.db,
            &ks,
            &ledger,
            &mut self.rng,
            batch_id,
            &self.w.ingest_dir,
            &name,
            &self.w.options,
        )?;
        let c = &self.counters;
        c.ingestions_fresh.fetch_add(1, Ordering::Relaxed);
        if moved {
            c.ingestions_moved.fetch_add(1, Ordering::Relaxed);
        }
        if unnumbered {
            c.ingestions_unnumbered.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Take a backup while the other threads write (`backups.rs`); one in
    /// `backup_check_one_in` is restored and compared with a snapshot.
    fn backup(&mut self) -> Result<(), AnyError> {
        let Some(target) = self.w.backups.clone() else {
            return Ok(());
        };
        let check = self.w.backup_check_one_in > 0 && self.rng.one_in(self.w.backup_check_one_in);
        let n = self.counters.backups.load(Ordering::Relaxed);
        let name = format!("r{}-t{}-backup{n}", self.run, self.thread);
        target.take(&self.db, &self.state, check, &name, &self.w.options)?;
        self.counters.backups.fetch_add(1, Ordering::Relaxed);
        if check {
            self.counters
                .backups_checked
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Take a snapshot, overwrite some own keys, and read them back
    /// through the snapshot: it must still show the states before.
    fn snapshot_read(&mut self) -> Result<(), AnyError> {
        self.counters.snapshot_reads.fetch_add(1, Ordering::Relaxed);
        let snap = self.db.snapshot();
        let picked: Vec<u32> = (0..4).map(|_| self.own_key()).collect();
        let before: Vec<Slot> = picked.iter().map(|&i| self.state.get(i)).collect();
        for _ in 0..2 {
            let delete = self.rng.one_in(4);
            self.write(1, delete)?;
        }
        for (&i, slot) in picked.iter().zip(&before) {
            let got = snap.get(value::key(i))?;
            check_exact(i, slot, got.as_deref(), "snapshot get")?;
        }
        Ok(())
    }
}

/// `got` must be exactly the committed state of a key with no write in flight.
pub fn check_exact(i: u32, slot: &Slot, got: Option<&[u8]>, what: &str) -> Result<(), AnyError> {
    match (slot.present, got) {
        (false, None) => Ok(()),
        (false, Some(v)) => Err(format!(
            "{what}: key {i} should be absent (gen {}), found {} bytes: {:?}",
            slot.gen,
            v.len(),
            value::decode(v)
        )
        .into()),
        (true, None) => Err(format!(
            "{what}: key {i} lost: expected gen {} (batch {:#x}), found nothing",
            slot.gen, slot.batch
        )
        .into()),
        (true, Some(v)) => {
            let want = ValueId {
                key: i,
                gen: slot.gen,
                batch: slot.batch,
            };
            if !value::is_value_of(&want, v) {
                return Err(format!(
                    "{what}: key {i}: expected {want:?} (empty: {}), found {} bytes: {:?}",
                    value::is_empty_value(&want),
                    v.len(),
                    value::decode(v)
                )
                .into());
            }
            Ok(())
        }
    }
}

/// `got` is absent or a well-formed value of key `i`.
pub fn check_integrity(i: u32, got: Option<&[u8]>, what: &str) -> Result<(), AnyError> {
    // An empty value names no write: nothing to check.
    if let Some(Some(id)) = got
        .map(value::decode)
        .transpose()
        .map_err(|e| format!("{what}: key {i}: {e}"))?
    {
        if id.key != i {
            return Err(format!("{what}: key {i} holds the value of key {}", id.key).into());
        }
    }
    Ok(())
}
