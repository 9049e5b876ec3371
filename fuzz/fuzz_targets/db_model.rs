//! The whole database against a `BTreeMap` model (redb's and sled's model
//! fuzzers): the input is a sequence of operations (puts, deletes, merges
//! (appending with `,`), range and prefix deletes, batches, sync writes, gets, scans both ways,
//! snapshots, transactions (their own reads checked), flushes,
//! compactions, clean reopens, power losses, injected I/O errors and crash
//! points) on the in-memory filesystem with `inline_background_work`, so
//! each input is deterministic.
//!
//! Operations spread over four keyspaces (`tests/common/keyspaces.rs`):
//! bits 4-6 of an operation's byte pick one (most values the default
//! keyspace, so inputs from before keyspaces keep their meaning); a batch
//! spans keyspaces; a get with the high bit set moves a key's value to
//! another keyspace in one batch; `run_background_work` with the high bit
//! set drops the keyspace picked, or flushes all of them for the default;
//! without it, for the other keyspaces' values, it reads the change feed
//! (`ks1`), opens the database read-only beside the writer (`ks2`), or
//! creates and moves the cursor `fuzz` (`ks3`).
//! `ks2` keeps values of 64 bytes or more in blob files, with blob
//! garbage collection on.
//!
//! Every keyspace has the model tests' compaction filter
//! (`tests/common/filter.rs`: `#` values removed, `^` values upper-cased),
//! whose decisions readers cannot tell apart: the model and the ledger
//! hold values as the application means them, and reads are normalised.
//!
//! Checked: every read agrees with the model; an error only follows an
//! injected fault or crash point; after a power loss the database holds
//! the state after a prefix of the acknowledged writes that includes every
//! durable one (sync, or followed by a flush of its keyspace or a later
//! written one, or by a drop), possibly plus the one write that failed; a
//! clean reopen loses nothing; the change feed yields exactly the
//! numbers of the writes that survived, in order (`tests/common/feed_log.rs`),
//! no gap reaching past what the cursor acknowledged; a read-only open
//! holds exactly the model (every acknowledged write is in the WAL file).
#![no_main]

// The acknowledged-writes ledger and its prefix rule, shared with the
// crash tests (tests/simulation.rs, tests/model.rs).
#[path = "../../tests/common/ack_log.rs"]
mod ack_log;
// One model over the keyspaces, shared with the simulation.
#[path = "../../tests/common/keyspaces.rs"]
mod keyspaces;
// The filter whose decisions a model can predict, and the normalisation.
#[path = "../../tests/common/filter.rs"]
mod filter;
// The change feed's model, shared with the model test and the simulation.
#[path = "../../tests/common/feed_log.rs"]
mod feed_log;

use feed_log::{visible, FeedLog, Took};

use filter::{mark_filter, norm, MarkAwareAppend};

use ack_log::{apply, AckLog, Model, Write, WriteOp};
use keyspaces::{
    drop_write, entries_of, keyspace_range, model_key, model_range, scan_keyspaces, KEYSPACES,
};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;
use strata::fs::{FaultPlan, FsOp, MemFileSystem, UnsyncedData};
use strata::{Db, Keyspace, Options, TransactionOptions, WriteBatch, WriteOptions};

const KINDS: [FsOp; 8] = [
    FsOp::Append,
    FsOp::Sync,
    FsOp::Read,
    FsOp::Rename,
    FsOp::Remove,
    FsOp::Create,
    FsOp::SyncDir,
    FsOp::List,
];

fn options(fs: &MemFileSystem) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        inline_background_work: true,
        write_buffer_size: 64 * 1024,
        block_size: 256,
        target_file_size_base: 64 * 1024,
        max_bytes_for_level_base: 64 * 1024,
        level0_file_num_compaction_trigger: 2,
        // Scans seek past a key's versions after one step: the fuzzer's
        // few keys with many versions run those seeks often.
        max_sequential_skip_in_iterations: 1,
        merge_operator: Some(Arc::new(MarkAwareAppend)),
        compaction_filter_factory: Some(mark_filter()),
        // The table writers' writeback pacing runs several times a table
        // (on this filesystem a writeback is a flush).
        bytes_per_sync: 4 << 10,
        ..Options::default()
    }
}

