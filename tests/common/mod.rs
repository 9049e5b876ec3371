//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod ack_log;
pub mod expiring;
pub mod feed_log;
pub mod filter;
pub mod history;
pub mod hold_at;
pub mod keyspaces;
pub mod operators;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata::fs::{MemFileSystem, UnsyncedData};
use strata::{Db, Options};

/// The directory databases live in on the in-memory filesystem.
pub fn mem_dir() -> PathBuf {
    PathBuf::from("/db")
}

/// Options on an in-memory filesystem with small memtables and levels, so
/// flushes happen after a few hundred writes and compactions soon after.
pub fn mem_options(fs: &MemFileSystem) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        ..small_options()
    }
}

/// Small memtables, tables and level targets: a few thousand writes build
/// a multi-level tree. Iterators seek past a key's versions after two
/// steps, so the tests that scan exercise those seeks.
pub fn small_options() -> Options {
    Options {
        write_buffer_size: 64 * 1024,
        max_sequential_skip_in_iterations: 2,
        block_size: 1024,
        max_bytes_for_level_base: 256 * 1024,
        target_file_size_base: 64 * 1024,
        ..Options::default()
    }
}

/// SplitMix64: a tiny deterministic generator, so a test's random
/// choices replay from its seed (any seed, 0 included).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for tests.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Pull the plug: the process dies (the filesystem refuses every call
/// from here on, so dropping the handle cleans nothing up and syncs
/// nothing), then the machine loses power, keeping unsynced data as
/// `mode` says. Reopen with [`open_mem`].
pub fn power_cycle(fs: &MemFileSystem, db: Db, mode: UnsyncedData) {
    fs.crash();
    drop(db);
    fs.power_loss(mode);
}

pub fn open_mem(fs: &MemFileSystem) -> Db {
    Db::open(mem_dir(), mem_options(fs)).expect("open in-memory database")
}

/// Every (key, value) in the database, in order.
pub fn scan_all(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_, _>>()
        .expect("scan")
}

/// Names of the files in `dir` with the given extension.
pub fn files_with_ext(fs: &dyn strata::fs::FileSystem, dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(ext))
        .map(|n| dir.join(n))
        .collect();
    v.sort();
    v
}

/// A database on `fs` with keys `0..flushed` in a table and the next
/// `in_wal` keys only in the WAL, closed cleanly (the corruption and
/// regression tests damage its files).
pub fn table_and_wal(fs: &MemFileSystem, flushed: usize, in_wal: usize) {
    let db = open_mem(fs);
    for i in 0..flushed {
        db.put(key(i), value(i, 0)).expect("put");
    }
    db.flush().expect("flush");
    for i in flushed..flushed + in_wal {
        db.put(key(i), value(i, 0)).expect("put");
    }
}

/// Stop `db`'s writes with a failed WAL sync (a background error), then
/// resume it: a resume deletes the files no version names.
pub fn fail_wal_sync_and_resume(fs: &MemFileSystem, db: &Db) {
    fs.add_fault(strata::fs::FaultPlan {
        path_contains: Some(".log".into()),
        ..strata::fs::FaultPlan::always(strata::fs::FsOp::Sync)
    });
    let sync = strata::WriteOptions {
        sync: true,
        ..Default::default()
    };
    assert!(db.put_opt("x", "y", &sync).is_err(), "the WAL sync fails");
    fs.clear_faults();
    db.resume().expect("resume");
}

/// The live MANIFEST of the database in [`mem_dir`].
pub fn manifest_path(fs: &MemFileSystem) -> PathBuf {
    let name = strata::fs::FileSystem::list(fs, &mem_dir())
        .expect("list")
        .into_iter()
        .find(|n| n.starts_with("MANIFEST-"))
        .expect("a MANIFEST");
    mem_dir().join(name)
}

/// A key for index `i`, zero-padded so numeric and byte order agree.
pub fn key(i: usize) -> Vec<u8> {
    format!("key{i:08}").into_bytes()
}

pub fn value(i: usize, version: usize) -> Vec<u8> {
    format!("value-{i}-{version}-{}", "x".repeat(i % 50)).into_bytes()
}
