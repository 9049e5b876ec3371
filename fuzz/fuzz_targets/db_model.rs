//! The whole database against a `BTreeMap` model (redb's and sled's model
//! fuzzers): the input is a sequence of operations (puts, deletes,
//! batches, sync writes, gets, scans both ways, snapshots, flushes,
//! compactions, clean reopens, power losses, injected I/O errors and crash
//! points) on the in-memory filesystem with `inline_background_work`, so
//! each input is deterministic.
//!
//! Checked: every read agrees with the model; an error only follows an
//! injected fault or crash point; after a power loss the database holds
//! the state after a prefix of the acknowledged writes that includes every
//! durable one (sync, or followed by a flush), possibly plus the one write
//! that failed; a clean reopen loses nothing.
#![no_main]

// The acknowledged-writes ledger and its prefix rule, shared with the
// crash tests (tests/simulation.rs, tests/model.rs).
#[path = "../../tests/common/ack_log.rs"]
mod ack_log;

use ack_log::{apply, AckLog, Model, Write};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;
use strata::fs::{FaultPlan, FsOp, MemFileSystem, UnsyncedData};
use strata::{Db, Options, WriteBatch, WriteOptions};

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
        ..Options::default()
    }
}

fn key(b: u8) -> Vec<u8> {
    vec![b'k', b'a' + (b % 26), b'0' + (b / 26 % 10)]
}

fn value(b: u8, n: u64) -> Vec<u8> {
    let mut v = format!("{n}:").into_bytes();
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

fn scan(db: &Db) -> strata::Result<Model> {
    db.iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect()
}

struct State {
    fs: MemFileSystem,
    db: Option<Db>,
    acks: AckLog,
    model: Model,
    snapshot: Option<(strata::Snapshot, Model)>,
    armed: bool,
    writes: u64,
}

impl State {
    fn db(&self) -> &Db {
        self.db.as_ref().expect("open")
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

    fn power_loss(&mut self, seed: u8) {
        self.fs.crash();
        self.snapshot = None;
        drop(self.db.take());
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
        self.db = Some(db);
        self.model = got;
    }

    fn write(&mut self, w: Write, sync: bool, seed: u8) {
        let mut batch = WriteBatch::new();
        for (k, v) in &w {
            match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            }
        }
        let opts = WriteOptions {
            sync,
            ..Default::default()
        };
        match self.db().write_opt(batch, &opts) {
            Ok(()) => {
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
        acks: AckLog::default(),
        model: Model::new(),
        snapshot: None,
        armed: false,
        writes: 0,
    };
    for chunk in data.chunks(3).take(300) {
        let [op, a, b] = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        match op % 16 {
            0..=3 => {
                s.writes += 1;
                let w = vec![(key(a), Some(value(b, s.writes)))];
                s.write(w, op & 0x80 != 0, b);
            }
            4 => s.write(vec![(key(a), None)], op & 0x80 != 0, b),
            5 => {
                let mut w = Write::new();
                for i in 0..b % 8 {
                    s.writes += 1;
                    let k = key(a.wrapping_add(i.wrapping_mul(7)));
                    w.push((k, (i % 3 != 2).then(|| value(i * 9, s.writes))));
                }
                s.write(w, op & 0x80 != 0, b);
            }
            6 => match s.db().get(key(a)) {
                Ok(v) => assert_eq!(v.map(|v| v.to_vec()).as_ref(), s.model.get(&key(a))),
                Err(e) => s.error(e, None, b),
            },
            7 => {
                let (lo, hi) = sorted(key(a), key(b));
                let it = s.db().range(lo.as_slice()..hi.as_slice());
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
                    .range(lo..hi)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if op & 0x80 != 0 {
                    want.reverse();
                }
                match got {
                    Ok(got) => assert_eq!(got, want),
                    Err(e) => s.error(e, None, b),
                }
            }
            8 => match s.db().flush() {
                Ok(()) => s.acks.all_durable(),
                Err(e) => s.error(e, None, b),
            },
            9 => {
                let (lo, hi) = sorted(key(a), key(b));
                match s.db().compact_range(lo.as_slice()..=hi.as_slice()) {
                    Ok(()) => s.acks.all_durable(),
                    Err(e) => s.error(e, None, b),
                }
            }
            10 => {
                if let Err(e) = s.db().run_background_work() {
                    s.error(e, None, b);
                }
            }
            11 => {
                s.snapshot = None;
                drop(s.db.take());
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
                    s.snapshot = Some((snap, s.model.clone()));
                } else if let Some((snap, m)) = &s.snapshot {
                    let got: strata::Result<Model> = snap
                        .iter()
                        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                        .collect();
                    match got {
                        Ok(got) => assert_eq!(&got, m, "snapshot scan"),
                        Err(e) => s.error(e, None, b),
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
    s.snapshot = None;
    drop(s.db.take());
    let db = Db::open("/db", options(&s.fs)).expect("final reopen");
    assert_eq!(scan(&db).expect("final scan"), s.model);
});