fn key(b: u8) -> Vec<u8> {
    vec![b'k', b'a' + (b % 26), b'0' + (b / 26 % 10)]
}

fn value(b: u8, n: u64) -> Vec<u8> {
    // One in eight the filter removes, one in eight it upper-cases.
    let mark = match n % 8 {
        0 => "#",
        1 => "^",
        _ => "",
    };
    let mut v = format!("{mark}{n}:").into_bytes();
    v.resize(usize::from(b) * 16 + v.len(), b'v');
    v
}

fn sorted(x: Vec<u8>, y: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    if x <= y {
        (x, y)
    } else {
        (y, x)
    }
}

/// Every keyspace's entries, normalised.
fn scan(db: &Db) -> strata::Result<Model> {
    Ok(scan_keyspaces(db)?
        .into_iter()
        .filter_map(|(k, v)| norm(&v).map(|v| (k, v)))
        .collect())
}

/// Entries read, normalised.
fn normalised(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    entries
        .into_iter()
        .filter_map(|(k, v)| norm(&v).map(|v| (k, v)))
        .collect()
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

/// The keyspace bits 4-6 of an operation's byte pick: the default one
/// for five of the eight values.
fn pick(op: u8) -> usize {
    match (op >> 4) & 7 {
        5 => 1,
        6 => 2,
        7 => 3,
        _ => 0,
    }
}

type Handles = [Option<Keyspace>; KEYSPACES.len()];

struct State {
    fs: MemFileSystem,
    db: Option<Db>,
    /// Handles opened since the last open (a handle holds it open).
    handles: Handles,
    acks: AckLog,
    model: Model,
    /// A snapshot, the model it must see, and the handles open then.
    snapshot: Option<(strata::Snapshot, Model, Handles)>,
    armed: bool,
    writes: u64,
    /// The committed writes' sequence numbers, for the change feed.
    feed: FeedLog,
    /// A write failed: it may have taken numbers.
    in_doubt: bool,
}

impl State {
    fn db(&self) -> &Db {
        self.db.as_ref().expect("open")
    }

    /// The handle on keyspace `ks`, created on first use (a MANIFEST
    /// write, which an armed fault may fail).
    fn handle(&mut self, ks: usize) -> strata::Result<Keyspace> {
        if let Some(h) = &self.handles[ks] {
            return Ok(h.clone());
        }
        let h = if ks == 2 {
            // Values of 64 bytes or more in blob files, garbage collected
            // from the older half and forced at a ratio of 0.3
            // (docs/design/blob-files.md).
            let o = strata::KeyspaceOptions {
                enable_blob_files: true,
                min_blob_size: 64,
                blob_file_size: 64 * 1024,
                enable_blob_garbage_collection: true,
                blob_garbage_collection_age_cutoff: 0.5,
                blob_garbage_collection_force_threshold: 0.3,
                // Relocate from any old file (RocksDB's rule) in one
                // keyspace, from those with a quarter garbage in another.
                blob_garbage_collection_min_garbage_ratio: if ks % 2 == 0 { 0.0 } else { 0.25 },
                ..options(&self.fs).keyspace_options()
            };
            self.db().keyspace_with(KEYSPACES[ks], o)?
        } else {
            self.db().keyspace(KEYSPACES[ks])?
        };
        self.handles[ks] = Some(h.clone());
        Ok(h)
    }

    fn close(&mut self) {
        self.snapshot = None;
        self.handles = Default::default();
        drop(self.db.take());
    }

    fn error(&mut self, e: strata::Error, write: Option<Write>, seed: u8) {
        assert!(self.armed, "error with nothing armed: {e}");
        let text = e.to_string();
        assert!(
            text.contains("injected fault") || text.contains("simulated crash"),
            "an error that does not name its cause: {e:?}"
        );
        self.acks.in_doubt(write);
        self.power_loss(seed);
    }

    /// Read the change feed from the log's position `choice` (syncing the
    /// WAL first with `sync`) and check it.
    fn read_feed(&mut self, choice: u8, sync: bool, seed: u8) {
        if sync {
            if let Err(e) = self.db().flush_wal(true) {
                return self.error(e, None, seed);
            }
        }
        let from = self.feed.position(usize::from(choice));
        match self.feed.check(self.db(), from, sync) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("change feed from {from}: {e}"),
            Err(e) => self.error(e, None, seed),
        }
    }

    /// Create the cursor `fuzz`, or acknowledge a write through it.
    fn ack_feed(&mut self, choice: u8, seed: u8) {
        let point = self.feed.ack_point(usize::from(choice));
        let done = self
            .db()
            .change_feed("fuzz")
            .and_then(|c| match (self.feed.acked, point) {
                (None, _) => c.acked().map(Some),
                (Some(_), Some(seq)) => c.ack(seq).map(|()| Some(seq)),
                (Some(_), None) => Ok(None),
            });
        match done {
            Ok(Some(acked)) => self.feed.acked = Some(acked),
            Ok(None) => {}
            Err(e) => self.error(e, None, seed),
        }
    }

    /// Open the database read-only beside the writer: once the WAL buffer
    /// is in the file, it holds exactly the model. A reader knows only the
    /// default keyspace's merge operator (docs/design/read-only.md): a
    /// keyspace whose operands it cannot read is left out of the compare.
    fn read_only(&mut self, seed: u8) {
        let mut unreadable: Vec<usize> = Vec::new();
        let got = self.db().flush_wal(false).and_then(|()| {
            let ro = Db::open_read_only("/db", options(&self.fs))?;
            let mut got = Model::new();
            for name in ro.keyspace_names() {
                let ks = KEYSPACES
                    .iter()
                    .position(|n| *n == name)
                    .expect("a keyspace the fuzzer made");
                for entry in ro.iter_in(&name)? {
                    match entry {
                        Ok((k, v)) => {
                            if let Some(v) = norm(&v) {
                                got.insert(model_key(ks, &k), v);
                            }
                        }
                        Err(strata::Error::MergeFailed { .. }) if ks != 0 => {
                            unreadable.push(ks);
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(got)
        });
        let readable = |m: &Model| -> Model {
            m.iter()
                .filter(|(k, _)| !unreadable.contains(&usize::from(k[0])))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        match got {
            Ok(got) => assert_eq!(readable(&got), readable(&self.model), "the read-only view"),
            Err(e) => self.error(e, None, seed),
        }
    }

    fn power_loss(&mut self, seed: u8) {
        self.fs.crash();
        self.close();
        let mode = match seed % 3 {
            0 => UnsyncedData::Drop,
            1 => UnsyncedData::KeepRandomPrefix(u64::from(seed)),
            _ => UnsyncedData::KeepRandomPages(u64::from(seed)),
        };
        self.fs.power_loss(mode);
        self.armed = false;
        let db = Db::open("/db", options(&self.fs)).expect("reopen after a power loss");
        let got = scan(&db).expect("scan after recovery");
        if let Err(e) = self.acks.recovered(&got) {
            panic!("{e}");
        }
        // The feed: the writes the database kept, and the failed one if
        // it took numbers past them.
        let kept = visible(&db);
        self.feed.recovered(kept);
        let last = self.feed.entries.last().map_or(0, |e| e.last);
        if std::mem::take(&mut self.in_doubt) {
            self.feed.committed(last, kept, Took::Logged(None));
        }
        self.db = Some(db);
        self.model = got;
    }

    /// Write `w` (model keys: keyspace, then key) as one batch.
    fn write(&mut self, w: Write, sync: bool, seed: u8) {
        let mut batch = WriteBatch::new();
        for op in &w {
            let h = match self.handle(usize::from(op.first_key()[0])) {
                Ok(h) => h,
                Err(e) => return self.error(e, None, seed),
            };
            match op {
                WriteOp::Put(k, v) => batch.put_in(&h, &k[1..], v),
                WriteOp::Delete(k) => batch.delete_in(&h, &k[1..]),
                WriteOp::Merge(k, operand) => batch.merge_in(&h, &k[1..], operand),
                WriteOp::DeleteRange(start, end) => {
                    let (_, bounds) = keyspace_range(start, end.as_deref());
                    batch.delete_range_in::<&[u8]>(&h, bounds);
                }
            }
        }
        self.commit(w, batch, sync, seed);
    }

    /// Write `w` (range deletes too) through a transaction, after checking
    /// its own view: each key it wrote, and a scan of the first write's
    /// keyspace both ways, read as the model with `w` applied.
    fn write_in_transaction(&mut self, w: Write, sync: bool, seed: u8) {
        let mut handles = Vec::new();
        for op in &w {
            match self.handle(usize::from(op.first_key()[0])) {
                Ok(h) => handles.push(h),
                Err(e) => return self.error(e, None, seed),
            }
        }
        let mut tx = self.db().transaction_with(TransactionOptions {
            write_options: WriteOptions {
                sync,
                ..Default::default()
            },
            ..Default::default()
        });
        for (op, h) in w.iter().zip(&handles) {
            let buffered = match op {
                WriteOp::Put(k, v) => tx.put_in(h, &k[1..], v),
                WriteOp::Delete(k) => tx.delete_in(h, &k[1..]),
                WriteOp::Merge(k, operand) => tx.merge_in(h, &k[1..], operand),
                WriteOp::DeleteRange(start, end) => {
                    let (_, bounds) = keyspace_range(start, end.as_deref());
                    tx.delete_range_in::<&[u8]>(h, bounds)
                }
            };
            buffered.expect("buffering a write (an ordered range) reads nothing and cannot fail");
        }
        // The model holds values as the application means them.
        let mut after = self.model.clone();
        apply(&mut after, &norm_write(w.clone()));
        let mut checked: strata::Result<()> = Ok(());
        for (op, h) in w.iter().zip(&handles) {
            let k = op.first_key();
            match tx.get_in(h, &k[1..]) {
                Ok(v) => assert_eq!(v.and_then(|v| norm(&v)).as_ref(), after.get(k), "own write"),
                Err(e) => checked = Err(e),
            }
        }
        if let (Ok(()), Some(h)) = (&checked, handles.first()) {
            let ks = usize::from(w[0].first_key()[0]);
            let want: Model = entries_of(&after, ks)
                .map(|(k, v)| (k.to_vec(), v.clone()))
                .collect();
            for reverse in [false, true] {
                let got: strata::Result<Vec<(Vec<u8>, Vec<u8>)>> = match tx.iter_in(h) {
                    Ok(it) if reverse => it
                        .rev()
                        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                        .collect(),
                    Ok(it) => it
                        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                        .collect(),
                    Err(e) => Err(e),
                };
                match got {
                    Ok(mut got) => {
                        if reverse {
                            got.reverse();
                        }
                        let got = normalised(got);
                        assert_eq!(got.into_iter().collect::<Model>(), want, "own scan");
                    }
                    Err(e) => {
                        checked = Err(e);
                        break;
                    }
                }
            }
            // The seekable cursor, walked forward and back, reads the same.
            if checked.is_ok() {
                let walked = (|| -> strata::Result<[Vec<(Vec<u8>, Vec<u8>)>; 2]> {
                    let mut c = tx.cursor_in(h)?;
                    let mut forward = Vec::new();
                    c.seek_to_first()?;
                    while let (Some(k), Some(v)) = (c.key(), c.value()) {
                        forward.push((k.to_vec(), v.to_vec()));
                        c.next()?;
                    }
                    let mut backward = Vec::new();
                    c.seek_to_last()?;
                    while let (Some(k), Some(v)) = (c.key(), c.value()) {
                        backward.push((k.to_vec(), v.to_vec()));
                        c.prev()?;
                    }
                    backward.reverse();
                    Ok([forward, backward])
                })();
                match walked {
                    Ok(walks) => {
                        for got in walks {
                            let got = normalised(got);
                            assert_eq!(got.into_iter().collect::<Model>(), want, "own cursor");
                        }
                    }
                    Err(e) => checked = Err(e),
                }
            }
        }
        // The transaction and handles hold the database open: gone before
        // an error reopens it.
        drop(handles);
        if let Err(e) = checked {
            drop(tx);
            return self.error(e, None, seed);
        }
        let w = norm_write(w);
        let before = visible(self.db());
        self.in_doubt = true;
        match tx.commit() {
            Ok(()) => {
                self.in_doubt = false;
                self.feed
                    .committed(before, visible(self.db()), Took::Logged(None));
                apply(&mut self.model, &w);
                self.acks.acknowledged(w, sync);
            }
            Err(e) => self.error(e, Some(w), seed),
        }
    }

    /// A prefix delete in keyspace `ks`, through `delete_prefix`: to the
    /// model, the range from the prefix to its successor (none for the
    /// empty prefix).
    fn delete_prefix(&mut self, ks: usize, prefix: &[u8], sync: bool, seed: u8) {
        // The handle goes before the write: a failed write reopens the
        // database, which a handle of the old one would keep alive.
        let mut batch = WriteBatch::new();
        match self.handle(ks) {
            Ok(h) => batch.delete_prefix_in(&h, prefix),
            Err(e) => return self.error(e, None, seed),
        }
        let successor = (!prefix.is_empty()).then(|| {
            let mut s = prefix.to_vec();
            // The keys' bytes are letters and digits, never 0xff.
            *s.last_mut().expect("not empty") += 1;
            s
        });
        self.commit(
            vec![model_range(ks, prefix, successor.as_deref())],
            batch,
            sync,
            seed,
        );
    }

    /// Write `batch`, which `w` describes to the model.
    fn commit(&mut self, w: Write, batch: WriteBatch, sync: bool, seed: u8) {
        let opts = WriteOptions {
            sync,
            ..Default::default()
        };
        let w = norm_write(w);
        let before = visible(self.db());
        self.in_doubt = true;
        match self.db().write_opt(batch, &opts) {
            Ok(()) => {
                self.in_doubt = false;
                self.feed
                    .committed(before, visible(self.db()), Took::Logged(None));
                apply(&mut self.model, &w);
                self.acks.acknowledged(w, sync);
            }
            Err(e) => self.error(e, Some(w), seed),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let fs = MemFileSystem::new();
    let db = Db::open(Path::new("/db"), options(&fs)).expect("first open");
    let mut s = State {
        fs,
        db: Some(db),
        handles: Default::default(),
        acks: AckLog::default(),
        model: Model::new(),
        snapshot: None,
        armed: false,
        writes: 0,
        feed: FeedLog::default(),
        in_doubt: false,
    };
    for chunk in data.chunks(3).take(300) {
        let [op, a, b] = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let ks = pick(op);
        match op % 16 {
            0..=1 => {
                s.writes += 1;
                let w = vec![WriteOp::Put(model_key(ks, &key(a)), value(b, s.writes))];
                s.write(w, op & 0x80 != 0, b);
            }
            // A merge of a short operand.
            2 => {
                s.writes += 1;
                let operand = format!("{}", s.writes % 1000).into_bytes();
                let w = vec![WriteOp::Merge(model_key(ks, &key(a)), operand)];
                s.write(w, op & 0x80 != 0, b);
            }
            // A range delete or a prefix delete, narrow or wide, by the
            // low bits of `b`.
            3 => {
                let sync = op & 0x80 != 0;
                match b % 4 {
                    0 => {
                        // Up to eight keys on from key(a) (a letter
                        // wrapping round makes the end the start).
                        let (lo, hi) = sorted(key(a), key(a.wrapping_add(1 + (b >> 2) % 8)));
                        s.write(vec![model_range(ks, &lo, Some(&hi))], sync, b);
                    }
                    1 => s.write(vec![model_range(ks, &key(a), None)], sync, b),
                    // The keys of one letter.
                    2 => s.delete_prefix(ks, &key(a)[..2], sync, b),
                    // Every key: a prefix with or without a successor.
                    _ if (b >> 2) & 1 == 0 => s.delete_prefix(ks, b"", sync, b),
                    _ => s.delete_prefix(ks, b"k", sync, b),
                }
            }
            4 => s.write(
                vec![WriteOp::Delete(model_key(ks, &key(a)))],
                op & 0x80 != 0,
                b,
            ),
            5 => {
                // Entry `i` in the keyspace bits 4-6 plus `i` pick.
                let mut w = Write::new();
                for i in 0..b % 8 {
                    s.writes += 1;
                    let k = key(a.wrapping_add(i.wrapping_mul(7)));
                    let in_ks = pick(op.wrapping_add(i << 4));
                    w.push(match i % 3 {
                        // The sixth entry: a range delete among the rest.
                        2 if i == 5 => {
                            let (lo, hi) = sorted(k.clone(), key(a.wrapping_add(40)));
                            model_range(in_ks, &lo, Some(&hi))
                        }
                        2 => WriteOp::Delete(model_key(in_ks, &k)),
                        _ => WriteOp::Put(model_key(in_ks, &k), value(i * 9, s.writes)),
                    });
                }
                // With `b`'s high bit, through a transaction.
                if b & 0x80 != 0 && !w.is_empty() {
                    s.write_in_transaction(w, op & 0x80 != 0, b);
                } else {
                    s.write(w, op & 0x80 != 0, b);
                }
            }
            6 if op & 0x80 != 0 => {
                // Move: delete in one keyspace, put in another, one batch.
                let to = match 1 + usize::from(b) % 3 {
                    t if t == ks => 0,
                    t => t,
                };
                if let Some(v) = s.model.get(&model_key(ks, &key(a))).cloned() {
                    let w = vec![
                        WriteOp::Delete(model_key(ks, &key(a))),
                        WriteOp::Put(model_key(to, &key(a)), v),
                    ];
                    s.write(w, b & 1 != 0, b);
                }
            }
            6 => match s.handle(ks).and_then(|h| h.get(key(a))) {
                Ok(v) => assert_eq!(
                    v.and_then(|v| norm(&v)).as_ref(),
                    s.model.get(&model_key(ks, &key(a)))
                ),
                Err(e) => s.error(e, None, b),
            },
            7 => {
                let (lo, hi) = sorted(key(a), key(b));
                let h = match s.handle(ks) {
                    Ok(h) => h,
                    Err(e) => {
                        s.error(e, None, b);
                        continue;
                    }
                };
                let it = h.range(lo.as_slice()..hi.as_slice());
                let got: strata::Result<Vec<_>> = if op & 0x80 != 0 {
                    it.rev()
                        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                        .collect()
                } else {
                    it.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                        .collect()
                };
                let mut want: Vec<_> = s
                    .model
                    .range(model_key(ks, &lo)..model_key(ks, &hi))
                    .map(|(k, v)| (k[1..].to_vec(), v.clone()))
                    .collect();
                if op & 0x80 != 0 {
                    want.reverse();
                }
                match got {
                    Ok(got) => assert_eq!(normalised(got), want),
                    Err(e) => s.error(e, None, b),
                }
            }
            // A keyspace's flush makes its writes durable, and all before.
            8 => match s.handle(ks).and_then(|h| h.flush()) {
                Ok(()) => s.acks.durable_through_last(|k| usize::from(k[0]) == ks),
                Err(e) => s.error(e, None, b),
            },
            9 => {
                let (lo, hi) = sorted(key(a), key(b));
                match s
                    .handle(ks)
                    .and_then(|h| h.compact_range(lo.as_slice()..=hi.as_slice()))
                {
                    Ok(()) => s.acks.durable_through_last(|k| usize::from(k[0]) == ks),
                    Err(e) => s.error(e, None, b),
                }
            }
            10 if op & 0x80 != 0 && ks == 0 => match s.db().flush_all() {
                Ok(()) => s.acks.all_durable(),
                Err(e) => s.error(e, None, b),
            },
            10 if op & 0x80 != 0 => {
                // Drop: durable, with every write before it.
                if s.db().keyspace_names().iter().any(|n| n == KEYSPACES[ks]) {
                    let w = drop_write(ks);
                    match s.db().drop_keyspace(KEYSPACES[ks]) {
                        Ok(()) => {
                            s.handles[ks] = None;
                            apply(&mut s.model, &w);
                            s.acks.acknowledged(w, true);
                        }
                        Err(e) => s.error(e, Some(w), b),
                    }
                }
            }
            10 if ks == 1 => s.read_feed(a, b & 1 != 0, b),
            10 if ks == 2 => s.read_only(b),
            10 if ks == 3 => s.ack_feed(a, b),
            10 => {
                if let Err(e) = s.db().run_background_work() {
                    s.error(e, None, b);
                }
            }
            11 => {
                s.close();
                match Db::open("/db", options(&s.fs)) {
                    // Tables are read through the filesystem (pread), so
                    // an armed fault or crash may fire in the scan too.
                    Ok(db) => match scan(&db) {
                        Ok(got) => {
                            assert_eq!(got, s.model, "a clean reopen lost acknowledged writes");
                            s.db = Some(db);
                            s.acks.all_durable();
                        }
                        Err(e) => {
                            s.db = Some(db);
                            s.error(e, None, b);
                        }
                    },
                    Err(e) => s.error(e, None, b),
                }
            }
            12 => s.power_loss(b),
            13 => {
                if op & 0x80 != 0 {
                    let snap = s.db().snapshot();
                    s.snapshot = Some((snap, s.model.clone(), s.handles.clone()));
                } else if let Some((snap, m, handles)) = &s.snapshot {
                    // Through the handle open then (its keyspace may have
                    // been dropped since).
                    if let Some(h) = &handles[ks] {
                        let got: strata::Result<Model> = snap
                            .keyspace(h)
                            .iter()
                            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                            .collect();
                        let want: Model = entries_of(m, ks)
                            .map(|(k, v)| (k.to_vec(), v.clone()))
                            .collect();
                        match got {
                            Ok(got) => assert_eq!(
                                got.into_iter()
                                    .filter_map(|(k, v)| norm(&v).map(|v| (k, v)))
                                    .collect::<Model>(),
                                want,
                                "snapshot scan"
                            ),
                            Err(e) => s.error(e, None, b),
                        }
                    }
                }
            }
            14 => {
                s.fs.add_fault(FaultPlan {
                    op: Some(KINDS[usize::from(a) % KINDS.len()]),
                    path_contains: None,
                    skip: u64::from(b % 32),
                    count: if a & 0x80 != 0 { u64::MAX } else { 1 },
                });
                s.armed = true;
            }
            _ => {
                s.fs.crash_after(1 + u64::from(a));
                s.armed = true;
            }
        }
    }
    if s.armed {
        s.power_loss(0);
    }
    s.close();
    let db = Db::open("/db", options(&s.fs)).expect("final reopen");
    assert_eq!(scan(&db).expect("final scan"), s.model);
});
