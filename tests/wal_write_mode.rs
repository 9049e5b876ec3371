//! `Options::wal_write_mode`: each mode writes the WAL kind it names, and
//! every mode keeps synced writes through a power loss and everything
//! through a clean reopen.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{mem_dir, mem_options, power_cycle, scan_all};
use std::path::Path;
use std::sync::Arc;
use strata::fs::{FileSystem, LogKind, MemFileSystem, OsFileSystem, UnsyncedData};
use strata::{Db, Options, WalWriteMode, WriteOptions};

const MODES: [WalWriteMode; 3] = [
    WalWriteMode::Auto,
    WalWriteMode::MemoryMapped,
    WalWriteMode::Write,
];

/// The sizes of the WALs in `dir`: the live one and the spare made ahead
/// of the next rotation, both of the chosen kind.
fn wal_sizes(fs: &dyn FileSystem, dir: &Path) -> Vec<u64> {
    let sizes: Vec<u64> = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .map(|n| fs.file_size(&dir.join(n)).unwrap())
        .collect();
    assert!(!sizes.is_empty(), "an open database has a WAL");
    sizes
}

/// What a mapped WAL is allocated to at least (`WAL_FIRST_BYTES` in
/// src/write/spare.rs), far more than the appended WALs here hold.
const FIRST_ALLOCATION: u64 = 256 << 10;

/// The live WAL is preallocated (in whole pages), and so is every other
/// one, except a spare the flush thread is making ahead of the next
/// rotation, which may be caught between its creation and its
/// `fallocate` (empty).
fn preallocated(sizes: &[u64]) -> bool {
    sizes.iter().any(|&s| s >= FIRST_ALLOCATION)
        && sizes
            .iter()
            .all(|&s| s == 0 || s >= FIRST_ALLOCATION && s.is_multiple_of(4096))
}

fn appended(sizes: &[u64]) -> bool {
    sizes.iter().all(|&s| s < FIRST_ALLOCATION)
}

fn put_all(db: &Db, n: u32, sync: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let opts = WriteOptions {
        sync,
        ..Default::default()
    };
    (0..n)
        .map(|i| {
            let (k, v) = (format!("key{i:05}").into_bytes(), vec![i as u8; 100]);
            db.put_opt(&k, &v, &opts).unwrap();
            (k, v)
        })
        .collect()
}

#[test]
fn every_mode_keeps_synced_writes_through_power_loss_on_the_memory_filesystem() {
    for mode in MODES {
        for loss in [UnsyncedData::Drop, UnsyncedData::KeepRandomPrefix(3)] {
            let fs = MemFileSystem::new();
            let options = Options {
                wal_write_mode: mode,
                ..mem_options(&fs)
            };
            let db = Db::open(mem_dir(), options.clone()).unwrap();
            let written = put_all(&db, 200, true);
            // The memory filesystem maps logs where Auto is asked, as ext4.
            let sizes = wal_sizes(&fs, &mem_dir());
            match mode {
                WalWriteMode::Write => assert!(appended(&sizes), "{mode:?}: {sizes:?}"),
                _ => assert!(preallocated(&sizes), "{mode:?}: {sizes:?}"),
            }
            power_cycle(&fs, db, loss);
            let db = Db::open(mem_dir(), options).unwrap();
            assert!(
                scan_all(&db) == written,
                "{mode:?} {loss:?}: synced writes lost"
            );
        }
    }
}

#[test]
fn every_mode_reads_back_after_a_clean_reopen_on_the_os_filesystem() {
    for mode in MODES {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            wal_write_mode: mode,
            ..common::small_options()
        };
        let db = Db::open(dir.path(), options.clone()).unwrap();
        let written = put_all(&db, 300, false);
        // Where Auto maps (ext4, xfs, tmpfs), fallocate works: both mapped
        // modes preallocate there. Elsewhere only Write's size is certain.
        let auto_maps = OsFileSystem.auto_log_kind(dir.path()) == LogKind::MemoryMapped;
        let sizes = wal_sizes(&OsFileSystem, dir.path());
        match mode {
            WalWriteMode::Write => assert!(appended(&sizes), "{mode:?}: {sizes:?}"),
            _ if auto_maps => assert!(preallocated(&sizes), "{mode:?}: {sizes:?}"),
            WalWriteMode::Auto => assert!(appended(&sizes), "{mode:?}: {sizes:?}"),
            WalWriteMode::MemoryMapped => {}
        }
        drop(db);
        let db = Db::open(dir.path(), options).unwrap();
        assert!(
            scan_all(&db) == written,
            "{mode:?}: writes lost across a clean reopen"
        );
    }
}

#[test]
fn a_custom_filesystem_without_log_support_gets_appends() {
    // The trait's defaults: Auto asks the filesystem, which says Write.
    struct Plain(MemFileSystem);
    impl FileSystem for Plain {
        fn create_dir_all(&self, d: &Path) -> std::io::Result<()> {
            self.0.create_dir_all(d)
        }
        fn create(&self, p: &Path) -> std::io::Result<Box<dyn strata::fs::WritableFile>> {
            self.0.create(p)
        }
        fn read(&self, p: &Path) -> std::io::Result<strata::Bytes> {
            self.0.read(p)
        }
        fn rename(&self, f: &Path, t: &Path) -> std::io::Result<()> {
            self.0.rename(f, t)
        }
        fn remove(&self, p: &Path) -> std::io::Result<()> {
            self.0.remove(p)
        }
        fn list(&self, d: &Path) -> std::io::Result<Vec<String>> {
            self.0.list(d)
        }
        fn exists(&self, p: &Path) -> bool {
            self.0.exists(p)
        }
        fn file_size(&self, p: &Path) -> std::io::Result<u64> {
            self.0.file_size(p)
        }
        fn sync_dir(&self, d: &Path) -> std::io::Result<()> {
            self.0.sync_dir(d)
        }
        fn lock(&self, p: &Path) -> std::io::Result<Box<dyn strata::fs::FileLock>> {
            self.0.lock(p)
        }
    }
    let fs = MemFileSystem::new();
    assert_eq!(Plain(fs.clone()).auto_log_kind(&mem_dir()), LogKind::Write);
    let db = Db::open(
        mem_dir(),
        Options {
            fs: Arc::new(Plain(fs.clone())),
            ..common::small_options()
        },
    )
    .unwrap();
    let written = put_all(&db, 50, true);
    assert!(appended(&wal_sizes(&fs, &mem_dir())));
    drop(db);
    let db = Db::open(mem_dir(), mem_options(&fs)).unwrap();
    assert!(scan_all(&db) == written);
}
